/*
 * killshim.c - an LD_PRELOAD shim for tests/integration/crash.t: SIGKILL
 * popfetch at an exact point of a fetch, without any test switch in
 * popfetch itself.  Check-only: built by `make check`, never installed.
 *
 * Environment (each unset or 0 = off; the first condition met kills):
 *
 *   KILLSHIM_AFTER_RENAMES=N   SIGKILL right after the N-th successful
 *                              rename whose destination lies in a directory
 *                              named "new" (tmp/ -> new/ of a delivery).
 *   KILLSHIM_BEFORE_RENAME=N   SIGKILL at the N-th rename call into a "new"
 *                              directory, before performing it.
 *   KILLSHIM_SEND_MATCH=BYTES  SIGKILL at the first send()/write() to a
 *                              socket whose data contains BYTES (e.g.
 *                              "DELE " or "QUIT": only useful in clear text,
 *                              tls = none) ...
 *   KILLSHIM_SEND_WHEN=before|after
 *                              ... before the data is sent (default), or
 *                              right after it was sent in full.
 *   KILLSHIM_SYNCFS_EIO=N      not a kill: the N-th syncfs() call fails
 *                              with EIO, as after a failed write-back
 *                              (crash.t: the batch must not be placed).
 *   KILLSHIM_LOG=PATH          append one line per kill decision to PATH
 *                              (what was intercepted), for diagnostics.
 *
 * rename(), renameat() and renameat2() are intercepted; a relative
 * destination is resolved through /proc/self/fd/DIRFD (or the working
 * directory).  send(), sendto() and write() are intercepted (matched on
 * sockets only; popfetch writes with send(MSG_NOSIGNAL)).  Everything is forwarded to the next definition
 * (dlsym(RTLD_NEXT)), so under AddressSanitizer its interceptors still run
 * (the test sets ASAN_OPTIONS=verify_asan_link_order=0 for the preload).
 */
#define _GNU_SOURCE
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static long renames_done;	/* successful renames into new/ */
static long renames_seen;	/* rename calls into new/ */

static long
env_long(const char *name)
{
	const char *v = getenv(name);

	return v != NULL && *v != '\0' ? strtol(v, NULL, 10) : 0;
}

static void
shim_log(const char *what, const char *detail)
{
	const char *path = getenv("KILLSHIM_LOG");
	char line[PATH_MAX + 256];
	int fd, n;

	if (path == NULL || *path == '\0')
		return;
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd == -1)
		return;
	n = snprintf(line, sizeof(line), "pid %ld: %s %s\n", (long)getpid(),
	    what, detail != NULL ? detail : "");
	if (n > 0)
		(void)!write(fd, line, (size_t)n < sizeof(line) ? (size_t)n :
		    sizeof(line) - 1);
	close(fd);
}

static void
die(const char *what, const char *detail)
{
	shim_log(what, detail);
	kill(getpid(), SIGKILL);
	for (;;)
		pause();
}

/* Is the destination (dirfd, path) inside a directory named "new"? */
static int
dest_in_new(int dirfd, const char *path, char *full, size_t size)
{
	char dir[PATH_MAX], link[64];
	const char *slash;
	size_t len;
	ssize_t n;

	if (path == NULL)
		return 0;
	if (path[0] == '/') {
		snprintf(full, size, "%s", path);
	} else {
		if (dirfd == AT_FDCWD) {
			if (getcwd(dir, sizeof(dir)) == NULL)
				return 0;
		} else {
			snprintf(link, sizeof(link), "/proc/self/fd/%d", dirfd);
			if ((n = readlink(link, dir, sizeof(dir) - 1)) <= 0)
				return 0;
			dir[n] = '\0';
		}
		snprintf(full, size, "%s/%s", dir, path);
	}
	if ((slash = strrchr(full, '/')) == NULL)
		return 0;
	len = (size_t)(slash - full);
	return len >= 4 && memcmp(slash - 4, "/new", 4) == 0;
}

/* Before a rename into new/: count it, maybe die. */
static int
rename_before(int dirfd, const char *path, char *full, size_t size)
{
	long before = env_long("KILLSHIM_BEFORE_RENAME");

	if (!dest_in_new(dirfd, path, full, size))
		return 0;
	renames_seen++;
	if (before > 0 && renames_seen == before)
		die("killed before rename into", full);
	return 1;
}

/* After a rename call: if it went into new/ and succeeded, maybe die. */
static void
rename_after(int into_new, int rc, const char *full)
{
	long after = env_long("KILLSHIM_AFTER_RENAMES");

	if (!into_new || rc != 0)
		return;
	renames_done++;
	if (after > 0 && renames_done == after)
		die("killed after rename into", full);
}

