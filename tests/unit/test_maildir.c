/* test_maildir.c - Maildir delivery, names, modes, abort, recovery, disk full. */
#include "config.h"

#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/vfs.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <regex.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "deliver.h"
#include "error.h"
#include "maildir.h"
#include "maildir_seam.h"
#include "params.h"
#include "testutil.h"

/* Each test runs in a fresh directory of its own. */
struct fixture {
	char	 dir[PATH_MAX];		/* first (test_fixture_new) */
	char	 md[PATH_MAX];		/* dir/Mail */
};

static int
setup(void **state)
{
	struct fixture *f = test_fixture_new(sizeof(*f), "test_maildir");

	if (f == NULL)
		return -1;
	test_pathf(f->md, sizeof(f->md), "%s/Mail", f->dir);
	*state = f;
	return 0;
}

static bool
file_exists(const char *dir, const char *sub, const char *name)
{
	char path[PATH_MAX];

	test_pathf(path, sizeof(path), "%s/%s/%s", dir, sub, name);
	return test_path_exists(path);
}

/* A new Maildir at f->md, opened. */
static struct maildir *
new_maildir(const struct fixture *f)
{
	struct maildir *md = NULL;
	struct pf_error err;

	assert_int_equal(maildir_create(f->md, &err), 0);
	assert_int_equal(maildir_open(f->md, &md, &err), 0);
	return md;
}

/* Deliver `len` bytes of `data` in chunks of `chunk`, finish; name out. */
static struct maildir_delivery *
deliver(struct maildir *md, const char *data, size_t len, size_t chunk)
{
	struct maildir_delivery *d;
	struct pf_error err;
	size_t off, n;

	assert_int_equal(maildir_deliver_begin(md, &d, &err), 0);
	for (off = 0; off < len; off += n) {
		n = len - off < chunk ? len - off : chunk;
		assert_int_equal(maildir_deliver_write(d, data + off, n, &err), 0);
	}
	assert_int_equal(maildir_deliver_finish(d, &err), 0);
	return d;
}

static void
test_create_modes(void **state)
{
	struct fixture *f = *state;
	static const char *const dirs[] = {
		"a/b/Mail", "a", "a/b/Mail/tmp", "a/b/Mail/new", "a/b/Mail/cur",
	};
	struct pf_error err;
	char path[PATH_MAX];
	size_t i;

	test_pathf(path, sizeof(path), "%s/a/b/Mail", f->dir);
	assert_int_equal(maildir_create(path, &err), 0);
	for (i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		test_pathf(path, sizeof(path), "%s/%s", f->dir, dirs[i]);
		if (test_mode_of(path) != 0700)
			fail_msg("%s: mode %o, want 700", dirs[i],
			    (unsigned)test_mode_of(path));
	}
	/* Creating it again is fine. */
	test_pathf(path, sizeof(path), "%s/a/b/Mail/", f->dir);
	assert_int_equal(maildir_create(path, &err), 0);
}

static void
test_create_errors(void **state)
{
	struct fixture *f = *state;
	struct maildir *md = NULL;
	struct pf_error err;
	char path[PATH_MAX + 100];

	/* A file in the way. */
	test_pathf(path, sizeof(path), "%s/file", f->dir);
	assert_int_equal(test_write_file(path, O_CREAT, "", 0), 0);
	test_pathf(path, sizeof(path), "%s/file/Mail", f->dir);
	assert_int_equal(maildir_create(path, &err), -1);
	assert_int_equal(err.category, PF_FAIL_IO);
	assert_non_null(strstr(err.what, "/file"));

	/* A path longer than PATH_MAX is an error, not an abort. */
	memset(path, 'x', sizeof(path) - 1);
	path[0] = '/';
	path[sizeof(path) - 1] = '\0';
	assert_int_equal(maildir_create(path, &err), -1);
	assert_int_equal(err.category, PF_FAIL_IO);
	assert_non_null(strstr(err.what, "too long"));

	/* Opening a directory that is no Maildir. */
	assert_int_equal(maildir_open(f->dir, &md, &err), -1);
	assert_null(md);
	assert_int_equal(err.category, PF_FAIL_IO);
	assert_non_null(strstr(err.what, "/tmp): No such file or directory"));
}

static void
test_deliver_name_content_mode(void **state)
{
	struct fixture *f = *state;
	struct maildir *md = NULL;
	struct maildir_delivery *d = NULL, *d2 = NULL;
	struct pf_error err;
	char path[PATH_MAX], pattern[256], *data, *back;
	size_t len = 200 * 1000 + 17, i;
	regex_t re;
	FILE *fp;

	data = malloc(len);
	back = malloc(len + 1);
	assert_non_null(data);
	assert_non_null(back);
	for (i = 0; i < len; i++)
		data[i] = (char)(i * 7 + i / 251);

	md = new_maildir(f);
	assert_string_equal(maildir_path(md), f->md);

	/* Odd chunks, then one chunk larger than the buffer. */
	assert_int_equal(maildir_deliver_begin(md, &d, &err), 0);
	assert_null(maildir_delivery_name(d));
	assert_int_equal(maildir_deliver_write(d, data, 1, &err), 0);
	assert_int_equal(maildir_deliver_write(d, data + 1, 4095, &err), 0);
	assert_int_equal(maildir_deliver_write(d, data + 4096, 70000, &err), 0);
	assert_int_equal(maildir_deliver_write(d, data + 74096, 0, &err), 0);
	assert_int_equal(maildir_deliver_write(d, data + 74096, len - 74096,
	    &err), 0);
	assert_int_equal(maildir_deliver_finish(d, &err), 0);
	assert_int_equal(maildir_delivery_size(d), len);

	test_pathf(pattern, sizeof(pattern),
	    "^[0-9]{9,}\\.M[0-9]{1,6}P%ldQ[0-9]+\\.[^/:,]+,S=%zu$",
	    (long)getpid(), len);
	assert_int_equal(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB), 0);
	assert_int_equal(regexec(&re, maildir_delivery_name(d), 0, NULL, 0), 0);
	regfree(&re);

	/* Finished: still only in tmp/, mode 0600. */
	assert_int_equal(test_count_entries(f->md, "tmp"), 1);
	assert_int_equal(test_count_entries(f->md, "new"), 0);

	/* A second delivery gets another name. */
	d2 = deliver(md, "x\n", 2, 2);
	assert_string_not_equal(maildir_delivery_name(d), maildir_delivery_name(d2));

	assert_int_equal(maildir_commit(md, (struct maildir_delivery *[]){ d, d2 },
	    2, NULL, &err), 0);
	assert_int_equal(test_count_entries(f->md, "tmp"), 0);
	assert_int_equal(test_count_entries(f->md, "new"), 2);
	test_pathf(path, sizeof(path), "%s/new/%s", f->md,
	    maildir_delivery_name(d));
	assert_int_equal(test_mode_of(path), 0600);
	fp = fopen(path, "rb");
	assert_non_null(fp);
	assert_int_equal(fread(back, 1, len + 1, fp), len);
	fclose(fp);
	assert_memory_equal(back, data, len);

	/* Freeing a committed delivery leaves its file alone. */
	maildir_delivery_free(&d);
	maildir_delivery_free(&d2);
	assert_null(d);
	assert_int_equal(test_count_entries(f->md, "new"), 2);
	maildir_close(&md);
	assert_null(md);
	free(data);
	free(back);
}

