/*
 * secret.c - password and password_command (popfetch.conf(5)).
 *
 * The command is run by lib/command.c: `/bin/sh -c COMMAND` in its own
 * process group, so a timeout kills everything it started; stdin from
 * /dev/null, stderr inherited.  All of its output is consumed while it
 * runs, not just the first line, so that `pass show x` does not die of
 * SIGPIPE and turn a good secret into a failure; the first
 * SECRET_OUTPUT_MAX bytes are kept.  The secret is taken when the shell
 * exits, not at EOF on the pipe, which a background process it leaves
 * behind can hold off indefinitely; such a process is left alone.
 * Everything read is wiped.
 */
#include "config.h"

#include <string.h>

#include "command.h"
#include "error.h"
#include "params.h"
#include "secret.h"
#include "xmalloc.h"

/* Explain an end that is not "exited 0". */
static int
end_error(const struct command_result *r, unsigned timeout_s,
    struct pf_error *err)
{
	switch (r->end) {
	case COMMAND_EXITED:
	case COMMAND_NOT_RUN:
		break;
	case COMMAND_SIGNALLED:
		return pf_error_set(err, PF_FAIL_CONFIG,
		    "password_command was killed by signal %d (%s)",
		    r->code, strsignal(r->code));
	case COMMAND_TIMED_OUT:
		return pf_error_set(err, PF_FAIL_CONFIG,
		    "password_command timed out after %u s", timeout_s);
	}
	return pf_error_set(err, PF_FAIL_CONFIG,
	    "password_command exited with status %d%s", r->code,
	    r->code == 127 ? " (command not found)" :
	    r->code == 126 ? " (command not executable)" : "");
}

/* Accept a secret: no CR, LF or NUL (popfetch.conf(5)). */
static int
check_secret(const char *s, size_t len, const char *source,
    struct pf_error *err)
{
	if (memchr(s, '\r', len) != NULL || memchr(s, '\n', len) != NULL ||
	    memchr(s, '\0', len) != NULL)
		return pf_error_set(err, PF_FAIL_CONFIG,
		    "the secret from %s contains CR, LF or NUL", source);
	return 0;
}

static int
run_command(const char *command, unsigned timeout_s, char **secret_r,
    struct pf_error *err)
{
	const struct command c = { .line = command, .timeout = timeout_s,
	    .out_max = SECRET_OUTPUT_MAX, .out_secret = true };
	struct command_result r;
	struct pf_error cerr;
	size_t linelen;
	char *nl;
	int rc = -1;

	pf_error_clear(&cerr);
	if (command_run(&c, &r, &cerr) == -1)
		return pf_error_set(err, PF_FAIL_CONFIG, "password_command: %s",
		    cerr.what);
	if (r.end != COMMAND_EXITED || r.code != 0) {
		end_error(&r, timeout_s, err);
		goto done;
	}

	if ((nl = memchr(r.out, '\n', r.out_len)) != NULL)
		linelen = (size_t)(nl - r.out);
	else if (r.out_len == SECRET_OUTPUT_MAX) {
		pf_error_set(err, PF_FAIL_CONFIG,
		    "password_command printed a first line longer than %d bytes",
		    SECRET_OUTPUT_MAX);
		goto done;
	} else
		linelen = r.out_len;
	if (linelen > 0 && r.out[linelen - 1] == '\r')
		linelen--;
	if (linelen == 0) {
		pf_error_set(err, PF_FAIL_AUTH, "password_command printed nothing");
		goto done;
	}
	if (check_secret(r.out, linelen, "password_command", err) == -1)
		goto done;
	*secret_r = xmalloc(linelen + 1);
	memcpy(*secret_r, r.out, linelen);
	(*secret_r)[linelen] = '\0';
	rc = 0;
done:
	command_result_free(&r);
	return rc;
}

int
secret_get(const char *password, const char *password_command,
    unsigned timeout_s, char **secret_r, struct pf_error *err)
{
	*secret_r = NULL;
	if (password != NULL) {
		if (check_secret(password, strlen(password), "password",
		    err) == -1)
			return -1;
		*secret_r = xstrdup(password);
		return 0;
	}
	if (password_command == NULL)
		return pf_error_set(err, PF_FAIL_CONFIG,
		    "neither password nor password_command is set");
	return run_command(password_command, timeout_s, secret_r, err);
}
