/* test_command.c - the child-process runner (lib/command.h). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "command.h"
#include "error.h"
#include "params.h"
#include "testutil.h"
#include "thread.h"

#define MIB	((size_t)1024 * 1024)

/* Run c; command_run must return 0. */
static void
run_ok(const struct command *c, struct command_result *r)
{
	struct pf_error err;

	pf_error_clear(&err);
	assert_int_equal(command_run(c, r, &err), 0);
	assert_int_equal(err.category, PF_OK);
}

/* Run `line` without input, keeping up to out_max bytes of stdout. */
static void
run_line(const char *line, size_t out_max, unsigned timeout,
    struct command_result *r)
{
	struct command c = { .line = line, .timeout = timeout,
	    .out_max = out_max };

	run_ok(&c, r);
}

/* The command's stdout must be `expect`, and it must have exited 0. */
static void
expect_out(const struct command *c, const char *expect)
{
	struct command_result r;

	run_ok(c, &r);
	assert_int_equal(r.end, COMMAND_EXITED);
	assert_int_equal(r.code, 0);
	assert_non_null(r.out);
	assert_string_equal(r.out, expect);
	assert_int_equal(r.out_len, strlen(expect));
	command_result_free(&r);
	assert_null(r.out);
}

/* No child of ours is left, running or zombie. */
static void
assert_no_child(void)
{
	assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
	assert_int_equal(errno, ECHILD);
}

/* How many descriptors we have open. */
static int
open_fds(void)
{
	int fd, n = 0;

	for (fd = 0; fd < 1024; fd++)
		if (fcntl(fd, F_GETFD) != -1)
			n++;
	return n;
}

/* Peak resident set, KiB. */
static long
max_rss_kib(void)
{
	struct rusage ru;

	assert_int_equal(getrusage(RUSAGE_SELF, &ru), 0);
	return ru.ru_maxrss;
}

/* len bytes of a pattern that shows a byte lost or moved. */
static char *
pattern(size_t len, unsigned seed)
{
	char *p = malloc(len);
	size_t i;

	assert_non_null(p);
	for (i = 0; i < len; i++)
		p[i] = (char)('a' + (i / 7 + seed) % 26);
	return p;
}

/* A command fed len bytes of pattern(len, seed); free fed.data after. */
struct fed {
	char			*data;
	struct command_input	 in;
	struct command		 c;
};

static void
fed_init(struct fed *f, const char *line, size_t len, unsigned seed,
    unsigned timeout, size_t out_max)
{
	memset(f, 0, sizeof(*f));
	f->data = pattern(len, seed);
	f->in.buf = f->data;
	f->in.len = len;
	f->c.line = line;
	f->c.in = &f->in;
	f->c.nin = 1;
	f->c.timeout = timeout;
	f->c.out_max = out_max;
}

/* --- stderr captured: fd 2 goes to a temporary file meanwhile --- */

struct capture {
	int	 saved;
	FILE	*file;
};

static void
capture_start(struct capture *cap)
{
	assert_non_null(cap->file = tmpfile());
	assert_true((cap->saved = dup(STDERR_FILENO)) != -1);
	assert_int_equal(dup2(fileno(cap->file), STDERR_FILENO),
	    STDERR_FILENO);
}

/* Stop capturing; returns what was written (the caller frees it). */
static char *
capture_end(struct capture *cap)
{
	long len;
	char *text;

	assert_int_equal(dup2(cap->saved, STDERR_FILENO), STDERR_FILENO);
	close(cap->saved);
	assert_int_equal(fseek(cap->file, 0, SEEK_END), 0);
	assert_true((len = ftell(cap->file)) >= 0);
	rewind(cap->file);
	assert_non_null(text = malloc((size_t)len + 1));
	assert_int_equal(fread(text, 1, (size_t)len, cap->file), (size_t)len);
	text[len] = '\0';
	fclose(cap->file);
	return text;
}

/* How many times `needle` occurs in `hay`. */
static size_t
count_of(const char *hay, const char *needle)
{
	size_t n = 0;

	while ((hay = strstr(hay, needle)) != NULL) {
		n++;
		hay += strlen(needle);
	}
	return n;
}

/* --- memory: first, while the peak RSS is still low --- */

