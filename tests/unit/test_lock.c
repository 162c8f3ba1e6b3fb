/* test_lock.c - one popfetch per account: the flock in state_dir. */
#include "config.h"

#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
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
#include "lock.h"
#include "testutil.h"

/* The lock belongs to the account's name (doc/DESIGN.md §2); user, host
 * and port play no part. */
#define ACCOUNT	"work"

struct fixture {
	char	 dir[PATH_MAX];		/* first (test_fixture_new) */
	char	 state[PATH_MAX];	/* dir/a/state: does not exist yet */
};

static int
setup(void **state)
{
	struct fixture *f = test_fixture_new(sizeof(*f), "test_lock");

	if (f == NULL)
		return -1;
	test_pathf(f->state, sizeof(f->state), "%s/a/state", f->dir);
	*state = f;
	return 0;
}

/*
 * A child that takes the lock, says so on a pipe, then waits until the
 * parent closes *go_r (it then releases, if asked, and exits 0) or kills it.
 */
static pid_t
spawn_holder(const struct fixture *f, bool release, int *go_r)
{
	int ready[2], go[2];
	pid_t pid;
	char c;

	assert_int_equal(pipe(ready), 0);
	assert_int_equal(pipe(go), 0);
	pid = test_fork();
	if (pid == 0) {
		struct pf_lock *lock = NULL;
		struct pf_error err;

		close(ready[0]);
		close(go[1]);
		if (lock_acquire(f->state, ACCOUNT, &lock, &err) == -1)
			_exit(1);
		if (write(ready[1], "L", 1) != 1)
			_exit(2);
		while (read(go[0], &c, 1) == -1 && errno == EINTR)
			continue;
		if (release)
			lock_release(&lock);
		_exit(0);
	}
	close(ready[1]);
	close(go[0]);
	assert_int_equal(read(ready[0], &c, 1), 1);
	close(ready[0]);
	*go_r = go[1];
	return pid;
}

static void
test_second_process_fails_at_once(void **state)
{
	struct fixture *f = *state;
	struct pf_lock *lock = NULL, *other = NULL;
	struct pf_error err;
	char want[256];
	pid_t pid;
	int go;

	pid = spawn_holder(f, true, &go);
	assert_int_equal(lock_acquire(f->state, ACCOUNT, &lock, &err), -1);
	assert_null(lock);
	assert_int_equal(err.category, PF_FAIL_TEMP);
	snprintf(want, sizeof(want), "account work is being fetched by "
	    "another popfetch (pid %ld)", (long)pid);
	assert_string_equal(err.what, want);
	/* Another account is free, even one on the same user@host (two
	 * tunnels on localhost, one user name: two mailboxes), and holding
	 * it does not stand in the way of the first one's release below. */
	assert_int_equal(lock_acquire(f->state, "work-tunnel", &other, &err),
	    0);
	assert_non_null(other);

	/* Let the holder release and exit. */
	close(go);
	test_wait_exit(pid, 0);
	assert_int_equal(lock_acquire(f->state, ACCOUNT, &lock, &err), 0);
	lock_release(&lock);
	lock_release(&other);
	assert_null(other);
}

static void
test_killed_holder_releases(void **state)
{
	struct fixture *f = *state;
	struct pf_lock *lock = NULL;
	struct pf_error err;
	pid_t pid;
	int go;

	pid = spawn_holder(f, false, &go);
	assert_int_equal(lock_acquire(f->state, ACCOUNT, &lock, &err), -1);
	assert_int_equal(err.category, PF_FAIL_TEMP);
	assert_int_equal(kill(pid, SIGKILL), 0);
	test_wait_signal(pid, SIGKILL);
	assert_int_equal(lock_acquire(f->state, ACCOUNT, &lock, &err), 0);
	lock_release(&lock);
	close(go);
}

