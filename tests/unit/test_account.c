/*
 * test_account.c - what an account's configuration means to a run
 * (fetcher/account.c, compiled in): its identity among all accounts, its
 * delivery target, and which listed messages it fetches, skips and
 * deletes, against a real seen-list in a fresh directory per test.
 */
#include "config.h"

#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "account.h"
#include "deliver.h"
#include "error.h"
#include "seen.h"
#include "testutil.h"

struct fixture {
	char	 dir[PATH_MAX];		/* first (test_fixture_new) */
	char	 state[PATH_MAX];	/* dir/state */
};

static int
setup(void **state)
{
	struct fixture *f = test_fixture_new(sizeof(*f), "test_account");

	if (f == NULL)
		return -1;
	test_pathf(f->state, sizeof(f->state), "%s/state", f->dir);
	*state = f;
	return 0;
}

/* Three accounts, as conf_load would give them. */
static struct conf_account accts[3] = {
	{ .name = "home", .host = "pop.home.example", .port = 995,
	  .user = "me", .maildir = "/m/home" },
	{ .name = "work", .host = "pop.work.example", .port = 110,
	  .user = "alice", .maildir = "/m/work" },
	{ .name = "list", .host = "pop.home.example", .port = 995,
	  .user = "lists", .maildir = "/m/list" },
};
static const struct conf conf = { .naccounts = 3, .accounts = accts };

/* A seen-list of account "work" holding `uidls`, each fetched at `when`. */
static struct seen *
seen_with(const struct fixture *f, const char *const *uidls, size_t n,
    const time_t *when)
{
	struct seen_owner *owners = NULL;
	struct seen_entry e[8];
	bool yes[8];
	struct seen_who who;
	struct pf_error err;
	struct seen *s = NULL;
	size_t i;

	assert_true(n <= 8);
	owners = account_owners(&conf);
	account_who(&conf, owners, &accts[1], &who);
	if (seen_open(f->state, &who, SEEN_READ_WRITE, &s, &err) == -1)
		fail_msg("seen_open: %s", err.what);
	free(owners);
	for (i = 0; i < n; i++) {
		e[i] = (struct seen_entry){ .uidl = uidls[i],
		    .location = "1.M1P1Q1.h,S=1", .target = "/m/work",
		    .size = 1, .fetched = when[i] };
		yes[i] = true;
	}
	if (n > 0 && (seen_pending_add(s, e, n, &err) == -1 ||
	    seen_pending_resolve(s, e, n, yes, &err) == -1))
		fail_msg("recording: %s", err.what);
	return s;
}

static void
test_who(void **state)
{
	struct seen_owner *owners = NULL;
	struct seen_who who;
	struct conf_account copy;
	size_t i, j;

	(void)state;
	for (j = 0; j < 3; j++) {
		owners = account_owners(&conf);
		account_who(&conf, owners, &accts[j], &who);
		assert_ptr_equal(who.all, owners);
		assert_int_equal(who.n, 3);
		assert_int_equal(who.self, j);
		for (i = 0; i < 3; i++) {
			assert_string_equal(who.all[i].account, accts[i].name);
			assert_string_equal(who.all[i].user, accts[i].user);
			assert_string_equal(who.all[i].host, accts[i].host);
			assert_int_equal(who.all[i].port, accts[i].port);
		}
		free(owners);
	}
	/* Found by name, not by pointer (the run may hold a copy). */
	copy = accts[2];
	copy.name = strdup("list");
	assert_non_null(copy.name);
	owners = account_owners(&conf);
	account_who(&conf, owners, &copy, &who);
	assert_int_equal(who.self, 2);
	free(owners);
	free(copy.name);
}

static void
test_target(void **state)
{
	struct fixture *f = *state;
	struct conf_account a = accts[1];
	struct deliver *t = NULL;
	struct pf_error err;
	const char *kind = NULL;
	char md[PATH_MAX];

	assert_ptr_equal(account_target(&a, &kind), a.maildir);
	assert_string_equal(kind, "maildir");

	/* The kind names a backend the seam knows. */
	test_pathf(md, sizeof(md), "%s/Mail", f->dir);
	a.maildir = md;
	assert_string_equal(account_target(&a, &kind), md);
	assert_int_equal(deliver_open(kind, account_target(&a, &kind),
	    DELIVER_CREATE, &t, &err), 0);
	assert_non_null(t);
	assert_string_equal(deliver_target(t), md);
	deliver_close(&t);
	assert_int_equal(test_count_entries(md, "new"), 0);

	/* An mda account has no Maildir (maildir NULL): the target is the
	 * command, never a NULL path. */
	a.maildir = NULL;
	a.mda = "lda -e";
	assert_string_equal(account_target(&a, &kind), "lda -e");
	assert_string_equal(kind, "mda");
}

