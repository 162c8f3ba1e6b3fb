/* fsutil.c - durable directory creation; replacing a private file. */
#include "config.h"

#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <unistd.h>

#include "error.h"
#include "fsutil.h"

int
pf_fsync_dir(const char *path, struct pf_error *err)
{
	int fd;

	if ((fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return pf_error_set_errno(err, PF_FAIL_IO, "open(%s)", path);
	if (fsync(fd) == -1 && errno != EINVAL) {
		pf_error_set_errno(err, PF_FAIL_IO, "fsync(%s)", path);
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

/*
 * mkdir one directory, mode 0700.  If we created it, fsync its parent so
 * the new entry is durable; if it exists, it must be a directory.
 */
static int
mkdir_one(char *path, struct pf_error *err)
{
	struct stat st;
	char *slash;
	int rc;

	if (mkdir(path, 0700) == -1) {
		if (errno != EEXIST)
			return pf_error_set_errno(err, PF_FAIL_IO, "mkdir(%s)",
			    path);
		if (stat(path, &st) == -1)
			return pf_error_set_errno(err, PF_FAIL_IO, "stat(%s)",
			    path);
		if (!S_ISDIR(st.st_mode)) {
			errno = ENOTDIR;
			return pf_error_set_errno(err, PF_FAIL_IO, "mkdir(%s)",
			    path);
		}
		return 0;
	}
	if ((slash = strrchr(path, '/')) == NULL)
		return pf_fsync_dir(".", err);
	if (slash == path)
		return pf_fsync_dir("/", err);
	*slash = '\0';
	rc = pf_fsync_dir(path, err);
	*slash = '/';
	return rc;
}

int
pf_mkdirs(const char *path, struct pf_error *err)
{
	char buf[PATH_MAX];
	struct stat st;
	size_t len;
	char *p;

	len = strlen(path);
	if (len == 0)
		return pf_error_set(err, PF_FAIL_IO, "mkdir(): empty path");
	if (len >= sizeof(buf))
		return pf_error_set(err, PF_FAIL_IO, "path too long: %s", path);
	memcpy(buf, path, len + 1);
	while (len > 1 && buf[len - 1] == '/')
		buf[--len] = '\0';
	if (stat(buf, &st) == 0 && S_ISDIR(st.st_mode))
		return 0;

	for (p = buf + 1; *p != '\0'; p++) {
		if (*p != '/' || p[-1] == '/')
			continue;
		*p = '\0';
		if (mkdir_one(buf, err) == -1)
			return -1;
		*p = '/';
	}
	return mkdir_one(buf, err);
}

const char *
pf_uid_name(uid_t uid, char *buf, size_t size)
{
	const struct passwd *pw = getpwuid(uid);

	if (pw != NULL)
		snprintf(buf, size, "%s", pw->pw_name);
	else
		snprintf(buf, size, "%lu", (unsigned long)uid);
	return buf;
}

int
pf_replace_private(const char *dir, const char *path, const void *buf,
    size_t len, bool durable, const char *what, struct pf_error *err)
{
	const char *p = buf;
	char tmp[PATH_MAX];
	size_t off = 0;
	ssize_t n;
	int fd;

	if (snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= (int)sizeof(tmp))
		return pf_error_set(err, PF_FAIL_IO, "%s %s: path too long",
		    what, path);
	if ((fd = mkostemp(tmp, O_CLOEXEC)) == -1)
		return pf_error_set_errno(err, PF_FAIL_IO, "%s %s", what, tmp);
	while (off < len) {
		if ((n = write(fd, p + off, len - off)) == -1) {
			if (errno == EINTR)
				continue;
			goto fail;
		}
		off += (size_t)n;
	}
	if (durable && fsync(fd) == -1)
		goto fail;
	if (close(fd) == -1) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) == -1) {
		pf_error_set_errno(err, PF_FAIL_IO, "%s %s", what, path);
		goto unlink;
	}
	return durable ? pf_fsync_dir(dir, err) : 0;

fail:
	pf_error_set_errno(err, PF_FAIL_IO, "%s %s", what, tmp);
	if (fd != -1)
		close(fd);
unlink:
	(void)unlink(tmp);
	return -1;
}
