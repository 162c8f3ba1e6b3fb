/*
 * floor - the local cost of durably delivering N small messages, with no
 * network and no POP3: the durable floor that bench/run's "small" scenario
 * times beside popfetch and the raw network limit, in the same rounds.
 *
 * N files of SIZE bytes are written into DIR/tmp in batches of B; each batch
 * is made durable with one syncfs(2), renamed into DIR/new, and DIR/new is
 * fsynced once per batch.  Prints "wall_s=<seconds>".
 *
 *   cc -O2 -o floor bench/floor.c && ./floor 20000 64 7168 /tmp/floor-md
 */
#define _GNU_SOURCE
#include <sys/stat.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void
fail(const char *call, const char *dir, const char *sub, long i)
{
	fprintf(stderr, "floor: %s(%s/%s/m%ld): ", call, dir, sub, i);
	perror(NULL);
	exit(1);
}

int
main(int argc, char **argv)
{
	struct timespec t0, t1;
	char name[32], path[4096], *buf;
	long n, b, size, i, j, end;
	int tmp_fd, new_fd, fd;

	if (argc != 5 || (n = atol(argv[1])) < 1 || (b = atol(argv[2])) < 1 ||
	    (size = atol(argv[3])) < 1) {
		fprintf(stderr, "usage: floor N BATCH SIZE DIR\n");
		return 2;
	}
	if ((buf = malloc((size_t)size)) == NULL)
		return 1;
	memset(buf, 'm', (size_t)size);
	(void)mkdir(argv[4], 0700);
	snprintf(path, sizeof(path), "%s/tmp", argv[4]);
	(void)mkdir(path, 0700);
	if ((tmp_fd = open(path, O_RDONLY | O_DIRECTORY)) == -1)
		fail("open", argv[4], "tmp", -1);
	snprintf(path, sizeof(path), "%s/new", argv[4]);
	(void)mkdir(path, 0700);
	if ((new_fd = open(path, O_RDONLY | O_DIRECTORY)) == -1)
		fail("open", argv[4], "new", -1);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < n; i = end) {
		end = i + b < n ? i + b : n;
		for (j = i; j < end; j++) {
			snprintf(name, sizeof(name), "m%ld", j);
			fd = openat(tmp_fd, name, O_WRONLY | O_CREAT | O_EXCL, 0600);
			if (fd == -1)
				fail("open", argv[4], "tmp", j);
			if (write(fd, buf, (size_t)size) != (ssize_t)size)
				fail("write", argv[4], "tmp", j);
			if (close(fd) == -1)
				fail("close", argv[4], "tmp", j);
		}
		if (syncfs(tmp_fd) == -1)
			fail("syncfs", argv[4], "tmp", i);
		for (j = i; j < end; j++) {
			snprintf(name, sizeof(name), "m%ld", j);
			if (renameat(tmp_fd, name, new_fd, name) == -1)
				fail("rename", argv[4], "new", j);
		}
		if (fsync(new_fd) == -1)
			fail("fsync", argv[4], "new", i);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("wall_s=%.3f\n", (double)(t1.tv_sec - t0.tv_sec) +
	    (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	return 0;
}
