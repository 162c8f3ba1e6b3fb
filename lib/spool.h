/*
 * spool.h - a message kept whole for a command to read: in memory up to
 * SPOOL_MEM bytes, past that in an unlinked file in $TMPDIR (or /tmp), so
 * memory stays bounded whatever the message's size.
 */
#ifndef POPFETCH_SPOOL_H
#define POPFETCH_SPOOL_H

#include <stddef.h>
#include <stdint.h>

#include "command.h"
#include "error.h"

struct spool;

struct spool *spool_new(void);

/* Append len bytes.  Returns 0, or -1 with err set (PF_FAIL_IO: the file
 * could not be made or written); the spool is then unusable. */
int	spool_write(struct spool *sp, const void *buf, size_t len,
	    struct pf_error *err);

/* Bytes written so far. */
uint64_t spool_size(const struct spool *sp);

/* The whole spool as command input (valid until spool_free). */
struct command_input spool_input(const struct spool *sp);

/* Free the spool (its file goes with it) and clear *sp_r; NULL is fine. */
void	spool_free(struct spool **sp_r);

#endif
