/*
 * run.c - one account's fetch, in the order of the delivery and recovery
 * protocol of doc/DESIGN.md §3, whose step numbers the comments use:
 * 1 lock, 2 open the seen-list and recover (in a thread, beside 3),
 * 3 connect and log in, 4 list and mark what is missing, 5 receive,
 * 6 group commit, 7 DELE and QUIT.  Where each part lives is in
 * doc/DESIGN.md §9: the session (session.c), what to fetch (account.c),
 * the group commit and recovery (store/commit.c), the delivery seam
 * (store/deliver.h), what is printed (report.c), --dry-run (dryrun.c).
 * A failed account prints its error line instead of its summary; what was
 * fully received before the failure is still committed, so a connection
 * lost in message 200 does not cost messages 1-199.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "account.h"
#include "commit.h"
#include "conf.h"
#include "crypto.h"
#include "deliver.h"
#include "dryrun.h"
#include "error.h"
#include "filter.h"
#include "lock.h"
#include "log.h"
#include "params.h"
#include "pop3.h"
#include "report.h"
#include "run.h"
#include "seen.h"
#include "session.h"
#include "spool.h"
#include "thread.h"
#include "xmalloc.h"

struct run {
	const struct conf		*conf;
	const struct conf_account	*acct;
	const struct run_options	*opts;
	const char			*name;

	struct pf_lock		*lock;
	struct seen		*seen;
	struct deliver		*target;
	struct session		 s;
	struct pop3_listing	*listing;
	bool			 no_uidl;	/* DESIGN §6: digests, delete all */
	struct seen_who		 who;
	struct crypto_sha256_ctx *digest;	/* of the message being received */
	struct pf_error		 refused;	/* the first refused message */
	bool			 any_refused;

	/* the message being received, and those awaiting their commit */
	struct deliver_msg	*cur;
	struct commit_queue	*queue;

	/* with a filter (DESIGN §10.1): the message being received as the
	 * filter will read it, and those in the filter, oldest first */
	struct filter		*filter;
	struct spool		*spool;
	struct held		*held[FILTER_QUEUE_MAX];
	size_t			 nheld;
	unsigned long		 discarded;

	/* Received: header parts fixed for the run */
	char			 localhost[256];

	/* numbers to DELE, and their seen-list keys (forgotten once QUIT
	 * has committed the deletions) */
	unsigned		*dele;
	char			**dele_key;
	size_t			 ndele, dele_cap;	/* grown as needed: keep
						   mode has none (memory) */

	/* without UIDL: copies of a message still queued, deleted once it
	 * is committed (dup_dele) */
	unsigned		*dup;
	char			**dup_key;
	size_t			 ndup, dup_cap;

	struct seen_run_stats	 stats;
	struct progress		 progress;
};

/* A message received whole, in the filter. */
struct held {
	struct filter_job	 job;
	const struct pop3_msg	*m;
	char			*key;
	struct deliver_msg	*d;
};

/* ---- step 5: the sink pop3_retr_each streams into ---- */

/* Message data: into the delivery, and for the filter into its spool. */
static int
put(struct run *r, const char *buf, size_t len, struct pf_error *err)
{
	if (r->spool != NULL && spool_write(r->spool, buf, len, err) == -1)
		return -1;
	return deliver_write(r->cur, buf, len, err);
}

