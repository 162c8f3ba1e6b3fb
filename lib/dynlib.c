/* dynlib.c - a shared library loaded at its first use.  See dynlib.h. */
#include "config.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "dynlib.h"

static pthread_mutex_t	 lock = PTHREAD_MUTEX_INITIALIZER;

static int
load(struct dynlib *dl)
{
	void *h, *fn;
	size_t i;

	if ((h = dlopen(dl->soname, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		const char *e = dlerror();

		snprintf(dl->why, sizeof(dl->why), "%s", e != NULL ? e :
		    "dlopen failed");
		return -1;
	}
	for (i = 0; i < dl->n; i++) {
		(void)dlerror();
		if ((fn = dlsym(h, dl->names[i])) == NULL) {
			snprintf(dl->why, sizeof(dl->why), "%s: no %s",
			    dl->soname, dl->names[i]);
			/* h stays open: harmless, and dlclose of a half-used
			 * library is not worth the risk */
			return -1;
		}
		/* POSIX: a function's address fits in a void * (dlsym). */
		memcpy((char *)dl->table + i * sizeof(fn), &fn, sizeof(fn));
	}
	return 0;
}

int
dynlib_load(struct dynlib *dl, struct pf_error *err)
{
	int state;

	pthread_mutex_lock(&lock);
	if (dl->state == 0)
		dl->state = load(dl) == 0 ? 1 : -1;
	state = dl->state;
	pthread_mutex_unlock(&lock);
	if (state == 1)
		return 0;
	return pf_error_set(err, PF_FAIL_CONFIG, "%s needs %s, which cannot "
	    "be loaded (Debian: apt-get install %s): %s", dl->feature,
	    dl->soname, dl->package, dl->why);
}
