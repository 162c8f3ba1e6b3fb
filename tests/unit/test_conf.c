/*
 * test_conf.c - the configuration file (popfetch.conf(5); popfetch(1), FILES).
 *
 * Each case writes a config snippet to a temporary file (mode 0600 unless
 * the case is about modes) and checks what conf_load or conf_locate make of
 * it.  The error rules run from one table, each row its own named cmocka
 * case with the expected line and message fragments, so dropping a rule
 * fails its row.
 */
#include "config.h"

#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "conf.h"
#include "error.h"
#include "params.h"
#include "testutil.h"

static char tmpdir[PATH_MAX];
static char home[PATH_MAX];
static unsigned nfiles;

/* Write `text` to a new file under tmpdir with `mode`; returns its path. */
static char *
write_conf(const char *text, mode_t mode)
{
	char *path;
	size_t len = strlen(text);
	int fd;

	assert_true(asprintf(&path, "%s/conf.%u.XXXXXX", tmpdir, nfiles++) > 0);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	assert_int_equal(fchmod(fd, mode), 0);
	assert_int_equal(close(fd), 0);
	return path;
}

/* Load `text` (mode 0600) and expect success. */
static struct conf *
load_ok(const char *text)
{
	struct pf_error err;
	struct conf *conf = NULL;
	char *path = write_conf(text, 0600);

	pf_error_clear(&err);
	if (conf_load(path, &conf, &err) != 0)
		fail_msg("conf_load failed: %s", err.what);
	assert_non_null(conf);
	assert_string_equal(conf->path, path);
	unlink(path);
	free(path);
	return conf;
}

/*
 * Load `text` written with `mode`, expect a configuration error whose message
 * starts with "PATH:LINE: " (or "PATH: " for line 0) and contains every
 * non-NULL needle.  Returns nothing; frees everything.
 */
static void
load_err_mode(const char *text, mode_t mode, int line, const char *const *needles)
{
	struct pf_error err;
	struct conf *conf = (struct conf *)1;
	char *path = write_conf(text, mode), *prefix;
	size_t i;

	pf_error_clear(&err);
	assert_int_equal(conf_load(path, &conf, &err), -1);
	assert_null(conf);
	assert_int_equal(err.category, PF_FAIL_CONFIG);
	assert_int_equal(pf_exit_code(err.category), 78);
	if (line > 0)
		assert_true(asprintf(&prefix, "%s:%d: ", path, line) > 0);
	else
		assert_true(asprintf(&prefix, "%s: ", path) > 0);
	if (strncmp(err.what, prefix, strlen(prefix)) != 0)
		fail_msg("message '%s' does not start with '%s'", err.what,
		    prefix);
	for (i = 0; needles[i] != NULL; i++)
		if (strstr(err.what, needles[i]) == NULL)
			fail_msg("message '%s' lacks '%s'", err.what, needles[i]);
	/* Passwords never show, not even a bad one. */
	if (strstr(err.what, "secret") != NULL ||
	    strstr(err.what, "DELE") != NULL)
		fail_msg("message '%s' shows a secret", err.what);
	free(prefix);
	unlink(path);
	free(path);
}

#define ACCOUNT_BODY \
	"  host = \"pop.example.com\"\n" \
	"  user = \"alice\"\n" \
	"  password = \"secret\"\n" \
	"  maildir = \"/tmp/Mail/work\"\n"

#define MINIMAL "account work {\n" ACCOUNT_BODY "}\n"

/* `got` must be the test's $HOME followed by `suffix`. */
static void
assert_home_path(const char *got, const char *suffix)
{
	char *want;

	assert_true(asprintf(&want, "%s%s", home, suffix) > 0);
	assert_string_equal(got, want);
	free(want);
}

/* ---- the error table: one named case per rule ---- */

struct err_case {
	const char	*name;
	const char	*text;
	int		 line;		/* 0: no line expected */
	const char	*needles[5];
};

#define OAUTH_BODY "  host = \"h\"\n  user = \"u\"\n  maildir = \"/m\"\n"

