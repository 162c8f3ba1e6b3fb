/* thread.c - starting helper threads with every signal blocked. */
#include "config.h"

#include <pthread.h>
#include <signal.h>

#include "thread.h"

int
pf_thread_start(pthread_t *thread_r, const pthread_attr_t *attr,
    void *(*fn)(void *), void *arg)
{
	sigset_t all, old;
	int rc;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(thread_r, attr, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return rc;
}
