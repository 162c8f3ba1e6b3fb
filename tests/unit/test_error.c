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
	assert_string_equal(err.server, "-ERR [AUTH] bad??[31m");
	assert_string_equal(pf_error_format(&err, buf, sizeof(buf)),
	    "authentication failed: -ERR [AUTH] bad??[31m");
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
		cmocka_unit_test(test_meanings),
		cmocka_unit_test(test_fatal_from_threads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
