/*
 * syncbench - which way of making small Maildir files durable is fastest?
 * The mechanisms popfetch could use for a group commit of small messages,
 * timed in the same run, in alternating rounds (the disk of a shared machine
 * is erratic: compare only within one run).  Every candidate does the same
 * work: N files of SIZE bytes created in DIR/tmp, in batches of B; a batch's
 * files are durable before any of them is renamed into DIR/new, and DIR/new
 * is fsynced once per batch.  Only how the file data becomes durable differs:
 *
 *   threads   each file written and fsynced by one of 8 threads as it is
 *             finished; the batch waits for its files (popfetch 0.x)
 *   syncfs    files written and closed, no fsync; one syncfs(2) per batch
 *   sfr       sync_file_range(SYNC_FILE_RANGE_WRITE) when written, then
 *             fdatasync of each file at the batch's end
 *   sfr-syncfs  sync_file_range(WRITE) when written, one syncfs per batch
 *   uring     files written, then one io_uring submission of B fsyncs per
 *             batch (only when built with -DHAVE_LIBURING -luring)
 *
 *   cc -O2 -pthread -o syncbench bench/syncbench.c [-DHAVE_LIBURING -luring]
 *   ./syncbench [-n N] [-b B] [-s SIZE] [-r ROUNDS] [-c a,b,...] DIR
 *
 * Prints one line per run ("round R <candidate> <seconds>") and then the
 * median, minimum and maximum per candidate.  Every run writes into a fresh
 * DIR/<round>-<candidate>/{tmp,new}, and sync(2) is called before it, so no
 * write-back of one candidate is paid by the next.  The files are removed
 * only after the last run: on ext4, creating files next to tens of
 * thousands just deleted costs much kernel CPU for a while (see "discard"
 * in bench/run), which would be charged to whichever candidate runs next.
 */
#define _GNU_SOURCE
#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifdef HAVE_LIBURING
#include <liburing.h>
#endif

#define THREADS		8
#define MAX_ROUNDS	64

static int	 n_files = 20000, batch = 64, file_size = 7168;
static int	 tmp_fd, new_fd;
static char	*data;

