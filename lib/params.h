/*
 * params.h - every numeric limit of popfetch, in one place, each with its
 * reason.  "How long may a status line be?" has one answer: here.  One
 * section per module, in layer order (doc/DESIGN.md §1.1).
 */
#ifndef POPFETCH_PARAMS_H
#define POPFETCH_PARAMS_H

/* ---- lib/: logging (lib/log.c) ---- */

/* Bytes of one log line, '\n' included: an error line (PF_ERROR_WHAT_MAX
 * of our words and PF_ERROR_SERVER_MAX of the server's, error.h) fits with
 * room to spare; a longer line is cut at a character. */
#define LOG_LINE_MAX		4096

/* Bytes of one progress line, escape sequence included: it is clipped to
 * the terminal width anyway, and "NAME: n/N messages, B, R/s, T s" with a
 * long account name fits easily. */
#define LOG_PROGRESS_MAX	512

/* ---- lib/: shards (lib/shard.c) ---- */

/* Largest N of `--shard K/N`: ten thousand workers each polling a
 * handful of mailboxes is past any sane split, and the bound catches a
 * typo (3/30000000) as a usage error instead of a worker with nothing to
 * do. */
#define SHARD_MAX		10000

/* ---- lib/: string pools (lib/strpool.c) ---- */

/* Bytes of one chunk of a string pool (the UIDLs of a listing or a
 * seen-list): a few hundred UIDLs each, small enough that an almost empty
 * last chunk costs nothing worth counting. */
#define STRPOOL_CHUNK		(16 * 1024)

/* ---- lib/: threads (lib/thread.c) ---- */

/* malloc arenas (glibc M_ARENA_MAX) once helper threads exist: they
 * allocate little, and an arena each cost up to 0.45 MB of private memory
 * at 20,000 messages for no speed (bench/README.md). */
#define THREAD_MALLOC_ARENAS	1

/* ---- lib/: child commands (lib/command.c) ---- */

/* Bytes moved by one read(2), write(2) or pread(2) between us and a
 * command: a pipe holds 64 KiB by default, so one call fills or empties
 * it. */
#define COMMAND_IO_BUF		(64 * 1024)

/* Bytes of one stderr line of a command that we log; the rest of the line
 * is dropped and "..." marks the cut.  A diagnostic is shorter, and the
 * line escaped (up to 4x) behind its prefix still fits LOG_LINE_MAX. */
#define COMMAND_ERR_LINE_MAX	512

/* stderr lines of one command that we log; later ones are only counted:
 * a failing filter says why in a few lines, and one that floods its
 * stderr must not flood our log. */
#define COMMAND_ERR_LINES_MAX	100

/* Where F_GETPIPE_SZ is missing, what a pipe may hold: after the shell
 * exits we read this much more at most, so all it wrote is read but a
 * process it left writing cannot hold us (Linux's default
 * /proc/sys/fs/pipe-max-size). */
#define COMMAND_PIPE_MAX	(1024 * 1024)

/* Without a pidfd (Linux before 5.3, some seccomp filters), how often, in
 * milliseconds, we look whether the shell has exited: soon enough that
 * nobody waits for it, at a few hundred cheap wake-ups a second. */
#define COMMAND_EXIT_POLL_MS	5

/* ---- lib/: spools for filters and MDAs (lib/spool.c) ---- */

/* A message kept for a filter or an MDA stays in memory up to this size
 * and goes to an unlinked temporary file past it: most mail is far
 * smaller, and memory stays bounded however large one message is. */
#define SPOOL_MEM		(1024 * 1024)

/* First size of a spool's buffer; it doubles up to SPOOL_MEM. */
#define SPOOL_BUF_MIN		(8 * 1024)

/* ---- config/: the configuration file (config/conf.c) ---- */

/* Largest configuration file we read: a real one is a few KB, so anything
 * near this is a mistake (or /dev/zero), refused rather than slurped. */
#define CONF_FILE_MAX		(1024 * 1024)

/* Longest account name: it ends up in log lines, lock and state names. */
#define CONF_ACCOUNT_NAME_MAX	64

/* Default `timeout`, seconds (popfetch.conf(5) documents it): far longer
 * than a working server or password_command takes to answer, short enough
 * that a dead one does not hang a cron run for long. */
#define CONF_DEFAULT_TIMEOUT	60

