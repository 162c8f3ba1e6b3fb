/*
 * conf.c - the configuration file (popfetch.conf(5)): libconfuse in, plain structs out.
 *
 * This is the only libconfuse user.  How it is put together:
 *
 *  - Every scalar option is a libconfuse string with CFGF_NODEFAULT, both at
 *    the top level and inside `account NAME { }`.  "Set in this scope" is
 *    then simply cfg_size() > 0, and typing, ranges, defaults and top-level
 *    inheritance all live in our own table (opt_table) instead of being
 *    split between libconfuse's macros and our code.
 *  - One parse callback (opt_parse_cb) checks each value while libconfuse
 *    still knows its line, and records that line, so that the checks that
 *    need the whole file (a top-level default may follow the accounts) can
 *    cite it later.
 *  - Every libconfuse message goes through conf_errfunc, so all errors read
 *    "FILE:LINE: account NAME: option OPT: problem" (parts left out where
 *    they do not apply).  The first error in the file wins.
 *  - Before libconfuse sees the text, conf_scan() (a model of its lexer)
 *    blanks the comments, whose lines libconfuse miscounts, and looks for
 *    what it would silently mangle: a NUL byte, raw or from a "\0"/"\x00"
 *    escape, a string not closed on its own line, and ${NAME} of a
 *    variable that is not set (libconfuse makes it "").  Why each of these
 *    needs our own code is said there.
 *
 * libconfuse gives callbacks no user pointer and its lexer is a global flex
 * scanner, so the parse in progress lives in the file-level `parse`:
 * conf_load() is not reentrant (it runs once, before any -j fork).
 */
#include "config.h"

#include <sys/stat.h>
#include <sys/types.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <confuse.h>

#include "conf.h"
#include "error.h"
#include "fsutil.h"
#include "params.h"
#include "xmalloc.h"

#define CONF_SYSTEM_PATH	"/etc/popfetch.conf"
#define CONF_PORT_POP3S		995
#define CONF_PORT_POP3		110

/* How an option's text is checked and converted. */
enum opt_kind {
	KIND_TEXT,		/* printable text: host, user */
	KIND_PATH,		/* printable text, `~` expanded */
	KIND_COMMAND,		/* password_command: also tab and newline */
	KIND_SHELL,		/* filter, mda: as KIND_COMMAND, not blank */
	KIND_SECRET,		/* password: anything but CR, LF (and NUL) */
	KIND_NUMBER,		/* decimal, def->min..def->max */
	KIND_BOOL,
	KIND_TLS,
	KIND_AUTH,
	KIND_FINGERPRINT,
	KIND_PROVIDER,		/* oauth2_provider */
	KIND_URL,		/* oauth2_*_url: an https: URL */
};

#define SCOPE_TOP	0x1	/* may stand at the top level */
#define SCOPE_ACCOUNT	0x2	/* may stand inside account { } */


struct opt_def {
	const char	*name;
	enum opt_kind	 kind;
	unsigned	 scope;
	uint64_t	 min, max;	/* KIND_NUMBER only */
};

#define BOTH	(SCOPE_TOP | SCOPE_ACCOUNT)

/* popfetch.conf(5): every key, where it may stand, and its range. */
static const struct opt_def opt_table[CONF_OPT_COUNT] = {
	[CONF_OPT_STATE_DIR] =	{ "state_dir", KIND_PATH, SCOPE_TOP, 0, 0 },
	[CONF_OPT_TIMEOUT] =		{ "timeout", KIND_NUMBER, BOTH, 1, CONF_TIMEOUT_MAX },
	[CONF_OPT_HOST] =		{ "host", KIND_TEXT, SCOPE_ACCOUNT, 0, 0 },
	[CONF_OPT_PORT] =		{ "port", KIND_NUMBER, BOTH, 1, 65535 },
	[CONF_OPT_TLS] =		{ "tls", KIND_TLS, BOTH, 0, 0 },
	[CONF_OPT_TLS_VERIFY] =	{ "tls_verify", KIND_BOOL, BOTH, 0, 0 },
	[CONF_OPT_TLS_CA_FILE] =	{ "tls_ca_file", KIND_PATH, BOTH, 0, 0 },
	[CONF_OPT_TLS_FINGERPRINT] =	{ "tls_fingerprint", KIND_FINGERPRINT, BOTH, 0, 0 },
	[CONF_OPT_TLS_RESUME] =	{ "tls_resume", KIND_BOOL, BOTH, 0, 0 },
	[CONF_OPT_USER] =		{ "user", KIND_TEXT, SCOPE_ACCOUNT, 0, 0 },
	[CONF_OPT_PASSWORD] =	{ "password", KIND_SECRET, BOTH, 0, 0 },
	[CONF_OPT_PASSWORD_COMMAND] = { "password_command", KIND_COMMAND, BOTH, 0, 0 },
	[CONF_OPT_AUTH] =		{ "auth", KIND_AUTH, BOTH, 0, 0 },
	[CONF_OPT_OAUTH2_PROVIDER] =	{ "oauth2_provider", KIND_PROVIDER, BOTH, 0, 0 },
	[CONF_OPT_OAUTH2_CLIENT_ID] = { "oauth2_client_id", KIND_TEXT, BOTH, 0, 0 },
	[CONF_OPT_OAUTH2_CLIENT_SECRET] = { "oauth2_client_secret", KIND_SECRET, BOTH, 0, 0 },
	[CONF_OPT_OAUTH2_TENANT] =	{ "oauth2_tenant", KIND_TEXT, BOTH, 0, 0 },
	[CONF_OPT_OAUTH2_TOKEN_URL] = { "oauth2_token_url", KIND_URL, BOTH, 0, 0 },
	[CONF_OPT_OAUTH2_DEVICE_URL] = { "oauth2_device_url", KIND_URL, BOTH, 0, 0 },
	[CONF_OPT_OAUTH2_AUTH_URL] =	{ "oauth2_auth_url", KIND_URL, BOTH, 0, 0 },
	[CONF_OPT_OAUTH2_SCOPE] =	{ "oauth2_scope", KIND_TEXT, BOTH, 0, 0 },
	[CONF_OPT_ALLOW_PLAINTEXT] =	{ "allow_plaintext_password", KIND_BOOL, BOTH, 0, 0 },
	[CONF_OPT_MAILDIR] =		{ "maildir", KIND_PATH, BOTH, 0, 0 },
	[CONF_OPT_FILTER] =		{ "filter", KIND_SHELL, BOTH, 0, 0 },
	[CONF_OPT_MDA] =		{ "mda", KIND_SHELL, BOTH, 0, 0 },
	[CONF_OPT_DELETE] =		{ "delete", KIND_BOOL, BOTH, 0, 0 },
	[CONF_OPT_DELETE_AFTER_DAYS] = { "delete_after_days", KIND_NUMBER, BOTH, 0,
				    CONF_DELETE_AFTER_DAYS_MAX },
	[CONF_OPT_FORGET_AFTER_DAYS] = { "forget_after_days", KIND_NUMBER, BOTH, 0,
				    CONF_DELETE_AFTER_DAYS_MAX },
	[CONF_OPT_MAX_SIZE] =	{ "max_size", KIND_NUMBER, BOTH, 0, INT64_MAX },
	[CONF_OPT_MAX_MESSAGES] =	{ "max_messages", KIND_NUMBER, BOTH, 0, UINT_MAX },
	[CONF_OPT_RECEIVED_HEADER] =	{ "received_header", KIND_BOOL, BOTH, 0, 0 },
	[CONF_OPT_ENABLED] =		{ "enabled", KIND_BOOL, BOTH, 0, 0 },
};

static const char *const provider_names[] = {
	[CONF_OAUTH2_NONE] = "",
	[CONF_OAUTH2_MICROSOFT] = "microsoft",
	[CONF_OAUTH2_GOOGLE] = "google",
	[CONF_OAUTH2_CUSTOM] = "custom",
};
#define PROVIDER_ALLOWED	"microsoft, google, custom"

static const char *const tls_names[] = {
	[CONF_TLS_IMPLICIT] = "implicit",
	[CONF_TLS_STARTTLS] = "starttls",
	[CONF_TLS_NONE] = "none",
};
#define TLS_ALLOWED	"implicit, starttls, none"

/*
 * The `auth` values, indexed by enum conf_auth: the word, and what an
 * eavesdropper learns over tls = none (refused without
 * allow_plaintext_password unless nothing).  A SASL mechanism is also a row
 * of fetcher/sasl.c's table, whose reveals_secret says the same (test_sasl
 * holds them together); doc/DESIGN.md §9.3.
 */
enum auth_exposure {
	EXPOSES_NOTHING,	/* never the password itself */
	EXPOSES_PASSWORD,
	EXPOSES_TOKEN,		/* the access token password_command prints */
};

static const struct auth_kind {
	const char		*name;
	enum auth_exposure	 exposes;
} auth_kinds[] = {
	[CONF_AUTH_AUTO] = { "auto", EXPOSES_PASSWORD },	/* may */
	[CONF_AUTH_USER] = { "user", EXPOSES_PASSWORD },
	[CONF_AUTH_APOP] = { "apop", EXPOSES_NOTHING },
	[CONF_AUTH_PLAIN] = { "plain", EXPOSES_PASSWORD },
	[CONF_AUTH_SCRAM_SHA_256] = { "scram-sha-256", EXPOSES_NOTHING },
	[CONF_AUTH_XOAUTH2] = { "xoauth2", EXPOSES_TOKEN },
	[CONF_AUTH_OAUTHBEARER] = { "oauthbearer", EXPOSES_TOKEN },
};

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))

/* The `auth` value named `s` (any case), or -1. */
static int
parse_auth(const char *s)
{
	size_t i;

	for (i = 0; i < NELEM(auth_kinds); i++)
		if (strcasecmp(s, auth_kinds[i].name) == 0)
			return (int)i;
	return -1;
}

/* "auto, user, ..." for the error message. */
static void
auth_allowed(char *buf, size_t size)
{
	size_t i;

	buf[0] = '\0';
	for (i = 0; i < NELEM(auth_kinds); i++) {
		size_t n = strlen(buf);

		snprintf(buf + n, size - n, "%s%s", i > 0 ? ", " : "",
		    auth_kinds[i].name);
	}
}

/* What we know about one `account` section while and after parsing. */
struct sec_info {
	cfg_t	*sec;
	char	*title;			/* our copy: see account_done_cb */
	bool	 closed;
	int	 start_line;		/* the line of `account NAME {` */
	int	 lines[CONF_OPT_COUNT];	/* where each option was set; 0: not */
};