/* A listing of `n` messages numbered 1..n with these UIDLs and sizes. */
static struct pop3_listing *
listing(const char *const *uidls, const uint64_t *sizes, size_t n)
{
	static struct pop3_msg msgs[16];
	static struct pop3_listing l;
	static struct strpool *pool;	/* the last listing's strings */
	size_t i;

	assert_true(n <= 16);
	strpool_free(&pool);
	pool = strpool_new();
	for (i = 0; i < n; i++) {
		msgs[i] = (struct pop3_msg){ .number = (unsigned)i + 1 };
		msgs[i].size = sizes != NULL ? sizes[i] : 100;
		if (uidls[i] != NULL)
			pop3_msg_set_uidl(&msgs[i], uidls[i],
			    strlen(uidls[i]), pool);
		msgs[i].known = false;
		msgs[i].fetch = false;
	}
	l.msgs = msgs;
	l.count = n;
	l.has_uidl = true;
	l.sizes_known = sizes != NULL;
	return &l;
}

/* The listing's fetch marks as a string of 0 and 1, one per message. */
static const char *
marks(const struct pop3_listing *l)
{
	static char buf[17];
	size_t i;

	for (i = 0; i < l->count && i < 16; i++)
		buf[i] = l->msgs[i].fetch ? '1' : '0';
	buf[i] = '\0';
	return buf;
}

static void
test_unseen(void **state)
{
	struct fixture *f = *state;
	static const char *const known[] = { "u2", "u4" };
	static const time_t when[] = { 1000, 1000 };
	static const char *const listed[] = { "u1", "u2", NULL, "u4", "u5" };
	struct pop3_listing *l = listing(listed, NULL, 5);
	struct seen *s = seen_with(f, known, 2, when);
	struct pf_error err;

	/* Nothing marked known yet: all of them. */
	assert_int_equal(account_unseen(l), 5);
	assert_string_equal(marks(l), "11111");

	/* Seen ones are not marked (and a mark from before is cleared); one
	 * without UIDL is. */
	assert_int_equal(account_mark_known(l, s, &err), 0);
	assert_false(l->msgs[0].known);
	assert_true(l->msgs[1].known);
	assert_false(l->msgs[2].known);
	assert_true(l->msgs[3].known);
	assert_false(l->msgs[4].known);
	assert_int_equal(account_unseen(l), 3);
	assert_string_equal(marks(l), "10101");

	/* No seen-list: none known. */
	l = listing(listed, NULL, 5);
	assert_int_equal(account_mark_known(l, NULL, &err), 0);
	assert_int_equal(account_unseen(l), 5);

	/* An empty listing: none. */
	l = listing(listed, NULL, 0);
	assert_int_equal(account_mark_known(l, s, &err), 0);
	assert_int_equal(account_unseen(l), 0);
	seen_close(&s);
}

