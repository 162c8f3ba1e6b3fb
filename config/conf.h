/*
 * conf.h - the configuration, as plain validated C structs (popfetch.conf(5)).
 *
 * config/ is the only libconfuse user.  conf_load() parses a file, applies
 * top-level defaults to every account, expands `~`, validates every rule of
 * popfetch.conf(5), copies everything into the structs below and frees the parser's
 * state before it returns.  Nothing here knows about sockets or Maildir.
 */
#ifndef POPFETCH_CONF_H
#define POPFETCH_CONF_H

#include <stdbool.h>
#include <stdint.h>

#include "conf_auth.h"
#include "error.h"

/* `oauth2_provider` (popfetch.conf(5); doc/DESIGN.md §11). */
enum conf_oauth2_provider {
	CONF_OAUTH2_NONE = 0,		/* not set: password or password_command */
	CONF_OAUTH2_MICROSOFT,
	CONF_OAUTH2_GOOGLE,
	CONF_OAUTH2_CUSTOM,
};

/* Every option of popfetch.conf(5), in the order `popfetch config` shows them. */
enum conf_opt {
	CONF_OPT_STATE_DIR,
	CONF_OPT_TIMEOUT,
	CONF_OPT_HOST,
	CONF_OPT_PORT,
	CONF_OPT_TLS,
	CONF_OPT_TLS_VERIFY,
	CONF_OPT_TLS_CA_FILE,
	CONF_OPT_TLS_FINGERPRINT,
	CONF_OPT_TLS_RESUME,
	CONF_OPT_USER,
	CONF_OPT_PASSWORD,
	CONF_OPT_PASSWORD_COMMAND,
	CONF_OPT_AUTH,
	CONF_OPT_OAUTH2_PROVIDER,
	CONF_OPT_OAUTH2_CLIENT_ID,
	CONF_OPT_OAUTH2_CLIENT_SECRET,
	CONF_OPT_OAUTH2_TENANT,
	CONF_OPT_OAUTH2_TOKEN_URL,
	CONF_OPT_OAUTH2_DEVICE_URL,
	CONF_OPT_OAUTH2_AUTH_URL,
	CONF_OPT_OAUTH2_SCOPE,
	CONF_OPT_ALLOW_PLAINTEXT,
	CONF_OPT_MAILDIR,
	CONF_OPT_FILTER,
	CONF_OPT_MDA,
	CONF_OPT_DELETE,
	CONF_OPT_DELETE_AFTER_DAYS,
	CONF_OPT_FORGET_AFTER_DAYS,
	CONF_OPT_MAX_SIZE,
	CONF_OPT_MAX_MESSAGES,
	CONF_OPT_RECEIVED_HEADER,
	CONF_OPT_ENABLED,
	CONF_OPT_COUNT
};

/* Where an account's value of an option came from (popfetch config). */
enum conf_from {
	CONF_FROM_DEFAULT = 0,	/* not set: the built-in default */
	CONF_FROM_ACCOUNT,	/* the account's own section */
	CONF_FROM_TOP,		/* the top level, inherited */
};

struct conf_origin {
	enum conf_from	 from;
	int		 line;		/* the line in conf->path; 0: default */
};

enum conf_tls {
	CONF_TLS_IMPLICIT = 0,
	CONF_TLS_STARTTLS,
	CONF_TLS_NONE,
};

struct conf_account {
	char		*name;
	char		*host;
	unsigned	 port;			/* 1..65535; default 995 implicit, else 110 */
	enum conf_tls	 tls;
	bool		 tls_verify;
	char		*tls_ca_file;		/* NULL: system store; `~` expanded */
	bool		 has_fingerprint;
	unsigned char	 tls_fingerprint[32];	/* SHA-256 of the DER leaf cert */
	bool		 tls_resume;		/* keep the TLS session for the next
						 * run (doc/DESIGN.md §12) */
	char		*user;
	char		*password;		/* secret; NULL when not set */
	char		*password_command;	/* NULL when not set */
	enum conf_auth	 auth;
	bool		 allow_plaintext_password;
	char		*maildir;		/* `~` expanded; NULL when mda is
						 * set (mda wins, maildir unused) */
	char		*filter;		/* command for /bin/sh -c, run per
						 * message; NULL: none */
	char		*mda;			/* command for /bin/sh -c that
						 * takes each message instead of
						 * the Maildir; NULL: Maildir */
	bool		 delete;
	unsigned	 delete_after_days;
	unsigned	 forget_after_days;	/* days a UIDL may be missing from
						 * the listings before it is
						 * forgotten; 0: at once */
	uint64_t	 max_size;		/* bytes, 0 = no limit */
	unsigned	 max_messages;		/* 0 = no limit */
	bool		 received_header;
	bool		 enabled;
	unsigned	 timeout;		/* seconds: connect, each reply line, data rate window */
	/* OAuth2 (doc/DESIGN.md §11): with a provider the access token comes from
	 * fetcher/oauth2.c, and password/password_command are NULL.  The
	 * URLs and scope are NULL unless set: the provider's preset applies
	 * (fetcher/oauth2.c); custom has oauth2_token_url. */
	enum conf_oauth2_provider oauth2_provider;
	char		*oauth2_client_id;	/* required with a provider */
	char		*oauth2_client_secret;	/* secret; NULL when not set */
	char		*oauth2_token_url;
	char		*oauth2_device_url;
	char		*oauth2_auth_url;
	char		*oauth2_scope;
	char		*oauth2_tenant;		/* microsoft: NULL = "common" */
	/* Where each option's value came from (CONF_OPT_STATE_DIR: unused).
	 * password and password_command come as a pair: an account that
	 * sets either ignores both top-level ones. */
	struct conf_origin origin[CONF_OPT_COUNT];
};

