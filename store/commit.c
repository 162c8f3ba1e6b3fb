/*
 * commit.c - the group commit (doc/DESIGN.md §3 step 6: a record pending,
 * b make visible, c mark seen) and recovery (step 2), over the seen-list
 * and the delivery seam.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "commit.h"
#include "log.h"
#include "params.h"
#include "xmalloc.h"

/* Finished deliveries awaiting their group commit. */
struct batch {
	struct deliver_msg	*m[SEEN_BATCH];
	const void		*tag[SEEN_BATCH];
	char			*key[SEEN_BATCH];
	size_t			 n;
	uint64_t		 bytes;
};

/* batch[filling] gets new messages; the other one is full, or empty. */
struct commit_queue {
	struct seen		*seen;
	struct deliver		*target;
	commit_placed_fn	*placed;
	commit_failed_fn	*failed;
	void			*ctx;
	struct batch		 batch[2];
	unsigned		 filling;
	/* A batch the target placed with deliver_commit_deferred: its rows
	 * are pending until a deliver_settle has made it durable; the next
	 * batch's pending rows are recorded in the same transaction that
	 * marks it seen (doc/DESIGN.md §3.1). */
	struct batch		 settling;
	struct seen_entry	 settling_e[SEEN_BATCH];
	bool			 settling_placed[SEEN_BATCH];
};

struct commit_queue *
commit_queue_new(struct seen *s, struct deliver *t, commit_placed_fn *placed,
    void *ctx)
{
	struct commit_queue *q = xcalloc(1, sizeof(*q));

	q->seen = s;
	q->target = t;
	q->placed = placed;
	q->ctx = ctx;
	return q;
}

void
commit_queue_on_failure(struct commit_queue *q, commit_failed_fn *failed)
{
	q->failed = failed;
}

/* May the batches be placed with deliver_commit_deferred?  Not where each
 * message is recorded alone (unfindable), nor without a settle. */
static bool
deferrable(const struct commit_queue *q)
{
	return q->target->be->settle != NULL && !q->target->be->unfindable;
}

/* Free b's deliveries (those not committed go) and keys; b is empty. */
static void
batch_clear(struct batch *b)
{
	size_t i;

	for (i = 0; i < b->n; i++) {
		deliver_free(&b->m[i]);
		free(b->key[i]);
		b->key[i] = NULL;
	}
	b->n = 0;
	b->bytes = 0;
}

/*
 * Step 6b for the deliveries b->m[from..from+n) (the discarded ones have
 * none): placed[i] says whether message i is in; refusals are told to
 * q->failed.  deferred: placed, but durably so only at the next settle.
 */
static int
batch_place(struct commit_queue *q, struct batch *b, size_t from, size_t n,
    bool *placed, bool deferred, struct pf_error *err)
{
	struct deliver_msg *m[SEEN_BATCH];
	struct deliver_result *res;
	size_t i, k = 0, j;
	int rc;

	for (i = from; i < from + n; i++)
		if (b->m[i] != NULL)
			m[k++] = b->m[i];
		else
			placed[i] = true;	/* discarded: decided */
	if (k == 0)
		return 0;
	res = xcalloc(k, sizeof(*res));
	rc = deferred ? deliver_commit_deferred(q->target, m, k, res, err) :
	    deliver_commit(q->target, m, k, res, err);
	for (i = from, j = 0; rc == 0 && i < from + n; i++) {
		if (b->m[i] == NULL)
			continue;
		placed[i] = res[j].status == DELIVER_PLACED;
		/* DELIVER_TAKEN: DESIGN §7, it will be fetched again. */
		if (res[j].status == DELIVER_FAILED) {
			if (q->failed != NULL)
				q->failed(q->ctx, b->tag[i], res[j].why);
			else
				log_warnx("%s", res[j].why->what);
		}
		j++;
	}
	deliver_results_free(res, k);
	free(res);
	return rc;
}

/* Fill entries[0..b->n) for b's rows. */
static void
batch_entries(struct commit_queue *q, const struct batch *b,
    struct seen_entry *entries, time_t now)
{
	size_t i;

	for (i = 0; i < b->n; i++)
		entries[i] = (struct seen_entry){
			.uidl = b->key[i],
			.location = b->m[i] != NULL ?
			    deliver_location(b->m[i]) : "",
			.target = deliver_target(q->target),
			.size = b->m[i] != NULL ? deliver_size(b->m[i]) : 0,
			.fetched = now,
		};
}

/* Empty the settling batch (its locations are copies). */
static void
settling_clear(struct commit_queue *q)
{
	size_t i;

	for (i = 0; i < q->settling.n; i++)
		free((char *)(uintptr_t)q->settling_e[i].location);
	batch_clear(&q->settling);
}

/* Tell what the settling batch placed (now seen), and empty it. */
static void
settling_told(struct commit_queue *q)
{
	struct batch *b = &q->settling;
	size_t i;

	for (i = 0; i < b->n; i++)
		if (q->settling_placed[i])
			q->placed(q->ctx, b->tag[i], &b->key[i],
			    q->settling_e[i].location, q->settling_e[i].size);
	settling_clear(q);
}

