/*
 * xmalloc.h - allocation that cannot fail.  Running out of memory in a batch
 * client is fatal: these print a message and exit 70, so error paths are
 * left for errors that really happen.
 */
#ifndef POPFETCH_XMALLOC_H
#define POPFETCH_XMALLOC_H

#include <stddef.h>

void	*xmalloc(size_t size);
void	*xcalloc(size_t nmemb, size_t size);
/* reallocarray(3) with the overflow check; exits 70 on overflow or OOM. */
void	*xreallocarray(void *ptr, size_t nmemb, size_t size);
char	*xstrdup(const char *s);
char	*xstrndup(const char *s, size_t n);
/* Caller frees the result. */
char	*xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Wipe a secret in place (explicit_bzero) and free it; clears *p. */
void	 secret_free(char **p);

#endif
