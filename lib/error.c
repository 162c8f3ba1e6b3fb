/* error.c - the error object and the one map from category to exit code. */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "escape.h"

void
pf_error_clear(struct pf_error *err)
{
	err->category = PF_OK;
	err->what[0] = '\0';
	err->server[0] = '\0';
}

/*
 * Our words are escaped too, keeping backslashes (PF_ESCAPE_KEEP_BACKSLASH):
 * they are formatted from paths, account names, unique-ids and the like,
 * which are not always ours to trust, and whoever prints pf_error_format()
 * (a log line, stdout, a status report) then gets text with no control
 * byte.  Keeping backslashes leaves paths readable and leaves text that a
 * caller escaped with pf_escape() unchanged.
 */
static void __attribute__((format(printf, 3, 0)))
set_what(struct pf_error *err, enum pf_fail category, const char *fmt,
    va_list ap)
{
	char raw[PF_ERROR_WHAT_MAX];
	size_t len, used;
	int n;

	err->category = category;
	err->server[0] = '\0';
	n = vsnprintf(raw, sizeof(raw), fmt, ap);
	if (n < 0)
		n = 0;
	len = (size_t)n < sizeof(raw) ? (size_t)n : sizeof(raw) - 1;
	pf_escape_ext(raw, len, err->what, sizeof(err->what),
	    PF_ESCAPE_KEEP_BACKSLASH, &used);
	if (used < (size_t)n) {
		/* Cut: leave room for "..." after the last whole character. */
		used = pf_escape_ext(raw, len, err->what, sizeof(err->what) - 3,
		    PF_ESCAPE_KEEP_BACKSLASH, NULL);
		memcpy(err->what + used, "...", 4);
	}
}

int
pf_error_set(struct pf_error *err, enum pf_fail category, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return -1;
	va_start(ap, fmt);
	set_what(err, category, fmt, ap);
	va_end(ap);
	return -1;
}

int
pf_error_set_errno(struct pf_error *err, enum pf_fail category,
    const char *fmt, ...)
{
	int saved = errno;
	size_t len;
	va_list ap;

	if (err == NULL)
		return -1;
	va_start(ap, fmt);
	set_what(err, category, fmt, ap);
	va_end(ap);
	len = strlen(err->what);
	if (len < sizeof(err->what) - 1)
		snprintf(err->what + len, sizeof(err->what) - len, ": %s",
		    strerror(saved));
	errno = saved;
	return -1;
}

/*
 * The server's words are escaped fully (pf_escape(): a backslash too), so
 * that the error line shows exactly what the server sent: "\x9b" is the
 * byte 0x9B, never the four characters.
 */
void
pf_error_set_server(struct pf_error *err, const char *text, size_t len)
{
	size_t used, o;

	if (err == NULL || text == NULL)
		return;
	if (len == (size_t)-1)
		len = strlen(text);
	while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r'))
		len--;
	/* Room for "..." if it does not all fit. */
	o = pf_escape_ext(text, len, err->server, sizeof(err->server) - 3, 0,
	    &used);
	if (used < len)
		memcpy(err->server + o, "...", 4);
}

int
pf_exit_code(enum pf_fail category)
{
	switch (category) {
	case PF_OK:		return 0;
	case PF_FAIL_USAGE:	return 64;
	case PF_FAIL_INTERNAL:	return 70;
	case PF_FAIL_IO:	return 74;
	case PF_FAIL_TEMP:	return 75;
	case PF_FAIL_TLS:	return 69;
	case PF_FAIL_PROTO:	return 76;
	case PF_FAIL_AUTH:	return 77;
	case PF_FAIL_CONFIG:	return 78;
	}
	return 70;
}

const char *
pf_exit_meaning(int code)
{
	static char buf[32];

	switch (code) {
	case 0:		return "ok";
	case 64:	return "usage error";
	case 69:	return "TLS failure";
	case 70:	return "internal error";
	case 74:	return "local I/O error";
	case 75:	return "temporary failure";
	case 76:	return "protocol error";
	case 77:	return "authentication rejected";
	case 78:	return "configuration error";
	}
	snprintf(buf, sizeof(buf), "exit %d", code);
	return buf;
}

const char *
pf_error_format(const struct pf_error *err, char *buf, size_t size)
{
	if (err->server[0] != '\0')
		snprintf(buf, size, "%s: %s", err->what, err->server);
	else
		snprintf(buf, size, "%s", err->what);
	return buf;
}