/* Largest config value for `timeout`, seconds (one day). */
#define CONF_TIMEOUT_MAX	86400

/* Default `forget_after_days` (popfetch.conf(5) documents it): a month
 * outlasts a short or partial listing (doc/DESIGN.md §4), and the
 * seen-list still does not keep every message ever fetched. */
#define CONF_DEFAULT_FORGET_AFTER_DAYS	30

/* Largest `delete_after_days` (100 years): keeps N * 86400 seconds far
 * inside a 64-bit time_t and any 32-bit unsigned day count. */
#define CONF_DELETE_AFTER_DAYS_MAX	36500

/* ---- store/: Maildir (store/maildir.c) ---- */

/* Maildir write buffer: a message up to this size is held in memory and
 * written by a sync thread in one write(2); a larger one reaches write(2)
 * in chunks this large, so a big message costs few system calls. */
#define MAILDIR_WRITE_BUF	(64 * 1024)

/* First size of a message's buffer; it doubles up to MAILDIR_WRITE_BUF. */
#define MAILDIR_BUF_MIN		(8 * 1024)

/* Threads that fsync finished deliveries while the next messages arrive.
 * fsyncs issued together cost about one journal commit on ext4, XFS and
 * btrfs instead of one each; the batch commit waits for them before any
 * rename, so every file is still fsynced before it reaches new/. */
#define MAILDIR_SYNC_THREADS	8

/* Those threads where one syncfs makes a batch durable (doc/DESIGN.md
 * §3.4): a small file then costs a create, a write and a close, no fsync
 * to overlap, and the creates in tmp/ queue on its directory lock with
 * each other and with the renames out of it (5% of the CPU spinning on
 * it in a profile of bench/'s small scenario).  Two: one writes files
 * while the other waits in a syncfs or a large message's fsync.  Small
 * scenario median 1.78 s against 2.12 s with 8 (5 alternating pairs, raw
 * limit 1.48 s); mixed-keep 3.25 s against 3.28 s. */
#define MAILDIR_SYNC_THREADS_SYNCFS	2

/* Oldest kernel (major * 1000 + minor: 5.8) on which popfetch makes a
 * batch of small messages durable with one syncfs(2) instead of an fsync
 * each (doc/DESIGN.md §3.4): 5.8 is the first to report a failed
 * write-back to syncfs; before it syncfs returns 0 whatever happened. */
#define MAILDIR_SYNCFS_KERNEL	5008

/* Small files written without an fsync after which a sync thread starts a
 * syncfs in the background (half of SEEN_BATCH): the disk works while the
 * next messages arrive, and a batch's commit usually finds its files
 * durable already.  Fewer would cost more syncfs calls for nothing. */
#define MAILDIR_SYNCFS_EARLY	64

/* Small files (written from memory, no fsync of their own) that wait in
 * the queue before an idle sync thread is woken for them: one wake-up then
 * writes several, instead of a futex wake, a context switch and a lock
 * hand-off per message, which cost more CPU than the file itself on the
 * small scenario of bench/ (issue 17).  A commit, a free or a full
 * MAILDIR_SYNC_HELD wakes a thread at once; files that are fsynced each
 * (streamed, network file systems) wake one each as before. */
#define MAILDIR_SYNC_WAKE	16

/* Bytes of finished messages that may wait in memory for those threads to
 * write them (their buffers' capacity): past it, receiving pauses until
 * they catch up.  64 KiB: with two threads where a syncfs makes batches
 * durable (DESIGN §3.4), smaller is no slower.  bench/'s small scenario,
 * alternating pairs: 128 KiB 2.01 s against 256 KiB 1.98 s (5 pairs,
 * with the smaller read buffers below in the same binary); 64
 * KiB 1.83 s against 128 KiB 1.95 s (6 pairs), and mixed-keep 2.98 s
 * against 3.17 s (4 pairs); 32 KiB was slower, 2.05 s against 64 KiB's
 * 1.92 s (6 pairs).  Each halving took 0.05-0.13 MB of private memory off.
 * (With eight threads, 128 KiB had been slower than 256.) */
#define MAILDIR_SYNC_HELD	(64 * 1024)

/* Stack of each of those threads: they only create, write, fsync, close. */
#define MAILDIR_SYNC_STACK	(256 * 1024)

