/*
 * check.h - `popfetch check`: connect, verify TLS, log in, CAPA, STAT, and
 * say what was found.  Changes nothing on disk.
 */
#ifndef POPFETCH_CHECK_H
#define POPFETCH_CHECK_H

#include <stdio.h>

#include "conf.h"

/* Check one account, printing to out; returns its exit code (0: fine). */
int	check_account(const struct conf *conf, const struct conf_account *acct,
	    FILE *out);

#endif
