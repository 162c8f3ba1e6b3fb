/*
 * cli.c - the command line (popfetch(1)).
 *
 *   popfetch [GLOBAL OPTIONS] [fetch] [-a NAME]... [--shard K/N] [-n] [-j N] [--progress|--no-progress]
 *   popfetch [GLOBAL OPTIONS] check  [-a NAME]... [--shard K/N]
 *   popfetch [GLOBAL OPTIONS] status [-a NAME]... [--shard K/N] [--json]
 *   popfetch [GLOBAL OPTIONS] accounts [--shard K/N]
 *   popfetch [GLOBAL OPTIONS] config [-a NAME]... [--shard K/N]
 *   popfetch [GLOBAL OPTIONS] authorize -a NAME
 *   popfetch --help | --version
 *
 * Options may stand anywhere (GNU getopt permutes), so `popfetch -a work
 * fetch -v` and `popfetch fetch -v -a work` mean the same.  The command is
 * the first operand.  Usage errors are 64 with a one-line hint; a bad or
 * missing configuration, or an unknown account, is 78.
 *
 * With several accounts, every one is attempted; the exit code is that of
 * the first failed account in config order (popfetch(1), EXIT STATUS).
 * `-j N` runs up to N accounts at once, in N job processes that each
 * fetch one account after another (doc/DESIGN.md §14); each account keeps
 * its own lock and its own protocol state; log lines are single write(2)s
 * and never interleave.
 *
 * `--shard K/N` keeps the accounts whose name hashes to K mod N
 * (lib/shard.h, doc/DESIGN.md §13), so N workers split one
 * configuration; with -a, only named accounts of that shard may be
 * named.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "account.h"
#include "check.h"
#include "cli.h"
#include "conf.h"
#include "crypto.h"
#include "error.h"
#include "log.h"
#include "oauth2.h"
#include "params.h"
#include "report.h"
#include "run.h"
#include "seen.h"
#include "shard.h"
#include "showconf.h"
#include "tls.h"
#include "xmalloc.h"

enum command {
	CMD_FETCH,
	CMD_CHECK,
	CMD_STATUS,
	CMD_ACCOUNTS,
	CMD_CONFIG,
	CMD_AUTHORIZE,
};

static const char *const command_names[] = {
	[CMD_FETCH] = "fetch",
	[CMD_CHECK] = "check",
	[CMD_STATUS] = "status",
	[CMD_ACCOUNTS] = "accounts",
	[CMD_CONFIG] = "config",
	[CMD_AUTHORIZE] = "authorize",
};

/* Long-only options. */
enum {
	OPT_SYSLOG = 256,
	OPT_PROGRESS,
	OPT_NO_PROGRESS,
	OPT_JSON,
	OPT_SHARD,
};

struct cli {
	enum command	 command;
	const char	*config_path;
	int		 verbose;
	bool		 quiet;
	bool		 use_syslog;
	char		**accounts;	/* -a NAME, in the order given */
	size_t		 naccounts;
	bool		 dry_run;
	long		 jobs;
	int		 progress;	/* -1 auto, 0 off, 1 on */
	bool		 json;
	struct shard	 shard;		/* --shard K/N; 0/1 without */
	bool		 seen_shard;
	/* which command-specific options were given, for the usage check */
	bool		 seen_account, seen_dry_run, seen_jobs, seen_progress,
			 seen_json;
	/* the first fetch-only option and the first --account, as typed
	 * ("-n", "--jobs"), for the usage error */
	char		 typed_fetch_opt[24], typed_account[24];
	const char	*unknown_command;	/* reported by cli_main */
};

static void
usage_hint(void)
{
	fprintf(stderr, "Try 'popfetch --help' for more information.\n");
}

/* A usage error: one line saying what is wrong, one line of hint; 64. */
static int __attribute__((format(printf, 1, 2)))
usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("popfetch: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	usage_hint();
	return 64;
}

