/*
 * account.c - an account's identity for the seen-list, and the choice of
 * what to fetch, skip and delete.
 */
#include "config.h"

#include <inttypes.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include "account.h"
#include "log.h"
#include "xmalloc.h"

void
account_who(const struct conf *conf, const struct conf_account *acct,
    struct seen_who *who, struct seen_owner **owners_r)
{
	struct seen_owner *owners;
	size_t i;

	owners = xcalloc(conf->naccounts + 1, sizeof(*owners));
	who->all = owners;
	who->n = conf->naccounts;
	who->self = 0;
	for (i = 0; i < conf->naccounts; i++) {
		const struct conf_account *a = &conf->accounts[i];

		owners[i] = (struct seen_owner){
			.account = a->name, .user = a->user, .host = a->host,
			.port = a->port,
		};
		if (strcmp(a->name, acct->name) == 0)
			who->self = i;
	}
	*owners_r = owners;
}

const char *
account_target(const struct conf_account *a, const char **kind_r)
{
	/* With an mda there is no Maildir (conf.h): never hand on NULL. */
	if (a->mda != NULL) {
		*kind_r = "mda";
		return a->mda;
	}
	*kind_r = "maildir";
	return a->maildir;
}

int
account_mark_known(struct pop3_listing *l, struct seen *s,
    struct pf_error *err)
{
	const char **keys;
	size_t *at = NULL, i, n = 0;
	bool *known;
	int rc = 0;

	if (s == NULL || l->count == 0)
		return 0;
	keys = xreallocarray(NULL, l->count, sizeof(*keys));
	for (i = 0; i < l->count; i++) {
		if (l->msgs[i].uidl == NULL && at == NULL) {
			/* Some without UIDL (not from a server): where each
			 * key is in the listing. */
			at = xreallocarray(NULL, l->count, sizeof(*at));
			for (n = 0; n < i; n++)
				at[n] = n;
		}
		if (l->msgs[i].uidl != NULL) {
			if (at != NULL)
				at[n] = i;
			keys[n++] = l->msgs[i].uidl;
		}
	}
	known = xcalloc(n + 1, sizeof(*known));
	if (n > 0 && seen_match(s, keys, n, known, err) == -1)
		rc = -1;
	for (i = 0; rc == 0 && i < n; i++)
		if (known[i])
			l->msgs[at != NULL ? at[i] : i].known = true;
	free(known);
	free(at);
	free(keys);
	return rc;
}

size_t
account_unseen(struct pop3_listing *l)
{
	size_t i, n = 0;

	for (i = 0; i < l->count; i++) {
		struct pop3_msg *m = &l->msgs[i];

		m->fetch = m->uidl == NULL || !m->known;
		n += m->fetch;
	}
	return n;
}

size_t
account_limit(const struct conf_account *a, struct pop3_listing *l,
    bool verbose_skips, unsigned long *skipped)
{
	size_t i, n = 0;

	for (i = 0; i < l->count; i++) {
		struct pop3_msg *m = &l->msgs[i];

		if (!m->fetch)
			continue;
		if (a->max_size > 0 && m->size > a->max_size) {
			(*skipped)++;
			m->fetch = false;
			if (verbose_skips)
				log_debug("%s: skipping message %u (UIDL %s): "
				    "%" PRIu64 " bytes is over max_size",
				    a->name, m->number, m->uidl ? m->uidl :
				    "none", (uint64_t)m->size);
			continue;
		}
		if (a->max_messages > 0 && n >= a->max_messages) {
			(*skipped)++;
			m->fetch = false;
			if (verbose_skips)
				log_debug("%s: skipping message %u (UIDL %s): "
				    "over max_messages (%u per run)", a->name,
				    m->number, m->uidl ? m->uidl : "none",
				    (unsigned)a->max_messages);
			continue;
		}
		n++;
	}
	return n;
}

size_t
account_select(const struct conf_account *a, struct pop3_listing *l,
    bool verbose_skips, unsigned long *skipped)
{
	(void)account_unseen(l);
	return account_limit(a, l, verbose_skips, skipped);
}

bool
account_want_delete(const struct conf_account *a, struct seen *s,
    const struct pop3_msg *m, time_t now)
{
	time_t fetched;

	if (a->delete)
		return true;
	if (a->delete_after_days == 0 || s == NULL || m->uidl == NULL)
		return false;
	if (!seen_lookup(s, m->uidl, &fetched))
		return false;
	return (int64_t)now - (int64_t)fetched >=
	    (int64_t)a->delete_after_days * 86400;
}
