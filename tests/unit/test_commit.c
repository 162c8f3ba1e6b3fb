/*
 * test_commit.c - the delivery seam (store/deliver.c over the Maildir
 * backend), the group commit's queue of two batches and recovery
 * (store/commit.c), on a real seen-list and real Maildirs in a fresh
 * directory per test.
 */
#include "config.h"

#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "commit.h"
#include "deliver.h"
#include "error.h"
#include "maildir_seam.h"
#include "params.h"
#include "seen.h"
#include "testutil.h"

static const struct seen_owner owners[] = {
	{ "work", "alice", "pop.example.com", 995 },
};
#define WHO	(&(struct seen_who){ owners, 1, 0 })

struct fixture {
	char	 dir[PATH_MAX];		/* first (test_fixture_new) */
	char	 state[PATH_MAX];	/* dir/state */
	char	 md[PATH_MAX];		/* dir/Mail: the account's */
	char	 other[PATH_MAX];	/* dir/Other: another Maildir */
	char	 gone[PATH_MAX];	/* dir/Gone: one removed later */
};

static int
setup(void **state)
{
	struct fixture *f = test_fixture_new(sizeof(*f), "test_commit");

	if (f == NULL)
		return -1;
	test_pathf(f->state, sizeof(f->state), "%s/state", f->dir);
	test_pathf(f->md, sizeof(f->md), "%s/Mail", f->dir);
	test_pathf(f->other, sizeof(f->other), "%s/Other", f->dir);
	test_pathf(f->gone, sizeof(f->gone), "%s/Gone", f->dir);
	*state = f;
	return 0;
}

static struct seen *
open_seen(const struct fixture *f, enum seen_mode mode)
{
	struct seen *s = NULL;
	struct pf_error err;

	if (seen_open(f->state, WHO, mode, &s, &err) == -1)
		fail_msg("seen_open: %s", err.what);
	return s;
}

static struct deliver *
open_target(const char *path)
{
	struct deliver *t = NULL;
	struct pf_error err;

	if (deliver_open("maildir", path, DELIVER_CREATE, &t, &err) == -1)
		fail_msg("deliver_open(%s): %s", path, err.what);
	assert_non_null(t);
	return t;
}

/* What `status` would show: read through a connection of its own. */
static struct seen_status
status_of(const struct fixture *f)
{
	struct seen_status st;
	struct pf_error err;

	if (seen_status_read(f->state, WHO, &st, &err) == -1)
		fail_msg("seen_status_read: %s", err.what);
	return st;
}

/* One finished message holding `len` bytes of `text`. */
static struct deliver_msg *
finished(struct deliver *t, const char *text, size_t len)
{
	struct deliver_msg *m = NULL;
	struct pf_error err;

	if (deliver_begin(t, &m, &err) == -1 ||
	    deliver_write(m, text, len, &err) == -1 ||
	    deliver_finish(m, &err) == -1)
		fail_msg("delivering: %s", err.what);
	return m;
}

/* The text of message i, different in content and length for each i. */
static size_t
body_of(int i, char *buf, size_t size)
{
	int n = snprintf(buf, size, "Subject: %d\n\nbody %d%.*s\n", i, i,
	    i % 7, "xxxxxxx");

	assert_true(n > 0 && (size_t)n < size);
	return (size_t)n;
}

static char *
key_of(int i)
{
	char *k = malloc(32);

	assert_non_null(k);
	snprintf(k, 32, "uidl-%03d", i);
	return k;
}

/* Does md/sub/name hold exactly text? */
static bool
file_holds(const char *md, const char *sub, const char *name,
    const char *text, size_t len)
{
	char path[PATH_MAX], buf[256];
	size_t n;
	FILE *fp;

	test_pathf(path, sizeof(path), "%s/%s/%s", md, sub, name);
	if ((fp = fopen(path, "rb")) == NULL)
		return false;
	n = fread(buf, 1, sizeof(buf), fp);
	fclose(fp);
	return n == len && memcmp(buf, text, len) == 0;
}

/* ---- the placed callback: every call recorded ---- */

#define MAXREC	(5 * SEEN_BATCH)

struct record {
	size_t		 n;
	bool		 take_even;	/* take the keys of even tags */
	bool		 other_thread;	/* a call not on `caller` */
	pthread_t	 caller;	/* set before the queue is made */
	int		 tag[MAXREC];
	char		*key[MAXREC];	/* owned: taken or copied */
	char		*loc[MAXREC];
	uint64_t	 size[MAXREC];
};

static void
placed(void *ctx, const void *tag, char **key, const char *location,
    uint64_t size)
{
	struct record *r = ctx;
	int i = *(const int *)tag;

	assert_true(r->n < MAXREC);
	if (!pthread_equal(pthread_self(), r->caller))
		r->other_thread = true;
	assert_non_null(*key);
	assert_non_null(location);
	r->tag[r->n] = i;
	if (r->take_even && i % 2 == 0) {
		r->key[r->n] = *key;
		*key = NULL;
	} else {
		r->key[r->n] = strdup(*key);
		assert_non_null(r->key[r->n]);
	}
	r->loc[r->n] = strdup(location);
	assert_non_null(r->loc[r->n]);
	r->size[r->n] = size;
	r->n++;
}

static void
record_free(struct record *r)
{
	size_t i;

	for (i = 0; i < r->n; i++) {
		free(r->key[i]);
		free(r->loc[i]);
	}
	r->n = 0;
}

