/*
 * session.c - an account's POP3 session up to and including the login.
 */
#include "config.h"

#include <sys/stat.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bytes.h"
#include "crypto.h"
#include "log.h"
#include "oauth2.h"
#include "params.h"
#include "resume.h"
#include "secret.h"
#include "session.h"
#include "xmalloc.h"

int
session_secret(struct session *s, struct pf_error *err)
{
	const struct conf_account *a = s->acct;

	if (a->oauth2_provider != CONF_OAUTH2_NONE)
		return oauth2_access_token(s->state_dir, a, &s->secret, err);
	return secret_get(a->password, a->password_command, a->timeout,
	    &s->secret, err);
}

/* One field of the settings digest: its length, then its bytes, so that
 * no two different settings hash the same stream. */
static void
key_add(struct crypto_sha256_ctx *c, const char *field, const void *v,
    size_t len)
{
	char head[64];
	int n;

	n = snprintf(head, sizeof(head), "%s %zu:", field, len);
	crypto_sha256_update(c, head, (size_t)n);
	if (len > 0)
		crypto_sha256_update(c, v, len);
}

static void
key_add_str(struct crypto_sha256_ctx *c, const char *field, const char *v)
{
	key_add(c, field, v != NULL ? v : "(none)", strlen(v != NULL ? v :
	    "(none)"));
}

/*
 * The digest a stored TLS session must carry to be offered
 * (doc/DESIGN.md §12): everything that decides whom we talk to and what
 * we trust.  A change of any of it means a full handshake, verified under
 * the new settings.  The CA file counts by name and by identity and
 * modification time: a new CA file in the same place is a new trust.
 * The minimum version (TLS 1.2, tls.c) and the ciphers are not settings;
 * "v1" is bumped when tls.c changes what it requires.
 */
static void
tls_key(const struct conf_account *a, unsigned char out[32])
{
	struct crypto_sha256_ctx *c = crypto_sha256_begin();
	struct stat st;
	char buf[128];

	key_add_str(c, "popfetch-tls-resume", "v1 min=TLSv1.2");
	key_add_str(c, "account", a->name);
	key_add_str(c, "host", a->host);	/* also the SNI name */
	snprintf(buf, sizeof(buf), "%u", a->port);
	key_add_str(c, "port", buf);
	key_add_str(c, "tls", conf_tls_name(a->tls));
	key_add_str(c, "tls_verify", a->tls_verify ? "yes" : "no");
	key_add_str(c, "tls_ca_file", a->tls_ca_file);
	if (a->tls_ca_file != NULL && stat(a->tls_ca_file, &st) == 0)
		snprintf(buf, sizeof(buf), "%ju:%ju:%jd:%jd.%09ld",
		    (uintmax_t)st.st_dev, (uintmax_t)st.st_ino,
		    (intmax_t)st.st_size, (intmax_t)st.st_mtim.tv_sec,
		    st.st_mtim.tv_nsec);
	else
		snprintf(buf, sizeof(buf), "-");
	key_add_str(c, "tls_ca_file stat", buf);
	key_add(c, "tls_fingerprint", a->tls_fingerprint,
	    a->has_fingerprint ? sizeof(a->tls_fingerprint) : 0);
	crypto_sha256_end(&c, out);
}

/*
 * What is stored for the next run (resume.c keeps it as an opaque blob):
 * STORED_MAGIC, the number of sessions the server declined in a row
 * (4 bytes) and when it last did (8 bytes, seconds since the epoch), both
 * big-endian, then the DER of the session.  A file of an older popfetch
 * (the DER alone) is not offered, and replaced after the run.
 */
#define STORED_MAGIC	"PFT2"
#define STORED_HEAD	(4 + 4 + 8)

/* Has the server declined TLS_RESUME_DECLINES sessions in a row, the last
 * less than TLS_RESUME_MAX_AGE ago?  Then nothing is offered or stored
 * until then (lib/params.h). */
