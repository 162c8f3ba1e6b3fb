/* test_linebuf.c - the bounded line reader, fed byte by byte and in random
 * chunks through its read function. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include <cmocka.h>

#include "error.h"
#include "linebuf.h"
#include "params.h"

/* A memory feeder: serves `data` in chunks of `chunk` bytes (0: as much as
 * asked), or of random sizes 1..chunk when `random` is set; then EOF, or an
 * endless stream of 'x' when `endless`. */
struct feed {
	const char	*data;
	size_t		 len;
	size_t		 pos;
	size_t		 chunk;
	bool		 random;
	unsigned	 seed;
	bool		 endless;
	bool		 fail;		/* return -1 (timeout) at the end */
	uint64_t	 served;	/* bytes handed out in total */
	size_t		 calls;
};

static ssize_t
feed_read(void *ctx, void *buf, size_t len, struct pf_error *err)
{
	struct feed *f = ctx;
	size_t n, avail = f->len - f->pos;

	f->calls++;
	if (avail == 0) {
		if (f->fail)
			return pf_error_set(err, PF_FAIL_TEMP,
			    "timeout reading from server");
		if (!f->endless)
			return 0;
		n = len;
		if (f->chunk != 0 && n > f->chunk)
			n = f->chunk;
		memset(buf, 'x', n);
		f->served += n;
		return (ssize_t)n;
	}
	n = avail < len ? avail : len;
	if (f->chunk != 0) {
		size_t c = f->random ? 1 + (size_t)rand_r(&f->seed) % f->chunk :
		    f->chunk;
		if (n > c)
			n = c;
	}
	memcpy(buf, f->data + f->pos, n);
	f->pos += n;
	f->served += n;
	return (ssize_t)n;
}

static struct linebuf *
new_lb(struct feed *f)
{
	return linebuf_new(NET_READ_BUF, POP3_LINE_MAX, feed_read, f);
}

/* Read all lines and compare with `expect`; then expect "connection lost". */
static void
check_lines(struct feed *f, const char *const *expect, size_t n)
{
	struct linebuf *lb = new_lb(f);
	struct pf_error err;
	const char *line;
	size_t len, i;

	for (i = 0; i < n; i++) {
		assert_int_equal(linebuf_read_line(lb, &line, &len, &err),
		    LINEBUF_LINE);
		assert_int_equal(len, strlen(expect[i]));
		assert_memory_equal(line, expect[i], len);
		assert_int_equal(line[len], '\0');
	}
	assert_int_equal(linebuf_read_line(lb, &line, &len, &err),
	    LINEBUF_EOF);
	assert_int_equal(err.category, PF_FAIL_TEMP);
	assert_string_equal(err.what, "connection lost");
	linebuf_free(&lb);
	assert_null(lb);
}

static void
test_crlf_and_lf(void **state)
{
	static const char input[] = "+OK hello\r\nbare lf\n\r\n\ttab\x80\xff 8bit\r\nlast\n";
	static const char *const expect[] = {
		"+OK hello", "bare lf", "", "\ttab\x80\xff 8bit", "last",
	};
	size_t chunk;

	(void)state;
	for (chunk = 0; chunk <= 7; chunk++) {
		struct feed f = { input, sizeof(input) - 1, 0, chunk, false,
		    0, false, false, 0, 0 };
		check_lines(&f, expect, 5);
	}
}

static void
test_random_chunks(void **state)
{
	unsigned seed = 12345;
	int iter;

	(void)state;
	for (iter = 0; iter < 300; iter++) {
		char *data = malloc(200 * 302), **expect = calloc(200, sizeof(char *));
		size_t len = 0, n = (size_t)(rand_r(&seed) % 200), i, j, ll;

		for (i = 0; i < n; i++) {
			ll = (size_t)(rand_r(&seed) % 300);
			expect[i] = malloc(ll + 1);
			for (j = 0; j < ll; j++)
				expect[i][j] = (char)(0x20 + rand_r(&seed) % 0x5f);
			expect[i][ll] = '\0';
			memcpy(data + len, expect[i], ll);
			len += ll;
			if (rand_r(&seed) % 4 == 0)
				data[len++] = '\n';
			else {
				data[len++] = '\r';
				data[len++] = '\n';
			}
		}
		{
			struct feed f = { data, len, 0,
			    1 + (size_t)(rand_r(&seed) % 700), true,
			    (unsigned)iter, false, false, 0, 0 };
			check_lines(&f, (const char *const *)expect, n);
		}
		for (i = 0; i < n; i++)
			free(expect[i]);
		free(expect);
		free(data);
	}
}