static void
test_stdout_flood_bounded(void **state)
{
	struct command_result r;
	long before = max_rss_kib();

	(void)state;
	run_line("yes | head -c 50000000", 100, 60, &r);
	assert_int_equal(r.end, COMMAND_EXITED);
	assert_int_equal(r.code, 0);
	assert_int_equal(r.out_len, 100);
	assert_int_equal(strlen(r.out), 100);
	assert_memory_equal(r.out, "y\ny\ny\n", 6);
	command_result_free(&r);
	/* 50 MB went through; kept, it would show here */
	assert_true(max_rss_kib() - before < 20 * 1024);
}

static void
test_stderr_flood_bounded(void **state)
{
	struct command c = { .line = "yes | head -c 50000000 >&2; echo done",
	    .timeout = 60, .log_prefix = "flood", .out_max = 100 };
	struct command_result r;
	struct capture cap;
	long before = max_rss_kib();
	char *text, expect[128];

	(void)state;
	capture_start(&cap);
	run_ok(&c, &r);
	text = capture_end(&cap);
	assert_int_equal(r.end, COMMAND_EXITED);
	assert_string_equal(r.out, "done\n");
	command_result_free(&r);
	assert_true(max_rss_kib() - before < 20 * 1024);
	/* the first lines are logged, the rest only counted */
	assert_int_equal(count_of(text, "popfetch: flood: y\n"),
	    COMMAND_ERR_LINES_MAX);
	snprintf(expect, sizeof(expect),
	    "popfetch: flood: %d more lines on stderr not logged\n",
	    25000000 - COMMAND_ERR_LINES_MAX);
	assert_non_null(strstr(text, expect));
	assert_int_equal(count_of(text, "\n"), COMMAND_ERR_LINES_MAX + 1);
	free(text);
}

/* --- how it ended --- */

/* `line` (no input, 5 s) must end so, and print `out` if not NULL. */
static void
expect_end(const char *line, enum command_end end, int code, const char *out)
{
	struct command_result r;

	run_line(line, 64, 5, &r);
	assert_int_equal(r.end, end);
	assert_int_equal(r.code, code);
	if (out != NULL) {
		assert_string_equal(r.out, out);
		assert_int_equal(r.out_len, strlen(out));
	}
	command_result_free(&r);
	command_result_free(&r);	/* twice is harmless */
	assert_null(r.out);
	assert_no_child();
}

static void
test_exit_status_and_output(void **state)
{
	struct command_result r;

	(void)state;
	expect_end("echo hi; exit 3", COMMAND_EXITED, 3, "hi\n");

	/* out_max 0: stdout is /dev/null, nothing is kept */
	run_line("echo hi; exit 0", 0, 5, &r);
	assert_int_equal(r.end, COMMAND_EXITED);
	assert_int_equal(r.code, 0);
	assert_null(r.out);
	assert_int_equal(r.out_len, 0);
	command_result_free(&r);

	/* exactly out_max bytes are kept */
	run_line("printf 0123456789", 5, 5, &r);
	assert_string_equal(r.out, "01234");
	assert_int_equal(r.out_len, 5);
	command_result_free(&r);
}

static void
test_not_run(void **state)
{
	(void)state;
	expect_end("/nonexistent/popfetch-no-such-command", COMMAND_NOT_RUN,
	    127, NULL);
	/* not executable */
	expect_end("/dev/null", COMMAND_NOT_RUN, 126, NULL);
}

/* Under valgrind?  (It preloads its vgpreload_*.so.) */
static bool
under_valgrind(void)
{
	const char *p = getenv("LD_PRELOAD");

	return p != NULL && strstr(p, "vgpreload") != NULL;
}

/* /bin/sh itself cannot be executed (E2BIG: one environment string past
 * MAX_ARG_STRLEN, 128 KiB): not run, 127, with nothing left behind.
 * Not under valgrind, whose child dies of any failed execve ("EXEC FAILED:
 * I can't recover"), with fork and exec as with posix_spawn. */
static void
test_shell_not_run(void **state)
{
	enum { BIG = 256 * 1024 };
	char *big = malloc(BIG + 1);
	const char *const env[] = { big, NULL };
	struct command_input in = { .buf = "x", .len = 1 };
	struct command c = { .line = "exit 0", .env = env, .in = &in,
	    .nin = 1, .timeout = 5, .log_prefix = "big", .out_max = 64 };
	struct command_result r;
	int fds = open_fds();

	(void)state;
	if (under_valgrind()) {
		free(big);
		skip();
	}
	assert_non_null(big);
	memcpy(big, "POPFETCH_BIG=", 13);
	memset(big + 13, 'x', BIG - 13);
	big[BIG] = '\0';
	run_ok(&c, &r);
	assert_int_equal(r.end, COMMAND_NOT_RUN);
	assert_int_equal(r.code, 127);
	assert_string_equal(r.out, "");
	command_result_free(&r);
	free(big);
	assert_no_child();
	assert_int_equal(open_fds(), fds);
}

