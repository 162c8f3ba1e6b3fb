/* test_sasl.c - SASL mechanisms (RFC 7677 SCRAM-SHA-256 example, PLAIN,
 * XOAUTH2) and the APOP digest (RFC 1939 §7 example). */
#include "config.h"

#include <ctype.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "conf.h"
#include "crypto.h"
#include "error.h"
#include "sasl.h"
#include "xmalloc.h"

/* RFC 7677 §3. */
#define R_USER		"user"
#define R_PASS		"pencil"
#define R_CNONCE	"rOprNGfwEbeRWgbNEkqO"
#define R_SNONCE	R_CNONCE "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
#define R_SFIRST	"r=" R_SNONCE ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
#define R_CFINAL	"c=biws,r=" R_SNONCE \
			",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
#define R_SFINAL	"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="

static int
setup(void **state)
{
	(void)state;
	sasl_set_test_nonce(R_CNONCE);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	sasl_set_test_nonce(NULL);
	return 0;
}

/* A SCRAM exchange with the RFC's user, password and nonce, at
 * client-first sent. */
static struct sasl *
scram_started(void)
{
	struct pf_error err;
	struct sasl *sa;
	char *first;

	sa = sasl_new(sasl_mech_find("SCRAM-SHA-256"), R_USER, R_PASS, &err);
	assert_non_null(sa);
	first = sasl_scram_client_first(sa, &err);
	assert_non_null(first);
	assert_string_equal(first, "n,,n=" R_USER ",r=" R_CNONCE);
	secret_free(&first);
	return sa;
}

static void
test_scram_rfc7677(void **state)
{
	struct pf_error err;
	struct sasl *sa;
	char *final;

	(void)state;
	sa = scram_started();
	assert_false(sasl_is_complete(sa));
	final = sasl_scram_client_final(sa, R_SFIRST, strlen(R_SFIRST), &err);
	assert_non_null(final);
	assert_string_equal(final, R_CFINAL);
	secret_free(&final);
	assert_false(sasl_is_complete(sa));
	assert_int_equal(sasl_scram_server_final(sa, R_SFINAL,
	    strlen(R_SFINAL), &err), 0);
	assert_true(sasl_is_complete(sa));
	sasl_free(&sa);
	assert_null(sa);
}

/* The same exchange through sasl_initial_response()/sasl_step(), base64. */
static void
test_scram_steps_base64(void **state)
{
	struct pf_error err;
	struct sasl *sa;
	char *ir, *resp, *chal;
	unsigned char *dec;
	size_t declen;

	(void)state;
	sa = sasl_new(sasl_mech_find("SCRAM-SHA-256"), R_USER, R_PASS, &err);
	assert_non_null(sa);
	/* Two-step form: an empty first challenge asks for client-first. */
	assert_int_equal(sasl_step(sa, "", 0, &ir, &err), 0);
	assert_string_equal(ir, "biwsbj11c2VyLHI9ck9wck5HZndFYmVSV2diTkVrcU8=");
	secret_free(&ir);
	chal = crypto_base64_encode(R_SFIRST, strlen(R_SFIRST));
	assert_int_equal(sasl_step(sa, chal, strlen(chal), &resp, &err), 0);
	free(chal);
	assert_int_equal(crypto_base64_decode(resp, strlen(resp), &dec,
	    &declen), 0);
	assert_int_equal(declen, strlen(R_CFINAL));
	assert_memory_equal(dec, R_CFINAL, declen);
	free(dec);
	secret_free(&resp);
	chal = crypto_base64_encode(R_SFINAL, strlen(R_SFINAL));
	assert_int_equal(sasl_step(sa, chal, strlen(chal), &resp, &err), 0);
	assert_string_equal(resp, "");
	secret_free(&resp);
	assert_true(sasl_is_complete(sa));
	/* Nothing more is expected. */
	assert_int_equal(sasl_step(sa, chal, strlen(chal), &resp, &err), -1);
	assert_int_equal(err.category, PF_FAIL_PROTO);
	free(chal);
	sasl_free(&sa);
}

