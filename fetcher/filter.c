/*
 * filter.c - the `filter` command's workers and verdicts.
 *
 * Jobs are taken in the order they were submitted, so messages reach the
 * group commit in the order they arrived; FILTER_THREADS run at once, so
 * a slow filter overlaps the transfer as the fsync threads do.
 */
#include "config.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "command.h"
#include "deliver.h"
#include "escape.h"
#include "filter.h"
#include "log.h"
#include "params.h"
#include "thread.h"
#include "xmalloc.h"

/* The exit status that discards a message. */
#define FILTER_EXIT_DISCARD	99

struct filter {
	char			*command;
	char			*account;
	char			*prefix;	/* "ACCOUNT: filter" */
	unsigned		 timeout;

	pthread_mutex_t		 mu;
	pthread_cond_t		 work;		/* a job to run, or stop */
	pthread_cond_t		 done;		/* a job is done */
	struct filter_job	*head, *tail;	/* submitted, not taken */
	struct filter_job	*next_run;	/* the first not started */
	size_t			 queued;
	bool			 stop;
	pthread_t		 threads[FILTER_THREADS];
	size_t			 nthreads;
	bool			 tried;		/* threads started, or not */
};

/* The verdict for a filter that exited 0 with output `out` (out_len
 * bytes: a NUL in it is output too, never the end of the line). */
static void
verdict_from_output(struct filter *f, struct filter_job *j, const char *out,
    size_t out_len)
{
	const char *nl = out != NULL ? memchr(out, '\n', out_len) : NULL;
	size_t len = out == NULL ? 0 : nl != NULL ? (size_t)(nl - out) :
	    out_len;
	char *shown;

	if (len > 0 && out[len - 1] == '\r')
		len--;
	j->verdict = FILTER_DELIVER;
	j->folder[0] = '\0';
	if (len == 0)
		return;
	if (len < sizeof(j->folder)) {
		memcpy(j->folder, out, len);
		j->folder[len] = '\0';
		if (strlen(j->folder) == len && deliver_folder_ok(j->folder))
			return;
	}
	j->folder[0] = '\0';
	shown = pf_escape_dup(out, len < 200 ? len : 200);
	j->verdict = FILTER_REFUSED;
	pf_error_set(&j->why, PF_FAIL_TEMP, "the filter named the folder "
	    "\"%s\", which is not a folder name", shown);
	free(shown);
	(void)f;
}

/* Run the filter for j and set its verdict. */
static void
run_job(struct filter *f, struct filter_job *j)
{
	char e_acct[512], e_uidl[512], e_size[64];
	const char *env[4];
	struct command_input in = spool_input(j->spool);
	struct command_result r;
	struct command c = {
		.line = f->command, .env = env, .in = &in, .nin = 1,
		.timeout = f->timeout, .log_prefix = f->prefix,
		.out_max = FILTER_OUT_MAX,
	};

	snprintf(e_acct, sizeof(e_acct), "POPFETCH_ACCOUNT=%s", f->account);
	snprintf(e_uidl, sizeof(e_uidl), "POPFETCH_UIDL=%s",
	    j->uidl != NULL ? j->uidl : "");
	snprintf(e_size, sizeof(e_size), "POPFETCH_SIZE=%" PRIu64,
	    spool_size(j->spool));
	env[0] = e_acct;
	env[1] = e_uidl;
	env[2] = e_size;
	env[3] = NULL;
	pf_error_clear(&j->why);
	j->verdict = FILTER_REFUSED;
	if (command_run(&c, &r, &j->why) == -1) {
		/* popfetch could not start it here and now: try again. */
		j->why.category = PF_FAIL_TEMP;
		goto out;
	}
	if (r.end == COMMAND_EXITED && r.code == 0)
		verdict_from_output(f, j, r.out, r.out_len);
	else if (r.end == COMMAND_EXITED && r.code == FILTER_EXIT_DISCARD)
		j->verdict = FILTER_DISCARD;
	else
		command_failure(&c, &r, "filter", &j->why);
	command_result_free(&r);
out:
	spool_free(&j->spool);
}

static void *
worker(void *arg)
{
	struct filter *f = arg;
	struct filter_job *j;

	pthread_mutex_lock(&f->mu);
	for (;;) {
		while (!f->stop && f->next_run == NULL)
			pthread_cond_wait(&f->work, &f->mu);
		if (f->next_run == NULL)
			break;
		j = f->next_run;
		f->next_run = j->next;
		pthread_mutex_unlock(&f->mu);
		run_job(f, j);
		pthread_mutex_lock(&f->mu);
		j->done = true;
		pthread_cond_broadcast(&f->done);
	}
	pthread_mutex_unlock(&f->mu);
	return NULL;
}

struct filter *
filter_new(const char *command, const char *account, unsigned timeout)
{
	struct filter *f = xcalloc(1, sizeof(*f));

	f->command = xstrdup(command);
	f->account = xstrdup(account);
	f->prefix = xasprintf("%s: filter", account);
	f->timeout = timeout;
	pthread_mutex_init(&f->mu, NULL);
	pthread_cond_init(&f->work, NULL);
	pthread_cond_init(&f->done, NULL);
	return f;
}

/* Start the workers at the first job; with none, jobs run in turn. */
static void
start_workers(struct filter *f)
{
	f->tried = true;
	for (; f->nthreads < FILTER_THREADS; f->nthreads++)
		if (pf_thread_start(&f->threads[f->nthreads], NULL, worker,
		    f) != 0)
			break;
	if (f->nthreads == 0)
		log_debug("%s: no thread for the filter: in turn", f->account);
}

void
filter_submit(struct filter *f, struct filter_job *j)
{
	j->next = NULL;
	j->done = false;
	if (!f->tried)
		start_workers(f);
	pthread_mutex_lock(&f->mu);
	if (f->tail != NULL)
		f->tail->next = j;
	else
		f->head = j;
	f->tail = j;
	f->queued++;
	if (f->nthreads > 0) {
		if (f->next_run == NULL)
			f->next_run = j;
		pthread_cond_signal(&f->work);
		pthread_mutex_unlock(&f->mu);
		return;
	}
	pthread_mutex_unlock(&f->mu);
	run_job(f, j);
	j->done = true;
}

struct filter_job *
filter_take(struct filter *f, bool wait)
{
	struct filter_job *j;

	pthread_mutex_lock(&f->mu);
	while (wait && f->head != NULL && !f->head->done)
		pthread_cond_wait(&f->done, &f->mu);
	j = f->head;
	if (j == NULL || !j->done) {
		pthread_mutex_unlock(&f->mu);
		return NULL;
	}
	f->head = j->next;
	if (f->head == NULL)
		f->tail = NULL;
	f->queued--;
	pthread_mutex_unlock(&f->mu);
	j->next = NULL;
	return j;
}

size_t
filter_queued(const struct filter *f)
{
	return f->queued;
}

void
filter_free(struct filter **f_r)
{
	struct filter *f = *f_r;
	size_t i;

	if (f == NULL)
		return;
	pthread_mutex_lock(&f->mu);
	f->stop = true;
	pthread_cond_broadcast(&f->work);
	pthread_mutex_unlock(&f->mu);
	for (i = 0; i < f->nthreads; i++)
		pthread_join(f->threads[i], NULL);
	pthread_cond_destroy(&f->done);
	pthread_cond_destroy(&f->work);
	pthread_mutex_destroy(&f->mu);
	free(f->command);
	free(f->account);
	free(f->prefix);
	free(f);
	*f_r = NULL;
}
