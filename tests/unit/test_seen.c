/* test_seen.c - the seen-list: creation, group commit, crash recovery with a
 * real Maildir, which state is an account's (names, renames, state from
 * schema 1), forgetting, 20,000 UIDLs, runs and status, read-only modes. */
#include "config.h"

#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
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
#include <sqlite3.h>

#include "error.h"
#include "fsutil.h"
#include "maildir.h"
#include "params.h"
#include "seen.h"
#include "testutil.h"

#define USER	"alice"
#define HOST	"pop.example.com"

/* Group commit, step 6c, for keys whose files all reached new/. */
static int
mark_done(struct seen *s, const char *const *uidls, size_t n,
    struct pf_error *err)
{
	struct seen_entry *e = calloc(n + 1, sizeof(*e));
	bool *yes = calloc(n + 1, sizeof(*yes));
	size_t i;
	int rc;

	assert_non_null(e);
	assert_non_null(yes);
	for (i = 0; i < n; i++) {
		e[i].uidl = uidls[i];
		yes[i] = true;
	}
	rc = seen_pending_resolve(s, e, n, yes, err);
	free(e);
	free(yes);
	return rc;
}

/*
 * The configuration most tests use: three accounts on three mailboxes.
 * WHO(i) opens account i among all three, so that no test takes over
 * another configured account's state by accident.
 */
static const struct seen_owner conf[] = {
	{ "work", USER, HOST, 995 },
	{ "bob", "bob", HOST, 995 },
	{ "carol", "carol", HOST, 995 },
};
enum { WORK, BOB, CAROL };
#define WHO(i)	\
	(&(struct seen_who){ conf, sizeof(conf) / sizeof(conf[0]), (i) })

struct fixture {
	char	 dir[PATH_MAX];		/* first (test_fixture_new) */
	char	 state[PATH_MAX];	/* dir/state/sub: does not exist yet */
	char	 db[PATH_MAX];		/* state/popfetch.db */
	char	 md[PATH_MAX];		/* dir/Mail */
};

static int
setup(void **state)
{
	struct fixture *f = test_fixture_new(sizeof(*f), "test_seen");

	if (f == NULL)
		return -1;
	test_pathf(f->state, sizeof(f->state), "%s/state/sub", f->dir);
	test_pathf(f->db, sizeof(f->db), "%s/popfetch.db", f->state);
	test_pathf(f->md, sizeof(f->md), "%s/Mail", f->dir);
	*state = f;
	return 0;
}