static const struct err_case err_cases[] = {
	/* popfetch.conf(5), OAUTH2: its options. */
	{ "oauth2_bad_provider",
	  "account work {\n" OAUTH_BODY "  oauth2_provider = yahoo\n}\n", 5,
	  { "account work: option oauth2_provider: ", "invalid value 'yahoo'",
	    "microsoft, google, custom", NULL } },
	{ "oauth2_no_client_id",
	  "account work {\n" OAUTH_BODY "  oauth2_provider = microsoft\n}\n", 5,
	  { "account work: option oauth2_client_id: missing", NULL } },
	{ "oauth2_custom_no_token_url",
	  "account work {\n" OAUTH_BODY "  oauth2_provider = custom\n"
	  "  oauth2_client_id = \"c\"\n}\n", 5,
	  { "account work: option oauth2_token_url: missing", NULL } },
	{ "oauth2_with_password",
	  "account work {\n" OAUTH_BODY "  oauth2_provider = google\n"
	  "  oauth2_client_id = \"c\"\n  password = \"p\"\n}\n", 7,
	  { "account work: option password: ",
	    "together with oauth2_provider (line 5)", NULL } },
	{ "oauth2_with_password_command",
	  "account work {\n" OAUTH_BODY "  password_command = \"x\"\n"
	  "  oauth2_provider = google\n  oauth2_client_id = \"c\"\n}\n", 5,
	  { "account work: option password_command: ",
	    "together with oauth2_provider (line 6)", NULL } },
	{ "oauth2_auth_plain",
	  "account work {\n" OAUTH_BODY "  auth = plain\n"
	  "  oauth2_provider = google\n  oauth2_client_id = \"c\"\n}\n", 5,
	  { "account work: option auth: ", "xoauth2 or oauthbearer", NULL } },
	{ "oauth2_url_not_https",
	  "account work {\n" OAUTH_BODY "  oauth2_provider = custom\n"
	  "  oauth2_client_id = \"c\"\n"
	  "  oauth2_token_url = \"http://example.com/token\"\n}\n", 7,
	  { "account work: option oauth2_token_url: ", "not an https:// URL",
	    NULL } },
	{ "oauth2_option_without_provider",
	  "account work {\n" ACCOUNT_BODY "  oauth2_client_id = \"c\"\n}\n", 6,
	  { "account work: option oauth2_client_id: ",
	    "without oauth2_provider", NULL } },
	{ "oauth2_tenant_not_microsoft",
	  "account work {\n" OAUTH_BODY "  oauth2_provider = google\n"
	  "  oauth2_client_id = \"c\"\n  oauth2_tenant = \"t\"\n}\n", 7,
	  { "account work: option oauth2_tenant: ", "only for", NULL } },
	{ "unknown_key_in_account",
	  "account work {\n" ACCOUNT_BODY "  hots = \"x\"\n}\n", 6,
	  { "account work: ", "unknown option 'hots'; did you mean 'host'?",
	    NULL } },
	{ "unknown_key_hint_swapped_letters",
	  "account work {\n" ACCOUNT_BODY "  delte = true\n}\n", 6,
	  { "unknown option 'delte'; did you mean 'delete'?", NULL } },
	{ "unknown_key_hint_top_level",
	  "max_mesages = 3\n" MINIMAL, 1,
	  { "unknown option 'max_mesages'; did you mean 'max_messages'?",
	    NULL } },
	{ "unknown_key_hint_one_line_account",
	  "account work { host = \"h\" user = \"u\" pasword = \"x\" }\n", 1,
	  { "unknown option 'pasword'; did you mean 'password'?", NULL } },
	{ "unknown_key_top_level",
	  "timeout = 30\nfrobnicate = yes\n" MINIMAL, 2,
	  { "unknown option 'frobnicate'", NULL } },
	{ "host_only_in_account",
	  "host = \"x\"\n" MINIMAL, 1,
	  { "option host: ", "only allowed inside an account", NULL } },
	{ "user_only_in_account",
	  "\n\nuser = \"x\"\n" MINIMAL, 3,
	  { "option user: ", "only allowed inside an account", NULL } },
	{ "state_dir_only_top_level",
	  "account work {\n" ACCOUNT_BODY "  state_dir = \"/x\"\n}\n", 6,
	  { "account work: option state_dir: ", "top level", NULL } },
	{ "wrong_type_number",
	  "account work {\n" ACCOUNT_BODY "  port = abc\n}\n", 6,
	  { "account work: option port: ", "'abc' is not a number", NULL } },
	{ "wrong_type_number_trailing_junk",
	  "timeout = 10s\n", 1,
	  { "option timeout: ", "not a number", NULL } },
	{ "wrong_type_bool",
	  "account work {\n" ACCOUNT_BODY "  delete = maybe\n}\n", 6,
	  { "account work: option delete: ", "invalid value 'maybe'",
	    "true, false", NULL } },
	{ "wrong_type_section_for_scalar",
	  "account work {\n" ACCOUNT_BODY "  port { }\n}\n", 6,
	  { "account work: ", "port", NULL } },
	{ "syntax_unexpected_brace",
	  MINIMAL "}\n", 7,
	  { "unexpected closing brace", NULL } },
	{ "syntax_missing_title",
	  "\naccount {\n" ACCOUNT_BODY "}\n", 2,
	  { "missing title", "account", NULL } },
	{ "syntax_missing_closing_brace",
	  "timeout = 5\naccount work {\n" ACCOUNT_BODY, 2,
	  { "never closed", "missing '}'", NULL } },
	{ "syntax_premature_eof",
	  MINIMAL "port =", 7,
	  { "premature end of file", NULL } },
	/* Strings do not span lines: the quote host's value opens is not
	 * closed on line 2, whatever quotes follow. */
	{ "syntax_unterminated_string",
	  "account work {\n  host = \"pop.example.com\n  user = \"alice\"\n}\n",
	  2, { "string not closed on the line where it opens", NULL } },
	{ "syntax_unterminated_single_quoted_string",
	  "account work {\n  host = 'pop.example.com\n  user = 'alice'\n}\n",
	  2, { "string not closed on the line where it opens", NULL } },
	{ "syntax_unterminated_string_at_eof",
	  MINIMAL "timeout = \"5\n", 7,
	  { "string not closed on the line where it opens", NULL } },
	{ "syntax_string_backslash_newline",
	  "account work {\n  host = \"pop.\\\nexample.com\"\n  user = \"u\"\n"
	  "  password = \"p\"\n  maildir = \"/m\"\n}\n", 2,
	  { "string not closed on the line where it opens", NULL } },
	{ "syntax_single_quoted_backslash_newline",
	  "timeout = '5\\\n'\n", 1,
	  { "string not closed on the line where it opens", NULL } },
	/* An error before the broken string is still the one reported. */
	{ "syntax_earliest_error_wins",
	  "hots = 1\naccount work {\n  host = \"pop.example.com\n}\n", 1,
	  { "unknown option 'hots'", NULL } },
	/* Something missing after a token: that token's line, not the line
	 * of whatever libconfuse found instead. */
	{ "syntax_missing_title_on_next_line",
	  "# work\naccount\n{\n" ACCOUNT_BODY "}\n", 2,
	  { "missing title", "account", NULL } },
	{ "syntax_missing_equal_key_alone",
	  "account work {\n  host = \"h\"\n  user\n  password = \"p\"\n"
	  "  maildir = \"/m\"\n}\n", 3,
	  { "account work: ", "missing equal sign after option 'user'",
	    NULL } },
	{ "syntax_missing_equal_top_level",
	  "timeout\n\n\naccount work {\n" ACCOUNT_BODY "}\n", 1,
	  { "missing equal sign after option 'timeout'", NULL } },
	{ "syntax_missing_brace",
	  "account work\n" ACCOUNT_BODY "}\n", 1,
	  { "missing opening brace", NULL } },
	{ "syntax_premature_eof_after_newline",
	  MINIMAL "port =\n\n", 7,
	  { "premature end of file", NULL } },
	/* A statement cut between its lines by the error on the second:
	 * that error, at that line, not a premature end of file. */
	{ "syntax_value_on_next_line_unterminated",
	  MINIMAL "timeout =\n\"5\n", 8,
	  { "string not closed on the line where it opens", NULL } },
	{ "syntax_value_on_next_line_bare_variable",
	  MINIMAL "timeout =\n${X}\n", 8,
	  { "'${' outside double quotes", NULL } },
	{ "syntax_title_on_next_line_variable",
	  "account\n\"a${X}\" {\n" ACCOUNT_BODY "}\n", 2,
	  { "expanded only in values, not in a key or an account name",
	    NULL } },
	{ "syntax_unterminated_comment",
	  MINIMAL "\n/* never closed\n", 8,
	  { "unterminated comment", NULL } },
	{ "tls_bad_enum",
	  "account work {\n" ACCOUNT_BODY "  tls = tsl\n}\n", 6,
	  { "account work: option tls: ", "invalid value 'tsl'",
	    "implicit, starttls, none", NULL } },
	{ "tls_bad_enum_top_level",
	  "tls = ssl\n" MINIMAL, 1,
	  { "option tls: ", "implicit, starttls, none", NULL } },
	{ "auth_bad_enum",
	  "account work {\n" ACCOUNT_BODY "  auth = cram-md5\n}\n", 6,
	  { "account work: option auth: ", "invalid value 'cram-md5'",
	    "auto, user, apop, plain, scram-sha-256, xoauth2", NULL } },
	{ "missing_host",
	  "\naccount work {\n  user = \"a\"\n  password = \"p\"\n"
	  "  maildir = \"/m\"\n}\n", 2,
	  { "account work: option host: missing", NULL } },
	{ "missing_user",
	  "account work {\n  host = \"h\"\n  password = \"p\"\n"
	  "  maildir = \"/m\"\n}\n", 1,
	  { "account work: option user: missing", NULL } },
	{ "missing_maildir",
	  "account other {\n" ACCOUNT_BODY "}\n\naccount work {\n"
	  "  host = \"h\"\n  user = \"u\"\n  password = \"p\"\n}\n", 8,
	  { "account work: option maildir: missing", NULL } },
	{ "missing_maildir_empty_section",
	  "account work { }\n", 1,
	  { "account work: option host: missing", NULL } },
	{ "password_and_command_both",
	  "account work {\n" ACCOUNT_BODY "  password_command = \"pass x\"\n}\n",
	  6, { "account work: option password_command: ",
	       "together with password (line 4)", NULL } },
	{ "password_and_command_both_top_level",
	  "password = \"a\"\npassword_command = \"b\"\n", 2,
	  { "option password_command: ", "together with password", NULL } },
	{ "password_and_command_neither",
	  "\naccount work {\n  host = \"h\"\n  user = \"u\"\n"
	  "  maildir = \"/m\"\n}\n", 2,
	  { "account work: option password: missing",
	    "password_command", NULL } },
	{ "xoauth2_neither",
	  "account work {\n  host = \"h\"\n  user = \"u\"\n"
	  "  maildir = \"/m\"\n  auth = xoauth2\n}\n", 1,
	  { "account work: option password: missing",
	    "access token", NULL } },
	{ "xoauth2_both",
	  "account work {\n" ACCOUNT_BODY "  auth = xoauth2\n"
	  "  password_command = \"oauth2 token\"\n}\n", 7,
	  { "account work: option password_command: ", "together with",
	    NULL } },
	{ "duplicate_account",
	  MINIMAL "\naccount work {\n" ACCOUNT_BODY "}\n", 8,
	  { "account work: duplicate account name",
	    "first defined on line 1", NULL } },
	{ "duplicate_key",
	  "account work {\n" ACCOUNT_BODY "  port = 1\n  port = 2\n}\n", 7,
	  { "account work: option port: set twice (first on line 6)",
	    NULL } },
	{ "bad_account_name",
	  "account \"my work\" {\n" ACCOUNT_BODY "}\n", 1,
	  { "account my work: invalid account name", NULL } },
	{ "port_zero",
	  "account work {\n" ACCOUNT_BODY "  port = 0\n}\n", 6,
	  { "account work: option port: ", "0 is out of range",
	    "1..65535", NULL } },
	{ "port_too_big",
	  "account work {\n" ACCOUNT_BODY "  port = 65536\n}\n", 6,
	  { "account work: option port: ", "65536 is out of range", NULL } },
	{ "port_huge",
	  "port = 99999999999999999999999\n", 1,
	  { "option port: ", "out of range", NULL } },
	{ "port_negative",
	  "account work {\n" ACCOUNT_BODY "  port = -5\n}\n", 6,
	  { "option port: ", "-5 is negative", NULL } },
	{ "max_size_negative",
	  "account work {\n" ACCOUNT_BODY "  max_size = -1\n}\n", 6,
	  { "account work: option max_size: ", "negative", NULL } },
	{ "max_size_over_int64",
	  "max_size = 9223372036854775808\n", 1,
	  { "option max_size: ", "out of range", NULL } },
	{ "max_messages_negative",
	  "max_messages = -3\n", 1,
	  { "option max_messages: ", "negative", NULL } },
	{ "delete_after_days_negative",
	  "account work {\n" ACCOUNT_BODY "  delete_after_days = -1\n}\n", 6,
	  { "account work: option delete_after_days: ", "negative", NULL } },
	{ "forget_after_days_too_big",
	  "account work {\n" ACCOUNT_BODY "  forget_after_days = 36501\n}\n", 6,
	  { "account work: option forget_after_days: ",
	    "36501 is out of range", "0..36500", NULL } },
	{ "forget_after_days_too_big_top_level",
	  "\nforget_after_days = 99999\n" MINIMAL, 2,
	  { "option forget_after_days: ", "99999 is out of range", NULL } },
	{ "forget_after_days_negative",
	  "account work {\n" ACCOUNT_BODY "  forget_after_days = -1\n}\n", 6,
	  { "account work: option forget_after_days: ", "negative", NULL } },
	{ "timeout_zero",
	  "timeout = 0\n", 1,
	  { "option timeout: ", "out of range", NULL } },
	{ "timeout_too_big",
	  "account work {\n" ACCOUNT_BODY "  timeout = 86401\n}\n", 6,
	  { "account work: option timeout: ", "86401 is out of range",
	    NULL } },
	{ "number_hex_not_accepted",
	  "port = 0x6e\n", 1,
	  { "option port: ", "not a number", NULL } },
	{ "plaintext_none_user",
	  "account work {\n" ACCOUNT_BODY "  tls = none\n  auth = user\n}\n",
	  6, { "account work: option tls: ", "clear text",
	       "allow_plaintext_password = true", NULL } },
	{ "plaintext_none_plain",
	  "account work {\n" ACCOUNT_BODY "  tls = none\n  auth = plain\n}\n",
	  6, { "account work: option tls: ", "clear text",
	       "allow_plaintext_password = true", NULL } },
	{ "plaintext_none_xoauth2",
	  "account work {\n" ACCOUNT_BODY "  tls = none\n  auth = xoauth2\n}\n",
	  6, { "account work: option tls: ", "access token",
	       "allow_plaintext_password = true", NULL } },
	{ "plaintext_none_auto",
	  "account work {\n" ACCOUNT_BODY "  tls = none\n}\n", 6,
	  { "account work: option tls: ", "auth = auto",
	    "allow_plaintext_password = true", "auth = apop", NULL } },
	{ "plaintext_none_top_level_tls",
	  "tls = none\n" MINIMAL, 1,
	  { "account work: option tls: ", "allow_plaintext_password", NULL } },
	{ "plaintext_none_allow_false",
	  "account work {\n" ACCOUNT_BODY "  tls = none\n  auth = user\n"
	  "  allow_plaintext_password = false\n}\n", 6,
	  { "account work: option tls: ", "clear text", NULL } },
	{ "password_lf",
	  "account work {\n  host = \"h\"\n  user = \"u\"\n"
	  "  password = \"abc\\r\\nDELE 1\"\n  maildir = \"/m\"\n}\n", 4,
	  { "account work: option password: ", "CR or LF", NULL } },
	{ "password_multiline_literal",
	  "account work {\n  host = \"h\"\n  user = \"u\"\n"
	  "  password = \"abc\nDELE 1\"\n  maildir = \"/m\"\n}\n", 4,
	  { "string not closed on the line where it opens", NULL } },
	{ "password_nul_octal",
	  "account work {\n  host = \"h\"\n  user = \"u\"\n"
	  "  password = \"abc\\0def\"\n  maildir = \"/m\"\n}\n", 4,
	  { "account work: option password: ", "NUL", NULL } },
	{ "password_nul_octal_000",
	  "password = \"abc\\000\"\n", 1,
	  { "option password: ", "NUL", NULL } },
	{ "password_bad_octal_not_shown",
	  "account work {\n  host = \"h\"\n  user = \"u\"\n"
	  "  password = \"x\\4771\"\n  maildir = \"/m\"\n}\n", 4,
	  { "account work: bad escape in a string", NULL } },
	{ "password_octal_over_377",
	  "account work {\n  host = \"h\"\n  user = \"u\"\n"
	  "  password = \"x\\477\"\n  maildir = \"/m\"\n}\n", 4,
	  { "account work: bad escape in a string", NULL } },
	{ "password_nul_hex",
	  "account work {\n  host = \"h\"\n  user = \"u\"\n"
	  "  password = \"abc\\x00def\"\n  maildir = \"/m\"\n}\n", 4,
	  { "account work: option password: ", "NUL", NULL } },
	{ "password_nul_hex_short",
	  "account work {\n  host = \"h\"\n  user = \"u\"\n"
	  "  password = \"abc\\x0\"\n  maildir = \"/m\"\n}\n", 4,
	  { "account work: option password: ", "NUL", NULL } },
	{ "password_unquoted_words_not_shown",
	  "account work {\n  host = \"h\"\n  user = \"u\"\n"
	  "  password = correct secret staple\n  maildir = \"/m\"\n}\n", 4,
	  { "account work: option password: ", "quote a password", NULL } },
	/* On one line with a quoted password, an unknown key is named as
	 * such: the quotes bound the secret. */
	{ "unknown_key_same_line_as_quoted_password",
	  "account work { host = \"h\" user = \"u\" password = \"secret\" "
	  "maildir = \"/m\" colour = 1 }\n", 1,
	  { "account work: ", "unknown option 'colour'", NULL } },
	{ "unknown_key_same_line_as_single_quoted_password",
	  "account work {\n  host = \"h\"\n  user = \"u\"\n"
	  "  password='se cret' maildir = \"/m\" colour = 1\n}\n", 4,
	  { "account work: ", "unknown option 'colour'", NULL } },
	{ "password_unquoted_then_unknown_key_not_shown",
	  "account work { host = \"h\" user = \"u\" password = secret "
	  "maildir = \"/m\" colour = 1 }\n", 1,
	  { "account work: option password: ", "quote a password", NULL } },
	{ "password_empty",
	  "account work {\n  host = \"h\"\n  user = \"u\"\n"
	  "  password = \"\"\n  maildir = \"/m\"\n}\n", 4,
	  { "account work: option password: is empty", NULL } },
	{ "user_control_character",
	  "account work {\n  host = \"h\"\n  user = \"u\\r\\nDELE 1\"\n"
	  "  password = \"p\"\n  maildir = \"/m\"\n}\n", 3,
	  { "account work: option user: ", "control character", NULL } },
	{ "fingerprint_bad",
	  "account work {\n" ACCOUNT_BODY "  tls_fingerprint = \"sha256:5A:0F\"\n"
	  "}\n", 6,
	  { "account work: option tls_fingerprint: ", "SHA-256", NULL } },
	{ "tilde_unknown_user",
	  "account work {\n  host = \"h\"\n  user = \"u\"\n  password = \"p\"\n"
	  "  maildir = \"~no-such-user-popfetch/Mail\"\n}\n", 5,
	  { "account work: option maildir: ", "cannot expand", NULL } },
	/* filter and mda: never empty, never blank; maildir is required
	 * unless an mda is set. */
	{ "filter_empty",
	  "account work {\n" ACCOUNT_BODY "  filter = \"\"\n}\n", 6,
	  { "account work: option filter: must not be empty", NULL } },
	{ "filter_empty_top_level",
	  "\nfilter = ''\n" MINIMAL, 2,
	  { "option filter: must not be empty", NULL } },
	{ "filter_blank",
	  "account work {\n" ACCOUNT_BODY "  filter = \" \\t \"\n}\n", 6,
	  { "account work: option filter: must not be empty", NULL } },
	{ "mda_empty",
	  "account work {\n" ACCOUNT_BODY "  mda = \"\"\n}\n", 6,
	  { "account work: option mda: must not be empty", NULL } },
	{ "mda_empty_top_level",
	  "mda = \"\"\n" MINIMAL, 1,
	  { "option mda: must not be empty", NULL } },
	{ "mda_empty_from_environment",
	  "account work {\n  host = \"h\"\n  user = \"u\"\n  password = \"p\"\n"
	  "  mda = \"${POPFETCH_TEST_EMPTY}\"\n}\n", 5,
	  { "account work: option mda: must not be empty", NULL } },
	{ "mda_blank_newline",
	  "mda = \"\\n \"\n" MINIMAL, 1,
	  { "option mda: must not be empty", NULL } },
	{ "mda_control_character",
	  "account work {\n" ACCOUNT_BODY "  mda = \"lda\\r\"\n}\n", 6,
	  { "account work: option mda: ", "control character", NULL } },
	{ "mda_env_unset",
	  "account work {\n" ACCOUNT_BODY
	  "  mda = \"${POPFETCH_TEST_NOPE} -e\"\n}\n", 6,
	  { "account work: option mda: environment variable "
	    "POPFETCH_TEST_NOPE is not set", NULL } },
	{ "mda_set_twice",
	  "account work {\n" ACCOUNT_BODY "  mda = a\n  mda = b\n}\n", 7,
	  { "account work: option mda: set twice (first on line 6)", NULL } },
	{ "filter_as_section",
	  "account work {\n" ACCOUNT_BODY "  filter { }\n}\n", 6,
	  { "account work: ", "filter", NULL } },
	/* A filter alone does not replace the Maildir. */
	{ "missing_maildir_with_filter",
	  "filter = \"sort-mail\"\naccount work {\n"
	  "  host = \"h\"\n  user = \"u\"\n  password = \"p\"\n}\n", 2,
	  { "account work: option maildir: missing (required)", NULL } },
	/* Another account's mda is not this one's. */
	{ "missing_maildir_mda_in_other_account",
	  "account a {\n  host = \"h\"\n  user = \"u\"\n  password = \"p\"\n"
	  "  mda = \"lda\"\n}\naccount b {\n  host = \"h\"\n  user = \"u\"\n"
	  "  password = \"p\"\n}\n", 7,
	  { "account b: option maildir: missing (required)", NULL } },
	{ "option_path_syntax",
	  MINIMAL "\"account=work|port\" = 5\n", 7,
	  { "unknown option", NULL } },

	/* Lines after comments: libconfuse alone counts too many. */
	{ "unknown_key_in_account_after_comments",
	  "# popfetch\naccount work {  # the office\n  // server\n"
	  ACCOUNT_BODY "  /* a typo: */ hots = \"x\"\n}\n", 8,
	  { "account work: ", "unknown option 'hots'", NULL } },
	{ "unknown_key_top_level_after_block_comment",
	  "/* defaults\n   for all */\ntimeout = 30\nfrobnicate = yes\n", 4,
	  { "unknown option 'frobnicate'", NULL } },
	{ "missing_host_empty_section_on_two_lines",
	  "# nothing yet\naccount work {\n}\n", 2,
	  { "account work: option host: missing", NULL } },

	/* ${NAME} (popfetch.conf(5), SYNTAX); POPFETCH_TEST_NOPE is unset. */
	{ "env_unset_in_account_password",
	  "account work {\n  host = \"h\"\n  user = \"u\"\n"
	  "  password = \"p${POPFETCH_TEST_NOPE}w\"\n  maildir = \"/m\"\n}\n",
	  4, { "account work: option password: environment variable "
	       "POPFETCH_TEST_NOPE is not set", NULL } },
	{ "env_unset_top_level",
	  "# defaults\n\npassword_command = \"pass ${POPFETCH_TEST_NOPE}\"\n"
	  MINIMAL, 3,
	  { "option password_command: environment variable "
	    "POPFETCH_TEST_NOPE is not set", NULL } },
	{ "env_unset_in_host",
	  "account work {\n  host = \"pop.${POPFETCH_TEST_NOPE}\"\n"
	  "  user = \"u\"\n  password = \"p\"\n  maildir = \"/m\"\n}\n", 2,
	  { "account work: option host: environment variable "
	    "POPFETCH_TEST_NOPE is not set", NULL } },
	{ "env_unset_in_maildir",
	  "account work {\n  host = \"h\"\n  user = \"u\"\n  password = \"p\"\n"
	  "  maildir = \"${POPFETCH_TEST_NOPE}/Mail\"\n}\n", 5,
	  { "account work: option maildir: environment variable "
	    "POPFETCH_TEST_NOPE is not set", NULL } },
	{ "env_unset_after_a_set_one",
	  "account work { host = \"h\" user = \"${POPFETCH_TEST_SET}\" "
	  "maildir = \"${POPFETCH_TEST_SET}${POPFETCH_TEST_NOPE}\" }\n", 1,
	  { "account work: option maildir: environment variable "
	    "POPFETCH_TEST_NOPE is not set", NULL } },
	{ "env_unquoted",
	  "account work {\n  host = \"h\"\n  user = \"u\"\n"
	  "  password = ${POPFETCH_TEST_SET}\n  maildir = \"/m\"\n}\n", 4,
	  { "'${' outside double quotes", NULL } },
	{ "env_unquoted_in_a_word",
	  "account work {\n  host = pop.${POPFETCH_TEST_SET}\n}\n", 2,
	  { "'${' outside double quotes", NULL } },
	{ "env_in_account_name",
	  "account \"${POPFETCH_TEST_SET}\" {\n" ACCOUNT_BODY "}\n", 1,
	  { "only in values", NULL } },
	{ "env_in_key",
	  "\"${POPFETCH_TEST_SET}\" = 5\n", 1,
	  { "only in values", NULL } },
	{ "env_malformed_name",
	  "account work {\n  host = \"h\"\n  user = \"${POPFETCH TEST}\"\n"
	  "  password = \"p\"\n  maildir = \"/m\"\n}\n", 3,
	  { "account work: option user: malformed ${POPFETCH TEST}", NULL } },
	{ "env_malformed_colon",
	  "timeout = \"${POPFETCH_TEST_SET:x}\"\n", 1,
	  { "option timeout: malformed", NULL } },
	{ "env_malformed_empty",
	  "timeout = \"${}\"\n", 1, { "option timeout: malformed", NULL } },
	{ "env_malformed_in_password_not_shown",
	  "account work {\n  host = \"h\"\n  user = \"u\"\n"
	  "  password = \"${secret!}\"\n  maildir = \"/m\"\n}\n", 4,
	  { "account work: option password: malformed ${...}", NULL } },
	{ "env_default_with_backslash",
	  "timeout = \"${POPFETCH_TEST_NOPE:-\\5}\"\n", 1,
	  { "option timeout: malformed", NULL } },
	{ "env_nested_reference",
	  "account work {\n  host = \"h\"\n  user = \"u\"\n  password = \"p\"\n"
	  "  maildir = \"${POPFETCH_TEST_NOPE:-${POPFETCH_TEST_SET}}\"\n}\n", 5,
	  { "account work: option maildir: malformed", NULL } },
	{ "env_unclosed_reference",
	  "account work {\n  host = \"${POPFETCH_TEST_SET\"\n  user = \"u\"\n"
	  "  password = \"p\"\n  maildir = \"/m\"\n}\n", 2,
	  { "'${' without its '}'", NULL } },
	{ "env_reference_past_the_quote",
	  "account work {\n  host = \"${POPFETCH_TEST_SET\" user = \"}\"\n"
	  "  password = \"p\"\n  maildir = \"/m\"\n}\n", 2,
	  { "'${' without its '}'", NULL } },
	{ "env_reference_across_lines",
	  "account work {\n  host = \"h\"\n  user = \"${POPFETCH_\nTEST_SET}\"\n"
	  "  password = \"p\"\n  maildir = \"/m\"\n}\n", 3,
	  { "'${' without its '}'", NULL } },
};

