/*
 * bytes.h - fixed-width big-endian fields and the FNV-1a 64-bit hash, for
 * the small binary files popfetch keeps (store/resume.c's session file,
 * fetcher/session.c's blob in it) and the account-to-shard hash
 * (lib/shard.c).
 */
#ifndef POPFETCH_BYTES_H
#define POPFETCH_BYTES_H

#include <stddef.h>
#include <stdint.h>

/* The n (<= 8) bytes at p, most significant first. */
static inline uint64_t
get_be(const unsigned char *p, size_t n)
{
	uint64_t v = 0;

	while (n-- > 0)
		v = (v << 8) | *p++;
	return v;
}

/* v's low n (<= 8) bytes at p, most significant first. */
static inline void
put_be(unsigned char *p, uint64_t v, size_t n)
{
	while (n-- > 0) {
		p[n] = (unsigned char)(v & 0xff);
		v >>= 8;
	}
}

#define FNV1A64_BASIS	UINT64_C(14695981039346656037)
#define FNV1A64_PRIME	UINT64_C(1099511628211)

/* FNV-1a 64-bit of n bytes at p, continuing from h (FNV1A64_BASIS to
 * start). */
static inline uint64_t
fnv1a64(uint64_t h, const unsigned char *p, size_t n)
{
	while (n-- > 0) {
		h ^= *p++;
		h *= FNV1A64_PRIME;
	}
	return h;
}

#endif