static bool
declines_resumption(const struct session *s, time_t now)
{
	return s->tls_declines >= TLS_RESUME_DECLINES &&
	    s->tls_declined_at <= (int64_t)now + 60 &&
	    (int64_t)now - s->tls_declined_at < TLS_RESUME_MAX_AGE;
}

/* Before a handshake: the stored session to offer, if it is for exactly
 * these settings and still good (doc/DESIGN.md §12); NULL if none. */
static struct tls_stored *
stored_session(struct session *s, struct tls_settings *ts)
{
	const struct conf_account *a = s->acct;
	struct tls_stored *st = NULL;
	unsigned char *blob = NULL;
	size_t len = 0;
	char why[128];

	if (s->no_resume || s->state_dir == NULL)
		return NULL;
	if (!a->tls_resume) {
		/* Turned off: a session kept before goes too (not in a dry
		 * run, which writes nothing). */
		if (!s->resume_readonly && resume_remove(s->state_dir, a->name))
			log_debug("%s: tls_resume = false: removed the stored "
			    "TLS session", a->name);
		return NULL;
	}
	tls_key(a, s->tls_key);
	s->tls_keyed = !s->resume_readonly;
	ts->keep_session = !s->resume_readonly;
	s->tls_declines = 0;
	s->tls_declined_at = 0;
	if (resume_load(s->state_dir, a->name, s->tls_key, &blob, &len, why,
	    sizeof(why)) == -1)
		;	/* why says why */
	else if (len <= STORED_HEAD || memcmp(blob, STORED_MAGIC, 4) != 0)
		snprintf(why, sizeof(why), "a file of an older popfetch");
	else {
		time_t now = time(NULL);

		s->tls_declines = (unsigned)get_be(blob + 4, 4);
		s->tls_declined_at = (int64_t)get_be(blob + 8, 8);
		if (declines_resumption(s, now)) {
			/* Not even parsed; the file stays as it is. */
			snprintf(why, sizeof(why), "the server declined the "
			    "last %u sessions offered; offered again in %lld "
			    "min", s->tls_declines, (long long)(TLS_RESUME_MAX_AGE -
			    ((int64_t)now - s->tls_declined_at) + 59) / 60);
			s->tls_keyed = false;
			ts->keep_session = false;
		} else
			st = tls_stored_parse(blob + STORED_HEAD,
			    len - STORED_HEAD, why, sizeof(why));
	}
	if (blob != NULL) {
		crypto_cleanse(blob, len);
		free(blob);
	}
	if (st == NULL)
		log_debug("%s: no TLS session to resume (%s)", a->name, why);
	return st;
}

/* The handshake, with the stored session offered; a failed verification
 * removes the stored session (doc/DESIGN.md §12), except in a dry run or
 * check, which change nothing. */
static int
start_tls(struct session *s, struct tls_settings *ts, struct pf_error *err)
{
	const struct conf_account *a = s->acct;
	struct tls_stored *st;
	bool offered;
	int rc;

	st = stored_session(s, ts);
	offered = st != NULL;
	ts->session = st;
	rc = conn_starttls(s->conn, ts, err);
	ts->session = NULL;
	tls_stored_free(&st);
	if (rc == -1) {
		if (err->category == PF_FAIL_TLS && s->state_dir != NULL &&
		    !s->no_resume && !s->resume_readonly &&
		    resume_remove(s->state_dir, a->name))
			log_debug("%s: removed the stored TLS session", a->name);
		s->tls_keyed = false;
		return -1;
	}
	/* Counted for the next runs: a server that declines every session
	 * gets none offered for a while (declines_resumption). */
	if (offered && conn_tls_resumed(s->conn))
		s->tls_declines = 0;
	else if (offered) {
		if (s->tls_declines < TLS_RESUME_DECLINES)
			s->tls_declines++;
		s->tls_declined_at = (int64_t)time(NULL);
	}
	/* "not resumed" after an offer: the server did not take it (for
	 * Dovecot, see popfetch.conf(5) tls_resume). */
	log_debug("%s: %s", a->name, conn_tls_resumed(s->conn) ?
	    "TLS session resumed" : offered ? "TLS full handshake (the "
	    "server did not resume the session offered)" :
	    "TLS full handshake");
	return 0;
}

