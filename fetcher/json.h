/*
 * json.h - the one JSON (json-c) user: OAuth2 endpoint answers as plain
 * structs (doc/DESIGN.md §11).
 *
 * Every parser takes untrusted bytes (at most OAUTH2_RESPONSE_MAX), wants
 * one JSON object at the top, and copies what it needs; strings holding a
 * NUL or a control character are refused.  Returns 0, or -1 with err set
 * to PF_FAIL_PROTO (76) and words that never quote a token.
 */
#ifndef POPFETCH_JSON_H
#define POPFETCH_JSON_H

#include <stddef.h>

#include "error.h"

/* RFC 6749 §5.1 (successful token response). */
struct json_token {
	char	*access_token;		/* required */
	char	*refresh_token;		/* NULL when absent */
	long	 expires_in;		/* seconds; -1 when absent */
};

/* RFC 6749 §5.2 (error response), also RFC 8628 §3.5's. */
struct json_oauth_error {
	char	*error;			/* NULL when absent */
	char	*description;		/* error_description, NULL when absent */
};

/* RFC 8628 §3.2 (device authorization response). */
struct json_device {
	char	*device_code;
	char	*user_code;
	char	*verification_uri;	/* also Microsoft's verification_url */
	char	*verification_uri_complete;	/* NULL when absent */
	long	 expires_in;
	long	 interval;		/* -1 when absent */
};

/*
 * Load json-c (at the first call; the parsers call it too).  0, or -1 with
 * err set (78: not installed).  Call it before asking an endpoint for
 * anything, so that no answer (a rotated refresh token) is left unread.
 */
int	json_load(struct pf_error *err);

/* A token response: an object with a string access_token, token_type
 * "Bearer" when present (any case), expires_in a number or a decimal
 * string when present. */
int	json_parse_token(const char *buf, size_t len, struct json_token *t,
	    struct pf_error *err);

/* An error response: an object with a string `error`. */
int	json_parse_oauth_error(const char *buf, size_t len,
	    struct json_oauth_error *e, struct pf_error *err);

/* A device authorization response: device_code, user_code,
 * verification_uri (or _url) and expires_in required. */
int	json_parse_device(const char *buf, size_t len, struct json_device *d,
	    struct pf_error *err);

/* Free (wiping secrets) and zero. */
void	json_token_free(struct json_token *t);
void	json_oauth_error_free(struct json_oauth_error *e);
void	json_device_free(struct json_device *d);

#endif