/* ---- the seam ---- */

static void
test_open(void **state)
{
	struct fixture *f = *state;
	struct deliver *t = (struct deliver *)(uintptr_t)1;
	struct pf_error err;
	char path[PATH_MAX];

	/* An unknown backend is our bug (the configuration names only
	 * known ones). */
	assert_int_equal(deliver_open("mbox", f->md, DELIVER_CREATE, &t, &err),
	    -1);
	assert_null(t);
	assert_int_equal(err.category, PF_FAIL_INTERNAL);
	assert_non_null(strstr(err.what, "'mbox'"));
	assert_false(test_path_exists(f->md));

	/* DELIVER_EXISTING: a missing directory is no target, and stays
	 * missing; nor is one that lacks cur/. */
	assert_int_equal(deliver_open("maildir", f->md, DELIVER_EXISTING, &t,
	    &err), 0);
	assert_null(t);
	assert_false(test_path_exists(f->md));
	assert_int_equal(mkdir(f->md, 0700), 0);
	test_pathf(path, sizeof(path), "%s/tmp", f->md);
	assert_int_equal(mkdir(path, 0700), 0);
	test_pathf(path, sizeof(path), "%s/new", f->md);
	assert_int_equal(mkdir(path, 0700), 0);
	t = (struct deliver *)(uintptr_t)1;
	assert_int_equal(deliver_open("maildir", f->md, DELIVER_EXISTING, &t,
	    &err), 0);
	assert_null(t);
	test_pathf(path, sizeof(path), "%s/cur", f->md);
	assert_false(test_path_exists(path));

	/* DELIVER_CREATE completes it, and makes a new one with parents. */
	t = open_target(f->md);
	assert_string_equal(deliver_target(t), f->md);
	assert_true(test_path_exists(path));
	deliver_close(&t);
	assert_null(t);
	deliver_close(&t);	/* NULL is fine */
	test_pathf(path, sizeof(path), "%s/a/b/Box", f->dir);
	t = open_target(path);
	assert_string_equal(deliver_target(t), path);
	assert_int_equal(test_count_entries(path, "tmp"), 0);
	assert_int_equal(test_count_entries(path, "new"), 0);
	assert_int_equal(test_count_entries(path, "cur"), 0);
	deliver_close(&t);

	/* Now a Maildir: DELIVER_EXISTING opens it. */
	assert_int_equal(deliver_open("maildir", f->md, DELIVER_EXISTING, &t,
	    &err), 0);
	assert_non_null(t);
	assert_string_equal(deliver_target(t), f->md);
	deliver_close(&t);
}

/* begin/write/finish/location/size/commit/find/free/clean, through the
 * seam only. */
static void
test_seam_roundtrip(void **state)
{
	struct fixture *f = *state;
	struct deliver *t = open_target(f->md);
	struct deliver_msg *m[2] = { NULL, NULL };
	struct pf_error err;
	const char *names[3];
	struct deliver_result placed_r[2];
	bool found[3] = { true, true, true };
	char loc0[256], path[PATH_MAX];
	size_t removed = 99;
	struct timespec ts[2];

	assert_int_equal(deliver_begin(t, &m[0], &err), 0);
	assert_null(deliver_location(m[0]));
	assert_int_equal(deliver_write(m[0], "Subject: a\n", 11, &err), 0);
	assert_int_equal(deliver_write(m[0], "\nbody\n", 6, &err), 0);
	assert_int_equal(deliver_size(m[0]), 17);
	assert_null(deliver_location(m[0]));
	assert_int_equal(deliver_finish(m[0], &err), 0);
	assert_non_null(deliver_location(m[0]));
	assert_non_null(strstr(deliver_location(m[0]), ",S=17"));
	m[1] = finished(t, "second\n", 7);
	assert_string_not_equal(deliver_location(m[0]), deliver_location(m[1]));
	assert_int_equal(test_count_entries(f->md, "new"), 0);

	assert_int_equal(deliver_commit(t, m, 2, placed_r, &err), 0);
	assert_int_equal(placed_r[0].status, DELIVER_PLACED);
	assert_int_equal(placed_r[1].status, DELIVER_PLACED);
	assert_true(file_holds(f->md, "new", deliver_location(m[0]),
	    "Subject: a\n\nbody\n", 17));
	assert_true(file_holds(f->md, "new", deliver_location(m[1]),
	    "second\n", 7));
	assert_int_equal(test_count_entries(f->md, "tmp"), 0);

	/* find: the first read by a mail reader, the second where it is,
	 * and a name never delivered. */
	test_pathf(loc0, sizeof(loc0), "%s", deliver_location(m[0]));
	test_mail_read(f->md, loc0, ":2,S");
	names[0] = loc0;
	names[1] = deliver_location(m[1]);
	names[2] = "1700000000.M1P1Q1.nowhere,S=3";
	assert_int_equal(deliver_find(t, names, 3, found, &err), 0);
	assert_true(found[0]);
	assert_true(found[1]);
	assert_false(found[2]);

	/* Freeing committed messages leaves their files. */
	deliver_free(&m[0]);
	deliver_free(&m[1]);
	assert_null(m[0]);
	deliver_free(&m[0]);	/* NULL is fine */
	assert_int_equal(test_count_entries(f->md, "new"), 1);
	assert_int_equal(test_count_entries(f->md, "cur"), 1);

	/* clean: a leftover 37 hours old goes, a fresh foreign file stays. */
	test_pathf(path, sizeof(path), "%s/tmp/1500000000.M1P999999.mda",
	    f->md);
	assert_int_equal(test_write_file(path, O_CREAT | O_EXCL, "x", 1), 0);
	ts[0].tv_sec = ts[1].tv_sec = time(NULL) - 37 * 3600;
	ts[0].tv_nsec = ts[1].tv_nsec = 0;
	assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
	test_pathf(path, sizeof(path), "%s/tmp/1700000000.M1P999999.mda",
	    f->md);
	assert_int_equal(test_write_file(path, O_CREAT | O_EXCL, "y", 1), 0);
	assert_int_equal(deliver_clean(t, &removed, &err), 0);
	assert_int_equal(removed, 1);
	assert_int_equal(test_count_entries(f->md, "tmp"), 1);
	assert_true(test_path_exists(path));
	deliver_close(&t);
}