static void
test_signalled(void **state)
{
	(void)state;
	expect_end("echo x; kill -TERM $$", COMMAND_SIGNALLED, SIGTERM, "x\n");
}

/* --- environment --- */

static void
test_env(void **state)
{
	const char *const env[] = { "POPFETCH_UIDL=1234.abc",
	    "POPFETCH_TEST_OLD=new", NULL };
	struct command c = { .line = "printf '%s %s ' \"$POPFETCH_UIDL\" "
	    "\"$POPFETCH_TEST_OLD\"; env | grep -c '^POPFETCH_TEST_OLD='",
	    .timeout = 5, .out_max = 256 };

	(void)state;
	assert_int_equal(setenv("POPFETCH_TEST_OLD", "old", 1), 0);
	expect_out(&c, " old 1\n");
	c.env = env;
	/* added, and replacing ours (once: no second POPFETCH_TEST_OLD) */
	expect_out(&c, "1234.abc new 1\n");
	/* our own environment is untouched */
	assert_string_equal(getenv("POPFETCH_TEST_OLD"), "old");
	assert_null(getenv("POPFETCH_UIDL"));
	unsetenv("POPFETCH_TEST_OLD");
}

/* --- input --- */

static void
test_input_pieces(void **state)
{
	FILE *f;
	struct command_input in[4] = {
		{ .buf = "Received: x\n", .len = 12 },
		{ .buf = "", .len = 0 },
		{ .buf = NULL },
		{ .buf = "end\n", .len = 4 },
	};
	struct command c = { .line = "cat", .in = in, .nin = 4, .timeout = 5,
	    .out_max = 256 };

	(void)state;
	assert_non_null(f = tmpfile());
	assert_int_equal(fputs("Subject: hi\n\nbody\n", f) >= 0, 1);
	assert_int_equal(fflush(f), 0);
	in[2].fd = fileno(f);
	/* the file offset is at the end: pread from 0 does not care */
	expect_out(&c, "Received: x\nSubject: hi\n\nbody\nend\n");
	assert_int_equal(lseek(in[2].fd, 0, SEEK_CUR), 18);
	fclose(f);

	/* no input: stdin is /dev/null, reading it gets EOF at once */
	c.nin = 0;
	c.line = "cat; echo after";
	expect_out(&c, "after\n");
	/* buffers only, one of them empty */
	c.nin = 2;
	expect_out(&c, "Received: x\nafter\n");
}

/* 10 MiB through `cat`: written while its output is read. */
static void
test_big_input_and_output(void **state)
{
	size_t len = 10 * MIB;
	struct fed f;
	struct command_result r;

	(void)state;
	fed_init(&f, "cat", len, 1, 60, 2 * len);
	run_ok(&f.c, &r);
	assert_int_equal(r.end, COMMAND_EXITED);
	assert_int_equal(r.code, 0);
	assert_int_equal(r.out_len, len);
	assert_memory_equal(r.out, f.data, len);
	command_result_free(&r);

	/* 10 MiB written back before it reads any input */
	f.c.line = "head -c 10485760 /dev/zero; cat";
	run_ok(&f.c, &r);
	assert_int_equal(r.end, COMMAND_EXITED);
	assert_int_equal(r.out_len, 2 * len);
	assert_int_equal(r.out[0], '\0');
	assert_int_equal(r.out[len - 1], '\0');
	assert_memory_equal(r.out + len, f.data, len);
	command_result_free(&r);

	/* the same with little kept: the rest is read and dropped */
	f.c.out_max = 10;
	run_ok(&f.c, &r);
	assert_int_equal(r.end, COMMAND_EXITED);
	assert_int_equal(r.out_len, 10);
	command_result_free(&r);
	free(f.data);
}

/* A command that reads none or part of its input: not an error. */
static void
test_input_not_read(void **state)
{
	struct fed f;
	struct command_result r;
	sigset_t pending;

	(void)state;
	fed_init(&f, "exit 0", 10 * MIB, 2, 30, 64);
	/* SIGPIPE is at its default here: one delivered would kill us */
	run_ok(&f.c, &r);
	assert_int_equal(r.end, COMMAND_EXITED);
	assert_int_equal(r.code, 0);
	command_result_free(&r);
	f.c.line = "exit 5";
	run_ok(&f.c, &r);
	assert_int_equal(r.end, COMMAND_EXITED);
	assert_int_equal(r.code, 5);
	command_result_free(&r);
	f.c.line = "head -c 100000 >/dev/null; exec <&-; sleep 0.2; echo ok";
	expect_out(&f.c, "ok\n");
	/* nor is one left pending */
	sigpending(&pending);
	assert_false(sigismember(&pending, SIGPIPE));
	free(f.data);
}

