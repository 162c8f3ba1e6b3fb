/*
 * test_spool.c - a message kept whole for a command (lib/spool.c): in
 * memory up to SPOOL_MEM bytes, past that in an unlinked file in $TMPDIR;
 * what spool_input hands a command, its size, and that freeing it leaves
 * no descriptor and no file behind.
 */
#include "config.h"

#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "command.h"
#include "error.h"
#include "params.h"
#include "spool.h"
#include "testutil.h"

/* Each test runs in a fresh directory, its TMPDIR dir/tmp. */
struct fixture {
	char	 dir[PATH_MAX];		/* first (test_fixture_new) */
	char	 tmp[PATH_MAX];		/* dir/tmp: $TMPDIR */
	char	*old_tmpdir;		/* to put back */
};

static int
setup(void **state)
{
	struct fixture *f = test_fixture_new(sizeof(*f), "test_spool");
	const char *old = getenv("TMPDIR");

	if (f == NULL)
		return -1;
	test_pathf(f->tmp, sizeof(f->tmp), "%s/tmp", f->dir);
	if (mkdir(f->tmp, 0700) == -1)
		return -1;
	f->old_tmpdir = old != NULL ? strdup(old) : NULL;
	if (setenv("TMPDIR", f->tmp, 1) == -1)
		return -1;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	if (f->old_tmpdir != NULL)
		setenv("TMPDIR", f->old_tmpdir, 1);
	else
		unsetenv("TMPDIR");
	free(f->old_tmpdir);
	return test_fixture_teardown(state);
}

/* Byte i of the test data: not periodic at any power of two. */
static char
pattern(uint64_t i)
{
	return (char)('A' + (i * 7 + i / 251) % 53);
}

static char *
make_data(size_t len)
{
	char *p = malloc(len + 1);
	size_t i;

	assert_non_null(p);
	for (i = 0; i < len; i++)
		p[i] = pattern(i);
	p[len] = '\0';
	return p;
}

/* Append data[0..len) in pieces of `chunk`. */
static void
write_chunks(struct spool *sp, const char *data, size_t len, size_t chunk)
{
	struct pf_error err;
	size_t off, n;

	for (off = 0; off < len; off += n) {
		n = len - off < chunk ? len - off : chunk;
		if (spool_write(sp, data + off, n, &err) == -1)
			fail_msg("spool_write: %s", err.what);
	}
}

/* Everything the file behind in.fd holds, read with pread from 0 (as
 * command.c reads it), must be data[0..len). */
static void
expect_fd_content(const struct command_input *in, const char *data,
    size_t len)
{
	char *buf = malloc(len + 1);
	size_t got = 0;
	ssize_t n;

	assert_non_null(buf);
	while ((n = pread(in->fd, buf + got, len + 1 - got, (off_t)got)) > 0)
		got += (size_t)n;
	assert_int_not_equal(n, -1);
	assert_int_equal(got, len);
	assert_memory_equal(buf, data, len);
	free(buf);
}

/* Run `cat` with the spool as its stdin: its stdout must be data. */
static void
expect_cat(const struct spool *sp, const char *data, size_t len)
{
	struct command_input in = spool_input(sp);
	struct command c = { .line = "cat", .in = &in, .nin = 1,
	    .timeout = 30, .out_max = len + 1 };
	struct command_result r;
	struct pf_error err;

	pf_error_clear(&err);
	if (command_run(&c, &r, &err) == -1)
		fail_msg("command_run: %s", err.what);
	assert_int_equal(r.end, COMMAND_EXITED);
	assert_int_equal(r.code, 0);
	assert_int_equal(r.out_len, len);
	assert_memory_equal(r.out, data, len);
	command_result_free(&r);
}

/* Descriptors this process has open. */
static int
count_fds(void)
{
	int n = test_count_entries("/proc/self", "fd");

	assert_true(n > 0);
	return n - 1;		/* the one the listing itself used */
}

/* An empty spool is an empty input, in memory. */
static void
test_empty(void **state)
{
	struct spool *sp = spool_new();
	struct command_input in;

	(void)state;
	assert_int_equal(spool_size(sp), 0);
	in = spool_input(sp);
	assert_int_equal(in.fd, -1);
	assert_non_null(in.buf);
	assert_int_equal(in.len, 0);
	expect_cat(sp, "", 0);
	spool_free(&sp);
	assert_null(sp);
	spool_free(&sp);	/* NULL is fine */
}

/* Up to SPOOL_MEM bytes the spool is memory: no file, no descriptor. */
static void
test_memory_up_to_limit(void **state)
{
	struct fixture *f = *state;
	char *data = make_data(SPOOL_MEM);
	struct spool *sp = spool_new();
	struct command_input in;
	int fds = count_fds();

	write_chunks(sp, data, 100, 7);
	assert_int_equal(spool_size(sp), 100);
	in = spool_input(sp);
	assert_int_equal(in.fd, -1);
	assert_int_equal(in.len, 100);
	assert_memory_equal(in.buf, data, 100);

	/* Exactly SPOOL_MEM: still memory. */
	write_chunks(sp, data + 100, SPOOL_MEM - 100, 65536);
	assert_int_equal(spool_size(sp), SPOOL_MEM);
	in = spool_input(sp);
	assert_int_equal(in.fd, -1);
	assert_int_equal(in.len, SPOOL_MEM);
	assert_memory_equal(in.buf, data, SPOOL_MEM);
	assert_int_equal(count_fds(), fds);
	assert_int_equal(test_count_entries(f->tmp, "."), 0);
	expect_cat(sp, data, SPOOL_MEM);
	spool_free(&sp);
	free(data);
}