/* A file in a Maildir's tmp/ that no live popfetch owns is removed once it
 * is this old (seconds): the Maildir spec (cr.yp.to/proto/maildir.html)
 * says tmp/ files untouched for 36 hours are garbage. */
#define MAILDIR_TMP_STALE	(36 * 60 * 60)

/* Longest escaped host name we put in a Maildir file name, so that the whole
 * name stays far below NAME_MAX (255) on every file system. */
#define MAILDIR_HOST_MAX	100

/* ---- store/: seen-list (store/seen.c) ---- */

/* SQLite page cache per connection, KiB (PRAGMA cache_size = -N).  The
 * seen-list is read once at the start (into memory) and then written in
 * small transactions: SQLite's default of 2 MB would only keep pages that
 * are never read again, and count in the peak RSS.  128 rather than 512:
 * 0.2-0.5 MB less private memory at 20,000 messages, the same CPU within
 * noise also with UIDLs that arrive in random order (bench/README.md).  64
 * rather than 128: 30 KB less, the same time on the small and nothing-new
 * scenarios.  32 took 30 KB more off, but with UIDLs in random order a
 * batch's dirty pages would spill from so small a cache mid-transaction;
 * not worth the risk.  store/seen.c also turns off SQLite's bulk
 * allocation of 20 pages per connection (sqlite_setup). */
#define SEEN_CACHE_KIB		64

/* SQLite busy timeout in milliseconds: how long a write transaction
 * queues behind another popfetch's (-j: other accounts) before it is a
 * temporary failure, 75 (doc/DESIGN.md §3.4).  Theirs are short, but at
 * -j 64 sixty-three others' commits (an fsync or two each, 100 ms on a
 * slow disk) may come first, and SQLite's busy handler is not a queue. */
#define SEEN_BUSY_TIMEOUT_MS	30000

/* WAL pages after which a commit checkpoints them into the database
 * (PRAGMA wal_autocheckpoint; SQLite's default is 1000).  The WAL stays
 * between runs (store/seen.c, keep_wal), and the first popfetch to open
 * the database rebuilds the WAL's index by reading every page of it: a
 * run that found nothing new writes a few pages of history, so 1000
 * would make every start read up to 4 MB; 128 keeps that under 0.5 MB for
 * one checkpoint (two fsyncs) every thirty or so such runs. */
#define SEEN_WAL_CHECKPOINT_PAGES	128

/* Milliseconds between two attempts to switch a new database to WAL while
 * another popfetch (-j) holds it: SQLite does not wait itself there. */
#define SEEN_WAL_RETRY_MS	10

/* Runs kept per mailbox in the state database: `status` shows the last one;
 * a few more help debugging without letting the table grow forever. */
#define SEEN_RUN_HISTORY	10

/* Statements kept prepared on a state-database connection (store/seen.c,
 * stmt_cache): those of an idle account's run, a dozen; more are
 * prepared for each use as before. */
#define SEEN_STMT_CACHE		16

/* ---- store/: the TLS session file (store/resume.c; DESIGN §12) ---- */

/* Bytes of a TLS session file we read at most: a serialised session holds
 * the server's leaf certificate (a few KiB even with many names) and a
 * ticket (a few hundred bytes); anything bigger is not ours, and is
 * ignored (a full handshake), not read into memory. */
#define RESUME_FILE_MAX		(64 * 1024)

/* ---- store/: the group commit (store/commit.c) ---- */

/* Messages delivered between two seen-list commits (group commit,
 * doc/DESIGN.md §3.1 step 6): a batch shares its durable transactions and
 * its fsync of new/, and a killed run refetches at most three batches (one
 * filling, one full, one in the committer before its transaction).
 * 128, not 64: half the syncs of the state database and the syncfs calls
 * on bench/'s small scenario, median 1.93 s against 2.48 s (4 alternating
 * pairs, raw limit 1.56 s); 256 was no faster (1.97 s against 1.93 s). */
#define SEEN_BATCH		128

/* Bytes delivered between two seen-list commits: a batch is also closed
 * when it holds this much.  A full batch commits once the next one is full
 * too, so a killed run refetches at most three times this (or 3 x
 * SEEN_BATCH messages). */
#define SEEN_BATCH_BYTES	((uint64_t)32 * 1024 * 1024)

