/*
 * showconf.h - `popfetch config`: the effective configuration, as each
 * account sees it after defaults and top-level inheritance, with where each
 * value came from.  Secrets are masked.  No network, no state.
 */
#ifndef POPFETCH_SHOWCONF_H
#define POPFETCH_SHOWCONF_H

#include <stddef.h>
#include <stdio.h>

#include "conf.h"

/*
 * Print the top-level settings, then one block per account of sel[0..n)
 * (popfetch(1), THE CONFIG COMMAND).  The password is never printed.
 */
void	show_config(const struct conf *conf,
	    const struct conf_account *const *sel, size_t n, FILE *out);

#endif
