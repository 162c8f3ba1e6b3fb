/*
 * seen.h - the seen-list: which messages of a mailbox were delivered, the
 * deliveries an interrupted run left undecided, and a short history of runs.
 * A domain API over the state database (state_dir/popfetch.db); SQL,
 * schema and pragmas stay inside seen.c, the only SQLite user.  The design
 * note at the head of seen.c gives the order of operations and what
 * survives a crash at each step.
 *
 * A seen-list belongs to an account, found by the account's name (and,
 * for a renamed account or a database from before accounts had their own
 * state, by user, host and port): doc/DESIGN.md §2.  Two configured
 * accounts never share one.  No password or token ever reaches this API.
 *
 * Used error categories: PF_FAIL_IO (74) for every database failure
 * (message: the file, what we were doing, SQLite's words), PF_FAIL_TEMP
 * (75) when the database stayed locked by another process beyond
 * SEEN_BUSY_TIMEOUT_MS, PF_FAIL_INTERNAL (70) for calls in the wrong order,
 * and for write calls on a read-only or NULL seen-list.
 */
#ifndef POPFETCH_SEEN_H
#define POPFETCH_SEEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "error.h"

struct seen;

enum seen_mode {
	SEEN_READ_WRITE,	/* fetch: creates state_dir and the database */
	SEEN_READ_ONLY,		/* --dry-run: creates nothing, changes nothing */
};

/*
 * The key of a message known by its content, on a server without UIDL
 * (doc/DESIGN.md §6): SEEN_DIGEST_PREFIX and the SHA-256 in hex.  A UIDL
 * never holds a space, so the two kinds of key cannot meet.
 */
#define SEEN_DIGEST_PREFIX	"sha256 "
#define SEEN_DIGEST_KEY_LEN	(sizeof(SEEN_DIGEST_PREFIX) - 1 + 64)

/* One account, as the seen-list identifies it (doc/DESIGN.md §2). */
struct seen_owner {
	const char	*account;	/* the account's name: the identity */
	const char	*user;
	const char	*host;
	unsigned	 port;
};

/*
 * The account whose seen-list to open, among every configured account (in
 * config order), so that state another configured account owns is never
 * taken over.  Borrowed for the duration of the call.
 */
struct seen_who {
	const struct seen_owner	*all;
	size_t			 n;
	size_t			 self;	/* index into all */
};

/* One delivery: what the group commit records and recovery returns. */
struct seen_entry {
	const char	*uidl;		/* the key: UIDL (untrusted!) or digest */
	const char	*location;	/* where in its target (store/deliver.h;
					 * a Maildir file name); "": discarded
					 * by a filter, nothing delivered */
	const char	*target;	/* the delivery target it went to (a
					 * Maildir's path); NULL: unknown (a row
					 * from before schema 2) */
	uint64_t	 size;		/* bytes as delivered */
	time_t		 fetched;	/* when it was fetched */
};

/* Counters of one run, for seen_run_end. */
struct seen_run_stats {
	unsigned long	 fetched;	/* new messages delivered */
	unsigned long	 skipped;	/* left on the server (max_size, max_messages) */
	unsigned long	 deleted;	/* DELEs acknowledged by QUIT */
	uint64_t	 bytes;		/* bytes delivered in this run */
};

/* What `status` shows for one account. */
struct seen_status {
	bool		 ever_run;	/* false: "never run" (no database, or
					 * no run for this mailbox); all else
					 * is then zero, last_exit -1 */
	uint64_t	 seen;		/* UIDLs in the seen-list now */
	uint64_t	 bytes;		/* bytes ever delivered; pruning keeps it */
	uint64_t	 pending;	/* deliveries left undecided */
	time_t		 last_start;	/* start of the last run; 0 if none */
	time_t		 last_end;	/* its end; 0 if it did not finish */
	int		 last_exit;	/* its exit code; -1 if it did not finish */
};

/*
 * The key "user@host", host lower-cased (ASCII), under which popfetch kept
 * state before schema 2.  Caller frees.
 */
char	*seen_mailbox_key(const char *user, const char *host);

/*
 * Open the seen-list of account who->all[who->self] in
 * state_dir/popfetch.db (found or taken over as doc/DESIGN.md §2 says; a
 * read-write open records the take-over) and load
 * its known UIDLs into memory (one query; 20,000 take milliseconds).
 *
 * SEEN_READ_WRITE creates state_dir (0700, with parents) and the database
 * (0600) when missing, sets WAL mode and synchronous=FULL, and migrates an
 * older schema forward in one transaction.  SEEN_READ_ONLY creates nothing:
 * with no database the seen-list is simply empty, and every write call
 * fails with PF_FAIL_INTERNAL.
 *
 * On success *s_r is set (free with seen_close) and 0 is returned;
 * otherwise -1 with err set: PF_FAIL_IO (not writable, not a database, a
 * schema newer than this popfetch), PF_FAIL_TEMP (locked).
 */