static void
print_help(void)
{
	fputs(
"Usage: popfetch [OPTIONS] [COMMAND] [COMMAND OPTIONS]\n"
"Fetch mail from POP3 mailboxes into Maildir folders.\n"
"\n"
"Commands:\n"
"  fetch            fetch new mail from every enabled account (the default)\n"
"  check            connect, verify TLS, log in; show capabilities and STAT\n"
"  status           show the seen-list and last run of each account\n"
"  accounts         list the configured accounts\n"
"  config           show each account's settings and where each comes from\n"
"  authorize -a NAME  sign in to NAME's OAuth2 provider once and store its\n"
"                   tokens (accounts with oauth2_provider)\n"
"\n"
"Global options:\n"
"  -c, --config FILE   read FILE instead of the default configuration\n"
"  -v, --verbose       per-message lines; twice: protocol trace (secrets masked)\n"
"  -q, --quiet         print errors only\n"
"      --syslog        log to syslog (facility mail) instead of stderr\n"
"  -h, --help          show this help and exit\n"
"  -V, --version       show the version and library versions and exit\n"
"\n"
"Command options:\n"
"  -a, --account NAME  only this account (may be repeated; fetch, check,\n"
"                      status, config; authorize: exactly one)\n"
"  -n, --dry-run       fetch: list what would be fetched, skipped or deleted;\n"
"                      write nothing\n"
"  -j, --jobs N        fetch: fetch up to N accounts at the same time\n"
"      --progress      fetch: draw a progress line even without a terminal\n"
"      --no-progress   fetch: never draw a progress line\n"
"      --json          status: print a JSON array\n"
"      --shard K/N     only the accounts of shard K of N (0 <= K < N): those\n"
"                      whose name's FNV-1a hash is K mod N (fetch, check,\n"
"                      status, config, accounts)\n"
"\n"
"Configuration: -c FILE, else $POPFETCH_CONFIG, else\n"
"$XDG_CONFIG_HOME/popfetch/config (~/.config/popfetch/config), else\n"
"/etc/popfetch.conf.  See popfetch(1) and popfetch.conf(5).\n"
"\n"
"Exit codes: 0 ok, 64 usage, 69 TLS, 70 internal, 74 local I/O,\n"
"75 temporary, 76 protocol, 77 authentication, 78 configuration.\n",
	    stdout);
}

static void
print_version(void)
{
	printf("popfetch %s\n", PACKAGE_VERSION);
	printf("%s\n", crypto_library_version());
	printf("SQLite %s\n", seen_library_version());
	printf("libConfuse %s\n", conf_library_version());
}

static int
parse_command(const char *word, enum command *cmd_r)
{
	size_t i;

	for (i = 0; i < sizeof(command_names) / sizeof(command_names[0]); i++) {
		if (strcmp(word, command_names[i]) == 0) {
			*cmd_r = (enum command)i;
			return 0;
		}
	}
	return -1;
}

/*
 * Parse argv into *cli.  Returns -1 on success, or an exit code to return
 * at once (0 after --help/--version, 64 on a usage error).
 */