struct conf {
	char			*path;		/* the file that was read */
	char			*state_dir;	/* `~` expanded */
	unsigned		 timeout;
	struct conf_origin	 state_dir_origin;
	size_t			 naccounts;
	struct conf_account	*accounts;	/* in config order */
};

/*
 * Find the configuration file (popfetch(1), FILES): `explicit_path` (from -c) if
 * not NULL, else $POPFETCH_CONFIG, else $XDG_CONFIG_HOME/popfetch/config
 * (an empty XDG_CONFIG_HOME counts as unset; default ~/.config), else
 * /etc/popfetch.conf.  A file named by -c or $POPFETCH_CONFIG must exist.
 * On success *path_r is a newly allocated path (caller frees) and 0 is
 * returned; otherwise -1 with err set to PF_FAIL_CONFIG.
 */
int	conf_locate(const char *explicit_path, char **path_r,
	    struct pf_error *err);

/*
 * Parse and validate `path`.  On success *conf_r is a new struct conf (free
 * with conf_free) and 0 is returned.  On any error -1 is returned with err
 * set to PF_FAIL_CONFIG and a message of the form
 *     "FILE:LINE: account NAME: option OPT: problem"
 * (the line wherever it is known, the account and option where they apply;
 * the first error in the file).  ${NAME} in a double-quoted value is
 * NAME's value; NAME not set is an error ("environment variable NAME is
 * not set"), never an empty string.  (PF_FAIL_INTERNAL instead only for
 * a bug of our own.)  Also refuses (PF_FAIL_CONFIG) a file holding a `password` that is group-
 * or world-accessible ("run: chmod 600 FILE") or owned by another user
 * ("run: chown USER FILE"), checked on the opened file.  A file without
 * any account is valid.  Not reentrant: libconfuse's lexer is global.
 */
int	conf_load(const char *path, struct conf **conf_r, struct pf_error *err);

/* Free a configuration (wiping passwords) and set *conf to NULL. */
void	conf_free(struct conf **conf);

/* The account named `name`, or NULL.  Borrowed pointer into conf. */
const struct conf_account *conf_account_find(const struct conf *conf,
	    const char *name);

/* The option's name in popfetch.conf(5) ("host", "tls_ca_file"). */
const char *conf_opt_name(enum conf_opt opt);

/* "microsoft", "google", "custom"; "" for none. */
const char *conf_oauth2_provider_name(enum conf_oauth2_provider p);

/* "implicit", "starttls", "none". */
const char *conf_tls_name(enum conf_tls tls);
/* "auto", "user", "apop", "plain", "scram-sha-256", "xoauth2",
 * "oauthbearer". */
const char *conf_auth_name(enum conf_auth auth);
/*
 * Does `auth` send the password or token in clear text, so that
 * tls = none needs allow_plaintext_password (auto: it may, so true)?
 */
bool	conf_auth_reveals_secret(enum conf_auth auth);

/*
 * Parse a fingerprint in the form `tls_fingerprint` accepts: SHA-256 in hex,
 * colons optional, any case, optional "sha256:" prefix.  Returns 0 and fills
 * out[32], or -1 if malformed.
 */
int	conf_parse_fingerprint(const char *text, unsigned char out[32]);

/*
 * Expand a leading "~" or "~/" to $HOME (or, if HOME is unset or empty, the
 * passwd entry of the effective uid) and "~user" to that user's home.
 * Returns a newly allocated string (caller frees); when there is nothing to
 * expand to (unknown user, no home), the copy still starts with "~".
 */
char	*conf_expand_tilde(const char *path);

/* The libconfuse version in use, for --version ("3.3"). */
const char *conf_library_version(void);

#endif
