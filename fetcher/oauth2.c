/*
 * oauth2.c - OAuth2 tokens for XOAUTH2 and OAUTHBEARER.  See oauth2.h and
 * doc/DESIGN.md §11.
 *
 * RFC 6749 (refresh §6, errors §5.2), RFC 8628 (device grant), RFC 8252
 * and RFC 7636 (loopback redirect with PKCE), RFC 6750 (bearer tokens).
 * HTTP is fetcher/http.c's, JSON fetcher/json.c's.
 */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "crypto.h"
#include "fsutil.h"
#include "http.h"
#include "json.h"
#include "log.h"
#include "oauth2.h"
#include "params.h"
#include "xmalloc.h"

/* ---- providers ---- */

/*
 * The presets (popfetch.conf(5) lists them).  "{tenant}" in a Microsoft
 * URL is oauth2_tenant (default "common").  The scopes ask for a refresh token:
 * Microsoft's offline_access; Google's comes with access_type=offline.
 */
static const struct preset {
	enum conf_oauth2_provider id;
	const char	*token_url;
	const char	*device_url;	/* NULL: no device grant */
	const char	*auth_url;
	const char	*scope;
	const char	*auth_extra;	/* appended to the authorization URL */
} presets[] = {
	{ CONF_OAUTH2_MICROSOFT,
	  "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token",
	  "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/devicecode",
	  "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/authorize",
	  "https://outlook.office.com/POP.AccessAsUser.All offline_access",
	  NULL },
	{ CONF_OAUTH2_GOOGLE,
	  "https://oauth2.googleapis.com/token",
	  NULL,
	  "https://accounts.google.com/o/oauth2/v2/auth",
	  "https://mail.google.com/",
	  "access_type=offline&prompt=consent" },
};

/* An account's endpoints: its own settings over its provider's preset. */
struct endpoints {
	char		*token_url;
	char		*device_url;	/* NULL: none */
	char		*auth_url;	/* NULL: none */
	char		*scope;		/* NULL: none sent */
	const char	*auth_extra;
};

static char *
preset_url(const char *url, const char *tenant)
{
	const char *t;

	if (url == NULL)
		return NULL;
	if ((t = strstr(url, "{tenant}")) == NULL)
		return xstrdup(url);
	return xasprintf("%.*s%s%s", (int)(t - url), url, tenant,
	    t + strlen("{tenant}"));
}

static void
endpoints_get(const struct conf_account *a, struct endpoints *ep)
{
	const struct preset *p = NULL;
	const char *tenant = a->oauth2_tenant != NULL ? a->oauth2_tenant :
	    "common";
	size_t i;

	memset(ep, 0, sizeof(*ep));
	for (i = 0; i < sizeof(presets) / sizeof(presets[0]); i++)
		if (presets[i].id == a->oauth2_provider)
			p = &presets[i];
	ep->token_url = a->oauth2_token_url != NULL ?
	    xstrdup(a->oauth2_token_url) :
	    p != NULL ? preset_url(p->token_url, tenant) : NULL;
	ep->device_url = a->oauth2_device_url != NULL ?
	    xstrdup(a->oauth2_device_url) :
	    p != NULL ? preset_url(p->device_url, tenant) : NULL;
	ep->auth_url = a->oauth2_auth_url != NULL ?
	    xstrdup(a->oauth2_auth_url) :
	    p != NULL ? preset_url(p->auth_url, tenant) : NULL;
	ep->scope = a->oauth2_scope != NULL ? xstrdup(a->oauth2_scope) :
	    p != NULL ? xstrdup(p->scope) : NULL;
	ep->auth_extra = p != NULL ? p->auth_extra : NULL;
}

static void
endpoints_free(struct endpoints *ep)
{
	free(ep->token_url);
	free(ep->device_url);
	free(ep->auth_url);
	free(ep->scope);
	memset(ep, 0, sizeof(*ep));
}

/* ---- the token file ---- */

char *
oauth2_token_path(const char *state_dir, const char *name)
{
	/* Account names are [A-Za-z0-9._@+-], not starting with '.' or '-'
	 * (config/conf.c): safe as they are in a file name. */
	return xasprintf("%s/oauth2.%s", state_dir, name);
}

void
oauth2_tokens_free(struct oauth2_tokens *t)
{
	secret_free(&t->access_token);
	secret_free(&t->refresh_token);
	t->expires_at = 0;
}