static int
parse_args(int argc, char *argv[], struct cli *cli)
{
	static const struct option longopts[] = {
		{ "config",	required_argument,	NULL, 'c' },
		{ "verbose",	no_argument,		NULL, 'v' },
		{ "quiet",	no_argument,		NULL, 'q' },
		{ "syslog",	no_argument,		NULL, OPT_SYSLOG },
		{ "account",	required_argument,	NULL, 'a' },
		{ "dry-run",	no_argument,		NULL, 'n' },
		{ "jobs",	required_argument,	NULL, 'j' },
		{ "progress",	no_argument,		NULL, OPT_PROGRESS },
		{ "no-progress", no_argument,		NULL, OPT_NO_PROGRESS },
		{ "json",	no_argument,		NULL, OPT_JSON },
		{ "shard",	required_argument,	NULL, OPT_SHARD },
		{ "help",	no_argument,		NULL, 'h' },
		{ "version",	no_argument,		NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	bool help = false, version = false;
	const char *word = NULL, *extra = NULL;
	char *end, typed[24];
	int ch, li;
	size_t i;

	opterr = 0;
	optind = 1;
	/*
	 * The leading '-' hands operands over in place (as 1) instead of
	 * letting getopt stop at the first one when POSIXLY_CORRECT is set:
	 * options may stand anywhere, whatever the environment says.
	 */
	while ((li = -1, ch = getopt_long(argc, argv, "-:c:vqa:nj:hV",
	    longopts, &li)) != -1) {
		/* The option as typed, for a usage error about it. */
		if (li >= 0)
			snprintf(typed, sizeof(typed), "--%s",
			    longopts[li].name);
		else
			snprintf(typed, sizeof(typed), "-%c", ch);
		switch (ch) {
		case 1:
			if (word == NULL)
				word = optarg;
			else if (extra == NULL)
				extra = optarg;
			break;
		case 'c':
			cli->config_path = optarg;
			break;
		case 'v':
			cli->verbose++;
			break;
		case 'q':
			cli->quiet = true;
			break;
		case OPT_SYSLOG:
			cli->use_syslog = true;
			break;
		case 'a':
			cli->accounts = xreallocarray(cli->accounts,
			    cli->naccounts + 1, sizeof(*cli->accounts));
			cli->accounts[cli->naccounts++] = optarg;
			if (!cli->seen_account)
				strcpy(cli->typed_account, typed);
			cli->seen_account = true;
			break;
		case 'n':
			cli->dry_run = true;
			cli->seen_dry_run = true;
			if (cli->typed_fetch_opt[0] == '\0')
				strcpy(cli->typed_fetch_opt, typed);
			break;
		case 'j':
			errno = 0;
			cli->jobs = strtol(optarg, &end, 10);
			if (errno != 0 || *optarg == '\0' || *end != '\0' ||
			    cli->jobs < 1 || cli->jobs > 1024)
				return usage_error("invalid number of jobs '%s' "
				    "(expected 1 to 1024)", optarg);
			cli->seen_jobs = true;
			if (cli->typed_fetch_opt[0] == '\0')
				strcpy(cli->typed_fetch_opt, typed);
			break;
		case OPT_PROGRESS:
			cli->progress = 1;
			cli->seen_progress = true;
			if (cli->typed_fetch_opt[0] == '\0')
				strcpy(cli->typed_fetch_opt, typed);
			break;
		case OPT_NO_PROGRESS:
			cli->progress = 0;
			cli->seen_progress = true;
			if (cli->typed_fetch_opt[0] == '\0')
				strcpy(cli->typed_fetch_opt, typed);
			break;
		case OPT_JSON:
			cli->json = true;
			cli->seen_json = true;
			break;
		case OPT_SHARD:
			if (shard_parse(optarg, &cli->shard) == -1)
				return usage_error("invalid shard '%s' "
				    "(expected K/N with 0 <= K < N <= %d)",
				    optarg, SHARD_MAX);
			cli->seen_shard = true;
			break;
		case 'h':
			help = true;
			break;
		case 'V':
			version = true;
			break;
		case ':':
			/* Only the last word can lack its argument. */
			if (strncmp(argv[optind - 1], "--", 2) == 0 ||
			    optopt <= 0 || optopt > 127)
				return usage_error("option '%s' needs an "
				    "argument", argv[optind - 1]);
			return usage_error("option '-%c' needs an argument",
			    optopt);
		case '?':
		default:
			if (optopt == 0)
				return usage_error("unknown option '%s'",
				    argv[optind - 1]);
			/* A known option: a long one given "=ARG". */
			for (i = 0; longopts[i].name != NULL; i++)
				if (longopts[i].val == optopt &&
				    longopts[i].has_arg == no_argument)
					return usage_error("option '--%s' "
					    "takes no argument",
					    longopts[i].name);
			if (optopt > 0x20 && optopt < 0x7f)
				return usage_error("unknown option '-%c'",
				    optopt);
			return usage_error("unknown option");
		}
	}
	if (help) {
		print_help();
		return 0;
	}
	if (version) {
		print_version();
		return 0;
	}
	/* Operands after "--" are left at argv[optind...]. */
	for (; optind < argc; optind++) {
		if (word == NULL)
			word = argv[optind];
		else if (extra == NULL)
			extra = argv[optind];
	}
	if (word != NULL && parse_command(word, &cli->command) == -1) {
		cli->unknown_command = word;	/* cli_main says it */
		return 64;
	}
	if (extra != NULL)
		return usage_error("unexpected argument '%s'", extra);
	if (cli->verbose > 0 && cli->quiet)
		return usage_error("--verbose and --quiet exclude each other");

	/* Command options that make no sense for the chosen command. */
	if (cli->seen_account && cli->command == CMD_ACCOUNTS)
		return usage_error("option '%s' does not apply to 'accounts'",
		    cli->typed_account);
	if ((cli->seen_dry_run || cli->seen_jobs || cli->seen_progress) &&
	    cli->command != CMD_FETCH)
		return usage_error("option '%s' applies only to 'fetch'",
		    cli->typed_fetch_opt);
	if (cli->seen_json && cli->command != CMD_STATUS)
		return usage_error("option '--json' applies only to 'status'");
	if (cli->seen_shard && cli->command == CMD_AUTHORIZE)
		return usage_error("option '--shard' does not apply to "
		    "'authorize'");
	if (cli->command == CMD_AUTHORIZE && cli->naccounts != 1)
		return usage_error("'authorize' needs exactly one account: "
		    "popfetch authorize -a NAME");
	return -1;
}

/* doc/DESIGN.md §11: the provider's interactive grant for one account. */
static int
cmd_authorize(const struct conf *conf, const struct conf_account *a)
{
	struct pf_error err;

	pf_error_clear(&err);
	if (a->oauth2_provider == CONF_OAUTH2_NONE) {
		pf_error_set(&err, PF_FAIL_CONFIG, "%s: account %s has no "
		    "oauth2_provider: nothing to authorize (see "
		    "popfetch.conf(5), OAUTH2)", conf->path, a->name);
		return report_error(a->name, &err);
	}
	if (oauth2_authorize(conf->state_dir, a, stdout, &err) == -1)
		return report_error(a->name, &err);
	return 0;
}

/*
 * The accounts to work on, in config order: those named with -a (each must
 * exist), else, for fetch and check, every enabled account, and for status
 * and config every account; with --shard, only those of the shard, and
 * naming an account of another shard is a usage error.  Returns 0 and a
 * new array of borrowed pointers, or 78 or 64.
 */
static int
select_accounts(const struct cli *cli, const struct conf *conf,
    const struct conf_account ***sel_r, size_t *n_r)
{
	const struct conf_account **sel;
	size_t i, j, n = 0;

	for (i = 0; i < cli->naccounts; i++) {
		if (conf_account_find(conf, cli->accounts[i]) == NULL) {
			log_errx("%s: no account named '%s'", conf->path,
			    cli->accounts[i]);
			return 78;
		}
		if (!shard_owns(&cli->shard, cli->accounts[i]))
			return usage_error("account '%s' is in shard %lu/%lu, "
			    "not in shard %lu/%lu", cli->accounts[i],
			    (unsigned long)(shard_hash(cli->accounts[i]) %
			    cli->shard.n), cli->shard.n, cli->shard.k,
			    cli->shard.n);
	}
	sel = xcalloc(conf->naccounts + 1, sizeof(*sel));
	for (i = 0; i < conf->naccounts; i++) {
		const struct conf_account *a = &conf->accounts[i];
		bool want;

		if (cli->naccounts > 0) {
			want = false;
			for (j = 0; j < cli->naccounts; j++)
				if (strcmp(cli->accounts[j], a->name) == 0)
					want = true;
		} else
			want = a->enabled || cli->command == CMD_STATUS ||
			    cli->command == CMD_CONFIG;
		if (want && shard_owns(&cli->shard, a->name))
			sel[n++] = a;
	}
	if (cli->seen_shard) {
		if (n == 0)
			log_debug("shard %lu/%lu: none of the %zu configured "
			    "accounts: nothing to do", cli->shard.k,
			    cli->shard.n, conf->naccounts);
		else
			log_debug("shard %lu/%lu: %zu of %zu accounts",
			    cli->shard.k, cli->shard.n, n, conf->naccounts);
	}
	*sel_r = sel;
	*n_r = n;
	return 0;
}

/* The popfetch(1), EXIT STATUS rule: the code of the first failed account in config order. */
static int
first_failure(const int *codes, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (codes[i] != 0)
			return codes[i];
	return 0;
}

/*
 * -j N: a pool of job processes (doc/DESIGN.md §14).  The parent hands
 * out account indices, one at a time, over a socket per job; a job
 * fetches each one as -j 1 would (run_series_begin: one state-database
 * connection and one worker thread for its accounts) and answers with
 * the account's exit code.  A job that dies leaves its account the exit
 * code it died with (70 after a signal), and the next account goes to a
 * new job.
 */
struct job {
	pid_t	 pid;		/* 0: no process */
	int	 fd;		/* the parent's end of its socket, -1: none */
	bool	 busy;		/* fetching sel[account] */
	size_t	 account;
};

/* Read or send exactly len bytes: 1, or 0 at the end, -1 on an error. */
static int
job_io(int fd, void *buf, size_t len, bool out)
{
	char *p = buf;
	size_t done = 0;

	while (done < len) {
		ssize_t r = out ?
		    send(fd, p + done, len - done, MSG_NOSIGNAL) :
		    recv(fd, p + done, len - done, 0);

		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1)
			return -1;
		if (r == 0)
			return 0;
		done += (size_t)r;
	}
	return 1;
}

/* A job process: fetch each account the parent names; at the end of
 * its socket (the parent is done, or gone), stop. */
static void __attribute__((noreturn))
job_serve(int fd, const struct conf *conf, const struct conf_account **sel,
    size_t n, const struct run_options *opts)
{
	uint32_t i;
	int code;

	run_series_begin();
	while (job_io(fd, &i, sizeof(i), false) == 1 && i < n) {
		code = run_fetch(conf, sel[i], opts);
		(void)fflush(NULL);	/* nothing of it left in a buffer */
		if (job_io(fd, &code, sizeof(code), true) != 1)
			break;
	}
	run_series_end();
	close(fd);
	/* Its copies of the parent's tables (valgrind would call them
	 * leaked at _exit). */
	free((void *)opts->owners);
	free((void *)sel);
	_exit(0);
}

/* Start job k; 0, or -1 (logged) if no process could be had. */
static int
job_start(struct job *jobs, struct pollfd *pfd, size_t njobs, size_t k,
    const struct conf *conf, const struct conf_account **sel, size_t n,
    const struct run_options *opts, int *codes)
{
	int sv[2];
	pid_t pid;
	size_t j;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1) {
		log_warn("socketpair");
		return -1;
	}
	fflush(NULL);
	if ((pid = fork()) == -1) {
		log_warn("fork");
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	if (pid == 0) {
		/* Only its own socket: another job's end kept open here
		 * would keep that job from seeing the end of its own. */
		for (j = 0; j < njobs; j++)
			if (jobs[j].fd != -1)
				close(jobs[j].fd);
		close(sv[0]);
		/* The child never returns: its copies of the parent's own
		 * tables go now. */
		free(jobs);
		free(pfd);
		free(codes);
		job_serve(sv[1], conf, sel, n, opts);
	}
	close(sv[1]);
	jobs[k] = (struct job){ .pid = pid, .fd = sv[0] };
	return 0;
}

/* Wait for job k's process and forget it.  If it held an account, that
 * account's code is the one the process ended with. */
static void
job_end(struct job *jb, const struct conf_account **sel, int *codes)
{
	int status = 0;
	pid_t r;

	if (jb->fd != -1)
		close(jb->fd);
	jb->fd = -1;
	if (jb->pid == 0)
		return;
	do
		r = waitpid(jb->pid, &status, 0);
	while (r == -1 && errno == EINTR);
	if (r == -1)
		log_warn("waitpid");
	if (jb->busy) {
		if (r != -1 && WIFEXITED(status) && WEXITSTATUS(status) != 0)
			codes[jb->account] = WEXITSTATUS(status);
		else {
			if (r != -1 && WIFSIGNALED(status))
				log_errx("%s: killed by signal %d",
				    sel[jb->account]->name, WTERMSIG(status));
			else
				log_errx("%s: the job fetching it ended "
				    "without its result", sel[jb->account]->name);
			codes[jb->account] = 70;
		}
	} else if (r != -1 && WIFSIGNALED(status))
		log_warnx("a -j job was killed by signal %d between accounts",
		    WTERMSIG(status));
	jb->pid = 0;
	jb->busy = false;
}

/* Give job jb the account i; false if it is gone (ended, not busy). */
static bool
job_give(struct job *jb, size_t i, const struct conf_account **sel,
    int *codes)
{
	uint32_t v = (uint32_t)i;

	if (job_io(jb->fd, &v, sizeof(v), true) == 1) {
		jb->busy = true;
		jb->account = i;
		return true;
	}
	job_end(jb, sel, codes);
	return false;
}

/*
 * The parent holds a socket per job: with fewer descriptors allowed than
 * `want` jobs and a reserve need, the soft limit is raised towards the hard
 * one, and failing that, fewer jobs run.
 */
static size_t
jobs_limit(size_t want)
{
	const rlim_t reserve = 64;	/* stdio, syslog, the configuration */
	struct rlimit rl;
	size_t have;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1 ||
	    rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= want + reserve)
		return want;
	if (rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want + reserve)
		rl.rlim_cur = want + reserve;
	else
		rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) == -1 &&
	    getrlimit(RLIMIT_NOFILE, &rl) == -1)
		return want;
	if (rl.rlim_cur >= want + reserve)
		return want;
	have = rl.rlim_cur > reserve ? (size_t)(rl.rlim_cur - reserve) : 1;
	log_debug("-j %zu: %llu descriptors allowed, so %zu jobs", want,
	    (unsigned long long)rl.rlim_cur, have);
	return have;
}

