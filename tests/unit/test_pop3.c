/*
 * test_pop3.c - the POP3 session against a scripted in-memory server.
 *
 * The fake server holds a script of (expected client line, reply) steps.  A
 * reply becomes readable only once the client has written the command it
 * answers, so the fake also measures causality: how many commands were in
 * flight (written, reply not yet fully read) and how many went out per
 * write.  Reads come in chunks of chosen or random sizes, optionally cut at
 * given stream offsets.  A client that waits for a reply it never asked for
 * fails the test at once instead of hanging.  The fake also keeps a
 * transcript: "> LINE" per command received, "< FIRST LINE" once a reply
 * has been read whole, and what a sink notes there (coll.tr), in the order
 * it happened.
 */
#include "config.h"

#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include <cmocka.h>

#include "crypto.h"
#include "error.h"
#include "log.h"
#include "params.h"
#include "pop3.h"
#include "sasl.h"
#include "xmalloc.h"

/* A listed message's unique-id as a string (NULL: none); four at a time
 * stay valid. */
static const char *
uidl_of(const struct pop3_msg *m)
{
	static char buf[4][POP3_UIDL_BUF];
	static unsigned k;

	k = (k + 1) % 4;
	return pop3_msg_uidl(m, buf[k]);
}

/* ---- the fake server ---- */

struct step {
	char	*expect;	/* client line; NULL: none (greeting); "*": any */
	char	*reply;
	size_t	 reply_len;
};

struct fake {
	struct step	*steps;
	size_t		 nsteps, next, stepcap;
	/* server -> client */
	char		*rx;
	size_t		 rxlen, rxcap, rxpos;
	size_t		*rend;		/* end offset of each reply made readable */
	size_t		 nrend, rendcap, replies_read;
	size_t		 max_chunk;	/* 0: as much as asked */
	bool		 random;
	unsigned	 seed;
	size_t		 cuts[2];	/* absolute stream offsets reads stop at */
	size_t		 ncuts;
	bool		 endless;	/* after the script: 'x' lines forever */
	uint64_t	 endless_served;
	/* after the script: gen_lines UIDL lines "N <uid>" (N from 1, the
	 * uid gen_uidlen octets), then "." (made, not stored) */
	unsigned	 gen_lines, gen_done;
	size_t		 gen_uidlen;
	char		 gen_buf[16 + POP3_UIDL_MAX];
	size_t		 gen_len, gen_pos;
	/* time, as conn_read keeps it (timeout 0: none).  Bytes from stream
	 * offset trickle_from on come trickle_bytes at a time, each
	 * trickle_gap_ms after the read asked for them: the read "blocks"
	 * (the fake clock moves) unless its wait's deadline passes first. */
	unsigned	 timeout;
	size_t		 trickle_from, trickle_bytes;
	unsigned	 trickle_gap_ms;
	struct timespec	 now;
	unsigned	 arms, expiries;
	/* client -> server */
	char		*tx;
	size_t		 txlen, txcap, linestart;
	size_t		 ncmds, writes, max_per_write, max_outstanding;
	/* the transcript (see the top) */
	char		*tr;
	size_t		 trlen, trcap;
};

static void fake_note(struct fake *f, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Add a line to the transcript. */
static void
fake_note(struct fake *f, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(f->tr != NULL ? f->tr + f->trlen : NULL,
		    f->tr != NULL ? f->trcap - f->trlen : 0, fmt, ap);
		va_end(ap);
		assert_true(n >= 0);
		if (f->tr != NULL && f->trlen + (size_t)n + 2 <= f->trcap)
			break;
		f->trcap = 2 * (f->trlen + (size_t)n + 2) + 256;
		f->tr = xreallocarray(f->tr, f->trcap, 1);
	}
	f->trlen += (size_t)n;
	f->tr[f->trlen++] = '\n';
	f->tr[f->trlen] = '\0';
}

/* The transcript, as one string. */
static const char *
transcript(const struct fake *f)
{
	return f->tr != NULL ? f->tr : "";
}

static void
fake_add_len(struct fake *f, const char *expect, const char *reply,
    size_t len)
{
	if (f->nsteps == f->stepcap) {
		f->stepcap = f->stepcap ? 2 * f->stepcap : 16;
		f->steps = xreallocarray(f->steps, f->stepcap, sizeof(*f->steps));
	}
	f->steps[f->nsteps].expect = expect ? xstrdup(expect) : NULL;
	f->steps[f->nsteps].reply = xmalloc(len + 1);
	memcpy(f->steps[f->nsteps].reply, reply, len);
	f->steps[f->nsteps].reply_len = len;
	f->nsteps++;
}

static void
fake_add(struct fake *f, const char *expect, const char *reply)
{
	fake_add_len(f, expect, reply, strlen(reply));
}

/* Make the reply of the next step readable. */
static void
fake_release(struct fake *f)
{
	struct step *st = &f->steps[f->next++];

	if (f->rx == NULL || f->rxlen + st->reply_len > f->rxcap) {
		f->rxcap = 2 * (f->rxlen + st->reply_len) + 1024;
		f->rx = xreallocarray(f->rx, f->rxcap, 1);
	}
	memcpy(f->rx + f->rxlen, st->reply, st->reply_len);
	f->rxlen += st->reply_len;
	if (f->nrend == f->rendcap) {
		f->rendcap = f->rendcap ? 2 * f->rendcap : 64;
		f->rend = xreallocarray(f->rend, f->rendcap, sizeof(size_t));
	}
	f->rend[f->nrend++] = f->rxlen;
}

static void
fake_init(struct fake *f)
{
	memset(f, 0, sizeof(*f));
	f->trickle_from = SIZE_MAX;
	f->now.tv_sec = 1000;
}

/* Seconds on the fake clock since t0 (a copy of f->now taken before). */
static double
fake_elapsed(const struct fake *f, struct timespec t0)
{
	return (double)(f->now.tv_sec - t0.tv_sec) +
	    (double)(f->now.tv_nsec - t0.tv_nsec) / 1e9;
}

/* Where step k's reply starts in the server's stream. */
static size_t
step_offset(const struct fake *f, size_t k)
{
	size_t i, off = 0;

	for (i = 0; i < k; i++)
		off += f->steps[i].reply_len;
	return off;
}

/* Start serving: the leading steps without an expected line (greeting). */
static void
fake_start(struct fake *f)
{
	while (f->next < f->nsteps && f->steps[f->next].expect == NULL)
		fake_release(f);
}

static void
fake_free(struct fake *f)
{
	size_t i;

	for (i = 0; i < f->nsteps; i++) {
		free(f->steps[i].expect);
		free(f->steps[i].reply);
	}
	free(f->steps);
	free(f->rx);
	free(f->rend);
	free(f->tx);
	free(f->tr);
	memset(f, 0, sizeof(*f));
}

static ssize_t fake_read_now(struct fake *f, void *buf, size_t len,
    struct pf_error *err);

/*
 * The transport's read (conn_read's contract) on the fake clock: the
 * wait's deadline is armed when a read would block and kept across reads
 * (io_wait_arm/io_wait_got, as conn_read does), and a read whose bytes
 * would come after it fails as conn_read's does.
 */
static ssize_t
fake_read(void *ctx, void *buf, size_t len, struct io_wait *w,
    struct pf_error *err)
{
	struct fake *f = ctx;
	struct timespec at;
	ssize_t n;

	assert_non_null(w);
	if (f->timeout == 0)
		return fake_read_now(f, buf, len, err);
	if (f->rxpos >= f->trickle_from && f->rxpos < f->rxlen) {
		at = f->now;
		at.tv_nsec += (long)(f->trickle_gap_ms % 1000) * 1000000;
		at.tv_sec += (time_t)(f->trickle_gap_ms / 1000) +
		    at.tv_nsec / 1000000000;
		at.tv_nsec %= 1000000000;
		if (!w->armed)
			f->arms++;
		io_wait_arm(w, &f->now, f->timeout);
		if (at.tv_sec > w->deadline.tv_sec ||
		    (at.tv_sec == w->deadline.tv_sec &&
		    at.tv_nsec > w->deadline.tv_nsec)) {
			f->now = w->deadline;
			w->expired = true;
			f->expiries++;
			if (w->kind == IO_WAIT_DATA)
				return pf_error_set(err, PF_FAIL_TEMP,
				    "read from fake: stalled: less than 1 "
				    "KiB/s for %u s", f->timeout);
			return pf_error_set(err, PF_FAIL_TEMP,
			    "read from fake: timed out after %u s",
			    f->timeout);
		}
		f->now = at;
		if (len > f->trickle_bytes)
			len = f->trickle_bytes;
	} else if (f->rxpos < f->trickle_from &&
	    f->trickle_from - f->rxpos < len)
		len = f->trickle_from - f->rxpos;
	n = fake_read_now(f, buf, len, err);
	if (n > 0)
		io_wait_got(w, (size_t)n, f->timeout);
	return n;
}

/* The bytes the server has released, as many as allowed at once. */
static ssize_t
fake_read_now(struct fake *f, void *buf, size_t len, struct pf_error *err)
{
	size_t n, avail = f->rxlen - f->rxpos, i;

	(void)err;
	if (avail == 0 && f->gen_uidlen > 0) {
		if (f->gen_pos == f->gen_len) {
			if (f->gen_done == f->gen_lines + 1)
				return 0;
			if (f->gen_done++ == f->gen_lines)
				f->gen_len = (size_t)snprintf(f->gen_buf,
				    sizeof(f->gen_buf), ".\r\n");
			else {
				f->gen_len = (size_t)snprintf(f->gen_buf,
				    sizeof(f->gen_buf), "%u %010u", f->gen_done,
				    f->gen_done);
				memset(f->gen_buf + f->gen_len, 'u',
				    f->gen_uidlen - 10);
				f->gen_len += f->gen_uidlen - 10;
				memcpy(f->gen_buf + f->gen_len, "\r\n", 2);
				f->gen_len += 2;
			}
			f->gen_pos = 0;
		}
		n = f->gen_len - f->gen_pos < len ? f->gen_len - f->gen_pos : len;
		memcpy(buf, f->gen_buf + f->gen_pos, n);
		f->gen_pos += n;
		return (ssize_t)n;
	}
	if (avail == 0) {
		if (f->endless) {
			static const char pat[] = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
			    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n";	/* 64 */
			char *p = buf;

			n = len > 65536 ? 65536 : len;
			for (i = 0; i < n; i++)
				p[i] = pat[(f->endless_served + i) % 64];
			f->endless_served += n;
			return (ssize_t)n;
		}
		if (f->next < f->nsteps)
			fail_msg("client waits for a reply, server waits for "
			    "\"%s\"", f->steps[f->next].expect);
		return 0;
	}
	n = avail < len ? avail : len;
	if (f->max_chunk != 0) {
		size_t c = f->random ?
		    1 + (size_t)rand_r(&f->seed) % f->max_chunk : f->max_chunk;
		if (n > c)
			n = c;
	}
	for (i = 0; i < f->ncuts; i++)
		if (f->cuts[i] > f->rxpos && f->cuts[i] - f->rxpos < n)
			n = f->cuts[i] - f->rxpos;
	memcpy(buf, f->rx + f->rxpos, n);
	f->rxpos += n;
	while (f->replies_read < f->nrend &&
	    f->rend[f->replies_read] <= f->rxpos) {
		/* rend[k] is the end of steps[k]'s reply */
		const struct step *st = &f->steps[f->replies_read];
		const char *eol = memchr(st->reply, '\r', st->reply_len);

		fake_note(f, "< %.*s", (int)(eol != NULL ?
		    (size_t)(eol - st->reply) : st->reply_len), st->reply);
		f->replies_read++;
	}
	return (ssize_t)n;
}

static int
fake_write(void *ctx, const void *buf, size_t len, struct pf_error *err)
{
	struct fake *f = ctx;
	size_t per_write = 0, out;
	char *nl, *line;

	(void)err;
	if (f->txlen + len + 1 > f->txcap) {
		f->txcap = 2 * (f->txlen + len) + 1024;
		f->tx = xreallocarray(f->tx, f->txcap, 1);
	}
	memcpy(f->tx + f->txlen, buf, len);
	f->txlen += len;
	f->tx[f->txlen] = '\0';
	f->writes++;
	while ((nl = memchr(f->tx + f->linestart, '\n',
	    f->txlen - f->linestart)) != NULL) {
		assert_true(nl > f->tx + f->linestart && nl[-1] == '\r');
		line = xstrndup(f->tx + f->linestart,
		    (size_t)(nl - 1 - (f->tx + f->linestart)));
		f->linestart = (size_t)(nl + 1 - f->tx);
		per_write++;
		f->ncmds++;
		fake_note(f, "> %s", line);
		if (f->next >= f->nsteps)
			fail_msg("unexpected command \"%s\"", line);
		if (f->steps[f->next].expect == NULL ||
		    (strcmp(f->steps[f->next].expect, "*") != 0 &&
		    strcmp(f->steps[f->next].expect, line) != 0))
			fail_msg("expected \"%s\", client sent \"%s\"",
			    f->steps[f->next].expect ? f->steps[f->next].expect
			    : "(nothing)", line);
		free(line);
		fake_release(f);
		out = f->nrend - f->replies_read;
		if (out > f->max_outstanding)
			f->max_outstanding = out;
	}
	if (per_write > f->max_per_write)
		f->max_per_write = per_write;
	return 0;
}

static struct pop3 *
session(struct fake *f)
{
	fake_start(f);
	return pop3_new("acct", fake_read, fake_write, f);
}

/* A session past the greeting, and past CAPA when `capa` is not NULL (the
 * script() call put the CAPA step in). */
static struct pop3 *
started(struct fake *f, const char *capa)
{
	struct pf_error err;
	struct pop3 *s;

	s = session(f);
	assert_int_equal(pop3_greeting(s, &err), 0);
	if (capa != NULL)
		assert_int_equal(pop3_capa(s, NULL, &err), 0);
	return s;
}

/* End a session: free it and the fake server. */
static void
session_end(struct pop3 **s, struct fake *f)
{
	pop3_free(s);
	fake_free(f);
}

/* Begin a script: greeting and optionally a CAPA step. */
static void
script(struct fake *f, const char *capa_reply)
{
	fake_init(f);
	fake_add(f, NULL, "+OK ready\r\n");
	if (capa_reply != NULL)
		fake_add(f, "CAPA", capa_reply);
}

/* Everything the client wrote, as one string. */
static const char *
sent(const struct fake *f)
{
	return f->tx != NULL ? f->tx : "";
}

/* ---- the sink ---- */

struct coll {
	char		*buf;
	size_t		 len, cap;
	size_t		 begins, ends, datas;
	char		**got;		/* completed messages */
	size_t		*gotlen;
	size_t		 ngot;
	uint64_t	 total;
	bool		 discard;	/* do not keep the data */
	int		 fail_data_at;	/* data() call that fails; 0: none */
	uint64_t	 last_octets;
	char		 ev[512];	/* "B1 E1 R2 B3 E3 ": begin, end, refused */
	size_t		 evlen;		/* (only the first events that fit) */
	struct fake	*tr;		/* not NULL: note the events there too */
	/* refused() */
	size_t		 refused;	/* calls */
	struct pf_error	 why;		/* its last `why` */
	bool		 refused_fails;	/* return -1 (PF_FAIL_IO) */
};

static void coll_event(struct coll *c, const char *what, unsigned n);

/* Note a sink event: "B1" in ev, "begin 1" in the transcript. */
static void
coll_event(struct coll *c, const char *what, unsigned n)
{
	int len;

	len = snprintf(c->ev + c->evlen, sizeof(c->ev) - c->evlen, "%c%u ",
	    what[0] - 'a' + 'A', n);
	assert_true(len > 0);
	if ((size_t)len < sizeof(c->ev) - c->evlen)
		c->evlen += (size_t)len;
	else
		c->ev[c->evlen] = '\0';
	if (c->tr != NULL)
		fake_note(c->tr, "%s %u", what, n);
}

static int
coll_begin(void *ctx, const struct pop3_msg *m, struct pf_error *err)
{
	struct coll *c = ctx;

	(void)err;
	coll_event(c, "begin", m->number);
	c->begins++;
	c->len = 0;
	return 0;
}