static void
run_err_case(void **state)
{
	const struct err_case *c = *state;

	load_err_mode(c->text, 0600, c->line, c->needles);
}

/*
 * Every row again behind comments of each kind: the error must move down by
 * exactly their COMMENT_LINES lines (libconfuse on its own counts 2 extra
 * lines per '#' or '//' comment and 1 per block comment).
 */
#define COMMENT_PREFIX \
	"# popfetch.conf\n// written by hand\n/* a block\n   comment */\n"
#define COMMENT_LINES	4

struct twin_case {
	struct err_case	 c;
	char		*name;
	char		*text;
	char		*needles[5];
};

/* `needle` with each "line N" turned into "line N+COMMENT_LINES". */
static char *
shift_needle(const char *needle)
{
	const char *p = needle, *hit;
	char *out, *tmp, *end;
	long n;

	assert_non_null(out = strdup(""));
	while ((hit = strstr(p, "line ")) != NULL) {
		if (hit[5] >= '0' && hit[5] <= '9') {
			n = strtol(hit + 5, &end, 10);
			assert_true(asprintf(&tmp, "%s%.*sline %ld", out,
			    (int)(hit - p), p, n + COMMENT_LINES) > 0);
			p = end;
		} else {
			assert_true(asprintf(&tmp, "%s%.*s", out,
			    (int)(hit + 5 - p), p) > 0);
			p = hit + 5;
		}
		free(out);
		out = tmp;
	}
	assert_true(asprintf(&tmp, "%s%s", out, p) > 0);
	free(out);
	return tmp;
}

