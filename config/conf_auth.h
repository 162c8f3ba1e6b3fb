/*
 * conf_auth.h - the `auth` setting of popfetch.conf(5), alone: config/
 * parses it and the POP3 client (fetcher/pop3.h) takes it, without the
 * rest of the configuration.  Includes nothing.
 */
#ifndef POPFETCH_CONF_AUTH_H
#define POPFETCH_CONF_AUTH_H

/* A value per `auth` word, each with its row in conf.c's auth_kinds[]; a
 * SASL mechanism's also names its row in fetcher/sasl.c (DESIGN.md §9.3). */
enum conf_auth {
	CONF_AUTH_AUTO = 0,
	CONF_AUTH_USER,
	CONF_AUTH_APOP,
	CONF_AUTH_PLAIN,
	CONF_AUTH_SCRAM_SHA_256,
	CONF_AUTH_XOAUTH2,
	CONF_AUTH_OAUTHBEARER,
};

#endif
