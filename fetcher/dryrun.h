/*
 * dryrun.h - `popfetch fetch --dry-run`: what a fetch would do, with each
 * message's From, Subject and Date, and nothing written or deleted.
 */
#ifndef POPFETCH_DRYRUN_H
#define POPFETCH_DRYRUN_H

#include "error.h"
#include "pop3.h"
#include "seen.h"
#include "session.h"

/*
 * On the logged-in session s with its listing l and the seen-list `seen`
 * (read-only; NULL: nothing seen), print to stdout what a fetch would do,
 * then the summary line (t0: report_clock() at the start).  Returns 0, or
 * -1 with err set when the session fails or the server has no UIDL and
 * the account does not delete.
 */
int	dry_run(struct session *s, struct seen *seen,
	    struct pop3_listing *l, double t0, struct pf_error *err);

#endif