int
renameat2(int olddirfd, const char *oldpath, int newdirfd,
    const char *newpath, unsigned int flags)
{
	static int (*next)(int, const char *, int, const char *, unsigned int);
	char full[PATH_MAX + 1];
	int into, rc, saved;

	if (next == NULL)
		next = (int (*)(int, const char *, int, const char *,
		    unsigned int))dlsym(RTLD_NEXT, "renameat2");
	if (next == NULL) {
		errno = ENOSYS;
		return -1;
	}
	into = rename_before(newdirfd, newpath, full, sizeof(full));
	rc = next(olddirfd, oldpath, newdirfd, newpath, flags);
	saved = errno;
	rename_after(into, rc, full);
	errno = saved;
	return rc;
}

int
renameat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath)
{
	static int (*next)(int, const char *, int, const char *);
	char full[PATH_MAX + 1];
	int into, rc, saved;

	if (next == NULL)
		next = (int (*)(int, const char *, int, const char *))dlsym(
		    RTLD_NEXT, "renameat");
	if (next == NULL) {
		errno = ENOSYS;
		return -1;
	}
	into = rename_before(newdirfd, newpath, full, sizeof(full));
	rc = next(olddirfd, oldpath, newdirfd, newpath);
	saved = errno;
	rename_after(into, rc, full);
	errno = saved;
	return rc;
}

int
rename(const char *oldpath, const char *newpath)
{
	static int (*next)(const char *, const char *);
	char full[PATH_MAX + 1];
	int into, rc, saved;

	if (next == NULL)
		next = (int (*)(const char *, const char *))dlsym(RTLD_NEXT,
		    "rename");
	if (next == NULL) {
		errno = ENOSYS;
		return -1;
	}
	into = rename_before(AT_FDCWD, newpath, full, sizeof(full));
	rc = next(oldpath, newpath);
	saved = errno;
	rename_after(into, rc, full);
	errno = saved;
	return rc;
}

/* ---- syncfs: a write-back error on demand ---- */

int
syncfs(int fd)
{
	static int (*next)(int);
	static long calls;
	char detail[32];

	calls++;
	if (env_long("KILLSHIM_SYNCFS_EIO") == calls) {
		snprintf(detail, sizeof(detail), "call %ld", calls);
		shim_log("failed syncfs with EIO:", detail);
		errno = EIO;
		return -1;
	}
	if (next == NULL)
		next = (int (*)(int))dlsym(RTLD_NEXT, "syncfs");
	if (next == NULL) {
		errno = ENOSYS;
		return -1;
	}
	shim_log("syncfs", "passed");
	return next(fd);
}

/* ---- socket writes ---- */

static int
is_socket(int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
}

/* 1 if the KILLSHIM_SEND_MATCH bytes occur in buf. */
static int
send_matches(int fd, const void *buf, size_t len)
{
	const char *m = getenv("KILLSHIM_SEND_MATCH");

	if (m == NULL || *m == '\0' || buf == NULL || !is_socket(fd))
		return 0;
	return memmem(buf, len, m, strlen(m)) != NULL;
}

static int
send_after(void)
{
	const char *w = getenv("KILLSHIM_SEND_WHEN");

	return w != NULL && strcmp(w, "after") == 0;
}

/* Around one socket write: maybe die before it, or after it if complete. */
#define AROUND_SEND(fd, buf, len, call)					\
	do {								\
		int match_ = send_matches((fd), (buf), (len));		\
		ssize_t n_;						\
		int saved_;						\
									\
		if (match_ && !send_after())				\
			die("killed before sending",			\
			    getenv("KILLSHIM_SEND_MATCH"));		\
		n_ = (call);						\
		saved_ = errno;						\
		if (match_ && n_ == (ssize_t)(len))			\
			die("killed after sending",			\
			    getenv("KILLSHIM_SEND_MATCH"));		\
		errno = saved_;						\
		return n_;						\
	} while (0)

ssize_t
send(int fd, const void *buf, size_t len, int flags)
{
	static ssize_t (*next)(int, const void *, size_t, int);

	if (next == NULL)
		next = (ssize_t (*)(int, const void *, size_t, int))dlsym(
		    RTLD_NEXT, "send");
	AROUND_SEND(fd, buf, len, next(fd, buf, len, flags));
}

ssize_t
sendto(int fd, const void *buf, size_t len, int flags,
    const struct sockaddr *to, socklen_t tolen)
{
	static ssize_t (*next)(int, const void *, size_t, int,
	    const struct sockaddr *, socklen_t);

	if (next == NULL)
		next = (ssize_t (*)(int, const void *, size_t, int,
		    const struct sockaddr *, socklen_t))dlsym(RTLD_NEXT,
		    "sendto");
	AROUND_SEND(fd, buf, len, next(fd, buf, len, flags, to, tolen));
}

ssize_t
write(int fd, const void *buf, size_t len)
{
	static ssize_t (*next)(int, const void *, size_t);

	if (next == NULL)
		next = (ssize_t (*)(int, const void *, size_t))dlsym(RTLD_NEXT,
		    "write");
	AROUND_SEND(fd, buf, len, next(fd, buf, len));
}
