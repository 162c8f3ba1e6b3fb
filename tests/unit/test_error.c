/* test_error.c - the error object and the category -> exit code map. */
#include "config.h"

#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "error.h"
#include "log.h"

static void
test_exit_codes(void **state)
{
	(void)state;
	assert_int_equal(pf_exit_code(PF_OK), 0);
	assert_int_equal(pf_exit_code(PF_FAIL_USAGE), 64);
	assert_int_equal(pf_exit_code(PF_FAIL_TLS), 69);
	assert_int_equal(pf_exit_code(PF_FAIL_INTERNAL), 70);
	assert_int_equal(pf_exit_code(PF_FAIL_IO), 74);
	assert_int_equal(pf_exit_code(PF_FAIL_TEMP), 75);
	assert_int_equal(pf_exit_code(PF_FAIL_PROTO), 76);
	assert_int_equal(pf_exit_code(PF_FAIL_AUTH), 77);
	assert_int_equal(pf_exit_code(PF_FAIL_CONFIG), 78);
}

static void
test_errno_suffix(void **state)
{
	struct pf_error err;

	(void)state;
	errno = ENOSPC;
	assert_int_equal(pf_error_set_errno(&err, PF_FAIL_IO, "write(%s)", "tmp/x"), -1);
	assert_int_equal(err.category, PF_FAIL_IO);
	assert_string_equal(err.what, "write(tmp/x): No space left on device");
	assert_string_equal(err.server, "");
}

static void
test_server_words_sanitised(void **state)
{
	struct pf_error err;
	char buf[2048];

	(void)state;
	pf_error_set(&err, PF_FAIL_AUTH, "authentication failed");
	pf_error_set_server(&err, "-ERR [AUTH] bad\x01\x1b[31m\r\n", (size_t)-1);
	assert_string_equal(err.server, "-ERR [AUTH] bad\\x01\\x1b[31m");
	assert_string_equal(pf_error_format(&err, buf, sizeof(buf)),
	    "authentication failed: -ERR [AUTH] bad\\x01\\x1b[31m");
}

/*
 * Issue 12, item 2: bytes >= 0x80 went through raw, so a server's 0x9B
 * (8-bit CSI) or C1 in UTF-8 reached the terminal.  Every class is escaped
 * as "\xNN" (in these strings "\\x9b" is the escape, "\x9b" the byte);
 * a backslash is doubled; valid UTF-8 stays.
 */
static void
test_server_words_escaped(void **state)
{
	struct pf_error err;

	(void)state;
	pf_error_set(&err, PF_FAIL_TEMP, "login failed");
	pf_error_set_server(&err, "-ERR \x9b" "2J\xc2\x9b" "31m \x7f\x09 "
	    "Gr\xc3\xbc\xc3\x9f" "e \\x9b \xff\xc0\xaf\xed\xa0\x80 \xe2\x82\r\n",
	    (size_t)-1);
	assert_string_equal(err.server, "-ERR \\x9b2J\\xc2\\x9b31m \\x7f\\x09 "
	    "Gr\xc3\xbc\xc3\x9f" "e \\\\x9b \\xff\\xc0\\xaf\\xed\\xa0\\x80 "
	    "\\xe2\\x82");
	/* An explicit length: a NUL inside is escaped too, bytes past it unread. */
	pf_error_set_server(&err, "a\0\x9b" "ZZZ", 3);
	assert_string_equal(err.server, "a\\x00\\x9b");
}