static void
test_abort_leaves_nothing(void **state)
{
	struct fixture *f = *state;
	struct maildir *md = new_maildir(f);
	struct maildir_delivery *d = NULL;
	struct pf_error err;
	static char big[MAILDIR_WRITE_BUF + 1];

	memset(big, 'b', sizeof(big));
	/* Aborted while writing: a small message is still in memory. */
	assert_int_equal(maildir_deliver_begin(md, &d, &err), 0);
	assert_int_equal(maildir_deliver_write(d, "Subject: x\n", 11, &err), 0);
	assert_int_equal(test_count_entries(f->md, "tmp"), 0);
	maildir_delivery_free(&d);
	assert_null(d);
	assert_int_equal(test_count_entries(f->md, "tmp"), 0);

	/* A big one has its file in tmp/ while it streams in. */
	assert_int_equal(maildir_deliver_begin(md, &d, &err), 0);
	assert_int_equal(maildir_deliver_write(d, big, sizeof(big), &err), 0);
	assert_int_equal(test_count_entries(f->md, "tmp"), 1);
	maildir_delivery_free(&d);
	assert_int_equal(test_count_entries(f->md, "tmp"), 0);

	/* Aborted after finish, before commit (its file written or not). */
	d = deliver(md, "a\n", 2, 1);
	maildir_delivery_free(&d);
	assert_int_equal(test_count_entries(f->md, "tmp"), 0);
	assert_int_equal(test_count_entries(f->md, "new"), 0);
	assert_int_equal(test_count_entries(f->md, "cur"), 0);

	/* Committing an unfinished delivery is our bug, and moves nothing. */
	assert_int_equal(maildir_deliver_begin(md, &d, &err), 0);
	assert_int_equal(maildir_commit(md, &d, 1, NULL, &err), -1);
	assert_int_equal(err.category, PF_FAIL_INTERNAL);
	assert_int_equal(test_count_entries(f->md, "new"), 0);
	maildir_delivery_free(&d);
	assert_int_equal(test_count_entries(f->md, "tmp"), 0);
	maildir_close(&md);
}

/* Create dir/tmp/name, optionally aged by `age` seconds. */
static void
make_tmp(const char *md, const char *name, time_t age)
{
	char path[PATH_MAX];
	struct timespec ts[2];

	test_pathf(path, sizeof(path), "%s/tmp/%s", md, name);
	assert_int_equal(test_write_file(path, O_CREAT | O_EXCL, "junk", 4), 0);
	if (age > 0) {
		ts[0].tv_sec = ts[1].tv_sec = time(NULL) - age;
		ts[0].tv_nsec = ts[1].tv_nsec = 0;
		assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
	}
}

/* The escaped host part of a delivered name: between "Q<n>." and ",S=". */
static void
host_of(const char *name, char *host, size_t size)
{
	const char *p = strchr(strchr(name, 'Q'), '.') + 1;
	const char *e = strstr(p, ",S=");

	test_pathf(host, size, "%.*s", (int)(e - p), p);
}

static void
test_clean_tmp(void **state)
{
	struct fixture *f = *state;
	struct maildir *md = new_maildir(f);
	struct maildir_delivery *d = NULL;
	struct pf_error err;
	char host[256], name[512];
	size_t removed = 99;
	pid_t pid;

	d = deliver(md, "x", 1, 1);
	host_of(maildir_delivery_name(d), host, sizeof(host));
	maildir_delivery_free(&d);
	assert_int_equal(test_count_entries(f->md, "tmp"), 0);

	/* A popfetch killed in mid-delivery: its process is gone. */
	pid = test_fork();
	if (pid == 0) {
		struct maildir *cmd = NULL;
		struct maildir_delivery *cd = NULL;

		static char partial[MAILDIR_WRITE_BUF + 1];

		/* Big enough to be streamed into its file. */
		memset(partial, 'p', sizeof(partial));
		if (maildir_open(f->md, &cmd, &err) == -1 ||
		    maildir_deliver_begin(cmd, &cd, &err) == -1 ||
		    maildir_deliver_write(cd, partial, sizeof(partial),
		    &err) == -1)
			_exit(1);
		_exit(0);	/* no free: the file stays, as after SIGKILL */
	}
	test_wait_exit(pid, 0);
	assert_int_equal(test_count_entries(f->md, "tmp"), 1);

	/* An earlier process that had our pid. */
	test_pathf(name, sizeof(name), "1700000000.M1P%ldQ7.%s,popfetch",
	    (long)getpid(), host);
	make_tmp(f->md, name, 0);
	/* A live popfetch (pid 1 is alive and not us): kept. */
	test_pathf(name, sizeof(name), "1700000000.M1P1Q7.%s,popfetch", host);
	make_tmp(f->md, name, 0);
	/* Another host's popfetch (shared Maildir): kept. */
	make_tmp(f->md, "1700000000.M1P999999Q7.otherhost,popfetch", 0);
	/* Another program's fresh file: kept. */
	make_tmp(f->md, "1700000000.M1P999999.mda", 0);
	make_tmp(f->md, "1700000000.M1P999999Q1.otherhost", 0);
	/* Another program's file untouched for 37 hours: removed. */
	make_tmp(f->md, "1500000000.M1P999999.mda", 37 * 3600);
	assert_int_equal(test_count_entries(f->md, "tmp"), 7);

	assert_int_equal(maildir_clean_tmp(md, &removed, &err), 0);
	assert_int_equal(removed, 3);
	assert_int_equal(test_count_entries(f->md, "tmp"), 4);
	assert_true(file_exists(f->md, "tmp", name));
	assert_true(file_exists(f->md, "tmp",
	    "1700000000.M1P999999Q7.otherhost,popfetch"));
	assert_true(file_exists(f->md, "tmp", "1700000000.M1P999999.mda"));
	assert_true(file_exists(f->md, "tmp", "1700000000.M1P999999Q1.otherhost"));
	assert_false(file_exists(f->md, "tmp", "1500000000.M1P999999.mda"));
	maildir_close(&md);
}