/* ---- the commit queue ---- */

/*
 * Two batches of SEEN_BATCH: a full batch is committed only once the next
 * one is full too.  Adding message k (1-based):
 *   k = SEEN_BATCH      batch 0 full: the other (empty) one is "committed",
 *                       add returns 1, nothing becomes visible;
 *   k = 2 x SEEN_BATCH  batch 1 full: batch 0 (messages 1..SEEN_BATCH) is
 *                       committed: visible, but still pending, not seen and
 *                       not told: its new/ names become durable with the
 *                       next batch's files (doc/DESIGN.md §3.1), and the
 *                       transaction that records that batch pending marks
 *                       batch 0 seen;
 * flush commits the rest, older batch first, and marks the last seen: every
 * message told to placed() once, in order.
 */
static void
test_queue_batches(void **state)
{
	struct fixture *f = *state;
	enum { N = 2 * SEEN_BATCH + 1 };
	struct seen *s = open_seen(f, SEEN_READ_WRITE);
	struct deliver *t = open_target(f->md);
	struct commit_queue *q;
	static struct record rec;
	struct seen_status st;
	struct pf_error err;
	uint64_t size[N], bytes = 0;
	char body[N][64], *key;
	size_t len[N];
	int tags[N], i;

	memset(&rec, 0, sizeof(rec));
	rec.take_even = true;
	q = commit_queue_new(s, t, placed, &rec);
	assert_non_null(q);
	for (i = 0; i < N; i++) {
		struct deliver_msg *m;
		int rc;

		tags[i] = i;
		len[i] = body_of(i, body[i], sizeof(body[i]));
		m = finished(t, body[i], len[i]);
		size[i] = deliver_size(m);
		assert_int_equal(size[i], len[i]);
		rc = commit_queue_add(q, m, key_of(i), &tags[i], &err);
		key = key_of(i);
		if (i + 1 == SEEN_BATCH) {
			/* Batch 0 is full; batch 1 is empty: nothing to do. */
			assert_int_equal(rc, 0);
			assert_int_equal(rec.n, 0);
			assert_int_equal(test_count_entries(f->md, "new"), 0);
		} else if (i + 1 == 2 * SEEN_BATCH) {
			assert_int_equal(rc, 1);
			/* Batch 0, the older, is in new/, pending, not told;
			 * batch 1 still queued. */
			assert_int_equal(rec.n, 0);
			assert_int_equal(test_count_entries(f->md, "new"),
			    SEEN_BATCH);
		} else
			assert_int_equal(rc, 0);
		/* The message just added is queued, not seen. */
		assert_true(commit_queue_holds(q, key));
		assert_false(seen_contains(s, key));
		free(key);
		assert_int_equal(rec.n, 0);
	}

	/* After the commit of batch 0: its messages in new/ but pending, so
	 * still held by the queue; none seen yet. */
	for (i = 0; i < N; i++) {
		key = key_of(i);
		assert_false(seen_contains(s, key));
		assert_true(commit_queue_holds(q, key));
		free(key);
	}
	assert_false(commit_queue_holds(q, "uidl-999"));
	st = status_of(f);
	assert_int_equal(st.pending, SEEN_BATCH);
	assert_int_equal(st.seen, 0);

	assert_int_equal(commit_queue_flush(q, &err), 0);
	/* placed() was told each message once, in order, with its key,
	 * location and size; each is in new/ under that location. */
	assert_int_equal(rec.n, N);
	for (i = 0; i < N; i++) {
		char want[32];

		snprintf(want, sizeof(want), "uidl-%03d", i);
		assert_int_equal(rec.tag[i], i);
		assert_string_equal(rec.key[i], want);
		assert_int_equal(rec.size[i], size[i]);
		assert_true(file_holds(f->md, "new", rec.loc[i], body[i],
		    len[i]));
		assert_true(seen_contains(s, want));
		assert_false(commit_queue_holds(q, want));
		bytes += size[i];
	}
	assert_int_equal(test_count_entries(f->md, "new"), N);
	assert_int_equal(test_count_entries(f->md, "tmp"), 0);
	st = status_of(f);
	assert_int_equal(st.pending, 0);
	assert_int_equal(st.seen, N);
	assert_int_equal(st.bytes, bytes);

	/* An empty queue flushes to nothing; free leaves the files. */
	assert_int_equal(commit_queue_flush(q, &err), 0);
	assert_int_equal(rec.n, N);
	commit_queue_free(&q);
	assert_null(q);
	commit_queue_free(&q);	/* NULL is fine */
	assert_int_equal(test_count_entries(f->md, "new"), N);
	record_free(&rec);
	deliver_close(&t);
	seen_close(&s);
}