static void
test_same_process_and_files(void **state)
{
	struct fixture *f = *state;
	struct pf_lock *a = NULL, *b = NULL, *c = NULL;
	struct pf_error err;
	struct dirent *de;
	struct stat st;
	char path[PATH_MAX + 300], want[128], buf[64];
	DIR *d;
	int fd, n = 0;
	ssize_t len;

	assert_int_equal(lock_acquire(f->state, ACCOUNT, &a, &err), 0);
	assert_non_null(a);
	/* A second lock in this process (parallel accounts) conflicts too,
	 * and the message names the account. */
	assert_int_equal(lock_acquire(f->state, ACCOUNT, &b, &err), -1);
	assert_null(b);
	assert_int_equal(err.category, PF_FAIL_TEMP);
	snprintf(want, sizeof(want), "account work is being fetched by "
	    "another popfetch (pid %ld)", (long)getpid());
	assert_string_equal(err.what, want);
	/* Two accounts are two locks, whatever they fetch from. */
	assert_int_equal(lock_acquire(f->state, "work2", &b, &err), 0);
	assert_non_null(b);
	assert_int_equal(lock_acquire(f->state, "work2", &c, &err), -1);
	assert_int_equal(err.category, PF_FAIL_TEMP);
	assert_non_null(strstr(err.what, "account work2 "));
	lock_release(&b);

	/* state_dir and parents 0700; the lock file 0600 with our pid,
	 * named after the account. */
	assert_int_equal(test_mode_of(f->state), 0700);
	test_pathf(path, sizeof(path), "%s/lock.work", f->state);
	assert_int_equal(test_mode_of(path), 0600);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	len = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	assert_true(len > 0);
	buf[len] = '\0';
	snprintf(want, sizeof(want), "%ld\n", (long)getpid());
	assert_string_equal(buf, want);

	lock_release(&a);
	assert_null(a);
	lock_release(&a);	/* NULL is fine */
	assert_int_equal(lock_acquire(f->state, ACCOUNT, &b, &err), 0);
	lock_release(&b);

	/* An account name cannot climb out of state_dir, nor hide as a dot
	 * file; bytes outside [A-Za-z0-9._@+-] become %XX. */
	assert_int_equal(lock_acquire(f->state, "../../x/.y z", &a, &err), 0);
	lock_release(&a);
	assert_int_equal(lock_acquire(f->state, "b\xc3\xa9" "b+1@h_o-st", &a,
	    &err), 0);
	lock_release(&a);
	d = opendir(f->state);
	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		assert_int_equal(strncmp(de->d_name, "lock.", 5), 0);
		n++;
	}
	closedir(d);
	assert_int_equal(n, 4);		/* work, work2 and these two */
	test_pathf(path, sizeof(path), "%s/lock...%%2F..%%2Fx%%2F.y%%20z",
	    f->state);
	assert_int_equal(stat(path, &st), 0);
	test_pathf(path, sizeof(path), "%s/lock.b%%C3%%A9b+1@h_o-st", f->state);
	assert_int_equal(stat(path, &st), 0);
}

/* A name too long for a file name is refused, not truncated (truncating
 * could make two accounts share a lock). */
static void
test_name_too_long(void **state)
{
	struct fixture *f = *state;
	struct pf_lock *lock = NULL;
	struct pf_error err;
	char name[NAME_MAX + 2];

	memset(name, 'n', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	assert_int_equal(lock_acquire(f->state, name, &lock, &err), -1);
	assert_null(lock);
	assert_int_equal(err.category, PF_FAIL_IO);
	assert_non_null(strstr(err.what, name));
	/* Nothing else was locked or created for it. */
	assert_false(test_path_exists(f->state) &&
	    test_count_entries(f->state, ".") != 0);
}

static void
test_unwritable_state_dir(void **state)
{
	struct fixture *f = *state;
	struct pf_lock *lock = NULL;
	struct pf_error err;
	char path[PATH_MAX + 16];

	/* state_dir's parent is a file. */
	test_pathf(path, sizeof(path), "%s/file", f->dir);
	assert_int_equal(test_write_file(path, O_CREAT, "", 0), 0);
	test_pathf(path, sizeof(path), "%s/file/state", f->dir);
	assert_int_equal(lock_acquire(path, ACCOUNT, &lock, &err), -1);
	assert_null(lock);
	assert_int_equal(err.category, PF_FAIL_IO);
}

/* Each case runs in a fresh directory. */
/* The lock file says who holds it: the pid alone, whatever a longer
 * content (another process's pid, junk) was there before. */
static void
test_pid_replaces_longer_content(void **state)
{
	struct fixture *f = *state;
	struct pf_lock *l = NULL;
	struct pf_error err;
	char path[PATH_MAX + 16], want[32], got[64];
	ssize_t n;
	int fd;

	assert_int_equal(mkdir(f->dir, 0700) == 0 || errno == EEXIST, 1);
	test_pathf(path, sizeof(path), "%s/a", f->dir);
	assert_int_equal(mkdir(path, 0700), 0);
	assert_int_equal(mkdir(f->state, 0700), 0);
	test_pathf(path, sizeof(path), "%s/lock.%s", f->state, ACCOUNT);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "123456789012345\nold junk\n", 25), 25);
	close(fd);

	assert_int_equal(lock_acquire(f->state, ACCOUNT, &l, &err), 0);
	snprintf(want, sizeof(want), "%ld\n", (long)getpid());
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	n = read(fd, got, sizeof(got) - 1);
	close(fd);
	assert_true(n >= 0);
	got[n] = '\0';
	assert_string_equal(got, want);
	lock_release(&l);
}

#define T(fn)	\
	cmocka_unit_test_setup_teardown(fn, setup, test_fixture_teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_second_process_fails_at_once),
		T(test_killed_holder_releases),
		T(test_same_process_and_files),
		T(test_name_too_long),
		T(test_unwritable_state_dir),
		T(test_pid_replaces_longer_content),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