static void
twin_make(struct twin_case *t, const struct err_case *c)
{
	size_t i;

	memset(t, 0, sizeof(*t));
	assert_true(asprintf(&t->name, "%s_after_comments", c->name) > 0);
	assert_true(asprintf(&t->text, COMMENT_PREFIX "%s", c->text) > 0);
	for (i = 0; i < 4 && c->needles[i] != NULL; i++)
		t->needles[i] = shift_needle(c->needles[i]);
	t->c.name = t->name;
	t->c.text = t->text;
	t->c.line = c->line > 0 ? c->line + COMMENT_LINES : 0;
	for (i = 0; i < 5; i++)
		t->c.needles[i] = t->needles[i];
}

static void
twin_free(struct twin_case *t)
{
	size_t i;

	free(t->name);
	free(t->text);
	for (i = 0; i < 5; i++)
		free(t->needles[i]);
}

/* ---- defaults and values ---- */

static void
test_defaults(void **state)
{
	const struct conf_account *a;
	struct conf *conf;

	(void)state;
	setenv("XDG_STATE_HOME", "/xdg/state", 1);
	conf = load_ok(MINIMAL);
	assert_string_equal(conf->state_dir, "/xdg/state/popfetch");
	unsetenv("XDG_STATE_HOME");
	assert_int_equal(conf->timeout, 60);
	assert_int_equal(conf->naccounts, 1);
	a = &conf->accounts[0];
	assert_string_equal(a->name, "work");
	assert_string_equal(a->host, "pop.example.com");
	assert_int_equal(a->port, 995);
	assert_int_equal(a->tls, CONF_TLS_IMPLICIT);
	assert_true(a->tls_verify);
	assert_null(a->tls_ca_file);
	assert_false(a->has_fingerprint);
	assert_true(a->tls_resume);
	assert_string_equal(a->user, "alice");
	assert_string_equal(a->password, "secret");
	assert_null(a->password_command);
	assert_int_equal(a->auth, CONF_AUTH_AUTO);
	assert_false(a->allow_plaintext_password);
	assert_string_equal(a->maildir, "/tmp/Mail/work");
	assert_false(a->delete);
	assert_int_equal(a->delete_after_days, 0);
	assert_int_equal(a->forget_after_days, 30);
	assert_int_equal(a->max_size, 0);
	assert_int_equal(a->max_messages, 0);
	assert_true(a->received_header);
	assert_true(a->enabled);
	assert_int_equal(a->timeout, 60);
	conf_free(&conf);
	assert_null(conf);
}

static void
test_state_dir_default_without_xdg(void **state)
{
	struct conf *conf;

	(void)state;
	unsetenv("XDG_STATE_HOME");
	conf = load_ok(MINIMAL);
	assert_home_path(conf->state_dir, "/.local/state/popfetch");
	conf_free(&conf);
	/* An empty XDG_STATE_HOME counts as unset. */
	setenv("XDG_STATE_HOME", "", 1);
	conf = load_ok(MINIMAL);
	assert_home_path(conf->state_dir, "/.local/state/popfetch");
	conf_free(&conf);
}

static void
test_port_default_follows_tls(void **state)
{
	struct conf *conf;

	(void)state;
	conf = load_ok("account a {\n" ACCOUNT_BODY "  tls = starttls\n}\n"
	    "account b {\n" ACCOUNT_BODY "  tls = none\n"
	    "  allow_plaintext_password = true\n}\n"
	    "account c {\n" ACCOUNT_BODY "  tls = starttls\n  port = 1110\n}\n"
	    "account d {\n" ACCOUNT_BODY "  tls = implicit\n}\n"
	    "account e {\n" ACCOUNT_BODY "  port = 0995\n}\n");
	assert_int_equal(conf->naccounts, 5);
	assert_int_equal(conf->accounts[4].port, 995);	/* decimal, not octal */
	assert_int_equal(conf->accounts[0].port, 110);
	assert_int_equal(conf->accounts[0].tls, CONF_TLS_STARTTLS);
	assert_int_equal(conf->accounts[1].port, 110);
	assert_int_equal(conf->accounts[1].tls, CONF_TLS_NONE);
	assert_int_equal(conf->accounts[2].port, 1110);
	assert_int_equal(conf->accounts[3].port, 995);
	conf_free(&conf);
}

static void
test_every_value(void **state)
{
	static const unsigned char fpr[32] = {
		0x5a, 0x0f, 0x00, 0x11, 0x22, 0x33, 0x44, 0x55,
		0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd,
		0xee, 0xff, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab,
		0xcd, 0xef, 0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54,
	};
	const struct conf_account *a;
	struct conf *conf;

	(void)state;
	conf = load_ok(
	    "state_dir = \"/var/lib/pf\"\n"
	    "timeout = 30\n"
	    "account work {\n"
	    "  host = \"pop.example.org\"\n"
	    "  port = 10995\n"
	    "  tls = starttls\n"
	    "  tls_verify = false\n"
	    "  tls_ca_file = \"/etc/ssl/ca.pem\"\n"
	    "  tls_fingerprint = \"sha256:5A:0F:00:11:22:33:44:55:66:77:88:99:"
	    "AA:BB:CC:DD:EE:FF:01:23:45:67:89:AB:CD:EF:FE:DC:BA:98:76:54\"\n"
	    "  tls_resume = false\n"
	    "  user = \"bob@example.org\"\n"
	    "  password_command = \"pass show mail/work\"\n"
	    "  auth = scram-sha-256\n"
	    "  allow_plaintext_password = true\n"
	    "  maildir = \"/srv/Mail\"\n"
	    "  delete = yes\n"
	    "  delete_after_days = 30\n"
	    "  forget_after_days = 7\n"
	    "  max_size = 9223372036854775807\n"
	    "  max_messages = 500\n"
	    "  received_header = off\n"
	    "  enabled = false\n"
	    "  timeout = 120\n"
	    "}\n");
	assert_string_equal(conf->state_dir, "/var/lib/pf");
	assert_int_equal(conf->timeout, 30);
	a = conf_account_find(conf, "work");
	assert_non_null(a);
	assert_string_equal(a->host, "pop.example.org");
	assert_int_equal(a->port, 10995);
	assert_int_equal(a->tls, CONF_TLS_STARTTLS);
	assert_false(a->tls_verify);
	assert_string_equal(a->tls_ca_file, "/etc/ssl/ca.pem");
	assert_true(a->has_fingerprint);
	assert_memory_equal(a->tls_fingerprint, fpr, 32);
	assert_false(a->tls_resume);
	assert_string_equal(a->user, "bob@example.org");
	assert_null(a->password);
	assert_string_equal(a->password_command, "pass show mail/work");
	assert_int_equal(a->auth, CONF_AUTH_SCRAM_SHA_256);
	assert_true(a->allow_plaintext_password);
	assert_string_equal(a->maildir, "/srv/Mail");
	assert_true(a->delete);
	assert_int_equal(a->delete_after_days, 30);
	assert_int_equal(a->forget_after_days, 7);
	assert_true(a->max_size == UINT64_C(9223372036854775807));
	assert_int_equal(a->max_messages, 500);
	assert_false(a->received_header);
	assert_false(a->enabled);
	assert_int_equal(a->timeout, 120);
	conf_free(&conf);
}

/* popfetch.conf(5), OAUTH2: a provider needs no password; auth defaults to xoauth2;
 * top-level password_command is not the account's. */
static void
test_oauth2_ok(void **state)
{
	struct conf *conf;
	const struct conf_account *a;

	(void)state;
	conf = load_ok("password_command = \"echo x\"\n"
	    "account ms {\n" OAUTH_BODY "  oauth2_provider = microsoft\n"
	    "  oauth2_client_id = \"cid\"\n  oauth2_tenant = \"consumers\"\n}\n"
	    "account g {\n" OAUTH_BODY "  oauth2_provider = google\n"
	    "  auth = oauthbearer\n  oauth2_client_id = \"cid\"\n"
	    "  oauth2_client_secret = \"s\"\n}\n"
	    "account c {\n" OAUTH_BODY "  oauth2_provider = custom\n"
	    "  oauth2_client_id = \"cid\"\n"
	    "  oauth2_token_url = \"https://127.0.0.1:1/token\"\n"
	    "  oauth2_device_url = \"https://127.0.0.1:1/device\"\n"
	    "  oauth2_scope = \"pop\"\n}\n");
	a = &conf->accounts[0];
	assert_int_equal(a->oauth2_provider, CONF_OAUTH2_MICROSOFT);
	assert_int_equal(a->auth, CONF_AUTH_XOAUTH2);
	assert_null(a->password);
	assert_null(a->password_command);
	assert_string_equal(a->oauth2_client_id, "cid");
	assert_string_equal(a->oauth2_tenant, "consumers");
	assert_null(a->oauth2_client_secret);
	a = &conf->accounts[1];
	assert_int_equal(a->oauth2_provider, CONF_OAUTH2_GOOGLE);
	assert_int_equal(a->auth, CONF_AUTH_OAUTHBEARER);
	assert_string_equal(a->oauth2_client_secret, "s");
	a = &conf->accounts[2];
	assert_int_equal(a->oauth2_provider, CONF_OAUTH2_CUSTOM);
	assert_string_equal(a->oauth2_token_url, "https://127.0.0.1:1/token");
	assert_string_equal(a->oauth2_device_url, "https://127.0.0.1:1/device");
	assert_null(a->oauth2_auth_url);
	assert_string_equal(a->oauth2_scope, "pop");
	assert_string_equal(conf_oauth2_provider_name(a->oauth2_provider),
	    "custom");
	conf_free(&conf);
}

static void
test_auth_values(void **state)
{
	static const struct { const char *word; enum conf_auth auth; } t[] = {
		{ "auto", CONF_AUTH_AUTO }, { "user", CONF_AUTH_USER },
		{ "apop", CONF_AUTH_APOP }, { "plain", CONF_AUTH_PLAIN },
		{ "scram-sha-256", CONF_AUTH_SCRAM_SHA_256 },
		{ "xoauth2", CONF_AUTH_XOAUTH2 },
		{ "oauthbearer", CONF_AUTH_OAUTHBEARER },
	};
	struct conf *conf;
	char *text;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		assert_true(asprintf(&text, "account work {\n" ACCOUNT_BODY
		    "  auth = %s\n}\n", t[i].word) > 0);
		conf = load_ok(text);
		assert_int_equal(conf->accounts[0].auth, t[i].auth);
		assert_string_equal(conf_auth_name(t[i].auth), t[i].word);
		conf_free(&conf);
		free(text);
	}
	assert_string_equal(conf_tls_name(CONF_TLS_IMPLICIT), "implicit");
	assert_string_equal(conf_tls_name(CONF_TLS_STARTTLS), "starttls");
	assert_string_equal(conf_tls_name(CONF_TLS_NONE), "none");
}