/* What the pre-scan found wrong in one value (see conf_scan). */
enum val_problem {
	VAL_OK = 0,
	VAL_UNSET,		/* ${NAME}: NAME is not set */
	VAL_BAD_REF,		/* ${...} not of the form NAME or NAME:-DEFAULT */
	VAL_NUL,		/* a "\0" or "\x00" escape */
};

/* One value (the string right after '='), in file order. */
struct val_rec {
	int			 line;
	enum val_problem	 what;
	const char		*text;	/* the name, reference or escape */
	size_t			 textlen;
};

/* A token, for gram_token(). */
enum tok_kind {
	TOK_STR,		/* a bare word or a quoted string */
	TOK_EQ,			/* = */
	TOK_LBRACE,		/* { */
	TOK_RBRACE,		/* } */
	TOK_OTHER,		/* += ( ) , */
};

/* gram_token()'s states, and where the grammar broke. */
enum { G_KEY, G_EQ, G_VALUE, G_TITLE, G_BRACE };
enum { GRAM_OK, GRAM_NO_EQ, GRAM_NO_TITLE, GRAM_NO_BRACE, GRAM_OTHER };

/* The parse in progress (see the note at the top). */
struct parse_state {
	const char	*path;
	struct pf_error	*err;
	bool		 failed;
	int		 fail_line;	/* the line of that error, 0: none */
	cfg_t		*root;
	int		 top_lines[CONF_OPT_COUNT];
	struct sec_info	*secs;
	size_t		 nsecs;
	size_t		 nclosed;	/* account sections read so far */
	const char	*text;		/* the text libconfuse reads */
	/* From conf_scan(): */
	struct val_rec	*vals;		/* every value, in file order */
	size_t		 nvals;
	size_t		 nvals_seen;	/* values opt_parse_cb has had */
	int		*sec_lines;	/* each account section's '{' line */
	size_t		 nsec_lines;
	int		 scan_line;	/* first positional error, 0: none */
	char		 scan_msg[256];
	size_t		 cut;		/* libconfuse reads text[0..cut) */
	int		 unclosed_line;	/* a section never closed, 0: none */
	int		 last_tok_line;	/* the line of the last token read */
	bool		 eof_error;	/* libconfuse: premature end of file */
	int		 gram_state;	/* see gram_token() */
	int		 gram_err;
	int		 gram_err_line;	/* the token that broke the grammar */
	int		 gram_err_after; /* the token before it */
};

static struct parse_state *parse;

static int	hexval(char);

/* Printable rendering of untrusted text for a message, cut at 64 bytes. */
static const char *
shown(const char *s, char *buf, size_t size)
{
	size_t i, o = 0;

	if (s == NULL)
		s = "";
	for (i = 0; s[i] != '\0' && o + 4 < size && i < 64; i++) {
		unsigned char c = (unsigned char)s[i];
		buf[o++] = c >= 0x20 && c != 0x7f ? (char)c : '?';
	}
	if (s[i] != '\0') {
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	buf[o] = '\0';
	return buf;
}

/*
 * Record the first error of this load: "PATH[:LINE]: [account A: ][option
 * O: ]MESSAGE"; later ones are dropped.  Returns -1.
 */
static int __attribute__((format(printf, 4, 5)))
fail_at(int line, const char *account, const char *option, const char *fmt,
    ...)
{
	char msg[PF_ERROR_WHAT_MAX], where[32], acct[96], acctbuf[80];
	va_list ap;

	if (parse->failed)
		return -1;
	parse->failed = true;
	parse->fail_line = line;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	where[0] = '\0';
	if (line > 0)
		snprintf(where, sizeof(where), ":%d", line);
	acct[0] = '\0';
	if (account != NULL)
		snprintf(acct, sizeof(acct), "account %s: ",
		    shown(account, acctbuf, sizeof(acctbuf)));
	pf_error_set(parse->err, PF_FAIL_CONFIG, "%s%s: %s%s%s%s%s",
	    parse->path, where, acct, option != NULL ? "option " : "",
	    option != NULL ? option : "", option != NULL ? ": " : "", msg);
	return -1;
}

/* The account a libconfuse section stands for, or NULL at the top level. */
static const char *
section_account(cfg_t *cfg)
{
	if (cfg == NULL || cfg == parse->root)
		return NULL;
	return cfg_title(cfg);
}

/*
 * The sec_info of the section being read, created (starting at
 * `start_line`) if new.  Sections do not nest, so only the last record can
 * be open; a closed one never matches again, even if libconfuse reuses its
 * address.
 */
static struct sec_info *
sec_info_get(cfg_t *sec, int start_line)
{
	struct sec_info *si;

	if (parse->nsecs > 0) {
		si = &parse->secs[parse->nsecs - 1];
		if (!si->closed && si->sec == sec)
			return si;
	}
	parse->secs = xreallocarray(parse->secs, parse->nsecs + 1,
	    sizeof(*parse->secs));
	si = &parse->secs[parse->nsecs++];
	memset(si, 0, sizeof(*si));
	si->sec = sec;
	si->title = xstrdup(cfg_title(sec) != NULL ? cfg_title(sec) : "");
	si->start_line = start_line;
	return si;
}

/* The line of the `{` of the k-th account section (0-based), from the scan. */
static int
section_line(size_t k)
{
	return k < parse->nsec_lines ? parse->sec_lines[k] : 0;
}

/* The record of a finished section (the latest, should one be stale). */
static const struct sec_info *
sec_info_find(cfg_t *sec)
{
	size_t i;

	for (i = parse->nsecs; i > 0; i--)
		if (parse->secs[i - 1].sec == sec)
			return &parse->secs[i - 1];
	return NULL;
}

/* Where an account of that name was first defined, or 0. */
static int
first_defined(const char *title)
{
	size_t i;

	for (i = 0; i < parse->nsecs; i++)
		if (strcmp(parse->secs[i].title, title) == 0)
			return parse->secs[i].start_line;
	return 0;
}

static void
parse_state_free(void)
{
	size_t i;

	for (i = 0; i < parse->nsecs; i++)
		free(parse->secs[i].title);
	free(parse->secs);
	parse->secs = NULL;
	parse->nsecs = 0;
	free(parse->vals);
	parse->vals = NULL;
	parse->nvals = 0;
	free(parse->sec_lines);
	parse->sec_lines = NULL;
	parse->nsec_lines = 0;
}

/* The line of the password set in `cfg` (top level or the open section). */
static int
password_line(cfg_t *cfg)
{
	const struct sec_info *si;

	if (cfg == NULL)
		return 0;
	if (cfg == parse->root)
		return parse->top_lines[CONF_OPT_PASSWORD];
	if (parse->nsecs == 0)
		return 0;
	si = &parse->secs[parse->nsecs - 1];
	return !si->closed && si->sec == cfg ? si->lines[CONF_OPT_PASSWORD] : 0;
}

/*
 * Is every `password = VALUE` on line `line` of the text a quoted value?
 * Then libconfuse's complaint about what follows on that line ("account w
 * { password = "p" colour = 1 }") cannot hold part of the secret.  False
 * when in doubt.
 */
static bool
password_quoted(int line)
{
	const char *p = parse->text, *eol, *v;
	int n = 1;
	bool found = false;

	if (p == NULL)
		return false;
	for (; n < line && (p = strchr(p, '\n')) != NULL; n++)
		p++;
	if (p == NULL)
		return false;
	if ((eol = strchr(p, '\n')) == NULL)
		eol = p + strlen(p);
	for (v = p; (v = strstr(v, "password")) != NULL && v < eol; v++) {
		const char *q = v + strlen("password");

		if (v > p && (isalnum((unsigned char)v[-1]) || v[-1] == '_'))
			continue;
		q += strspn(q, " \t");
		if (*q != '=')
			continue;
		q++;
		q += strspn(q, " \t");
		if (*q != '"' && *q != '\'')
			return false;
		found = true;
	}
	return found;
}

/* Which gram_token() break a libconfuse message stands for, if any. */
static int
gram_err_of(const char *fmt)
{
	if (strcmp(fmt, "missing equal sign after option '%s'") == 0)
		return GRAM_NO_EQ;
	if (strcmp(fmt, "missing title for section '%s'") == 0)
		return GRAM_NO_TITLE;
	if (strcmp(fmt, "missing opening brace for section '%s'") == 0)
		return GRAM_NO_BRACE;
	return GRAM_OK;
}

/*
 * "; did you mean 'password'?" for an unknown key within edit distance 2
 * (a swap of two neighbours counts as one) of a known one, else "".
 */
static const char *
key_hint(const char *key, char *buf, size_t size)
{
	unsigned d[3][40];
	size_t i, j, k, n = strlen(key), m, best_d = 3, best = CONF_OPT_COUNT;

	if (n == 0 || n >= 40)
		return "";
	for (k = 0; k < CONF_OPT_COUNT; k++) {
		const char *t = opt_table[k].name;

		if ((m = strlen(t)) >= 40)
			continue;
		/* rows i-2, i-1, i of the optimal string alignment distance */
		for (j = 0; j <= m; j++)
			d[1][j] = (unsigned)j;
		for (i = 1; i <= n; i++) {
			d[2][0] = (unsigned)i;
			for (j = 1; j <= m; j++) {
				unsigned c = key[i - 1] != t[j - 1], v;

				v = d[1][j - 1] + c;
				if (d[1][j] + 1 < v)
					v = d[1][j] + 1;
				if (d[2][j - 1] + 1 < v)
					v = d[2][j - 1] + 1;
				if (i > 1 && j > 1 && key[i - 1] == t[j - 2] &&
				    key[i - 2] == t[j - 1] && d[0][j - 2] + 1 < v)
					v = d[0][j - 2] + 1;
				d[2][j] = v;
			}
			memcpy(d[0], d[1], sizeof(d[0]));
			memcpy(d[1], d[2], sizeof(d[1]));
		}
		if (d[1][m] < best_d) {
			best_d = d[1][m];
			best = k;
		}
	}
	if (best == CONF_OPT_COUNT || best_d >= n)
		return "";
	snprintf(buf, size, "; did you mean '%s'?", opt_table[best].name);
	return buf;
}

/*
 * libconfuse's own messages.  The two a user meets most are reworded into
 * our vocabulary; the rest keep libconfuse's words behind our prefix.
 */
static void __attribute__((format(printf, 2, 0)))
conf_errfunc(cfg_t *cfg, const char *fmt, va_list ap)
{
	char msg[512], buf[80];
	const char *account, *arg;
	va_list aq;
	int line, first, gram;

	if (parse == NULL || parse->failed)
		return;
	account = section_account(cfg);
	line = cfg != NULL ? cfg->line : 0;
	/*
	 * "password = correct horse" reads as password "correct" and an
	 * unknown option "horse": libconfuse's words would show part of the
	 * secret.  A quoted password cannot spill into what follows it.
	 */
	if (line > 0 && password_line(cfg) == line && !password_quoted(line)) {
		fail_at(line, account, "password", "syntax error after the "
		    "value (quote a password that holds a space or any of "
		    "# = { } ( ) + , *)");
		return;
	}
	if (strcmp(fmt, "no such option '%s'") == 0) {
		va_copy(aq, ap);
		arg = va_arg(aq, const char *);
		va_end(aq);
		fail_at(line, account, NULL, "unknown option '%s'%s",
		    shown(arg, buf, sizeof(buf)),
		    key_hint(arg, msg, sizeof(msg)));
	} else if ((gram = gram_err_of(fmt)) != GRAM_OK) {
		/* The line of the token after which something is missing. */
		if (parse->gram_err == gram && parse->gram_err_line == line &&
		    parse->gram_err_after > 0)
			line = parse->gram_err_after;
		vsnprintf(msg, sizeof(msg), fmt, ap);
		fail_at(line, account, NULL, "%s", msg);
	} else if (strcmp(fmt, "premature end of file") == 0) {
		/* libconfuse says the line after the last newline. */
		parse->eof_error = true;
		fail_at(parse->last_tok_line > 0 ? parse->last_tok_line : line,
		    account, NULL, "premature end of file");
	} else if (strcmp(fmt, "invalid octal number '%s'") == 0 ||
	    strcmp(fmt, "bad escape sequence '%s'") == 0) {
		/* Not libconfuse's words: they quote part of the string,
		 * which may be a password. */
		fail_at(line, account, NULL, "bad escape in a string: an octal "
		    "escape is \\ and one to three digits 0-7, at most \\377");
	} else if (strcmp(fmt, "found duplicate title '%s'") == 0) {
		va_copy(aq, ap);
		arg = va_arg(aq, const char *);
		va_end(aq);
		if ((first = first_defined(arg)) > 0)
			fail_at(line, arg, NULL, "duplicate account name "
			    "(first defined on line %d)", first);
		else
			fail_at(line, arg, NULL, "duplicate account name");
	} else {
		vsnprintf(msg, sizeof(msg), fmt, ap);
		fail_at(line, account, NULL, "%s", msg);
	}
}

/* Decimal only (no octal or hex surprises), within min..max. */
static int
parse_number(const char *s, uint64_t min, uint64_t max, uint64_t *out,
    char *why, size_t whysize)
{
	char buf[80];
	uint64_t n = 0;
	size_t i;

	if (s[0] == '-') {
		snprintf(why, whysize, "%s is negative (allowed: %llu..%llu)",
		    shown(s, buf, sizeof(buf)), (unsigned long long)min,
		    (unsigned long long)max);
		return -1;
	}
	for (i = 0; s[i] >= '0' && s[i] <= '9'; i++) {
		unsigned d = (unsigned)(s[i] - '0');

		if (n > (UINT64_MAX - d) / 10) {
			n = UINT64_MAX;
			while (s[i + 1] >= '0' && s[i + 1] <= '9')
				i++;
			continue;
		}
		n = n * 10 + d;
	}
	if (i == 0 || s[i] != '\0') {
		snprintf(why, whysize, "'%s' is not a number",
		    shown(s, buf, sizeof(buf)));
		return -1;
	}
	if (n < min || n > max) {
		snprintf(why, whysize, "%s is out of range (allowed: %llu..%llu)",
		    shown(s, buf, sizeof(buf)), (unsigned long long)min,
		    (unsigned long long)max);
		return -1;
	}
	*out = n;
	return 0;
}

/* true/false, also yes/no and on/off, as libconfuse's own booleans. */
static int
parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = { "true", "yes", "on" };
	static const char *const no[] = { "false", "no", "off" };
	size_t i;

	for (i = 0; i < NELEM(yes); i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -1;
}

static int
parse_name(const char *s, const char *const *names, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcasecmp(s, names[i]) == 0)
			return (int)i;
	return -1;
}