/* Freeing a queue throws away what it holds: nothing visible, nothing
 * left in tmp/, nothing pending or seen. */
static void
test_queue_free_discards(void **state)
{
	struct fixture *f = *state;
	enum { N = SEEN_BATCH + 2 };
	struct seen *s = open_seen(f, SEEN_READ_WRITE);
	struct deliver *t = open_target(f->md);
	struct commit_queue *q;
	static struct record rec;
	static char big[MAILDIR_WRITE_BUF + 1];
	struct seen_status st;
	struct pf_error err;
	char body[64];
	int tags[N], i;

	memset(&rec, 0, sizeof(rec));
	memset(big, 'b', sizeof(big));
	q = commit_queue_new(s, t, placed, &rec);
	for (i = 0; i < N; i++) {
		tags[i] = i;
		/* The last one is big: its file is in tmp/ already. */
		if (i == N - 1)
			assert_int_equal(commit_queue_add(q, finished(t, big,
			    sizeof(big)), key_of(i), &tags[i], &err), 0);
		else
			assert_int_equal(commit_queue_add(q, finished(t, body,
			    body_of(i, body, sizeof(body))), key_of(i),
			    &tags[i], &err), 0);
	}
	assert_true(test_count_entries(f->md, "tmp") >= 1);
	assert_true(commit_queue_holds(q, "uidl-000"));
	commit_queue_free(&q);
	assert_null(q);
	assert_int_equal(rec.n, 0);
	assert_int_equal(test_count_entries(f->md, "tmp"), 0);
	assert_int_equal(test_count_entries(f->md, "new"), 0);
	assert_int_equal(test_count_entries(f->md, "cur"), 0);
	assert_false(seen_contains(s, "uidl-000"));
	st = status_of(f);
	assert_int_equal(st.pending, 0);
	assert_int_equal(st.seen, 0);
	deliver_close(&t);
	seen_close(&s);
}

/*
 * SEEN_BATCH_BYTES closes a batch before SEEN_BATCH messages: one message
 * of that size fills batch 0 alone, so the SEEN_BATCH small ones after it
 * fill batch 1 and commit it.  (Were bytes not counted, the big one and
 * SEEN_BATCH - 1 small ones would fill batch 0 and nothing be visible.)
 */
static void
test_queue_byte_limit(void **state)
{
	struct fixture *f = *state;
	struct seen *s = open_seen(f, SEEN_READ_WRITE);
	struct deliver *t = open_target(f->md);
	struct deliver_msg *m = NULL;
	struct commit_queue *q;
	static struct record rec;
	static int tags[SEEN_BATCH + 1];
	struct seen_status st;
	struct pf_error err;
	char *chunk, body[64];
	uint64_t done;
	struct stat sb;
	char path[PATH_MAX];
	int i;

	memset(&rec, 0, sizeof(rec));
	chunk = malloc(1024 * 1024);
	assert_non_null(chunk);
	memset(chunk, 'z', 1024 * 1024);
	q = commit_queue_new(s, t, placed, &rec);
	assert_int_equal(deliver_begin(t, &m, &err), 0);
	for (done = 0; done < SEEN_BATCH_BYTES; done += 1024 * 1024)
		assert_int_equal(deliver_write(m, chunk, 1024 * 1024, &err), 0);
	assert_int_equal(deliver_finish(m, &err), 0);
	free(chunk);
	assert_int_equal(deliver_size(m), SEEN_BATCH_BYTES);
	tags[0] = 0;
	/* Batch 0 is full by bytes: the other one is empty, nothing to do. */
	assert_int_equal(commit_queue_add(q, m, key_of(0), &tags[0], &err), 0);
	assert_int_equal(test_count_entries(f->md, "new"), 0);
	for (i = 1; i <= SEEN_BATCH; i++) {
		tags[i] = i;
		assert_int_equal(commit_queue_add(q, finished(t, body,
		    body_of(i, body, sizeof(body))), key_of(i), &tags[i], &err),
		    i == SEEN_BATCH ? 1 : 0);
		if (i < SEEN_BATCH)
			assert_int_equal(rec.n, 0);
	}
	/* Batch 0, the big message alone, is in new/, seen at the next
	 * commit (doc/DESIGN.md §3.1). */
	assert_int_equal(rec.n, 0);
	assert_int_equal(test_count_entries(f->md, "new"), 1);
	assert_false(seen_contains(s, "uidl-000"));
	assert_true(commit_queue_holds(q, "uidl-000"));
	assert_true(commit_queue_holds(q, "uidl-001"));

	assert_int_equal(commit_queue_flush(q, &err), 0);
	assert_int_equal(rec.tag[0], 0);
	assert_string_equal(rec.key[0], "uidl-000");
	assert_int_equal(rec.size[0], SEEN_BATCH_BYTES);
	test_pathf(path, sizeof(path), "%s/new/%s", f->md, rec.loc[0]);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal((uint64_t)sb.st_size, SEEN_BATCH_BYTES);
	assert_true(seen_contains(s, "uidl-000"));
	assert_int_equal(rec.n, SEEN_BATCH + 1);
	assert_int_equal(test_count_entries(f->md, "new"), SEEN_BATCH + 1);
	st = status_of(f);
	assert_int_equal(st.pending, 0);
	assert_int_equal(st.seen, SEEN_BATCH + 1);
	commit_queue_free(&q);
	record_free(&rec);
	deliver_close(&t);
	seen_close(&s);
}