/* Write the Received: trace field (popfetch.conf(5)) at the top of the message. */
static int
write_received(struct run *r, const struct pop3_msg *m, struct pf_error *err)
{
	char date[64], line[1024 + POP3_UIDL_MAX], ub[POP3_UIDL_BUF];
	const char *uidl = pop3_msg_uidl(m, ub);
	time_t t = time(NULL);
	struct tm tm;
	int n;

	localtime_r(&t, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z", &tm);
	if (uidl != NULL)
		n = snprintf(line, sizeof(line), "Received: from %s ([%s]) by "
		    "%s (popfetch %s) with %s id %s; %s\n", r->acct->host,
		    conn_peer_addr(r->s.conn), r->localhost, PACKAGE_VERSION,
		    r->s.with, uidl, date);
	else
		n = snprintf(line, sizeof(line), "Received: from %s ([%s]) by "
		    "%s (popfetch %s) with %s; %s\n", r->acct->host,
		    conn_peer_addr(r->s.conn), r->localhost, PACKAGE_VERSION,
		    r->s.with, date);
	if (n < 0 || (size_t)n >= sizeof(line))
		return pf_error_set(err, PF_FAIL_INTERNAL,
		    "Received: header too long");
	return put(r, line, (size_t)n, err);
}

static int
sink_begin(void *ctx, const struct pop3_msg *m, struct pf_error *err)
{
	struct run *r = ctx;

	if (deliver_begin(r->target, &r->cur, err) == -1)
		return -1;
	r->progress.cur = 0;
	if (r->filter != NULL) {
		spool_free(&r->spool);
		r->spool = spool_new();
	}
	if (r->no_uidl) {
		crypto_sha256_free(&r->digest);
		r->digest = crypto_sha256_begin();
	}
	if (r->acct->received_header && write_received(r, m, err) == -1)
		return -1;
	return 0;
}

static int
sink_data(void *ctx, const char *buf, size_t len, struct pf_error *err)
{
	struct run *r = ctx;

	r->progress.cur += len;
	if (r->digest != NULL)
		crypto_sha256_update(r->digest, buf, len);
	if (put(r, buf, len, err) == -1)
		return -1;
	progress_draw(&r->progress, false);
	return 0;
}

/* The message's seen-list key: its UIDL, or (DESIGN §6) the digest of
 * what it holds as received, before the Received: field. */
static char *
message_key(struct run *r, const struct pop3_msg *m)
{
	unsigned char md[CRYPTO_SHA256_LEN];
	char *key;
	size_t o = strlen(SEEN_DIGEST_PREFIX);

	if (!r->no_uidl) {
		char ub[POP3_UIDL_BUF];

		return xstrdup(pop3_msg_uidl(m, ub));
	}
	crypto_sha256_end(&r->digest, md);
	key = xmalloc(SEEN_DIGEST_KEY_LEN + 1);
	memcpy(key, SEEN_DIGEST_PREFIX, o);
	crypto_hex(md, sizeof(md), key + o);
	return key;
}

/* Room for one more in a pair of arrays (numbers, keys) of *cap. */
static void
pair_reserve(unsigned **nums, char ***keys, size_t n, size_t *cap)
{
	if (n < *cap)
		return;
	*cap = *cap == 0 ? 64 : *cap * 2;
	*nums = xreallocarray(*nums, *cap, sizeof(**nums));
	*keys = xreallocarray(*keys, *cap, sizeof(**keys));
}

/* Queue message number for DELE, with its key (owned by the list). */
static void
dele_add(struct run *r, unsigned number, char *key)
{
	pair_reserve(&r->dele, &r->dele_key, r->ndele, &r->dele_cap);
	r->dele[r->ndele] = number;
	r->dele_key[r->ndele] = key;
	r->ndele++;
}

/*
 * A message the server, the filter or the delivery target refused: named,
 * and left on the server; the run goes on and ends with the first such
 * error (DESIGN §5.2, §10), or with a command that cannot be run (78)
 * before any other.
 */
static void
note_refused(struct run *r, const struct pop3_msg *m, const char *what,
    const struct pf_error *why)
{
	char buf[PF_ERROR_WHAT_MAX + PF_ERROR_SERVER_MAX + 8];
	char ub[POP3_UIDL_BUF];
	struct pf_error e;

	pf_error_set(&e, why->category, "message %u (UIDL %s) %s: %s",
	    m->number, pop3_msg_uidl_or(m, ub, "none"), what, why->what);
	memcpy(e.server, why->server, sizeof(e.server));
	if (r->any_refused && !(why->category == PF_FAIL_CONFIG &&
	    r->refused.category != PF_FAIL_CONFIG)) {
		log_errx("%s: %s", r->name, pf_error_format(&e, buf,
		    sizeof(buf)));
		return;
	}
	if (r->any_refused)
		log_errx("%s: %s", r->name, pf_error_format(&r->refused, buf,
		    sizeof(buf)));
	r->refused = e;
	r->any_refused = true;
}

/* Step 6, for each message the group commit placed (commit_placed_fn). */
static void
placed(void *ctx, const void *tag, char **key, const char *location,
    uint64_t size)
{
	struct run *r = ctx;
	const struct pop3_msg *m = tag;

	if (log_enabled(LOG_LEVEL_DEBUG)) {
		char ub[POP3_UIDL_BUF];

		log_debug("%s: message %u (UIDL %s, %" PRIu64 " bytes) -> %s",
		    r->name, m->number, pop3_msg_uidl_or(m, ub, "none"), size,
		    location[0] != '\0' ? location : "discarded");
	}
	r->stats.fetched++;
	r->stats.bytes += size;
	/* In the seen-list now: due for DELE (step 7). */
	r->listing->msgs[m - r->listing->msgs].known = true;
	if (location[0] == '\0')
		r->discarded++;
	/* Without UIDL (delete = true): delete what was delivered. */
	if (r->no_uidl) {
		dele_add(r, m->number, *key);
		*key = NULL;
	}
}

/* Step 6, for each message the delivery target refused (an MDA's exit
 * status): it stays on the server (commit_failed_fn). */
static void
commit_failed(void *ctx, const void *tag, const struct pf_error *why)
{
	note_refused(ctx, tag, "not delivered", why);
}

/*
 * A stable id for the message with seen-list key `key` in this mailbox
 * (X-Popfetch-Id, DESIGN §10.3): the same message has the same id in
 * every run, so an MDA can drop a repeat.
 */
static void
message_id(const struct run *r, const char *key, char *out, size_t size)
{
	unsigned char md[CRYPTO_SHA256_LEN];
	char *in, hex[2 * 16 + 1];

	in = xasprintf("%s@%s:%u\n%s", r->acct->user, r->acct->host,
	    r->acct->port, key);
	crypto_sha256(in, strlen(in), md);
	free(in);
	crypto_hex(md, 16, hex);
	snprintf(out, size, "%s@popfetch", hex);
}

/* Label finished delivery d (NULL: discarded) and queue it for the group
 * commit; d and key are the queue's from now on. */
static int
enqueue(struct run *r, const struct pop3_msg *m, struct deliver_msg *d,
    char *key, const char *folder, struct pf_error *err)
{
	char id[64], ub[POP3_UIDL_BUF];
	struct deliver_label l = {
		.folder = folder, .account = r->name,
		.uidl = pop3_msg_uidl(m, ub), .id = id,
		.timeout = r->acct->timeout,
	};
	int rc;

	message_id(r, key, id, sizeof(id));
	if (d != NULL && deliver_label(d, &l, err) == -1) {
		deliver_free(&d);
		free(key);
		return -1;
	}
	rc = commit_queue_add(r->queue, d, key, m, err);
	if (rc == 1)
		progress_draw(&r->progress, true);
	return rc == -1 ? -1 : 0;
}

/* Free h and what it still holds (a delivery not committed goes). */
static void
held_free(struct held *h)
{
	deliver_free(&h->d);
	free(h->key);
	free(h);
}

/* Act on the filter's verdict for h (DESIGN §10.1); what goes on to the
 * group commit is taken out of h, the rest the caller frees with it. */
static int
verdict(struct run *r, struct held *h, struct pf_error *err)
{
	struct deliver_msg *d = h->d;
	char *key = h->key;

	switch (h->job.verdict) {
	case FILTER_DELIVER:
		h->d = NULL;
		h->key = NULL;
		return enqueue(r, h->m, d, key, h->job.folder, err);
	case FILTER_DISCARD:
		log_debug("%s: message %u discarded by the filter", r->name,
		    h->m->number);
		h->key = NULL;
		return enqueue(r, h->m, NULL, key, NULL, err);
	case FILTER_REFUSED:
		break;
	}
	note_refused(r, h->m, "not delivered", &h->job.why);
	return 0;
}

/*
 * Take the filter's verdicts, oldest first, as far as they are in: all of
 * them with `all`, waiting; otherwise waiting only while the filter holds
 * FILTER_QUEUE_MAX messages.  After a failure the rest are dropped.
 */
static int
take_filtered(struct run *r, bool all, struct pf_error *err)
{
	struct filter_job *j;
	struct held *h;
	int rc = 0;

	while (r->nheld > 0) {
		j = filter_take(r->filter, all || r->nheld >= FILTER_QUEUE_MAX);
		if (j == NULL)
			break;
		h = j->owner;
		memmove(r->held, r->held + 1, (r->nheld - 1) * sizeof(*r->held));
		r->nheld--;
		if (rc == 0)
			rc = verdict(r, h, err);
		held_free(h);
	}
	return rc;
}

/* Is key among the messages received in this run and not committed yet? */
static bool
in_flight(const struct run *r, const char *key)
{
	size_t i;

	for (i = 0; i < r->nheld; i++)
		if (strcmp(r->held[i]->key, key) == 0)
			return true;
	return commit_queue_holds(r->queue, key);
}

static int
sink_end(void *ctx, const struct pop3_msg *m, uint64_t octets,
    struct pf_error *err)
{
	struct run *r = ctx;
	struct deliver_msg *d;
	struct held *h;
	char *key;

	(void)octets;
	key = message_key(r, m);
	if (r->no_uidl && (seen_contains(r->seen, key) || in_flight(r, key))) {
		/* DESIGN §6: delivered before (an earlier run's DELE was not
		 * committed), or a copy of one in this run: not again.
		 * Deleted once that delivery is recorded: now, or after the
		 * queue is committed (dup_dele). */
		log_debug("%s: message %u has the content of one delivered "
		    "before: not delivered again", r->name, m->number);
		deliver_free(&r->cur);
		spool_free(&r->spool);
		r->progress.cur = 0;
		if (seen_contains(r->seen, key))
			dele_add(r, m->number, key);
		else {
			pair_reserve(&r->dup, &r->dup_key, r->ndup,
			    &r->dup_cap);
			r->dup[r->ndup] = m->number;
			r->dup_key[r->ndup] = key;
			r->ndup++;
		}
		return 0;
	}
	if (deliver_finish(r->cur, err) == -1) {
		free(key);
		return -1;
	}
	r->progress.done++;
	r->progress.bytes += deliver_size(r->cur);
	r->progress.cur = 0;
	d = r->cur;
	r->cur = NULL;
	if (r->filter == NULL)
		return enqueue(r, m, d, key, NULL, err);
	/* DESIGN §10.1: the filter runs while the next messages arrive. */
	h = xcalloc(1, sizeof(*h));
	h->m = m;
	h->key = key;
	h->d = d;
	h->job.spool = r->spool;
	/* The key is the UIDL when there is one (message_key), and lives
	 * with h: the listing may hold it only inline. */
	h->job.uidl = r->no_uidl ? NULL : key;
	h->job.owner = h;
	r->spool = NULL;
	r->held[r->nheld++] = h;
	filter_submit(r->filter, &h->job);
	return take_filtered(r, false, err);
}

/* Copies (same digest) of messages that were still queued: delete
 * those whose original is now recorded; the others stay for next run. */
static void
dup_dele(struct run *r)
{
	size_t i;

	for (i = 0; i < r->ndup; i++) {
		if (seen_contains(r->seen, r->dup_key[i]))
			dele_add(r, r->dup[i], r->dup_key[i]);
		else
			free(r->dup_key[i]);
		r->dup_key[i] = NULL;
	}
	r->ndup = 0;
}

/* DESIGN §5: a message the server refuses is named, left there, and the
 * rest goes on; the run ends with the first refusal's error. */
static int
sink_refused(void *ctx, const struct pop3_msg *m, const struct pf_error *why,
    struct pf_error *err)
{
	(void)err;
	note_refused(ctx, m, "refused by the server", why);
	return 0;
}

/*
 * Take every verdict still due from the filter, then commit what is
 * queued, and show it.  The commit is made even when taking a verdict
 * failed: what arrived whole is kept (DESIGN §3.1).  The first error
 * goes to err.
 */
static int
commit_all(struct run *r, struct pf_error *err)
{
	struct pf_error later;
	int rc = take_filtered(r, true, err);

	if (commit_queue_flush(r->queue, rc == -1 ? &later : err) == -1) {
		if (rc == -1)
			log_warnx("%s: %s", r->name, later.what);
		rc = -1;
	}
	progress_draw(&r->progress, true);
	return rc;
}

/* ---- step 2: the local start of a run ---- */

/*
 * Step 2 runs beside step 3 and is `ready` once all that can fail for a
 * local reason is done and whether the seen-list is empty is known.  No
 * set of known UIDLs is loaded: the listing is marked from the seen-list
 * in step 4 (doc/DESIGN.md §5.4).
 */
struct prep {
	struct run	*r;
	time_t		 start;
	bool		 threaded;	/* given to the worker */
	pthread_mutex_t	 mu;
	pthread_cond_t	 cond;
	bool		 ready;		/* under mu: any_seen, run_begun set */
	bool		 done;		/* under mu: rc and err final */
	bool		 any_seen;	/* the seen-list has UIDLs */
	bool		 run_begun;	/* seen_run_begin done: end it too */
	int		 rc;		/* -1: err says why */
	struct pf_error	 err;
};

static void
prep_set_ready(struct prep *p)
{
	pthread_mutex_lock(&p->mu);
	p->ready = true;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->mu);
}

