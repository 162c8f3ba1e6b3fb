/* test_crypto.c - hashes, HMAC, PBKDF2 and base64 against published vectors. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "crypto.h"

/* Lower-case hex of a digest, for readable comparisons. */
static const char *
hex(const unsigned char *p, size_t len)
{
	static char buf[2 * 64 + 1];
	size_t i;

	for (i = 0; i < len && i < 64; i++)
		snprintf(buf + 2 * i, 3, "%02x", p[i]);
	buf[2 * i] = '\0';
	return buf;
}

static void
test_sha256(void **state)
{
	unsigned char md[CRYPTO_SHA256_LEN];

	(void)state;
	/* FIPS 180-2 appendix B.1 and the empty string. */
	crypto_sha256("abc", 3, md);
	assert_string_equal(hex(md, sizeof(md)),
	    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	crypto_sha256("", 0, md);
	assert_string_equal(hex(md, sizeof(md)),
	    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void
test_hmac_sha256_rfc4231(void **state)
{
	unsigned char key[20], md[CRYPTO_SHA256_LEN];

	(void)state;
	/* RFC 4231 §4.2, test case 1 */
	memset(key, 0x0b, sizeof(key));
	crypto_hmac_sha256(key, sizeof(key), "Hi There", 8, md);
	assert_string_equal(hex(md, sizeof(md)),
	    "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
	/* RFC 4231 §4.3, test case 2 */
	crypto_hmac_sha256("Jefe", 4, "what do ya want for nothing?", 28, md);
	assert_string_equal(hex(md, sizeof(md)),
	    "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

static void
test_pbkdf2_sha256(void **state)
{
	unsigned char dk[CRYPTO_SHA256_LEN];

	(void)state;
	assert_int_equal(crypto_pbkdf2_sha256("password", 8, "salt", 4, 4096,
	    dk), 0);
	assert_string_equal(hex(dk, sizeof(dk)),
	    "c5e478d59288c841aa530db6845c4c8d962893a001ce4e11a4963873aa98134a");
	assert_int_equal(crypto_pbkdf2_sha256("password", 8, "salt", 4, 1, dk),
	    0);
	assert_string_equal(hex(dk, sizeof(dk)),
	    "120fb6cffcf8b32c43e7225256c4f837a86548c92ccc35480805987cb70be17b");
	/* zero iterations is refused, not silently accepted */
	assert_int_equal(crypto_pbkdf2_sha256("password", 8, "salt", 4, 0, dk),
	    -1);
}

static void
test_md5_apop(void **state)
{
	static const char text[] = "<1896.697170952@dbc.mtview.ca.us>tanstaaf";
	char out[33];

	(void)state;
	/* RFC 1939 §7's APOP example */
	crypto_md5_hex(text, strlen(text), out);
	assert_string_equal(out, "c4c9334bac560ecc979e58001b3e22fb");
}

static void
test_base64_rfc4648(void **state)
{
	/* RFC 4648 §10: every padding length */
	static const struct {
		const char *plain, *b64;
	} v[] = {
		{ "", "" },
		{ "f", "Zg==" },
		{ "fo", "Zm8=" },
		{ "foo", "Zm9v" },
		{ "foob", "Zm9vYg==" },
		{ "fooba", "Zm9vYmE=" },
		{ "foobar", "Zm9vYmFy" },
	};
	unsigned char *dec;
	size_t i, declen;
	char *enc;

	(void)state;
	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		enc = crypto_base64_encode(v[i].plain, strlen(v[i].plain));
		assert_string_equal(enc, v[i].b64);
		free(enc);
		assert_int_equal(crypto_base64_decode(v[i].b64,
		    strlen(v[i].b64), &dec, &declen), 0);
		assert_int_equal(declen, strlen(v[i].plain));
		assert_memory_equal(dec, v[i].plain, declen);
		assert_int_equal(dec[declen], '\0');
		free(dec);
	}
}

static void
test_base64_binary_roundtrip(void **state)
{
	unsigned char data[300], *dec;
	size_t len, declen;
	char *enc;

	(void)state;
	for (len = 0; len < sizeof(data); len++)
		data[len] = (unsigned char)(len * 7 + 3);
	data[0] = 0;	/* NUL bytes survive */
	for (len = 0; len <= sizeof(data); len += 1 + len / 8) {
		enc = crypto_base64_encode(data, len);
		assert_int_equal(strlen(enc), (len + 2) / 3 * 4);
		assert_int_equal(crypto_base64_decode(enc, strlen(enc), &dec,
		    &declen), 0);
		assert_int_equal(declen, len);
		assert_memory_equal(dec, data, len);
		free(dec);
		free(enc);
	}
}

static void
test_base64_invalid(void **state)
{
	static const char *bad[] = {
		"Zg=",		/* not a multiple of 4 */
		"Zg",
		"Z",
		"Zm9v\n",	/* whitespace */
		"Zm 9v",
		" Zm9",
		"Zm9*",		/* outside the alphabet */
		"Zg==Zg==",	/* padding in the middle */
		"Z===",		/* too much padding */
		"====",
		"=Zm9",
		"Zm=v",
		"Zm9v\0\0\0\0",	/* NUL inside the given length */
	};
	static const size_t badlen[] = { 3, 2, 1, 5, 5, 4, 4, 8, 4, 4, 4, 4, 8 };
	unsigned char *dec = (unsigned char *)"untouched";
	size_t i, declen = 99;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(crypto_base64_decode(bad[i], badlen[i], &dec,
		    &declen), -1);
		assert_null(dec);
		assert_int_equal(declen, 0);
	}
}

static void
test_random_and_cleanse(void **state)
{
	unsigned char a[32], b[32], zero[32] = { 0 };

	(void)state;
	assert_int_equal(crypto_random(a, sizeof(a)), 0);
	assert_int_equal(crypto_random(b, sizeof(b)), 0);
	assert_memory_not_equal(a, b, sizeof(a));
	crypto_cleanse(a, sizeof(a));
	assert_memory_equal(a, zero, sizeof(a));
	assert_non_null(strstr(crypto_library_version(), "OpenSSL"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sha256),
		cmocka_unit_test(test_hmac_sha256_rfc4231),
		cmocka_unit_test(test_pbkdf2_sha256),
		cmocka_unit_test(test_md5_apop),
		cmocka_unit_test(test_base64_rfc4648),
		cmocka_unit_test(test_base64_binary_roundtrip),
		cmocka_unit_test(test_base64_invalid),
		cmocka_unit_test(test_random_and_cleanse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
