/* strpool.c - small strings packed into chunks (strpool.h). */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "params.h"
#include "strpool.h"
#include "xmalloc.h"

struct chunk {
	struct chunk	*next;
	size_t		 used, size;
	char		 data[];
};

struct strpool {
	struct chunk	*head;		/* the chunk being filled first */
};

struct strpool *
strpool_new(void)
{
	return xcalloc(1, sizeof(struct strpool));
}

char *
strpool_ndup(struct strpool *p, const char *s, size_t n)
{
	struct chunk *c = p->head;
	char *out;

	if (c == NULL || c->size - c->used < n + 1) {
		/* A string too long for a chunk gets one of its own size,
		 * behind the current one, which keeps filling. */
		size_t size = n + 1 > STRPOOL_CHUNK / 4 ? n + 1 :
		    STRPOOL_CHUNK - sizeof(*c);

		c = xmalloc(sizeof(*c) + size);
		c->used = 0;
		c->size = size;
		if (size != n + 1 || p->head == NULL) {
			c->next = p->head;
			p->head = c;
		} else {
			c->next = p->head->next;
			p->head->next = c;
		}
	}
	out = c->data + c->used;
	memcpy(out, s, n);
	out[n] = '\0';
	c->used += n + 1;
	return out;
}

char *
strpool_dup(struct strpool *p, const char *s)
{
	return strpool_ndup(p, s, strlen(s));
}

void
strpool_free(struct strpool **pp)
{
	struct strpool *p = *pp;
	struct chunk *c, *next;

	if (p == NULL)
		return;
	for (c = p->head; c != NULL; c = next) {
		next = c->next;
		free(c);
	}
	free(p);
	*pp = NULL;
}
