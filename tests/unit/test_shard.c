/*
 * test_shard.c - lib/shard.c: the hash against the published FNV-1a
 * 64-bit values (the hash is a promise to other tools, doc/DESIGN.md
 * §13), the worked example of the manual, and the K/N parser.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "params.h"
#include "shard.h"

static void
test_hash_known_values(void **state)
{
	(void)state;
	/* The FNV reference vectors (offset basis; "a"; "foobar"). */
	assert_true(shard_hash("") == UINT64_C(0xcbf29ce484222325));
	assert_true(shard_hash("a") == UINT64_C(0xaf63dc4c8601ec8c));
	assert_true(shard_hash("foobar") == UINT64_C(0x85944171f73967e8));
	/* popfetch(1) and DESIGN §13: "work" is 8095481971928999360,
	 * which is 2 mod 3. */
	assert_true(shard_hash("work") == UINT64_C(8095481971928999360));
	assert_true(shard_hash("work") % 3 == 2);
	/* Bytes, not characters: a UTF-8 name hashes its bytes. */
	assert_true(shard_hash("\xc3\xa9") != shard_hash("\xe9"));
}

static void
test_owns(void **state)
{
	struct shard s;
	char name[32];
	unsigned long k, counts[7] = { 0 };
	int i;

	(void)state;
	s.n = 3;
	for (s.k = 0; s.k < 3; s.k++)
		assert_true(shard_owns(&s, "work") == (s.k == 2));
	/* Every name in exactly one of N shards; no shard of 7 is empty
	 * over 1000 names, and none holds more than twice its share. */
	for (i = 0; i < 1000; i++) {
		int owners = 0;

		snprintf(name, sizeof(name), "user%04d", i);
		s.n = 7;
		for (k = 0; k < 7; k++) {
			s.k = k;
			if (shard_owns(&s, name)) {
				owners++;
				counts[k]++;
			}
		}
		assert_int_equal(owners, 1);
		s.n = 1;
		s.k = 0;
		assert_true(shard_owns(&s, name));
	}
	for (k = 0; k < 7; k++) {
		assert_true(counts[k] > 0);
		assert_true(counts[k] < 2 * 1000 / 7);
	}
}

static void
good(const char *text, unsigned long k, unsigned long n)
{
	struct shard s = { 99, 99 };

	assert_int_equal(shard_parse(text, &s), 0);
	assert_int_equal(s.k, k);
	assert_int_equal(s.n, n);
}

static void
bad(const char *text)
{
	struct shard s = { 99, 99 };

	assert_int_equal(shard_parse(text, &s), -1);
	assert_int_equal(s.k, 99);	/* untouched */
	assert_int_equal(s.n, 99);
}

static void
test_parse(void **state)
{
	char text[64];

	(void)state;
	good("0/1", 0, 1);
	good("2/3", 2, 3);
	good("0/7", 0, 7);
	good("6/7", 6, 7);
	good("007/10", 7, 10);
	snprintf(text, sizeof(text), "%d/%d", SHARD_MAX - 1, SHARD_MAX);
	good(text, SHARD_MAX - 1, SHARD_MAX);

	snprintf(text, sizeof(text), "0/%d", SHARD_MAX + 1);
	bad(text);
	bad("");
	bad("3");
	bad("3/3");
	bad("4/3");
	bad("0/0");
	bad("-1/3");
	bad("+1/3");
	bad("1/-3");
	bad("1/");
	bad("/3");
	bad("1/3x");
	bad("1/3/5");
	bad(" 1/3");
	bad("1 /3");
	bad("1/ 3");
	bad("1/3 ");
	bad("1.0/3");
	bad("0x1/3");
	bad("1/99999999999999999999");
	bad("99999999999999999999/3");
	bad("1:3");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hash_known_values),
		cmocka_unit_test(test_owns),
		cmocka_unit_test(test_parse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