static void
test_find_delivered(void **state)
{
	struct fixture *f = *state;
	struct maildir *md = new_maildir(f);
	struct maildir_delivery *d[3] = { NULL, NULL, NULL };
	struct pf_error err;
	char prefix[256];
	const char *names[7];
	bool found[7], placed[3] = { false, false, false };
	int i;

	d[0] = deliver(md, "one\n", 4, 4);
	d[1] = deliver(md, "two\n", 4, 4);
	d[2] = deliver(md, "three\n", 6, 6);
	assert_int_equal(maildir_commit(md, d, 3, placed, &err), 0);
	assert_true(placed[0] && placed[1] && placed[2]);

	/* A reader moved the second to cur/ with flags, the third with
	 * another field too. */
	test_mail_read(f->md, maildir_delivery_name(d[1]), ":2,S");
	test_mail_read(f->md, maildir_delivery_name(d[2]), ",W=7:2,RS");

	/* A name that is a prefix of a delivered one is not it. */
	test_pathf(prefix, sizeof(prefix), "%s", maildir_delivery_name(d[2]));
	prefix[strlen(prefix) - 1] = '\0';

	names[0] = maildir_delivery_name(d[0]);
	names[1] = maildir_delivery_name(d[1]);
	names[2] = maildir_delivery_name(d[2]);
	names[3] = "1700000000.M1P2Q3.nowhere,S=10";
	names[4] = "../new";
	names[5] = prefix;
	names[6] = "";
	for (i = 0; i < 7; i++)
		found[i] = !(i < 3);
	assert_int_equal(maildir_find_delivered(md, names, 7, found, &err), 0);
	assert_true(found[0]);
	assert_true(found[1]);
	assert_true(found[2]);
	assert_false(found[3]);
	assert_false(found[4]);
	assert_false(found[5]);
	assert_false(found[6]);
	for (i = 0; i < 3; i++)
		maildir_delivery_free(&d[i]);
	maildir_close(&md);
}

/* The content of md/sub/name, in buf (NUL-terminated); its length. */
static size_t
read_mail(const char *md, const char *sub, const char *name, char *buf,
    size_t size)
{
	char path[PATH_MAX];
	FILE *fp;
	size_t n;

	test_pathf(path, sizeof(path), "%s/%s/%s", md, sub, name);
	fp = fopen(path, "rb");
	assert_non_null(fp);
	n = fread(buf, 1, size - 1, fp);
	fclose(fp);
	buf[n] = '\0';
	return n;
}

/* Put a file "md/new/name" with `text` there, as another program (or an
 * earlier delivery that got the same unique name) would have. */
static void
squat(const char *md, const char *name, const char *text)
{
	char path[PATH_MAX];

	test_pathf(path, sizeof(path), "%s/new/%s", md, name);
	assert_int_equal(test_write_file(path, O_CREAT | O_EXCL, text,
	    strlen(text)), 0);
}

/*
 * doc/DESIGN.md §7: a name already taken in new/ is never replaced.  With
 * placed_r the delivery is just not placed (the others are), its tmp file
 * goes when it is freed; without placed_r that is an error.
 */
static void
test_commit_never_replaces(void **state)
{
	struct fixture *f = *state;
	struct maildir *md = new_maildir(f);
	struct maildir_delivery *d[3] = { NULL, NULL, NULL };
	struct pf_error err;
	bool placed[3] = { true, false, true };
	char buf[256], taken[256];
	static char big[MAILDIR_WRITE_BUF + 1];
	int i;

	/* The one that loses its name is big: streamed into tmp/. */
	memset(big, 'b', sizeof(big));
	d[0] = deliver(md, big, sizeof(big), 4096);
	d[1] = deliver(md, "second\n", 7, 7);
	d[2] = deliver(md, "third\n", 6, 6);
	/* The final name of d[0] is taken once it is known. */
	test_pathf(taken, sizeof(taken), "%s", maildir_delivery_name(d[0]));
	squat(f->md, taken, "older mail\n");

	assert_int_equal(maildir_commit(md, d, 3, placed, &err), 0);
	assert_false(placed[0]);
	assert_true(placed[1]);
	assert_true(placed[2]);
	/* The older file is untouched; the others are in. */
	assert_int_equal(read_mail(f->md, "new", taken, buf, sizeof(buf)), 11);
	assert_string_equal(buf, "older mail\n");
	assert_int_equal(test_count_entries(f->md, "new"), 3);
	read_mail(f->md, "new", maildir_delivery_name(d[1]), buf, sizeof(buf));
	assert_string_equal(buf, "second\n");
	/* d[0] is still in tmp/ until freed, then gone; new/ keeps 3. */
	assert_int_equal(test_count_entries(f->md, "tmp"), 1);
	for (i = 0; i < 3; i++)
		maildir_delivery_free(&d[i]);
	assert_int_equal(test_count_entries(f->md, "tmp"), 0);
	assert_int_equal(test_count_entries(f->md, "new"), 3);
	read_mail(f->md, "new", taken, buf, sizeof(buf));
	assert_string_equal(buf, "older mail\n");

	/* Without placed_r: an error (PF_FAIL_IO), nothing replaced. */
	d[0] = deliver(md, "fourth\n", 7, 7);
	test_pathf(taken, sizeof(taken), "%s", maildir_delivery_name(d[0]));
	squat(f->md, taken, "also older\n");
	assert_int_equal(maildir_commit(md, d, 1, NULL, &err), -1);
	assert_int_equal(err.category, PF_FAIL_IO);
	assert_non_null(strstr(err.what, taken));
	read_mail(f->md, "new", taken, buf, sizeof(buf));
	assert_string_equal(buf, "also older\n");
	maildir_delivery_free(&d[0]);
	assert_int_equal(test_count_entries(f->md, "tmp"), 0);
	assert_int_equal(test_count_entries(f->md, "new"), 4);
	maildir_close(&md);
}

/*
 * Disk full, for real: a 64 KiB tmpfs in a private mount namespace of a
 * child process (root: CLONE_NEWNS; otherwise a user namespace).  The child
 * checks and exits 0 on success; anything else fails the test.
 */
#define CHILD_CHECK(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "# %s:%d: check failed: %s (%s)\n",	\
		    __FILE__, __LINE__, #cond, err.what);		\
		_exit(10);						\
	}								\
} while (0)

static int
private_tmpfs(const char *dir)
{
	char map[64];
	uid_t uid = geteuid();
	gid_t gid = getegid();

	if (uid == 0) {
		if (unshare(CLONE_NEWNS) == -1)
			return -1;
	} else {
		if (unshare(CLONE_NEWUSER | CLONE_NEWNS) == -1)
			return -1;
		test_pathf(map, sizeof(map), "0 %ld 1", (long)uid);
		if (test_write_file("/proc/self/setgroups", 0, "deny",
		    4) == -1 || test_write_file("/proc/self/uid_map", 0, map,
		    strlen(map)) == -1)
			return -1;
		test_pathf(map, sizeof(map), "0 %ld 1", (long)gid);
		if (test_write_file("/proc/self/gid_map", 0, map,
		    strlen(map)) == -1)
			return -1;
	}
	/* The kernel ignores source and type here; valgrind wants them set. */
	if (mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) == -1)
		return -1;
	return mount("tmpfs", dir, "tmpfs", 0, "size=64k,mode=0700");
}

