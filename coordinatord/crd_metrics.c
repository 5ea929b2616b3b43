#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "crd_metrics.h"
#include "dtx.h"
#include "dtx_util.h"

/* --- histograms -------------------------------------------------------- */

void crd_hist_init(crd_hist_t *h, const double *le, unsigned nle)
{
	memset(h, 0, sizeof(*h));
	h->le = le;
	h->nle = nle < CRD_HIST_MAX ? nle : CRD_HIST_MAX - 1;
}

void crd_hist_observe(crd_hist_t *h, double v)
{
	unsigned i = 0;
	while (i < h->nle && v > h->le[i])
		i++;
	h->bucket[i]++;
	h->count++;
	h->sum += v;
}

double crd_hist_quantile(const crd_hist_t *h, double q)
{
	uint64_t want, seen = 0;
	if (h->count == 0)
		return 0;
	want = (uint64_t)ceil(q * (double)h->count);
	for (unsigned i = 0; i < h->nle; i++)
		if ((seen += h->bucket[i]) >= want)
			return h->le[i];
	return HUGE_VAL;
}

void crd_hist_write(const crd_hist_t *h, FILE *f, const char *name, const char *labels)
{
	uint64_t cum = 0;
	const char *sep = labels[0] ? "," : "";
	for (unsigned i = 0; i < h->nle; i++) {
		cum += h->bucket[i];
		fprintf(f, "%s_bucket{%s%sle=\"%g\"} %" PRIu64 "\n", name, labels, sep, h->le[i],
			cum);
	}
	fprintf(f, "%s_bucket{%s%sle=\"+Inf\"} %" PRIu64 "\n", name, labels, sep, h->count);
	fprintf(f, "%s_sum%s%s%s %.9g\n", name, labels[0] ? "{" : "", labels, labels[0] ? "}" : "",
		h->sum);
	fprintf(f, "%s_count%s%s%s %" PRIu64 "\n", name, labels[0] ? "{" : "", labels,
		labels[0] ? "}" : "", h->count);
}

/* --- the listen address -------------------------------------------------- */

int crd_listen_parse(const char *listen, struct sockaddr_storage *sa, char *why, size_t why_len)
{
	char host[64];
	const char *colon = strrchr(listen, ':');
	char *end;
	long port;

	memset(sa, 0, sizeof(*sa));
	if (!colon || (size_t)(colon - listen) >= sizeof(host)) {
		snprintf(why, why_len, "HOST:PORT wanted, e.g. 127.0.0.1:7102");
		return -1;
	}
	port = strtol(colon + 1, &end, 10);
	if (colon[1] == '\0' || *end || port < 1 || port > 65535) {
		snprintf(why, why_len, "the port must be 1-65535");
		return -1;
	}
	memcpy(host, listen, (size_t)(colon - listen));
	host[colon - listen] = '\0';
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)sa;
		host[strlen(host) - 1] = '\0';
		if (inet_pton(AF_INET6, host + 1, &s6->sin6_addr) != 1) {
			snprintf(why, why_len, "'%s' is not a numeric IPv6 address", host + 1);
			return -1;
		}
		if (!IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr))
			goto not_loopback;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		return 0;
	}
	struct sockaddr_in *s4 = (struct sockaddr_in *)sa;
	if (inet_pton(AF_INET, host, &s4->sin_addr) != 1) {
		snprintf(why, why_len, "'%s' is not a numeric IPv4 address ([::1] for IPv6)", host);
		return -1;
	}
	if ((ntohl(s4->sin_addr.s_addr) >> 24) != 127)
		goto not_loopback;
	s4->sin_family = AF_INET;
	s4->sin_port = htons((uint16_t)port);
	return 0;
not_loopback:
	snprintf(why, why_len,
		 "metrics are served on a loopback address only (127.0.0.0/8, [::1])");
	return -1;
}

/* --- the server ----------------------------------------------------------- */

