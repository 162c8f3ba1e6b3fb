/*
 * seen.c - the seen-list in SQLite (state_dir/popfetch.db); the only file
 * that includes sqlite3.h.
 *
 * The database's part in the delivery and recovery protocol is told once,
 * in doc/DESIGN.md §3 (steps 2, 6a and 6c are transactions here); which
 * row is an account's, in §2; forgetting, in §4.  What this file adds:
 * the database runs in WAL mode with synchronous=FULL, so a COMMIT returns
 * only after the WAL is fsynced and every transaction is durable before
 * the next step starts.  Every write transaction is BEGIN IMMEDIATE, so
 * parallel popfetch processes (other accounts) queue on the busy timeout
 * instead of failing halfway.  The file stays in WAL mode between runs,
 * with its -wal and -shm files, and no connection checkpoints when it
 * closes (keep_wal): a run that found nothing new then costs no fsync
 * (doc/DESIGN.md §3.4), and read-only readers (--dry-run, status) find
 * the side files there and create none.
 *
 * Schema (version in PRAGMA user_version, migrated forward by `migrations`):
 *   mailbox(id, name, legacy_key, user, host, port, bytes ever delivered)
 *       one row per account's state; name NULL and legacy_key "user@host"
 *       for state kept before schema 2, until an account takes it over
 *   seen(mailbox, uidl, size, fetched, missing_since)  one row per known
 *       message (uidl: the UIDL, or a digest key on a server without UIDL)
 *   pending(mailbox, uidl, name, size, fetched, dir)    undecided deliveries
 *   run(id, mailbox, started, ended, counters, exit_code)  last few runs
 */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "error.h"
#include "fsutil.h"
#include "lock.h"
#include "log.h"
#include "params.h"
#include "seen.h"
#include "strpool.h"
#include "xmalloc.h"

#define SEEN_DB_NAME	"popfetch.db"

/* Schema migrations: migrations[v] takes a database from version v to v+1.
 * Append only; never edit a step that has shipped. */
static const char *const migrations[] = {
	/* 0 -> 1 */
	"CREATE TABLE mailbox ("
	"  id      INTEGER PRIMARY KEY,"
	"  key     TEXT NOT NULL UNIQUE,"
	"  bytes   INTEGER NOT NULL DEFAULT 0"
	");"
	"CREATE TABLE seen ("
	"  mailbox INTEGER NOT NULL REFERENCES mailbox(id),"
	"  uidl    TEXT NOT NULL,"
	"  size    INTEGER NOT NULL,"
	"  fetched INTEGER NOT NULL,"
	"  PRIMARY KEY (mailbox, uidl)"
	") WITHOUT ROWID;"
	"CREATE TABLE pending ("
	"  mailbox INTEGER NOT NULL REFERENCES mailbox(id),"
	"  uidl    TEXT NOT NULL,"
	"  name    TEXT NOT NULL,"
	"  size    INTEGER NOT NULL,"
	"  fetched INTEGER NOT NULL,"
	"  PRIMARY KEY (mailbox, uidl)"
	") WITHOUT ROWID;"
	"CREATE TABLE run ("
	"  id        INTEGER PRIMARY KEY,"
	"  mailbox   INTEGER NOT NULL REFERENCES mailbox(id),"
	"  started   INTEGER NOT NULL,"
	"  ended     INTEGER,"
	"  fetched   INTEGER,"
	"  skipped   INTEGER,"
	"  deleted   INTEGER,"
	"  bytes     INTEGER,"
	"  exit_code INTEGER"
	");"
	"CREATE INDEX run_by_mailbox ON run (mailbox, id);",
	/* 1 -> 2: state per account (doc/DESIGN.md §2), forgetting after a
	 * while (§4), the Maildir of a pending delivery (§7).  Old rows keep
	 * their id, so seen, pending and run stay attached. */
	"CREATE TABLE mailbox_v2 ("
	"  id         INTEGER PRIMARY KEY,"
	"  name       TEXT UNIQUE,"
	"  legacy_key TEXT,"
	"  user       TEXT,"
	"  host       TEXT,"
	"  port       INTEGER,"
	"  bytes      INTEGER NOT NULL DEFAULT 0"
	");"
	"INSERT INTO mailbox_v2 (id, legacy_key, bytes)"
	"  SELECT id, key, bytes FROM mailbox;"
	"DROP TABLE mailbox;"
	"ALTER TABLE mailbox_v2 RENAME TO mailbox;"
	"ALTER TABLE seen ADD COLUMN missing_since INTEGER;"
	"ALTER TABLE pending ADD COLUMN dir TEXT;",
};
#define SCHEMA_VERSION	((int)(sizeof(migrations) / sizeof(migrations[0])))

/* One known UIDL, in an array sorted by strcmp (= SQLite's BINARY order). */
struct known {
	char		*uidl;
	time_t		 fetched;
	time_t		 missing;	/* missing from the listings since; 0: listed */
};

/*
 * Statements of the idle path (transactions, the run history, finding
 * the account's row) kept prepared on the connection: preparing one is
 * a parse, ~5,000 to 20,000 instructions each, a dozen per account.
 * They go with the connection when it is kept for the next account.
 */
struct stmt_cache {
	struct {
		const char	*sql;	/* the literal: compared by address */
		sqlite3_stmt	*st;
		bool		 out;	/* handed out (db_cached), not yet back */
	} e[SEEN_STMT_CACHE];
	size_t		 n;
};

/* PRAGMA synchronous as this connection last set it (set_sync). */
enum db_sync {
	SYNC_UNKNOWN = 0,
	SYNC_FULL,
	SYNC_NORMAL,
};

struct seen {
	sqlite3		*db;		/* NULL: read-only and no database */
	struct stmt_cache cache;	/* of db */
	char		*path;
	char		*state_dir;
	struct pf_lock	*heir_lock;	/* the previous owner's (lock_heritage) */
	char		*name;		/* the account */
	char		*user;
	char		*host;		/* lower-cased */
	unsigned	 port;
	const struct seen_who *who;	/* during the open only */
	enum seen_mode	 mode;
	sqlite3_int64	 mailbox;	/* 0: no row for this account */
	sqlite3_int64	 run_id;	/* 0: no run begun */
	struct known	*known;
	size_t		 nknown;
	struct strpool	*known_uidls;	/* every known[].uidl (and added's):
					   20,000 UIDLs without 20,000
					   malloc headers (DESIGN §5.4) */
	bool		 loaded;	/* known holds every row (seen_load) */
	size_t		 hint;		/* where the last lookup found its UIDL */
	bool		 db_failed;	/* a database call failed: the
					 * connection is closed, not kept */
	dev_t		 dev;		/* the file the connection opened */
	ino_t		 ino;
	bool		 have_ident;	/* dev and ino are known */
	enum db_sync	 sync;		/* synchronous as last set (set_sync) */
};

/*
 * The read-write connection kept between the accounts of a sequential run
 * (seen_reuse_begin): opening one costs SQLite a read of the schema, the
 * journal-mode switch and the pragmas, about a million instructions and
 * some eighty system calls, which an idle account would otherwise pay
 * each time.  Only the connection is shared: each account still finds its
 * own row (find_mailbox), holds its own lock and runs its own
 * transactions; seen_close rolls back whatever an account left open and
 * keeps the connection only if it is idle and no call on it failed.  The
 * file is identified by device and inode, so a database removed or
 * replaced meanwhile is opened anew instead of written through an old
 * descriptor.  Never across fork: a connection belongs to the process
 * that opened it (the pid is checked).  Used by the opening thread (prep)
 * and the closing one (main), one after the other; the mutex orders them.
 */
static struct {
	pthread_mutex_t	 mu;
	bool		 on;
	pid_t		 pid;
	sqlite3		*db;		/* the idle connection, or NULL */
	struct stmt_cache cache;	/* its statements */
	char		*path;		/* its file, and that file's identity */
	dev_t		 dev;
	ino_t		 ino;
	enum db_sync	 sync;
} reuse = { .mu = PTHREAD_MUTEX_INITIALIZER };

const char *
seen_library_version(void)
{
	return sqlite3_libversion();
}

char *
seen_mailbox_key(const char *user, const char *host)
{
	char *key, *p;

	key = xasprintf("%s@%s", user, host);
	for (p = key + strlen(user) + 1; *p != '\0'; p++) {
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	}
	return key;
}

/* Fill err from the database's last error: 75 if locked, else 74. */
static int
db_fail(struct seen *s, const char *what, struct pf_error *err)
{
	int rc = sqlite3_errcode(s->db);

	s->db_failed = true;

	if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
		return pf_error_set(err, PF_FAIL_TEMP,
		    "%s: %s: %s (still locked after %d ms)", s->path, what,
		    sqlite3_errmsg(s->db), SEEN_BUSY_TIMEOUT_MS);
	return pf_error_set(err, PF_FAIL_IO, "%s: %s: %s", s->path, what,
	    sqlite3_errmsg(s->db));
}

static int
db_exec(struct seen *s, const char *sql, const char *what,
    struct pf_error *err)
{
	if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return db_fail(s, what, err);
	return 0;
}

static int
db_prepare(struct seen *s, const char *sql, sqlite3_stmt **st_r,
    const char *what, struct pf_error *err)
{
	if (sqlite3_prepare_v2(s->db, sql, -1, st_r, NULL) != SQLITE_OK) {
		*st_r = NULL;
		return db_fail(s, what, err);
	}
	return 0;
}

/*
 * A statement of s->cache for sql (a string literal), prepared on first
 * use; give it back with db_release.  One already handed out, or a full
 * cache, gets a statement of its own, finalized by db_release.
 */