static void
disk_full_child(const char *dir)
{
	struct maildir *md = NULL;
	struct maildir_delivery *d = NULL;
	struct pf_error err;
	char mdpath[PATH_MAX], prefix[PATH_MAX + 32], chunk[8192];
	int i, fill, rc = 0;

	memset(&err, 0, sizeof(err));
	if (private_tmpfs(dir) == -1) {
		fprintf(stderr, "# cannot mount a tmpfs on %s: %s (needs root "
		    "or user namespaces)\n", dir, strerror(errno));
		_exit(20);
	}
	test_pathf(mdpath, sizeof(mdpath), "%s/Mail", dir);
	CHILD_CHECK(maildir_create(mdpath, &err) == 0);
	CHILD_CHECK(maildir_open(mdpath, &md, &err) == 0);
	CHILD_CHECK(maildir_deliver_begin(md, &d, &err) == 0);
	memset(chunk, 'm', sizeof(chunk));
	/* 1 MiB into 64 KiB: a write fails, or else the final flush. */
	for (i = 0; i < 128 && rc == 0; i++)
		rc = maildir_deliver_write(d, chunk, sizeof(chunk), &err);
	if (rc == 0)
		rc = maildir_deliver_finish(d, &err);
	CHILD_CHECK(rc == -1);
	CHILD_CHECK(err.category == PF_FAIL_IO);
	test_pathf(prefix, sizeof(prefix), "write(%s/tmp/", mdpath);
	CHILD_CHECK(strncmp(err.what, prefix, strlen(prefix)) == 0);
	CHILD_CHECK(strstr(err.what, ",popfetch): No space left on device")
	    != NULL);
	/* The failing call already removed the file. */
	CHILD_CHECK(test_count_entries(mdpath, "tmp") == 0);
	CHILD_CHECK(test_count_entries(mdpath, "new") == 0);
	/* The delivery is dead: further calls are refused. */
	CHILD_CHECK(maildir_deliver_write(d, "x", 1, &err) == -1);
	CHILD_CHECK(err.category == PF_FAIL_INTERNAL);
	CHILD_CHECK(maildir_deliver_finish(d, &err) == -1);
	maildir_delivery_free(&d);
	CHILD_CHECK(test_count_entries(mdpath, "tmp") == 0);
	CHILD_CHECK(test_count_entries(mdpath, "new") == 0);
	CHILD_CHECK(test_count_entries(mdpath, "cur") == 0);

	/* A small message is written by a sync thread: the failure comes
	 * from maildir_commit, which then moves nothing. */
	test_pathf(prefix, sizeof(prefix), "%s/fill", dir);
	fill = open(prefix, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CHILD_CHECK(fill != -1);
	while (write(fill, chunk, sizeof(chunk)) > 0)
		;
	CHILD_CHECK(errno == ENOSPC);
	close(fill);
	CHILD_CHECK(maildir_deliver_begin(md, &d, &err) == 0);
	CHILD_CHECK(maildir_deliver_write(d, chunk, 4096, &err) == 0);
	rc = maildir_deliver_finish(d, &err);
	if (rc == 0)
		rc = maildir_commit(md, &d, 1, NULL, &err);
	CHILD_CHECK(rc == -1);
	CHILD_CHECK(err.category == PF_FAIL_IO);
	CHILD_CHECK(strstr(err.what, ",popfetch): No space left on device")
	    != NULL);
	maildir_delivery_free(&d);
	CHILD_CHECK(test_count_entries(mdpath, "tmp") == 0);
	CHILD_CHECK(test_count_entries(mdpath, "new") == 0);
	maildir_close(&md);
	CHILD_CHECK(umount(dir) == 0);
	_exit(0);
}

static void
test_disk_full(void **state)
{
	struct fixture *f = *state;
	char dir[PATH_MAX];
	pid_t pid;

	test_pathf(dir, sizeof(dir), "%s/full", f->dir);
	assert_int_equal(mkdir(dir, 0700), 0);
	pid = test_fork();
	if (pid == 0)
		disk_full_child(dir);
	test_wait_exit(pid, 0);
}

/* md/.NAME is a Maildir++ folder: tmp/ new/ cur/ mode 0700, and an empty
 * regular file maildirfolder. */
static void
expect_folder(const char *md, const char *name)
{
	static const char *const subs[] = { "", "/tmp", "/new", "/cur" };
	char path[PATH_MAX];
	struct stat st;
	size_t i;

	for (i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
		test_pathf(path, sizeof(path), "%s/.%s%s", md, name, subs[i]);
		if (test_mode_of(path) != 0700)
			fail_msg("%s: mode %o, want 700", path,
			    (unsigned)test_mode_of(path));
	}
	test_pathf(path, sizeof(path), "%s/.%s/maildirfolder", md, name);
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_size, 0);
}

/* doc/DESIGN.md §10.2: a delivery for a folder lands in .NAME/new/, the
 * folder made at the commit; two folders and the inbox in one batch. */
