/*
 * linebuf.c - the bounded line reader (see linebuf.h).
 *
 * Layout of the one buffer:
 *
 *     buf[0 .. start)       consumed, free for reuse after compaction
 *     buf[start .. scan)    pending bytes already searched for LF
 *     buf[scan .. end)      pending bytes not searched yet
 *     buf[end .. cap)       free
 *
 * Keeping `scan` means a line that arrives one byte per read is searched in
 * O(length), not O(length^2) (isync's scanoff).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "linebuf.h"
#include "log.h"
#include "xmalloc.h"

struct linebuf {
	char		*buf;
	size_t		 cap;
	size_t		 line_max;
	size_t		 start;
	size_t		 scan;
	size_t		 end;
	linebuf_read_fn	 read;
	void		*ctx;
};

struct linebuf *
linebuf_new(size_t capacity, size_t line_max, linebuf_read_fn read, void *ctx)
{
	struct linebuf *lb;

	if (line_max == 0 || line_max >= capacity)
		fatalx("linebuf_new: line_max %zu >= capacity %zu",
		    line_max, capacity);
	lb = xcalloc(1, sizeof(*lb));
	lb->buf = xmalloc(capacity);
	lb->cap = capacity;
	lb->line_max = line_max;
	lb->read = read;
	lb->ctx = ctx;
	return lb;
}

void
linebuf_free(struct linebuf **lbp)
{
	struct linebuf *lb = *lbp;

	if (lb == NULL)
		return;
	free(lb->buf);
	free(lb);
	*lbp = NULL;
}

/* A byte that may not appear inside a status line: C0 controls but TAB, DEL. */
static int
bad_status_byte(unsigned char c)
{
	return (c < 0x20 && c != '\t') || c == 0x7f;
}

enum linebuf_result
linebuf_get_line(struct linebuf *lb, const char **line_r, size_t *len_r)
{
	char *line, *nl;
	size_t len, i;

	nl = memchr(lb->buf + lb->scan, '\n', lb->end - lb->scan);
	if (nl == NULL) {
		lb->scan = lb->end;
		/*
		 * line_max pending octets and no LF yet: even if the LF comes
		 * next, the line is longer than allowed.  Decide now, so that a
		 * never-ending line costs no more than the fixed buffer.
		 */
		if (lb->end - lb->start >= lb->line_max)
			return LINEBUF_TOO_LONG;
		return LINEBUF_MORE;
	}
	line = lb->buf + lb->start;
	len = (size_t)(nl - line);
	if (len + 1 > lb->line_max) {
		lb->scan = lb->end;
		return LINEBUF_TOO_LONG;
	}
	lb->start += len + 1;
	lb->scan = lb->start;
	if (len > 0 && line[len - 1] == '\r')
		len--;
	line[len] = '\0';
	*line_r = line;
	*len_r = len;
	for (i = 0; i < len; i++)
		if (bad_status_byte((unsigned char)line[i]))
			return LINEBUF_BAD_CHAR;
	return LINEBUF_LINE;
}

ssize_t
linebuf_fill(struct linebuf *lb, struct pf_error *err)
{
	ssize_t n;

	if (lb->start == lb->end) {
		lb->start = lb->scan = lb->end = 0;
	} else if (lb->end == lb->cap && lb->start > 0) {
		memmove(lb->buf, lb->buf + lb->start, lb->end - lb->start);
		lb->scan -= lb->start;
		lb->end -= lb->start;
		lb->start = 0;
	}
	if (lb->end == lb->cap)
		return pf_error_set(err, PF_FAIL_INTERNAL,
		    "line buffer full (%zu octets)", lb->cap);
	n = lb->read(lb->ctx, lb->buf + lb->end, lb->cap - lb->end, err);
	if (n > 0) {
		if ((size_t)n > lb->cap - lb->end)
			return pf_error_set(err, PF_FAIL_INTERNAL,
			    "read returned more than asked");
		lb->end += (size_t)n;
	}
	return n;
}

enum linebuf_result
linebuf_read_line(struct linebuf *lb, const char **line_r, size_t *len_r,
    struct pf_error *err)
{
	const char *start;
	ssize_t n;

	for (;;) {
		start = lb->buf + lb->start;
		switch (linebuf_get_line(lb, line_r, len_r)) {
		case LINEBUF_LINE:
			return LINEBUF_LINE;
		case LINEBUF_TOO_LONG:
			pf_error_set(err, PF_FAIL_PROTO,
			    "status line longer than %zu octets", lb->line_max);
			/* Untrusted: the start of the line, sanitised and cut. */
			pf_error_set_server(err, start, lb->end - lb->start);
			return LINEBUF_TOO_LONG;
		case LINEBUF_BAD_CHAR:
			pf_error_set(err, PF_FAIL_PROTO,
			    "control character in status line");
			pf_error_set_server(err, *line_r, *len_r);
			return LINEBUF_BAD_CHAR;
		default:		/* LINEBUF_MORE */
			break;
		}
		n = linebuf_fill(lb, err);
		if (n == 0) {
			pf_error_set(err, PF_FAIL_TEMP, "connection lost");
			return LINEBUF_EOF;
		}
		if (n < 0)
			return LINEBUF_ERROR;
	}
}

const char *
linebuf_peek(const struct linebuf *lb, size_t *len_r)
{
	*len_r = lb->end - lb->start;
	return lb->buf + lb->start;
}

void
linebuf_consume(struct linebuf *lb, size_t n)
{
	if (n > lb->end - lb->start)
		fatalx("linebuf_consume: %zu > %zu buffered", n,
		    lb->end - lb->start);
	lb->start += n;
	if (lb->scan < lb->start)
		lb->scan = lb->start;
}

size_t
linebuf_buffered(const struct linebuf *lb)
{
	return lb->end - lb->start;
}
