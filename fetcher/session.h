/*
 * session.h - an account's POP3 session: its secret, the connection, TLS
 * as configured, greeting, CAPA, STLS and the login.  Shared by a fetch,
 * a dry run and `check`; the commands after the login are theirs.
 */
#ifndef POPFETCH_SESSION_H
#define POPFETCH_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include "conf.h"
#include "error.h"
#include "net.h"
#include "pop3.h"

struct session {
	const struct conf_account *acct;
	const char		*state_dir;	/* the OAuth2 token file's */
	struct conn		*conn;
	struct pop3		*pop3;
	char			*secret;	/* until the login */
	const char		*with;		/* "POP3S", ...: Received: */
	struct tls_cert_info	*rejected;	/* check: a refused certificate
						 * is described here */
	bool			 no_resume;	/* check: a full handshake, and
						 * the session file untouched */
	bool			 resume_readonly; /* --dry-run: a stored session
						 * offered, the file untouched */
	/* TLS resumption (doc/DESIGN.md §12): the digest of the account's
	 * TLS settings the stored session must carry, and whether a
	 * verified TLS session was established under it. */
	unsigned char		 tls_key[32];
	bool			 tls_keyed;
	/* sessions the server declined in a row, and when it last did
	 * (stored with the session; tls_stored_head in session.c) */
	unsigned		 tls_declines;
	int64_t			 tls_declined_at;
};

/* Get the account's secret: its password or its password_command's
 * output, or with oauth2_provider its OAuth2 access token (refreshed
 * when needed, fetcher/oauth2.h).  Before any connection: a failing
 * command or token endpoint costs none. */
int	session_secret(struct session *s, struct pf_error *err);

/* Connect, TLS as configured, greeting, CAPA, STLS: all before the login. */
int	session_connect(struct session *s, struct pf_error *err);

/* Log in with the secret session_secret got, then forget it. */
int	session_login(struct session *s, struct pf_error *err);

/* All three in turn; the login only when need_secret. */
int	session_open(struct session *s, bool need_secret, struct pf_error *err);

/* Store the newest TLS session of a verified connection for the next run
 * (doc/DESIGN.md §12), if tls_resume allows; a failure costs a full
 * handshake next time and is only logged.  session_close does it. */
void	session_keep_tls(struct session *s);

/* Drop the connection, with a QUIT when `quit` and still in step with the
 * server; free the secret if it is still held. */
void	session_close(struct session *s, bool quit);

#endif
