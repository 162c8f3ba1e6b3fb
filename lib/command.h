/*
 * command.h - running a shell command line as a child process: a mail
 * filter, an MDA backend, password_command (fetcher/secret.c).
 *
 * The command runs as `/bin/sh -c LINE` in a process group of its own, so
 * that a timeout kills everything it started.  It is started with
 * posix_spawn(3), which copies none of popfetch's memory mappings, where
 * the C library can close every other descriptor in the child (glibc >=
 * 2.34), and with fork and exec otherwise; the child's state is the same.
 * Its input is written while its stdout and stderr are read (poll(2)), so
 * no size of either deadlocks.
 * Its result is taken when the shell exits, not at EOF on its pipes: a
 * background process it leaves behind holding them delays nothing, and is
 * left alone.  Memory is bounded whatever the command prints: stdout past
 * out_max and stderr past COMMAND_ERR_LINE_MAX bytes a line or
 * COMMAND_ERR_LINES_MAX lines (params.h) are read and dropped.
 *
 * Safe to call from several threads at once, also from threads with every
 * signal blocked (lib/thread.h): every descriptor it makes is close-on-exec;
 * the child gets an empty signal mask and SIGPIPE at its default (whatever
 * popfetch did with it), and keeps only its stdin, stdout and stderr.
 * SIGPIPE from writing to a command that stopped reading is neither
 * delivered nor left pending.  The environment is read (not changed) at
 * each call: nobody may setenv(3) while a command is being started.  The
 * shell is reaped by its pid: nobody in the process may reap with
 * waitpid(-1) or set SIGCHLD to SIG_IGN meanwhile (fetcher/cli.c's -j
 * parent does, but it runs no commands).
 */
#ifndef POPFETCH_COMMAND_H
#define POPFETCH_COMMAND_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

/* What the command reads on its stdin, in order. */
struct command_input {
	const void	*buf;	/* these bytes; or NULL: read fd from offset 0 to EOF (pread) */
	size_t		 len;
	int		 fd;
};

struct command {
	const char			*line;		/* run as /bin/sh -c LINE */
	const char *const		*env;		/* extra "NAME=value" entries added to (or replacing in) the environment, NULL-terminated; may be NULL */
	const struct command_input	*in;		/* nin pieces; nin == 0: stdin is /dev/null */
	size_t				 nin;
	unsigned			 timeout;	/* seconds, counted from when all input is written (or stdin closed); 0: none.
							 * While input remains, the command must also take some of it every `timeout` s. */
	const char			*log_prefix;	/* non-NULL: each stderr line is logged with log_warnx("%s: %s", log_prefix, line), escaped with pf_escape (lib/escape.h), long lines cut; NULL: stderr is inherited */
	size_t				 out_max;	/* stdout bytes kept; the rest is read and dropped; 0: stdout is /dev/null */
	bool				 out_secret;	/* wipe kept stdout when freed (explicit_bzero) */
};

enum command_end {
	COMMAND_EXITED,		/* code: its exit status */
	COMMAND_SIGNALLED,	/* code: the signal */
	COMMAND_TIMED_OUT,	/* killed (its whole process group) after timeout; code: 0 */
	COMMAND_NOT_RUN,	/* could not be run: /bin/sh could not be executed, or the shell said 126/127 (not executable / not found); code: 126 or 127 */
};

struct command_result {
	enum command_end end;
	int		 code;
	char		*out;		/* kept stdout, NUL-terminated (NULL when out_max is 0) */
	size_t		 out_len;
};

/*
 * Run c to its end.  Returns 0 with *r filled whatever the command did, or
 * -1 with err set (PF_FAIL_IO or PF_FAIL_TEMP) only when popfetch itself
 * could not set it up (pipe, fork or posix_spawn, a shortage such as
 * ENOMEM or EAGAIN at exec...) or see it through (poll, read, pread of an
 * input fd...); the command is then killed and reaped and *r holds
 * nothing to free.  err's words start "cannot run it: " when nothing was
 * started; the caller puts its own name in front ("filter: ...").
 */
int	command_run(const struct command *c, struct command_result *r,
	    struct pf_error *err);

/*
 * Why command c, called `what` ("filter"), did not succeed, in err: its
 * exit status (75, EX_TEMPFAIL, is "asked to try again later"), the
 * signal that killed it, its timeout, all PF_FAIL_TEMP; or that it cannot
 * be run, PF_FAIL_CONFIG.  For any result but an exit 0.
 */
void	command_failure(const struct command *c, const struct command_result *r,
	    const char *what, struct pf_error *err);

/* Wipe (whatever out_secret was: it costs one memset) and free r->out;
 * r may be freed twice. */
void	command_result_free(struct command_result *r);

#endif