/* Control characters other than those in `allowed`. */
static bool
has_control(const char *s, const char *allowed)
{
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c < 0x20 || c == 0x7f) && strchr(allowed, c) == NULL)
			return true;
	}
	return false;
}

/* Check one value against its option's kind; on error fill `why`. */
static int
check_value(const struct opt_def *def, const char *value, char *why,
    size_t whysize)
{
	unsigned char fpr[32];
	char buf[80];
	uint64_t n;
	bool b;

	if (value[0] == '\0') {
		snprintf(why, whysize, "%s", def->kind == KIND_SHELL ?
		    "must not be empty" : "is empty");
		return -1;
	}
	switch (def->kind) {
	case KIND_TEXT:
	case KIND_PATH:
		if (has_control(value, "")) {
			snprintf(why, whysize, "contains a control character");
			return -1;
		}
		return 0;
	case KIND_COMMAND:
	case KIND_SHELL:
		if (has_control(value, "\t\n")) {
			snprintf(why, whysize, "contains a control character");
			return -1;
		}
		/*
		 * A blank command is a shell that exits 0 at once: as an mda
		 * it would count every message delivered (and let it be
		 * deleted) while it went nowhere.
		 */
		if (def->kind == KIND_SHELL && strspn(value, " \t\n") ==
		    strlen(value)) {
			snprintf(why, whysize, "must not be empty (it holds "
			    "only blanks)");
			return -1;
		}
		return 0;
	case KIND_SECRET:
		/* Never show the value itself. */
		if (strpbrk(value, "\r\n") != NULL) {
			snprintf(why, whysize, "contains a CR or LF character, "
			    "which would inject protocol commands");
			return -1;
		}
		return 0;
	case KIND_NUMBER:
		return parse_number(value, def->min, def->max, &n, why,
		    whysize);
	case KIND_BOOL:
		if (parse_bool(value, &b) == -1) {
			snprintf(why, whysize, "invalid value '%s' "
			    "(allowed: true, false)", shown(value, buf,
			    sizeof(buf)));
			return -1;
		}
		return 0;
	case KIND_TLS:
		if (parse_name(value, tls_names, NELEM(tls_names)) == -1) {
			snprintf(why, whysize, "invalid value '%s' (allowed: "
			    TLS_ALLOWED ")", shown(value, buf, sizeof(buf)));
			return -1;
		}
		return 0;
	case KIND_AUTH:
		if (parse_auth(value) == -1) {
			char allowed[160];

			auth_allowed(allowed, sizeof(allowed));
			snprintf(why, whysize, "invalid value '%s' (allowed: "
			    "%s)", shown(value, buf, sizeof(buf)), allowed);
			return -1;
		}
		return 0;
	case KIND_FINGERPRINT:
		if (conf_parse_fingerprint(value, fpr) == -1) {
			snprintf(why, whysize, "'%s' is not a SHA-256 "
			    "fingerprint (64 hex digits, colons optional, "
			    "optional sha256: prefix)", shown(value, buf,
			    sizeof(buf)));
			return -1;
		}
		return 0;
	case KIND_PROVIDER:
		/* index 0, "", is "not set", never a value */
		if (parse_name(value, provider_names,
		    NELEM(provider_names)) <= 0) {
			snprintf(why, whysize, "invalid value '%s' (allowed: "
			    PROVIDER_ALLOWED ")", shown(value, buf,
			    sizeof(buf)));
			return -1;
		}
		return 0;
	case KIND_URL:
		if (has_control(value, "") || strchr(value, ' ') != NULL ||
		    strncasecmp(value, "https://", 8) != 0 ||
		    value[8] == '\0' || value[8] == '/') {
			snprintf(why, whysize, "'%s' is not an https:// URL",
			    shown(value, buf, sizeof(buf)));
			return -1;
		}
		return 0;
	}
	snprintf(why, whysize, "internal error: unknown option kind");
	return -1;
}

static int
opt_lookup(const char *name)
{
	int i;

	for (i = 0; i < CONF_OPT_COUNT; i++)
		if (strcmp(opt_table[i].name, name) == 0)
			return i;
	return -1;
}

/*
 * libconfuse's value callback for every scalar option: where it may stand,
 * set once per scope, and a valid value.  Records the line.
 */
static int
opt_parse_cb(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	const struct opt_def *def;
	const char *account = section_account(cfg);
	char why[PF_ERROR_WHAT_MAX], buf[80];
	const struct val_rec *v;
	struct sec_info *si;
	int id, *lines;

	id = opt_lookup(cfg_opt_name(opt));
	/*
	 * libconfuse also accepts "account=NAME|port" as an option name and
	 * sets the option of another section from here: not our syntax.
	 */
	if (id == -1 || value == NULL || cfg_getopt(cfg, opt->name) != opt)
		return fail_at(cfg->line, account, NULL, "unknown option "
		    "'%s'%s", shown(cfg_opt_name(opt), why, 80),
		    key_hint(cfg_opt_name(opt), buf, sizeof(buf)));
	def = &opt_table[id];
	/*
	 * libconfuse hands us the values in file order, as conf_scan() saw
	 * them; a value on another line than the scan's means the two lexers
	 * disagree, which must not pass unnoticed.
	 */
	if (parse->nvals_seen >= parse->nvals ||
	    (v = &parse->vals[parse->nvals_seen++])->line != cfg->line) {
		fail_at(cfg->line, account, def->name, "internal error: the "
		    "value is not where the scan saw it");
		parse->err->category = PF_FAIL_INTERNAL;
		return -1;
	}
	if (account == NULL) {
		lines = parse->top_lines;
		if ((def->scope & SCOPE_TOP) == 0)
			return fail_at(cfg->line, NULL, def->name, "only "
			    "allowed inside an account section");
	} else {
		si = sec_info_get(cfg, section_line(parse->nclosed));
		lines = si->lines;
		if ((def->scope & SCOPE_ACCOUNT) == 0)
			return fail_at(cfg->line, account, def->name, "only "
			    "allowed at the top level, not inside an account");
	}
	if (lines[id] != 0)
		return fail_at(cfg->line, account, def->name, "set twice "
		    "(first on line %d)", lines[id]);
	lines[id] = cfg->line;
	switch (v->what) {
	case VAL_OK:
		break;
	case VAL_UNSET:
		snprintf(why, sizeof(why), "%.*s", (int)(v->textlen < 100 ?
		    v->textlen : 100), v->text);
		return fail_at(cfg->line, account, def->name, "environment "
		    "variable %s is not set", shown(why, buf, sizeof(buf)));
	case VAL_BAD_REF:
		/* Not the text of a password's reference: it may be secret. */
		snprintf(why, sizeof(why), "%.*s", (int)(v->textlen < 100 ?
		    v->textlen : 100), v->text);
		return fail_at(cfg->line, account, def->name, "malformed "
		    "${%s} (write ${NAME} or ${NAME:-DEFAULT}, NAME of letters, "
		    "digits and _, DEFAULT without \\ or {; \\${ for a "
		    "literal ${)", def->kind == KIND_SECRET ? "..." :
		    shown(why, buf, sizeof(buf)));
	case VAL_NUL:
		return fail_at(cfg->line, account, def->name, "holds a NUL "
		    "byte (%.*s escape)", (int)v->textlen, v->text);
	}
	if (check_value(def, value, why, sizeof(why)) == -1)
		return fail_at(cfg->line, account, def->name, "%s", why);
	*(const char **)result = value;
	return 0;
}

