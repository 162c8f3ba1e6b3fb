/*
 * thread.h - starting helper threads (store/maildir.c's fsync threads,
 * fetcher/run.c's local start of a run).
 */
#ifndef POPFETCH_THREAD_H
#define POPFETCH_THREAD_H

#include <pthread.h>

/*
 * pthread_create with every signal blocked in the new thread, so that
 * signals keep reaching the main thread (a thread inherits its creator's
 * mask; the caller's own mask is left as it was).  Returns 0, or the error
 * number pthread_create returned.
 */
int	pf_thread_start(pthread_t *thread_r, const pthread_attr_t *attr,
	    void *(*fn)(void *), void *arg);

#endif