static int
db_cached(struct seen *s, const char *sql, sqlite3_stmt **st_r,
    const char *what, struct pf_error *err)
{
	struct stmt_cache *c = &s->cache;
	size_t i;

	for (i = 0; i < c->n; i++)
		if (c->e[i].sql == sql && !c->e[i].out) {
			c->e[i].out = true;
			*st_r = c->e[i].st;
			return 0;
		}
	if (c->n == SEEN_STMT_CACHE)
		return db_prepare(s, sql, st_r, what, err);
	if (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT,
	    st_r, NULL) != SQLITE_OK) {
		*st_r = NULL;
		return db_fail(s, what, err);
	}
	c->e[c->n].sql = sql;
	c->e[c->n].st = *st_r;
	c->e[c->n].out = true;
	c->n++;
	return 0;
}

/* Give back a statement of db_cached (reset, bindings cleared), or
 * finalize one of db_prepare; NULL is fine. */
static void
db_release(struct seen *s, sqlite3_stmt *st)
{
	size_t i;

	if (st == NULL)
		return;
	for (i = 0; i < s->cache.n; i++)
		if (s->cache.e[i].st == st) {
			sqlite3_reset(st);
			sqlite3_clear_bindings(st);
			s->cache.e[i].out = false;
			return;
		}
	sqlite3_finalize(st);
}

/* Finalize every cached statement (before the connection closes). */
static void
cache_clear(struct stmt_cache *c)
{
	size_t i;

	for (i = 0; i < c->n; i++)
		sqlite3_finalize(c->e[i].st);
	c->n = 0;
}

/* Close s's connection, its kept statements first. */
static void
db_close(struct seen *s)
{
	cache_clear(&s->cache);
	sqlite3_close(s->db);
	s->db = NULL;
}

/* Is every statement of the connection one of its cache's, and back?
 * Then none is in use and the connection can serve the next account. */
static bool
cache_idle(const struct seen *s)
{
	sqlite3_stmt *st = NULL;
	size_t i;

	while ((st = sqlite3_next_stmt(s->db, st)) != NULL) {
		for (i = 0; i < s->cache.n; i++)
			if (s->cache.e[i].st == st && !s->cache.e[i].out)
				break;
		if (i == s->cache.n || sqlite3_stmt_busy(st))
			return false;
	}
	return true;
}

/* A statement without parameters (BEGIN, COMMIT), kept prepared.  Not
 * for a pragma that sets something: SQLite applies those when it
 * prepares them, so a kept one would set nothing when run again. */
static int
db_exec_cached(struct seen *s, const char *sql, const char *what,
    struct pf_error *err)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (db_cached(s, sql, &st, what, err) == -1)
		return -1;
	rc = sqlite3_step(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		db_fail(s, what, err);
		db_release(s, st);
		return -1;
	}
	db_release(s, st);
	return 0;
}

/* Step a statement that returns no row, and reset it for the next use. */
static int
db_step_done(struct seen *s, sqlite3_stmt *st, const char *what,
    struct pf_error *err)
{
	if (sqlite3_step(st) != SQLITE_DONE)
		return db_fail(s, what, err);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return 0;
}

/*
 * PRAGMA synchronous for the next transaction: FULL for the seen-list's
 * (every one of them begins with tx_begin), NORMAL for the run history
 * (seen_run_begin, seen_run_end; doc/DESIGN.md §3.4).  SQLite applies the
 * pragma when it prepares it, so setting it is a parse: done only when
 * the level changes, and the connection remembers the level when it is
 * kept for the next account.  An idle account, whose only writes are its
 * history, sets nothing once the first one has.  Outside a transaction
 * only (SQLite refuses it inside).  A failure leaves the level unknown;
 * it is an error only for FULL.
 */
static int
set_sync(struct seen *s, enum db_sync want, const char *what,
    struct pf_error *err)
{
	if (s->sync == want)
		return 0;
	if (sqlite3_exec(s->db, want == SYNC_FULL ? "PRAGMA synchronous = FULL" :
	    "PRAGMA synchronous = NORMAL", NULL, NULL, NULL) != SQLITE_OK) {
		s->sync = SYNC_UNKNOWN;
		return want == SYNC_FULL ? db_fail(s, what, err) : 0;
	}
	s->sync = want;
	return 0;
}

/* A write transaction at this synchronous level, its lock taken at once. */
static int
tx_begin_at(struct seen *s, enum db_sync level, const char *what,
    struct pf_error *err)
{
	if (set_sync(s, level, what, err) == -1)
		return -1;
	return db_exec_cached(s, "BEGIN IMMEDIATE", what, err);
}

/* A transaction of the seen-list: synchronous = FULL. */
static int
tx_begin(struct seen *s, const char *what, struct pf_error *err)
{
	return tx_begin_at(s, SYNC_FULL, what, err);
}

static int
tx_commit(struct seen *s, const char *what, struct pf_error *err)
{
	return db_exec_cached(s, "COMMIT", what, err);
}

/* Undo an open transaction after a failure (err is already set). */
static void
tx_rollback(struct seen *s)
{
	if (s->db != NULL && !sqlite3_get_autocommit(s->db))
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
}

/* Calls that change the database need a read-write seen-list. */
static int
check_writable(const struct seen *s, const char *call, struct pf_error *err)
{
	if (s == NULL)
		return pf_error_set(err, PF_FAIL_INTERNAL,
		    "%s on a closed seen-list", call);
	if (s->mode == SEEN_READ_WRITE && s->db != NULL && s->mailbox != 0)
		return 0;
	return pf_error_set(err, PF_FAIL_INTERNAL,
	    "%s on a read-only seen-list", call);
}

/* Read PRAGMA user_version. */
static int
user_version(struct seen *s, int *version_r, struct pf_error *err)
{
	sqlite3_stmt *st = NULL;

	if (db_cached(s, "PRAGMA user_version", &st, "read schema version",
	    err) == -1)
		return -1;
	if (sqlite3_step(st) != SQLITE_ROW) {
		db_fail(s, "read schema version", err);
		db_release(s, st);
		return -1;
	}
	*version_r = sqlite3_column_int(st, 0);
	db_release(s, st);
	return 0;
}

/* A schema from a newer popfetch is not ours to touch. */
static int
check_version(const struct seen *s, int version, struct pf_error *err)
{
	if (version < 0 || version > SCHEMA_VERSION)
		return pf_error_set(err, PF_FAIL_IO,
		    "%s: schema version %d is newer than this popfetch's (%d)",
		    s->path, version, SCHEMA_VERSION);
	return 0;
}

/* Bring the schema up to SCHEMA_VERSION in one transaction. */
static int
migrate(struct seen *s, struct pf_error *err)
{
	char sql[64];
	int version;

	if (user_version(s, &version, err) == -1 ||
	    check_version(s, version, err) == -1)
		return -1;
	if (version == SCHEMA_VERSION)
		return 0;
	if (tx_begin(s, "migrate schema", err) == -1)
		return -1;
	/* Another popfetch may have migrated while we waited for the lock. */
	if (user_version(s, &version, err) == -1 ||
	    check_version(s, version, err) == -1)
		goto fail;
	for (; version < SCHEMA_VERSION; version++) {
		if (db_exec(s, migrations[version], "migrate schema", err) == -1)
			goto fail;
	}
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", SCHEMA_VERSION);
	if (db_exec(s, sql, "migrate schema", err) == -1 ||
	    tx_commit(s, "migrate schema", err) == -1)
		goto fail;
	return 0;

fail:
	tx_rollback(s);
	return -1;
}

/* A copy of host, lower-cased (ASCII): host names compare without case. */
static char *
host_lower(const char *host)
{
	char *h = xstrdup(host), *p;

	for (p = h; *p != '\0'; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return h;
}

/* One id from a query with text parameters binds[0..nb) (NULL: null) and,
 * when port != 0, the port as the last one; *id_r 0 when there is none. */
static int
query_id(struct seen *s, const char *sql, const char *const *binds, int nb,
    unsigned port, sqlite3_int64 *id_r, struct pf_error *err)
{
	sqlite3_stmt *st = NULL;
	int i, rc;

	*id_r = 0;
	if (db_cached(s, sql, &st, "find account", err) == -1)
		return -1;
	for (i = 0; i < nb; i++)
		sqlite3_bind_text(st, i + 1, binds[i], -1, SQLITE_STATIC);
	if (port != 0)
		sqlite3_bind_int(st, nb + 1, (int)port);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*id_r = sqlite3_column_int64(st, 0);
	else if (rc != SQLITE_DONE) {
		db_fail(s, "find account", err);
		db_release(s, st);
		return -1;
	}
	db_release(s, st);
	return 0;
}

static int
row_by_name(struct seen *s, const char *name, sqlite3_int64 *id_r,
    struct pf_error *err)
{
	return query_id(s, "SELECT id FROM mailbox WHERE name = ?", &name, 1, 0,
	    id_r, err);
}

static bool
is_configured(const struct seen_who *who, const char *name)
{
	size_t i;

	for (i = 0; i < who->n; i++)
		if (strcmp(who->all[i].account, name) == 0)
			return true;
	return false;
}

/* Does configured account o answer to the same (user, host, port), or,
 * with legacy, the same pre-schema-2 key (user@host)? */
static bool
same_mailbox(const struct seen_owner *a, const struct seen_owner *b,
    bool legacy)
{
	return strcmp(a->user, b->user) == 0 &&
	    strcasecmp(a->host, b->host) == 0 &&
	    (legacy || a->port == b->port);
}

/*
 * May the account who->self take over state found by (user, host, port)
 * (or by the legacy key)?  Only if it is the first in config order of the
 * configured accounts that match and have no state of their own: state
 * never goes to two accounts, nor to one that has its own.
 */
static int
first_heir(struct seen *s, bool legacy, bool *yes_r, struct pf_error *err)
{
	const struct seen_who *who = s->who;
	const struct seen_owner *self = &who->all[who->self];
	sqlite3_int64 id;
	size_t j;

	*yes_r = false;
	for (j = 0; j < who->n; j++) {
		if (!same_mailbox(&who->all[j], self, legacy))
			continue;
		if (j == who->self) {
			*yes_r = true;
			return 0;
		}
		if (row_by_name(s, who->all[j].account, &id, err) == -1)
			return -1;
		if (id == 0)
			return 0;	/* that one comes first */
	}
	return 0;
}

/*
 * A row this account may take over (doc/DESIGN.md §2): that of a renamed
 * account (same user, host and port; no configured account of its name),
 * newest first, else state from before schema 2 under "user@host".
 */
static int
find_heritage(struct seen *s, sqlite3_int64 *id_r, struct pf_error *err)
{
	const char *binds[2] = { s->user, s->host };
	sqlite3_stmt *st = NULL;
	bool heir;
	char *key;
	int rc;

	*id_r = 0;
	if (db_prepare(s, "SELECT id, name FROM mailbox WHERE name IS NOT NULL "
	    "AND user = ? AND host = ? AND port = ? ORDER BY id DESC", &st,
	    "find account", err) == -1)
		return -1;
	sqlite3_bind_text(st, 1, binds[0], -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, binds[1], -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 3, (int)s->port);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, 1);

		if (name != NULL && !is_configured(s->who, name)) {
			*id_r = sqlite3_column_int64(st, 0);
			break;
		}
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		db_fail(s, "find account", err);
		sqlite3_finalize(st);
		return -1;
	}
	sqlite3_finalize(st);
	if (*id_r != 0) {
		if (first_heir(s, false, &heir, err) == -1)
			return -1;
		if (heir)
			return 0;
		*id_r = 0;
	}
	key = seen_mailbox_key(s->user, s->host);
	rc = query_id(s, "SELECT id FROM mailbox WHERE name IS NULL AND "
	    "legacy_key = ? ORDER BY id LIMIT 1", (const char *const *)&key, 1,
	    0, id_r, err);
	free(key);
	if (rc == -1)
		return -1;
	if (*id_r != 0) {
		if (first_heir(s, true, &heir, err) == -1)
			return -1;
		if (!heir)
			*id_r = 0;
	}
	return 0;
}