int
oauth2_tokens_parse(const char *text, size_t len, struct oauth2_tokens *t,
    struct pf_error *err)
{
	const char *p = text, *end = text + len, *nl, *eq;
	size_t klen, vlen;
	char **dst;

	memset(t, 0, sizeof(*t));
	if (memchr(text, '\0', len) != NULL)
		return pf_error_set(err, PF_FAIL_CONFIG, "holds a NUL byte");
	for (; p < end; p = nl + 1) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			nl = end;
		if (p == nl || *p == '#')
			continue;
		if ((eq = memchr(p, '=', (size_t)(nl - p))) == NULL) {
			oauth2_tokens_free(t);
			return pf_error_set(err, PF_FAIL_CONFIG, "a line "
			    "without '='");
		}
		klen = (size_t)(eq - p);
		vlen = (size_t)(nl - eq - 1);
		dst = NULL;
		if (klen == 12 && memcmp(p, "access_token", 12) == 0)
			dst = &t->access_token;
		else if (klen == 13 && memcmp(p, "refresh_token", 13) == 0)
			dst = &t->refresh_token;
		else if (klen == 10 && memcmp(p, "expires_at", 10) == 0) {
			long long v = 0;
			size_t i;

			for (i = 0; i < vlen && i < 18; i++) {
				if (eq[1 + i] < '0' || eq[1 + i] > '9')
					break;
				v = v * 10 + (eq[1 + i] - '0');
			}
			if (vlen == 0 || i != vlen) {
				oauth2_tokens_free(t);
				return pf_error_set(err, PF_FAIL_CONFIG,
				    "expires_at is not a time");
			}
			t->expires_at = v;
		}
		if (dst != NULL && vlen > 0) {
			secret_free(dst);
			*dst = xmalloc(vlen + 1);
			memcpy(*dst, eq + 1, vlen);
			(*dst)[vlen] = '\0';
		}
	}
	return 0;
}

/* "run: chmod 600 FILE" and friends, as config/conf.c says them. */
static int
check_file_secure(const struct stat *st, const char *path,
    struct pf_error *err)
{
	uid_t euid = geteuid();

	if (!S_ISREG(st->st_mode))
		return pf_error_set(err, PF_FAIL_CONFIG, "token file %s is not "
		    "a regular file", path);
	if (st->st_uid != euid) {
		char me[64], owner[64];

		pf_uid_name(euid, me, sizeof(me));
		pf_uid_name(st->st_uid, owner, sizeof(owner));
		return pf_error_set(err, PF_FAIL_CONFIG, "token file %s "
		    "belongs to %s, not %s; run: chown %s %s", path, owner,
		    me, me, path);
	}
	if ((st->st_mode & (S_IRWXG | S_IRWXO)) != 0)
		return pf_error_set(err, PF_FAIL_CONFIG, "token file %s is "
		    "readable or writable by group or others (mode %04o); "
		    "run: chmod 600 %s", path,
		    (unsigned)(st->st_mode & 07777), path);
	return 0;
}

/* Read the token file; 1 if there is none. */
static int
tokens_read(const char *path, const char *name, struct oauth2_tokens *t,
    struct pf_error *err)
{
	char *buf;
	struct stat st;
	ssize_t n;
	size_t len = 0;
	int fd, rc;

	memset(t, 0, sizeof(*t));
	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1) {
		if (errno == ENOENT)
			return 1;
		return pf_error_set_errno(err, errno == ELOOP ?
		    PF_FAIL_CONFIG : PF_FAIL_IO, "token file %s", path);
	}
	if (fstat(fd, &st) == -1) {
		close(fd);
		return pf_error_set_errno(err, PF_FAIL_IO, "token file %s",
		    path);
	}
	if (check_file_secure(&st, path, err) == -1) {
		close(fd);
		return -1;
	}
	buf = xmalloc(OAUTH2_TOKEN_FILE_MAX + 1);
	while (len < OAUTH2_TOKEN_FILE_MAX &&
	    (n = read(fd, buf + len, OAUTH2_TOKEN_FILE_MAX - len)) != 0) {
		if (n == -1) {
			if (errno == EINTR)
				continue;
			pf_error_set_errno(err, PF_FAIL_IO, "token file %s",
			    path);
			close(fd);
			crypto_cleanse(buf, len);
			free(buf);
			return -1;
		}
		len += (size_t)n;
	}
	close(fd);
	rc = oauth2_tokens_parse(buf, len, t, err);
	crypto_cleanse(buf, len);
	free(buf);
	if (rc == -1) {
		char what[128];

		snprintf(what, sizeof(what), "%.100s", err->what);
		return pf_error_set(err, PF_FAIL_CONFIG, "token file %s is "
		    "damaged (%s); run: popfetch authorize -a %s", path,
		    what, name);
	}
	return 0;
}