static void
test_top_level_defaults(void **state)
{
	const struct conf_account *a, *b;
	struct conf *conf;

	(void)state;
	conf = load_ok(
	    "port = 1995\n"
	    "tls_verify = false\n"
	    "auth = plain\n"
	    "password_command = \"pass show mail\"\n"
	    "maildir = \"/srv/Mail/shared\"\n"
	    "delete = true\n"
	    "forget_after_days = 90\n"
	    "max_messages = 10\n"
	    "received_header = false\n"
	    "timeout = 15\n"
	    "account a {\n  host = \"ha\"\n  user = \"ua\"\n}\n"
	    "account b {\n  host = \"hb\"\n  user = \"ub\"\n"
	    "  port = 2995\n  tls_verify = true\n  auth = user\n"
	    "  maildir = \"/srv/Mail/b\"\n  delete = false\n"
	    "  forget_after_days = 0\n"
	    "  max_messages = 0\n  received_header = true\n"
	    "  timeout = 5\n}\n");
	a = conf_account_find(conf, "a");
	b = conf_account_find(conf, "b");
	assert_non_null(a);
	assert_non_null(b);
	assert_int_equal(conf->timeout, 15);
	/* a inherits every top-level value */
	assert_int_equal(a->port, 1995);
	assert_false(a->tls_verify);
	assert_int_equal(a->auth, CONF_AUTH_PLAIN);
	assert_string_equal(a->password_command, "pass show mail");
	assert_string_equal(a->maildir, "/srv/Mail/shared");
	assert_true(a->delete);
	assert_int_equal(a->forget_after_days, 90);
	assert_int_equal(a->max_messages, 10);
	assert_false(a->received_header);
	assert_int_equal(a->timeout, 15);
	/* b's own values win, also "false" and "0" over a top-level value */
	assert_int_equal(b->port, 2995);
	assert_true(b->tls_verify);
	assert_int_equal(b->auth, CONF_AUTH_USER);
	assert_string_equal(b->maildir, "/srv/Mail/b");
	assert_false(b->delete);
	assert_int_equal(b->forget_after_days, 0);
	assert_int_equal(b->max_messages, 0);
	assert_true(b->received_header);
	assert_int_equal(b->timeout, 5);
	conf_free(&conf);
}

/*
 * Where each value came from (popfetch config): the account's own line, the
 * top level's line for an inherited value, "default" for one set nowhere;
 * the credential pair as a pair; comments do not shift the lines.
 */
static void
test_origins(void **state)
{
	const struct conf_account *a, *b;
	struct conf *conf;

	(void)state;
	conf = load_ok(
	    "# popfetch\n"				/* 1 */
	    "maildir = \"/srv/Mail/shared\"\n"	/* 2 */
	    "password_command = \"pass show mail\"\n" /* 3 */
	    "/* a block\n   comment */\n"		/* 4, 5 */
	    "timeout = 15\n"				/* 6 */
	    "account a {\n"				/* 7 */
	    "  host = \"ha\"  # the host\n"		/* 8 */
	    "  user = \"ua\"\n"			/* 9 */
	    "}\n"					/* 10 */
	    "account b {\n"				/* 11 */
	    "  host = \"hb\"\n"			/* 12 */
	    "  user = \"ub\"\n"			/* 13 */
	    "  // own password\n"			/* 14 */
	    "  password = \"s3cret\"\n"		/* 15 */
	    "  maildir = \"/srv/Mail/b\"\n"		/* 16 */
	    "  tls = starttls\n"			/* 17 */
	    "}\n"					/* 18 */
	    "enabled = false\n");			/* 19 */
	a = conf_account_find(conf, "a");
	b = conf_account_find(conf, "b");
	assert_non_null(a);
	assert_non_null(b);

	assert_int_equal(conf->state_dir_origin.from, CONF_FROM_DEFAULT);
	assert_int_equal(conf->state_dir_origin.line, 0);

	assert_int_equal(a->origin[CONF_OPT_HOST].from, CONF_FROM_ACCOUNT);
	assert_int_equal(a->origin[CONF_OPT_HOST].line, 8);
	assert_int_equal(a->origin[CONF_OPT_USER].line, 9);
	assert_int_equal(a->origin[CONF_OPT_MAILDIR].from, CONF_FROM_TOP);
	assert_int_equal(a->origin[CONF_OPT_MAILDIR].line, 2);
	assert_int_equal(a->origin[CONF_OPT_PASSWORD_COMMAND].from,
	    CONF_FROM_TOP);
	assert_int_equal(a->origin[CONF_OPT_PASSWORD_COMMAND].line, 3);
	assert_int_equal(a->origin[CONF_OPT_PASSWORD].from, CONF_FROM_DEFAULT);
	assert_int_equal(a->origin[CONF_OPT_TIMEOUT].from, CONF_FROM_TOP);
	assert_int_equal(a->origin[CONF_OPT_TIMEOUT].line, 6);
	/* a top-level value after the accounts is inherited all the same */
	assert_int_equal(a->origin[CONF_OPT_ENABLED].from, CONF_FROM_TOP);
	assert_int_equal(a->origin[CONF_OPT_ENABLED].line, 19);
	assert_int_equal(a->origin[CONF_OPT_PORT].from, CONF_FROM_DEFAULT);
	assert_int_equal(a->origin[CONF_OPT_PORT].line, 0);
	assert_int_equal(a->origin[CONF_OPT_TLS].from, CONF_FROM_DEFAULT);
	assert_int_equal(a->origin[CONF_OPT_FORGET_AFTER_DAYS].from,
	    CONF_FROM_DEFAULT);
	assert_int_equal(a->origin[CONF_OPT_FILTER].from, CONF_FROM_DEFAULT);

	/* b's own values win; its password replaces the top-level command */
	assert_int_equal(b->origin[CONF_OPT_MAILDIR].from, CONF_FROM_ACCOUNT);
	assert_int_equal(b->origin[CONF_OPT_MAILDIR].line, 16);
	assert_int_equal(b->origin[CONF_OPT_PASSWORD].from, CONF_FROM_ACCOUNT);
	assert_int_equal(b->origin[CONF_OPT_PASSWORD].line, 15);
	assert_int_equal(b->origin[CONF_OPT_PASSWORD_COMMAND].from,
	    CONF_FROM_DEFAULT);
	assert_int_equal(b->origin[CONF_OPT_PASSWORD_COMMAND].line, 0);
	assert_int_equal(b->origin[CONF_OPT_TLS].from, CONF_FROM_ACCOUNT);
	assert_int_equal(b->origin[CONF_OPT_TLS].line, 17);
	assert_int_equal(b->origin[CONF_OPT_PORT].from, CONF_FROM_DEFAULT);
	assert_int_equal(b->port, 110);
	conf_free(&conf);

	conf = load_ok("state_dir = \"/var/lib/pf\"\n"
	    "account w {\n  host = \"h\"\n  user = \"u\"\n"
	    "  password = \"p\"\n  maildir = \"/m\"\n}\n");
	assert_int_equal(conf->state_dir_origin.from, CONF_FROM_TOP);
	assert_int_equal(conf->state_dir_origin.line, 1);
	assert_string_equal(conf_opt_name(CONF_OPT_TLS_CA_FILE), "tls_ca_file");
	assert_string_equal(conf_opt_name(CONF_OPT_ALLOW_PLAINTEXT),
	    "allow_plaintext_password");
	assert_string_equal(conf_opt_name(CONF_OPT_OAUTH2_PROVIDER),
	    "oauth2_provider");
	assert_string_equal(conf_opt_name(CONF_OPT_OAUTH2_CLIENT_SECRET),
	    "oauth2_client_secret");
	assert_string_equal(conf_opt_name(CONF_OPT_OAUTH2_SCOPE),
	    "oauth2_scope");
	conf_free(&conf);

	/* OAuth2: a top-level oauth2_client_id is inherited by an account
	 * with a provider; the top-level password_command is not (the
	 * account has no password at all), and an account without a
	 * provider ignores the oauth2_ options. */
	conf = load_ok(
	    "oauth2_client_id = \"cid\"\n"			/* 1 */
	    "password_command = \"pass show mail\"\n"	/* 2 */
	    "account o {\n"				/* 3 */
	    "  host = \"ho\"\n  user = \"uo\"\n"		/* 4, 5 */
	    "  oauth2_provider = microsoft\n"		/* 6 */
	    "  oauth2_client_secret = \"cs\"\n"		/* 7 */
	    "}\n"					/* 8 */
	    "account p {\n"				/* 9 */
	    "  host = \"hp\"\n  user = \"up\"\n"		/* 10, 11 */
	    "}\n"					/* 12 */
	    "maildir = \"/srv/Mail\"\n");			/* 13 */
	a = conf_account_find(conf, "o");
	b = conf_account_find(conf, "p");
	assert_non_null(a);
	assert_non_null(b);
	assert_int_equal(a->oauth2_provider, CONF_OAUTH2_MICROSOFT);
	assert_string_equal(a->oauth2_client_id, "cid");
	assert_int_equal(a->origin[CONF_OPT_OAUTH2_CLIENT_ID].from,
	    CONF_FROM_TOP);
	assert_int_equal(a->origin[CONF_OPT_OAUTH2_CLIENT_ID].line, 1);
	assert_int_equal(a->origin[CONF_OPT_OAUTH2_PROVIDER].from,
	    CONF_FROM_ACCOUNT);
	assert_int_equal(a->origin[CONF_OPT_OAUTH2_PROVIDER].line, 6);
	assert_int_equal(a->origin[CONF_OPT_OAUTH2_CLIENT_SECRET].from,
	    CONF_FROM_ACCOUNT);
	assert_int_equal(a->origin[CONF_OPT_OAUTH2_CLIENT_SECRET].line, 7);
	assert_int_equal(a->origin[CONF_OPT_OAUTH2_SCOPE].from,
	    CONF_FROM_DEFAULT);
	assert_null(a->password);
	assert_null(a->password_command);
	assert_int_equal(a->origin[CONF_OPT_PASSWORD_COMMAND].from,
	    CONF_FROM_DEFAULT);
	assert_int_equal(a->origin[CONF_OPT_PASSWORD_COMMAND].line, 0);
	assert_int_equal(a->origin[CONF_OPT_PASSWORD].from, CONF_FROM_DEFAULT);
	assert_int_equal(a->auth, CONF_AUTH_XOAUTH2);
	assert_int_equal(a->origin[CONF_OPT_AUTH].from, CONF_FROM_DEFAULT);
	assert_int_equal(b->oauth2_provider, CONF_OAUTH2_NONE);
	assert_null(b->oauth2_client_id);
	assert_int_equal(b->origin[CONF_OPT_OAUTH2_CLIENT_ID].from,
	    CONF_FROM_DEFAULT);
	assert_int_equal(b->origin[CONF_OPT_OAUTH2_CLIENT_ID].line, 0);
	assert_int_equal(b->origin[CONF_OPT_PASSWORD_COMMAND].from,
	    CONF_FROM_TOP);
	assert_int_equal(b->origin[CONF_OPT_PASSWORD_COMMAND].line, 2);
	conf_free(&conf);
}

static void
test_top_level_default_after_account(void **state)
{
	struct conf *conf;

	(void)state;
	conf = load_ok("account work {\n  host = \"h\"\n  user = \"u\"\n}\n"
	    "maildir = \"/m\"\npassword = \"p\"\nenabled = false\n"
	    "tls = starttls\nforget_after_days = 36500\n");
	assert_string_equal(conf->accounts[0].maildir, "/m");
	assert_int_equal(conf->accounts[0].forget_after_days,
	    CONF_DELETE_AFTER_DAYS_MAX);
	assert_string_equal(conf->accounts[0].password, "p");
	assert_false(conf->accounts[0].enabled);
	assert_int_equal(conf->accounts[0].port, 110);
	conf_free(&conf);
}

