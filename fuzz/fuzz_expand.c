/*
 * fuzz_expand.c - ${NAME} in the configuration (popfetch.conf(5), SYNTAX,
 * "Environment variables"), through conf_load().
 *
 * Input layout:
 *   byte 0      bits 0-3: FZ_A, FZ_B, FZ_C, FZ_D set (1) or unset (0);
 *               bit 4: the password stands at the top level, not in the
 *               account; bits 5-6: how many comment lines come first
 *   then        the values of FZ_A .. FZ_D, each ended by a NUL byte
 *   the rest    TEMPLATE: the text between the quotes of
 *                   password = "TEMPLATE"
 *               (a '"' that would end the string early becomes a '\'';
 *               anything else, newlines and NUL bytes included, stays)
 *
 * The file is
 *   [comment lines, with quotes and ${FZ_A} in them]
 *   [password = "TEMPLATE"]          when bit 4 is set
 *   account work {
 *     host = "h"
 *     user = "u"
 *     [password = "TEMPLATE"]        when bit 4 is clear
 *     maildir = "/m"
 *   }
 *
 * A small model of the documented rules (double-quoted strings: libconfuse's
 * escapes, one line only; ${NAME} and ${NAME:-DEFAULT}) says what must come
 * out, and conf_load() must agree exactly:
 *   - a value: conf_load succeeds and the password is that value, byte for
 *     byte (set variables expanded exactly, defaults only for unset ones);
 *   - an unset variable (the first problem in the value): the message is
 *     exactly "FILE:LINE: [account work: ]option password: environment
 *     variable NAME is not set" -- never success, never an empty string;
 *   - any other error: exit 78, at the password's line, of the right kind.
 * Plus no crash, no leak (LeakSanitizer) and no file descriptor left open.
 * FUZZ_TRACE=1 prints the file's outcome and the model's.
 */
#include "config.h"

#include <ctype.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"
#include "error.h"
#include "fuzz_util.h"
#include "fuzz_conf_util.h"
#include "log.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NVARS	4
static const char *const var_names[NVARS] = { "FZ_A", "FZ_B", "FZ_C", "FZ_D" };

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log_init(-1, false);
	fz_conf_sandbox("fuzz_expand");
	return 0;
}

/* A growing byte buffer. */
struct buf {
	char	*p;
	size_t	 len, cap;
};

