/*
 * http.c - HTTPS requests to OAuth2 endpoints with libcurl.  See http.h.
 *
 * libcurl is used here and nowhere else (doc/DESIGN.md §1.2), and loaded
 * at the first request (lib/dynlib.h: only OAuth2 needs it, and linking it
 * would map its whole chain into every run).  The library is initialised
 * once (pthread_once: -j runs accounts in threads).  TLS is verified as fetcher/tls.c verifies a POP3 server:
 * the peer's chain against tls_ca_file or the system store, and its host
 * name; curl does both before it sends a byte of the request.
 */
#include "config.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "crypto.h"
#include "dynlib.h"
#include "http.h"
#include "params.h"
#include "xmalloc.h"

/* The functions we use, from the library loaded at first use. */
#define CURL_FUNCS(X) \
	X(global_init) \
	X(easy_init) \
	X(slist_append) \
	X(easy_setopt) \
	X(easy_perform) \
	X(easy_getinfo) \
	X(easy_cleanup) \
	X(slist_free_all) \
	X(easy_strerror)

#define CURL_PTR(f)	__typeof__(curl_##f) *f;
#define CURL_NAME(f)	"curl_" #f,

static struct {
	CURL_FUNCS(CURL_PTR)
} cu;

static const char *const cu_names[] = { CURL_FUNCS(CURL_NAME) };

static struct dynlib cu_lib = {
	.soname = CURL_SONAME, .package = "libcurl4", .feature = "OAuth2",
	.names = cu_names, .n = sizeof(cu_names) / sizeof(cu_names[0]),
	.table = &cu,
};

_Static_assert(sizeof(cu) == sizeof(cu_names) / sizeof(cu_names[0]) *
    sizeof(void *), "one pointer per name");

static pthread_once_t	 init_once = PTHREAD_ONCE_INIT;
static CURLcode		 init_rc;

static void
init(void)
{
	init_rc = cu.global_init(CURL_GLOBAL_DEFAULT);
}

struct sink {
	char	*buf;
	size_t	 len, cap;
	bool	 too_long;
};

static size_t
on_data(char *data, size_t size, size_t nmemb, void *ctx)
{
	struct sink *k = ctx;
	size_t n = size * nmemb;

	if (n > OAUTH2_RESPONSE_MAX - k->len) {
		k->too_long = true;
		return 0;	/* stops the transfer: CURLE_WRITE_ERROR */
	}
	if (k->len + n + 1 > k->cap) {
		size_t cap = k->cap == 0 ? 4096 : k->cap;
		char *nb;

		while (cap < k->len + n + 1)
			cap *= 2;
		nb = xmalloc(cap);
		if (k->len > 0)
			memcpy(nb, k->buf, k->len);
		if (k->buf != NULL) {
			crypto_cleanse(k->buf, k->cap);
			free(k->buf);
		}
		k->buf = nb;
		k->cap = cap;
	}
	memcpy(k->buf + k->len, data, n);
	k->len += n;
	k->buf[k->len] = '\0';
	return n;
}

