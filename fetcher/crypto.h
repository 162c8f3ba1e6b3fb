/*
 * crypto.h - the hashing, HMAC, key derivation, randomness and base64 that
 * SASL (SCRAM-SHA-256, PLAIN, XOAUTH2) and APOP need.  crypto.c implements it
 * with OpenSSL's EVP interfaces; this header shows none of OpenSSL.
 */
#ifndef POPFETCH_CRYPTO_H
#define POPFETCH_CRYPTO_H

#include <stddef.h>

#define CRYPTO_SHA256_LEN	32

/* Fill buf with len cryptographically random bytes.  Returns 0 or -1. */
int	crypto_random(void *buf, size_t len);

/* Look SHA-256 up in OpenSSL now, once for the process (and the children
 * it forks) instead of at the first digest. */
void	crypto_warm_up(void);

void	crypto_sha256(const void *data, size_t len,
	    unsigned char out[CRYPTO_SHA256_LEN]);
/*
 * SHA-256 over data that comes in pieces (a message's content on a server
 * without UIDL, doc/DESIGN.md §6): begin, update any number of times, end
 * (which frees the context and clears *ctx_r).  crypto_sha256_free drops
 * an unfinished one; NULL is fine.
 */
struct crypto_sha256_ctx;
struct crypto_sha256_ctx *crypto_sha256_begin(void);
void	crypto_sha256_update(struct crypto_sha256_ctx *ctx, const void *data,
	    size_t len);
void	crypto_sha256_end(struct crypto_sha256_ctx **ctx_r,
	    unsigned char out[CRYPTO_SHA256_LEN]);
void	crypto_sha256_free(struct crypto_sha256_ctx **ctx_r);
void	crypto_hmac_sha256(const void *key, size_t keylen, const void *data,
	    size_t len, unsigned char out[CRYPTO_SHA256_LEN]);
/* PBKDF2-HMAC-SHA-256 with a 32-byte output (RFC 7677 Hi()).  0 or -1. */
int	crypto_pbkdf2_sha256(const char *password, size_t passlen,
	    const void *salt, size_t saltlen, unsigned iterations,
	    unsigned char out[CRYPTO_SHA256_LEN]);

/* n octets as 2n lower-case hex digits plus NUL into out. */
void	crypto_hex(const unsigned char *octets, size_t n, char *out);

/* MD5 of data as 32 lower-case hex digits plus NUL (APOP, RFC 1939 §7). */
void	crypto_md5_hex(const void *data, size_t len, char out[33]);

/* Base64 (RFC 4648, no line breaks).  Caller frees the result. */
char	*crypto_base64_encode(const void *data, size_t len);
/*
 * Decode base64 (whitespace not allowed).  On success *out_r is a new buffer
 * (caller frees; NUL-terminated for convenience) of *outlen_r bytes and 0 is
 * returned; -1 if the input is not valid base64.
 */
int	crypto_base64_decode(const char *text, size_t len,
	    unsigned char **out_r, size_t *outlen_r);

/* Wipe memory the compiler may not optimise away. */
void	crypto_cleanse(void *p, size_t len);

/* "OpenSSL 3.0.x ..." for --version. */
const char *crypto_library_version(void);

#endif
