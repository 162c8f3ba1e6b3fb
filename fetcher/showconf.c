/*
 * showconf.c - `popfetch config` (popfetch(1), THE CONFIG COMMAND).
 *
 *   # configuration: /home/a/.config/popfetch/config
 *   state_dir = "/home/a/.local/state/popfetch"  # default
 *
 *   account work
 *     host = "pop.example.com"                     # /home/a/.config/popfetch/config:3
 *     port = 995                                   # default (tls = implicit)
 *     password = ********                          # /home/a/.config/popfetch/config:7
 *     maildir = "/home/a/Mail/work"                # top level, /home/a/.config/popfetch/config:1
 *
 * Every option in the order of enum conf_opt (timeout last), one per line;
 * strings double-quoted with popfetch.conf(5)'s escapes, numbers, booleans and
 * names bare, "(none...)" for a value set nowhere.  The password and
 * oauth2_client_secret are printed as ******** whatever they are;
 * password_command is printed as written (it names where the secret is,
 * it is not the secret).  An account with an oauth2_provider has neither
 * password nor password_command; one without shows oauth2_provider only.
 */
#include "config.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "conf.h"
#include "showconf.h"

/* The column the "# origin" comments start at (0-based). */
#define SHOW_COMMENT_COL	46

/* What a password is shown as, always. */
#define SHOW_MASK	"********"

struct line {
	char	buf[4096];
	size_t	len;
	bool	truncated;
};

static void __attribute__((format(printf, 2, 3)))
add(struct line *l, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (l->len >= sizeof(l->buf) - 1) {
		l->truncated = true;
		return;
	}
	va_start(ap, fmt);
	n = vsnprintf(l->buf + l->len, sizeof(l->buf) - l->len, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(l->buf) - l->len) {
		l->len = sizeof(l->buf) - 1;
		l->truncated = true;
	} else
		l->len += (size_t)n;
}

/* A double-quoted string with popfetch.conf(5)'s escapes (\" \\ \n \t \r \xHH). */
static void
add_quoted(struct line *l, const char *s)
{
	const unsigned char *p;

	add(l, "\"");
	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		switch (*p) {
		case '"':
			add(l, "\\\"");
			break;
		case '\\':
			add(l, "\\\\");
			break;
		case '\n':
			add(l, "\\n");
			break;
		case '\t':
			add(l, "\\t");
			break;
		case '\r':
			add(l, "\\r");
			break;
		default:
			if (*p < 0x20 || *p == 0x7f)
				add(l, "\\x%02x", *p);
			else
				add(l, "%c", *p);
		}
	}
	add(l, "\"");
}

/* `s` quoted, or `none` (a "(none...)" text) when it is NULL. */
static void
add_opt_quoted(struct line *l, const char *s, const char *none)
{
	if (s != NULL)
		add_quoted(l, s);
	else
		add(l, "%s", none);
}

/* "FILE:LINE", "top level, FILE:LINE" or "default". */
static void
add_origin(struct line *l, const struct conf *conf, struct conf_origin o)
{
	switch (o.from) {
	case CONF_FROM_DEFAULT:
		add(l, "default");
		return;
	case CONF_FROM_TOP:
		add(l, "top level, ");
		break;
	case CONF_FROM_ACCOUNT:
		break;
	}
	if (o.line > 0)
		add(l, "%s:%d", conf->path, o.line);
	else
		add(l, "%s", conf->path);
}

/* Pad to the comment column (or one space past a long value); "# ". */
static void
add_comment(struct line *l)
{
	if (l->len < SHOW_COMMENT_COL)
		add(l, "%*s", (int)(SHOW_COMMENT_COL - l->len), "");
	else
		add(l, " ");
	add(l, "# ");
}

static void
put(struct line *l, FILE *out)
{
	/* Never cut a value silently: say so at the end of the line. */
	fprintf(out, "%.*s%s\n", (int)l->len, l->buf,
	    l->truncated ? " [truncated]" : "");
	l->len = 0;
	l->truncated = false;
}

static const char *
yesno(bool b)
{
	return b ? "true" : "false";
}

/* One option's line of an account's block. */
static void
show_opt(const struct conf *conf, const struct conf_account *a,
    enum conf_opt opt, FILE *out)
{
	struct conf_origin o = a->origin[opt];
	struct line l = { .len = 0 };
	const char *note = NULL, *preset = "(none)";
	size_t i;

	/* The credential not in use is left out: the account has one (none
	 * with an oauth2_provider).  The oauth2_ options other than
	 * oauth2_provider mean nothing without a provider. */
	if ((opt == CONF_OPT_PASSWORD && a->password == NULL) ||
	    (opt == CONF_OPT_PASSWORD_COMMAND && a->password_command == NULL))
		return;
	if (opt > CONF_OPT_OAUTH2_PROVIDER && opt <= CONF_OPT_OAUTH2_SCOPE &&
	    a->oauth2_provider == CONF_OAUTH2_NONE)
		return;
	if (a->oauth2_provider == CONF_OAUTH2_MICROSOFT)
		preset = "(none: the microsoft preset)";
	else if (a->oauth2_provider == CONF_OAUTH2_GOOGLE)
		preset = "(none: the google preset)";

