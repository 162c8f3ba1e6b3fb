/*
 * test_filter.c - the `filter` command's workers and verdicts
 * (fetcher/filter.c, doc/DESIGN.md §10.1): what each exit status and
 * output line means, the order jobs are taken in, the environment and
 * input the command gets.
 */
#include "config.h"

#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "error.h"
#include "filter.h"
#include "params.h"
#include "spool.h"
#include "testutil.h"

struct fixture {
	char	 dir[PATH_MAX];		/* first (test_fixture_new) */
};

static int
setup(void **state)
{
	struct fixture *f = test_fixture_new(sizeof(*f), "test_filter");

	if (f == NULL)
		return -1;
	*state = f;
	return 0;
}

/* A spool holding len bytes of text. */
static struct spool *
spool_of(const char *text, size_t len)
{
	struct spool *sp = spool_new();
	struct pf_error err;

	if (spool_write(sp, text, len, &err) == -1)
		fail_msg("spool_write: %s", err.what);
	return sp;
}

/* Submit one job with `msg` to a new filter running `cmd`, wait for it,
 * and leave its outcome in *j (spool freed). */
static void
run_one(const char *cmd, unsigned timeout, const char *msg,
    struct filter_job *j)
{
	struct filter *f = filter_new(cmd, "acct", timeout);
	struct filter_job *got;

	memset(j, 0, sizeof(*j));
	j->spool = spool_of(msg, strlen(msg));
	j->uidl = "uidl-1";
	j->owner = j;
	filter_submit(f, j);
	assert_int_equal(filter_queued(f), 1);
	got = filter_take(f, true);
	assert_ptr_equal(got, j);
	assert_ptr_equal(got->owner, j);
	assert_true(got->done);
	assert_null(got->spool);	/* freed once the filter ran */
	assert_int_equal(filter_queued(f), 0);
	assert_null(filter_take(f, true));
	assert_null(filter_take(f, false));
	filter_free(&f);
	assert_null(f);
}

static void
expect_deliver(const char *cmd, const char *folder)
{
	struct filter_job j;

	run_one(cmd, 30, "Subject: x\n\nbody\n", &j);
	if (j.verdict != FILTER_DELIVER)
		fail_msg("%s: verdict %d (%s), want deliver", cmd, j.verdict,
		    j.why.what);
	assert_string_equal(j.folder, folder);
}

static void
expect_refused(const char *cmd, unsigned timeout, enum pf_fail cat,
    const char *words)
{
	struct filter_job j;

	run_one(cmd, timeout, "Subject: x\n\nbody\n", &j);
	if (j.verdict != FILTER_REFUSED)
		fail_msg("%s: verdict %d, want refused", cmd, j.verdict);
	assert_int_equal(j.why.category, cat);
	assert_string_equal(j.folder, "");
	if (words != NULL && strstr(j.why.what, words) == NULL)
		fail_msg("%s: \"%s\" does not say \"%s\"", cmd, j.why.what,
		    words);
}

/* exit 0: deliver, into the folder its first output line names. */
static void
test_deliver(void **state)
{
	(void)state;
	expect_deliver("exit 0", "");
	expect_deliver("cat >/dev/null", "");
	expect_deliver("echo", "");			/* an empty line */
	expect_deliver("echo Junk", "Junk");
	expect_deliver("printf 'Junk\\r\\n'", "Junk");
	expect_deliver("printf 'Junk'", "Junk");	/* no newline */
	expect_deliver("printf 'Lists\\nmore\\nlines\\n'", "Lists");
	expect_deliver("printf 'a b\\n'", "a b");
	/* Only exit 0 counts: output of a failing filter is no folder. */
	expect_refused("echo Junk; exit 3", 30, PF_FAIL_TEMP, "exit 3");
}

/* 99 discards; 75 and any other status refuse (try again: PF_FAIL_TEMP);
 * a command that cannot be run refuses with PF_FAIL_CONFIG. */
