/*
 * maildir.c - Maildir delivery (cr.yp.to/proto/maildir.html) and recovery.
 *
 * The delivery and recovery protocol this file takes part in (steps 2,
 * 5 and 6b here) is told once, in doc/DESIGN.md §3; what it must never do
 * (replace a file), in §7.  Deliveries that fail (connection lost, disk
 * full) are freed before the group commit, which unlinks their tmp files:
 * nothing partial is left.
 *
 * File names (doc/DESIGN.md §7): the final name is "time.M<usec>P<pid>Q<n>.<host>,
 * S=<size>"; while in tmp/ the file is "time.M<usec>P<pid>Q<n>.<host>,
 * popfetch", a marker that tells our leftovers from other programs'.  In
 * <host>, '/' ':' and ',' become \057 \072 \054 as the Maildir spec asks
 * for the first two (',' starts the ",S=" field, so it is escaped too).
 */
#include "config.h"

#include <sys/stat.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <sys/vfs.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "deliver.h"
#include "error.h"
#include "fsutil.h"
#include "log.h"
#include "maildir.h"
#include "maildir_seam.h"
#include "params.h"
#include "thread.h"
#include "xmalloc.h"

/* The suffix that marks a tmp/ file as popfetch's. */
#define TMP_MARKER	",popfetch"
/* What a final name may have beyond its tmp name: ",S=" and a size. */
#define FINAL_EXTRA	(sizeof(",S=") + 20)

/*
 * The sync threads.  maildir_deliver_finish hands the file to them and
 * returns, so the next message is received while earlier ones reach the
 * disk, and fsyncs issued together share journal commits.  maildir_commit
 * waits for every file of its batch before the first rename: a file is in
 * new/ only once durable, exactly as when the caller fsyncs it itself.
 * A small message's file (written from memory) is not fsynced there when
 * the Maildir allows it (fs_ok): a syncfs of the file system makes many
 * durable at once (doc/DESIGN.md §3.4).  A thread starts one in the
 * background once MAILDIR_SYNCFS_EARLY such files are waiting, so the
 * disk works while the next messages arrive; maildir_commit waits for one
 * that covers its batch, or makes one itself.
 * The threads start with the first finished delivery (a run that fetches
 * nothing starts none) and stop in maildir_close.  They only write, sync and
 * close; every signal is blocked in them.  A delivery in their queue
 * belongs to them for its fd and sync_* fields until sync_pending is
 * cleared under `mu`; the rest of it is read-only meanwhile.
 */
struct maildir_syncer {
	pthread_mutex_t			 mu;
	pthread_cond_t			 work;	/* queue not empty, or stop */
	pthread_cond_t			 done;	/* a delivery was synced */
	struct maildir_delivery		*head, *tail;
	pthread_t			 threads[MAILDIR_SYNC_THREADS];
	size_t				 nthreads;
	size_t				 writers;	/* threads writing files */
	size_t				 queued;	/* deliveries in the queue */
	size_t				 held;	/* bytes queued in buffers */
	bool				 started;	/* start was tried */
	bool				 stop;
	/* syncfs calls begun and succeeded (fs_run): a file closed before
	 * syncfs number G began is durable once fs_done >= G */
	unsigned long			 fs_started;
	unsigned long			 fs_done;
	size_t				 fs_waiting;	/* files since the last */
	int				 fs_fd;		/* the Maildir's tmp/ */
	int				 fs_errno;	/* a syncfs failed: sticky */
	bool				 fs_ok;		/* syncfs in use */
	bool				 fs_busy;	/* one is running */
	size_t				 big_open;	/* streamed, not synced */
};

/* A Maildir++ folder (".Junk") that a commit delivered into. */
struct md_folder {
	char	 name[NAME_MAX + 1];	/* ".Junk" */
	int	 new_fd;
	int	 cur_fd;
	bool	 dirty;		/* new/ gained an entry: fsync it */
};

/*
 * Beside the committer (store/commit.c, doc/DESIGN.md §3.4), which may
 * settle and commit a batch in its own thread: the run's thread begins,
 * writes, labels, finishes and frees deliveries meanwhile.  Those read
 * only what is fixed at maildir_open (path, the directories' fds, pid,
 * host) and the sync queue under sync.mu; what a commit or a settle
 * changes (folders, new_dirty, names_need, a folder's dirty) only
 * commit_batch and maildir_settle touch.  Keep it so.
 */
struct maildir {
	struct deliver	 base;		/* first: the delivery seam's view */
	char	*path;
	int	 tmp_fd;
	int	 new_fd;
	int	 cur_fd;
	long	 pid;
	char	 host[MAILDIR_HOST_MAX + 1];	/* escaped */
	struct maildir_syncer	 sync;
	struct md_folder	*folders;	/* Maildir++ folders opened */
	size_t			 nfolders;
	/* maildir_commit_deferred left names in new/ (new_dirty, or a
	 * folder's dirty) that the syncfs numbered names_need or later makes
	 * durable, or maildir_settle's fsync of those directories */
	bool			 new_dirty;
	unsigned long		 names_need;
};

enum delivery_state {
	DELIVERY_WRITING,
	DELIVERY_FINISHED,	/* complete, fsync done or queued, in tmp/ */
	DELIVERY_COMMITTED,	/* in new/ */
	DELIVERY_FAILED,	/* tmp file already removed */
};

/*
 * A message that fits in MAILDIR_WRITE_BUF stays in memory until it is
 * finished; a sync thread then creates, writes, fsyncs and closes its file,
 * so receiving never waits for the file system.  A larger one gets its file
 * at once and is written in MAILDIR_WRITE_BUF chunks as it arrives.
 */
struct maildir_delivery {
	struct deliver_msg	 base;		/* first: the delivery seam's view */
	struct maildir		*md;
	enum delivery_state	 state;
	int			 fd;		/* -1 until the file is open */
	bool			 created;	/* the tmp file is ours */
	uint64_t		 size;
	size_t			 buffered;
	size_t			 cap;
	char			*buf;		/* up to MAILDIR_WRITE_BUF */
	/* Names in the heap at their length, not NAME_MAX arrays: a
	 * delivery waits for its commit in memory (issue 17). */
	char			*tmp_name;
	char			*final_name;	/* once finished */
	char			*location;	/* ".Junk/NAME" (deliver.h);
						   NULL: the inbox */
	size_t			 folder_len;	/* ".Junk" of location */

	/* the file's work in a sync thread (see struct maildir_syncer) */
	struct maildir_delivery	*next;		/* queue link */
	bool			 sync_pending;	/* under md->sync.mu */
	bool			 fsync;		/* the thread fsyncs it */
	unsigned long		 fs_need;	/* else: syncfs that covers it */
	bool			 big;		/* counted in sync.big_open */
	size_t			 held;		/* its bytes in sync.held */
	int			 sync_errno;	/* 0, or why it failed */
	const char		*sync_call;	/* "open", "write", "fsync"... */
};

/* Q<n>: deliveries begun by this process, so names from one microsecond
 * still differ. */
static atomic_ulong delivery_seq;

/*
 * May a batch of files under the directory open as fd be made durable
 * with one syncfs(2) (doc/DESIGN.md §3.4)?  Only where syncfs is
 * known to write back and wait for every file of the file system and to
 * report a failed write-back: a kernel of MAILDIR_SYNCFS_KERNEL or later
 * (earlier ones return 0 from syncfs whatever happened) and a local file
 * system of the list below.  Network and FUSE file systems (NFS, SMB, 9p,
 * Ceph, FUSE), overlay and anything unknown keep per-file fsync, whose
 * errors they do report.
 */
