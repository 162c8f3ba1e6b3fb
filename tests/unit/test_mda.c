/*
 * test_mda.c - the MDA delivery backend (store/mda.c, doc/DESIGN.md §10.3)
 * through the delivery seam (store/deliver.h): what the command gets
 * (X-Popfetch-Id on top, POPFETCH_* in its environment, the message
 * byte-exact, also from a file spool), what its exit status means, and
 * that recovery finds nothing for it.
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

#include "deliver.h"
#include "error.h"
#include "params.h"
#include "testutil.h"

struct fixture {
	char	 dir[PATH_MAX];		/* first (test_fixture_new) */
	char	 out[PATH_MAX];		/* dir/out: what the command read */
	char	 env[PATH_MAX];		/* dir/env: its POPFETCH_* */
	char	 ran[PATH_MAX];		/* dir/ran: a line per run */
	char	 cmd[4 * PATH_MAX];	/* writes all three */
};

static int
setup(void **state)
{
	struct fixture *f = test_fixture_new(sizeof(*f), "test_mda");

	if (f == NULL)
		return -1;
	test_pathf(f->out, sizeof(f->out), "%s/out", f->dir);
	test_pathf(f->env, sizeof(f->env), "%s/env", f->dir);
	test_pathf(f->ran, sizeof(f->ran), "%s/ran", f->dir);
	test_pathf(f->cmd, sizeof(f->cmd), "echo run >> '%s'; "
	    "env | grep '^POPFETCH_' | LC_ALL=C sort > '%s'; cat > '%s'",
	    f->ran, f->env, f->out);
	*state = f;
	return 0;
}

static struct deliver *
open_mda(const char *cmd)
{
	struct deliver *t = NULL;
	struct pf_error err;

	if (deliver_open("mda", cmd, DELIVER_CREATE, &t, &err) == -1)
		fail_msg("deliver_open(mda): %s", err.what);
	assert_non_null(t);
	assert_ptr_equal(t->be, &deliver_mda);
	return t;
}

/* Begin, write `data` in chunks of `chunk`, finish and label a message. */
static struct deliver_msg *
message(struct deliver *t, const char *data, size_t len, size_t chunk,
    const struct deliver_label *l)
{
	struct deliver_msg *m = NULL;
	struct pf_error err;
	size_t off, n;

	assert_int_equal(deliver_begin(t, &m, &err), 0);
	assert_null(deliver_location(m));
	for (off = 0; off < len; off += n) {
		n = len - off < chunk ? len - off : chunk;
		if (deliver_write(m, data + off, n, &err) == -1)
			fail_msg("deliver_write: %s", err.what);
	}
	assert_int_equal(deliver_size(m), len);
	assert_int_equal(deliver_finish(m, &err), 0);
	if (l != NULL)
		assert_int_equal(deliver_label(m, l, &err), 0);
	return m;
}

/* The whole content of path (NUL-terminated, *len_r bytes); free it. */
static char *
slurp(const char *path, size_t *len_r)
{
	FILE *fp = fopen(path, "rb");
	char *buf = NULL;
	size_t cap = 0, len = 0, n;

	assert_non_null(fp);
	do {
		if (cap - len < 65536) {
			char *bigger;

			cap = cap * 2 + 65536;
			bigger = realloc(buf, cap + 1);
			assert_non_null(bigger);
			buf = bigger;
		}
		n = fread(buf + len, 1, cap - len, fp);
		len += n;
	} while (n > 0);
	fclose(fp);
	buf[len] = '\0';
	if (len_r != NULL)
		*len_r = len;
	return buf;
}

/* Lines in path; 0 if it does not exist. */
static int
lines_in(const char *path)
{
	char *s;
	int n = 0;
	size_t i, len;

	if (!test_path_exists(path))
		return 0;
	s = slurp(path, &len);
	for (i = 0; i < len; i++)
		n += s[i] == '\n';
	free(s);
	return n;
}

static const char msg1[] = "From: a@example.com\nSubject: one\n\nbody\n";

