/* test_secret.c - password and password_command (popfetch.conf(5)). */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "error.h"
#include "secret.h"
#include "testutil.h"
#include "xmalloc.h"

/* Is a process whose command line contains `word` still alive? */
static int
process_alive(const char *word)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd),
	    "for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' 2>/dev/null < $f; echo; done"
	    " | grep -v grep | grep -q -- '%s'", word);
	return system(cmd) == 0;
}

/*
 * SIGKILL every process whose command line contains `word`: what a test's
 * command left running in the background.  The words carry our pid (as in
 * `sleep 20.<pid>1`), so nobody else's processes match.
 */
static void
kill_leftovers(const char *word)
{
	struct dirent *de;
	char path[sizeof("/proc//cmdline") + sizeof(de->d_name)], cmd[512];
	ssize_t n, i;
	DIR *d;
	int fd;

	assert_non_null(d = opendir("/proc"));
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/cmdline", de->d_name);
		if ((fd = open(path, O_RDONLY)) == -1)
			continue;
		n = read(fd, cmd, sizeof(cmd) - 1);
		close(fd);
		if (n <= 0)
			continue;
		for (i = 0; i < n; i++)
			if (cmd[i] == '\0')
				cmd[i] = ' ';
		cmd[n] = '\0';
		if (strstr(cmd, word) != NULL)
			(void)kill((pid_t)atol(de->d_name), SIGKILL);
	}
	closedir(d);
}

/* No child of ours is left, running or zombie. */
static void
assert_no_children(void)
{
	assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
	assert_int_equal(errno, ECHILD);
}

/* Run a command that must succeed and give `expect`. */
static void
expect_secret(const char *command, const char *expect)
{
	struct pf_error err;
	char *s = NULL;

	pf_error_clear(&err);
	assert_int_equal(secret_get(NULL, command, 5, &s, &err), 0);
	assert_int_equal(err.category, PF_OK);
	assert_non_null(s);
	assert_string_equal(s, expect);
	secret_free(&s);
	assert_null(s);
}

/* Run a command that must fail with `category`; returns the message. */
static const char *
expect_failure(const char *password, const char *command, unsigned timeout_s,
    enum pf_fail category)
{
	static struct pf_error err;
	char *s = (char *)"untouched";

	pf_error_clear(&err);
	assert_int_equal(secret_get(password, command, timeout_s, &s, &err), -1);
	assert_null(s);
	assert_int_equal(err.category, category);
	return err.what;
}

/* Run a command that the 1 s timeout must stop, in about 1 s; returns the
 * message. */
static const char *
expect_timeout(const char *command)
{
	double t0 = test_now(), t;
	const char *what;

	what = expect_failure(NULL, command, 1, PF_FAIL_CONFIG);
	t = test_now() - t0;
	assert_true(t >= 0.9 && t < 2.5);
	return what;
}

static void
test_first_line(void **state)
{
	(void)state;
	expect_secret("printf 's3cret\\nsecond\\n'", "s3cret");
	expect_secret("echo s3cret", "s3cret");
	expect_secret("printf 'no newline at all'", "no newline at all");
	/* spaces and punctuation are part of the secret */
	expect_secret("printf ' p@ss w\"rd \\n'", " p@ss w\"rd ");
}

static void
test_crlf_stripped(void **state)
{
	(void)state;
	expect_secret("printf 'tok3n\\r\\nmore\\r\\n'", "tok3n");
	expect_secret("printf 'tok3n\\r'", "tok3n");
}

static void
test_long_output_drained(void **state)
{
	(void)state;
	/* 1 MiB after the first line: read and discarded, no SIGPIPE */
	expect_secret("echo first; head -c 1048576 /dev/zero | tr '\\0' x; echo",
	    "first");
	/* output beyond the cap without a newline is a configuration error */
	expect_failure(NULL, "head -c 200000 /dev/zero | tr '\\0' x", 5,
	    PF_FAIL_CONFIG);
}

static void
test_exit_status(void **state)
{
	const char *what;

	(void)state;
	what = expect_failure(NULL, "echo visible-secret; exit 1", 5,
	    PF_FAIL_CONFIG);
	assert_non_null(strstr(what, "status 1"));
	/* the output is never quoted */
	assert_null(strstr(what, "visible-secret"));
	what = expect_failure(NULL, "exit 3", 5, PF_FAIL_CONFIG);
	assert_non_null(strstr(what, "status 3"));
}