static void
die(const char *what)
{
	perror(what);
	exit(1);
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Create and write file i in tmp/; returns the open fd. */
static int
write_file(int i)
{
	char name[32];
	int fd;

	snprintf(name, sizeof(name), "f%d", i);
	fd = openat(tmp_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd == -1)
		die("open");
	if (write(fd, data, (size_t)file_size) != file_size)
		die("write");
	return fd;
}

static void
xclose(int fd)
{
	if (close(fd) == -1)
		die("close");
}

/* Rename files [from, to) into new/ and fsync new/. */
static void
publish(int from, int to)
{
	char name[32];
	int i;

	for (i = from; i < to; i++) {
		snprintf(name, sizeof(name), "f%d", i);
		if (renameat(tmp_fd, name, new_fd, name) == -1)
			die("rename");
	}
	if (fsync(new_fd) == -1)
		die("fsync(new)");
}

/* ---- threads: today's popfetch ---- */

static pthread_mutex_t	mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t	work = PTHREAD_COND_INITIALIZER;
static pthread_cond_t	done_cv = PTHREAD_COND_INITIALIZER;
static int		next_job, queued, finished;
static char		*fdone;		/* file i fsynced and closed */
static bool		stop;

/* Wait (mu held) until files [from, to) are fsynced. */
static void
wait_files(int from, int to)
{
	int i;

	for (i = from; i < to; i++)
		while (!fdone[i])
			pthread_cond_wait(&done_cv, &mu);
}

static void *
worker(void *arg)
{
	int i, fd;

	(void)arg;
	pthread_mutex_lock(&mu);
	for (;;) {
		while (next_job == queued && !stop)
			pthread_cond_wait(&work, &mu);
		if (next_job == queued)
			break;
		i = next_job++;
		pthread_mutex_unlock(&mu);
		fd = write_file(i);
		if (fsync(fd) == -1)
			die("fsync");
		xclose(fd);
		pthread_mutex_lock(&mu);
		finished++;
		fdone[i] = 1;
		pthread_cond_broadcast(&done_cv);
	}
	pthread_mutex_unlock(&mu);
	return NULL;
}

/* Files are handed over one by one; a batch is published when the next
 * one is full (two in flight, as popfetch's group commit does). */
static void
run_threads(void)
{
	pthread_t t[THREADS];
	int i, prev = -1, from;

	next_job = queued = finished = 0;
	stop = false;
	if ((fdone = calloc((size_t)n_files, 1)) == NULL)
		die("calloc");
	for (i = 0; i < THREADS; i++)
		if (pthread_create(&t[i], NULL, worker, NULL) != 0)
			die("pthread_create");
	for (from = 0; from < n_files; from += batch) {
		int to = from + batch < n_files ? from + batch : n_files;

		pthread_mutex_lock(&mu);
		queued = to;
		pthread_cond_broadcast(&work);
		pthread_mutex_unlock(&mu);
		if (prev >= 0) {
			/* publish the previous batch once all its files are in */
			pthread_mutex_lock(&mu);
			wait_files(prev, from);
			pthread_mutex_unlock(&mu);
			publish(prev, from);
		}
		prev = from;
	}
	pthread_mutex_lock(&mu);
	while (finished < n_files)
		pthread_cond_wait(&done_cv, &mu);
	stop = true;
	pthread_cond_broadcast(&work);
	pthread_mutex_unlock(&mu);
	publish(prev, n_files);
	for (i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	free(fdone);
}

/* ---- syncfs per batch (optionally with early write-back) ---- */

static void
run_syncfs(bool sfr)
{
	int from, i;

	for (from = 0; from < n_files; from += batch) {
		int to = from + batch < n_files ? from + batch : n_files;

		for (i = from; i < to; i++) {
			int fd = write_file(i);

			if (sfr && sync_file_range(fd, 0, 0,
			    SYNC_FILE_RANGE_WRITE) == -1)
				die("sync_file_range");
			xclose(fd);
		}
		if (syncfs(tmp_fd) == -1)
			die("syncfs");
		publish(from, to);
	}
}

/* ---- sync_file_range at write time, fdatasync per file per batch ---- */

static void
run_sfr(void)
{
	int *fds = calloc((size_t)batch, sizeof(*fds));
	int from, i;

	if (fds == NULL)
		die("calloc");
	for (from = 0; from < n_files; from += batch) {
		int to = from + batch < n_files ? from + batch : n_files;

		for (i = from; i < to; i++) {
			fds[i - from] = write_file(i);
			if (sync_file_range(fds[i - from], 0, 0,
			    SYNC_FILE_RANGE_WRITE) == -1)
				die("sync_file_range");
		}
		for (i = from; i < to; i++) {
			if (fdatasync(fds[i - from]) == -1)
				die("fdatasync");
			xclose(fds[i - from]);
		}
		publish(from, to);
	}
	free(fds);
}

#ifdef HAVE_LIBURING
/* ---- io_uring: one submission of a batch's fsyncs ---- */

static void
run_uring(void)
{
	struct io_uring ring;
	int *fds = calloc((size_t)batch, sizeof(*fds));
	int from, i, rc;

	if (fds == NULL)
		die("calloc");
	if ((rc = io_uring_queue_init((unsigned)batch, &ring, 0)) < 0) {
		errno = -rc;
		die("io_uring_queue_init");
	}
	for (from = 0; from < n_files; from += batch) {
		int to = from + batch < n_files ? from + batch : n_files;

		for (i = from; i < to; i++) {
			struct io_uring_sqe *sqe;

			fds[i - from] = write_file(i);
			sqe = io_uring_get_sqe(&ring);
			io_uring_prep_fsync(sqe, fds[i - from], 0);
		}
		if ((rc = io_uring_submit_and_wait(&ring,
		    (unsigned)(to - from))) < 0) {
			errno = -rc;
			die("io_uring_submit");
		}
		for (i = from; i < to; i++) {
			struct io_uring_cqe *cqe;

			if ((rc = io_uring_wait_cqe(&ring, &cqe)) < 0) {
				errno = -rc;
				die("io_uring_wait_cqe");
			}
			if (cqe->res < 0) {
				errno = -cqe->res;
				die("fsync (io_uring)");
			}
			io_uring_cqe_seen(&ring, cqe);
		}
		for (i = from; i < to; i++)
			xclose(fds[i - from]);
		publish(from, to);
	}
	io_uring_queue_exit(&ring);
	free(fds);
}
#endif

/* ---- driver ---- */

struct cand {
	const char	*name;
	void		(*run)(void);
	double		 t[MAX_ROUNDS];
};

static void run_syncfs_plain(void) { run_syncfs(false); }
static void run_syncfs_sfr(void) { run_syncfs(true); }

static struct cand cands[] = {
	{ "threads", run_threads, { 0 } },
	{ "syncfs", run_syncfs_plain, { 0 } },
	{ "sfr", run_sfr, { 0 } },
	{ "sfr-syncfs", run_syncfs_sfr, { 0 } },
#ifdef HAVE_LIBURING
	{ "uring", run_uring, { 0 } },
#endif
};
#define NCANDS	(sizeof(cands) / sizeof(cands[0]))

/* Remove every file in the directory open as dfd. */
static void
empty_dir(int dfd)
{
	int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY);
	DIR *d;
	struct dirent *de;

	if (fd == -1 || (d = fdopendir(fd)) == NULL)
		die("opendir");
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.' && unlinkat(dfd, de->d_name, 0) == -1)
			die("unlink");
	closedir(d);
}

/* Open (making them) DIR/<round>-<name>/tmp and new as tmp_fd, new_fd. */
static void
open_run_dir(const char *dir, int round, const char *name)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/%d-%s", dir, round + 1, name);
	(void)mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/%d-%s/tmp", dir, round + 1, name);
	(void)mkdir(path, 0700);
	if ((tmp_fd = open(path, O_RDONLY | O_DIRECTORY)) == -1)
		die(path);
	snprintf(path, sizeof(path), "%s/%d-%s/new", dir, round + 1, name);
	(void)mkdir(path, 0700);
	if ((new_fd = open(path, O_RDONLY | O_DIRECTORY)) == -1)
		die(path);
}

