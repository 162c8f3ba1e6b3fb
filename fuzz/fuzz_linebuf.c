/*
 * fuzz_linebuf.c - the status-line reader (fetcher/linebuf.h) fed through its
 * read callback in arbitrary chunkings.
 *
 * Input: byte P (buffer sizes: bit 7 set, the real POP3 ones; otherwise
 * line_max = 2 + P % 64 and capacity = line_max + 1 + byte R), byte R, byte
 * C (after each line, consume C % 8 raw bytes through peek/consume, as the
 * RETR path does), then the chunk schedule of fuzz_util.h (a schedule byte
 * 0 makes that read fail like a timeout), then the stream.
 *
 * Every result is checked against a plain model of the stream: each line
 * is exactly the next bytes up to LF (one CR before it dropped), nothing
 * is lost or repeated, "too long" / "control character" / "connection
 * lost" happen exactly where the model says, and a transport error is
 * passed through unchanged.
 */
#include "config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "error.h"
#include "fuzz_util.h"
#include "linebuf.h"
#include "log.h"
#include "params.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct feed {
	const uint8_t	*data;
	size_t		 len;
	size_t		 pos;
	struct fz_sched	 sched;
	bool		 failed;	/* a read failed on purpose */
};

static ssize_t
feed_read(void *ctx, void *buf, size_t len, struct pf_error *err)
{
	struct feed *f = ctx;
	size_t n = f->len - f->pos, max;
	uint8_t b;

	FZ_CHECK(len > 0);
	if (n == 0)
		return 0;
	b = fz_sched_next(&f->sched);
	if (b == 0) {
		f->failed = true;
		return pf_error_set(err, PF_FAIL_TEMP, "fuzz: timeout");
	}
	max = fz_chunk_max(b);
	if (n > len)
		n = len;
	if (n > max)
		n = max;
	memcpy(buf, f->data + f->pos, n);
	f->pos += n;
	return (ssize_t)n;
}

static bool
bad_byte(unsigned char c)
{
	return (c < 0x20 && c != '\t') || c == 0x7f;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log_init(-1, false);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct linebuf *lb;
	struct feed f;
	struct pf_error err;
	const uint8_t *d = data, *nl;
	uint8_t *copy;
	size_t len = size, cap, line_max, rawn, cursor = 0, remain, content, i;
	size_t llen, avail;
	const char *line, *raw;
	bool has_bad;
	enum linebuf_result rc;

	if (len < 3)
		return 0;
	if (d[0] & 0x80) {
		line_max = POP3_LINE_MAX;
		cap = NET_READ_BUF;
	} else {
		line_max = 2 + d[0] % 64;
		cap = line_max + 1 + d[1];
	}
	rawn = d[2] % 8;
	d += 3;
	len -= 3;
	memset(&f, 0, sizeof(f));
	fz_sched_take(&f.sched, &d, &len);
	/* An exact-size copy, so that ASan sees any overread. */
	copy = malloc(len > 0 ? len : 1);
	FZ_CHECK(copy != NULL);
	if (len > 0)
		memcpy(copy, d, len);
	f.data = copy;
	f.len = len;

	lb = linebuf_new(cap, line_max, feed_read, &f);
	for (;;) {
		pf_error_clear(&err);
		rc = linebuf_read_line(lb, &line, &llen, &err);
		remain = len - cursor;
		nl = remain > 0 ? memchr(copy + cursor, '\n', remain) : NULL;
		if (rc == LINEBUF_LINE) {
			/* The model's next line: up to LF, one CR dropped. */
			FZ_CHECK(nl != NULL);
			content = (size_t)(nl - (copy + cursor));
			FZ_CHECK(content + 1 <= line_max);
			if (content > 0 && copy[cursor + content - 1] == '\r')
				content--;
			FZ_CHECK(llen == content);
			FZ_CHECK(memcmp(line, copy + cursor, llen) == 0);
			FZ_CHECK(line[llen] == '\0');
			for (i = 0; i < llen; i++)
				FZ_CHECK(!bad_byte((unsigned char)line[i]));
			cursor = (size_t)(nl - copy) + 1;
			/* Raw bytes after the line, as RETR reads its body. */
			if (rawn > 0) {
				raw = linebuf_peek(lb, &avail);
				FZ_CHECK(avail == linebuf_buffered(lb));
				FZ_CHECK(avail <= len - cursor);
				if (avail > rawn)
					avail = rawn;
				FZ_CHECK(avail == 0 ||
				    memcmp(raw, copy + cursor, avail) == 0);
				linebuf_consume(lb, avail);
				cursor += avail;
			}
			continue;
		}
		fz_check_error(&err);
		if (f.failed) {
			/* A transport error is passed up unchanged. */
			FZ_CHECK(rc == LINEBUF_ERROR);
			FZ_CHECK(err.category == PF_FAIL_TEMP);
			FZ_CHECK(strcmp(err.what, "fuzz: timeout") == 0);
			break;
		}
		if (err.category == PF_FAIL_PROTO &&
		    strncmp(err.what, "control character", 17) == 0) {
			/* A whole line within the limit, with a bad byte; it
			 * counts as consumed and reading goes on. */
			FZ_CHECK(rc == LINEBUF_BAD_CHAR);
			FZ_CHECK(nl != NULL);
			content = (size_t)(nl - (copy + cursor));
			FZ_CHECK(content + 1 <= line_max);
			if (content > 0 && copy[cursor + content - 1] == '\r')
				content--;
			has_bad = false;
			for (i = 0; i < content; i++)
				if (bad_byte(copy[cursor + i]))
					has_bad = true;
			FZ_CHECK(has_bad);
			cursor = (size_t)(nl - copy) + 1;
			continue;
		}
		if (err.category == PF_FAIL_PROTO) {
			/* No LF among the next line_max octets. */
			FZ_CHECK(rc == LINEBUF_TOO_LONG);
			FZ_CHECK(strncmp(err.what, "status line longer", 18) == 0);
			FZ_CHECK(remain >= line_max);
			FZ_CHECK(memchr(copy + cursor, '\n', line_max) == NULL);
			break;
		}
		/* End of stream before a whole line. */
		FZ_CHECK(rc == LINEBUF_EOF);
		FZ_CHECK(err.category == PF_FAIL_TEMP);
		FZ_CHECK(strcmp(err.what, "connection lost") == 0);
		FZ_CHECK(f.pos == len);
		FZ_CHECK(nl == NULL);
		FZ_CHECK(remain < line_max);
		break;
	}
	linebuf_free(&lb);
	FZ_CHECK(lb == NULL);
	free(copy);
	return 0;
}
