/*
 * fuzz_conf.c - the configuration loader (config/conf.h conf_load).
 *
 * The input is the whole file.  It is written, mode 0600, to one temp file
 * (in a directory made once per process and removed at exit), loaded, and
 * the result checked: on success the rules of popfetch.conf(5) that conf_load
 * promises (names, ranges, required options, password xor
 * password_command, no clear-text secret over tls = none unless allowed,
 * `~` expanded); on failure no configuration and a PF_FAIL_CONFIG error
 * that starts with the file's name and names a line the file has, if any
 * (not PF_FAIL_INTERNAL, which conf_load also gives should its pre-scan
 * and libconfuse disagree on where a value stands).  conf_load prints
 * nothing: it fills the error.  No file descriptor may stay open after an
 * iteration.
 *
 * HOME is set to the temp directory so that `~` expands the same way
 * everywhere; XDG_STATE_HOME is unset.  FUZZ_TRACE=1 prints the outcome.
 */
#include "config.h"

#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"
#include "error.h"
#include "fuzz_util.h"
#include "fuzz_conf_util.h"
#include "log.h"
#include "params.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log_init(-1, false);
	fz_conf_sandbox("fuzz_conf");
	return 0;
}

static bool
name_ok(const char *name)
{
	size_t i, n = strlen(name);

	if (n == 0 || n > CONF_ACCOUNT_NAME_MAX || name[0] == '.' ||
	    name[0] == '-')
		return false;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || strchr("._-@+", c) != NULL))
			return false;
	}
	return true;
}

static void
check_conf(const struct conf *conf)
{
	size_t i, j;

	FZ_CHECK(strcmp(conf->path, fz_conf_path) == 0);
	FZ_CHECK(conf->state_dir != NULL && conf->state_dir[0] != '~');
	FZ_CHECK(conf->timeout >= 1 && conf->timeout <= CONF_TIMEOUT_MAX);
	FZ_CHECK(conf->naccounts == 0 || conf->accounts != NULL);
	for (i = 0; i < conf->naccounts; i++) {
		const struct conf_account *a = &conf->accounts[i];

		FZ_CHECK(a->name != NULL && name_ok(a->name));
		for (j = 0; j < i; j++)
			FZ_CHECK(strcmp(conf->accounts[j].name, a->name) != 0);
		FZ_CHECK(conf_account_find(conf, a->name) == a);
		FZ_CHECK(a->host != NULL && a->user != NULL);
		FZ_CHECK(a->maildir != NULL && a->maildir[0] != '~');
		FZ_CHECK(a->tls_ca_file == NULL || a->tls_ca_file[0] != '~');
		FZ_CHECK(a->port >= 1 && a->port <= 65535);
		FZ_CHECK(a->tls >= CONF_TLS_IMPLICIT && a->tls <= CONF_TLS_NONE);
		FZ_CHECK(conf_tls_name(a->tls) != NULL);
		/* A value config knows ("?" otherwise), the last one included
		 * whichever it is. */
		FZ_CHECK(strcmp(conf_auth_name(a->auth), "?") != 0);
		FZ_CHECK((a->password != NULL) != (a->password_command != NULL));
		FZ_CHECK(a->password == NULL ||
		    strpbrk(a->password, "\r\n") == NULL);
		FZ_CHECK(a->timeout >= 1 && a->timeout <= CONF_TIMEOUT_MAX);
		FZ_CHECK(a->delete_after_days <= CONF_DELETE_AFTER_DAYS_MAX);
		FZ_CHECK(a->forget_after_days <= CONF_DELETE_AFTER_DAYS_MAX);
		FZ_CHECK(a->max_size <= INT64_MAX);
		if (a->tls == CONF_TLS_NONE && !a->allow_plaintext_password)
			FZ_CHECK(a->auth != CONF_AUTH_AUTO &&
			    !conf_auth_reveals_secret(a->auth));
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct conf *conf = (struct conf *)&conf;	/* poison */
	struct pf_error err;
	size_t off = 0, plen;
	long line, nlines;
	ssize_t n;
	int fd, rc, first_free_fd;

	first_free_fd = fz_lowest_free_fd();
	fd = open(fz_conf_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	FZ_CHECK(fd >= 0);
	FZ_CHECK(fchmod(fd, 0600) == 0);
	while (off < size) {
		n = write(fd, data + off, size - off);
		FZ_CHECK(n > 0);
		off += (size_t)n;
	}
	FZ_CHECK(close(fd) == 0);

	pf_error_clear(&err);
	rc = conf_load(fz_conf_path, &conf, &err);
	if (rc == 0) {
		FZ_CHECK(conf != NULL);
		FZ_CHECK(err.category == PF_OK);
		if (getenv("FUZZ_TRACE") != NULL)
			fprintf(stderr, "conf_load: ok, %zu accounts\n",
			    conf->naccounts);
		check_conf(conf);
		conf_free(&conf);
		FZ_CHECK(conf == NULL);
	} else {
		FZ_CHECK(rc == -1);
		FZ_CHECK(conf == NULL);
		if (getenv("FUZZ_TRACE") != NULL)
			fprintf(stderr, "conf_load: %s\n", err.what);
		fz_check_error(&err);
		FZ_CHECK(err.category == PF_FAIL_CONFIG);
		/* "FILE[:LINE]: ...": the file's name comes first. */
		plen = strlen(fz_conf_path);
		FZ_CHECK(strncmp(err.what, fz_conf_path, plen) == 0);
		FZ_CHECK(err.what[plen] == ':');
		/* A line it names is one of the file's. */
		if (err.what[plen + 1] >= '0' && err.what[plen + 1] <= '9') {
			line = strtol(err.what + plen + 1, NULL, 10);
			for (nlines = 1, off = 0; off < size; off++)
				nlines += data[off] == '\n';
			FZ_CHECK(line >= 1 && line <= nlines);
		}
	}
	FZ_CHECK(fz_lowest_free_fd() == first_free_fd);
	return 0;
}
