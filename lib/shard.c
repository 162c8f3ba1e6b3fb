/* shard.c - the stable assignment of accounts to shards (shard.h). */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "bytes.h"
#include "params.h"
#include "shard.h"

uint64_t
shard_hash(const char *name)
{
	return fnv1a64(FNV1A64_BASIS, (const unsigned char *)name,
	    strlen(name));
}

/* A decimal number of at most 9 digits (SHARD_MAX fits); its end in
 * *end_r, or -1. */
static long
number(const char *p, const char **end_r)
{
	long v = 0;
	int digits = 0;

	while (*p >= '0' && *p <= '9') {
		if (++digits > 9)
			return -1;
		v = v * 10 + (*p - '0');
		p++;
	}
	if (digits == 0)
		return -1;
	*end_r = p;
	return v;
}

int
shard_parse(const char *text, struct shard *s)
{
	const char *p;
	long k, n;

	if ((k = number(text, &p)) == -1 || *p != '/')
		return -1;
	if ((n = number(p + 1, &p)) == -1 || *p != '\0')
		return -1;
	if (n < 1 || n > SHARD_MAX || k >= n)
		return -1;
	s->k = (unsigned long)k;
	s->n = (unsigned long)n;
	return 0;
}

bool
shard_owns(const struct shard *s, const char *name)
{
	return shard_hash(name) % s->n == s->k;
}
