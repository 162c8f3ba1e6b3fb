/*
 * fuzz_retr.c - the multi-line reader: RETR/TOP replies with dot-unstuffing
 * and CRLF handling (fetcher/pop3.c stream_body and its dot filter).
 *
 * Input: byte M (mode: M % 4 == 0 RETR of one message, lock-step; 1 or 3
 * PIPELINING advertised and RETR of 1 + (M >> 2) % 4 messages, all in one
 * write; 2 TOP of one message), then the chunk schedule of fuzz_util.h, then
 * D.  The fake server answers the command(s) with "+OK\r\n" followed by D,
 * so D holds the first body and, when several messages are asked for, the
 * later status lines and bodies.
 *
 * Checks:
 *  - a model: status lines read as the linebuf does, bodies split at LF,
 *    one CR before the LF dropped, the "." line ends the message, one
 *    leading dot removed otherwise; the sink must get exactly the model's
 *    bytes, begin() only after a +OK, end() only after the "." line and
 *    with the number of octets passed to data(), and the model's result;
 *  - the sink's own invariants (data() only between begin() and end(),
 *    never empty, never more octets than came off the wire; CRLF in the
 *    output only where the wire had CR CR LF);
 *  - differential: the same input served in one chunk gives the same
 *    output, events and error.
 */
#include "config.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "fuzz_util.h"
#include "log.h"
#include "params.h"
#include "pop3.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MSGS_MAX	4

/* What a run produced. */
struct outcome {
	int		 rc;
	struct pf_error	 err;
	char		*out;		/* all data() bytes, in order */
	size_t		 outlen, outcap;
	char		 events[256];	/* "B1 E1:12 B2 ..." */
	size_t		 evlen;
	unsigned	 nbegin, nend;
	bool		 in_msg;
	uint64_t	 msg_octets;	/* data() octets of the current message */
	char		 tx[FZ_TX_MAX];
	size_t		 txlen;
};

