/*
 * session.c - an account's POP3 session up to and including the login.
 */
#include "config.h"

#include <string.h>

#include "oauth2.h"
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
	if (a->tls == CONF_TLS_IMPLICIT &&
	    conn_starttls(s->conn, &ts, err) == -1)
		return -1;
	s->pop3 = pop3_new(a->name, conn_read, conn_write, s->conn);
	if (pop3_greeting_capa(s->pop3, err) == -1)
		return -1;
	if (a->tls == CONF_TLS_STARTTLS) {
		if (pop3_stls(s->pop3, err) == -1 ||
		    conn_starttls(s->conn, &ts, err) == -1 ||
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
	pop3_free(&s->pop3);
	conn_close(&s->conn);
	secret_free(&s->secret);
}
