/*
 * account.h - what an account's configuration means to a run: who it is
 * to the seen-list (doc/DESIGN.md §2), and which listed messages it
 * fetches, skips and deletes.
 */
#ifndef POPFETCH_ACCOUNT_H
#define POPFETCH_ACCOUNT_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "conf.h"
#include "pop3.h"
#include "seen.h"

/* Every configured account, as the seen-list tells them apart (pointing
 * into conf); free it after use.  Built once for a run of many accounts:
 * per account, a run of 1,000 would build 1,000 entries 1,000 times. */
struct seen_owner *account_owners(const struct conf *conf);

/* The account among all configured ones: who->all is owners (from
 * account_owners(conf)).  acct must be one of conf's accounts (found by
 * name if it is a copy). */
void	account_who(const struct conf *conf, const struct seen_owner *owners,
	    const struct conf_account *acct, struct seen_who *who);

/* Where the account delivers: the delivery backend (store/deliver.h) in
 * *kind_r, and the target returned.  The configuration's choice of
 * backend is read here and nowhere else. */
const char *account_target(const struct conf_account *a, const char **kind_r);

/*
 * The unique-ids of listing l's messages that have one, as seen.c reads
 * them (keys), without a copy: short ones stay inline in the listing
 * (doc/DESIGN.md §5.4).  l must outlive them; listing_keys_free after use.
 */
struct listing_keys {
	struct seen_keys		 keys;
	const struct pop3_listing	*l;
	size_t				*at;	/* key i is message at[i];
						   NULL: message i */
};

void	listing_keys_init(struct listing_keys *lk,
	    const struct pop3_listing *l);
void	listing_keys_free(struct listing_keys *lk);

/*
 * Mark the messages of listing l that seen-list s (NULL: none) knows by
 * their UIDL: m->known, from one streamed query (seen_match), so that no
 * seen set need be held (doc/DESIGN.md §5.4).  A message without UIDL is
 * not marked.  Errors: those of seen_match.
 */
int	account_mark_known(struct pop3_listing *l, struct seen *s,
	    struct pf_error *err);

/*
 * What to fetch from listing l: the messages not marked known
 * (account_mark_known); of those, the ones over max_size and past
 * max_messages (in number order) are skipped and counted in *skipped (with
 * verbose_skips, each gets a debug line).  Marks the rest m->fetch, clears
 * it on every other, and returns how many are marked: no array of them
 * (issue 17: the listing's own 16 bytes a message are all it takes; see
 * pop3_retr_listed).  Sizes must be known.
 */
size_t	account_select(const struct conf_account *a, struct pop3_listing *l,
	    bool verbose_skips, unsigned long *skipped);

/* The unseen part of account_select alone: sizes need not be known. */
size_t	account_unseen(struct pop3_listing *l);

/* The limits part of account_select, on the messages marked fetch. */
size_t	account_limit(const struct conf_account *a, struct pop3_listing *l,
	    bool verbose_skips, unsigned long *skipped);

/* Is the seen message m due for deletion at `now` (DESIGN §3 step 7)?
 * Without a UIDL, only when the account deletes everything. */
bool	account_want_delete(const struct conf_account *a, struct seen *s,
	    const struct pop3_msg *m, time_t now);

#endif