static void
test_killed_by_signal(void **state)
{
	const char *what;

	(void)state;
	what = expect_failure(NULL, "echo x; kill -TERM $$", 5, PF_FAIL_CONFIG);
	assert_non_null(strstr(what, "signal 15"));
}

static void
test_empty_output(void **state)
{
	(void)state;
	expect_failure(NULL, "true", 5, PF_FAIL_AUTH);
	expect_failure(NULL, "printf '\\n'", 5, PF_FAIL_AUTH);
	expect_failure(NULL, "printf '\\r\\nsecond\\n'", 5, PF_FAIL_AUTH);
	/* an empty output with a failing status is the failure (78) */
	expect_failure(NULL, "exit 2", 5, PF_FAIL_CONFIG);
}

static void
test_timeout(void **state)
{
	char cmd[128], pattern[64];
	const char *what;
	pid_t leftover;
	int i;

	(void)state;
	what = expect_timeout("sleep 10");
	assert_non_null(strstr(what, "timed out after 1 s"));

	/* A pipeline: the whole process group goes, and nothing is left. */
	/* (our pid in the sleep times tells our sleeps from anyone's) */
	snprintf(cmd, sizeof(cmd), "sleep 7.%d1 | sleep 7.%d2", (int)getpid(),
	    (int)getpid());
	snprintf(pattern, sizeof(pattern), "sleep 7\\.%d[12]", (int)getpid());
	expect_timeout(cmd);
	/* SIGKILLed at once; gone once init has reaped them (give a loaded
	 * machine up to 5 s). */
	for (i = 0; i < 50 && process_alive(pattern); i++)
		usleep(100 * 1000);
	assert_false(process_alive(pattern));
	/* no zombie or child of ours remains */
	leftover = waitpid(-1, NULL, WNOHANG);
	assert_int_equal(leftover, -1);
	assert_int_equal(errno, ECHILD);

	/* stdout closed early but the command keeps running */
	expect_timeout("echo s; exec >&-; sleep 10");
}

/*
 * The commands below leave a background process holding the write end of
 * the pipe, so EOF is 20 s away; the secret (or the error) must come when
 * the shell exits (issue 12, item 7), not at EOF and not at the timeout
 * (5 s here).
 */

/* Like expect_secret, but the answer must come within 3 s. */
static void
expect_secret_fast(const char *command, const char *expect)
{
	double t0 = test_now();

	expect_secret(command, expect);
	assert_true(test_now() - t0 < 3.0);
}

/* Like expect_failure (no static password, 5 s timeout), within 3 s. */
static const char *
expect_failure_fast(const char *command, enum pf_fail category)
{
	double t0 = test_now();
	const char *what;

	what = expect_failure(NULL, command, 5, category);
	assert_true(test_now() - t0 < 3.0);
	return what;
}

/* Run `fmt` with our pid as its %d (for the leftovers' names). */
#define CMD(buf, fmt)	snprintf((buf), sizeof(buf), (fmt), (int)getpid())

/* Teardown: kill the leftovers, also after a failed assertion. */
static int
kill_our_leftovers(void **state)
{
	char word[32];

	(void)state;
	CMD(word, "20.%d");
	kill_leftovers(word);
	return 0;
}

static void
test_background_holds_stdout(void **state)
{
	char cmd[256];

	(void)state;
	CMD(cmd, "echo secret; sleep 20.%d1 &");
	expect_secret_fast(cmd, "secret");
	CMD(cmd, "printf secret; sleep 20.%d2 &");
	expect_secret_fast(cmd, "secret");
	CMD(cmd, "printf secret; exec sleep 20.%d3 &");
	expect_secret_fast(cmd, "secret");
	/* this one lets go of the pipe: EOF comes with the exit */
	CMD(cmd, "printf secret; exec sleep 20.%d4 >&- &");
	expect_secret_fast(cmd, "secret");
	/* a leftover that never stops writing holds nothing up either */
	CMD(cmd, "echo secret; yes 20.%d5 &");
	expect_secret_fast(cmd, "secret");
	/* the secret is what the shell printed by its exit */
	CMD(cmd, "printf secret; (sleep 0.5; echo late; sleep 20.%d6) &");
	expect_secret_fast(cmd, "secret");

	kill_our_leftovers(NULL);
	/* the shells were reaped; the leftovers are not our children */
	assert_no_children();
}