/* One integer from the database, read behind the API's back. */
static long long
db_int(const char *db, const char *sql)
{
	sqlite3 *h = NULL;
	sqlite3_stmt *st = NULL;
	long long v = -1;

	assert_int_equal(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL),
	    SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(h, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(h);
	return v;
}

/* The journal mode of the database, asked through a second connection. */
static const char *
journal_mode(const char *db)
{
	static char mode[16];
	sqlite3 *h = NULL;
	sqlite3_stmt *q = NULL;

	assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(h, "PRAGMA journal_mode", -1, &q,
	    NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(q), SQLITE_ROW);
	snprintf(mode, sizeof(mode), "%s",
	    (const char *)sqlite3_column_text(q, 0));
	sqlite3_finalize(q);
	sqlite3_close(h);
	return mode;
}

/*
 * The file format version bytes of the database header (offsets 18, 19):
 * 1 for a rollback-journal database, 2 for WAL.  Read with read(2), so
 * that no SQLite connection can create or remove side files.
 */
static int
header_version(const char *db)
{
	unsigned char hdr[20];
	int fd;

	fd = open(db, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(read(fd, hdr, sizeof(hdr)), sizeof(hdr));
	close(fd);
	assert_int_equal(hdr[18], hdr[19]);
	return hdr[18];
}

/* The names in the state directory, sorted, joined by spaces. */
static const char *
state_files(const struct fixture *f)
{
	static char out[1024];
	struct dirent **list;
	size_t o = 0;
	int i, n;

	n = scandir(f->state, &list, NULL, alphasort);
	assert_true(n >= 0);
	out[0] = '\0';
	for (i = 0; i < n; i++) {
		if (list[i]->d_name[0] != '.')
			o += (size_t)snprintf(out + o, sizeof(out) - o, "%s%s",
			    o > 0 ? " " : "", list[i]->d_name);
		free(list[i]);
	}
	free(list);
	return out;
}

static struct seen *
open_rw(const struct fixture *f, const struct seen_who *who)
{
	struct seen *s = NULL;
	struct pf_error err;

	if (seen_open(f->state, who, SEEN_READ_WRITE, &s, &err) == -1)
		fail_msg("seen_open: %s", err.what);
	return s;
}

/* What status would show for who. */
static struct seen_status
status_of(const struct fixture *f, const struct seen_who *who)
{
	struct seen_status st;
	struct pf_error err;

	if (seen_status_read(f->state, who, &st, &err) == -1)
		fail_msg("seen_status_read: %s", err.what);
	return st;
}

/* Record (uidl, name, size) as pending and then done, as the run would. */
static void
add_done(struct seen *s, const char *uidl, uint64_t size, time_t when)
{
	struct seen_entry e = { .uidl = uidl, .location = "some.name,S=1",
	    .size = size, .fetched = when };
	struct pf_error err;

	assert_int_equal(seen_pending_add(s, &e, 1, &err), 0);
	assert_int_equal(mark_done(s, &uidl, 1, &err), 0);
}

static void
test_open_creates_private_db(void **state)
{
	struct fixture *f = *state;
	struct seen *s;
	char path[PATH_MAX];

	s = open_rw(f, WHO(WORK));
	assert_string_equal(seen_path(s), f->db);
	assert_int_equal(test_mode_of(f->state), 0700);
	test_pathf(path, sizeof(path), "%s/state", f->dir);
	assert_int_equal(test_mode_of(path), 0700);
	assert_int_equal(test_mode_of(f->db), 0600);
	assert_int_equal(seen_count(s), 0);
	/* While open, WAL is a property of the file, visible to any
	 * connection. */
	assert_string_equal(journal_mode(f->db), "wal");
	seen_close(&s);
	assert_null(s);
	assert_int_equal(db_int(f->db, "PRAGMA user_version"), 2);
	assert_int_equal(db_int(f->db, "SELECT count(*) FROM sqlite_master "
	    "WHERE name IN ('mailbox', 'seen', 'pending', 'run')"), 4);
}

static void
test_pending_done_flow(void **state)
{
	struct fixture *f = *state;
	struct seen_entry e[2] = {
		{ "uidl-1", "1.M1P1Q1.h,S=100", "/m", 100, 1000 },
		{ "uidl-2", "1.M1P1Q2.h,S=250", "/m", 250, 1001 },
	};
	const char *uidls[2] = { "uidl-1", "uidl-2" };
	const char *bad[2] = { "uidl-3", "not-pending" };
	struct seen_status st;
	struct pf_error err;
	struct seen *s;
	time_t when = 0;

	s = open_rw(f, WHO(WORK));
	assert_int_equal(seen_pending_add(s, e, 2, &err), 0);
	assert_false(seen_contains(s, "uidl-1"));
	assert_int_equal(seen_status_read(f->state, WHO(WORK), &st, &err), 0);
	assert_true(st.ever_run);
	assert_int_equal(st.pending, 2);
	assert_int_equal(st.seen, 0);
	assert_int_equal(st.bytes, 0);

	assert_int_equal(mark_done(s, uidls, 2, &err), 0);
	assert_true(seen_contains(s, "uidl-1"));
	assert_true(seen_lookup(s, "uidl-2", &when));
	assert_int_equal(when, 1001);
	assert_false(seen_contains(s, "uidl-3"));
	assert_int_equal(seen_count(s), 2);
	assert_int_equal(seen_status_read(f->state, WHO(WORK), &st, &err), 0);
	assert_int_equal(st.pending, 0);
	assert_int_equal(st.seen, 2);
	assert_int_equal(st.bytes, 350);

	/* Done without pending is the caller's bug; the batch is refused whole. */
	e[0].uidl = "uidl-3";
	assert_int_equal(seen_pending_add(s, e, 1, &err), 0);
	assert_int_equal(mark_done(s, bad, 2, &err), -1);
	assert_int_equal(err.category, PF_FAIL_INTERNAL);
	assert_non_null(strstr(err.what, "not-pending"));
	assert_false(seen_contains(s, "uidl-3"));
	assert_int_equal(seen_status_read(f->state, WHO(WORK), &st, &err), 0);
	assert_int_equal(st.pending, 1);
	assert_int_equal(st.bytes, 350);
	seen_close(&s);

	/* Reopened: the known set comes from the database. */
	s = open_rw(f, WHO(WORK));
	assert_int_equal(seen_count(s), 2);
	assert_true(seen_lookup(s, "uidl-1", &when));
	assert_int_equal(when, 1000);
	seen_close(&s);
}

/*
 * The crash points of the group commit, for real: a child process goes
 * through them and is SIGKILLed; the next "run" recovers.
 *   u1 delivered to tmp/ only, never recorded        -> fetched again
 *   u2 recorded pending, file still in tmp/          -> fetched again
 *   u3 pending, renamed into new/, not marked done   -> done
 *   u4 as u3, then moved to cur/ with ":2,S" by a reader -> done
 *   u5 fully done                                    -> done (control)
 */
static void
crash_child(const struct fixture *f)
{
	struct maildir *md = NULL;
	struct maildir_delivery *d[5];
	struct seen_entry e[4];
	struct pf_error err;
	struct seen *s = NULL;
	const char *u5 = "u5";
	static char big[MAILDIR_WRITE_BUF + 1];
	char body[5][16];
	int i;

	memset(body, 0, sizeof(body));
	if (maildir_create(f->md, &err) == -1 ||
	    maildir_open(f->md, &md, &err) == -1 ||
	    seen_open(f->state, WHO(WORK), SEEN_READ_WRITE, &s, &err) == -1)
		_exit(1);
	for (i = 0; i < 5; i++) {
		snprintf(body[i], sizeof(body[i]), "message %d\n", i + 1);
		if (maildir_deliver_begin(md, &d[i], &err) == -1 ||
		    maildir_deliver_write(d[i], body[i], strlen(body[i]) + i,
		    &err) == -1)
			_exit(2);
		/* u1 and u2 are big: their files are in tmp/ at once (a
		 * small message reaches tmp/ only when a sync thread
		 * writes it, which the kill may come before). */
		if (i < 2 && maildir_deliver_write(d[i], big, sizeof(big),
		    &err) == -1)
			_exit(2);
		if (maildir_deliver_finish(d[i], &err) == -1)
			_exit(2);
	}
	for (i = 0; i < 4; i++) {
		static const char *const u[] = { "u2", "u3", "u4", "u5" };

		e[i].uidl = u[i];
		e[i].location = maildir_delivery_name(d[i + 1]);
		e[i].target = f->md;
		e[i].size = maildir_delivery_size(d[i + 1]);
		e[i].fetched = 5000;
	}
	if (seen_pending_add(s, e, 4, &err) == -1 ||
	    maildir_commit(md, &d[2], 3, NULL, &err) == -1 ||
	    mark_done(s, &u5, 1, &err) == -1)
		_exit(3);
	/* Tell the parent u4's name so it can play the mail reader. */
	printf("%s\n", maildir_delivery_name(d[3]));
	fflush(stdout);
	raise(SIGKILL);
	_exit(4);
}

static void
test_recovery_after_sigkill(void **state)
{
	struct fixture *f = *state;
	struct seen_entry *pending = NULL;
	struct maildir *md = NULL;
	struct seen_status st;
	struct pf_error err;
	struct seen *s = NULL;
	char u4name[NAME_MAX + 1];
	const char *names[8];
	bool found[8];
	size_t n = 0, i, removed = 0;
	int pfd[2];
	ssize_t len;
	pid_t pid;

	assert_int_equal(pipe(pfd), 0);
	pid = test_fork();
	if (pid == 0) {
		close(pfd[0]);
		dup2(pfd[1], STDOUT_FILENO);
		crash_child(f);
	}
	close(pfd[1]);
	len = read(pfd[0], u4name, sizeof(u4name) - 1);
	close(pfd[0]);
	test_wait_signal(pid, SIGKILL);
	assert_true(len > 1);
	u4name[len - 1] = '\0';

	/* The state the kill left. */
	assert_int_equal(test_count_entries(f->md, "tmp"), 2);
	assert_int_equal(test_count_entries(f->md, "new"), 3);
	test_mail_read(f->md, u4name, ":2,S");

	/* Readers (status, --dry-run) see it: the killed writer left the
	 * database in WAL mode with an index a read-only connection cannot
	 * rebuild. */
	assert_int_equal(seen_status_read(f->state, WHO(WORK), &st, &err), 0);
	assert_int_equal(st.pending, 3);
	assert_int_equal(st.seen, 1);
	assert_int_equal(seen_open(f->state, WHO(WORK), SEEN_READ_ONLY, &s,
	    &err), 0);
	assert_true(seen_contains(s, "u5"));
	assert_false(seen_contains(s, "u3"));
	seen_close(&s);

	/* The next run: open, recover. */
	assert_int_equal(maildir_open(f->md, &md, &err), 0);
	s = open_rw(f, WHO(WORK));
	assert_int_equal(seen_count(s), 1);
	assert_int_equal(seen_pending_load(s, &pending, &n, &err), 0);
	assert_int_equal(n, 3);
	for (i = 0; i < n; i++)
		names[i] = pending[i].location;
	assert_string_equal(pending[0].uidl, "u2");
	assert_string_equal(pending[2].uidl, "u4");
	assert_int_equal(pending[2].fetched, 5000);
	/* Each pending row names the Maildir it went to. */
	for (i = 0; i < n; i++)
		assert_string_equal(pending[i].target, f->md);
	assert_int_equal(maildir_find_delivered(md, names, n, found, &err), 0);
	assert_false(found[0]);
	assert_true(found[1]);
	assert_true(found[2]);
	assert_int_equal(seen_pending_resolve(s, pending, n, found, &err), 0);
	assert_int_equal(maildir_clean_tmp(md, &removed, &err), 0);
	assert_int_equal(removed, 2);
	seen_entries_free(&pending, n);
	assert_null(pending);

	/* Exactly once: u3, u4, u5 are seen; u1 and u2 will be fetched. */
	assert_false(seen_contains(s, "u1"));
	assert_false(seen_contains(s, "u2"));
	assert_true(seen_contains(s, "u3"));
	assert_true(seen_contains(s, "u4"));
	assert_true(seen_contains(s, "u5"));
	assert_int_equal(test_count_entries(f->md, "tmp"), 0);
	assert_int_equal(test_count_entries(f->md, "new"), 2);
	assert_int_equal(test_count_entries(f->md, "cur"), 1);
	assert_int_equal(seen_status_read(f->state, WHO(WORK), &st, &err), 0);
	assert_int_equal(st.pending, 0);
	assert_int_equal(st.seen, 3);
	/* Message i+1 has 10 + i bytes ("message N\n" and i NULs). */
	assert_int_equal(st.bytes, (10 + 2) + (10 + 3) + (10 + 4));

	/* Recovering again finds nothing to do. */
	assert_int_equal(seen_pending_load(s, &pending, &n, &err), 0);
	assert_int_equal(n, 0);
	assert_null(pending);
	seen_close(&s);
	maildir_close(&md);
}

static void
test_prune(void **state)
{
	struct fixture *f = *state;
	const char *listed[3] = { "b", "d", "zzz-new" };
	struct seen_status st;
	struct pf_error err;
	struct seen *s;
	size_t pruned = 0;

	s = open_rw(f, WHO(WORK));
	add_done(s, "a", 10, 1);
	add_done(s, "b", 20, 1);
	add_done(s, "c", 30, 1);
	add_done(s, "d", 40, 1);
	add_done(s, "e", 50, 1);
	/* Another account's rows are not ours to prune. */
	{
		struct seen *o = open_rw(f, WHO(BOB));

		add_done(o, "a", 1, 1);
		seen_close(&o);
	}
	/* forget_after 0: what is missing is forgotten at once. */
	assert_int_equal(seen_prune(s, listed, 3, 1000, 0, &pruned, &err), 0);
	assert_int_equal(pruned, 3);
	assert_int_equal(seen_count(s), 2);
	assert_false(seen_contains(s, "a"));
	assert_true(seen_contains(s, "b"));
	assert_false(seen_contains(s, "c"));
	assert_true(seen_contains(s, "d"));
	assert_false(seen_contains(s, "zzz-new"));
	seen_close(&s);

	s = open_rw(f, WHO(WORK));
	assert_int_equal(seen_count(s), 2);
	assert_true(seen_contains(s, "d"));
	/* An empty listing empties the seen-list; the byte total stays. */
	assert_int_equal(seen_prune(s, NULL, 0, 1001, 0, &pruned, &err), 0);
	assert_int_equal(pruned, 2);
	assert_int_equal(seen_count(s), 0);
	seen_close(&s);
	assert_int_equal(seen_status_read(f->state, WHO(WORK), &st, &err), 0);
	assert_int_equal(st.seen, 0);
	assert_int_equal(st.bytes, 150);
	assert_int_equal(seen_status_read(f->state, WHO(BOB), &st, &err), 0);
	assert_int_equal(st.seen, 1);
}

static void
test_twenty_thousand(void **state)
{
	enum { N = 20000 };
	struct fixture *f = *state;
	struct seen_entry *e;
	const char **uidls;
	char (*names)[32];
	struct pf_error err;
	struct seen *s;
	size_t i, pruned = 0;
	double t0, t_open, t_prune;

	e = calloc(N, sizeof(*e));
	uidls = calloc(N, sizeof(*uidls));
	names = calloc(N, sizeof(*names));
	assert_non_null(e);
	assert_non_null(uidls);
	assert_non_null(names);
	for (i = 0; i < N; i++) {
		/* Not in sorted order, to exercise the merge. */
		snprintf(names[i], sizeof(names[i]), "UID%07zu",
		    (i * 7919) % N);
		e[i].uidl = names[i];
		e[i].location = "x,S=1";
		e[i].target = "/m";
		e[i].size = 1;
		e[i].fetched = (time_t)i;
		uidls[i] = names[i];
	}
	s = open_rw(f, WHO(WORK));
	/* In batches, as a run does. */
	for (i = 0; i < N; i += SEEN_BATCH * 50) {
		size_t n = N - i < SEEN_BATCH * 50 ? N - i : SEEN_BATCH * 50;

		assert_int_equal(seen_pending_add(s, e + i, n, &err), 0);
		assert_int_equal(mark_done(s, uidls + i, n, &err), 0);
	}
	assert_int_equal(seen_count(s), N);
	for (i = 0; i < N; i++)
		assert_true(seen_contains(s, uidls[i]));
	seen_close(&s);

	t0 = test_now();
	s = open_rw(f, WHO(WORK));
	t_open = test_now() - t0;
	assert_int_equal(seen_count(s), N);
	for (i = 0; i < N; i++) {
		time_t when = -1;

		assert_true(seen_lookup(s, uidls[i], &when));
		assert_int_equal(when, (time_t)i);
	}
	assert_false(seen_contains(s, "UID"));
	assert_false(seen_contains(s, "UID00000000"));
	assert_false(seen_contains(s, "UID0020000"));
	/* In the set's own order (as Dovecot lists them), each followed by
	 * an absent UIDL that sorts just after it; then backwards. */
	for (i = 0; i < N; i++) {
		char key[40];

		snprintf(key, sizeof(key), "UID%07zu", i);
		assert_true(seen_contains(s, key));
		strcat(key, "+");
		assert_false(seen_contains(s, key));
	}
	assert_false(seen_contains(s, "UID9"));
	for (i = N; i-- > 0;) {
		char key[40];

		snprintf(key, sizeof(key), "UID%07zu", i);
		assert_true(seen_contains(s, key));
		key[9] = '\0';		/* "UID000xxx": a prefix, absent */
		assert_false(seen_contains(s, key));
	}

	/* The server lists all but ten: they are marked missing, and
	 * forgotten once forget_after has passed. */
	t0 = test_now();
	assert_int_equal(seen_prune(s, uidls + 10, N - 10, 1000, 86400,
	    &pruned, &err), 0);
	t_prune = test_now() - t0;
	assert_int_equal(pruned, 0);
	assert_int_equal(seen_count(s), N);
	assert_true(seen_contains(s, uidls[3]));
	assert_true(t_prune < 5.0);
	t0 = test_now();
	assert_int_equal(seen_prune(s, uidls + 10, N - 10, 1000 + 86400,
	    86400, &pruned, &err), 0);
	t_prune = test_now() - t0;
	assert_int_equal(pruned, 10);
	assert_int_equal(seen_count(s), N - 10);
	assert_false(seen_contains(s, uidls[3]));
	assert_true(seen_contains(s, uidls[10]));
	seen_close(&s);
	/* Generous bounds (valgrind runs this too); a per-row transaction
	 * or a linear lookup would be far slower. */
	assert_true(t_open < 5.0);
	assert_true(t_prune < 5.0);
	free(e);
	free(uidls);
	free(names);
}

static void
test_runs_and_status(void **state)
{
	struct fixture *f = *state;
	struct seen_run_stats stats = { 3, 1, 2, 12345 };
	struct seen_status st;
	struct pf_error err;
	struct seen *s;
	int i;

	s = open_rw(f, WHO(WORK));
	assert_int_equal(seen_run_end(s, 5, &stats, 0, &err), -1);
	assert_int_equal(err.category, PF_FAIL_INTERNAL);

	assert_int_equal(seen_run_begin(s, 1000, &err), 0);
	assert_int_equal(seen_run_end(s, 1010, &stats, 75, &err), 0);
	assert_int_equal(seen_status_read(f->state, WHO(WORK), &st, &err), 0);
	assert_true(st.ever_run);
	assert_int_equal(st.last_start, 1000);
	assert_int_equal(st.last_end, 1010);
	assert_int_equal(st.last_exit, 75);
	assert_int_equal(db_int(f->db, "SELECT fetched + skipped + deleted "
	    "FROM run"), 6);
	assert_int_equal(db_int(f->db, "SELECT bytes FROM run"), 12345);

	/* A run that was killed has a start and no end. */
	assert_int_equal(seen_run_begin(s, 2000, &err), 0);
	assert_int_equal(seen_status_read(f->state, WHO(WORK), &st, &err), 0);
	assert_int_equal(st.last_start, 2000);
	assert_int_equal(st.last_end, 0);
	assert_int_equal(st.last_exit, -1);

	/* The history is bounded. */
	for (i = 0; i < 3 * SEEN_RUN_HISTORY; i++) {
		assert_int_equal(seen_run_begin(s, 3000 + i, &err), 0);
		assert_int_equal(seen_run_end(s, 3000 + i, &stats, 0, &err), 0);
	}
	assert_int_equal(db_int(f->db, "SELECT count(*) FROM run"),
	    SEEN_RUN_HISTORY);
	/* ... and what it keeps are the newest runs. */
	assert_int_equal(db_int(f->db, "SELECT min(started) FROM run"),
	    3000 + 2 * SEEN_RUN_HISTORY);
	assert_int_equal(seen_status_read(f->state, WHO(WORK), &st, &err), 0);
	assert_int_equal(st.last_start, 3000 + 3 * SEEN_RUN_HISTORY - 1);
	assert_int_equal(st.last_exit, 0);
	seen_close(&s);
}

static void
test_status_creates_nothing(void **state)
{
	struct fixture *f = *state;
	struct seen_status st;
	struct pf_error err;

	/* No state directory at all. */
	memset(&st, 0x55, sizeof(st));
	assert_int_equal(seen_status_read(f->state, WHO(WORK), &st, &err), 0);
	assert_false(st.ever_run);
	assert_int_equal(st.seen, 0);
	assert_int_equal(st.bytes, 0);
	assert_int_equal(st.pending, 0);
	assert_int_equal(st.last_start, 0);
	assert_int_equal(st.last_end, 0);
	assert_false(test_path_exists(f->state));

	/* The directory exists, the database does not. */
	assert_int_equal(pf_mkdirs(f->state, &err), 0);
	assert_int_equal(seen_status_read(f->state, WHO(WORK), &st, &err), 0);
	assert_false(st.ever_run);
	assert_false(test_path_exists(f->db));
	assert_int_equal(test_count_entries(f->state, "."), 0);

	/* A database without this mailbox: never run either. */
	{
		struct seen *s = open_rw(f, WHO(BOB));

		seen_close(&s);
	}
	assert_int_equal(seen_status_read(f->state, WHO(WORK), &st, &err), 0);
	assert_false(st.ever_run);
}

static void
test_read_only(void **state)
{
	struct fixture *f = *state;
	struct seen_entry e = { "u", "n,S=1", "/m", 1, 1 };
	const char *u = "u";
	struct pf_error err;
	struct seen *s = NULL;

	/* No database: an empty set, nothing created, no writes. */
	assert_int_equal(seen_open(f->state, WHO(WORK), SEEN_READ_ONLY, &s,
	    &err), 0);
	assert_int_equal(seen_count(s), 0);
	assert_false(seen_contains(s, "u"));
	assert_int_equal(seen_pending_add(s, &e, 1, &err), -1);
	assert_int_equal(err.category, PF_FAIL_INTERNAL);
	assert_int_equal(seen_prune(s, NULL, 0, 1, 0, NULL, &err), -1);
	assert_int_equal(seen_forget(s, &u, 1, &err), -1);
	assert_int_equal(err.category, PF_FAIL_INTERNAL);
	assert_int_equal(seen_run_begin(s, 1, &err), -1);
	seen_close(&s);
	assert_false(test_path_exists(f->state));
	/* A closed seen-list is refused, not dereferenced. */
	assert_int_equal(seen_run_end(NULL, 1, &(struct seen_run_stats){ 0 }, 0,
	    &err), -1);
	assert_int_equal(err.category, PF_FAIL_INTERNAL);

	/* With a database: sees it, changes nothing. */
	s = open_rw(f, WHO(WORK));
	add_done(s, "u", 1, 1);
	seen_close(&s);
	assert_int_equal(seen_open(f->state, WHO(WORK), SEEN_READ_ONLY, &s,
	    &err), 0);
	assert_true(seen_contains(s, "u"));
	assert_int_equal(mark_done(s, &u, 1, &err), -1);
	assert_int_equal(err.category, PF_FAIL_INTERNAL);
	seen_close(&s);
	/* A mailbox not in it: empty, and no row is added. */
	assert_int_equal(seen_open(f->state, WHO(CAROL), SEEN_READ_ONLY, &s,
	    &err), 0);
	assert_int_equal(seen_count(s), 0);
	seen_close(&s);
	assert_int_equal(db_int(f->db, "SELECT count(*) FROM mailbox"), 1);
}

/*
 * popfetch(1): --dry-run (and status) may create the state directory and a lock
 * file, nothing else.  The database stays in WAL mode between runs, its
 * -wal and -shm files beside it (no checkpoint at close, doc/DESIGN.md
 * §3.4): readers find them and create nothing, and see every commit,
 * also one another popfetch (-j) made after the first one closed.
 */
static void
test_readers_leave_no_side_files(void **state)
{
	struct fixture *f = *state;
	struct seen_status st;
	struct pf_error err;
	struct seen *s, *s2;
	const char *files = "popfetch.db popfetch.db-shm popfetch.db-wal";

	s = open_rw(f, WHO(WORK));
	add_done(s, "u1", 10, 1);
	assert_int_equal(header_version(f->db), 2);
	seen_close(&s);
	assert_string_equal(state_files(f), files);
	assert_int_equal(header_version(f->db), 2);

	/* Readers now create nothing, and see every commit. */
	assert_int_equal(seen_open(f->state, WHO(WORK), SEEN_READ_ONLY, &s,
	    &err), 0);
	assert_true(seen_contains(s, "u1"));
	seen_close(&s);
	assert_int_equal(seen_status_read(f->state, WHO(WORK), &st, &err), 0);
	assert_int_equal(st.seen, 1);
	assert_int_equal(st.bytes, 10);
	assert_string_equal(state_files(f), files);

	/* Two at once (-j), closing in either order. */
	s = open_rw(f, WHO(WORK));
	s2 = open_rw(f, WHO(BOB));
	add_done(s, "u2", 20, 2);
	seen_close(&s);
	add_done(s2, "b1", 5, 3);
	assert_int_equal(seen_status_read(f->state, WHO(WORK), &st, &err), 0);
	assert_int_equal(st.seen, 2);
	seen_close(&s2);
	assert_string_equal(state_files(f), files);
	assert_int_equal(header_version(f->db), 2);
	assert_int_equal(db_int(f->db, "SELECT count(*) FROM seen"), 3);
	assert_int_equal(db_int(f->db, "SELECT sum(bytes) FROM mailbox"), 35);
	assert_string_equal(state_files(f), files);

	/* And the next writer finds every commit. */
	s = open_rw(f, WHO(WORK));
	assert_true(seen_contains(s, "u2"));
	seen_close(&s);
	assert_string_equal(state_files(f), files);
	assert_string_equal(journal_mode(f->db), "wal");
}

static void
test_mailbox_key(void **state)
{
	char *key;

	(void)state;
	key = seen_mailbox_key("Alice.Smith", "POP.Example.COM");
	assert_string_equal(key, "Alice.Smith@pop.example.com");
	free(key);
	key = seen_mailbox_key("a@b", "X");
	assert_string_equal(key, "a@b@x");
	free(key);
}

/* One text value from the database ("(null)" for NULL, "(none)" for no
 * row), read behind the API's back. */
static const char *
db_text(const char *db, const char *sql)
{
	static char out[256];
	sqlite3 *h = NULL;
	sqlite3_stmt *st = NULL;

	assert_int_equal(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL),
	    SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(h, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) != SQLITE_ROW)
		snprintf(out, sizeof(out), "(none)");
	else if (sqlite3_column_type(st, 0) == SQLITE_NULL)
		snprintf(out, sizeof(out), "(null)");
	else
		snprintf(out, sizeof(out), "%s", sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	sqlite3_close(h);
	return out;
}

/*
 * Two accounts on one user@host with different ports (two tunnels, or
 * POP3 and POP3S) are two seen-lists; an account keeps its own when its
 * port or host is edited, because its name is its identity.
 */
static void
test_identity_is_the_name(void **state)
{
	struct fixture *f = *state;
	const struct seen_owner two[] = {
		{ "plain", USER, HOST, 110 },
		{ "tls", USER, HOST, 995 },
	};
	const struct seen_owner edited[] = {
		{ "plain", USER, "POP.Example.COM", 1110 },
		{ "tls", USER, HOST, 1110 },
	};
	struct seen *s;

	s = open_rw(f, &(struct seen_who){ two, 2, 0 });
	add_done(s, "p1", 1, 1);
	seen_close(&s);
	s = open_rw(f, &(struct seen_who){ two, 2, 1 });
	assert_int_equal(seen_count(s), 0);
	add_done(s, "t1", 2, 1);
	seen_close(&s);
	s = open_rw(f, &(struct seen_who){ two, 2, 0 });
	assert_int_equal(seen_count(s), 1);
	assert_true(seen_contains(s, "p1"));
	assert_false(seen_contains(s, "t1"));
	seen_close(&s);
	assert_int_equal(status_of(f, &(struct seen_who){ two, 2, 1 }).seen, 1);
	assert_int_equal(status_of(f, &(struct seen_who){ two, 2, 1 }).bytes,
	    2);
	assert_int_equal(db_int(f->db, "SELECT count(*) FROM mailbox"), 2);

	/* Ports (and the host's spelling) edited: now both accounts are on
	 * the same user, host and port, and each keeps its own. */
	s = open_rw(f, &(struct seen_who){ edited, 2, 0 });
	assert_int_equal(seen_count(s), 1);
	assert_true(seen_contains(s, "p1"));
	seen_close(&s);
	s = open_rw(f, &(struct seen_who){ edited, 2, 1 });
	assert_int_equal(seen_count(s), 1);
	assert_true(seen_contains(s, "t1"));
	seen_close(&s);
	assert_int_equal(db_int(f->db, "SELECT count(*) FROM mailbox"), 2);
	/* The row records the address now in use (a later rename is found
	 * by it), the host lower-cased. */
	assert_int_equal(db_int(f->db, "SELECT port FROM mailbox "
	    "WHERE name = 'plain'"), 1110);
	assert_string_equal(db_text(f->db, "SELECT host FROM mailbox "
	    "WHERE name = 'plain'"), HOST);
	/* Read-only, too, each sees its own. */
	assert_int_equal(status_of(f, &(struct seen_who){ two, 2, 0 }).bytes,
	    1);
}

/*
 * A renamed account takes over only state on its own user, host (in any
 * case) and port: on another port, user or host it is another mailbox.
 */
static void
test_rename_needs_same_mailbox(void **state)
{
	struct fixture *f = *state;
	const struct seen_owner old[] = { { "old", USER, HOST, 995 } };
	const struct seen_owner other[] = {
		{ "new1", USER, HOST, 110 },
		{ "new2", "mallory", HOST, 995 },
		{ "new3", "Alice", HOST, 995 },
		{ "new4", USER, "pop2.example.com", 995 },
	};
	const struct seen_owner renamed[] = {
		{ "new5", USER, "POP.EXAMPLE.COM", 995 },
	};
	struct seen *s;
	size_t i;

	s = open_rw(f, &(struct seen_who){ old, 1, 0 });
	add_done(s, "u1", 10, 1);
	seen_close(&s);
	for (i = 0; i < 4; i++) {
		/* Each alone in the configuration: "old" is an orphan. */
		const struct seen_who who = { &other[i], 1, 0 };

		assert_false(status_of(f, &who).ever_run);
		s = open_rw(f, &who);
		assert_int_equal(seen_count(s), 0);
		seen_close(&s);
	}
	assert_int_equal(db_int(f->db, "SELECT count(*) FROM mailbox"), 5);
	assert_int_equal(db_int(f->db, "SELECT bytes FROM mailbox "
	    "WHERE name = 'old'"), 10);
	s = open_rw(f, &(struct seen_who){ renamed, 1, 0 });
	assert_true(seen_contains(s, "u1"));
	seen_close(&s);
	assert_int_equal(db_int(f->db, "SELECT count(*) FROM mailbox"), 5);
	assert_int_equal(db_int(f->db, "SELECT bytes FROM mailbox "
	    "WHERE name = 'new5'"), 10);
}

/*
 * An account renamed in the configuration (same user, host and port, the
 * old name gone from it) takes over the old name's state, with its bytes
 * and run history; the newest first when there are several.
 */
static void
test_renamed_account_takes_over(void **state)
{
	struct fixture *f = *state;
	const struct seen_owner old[] = {
		{ "old1", USER, HOST, 995 },
		{ "old2", USER, HOST, 995 },
	};
	const struct seen_owner renamed[] = {
		{ "new", USER, HOST, 995 },
		{ "newer", USER, HOST, 995 },
	};
	struct seen_run_stats stats = { 1, 0, 0, 20 };
	struct seen_status st;
	struct pf_error err;
	struct seen *s;
	time_t when = 0;

	s = open_rw(f, &(struct seen_who){ old, 2, 0 });
	add_done(s, "u1", 10, 1);
	seen_close(&s);
	s = open_rw(f, &(struct seen_who){ old, 2, 1 });
	add_done(s, "u2", 20, 2);
	assert_int_equal(seen_run_begin(s, 777, &err), 0);
	assert_int_equal(seen_run_end(s, 778, &stats, 0, &err), 0);
	seen_close(&s);

	/* Read-only, "new" already sees what it will take over, and
	 * looking changes nothing. */
	st = status_of(f, &(struct seen_who){ renamed, 2, 0 });
	assert_true(st.ever_run);
	assert_int_equal(st.seen, 1);
	assert_int_equal(st.bytes, 20);
	assert_int_equal(db_int(f->db, "SELECT count(*) FROM mailbox "
	    "WHERE name = 'old2'"), 1);

	/* "old2" renamed to "new": it takes the newest orphan. */
	s = open_rw(f, &(struct seen_who){ renamed, 2, 0 });
	assert_int_equal(seen_count(s), 1);
	assert_true(seen_lookup(s, "u2", &when));
	assert_int_equal(when, 2);
	assert_false(seen_contains(s, "u1"));
	seen_close(&s);
	st = status_of(f, &(struct seen_who){ renamed, 2, 0 });
	assert_int_equal(st.bytes, 20);
	assert_int_equal(st.last_start, 777);
	assert_int_equal(st.last_exit, 0);
	assert_int_equal(db_int(f->db, "SELECT count(*) FROM mailbox"), 2);
	assert_string_equal(db_text(f->db, "SELECT name FROM mailbox "
	    "WHERE id = (SELECT max(id) FROM mailbox)"), "new");
	/* And "old1" renamed to "newer" takes the other one. */
	s = open_rw(f, &(struct seen_who){ renamed, 2, 1 });
	assert_int_equal(seen_count(s), 1);
	assert_true(seen_contains(s, "u1"));
	seen_close(&s);
	assert_int_equal(db_int(f->db, "SELECT count(*) FROM mailbox "
	    "WHERE name IN ('old1', 'old2')"), 0);
	/* Each keeps what it took. */
	s = open_rw(f, &(struct seen_who){ renamed, 2, 0 });
	assert_true(seen_contains(s, "u2"));
	assert_false(seen_contains(s, "u1"));
	seen_close(&s);
}

/* A new account next to a configured one on the same mailbox gets its own
 * empty state: state never merges, never moves between configured
 * accounts. */
static void
test_no_take_over_while_configured(void **state)
{
	struct fixture *f = *state;
	const struct seen_owner both[] = {
		{ "old", USER, HOST, 995 },
		{ "new", USER, HOST, 995 },
	};
	struct seen *s;

	s = open_rw(f, &(struct seen_who){ both, 1, 0 });
	add_done(s, "u1", 10, 1);
	seen_close(&s);
	assert_false(status_of(f, &(struct seen_who){ both, 2, 1 }).ever_run);
	s = open_rw(f, &(struct seen_who){ both, 2, 1 });
	assert_int_equal(seen_count(s), 0);
	add_done(s, "n1", 1, 1);
	seen_close(&s);
	s = open_rw(f, &(struct seen_who){ both, 2, 0 });
	assert_int_equal(seen_count(s), 1);
	assert_true(seen_contains(s, "u1"));
	seen_close(&s);
	assert_int_equal(db_int(f->db, "SELECT count(*) FROM mailbox"), 2);
	assert_int_equal(db_int(f->db, "SELECT bytes FROM mailbox "
	    "WHERE name = 'old'"), 10);
}

/* Two configured accounts that could both take over an orphan: only the
 * first in config order does, whichever runs first. */
static void
test_first_heir_only(void **state)
{
	struct fixture *f = *state;
	const struct seen_owner gone[] = { { "gone", USER, HOST, 995 } };
	const struct seen_owner two[] = {
		{ "a", USER, HOST, 995 },
		{ "b", USER, HOST, 995 },
	};
	struct seen_orphan *orphans = NULL;
	struct pf_error err;
	struct seen *s;
	size_t n = 9;

	s = open_rw(f, &(struct seen_who){ gone, 1, 0 });
	add_done(s, "u1", 10, 1);
	seen_close(&s);

	/* Read-only, the same answer. */
	assert_false(status_of(f, &(struct seen_who){ two, 2, 1 }).ever_run);
	assert_int_equal(status_of(f, &(struct seen_who){ two, 2, 0 }).seen, 1);
	assert_int_equal(seen_orphans_read(f->state,
	    &(struct seen_who){ two, 2, 0 }, &orphans, &n, &err), 0);
	assert_int_equal(n, 0);
	assert_null(orphans);

	/* "b" runs first: it gets nothing, and leaves it for "a". */
	s = open_rw(f, &(struct seen_who){ two, 2, 1 });
	assert_int_equal(seen_count(s), 0);
	seen_close(&s);
	assert_string_equal(db_text(f->db, "SELECT name FROM mailbox "
	    "WHERE bytes = 10"), "gone");
	s = open_rw(f, &(struct seen_who){ two, 2, 0 });
	assert_int_equal(seen_count(s), 1);
	assert_true(seen_contains(s, "u1"));
	seen_close(&s);
	s = open_rw(f, &(struct seen_who){ two, 2, 1 });
	assert_int_equal(seen_count(s), 0);
	seen_close(&s);
	assert_string_equal(db_text(f->db, "SELECT name FROM mailbox "
	    "WHERE bytes = 10"), "a");
	assert_int_equal(db_int(f->db, "SELECT count(*) FROM mailbox"), 2);
}

/* Schema 1, as popfetch 1.x left it: state keyed by "user@host". */
static const char v1_schema[] =
	"CREATE TABLE mailbox ("
	"  id      INTEGER PRIMARY KEY,"
	"  key     TEXT NOT NULL UNIQUE,"
	"  bytes   INTEGER NOT NULL DEFAULT 0"
	");"
	"CREATE TABLE seen ("
	"  mailbox INTEGER NOT NULL REFERENCES mailbox(id),"
	"  uidl    TEXT NOT NULL,"
	"  size    INTEGER NOT NULL,"
	"  fetched INTEGER NOT NULL,"
	"  PRIMARY KEY (mailbox, uidl)"
	") WITHOUT ROWID;"
	"CREATE TABLE pending ("
	"  mailbox INTEGER NOT NULL REFERENCES mailbox(id),"
	"  uidl    TEXT NOT NULL,"
	"  name    TEXT NOT NULL,"
	"  size    INTEGER NOT NULL,"
	"  fetched INTEGER NOT NULL,"
	"  PRIMARY KEY (mailbox, uidl)"
	") WITHOUT ROWID;"
	"CREATE TABLE run ("
	"  id        INTEGER PRIMARY KEY,"
	"  mailbox   INTEGER NOT NULL REFERENCES mailbox(id),"
	"  started   INTEGER NOT NULL,"
	"  ended     INTEGER,"
	"  fetched   INTEGER,"
	"  skipped   INTEGER,"
	"  deleted   INTEGER,"
	"  bytes     INTEGER,"
	"  exit_code INTEGER"
	");"
	"CREATE INDEX run_by_mailbox ON run (mailbox, id);"
	/* Two mailboxes: one nobody configures any more, and alice's. */
	"INSERT INTO mailbox (id, key, bytes) VALUES"
	"  (1, 'zed@other.example.org', 50),"
	"  (2, 'alice@pop.example.com', 300);"
	"INSERT INTO seen VALUES (1, 'z1', 50, 100), (2, 'L1', 100, 200),"
	"  (2, 'L2', 200, 201);"
	"INSERT INTO pending VALUES (2, 'P1', '1.M1P1Q1.h,S=5', 5, 202);"
	"INSERT INTO run (mailbox, started, ended, fetched, skipped, deleted,"
	"  bytes, exit_code) VALUES (2, 300, 310, 2, 0, 0, 300, 0);"
	"PRAGMA user_version = 1;";

static void
make_v1_db(const struct fixture *f)
{
	struct pf_error err;
	sqlite3 *h = NULL;

	assert_int_equal(pf_mkdirs(f->state, &err), 0);
	assert_int_equal(sqlite3_open(f->db, &h), SQLITE_OK);
	assert_int_equal(sqlite3_exec(h, v1_schema, NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(h);
	assert_int_equal(db_int(f->db, "PRAGMA user_version"), 1);
}

/* Two accounts on alice@pop.example.com (ports differ; the host's case
 * too): the first in config order inherits the schema-1 state. */
static const struct seen_owner v1_conf[] = {
	{ "first", USER, "POP.Example.COM", 110 },
	{ "second", USER, HOST, 995 },
	{ "bob", "bob", HOST, 995 },
};
#define V1_WHO(i)	(&(struct seen_who){ v1_conf, 3, (i) })

static void
test_v1_migration(void **state)
{
	struct fixture *f = *state;
	struct seen_entry *pending = NULL;
	struct seen_orphan *orphans = NULL;
	struct seen_status st;
	struct pf_error err;
	struct seen *s;
	size_t n = 0;
	time_t when = 0;

	make_v1_db(f);
	/* "second" runs first: the database is migrated, the state is not
	 * "second"'s. */
	s = open_rw(f, V1_WHO(1));
	assert_int_equal(seen_count(s), 0);
	assert_int_equal(seen_pending_load(s, &pending, &n, &err), 0);
	assert_int_equal(n, 0);
	seen_close(&s);
	assert_int_equal(db_int(f->db, "PRAGMA user_version"), 2);
	assert_int_equal(db_int(f->db, "SELECT count(*) FROM mailbox "
	    "WHERE legacy_key IS NOT NULL AND name IS NULL"), 2);

	s = open_rw(f, V1_WHO(0));
	assert_int_equal(seen_count(s), 2);
	assert_true(seen_lookup(s, "L1", &when));
	assert_int_equal(when, 200);
	assert_true(seen_contains(s, "L2"));
	assert_false(seen_contains(s, "z1"));
	/* Its pending row survives, with no Maildir recorded. */
	assert_int_equal(seen_pending_load(s, &pending, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(pending[0].uidl, "P1");
	assert_string_equal(pending[0].location, "1.M1P1Q1.h,S=5");
	assert_null(pending[0].target);
	assert_int_equal(pending[0].size, 5);
	assert_int_equal(pending[0].fetched, 202);
	seen_entries_free(&pending, n);
	seen_close(&s);
	st = status_of(f, V1_WHO(0));
	assert_true(st.ever_run);
	assert_int_equal(st.seen, 2);
	assert_int_equal(st.bytes, 300);
	assert_int_equal(st.pending, 1);
	assert_int_equal(st.last_start, 300);
	assert_int_equal(st.last_end, 310);
	assert_int_equal(st.last_exit, 0);
	assert_string_equal(db_text(f->db, "SELECT name FROM mailbox "
	    "WHERE id = 2"), "first");
	assert_string_equal(db_text(f->db, "SELECT legacy_key FROM mailbox "
	    "WHERE id = 2"), "(null)");
	assert_int_equal(db_int(f->db, "SELECT count(*) FROM seen "
	    "WHERE missing_since IS NOT NULL"), 0);

	/* "second" still has its own (empty) state; bob never had any. */
	s = open_rw(f, V1_WHO(1));
	assert_int_equal(seen_count(s), 0);
	seen_close(&s);
	assert_false(status_of(f, V1_WHO(2)).ever_run);

	/* zed@other.example.org is nobody's: shown under its key. */
	assert_int_equal(seen_orphans_read(f->state, V1_WHO(0), &orphans, &n,
	    &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(orphans[0].label, "zed@other.example.org");
	assert_true(orphans[0].st.ever_run);
	assert_int_equal(orphans[0].st.seen, 1);
	assert_int_equal(orphans[0].st.bytes, 50);
	assert_int_equal(orphans[0].st.last_exit, -1);
	seen_orphans_free(&orphans, n);
	assert_null(orphans);
}

/* status and --dry-run on a schema-1 database that no fetch has migrated
 * yet (popfetch was just upgraded): read-only, they resolve it the same
 * way, and change nothing. */
static void
test_v1_read_only(void **state)
{
	struct fixture *f = *state;
	struct seen_orphan *orphans = NULL;
	struct seen_status st;
	struct pf_error err;
	struct seen *s = NULL;
	size_t n = 0;

	make_v1_db(f);
	if (seen_status_read(f->state, V1_WHO(0), &st, &err) == -1)
		fail_msg("seen_status_read: %s", err.what);
	assert_true(st.ever_run);
	assert_int_equal(st.seen, 2);
	assert_int_equal(st.bytes, 300);
	assert_false(status_of(f, V1_WHO(1)).ever_run);
	if (seen_open(f->state, V1_WHO(0), SEEN_READ_ONLY, &s, &err) == -1)
		fail_msg("seen_open: %s", err.what);
	assert_true(seen_contains(s, "L1"));
	seen_close(&s);
	if (seen_orphans_read(f->state, V1_WHO(0), &orphans, &n, &err) == -1)
		fail_msg("seen_orphans_read: %s", err.what);
	assert_int_equal(n, 1);
	assert_string_equal(orphans[0].label, "zed@other.example.org");
	seen_orphans_free(&orphans, n);
	assert_int_equal(db_int(f->db, "PRAGMA user_version"), 1);
}

/* status: the seen-lists no configured account owns or would take over. */
static void
test_orphans(void **state)
{
	struct fixture *f = *state;
	const struct seen_owner gone[] = { { "gone", "gina", HOST, 995 } };
	const struct seen_owner old[] = { { "old", "olga", HOST, 995 } };
	const struct seen_owner now[] = {
		{ "work", USER, HOST, 995 },
		{ "new", "olga", HOST, 995 },	/* "old", renamed */
	};
	struct seen_run_stats stats = { 2, 0, 0, 3 };
	struct seen_orphan *orphans = NULL;
	struct pf_error err;
	struct seen *s;
	size_t n = 9;

	/* No database: none, and nothing is created. */
	assert_int_equal(seen_orphans_read(f->state,
	    &(struct seen_who){ now, 2, 0 }, &orphans, &n, &err), 0);
	assert_int_equal(n, 0);
	assert_null(orphans);
	assert_false(test_path_exists(f->state));

	s = open_rw(f, &(struct seen_who){ gone, 1, 0 });
	add_done(s, "g1", 1, 1);
	add_done(s, "g2", 2, 1);
	assert_int_equal(seen_run_begin(s, 500, &err), 0);
	assert_int_equal(seen_run_end(s, 501, &stats, 0, &err), 0);
	seen_close(&s);
	s = open_rw(f, &(struct seen_who){ old, 1, 0 });
	add_done(s, "o1", 5, 1);
	seen_close(&s);
	s = open_rw(f, &(struct seen_who){ now, 2, 0 });
	add_done(s, "w1", 7, 1);
	seen_close(&s);

	/* "work" owns its row, "new" would take over "old": only "gone". */
	assert_int_equal(seen_orphans_read(f->state,
	    &(struct seen_who){ now, 2, 1 }, &orphans, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(orphans[0].label, "gone");
	assert_true(orphans[0].st.ever_run);
	assert_int_equal(orphans[0].st.seen, 2);
	assert_int_equal(orphans[0].st.bytes, 3);
	assert_int_equal(orphans[0].st.pending, 0);
	assert_int_equal(orphans[0].st.last_start, 500);
	assert_int_equal(orphans[0].st.last_end, 501);
	assert_int_equal(orphans[0].st.last_exit, 0);
	seen_orphans_free(&orphans, n);
	assert_null(orphans);
	/* Read-only: "old" was not renamed by looking. */
	assert_int_equal(db_int(f->db, "SELECT count(*) FROM mailbox "
	    "WHERE name = 'old'"), 1);
	assert_int_equal(status_of(f, &(struct seen_who){ now, 2, 1 }).seen, 1);

	/* Without "new", "old" is an orphan too, in the order made. */
	assert_int_equal(seen_orphans_read(f->state,
	    &(struct seen_who){ now, 1, 0 }, &orphans, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_string_equal(orphans[0].label, "gone");
	assert_string_equal(orphans[1].label, "old");
	assert_int_equal(orphans[1].st.seen, 1);
	assert_int_equal(orphans[1].st.bytes, 5);
	assert_int_equal(orphans[1].st.last_exit, -1);
	seen_orphans_free(&orphans, n);

	/* Once "new" has run, "old" is its own. */
	s = open_rw(f, &(struct seen_who){ now, 2, 1 });
	assert_true(seen_contains(s, "o1"));
	seen_close(&s);
	assert_int_equal(seen_orphans_read(f->state,
	    &(struct seen_who){ now, 2, 0 }, &orphans, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(orphans[0].label, "gone");
	seen_orphans_free(&orphans, n);
	/* Every configured account: none. */
	{
		const struct seen_owner all[] = {
			{ "work", USER, HOST, 995 },
			{ "new", "olga", HOST, 995 },
			{ "gone", "gina", HOST, 995 },
		};

		assert_int_equal(seen_orphans_read(f->state,
		    &(struct seen_who){ all, 3, 0 }, &orphans, &n, &err), 0);
		assert_int_equal(n, 0);
		assert_null(orphans);
	}
}

/* The missing_since of one UIDL of "work" (0 for NULL, -1 for none). */
static long long
missing_since(const struct fixture *f, const char *uidl)
{
	char sql[256];
	const char *v;

	test_pathf(sql, sizeof(sql), "SELECT missing_since FROM seen "
	    "WHERE uidl = '%s' AND mailbox = (SELECT id FROM mailbox "
	    "WHERE name = 'work')", uidl);
	v = db_text(f->db, sql);
	if (strcmp(v, "(none)") == 0)
		return -1;
	if (strcmp(v, "(null)") == 0)
		return 0;
	return atoll(v);
}

/*
 * Forgetting (doc/DESIGN.md §4): a UIDL missing from a listing is only
 * marked, and forgotten once forget_after seconds have passed since it
 * went missing; listed again, it starts over.
 */
static void
test_forget_after(void **state)
{
	struct fixture *f = *state;
	const char *ab[] = { "a", "b" }, *abc[] = { "a", "b", "c" };
	struct seen *s, *o;
	struct pf_error err;
	size_t pruned = 9;

	s = open_rw(f, WHO(WORK));
	add_done(s, "a", 1, 1);
	add_done(s, "b", 2, 1);
	add_done(s, "c", 4, 1);
	add_done(s, "d", 8, 1);
	o = open_rw(f, WHO(BOB));
	add_done(o, "d", 100, 1);
	seen_close(&o);

	/* A short listing: c and d are marked, not forgotten. */
	assert_int_equal(seen_prune(s, ab, 2, 1000, 100, &pruned, &err), 0);
	assert_int_equal(pruned, 0);
	assert_int_equal(seen_count(s), 4);
	assert_true(seen_contains(s, "c"));
	assert_true(seen_contains(s, "d"));
	assert_int_equal(missing_since(f, "a"), 0);
	assert_int_equal(missing_since(f, "c"), 1000);
	assert_int_equal(missing_since(f, "d"), 1000);
	assert_int_equal(status_of(f, WHO(WORK)).seen, 4);

	/* c is listed again: its mark goes; d keeps its first one. */
	assert_int_equal(seen_prune(s, abc, 3, 1050, 100, &pruned, &err), 0);
	assert_int_equal(pruned, 0);
	assert_int_equal(missing_since(f, "c"), 0);
	assert_int_equal(missing_since(f, "d"), 1000);
	/* c goes missing again, from 1099 on. */
	assert_int_equal(seen_prune(s, ab, 2, 1099, 100, &pruned, &err), 0);
	assert_int_equal(pruned, 0);
	assert_int_equal(missing_since(f, "c"), 1099);
	assert_int_equal(seen_count(s), 4);

	/* 100 s after d went missing, it is forgotten; c is not, though it
	 * went missing first at 1000 too. */
	assert_int_equal(seen_prune(s, ab, 2, 1100, 100, &pruned, &err), 0);
	assert_int_equal(pruned, 1);
	assert_int_equal(seen_count(s), 3);
	assert_false(seen_contains(s, "d"));
	assert_true(seen_contains(s, "c"));
	assert_int_equal(missing_since(f, "d"), -1);
	seen_close(&s);
	/* Another account's d is untouched. */
	assert_int_equal(status_of(f, WHO(BOB)).seen, 1);

	/* The marks live in the database: a later run forgets c on time. */
	s = open_rw(f, WHO(WORK));
	assert_int_equal(seen_count(s), 3);
	assert_int_equal(seen_prune(s, ab, 2, 1198, 100, &pruned, &err), 0);
	assert_int_equal(pruned, 0);
	assert_true(seen_contains(s, "c"));
	assert_int_equal(seen_prune(s, ab, 2, 1199, 100, &pruned, &err), 0);
	assert_int_equal(pruned, 1);
	assert_false(seen_contains(s, "c"));
	assert_int_equal(seen_count(s), 2);

	/* forget_after 0: forgotten at the first listing that lacks it. */
	assert_int_equal(seen_prune(s, ab, 1, 2000, 0, &pruned, &err), 0);
	assert_int_equal(pruned, 1);
	assert_false(seen_contains(s, "b"));
	assert_true(seen_contains(s, "a"));
	assert_int_equal(seen_count(s), 1);
	seen_close(&s);
	assert_int_equal(status_of(f, WHO(WORK)).seen, 1);
	/* Forgetting keeps the byte total. */
	assert_int_equal(status_of(f, WHO(WORK)).bytes, 15);
	assert_int_equal(db_int(f->db, "SELECT count(*) FROM seen"), 2);
}

/* PRAGMA data_version on connection h: changes when another connection
 * has committed a change since the last call. */
static long long
data_version(sqlite3 *h)
{
	sqlite3_stmt *st = NULL;
	long long v;

	assert_int_equal(sqlite3_prepare_v2(h, "PRAGMA data_version", -1, &st,
	    NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

/* The common run: every known UIDL is listed, none was missing: nothing is
 * written, not even the write lock is taken. */
static void
test_prune_unchanged_writes_nothing(void **state)
{
	struct fixture *f = *state;
	const char *all[] = { "b", "new", "a" }, *one[] = { "a" };
	struct pf_error err;
	struct seen *s;
	sqlite3 *h = NULL;
	size_t pruned = 9;
	long long v;

	s = open_rw(f, WHO(WORK));
	add_done(s, "a", 1, 1);
	add_done(s, "b", 1, 1);
	assert_int_equal(sqlite3_open(f->db, &h), SQLITE_OK);
	v = data_version(h);
	assert_int_equal(seen_prune(s, all, 3, 1000, 100, &pruned, &err), 0);
	assert_int_equal(pruned, 0);
	assert_int_equal(data_version(h), v);
	/* Another writer holds the database (another popfetch, -j): no
	 * wait, no failure. */
	assert_int_equal(sqlite3_exec(h, "BEGIN IMMEDIATE", NULL, NULL, NULL),
	    SQLITE_OK);
	assert_int_equal(seen_prune(s, all, 3, 1000, 100, &pruned, &err), 0);
	assert_int_equal(sqlite3_exec(h, "ROLLBACK", NULL, NULL, NULL),
	    SQLITE_OK);
	assert_int_equal(data_version(h), v);

	/* A mark is a write ... */
	assert_int_equal(seen_prune(s, one, 1, 1001, 100, &pruned, &err), 0);
	assert_true(data_version(h) != v);
	v = data_version(h);
	/* ... and so is clearing it, though every UIDL is listed ... */
	assert_int_equal(seen_prune(s, all, 3, 1002, 100, &pruned, &err), 0);
	assert_true(data_version(h) != v);
	assert_int_equal(missing_since(f, "b"), 0);
	v = data_version(h);
	/* ... after which there is nothing to do again. */
	assert_int_equal(seen_prune(s, all, 3, 1003, 100, &pruned, &err), 0);
	assert_int_equal(data_version(h), v);
	assert_int_equal(seen_count(s), 2);
	sqlite3_close(h);
	seen_close(&s);
}

static struct seen *
open_unloaded(const struct fixture *f, const struct seen_who *who)
{
	struct seen *s = NULL;
	struct pf_error err;

	if (seen_open_unloaded(f->state, who, SEEN_READ_WRITE, &s,
	    &err) == -1)
		fail_msg("seen_open_unloaded: %s", err.what);
	return s;
}

/* seen_match on keys[0..n): which are known, as a string of 0 and 1. */
static void
assert_match(struct seen *s, const char *const *keys, size_t n,
    const char *want)
{
	struct seen_keys k;
	bool known[16];
	char got[17];
	struct pf_error err;
	size_t i;

	assert_true(n <= 16 && strlen(want) == n);
	memset(known, 0, sizeof(known));
	seen_keys_array(&k, keys, n);
	if (seen_match(s, &k, known, &err) == -1)
		fail_msg("seen_match: %s", err.what);
	for (i = 0; i < n; i++)
		got[i] = known[i] ? '1' : '0';
	got[n] = '\0';
	assert_string_equal(got, want);
}

/*
 * seen_match: the listing merged with the rows in the primary key's
 * order (SQLite's BINARY collation: bytes as unsigned, a prefix first),
 * whatever order the server listed in, repeats included, and only this
 * account's rows; loaded or not.
 */
static void
test_match(void **state)
{
	struct fixture *f = *state;
	/* In strcmp order: "A" < "a" < "a-" < "a~" < "b" < "sha256 x" <
	 * "z" < "\xc3\xa9" (a byte over 0x7F sorts last, as unsigned). */
	static const char *const rows[] = { "a-", "A", "z", "\xc3\xa9",
	    "sha256 x", "a~" };
	static const char *const sorted[] = { "A", "a", "a-", "a~", "b",
	    "sha256 x", "z", "\xc3\xa9", "\xc3\xa9x" };
	static const char *const reversed[] = { "\xc3\xa9x", "\xc3\xa9",
	    "z", "sha256 x", "b", "a~", "a-", "a", "A" };
	static const char *const repeats[] = { "z", "a", "z", "A", "z",
	    "\xc3\xa9", "\xc3\xa9", "y" };
	static const char *const bob_only[] = { "only-bob" };
	struct pf_error err;
	struct seen *s, *o;
	size_t i;

	s = open_rw(f, WHO(WORK));
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		add_done(s, rows[i], 1, 1);
	o = open_rw(f, WHO(BOB));
	add_done(o, "only-bob", 1, 1);
	add_done(o, "b", 1, 1);
	seen_close(&o);

	assert_match(s, sorted, 9, "101101110");
	assert_match(s, reversed, 9, "011101101");
	assert_match(s, repeats, 8, "10111110");
	assert_match(s, bob_only, 1, "0");
	assert_match(s, NULL, 0, "");
	/* known[] is only ever set: what the caller marked stays. */
	{
		bool known[2] = { true, false };
		const char *k[] = { "nope", "A" };
		struct seen_keys sk;

		seen_keys_array(&sk, k, 2);
		assert_int_equal(seen_match(s, &sk, known, &err), 0);
		assert_true(known[0]);
		assert_true(known[1]);
	}
	seen_close(&s);

	/* The same without the set in memory, and a pending key is not
	 * known until decided. */
	s = open_unloaded(f, WHO(WORK));
	assert_match(s, sorted, 9, "101101110");
	assert_match(s, reversed, 9, "011101101");
	{
		struct seen_entry e = { .uidl = "b", .location = "x,S=1",
		    .size = 1, .fetched = 1 };
		const char *b = "b";

		assert_int_equal(seen_pending_add(s, &e, 1, &err), 0);
		assert_match(s, sorted, 9, "101101110");
		assert_int_equal(mark_done(s, &b, 1, &err), 0);
		assert_match(s, sorted, 9, "101111110");
	}
	seen_close(&s);

	/* Another account's list. */
	s = open_unloaded(f, WHO(BOB));
	assert_match(s, sorted, 9, "000010000");
	seen_close(&s);

	/* Read-only with no database: nothing is known. */
	{
		char none[PATH_MAX];

		test_pathf(none, sizeof(none), "%s/none", f->dir);
		assert_int_equal(seen_open(none, WHO(WORK), SEEN_READ_ONLY, &s,
		    &err), 0);
		assert_match(s, sorted, 9, "000000000");
		seen_close(&s);
	}
}

/* seen_prune without the set in memory: the same marks, counts and
 * writes as with it (test_prune, test_prune_unchanged_writes_nothing). */
static void
test_prune_unloaded(void **state)
{
	struct fixture *f = *state;
	const char *all[] = { "b", "new", "a", "b" }, *one[] = { "a" };
	struct pf_error err;
	struct seen *s;
	sqlite3 *h = NULL;
	size_t pruned = 9;
	long long v;

	s = open_rw(f, WHO(WORK));
	add_done(s, "a", 1, 1);
	add_done(s, "b", 1, 1);
	add_done(s, "c", 1, 1);
	seen_close(&s);
	s = open_rw(f, WHO(BOB));
	add_done(s, "z", 1, 1);
	seen_close(&s);

	s = open_unloaded(f, WHO(WORK));
	assert_int_equal(sqlite3_open(f->db, &h), SQLITE_OK);
	/* c is not listed: marked (a write), not yet forgotten. */
	v = data_version(h);
	assert_int_equal(seen_prune(s, all, 4, 1000, 100, &pruned, &err), 0);
	assert_int_equal(pruned, 0);
	assert_true(data_version(h) != v);
	assert_int_equal(missing_since(f, "c"), 1000);
	assert_int_equal(missing_since(f, "a"), 0);
	/* Still missing: no change, but the mark is there, so a write. */
	assert_int_equal(seen_prune(s, all, 4, 1050, 100, &pruned, &err), 0);
	assert_int_equal(missing_since(f, "c"), 1000);
	/* Listed again: cleared; then nothing to write. */
	{
		const char *back[] = { "c", "b", "a" };

		assert_int_equal(seen_prune(s, back, 3, 1060, 100, &pruned,
		    &err), 0);
		assert_int_equal(missing_since(f, "c"), 0);
		v = data_version(h);
		assert_int_equal(seen_prune(s, back, 3, 1070, 100, &pruned,
		    &err), 0);
		assert_int_equal(data_version(h), v);
	}
	/* Repeats do not make up for a missing key: b twice, no c. */
	assert_int_equal(seen_prune(s, all, 4, 1080, 100, &pruned, &err), 0);
	assert_true(data_version(h) != v);
	assert_int_equal(missing_since(f, "c"), 1080);
	/* Forgotten once missing long enough, and counted. */
	assert_int_equal(seen_prune(s, one, 1, 1180, 100, &pruned, &err), 0);
	assert_int_equal(pruned, 1);	/* c; b is marked only now */
	assert_int_equal(missing_since(f, "b"), 1180);
	sqlite3_close(h);
	seen_close(&s);
	assert_int_equal(status_of(f, WHO(WORK)).seen, 2);
	/* Another account's rows are not ours to prune. */
	assert_int_equal(status_of(f, WHO(BOB)).seen, 1);

	/* seen_prune_match: the same, and the listed keys known, before
	 * what it forgets (not listed); loaded or not. */
	{
		const char *keys[] = { "z", "b", "q", "a", "b" };
		struct seen_keys sk;
		bool known[5];
		int loaded;

		seen_keys_array(&sk, keys, 5);
		for (loaded = 0; loaded < 2; loaded++) {
			s = loaded ? open_rw(f, WHO(WORK)) :
			    open_unloaded(f, WHO(WORK));
			memset(known, 0, sizeof(known));
			assert_int_equal(seen_prune_match(s, &sk, 1200, 100,
			    known, &pruned, &err), 0);
			assert_false(known[0]);	/* z is bob's */
			assert_true(known[1]);
			assert_false(known[2]);
			assert_true(known[3]);
			assert_true(known[4]);
			assert_int_equal(missing_since(f, "b"), 0);
			seen_close(&s);
		}
	}
}

/* A UIDL whose DELE QUIT acknowledged is forgotten at once. */
static void
test_forget_keys(void **state)
{
	struct fixture *f = *state;
	char digest[SEEN_DIGEST_KEY_LEN + 1];
	const char *keys[3] = { "b", "unknown", digest }, *a = "a";
	struct pf_error err;
	struct seen *s, *o;

	snprintf(digest, sizeof(digest), "%s%064d", SEEN_DIGEST_PREFIX, 7);
	s = open_rw(f, WHO(WORK));
	add_done(s, "a", 1, 1);
	add_done(s, "b", 2, 1);
	add_done(s, "c", 4, 1);
	add_done(s, digest, 8, 1);
	o = open_rw(f, WHO(BOB));
	add_done(o, "b", 16, 1);
	seen_close(&o);

	assert_int_equal(seen_forget(s, keys, 3, &err), 0);
	assert_int_equal(seen_count(s), 2);
	assert_true(seen_contains(s, "a"));
	assert_false(seen_contains(s, "b"));
	assert_true(seen_contains(s, "c"));
	assert_false(seen_contains(s, digest));
	assert_int_equal(seen_forget(s, NULL, 0, &err), 0);
	assert_int_equal(seen_count(s), 2);
	seen_close(&s);

	/* In the database too; bob's b stays; the byte total stays. */
	s = open_rw(f, WHO(WORK));
	assert_int_equal(seen_count(s), 2);
	assert_false(seen_contains(s, "b"));
	seen_close(&s);
	assert_int_equal(status_of(f, WHO(WORK)).seen, 2);
	assert_int_equal(status_of(f, WHO(WORK)).bytes, 15);
	assert_int_equal(status_of(f, WHO(BOB)).seen, 1);

	/* Before the set is loaded, too. */
	assert_int_equal(seen_open_unloaded(f->state, WHO(WORK),
	    SEEN_READ_WRITE, &s, &err), 0);
	assert_int_equal(seen_forget(s, &a, 1, &err), 0);
	assert_int_equal(seen_load(s, &err), 0);
	assert_int_equal(seen_count(s), 1);
	assert_true(seen_contains(s, "c"));
	seen_close(&s);
}

/* Pending rows carry the Maildir they went to (doc/DESIGN.md §7). */
static void
test_pending_dir(void **state)
{
	struct fixture *f = *state;
	const struct seen_entry e[3] = {
		{ "k3", "n3", "/srv/other/Mail", 3, 12 },
		{ "k1", "n1", f->md, 1, 10 },
		{ "k2", "n2", NULL, 2, 11 },
	};
	struct seen_entry *pending = NULL;
	struct pf_error err;
	struct seen *s;
	size_t n = 0;

	s = open_rw(f, WHO(WORK));
	assert_int_equal(seen_pending_add(s, e, 3, &err), 0);
	seen_close(&s);
	s = open_rw(f, WHO(WORK));
	assert_int_equal(seen_pending_load(s, &pending, &n, &err), 0);
	assert_int_equal(n, 3);
	assert_string_equal(pending[0].uidl, "k1");
	assert_string_equal(pending[0].target, f->md);
	assert_string_equal(pending[1].uidl, "k2");
	assert_null(pending[1].target);
	assert_string_equal(pending[2].uidl, "k3");
	assert_string_equal(pending[2].target, "/srv/other/Mail");
	assert_string_equal(pending[2].location, "n3");
	assert_int_equal(pending[2].size, 3);
	assert_int_equal(pending[2].fetched, 12);
	seen_entries_free(&pending, n);
	/* Another account sees none of them. */
	{
		struct seen *o = open_rw(f, WHO(BOB));

		assert_int_equal(seen_pending_load(o, &pending, &n, &err), 0);
		assert_int_equal(n, 0);
		seen_close(&o);
	}
	seen_close(&s);
}

/* seen_any: "has this account UIDLs from an earlier listing?"; digests
 * (kept for a server without UIDL) do not count. */
static void
test_any_ignores_digests(void **state)
{
	struct fixture *f = *state;
	char digest[SEEN_DIGEST_KEY_LEN + 1];
	struct pf_error err;
	struct seen *s = NULL;
	bool any;
	int loaded;

	snprintf(digest, sizeof(digest), "%s%s", SEEN_DIGEST_PREFIX,
	    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	assert_int_equal(strlen(digest), SEEN_DIGEST_KEY_LEN);

	/* No database. */
	assert_int_equal(seen_open(f->state, WHO(WORK), SEEN_READ_ONLY, &s,
	    &err), 0);
	any = true;
	assert_int_equal(seen_any(s, &any, &err), 0);
	assert_false(any);
	seen_close(&s);

	s = open_rw(f, WHO(WORK));
	any = true;
	assert_int_equal(seen_any(s, &any, &err), 0);
	assert_false(any);
	add_done(s, digest, 1, 1);
	assert_int_equal(seen_any(s, &any, &err), 0);
	assert_false(any);
	seen_close(&s);
	/* The other account has a UIDL: not ours. */
	s = open_rw(f, WHO(BOB));
	add_done(s, "b1", 1, 1);
	seen_close(&s);
	for (loaded = 0; loaded < 2; loaded++) {
		if (loaded)
			s = open_rw(f, WHO(WORK));
		else
			assert_int_equal(seen_open_unloaded(f->state, WHO(WORK),
			    SEEN_READ_WRITE, &s, &err), 0);
		any = true;
		assert_int_equal(seen_any(s, &any, &err), 0);
		assert_false(any);
		seen_close(&s);
	}

	/* A UIDL that merely starts like one ("sha256" without the space)
	 * is a UIDL. */
	s = open_rw(f, WHO(WORK));
	add_done(s, "sha256x", 1, 1);
	seen_close(&s);
	for (loaded = 0; loaded < 2; loaded++) {
		if (loaded)
			s = open_rw(f, WHO(WORK));
		else
			assert_int_equal(seen_open_unloaded(f->state, WHO(WORK),
			    SEEN_READ_WRITE, &s, &err), 0);
		any = false;
		assert_int_equal(seen_any(s, &any, &err), 0);
		assert_true(any);
		seen_close(&s);
	}
}

static void
test_not_a_database(void **state)
{
	struct fixture *f = *state;
	struct seen_status st;
	struct pf_error err;
	struct seen *s = NULL;
	char junk[4096];

	assert_int_equal(pf_mkdirs(f->state, &err), 0);
	memset(junk, 'j', sizeof(junk));
	assert_int_equal(test_write_file(f->db, O_CREAT, junk, sizeof(junk)),
	    0);

	assert_int_equal(seen_open(f->state, WHO(WORK), SEEN_READ_WRITE, &s,
	    &err), -1);
	assert_null(s);
	assert_int_equal(err.category, PF_FAIL_IO);
	assert_non_null(strstr(err.what, f->db));
	assert_non_null(strstr(err.what, "not a database"));
	assert_int_equal(seen_status_read(f->state, WHO(WORK), &st, &err), -1);
	assert_int_equal(err.category, PF_FAIL_IO);
	assert_int_equal(seen_open(f->state, WHO(WORK), SEEN_READ_ONLY, &s,
	    &err), -1);
	assert_int_equal(err.category, PF_FAIL_IO);

	/* A state directory we cannot create. */
	test_pathf(junk, sizeof(junk), "%s/sub", f->db);
	assert_int_equal(seen_open(junk, WHO(WORK), SEEN_READ_WRITE, &s,
	    &err), -1);
	assert_int_equal(err.category, PF_FAIL_IO);
	assert_non_null(strstr(err.what, "Not a directory"));
}

static void
test_migrations(void **state)
{
	struct fixture *f = *state;
	struct pf_error err;
	struct seen *s = NULL;
	sqlite3 *h = NULL;

	/* A database at user_version 0 with no tables. */
	assert_int_equal(pf_mkdirs(f->state, &err), 0);
	assert_int_equal(sqlite3_open(f->db, &h), SQLITE_OK);
	assert_int_equal(sqlite3_exec(h, "CREATE TABLE t (x); DROP TABLE t",
	    NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(h);
	assert_int_equal(db_int(f->db, "PRAGMA user_version"), 0);
	assert_int_equal(db_int(f->db, "SELECT count(*) FROM sqlite_master"), 0);
	s = open_rw(f, WHO(WORK));
	add_done(s, "u", 7, 1);
	seen_close(&s);
	assert_int_equal(db_int(f->db, "PRAGMA user_version"), 2);
	assert_int_equal(db_int(f->db, "SELECT bytes FROM mailbox"), 7);

	/* A schema from the future is left alone. */
	assert_int_equal(sqlite3_open(f->db, &h), SQLITE_OK);
	assert_int_equal(sqlite3_exec(h, "PRAGMA user_version = 99", NULL, NULL,
	    NULL), SQLITE_OK);
	sqlite3_close(h);
	assert_int_equal(seen_open(f->state, WHO(WORK), SEEN_READ_WRITE, &s,
	    &err), -1);
	assert_int_equal(err.category, PF_FAIL_IO);
	assert_non_null(strstr(err.what, "newer"));
}

static void
test_busy_is_temporary(void **state)
{
	struct fixture *f = *state;
	struct seen_entry e = { "u", "n,S=1", "/m", 1, 1 };
	struct pf_error err;
	struct seen *s;
	sqlite3 *h = NULL;

	s = open_rw(f, WHO(WORK));
	/* Another writer holds the database past the busy timeout. */
	assert_int_equal(sqlite3_open(f->db, &h), SQLITE_OK);
	assert_int_equal(sqlite3_exec(h, "BEGIN IMMEDIATE", NULL, NULL, NULL),
	    SQLITE_OK);
	assert_int_equal(seen_pending_add(s, &e, 1, &err), -1);
	assert_int_equal(err.category, PF_FAIL_TEMP);
	assert_non_null(strstr(err.what, "locked"));
	sqlite3_exec(h, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_close(h);
	/* Once free, the same call works. */
	assert_int_equal(seen_pending_add(s, &e, 1, &err), 0);
	seen_close(&s);
}

/*
 * A popfetch killed in mid-transaction (here: while a big one has spilled
 * pages into the database file) leaves a hot journal that only a writer
 * can roll back.  Readers (status, --dry-run) must still work, and see
 * only what was committed.
 */
static void
test_readers_after_kill_mid_transaction(void **state)
{
	struct fixture *f = *state;
	struct seen_status st;
	struct pf_error err;
	struct seen *s = open_rw(f, WHO(WORK));
	char journal[PATH_MAX + 16];
	pid_t pid;

	add_done(s, "kept", 100, 1000);
	seen_close(&s);
	pid = test_fork();
	if (pid == 0) {
		sqlite3 *h = NULL;
		int i;

		/* A database an older popfetch left in rollback-journal
		 * mode (this one keeps WAL mode). */
		if (sqlite3_open(f->db, &h) != SQLITE_OK ||
		    sqlite3_exec(h, "PRAGMA journal_mode = DELETE", NULL, NULL,
		    NULL) != SQLITE_OK ||
		    sqlite3_exec(h, "PRAGMA cache_size = 10; BEGIN; "
		    "CREATE TABLE junk (b BLOB)", NULL, NULL, NULL) != SQLITE_OK)
			_exit(1);
		for (i = 0; i < 2000; i++)
			if (sqlite3_exec(h, "INSERT INTO junk VALUES "
			    "(zeroblob(2000))", NULL, NULL, NULL) != SQLITE_OK)
				_exit(2);
		raise(SIGKILL);
		_exit(3);
	}
	test_wait_signal(pid, SIGKILL);
	test_pathf(journal, sizeof(journal), "%s-journal", f->db);
	assert_true(test_path_exists(journal));

	assert_int_equal(seen_status_read(f->state, WHO(WORK), &st, &err), 0);
	assert_int_equal(st.seen, 1);
	assert_int_equal(st.bytes, 100);
	assert_int_equal(seen_open(f->state, WHO(WORK), SEEN_READ_ONLY, &s,
	    &err), 0);
	assert_true(seen_contains(s, "kept"));
	seen_close(&s);
	/* The next fetch finds it whole, without the uncommitted table. */
	s = open_rw(f, WHO(WORK));
	assert_true(seen_contains(s, "kept"));
	seen_close(&s);
	assert_int_equal(db_int(f->db, "SELECT count(*) FROM sqlite_master "
	    "WHERE name = 'junk'"), 0);
}

/* How many of this process's descriptors are open on path (the database
 * file itself, not its -wal or -shm): a connection kept open shows (so
 * may the descriptors of db_int's closed ones, which SQLite holds while
 * another connection of the process has the file open: never 0 then). */
static int
fds_on(const char *path)
{
	char real[PATH_MAX], link[PATH_MAX + 1], fdp[300];
	struct dirent *de;
	DIR *d;
	ssize_t n;
	int count = 0;

	if (realpath(path, real) == NULL)
		return 0;
	d = opendir("/proc/self/fd");
	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		snprintf(fdp, sizeof(fdp), "/proc/self/fd/%s", de->d_name);
		n = readlink(fdp, link, sizeof(link) - 1);
		if (n <= 0)
			continue;
		link[n] = '\0';
		if (strcmp(link, real) == 0)
			count++;
	}
	closedir(d);
	return count;
}

/* Begin and end a run of the account, as run_fetch does around its work. */
static void
one_run(struct seen *s, int code)
{
	struct seen_run_stats stats = { 0 };
	struct pf_error err;

	assert_int_equal(seen_run_begin(s, 1000, &err), 0);
	assert_int_equal(seen_run_end(s, 1001, &stats, code, &err), 0);
}

/*
 * fetch -j 1: one connection serves the accounts one after the other
 * (seen_reuse_begin), and each account still sees only its own state,
 * writes only its own, and commits for itself.
 */
static void
test_reuse_keeps_accounts_apart(void **state)
{
	struct fixture *f = *state;
	struct seen *s;

	seen_reuse_begin();
	s = open_rw(f, WHO(WORK));
	add_done(s, "w1", 10, 1000);
	one_run(s, 0);
	seen_close(&s);
	/* Kept open for the next account, and with nothing pending. */
	assert_true(fds_on(f->db) > 0);
	assert_int_equal(db_int(f->db, "SELECT count(*) FROM seen"), 1);

	s = open_rw(f, WHO(BOB));
	assert_int_equal(seen_count(s), 0);
	assert_false(seen_contains(s, "w1"));
	add_done(s, "b1", 20, 1000);
	add_done(s, "b2", 30, 1000);
	one_run(s, 0);
	seen_close(&s);

	s = open_rw(f, WHO(WORK));
	assert_int_equal(seen_count(s), 1);
	assert_true(seen_contains(s, "w1"));
	assert_false(seen_contains(s, "b1"));
	seen_close(&s);
	seen_reuse_end();
	assert_int_equal(fds_on(f->db), 0);

	/* Each committed on its own: another connection sees every row. */
	assert_int_equal(db_int(f->db, "SELECT count(*) FROM seen WHERE "
	    "mailbox = (SELECT id FROM mailbox WHERE name = 'bob')"), 2);
	assert_int_equal(db_int(f->db, "SELECT count(*) FROM run"), 2);
	assert_int_equal(db_int(f->db, "SELECT count(*) FROM pending"), 0);
	assert_int_equal(status_of(f, WHO(WORK)).bytes, 10);
	assert_int_equal(status_of(f, WHO(BOB)).bytes, 50);
	/* Without reuse, a close closes. */
	s = open_rw(f, WHO(CAROL));
	seen_close(&s);
	assert_int_equal(fds_on(f->db), 0);
}

/*
 * An account whose database call fails (here a trigger refuses its run
 * row) gives its connection up: the next account opens a fresh one, and
 * works; nothing of the failed transaction is committed by a later one,
 * and synchronous is FULL again for every account.
 */
static void
test_reuse_failure_not_kept(void **state)
{
	struct fixture *f = *state;
	struct seen_entry e = { "c1", "n,S=1", "/m", 1, 1 };
	struct pf_error err;
	struct seen *s;
	sqlite3 *h = NULL;

	s = open_rw(f, WHO(WORK));	/* creates the database */
	seen_close(&s);
	s = open_rw(f, WHO(BOB));
	seen_close(&s);
	assert_int_equal(sqlite3_open(f->db, &h), SQLITE_OK);
	assert_int_equal(sqlite3_exec(h, "CREATE TRIGGER refuse BEFORE INSERT "
	    "ON run WHEN NEW.mailbox = (SELECT id FROM mailbox WHERE name = "
	    "'bob') BEGIN SELECT RAISE(ABORT, 'refused by the test'); END",
	    NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(h);

	seen_reuse_begin();
	s = open_rw(f, WHO(WORK));
	one_run(s, 0);
	seen_close(&s);
	assert_true(fds_on(f->db) > 0);

	s = open_rw(f, WHO(BOB));
	assert_int_equal(seen_run_begin(s, 1000, &err), -1);
	assert_int_equal(err.category, PF_FAIL_IO);
	assert_non_null(strstr(err.what, "refused by the test"));
	seen_close(&s);
	assert_int_equal(fds_on(f->db), 0);	/* not kept */

	s = open_rw(f, WHO(CAROL));
	assert_true(fds_on(f->db) > 0);	/* a new one */
	one_run(s, 0);
	assert_int_equal(seen_pending_add(s, &e, 1, &err), 0);
	seen_close(&s);
	assert_true(fds_on(f->db) > 0);
	seen_reuse_end();

	assert_int_equal(db_int(f->db, "SELECT count(*) FROM run WHERE "
	    "mailbox = (SELECT id FROM mailbox WHERE name = 'bob')"), 0);
	assert_int_equal(db_int(f->db, "SELECT count(*) FROM run"), 2);
	assert_int_equal(db_int(f->db, "SELECT count(*) FROM pending"), 1);
}

/*
 * A database removed (or replaced) between two accounts is not written
 * through the kept connection's old descriptor: the next account opens
 * the file that is there now.
 */
static void
test_reuse_follows_the_file(void **state)
{
	struct fixture *f = *state;
	char side[PATH_MAX + 8];
	struct seen *s;

	seen_reuse_begin();
	s = open_rw(f, WHO(WORK));
	add_done(s, "w1", 10, 1000);
	seen_close(&s);
	assert_true(fds_on(f->db) > 0);
	assert_int_equal(unlink(f->db), 0);
	test_pathf(side, sizeof(side), "%s-wal", f->db);
	(void)unlink(side);
	test_pathf(side, sizeof(side), "%s-shm", f->db);
	(void)unlink(side);

	s = open_rw(f, WHO(BOB));
	assert_int_equal(seen_count(s), 0);
	add_done(s, "b1", 20, 1000);
	seen_close(&s);
	seen_reuse_end();
	assert_int_equal(db_int(f->db, "SELECT count(*) FROM seen"), 1);
	assert_int_equal(db_int(f->db, "SELECT count(*) FROM mailbox"), 1);
}

/* Each case runs in a fresh directory. */
#define T(fn)	\
	cmocka_unit_test_setup_teardown(fn, setup, test_fixture_teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_open_creates_private_db),
		T(test_pending_done_flow),
		T(test_recovery_after_sigkill),
		T(test_prune),
		T(test_twenty_thousand),
		T(test_runs_and_status),
		T(test_status_creates_nothing),
		T(test_read_only),
		T(test_readers_leave_no_side_files),
		T(test_mailbox_key),
		T(test_identity_is_the_name),
		T(test_rename_needs_same_mailbox),
		T(test_renamed_account_takes_over),
		T(test_no_take_over_while_configured),
		T(test_first_heir_only),
		T(test_v1_migration),
		T(test_v1_read_only),
		T(test_orphans),
		T(test_forget_after),
		T(test_prune_unchanged_writes_nothing),
		T(test_match),
		T(test_prune_unloaded),
		T(test_forget_keys),
		T(test_pending_dir),
		T(test_any_ignores_digests),
		T(test_not_a_database),
		T(test_migrations),
		T(test_busy_is_temporary),
		T(test_readers_after_kill_mid_transaction),
		T(test_reuse_keeps_accounts_apart),
		T(test_reuse_failure_not_kept),
		T(test_reuse_follows_the_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
