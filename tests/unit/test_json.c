/*
 * test_json.c - fetcher/json.c: OAuth2 endpoint answers (RFC 6749 §5,
 * RFC 8628 §3.2) to plain structs; everything else is 76.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "error.h"
#include "json.h"
#include "params.h"

static int
token(const char *body, struct json_token *t, struct pf_error *err)
{
	pf_error_clear(err);
	return json_parse_token(body, strlen(body), t, err);
}

static void
test_token_ok(void **state)
{
	struct json_token t;
	struct pf_error err;

	(void)state;
	/* Microsoft's shape. */
	assert_int_equal(token("{\"token_type\":\"Bearer\",\"scope\":\"x\","
	    "\"expires_in\":3599,\"ext_expires_in\":3599,\"access_token\":"
	    "\"eyJ0.a.b\",\"refresh_token\":\"M.R3_BAY\"}", &t, &err), 0);
	assert_string_equal(t.access_token, "eyJ0.a.b");
	assert_string_equal(t.refresh_token, "M.R3_BAY");
	assert_int_equal(t.expires_in, 3599);
	json_token_free(&t);
	/* expires_in as a string, lower-case bearer, no refresh token. */
	assert_int_equal(token(" {\"access_token\":\"ya29\",\"expires_in\":"
	    "\"3600\",\"token_type\":\"bearer\"}\n", &t, &err), 0);
	assert_null(t.refresh_token);
	assert_int_equal(t.expires_in, 3600);
	json_token_free(&t);
	/* No expires_in: -1, the caller assumes an hour. */
	assert_int_equal(token("{\"access_token\":\"a\"}", &t, &err), 0);
	assert_int_equal(t.expires_in, -1);
	json_token_free(&t);
	/* An absurd lifetime is cut, so the token file can be read back. */
	assert_int_equal(token("{\"access_token\":\"a\",\"expires_in\":"
	    "4611686018427387903}", &t, &err), 0);
	assert_int_equal(t.expires_in, OAUTH2_TOKEN_EXPIRES_MAX);
	json_token_free(&t);
}

static void
test_token_bad(void **state)
{
	static const char *const bad[] = {
		"", "not json", "{\"access_token\":\"a\"", "[\"a\"]",
		"{\"access_token\":\"a\"} x", "{}", "{\"access_token\":\"\"}",
		"{\"access_token\":17}", "{\"access_token\":null}",
		"{\"access_token\":\"a\\nb\"}", "{\"access_token\":\"a\\u0000b\"}",
		"{\"access_token\":\"a\",\"token_type\":\"MAC\"}",
		"{\"access_token\":\"a\",\"expires_in\":-5}",
		"{\"access_token\":\"a\",\"expires_in\":\"soon\"}",
		"{\"access_token\":\"a\",\"refresh_token\":[]}",
		"{'access_token':'a'}",
		"{\"a\":[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]],\"access_token\":\"a\"}",
	};
	struct json_token t;
	struct pf_error err;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (token(bad[i], &t, &err) != -1)
			fail_msg("accepted: %s", bad[i]);
		assert_int_equal(err.category, PF_FAIL_PROTO);
		assert_null(t.access_token);
		/* The token never shows in the error. */
		assert_null(strstr(err.what, "a\\"));
	}
	/* A NUL byte inside the buffer. */
	pf_error_clear(&err);
	assert_int_equal(json_parse_token("{\"access_token\":\"a\"}\0",
	    21, &t, &err), -1);
}

static void
test_error_and_device(void **state)
{
	struct json_oauth_error e;
	struct json_device d;
	struct pf_error err;
	const char *b;

	(void)state;
	pf_error_clear(&err);
	b = "{\"error\":\"invalid_grant\",\"error_description\":\"AADSTS70000\","
	    "\"error_codes\":[70000]}";
	assert_int_equal(json_parse_oauth_error(b, strlen(b), &e, &err), 0);
	assert_string_equal(e.error, "invalid_grant");
	assert_string_equal(e.description, "AADSTS70000");
	json_oauth_error_free(&e);
	b = "{\"error_description\":\"x\"}";
	assert_int_equal(json_parse_oauth_error(b, strlen(b), &e, &err), -1);
	assert_int_equal(err.category, PF_FAIL_PROTO);

	b = "{\"device_code\":\"dc\",\"user_code\":\"WDJB-MJHT\","
	    "\"verification_url\":\"https://www.google.com/device\","
	    "\"expires_in\":99999,\"interval\":\"5\"}";
	assert_int_equal(json_parse_device(b, strlen(b), &d, &err), 0);
	assert_string_equal(d.verification_uri, "https://www.google.com/device");
	assert_int_equal(d.expires_in, OAUTH2_DEVICE_EXPIRES_MAX);
	assert_int_equal(d.interval, 5);
	assert_null(d.verification_uri_complete);
	json_device_free(&d);
	b = "{\"device_code\":\"dc\",\"user_code\":\"U\","
	    "\"verification_uri\":\"https://v\"}";
	assert_int_equal(json_parse_device(b, strlen(b), &d, &err), -1);
	assert_int_equal(err.category, PF_FAIL_PROTO);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_token_ok),
		cmocka_unit_test(test_token_bad),
		cmocka_unit_test(test_error_and_device),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
