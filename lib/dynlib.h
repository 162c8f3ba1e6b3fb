/*
 * dynlib.h - a shared library loaded at its first use (dlopen), for the
 * libraries only one optional feature needs: libcurl and json-c, used by
 * OAuth2 accounts and `authorize` only (doc/DESIGN.md §1.2, §11).
 *
 * Linked, they would be mapped and relocated in every run, with libcurl's
 * whole chain (gnutls, krb5, p11-kit, nghttp2, ...): about 0.45 MB of
 * private memory and the CPU of their relocations and constructors, also
 * for the accounts that never use them.  The headers are still used at
 * build time (types, constants); only the functions come from the table.
 */
#ifndef POPFETCH_DYNLIB_H
#define POPFETCH_DYNLIB_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

struct dynlib {
	const char		*soname;	/* "libcurl.so.4" */
	const char		*package;	/* Debian's, for the message */
	const char		*feature;	/* "OAuth2" */
	const char *const	*names;		/* the functions to resolve */
	size_t			 n;
	void			*table;		/* n function pointers, filled */
	/* private */
	int			 state;		/* 0 not tried, 1 loaded, -1 failed */
	char			 why[256];
};

/*
 * Load dl->soname once (thread-safe; never unloaded) and fill dl->table
 * with its functions dl->names.  0, or -1 with err set to PF_FAIL_CONFIG
 * (78: the feature is configured on a host without its library; retrying
 * does not help, installing the package does) naming the library, the
 * package and dlopen's reason.  A failure is remembered.
 */
int	dynlib_load(struct dynlib *dl, struct pf_error *err);

#endif