/*
 * Before an account takes over row id, hold the lock of the account that
 * owned it (its name, or for state from before schema 2 the user@host
 * that popfetch then locked): a run of the old name, under an older
 * configuration or an older popfetch, may still be using it, and two
 * runs must never share a seen-list (doc/DESIGN.md §2.1).  Kept until
 * seen_close.  Held: PF_FAIL_TEMP from lock_acquire.
 */
static int
lock_heritage(struct seen *s, sqlite3_int64 id, struct pf_error *err)
{
	sqlite3_stmt *st = NULL;
	char *owner = NULL;
	int rc;

	if (db_prepare(s, "SELECT coalesce(name, legacy_key) FROM mailbox "
	    "WHERE id = ?", &st, "find account", err) == -1)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0) != NULL)
		owner = xstrdup((const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	if (owner == NULL || strcmp(owner, s->name) == 0) {
		free(owner);	/* ours is held already */
		return 0;
	}
	rc = lock_acquire(s->state_dir, owner, &s->heir_lock, err);
	free(owner);
	return rc;
}

/* Write the account's name and address into row id (a take-over, or an
 * account whose port or host was edited), or add a row when id is 0. */
static int
claim_row(struct seen *s, sqlite3_int64 id, struct pf_error *err)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (db_prepare(s, id != 0 ?
	    "UPDATE mailbox SET name = ?1, user = ?2, host = ?3, port = ?4, "
	    "legacy_key = NULL WHERE id = ?5" :
	    "INSERT INTO mailbox (name, user, host, port) "
	    "VALUES (?1, ?2, ?3, ?4)", &st, "record account", err) == -1)
		return -1;
	sqlite3_bind_text(st, 1, s->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, s->user, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, s->host, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 4, (int)s->port);
	if (id != 0)
		sqlite3_bind_int64(st, 5, id);
	rc = db_step_done(s, st, "record account", err);
	sqlite3_finalize(st);
	if (rc == 0 && id == 0)
		s->mailbox = sqlite3_last_insert_rowid(s->db);
	return rc;
}

/* The id of the row named after the account whose user, host and port are
 * the account's (rule 1 of doc/DESIGN.md §2.3, nothing to update), else 0. */
static int
unchanged_row(struct seen *s, sqlite3_int64 *id_r, struct pf_error *err)
{
	const char *binds[3] = { s->name, s->user, s->host };

	return query_id(s, "SELECT id FROM mailbox WHERE name = ? AND "
	    "user = ? AND host = ? AND port = ?", binds, 3, s->port, id_r, err);
}

/*
 * Find the account's row, s->mailbox = its id (doc/DESIGN.md §2): its own
 * by name, else one it takes over; when `create`, record that (or a new
 * row), in one transaction so that two processes never take over the same
 * state.  Read-only, s->mailbox is 0 when the account has no state.
 */
static int
find_mailbox(struct seen *s, bool create, struct pf_error *err)
{
	sqlite3_int64 id, old = 0;

	s->mailbox = 0;
	/* The usual case, the account's own row with its address unchanged:
	 * nothing to write, so no write transaction (64 accounts at -j 64
	 * would queue on the WAL's write lock for nothing). */
	if (create && unchanged_row(s, &id, err) == -1)
		return -1;
	if (create && id != 0) {
		s->mailbox = id;
		return 0;
	}
	if (create && tx_begin(s, "find account", err) == -1)
		return -1;
	if (row_by_name(s, s->name, &id, err) == -1)
		goto fail;
	if (id == 0) {
		if (find_heritage(s, &id, err) == -1)
			goto fail;
		if (id != 0 && create && lock_heritage(s, id, err) == -1)
			goto fail;
	}
	if (id != 0 && create) {
		sqlite3_stmt *st = NULL;
		bool same = false;

		/* Only write when something changed. */
		if (db_prepare(s, "SELECT 1 FROM mailbox WHERE id = ? AND "
		    "name = ? AND user = ? AND host = ? AND port = ?", &st,
		    "find account", err) == -1)
			goto fail;
		sqlite3_bind_int64(st, 1, id);
		sqlite3_bind_text(st, 2, s->name, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, s->user, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 4, s->host, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 5, (int)s->port);
		same = sqlite3_step(st) == SQLITE_ROW;
		sqlite3_finalize(st);
		old = same ? 0 : id;
		if (!same && claim_row(s, id, err) == -1)
			goto fail;
	} else if (id == 0 && create && claim_row(s, 0, err) == -1)
		goto fail;
	if (id != 0)
		s->mailbox = id;
	if (create && tx_commit(s, "find account", err) == -1)
		goto fail;
	if (old != 0)
		log_debug("%s: state %" PRId64 " now belongs to this account "
		    "(%s@%s:%u)", s->name, (int64_t)old, s->user, s->host,
		    s->port);
	return 0;

fail:
	tx_rollback(s);
	s->mailbox = 0;
	return -1;
}

#define DIGEST_PREFIX_LEN_SQL	"7"	/* strlen(SEEN_DIGEST_PREFIX) */

static bool
is_digest(const char *key)
{
	return strncmp(key, SEEN_DIGEST_PREFIX, sizeof(SEEN_DIGEST_PREFIX) - 1)
	    == 0;
}

/* Order for the known set and bsearch: SQLite's BINARY collation. */
static int
known_cmp(const void *a, const void *b)
{
	return strcmp(((const struct known *)a)->uidl,
	    ((const struct known *)b)->uidl);
}

/* The strings stay in s->known_uidls until the seen-list is closed or
 * reloaded. */
static void
known_free(struct known *k, size_t n)
{
	(void)n;
	free(k);
}

/* A known UIDL's string, in the pool. */
static char *
known_uidl(struct seen *s, const char *uidl)
{
	if (s->known_uidls == NULL)
		s->known_uidls = strpool_new();
	return strpool_dup(s->known_uidls, uidl);
}

/* Load the mailbox's UIDLs, already sorted by the primary key, in place of
 * whatever the set held. */
int
seen_load(struct seen *s, struct pf_error *err)
{
	sqlite3_stmt *st = NULL;
	size_t cap = 0;
	int rc;

	known_free(s->known, s->nknown);
	s->known = NULL;
	s->nknown = 0;
	strpool_free(&s->known_uidls);
	s->loaded = true;
	if (s->db == NULL || s->mailbox == 0)
		return 0;
	if (db_prepare(s, "SELECT uidl, fetched, missing_since FROM seen "
	    "WHERE mailbox = ? ORDER BY uidl", &st, "load seen-list", err) == -1)
		return -1;
	sqlite3_bind_int64(st, 1, s->mailbox);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *uidl = (const char *)sqlite3_column_text(st, 0);

		if (uidl == NULL)
			continue;
		if (s->nknown == cap) {
			cap = cap == 0 ? 1024 : cap * 2;
			s->known = xreallocarray(s->known, cap, sizeof(*s->known));
		}
		s->known[s->nknown].uidl = known_uidl(s, uidl);
		s->known[s->nknown].fetched = (time_t)sqlite3_column_int64(st, 1);
		s->known[s->nknown].missing = (time_t)sqlite3_column_int64(st, 2);
		s->nknown++;
	}
	if (rc != SQLITE_DONE) {
		db_fail(s, "load seen-list", err);
		sqlite3_finalize(st);
		s->loaded = false;
		return -1;
	}
	sqlite3_finalize(st);
	return 0;
}

/*
 * Merge `n` new entries (their strings move to the set) into the sorted
 * known set: sort them, then merge from the back, O(known + n).
 */
