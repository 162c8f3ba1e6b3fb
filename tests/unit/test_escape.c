/*
 * test_escape.c - pf_escape(): every byte class of escape.h, and the cut at
 * the end of the output buffer.
 *
 * In the expected strings "\\x9b" is the four characters the escaper
 * writes; "\x9b" is the raw byte.  A hex escape followed by a hex digit is
 * split ("\x9b" "2J") so C does not read "\x9b2".
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "escape.h"

/* Escape `in` (length n) into a roomy buffer and compare with `want`. */
static void
check_n(const char *in, size_t n, const char *want)
{
	char out[1024];
	size_t len, used;

	len = pf_escape_ext(in, n, out, sizeof(out), 0, &used);
	assert_string_equal(out, want);
	assert_int_equal(len, strlen(want));
	assert_int_equal(used, n);
	/* pf_escape() is the same with no flags. */
	len = pf_escape(in, n, out, sizeof(out));
	assert_string_equal(out, want);
	assert_int_equal(len, strlen(want));
}

static void
check(const char *in, const char *want)
{
	check_n(in, strlen(in), want);
}

static void
test_printable_ascii_kept(void **state)
{
	(void)state;
	check("", "");
	check("-ERR [AUTH] Authentication failed.",
	    "-ERR [AUTH] Authentication failed.");
	check(" !~", " !~");
}

static void
test_c0(void **state)
{
	(void)state;
	check("a\x01" "b", "a\\x01b");
	check("\x1b[2J", "\\x1b[2J");
	check("tab\there", "tab\\x09here");
	check("cr\rlf\n", "cr\\x0dlf\\x0a");
	check("\x1f", "\\x1f");
	/* NUL inside the given length is a byte like another. */
	check_n("a\0b", 3, "a\\x00b");
}

static void
test_del(void **state)
{
	(void)state;
	check("\x7f", "\\x7f");
	check("x\x7fy", "x\\x7fy");
}

static void
test_c1_utf8(void **state)
{
	(void)state;
	/* U+0080..U+009F in their UTF-8 form: both bytes escaped. */
	check("\xc2\x80", "\\xc2\\x80");
	check("\xc2\x9b" "2J", "\\xc2\\x9b2J");
	check("\xc2\x9f", "\\xc2\\x9f");
	/* U+00A0 (no-break space) is the first printable one past C1. */
	check("\xc2\xa0", "\xc2\xa0");
}

static void
test_raw_csi(void **state)
{
	(void)state;
	/* 0x9B alone is the 8-bit CSI: ESC [ for terminals that take it. */
	check("\x9b" "2J", "\\x9b2J");
	check("-ERR \x9b" "31m red", "-ERR \\x9b31m red");
	check("\x80\xbf\xff\xfe", "\\x80\\xbf\\xff\\xfe");
}

static void
test_valid_utf8_kept(void **state)
{
	(void)state;
	check("Gr\xc3\xbc\xc3\x9f" "e", "Gr\xc3\xbc\xc3\x9f" "e");
	check("\xe6\x97\xa5\xe6\x9c\xac", "\xe6\x97\xa5\xe6\x9c\xac");
	check("\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80");		/* U+1F600 */
	/* The edges of each length. */
	check("\xdf\xbf", "\xdf\xbf");				/* U+07FF */
	check("\xe0\xa0\x80", "\xe0\xa0\x80");			/* U+0800 */
	check("\xed\x9f\xbf", "\xed\x9f\xbf");			/* U+D7FF */
	check("\xee\x80\x80", "\xee\x80\x80");			/* U+E000 */
	check("\xef\xbf\xbf", "\xef\xbf\xbf");			/* U+FFFF */
	check("\xf0\x90\x80\x80", "\xf0\x90\x80\x80");		/* U+10000 */
	check("\xf4\x8f\xbf\xbf", "\xf4\x8f\xbf\xbf");		/* U+10FFFF */
}