static void
test_credentials_override_as_a_pair(void **state)
{
	struct conf *conf;

	(void)state;
	/* An account's password replaces a top-level password_command. */
	conf = load_ok("password_command = \"pass show mail\"\n"
	    "account a {\n" ACCOUNT_BODY "}\n"
	    "account b {\n  host = \"h\"\n  user = \"u\"\n  maildir = \"/m\"\n}\n");
	assert_string_equal(conf->accounts[0].password, "secret");
	assert_null(conf->accounts[0].password_command);
	assert_null(conf->accounts[1].password);
	assert_string_equal(conf->accounts[1].password_command,
	    "pass show mail");
	conf_free(&conf);
}

static void
test_xoauth2_sources(void **state)
{
	struct conf *conf;

	(void)state;
	conf = load_ok("account a {\n  host = \"h\"\n  user = \"u\"\n"
	    "  maildir = \"/m\"\n  auth = xoauth2\n"
	    "  password_command = \"oauth2-token\"\n}\n"
	    "account b {\n  host = \"h\"\n  user = \"u\"\n  maildir = \"/m\"\n"
	    "  auth = xoauth2\n  password = \"static-token\"\n}\n");
	assert_int_equal(conf->accounts[0].auth, CONF_AUTH_XOAUTH2);
	assert_string_equal(conf->accounts[0].password_command, "oauth2-token");
	assert_null(conf->accounts[0].password);
	assert_string_equal(conf->accounts[1].password, "static-token");
	conf_free(&conf);
}

static void
test_plaintext_allowed_cases(void **state)
{
	struct conf *conf;

	(void)state;
	conf = load_ok(
	    "account apop {\n" ACCOUNT_BODY "  tls = none\n  auth = apop\n}\n"
	    "account scram {\n" ACCOUNT_BODY "  tls = none\n"
	    "  auth = scram-sha-256\n}\n"
	    "account user {\n" ACCOUNT_BODY "  tls = none\n  auth = user\n"
	    "  allow_plaintext_password = true\n}\n"
	    "account auto {\n" ACCOUNT_BODY "  tls = none\n"
	    "  allow_plaintext_password = true\n}\n"
	    "account stls {\n" ACCOUNT_BODY "  tls = starttls\n  auth = user\n}\n");
	assert_int_equal(conf->naccounts, 5);
	assert_int_equal(conf->accounts[0].auth, CONF_AUTH_APOP);
	assert_int_equal(conf->accounts[2].tls, CONF_TLS_NONE);
	assert_true(conf->accounts[3].allow_plaintext_password);
	conf_free(&conf);
}

/* `got` is `want`, or both are NULL. */
static void
assert_str_or_null(const char *got, const char *want)
{
	if (want == NULL)
		assert_null(got);
	else
		assert_string_equal(got, want);
}

/* An account's filter, mda and maildir (NULL: not set). */
static void
assert_delivery(const struct conf_account *a, const char *filter,
    const char *mda, const char *maildir)
{
	assert_non_null(a);
	assert_str_or_null(a->filter, filter);
	assert_str_or_null(a->mda, mda);
	assert_str_or_null(a->maildir, maildir);
}

/* popfetch.conf(5): filter and mda, per account and as top-level defaults. */
static void
test_filter_mda_values(void **state)
{
	struct conf *conf;

	(void)state;
	/* Unset: NULL, the Maildir as before. */
	conf = load_ok(MINIMAL);
	assert_delivery(&conf->accounts[0], NULL, NULL, "/tmp/Mail/work");
	conf_free(&conf);

	/* Kept as written: no `~` expansion, tab and newline allowed (the
	 * shell gets them), $NAME without braces is the shell's. */
	conf = load_ok("account work {\n  host = \"h\"\n  user = \"u\"\n"
	    "  password = \"p\"\n"
	    "  filter = \"~/bin/sort-mail --to ~/x\\t$HOME\\necho\"\n"
	    "  mda = '~/bin/deliver -a \"$POPFETCH_ACCOUNT\"'\n}\n");
	assert_delivery(&conf->accounts[0],
	    "~/bin/sort-mail --to ~/x\t$HOME\necho",
	    "~/bin/deliver -a \"$POPFETCH_ACCOUNT\"", NULL);
	conf_free(&conf);

	/* ${NAME} in double quotes, as in every value. */
	conf = load_ok("account work {\n  host = \"h\"\n  user = \"u\"\n"
	    "  password = \"p\"\n  maildir = \"/m\"\n"
	    "  filter = \"f ${POPFETCH_TEST_SET}\"\n"
	    "  mda = \"lda ${POPFETCH_TEST_NOPE:--e}\"\n}\n");
	assert_delivery(&conf->accounts[0], "f v a l", "lda -e", NULL);
	conf_free(&conf);
}

static void
test_filter_mda_top_level_defaults(void **state)
{
	struct conf *conf;

	(void)state;
	conf = load_ok(
	    "filter = \"/usr/local/bin/sort-mail\"\n"
	    "mda = \"/usr/lib/dovecot/dovecot-lda -e\"\n"
	    "account a {\n  host = \"h\"\n  user = \"u\"\n"
	    "  password = \"p\"\n}\n"
	    "account b {\n  host = \"h\"\n  user = \"u\"\n"
	    "  password = \"p\"\n  filter = \"b-filter\"\n"
	    "  mda = \"b-mda\"\n}\n"
	    "account c {\n  host = \"h\"\n  user = \"u\"\n"
	    "  password = \"p\"\n  maildir = \"/srv/Mail/c\"\n}\n");
	/* a inherits both, and needs no maildir */
	assert_delivery(conf_account_find(conf, "a"), "/usr/local/bin/sort-mail",
	    "/usr/lib/dovecot/dovecot-lda -e", NULL);
	/* b's own win */
	assert_delivery(conf_account_find(conf, "b"), "b-filter", "b-mda", NULL);
	/* c has a maildir, but the inherited mda wins over it */
	assert_delivery(conf_account_find(conf, "c"), "/usr/local/bin/sort-mail",
	    "/usr/lib/dovecot/dovecot-lda -e", NULL);
	conf_free(&conf);

	/* A top-level default after the accounts; a top-level maildir with
	 * an account's mda: the mda wins for that account only. */
	conf = load_ok("account a {\n  host = \"h\"\n  user = \"u\"\n"
	    "  mda = \"lda\"\n}\n"
	    "account b {\n  host = \"h\"\n  user = \"u\"\n}\n"
	    "password = \"p\"\nmaildir = \"~/Mail\"\nfilter = \"f\"\n");
	assert_delivery(&conf->accounts[0], "f", "lda", NULL);
	assert_delivery(&conf->accounts[1], "f", NULL,
	    conf->accounts[1].maildir);
	assert_home_path(conf->accounts[1].maildir, "/Mail");
	conf_free(&conf);

	/* With an mda the maildir is not used, so not expanded either: a
	 * `~user` that does not exist is no error there. */
	conf = load_ok("account work {\n  host = \"h\"\n  user = \"u\"\n"
	    "  password = \"p\"\n  maildir = \"~no-such-user-popfetch/M\"\n"
	    "  mda = \"lda\"\n}\n");
	assert_delivery(&conf->accounts[0], NULL, "lda", NULL);
	conf_free(&conf);
}

static void
test_password_kept_verbatim(void **state)
{
	struct conf *conf;

	(void)state;
	/* Tabs, quotes, '#' and escapes that are not CR/LF/NUL are fine. */
	conf = load_ok("account work {\n  host = \"h\"\n  user = \"u\"\n"
	    "  password = \"a\\tb\\\"c#d'e\\\\f\"\n  maildir = \"/m\"\n}\n");
	assert_string_equal(conf->accounts[0].password, "a\tb\"c#d'e\\f");
	conf_free(&conf);
}

static void
test_comments_and_quotes(void **state)
{
	struct conf *conf;

	(void)state;
	conf = load_ok("# a comment with \"quote\n"
	    "// another, with \\0 in it\n"
	    "/* a block\n   comment \" */\n"
	    "account 'work' {\n"
	    "  host = pop.example.com  # unquoted\n"
	    "  user = 'alice'\n"
	    "  password = 'it\\'s'\n"
	    "  maildir = /srv/Mail/work\n"
	    "}\n");
	assert_string_equal(conf->accounts[0].host, "pop.example.com");
	assert_string_equal(conf->accounts[0].user, "alice");
	assert_string_equal(conf->accounts[0].maildir, "/srv/Mail/work");
	assert_string_equal(conf->accounts[0].password, "it's");
	conf_free(&conf);
}

/*
 * A comment is nothing but a comment, wherever it stands between tokens
 * (libconfuse alone refuses one between a key and its value), and "//"
 * inside a bare word starts none.
 */
static void
test_comments_between_tokens(void **state)
{
	struct conf *conf;

	(void)state;
	conf = load_ok("timeout = # the default is 60\n  30\n"
	    "account work /* the office */ {\n"
	    "  host // the server\n    = pop.example.com\n"
	    "  user = u\n  password = \"p\"\n"
	    "  maildir = /srv//Mail/work\n}\n");
	assert_int_equal(conf->timeout, 30);
	assert_string_equal(conf->accounts[0].host, "pop.example.com");
	assert_string_equal(conf->accounts[0].maildir, "/srv//Mail/work");
	conf_free(&conf);
}

/*
 * popfetch.conf(5), SYNTAX: ${NAME} expands in double-quoted values only;
 * single quotes and \${ keep it as written; ${NAME:-DEFAULT} takes DEFAULT
 * when NAME is unset (not when it is empty); an unset NAME is an error.
 */
static void
test_env_expansion(void **state)
{
	const struct conf_account *a;
	struct conf *conf;
	const char *const unset[] = { "account work: option password: "
	    "environment variable POPFETCH_TEST_NOPE is not set", NULL };
	const char *const empty[] = { "account work: option user: is empty",
	    NULL };

	(void)state;
	conf = load_ok("account work {\n"
	    "  host = \"pop.${POPFETCH_TEST_NOPE:-example.com}\"\n"
	    "  user = '${POPFETCH_TEST_NOPE}'\n"
	    "  password = \"<${POPFETCH_TEST_SET}|${POPFETCH_TEST_EMPTY}|"
	    "${POPFETCH_TEST_EMPTY:-d}|${POPFETCH_TEST_SET:-d}|\\${X}>\"\n"
	    "  maildir = \"/m/${POPFETCH_TEST_SET}\"\n}\n"
	    "account two {\n  host = h\n  user = u\n  maildir = /m\n"
	    "  password_command = \"echo $HOME $ {x} $}{\"\n}\n");
	a = &conf->accounts[0];
	assert_string_equal(a->host, "pop.example.com");
	assert_string_equal(a->user, "${POPFETCH_TEST_NOPE}");
	assert_string_equal(a->password, "<v a l|||v a l|${X}>");
	assert_string_equal(a->maildir, "/m/v a l");
	assert_string_equal(conf->accounts[1].password_command,
	    "echo $HOME $ {x} $}{");
	conf_free(&conf);

	/* The same, with the variable it needs unset: an error. */
	load_err_mode("account work {\n  host = \"h\"\n  user = \"u\"\n"
	    "  password = \"<${POPFETCH_TEST_NOPE}|x>\"\n"
	    "  maildir = \"/m\"\n}\n", 0600, 4, unset);
	/* An empty default is asked for, and still an empty value. */
	load_err_mode("account work {\n  host = \"h\"\n"
	    "  user = \"${POPFETCH_TEST_NOPE:-}\"\n  password = \"p\"\n"
	    "  maildir = \"/m\"\n}\n", 0600, 3, empty);
}

