/*
 * pop3.h - the POP3 client: one session, sequential blocking commands.
 *
 * RFC 1939 (POP3), RFC 2449 (CAPA, PIPELINING, RESP-CODES), RFC 2595 (STLS),
 * RFC 5034 (AUTH), RFC 5802/7677 (SCRAM-SHA-256), XOAUTH2 (Google/Microsoft).
 *
 * Each command function sends, reads, validates and fills a result.  The
 * account run (fetcher/run.c, doc/DESIGN.md §3.1 steps 3-7) calls:
 *
 *     pop3_greeting_capa -> [pop3_stls, handshake, pop3_capa] -> pop3_auth
 *       -> pop3_list_uidls [-> pop3_list_sizes], or pop3_list_messages
 *       -> pop3_retr_each -> pop3_dele_each -> pop3_quit
 *
 * (`check` ends with pop3_stat instead, a dry run previews with pop3_top.)
 *
 * The session never touches a socket: it reads and writes through the two
 * function pointers given to pop3_new() (conn_read/conn_write from net.h, or
 * a test feeder), so STLS is "pop3_stls(), then conn_starttls() on the same
 * transport, then pop3_capa() again".
 *
 * Time (doc/DESIGN.md §5.4).  The session tells the transport what it
 * waits for (struct io_wait, net.h): each status, CAPA, UIDL or LIST line is
 * one wait (IO_WAIT_LINE: whole within the timeout, however the bytes
 * trickle in), and a message's data another (IO_WAIT_DATA: a stall below
 * NET_STALL_RATE_KIB, reported as "... stalled: less than 1 KiB/s for N s
 * in message M").  The deadlines themselves are the transport's.
 *
 * Errors.  Every function returns 0 on success or -1 with `err` filled; the
 * category is decided here (popfetch(1), EXIT STATUS):
 *   PF_FAIL_TEMP   end of stream ("connection lost", "connection lost in the
 *                  middle of message N"), -ERR [IN-USE], -ERR [SYS/TEMP] or
 *                  -ERR [LOGIN-DELAY] anywhere, -ERR to the greeting, and
 *                  whatever the transport reports (timeouts);
 *   PF_FAIL_PROTO  a reply that is neither +OK nor -ERR, a status line past
 *                  POP3_LINE_MAX or holding control characters, a UIDL/LIST/
 *                  STAT line that does not parse, a runaway message, -ERR to
 *                  a command the server must accept (LIST, RETR, DELE, ...);
 *   PF_FAIL_AUTH   -ERR [AUTH] anywhere, any rejected login, a SCRAM server
 *                  that fails to prove itself;
 *   PF_FAIL_TLS    STLS not offered, refused, or followed by injected data;
 *   PF_FAIL_CONFIG a secret with CR/LF, or a clear-text password without TLS
 *                  and without allow_plaintext (defence in depth: config/
 *                  should have refused it already);
 *   sink errors    passed through unchanged (see struct pop3_sink).
 * The server's own words (untrusted data!) are always attached with
 * pf_error_set_server(), sanitised and cut.
 *
 * After a failure the session is usually out of step with the server (a
 * reply half read, pipelined commands outstanding): drop the connection.
 * pop3_is_synchronised() tells when a polite QUIT is still meaningful (e.g.
 * after a rejected login).
 *
 * Tracing (-vv): every command is traced as "ACCOUNT: > LINE" through one
 * send path that masks secrets (pop3_trace_mask()), every status/list line
 * as "ACCOUNT: < LINE"; message data only as "< [N octets of message data]".
 */
#ifndef POPFETCH_POP3_H
#define POPFETCH_POP3_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "conf_auth.h"
#include "error.h"
#include "net.h"
#include "params.h"
#include "strpool.h"

struct pop3;

/*
 * The transport: exactly the contracts of conn_read()/conn_write() (net.h).
 * A read gets the session's current wait (a feeder without a clock, as
 * the fuzz harnesses', may ignore it).
 */
typedef ssize_t (*pop3_read_fn)(void *ctx, void *buf, size_t len,
    struct io_wait *w, struct pf_error *err);
				/* > 0 bytes, 0 end of stream, -1 error */
typedef int (*pop3_write_fn)(void *ctx, const void *buf, size_t len,
    struct pf_error *err);	/* 0 (all written) or -1 */

