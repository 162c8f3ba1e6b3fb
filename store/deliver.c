/*
 * deliver.c - the delivery seam: the table of backends and the calls the
 * run makes, each passed to the backend of the target or message.
 */
#include "config.h"

#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "deliver.h"

/*
 * Every backend, by the name the configuration uses (doc/DESIGN.md §9).
 * deliver_open_recorded asks them in this order whether a recorded target
 * is theirs: the Maildir, whose targets are plain paths, comes last.
 */
static const struct deliver_backend *const backends[] = {
	&deliver_mda,
	&deliver_maildir,
};

/* A folder name, with the leading '.' the Maildir++ directory adds. */
#define NAME_MAX_FOLDER	(NAME_MAX - 1)

#define NBACKENDS	(sizeof(backends) / sizeof(backends[0]))

bool
deliver_folder_ok(const char *name)
{
	const unsigned char *p;

	if (name == NULL || name[0] == '\0' || name[0] == '.' ||
	    strlen(name) >= NAME_MAX_FOLDER || strstr(name, "..") != NULL)
		return false;
	for (p = (const unsigned char *)name; *p != '\0'; p++)
		if (*p == '/' || *p < 0x20 || *p == 0x7f)
			return false;
	return true;
}

int
deliver_open(const char *kind, const char *target, enum deliver_open_mode how,
    struct deliver **t_r, struct pf_error *err)
{
	size_t i;

	*t_r = NULL;
	for (i = 0; i < NBACKENDS; i++)
		if (strcmp(backends[i]->kind, kind) == 0)
			return backends[i]->open(target, how, t_r, err);
	return pf_error_set(err, PF_FAIL_INTERNAL, "no delivery backend '%s'",
	    kind);
}

int
deliver_open_recorded(const char *target, struct deliver **t_r,
    struct pf_error *err)
{
	size_t i;

	*t_r = NULL;
	for (i = 0; i < NBACKENDS; i++)
		if (backends[i]->owns(target))
			return backends[i]->open(target, DELIVER_EXISTING, t_r,
			    err);
	return 0;
}

void
deliver_close(struct deliver **t_r)
{
	if (*t_r == NULL)
		return;
	(*t_r)->be->close(*t_r);
	*t_r = NULL;
}

const char *
deliver_target(const struct deliver *t)
{
	return t->be->target(t);
}

int
deliver_begin(struct deliver *t, struct deliver_msg **m_r,
    struct pf_error *err)
{
	return t->be->begin(t, m_r, err);
}

int
deliver_write(struct deliver_msg *m, const void *buf, size_t len,
    struct pf_error *err)
{
	return m->be->write(m, buf, len, err);
}

int
deliver_finish(struct deliver_msg *m, struct pf_error *err)
{
	return m->be->finish(m, err);
}

const char *
deliver_location(const struct deliver_msg *m)
{
	return m->be->location(m);
}

uint64_t
deliver_size(const struct deliver_msg *m)
{
	return m->be->size(m);
}

int
deliver_label(struct deliver_msg *m, const struct deliver_label *l,
    struct pf_error *err)
{
	return m->be->label(m, l, err);
}

int
deliver_commit(struct deliver *t, struct deliver_msg *const *m, size_t n,
    struct deliver_result *res, struct pf_error *err)
{
	return t->be->commit(t, m, n, res, err);
}

void
deliver_results_free(struct deliver_result *res, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(res[i].why);
		res[i].why = NULL;
	}
}

int
deliver_commit_deferred(struct deliver *t, struct deliver_msg *const *m,
    size_t n, struct deliver_result *res, struct pf_error *err)
{
	if (t->be->commit_deferred == NULL)
		return t->be->commit(t, m, n, res, err);
	return t->be->commit_deferred(t, m, n, res, err);
}

int
deliver_settle(struct deliver *t, struct deliver_msg *const *m, size_t n,
    struct pf_error *err)
{
	if (t->be->settle == NULL)
		return 0;
	return t->be->settle(t, m, n, err);
}

void
deliver_free(struct deliver_msg **m_r)
{
	if (*m_r == NULL)
		return;
	(*m_r)->be->free(*m_r);
	*m_r = NULL;
}

int
deliver_find(struct deliver *t, const char *const *locations, size_t n,
    bool *found_r, struct pf_error *err)
{
	return t->be->find(t, locations, n, found_r, err);
}

int
deliver_clean(struct deliver *t, size_t *removed_r, struct pf_error *err)
{
	return t->be->clean(t, removed_r, err);
}