/*
 * Account names end up in log lines, lock and state file names and on the
 * command line: keep them to a safe, unambiguous alphabet.
 */
static bool
account_name_ok(const char *name)
{
	size_t i;

	if (name == NULL || name[0] == '\0' || name[0] == '.' ||
	    name[0] == '-' || strlen(name) > CONF_ACCOUNT_NAME_MAX)
		return false;
	for (i = 0; name[i] != '\0'; i++) {
		unsigned char c = (unsigned char)name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || strchr("._-@+", c) != NULL))
			return false;
	}
	return true;
}

/* libconfuse's validation callback for a finished `account` section. */
static int
account_done_cb(cfg_t *cfg, cfg_opt_t *opt)
{
	struct sec_info *si = NULL;

	(void)cfg;
	if (cfg_opt_size(opt) == 0)
		return 0;
	/*
	 * The section just read is the open record (its options made it);
	 * an empty section made none: it is the last one.
	 */
	if (parse->nsecs > 0 && !parse->secs[parse->nsecs - 1].closed)
		si = &parse->secs[parse->nsecs - 1];
	else
		si = sec_info_get(cfg_opt_getnsec(opt, cfg_opt_size(opt) - 1),
		    section_line(parse->nclosed));
	si->closed = true;
	/*
	 * CFGF_NO_TITLE_DUPES makes libconfuse refuse a second `account
	 * work` (conf_errfunc words it).  Without it libconfuse would quietly
	 * replace the first section with the second: count them ourselves.
	 */
	if (++parse->nclosed != cfg_opt_size(opt))
		return fail_at(si->start_line, si->title, NULL, "duplicate "
		    "account name (first defined on line %d)",
		    first_defined(si->title));
	if (!account_name_ok(si->title))
		return fail_at(si->start_line, si->title, NULL, "invalid "
		    "account name (use 1 to %d letters, digits and . _ - @ +, "
		    "not starting with . or -)", CONF_ACCOUNT_NAME_MAX);
	return 0;
}

/*
 * The pre-scan: a small model of libconfuse 3.3's lexer (src/lexer.l) run
 * over the text before libconfuse sees it.  It exists because libconfuse
 * offers no hook for any of the following, and each would otherwise put a
 * wrong line, a wrong value or a silent empty string in front of the user:
 *
 *  - Comments.  Its lexer counts one line too many for every `#` and `//`
 *    comment (qput() and qend() both bump cfg->line) and for every block
 *    comment, so every error after a comment named a later line.  The scan
 *    blanks comments (newlines kept): libconfuse never sees one, so its
 *    line count, and with it every message, is exact.  Nothing is lost: we
 *    do not ask for CFGF_COMMENTS.
 *  - Strings that span lines.  libconfuse takes a newline (or backslash-
 *    newline) inside quotes as part of the string, so a missing quote shows
 *    as some error lines further on (libconfuse issue #116 asks for a flag;
 *    there is none).  popfetch.conf(5): a quote not closed on the line where
 *    it opens is an error at that line.
 *  - ${NAME}.  libconfuse expands it in double-quoted strings and in bare
 *    words with getenv() inside the lexer: an unset variable silently gives
 *    "".  There is no callback, so the scan notes, for every value (the
 *    string right after '='), the first unset variable or malformed
 *    reference in it; opt_parse_cb(), which libconfuse calls for the values
 *    in the same order, reports it with the line, account and option.
 *    Anywhere else ${ is an error here (see popfetch.conf(5), SYNTAX).
 *  - NUL bytes, raw or from a "\0" or "\x00" escape: they cut a string
 *    short (a password must not be silently truncated).
 *  - A section left open at the end of the file: libconfuse takes EOF for
 *    the closing brace.
 *  - Something missing after a token ('=' after a key, a title or '{'
 *    after `account`): libconfuse notices at the next token, which may be
 *    lines further on, and says that line.  gram_token() follows the
 *    grammar so that conf_errfunc can name the line of the key instead.
 *
 * The first error that depends on where it is (all but the last) is kept
 * in parse->scan_line/scan_msg, and libconfuse reads only the lines before
 * it (parse->cut), so that an earlier error is still reported first and
 * nothing libconfuse would make of the broken line can get in the way.
 */

/* What a bare word cannot hold (lexer.l's unquoted-string rule). */
#define WORD_NOT	" #\"'\t\n\r={}()+,*"

static void __attribute__((format(printf, 3, 4)))
scan_fail(int line, size_t line_start, const char *fmt, ...)
{
	va_list ap;

	if (parse->scan_line > 0)
		return;
	va_start(ap, fmt);
	vsnprintf(parse->scan_msg, sizeof(parse->scan_msg), fmt, ap);
	va_end(ap);
	parse->scan_line = line;
	parse->cut = line_start;
}

/*
 * Is `body` (the text between "${" and "}") a reference popfetch.conf(5)
 * allows: NAME or NAME:-DEFAULT, NAME letters, digits and _ not starting
 * with a digit, DEFAULT without a backslash or '{' (no nesting)?  (It
 * cannot hold '}', '"' or a newline: the caller cut it at the first '}'
 * and refused the others.)
 * On success *namelen is the length of NAME and *has_default is set.
 */
static bool
ref_ok(const char *body, size_t n, size_t *namelen, bool *has_default)
{
	size_t i = 0;

	if (n == 0 || !(isalpha((unsigned char)body[0]) || body[0] == '_'))
		return false;
	while (i < n && (isalnum((unsigned char)body[i]) || body[i] == '_'))
		i++;
	*namelen = i;
	*has_default = false;
	if (i == n)
		return true;
	if (n - i < 2 || body[i] != ':' || body[i + 1] != '-')
		return false;
	*has_default = true;
	for (i += 2; i < n; i++)
		if (body[i] == '\\' || body[i] == '{')
			return false;
	return true;
}

/* Note a value's first problem (the first one found wins). */
static void
val_note(struct val_rec *v, enum val_problem what, const char *s, size_t n)
{
	if (v->what != VAL_OK)
		return;
	v->what = what;
	v->text = s;
	v->textlen = n;
}

/*
 * A double-quoted string at buf[*ip] == '"', on line `line`; `is_value`:
 * it stands right after '='.  Fills `v`; returns -1 after scan_fail().
 */
static int
scan_dq(const char *buf, size_t len, size_t *ip, int line, size_t line_start,
    bool is_value, struct val_rec *v)
{
	size_t i = *ip + 1, j, namelen;
	unsigned val;
	bool has_default;
	char *name;

	for (;;) {
		if (i >= len || buf[i] == '\n')
			goto unclosed;
		if (buf[i] == '"')
			break;
		if (buf[i] == '\\') {
			if (i + 1 >= len || buf[i + 1] == '\n')
				goto unclosed;
			/* An octal escape is up to three octal digits (more
			 * digits, or an 8 or 9, make libconfuse refuse it). */
			if (buf[i + 1] >= '0' && buf[i + 1] <= '9') {
				for (j = i + 1; j < len && j < i + 5 &&
				    isdigit((unsigned char)buf[j]); j++)
					;
				if (j - i - 1 <= 3 &&
				    strspn(buf + i + 1, "0") >= j - i - 1)
					val_note(v, VAL_NUL, "\\0", 2);
			} else if (buf[i + 1] == 'x' && i + 2 < len &&
			    isxdigit((unsigned char)buf[i + 2])) {
				val = (unsigned)hexval(buf[i + 2]);
				if (i + 3 < len && isxdigit((unsigned char)buf[i + 3]))
					val = val * 16 + (unsigned)hexval(buf[i + 3]);
				if (val == 0)
					val_note(v, VAL_NUL, "\\x00", 4);
			}
			/* The rest of an escape holds no '"', '\\' or '$'. */
			i += 2;
			continue;
		}
		if (buf[i] != '$' || i + 1 >= len || buf[i + 1] != '{') {
			i++;
			continue;
		}
		/* ${: libconfuse takes everything up to the next '}'. */
		for (j = i + 2; j < len && buf[j] != '}' && buf[j] != '"' &&
		    buf[j] != '\n'; j++)
			;
		if (j >= len || buf[j] != '}') {
			scan_fail(line, line_start, "'${' without its '}' before "
			    "the closing quote (write \\${ for a literal ${)");
			return -1;
		}
		if (!is_value) {
			scan_fail(line, line_start, "${...} is expanded only in "
			    "values, not in a key or an account name");
			return -1;
		}
		if (!ref_ok(buf + i + 2, j - i - 2, &namelen, &has_default)) {
			val_note(v, VAL_BAD_REF, buf + i + 2, j - i - 2);
		} else if (!has_default) {
			name = xstrndup(buf + i + 2, namelen);
			if (getenv(name) == NULL)
				val_note(v, VAL_UNSET, buf + i + 2, namelen);
			free(name);
		}
		i = j + 1;
	}
	*ip = i + 1;
	return 0;

unclosed:
	scan_fail(line, line_start, "string not closed on the line where it "
	    "opens (strings do not span lines)");
	return -1;
}