/* What CAPA said (RFC 2449 §6).  All strings: untrusted data! */
struct pop3_capa {
	bool	 known;		/* the server answered CAPA with +OK */
	bool	 top;
	bool	 uidl;
	bool	 user;
	bool	 pipelining;
	bool	 stls;
	bool	 resp_codes;
	bool	 auth_resp_code;
	char	**sasl;		/* SASL mechanism names as sent (nsasl of them) */
	size_t	 nsasl;
	char	**lines;	/* every capability line as sent, for `check` */
	size_t	 nlines;
};

/*
 * A message's unique-id, held in the listing entry's own 8 octets when it
 * fits (the listing's memory, doc/DESIGN.md §5.4): up to 8 characters as
 * they are, or 16 hexadecimal digits of one case packed 4 bits each
 * (Dovecot's default, %08Xu%08Xv).  Others live in the listing's string
 * pool.  Read it with pop3_msg_uidl, set it with pop3_msg_set_uidl.
 */
enum pop3_uid_form {
	POP3_UID_POINTER = 0,	/* uid.str, NUL-terminated; NULL: none */
	POP3_UID_SHORT,		/* uid.chars: 1..8 octets, NUL-padded */
	POP3_UID_HEX_UPPER,	/* uid.packed: 16 digits 0-9A-F, first
				   digit in the highest 4 bits */
	POP3_UID_HEX_LOWER	/* uid.packed: 16 digits 0-9a-f */
};

union pop3_uid {
	char		*str;
	char		 chars[8];
	uint64_t	 packed;
};

/* Room for a unique-id that pop3_msg_uidl decodes, and its NUL. */
#define POP3_UIDL_BUF	UIDL_INLINE_BUF

/* One message as listed by LIST (and UIDL). */
struct pop3_msg {
	union pop3_uid	 uid;		/* 0x21..0x7E, 1..POP3_UIDL_MAX chars,
					   or none: pop3_msg_uidl */
	/* 16 bytes a message, not 24: the listing lives all run (issue 17).
	 * Bit-fields: cast size to uint64_t for printf. */
	uint64_t	 size : POP3_SIZE_BITS;	/* octets, as LIST announced
					   (approximate!), at most
					   POP3_SIZE_MAX */
	uint64_t	 number : POP3_NUMBER_BITS; /* 1 .. POP3_MESSAGES_MAX */
	uint64_t	 known : 1;	/* not pop3.c's (false here): in the
					   seen-list, as account_mark_known
					   and the run mark it */
	uint64_t	 fetch : 1;	/* not pop3.c's (false here): to be
					   fetched, as account_select marks it
					   (pop3_retr_listed) */
	uint64_t	 uid_form : 2;	/* enum pop3_uid_form */
};

/* m's unique-id: uid.str, or an inline one decoded into buf; NULL when the
 * message has none (a server without UIDL). */
const char	*pop3_msg_uidl(const struct pop3_msg *m,
		    char buf[POP3_UIDL_BUF]);

/* pop3_msg_uidl, or `none` for a message without one (for messages). */
static inline const char *
pop3_msg_uidl_or(const struct pop3_msg *m, char buf[POP3_UIDL_BUF],
    const char *none)
{
	const char *u = pop3_msg_uidl(m, buf);

	return u != NULL ? u : none;
}

static inline bool
pop3_msg_has_uidl(const struct pop3_msg *m)
{
	return m->uid_form != POP3_UID_POINTER || m->uid.str != NULL;
}

/* Give m the unique-id s[0..n) (n >= 1, no NUL among them): inline when it
 * fits, else a copy in `pool`, or with pool NULL one of its own (which
 * pop3_listing_free frees in a listing without a pool). */
void		 pop3_msg_set_uidl(struct pop3_msg *m, const char *s, size_t n,
		    struct strpool *pool);

/* strcmp of two messages' unique-ids (both must have one). */
int		 pop3_msg_uidl_cmp(const struct pop3_msg *a,
		    const struct pop3_msg *b);

/* The listing: messages in message-number order, whatever order the server
 * listed them in. */
struct pop3_listing {
	struct pop3_msg	*msgs;
	size_t		 count;
	struct strpool	*uidls;		/* holds the msgs[] unique-ids that
					   are not inline; NULL: each is its
					   own allocation */
	bool		 has_uidl;	/* false: the server said -ERR to UIDL */
	bool		 sizes_known;	/* false: pop3_list_uidls, sizes 0 */
};