/* Largest batch (bytes) the committer takes in the background
 * (doc/DESIGN.md §3.4); a larger one is committed on the run's thread.
 * The commits of small batches (128 x 6 KB) took a quarter of the run's
 * thread's time on bench/'s small scenario; a batch of large messages
 * takes far longer to arrive than to commit, and in the background its
 * syncfs would run beside the next message's writes.  On mixed-keep no
 * difference could be measured either way (bench/README.md, "Session
 * 24").  4 MiB: 128 messages of 32 KiB. */
#define COMMIT_BACKGROUND_BYTES	((uint64_t)4 * 1024 * 1024)

/* Stack of the committer's thread (store/commit.c, doc/DESIGN.md §3.4): it
 * runs a batch's settle, its seen-list transaction (SQLite) and its
 * renames.  Only the pages it touches count. */
#define COMMIT_THREAD_STACK	(1024 * 1024)

/* ---- fetcher/: connections and TLS (fetcher/net.c, fetcher/tls.c) ---- */

/* Socket read buffer (and the dot filter's output, as large): message
 * data is scanned with memchr a buffer at a time, not line by line.  A TLS
 * read returns one record (at most 16 KiB) anyway, so a larger buffer only
 * costs memory: 16 KiB rather than 64 took 96 KB less private memory, and
 * bench/'s mixed-keep scenario (325 MB) ran no slower, if anything faster
 * (4 alternating pairs: median 3.02 s against 3.28 s; bench/README.md). */
#define NET_READ_BUF		(16 * 1024)

/*
 * Message data (RETR, TOP bodies) arriving at less than this many KiB/s,
 * measured over the account's `timeout`, is a stall (75; doc/DESIGN.md
 * §5.4).  Any link mail is fetched over, even a poor mobile one, carries
 * tens of KiB/s; a server sending less is stuck or hostile, and one that
 * trickles a byte now and then, each within `timeout`, would otherwise
 * hold the account for days over one large message.  At this rate a
 * 10 MB message still gets its 2.7 hours.
 */
#define NET_STALL_RATE_KIB	1

/* OpenSSL's own read buffer (read-ahead): two 16 KiB records per read(2).
 * OpenSSL never makes it smaller than one record (about 17.7 KB). */
#define TLS_READ_BUF		(32 * 1024)

/* Certificate chains verified in one process that are kept for the next
 * handshakes of the same chain and host name (DESIGN §12), and the
 * largest chain kept (DER, all certificates): a run polls a few servers,
 * and a chain is a few kilobytes. */
#define TLS_CHAINS_KEPT		64
#define TLS_CHAIN_MAX		(64 * 1024)

/* Bytes of "what the certificate is for" (its SANs or CN) in a host name
 * mismatch message: a certificate with hundreds of names is cut here, so
 * the error line stays readable. */
#define TLS_NAMES_MAX		256

/* Seconds a stored TLS session is offered at most, whatever lifetime the
 * server gave its ticket (RFC 8446 §4.6.1 allows 7 days): a resumed
 * session skips the certificate check, so a certificate revoked, or a CA
 * removed from the system store, is noticed within a day.  Changing
 * tls_ca_file or anything else that decides trust invalidates at once
 * (DESIGN §12). */
#define TLS_RESUME_MAX_AGE	(24 * 60 * 60)

/* Sessions a server may decline in a row before popfetch stops offering
 * one (and stops storing them) for TLS_RESUME_MAX_AGE: a server that
 * never resumes (Dovecot's default login mode) would otherwise cost every
 * run a stored session's parse (~1.5 M instructions, OpenSSL 3) and a
 * file replaced, for nothing.  Three: one decline after a server restart
 * or a ticket key rotation changes nothing (DESIGN §12). */
#define TLS_RESUME_DECLINES	3

/* ---- fetcher/: password_command (fetcher/secret.c) ---- */

/* Most of password_command's output we keep (popfetch.conf(5): its first
 * line is the secret).  Passwords and OAuth2 access tokens are far smaller;
 * the rest of the output is read and thrown away so the command can
 * finish. */
#define SECRET_OUTPUT_MAX	(64 * 1024)

/* ---- fetcher/: POP3 session (fetcher/pop3.c) ---- */