/*
 * doc/DESIGN.md §7.1 through the queue: a location taken in new/ before
 * the commit is not replaced; that message is not placed (placed() is not
 * told, its pending row is dropped, it is not seen), the others are, and
 * the commit succeeds.
 */
static void
test_queue_location_taken(void **state)
{
	struct fixture *f = *state;
	struct seen *s = open_seen(f, SEEN_READ_WRITE);
	struct deliver *t = open_target(f->md);
	struct deliver_msg *m[3];
	struct commit_queue *q;
	static struct record rec;
	struct seen_status st;
	struct pf_error err;
	char body[3][64], taken[256], path[PATH_MAX];
	size_t len[3];
	int tags[3], i;

	memset(&rec, 0, sizeof(rec));
	q = commit_queue_new(s, t, placed, &rec);
	for (i = 0; i < 3; i++) {
		tags[i] = i;
		len[i] = body_of(i, body[i], sizeof(body[i]));
		m[i] = finished(t, body[i], len[i]);
	}
	test_pathf(taken, sizeof(taken), "%s", deliver_location(m[1]));
	test_pathf(path, sizeof(path), "%s/new/%s", f->md, taken);
	assert_int_equal(test_write_file(path, O_CREAT | O_EXCL,
	    "older mail\n", 11), 0);
	for (i = 0; i < 3; i++)
		assert_int_equal(commit_queue_add(q, m[i], key_of(i), &tags[i],
		    &err), 0);
	assert_int_equal(commit_queue_flush(q, &err), 0);

	assert_int_equal(rec.n, 2);
	assert_int_equal(rec.tag[0], 0);
	assert_int_equal(rec.tag[1], 2);
	assert_string_equal(rec.key[1], "uidl-002");
	assert_true(file_holds(f->md, "new", rec.loc[0], body[0], len[0]));
	assert_true(file_holds(f->md, "new", rec.loc[1], body[2], len[2]));
	assert_true(file_holds(f->md, "new", taken, "older mail\n", 11));
	assert_int_equal(test_count_entries(f->md, "new"), 3);
	assert_int_equal(test_count_entries(f->md, "tmp"), 0);
	assert_true(seen_contains(s, "uidl-000"));
	assert_false(seen_contains(s, "uidl-001"));
	assert_true(seen_contains(s, "uidl-002"));
	assert_false(commit_queue_holds(q, "uidl-001"));
	st = status_of(f);
	assert_int_equal(st.pending, 0);
	assert_int_equal(st.seen, 2);
	assert_int_equal(st.bytes, len[0] + len[2]);
	commit_queue_free(&q);
	record_free(&rec);
	deliver_close(&t);
	seen_close(&s);
}

/* A commit that fails (here step 6a: the seen-list is read-only) throws
 * its batch away: nothing visible, nothing left in tmp/. */
static void
test_queue_failure_discards(void **state)
{
	struct fixture *f = *state;
	struct seen *s = open_seen(f, SEEN_READ_ONLY);
	struct deliver *t = open_target(f->md);
	struct commit_queue *q;
	static struct record rec;
	struct pf_error err;
	char body[64];
	int tags[2] = { 0, 1 }, i;

	memset(&rec, 0, sizeof(rec));
	q = commit_queue_new(s, t, placed, &rec);
	for (i = 0; i < 2; i++)
		assert_int_equal(commit_queue_add(q, finished(t, body,
		    body_of(i, body, sizeof(body))), key_of(i), &tags[i], &err),
		    0);
	assert_int_equal(commit_queue_flush(q, &err), -1);
	assert_int_equal(err.category, PF_FAIL_INTERNAL);
	assert_int_equal(rec.n, 0);
	assert_false(commit_queue_holds(q, "uidl-000"));
	assert_int_equal(test_count_entries(f->md, "new"), 0);
	assert_int_equal(test_count_entries(f->md, "tmp"), 0);
	commit_queue_free(&q);
	deliver_close(&t);
	seen_close(&s);
}

/*
 * The committer (DESIGN §3.4): in the background, a full batch is
 * committed while the next ones are added; what each commit decided is
 * told on the caller's thread, within a later commit_queue_add or the
 * flush, in order, and in the end everything is seen exactly once.
 */
