/*
 * run.c - one account's run, `check` and `status`.
 *
 * A fetch follows the delivery and recovery protocol of doc/DESIGN.md §3,
 * whose step numbers the comments below use: 1 lock, 2 open the seen-list
 * and recover (in a thread, beside 3), 3 connect and log in, 4 list and
 * mark what is missing, 5 receive into tmp/, 6 group commit (a pending,
 * b rename into new/, c seen), 7 DELE and QUIT.  A failed account prints
 * its error line instead of its summary; whatever was fully received
 * before the failure is still committed, so a connection lost in message
 * 200 does not cost messages 1-199.
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

#include "conf.h"
#include "crypto.h"
#include "error.h"
#include "escape.h"
#include "lock.h"
#include "log.h"
#include "maildir.h"
#include "net.h"
#include "params.h"
#include "pop3.h"
#include "run.h"
#include "secret.h"
#include "seen.h"
#include "thread.h"
#include "xmalloc.h"

/* Finished deliveries awaiting their group commit (step 6). */
struct batch {
	struct maildir_delivery	**d;
	const struct pop3_msg	**m;
	char			**key;	/* the seen-list key: UIDL or digest */
	size_t			 n;
	uint64_t		 bytes;
};

struct run {
	const struct conf		*conf;
	const struct conf_account	*acct;
	const struct run_options	*opts;
	const char			*name;

	struct pf_lock		*lock;
	struct seen		*seen;
	struct maildir		*md;
	struct conn		*conn;
	struct pop3		*pop3;
	char			*secret;
	struct pop3_listing	*listing;
	bool			 no_uidl;	/* DESIGN §6: digests, delete all */
	struct seen_owner	*owners;	/* every account, for the seen-list */
	struct seen_who		 who;
	struct crypto_sha256_ctx *digest;	/* of the message being received */
	struct pf_error		 refused;	/* the first refused message */
	bool			 top_refused;	/* dry run: no CAPA, TOP said -ERR */
	struct tls_cert_info	*rejected;	/* check: a certificate refused */
	bool			 any_refused;

	/* the message being received, and the batches awaiting commit:
	 * batch[filling] gets new messages, the other one is full */
	struct maildir_delivery	*cur;
	struct batch		 batch[2];
	unsigned		 filling;

	/* Received: header parts fixed for the run */
	char			 localhost[256];
	const char		*with;

	/* numbers to DELE, and their seen-list keys (forgotten once QUIT
	 * has committed the deletions) */
	unsigned		*dele;
	char			**dele_key;
	size_t			 ndele;

	/* without UIDL: copies of a message still in a batch, deleted once
	 * it is committed (dup_dele) */
	unsigned		*dup;
	char			**dup_key;
	size_t			 ndup;

	/* counters */
	struct seen_run_stats	 stats;
	size_t			 to_fetch;
	unsigned long		 received;	/* for progress: commits lag */
	uint64_t		 recv_bytes;
	double			 t0;
	double			 last_draw;
	uint64_t		 cur_bytes;
	bool			 progress_drawn;
};

static double
now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* "0 B", "512 B", "1.2 kB", "3.4 MB", "5.6 GB" (SI units). */
static const char *
human_bytes(uint64_t n, char *buf, size_t size)
{
	if (n < 1000)
		snprintf(buf, size, "%" PRIu64 " B", n);
	else if (n < 1000 * 1000)
		snprintf(buf, size, "%.1f kB", (double)n / 1e3);
	else if (n < (uint64_t)1000 * 1000 * 1000)
		snprintf(buf, size, "%.1f MB", (double)n / 1e6);
	else
		snprintf(buf, size, "%.1f GB", (double)n / 1e9);
	return buf;
}

/* Print the account's error line: "popfetch: NAME: what: server's words". */
static int
report(const char *name, const struct pf_error *err)
{
	char buf[PF_ERROR_WHAT_MAX + PF_ERROR_SERVER_MAX + 8];

	log_errx("%s: %s", name, pf_error_format(err, buf, sizeof(buf)));
	return pf_exit_code(err->category);
}

/* ---- progress line (terminal) ---- */

static void
progress_erase(struct run *r)
{
	if (r->progress_drawn)
		log_progress_clear();
	r->progress_drawn = false;
}

static void
progress_draw(struct run *r, bool force)
{
	char line[512], b1[32], b2[32];
	double t = now_mono(), el = t - r->t0;
	uint64_t bytes = r->recv_bytes + r->cur_bytes;

	if (!r->opts->progress || (!force && t - r->last_draw < PROGRESS_INTERVAL))
		return;
	r->last_draw = t;
	snprintf(line, sizeof(line), "%s: %lu/%zu messages, %s, %s/s, "
	    "%.1f s", r->name, r->received, r->to_fetch,
	    human_bytes(bytes, b1, sizeof(b1)),
	    human_bytes(el > 0 ? (uint64_t)((double)bytes / el) : 0, b2,
	    sizeof(b2)), el);
	log_progress(line);
	r->progress_drawn = true;
}

/* ---- connection and login ---- */

/* The account's secret: its password, or its password_command's output. */
static int
get_secret(struct run *r, struct pf_error *err)
{
	const struct conf_account *a = r->acct;

	return secret_get(a->password, a->password_command, a->timeout,
	    &r->secret, err);
}

/* Connect, TLS as configured, greeting, CAPA, STLS: everything up to the
 * login. */
