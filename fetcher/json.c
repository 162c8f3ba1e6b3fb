/*
 * json.c - OAuth2 endpoint answers with json-c.  See json.h.
 *
 * json-c is used here and nowhere else (doc/DESIGN.md §1.2), and loaded
 * at first use (lib/dynlib.h: only OAuth2 needs it).  A strict
 * tokener with a small depth (OAUTH2_JSON_DEPTH) parses the whole buffer;
 * bytes after the object other than white space make it not JSON.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

#include "crypto.h"
#include "dynlib.h"
#include "json.h"
#include "log.h"
#include "params.h"
#include "xmalloc.h"

/* The functions we use, from the library loaded at first use. */
#define JSONC_FUNCS(X) \
	X(tokener_new_ex) \
	X(tokener_set_flags) \
	X(tokener_parse_ex) \
	X(tokener_get_parse_end) \
	X(tokener_get_error) \
	X(tokener_free) \
	X(object_put) \
	X(object_is_type) \
	X(object_object_get_ex) \
	X(object_get_string) \
	X(object_get_string_len) \
	X(object_get_int64)

#define JSONC_PTR(f)	__typeof__(json_##f) *f;
#define JSONC_NAME(f)	"json_" #f,

static struct {
	JSONC_FUNCS(JSONC_PTR)
} js;

static const char *const js_names[] = { JSONC_FUNCS(JSONC_NAME) };

static struct dynlib js_lib = {
	.soname = JSONC_SONAME, .package = "libjson-c5", .feature = "OAuth2",
	.names = js_names, .n = sizeof(js_names) / sizeof(js_names[0]),
	.table = &js,
};

_Static_assert(sizeof(js) == sizeof(js_names) / sizeof(js_names[0]) *
    sizeof(void *), "one pointer per name");

int
json_load(struct pf_error *err)
{
	return dynlib_load(&js_lib, err);
}

static void
wipe_free(char **p)
{
	if (*p != NULL) {
		crypto_cleanse(*p, strlen(*p));
		free(*p);
		*p = NULL;
	}
}

/* The top-level object of buf, or NULL with err set. */
static struct json_object *
parse_object(const char *buf, size_t len, const char *what,
    struct pf_error *err)
{
	struct json_tokener *tok;
	struct json_object *o;
	size_t used, i;

	if (len > OAUTH2_RESPONSE_MAX || len > INT_MAX) {
		pf_error_set(err, PF_FAIL_PROTO, "%s is too long", what);
		return NULL;
	}
	if (json_load(err) == -1)
		return NULL;
	if (memchr(buf, '\0', len) != NULL) {
		pf_error_set(err, PF_FAIL_PROTO, "%s is not JSON (NUL byte)",
		    what);
		return NULL;
	}
	if ((tok = js.tokener_new_ex(OAUTH2_JSON_DEPTH)) == NULL)
		fatalx("json_tokener_new_ex failed");
	js.tokener_set_flags(tok, JSON_TOKENER_STRICT |
	    JSON_TOKENER_VALIDATE_UTF8);
	o = js.tokener_parse_ex(tok, buf, (int)len);
	used = js.tokener_get_parse_end(tok);
	if (o == NULL || js.tokener_get_error(tok) != json_tokener_success) {
		js.object_put(o);
		js.tokener_free(tok);
		pf_error_set(err, PF_FAIL_PROTO, "%s is not JSON", what);
		return NULL;
	}
	js.tokener_free(tok);
	for (i = used; i < len; i++)
		if (strchr(" \t\r\n", buf[i]) == NULL) {
			js.object_put(o);
			pf_error_set(err, PF_FAIL_PROTO, "%s is not JSON "
			    "(data after the object)", what);
			return NULL;
		}
	if (!js.object_is_type(o, json_type_object)) {
		js.object_put(o);
		pf_error_set(err, PF_FAIL_PROTO, "%s is not a JSON object",
		    what);
		return NULL;
	}
	return o;
}

/*
 * Member `name` as a new string into *out: 0; absent (or null): 1, *out
 * NULL; not a string, empty, or holding a control byte: -1, err set.
 */
