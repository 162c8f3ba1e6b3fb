/* test_error.c - the error object and the category -> exit code map. */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "error.h"

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

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exit_codes),
		cmocka_unit_test(test_errno_suffix),
		cmocka_unit_test(test_server_words_sanitised),
		cmocka_unit_test(test_server_words_cut),
		cmocka_unit_test(test_meanings),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
