/*
 * test_strpool.c - lib/strpool.c: every string comes back as given and
 * stays put while more are added, across chunks and with strings longer
 * than a chunk's share; ndup stops at n.  (Leaks: valgrind / ASan.)
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "params.h"
#include "strpool.h"

static void
test_many_and_long(void **state)
{
	enum { N = 5000 };
	struct strpool *p = strpool_new();
	char *got[N], want[STRPOOL_CHUNK * 2];
	size_t i, len;

	(void)state;
	for (i = 0; i < N; i++) {
		/* Every 97th string is longer than a chunk (its own chunk),
		 * every 13th longer than a quarter of one. */
		len = i % 97 == 0 ? STRPOOL_CHUNK + i % 7 :
		    i % 13 == 0 ? STRPOOL_CHUNK / 4 + 1 : i % 70;
		memset(want, 'a' + (int)(i % 26), len);
		want[len] = '\0';
		got[i] = strpool_dup(p, want);
		assert_int_equal(strlen(got[i]), len);
	}
	for (i = 0; i < N; i++) {
		len = i % 97 == 0 ? STRPOOL_CHUNK + i % 7 :
		    i % 13 == 0 ? STRPOOL_CHUNK / 4 + 1 : i % 70;
		assert_int_equal(strlen(got[i]), len);
		if (len > 0) {
			assert_int_equal(got[i][0], 'a' + (int)(i % 26));
			assert_int_equal(got[i][len - 1], 'a' + (int)(i % 26));
		}
	}
	strpool_free(&p);
	assert_null(p);
	strpool_free(&p);	/* NULL is fine */
}

static void
test_ndup(void **state)
{
	struct strpool *p = strpool_new();
	char *a, *b;

	(void)state;
	a = strpool_ndup(p, "UIDL-1 and more", 6);
	b = strpool_dup(p, "");
	assert_string_equal(a, "UIDL-1");
	assert_string_equal(b, "");
	assert_ptr_not_equal(a, b);
	strpool_free(&p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_many_and_long),
		cmocka_unit_test(test_ndup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
