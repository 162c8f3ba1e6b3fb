/*
 * deliver.h - the delivery seam: where a fetched message goes.
 *
 * The run hands every message to a delivery target through this interface
 * and nothing else; a backend implements it.  The one backend today is the
 * Maildir (store/maildir.c).  Adding one means a new file that fills a
 * struct deliver_backend, and a line in the table in deliver.c (and the
 * configuration that chooses it): doc/DESIGN.md §9.
 *
 * What the seam asks of a backend is what exactly-once needs
 * (doc/DESIGN.md §3): a message is written somewhere no reader sees it
 * (begin, write, finish), then made visible by a batch commit that never
 * replaces anything (§7), and after a crash the backend can say whether a
 * delivery it named became visible (find) and throw away what never did
 * (clean).  A delivered message is known to the seen-list by two strings
 * the backend chooses and only it reads: its target (for a Maildir, the
 * folder's path) and its location there (the file name).
 *
 * Error categories as the backend says; for the Maildir, PF_FAIL_IO for
 * every file-system failure and PF_FAIL_INTERNAL for calls out of order.
 */
#ifndef POPFETCH_DELIVER_H
#define POPFETCH_DELIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

struct deliver_backend;

/* An open delivery target.  A backend's own target struct begins with it. */
struct deliver {
	const struct deliver_backend	*be;
};

/* One message being delivered.  A backend's own struct begins with it. */
struct deliver_msg {
	const struct deliver_backend	*be;
};

/* What a finished message is labelled with before its commit. */
struct deliver_label {
	const char	*folder;	/* Maildir++ folder ("Junk"); NULL or "":
					 * the inbox */
	const char	*account;	/* for a command: POPFETCH_ACCOUNT */
	const char	*uidl;		/* POPFETCH_UIDL; NULL: none */
	const char	*id;		/* a stable id: X-Popfetch-Id */
	unsigned	 timeout;	/* seconds a command may take */
};

/* The outcome of one message's commit. */
enum deliver_status {
	DELIVER_PLACED,		/* visible, durably */
	DELIVER_TAKEN,		/* its location was taken: not placed, to be
				 * fetched again (a warning) */
	DELIVER_FAILED,		/* refused (an MDA's exit status): `why` */
};

/* why: the backend's allocation, for DELIVER_FAILED only (NULL
 * otherwise); the caller frees it (deliver_results_free).  A pointer,
 * not the error itself: a batch's results then cost 16 bytes a message,
 * not 1.5 KiB (issue 17, private memory). */
struct deliver_result {
	enum deliver_status	 status;
	struct pf_error		*why;
};

/* How deliver_open treats a target that is not there. */
enum deliver_open_mode {
	DELIVER_CREATE,		/* make it (a run's own target) */
	DELIVER_EXISTING,	/* it may be gone: *t_r NULL, not an error */
};

/* A backend: the operations below, each as documented on its wrapper. */
struct deliver_backend {
	const char	*kind;		/* as the configuration names it */
	bool		(*owns)(const char *target);	/* a recorded target
							 * is this backend's */
	bool		 unfindable;	/* find can never say "delivered": the
					 * group commit records each message
					 * alone, right after its commit */
	int		(*open)(const char *target, enum deliver_open_mode how,
			    struct deliver **t_r, struct pf_error *err);
	void		(*close)(struct deliver *t);
	const char	*(*target)(const struct deliver *t);
	int		(*begin)(struct deliver *t, struct deliver_msg **m_r,
			    struct pf_error *err);
	int		(*write)(struct deliver_msg *m, const void *buf,
			    size_t len, struct pf_error *err);
	int		(*finish)(struct deliver_msg *m, struct pf_error *err);
	const char	*(*location)(const struct deliver_msg *m);
	uint64_t	(*size)(const struct deliver_msg *m);
	int		(*label)(struct deliver_msg *m,
			    const struct deliver_label *l,
			    struct pf_error *err);
	int		(*commit)(struct deliver *t,
			    struct deliver_msg *const *m, size_t n,
			    struct deliver_result *res, struct pf_error *err);
	/* optional (NULL: commit is used): deliver_commit_deferred and
	 * deliver_settle */
	int		(*commit_deferred)(struct deliver *t,
			    struct deliver_msg *const *m, size_t n,
			    struct deliver_result *res, struct pf_error *err);
	int		(*settle)(struct deliver *t,
			    struct deliver_msg *const *m, size_t n,
			    struct pf_error *err);
	void		(*free)(struct deliver_msg *m);
	int		(*find)(struct deliver *t, const char *const *locations,
			    size_t n, bool *found_r, struct pf_error *err);
	int		(*clean)(struct deliver *t, size_t *removed_r,
			    struct pf_error *err);
};

