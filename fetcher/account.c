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

struct seen_owner *
account_owners(const struct conf *conf)
{
	struct seen_owner *owners;
	size_t i;

	owners = xcalloc(conf->naccounts + 1, sizeof(*owners));
	for (i = 0; i < conf->naccounts; i++) {
		const struct conf_account *a = &conf->accounts[i];

		owners[i] = (struct seen_owner){
			.account = a->name, .user = a->user, .host = a->host,
			.port = a->port,
		};
	}
	return owners;
}

void
account_who(const struct conf *conf, const struct seen_owner *owners,
    const struct conf_account *acct, struct seen_who *who)
{
	uintptr_t at;
	size_t i;

	who->all = owners;
	who->n = conf->naccounts;
	who->self = 0;
	/* acct is one of conf's (a run of 1,000 accounts would otherwise
	 * compare 1,000 names per account); by name if it is a copy. */
	at = (uintptr_t)acct - (uintptr_t)conf->accounts;
	if ((uintptr_t)acct >= (uintptr_t)conf->accounts &&
	    at / sizeof(*acct) < conf->naccounts && at % sizeof(*acct) == 0)
		who->self = at / sizeof(*acct);
	else
		for (i = 0; i < conf->naccounts; i++)
			if (strcmp(conf->accounts[i].name, acct->name) == 0)
				who->self = i;
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

static const char *
listing_key(const void *ctx, size_t i, char *buf)
{
	const struct listing_keys *lk = ctx;

	return pop3_msg_uidl(&lk->l->msgs[lk->at != NULL ? lk->at[i] : i],
	    buf);
}

void
listing_keys_init(struct listing_keys *lk, const struct pop3_listing *l)
{
	size_t i, n = 0;

	lk->l = l;
	lk->at = NULL;
	for (i = 0; i < l->count; i++) {
		if (!pop3_msg_has_uidl(&l->msgs[i]) && lk->at == NULL) {
			/* Some without UIDL (not from a server): where each
			 * key is in the listing. */
			lk->at = xreallocarray(NULL, l->count,
			    sizeof(*lk->at));
			for (n = 0; n < i; n++)
				lk->at[n] = n;
		}
		if (pop3_msg_has_uidl(&l->msgs[i])) {
			if (lk->at != NULL)
				lk->at[n] = i;
			n++;
		}
	}
	lk->keys.key = listing_key;
	lk->keys.ctx = lk;
	lk->keys.n = n;
}

void
listing_keys_free(struct listing_keys *lk)
{
	free(lk->at);
	lk->at = NULL;
}

int
account_mark_known(struct pop3_listing *l, struct seen *s,
    struct pf_error *err)
{
	struct listing_keys lk;
	bool *known;
	size_t i;
	int rc = 0;

	if (s == NULL || l->count == 0)
		return 0;
	listing_keys_init(&lk, l);
	known = xcalloc(lk.keys.n + 1, sizeof(*known));
	if (lk.keys.n > 0 && seen_match(s, &lk.keys, known, err) == -1)
		rc = -1;
	for (i = 0; rc == 0 && i < lk.keys.n; i++)
		if (known[i])
			l->msgs[lk.at != NULL ? lk.at[i] : i].known = true;
	free(known);
	listing_keys_free(&lk);
	return rc;
}

size_t
account_unseen(struct pop3_listing *l)
{
	size_t i, n = 0;

	for (i = 0; i < l->count; i++) {
		struct pop3_msg *m = &l->msgs[i];

		m->fetch = !pop3_msg_has_uidl(m) || !m->known;
		n += m->fetch;
	}
	return n;
}

size_t
account_limit(const struct conf_account *a, struct pop3_listing *l,
    bool verbose_skips, unsigned long *skipped)
{
	char ub[POP3_UIDL_BUF];
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
				    a->name, m->number,
				    pop3_msg_uidl_or(m, ub, "none"),
				    (uint64_t)m->size);
			continue;
		}
		if (a->max_messages > 0 && n >= a->max_messages) {
			(*skipped)++;
			m->fetch = false;
			if (verbose_skips)
				log_debug("%s: skipping message %u (UIDL %s): "
				    "over max_messages (%u per run)", a->name,
				    m->number, pop3_msg_uidl_or(m, ub, "none"),
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
	char ub[POP3_UIDL_BUF];
	time_t fetched;

	if (a->delete)
		return true;
	if (a->delete_after_days == 0 || s == NULL || !pop3_msg_has_uidl(m))
		return false;
	if (!seen_lookup(s, pop3_msg_uidl(m, ub), &fetched))
		return false;
	return (int64_t)now - (int64_t)fetched >=
	    (int64_t)a->delete_after_days * 86400;
}