static void event(struct outcome *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
event(struct outcome *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(o->events + o->evlen, sizeof(o->events) - o->evlen, fmt,
	    ap);
	va_end(ap);
	FZ_CHECK(n > 0 && (size_t)n < sizeof(o->events) - o->evlen);
	o->evlen += (size_t)n;
}

static int
sink_begin(void *ctx, const struct pop3_msg *m, struct pf_error *err)
{
	struct outcome *o = ctx;

	(void)err;
	FZ_CHECK(!o->in_msg);
	FZ_CHECK(m->number == o->nbegin + 1);	/* in order */
	o->in_msg = true;
	o->msg_octets = 0;
	o->nbegin++;
	event(o, "B%u ", m->number);
	return 0;
}

static int
sink_data(void *ctx, const char *buf, size_t len, struct pf_error *err)
{
	struct outcome *o = ctx;

	(void)err;
	FZ_CHECK(o->in_msg);
	FZ_CHECK(len > 0);
	FZ_CHECK(o->outlen + len <= o->outcap);
	memcpy(o->out + o->outlen, buf, len);
	o->outlen += len;
	o->msg_octets += len;
	return 0;
}

static int
sink_end(void *ctx, const struct pop3_msg *m, uint64_t octets,
    struct pf_error *err)
{
	struct outcome *o = ctx;

	(void)err;
	FZ_CHECK(o->in_msg);
	FZ_CHECK(m->number == o->nbegin);
	FZ_CHECK(octets == o->msg_octets);
	/* A finished message ends with LF, or is empty. */
	FZ_CHECK(octets == 0 || o->out[o->outlen - 1] == '\n');
	o->in_msg = false;
	o->nend++;
	event(o, "E%u:%llu ", m->number, (unsigned long long)octets);
	return 0;
}

/* The C0 controls but TAB, and DEL: what a status line may not hold. */
static bool
bad_byte(unsigned char c)
{
	return (c < 0x20 && c != '\t') || c == 0x7f;
}

static bool
starts_word(const uint8_t *p, size_t len, const char *w)
{
	size_t n = strlen(w);

	return len >= n && memcmp(p, w, n) == 0 && (len == n || p[n] == ' ');
}

/*
 * The model: what the sink must see for stream s[0..len) (starting at the
 * first status line) and n messages.  Fills o->out/events and returns the
 * expected rc; *cat_r is the expected category (PF_OK: not checked more
 * closely than "an -ERR category"), *lost_r the message lost mid-body.
 */
enum model_end { M_OK, M_LINE_LOST, M_TOO_LONG, M_BAD_CHAR, M_NOT_POP3,
	M_ERR_REPLY, M_BODY_LOST };

static enum model_end
model(const uint8_t *s, size_t len, unsigned n, struct outcome *o,
    unsigned *msg_r)
{
	size_t pos = 0, nlpos, ll, i;
	const uint8_t *nl, *p;
	uint64_t octets;
	unsigned m;

	for (m = 1; m <= n; m++) {
		*msg_r = m;
		/* The status line, as linebuf_read_line() sees it. */
		nl = pos < len ? memchr(s + pos, '\n', len - pos) : NULL;
		if (nl == NULL || (size_t)(nl - (s + pos)) + 1 > POP3_LINE_MAX)
			return len - pos >= POP3_LINE_MAX ? M_TOO_LONG :
			    M_LINE_LOST;
		nlpos = (size_t)(nl - s);
		ll = nlpos - pos;
		if (ll > 0 && s[nlpos - 1] == '\r')
			ll--;
		for (i = 0; i < ll; i++)
			if (bad_byte(s[pos + i]))
				return M_BAD_CHAR;
		p = s + pos;
		pos = nlpos + 1;
		if (starts_word(p, ll, "-ERR"))
			return M_ERR_REPLY;
		if (!starts_word(p, ll, "+OK"))
			return M_NOT_POP3;
		event(o, "B%u ", m);
		/* The body, line by line. */
		octets = 0;
		for (;;) {
			nl = pos < len ? memchr(s + pos, '\n', len - pos) :
			    NULL;
			ll = nl != NULL ? (size_t)(nl - (s + pos)) : len - pos;
			p = s + pos;
			if (nl != NULL && ll > 0 && p[ll - 1] == '\r')
				ll--;
			if (nl != NULL && ll == 1 && p[0] == '.') {
				pos = (size_t)(nl - s) + 1;
				break;
			}
			/* A stuffed dot goes; a partial line keeps what
			 * the filter has passed on (a held CR does not). */
			if (ll > 0 && p[0] == '.') {
				p++;
				ll--;
			}
			if (nl == NULL && ll > 0 && p[ll - 1] == '\r')
				ll--;
			memcpy(o->out + o->outlen, p, ll);
			o->outlen += ll;
			octets += ll;
			if (nl == NULL)
				return M_BODY_LOST;
			o->out[o->outlen++] = '\n';
			octets++;
			pos = (size_t)(nl - s) + 1;
		}
		event(o, "E%u:%llu ", m, (unsigned long long)octets);
	}
	return M_OK;
}

/* One session over the fake server; the outcome goes to *o. */
static void
run(const uint8_t *d, size_t dlen, unsigned mode, unsigned nmsgs,
    const struct fz_sched *sched, struct outcome *o)
{
	static const char capa[] = "+OK\r\nPIPELINING\r\n.\r\n";
	static const char ok[] = "+OK\r\n";
	struct pop3_msg msgs[MSGS_MAX];
	const struct pop3_msg *mp[MSGS_MAX];
	const struct pop3_capa *c;
	struct pop3_sink sink = { sink_begin, sink_data, sink_end, o };
	struct fz_server sv;
	struct pop3 *s;
	size_t slen = 0, rel[2], i;
	uint8_t *stream;
	bool pipelined = mode == 1 || mode == 3;

	stream = malloc(sizeof(capa) + sizeof(ok) + dlen);
	FZ_CHECK(stream != NULL);
	if (pipelined) {
		memcpy(stream, capa, strlen(capa));
		slen = strlen(capa);
	}
	rel[0] = 0;			/* no greeting */
	rel[1] = slen;			/* after CAPA: its reply */
	memcpy(stream + slen, ok, strlen(ok));
	slen += strlen(ok);
	if (dlen > 0)
		memcpy(stream + slen, d, dlen);
	slen += dlen;
	/* Pipelined: the RETRs release the rest; else the one command. */
	fz_server_init(&sv, stream, slen, rel, pipelined ? 2 : 1, sched);
	free(stream);

	for (i = 0; i < nmsgs; i++) {
		msgs[i].number = (unsigned)i + 1;
		msgs[i].size = dlen;
		msgs[i].uidl = NULL;
		mp[i] = &msgs[i];
	}
	s = pop3_new("fuzz", fz_read, fz_write, &sv);
	pf_error_clear(&o->err);
	if (pipelined) {
		FZ_CHECK(pop3_capa(s, &c, &o->err) == 0);
		FZ_CHECK(c->known && c->pipelining);
	}
	if (mode == 2)
		o->rc = pop3_top(s, &msgs[0], 7, &sink, &o->err);
	else
		o->rc = pop3_retr_each(s, mp, nmsgs, &sink, &o->err);
	if (o->rc == 0)
		FZ_CHECK(pop3_is_synchronised(s));
	else
		fz_check_error(&o->err);
	/* The server never waits for a command here: all were sent. */
	FZ_CHECK(!sv.waited);
	FZ_CHECK(!sv.tx_overflow);
	memcpy(o->tx, sv.tx, sv.txlen);
	o->txlen = sv.txlen;
	pop3_free(&s);
	FZ_CHECK(s == NULL);
	fz_server_free(&sv);
}

static void
outcome_init(struct outcome *o, size_t cap)
{
	memset(o, 0, sizeof(*o));
	o->outcap = cap;
	o->out = malloc(cap > 0 ? cap : 1);
	FZ_CHECK(o->out != NULL);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log_init(getenv("FUZZ_TRACE") != NULL ? 2 : -1, false);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_sched sched, one = { NULL, 0, 0 };
	struct outcome got, whole, want;
	const uint8_t *d = data;
	size_t len = size, wlen, i;
	unsigned mode, nmsgs = 1, lost = 0;
	enum model_end me;
	char cmds[128];
	uint8_t *wire;

	if (len < 1)
		return 0;
	mode = d[0] % 4;
	if (mode == 1 || mode == 3)
		nmsgs = 1 + (d[0] >> 2) % MSGS_MAX;
	d++;
	len--;
	fz_sched_take(&sched, &d, &len);

	/* The output is never longer than D: the sinks check it. */
	outcome_init(&got, len);
	outcome_init(&whole, len);
	outcome_init(&want, len);
	run(d, len, mode, nmsgs, &sched, &got);
	run(d, len, mode, nmsgs, &one, &whole);

	/* The commands. */
	if (mode == 2)
		snprintf(cmds, sizeof(cmds), "TOP 1 7\r\n");
	else {
		size_t n = 0;

		if (mode != 0)
			n += (size_t)snprintf(cmds + n, sizeof(cmds) - n,
			    "CAPA\r\n");
		for (i = 1; i <= nmsgs; i++)
			n += (size_t)snprintf(cmds + n, sizeof(cmds) - n,
			    "RETR %zu\r\n", i);
	}
	FZ_CHECK(got.txlen == strlen(cmds) &&
	    memcmp(got.tx, cmds, got.txlen) == 0);

	/* The model. */
	wlen = 5 + len;
	wire = malloc(wlen);
	FZ_CHECK(wire != NULL);
	memcpy(wire, "+OK\r\n", 5);
	if (len > 0)
		memcpy(wire + 5, d, len);
	me = model(wire, wlen, nmsgs, &want, &lost);
	FZ_CHECK(got.outlen == want.outlen);
	FZ_CHECK(got.outlen == 0 ||
	    memcmp(got.out, want.out, got.outlen) == 0);
	FZ_CHECK(got.evlen == want.evlen &&
	    memcmp(got.events, want.events, got.evlen) == 0);
	switch (me) {
	case M_OK:
		FZ_CHECK(got.rc == 0);
		FZ_CHECK(got.nbegin == nmsgs && got.nend == nmsgs);
		break;
	case M_LINE_LOST:
		FZ_CHECK(got.rc == -1 && got.err.category == PF_FAIL_TEMP);
		FZ_CHECK(strncmp(got.err.what, "connection lost", 15) == 0);
		break;
	case M_BODY_LOST: {
		char what[64];

		snprintf(what, sizeof(what),
		    "connection lost in the middle of message %u", lost);
		FZ_CHECK(got.rc == -1 && got.err.category == PF_FAIL_TEMP);
		FZ_CHECK(strcmp(got.err.what, what) == 0);
		FZ_CHECK(got.nend + 1 == got.nbegin);
		break;
	}
	case M_TOO_LONG:
	case M_BAD_CHAR:
	case M_NOT_POP3:
		FZ_CHECK(got.rc == -1 && got.err.category == PF_FAIL_PROTO);
		break;
	case M_ERR_REPLY: {
		char what[64];

		/* The category follows the response code (RFC 2449 §8). */
		snprintf(what, sizeof(what), "%s %u failed",
		    mode == 2 ? "TOP" : "RETR", lost);
		FZ_CHECK(got.rc == -1 && strcmp(got.err.what, what) == 0);
		FZ_CHECK(got.err.category == PF_FAIL_PROTO ||
		    got.err.category == PF_FAIL_TEMP ||
		    got.err.category == PF_FAIL_AUTH);
		break;
	}
	}
	/* CRLF in the output only where the wire had CR CR LF. */
	for (i = 0; i + 1 < got.outlen; i++)
		if (got.out[i] == '\r' && got.out[i + 1] == '\n')
			FZ_CHECK(memmem(wire, wlen, "\r\r\n", 3) != NULL);

	/* Differential: one chunk or many, the same result. */
	FZ_CHECK(got.rc == whole.rc);
	FZ_CHECK(got.outlen == whole.outlen);
	FZ_CHECK(got.outlen == 0 ||
	    memcmp(got.out, whole.out, got.outlen) == 0);
	FZ_CHECK(got.evlen == whole.evlen &&
	    memcmp(got.events, whole.events, got.evlen) == 0);
	FZ_CHECK(got.err.category == whole.err.category);
	FZ_CHECK(strcmp(got.err.what, whole.err.what) == 0);
	FZ_CHECK(strcmp(got.err.server, whole.err.server) == 0);
	FZ_CHECK(got.txlen == whole.txlen &&
	    memcmp(got.tx, whole.tx, got.txlen) == 0);

	free(wire);
	free(got.out);
	free(whole.out);
	free(want.out);
	return 0;
}
