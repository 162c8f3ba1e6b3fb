/*
 * testutil.h - small helpers shared by the cmocka unit tests: temporary
 * directories, bounded paths, files, directory listings, child processes
 * and a clock.
 *
 * Functions that return a status (0, or -1 with errno set) never fail the
 * test themselves, so cmocka setup functions and forked children can use
 * them; those that return nothing fail the current test with a cmocka
 * assertion instead.  test_pathf() aborts the process, which works
 * everywhere.  No function keeps a pointer to its arguments.
 */
#ifndef TESTUTIL_H
#define TESTUTIL_H

#include <sys/types.h>

#include <stdbool.h>
#include <stddef.h>

/* snprintf into buf that aborts the process instead of truncating. */
void	 test_pathf(char *buf, size_t size, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));

/*
 * Make a new, empty directory "$TMPDIR/<name>.XXXXXX" (/tmp when TMPDIR is
 * unset or empty) and put its path in buf.  Returns 0, or -1 (with a
 * diagnostic on stderr) when the path does not fit or mkdtemp fails.
 */
int	 test_mkdtemp(char *buf, size_t size, const char *name);

/*
 * Remove path and everything below it, without following symbolic links.
 * Returns 0, or -1 with a diagnostic on stderr when something stays.
 */
int	 test_rmtree(const char *path);

/*
 * For tests that each run in a fresh directory: a fixture struct whose
 * first member is `char dir[PATH_MAX]`.  test_fixture_new() sets the umask
 * to 022 (so that modes are predictable), allocates `size` zeroed bytes
 * and makes dir a new directory (test_mkdtemp with `name`); it returns the
 * struct for the caller to free, or NULL.  test_fixture_teardown() is the
 * matching cmocka teardown: it removes the tree and frees the struct in
 * *state.
 */
void	*test_fixture_new(size_t size, const char *name);
int	 test_fixture_teardown(void **state);

/* The number of entries besides "." and ".." in dir/sub; -1 if it cannot
 * be opened. */
int	 test_count_entries(const char *dir, const char *sub);

/* Does path exist (as anything, a dangling link too)? */
bool	 test_path_exists(const char *path);

/* The permission bits (07777) of path, following links; (mode_t)-1 if it
 * cannot be stat'ed. */
mode_t	 test_mode_of(const char *path);

/*
 * Write len bytes of data to path, opened O_WRONLY | flags (a new file gets
 * mode 0600 before the umask).  flags may be 0 for a file that must exist
 * (/proc), O_CREAT, O_CREAT | O_EXCL, O_CREAT | O_TRUNC, O_APPEND...
 * Returns 0, or -1 with errno set.
 */
int	 test_write_file(const char *path, int flags, const void *data,
	    size_t len);

/* Play the mail reader: rename md/new/name to md/cur/<name><info>, and fail
 * the test if that does not work. */
void	 test_mail_read(const char *md, const char *name, const char *info);

/* fork(2) after flushing stdio (no output is written twice); fails the test
 * if fork fails.  Returns the child's pid in the parent, 0 in the child. */
pid_t	 test_fork(void);

/* Reap the child pid and fail the test unless it exited with `code`. */
void	 test_wait_exit(pid_t pid, int code);

/* Reap the child pid and fail the test unless signal `sig` killed it. */
void	 test_wait_signal(pid_t pid, int sig);

/* Seconds on the monotonic clock, for measuring how long a call took. */
double	 test_now(void);

#endif /* TESTUTIL_H */