static void
test_folder_deliver(void **state)
{
	struct fixture *f = *state;
	struct maildir *md = new_maildir(f);
	struct maildir_delivery *d[4];
	struct pf_error err;
	bool placed[4];
	char buf[64], sub[PATH_MAX];
	int i;

	d[0] = deliver(md, "junk one\n", 9, 9);
	d[1] = deliver(md, "list one\n", 9, 9);
	d[2] = deliver(md, "inbox\n", 6, 6);
	d[3] = deliver(md, "junk two\n", 9, 9);
	assert_int_equal(maildir_deliver_folder(d[0], "Junk", &err), 0);
	assert_int_equal(maildir_deliver_folder(d[1], "Lists", &err), 0);
	assert_int_equal(maildir_deliver_folder(d[2], "", &err), 0);
	assert_int_equal(maildir_deliver_folder(d[3], "Junk", &err), 0);
	/* Nothing is made before the commit. */
	test_pathf(sub, sizeof(sub), "%s/.Junk", f->md);
	assert_false(test_path_exists(sub));
	assert_int_equal(maildir_commit(md, d, 4, placed, &err), 0);
	for (i = 0; i < 4; i++)
		assert_true(placed[i]);
	expect_folder(f->md, "Junk");
	expect_folder(f->md, "Lists");
	assert_true(file_exists(f->md, ".Junk/new", maildir_delivery_name(d[0])));
	assert_true(file_exists(f->md, ".Junk/new", maildir_delivery_name(d[3])));
	assert_true(file_exists(f->md, ".Lists/new", maildir_delivery_name(d[1])));
	assert_true(file_exists(f->md, "new", maildir_delivery_name(d[2])));
	test_pathf(sub, sizeof(sub), "%s/.Junk", f->md);
	assert_int_equal(test_count_entries(sub, "new"), 2);
	assert_int_equal(test_count_entries(sub, "tmp"), 0);
	assert_int_equal(test_count_entries(sub, "cur"), 0);
	assert_int_equal(test_count_entries(f->md, "new"), 1);
	assert_int_equal(test_count_entries(f->md, "tmp"), 0);
	read_mail(f->md, ".Junk/new", maildir_delivery_name(d[0]), buf,
	    sizeof(buf));
	assert_string_equal(buf, "junk one\n");
	test_pathf(sub, sizeof(sub), "%s/.Lists/new/%s", f->md,
	    maildir_delivery_name(d[1]));
	assert_int_equal(test_mode_of(sub), 0600);
	for (i = 0; i < 4; i++)
		maildir_delivery_free(&d[i]);

	/* A later batch into an existing folder. */
	d[0] = deliver(md, "junk three\n", 11, 11);
	assert_int_equal(maildir_deliver_folder(d[0], "Junk", &err), 0);
	assert_int_equal(maildir_commit(md, d, 1, placed, &err), 0);
	assert_true(placed[0]);
	test_pathf(sub, sizeof(sub), "%s/.Junk", f->md);
	assert_int_equal(test_count_entries(sub, "new"), 3);
	maildir_delivery_free(&d[0]);
	maildir_close(&md);

	/* A folder another program made (no maildirfolder yet) is used. */
	md = new_maildir(f);
	test_pathf(sub, sizeof(sub), "%s/.Other", f->md);
	assert_int_equal(maildir_create(sub, &err), 0);
	d[0] = deliver(md, "other\n", 6, 6);
	assert_int_equal(maildir_deliver_folder(d[0], "Other", &err), 0);
	assert_int_equal(maildir_commit(md, d, 1, placed, &err), 0);
	expect_folder(f->md, "Other");
	assert_true(file_exists(f->md, ".Other/new", maildir_delivery_name(d[0])));
	maildir_delivery_free(&d[0]);
	maildir_close(&md);
}

/* Only names deliver_folder_ok allows; "" and NULL mean the inbox. */
static void
test_folder_names(void **state)
{
	struct fixture *f = *state;
	static const char *const bad[] = {
		"../x", "..", ".", ".x", ".Junk", "a/b", "/", "a/", "a..b",
		"x..", "a\tb", "a\nb", "a\x1b" "b", "a\x7f", "\r",
	};
	struct maildir *md = new_maildir(f);
	struct maildir_delivery *d, *e;
	struct pf_error err;
	char longname[NAME_MAX + 2];
	bool placed;
	size_t i;

	d = deliver(md, "x\n", 2, 2);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_false(deliver_folder_ok(bad[i]));
		pf_error_clear(&err);
		if (maildir_deliver_folder(d, bad[i], &err) != -1)
			fail_msg("folder \"%s\" accepted", bad[i]);
		assert_int_equal(err.category, PF_FAIL_INTERNAL);
	}
	assert_false(deliver_folder_ok(""));
	assert_false(deliver_folder_ok(NULL));
	/* NAME_MAX with its '.': the longest is NAME_MAX - 2 characters. */
	memset(longname, 'a', sizeof(longname));
	longname[NAME_MAX - 1] = '\0';
	assert_false(deliver_folder_ok(longname));
	longname[NAME_MAX - 2] = '\0';
	assert_true(deliver_folder_ok(longname));
	assert_true(deliver_folder_ok("Junk"));
	assert_true(deliver_folder_ok("a.b"));
	assert_true(deliver_folder_ok("Spam Mail"));
	assert_true(deliver_folder_ok("Ünïcödé"));

	/* A refused name leaves the delivery for the inbox. */
	assert_int_equal(maildir_deliver_folder(d, "", &err), 0);
	e = deliver(md, "y\n", 2, 2);
	assert_int_equal(maildir_deliver_folder(e, "Junk", &err), 0);
	assert_int_equal(maildir_deliver_folder(e, NULL, &err), 0);
	assert_int_equal(maildir_commit(md, &d, 1, &placed, &err), 0);
	assert_true(placed);
	assert_int_equal(maildir_commit(md, &e, 1, &placed, &err), 0);
	assert_true(placed);
	assert_true(file_exists(f->md, "new", maildir_delivery_name(d)));
	assert_true(file_exists(f->md, "new", maildir_delivery_name(e)));
	assert_int_equal(test_count_entries(f->md, "."), 3);	/* no folder */
	maildir_delivery_free(&d);
	maildir_delivery_free(&e);

	/* Before finish: out of order. */
	assert_int_equal(maildir_deliver_begin(md, &d, &err), 0);
	assert_int_equal(maildir_deliver_folder(d, "Junk", &err), -1);
	assert_int_equal(err.category, PF_FAIL_INTERNAL);
	maildir_delivery_free(&d);
	maildir_close(&md);
}

/* Through the seam: a labelled message's location is ".Junk/NAME". */
static void
test_folder_location(void **state)
{
	struct fixture *f = *state;
	struct deliver *t = NULL;
	struct deliver_msg *m = NULL, *n = NULL;
	struct deliver_result res[2];
	struct deliver_label junk = { .folder = "Junk" }, bad = { .folder = "../x" };
	struct pf_error err;
	struct deliver_msg *both[2];
	char want[NAME_MAX * 2];
	const char *name;

	assert_int_equal(deliver_open("maildir", f->md, DELIVER_CREATE, &t,
	    &err), 0);
	assert_int_equal(deliver_begin(t, &m, &err), 0);
	assert_int_equal(deliver_write(m, "x\n", 2, &err), 0);
	assert_int_equal(deliver_finish(m, &err), 0);
	name = deliver_location(m);
	assert_non_null(name);
	assert_null(strchr(name, '/'));
	test_pathf(want, sizeof(want), ".Junk/%s", name);
	assert_int_equal(deliver_label(m, &bad, &err), -1);
	assert_int_equal(err.category, PF_FAIL_INTERNAL);
	assert_int_equal(deliver_label(m, &junk, &err), 0);
	assert_string_equal(deliver_location(m), want);

	assert_int_equal(deliver_begin(t, &n, &err), 0);
	assert_int_equal(deliver_write(n, "y\n", 2, &err), 0);
	assert_int_equal(deliver_finish(n, &err), 0);
	both[0] = m;
	both[1] = n;
	assert_int_equal(deliver_commit(t, both, 2, res, &err), 0);
	assert_int_equal(res[0].status, DELIVER_PLACED);
	assert_int_equal(res[1].status, DELIVER_PLACED);
	test_pathf(want, sizeof(want), "%s/%s", f->md, deliver_location(m));
	assert_true(strstr(want, "/.Junk/") != NULL);
	test_pathf(want, sizeof(want), "%s/.Junk/new/%s", f->md,
	    strchr(deliver_location(m), '/') + 1);
	assert_true(test_path_exists(want));
	assert_true(file_exists(f->md, "new", deliver_location(n)));
	deliver_free(&m);
	deliver_free(&n);
	deliver_close(&t);
}