static void
known_add(struct seen *s, struct known *add, size_t n)
{
	size_t i, j, k;

	if (n == 0)
		return;
	qsort(add, n, sizeof(*add), known_cmp);
	s->known = xreallocarray(s->known, s->nknown + n, sizeof(*s->known));
	i = s->nknown;
	j = n;
	k = s->nknown + n;
	while (j > 0) {
		if (i > 0 && strcmp(s->known[i - 1].uidl, add[j - 1].uidl) > 0)
			s->known[--k] = s->known[--i];
		else
			s->known[--k] = add[--j];
	}
	s->nknown += n;
}

/* Allocate a seen-list for user@host in state_dir, not yet opened. */
static struct seen *
seen_alloc(const char *state_dir, const struct seen_who *who,
    enum seen_mode mode, struct pf_error *err)
{
	const struct seen_owner *o = &who->all[who->self];
	struct seen *s;

	if (strlen(state_dir) + 1 + strlen(SEEN_DB_NAME) >= PATH_MAX) {
		pf_error_set(err, PF_FAIL_IO, "path too long: %s/%s", state_dir,
		    SEEN_DB_NAME);
		return NULL;
	}
	s = xcalloc(1, sizeof(*s));
	s->mode = mode;
	s->state_dir = xstrdup(state_dir);
	s->name = xstrdup(o->account);
	s->user = xstrdup(o->user);
	s->host = host_lower(o->host);
	s->port = o->port;
	s->who = who;
	s->path = xasprintf("%s/%s", state_dir, SEEN_DB_NAME);
	return s;
}

/*
 * No checkpoint when a connection closes, so the -wal and -shm files stay
 * (doc/DESIGN.md §3.4).  SQLite's default, for the last connection to
 * close, is to checkpoint (an fsync of the WAL and one of the database)
 * and delete both files; a run that found nothing new wrote only its
 * history (synchronous = NORMAL, no fsync) and would pay those two, and
 * the next open would recreate the files.  Nothing is at risk: a commit
 * is durable in the WAL, and SQLite's automatic checkpoint (every
 * wal_autocheckpoint pages, fsynced as a checkpoint always is) keeps the
 * WAL bounded.  Only a hint: without it SQLite checkpoints at close.
 */
static void
keep_wal(struct seen *s)
{
	(void)sqlite3_db_config(s->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1,
	    NULL);
}

/*
 * Before SQLite starts: no bulk allocation of page-cache memory per
 * connection.  By default each connection allocates 20 pages (87 KB) at
 * once when it first reads, before PRAGMA cache_size can lower it (that
 * pragma reads the schema first); without it pages are allocated as the
 * cache fills, up to SEEN_CACHE_KIB.  Only a hint: once SQLite is
 * initialised, sqlite3_config fails and changes nothing.
 */
static void
sqlite_setup(void)
{
	(void)sqlite3_config(SQLITE_CONFIG_PAGECACHE, NULL, 0, 0);
}

/* sqlite3_open_v2 with the flags we always want; creation is our job. */
static int
db_open(struct seen *s, int flags, struct pf_error *err)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	char sql[64];

	(void)pthread_once(&once, sqlite_setup);

	if (sqlite3_open_v2(s->path, &s->db, flags | SQLITE_OPEN_NOFOLLOW,
	    NULL) != SQLITE_OK) {
		if (s->db == NULL)
			fatalx("sqlite3_open_v2: out of memory");
		return db_fail(s, "open", err);
	}
	sqlite3_busy_timeout(s->db, SEEN_BUSY_TIMEOUT_MS);
	keep_wal(s);
	/* Only a hint: a failure leaves SQLite's default. */
	snprintf(sql, sizeof(sql), "PRAGMA cache_size = -%d", SEEN_CACHE_KIB);
	(void)sqlite3_exec(s->db, sql, NULL, NULL, NULL);
	return 0;
}

/*
 * PRAGMA journal_mode = WAL.  Switching to WAL takes an exclusive lock, and
 * SQLite answers SQLITE_BUSY at once, without calling the busy handler,
 * when another connection holds a shared lock meanwhile (it avoids a
 * deadlock): parallel first runs (-j) on a new database would fail with
 * 75.  So retry every SEEN_WAL_RETRY_MS, up to SEEN_BUSY_TIMEOUT_MS.
 */
static int
set_wal(struct seen *s, struct pf_error *err)
{
	const struct timespec pause = { 0, SEEN_WAL_RETRY_MS * 1000000L };
	sqlite3_stmt *st = NULL;
	int rc, waited;

	for (waited = 0;; waited += SEEN_WAL_RETRY_MS) {
		if (db_prepare(s, "PRAGMA journal_mode = WAL", &st,
		    "set WAL mode", err) == -1)
			return -1;
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW)
			break;
		if ((rc != SQLITE_BUSY && rc != SQLITE_LOCKED) ||
		    waited >= SEEN_BUSY_TIMEOUT_MS) {
			db_fail(s, "set WAL mode", err);
			sqlite3_finalize(st);
			return -1;
		}
		sqlite3_finalize(st);
		nanosleep(&pause, NULL);
	}
	sqlite3_finalize(st);
	return 0;
}

/* The file's identity now, into s (for reuse_park). */
static void
note_ident(struct seen *s)
{
	struct stat st;

	s->have_ident = stat(s->path, &st) == 0;
	if (s->have_ident) {
		s->dev = st.st_dev;
		s->ino = st.st_ino;
	}
}

/*
 * The kept connection (see `reuse`), if it is this process's, for this
 * path, and the file there is still the one it opened; else none, and a
 * kept connection to another or a replaced file is closed.
 */
static bool
reuse_take(struct seen *s)
{
	sqlite3 *db = NULL, *stale = NULL;
	struct stmt_cache stale_cache = { .n = 0 };
	struct stat st;

	pthread_mutex_lock(&reuse.mu);
	if (reuse.db != NULL && reuse.pid == getpid()) {
		if (strcmp(reuse.path, s->path) == 0 &&
		    stat(s->path, &st) == 0 && st.st_dev == reuse.dev &&
		    st.st_ino == reuse.ino) {
			db = reuse.db;
			s->cache = reuse.cache;
			s->sync = reuse.sync;
			s->dev = reuse.dev;
			s->ino = reuse.ino;
			s->have_ident = true;
		} else {
			stale = reuse.db;
			stale_cache = reuse.cache;
		}
		reuse.db = NULL;
		reuse.cache.n = 0;
	}
	pthread_mutex_unlock(&reuse.mu);
	if (stale != NULL) {
		cache_clear(&stale_cache);
		sqlite3_close(stale);
	}
	s->db = db;
	return db != NULL;
}

/* Keep s's connection for the next account instead of closing it: only
 * when reuse is on, the connection idle (no transaction, no statement)
 * and nothing on it failed.  True if kept. */
static bool
reuse_park(struct seen *s)
{
	bool kept = false;

	if (s->mode != SEEN_READ_WRITE || s->db_failed || !s->have_ident ||
	    !sqlite3_get_autocommit(s->db) || !cache_idle(s))
		return false;
	pthread_mutex_lock(&reuse.mu);
	if (reuse.on && reuse.pid == getpid() && reuse.db == NULL) {
		reuse.db = s->db;
		reuse.cache = s->cache;
		reuse.sync = s->sync;
		s->cache.n = 0;
		free(reuse.path);
		reuse.path = xstrdup(s->path);
		reuse.dev = s->dev;
		reuse.ino = s->ino;
		kept = true;
	}
	pthread_mutex_unlock(&reuse.mu);
	return kept;
}

void
seen_reuse_begin(void)
{
	pthread_mutex_lock(&reuse.mu);
	reuse.on = true;
	reuse.pid = getpid();
	pthread_mutex_unlock(&reuse.mu);
}

void
seen_reuse_end(void)
{
	struct stmt_cache cache;
	sqlite3 *db;

	pthread_mutex_lock(&reuse.mu);
	db = reuse.pid == getpid() ? reuse.db : NULL;
	cache = reuse.cache;
	reuse.db = NULL;
	reuse.cache.n = 0;
	reuse.on = false;
	free(reuse.path);
	reuse.path = NULL;
	pthread_mutex_unlock(&reuse.mu);
	if (db != NULL) {
		cache_clear(&cache);
		sqlite3_close(db);
	}
}

/*
 * Read-write open: state_dir 0700, the file created by us with mode 0600
 * (SQLite's own default would be 0644; its -wal and -shm files copy the
 * database's mode), WAL, synchronous=FULL, schema migrated.
 */
static int
open_rw(struct seen *s, const char *state_dir, struct pf_error *err)
{
	int fd;

	/* A kept connection is set up already (WAL, pragmas, schema); only
	 * the schema version may have changed since (a newer popfetch may
	 * have migrated meanwhile).  Its synchronous level is whatever the
	 * last account left: every transaction sets its own (set_sync). */
	if (reuse_take(s)) {
		if (migrate(s, err) == -1)
			return -1;
		return find_mailbox(s, true, err);
	}
	if (pf_mkdirs(state_dir, err) == -1) {
		char what[PF_ERROR_WHAT_MAX];

		/* Which setting: the path alone may not tell. */
		memcpy(what, err->what, sizeof(what));
		return pf_error_set(err, err->category, "state_dir %s: %s",
		    state_dir, what);
	}
	fd = open(s->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
	    0600);
	if (fd == -1 && errno != EEXIST)
		return pf_error_set_errno(err, PF_FAIL_IO, "open(%s)", s->path);
	if (fd != -1) {
		/* An empty file is an empty database; make its entry durable. */
		close(fd);
		if (pf_fsync_dir(state_dir, err) == -1)
			return -1;
	}
	if (db_open(s, SQLITE_OPEN_READWRITE, err) == -1)
		return -1;
	/* journal_mode answers with the mode in force; WAL is what we want,
	 * but a file system without shared memory keeps "delete", which is
	 * just as durable with synchronous=FULL. */
	if (set_wal(s, err) == -1)
		return -1;
	note_ident(s);
	if (db_exec(s, "PRAGMA synchronous = FULL; PRAGMA temp_store = MEMORY",
	    "set pragmas", err) == -1)
		return -1;
	s->sync = SYNC_FULL;
	/* Only a hint: a failure leaves SQLite's default. */
	(void)sqlite3_wal_autocheckpoint(s->db, SEEN_WAL_CHECKPOINT_PAGES);
	if (migrate(s, err) == -1)
		return -1;
	return find_mailbox(s, true, err);
}