static void
test_scram_bad_signature(void **state)
{
	static const char bad[] = "v=7rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";
	static const char shortsig[] = "v=AAAA";
	struct pf_error err;
	struct sasl *sa;
	char *final;

	(void)state;
	sa = scram_started();
	final = sasl_scram_client_final(sa, R_SFIRST, strlen(R_SFIRST), &err);
	assert_non_null(final);
	secret_free(&final);
	assert_int_equal(sasl_scram_server_final(sa, bad, strlen(bad), &err),
	    -1);
	assert_int_equal(err.category, PF_FAIL_AUTH);
	assert_string_equal(err.what, "server signature mismatch");
	assert_false(sasl_is_complete(sa));
	assert_int_equal(sasl_scram_server_final(sa, shortsig,
	    strlen(shortsig), &err), -1);
	assert_int_equal(err.category, PF_FAIL_AUTH);
	assert_int_equal(sasl_scram_server_final(sa, "e=invalid-proof", 15,
	    &err), -1);
	assert_int_equal(err.category, PF_FAIL_AUTH);
	assert_string_equal(err.server, "invalid-proof");
	assert_int_equal(sasl_scram_server_final(sa, "x=1", 3, &err), -1);
	assert_int_equal(err.category, PF_FAIL_PROTO);
	sasl_free(&sa);
}

