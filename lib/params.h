/*
 * params.h - every numeric limit of popfetch, in one place, each with its
 * reason.  "How long may a status line be?" has one answer: here.
 */
#ifndef POPFETCH_PARAMS_H
#define POPFETCH_PARAMS_H

/*
 * Longest status, CAPA, UIDL or LIST line we accept, CRLF included.  RFC 1939
 * §3 allows 512 octets for a response line and RFC 2449 §4 raises it to 512
 * for extended responses too; real servers stay well below.  We accept 16x
 * that before deciding the server has broken the protocol (exit 76).
 */
#define POP3_LINE_MAX		8192

/*
 * Longest UIDL unique-id: RFC 1939 §7 says 1 to 70 characters in the range
 * 0x21..0x7E.  Some servers exceed 70; we accept up to 512 but no more.
 */
#define POP3_UIDL_MAX		512

/* Socket read buffer; large so that message data is scanned with memchr in
 * big chunks rather than line by line. */
#define NET_READ_BUF		(256 * 1024)

/*
 * Commands in flight when the server advertises PIPELINING (RFC 2449 §6.6).
 * Bounded so that our unread replies never exceed what the server's socket
 * buffer and our own can hold while we are still writing.
 */
#define POP3_PIPELINE_WINDOW	64

/* RFC 7677 / RFC 5802: smallest PBKDF2 iteration count we accept from a
 * server (RFC 7677 §4 says at least 4096), and the largest, so that a hostile
 * server cannot make us spin. */
#define SCRAM_MIN_ITERATIONS	4096
#define SCRAM_MAX_ITERATIONS	1000000

/* SPEC §7: a message that keeps coming past twice its LIST size plus this is
 * a protocol error (76). */
#define RUNAWAY_SLACK		((off_t)64 * 1024 * 1024)

/* Messages delivered between two seen-list commits (group commit). */
#define SEEN_BATCH		64

/* SQLite busy timeout in milliseconds. */
#define SEEN_BUSY_TIMEOUT_MS	5000

/* Largest config value for `timeout`, seconds (one day). */
#define CONF_TIMEOUT_MAX	86400

#endif
