/*
 * test_resume.c - the TLS session file (store/resume.c, doc/DESIGN.md §12):
 * round trip, mode 0600, and every way a file is not used: another key, a
 * torn or changed file, a file that is not private or not a regular file.
 */
#include "config.h"

#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "error.h"
#include "params.h"
#include "resume.h"
#include "testutil.h"

#define ACCOUNT	"work"

struct fixture {
	char	 dir[PATH_MAX];		/* first (test_fixture_new): state_dir */
	char	 file[PATH_MAX];	/* dir/tls-session.work */
	unsigned char key[RESUME_KEY_LEN];
	unsigned char blob[1000];
};

static int
setup(void **state)
{
	struct fixture *f = test_fixture_new(sizeof(*f), "test_resume");
	size_t i;

	if (f == NULL)
		return -1;
	test_pathf(f->file, sizeof(f->file), "%s/tls-session.%s", f->dir,
	    ACCOUNT);
	for (i = 0; i < sizeof(f->key); i++)
		f->key[i] = (unsigned char)(i * 7 + 1);
	for (i = 0; i < sizeof(f->blob); i++)
		f->blob[i] = (unsigned char)(i * 13 + 5);
	*state = f;
	return 0;
}

static void
save(struct fixture *f)
{
	struct pf_error err;

	assert_int_equal(resume_save(f->dir, ACCOUNT, f->key, f->blob,
	    sizeof(f->blob), &err), 0);
}

/* resume_load must refuse, with a reason containing `want`. */
static void
refused(struct fixture *f, const unsigned char *key, const char *want)
{
	unsigned char *blob = (unsigned char *)"x";
	size_t len = 1;
	char why[128];

	assert_int_equal(resume_load(f->dir, ACCOUNT, key, &blob, &len, why,
	    sizeof(why)), -1);
	assert_null(blob);
	assert_int_equal(len, 0);
	fprintf(stderr, "# %s\n", why);
	assert_non_null(strstr(why, want));
}

/* The file's bytes, and a rewrite of them (mode 0600 kept). */
static size_t
slurp(const char *path, unsigned char *buf, size_t size)
{
	FILE *fp = fopen(path, "rb");
	size_t n;

	assert_non_null(fp);
	n = fread(buf, 1, size, fp);
	fclose(fp);
	return n;
}

static void
rewrite(const char *path, const unsigned char *buf, size_t len)
{
	assert_int_equal(test_write_file(path, O_TRUNC, buf, len), 0);
}

static void
test_round_trip(void **state)
{
	struct fixture *f = *state;
	unsigned char *blob;
	size_t len;
	char why[128];

	save(f);
	assert_int_equal(test_mode_of(f->file) & 07777, 0600);
	assert_int_equal(resume_load(f->dir, ACCOUNT, f->key, &blob, &len, why,
	    sizeof(why)), 0);
	assert_int_equal(len, sizeof(f->blob));
	assert_memory_equal(blob, f->blob, len);
	free(blob);
	/* No temporary file is left behind. */
	assert_int_equal(test_count_entries(f->dir, ""), 1);
	/* A second save replaces the first. */
	f->blob[0] ^= 0xff;
	save(f);
	assert_int_equal(resume_load(f->dir, ACCOUNT, f->key, &blob, &len, why,
	    sizeof(why)), 0);
	assert_memory_equal(blob, f->blob, len);
	free(blob);
	assert_int_equal(test_count_entries(f->dir, ""), 1);
	assert_true(resume_remove(f->dir, ACCOUNT));
	assert_false(resume_remove(f->dir, ACCOUNT));
	refused(f, f->key, "no session file");
}

/* Per account: another account's name has another file. */
static void
test_per_account(void **state)
{
	struct fixture *f = *state;
	unsigned char *blob;
	size_t len;
	char why[128];

	save(f);
	assert_int_equal(resume_load(f->dir, "home", f->key, &blob, &len, why,
	    sizeof(why)), -1);
	assert_non_null(strstr(why, "no session file"));
}

static void
test_other_key(void **state)
{
	struct fixture *f = *state;
	unsigned char key[RESUME_KEY_LEN];

	save(f);
	memcpy(key, f->key, sizeof(key));
	key[31] ^= 1;
	refused(f, key, "TLS settings changed");
}

/* Each cut and each changed byte is noticed. */
static void
test_torn_and_changed(void **state)
{
	struct fixture *f = *state;
	unsigned char orig[2000], buf[2000];
	size_t n, cut, i;

	save(f);
	n = slurp(f->file, orig, sizeof(orig));
	assert_true(n > sizeof(f->blob));
	for (cut = 0; cut < n; cut += cut < 64 ? 1 : 97) {
		rewrite(f->file, orig, cut);
		refused(f, f->key, "corrupt");
	}
	/* One more byte at the end. */
	memcpy(buf, orig, n);
	buf[n] = 0;
	rewrite(f->file, buf, n + 1);
	refused(f, f->key, "corrupt");
	for (i = 0; i < n; i += i < 64 ? 1 : 89) {
		/* The key's bytes are checked by the check too. */
		memcpy(buf, orig, n);
		buf[i] ^= 0x10;
		rewrite(f->file, buf, n);
		refused(f, f->key, "");
	}
	rewrite(f->file, orig, n);
	{
		unsigned char *blob;
		size_t len;
		char why[128];

		assert_int_equal(resume_load(f->dir, ACCOUNT, f->key, &blob,
		    &len, why, sizeof(why)), 0);
		free(blob);
	}
}