/*
 * The settling batch alone (the last one, or before a failure): make its
 * names durable, then mark it seen in a durable transaction.  On failure
 * its rows stay pending and the next run's recovery decides (its files
 * are in the target).
 */
static int
settling_finish(struct commit_queue *q, struct pf_error *err)
{
	struct batch *b = &q->settling;
	int rc = 0;

	if (b->n == 0)
		return 0;
	if (deliver_settle(q->target, NULL, 0, err) == -1 ||
	    seen_pending_resolve(q->seen, q->settling_e, b->n,
	    q->settling_placed, err) == -1) {
		rc = -1;
		settling_clear(q);
	}
	settling_told(q);
	return rc;
}

/*
 * Steps 6a-c for the deliveries in b where the target defers its
 * durability (doc/DESIGN.md §3.1): settle (b's files and the settling
 * batch's names durable), one transaction marking the settling batch seen
 * and recording b pending, then b is placed and becomes the settling
 * batch.  On failure b is thrown away, the pending rows let the next run
 * decide, and a settling batch is finished alone if it can be.
 */
static int
batch_commit_deferred(struct commit_queue *q, struct batch *b,
    struct pf_error *err)
{
	struct seen_entry entries[SEEN_BATCH];
	struct deliver_msg *m[SEEN_BATCH];
	bool placed[SEEN_BATCH];
	struct pf_error ignored;
	size_t i, k = 0, n = b->n;

	if (n == 0)
		return 0;
	batch_entries(q, b, entries, time(NULL));
	for (i = 0; i < n; i++) {
		placed[i] = false;
		if (b->m[i] != NULL)
			m[k++] = b->m[i];
	}
	if (deliver_settle(q->target, m, k, err) == -1)
		goto fail;
	if (seen_pending_advance(q->seen, q->settling_e, q->settling.n,
	    q->settling_placed, entries, n, err) == -1)
		goto fail;
	settling_told(q);
	if (batch_place(q, b, 0, n, placed, true, err) == -1) {
		batch_clear(b);
		return -1;
	}
	/* b becomes the settling batch: keys and tags, and copies of the
	 * locations; the deliveries are done with. */
	for (i = 0; i < n; i++) {
		entries[i].location = xstrdup(entries[i].location);
		deliver_free(&b->m[i]);
	}
	q->settling = *b;
	memcpy(q->settling_e, entries, n * sizeof(entries[0]));
	memcpy(q->settling_placed, placed, n * sizeof(placed[0]));
	b->n = 0;
	b->bytes = 0;
	return 0;

fail:
	/* The settling batch's names may be durable by an fsync of its
	 * directory still: then it is seen, as it would have been before
	 * this batch. */
	(void)settling_finish(q, &ignored);
	batch_clear(b);
	return -1;
}

/*
 * Steps 6a-c for the deliveries in b; on failure they are thrown away and
 * the pending rows let the next run decide.  A target whose deliveries
 * recovery cannot find (an MDA) takes them one at a time, each recorded
 * as soon as it is in: a kill then repeats only the one being handed
 * over (DESIGN §10.3).
 */
static int
batch_commit(struct commit_queue *q, struct batch *b, struct pf_error *err)
{
	struct seen_entry entries[SEEN_BATCH];
	bool placed[SEEN_BATCH];
	time_t now = time(NULL);
	size_t i, n = b->n, step, done = 0;
	int rc;

	if (n == 0)
		return 0;
	if (deferrable(q))
		return batch_commit_deferred(q, b, err);
	batch_entries(q, b, entries, now);
	for (i = 0; i < n; i++)
		placed[i] = false;
	step = q->target->be->unfindable ? 1 : n;
	for (i = 0; i < n; i += step) {
		/* a: pending, b: placed, c: seen */
		if (seen_pending_add(q->seen, entries + i, step, err) == -1 ||
		    batch_place(q, b, i, step, placed, false, err) == -1 ||
		    seen_pending_resolve(q->seen, entries + i, step,
		    placed + i, err) == -1)
			break;
		done = i + step;
	}
	rc = done == n ? 0 : -1;
	/* What is recorded is told, even when a later step failed. */
	for (i = 0; i < done; i++)
		if (placed[i])
			q->placed(q->ctx, b->tag[i], &b->key[i],
			    entries[i].location, entries[i].size);
	batch_clear(b);
	return rc;
}

int
commit_queue_add(struct commit_queue *q, struct deliver_msg *m, char *key,
    const void *tag, struct pf_error *err)
{
	struct batch *b = &q->batch[q->filling];

	b->m[b->n] = m;
	b->tag[b->n] = tag;
	b->key[b->n] = key;
	b->n++;
	b->bytes += m != NULL ? deliver_size(m) : 0;
	if (b->n < SEEN_BATCH && b->bytes < SEEN_BATCH_BYTES)
		return 0;
	/* b is full: commit the one before it, whose files have had the
	 * time of a batch to reach the disk, and fill that one next; b waits
	 * until it is full in turn. */
	q->filling ^= 1;
	b = &q->batch[q->filling];
	if (b->n == 0)
		return 0;
	return batch_commit(q, b, err) == -1 ? -1 : 1;
}

