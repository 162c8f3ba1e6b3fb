/*
 * fuzz_token.c - the OAuth2 endpoint answers (fetcher/json.c): token,
 * error and device authorization responses.
 *
 * Input: byte K (K % 3: 0 token, 1 error, 2 device response), then the
 * response body as the endpoint would send it.
 *
 * Checks: a parser succeeds or fails with PF_FAIL_PROTO, never anything
 * else; on success every string it returns is non-empty printable text
 * (no control byte: tokens end up in SASL strings and a file of lines),
 * a token response has an access_token and expires_in is -1 or >= 0, an
 * error response has an error, a device response has its four required
 * members, expires_in in 1..OAUTH2_DEVICE_EXPIRES_MAX and an interval of
 * -1 or at most OAUTH2_DEVICE_INTERVAL_MAX; the answer is parsed the same
 * way twice (no hidden state).  Leaks: ASan.
 */
#include "config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "fuzz_util.h"
#include "json.h"
#include "log.h"
#include "params.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log_init(getenv("FUZZ_TRACE") != NULL ? 2 : -1, false);
	return 0;
}

static void
check_text(const char *s, bool may_be_null)
{
	size_t i;

	if (s == NULL) {
		FZ_CHECK(may_be_null);
		return;
	}
	FZ_CHECK(s[0] != '\0');
	for (i = 0; s[i] != '\0'; i++)
		FZ_CHECK((unsigned char)s[i] >= 0x20 && s[i] != 0x7f);
}

static int
parse(int kind, const char *body, size_t len, char *summary, size_t size)
{
	struct json_token t;
	struct json_oauth_error e;
	struct json_device d;
	struct pf_error err;
	int rc;

	pf_error_clear(&err);
	summary[0] = '\0';
	switch (kind) {
	case 0:
		rc = json_parse_token(body, len, &t, &err);
		if (rc == 0) {
			check_text(t.access_token, false);
			check_text(t.refresh_token, true);
			FZ_CHECK(t.expires_in >= -1);
			snprintf(summary, size, "%s|%s|%ld", t.access_token,
			    t.refresh_token != NULL ? t.refresh_token : "",
			    t.expires_in);
			json_token_free(&t);
		}
		break;
	case 1:
		rc = json_parse_oauth_error(body, len, &e, &err);
		if (rc == 0) {
			check_text(e.error, false);
			check_text(e.description, true);
			snprintf(summary, size, "%s|%s", e.error,
			    e.description != NULL ? e.description : "");
			json_oauth_error_free(&e);
		}
		break;
	default:
		rc = json_parse_device(body, len, &d, &err);
		if (rc == 0) {
			check_text(d.device_code, false);
			check_text(d.user_code, false);
			check_text(d.verification_uri, false);
			check_text(d.verification_uri_complete, true);
			FZ_CHECK(d.expires_in >= 1 &&
			    d.expires_in <= OAUTH2_DEVICE_EXPIRES_MAX);
			FZ_CHECK(d.interval == -1 || (d.interval >= 0 &&
			    d.interval <= OAUTH2_DEVICE_INTERVAL_MAX));
			snprintf(summary, size, "%s|%s|%s|%ld|%ld",
			    d.device_code, d.user_code, d.verification_uri,
			    d.expires_in, d.interval);
			json_device_free(&d);
		}
		break;
	}
	if (rc == -1)
		FZ_CHECK(err.category == PF_FAIL_PROTO);
	else
		FZ_CHECK(rc == 0);
	return rc;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char s1[512], s2[512];
	char *body;
	int kind, rc1, rc2;

	if (size < 1 || size - 1 > OAUTH2_RESPONSE_MAX)
		return 0;
	kind = data[0] % 3;
	/* An exact-size copy, so that ASan sees any read past the end. */
	body = malloc(size - 1 > 0 ? size - 1 : 1);
	if (body == NULL)
		return 0;
	memcpy(body, data + 1, size - 1);
	rc1 = parse(kind, body, size - 1, s1, sizeof(s1));
	rc2 = parse(kind, body, size - 1, s2, sizeof(s2));
	FZ_CHECK(rc1 == rc2);
	FZ_CHECK(strcmp(s1, s2) == 0);
	free(body);
	return 0;
}
