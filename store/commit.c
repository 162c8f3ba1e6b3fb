/*
 * commit.c - the group commit (doc/DESIGN.md §3 step 6: a record pending,
 * b make visible, c mark seen) and recovery (step 2), over the seen-list
 * and the delivery seam.
 */
#include "config.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "commit.h"
#include "log.h"
#include "params.h"
#include "thread.h"
#include "xmalloc.h"

/* Finished deliveries awaiting their group commit. */
struct batch {
	struct deliver_msg	*m[SEEN_BATCH];
	const void		*tag[SEEN_BATCH];
	char			*key[SEEN_BATCH];
	size_t			 n;
	uint64_t		 bytes;
};

/* A refusal the target reported, to be told on the run's thread. */
struct refusal {
	const void		*tag;
	struct pf_error		 why;
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
	/* A settling batch now seen, and refusals, not told yet: the
	 * callbacks run on the run's thread (tell), never in the job. */
	struct batch		 told;
	struct seen_entry	 told_e[SEEN_BATCH];
	bool			 told_placed[SEEN_BATCH];
	struct refusal		*refused;
	size_t			 nrefused;
	/* The committer (doc/DESIGN.md §3.4): job_b's steps 6a-c run in
	 * job_thread while the run receives the next messages; at most one
	 * job, waited for before the next and before anything else reads
	 * the seen-list, the target or the batches it holds. */
	bool			 background;
	bool			 job_running;
	pthread_t		 job_thread;
	struct batch		 job_b;
	int			 job_rc;
	struct pf_error		 job_err;
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

void
commit_queue_background(struct commit_queue *q, bool on)
{
	q->background = on;
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
			q->refused = xreallocarray(q->refused, q->nrefused + 1,
			    sizeof(*q->refused));
			q->refused[q->nrefused++] = (struct refusal){
				.tag = b->tag[i], .why = *res[j].why };
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

/* Empty a placed batch b whose rows e hold copies of the locations (the
 * settling batch, or the decided one waiting in q->told). */
static void
placed_clear(struct batch *b, struct seen_entry *e)
{
	size_t i;

	for (i = 0; i < b->n; i++)
		free((char *)(uintptr_t)e[i].location);
	batch_clear(b);
}

static void
settling_clear(struct commit_queue *q)
{
	placed_clear(&q->settling, q->settling_e);
}

/* The settling batch is decided (what it placed is seen): it waits in
 * q->told for tell, and the settling batch is empty. */
static void
settling_told(struct commit_queue *q)
{
	size_t n = q->settling.n;

	if (q->told.n > 0)
		fatalx("settling_told: the last decided batch was not told");
	q->told = q->settling;
	memcpy(q->told_e, q->settling_e, n * sizeof(q->settling_e[0]));
	memcpy(q->told_placed, q->settling_placed,
	    n * sizeof(q->settling_placed[0]));
	q->settling.n = 0;
	q->settling.bytes = 0;
}

/*
 * On the run's thread, no job running: tell the refusals, and what the
 * decided settling batch placed (now seen), then forget both.
 */
static void
tell(struct commit_queue *q)
{
	struct batch *b = &q->told;
	size_t i;

	for (i = 0; i < q->nrefused; i++) {
		if (q->failed != NULL)
			q->failed(q->ctx, q->refused[i].tag,
			    &q->refused[i].why);
		else
			log_warnx("%s", q->refused[i].why.what);
	}
	free(q->refused);
	q->refused = NULL;
	q->nrefused = 0;
	for (i = 0; i < b->n; i++)
		if (q->told_placed[i])
			q->placed(q->ctx, b->tag[i], &b->key[i],
			    q->told_e[i].location, q->told_e[i].size);
	placed_clear(&q->told, q->told_e);
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

/* The committer's thread: steps 6a-c for job_b. */
static void *
job_main(void *arg)
{
	struct commit_queue *q = arg;

	q->job_rc = batch_commit_deferred(q, &q->job_b, &q->job_err);
	return NULL;
}

/* Wait for the job in flight, if any: 0, or -1 with err set if it failed
 * (then told once).  The caller tells what it decided (tell). */
static int
job_wait(struct commit_queue *q, struct pf_error *err)
{
	if (!q->job_running)
		return 0;
	pthread_join(q->job_thread, NULL);
	q->job_running = false;
	if (q->job_rc == 0)
		return 0;
	q->job_rc = 0;
	*err = q->job_err;
	return -1;
}

/*
 * Hand b (full, deferrable, no job running) to the committer and empty
 * it: in the background where `later` (the caller does not wait for it
 * at once), the run allows it (commit_queue_background), b is small and
 * a thread starts; else at once.
 */
static int
job_start(struct commit_queue *q, struct batch *b, bool later,
    struct pf_error *err)
{
	pthread_attr_t attr;
	int rc;

	q->job_b = *b;
	b->n = 0;
	b->bytes = 0;
	if (later && q->background &&
	    q->job_b.bytes <= COMMIT_BACKGROUND_BYTES &&
	    pthread_attr_init(&attr) == 0) {
		(void)pthread_attr_setstacksize(&attr, COMMIT_THREAD_STACK);
		rc = pf_thread_start(&q->job_thread, &attr, job_main, q);
		pthread_attr_destroy(&attr);
		if (rc == 0) {
			q->job_running = true;
			return 0;
		}
		log_debug("cannot start the committer's thread: committing "
		    "in turn");
	}
	rc = batch_commit_deferred(q, &q->job_b, err);
	tell(q);
	return rc;
}

/*
 * Steps 6a-c for the deliveries in b; on failure they are thrown away and
 * the pending rows let the next run decide.  A target whose deliveries
 * recovery cannot find (an MDA) takes them one at a time, each recorded
 * as soon as it is in: a kill then repeats only the one being handed
 * over (DESIGN §10.3).  `later`: the caller goes on receiving, so a
 * deferrable b may go to the committer (job_start).
 */
static int
batch_commit(struct commit_queue *q, struct batch *b, bool later,
    struct pf_error *err)
{
	struct seen_entry entries[SEEN_BATCH];
	bool placed[SEEN_BATCH];
	time_t now = time(NULL);
	size_t i, n = b->n, step, done = 0;
	int rc;

	if (n == 0)
		return 0;
	if (deferrable(q)) {
		/* The job before b decides first (its batch is the one that
		 * settles with b); one that failed fails b too. */
		rc = job_wait(q, err);
		tell(q);
		if (rc == -1) {
			batch_clear(b);
			return -1;
		}
		return job_start(q, b, later, err);
	}
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
	tell(q);
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
	return batch_commit(q, b, true, err) == -1 ? -1 : 1;
}

bool
commit_queue_holds(const struct commit_queue *q, const char *key)
{
	size_t i, j;

	if (q->job_running)
		fatalx("commit_queue_holds while a commit runs in the "
		    "background");
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
	struct pf_error ignored;
	int rc = 0;

	/* Waited for at once: no thread for these. */
	if (batch_commit(q, &q->batch[q->filling ^ 1], false, err) == -1 ||
	    batch_commit(q, &q->batch[q->filling], false, err) == -1)
		rc = -1;
	/* A failed job has finished its settling batch itself. */
	if (job_wait(q, rc == -1 ? &ignored : err) == -1)
		rc = -1;
	tell(q);
	if (rc == 0) {
		rc = settling_finish(q, err);
		tell(q);
	}
	return rc;
}

void
commit_queue_free(struct commit_queue **q_r)
{
	struct commit_queue *q = *q_r;
	struct pf_error ignored;

	if (q == NULL)
		return;
	/* Not told: the run is over; what a job decided is in the
	 * seen-list all the same. */
	(void)job_wait(q, &ignored);
	placed_clear(&q->told, q->told_e);
	free(q->refused);
	batch_clear(&q->job_b);
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