/* server-first messages that must be refused, with their category. */
static void
test_scram_bad_server_first(void **state)
{
	static const struct {
		const char	*msg;
		enum pf_fail	 cat;
	} cases[] = {
		/* iteration count below SCRAM_MIN_ITERATIONS / above MAX */
		{ "r=" R_SNONCE ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4095", PF_FAIL_AUTH },
		{ "r=" R_SNONCE ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=1000001", PF_FAIL_AUTH },
		{ "r=" R_SNONCE ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=99999999999999999999", PF_FAIL_AUTH },
		{ "r=" R_SNONCE ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=0", PF_FAIL_AUTH },
		/* nonce not extending ours, or not extending it at all */
		{ "r=xOprNGfwEbeRWgbNEkqO%hvYD,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", PF_FAIL_AUTH },
		{ "r=rOprNGfw,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", PF_FAIL_AUTH },
		{ "r=" R_CNONCE ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", PF_FAIL_AUTH },
		/* mandatory extension */
		{ "m=ext,r=" R_SNONCE ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", PF_FAIL_AUTH },
		/* malformed */
		{ "r=" R_SNONCE ",i=4096", PF_FAIL_PROTO },
		{ "r=" R_SNONCE ",s=!!!!,i=4096", PF_FAIL_PROTO },
		{ "r=" R_SNONCE ",s=,i=4096", PF_FAIL_PROTO },
		{ "r=" R_SNONCE ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=40x6", PF_FAIL_PROTO },
		{ "r=" R_SNONCE ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=", PF_FAIL_PROTO },
		{ "s=W22ZaJ0SNY7soEsUEjb6gQ==,r=" R_SNONCE ",i=4096", PF_FAIL_PROTO },
		{ "", PF_FAIL_PROTO },
	};
	struct pf_error err;
	struct sasl *sa;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		sa = scram_started();
		assert_null(sasl_scram_client_final(sa, cases[i].msg,
		    strlen(cases[i].msg), &err));
		if (err.category != cases[i].cat)
			fail_msg("case %zu (%s): category %d, want %d (%s)", i,
			    cases[i].msg, err.category, cases[i].cat,
			    err.what);
		sasl_free(&sa);
	}
	/* A NUL inside the decoded message. */
	sa = scram_started();
	assert_null(sasl_scram_client_final(sa, "r=a\0b,s=AA==,i=4096", 19,
	    &err));
	assert_int_equal(err.category, PF_FAIL_PROTO);
	sasl_free(&sa);
}

/* Extensions after i= are ignored (RFC 5802 §7). */
static void
test_scram_extension_ignored(void **state)
{
	static const char msg[] = R_SFIRST ",x=whatever";
	struct pf_error err;
	struct sasl *sa;
	char *final;

	(void)state;
	sa = scram_started();
	final = sasl_scram_client_final(sa, msg, strlen(msg), &err);
	assert_non_null(final);
	/* Different AuthMessage, so a different proof, same prefix. */
	assert_memory_equal(final, R_CFINAL, strlen("c=biws,r=" R_SNONCE ",p="));
	assert_string_not_equal(final, R_CFINAL);
	secret_free(&final);
	sasl_free(&sa);
}

static void
test_scram_username_escape(void **state)
{
	struct pf_error err;
	struct sasl *sa;
	char *first;

	(void)state;
	sa = sasl_new(sasl_mech_find("SCRAM-SHA-256"), "a,b=c=", "pw", &err);
	first = sasl_scram_client_first(sa, &err);
	assert_string_equal(first, "n,,n=a=2Cb=3Dc=3D,r=" R_CNONCE);
	secret_free(&first);
	/* Out of sequence. */
	assert_null(sasl_scram_client_first(sa, &err));
	assert_int_equal(err.category, PF_FAIL_INTERNAL);
	sasl_free(&sa);
}

static void
test_scram_random_nonce(void **state)
{
	struct pf_error err;
	struct sasl *a, *b;
	char *fa, *fb;

	(void)state;
	sasl_set_test_nonce(NULL);
	a = sasl_new(sasl_mech_find("SCRAM-SHA-256"), "u", "p", &err);
	b = sasl_new(sasl_mech_find("SCRAM-SHA-256"), "u", "p", &err);
	fa = sasl_scram_client_first(a, &err);
	fb = sasl_scram_client_first(b, &err);
	assert_int_equal(strlen(fa), strlen("n,,n=u,r=") + 24);
	assert_null(strchr(fa + strlen("n,,n=u,r="), ','));
	assert_string_not_equal(fa, fb);
	secret_free(&fa);
	secret_free(&fb);
	sasl_free(&a);
	sasl_free(&b);
	sasl_set_test_nonce(R_CNONCE);
}

static void
test_plain(void **state)
{
	struct pf_error err;
	struct sasl *sa;
	char *blob, *resp;

	(void)state;
	blob = sasl_plain_blob("alice", "secret");
	assert_string_equal(blob, "AGFsaWNlAHNlY3JldA==");
	secret_free(&blob);
	assert_null(blob);

	sa = sasl_new(sasl_mech_find("PLAIN"), "alice", "secret", &err);
	assert_false(sasl_is_complete(sa));
	blob = sasl_initial_response(sa, &err);
	assert_string_equal(blob, "AGFsaWNlAHNlY3JldA==");
	secret_free(&blob);
	assert_true(sasl_is_complete(sa));
	/* PLAIN has nothing to say to a further challenge. */
	assert_int_equal(sasl_step(sa, "", 0, &resp, &err), -1);
	assert_int_equal(err.category, PF_FAIL_PROTO);
	/* The initial response only once. */
	assert_null(sasl_initial_response(sa, &err));
	sasl_free(&sa);
}

static void
test_xoauth2(void **state)
{
	static const char json[] = "{\"status\":\"401\",\"schemes\":\"Bearer\"}";
	struct pf_error err;
	struct sasl *sa;
	char *blob, *resp, *chal;

	(void)state;
	/* Google's documented example. */
	blob = sasl_xoauth2_blob("someuser@example.com",
	    "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg");
	assert_string_equal(blob, "dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRo"
	    "PUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52YjNSbGNrQmhkSFJoZG1semRHRX"
	    "VZMjl0Q2cBAQ==");
	secret_free(&blob);

	/* Two-step form with an error challenge, answered with "". */
	sa = sasl_new(sasl_mech_find("XOAUTH2"), "someuser@example.com",
	    "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg", &err);
	assert_int_equal(sasl_step(sa, "", 0, &resp, &err), 0);
	assert_true(strncmp(resp, "dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQ", 34) == 0);
	secret_free(&resp);
	assert_true(sasl_is_complete(sa));
	chal = crypto_base64_encode(json, strlen(json));
	assert_int_equal(sasl_step(sa, chal, strlen(chal), &resp, &err), 0);
	assert_string_equal(resp, "");
	secret_free(&resp);
	free(chal);
	assert_false(sasl_is_complete(sa));
	/* Not base64. */
	assert_int_equal(sasl_step(sa, "%%%", 3, &resp, &err), -1);
	assert_int_equal(err.category, PF_FAIL_PROTO);
	sasl_free(&sa);

	/* A non-empty first challenge is a protocol error. */
	sa = sasl_new(sasl_mech_find("XOAUTH2"), "u", "t", &err);
	assert_int_equal(sasl_step(sa, "Zm9v", 4, &resp, &err), -1);
	assert_int_equal(err.category, PF_FAIL_PROTO);
	sasl_free(&sa);
}

static void
test_oauthbearer(void **state)
{
	static const char json[] = "{\"status\":\"invalid_token\","
	    "\"scope\":\"example_scope\"}";
	struct pf_error err;
	struct sasl *sa;
	char *blob, *resp, *chal;

	(void)state;
	/* RFC 7628 §4.1's example. */
	blob = sasl_oauthbearer_blob("user@example.com", "server.example.com",
	    143, "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==");
	assert_string_equal(blob, "bixhPXVzZXJAZXhhbXBsZS5jb20sAWhvc3Q9c2Vy"
	    "dmVyLmV4YW1wbGUuY29tAXBvcnQ9MTQzAWF1dGg9QmVhcmVyIHZGOWRmdDRxbVRj"
	    "Mk52YjNSbGNrQmhiSFJoZG1semRHRXVZMjl0Q2c9PQEB");
	secret_free(&blob);
	/* The authzid is a saslname: ',' and '=' escaped; host and port
	 * left out when unknown. */
	blob = sasl_oauthbearer_blob("a=b,c", NULL, 0, "t");
	assert_string_equal(blob, "bixhPWE9M0RiPTJDYywBYXV0aD1CZWFyZXIgdAEB");
	secret_free(&blob);

	/* Through the exchange, with the peer pop3.c sets. */
	sa = sasl_new(sasl_mech_find("OAUTHBEARER"), "user@example.com",
	    "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==", &err);
	sasl_set_peer(sa, "server.example.com", 143);
	assert_int_equal(sasl_step(sa, "", 0, &resp, &err), 0);
	assert_string_equal(resp, "bixhPXVzZXJAZXhhbXBsZS5jb20sAWhvc3Q9c2Vy"
	    "dmVyLmV4YW1wbGUuY29tAXBvcnQ9MTQzAWF1dGg9QmVhcmVyIHZGOWRmdDRxbVRj"
	    "Mk52YjNSbGNrQmhiSFJoZG1semRHRXVZMjl0Q2c9PQEB");
	secret_free(&resp);
	assert_true(sasl_is_complete(sa));
	/* RFC 7628 §3.2.2: the error challenge is answered with ^A. */
	chal = crypto_base64_encode(json, strlen(json));
	assert_int_equal(sasl_step(sa, chal, strlen(chal), &resp, &err), 0);
	assert_string_equal(resp, "AQ==");
	secret_free(&resp);
	assert_false(sasl_is_complete(sa));
	/* Nothing more is expected after that. */
	assert_int_equal(sasl_step(sa, chal, strlen(chal), &resp, &err), -1);
	assert_int_equal(err.category, PF_FAIL_PROTO);
	free(chal);
	sasl_free(&sa);
}

static void
test_apop(void **state)
{
	char digest[33];

	(void)state;
	/* RFC 1939 §7. */
	sasl_apop_digest("<1896.697170952@dbc.mtview.ca.us>", "tanstaaf",
	    digest);
	assert_string_equal(digest, "c4c9334bac560ecc979e58001b3e22fb");
	sasl_apop_digest("<1896.697170952@dbc.mtview.ca.us>", "tanstaaF",
	    digest);
	assert_string_not_equal(digest, "c4c9334bac560ecc979e58001b3e22fb");
}

static void
test_names(void **state)
{
	(void)state;
	/* The `auth` value that asks for a mechanism, to its name on the
	 * wire (pop3.c's AUTH line). */
	assert_string_equal(sasl_mech_for_conf(CONF_AUTH_PLAIN)->name,
	    "PLAIN");
	assert_string_equal(sasl_mech_for_conf(CONF_AUTH_SCRAM_SHA_256)->name,
	    "SCRAM-SHA-256");
	assert_string_equal(sasl_mech_for_conf(CONF_AUTH_XOAUTH2)->name,
	    "XOAUTH2");
	assert_string_equal(sasl_mech_for_conf(CONF_AUTH_OAUTHBEARER)->name,
	    "OAUTHBEARER");
}

/*
 * The table of mechanisms, row by row: what pop3.c and config/ rely on.
 * A new row that config does not know by the same word, or whose
 * exposure disagrees with config's tls = none check, fails here.
 */
static void
test_table(void **state)
{
	const struct sasl_mech *m, *o;
	struct pf_error err;
	struct sasl *sa;
	char lower[64], *ir, autos[256] = "";
	size_t i, j, k;

	(void)state;
	for (i = 0; (m = sasl_mech_at(i)) != NULL; i++) {
		assert_non_null(m->name);
		assert_true(strlen(m->name) < sizeof(lower));
		assert_ptr_equal(sasl_mech_find(m->name), m);
		for (k = 0; m->name[k] != '\0'; k++)
			lower[k] = (char)tolower((unsigned char)m->name[k]);
		lower[k] = '\0';
		assert_ptr_equal(sasl_mech_find(lower), m);
		/* config's word for it is its name, and it is this row's. */
		assert_string_equal(conf_auth_name(m->conf), lower);
		assert_ptr_equal(sasl_mech_for_conf(m->conf), m);
		assert_int_equal(conf_auth_reveals_secret(m->conf),
		    m->reveals_secret);
		for (j = 0; j < i; j++) {
			o = sasl_mech_at(j);
			assert_int_not_equal(o->conf, m->conf);
		}
		/* Every mechanism speaks first, once. */
		assert_non_null(m->first);
		sa = sasl_new(m, "u", "p", &err);
		assert_non_null(sa);
		ir = sasl_initial_response(sa, &err);
		assert_non_null(ir);
		assert_true(ir[0] != '\0');
		secret_free(&ir);
		sasl_free(&sa);
		if (m->in_auto) {
			if (autos[0] != '\0')
				strcat(autos, " ");
			strcat(autos, m->name);
		}
	}
	assert_true(i > 0);
	assert_null(sasl_mech_at(i));
	assert_null(sasl_mech_find("CRAM-MD5"));
	/* POP3's own ways and auto are not SASL rows. */
	assert_null(sasl_mech_for_conf(CONF_AUTH_AUTO));
	assert_null(sasl_mech_for_conf(CONF_AUTH_USER));
	assert_null(sasl_mech_for_conf(CONF_AUTH_APOP));
	/* popfetch.conf(5): auto prefers SCRAM-SHA-256, then PLAIN. */
	assert_string_equal(autos, "SCRAM-SHA-256 PLAIN");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scram_rfc7677),
		cmocka_unit_test(test_scram_steps_base64),
		cmocka_unit_test(test_scram_bad_signature),
		cmocka_unit_test(test_scram_bad_server_first),
		cmocka_unit_test(test_scram_extension_ignored),
		cmocka_unit_test(test_scram_username_escape),
		cmocka_unit_test(test_scram_random_nonce),
		cmocka_unit_test(test_plain),
		cmocka_unit_test(test_xoauth2),
		cmocka_unit_test(test_oauthbearer),
		cmocka_unit_test(test_apop),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_table),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