static bool
batch_ok(int fd)
{
#ifdef HAVE_SYNCFS
	static const unsigned long local[] = {
		0xEF53UL,	/* ext2, ext3, ext4 */
		0x58465342UL,	/* XFS */
		0x9123683EUL,	/* Btrfs */
		0xF2F52010UL,	/* F2FS */
		0x01021994UL,	/* tmpfs: nothing to write back */
	};
	struct statfs sfs;
	struct utsname u;
	unsigned major = 0, minor = 0;
	size_t i;

	if (uname(&u) == -1 || sscanf(u.release, "%u.%u", &major, &minor) != 2 ||
	    major * 1000 + minor < MAILDIR_SYNCFS_KERNEL)
		return false;
	if (fstatfs(fd, &sfs) == -1)
		return false;
	for (i = 0; i < sizeof(local) / sizeof(local[0]); i++)
		if ((unsigned long)sfs.f_type == local[i])
			return true;
#else
	(void)fd;
#endif
	return false;
}

#ifdef HAVE_SYNCFS
int	(*maildir_syncfs_fn)(int) = syncfs;
#else
static int
no_syncfs(int fd)
{
	(void)fd;
	errno = ENOSYS;
	return -1;
}
int	(*maildir_syncfs_fn)(int) = no_syncfs;
#endif
int	(*maildir_fsync_fn)(int) = fsync;
bool	(*maildir_batch_ok_fn)(int) = batch_ok;

/* Join dir and name into buf; a result that does not fit is an error. */
static int
path_join(char *buf, size_t size, const char *dir, const char *name,
    struct pf_error *err)
{
	int n;

	n = snprintf(buf, size, "%s/%s", dir, name);
	if (n < 0 || (size_t)n >= size)
		return pf_error_set(err, PF_FAIL_IO, "path too long: %s/%s",
		    dir, name);
	return 0;
}

/* fsync an open directory, naming it `dir`/`sub` in the error. */
static int
fsync_dir_fd(int fd, const char *dir, const char *sub, struct pf_error *err)
{
	if (fsync(fd) == -1 && errno != EINVAL)
		return pf_error_set_errno(err, PF_FAIL_IO, "fsync(%s/%s)",
		    dir, sub);
	return 0;
}

int
maildir_create(const char *path, struct pf_error *err)
{
	static const char *const subs[] = { "tmp", "new", "cur" };
	char buf[PATH_MAX];
	size_t i;

	if (pf_mkdirs(path, err) == -1)
		return -1;
	for (i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
		if (path_join(buf, sizeof(buf), path, subs[i], err) == -1 ||
		    pf_mkdirs(buf, err) == -1)
			return -1;
	}
	return 0;
}

/* Our host name as it goes into file names: escaped and bounded. */
static void
host_escape(char *out, size_t size)
{
	char raw[256];
	size_t i, o = 0;

	if (gethostname(raw, sizeof(raw)) == -1 || raw[0] == '\0')
		snprintf(raw, sizeof(raw), "localhost");
	raw[sizeof(raw) - 1] = '\0';
	for (i = 0; raw[i] != '\0'; i++) {
		unsigned char c = (unsigned char)raw[i];

		if (c == '/' || c == ':' || c == ',' || c <= 0x20 || c >= 0x7f) {
			if (o + 4 >= size)
				break;
			snprintf(out + o, size - o, "\\%03o", c);
			o += 4;
		} else {
			if (o + 1 >= size)
				break;
			out[o++] = (char)c;
		}
	}
	out[o] = '\0';
}

/* write(2) all of buf to fd, retrying short writes and EINTR.  Returns 0,
 * or -1 with errno set. */