int	seen_open(const char *state_dir, const struct seen_who *who,
	    enum seen_mode mode, struct seen **s_r, struct pf_error *err);

/*
 * seen_open without loading the known UIDLs, for a caller that needs them
 * only later (fetch: recovery and seen_any first, seen_load while the
 * server is busy), or never (fetch: seen_match marks the listing, and
 * no set is held; doc/DESIGN.md §5.4).  Until seen_load, seen_contains,
 * seen_lookup and seen_count must not be called (a fatal error); the
 * other calls work.  Same errors as seen_open.
 */
int	seen_open_unloaded(const char *state_dir, const struct seen_who *who,
	    enum seen_mode mode, struct seen **s_r, struct pf_error *err);

/* Load the known UIDLs from the database, replacing the in-memory set.
 * Errors: PF_FAIL_IO, PF_FAIL_TEMP. */
int	seen_load(struct seen *s, struct pf_error *err);

/* Has the account any seen UIDL (digests do not count)?  One indexed query
 * when the set is not loaded.  Errors: PF_FAIL_IO, PF_FAIL_TEMP. */
int	seen_any(struct seen *s, bool *any_r, struct pf_error *err);

/*
 * Close the database and free everything; clears *s_r.  NULL is fine.  The
 * database stays in WAL mode with its -wal and -shm files (no checkpoint
 * at close: doc/DESIGN.md §3.4), so SEEN_READ_ONLY opens and
 * seen_status_read find them and create none.  Between seen_reuse_begin
 * and seen_reuse_end an idle read-write connection is kept, not closed.
 */
void	seen_close(struct seen **s_r);

/*
 * Between seen_reuse_begin and seen_reuse_end, seen_close keeps an idle
 * read-write connection (no transaction open, no call on it failed) and
 * the next read-write seen_open of the same database in this process
 * takes it instead of opening one: for the accounts of a sequential run
 * (fetch -j 1).  Each seen-list is still its own account's (its row,
 * its transactions); seen_reuse_end closes the kept connection.  Not
 * across fork: a forked child opens its own.
 */
void	seen_reuse_begin(void);
void	seen_reuse_end(void);

/* The database's path (valid until seen_close). */
const char *seen_path(const struct seen *s);

/*
 * Is `uidl` in the seen-list?  O(log n) over the set loaded by seen_open
 * or seen_load and kept equal to the database by seen_pending_resolve,
 * seen_prune and seen_forget; two comparisons when UIDLs are
 * looked up in the set's (strcmp) order.  When known and fetched_r is not
 * NULL, *fetched_r gets the time it was first fetched (for
 * delete_after_days).
 */
bool	seen_contains(struct seen *s, const char *uidl);
bool	seen_lookup(struct seen *s, const char *uidl, time_t *fetched_r);

/*
 * The n unique-ids of a listing, read one at a time: a listing keeps the
 * short ones inline, not as strings (doc/DESIGN.md §5.4).  key(ctx, i,
 * buf) is the i-th (i < n), NUL-terminated, either decoded into buf
 * (UIDL_INLINE_BUF octets, lib/params.h) or in memory that lives as long
 * as the listing.
 */
struct seen_keys {
	const char	*(*key)(const void *ctx, size_t i, char *buf);
	const void	*ctx;
	size_t		 n;
};

/* keys over an array of n strings (which must outlive them). */
void	seen_keys_array(struct seen_keys *keys, const char *const *a,
	    size_t n);

/*
 * Which of the keys of a listing (repeats allowed) are in the
 * seen-list: known[i] is set true for each that is, and left as it was
 * for the others.  Loaded or not, one query streamed in the primary key's
 * order, merged with the keys sorted the same way (SQLite's BINARY
 * collation is memcmp order): no set in memory, no query per key.  With
 * no database (read-only) nothing is known.  Errors: PF_FAIL_IO,
 * PF_FAIL_TEMP.
 */
int	seen_match(struct seen *s, const struct seen_keys *keys,
	    bool *known, struct pf_error *err);

/* Number of UIDLs in the in-memory set. */
size_t	seen_count(const struct seen *s);

/*
 * Recovery: the deliveries of this mailbox that a killed run left pending.
 * *entries_r (caller frees with seen_entries_free; NULL when *n_r is 0)
 * gets them, strings owned by the array.
 */
