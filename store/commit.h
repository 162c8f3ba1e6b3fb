/*
 * commit.h - the group commit and recovery: the order of writes to the
 * seen-list and the delivery target that makes every delivery exactly once
 * (doc/DESIGN.md §3, steps 2 and 6).  The run hands finished messages to a
 * commit queue and never writes pending rows or makes messages visible
 * itself.
 */
#ifndef POPFETCH_COMMIT_H
#define POPFETCH_COMMIT_H

#include <stdbool.h>
#include <stdint.h>

#include "deliver.h"
#include "error.h"
#include "seen.h"

struct commit_queue;

/*
 * Told of each message a group commit placed (it is now visible and seen):
 * the tag given to commit_queue_add, its key (which the callee may take,
 * setting *key NULL), its location and size.
 */
typedef void commit_placed_fn(void *ctx, const void *tag, char **key,
    const char *location, uint64_t size);

/* Told of each message the target refused (an MDA's exit status): it is
 * not seen, and will be fetched again. */
typedef void commit_failed_fn(void *ctx, const void *tag,
    const struct pf_error *why);

/*
 * A queue of finished deliveries into target t, recorded in seen-list s,
 * in two batches: one fills while the other's files reach the disk.  Each
 * placed message is told to placed(ctx, ...).  Free with commit_queue_free.
 */
struct commit_queue *commit_queue_new(struct seen *s, struct deliver *t,
	    commit_placed_fn *placed, void *ctx);

/* Tell failed() of each message the target refuses (default: a warning). */
void	commit_queue_on_failure(struct commit_queue *q,
	    commit_failed_fn *failed);

/*
 * Let the queue commit a full batch in a thread of its own while the
 * caller receives the next messages (doc/DESIGN.md §3.4), where the target
 * defers durability (a Maildir).  Only for a caller that, until
 * commit_queue_flush, calls neither the seen-list nor commit_queue_holds,
 * and uses the target only to begin, write, label, finish and free
 * deliveries (the Maildir backend allows those beside a commit: see
 * struct maildir).  Callbacks are made on the caller's thread, within
 * commit_queue_add and commit_queue_flush, a batch later than without.
 */
void	commit_queue_background(struct commit_queue *q, bool on);

/*
 * Queue finished message m under its seen-list key, with the caller's tag
 * (all three owned by the queue from now on; the tag is only passed back).
 * m NULL records a message discarded on purpose (a filter's verdict): it
 * becomes seen with no delivery, and placed() gets location "".
 * When the filling batch is full (SEEN_BATCH messages or SEEN_BATCH_BYTES)
 * the other one is committed and then fills, while the full one waits for
 * its turn (its files reach the disk meanwhile).  Returns 1 if messages
 * were committed, 0 if not, or -1 with err set: the batch that failed is
 * thrown away, and its pending rows let the next run decide.
 */
int	commit_queue_add(struct commit_queue *q, struct deliver_msg *m,
	    char *key, const void *tag, struct pf_error *err);

/* Is key among the queued deliveries, not committed yet? */
bool	commit_queue_holds(const struct commit_queue *q, const char *key);

/* Commit both batches, the older first.  Returns 0, or -1 with err set. */
int	commit_queue_flush(struct commit_queue *q, struct pf_error *err);

/* Free the queue and clear *q_r; NULL is fine.  What it still holds is
 * thrown away, never made visible. */
void	commit_queue_free(struct commit_queue **q_r);

/*
 * Step 2: decide every pending delivery of seen-list s, each looked for in
 * the target it went to (t, the account's, or one it had before: a target
 * that is gone holds none), and clean what interrupted runs left in t.
 * `name` prefixes the debug lines.  Returns 0, or -1 with err set.
 */
int	commit_recover(struct seen *s, struct deliver *t, const char *name,
	    struct pf_error *err);

#endif
