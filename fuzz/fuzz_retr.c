/*
 * fuzz_retr.c - the multi-line reader: RETR/TOP replies with dot-unstuffing
 * and CRLF handling (fetcher/pop3.c stream_body and its dot filter), and
 * pop3_retr_each's sequence: a NOOP after the last RETR, a message's end()
 * only once the status line after its "." is a reply (doc/DESIGN.md §5.3),
 * -ERR to a RETR given to sink->refused (§5.2).
 *
 * Input: byte M (M % 4 == 2: TOP of one message; otherwise RETR of
 * 1 + (M >> 2) % 4 messages, then NOOP: M % 4 == 0 lock-step, 1 or 3
 * PIPELINING advertised, the RETRs and the NOOP in one write; M & 0x10:
 * the sink has a refused() callback), then the chunk schedule of
 * fuzz_util.h, then D.  The fake server answers the command(s) with
 * "+OK\r\n" followed by D, so D holds the first body and then the later
 * status lines and bodies and the reply to the NOOP.  In lock-step each
 * reply (as the model delimits it) becomes readable only once its command
 * has been written, as from a real server; pipelined, everything once the
 * RETRs and the NOOP are written.
 *
 * Checks:
 *  - a model: status lines read as the linebuf does, bodies split at LF,
 *    one CR before the LF dropped, the "." line ends the message, one
 *    leading dot removed otherwise; the sink must get exactly the model's
 *    bytes, begin() only after a +OK, end() (RETR) only once the next
 *    status line is +OK or -ERR, or the connection ended after the "."
 *    (TOP: at the "."), with the number of octets passed to data(),
 *    refused() for a -ERR to a RETR when set, and the model's result;
 *  - the commands sent: lock-step, each RETR and the NOOP only after the
 *    reply before it was read whole (the client never reads what its
 *    commands have not released yet);
 *  - the sink's own invariants (data() only between begin() and end(),
 *    never empty, never more octets than came off the wire; CRLF in the
 *    output only where the wire had CR CR LF; refused() between messages);
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
	char		 events[256];	/* "B1 E1:12 R2 B3 ..." */
	size_t		 evlen;
	unsigned	 nbegin, nend, nrefused;
	unsigned	 last;		/* the last message begun or refused */
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
	FZ_CHECK(m->number == o->last + 1);	/* in order */
	o->last = m->number;
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
	FZ_CHECK(m->number == o->last);
	FZ_CHECK(octets == o->msg_octets);
	/* A finished message ends with LF, or is empty. */
	FZ_CHECK(octets == 0 || o->out[o->outlen - 1] == '\n');
	o->in_msg = false;
	o->nend++;
	event(o, "E%u:%llu ", m->number, (unsigned long long)octets);
	return 0;
}

static int
sink_refused(void *ctx, const struct pop3_msg *m, const struct pf_error *why,
    struct pf_error *err)
{
	struct outcome *o = ctx;
	char what[64];

