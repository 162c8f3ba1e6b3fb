/*
 * pop3.c - the POP3 client session (see pop3.h).
 *
 * RFC 1939  POP3: greeting, USER/PASS, APOP, STAT, LIST, UIDL, RETR, TOP,
 *           DELE, NOOP, QUIT; §3 multi-line replies and byte-stuffing.
 * RFC 2449  CAPA (§5), PIPELINING (§6.6), response codes (§8) IN-USE,
 *           LOGIN-DELAY, SYS/TEMP, AUTH; 255-octet command lines (§4).
 * RFC 2595  STLS (§4): the client discards what it knew before TLS.
 * RFC 5034  AUTH with SASL, initial response (§4), "*" cancels.
 *
 * Shape.  Every command goes out through queue_line() (the only place that
 * traces commands, masking secrets via pop3_trace_mask()) and flush() (one
 * write per batch).  Every sent command is pushed on a FIFO of pending
 * commands; read_reply() classifies the next status line (+OK, -ERR, "+"
 * continuation, anything else is a protocol error) and matches it to the
 * head of the FIFO.  Without PIPELINING the FIFO never holds more than one
 * command (strict lock-step); with it, RETR and DELE keep up to
 * POP3_PIPELINE_WINDOW in flight (struct window; mpop's send/receive
 * indices).  Where the session stands is one enum session_state.
 *
 * Why the window cannot deadlock: we only write while the server may be
 * blocked writing replies we have not read yet, and what we write is at most
 * POP3_PIPELINE_WINDOW short commands (under 9 KiB), below the socket
 * buffers, so our write completes even if the server reads nothing
 * meanwhile.
 *
 * Everything the server sends is untrusted: status lines are length-capped
 * and checked for control characters by the linebuf, each datum is
 * validated once here, and server text reaches error messages only through
 * pf_error_set_server().
 */
#include "config.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "crypto.h"
#include "linebuf.h"
#include "log.h"
#include "params.h"
#include "pop3.h"
#include "sasl.h"
#include "xmalloc.h"

_Static_assert(POP3_MESSAGES_MAX < (1ULL << POP3_NUMBER_BITS),
    "struct pop3_msg's number holds every message number");
_Static_assert(POP3_SIZE_BITS + POP3_NUMBER_BITS + 4 <= 64,
    "struct pop3_msg's bit-fields share one 64-bit word");
_Static_assert(POP3_LINE_MAX < NET_READ_BUF,
    "a whole status or listing line fits in the read buffer (linebuf_new)");
_Static_assert(sizeof(struct pop3_msg) == 16,
    "a listing entry is 16 bytes (doc/DESIGN.md §5.4)");
_Static_assert(sizeof(union pop3_uid) == 8 && POP3_UIDL_BUF > 16,
    "an inline unique-id is 8 octets, or 16 digits and a NUL decoded");

/* ---- the protocol table ---- */

enum pop3_cmd {
	CMD_NONE = 0,		/* the greeting: no command */
	CMD_USER,
	CMD_PASS,
	CMD_APOP,
	CMD_AUTH,
	CMD_CAPA,
	CMD_STLS,
	CMD_STAT,
	CMD_LIST,
	CMD_UIDL,
	CMD_RETR,
	CMD_TOP,
	CMD_DELE,
	CMD_NOOP,
	CMD_QUIT,
};

/*
 * name: the command; multiline: +OK is followed by lines up to "." (for the
 * forms we send: LIST and UIDL without argument); mask_from: 0 if nothing is
 * secret, else the index of the first argument hidden in the trace (PASS's
 * 1st, APOP's and AUTH's 2nd: digest, initial response).
 */
static const struct pop3_cmd_info {
	const char	*name;
	bool		 multiline;
	unsigned	 mask_from;
} pop3_cmds[] = {
	[CMD_NONE] = { "greeting",	false,	0 },
	[CMD_USER] = { "USER",		false,	0 },
	[CMD_PASS] = { "PASS",		false,	1 },
	[CMD_APOP] = { "APOP",		false,	2 },
	[CMD_AUTH] = { "AUTH",		false,	2 },
	[CMD_CAPA] = { "CAPA",		true,	0 },
	[CMD_STLS] = { "STLS",		false,	0 },
	[CMD_STAT] = { "STAT",		false,	0 },
	[CMD_LIST] = { "LIST",		true,	0 },
	[CMD_UIDL] = { "UIDL",		true,	0 },
	[CMD_RETR] = { "RETR",		true,	0 },
	[CMD_TOP]  = { "TOP",		true,	0 },
	[CMD_DELE] = { "DELE",		false,	0 },
	[CMD_NOOP] = { "NOOP",		false,	0 },
	[CMD_QUIT] = { "QUIT",		false,	0 },
};
#define NCMDS	(sizeof(pop3_cmds) / sizeof(pop3_cmds[0]))

/* A sent command whose reply has not been read yet. */
struct pending {
	enum pop3_cmd	 cmd;
	unsigned	 arg;		/* message number, or 0 */
};

/* Room for a full window plus UIDL and LIST sent together. */
#define PENDING_MAX	(POP3_PIPELINE_WINDOW + 2)

enum reply_kind {
	REPLY_OK,
	REPLY_ERR,
	REPLY_CONT,		/* "+ text": SASL continuation (RFC 5034 §4) */
};

/*
 * Where the session stands with the server.  Every change goes through
 * set_state(), and these are all of them:
 *
 *   READY -> BODY        the +OK of a multi-line reply is read
 *   BODY -> READY        its "." line is read
 *   READY -> QUIT_SENT   QUIT sent after the RETRs (POP3_QUIT_AFTER_RETR)
 *   READY, QUIT_SENT -> CLOSED
 *                        QUIT's reply read, or QUIT sent not to be read
 *   any -> BROKEN        a reply half read, a transport failure, or
 *                        replies left unread in flight
 *
 * set_state() keeps BROKEN: out of step once, out of step for good (the
 * caller drops the connection, pop3.h).
 */
enum session_state {
	SESSION_READY = 0,	/* in step: pending replies, if any, unread */
	SESSION_BODY,		/* a multi-line +OK read, its body not yet */
	SESSION_QUIT_SENT,	/* QUIT out, its reply not read */
	SESSION_CLOSED,		/* QUIT done: quit_err is its outcome */
	SESSION_BROKEN,		/* out of step: drop the connection */
};

struct pop3 {
	char		*account;
	pop3_read_fn	 read;		/* one of these two */
	pop3_write_fn	 write;
	void		*io;
	struct linebuf	*lb;
	struct io_wait	 wait;		/* what the next read waits for */

	char		*out;		/* commands queued for one write */
	size_t		 outlen;
	char		*dbuf;		/* filtered message data for the sink */

	struct pending	 pending[PENDING_MAX];
	size_t		 phead;
	size_t		 npending;
	enum session_state state;

	char		*timestamp;	/* APOP, from the greeting */
	struct pop3_capa capa;
	bool		 uidl_expected;	/* pop3_expect_uidl */
	bool		 stat_known;
	unsigned	 stat_count;
	const char	*mech_used;

	/* The caller's request: QUIT once pop3_retr_each has every message
	 * in (POP3_QUIT_AFTER_RETR). */
	bool		 quit_after_retr;
	/* QUIT's outcome, PF_OK until one failed.  A QUIT that broke the
	 * session leaves it BROKEN, not CLOSED: this tells it was tried. */
	struct pf_error	 quit_err;
};

static void
set_state(struct pop3 *s, enum session_state to)
{
	if (s->state != SESSION_BROKEN)
		s->state = to;
}

static void	capa_clear(struct pop3_capa *c);

/* The linebuf's source: the transport, told which wait the read is for. */
static ssize_t
transport_read(void *ctx, void *buf, size_t len, struct pf_error *err)
{
	struct pop3 *s = ctx;

	return s->read(s->io, buf, len, &s->wait, err);
}

static struct pop3 *
session_new(const char *account_name, pop3_write_fn write, void *io_ctx)
{
	struct pop3 *s = xcalloc(1, sizeof(*s));

	s->account = xstrdup(account_name);
	s->write = write;
	s->io = io_ctx;
	io_wait_begin(&s->wait, IO_WAIT_LINE);
	s->lb = linebuf_new(NET_READ_BUF, POP3_LINE_MAX, transport_read, s);
	s->out = xmalloc(POP3_SEND_MAX);
	/* The dot filter emits at most one held CR more than it reads. */
	s->dbuf = xmalloc(NET_READ_BUF + 1);
	return s;
}

struct pop3 *
pop3_new(const char *account_name, pop3_read_fn read, pop3_write_fn write,
    void *io_ctx)
{
	struct pop3 *s = session_new(account_name, write, io_ctx);

	s->read = read;
	return s;
}

void
pop3_free(struct pop3 **sp)
{
	struct pop3 *s = *sp;

	if (s == NULL)
		return;
	crypto_cleanse(s->out, POP3_SEND_MAX);
	free(s->out);
	free(s->dbuf);
	linebuf_free(&s->lb);
	capa_clear(&s->capa);
	free(s->timestamp);
	free(s->account);
	free(s);
	*sp = NULL;
}

bool
pop3_is_synchronised(const struct pop3 *s)
{
	return s->npending == 0 &&
	    (s->state == SESSION_READY || s->state == SESSION_CLOSED);
}

const char *
pop3_apop_timestamp(const struct pop3 *s)
{
	return s->timestamp;
}

const struct pop3_capa *
pop3_capabilities(const struct pop3 *s)
{
	return &s->capa;
}

const char *
pop3_auth_mechanism(const struct pop3 *s)
{
	return s->mech_used;
}

/* ---- sending: the single path ---- */

const char *
pop3_trace_mask(const char *line, bool sasl_continuation, char *out,
    size_t outsz)
{
	const struct pop3_cmd_info *ci = NULL;
	size_t wlen, keep, i;
	unsigned words;

	if (outsz == 0)
		return out;
	if (sasl_continuation) {
		snprintf(out, outsz, "****");
		return out;
	}
	wlen = strcspn(line, " ");
	for (i = 1; i < NCMDS; i++)
		if (strlen(pop3_cmds[i].name) == wlen &&
		    strncasecmp(line, pop3_cmds[i].name, wlen) == 0)
			ci = &pop3_cmds[i];
	if (ci == NULL || ci->mask_from == 0) {
		snprintf(out, outsz, "%s", line);
		return out;
	}
	/* Keep the command word and mask_from - 1 arguments; hide the rest. */
	keep = wlen;
	for (words = 1; words < ci->mask_from && line[keep] == ' '; words++)
		keep += 1 + strcspn(line + keep + 1, " ");
	if (line[keep] == '\0')
		snprintf(out, outsz, "%s", line);
	else
		snprintf(out, outsz, "%.*s ****", (int)keep, line);
	return out;
}

