/*
 * secret.h - the account's secret (password or access token), from the
 * configuration or from password_command (popfetch.conf(5)).
 *
 * The secret never goes into an argv, an environment or an error message:
 * the command runs as `/bin/sh -c COMMAND` with stdin from /dev/null, its
 * stdout read through a pipe and its stderr inherited; its environment is
 * ours, unchanged.
 */
#ifndef POPFETCH_SECRET_H
#define POPFETCH_SECRET_H

#include "error.h"

/*
 * Get the secret.  If `password` is not NULL it is copied; otherwise
 * `password_command` is run in a process group of its own, and the first
 * line of its standard output, without the trailing CR/LF, is the secret
 * (at most SECRET_OUTPUT_MAX bytes are kept; the rest is read and
 * discarded).  The command must finish within timeout_s seconds (0: no
 * limit); on timeout its process group is killed with SIGKILL and reaped.
 * The output is taken when the shell exits, not at EOF: a background
 * process it leaves holding its stdout is neither waited for nor killed.
 *
 * On success *secret_r is a new NUL-terminated string, which the caller
 * wipes and frees with secret_free() (xmalloc.h), and 0 is returned.
 * On failure *secret_r is NULL, -1 is returned and err is set:
 *   PF_FAIL_CONFIG  neither is set; the command cannot be started, exits
 *                   non-zero, is killed by a signal or times out (the
 *                   message gives the exit status or signal, never the
 *                   output nor the command text); its first line is longer
 *                   than SECRET_OUTPUT_MAX; the secret contains CR, LF or
 *                   NUL (it would inject protocol commands).
 *   PF_FAIL_AUTH    the command succeeded but printed an empty first line.
 * A static `password` that is empty is passed through; the configuration
 * decides whether that is allowed.
 */
int	secret_get(const char *password, const char *password_command,
	    unsigned timeout_s, char **secret_r, struct pf_error *err);

#endif
