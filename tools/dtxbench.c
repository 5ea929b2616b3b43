/*
 * dtxbench — closed-loop load through coordinatord: N clients, each with
 * its own connection, run global transactions back to back for a while;
 * prints throughput and latency percentiles.
 *
 * --fire N instead sends N transactions at once on one connection without
 * waiting for their outcomes (keeping the connection for --seconds): a way
 * to put many transactions in flight, e.g. to measure recovery.
 *
 * Workloads (tables as the shop demo sets them up); client i uses the
 * wallet "<customer>-<i>" and the item "<item>-<i>", which must exist, so
 * that clients do not queue on one hot row:
 *   shop      one order: insert into shop.orders, charge bank.wallets,
 *             take from stock.items (3 participants)
 *   transfer  charge bank.wallets, take from stock.items (2 participants)
 */
#include "config.h"

#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dtx.h"
#include "dtx_util.h"

typedef struct {
	const char *endpoint;
	const char *workload;
	const char *customer;
	const char *item;
	unsigned clients;
	unsigned fire;
	double seconds;
	uint32_t timeout_ms;
} s_opts_t;

typedef struct {
	const s_opts_t *o;
	unsigned id;
	int64_t stop_ms;
	uint64_t committed, aborted, errors;
	uint32_t *lat_us;        /* one entry per finished transaction */
	size_t nlat, caplat;
	char last_error[600];
} s_client_t;

static dtx_tx_t *s_build(const s_opts_t *o, unsigned client, uint64_t n)
{
	dtx_tx_t *tx = dtx_tx_new();
	char ref[64], customer[96], item[96];
	if (!tx)
		return NULL;
	snprintf(customer, sizeof(customer), "%s-%u", o->customer, client);
	snprintf(item, sizeof(item), "%s-%u", o->item, client);
	if (strcmp(o->workload, "select") == 0) {
		dtx_tx_add(tx, "shop", "SELECT 1", 0, NULL, -1);
		dtx_tx_add(tx, "stock", "SELECT 1", 0, NULL, -1);
	} else if (strcmp(o->workload, "shop") == 0) {
		snprintf(ref, sizeof(ref), "bench-%d-%u-%" PRIu64, (int)getpid(), client, n);
		const char *order[] = {ref, customer, item, "1", "1"};
		const char *pay[] = {customer, "1"};
		const char *take[] = {item, "1"};
		dtx_tx_add(tx, "shop",
			   "INSERT INTO orders (ref, customer, item, qty, total) "
			   "VALUES ($1, $2, $3, $4, $5)", 5, order, 1);
		dtx_tx_add(tx, "bank",
			   "UPDATE wallets SET balance = balance - $2 "
			   "WHERE customer = $1 AND balance >= $2", 2, pay, 1);
		dtx_tx_add(tx, "stock",
			   "UPDATE items SET qty = qty - $2 WHERE item = $1 AND qty >= $2", 2, take,
			   1);
	} else {
		const char *pay[] = {customer, "1"};
		const char *take[] = {item, "1"};
		dtx_tx_add(tx, "bank", "UPDATE wallets SET balance = balance - $2 WHERE customer = $1",
			   2, pay, 1);
		dtx_tx_add(tx, "stock", "UPDATE items SET qty = qty - $2 WHERE item = $1", 2, take, 1);
	}
	if (o->timeout_ms)
		dtx_tx_set_timeout(tx, o->timeout_ms);
	return tx;
}