/* One byte more and it is a file: the bytes so far and the rest, in
 * order, and the input is that file's descriptor. */
static void
test_file_past_limit(void **state)
{
	struct fixture *f = *state;
	size_t len = SPOOL_MEM + SPOOL_MEM / 2 + 13;
	char *data = make_data(len);
	struct spool *sp = spool_new();
	struct command_input in;
	int fds = count_fds();

	write_chunks(sp, data, SPOOL_MEM, 4096);
	assert_int_equal(count_fds(), fds);
	write_chunks(sp, data + SPOOL_MEM, 1, 1);
	assert_int_equal(spool_size(sp), SPOOL_MEM + 1);
	assert_int_equal(count_fds(), fds + 1);
	in = spool_input(sp);
	assert_int_not_equal(in.fd, -1);
	assert_null(in.buf);
	expect_fd_content(&in, data, SPOOL_MEM + 1);

	write_chunks(sp, data + SPOOL_MEM + 1, len - SPOOL_MEM - 1, 30000);
	assert_int_equal(spool_size(sp), len);
	assert_int_equal(count_fds(), fds + 1);
	in = spool_input(sp);
	expect_fd_content(&in, data, len);
	/* Twice: a command reads it from offset 0 each time. */
	expect_cat(sp, data, len);
	expect_cat(sp, data, len);
	spool_free(&sp);
	assert_null(sp);
	assert_int_equal(count_fds(), fds);
	assert_int_equal(test_count_entries(f->tmp, "."), 0);
	free(data);
}

/* A single write larger than SPOOL_MEM into an empty spool. */
static void
test_one_big_write(void **state)
{
	size_t len = 2 * SPOOL_MEM + 1;
	char *data = make_data(len);
	struct spool *sp = spool_new();
	struct command_input in;
	struct pf_error err;

	(void)state;
	assert_int_equal(spool_write(sp, data, len, &err), 0);
	assert_int_equal(spool_size(sp), len);
	in = spool_input(sp);
	assert_int_not_equal(in.fd, -1);
	expect_fd_content(&in, data, len);
	spool_free(&sp);
	free(data);
}

/* The file is made in $TMPDIR and is never visible there: unlinked from
 * the start (O_TMPFILE) or right after mkstemp. */
static void
test_tmpdir(void **state)
{
	struct fixture *f = *state;
	char *data = make_data(SPOOL_MEM + 1);
	struct spool *sp = spool_new();
	struct command_input in;
	char link[64], target[PATH_MAX];
	ssize_t n;

	write_chunks(sp, data, SPOOL_MEM + 1, 65536);
	in = spool_input(sp);
	assert_int_not_equal(in.fd, -1);
	assert_int_equal(test_count_entries(f->tmp, "."), 0);
	test_pathf(link, sizeof(link), "/proc/self/fd/%d", in.fd);
	n = readlink(link, target, sizeof(target) - 1);
	assert_true(n > 0);
	target[n] = '\0';
	if (strncmp(target, f->tmp, strlen(f->tmp)) != 0 ||
	    target[strlen(f->tmp)] != '/')
		fail_msg("spool file %s is not in TMPDIR %s", target, f->tmp);
	assert_non_null(strstr(target, "(deleted)"));
	spool_free(&sp);
	assert_int_equal(test_count_entries(f->tmp, "."), 0);
	free(data);
}

/* A TMPDIR that does not exist: the write past SPOOL_MEM fails
 * (PF_FAIL_IO, naming the directory), and so does every later one. */
static void
test_tmpdir_missing(void **state)
{
	struct fixture *f = *state;
	char *data = make_data(SPOOL_MEM + 1);
	char gone[PATH_MAX];
	struct spool *sp = spool_new();
	struct pf_error err;
	int fds = count_fds();

	test_pathf(gone, sizeof(gone), "%s/nonexistent", f->dir);
	assert_int_equal(setenv("TMPDIR", gone, 1), 0);
	assert_int_equal(spool_write(sp, data, SPOOL_MEM, &err), 0);
	pf_error_clear(&err);
	assert_int_equal(spool_write(sp, data + SPOOL_MEM, 1, &err), -1);
	assert_int_equal(err.category, PF_FAIL_IO);
	assert_non_null(strstr(err.what, gone));
	assert_int_equal(spool_write(sp, data, 1, &err), -1);
	assert_int_equal(count_fds(), fds);
	spool_free(&sp);
	assert_int_equal(count_fds(), fds);
	free(data);
}

/* An empty TMPDIR means /tmp. */
static void
test_tmpdir_empty(void **state)
{
	char *data = make_data(SPOOL_MEM + 1);
	struct spool *sp = spool_new();
	struct command_input in;
	char link[64], target[PATH_MAX];
	ssize_t n;

	(void)state;
	assert_int_equal(setenv("TMPDIR", "", 1), 0);
	write_chunks(sp, data, SPOOL_MEM + 1, 65536);
	in = spool_input(sp);
	assert_int_not_equal(in.fd, -1);
	test_pathf(link, sizeof(link), "/proc/self/fd/%d", in.fd);
	n = readlink(link, target, sizeof(target) - 1);
	assert_true(n > 0);
	target[n] = '\0';
	if (strncmp(target, "/tmp/", 5) != 0)
		fail_msg("spool file %s is not in /tmp", target);
	expect_fd_content(&in, data, SPOOL_MEM + 1);
	spool_free(&sp);
	free(data);
}

#define T(fn)	cmocka_unit_test_setup_teardown(fn, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_empty),
		T(test_memory_up_to_limit),
		T(test_file_past_limit),
		T(test_one_big_write),
		T(test_tmpdir),
		T(test_tmpdir_missing),
		T(test_tmpdir_empty),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