static int
coll_data(void *ctx, const char *buf, size_t len, struct pf_error *err)
{
	struct coll *c = ctx;

	c->datas++;
	if (c->fail_data_at != 0 && (int)c->datas == c->fail_data_at)
		return pf_error_set(err, PF_FAIL_IO, "write(tmp/x): disk full");
	assert_true(len > 0);
	c->total += len;
	if (c->discard)
		return 0;
	if (c->len + len > c->cap) {
		c->cap = 2 * (c->len + len);
		c->buf = xreallocarray(c->buf, c->cap, 1);
	}
	memcpy(c->buf + c->len, buf, len);
	c->len += len;
	return 0;
}

static int
coll_end(void *ctx, const struct pop3_msg *m, uint64_t octets,
    struct pf_error *err)
{
	struct coll *c = ctx;

	(void)err;
	coll_event(c, "end", m->number);
	c->ends++;
	c->last_octets = octets;
	if (!c->discard)
		assert_int_equal(octets, c->len);
	c->got = xreallocarray(c->got, c->ngot + 1, sizeof(char *));
	c->gotlen = xreallocarray(c->gotlen, c->ngot + 1, sizeof(size_t));
	c->got[c->ngot] = xmalloc(c->len + 1);
	if (c->len > 0)
		memcpy(c->got[c->ngot], c->buf, c->len);
	c->gotlen[c->ngot++] = c->len;
	return 0;
}

static int
coll_refused(void *ctx, const struct pop3_msg *m, const struct pf_error *why,
    struct pf_error *err)
{
	struct coll *c = ctx;

	coll_event(c, "refused", m->number);
	c->refused++;
	c->why = *why;
	if (c->refused_fails)
		return pf_error_set(err, PF_FAIL_IO, "refusal not recorded");
	return 0;
}

static void
coll_free(struct coll *c)
{
	size_t i;

	for (i = 0; i < c->ngot; i++)
		free(c->got[i]);
	free(c->got);
	free(c->gotlen);
	free(c->buf);
	memset(c, 0, sizeof(*c));
}

static struct pop3_sink
sink_for(struct coll *c)
{
	return (struct pop3_sink){ coll_begin, coll_data, coll_end, c, NULL };
}

/* RFC 1939 §3 on the wire: LF lines to CRLF, dot-stuffed, plus ".". */
static char *
wire_encode(const char *msg, size_t len, size_t *wlen_r)
{
	char *w = xmalloc(2 * len + 8);
	size_t i, o = 0;
	bool bol = true;

	for (i = 0; i < len; i++) {
		if (bol && msg[i] == '.')
			w[o++] = '.';
		if (msg[i] == '\n') {
			w[o++] = '\r';
			w[o++] = '\n';
			bol = true;
		} else {
			w[o++] = msg[i];
			bol = false;
		}
	}
	memcpy(w + o, ".\r\n", 3);
	*wlen_r = o + 3;
	return w;
}

/* Add "RETR n" with +OK and the encoded message. */
static void
add_retr(struct fake *f, unsigned n, const char *msg, size_t len)
{
	char cmd[32], *w, *reply;
	size_t wlen;

	snprintf(cmd, sizeof(cmd), "RETR %u", n);
	w = wire_encode(msg, len, &wlen);
	reply = xmalloc(wlen + 16);
	memcpy(reply, "+OK message\r\n", 13);
	memcpy(reply + 13, w, wlen);
	fake_add_len(f, cmd, reply, 13 + wlen);
	free(reply);
	free(w);
}

/* stderr, where the -vv trace goes, captured in a temporary file. */
struct capture {
	char	 path[64];
	int	 fd;
	int	 saved;		/* the real stderr */
};

static void
capture_begin(struct capture *cap)
{
	snprintf(cap->path, sizeof(cap->path), "/tmp/test_pop3_traceXXXXXX");
	cap->fd = mkstemp(cap->path);
	assert_true(cap->fd >= 0);
	cap->saved = dup(STDERR_FILENO);
	assert_int_equal(dup2(cap->fd, STDERR_FILENO), STDERR_FILENO);
	log_init(2, false);
}

/* Stop capturing; returns what was written (not empty), to free. */
static char *
capture_end(struct capture *cap)
{
	char *buf = xcalloc(1, 65536);
	ssize_t n;

	log_init(0, false);
	assert_int_equal(dup2(cap->saved, STDERR_FILENO), STDERR_FILENO);
	close(cap->saved);
	n = pread(cap->fd, buf, 65535, 0);
	assert_true(n > 0);
	close(cap->fd);
	unlink(cap->path);
	return buf;
}

/* ---- greeting, CAPA, STLS ---- */

static void
test_greeting(void **state)
{
	static const struct {
		const char	*greeting;
		int		 rc;
		enum pf_fail	 cat;
		const char	*timestamp;
	} cases[] = {
		{ "+OK POP3 server ready <1896.697170952@dbc.mtview.ca.us>\r\n",
		  0, PF_OK, "<1896.697170952@dbc.mtview.ca.us>" },
		{ "+OK ready\r\n", 0, PF_OK, NULL },
		{ "+OK\r\n", 0, PF_OK, NULL },
		{ "+OK <no-at-sign>\r\n", 0, PF_OK, NULL },
		{ "+OK <a b@c>\r\n", 0, PF_OK, NULL },
		{ "-ERR too many connections\r\n", -1, PF_FAIL_TEMP, NULL },
		{ "-ERR [IN-USE] busy\r\n", -1, PF_FAIL_TEMP, NULL },
		{ "* OK IMAP4rev1\r\n", -1, PF_FAIL_PROTO, NULL },
		{ "+OKAY\r\n", -1, PF_FAIL_PROTO, NULL },
		{ "+OK ready", -1, PF_FAIL_TEMP, NULL },
		{ "", -1, PF_FAIL_TEMP, NULL },
	};
	struct pf_error err;
	struct fake f;
	struct pop3 *s;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		fake_init(&f);
		fake_add(&f, NULL, cases[i].greeting);
		f.max_chunk = 3;
		s = session(&f);
		assert_int_equal(pop3_greeting(s, &err), cases[i].rc);
		if (cases[i].rc == -1)
			assert_int_equal(err.category, cases[i].cat);
		if (cases[i].timestamp == NULL)
			assert_null(pop3_apop_timestamp(s));
		else
			assert_string_equal(pop3_apop_timestamp(s),
			    cases[i].timestamp);
		pop3_free(&s);
		assert_null(s);
		fake_free(&f);
	}
}

static void
test_greeting_too_long(void **state)
{
	char *g = xmalloc(1024 * 1024 + 3);
	struct pf_error err;
	struct fake f;
	struct pop3 *s;

	(void)state;
	memset(g, 'x', 1024 * 1024);
	memcpy(g, "+OK ", 4);
	memcpy(g + 1024 * 1024, "\r\n", 3);
	fake_init(&f);
	fake_add(&f, NULL, g);
	s = session(&f);
	assert_int_equal(pop3_greeting(s, &err), -1);
	assert_int_equal(err.category, PF_FAIL_PROTO);
	/* Refused after one buffer, not after reading the whole line. */
	assert_true(f.rxpos <= NET_READ_BUF);
	session_end(&s, &f);
	free(g);
}

static void
test_capa(void **state)
{
	const struct pop3_capa *c;
	struct pf_error err;
	struct fake f;
	struct pop3 *s;

	(void)state;
	fake_init(&f);
	fake_add(&f, NULL, "+OK hi\r\n");
	fake_add(&f, "CAPA", "+OK Capability list follows\r\n"
	    "TOP\r\nUSER\r\nSASL SCRAM-SHA-256 PLAIN xoauth2\r\n"
	    "RESP-CODES\r\nPIPELINING\r\nUIDL\r\nSTLS\r\n"
	    "IMPLEMENTATION Dovecot\r\n..odd\r\n.\r\n");
	f.max_chunk = 1;
	s = session(&f);
	assert_int_equal(pop3_greeting(s, &err), 0);
	assert_int_equal(pop3_capa(s, &c, &err), 0);
	assert_true(c->known);
	assert_true(c->top && c->user && c->resp_codes && c->pipelining &&
	    c->uidl && c->stls);
	assert_false(c->auth_resp_code);
	assert_int_equal(c->nsasl, 3);
	assert_string_equal(c->sasl[0], "SCRAM-SHA-256");
	assert_string_equal(c->sasl[2], "xoauth2");
	assert_true(pop3_has_sasl(s, "XOAUTH2"));
	assert_true(pop3_has_sasl(s, "plain"));
	assert_false(pop3_has_sasl(s, "CRAM-MD5"));
	assert_int_equal(c->nlines, 9);
	assert_string_equal(c->lines[7], "IMPLEMENTATION Dovecot");
	assert_string_equal(c->lines[8], ".odd");	/* unstuffed */
	assert_ptr_equal(pop3_capabilities(s), c);
	assert_true(pop3_is_synchronised(s));
	session_end(&s, &f);

	/* -ERR: legal, no capabilities. */
	script(&f, NULL);
	fake_add(&f, "CAPA", "-ERR unknown command\r\n");
	s = started(&f, NULL);
	assert_int_equal(pop3_capa(s, &c, &err), 0);
	assert_false(c->known);
	assert_int_equal(c->nlines, 0);
	session_end(&s, &f);

	/* -ERR [SYS/TEMP]: a temporary failure, not "no CAPA". */
	script(&f, NULL);
	fake_add(&f, "CAPA", "-ERR [SYS/TEMP] try later\r\n");
	s = started(&f, NULL);
	assert_int_equal(pop3_capa(s, &c, &err), -1);
	assert_int_equal(err.category, PF_FAIL_TEMP);
	session_end(&s, &f);
}

static void
test_capa_endless(void **state)
{
	struct pf_error err;
	struct fake f;
	struct pop3 *s;
	char *reply;
	size_t i, o;

	(void)state;
	reply = xmalloc(20 * (POP3_CAPA_LINES_MAX + 10) + 32);
	o = (size_t)sprintf(reply, "+OK\r\n");
	for (i = 0; i < POP3_CAPA_LINES_MAX + 5; i++)
		o += (size_t)sprintf(reply + o, "X-CAP-%zu\r\n", i);
	sprintf(reply + o, ".\r\n");
	script(&f, NULL);
	fake_add(&f, "CAPA", reply);
	s = started(&f, NULL);
	assert_int_equal(pop3_capa(s, NULL, &err), -1);
	assert_int_equal(err.category, PF_FAIL_PROTO);
	assert_false(pop3_is_synchronised(s));
	session_end(&s, &f);
	free(reply);
}

static void
test_stls(void **state)
{
	struct pf_error err;
	struct fake f;
	struct pop3 *s;

	(void)state;
	/* Normal: +OK, capabilities forgotten. */
	script(&f, "+OK\r\nSTLS\r\nUSER\r\n.\r\n");
	fake_add(&f, "STLS", "+OK Begin TLS negotiation\r\n");
	s = started(&f, "");
	assert_true(pop3_capabilities(s)->stls);
	assert_int_equal(pop3_stls(s, &err), 0);
	assert_false(pop3_capabilities(s)->known);
	assert_false(pop3_capabilities(s)->user);
	session_end(&s, &f);

	/* Data after the +OK in the same read: injection. */
	script(&f, "+OK\r\nSTLS\r\n.\r\n");
	fake_add(&f, "STLS", "+OK Begin TLS\r\n+OK injected\r\n");
	s = started(&f, "");
	assert_int_equal(pop3_stls(s, &err), -1);
	assert_int_equal(err.category, PF_FAIL_TLS);
	assert_false(pop3_is_synchronised(s));
	session_end(&s, &f);

	/* Refused. */
	script(&f, "+OK\r\nSTLS\r\n.\r\n");
	fake_add(&f, "STLS", "-ERR not now\r\n");
	s = started(&f, "");
	assert_int_equal(pop3_stls(s, &err), -1);
	assert_int_equal(err.category, PF_FAIL_TLS);
	assert_string_equal(err.what, "server refused STLS");
	assert_string_equal(err.server, "-ERR not now");
	session_end(&s, &f);

	/* Not offered: nothing is sent. */
	script(&f, "+OK\r\nUSER\r\n.\r\n");
	s = started(&f, "");
	assert_int_equal(pop3_stls(s, &err), -1);
	assert_int_equal(err.category, PF_FAIL_TLS);
	assert_null(strstr(sent(&f), "STLS"));
	session_end(&s, &f);
}

/* Bytes the server sends unasked are caught before the next command. */
static void
test_unsolicited(void **state)
{
	struct pf_error err;
	struct fake f;
	struct pop3 *s;

	(void)state;
	fake_init(&f);
	fake_add(&f, NULL, "+OK ready\r\n+OK I answer in advance\r\n");
	s = session(&f);
	assert_int_equal(pop3_greeting(s, &err), 0);
	assert_int_equal(pop3_stat(s, NULL, NULL, &err), -1);
	assert_int_equal(err.category, PF_FAIL_PROTO);
	assert_string_equal(err.server, "+OK I answer in advance");
	assert_int_equal(f.txlen, 0);
	session_end(&s, &f);
}

/* ---- replies and categories ---- */

static void
test_reply_categories(void **state)
{
	static const struct {
		const char	*reply;
		enum pf_fail	 cat;
	} cases[] = {
		{ "-ERR [SYS/TEMP] disk trouble\r\n",	PF_FAIL_TEMP },
		{ "-ERR [SYS/TEMP/ABC] sub-code\r\n",	PF_FAIL_TEMP },
		{ "-ERR [IN-USE] locked\r\n",		PF_FAIL_TEMP },
		{ "-ERR [SYS/PERM] broken\r\n",		PF_FAIL_PROTO },
		{ "-ERR [AUTH] go away\r\n",		PF_FAIL_AUTH },
		{ "-ERR\r\n",				PF_FAIL_PROTO },
		{ "garbage\r\n",			PF_FAIL_PROTO },
		{ "+ continue\r\n",			PF_FAIL_PROTO },
		{ "+OK\r\n",				PF_FAIL_PROTO },
		{ "+OK 2\r\n",				PF_FAIL_PROTO },
		{ "+OK 2 x\r\n",			PF_FAIL_PROTO },
		{ "+OK -2 100\r\n",			PF_FAIL_PROTO },
		{ "+OK 2 100x\r\n",			PF_FAIL_PROTO },
		{ "+OK 2000000 100\r\n",		PF_FAIL_PROTO },
		{ "+OK 2 99999999999999999999999\r\n",	PF_FAIL_PROTO },
		{ "+OK 2 100\r",			PF_FAIL_TEMP },
		{ "+OK 2\0 100\r\n",			PF_FAIL_PROTO },
	};
	struct pf_error err;
	struct fake f;
	struct pop3 *s;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		script(&f, NULL);
		fake_add_len(&f, "STAT", cases[i].reply,
		    i == sizeof(cases) / sizeof(cases[0]) - 1 ? 12 :
		    strlen(cases[i].reply));
		s = started(&f, NULL);
		assert_int_equal(pop3_stat(s, NULL, NULL, &err), -1);
		if (err.category != cases[i].cat)
			fail_msg("reply %zu \"%s\": category %d, want %d (%s)",
			    i, cases[i].reply, err.category, cases[i].cat,
			    err.what);
		session_end(&s, &f);
	}
}

static void
test_stat(void **state)
{
	struct pf_error err;
	struct fake f;
	struct pop3 *s;
	uint64_t size;
	unsigned count;

	(void)state;
	script(&f, NULL);
	fake_add(&f, "STAT", "+OK 2 320 and more\r\n");
	fake_add(&f, "STAT", "-ERR no\r\n");
	fake_add(&f, "STAT", "+OK 1 160\r\n");
	s = started(&f, NULL);
	assert_int_equal(pop3_stat(s, &count, &size, &err), 0);
	assert_int_equal(count, 2);
	assert_int_equal(size, 320);
	/* A -ERR to a command the server must accept: PF_FAIL_PROTO, and
	 * the session stays in step. */
	assert_int_equal(pop3_stat(s, &count, &size, &err), -1);
	assert_int_equal(err.category, PF_FAIL_PROTO);
	assert_true(pop3_is_synchronised(s));
	assert_int_equal(pop3_stat(s, &count, NULL, &err), 0);
	assert_int_equal(count, 1);
	session_end(&s, &f);
}

