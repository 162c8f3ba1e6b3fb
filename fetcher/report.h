/*
 * report.h - what popfetch tells its user about accounts: an account's
 * error line, the live progress line, the summary line, and `status` as
 * text or JSON.  Formats as popfetch(1) gives them.
 */
#ifndef POPFETCH_REPORT_H
#define POPFETCH_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "conf.h"
#include "error.h"
#include "seen.h"

/* Seconds on the monotonic clock, for durations. */
double	report_clock(void);

/* "0 B", "512 B", "1.2 kB", "3.4 MB", "5.6 GB" (SI units) into buf. */
const char *report_bytes(uint64_t n, char *buf, size_t size);

/* Print the account's error line, "popfetch: NAME: what: server's words";
 * returns the exit code for err. */
int	report_error(const char *name, const struct pf_error *err);

/* The progress line of one account's fetch. */
struct progress {
	const char	*name;
	bool		 on;		/* drawn at all (run_options.progress) */
	double		 t0;		/* report_clock() at the start */
	double		 last_draw;
	size_t		 total;		/* messages to fetch */
	unsigned long	 done;		/* received whole */
	uint64_t	 bytes;		/* of those */
	uint64_t	 cur;		/* of the message coming in */
	bool		 drawn;
};

/* Redraw, at most every PROGRESS_INTERVAL unless `force`. */
void	progress_draw(struct progress *p, bool force);
/* Erase the line if it is shown. */
void	progress_erase(struct progress *p);

/* The summary line of an account's fetch (or, with dry_run, of what it
 * would do); it replaces the progress line.  discarded < 0: the account
 * has no filter, and the line says nothing of discards. */
void	report_summary(const char *name, unsigned long fetched,
	    unsigned long skipped, unsigned long deleted, long discarded,
	    uint64_t bytes, double seconds, bool dry_run);

/*
 * `popfetch status` for the n accounts sel[] and, with `orphans`, the
 * seen-lists no configured account owns: one line each, or with json one
 * JSON array of objects, on out.  codes[0..n] (n + 1 of them) get each
 * account's exit code, the orphans' last.
 */
void	report_status(const struct conf *conf,
	    const struct conf_account *const *sel, size_t n, bool orphans,
	    bool json, FILE *out, int *codes);

#endif
