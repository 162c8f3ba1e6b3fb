/*
 * shard.h - which worker fetches which account when one configuration is
 * split over N workers with `--shard K/N` (doc/DESIGN.md §13).
 *
 * An account belongs to shard K of N iff shard_hash(name) mod N == K.
 * The hash is FNV-1a 64-bit over the bytes of the account name, and is
 * fixed forever: a worker's state directory holds the seen-lists of the
 * accounts its shard owns, so a changed hash would move accounts away
 * from their seen-lists and fetch their kept mail again.
 */
#ifndef POPFETCH_SHARD_H
#define POPFETCH_SHARD_H

#include <stdbool.h>
#include <stdint.h>

struct shard {
	unsigned long	 k;	/* 0 <= k < n */
	unsigned long	 n;	/* 1 <= n <= SHARD_MAX (params.h) */
};

/* FNV-1a 64-bit of the NUL-terminated name's bytes (offset basis
 * 14695981039346656037, prime 1099511628211). */
uint64_t	shard_hash(const char *name);

/* Parse "K/N" (decimal, no sign, no spaces, 0 <= K < N <= SHARD_MAX)
 * into *s; 0, or -1 with *s untouched. */
int	shard_parse(const char *text, struct shard *s);

/* Does the account named `name` belong to shard s? */
bool	shard_owns(const struct shard *s, const char *name);

#endif
