/*
 * crypto.c - hashes, HMAC, PBKDF2, randomness and base64 over OpenSSL's EVP
 * interfaces, for SASL (RFC 5802/7677 SCRAM-SHA-256, RFC 4616 PLAIN,
 * XOAUTH2) and APOP (RFC 1939 §7).  Base64 is RFC 4648 §4, strict: no
 * whitespace, padding required, '=' only at the end.
 *
 * The EVP calls below cannot fail with the default provider except on
 * memory exhaustion or a broken installation, both fatal (70) for a batch
 * client; the ones with an int result pass failure up instead.
 */
#include "config.h"

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "crypto.h"
#include "log.h"
#include "xmalloc.h"

/* Bytes handed to one EVP_EncodeBlock call: a multiple of 3, well below
 * INT_MAX, so that inputs of any size_t length are encoded in pieces. */
#define B64_ENCODE_CHUNK	(3 * 1024 * 1024)

int
crypto_random(void *buf, size_t len)
{
	unsigned char *p = buf;
	int n;

	while (len > 0) {
		n = len > INT_MAX ? INT_MAX : (int)len;
		if (RAND_bytes(p, n) != 1)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * SHA-256 as fetched from the provider once per process.  EVP_sha256()
 * makes OpenSSL 3 look the algorithm up again at every digest (an
 * implicit fetch: a property query under locks, about as long as hashing
 * a few kilobytes); an account run hashes its TLS settings at least
 * (fetcher/session.c), a run on a server without UIDL every message.
 * Released before OpenSSL's own cleanup at exit (atexit runs the last
 * registered first).  EVP_sha256() is the fallback if the fetch fails.
 */
static EVP_MD *sha256_fetched;

static void
sha256_release(void)
{
	EVP_MD_free(sha256_fetched);
	sha256_fetched = NULL;
}

static void
sha256_fetch(void)
{
	if ((sha256_fetched = EVP_MD_fetch(NULL, "SHA2-256", NULL)) != NULL)
		(void)atexit(sha256_release);
	ERR_clear_error();
}

static const EVP_MD *
sha256_md(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	(void)pthread_once(&once, sha256_fetch);
	return sha256_fetched != NULL ? sha256_fetched : EVP_sha256();
}

void
crypto_warm_up(void)
{
	(void)sha256_md();
}

void
crypto_sha256(const void *data, size_t len, unsigned char out[CRYPTO_SHA256_LEN])
{
	unsigned int outlen = 0;

	if (EVP_Digest(data, len, out, &outlen, sha256_md(), NULL) != 1 ||
	    outlen != CRYPTO_SHA256_LEN)
		fatalx("EVP_Digest(SHA-256) failed");
}

struct crypto_sha256_ctx {
	EVP_MD_CTX	*md;
};

struct crypto_sha256_ctx *
crypto_sha256_begin(void)
{
	struct crypto_sha256_ctx *c = xmalloc(sizeof(*c));

	if ((c->md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(c->md, sha256_md(), NULL) != 1)
		fatalx("EVP_DigestInit_ex(SHA-256) failed");
	return c;
}

void
crypto_sha256_update(struct crypto_sha256_ctx *c, const void *data,
    size_t len)
{
	if (len > 0 && EVP_DigestUpdate(c->md, data, len) != 1)
		fatalx("EVP_DigestUpdate(SHA-256) failed");
}

void
crypto_sha256_end(struct crypto_sha256_ctx **ctx_r,
    unsigned char out[CRYPTO_SHA256_LEN])
{
	unsigned int outlen = 0;

	if (EVP_DigestFinal_ex((*ctx_r)->md, out, &outlen) != 1 ||
	    outlen != CRYPTO_SHA256_LEN)
		fatalx("EVP_DigestFinal_ex(SHA-256) failed");
	crypto_sha256_free(ctx_r);
}

void
crypto_sha256_free(struct crypto_sha256_ctx **ctx_r)
{
	if (*ctx_r == NULL)
		return;
	EVP_MD_CTX_free((*ctx_r)->md);
	free(*ctx_r);
	*ctx_r = NULL;
}

void
crypto_hmac_sha256(const void *key, size_t keylen, const void *data,
    size_t len, unsigned char out[CRYPTO_SHA256_LEN])
{
	static const unsigned char empty[1];
	unsigned int outlen = 0;

	if (keylen > INT_MAX)
		fatalx("HMAC-SHA-256: key too long");
	if (key == NULL)
		key = empty;
	if (data == NULL)
		data = empty;
	if (HMAC(sha256_md(), key, (int)keylen, data, len, out,
	    &outlen) == NULL || outlen != CRYPTO_SHA256_LEN)
		fatalx("HMAC(SHA-256) failed");
}

int
crypto_pbkdf2_sha256(const char *password, size_t passlen, const void *salt,
    size_t saltlen, unsigned iterations, unsigned char out[CRYPTO_SHA256_LEN])
{
	static const unsigned char empty[1];

	if (passlen > INT_MAX || saltlen > INT_MAX || iterations == 0 ||
	    iterations > INT_MAX)
		return -1;
	if (salt == NULL)
		salt = empty;
	if (password == NULL)
		password = "";
	if (PKCS5_PBKDF2_HMAC(password, (int)passlen, salt, (int)saltlen,
	    (int)iterations, sha256_md(), CRYPTO_SHA256_LEN, out) != 1)
		return -1;
	return 0;
}

void
crypto_hex(const unsigned char *octets, size_t n, char *out)
{
	static const char hex[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = hex[octets[i] >> 4];
		out[2 * i + 1] = hex[octets[i] & 0x0f];
	}
	out[2 * n] = '\0';
}

void
crypto_md5_hex(const void *data, size_t len, char out[33])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (EVP_Digest(data, len, md, &mdlen, EVP_md5(), NULL) != 1 ||
	    mdlen != 16)
		fatalx("EVP_Digest(MD5) failed");
	crypto_hex(md, 16, out);
}

char *
crypto_base64_encode(const void *data, size_t len)
{
	const unsigned char *p = data;
	size_t outlen, o = 0, n;
	char *out;

	if (len / 3 >= (SIZE_MAX - 1) / 4)
		fatalx("base64: input too long");
	outlen = (len + 2) / 3 * 4;
	out = xmalloc(outlen + 1);
	while (len > 0) {
		n = len > B64_ENCODE_CHUNK ? B64_ENCODE_CHUNK : len;
		o += (size_t)EVP_EncodeBlock((unsigned char *)out + o, p, (int)n);
		p += n;
		len -= n;
	}
	out[o] = '\0';
	return out;
}

static bool
b64_char(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9') || c == '+' || c == '/';
}

int
crypto_base64_decode(const char *text, size_t len, unsigned char **out_r,
    size_t *outlen_r)
{
	const unsigned char *t = (const unsigned char *)text;
	unsigned char *out;
	size_t i, pad = 0;
	int n;

	*out_r = NULL;
	*outlen_r = 0;
	/* EVP_DecodeBlock takes an int; 3/4 of INT_MAX is plenty. */
	if (len % 4 != 0 || len > INT_MAX)
		return -1;
	if (len > 0 && t[len - 1] == '=')
		pad = t[len - 2] == '=' ? 2 : 1;
	for (i = 0; i < len - pad; i++)
		if (!b64_char(t[i]))
			return -1;
	out = xmalloc(len / 4 * 3 + 1);
	n = EVP_DecodeBlock(out, t, (int)len);
	if (n < 0 || (size_t)n != len / 4 * 3) {
		free(out);
		return -1;
	}
	/* EVP_DecodeBlock counts the bytes that padding stands for: drop them. */
	*outlen_r = (size_t)n - pad;
	out[*outlen_r] = '\0';
	*out_r = out;
	return 0;
}

void
crypto_cleanse(void *p, size_t len)
{
	if (p != NULL && len > 0)
		OPENSSL_cleanse(p, len);
}

const char *
crypto_library_version(void)
{
	return OpenSSL_version(OPENSSL_VERSION);
}