bool
commit_queue_holds(const struct commit_queue *q, const char *key)
{
	size_t i, j;

	for (j = 0; j < 2; j++)
		for (i = 0; i < q->batch[j].n; i++)
			if (strcmp(q->batch[j].key[i], key) == 0)
				return true;
	for (i = 0; i < q->settling.n; i++)
		if (strcmp(q->settling.key[i], key) == 0)
			return true;
	return false;
}

int
commit_queue_flush(struct commit_queue *q, struct pf_error *err)
{
	if (batch_commit(q, &q->batch[q->filling ^ 1], err) == -1 ||
	    batch_commit(q, &q->batch[q->filling], err) == -1)
		return -1;
	return settling_finish(q, err);
}

void
commit_queue_free(struct commit_queue **q_r)
{
	struct commit_queue *q = *q_r;

	if (q == NULL)
		return;
	batch_clear(&q->batch[0]);
	batch_clear(&q->batch[1]);
	settling_clear(q);	/* placed, pending: recovery decides */
	free(q);
	*q_r = NULL;
}

/* ---- recovery ---- */

/*
 * Look for pending deliveries idx[0..n) of e, all made into `target`: the
 * account's (`here`, open already), or one it had before its
 * configuration was edited (DESIGN §7); a target that is gone holds none.
 */
static int
find_in(struct deliver *here, const char *target, const struct seen_entry *e,
    const size_t *idx, size_t n, bool *found, struct pf_error *err)
{
	struct deliver *t = here, *other = NULL;
	const char **locations;
	bool *hit;
	size_t i;
	int rc;

	/* A discard (empty location) was decided when it was recorded. */
	for (i = 0; i < n; i++)
		if (e[idx[i]].location[0] == '\0')
			found[idx[i]] = true;
	if (strcmp(target, deliver_target(here)) != 0) {
		if (deliver_open_recorded(target, &other, err) == -1)
			return -1;
		if (other == NULL)
			return 0;
		t = other;
	}
	locations = xcalloc(n, sizeof(*locations));
	hit = xcalloc(n, sizeof(*hit));
	for (i = 0; i < n; i++)
		locations[i] = e[idx[i]].location;
	rc = deliver_find(t, locations, n, hit, err);
	for (i = 0; rc == 0 && i < n; i++)
		found[idx[i]] = found[idx[i]] || hit[i];
	/* The killed run's leftovers there: nobody else would take them
	 * (the account's own target is cleaned by commit_recover). */
	if (rc == 0 && other != NULL)
		rc = deliver_clean(other, NULL, err);
	deliver_close(&other);
	free(locations);
	free(hit);
	return rc;
}

int
commit_recover(struct seen *s, struct deliver *t, const char *name,
    struct pf_error *err)
{
	struct seen_entry *entries = NULL;
	const char *here = deliver_target(t);
	size_t *idx = NULL;
	bool *found = NULL, *done = NULL;
	size_t i, j, k, n = 0, removed = 0;
	int rc = -1;

	if (seen_pending_load(s, &entries, &n, err) == -1)
		return -1;
	if (n > 0) {
		idx = xcalloc(n, sizeof(*idx));
		found = xcalloc(n, sizeof(*found));
		done = xcalloc(n, sizeof(*done));
		/* One pass per target named by the rows (usually one). */
		for (i = 0; i < n; i++) {
			const char *target = entries[i].target != NULL ?
			    entries[i].target : here;

			if (done[i])
				continue;
			for (j = i, k = 0; j < n; j++) {
				const char *tj = entries[j].target != NULL ?
				    entries[j].target : here;

				if (!done[j] && strcmp(tj, target) == 0) {
					idx[k++] = j;
					done[j] = true;
				}
			}
			if (find_in(t, target, entries, idx, k, found,
			    err) == -1)
				goto done;
		}
		if (seen_pending_resolve(s, entries, n, found, err) == -1)
			goto done;
		for (i = 0; i < n; i++)
			log_debug("%s: recovered an interrupted delivery of "
			    "UIDL %s: %s%s", name, entries[i].uidl, found[i] ?
			    "it reached " : "it will be fetched again",
			    found[i] ? (entries[i].target != NULL ?
			    entries[i].target : here) : "");
	}
	if (deliver_clean(t, &removed, err) == -1)
		goto done;
	if (removed > 0)
		log_debug("%s: removed %zu leftover(s) of interrupted "
		    "deliveries from %s", name, removed, here);
	rc = 0;
done:
	seen_entries_free(&entries, n);
	free(idx);
	free(found);
	free(done);
	return rc;
}
