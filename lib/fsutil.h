/*
 * fsutil.h - durable directory creation, for every store/ file that makes
 * a directory (the Maildir and its parents, the state directory), and the
 * one way a private file (OAuth2 tokens, a TLS session) is replaced.
 *
 * Used error categories: PF_FAIL_IO (74), naming the call and the path:
 * "mkdir(/home/a/Mail): Permission denied".
 */
#ifndef POPFETCH_FSUTIL_H
#define POPFETCH_FSUTIL_H

#include <sys/types.h>

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

/*
 * Create the directory `path` and its missing parents, mode 0700, fsyncing
 * each parent that gained an entry so that the new directory survives a
 * power loss.  Existing directories are left as they are.  Returns 0, or -1
 * with err set (PF_FAIL_IO).
 */
int	pf_mkdirs(const char *path, struct pf_error *err);

/*
 * fsync the directory at `path`, so that entries added to it survive a
 * power loss; file systems that cannot sync a directory (EINVAL) have
 * nothing more to do.  Returns 0, or -1 with err set (PF_FAIL_IO).
 */
int	pf_fsync_dir(const char *path, struct pf_error *err);

/*
 * The user name of `uid` from the password database, or the number when
 * it has none, into buf; returns buf.  For the "run: chown USER FILE"
 * advice of the files that must be private (configuration, OAuth2
 * tokens).
 */
const char *pf_uid_name(uid_t uid, char *buf, size_t size);

/*
 * Replace the file `path` (in directory `dir`) with len bytes of buf, as a
 * whole: a temporary file PATH.XXXXXX made with mode 0600 (so a secret is
 * never readable by anyone else, not even for a moment), written, renamed
 * over path.  With `durable`, the file is fsynced before the rename and
 * `dir` after it, so the new content survives a power loss; without, a
 * crash may leave the old file, an empty one or a stray PATH.XXXXXX (for
 * files whose loss costs nothing).  Errors name `what` and the file:
 * "token file /s/oauth2.work.Ab12Cd: No space left on device".  Returns
 * 0, or -1 with err set (PF_FAIL_IO) and no temporary file left.
 */
int	pf_replace_private(const char *dir, const char *path, const void *buf,
	    size_t len, bool durable, const char *what, struct pf_error *err);

#endif
