/*
 * run.h - one account's fetch: lock, recover, connect, authenticate, list,
 * diff against the seen-list, deliver, record, delete, quit (popfetch(1);
 * the order is doc/DESIGN.md §3).
 */
#ifndef POPFETCH_RUN_H
#define POPFETCH_RUN_H

#include <stdbool.h>
#include <stdio.h>

#include "conf.h"

struct run_options {
	bool	dry_run;	/* -n: list and show, write nothing */
	bool	progress;	/* draw a live progress line on stderr */
	/* account_owners(conf), made once by the caller for all the
	 * accounts it fetches (not NULL). */
	const struct seen_owner *owners;
};

/*
 * Fetch one account.  Prints the account's summary line (or its error line)
 * itself and returns the exit code for the account (popfetch(1), EXIT STATUS): 0 on success.
 */
int	run_fetch(const struct conf *conf, const struct conf_account *acct,
	    const struct run_options *opts);

/*
 * Around accounts fetched one after the other in this process (-j 1, or
 * one job of -j N: doc/DESIGN.md §14): one state-database connection
 * (store/seen.h) and one worker thread for the local start of a run serve
 * them all.
 */
void	run_series_begin(void);
void	run_series_end(void);

#endif
