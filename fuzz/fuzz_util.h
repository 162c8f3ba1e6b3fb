/*
 * fuzz_util.h - what the libFuzzer harnesses share: invariant checks, the
 * chunk schedule taken from the input, and a fake POP3 server.
 *
 * Input layout common to the harnesses (after any harness-specific leading
 * bytes): one byte K, then K % 8 schedule bytes, then the data.  Schedule
 * bytes are used in turn, cyclically, one per read: a byte b < 0xf0 lets
 * the read return at most b + 1 octets, b >= 0xf0 as much as is readable.
 * No schedule bytes: every read returns as much as is readable (one chunk).
 *
 * The fake server owns one stream (everything it will ever send) and a
 * release table: release[c] is how much of the stream is readable once the
 * client has written c command lines (release[0]: the greeting).  A client
 * that reads past what its commands released gets the transport's timeout
 * error, as it would from a real server that waits for a command; past the
 * whole stream it gets end of stream.  Every write must be whole CRLF-
 * terminated lines of printable ASCII (no CR, LF or NUL inside); the lines
 * are recorded in `tx` for the harness to compare.
 *
 * Everything is static inline: each harness includes this once.
 */
#ifndef POPFETCH_FUZZ_UTIL_H
#define POPFETCH_FUZZ_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "error.h"
#include "net.h"

/* An invariant of the code under test: abort (libFuzzer saves the input). */
#define FZ_CHECK(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "%s:%d: invariant failed: %s\n",	\
		    __FILE__, __LINE__, #cond);				\
		abort();						\
	}								\
} while (0)

/* ---- chunk schedule ---- */

struct fz_sched {
	const uint8_t	*b;
	size_t		 n;
	size_t		 i;
};

/* Take K and the schedule bytes off the front of *data.  With too little
 * input the schedule is empty (one chunk). */
static inline void
fz_sched_take(struct fz_sched *s, const uint8_t **data, size_t *len)
{
	size_t k;

	memset(s, 0, sizeof(*s));
	if (*len == 0)
		return;
	k = (*data)[0] % 8;
	(*data)++;
	(*len)--;
	if (k > *len)
		k = *len;
	s->b = *data;
	s->n = k;
	*data += k;
	*len -= k;
}

/* The byte for the next read; 0xff (unlimited) when there is no schedule. */
static inline uint8_t
fz_sched_next(struct fz_sched *s)
{
	uint8_t b;

	if (s->n == 0)
		return 0xff;
	b = s->b[s->i % s->n];
	s->i++;
	return b;
}

/* The most a read may return for schedule byte b. */
static inline size_t
fz_chunk_max(uint8_t b)
{
	return b < 0xf0 ? (size_t)b + 1 : SIZE_MAX;
}

/* ---- the fake server ---- */

#define FZ_MAX_RELEASE	8
#define FZ_TX_MAX	4096

struct fz_server {
	uint8_t		*stream;	/* owned, exactly `len` octets */
	size_t		 len;
	size_t		 pos;		/* octets handed to the client */
	size_t		 release[FZ_MAX_RELEASE];	/* see the top */
	size_t		 nrelease;
	size_t		 avail;		/* readable up to here */
	size_t		 ncmds;		/* command lines received */
	bool		 waited;	/* a read found nothing released */
	struct fz_sched	 sched;
	char		 tx[FZ_TX_MAX];	/* the command lines, CRLF kept */
	size_t		 txlen;
	bool		 tx_overflow;
};

/* Start a server for `stream` (copied).  Release entries not given (index
 * >= nrelease) make the whole stream readable. */
static inline void
fz_server_init(struct fz_server *sv, const void *stream, size_t len,
    const size_t *release, size_t nrelease, const struct fz_sched *sched)
{
	size_t i;

	memset(sv, 0, sizeof(*sv));
	/* Exactly len octets (at least 1 for malloc), so ASan sees overreads. */
	sv->stream = malloc(len > 0 ? len : 1);
	FZ_CHECK(sv->stream != NULL);
	if (len > 0)
		memcpy(sv->stream, stream, len);
	sv->len = len;
	FZ_CHECK(nrelease <= FZ_MAX_RELEASE);
	for (i = 0; i < nrelease; i++)
		sv->release[i] = release[i] < len ? release[i] : len;
	sv->nrelease = nrelease;
	sv->avail = nrelease > 0 ? sv->release[0] : len;
	sv->sched = *sched;
	sv->sched.i = 0;
}

static inline void
fz_server_free(struct fz_server *sv)
{
	free(sv->stream);
	sv->stream = NULL;
}