/*
 * Queue one line (without CRLF) for the next flush() and trace it, masked.
 * Every byte we send passes here.  `line` may hold a secret: the caller
 * wipes its copy, flush() wipes ours.
 */
static int
queue_line(struct pop3 *s, const char *line, bool sasl_continuation,
    struct pf_error *err)
{
	char masked[512];
	size_t len = strlen(line);

	if (strpbrk(line, "\r\n") != NULL)
		return pf_error_set(err, PF_FAIL_INTERNAL,
		    "command with CR or LF");
	if (len + 2 > POP3_SEND_MAX - s->outlen)
		return pf_error_set(err, PF_FAIL_CONFIG,
		    "command line longer than %d octets (credentials too long?)",
		    POP3_SEND_MAX);
	memcpy(s->out + s->outlen, line, len);
	memcpy(s->out + s->outlen + len, "\r\n", 2);
	s->outlen += len + 2;
	if (log_enabled(LOG_LEVEL_TRACE))
		log_trace("%s: > %s", s->account,
		    pop3_trace_mask(line, sasl_continuation, masked,
		    sizeof(masked)));
	return 0;
}

/*
 * Queue a command and record it as pending.  Sending a command while
 * nothing is pending yet the server has sent bytes is a protocol error:
 * replies out of order, or data nobody asked for.
 */
static int
queue_cmd(struct pop3 *s, enum pop3_cmd cmd, unsigned arg, const char *line,
    struct pf_error *err)
{
	const char *junk;
	size_t n;

	if (s->npending == PENDING_MAX)
		return pf_error_set(err, PF_FAIL_INTERNAL,
		    "too many pipelined commands");
	if (s->npending == 0 && s->state != SESSION_BODY &&
	    (n = linebuf_buffered(s->lb)) > 0) {
		junk = linebuf_peek(s->lb, &n);
		set_state(s, SESSION_BROKEN);
		pf_error_set(err, PF_FAIL_PROTO,
		    "server sent data nobody asked for (before %s)",
		    pop3_cmds[cmd].name);
		/* Untrusted. */
		pf_error_set_server(err, junk, n);
		return -1;
	}
	if (queue_line(s, line, false, err) == -1)
		return -1;
	s->pending[(s->phead + s->npending) % PENDING_MAX] =
	    (struct pending){ cmd, arg };
	s->npending++;
	return 0;
}

/* queue_cmd with a printf-formatted line (no secrets: these stay in the
 * heap unwiped). */
static int
queue_cmdf(struct pop3 *s, enum pop3_cmd cmd, unsigned arg,
    struct pf_error *err, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int
queue_cmdf(struct pop3 *s, enum pop3_cmd cmd, unsigned arg,
    struct pf_error *err, const char *fmt, ...)
{
	char line[128];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line))
		return pf_error_set(err, PF_FAIL_INTERNAL, "command too long");
	return queue_cmd(s, cmd, arg, line, err);
}

/* Write everything queued in one write, then wipe it (PASS, AUTH). */
static int
flush(struct pop3 *s, struct pf_error *err)
{
	int rc = 0;

	if (s->outlen > 0) {
		rc = s->write(s->io, s->out, s->outlen, err);
		crypto_cleanse(s->out, s->outlen);
		s->outlen = 0;
	}
	if (rc == -1)
		set_state(s, SESSION_BROKEN);
	return rc;
}

/* ---- reading replies ---- */

static const struct pending *
pending_head(const struct pop3 *s)
{
	static const struct pending none = { CMD_NONE, 0 };

	return s->npending > 0 ? &s->pending[s->phead] : &none;
}

/* "RETR 5", "LIST", "greeting": names the command a reply belongs to. */
static const char *
pending_name(const struct pending *p, char *buf, size_t size)
{
	if (p->arg != 0)
		snprintf(buf, size, "%s %u", pop3_cmds[p->cmd].name, p->arg);
	else
		snprintf(buf, size, "%s", pop3_cmds[p->cmd].name);
	return buf;
}

/* Does `line` start with `word`, followed by the end or a space? */
static bool
starts_word(const char *line, const char *word)
{
	size_t n = strlen(word);

	return strncmp(line, word, n) == 0 &&
	    (line[n] == '\0' || line[n] == ' ');
}

/*
 * Read the next status line and classify it once (curl's endofresp).
 * +OK and -ERR complete the command at the head of the FIFO (a +OK of a
 * multi-line command leaves its body pending); "+ ..." is accepted only when
 * allow_cont.  *line_r (untrusted data!) is valid until the next read.
 * *text_r points past the status word and one space.
 */
static int
read_reply(struct pop3 *s, bool allow_cont, enum reply_kind *kind_r,
    const char **line_r, const char **text_r, struct pf_error *err)
{
	const struct pending *head = pending_head(s);
	char name[32];
	const char *line;
	size_t len;

	/* doc/DESIGN.md §5.4: one deadline for the whole line. */
	io_wait_begin(&s->wait, IO_WAIT_LINE);
	switch (linebuf_read_line(s->lb, &line, &len, err)) {
	case LINEBUF_LINE:
		break;
	case LINEBUF_EOF:
		pf_error_set(err, PF_FAIL_TEMP,
		    "connection lost (waiting for the reply to %s)",
		    pending_name(head, name, sizeof(name)));
		/* FALLTHROUGH */
	default:
		set_state(s, SESSION_BROKEN);
		return -1;
	}
	log_trace("%s: < %s", s->account, line);
	*line_r = line;
	if (starts_word(line, "+OK")) {
		*kind_r = REPLY_OK;
		*text_r = line + 3 + (line[3] == ' ');
	} else if (starts_word(line, "-ERR")) {
		*kind_r = REPLY_ERR;
		*text_r = line + 4 + (line[4] == ' ');
	} else if (allow_cont && starts_word(line, "+")) {
		*kind_r = REPLY_CONT;
		*text_r = line + 1 + (line[1] == ' ');
		return 0;
	} else {
		set_state(s, SESSION_BROKEN);
		if (head->cmd == CMD_NONE)
			pf_error_set(err, PF_FAIL_PROTO,
			    "not a POP3 server greeting");
		else
			pf_error_set(err, PF_FAIL_PROTO,
			    "unexpected reply to %s",
			    pending_name(head, name, sizeof(name)));
		pf_error_set_server(err, line, len);
		return -1;
	}
	if (s->npending > 0) {
		if (*kind_r == REPLY_OK && pop3_cmds[head->cmd].multiline)
			set_state(s, SESSION_BODY);
		s->phead = (s->phead + 1) % PENDING_MAX;
		s->npending--;
	}
	return 0;
}

/*
 * Does the text of a -ERR carry response code `code` (RFC 2449 §8)?  Codes
 * are hierarchical: "SYS/TEMP" also covers "SYS/TEMP/whatever".
 */
static bool
has_resp_code(const char *text, const char *code)
{
	const char *close;
	size_t len, n = strlen(code);

	if (text[0] != '[' || (close = strchr(text, ']')) == NULL)
		return false;
	len = (size_t)(close - text - 1);
	return len >= n && strncasecmp(text + 1, code, n) == 0 &&
	    (len == n || text[1 + n] == '/');
}

/*
 * The category of a -ERR from its response code, or `dflt`.  Codes are
 * honoured anywhere, advertised or not.
 */
static enum pf_fail
resp_code_category(const char *text, enum pf_fail dflt)
{
	static const struct {
		const char	*code;
		enum pf_fail	 category;
	} codes[] = {
		{ "IN-USE",	 PF_FAIL_TEMP },
		{ "LOGIN-DELAY", PF_FAIL_TEMP },
		{ "SYS/TEMP",	 PF_FAIL_TEMP },
		{ "AUTH",	 PF_FAIL_AUTH },
	};
	size_t i;

	for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
		if (has_resp_code(text, codes[i].code))
			return codes[i].category;
	return dflt;
}

/*
 * Fail with our words from fmt and `line` (untrusted) as the server's.
 * The category is `cat`, unless `text` (the text of a -ERR; NULL for a
 * line that is no reply) has a response code that says otherwise.
 */