/* begin/write/finish/label/commit: the command runs at the commit, with
 * X-Popfetch-Id on top and POPFETCH_* set. */
static void
test_hand_over(void **state)
{
	struct fixture *f = *state;
	struct deliver *t = open_mda(f->cmd);
	struct deliver_msg *m;
	struct deliver_result res;
	struct deliver_label l = { .folder = "Junk", .account = "work",
	    .uidl = "UID-7", .id = "0123456789abcdef0123456789abcdef@popfetch",
	    .timeout = 30 };
	struct pf_error err;
	char want[1024], *s;
	size_t len;

	assert_string_equal(deliver_target(t), "mda:");
	m = message(t, msg1, strlen(msg1), 5, &l);
	assert_non_null(deliver_location(m));
	/* Nothing runs before the commit. */
	assert_int_equal(lines_in(f->ran), 0);
	memset(&res, 0xff, sizeof(res));
	assert_int_equal(deliver_commit(t, &m, 1, &res, &err), 0);
	assert_int_equal(res.status, DELIVER_PLACED);
	assert_int_equal(lines_in(f->ran), 1);

	s = slurp(f->out, &len);
	test_pathf(want, sizeof(want), "X-Popfetch-Id: %s\n%s", l.id, msg1);
	assert_int_equal(len, strlen(want));
	assert_string_equal(s, want);
	free(s);
	s = slurp(f->env, NULL);
	test_pathf(want, sizeof(want), "POPFETCH_ACCOUNT=work\n"
	    "POPFETCH_FOLDER=Junk\nPOPFETCH_SIZE=%zu\nPOPFETCH_UIDL=UID-7\n",
	    len);
	assert_string_equal(s, want);
	free(s);
	deliver_free(&m);
	assert_null(m);
	deliver_close(&t);
	assert_null(t);
}

/* Without a label: no X-Popfetch-Id line, empty POPFETCH_* values. */
static void
test_unlabelled(void **state)
{
	struct fixture *f = *state;
	struct deliver *t = open_mda(f->cmd);
	struct deliver_msg *m = message(t, msg1, strlen(msg1), 100, NULL);
	struct deliver_result res;
	struct pf_error err;
	char want[256], *s;

	assert_int_equal(deliver_commit(t, &m, 1, &res, &err), 0);
	assert_int_equal(res.status, DELIVER_PLACED);
	s = slurp(f->out, NULL);
	assert_string_equal(s, msg1);
	free(s);
	s = slurp(f->env, NULL);
	test_pathf(want, sizeof(want), "POPFETCH_ACCOUNT=\nPOPFETCH_FOLDER=\n"
	    "POPFETCH_SIZE=%zu\nPOPFETCH_UIDL=\n", strlen(msg1));
	assert_string_equal(s, want);
	free(s);
	deliver_free(&m);
	deliver_close(&t);
}

/* Exit 75 and other failures refuse the message (PF_FAIL_TEMP: it stays
 * on the server); the others of the batch are still handed over. */