static void
test_overlong(void **state)
{
	(void)state;
	check("\xc0\xaf", "\\xc0\\xaf");			/* '/' in 2 */
	check("\xc1\xbf", "\\xc1\\xbf");
	check("\xe0\x80\xaf", "\\xe0\\x80\\xaf");		/* '/' in 3 */
	check("\xe0\x9f\xbf", "\\xe0\\x9f\\xbf");		/* U+07FF in 3 */
	check("\xf0\x80\x80\xaf", "\\xf0\\x80\\x80\\xaf");	/* '/' in 4 */
	check("\xf0\x8f\xbf\xbf", "\\xf0\\x8f\\xbf\\xbf");	/* U+FFFF in 4 */
	/* An overlong ESC must not become a raw ESC. */
	check("\xc0\x9b", "\\xc0\\x9b");
}

static void
test_surrogates(void **state)
{
	(void)state;
	check("\xed\xa0\x80", "\\xed\\xa0\\x80");		/* U+D800 */
	check("\xed\xbf\xbf", "\\xed\\xbf\\xbf");		/* U+DFFF */
	/* A CESU-8 pair for U+1F600. */
	check("\xed\xa0\xbd\xed\xb8\x80",
	    "\\xed\\xa0\\xbd\\xed\\xb8\\x80");
}

static void
test_past_unicode(void **state)
{
	(void)state;
	check("\xf4\x90\x80\x80", "\\xf4\\x90\\x80\\x80");	/* U+110000 */
	check("\xf5\x80\x80\x80", "\\xf5\\x80\\x80\\x80");
	check("\xf8\x88\x80\x80\x80", "\\xf8\\x88\\x80\\x80\\x80");
}

static void
test_truncated(void **state)
{
	(void)state;
	/* Cut short at the end of the input. */
	check("ab\xe2\x82", "ab\\xe2\\x82");
	check("\xf0\x9f\x98", "\\xf0\\x9f\\x98");
	check("\xc3", "\\xc3");
	/* Cut short by a byte that cannot continue it: that byte is kept. */
	check("\xe2\x82" "x", "\\xe2\\x82x");
	check("\xc3\xc3\xa9", "\\xc3\xc3\xa9");
	/* A UTF-8 sequence ending at the given length, not at a NUL. */
	check_n("\xc3\xa9\xc3\xa9", 3, "\xc3\xa9\\xc3");
}

static void
test_backslash(void **state)
{
	char out[64];

	(void)state;
	/* Doubled: "\x9b" in the output is always the byte, never the text. */
	check("a\\b", "a\\\\b");
	check("\\x9b", "\\\\x9b");
	/* Kept with PF_ESCAPE_KEEP_BACKSLASH (controls still escaped). */
	pf_escape_ext("a\\b\x9b", (size_t)-1, out, sizeof(out),
	    PF_ESCAPE_KEEP_BACKSLASH, NULL);
	assert_string_equal(out, "a\\b\\x9b");
}

static void
test_keep_backslash_idempotent(void **state)
{
	static const char *const inputs[] = {
		"plain", "a\\b", "\x9b" "2J\x1b[0m\xc2\x9b\xff\xed\xa0\x80",
		"Gr\xc3\xbc\xc3\x9f" "e \\x41 \xe2\x80\xae", "\\",
	};
	char once[256], twice[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
		pf_escape(inputs[i], (size_t)-1, once, sizeof(once));
		pf_escape_ext(once, (size_t)-1, twice, sizeof(twice),
		    PF_ESCAPE_KEEP_BACKSLASH, NULL);
		assert_string_equal(twice, once);
		pf_escape_ext(inputs[i], (size_t)-1, once, sizeof(once),
		    PF_ESCAPE_KEEP_BACKSLASH, NULL);
		pf_escape_ext(once, (size_t)-1, twice, sizeof(twice),
		    PF_ESCAPE_KEEP_BACKSLASH, NULL);
		assert_string_equal(twice, once);
	}
}

static void
test_line_breakers_and_bidi(void **state)
{
	(void)state;
	check("\xe2\x80\xae" "txt.exe", "\\xe2\\x80\\xaetxt.exe");	/* RLO */
	check("\xe2\x80\xa8", "\\xe2\\x80\\xa8");			/* LS */
	check("\xe2\x80\xa9", "\\xe2\\x80\\xa9");			/* PS */
	check("\xe2\x81\xa6", "\\xe2\\x81\\xa6");			/* LRI */
	check("\xe2\x80\x8f", "\\xe2\\x80\\x8f");			/* RLM */
	check("\xd8\x9c", "\\xd8\\x9c");				/* ALM */
	/* Their neighbours print. */
	check("\xe2\x80\x94", "\xe2\x80\x94");				/* em dash */
	check("\xe2\x80\xaf", "\xe2\x80\xaf");				/* NNBSP */
}

