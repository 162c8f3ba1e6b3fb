/*
 * maildir.h - Maildir delivery (tmp/ -> new/) and recovery of what an
 * interrupted run left behind: the first backend of the delivery seam
 * (deliver.h; the run uses it only through that).  The order of
 * operations that makes a delivery exactly once is doc/DESIGN.md §3.
 *
 * Used error categories: PF_FAIL_IO (74) for every file-system failure,
 * including a path too long and a disk that is full; PF_FAIL_INTERNAL (70)
 * for calls made in the wrong order.  Messages name the call and the file:
 * "write(/home/a/Mail/tmp/1732.M5P7Q1.box,popfetch): No space left on device".
 *
 * store/ knows nothing about POP3: a message is a stream of bytes, already
 * dot-unstuffed and with LF line endings, that the caller writes.
 */
#ifndef POPFETCH_MAILDIR_H
#define POPFETCH_MAILDIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

struct maildir;
struct maildir_delivery;

/*
 * Create the Maildir at `path` with tmp/, new/ and cur/ (and missing
 * parents), all mode 0700.  An existing Maildir is fine and left as is.
 * Returns 0, or -1 with err set (PF_FAIL_IO).
 */
int	maildir_create(const char *path, struct pf_error *err);

/*
 * Open an existing Maildir for delivery: its tmp/, new/ and cur/ must exist.
 * `path` is copied.  On success *md_r is set (free with maildir_close) and 0
 * is returned; otherwise -1 with err set (PF_FAIL_IO).
 */
int	maildir_open(const char *path, struct maildir **md_r,
	    struct pf_error *err);

/* Close a Maildir and clear *md_r; NULL is fine.  Every delivery begun on it
 * must have been freed first. */
void	maildir_close(struct maildir **md_r);

/* The Maildir's path as given to maildir_open (valid until maildir_close). */
const char *maildir_path(const struct maildir *md);

/*
 * Start delivering one message under a unique tmp/ name; its file there
 * (O_CREAT|O_EXCL, mode 0600) is created once the message outgrows
 * MAILDIR_WRITE_BUF, or else by a sync thread after maildir_deliver_finish.
 * The delivery belongs to the caller, who ends it with
 * maildir_delivery_free (see there).  md must outlive it.  Returns 0, or
 * -1 with err set (PF_FAIL_INTERNAL: name too long).
 */
int	maildir_deliver_begin(struct maildir *md, struct maildir_delivery **d_r,
	    struct pf_error *err);

/*
 * Append `len` bytes of message data.  Data is buffered and written in
 * chunks of MAILDIR_WRITE_BUF; every write is checked.  On failure (disk
 * full, quota: PF_FAIL_IO naming write() and the file) the tmp file is
 * removed at once and every later call on the delivery fails too.
 */
int	maildir_deliver_write(struct maildir_delivery *d, const void *buf,
	    size_t len, struct pf_error *err);

/*
 * The message is complete: flush the tmp file, fix its final name
 * "time.M<usec>P<pid>Q<n>.<host>,S=<size>", and hand the file to the
 * Maildir's sync threads, which write, fsync and close it (close is
 * checked: NFS and quotas report there) while the caller receives the next
 * message; on a local file system a small message's file is not fsynced
 * there, maildir_commit makes its batch durable with one syncfs instead.
 * The file stays in tmp/ until maildir_commit, which waits for it.
 * On failure the tmp file is removed (PF_FAIL_IO); a failed fsync or close
 * is reported by maildir_commit instead.  The threads start at the first
 * call and stop in maildir_close; if none can start, the fsync and close
 * happen here.
 */
int	maildir_deliver_finish(struct maildir_delivery *d,
	    struct pf_error *err);

/* After a successful maildir_deliver_finish: the final file name (no
 * directory), valid until the delivery is freed, and the size in bytes as
 * delivered.  Before finish the name is NULL and the size is what was
 * written so far. */
const char *maildir_delivery_name(const struct maildir_delivery *d);
uint64_t maildir_delivery_size(const struct maildir_delivery *d);

/*
 * After maildir_deliver_finish: deliver d into the Maildir++ folder
 * `folder` ("Junk" for .Junk/; NULL or "": the inbox), made at commit
 * time if missing.  The name must pass deliver_folder_ok (deliver.h).
 * The location (deliver.h) is then ".Junk/NAME".
 */