const char *
http_url_shown(const char *url, char *buf, size_t size)
{
	const char *start = url, *p, *at, *end;
	size_t n;

	if ((p = strstr(url, "://")) != NULL)
		start = p + 3;
	end = start + strcspn(start, "?#");
	/* user info before '@' in the authority is not shown */
	at = memchr(start, '@', (size_t)(strcspn(start, "/?#")));
	if (at != NULL)
		start = at + 1;
	n = (size_t)(end - start);
	snprintf(buf, size, "%s%.*s", p != NULL ? "https://" : "", (int)n,
	    start);
	/* Only printable ASCII of it. */
	for (p = buf; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
			buf[p - buf] = '?';
	return buf;
}

static int
classify(CURLcode rc, const char *url, const char *curl_err,
    struct pf_error *err)
{
	char shown[256];

	http_url_shown(url, shown, sizeof(shown));
	switch (rc) {
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
		return pf_error_set(err, PF_FAIL_TLS, "%s: TLS: %s "
		    "(nothing was sent)", shown, curl_err);
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return pf_error_set(err, PF_FAIL_TEMP, "%s: %s", shown,
		    curl_err);
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_URL_MALFORMAT:
		return pf_error_set(err, PF_FAIL_CONFIG, "%s: %s (only https "
		    "URLs are used)", shown, curl_err);
	case CURLE_WEIRD_SERVER_REPLY:
		return pf_error_set(err, PF_FAIL_PROTO, "%s: %s", shown,
		    curl_err);
	default:
		return pf_error_set(err, PF_FAIL_TEMP, "%s: %s", shown,
		    curl_err);
	}
}

static int
request(const char *url, const char *form, const struct http_settings *hs,
    struct http_response *resp, struct pf_error *err)
{
	char errbuf[CURL_ERROR_SIZE];
	struct sink k = { 0 };
	struct curl_slist *hdrs = NULL;
	CURLcode rc;
	CURL *c;
	long timeout = hs->timeout > 0 ? (long)hs->timeout : 60;

	memset(resp, 0, sizeof(*resp));
	if (dynlib_load(&cu_lib, err) == -1)
		return -1;
	pthread_once(&init_once, init);
	if (init_rc != CURLE_OK || (c = cu.easy_init()) == NULL)
		return pf_error_set(err, PF_FAIL_INTERNAL,
		    "libcurl cannot be initialised");
	errbuf[0] = '\0';
	hdrs = cu.slist_append(hdrs, "Accept: application/json");
	cu.easy_setopt(c, CURLOPT_URL, url);
	cu.easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
	cu.easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	cu.easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	cu.easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	cu.easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	cu.easy_setopt(c, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	if (hs->ca_file != NULL)
		cu.easy_setopt(c, CURLOPT_CAINFO, hs->ca_file);
	cu.easy_setopt(c, CURLOPT_CONNECTTIMEOUT, timeout);
	cu.easy_setopt(c, CURLOPT_TIMEOUT, timeout);
	cu.easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	cu.easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	cu.easy_setopt(c, CURLOPT_WRITEDATA, &k);
	cu.easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	cu.easy_setopt(c, CURLOPT_USERAGENT, "popfetch/" PACKAGE_VERSION);
	/* curl honours https_proxy from the environment; a proxy only
	 * tunnels (CONNECT), the TLS above stays end to end. */
	if (form != NULL) {
		cu.easy_setopt(c, CURLOPT_POST, 1L);
		cu.easy_setopt(c, CURLOPT_POSTFIELDS, form);
		cu.easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(form));
	}
	rc = cu.easy_perform(c);
	if (rc == CURLE_OK)
		cu.easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp->status);
	cu.easy_cleanup(c);
	cu.slist_free_all(hdrs);
	if (k.too_long) {
		char shown[256];

		if (k.buf != NULL) {
			crypto_cleanse(k.buf, k.cap);
			free(k.buf);
		}
		return pf_error_set(err, PF_FAIL_PROTO, "%s: answer longer "
		    "than %d bytes", http_url_shown(url, shown, sizeof(shown)),
		    OAUTH2_RESPONSE_MAX);
	}
	if (rc != CURLE_OK) {
		if (k.buf != NULL) {
			crypto_cleanse(k.buf, k.cap);
			free(k.buf);
		}
		return classify(rc, url, errbuf[0] != '\0' ? errbuf :
		    cu.easy_strerror(rc), err);
	}
	resp->body = k.buf != NULL ? k.buf : xstrdup("");
	resp->len = k.len;
	return 0;
}

int
http_post_form(const char *url, const char *form,
    const struct http_settings *hs, struct http_response *resp,
    struct pf_error *err)
{
	return request(url, form != NULL ? form : "", hs, resp, err);
}

int
http_get(const char *url, const struct http_settings *hs,
    struct http_response *resp, struct pf_error *err)
{
	return request(url, NULL, hs, resp, err);
}

void
http_response_free(struct http_response *resp)
{
	if (resp->body != NULL) {
		crypto_cleanse(resp->body, resp->len);
		free(resp->body);
	}
	resp->body = NULL;
	resp->len = 0;
}

char *
http_escape(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t len = strlen(s), i, o = 0;
	char *out = xmalloc(3 * len + 1);

	for (i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];

		if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
		    (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' ||
		    ch == '_' || ch == '~')
			out[o++] = (char)ch;
		else {
			out[o++] = '%';
			out[o++] = hex[ch >> 4];
			out[o++] = hex[ch & 15];
		}
	}
	out[o] = '\0';
	return out;
}

void
http_form_add(char **form, const char *name, const char *value)
{
	char *n = http_escape(name), *v = http_escape(value), *nf;

	nf = xasprintf("%s%s%s=%s", *form != NULL ? *form : "",
	    *form != NULL ? "&" : "", n, v);
	free(n);
	crypto_cleanse(v, strlen(v));
	free(v);
	if (*form != NULL) {
		crypto_cleanse(*form, strlen(*form));
		free(*form);
	}
	*form = nf;
}