static void
test_queue_background(void **state)
{
	struct fixture *f = *state;
	enum { N = 4 * SEEN_BATCH + 1 };
	struct seen *s = open_seen(f, SEEN_READ_WRITE);
	struct deliver *t = open_target(f->md);
	struct commit_queue *q;
	static struct record rec;
	struct seen_status st;
	struct pf_error err;
	char body[N][64];
	size_t len[N];
	int tags[N], i, rc;

	memset(&rec, 0, sizeof(rec));
	rec.caller = pthread_self();
	q = commit_queue_new(s, t, placed, &rec);
	commit_queue_background(q, true);
	for (i = 0; i < N; i++) {
		tags[i] = i;
		len[i] = body_of(i, body[i], sizeof(body[i]));
		rc = commit_queue_add(q, finished(t, body[i], len[i]),
		    key_of(i), &tags[i], &err);
		assert_int_not_equal(rc, -1);
		if (i + 1 == 2 * SEEN_BATCH) {
			/* Batch 0 went to the committer: nothing told. */
			assert_int_equal(rc, 1);
			assert_int_equal(rec.n, 0);
		} else if (i + 1 == 3 * SEEN_BATCH) {
			/* Batch 0 is placed (in new/, pending), batch 1 went
			 * to the committer; batch 0 is seen only once batch
			 * 1's transaction is done. */
			assert_int_equal(rc, 1);
			assert_int_equal(rec.n, 0);
			assert_true(test_count_entries(f->md, "new") >=
			    SEEN_BATCH);
		} else if (i + 1 == 4 * SEEN_BATCH) {
			/* Batch 1's commit is done: batch 0 was told here. */
			assert_int_equal(rc, 1);
			assert_int_equal(rec.n, SEEN_BATCH);
		} else if ((i + 1) % SEEN_BATCH != 0)
			assert_int_equal(rc, 0);
	}
	assert_int_equal(commit_queue_flush(q, &err), 0);
	assert_false(rec.other_thread);
	assert_int_equal(rec.n, N);
	for (i = 0; i < N; i++) {
		char want[32];

		snprintf(want, sizeof(want), "uidl-%03d", i);
		assert_int_equal(rec.tag[i], i);
		assert_string_equal(rec.key[i], want);
		assert_true(file_holds(f->md, "new", rec.loc[i], body[i],
		    len[i]));
		assert_true(seen_contains(s, want));
		assert_false(commit_queue_holds(q, want));
	}
	assert_int_equal(test_count_entries(f->md, "new"), N);
	assert_int_equal(test_count_entries(f->md, "tmp"), 0);
	st = status_of(f);
	assert_int_equal(st.pending, 0);
	assert_int_equal(st.seen, N);
	commit_queue_free(&q);
	record_free(&rec);
	deliver_close(&t);
	seen_close(&s);
}

/*
 * A batch larger than COMMIT_BACKGROUND_BYTES is committed on the
 * caller's thread even in background mode: batch 0 is told within the
 * add that commits batch 1, as without the committer.
 */
static void
test_queue_background_large(void **state)
{
	struct fixture *f = *state;
	enum { N = 3 * SEEN_BATCH, SIZE = COMMIT_BACKGROUND_BYTES /
	    SEEN_BATCH + 1024 };
	struct seen *s = open_seen(f, SEEN_READ_WRITE);
	struct deliver *t = open_target(f->md);
	struct commit_queue *q;
	static struct record rec;
	static char big[SIZE];
	struct pf_error err;
	int tags[N], i, rc;

	assert_true((uint64_t)SEEN_BATCH * SIZE > COMMIT_BACKGROUND_BYTES);
	assert_true((uint64_t)SEEN_BATCH * SIZE < SEEN_BATCH_BYTES);
	memset(big, 'x', sizeof(big));
	memset(&rec, 0, sizeof(rec));
	rec.caller = pthread_self();
	q = commit_queue_new(s, t, placed, &rec);
	commit_queue_background(q, true);
	for (i = 0; i < N; i++) {
		tags[i] = i;
		rc = commit_queue_add(q, finished(t, big, sizeof(big)),
		    key_of(i), &tags[i], &err);
		assert_int_equal(rc, (i + 1) % SEEN_BATCH == 0 &&
		    i + 1 > SEEN_BATCH ? 1 : 0);
		if (i + 1 == 2 * SEEN_BATCH)
			assert_int_equal(rec.n, 0);
	}
	/* Inline: batch 1's commit marked batch 0 seen and told it. */
	assert_int_equal(rec.n, SEEN_BATCH);
	assert_int_equal(commit_queue_flush(q, &err), 0);
	assert_false(rec.other_thread);
	assert_int_equal(rec.n, N);
	for (i = 0; i < N; i++)
		assert_int_equal(rec.tag[i], i);
	assert_int_equal(test_count_entries(f->md, "new"), N);
	assert_int_equal(status_of(f).seen, N);
	commit_queue_free(&q);
	record_free(&rec);
	deliver_close(&t);
	seen_close(&s);
}

/* Every syncfs and fsync of a message file fails (EIO), from any thread. */
static int
fail_sync(int fd)
{
	(void)fd;
	errno = EIO;
	return -1;
}

/*
 * A batch whose commit fails in the background: the failure reaches the
 * caller at the next commit (here the flush) with the committer's error;
 * nothing is told, seen or visible, and nothing is left in tmp/.
 */
static void
test_queue_background_failure(void **state)
{
	struct fixture *f = *state;
	enum { N = 2 * SEEN_BATCH };
	struct seen *s = open_seen(f, SEEN_READ_WRITE);
	struct deliver *t = open_target(f->md);
	int (*saved_syncfs)(int) = maildir_syncfs_fn;
	int (*saved_fsync)(int) = maildir_fsync_fn;
	struct commit_queue *q;
	static struct record rec;
	struct seen_status st;
	struct pf_error err;
	char body[64];
	int tags[N], i, rc;

	memset(&rec, 0, sizeof(rec));
	rec.caller = pthread_self();
	q = commit_queue_new(s, t, placed, &rec);
	commit_queue_background(q, true);
	maildir_syncfs_fn = fail_sync;
	maildir_fsync_fn = fail_sync;
	for (i = 0; i < N; i++) {
		tags[i] = i;
		rc = commit_queue_add(q, finished(t, body, body_of(i, body,
		    sizeof(body))), key_of(i), &tags[i], &err);
		/* The last add hands batch 0 over: its failure is not
		 * known yet. */
		if (rc != (i + 1 == N ? 1 : 0))
			break;
	}
	memset(&err, 0, sizeof(err));
	rc = commit_queue_flush(q, &err);
	maildir_syncfs_fn = saved_syncfs;
	maildir_fsync_fn = saved_fsync;
	assert_int_equal(i, N);
	assert_int_equal(rc, -1);
	assert_int_equal(err.category, PF_FAIL_IO);
	assert_true(strstr(err.what, "sync") != NULL);
	assert_int_equal(rec.n, 0);
	assert_int_equal(test_count_entries(f->md, "new"), 0);
	commit_queue_free(&q);
	assert_int_equal(test_count_entries(f->md, "tmp"), 0);
	st = status_of(f);
	assert_int_equal(st.seen, 0);
	deliver_close(&t);
	seen_close(&s);
}

