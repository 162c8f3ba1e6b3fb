/*
 * test_dynlib.c - lib/dynlib.c: a library that is there is loaded and its
 * functions work through the table; one that is missing, or lacks a
 * function, is 78 naming the library and its package, every time.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "dynlib.h"
#include "error.h"

static const char *const names[] = { "strlen", "strchr" };

static struct {
	size_t	(*strlen)(const char *);
	char	*(*strchr)(const char *, int);
} fns;

static void
test_present(void **state)
{
	struct dynlib dl = { .soname = "libc.so.6", .package = "libc6",
	    .feature = "Testing", .names = names, .n = 2, .table = &fns };
	struct pf_error err;

	(void)state;
	pf_error_clear(&err);
	assert_int_equal(dynlib_load(&dl, &err), 0);
	assert_int_equal(fns.strlen("popfetch"), 8);
	assert_string_equal(fns.strchr("a=b", '='), "=b");
	/* loaded once: a second call finds it done */
	assert_int_equal(dynlib_load(&dl, &err), 0);
}

static void
test_missing(void **state)
{
	struct dynlib dl = { .soname = "libpopfetch-nonexistent.so.9",
	    .package = "nothing", .feature = "Testing", .names = names,
	    .n = 2, .table = &fns };
	struct pf_error err;
	int i;

	(void)state;
	for (i = 0; i < 2; i++) {
		pf_error_clear(&err);
		assert_int_equal(dynlib_load(&dl, &err), -1);
		assert_int_equal(pf_exit_code(err.category), 78);
		assert_non_null(strstr(err.what, "Testing needs "
		    "libpopfetch-nonexistent.so.9"));
		assert_non_null(strstr(err.what, "apt-get install nothing"));
	}
}

static void
test_missing_function(void **state)
{
	static const char *const bad[] = { "strlen", "popfetch_no_such_fn" };
	struct dynlib dl = { .soname = "libc.so.6", .package = "libc6",
	    .feature = "Testing", .names = bad, .n = 2, .table = &fns };
	struct pf_error err;

	(void)state;
	pf_error_clear(&err);
	assert_int_equal(dynlib_load(&dl, &err), -1);
	assert_int_equal(pf_exit_code(err.category), 78);
	assert_non_null(strstr(err.what, "no popfetch_no_such_fn"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_present),
		cmocka_unit_test(test_missing),
		cmocka_unit_test(test_missing_function),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