/* A line of `content` octets plus terminator, fed in `chunk`s. */
static enum linebuf_result
one_line(size_t content, const char *term, size_t chunk, struct pf_error *err,
    size_t *len_r)
{
	size_t tl = strlen(term);
	char *data = malloc(content + tl);
	struct feed f = { data, content + tl, 0, chunk, false, 0, false,
	    false, 0, 0 };
	struct linebuf *lb = new_lb(&f);
	const char *line;
	enum linebuf_result rc;

	memset(data, 'a', content);
	memcpy(data + content, term, tl);
	rc = linebuf_read_line(lb, &line, len_r, err);
	linebuf_free(&lb);
	free(data);
	return rc;
}

static void
test_limit(void **state)
{
	struct pf_error err;
	size_t len, chunk;

	(void)state;
	for (chunk = 0; chunk <= 1; chunk++) {
		/* POP3_LINE_MAX octets with CRLF: accepted. */
		assert_int_equal(one_line(POP3_LINE_MAX - 2, "\r\n", chunk,
		    &err, &len), LINEBUF_LINE);
		assert_int_equal(len, POP3_LINE_MAX - 2);
		/* One more: refused. */
		assert_int_equal(one_line(POP3_LINE_MAX - 1, "\r\n", chunk,
		    &err, &len), LINEBUF_TOO_LONG);
		assert_int_equal(err.category, PF_FAIL_PROTO);
		assert_non_null(strstr(err.what, "longer than"));
		/* Bare LF counts one octet. */
		assert_int_equal(one_line(POP3_LINE_MAX - 1, "\n", chunk,
		    &err, &len), LINEBUF_LINE);
		assert_int_equal(len, POP3_LINE_MAX - 1);
		assert_int_equal(one_line(POP3_LINE_MAX, "\n", chunk, &err,
		    &len), LINEBUF_TOO_LONG);
		assert_int_equal(err.category, PF_FAIL_PROTO);
	}
}

static void
test_mib_line(void **state)
{
	struct pf_error err;
	struct linebuf *lb;
	const char *line;
	size_t len;

	(void)state;
	/* 1 MiB and then a LF, in one piece. */
	assert_int_equal(one_line(1024 * 1024, "\r\n", 0, &err, &len),
	    LINEBUF_TOO_LONG);
	assert_int_equal(err.category, PF_FAIL_PROTO);
	assert_true(strlen(err.server) < PF_ERROR_SERVER_MAX);

	/* A never-ending line: refused after at most one buffer of reads,
	 * so nothing grows with the line. */
	{
		struct feed f = { "", 0, 0, 4096, false, 0, true, false, 0, 0 };

		lb = new_lb(&f);
		assert_int_equal(linebuf_read_line(lb, &line, &len, &err),
		    LINEBUF_TOO_LONG);
		assert_int_equal(err.category, PF_FAIL_PROTO);
		assert_true(f.served <= POP3_LINE_MAX + 4096);
		linebuf_free(&lb);
	}
	{
		struct feed f = { "", 0, 0, 0, false, 0, true, false, 0, 0 };

		lb = new_lb(&f);
		assert_int_equal(linebuf_read_line(lb, &line, &len, &err),
		    LINEBUF_TOO_LONG);
		assert_int_equal(err.category, PF_FAIL_PROTO);
		assert_true(f.served <= NET_READ_BUF);
		linebuf_free(&lb);
	}
}

static void
test_bad_chars(void **state)
{
	static const struct {
		const char	*data;
		size_t		 len;
	} bad[] = {
		{ "+OK a\0b\r\n", 9 },
		{ "+OK a\001b\r\n", 9 },
		{ "+OK a\rb\r\n", 9 },
		{ "+OK a\033[31m\r\n", 12 },
		{ "+OK \177\r\n", 7 },
	};
	struct pf_error err;
	struct linebuf *lb;
	const char *line;
	size_t len, i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct feed f = { bad[i].data, bad[i].len, 0, 1, false, 0,
		    false, false, 0, 0 };

		lb = new_lb(&f);
		assert_int_equal(linebuf_read_line(lb, &line, &len, &err),
		    LINEBUF_BAD_CHAR);
		assert_int_equal(err.category, PF_FAIL_PROTO);
		assert_non_null(strstr(err.what, "control character"));
		linebuf_free(&lb);
	}
}