/* Not private, not ours to trust, or not a regular file: ignored. */
static void
test_not_private(void **state)
{
	struct fixture *f = *state;
	char target[PATH_MAX];

	save(f);
	assert_int_equal(chmod(f->file, 0640), 0);
	refused(f, f->key, "not a private file");
	assert_int_equal(chmod(f->file, 0600), 0);
	test_pathf(target, sizeof(target), "%s/elsewhere", f->dir);
	assert_int_equal(rename(f->file, target), 0);
	assert_int_equal(symlink(target, f->file), 0);
	refused(f, f->key, "");		/* O_NOFOLLOW: ELOOP */
	assert_int_equal(unlink(f->file), 0);
	assert_int_equal(mkdir(f->file, 0700), 0);
	refused(f, f->key, "");
	assert_int_equal(rmdir(f->file), 0);
}

static ino_t
inode_of(const char *path)
{
	struct stat st;

	assert_int_equal(lstat(path, &st), 0);
	return st.st_ino;
}

/* The blob saved now is the first n bytes of f->blob. */
static void
loads(struct fixture *f, size_t n)
{
	unsigned char *blob;
	size_t len;
	char why[128];

	assert_int_equal(resume_load(f->dir, ACCOUNT, f->key, &blob, &len, why,
	    sizeof(why)), 0);
	assert_int_equal(len, n);
	assert_memory_equal(blob, f->blob, n);
	free(blob);
}

/*
 * Later saves write over the file in place (no new inode, store/resume.h),
 * shorter or longer; a file not private, or linked elsewhere, is replaced
 * by a new one instead, and the other name keeps its content.
 */
static void
test_in_place(void **state)
{
	struct fixture *f = *state;
	struct pf_error err;
	char other[PATH_MAX];
	unsigned char before[2000], after[2000];
	ino_t ino;
	size_t n;

	save(f);
	ino = inode_of(f->file);
	f->blob[0] ^= 0xff;
	assert_int_equal(resume_save(f->dir, ACCOUNT, f->key, f->blob, 100,
	    &err), 0);
	assert_true(inode_of(f->file) == ino);
	loads(f, 100);
	f->blob[1] ^= 0xff;
	save(f);
	assert_true(inode_of(f->file) == ino);
	loads(f, sizeof(f->blob));
	assert_int_equal(test_count_entries(f->dir, ""), 1);

	assert_int_equal(chmod(f->file, 0640), 0);
	save(f);
	assert_true(inode_of(f->file) != ino);
	assert_int_equal(test_mode_of(f->file) & 07777, 0600);
	loads(f, sizeof(f->blob));

	test_pathf(other, sizeof(other), "%s/elsewhere", f->dir);
	assert_int_equal(link(f->file, other), 0);
	n = slurp(other, before, sizeof(before));
	ino = inode_of(f->file);
	f->blob[2] ^= 0xff;
	save(f);
	assert_true(inode_of(f->file) != ino);
	loads(f, sizeof(f->blob));
	assert_int_equal(slurp(other, after, sizeof(after)), n);
	assert_memory_equal(before, after, n);
}

static void
test_too_big(void **state)
{
	struct fixture *f = *state;
	struct pf_error err;
	unsigned char *big = calloc(1, RESUME_FILE_MAX);

	assert_non_null(big);
	assert_int_equal(resume_save(f->dir, ACCOUNT, f->key, big,
	    RESUME_FILE_MAX, &err), -1);
	assert_int_equal(resume_save(f->dir, ACCOUNT, f->key, big, 0, &err),
	    -1);
	free(big);
	assert_false(test_path_exists(f->file));
	assert_int_equal(test_count_entries(f->dir, ""), 0);
}

/* A state_dir that cannot be written: an error, nothing half-done. */
static void
test_unwritable(void **state)
{
	struct fixture *f = *state;
	struct pf_error err;
	char dir[PATH_MAX];

	test_pathf(dir, sizeof(dir), "%s/missing", f->dir);
	assert_int_equal(resume_save(dir, ACCOUNT, f->key, f->blob,
	    sizeof(f->blob), &err), -1);
	fprintf(stderr, "# %s\n", err.what);
	assert_int_equal(err.category, PF_FAIL_IO);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_round_trip, setup,
		    test_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_per_account, setup,
		    test_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_other_key, setup,
		    test_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_torn_and_changed, setup,
		    test_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_not_private, setup,
		    test_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_in_place, setup,
		    test_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_too_big, setup,
		    test_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_unwritable, setup,
		    test_fixture_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