static int
fail_line(struct pf_error *err, enum pf_fail cat, const char *line,
    const char *text, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int
fail_line(struct pf_error *err, enum pf_fail cat, const char *line,
    const char *text, const char *fmt, ...)
{
	char what[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (text != NULL)
		cat = resp_code_category(text, cat);
	pf_error_set(err, cat, "%s", what);
	pf_error_set_server(err, line, (size_t)-1);
	return -1;
}

/*
 * Fill err for a -ERR to a login command (USER, PASS, APOP, AUTH or a
 * SASL step): fail_line with PF_FAIL_AUTH unless a response code says
 * otherwise.  [IN-USE] (RFC 2449 §8.1.1) means the login was fine but
 * another session holds the maildrop's lock: say that, not
 * "authentication failed", so that nobody goes looking for a wrong
 * password (still 75: the next run may get in).
 */
static int
login_refused(const char *line, const char *text, struct pf_error *err,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int
login_refused(const char *line, const char *text, struct pf_error *err,
    const char *fmt, ...)
{
	char what[256];
	va_list ap;

	if (has_resp_code(text, "IN-USE"))
		return fail_line(err, PF_FAIL_TEMP, line, text, "mailbox in "
		    "use by another client (the server said [IN-USE])");
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return fail_line(err, PF_FAIL_AUTH, line, text, "%s", what);
}

/*
 * Send one command and read its single-line reply.  Returns 0 for +OK,
 * 1 for -ERR (*line_r, *text_r set, the session still synchronised), -1 on
 * failure.
 */
static int
simple_cmd(struct pop3 *s, enum pop3_cmd cmd, const char *line,
    const char **line_r, const char **text_r, struct pf_error *err)
{
	enum reply_kind kind;

	if (queue_cmd(s, cmd, 0, line, err) == -1 || flush(s, err) == -1 ||
	    read_reply(s, false, &kind, line_r, text_r, err) == -1)
		return -1;
	return kind == REPLY_OK ? 0 : 1;
}

/*
 * One line of a multi-line reply (RFC 1939 §3): *end_r is set at the "."
 * line; a leading stuffed dot is removed.  Line untrusted, valid until the
 * next read.
 */
static int
read_body_line(struct pop3 *s, const char **line_r, size_t *len_r,
    bool *end_r, struct pf_error *err)
{
	const char *line;
	size_t len;

	*end_r = false;
	io_wait_begin(&s->wait, IO_WAIT_LINE);
	if (linebuf_read_line(s->lb, &line, &len, err) != LINEBUF_LINE) {
		set_state(s, SESSION_BROKEN);
		return -1;
	}
	if (len == 1 && line[0] == '.') {
		*end_r = true;
		set_state(s, SESSION_READY);
		return 0;
	}
	log_trace("%s: < %s", s->account, line);
	if (line[0] == '.') {
		line++;
		len--;
	}
	*line_r = line;
	*len_r = len;
	return 0;
}

/* ---- numbers ---- */

/* Parse decimal digits [p, p+len) (untrusted): no sign, no blanks, at
 * least one digit, value <= max.  0 or -1. */
static int
parse_decimal(const char *p, size_t len, uint64_t max, uint64_t *v_r)
{
	uint64_t v = 0, d;
	size_t i;

	if (len == 0)
		return -1;
	for (i = 0; i < len; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		d = (uint64_t)(p[i] - '0');
		/* v * 10 + d <= max, without overflow. */
		if (v > max / 10 || (v == max / 10 && d > max % 10))
			return -1;
		v = v * 10 + d;
	}
	*v_r = v;
	return 0;
}

/*
 * "N SIZE[ more]" as in STAT, LIST (RFC 1939 §5: anything may follow the
 * size after a space).  Returns 0, or -1 with a reason in *why_r.
 */
static int
parse_num_size(const char *line, uint64_t nmax, uint64_t *n_r,
    uint64_t *size_r, const char **why_r)
{
	size_t nlen = strcspn(line, " "), slen;
	const char *sz;

	if (parse_decimal(line, nlen, nmax, n_r) == -1) {
		*why_r = "bad message number";
		return -1;
	}
	if (line[nlen] != ' ' || line[nlen + 1] == '\0') {
		*why_r = "no size";
		return -1;
	}
	sz = line + nlen + 1;
	slen = strcspn(sz, " ");
	if (parse_decimal(sz, slen, UINT64_MAX, size_r) == -1) {
		*why_r = "bad size";
		return -1;
	}
	if (*size_r > POP3_SIZE_MAX)
		*size_r = POP3_SIZE_MAX;	/* what struct pop3_msg holds */
	return 0;
}

/* ---- greeting, CAPA, STLS ---- */

/* The APOP timestamp in a greeting (untrusted): "<...@...>", printable. */
static char *
find_timestamp(const char *text)
{
	const char *lt, *gt, *p;

	if ((lt = strchr(text, '<')) == NULL ||
	    (gt = strchr(lt, '>')) == NULL)
		return NULL;
	if ((size_t)(gt - lt + 1) > POP3_APOP_TIMESTAMP_MAX)
		return NULL;
	for (p = lt + 1; p < gt; p++)
		if (*p < 0x21 || *p > 0x7e || *p == '<')
			return NULL;
	if (memchr(lt, '@', (size_t)(gt - lt)) == NULL)
		return NULL;
	return xstrndup(lt, (size_t)(gt - lt + 1));
}

int
pop3_greeting(struct pop3 *s, struct pf_error *err)
{
	enum reply_kind kind;
	const char *line, *text;

	if (read_reply(s, false, &kind, &line, &text, err) == -1)
		return -1;
	if (kind == REPLY_ERR)
		/* RFC 1939 §4 allows no -ERR greeting; servers use it for
		 * "too many connections": try again later. */
		return fail_line(err, PF_FAIL_TEMP, line, text,
		    "server refused the connection");
	free(s->timestamp);
	s->timestamp = find_timestamp(text);
	return 0;
}

static void
capa_clear(struct pop3_capa *c)
{
	size_t i;

	for (i = 0; i < c->nsasl; i++)
		free(c->sasl[i]);
	for (i = 0; i < c->nlines; i++)
		free(c->lines[i]);
	free(c->sasl);
	free(c->lines);
	memset(c, 0, sizeof(*c));
}

/* Record one capability line (untrusted, validated by the linebuf). */
static void
capa_add(struct pop3_capa *c, const char *line)
{
	const char *p;
	size_t wlen = strcspn(line, " ");

	c->lines = xreallocarray(c->lines, c->nlines + 1, sizeof(char *));
	c->lines[c->nlines++] = xstrdup(line);
#define IS(w)	(wlen == strlen(w) && strncasecmp(line, w, wlen) == 0)
	if (IS("TOP"))
		c->top = true;
	else if (IS("UIDL"))
		c->uidl = true;
	else if (IS("USER"))
		c->user = true;
	else if (IS("PIPELINING"))
		c->pipelining = true;
	else if (IS("STLS"))
		c->stls = true;
	else if (IS("RESP-CODES"))
		c->resp_codes = true;
	else if (IS("AUTH-RESP-CODE"))
		c->auth_resp_code = true;
	else if (IS("SASL")) {
		for (p = line + wlen; *p != '\0';) {
			size_t n;

			p += strspn(p, " ");
			if ((n = strcspn(p, " ")) == 0)
				break;
			/* A hostile server could list a million; we know
			 * four.  The rest are ignored, memory stays bounded. */
			if (c->nsasl >= POP3_SASL_MECHS_MAX)
				break;
			c->sasl = xreallocarray(c->sasl, c->nsasl + 1,
			    sizeof(char *));
			c->sasl[c->nsasl++] = xstrndup(p, n);
			p += n;
		}
	}
#undef IS
}

/* Read and record the reply to a CAPA already sent. */
static int
capa_reply(struct pop3 *s, struct pf_error *err)
{
	enum reply_kind kind;
	const char *line, *text;
	size_t len;
	bool end;

	if (read_reply(s, false, &kind, &line, &text, err) == -1)
		return -1;
	if (kind == REPLY_ERR) {
		enum pf_fail cat = resp_code_category(text, PF_OK);

		/* RFC 2449 §5: a server without CAPA says -ERR; fine. */
		if (cat != PF_OK)
			return fail_line(err, cat, line, text, "CAPA failed");
		return 0;
	}
	for (;;) {
		if (read_body_line(s, &line, &len, &end, err) == -1)
			return -1;
		if (end)
			break;
		if (s->capa.nlines == POP3_CAPA_LINES_MAX) {
			set_state(s, SESSION_BROKEN);
			return fail_line(err, PF_FAIL_PROTO, line, NULL,
			    "more than %d capability lines",
			    POP3_CAPA_LINES_MAX);
		}
		capa_add(&s->capa, line);
	}
	s->capa.known = true;
	return 0;
}

int
pop3_capa(struct pop3 *s, const struct pop3_capa **capa_r,
    struct pf_error *err)
{
	capa_clear(&s->capa);
	if (capa_r != NULL)
		*capa_r = &s->capa;
	if (queue_cmd(s, CMD_CAPA, 0, "CAPA", err) == -1 ||
	    flush(s, err) == -1)
		return -1;
	return capa_reply(s, err);
}

int
pop3_greeting_capa(struct pop3 *s, struct pf_error *err)
{
	if (s->npending != 0 || s->outlen != 0)
		return pf_error_set(err, PF_FAIL_INTERNAL,
		    "pop3_greeting_capa on a session already begun");
	capa_clear(&s->capa);
	/* The greeting is the first reply we wait for, CAPA's the next. */
	s->pending[s->phead] = (struct pending){ CMD_NONE, 0 };
	s->npending = 1;
	if (queue_cmd(s, CMD_CAPA, 0, "CAPA", err) == -1 ||
	    flush(s, err) == -1)
		return -1;
	if (pop3_greeting(s, err) == -1)
		return -1;
	return capa_reply(s, err);
}

bool
pop3_has_sasl(const struct pop3 *s, const char *mech)
{
	size_t i;

	for (i = 0; i < s->capa.nsasl; i++)
		if (strcasecmp(s->capa.sasl[i], mech) == 0)
			return true;
	return false;
}

int
pop3_stls(struct pop3 *s, struct pf_error *err)
{
	const char *line, *text;
	int rc;

	if (s->capa.known && !s->capa.stls)
		return pf_error_set(err, PF_FAIL_TLS,
		    "STARTTLS not offered by the server (no STLS in CAPA)");
	if ((rc = simple_cmd(s, CMD_STLS, "STLS", &line, &text, err)) == -1)
		return -1;
	if (rc == 1)
		return fail_line(err, PF_FAIL_TLS, line, text,
		    "server refused STLS");
	/*
	 * RFC 2595 §4: nothing may follow the +OK in clear text.  Bytes
	 * already buffered would be read as if they came over TLS: a man in
	 * the middle injecting commands' replies (CVE-2011-0411's cousin).
	 */
	if (linebuf_buffered(s->lb) > 0) {
		set_state(s, SESSION_BROKEN);
		return pf_error_set(err, PF_FAIL_TLS,
		    "server sent data after its STLS reply, before TLS "
		    "(possible injection attack)");
	}
	/* RFC 2595 §4: forget what we learnt before TLS. */
	capa_clear(&s->capa);
	return 0;
}

/* ---- authentication ---- */

/*
 * A way to log in: a SASL mechanism, any row of sasl.c's table, or one of
 * POP3's own commands (RFC 1939 §7), which are not SASL.
 */
enum auth_kind {
	AM_SASL,
	AM_USER,
	AM_APOP,
};

struct auth_method {
	enum auth_kind		 kind;
	const struct sasl_mech	*sasl;		/* AM_SASL only */
};

/* As `check` prints it ("logged in with: ..."). */
static const char *
auth_method_name(const struct auth_method *m)
{
	switch (m->kind) {
	case AM_SASL:
		return m->sasl->name;
	case AM_USER:
		return "USER";
	case AM_APOP:
		return "APOP";
	}
	return "?";
}

/* Does it send the password or token as such (Guarantee 5)? */
static bool
auth_method_reveals_secret(const struct auth_method *m)
{
	return m->kind == AM_USER ||
	    (m->kind == AM_SASL && m->sasl->reveals_secret);
}

/* USER/PASS, RFC 1939 §7.  *rejected_r: the server said -ERR. */
static int
auth_user(struct pop3 *s, const struct pop3_auth_params *p,
    bool *rejected_r, struct pf_error *err)
{
	const char *line, *text;
	char *cmd;
	int rc;

	struct pf_error ignored;
	enum reply_kind kind;

	cmd = xasprintf("USER %s", p->user);
	if (s->capa.pipelining) {
		/* One round trip: PASS goes with USER.  Both replies are
		 * read, so a rejected USER leaves the session in step.
		 * Nothing goes after PASS before its reply: Courier's login
		 * process execs the mail session on success, and whatever
		 * it had read after PASS is lost (the listing would never
		 * be answered), although it offers PIPELINING. */
		rc = queue_cmd(s, CMD_USER, 0, cmd, err);
		free(cmd);
		cmd = xasprintf("PASS %s", p->secret);
		if (rc == -1 || queue_cmd(s, CMD_PASS, 0, cmd, err) == -1 ||
		    flush(s, err) == -1 ||
		    read_reply(s, false, &kind, &line, &text, err) == -1) {
			secret_free(&cmd);
			return -1;
		}
		secret_free(&cmd);
		if (kind == REPLY_ERR) {
			*rejected_r = true;
			login_refused(line, text, err,
			    "user name rejected");
			/* PASS's reply, -ERR too; err keeps USER's. */
			if (read_reply(s, false, &kind, &line, &text,
			    &ignored) == -1)
				set_state(s, SESSION_BROKEN);
			return -1;
		}
		if (read_reply(s, false, &kind, &line, &text, err) == -1)
			return -1;
		if (kind == REPLY_OK)
			return 0;
		*rejected_r = true;
		return login_refused(line, text, err,
		    "authentication failed (USER/PASS)");
	}
	rc = simple_cmd(s, CMD_USER, cmd, &line, &text, err);
	free(cmd);
	if (rc == 1) {
		*rejected_r = true;
		return login_refused(line, text, err,
		    "user name rejected");
	}
	if (rc == -1)
		return -1;
	cmd = xasprintf("PASS %s", p->secret);
	rc = simple_cmd(s, CMD_PASS, cmd, &line, &text, err);
	secret_free(&cmd);
	if (rc == 1) {
		*rejected_r = true;
		return login_refused(line, text, err,
		    "authentication failed (USER/PASS)");
	}
	return rc;
}

/* APOP, RFC 1939 §7. */
static int
auth_apop(struct pop3 *s, const struct pop3_auth_params *p,
    bool *rejected_r, struct pf_error *err)
{
	const char *line, *text;
	char digest[33], *cmd;
	int rc;

	sasl_apop_digest(s->timestamp, p->secret, digest);
	cmd = xasprintf("APOP %s %s", p->user, digest);
	crypto_cleanse(digest, sizeof(digest));
	rc = simple_cmd(s, CMD_APOP, cmd, &line, &text, err);
	secret_free(&cmd);
	if (rc == 1) {
		*rejected_r = true;
		return login_refused(line, text, err,
		    "authentication failed (APOP)");
	}
	return rc;
}

/* Cancel a SASL exchange (RFC 5034 §4: "*") and read the server's answer,
 * so that the session stays usable if it can.  Best effort. */
static void
sasl_cancel(struct pop3 *s)
{
	struct pf_error e;
	enum reply_kind kind;
	const char *line, *text;

	if (queue_line(s, "*", true, &e) == -1 || flush(s, &e) == -1 ||
	    read_reply(s, false, &kind, &line, &text, &e) == -1)
		set_state(s, SESSION_BROKEN);
}

/*
 * AUTH with a SASL mechanism, RFC 5034 §4.  The initial response goes on the
 * AUTH line when CAPA listed SASL (RFC 5034 servers must accept it) and the
 * line fits RFC 2449's 255 octets; otherwise it answers the first, empty,
 * challenge (the form Microsoft's XOAUTH2 requires, and what RFC 1734
 * servers understand).  A server with AUTH-RESP-CODE that refuses the
 * initial response with a bare -ERR gets the two-step form once (popfetch.conf(5)).
 */
static int
auth_sasl(struct pop3 *s, const struct sasl_mech *mech,
    const struct pop3_auth_params *p, bool *rejected_r, struct pf_error *err)
{
	const char *name = mech->name, *line, *text;
	struct sasl *sa = NULL;
	char *ir = NULL, *cmd = NULL, *resp = NULL, *ir_retry = NULL;
	enum reply_kind kind;
	int steps, rc = -1;

	if ((sa = sasl_new(mech, p->user, p->secret, err)) == NULL)
		goto out;
	sasl_set_peer(sa, p->host, p->port);
	if ((ir = sasl_initial_response(sa, err)) == NULL)
		goto out;
	if (s->capa.known && s->capa.nsasl > 0 &&
	    strlen("AUTH ") + strlen(name) + 1 + strlen(ir) + 2 <=
	    POP3_CMD_LINE_MAX) {
		cmd = xasprintf("AUTH %s %s", name, ir);
		ir_retry = ir;		/* for the two-step form, see REPLY_ERR */
		ir = NULL;
	} else
		cmd = xasprintf("AUTH %s", name);
	if (queue_cmd(s, CMD_AUTH, 0, cmd, err) == -1 || flush(s, err) == -1)
		goto out;
	secret_free(&cmd);
	/* PLAIN and XOAUTH2 take 1-2 challenges, SCRAM 2-3; 8 is plenty. */
	for (steps = 0; steps < 8; steps++) {
		if (read_reply(s, true, &kind, &line, &text, err) == -1)
			goto out;
		switch (kind) {
		case REPLY_OK:
			if (ir != NULL || !sasl_is_complete(sa)) {
				/* Logged in, yet the exchange is not done:
				 * for SCRAM the server never proved that it
				 * knows the password.  Refuse. */
				fail_line(err, PF_FAIL_AUTH, line, NULL,
				    "%s: server accepted the login without "
				    "completing the exchange", name);
				goto out;
			}
			rc = 0;
			goto out;
		case REPLY_ERR:
			/*
			 * popfetch.conf(5): the two-step form when the server does not
			 * accept the initial response.  A server with
			 * AUTH-RESP-CODE (RFC 3206) marks every credential
			 * problem [AUTH], so its bare -ERR as the very first
			 * reply means the form, not the secret (e.g. "-ERR
			 * Initial response not supported"): one more AUTH
			 * without it.  Anything else is final.
			 */
			if (ir_retry != NULL && steps == 0 &&
			    s->capa.auth_resp_code && text[0] != '[') {
				log_debug("%s: AUTH %s with an initial response "
				    "refused; trying the two-step form",
				    s->account, name);
				ir = ir_retry;
				ir_retry = NULL;
				cmd = xasprintf("AUTH %s", name);
				if (queue_cmd(s, CMD_AUTH, 0, cmd, err) == -1 ||
				    flush(s, err) == -1)
					goto out;
				secret_free(&cmd);
				break;
			}
			*rejected_r = true;
			login_refused(line, text, err,
			    "authentication failed (%s)", name);
			goto out;
		case REPLY_CONT:
			if (ir != NULL) {
				/* Two-step form: the first challenge is
				 * empty and asks for the initial response. */
				if (text[0] != '\0') {
					fail_line(err, PF_FAIL_PROTO, line,
					    NULL, "unexpected first %s "
					    "challenge", name);
					sasl_cancel(s);
					goto out;
				}
				resp = ir;
				ir = NULL;
			} else if (sasl_step(sa, text, strlen(text), &resp,
			    err) == -1) {
				sasl_cancel(s);
				goto out;
			}
			if (queue_line(s, resp, true, err) == -1 ||
			    flush(s, err) == -1)
				goto out;
			secret_free(&resp);
			break;
		}
	}
	set_state(s, SESSION_BROKEN);
	pf_error_set(err, PF_FAIL_PROTO, "%s: too many SASL challenges", name);
out:
	secret_free(&ir);
	secret_free(&ir_retry);
	secret_free(&cmd);
	secret_free(&resp);
	sasl_free(&sa);
	return rc;
}

static int
auth_try(struct pop3 *s, const struct auth_method *m,
    const struct pop3_auth_params *p, bool *rejected_r, struct pf_error *err)
{
	*rejected_r = false;
	switch (m->kind) {
	case AM_SASL:
		return auth_sasl(s, m->sasl, p, rejected_r, err);
	case AM_USER:
		return auth_user(s, p, rejected_r, err);
	case AM_APOP:
		return auth_apop(s, p, rejected_r, err);
	}
	return pf_error_set(err, PF_FAIL_INTERNAL, "unknown auth method %d",
	    (int)m->kind);
}

/* May the mechanism be tried: offered by the server, or CAPA unknown? */
static bool
sasl_offered(const struct pop3 *s, const char *mech)
{
	return !s->capa.known || pop3_has_sasl(s, mech);
}

/*
 * The candidates in order.  Only the first two are ever tried (the second
 * after a rejected first, see pop3_auth), so only those are kept; *ncand
 * counts them all.
 */
#define AUTH_TRIES	2

static void
add_cand(struct auth_method cand[AUTH_TRIES], size_t *ncand,
    enum auth_kind kind, const struct sasl_mech *sasl)
{
	if (*ncand < AUTH_TRIES) {
		cand[*ncand].kind = kind;
		cand[*ncand].sasl = sasl;
	}
	(*ncand)++;
}

int
pop3_auth(struct pop3 *s, const struct pop3_auth_params *p,
    struct pf_error *err)
{
	struct auth_method cand[AUTH_TRIES];
	const struct sasl_mech *m;
	size_t ncand = 0, i;
	bool clear_ok = p->tls_active || p->allow_plaintext;
	bool rejected;
	int rc;

	if (p->user == NULL || p->secret == NULL)
		return pf_error_set(err, PF_FAIL_INTERNAL,
		    "pop3_auth without user or secret");
	/* popfetch.conf(5): CR or LF in a credential would inject commands. */
	if (strpbrk(p->user, "\r\n") != NULL ||
	    strpbrk(p->secret, "\r\n") != NULL)
		return pf_error_set(err, PF_FAIL_CONFIG,
		    "user name or secret contains CR or LF");

	switch (p->mode) {
	case CONF_AUTH_AUTO:
		/*
		 * popfetch.conf(5): the SASL mechanisms the server lists, in
		 * sasl.c's order of preference, those that reveal the secret
		 * only where clear text is allowed; then USER, then APOP
		 * (which never reveals the password).
		 */
		for (i = 0; (m = sasl_mech_at(i)) != NULL; i++)
			if (m->in_auto && (clear_ok || !m->reveals_secret) &&
			    s->capa.known && pop3_has_sasl(s, m->name))
				add_cand(cand, &ncand, AM_SASL, m);
		if (clear_ok && (!s->capa.known || s->capa.user))
			add_cand(cand, &ncand, AM_USER, NULL);
		if (s->timestamp != NULL)
			add_cand(cand, &ncand, AM_APOP, NULL);
		/* USER not advertised (RFC 2449 §6.5 lets servers omit it):
		 * still worth a try when nothing else is left. */
		if (clear_ok && ncand == 0)
			add_cand(cand, &ncand, AM_USER, NULL);
		if (ncand == 0)
			return pf_error_set(err, PF_FAIL_AUTH,
			    "no usable authentication mechanism: the server "
			    "offers neither SCRAM-SHA-256 nor APOP, and a "
			    "clear-text password needs TLS or "
			    "allow_plaintext_password");
		break;
	case CONF_AUTH_USER:
		add_cand(cand, &ncand, AM_USER, NULL);
		break;
	case CONF_AUTH_APOP:
		if (s->timestamp == NULL)
			return pf_error_set(err, PF_FAIL_AUTH,
			    "server does not offer APOP (no timestamp in its "
			    "greeting)");
		add_cand(cand, &ncand, AM_APOP, NULL);
		break;
	default:
		/* Every other `auth` value names a row of sasl.c's table. */
		if ((m = sasl_mech_for_conf(p->mode)) == NULL)
			return pf_error_set(err, PF_FAIL_INTERNAL,
			    "unknown auth mode %d", (int)p->mode);
		if (!sasl_offered(s, m->name))
			return pf_error_set(err, PF_FAIL_AUTH,
			    "server does not offer SASL %s", m->name);
		add_cand(cand, &ncand, AM_SASL, m);
		break;
	}
	/* Guarantee 5: a password or token in clear text only inside TLS or
	 * when the user allowed it. */
	if (!clear_ok && auth_method_reveals_secret(&cand[0]))
		return pf_error_set(err, PF_FAIL_CONFIG,
		    "refusing to send a clear-text password without TLS "
		    "(set allow_plaintext_password to allow it)");

	rc = auth_try(s, &cand[0], p, &rejected, err);
	/*
	 * popfetch.conf(5): inside TLS, a rejected SASL mechanism that keeps
	 * the secret hidden (SCRAM) gets one attempt with the next candidate:
	 * the server may advertise it for users whose stored password cannot
	 * do it.  Not after [IN-USE] and the like, and not when the server
	 * failed our checks.
	 */
	if (rc == -1 && cand[0].kind == AM_SASL &&
	    !cand[0].sasl->reveals_secret && p->tls_active && ncand > 1 &&
	    rejected && err->category == PF_FAIL_AUTH &&
	    pop3_is_synchronised(s)) {
		log_debug("%s: %s rejected, trying %s", s->account,
		    auth_method_name(&cand[0]), auth_method_name(&cand[1]));
		rc = auth_try(s, &cand[1], p, &rejected, err);
		if (rc == 0)
			cand[0] = cand[1];
	}
	if (rc == 0)
		s->mech_used = auth_method_name(&cand[0]);
	return rc;
}

/* ---- transaction state ---- */

int
pop3_stat(struct pop3 *s, unsigned *count_r, uint64_t *size_r,
    struct pf_error *err)
{
	const char *line, *text, *why;
	uint64_t count, size;
	int rc;

	if ((rc = simple_cmd(s, CMD_STAT, "STAT", &line, &text, err)) == -1)
		return -1;
	if (rc == 1)
		return fail_line(err, PF_FAIL_PROTO, line, text, "STAT failed");
	if (parse_num_size(text, UINT32_MAX, &count, &size, &why) == -1)
		return fail_line(err, PF_FAIL_PROTO, line, NULL,
		    "malformed STAT reply: %s", why);
	if (count > POP3_MESSAGES_MAX)
		return fail_line(err, PF_FAIL_PROTO, line, NULL,
		    "STAT announces more than %d messages", POP3_MESSAGES_MAX);
	s->stat_known = true;
	s->stat_count = (unsigned)count;
	if (count_r != NULL)
		*count_r = (unsigned)count;
	if (size_r != NULL)
		*size_r = size;
	return 0;
}

/*
 * qsort, unless one pass finds base in order already, as servers usually
 * list (by number, and Dovecot's hexadecimal UIDs by string too).  n may
 * be 0 with a NULL base (which qsort does not take: UBSan).
 */
static void
sort_unless_ordered(void *base, size_t n, size_t size,
    int (*cmp)(const void *, const void *))
{
	const char *p = base;
	size_t i;

	for (i = 1; i < n; i++)
		if (cmp(p + (i - 1) * size, p + i * size) > 0) {
			qsort(base, n, size, cmp);
			return;
		}
}

/* qsort/bsearch order of pop3_msg by number. */
static int
cmp_msg_number(const void *a, const void *b)
{
	unsigned x = ((const struct pop3_msg *)a)->number;
	unsigned y = ((const struct pop3_msg *)b)->number;

	return (x > y) - (x < y);
}

/* qsort order of pointers to pop3_msg by unique-id. */
static int
cmp_msg_uidl(const void *a, const void *b)
{
	const struct pop3_msg *const *x = a, *const *y = b;
	int c = pop3_msg_uidl_cmp(*x, *y);

	/* Ties by number, so the later duplicate is reported. */
	if (c == 0)
		c = ((*x)->number > (*y)->number) -
		    ((*x)->number < (*y)->number);
	return c;
}

/* Highest message number we accept: STAT's count once known. */
static unsigned
max_number(const struct pop3 *s)
{
	return s->stat_known ? s->stat_count : POP3_MESSAGES_MAX;
}

/*
 * A set of message numbers 1..max_number(s), to catch duplicates.  It
 * grows with the highest number met (doubling), so an idle mailbox's
 * listing costs a few bytes, not 125 KB zeroed (and its page faults) per
 * account; max_number bounds it.
 */
struct bitmap {
	unsigned char	*bits;
	size_t		 len;	/* bytes */
};

/* Test and set n (<= max_number: parse_decimal bounds it). */
static bool
bitmap_test_set(struct bitmap *bm, unsigned n)
{
	bool was;

	if (n / 8 >= bm->len) {
		size_t len = bm->len == 0 ? 64 : bm->len;

		while (n / 8 >= len)
			len *= 2;
		bm->bits = xreallocarray(bm->bits, len, 1);
		memset(bm->bits + bm->len, 0, len - bm->len);
		bm->len = len;
	}
	was = (bm->bits[n / 8] & (1u << (n % 8))) != 0;
	bm->bits[n / 8] |= (unsigned char)(1u << (n % 8));
	return was;
}

static bool
bitmap_test(const struct bitmap *bm, unsigned n)
{
	return n / 8 < bm->len && (bm->bits[n / 8] & (1u << (n % 8))) != 0;
}

/* Read a UIDL body (RFC 1939 §7) into *ents_r / *n_r (sizes 0, the
 * unique-ids in pool), in server order, validating each line once. */
static int
read_uidl_body(struct pop3 *s, struct strpool *pool, struct pop3_msg **ents_r,
    size_t *n_r, struct pf_error *err)
{
	struct pop3_msg *ents = NULL;
	struct bitmap seen = { NULL, 0 };
	size_t n = 0, alloc = 0, nlen, ulen, i, total = 0;
	const char *line, *uid;
	uint64_t num;
	bool end;

	for (;;) {
		if (read_body_line(s, &line, &ulen, &end, err) == -1)
			goto fail;
		if (end)
			break;
		nlen = strcspn(line, " ");
		if (parse_decimal(line, nlen, max_number(s), &num) == -1 ||
		    num == 0) {
			fail_line(err, PF_FAIL_PROTO, line, NULL,
			    "bad message number in UIDL line");
			goto fail;
		}
		if (line[nlen] != ' ' || line[nlen + 1] == '\0') {
			fail_line(err, PF_FAIL_PROTO, line, NULL,
			    "UIDL line without unique-id");
			goto fail;
		}
		uid = line + nlen + 1;
		ulen = strlen(uid);
		/* RFC 1939 §7: 0x21..0x7E; more than 70 tolerated up to
		 * POP3_UIDL_MAX (params.h). */
		if (ulen > POP3_UIDL_MAX) {
			fail_line(err, PF_FAIL_PROTO, line, NULL,
			    "unique-id longer than %d characters",
			    POP3_UIDL_MAX);
			goto fail;
		}
		for (i = 0; i < ulen; i++)
			if (uid[i] < 0x21 || uid[i] > 0x7e)
				break;
		if (i < ulen) {
			fail_line(err, PF_FAIL_PROTO, line, NULL,
			    "unique-id with a space or a character outside "
			    "0x21..0x7E");
			goto fail;
		}
		if (bitmap_test_set(&seen, (unsigned)num)) {
			fail_line(err, PF_FAIL_PROTO, line, NULL,
			    "duplicate message number %u in UIDL",
			    (unsigned)num);
			goto fail;
		}
		/* The listing's memory (params.h): ulen <= POP3_UIDL_MAX,
		 * so total cannot overflow before the test fires. */
		total += ulen;
		if (total > POP3_UIDL_TOTAL_MAX) {
			fail_line(err, PF_FAIL_PROTO, line, NULL,
			    "UIDL listing too large: more than %zu octets of "
			    "unique-ids in %zu lines",
			    POP3_UIDL_TOTAL_MAX, n + 1);
			goto fail;
		}
		if (n == alloc) {
			alloc = alloc == 0 ? 64 : alloc * 2;
			ents = xreallocarray(ents, alloc, sizeof(*ents));
		}
		ents[n].number = (unsigned)num;
		ents[n].size = 0;
		pop3_msg_set_uidl(&ents[n], uid, ulen, pool);
		ents[n].known = false;
		ents[n].fetch = false;
		n++;
	}
	free(seen.bits);
	/* Give back the doubling's slack: these become the listing. */
	if (n > 0 && n < alloc)
		ents = xreallocarray(ents, n, sizeof(*ents));
	*ents_r = ents;
	*n_r = n;
	return 0;
fail:
	set_state(s, SESSION_BROKEN);
	free(ents);
	free(seen.bits);
	return -1;
}

/*
 * The next line of a LIST body: its number (new in `listed`, which it is
 * then set in) and size; *end_r at the final dot.  A malformed line or a
 * number met before fails, the line quoted.
 */
static int
read_list_line(struct pop3 *s, struct bitmap *listed, bool *end_r,
    uint64_t *num_r, uint64_t *size_r, struct pf_error *err)
{
	const char *line, *why;
	size_t len;

	if (read_body_line(s, &line, &len, end_r, err) == -1)
		return -1;
	if (*end_r)
		return 0;
	if (parse_num_size(line, max_number(s), num_r, size_r, &why) == -1)
		return fail_line(err, PF_FAIL_PROTO, line, NULL,
		    "malformed LIST line: %s", why);
	if (*num_r == 0)
		return fail_line(err, PF_FAIL_PROTO, line, NULL,
		    "malformed LIST line: bad message number");
	if (bitmap_test_set(listed, (unsigned)*num_r))
		return fail_line(err, PF_FAIL_PROTO, line, NULL,
		    "duplicate message number %u in LIST", (unsigned)*num_r);
	return 0;
}

/* Read a LIST body (RFC 1939 §5) into *msgs_r / *n_r, in server order. */
static int
read_list_body(struct pop3 *s, struct pop3_msg **msgs_r, size_t *n_r,
    struct pf_error *err)
{
	struct pop3_msg *msgs = NULL;
	struct bitmap seen = { NULL, 0 };
	size_t n = 0, alloc = 0;
	uint64_t num, size;
	bool end;

	for (;;) {
		if (read_list_line(s, &seen, &end, &num, &size, err) == -1)
			goto fail;
		if (end)
			break;
		if (n == alloc) {
			alloc = alloc == 0 ? 64 : alloc * 2;
			msgs = xreallocarray(msgs, alloc, sizeof(*msgs));
		}
		msgs[n].number = (unsigned)num;
		msgs[n].size = size;
		msgs[n].uid.str = NULL;
		msgs[n].uid_form = POP3_UID_POINTER;
		msgs[n].known = false;
		msgs[n].fetch = false;
		n++;
	}
	free(seen.bits);
	/* Give back the doubling's slack: the listing lives all run. */
	if (n > 0 && n < alloc)
		msgs = xreallocarray(msgs, n, sizeof(*msgs));
	*msgs_r = msgs;
	*n_r = n;
	return 0;
fail:
	set_state(s, SESSION_BROKEN);
	free(msgs);
	free(seen.bits);
	return -1;
}

/*
 * Read a LIST body into the sizes of msgs[0..n) (UIDL's, sorted by
 * number), without an array of its own (the listing's memory, doc/DESIGN.md
 * §5.4).  Lines are checked as read_list_body checks them; the first LIST
 * line whose number UIDL lacks goes to *miss_r (number 0: none) for the
 * caller to report after the body, in read_list_body's order.  The
 * numbers LIST named are set in `listed` (a bitmap of message numbers),
 * and counted in *nlines_r.
 */
static int
read_list_into(struct pop3 *s, struct pop3_msg *msgs, size_t n,
    struct bitmap *listed, struct pop3_msg *miss_r, size_t *nlines_r,
    struct pf_error *err)
{
	struct pop3_msg key, *hit;
	uint64_t num, size;
	size_t at = 0;
	bool end;

	memset(miss_r, 0, sizeof(*miss_r));
	*nlines_r = 0;
	for (;;) {
		if (read_list_line(s, listed, &end, &num, &size, err) == -1)
			goto fail;
		if (end)
			break;
		(*nlines_r)++;
		/* Both in number order, as usual: no search. */
		key.number = (unsigned)num;
		if (at < n && msgs[at].number == key.number)
			hit = &msgs[at];
		else
			hit = n == 0 ? NULL : bsearch(&key, msgs, n,
			    sizeof(*msgs), cmp_msg_number);
		if (hit == NULL) {
			if (miss_r->number == 0) {
				miss_r->number = key.number;
				miss_r->size = size;
			}
			continue;
		}
		hit->size = size;
		at = (size_t)(hit - msgs) + 1;
	}
	return 0;
fail:
	set_state(s, SESSION_BROKEN);
	return -1;
}

/* Every UID of msgs[0..n) must be unique. */
static int
check_unique_uidls(const struct pop3_msg *msgs, size_t n, struct pf_error *err)
{
	const struct pop3_msg **byuid = NULL;
	char line[64 + POP3_UIDL_MAX], ub[POP3_UIDL_BUF];
	size_t i;
	int rc = 0;

	/* Sort pointers by string, compare neighbours.  Servers usually
	 * list them in string order already (Dovecot's hexadecimal UIDs):
	 * then one pass shows that, and no sort. */
	byuid = xreallocarray(NULL, n == 0 ? 1 : n, sizeof(*byuid));
	for (i = 0; i < n; i++)
		byuid[i] = &msgs[i];
	sort_unless_ordered(byuid, n, sizeof(*byuid), cmp_msg_uidl);
	for (i = 1; i < n && rc == 0; i++)
		if (pop3_msg_uidl_cmp(byuid[i - 1], byuid[i]) == 0) {
			snprintf(line, sizeof(line), "%u %s",
			    byuid[i]->number, pop3_msg_uidl(byuid[i], ub));
			rc = fail_line(err, PF_FAIL_PROTO, line, NULL,
			    "duplicate unique-id in UIDL (messages %u and %u)",
			    byuid[i - 1]->number, byuid[i]->number);
		}
	free(byuid);
	return rc;
}

/* After read_list_into: the first of msgs[0..n) (by number) that LIST
 * lacks fails, its line quoted. */
static int
check_all_listed(const struct pop3_msg *msgs, size_t n,
    const struct bitmap *listed, struct pf_error *err)
{
	char line[64 + POP3_UIDL_MAX], ub[POP3_UIDL_BUF];
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned num = msgs[i].number;

		if (!bitmap_test(listed, num)) {
			snprintf(line, sizeof(line), "%u %s", num,
			    pop3_msg_uidl(&msgs[i], ub));
			return fail_line(err, PF_FAIL_PROTO, line, NULL,
			    "message %u is in UIDL but not in LIST", num);
		}
	}
	return 0;
}

/* After read_list_into: the first LIST line UIDL lacks fails, else the
 * first UIDL message LIST lacks. */
static int
check_same_numbers(const struct pop3_msg *msgs, size_t n,
    const struct bitmap *listed, const struct pop3_msg *miss,
    struct pf_error *err)
{
	if (miss->number != 0) {
		char line[64];

		snprintf(line, sizeof(line), "%u %" PRIu64,
		    (unsigned)miss->number, (uint64_t)miss->size);
		return fail_line(err, PF_FAIL_PROTO, line, NULL,
		    "message %u is in LIST but not in UIDL", miss->number);
	}
	return check_all_listed(msgs, n, listed, err);
}

/* LIST's reply line; LIST is sent first unless `sent` already. */
static int
list_head(struct pop3 *s, bool sent, struct pf_error *err)
{
	enum reply_kind kind;
	const char *line, *text;

	if (!sent && (queue_cmd(s, CMD_LIST, 0, "LIST", err) == -1 ||
	    flush(s, err) == -1))
		return -1;
	if (read_reply(s, false, &kind, &line, &text, err) == -1)
		return -1;
	if (kind == REPLY_ERR)
		return fail_line(err, PF_FAIL_PROTO, line, text, "LIST failed");
	return 0;
}

/* LIST's reply and body; LIST is sent first unless `sent` already. */
static int
list_reply(struct pop3 *s, bool sent, struct pop3_msg **msgs_r, size_t *n_r,
    struct pf_error *err)
{
	if (list_head(s, sent, err) == -1)
		return -1;
	return read_list_body(s, msgs_r, n_r, err);
}

/*
 * UIDL, and LIST when `sizes` (or when there is no UIDL): see
 * pop3_list_messages and pop3_list_uidls.
 */
static int
list_messages(struct pop3 *s, bool sizes, struct pop3_listing **listing_r,
    struct pf_error *err)
{
	struct pop3_listing *l = NULL;
	struct pop3_msg *ents = NULL;
	struct strpool *pool = strpool_new();
	struct bitmap listed = { NULL, 0 };
	size_t nents = 0;
	enum reply_kind kind;
	const char *line, *text;
	bool has_uidl = false, list_sent = false;
	int rc = -1;

	*listing_r = NULL;
	/* RFC 2449 §6.6: with PIPELINING both go out in one write. */
	if (queue_cmd(s, CMD_UIDL, 0, "UIDL", err) == -1)
		goto out;
	if (sizes && s->capa.pipelining) {
		if (queue_cmd(s, CMD_LIST, 0, "LIST", err) == -1)
			goto out;
		list_sent = true;
	}
	if (flush(s, err) == -1)
		goto out;
	if (read_reply(s, false, &kind, &line, &text, err) == -1)
		goto out;
	if (kind == REPLY_ERR) {
		enum pf_fail cat = resp_code_category(text, PF_OK);

		if (cat != PF_OK) {
			fail_line(err, cat, line, text, "UIDL failed");
			goto out;
		}
		/* doc/DESIGN.md §5.1: a server that said it has UIDL, or whose
		 * UIDLs we hold, is having a bad moment, not a change of
		 * nature: a switch to "no UIDL" would fetch everything. */
		if (s->capa.uidl || s->uidl_expected) {
			fail_line(err, PF_FAIL_TEMP, line, text, "UIDL failed "
			    "(%s)", s->capa.uidl ? "the server announced UIDL" :
			    "the seen-list holds this server's UIDLs");
			goto out;
		}
		/* No UIDL (RFC 1939 lists it as optional). */
		log_debug("%s: server has no UIDL", s->account);
	} else {
		has_uidl = true;
		if (read_uidl_body(s, pool, &ents, &nents, err) == -1)
			goto out;
	}
	l = xcalloc(1, sizeof(*l));
	l->has_uidl = has_uidl;
	l->uidls = pool;
	pool = NULL;
	if (has_uidl) {
		struct pop3_msg miss = { .number = 0 };
		size_t nlines;

		/* UIDL's entries are the listing, LIST only adds their sizes:
		 * one array (doc/DESIGN.md §5.4).  Errors come in the order
		 * of reading: LIST's lines, then the unique-ids, then the
		 * numbers one list lacks. */
		sort_unless_ordered(ents, nents, sizeof(*ents),
		    cmp_msg_number);
		l->msgs = ents;
		l->count = nents;
		ents = NULL;
		if (sizes) {
			if (list_head(s, list_sent, err) == -1 ||
			    read_list_into(s, l->msgs, l->count, &listed,
			    &miss, &nlines, err) == -1)
				goto out;
			l->sizes_known = true;
		}
		if (check_unique_uidls(l->msgs, l->count, err) == -1 ||
		    (sizes && check_same_numbers(l->msgs, l->count, &listed,
		    &miss, err) == -1))
			goto out;
	} else {
		if (list_reply(s, list_sent, &l->msgs, &l->count, err) == -1)
			goto out;
		l->sizes_known = true;
	}
	/* popfetch.conf(5): max_messages takes the lowest message numbers first,
	 * whatever order the server listed them in. */
	sort_unless_ordered(l->msgs, l->count, sizeof(*l->msgs),
	    cmp_msg_number);
	*listing_r = l;
	l = NULL;
	rc = 0;
out:
	free(listed.bits);
	free(ents);
	strpool_free(&pool);
	pop3_listing_free(&l);
	return rc;
}

int
pop3_list_messages(struct pop3 *s, struct pop3_listing **listing_r,
    struct pf_error *err)
{
	return list_messages(s, true, listing_r, err);
}

int
pop3_list_uidls(struct pop3 *s, struct pop3_listing **listing_r,
    struct pf_error *err)
{
	return list_messages(s, false, listing_r, err);
}

int
pop3_list_sizes(struct pop3 *s, struct pop3_listing *l, struct pf_error *err)
{
	struct pop3_msg miss;
	struct bitmap listed = { NULL, 0 };
	size_t n = 0;
	int rc = -1;

	if (l->sizes_known)
		return 0;
	if (list_head(s, false, err) == -1)
		return -1;
	/* Into the listing itself (sorted by number): no second array. */
	if (read_list_into(s, l->msgs, l->count, &listed, &miss, &n,
	    err) == -1)
		goto out;
	if (check_all_listed(l->msgs, l->count, &listed, err) == -1)
		goto out;
	if (n != l->count) {
		pf_error_set(err, PF_FAIL_PROTO, "LIST has %zu messages, UIDL "
		    "%zu", n, l->count);
		goto out;
	}
	l->sizes_known = true;
	rc = 0;
out:
	free(listed.bits);
	return rc;
}

void
pop3_listing_free(struct pop3_listing **lp)
{
	struct pop3_listing *l = *lp;
	size_t i;

	if (l == NULL)
		return;
	if (l->uidls != NULL)
		strpool_free(&l->uidls);
	else
		for (i = 0; i < l->count; i++)
			if (l->msgs[i].uid_form == POP3_UID_POINTER)
				free(l->msgs[i].uid.str);
	free(l->msgs);
	free(l);
	*lp = NULL;
}

/* ---- message data ---- */

/*
 * The dot filter of RFC 1939 §3 over raw buffered bytes: removes the
 * stuffed dot at the start of a line, turns CRLF into LF (a bare LF is taken
 * as a line end; a CR not before LF is data), and stops after the "."
 * line.  The CRLF before the terminating "." ends the last line and belongs
 * to the message (curl says the same).  States survive chunk boundaries, so
 * ".\r\n" split anywhere across reads is found, and a CR at the end of a
 * chunk is held until the next byte is known.
 */
enum dot_state {
	DOT_BOL,	/* at the start of a line */
	DOT_DOT,	/* a dot at the start of a line, dropped */
	DOT_DOT_CR,	/* ".\r" at the start of a line */
	DOT_TEXT,	/* inside a line */
	DOT_CR,		/* a CR held inside a line */
	DOT_END,	/* the terminating line was read */
};

struct dot_filter {
	enum dot_state	 st;
	uint64_t	 crs;	/* CRs dropped (for the size comparison) */
};

/* Filter in[0..inlen) into out (room for inlen + 1).  Returns the input
 * octets consumed: all, or up to the terminator's LF. */
static size_t
dot_filter_run(struct dot_filter *f, const char *in, size_t inlen, char *out,
    size_t *outlen_r)
{
	size_t i = 0, o = 0, end, seg;
	const char *nl;
	bool cr;

	while (i < inlen && f->st != DOT_END) {
		switch (f->st) {
		case DOT_BOL:
			if (in[i] == '.') {
				f->st = DOT_DOT;
				i++;
			} else
				f->st = DOT_TEXT;
			break;
		case DOT_DOT:
			if (in[i] == '\r') {
				f->st = DOT_DOT_CR;
				i++;
			} else if (in[i] == '\n') {
				f->st = DOT_END;	/* ".\n", tolerated */
				i++;
			} else
				f->st = DOT_TEXT;	/* "..", ".x": stuffed */
			break;
		case DOT_DOT_CR:
			if (in[i] == '\n') {
				f->st = DOT_END;
				i++;
			} else {
				out[o++] = '\r';	/* ".\rx": CR is data */
				f->st = DOT_TEXT;
			}
			break;
		case DOT_TEXT:
			nl = memchr(in + i, '\n', inlen - i);
			end = nl != NULL ? (size_t)(nl - in) : inlen;
			seg = end - i;
			cr = seg > 0 && in[end - 1] == '\r';
			memcpy(out + o, in + i, seg - cr);
			o += seg - cr;
			i = end;
			if (nl != NULL) {
				out[o++] = '\n';
				i++;
				f->crs += cr;
				f->st = DOT_BOL;
			} else if (cr)
				f->st = DOT_CR;
			break;
		case DOT_CR:
			if (in[i] == '\n') {
				out[o++] = '\n';
				i++;
				f->crs++;
				f->st = DOT_BOL;
			} else {
				out[o++] = '\r';
				f->st = DOT_TEXT;
			}
			break;
		case DOT_END:
			break;
		}
	}
	*outlen_r = o;
	return i;
}

/* doc/DESIGN.md §5.4: past 2 x the LIST size + RUNAWAY_SLACK: a runaway. */
static uint64_t
runaway_limit(uint64_t size)
{
	uint64_t slack = (uint64_t)RUNAWAY_SLACK;

	if (size > (UINT64_MAX - slack) / 2)
		return UINT64_MAX;
	return 2 * size + slack;
}

/*
 * Stream the body of the multi-line reply whose +OK was just read into the
 * sink: begin(), then data() per input chunk, up to the "." line; end() is
 * the caller's (pop3_retr_each calls it only once the next reply shows the
 * "." was the end: doc/DESIGN.md §5.3).  *octets_r gets what data() got.
 */
static int
stream_body(struct pop3 *s, const struct pop3_msg *m,
    const struct pop3_sink *sink, uint64_t *octets_r, struct pf_error *err)
{
	struct dot_filter f = { DOT_BOL, 0 };
	uint64_t wire = 0, octets = 0, limit = runaway_limit(m->size);
	const char *in;
	size_t avail, used, olen;
	ssize_t n;

	if (sink->begin != NULL && sink->begin(sink->ctx, m, err) == -1)
		return -1;
	/* doc/DESIGN.md §5.4: data, not lines: a minimum rate. */
	io_wait_begin(&s->wait, IO_WAIT_DATA);
	while (f.st != DOT_END) {
		in = linebuf_peek(s->lb, &avail);
		if (avail == 0) {
			n = linebuf_fill(s->lb, err);
			if (n == 0)
				return pf_error_set(err, PF_FAIL_TEMP,
				    "connection lost in the middle of "
				    "message %u", m->number);
			if (n < 0 && s->wait.expired) {
				char what[sizeof(err->what)];

				/* "read from HOST: stalled: less than 1
				 * KiB/s for N s", and which message. */
				snprintf(what, sizeof(what), "%s", err->what);
				return pf_error_set(err, err->category,
				    "%s in message %u", what, m->number);
			}
			if (n < 0)
				return -1;
			continue;
		}
		used = dot_filter_run(&f, in, avail, s->dbuf, &olen);
		linebuf_consume(s->lb, used);
		wire += used;
		if (wire > limit)
			return pf_error_set(err, PF_FAIL_PROTO,
			    "message %u does not end: more than %" PRIu64
			    " octets where LIST announced %" PRIu64,
			    m->number, limit, (uint64_t)m->size);
		if (olen > 0 && sink->data(sink->ctx, s->dbuf, olen, err) == -1)
			return -1;
		octets += olen;
	}
	set_state(s, SESSION_READY);
	log_trace("%s: < [%" PRIu64 " octets of message data]", s->account,
	    wire);
	/* doc/DESIGN.md §5.4: the "." is authoritative, LIST's size is not. */
	/* popfetch(1): a warning shown with -v (LOG_WARNING with --syslog). */
	if (octets + f.crs != m->size && log_verbosity() >= 1)
		log_warnx("%s: message %u has %" PRIu64 " octets, LIST said %"
		    PRIu64, s->account, m->number, octets + f.crs,
		    (uint64_t)m->size);
	*octets_r = octets;
	return 0;
}

/* QUIT has been tried: its outcome (quit_err) is final. */
static bool
quit_done(const struct pop3 *s)
{
	return s->state == SESSION_CLOSED || s->quit_err.category != PF_OK;
}

/* QUIT's outcome: 0, or -1 with err filled. */
static int
quit_outcome(const struct pop3 *s, struct pf_error *err)
{
	if (s->quit_err.category == PF_OK)
		return 0;
	*err = s->quit_err;
	return -1;
}

static int
send_quit(struct pop3 *s, struct pf_error *err)
{
	if (queue_cmd(s, CMD_QUIT, 0, "QUIT", err) == -1)
		return -1;
	return flush(s, err);
}

/* Read QUIT's reply; -ERR is "some deleted messages not removed" (RFC
 * 1939 §6). */
static int
quit_reply(struct pop3 *s, struct pf_error *err)
{
	enum reply_kind kind;
	const char *line, *text;

	if (read_reply(s, false, &kind, &line, &text, err) == -1)
		return -1;
	if (kind == REPLY_OK)
		return 0;
	return fail_line(err, PF_FAIL_TEMP, line, text,
	    "QUIT failed: deletions not committed");
}

void
pop3_expect_uidl(struct pop3 *s)
{
	s->uidl_expected = true;
}

/* Is what is left unread (a line cut short) nothing, or could it be the
 * start of a +OK or -ERR status line? */
static bool
cut_reply(const struct pop3 *s)
{
	static const char *const words[] = { "+OK", "-ERR" };
	size_t n, i, w;
	const char *p = linebuf_peek(s->lb, &n);

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
 * The connection failed (err, not a protocol error) while message `held`
 * waited for the reply after its ".": if nothing, or only the start of a
 * status line, came after that ".", nothing contradicts it and the
 * message stands: end() it (doc/DESIGN.md §5.3).  Other data does
 * contradict it, whole line or not.  An end() that fails replaces err.
 */
static void
held_stands(struct pop3 *s, const struct pop3_sink *sink,
    const struct pop3_msg *held, uint64_t octets, struct pf_error *err)
{
	struct pf_error eerr;

	if (held == NULL || err->category == PF_FAIL_PROTO || !cut_reply(s) ||
	    sink->end == NULL)
		return;
	if (sink->end(sink->ctx, held, octets, &eerr) == -1)
		*err = eerr;
}

/*
 * A window of pipelined commands, one per message (RETR, DELE): with
 * PIPELINING up to POP3_PIPELINE_WINDOW in flight, topped up in one write
 * once half of them are answered; without it, lock-step.  With `noop`, a
 * NOOP follows the last one (alone in lock-step).
 */
struct window {
	enum pop3_cmd		 cmd;
	const struct pop3_msg *const *msgs;	/* the messages, or */
	const struct pop3_listing *list;	/* those marked fetch, or */
	const unsigned		*numbers;	/* their numbers */
	size_t			 n;
	bool			 noop;
	size_t			 sent;		/* commands queued */
	size_t			 done;		/* their replies read */
	bool			 noop_sent;
	size_t			 send_at;	/* list: after the last sent */
	size_t			 read_at;	/* list: after the last read */
};

/* The list's next message marked fetch from *at on; *at moves past it. */
static const struct pop3_msg *
list_next(const struct pop3_listing *l, size_t *at)
{
	while (*at < l->count && !l->msgs[*at].fetch)
		(*at)++;
	return *at < l->count ? &l->msgs[(*at)++] : NULL;
}

/* The number of the next message to send a command for. */
static unsigned
window_send_number(struct window *w)
{
	if (w->msgs != NULL)
		return w->msgs[w->sent]->number;
	if (w->list != NULL)
		return list_next(w->list, &w->send_at)->number;
	return w->numbers[w->sent];
}

/*
 * Top the window up if it is due, then read the next reply: *i_r is the
 * index of the message it answers, or n for the NOOP.
 */
static int
window_next(struct pop3 *s, struct window *w, size_t *i_r,
    enum reply_kind *kind_r, const char **line_r, const char **text_r,
    struct pf_error *err)
{
	size_t size = s->capa.pipelining ? POP3_PIPELINE_WINDOW : 1;
	bool noop;

	if ((w->sent < w->n || (w->noop && !w->noop_sent)) &&
	    s->npending <= size / 2) {
		while (w->sent < w->n && s->npending < size) {
			unsigned num = window_send_number(w);

			if (queue_cmdf(s, w->cmd, num, err, "%s %u",
			    pop3_cmds[w->cmd].name, num) == -1)
				return -1;
			w->sent++;
		}
		if (w->noop && w->sent == w->n &&
		    (s->capa.pipelining || s->npending == 0)) {
			if (queue_cmd(s, CMD_NOOP, 0, "NOOP", err) == -1)
				return -1;
			w->noop_sent = true;
		}
		if (flush(s, err) == -1)
			return -1;
	}
	noop = pending_head(s)->cmd == CMD_NOOP;
	if (read_reply(s, false, kind_r, line_r, text_r, err) == -1)
		return -1;
	*i_r = noop ? w->n : w->done++;
	return 0;
}

/* Leave the window: replies still in flight will never be read. */
static void
window_abandon(struct pop3 *s)
{
	if (s->npending > 0)
		set_state(s, SESSION_BROKEN);
}

/*
 * The window of RETRs (doc/DESIGN.md §5.3).  A message whose "." has been
 * read is `held`: its end() waits for the next status line, which must be
 * a reply to what we sent next, else that "." was inside the message (an
 * unstuffed dot line) and the message is not delivered.  After the last
 * RETR a NOOP plays the next command's part.
 */
static int
retr_window(struct pop3 *s, struct window w, const struct pop3_sink *sink,
    struct pf_error *err)
{
	const struct pop3_msg *held = NULL, *m;
	size_t n = w.n;
	uint64_t held_octets = 0;
	enum reply_kind kind;
	const char *line, *text;
	size_t i;

	for (; n > 0;) {
		/* A failure to queue is the server's unasked-for data
		 * (PF_FAIL_PROTO): held_stands leaves `held` undelivered. */
		if (window_next(s, &w, &i, &kind, &line, &text, err) == -1) {
			held_stands(s, sink, held, held_octets, err);
			return -1;
		}
		if (held != NULL) {
			m = held;
			held = NULL;
			if (sink->end != NULL &&
			    sink->end(sink->ctx, m, held_octets, err) == -1) {
				set_state(s, SESSION_BROKEN);
				return -1;
			}
		}
		if (i == n)
			break;		/* NOOP's +OK or -ERR: either is a reply */
		m = w.msgs != NULL ? w.msgs[i] : list_next(w.list, &w.read_at);
		if (kind == REPLY_ERR) {
			struct pf_error why;

			/* doc/DESIGN.md §5.2: one refused message blocks
			 * nothing; the others are still in the window. */
			fail_line(&why, PF_FAIL_PROTO, line, text,
			    "RETR %u failed", m->number);
			if (sink->refused == NULL) {
				window_abandon(s);
				*err = why;
				return -1;
			}
			if (sink->refused(sink->ctx, m, &why, err) == -1) {
				set_state(s, SESSION_BROKEN);
				return -1;
			}
			continue;
		}
		if (stream_body(s, m, sink, &held_octets, err) == -1) {
			set_state(s, SESSION_BROKEN);
			return -1;
		}
		held = m;
	}
	/*
	 * Every byte is in: QUIT now, its reply read (if at all: see
	 * POP3_QUIT_NOWAIT) after the caller's group commit.  Not earlier:
	 * a server may close as soon as it has handled QUIT, dropping output
	 * we have not read yet (Dovecot does, with a slow client).
	 */
	if (s->quit_after_retr && s->state == SESSION_READY &&
	    !quit_done(s)) {
		if (send_quit(s, err) == -1)
			return -1;
		set_state(s, SESSION_QUIT_SENT);
	}
	return 0;
}

int
pop3_retr_each(struct pop3 *s, const struct pop3_msg *const *msgs, size_t n,
    const struct pop3_sink *sink, struct pf_error *err)
{
	struct window w = { .cmd = CMD_RETR, .msgs = msgs, .n = n,
	    .noop = true };

	return retr_window(s, w, sink, err);
}

int
pop3_retr_listed(struct pop3 *s, const struct pop3_listing *l,
    const struct pop3_sink *sink, struct pf_error *err)
{
	struct window w = { .cmd = CMD_RETR, .list = l, .noop = true };
	size_t i;

	for (i = 0; i < l->count; i++)
		w.n += l->msgs[i].fetch;
	return retr_window(s, w, sink, err);
}

int
pop3_top(struct pop3 *s, const struct pop3_msg *m, unsigned lines,
    const struct pop3_sink *sink, struct pf_error *err)
{
	uint64_t octets;
	enum reply_kind kind;
	const char *line, *text;

	if (queue_cmdf(s, CMD_TOP, m->number, err, "TOP %u %u", m->number,
	    lines) == -1 || flush(s, err) == -1 ||
	    read_reply(s, false, &kind, &line, &text, err) == -1)
		return -1;
	if (kind == REPLY_ERR)
		return fail_line(err, PF_FAIL_PROTO, line, text,
		    "TOP %u failed", m->number);
	if (stream_body(s, m, sink, &octets, err) == -1 ||
	    (sink->end != NULL && sink->end(sink->ctx, m, octets, err) == -1)) {
		set_state(s, SESSION_BROKEN);
		return -1;
	}
	return 0;
}

int
pop3_dele_each(struct pop3 *s, const unsigned *numbers, size_t n,
    struct pf_error *err)
{
	struct window w = { .cmd = CMD_DELE, .numbers = numbers, .n = n };
	enum reply_kind kind;
	const char *line, *text;
	size_t i;

	while (w.done < n) {
		if (window_next(s, &w, &i, &kind, &line, &text, err) == -1)
			return -1;
		if (kind == REPLY_ERR) {
			window_abandon(s);
			return fail_line(err, PF_FAIL_PROTO, line, text,
			    "DELE %u failed", numbers[i]);
		}
	}
	return 0;
}

int
pop3_quit(struct pop3 *s, enum pop3_quit_mode mode, struct pf_error *err)
{
	if (mode == POP3_QUIT_AFTER_RETR) {
		s->quit_after_retr = true;
		return 0;
	}
	if (!quit_done(s)) {
		if (s->state != SESSION_QUIT_SENT)
			(void)send_quit(s, &s->quit_err);
		if (mode == POP3_QUIT_COMMIT && s->quit_err.category == PF_OK)
			(void)quit_reply(s, &s->quit_err);
		set_state(s, SESSION_CLOSED);
	}
	return quit_outcome(s, err);
}