/*
 * Is name a folder name a filter may give (doc/DESIGN.md §10.1): not
 * empty, no '/', no leading '.', no "..", no control character, short
 * enough to be a directory name with its leading '.'?
 */
bool	deliver_folder_ok(const char *name);

/*
 * Open the target `target` of backend `kind` ("maildir").  With
 * DELIVER_CREATE a missing target is made; with DELIVER_EXISTING one that
 * is gone, or is no longer such a target, leaves *t_r NULL and returns 0.
 * Returns 0, or -1 with err set (an unknown kind: PF_FAIL_INTERNAL).
 */
int	deliver_open(const char *kind, const char *target,
	    enum deliver_open_mode how, struct deliver **t_r,
	    struct pf_error *err);

/* Open a target as the seen-list recorded it (deliver_target), with the
 * backend that owns that form, as DELIVER_EXISTING. */
int	deliver_open_recorded(const char *target, struct deliver **t_r,
	    struct pf_error *err);

/* Close a target and clear *t_r; NULL is fine.  Every message begun on it
 * must have been freed first. */
void	deliver_close(struct deliver **t_r);

/* The target as the seen-list records it (for a Maildir, its path). */
const char *deliver_target(const struct deliver *t);

/* Start one message; it belongs to the caller until deliver_free. */
int	deliver_begin(struct deliver *t, struct deliver_msg **m_r,
	    struct pf_error *err);

/* Append message data (dot-unstuffed, LF line endings).  After a failure
 * every later call fails too and nothing of the message is left. */
int	deliver_write(struct deliver_msg *m, const void *buf, size_t len,
	    struct pf_error *err);

/* The message is complete; its location is fixed.  Still invisible. */
int	deliver_finish(struct deliver_msg *m, struct pf_error *err);

/* After deliver_finish: where the message will be (opaque, valid until
 * deliver_free); before, NULL.  The size: bytes written so far. */
const char *deliver_location(const struct deliver_msg *m);
uint64_t deliver_size(const struct deliver_msg *m);

/*
 * Label a finished message before its commit: the folder it goes to, and
 * what a command is told about it.  Strings are copied.  A folder name
 * must pass deliver_folder_ok (else PF_FAIL_INTERNAL).
 */
int	deliver_label(struct deliver_msg *m, const struct deliver_label *l,
	    struct pf_error *err);

/*
 * Make n finished messages visible, durably, never replacing anything
 * (doc/DESIGN.md §7); res[i] says how message i fared.  -1 (err set) when
 * the commit as a whole failed: some may be visible already, and the
 * seen-list's pending rows decide.
 */
int	deliver_commit(struct deliver *t, struct deliver_msg *const *m,
	    size_t n, struct deliver_result *res, struct pf_error *err);

/* Free the `why` of res[0..n) (res itself is the caller's). */
void	deliver_results_free(struct deliver_result *res, size_t n);

/*
 * As deliver_commit, except that DELIVER_PLACED means visible, but durably
 * so only once the next deliver_settle on t has returned 0 (a backend
 * without it commits durably: deliver_commit).  The group commit marks
 * them seen only then (doc/DESIGN.md §3.1).
 */
int	deliver_commit_deferred(struct deliver *t, struct deliver_msg *const *m,
	    size_t n, struct deliver_result *res, struct pf_error *err);
/*
 * Make n finished messages durable where they wait (still invisible) and
 * every message deliver_commit_deferred placed on t before, durably
 * visible.  A backend without deferred commits has nothing to do: 0.
 * Returns 0, or -1 with err set.
 */
int	deliver_settle(struct deliver *t, struct deliver_msg *const *m,
	    size_t n, struct pf_error *err);
/* Free a message and clear *m_r; NULL is fine.  One not committed is
 * thereby thrown away. */
void	deliver_free(struct deliver_msg **m_r);

/*
 * Recovery (doc/DESIGN.md §3 step 2): found_r[i] tells whether the message
 * at locations[i] (untrusted: read from the seen-list) became visible,
 * perhaps since renamed by a mail reader; what is found is durable when
 * this returns.
 */
int	deliver_find(struct deliver *t, const char *const *locations,
	    size_t n, bool *found_r, struct pf_error *err);

/* Recovery: throw away what interrupted runs left invisible.  *removed_r
 * (may be NULL) gets how many.  No message may be open on t. */
int	deliver_clean(struct deliver *t, size_t *removed_r,
	    struct pf_error *err);

/* The backends: the Maildir (store/maildir.c), an MDA (store/mda.c). */
extern const struct deliver_backend deliver_maildir;
extern const struct deliver_backend deliver_mda;

#endif