static void
test_refused(void **state)
{
	struct fixture *f = *state;
	char cmd[PATH_MAX + 128];
	struct deliver *t;
	struct deliver_msg *m[3];
	struct deliver_result res[3];
	struct deliver_label l[3] = {
		{ .uidl = "a", .timeout = 30 },
		{ .uidl = "tempfail", .timeout = 30 },
		{ .uidl = "c", .timeout = 30 },
	};
	struct pf_error err;
	size_t i;

	test_pathf(cmd, sizeof(cmd), "cat > /dev/null; echo $POPFETCH_UIDL >> "
	    "'%s'; [ $POPFETCH_UIDL != tempfail ] || exit 75", f->ran);
	t = open_mda(cmd);
	for (i = 0; i < 3; i++)
		m[i] = message(t, msg1, strlen(msg1), 100, &l[i]);
	assert_int_equal(deliver_commit(t, m, 3, res, &err), 0);
	assert_int_equal(res[0].status, DELIVER_PLACED);
	assert_int_equal(res[1].status, DELIVER_FAILED);
	assert_int_equal(res[1].why->category, PF_FAIL_TEMP);
	assert_non_null(strstr(res[1].why->what, "75"));
	assert_int_equal(res[2].status, DELIVER_PLACED);
	assert_null(res[0].why);
	assert_null(res[2].why);
	deliver_results_free(res, 3);
	assert_int_equal(lines_in(f->ran), 3);
	for (i = 0; i < 3; i++)
		deliver_free(&m[i]);
	deliver_close(&t);

	/* Another status, and a signal. */
	t = open_mda("cat >/dev/null; exit 3");
	m[0] = message(t, msg1, strlen(msg1), 100, &l[0]);
	assert_int_equal(deliver_commit(t, m, 1, res, &err), 0);
	assert_int_equal(res[0].status, DELIVER_FAILED);
	assert_int_equal(res[0].why->category, PF_FAIL_TEMP);
	deliver_results_free(res, 1);
	deliver_free(&m[0]);
	deliver_close(&t);
	t = open_mda("kill -9 $$");
	m[0] = message(t, msg1, strlen(msg1), 100, &l[0]);
	assert_int_equal(deliver_commit(t, m, 1, res, &err), 0);
	assert_int_equal(res[0].status, DELIVER_FAILED);
	assert_int_equal(res[0].why->category, PF_FAIL_TEMP);
	deliver_results_free(res, 1);
	deliver_free(&m[0]);
	deliver_close(&t);
}

/* A command that cannot be run: PF_FAIL_CONFIG for it and for every
 * later message of the batch, which are not tried at all. */
static void
test_not_runnable(void **state)
{
	struct fixture *f = *state;
	char cmd[PATH_MAX + 128];
	struct deliver *t;
	struct deliver_msg *m[3];
	struct deliver_result res[3];
	struct deliver_label l = { .timeout = 30 };
	struct pf_error err;
	size_t i;

	test_pathf(cmd, sizeof(cmd), "echo run >> '%s'; "
	    "exec /nonexistent/popfetch-mda", f->ran);
	t = open_mda(cmd);
	for (i = 0; i < 3; i++)
		m[i] = message(t, msg1, strlen(msg1), 100, &l);
	assert_int_equal(deliver_commit(t, m, 3, res, &err), 0);
	for (i = 0; i < 3; i++) {
		assert_int_equal(res[i].status, DELIVER_FAILED);
		assert_int_equal(res[i].why->category, PF_FAIL_CONFIG);
		assert_non_null(strstr(res[i].why->what, "cannot be run"));
	}
	assert_int_equal(lines_in(f->ran), 1);	/* the first one only */
	deliver_results_free(res, 3);
	for (i = 0; i < 3; i++)
		deliver_free(&m[i]);
	/* The group commit hands an MDA one message at a time: a later
	 * commit on the same target is refused the same way, untried. */
	m[0] = message(t, msg1, strlen(msg1), 100, &l);
	assert_int_equal(deliver_commit(t, m, 1, res, &err), 0);
	assert_int_equal(res[0].status, DELIVER_FAILED);
	assert_int_equal(res[0].why->category, PF_FAIL_CONFIG);
	assert_int_equal(lines_in(f->ran), 1);
	deliver_results_free(res, 1);
	deliver_free(&m[0]);
	deliver_close(&t);
}

/* A message over SPOOL_MEM goes through the file spool, byte-exact. */
static void
test_big_message(void **state)
{
	struct fixture *f = *state;
	size_t len = SPOOL_MEM + SPOOL_MEM / 3 + 5, i, got;
	char *data = malloc(len), *s;
	static const char id[] = "ffffffffffffffffffffffffffffffff@popfetch";
	struct deliver_label l = { .id = id, .timeout = 60 };
	struct deliver *t = open_mda(f->cmd);
	struct deliver_msg *m;
	struct deliver_result res;
	struct pf_error err;
	size_t hlen = strlen("X-Popfetch-Id: ") + strlen(id) + 1;

	assert_non_null(data);
	for (i = 0; i < len; i++)
		data[i] = (char)(i % 71 == 70 ? '\n' : '!' + (i * 31) % 90);
	m = message(t, data, len, 65536, &l);
	assert_int_equal(deliver_size(m), len);
	assert_int_equal(deliver_commit(t, &m, 1, &res, &err), 0);
	assert_int_equal(res.status, DELIVER_PLACED);
	s = slurp(f->out, &got);
	assert_int_equal(got, hlen + len);
	assert_memory_equal(s, "X-Popfetch-Id: ", 15);
	assert_memory_equal(s + 15, id, strlen(id));
	assert_int_equal(s[hlen - 1], '\n');
	assert_memory_equal(s + hlen, data, len);
	free(s);
	deliver_free(&m);
	deliver_close(&t);
	free(data);
}