/*
 * Recovery of folder deliveries (doc/DESIGN.md §10.2): ".Junk/NAME" is
 * found in .Junk/new and, renamed by a reader, in .Junk/cur; a folder
 * that does not exist holds nothing and is not made; a location naming a
 * bad folder is never found, even when such a directory holds the file.
 */
static void
test_folder_find(void **state)
{
	struct fixture *f = *state;
	struct maildir *md = new_maildir(f);
	struct maildir_delivery *d[2];
	struct pf_error err;
	bool placed[2], found[12];
	char loc[12][2 * NAME_MAX + 8], path[PATH_MAX], junk[PATH_MAX];
	const char *names[12];
	const char *n0, *n1;
	int i;

	d[0] = deliver(md, "one\n", 4, 4);
	d[1] = deliver(md, "two\n", 4, 4);
	assert_int_equal(maildir_deliver_folder(d[0], "Junk", &err), 0);
	assert_int_equal(maildir_deliver_folder(d[1], "Junk", &err), 0);
	assert_int_equal(maildir_commit(md, d, 2, placed, &err), 0);
	n0 = maildir_delivery_name(d[0]);
	n1 = maildir_delivery_name(d[1]);
	test_pathf(junk, sizeof(junk), "%s/.Junk", f->md);
	test_mail_read(junk, n1, ":2,S");

	/* A directory with a bad folder name, holding a copy. */
	test_pathf(path, sizeof(path), "%s/.a..b", f->md);
	assert_int_equal(maildir_create(path, &err), 0);
	test_pathf(path, sizeof(path), "%s/.a..b/new/%s", f->md, n0);
	assert_int_equal(test_write_file(path, O_CREAT | O_EXCL, "x", 1), 0);

	test_pathf(loc[0], sizeof(loc[0]), ".Junk/%s", n0);	/* in new/ */
	test_pathf(loc[1], sizeof(loc[1]), ".Junk/%s", n1);	/* in cur/ */
	test_pathf(loc[2], sizeof(loc[2]), ".Nope/%s", n0);	/* no folder */
	test_pathf(loc[3], sizeof(loc[3]), ".a..b/%s", n0);	/* bad name */
	test_pathf(loc[4], sizeof(loc[4]), "../Mail/.Junk/new/%s", n0);
	test_pathf(loc[5], sizeof(loc[5]), ".Junk/../.Junk/new/%s", n0);
	test_pathf(loc[6], sizeof(loc[6]), ".Junk/");
	test_pathf(loc[7], sizeof(loc[7]), "./%s", n0);
	test_pathf(loc[8], sizeof(loc[8]), "%s", n0);		/* the inbox */
	test_pathf(loc[9], sizeof(loc[9]), ".Junk/..");
	test_pathf(loc[10], sizeof(loc[10]), "..Junk/%s", n0);
	test_pathf(loc[11], sizeof(loc[11]), ".Junk/%.10s", n0);	/* prefix */
	for (i = 0; i < 12; i++) {
		names[i] = loc[i];
		found[i] = true;
	}
	assert_int_equal(maildir_find_delivered(md, names, 12, found, &err), 0);
	assert_true(found[0]);
	assert_true(found[1]);
	for (i = 2; i < 12; i++)
		if (found[i])
			fail_msg("location \"%s\" found", loc[i]);
	test_pathf(path, sizeof(path), "%s/.Nope", f->md);
	assert_false(test_path_exists(path));

	/* Each alone too (no scan of the inbox for company). */
	for (i = 0; i < 4; i++) {
		bool one = !(i < 2);

		assert_int_equal(maildir_find_delivered(md, &names[i], 1, &one,
		    &err), 0);
		assert_int_equal(one, i < 2);
	}
	assert_false(test_path_exists(path));
	for (i = 0; i < 2; i++)
		maildir_delivery_free(&d[i]);
	maildir_close(&md);
}

/* ---- how a batch of small messages becomes durable (DESIGN §3.4) ---- */

static atomic_int	syncfs_calls, fsync_calls;
static int		syncfs_errno;	/* 0: the real syncfs */

static char		watch_md[PATH_MAX];	/* "": none */
static int		syncfs_saw_new;	/* entries of watch_md's new/ */

static atomic_int	syncfs_done;	/* returned (test_deferred_names) */

static int
count_syncfs(int fd)
{
	int rc;

	if (watch_md[0] != '\0')
		syncfs_saw_new = test_count_entries(watch_md, "new");
	atomic_fetch_add(&syncfs_calls, 1);
	if (syncfs_errno != 0) {
		errno = syncfs_errno;
		return -1;
	}
	rc = syncfs(fd);
	if (watch_md[0] != '\0')
		usleep(100 * 1000);	/* a settle must wait for it */
	atomic_fetch_add(&syncfs_done, 1);
	return rc;
}

static int
count_fsync(int fd)
{
	atomic_fetch_add(&fsync_calls, 1);
	return fsync(fd);
}

static bool
batch_yes(int fd)
{
	(void)fd;
	return true;
}

static bool
batch_no(int fd)
{
	(void)fd;
	return false;
}

/* Count the calls from now on; the seams are put back by seams_reset. */
static void
seams_count(bool (*batch_ok)(int), int fail_errno)
{
	atomic_store(&syncfs_calls, 0);
	atomic_store(&fsync_calls, 0);
	syncfs_errno = fail_errno;
	maildir_syncfs_fn = count_syncfs;
	maildir_fsync_fn = count_fsync;
	if (batch_ok != NULL)
		maildir_batch_ok_fn = batch_ok;
}

static int	(*saved_syncfs)(int);
static int	(*saved_fsync)(int);
static bool	(*saved_batch_ok)(int);

static int
seam_setup(void **state)
{
	saved_syncfs = maildir_syncfs_fn;
	saved_fsync = maildir_fsync_fn;
	saved_batch_ok = maildir_batch_ok_fn;
	return setup(state);
}

static int
seam_teardown(void **state)
{
	maildir_syncfs_fn = saved_syncfs;
	maildir_fsync_fn = saved_fsync;
	maildir_batch_ok_fn = saved_batch_ok;
	return test_fixture_teardown(state);
}

/* n small deliveries (and one streamed, larger than the write buffer, if
 * `big`) into md, finished, in d[]. */
