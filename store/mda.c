/*
 * mda.c - the MDA delivery backend: each message is piped to the
 * account's `mda` command (doc/DESIGN.md §10.3).
 *
 * A message is spooled while it arrives (lib/spool.h), and the command runs for it at the group commit, after
 * its pending row is durable: a run killed while the MDA works leaves the
 * row, recovery cannot ask an MDA what it did, so the message is fetched
 * and handed over again (at least once, never lost).  The X-Popfetch-Id
 * field on top lets the MDA drop such a repeat.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "command.h"
#include "deliver.h"
#include "params.h"
#include "spool.h"
#include "xmalloc.h"

/* How a recorded target names an MDA (the command itself is not kept). */
#define MDA_TARGET	"mda:"

struct mda {
	struct deliver	 base;		/* first: the seam's view */
	char		*command;
	bool		 cannot_run;	/* it could not be run: `why` */
	struct pf_error	 why;
};

struct mda_msg {
	struct deliver_msg base;	/* first: the seam's view */
	struct mda	*mda;
	struct spool	*spool;		/* the message as it arrived */
	bool		 finished;
	bool		 failed;
	char		*account, *uidl, *id, *folder;
	unsigned	 timeout;
};

#define MDA(t)	((struct mda *)(void *)(t))
#define MSG(m)	((struct mda_msg *)(void *)(m))

static bool
mda_owns(const char *target)
{
	return strncmp(target, MDA_TARGET, strlen(MDA_TARGET)) == 0;
}

static int
mda_open(const char *target, enum deliver_open_mode how, struct deliver **t_r,
    struct pf_error *err)
{
	struct mda *t;

	(void)err;
	t = xcalloc(1, sizeof(*t));
	t->base.be = &deliver_mda;
	/* A recorded target only answers deliver_find: never "found". */
	t->command = xstrdup(how == DELIVER_EXISTING && mda_owns(target) ?
	    "" : target);
	*t_r = &t->base;
	return 0;
}

static void
mda_close(struct deliver *t)
{
	free(MDA(t)->command);
	free(MDA(t));
}

static const char *
mda_target(const struct deliver *t)
{
	(void)t;
	return MDA_TARGET;
}

static int
mda_begin(struct deliver *t, struct deliver_msg **m_r, struct pf_error *err)
{
	struct mda_msg *m = xcalloc(1, sizeof(*m));

	(void)err;
	m->base.be = &deliver_mda;
	m->mda = MDA(t);
	m->spool = spool_new();
	*m_r = &m->base;
	return 0;
}

static int
mda_write(struct deliver_msg *dm, const void *buf, size_t len,
    struct pf_error *err)
{
	struct mda_msg *m = MSG(dm);

	if (m->failed || m->finished)
		return pf_error_set(err, PF_FAIL_INTERNAL, "mda: write on a "
		    "message that is %s", m->failed ? "failed" : "finished");
	if (spool_write(m->spool, buf, len, err) == -1) {
		m->failed = true;
		return -1;
	}
	return 0;
}

static int
mda_finish(struct deliver_msg *dm, struct pf_error *err)
{
	struct mda_msg *m = MSG(dm);

	if (m->failed)
		return pf_error_set(err, PF_FAIL_INTERNAL, "mda: finish on a "
		    "failed message");
	m->finished = true;
	return 0;
}

static const char *
mda_location(const struct deliver_msg *dm)
{
	const struct mda_msg *m = (const void *)dm;

	if (!m->finished)
		return NULL;
	return m->id != NULL ? m->id : "mda";
}

static uint64_t
mda_size(const struct deliver_msg *dm)
{
	return spool_size(((const struct mda_msg *)(const void *)dm)->spool);
}

static char *
dup_or_null(const char *s)
{
	return s != NULL ? xstrdup(s) : NULL;
}

static int
mda_label(struct deliver_msg *dm, const struct deliver_label *l,
    struct pf_error *err)
{
	struct mda_msg *m = MSG(dm);

	(void)err;
	free(m->account);
	free(m->uidl);
	free(m->id);
	free(m->folder);
	m->account = dup_or_null(l->account);
	m->uidl = dup_or_null(l->uidl);
	m->id = dup_or_null(l->id);
	m->folder = dup_or_null(l->folder);
	m->timeout = l->timeout;
	return 0;
}

/*
 * Hand message m to the MDA: X-Popfetch-Id on top, then the message, with
 * POPFETCH_* in its environment.  res gets what its exit status means
 * (doc/DESIGN.md §10.3); -1 only when the command could not be started
 * for a local reason (err set).
 */