static void
test_limit(void **state)
{
	static const char *const u[] = { "a", "b", "c", "d", "e", "f" };
	static const uint64_t sizes[] = { 5000, 10, 1000, 5001, 30, 40 };
	struct conf_account a = accts[1];
	struct pop3_listing *l = listing(u, sizes, 6);
	unsigned long skipped;
	size_t i;

	(void)state;
#define RESET()	do {						\
	for (i = 0; i < 6; i++)					\
		l->msgs[i].fetch = true;			\
	skipped = 7;						\
} while (0)
	/* No limits: all kept, none counted. */
	RESET();
	assert_int_equal(account_limit(&a, l, false, &skipped), 6);
	assert_int_equal(skipped, 7);
	assert_string_equal(marks(l), "111111");

	/* max_size: over it is skipped and counted; at it is kept. */
	RESET();
	a.max_size = 1000;
	assert_int_equal(account_limit(&a, l, true, &skipped), 4);
	assert_int_equal(skipped, 7 + 2);
	assert_string_equal(marks(l), "011011");

	/* max_messages: the first N in order, the rest counted. */
	RESET();
	a.max_size = 0;
	a.max_messages = 2;
	assert_int_equal(account_limit(&a, l, false, &skipped), 2);
	assert_int_equal(skipped, 7 + 4);
	assert_string_equal(marks(l), "110000");

	/* Both: one skipped for its size does not take a place. */
	RESET();
	a.max_size = 1000;
	a.max_messages = 3;
	assert_int_equal(account_limit(&a, l, false, &skipped), 3);
	assert_int_equal(skipped, 7 + 3);
	assert_string_equal(marks(l), "011010");

	/* Only the marked ones count: an unmarked one takes no place. */
	RESET();
	l->msgs[1].fetch = false;
	assert_int_equal(account_limit(&a, l, false, &skipped), 3);
	assert_int_equal(skipped, 7 + 2);
	assert_string_equal(marks(l), "001011");

	/* Nothing to limit. */
	RESET();
	for (i = 0; i < 6; i++)
		l->msgs[i].fetch = false;
	assert_int_equal(account_limit(&a, l, false, &skipped), 0);
	assert_int_equal(skipped, 7);
#undef RESET
}

/* account_select: the unseen ones, then the limits. */
static void
test_select(void **state)
{
	struct fixture *f = *state;
	static const char *const known[] = { "b" };
	static const time_t when[] = { 1 };
	static const char *const u[] = { "a", "b", "c", "d", "e" };
	static const uint64_t sizes[] = { 10, 20, 99999, 40, 50 };
	struct conf_account a = accts[1];
	struct pop3_listing *l = listing(u, sizes, 5);
	struct seen *s = seen_with(f, known, 1, when);
	unsigned long skipped = 0;

	struct pf_error err;

	a.max_size = 1000;
	a.max_messages = 2;
	assert_int_equal(account_mark_known(l, s, &err), 0);
	assert_int_equal(account_select(&a, l, false, &skipped), 2);
	assert_string_equal(marks(l), "10010");
	/* c (size) and e (count); b is seen, not skipped. */
	assert_int_equal(skipped, 2);
	seen_close(&s);
}

static void
test_want_delete(void **state)
{
	struct fixture *f = *state;
	const time_t now = 1700000000, day = 86400;
	static const char *const known[] = { "old", "young", "edge" };
	const time_t when[] = { now - 4 * day, now - 2 * day, now - 3 * day };
	static const char *const u[] = { "old", "young", "edge", "unknown" };
	struct pop3_listing *l = listing(u, NULL, 4);
	struct conf_account a = accts[1];
	struct pop3_msg nouidl = { .number = 9, .size = 1 };
	struct seen *s = seen_with(f, known, 3, when);
	size_t i;

	/* Keep mode: nothing, however old. */
	for (i = 0; i < 4; i++)
		assert_false(account_want_delete(&a, s, &l->msgs[i], now));

	/* delete = true: everything (even without a seen-list or UIDL). */
	a.delete = true;
	for (i = 0; i < 4; i++)
		assert_true(account_want_delete(&a, s, &l->msgs[i], now));
	assert_true(account_want_delete(&a, NULL, &l->msgs[0], now));
	assert_true(account_want_delete(&a, s, &nouidl, now));

	/* delete_after_days = 3: fetched 3 days ago or more. */
	a.delete = false;
	a.delete_after_days = 3;
	assert_true(account_want_delete(&a, s, &l->msgs[0], now));
	assert_false(account_want_delete(&a, s, &l->msgs[1], now));
	assert_true(account_want_delete(&a, s, &l->msgs[2], now));
	assert_false(account_want_delete(&a, s, &l->msgs[2], now - 1));
	assert_false(account_want_delete(&a, s, &l->msgs[3], now));
	/* Two days later the young one is due too. */
	assert_true(account_want_delete(&a, s, &l->msgs[1], now + 2 * day));
	assert_false(account_want_delete(&a, NULL, &l->msgs[0], now));
	/* Without a UIDL there is no fetch date to go by. */
	assert_false(account_want_delete(&a, s, &nouidl, now));
	seen_close(&s);
}

#define T(fn)	\
	cmocka_unit_test_setup_teardown(fn, setup, test_fixture_teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_who),
		T(test_target),
		T(test_unseen),
		T(test_limit),
		T(test_select),
		T(test_want_delete),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