static int
get_string(struct json_object *o, const char *name, const char *what,
    char **out, struct pf_error *err)
{
	struct json_object *v;
	const char *s;
	size_t len, i;

	*out = NULL;
	if (!js.object_object_get_ex(o, name, &v) || v == NULL)
		return 1;
	if (!js.object_is_type(v, json_type_string))
		return pf_error_set(err, PF_FAIL_PROTO, "%s: %s is not a "
		    "string", what, name);
	s = js.object_get_string(v);
	len = (size_t)js.object_get_string_len(v);
	if (len == 0)
		return pf_error_set(err, PF_FAIL_PROTO, "%s: %s is empty",
		    what, name);
	for (i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return pf_error_set(err, PF_FAIL_PROTO, "%s: %s holds "
			    "a control character", what, name);
	*out = xmalloc(len + 1);
	memcpy(*out, s, len);
	(*out)[len] = '\0';
	return 0;
}

/*
 * Member `name` as a number of seconds (a JSON integer, or a decimal
 * string as some providers send) in 0..max: 0; absent: 1, *out = -1;
 * anything else: -1, err set.
 */
static int
get_seconds(struct json_object *o, const char *name, const char *what,
    long max, long *out, struct pf_error *err)
{
	struct json_object *v;
	long long n;
	const char *s;
	char *end;

	*out = -1;
	if (!js.object_object_get_ex(o, name, &v) || v == NULL)
		return 1;
	if (js.object_is_type(v, json_type_int)) {
		errno = 0;
		n = (long long)js.object_get_int64(v);
		if (errno != 0)
			n = -1;
	} else if (js.object_is_type(v, json_type_string)) {
		s = js.object_get_string(v);
		if (s[0] < '0' || s[0] > '9' ||
		    strlen(s) != (size_t)js.object_get_string_len(v))
			n = -1;
		else {
			errno = 0;
			n = strtoll(s, &end, 10);
			if (errno != 0 || *end != '\0')
				n = -1;
		}
	} else
		n = -1;
	if (n < 0)
		return pf_error_set(err, PF_FAIL_PROTO, "%s: %s is not a "
		    "number of seconds", what, name);
	*out = n > max ? max : (long)n;
	return 0;
}

int
json_parse_token(const char *buf, size_t len, struct json_token *t,
    struct pf_error *err)
{
	static const char what[] = "token response";
	struct json_object *o;
	char *type = NULL;
	int rc = -1;

	memset(t, 0, sizeof(*t));
	t->expires_in = -1;
	if ((o = parse_object(buf, len, what, err)) == NULL)
		return -1;
	switch (get_string(o, "access_token", what, &t->access_token, err)) {
	case -1:
		goto out;
	case 1:
		pf_error_set(err, PF_FAIL_PROTO, "%s has no access_token",
		    what);
		goto out;
	}
	if (get_string(o, "token_type", what, &type, err) == -1)
		goto out;
	if (type != NULL && strcasecmp(type, "Bearer") != 0) {
		pf_error_set(err, PF_FAIL_PROTO, "%s: token_type is not "
		    "Bearer", what);
		goto out;
	}
	if (get_string(o, "refresh_token", what, &t->refresh_token,
	    err) == -1 ||
	    get_seconds(o, "expires_in", what, OAUTH2_TOKEN_EXPIRES_MAX,
	    &t->expires_in, err) == -1)
		goto out;
	rc = 0;
out:
	free(type);
	js.object_put(o);
	if (rc == -1)
		json_token_free(t);
	return rc;
}

int
json_parse_oauth_error(const char *buf, size_t len,
    struct json_oauth_error *e, struct pf_error *err)
{
	static const char what[] = "error response";
	struct json_object *o;
	int rc = -1;

	memset(e, 0, sizeof(*e));
	if ((o = parse_object(buf, len, what, err)) == NULL)
		return -1;
	switch (get_string(o, "error", what, &e->error, err)) {
	case -1:
		goto out;
	case 1:
		pf_error_set(err, PF_FAIL_PROTO, "%s has no error", what);
		goto out;
	}
	/* A description we cannot use is no reason to lose the error. */
	if (get_string(o, "error_description", what, &e->description,
	    err) == -1)
		e->description = NULL;
	rc = 0;
out:
	js.object_put(o);
	if (rc == -1)
		json_oauth_error_free(e);
	return rc;
}

int
json_parse_device(const char *buf, size_t len, struct json_device *d,
    struct pf_error *err)
{
	static const char what[] = "device authorization response";
	struct json_object *o;
	int rc = -1, r;

	memset(d, 0, sizeof(*d));
	d->interval = -1;
	if ((o = parse_object(buf, len, what, err)) == NULL)
		return -1;
	if ((r = get_string(o, "device_code", what, &d->device_code,
	    err)) == -1)
		goto out;
	if (r == 1) {
		pf_error_set(err, PF_FAIL_PROTO, "%s has no device_code", what);
		goto out;
	}
	if ((r = get_string(o, "user_code", what, &d->user_code, err)) == -1)
		goto out;
	if (r == 1) {
		pf_error_set(err, PF_FAIL_PROTO, "%s has no user_code", what);
		goto out;
	}
	if ((r = get_string(o, "verification_uri", what,
	    &d->verification_uri, err)) == -1)
		goto out;
	if (r == 1 && (r = get_string(o, "verification_url", what,
	    &d->verification_uri, err)) == -1)
		goto out;
	if (r == 1) {
		pf_error_set(err, PF_FAIL_PROTO, "%s has no verification_uri",
		    what);
		goto out;
	}
	if (get_string(o, "verification_uri_complete", what,
	    &d->verification_uri_complete, err) == -1)
		goto out;
	if ((r = get_seconds(o, "expires_in", what, OAUTH2_DEVICE_EXPIRES_MAX,
	    &d->expires_in, err)) == -1)
		goto out;
	if (r == 1 || d->expires_in == 0) {
		pf_error_set(err, PF_FAIL_PROTO, "%s has no expires_in", what);
		goto out;
	}
	if (get_seconds(o, "interval", what, OAUTH2_DEVICE_INTERVAL_MAX,
	    &d->interval, err) == -1)
		goto out;
	rc = 0;
out:
	js.object_put(o);
	if (rc == -1)
		json_device_free(d);
	return rc;
}

void
json_token_free(struct json_token *t)
{
	wipe_free(&t->access_token);
	wipe_free(&t->refresh_token);
	t->expires_in = -1;
}

void
json_oauth_error_free(struct json_oauth_error *e)
{
	free(e->error);
	free(e->description);
	e->error = e->description = NULL;
}

void
json_device_free(struct json_device *d)
{
	wipe_free(&d->device_code);
	wipe_free(&d->user_code);
	free(d->verification_uri);
	free(d->verification_uri_complete);
	memset(d, 0, sizeof(*d));
}