int	seen_pending_load(struct seen *s, struct seen_entry **entries_r,
	    size_t *n_r, struct pf_error *err);
void	seen_entries_free(struct seen_entry **entries_r, size_t n);

/*
 * Decide pending deliveries in one durable transaction (doc/DESIGN.md §3):
 * at recovery (step 2, delivered[i] from deliver_find) and at
 * the group commit (step 6c, delivered[i] from deliver_commit).  Where
 * delivered[i] is true the key becomes seen (the account's byte total
 * grows by its size); otherwise the pending row is dropped and the
 * message will be fetched again.  A key without a pending row is
 * PF_FAIL_INTERNAL (wrong order), and nothing is changed.
 */
int	seen_pending_resolve(struct seen *s, const struct seen_entry *entries,
	    size_t n, const bool *delivered, struct pf_error *err);

/*
 * The group commit's steps c and a of two batches in one durable
 * transaction (doc/DESIGN.md §3.1): decide n pending rows as
 * seen_pending_resolve does, and record nmore new pending ones as
 * seen_pending_add does.  A pending row that `more` names again is
 * replaced only after the rows of `entries` are decided.
 */
int	seen_pending_advance(struct seen *s, const struct seen_entry *entries,
	    size_t n, const bool *delivered, const struct seen_entry *more,
	    size_t nmore, struct pf_error *err);

/*
 * Group commit, step a: record `n` finished deliveries (not yet visible) as
 * pending, in one durable transaction.  Must precede deliver_commit.
 */
int	seen_pending_add(struct seen *s, const struct seen_entry *entries,
	    size_t n, struct pf_error *err);

/*
 * After a successful listing of the `n` listed UIDLs (doc/DESIGN.md §4):
 * a known UIDL not listed is marked missing since `now` (if it was not
 * yet), a listed one is no longer missing, and one missing since
 * `forget_after` seconds or more is forgotten; one transaction, none when
 * every known UIDL is listed and none was missing.  *pruned_r (may be
 * NULL) gets the number forgotten.  The byte total is kept.
 */
int	seen_prune(struct seen *s, const char *const *listed, size_t n,
	    time_t now, int64_t forget_after, size_t *pruned_r,
	    struct pf_error *err);

/* seen_prune and seen_match in one pass over the rows (a fetch's step 4):
 * known[i] is set true for each listed key i in the seen-list, as it was
 * before the prune (what the prune forgets is not listed). */
int	seen_prune_match(struct seen *s, const struct seen_keys *listed,
	    time_t now, int64_t forget_after, bool *known, size_t *pruned_r,
	    struct pf_error *err);

/*
 * Forget the `n` keys at once, in one transaction: their DELE was
 * acknowledged by QUIT (doc/DESIGN.md §4).  Unknown keys are ignored.
 */
int	seen_forget(struct seen *s, const char *const *keys, size_t n,
	    struct pf_error *err);

/*
 * Record the start of a run (kept until seen_run_end fills it in; the last
 * SEEN_RUN_HISTORY runs of a mailbox are kept), and its end.  A run that is
 * killed stays without an end.  seen_run_end without seen_run_begin is
 * PF_FAIL_INTERNAL.
 */
int	seen_run_begin(struct seen *s, time_t start, struct pf_error *err);
int	seen_run_end(struct seen *s, time_t end,
	    const struct seen_run_stats *stats, int exit_code,
	    struct pf_error *err);

/*
 * For `status`: read account who->all[who->self]'s figures from
 * state_dir/popfetch.db, read-only.  With no database (or no state for
 * this account) *out says "never run" (ever_run false, zeros) and 0 is
 * returned; nothing is created.  Errors as for seen_open.
 */
int	seen_status_read(const char *state_dir, const struct seen_who *who,
	    struct seen_status *out, struct pf_error *err);

/* A seen-list that no configured account owns (or would take over). */
struct seen_orphan {
	char			*label;	/* its account's name, or "user@host"
					 * for state from before schema 2 */
	struct seen_status	 st;
};

/*
 * For `status`: every seen-list in state_dir/popfetch.db that none of
 * who->all[0..n) owns, read-only; who->self is not used.  *list_r (free
 * with seen_orphans_free) gets *n_r of them, in the order they were made.
 */
int	seen_orphans_read(const char *state_dir, const struct seen_who *who,
	    struct seen_orphan **list_r, size_t *n_r, struct pf_error *err);
void	seen_orphans_free(struct seen_orphan **list_r, size_t n);

/* The SQLite version in use, for --version ("3.40.1"). */
const char *seen_library_version(void);

#endif