/* A single-quoted string at buf[*ip] == '\''; returns -1 after scan_fail(). */
static int
scan_sq(const char *buf, size_t len, size_t *ip, int line, size_t line_start)
{
	size_t i = *ip + 1;

	for (;;) {
		if (i >= len || buf[i] == '\n') {
			scan_fail(line, line_start, "string not closed on the "
			    "line where it opens (strings do not span lines)");
			return -1;
		}
		if (buf[i] == '\'')
			break;
		if (buf[i] == '\\') {
			/* A backslash-newline would go on: the check above
			 * fails it. */
			i += i + 1 < len && buf[i + 1] != '\n' ? 2 : 1;
		} else {
			i++;
		}
	}
	*ip = i + 1;
	return 0;
}

static void
val_push(const struct val_rec *v)
{
	parse->vals = xreallocarray(parse->vals, parse->nvals + 1,
	    sizeof(*parse->vals));
	parse->vals[parse->nvals++] = *v;
}

/*
 * The file's grammar (key = value, account TITLE { ... }), followed token by
 * token up to its first break, so that libconfuse's "missing equal sign
 * after option 'host'" can name the line of `host` rather than that of the
 * token found where '=' was due (often the next key, lines further on);
 * likewise a missing title or opening brace.  conf_errfunc uses it only
 * when it broke at the very line libconfuse complains about.
 */
static void
gram_token(enum tok_kind k, int line, const char *text, size_t n)
{
	int err = GRAM_OK;

	switch (parse->gram_err != GRAM_OK ? -1 : parse->gram_state) {
	case G_KEY:
		if (k == TOK_STR)
			parse->gram_state = n == 7 && memcmp(text, "account",
			    7) == 0 ? G_TITLE : G_EQ;
		else if (k != TOK_RBRACE)
			err = GRAM_OTHER;
		break;
	case G_EQ:
		if (k == TOK_EQ)
			parse->gram_state = G_VALUE;
		else
			err = k == TOK_OTHER ? GRAM_OTHER : GRAM_NO_EQ;
		break;
	case G_VALUE:
		if (k == TOK_STR)
			parse->gram_state = G_KEY;
		else
			err = GRAM_OTHER;
		break;
	case G_TITLE:
		if (k == TOK_STR)
			parse->gram_state = G_BRACE;
		else
			err = GRAM_NO_TITLE;
		break;
	case G_BRACE:
		if (k == TOK_LBRACE)
			parse->gram_state = G_KEY;
		else
			err = GRAM_NO_BRACE;
		break;
	default:
		break;
	}
	if (err != GRAM_OK) {
		parse->gram_err = err;
		parse->gram_err_line = line;
		parse->gram_err_after = parse->last_tok_line;
	}
	parse->last_tok_line = line;
}

/*
 * Scan buf[0..len) (see above): blank the comments in place, note each
 * value's problems and each account section's line, and keep the first
 * positional error.  Afterwards libconfuse is to read buf[0..parse->cut).
 */
static void
conf_scan(char *buf, size_t len)
{
	enum { PREV_NONE, PREV_EQ, PREV_OTHER } prev = PREV_NONE;
	int open_lines[8];	/* where each open brace is; we nest one deep */
	size_t depth = 0, i = 0, j, line_start = 0, start_off, nul_start = len;
	int line = 1, start, nul_line = 0;
	const char *nul;
	struct val_rec v;

	parse->cut = len;
	/* A raw NUL: libconfuse reads only the lines before it. */
	if ((nul = memchr(buf, '\0', len)) != NULL) {
		nul_line = 1;
		nul_start = 0;
		for (j = 0; buf + j < nul; j++)
			if (buf[j] == '\n') {
				nul_line++;
				nul_start = j + 1;
			}
		len = nul_start;
	}
	while (i < len && parse->scan_line == 0) {
		char c = buf[i];

		if (c == '\n') {
			line++;
			line_start = ++i;
		} else if (c == ' ' || c == '\t') {
			i++;
		} else if (c == '#' || (c == '/' && i + 1 < len &&
		    buf[i + 1] == '/')) {
			/* lexer.l: "#"{1,}.* and "/"{2,}.* (at a token's start) */
			while (i < len && buf[i] != '\n')
				buf[i++] = ' ';
		} else if (c == '/' && i + 1 < len && buf[i + 1] == '*') {
			start = line;
			start_off = line_start;
			for (j = i + 2; j + 1 < len && !(buf[j] == '*' &&
			    buf[j + 1] == '/'); j++)
				;
			if (j + 1 >= len) {
				scan_fail(start, start_off, "unterminated comment");
				break;
			}
			for (j += 2; i < j; i++) {
				if (buf[i] != '\n') {
					buf[i] = ' ';
				} else {
					line++;
					line_start = i + 1;
				}
			}
		} else if (c == '"') {
			memset(&v, 0, sizeof(v));
			v.line = line;
			j = i;
			if (scan_dq(buf, len, &i, line, line_start,
			    prev == PREV_EQ, &v) == -1)
				break;
			gram_token(TOK_STR, line, buf + j + 1, i - j - 2);
			if (prev == PREV_EQ)
				val_push(&v);
			else if (v.what == VAL_NUL)
				scan_fail(line, line_start, "string holds a NUL "
				    "byte (%.*s escape)", (int)v.textlen, v.text);
			prev = PREV_OTHER;
		} else if (c == '\'') {
			j = i;
			if (scan_sq(buf, len, &i, line, line_start) == -1)
				break;
			gram_token(TOK_STR, line, buf + j + 1, i - j - 2);
			if (prev == PREV_EQ) {
				memset(&v, 0, sizeof(v));
				v.line = line;
				val_push(&v);
			}
			prev = PREV_OTHER;
		} else if (strchr(WORD_NOT, c) == NULL) {
			/* A bare word; a '/' inside one starts no comment. */
			for (j = i; j < len && strchr(WORD_NOT, buf[j]) == NULL;
			    j++)
				if (buf[j] == '$' && j + 1 < len &&
				    buf[j + 1] == '{')
					break;
			if (j < len && buf[j] == '$') {
				scan_fail(line, line_start, "'${' outside double "
				    "quotes: ${NAME} is expanded only in a "
				    "double-quoted value (\"${NAME}\"); in single "
				    "quotes it stays as written");
				break;
			}
			if (prev == PREV_EQ) {
				memset(&v, 0, sizeof(v));
				v.line = line;
				val_push(&v);
			}
			gram_token(TOK_STR, line, buf + i, j - i);
			prev = PREV_OTHER;
			i = j;
		} else if (c == '+' && i + 1 < len && buf[i + 1] == '=') {
			gram_token(TOK_OTHER, line, NULL, 0);
			prev = PREV_OTHER;
			i += 2;
		} else if (c == '=') {
			gram_token(TOK_EQ, line, NULL, 0);
			prev = PREV_EQ;
			i++;
		} else if (c == '{' || c == '}' || c == '(' || c == ')' ||
		    c == ',') {
			if (c == '{') {
				if (depth == 0) {
					parse->sec_lines = xreallocarray(
					    parse->sec_lines,
					    parse->nsec_lines + 1,
					    sizeof(*parse->sec_lines));
					parse->sec_lines[parse->nsec_lines++] =
					    line;
				}
				if (depth < NELEM(open_lines))
					open_lines[depth] = line;
				depth++;
			} else if (c == '}' && depth > 0) {
				depth--;
			}
			gram_token(c == '{' ? TOK_LBRACE : c == '}' ? TOK_RBRACE :
			    TOK_OTHER, line, NULL, 0);
			prev = PREV_OTHER;
			i++;
		} else {
			/* '\r', '*', a lone '+': lexer.l's "." eats them. */
			i++;
		}
	}
	if (nul != NULL)
		scan_fail(nul_line, nul_start, "NUL byte in the file");
	if (depth > 0)
		parse->unclosed_line = open_lines[depth > NELEM(open_lines) ?
		    NELEM(open_lines) - 1 : depth - 1];
}