static int
connect_session(struct run *r, struct pf_error *err)
{
	const struct conf_account *a = r->acct;
	struct tls_settings ts = {
		.host = a->host,
		.verify = a->tls_verify,
		.ca_file = a->tls_ca_file,
		.has_fingerprint = a->has_fingerprint,
	};

	memcpy(ts.fingerprint, a->tls_fingerprint, sizeof(ts.fingerprint));
	ts.rejected = r->rejected;
	if (conn_open(a->host, a->port, a->timeout, &r->conn, err) == -1)
		return -1;
	if (a->tls == CONF_TLS_IMPLICIT &&
	    conn_starttls(r->conn, &ts, err) == -1)
		return -1;
	r->pop3 = pop3_new(r->name, conn_read, conn_write, r->conn);
	if (pop3_greeting_capa(r->pop3, err) == -1)
		return -1;
	if (a->tls == CONF_TLS_STARTTLS) {
		if (pop3_stls(r->pop3, err) == -1 ||
		    conn_starttls(r->conn, &ts, err) == -1 ||
		    pop3_capa(r->pop3, NULL, err) == -1)
			return -1;
	}
	switch (a->tls) {
	case CONF_TLS_IMPLICIT:	r->with = "POP3S"; break;
	case CONF_TLS_STARTTLS:	r->with = "POP3 + STARTTLS"; break;
	case CONF_TLS_NONE:	r->with = "POP3"; break;
	}
	return 0;
}

/* Authenticate with the secret get_secret got, then forget it. */
static int
login(struct run *r, struct pf_error *err)
{
	const struct conf_account *a = r->acct;
	struct pop3_auth_params ap;

	ap = (struct pop3_auth_params){
		.mode = a->auth,
		.user = a->user,
		.secret = r->secret,
		.tls_active = conn_is_tls(r->conn),
		.allow_plaintext = a->allow_plaintext_password,
	};
	if (pop3_auth(r->pop3, &ap, err) == -1)
		return -1;
	secret_free(&r->secret);
	return 0;
}

/* Connect and, when need_secret, log in.  The secret first: a failing
 * password_command costs no connection. */
static int
connect_and_login(struct run *r, bool need_secret, struct pf_error *err)
{
	if ((need_secret && get_secret(r, err) == -1) ||
	    connect_session(r, err) == -1)
		return -1;
	return need_secret ? login(r, err) : 0;
}

/* Drop the connection: QUIT politely only when asked and still in step. */
static void
disconnect(struct run *r, bool quit)
{
	struct pf_error ignored;

	if (quit && r->pop3 != NULL && pop3_is_synchronised(r->pop3))
		(void)pop3_quit(r->pop3, POP3_QUIT_COMMIT, &ignored);
	pop3_free(&r->pop3);
	conn_close(&r->conn);
}

/* ---- delivery: the sink pop3_retr_each streams into ---- */

/* Write the Received: trace field (popfetch.conf(5)) at the top of the message. */
static int
write_received(struct run *r, const struct pop3_msg *m, struct pf_error *err)
{
	char date[64], line[1024 + POP3_UIDL_MAX];
	time_t t = time(NULL);
	struct tm tm;
	int n;

	localtime_r(&t, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z", &tm);
	if (m->uidl != NULL)
		n = snprintf(line, sizeof(line), "Received: from %s ([%s]) by "
		    "%s (popfetch %s) with %s id %s; %s\n", r->acct->host,
		    conn_peer_addr(r->conn), r->localhost, PACKAGE_VERSION,
		    r->with, m->uidl, date);
	else
		n = snprintf(line, sizeof(line), "Received: from %s ([%s]) by "
		    "%s (popfetch %s) with %s; %s\n", r->acct->host,
		    conn_peer_addr(r->conn), r->localhost, PACKAGE_VERSION,
		    r->with, date);
	if (n < 0 || (size_t)n >= sizeof(line))
		return pf_error_set(err, PF_FAIL_INTERNAL,
		    "Received: header too long");
	return maildir_deliver_write(r->cur, line, (size_t)n, err);
}

static int
sink_begin(void *ctx, const struct pop3_msg *m, struct pf_error *err)
{
	struct run *r = ctx;

	if (maildir_deliver_begin(r->md, &r->cur, err) == -1)
		return -1;
	r->cur_bytes = 0;
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

	r->cur_bytes += len;
	if (r->digest != NULL)
		crypto_sha256_update(r->digest, buf, len);
	if (maildir_deliver_write(r->cur, buf, len, err) == -1)
		return -1;
	progress_draw(r, false);
	return 0;
}

/* The message's seen-list key: its UIDL, or (DESIGN §6) the digest of
 * what it holds as received, before the Received: field. */
static char *
message_key(struct run *r, const struct pop3_msg *m)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[CRYPTO_SHA256_LEN];
	char *key;
	size_t i, o;

	if (!r->no_uidl)
		return xstrdup(m->uidl);
	crypto_sha256_end(&r->digest, md);
	key = xmalloc(SEEN_DIGEST_KEY_LEN + 1);
	o = strlen(SEEN_DIGEST_PREFIX);
	memcpy(key, SEEN_DIGEST_PREFIX, o);
	for (i = 0; i < sizeof(md); i++) {
		key[o++] = hex[md[i] >> 4];
		key[o++] = hex[md[i] & 0xf];
	}
	key[o] = '\0';
	return key;
}

/* Queue message number for DELE, with its key (owned by the list). */
static void
dele_add(struct run *r, unsigned number, char *key)
{
	r->dele[r->ndele] = number;
	r->dele_key[r->ndele] = key;
	r->ndele++;
}

/*
 * Group commit of the finished deliveries in b (step 6).  On failure the
 * deliveries are freed (so their tmp files go) and the seen-list's pending
 * rows let the next run decide.
 */