/* An input fd that cannot be read: our failure, and nothing is left. */
static void
test_input_unreadable(void **state)
{
	struct command_input in = { .buf = NULL, .fd = -1 };
	struct command c = { .line = "cat", .in = &in, .nin = 1,
	    .timeout = 5, .out_max = 64 };
	struct command_result r;
	struct pf_error err;
	int fds = open_fds();

	(void)state;
	pf_error_clear(&err);
	assert_int_equal(command_run(&c, &r, &err), -1);
	assert_int_equal(err.category, PF_FAIL_IO);
	assert_non_null(strstr(err.what, "pread"));
	assert_null(r.out);
	assert_no_child();
	assert_int_equal(open_fds(), fds);
}

/* Out of descriptors: -1, "cannot run it", temporary (75). */
static void
test_setup_failure(void **state)
{
	struct command c = { .line = "echo hi", .timeout = 5, .out_max = 64 };
	struct command_result r;
	struct pf_error err;
	struct rlimit old, low;
	int fd, fds = open_fds();

	(void)state;
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	/* every descriptor below the lowest free one is taken */
	assert_true((fd = dup(0)) != -1);
	close(fd);
	low = old;
	low.rlim_cur = (rlim_t)fd;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	pf_error_clear(&err);
	assert_int_equal(command_run(&c, &r, &err), -1);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
	assert_int_equal(err.category, PF_FAIL_TEMP);
	assert_non_null(strstr(err.what, "cannot run it: "));
	assert_null(r.out);
	assert_int_equal(open_fds(), fds);
	assert_no_child();
}

/* --- time --- */

/* c (timeout 1 s) must be killed, in about 1 s. */
static void
expect_timed_out(const struct command *c)
{
	struct command_result r;
	double t0 = test_now(), t;

	run_ok(c, &r);
	t = test_now() - t0;
	assert_int_equal(r.end, COMMAND_TIMED_OUT);
	assert_true(t >= 0.9 && t < 2.5);
	command_result_free(&r);
	assert_no_child();
}

static void
test_timeout(void **state)
{
	struct command c = { .line = "sleep 30", .timeout = 1, .out_max = 64 };
	struct command_result r;
	double t0;

	(void)state;
	expect_timed_out(&c);

	/* a command that never stops writing */
	t0 = test_now();
	run_line("yes", 64, 1, &r);
	assert_int_equal(r.end, COMMAND_TIMED_OUT);
	assert_true(test_now() - t0 < 2.5);
	assert_int_equal(r.out_len, 64);
	command_result_free(&r);
}

/* Is pid gone (or a zombie nobody reaped yet)? */
static bool
gone(pid_t pid)
{
	char path[64], buf[256], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((fd = open(path, O_RDONLY)) == -1)
		return true;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return true;
	buf[n] = '\0';
	return (p = strrchr(buf, ')')) != NULL && p[1] == ' ' && p[2] == 'Z';
}

/* The pid on the first line of out. */
static pid_t
first_pid(const char *out)
{
	long pid = strtol(out, NULL, 10);

	assert_true(pid > 1);
	return (pid_t)pid;
}

static void
test_timeout_kills_group(void **state)
{
	struct command_result r;
	double t0 = test_now();
	pid_t bg;
	int i;

	(void)state;
	/* the grandchild holds stdout; it goes with the shell */
	run_line("sleep 30 & echo $!; wait", 64, 1, &r);
	assert_int_equal(r.end, COMMAND_TIMED_OUT);
	assert_true(test_now() - t0 < 2.5);
	bg = first_pid(r.out);
	command_result_free(&r);
	for (i = 0; i < 50 && !gone(bg); i++)
		usleep(100 * 1000);
	if (!gone(bg))
		(void)kill(bg, SIGKILL);
	assert_true(i < 50);
}