/*
 * Where message data goes (RETR, TOP).  For each message: begin(), then
 * data() any number of times with dot-unstuffed, LF-terminated bytes in large
 * chunks (the CRLF before the final "." belongs to the message, as LF), then
 * end() with the number of octets passed to data().  end() is not called for
 * a message that did not arrive whole.  A callback returns 0, or -1 with err
 * filled (any category): the transfer stops at once and the function returns
 * -1 with that error; the connection must then be dropped without QUIT.
 * `m` is borrowed (the caller's own pointer).
 */
struct pop3_sink {
	int	(*begin)(void *ctx, const struct pop3_msg *m,
		    struct pf_error *err);
	int	(*data)(void *ctx, const char *buf, size_t len,
		    struct pf_error *err);
	int	(*end)(void *ctx, const struct pop3_msg *m, uint64_t octets,
		    struct pf_error *err);
	void	*ctx;
	/* RETR only, optional: the server refused message m (-ERR; `why`
	 * says so, with its words).  Return 0 to go on with the next
	 * message, -1 (err filled) to stop.  NULL: a refusal ends
	 * pop3_retr_each with `why`. */
	int	(*refused)(void *ctx, const struct pop3_msg *m,
		    const struct pf_error *why, struct pf_error *err);
};

/* What pop3_auth() needs.  All borrowed. */
struct pop3_auth_params {
	enum conf_auth	 mode;
	const char	*user;
	const char	*secret;	/* password, or the OAuth2 token (xoauth2) */
	bool		 tls_active;	/* the transport is TLS (implicit or STLS) */
	bool		 allow_plaintext; /* allow_plaintext_password */
	const char	*host;		/* OAUTHBEARER's host=; NULL: none */
	unsigned	 port;		/* OAUTHBEARER's port=; 0: none */
};

/*
 * Start a session.  `account_name` is copied (it prefixes trace lines);
 * `read`, `write` and `io_ctx` are borrowed and must outlive the session.
 * Never fails.  Free with pop3_free().
 */
struct pop3 *pop3_new(const char *account_name, pop3_read_fn read,
	    pop3_write_fn write, void *io_ctx);

/* Free the session (the transport is not touched), set *s to NULL. */
void	pop3_free(struct pop3 **s);

/*
 * Read the greeting (RFC 1939 §4) and keep its APOP timestamp ("<...@...>",
 * §7) if any.  Errors: PF_FAIL_TEMP (-ERR greeting, connection lost),
 * PF_FAIL_PROTO (garbage).
 */
int	pop3_greeting(struct pop3 *s, struct pf_error *err);

/* The APOP timestamp of the greeting, or NULL.  Valid until pop3_free(). */
const char *pop3_apop_timestamp(const struct pop3 *s);

/*
 * The greeting and CAPA in one round trip, for a new session: CAPA is
 * sent at once and read after the greeting (the server reads it once it
 * has greeted).  Same results and errors as pop3_greeting, then
 * pop3_capa.
 */
int	pop3_greeting_capa(struct pop3 *s, struct pf_error *err);

/*
 * CAPA (RFC 2449 §5).  On success *capa_r (may be NULL) points to the
 * session's copy, valid until the next pop3_capa()/pop3_stls()/pop3_free().
 * A server answering -ERR has no capabilities: success, capa->known false.
 * At most POP3_CAPA_LINES_MAX lines.  Errors: PF_FAIL_PROTO, PF_FAIL_TEMP.
 */
int	pop3_capa(struct pop3 *s, const struct pop3_capa **capa_r,
	    struct pf_error *err);

/* The capabilities of the last pop3_capa() (all false before). */
const struct pop3_capa *pop3_capabilities(const struct pop3 *s);

/* True if the server listed `mech` in its SASL capability (any case). */
bool	pop3_has_sasl(const struct pop3 *s, const char *mech);

/*
 * STLS (RFC 2595 §4).  On success the caller must run the TLS handshake on
 * its transport before anything else, then call pop3_capa() again: the old
 * capabilities are forgotten here.  Errors: PF_FAIL_TLS ("STARTTLS not
 * offered" when CAPA is known and lacks STLS; "server refused STLS" on -ERR;
 * data sent after the +OK, before the handshake: an injection attempt),
 * PF_FAIL_TEMP, PF_FAIL_PROTO.
 */
int	pop3_stls(struct pop3 *s, struct pf_error *err);