/* ---- recovery ---- */

#define CHILD_CHECK(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "# %s:%d: %s (%s)\n", __FILE__, __LINE__, \
		    #cond, err.what);					\
		_exit(10);						\
	}								\
} while (0)

static const char *const small[] = {
	"a: new\n", "b: read\n", "h: legacy row\n", "e: other\n", "g: gone\n",
};

/*
 * A run killed between steps 6b and 6c, for real: a child delivers
 *   a, b, h  into Mail, pending (h as a row from before schema 2, without
 *            its Maildir), committed into new/;
 *   c        into Mail, pending, big, never committed (tmp/ only);
 *   d        into Mail, big, never recorded (tmp/ only);
 *   e        into Other (a Maildir the account had before), pending,
 *            committed;
 *   f        into Other, pending, big, tmp/ only;
 *   g        into Gone, pending, committed (Gone is removed later);
 * then prints b's location and is SIGKILLed.
 */
static void
recover_child(const struct fixture *f)
{
	struct deliver *md = NULL, *other = NULL, *gone = NULL;
	struct deliver_msg *a, *b, *c, *d, *e, *fm, *g, *h, *batch[3];
	struct seen_entry rows[7];
	struct pf_error err;
	struct seen *s = NULL;
	static char big[MAILDIR_WRITE_BUF + 1];
	struct deliver_result ok[3];

	memset(&err, 0, sizeof(err));
	memset(big, 'B', sizeof(big));
	CHILD_CHECK(seen_open(f->state, WHO, SEEN_READ_WRITE, &s, &err) == 0);
	CHILD_CHECK(deliver_open("maildir", f->md, DELIVER_CREATE, &md,
	    &err) == 0);
	CHILD_CHECK(deliver_open("maildir", f->other, DELIVER_CREATE, &other,
	    &err) == 0);
	CHILD_CHECK(deliver_open("maildir", f->gone, DELIVER_CREATE, &gone,
	    &err) == 0);
#define DELIVER(t, m, text, len)					\
	CHILD_CHECK(deliver_begin((t), &(m), &err) == 0 &&		\
	    deliver_write((m), (text), (len), &err) == 0 &&		\
	    deliver_finish((m), &err) == 0)
	DELIVER(md, a, small[0], strlen(small[0]));
	DELIVER(md, b, small[1], strlen(small[1]));
	DELIVER(md, h, small[2], strlen(small[2]));
	DELIVER(md, c, big, sizeof(big));
	DELIVER(md, d, big, sizeof(big));
	DELIVER(other, e, small[3], strlen(small[3]));
	DELIVER(other, fm, big, sizeof(big));
	DELIVER(gone, g, small[4], strlen(small[4]));
#undef DELIVER
#define ROW(i, u, m, t) rows[i] = (struct seen_entry){ .uidl = (u),	\
	    .location = deliver_location(m), .target = (t),		\
	    .size = deliver_size(m), .fetched = 5000 }
	ROW(0, "a", a, f->md);
	ROW(1, "b", b, f->md);
	ROW(2, "h", h, NULL);
	ROW(3, "c", c, f->md);
	ROW(4, "e", e, f->other);
	ROW(5, "f", fm, f->other);
	ROW(6, "g", g, f->gone);
#undef ROW
	CHILD_CHECK(seen_pending_add(s, rows, 7, &err) == 0);
	batch[0] = a;
	batch[1] = b;
	batch[2] = h;
	CHILD_CHECK(deliver_commit(md, batch, 3, ok, &err) == 0);
	CHILD_CHECK(ok[0].status == DELIVER_PLACED &&
	    ok[1].status == DELIVER_PLACED && ok[2].status == DELIVER_PLACED);
	CHILD_CHECK(deliver_commit(other, &e, 1, ok, &err) == 0 &&
	    ok[0].status == DELIVER_PLACED);
	CHILD_CHECK(deliver_commit(gone, &g, 1, ok, &err) == 0 &&
	    ok[0].status == DELIVER_PLACED);
	printf("%s\n", deliver_location(b));
	fflush(stdout);
	kill(getpid(), SIGKILL);
	_exit(4);
}