static void
test_quit(void **state)
{
	static const struct {
		const char	*reply;
		int		 rc;
		const char	*server;	/* err.server (NULL: any) */
	} cases[] = {
		{ "+OK bye\r\n", 0, NULL },
		{ "-ERR some deleted messages not removed\r\n", -1,
		  "-ERR some deleted messages not removed" },
		/* Connection dropped instead of +OK: not committed. */
		{ "", -1, NULL },
	};
	struct pf_error err;
	struct fake f;
	struct pop3 *s;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		script(&f, NULL);
		fake_add(&f, "QUIT", cases[i].reply);
		s = started(&f, NULL);
		assert_int_equal(pop3_quit(s, POP3_QUIT_COMMIT, &err),
		    cases[i].rc);
		if (cases[i].rc == -1)
			assert_int_equal(err.category, PF_FAIL_TEMP);
		if (cases[i].server != NULL)
			assert_string_equal(err.server, cases[i].server);
		session_end(&s, &f);
	}
}

/* ---- UIDL and LIST ---- */

static void
test_listing(void **state)
{
	struct pop3_listing *l;
	struct pf_error err;
	struct fake f;
	struct pop3 *s;
	char *reply, uid512[POP3_UIDL_MAX + 1];

	(void)state;
	memset(uid512, 'U', POP3_UIDL_MAX);
	uid512[POP3_UIDL_MAX] = '\0';
	reply = xasprintf("+OK\r\n1 whqtswO00WBw418f9t5JxYwZ\r\n"
	    "3 %s\r\n2 QhdPYR:00WBw1Ph7x7~!\"#$%%&'()*+,-./\r\n.\r\n", uid512);
	script(&f, NULL);
	fake_add(&f, "UIDL", reply);
	fake_add(&f, "LIST", "+OK 3 messages\r\n1 120\r\n2 200 extra info\r\n"
	    "3 0\r\n.\r\n");
	f.max_chunk = 7;
	f.random = true;
	f.seed = 7;
	s = started(&f, NULL);
	assert_int_equal(pop3_list_messages(s, &l, &err), 0);
	assert_true(l->has_uidl);
	assert_int_equal(l->count, 3);
	assert_int_equal(l->msgs[0].number, 1);
	assert_int_equal(l->msgs[0].size, 120);
	assert_string_equal(uidl_of(&l->msgs[0]), "whqtswO00WBw418f9t5JxYwZ");
	assert_int_equal(l->msgs[1].number, 2);
	assert_int_equal(l->msgs[1].size, 200);
	assert_string_equal(uidl_of(&l->msgs[1]),
	    "QhdPYR:00WBw1Ph7x7~!\"#$%&'()*+,-./");
	assert_int_equal(l->msgs[2].number, 3);
	assert_string_equal(uidl_of(&l->msgs[2]), uid512);
	/* Lock-step without PIPELINING. */
	assert_int_equal(f.max_per_write, 1);
	assert_true(pop3_is_synchronised(s));
	pop3_listing_free(&l);
	assert_null(l);
	session_end(&s, &f);
	free(reply);
}

/*
 * Unique-ids kept inline in a listing entry (pop3.h, union pop3_uid): each
 * comes back whole, the short and hexadecimal ones need no string of their
 * own, and pop3_msg_uidl_cmp orders them as strcmp does their strings
 * (SQLite's order, which the seen-list merge relies on).
 */
static void
test_uidl_inline(void **state)
{
	static const struct {
		const char	*uid;
		int		 form;
	} cases[] = {
		{ "1", POP3_UID_SHORT },
		{ "~!", POP3_UID_SHORT },
		{ "12345678", POP3_UID_SHORT },
		{ "123456789", POP3_UID_POINTER },
		{ "000000016B166D5D", POP3_UID_HEX_UPPER },
		{ "000000016b166d5d", POP3_UID_HEX_LOWER },
		{ "0000000000000000", POP3_UID_HEX_UPPER },
		{ "FFFFFFFFFFFFFFFF", POP3_UID_HEX_UPPER },
		{ "ffffffffffffffff", POP3_UID_HEX_LOWER },
		{ "1234567890123456", POP3_UID_HEX_UPPER },
		{ "000000016B166d5d", POP3_UID_POINTER },	/* mixed case */
		{ "000000016B166D5G", POP3_UID_POINTER },
		{ "000000016B166D5", POP3_UID_POINTER },	/* 15 digits */
		{ "000000016B166D5D0", POP3_UID_POINTER },	/* 17 */
		{ "whqtswO00WBw418f9t5JxYwZ", POP3_UID_POINTER },
	};
	enum { N = sizeof(cases) / sizeof(cases[0]) };
	struct pop3_msg m[N];
	struct strpool *pool = strpool_new();
	size_t i, j;

	(void)state;
	assert_null(uidl_of(&(struct pop3_msg){ .number = 1 }));
	for (i = 0; i < N; i++) {
		memset(&m[i], 0, sizeof(m[i]));
		pop3_msg_set_uidl(&m[i], cases[i].uid, strlen(cases[i].uid),
		    i % 2 ? pool : NULL);
		assert_int_equal(m[i].uid_form, cases[i].form);
		assert_true(pop3_msg_has_uidl(&m[i]));
		assert_string_equal(uidl_of(&m[i]), cases[i].uid);
	}
	for (i = 0; i < N; i++)
		for (j = 0; j < N; j++) {
			int want = strcmp(cases[i].uid, cases[j].uid);
			int got = pop3_msg_uidl_cmp(&m[i], &m[j]);

			assert_int_equal((got > 0) - (got < 0),
			    (want > 0) - (want < 0));
		}
	for (i = 0; i < N; i += 2)
		if (m[i].uid_form == POP3_UID_POINTER)
			free(m[i].uid.str);
	strpool_free(&pool);
}

static void
test_listing_no_uidl(void **state)
{
	struct pop3_listing *l;
	struct pf_error err;
	struct fake f;
	struct pop3 *s;

	(void)state;
	script(&f, NULL);
	fake_add(&f, "UIDL", "-ERR unknown command\r\n");
	fake_add(&f, "LIST", "+OK\r\n1 120\r\n2 200\r\n.\r\n");
	s = started(&f, NULL);
	assert_int_equal(pop3_list_messages(s, &l, &err), 0);
	assert_false(l->has_uidl);
	assert_int_equal(l->count, 2);
	assert_null(uidl_of(&l->msgs[0]));
	assert_null(uidl_of(&l->msgs[1]));
	pop3_listing_free(&l);
	session_end(&s, &f);

	/* -ERR [SYS/TEMP] to UIDL is not "no UIDL". */
	script(&f, NULL);
	fake_add(&f, "UIDL", "-ERR [SYS/TEMP] later\r\n");
	s = started(&f, NULL);
	assert_int_equal(pop3_list_messages(s, &l, &err), -1);
	assert_int_equal(err.category, PF_FAIL_TEMP);
	assert_null(l);
	session_end(&s, &f);

	/* -ERR to LIST is an error. */
	script(&f, NULL);
	fake_add(&f, "UIDL", "+OK\r\n.\r\n");
	fake_add(&f, "LIST", "-ERR no\r\n");
	s = started(&f, NULL);
	assert_int_equal(pop3_list_messages(s, &l, &err), -1);
	assert_int_equal(err.category, PF_FAIL_PROTO);
	session_end(&s, &f);
}

static void
test_listing_pipelined(void **state)
{
	struct pop3_listing *l;
	struct pf_error err;
	struct fake f;
	struct pop3 *s;

	(void)state;
	script(&f, "+OK\r\nPIPELINING\r\nUIDL\r\n.\r\n");
	/* 3's size is past what struct pop3_msg holds: held as its most. */
	fake_add(&f, "UIDL", "+OK\r\n2 b\r\n1 a\r\n3 c\r\n.\r\n");
	fake_add(&f, "LIST", "+OK\r\n2 20\r\n1 10\r\n"
	    "3 2199023255552\r\n.\r\n");
	s = started(&f, "");
	assert_int_equal(pop3_list_messages(s, &l, &err), 0);
	assert_non_null(strstr(sent(&f), "CAPA\r\nUIDL\r\nLIST\r\n"));
	assert_int_equal(f.max_per_write, 2);
	assert_int_equal(f.max_outstanding, 2);
	/* Listed out of order, returned in number order. */
	assert_int_equal(l->count, 3);
	assert_int_equal(l->msgs[0].number, 1);
	assert_string_equal(uidl_of(&l->msgs[0]), "a");
	assert_int_equal(l->msgs[0].size, 10);
	assert_int_equal(l->msgs[1].number, 2);
	assert_string_equal(uidl_of(&l->msgs[1]), "b");
	assert_int_equal(l->msgs[1].size, 20);
	assert_int_equal(l->msgs[2].number, 3);
	assert_true(l->msgs[2].size == POP3_SIZE_MAX);
	assert_false(l->msgs[2].known);
	assert_false(l->msgs[2].fetch);
	pop3_listing_free(&l);
	session_end(&s, &f);
}

/* UIDL alone, then LIST only when asked: sizes filled by number, and LIST
 * must name exactly UIDL's messages. */
static void
test_listing_uidls_then_sizes(void **state)
{
	static const struct {
		const char *list, *what;
	} bad_lists[] = {
		{ "+OK\r\n1 10\r\n.\r\n", "3 is in UIDL but not in LIST" },
		{ "+OK\r\n1 10\r\n3 30\r\n4 40\r\n.\r\n",
		  "LIST has 3 messages, UIDL 2" },
		/* Both: the one UIDL lacks is named first. */
		{ "+OK\r\n4 40\r\n1 10\r\n.\r\n",
		  "3 is in UIDL but not in LIST" },
		{ "+OK\r\n3 30\r\n1 10\r\n1 10\r\n.\r\n",
		  "duplicate message number 1" },
		{ "-ERR no\r\n", "LIST failed" },
	};
	struct pop3_listing *l;
	struct pf_error err;
	struct fake f;
	struct pop3 *s;
	size_t i;

	(void)state;
	script(&f, "+OK\r\nPIPELINING\r\nUIDL\r\n.\r\n");
	fake_add(&f, "UIDL", "+OK\r\n3 c\r\n1 a\r\n.\r\n");
	fake_add(&f, "LIST", "+OK\r\n1 10\r\n3 30\r\n.\r\n");
	s = started(&f, "");
	assert_int_equal(pop3_list_uidls(s, &l, &err), 0);
	assert_null(strstr(sent(&f), "LIST"));
	assert_true(l->has_uidl);
	assert_false(l->sizes_known);
	/* Listed out of order, returned in number order. */
	assert_int_equal(l->count, 2);
	assert_int_equal(l->msgs[0].number, 1);
	assert_string_equal(uidl_of(&l->msgs[0]), "a");
	assert_int_equal(l->msgs[0].size, 0);
	assert_int_equal(l->msgs[1].number, 3);
	assert_string_equal(uidl_of(&l->msgs[1]), "c");
	assert_int_equal(pop3_list_sizes(s, l, &err), 0);
	assert_true(l->sizes_known);
	assert_int_equal(l->msgs[0].size, 10);
	assert_int_equal(l->msgs[1].size, 30);
	/* Known now: nothing more is sent. */
	assert_int_equal(pop3_list_sizes(s, l, &err), 0);
	assert_true(pop3_is_synchronised(s));
	pop3_listing_free(&l);
	session_end(&s, &f);

	/* Duplicate unique-ids are refused here too. */
	script(&f, NULL);
	fake_add(&f, "UIDL", "+OK\r\n1 a\r\n2 a\r\n.\r\n");
	s = started(&f, NULL);
	assert_int_equal(pop3_list_uidls(s, &l, &err), -1);
	assert_int_equal(err.category, PF_FAIL_PROTO);
	assert_null(l);
	session_end(&s, &f);

	for (i = 0; i < sizeof(bad_lists) / sizeof(bad_lists[0]); i++) {
		script(&f, NULL);
		fake_add(&f, "UIDL", "+OK\r\n1 a\r\n3 c\r\n.\r\n");
		fake_add(&f, "LIST", bad_lists[i].list);
		s = started(&f, NULL);
		assert_int_equal(pop3_list_uidls(s, &l, &err), 0);
		assert_int_equal(pop3_list_sizes(s, l, &err), -1);
		assert_int_equal(err.category, PF_FAIL_PROTO);
		if (strstr(err.what, bad_lists[i].what) == NULL)
			fail_msg("case %zu: \"%s\"", i, err.what);
		pop3_listing_free(&l);
		session_end(&s, &f);
	}

	/* No UIDL: the LIST listing, sizes known. */
	script(&f, NULL);
	fake_add(&f, "UIDL", "-ERR unknown command\r\n");
	fake_add(&f, "LIST", "+OK\r\n1 120\r\n.\r\n");
	s = started(&f, NULL);
	assert_int_equal(pop3_list_uidls(s, &l, &err), 0);
	assert_false(l->has_uidl);
	assert_true(l->sizes_known);
	assert_int_equal(l->msgs[0].size, 120);
	pop3_listing_free(&l);
	session_end(&s, &f);
}

static void
test_listing_errors(void **state)
{
	char longuid[POP3_UIDL_MAX + 32];
	const struct {
		const char	*uidl;	/* UIDL body (NULL: -ERR) */
		const char	*list;	/* LIST body (NULL: not reached) */
		const char	*what;	/* substring of err.what */
		const char	*server; /* err.server */
	} cases[] = {
		{ "x 1\r\n", NULL, "bad message number", "x 1" },
		{ "1a abc\r\n", NULL, "bad message number", "1a abc" },
		{ "-1 abc\r\n", NULL, "bad message number", "-1 abc" },
		{ "+1 abc\r\n", NULL, "bad message number", "+1 abc" },
		{ "0 abc\r\n", NULL, "bad message number", "0 abc" },
		{ " 1 abc\r\n", NULL, "bad message number", " 1 abc" },
		{ "99999999999999999999 abc\r\n", NULL, "bad message number",
		  "99999999999999999999 abc" },
		{ "1000001 abc\r\n", NULL, "bad message number",
		  "1000001 abc" },
		{ "1\r\n", NULL, "without unique-id", "1" },
		{ "1 \r\n", NULL, "without unique-id", "1 " },
		{ "1 ab c\r\n", NULL, "space", "1 ab c" },
		{ "1 abc \r\n", NULL, "space", "1 abc " },
		{ "1 ab\tc\r\n", NULL, "space", "1 ab\\x09c" },
		{ "1 ab\xe9\r\n", NULL, "space", "1 ab\\xe9" },
		{ "1 ab\x01\r\n", NULL, "control character", "1 ab\\x01" },
		{ longuid, NULL, "longer than", NULL },
		{ "1 a\r\n2 b\r\n1 c\r\n", NULL, "duplicate message number 1",
		  "1 c" },
		/* past the duplicate set's first size, which then grows */
		{ "600 a\r\n1000000 b\r\n70000 c\r\n1000000 d\r\n", NULL,
		  "duplicate message number 1000000", "1000000 d" },
		{ "1 a\r\n", "9 5\r\n1000000 5\r\n1000000 5\r\n",
		  "duplicate message number 1000000", "1000000 5" },
		{ "1 a\r\n2 b\r\n3 a\r\n", "1 1\r\n2 2\r\n3 3\r\n",
		  "duplicate unique-id", "3 a" },
		{ "1 a\r\n", "x 1\r\n", "bad message number", "x 1" },
		{ "1 a\r\n", "1\r\n", "no size", "1" },
		{ "1 a\r\n", "1 \r\n", "no size", "1 " },
		{ "1 a\r\n", "1 12x\r\n", "bad size", "1 12x" },
		{ "1 a\r\n", "1 -5\r\n", "bad size", "1 -5" },
		{ "1 a\r\n", "1 99999999999999999999\r\n", "bad size",
		  "1 99999999999999999999" },
		{ "1 a\r\n", "0 5\r\n", "bad message number", "0 5" },
		{ "1 a\r\n", "1 5\r\n1 5\r\n", "duplicate message number 1",
		  "1 5" },
		{ "1 a\r\n2 b\r\n", "1 5\r\n", "2 is in UIDL but not in LIST",
		  "2 b" },
		{ "1 a\r\n", "1 5\r\n3 7\r\n", "3 is in LIST but not in UIDL",
		  "3 7" },
		/* More than one fault: LIST's lines first, then the
		 * unique-ids, then LIST's extra, then UIDL's. */
		{ "1 a\r\n2 a\r\n", "3 7\r\n1 5\r\nx\r\n",
		  "bad message number", "x" },
		{ "1 a\r\n2 a\r\n", "3 7\r\n1 5\r\n", "duplicate unique-id",
		  "2 a" },
		{ "2 b\r\n1 a\r\n4 d\r\n", "5 9\r\n4 8\r\n3 7\r\n",
		  "5 is in LIST but not in UIDL", "5 9" },
		{ "2 b\r\n1 a\r\n4 d\r\n", "4 8\r\n2 6\r\n",
		  "1 is in UIDL but not in LIST", "1 a" },
	};
	struct pop3_listing *l;
	struct pf_error err;
	struct fake f;
	struct pop3 *s;
	char *r;
	size_t i;

	(void)state;
	memcpy(longuid, "1 ", 2);
	memset(longuid + 2, 'u', POP3_UIDL_MAX + 1);
	memcpy(longuid + 2 + POP3_UIDL_MAX + 1, "\r\n", 3);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		script(&f, NULL);
		r = xasprintf("+OK\r\n%s.\r\n", cases[i].uidl);
		fake_add(&f, "UIDL", r);
		free(r);
		if (cases[i].list != NULL) {
			r = xasprintf("+OK\r\n%s.\r\n", cases[i].list);
			fake_add(&f, "LIST", r);
			free(r);
		}
		f.max_chunk = 5;
		s = started(&f, NULL);
		l = (struct pop3_listing *)&f;	/* must be reset */
		assert_int_equal(pop3_list_messages(s, &l, &err), -1);
		assert_null(l);
		if (err.category != PF_FAIL_PROTO ||
		    strstr(err.what, cases[i].what) == NULL ||
		    (cases[i].server != NULL &&
		    strcmp(err.server, cases[i].server) != 0))
			fail_msg("case %zu: got %d \"%s\" / \"%s\"", i,
			    err.category, err.what, err.server);
		session_end(&s, &f);
	}
}