static int
hand_over(struct mda *t, struct mda_msg *m, struct deliver_result *res,
    struct pf_error *err)
{
	char head[256 + 64], e_acct[512], e_uidl[512], e_size[64], e_folder[512];
	char prefix[256];
	const char *env[5];
	struct command_input in[2];
	struct command c;
	struct command_result r;
	size_t hlen = 0;
	int rc;

	if (m->id != NULL)
		hlen = (size_t)snprintf(head, sizeof(head),
		    "X-Popfetch-Id: %.256s\n", m->id);
	snprintf(e_acct, sizeof(e_acct), "POPFETCH_ACCOUNT=%s",
	    m->account != NULL ? m->account : "");
	snprintf(e_uidl, sizeof(e_uidl), "POPFETCH_UIDL=%s",
	    m->uidl != NULL ? m->uidl : "");
	snprintf(e_size, sizeof(e_size), "POPFETCH_SIZE=%" PRIu64,
	    spool_size(m->spool) + hlen);
	snprintf(e_folder, sizeof(e_folder), "POPFETCH_FOLDER=%s",
	    m->folder != NULL ? m->folder : "");
	env[0] = e_acct;
	env[1] = e_uidl;
	env[2] = e_size;
	env[3] = e_folder;
	env[4] = NULL;
	snprintf(prefix, sizeof(prefix), "%s: mda",
	    m->account != NULL ? m->account : "mda");
	in[0] = (struct command_input){ .buf = head, .len = hlen, .fd = -1 };
	in[1] = spool_input(m->spool);
	c = (struct command){
		.line = t->command, .env = env, .in = in, .nin = 2,
		.timeout = m->timeout, .log_prefix = prefix, .out_max = 0,
	};
	if (command_run(&c, &r, err) == -1)
		return -1;
	rc = 0;
	res->status = DELIVER_FAILED;
	res->why = NULL;
	if (r.end == COMMAND_EXITED && r.code == 0)
		res->status = DELIVER_PLACED;
	else {
		res->why = xcalloc(1, sizeof(*res->why));
		command_failure(&c, &r, "mda", res->why);
	}
	command_result_free(&r);
	return rc;
}

static int
mda_commit(struct deliver *dt, struct deliver_msg *const *dm, size_t n,
    struct deliver_result *res, struct pf_error *err)
{
	struct mda *t = MDA(dt);
	size_t i;

	for (i = 0; i < n; i++) {
		if (!MSG(dm[i])->finished)
			return pf_error_set(err, PF_FAIL_INTERNAL, "mda: "
			    "message %zu is not finished", i);
	}
	for (i = 0; i < n; i++) {
		/* A command that cannot run will not run for the next message
		 * of the run either (the group commit hands them over one at
		 * a time): each is refused the same way, none is tried. */
		if (t->cannot_run) {
			res[i].status = DELIVER_FAILED;
			res[i].why = xmalloc(sizeof(*res[i].why));
			*res[i].why = t->why;
			continue;
		}
		if (hand_over(t, MSG(dm[i]), &res[i], err) == -1)
			return -1;
		if (res[i].status == DELIVER_FAILED &&
		    res[i].why->category == PF_FAIL_CONFIG) {
			t->cannot_run = true;
			t->why = *res[i].why;
		}
	}
	return 0;
}

static void
mda_free(struct deliver_msg *dm)
{
	struct mda_msg *m = MSG(dm);

	spool_free(&m->spool);
	free(m->account);
	free(m->uidl);
	free(m->id);
	free(m->folder);
	free(m);
}

/* Recovery: an MDA cannot be asked what it did; nothing is found, so each
 * message is handed over again. */
static int
mda_find(struct deliver *t, const char *const *locations, size_t n,
    bool *found_r, struct pf_error *err)
{
	size_t i;

	(void)t;
	(void)locations;
	(void)err;
	for (i = 0; i < n; i++)
		found_r[i] = false;
	return 0;
}

/* The spool files are unlinked: nothing is ever left behind. */
static int
mda_clean(struct deliver *t, size_t *removed_r, struct pf_error *err)
{
	(void)t;
	(void)err;
	if (removed_r != NULL)
		*removed_r = 0;
	return 0;
}

const struct deliver_backend deliver_mda = {
	.kind = "mda",
	.owns = mda_owns,
	.unfindable = true,
	.open = mda_open,
	.close = mda_close,
	.target = mda_target,
	.begin = mda_begin,
	.write = mda_write,
	.finish = mda_finish,
	.location = mda_location,
	.size = mda_size,
	.label = mda_label,
	.commit = mda_commit,
	.free = mda_free,
	.find = mda_find,
	.clean = mda_clean,
};