static int
write_fd(int fd, const char *buf, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = write(fd, buf, len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO;
			return -1;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Create d's tmp file under d->tmp_name: O_EXCL, mode 0600.  Returns 0, or
 * -1 with errno set. */
static int
tmp_create(struct maildir_delivery *d)
{
	d->fd = openat(d->md->tmp_fd, d->tmp_name,
	    O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (d->fd == -1)
		return -1;
	d->created = true;
	return 0;
}

/* ---- the fsync threads (struct maildir_syncer) ---- */

static int	tmp_name_new(struct maildir_delivery *, struct pf_error *);

/* Note a failed call for sync_wait, keeping errno. */
static void
sync_failed(struct maildir_delivery *d, const char *call)
{
	d->sync_errno = errno != 0 ? errno : EIO;
	d->sync_call = call;
}

/*
 * The file work of a finished delivery: create the file and write the
 * buffer if the message was held in memory, then fsync and close.  On
 * failure the call and errno are noted for sync_wait.  Runs in a sync
 * thread, or inline when none could start.
 */
static void
sync_job(struct maildir_delivery *d)
{
	int fd;

	struct pf_error ignored;
	int attempt;

	d->sync_errno = 0;
	if (d->fd == -1) {
		/* A name taken by another file gets a fresh one: only the tmp
		 * name changes, the final name is already fixed. */
		for (attempt = 0; tmp_create(d) == -1; attempt++) {
			if (errno != EEXIST || attempt == 7 ||
			    tmp_name_new(d, &ignored) == -1) {
				sync_failed(d, "open");
				return;
			}
		}
		if (write_fd(d->fd, d->buf, d->buffered) == -1) {
			sync_failed(d, "write");
			(void)close(d->fd);
			d->fd = -1;
			return;
		}
	}
	free(d->buf);
	d->buf = NULL;
	fd = d->fd;
	d->fd = -1;
	if (d->fsync && maildir_fsync_fn(fd) == -1) {
		d->sync_errno = errno;
		d->sync_call = "fsync";
		(void)close(fd);
		return;
	}
	/* Quota and NFS errors may surface only at close. */
	if (close(fd) == -1) {
		d->sync_errno = errno;
		d->sync_call = "close";
	}
}

/* d no longer counts as a large message in flight (under mu). */
static void
big_done(struct maildir_syncer *s, struct maildir_delivery *d)
{
	if (d->big) {
		d->big = false;
		s->big_open--;
	}
}

/* d's file is written and closed: note which syncfs covers it (under mu). */
static void
fs_note(struct maildir_syncer *s, struct maildir_delivery *d)
{
	if (d->fsync || d->sync_errno != 0)
		return;
	d->fs_need = s->fs_started + 1;
	s->fs_waiting++;
}

/*
 * Run one syncfs (doc/DESIGN.md §3.4), called and returning with s->mu
 * held, none running.  It covers every file closed before it began.  A
 * write-back error is sticky (see batch_durable); ENOSYS or EPERM (not in
 * this kernel, or a seccomp filter) turns syncfs off for the Maildir.
 */
static void
fs_run(struct maildir_syncer *s)
{
	unsigned long gen = ++s->fs_started;
	int rc, saved;

	s->fs_waiting = 0;
	s->fs_busy = true;
	pthread_mutex_unlock(&s->mu);
	rc = maildir_syncfs_fn(s->fs_fd);
	saved = errno;
	pthread_mutex_lock(&s->mu);
	s->fs_busy = false;
	if (rc == 0)
		s->fs_done = gen;
	else if (saved == ENOSYS || saved == EPERM)
		s->fs_ok = false;
	else if (s->fs_errno == 0)
		s->fs_errno = saved;
	pthread_cond_broadcast(&s->done);
}

/*
 * Take work from the queue (under mu): one delivery to fsync, or up to
 * MAILDIR_SYNC_WAKE small files in a row, which this thread writes one
 * after the other with one lock round for all.  Files fsynced each stay
 * one per thread, so their fsyncs overlap.  Returns how many went to take.
 */
static size_t
sync_take(struct maildir_syncer *s, struct maildir_delivery **take)
{
	struct maildir_delivery *d;
	size_t n = 0;

	while ((d = s->head) != NULL && n < MAILDIR_SYNC_WAKE &&
	    (n == 0 || !d->fsync)) {
		s->head = d->next;
		s->queued--;
		take[n++] = d;
		if (d->fsync)
			break;
	}
	if (s->head == NULL)
		s->tail = NULL;
	return n;
}

static void *
sync_main(void *arg)
{
	struct maildir_syncer *s = arg;
	struct maildir_delivery *take[MAILDIR_SYNC_WAKE], *d;
	size_t i, n;

	pthread_mutex_lock(&s->mu);
	for (;;) {
		while (s->head == NULL && !s->stop)
			pthread_cond_wait(&s->work, &s->mu);
		if ((n = sync_take(s, take)) == 0)
			break;		/* stopping, and nothing left */
		s->writers++;
		pthread_mutex_unlock(&s->mu);
		for (i = 0; i < n; i++)
			sync_job(take[i]);
		pthread_mutex_lock(&s->mu);
		s->writers--;
		for (i = 0; i < n; i++) {
			d = take[i];
			fs_note(s, d);
			big_done(s, d);
			s->held -= d->held;
			d->sync_pending = false;
		}
		pthread_cond_broadcast(&s->done);
		if (s->fs_ok && !s->fs_busy && s->fs_errno == 0 &&
		    s->fs_waiting >= MAILDIR_SYNCFS_EARLY)
			fs_run(s);
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

/* Start the threads, with every signal blocked in them.  If none starts
 * (out of resources), deliveries are fsynced inline, as before threads. */
static void
sync_start(struct maildir_syncer *s)
{
	pthread_attr_t attr;
	size_t i, n = s->fs_ok ? MAILDIR_SYNC_THREADS_SYNCFS :
	    MAILDIR_SYNC_THREADS;

	s->started = true;
	if (pthread_attr_init(&attr) != 0)
		return;
	(void)pthread_attr_setstacksize(&attr, MAILDIR_SYNC_STACK);
	for (i = 0; i < n; i++) {
		if (pf_thread_start(&s->threads[i], &attr, sync_main, s) != 0)
			break;
		s->nthreads++;
	}
	pthread_attr_destroy(&attr);
	if (s->nthreads == 0)
		log_debug("cannot start fsync threads: fsyncing in turn");
}

/* Stop and join the threads; the queue is empty (every delivery freed). */
static void
sync_stop(struct maildir_syncer *s)
{
	size_t i;

	pthread_mutex_lock(&s->mu);
	s->stop = true;
	pthread_cond_broadcast(&s->work);
	pthread_mutex_unlock(&s->mu);
	for (i = 0; i < s->nthreads; i++)
		pthread_join(s->threads[i], NULL);
	s->nthreads = 0;
}

/*
 * Queue a finished delivery's file work (sync_job): true.  Without
 * threads, do it at once: false.  At most MAILDIR_SYNC_HELD bytes of
 * messages wait in memory: past it, wait for the threads to catch up.
 */
static bool
sync_queue(struct maildir_delivery *d)
{
	struct maildir_syncer *s = &d->md->sync;

	/* While a large message is being written, a syncfs would wait for
	 * its data too (and the commit for that syncfs): then a small file is
	 * fsynced by its thread, as without syncfs. */
	if (!s->started)
		sync_start(s);
	pthread_mutex_lock(&s->mu);
	d->fsync = !s->fs_ok || d->fd != -1 || s->big_open > 0;
	if (s->nthreads == 0) {
		pthread_mutex_unlock(&s->mu);
		sync_job(d);
		pthread_mutex_lock(&s->mu);
		fs_note(s, d);
		big_done(s, d);
		pthread_mutex_unlock(&s->mu);
		return false;
	}
	while (s->held > 0 && s->held + d->cap > MAILDIR_SYNC_HELD) {
		pthread_cond_signal(&s->work);
		pthread_cond_wait(&s->done, &s->mu);
	}
	d->held = d->fd == -1 ? d->cap : 0;
	s->held += d->held;
	d->sync_pending = true;
	d->next = NULL;
	if (s->tail != NULL)
		s->tail->next = d;
	else
		s->head = d;
	s->tail = d;
	s->queued++;
	/* A thread writing files takes this one too before it sleeps (one
	 * in a syncfs does not count); a small file wakes one only once
	 * MAILDIR_SYNC_WAKE wait. */
	if (d->fsync || (s->writers == 0 && s->queued >= MAILDIR_SYNC_WAKE))
		pthread_cond_signal(&s->work);
	pthread_mutex_unlock(&s->mu);
	return true;
}

static void	delivery_fail(struct maildir_delivery *);

/* Wait until d's file is fsynced and closed.  Returns 0, or -1 with err
 * set (PF_FAIL_IO naming the call and the file) and the tmp file removed. */
static int
sync_wait(struct maildir_delivery *d, struct pf_error *err)
{
	struct maildir_syncer *s = &d->md->sync;

	pthread_mutex_lock(&s->mu);
	if (d->sync_pending)
		pthread_cond_signal(&s->work);	/* it may wait for company */
	while (d->sync_pending)
		pthread_cond_wait(&s->done, &s->mu);
	pthread_mutex_unlock(&s->mu);
	if (d->sync_errno == 0)
		return 0;
	errno = d->sync_errno;
	pf_error_set_errno(err, PF_FAIL_IO, "%s(%s/tmp/%s)", d->sync_call,
	    d->md->path, d->tmp_name);
	delivery_fail(d);
	return -1;
}

/* Open one of the Maildir's subdirectories. */
static int
open_sub(const struct maildir *md, const char *sub, int *fd_r,
    struct pf_error *err)
{
	char buf[PATH_MAX];

	if (path_join(buf, sizeof(buf), md->path, sub, err) == -1)
		return -1;
	if ((*fd_r = open(buf, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return pf_error_set_errno(err, PF_FAIL_IO, "open(%s)", buf);
	return 0;
}

int
maildir_open(const char *path, struct maildir **md_r, struct pf_error *err)
{
	struct maildir *md;

	*md_r = NULL;
	md = xcalloc(1, sizeof(*md));
	md->base.be = &deliver_maildir;
	md->path = xstrdup(path);
	md->tmp_fd = md->new_fd = md->cur_fd = -1;
	pthread_mutex_init(&md->sync.mu, NULL);
	pthread_cond_init(&md->sync.work, NULL);
	pthread_cond_init(&md->sync.done, NULL);
	if (open_sub(md, "tmp", &md->tmp_fd, err) == -1 ||
	    open_sub(md, "new", &md->new_fd, err) == -1 ||
	    open_sub(md, "cur", &md->cur_fd, err) == -1)
		goto fail;
	host_escape(md->host, sizeof(md->host));
	md->pid = (long)getpid();
	/* tmp_fd is open before any file of ours is written: syncfs on it
	 * reports every write-back error of the file system since then. */
	md->sync.fs_fd = md->tmp_fd;
	md->sync.fs_ok = maildir_batch_ok_fn(md->tmp_fd);
	*md_r = md;
	return 0;

fail:
	maildir_close(&md);
	return -1;
}

void
maildir_close(struct maildir **md_r)
{
	struct maildir *md = *md_r;

	if (md == NULL)
		return;
	sync_stop(&md->sync);
	pthread_cond_destroy(&md->sync.done);
	pthread_cond_destroy(&md->sync.work);
	pthread_mutex_destroy(&md->sync.mu);
	if (md->tmp_fd != -1)
		close(md->tmp_fd);
	if (md->new_fd != -1)
		close(md->new_fd);
	if (md->cur_fd != -1)
		close(md->cur_fd);
	for (; md->nfolders > 0; md->nfolders--) {
		close(md->folders[md->nfolders - 1].new_fd);
		close(md->folders[md->nfolders - 1].cur_fd);
	}
	free(md->folders);
	free(md->path);
	free(md);
	*md_r = NULL;
}

const char *
maildir_path(const struct maildir *md)
{
	return md->path;
}

/* Give d a fresh unique tmp name (Q<n> differs in every call). */
static int
tmp_name_new(struct maildir_delivery *d, struct pf_error *err)
{
	struct timespec ts;
	unsigned long seq;
	char name[NAME_MAX + 1];
	size_t len;
	int n;

	clock_gettime(CLOCK_REALTIME, &ts);
	seq = atomic_fetch_add(&delivery_seq, 1) + 1;
	n = snprintf(name, sizeof(name),
	    "%lld.M%ldP%ldQ%lu.%s" TMP_MARKER, (long long)ts.tv_sec,
	    ts.tv_nsec / 1000, d->md->pid, seq, d->md->host);
	if (n < 0 || (size_t)n >= sizeof(name))
		return pf_error_set(err, PF_FAIL_INTERNAL,
		    "Maildir file name too long");
	/* A sync thread may call this on a finished delivery: the final
	 * name is a block of its own and stays. */
	len = (size_t)n + 1;
	free(d->tmp_name);
	d->tmp_name = xmalloc(len);
	memcpy(d->tmp_name, name, len);
	return 0;
}

int
maildir_deliver_begin(struct maildir *md, struct maildir_delivery **d_r,
    struct pf_error *err)
{
	struct maildir_delivery *d;

	*d_r = NULL;
	d = xcalloc(1, sizeof(*d));
	d->base.be = &deliver_maildir;
	d->md = md;
	d->fd = -1;
	d->state = DELIVERY_FAILED;
	if (tmp_name_new(d, err) == -1) {
		maildir_delivery_free(&d);
		return -1;
	}
	d->state = DELIVERY_WRITING;
	*d_r = d;
	return 0;
}

/* A delivery failed: remove its tmp file at once so nothing is left. */
static void
delivery_fail(struct maildir_delivery *d)
{
	int saved = errno;

	if (d->big) {
		pthread_mutex_lock(&d->md->sync.mu);
		big_done(&d->md->sync, d);
		pthread_mutex_unlock(&d->md->sync.mu);
	}
	if (d->fd != -1) {
		close(d->fd);
		d->fd = -1;
	}
	if (d->created && unlinkat(d->md->tmp_fd, d->tmp_name, 0) == -1 &&
	    errno != ENOENT)
		log_warn("unlink(%s/tmp/%s)", d->md->path, d->tmp_name);
	d->created = false;
	d->state = DELIVERY_FAILED;
	errno = saved;
}

/* The message outgrew memory: create its file now, in this thread.  A name
 * taken by another file gets a fresh one (the final name is not fixed
 * yet).  Returns 0, or -1 with err set (PF_FAIL_IO) and d failed. */
static int
tmp_open(struct maildir_delivery *d, struct pf_error *err)
{
	int attempt;

	for (attempt = 0; attempt < 8; attempt++) {
		if (tmp_create(d) == 0)
			return 0;
		if (errno != EEXIST)
			break;
		if (tmp_name_new(d, err) == -1) {
			delivery_fail(d);
			return -1;
		}
	}
	pf_error_set_errno(err, PF_FAIL_IO, "open(%s/tmp/%s)", d->md->path,
	    d->tmp_name);
	delivery_fail(d);
	return -1;
}

/* write(2) all of buf to d's file; on failure set err and fail d. */
static int
write_all(struct maildir_delivery *d, const char *buf, size_t len,
    struct pf_error *err)
{
	if (write_fd(d->fd, buf, len) == 0)
		return 0;
	pf_error_set_errno(err, PF_FAIL_IO, "write(%s/tmp/%s)", d->md->path,
	    d->tmp_name);
	delivery_fail(d);
	return -1;
}

/* Make d's buffer hold at least `need` (<= MAILDIR_WRITE_BUF) bytes. */
static void
buf_reserve(struct maildir_delivery *d, size_t need)
{
	size_t cap = d->cap != 0 ? d->cap : MAILDIR_BUF_MIN;

	if (need <= d->cap)
		return;
	while (cap < need)
		cap *= 2;
	if (cap > MAILDIR_WRITE_BUF)
		cap = MAILDIR_WRITE_BUF;
	d->buf = xreallocarray(d->buf, 1, cap);
	d->cap = cap;
}

/* Refuse calls on a delivery that is no longer being written. */
static int
check_writing(const struct maildir_delivery *d, const char *call,
    struct pf_error *err)
{
	if (d->state == DELIVERY_WRITING)
		return 0;
	return pf_error_set(err, PF_FAIL_INTERNAL,
	    "%s on a delivery that is %s", call,
	    d->state == DELIVERY_FAILED ? "failed" : "finished");
}

int
maildir_deliver_write(struct maildir_delivery *d, const void *buf, size_t len,
    struct pf_error *err)
{
	const char *p = buf;
	size_t n;

	if (check_writing(d, "maildir_deliver_write", err) == -1)
		return -1;
	if (d->fd == -1) {
		if (len <= MAILDIR_WRITE_BUF - d->buffered) {
			buf_reserve(d, d->buffered + len);
			memcpy(d->buf + d->buffered, p, len);
			d->buffered += len;
			d->size += len;
			return 0;
		}
		/* Larger than memory holds: stream into the file from now. */
		if (tmp_open(d, err) == -1)
			return -1;
		pthread_mutex_lock(&d->md->sync.mu);
		d->big = true;
		d->md->sync.big_open++;
		pthread_mutex_unlock(&d->md->sync.mu);
	}
	buf_reserve(d, MAILDIR_WRITE_BUF);
	d->size += len;
	while (len > 0) {
		/* Large writes with an empty buffer go straight to the file. */
		if (d->buffered == 0 && len >= MAILDIR_WRITE_BUF)
			return write_all(d, p, len, err);
		n = MAILDIR_WRITE_BUF - d->buffered;
		if (n > len)
			n = len;
		memcpy(d->buf + d->buffered, p, n);
		d->buffered += n;
		p += n;
		len -= n;
		if (d->buffered == MAILDIR_WRITE_BUF) {
			d->buffered = 0;
			if (write_all(d, d->buf, MAILDIR_WRITE_BUF, err) == -1)
				return -1;
		}
	}
	return 0;
}

int
maildir_deliver_finish(struct maildir_delivery *d, struct pf_error *err)
{
	size_t pending, tlen;
	int n;

	if (check_writing(d, "maildir_deliver_finish", err) == -1)
		return -1;
	tlen = strlen(d->tmp_name) - strlen(TMP_MARKER);
	free(d->final_name);
	d->final_name = xmalloc(tlen + FINAL_EXTRA);
	memcpy(d->final_name, d->tmp_name, tlen);
	n = snprintf(d->final_name + tlen, FINAL_EXTRA, ",S=%llu",
	    (unsigned long long)d->size);
	if (n < 0 || (size_t)n >= FINAL_EXTRA || tlen + (size_t)n > NAME_MAX) {
		pf_error_set(err, PF_FAIL_INTERNAL, "Maildir file name too long");
		delivery_fail(d);
		return -1;
	}
	if (d->fd != -1) {
		/* Streamed: write what is left; the thread fsyncs. */
		pending = d->buffered;
		d->buffered = 0;
		if (pending > 0 && write_all(d, d->buf, pending, err) == -1)
			return -1;
		free(d->buf);
		d->buf = NULL;
		d->cap = 0;
	}
	d->state = DELIVERY_FINISHED;
	if (sync_queue(d))
		return 0;
	/* Without threads the fsync has happened: report it now. */
	return sync_wait(d, err);
}

const char *
maildir_delivery_name(const struct maildir_delivery *d)
{
	if (d->state != DELIVERY_FINISHED && d->state != DELIVERY_COMMITTED)
		return NULL;
	return d->final_name;
}

uint64_t
maildir_delivery_size(const struct maildir_delivery *d)
{
	return d->size;
}

/*
 * Move tmp/old to new/new, never replacing a file that is there
 * (doc/DESIGN.md §7): renameat2(RENAME_NOREPLACE) where the kernel and the
 * file system have it, else link() + unlink(), which fails with EEXIST
 * just the same; where neither works (no hard links), a check for the name
 * and a rename, which only a program racing us with the same unique name
 * could defeat.  -1 with errno set (EEXIST: the name is taken).
 */
static int
move_noreplace(struct maildir *md, const char *old, int new_fd,
    const char *new)
{
	struct stat st;

#ifdef HAVE_RENAMEAT2
	if (renameat2(md->tmp_fd, old, new_fd, new, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP &&
	    errno != EOPNOTSUPP)
		return -1;
#endif
	if (linkat(md->tmp_fd, old, new_fd, new, 0) == 0) {
		/* A leftover link in tmp/ is harmless: clean_tmp takes it. */
		if (unlinkat(md->tmp_fd, old, 0) == -1)
			log_debug("unlink(%s/tmp/%s): %s", md->path, old,
			    strerror(errno));
		return 0;
	}
	if (errno == EEXIST || (errno != EPERM && errno != ENOTSUP &&
	    errno != EOPNOTSUPP && errno != EXDEV && errno != EMLINK))
		return -1;
	if (fstatat(new_fd, new, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		errno = EEXIST;
		return -1;
	}
	return renameat(md->tmp_fd, old, new_fd, new);
}

/* Open directory `sub` of the Maildir++ folder at `path` into *fd_r. */
static int
open_folder_sub(const char *path, const char *sub, int *fd_r,
    struct pf_error *err)
{
	char buf[PATH_MAX];

	if (path_join(buf, sizeof(buf), path, sub, err) == -1)
		return -1;
	if ((*fd_r = open(buf, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return pf_error_set_errno(err, PF_FAIL_IO, "open(%s)", buf);
	return 0;
}

/*
 * The Maildir++ folder `name` (".Junk") of md, made if missing: tmp/,
 * new/, cur/ and the `maildirfolder` file that marks it, every new entry
 * fsynced (doc/DESIGN.md §10.2), so that the folder is durable before
 * anything is renamed into it.  Kept open until maildir_close.
 */
static int
folder_open(struct maildir *md, const char *name, struct md_folder **f_r,
    struct pf_error *err)
{
	struct md_folder f = { .new_fd = -1, .cur_fd = -1 };
	char path[PATH_MAX], mark[PATH_MAX];
	size_t i;
	int fd;

	for (i = 0; i < md->nfolders; i++) {
		if (strcmp(md->folders[i].name, name) == 0) {
			*f_r = &md->folders[i];
			return 0;
		}
	}
	if (path_join(path, sizeof(path), md->path, name, err) == -1 ||
	    path_join(mark, sizeof(mark), path, "maildirfolder", err) == -1 ||
	    maildir_create(path, err) == -1)
		return -1;
	fd = open(mark, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd == -1)
		return pf_error_set_errno(err, PF_FAIL_IO, "open(%s)", mark);
	close(fd);
	if (pf_fsync_dir(path, err) == -1 ||
	    open_folder_sub(path, "new", &f.new_fd, err) == -1 ||
	    open_folder_sub(path, "cur", &f.cur_fd, err) == -1) {
		if (f.new_fd != -1)
			close(f.new_fd);
		return -1;
	}
	snprintf(f.name, sizeof(f.name), "%s", name);
	md->folders = xreallocarray(md->folders, md->nfolders + 1,
	    sizeof(*md->folders));
	md->folders[md->nfolders] = f;
	*f_r = &md->folders[md->nfolders++];
	return 0;
}

int
maildir_deliver_folder(struct maildir_delivery *d, const char *folder,
    struct pf_error *err)
{
	if (d->state != DELIVERY_FINISHED)
		return pf_error_set(err, PF_FAIL_INTERNAL,
		    "maildir_deliver_folder on a delivery not finished");
	free(d->location);
	d->location = NULL;
	d->folder_len = 0;
	if (folder == NULL || folder[0] == '\0')
		return 0;
	if (!deliver_folder_ok(folder))
		return pf_error_set(err, PF_FAIL_INTERNAL,
		    "maildir_deliver_folder: not a folder name");
	if (strlen(folder) + 1 > NAME_MAX)
		return pf_error_set(err, PF_FAIL_IO, "folder name too long: %s",
		    folder);
	d->location = xasprintf(".%s/%s", folder, d->final_name);
	d->folder_len = strlen(folder) + 1;
	return 0;
}

/*
 * fsync each file of d[0..n) that its thread left to a syncfs, reopening it
 * in tmp/ (syncfs is not there after all).  A write-back error not seen by
 * anyone yet is reported to a descriptor opened after it (Linux >= 4.13).
 */
static int
fsync_each(struct maildir *md, struct maildir_delivery *const *d, size_t n,
    struct pf_error *err)
{
	size_t i;
	int fd;

	for (i = 0; i < n; i++) {
		if (d[i]->fsync)
			continue;
		fd = openat(md->tmp_fd, d[i]->tmp_name,
		    O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd == -1 || maildir_fsync_fn(fd) == -1) {
			pf_error_set_errno(err, PF_FAIL_IO, "%s(%s/tmp/%s)",
			    fd == -1 ? "open" : "fsync", md->path,
			    d[i]->tmp_name);
			if (fd != -1)
				close(fd);
			return -1;
		}
		close(fd);
		d[i]->fsync = true;
	}
	return 0;
}

/*
 * Make the files of d[0..n) durable that their threads wrote without an
 * fsync (fs_ok): a syncfs of the Maildir's file system that began after
 * the last of them was closed covers them all, including those bound for
 * a Maildir++ folder (their files are in our tmp/ until renamed).  One a
 * thread started early may have done so already, or be running: then it
 * is waited for; else one is made here.  A write-back error fails the
 * batch just as a failed fsync does.  A syncfs that cannot be used here
 * (ENOSYS: not in this kernel, or refused by a seccomp filter) falls back
 * to an fsync of each file, now and for the rest of the run.
 *
 * A failed syncfs fails every later batch of this Maildir too: it reports
 * an error once per descriptor, and the file whose write-back failed may
 * belong to a later batch (syncfs writes back every file written so far),
 * whose own syncfs would then return 0.  The run ends with the error; the
 * next one opens the Maildir afresh and fetches those messages again.
 */
static int
batch_durable(struct maildir *md, struct maildir_delivery *const *d, size_t n,
    unsigned long extra, bool *synced_r, struct pf_error *err)
{
	struct maildir_syncer *s = &md->sync;
	unsigned long need = extra;
	size_t i;
	int fail;
	bool ok;

	*synced_r = false;
	for (i = 0; i < n; i++)
		if (!d[i]->fsync && d[i]->fs_need > need)
			need = d[i]->fs_need;
	if (need == 0)
		return 0;
	pthread_mutex_lock(&s->mu);
	while (s->fs_ok && s->fs_errno == 0 && s->fs_done < need) {
		if (s->fs_busy)
			pthread_cond_wait(&s->done, &s->mu);
		else
			fs_run(s);
	}
	fail = s->fs_errno;
	ok = s->fs_ok;
	pthread_mutex_unlock(&s->mu);
	if (fail != 0) {
		errno = fail;
		return pf_error_set_errno(err, PF_FAIL_IO, "syncfs(%s/tmp)",
		    md->path);
	}
	*synced_r = ok;
	return ok ? 0 : fsync_each(md, d, n, err);
}

/* fsync new/ of the inbox and of every folder that gained an entry since
 * its last fsync. */
static int
dirs_sync(struct maildir *md, struct pf_error *err)
{
	size_t i;

	for (i = 0; i < md->nfolders; i++) {
		struct md_folder *f = &md->folders[i];
		char sub[NAME_MAX + 8];

		if (!f->dirty)
			continue;
		snprintf(sub, sizeof(sub), "%s/new", f->name);
		if (fsync_dir_fd(f->new_fd, md->path, sub, err) == -1)
			return -1;
		f->dirty = false;
	}
	if (md->new_dirty) {
		if (fsync_dir_fd(md->new_fd, md->path, "new", err) == -1)
			return -1;
		md->new_dirty = false;
	}
	return 0;
}

/* Names in new/ not durable yet: maildir_commit_deferred left them. */
static bool
names_owed(const struct maildir *md)
{
	size_t i;

	if (md->new_dirty)
		return true;
	for (i = 0; i < md->nfolders; i++)
		if (md->folders[i].dirty)
			return true;
	return false;
}

int
maildir_settle(struct maildir *md, struct maildir_delivery *const *d,
    size_t n, struct pf_error *err)
{
	unsigned long extra = 0;
	bool synced;
	size_t i;

	for (i = 0; i < n; i++) {
		if (d[i]->md != md || d[i]->state != DELIVERY_FINISHED)
			return pf_error_set(err, PF_FAIL_INTERNAL,
			    "maildir_settle: delivery %zu is not finished", i);
		if (sync_wait(d[i], err) == -1)
			return -1;
	}
	/* With files to cover, one syncfs that began after the last
	 * renames covers those names too; without, new/ is fsynced. */
	if (n > 0 && names_owed(md))
		extra = md->names_need;
	if (batch_durable(md, d, n, extra, &synced, err) == -1)
		return -1;
	if (synced && extra != 0) {
		md->new_dirty = false;
		for (i = 0; i < md->nfolders; i++)
			md->folders[i].dirty = false;
		return 0;
	}
	return dirs_sync(md, err);
}

static int
commit_batch(struct maildir *md, struct maildir_delivery *const *d,
    size_t n, bool *placed_r, bool defer, struct pf_error *err)
{
	size_t i, renamed = 0;
	bool synced;

	for (i = 0; i < n; i++) {
		if (d[i]->md != md || d[i]->state != DELIVERY_FINISHED)
			return pf_error_set(err, PF_FAIL_INTERNAL,
			    "maildir_commit: delivery %zu is not finished", i);
	}
	/* Every file of the batch is on disk before the first rename. */
	for (i = 0; i < n; i++) {
		if (sync_wait(d[i], err) == -1)
			return -1;
	}
	if (batch_durable(md, d, n, 0, &synced, err) == -1)
		return -1;
	for (i = 0; i < n; i++) {
		struct md_folder *f = NULL;
		const char *sep = d[i]->location != NULL ? "/" : "";
		char folder[NAME_MAX + 1] = "";

		if (placed_r != NULL)
			placed_r[i] = false;
		if (d[i]->location != NULL) {
			memcpy(folder, d[i]->location, d[i]->folder_len);
			folder[d[i]->folder_len] = '\0';
			if (folder_open(md, folder, &f, err) == -1)
				goto fail;
		}
		if (move_noreplace(md, d[i]->tmp_name, f != NULL ? f->new_fd :
		    md->new_fd, d[i]->final_name) == -1) {
			if (errno == EEXIST && placed_r != NULL) {
				log_warnx("%s/%s%snew/%s exists already: not "
				    "replaced; the message will be fetched "
				    "again", md->path, folder, sep,
				    d[i]->final_name);
				continue;
			}
			pf_error_set_errno(err, PF_FAIL_IO,
			    "rename(%s/tmp/%s, %s/%s%snew/%s)", md->path,
			    d[i]->tmp_name, md->path, folder, sep,
			    d[i]->final_name);
			goto fail;
		}
		d[i]->state = DELIVERY_COMMITTED;
		if (placed_r != NULL)
			placed_r[i] = true;
		/* Dirty at once: a failure below still owes these names. */
		if (f != NULL)
			f->dirty = true;
		else
			md->new_dirty = true;
		renamed++;
	}
	if (defer && names_owed(md)) {
		/* Durable at the next settle: by a syncfs that begins after
		 * these renames, where syncfs is in use. */
		pthread_mutex_lock(&md->sync.mu);
		defer = md->sync.fs_ok && md->sync.fs_errno == 0;
		md->names_need = md->sync.fs_started + 1;
		pthread_mutex_unlock(&md->sync.mu);
		if (defer)
			return 0;
	}
	return dirs_sync(md, err);

fail:
	/* What was renamed is owed a sync that begins after it: no settle
	 * may count an older syncfs for these names. */
	if (renamed > 0) {
		pthread_mutex_lock(&md->sync.mu);
		md->names_need = md->sync.fs_started + 1;
		pthread_mutex_unlock(&md->sync.mu);
	}
	return -1;
}

int
maildir_commit(struct maildir *md, struct maildir_delivery *const *d,
    size_t n, bool *placed_r, struct pf_error *err)
{
	return commit_batch(md, d, n, placed_r, false, err);
}

int
maildir_commit_deferred(struct maildir *md, struct maildir_delivery *const *d,
    size_t n, bool *placed_r, struct pf_error *err)
{
	return commit_batch(md, d, n, placed_r, true, err);
}

void
maildir_delivery_free(struct maildir_delivery **d_r)
{
	struct maildir_delivery *d = *d_r;

	if (d == NULL)
		return;
	if (d->state == DELIVERY_FINISHED) {
		struct pf_error ignored;

		/* The sync thread must be done with it; a failure there has
		 * already removed the file. */
		(void)sync_wait(d, &ignored);
	}
	if (d->state == DELIVERY_WRITING || d->state == DELIVERY_FINISHED)
		delivery_fail(d);
	free(d->buf);
	free(d->tmp_name);
	free(d->final_name);
	free(d->location);
	free(d);
	*d_r = NULL;
}

/* A name from the seen-list that could be a file in new/ or cur/. */
static bool
name_is_plain(const char *name)
{
	return name[0] != '\0' && strchr(name, '/') == NULL &&
	    strcmp(name, ".") != 0 && strcmp(name, "..") != 0;
}

/*
 * Does directory entry `entry` hold the delivery named `name`?  A reader
 * keeps the name up to ':' and may add ",X=..." fields before it.
 */
static bool
entry_matches(const char *entry, const char *name)
{
	size_t base = strcspn(entry, ":"), len = strlen(name);

	return base >= len && memcmp(entry, name, len) == 0 &&
	    (base == len || entry[len] == ',');
}

/* Open a fresh directory stream on an open directory. */
static DIR *
open_dir_stream(int dirfd, const char *path, const char *sub,
    struct pf_error *err)
{
	DIR *dir;
	int fd;

	/* openat(".") gives a file offset of our own, unlike dup(). */
	if ((fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1) {
		pf_error_set_errno(err, PF_FAIL_IO, "open(%s/%s)", path, sub);
		return NULL;
	}
	if ((dir = fdopendir(fd)) == NULL) {
		pf_error_set_errno(err, PF_FAIL_IO, "opendir(%s/%s)", path, sub);
		close(fd);
	}
	return dir;
}

/* Scan new/ or cur/ once for the names not found yet. */
static int
scan_for(struct maildir *md, int dirfd, const char *sub,
    const char *const *names, size_t n, bool *found_r, struct pf_error *err)
{
	struct dirent *de;
	DIR *dir;
	size_t i;

	if ((dir = open_dir_stream(dirfd, md->path, sub, err)) == NULL)
		return -1;
	for (;;) {
		errno = 0;
		if ((de = readdir(dir)) == NULL)
			break;
		if (de->d_name[0] == '.')
			continue;
		for (i = 0; i < n; i++) {
			if (!found_r[i] && name_is_plain(names[i]) &&
			    entry_matches(de->d_name, names[i]))
				found_r[i] = true;
		}
	}
	if (errno != 0) {
		pf_error_set_errno(err, PF_FAIL_IO, "readdir(%s/%s)", md->path,
		    sub);
		closedir(dir);
		return -1;
	}
	closedir(dir);
	return 0;
}

/*
 * Is `location` ".Junk/NAME", a delivery into a Maildir++ folder?  Then
 * folder (size NAME_MAX + 1) gets ".Junk" and *name_r points at NAME.
 */
static bool
split_folder(const char *location, char *folder, const char **name_r)
{
	const char *slash = strchr(location, '/');
	size_t len;

	if (slash == NULL || location[0] != '.')
		return false;
	len = (size_t)(slash - location);
	if (len < 2 || len > NAME_MAX)
		return false;
	memcpy(folder, location, len);
	folder[len] = '\0';
	*name_r = slash + 1;
	return deliver_folder_ok(folder + 1) && name_is_plain(*name_r);
}

/* maildir_find_delivered for one delivery into a Maildir++ folder; one
 * that does not exist holds nothing. */
static int
find_in_folder(struct maildir *md, const char *folder, const char *name,
    bool *found_r, struct pf_error *err)
{
	char path[PATH_MAX], sub[NAME_MAX + 8];
	struct stat st;
	int new_fd = -1, cur_fd = -1, rc = -1;

	*found_r = false;
	if (path_join(path, sizeof(path), md->path, folder, err) == -1)
		return -1;
	errno = 0;
	if (open_folder_sub(path, "new", &new_fd, err) == -1 ||
	    open_folder_sub(path, "cur", &cur_fd, err) == -1) {
		if (errno == ENOENT || errno == ENOTDIR)
			rc = 0;
		goto done;
	}
	if (fstatat(new_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
		*found_r = true;
	snprintf(sub, sizeof(sub), "%s/cur", folder);
	if (!*found_r && scan_for(md, cur_fd, sub, &name, 1, found_r,
	    err) == -1)
		goto done;
	snprintf(sub, sizeof(sub), "%s/new", folder);
	if (!*found_r && scan_for(md, new_fd, sub, &name, 1, found_r,
	    err) == -1)
		goto done;
	/* What the caller marks done next must be durable first. */
	if (*found_r && (fsync_dir_fd(new_fd, md->path, sub, err) == -1 ||
	    (snprintf(sub, sizeof(sub), "%s/cur", folder),
	    fsync_dir_fd(cur_fd, md->path, sub, err) == -1)))
		goto done;
	rc = 0;
done:
	if (new_fd != -1)
		close(new_fd);
	if (cur_fd != -1)
		close(cur_fd);
	return rc;
}

int
maildir_find_delivered(struct maildir *md, const char *const *names,
    size_t n, bool *found_r, struct pf_error *err)
{
	char folder[NAME_MAX + 1];
	const char *name;
	struct stat st;
	size_t i, missing = 0, found = 0;

	for (i = 0; i < n; i++) {
		found_r[i] = false;
		if (split_folder(names[i], folder, &name)) {
			if (find_in_folder(md, folder, name, &found_r[i],
			    err) == -1)
				return -1;
			continue;
		}
		if (!name_is_plain(names[i]))
			continue;
		if (fstatat(md->new_fd, names[i], &st, AT_SYMLINK_NOFOLLOW) == 0)
			found_r[i] = true;
		else if (errno == ENOENT || errno == ENAMETOOLONG)
			missing++;
		else
			return pf_error_set_errno(err, PF_FAIL_IO,
			    "stat(%s/new/%s)", md->path, names[i]);
	}
	if (missing > 0 &&
	    (scan_for(md, md->cur_fd, "cur", names, n, found_r, err) == -1 ||
	    scan_for(md, md->new_fd, "new", names, n, found_r, err) == -1))
		return -1;
	for (i = 0; i < n; i++)
		found += found_r[i];
	/* What the caller marks done next must be durable first. */
	if (found > 0 &&
	    (fsync_dir_fd(md->new_fd, md->path, "new", err) == -1 ||
	    fsync_dir_fd(md->cur_fd, md->path, "cur", err) == -1))
		return -1;
	return 0;
}

/* Parse the decimal number at *pp, advancing it; false if there is none. */
static bool
parse_number(const char **pp, unsigned long long *value_r)
{
	const char *p = *pp;
	unsigned long long v = 0;

	if (*p < '0' || *p > '9')
		return false;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > (ULLONG_MAX - 9) / 10)
			return false;
		v = v * 10 + (unsigned long long)(*p - '0');
	}
	*pp = p;
	*value_r = v;
	return true;
}

/*
 * Is tmp/`name` a popfetch file of this host whose process is gone (or is
 * this process)?  Form: time.M<usec>P<pid>Q<n>.<host>,popfetch.
 */
static bool
tmp_is_orphan(const struct maildir *md, const char *name)
{
	size_t len = strlen(name), mlen = strlen(TMP_MARKER), hlen;
	unsigned long long v, pid;
	const char *p = name;

	if (len <= mlen || strcmp(name + len - mlen, TMP_MARKER) != 0)
		return false;
	if (!parse_number(&p, &v) || strncmp(p, ".M", 2) != 0)
		return false;
	p += 2;
	if (!parse_number(&p, &v) || *p++ != 'P' || !parse_number(&p, &pid) ||
	    *p++ != 'Q' || !parse_number(&p, &v) || *p++ != '.')
		return false;
	hlen = (size_t)(name + len - mlen - p);
	if (hlen != strlen(md->host) || memcmp(p, md->host, hlen) != 0)
		return false;
	if (pid == 0 || pid > INT_MAX)
		return false;
	if ((pid_t)pid == getpid())
		return true;
	return kill((pid_t)pid, 0) == -1 && errno == ESRCH;
}

int
maildir_clean_tmp(struct maildir *md, size_t *removed_r, struct pf_error *err)
{
	struct dirent *de;
	struct stat st;
	time_t now;
	size_t removed = 0;
	DIR *dir;

	if (removed_r != NULL)
		*removed_r = 0;
	if ((dir = open_dir_stream(md->tmp_fd, md->path, "tmp", err)) == NULL)
		return -1;
	now = time(NULL);
	for (;;) {
		errno = 0;
		if ((de = readdir(dir)) == NULL)
			break;
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (fstatat(md->tmp_fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == -1) {
			if (errno == ENOENT)
				continue;
			pf_error_set_errno(err, PF_FAIL_IO, "stat(%s/tmp/%s)",
			    md->path, de->d_name);
			goto fail;
		}
		if (S_ISDIR(st.st_mode))
			continue;
		/* mtime: a writer keeps it fresh; the spec's atime is unreliable
		 * under noatime/relatime. */
		if (now - st.st_mtime < MAILDIR_TMP_STALE &&
		    !tmp_is_orphan(md, de->d_name))
			continue;
		if (unlinkat(md->tmp_fd, de->d_name, 0) == -1) {
			if (errno == ENOENT)
				continue;
			pf_error_set_errno(err, PF_FAIL_IO, "unlink(%s/tmp/%s)",
			    md->path, de->d_name);
			goto fail;
		}
		removed++;
	}
	if (errno != 0) {
		pf_error_set_errno(err, PF_FAIL_IO, "readdir(%s/tmp)", md->path);
		goto fail;
	}
	closedir(dir);
	if (removed_r != NULL)
		*removed_r = removed;
	return 0;

fail:
	closedir(dir);
	return -1;
}

/* ---- the delivery backend (store/deliver.h) ---- */

/* The Maildir and delivery behind the seam's views (their first member). */
#define MD(t)	((struct maildir *)(void *)(t))
#define MDD(m)	((struct maildir_delivery *)(void *)(m))

/* Is dir still a Maildir (tmp/, new/, cur/)?  One that is gone, or no
 * longer one, holds none of the messages a pending row names: better than
 * an account stuck on a folder its user took apart (doc/DESIGN.md §7). */
static bool
looks_like_maildir(const char *dir)
{
	static const char *const subs[] = { "tmp", "new", "cur" };
	struct pf_error ignored;
	char sub[PATH_MAX];
	size_t i;

	for (i = 0; i < 3; i++)
		if (path_join(sub, sizeof(sub), dir, subs[i], &ignored) == -1 ||
		    access(sub, F_OK) == -1)
			return false;
	return true;
}

/* A recorded target that no other backend claims is a Maildir's path. */
static bool
be_owns(const char *target)
{
	(void)target;
	return true;
}

static int
be_open(const char *target, enum deliver_open_mode how, struct deliver **t_r,
    struct pf_error *err)
{
	struct maildir *md = NULL;

	if (how == DELIVER_EXISTING ? !looks_like_maildir(target) :
	    maildir_create(target, err) == -1)
		return how == DELIVER_EXISTING ? 0 : -1;
	if (maildir_open(target, &md, err) == -1)
		return -1;
	*t_r = &md->base;
	return 0;
}

static void
be_close(struct deliver *t)
{
	struct maildir *md = MD(t);

	maildir_close(&md);
}

static const char *
be_target(const struct deliver *t)
{
	return maildir_path((const struct maildir *)(const void *)t);
}

static int
be_begin(struct deliver *t, struct deliver_msg **m_r, struct pf_error *err)
{
	struct maildir_delivery *d;

	if (maildir_deliver_begin(MD(t), &d, err) == -1)
		return -1;
	*m_r = &d->base;
	return 0;
}

static int
be_write(struct deliver_msg *m, const void *buf, size_t len,
    struct pf_error *err)
{
	return maildir_deliver_write(MDD(m), buf, len, err);
}

static int
be_finish(struct deliver_msg *m, struct pf_error *err)
{
	return maildir_deliver_finish(MDD(m), err);
}

static const char *
be_location(const struct deliver_msg *m)
{
	const struct maildir_delivery *d = (const void *)m;

	return d->location != NULL ? d->location : maildir_delivery_name(d);
}

static int
be_label(struct deliver_msg *m, const struct deliver_label *l,
    struct pf_error *err)
{
	return maildir_deliver_folder(MDD(m), l->folder, err);
}

static uint64_t
be_size(const struct deliver_msg *m)
{
	return maildir_delivery_size((const struct maildir_delivery *)
	    (const void *)m);
}

static int
commit_either(struct deliver *t, struct deliver_msg *const *m, size_t n,
    struct deliver_result *res, bool defer, struct pf_error *err)
{
	struct maildir_delivery **d = xcalloc(n + 1, sizeof(*d));
	bool *placed = xcalloc(n + 1, sizeof(*placed));
	size_t i;
	int rc;

	for (i = 0; i < n; i++)
		d[i] = MDD(m[i]);
	rc = commit_batch(MD(t), d, n, placed, defer, err);
	for (i = 0; i < n; i++)
		res[i] = (struct deliver_result){
			placed[i] ? DELIVER_PLACED : DELIVER_TAKEN, NULL };
	free(d);
	free(placed);
	return rc;
}

static int
be_commit(struct deliver *t, struct deliver_msg *const *m, size_t n,
    struct deliver_result *res, struct pf_error *err)
{
	return commit_either(t, m, n, res, false, err);
}

static int
be_commit_deferred(struct deliver *t, struct deliver_msg *const *m, size_t n,
    struct deliver_result *res, struct pf_error *err)
{
	return commit_either(t, m, n, res, true, err);
}

static int
be_settle(struct deliver *t, struct deliver_msg *const *m, size_t n,
    struct pf_error *err)
{
	struct maildir_delivery **d = xcalloc(n + 1, sizeof(*d));
	size_t i;
	int rc;

	for (i = 0; i < n; i++)
		d[i] = MDD(m[i]);
	rc = maildir_settle(MD(t), d, n, err);
	free(d);
	return rc;
}

static void
be_free(struct deliver_msg *m)
{
	struct maildir_delivery *d = MDD(m);

	maildir_delivery_free(&d);
}

static int
be_find(struct deliver *t, const char *const *locations, size_t n,
    bool *found_r, struct pf_error *err)
{
	return maildir_find_delivered(MD(t), locations, n, found_r, err);
}

static int
be_clean(struct deliver *t, size_t *removed_r, struct pf_error *err)
{
	return maildir_clean_tmp(MD(t), removed_r, err);
}

const struct deliver_backend deliver_maildir = {
	.kind = "maildir",
	.owns = be_owns,
	.open = be_open,
	.close = be_close,
	.target = be_target,
	.begin = be_begin,
	.write = be_write,
	.finish = be_finish,
	.location = be_location,
	.label = be_label,
	.size = be_size,
	.commit = be_commit,
	.commit_deferred = be_commit_deferred,
	.settle = be_settle,
	.free = be_free,
	.find = be_find,
	.clean = be_clean,
};
