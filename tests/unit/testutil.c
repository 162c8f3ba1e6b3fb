/* testutil.c - helpers shared by the unit tests (see testutil.h). */
#include "config.h"

#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "testutil.h"

void
test_pathf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= size) {
		fprintf(stderr, "# path too long\n");
		abort();
	}
}

int
test_mkdtemp(char *buf, size_t size, const char *name)
{
	const char *tmp = getenv("TMPDIR");
	int n;

	if (tmp == NULL || tmp[0] == '\0')
		tmp = "/tmp";
	n = snprintf(buf, size, "%s/%s.XXXXXX", tmp, name);
	if (n < 0 || (size_t)n >= size) {
		fprintf(stderr, "# %s/%s.XXXXXX: path too long\n", tmp, name);
		return -1;
	}
	if (mkdtemp(buf) == NULL) {
		fprintf(stderr, "# mkdtemp(%s): %s\n", buf, strerror(errno));
		return -1;
	}
	return 0;
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

int
test_rmtree(const char *path)
{
	/* FTW_DEPTH: a directory's entries go before the directory. */
	if (nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0) {
		fprintf(stderr, "# could not remove %s: %s\n", path,
		    strerror(errno));
		return -1;
	}
	return 0;
}

void *
test_fixture_new(size_t size, const char *name)
{
	char *dir;	/* the struct's first member */

	if (size < PATH_MAX || (dir = calloc(1, size)) == NULL)
		return NULL;
	umask(022);
	if (test_mkdtemp(dir, PATH_MAX, name) == -1) {
		free(dir);
		return NULL;
	}
	return dir;
}

int
test_fixture_teardown(void **state)
{
	char *dir = *state;

	test_rmtree(dir);
	free(dir);
	return 0;
}

int
test_count_entries(const char *dir, const char *sub)
{
	char path[PATH_MAX];
	struct dirent *de;
	DIR *d;
	int n = 0;

	test_pathf(path, sizeof(path), "%s/%s", dir, sub);
	if ((d = opendir(path)) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") != 0 &&
		    strcmp(de->d_name, "..") != 0)
			n++;
	}
	closedir(d);
	return n;
}

bool
test_path_exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

mode_t
test_mode_of(const char *path)
{
	struct stat st;

	if (stat(path, &st) == -1)
		return (mode_t)-1;
	return st.st_mode & 07777;
}

int
test_write_file(const char *path, int flags, const void *data, size_t len)
{
	bool ok;
	int fd, saved;

	if ((fd = open(path, O_WRONLY | flags, 0600)) == -1)
		return -1;
	ok = write(fd, data, len) == (ssize_t)len;
	saved = ok ? 0 : errno;
	if (close(fd) == -1)
		return -1;
	if (!ok) {
		errno = saved != 0 ? saved : EIO;	/* a short write */
		return -1;
	}
	return 0;
}

void
test_mail_read(const char *md, const char *name, const char *info)
{
	char from[PATH_MAX], to[PATH_MAX];

	test_pathf(from, sizeof(from), "%s/new/%s", md, name);
	test_pathf(to, sizeof(to), "%s/cur/%s%s", md, name, info);
	if (rename(from, to) == -1)
		fail_msg("rename(%s, %s): %s", from, to, strerror(errno));
}

pid_t
test_fork(void)
{
	pid_t pid;

	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	return pid;
}

/* Reap pid, failing the test if waitpid does not give it back. */
static int
reap(pid_t pid)
{
	int status;

	assert_int_equal(waitpid(pid, &status, 0), pid);
	return status;
}

void
test_wait_exit(pid_t pid, int code)
{
	int status = reap(pid);

	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), code);
}

void
test_wait_signal(pid_t pid, int sig)
{
	int status = reap(pid);

	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), sig);
}

double
test_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
