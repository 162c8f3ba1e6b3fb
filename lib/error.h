/*
 * error.h - the one error object that every layer fills and `run` reports.
 *
 * A failure carries a category (which maps to one sysexits code, popfetch(1), EXIT STATUS),
 * our own description of what failed, and, separately, the server's words.
 * That split gives popfetch(1)'s error line directly:
 *     popfetch: work: <what failed>: <server's words>
 * The place that detects a failure picks its category; callers pass it up.
 */
#ifndef POPFETCH_ERROR_H
#define POPFETCH_ERROR_H

#include <stddef.h>

enum pf_fail {
	PF_OK = 0,
	PF_FAIL_USAGE,		/* 64: command-line usage error */
	PF_FAIL_INTERNAL,	/* 70: our own bug or an impossible state */
	PF_FAIL_IO,		/* 74: local I/O: Maildir, state database, disk full */
	PF_FAIL_TEMP,		/* 75: DNS, connect, timeout, lost connection, IN-USE, locked */
	PF_FAIL_TLS,		/* 69: handshake, verification, STLS missing/refused */
	PF_FAIL_PROTO,		/* 76: the server broke the protocol */
	PF_FAIL_AUTH,		/* 77: authentication rejected */
	PF_FAIL_CONFIG,		/* 78: configuration error */
};

#define PF_ERROR_WHAT_MAX	1024
#define PF_ERROR_SERVER_MAX	512

struct pf_error {
	enum pf_fail	category;
	/* our words, never a secret; control bytes and invalid UTF-8 escaped
	 * as "\xNN" (a backslash stays as it is) */
	char		what[PF_ERROR_WHAT_MAX];
	/* server's words, escaped (pf_error_set_server); may be "" */
	char		server[PF_ERROR_SERVER_MAX];
};

/* Reset an error object to "no error". */
void	pf_error_clear(struct pf_error *err);

/*
 * Record a failure: category and our description (printf format).  Clears any
 * server text left from before.  Returns -1 so callers can `return
 * pf_error_set(...)`.
 */
int	pf_error_set(struct pf_error *err, enum pf_fail category,
	    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/*
 * As pf_error_set, and appends ": " and strerror(errno) (errno as it was on
 * entry) to the description, as in "rename(tmp/x, new/x): No space left".
 */
int	pf_error_set_errno(struct pf_error *err, enum pf_fail category,
	    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/*
 * Attach the server's words (untrusted data!) to an error already set.  The
 * text is trimmed of CR/LF and escaped with pf_escape() (escape.h): control
 * bytes (C0, DEL, C1), bytes that are not valid UTF-8 and a backslash
 * become "\xNN" / "\\", valid UTF-8 text stays as it is.  It is cut
 * with "..." at PF_ERROR_SERVER_MAX, never inside an escape or a character.
 * `len` may be (size_t)-1 for a C string.
 */
void	pf_error_set_server(struct pf_error *err, const char *text, size_t len);

/* The sysexits code for a category (popfetch(1), EXIT STATUS).  PF_OK maps to 0. */
int	pf_exit_code(enum pf_fail category);

/*
 * The meaning of an exit code in a few words, for `status` ("ok",
 * "temporary failure", ...).  Unknown codes give "exit N" in a static buffer.
 */
const char *pf_exit_meaning(int code);

/* Format "what: server" (or "what" alone) into buf; returns buf. */
const char *pf_error_format(const struct pf_error *err, char *buf, size_t size);

#endif