/*
 * Longest status, CAPA, UIDL or LIST line we accept, CRLF included.  RFC 1939
 * §3 and RFC 2449 §4 allow 512 octets for a response line; real servers stay
 * well below.  We accept 16x that before deciding the server has broken the
 * protocol (exit 76).
 */
#define POP3_LINE_MAX		8192

/* Longest command line we send, CRLF included.  RFC 2449 §4 limits commands
 * to 255 octets, but SASL client responses (RFC 5034 §4) are not commands
 * and carry OAuth2 bearer tokens of a few KiB (Microsoft's JWTs). */
#define POP3_SEND_MAX		16384

/* RFC 2449 §4: a command line is at most 255 octets with CRLF; RFC 5034 §4
 * forbids an AUTH initial response that would exceed it. */
#define POP3_CMD_LINE_MAX	255

/* Most capability lines we keep from CAPA (RFC 2449 §5).  Real servers send
 * about a dozen; a never-ending list is a protocol error (76). */
#define POP3_CAPA_LINES_MAX	256

/* SASL mechanism names kept from CAPA (RFC 2449 §6.3): real servers list a
 * handful; past this they are ignored, so a hostile CAPA cannot make the
 * list grow without bound. */
#define POP3_SASL_MECHS_MAX	64

/* Longest APOP timestamp we keep from the greeting (RFC 1939 §7: an RFC 822
 * msg-id, e.g. <1896.697170952@dbc.mtview.ca.us>). */
#define POP3_APOP_TIMESTAMP_MAX	256

/*
 * Longest UIDL unique-id: RFC 1939 §7 says 1 to 70 characters in the range
 * 0x21..0x7E.  Some servers exceed 70; we accept up to 512 but no more.
 */
#define POP3_UIDL_MAX		512

/* Octets that hold a unique-id kept inline in a listing entry, decoded,
 * with its NUL: 16 hexadecimal digits (fetcher/pop3.h, union pop3_uid).
 * store/seen.c decodes the listing's keys into buffers of this size. */
#define UIDL_INLINE_BUF		17

/* Highest message number and most lines in a UIDL or LIST reply.  A million
 * messages is far beyond any real POP3 maildrop, and the cap bounds the
 * memory a hostile server can make the listing take. */
#define POP3_MESSAGES_MAX	1000000

/* Bits of struct pop3_msg (fetcher/pop3.h) that hold a message's number
 * (POP3_MESSAGES_MAX fits) and its LIST size: with two flags and the
 * unique-id's form they share one 64-bit word, so the listing takes 16
 * bytes a message (issue 17).  A LIST
 * size past POP3_SIZE_MAX (1 TiB) is held as POP3_SIZE_MAX: it is only
 * approximate (max_size, progress, the runaway bound) and no real message
 * comes near. */
#define POP3_NUMBER_BITS	20
#define POP3_SIZE_BITS		40
#define POP3_SIZE_MAX		((1ULL << POP3_SIZE_BITS) - 1)

/*
 * Most octets of unique-ids in one UIDL listing (their sum; more is a
 * protocol error, 76).  POP3_MESSAGES_MAX x POP3_UIDL_MAX alone let a
 * hostile server make the listing take about 580 MB (a million 513-octet
 * strings, 528 octets each in malloc, plus the tables).  This cap still
 * gives every one of POP3_MESSAGES_MAX messages a unique-id of RFC 1939
 * §7's full 70 characters (real ones are shorter: Dovecot's 16, Maildir
 * file names as UIDLs about 60), or 136,718 of POP3_UIDL_MAX, and bounds
 * the listing at about 130 MB (80 MB of strings in malloc, 50 MB of
 * tables for a million messages).
 */
#define POP3_UIDL_TOTAL_MAX	((size_t)POP3_MESSAGES_MAX * 70)

/*
 * Commands in flight when the server advertises PIPELINING (RFC 2449 §6.6).
 * Large, so that on a slow link the server always has work: 256 to 512
 * messages are asked for ahead of the one being read, which keeps even
 * 10 KB messages flowing at 25 MB/s over a 100 ms round trip.  Bounded so
 * that the commands the server has not read yet (at most 512 x 17 octets,
 * "RETR 4294967295\r\n", under 9 KiB) always fit in the socket buffers
 * (Linux defaults: 16 KiB to send, 128 KiB to receive): our write
 * completes even while the server, blocked on replies we have not read
 * yet, reads nothing.
 */
