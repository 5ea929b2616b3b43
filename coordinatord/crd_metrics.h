/*
 * crd_metrics.h — what coordinatord counts, and the HTTP endpoint that
 * serves it to Prometheus (libmicrohttpd, driven from the event loop: no
 * thread, no lock). The numbers themselves live in crd.c; this is the
 * histogram type and the server.
 */
#ifndef CRD_METRICS_H
#define CRD_METRICS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* A histogram of seconds with fixed upper bounds (Prometheus "le"). */
#define CRD_HIST_MAX 16
typedef struct {
	const double *le;       /* nle upper bounds, ascending */
	unsigned nle;
	uint64_t bucket[CRD_HIST_MAX]; /* not cumulative; [nle] is +Inf */
	uint64_t count;
	double sum;
} crd_hist_t;

void crd_hist_init(crd_hist_t *h, const double *le, unsigned nle);
void crd_hist_observe(crd_hist_t *h, double v);
/* The bound under which fraction q of the observations fall (an upper
 * estimate); +Inf as HUGE_VAL; 0 when empty. */
double crd_hist_quantile(const crd_hist_t *h, double q);
/* name_bucket{le="..."} lines, name_sum and name_count; labels ("" or
 * 'k="v"') go into every line. */
void crd_hist_write(const crd_hist_t *h, FILE *f, const char *name, const char *labels);

/* The HTTP server: GET /metrics answers what fn writes. */
typedef struct crd_http crd_http_t;
typedef void (*crd_metrics_fn)(void *arg, FILE *f);

/* listen is "HOST:PORT" (numeric, loopback). 0, or DTX_EIO with why.
 * At most 256 connections at once, each closed after 2 s without a byte:
 * idle peers cannot keep a scrape waiting for long. */
int crd_http_start(const char *listen, crd_metrics_fn fn, void *arg, crd_http_t **out, char *why,
		   size_t why_len);
/* A descriptor to poll for input; then crd_http_run(). */
int crd_http_fd(const crd_http_t *h);
/* Serve whatever is ready, never blocks; also call it now and then for
 * timeouts. */
void crd_http_run(crd_http_t *h);
void crd_http_stop(crd_http_t **h);

/* Parse "127.0.0.1:7102" or "[::1]:7102" into a socket address and refuse
 * what is not loopback. 0, or -1 with why. */
struct sockaddr_storage;
int crd_listen_parse(const char *listen, struct sockaddr_storage *sa, char *why, size_t why_len);

#endif