static void *s_client(void *arg)
{
	s_client_t *c = arg;
	dtx_client_t *cl = dtx_client_new(c->o->endpoint);
	dtx_outcome_t out;
	uint64_t n = 0;

	if (!cl) {
		snprintf(c->last_error, sizeof(c->last_error), "cannot connect to %s", c->o->endpoint);
		c->errors++;
		return NULL;
	}
	while (dtx_now_ms() < c->stop_ms) {
		dtx_tx_t *tx = s_build(c->o, c->id, n++);
		struct timespec t0, t1;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		int rc = dtx_client_run(cl, tx, &out, 30000);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		dtx_tx_destroy(&tx);
		if (rc) {
			c->errors++;
			snprintf(c->last_error, sizeof(c->last_error), "%s: %s", dtx_strerror(rc),
				 out.reason);
			if (rc == DTX_ETIMEOUT)
				break; /* this connection may hold a late answer */
			continue;
		}
		if (out.status == DTX_OUTCOME_COMMITTED)
			c->committed++;
		else {
			c->aborted++;
			snprintf(c->last_error, sizeof(c->last_error), "aborted: %s", out.reason);
		}
		if (c->nlat == c->caplat) {
			size_t cap = c->caplat ? c->caplat * 2 : 4096;
			uint32_t *l = realloc(c->lat_us, cap * sizeof(*l));
			if (!l)
				break;
			c->lat_us = l;
			c->caplat = cap;
		}
		int64_t us = (t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000;
		c->lat_us[c->nlat++] = (uint32_t)us;
	}
	dtx_client_destroy(&cl);
	return NULL;
}

static int s_fire(const s_opts_t *o)
{
	dtx_client_t *cl = dtx_client_new(o->endpoint);
	dtx_outcome_t out;
	unsigned sent = 0;

	if (!cl)
		return 1;
	for (unsigned i = 0; i < o->fire; i++) {
		dtx_tx_t *tx = s_build(o, 0, i);
		/* wait 0: send, do not wait; the answer is left unread */
		if (dtx_client_run(cl, tx, &out, 0) == DTX_ETIMEOUT)
			sent++;
		dtx_tx_destroy(&tx);
	}
	printf("fired %u transactions\n", sent);
	fflush(stdout);
	usleep((useconds_t)(o->seconds * 1e6));
	dtx_client_destroy(&cl);
	return sent == o->fire ? 0 : 1;
}

static int s_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static double s_pct(const uint32_t *v, size_t n, double p)
{
	if (!n)
		return 0;
	size_t i = (size_t)(p * (double)(n - 1) + 0.5);
	return v[i] / 1000.0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"endpoint", required_argument, NULL, 'e'}, {"clients", required_argument, NULL, 'c'},
		{"seconds", required_argument, NULL, 's'},  {"workload", required_argument, NULL, 'w'},
		{"customer", required_argument, NULL, 'u'}, {"item", required_argument, NULL, 'i'},
		{"timeout", required_argument, NULL, 't'},  {"fire", required_argument, NULL, 'f'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	s_opts_t o = {.endpoint = getenv("DTX_CLIENT"), .workload = "shop", .customer = "bench",
		      .item = "bolt", .clients = 1, .seconds = 5};
	int c;
	long long v;

	if (!o.endpoint)
		o.endpoint = "tcp://127.0.0.1:7100";
	while ((c = getopt_long(argc, argv, "e:c:s:w:h", opts, NULL)) != -1) {
		switch (c) {
		case 'e': o.endpoint = optarg; break;
		case 'c':
			if (!dtx_parse_int(optarg, 1, 4096, &v))
				goto usage;
			o.clients = (unsigned)v;
			break;
		case 's':
			o.seconds = atof(optarg);
			if (o.seconds <= 0)
				goto usage;
			break;
		case 'w':
			o.workload = optarg;
			if (strcmp(o.workload, "shop") && strcmp(o.workload, "transfer") &&
			    strcmp(o.workload, "select"))
				goto usage;
			break;
		case 'u': o.customer = optarg; break;
		case 'i': o.item = optarg; break;
		case 't':
			if (!dtx_parse_int(optarg, 1, 3600000, &v))
				goto usage;
			o.timeout_ms = (uint32_t)v;
			break;
		case 'f':
			if (!dtx_parse_int(optarg, 1, 10000000, &v))
				goto usage;
			o.fire = (unsigned)v;
			break;
		case 'h':
		default: goto usage;
		}
	}
	if (optind != argc)
		goto usage;

	if (o.fire)
		return s_fire(&o);

	s_client_t *cs = calloc(o.clients, sizeof(*cs));
	pthread_t *th = calloc(o.clients, sizeof(*th));
	if (!cs || !th)
		return 1;
	int64_t t0 = dtx_now_ms();
	for (unsigned i = 0; i < o.clients; i++) {
		cs[i] = (s_client_t){.o = &o, .id = i, .stop_ms = t0 + (int64_t)(o.seconds * 1000)};
		pthread_create(&th[i], NULL, s_client, &cs[i]);
	}
	size_t n = 0;
	uint64_t com = 0, ab = 0, err = 0;
	for (unsigned i = 0; i < o.clients; i++) {
		pthread_join(th[i], NULL);
		n += cs[i].nlat;
		com += cs[i].committed;
		ab += cs[i].aborted;
		err += cs[i].errors;
	}
	double secs = (double)(dtx_now_ms() - t0) / 1000.0;
	uint32_t *all = malloc((n ? n : 1) * sizeof(*all));
	size_t k = 0;
	for (unsigned i = 0; i < o.clients; i++) {
		memcpy(all + k, cs[i].lat_us, cs[i].nlat * sizeof(*all));
		k += cs[i].nlat;
	}
	qsort(all, n, sizeof(*all), s_cmp);
	printf("workload %s, %u clients, %.1f s: %" PRIu64 " committed, %" PRIu64 " aborted, %" PRIu64
	       " errors\n", o.workload, o.clients, secs, com, ab, err);
	printf("throughput %.0f tx/s; latency ms p50 %.2f p90 %.2f p99 %.2f p99.9 %.2f max %.2f\n",
	       (double)(com + ab) / secs, s_pct(all, n, 0.5), s_pct(all, n, 0.9), s_pct(all, n, 0.99),
	       s_pct(all, n, 0.999), n ? all[n - 1] / 1000.0 : 0.0);
	for (unsigned i = 0; i < o.clients; i++)
		if (cs[i].last_error[0]) {
			printf("last problem (client %u): %s\n", i, cs[i].last_error);
			break;
		}
	for (unsigned i = 0; i < o.clients; i++)
		free(cs[i].lat_us);
	free(all);
	free(cs);
	free(th);
	return err ? 1 : 0;
usage:
	fprintf(stderr, "usage: dtxbench [-e ENDPOINT] [-c CLIENTS] [-s SECONDS] [-w shop|transfer|select]\n"
			"                [--customer NAME] [--item NAME] [--timeout MS] [--fire N]\n");
	return 2;
}