#define POP3_PIPELINE_WINDOW	512

/* doc/DESIGN.md §5: a message that keeps coming past twice its LIST size
 * plus this is a protocol error (76). */
#define RUNAWAY_SLACK		((off_t)64 * 1024 * 1024)

/* ---- fetcher/: SASL (fetcher/sasl.c) ---- */

/* RFC 7677 / RFC 5802: smallest PBKDF2 iteration count we accept from a
 * server (RFC 7677 §4 says at least 4096), and the largest, so that a hostile
 * server cannot make us spin. */
#define SCRAM_MIN_ITERATIONS	4096
#define SCRAM_MAX_ITERATIONS	1000000

/* ---- fetcher/: the filter command (fetcher/filter.c) ---- */

/* Filters run at once: two keep a trivial filter (a start of /bin/sh per
 * message, lib/command.c) ahead of the transfer without crowding the CPU. */
#define FILTER_THREADS		2

/* Messages received and waiting for (or in) the filter at once: the run
 * waits for the oldest beyond this.  Each holds a spool of at most
 * SPOOL_MEM bytes of memory, so this bounds what filtering costs. */
#define FILTER_QUEUE_MAX	16

/* Bytes of a filter's output kept: its first line names a folder, which
 * is at most a file name; the rest is read and dropped. */
#define FILTER_OUT_MAX		4096

/* ---- fetcher/: the run, --dry-run and reporting (fetcher/run.c,
 * fetcher/dryrun.c, fetcher/report.c) ---- */

/* Bytes of a message's header kept for --dry-run's From/Subject/Date:
 * they stand near the top; a header that is longer is not kept whole. */
#define DRYRUN_HEADER_MAX	(32 * 1024)

/* Seconds between two redraws of the progress line: five a second looks
 * live and costs nothing next to the transfer. */
#define PROGRESS_INTERVAL	0.2

/* ---- fetcher/: OAuth2 (fetcher/oauth2.c, http.c, json.c; DESIGN §11) ---- */

/* Largest answer read from a token or device endpoint: real ones are a
 * few KB (a JWT access token is 1-3 KB); past this it is not a token
 * response (76), and memory stays bounded whatever the endpoint sends. */
#define OAUTH2_RESPONSE_MAX	(64 * 1024)

/* Largest token file read back: three tokens and a time. */
#define OAUTH2_TOKEN_FILE_MAX	(64 * 1024)

/* JSON nesting accepted in a response: token responses are flat objects;
 * a small depth keeps a hostile one from recursing deep in json-c. */
#define OAUTH2_JSON_DEPTH	8

/* A token that expires within this many seconds is refreshed first
 * (doc/DESIGN.md §11: 5 minutes), so that a long fetch does not log in with a
 * token that dies on the way. */
#define OAUTH2_REFRESH_MARGIN	300

/* Lifetime assumed when a token response has no expires_in (RFC 6749
 * §5.1 only recommends it): an hour, what Microsoft and Google give. */
#define OAUTH2_DEFAULT_EXPIRES	3600

/* Device grant polling interval when the provider gives none, and the
 * step slow_down adds (RFC 8628 §3.5: 5 s each). */
#define OAUTH2_DEVICE_INTERVAL	5

/* Longest access-token lifetime we believe (10 years): a larger
 * expires_in is cut to it, so that expiry times stay far from overflow
 * and the token file's numbers stay short enough to read back. */
#define OAUTH2_TOKEN_EXPIRES_MAX	(10L * 365 * 86400)

/* Longest interval and lifetime we accept from a device response: a
 * provider asking for more is wrong, and authorize must end. */
#define OAUTH2_DEVICE_INTERVAL_MAX	60
#define OAUTH2_DEVICE_EXPIRES_MAX	3600

/* The loopback redirect grant waits this long for the browser (RFC 8252):
 * as long as Microsoft's device codes live, 15 minutes. */
#define OAUTH2_LOOPBACK_WAIT	900

/* Largest request the loopback listener reads: a redirect's GET line with
 * a code and state is a few hundred bytes. */
#define OAUTH2_LOOPBACK_REQUEST_MAX	8192

/* PKCE code verifier: 32 random octets, 43 base64url characters
 * (RFC 7636 §4.1: 43..128). */
#define OAUTH2_PKCE_OCTETS	32

#endif