/* Recovery cannot ask an MDA: nothing is ever found, nothing cleaned. */
static void
test_find_clean(void **state)
{
	struct fixture *f = *state;
	struct deliver *t = open_mda(f->cmd);
	const char *locs[3] = { "mda", "0123@popfetch", "" };
	bool found[3] = { true, true, true };
	size_t removed = 99;
	struct pf_error err;

	assert_int_equal(deliver_find(t, locs, 3, found, &err), 0);
	assert_false(found[0]);
	assert_false(found[1]);
	assert_false(found[2]);
	assert_int_equal(deliver_clean(t, &removed, &err), 0);
	assert_int_equal(removed, 0);
	assert_int_equal(deliver_clean(t, NULL, &err), 0);
	deliver_close(&t);
	assert_int_equal(lines_in(f->ran), 0);
}

/* Calls out of order are PF_FAIL_INTERNAL: a commit of an unfinished
 * message runs nothing, a write after finish fails. */
static void
test_out_of_order(void **state)
{
	struct fixture *f = *state;
	struct deliver *t = open_mda(f->cmd);
	struct deliver_msg *m = NULL, *done;
	struct deliver_result res;
	struct pf_error err;

	assert_int_equal(deliver_begin(t, &m, &err), 0);
	assert_int_equal(deliver_write(m, "x\n", 2, &err), 0);
	assert_int_equal(deliver_commit(t, &m, 1, &res, &err), -1);
	assert_int_equal(err.category, PF_FAIL_INTERNAL);
	assert_int_equal(lines_in(f->ran), 0);
	deliver_free(&m);
	done = message(t, "x\n", 2, 2, NULL);
	assert_int_equal(deliver_write(done, "y", 1, &err), -1);
	assert_int_equal(err.category, PF_FAIL_INTERNAL);
	deliver_free(&done);
	deliver_close(&t);
}

/* A recorded target: "mda:" is the MDA backend's, a path the Maildir's. */
static void
test_open_recorded(void **state)
{
	struct fixture *f = *state;
	struct deliver *t = NULL;
	struct pf_error err;
	char md[PATH_MAX];

	assert_int_equal(deliver_open_recorded("mda:", &t, &err), 0);
	assert_non_null(t);
	assert_ptr_equal(t->be, &deliver_mda);
	assert_string_equal(deliver_target(t), "mda:");
	deliver_close(&t);

	test_pathf(md, sizeof(md), "%s/Mail", f->dir);
	assert_int_equal(deliver_open("maildir", md, DELIVER_CREATE, &t, &err),
	    0);
	deliver_close(&t);
	assert_int_equal(deliver_open_recorded(md, &t, &err), 0);
	assert_non_null(t);
	assert_ptr_equal(t->be, &deliver_maildir);
	assert_string_equal(deliver_target(t), md);
	deliver_close(&t);

	/* A recorded Maildir that is gone: no target, no error. */
	test_pathf(md, sizeof(md), "%s/Gone", f->dir);
	assert_int_equal(deliver_open_recorded(md, &t, &err), 0);
	assert_null(t);
}

#define T(fn)	\
	cmocka_unit_test_setup_teardown(fn, setup, test_fixture_teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_hand_over),
		T(test_unlabelled),
		T(test_refused),
		T(test_not_runnable),
		T(test_big_message),
		T(test_find_clean),
		T(test_out_of_order),
		T(test_open_recorded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