/* Read the whole (regular, bounded) file behind `fd`. */
static int
read_all(int fd, const struct stat *st, char **buf_r, size_t *len_r)
{
	size_t len = 0, cap;
	ssize_t n;
	char *buf;

	if (st->st_size > CONF_FILE_MAX)
		return fail_at(0, NULL, NULL, "file too large (over %d bytes)",
		    CONF_FILE_MAX);
	cap = (size_t)st->st_size + 1;
	buf = xmalloc(cap + 1);
	for (;;) {
		if (len == cap) {
			if (cap > CONF_FILE_MAX)
				break;
			buf = xreallocarray(buf, 1, cap * 2 + 1);
			cap *= 2;
		}
		n = read(fd, buf + len, cap - len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			explicit_bzero(buf, len);
			free(buf);
			pf_error_set_errno(parse->err, PF_FAIL_CONFIG,
			    "read(%s)", parse->path);
			parse->failed = true;
			return -1;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len > CONF_FILE_MAX) {
		explicit_bzero(buf, len);
		free(buf);
		return fail_at(0, NULL, NULL, "file too large (over %d bytes)",
		    CONF_FILE_MAX);
	}
	buf[len] = '\0';
	*buf_r = buf;
	*len_r = len;
	return 0;
}

/* Quote a path for a shell command shown to the user, only if needed. */
static const char *
shell_word(const char *s, char *buf, size_t size)
{
	size_t o = 0;

	if (s[0] != '\0' && strspn(s, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-+@:,%=") == strlen(s))
		return s;
	buf[o++] = '\'';
	for (; *s != '\0' && o + 6 < size; s++) {
		if (*s == '\'') {
			memcpy(buf + o, "'\\''", 4);
			o += 4;
		} else {
			buf[o++] = *s;
		}
	}
	buf[o++] = '\'';
	buf[o] = '\0';
	return buf;
}

/*
 * popfetch.conf(5): a file holding a password must belong to us and be closed to
 * everyone else (mpop refuses the same; OpenSMTPD checks the open fd too).
 */
static int
check_secure(const struct stat *st)
{
	char me[64], owner[64], qpath[PATH_MAX + 16];
	uid_t euid = geteuid();
	bool bad_owner, bad_mode;
	const char *q;

	bad_owner = st->st_uid != euid;
	bad_mode = (st->st_mode & (S_IRWXG | S_IRWXO)) != 0;
	if (!bad_owner && !bad_mode)
		return 0;
	pf_uid_name(euid, me, sizeof(me));
	pf_uid_name(st->st_uid, owner, sizeof(owner));
	q = shell_word(parse->path, qpath, sizeof(qpath));
	if (bad_owner && bad_mode)
		return fail_at(0, NULL, NULL, "holds a password but belongs "
		    "to %s and is accessible by others (mode %04o); run: "
		    "chown %s %s && chmod 600 %s", owner,
		    (unsigned)(st->st_mode & 07777), me, q, q);
	if (bad_owner)
		return fail_at(0, NULL, NULL, "holds a password but belongs "
		    "to %s, not %s; run: chown %s %s", owner, me, me, q);
	return fail_at(0, NULL, NULL, "holds a password but is readable or "
	    "writable by group or others (mode %04o); run: chmod 600 %s",
	    (unsigned)(st->st_mode & 07777), q);
}

/* The value an account sees for an option: its own, else the top level's. */
struct eff {
	const char	*value;		/* NULL: not set anywhere */
	int		 line;
	enum conf_from	 from;
};

static struct eff
effective(cfg_t *sec, const struct sec_info *si, enum conf_opt id)
{
	struct eff e = { NULL, 0, CONF_FROM_DEFAULT };
	const char *name = opt_table[id].name;

	if (cfg_size(sec, name) > 0) {
		e.value = cfg_getstr(sec, name);
		e.line = si->lines[id];
		e.from = CONF_FROM_ACCOUNT;
	} else if (cfg_size(parse->root, name) > 0) {
		e.value = cfg_getstr(parse->root, name);
		e.line = parse->top_lines[id];
		e.from = CONF_FROM_TOP;
	}
	return e;
}

static uint64_t
eff_number(struct eff e, enum conf_opt id, uint64_t def)
{
	char why[8];
	uint64_t n;

	if (e.value == NULL || parse_number(e.value, opt_table[id].min,
	    opt_table[id].max, &n, why, sizeof(why)) == -1)
		return def;
	return n;
}

static bool
eff_bool(struct eff e, bool def)
{
	bool b;

	if (e.value == NULL || parse_bool(e.value, &b) == -1)
		return def;
	return b;
}

/* Expand `~` in a path option; "~nosuchuser" is an error. */
static int
expand_path(struct eff e, const char *account, enum conf_opt id, char **out)
{
	char buf[80];

	*out = conf_expand_tilde(e.value);
	if ((*out)[0] == '~') {
		free(*out);
		*out = NULL;
		return fail_at(e.line, account, opt_table[id].name, "cannot "
		    "expand '%s' (unknown user or no home directory)",
		    shown(e.value, buf, sizeof(buf)));
	}
	return 0;
}

/* Copy and check one account (popfetch.conf(5)). */
/* An optional string option into *out (NULL when not set). */
static void
eff_copy(cfg_t *sec, const struct sec_info *si, enum conf_opt id, char **out)
{
	struct eff e = effective(sec, si, id);

	*out = e.value != NULL ? xstrdup(e.value) : NULL;
}

/*
 * doc/DESIGN.md §11: oauth2_provider and its options.  With a provider the token
 * comes from fetcher/oauth2.c: the account needs neither password nor
 * password_command (and may not set them itself; top-level ones are
 * ignored, as an account's own credential setting overrides them), auth
 * is xoauth2 (the default then) or oauthbearer, oauth2_client_id is
 * required, and custom needs oauth2_token_url.  `auth` is the effective
 * auth setting, for its line.
 */
static int
build_oauth2(struct conf_account *a, cfg_t *sec, const struct sec_info *si,
    struct eff auth)
{
	const char *name = a->name;
	struct eff prov, e;

	prov = effective(sec, si, CONF_OPT_OAUTH2_PROVIDER);
	if (prov.value == NULL) {
		/* The other oauth2_ options mean nothing without it. */
		static const enum conf_opt others[] = { CONF_OPT_OAUTH2_CLIENT_ID,
		    CONF_OPT_OAUTH2_CLIENT_SECRET, CONF_OPT_OAUTH2_TOKEN_URL,
		    CONF_OPT_OAUTH2_DEVICE_URL, CONF_OPT_OAUTH2_AUTH_URL,
		    CONF_OPT_OAUTH2_SCOPE, CONF_OPT_OAUTH2_TENANT };
		size_t i;

		for (i = 0; i < NELEM(others); i++)
			if (cfg_size(sec, opt_table[others[i]].name) > 0)
				return fail_at(si->lines[others[i]], name,
				    opt_table[others[i]].name, "set without "
				    "oauth2_provider (microsoft, google or "
				    "custom)");
		return 0;
	}
	a->oauth2_provider = (enum conf_oauth2_provider)parse_name(prov.value,
	    provider_names, NELEM(provider_names));
	if (auth.value == NULL)
		a->auth = CONF_AUTH_XOAUTH2;
	else if (a->auth != CONF_AUTH_XOAUTH2 &&
	    a->auth != CONF_AUTH_OAUTHBEARER)
		return fail_at(auth.line, name, "auth", "auth = %s cannot use "
		    "an OAuth2 token (oauth2_provider = %s); use auth = "
		    "xoauth2 or oauthbearer", auth_kinds[a->auth].name,
		    prov.value);
	if (cfg_size(sec, "password") > 0)
		return fail_at(si->lines[CONF_OPT_PASSWORD], name, "password",
		    "set together with oauth2_provider (line %d); use one of "
		    "them", prov.line);
	if (cfg_size(sec, "password_command") > 0)
		return fail_at(si->lines[CONF_OPT_PASSWORD_COMMAND], name,
		    "password_command", "set together with oauth2_provider "
		    "(line %d); use one of them", prov.line);
	if ((e = effective(sec, si, CONF_OPT_OAUTH2_CLIENT_ID)).value == NULL)
		return fail_at(prov.line, name, "oauth2_client_id", "missing: "
		    "oauth2_provider = %s needs the client ID of an "
		    "application registered with the provider (see "
		    "popfetch.conf(5))", prov.value);
	a->oauth2_client_id = xstrdup(e.value);
	if (a->oauth2_provider == CONF_OAUTH2_CUSTOM &&
	    effective(sec, si, CONF_OPT_OAUTH2_TOKEN_URL).value == NULL)
		return fail_at(prov.line, name, "oauth2_token_url", "missing: "
		    "oauth2_provider = custom needs oauth2_token_url");
	if (a->oauth2_provider != CONF_OAUTH2_MICROSOFT &&
	    (e = effective(sec, si, CONF_OPT_OAUTH2_TENANT)).value != NULL)
		return fail_at(e.line, name, "oauth2_tenant", "only for "
		    "oauth2_provider = microsoft");
	eff_copy(sec, si, CONF_OPT_OAUTH2_CLIENT_SECRET, &a->oauth2_client_secret);
	eff_copy(sec, si, CONF_OPT_OAUTH2_TOKEN_URL, &a->oauth2_token_url);
	eff_copy(sec, si, CONF_OPT_OAUTH2_DEVICE_URL, &a->oauth2_device_url);
	eff_copy(sec, si, CONF_OPT_OAUTH2_AUTH_URL, &a->oauth2_auth_url);
	eff_copy(sec, si, CONF_OPT_OAUTH2_SCOPE, &a->oauth2_scope);
	eff_copy(sec, si, CONF_OPT_OAUTH2_TENANT, &a->oauth2_tenant);
	return 0;
}

static int
build_account(struct conf_account *a, cfg_t *sec, const struct sec_info *si)
{
	struct eff e, pw, cmd, tls, ca;
	const char *name = cfg_title(sec);
	struct stat st;
	cfg_t *cred;
	const int *cred_lines;
	enum conf_from cred_from;
	int id;

	a->name = xstrdup(name);
	/* Where every value comes from (popfetch config); the pair password,
	 * password_command is corrected below. */
	for (id = CONF_OPT_TIMEOUT; id < CONF_OPT_COUNT; id++) {
		e = effective(sec, si, (enum conf_opt)id);
		a->origin[id].from = e.from;
		a->origin[id].line = e.line;
	}

	if ((e = effective(sec, si, CONF_OPT_HOST)).value == NULL)
		return fail_at(si->start_line, name, "host", "missing "
		    "(required)");
	a->host = xstrdup(e.value);

	tls = effective(sec, si, CONF_OPT_TLS);
	a->tls = tls.value != NULL ? (enum conf_tls)parse_name(tls.value,
	    tls_names, NELEM(tls_names)) : CONF_TLS_IMPLICIT;
	a->port = (unsigned)eff_number(effective(sec, si, CONF_OPT_PORT), CONF_OPT_PORT,
	    a->tls == CONF_TLS_IMPLICIT ? CONF_PORT_POP3S : CONF_PORT_POP3);
	a->tls_verify = eff_bool(effective(sec, si, CONF_OPT_TLS_VERIFY), true);
	if ((e = effective(sec, si, CONF_OPT_TLS_CA_FILE)).value != NULL &&
	    expand_path(e, name, CONF_OPT_TLS_CA_FILE, &a->tls_ca_file) == -1)
		return -1;
	ca = e;
	if ((e = effective(sec, si, CONF_OPT_TLS_FINGERPRINT)).value != NULL)
		a->has_fingerprint = conf_parse_fingerprint(e.value,
		    a->tls_fingerprint) == 0;
	a->tls_resume = eff_bool(effective(sec, si, CONF_OPT_TLS_RESUME), true);
	/* A CA file that will be used but does not exist: say where it is
	 * set now, not at the first connection. */
	if (a->tls_ca_file != NULL && a->tls != CONF_TLS_NONE &&
	    a->tls_verify && !a->has_fingerprint &&
	    stat(a->tls_ca_file, &st) == -1 &&
	    (errno == ENOENT || errno == ENOTDIR))
		return fail_at(ca.line, name, "tls_ca_file", "%s: %s",
		    a->tls_ca_file, strerror(errno));

	if ((e = effective(sec, si, CONF_OPT_USER)).value == NULL)
		return fail_at(si->start_line, name, "user", "missing "
		    "(required)");
	a->user = xstrdup(e.value);

	e = effective(sec, si, CONF_OPT_AUTH);
	a->auth = e.value != NULL ? (enum conf_auth)parse_auth(e.value) :
	    CONF_AUTH_AUTO;
	a->allow_plaintext_password = eff_bool(effective(sec, si,
	    CONF_OPT_ALLOW_PLAINTEXT), false);
	if (build_oauth2(a, sec, si, e) == -1)
		return -1;
	if (a->oauth2_provider != CONF_OAUTH2_NONE) {
		/* Top-level password and password_command are ignored. */
		a->origin[CONF_OPT_PASSWORD] = (struct conf_origin){
		    CONF_FROM_DEFAULT, 0 };
		a->origin[CONF_OPT_PASSWORD_COMMAND] = (struct conf_origin){
		    CONF_FROM_DEFAULT, 0 };
		goto credentials_done;
	}
	/* Without a provider top-level oauth2_ options are ignored. */
	for (id = CONF_OPT_OAUTH2_PROVIDER; id <= CONF_OPT_OAUTH2_SCOPE; id++)
		a->origin[id] = (struct conf_origin){ CONF_FROM_DEFAULT, 0 };

	/*
	 * password and password_command are one setting, "where the secret
	 * comes from": an account that names either ignores both top-level
	 * ones, so a top-level password_command can be overridden by an
	 * account's password and vice versa.
	 */
	if (cfg_size(sec, "password") > 0 ||
	    cfg_size(sec, "password_command") > 0) {
		cred = sec;
		cred_lines = si->lines;
		cred_from = CONF_FROM_ACCOUNT;
	} else {
		cred = parse->root;
		cred_lines = parse->top_lines;
		cred_from = CONF_FROM_TOP;
	}
	pw.value = cfg_size(cred, "password") > 0 ?
	    cfg_getstr(cred, "password") : NULL;
	pw.line = cred_lines[CONF_OPT_PASSWORD];
	cmd.value = cfg_size(cred, "password_command") > 0 ?
	    cfg_getstr(cred, "password_command") : NULL;
	cmd.line = cred_lines[CONF_OPT_PASSWORD_COMMAND];
	a->origin[CONF_OPT_PASSWORD].from = pw.value != NULL ? cred_from :
	    CONF_FROM_DEFAULT;
	a->origin[CONF_OPT_PASSWORD].line = pw.value != NULL ? pw.line : 0;
	a->origin[CONF_OPT_PASSWORD_COMMAND].from = cmd.value != NULL ?
	    cred_from : CONF_FROM_DEFAULT;
	a->origin[CONF_OPT_PASSWORD_COMMAND].line = cmd.value != NULL ?
	    cmd.line : 0;
	if (pw.value != NULL && cmd.value != NULL)
		return fail_at(cmd.line, name, "password_command", "set "
		    "together with password (line %d); use one of them",
		    pw.line);
	if (pw.value == NULL && cmd.value == NULL) {
		if (auth_kinds[a->auth].exposes == EXPOSES_TOKEN)
			return fail_at(si->start_line, name, "password",
			    "missing: with auth = %s set password_command "
			    "(prints the access token) or password (a static "
			    "token)", auth_kinds[a->auth].name);
		return fail_at(si->start_line, name, "password", "missing: "
		    "set password or password_command");
	}
	if (pw.value != NULL)
		a->password = xstrdup(pw.value);
	if (cmd.value != NULL)
		a->password_command = xstrdup(cmd.value);
credentials_done:

	/*
	 * popfetch.conf(5): no clear-text secret over tls = none unless the account
	 * says so.  APOP and SCRAM never send the password itself.  auth =
	 * auto is refused too: it is the user's intent we check, and "auto"
	 * over a plain connection states none.
	 */
	if (a->tls == CONF_TLS_NONE && !a->allow_plaintext_password) {
		if (a->auth == CONF_AUTH_AUTO)
			return fail_at(tls.line, name, "tls", "tls = none with "
			    "auth = auto may send the password in clear text; "
			    "set allow_plaintext_password = true, or auth = "
			    "apop (or scram-sha-256)");
		switch (auth_kinds[a->auth].exposes) {
		case EXPOSES_NOTHING:
			break;
		case EXPOSES_TOKEN:
			return fail_at(tls.line, name, "tls", "tls = none with "
			    "auth = %s sends the access token in clear text; "
			    "set allow_plaintext_password = true, or use tls = "
			    "implicit or starttls", auth_kinds[a->auth].name);
		case EXPOSES_PASSWORD:
			return fail_at(tls.line, name, "tls", "tls = none with "
			    "auth = %s sends the password in clear text; set "
			    "allow_plaintext_password = true, or use tls = "
			    "implicit or starttls", auth_kinds[a->auth].name);
		}
	}

	/*
	 * filter and mda are commands for /bin/sh -c: kept as written, no
	 * `~` expansion (the shell does its own).  mda replaces Maildir
	 * delivery, so with it maildir is neither required nor used, also
	 * when set (here or at the top level): a->maildir stays NULL, and
	 * nothing can deliver into a Maildir the account does not use.
	 */
	if ((e = effective(sec, si, CONF_OPT_FILTER)).value != NULL)
		a->filter = xstrdup(e.value);
	if ((e = effective(sec, si, CONF_OPT_MDA)).value != NULL) {
		a->mda = xstrdup(e.value);
	} else {
		if ((e = effective(sec, si, CONF_OPT_MAILDIR)).value == NULL)
			return fail_at(si->start_line, name, "maildir",
			    "missing (required)");
		if (expand_path(e, name, CONF_OPT_MAILDIR, &a->maildir) == -1)
			return -1;
	}

	a->delete = eff_bool(effective(sec, si, CONF_OPT_DELETE), false);
	a->delete_after_days = (unsigned)eff_number(effective(sec, si,
	    CONF_OPT_DELETE_AFTER_DAYS), CONF_OPT_DELETE_AFTER_DAYS, 0);
	a->forget_after_days = (unsigned)eff_number(effective(sec, si,
	    CONF_OPT_FORGET_AFTER_DAYS), CONF_OPT_FORGET_AFTER_DAYS,
	    CONF_DEFAULT_FORGET_AFTER_DAYS);
	a->max_size = eff_number(effective(sec, si, CONF_OPT_MAX_SIZE),
	    CONF_OPT_MAX_SIZE, 0);
	a->max_messages = (unsigned)eff_number(effective(sec, si,
	    CONF_OPT_MAX_MESSAGES), CONF_OPT_MAX_MESSAGES, 0);
	a->received_header = eff_bool(effective(sec, si, CONF_OPT_RECEIVED_HEADER),
	    true);
	a->enabled = eff_bool(effective(sec, si, CONF_OPT_ENABLED), true);
	a->timeout = (unsigned)eff_number(effective(sec, si, CONF_OPT_TIMEOUT),
	    CONF_OPT_TIMEOUT, CONF_DEFAULT_TIMEOUT);
	return 0;
}

/* "DIR/name", without doubling a trailing slash of DIR. */
static char *
path_join(const char *dir, const char *name)
{
	size_t n = strlen(dir);

	while (n > 1 && dir[n - 1] == '/')
		n--;
	return xasprintf("%.*s/%s", (int)n, dir, name);
}

/* The top-level settings and every account, in config order. */
static int
build_conf(struct conf *conf)
{
	cfg_t *root = parse->root;
	const struct sec_info *si;
	const char *xdg;
	struct eff e;
	size_t i;
	cfg_t *sec;

	e.value = cfg_size(root, "state_dir") > 0 ?
	    cfg_getstr(root, "state_dir") : NULL;
	e.line = parse->top_lines[CONF_OPT_STATE_DIR];
	e.from = e.value != NULL ? CONF_FROM_TOP : CONF_FROM_DEFAULT;
	conf->state_dir_origin.from = e.from;
	conf->state_dir_origin.line = e.line;
	if (e.value != NULL) {
		if (expand_path(e, NULL, CONF_OPT_STATE_DIR, &conf->state_dir) == -1)
			return -1;
	} else if ((xdg = getenv("XDG_STATE_HOME")) != NULL && xdg[0] != '\0') {
		conf->state_dir = path_join(xdg, "popfetch");
	} else {
		conf->state_dir = conf_expand_tilde("~/.local/state/popfetch");
		if (conf->state_dir[0] == '~')
			return fail_at(0, NULL, "state_dir", "no home "
			    "directory for the default; set state_dir");
	}
	conf->timeout = CONF_DEFAULT_TIMEOUT;
	if (cfg_size(root, "timeout") > 0)
		conf->timeout = (unsigned)eff_number((struct eff){
		    cfg_getstr(root, "timeout"), 0, CONF_FROM_TOP },
		    CONF_OPT_TIMEOUT,
		    CONF_DEFAULT_TIMEOUT);

	/* Top-level both: wrong even if every account overrides it. */
	if (cfg_size(root, "password") > 0 &&
	    cfg_size(root, "password_command") > 0)
		return fail_at(parse->top_lines[CONF_OPT_PASSWORD_COMMAND], NULL,
		    "password_command", "set together with password (line "
		    "%d); use one of them", parse->top_lines[CONF_OPT_PASSWORD]);

	conf->naccounts = cfg_size(root, "account");
	if (conf->naccounts == 0)
		return fail_at(0, NULL, NULL, "no account section: nothing to "
		    "fetch (add one: account NAME { host = ... })");
	conf->accounts = xcalloc(conf->naccounts, sizeof(*conf->accounts));
	for (i = 0; i < conf->naccounts; i++) {
		sec = cfg_getnsec(root, "account", (unsigned)i);
		if ((si = sec_info_find(sec)) == NULL)
			return fail_at(0, cfg_title(sec), NULL, "internal "
			    "error: section not seen while parsing");
		if (build_account(&conf->accounts[i], sec, si) == -1)
			return -1;
	}
	return 0;
}

/* Wipe the secrets libconfuse holds before it frees them. */
static void
wipe_cfg_secrets(cfg_t *cfg)
{
	static const char *const names[] = { "password", "password_command",
	    "oauth2_client_secret" };
	size_t i;
	char *s;

	for (i = 0; i < NELEM(names); i++) {
		if (cfg_size(cfg, names[i]) == 0)
			continue;
		if ((s = cfg_getstr(cfg, names[i])) != NULL)
			explicit_bzero(s, strlen(s));
	}
}

static bool
holds_password(cfg_t *root)
{
	unsigned i;

	if (cfg_size(root, "password") > 0)
		return true;
	for (i = 0; i < cfg_size(root, "account"); i++)
		if (cfg_size(cfg_getnsec(root, "account", i), "password") > 0)
			return true;
	return false;
}

int
conf_load(const char *path, struct conf **conf_r, struct pf_error *err)
{
	struct parse_state state;
	cfg_opt_t top_opts[CONF_OPT_COUNT + 2], acct_opts[CONF_OPT_COUNT + 1];
	struct conf *conf = NULL;
	struct stat st;
	char *buf = NULL;
	size_t len = 0, i;
	FILE *fp = NULL;
	cfg_t *root = NULL;
	int fd = -1, rc;

	*conf_r = NULL;
	memset(&state, 0, sizeof(state));
	state.path = path;
	state.err = err;
	parse = &state;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)) == -1) {
		pf_error_set_errno(err, PF_FAIL_CONFIG, "%s", path);
		state.failed = true;
		goto fail;
	}
	if (fstat(fd, &st) == -1) {
		pf_error_set_errno(err, PF_FAIL_CONFIG, "fstat(%s)", path);
		state.failed = true;
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		fail_at(0, NULL, NULL, "not a regular file");
		goto fail;
	}
	if (read_all(fd, &st, &buf, &len) == -1)
		goto fail;
	conf_scan(buf, len);
	state.text = buf;

	/* Every scalar option is a string we check ourselves (see top). */
	for (i = 0; i < CONF_OPT_COUNT; i++) {
		top_opts[i] = (cfg_opt_t)CFG_STR_CB(opt_table[i].name, NULL,
		    CFGF_NODEFAULT, opt_parse_cb);
		acct_opts[i] = top_opts[i];
	}
	acct_opts[CONF_OPT_COUNT] = (cfg_opt_t)CFG_END();
	top_opts[CONF_OPT_COUNT] = (cfg_opt_t)CFG_SEC("account", acct_opts,
	    CFGF_MULTI | CFGF_TITLE | CFGF_NO_TITLE_DUPES);
	top_opts[CONF_OPT_COUNT].validcb = account_done_cb;
	top_opts[CONF_OPT_COUNT + 1] = (cfg_opt_t)CFG_END();

	if ((root = cfg_init(top_opts, CFGF_NONE)) == NULL) {
		pf_error_set_errno(err, PF_FAIL_INTERNAL, "cfg_init");
		state.failed = true;
		goto fail;
	}
	cfg_set_error_function(root, conf_errfunc);
	state.root = root;
	rc = CFG_SUCCESS;
	if (state.cut > 0) {
		/* Only the lines before the scan's first error, if any. */
		if ((fp = fmemopen(buf, state.cut, "r")) == NULL) {
			pf_error_set_errno(err, PF_FAIL_INTERNAL, "fmemopen");
			state.failed = true;
			goto fail;
		}
		rc = cfg_parse_fp(root, fp);
		fclose(fp);
		fp = NULL;
	}
	/*
	 * The earliest error wins.  libconfuse read only the lines before
	 * the scan's error, so anything it reports at that line or later is
	 * an effect of the cut; so is a premature end of file, whatever line
	 * it names (a statement cut between its lines: "key =" on one line,
	 * the faulty value on the next).
	 */
	if (state.scan_line > 0 && (!state.failed || state.fail_line == 0 ||
	    state.fail_line >= state.scan_line || state.eof_error)) {
		state.failed = false;
		fail_at(state.scan_line, NULL, NULL, "%s", state.scan_msg);
		goto fail;
	}
	if (rc != CFG_SUCCESS || state.failed) {
		fail_at(0, NULL, NULL, "syntax error");
		goto fail;
	}
	if (state.unclosed_line > 0) {
		fail_at(state.unclosed_line, NULL, NULL, "the section opened "
		    "here is never closed (missing '}')");
		goto fail;
	}
	if (holds_password(root) && check_secure(&st) == -1)
		goto fail;

	conf = xcalloc(1, sizeof(*conf));
	conf->path = xstrdup(path);
	if (build_conf(conf) == -1)
		goto fail;

	for (i = 0; i < cfg_size(root, "account"); i++)
		wipe_cfg_secrets(cfg_getnsec(root, "account", (unsigned)i));
	wipe_cfg_secrets(root);
	cfg_free(root);
	explicit_bzero(buf, len);
	free(buf);
	parse_state_free();
	close(fd);
	parse = NULL;
	*conf_r = conf;
	return 0;

fail:
	if (root != NULL) {
		for (i = 0; i < cfg_size(root, "account"); i++)
			wipe_cfg_secrets(cfg_getnsec(root, "account",
			    (unsigned)i));
		wipe_cfg_secrets(root);
		cfg_free(root);
	}
	if (buf != NULL) {
		explicit_bzero(buf, len);
		free(buf);
	}
	parse_state_free();
	if (fd != -1)
		close(fd);
	conf_free(&conf);
	if (!state.failed)
		pf_error_set(err, PF_FAIL_CONFIG, "%s: invalid configuration",
		    path);
	parse = NULL;
	return -1;
}