static void
test_eof(void **state)
{
	struct pf_error err;
	struct linebuf *lb;
	const char *line;
	size_t len;

	(void)state;
	{
		struct feed f = { "+OK partial", 11, 0, 3, false, 0, false,
		    false, 0, 0 };

		lb = new_lb(&f);
		assert_int_equal(linebuf_read_line(lb, &line, &len, &err),
		    LINEBUF_EOF);
		assert_int_equal(err.category, PF_FAIL_TEMP);
		assert_string_equal(err.what, "connection lost");
		linebuf_free(&lb);
	}
	{
		struct feed f = { "", 0, 0, 0, false, 0, false, false, 0, 0 };

		lb = new_lb(&f);
		assert_int_equal(linebuf_read_line(lb, &line, &len, &err),
		    LINEBUF_EOF);
		assert_int_equal(err.category, PF_FAIL_TEMP);
		linebuf_free(&lb);
	}
	{
		/* The source's own error passes through unchanged. */
		struct feed f = { "+OK", 3, 0, 0, false, 0, false, true, 0, 0 };

		lb = new_lb(&f);
		assert_int_equal(linebuf_read_line(lb, &line, &len, &err),
		    LINEBUF_ERROR);
		assert_int_equal(err.category, PF_FAIL_TEMP);
		assert_string_equal(err.what, "timeout reading from server");
		linebuf_free(&lb);
	}
}

/* The non-blocking layer: "need more" and "too long" are different. */
static void
test_get_line_results(void **state)
{
	char big[POP3_LINE_MAX + 10];
	struct feed f = { NULL, 0, 0, 0, false, 0, false, false, 0, 0 };
	struct pf_error err;
	struct linebuf *lb;
	const char *line;
	size_t len;

	(void)state;
	f.data = "+OK a\r\n+OK b";
	f.len = strlen(f.data);
	lb = new_lb(&f);
	assert_int_equal(linebuf_get_line(lb, &line, &len), LINEBUF_MORE);
	assert_true(linebuf_fill(lb, &err) > 0);
	assert_int_equal(linebuf_get_line(lb, &line, &len), LINEBUF_LINE);
	assert_string_equal(line, "+OK a");
	assert_int_equal(linebuf_get_line(lb, &line, &len), LINEBUF_MORE);
	assert_int_equal(linebuf_buffered(lb), 5);
	assert_int_equal(linebuf_fill(lb, &err), 0);
	linebuf_free(&lb);

	memset(big, 'b', sizeof(big));
	f = (struct feed){ big, sizeof(big), 0, 0, false, 0, false, false,
	    0, 0 };
	lb = new_lb(&f);
	assert_true(linebuf_fill(lb, &err) > 0);
	assert_int_equal(linebuf_get_line(lb, &line, &len), LINEBUF_TOO_LONG);
	linebuf_free(&lb);
}

/* Raw access: status line, then data consumed in chunks, then a line. */
static void
test_raw(void **state)
{
	static const char input[] = "+OK\r\nRAW DATA\x00\x01\r\n.\r\n+OK next\r\n";
	struct feed f = { input, sizeof(input) - 1, 0, 4, false, 0, false,
	    false, 0, 0 };
	struct pf_error err;
	struct linebuf *lb;
	const char *line, *p;
	char got[64];
	size_t len, n, have = 0;

	(void)state;
	lb = new_lb(&f);
	assert_int_equal(linebuf_read_line(lb, &line, &len, &err),
	    LINEBUF_LINE);
	assert_string_equal(line, "+OK");
	/* Take 15 raw octets ("RAW DATA\0\1\r\n.\r\n"). */
	while (have < 15) {
		p = linebuf_peek(lb, &n);
		if (n == 0) {
			assert_true(linebuf_fill(lb, &err) > 0);
			continue;
		}
		if (n > 15 - have)
			n = 15 - have;
		memcpy(got + have, p, n);
		linebuf_consume(lb, n);
		have += n;
	}
	assert_memory_equal(got, "RAW DATA\x00\x01\r\n.\r\n", 15);
	assert_int_equal(linebuf_read_line(lb, &line, &len, &err),
	    LINEBUF_LINE);
	assert_string_equal(line, "+OK next");
	linebuf_free(&lb);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crlf_and_lf),
		cmocka_unit_test(test_random_chunks),
		cmocka_unit_test(test_limit),
		cmocka_unit_test(test_mib_line),
		cmocka_unit_test(test_bad_chars),
		cmocka_unit_test(test_eof),
		cmocka_unit_test(test_get_line_results),
		cmocka_unit_test(test_raw),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
