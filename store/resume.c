/*
 * resume.c - the TLS session file of an account (doc/DESIGN.md §12).
 *
 * Format (binary, all numbers big-endian):
 *
 *	"PFTLSSES"	8 bytes, magic
 *	version		4 bytes, RESUME_VERSION
 *	key		32 bytes, the caller's digest of its TLS settings
 *	length		4 bytes, of the blob
 *	blob		length bytes
 *	check		8 bytes, FNV-1a 64 of everything before it
 *
 * The check is against a torn or rotted file, not an attacker: whoever can
 * write the 0700 state directory can also replace the seen-list.  A blob
 * changed by a bit would otherwise be offered, and a TLS 1.3 server refuses
 * a PSK whose binder does not match with a fatal alert instead of falling
 * back to a full handshake.
 */
#include "config.h"

#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bytes.h"
#include "error.h"
#include "fsutil.h"
#include "params.h"
#include "resume.h"
#include "xmalloc.h"

#define RESUME_MAGIC	"PFTLSSES"
#define RESUME_VERSION	1
#define HEAD_LEN	(8 + 4 + RESUME_KEY_LEN + 4)
#define CHECK_LEN	8

int
resume_path(const char *state_dir, const char *account, char *buf,
    size_t size)
{
	int n;

	/* Account names are safe in a file name (config/conf.c restricts
	 * them), as for oauth2.NAME (DESIGN §11.2). */
	n = snprintf(buf, size, "%s/tls-session.%s", state_dir, account);
	return n < 0 || (size_t)n >= size ? -1 : 0;
}

int
resume_load(const char *state_dir, const char *account,
    const unsigned char key[RESUME_KEY_LEN], unsigned char **blob_r,
    size_t *len_r, char *why, size_t whysize)
{
	char path[PATH_MAX];
	unsigned char *buf = NULL;
	struct stat st;
	size_t len, got = 0;
	ssize_t n;
	int fd = -1;

	*blob_r = NULL;
	*len_r = 0;
	if (resume_path(state_dir, account, path, sizeof(path)) == -1) {
		snprintf(why, whysize, "path too long");
		return -1;
	}
	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1) {
		snprintf(why, whysize, "%s", errno == ENOENT ?
		    "no session file" : strerror(errno));
		return -1;
	}
	/* Ours and private, as we write it; else someone else's. */
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) ||
	    st.st_uid != geteuid() || (st.st_mode & 077) != 0) {
		snprintf(why, whysize, "not a private file of ours");
		goto fail;
	}
	if (st.st_size < HEAD_LEN + CHECK_LEN || st.st_size > RESUME_FILE_MAX) {
		snprintf(why, whysize, "corrupt: %lld bytes",
		    (long long)st.st_size);
		goto fail;
	}
	buf = xmalloc((size_t)st.st_size);
	while (got < (size_t)st.st_size) {
		n = read(fd, buf + got, (size_t)st.st_size - got);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			snprintf(why, whysize, "read: %s", n == 0 ?
			    "file shrank" : strerror(errno));
			goto fail;
		}
		got += (size_t)n;
	}
	len = (size_t)get_be(buf + HEAD_LEN - 4, 4);
	if (memcmp(buf, RESUME_MAGIC, 8) != 0 ||
	    get_be(buf + 8, 4) != RESUME_VERSION ||
	    len != got - HEAD_LEN - CHECK_LEN || len == 0 ||
	    get_be(buf + got - CHECK_LEN, CHECK_LEN) !=
	    fnv1a64(FNV1A64_BASIS, buf, got - CHECK_LEN)) {
		snprintf(why, whysize, "corrupt: bad header, length or check");
		goto fail;
	}
	if (memcmp(buf + 12, key, RESUME_KEY_LEN) != 0) {
		snprintf(why, whysize, "TLS settings changed");
		goto fail;
	}
	close(fd);
	/* The caller gets the blob alone; the rest is wiped with it. */
	memmove(buf, buf + HEAD_LEN, len);
	explicit_bzero(buf + len, got - len);
	*blob_r = buf;
	*len_r = len;
	return 0;

fail:
	if (buf != NULL) {
		explicit_bzero(buf, got);
		free(buf);
	}
	close(fd);
	return -1;
}

/*
 * Write buf over the account's existing file, if it is a private regular
 * file of ours: no new inode.  Creating one (the temporary file) and
 * freeing one (the rename) cost a nothing-new run 12-22% of its CPU time on
 * ext4 without a journal, whose inode allocator steps over recently freed
 * inodes (bench/README.md).  Only runs holding the account's lock read or
 * write the file, so none sees it half-written; a crash may leave it torn,
 * and the check refuses it then.  -1: not done (no such file, not ours to
 * write, or a failed write: the file may be torn).
 */
static int
overwrite(const char *path, const unsigned char *buf, size_t len)
{
	struct stat st;
	size_t off = 0;
	ssize_t n;
	int fd;

	/* O_NONBLOCK: a FIFO put there fails instead of blocking. */
	fd = open(path, O_WRONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY |
	    O_CLOEXEC);
	if (fd == -1)
		return -1;
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) ||
	    st.st_uid != geteuid() || (st.st_mode & 077) != 0 ||
	    st.st_nlink != 1)
		goto fail;
	while (off < len) {
		n = pwrite(fd, buf + off, len - off, (off_t)off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			goto fail;
		off += (size_t)n;
	}
	if (st.st_size > (off_t)len && ftruncate(fd, (off_t)len) == -1)
		goto fail;
	return close(fd);

fail:
	close(fd);
	return -1;
}

int
resume_save(const char *state_dir, const char *account,
    const unsigned char key[RESUME_KEY_LEN], const unsigned char *blob,
    size_t len, struct pf_error *err)
{
	char path[PATH_MAX];
	unsigned char *buf;
	size_t total = HEAD_LEN + len + CHECK_LEN;
	int rc;

	if (len == 0 || total > RESUME_FILE_MAX)
		return pf_error_set(err, PF_FAIL_IO, "TLS session of %zu bytes "
		    "not kept: too big", len);
	if (resume_path(state_dir, account, path, sizeof(path)) == -1)
		return pf_error_set(err, PF_FAIL_IO, "path too long: %s/"
		    "tls-session.%s", state_dir, account);
	buf = xmalloc(total);
	memcpy(buf, RESUME_MAGIC, 8);
	put_be(buf + 8, RESUME_VERSION, 4);
	memcpy(buf + 12, key, RESUME_KEY_LEN);
	put_be(buf + HEAD_LEN - 4, len, 4);
	memcpy(buf + HEAD_LEN, blob, len);
	put_be(buf + HEAD_LEN + len, fnv1a64(FNV1A64_BASIS, buf, HEAD_LEN + len),
	    CHECK_LEN);

	/* Not durable (DESIGN §12): a crash may leave the old file, a torn
	 * one or none, and each of them only costs a full handshake.  The
	 * first save (or one over a file not ours) makes a new file. */
	rc = overwrite(path, buf, total) == 0 ? 0 :
	    pf_replace_private(state_dir, path, buf, total, false,
	    "TLS session file", err);
	explicit_bzero(buf, total);
	free(buf);
	return rc;
}

bool
resume_remove(const char *state_dir, const char *account)
{
	char path[PATH_MAX];

	if (resume_path(state_dir, account, path, sizeof(path)) == -1)
		return false;
	return unlink(path) == 0;
}