#define CRD_HTTP_CONNECTIONS 256 /* open at once; each one is a descriptor */
#define CRD_HTTP_IDLE_S 2        /* a connection silent this long is closed */

struct crd_http {
	struct MHD_Daemon *d;
	int fd;
	crd_metrics_fn fn;
	void *arg;
};

static enum MHD_Result s_answer(struct MHD_Connection *c, unsigned status, const char *type,
				char *body, size_t len)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	enum MHD_Result rc;
	if (!r) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	rc = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return rc;
}

static enum MHD_Result s_request(void *cls, struct MHD_Connection *c, const char *url,
				 const char *method, const char *version, const char *upload,
				 size_t *upload_len, void **con_cls)
{
	crd_http_t *h = cls;
	char *body = NULL;
	size_t len = 0;
	FILE *f;

	if (*upload_len) {
		*upload_len = 0; /* a body is read and ignored */
		return MHD_YES;
	}
	if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD))
		return s_answer(c, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain", strdup("GET only\n"),
				9);
	if (strcmp(url, "/metrics") != 0)
		return s_answer(c, MHD_HTTP_NOT_FOUND, "text/plain", strdup("try /metrics\n"), 13);
	if (!(f = open_memstream(&body, &len)))
		return MHD_NO;
	h->fn(h->arg, f);
	fclose(f);
	return s_answer(c, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", body, len);
}

int crd_http_start(const char *listen, crd_metrics_fn fn, void *arg, crd_http_t **out, char *why,
		   size_t why_len)
{
	struct sockaddr_storage sa;
	crd_http_t *h;
	const union MHD_DaemonInfo *info;

	*out = NULL;
	if (crd_listen_parse(listen, &sa, why, why_len))
		return DTX_EINVAL;
	if (!(h = calloc(1, sizeof(*h))))
		return DTX_ENOMEM;
	h->fn = fn;
	h->arg = arg;
	/* No thread of its own: the event loop polls the epoll descriptor
	 * and calls MHD_run(), so the handler reads the loop's numbers
	 * without a lock.
	 *
	 * Idle or slow peers must not keep a scrape out: a connection
	 * silent for CRD_HTTP_IDLE_S is closed (the loop's tick runs MHD's
	 * timeouts), and there is room for CRD_HTTP_CONNECTIONS at once; at
	 * the limit MHD stops accepting and a newcomer waits in the listen
	 * backlog for the next idle one to be closed. No per-address limit:
	 * the endpoint is on loopback only, where every peer, the scraper
	 * included, has the same address. */
	errno = 0;
	h->d = MHD_start_daemon(MHD_USE_EPOLL | (sa.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0), 0,
				NULL, NULL, s_request, h, MHD_OPTION_SOCK_ADDR,
				(struct sockaddr *)&sa, MHD_OPTION_CONNECTION_LIMIT,
				(unsigned)CRD_HTTP_CONNECTIONS, MHD_OPTION_CONNECTION_TIMEOUT,
				(unsigned)CRD_HTTP_IDLE_S, MHD_OPTION_END);
	if (!h->d) {
		snprintf(why, why_len, "cannot serve metrics on %s: %s", listen,
			 errno ? strerror(errno) : "libmicrohttpd refused");
		free(h);
		return DTX_EIO;
	}
	info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_EPOLL_FD);
	h->fd = info ? info->epoll_fd : -1;
	if (h->fd < 0) {
		snprintf(why, why_len, "cannot serve metrics on %s: no epoll descriptor", listen);
		crd_http_stop(&h);
		return DTX_EIO;
	}
	*out = h;
	return 0;
}

int crd_http_fd(const crd_http_t *h)
{
	return h->fd;
}

void crd_http_run(crd_http_t *h)
{
	MHD_run(h->d);
}

void crd_http_stop(crd_http_t **hp)
{
	crd_http_t *h = *hp;
	if (!h)
		return;
	if (h->d)
		MHD_stop_daemon(h->d);
	free(h);
	*hp = NULL;
}