static void
remove_run_dir(const char *dir, int round, const char *name)
{
	char path[4096];
	static const char *const subs[] = { "/tmp", "/new", "" };
	size_t i;

	for (i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/%d-%s%s", dir, round + 1,
		    name, subs[i]);
		if (rmdir(path) == -1)
			die(path);
	}
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int
main(int argc, char **argv)
{
	char want[256] = "";
	bool use[NCANDS];
	int c, rounds = 5, r;
	size_t i, k;

	while ((c = getopt(argc, argv, "n:b:s:r:c:")) != -1) {
		switch (c) {
		case 'n': n_files = atoi(optarg); break;
		case 'b': batch = atoi(optarg); break;
		case 's': file_size = atoi(optarg); break;
		case 'r': rounds = atoi(optarg); break;
		case 'c': snprintf(want, sizeof(want), ",%s,", optarg); break;
		default: goto usage;
		}
	}
	if (optind != argc - 1 || n_files < 1 || batch < 1 || file_size < 1 ||
	    rounds < 1 || rounds > MAX_ROUNDS) {
usage:
		fprintf(stderr, "usage: syncbench [-n N] [-b B] [-s SIZE] "
		    "[-r ROUNDS] [-c cand,...] DIR\n");
		return 2;
	}
	for (i = 0; i < NCANDS; i++) {
		char key[64];

		snprintf(key, sizeof(key), ",%s,", cands[i].name);
		use[i] = want[0] == '\0' || strstr(want, key) != NULL;
	}
	if ((data = malloc((size_t)file_size)) == NULL)
		die("malloc");
	memset(data, 'x', (size_t)file_size);
	(void)mkdir(argv[optind], 0700);
	printf("syncbench: %d files x %d bytes, batch %d, %d rounds\n",
	    n_files, file_size, batch, rounds);
	for (r = 0; r < rounds; r++) {
		/* rotate the order so that no candidate always goes first */
		for (k = 0; k < NCANDS; k++) {
			struct cand *cd = &cands[(k + (size_t)r) % NCANDS];
			double t0;

			if (!use[(k + (size_t)r) % NCANDS])
				continue;
			open_run_dir(argv[optind], r, cd->name);
			sync();
			t0 = now();
			cd->run();
			cd->t[r] = now() - t0;
			printf("round %d %-11s %.3f s\n", r + 1, cd->name,
			    cd->t[r]);
			fflush(stdout);
			empty_dir(tmp_fd);	/* nothing is left in tmp/ */
			close(tmp_fd);
			close(new_fd);
		}
	}
	/* only now: remove every run's files */
	for (r = 0; r < rounds; r++)
		for (i = 0; i < NCANDS; i++) {
			if (!use[i])
				continue;
			open_run_dir(argv[optind], r, cands[i].name);
			empty_dir(new_fd);
			close(tmp_fd);
			close(new_fd);
			remove_run_dir(argv[optind], r, cands[i].name);
		}
	printf("%-11s %8s %8s %8s\n", "candidate", "median", "min", "max");
	for (i = 0; i < NCANDS; i++) {
		if (!use[i])
			continue;
		qsort(cands[i].t, (size_t)rounds, sizeof(double), cmp_double);
		printf("%-11s %8.3f %8.3f %8.3f\n", cands[i].name,
		    rounds % 2 ? cands[i].t[rounds / 2] :
		    (cands[i].t[rounds / 2 - 1] + cands[i].t[rounds / 2]) / 2,
		    cands[i].t[0], cands[i].t[rounds - 1]);
	}
	return 0;
}