/*
 * A schema-1 database that no fetch has migrated yet (popfetch was just
 * upgraded), read without changing it: temporary views, which SQLite
 * resolves before the main schema's tables of the same name, show it as
 * schema 2 (every row state from before schema 2, no marks, no Maildirs).
 */
static const char v1_as_v2[] =
	"CREATE TEMP VIEW mailbox AS SELECT id, NULL AS name,"
	"  key AS legacy_key, NULL AS user, NULL AS host, NULL AS port, bytes"
	"  FROM main.mailbox;"
	"CREATE TEMP VIEW seen AS SELECT mailbox, uidl, size, fetched,"
	"  NULL AS missing_since FROM main.seen;"
	"CREATE TEMP VIEW pending AS SELECT mailbox, uidl, name, size, fetched,"
	"  NULL AS dir FROM main.pending;";

/*
 * Read-only open (--dry-run, status): a missing database is an empty one
 * and is not created; a database never migrated (version 0) is empty too.
 *
 * A popfetch killed in mid-run can leave what only a writer may repair: a
 * hot rollback journal (killed while switching to WAL, set_wal, or while an
 * older popfetch switched back: SQLITE_READONLY_ROLLBACK), or a WAL whose
 * shared-memory index must be rebuilt (SQLITE_READONLY_RECOVERY and
 * friends).  Then, if we may write the file, read through a read-write
 * connection instead: it rolls the journal back, or rebuilds the index
 * (the WAL stays, as after any run).  Only what was committed is kept, as
 * the next fetch would; nothing of ours is written.
 */
static int
open_ro(struct seen *s, struct pf_error *err)
{
	struct stat st;
	int version;

	if (stat(s->path, &st) == -1) {
		if (errno == ENOENT)
			return 0;
		return pf_error_set_errno(err, PF_FAIL_IO, "stat(%s)", s->path);
	}
	if (db_open(s, SQLITE_OPEN_READONLY, err) == -1)
		return -1;
	if (user_version(s, &version, err) == -1) {
		if ((sqlite3_extended_errcode(s->db) & 0xff) != SQLITE_READONLY ||
		    access(s->path, W_OK) == -1)
			return -1;
		db_close(s);
		if (db_open(s, SQLITE_OPEN_READWRITE, err) == -1 ||
		    user_version(s, &version, err) == -1)
			return -1;
	}
	if (check_version(s, version, err) == -1)
		return -1;
	if (version == 0) {
		db_close(s);
		return 0;
	}
	if (version == 1 && db_exec(s, v1_as_v2, "read schema 1", err) == -1)
		return -1;
	return find_mailbox(s, false, err);
}

int
seen_open_unloaded(const char *state_dir, const struct seen_who *who,
    enum seen_mode mode, struct seen **s_r, struct pf_error *err)
{
	struct seen *s;
	int rc;

	*s_r = NULL;
	if ((s = seen_alloc(state_dir, who, mode, err)) == NULL)
		return -1;
	if (mode == SEEN_READ_WRITE)
		rc = open_rw(s, state_dir, err);
	else
		rc = open_ro(s, err);
	s->who = NULL;
	if (rc == -1) {
		seen_close(&s);
		return -1;
	}
	*s_r = s;
	return 0;
}

int
seen_open(const char *state_dir, const struct seen_who *who,
    enum seen_mode mode, struct seen **s_r, struct pf_error *err)
{
	if (seen_open_unloaded(state_dir, who, mode, s_r, err) == -1)
		return -1;
	if (seen_load(*s_r, err) == -1) {
		seen_close(s_r);
		return -1;
	}
	return 0;
}

int
seen_any(struct seen *s, bool *any_r, struct pf_error *err)
{
	sqlite3_stmt *st = NULL;
	int rc;

	*any_r = false;
	if (s->loaded) {
		size_t i;

		for (i = 0; i < s->nknown && !*any_r; i++)
			*any_r = !is_digest(s->known[i].uidl);
		return 0;
	}
	if (s->db == NULL || s->mailbox == 0)
		return 0;
	if (db_cached(s, "SELECT 1 FROM seen WHERE mailbox = ? AND "
	    "substr(uidl, 1, " DIGEST_PREFIX_LEN_SQL ") <> '"
	    SEEN_DIGEST_PREFIX "' LIMIT 1", &st, "read seen-list", err) == -1)
		return -1;
	sqlite3_bind_int64(st, 1, s->mailbox);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*any_r = true;
	else if (rc != SQLITE_DONE) {
		db_fail(s, "read seen-list", err);
		db_release(s, st);
		return -1;
	}
	db_release(s, st);
	return 0;
}

void
seen_close(struct seen **s_r)
{
	struct seen *s = *s_r;

	if (s == NULL)
		return;
	if (s->db != NULL) {
		tx_rollback(s);
		if (!reuse_park(s))
			db_close(s);
	}
	known_free(s->known, s->nknown);
	strpool_free(&s->known_uidls);
	lock_release(&s->heir_lock);
	free(s->path);
	free(s->state_dir);
	free(s->name);
	free(s->user);
	free(s->host);
	free(s);
	*s_r = NULL;
}

const char *
seen_path(const struct seen *s)
{
	return s->path;
}

/*
 * Binary search, but first where the last lookup ended: a run looks up a
 * listing's UIDLs in turn, and servers list them in the set's own order
 * often enough (Dovecot's are hexadecimal numbers), so that most lookups
 * cost two comparisons instead of log2(n).
 */
bool
seen_lookup(struct seen *s, const char *uidl, time_t *fetched_r)
{
	size_t lo = 0, hi = s->nknown, mid, h = s->hint;
	int c;

	if (!s->loaded)
		fatalx("seen_lookup before seen_load");
	/* Narrow [lo, hi) to the hint's entry, or the one just after it. */
	if (h < hi) {
		c = strcmp(uidl, s->known[h].uidl);
		if (c < 0)
			hi = h;
		else if (c == 0 || (h + 1 < hi &&
		    strcmp(uidl, s->known[h + 1].uidl) <= 0)) {
			lo = c == 0 ? h : h + 1;
			hi = lo + 1;
		} else
			lo = h + 1;
	}
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		c = strcmp(uidl, s->known[mid].uidl);
		if (c == 0)
			goto found;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return false;
found:
	s->hint = mid;
	if (fetched_r != NULL)
		*fetched_r = s->known[mid].fetched;
	return true;
}

bool
seen_contains(struct seen *s, const char *uidl)
{
	return seen_lookup(s, uidl, NULL);
}

size_t
seen_count(const struct seen *s)
{
	if (!s->loaded)
		fatalx("seen_count before seen_load");
	return s->nknown;
}

int
seen_pending_load(struct seen *s, struct seen_entry **entries_r, size_t *n_r,
    struct pf_error *err)
{
	struct seen_entry *e = NULL;
	sqlite3_stmt *st = NULL;
	size_t n = 0, cap = 0;
	int rc;

	*entries_r = NULL;
	*n_r = 0;
	if (s->db == NULL || s->mailbox == 0)
		return 0;
	if (db_cached(s, "SELECT uidl, name, size, fetched, dir FROM pending "
	    "WHERE mailbox = ? ORDER BY uidl", &st, "load pending deliveries",
	    err) == -1)
		return -1;
	sqlite3_bind_int64(st, 1, s->mailbox);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *uidl = (const char *)sqlite3_column_text(st, 0);
		const char *name = (const char *)sqlite3_column_text(st, 1);
		const char *dir = (const char *)sqlite3_column_text(st, 4);

		if (n == cap) {
			cap = cap == 0 ? 16 : cap * 2;
			e = xreallocarray(e, cap, sizeof(*e));
		}
		e[n].uidl = xstrdup(uidl != NULL ? uidl : "");
		e[n].location = xstrdup(name != NULL ? name : "");
		e[n].target = dir != NULL ? xstrdup(dir) : NULL;
		e[n].size = (uint64_t)sqlite3_column_int64(st, 2);
		e[n].fetched = (time_t)sqlite3_column_int64(st, 3);
		n++;
	}
	if (rc != SQLITE_DONE) {
		db_fail(s, "load pending deliveries", err);
		db_release(s, st);
		seen_entries_free(&e, n);
		return -1;
	}
	db_release(s, st);
	*entries_r = e;
	*n_r = n;
	return 0;
}

void
seen_entries_free(struct seen_entry **entries_r, size_t n)
{
	struct seen_entry *e = *entries_r;
	size_t i;

	if (e == NULL)
		return;
	/* The strings were allocated by seen_pending_load. */
	for (i = 0; i < n; i++) {
		free((char *)(uintptr_t)e[i].uidl);
		free((char *)(uintptr_t)e[i].location);
		free((char *)(uintptr_t)e[i].target);
	}
	free(e);
	*entries_r = NULL;
}