/* Open the seen-list (read-only for --dry-run); else record the run, open
 * the delivery target and recover.  Ready after that. */
static int
prep_local(struct prep *p)
{
	struct run *r = p->r;
	const char *dir = r->conf->state_dir, *kind, *target;

	if (r->opts->dry_run)
		return seen_open(dir, &r->who, SEEN_READ_ONLY, &r->seen,
		    &p->err) == -1 ? -1 :
		    seen_any(r->seen, &p->any_seen, &p->err);
	if (seen_open_unloaded(dir, &r->who, SEEN_READ_WRITE, &r->seen,
	    &p->err) == -1 ||
	    seen_run_begin(r->seen, p->start, &p->err) == -1)
		return -1;
	p->run_begun = true;
	target = account_target(r->acct, &kind);
	if (deliver_open(kind, target, DELIVER_CREATE, &r->target,
	    &p->err) == -1) {
		char what[PF_ERROR_WHAT_MAX];

		/* Which setting: mkdir(/x) alone does not say. */
		memcpy(what, p->err.what, sizeof(what));
		if (p->err.category == PF_FAIL_IO &&
		    strcmp(kind, "maildir") == 0)
			pf_error_set(&p->err, PF_FAIL_IO, "maildir %s: %s",
			    target, what);
		return -1;
	}
	if (commit_recover(r->seen, r->target, r->name, &p->err) == -1 ||
	    seen_any(r->seen, &p->any_seen, &p->err) == -1)
		return -1;
	prep_set_ready(p);
	return 0;
}

