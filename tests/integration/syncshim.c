/*
 * syncshim.c - an LD_PRELOAD shim for tests/integration/scale.t: count
 * what popfetch makes durable.  Every call of fsync, fdatasync, syncfs,
 * sync_file_range, sync or msync(MS_SYNC) appends one line to
 * $SYNCSHIM_LOG: "PID CALL PATH" (PATH from /proc/self/fd, "-" for none),
 * With SYNCSHIM_RENAMES set, every successful rename, renameat or
 * renameat2 appends "PID rename DIR" too (DIR: the destination's
 * directory), so crash.t can check the order of renames and syncs.
 * The call goes on to the next definition (dlsym(RTLD_NEXT)), so under
 * AddressSanitizer its interceptors still run (the test sets
 * ASAN_OPTIONS=verify_asan_link_order=0).  SQLite and popfetch call these
 * through libc, so the shim sees them all.  Check-only: built by
 * `make check`, never installed.
 */
#define _GNU_SOURCE
#include <sys/mman.h>
#include <sys/types.h>

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* One line per call, written with O_APPEND in one write(2): the threads
 * and processes of one run never mix their lines. */
static void
note(const char *call, int fd)
{
	const char *log = getenv("SYNCSHIM_LOG");
	char path[PATH_MAX], link[64], line[PATH_MAX + 96];
	ssize_t n = -1;
	int saved = errno, lfd, len;

	if (log == NULL || *log == '\0')
		return;
	if (fd >= 0) {
		snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
		n = readlink(link, path, sizeof(path) - 1);
	}
	if (n < 0)
		n = 0, path[n++] = '-';
	path[n] = '\0';
	len = snprintf(line, sizeof(line), "%ld %s %s\n", (long)getpid(), call,
	    path);
	if (len > 0 && (size_t)len >= sizeof(line))
		len = (int)sizeof(line) - 1;
	lfd = open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (lfd >= 0) {
		if (len > 0 && write(lfd, line, (size_t)len) < 0)
			(void)0;
		close(lfd);
	}
	errno = saved;
}

typedef int (*fd_fn)(int);
typedef int (*rename_fn)(const char *, const char *);
typedef int (*renameat_fn)(int, const char *, int, const char *);
typedef int (*renameat2_fn)(int, const char *, int, const char *, unsigned);
typedef int (*range_fn)(int, off64_t, off64_t, unsigned int);
typedef void (*void_fn)(void);
typedef int (*msync_fn)(void *, size_t, int);

/* The next definition of `name` (libc's, or a sanitizer's). */
static void *
next(const char *name)
{
	void *f = dlsym(RTLD_NEXT, name);

	if (f == NULL)
		abort();
	return f;
}

int
fsync(int fd)
{
	static fd_fn f;

	if (f == NULL)
		f = (fd_fn)next("fsync");
	note("fsync", fd);
	return f(fd);
}

int
fdatasync(int fd)
{
	static fd_fn f;

	if (f == NULL)
		f = (fd_fn)next("fdatasync");
	note("fdatasync", fd);
	return f(fd);
}

int
syncfs(int fd)
{
	static fd_fn f;

	if (f == NULL)
		f = (fd_fn)next("syncfs");
	note("syncfs", fd);
	return f(fd);
}

int
sync_file_range(int fd, off64_t off, off64_t nbytes, unsigned int flags)
{
	static range_fn f;

	if (f == NULL)
		f = (range_fn)next("sync_file_range");
	note("sync_file_range", fd);
	return f(fd, off, nbytes, flags);
}

void
sync(void)
{
	static void_fn f;

	if (f == NULL)
		f = (void_fn)next("sync");
	note("sync", -1);
	f();
}

int
msync(void *addr, size_t len, int flags)
{
	static msync_fn f;

	if (f == NULL)
		f = (msync_fn)next("msync");
	if (flags & MS_SYNC)
		note("msync", -1);
	return f(addr, len, flags);
}

/* A rename that succeeded into dirfd/path: note its directory. */
static void
note_rename(int dirfd, const char *path)
{
	const char *slash = strrchr(path, '/');
	char dir[PATH_MAX];
	int fd;

	if (getenv("SYNCSHIM_RENAMES") == NULL)
		return;
	if (slash == NULL) {
		note("rename", dirfd == AT_FDCWD ? -1 : dirfd);
		return;
	}
	snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	fd = openat(dirfd, dir[0] != '\0' ? dir : "/", O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC);
	note("rename", fd);
	if (fd >= 0)
		close(fd);
}

int
rename(const char *old, const char *new)
{
	static rename_fn f;
	int rc;

	if (f == NULL)
		f = (rename_fn)next("rename");
	if ((rc = f(old, new)) == 0)
		note_rename(AT_FDCWD, new);
	return rc;
}

int
renameat(int olddirfd, const char *old, int newdirfd, const char *new)
{
	static renameat_fn f;
	int rc;

	if (f == NULL)
		f = (renameat_fn)next("renameat");
	if ((rc = f(olddirfd, old, newdirfd, new)) == 0)
		note_rename(newdirfd, new);
	return rc;
}

int
renameat2(int olddirfd, const char *old, int newdirfd, const char *new,
    unsigned int flags)
{
	static renameat2_fn f;
	int rc;

	if (f == NULL)
		f = (renameat2_fn)next("renameat2");
	if ((rc = f(olddirfd, old, newdirfd, new, flags)) == 0)
		note_rename(newdirfd, new);
	return rc;
}
