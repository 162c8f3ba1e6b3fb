/*
 * linebuf.h - the bounded line reader under the POP3 client.
 *
 * A linebuf owns one fixed-capacity buffer (allocated once, never grown) and
 * pulls bytes through a read function (socket, TLS, or a test feeder); it
 * never calls read(2) or SSL_read() itself.  It hands out complete lines only.
 * "Need more bytes" and "line too long" are distinct results, and a status
 * line longer than the limit is a protocol error, never truncated: a server
 * that sends a 1 MiB line costs us the fixed buffer and nothing more.
 *
 * Message bodies are not read as lines: linebuf_peek()/linebuf_consume() give
 * raw access to the buffered bytes so that RETR data is filtered in large
 * chunks (see pop3.c).
 */
#ifndef POPFETCH_LINEBUF_H
#define POPFETCH_LINEBUF_H

#include <stddef.h>
#include <sys/types.h>

#include "error.h"

struct linebuf;

/*
 * The byte source; same contract as conn_read() in net.h: returns the number
 * of bytes read (> 0), 0 at end of stream, or -1 with err set.
 */
typedef ssize_t (*linebuf_read_fn)(void *ctx, void *buf, size_t len,
    struct pf_error *err);

/*
 * Results of linebuf_get_line(), which does no I/O (the first four), and of
 * linebuf_read_line(), which never returns LINEBUF_MORE.
 */
enum linebuf_result {
	LINEBUF_LINE = 0,	/* a complete line was returned */
	LINEBUF_MORE,		/* no complete line buffered yet: fill and retry */
	LINEBUF_TOO_LONG,	/* the pending line exceeds line_max */
	LINEBUF_BAD_CHAR,	/* the line holds NUL, a stray CR or another control */
	LINEBUF_EOF,		/* end of stream before a whole line */
	LINEBUF_ERROR,		/* the source failed */
};

/*
 * Create a reader with a buffer of `capacity` bytes that accepts lines of at
 * most `line_max` octets, terminator included (line_max < capacity).  `read`
 * and `ctx` are borrowed and must outlive the linebuf.  Never fails (OOM is
 * fatal).  Free with linebuf_free().
 */
struct linebuf *linebuf_new(size_t capacity, size_t line_max,
	    linebuf_read_fn read, void *ctx);

/* Free the reader and set *lb to NULL.  The buffer holds only server data. */
void	linebuf_free(struct linebuf **lb);

/*
 * Look for one complete line among the buffered bytes, without reading.
 * Lines end in CRLF; a bare LF is tolerated.  On LINEBUF_LINE, *line_r points
 * to the line without its terminator, NUL-terminated, inside the buffer
 * (untrusted data!), valid until the next call on this linebuf, and *len_r is
 * its length; the line counts as consumed.  Only bytes not scanned by an
 * earlier call are searched.  Tabs and bytes >= 0x80 are allowed; NUL, a CR
 * not followed by LF, DEL and other C0 controls give LINEBUF_BAD_CHAR (the
 * line is consumed).  After LINEBUF_TOO_LONG the reader is unusable: drop
 * the connection.
 */
enum linebuf_result linebuf_get_line(struct linebuf *lb, const char **line_r,
	    size_t *len_r);

/*
 * Read once from the source into the free space (compacting first).
 * Returns the number of bytes added (> 0), 0 at end of stream, or -1 with err
 * set by the source.  Returns -1 with PF_FAIL_INTERNAL if the buffer is full
 * (the caller failed to consume; cannot happen with lines <= line_max).
 */
ssize_t	linebuf_fill(struct linebuf *lb, struct pf_error *err);

/*
 * Blocking form: fill until a complete line is buffered and return it as
 * linebuf_get_line() does.  Returns LINEBUF_LINE (0), or another result
 * with err set:
 *   LINEBUF_TOO_LONG  PF_FAIL_PROTO "status line longer than N octets",
 *                     with its start as the server's words;
 *   LINEBUF_BAD_CHAR  PF_FAIL_PROTO "control character in status line";
 *   LINEBUF_EOF       PF_FAIL_TEMP "connection lost" (end of stream before
 *                     a whole line, whether or not part of one was
 *                     buffered): callers may say more, see pop3.c;
 *   LINEBUF_ERROR     whatever the source reports (PF_FAIL_TEMP on
 *                     timeout, PF_FAIL_TLS).
 */
enum linebuf_result linebuf_read_line(struct linebuf *lb, const char **line_r,
	    size_t *len_r, struct pf_error *err);

/*
 * Raw access for multi-line data.  linebuf_peek() returns the buffered,
 * unconsumed bytes (untrusted data!) and their count in *len_r (may be 0);
 * the pointer is valid until the next fill or consume.  linebuf_consume()
 * drops the first n of them (n <= buffered).
 */
const char *linebuf_peek(const struct linebuf *lb, size_t *len_r);
void	linebuf_consume(struct linebuf *lb, size_t n);

/* Bytes buffered and not yet consumed. */
size_t	linebuf_buffered(const struct linebuf *lb);

#endif