/*
 * The unique-ids of one listing total at most POP3_UIDL_TOTAL_MAX octets
 * (params.h): a server listing a million POP3_UIDL_MAX-octet unique-ids
 * would otherwise make us hold over half a gigabyte.  The line that passes
 * the cap is a protocol error; a listing that reaches it exactly is fine.
 */
static void
test_listing_uidl_total(void **state)
{
	size_t per = POP3_UIDL_MAX, fit = POP3_UIDL_TOTAL_MAX / per;
	struct pop3_listing *l;
	struct pf_error err;
	struct fake f;
	struct pop3 *s;
	char want[32];

	(void)state;
	assert_true(fit < POP3_MESSAGES_MAX);	/* the count cap is not it */

	/* fit lines of the longest unique-id: accepted. */
	script(&f, NULL);
	fake_add(&f, "UIDL", "+OK\r\n");
	f.gen_uidlen = per;
	f.gen_lines = (unsigned)fit;
	s = started(&f, NULL);
	assert_int_equal(pop3_list_uidls(s, &l, &err), 0);
	assert_int_equal(l->count, fit);
	assert_int_equal(strlen(uidl_of(&l->msgs[fit - 1])), per);
	pop3_listing_free(&l);
	session_end(&s, &f);

	/* One more: refused at that line, nothing kept. */
	script(&f, NULL);
	fake_add(&f, "UIDL", "+OK\r\n");
	f.gen_uidlen = per;
	f.gen_lines = (unsigned)fit + 1;
	s = started(&f, NULL);
	l = (struct pop3_listing *)&f;		/* must be reset */
	assert_int_equal(pop3_list_uidls(s, &l, &err), -1);
	assert_null(l);
	fprintf(stderr, "# %s: %.40s...\n", err.what, err.server);
	assert_int_equal(err.category, PF_FAIL_PROTO);
	assert_non_null(strstr(err.what, "UIDL listing too large"));
	snprintf(want, sizeof(want), "%zu %010zu", fit + 1, fit + 1);
	assert_true(strncmp(err.server, want, strlen(want)) == 0);
	assert_false(pop3_is_synchronised(s));
	session_end(&s, &f);
}

/*
 * -ERR to UIDL (doc/DESIGN.md §5): "no UIDL" only from a server that did
 * not announce UIDL in a session not marked with pop3_expect_uidl;
 * otherwise a temporary failure, never a switch to no-UIDL mode.
 */
static void
test_listing_uidl_err(void **state)
{
	static const struct {
		const char	*capa;		/* NULL: no CAPA */
		bool		 expect;	/* pop3_expect_uidl */
		bool		 uidls_only;	/* pop3_list_uidls */
		int		 rc;
	} cases[] = {
		{ "+OK\r\nUIDL\r\n.\r\n", false, false, -1 },
		{ "+OK\r\nUIDL\r\n.\r\n", false, true, -1 },
		{ "+OK\r\nPIPELINING\r\nUIDL\r\n.\r\n", false, false, -1 },
		{ NULL, false, false, 0 },
		{ NULL, false, true, 0 },
		{ "+OK\r\nUSER\r\n.\r\n", false, false, 0 },
		{ "-ERR no CAPA\r\n", false, false, 0 },
		{ NULL, true, false, -1 },
		{ NULL, true, true, -1 },
		{ "+OK\r\nPIPELINING\r\n.\r\n", true, false, -1 },
	};
	struct pop3_listing *l;
	struct pf_error err;
	struct fake f;
	struct pop3 *s;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bool pipelined = cases[i].capa != NULL &&
		    strstr(cases[i].capa, "PIPELINING") != NULL;

		script(&f, cases[i].capa);
		fake_add(&f, "UIDL", "-ERR unknown command\r\n");
		/* LIST: with PIPELINING it goes with UIDL; without UIDL
		 * it is the listing. */
		if (pipelined || cases[i].rc == 0)
			fake_add(&f, "LIST", "+OK\r\n1 120\r\n2 200\r\n.\r\n");
		s = started(&f, cases[i].capa);
		if (cases[i].expect)
			pop3_expect_uidl(s);
		l = (struct pop3_listing *)&f;	/* must be reset */
		assert_int_equal(cases[i].uidls_only ?
		    pop3_list_uidls(s, &l, &err) :
		    pop3_list_messages(s, &l, &err), cases[i].rc);
		if (cases[i].rc == 0) {
			assert_non_null(l);
			assert_false(l->has_uidl);
			assert_int_equal(l->count, 2);
			assert_null(uidl_of(&l->msgs[0]));
			assert_true(pop3_is_synchronised(s));
			pop3_listing_free(&l);
		} else {
			assert_null(l);
			if (err.category != PF_FAIL_TEMP ||
			    strncmp(err.what, "UIDL failed", 11) != 0 ||
			    strcmp(err.server, "-ERR unknown command") != 0)
				fail_msg("case %zu: %d \"%s\" / \"%s\"", i,
				    err.category, err.what, err.server);
			/* Without PIPELINING no LIST went out. */
			if (!pipelined)
				assert_null(strstr(sent(&f), "LIST"));
		}
		session_end(&s, &f);
	}
}

/* After STAT, numbers above its count are refused. */
static void
test_listing_stat_bound(void **state)
{
	struct pop3_listing *l;
	struct pf_error err;
	struct fake f;
	struct pop3 *s;

	(void)state;
	script(&f, NULL);
	fake_add(&f, "STAT", "+OK 2 30\r\n");
	fake_add(&f, "UIDL", "+OK\r\n1 a\r\n3 c\r\n.\r\n");
	s = started(&f, NULL);
	assert_int_equal(pop3_stat(s, NULL, NULL, &err), 0);
	assert_int_equal(pop3_list_messages(s, &l, &err), -1);
	assert_int_equal(err.category, PF_FAIL_PROTO);
	assert_string_equal(err.server, "3 c");
	session_end(&s, &f);
}

/* ---- RETR ---- */

/* Build a message exercising every dot and line-ending rule. */
static char *
tricky_message(size_t *len_r)
{
	static const char head[] =
	    "From: a@example.org\n"
	    "Subject: dots\n"
	    "\n"
	    ".\n"
	    "..\n"
	    ".x\n"
	    "....\n"
	    "end.\n"
	    "8bit: \xe9\xe8\xff\x80 nul:\0: ctl:\x01\x1b\n"
	    "\n";
	size_t len = sizeof(head) - 1 + 100000 + 1 + 6;
	char *m = xmalloc(len + 1);

	memcpy(m, head, sizeof(head) - 1);
	memset(m + sizeof(head) - 1, 'L', 100000);
	memcpy(m + sizeof(head) - 1 + 100000, "\n.last\n", 7);
	*len_r = len;
	return m;
}

static void
run_retr(size_t max_chunk, bool random, const char *msg, size_t len)
{
	static const struct pop3_msg m1 = { .number = 1, .size = 1000 };
	static const struct pop3_msg m2 = { .number = 2, .size = 10 };
	const struct pop3_msg *msgs[] = { &m1, &m2 };
	struct pf_error err;
	struct coll c = { 0 };
	struct pop3_sink sink = sink_for(&c);
	struct fake f;
	struct pop3 *s;

	script(&f, NULL);
	add_retr(&f, 1, msg, len);
	add_retr(&f, 2, "second\n", 7);
	fake_add(&f, "NOOP", "+OK\r\n");
	f.max_chunk = max_chunk;
	f.random = random;
	f.seed = 99;
	s = started(&f, NULL);
	assert_int_equal(pop3_retr_each(s, msgs, 2, &sink, &err), 0);
	assert_int_equal(c.begins, 2);
	assert_int_equal(c.ends, 2);
	assert_int_equal(c.gotlen[0], len);
	assert_memory_equal(c.got[0], msg, len);
	assert_int_equal(c.gotlen[1], 7);
	assert_memory_equal(c.got[1], "second\n", 7);
	assert_true(pop3_is_synchronised(s));
	/* Data came in chunks of a read buffer, not per line (unlimited
	 * reads): with 64 KiB, at most 4 for this 100 KB message. */
	if (max_chunk == 0)
		assert_true(c.datas <= len / NET_READ_BUF + 3);
	session_end(&s, &f);
	coll_free(&c);
}

static void
test_retr_unstuffing(void **state)
{
	size_t len;
	char *msg = tricky_message(&len);

	(void)state;
	run_retr(0, false, msg, len);
	run_retr(1, false, msg, len);
	run_retr(2, false, msg, len);
	run_retr(7, true, msg, len);
	run_retr(5000, true, msg, len);
	run_retr(NET_READ_BUF, true, msg, len);
	free(msg);
}

/* Wire forms the encoder above never makes: bare CR, bare LF, unstuffed
 * dot lines, an empty message. */
static void
test_retr_raw_forms(void **state)
{
	static const struct pop3_msg m1 = { .number = 1, .size = 40 };
	static const struct pop3_msg m2 = { .number = 2, .size = 0 };
	const struct pop3_msg *msgs[] = { &m1, &m2 };
	static const char want[] = ".\nx\n..\na\rb\nbare\nlf\nc\r\n\r\n";
	struct pf_error err;
	struct coll c = { 0 };
	struct pop3_sink sink = sink_for(&c);
	struct fake f;
	struct pop3 *s;
	size_t chunk;

	(void)state;
	for (chunk = 0; chunk <= 3; chunk++) {
		script(&f, NULL);
		fake_add(&f, "RETR 1", "+OK\r\n..\r\n.x\r\n...\r\na\rb\r\n"
		    "bare\nlf\r\nc\r\r\n\r\r\n.\r\n");
		fake_add(&f, "RETR 2", "+OK\r\n.\r\n");
		fake_add(&f, "NOOP", "+OK\r\n");
		f.max_chunk = chunk;
		s = started(&f, NULL);
		assert_int_equal(pop3_retr_each(s, msgs, 2, &sink, &err), 0);
		assert_int_equal(c.gotlen[0], sizeof(want) - 1);
		assert_memory_equal(c.got[0], want, sizeof(want) - 1);
		assert_int_equal(c.gotlen[1], 0);
		assert_int_equal(c.last_octets, 0);
		assert_int_equal(c.ends, 2);
		session_end(&s, &f);
		coll_free(&c);
		sink = sink_for(&c);
	}
}

/* The terminator (and every CR) split at every pair of positions. */
static void
test_retr_split_everywhere(void **state)
{
	static const char r1[] = "+OK\r\nab\r\n..\r\n\r\nc\r\r\n.\r\n";
	static const char r2[] = "+OK\r\nnext\r\n.\r\n";
	static const char r3[] = "+OK\r\n";	/* NOOP */
	static const struct pop3_msg m1 = { .number = 1, .size = 20 };
	static const struct pop3_msg m2 = { .number = 2, .size = 6 };
	const struct pop3_msg *msgs[] = { &m1, &m2 };
	const size_t glen = strlen("+OK ready\r\n");
	const size_t total = sizeof(r1) - 1 + sizeof(r2) - 1 + sizeof(r3) - 1;
	struct pf_error err;
	struct fake f;
	struct pop3 *s;
	size_t i, j;

	(void)state;
	for (i = 1; i < total; i++)
		for (j = i; j < total; j++) {
			struct coll c = { 0 };
			struct pop3_sink sink = sink_for(&c);

			script(&f, NULL);
			fake_add(&f, "RETR 1", r1);
			fake_add(&f, "RETR 2", r2);
			fake_add(&f, "NOOP", r3);
			f.cuts[0] = glen + i;
			f.cuts[1] = glen + j;
			f.ncuts = 2;
			s = started(&f, NULL);
			assert_int_equal(pop3_retr_each(s, msgs, 2, &sink,
			    &err), 0);
			assert_int_equal(c.ends, 2);
			if (c.gotlen[0] != 9 ||
			    memcmp(c.got[0], "ab\n.\n\nc\r\n", 9) != 0)
				fail_msg("cuts at %zu, %zu: got %zu octets",
				    i, j, c.gotlen[0]);
			assert_int_equal(c.gotlen[1], 5);
			assert_memory_equal(c.got[1], "next\n", 5);
			session_end(&s, &f);
			coll_free(&c);
		}
}

static void
test_retr_eof(void **state)
{
	static const char *const replies[] = {
		"+OK\r\nline\r\n",
		"+OK\r\nline\r\n.",
		"+OK\r\nline\r\n.\r",
		"+OK\r\nline\r",
		"+OK\r\n",
	};
	static const struct pop3_msg m1 = { .number = 1, .size = 10 };
	const struct pop3_msg *msgs[] = { &m1 };
	struct pf_error err;
	struct fake f;
	struct pop3 *s;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(replies) / sizeof(replies[0]); i++) {
		struct coll c = { 0 };
		struct pop3_sink sink = sink_for(&c);

		script(&f, NULL);
		fake_add(&f, "RETR 1", replies[i]);
		f.max_chunk = 2;
		s = started(&f, NULL);
		assert_int_equal(pop3_retr_each(s, msgs, 1, &sink, &err), -1);
		assert_int_equal(err.category, PF_FAIL_TEMP);
		assert_string_equal(err.what,
		    "connection lost in the middle of message 1");
		assert_int_equal(c.begins, 1);
		assert_int_equal(c.ends, 0);
		assert_false(pop3_is_synchronised(s));
		session_end(&s, &f);
		coll_free(&c);
	}
	/* EOF before the +OK. */
	script(&f, NULL);
	fake_add(&f, "RETR 1", "");
	s = started(&f, NULL);
	{
		struct coll c = { 0 };
		struct pop3_sink sink = sink_for(&c);

		assert_int_equal(pop3_retr_each(s, msgs, 1, &sink, &err), -1);
		assert_int_equal(err.category, PF_FAIL_TEMP);
		assert_int_equal(c.begins, 0);
		coll_free(&c);
	}
	session_end(&s, &f);

	/* The whole message, then EOF instead of the reply to the NOOP:
	 * nothing came that contradicts the ".", so it stands (the message
	 * is ended), but the call fails. */
	script(&f, NULL);
	add_retr(&f, 1, "line\n", 5);
	fake_add(&f, "NOOP", "");
	s = started(&f, NULL);
	{
		struct coll c = { 0 };
		struct pop3_sink sink = sink_for(&c);

		assert_int_equal(pop3_retr_each(s, msgs, 1, &sink, &err), -1);
		assert_int_equal(err.category, PF_FAIL_TEMP);
		assert_string_equal(err.what,
		    "connection lost (waiting for the reply to NOOP)");
		assert_int_equal(c.begins, 1);
		assert_int_equal(c.ends, 1);
		assert_memory_equal(c.got[0], "line\n", 5);
		assert_false(pop3_is_synchronised(s));
		coll_free(&c);
	}
	session_end(&s, &f);
}