void
conf_free(struct conf **confp)
{
	struct conf *conf = *confp;
	struct conf_account *a;
	size_t i;

	if (conf == NULL)
		return;
	for (i = 0; i < conf->naccounts; i++) {
		a = &conf->accounts[i];
		free(a->name);
		free(a->host);
		free(a->tls_ca_file);
		free(a->user);
		secret_free(&a->password);
		secret_free(&a->password_command);
		free(a->maildir);
		free(a->filter);
		free(a->mda);
		free(a->oauth2_client_id);
		secret_free(&a->oauth2_client_secret);
		free(a->oauth2_token_url);
		free(a->oauth2_device_url);
		free(a->oauth2_auth_url);
		free(a->oauth2_scope);
		free(a->oauth2_tenant);
		explicit_bzero(a, sizeof(*a));
	}
	free(conf->accounts);
	free(conf->path);
	free(conf->state_dir);
	free(conf);
	*confp = NULL;
}

/* Does `path` exist?  1 yes, 0 no, -1 error (err set). */
static int
exists(const char *path, struct pf_error *err)
{
	struct stat st;

	if (stat(path, &st) == 0)
		return 1;
	if (errno == ENOENT || errno == ENOTDIR)
		return 0;
	return pf_error_set_errno(err, PF_FAIL_CONFIG, "%s", path);
}

