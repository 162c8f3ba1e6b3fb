/* test_fsutil.c - pf_mkdirs, pf_fsync_dir and pf_replace_private: parents,
 * modes, errors. */
#include "config.h"

#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "error.h"
#include "fsutil.h"
#include "testutil.h"

/* Each test runs in a fresh directory of its own. */
struct fixture {
	char	 dir[PATH_MAX];		/* first (test_fixture_new) */
};

static int
setup(void **state)
{
	struct fixture *f = test_fixture_new(sizeof(*f), "test_fsutil");

	if (f == NULL)
		return -1;
	*state = f;
	return 0;
}

static void
assert_mode(const struct fixture *f, const char *sub, mode_t want)
{
	char path[PATH_MAX];

	test_pathf(path, sizeof(path), "%s/%s", f->dir, sub);
	if (test_mode_of(path) != want)
		fail_msg("%s: mode %o, want %o", sub,
		    (unsigned)test_mode_of(path), (unsigned)want);
}

/* Missing parents are made, all 0700; a second call is fine. */
static void
test_mkdirs_parents(void **state)
{
	struct fixture *f = *state;
	struct pf_error err;
	char path[PATH_MAX];

	test_pathf(path, sizeof(path), "%s/a/b/c", f->dir);
	assert_int_equal(pf_mkdirs(path, &err), 0);
	assert_mode(f, "a", 0700);
	assert_mode(f, "a/b", 0700);
	assert_mode(f, "a/b/c", 0700);
	assert_int_equal(pf_mkdirs(path, &err), 0);

	/* Doubled and trailing slashes. */
	test_pathf(path, sizeof(path), "%s//a//b/d//", f->dir);
	assert_int_equal(pf_mkdirs(path, &err), 0);
	assert_mode(f, "a/b/d", 0700);
}

/* Existing directories keep their mode. */
static void
test_mkdirs_keeps_existing(void **state)
{
	struct fixture *f = *state;
	struct pf_error err;
	char path[PATH_MAX];

	test_pathf(path, sizeof(path), "%s/open", f->dir);
	assert_int_equal(mkdir(path, 0755), 0);
	test_pathf(path, sizeof(path), "%s/open/x", f->dir);
	assert_int_equal(pf_mkdirs(path, &err), 0);
	assert_mode(f, "open", 0755);
	assert_mode(f, "open/x", 0700);
}

/* A relative path: the parent fsynced is ".". */
static void
test_mkdirs_relative(void **state)
{
	struct fixture *f = *state;
	struct pf_error err;
	char cwd[PATH_MAX];

	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir(f->dir), 0);
	assert_int_equal(pf_mkdirs("rel", &err), 0);
	assert_int_equal(pf_mkdirs("rel/sub", &err), 0);
	assert_int_equal(chdir(cwd), 0);
	assert_mode(f, "rel", 0700);
	assert_mode(f, "rel/sub", 0700);
}

static void
test_mkdirs_errors(void **state)
{
	struct fixture *f = *state;
	struct pf_error err;
	char path[PATH_MAX + 100], want[PATH_MAX + 64];

	/* A file in the way, as a parent and as the directory itself. */
	test_pathf(path, sizeof(path), "%s/file", f->dir);
	assert_int_equal(test_write_file(path, O_CREAT, "", 0), 0);
	test_pathf(path, sizeof(path), "%s/file/sub", f->dir);
	assert_int_equal(pf_mkdirs(path, &err), -1);
	assert_int_equal(err.category, PF_FAIL_IO);
	test_pathf(want, sizeof(want), "mkdir(%s/file): %s", f->dir,
	    strerror(ENOTDIR));
	assert_string_equal(err.what, want);

	test_pathf(path, sizeof(path), "%s/file", f->dir);
	assert_int_equal(pf_mkdirs(path, &err), -1);
	assert_int_equal(err.category, PF_FAIL_IO);
	test_pathf(want, sizeof(want), "mkdir(%s/file): %s", f->dir,
	    strerror(ENOTDIR));
	assert_string_equal(err.what, want);

	/* Empty, and longer than PATH_MAX: errors, not aborts. */
	assert_int_equal(pf_mkdirs("", &err), -1);
	assert_int_equal(err.category, PF_FAIL_IO);
	assert_string_equal(err.what, "mkdir(): empty path");
	memset(path, 'x', sizeof(path) - 1);
	path[0] = '/';
	path[sizeof(path) - 1] = '\0';
	assert_int_equal(pf_mkdirs(path, &err), -1);
	assert_int_equal(err.category, PF_FAIL_IO);
	assert_non_null(strstr(err.what, "path too long: /xxx"));
}