/*
 * Fetch the selected accounts, up to `jobs` at once: one after the other
 * in this process, or by a pool of job processes (above).
 */
static int
fetch_accounts(const struct conf *conf, const struct conf_account **sel,
    size_t n, long jobs, const struct run_options *run_opts)
{
	struct run_options o = *run_opts, *opts = &o;
	struct seen_owner *owners;
	struct job *pool;
	struct pollfd *pfd;
	int *codes, code;
	size_t i, k, next = 0, njobs, busy;

	/* Who each account is to the seen-list: made once, not per account
	 * (inherited by the jobs). */
	o.owners = owners = account_owners(conf);
	codes = xcalloc(n + 1, sizeof(*codes));
	if (jobs <= 1 || n <= 1) {
		/* One after the other: one state-database connection and
		 * one worker thread for all (run.h). */
		run_series_begin();
		for (i = 0; i < n; i++)
			codes[i] = run_fetch(conf, sel[i], opts);
		run_series_end();
		code = first_failure(codes, n);
		free(codes);
		free(owners);
		return code;
	}

	njobs = jobs_limit((size_t)jobs < n ? (size_t)jobs : n);
	pool = xcalloc(njobs, sizeof(*pool));
	pfd = xcalloc(njobs, sizeof(*pfd));
	for (k = 0; k < njobs; k++)
		pool[k] = (struct job){ .fd = -1 };
	tls_warm_up();		/* once here, not in every job */
	crypto_warm_up();
	/* The certificate stores too: each CA file loaded once here, shared
	 * by the jobs (copy-on-write) instead of parsed in each. */
	for (i = 0; i < n; i++)
		if (sel[i]->tls != CONF_TLS_NONE && sel[i]->tls_verify &&
		    !sel[i]->has_fingerprint)
			tls_preload_ca(sel[i]->tls_ca_file);
	for (;;) {
		/* Every idle job gets the next account; a job that is gone
		 * is started again.  An account no job takes now waits for
		 * the next round. */
		for (k = 0; k < njobs && next < n; k++) {
			struct job *jb = &pool[k];

			if (jb->busy)
				continue;
			if (jb->pid != 0 && job_give(jb, next, sel, codes)) {
				next++;
				continue;
			}
			if (job_start(pool, pfd, njobs, k, conf, sel, n, opts,
			    codes) == 0 && job_give(jb, next, sel, codes))
				next++;
		}
		busy = 0;
		for (k = 0; k < njobs; k++)
			if (pool[k].busy)
				pfd[busy++] = (struct pollfd){
					.fd = pool[k].fd, .events = POLLIN };
		if (busy == 0) {
			/* Not one job could be had (fork failed, or each
			 * died at once): what is left cannot be fetched. */
			for (; next < n; next++) {
				log_errx("%s: no -j job could take it",
				    sel[next]->name);
				codes[next] = 70;
			}
			break;
		}
		if (poll(pfd, busy, -1) == -1) {
			if (errno == EINTR)
				continue;
			fatal("poll");
		}
		for (k = 0, i = 0; k < njobs; k++) {
			struct job *jb = &pool[k];

			if (!jb->busy)
				continue;
			if (pfd[i++].revents == 0)
				continue;
			if (job_io(jb->fd, &code, sizeof(code), false) == 1) {
				codes[jb->account] = code;
				jb->busy = false;
			} else
				job_end(jb, sel, codes);
		}
	}
	/* No account left: each job sees the end of its socket and ends. */
	for (k = 0; k < njobs; k++)
		job_end(&pool[k], sel, codes);
	code = first_failure(codes, n);
	free(pfd);
	free(pool);
	free(codes);
	free(owners);
	return code;
}