/*
 * Log in (RFC 1939 §7 USER/PASS and APOP, RFC 5034 AUTH with PLAIN,
 * SCRAM-SHA-256, XOAUTH2), following popfetch.conf(5) for auth = auto: SCRAM-SHA-256
 * if offered, then PLAIN, then USER/PASS (these two only with tls_active or
 * allow_plaintext), then APOP if the greeting had a timestamp.  Inside TLS a
 * SCRAM attempt the server rejects is followed by one attempt with the next
 * mechanism; any other rejection is final.  An explicit mode uses only its
 * mechanism.  Uses SASL-IR (RFC 5034 §4) when CAPA listed SASL and the
 * command fits 255 octets, the two-step form otherwise (and once more in
 * the two-step form when a server with AUTH-RESP-CODE refuses the initial
 * response with a -ERR that has no response code).  Call pop3_capa()
 * first (after STLS) so that the mechanisms are known.
 * Errors: PF_FAIL_AUTH (rejected; no usable mechanism; the mechanism of an
 * explicit mode not offered; SCRAM "server signature mismatch"),
 * PF_FAIL_TEMP ([IN-USE], [SYS/TEMP], [LOGIN-DELAY], connection lost),
 * PF_FAIL_PROTO (malformed exchange), PF_FAIL_CONFIG (see above).
 * The secret is wiped from every buffer of ours once sent.
 */
int	pop3_auth(struct pop3 *s, const struct pop3_auth_params *p,
	    struct pf_error *err);

/* The mechanism that logged in ("SCRAM-SHA-256", "PLAIN", "XOAUTH2",
 * "USER", "APOP"), or NULL before. */
const char *pop3_auth_mechanism(const struct pop3 *s);

/*
 * STAT (RFC 1939 §5).  Fills *count_r and *size_r (either may be NULL).
 * Errors: PF_FAIL_PROTO (-ERR, malformed), PF_FAIL_TEMP.
 */
int	pop3_stat(struct pop3 *s, unsigned *count_r, uint64_t *size_r,
	    struct pf_error *err);

/*
 * UIDL and LIST (RFC 1939 §5, §7), sent together when PIPELINING is
 * advertised.  Every line is validated once: number (digits only, 1 ..
 * POP3_MESSAGES_MAX, and <= STAT's count if pop3_stat() ran), size (digits
 * only; RFC 1939 §5 lets " more text" follow it, ignored), UIDL charset
 * 0x21..0x7E (so no space or trailing junk) and length <= POP3_UIDL_MAX, no
 * duplicate numbers or UIDLs, every number in both lists; all unique-ids
 * together at most POP3_UIDL_TOTAL_MAX octets ("UIDL listing too large").
 * -ERR to UIDL is "no UIDL" (success with has_uidl false and uidl NULL)
 * only from a server whose CAPA did not list UIDL, in a session not marked
 * with pop3_expect_uidl; otherwise it is PF_FAIL_TEMP (doc/DESIGN.md §5.1).
 * On success *listing_r is a new listing (free with pop3_listing_free()).
 * Errors: PF_FAIL_PROTO with the offending line as the server's words,
 * PF_FAIL_TEMP.
 */
int	pop3_list_messages(struct pop3 *s, struct pop3_listing **listing_r,
	    struct pf_error *err);

/* The account's seen-list holds UIDLs of this server: -ERR to UIDL is then
 * a temporary failure, never "no UIDL". */
void	pop3_expect_uidl(struct pop3 *s);

/*
 * UIDL alone, for a run that may need no sizes (nothing new): a listing
 * like pop3_list_messages', with every size 0 and sizes_known false.  A
 * server without UIDL gets LIST as in pop3_list_messages (sizes known).
 * Same errors.
 */
int	pop3_list_uidls(struct pop3 *s, struct pop3_listing **listing_r,
	    struct pf_error *err);

/*
 * LIST, to fill the sizes of a listing from pop3_list_uidls (nothing to
 * do if they are known).  LIST must name exactly UIDL's messages
 * (PF_FAIL_PROTO otherwise, as a malformed line).
 */
int	pop3_list_sizes(struct pop3 *s, struct pop3_listing *l,
	    struct pf_error *err);

void	pop3_listing_free(struct pop3_listing **l);