static void
prep_main(struct prep *p)
{
	int rc = prep_local(p);

	/* After the unlock p is the main thread's again: not touched. */
	pthread_mutex_lock(&p->mu);
	p->rc = rc;
	p->done = true;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->mu);
}

/*
 * The worker that runs step 2.  Within run_series_begin/end (accounts one
 * after the other, -j 1) one thread serves every account: made at the
 * first, it waits for the next job between accounts; a thread per account
 * cost a clone, its stack's pages faulted in again and a join each time.
 * Outside a series (one account fetched alone) it ends with its one
 * job.  Every signal is blocked in it (lib/thread.h).
 */
static struct {
	pthread_mutex_t	 mu;
	pthread_cond_t	 cond;
	pthread_t	 thread;
	bool		 series;	/* within run_series_begin/end */
	bool		 running;	/* thread made, not yet joined */
	bool		 quit;		/* under mu: end once idle */
	struct prep	*job;		/* under mu: the next step 2, or NULL */
} worker = {
	.mu = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER,
};

static void *
worker_main(void *arg)
{
	(void)arg;
	for (;;) {
		struct prep *p;

		pthread_mutex_lock(&worker.mu);
		while (worker.job == NULL && !worker.quit)
			pthread_cond_wait(&worker.cond, &worker.mu);
		p = worker.job;
		worker.job = NULL;
		if (p == NULL || !worker.series)
			worker.quit = true;
		pthread_mutex_unlock(&worker.mu);
		if (p != NULL)
			prep_main(p);
		pthread_mutex_lock(&worker.mu);
		if (worker.quit) {
			pthread_mutex_unlock(&worker.mu);
			return NULL;
		}
		pthread_mutex_unlock(&worker.mu);
	}
}