/* A parent we may not write to: the error names the mkdir that failed.
 * Root may write anywhere, so the child drops to nobody first. */
static void
test_mkdirs_denied(void **state)
{
	struct fixture *f = *state;
	struct pf_error err;
	char path[PATH_MAX];
	pid_t pid;

	assert_int_equal(chmod(f->dir, 0711), 0);
	test_pathf(path, sizeof(path), "%s/ro", f->dir);
	assert_int_equal(mkdir(path, 0555), 0);
	assert_int_equal(chmod(path, 0555), 0);
	test_pathf(path, sizeof(path), "%s/ro/a/b", f->dir);
	if ((pid = test_fork()) == 0) {
		if (geteuid() == 0 && (setgid(65534) == -1 ||
		    setuid(65534) == -1))
			_exit(2);
		if (pf_mkdirs(path, &err) != -1 || err.category != PF_FAIL_IO ||
		    strstr(err.what, "/ro/a): Permission denied") == NULL ||
		    strncmp(err.what, "mkdir(", 6) != 0)
			_exit(1);
		_exit(0);
	}
	test_wait_exit(pid, 0);
	test_pathf(path, sizeof(path), "%s/ro/a", f->dir);
	assert_false(test_path_exists(path));
	test_pathf(path, sizeof(path), "%s/ro", f->dir);
	assert_int_equal(chmod(path, 0700), 0);	/* for the teardown */
}

static void
test_fsync_dir(void **state)
{
	struct fixture *f = *state;
	struct pf_error err;
	char path[PATH_MAX], want[PATH_MAX + 64];

	assert_int_equal(pf_fsync_dir(f->dir, &err), 0);
	test_pathf(path, sizeof(path), "%s/none", f->dir);
	assert_int_equal(pf_fsync_dir(path, &err), -1);
	assert_int_equal(err.category, PF_FAIL_IO);
	test_pathf(want, sizeof(want), "open(%s): %s", path, strerror(ENOENT));
	assert_string_equal(err.what, want);
}

/* Count the entries of dir (without . and ..). */
static int
entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

/* A private file is made 0600 whatever the umask, replaced whole, durable
 * or not, and leaves no temporary file; a failure names what it was. */
static void
test_replace_private(void **state)
{
	struct fixture *f = *state;
	struct pf_error err;
	char path[PATH_MAX], buf[64];
	mode_t old = umask(0);
	int fd;
	ssize_t n;

	test_pathf(path, sizeof(path), "%s/secret", f->dir);
	assert_int_equal(pf_replace_private(f->dir, path, "first\n", 6, true,
	    "token file", &err), 0);
	umask(old);
	assert_int_equal(test_mode_of(path), 0600);
	assert_int_equal(pf_replace_private(f->dir, path, "2nd", 3, false,
	    "token file", &err), 0);
	assert_int_equal(test_mode_of(path), 0600);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	n = read(fd, buf, sizeof(buf));
	close(fd);
	assert_int_equal(n, 3);
	assert_memory_equal(buf, "2nd", 3);
	assert_int_equal(entries(f->dir), 1);

	test_pathf(path, sizeof(path), "%s/none/secret", f->dir);
	assert_int_equal(pf_replace_private(f->dir, path, "x", 1, true,
	    "TLS session file", &err), -1);
	assert_int_equal(err.category, PF_FAIL_IO);
	assert_true(strncmp(err.what, "TLS session file ", 17) == 0);
	assert_non_null(strstr(err.what, strerror(ENOENT)));
	assert_int_equal(entries(f->dir), 1);
}

#define T(fn)	\
	cmocka_unit_test_setup_teardown(fn, setup, test_fixture_teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_mkdirs_parents),
		T(test_mkdirs_keeps_existing),
		T(test_mkdirs_relative),
		T(test_mkdirs_errors),
		T(test_mkdirs_denied),
		T(test_fsync_dir),
		T(test_replace_private),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