/* Write the tokens to path, durably (doc/DESIGN.md §3.4's durability):
 * a rotated refresh token that a power loss took back would be refused. */
static int
tokens_write(const char *state_dir, const char *path,
    const struct oauth2_tokens *t, struct pf_error *err)
{
	char *text;
	int rc;

	text = xasprintf("# popfetch OAuth2 tokens (popfetch authorize); "
	    "keep secret\naccess_token=%s\nexpires_at=%lld\n%s%s%s",
	    t->access_token != NULL ? t->access_token : "",
	    t->expires_at,
	    t->refresh_token != NULL ? "refresh_token=" : "",
	    t->refresh_token != NULL ? t->refresh_token : "",
	    t->refresh_token != NULL ? "\n" : "");
	rc = pf_replace_private(state_dir, path, text, strlen(text), true,
	    "token file", err);
	secret_free(&text);
	return rc;
}

/*
 * The account's token lock, state_dir/oauth2-lock.NAME (not oauth2.NAME.lock,
 * which would be the token file of an account named NAME.lock): held from
 * reading the file to writing the new one.  Waits up to `timeout` seconds (a
 * refresh takes one request): a second refresh with a refresh token that
 * the first one just rotated away would be refused (invalid_grant).
 */
static int
token_lock(const char *state_dir, const char *name, unsigned timeout,
    int *fd_r, struct pf_error *err)
{
	char *path;
	time_t deadline = time(NULL) + (time_t)timeout;
	int fd;

	if (pf_mkdirs(state_dir, err) == -1)
		return -1;
	path = xasprintf("%s/oauth2-lock.%s", state_dir, name);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd == -1) {
		pf_error_set_errno(err, PF_FAIL_IO, "%s", path);
		free(path);
		return -1;
	}
	while (flock(fd, LOCK_EX | LOCK_NB) == -1) {
		if (errno != EWOULDBLOCK && errno != EINTR) {
			pf_error_set_errno(err, PF_FAIL_IO, "flock %s", path);
			goto fail;
		}
		if (time(NULL) >= deadline) {
			pf_error_set(err, PF_FAIL_TEMP, "the OAuth2 tokens of "
			    "account %s are being renewed by another popfetch "
			    "(%s held for %u s)", name, path, timeout);
			goto fail;
		}
		usleep(50 * 1000);
	}
	free(path);
	*fd_r = fd;
	return 0;
fail:
	close(fd);
	free(path);
	return -1;
}

static void
token_unlock(int *fd)
{
	if (*fd != -1)
		close(*fd);	/* drops the flock */
	*fd = -1;
}

/* ---- the token endpoint ---- */

static void
http_settings_of(const struct conf_account *a, struct http_settings *hs)
{
	hs->ca_file = a->tls_ca_file;
	hs->timeout = a->timeout;
}

/*
 * POST `form` to the token (or device) endpoint and read the answer:
 * 0 with *t filled (a 2xx token response); 1 with *oerr filled (a 4xx
 * OAuth2 error response: the caller decides); -1 with err set for
 * anything else (75 for 5xx and 429, 76 for what is not the JSON the
 * grant defines).  When device is not NULL a 2xx answer is a device
 * authorization response instead.
 */
static int
endpoint_post(const char *url, const char *form, const struct conf_account *a,
    struct json_token *t, struct json_device *device,
    struct json_oauth_error *oerr, struct pf_error *err)
{
	struct http_settings hs;
	struct http_response r;
	char shown[256];
	int rc;