/* The transport's read (conn_read's contract; this server has no clock,
 * so the wait is not used). */
static inline ssize_t
fz_read(void *ctx, void *buf, size_t len, struct io_wait *w,
    struct pf_error *err)
{
	struct fz_server *sv = ctx;
	size_t n, max;

	(void)w;
	FZ_CHECK(len > 0);
	if (sv->pos == sv->avail) {
		if (sv->avail < sv->len) {
			sv->waited = true;
			return pf_error_set(err, PF_FAIL_TEMP,
			    "timeout (fake server waits for a command)");
		}
		return 0;
	}
	n = sv->avail - sv->pos;
	if (n > len)
		n = len;
	max = fz_chunk_max(fz_sched_next(&sv->sched));
	if (n > max)
		n = max;
	memcpy(buf, sv->stream + sv->pos, n);
	sv->pos += n;
	return (ssize_t)n;
}

/* The transport's write (conn_write's contract): whole command lines. */
static inline int
fz_write(void *ctx, const void *buf, size_t len, struct pf_error *err)
{
	struct fz_server *sv = ctx;
	const char *p = buf, *end = p + len;
	size_t i, n;

	(void)err;
	FZ_CHECK(len > 0);
	while (p < end) {
		const char *crlf = NULL;

		for (i = 0; p + i + 1 < end; i++)
			if (p[i] == '\r' && p[i + 1] == '\n') {
				crlf = p + i;
				break;
			}
		FZ_CHECK(crlf != NULL);		/* every line ends in CRLF */
		for (i = 0; p + i < crlf; i++)	/* printable, no CR/LF/NUL */
			FZ_CHECK((unsigned char)p[i] >= 0x20 &&
			    (unsigned char)p[i] < 0x7f);
		n = (size_t)(crlf - p) + 2;
		if (sv->txlen + n <= sizeof(sv->tx)) {
			memcpy(sv->tx + sv->txlen, p, n);
			sv->txlen += n;
		} else
			sv->tx_overflow = true;
		sv->ncmds++;
		if (sv->ncmds < sv->nrelease) {
			if (sv->release[sv->ncmds] > sv->avail)
				sv->avail = sv->release[sv->ncmds];
		} else
			sv->avail = sv->len;
		p = crlf + 2;
	}
	return 0;
}

/* Is tx (the commands sent) exactly `want`? */
static inline bool
fz_tx_is(const struct fz_server *sv, const char *want)
{
	return !sv->tx_overflow && sv->txlen == strlen(want) &&
	    memcmp(sv->tx, want, sv->txlen) == 0;
}

/* Is tx a prefix of `want` (the client stopped early after an error)? */
static inline bool
fz_tx_prefix_of(const struct fz_server *sv, const char *want)
{
	return !sv->tx_overflow && sv->txlen <= strlen(want) &&
	    memcmp(sv->tx, want, sv->txlen) == 0;
}

/* ---- checks on error objects ---- */

/* A filled error: a known category, NUL-terminated texts, our words
 * non-empty, the server's words sanitised (printable). */
static inline void
fz_check_error(const struct pf_error *err)
{
	size_t i, n;

	FZ_CHECK(err->category > PF_OK && err->category <= PF_FAIL_CONFIG);
	FZ_CHECK(memchr(err->what, '\0', sizeof(err->what)) != NULL);
	FZ_CHECK(err->what[0] != '\0');
	FZ_CHECK(memchr(err->server, '\0', sizeof(err->server)) != NULL);
	n = strlen(err->server);
	for (i = 0; i < n; i++)
		FZ_CHECK((unsigned char)err->server[i] >= 0x20 &&
		    (unsigned char)err->server[i] != 0x7f);
}

/* Split data at "\0\0" into at most `max` segments; a missing segment is
 * empty.  seg[i], seglen[i] point into data. */
static inline size_t
fz_split(const uint8_t *data, size_t len, const uint8_t **seg, size_t *seglen,
    size_t max)
{
	size_t n = 0, start = 0, i;

	for (i = 0; i < max; i++) {
		seg[i] = data + len;
		seglen[i] = 0;
	}
	for (i = 0; i + 1 < len && n + 1 < max; i++)
		if (data[i] == 0 && data[i + 1] == 0) {
			seg[n] = data + start;
			seglen[n++] = i - start;
			start = i + 2;
			i++;
		}
	if (max > 0) {
		seg[n] = data + start;
		seglen[n++] = len - start;
	}
	return n;
}

#endif