static int
commit_batch(struct run *r, struct batch *b, struct pf_error *err)
{
	struct seen_entry *entries = NULL;
	bool *placed = NULL;
	time_t now = time(NULL);
	size_t i, n = b->n;
	int rc = -1;

	if (n == 0)
		return 0;
	entries = xcalloc(n, sizeof(*entries));
	placed = xcalloc(n, sizeof(*placed));
	for (i = 0; i < n; i++) {
		entries[i].uidl = b->key[i];
		entries[i].name = maildir_delivery_name(b->d[i]);
		entries[i].dir = maildir_path(r->md);
		entries[i].size = maildir_delivery_size(b->d[i]);
		entries[i].fetched = now;
	}
	if (seen_pending_add(r->seen, entries, n, err) == -1 ||		/* a */
	    maildir_commit(r->md, b->d, n, placed, err) == -1 ||		/* b */
	    seen_pending_resolve(r->seen, entries, n, placed, err) == -1)	/* c */
		goto done;
	for (i = 0; i < n; i++) {
		uint64_t size = maildir_delivery_size(b->d[i]);

		if (!placed[i])		/* DESIGN §7: fetched again */
			continue;
		log_debug("%s: message %u (UIDL %s, %" PRIu64 " bytes) -> %s",
		    r->name, b->m[i]->number,
		    b->m[i]->uidl != NULL ? b->m[i]->uidl :
		    "none", size, maildir_delivery_name(b->d[i]));
		r->stats.fetched++;
		r->stats.bytes += size;
		/* Without UIDL (delete = true): delete what was delivered. */
		if (r->no_uidl) {
			dele_add(r, b->m[i]->number, b->key[i]);
			b->key[i] = NULL;
		}
	}
	rc = 0;
done:
	for (i = 0; i < n; i++) {
		maildir_delivery_free(&b->d[i]);
		free(b->key[i]);
		b->key[i] = NULL;
	}
	b->n = 0;
	b->bytes = 0;
	free(entries);
	free(placed);
	progress_draw(r, true);
	return rc;
}

/* Is key among the deliveries not committed yet? */
static bool
in_batches(const struct run *r, const char *key)
{
	size_t i, j;

	for (j = 0; j < 2; j++)
		for (i = 0; i < r->batch[j].n; i++)
			if (strcmp(r->batch[j].key[i], key) == 0)
				return true;
	return false;
}

static int
sink_end(void *ctx, const struct pop3_msg *m, uint64_t octets,
    struct pf_error *err)
{
	struct run *r = ctx;
	struct batch *b = &r->batch[r->filling];
	char *key;

	(void)octets;
	key = message_key(r, m);
	if (r->no_uidl && (seen_contains(r->seen, key) || in_batches(r, key))) {
		/* DESIGN §6: delivered before (an earlier run's DELE was not
		 * committed), or a copy of one in this run: not again.
		 * Deleted once that delivery is recorded: now, or after the
		 * batches are committed (dup_dele). */
		log_debug("%s: message %u has the content of one delivered "
		    "before: not delivered again", r->name, m->number);
		maildir_delivery_free(&r->cur);
		r->cur_bytes = 0;
		if (seen_contains(r->seen, key))
			dele_add(r, m->number, key);
		else {
			r->dup[r->ndup] = m->number;
			r->dup_key[r->ndup] = key;
			r->ndup++;
		}
		return 0;
	}
	if (maildir_deliver_finish(r->cur, err) == -1) {
		free(key);
		return -1;
	}
	b->d[b->n] = r->cur;
	b->m[b->n] = m;
	b->key[b->n] = key;
	b->n++;
	b->bytes += maildir_delivery_size(r->cur);
	r->received++;
	r->recv_bytes += maildir_delivery_size(r->cur);
	r->cur = NULL;
	r->cur_bytes = 0;
	if (b->n < SEEN_BATCH && b->bytes < SEEN_BATCH_BYTES)
		return 0;
	/* b is full: commit the one before it, whose files have had the
	 * time of a batch to reach the disk, and fill that one next. */
	r->filling ^= 1;
	return commit_batch(r, &r->batch[r->filling], err);
}

/* Copies (same digest) of messages that were still in a batch: delete
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
	struct run *r = ctx;
	char buf[PF_ERROR_WHAT_MAX + PF_ERROR_SERVER_MAX + 8];

	(void)err;
	if (r->any_refused) {
		log_errx("%s: message %u (UIDL %s) refused by the server: %s",
		    r->name, m->number, m->uidl != NULL ? m->uidl : "none",
		    pf_error_format(why, buf, sizeof(buf)));
		return 0;
	}
	pf_error_set(&r->refused, why->category, "message %u (UIDL %s) "
	    "refused by the server: %s", m->number, m->uidl != NULL ?
	    m->uidl : "none", why->what);
	memcpy(r->refused.server, why->server, sizeof(r->refused.server));
	r->any_refused = true;
	return 0;
}

/* Commit both batches, the older first. */
static int
commit_all(struct run *r, struct pf_error *err)
{
	if (commit_batch(r, &r->batch[r->filling ^ 1], err) == -1)
		return -1;
	return commit_batch(r, &r->batch[r->filling], err);
}

/* ---- the steps of a fetch ---- */

/* Is dir still a Maildir (tmp/, new/, cur/)?  One that is gone, or no
 * longer one, is taken to hold none of the messages a row names: better
 * than an account stuck on a folder its user took apart. */
static bool
looks_like_maildir(const char *dir)
{
	static const char *const subs[] = { "tmp", "new", "cur" };
	char *sub;
	bool yes = true;
	size_t i;

	for (i = 0; i < 3 && yes; i++) {
		sub = xasprintf("%s/%s", dir, subs[i]);
		yes = access(sub, F_OK) == 0;
		free(sub);
	}
	return yes;
}

/*
 * Look for pending deliveries idx[0..n) of `e`, all made into Maildir
 * `dir`: the account's (`here`, open already), or the one it had before
 * its `maildir` was edited (DESIGN §7.2); a Maildir that is gone holds
 * none of them.
 */
static int
find_delivered_in(struct maildir *here, const char *dir,
    const struct seen_entry *e, const size_t *idx, size_t n, bool *found,
    struct pf_error *err)
{
	struct maildir *md = here, *other = NULL;
	const char **names;
	bool *hit;
	size_t i;
	int rc;