	http_settings_of(a, &hs);
	if (json_load(err) == -1 ||
	    http_post_form(url, form, &hs, &r, err) == -1)
		return -1;
	http_url_shown(url, shown, sizeof(shown));
	if (r.status >= 200 && r.status < 300) {
		struct pf_error perr;

		pf_error_clear(&perr);
		if (device != NULL)
			rc = json_parse_device(r.body, r.len, device, &perr);
		else if (t != NULL)
			rc = json_parse_token(r.body, r.len, t, &perr);
		else
			rc = pf_error_set(&perr, PF_FAIL_INTERNAL, "nowhere "
			    "to put the answer");
		if (rc == -1)
			pf_error_set(err, PF_FAIL_PROTO, "%s: %s", shown,
			    perr.what);
		http_response_free(&r);
		return rc;
	}
	if (r.status >= 500 || r.status == 429) {
		pf_error_set(err, PF_FAIL_TEMP, "%s: the server failed "
		    "(HTTP %ld); try again later", shown, r.status);
		http_response_free(&r);
		return -1;
	}
	if (r.status >= 400) {
		struct pf_error perr;

		pf_error_clear(&perr);
		rc = json_parse_oauth_error(r.body, r.len, oerr, &perr);
		http_response_free(&r);
		if (rc == -1)
			return pf_error_set(err, PF_FAIL_PROTO, "%s: HTTP %ld "
			    "without an OAuth2 error (%s)", shown, r.status,
			    perr.what);
		return 1;
	}
	http_response_free(&r);
	return pf_error_set(err, PF_FAIL_PROTO, "%s: unexpected HTTP %ld",
	    shown, r.status);
}

/* The provider's words for an error response, after our own. */
static void
add_description(struct pf_error *err, const struct json_oauth_error *e)
{
	if (e->description != NULL)
		pf_error_set_server(err, e->description,
		    strlen(e->description));
}

/* Add the client's credentials to a form (RFC 6749 §2.3.1, in the body:
 * what both presets document for native apps). */
static void
form_client(char **form, const struct conf_account *a)
{
	http_form_add(form, "client_id", a->oauth2_client_id);
	if (a->oauth2_client_secret != NULL)
		http_form_add(form, "client_secret", a->oauth2_client_secret);
}

/* A token response into the stored form, keeping the old refresh token
 * when no new one came (RFC 6749 §6: rotation is the server's choice). */
static void
tokens_from_response(struct oauth2_tokens *t, struct json_token *jt,
    time_t now)
{
	secret_free(&t->access_token);
	t->access_token = jt->access_token;
	jt->access_token = NULL;
	t->expires_at = (long long)now + (jt->expires_in >= 0 ?
	    jt->expires_in : OAUTH2_DEFAULT_EXPIRES);
	if (jt->refresh_token != NULL) {
		secret_free(&t->refresh_token);
		t->refresh_token = jt->refresh_token;
		jt->refresh_token = NULL;
	}
}

static int
refresh(const struct conf_account *a, const struct endpoints *ep,
    struct oauth2_tokens *t, struct pf_error *err)
{
	struct json_token jt = { 0 };
	struct json_oauth_error oe = { 0 };
	char *form = NULL;
	time_t now = time(NULL);
	int rc;

	http_form_add(&form, "grant_type", "refresh_token");
	http_form_add(&form, "refresh_token", t->refresh_token);
	form_client(&form, a);
	log_debug("%s: refreshing the OAuth2 access token", a->name);
	rc = endpoint_post(ep->token_url, form, a, &jt, NULL, &oe, err);
	secret_free(&form);
	if (rc == 1) {
		if (strcmp(oe.error, "invalid_client") == 0 ||
		    strcmp(oe.error, "unauthorized_client") == 0)
			pf_error_set(err, PF_FAIL_AUTH, "the provider refused "
			    "the client (%.64s): check oauth2_client_id and "
			    "oauth2_client_secret of account %s", oe.error,
			    a->name);
		else
			pf_error_set(err, PF_FAIL_AUTH, "the provider refused "
			    "the refresh token (%.64s); run: popfetch "
			    "authorize -a %s", oe.error, a->name);
		add_description(err, &oe);
		json_oauth_error_free(&oe);
		return -1;
	}
	if (rc == -1)
		return -1;
	tokens_from_response(t, &jt, now);
	json_token_free(&jt);
	return 0;
}