/* The whole message, as popfetch.conf(5) DIAGNOSTICS shows it. */
static void
test_env_unset_message(void **state)
{
	struct pf_error err;
	struct conf *conf = NULL;
	char *path, *want;

	(void)state;
	path = write_conf("# mail\naccount work {\n  host = \"h\"\n"
	    "  user = \"u\"\n  password = \"p${POPFETCH_TEST_NOPE}w\"\n"
	    "  maildir = \"/m\"\n}\n", 0600);
	pf_error_clear(&err);
	assert_int_equal(conf_load(path, &conf, &err), -1);
	assert_null(conf);
	assert_int_equal(pf_exit_code(err.category), 78);
	assert_true(asprintf(&want, "%s:5: account work: option password: "
	    "environment variable POPFETCH_TEST_NOPE is not set", path) > 0);
	assert_string_equal(err.what, want);
	free(want);
	unlink(path);
	free(path);
}

static void
test_tilde_expansion(void **state)
{
	const struct conf_account *a;
	struct conf *conf;

	(void)state;
	conf = load_ok("state_dir = \"~/state\"\n"
	    "account work {\n  host = \"h\"\n  user = \"u\"\n  password = \"p\"\n"
	    "  maildir = \"~/Mail/work\"\n  tls_ca_file = \"~/ca.pem\"\n"
	    "  tls_verify = false\n}\n");	/* unused: need not exist */
	a = &conf->accounts[0];
	assert_home_path(conf->state_dir, "/state");
	assert_home_path(a->maildir, "/Mail/work");
	assert_home_path(a->tls_ca_file, "/ca.pem");
	conf_free(&conf);
}

/* conf_expand_tilde(in) must give `want`. */
static void
expect_tilde(const char *in, const char *want)
{
	char *s = conf_expand_tilde(in);

	assert_string_equal(s, want);
	free(s);
}

static void
test_expand_tilde_function(void **state)
{
	struct passwd *pw;
	char *s, *want;

	(void)state;
	expect_tilde("~", home);
	s = conf_expand_tilde("~/a/b");
	assert_home_path(s, "/a/b");
	free(s);
	expect_tilde("/x/~/y", "/x/~/y");
	expect_tilde("rel/~", "rel/~");
	expect_tilde("~no-such-user-popfetch/x", "~no-such-user-popfetch/x");

	pw = getpwuid(geteuid());
	assert_non_null(pw);
	want = strdup(pw->pw_dir);
	assert_non_null(want);
	/* HOME unset or empty: the passwd entry */
	unsetenv("HOME");
	expect_tilde("~", want);
	setenv("HOME", "", 1);
	expect_tilde("~", want);
	setenv("HOME", home, 1);
	free(want);

	pw = getpwnam("root");
	if (pw != NULL) {
		want = NULL;
		assert_true(asprintf(&want, "%s/x", strcmp(pw->pw_dir, "/") == 0 ?
		    "" : pw->pw_dir) > 0);
		expect_tilde("~root/x", want);
		free(want);
	}
	setenv("HOME", "/", 1);
	expect_tilde("~/x", "/x");
	setenv("HOME", home, 1);
}

/* ---- fingerprints ---- */

static void
test_fingerprint_forms(void **state)
{
	static const char *const good[] = {
		"5a0f00112233445566778899aabbccddeeff0123456789abcdeffedcba987654",
		"5A0F00112233445566778899AABBCCDDEEFF0123456789ABCDEFFEDCBA987654",
		"5A:0F:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:01:23:45:"
		"67:89:AB:CD:EF:FE:DC:BA:98:76:54",
		"sha256:5a:0f:00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff:01:"
		"23:45:67:89:ab:cd:ef:fe:dc:ba:98:76:54",
		"SHA256:5A0F00112233445566778899aabbccddeeff0123456789abcdeffedcba987654",
	};
	static const unsigned char want[32] = {
		0x5a, 0x0f, 0x00, 0x11, 0x22, 0x33, 0x44, 0x55,
		0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd,
		0xee, 0xff, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab,
		0xcd, 0xef, 0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54,
	};
	unsigned char out[32];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		memset(out, 0, sizeof(out));
		if (conf_parse_fingerprint(good[i], out) != 0)
			fail_msg("rejected %s", good[i]);
		assert_memory_equal(out, want, 32);
	}
}

static void
test_fingerprint_rejects(void **state)
{
	static const char *const bad[] = {
		"",
		"sha256:",
		/* 63 and 66 digits */
		"5a0f00112233445566778899aabbccddeeff0123456789abcdeffedcba98765",
		"5a0f00112233445566778899aabbccddeeff0123456789abcdeffedcba98765400",
		/* a non-hex digit */
		"5g0f00112233445566778899aabbccddeeff0123456789abcdeffedcba987654",
		/* colons doubled, leading, trailing, or splitting a byte */
		"5A::0F:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:01:23:45:"
		"67:89:AB:CD:EF:FE:DC:BA:98:76:54",
		":5A0F00112233445566778899AABBCCDDEEFF0123456789ABCDEFFEDCBA987654",
		"5A0F00112233445566778899AABBCCDDEEFF0123456789ABCDEFFEDCBA987654:",
		"5:A0F00112233445566778899AABBCCDDEEFF0123456789ABCDEFFEDCBA987654",
		/* spaces, another hash's prefix */
		" 5A0F00112233445566778899AABBCCDDEEFF0123456789ABCDEFFEDCBA987654",
		"sha1:5A0F00112233445566778899AABBCCDDEEFF0123456789ABCDEFFEDCBA987654",
	};
	unsigned char out[32];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(out, 0xa5, sizeof(out));
		if (conf_parse_fingerprint(bad[i], out) != -1)
			fail_msg("accepted '%s'", bad[i]);
	}
}

/* ---- permissions ---- */

static void
expect_perm_refusal(const char *text, mode_t mode)
{
	struct pf_error err;
	struct conf *conf = NULL;
	char *path = write_conf(text, mode), *fix;

	assert_int_equal(conf_load(path, &conf, &err), -1);
	assert_null(conf);
	assert_int_equal(err.category, PF_FAIL_CONFIG);
	assert_true(asprintf(&fix, "chmod 600 %s", path) > 0);
	if (strstr(err.what, fix) == NULL)
		fail_msg("message '%s' lacks '%s'", err.what, fix);
	assert_true(strncmp(err.what, path, strlen(path)) == 0);
	/* The secret itself never shows. */
	assert_null(strstr(err.what, "secret"));
	free(fix);
	unlink(path);
	free(path);
}

static void
test_perm_world_readable_refused(void **state)
{
	(void)state;
	expect_perm_refusal(MINIMAL, 0644);
}

static void
test_perm_group_readable_refused(void **state)
{
	(void)state;
	expect_perm_refusal(MINIMAL, 0640);
}

static void
test_perm_top_level_password_refused(void **state)
{
	(void)state;
	expect_perm_refusal("password = \"secret\"\n", 0604);
}

static void
test_perm_no_password_accepted(void **state)
{
	struct pf_error err;
	struct conf *conf = NULL;
	char *path = write_conf("account work {\n  host = \"h\"\n  user = \"u\"\n"
	    "  password_command = \"pass show x\"\n  maildir = \"/m\"\n}\n", 0644);

	(void)state;
	if (conf_load(path, &conf, &err) != 0)
		fail_msg("refused: %s", err.what);
	assert_int_equal(conf->naccounts, 1);
	conf_free(&conf);
	unlink(path);
	free(path);
}

static void
test_perm_owner_refused(void **state)
{
	struct pf_error err;
	struct conf *conf = NULL;
	struct passwd *pw;
	char *path, *fix;

	(void)state;
	if (geteuid() != 0)
		skip();	/* only root can give a file away */
	pw = getpwuid(geteuid());
	assert_non_null(pw);
	assert_true(asprintf(&fix, "chown %s ", pw->pw_name) > 0);
	path = write_conf(MINIMAL, 0600);
	assert_int_equal(chown(path, 65534, (gid_t)-1), 0);
	assert_int_equal(conf_load(path, &conf, &err), -1);
	assert_int_equal(err.category, PF_FAIL_CONFIG);
	if (strstr(err.what, fix) == NULL || strstr(err.what, path) == NULL)
		fail_msg("message '%s' lacks '%s%s'", err.what, fix, path);
	free(fix);
	unlink(path);
	free(path);
}

/* ---- loading odd files ---- */

static void
test_load_missing_file(void **state)
{
	struct pf_error err;
	struct conf *conf = NULL;
	char *path;

	(void)state;
	assert_true(asprintf(&path, "%s/does-not-exist", tmpdir) > 0);
	assert_int_equal(conf_load(path, &conf, &err), -1);
	assert_int_equal(err.category, PF_FAIL_CONFIG);
	assert_true(strncmp(err.what, path, strlen(path)) == 0);
	assert_non_null(strstr(err.what, "No such file or directory"));
	free(path);
}

static void
test_load_directory(void **state)
{
	struct pf_error err;
	struct conf *conf = NULL;

	(void)state;
	assert_int_equal(conf_load(tmpdir, &conf, &err), -1);
	assert_int_equal(err.category, PF_FAIL_CONFIG);
	assert_non_null(strstr(err.what, "not a regular file"));
}

static void
test_load_raw_nul(void **state)
{
	struct pf_error err;
	struct conf *conf = NULL;
	char *path, *want;

	(void)state;
	path = write_conf("timeout = 5\n", 0600);
	assert_int_equal(test_write_file(path, O_APPEND, "# x\0y\n", 6), 0);
	assert_int_equal(conf_load(path, &conf, &err), -1);
	assert_int_equal(err.category, PF_FAIL_CONFIG);
	assert_true(asprintf(&want, "%s:2: NUL byte", path) > 0);
	if (strncmp(err.what, want, strlen(want)) != 0)
		fail_msg("message '%s' is not '%s...'", err.what, want);
	free(want);
	unlink(path);
	free(path);
}