static size_t
deliver_some(struct maildir *md, struct maildir_delivery **d, size_t n,
    bool big)
{
	static char data[3 * MAILDIR_WRITE_BUF];
	size_t i;

	memset(data, 'm', sizeof(data));
	for (i = 0; i < n; i++)
		d[i] = deliver(md, data, 7000 + i, 4096);
	if (big)
		d[n++] = deliver(md, data, sizeof(data), 4096);
	return n;
}

static void
free_all(struct maildir_delivery **d, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		maildir_delivery_free(&d[i]);
}

/*
 * The group commit's form (DESIGN §3.1): maildir_commit_deferred leaves
 * its names in new/ to the next settle, whose syncfs must begin after
 * those renames even when the settled files are durable already; a settle
 * without files fsyncs new/ instead.
 */
static void
test_deferred_names(void **state)
{
	struct fixture *f = *state;
	struct maildir *md;
	struct maildir_delivery *d[8];
	struct pf_error err;
	bool placed[8];
	size_t n;

	seams_count(batch_yes, 0);
	md = new_maildir(f);
	n = deliver_some(md, d, 5, false);
	/* One syncfs covers all five files. */
	assert_int_equal(maildir_settle(md, d, n, &err), 0);
	assert_int_equal(atomic_load(&syncfs_calls), 1);
	/* The last two are durable, but the three names are not yet: one
	 * more syncfs, begun with them in new/, which the settle waits for
	 * (whoever starts it). */
	snprintf(watch_md, sizeof(watch_md), "%s", f->md);
	syncfs_saw_new = -1;
	atomic_store(&syncfs_done, 0);
	assert_int_equal(maildir_commit_deferred(md, d, 3, placed, &err), 0);
	assert_true(placed[0] && placed[1] && placed[2]);
	assert_int_equal(test_count_entries(f->md, "new"), 3);
	assert_int_equal(maildir_settle(md, d + 3, 2, &err), 0);
	assert_int_equal(atomic_load(&syncfs_done), 1);
	assert_int_equal(atomic_load(&syncfs_calls), 2);
	assert_int_equal(syncfs_saw_new, 3);
	/* Settled: nothing owed, no syncfs for them again. */
	assert_int_equal(maildir_settle(md, d + 3, 2, &err), 0);
	assert_int_equal(atomic_load(&syncfs_calls), 2);
	assert_int_equal(maildir_commit_deferred(md, d + 3, 2, placed, &err), 0);
	assert_int_equal(test_count_entries(f->md, "new"), 5);
	/* Without files: an fsync of new/, no syncfs. */
	assert_int_equal(maildir_settle(md, NULL, 0, &err), 0);
	assert_int_equal(atomic_load(&syncfs_calls), 2);
	watch_md[0] = '\0';
	free_all(d, n);

	/* Where syncfs is not used, the deferred commit fsyncs new/ itself
	 * and a settle has nothing to add. */
	maildir_close(&md);
	seams_count(batch_no, 0);
	md = new_maildir(f);
	n = deliver_some(md, d, 2, false);
	assert_int_equal(maildir_settle(md, d, n, &err), 0);
	assert_int_equal(atomic_load(&fsync_calls), 2);
	assert_int_equal(maildir_commit_deferred(md, d, n, placed, &err), 0);
	assert_int_equal(maildir_settle(md, NULL, 0, &err), 0);
	assert_int_equal(atomic_load(&syncfs_calls), 0);
	assert_int_equal(test_count_entries(f->md, "new"), 7);
	free_all(d, n);
	maildir_close(&md);
}

/* On a local file system (ext4, XFS, Btrfs, tmpfs...) small messages are
 * not fsynced one by one: one syncfs covers the batch; a streamed large
 * message keeps its own fsync. */
static void
test_batch_syncfs_local(void **state)
{
	static const unsigned long local[] = { 0xEF53UL, 0x58465342UL,
	    0x9123683EUL, 0xF2F52010UL, 0x01021994UL };
	struct fixture *f = *state;
	struct maildir *md;
	struct maildir_delivery *d[8];
	struct pf_error err;
	struct statfs sfs;
	bool is_local = false;
	size_t i, n;

	assert_int_equal(statfs(f->dir, &sfs), 0);
	for (i = 0; i < 5; i++)
		is_local = is_local || (unsigned long)sfs.f_type == local[i];
	/* The real decision where the test runs; else forced, to test the
	 * rest the same. */
	seams_count(is_local ? NULL : batch_yes, 0);
	md = new_maildir(f);
	n = deliver_some(md, d, 5, true);
	assert_int_equal(maildir_commit(md, d, n, NULL, &err), 0);
	assert_int_equal(atomic_load(&syncfs_calls), 1);
	assert_int_equal(atomic_load(&fsync_calls), 1);	/* the large one */
	assert_int_equal(test_count_entries(f->md, "new"), 6);
	assert_int_equal(test_count_entries(f->md, "tmp"), 0);
	free_all(d, n);

	/* A batch of large messages only: nothing left for a syncfs. */
	n = deliver_some(md, d, 0, true);
	assert_int_equal(maildir_commit(md, d, n, NULL, &err), 0);
	assert_int_equal(atomic_load(&syncfs_calls), 1);
	assert_int_equal(atomic_load(&fsync_calls), 2);
	free_all(d, n);

	/* Small files closed after the last syncfs began are not covered by
	 * it: their batch gets a syncfs of its own. */
	n = deliver_some(md, d, 2, false);
	assert_int_equal(maildir_commit(md, d, n, NULL, &err), 0);
	assert_int_equal(atomic_load(&syncfs_calls), 2);
	assert_int_equal(atomic_load(&fsync_calls), 2);
	assert_int_equal(test_count_entries(f->md, "new"), 9);
	free_all(d, n);
	maildir_close(&md);
}

/* Anywhere else (network, FUSE, overlay, unknown): an fsync each. */
static void
test_batch_syncfs_fallback(void **state)
{
	struct fixture *f = *state;
	struct maildir *md;
	struct maildir_delivery *d[8];
	struct pf_error err;
	size_t n;

	seams_count(batch_no, 0);
	md = new_maildir(f);
	n = deliver_some(md, d, 5, true);
	assert_int_equal(maildir_commit(md, d, n, NULL, &err), 0);
	assert_int_equal(atomic_load(&syncfs_calls), 0);
	assert_int_equal(atomic_load(&fsync_calls), 6);
	assert_int_equal(test_count_entries(f->md, "new"), 6);
	free_all(d, n);
	maildir_close(&md);
}

/* A write-back error reported by syncfs fails the batch: nothing is
 * renamed into new/, and freeing the deliveries leaves nothing in tmp/. */