static void
buf_add(struct buf *b, const void *data, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		b->p = realloc(b->p, b->cap);
		FZ_CHECK(b->p != NULL);
	}
	memcpy(b->p + b->len, data, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void
buf_str(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

/* What the model expects. */
enum outcome {
	OUT_VALUE,		/* success, password == value */
	OUT_POSITIONAL,		/* an error of the text itself at that line */
	OUT_LEXER,		/* libconfuse refuses an escape */
	OUT_UNSET,		/* environment variable NAME is not set */
	OUT_BAD_REF,		/* malformed ${...} */
	OUT_NUL,		/* a \0 or \x00 escape */
	OUT_EMPTY,		/* the value is empty */
	OUT_CRLF,		/* the value holds CR or LF */
};

struct model {
	enum outcome	 out;
	struct buf	 value;
	char		 name[80];	/* OUT_UNSET, as the message shows it */
};

static int
hexdigit(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return c - 'A' + 10;
}

/*
 * Note a problem of the value; the first one stands.  A name is kept as the
 * message shows it: cut at 64 characters, then "...".
 */
static void
problem(struct model *m, enum outcome out, const char *name, size_t n)
{
	if (m->out != OUT_VALUE)
		return;
	m->out = out;
	if (name != NULL)
		snprintf(m->name, sizeof(m->name), "%.*s%s", (int)(n > 64 ?
		    64 : n), name, n > 64 ? "..." : "");
}

/*
 * The documented rules for the string s[0..n) that follows the opening
 * quote (it holds the closing one and the rest of the file).
 */
static void
model_string(const unsigned char *s, size_t n, struct model *m)
{
	size_t i = 0, j, k, namelen;
	const char *v;
	char *name;
	unsigned val;
	bool def, lexer = false;

	m->out = OUT_VALUE;
	/* A NUL byte anywhere from here on is an error of the text, and
	 * lies on this line or after a newline that leaves it unclosed. */
	if (memchr(s, '\0', n) != NULL) {
		m->out = OUT_POSITIONAL;
		return;
	}
	for (;;) {
		if (i >= n || s[i] == '\n') {
			m->out = OUT_POSITIONAL;	/* not closed on its line */
			return;
		}
		if (s[i] == '"')
			break;
		if (s[i] == '\\') {
			unsigned char d = s[i + 1];	/* i + 1 < n: s ends "\n */

			if (d == '\n') {
				m->out = OUT_POSITIONAL;
				return;
			}
			if (isdigit(d)) {
				for (j = i + 1; j < n && isdigit(s[j]); j++)
					;
				/* flex: the longest match; \[0-9]+ refused */
				if (j - i - 1 > 3 || memchr(s + i + 1, '8',
				    j - i - 1) != NULL || memchr(s + i + 1, '9',
				    j - i - 1) != NULL) {
					lexer = true;
					i = j;
					continue;
				}
				for (val = 0, k = i + 1; k < j; k++)
					val = val * 8 + (unsigned)(s[k] - '0');
				if (val > 0xff)
					lexer = true;
				else if (val == 0)
					problem(m, OUT_NUL, NULL, 0);
				else
					buf_add(&m->value, &(char){ (char)val }, 1);
				i = j;
				continue;
			}
			if (d == 'x' && isxdigit(s[i + 2])) {
				val = (unsigned)hexdigit(s[i + 2]);
				j = i + 3;
				if (isxdigit(s[j]))
					val = val * 16 + (unsigned)hexdigit(s[j++]);
				if (val == 0)
					problem(m, OUT_NUL, NULL, 0);
				else
					buf_add(&m->value, &(char){ (char)val }, 1);
				i = j;
				continue;
			}
			switch (d) {
			case 'n': d = '\n'; break;
			case 'r': d = '\r'; break;
			case 'b': d = '\b'; break;
			case 'f': d = '\f'; break;
			case 'a': d = '\a'; break;
			case 'e': d = 033; break;
			case 't': d = '\t'; break;
			case 'v': d = '\v'; break;
			default: break;
			}
			buf_add(&m->value, &d, 1);
			i += 2;
			continue;
		}
		if (s[i] != '$' || s[i + 1] != '{') {
			buf_add(&m->value, &s[i], 1);
			i++;
			continue;
		}
		/* ${ ... } on this line, before the closing quote */
		for (j = i + 2; j < n && s[j] != '}' && s[j] != '"' &&
		    s[j] != '\n'; j++)
			;
		if (j >= n || s[j] != '}') {
			m->out = OUT_POSITIONAL;
			return;
		}
		k = i + 2;
		namelen = 0;
		if (isalpha(s[k]) || s[k] == '_')
			while (k + namelen < j && (isalnum(s[k + namelen]) ||
			    s[k + namelen] == '_'))
				namelen++;
		def = k + namelen + 1 < j && s[k + namelen] == ':' &&
		    s[k + namelen + 1] == '-';
		if (namelen == 0 || (k + namelen != j && !def) ||
		    (def && (memchr(s + k + namelen + 2, '\\',
		    j - k - namelen - 2) != NULL || memchr(s + k + namelen + 2,
		    '{', j - k - namelen - 2) != NULL))) {
			problem(m, OUT_BAD_REF, NULL, 0);
		} else {
			name = malloc(namelen + 1);
			FZ_CHECK(name != NULL);
			memcpy(name, s + k, namelen);
			name[namelen] = '\0';
			if ((v = getenv(name)) != NULL)
				buf_str(&m->value, v);
			else if (def)
				buf_add(&m->value, s + k + namelen + 2,
				    j - k - namelen - 2);
			else
				problem(m, OUT_UNSET, name, namelen);
			free(name);
		}
		i = j + 1;
	}
	/*
	 * An error of the text (above) comes first wherever it stands on the
	 * line: libconfuse does not read that line.  Then libconfuse's own
	 * refusal of an escape: it comes before the value reaches us.
	 */
	if (lexer) {
		m->out = OUT_LEXER;
		return;
	}
	/* The checks of a password (popfetch.conf(5), password). */
	if (m->out == OUT_VALUE && m->value.len == 0)
		m->out = OUT_EMPTY;
	else if (m->out == OUT_VALUE && (memchr(m->value.p, '\r',
	    m->value.len) != NULL || memchr(m->value.p, '\n',
	    m->value.len) != NULL))
		m->out = OUT_CRLF;
}

/* err->what starts with "PATH:LINE: " and holds `needle` (if not NULL). */
static void
check_at(const struct pf_error *err, int line, const char *needle)
{
	char prefix[4300];
	int n;

	n = snprintf(prefix, sizeof(prefix), "%s:%d: ", fz_conf_path, line);
	FZ_CHECK(n > 0 && (size_t)n < sizeof(prefix));
	if (strncmp(err->what, prefix, (size_t)n) != 0 ||
	    (needle != NULL && strstr(err->what, needle) == NULL)) {
		fprintf(stderr, "want '%s...%s', got '%s'\n", prefix,
		    needle != NULL ? needle : "", err->what);
		FZ_CHECK(!"the error as the model says");
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const comments[] = {
		"# a \"comment ${FZ_A} '\n",
		"// ${NOPE} \"\n",
		"/* \"${FZ_B\" */\n",
	};
	struct conf *conf = (struct conf *)&conf;	/* poison */
	struct model m;
	struct pf_error err;
	struct buf file = { NULL, 0, 0 };
	const uint8_t *p = data, *end = data + size, *z;
	unsigned char *tmpl;
	size_t tlen, off = 0, i;
	int fd, rc, first_free_fd, pw_line = 0, ncomments;
	bool top;
	ssize_t n;
	uint8_t flags;

	if (size < 1)
		return 0;
	flags = *p++;
	top = (flags & 0x10) != 0;
	ncomments = (flags >> 5) & 3;
	for (i = 0; i < NVARS; i++) {
		z = memchr(p, '\0', (size_t)(end - p));
		if (z == NULL)
			z = end;
		if (flags & (1u << i)) {
			char *v = malloc((size_t)(z - p) + 1);

			FZ_CHECK(v != NULL);
			memcpy(v, p, (size_t)(z - p));
			v[z - p] = '\0';
			FZ_CHECK(setenv(var_names[i], v, 1) == 0);
			free(v);
		} else {
			unsetenv(var_names[i]);
		}
		p = z < end ? z + 1 : end;
	}
	tlen = (size_t)(end - p);
	tmpl = malloc(tlen + 1);
	FZ_CHECK(tmpl != NULL);
	memcpy(tmpl, p, tlen);
	/* No quote that would end the string before its end. */
	for (i = 0; i < tlen; i++) {
		if (tmpl[i] == '\\' && i + 1 < tlen)
			i++;
		else if (tmpl[i] == '"')
			tmpl[i] = '\'';
	}

	/* The file, and the password's line. */
	for (i = 0; i < (size_t)ncomments; i++)
		buf_str(&file, comments[i]);
	if (top) {
		pw_line = ncomments + 1;
		buf_str(&file, "password = \"");
		off = file.len;
		buf_add(&file, tmpl, tlen);
		buf_str(&file, "\"\n");
	}
	buf_str(&file, "account work {\n  host = \"h\"\n  user = \"u\"\n");
	if (!top) {
		pw_line = ncomments + 4;
		buf_str(&file, "  password = \"");
		off = file.len;
		buf_add(&file, tmpl, tlen);
		buf_str(&file, "\"\n");
	}
	buf_str(&file, "  maildir = \"/m\"\n}\n");
	free(tmpl);

	memset(&m, 0, sizeof(m));
	/* What follows the opening quote, to the end of the file (so that a
	 * string left open runs into the next lines, as it would). */
	model_string((const unsigned char *)file.p + off, file.len - off, &m);

	first_free_fd = fz_lowest_free_fd();
	fd = open(fz_conf_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	FZ_CHECK(fd >= 0);
	FZ_CHECK(fchmod(fd, 0600) == 0);
	for (off = 0; off < file.len; off += (size_t)n) {
		n = write(fd, file.p + off, file.len - off);
		FZ_CHECK(n > 0);
	}
	FZ_CHECK(close(fd) == 0);

	pf_error_clear(&err);
	rc = conf_load(fz_conf_path, &conf, &err);
	if (getenv("FUZZ_TRACE") != NULL)
		fprintf(stderr, "conf_load: %s; model: outcome %d, name '%s'\n",
		    rc == 0 ? "ok" : err.what, (int)m.out, m.name);
	if (m.out == OUT_VALUE) {
		if (rc != 0)
			fprintf(stderr, "want success, got '%s'\n", err.what);
		FZ_CHECK(rc == 0);
		FZ_CHECK(conf->naccounts == 1);
		FZ_CHECK(conf->accounts[0].password != NULL);
		FZ_CHECK(strlen(conf->accounts[0].password) == m.value.len);
		FZ_CHECK(memcmp(conf->accounts[0].password, m.value.p,
		    m.value.len) == 0);
		conf_free(&conf);
		FZ_CHECK(conf == NULL);
	} else {
		char want[4400];

		FZ_CHECK(rc == -1);
		FZ_CHECK(conf == NULL);
		fz_check_error(&err);
		FZ_CHECK(err.category == PF_FAIL_CONFIG);
		FZ_CHECK(pf_exit_code(err.category) == 78);
		switch (m.out) {
		case OUT_UNSET:
			snprintf(want, sizeof(want), "%s:%d: %soption password: "
			    "environment variable %s is not set", fz_conf_path,
			    pw_line, top ? "" : "account work: ", m.name);
			if (strcmp(err.what, want) != 0) {
				fprintf(stderr, "want '%s', got '%s'\n", want,
				    err.what);
				FZ_CHECK(!"the unset variable named");
			}
			break;
		case OUT_POSITIONAL:
			check_at(&err, pw_line, NULL);
			FZ_CHECK(strstr(err.what, "option password") == NULL);
			break;
		case OUT_LEXER:
			check_at(&err, pw_line, "escape");
			break;
		case OUT_BAD_REF:
			check_at(&err, pw_line, "option password: malformed ${...}");
			break;
		case OUT_NUL:
			check_at(&err, pw_line, "option password: holds a NUL");
			break;
		case OUT_EMPTY:
			check_at(&err, pw_line, "option password: is empty");
			break;
		case OUT_CRLF:
			check_at(&err, pw_line, "option password: contains a CR "
			    "or LF");
			break;
		case OUT_VALUE:
			break;
		}
	}
	free(m.value.p);
	free(file.p);
	FZ_CHECK(fz_lowest_free_fd() == first_free_fd);
	return 0;
}
