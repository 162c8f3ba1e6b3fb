/*
 * strpool.h - many small strings that live and die together (the UIDLs of
 * a listing, of a seen-list), packed into chunks: one allocation per
 * STRPOOL_CHUNK bytes instead of one per string, so 20,000 UIDLs cost
 * their bytes and not twice that in malloc headers and rounding
 * (doc/DESIGN.md §5.4).  Strings are never freed one by one; a pointer
 * stays valid until the pool is freed.
 */
#ifndef POPFETCH_STRPOOL_H
#define POPFETCH_STRPOOL_H

#include <stddef.h>

struct strpool;

struct strpool	*strpool_new(void);

/* A copy of the n bytes at s, NUL-terminated, in the pool. */
char	*strpool_ndup(struct strpool *p, const char *s, size_t n);

/* A copy of the string s in the pool. */
char	*strpool_dup(struct strpool *p, const char *s);

/* Free every string of *pp and the pool; *pp = NULL.  NULL is fine. */
void	 strpool_free(struct strpool **pp);

#endif
