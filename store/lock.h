/*
 * lock.h - one popfetch per mailbox (SPEC §5.6).
 *
 * An exclusive flock(2) on state_dir/lock.<mailbox key>, where the key is
 * "user@host" (see seen_mailbox_key) with unsafe bytes escaped as %XX.  The
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
 * Take the lock of mailbox user@host, creating state_dir (0700, with
 * parents) and the lock file (0600) if needed.  Never waits: if another
 * process (or another lock_acquire in this one) holds it, fails at once with
 * PF_FAIL_TEMP "mailbox USER@HOST is being fetched by another popfetch
 * (pid N)".  On success *lock_r is set (release with lock_release) and 0 is
 * returned.  The lock file descriptor is close-on-exec, so commands we run
 * (password_command) do not inherit the lock.
 */
int	lock_acquire(const char *state_dir, const char *user, const char *host,
	    struct pf_lock **lock_r, struct pf_error *err);

/* Release the lock and clear *lock_r; NULL is fine. */
void	lock_release(struct pf_lock **lock_r);

#endif