/* The timeout starts when the input is all written, not before. */
static void
test_timeout_after_input(void **state)
{
	struct fed f;
	struct command_result r;
	double t0 = test_now();

	(void)state;
	/* about 1.6 s in all, never more than 0.4 s without reading */
	fed_init(&f, "for i in 1 2 3 4; do head -c 1048576 >/dev/null; "
	    "sleep 0.4; done; cat >/dev/null", 4 * MIB, 3, 1, 64);
	run_ok(&f.c, &r);
	assert_int_equal(r.end, COMMAND_EXITED);
	assert_int_equal(r.code, 0);
	assert_true(test_now() - t0 > 1.2);
	command_result_free(&r);

	/* all written at once, then 1 s */
	f.c.line = "cat >/dev/null; sleep 30";
	expect_timed_out(&f.c);
	/* a command that takes none of its input for 1 s is stuck too */
	f.c.line = "sleep 30";
	expect_timed_out(&f.c);
	free(f.data);
}

/* A background process holding stdout and stderr delays nothing, and is
 * left alone. */
static void
test_background_holder(void **state)
{
	const char *lines[] = {
		"(sleep 30 & echo $!); echo hi",	/* not the shell's child */
		"sleep 30 & echo $!; echo hi",		/* the shell's child */
	};
	struct command c = { .timeout = 20, .log_prefix = "bg", .out_max = 64 };
	struct command_result r;
	double t0;
	size_t i;
	pid_t bg;

	(void)state;
	for (i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		c.line = lines[i];
		t0 = test_now();
		run_ok(&c, &r);
		assert_true(test_now() - t0 < 3.0);
		assert_int_equal(r.end, COMMAND_EXITED);
		assert_int_equal(r.code, 0);
		bg = first_pid(r.out);
		assert_non_null(strstr(r.out, "\nhi\n"));
		command_result_free(&r);
		assert_false(gone(bg));
		(void)kill(bg, SIGKILL);
	}
	assert_no_child();	/* the shells were reaped; bg is not ours */
}

/* --- stderr --- */

static void
test_stderr_logged(void **state)
{
	struct command c = { .line = "echo hello >&2; echo out; "
	    "printf 'a\\033[2Jb\\r\\n' >&2; "
	    "head -c 2000 /dev/zero | tr '\\0' x >&2; echo >&2; "
	    "printf 'no newline' >&2",
	    .timeout = 5, .log_prefix = "work: filter", .out_max = 64 };
	struct capture cap;
	char *text, cut[COMMAND_ERR_LINE_MAX + 64];

	(void)state;
	capture_start(&cap);
	expect_out(&c, "out\n");
	text = capture_end(&cap);
	assert_non_null(strstr(text, "popfetch: work: filter: hello\n"));
	/* control characters escaped; CRLF is a line end */
	assert_non_null(strstr(text, "popfetch: work: filter: a\\x1b[2Jb\n"));
	/* a long line is cut */
	strcpy(cut, "popfetch: work: filter: ");
	memset(cut + strlen(cut), 'x', COMMAND_ERR_LINE_MAX);
	strcpy(cut + strlen("popfetch: work: filter: ") + COMMAND_ERR_LINE_MAX,
	    "...\n");
	assert_non_null(strstr(text, cut));
	/* the last line, without its newline */
	assert_non_null(strstr(text, "popfetch: work: filter: no newline\n"));
	assert_int_equal(count_of(text, "\n"), 4);
	free(text);
}

/* --- threads, descriptors and signals --- */

struct job {
	struct command		 c;
	struct command_input	 in;
	struct command_result	 r;
	int			 rc;
};

static void *
job_run(void *arg)
{
	struct job *j = arg;
	struct pf_error err;

	pf_error_clear(&err);
	j->rc = command_run(&j->c, &j->r, &err);
	return NULL;
}

/* Run j from a thread with every signal blocked, as the workers are,
 * with SIGPIPE ignored, as popfetch does (fetcher/cli.c). */