/* Escape `in` into out[outsz] and check the result and the input used. */
static void
check_cut(const char *in, size_t outsz, const char *want, size_t want_used)
{
	char out[64];
	size_t len, used;

	assert_true(outsz <= sizeof(out));
	memset(out, 'Z', sizeof(out));
	len = pf_escape_ext(in, (size_t)-1, out, outsz, 0, &used);
	assert_string_equal(out, want);
	assert_int_equal(len, strlen(want));
	assert_int_equal(used, want_used);
	assert_true(len < outsz);
	/* Nothing written past out[outsz - 1]. */
	assert_int_equal(out[outsz], 'Z');
}

static void
test_cut_on_boundary(void **state)
{
	char out[4] = "ZZZ";
	size_t used = 99;

	(void)state;
	/* "abc" + e-acute (2 bytes): the character fits whole or not at all. */
	check_cut("abc\xc3\xa9", 5, "abc", 3);
	check_cut("abc\xc3\xa9", 6, "abc\xc3\xa9", 5);
	/* A 4-byte character. */
	check_cut("a\xf0\x9f\x98\x80", 5, "a", 1);
	check_cut("a\xf0\x9f\x98\x80", 6, "a\xf0\x9f\x98\x80", 5);
	/* An escape (4 bytes) is never split. */
	check_cut("ab\x01", 6, "ab", 2);
	check_cut("ab\x01", 7, "ab\\x01", 3);
	/* A C1 character escapes to 8 bytes: all of them or none. */
	check_cut("a\xc2\x9b", 8, "a", 1);
	check_cut("a\xc2\x9b", 10, "a\\xc2\\x9b", 3);
	/* "\\" is not split either. */
	check_cut("a\\", 3, "a", 1);
	check_cut("a\\", 4, "a\\\\", 2);
	/* Always NUL-terminated, even with room for the NUL only. */
	check_cut("abc", 1, "", 0);
	/* outsz 0: nothing written, out may be NULL. */
	assert_int_equal(pf_escape_ext("abc", 3, NULL, 0, 0, &used), 0);
	assert_int_equal(used, 0);
	assert_int_equal(pf_escape("abc", 3, out, 0), 0);
	assert_string_equal(out, "ZZZ");
}

static void
test_dup(void **state)
{
	char *s;

	(void)state;
	s = pf_escape_dup("\x9b\xff\x01\xc2\x9b\\", (size_t)-1);
	assert_string_equal(s, "\\x9b\\xff\\x01\\xc2\\x9b\\\\");
	free(s);
	s = pf_escape_dup("a\0b", 3);
	assert_string_equal(s, "a\\x00b");
	free(s);
	s = pf_escape_dup(NULL, 0);
	assert_string_equal(s, "");
	free(s);
}

/* The worst case is 4 output bytes per input byte: PF_ESCAPE_SIZE. */
static void
test_escape_size(void **state)
{
	char in[100], out[PF_ESCAPE_SIZE(sizeof(in))];
	size_t used;

	(void)state;
	memset(in, 0x9b, sizeof(in));
	assert_int_equal(pf_escape_ext(in, sizeof(in), out, sizeof(out), 0,
	    &used), sizeof(in) * 4);
	assert_int_equal(used, sizeof(in));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_printable_ascii_kept),
		cmocka_unit_test(test_c0),
		cmocka_unit_test(test_del),
		cmocka_unit_test(test_c1_utf8),
		cmocka_unit_test(test_raw_csi),
		cmocka_unit_test(test_valid_utf8_kept),
		cmocka_unit_test(test_overlong),
		cmocka_unit_test(test_surrogates),
		cmocka_unit_test(test_past_unicode),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_backslash),
		cmocka_unit_test(test_keep_backslash_idempotent),
		cmocka_unit_test(test_line_breakers_and_bidi),
		cmocka_unit_test(test_cut_on_boundary),
		cmocka_unit_test(test_dup),
		cmocka_unit_test(test_escape_size),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