	if (strcmp(dir, maildir_path(here)) != 0) {
		if (!looks_like_maildir(dir))
			return 0;
		if (maildir_open(dir, &other, err) == -1)
			return -1;
		md = other;
	}
	names = xcalloc(n, sizeof(*names));
	hit = xcalloc(n, sizeof(*hit));
	for (i = 0; i < n; i++)
		names[i] = e[idx[i]].name;
	rc = maildir_find_delivered(md, names, n, hit, err);
	for (i = 0; rc == 0 && i < n; i++)
		found[idx[i]] = hit[i];
	/* The killed run's leftovers there: nobody else would take them
	 * (the account's own tmp/ is cleaned by recover). */
	if (rc == 0 && other != NULL)
		rc = maildir_clean_tmp(other, NULL, err);
	maildir_close(&other);
	free(names);
	free(hit);
	return rc;
}

/* Step 2: decide every pending delivery, each in the Maildir it went to;
 * clean tmp/. */
static int
recover(struct run *r, struct pf_error *err)
{
	struct seen_entry *entries = NULL;
	const char *here = maildir_path(r->md);
	size_t *idx = NULL;
	bool *found = NULL, *done = NULL;
	size_t i, j, k, n = 0, removed = 0;
	int rc = -1;

	if (seen_pending_load(r->seen, &entries, &n, err) == -1)
		return -1;
	if (n > 0) {
		idx = xcalloc(n, sizeof(*idx));
		found = xcalloc(n, sizeof(*found));
		done = xcalloc(n, sizeof(*done));
		/* One pass per Maildir named by the rows (usually one). */
		for (i = 0; i < n; i++) {
			const char *dir = entries[i].dir != NULL ?
			    entries[i].dir : here;

			if (done[i])
				continue;
			for (j = i, k = 0; j < n; j++) {
				const char *d = entries[j].dir != NULL ?
				    entries[j].dir : here;

				if (!done[j] && strcmp(d, dir) == 0) {
					idx[k++] = j;
					done[j] = true;
				}
			}
			if (find_delivered_in(r->md, dir, entries, idx, k,
			    found, err) == -1)
				goto done;
		}
		if (seen_pending_resolve(r->seen, entries, n, found, err) == -1)
			goto done;
		for (i = 0; i < n; i++)
			log_debug("%s: recovered an interrupted delivery of "
			    "UIDL %s: %s", r->name, entries[i].uidl, found[i] ?
			    "it reached the Maildir" : "it will be fetched again");
	}
	if (maildir_clean_tmp(r->md, &removed, err) == -1)
		goto done;
	if (removed > 0)
		log_debug("%s: removed %zu leftover file(s) from tmp/", r->name,
		    removed);
	rc = 0;
done:
	seen_entries_free(&entries, n);
	free(idx);
	free(found);
	free(done);
	return rc;
}

/* ---- the local start of a run (design note, step 2) ---- */

/*
 * Step 2 runs in two parts: up to `ready` (all that can fail for a local
 * reason, and whether the seen-list is empty), then the load of the known
 * UIDLs, which only the listing needs: it goes on during the login.
 */