void
session_keep_tls(struct session *s)
{
	const struct conf_account *a = s->acct;
	struct pf_error err;
	unsigned char *der, *blob;
	size_t len;

	if (!s->tls_keyed || s->conn == NULL ||
	    conn_tls_session(s->conn, &der, &len) == -1)
		return;
	s->tls_keyed = false;	/* once */
	blob = xmalloc(STORED_HEAD + len);
	memcpy(blob, STORED_MAGIC, 4);
	put_be(blob + 4, s->tls_declines, 4);
	put_be(blob + 8, (uint64_t)s->tls_declined_at, 8);
	memcpy(blob + STORED_HEAD, der, len);
	crypto_cleanse(der, len);
	free(der);
	if (resume_save(s->state_dir, a->name, s->tls_key, blob,
	    STORED_HEAD + len, &err) == -1)
		log_warnx("%s: TLS session not kept for the next run: %s",
		    a->name, err.what);
	crypto_cleanse(blob, STORED_HEAD + len);
	free(blob);
}

int
session_connect(struct session *s, struct pf_error *err)
{
	const struct conf_account *a = s->acct;
	struct tls_settings ts = {
		.host = a->host,
		.verify = a->tls_verify,
		.ca_file = a->tls_ca_file,
		.has_fingerprint = a->has_fingerprint,
	};

	memcpy(ts.fingerprint, a->tls_fingerprint, sizeof(ts.fingerprint));
	ts.rejected = s->rejected;
	s->with = "POP3";
	if (conn_open(a->host, a->port, a->timeout, &s->conn, err) == -1)
		return -1;
	/* No TLS: a session kept before is of no use, and holds a secret. */
	if (a->tls == CONF_TLS_NONE && !s->no_resume && !s->resume_readonly &&
	    s->state_dir != NULL)
		(void)resume_remove(s->state_dir, a->name);
	if (a->tls == CONF_TLS_IMPLICIT && start_tls(s, &ts, err) == -1)
		return -1;
	s->pop3 = pop3_new(a->name, conn_read, conn_write, s->conn);
	if (pop3_greeting_capa(s->pop3, err) == -1)
		return -1;
	if (a->tls == CONF_TLS_STARTTLS) {
		if (pop3_stls(s->pop3, err) == -1 ||
		    start_tls(s, &ts, err) == -1 ||
		    pop3_capa(s->pop3, NULL, err) == -1)
			return -1;
	}
	switch (a->tls) {
	case CONF_TLS_IMPLICIT:	s->with = "POP3S"; break;
	case CONF_TLS_STARTTLS:	s->with = "POP3 + STARTTLS"; break;
	case CONF_TLS_NONE:	s->with = "POP3"; break;
	}
	return 0;
}

int
session_login(struct session *s, struct pf_error *err)
{
	const struct conf_account *a = s->acct;
	struct pop3_auth_params ap = {
		.mode = a->auth,
		.user = a->user,
		.secret = s->secret,
		.tls_active = conn_is_tls(s->conn),
		.allow_plaintext = a->allow_plaintext_password,
		.host = a->host,
		.port = a->port,
	};

	if (pop3_auth(s->pop3, &ap, err) == -1)
		return -1;
	secret_free(&s->secret);
	return 0;
}

int
session_open(struct session *s, bool need_secret, struct pf_error *err)
{
	if ((need_secret && session_secret(s, err) == -1) ||
	    session_connect(s, err) == -1)
		return -1;
	return need_secret ? session_login(s, err) : 0;
}

void
session_close(struct session *s, bool quit)
{
	struct pf_error ignored;

	if (quit && s->pop3 != NULL && pop3_is_synchronised(s->pop3))
		(void)pop3_quit(s->pop3, POP3_QUIT_COMMIT, &ignored);
	/* At the end of the run: the server's last ticket is the newest. */
	session_keep_tls(s);
	pop3_free(&s->pop3);
	conn_close(&s->conn);
	secret_free(&s->secret);
}