static void
run_in_worker(struct job *j)
{
	struct sigaction ign = { .sa_handler = SIG_IGN }, old;
	pthread_t t;

	j->in.buf = "x";
	j->in.len = 1;
	j->c.in = &j->in;
	j->c.nin = 1;
	j->c.timeout = 10;
	j->c.log_prefix = "state";
	j->c.out_max = 4096;
	assert_int_equal(sigaction(SIGPIPE, &ign, &old), 0);
	assert_int_equal(pf_thread_start(&t, NULL, job_run, j), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(sigaction(SIGPIPE, &old, NULL), 0);
	assert_int_equal(j->rc, 0);
	assert_int_equal(j->r.end, COMMAND_EXITED);
	assert_int_equal(j->r.code, 0);
}

/* What the child gets: no signal blocked, SIGPIPE not ignored, and
 * stdin, stdout and stderr only. */
static void
test_child_state(void **state)
{
	struct job j = { .c = { .line =
	    /* the shell's own state as it was exec'd (dash blocks signals
	     * of its own while it waits for a child) */
	    "exec grep -E '^Sig(Blk|Ign)' /proc/self/status" } };
	unsigned long long ignored;
	char *p;
	int extra;

	(void)state;
	run_in_worker(&j);
	assert_non_null(strstr(j.r.out, "SigBlk:\t0000000000000000\n"));
	assert_non_null(p = strstr(j.r.out, "SigIgn:\t"));
	ignored = strtoull(p + 8, NULL, 16);
	assert_int_equal(ignored & (1ULL << (SIGPIPE - 1)), 0);
	command_result_free(&j.r);

	/* one of ours that is not close-on-exec: not the command's either */
	assert_true((extra = dup(STDIN_FILENO)) > STDERR_FILENO);
	memset(&j, 0, sizeof(j));
	j.c.line = "for f in /proc/$$/fd/*; do "
	    "[ -e \"$f\" ] && printf '%s ' \"${f##*/}\"; done; true";
	run_in_worker(&j);
	close(extra);
	assert_string_equal(j.r.out, "0 1 2 ");
	command_result_free(&j.r);
}

/* The descriptors another fork+exec inherits from us, as "0 1 2 ..." */
static void
fds_seen_by_exec(char *buf, size_t size)
{
	FILE *p;
	size_t n;

	assert_non_null(p = popen("for f in /proc/$$/fd/*; do "
	    "[ -e \"$f\" ] && printf '%s ' \"${f##*/}\"; done; true", "r"));
	n = fread(buf, 1, size - 1, p);
	buf[n] = '\0';
	assert_int_equal(pclose(p), 0);
}

/* Commands in parallel threads each get their own input and output, and
 * none of our pipes leak into anyone's exec. */
static void
test_threads(void **state)
{
	enum { N = 4 };
	struct job jobs[N];
	pthread_t t[N];
	char *data[N], before[256], during[256];
	size_t len = MIB, i;

	(void)state;
	fds_seen_by_exec(before, sizeof(before));
	for (i = 0; i < N; i++) {
		data[i] = pattern(len, (unsigned)i);
		memset(&jobs[i], 0, sizeof(jobs[i]));
		jobs[i].in.buf = data[i];
		jobs[i].in.len = len;
		jobs[i].c.in = &jobs[i].in;
		jobs[i].c.nin = 1;
		/* slow readers: the pipes are open while we look */
		jobs[i].c.line = "sleep 0.5; cat";
		jobs[i].c.timeout = 30;
		jobs[i].c.out_max = len;
		jobs[i].c.log_prefix = "job";
		assert_int_equal(pf_thread_start(&t[i], NULL, job_run,
		    &jobs[i]), 0);
	}
	usleep(200 * 1000);
	fds_seen_by_exec(during, sizeof(during));
	for (i = 0; i < N; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		assert_int_equal(jobs[i].rc, 0);
		assert_int_equal(jobs[i].r.end, COMMAND_EXITED);
		assert_int_equal(jobs[i].r.code, 0);
		assert_int_equal(jobs[i].r.out_len, len);
		assert_memory_equal(jobs[i].r.out, data[i], len);
		command_result_free(&jobs[i].r);
		free(data[i]);
	}
	assert_string_equal(during, before);
	assert_no_child();
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stdout_flood_bounded),
		cmocka_unit_test(test_stderr_flood_bounded),
		cmocka_unit_test(test_exit_status_and_output),
		cmocka_unit_test(test_not_run),
		cmocka_unit_test(test_shell_not_run),
		cmocka_unit_test(test_signalled),
		cmocka_unit_test(test_env),
		cmocka_unit_test(test_input_pieces),
		cmocka_unit_test(test_big_input_and_output),
		cmocka_unit_test(test_input_not_read),
		cmocka_unit_test(test_input_unreadable),
		cmocka_unit_test(test_setup_failure),
		cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_timeout_kills_group),
		cmocka_unit_test(test_timeout_after_input),
		cmocka_unit_test(test_background_holder),
		cmocka_unit_test(test_stderr_logged),
		cmocka_unit_test(test_child_state),
		cmocka_unit_test(test_threads),
	};

	/* SIGPIPE at its default: a SIGPIPE command_run let through kills
	 * the test (cmocka may have started us with it ignored) */
	signal(SIGPIPE, SIG_DFL);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