struct prep {
	struct run	*r;
	time_t		 start;
	pthread_t	 thread;
	bool		 threaded;
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
 * the Maildir and recover.  Ready after that; then load the known set. */
static int
prep_local(struct prep *p)
{
	struct run *r = p->r;
	const struct conf_account *a = r->acct;
	const char *dir = r->conf->state_dir;

	if (r->opts->dry_run)
		return seen_open(dir, &r->who, SEEN_READ_ONLY, &r->seen,
		    &p->err) == -1 ? -1 :
		    seen_any(r->seen, &p->any_seen, &p->err);
	if (seen_open_unloaded(dir, &r->who, SEEN_READ_WRITE, &r->seen,
	    &p->err) == -1 ||
	    seen_run_begin(r->seen, p->start, &p->err) == -1)
		return -1;
	p->run_begun = true;
	if (maildir_create(a->maildir, &p->err) == -1 ||
	    maildir_open(a->maildir, &r->md, &p->err) == -1 ||
	    recover(r, &p->err) == -1 ||
	    seen_any(r->seen, &p->any_seen, &p->err) == -1)
		return -1;
	prep_set_ready(p);
	return seen_load(r->seen, &p->err);
}

static void *
prep_main(void *arg)
{
	struct prep *p = arg;
	int rc = prep_local(p);

	pthread_mutex_lock(&p->mu);
	p->rc = rc;
	p->done = true;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

/*
 * Start step 2 in a thread (every signal blocked in it, so they reach the
 * main thread as before), or do it here if no thread can be had.
 */
static void
prep_begin(struct prep *p)
{
	pf_error_clear(&p->err);
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cond, NULL);
	p->threaded = pf_thread_start(&p->thread, NULL, prep_main, p) == 0;
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

/* Wait for all of step 2: p->rc and p->err are final. */
static void
prep_end(struct prep *p)
{
	if (p->threaded) {
		pthread_join(p->thread, NULL);
		p->threaded = false;
	}
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->mu);
}

/* Should message m be deleted (design note, step 7)?  m is seen. */
static bool
want_delete(const struct run *r, const struct pop3_msg *m, time_t now)
{
	time_t fetched;

	if (r->acct->delete)
		return true;
	if (r->acct->delete_after_days == 0 || r->seen == NULL)
		return false;
	if (!seen_lookup(r->seen, m->uidl, &fetched))
		return false;
	return (int64_t)now - (int64_t)fetched >=
	    (int64_t)r->acct->delete_after_days * 86400;
}

/* The listed messages that are not seen, in number order: a new array of
 * borrowed pointers into r->listing. */
static const struct pop3_msg **
select_unseen(struct run *r, size_t *n_r)
{
	const struct pop3_msg **sel;
	size_t i, n = 0;

	sel = xcalloc(r->listing->count + 1, sizeof(*sel));
	for (i = 0; i < r->listing->count; i++) {
		const struct pop3_msg *m = &r->listing->msgs[i];

		if (m->uidl == NULL || r->seen == NULL ||
		    !seen_contains(r->seen, m->uidl))
			sel[n++] = m;
	}
	*n_r = n;
	return sel;
}

/*
 * Of the unseen messages sel[0..n), keep those within max_size (others are
 * skipped and counted), at most max_messages, in order; returns how many.
 * Sizes must be known.
 */
static size_t
apply_limits(struct run *r, const struct pop3_msg **sel, size_t nsel,
    bool verbose_skips)
{
	const struct conf_account *a = r->acct;
	size_t i, n = 0;

	for (i = 0; i < nsel; i++) {
		const struct pop3_msg *m = sel[i];

		if (a->max_size > 0 && m->size > a->max_size) {
			r->stats.skipped++;
			if (verbose_skips)
				log_debug("%s: skipping message %u (UIDL %s): "
				    "%" PRIu64 " bytes is over max_size", r->name,
				    m->number, m->uidl ? m->uidl : "none", m->size);
			continue;
		}
		if (a->max_messages > 0 && n >= a->max_messages) {
			r->stats.skipped++;
			continue;
		}
		sel[n++] = m;
	}
	return n;
}

/* Choose what to fetch: select_unseen, then apply_limits. */
static const struct pop3_msg **
select_new(struct run *r, size_t *n_r, bool verbose_skips)
{
	const struct pop3_msg **sel = select_unseen(r, n_r);

	*n_r = apply_limits(r, sel, *n_r, verbose_skips);
	return sel;
}

/* ---- --dry-run ---- */

struct header_buf {
	char	 buf[DRYRUN_HEADER_MAX];
	size_t	 len;
};

static int
hdr_begin(void *ctx, const struct pop3_msg *m, struct pf_error *err)
{
	(void)m;
	(void)err;
	((struct header_buf *)ctx)->len = 0;
	return 0;
}

static int
hdr_data(void *ctx, const char *buf, size_t len, struct pf_error *err)
{
	struct header_buf *h = ctx;
	size_t room = sizeof(h->buf) - 1 - h->len;

	(void)err;
	if (len > room)
		len = room;
	memcpy(h->buf + h->len, buf, len);
	h->len += len;
	return 0;
}

static int
hdr_end(void *ctx, const struct pop3_msg *m, uint64_t octets,
    struct pf_error *err)
{
	(void)ctx;
	(void)m;
	(void)octets;
	(void)err;
	return 0;
}

/*
 * Copy header field `field` (e.g. "Subject") of the header in h, unfolded,
 * control characters replaced, into out; "" when absent.  Untrusted data.
 */
static void
header_field(const struct header_buf *h, const char *field, char *out,
    size_t outsz)
{
	size_t flen = strlen(field), i = 0, o = 0;
	const char *p = h->buf, *end = h->buf + h->len;

	out[0] = '\0';
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));

		if (eol == NULL)
			eol = end;
		if (eol == p)	/* empty line: end of the header */
			return;
		if ((size_t)(eol - p) > flen && p[flen] == ':' &&
		    strncasecmp(p, field, flen) == 0) {
			const char *v = p + flen + 1;

			for (;;) {
				for (i = 0; v + i < eol && o + 1 < outsz; i++) {
					unsigned char c = (unsigned char)v[i];

					if (c == '\r')
						continue;
					out[o++] = (c < 0x20 || c == 0x7f) ?
					    ' ' : (char)c;
				}
				/* folded continuation lines */
				if (eol < end && eol + 1 < end &&
				    (eol[1] == ' ' || eol[1] == '\t')) {
					v = eol + 1;
					eol = memchr(v, '\n', (size_t)(end - v));
					if (eol == NULL)
						eol = end;
					continue;
				}
				break;
			}
			out[o] = '\0';
			/* trim leading blanks */
			for (i = 0; out[i] == ' ' || out[i] == '\t'; i++)
				;
			memmove(out, out + i, o - i + 1);
			return;
		}
		p = eol + 1;
	}
}

/*
 * Print what would happen to message m, with its From, Subject and Date
 * read with TOP m 0 when with_headers and the server has TOP: as CAPA
 * says, or, from a server without CAPA, as long as TOP answers +OK.  A
 * -ERR to TOP leaves the preview out; a failed session (a lost
 * connection) fails the dry run with the code a fetch would have.
 */
static int
dry_show(struct run *r, const char *what, const struct pop3_msg *m,
    const char *note, bool with_headers, struct pf_error *err)
{
	const struct pop3_capa *capa = pop3_capabilities(r->pop3);
	struct header_buf *h;
	struct pop3_sink sink = { hdr_begin, hdr_data, hdr_end, NULL, NULL };
	char from[256], subject[256], date[128];

	if (with_headers && !r->top_refused && (capa->top || !capa->known)) {
		h = xcalloc(1, sizeof(*h));
		sink.ctx = h;
		if (pop3_top(r->pop3, m, 0, &sink, err) == 0) {
			char *ef, *es, *ed;

			header_field(h, "From", from, sizeof(from));
			header_field(h, "Subject", subject, sizeof(subject));
			header_field(h, "Date", date, sizeof(date));
			/* The server's bytes, never raw on a terminal. */
			ef = pf_escape_dup(from, (size_t)-1);
			es = pf_escape_dup(subject, (size_t)-1);
			ed = pf_escape_dup(date, (size_t)-1);
			printf("%s: would %s message %u, UIDL %s, %" PRIu64
			    " bytes%s\n    From: %s\n    Subject: %s\n"
			    "    Date: %s\n", r->name, what, m->number,
			    m->uidl ? m->uidl : "-", m->size, note, ef, es, ed);
			free(ef);
			free(es);
			free(ed);
			free(h);
			return 0;
		}
		free(h);
		if (!pop3_is_synchronised(r->pop3))
			return -1;
		/* -ERR: no preview for it; without CAPA, no TOP at all. */
		log_debug("%s: %s", r->name, err->what);
		if (!capa->known)
			r->top_refused = true;
	}
	printf("%s: would %s message %u, UIDL %s, %" PRIu64 " bytes%s\n",
	    r->name, what, m->number, m->uidl ? m->uidl : "-", m->size, note);
	return 0;
}