int	maildir_deliver_folder(struct maildir_delivery *d, const char *folder,
	    struct pf_error *err);

/*
 * Wait until every delivery of the batch is durable and closed (fsynced,
 * or covered by one syncfs of the file system: doc/DESIGN.md §3.4;
 * failing with PF_FAIL_IO, "fsync(FILE): ..." or "syncfs(DIR/tmp): ...",
 * if one was not: nothing is renamed then), move them into new/ of the inbox or of their folder (one rename
 * each, never replacing a file: doc/DESIGN.md §7) and then fsync each
 * new/ once, so that all of them are
 * durable.  placed_r[i] (placed_r may be NULL) tells whether delivery i is
 * in new/: false when its name was taken already, which is then a warning
 * and not a failure (the caller drops its pending row; the delivery stays
 * in tmp/ until freed).  With placed_r NULL a taken name is PF_FAIL_IO.  Only after this has
 * returned 0 may the caller mark them done in the seen-list.  On failure
 * (-1, PF_FAIL_IO; PF_FAIL_INTERNAL if a delivery is not finished) some
 * files may already be in new/: the pending rows in the seen-list let the
 * next run's recovery decide; the caller just frees the deliveries.
 */
int	maildir_commit(struct maildir *md, struct maildir_delivery *const *d,
	    size_t n, bool *placed_r, struct pf_error *err);

/*
 * The group commit's form (doc/DESIGN.md §3.1 step 6): as maildir_commit,
 * but where a syncfs makes batches durable (§3.4) new/ is not fsynced: the
 * new names become durable at the next maildir_settle, by the syncfs that
 * covers its files (which begins after these renames) or by an fsync of
 * new/.  Until then the caller must not mark them done in the seen-list.
 */
int	maildir_commit_deferred(struct maildir *md,
	    struct maildir_delivery *const *d, size_t n, bool *placed_r,
	    struct pf_error *err);

/*
 * Make the finished deliveries d[0..n) durable (as maildir_commit does
 * before its first rename) and every name an earlier
 * maildir_commit_deferred placed: with n > 0 one syncfs can do both, with
 * n = 0 new/ (and each folder's new/ that gained one) is fsynced.  Returns
 * 0, or -1 with err set (PF_FAIL_IO, as maildir_commit).
 */
int	maildir_settle(struct maildir *md, struct maildir_delivery *const *d,
	    size_t n, struct pf_error *err);

/*
 * Free a delivery and clear *d_r; NULL is fine.  A delivery that was not
 * committed is thereby aborted: its tmp file is unlinked (a failure to do so
 * is logged; the next run's maildir_clean_tmp removes it).
 */
void	maildir_delivery_free(struct maildir_delivery **d_r);

/*
 * Recovery, step 1: for each of the `n` final names (from the seen-list's
 * pending deliveries; untrusted, a name with '/' is never found), set
 * found_r[i] when the file reached the Maildir: in new/ under its exact
 * name, or in new/ or cur/ renamed by a mail reader that appended
 * ":2,FLAGS" or more ",X=..." fields (the name up to ':' is compared).
 * When anything is found, new/ and cur/ are fsynced before returning, so
 * what the caller then marks done is durable.  Returns 0, or -1 with err
 * set (PF_FAIL_IO).
 */
int	maildir_find_delivered(struct maildir *md, const char *const *names,
	    size_t n, bool *found_r, struct pf_error *err);

/*
 * Recovery, step 2: remove leftovers from tmp/.  A popfetch tmp file (name
 * "time.M<usec>P<pid>Q<n>.<host>,popfetch") of this host is removed when
 * its process is gone or is this very process; anything else (other
 * programs' files, a live popfetch's, another host's) only when older than
 * MAILDIR_TMP_STALE (36 hours).  Must not run while this process has a
 * delivery open in the same Maildir.  *removed_r (may be NULL) gets the
 * number of files removed.  Returns 0, or -1 with err set (PF_FAIL_IO).
 */
int	maildir_clean_tmp(struct maildir *md, size_t *removed_r,
	    struct pf_error *err);

#endif