static bool
worker_series(void)
{
	bool series;

	pthread_mutex_lock(&worker.mu);
	series = worker.series;
	pthread_mutex_unlock(&worker.mu);
	return series;
}

/* Join a worker that has ended or is told to end (it is idle). */
static void
worker_stop(void)
{
	if (!worker.running)
		return;
	pthread_mutex_lock(&worker.mu);
	worker.quit = true;
	pthread_cond_signal(&worker.cond);
	pthread_mutex_unlock(&worker.mu);
	pthread_join(worker.thread, NULL);
	worker.running = false;
	worker.quit = false;
}

/* Hand p to the worker, making it if there is none; false if no thread
 * can be had. */
static bool
worker_give(struct prep *p)
{
	if (!worker.running) {
		worker.quit = false;
		worker.job = p;
		if (pf_thread_start(&worker.thread, NULL, worker_main,
		    NULL) != 0) {
			worker.job = NULL;
			return false;
		}
		worker.running = true;
		return true;
	}
	pthread_mutex_lock(&worker.mu);
	worker.job = p;
	pthread_cond_signal(&worker.cond);
	pthread_mutex_unlock(&worker.mu);
	return true;
}

void
run_series_begin(void)
{
	seen_reuse_begin();
	pthread_mutex_lock(&worker.mu);
	worker.series = true;
	pthread_mutex_unlock(&worker.mu);
}