/* List what a fetch would do, change nothing (popfetch(1) --dry-run). */
static int
dry_run(struct run *r, struct pf_error *err)
{
	const struct pop3_msg **sel;
	const struct conf_account *a = r->acct;
	time_t now = time(NULL);
	size_t i, j, n;
	unsigned long would_delete = 0;
	int rc = -1;

	if (!r->listing->has_uidl && !a->delete)
		return pf_error_set(err, PF_FAIL_PROTO, "the server does not "
		    "support UIDL, so popfetch cannot tell new messages from "
		    "old; set delete = true to fetch and delete every message");
	sel = select_new(r, &n, false);
	for (i = 0; i < n; i++)
		if (dry_show(r, a->delete ? "fetch and delete" : "fetch",
		    sel[i], "", true, err) == -1)
			goto done;
	for (i = 0; i < r->listing->count; i++) {
		const struct pop3_msg *m = &r->listing->msgs[i];
		bool selected = false, seen;

		for (j = 0; j < n; j++)
			if (sel[j] == m)
				selected = true;
		if (selected) {
			if (a->delete)
				would_delete++;
			continue;
		}
		seen = m->uidl != NULL && r->seen != NULL &&
		    seen_contains(r->seen, m->uidl);
		if (seen) {
			if (want_delete(r, m, now)) {
				/* popfetch(1): From, Subject and Date for every
				 * message listed, deleted ones too. */
				if (dry_show(r, "delete", m, " (fetched before)",
				    true, err) == -1)
					goto done;
				would_delete++;
			}
			continue;
		}
		if (dry_show(r, "skip", m, a->max_size > 0 &&
		    m->size > a->max_size ? " (over max_size)" :
		    " (over max_messages)", true, err) == -1)
			goto done;
	}
	fflush(stdout);
	log_info("%s: %zu new, %lu skipped, %lu deleted, 0 B in %.1f s "
	    "(dry run: nothing fetched, written or deleted)", r->name, n,
	    r->stats.skipped, would_delete, now_mono() - r->t0);
	rc = 0;
done:
	fflush(stdout);
	free(sel);
	return rc;
}

/* ---- fetch ---- */

/* Step 4's update of the seen-list: what the listing lacks is marked
 * missing, and forgotten once missing long enough (DESIGN §4). */
static int
mark_missing(struct run *r, time_t now, struct pf_error *err)
{
	const char **listed = NULL;
	size_t i, n = 0, pruned = 0;
	int64_t forget = (int64_t)r->acct->forget_after_days * 86400;
	int rc;

	if (r->no_uidl) {
		/* Digests are never listed: they age from their first run
		 * here, at least a day (DESIGN §6). */
		if (forget < 86400)
			forget = 86400;
	} else {
		listed = xcalloc(r->listing->count + 1, sizeof(*listed));
		for (i = 0; i < r->listing->count; i++)
			listed[n++] = r->listing->msgs[i].uidl;
	}
	rc = seen_prune(r->seen, listed, n, now, forget, &pruned, err);
	free(listed);
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
		if (pop3_quit(r->pop3, POP3_QUIT_NOWAIT, err) == -1)
			log_debug("%s: QUIT: %s", r->name, err->what);
		return 0;
	}
	if (pop3_quit(r->pop3, POP3_QUIT_COMMIT, err) == -1) {
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
	const struct pop3_msg **sel = NULL;
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
	if (mark_missing(r, now, err) == -1)
		return -1;

	/* Sizes (max_size, progress, runaway bound) if anything is new. */
	sel = select_unseen(r, &n);
	if (n > 0 && !r->listing->sizes_known &&
	    pop3_list_sizes(r->pop3, r->listing, err) == -1)
		goto done;
	n = apply_limits(r, sel, n, true);
	r->to_fetch = n;
	for (i = 0; i < 2; i++) {
		r->batch[i].d = xcalloc(SEEN_BATCH + 1, sizeof(*r->batch[i].d));
		r->batch[i].m = xcalloc(SEEN_BATCH + 1, sizeof(*r->batch[i].m));
		r->batch[i].key = xcalloc(SEEN_BATCH + 1,
		    sizeof(*r->batch[i].key));
	}
	r->dele = xcalloc(r->listing->count + 1, sizeof(*r->dele));
	r->dele_key = xcalloc(r->listing->count + 1, sizeof(*r->dele_key));
	r->dup = xcalloc(r->listing->count + 1, sizeof(*r->dup));
	r->dup_key = xcalloc(r->listing->count + 1, sizeof(*r->dup_key));
	progress_draw(r, true);

	/* Keep mode deletes nothing: QUIT can go as soon as the last
	 * message is in, and its reply need not be waited for. */
	keep = !a->delete && a->delete_after_days == 0;
	if (keep)
		(void)pop3_quit(r->pop3, POP3_QUIT_AFTER_RETR, err);
	if (n > 0 && pop3_retr_each(r->pop3, sel, n, &sink, err) == -1) {
		struct pf_error cerr;

		/* Keep what arrived whole; drop the message in progress. */
		maildir_delivery_free(&r->cur);
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

			if (want_delete(r, m, now) &&
			    seen_contains(r->seen, m->uidl))
				dele_add(r, m->number, xstrdup(m->uidl));
		}
	}
	if (r->ndele > 0 &&
	    pop3_dele_each(r->pop3, r->dele, r->ndele, err) == -1)
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
	free(sel);
	return rc;
}

/* Fill r->owners and r->who: the account among all configured ones, as
 * the seen-list tells accounts apart (DESIGN §2). */