static void
test_statuses(void **state)
{
	struct filter_job j;

	(void)state;
	run_one("exit 99", 30, "x\n", &j);
	assert_int_equal(j.verdict, FILTER_DISCARD);
	run_one("cat; exit 99", 30, "x\n", &j);
	assert_int_equal(j.verdict, FILTER_DISCARD);
	expect_refused("exit 75", 30, PF_FAIL_TEMP, "75");
	expect_refused("exit 3", 30, PF_FAIL_TEMP, "exit 3");
	expect_refused("exit 1", 30, PF_FAIL_TEMP, "exit 1");
	expect_refused("kill -9 $$", 30, PF_FAIL_TEMP, "signal 9");
	expect_refused("/nonexistent/popfetch-filter", 30, PF_FAIL_CONFIG,
	    "/nonexistent/popfetch-filter");
	expect_refused("/", 30, PF_FAIL_CONFIG, NULL);	/* not executable */
}

/* A first line that is no folder name refuses the message (and never
 * becomes the folder). */
static void
test_hostile_folder(void **state)
{
	static const char *const cmds[] = {
		"echo ../x",
		"echo ..",
		"echo .Junk",
		"echo a/b",
		"echo /etc",
		"echo a..b",
		"printf 'a\\033[2Jb\\n'",
		"printf 'a\\tb\\n'",
		"printf 'Junk\\r\\r\\n'",
		"printf 'Ju\\000nk\\n'",
	};
	char cmd[600];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		expect_refused(cmds[i], 30, PF_FAIL_TEMP, "not a folder name");
	/* Too long for a directory name with its '.'. */
	test_pathf(cmd, sizeof(cmd), "printf '%%0300d\\n' 0");
	expect_refused(cmd, 30, PF_FAIL_TEMP, "not a folder name");
	test_pathf(cmd, sizeof(cmd), "printf '%%0%dd\\n' 0", NAME_MAX - 1);
	expect_refused(cmd, 30, PF_FAIL_TEMP, "not a folder name");
	/* The longest name that still is one. */
	test_pathf(cmd, sizeof(cmd), "printf '%%0%dd\\n' 0", NAME_MAX - 2);
	{
		struct filter_job j;

		run_one(cmd, 30, "x\n", &j);
		assert_int_equal(j.verdict, FILTER_DELIVER);
		assert_int_equal(strlen(j.folder), NAME_MAX - 2);
	}
}

/* No exit within `timeout` after its input: refused, and it does not
 * hold us much longer. */
static void
test_timeout(void **state)
{
	double t0 = test_now(), took;

	(void)state;
	expect_refused("sleep 10", 1, PF_FAIL_TEMP, "within 1 s");
	took = test_now() - t0;
	if (took > 5.0)
		fail_msg("a filter with timeout 1 took %.1f s", took);
}

/* The command's environment: POPFETCH_ACCOUNT, _UIDL, _SIZE; and its
 * stdin: the message, whole. */
static void
test_env_and_input(void **state)
{
	struct fixture *f = *state;
	struct filter *flt;
	struct filter_job j, k, *got;
	char cmd[PATH_MAX * 3], envf[PATH_MAX], inf[PATH_MAX], buf[512];
	static const char msg[] = "Subject: hello\n\nbody\n";
	FILE *fp;
	size_t n;

	test_pathf(envf, sizeof(envf), "%s/env", f->dir);
	test_pathf(inf, sizeof(inf), "%s/in", f->dir);
	test_pathf(cmd, sizeof(cmd), "printf '%%s|%%s|%%s\\n' "
	    "\"$POPFETCH_ACCOUNT\" \"$POPFETCH_UIDL\" \"$POPFETCH_SIZE\" "
	    ">> '%s'; cat > '%s'", envf, inf);
	flt = filter_new(cmd, "work mail", 30);
	memset(&j, 0, sizeof(j));
	j.spool = spool_of(msg, strlen(msg));
	j.uidl = "0001-abc";
	filter_submit(flt, &j);
	got = filter_take(flt, true);
	assert_ptr_equal(got, &j);
	assert_int_equal(j.verdict, FILTER_DELIVER);
	/* Without a UIDL, POPFETCH_UIDL is empty. */
	memset(&k, 0, sizeof(k));
	k.spool = spool_of("", 0);
	k.uidl = NULL;
	filter_submit(flt, &k);
	assert_ptr_equal(filter_take(flt, true), &k);
	assert_int_equal(k.verdict, FILTER_DELIVER);
	filter_free(&flt);

	fp = fopen(envf, "r");
	assert_non_null(fp);
	n = fread(buf, 1, sizeof(buf) - 1, fp);
	fclose(fp);
	buf[n] = '\0';
	test_pathf(cmd, sizeof(cmd), "work mail|0001-abc|%zu\nwork mail||0\n",
	    strlen(msg));
	assert_string_equal(buf, cmd);
	assert_int_equal(test_count_entries(f->dir, "."), 2);
	fp = fopen(inf, "r");
	assert_non_null(fp);
	n = fread(buf, 1, sizeof(buf) - 1, fp);
	fclose(fp);
	assert_int_equal(n, 0);		/* the last one was empty */
}