int
oauth2_access_token(const char *state_dir, const struct conf_account *a,
    char **token_r, struct pf_error *err)
{
	struct oauth2_tokens t;
	struct endpoints ep;
	char *path;
	int lockfd = -1, rc = -1, r;

	*token_r = NULL;
	if (token_lock(state_dir, a->name, a->timeout, &lockfd, err) == -1)
		return -1;
	path = oauth2_token_path(state_dir, a->name);
	endpoints_get(a, &ep);
	if ((r = tokens_read(path, a->name, &t, err)) == -1)
		goto out;
	if (r == 1 || (t.refresh_token == NULL && t.access_token == NULL)) {
		pf_error_set(err, PF_FAIL_AUTH, "no OAuth2 tokens yet for "
		    "account %s; run: popfetch authorize -a %s", a->name,
		    a->name);
		goto out;
	}
	if (t.access_token == NULL || t.expires_at == 0 ||
	    t.expires_at - (long long)time(NULL) <= OAUTH2_REFRESH_MARGIN) {
		if (t.refresh_token == NULL) {
			pf_error_set(err, PF_FAIL_AUTH, "the OAuth2 access "
			    "token of account %s expired and there is no "
			    "refresh token; run: popfetch authorize -a %s",
			    a->name, a->name);
			goto out_tokens;
		}
		if (ep.token_url == NULL) {
			pf_error_set(err, PF_FAIL_CONFIG, "account %s: no "
			    "oauth2_token_url", a->name);
			goto out_tokens;
		}
		if (refresh(a, &ep, &t, err) == -1 ||
		    tokens_write(state_dir, path, &t, err) == -1)
			goto out_tokens;
	} else
		log_debug("%s: the stored OAuth2 access token is valid for "
		    "%lld s more", a->name,
		    t.expires_at - (long long)time(NULL));
	*token_r = t.access_token;
	t.access_token = NULL;
	rc = 0;
out_tokens:
	oauth2_tokens_free(&t);
out:
	endpoints_free(&ep);
	free(path);
	token_unlock(&lockfd);
	return rc;
}

/* ---- popfetch authorize ---- */

/*
 * Wait `seconds` (or until `deadline`), showing the time left on stderr:
 * on a terminal a line redrawn each second, else one line a minute (and
 * nothing with -q).
 */
static time_t	countdown_shown;	/* when the last line was, without a tty */

static void
countdown(const char *name, unsigned seconds, time_t deadline)
{
	bool tty = isatty(STDERR_FILENO);
	unsigned i;

	for (i = 0; i < seconds; i++) {
		time_t now = time(NULL);
		long left = (long)(deadline - now);

		if (left <= 0)
			break;
		if (log_verbosity() >= 0 &&
		    (tty || now - countdown_shown >= 60)) {
			countdown_shown = now;
			fprintf(stderr, tty ? "\r%s: waiting for sign-in, "
			    "%ld:%02ld left " : "%s: waiting for sign-in, "
			    "%ld:%02ld left\n", name, left / 60, left % 60);
			fflush(stderr);
		}
		sleep(1);
	}
}

static void
countdown_end(void)
{
	if (isatty(STDERR_FILENO) && log_verbosity() >= 0)
		fputs("\r\033[K", stderr);
}

/* A refused grant: 77, with the provider's words. */
static int
grant_refused(struct pf_error *err, const struct json_oauth_error *oe,
    const char *name, const char *what)
{
	if (strcmp(oe->error, "access_denied") == 0)
		pf_error_set(err, PF_FAIL_AUTH, "%s: the sign-in was declined "
		    "(access_denied)", what);
	else if (strcmp(oe->error, "expired_token") == 0)
		pf_error_set(err, PF_FAIL_AUTH, "%s: the code expired before "
		    "the sign-in (expired_token); run: popfetch authorize -a "
		    "%s", what, name);
	else
		pf_error_set(err, PF_FAIL_AUTH, "%s: the provider refused "
		    "(%.64s)", what, oe->error);
	add_description(err, oe);
	return -1;
}