static void
run_who(struct run *r)
{
	const struct conf *c = r->conf;
	size_t i;

	r->owners = xcalloc(c->naccounts + 1, sizeof(*r->owners));
	r->who.all = r->owners;
	r->who.n = c->naccounts;
	r->who.self = 0;
	for (i = 0; i < c->naccounts; i++) {
		const struct conf_account *a = &c->accounts[i];

		r->owners[i] = (struct seen_owner){
			.account = a->name, .user = a->user, .host = a->host,
			.port = a->port,
		};
		if (strcmp(a->name, r->acct->name) == 0)
			r->who.self = i;
	}
}

/* Free everything a run holds; the lock last. */
static void
run_cleanup(struct run *r)
{
	size_t i, j;

	maildir_delivery_free(&r->cur);
	for (j = 0; j < 2; j++) {
		for (i = 0; i < r->batch[j].n; i++) {
			maildir_delivery_free(&r->batch[j].d[i]);
			free(r->batch[j].key[i]);
		}
		free(r->batch[j].d);
		free(r->batch[j].m);
		free(r->batch[j].key);
	}
	for (i = 0; i < r->ndele; i++)
		free(r->dele_key[i]);
	free(r->dele_key);
	free(r->dele);
	for (i = 0; i < r->ndup; i++)
		free(r->dup_key[i]);
	free(r->dup_key);
	free(r->dup);
	crypto_sha256_free(&r->digest);
	free(r->owners);
	pop3_listing_free(&r->listing);
	disconnect(r, false);
	secret_free(&r->secret);
	maildir_close(&r->md);
	seen_close(&r->seen);
	lock_release(&r->lock);
}

int
run_fetch(const struct conf *conf, const struct conf_account *acct,
    const struct run_options *opts)
{
	struct run r = {
		.conf = conf, .acct = acct, .opts = opts, .name = acct->name,
		.with = "POP3",
	};
	struct pf_error err;
	struct prep prep = { .r = &r, .start = time(NULL) };
	bool run_begun = false, sizes;
	char b1[32];
	int code, crc;

	pf_error_clear(&err);
	r.t0 = now_mono();
	if (gethostname(r.localhost, sizeof(r.localhost)) == -1)
		strcpy(r.localhost, "localhost");
	r.localhost[sizeof(r.localhost) - 1] = '\0';

	run_who(&r);
	if (lock_acquire(conf->state_dir, acct->name, &r.lock, &err) == -1)
		goto fail;
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
	if (!prep_failed(&prep, acct->password_command != NULL))
		crc = get_secret(&r, &err);
	if (crc == 0 && !prep_failed(&prep, false))
		crc = connect_session(&r, &err);
	/* Step 2 goes on loading the seen-list during the login. */
	if (crc == 0 && !prep_failed(&prep, true))
		crc = login(&r, &err);
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
		pop3_expect_uidl(r.pop3);
	/* A mailbox fetched before usually has little or nothing new: UIDL
	 * alone, and LIST only if something is new (fetch_mail).  A first
	 * run needs every size: both in one round trip. */
	sizes = opts->dry_run || !prep.any_seen;
	if (!sizes) {
		if (pop3_list_uidls(r.pop3, &r.listing, &err) == -1)
			goto fail;
	} else if (pop3_list_messages(r.pop3, &r.listing, &err) == -1)
		goto fail;
	if (opts->dry_run) {
		if (dry_run(&r, &err) == -1)
			goto fail;
		disconnect(&r, true);
		run_cleanup(&r);
		return 0;
	}
	if (fetch_mail(&r, &err) == -1)
		goto fail;

	if (seen_run_end(r.seen, time(NULL), &r.stats, 0, &err) == -1)
		goto fail;
	/* The summary replaces the progress line (log.c erases it in the
	 * same write); the erase after it is for -q, which hides it. */
	log_info("%s: %lu new, %lu skipped, %lu deleted, %s in %.1f s",
	    r.name, r.stats.fetched, r.stats.skipped, r.stats.deleted,
	    human_bytes(r.stats.bytes, b1, sizeof(b1)), now_mono() - r.t0);
	progress_erase(&r);
	run_cleanup(&r);
	return 0;

fail:
	code = report(r.name, &err);
	progress_erase(&r);
	if (run_begun && r.seen != NULL) {
		struct pf_error ignored;

		(void)seen_run_end(r.seen, time(NULL), &r.stats, code,
		    &ignored);
	}
	run_cleanup(&r);
	return code;
}

/* ---- check ---- */

/*
 * A certificate that failed verification: what it is, and the line that
 * would trust it (popfetch(1), check).  Its names are the server's words.
 */
static void
show_refused(const struct conf_account *a, const struct tls_cert_info *ci,
    FILE *out)
{
	char *subject = pf_escape_dup(ci->subject, (size_t)-1);
	char *issuer = pf_escape_dup(ci->issuer, (size_t)-1);

	fprintf(out, "  certificate (not trusted): %s\n", ci->fingerprint);
	fprintf(out, "    subject: %s\n", subject);
	fprintf(out, "    issuer: %s\n", issuer);
	fprintf(out, "    valid: %s to %s\n", ci->not_before, ci->not_after);
	fprintf(out, "  if you have checked that this is your server's "
	    "certificate, pin it in account %s:\n", a->name);
	fprintf(out, "    tls_fingerprint = \"%s\"\n", ci->fingerprint);
	free(subject);
	free(issuer);
}