static void
test_retr_runaway(void **state)
{
	static const struct pop3_msg m1 = { .number = 1, .size = 100 };
	const struct pop3_msg *msgs[] = { &m1 };
	struct pf_error err;
	struct coll c = { 0 };
	struct pop3_sink sink = sink_for(&c);
	struct fake f;
	struct pop3 *s;

	(void)state;
	c.discard = true;
	script(&f, NULL);
	fake_add(&f, "RETR 1", "+OK\r\n");
	f.endless = true;
	s = started(&f, NULL);
	assert_int_equal(pop3_retr_each(s, msgs, 1, &sink, &err), -1);
	assert_int_equal(err.category, PF_FAIL_PROTO);
	assert_non_null(strstr(err.what, "message 1 does not end"));
	assert_int_equal(c.ends, 0);
	/* Stopped at the limit, not before and not much later. */
	assert_true(f.endless_served >= (uint64_t)RUNAWAY_SLACK);
	assert_true(c.total <= 2 * 100 + (uint64_t)RUNAWAY_SLACK);
	assert_true(f.endless_served <= 2 * 100 + (uint64_t)RUNAWAY_SLACK +
	    NET_READ_BUF);
	session_end(&s, &f);
	coll_free(&c);
}

static void
test_retr_err_and_sink_error(void **state)
{
	static const struct pop3_msg m1 = { .number = 1, .size = 10 };
	static const struct pop3_msg m2 = { .number = 2, .size = 10 };
	const struct pop3_msg *msgs[] = { &m1, &m2 };
	struct pf_error err;
	struct fake f;
	struct pop3 *s;

	(void)state;
	{
		struct coll c = { 0 };
		struct pop3_sink sink = sink_for(&c);

		script(&f, NULL);
		fake_add(&f, "RETR 1", "-ERR no such message\r\n");
		s = started(&f, NULL);
		assert_int_equal(pop3_retr_each(s, msgs, 2, &sink, &err), -1);
		assert_int_equal(err.category, PF_FAIL_PROTO);
		assert_string_equal(err.what, "RETR 1 failed");
		assert_string_equal(err.server, "-ERR no such message");
		assert_int_equal(c.begins, 0);
		assert_true(pop3_is_synchronised(s));
		session_end(&s, &f);
		coll_free(&c);
	}
	{
		struct coll c = { 0 };
		struct pop3_sink sink = sink_for(&c);

		script(&f, NULL);
		add_retr(&f, 1, "ok\n", 3);
		fake_add(&f, "RETR 2", "-ERR [SYS/TEMP] storage offline\r\n");
		s = started(&f, NULL);
		assert_int_equal(pop3_retr_each(s, msgs, 2, &sink, &err), -1);
		assert_int_equal(err.category, PF_FAIL_TEMP);
		assert_int_equal(c.ends, 1);
		session_end(&s, &f);
		coll_free(&c);
	}
	{
		/* The sink fails: stop at once with its error. */
		struct coll c = { 0 };
		struct pop3_sink sink = sink_for(&c);

		c.fail_data_at = 1;
		script(&f, "+OK\r\nPIPELINING\r\n.\r\n");
		add_retr(&f, 1, "one\n", 4);
		add_retr(&f, 2, "two\n", 4);
		fake_add(&f, "NOOP", "+OK\r\n");	/* pipelined too */
		s = started(&f, "");
		assert_int_equal(pop3_retr_each(s, msgs, 2, &sink, &err), -1);
		assert_int_equal(err.category, PF_FAIL_IO);
		assert_string_equal(err.what, "write(tmp/x): disk full");
		assert_int_equal(c.datas, 1);
		assert_int_equal(c.ends, 0);
		assert_int_equal(c.begins, 1);
		assert_false(pop3_is_synchronised(s));
		session_end(&s, &f);
		coll_free(&c);
	}
}

/*
 * An unstuffed "." line inside message `bad` of 3 (the server's bug, or a
 * body made to look like the end): what follows it is not a reply to the
 * next command, so that message is never ended; the ones before it are.
 * With and without PIPELINING, the bad one in the middle or last (then
 * the NOOP's reply is what is missing), reads unlimited or bytewise.
 */
static void
test_retr_unstuffed_dot(void **state)
{
	static const struct pop3_msg m[3] = {
		{ .number = 1, .size = 8 }, { .number = 2, .size = 40 }, { .number = 3, .size = 8 },
	};
	const struct pop3_msg *msgs[3] = { &m[0], &m[1], &m[2] };
	static const char bad_reply[] = "+OK\r\nfirst part\r\n.\r\n"
	    "rest of the body\r\n.\r\n";
	struct pf_error err;
	struct fake f;
	struct pop3 *s;
	unsigned bad;
	size_t chunk;
	int pipelined;

	(void)state;
	for (pipelined = 0; pipelined <= 1; pipelined++)
		for (bad = 2; bad <= 3; bad++)
			for (chunk = 0; chunk <= 1; chunk++) {
				struct coll c = { 0 };
				struct pop3_sink sink = sink_for(&c);
				unsigned i;

				script(&f, pipelined ?
				    "+OK\r\nPIPELINING\r\n.\r\n" : NULL);
				for (i = 1; i <= 3; i++) {
					char cmd[16];

					snprintf(cmd, sizeof(cmd), "RETR %u", i);
					if (i == bad)
						fake_add(&f, cmd, bad_reply);
					else
						add_retr(&f, i, "ok\n", 3);
				}
				fake_add(&f, "NOOP", "+OK\r\n");
				f.max_chunk = chunk;
				s = started(&f, pipelined ? "" : NULL);
				assert_int_equal(pop3_retr_each(s, msgs, 3,
				    &sink, &err), -1);
				if (err.category != PF_FAIL_PROTO ||
				    strstr(err.server, "rest of the body") ==
				    NULL)
					fail_msg("pipelined %d, bad %u, chunk "
					    "%zu: %d \"%s\" / \"%s\"",
					    pipelined, bad, chunk, err.category,
					    err.what, err.server);
				/* Bytewise, the next command goes out before
				 * the rest arrives, and its "reply" is
				 * refused; else the rest is caught as data
				 * nobody asked for (lock-step) or as the
				 * next reply (pipelined). */
				if (pipelined || chunk == 1) {
					char what[64];

					if (bad == 3)
						snprintf(what, sizeof(what),
						    "unexpected reply to NOOP");
					else
						snprintf(what, sizeof(what),
						    "unexpected reply to "
						    "RETR %u", bad + 1);
					assert_string_equal(err.what, what);
				}
				/* The ones before it ended, it did not. */
				assert_int_equal(c.begins, bad);
				assert_int_equal(c.ends, bad - 1);
				assert_string_equal(c.ev, bad == 2 ?
				    "B1 E1 B2 " : "B1 E1 B2 E2 B3 ");
				assert_false(pop3_is_synchronised(s));
				session_end(&s, &f);
				coll_free(&c);
			}
}

/*
 * -ERR to RETR 2 of 3.  With sink->refused: called once, for message 2,
 * with the server's words; 1 and 3 are ended and the call succeeds, in
 * step.  Without: the error, as before (message 1 ended: the -ERR is a
 * proper reply).  A refused() that fails stops everything.
 */
static void
test_retr_refused(void **state)
{
	static const struct pop3_msg m[3] = {
		{ .number = 1, .size = 4 }, { .number = 2, .size = 4 }, { .number = 3, .size = 6 },
	};
	const struct pop3_msg *msgs[3] = { &m[0], &m[1], &m[2] };
	static const char *const errs[2] = {
		"-ERR message is corrupt\r\n", "-ERR [SYS/TEMP] try later\r\n",
	};
	struct pf_error err;
	struct fake f;
	struct pop3 *s;
	int pipelined, e, mode;

	(void)state;
	for (pipelined = 0; pipelined <= 1; pipelined++)
		for (e = 0; e < 2; e++)
			/* mode 0: refused(), 1: none, 2: refused() fails */
			for (mode = 0; mode <= 2; mode++) {
				struct coll c = { 0 };
				struct pop3_sink sink = sink_for(&c);
				char server[64];

				if (mode != 1)
					sink.refused = coll_refused;
				c.refused_fails = mode == 2;
				script(&f, pipelined ?
				    "+OK\r\nPIPELINING\r\n.\r\n" : NULL);
				add_retr(&f, 1, "one\n", 4);
				fake_add(&f, "RETR 2", errs[e]);
				add_retr(&f, 3, "three\n", 6);
				fake_add(&f, "NOOP", "+OK\r\n");
				s = started(&f, pipelined ? "" : NULL);
				snprintf(server, sizeof(server), "%.*s",
				    (int)strlen(errs[e]) - 2, errs[e]);
				if (mode == 0) {
					assert_int_equal(pop3_retr_each(s,
					    msgs, 3, &sink, &err), 0);
					assert_int_equal(c.refused, 1);
					assert_string_equal(c.ev,
					    "B1 E1 R2 B3 E3 ");
					assert_int_equal(c.ends, 2);
					assert_memory_equal(c.got[0], "one\n",
					    4);
					assert_memory_equal(c.got[1],
					    "three\n", 6);
					assert_string_equal(c.why.what,
					    "RETR 2 failed");
					assert_string_equal(c.why.server,
					    server);
					assert_int_equal(c.why.category, e == 0
					    ? PF_FAIL_PROTO : PF_FAIL_TEMP);
					assert_true(pop3_is_synchronised(s));
					assert_non_null(strstr(sent(&f),
					    "RETR 3\r\nNOOP\r\n"));
				} else if (mode == 1) {
					assert_int_equal(pop3_retr_each(s,
					    msgs, 3, &sink, &err), -1);
					assert_string_equal(err.what,
					    "RETR 2 failed");
					assert_string_equal(err.server, server);
					assert_int_equal(err.category, e == 0
					    ? PF_FAIL_PROTO : PF_FAIL_TEMP);
					assert_string_equal(c.ev, "B1 E1 ");
					/* Lock-step: nothing else was sent. */
					if (!pipelined) {
						assert_null(strstr(sent(&f),
						    "RETR 3"));
						assert_true(
						    pop3_is_synchronised(s));
					} else
						assert_false(
						    pop3_is_synchronised(s));
				} else {
					assert_int_equal(pop3_retr_each(s,
					    msgs, 3, &sink, &err), -1);
					assert_int_equal(err.category,
					    PF_FAIL_IO);
					assert_string_equal(err.what,
					    "refusal not recorded");
					assert_string_equal(c.ev, "B1 E1 R2 ");
					assert_false(pop3_is_synchronised(s));
				}
				session_end(&s, &f);
				coll_free(&c);
			}
}

/* The body of message i in retr_bulk(). */
static size_t
bulk_body(size_t i, char *buf, size_t size)
{
	return (size_t)snprintf(buf, size, "Subject: %zu\n\n.body %zu\n", i, i);
}

/*
 * RETR of messages 1..n (n <= 200) in one pop3_retr_each() call, in a
 * session whose CAPA reply is `capa` and whose reads return at most
 * max_chunk octets (0: no limit): every message must arrive intact and in
 * order, the session stay synchronised.  The fake server is left in *f for
 * its counters; the caller frees it.
 */
static void
retr_bulk(struct fake *f, const char *capa, size_t n, size_t max_chunk)
{
	struct pop3_msg *m = calloc(n, sizeof(*m));
	const struct pop3_msg **msgs = calloc(n, sizeof(*msgs));
	struct pf_error err;
	struct coll c = { 0 };
	struct pop3_sink sink = sink_for(&c);
	struct pop3 *s;
	char body[64];
	size_t i, len;

	assert_non_null(m);
	assert_non_null(msgs);
	script(f, capa);
	for (i = 0; i < n; i++) {
		m[i] = (struct pop3_msg){ .number = (unsigned)i + 1, .size = 20 };
		msgs[i] = &m[i];
		len = bulk_body(i + 1, body, sizeof(body));
		add_retr(f, (unsigned)i + 1, body, len);
	}
	fake_add(f, "NOOP", "+OK\r\n");
	f->max_chunk = max_chunk;
	s = started(f, "");
	assert_int_equal(pop3_retr_each(s, msgs, n, &sink, &err), 0);
	assert_int_equal(c.ends, n);
	for (i = 0; i < n; i++) {
		len = bulk_body(i + 1, body, sizeof(body));
		assert_int_equal(c.gotlen[i], len);
		assert_memory_equal(c.got[i], body, len);
	}
	assert_true(pop3_is_synchronised(s));
	pop3_free(&s);
	coll_free(&c);
	free(m);
	free(msgs);
}

/* Three windows' worth of messages with PIPELINING: windows of commands,
 * all in order. */
static void
test_retr_pipelined(void **state)
{
	const size_t n = 3 * POP3_PIPELINE_WINDOW + 7;
	struct fake f;

	(void)state;
	/* little read-ahead: sharper counts */
	retr_bulk(&f, "+OK\r\nPIPELINING\r\n.\r\n", n, 100);
	/* Many commands per write, never more than the window in flight. */
	assert_int_equal(f.max_per_write, POP3_PIPELINE_WINDOW);
	assert_true(f.max_outstanding > 1);
	assert_true(f.max_outstanding <= POP3_PIPELINE_WINDOW);
	assert_true(f.writes < 1 + n / 2);
	fake_free(&f);
}

/*
 * pop3_retr_listed: only the listing's messages marked fetch, in order, with
 * gaps in the numbers, over several windows with PIPELINING and in
 * lock-step; a refusal moves on to the next marked one.
 */
static void
test_retr_listed(void **state)
{
	static const char first[] =
	    "B4 E4 B6 E6 B10 E10 B12 E12 R16 B18 E18 B22 E22 ";
	const size_t n = 6 * POP3_PIPELINE_WINDOW + 5;
	struct pop3_msg *m = calloc(n, sizeof(*m));
	struct pop3_listing l = { .msgs = m, .count = n, .has_uidl = true };
	int pipelined;
	size_t i, k, want;
	char body[64];

	(void)state;
	assert_non_null(m);
	for (pipelined = 0; pipelined <= 1; pipelined++) {
		struct coll c = { 0 };
		struct pop3_sink sink = sink_for(&c);
		struct pf_error err;
		struct fake f;
		struct pop3 *s;
		size_t len;

		sink.refused = coll_refused;
		script(&f, pipelined ? "+OK\r\nPIPELINING\r\n.\r\n" : NULL);
		for (i = want = 0; i < n; i++) {
			/* numbers 2, 4, 6 ...; marked: not every third, and
			 * not the first nor the last */
			m[i] = (struct pop3_msg){ .number = 2 * (unsigned)i + 2,
			    .size = 20, .fetch = i % 3 != 0 && i != n - 1 };
			if (!m[i].fetch)
				continue;
			if (i == 7) {
				fake_add(&f, "RETR 16", "-ERR gone\r\n");
				continue;
			}
			len = bulk_body(i, body, sizeof(body));
			add_retr(&f, m[i].number, body, len);
			want++;
		}
		fake_add(&f, "NOOP", "+OK\r\n");
		f.max_chunk = 100;
		s = started(&f, pipelined ? "" : NULL);
		assert_int_equal(pop3_retr_listed(s, &l, &sink, &err), 0);
		assert_int_equal(c.ends, want);
		assert_int_equal(c.refused, 1);
		assert_string_equal(c.why.what, "RETR 16 failed");
		assert_int_equal(strncmp(c.ev, first, strlen(first)), 0);
		for (i = k = 0; i < n; i++) {
			if (!m[i].fetch || i == 7)
				continue;
			len = bulk_body(i, body, sizeof(body));
			assert_int_equal(c.gotlen[k], len);
			assert_memory_equal(c.got[k], body, len);
			k++;
		}
		assert_true(pop3_is_synchronised(s));
		if (pipelined)
			assert_true(f.max_outstanding > 1);
		pop3_free(&s);
		coll_free(&c);
		fake_free(&f);
	}

	/* None marked: nothing sent, nothing to read. */
	{
		struct coll c = { 0 };
		struct pop3_sink sink = sink_for(&c);
		struct pf_error err;
		struct fake f;
		struct pop3 *s;

		for (i = 0; i < n; i++)
			m[i].fetch = false;
		script(&f, NULL);
		s = started(&f, NULL);
		l.count = 3;
		assert_int_equal(pop3_retr_listed(s, &l, &sink, &err), 0);
		assert_int_equal(c.begins, 0);
		assert_null(strstr(sent(&f), "RETR"));
		pop3_free(&s);
		coll_free(&c);
		fake_free(&f);
	}
	free(m);
}

