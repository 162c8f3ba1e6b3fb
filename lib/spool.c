/*
 * spool.c - a message kept whole for a command: memory, then a file.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "params.h"
#include "spool.h"
#include "xmalloc.h"

struct spool {
	char		*buf;
	size_t		 len, cap;
	int		 fd;		/* past SPOOL_MEM; -1 before */
	uint64_t	 size;
	bool		 failed;
};

struct spool *
spool_new(void)
{
	struct spool *sp = xcalloc(1, sizeof(*sp));

	sp->fd = -1;
	return sp;
}

static const char *
spool_dir(void)
{
	const char *dir = getenv("TMPDIR");

	return dir != NULL && dir[0] != '\0' ? dir : "/tmp";
}

/* The spool file, unlinked from the start (O_TMPFILE where it works). */
static int
spool_file(struct pf_error *err)
{
	const char *dir = spool_dir();
	char path[4096];
	int fd;

#ifdef O_TMPFILE
	if ((fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600)) != -1)
		return fd;
#endif
	if ((size_t)snprintf(path, sizeof(path), "%s/popfetch.XXXXXX", dir) >=
	    sizeof(path))
		return pf_error_set(err, PF_FAIL_IO, "TMPDIR too long: %s", dir);
	if ((fd = mkostemp(path, O_CLOEXEC)) == -1)
		return pf_error_set_errno(err, PF_FAIL_IO, "mkstemp(%s)", path);
	(void)unlink(path);
	return fd;
}

static int
write_all(int fd, const char *buf, size_t len)
{
	ssize_t n;

	while (len > 0) {
		if ((n = write(fd, buf, len)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

int
spool_write(struct spool *sp, const void *buf, size_t len,
    struct pf_error *err)
{
	if (sp->failed)
		return pf_error_set(err, PF_FAIL_INTERNAL, "spool_write on a "
		    "failed spool");
	if (sp->fd == -1 && sp->len + len > SPOOL_MEM) {
		if ((sp->fd = spool_file(err)) == -1)
			goto fail;
		if (write_all(sp->fd, sp->buf, sp->len) == -1)
			goto fail_errno;
		free(sp->buf);
		sp->buf = NULL;
		sp->len = sp->cap = 0;
	}
	if (sp->fd != -1) {
		if (write_all(sp->fd, buf, len) == -1)
			goto fail_errno;
	} else if (len > 0) {
		if (sp->len + len > sp->cap) {
			sp->cap = sp->cap == 0 ? SPOOL_BUF_MIN : sp->cap;
			while (sp->cap < sp->len + len)
				sp->cap *= 2;
			sp->buf = xreallocarray(sp->buf, 1, sp->cap);
		}
		memcpy(sp->buf + sp->len, buf, len);
		sp->len += len;
	}
	sp->size += len;
	return 0;
fail_errno:
	pf_error_set_errno(err, PF_FAIL_IO, "write(spool file in %s)",
	    spool_dir());
fail:
	sp->failed = true;
	return -1;
}

uint64_t
spool_size(const struct spool *sp)
{
	return sp->size;
}

struct command_input
spool_input(const struct spool *sp)
{
	if (sp->fd != -1)
		return (struct command_input){ .buf = NULL, .len = 0,
		    .fd = sp->fd };
	return (struct command_input){ .buf = sp->buf != NULL ? sp->buf : "",
	    .len = sp->len, .fd = -1 };
}

void
spool_free(struct spool **sp_r)
{
	struct spool *sp = *sp_r;

	if (sp == NULL)
		return;
	if (sp->fd != -1)
		close(sp->fd);
	free(sp->buf);
	free(sp);
	*sp_r = NULL;
}
