/*
 * resume.h - an account's TLS session file (doc/DESIGN.md §12).
 *
 * state_dir/tls-session.NAME holds one opaque blob (the fetcher's
 * serialised TLS session: it contains the resumption secret) tagged with a
 * 32-byte key, the caller's digest of every setting that decides whom the
 * session may be used with.  The file lives here, next to the account's
 * lock and seen-list, because it is account state (named by the account,
 * like the lock: two accounts never share one); what the blob and the key
 * mean is the fetcher's business (fetcher/session.c, fetcher/tls.c), so
 * no TLS type appears here.
 *
 * Losing the file only costs a full handshake, so it is written without
 * fsync (a run that fetched nothing adds no sync).  The first save makes
 * it (a temporary file, 0600, renamed); later ones write over it in place
 * (no new inode), which is safe because only runs holding the account's
 * lock read or write it, and a file torn by a crash fails its check.
 * Anything unexpected when reading (no file, another
 * key, a wrong length or checksum, a file that is not ours or not private)
 * means "no session": never an error.
 */
#ifndef POPFETCH_RESUME_H
#define POPFETCH_RESUME_H

#include <stddef.h>

#include "error.h"

#define RESUME_KEY_LEN	32

/*
 * Load the blob stored for `account` under `key`.  Returns 0 with *blob_r
 * (malloc'ed; the caller clears and frees it) and *len_r set, or -1 with a
 * short reason for a debug line in why ("no session file", "TLS settings
 * changed", "corrupt: ...").
 */
int	resume_load(const char *state_dir, const char *account,
	    const unsigned char key[RESUME_KEY_LEN], unsigned char **blob_r,
	    size_t *len_r, char *why, size_t whysize);

/*
 * Replace the account's file with `blob` under `key`: written over a
 * private regular file of ours, else a temporary file (mode 0600) in
 * state_dir, written, renamed; no fsync.  The caller holds the account's
 * lock.  Returns 0, or -1 with err set (PF_FAIL_IO); the old file is then
 * left as it was, or torn (refused by resume_load).
 */
int	resume_save(const char *state_dir, const char *account,
	    const unsigned char key[RESUME_KEY_LEN], const unsigned char *blob,
	    size_t len, struct pf_error *err);

/* Remove the account's file, if any (a failed verification, tls_resume =
 * false).  Returns true if there was one. */
bool	resume_remove(const char *state_dir, const char *account);

/* The file's name for `account` ("tls-session.NAME") into buf; -1 if it
 * does not fit.  For tests and the documentation's sake. */
int	resume_path(const char *state_dir, const char *account, char *buf,
	    size_t size);

#endif