/* RFC 8628: the device authorization grant. */
static int
device_grant(const struct conf_account *a, const struct endpoints *ep,
    FILE *out, struct json_token *jt, struct pf_error *err)
{
	static const char what[] = "device authorization";
	struct json_device dev;
	struct json_oauth_error oe = { 0 };
	char *form = NULL;
	unsigned interval;
	time_t deadline;
	int rc;

	http_form_add(&form, "client_id", a->oauth2_client_id);
	if (ep->scope != NULL)
		http_form_add(&form, "scope", ep->scope);
	rc = endpoint_post(ep->device_url, form, a, NULL, &dev, &oe, err);
	secret_free(&form);
	if (rc == 1) {
		grant_refused(err, &oe, a->name, what);
		json_oauth_error_free(&oe);
		return -1;
	}
	if (rc == -1)
		return -1;
	/* What the user must do, at once (doc/DESIGN.md §11). */
	fprintf(out, "To authorize account %s, open %s\nand enter the code "
	    "%s\n", a->name, dev.verification_uri, dev.user_code);
	if (dev.verification_uri_complete != NULL)
		fprintf(out, "(or open %s)\n", dev.verification_uri_complete);
	fflush(out);
	interval = dev.interval > 0 ? (unsigned)dev.interval :
	    OAUTH2_DEVICE_INTERVAL;
	deadline = time(NULL) + dev.expires_in;
	for (;;) {
		countdown(a->name, interval, deadline);
		if (time(NULL) >= deadline) {
			countdown_end();
			pf_error_set(err, PF_FAIL_AUTH, "%s: the code expired "
			    "before the sign-in; run: popfetch authorize -a %s",
			    what, a->name);
			rc = -1;
			break;
		}
		http_form_add(&form, "grant_type",
		    "urn:ietf:params:oauth:grant-type:device_code");
		http_form_add(&form, "device_code", dev.device_code);
		form_client(&form, a);
		rc = endpoint_post(ep->token_url, form, a, jt, NULL, &oe, err);
		secret_free(&form);
		if (rc != 1) {
			countdown_end();
			break;
		}
		if (strcmp(oe.error, "authorization_pending") == 0) {
			json_oauth_error_free(&oe);
			continue;
		}
		if (strcmp(oe.error, "slow_down") == 0) {
			/* RFC 8628 §3.5: 5 s more for this and every later
			 * request. */
			json_oauth_error_free(&oe);
			if (interval < OAUTH2_DEVICE_INTERVAL_MAX)
				interval += OAUTH2_DEVICE_INTERVAL;
			log_debug("%s: slow_down: polling every %u s", a->name,
			    interval);
			continue;
		}
		countdown_end();
		rc = grant_refused(err, &oe, a->name, what);
		json_oauth_error_free(&oe);
		break;
	}
	json_device_free(&dev);
	return rc;
}

/* base64url without padding (RFC 7636 §4.1, Appendix A). */
static char *
base64url(const void *data, size_t len)
{
	char *s = crypto_base64_encode(data, len), *p;

	if (s == NULL)
		fatalx("base64 encoding failed");
	for (p = s; *p != '\0'; p++) {
		if (*p == '+')
			*p = '-';
		else if (*p == '/')
			*p = '_';
		else if (*p == '=') {
			*p = '\0';
			break;
		}
	}
	return s;
}

static char *
random_b64url(size_t octets, struct pf_error *err)
{
	unsigned char raw[64];
	char *s;

	if (octets > sizeof(raw) || crypto_random(raw, octets) == -1) {
		pf_error_set(err, PF_FAIL_INTERNAL, "no random bytes");
		return NULL;
	}
	s = base64url(raw, octets);
	crypto_cleanse(raw, sizeof(raw));
	return s;
}

/*
 * The value of `name` in a query string ("a=1&b=2"), percent-decoded, as
 * a new string; NULL when absent or not decodable to printable text.
 */
static char *
query_param(const char *q, size_t qlen, const char *name)
{
	const char *p = q, *end = q + qlen, *amp;
	size_t nlen = strlen(name), i, o;
	char *v;

	for (; p < end; p = amp + 1) {
		if ((amp = memchr(p, '&', (size_t)(end - p))) == NULL)
			amp = end;
		const char *eq = memchr(p, '=', (size_t)(amp - p));

		if (eq == NULL || (size_t)(eq - p) != nlen ||
		    memcmp(p, name, nlen) != 0)
			continue;
		v = xmalloc((size_t)(amp - eq));
		for (i = 1, o = 0; eq + i < amp; i++) {
			int c = (unsigned char)eq[i];

			if (c == '%' && eq + i + 2 < amp &&
			    isxdigit((unsigned char)eq[i + 1]) &&
			    isxdigit((unsigned char)eq[i + 2])) {
				char hx[3] = { eq[i + 1], eq[i + 2], '\0' };

				c = (int)strtol(hx, NULL, 16);
				i += 2;
			} else if (c == '+')
				c = ' ';
			if (c < 0x20 || c == 0x7f) {
				secret_free(&v);
				return NULL;
			}
			v[o++] = (char)c;
		}
		v[o] = '\0';
		return v;
	}
	return NULL;
}

