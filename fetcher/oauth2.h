/*
 * oauth2.h - OAuth2 access tokens for XOAUTH2 and OAUTHBEARER without a
 * helper script (doc/DESIGN.md §11).
 *
 * The provider presets (microsoft, google) and custom endpoints; the
 * token file state_dir/oauth2.NAME (mode 0600, checked like the
 * configuration, written atomically, guarded by an flock on
 * state_dir/oauth2.NAME.lock so that a fetch, another account's -j thread
 * and `authorize` never refresh over each other); the refresh; and the
 * interactive grants of `popfetch authorize`.  Tokens, codes and client
 * secrets never appear in an error or a log line.
 *
 * Exit categories: PF_FAIL_AUTH (77) for a refusal (invalid_grant: with
 * "run: popfetch authorize -a NAME"), PF_FAIL_TEMP (75) for an endpoint
 * that cannot be reached, times out or answers 5xx, PF_FAIL_TLS (69) for
 * its certificate, PF_FAIL_PROTO (76) for an answer that is not the JSON
 * the grant defines, PF_FAIL_CONFIG (78) for a token file with the wrong
 * owner or mode, PF_FAIL_IO (74) when it cannot be written.
 */
#ifndef POPFETCH_OAUTH2_H
#define POPFETCH_OAUTH2_H

#include <stdio.h>

#include "conf.h"
#include "error.h"

/*
 * The access token of `a` (which has an oauth2_provider) into *token_r
 * (free with secret_free): the stored one while it has more than
 * OAUTH2_REFRESH_MARGIN seconds left, else a refreshed one, stored with
 * the rotated refresh token before it is returned.
 */
int	oauth2_access_token(const char *state_dir,
	    const struct conf_account *a, char **token_r,
	    struct pf_error *err);

/*
 * `popfetch authorize`: the provider's interactive grant, the device
 * grant where there is a device endpoint, else the loopback redirect with
 * PKCE.  What the user must open goes to `out`, flushed at once; the
 * countdown to stderr.  Stores the tokens.
 */
int	oauth2_authorize(const char *state_dir, const struct conf_account *a,
	    FILE *out, struct pf_error *err);

/* The token file's path for account `name` (caller frees). */
char	*oauth2_token_path(const char *state_dir, const char *name);

/*
 * Parse the token file's text (key=value lines: access_token,
 * expires_at, refresh_token); unknown keys are ignored.  0, or -1 with
 * err set (PF_FAIL_CONFIG: a damaged file).  Exposed for the tests.
 */
struct oauth2_tokens {
	char	*access_token;
	long long expires_at;		/* Unix time; 0: unknown */
	char	*refresh_token;
};
int	oauth2_tokens_parse(const char *text, size_t len,
	    struct oauth2_tokens *t, struct pf_error *err);
void	oauth2_tokens_free(struct oauth2_tokens *t);

#endif