static void
test_recover(void **state)
{
	struct fixture *f = *state;
	struct seen_entry *pending = NULL;
	struct deliver *t = NULL;
	struct seen_status st;
	struct pf_error err;
	struct seen *s = NULL;
	char bname[NAME_MAX + 1], path[PATH_MAX];
	size_t n = 0;
	ssize_t len;
	int pfd[2];
	pid_t pid;

	assert_int_equal(pipe(pfd), 0);
	pid = test_fork();
	if (pid == 0) {
		close(pfd[0]);
		dup2(pfd[1], STDOUT_FILENO);
		recover_child(f);
	}
	close(pfd[1]);
	len = read(pfd[0], bname, sizeof(bname) - 1);
	close(pfd[0]);
	test_wait_signal(pid, SIGKILL);
	assert_true(len > 1);
	bname[len - 1] = '\0';

	/* What the kill left. */
	assert_int_equal(test_count_entries(f->md, "new"), 3);
	assert_int_equal(test_count_entries(f->md, "tmp"), 2);
	assert_int_equal(test_count_entries(f->other, "new"), 1);
	assert_int_equal(test_count_entries(f->other, "tmp"), 1);
	assert_int_equal(test_count_entries(f->gone, "new"), 1);
	st = status_of(f);
	assert_int_equal(st.pending, 7);
	assert_int_equal(st.seen, 0);

	/* Meanwhile a reader read b; another program writes into Other's
	 * tmp/; Gone is removed. */
	test_mail_read(f->md, bname, ":2,S");
	test_pathf(path, sizeof(path), "%s/tmp/1700000000.M1P999999.mda",
	    f->other);
	assert_int_equal(test_write_file(path, O_CREAT | O_EXCL, "m", 1), 0);
	assert_int_equal(test_rmtree(f->gone), 0);

	/* The next run: its target, its seen-list, recovery. */
	t = open_target(f->md);
	s = open_seen(f, SEEN_READ_WRITE);
	assert_int_equal(commit_recover(s, t, "work", &err), 0);

	/* Exactly once: what reached a Maildir that is still there is seen,
	 * the rest will be fetched again. */
	assert_true(seen_contains(s, "a"));
	assert_true(seen_contains(s, "b"));
	assert_true(seen_contains(s, "h"));
	assert_true(seen_contains(s, "e"));
	assert_false(seen_contains(s, "c"));
	assert_false(seen_contains(s, "d"));
	assert_false(seen_contains(s, "f"));
	assert_false(seen_contains(s, "g"));
	st = status_of(f);
	assert_int_equal(st.pending, 0);
	assert_int_equal(st.seen, 4);
	assert_int_equal(st.bytes, strlen(small[0]) + strlen(small[1]) +
	    strlen(small[2]) + strlen(small[3]));
	assert_int_equal(seen_pending_load(s, &pending, &n, &err), 0);
	assert_int_equal(n, 0);

	/* tmp/ leftovers are gone from both Maildirs (the other program's
	 * fresh file stays); nothing visible was touched; Gone stays gone. */
	assert_int_equal(test_count_entries(f->md, "tmp"), 0);
	assert_int_equal(test_count_entries(f->md, "new"), 2);
	assert_int_equal(test_count_entries(f->md, "cur"), 1);
	assert_int_equal(test_count_entries(f->other, "tmp"), 1);
	assert_true(test_path_exists(path));
	assert_int_equal(test_count_entries(f->other, "new"), 1);
	assert_false(test_path_exists(f->gone));

	/* Recovering again changes nothing. */
	assert_int_equal(commit_recover(s, t, "work", &err), 0);
	st = status_of(f);
	assert_int_equal(st.pending, 0);
	assert_int_equal(st.seen, 4);
	assert_false(test_path_exists(f->gone));
	seen_close(&s);
	deliver_close(&t);
}

/* A Maildir that is still there but no longer one (cur/ removed) holds
 * none of its pending deliveries, and is left as it is. */
static void
test_recover_not_a_maildir(void **state)
{
	struct fixture *f = *state;
	struct deliver *t = open_target(f->md), *o = open_target(f->other);
	struct deliver_msg *m;
	struct seen *s = open_seen(f, SEEN_READ_WRITE);
	struct seen_entry row;
	struct seen_status st;
	struct pf_error err;
	char path[PATH_MAX];
	struct deliver_result ok;

	m = finished(o, "x\n", 2);
	row = (struct seen_entry){ .uidl = "x", .location = deliver_location(m),
	    .target = f->other, .size = 2, .fetched = 1 };
	assert_int_equal(seen_pending_add(s, &row, 1, &err), 0);
	assert_int_equal(deliver_commit(o, &m, 1, &ok, &err), 0);
	assert_int_equal(ok.status, DELIVER_PLACED);
	deliver_free(&m);
	deliver_close(&o);
	test_pathf(path, sizeof(path), "%s/cur", f->other);
	assert_int_equal(rmdir(path), 0);

	assert_int_equal(commit_recover(s, t, "work", &err), 0);
	assert_false(seen_contains(s, "x"));
	st = status_of(f);
	assert_int_equal(st.pending, 0);
	assert_int_equal(st.seen, 0);
	assert_false(test_path_exists(path));
	assert_int_equal(test_count_entries(f->other, "new"), 1);
	seen_close(&s);
	deliver_close(&t);
}

#define T(fn)	\
	cmocka_unit_test_setup_teardown(fn, setup, test_fixture_teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_open),
		T(test_seam_roundtrip),
		T(test_queue_batches),
		T(test_queue_free_discards),
		T(test_queue_byte_limit),
		T(test_queue_location_taken),
		T(test_queue_failure_discards),
		T(test_queue_background),
		T(test_queue_background_large),
		T(test_queue_background_failure),
		T(test_recover),
		T(test_recover_not_a_maildir),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