void
run_series_end(void)
{
	pthread_mutex_lock(&worker.mu);
	worker.series = false;
	pthread_mutex_unlock(&worker.mu);
	worker_stop();
	seen_reuse_end();
}

/*
 * Start step 2 in the worker, or do it here if no thread can be had.
 */
static void
prep_begin(struct prep *p)
{
	pf_error_clear(&p->err);
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cond, NULL);
	p->threaded = worker_give(p);
	if (!p->threaded) {
		log_debug("%s: no thread for the local start: in turn",
		    p->r->name);
		p->rc = prep_local(p);
		p->ready = p->done = true;
	}
}

/*
 * Has step 2 failed?  With `wait`, first wait for its first part: then
 * false means that p->any_seen and p->run_begun are set.
 */
static bool
prep_failed(struct prep *p, bool wait)
{
	bool failed;

	pthread_mutex_lock(&p->mu);
	while (wait && !p->ready && !p->done)
		pthread_cond_wait(&p->cond, &p->mu);
	failed = p->done && p->rc == -1;
	pthread_mutex_unlock(&p->mu);
	return failed;
}

/* Wait for all of step 2: p->rc and p->err are final.  Outside a series
 * the worker ends with it. */
static void
prep_end(struct prep *p)
{
	if (p->threaded) {
		pthread_mutex_lock(&p->mu);
		while (!p->done)
			pthread_cond_wait(&p->cond, &p->mu);
		pthread_mutex_unlock(&p->mu);
		p->threaded = false;
		if (!worker_series())
			worker_stop();
	}
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->mu);
}

/* ---- steps 4-7 ---- */

/* Step 4's update of the seen-list: what the listing lacks is marked
 * missing, and forgotten once missing long enough (DESIGN §4); and in
 * the same pass, the listed messages the seen-list knows are marked
 * (no seen set is held, DESIGN §5.4). */
static int
mark_missing(struct run *r, time_t now, struct pf_error *err)
{
	struct listing_keys lk = { .at = NULL };
	bool *known = NULL;
	size_t i, pruned = 0;
	int64_t forget = (int64_t)r->acct->forget_after_days * 86400;
	int rc;

	if (r->no_uidl) {
		/* Digests are never listed: they age from their first run
		 * here, at least a day (DESIGN §6). */
		if (forget < 86400)
			forget = 86400;
		seen_keys_array(&lk.keys, NULL, 0);
	} else {
		listing_keys_init(&lk, r->listing);
		known = xcalloc(lk.keys.n + 1, sizeof(*known));
	}
	rc = seen_prune_match(r->seen, &lk.keys, now, forget, known, &pruned,
	    err);
	for (i = 0; rc == 0 && i < lk.keys.n; i++)
		if (known[i])
			r->listing->msgs[lk.at != NULL ? lk.at[i] : i].known =
			    true;
	free(known);
	listing_keys_free(&lk);
	if (rc == 0 && pruned > 0)
		log_debug("%s: forgot %zu message(s) missing from the listings "
		    "for %u day(s)", r->name, pruned, r->acct->forget_after_days);
	return rc;
}

/* Step 7: QUIT, and what its +OK commits.  Keep mode (nothing to DELE)
 * does not wait for the reply. */
static int
finish_session(struct run *r, bool keep, struct pf_error *err)
{
	struct pf_error ferr;

	if (keep && r->ndele == 0) {
		if (pop3_quit(r->s.pop3, POP3_QUIT_NOWAIT, err) == -1)
			log_debug("%s: QUIT: %s", r->name, err->what);
		return 0;
	}
	if (pop3_quit(r->s.pop3, POP3_QUIT_COMMIT, err) == -1) {
		if (r->ndele > 0)
			return -1;	/* deletions not confirmed */
		log_debug("%s: QUIT: %s", r->name, err->what);
		return 0;
	}
	r->stats.deleted = r->ndele;
	/* Gone from the server: nothing to remember them by (DESIGN §4).
	 * A failure here costs nothing but the room: they age out. */
	if (seen_forget(r->seen, (const char *const *)r->dele_key, r->ndele,
	    &ferr) == -1)
		log_warnx("%s: %s", r->name, ferr.what);
	return 0;
}