/* A message past SPOOL_MEM (a file spool) reaches the filter byte-exact;
 * and `exit 0`, which reads none of it, is no failure. */
static void
test_big_message(void **state)
{
	struct fixture *f = *state;
	size_t len = SPOOL_MEM * 2 + 17, i;
	char *data = malloc(len), *back = malloc(len + 1);
	char cmd[PATH_MAX + 64], inf[PATH_MAX];
	struct filter_job j;
	struct filter *flt;
	struct pf_error err;
	FILE *fp;

	assert_non_null(data);
	assert_non_null(back);
	for (i = 0; i < len; i++)
		data[i] = (char)(i % 79 == 78 ? '\n' : 'a' + (i * 13) % 26);
	test_pathf(inf, sizeof(inf), "%s/in", f->dir);
	test_pathf(cmd, sizeof(cmd), "cat > '%s'", inf);

	flt = filter_new(cmd, "acct", 30);
	memset(&j, 0, sizeof(j));
	j.spool = spool_new();
	assert_int_equal(spool_write(j.spool, data, len, &err), 0);
	filter_submit(flt, &j);
	assert_ptr_equal(filter_take(flt, true), &j);
	assert_int_equal(j.verdict, FILTER_DELIVER);
	filter_free(&flt);
	fp = fopen(inf, "rb");
	assert_non_null(fp);
	assert_int_equal(fread(back, 1, len + 1, fp), len);
	fclose(fp);
	assert_memory_equal(back, data, len);

	flt = filter_new("exit 0", "acct", 30);
	memset(&j, 0, sizeof(j));
	j.spool = spool_new();
	assert_int_equal(spool_write(j.spool, data, len, &err), 0);
	filter_submit(flt, &j);
	assert_ptr_equal(filter_take(flt, true), &j);
	if (j.verdict != FILTER_DELIVER)
		fail_msg("exit 0 on a %zu-byte message: %s", len, j.why.what);
	filter_free(&flt);
	free(data);
	free(back);
}

/*
 * Jobs are taken in the order they were submitted, even when a later one
 * finishes first; filter_take(wait = false) gives NULL while the oldest
 * still runs.
 */