/*
 * POP3_QUIT_AFTER_RETR: QUIT goes out right after the last message is in,
 * never with the RETRs; POP3_QUIT_COMMIT then only reads its reply.  Alike with
 * and without PIPELINING.
 */
static void
test_retr_then_quit(void **state)
{
	static const struct pop3_msg m[3] = {
		{ .number = 1, .size = 8 }, { .number = 2, .size = 8 }, { .number = 3, .size = 8 },
	};
	const struct pop3_msg *msgs[3] = { &m[0], &m[1], &m[2] };
	static const char *const capas[2] = {
		"+OK\r\nPIPELINING\r\n.\r\n", "+OK\r\nUIDL\r\n.\r\n",
	};
	struct pf_error err;
	struct coll c = { 0 };
	struct pop3_sink sink = sink_for(&c);
	struct fake f;
	struct pop3 *s;
	const char *q;
	size_t writes;
	int pipelined;

	(void)state;
	for (pipelined = 1; pipelined >= 0; pipelined--) {
		script(&f, capas[pipelined ? 0 : 1]);
		add_retr(&f, 1, "one\n", 4);
		add_retr(&f, 2, "two\n", 4);
		add_retr(&f, 3, "three\n", 6);
		fake_add(&f, "NOOP", "+OK\r\n");
		fake_add(&f, "QUIT", "+OK bye\r\n");
		s = started(&f, "");
		assert_int_equal(pop3_quit(s, POP3_QUIT_AFTER_RETR, &err), 0);
		assert_int_equal(pop3_retr_each(s, msgs, 3, &sink, &err), 0);
		assert_int_equal(c.ends, 3);
		/* QUIT sent, in a write of its own, after the reply to the
		 * NOOP that follows RETR 3. */
		q = strstr(sent(&f), "QUIT\r\n");
		assert_non_null(q);
		assert_string_equal(q, "QUIT\r\n");
		assert_non_null(strstr(sent(&f), "RETR 3\r\nNOOP\r\nQUIT\r\n"));
		/* CAPA, the RETRs and the NOOP (one write, or one each),
		 * then QUIT. */
		assert_int_equal(f.writes, pipelined ? 3 : 6);
		assert_false(pop3_is_synchronised(s));
		writes = f.writes;
		assert_int_equal(pop3_quit(s, POP3_QUIT_COMMIT, &err), 0);
		/* Once: a second call reports the first. */
		assert_int_equal(pop3_quit(s, POP3_QUIT_COMMIT, &err), 0);
		assert_int_equal(f.writes, writes);
		assert_null(strstr(q + 1, "QUIT"));
		assert_true(pop3_is_synchronised(s));
		session_end(&s, &f);
		coll_free(&c);
		memset(&c, 0, sizeof(c));
	}
}

/* pop3_greeting_capa: CAPA is written before the greeting is read (one
 * write, one round trip); both replies are read in order. */
static void
test_greeting_capa(void **state)
{
	struct pf_error err;
	struct fake f;
	struct pop3 *s;

	(void)state;
	fake_init(&f);
	fake_add(&f, NULL, "+OK ready <1.2@host>\r\n");
	fake_add(&f, "CAPA", "+OK\r\nUIDL\r\nPIPELINING\r\n.\r\n");
	s = session(&f);
	assert_int_equal(pop3_greeting_capa(s, &err), 0);
	assert_int_equal(f.writes, 1);
	assert_true(pop3_capabilities(s)->known);
	assert_true(pop3_capabilities(s)->pipelining);
	assert_string_equal(pop3_apop_timestamp(s), "<1.2@host>");
	assert_true(pop3_is_synchronised(s));
	session_end(&s, &f);

	/* A greeting that refuses: its error, not CAPA's. */
	fake_init(&f);
	fake_add(&f, NULL, "-ERR [SYS/TEMP] too busy\r\n");
	fake_add(&f, "CAPA", "");	/* never answered */
	s = session(&f);
	assert_int_equal(pop3_greeting_capa(s, &err), -1);
	assert_int_equal(err.category, PF_FAIL_TEMP);
	assert_false(pop3_is_synchronised(s));
	session_end(&s, &f);
}

/* Without PIPELINING: strict lock-step. */
static void
test_retr_lockstep(void **state)
{
	struct fake f;

	(void)state;
	retr_bulk(&f, "+OK\r\nUIDL\r\n.\r\n", 20, 0);
	assert_int_equal(f.max_per_write, 1);
	assert_int_equal(f.max_outstanding, 1);
	fake_free(&f);
}

/*
 * Lock-step (no PIPELINING): each command goes out only once the reply
 * before it has been read whole, the NOOP too: after the last message's
 * "."; a message ends only once the next reply is in.  Bytewise reads, so
 * that "read whole" is the last byte of the reply.
 */
static void
test_retr_lockstep_order(void **state)
{
	static const struct pop3_msg m[2] = { { .number = 1, .size = 4 }, { .number = 2, .size = 4 } };
	const struct pop3_msg *msgs[2] = { &m[0], &m[1] };
	struct pf_error err;
	struct coll c = { 0 };
	struct pop3_sink sink = sink_for(&c);
	struct fake f;
	struct pop3 *s;

	(void)state;
	script(&f, NULL);
	add_retr(&f, 1, "one\n", 4);
	add_retr(&f, 2, "two\n", 4);
	fake_add(&f, "NOOP", "+OK still here\r\n");
	f.max_chunk = 1;
	c.tr = &f;
	s = started(&f, NULL);
	assert_int_equal(pop3_retr_each(s, msgs, 2, &sink, &err), 0);
	assert_string_equal(transcript(&f),
	    "< +OK ready\n"
	    "> RETR 1\n"
	    "begin 1\n"
	    "< +OK message\n"		/* all of RETR 1's reply, "." too */
	    "> RETR 2\n"
	    "end 1\n"
	    "begin 2\n"
	    "< +OK message\n"
	    "> NOOP\n"			/* only now */
	    "< +OK still here\n"
	    "end 2\n");
	assert_int_equal(f.max_per_write, 1);
	assert_int_equal(f.max_outstanding, 1);
	assert_true(pop3_is_synchronised(s));
	session_end(&s, &f);
	coll_free(&c);

	/* With PIPELINING the NOOP goes with the last window. */
	memset(&c, 0, sizeof(c));
	script(&f, "+OK\r\nPIPELINING\r\n.\r\n");
	add_retr(&f, 1, "one\n", 4);
	add_retr(&f, 2, "two\n", 4);
	fake_add(&f, "NOOP", "+OK\r\n");
	s = started(&f, "");
	assert_int_equal(pop3_retr_each(s, msgs, 2, &sink, &err), 0);
	assert_non_null(strstr(sent(&f), "CAPA\r\nRETR 1\r\nRETR 2\r\nNOOP\r\n"));
	assert_int_equal(f.max_per_write, 3);
	assert_string_equal(c.ev, "B1 E1 B2 E2 ");
	session_end(&s, &f);
	coll_free(&c);
}

static void
test_top(void **state)
{
	static const struct pop3_msg m1 = { .number = 1, .size = 500 };
	struct pf_error err;
	struct coll c = { 0 };
	struct pop3_sink sink = sink_for(&c);
	struct fake f;
	struct pop3 *s;

	(void)state;
	script(&f, NULL);
	fake_add(&f, "TOP 1 0", "+OK\r\nFrom: a\r\nSubject: b\r\n\r\n.\r\n");
	fake_add(&f, "TOP 1 0", "-ERR no TOP here\r\n");
	s = started(&f, NULL);
	assert_int_equal(pop3_top(s, &m1, 0, &sink, &err), 0);
	assert_int_equal(c.ends, 1);
	assert_memory_equal(c.got[0], "From: a\nSubject: b\n\n", 20);
	assert_int_equal(pop3_top(s, &m1, 0, &sink, &err), -1);
	assert_int_equal(err.category, PF_FAIL_PROTO);
	assert_true(pop3_is_synchronised(s));
	session_end(&s, &f);
	coll_free(&c);
}

/* ---- time (doc/DESIGN.md §5.4) ---- */

/* The fake serves bytes from `from` on `bytes` at a time, `gap_ms` apart,
 * with a timeout of `timeout` seconds. */
static void
trickle(struct fake *f, unsigned timeout, size_t from, size_t bytes,
    unsigned gap_ms)
{
	f->timeout = timeout;
	f->trickle_from = from;
	f->trickle_bytes = bytes;
	f->trickle_gap_ms = gap_ms;
}

/*
 * A status line must be whole within the timeout of the wait for it, not
 * each read: the server sent its greeting one byte every 1.5 s
 * and, with timeout = 2, held the run for 28.5 s.  Each line is a new
 * wait: lines that each come in time pass, however long they take in all.
 */
static void
test_time_status_line(void **state)
{
	struct pf_error err;
	struct timespec t0;
	struct fake f;
	struct pop3 *s;
	unsigned count;

	(void)state;
	/* The greeting, one byte every 1.5 s: gone at 2 s, one byte in. */
	script(&f, NULL);
	trickle(&f, 2, 0, 1, 1500);
	s = session(&f);
	t0 = f.now;
	assert_int_equal(pop3_greeting(s, &err), -1);
	assert_int_equal(err.category, PF_FAIL_TEMP);
	assert_string_equal(err.what, "read from fake: timed out after 2 s");
	assert_true(fake_elapsed(&f, t0) == 2.0);
	assert_int_equal(f.rxpos, 1);
	assert_int_equal(f.arms, 1);
	assert_false(pop3_is_synchronised(s));
	session_end(&s, &f);

	/* A reply later on: the same. */
	script(&f, NULL);
	fake_add(&f, "STAT", "+OK 2 320\r\n");
	trickle(&f, 2, step_offset(&f, 1), 1, 1500);
	s = started(&f, NULL);
	t0 = f.now;
	assert_int_equal(pop3_stat(s, &count, NULL, &err), -1);
	assert_int_equal(err.category, PF_FAIL_TEMP);
	assert_non_null(strstr(err.what, "timed out after 2 s"));
	assert_true(fake_elapsed(&f, t0) == 2.0);
	session_end(&s, &f);

	/* Each reply in 1.8 s, in three reads: 3.6 s for two, both fine. */
	script(&f, NULL);
	fake_add(&f, "STAT", "+OK 2 320\r\n");
	fake_add(&f, "STAT", "+OK 1 160\r\n");
	trickle(&f, 2, step_offset(&f, 1), 4, 600);
	s = started(&f, NULL);
	t0 = f.now;
	assert_int_equal(pop3_stat(s, &count, NULL, &err), 0);
	assert_int_equal(count, 2);
	assert_int_equal(pop3_stat(s, &count, NULL, &err), 0);
	assert_int_equal(count, 1);
	assert_true(fake_elapsed(&f, t0) > 3.5);
	assert_int_equal(f.arms, 2);
	assert_int_equal(f.expiries, 0);
	session_end(&s, &f);
}

/* Every listing (and CAPA) line is a wait of its own. */
static void
test_time_listing_lines(void **state)
{
	struct pop3_listing *l;
	struct pf_error err;
	struct timespec t0;
	struct fake f;
	struct pop3 *s;

	(void)state;
	/* Four lines and the ".", each whole 1.5 s after the one before:
	 * 7.5 s for the listing, every line in time. */
	script(&f, NULL);
	fake_add(&f, "UIDL", "+OK\r\n1 aaaa\r\n2 bbbb\r\n3 cccc\r\n4 dddd\r\n"
	    ".\r\n");
	trickle(&f, 2, step_offset(&f, 1) + 5, 8, 1500);
	s = started(&f, NULL);
	t0 = f.now;
	assert_int_equal(pop3_list_uidls(s, &l, &err), 0);
	assert_int_equal(l->count, 4);
	assert_string_equal(uidl_of(&l->msgs[3]), "dddd");
	assert_true(fake_elapsed(&f, t0) == 7.5);
	assert_int_equal(f.arms, 5);
	pop3_listing_free(&l);
	session_end(&s, &f);

	/* The same lines one byte every 1.5 s: the first never whole. */
	script(&f, NULL);
	fake_add(&f, "UIDL", "+OK\r\n1 aaaa\r\n2 bbbb\r\n.\r\n");
	trickle(&f, 2, step_offset(&f, 1) + 5, 1, 1500);
	s = started(&f, NULL);
	t0 = f.now;
	assert_int_equal(pop3_list_uidls(s, &l, &err), -1);
	assert_null(l);
	assert_int_equal(err.category, PF_FAIL_TEMP);
	assert_non_null(strstr(err.what, "timed out after 2 s"));
	assert_true(fake_elapsed(&f, t0) == 2.0);
	session_end(&s, &f);

	/* CAPA lines too. */
	script(&f, "+OK\r\nTOP\r\nUIDL\r\n.\r\n");
	trickle(&f, 2, step_offset(&f, 1) + 5, 1, 1500);
	s = session(&f);
	assert_int_equal(pop3_greeting(s, &err), 0);
	t0 = f.now;
	assert_int_equal(pop3_capa(s, NULL, &err), -1);
	assert_int_equal(err.category, PF_FAIL_TEMP);
	assert_true(fake_elapsed(&f, t0) == 2.0);
	session_end(&s, &f);
}

/* A message of `len` octets: lines of 63 'x' and LF. */
static char *
xmessage(size_t len)
{
	char *m = xmalloc(len);
	size_t i;

	for (i = 0; i < len; i++)
		m[i] = i % 64 == 63 ? '\n' : 'x';
	m[len - 1] = '\n';
	return m;
}

/*
 * Message data is not lines: it must come at NET_STALL_RATE_KIB (1 KiB/s)
 * or more over each timeout.  Slower is a stall (75) naming the message;
 * a message that takes many timeouts at a good rate is fine, and the
 * status line after it has a wait of its own.
 */
static void
test_time_message_data(void **state)
{
	static const struct pop3_msg m[2] = { { .number = 1, .size = 4 },
	    { .number = 2, .size = 12288 } };
	const struct pop3_msg *msgs[2] = { &m[0], &m[1] };
	const struct pop3_msg *one[1] = { &m[1] };
	static const struct {
		size_t		 bytes;		/* per read ... */
		unsigned	 gap_ms;	/* ... this far apart */
		bool		 stall;
		double		 elapsed;	/* fake seconds */
	} cases[] = {
		{ 1, 1500, true, 2.0 },		/* the trickle */
		{ 1024, 1500, true, 2.0 },	/* 0.67 KiB/s */
		/* (these two include the read of NOOP's reply, which
		 * trickles as well) */
		{ 3072, 1500, false, 9.0 },	/* 2 KiB/s: 5 data reads */
		{ 65536, 1900, false, 3.8 },	/* late, then all at once */
	};
	struct pf_error err;
	struct timespec t0;
	struct coll c;
	struct pop3_sink sink;
	struct fake f;
	struct pop3 *s;
	char *big = xmessage(12288);
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(&c, 0, sizeof(c));
		sink = sink_for(&c);
		script(&f, NULL);
		add_retr(&f, 1, "one\n", 4);
		add_retr(&f, 2, big, 12288);
		fake_add(&f, "NOOP", "+OK\r\n");
		/* RETR 2's data, after its status line. */
		trickle(&f, 2, step_offset(&f, 2) + 13, cases[i].bytes,
		    cases[i].gap_ms);
		s = started(&f, NULL);
		t0 = f.now;
		pf_error_clear(&err);
		if (cases[i].stall) {
			assert_int_equal(pop3_retr_each(s, msgs, 2, &sink,
			    &err), -1);
			assert_int_equal(err.category, PF_FAIL_TEMP);
			assert_string_equal(err.what, "read from fake: stalled: "
			    "less than 1 KiB/s for 2 s in message 2");
			assert_string_equal(c.ev, "B1 E1 B2 ");
		} else {
			assert_int_equal(pop3_retr_each(s, msgs, 2, &sink,
			    &err), 0);
			assert_string_equal(c.ev, "B1 E1 B2 E2 ");
			assert_memory_equal(c.got[1], big, 12288);
		}
		if (fake_elapsed(&f, t0) != cases[i].elapsed)
			fail_msg("case %zu: %.3f s", i, fake_elapsed(&f, t0));
		session_end(&s, &f);
		coll_free(&c);
	}

	/* TOP's data the same. */
	memset(&c, 0, sizeof(c));
	sink = sink_for(&c);
	script(&f, NULL);
	fake_add(&f, "TOP 2 0", "+OK\r\nFrom: a\r\nSubject: b\r\n\r\n.\r\n");
	trickle(&f, 2, step_offset(&f, 1) + 5, 1, 1500);
	s = started(&f, NULL);
	assert_int_equal(pop3_top(s, one[0], 0, &sink, &err), -1);
	assert_int_equal(err.category, PF_FAIL_TEMP);
	assert_string_equal(err.what, "read from fake: stalled: less than 1 "
	    "KiB/s for 2 s in message 2");
	assert_int_equal(c.ends, 0);
	session_end(&s, &f);
	coll_free(&c);
	free(big);
}

