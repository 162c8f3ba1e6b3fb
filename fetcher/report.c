/*
 * report.c - an account's error line, progress and summary lines, and
 * `status` as text or JSON.
 */
#include "config.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "account.h"
#include "log.h"
#include "params.h"
#include "report.h"

double
report_clock(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

const char *
report_bytes(uint64_t n, char *buf, size_t size)
{
	if (n < 1000)
		snprintf(buf, size, "%" PRIu64 " B", n);
	else if (n < 1000 * 1000)
		snprintf(buf, size, "%.1f kB", (double)n / 1e3);
	else if (n < (uint64_t)1000 * 1000 * 1000)
		snprintf(buf, size, "%.1f MB", (double)n / 1e6);
	else
		snprintf(buf, size, "%.1f GB", (double)n / 1e9);
	return buf;
}

int
report_error(const char *name, const struct pf_error *err)
{
	char buf[PF_ERROR_WHAT_MAX + PF_ERROR_SERVER_MAX + 8];

	log_errx("%s: %s", name, pf_error_format(err, buf, sizeof(buf)));
	return pf_exit_code(err->category);
}

/* ---- progress and summary ---- */

void
progress_draw(struct progress *p, bool force)
{
	char line[512], b1[32], b2[32];
	double t = report_clock(), el = t - p->t0;
	uint64_t bytes = p->bytes + p->cur;

	if (!p->on || (!force && t - p->last_draw < PROGRESS_INTERVAL))
		return;
	p->last_draw = t;
	snprintf(line, sizeof(line), "%s: %lu/%zu messages, %s, %s/s, "
	    "%.1f s", p->name, p->done, p->total,
	    report_bytes(bytes, b1, sizeof(b1)),
	    report_bytes(el > 0 ? (uint64_t)((double)bytes / el) : 0, b2,
	    sizeof(b2)), el);
	log_progress(line);
	p->drawn = true;
}

void
progress_erase(struct progress *p)
{
	if (p->drawn)
		log_progress_clear();
	p->drawn = false;
}

void
report_summary(const char *name, unsigned long fetched, unsigned long skipped,
    unsigned long deleted, long discarded, uint64_t bytes, double seconds,
    bool dry_run)
{
	char b1[32], b2[48] = "";

	if (discarded >= 0)
		snprintf(b2, sizeof(b2), ", %ld discarded", discarded);
	log_info("%s: %lu new, %lu skipped, %lu deleted%s, %s in %.1f s%s",
	    name, fetched, skipped, deleted, b2, report_bytes(bytes, b1,
	    sizeof(b1)), seconds, dry_run ? " (dry run: nothing fetched, "
	    "written or deleted)" : "");
}

/* ---- status ---- */

/* Append a JSON string literal of s (escaped) to out. */
static void
json_string(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(out, "\\%c", c);
		else if (c < 0x20)
			fprintf(out, "\\u%04x", c);
		else
			fputc(c, out);
	}
	fputc('"', out);
}

static void
json_time(FILE *out, time_t t)
{
	char buf[32];
	struct tm tm;

	if (t == 0) {
		fputs("null", out);
		return;
	}
	gmtime_r(&t, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	fprintf(out, "\"%s\"", buf);
}

/* One status line or JSON object; `orphan`: no configured account owns
 * this seen-list any more (DESIGN §2). */
static void
print_status(const char *name, const struct seen_status *st, bool json,
    bool first, bool orphan, FILE *out)
{
	char b1[32], when[64];
	struct tm tm;
	bool finished = st->ever_run && st->last_end != 0 && st->last_exit >= 0;

	if (json) {
		fputs(first ? "\n  {" : ",\n  {", out);
		fputs("\"account\": ", out);
		json_string(out, name);
		fprintf(out, ", \"seen\": %" PRIu64 ", \"bytes\": %" PRIu64
		    ", \"last_run_start\": ", st->seen, st->bytes);
		json_time(out, st->ever_run ? st->last_start : 0);
		fputs(", \"last_run_end\": ", out);
		json_time(out, finished ? st->last_end : 0);
		if (finished)
			fprintf(out, ", \"last_exit\": %d", st->last_exit);
		else
			fputs(", \"last_exit\": null", out);
		fprintf(out, ", \"pending\": %" PRIu64 "%s}", st->pending,
		    orphan ? ", \"configured\": false" : "");
		return;
	}
	if (!st->ever_run || st->last_start == 0) {
		fprintf(out, "%s: %" PRIu64 " seen, %s fetched, never run, %"
		    PRIu64 " pending%s\n", name, st->seen,
		    report_bytes(st->bytes, b1, sizeof(b1)), st->pending,
		    orphan ? " (not in the configuration)" : "");
		return;
	}
	localtime_r(&st->last_start, &tm);
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
	fprintf(out, "%s: %" PRIu64 " seen, %s fetched, last run %s %s, %"
	    PRIu64 " pending%s\n", name, st->seen,
	    report_bytes(st->bytes, b1, sizeof(b1)), when,
	    finished ? pf_exit_meaning(st->last_exit) : "interrupted",
	    st->pending, orphan ? " (not in the configuration)" : "");
}

/* One account's status; its exit code. */
static int
status_account(const struct conf *conf, const struct conf_account *acct,
    bool json, bool first, FILE *out)
{
	struct seen_owner *owners;
	struct seen_status st;
	struct seen_who who;
	struct pf_error err;
	int rc;

	pf_error_clear(&err);
	memset(&st, 0, sizeof(st));
	owners = account_owners(conf);
	account_who(conf, owners, acct, &who);
	rc = seen_status_read(conf->state_dir, &who, &st, &err);
	free(owners);
	if (rc == -1) {
		if (json) {
			fputs(first ? "\n" : ",\n", out);
			fputs("  {\"account\": ", out);
			json_string(out, acct->name);
			fputs(", \"seen\": 0, \"bytes\": 0, \"last_run_start\": "
			    "null, \"last_run_end\": null, \"last_exit\": null, "
			    "\"pending\": 0}", out);
		}
		return report_error(acct->name, &err);
	}
	print_status(acct->name, &st, json, first, false, out);
	return 0;
}

/* The seen-lists no configured account owns; an exit code. */
static int
status_orphans(const struct conf *conf, bool json, bool first, FILE *out)
{
	struct seen_orphan *list = NULL;
	struct seen_owner *owners;
	struct seen_who who;
	struct pf_error err;
	size_t i, n = 0;
	int rc;

	if (conf->naccounts == 0)
		return 0;
	pf_error_clear(&err);
	owners = account_owners(conf);
	account_who(conf, owners, &conf->accounts[0], &who);
	rc = seen_orphans_read(conf->state_dir, &who, &list, &n, &err);
	free(owners);
	if (rc == -1)
		return report_error("status", &err);
	for (i = 0; i < n; i++)
		print_status(list[i].label, &list[i].st, json, first && i == 0,
		    true, out);
	seen_orphans_free(&list, n);
	return 0;
}

void
report_status(const struct conf *conf, const struct conf_account *const *sel,
    size_t n, bool orphans, bool json, FILE *out, int *codes)
{
	size_t i;

	if (json)
		fputs("[", out);
	for (i = 0; i < n; i++)
		codes[i] = status_account(conf, sel[i], json, i == 0, out);
	codes[n] = orphans ? status_orphans(conf, json, n == 0, out) : 0;
	if (json)
		fputs(n > 0 ? "\n]\n" : "]\n", out);
}