static void
test_output_just_before_exit(void **state)
{
	char cmd[256];
	int i;

	(void)state;
	/* the secret is written, and the shell exits, while we wait */
	CMD(cmd, "sleep 20.%d1 & sleep 0.3; printf secret");
	expect_secret_fast(cmd, "secret");
	CMD(cmd, "sleep 20.%d2 & sleep 0.3; echo secret; exit 0");
	expect_secret_fast(cmd, "secret");
	/* written and exited at once, often before we look: every byte
	 * still in the pipe is read after the exit */
	for (i = 0; i < 20; i++) {
		CMD(cmd, "sleep 20.%d3 & printf secret");
		expect_secret_fast(cmd, "secret");
	}
	kill_our_leftovers(NULL);
	assert_no_children();
}

static void
test_background_lines_and_errors(void **state)
{
	char cmd[256], big[60001];
	const char *what;

	(void)state;
	/* a first line longer than the cap is still too long */
	CMD(cmd, "head -c 200000 /dev/zero | tr '\\0' x; sleep 20.%d1 &");
	what = expect_failure_fast(cmd, PF_FAIL_CONFIG);
	assert_non_null(strstr(what, "longer than"));
	/* a first line that takes many reads, and more after it */
	CMD(cmd, "head -c 60000 /dev/zero | tr '\\0' x; echo; "
	    "head -c 1048576 /dev/zero; sleep 20.%d2 &");
	memset(big, 'x', 60000);
	big[60000] = '\0';
	expect_secret_fast(cmd, big);
	CMD(cmd, "echo first; head -c 1048576 /dev/zero | tr '\\0' x; "
	    "sleep 20.%d3 &");
	expect_secret_fast(cmd, "first");
	/* the exit status and empty output are judged as without it */
	CMD(cmd, "echo secret; sleep 20.%d4 & exit 1");
	what = expect_failure_fast(cmd, PF_FAIL_CONFIG);
	assert_non_null(strstr(what, "status 1"));
	CMD(cmd, "sleep 20.%d5 &");
	expect_failure_fast(cmd, PF_FAIL_AUTH);
	CMD(cmd, "printf 'ab\\rcd\\n'; sleep 20.%d6 &");
	expect_failure_fast(cmd, PF_FAIL_CONFIG);

	kill_our_leftovers(NULL);
	assert_no_children();
}

static void
test_nul_cr_in_secret(void **state)
{
	(void)state;
	expect_failure(NULL, "printf 'ab\\000cd\\n'", 5, PF_FAIL_CONFIG);
	expect_failure(NULL, "printf 'ab\\rcd\\n'", 5, PF_FAIL_CONFIG);
	expect_failure(NULL, "printf 'abcd\\r\\r\\n'", 5, PF_FAIL_CONFIG);
}

static void
test_command_not_found(void **state)
{
	const char *what;

	(void)state;
	what = expect_failure(NULL, "/nonexistent/popfetch-no-such-command", 5,
	    PF_FAIL_CONFIG);
	assert_non_null(strstr(what, "127"));
}

static void
test_stdin_is_dev_null(void **state)
{
	(void)state;
	/* reading stdin gets EOF at once instead of hanging on ours */
	expect_secret("cat; echo after-stdin", "after-stdin");
}

static void
test_static_password(void **state)
{
	struct pf_error err;
	char *s = NULL;

	(void)state;
	pf_error_clear(&err);
	/* the password wins over the command, which is never run */
	assert_int_equal(secret_get("hunter2", "exit 1", 5, &s, &err), 0);
	assert_string_equal(s, "hunter2");
	secret_free(&s);
	expect_failure("hunter2\nDELE 1", NULL, 5, PF_FAIL_CONFIG);
	expect_failure("hunter2\r", NULL, 5, PF_FAIL_CONFIG);
	expect_failure(NULL, NULL, 5, PF_FAIL_CONFIG);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_first_line),
		cmocka_unit_test(test_crlf_stripped),
		cmocka_unit_test(test_long_output_drained),
		cmocka_unit_test(test_exit_status),
		cmocka_unit_test(test_killed_by_signal),
		cmocka_unit_test(test_empty_output),
		cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_nul_cr_in_secret),
		cmocka_unit_test_teardown(test_background_holds_stdout,
		    kill_our_leftovers),
		cmocka_unit_test_teardown(test_output_just_before_exit,
		    kill_our_leftovers),
		cmocka_unit_test_teardown(test_background_lines_and_errors,
		    kill_our_leftovers),
		cmocka_unit_test(test_command_not_found),
		cmocka_unit_test(test_stdin_is_dev_null),
		cmocka_unit_test(test_static_password),
	};

	/* cmocka may run us with SIGPIPE ignored; the child must not care */
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