static int
cmd_accounts(const struct conf *conf, const struct shard *shard)
{
	size_t i;

	/* NAME USER@HOST:PORT TLS MAILDIR|mda[ disabled] */
	for (i = 0; i < conf->naccounts; i++) {
		const struct conf_account *a = &conf->accounts[i];

		if (!shard_owns(shard, a->name))
			continue;
		printf("%s %s@%s:%u %s %s%s\n", a->name, a->user, a->host,
		    a->port, conf_tls_name(a->tls),
		    a->mda != NULL ? "mda" : a->maildir,
		    a->enabled ? "" : " disabled");
	}
	return fflush(stdout) == 0 ? 0 : 74;
}

/*
 * "unknown command 'work'": when the configuration loads (quietly) and
 * has an account of that name, it was probably meant as -a work.
 */
static int
unknown_command(const struct cli *cli)
{
	const char *w = cli->unknown_command;
	struct conf *conf = NULL;
	struct pf_error err;
	char *path = NULL;
	bool account = false;

	pf_error_clear(&err);
	if (conf_locate(cli->config_path, &path, &err) == 0 &&
	    conf_load(path, &conf, &err) == 0)
		account = conf_account_find(conf, w) != NULL;
	conf_free(&conf);
	free(path);
	if (account)
		return usage_error("unknown command '%s' (expected fetch, "
		    "check, status, accounts, config or authorize); did you "
		    "mean 'popfetch -a %s'?", w, w);
	return usage_error("unknown command '%s' (expected fetch, check, "
	    "status, accounts, config or authorize)", w);
}