/* Check that entries are complete enough for a pending row. */
static int
pending_check(const struct seen_entry *entries, size_t n, const char *fn,
    struct pf_error *err)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (entries[i].uidl == NULL || entries[i].uidl[0] == '\0' ||
		    entries[i].location == NULL ||
		    entries[i].size > INT64_MAX)
			return pf_error_set(err, PF_FAIL_INTERNAL,
			    "%s: entry %zu is incomplete", fn, i);
	}
	return 0;
}

/* Insert n pending rows, inside the caller's transaction. */
static int
pending_insert(struct seen *s, const struct seen_entry *entries, size_t n,
    const char *what, struct pf_error *err)
{
	sqlite3_stmt *st = NULL;
	size_t i;

	if (n == 0)
		return 0;
	if (db_prepare(s, "INSERT OR REPLACE INTO pending "
	    "(mailbox, uidl, name, size, fetched, dir) "
	    "VALUES (?, ?, ?, ?, ?, ?)",
	    &st, what, err) == -1)
		return -1;
	for (i = 0; i < n; i++) {
		sqlite3_bind_int64(st, 1, s->mailbox);
		sqlite3_bind_text(st, 2, entries[i].uidl, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, entries[i].location, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 4, (sqlite3_int64)entries[i].size);
		sqlite3_bind_int64(st, 5, (sqlite3_int64)entries[i].fetched);
		if (entries[i].target != NULL)
			sqlite3_bind_text(st, 6, entries[i].target, -1,
			    SQLITE_STATIC);
		else
			sqlite3_bind_null(st, 6);
		if (db_step_done(s, st, what, err) == -1) {
			sqlite3_finalize(st);
			return -1;
		}
	}
	sqlite3_finalize(st);
	return 0;
}

int
seen_pending_add(struct seen *s, const struct seen_entry *entries, size_t n,
    struct pf_error *err)
{
	const char *what = "record pending deliveries";

	if (check_writable(s, "seen_pending_add", err) == -1 ||
	    pending_check(entries, n, "seen_pending_add", err) == -1)
		return -1;
	if (tx_begin(s, what, err) == -1)
		return -1;
	if (pending_insert(s, entries, n, what, err) == -1 ||
	    tx_commit(s, what, err) == -1) {
		tx_rollback(s);
		return -1;
	}
	return 0;
}

/* The statements that decide pending rows, prepared once per transaction. */
struct decide {
	sqlite3_stmt	*get;		/* the pending row */
	sqlite3_stmt	*insert;	/* into seen */
	sqlite3_stmt	*drop;		/* from pending */
	sqlite3_int64	 bytes;		/* sizes of the newly seen */
	struct known	*added;		/* for the in-memory set after COMMIT */
	size_t		 nadded;
};

static int
decide_prepare(struct seen *s, struct decide *dc, size_t n, const char *what,
    struct pf_error *err)
{
	memset(dc, 0, sizeof(*dc));
	if (s->loaded)
		dc->added = xreallocarray(NULL, n == 0 ? 1 : n,
		    sizeof(*dc->added));
	if (db_prepare(s, "SELECT size, fetched FROM pending "
	    "WHERE mailbox = ? AND uidl = ?", &dc->get, what, err) == -1 ||
	    db_prepare(s, "INSERT OR IGNORE INTO seen "
	    "(mailbox, uidl, size, fetched) VALUES (?, ?, ?, ?)", &dc->insert,
	    what, err) == -1 ||
	    db_prepare(s, "DELETE FROM pending WHERE mailbox = ? AND uidl = ?",
	    &dc->drop, what, err) == -1)
		return -1;
	return 0;
}

static void
decide_free(struct decide *dc)
{
	sqlite3_finalize(dc->get);
	sqlite3_finalize(dc->insert);
	sqlite3_finalize(dc->drop);
	known_free(dc->added, dc->nadded);
	memset(dc, 0, sizeof(*dc));
}

/*
 * Decide one pending row: delivered -> into seen (and count its bytes),
 * else just drop it.  A missing pending row is the caller's bug.
 */
static int
decide_one(struct seen *s, struct decide *dc, const char *uidl,
    bool delivered, const char *what, struct pf_error *err)
{
	sqlite3_int64 size, fetched;
	int rc;

	sqlite3_bind_int64(dc->get, 1, s->mailbox);
	sqlite3_bind_text(dc->get, 2, uidl, -1, SQLITE_STATIC);
	rc = sqlite3_step(dc->get);
	if (rc != SQLITE_ROW) {
		if (rc == SQLITE_DONE)
			return pf_error_set(err, PF_FAIL_INTERNAL,
			    "%s: no pending delivery for UIDL %s", what, uidl);
		return db_fail(s, what, err);
	}
	size = sqlite3_column_int64(dc->get, 0);
	fetched = sqlite3_column_int64(dc->get, 1);
	sqlite3_reset(dc->get);

	if (delivered) {
		sqlite3_bind_int64(dc->insert, 1, s->mailbox);
		sqlite3_bind_text(dc->insert, 2, uidl, -1, SQLITE_STATIC);
		sqlite3_bind_int64(dc->insert, 3, size);
		sqlite3_bind_int64(dc->insert, 4, fetched);
		if (sqlite3_step(dc->insert) != SQLITE_DONE)
			return db_fail(s, what, err);
		/* Without a set in memory (fetch: seen_match), there is
		 * none to keep equal to the database. */
		if (sqlite3_changes(s->db) == 1) {
			dc->bytes += size;
			if (s->loaded) {
				dc->added[dc->nadded].uidl = known_uidl(s,
				    uidl);
				dc->added[dc->nadded].fetched =
				    (time_t)fetched;
				dc->added[dc->nadded].missing = 0;
				dc->nadded++;
			}
		}
		sqlite3_reset(dc->insert);
	}
	sqlite3_bind_int64(dc->drop, 1, s->mailbox);
	sqlite3_bind_text(dc->drop, 2, uidl, -1, SQLITE_STATIC);
	return db_step_done(s, dc->drop, what, err);
}

/*
 * One transaction deciding n pending rows, then recording nmore new ones;
 * on success the newly seen join the in-memory set.
 */
static int
decide_many(struct seen *s, const struct seen_entry *entries, size_t n,
    const bool *delivered, const struct seen_entry *more, size_t nmore,
    const char *what, struct pf_error *err)
{
	struct decide dc;
	sqlite3_stmt *st = NULL;
	size_t i;

	if (tx_begin(s, what, err) == -1)
		return -1;
	if (decide_prepare(s, &dc, n, what, err) == -1)
		goto fail;
	for (i = 0; i < n; i++) {
		if (decide_one(s, &dc, entries[i].uidl, delivered[i], what,
		    err) == -1)
			goto fail;
	}
	if (pending_insert(s, more, nmore, what, err) == -1)
		goto fail;
	if (dc.bytes > 0) {
		if (db_prepare(s, "UPDATE mailbox SET bytes = bytes + ? "
		    "WHERE id = ?", &st, what, err) == -1)
			goto fail;
		sqlite3_bind_int64(st, 1, dc.bytes);
		sqlite3_bind_int64(st, 2, s->mailbox);
		if (db_step_done(s, st, what, err) == -1)
			goto fail;
		sqlite3_finalize(st);
		st = NULL;
	}
	if (tx_commit(s, what, err) == -1)
		goto fail;
	known_add(s, dc.added, dc.nadded);
	dc.nadded = 0;		/* the strings now belong to the set */
	decide_free(&dc);
	return 0;

fail:
	sqlite3_finalize(st);
	tx_rollback(s);
	decide_free(&dc);
	return -1;
}

int
seen_pending_resolve(struct seen *s, const struct seen_entry *entries,
    size_t n, const bool *delivered, struct pf_error *err)
{
	if (check_writable(s, "seen_pending_resolve", err) == -1)
		return -1;
	return decide_many(s, entries, n, delivered, NULL, 0,
	    "record deliveries", err);
}

int
seen_pending_advance(struct seen *s, const struct seen_entry *entries,
    size_t n, const bool *delivered, const struct seen_entry *more,
    size_t nmore, struct pf_error *err)
{
	if (check_writable(s, "seen_pending_advance", err) == -1 ||
	    pending_check(more, nmore, "seen_pending_advance", err) == -1)
		return -1;
	return decide_many(s, entries, n, delivered, more, nmore,
	    "record deliveries", err);
}

static int
cstr_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static const char *
array_key(const void *ctx, size_t i, char *buf)
{
	(void)buf;
	return ((const char *const *)ctx)[i];
}

void
seen_keys_array(struct seen_keys *keys, const char *const *a, size_t n)
{
	keys->key = array_key;
	keys->ctx = a;
	keys->n = n;
}

/* Key i of k. */
static const char *
key_of(const struct seen_keys *k, size_t i, char buf[UIDL_INLINE_BUF])
{
	return k->key(k->ctx, i, buf);
}

/* One key of a listing, for sorting them without copying them. */
struct key_ref {
	const struct seen_keys	*k;
	size_t			 i;
};

/* key_refs in strcmp order: SQLite's BINARY collation (memcmp, then the
 * shorter first) for strings without a NUL. */
static int
ref_cmp(const void *a, const void *b)
{
	const struct key_ref *x = a, *y = b;
	char bx[UIDL_INLINE_BUF], by[UIDL_INLINE_BUF];

	return strcmp(key_of(x->k, x->i, bx), key_of(y->k, y->i, by));
}

/* bsearch of a string (the key) among sorted key_refs. */
static int
str_ref_cmp(const void *key, const void *elem)
{
	const struct key_ref *y = elem;
	char by[UIDL_INLINE_BUF];

	return strcmp(*(const char *const *)key, key_of(y->k, y->i, by));
}

/* The keys of k in strcmp order, or NULL when they are in it already
 * (Dovecot's hexadecimal UIDLs): then nothing is allocated. */
