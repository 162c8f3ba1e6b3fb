/*
 * run.h - one account's run: lock, recover, connect, authenticate, list,
 * diff against the seen-list, fetch into the Maildir, record, delete, quit
 * (popfetch(1), doc/DESIGN.md).  Also `check` (connect, TLS, auth, CAPA, STAT) and
 * `status` (the seen-list alone).
 */
#ifndef POPFETCH_RUN_H
#define POPFETCH_RUN_H

#include <stdbool.h>
#include <stdio.h>

#include "conf.h"

struct run_options {
	bool	dry_run;	/* -n: list and show, write nothing */
	bool	progress;	/* draw a live progress line on stderr */
};

/*
 * Fetch one account.  Prints the account's summary line (or its error line)
 * itself and returns the exit code for the account (popfetch(1), EXIT STATUS): 0 on success.
 */
int	run_fetch(const struct conf *conf, const struct conf_account *acct,
	    const struct run_options *opts);

/*
 * `popfetch check` for one account: connect, verify TLS, authenticate, CAPA,
 * STAT; print what was found to `out`.  Changes nothing on disk.  Returns the
 * account's exit code.
 */
int	run_check(const struct conf *conf, const struct conf_account *acct,
	    FILE *out);

/*
 * `popfetch status`: one line (or, with json, one JSON object; `first` says
 * whether it is the first of the array) per account from the state database
 * alone.  Creates nothing.  Returns an exit code (74 if the database cannot
 * be read).
 */
int	run_status(const struct conf *conf, const struct conf_account *acct,
	    bool json, bool first, FILE *out);

/*
 * After the accounts' lines: one line (object) per seen-list that no
 * configured account owns any more, marked "(not in the configuration)"
 * (JSON: "configured": false).  Returns an exit code.
 */
int	run_status_orphans(const struct conf *conf, bool json, bool first,
	    FILE *out);

#endif
