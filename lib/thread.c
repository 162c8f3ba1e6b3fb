/* thread.c - starting helper threads with every signal blocked. */
#include "config.h"

#include <pthread.h>
#include <signal.h>
#ifdef __GLIBC__
#include <malloc.h>		/* mallopt */
#endif

#include "params.h"
#include "thread.h"

/*
 * glibc gives each thread that allocates an arena of its own; our helper
 * threads allocate little, and their arenas' touched pages were 0.2-0.45
 * MB of popfetch's private memory at 20,000 messages with no time won
 * (bench/README.md).  Set once, before the first helper thread starts.
 */
static void
limit_arenas(void)
{
#if defined(__GLIBC__) && defined(M_ARENA_MAX)
	(void)mallopt(M_ARENA_MAX, THREAD_MALLOC_ARENAS);
#endif
}

int
pf_thread_start(pthread_t *thread_r, const pthread_attr_t *attr,
    void *(*fn)(void *), void *arg)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	sigset_t all, old;
	int rc;

	(void)pthread_once(&once, limit_arenas);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(thread_r, attr, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return rc;
}