static struct key_ref *
keys_sorted(const struct seen_keys *k, bool always)
{
	char b0[UIDL_INLINE_BUF], b1[UIDL_INLINE_BUF];
	struct key_ref *sorted;
	size_t i = 1;

	if (!always)
		for (; i < k->n && strcmp(key_of(k, i - 1, (i & 1) ? b0 : b1),
		    key_of(k, i, (i & 1) ? b1 : b0)) <= 0; i++)
			;
	if (i >= k->n && !always)
		return NULL;
	sorted = xreallocarray(NULL, k->n == 0 ? 1 : k->n, sizeof(*sorted));
	for (i = 0; i < k->n; i++)
		sorted[i] = (struct key_ref){ k, i };
	qsort(sorted, k->n, sizeof(*sorted), ref_cmp);
	return sorted;
}

/* What merge_listed saw. */
struct merged {
	size_t		 rows;		/* the account's rows */
	size_t		 listed;	/* of them, listed */
	bool		 any_missing;	/* a row marked missing */
};

/*
 * The account's rows beside the n keys of a listing (repeats allowed),
 * without loading the set (doc/DESIGN.md §5.4): the keys are sorted as
 * the primary key orders the rows, and one query streams the rows in
 * that order, so the two walk side by side.  known[i] (known may be NULL)
 * is set true when keys[i] is a row, and left alone otherwise.
 */
static int
merge_listed(struct seen *s, const struct seen_keys *k, bool *known,
    struct merged *out, const char *what, struct pf_error *err)
{
	struct key_ref *sorted;
	sqlite3_stmt *st = NULL;
	char buf[UIDL_INLINE_BUF];
	size_t j = 0, n = k->n;
	int rc;

	memset(out, 0, sizeof(*out));
	if (s->db == NULL || s->mailbox == 0)
		return 0;
	sorted = keys_sorted(k, false);
	if (db_cached(s, "SELECT uidl, missing_since FROM seen "
	    "WHERE mailbox = ? ORDER BY uidl", &st, what, err) == -1) {
		free(sorted);
		return -1;
	}
	sqlite3_bind_int64(st, 1, s->mailbox);
	/* The j-th key in order, and its index. */
#define AT(j)	(sorted != NULL ? sorted[j].i : (j))
#define KEY(j)	key_of(k, AT(j), buf)
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *uidl = (const char *)sqlite3_column_text(st, 0);
		bool listed = false;
		int c = 1;

		if (uidl == NULL)
			continue;
		out->rows++;
		if (sqlite3_column_type(st, 1) != SQLITE_NULL)
			out->any_missing = true;
		while (j < n && (c = strcmp(KEY(j), uidl)) < 0)
			j++;
		for (; j < n && c == 0; j++) {
			listed = true;
			if (known != NULL)
				known[AT(j)] = true;
			if (j + 1 < n)
				c = strcmp(KEY(j + 1), uidl);
		}
		if (listed)
			out->listed++;
	}
#undef KEY
#undef AT
	free(sorted);
	if (rc != SQLITE_DONE) {
		db_fail(s, what, err);
		db_release(s, st);
		return -1;
	}
	db_release(s, st);
	return 0;
}

int
seen_match(struct seen *s, const struct seen_keys *keys, bool *known,
    struct pf_error *err)
{
	struct merged m;

	return merge_listed(s, keys, known, &m, "read seen-list", err);
}

/*
 * The in-memory side of seen_prune, after its COMMIT: the same marks, the
 * same forgetting.  Returns how many were forgotten.
 */
static size_t
known_prune(struct seen *s, const struct seen_keys *listed, time_t now,
    time_t cutoff)
{
	struct key_ref *sorted = keys_sorted(listed, true);
	size_t i, o = 0, forgotten = 0, n = listed->n;

	for (i = 0; i < s->nknown; i++) {
		struct known *k = &s->known[i];
		const char *key = k->uidl;

		if (n > 0 && bsearch(&key, sorted, n, sizeof(*sorted),
		    str_ref_cmp) != NULL)
			k->missing = 0;
		else if (k->missing == 0)
			k->missing = now;
		if (k->missing != 0 && k->missing <= cutoff)
			forgotten++;	/* its string stays in the pool */
		else
			s->known[o++] = *k;
	}
	s->nknown = o;
	s->hint = 0;
	free(sorted);
	return forgotten;
}

/* Bind ?1 to the account and run one statement of seen_prune. */
static int
prune_step(struct seen *s, const char *sql, time_t t, const char *what,
    struct pf_error *err)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (db_prepare(s, sql, &st, what, err) == -1)
		return -1;
	sqlite3_bind_int64(st, 1, s->mailbox);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)t);
	rc = db_step_done(s, st, what, err);
	sqlite3_finalize(st);
	return rc;
}

/* seen_prune, and with known != NULL seen_match's marks too, from the
 * same pass: what pruning changes is not listed. */
static int
prune(struct seen *s, const struct seen_keys *listed, time_t now,
    int64_t forget_after, bool *known, size_t *pruned_r,
    struct pf_error *err)
{
	const char *what = "update seen-list";
	sqlite3_stmt *st = NULL;
	char buf[UIDL_INLINE_BUF];
	size_t i, nlisted = 0, rows, forgotten, n = listed->n;
	bool marked = false;
	time_t cutoff = (time_t)((int64_t)now - forget_after);

	if (pruned_r != NULL)
		*pruned_r = 0;
	if (check_writable(s, "seen_prune", err) == -1)
		return -1;
	/* The common case: every known UIDL is still listed and none was
	 * missing before: nothing to write.  Without the set in memory, one
	 * streamed query tells. */
	if (s->loaded) {
		for (i = 0; i < n; i++)
			if (seen_contains(s, key_of(listed, i, buf))) {
				nlisted++;
				if (known != NULL)
					known[i] = true;
			}
		for (i = 0; i < s->nknown && !marked; i++)
			marked = s->known[i].missing != 0;
		rows = s->nknown;
	} else {
		struct merged m;

		if (merge_listed(s, listed, known, &m, what, err) == -1)
			return -1;
		nlisted = m.listed;
		marked = m.any_missing;
		rows = m.rows;
	}
	if (nlisted == rows && !marked)
		return 0;
	/* The listing goes into a temporary table, then one statement per
	 * change: fast for tens of thousands of UIDLs. */
	if (tx_begin(s, what, err) == -1 ||
	    db_exec(s, "CREATE TEMP TABLE IF NOT EXISTS listed "
	    "(uidl TEXT PRIMARY KEY) WITHOUT ROWID; DELETE FROM temp.listed",
	    what, err) == -1 ||
	    db_prepare(s, "INSERT OR IGNORE INTO temp.listed (uidl) VALUES (?)",
	    &st, what, err) == -1)
		goto fail;
	for (i = 0; i < n; i++) {
		sqlite3_bind_text(st, 1, key_of(listed, i, buf), -1,
		    SQLITE_TRANSIENT);
		if (db_step_done(s, st, what, err) == -1)
			goto fail;
	}
	sqlite3_finalize(st);
	st = NULL;
	if (prune_step(s, "UPDATE seen SET missing_since = NULL WHERE "
	    "mailbox = ?1 AND missing_since IS NOT NULL AND ?2 = ?2 AND "
	    "uidl IN (SELECT uidl FROM temp.listed)", now, what, err) == -1 ||
	    prune_step(s, "UPDATE seen SET missing_since = ?2 WHERE "
	    "mailbox = ?1 AND missing_since IS NULL AND "
	    "uidl NOT IN (SELECT uidl FROM temp.listed)", now, what,
	    err) == -1 ||
	    prune_step(s, "DELETE FROM seen WHERE mailbox = ?1 AND "
	    "missing_since IS NOT NULL AND missing_since <= ?2", cutoff, what,
	    err) == -1)
		goto fail;
	forgotten = (size_t)sqlite3_changes(s->db);
	if (db_exec(s, "DELETE FROM temp.listed", what, err) == -1 ||
	    tx_commit(s, what, err) == -1)
		goto fail;
	i = s->loaded ? known_prune(s, listed, now, cutoff) : forgotten;
	if (pruned_r != NULL)
		*pruned_r = i;
	return 0;

fail:
	sqlite3_finalize(st);
	tx_rollback(s);
	return -1;
}

int
seen_prune(struct seen *s, const char *const *listed, size_t n, time_t now,
    int64_t forget_after, size_t *pruned_r, struct pf_error *err)
{
	struct seen_keys k;

	seen_keys_array(&k, listed, n);
	return prune(s, &k, now, forget_after, NULL, pruned_r, err);
}

int
seen_prune_match(struct seen *s, const struct seen_keys *listed,
    time_t now, int64_t forget_after, bool *known, size_t *pruned_r,
    struct pf_error *err)
{
	return prune(s, listed, now, forget_after, known, pruned_r, err);
}

int
seen_forget(struct seen *s, const char *const *keys, size_t n,
    struct pf_error *err)
{
	const char *what = "forget deleted messages";
	sqlite3_stmt *st = NULL;
	size_t i, o;

	if (check_writable(s, "seen_forget", err) == -1)
		return -1;
	if (n == 0)
		return 0;
	if (tx_begin(s, what, err) == -1 ||
	    db_prepare(s, "DELETE FROM seen WHERE mailbox = ? AND uidl = ?",
	    &st, what, err) == -1)
		goto fail;
	for (i = 0; i < n; i++) {
		sqlite3_bind_int64(st, 1, s->mailbox);
		sqlite3_bind_text(st, 2, keys[i], -1, SQLITE_STATIC);
		if (db_step_done(s, st, what, err) == -1)
			goto fail;
	}
	sqlite3_finalize(st);
	st = NULL;
	if (tx_commit(s, what, err) == -1)
		goto fail;
	if (s->loaded) {
		const char **sorted = xreallocarray(NULL, n, sizeof(*sorted));

		memcpy(sorted, keys, n * sizeof(*sorted));
		qsort(sorted, n, sizeof(*sorted), cstr_cmp);
		for (i = 0, o = 0; i < s->nknown; i++) {
			const char *key = s->known[i].uidl;

			if (bsearch(&key, sorted, n, sizeof(*sorted),
			    cstr_cmp) == NULL)
				s->known[o++] = s->known[i];
		}
		s->nknown = o;
		s->hint = 0;
		free(sorted);
	}
	return 0;

fail:
	sqlite3_finalize(st);
	tx_rollback(s);
	return -1;
}

