/*
 * fsutil.h - durable directory creation, for every store/ file that makes
 * a directory (the Maildir and its parents, the state directory).
 *
 * Used error categories: PF_FAIL_IO (74), naming the call and the path:
 * "mkdir(/home/a/Mail): Permission denied".
 */
#ifndef POPFETCH_FSUTIL_H
#define POPFETCH_FSUTIL_H

#include <sys/types.h>

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

#endif