int
cli_main(int argc, char *argv[])
{
	struct cli cli = { .command = CMD_FETCH, .jobs = 1, .progress = -1,
	    .shard = { 0, 1 } };
	const struct conf_account **sel = NULL;
	struct conf *conf = NULL;
	struct pf_error err;
	char *path = NULL;
	size_t i, n = 0;
	int code, *codes = NULL;

	pf_error_clear(&err);
	signal(SIGPIPE, SIG_IGN);
	if ((code = parse_args(argc, argv, &cli)) != -1) {
		if (cli.unknown_command != NULL)
			code = unknown_command(&cli);
		goto done;
	}
	log_init(cli.quiet ? -1 : cli.verbose, cli.use_syslog);

	if (conf_locate(cli.config_path, &path, &err) == -1 ||
	    conf_load(path, &conf, &err) == -1) {
		char buf[PF_ERROR_WHAT_MAX + PF_ERROR_SERVER_MAX];

		log_errx("%s", pf_error_format(&err, buf, sizeof(buf)));
		code = pf_exit_code(err.category);
		goto done;
	}
	if (cli.command == CMD_ACCOUNTS) {
		code = cmd_accounts(conf, &cli.shard);
		goto done;
	}
	if ((code = select_accounts(&cli, conf, &sel, &n)) != 0)
		goto done;

	switch (cli.command) {
	case CMD_FETCH: {
		/*
		 * The progress line, by default, only on a terminal and only
		 * when one account is fetched at a time: one line cannot show
		 * N parallel accounts.  --progress forces it; with -j the
		 * accounts then share the line (whichever drew last).
		 */
		bool parallel = cli.jobs > 1 && n > 1;
		struct run_options opts = {
			.dry_run = cli.dry_run,
			.progress = cli.progress == -1 ?
			    (!cli.use_syslog && !cli.quiet && !parallel &&
			     isatty(STDERR_FILENO)) : cli.progress == 1,
		};

		log_progress_mode(opts.progress);
		/* Parallel --dry-run listings reach stdout whole lines at a
		 * time (nothing was written to stdout yet). */
		if (parallel)
			setvbuf(stdout, NULL, _IOLBF, 0);
		code = fetch_accounts(conf, sel, n, cli.jobs, &opts);
		break;
	}
	case CMD_CHECK:
		codes = xcalloc(n + 1, sizeof(*codes));
		for (i = 0; i < n; i++) {
			if (i > 0)
				putchar('\n');
			codes[i] = check_account(conf, sel[i], stdout);
		}
		code = first_failure(codes, n);
		break;
	case CMD_STATUS:
		codes = xcalloc(n + 1, sizeof(*codes));
		/* Without -a, state no account owns is shown too. */
		report_status(conf, sel, n, cli.naccounts == 0, cli.json,
		    stdout, codes);
		code = first_failure(codes, n + 1);
		break;
	case CMD_CONFIG:
		show_config(conf, sel, n, stdout);
		break;
	case CMD_ACCOUNTS:
		break;
	case CMD_AUTHORIZE:
		code = cmd_authorize(conf, sel[0]);
		break;
	}
	if (fflush(stdout) != 0 && code == 0)
		code = 74;
done:
	free(codes);
	free(sel);
	free(cli.accounts);
	free(path);
	conf_free(&conf);
	return code;
}