int
run_check(const struct conf *conf, const struct conf_account *acct, FILE *out)
{
	struct run r = {
		.conf = conf, .acct = acct, .name = acct->name, .with = "POP3",
	};
	const struct pop3_capa *capa;
	struct tls_cert_info refused;
	struct pf_error err;
	struct tls_info ti;
	unsigned count = 0;
	uint64_t size = 0;
	char b1[32];
	size_t i;

	pf_error_clear(&err);
	memset(&refused, 0, sizeof(refused));
	r.rejected = &refused;
	fprintf(out, "%s: %s@%s:%u, tls %s\n", acct->name, acct->user,
	    acct->host, acct->port, conf_tls_name(acct->tls));
	if (connect_and_login(&r, true, &err) == -1) {
		if (err.category == PF_FAIL_TLS && refused.valid)
			show_refused(acct, &refused, out);
		goto fail;
	}
	if (conn_tls_info(r.conn, &ti) == 0) {
		fprintf(out, "  TLS: %s, %s\n", ti.version, ti.cipher);
		fprintf(out, "  certificate: %s\n", ti.fingerprint);
	} else
		fprintf(out, "  TLS: none\n");
	capa = pop3_capabilities(r.pop3);
	fprintf(out, "  capabilities:%s\n", capa->known && capa->nlines > 0 ?
	    "" : " (none: the server does not answer CAPA)");
	for (i = 0; i < capa->nlines; i++) {
		char *line = pf_escape_dup(capa->lines[i], (size_t)-1);

		fprintf(out, "    %s\n", line);
		free(line);
	}
	fprintf(out, "  logged in with: %s\n", pop3_auth_mechanism(r.pop3));
	if (pop3_stat(r.pop3, &count, &size, &err) == -1)
		goto fail;
	fprintf(out, "  mailbox: %u messages, %s (%" PRIu64 " bytes)\n", count,
	    human_bytes(size, b1, sizeof(b1)), size);
	fflush(out);
	disconnect(&r, true);
	run_cleanup(&r);
	return 0;
fail:
	fflush(out);
	run_cleanup(&r);
	return report(acct->name, &err);
}

/* ---- status ---- */

/* Append a JSON string literal of s (escaped) to out. */
static void
json_string(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(out, "\\%c", c);
		else if (c < 0x20)
			fprintf(out, "\\u%04x", c);
		else
			fputc(c, out);
	}
	fputc('"', out);
}

static void
json_time(FILE *out, time_t t)
{
	char buf[32];
	struct tm tm;

	if (t == 0) {
		fputs("null", out);
		return;
	}
	gmtime_r(&t, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	fprintf(out, "\"%s\"", buf);
}

/* One status line or JSON object; `orphan`: no configured account owns
 * this seen-list any more (DESIGN §2). */
static void
print_status(const char *name, const struct seen_status *st, bool json,
    bool first, bool orphan, FILE *out)
{
	char b1[32], when[64];
	struct tm tm;
	bool finished = st->ever_run && st->last_end != 0 && st->last_exit >= 0;

	if (json) {
		fputs(first ? "\n  {" : ",\n  {", out);
		fputs("\"account\": ", out);
		json_string(out, name);
		fprintf(out, ", \"seen\": %" PRIu64 ", \"bytes\": %" PRIu64
		    ", \"last_run_start\": ", st->seen, st->bytes);
		json_time(out, st->ever_run ? st->last_start : 0);
		fputs(", \"last_run_end\": ", out);
		json_time(out, finished ? st->last_end : 0);
		if (finished)
			fprintf(out, ", \"last_exit\": %d", st->last_exit);
		else
			fputs(", \"last_exit\": null", out);
		fprintf(out, ", \"pending\": %" PRIu64 "%s}", st->pending,
		    orphan ? ", \"configured\": false" : "");
		return;
	}
	if (!st->ever_run || st->last_start == 0) {
		fprintf(out, "%s: %" PRIu64 " seen, %s fetched, never run, %"
		    PRIu64 " pending%s\n", name, st->seen,
		    human_bytes(st->bytes, b1, sizeof(b1)), st->pending,
		    orphan ? " (not in the configuration)" : "");
		return;
	}
	localtime_r(&st->last_start, &tm);
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
	fprintf(out, "%s: %" PRIu64 " seen, %s fetched, last run %s %s, %"
	    PRIu64 " pending%s\n", name, st->seen,
	    human_bytes(st->bytes, b1, sizeof(b1)), when,
	    finished ? pf_exit_meaning(st->last_exit) : "interrupted",
	    st->pending, orphan ? " (not in the configuration)" : "");
}

int
run_status(const struct conf *conf, const struct conf_account *acct,
    bool json, bool first, FILE *out)
{
	struct run r = { .conf = conf, .acct = acct, .name = acct->name };
	struct seen_status st;
	struct pf_error err;
	int rc;

	pf_error_clear(&err);
	memset(&st, 0, sizeof(st));
	run_who(&r);
	rc = seen_status_read(conf->state_dir, &r.who, &st, &err);
	free(r.owners);
	if (rc == -1) {
		if (json) {
			fputs(first ? "\n" : ",\n", out);
			fputs("  {\"account\": ", out);
			json_string(out, acct->name);
			fputs(", \"seen\": 0, \"bytes\": 0, \"last_run_start\": "
			    "null, \"last_run_end\": null, \"last_exit\": null, "
			    "\"pending\": 0}", out);
		}
		return report(acct->name, &err);
	}
	print_status(acct->name, &st, json, first, false, out);
	return 0;
}

int
run_status_orphans(const struct conf *conf, bool json, bool first, FILE *out)
{
	struct run r = { .conf = conf, .name = "status" };
	struct seen_orphan *list = NULL;
	struct pf_error err;
	size_t i, n = 0;
	int rc;

	if (conf->naccounts == 0)
		return 0;
	pf_error_clear(&err);
	r.acct = &conf->accounts[0];
	run_who(&r);
	rc = seen_orphans_read(conf->state_dir, &r.who, &list, &n, &err);
	free(r.owners);
	if (rc == -1)
		return report("status", &err);
	for (i = 0; i < n; i++)
		print_status(list[i].label, &list[i].st, json, first && i == 0,
		    true, out);
	seen_orphans_free(&list, n);
	return 0;
}