int
conf_locate(const char *explicit_path, char **path_r, struct pf_error *err)
{
	const char *named = explicit_path, *xdg;
	char *user_path = NULL;
	int r;

	*path_r = NULL;
	if (named == NULL && (named = getenv("POPFETCH_CONFIG")) != NULL &&
	    named[0] == '\0')
		named = NULL;
	if (named != NULL) {
		/* Named by -c or POPFETCH_CONFIG: it must exist. */
		if (named[0] == '\0')
			return pf_error_set(err, PF_FAIL_CONFIG,
			    "empty configuration file name");
		if ((r = exists(named, err)) == -1)
			return -1;
		if (r == 0) {
			errno = ENOENT;
			return pf_error_set_errno(err, PF_FAIL_CONFIG, "%s",
			    named);
		}
		*path_r = xstrdup(named);
		return 0;
	}

	if ((xdg = getenv("XDG_CONFIG_HOME")) != NULL && xdg[0] != '\0')
		user_path = path_join(xdg, "popfetch/config");
	else
		user_path = conf_expand_tilde("~/.config/popfetch/config");
	if (user_path[0] != '~') {
		if ((r = exists(user_path, err)) == -1)
			goto fail;
		if (r == 1) {
			*path_r = user_path;
			return 0;
		}
	}
	if ((r = exists(CONF_SYSTEM_PATH, err)) == -1)
		goto fail;
	if (r == 1) {
		free(user_path);
		*path_r = xstrdup(CONF_SYSTEM_PATH);
		return 0;
	}
	pf_error_set(err, PF_FAIL_CONFIG, "no configuration file: looked for "
	    "%s and " CONF_SYSTEM_PATH " (use -c FILE or set POPFETCH_CONFIG)",
	    user_path);
fail:
	free(user_path);
	return -1;
}

const struct conf_account *
conf_account_find(const struct conf *conf, const char *name)
{
	size_t i;

	for (i = 0; i < conf->naccounts; i++)
		if (strcmp(conf->accounts[i].name, name) == 0)
			return &conf->accounts[i];
	return NULL;
}

const char *
conf_opt_name(enum conf_opt opt)
{
	return (unsigned)opt < CONF_OPT_COUNT ? opt_table[opt].name : "?";
}

const char *
conf_tls_name(enum conf_tls tls)
{
	if ((size_t)tls < NELEM(tls_names))
		return tls_names[tls];
	return "?";
}

const char *
conf_oauth2_provider_name(enum conf_oauth2_provider p)
{
	return (size_t)p < NELEM(provider_names) ? provider_names[p] : "?";
}

const char *
conf_auth_name(enum conf_auth auth)
{
	if ((size_t)auth < NELEM(auth_kinds))
		return auth_kinds[auth].name;
	return "?";
}

bool
conf_auth_reveals_secret(enum conf_auth auth)
{
	return (size_t)auth >= NELEM(auth_kinds) ||
	    auth_kinds[auth].exposes != EXPOSES_NOTHING;
}

const char *
conf_library_version(void)
{
	return confuse_version;
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
conf_parse_fingerprint(const char *text, unsigned char out[32])
{
	unsigned char fpr[32];
	const char *p = text;
	size_t n = 0;
	int hi, lo;

	if (strncasecmp(p, "sha256:", 7) == 0)
		p += 7;
	while (*p != '\0') {
		if (n == sizeof(fpr))
			return -1;
		if ((hi = hexval(p[0])) == -1 || (lo = hexval(p[1])) == -1)
			return -1;
		fpr[n++] = (unsigned char)(hi << 4 | lo);
		p += 2;
		/* A colon may follow any byte but the last. */
		if (*p == ':') {
			if (n == sizeof(fpr) || p[1] == '\0')
				return -1;
			p++;
		}
	}
	if (n != sizeof(fpr))
		return -1;
	memcpy(out, fpr, sizeof(fpr));
	return 0;
}

char *
conf_expand_tilde(const char *path)
{
	const char *rest, *home = NULL;
	struct passwd *pw;
	char *user;
	size_t n;

	if (path[0] != '~')
		return xstrdup(path);
	rest = path + 1 + strcspn(path + 1, "/");
	if (rest == path + 1) {
		if ((home = getenv("HOME")) == NULL || home[0] == '\0') {
			pw = getpwuid(geteuid());
			home = pw != NULL ? pw->pw_dir : NULL;
		}
	} else {
		user = xstrndup(path + 1, (size_t)(rest - path - 1));
		pw = getpwnam(user);
		free(user);
		home = pw != NULL ? pw->pw_dir : NULL;
	}
	if (home == NULL || home[0] == '\0')
		return xstrdup(path);
	n = strlen(home);
	/* "/" + "/x" is "/x", not "//x". */
	if (n > 0 && home[n - 1] == '/' && rest[0] == '/')
		n--;
	return xasprintf("%.*s%s", (int)n, home, rest);
}