/* ---- DELE ---- */

static void
test_dele(void **state)
{
	unsigned nums[2 * POP3_PIPELINE_WINDOW + 22];
	const size_t n = sizeof(nums) / sizeof(nums[0]);
	struct pf_error err;
	struct fake f;
	struct pop3 *s;
	char cmd[32];
	size_t i;

	(void)state;
	script(&f, "+OK\r\nPIPELINING\r\n.\r\n");
	for (i = 0; i < n; i++) {
		nums[i] = (unsigned)(i * 2 + 1);
		snprintf(cmd, sizeof(cmd), "DELE %u", nums[i]);
		fake_add(&f, cmd, "+OK message deleted\r\n");
	}
	fake_add(&f, "QUIT", "+OK\r\n");
	f.max_chunk = 50;
	s = started(&f, "");
	assert_int_equal(pop3_dele_each(s, nums, n, &err), 0);
	assert_int_equal(f.max_per_write, POP3_PIPELINE_WINDOW);
	assert_true(f.max_outstanding <= POP3_PIPELINE_WINDOW);
	assert_int_equal(pop3_quit(s, POP3_QUIT_COMMIT, &err), 0);
	session_end(&s, &f);

	/* Lock-step, and -ERR on one DELE is an error. */
	script(&f, NULL);
	fake_add(&f, "DELE 1", "+OK\r\n");
	fake_add(&f, "DELE 2", "-ERR message 2 already deleted\r\n");
	s = started(&f, NULL);
	nums[0] = 1;
	nums[1] = 2;
	nums[2] = 3;
	assert_int_equal(pop3_dele_each(s, nums, 3, &err), -1);
	assert_int_equal(err.category, PF_FAIL_PROTO);
	assert_string_equal(err.what, "DELE 2 failed");
	assert_int_equal(f.max_per_write, 1);
	session_end(&s, &f);
}

/* ---- authentication ---- */

static struct pop3_auth_params
params(enum conf_auth mode, const char *user, const char *secret, bool tls,
    bool allow)
{
	return (struct pop3_auth_params){ mode, user, secret, tls, allow, NULL, 0 };
}

static char *
b64(const char *s)
{
	return crypto_base64_encode(s, strlen(s));
}

/* Start the scripted session (CAPA as in started()), authenticate with p,
 * expect success and, unless NULL, mechanism `mech`; end the session. */
static void
auth_ok(struct fake *f, const char *capa, const struct pop3_auth_params *p,
    const char *mech)
{
	struct pf_error err;
	struct pop3 *s = started(f, capa);

	assert_int_equal(pop3_auth(s, p, &err), 0);
	if (mech != NULL)
		assert_string_equal(pop3_auth_mechanism(s), mech);
	session_end(&s, f);
}

/* The same, expecting failure of category `cat`. */
static void
auth_fails(struct fake *f, const char *capa,
    const struct pop3_auth_params *p, enum pf_fail cat)
{
	struct pf_error err;
	struct pop3 *s = started(f, capa);

	assert_int_equal(pop3_auth(s, p, &err), -1);
	assert_int_equal(err.category, cat);
	session_end(&s, f);
}

/*
 * USER/PASS with PIPELINING: one write; a rejected USER still has both
 * replies read, so the session stays in step.  Nothing goes after PASS
 * before its reply: Courier's login process loses what was sent after it
 * (it execs the mail session), so UIDL would never be answered.
 */
static void
test_user_pass_pipelined(void **state)
{
	static const char *capa = "+OK\r\nUSER\r\nPIPELINING\r\n.\r\n";
	struct pop3_auth_params p = params(CONF_AUTH_USER, "alice", "pw", true,
	    false);
	struct pop3_listing *l;
	struct pf_error err;
	struct fake f;
	struct pop3 *s;
	size_t w;

	(void)state;
	script(&f, capa);
	fake_add(&f, "USER alice", "+OK\r\n");
	fake_add(&f, "PASS pw", "+OK logged in\r\n");
	fake_add(&f, "UIDL", "+OK\r\n1 a\r\n2 b\r\n.\r\n");
	fake_add(&f, "LIST", "+OK\r\n1 10\r\n2 20\r\n.\r\n");
	s = started(&f, "");
	w = f.writes;
	assert_int_equal(pop3_auth(s, &p, &err), 0);
	assert_int_equal(f.writes, w + 1);
	assert_true(pop3_is_synchronised(s));
	assert_true(strlen(sent(&f)) >= strlen("PASS pw\r\n"));
	assert_string_equal(sent(&f) + strlen(sent(&f)) - strlen("PASS pw\r\n"),
	    "PASS pw\r\n");
	assert_int_equal(pop3_list_messages(s, &l, &err), 0);
	assert_int_equal(f.writes, w + 2);
	assert_int_equal(l->count, 2);
	assert_int_equal(l->msgs[1].size, 20);
	pop3_listing_free(&l);
	session_end(&s, &f);

	script(&f, capa);
	fake_add(&f, "USER alice", "-ERR [AUTH] no such user\r\n");
	fake_add(&f, "PASS pw", "-ERR not now\r\n");
	fake_add(&f, "QUIT", "+OK\r\n");
	s = started(&f, "");
	assert_int_equal(pop3_auth(s, &p, &err), -1);
	assert_int_equal(err.category, PF_FAIL_AUTH);
	assert_non_null(strstr(err.what, "user name rejected"));
	assert_true(pop3_is_synchronised(s));
	assert_int_equal(pop3_quit(s, POP3_QUIT_COMMIT, &err), 0);
	session_end(&s, &f);

	script(&f, capa);
	fake_add(&f, "USER alice", "+OK\r\n");
	fake_add(&f, "PASS pw", "-ERR [AUTH] wrong password\r\n");
	s = started(&f, "");
	assert_int_equal(pop3_auth(s, &p, &err), -1);
	assert_int_equal(err.category, PF_FAIL_AUTH);
	assert_true(pop3_is_synchronised(s));
	session_end(&s, &f);
}

/*
 * [IN-USE] at login (RFC 2449 §8.1.1): the credentials were fine, another
 * client holds the maildrop.  Whatever the mechanism, the error says so
 * (75), never "authentication failed"; other codes keep their words.
 */
static void
test_auth_in_use(void **state)
{
	static const char in_use[] =
	    "mailbox in use by another client (the server said [IN-USE])";
	struct pop3_auth_params p = params(CONF_AUTH_AUTO, "alice", "secret",
	    true, false);
	struct pf_error err;
	struct fake f;
	struct pop3 *s;
	size_t i;

	(void)state;
	for (i = 0; i < 6; i++) {
		switch (i) {
		case 0:		/* USER/PASS, lock-step */
			script(&f, "+OK\r\nUSER\r\n.\r\n");
			fake_add(&f, "USER alice", "+OK\r\n");
			fake_add(&f, "PASS secret",
			    "-ERR [IN-USE] Mailbox is locked\r\n");
			break;
		case 1:		/* USER/PASS, pipelined */
			script(&f, "+OK\r\nUSER\r\nPIPELINING\r\n.\r\n");
			fake_add(&f, "USER alice", "+OK\r\n");
			fake_add(&f, "PASS secret",
			    "-ERR [IN-USE] Mailbox is locked\r\n");
			break;
		case 2:		/* AUTH PLAIN with an initial response */
			script(&f, "+OK\r\nSASL PLAIN\r\n.\r\n");
			fake_add(&f, "AUTH PLAIN AGFsaWNlAHNlY3JldA==",
			    "-ERR [IN-USE] Mailbox is locked\r\n");
			break;
		case 3:		/* a hierarchical code, any case */
			script(&f, "+OK\r\nSASL PLAIN\r\n.\r\n");
			fake_add(&f, "AUTH PLAIN AGFsaWNlAHNlY3JldA==",
			    "-ERR [in-use/dovecot] Mailbox is locked\r\n");
			break;
		case 4:		/* the USER half already */
			script(&f, "+OK\r\nUSER\r\n.\r\n");
			fake_add(&f, "USER alice",
			    "-ERR [IN-USE] Mailbox is locked\r\n");
			break;
		case 5:		/* APOP */
			fake_init(&f);
			fake_add(&f, NULL, "+OK ready <1.2@host>\r\n");
			fake_add(&f, "CAPA", "-ERR\r\n");
			fake_add(&f, "*",	/* APOP alice <digest> */
			    "-ERR [IN-USE] Mailbox is locked\r\n");
			p.mode = CONF_AUTH_APOP;
			break;
		}
		s = started(&f, "");
		pf_error_clear(&err);
		assert_int_equal(pop3_auth(s, &p, &err), -1);
		assert_int_equal(err.category, PF_FAIL_TEMP);
		assert_string_equal(err.what, in_use);
		assert_non_null(strstr(err.server, "Mailbox is locked"));
		assert_null(pop3_auth_mechanism(s));
		session_end(&s, &f);
	}

	/* Other temporary codes are not a lock: their own words. */
	p.mode = CONF_AUTH_AUTO;
	script(&f, "+OK\r\nSASL PLAIN\r\n.\r\n");
	fake_add(&f, "AUTH PLAIN AGFsaWNlAHNlY3JldA==",
	    "-ERR [SYS/TEMP] backend down\r\n");
	s = started(&f, "");
	assert_int_equal(pop3_auth(s, &p, &err), -1);
	assert_int_equal(err.category, PF_FAIL_TEMP);
	assert_string_equal(err.what, "authentication failed (PLAIN)");
	session_end(&s, &f);
}

/* Keep mode's QUIT: sent (once) and its reply never read. */
static void
test_quit_nowait(void **state)
{
	struct pf_error err;
	struct fake f;
	struct pop3 *s;
	size_t w;

	(void)state;
	script(&f, NULL);
	fake_add(&f, "QUIT", "+OK bye\r\n");
	s = started(&f, NULL);
	w = f.writes;
	assert_int_equal(pop3_quit(s, POP3_QUIT_NOWAIT, &err), 0);
	assert_int_equal(f.writes, w + 1);
	assert_string_equal(sent(&f), "QUIT\r\n");
	assert_int_equal(f.replies_read, 1);	/* the greeting only */
	/* Later calls send nothing and read nothing. */
	assert_int_equal(pop3_quit(s, POP3_QUIT_COMMIT, &err), 0);
	assert_int_equal(pop3_quit(s, POP3_QUIT_NOWAIT, &err), 0);
	assert_int_equal(f.writes, w + 1);
	assert_int_equal(f.replies_read, 1);
	session_end(&s, &f);
}

static void
test_auth_user_pass(void **state)
{
	struct pop3_auth_params p = params(CONF_AUTH_AUTO, "alice", "pw 1",
	    true, false);
	struct pf_error err;
	struct fake f;
	struct pop3 *s;

	(void)state;
	script(&f, "+OK\r\nUSER\r\n.\r\n");
	fake_add(&f, "USER alice", "+OK\r\n");
	fake_add(&f, "PASS pw 1", "+OK logged in\r\n");
	auth_ok(&f, "", &p, "USER");

	/* Rejections and their categories. */
	{
		static const struct {
			const char	*reply;
			enum pf_fail	 cat;
		} cases[] = {
			{ "-ERR invalid password\r\n",	PF_FAIL_AUTH },
			{ "-ERR [AUTH] nope\r\n",	PF_FAIL_AUTH },
			{ "-ERR [IN-USE] mailbox locked\r\n", PF_FAIL_TEMP },
			{ "-ERR [SYS/TEMP] later\r\n",	PF_FAIL_TEMP },
			{ "-ERR [LOGIN-DELAY] wait\r\n", PF_FAIL_TEMP },
			{ "what?\r\n",			PF_FAIL_PROTO },
		};
		size_t i;

		for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
			script(&f, NULL);
			fake_add(&f, "USER alice", "+OK\r\n");
			fake_add(&f, "PASS pw 1", cases[i].reply);
			s = started(&f, NULL);
			assert_int_equal(pop3_auth(s, &p, &err), -1);
			assert_int_equal(err.category, cases[i].cat);
			assert_null(pop3_auth_mechanism(s));
			session_end(&s, &f);
		}
	}
}

static void
test_auth_plaintext_refused(void **state)
{
	struct pop3_auth_params p;
	struct pf_error err;
	struct fake f;
	struct pop3 *s;

	(void)state;
	/* Explicit user without TLS: 78, nothing sent. */
	p = params(CONF_AUTH_USER, "alice", "pw", false, false);
	script(&f, "+OK\r\nUSER\r\nSASL PLAIN\r\n.\r\n");
	s = started(&f, "");
	assert_int_equal(pop3_auth(s, &p, &err), -1);
	assert_int_equal(err.category, PF_FAIL_CONFIG);
	p.mode = CONF_AUTH_PLAIN;
	assert_int_equal(pop3_auth(s, &p, &err), -1);
	assert_int_equal(err.category, PF_FAIL_CONFIG);
	/* auto without TLS, without APOP or SCRAM: no usable mechanism. */
	p.mode = CONF_AUTH_AUTO;
	assert_int_equal(pop3_auth(s, &p, &err), -1);
	assert_int_equal(err.category, PF_FAIL_AUTH);
	assert_string_equal(sent(&f), "CAPA\r\n");
	/* CR/LF in a secret. */
	p = params(CONF_AUTH_AUTO, "alice", "pw\r\nDELE 1", true, false);
	assert_int_equal(pop3_auth(s, &p, &err), -1);
	assert_int_equal(err.category, PF_FAIL_CONFIG);
	assert_string_equal(sent(&f), "CAPA\r\n");
	session_end(&s, &f);

	/* allow_plaintext lets it through. */
	p = params(CONF_AUTH_AUTO, "alice", "pw", false, true);
	script(&f, "+OK\r\nUSER\r\n.\r\n");
	fake_add(&f, "USER alice", "+OK\r\n");
	fake_add(&f, "PASS pw", "+OK\r\n");
	auth_ok(&f, "", &p, NULL);
}

static void
test_auth_apop(void **state)
{
	struct pop3_auth_params p = params(CONF_AUTH_AUTO, "mrose", "tanstaaf",
	    false, false);
	struct fake f;

	(void)state;
	/* RFC 1939 §7's example, chosen by auto over plain text. */
	fake_init(&f);
	fake_add(&f, NULL, "+OK POP3 server ready "
	    "<1896.697170952@dbc.mtview.ca.us>\r\n");
	fake_add(&f, "CAPA", "-ERR\r\n");
	fake_add(&f, "APOP mrose c4c9334bac560ecc979e58001b3e22fb",
	    "+OK maildrop has 1 message (369 octets)\r\n");
	auth_ok(&f, "", &p, "APOP");

	/* Explicit apop without a timestamp. */
	p.mode = CONF_AUTH_APOP;
	script(&f, NULL);
	auth_fails(&f, NULL, &p, PF_FAIL_AUTH);
}

static void
test_auth_plain(void **state)
{
	struct pop3_auth_params p = params(CONF_AUTH_AUTO, "alice", "secret",
	    true, false);
	struct pf_error err;
	struct fake f;
	struct pop3 *s;

	(void)state;
	/* Initial-response form. */
	script(&f, "+OK\r\nSASL PLAIN\r\nUSER\r\n.\r\n");
	fake_add(&f, "AUTH PLAIN AGFsaWNlAHNlY3JldA==", "+OK\r\n");
	auth_ok(&f, "", &p, "PLAIN");

	/* No CAPA: explicit plain, two-step form. */
	p.mode = CONF_AUTH_PLAIN;
	script(&f, "-ERR\r\n");
	fake_add(&f, "AUTH PLAIN", "+ \r\n");
	fake_add(&f, "AGFsaWNlAHNlY3JldA==", "+OK\r\n");
	auth_ok(&f, "", &p, NULL);

	/* Rejected. */
	script(&f, "+OK\r\nSASL PLAIN\r\n.\r\n");
	fake_add(&f, "AUTH PLAIN AGFsaWNlAHNlY3JldA==",
	    "-ERR [AUTH] Authentication failed\r\n");
	s = started(&f, "");
	assert_int_equal(pop3_auth(s, &p, &err), -1);
	assert_int_equal(err.category, PF_FAIL_AUTH);
	assert_string_equal(err.server, "-ERR [AUTH] Authentication failed");
	assert_true(pop3_is_synchronised(s));
	session_end(&s, &f);

	/* Explicit plain, server offers only others. */
	script(&f, "+OK\r\nSASL SCRAM-SHA-256\r\n.\r\n");
	s = started(&f, "");
	assert_int_equal(pop3_auth(s, &p, &err), -1);
	assert_int_equal(err.category, PF_FAIL_AUTH);
	assert_string_equal(sent(&f), "CAPA\r\n");
	session_end(&s, &f);
}