/* The cut with "..." falls between escapes and between characters. */
static void
test_server_words_cut_on_boundary(void **state)
{
	struct pf_error err;
	char big[PF_ERROR_SERVER_MAX * 2];
	size_t i, len;

	(void)state;
	memset(big, 0x9b, sizeof(big));
	pf_error_set(&err, PF_FAIL_PROTO, "x");
	pf_error_set_server(&err, big, sizeof(big));
	len = strlen(err.server);
	assert_true(len < PF_ERROR_SERVER_MAX);
	assert_string_equal(err.server + len - 3, "...");
	assert_int_equal((len - 3) % 4, 0);
	for (i = 0; i < len - 3; i += 4)
		assert_memory_equal(err.server + i, "\\x9b", 4);

	/* U+00E9 (2 bytes) repeated: never half of one before the "...". */
	for (i = 0; i + 1 < sizeof(big); i += 2)
		memcpy(big + i, "\xc3\xa9", 2);
	pf_error_set_server(&err, big, sizeof(big));
	len = strlen(err.server);
	assert_true(len < PF_ERROR_SERVER_MAX);
	assert_string_equal(err.server + len - 3, "...");
	assert_int_equal((len - 3) % 2, 0);
	for (i = 0; i < len - 3; i += 2)
		assert_memory_equal(err.server + i, "\xc3\xa9", 2);
}

