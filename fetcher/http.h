/*
 * http.h - the one libcurl user: HTTPS requests to OAuth2 endpoints
 * (doc/DESIGN.md §11).
 *
 * Only https: URLs, no redirects followed, the server certificate always
 * verified (with `ca_file` when set, else the system store) and its host
 * name checked; a failed check sends nothing and is PF_FAIL_TLS (69).
 * Connect and the whole exchange are bounded by `timeout` seconds (75).
 * The answer is bounded by OAUTH2_RESPONSE_MAX (76 past it).  Error
 * messages name the URL's scheme, host and path only, never the request
 * body (which holds codes, tokens and client secrets).  Thread-safe.
 */
#ifndef POPFETCH_HTTP_H
#define POPFETCH_HTTP_H

#include <stddef.h>

#include "error.h"

struct http_settings {
	const char	*ca_file;	/* NULL: system store */
	unsigned	 timeout;	/* seconds */
};

struct http_response {
	long		 status;	/* HTTP status code */
	char		*body;		/* NUL-terminated; may hold secrets */
	size_t		 len;
};

/*
 * POST `form` (application/x-www-form-urlencoded, built with
 * http_form_add) to `url`; any HTTP status is a success here (the caller
 * reads error bodies).  0, or -1 with err set: PF_FAIL_TLS (certificate,
 * handshake), PF_FAIL_TEMP (DNS, connect, timeout, connection lost),
 * PF_FAIL_PROTO (answer too long), PF_FAIL_CONFIG (a URL curl refuses).
 */
int	http_post_form(const char *url, const char *form,
	    const struct http_settings *hs, struct http_response *resp,
	    struct pf_error *err);

/* GET `url` the same way (tests, and the loopback grant's own checks). */
int	http_get(const char *url, const struct http_settings *hs,
	    struct http_response *resp, struct pf_error *err);

/* Wipe and free a response's body. */
void	http_response_free(struct http_response *resp);

/*
 * Append "name=value" to *form (a malloc'd string or NULL), percent-
 * encoding both; the old string is wiped (it may hold secrets).
 */
void	http_form_add(char **form, const char *name, const char *value);

/* Percent-encode `s` for a query or form (RFC 3986 unreserved kept). */
char	*http_escape(const char *s);

/* "https://host/path" of `url`, without query or user info, into buf:
 * what an error message may show. */
const char *http_url_shown(const char *url, char *buf, size_t size);

#endif
