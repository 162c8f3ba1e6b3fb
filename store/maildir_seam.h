/*
 * maildir_seam.h - test seams of store/maildir.c, not part of its
 * interface: only maildir.c and the unit tests test_maildir.c and
 * test_commit.c include this.
 * Each pointer starts at the real thing; a test may point it at a fake to
 * count calls or inject a failure, and must restore it.
 */
#ifndef POPFETCH_MAILDIR_SEAM_H
#define POPFETCH_MAILDIR_SEAM_H

#include <stdbool.h>

/* syncfs(2) of the file system under a Maildir (a batch's small files). */
extern int	(*maildir_syncfs_fn)(int fd);

/* fsync(2) of one message file (never of a directory). */
extern int	(*maildir_fsync_fn)(int fd);

/* May the Maildir whose tmp/ is open as fd make a batch durable with one
 * syncfs (a local file system on a kernel that reports its errors)? */
extern bool	(*maildir_batch_ok_fn)(int fd);

#endif