/* Our own words: controls escaped, a backslash kept, "..." at the cut. */
static void
test_what_escaped(void **state)
{
	struct pf_error err;
	char big[PF_ERROR_WHAT_MAX * 2];
	size_t len;

	(void)state;
	pf_error_set(&err, PF_FAIL_PROTO, "bad unique-id %s in %s",
	    "u\x9b\x1b[2J", "C:\\Mail");
	assert_string_equal(err.what,
	    "bad unique-id u\\x9b\\x1b[2J in C:\\Mail");
	/* Text escaped by pf_error_set_server is not escaped again. */
	pf_error_set(&err, PF_FAIL_PROTO, "%s", "\\x9b");
	assert_string_equal(err.what, "\\x9b");

	memset(big, 0x01, sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	pf_error_set(&err, PF_FAIL_PROTO, "%s", big);
	len = strlen(err.what);
	assert_true(len < PF_ERROR_WHAT_MAX);
	assert_string_equal(err.what + len - 3, "...");
	assert_int_equal((len - 3) % 4, 0);
}

/*
 * Read what `fn` writes on stderr (the log lines), through a pipe.  The
 * lines are short: they fit in the pipe's buffer.
 */
static void
capture_stderr(void (*fn)(void), char *buf, size_t size)
{
	int fds[2], saved;
	ssize_t n;
	size_t got = 0;

	assert_int_equal(pipe(fds), 0);
	saved = dup(STDERR_FILENO);
	assert_true(saved >= 0);
	assert_true(dup2(fds[1], STDERR_FILENO) >= 0);
	close(fds[1]);
	fn();
	dup2(saved, STDERR_FILENO);
	close(saved);
	while (got < size - 1 && (n = read(fds[0], buf + got, size - 1 - got)) > 0)
		got += (size_t)n;
	buf[got] = '\0';
	close(fds[0]);
}

static void
log_hostile_lines(void)
{
	struct pf_error err;
	char buf[PF_ERROR_WHAT_MAX + PF_ERROR_SERVER_MAX + 8];

	log_init(2, false);
	/* A -vv trace line with a server line as it came. */
	log_trace("work: < %s", "-ERR \x9b" "2J\xc2\x9b\x1b]0;t\x07 Gr\xc3\xbc\xc3\x9f" "e \\ \xff");
	/* An error line carrying escaped server words: not escaped twice. */
	pf_error_set(&err, PF_FAIL_AUTH, "authentication failed");
	pf_error_set_server(&err, "-ERR \x9b" "2J \\", (size_t)-1);
	log_errx("work: %s", pf_error_format(&err, buf, sizeof(buf)));
	errno = ENOENT;
	log_warn("open(%s)", "a\x7f" "b");
	log_init(0, false);
}

/*
 * Every log line is escaped as a whole, keeping backslashes (lib/log.c):
 * trace lines of raw server text become safe, and the error line's escapes
 * stay single.
 */
static void
test_log_lines_escaped(void **state)
{
	char out[4096];

	(void)state;
	capture_stderr(log_hostile_lines, out, sizeof(out));
	assert_string_equal(out,
	    "work: < -ERR \\x9b2J\\xc2\\x9b\\x1b]0;t\\x07 Gr\xc3\xbc\xc3\x9f" "e \\ \\xff\n"
	    "popfetch: work: authentication failed: -ERR \\x9b2J \\\\\n"
	    "popfetch: open(a\\x7fb): No such file or directory\n");
}

/* A line longer than the log's line is cut between characters. */
static void
log_long_line(void)
{
	static char big[10000];

	memset(big, 0x9b, sizeof(big) - 1);
	log_init(0, false);
	log_errx("%s", big);
}

static void
test_log_long_line_cut(void **state)
{
	char out[16384];
	size_t len, i;

	(void)state;
	capture_stderr(log_long_line, out, sizeof(out));
	len = strlen(out);
	assert_true(len <= 4096);
	assert_int_equal(out[len - 1], '\n');
	assert_memory_equal(out, "popfetch: ", 10);
	assert_int_equal((len - 1 - 10) % 4, 0);
	for (i = 10; i < len - 1; i += 4)
		assert_memory_equal(out + i, "\\x9b", 4);
}

static void
test_server_words_cut(void **state)
{
	struct pf_error err;
	char big[4000];

	(void)state;
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	pf_error_set(&err, PF_FAIL_PROTO, "status line too long");
	pf_error_set_server(&err, big, (size_t)-1);
	assert_true(strlen(err.server) < PF_ERROR_SERVER_MAX);
	assert_memory_equal(err.server + strlen(err.server) - 3, "...", 3);
}

static void
test_meanings(void **state)
{
	(void)state;
	assert_string_equal(pf_exit_meaning(0), "ok");
	assert_string_equal(pf_exit_meaning(75), "temporary failure");
	assert_string_equal(pf_exit_meaning(12), "exit 12");
}

/* fatalx: exit 70; the atexit handlers run only from the main thread. */
static int atexit_fd = -1;

static void
atexit_mark(void)
{
	(void)write(atexit_fd, "x", 1);
}

static void *
fatal_thread(void *arg)
{
	(void)arg;
	fatalx("from a helper thread");
}

static void
fatal_in(bool in_thread, int *status_r, bool *atexit_ran_r)
{
	int fds[2], devnull;
	pthread_t t;
	pid_t pid;
	char c;

	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid != -1);
	if (pid == 0) {
		close(fds[0]);
		atexit_fd = fds[1];
		atexit(atexit_mark);
		devnull = open("/dev/null", O_WRONLY);
		dup2(devnull, STDERR_FILENO);
		if (in_thread) {
			if (pthread_create(&t, NULL, fatal_thread, NULL) == 0)
				pthread_join(t, NULL);
			_exit(99);
		}
		fatalx("from the main thread");
	}
	close(fds[1]);
	*atexit_ran_r = read(fds[0], &c, 1) == 1;
	close(fds[0]);
	assert_int_equal(waitpid(pid, status_r, 0), pid);
}

static void
test_fatal_from_threads(void **state)
{
	bool ran;
	int st;

	(void)state;
	fatal_in(false, &st, &ran);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 70);
	assert_true(ran);
	fatal_in(true, &st, &ran);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 70);
	assert_false(ran);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exit_codes),
		cmocka_unit_test(test_errno_suffix),
		cmocka_unit_test(test_server_words_sanitised),
		cmocka_unit_test(test_server_words_cut),
		cmocka_unit_test(test_server_words_escaped),
		cmocka_unit_test(test_server_words_cut_on_boundary),
		cmocka_unit_test(test_what_escaped),
		cmocka_unit_test(test_log_lines_escaped),
		cmocka_unit_test(test_log_long_line_cut),
		cmocka_unit_test(test_meanings),
		cmocka_unit_test(test_fatal_from_threads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