#define R_CNONCE	"rOprNGfwEbeRWgbNEkqO"
#define R_SFIRST	"r=" R_CNONCE "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0," \
			"s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
#define R_CFINAL	"c=biws,r=" R_CNONCE "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0," \
			"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
#define R_SFINAL	"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="

/*
 * Add the RFC 7677 exchange up to the server-final challenge `sfinal`
 * (NULL: the client-final is answered with a bare "+OK" instead), and the
 * reply to the client's empty line after it unless `after_empty` is NULL.
 */
static void
add_scram(struct fake *f, const char *sfinal, const char *after_empty)
{
	char *a = b64("n,,n=user,r=" R_CNONCE), *b = b64(R_SFIRST);
	char *c = b64(R_CFINAL), *cmd, *rep, *d;

	cmd = xasprintf("AUTH SCRAM-SHA-256 %s", a);
	rep = xasprintf("+ %s\r\n", b);
	fake_add(f, cmd, rep);
	free(cmd);
	free(rep);
	if (sfinal != NULL) {
		d = b64(sfinal);
		rep = xasprintf("+ %s\r\n", d);
		fake_add(f, c, rep);
		free(rep);
		free(d);
	} else
		fake_add(f, c, "+OK\r\n");
	if (after_empty != NULL)
		fake_add(f, "", after_empty);
	free(a);
	free(b);
	free(c);
}

static void
test_auth_scram(void **state)
{
	struct pop3_auth_params p = params(CONF_AUTH_AUTO, "user", "pencil",
	    false, false);
	struct pf_error err;
	struct fake f;
	struct pop3 *s;

	(void)state;
	sasl_set_test_nonce(R_CNONCE);
	/* RFC 7677 §3, over plain text too (SCRAM reveals nothing). */
	script(&f, "+OK\r\nSASL SCRAM-SHA-256 PLAIN\r\nUSER\r\n.\r\n");
	add_scram(&f, R_SFINAL, "+OK logged in\r\n");
	f.max_chunk = 3;
	auth_ok(&f, "", &p, "SCRAM-SHA-256");

	/* A forged server signature: cancelled with "*", 77, no fallback. */
	p.tls_active = true;
	script(&f, "+OK\r\nSASL SCRAM-SHA-256 PLAIN\r\n.\r\n");
	add_scram(&f, "v=7rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=", NULL);
	fake_add(&f, "*", "-ERR cancelled\r\n");
	s = started(&f, "");
	assert_int_equal(pop3_auth(s, &p, &err), -1);
	assert_int_equal(err.category, PF_FAIL_AUTH);
	assert_string_equal(err.what, "server signature mismatch");
	assert_true(pop3_is_synchronised(s));
	session_end(&s, &f);

	/* +OK without the server-final: the server proved nothing. */
	script(&f, "+OK\r\nSASL SCRAM-SHA-256\r\n.\r\n");
	add_scram(&f, NULL, NULL);
	auth_fails(&f, "", &p, PF_FAIL_AUTH);
}

/* popfetch.conf(5), auth: inside TLS a rejected SCRAM gets one more try; outside, not. */
static void
test_auth_scram_fallback(void **state)
{
	struct pop3_auth_params p = params(CONF_AUTH_AUTO, "user", "pencil",
	    true, false);
	struct fake f;
	char *a = b64("n,,n=user,r=" R_CNONCE), *cmd, *plain;

	(void)state;
	sasl_set_test_nonce(R_CNONCE);
	cmd = xasprintf("AUTH SCRAM-SHA-256 %s", a);
	plain = sasl_plain_blob("user", "pencil");

	script(&f, "+OK\r\nSASL SCRAM-SHA-256 PLAIN\r\n.\r\n");
	fake_add(&f, cmd, "-ERR [AUTH] no SCRAM secret stored\r\n");
	{
		char *pl = xasprintf("AUTH PLAIN %s", plain);

		fake_add(&f, pl, "+OK\r\n");
		free(pl);
	}
	auth_ok(&f, "", &p, "PLAIN");

	/* The second attempt failing too is final. */
	script(&f, "+OK\r\nSASL SCRAM-SHA-256\r\nUSER\r\n.\r\n");
	fake_add(&f, cmd, "-ERR no\r\n");
	fake_add(&f, "USER user", "+OK\r\n");
	fake_add(&f, "PASS pencil", "-ERR bad\r\n");
	auth_fails(&f, "", &p, PF_FAIL_AUTH);

	/* Outside TLS (APOP would be next): final. */
	p.tls_active = false;
	fake_init(&f);
	fake_add(&f, NULL, "+OK <1.2@host>\r\n");
	fake_add(&f, "CAPA", "+OK\r\nSASL SCRAM-SHA-256\r\n.\r\n");
	fake_add(&f, cmd, "-ERR no\r\n");
	auth_fails(&f, "", &p, PF_FAIL_AUTH);

	/* [IN-USE] to SCRAM inside TLS: temporary, no second attempt. */
	p.tls_active = true;
	script(&f, "+OK\r\nSASL SCRAM-SHA-256 PLAIN\r\n.\r\n");
	fake_add(&f, cmd, "-ERR [IN-USE] locked\r\n");
	auth_fails(&f, "", &p, PF_FAIL_TEMP);

	secret_free(&plain);
	free(cmd);
	free(a);
}

static void
test_auth_xoauth2(void **state)
{
	struct pop3_auth_params p;
	struct pf_error err;
	struct fake f;
	struct pop3 *s;
	char token[2048], *blob, *cmd, *json;

	(void)state;
	/* Short token: initial response. */
	p = params(CONF_AUTH_XOAUTH2, "u@example.com", "ya29.short", true,
	    false);
	blob = sasl_xoauth2_blob("u@example.com", "ya29.short");
	cmd = xasprintf("AUTH XOAUTH2 %s", blob);
	script(&f, "+OK\r\nSASL XOAUTH2 PLAIN\r\n.\r\n");
	fake_add(&f, cmd, "+OK\r\n");
	auth_ok(&f, "", &p, "XOAUTH2");
	free(cmd);
	secret_free(&blob);

	/* A long token (Microsoft): two-step, then an error challenge
	 * answered with an empty line, then -ERR: 77. */
	memset(token, 'T', sizeof(token) - 1);
	token[sizeof(token) - 1] = '\0';
	p.secret = token;
	blob = sasl_xoauth2_blob("u@example.com", token);
	json = b64("{\"status\":\"401\",\"schemes\":\"bearer\"}");
	cmd = xasprintf("+ %s\r\n", json);
	script(&f, "+OK\r\nSASL XOAUTH2\r\n.\r\n");
	fake_add(&f, "AUTH XOAUTH2", "+ \r\n");
	fake_add(&f, blob, cmd);
	fake_add(&f, "", "-ERR Authentication failure\r\n");
	s = started(&f, "");
	assert_int_equal(pop3_auth(s, &p, &err), -1);
	assert_int_equal(err.category, PF_FAIL_AUTH);
	assert_true(pop3_is_synchronised(s));
	session_end(&s, &f);
	free(cmd);
	free(json);

	/* Same, accepted ("+" without a space as the empty challenge). */
	script(&f, "+OK\r\nSASL XOAUTH2\r\n.\r\n");
	fake_add(&f, "AUTH XOAUTH2", "+\r\n");
	fake_add(&f, blob, "+OK\r\n");
	auth_ok(&f, "", &p, NULL);
	secret_free(&blob);

	/* Not offered. */
	script(&f, "+OK\r\nSASL PLAIN\r\n.\r\n");
	auth_fails(&f, "", &p, PF_FAIL_AUTH);
}

/* ---- secrets in the trace ---- */

static void
test_trace_mask(void **state)
{
	static const struct {
		const char	*line;
		bool		 sasl;
		const char	*masked;
	} cases[] = {
		{ "PASS secret", false, "PASS ****" },
		{ "pass secret", false, "pass ****" },
		{ "PASS with spaces in it", false, "PASS ****" },
		{ "PASS", false, "PASS" },
		{ "AUTH PLAIN AGFsaWNlAHNlY3JldA==", false, "AUTH PLAIN ****" },
		{ "AUTH PLAIN", false, "AUTH PLAIN" },
		{ "AUTH XOAUTH2 dXNlcj1", false, "AUTH XOAUTH2 ****" },
		{ "APOP mrose c4c9334bac560ecc979e58001b3e22fb", false,
		  "APOP mrose ****" },
		{ "USER alice", false, "USER alice" },
		{ "RETR 17", false, "RETR 17" },
		{ "PASSWORD x", false, "PASSWORD x" },
		{ "AGFsaWNlAHNlY3JldA==", true, "****" },
		{ "", true, "****" },
		{ "*", true, "****" },
	};
	char out[128];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_string_equal(pop3_trace_mask(cases[i].line,
		    cases[i].sasl, out, sizeof(out)), cases[i].masked);
	/* Truncation never reveals the hidden part. */
	assert_string_equal(pop3_trace_mask("PASS secret", false, out, 6),
	    "PASS ");
}

/* Run logins with -vv and stderr captured: no secret may appear. */
static void
test_trace_capture(void **state)
{
	static const char pw[] = "Sup3r-S3cret!";
	char *blob, *blob2, *cmd, *buf, *final;
	struct pop3_auth_params p;
	struct capture cap;
	struct fake f;

	(void)state;
	sasl_set_test_nonce(R_CNONCE);
	capture_begin(&cap);

	p = params(CONF_AUTH_USER, "alice", pw, true, false);
	script(&f, NULL);
	fake_add(&f, "USER alice", "+OK\r\n");
	cmd = xasprintf("PASS %s", pw);
	fake_add(&f, cmd, "+OK\r\n");
	free(cmd);
	auth_ok(&f, NULL, &p, NULL);

	p.mode = CONF_AUTH_PLAIN;
	blob = sasl_plain_blob("alice", pw);
	cmd = xasprintf("AUTH PLAIN %s", blob);
	script(&f, "+OK\r\nSASL PLAIN\r\n.\r\n");
	fake_add(&f, cmd, "+OK\r\n");
	free(cmd);
	auth_ok(&f, "", &p, NULL);

	/* Two-step XOAUTH2 with a long token: the continuation line. */
	p.mode = CONF_AUTH_XOAUTH2;
	{
		char tok[400];

		memset(tok, 'k', sizeof(tok) - 1);
		tok[sizeof(tok) - 1] = '\0';
		memcpy(tok, pw, strlen(pw));
		p.secret = tok;
		blob2 = sasl_xoauth2_blob("alice", tok);
		script(&f, "+OK\r\nSASL XOAUTH2\r\n.\r\n");
		fake_add(&f, "AUTH XOAUTH2", "+ \r\n");
		fake_add(&f, blob2, "+OK\r\n");
		auth_ok(&f, "", &p, NULL);
	}

	/* SCRAM with the secret as password: the proof line is masked. */
	p = params(CONF_AUTH_SCRAM_SHA_256, "user", "pencil", true, false);
	script(&f, "+OK\r\nSASL SCRAM-SHA-256\r\n.\r\n");
	add_scram(&f, R_SFINAL, "+OK\r\n");
	auth_ok(&f, "", &p, NULL);

	buf = capture_end(&cap);
	/* The negative space: neither the password nor any encoding of it. */
	assert_null(strstr(buf, pw));
	assert_null(strstr(buf, blob));
	assert_null(strstr(buf, blob2));
	assert_null(strstr(buf, "pencil"));
	final = b64(R_CFINAL);
	assert_null(strstr(buf, final));
	/* What should be there. */
	assert_non_null(strstr(buf, "acct: > USER alice\n"));
	assert_non_null(strstr(buf, "acct: > PASS ****\n"));
	assert_non_null(strstr(buf, "acct: > AUTH PLAIN ****\n"));
	assert_non_null(strstr(buf, "acct: > AUTH XOAUTH2\n"));
	assert_non_null(strstr(buf, "acct: > ****\n"));
	assert_non_null(strstr(buf, "acct: > AUTH SCRAM-SHA-256 ****\n"));
	assert_non_null(strstr(buf, "acct: < +OK\n"));
	free(final);
	free(buf);
	secret_free(&blob);
	secret_free(&blob2);
}

/* Message data is traced once per message, not line by line. */
static void
test_trace_message_data(void **state)
{
	static const struct pop3_msg m1 = { .number = 1, .size = 30 };
	const struct pop3_msg *msgs[] = { &m1 };
	struct pf_error err;
	struct coll c = { 0 };
	struct pop3_sink sink = sink_for(&c);
	struct capture cap;
	struct fake f;
	struct pop3 *s;
	char *buf;

	(void)state;
	capture_begin(&cap);
	script(&f, NULL);
	add_retr(&f, 1, "Subject: private\n\nbody text\n", 28);
	fake_add(&f, "NOOP", "+OK\r\n");
	s = started(&f, NULL);
	assert_int_equal(pop3_retr_each(s, msgs, 1, &sink, &err), 0);
	session_end(&s, &f);
	buf = capture_end(&cap);
	assert_null(strstr(buf, "private"));
	assert_null(strstr(buf, "body text"));
	assert_non_null(strstr(buf, "acct: > RETR 1\n"));
	assert_non_null(strstr(buf, "acct: < [34 octets of message data]\n"));
	free(buf);
	coll_free(&c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_greeting),
		cmocka_unit_test(test_greeting_too_long),
		cmocka_unit_test(test_capa),
		cmocka_unit_test(test_capa_endless),
		cmocka_unit_test(test_stls),
		cmocka_unit_test(test_unsolicited),
		cmocka_unit_test(test_reply_categories),
		cmocka_unit_test(test_stat),
		cmocka_unit_test(test_quit),
		cmocka_unit_test(test_listing),
		cmocka_unit_test(test_uidl_inline),
		cmocka_unit_test(test_listing_no_uidl),
		cmocka_unit_test(test_listing_pipelined),
		cmocka_unit_test(test_listing_uidls_then_sizes),
		cmocka_unit_test(test_listing_errors),
		cmocka_unit_test(test_listing_uidl_err),
		cmocka_unit_test(test_listing_uidl_total),
		cmocka_unit_test(test_listing_stat_bound),
		cmocka_unit_test(test_retr_unstuffing),
		cmocka_unit_test(test_retr_raw_forms),
		cmocka_unit_test(test_retr_split_everywhere),
		cmocka_unit_test(test_retr_eof),
		cmocka_unit_test(test_retr_runaway),
		cmocka_unit_test(test_retr_err_and_sink_error),
		cmocka_unit_test(test_retr_unstuffed_dot),
		cmocka_unit_test(test_retr_refused),
		cmocka_unit_test(test_retr_pipelined),
		cmocka_unit_test(test_retr_lockstep),
		cmocka_unit_test(test_retr_lockstep_order),
		cmocka_unit_test(test_retr_listed),
		cmocka_unit_test(test_retr_then_quit),
		cmocka_unit_test(test_greeting_capa),
		cmocka_unit_test(test_user_pass_pipelined),
		cmocka_unit_test(test_auth_in_use),
		cmocka_unit_test(test_quit_nowait),
		cmocka_unit_test(test_top),
		cmocka_unit_test(test_time_status_line),
		cmocka_unit_test(test_time_listing_lines),
		cmocka_unit_test(test_time_message_data),
		cmocka_unit_test(test_dele),
		cmocka_unit_test(test_auth_user_pass),
		cmocka_unit_test(test_auth_plaintext_refused),
		cmocka_unit_test(test_auth_apop),
		cmocka_unit_test(test_auth_plain),
		cmocka_unit_test(test_auth_scram),
		cmocka_unit_test(test_auth_scram_fallback),
		cmocka_unit_test(test_auth_xoauth2),
		cmocka_unit_test(test_trace_mask),
		cmocka_unit_test(test_trace_capture),
		cmocka_unit_test(test_trace_message_data),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