	(void)err;
	FZ_CHECK(!o->in_msg);			/* the one before has ended */
	FZ_CHECK(m->number == o->last + 1);	/* in order */
	o->last = m->number;
	o->nrefused++;
	fz_check_error(why);
	snprintf(what, sizeof(what), "RETR %u failed", m->number);
	FZ_CHECK(strcmp(why->what, what) == 0);
	FZ_CHECK(strncmp(why->server, "-ERR", 4) == 0);
	FZ_CHECK(why->category == PF_FAIL_PROTO ||
	    why->category == PF_FAIL_TEMP || why->category == PF_FAIL_AUTH);
	event(o, "R%u ", m->number);
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

/* Could p[0..n), a line cut short, be the start of a +OK or -ERR line? */
static bool
reply_start(const uint8_t *p, size_t n)
{
	static const char *const words[] = { "+OK", "-ERR" };
	size_t i, w;

	if (n == 0)
		return true;
	for (i = 0; i < 2; i++) {
		w = strlen(words[i]);
		if (memcmp(p, words[i], n < w ? n : w) == 0 &&
		    (n <= w || p[w] == ' ' || p[w] == '\r'))
			return true;
	}
	return false;
}

/*
 * The model: what the sink must see for stream s[0..len) (starting at the
 * first status line), n messages, RETR (`retr`: NOOP after the last, end()
 * deferred) or TOP, with or without refused().  Fills o->out/events and
 * returns how it ends; *msg_r is the command (1..n, n + 1 the NOOP) whose
 * reply it ended at, bound[c] (c = 1..n) where reply c ends in s when it
 * was read whole (else 0).  *alt_r: an end() event that may or may not
 * come after o->events (none today: a partial line after a "." is data
 * that contradicts it, doc/DESIGN.md §5.3).
 */
enum model_end { M_OK, M_LINE_LOST, M_TOO_LONG, M_BAD_CHAR, M_NOT_POP3,
	M_ERR_REPLY, M_BODY_LOST };

static enum model_end
model(const uint8_t *s, size_t len, unsigned n, bool retr, bool refused,
    struct outcome *o, unsigned *msg_r, size_t *bound, char *alt_r,
    size_t altsize)
{
	size_t pos = 0, nlpos, ll, i;
	const uint8_t *nl, *p;
	uint64_t octets, held_octets = 0;
	unsigned c, held = 0;

	alt_r[0] = '\0';
	for (c = 1; c <= n + (retr ? 1 : 0); c++) {
		*msg_r = c;
		/* The status line, as linebuf_read_line() sees it. */
		nl = pos < len ? memchr(s + pos, '\n', len - pos) : NULL;
		if (nl == NULL || (size_t)(nl - (s + pos)) + 1 > POP3_LINE_MAX) {
			if (len - pos >= POP3_LINE_MAX)
				return M_TOO_LONG;
			/* The connection ended: nothing contradicts the
			 * held message's "." when nothing, or the start of
			 * a status line, came after it; other data does
			 * (doc/DESIGN.md §5.3). */
			if (held != 0 && reply_start(s + pos, len - pos))
				event(o, "E%u:%llu ", held,
				    (unsigned long long)held_octets);
			return M_LINE_LOST;
		}
		nlpos = (size_t)(nl - s);
		ll = nlpos - pos;
		if (ll > 0 && s[nlpos - 1] == '\r')
			ll--;
		for (i = 0; i < ll; i++)
			if (bad_byte(s[pos + i]))
				return M_BAD_CHAR;
		p = s + pos;
		pos = nlpos + 1;
		if (!starts_word(p, ll, "-ERR") && !starts_word(p, ll, "+OK"))
			return M_NOT_POP3;
		/* A reply: the message before is whole. */
		if (held != 0)
			event(o, "E%u:%llu ", held,
			    (unsigned long long)held_octets);
		held = 0;
		if (c == n + 1)
			return M_OK;		/* the NOOP's reply */
		if (starts_word(p, ll, "-ERR")) {
			if (!retr || !refused)
				return M_ERR_REPLY;
			event(o, "R%u ", c);
			bound[c] = pos;
			continue;
		}
		event(o, "B%u ", c);
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
		bound[c] = pos;
		if (!retr)
			event(o, "E%u:%llu ", c, (unsigned long long)octets);
		else {
			held = c;
			held_octets = octets;
		}
	}
	return M_OK;
}

/* One session over the fake server; the outcome goes to *o. */
static void
run(const uint8_t *d, size_t dlen, unsigned mode, unsigned nmsgs,
    bool refused, const size_t *bound, const struct fz_sched *sched,
    struct outcome *o)
{
	static const char capa[] = "+OK\r\nPIPELINING\r\n.\r\n";
	static const char ok[] = "+OK\r\n";
	struct pop3_msg msgs[MSGS_MAX];
	const struct pop3_msg *mp[MSGS_MAX];
	const struct pop3_capa *c;
	struct pop3_sink sink = {
		sink_begin, sink_data, sink_end, o,
		refused ? sink_refused : NULL,
	};
	struct fz_server sv;
	struct pop3 *s;
	size_t slen = 0, rel[MSGS_MAX + 2], nrel, i;
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
	nrel = 2;
	memcpy(stream + slen, ok, strlen(ok));
	slen += strlen(ok);
	if (dlen > 0)
		memcpy(stream + slen, d, dlen);
	slen += dlen;
	/*
	 * Pipelined: the RETRs (and the NOOP) release the rest.  TOP: the
	 * one command.  Lock-step RETR: RETR c releases reply c (as far as
	 * the model found it; else everything), the NOOP the rest.
	 */
	if (mode == 2)
		nrel = 1;
	else if (!pipelined) {
		for (i = 1; i <= nmsgs; i++)
			rel[i] = bound[i] != 0 ? bound[i] : slen;
		rel[nmsgs + 1] = slen;
		nrel = nmsgs + 2;
	}
	fz_server_init(&sv, stream, slen, rel, nrel, sched);
	free(stream);