static void
test_order(void **state)
{
	struct fixture *f = *state;
	char cmd[PATH_MAX + 256], logf[PATH_MAX];
	struct filter_job j[2], *got;
	struct filter *flt;

	test_pathf(logf, sizeof(logf), "%s/finished", f->dir);
	/* The first sleeps, then names folder A; the second names B at
	 * once.  Each notes when it finished. */
	test_pathf(cmd, sizeof(cmd), "if [ \"$POPFETCH_UIDL\" = first ]; then "
	    "sleep 0.3; echo first >> '%s'; echo A; else echo second >> '%s'; "
	    "echo B; fi", logf, logf);
	flt = filter_new(cmd, "acct", 30);
	memset(j, 0, sizeof(j));
	j[0].spool = spool_of("1\n", 2);
	j[0].uidl = "first";
	j[1].spool = spool_of("2\n", 2);
	j[1].uidl = "second";
	filter_submit(flt, &j[0]);
	filter_submit(flt, &j[1]);
	assert_int_equal(filter_queued(flt), 2);
	assert_null(filter_take(flt, false));	/* the first sleeps */
	if (FILTER_THREADS > 1) {
		/* Once the second is done, the first still holds it back. */
		double t0 = test_now();

		while (!test_path_exists(logf) && test_now() - t0 < 5)
			usleep(1000);
		usleep(20000);
		assert_null(filter_take(flt, false));
		assert_int_equal(filter_queued(flt), 2);
	}
	got = filter_take(flt, true);
	assert_ptr_equal(got, &j[0]);
	assert_string_equal(got->folder, "A");
	assert_int_equal(filter_queued(flt), 1);
	got = filter_take(flt, false);		/* done long ago */
	assert_ptr_equal(got, &j[1]);
	assert_string_equal(got->folder, "B");
	assert_null(filter_take(flt, false));
	filter_free(&flt);
	if (FILTER_THREADS > 1) {
		char buf[64];
		FILE *fp;
		size_t n;

		fp = fopen(logf, "r");
		assert_non_null(fp);
		n = fread(buf, 1, sizeof(buf) - 1, fp);
		fclose(fp);
		buf[n] = '\0';
		assert_string_equal(buf, "second\nfirst\n");
	}
}

/* Many jobs, more than the threads, finishing in scrambled order: taken
 * in submission order, each with its own verdict. */
static void
test_many_in_order(void **state)
{
	enum { N = 3 * FILTER_QUEUE_MAX };
	struct filter_job j[N], *got;
	char uidl[N][16], want[NAME_MAX];
	struct filter *flt;
	size_t i, taken = 0;

	(void)state;
	flt = filter_new("n=$POPFETCH_UIDL; sleep 0.0$(( (n * 7) % 10 )); "
	    "case $n in *3) exit 99;; *5) exit 75;; esac; echo F$n", "acct", 30);
	memset(j, 0, sizeof(j));
	for (i = 0; i < N; i++) {
		snprintf(uidl[i], sizeof(uidl[i]), "%zu", i);
		j[i].spool = spool_of(uidl[i], strlen(uidl[i]));
		j[i].uidl = uidl[i];
		filter_submit(flt, &j[i]);
		while (filter_queued(flt) >= FILTER_QUEUE_MAX) {
			got = filter_take(flt, true);
			assert_ptr_equal(got, &j[taken]);
			taken++;
		}
	}
	while ((got = filter_take(flt, true)) != NULL) {
		assert_ptr_equal(got, &j[taken]);
		taken++;
	}
	assert_int_equal(taken, N);
	filter_free(&flt);
	for (i = 0; i < N; i++) {
		if (i % 10 == 3) {
			assert_int_equal(j[i].verdict, FILTER_DISCARD);
		} else if (i % 10 == 5) {
			assert_int_equal(j[i].verdict, FILTER_REFUSED);
			assert_int_equal(j[i].why.category, PF_FAIL_TEMP);
		} else {
			assert_int_equal(j[i].verdict, FILTER_DELIVER);
			test_pathf(want, sizeof(want), "F%zu", i);
			assert_string_equal(j[i].folder, want);
		}
	}
}

/* A filter with nothing submitted is freed without ever starting. */
static void
test_unused(void **state)
{
	struct filter *flt = filter_new("exit 0", "acct", 30);

	(void)state;
	assert_int_equal(filter_queued(flt), 0);
	assert_null(filter_take(flt, false));
	assert_null(filter_take(flt, true));
	filter_free(&flt);
	assert_null(flt);
	filter_free(&flt);	/* NULL is fine */
}

#define T(fn)	\
	cmocka_unit_test_setup_teardown(fn, setup, test_fixture_teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_deliver),
		T(test_statuses),
		T(test_hostile_folder),
		T(test_timeout),
		T(test_env_and_input),
		T(test_big_message),
		T(test_order),
		T(test_many_in_order),
		T(test_unused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
