/* lock.c - the per-account exclusive lock (flock on a file in state_dir). */
#include "config.h"

#include <sys/file.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "error.h"
#include "fsutil.h"
#include "lock.h"
#include "xmalloc.h"

struct pf_lock {
	int	 fd;
};

/* "lock." + key, bytes other than [A-Za-z0-9._@+-] as %XX, so that no
 * user name can climb out of state_dir or hide as a dot file. */
static int
lock_name(const char *key, char *buf, size_t size, struct pf_error *err)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o;
	const unsigned char *p;

	o = (size_t)snprintf(buf, size, "lock.");
	for (p = (const unsigned char *)key; *p != '\0'; p++) {
		if (o + 4 > size)
			return pf_error_set(err, PF_FAIL_IO,
			    "account %s: name too long for a lock file", key);
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || strchr("._@+-", *p) != NULL)
			buf[o++] = (char)*p;
		else {
			buf[o++] = '%';
			buf[o++] = hex[*p >> 4];
			buf[o++] = hex[*p & 0xf];
		}
	}
	buf[o] = '\0';
	return 0;
}

/* The pid the holder wrote into the lock file, or 0 if there is none yet. */
static long
holder_pid(int fd)
{
	char buf[32];
	ssize_t n;
	long pid;
	char *end;

	n = pread(fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	pid = strtol(buf, &end, 10);
	if (end == buf || (*end != '\n' && *end != '\0') || pid <= 0)
		return 0;
	return pid;
}

int
lock_acquire(const char *state_dir, const char *account,
    struct pf_lock **lock_r, struct pf_error *err)
{
	char name[NAME_MAX + 1], path[PATH_MAX], pidbuf[32];
	struct stat st;
	long pid;
	int fd = -1, n, rc;

	*lock_r = NULL;
	if (lock_name(account, name, sizeof(name), err) == -1)
		goto fail;
	if (pf_mkdirs(state_dir, err) == -1) {
		char what[PF_ERROR_WHAT_MAX];

		/* Which setting: the path alone may not tell. */
		memcpy(what, err->what, sizeof(what));
		pf_error_set(err, err->category, "state_dir %s: %s", state_dir,
		    what);
		goto fail;
	}
	n = snprintf(path, sizeof(path), "%s/%s", state_dir, name);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		pf_error_set(err, PF_FAIL_IO, "path too long: %s/%s", state_dir,
		    name);
		goto fail;
	}
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd == -1) {
		pf_error_set_errno(err, PF_FAIL_IO, "open(%s)", path);
		goto fail;
	}
	while ((rc = flock(fd, LOCK_EX | LOCK_NB)) == -1 && errno == EINTR)
		continue;
	if (rc == -1) {
		if (errno != EWOULDBLOCK) {
			pf_error_set_errno(err, PF_FAIL_IO, "flock(%s)", path);
			goto fail;
		}
		if ((pid = holder_pid(fd)) > 0)
			pf_error_set(err, PF_FAIL_TEMP, "account %s is being "
			    "fetched by another popfetch (pid %ld)", account, pid);
		else
			pf_error_set(err, PF_FAIL_TEMP, "account %s is being "
			    "fetched by another popfetch", account);
		goto fail;
	}
	n = snprintf(pidbuf, sizeof(pidbuf), "%ld\n", (long)getpid());
	errno = 0;
	/* Over the old pid, then cut what is left of a longer one: a
	 * truncation to 0 first would free the file's block and allocate
	 * it again, on every run of every account. */
	if (pwrite(fd, pidbuf, (size_t)n, 0) != (ssize_t)n) {
		if (errno == 0)
			errno = EIO;
		pf_error_set_errno(err, PF_FAIL_IO, "write(%s)", path);
		goto fail;
	}
	if (fstat(fd, &st) == -1) {
		pf_error_set_errno(err, PF_FAIL_IO, "fstat(%s)", path);
		goto fail;
	}
	if (st.st_size > n && ftruncate(fd, n) == -1) {
		pf_error_set_errno(err, PF_FAIL_IO, "ftruncate(%s)", path);
		goto fail;
	}
	*lock_r = xmalloc(sizeof(**lock_r));
	(*lock_r)->fd = fd;
	return 0;

fail:
	if (fd != -1)
		close(fd);
	return -1;
}

void
lock_release(struct pf_lock **lock_r)
{
	struct pf_lock *lock = *lock_r;

	if (lock == NULL)
		return;
	/* Closing the last descriptor drops the flock. */
	close(lock->fd);
	free(lock);
	*lock_r = NULL;
}