/*
 * The run history is not mail: a power cut may lose its last row without
 * harm, so its writes do not wait for the disk (in WAL mode, synchronous
 * = NORMAL: the WAL is synced by the next FULL commit or the next
 * checkpoint).  The seen-list's own transactions stay FULL (tx_begin).
 */
static void
history_sync(struct seen *s)
{
	(void)set_sync(s, SYNC_NORMAL, "record run", NULL);
}

int
seen_run_begin(struct seen *s, time_t start, struct pf_error *err)
{
	const char *what = "record run start";
	sqlite3_stmt *st = NULL;

	if (check_writable(s, "seen_run_begin", err) == -1)
		return -1;
	if (tx_begin_at(s, SYNC_NORMAL, what, err) == -1 ||
	    db_cached(s, "INSERT INTO run (mailbox, started) VALUES (?, ?)",
	    &st, what, err) == -1)
		goto fail;
	sqlite3_bind_int64(st, 1, s->mailbox);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)start);
	if (db_step_done(s, st, what, err) == -1)
		goto fail;
	s->run_id = sqlite3_last_insert_rowid(s->db);
	db_release(s, st);
	st = NULL;
	/* Keep the last SEEN_RUN_HISTORY runs of this mailbox: delete those
	 * older than the SEEN_RUN_HISTORY-th newest (none while there are
	 * fewer: the comparison with NULL is false).  Both sides walk
	 * run_by_mailbox; "NOT IN (... LIMIT)" built a temporary table of
	 * the kept ids on every run. */
	if (db_cached(s, "DELETE FROM run WHERE mailbox = ?1 AND id < "
	    "(SELECT id FROM run WHERE mailbox = ?1 ORDER BY id DESC "
	    "LIMIT 1 OFFSET ?2)", &st, what, err) == -1)
		goto fail;
	sqlite3_bind_int64(st, 1, s->mailbox);
	sqlite3_bind_int(st, 2, SEEN_RUN_HISTORY - 1);
	if (db_step_done(s, st, what, err) == -1)
		goto fail;
	db_release(s, st);
	st = NULL;
	if (tx_commit(s, what, err) == -1)
		goto fail;
	return 0;

fail:
	s->run_id = 0;
	db_release(s, st);
	tx_rollback(s);
	return -1;
}

int
seen_run_end(struct seen *s, time_t end, const struct seen_run_stats *stats,
    int exit_code, struct pf_error *err)
{
	const char *what = "record run end";
	sqlite3_stmt *st = NULL;
	int rc;

	if (check_writable(s, "seen_run_end", err) == -1)
		return -1;
	if (s->run_id == 0)
		return pf_error_set(err, PF_FAIL_INTERNAL,
		    "seen_run_end without seen_run_begin");
	if (db_cached(s, "UPDATE run SET ended = ?, fetched = ?, skipped = ?, "
	    "deleted = ?, bytes = ?, exit_code = ? WHERE id = ?", &st, what,
	    err) == -1)
		return -1;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)end);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)stats->fetched);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)stats->skipped);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)stats->deleted);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)stats->bytes);
	sqlite3_bind_int(st, 6, exit_code);
	sqlite3_bind_int64(st, 7, s->run_id);
	history_sync(s);
	rc = db_step_done(s, st, what, err);
	db_release(s, st);
	if (rc == 0)
		s->run_id = 0;
	return rc;
}

/* Run a one-row query about this mailbox; column 0.. go to `cols`. */
static int
query_row(struct seen *s, const char *sql, sqlite3_int64 *cols, int ncols,
    bool *null_r, bool *found_r, struct pf_error *err)
{
	sqlite3_stmt *st = NULL;
	int i, rc;

	*found_r = false;
	if (db_prepare(s, sql, &st, "read status", err) == -1)
		return -1;
	sqlite3_bind_int64(st, 1, s->mailbox);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*found_r = true;
		for (i = 0; i < ncols; i++) {
			null_r[i] = sqlite3_column_type(st, i) == SQLITE_NULL;
			cols[i] = sqlite3_column_int64(st, i);
		}
	} else if (rc != SQLITE_DONE) {
		db_fail(s, "read status", err);
		sqlite3_finalize(st);
		return -1;
	}
	sqlite3_finalize(st);
	return 0;
}

/* Fill out with the figures of row s->mailbox. */
static int
status_fill(struct seen *s, struct seen_status *out, struct pf_error *err)
{
	sqlite3_int64 v[3];
	bool null[3], found;

	memset(out, 0, sizeof(*out));
	out->last_exit = -1;
	if (s->db == NULL || s->mailbox == 0)
		return 0;
	out->ever_run = true;
	if (query_row(s, "SELECT bytes FROM mailbox WHERE id = ?", v, 1, null,
	    &found, err) == -1)
		return -1;
	out->bytes = (uint64_t)v[0];
	if (query_row(s, "SELECT count(*) FROM seen WHERE mailbox = ?", v, 1,
	    null, &found, err) == -1)
		return -1;
	out->seen = (uint64_t)v[0];
	if (query_row(s, "SELECT count(*) FROM pending WHERE mailbox = ?", v, 1,
	    null, &found, err) == -1)
		return -1;
	out->pending = (uint64_t)v[0];
	if (query_row(s, "SELECT started, ended, exit_code FROM run "
	    "WHERE mailbox = ? ORDER BY id DESC LIMIT 1", v, 3, null, &found,
	    err) == -1)
		return -1;
	if (found) {
		out->last_start = (time_t)v[0];
		out->last_end = null[1] ? 0 : (time_t)v[1];
		out->last_exit = null[2] ? -1 : (int)v[2];
	}
	return 0;
}

int
seen_status_read(const char *state_dir, const struct seen_who *who,
    struct seen_status *out, struct pf_error *err)
{
	struct seen *s;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	out->last_exit = -1;
	if ((s = seen_alloc(state_dir, who, SEEN_READ_ONLY, err)) == NULL)
		return -1;
	if (open_ro(s, err) == 0 && status_fill(s, out, err) == 0)
		rc = 0;
	seen_close(&s);
	return rc;
}

int
seen_orphans_read(const char *state_dir, const struct seen_who *who,
    struct seen_orphan **list_r, size_t *n_r, struct pf_error *err)
{
	struct seen_who one = *who;
	struct seen_orphan *list = NULL;
	sqlite3_int64 *owned = NULL;
	sqlite3_stmt *st = NULL;
	struct seen *s;
	size_t i, n = 0, cap = 0;
	int rc;

	*list_r = NULL;
	*n_r = 0;
	if (who->n == 0)
		return 0;
	one.self = 0;
	if ((s = seen_alloc(state_dir, &one, SEEN_READ_ONLY, err)) == NULL)
		return -1;
	if (open_ro(s, err) == -1)
		goto fail;
	if (s->db == NULL)
		goto done;
	/* The rows the configured accounts own or would take over. */
	owned = xcalloc(who->n, sizeof(*owned));
	for (i = 0; i < who->n; i++) {
		struct seen_who w = *who;

		w.self = i;
		free(s->name);
		free(s->user);
		free(s->host);
		s->name = xstrdup(who->all[i].account);
		s->user = xstrdup(who->all[i].user);
		s->host = host_lower(who->all[i].host);
		s->port = who->all[i].port;
		s->who = &w;
		rc = find_mailbox(s, false, err);
		s->who = NULL;
		if (rc == -1)
			goto fail;
		owned[i] = s->mailbox;
	}
	if (db_prepare(s, "SELECT id, name, legacy_key FROM mailbox ORDER BY id",
	    &st, "read status", err) == -1)
		goto fail;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		sqlite3_int64 id = sqlite3_column_int64(st, 0);
		const char *name = (const char *)sqlite3_column_text(st, 1);
		const char *key = (const char *)sqlite3_column_text(st, 2);
		bool mine = false;

		for (i = 0; i < who->n && !mine; i++)
			mine = owned[i] == id;
		if (mine)
			continue;
		if (n == cap) {
			cap = cap == 0 ? 4 : cap * 2;
			list = xreallocarray(list, cap, sizeof(*list));
		}
		list[n].label = xstrdup(name != NULL ? name :
		    key != NULL ? key : "?");
		memset(&list[n].st, 0, sizeof(list[n].st));
		n++;
		s->mailbox = id;
		/* status_fill's own statements run beside this one. */
		if (status_fill(s, &list[n - 1].st, err) == -1)
			goto fail;
	}
	if (rc != SQLITE_DONE) {
		db_fail(s, "read status", err);
		goto fail;
	}
done:
	sqlite3_finalize(st);
	free(owned);
	seen_close(&s);
	*list_r = list;
	*n_r = n;
	return 0;

fail:
	sqlite3_finalize(st);
	free(owned);
	seen_close(&s);
	seen_orphans_free(&list, n);
	return -1;
}

void
seen_orphans_free(struct seen_orphan **list_r, size_t n)
{
	size_t i;

	if (*list_r == NULL)
		return;
	for (i = 0; i < n; i++)
		free((*list_r)[i].label);
	free(*list_r);
	*list_r = NULL;
}