/*
 * RETR each of msgs[0..n) (borrowed), in order, streaming into `sink`; with
 * PIPELINING at most POP3_PIPELINE_WINDOW RETRs are in flight, otherwise
 * lock-step; a NOOP follows the last RETR.  A message ends at its "." line,
 * whatever LIST said (a differing size is a warning with -v), but end() is
 * called only once the status line after it has been read and is a reply
 * (to the next RETR or the NOOP): if it is not, the "." was part of the
 * message, end() is never called for it, and the result is PF_FAIL_PROTO
 * ("unexpected reply to ...", or "server sent data nobody asked for");
 * a connection that ends or stalls after the "." with nothing more read,
 * or only the start of a +OK/-ERR line, leaves the "." standing: end() is
 * called, then the transport error returned (doc/DESIGN.md §5.3).  A -ERR
 * to a RETR goes to sink->refused, and the others go on (§5.2).  Errors: PF_FAIL_TEMP ("connection
 * lost in the middle of message N"; end() not called), PF_FAIL_PROTO (-ERR
 * to RETR without sink->refused, a runaway message: more than 2 x size +
 * RUNAWAY_SLACK octets, or out of step as above; end() not called), any
 * sink error.
 */
int	pop3_retr_each(struct pop3 *s, const struct pop3_msg *const *msgs,
	    size_t n, const struct pop3_sink *sink, struct pf_error *err);

/* pop3_retr_each of the listing's messages marked fetch, in listing order,
 * with no array of them (issue 17: memory at 20,000 messages). */
int	pop3_retr_listed(struct pop3 *s, const struct pop3_listing *l,
	    const struct pop3_sink *sink, struct pf_error *err);

/*
 * TOP m->number `lines` (RFC 1939 §7) into `sink`, as for RETR (`lines` 0:
 * the header only).  A -ERR leaves the session synchronised (PF_FAIL_PROTO,
 * the server's words attached).
 */
int	pop3_top(struct pop3 *s, const struct pop3_msg *m, unsigned lines,
	    const struct pop3_sink *sink, struct pf_error *err);

/*
 * DELE each of numbers[0..n), pipelined in a window when PIPELINING is
 * advertised.  Deletions take effect only at an acknowledged QUIT.  Errors:
 * PF_FAIL_PROTO (-ERR to a DELE), PF_FAIL_TEMP.
 */
int	pop3_dele_each(struct pop3 *s, const unsigned *numbers, size_t n,
	    struct pf_error *err);

/* How pop3_quit ends the session (doc/DESIGN.md §3.1 step 7). */
enum pop3_quit_mode {
	POP3_QUIT_COMMIT,	/* send QUIT, read its reply */
	POP3_QUIT_NOWAIT,	/* send QUIT, never read its reply */
	POP3_QUIT_AFTER_RETR,	/* nothing yet: QUIT after the next RETRs */
};

/*
 * QUIT (RFC 1939 §6), sent once per session; a later call sends and reads
 * nothing and reports the first one's outcome.
 *   POP3_QUIT_COMMIT: send QUIT (unless already sent) and read its reply.
 *     Returns 0 only on +OK: only then have this session's DELEs been
 *     committed.  Errors: PF_FAIL_TEMP (-ERR "some deleted messages not
 *     removed", connection lost), PF_FAIL_PROTO.
 *   POP3_QUIT_NOWAIT: for a session that deleted nothing.  Send QUIT
 *     (unless already sent) and never wait for its reply: it can tell
 *     nothing, and the caller saves a round trip.  Errors: as for sending.
 *   POP3_QUIT_AFTER_RETR: for a session that will delete nothing.  Send
 *     nothing now; the next successful pop3_retr_each sends QUIT once the
 *     reply after its last message is read (never with the RETRs: a server
 *     may close once it has handled QUIT, dropping replies still unread),
 *     so a later COMMIT only reads the reply and that round trip overlaps
 *     the caller's group commit.  Returns 0.
 */
int	pop3_quit(struct pop3 *s, enum pop3_quit_mode mode,
	    struct pf_error *err);

/* True when no command is in flight and no reply is half read. */
bool	pop3_is_synchronised(const struct pop3 *s);

/*
 * The text a command line is traced as: `line` (without CRLF) with its
 * secrets replaced by "****": "PASS ****", "APOP alice ****", "AUTH PLAIN
 * ****" (the initial response; "AUTH PLAIN" alone stays), and, when
 * `sasl_continuation` is true, the whole line ("****").  Pure; always
 * NUL-terminates `out` (outsz > 0) and returns it.
 */
const char *pop3_trace_mask(const char *line, bool sasl_continuation,
	    char *out, size_t outsz);

#endif