static void
test_batch_syncfs_error(void **state)
{
	struct fixture *f = *state;
	struct maildir *md;
	struct maildir_delivery *d[8];
	struct pf_error err;
	size_t n;

	seams_count(batch_yes, EIO);
	md = new_maildir(f);
	n = deliver_some(md, d, 4, false);
	assert_int_equal(maildir_commit(md, d, n, NULL, &err), -1);
	assert_int_equal(err.category, PF_FAIL_IO);
	assert_non_null(strstr(err.what, "syncfs("));
	assert_non_null(strstr(err.what, "/tmp): Input/output error"));
	assert_int_equal(atomic_load(&syncfs_calls), 1);
	assert_int_equal(test_count_entries(f->md, "new"), 0);
	free_all(d, n);
	assert_int_equal(test_count_entries(f->md, "tmp"), 0);

	/* The next batch fails too, even though syncfs would now return 0:
	 * the failed write-back may have been one of its files. */
	syncfs_errno = 0;
	n = deliver_some(md, d, 2, false);
	assert_int_equal(maildir_commit(md, d, n, NULL, &err), -1);
	assert_non_null(strstr(err.what, "/tmp): Input/output error"));
	assert_int_equal(atomic_load(&syncfs_calls), 1);
	assert_int_equal(test_count_entries(f->md, "new"), 0);
	free_all(d, n);
	assert_int_equal(test_count_entries(f->md, "tmp"), 0);
	maildir_close(&md);
}

/* syncfs missing (ENOSYS: old kernel, seccomp): this batch and every later
 * one fsync each file instead. */
static void
test_batch_syncfs_enosys(void **state)
{
	struct fixture *f = *state;
	struct maildir *md;
	struct maildir_delivery *d[8];
	struct pf_error err;
	size_t n;

	seams_count(batch_yes, ENOSYS);
	md = new_maildir(f);
	n = deliver_some(md, d, 3, false);
	assert_int_equal(maildir_commit(md, d, n, NULL, &err), 0);
	assert_int_equal(atomic_load(&syncfs_calls), 1);
	assert_int_equal(atomic_load(&fsync_calls), 3);
	assert_int_equal(test_count_entries(f->md, "new"), 3);
	free_all(d, n);
	n = deliver_some(md, d, 2, false);
	assert_int_equal(maildir_commit(md, d, n, NULL, &err), 0);
	assert_int_equal(atomic_load(&syncfs_calls), 1);
	assert_int_equal(atomic_load(&fsync_calls), 5);
	assert_int_equal(test_count_entries(f->md, "new"), 5);
	free_all(d, n);
	maildir_close(&md);
}

/* A small message finished while a large one is being written is fsynced
 * on its own: a syncfs would wait for the large one's data too. */
static void
test_batch_syncfs_beside_large(void **state)
{
	static char big[2 * MAILDIR_WRITE_BUF];
	struct fixture *f = *state;
	struct maildir *md;
	struct maildir_delivery *d[4];
	struct pf_error err;

	memset(big, 'b', sizeof(big));
	seams_count(batch_yes, 0);
	md = new_maildir(f);
	assert_int_equal(maildir_deliver_begin(md, &d[0], &err), 0);
	assert_int_equal(maildir_deliver_write(d[0], big, sizeof(big), &err), 0);
	d[1] = deliver(md, "small\n", 6, 6);
	assert_int_equal(maildir_deliver_finish(d[0], &err), 0);
	assert_int_equal(maildir_commit(md, d, 2, NULL, &err), 0);
	assert_int_equal(atomic_load(&syncfs_calls), 0);
	assert_int_equal(atomic_load(&fsync_calls), 2);
	free_all(d, 2);

	/* Once it is written and synced, small ones share a syncfs again;
	 * an aborted large one does not hold that up either. */
	assert_int_equal(maildir_deliver_begin(md, &d[2], &err), 0);
	assert_int_equal(maildir_deliver_write(d[2], big, sizeof(big), &err), 0);
	maildir_delivery_free(&d[2]);
	d[0] = deliver(md, "small\n", 6, 6);
	d[1] = deliver(md, "small\n", 6, 6);
	assert_int_equal(maildir_commit(md, d, 2, NULL, &err), 0);
	assert_int_equal(atomic_load(&syncfs_calls), 1);
	assert_int_equal(atomic_load(&fsync_calls), 2);
	assert_int_equal(test_count_entries(f->md, "new"), 4);
	free_all(d, 2);
	maildir_close(&md);
}

/* More than MAILDIR_SYNCFS_EARLY small files: a sync thread starts a
 * syncfs in the background; the commit places all of them after one that
 * covers them all (that one, or its own), and fails when it failed. */
static void
test_batch_syncfs_early(void **state)
{
	struct fixture *f = *state;
	struct maildir *md;
	struct maildir_delivery *d[MAILDIR_SYNCFS_EARLY + 9];
	struct pf_error err;
	size_t n;
	int calls;

	seams_count(batch_yes, 0);
	md = new_maildir(f);
	n = deliver_some(md, d, MAILDIR_SYNCFS_EARLY + 8, false);
	assert_int_equal(maildir_commit(md, d, n, NULL, &err), 0);
	calls = atomic_load(&syncfs_calls);
	assert_true(calls >= 1 && calls <= 2);
	assert_int_equal(atomic_load(&fsync_calls), 0);
	assert_int_equal(test_count_entries(f->md, "new"), (int)n);
	free_all(d, n);
	maildir_close(&md);

	/* A background syncfs that fails fails the batch (and the run's
	 * later ones). */
	seams_count(batch_yes, EIO);
	md = new_maildir(f);
	n = deliver_some(md, d, MAILDIR_SYNCFS_EARLY + 8, false);
	assert_int_equal(maildir_commit(md, d, n, NULL, &err), -1);
	assert_non_null(strstr(err.what, "/tmp): Input/output error"));
	assert_int_equal(atomic_load(&syncfs_calls), 1);
	/* nothing added to the first part's files */
	assert_int_equal(test_count_entries(f->md, "new"), (int)n);
	free_all(d, n);
	maildir_close(&md);
}

/* Each case runs in a fresh directory. */
#define S(fn)	cmocka_unit_test_setup_teardown(fn, seam_setup, seam_teardown)
#define T(fn)	\
	cmocka_unit_test_setup_teardown(fn, setup, test_fixture_teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_create_modes),
		T(test_create_errors),
		T(test_deliver_name_content_mode),
		T(test_abort_leaves_nothing),
		T(test_clean_tmp),
		T(test_find_delivered),
		T(test_commit_never_replaces),
		T(test_disk_full),
		T(test_folder_deliver),
		T(test_folder_names),
		T(test_folder_location),
		T(test_folder_find),
		S(test_deferred_names),
		S(test_batch_syncfs_local),
		S(test_batch_syncfs_fallback),
		S(test_batch_syncfs_error),
		S(test_batch_syncfs_enosys),
		S(test_batch_syncfs_early),
		S(test_batch_syncfs_beside_large),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