/* Steps 4-7 on a logged-in session. */
static int
fetch_mail(struct run *r, struct pf_error *err)
{
	const struct conf_account *a = r->acct;
	struct pop3_sink sink = {
		sink_begin, sink_data, sink_end, r, sink_refused,
	};
	time_t now = time(NULL);
	size_t i, n = 0;
	bool keep;
	int rc = -1;

	if (!r->listing->has_uidl) {
		if (!a->delete)
			return pf_error_set(err, PF_FAIL_PROTO, "the server "
			    "does not support UIDL, so popfetch cannot tell "
			    "new messages from old; set delete = true to fetch "
			    "and delete every message");
		/* DESIGN §6: fetch and delete every message, each known by
		 * its digest. */
		r->no_uidl = true;
	}
	/* No seen set in memory (DESIGN §5.4): mark_missing marks the
	 * listing from one streamed query, and the run marks what it commits
	 * (placed).  Only the lookups by digest and delete_after_days's ages
	 * need the set. */
	if (mark_missing(r, now, err) == -1)
		return -1;
	if ((r->no_uidl || a->delete_after_days > 0) &&
	    seen_load(r->seen, err) == -1)
		return -1;

	/* Sizes (max_size, progress, runaway bound) if anything is new. */
	n = account_unseen(r->listing);
	if (n > 0 && !r->listing->sizes_known &&
	    pop3_list_sizes(r->s.pop3, r->listing, err) == -1)
		goto done;
	n = account_limit(a, r->listing, true, &r->stats.skipped);
	r->progress.total = n;
	r->queue = commit_queue_new(r->seen, r->target, placed, r);
	commit_queue_on_failure(r->queue, commit_failed);
	/* Without UIDL, sink_end reads the seen-list and the queue while
	 * messages arrive: the commits stay on this thread. */
	commit_queue_background(r->queue, !r->no_uidl);
	if (a->filter != NULL)
		r->filter = filter_new(a->filter, r->name, a->timeout);
	progress_draw(&r->progress, true);

	/* Keep mode deletes nothing: QUIT can go as soon as the last
	 * message is in, and its reply need not be waited for. */
	keep = !a->delete && a->delete_after_days == 0;
	if (keep)
		(void)pop3_quit(r->s.pop3, POP3_QUIT_AFTER_RETR, err);
	if (n > 0 && pop3_retr_listed(r->s.pop3, r->listing, &sink,
	    err) == -1) {
		struct pf_error cerr;

		/* Keep what arrived whole; drop the message in progress. */
		deliver_free(&r->cur);
		spool_free(&r->spool);
		if (commit_all(r, &cerr) == -1)
			log_warnx("%s: %s", r->name, cerr.what);
		goto done;
	}
	if (commit_all(r, err) == -1)
		goto done;

	/* Step 7: DELE what is safely delivered and due. */
	dup_dele(r);
	if (!r->no_uidl) {
		for (i = 0; i < r->listing->count; i++) {
			const struct pop3_msg *m = &r->listing->msgs[i];
			char ub[POP3_UIDL_BUF];

			if (m->known && account_want_delete(a, r->seen, m,
			    now))
				dele_add(r, m->number,
				    xstrdup(pop3_msg_uidl(m, ub)));
		}
	}
	if (r->ndele > 0 &&
	    pop3_dele_each(r->s.pop3, r->dele, r->ndele, err) == -1)
		goto done;
	if (finish_session(r, keep, err) == -1)
		goto done;
	/* DESIGN §5: the rest went through; now the refusal counts. */
	if (r->any_refused) {
		*err = r->refused;
		goto done;
	}
	rc = 0;
done:
	return rc;
}

/* Free everything a run holds; the lock last. */
static void
run_cleanup(struct run *r)
{
	size_t i;

	deliver_free(&r->cur);
	spool_free(&r->spool);
	/* Messages still in the filter go as the queue's do: not kept. */
	for (; r->nheld > 0; r->nheld--) {
		held_free(filter_take(r->filter, true)->owner);
	}
	filter_free(&r->filter);
	commit_queue_free(&r->queue);
	for (i = 0; i < r->ndele; i++)
		free(r->dele_key[i]);
	free(r->dele_key);
	free(r->dele);
	for (i = 0; i < r->ndup; i++)
		free(r->dup_key[i]);
	free(r->dup_key);
	free(r->dup);
	crypto_sha256_free(&r->digest);
	pop3_listing_free(&r->listing);
	session_close(&r->s, false);
	deliver_close(&r->target);
	seen_close(&r->seen);
	lock_release(&r->lock);
}

