/*
 * lock.h - one popfetch per account (doc/DESIGN.md §2).
 *
 * An exclusive flock(2) on state_dir/lock.<account name>, with unsafe bytes
 * of the name escaped as %XX.  The lock belongs to the account, like its
 * seen-list: two accounts never share one, whatever their host, port and
 * user (two tunnels on localhost with one user name are two mailboxes).  The
 * kernel drops the lock when the process dies, however it dies, so a
 * killed run never leaves a stale lock behind.  The holder's pid is written
 * into the file for the second process's message.  The file itself stays:
 * removing it would let two processes lock two different files.
 *
 * Used error categories: PF_FAIL_TEMP (75) when another process holds the
 * lock; PF_FAIL_IO (74) when the state directory or lock file cannot be
 * created or written (or the key makes a file name too long).
 */
#ifndef POPFETCH_LOCK_H
#define POPFETCH_LOCK_H

#include "error.h"

struct pf_lock;

/*
 * Take the lock of account `account`, creating state_dir (0700, with
 * parents) and the lock file (0600) if needed.  Never waits: if another
 * process (or another lock_acquire in this one) holds it, fails at once with
 * PF_FAIL_TEMP "account NAME is being fetched by another popfetch (pid N)".
 * On success *lock_r is set (release with lock_release) and 0 is returned.  The lock file descriptor is close-on-exec, so commands we run
 * (password_command) do not inherit the lock.
 */
int	lock_acquire(const char *state_dir, const char *account,
	    struct pf_lock **lock_r, struct pf_error *err);

/* Release the lock and clear *lock_r; NULL is fine. */
void	lock_release(struct pf_lock **lock_r);

#endif