	for (i = 0; i < nmsgs; i++) {
		msgs[i] = (struct pop3_msg){ .number = (unsigned)i + 1 };
		msgs[i].size = dlen;
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
	/* The client never reads what its commands have not released:
	 * lock-step, no command goes out before the reply to the one
	 * before is in whole. */
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
	size_t len = size, wlen, i, n, bound[MSGS_MAX + 2];
	unsigned mode, nmsgs = 1, lost = 0;
	bool retr, refused, pipelined;
	enum model_end me;
	char cmds[128], alt[32];
	uint8_t *wire;

	if (len < 1)
		return 0;
	mode = d[0] % 4;
	retr = mode != 2;
	pipelined = mode == 1 || mode == 3;
	refused = retr && (d[0] & 0x10) != 0;
	if (retr)
		nmsgs = 1 + (d[0] >> 2) % MSGS_MAX;
	d++;
	len--;
	fz_sched_take(&sched, &d, &len);

	/* The output is never longer than D: the sinks check it. */
	outcome_init(&got, len);
	outcome_init(&whole, len);
	outcome_init(&want, len);

	/* The model first: lock-step, its reply bounds make the server. */
	wlen = 5 + len;
	wire = malloc(wlen);
	FZ_CHECK(wire != NULL);
	memcpy(wire, "+OK\r\n", 5);
	if (len > 0)
		memcpy(wire + 5, d, len);
	memset(bound, 0, sizeof(bound));
	me = model(wire, wlen, nmsgs, retr, refused, &want, &lost, bound, alt,
	    sizeof(alt));

	run(d, len, mode, nmsgs, refused, bound, &sched, &got);
	run(d, len, mode, nmsgs, refused, bound, &one, &whole);

	/* The commands: pipelined all at once; lock-step each once the
	 * reply before was read (the model says how far that went). */
	n = 0;
	if (!retr)
		n += (size_t)snprintf(cmds + n, sizeof(cmds) - n,
		    "TOP 1 7\r\n");
	else {
		unsigned upto = pipelined ? nmsgs + 1 : lost;

		if (pipelined)
			n += (size_t)snprintf(cmds + n, sizeof(cmds) - n,
			    "CAPA\r\n");
		for (i = 1; i <= nmsgs && i <= upto; i++)
			n += (size_t)snprintf(cmds + n, sizeof(cmds) - n,
			    "RETR %zu\r\n", i);
		if (upto == nmsgs + 1)
			n += (size_t)snprintf(cmds + n, sizeof(cmds) - n,
			    "NOOP\r\n");
	}
	FZ_CHECK(n < sizeof(cmds));
	FZ_CHECK(got.txlen == n && memcmp(got.tx, cmds, got.txlen) == 0);

	/* The model's output and events (+ alt: an end() that may come). */
	FZ_CHECK(got.outlen == want.outlen);
	FZ_CHECK(got.outlen == 0 ||
	    memcmp(got.out, want.out, got.outlen) == 0);
	FZ_CHECK((got.evlen == want.evlen &&
	    memcmp(got.events, want.events, got.evlen) == 0) ||
	    (alt[0] != '\0' && got.evlen == want.evlen + strlen(alt) &&
	    memcmp(got.events, want.events, want.evlen) == 0 &&
	    memcmp(got.events + want.evlen, alt, strlen(alt)) == 0));
	switch (me) {
	case M_OK:
		FZ_CHECK(got.rc == 0);
		FZ_CHECK(got.nbegin + got.nrefused == nmsgs);
		FZ_CHECK(got.nend == got.nbegin);
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