/* A tls_ca_file that would be used must exist: 78 at its line. */
static void
test_tls_ca_file_missing(void **state)
{
	static const char *const needles[] = { "account work: option "
	    "tls_ca_file: /nonexistent/ca.pem: No such file or directory", NULL };
	struct conf *conf;
	char *ca, *text;
	int fd;

	(void)state;
	load_err_mode("account work {\n  host = \"h\"\n  user = \"u\"\n"
	    "  password = \"p\"\n  maildir = \"/m\"\n"
	    "  tls_ca_file = \"/nonexistent/ca.pem\"\n}\n", 0600, 6, needles);
	load_err_mode("tls = starttls\ntls_ca_file = \"/nonexistent/ca.pem\"\n"
	    "account work {\n  host = \"h\"\n  user = \"u\"\n"
	    "  password = \"p\"\n  maildir = \"/m\"\n}\n", 0600, 2, needles);
	/* Not used (tls = none, tls_verify = false, a pin): not checked. */
	conf = load_ok("tls_ca_file = \"/nonexistent/ca.pem\"\n"
	    "account a {\n  host = \"h\"\n  user = \"u\"\n  password = \"p\"\n"
	    "  maildir = \"/m\"\n  tls = none\n  allow_plaintext_password = true\n}\n"
	    "account b {\n  host = \"h\"\n  user = \"u\"\n  password = \"p\"\n"
	    "  maildir = \"/m\"\n  tls_verify = false\n}\n"
	    "account c {\n  host = \"h\"\n  user = \"u\"\n  password = \"p\"\n"
	    "  maildir = \"/m\"\n  tls_fingerprint = \"00:11:22:33:44:55:66:77:"
	    "88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:"
	    "EE:FF\"\n}\n");
	assert_int_equal(conf->naccounts, 3);
	conf_free(&conf);
	/* An existing file is fine. */
	assert_true(asprintf(&ca, "%s/ca.pem", tmpdir) > 0);
	assert_true((fd = open(ca, O_WRONLY | O_CREAT | O_TRUNC, 0600)) >= 0);
	close(fd);
	assert_true(asprintf(&text, "account work {\n  host = \"h\"\n"
	    "  user = \"u\"\n  password = \"p\"\n  maildir = \"/m\"\n"
	    "  tls_ca_file = \"%s\"\n}\n", ca) > 0);
	conf = load_ok(text);
	assert_string_equal(conf->accounts[0].tls_ca_file, ca);
	conf_free(&conf);
	unlink(ca);
	free(ca);
	free(text);
}

/* popfetch.conf(5), DIAGNOSTICS: no account section is a configuration error, saying so. */
static void
test_empty_and_accountless(void **state)
{
	static const char *const needles[] = { "no account section", NULL };
	struct conf *conf = NULL;

	(void)state;
	load_err_mode("", 0600, 0, needles);
	load_err_mode("# only a comment\ntimeout = 7\n", 0600, 0, needles);
	conf = load_ok("timeout = 7\naccount a {\n host = \"h\"\n user = \"u\"\n"
	    " password_command = \"true\"\n maildir = \"/m\"\n}\n");
	assert_int_equal(conf->naccounts, 1);
	assert_int_equal(conf->timeout, 7);
	conf_free(&conf);
	conf_free(&conf);	/* freeing NULL is fine */
}

static void
test_account_order_and_find(void **state)
{
	struct conf *conf;

	(void)state;
	conf = load_ok("account zeta {\n" ACCOUNT_BODY "}\n"
	    "account alpha {\n" ACCOUNT_BODY "}\n"
	    "account \"mid.dle_-@+1\" {\n" ACCOUNT_BODY "}\n");
	assert_int_equal(conf->naccounts, 3);
	assert_string_equal(conf->accounts[0].name, "zeta");
	assert_string_equal(conf->accounts[1].name, "alpha");
	assert_ptr_equal(conf_account_find(conf, "alpha"), &conf->accounts[1]);
	assert_non_null(conf_account_find(conf, "mid.dle_-@+1"));
	assert_null(conf_account_find(conf, "Alpha"));
	conf_free(&conf);
}

/* ---- conf_locate ---- */

static char *
make_config_at(const char *path)
{
	static const char text[] = "timeout = 5\n";
	char *dir = strdup(path), *slash;

	/* mkdir -p dirname(path) */
	for (slash = strchr(dir + 1, '/'); slash != NULL;
	    slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		if (mkdir(dir, 0700) == -1 && errno != EEXIST)
			fail_msg("mkdir %s: %s", dir, strerror(errno));
		*slash = '/';
	}
	free(dir);
	assert_int_equal(test_write_file(path, O_CREAT | O_TRUNC, text,
	    sizeof(text) - 1), 0);
	return strdup(path);
}

static void
locate_expect(const char *c, const char *want)
{
	struct pf_error err;
	char *path = NULL;

	pf_error_clear(&err);
	if (conf_locate(c, &path, &err) != 0)
		fail_msg("conf_locate: %s", err.what);
	assert_string_equal(path, want);
	free(path);
}

static void
locate_expect_error(const char *c, const char *needle)
{
	struct pf_error err;
	char *path = (char *)1;

	assert_int_equal(conf_locate(c, &path, &err), -1);
	assert_null(path);
	assert_int_equal(err.category, PF_FAIL_CONFIG);
	if (strstr(err.what, needle) == NULL)
		fail_msg("message '%s' lacks '%s'", err.what, needle);
}

static void
test_locate_order(void **state)
{
	char *xdgdir, *xdgfile, *homefile, *envfile, *cfile;

	(void)state;
	assert_true(asprintf(&xdgdir, "%s/xdg", tmpdir) > 0);
	assert_true(asprintf(&xdgfile, "%s/xdg/popfetch/config", tmpdir) > 0);
	assert_true(asprintf(&homefile, "%s/.config/popfetch/config", home) > 0);
	free(make_config_at(xdgfile));
	free(make_config_at(homefile));
	envfile = write_conf("timeout = 1\n", 0600);
	cfile = write_conf("timeout = 2\n", 0600);

	setenv("POPFETCH_CONFIG", envfile, 1);
	setenv("XDG_CONFIG_HOME", xdgdir, 1);
	locate_expect(cfile, cfile);		/* -c first */
	locate_expect(NULL, envfile);		/* then POPFETCH_CONFIG */
	unsetenv("POPFETCH_CONFIG");
	locate_expect(NULL, xdgfile);		/* then XDG_CONFIG_HOME */
	setenv("POPFETCH_CONFIG", "", 1);	/* empty: unset */
	locate_expect(NULL, xdgfile);
	setenv("XDG_CONFIG_HOME", "", 1);	/* empty: ~/.config */
	locate_expect(NULL, homefile);
	unsetenv("XDG_CONFIG_HOME");
	locate_expect(NULL, homefile);
	unsetenv("POPFETCH_CONFIG");

	unlink(xdgfile);
	unlink(homefile);
	unlink(envfile);
	unlink(cfile);
	free(xdgdir);
	free(xdgfile);
	free(homefile);
	free(envfile);
	free(cfile);
}

static void
test_locate_named_must_exist(void **state)
{
	char *missing, *msg, *homefile;

	(void)state;
	assert_true(asprintf(&missing, "%s/missing.conf", tmpdir) > 0);
	assert_true(asprintf(&msg, "%s: No such file or directory", missing) > 0);
	/* Even though a user config exists, a named file must exist. */
	assert_true(asprintf(&homefile, "%s/.config/popfetch/config", home) > 0);
	free(make_config_at(homefile));
	unsetenv("XDG_CONFIG_HOME");
	unsetenv("POPFETCH_CONFIG");
	locate_expect_error(missing, msg);
	setenv("POPFETCH_CONFIG", missing, 1);
	locate_expect_error(NULL, msg);
	unsetenv("POPFETCH_CONFIG");
	unlink(homefile);
	free(homefile);
	free(missing);
	free(msg);
}

static void
test_locate_nothing_found(void **state)
{
	char *want;
	struct stat st;

	(void)state;
	if (stat("/etc/popfetch.conf", &st) == 0)
		skip();	/* a system config exists: nothing to miss */
	unsetenv("POPFETCH_CONFIG");
	setenv("XDG_CONFIG_HOME", "/nonexistent-popfetch-xdg", 1);
	locate_expect_error(NULL, "/nonexistent-popfetch-xdg/popfetch/config");
	locate_expect_error(NULL, "/etc/popfetch.conf");
	unsetenv("XDG_CONFIG_HOME");
	assert_true(asprintf(&want, "%s/.config/popfetch/config", home) > 0);
	locate_expect_error(NULL, want);
	free(want);
}

/* ---- fixtures ---- */

static int
group_setup(void **state)
{
	(void)state;
	if (test_mkdtemp(tmpdir, sizeof(tmpdir), "test_conf") == -1)
		return -1;
	test_pathf(home, sizeof(home), "%s/home", tmpdir);
	if (mkdir(home, 0700) == -1)
		return -1;
	setenv("HOME", home, 1);
	setenv("POPFETCH_TEST_SET", "v a l", 1);
	setenv("POPFETCH_TEST_EMPTY", "", 1);
	unsetenv("POPFETCH_TEST_NOPE");
	unsetenv("XDG_STATE_HOME");
	unsetenv("XDG_CONFIG_HOME");
	unsetenv("POPFETCH_CONFIG");
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	test_rmtree(tmpdir);
	return 0;
}

#define T(f)	cmocka_unit_test(f)

int
main(void)
{
	static const struct CMUnitTest fixed[] = {
		T(test_defaults),
		T(test_state_dir_default_without_xdg),
		T(test_port_default_follows_tls),
		T(test_every_value),
		T(test_auth_values),
		T(test_oauth2_ok),
		T(test_top_level_defaults),
		T(test_top_level_default_after_account),
		T(test_origins),
		T(test_credentials_override_as_a_pair),
		T(test_xoauth2_sources),
		T(test_plaintext_allowed_cases),
		T(test_filter_mda_values),
		T(test_filter_mda_top_level_defaults),
		T(test_password_kept_verbatim),
		T(test_comments_and_quotes),
		T(test_comments_between_tokens),
		T(test_env_expansion),
		T(test_env_unset_message),
		T(test_tilde_expansion),
		T(test_expand_tilde_function),
		T(test_fingerprint_forms),
		T(test_fingerprint_rejects),
		T(test_perm_world_readable_refused),
		T(test_perm_group_readable_refused),
		T(test_perm_top_level_password_refused),
		T(test_perm_no_password_accepted),
		T(test_perm_owner_refused),
		T(test_load_missing_file),
		T(test_load_directory),
		T(test_load_raw_nul),
		T(test_empty_and_accountless),
		T(test_tls_ca_file_missing),
		T(test_account_order_and_find),
		T(test_locate_order),
		T(test_locate_named_must_exist),
		T(test_locate_nothing_found),
	};
	const size_t nfixed = sizeof(fixed) / sizeof(fixed[0]);
	const size_t nerr = sizeof(err_cases) / sizeof(err_cases[0]);
	struct CMUnitTest *tests;
	struct twin_case *twins;
	size_t i;
	int rc;

	tests = calloc(nfixed + 2 * nerr, sizeof(*tests));
	twins = calloc(nerr, sizeof(*twins));
	if (tests == NULL || twins == NULL)
		return 1;
	for (i = 0; i < nfixed; i++)
		tests[i] = fixed[i];
	for (i = 0; i < nerr; i++) {
		tests[nfixed + i].name = err_cases[i].name;
		tests[nfixed + i].test_func = run_err_case;
		tests[nfixed + i].initial_state = (void *)&err_cases[i];
		twin_make(&twins[i], &err_cases[i]);
		tests[nfixed + nerr + i].name = twins[i].c.name;
		tests[nfixed + nerr + i].test_func = run_err_case;
		tests[nfixed + nerr + i].initial_state = &twins[i].c;
	}
	rc = _cmocka_run_group_tests("conf", tests, nfixed + 2 * nerr,
	    group_setup, group_teardown);
	for (i = 0; i < nerr; i++)
		twin_free(&twins[i]);
	free(twins);
	free(tests);
	return rc;
}