int
run_fetch(const struct conf *conf, const struct conf_account *acct,
    const struct run_options *opts)
{
	struct run r = {
		.conf = conf, .acct = acct, .opts = opts, .name = acct->name,
		.s = { .acct = acct, .state_dir = conf->state_dir,
		    .with = "POP3", .resume_readonly = opts->dry_run },
		.progress = { .name = acct->name, .on = opts->progress },
	};
	struct pf_error err;
	struct prep prep = { .r = &r, .start = time(NULL) };
	bool run_begun = false, sizes;
	int code, crc;

	pf_error_clear(&err);
	r.progress.t0 = report_clock();
	if (gethostname(r.localhost, sizeof(r.localhost)) == -1)
		strcpy(r.localhost, "localhost");
	r.localhost[sizeof(r.localhost) - 1] = '\0';

	account_who(conf, opts->owners, acct, &r.who);
	if (lock_acquire(conf->state_dir, acct->name, &r.lock, &err) == -1) {
		/* -q: an account being fetched by another popfetch (a cron run
		 * overlapping a long one) is no news: 75 without the line. */
		if (err.category == PF_FAIL_TEMP && log_verbosity() < 0) {
			run_cleanup(&r);
			return pf_exit_code(err.category);
		}
		goto fail;
	}
	/*
	 * Steps 2 and 3 side by side; a failure of step 2 is
	 * reported first, as if it had run alone, and once it is known it
	 * stops step 3 from going further.  A password_command (it may ask
	 * for a passphrase) waits for step 2's first part: a run that cannot
	 * go on costs no prompt.  The secret first: a failing
	 * password_command costs no connection.
	 */
	prep_begin(&prep);
	crc = 0;
	if (!prep_failed(&prep, acct->password_command != NULL ||
	    acct->oauth2_provider != CONF_OAUTH2_NONE))
		crc = session_secret(&r.s, &err);
	if (crc == 0 && !prep_failed(&prep, false))
		crc = session_connect(&r.s, &err);
	/* Authentication waits for step 2's local part (doc/DESIGN.md §3). */
	if (crc == 0 && !prep_failed(&prep, true))
		crc = session_login(&r.s, &err);
	prep_end(&prep);
	run_begun = prep.run_begun;
	if (prep.rc == -1) {
		err = prep.err;
		goto fail;
	}
	if (crc == -1)
		goto fail;
	/* DESIGN §5: with this server's UIDLs in the seen-list, -ERR to UIDL
	 * is a bad moment, not a server without UIDL. */
	if (prep.any_seen)
		pop3_expect_uidl(r.s.pop3);
	/* A mailbox fetched before usually has little or nothing new: UIDL
	 * alone, and LIST only if something is new (fetch_mail).  A first
	 * run needs every size: both in one round trip. */
	sizes = opts->dry_run || !prep.any_seen;
	if (!sizes) {
		if (pop3_list_uidls(r.s.pop3, &r.listing, &err) == -1)
			goto fail;
	} else if (pop3_list_messages(r.s.pop3, &r.listing, &err) == -1)
		goto fail;
	if (opts->dry_run) {
		if (account_mark_known(r.listing, r.seen, &err) == -1 ||
		    dry_run(&r.s, r.seen, r.listing, r.progress.t0, &err) == -1)
			goto fail;
		session_close(&r.s, true);
		run_cleanup(&r);
		return 0;
	}
	if (fetch_mail(&r, &err) == -1)
		goto fail;

	if (seen_run_end(r.seen, time(NULL), &r.stats, 0, &err) == -1)
		goto fail;
	/* The summary replaces the progress line (log.c erases it in the
	 * same write); the erase after it is for -q, which hides it. */
	report_summary(r.name, r.stats.fetched, r.stats.skipped,
	    r.stats.deleted, acct->filter != NULL ? (long)r.discarded : -1,
	    r.stats.bytes, report_clock() - r.progress.t0, false);
	progress_erase(&r.progress);
	run_cleanup(&r);
	return 0;

fail:
	code = report_error(r.name, &err);
	progress_erase(&r.progress);
	if (run_begun && r.seen != NULL) {
		struct pf_error ignored;

		(void)seen_run_end(r.seen, time(NULL), &r.stats, code,
		    &ignored);
	}
	run_cleanup(&r);
	return code;
}