/* Answer the browser and close. */
static void
browser_reply(int fd, const char *status, const char *text)
{
	char *msg = xasprintf("HTTP/1.0 %s\r\nContent-Type: text/plain; "
	    "charset=utf-8\r\nContent-Length: %zu\r\nConnection: close\r\n"
	    "\r\n%s", status, strlen(text), text);
	size_t off = 0, len = strlen(msg);
	ssize_t n;

	while (off < len && (n = send(fd, msg + off, len - off,
	    MSG_NOSIGNAL)) > 0)
		off += (size_t)n;
	free(msg);
	close(fd);
}

/*
 * Read one request's first line from an accepted connection (at most
 * OAUTH2_LOOPBACK_REQUEST_MAX bytes, within a few seconds) and take the
 * query of "GET /PATH?QUERY HTTP/1.x".  1: not a redirect (answered);
 * 0: *code_r or *error_r set (not yet answered); -1: ignore.
 */
static int
read_redirect(int fd, const char *state, char **code_r, char **error_r)
{
	char *buf = xmalloc(OAUTH2_LOOPBACK_REQUEST_MAX + 1), *sp, *q, *got;
	size_t len = 0;
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	time_t until = time(NULL) + 5;
	ssize_t n;
	int rc = 1;

	*code_r = *error_r = NULL;
	while (len < OAUTH2_LOOPBACK_REQUEST_MAX &&
	    memchr(buf, '\n', len) == NULL && time(NULL) < until) {
		if (poll(&pfd, 1, 1000) <= 0)
			continue;
		n = recv(fd, buf + len, OAUTH2_LOOPBACK_REQUEST_MAX - len, 0);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	if (strncmp(buf, "GET /", 5) != 0 || (sp = strchr(buf + 4, ' ')) ==
	    NULL || memchr(buf, '\n', len) == NULL) {
		browser_reply(fd, "400 Bad Request", "popfetch: bad request\n");
		goto out;
	}
	*sp = '\0';
	if ((q = strchr(buf + 4, '?')) == NULL) {
		browser_reply(fd, "404 Not Found", "popfetch: not here\n");
		goto out;
	}
	q++;
	got = query_param(q, strlen(q), "state");
	if (got == NULL || strcmp(got, state) != 0) {
		/* Not our request (or a forged one): keep waiting. */
		free(got);
		browser_reply(fd, "400 Bad Request", "popfetch: this is not "
		    "the answer to the sign-in popfetch started (state "
		    "differs)\n");
		goto out;
	}
	free(got);
	*code_r = query_param(q, strlen(q), "code");
	*error_r = query_param(q, strlen(q), "error");
	if (*code_r == NULL && *error_r == NULL) {
		browser_reply(fd, "400 Bad Request", "popfetch: no code in "
		    "the redirect\n");
		goto out;
	}
	rc = 0;
out:
	crypto_cleanse(buf, len);
	free(buf);
	return rc;
}

/* RFC 8252 with RFC 7636: the loopback redirect grant with PKCE. */
static int
loopback_grant(const struct conf_account *a, const struct endpoints *ep,
    FILE *out, struct json_token *jt, struct pf_error *err)
{
	static const char what[] = "authorization";
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t slen = sizeof(sin);
	struct json_oauth_error oe = { 0 };
	unsigned char digest[CRYPTO_SHA256_LEN];
	char *verifier = NULL, *challenge = NULL, *state = NULL, *redirect = NULL;
	char *url = NULL, *form = NULL, *code = NULL, *oerr = NULL;
	time_t deadline = time(NULL) + OAUTH2_LOOPBACK_WAIT;
	int lfd, cfd, rc = -1;

	if ((lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return pf_error_set_errno(err, PF_FAIL_IO, "socket");
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    listen(lfd, 8) == -1 ||
	    getsockname(lfd, (struct sockaddr *)&sin, &slen) == -1) {
		pf_error_set_errno(err, PF_FAIL_IO, "listening on 127.0.0.1");
		goto out;
	}
	if ((verifier = random_b64url(OAUTH2_PKCE_OCTETS, err)) == NULL ||
	    (state = random_b64url(16, err)) == NULL)
		goto out;
	crypto_sha256(verifier, strlen(verifier), digest);
	challenge = base64url(digest, sizeof(digest));
	redirect = xasprintf("http://127.0.0.1:%u/",
	    (unsigned)ntohs(sin.sin_port));
	http_form_add(&url, "response_type", "code");
	http_form_add(&url, "client_id", a->oauth2_client_id);
	http_form_add(&url, "redirect_uri", redirect);
	if (ep->scope != NULL)
		http_form_add(&url, "scope", ep->scope);
	http_form_add(&url, "state", state);
	http_form_add(&url, "code_challenge", challenge);
	http_form_add(&url, "code_challenge_method", "S256");
	/* What the user must open, at once (doc/DESIGN.md §11). */
	fprintf(out, "To authorize account %s, open this URL in a browser on "
	    "this machine:\n%s%c%s%s%s\n", a->name, ep->auth_url,
	    strchr(ep->auth_url, '?') != NULL ? '&' : '?', url,
	    ep->auth_extra != NULL ? "&" : "",
	    ep->auth_extra != NULL ? ep->auth_extra : "");
	fflush(out);

	for (;;) {
		struct pollfd pfd = { .fd = lfd, .events = POLLIN };

		if (time(NULL) >= deadline) {
			countdown_end();
			pf_error_set(err, PF_FAIL_AUTH, "%s: no answer from "
			    "the browser within %d s; run: popfetch authorize "
			    "-a %s", what, OAUTH2_LOOPBACK_WAIT, a->name);
			goto out;
		}
		if (poll(&pfd, 1, 0) <= 0) {
			countdown(a->name, 1, deadline);
			continue;
		}
		if ((cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) == -1)
			continue;
		if (read_redirect(cfd, state, &code, &oerr) == 0)
			break;
	}
	countdown_end();
	if (code == NULL) {
		browser_reply(cfd, "200 OK", "popfetch: the sign-in failed; "
		    "see the terminal.\n");
		pf_error_set(err, PF_FAIL_AUTH, "%s: the sign-in failed "
		    "(%.64s)", what, oerr);
		goto out;
	}
	browser_reply(cfd, "200 OK", "popfetch: done; you may close this "
	    "window.\n");
	http_form_add(&form, "grant_type", "authorization_code");
	http_form_add(&form, "code", code);
	http_form_add(&form, "redirect_uri", redirect);
	http_form_add(&form, "code_verifier", verifier);
	form_client(&form, a);
	rc = endpoint_post(ep->token_url, form, a, jt, NULL, &oe, err);
	if (rc == 1) {
		rc = grant_refused(err, &oe, a->name, what);
		json_oauth_error_free(&oe);
	}
out:
	close(lfd);
	secret_free(&verifier);
	secret_free(&code);
	secret_free(&form);
	free(oerr);
	free(challenge);
	free(state);
	free(redirect);
	free(url);
	crypto_cleanse(digest, sizeof(digest));
	return rc;
}

int
oauth2_authorize(const char *state_dir, const struct conf_account *a,
    FILE *out, struct pf_error *err)
{
	struct oauth2_tokens t = { 0 };
	struct json_token jt = { 0 };
	struct endpoints ep;
	char *path = oauth2_token_path(state_dir, a->name);
	int lockfd = -1, rc = -1;
	time_t now;

	endpoints_get(a, &ep);
	if (ep.token_url == NULL) {
		pf_error_set(err, PF_FAIL_CONFIG, "account %s: no "
		    "oauth2_token_url", a->name);
		goto out;
	}
	/* Refuse a token file we would not read back, before the sign-in. */
	if (pf_mkdirs(state_dir, err) == -1 ||
	    tokens_read(path, a->name, &t, err) == -1)
		goto out;
	oauth2_tokens_free(&t);
	if (ep.device_url != NULL)
		rc = device_grant(a, &ep, out, &jt, err);
	else if (ep.auth_url != NULL)
		rc = loopback_grant(a, &ep, out, &jt, err);
	else
		pf_error_set(err, PF_FAIL_CONFIG, "account %s: set "
		    "oauth2_device_url or oauth2_auth_url for authorize",
		    a->name);
	if (rc == -1)
		goto out;
	rc = -1;
	now = time(NULL);
	tokens_from_response(&t, &jt, now);
	if (token_lock(state_dir, a->name, a->timeout, &lockfd, err) == -1 ||
	    tokens_write(state_dir, path, &t, err) == -1)
		goto out;
	fprintf(out, "Account %s is authorized; its tokens are in %s\n",
	    a->name, path);
	if (t.refresh_token == NULL)
		log_warnx("%s: the provider gave no refresh token: authorize "
		    "again when the access token expires (in %lld s)", a->name,
		    t.expires_at - (long long)now);
	fflush(out);
	rc = 0;
out:
	token_unlock(&lockfd);
	json_token_free(&jt);
	oauth2_tokens_free(&t);
	endpoints_free(&ep);
	free(path);
	return rc;
}
