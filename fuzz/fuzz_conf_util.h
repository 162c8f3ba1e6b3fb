/*
 * fuzz_conf_util.h - the sandbox the configuration harnesses (fuzz_conf,
 * fuzz_expand) share: a private directory as $HOME holding the file that
 * conf_load() reads, removed at exit, and a check for leaked descriptors.
 * Included once per harness, after fuzz_util.h.
 */
#ifndef POPFETCH_FUZZ_CONF_UTIL_H
#define POPFETCH_FUZZ_CONF_UTIL_H

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static char	 fz_tmpdir[4096];
static char	 fz_conf_path[4200];	/* the configuration file */

static void
fz_conf_cleanup(void)
{
	if (fz_conf_path[0] != '\0')
		unlink(fz_conf_path);
	if (fz_tmpdir[0] != '\0')
		rmdir(fz_tmpdir);
}

/* Make the sandbox under $TMPDIR, named after the harness. */
static void
fz_conf_sandbox(const char *harness)
{
	const char *t = getenv("TMPDIR");

	snprintf(fz_tmpdir, sizeof(fz_tmpdir), "%s/%s.XXXXXX",
	    t != NULL && t[0] != '\0' ? t : "/tmp", harness);
	if (mkdtemp(fz_tmpdir) == NULL) {
		perror(fz_tmpdir);
		abort();
	}
	snprintf(fz_conf_path, sizeof(fz_conf_path), "%s/popfetch.conf",
	    fz_tmpdir);
	atexit(fz_conf_cleanup);
	setenv("HOME", fz_tmpdir, 1);
	unsetenv("XDG_STATE_HOME");
}

/* The lowest free descriptor: grows if an iteration leaks one. */
static int
fz_lowest_free_fd(void)
{
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

	FZ_CHECK(fd >= 0);
	close(fd);
	return fd;
}

#endif