	add(&l, "  %s = ", conf_opt_name(opt));
	switch (opt) {
	case CONF_OPT_STATE_DIR:
	case CONF_OPT_COUNT:
		return;
	case CONF_OPT_TIMEOUT:
		add(&l, "%u", a->timeout);
		break;
	case CONF_OPT_HOST:
		add_quoted(&l, a->host);
		break;
	case CONF_OPT_PORT:
		add(&l, "%u", a->port);
		/* The default follows tls: say which. */
		if (o.from == CONF_FROM_DEFAULT)
			note = conf_tls_name(a->tls);
		break;
	case CONF_OPT_TLS:
		add(&l, "%s", conf_tls_name(a->tls));
		break;
	case CONF_OPT_TLS_VERIFY:
		add(&l, "%s", yesno(a->tls_verify));
		break;
	case CONF_OPT_TLS_RESUME:
		add(&l, "%s", yesno(a->tls_resume));
		break;
	case CONF_OPT_TLS_CA_FILE:
		if (a->tls_ca_file != NULL)
			add_quoted(&l, a->tls_ca_file);
		else
			add(&l, "(none: the system store)");
		break;
	case CONF_OPT_TLS_FINGERPRINT:
		if (a->has_fingerprint) {
			add(&l, "\"sha256:");
			for (i = 0; i < sizeof(a->tls_fingerprint); i++)
				add(&l, "%s%02X", i > 0 ? ":" : "",
				    a->tls_fingerprint[i]);
			add(&l, "\"");
		} else
			add(&l, "(none)");
		break;
	case CONF_OPT_USER:
		add_quoted(&l, a->user);
		break;
	case CONF_OPT_PASSWORD:
		add(&l, SHOW_MASK);
		break;
	case CONF_OPT_PASSWORD_COMMAND:
		add_quoted(&l, a->password_command);
		break;
	case CONF_OPT_AUTH:
		add(&l, "%s", conf_auth_name(a->auth));
		break;
	case CONF_OPT_OAUTH2_PROVIDER:
		if (a->oauth2_provider != CONF_OAUTH2_NONE)
			add(&l, "%s", conf_oauth2_provider_name(
			    a->oauth2_provider));
		else
			add(&l, "(none)");
		break;
	case CONF_OPT_OAUTH2_CLIENT_ID:
		add_quoted(&l, a->oauth2_client_id);
		break;
	case CONF_OPT_OAUTH2_CLIENT_SECRET:
		/* A secret: never its value. */
		if (a->oauth2_client_secret != NULL)
			add(&l, SHOW_MASK);
		else
			add(&l, "(none)");
		break;
	case CONF_OPT_OAUTH2_TENANT:
		add_opt_quoted(&l, a->oauth2_tenant,
		    a->oauth2_provider == CONF_OAUTH2_MICROSOFT ?
		    "(none: common)" : "(none)");
		break;
	case CONF_OPT_OAUTH2_TOKEN_URL:
		add_opt_quoted(&l, a->oauth2_token_url, preset);
		break;
	case CONF_OPT_OAUTH2_DEVICE_URL:
		add_opt_quoted(&l, a->oauth2_device_url,
		    a->oauth2_provider == CONF_OAUTH2_GOOGLE ?
		    "(none: loopback redirect)" : preset);
		break;
	case CONF_OPT_OAUTH2_AUTH_URL:
		add_opt_quoted(&l, a->oauth2_auth_url, preset);
		break;
	case CONF_OPT_OAUTH2_SCOPE:
		add_opt_quoted(&l, a->oauth2_scope, preset);
		break;
	case CONF_OPT_ALLOW_PLAINTEXT:
		add(&l, "%s", yesno(a->allow_plaintext_password));
		break;
	case CONF_OPT_MAILDIR:
		if (a->maildir != NULL)
			add_quoted(&l, a->maildir);
		else
			add(&l, "(not used: mda is set)");
		break;
	case CONF_OPT_FILTER:
		if (a->filter != NULL)
			add_quoted(&l, a->filter);
		else
			add(&l, "(none)");
		break;
	case CONF_OPT_MDA:
		if (a->mda != NULL)
			add_quoted(&l, a->mda);
		else
			add(&l, "(none: deliver to maildir)");
		break;
	case CONF_OPT_DELETE:
		add(&l, "%s", yesno(a->delete));
		break;
	case CONF_OPT_DELETE_AFTER_DAYS:
		add(&l, "%u", a->delete_after_days);
		break;
	case CONF_OPT_FORGET_AFTER_DAYS:
		add(&l, "%u", a->forget_after_days);
		break;
	case CONF_OPT_MAX_SIZE:
		add(&l, "%ju", (uintmax_t)a->max_size);
		break;
	case CONF_OPT_MAX_MESSAGES:
		add(&l, "%u", a->max_messages);
		break;
	case CONF_OPT_RECEIVED_HEADER:
		add(&l, "%s", yesno(a->received_header));
		break;
	case CONF_OPT_ENABLED:
		add(&l, "%s", yesno(a->enabled));
		break;
	}
	add_comment(&l);
	add_origin(&l, conf, o);
	if (note != NULL)
		add(&l, " (tls = %s)", note);
	put(&l, out);
}

void
show_config(const struct conf *conf, const struct conf_account *const *sel,
    size_t n, FILE *out)
{
	struct line l = { .len = 0 };
	size_t i;
	int opt;

	fprintf(out, "# configuration: %s\n", conf->path);
	add(&l, "%s = ", conf_opt_name(CONF_OPT_STATE_DIR));
	add_quoted(&l, conf->state_dir);
	add_comment(&l);
	add_origin(&l, conf, conf->state_dir_origin);
	put(&l, out);
	for (i = 0; i < n; i++) {
		fprintf(out, "\naccount %s\n", sel[i]->name);
		/* timeout first in the enum (it may stand at the top level
		 * alone); shown last, with the other per-run limits. */
		for (opt = CONF_OPT_HOST; opt < CONF_OPT_COUNT; opt++)
			show_opt(conf, sel[i], (enum conf_opt)opt, out);
		show_opt(conf, sel[i], CONF_OPT_TIMEOUT, out);
	}
}
