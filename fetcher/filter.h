/*
 * filter.h - an account's `filter` command (doc/DESIGN.md §10.1).  It runs
 * once per new message, whole, in worker threads while the next messages
 * arrive; its exit status and the first line of its output decide where
 * the message goes.
 */
#ifndef POPFETCH_FILTER_H
#define POPFETCH_FILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <limits.h>

#include "error.h"
#include "spool.h"

enum filter_verdict {
	FILTER_DELIVER,		/* into `folder` ("": the inbox) */
	FILTER_DISCARD,		/* exit 99: recorded as fetched, not kept */
	FILTER_REFUSED,		/* anything else: left on the server; `why`
				 * (PF_FAIL_CONFIG: cannot be run) */
};

/* One message for the filter.  The caller allocates it and fills the
 * first part; the filter fills the rest. */
struct filter_job {
	struct spool		*spool;		/* the message as delivered;
						 * freed once the filter ran */
	const char		*uidl;		/* POPFETCH_UIDL; NULL: none */
	void			*owner;		/* the caller's, untouched */

	enum filter_verdict	 verdict;
	char			 folder[NAME_MAX];
	struct pf_error		 why;

	struct filter_job	*next;		/* the filter's queue */
	bool			 done;
};

struct filter;

/* A filter running `command` for account `account`, each run bounded by
 * `timeout` seconds after its input. */
struct filter *filter_new(const char *command, const char *account,
	    unsigned timeout);

/* Queue job j; it runs in a worker (or here, if none can be started). */
void	filter_submit(struct filter *f, struct filter_job *j);

/* The oldest job not taken yet, once it is done: with `wait` wait for it,
 * else NULL while it runs.  NULL too when none is queued. */
struct filter_job *filter_take(struct filter *f, bool wait);

/* Jobs submitted and not taken yet. */
size_t	filter_queued(const struct filter *f);

/* Stop the workers and free the filter; every job must have been taken. */
void	filter_free(struct filter **f_r);

#endif
