/*
 * dtxbench — closed-loop load: N clients, each with its own connection,
 * run global transactions back to back for a while (or a count); prints
 * throughput, latency percentiles and outcome counts, also as JSON.
 *
 * Modes (several in one invocation, so that ratios come from one run):
 *   dtx     through coordinatord, its agents and PostgreSQL;
 *   direct  the same SQL with two-phase commit driven by the bench itself
 *           over libpq: every branch prepared (in parallel across the
 *           databases), then COMMIT PREPARED on each; no coordinator, no
 *           durable decision. The ceiling dtx is measured against;
 *   null    through coordinatord to participants without a database
 *           (dtx-nullagent, named by --null): the coordinator alone.
 *
 * Workloads over the databases named by --dbs (participant names; in
 * direct mode also database names, appended to --conninfo as dbname=):
 *   transfer  move 1 unit from account c+1 of the first database to
 *             account c+1 of each other one (c: the client's number), in
 *             bench_accounts (id int PRIMARY KEY, balance bigint); with
 *             --accounts N, from and to an account drawn at random for
 *             each transaction from the client's share of 1..N (c+1,
 *             c+1+clients, ...: clients never wait for each other, so never
 *             deadlock across databases). (With one account per
 *             client, each transaction's update waits for the row lock its
 *             predecessor holds until that one's phase two: in dtx mode the
 *             client hears "committed" once the decision is logged, before
 *             COMMIT PREPARED has run.)
 *   shop      the shop demo's order over shop, bank and stock: client c
 *             buys from wallet "<customer>-c" the item "<item>-c";
 *   select    SELECT 1 in each database (branches that write nothing);
 *   saga      a saga of three steps over the three databases of --dbs
 *             A,B,C, on the transfer workload's account(s) of the client
 *             (--accounts as there), each one UPDATE with expect 1:
 *             reserve on A (compensable: -2, its compensation +2), pay on
 *             B (the pivot: +1), notify on C (retriable: +1). In dtx and
 *             null modes through the coordinator (SAGA); in direct mode
 *             the same three local transactions one after the other from
 *             the bench itself (BEGIN, UPDATE, COMMIT each: no
 *             coordinator, no barrier rows, no prepare), a failing
 *             reserve or pay compensated as the coordinator would. The
 *             summary's ratios read saga/direct.
 *
 * --fire N instead sends N transactions at once on one connection without
 * waiting for their outcomes (keeping the connection for --seconds): a way
 * to put many transactions in flight, e.g. to measure recovery.
 *
 * Each run also says where the machine's CPU went and how often each
 * program's threads blocked and were woken (cpuby.h), per transaction.
 * --wakeup-cost instead measures what one wake-up costs on this machine:
 * two threads pass a token back and forth, on one CPU and on two.
 */
#include "config.h"

#include <getopt.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "cpuby.h"
#include "dtx.h"
#include "dtx_util.h"

#define MAX_DBS 16
#define MAX_RUNS 64

enum { MODE_DTX, MODE_DIRECT, MODE_NULL, MODE__COUNT };
static const char *const s_mode_names[] = {"dtx", "direct", "null"};

typedef struct {
	const char *endpoint, *workload, *customer, *item, *conninfo;
	const char *server_key, *key; /* CURVE: the coordinator's public key file, ours */
	const char *dbs[MAX_DBS], *nulls[MAX_DBS];
	unsigned ndbs, nnulls;
	unsigned modes[MODE__COUNT], nmodes;
	unsigned clients[16], nclients;
	unsigned fire;
	unsigned accounts;       /* transfer: draw from the client's share of 1..accounts */
	uint64_t count;          /* transactions per run, 0: by time */
	double seconds, warmup;
	uint32_t timeout_ms;
	const char *json_path;
	bool progress;
} s_opts_t;

/* One statement of one branch, as every mode runs it; of the saga
 * workload, one step: its name, kind and compensation (the same
 * parameters). */
typedef struct {
	const char *db;
	const char *sql;
	int nparams;
	char params[5][96];
	const char *pv[5];
	int64_t expect;
	const char *step;     /* saga: the step's name */
	int kind;             /* saga: DTX_SAGA_* */
	const char *comp_sql; /* saga, a compensable step: its compensation */
} s_stmt_t;

typedef struct {
	s_stmt_t st[MAX_DBS];
	unsigned n;
} s_work_t;

/* The end of a run: clients done with their work wait here, connections
 * still open, until the run's figures are taken; a backend or thread that
 * had gone by then would take its wake-ups with it (cpuby.h). */
typedef struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	unsigned working;        /* clients not done yet */
	bool release;            /* figures taken: close and go */
} s_gate_t;

typedef struct {
	const s_opts_t *o;
	s_gate_t *gate;
	unsigned mode, id, nclients;
	int64_t start_ms, record_ms, stop_ms;
	uint64_t quota;          /* count mode: transactions this client runs */
	uint64_t committed, aborted, errors;
	uint64_t done;           /* read by the progress line */
	bool finished;           /* read by the progress line */
	uint32_t *lat_us;        /* one entry per recorded transaction */
	size_t nlat, caplat;
	char last_error[600];
} s_client_t;

typedef struct {
	unsigned mode, clients;
	double secs, tps, p50, p90, p99, p999, max;
	double cpu;              /* the machine's busy cores, on average; < 0: unknown */
	cpuby_entry_t by[10];    /* where that CPU went: the busiest programs */
	size_t nby;              /* entries in by[] */
	uint64_t committed, aborted, errors;
	char last_error[600];
} s_result_t;

static int64_t s_now_us(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000000 + t.tv_nsec / 1000;
}

/* The machine's busy and total CPU time so far (/proc/stat, in ticks):
 * where every process of a run competes for the same cores, CPU per
 * transaction is what throughput ratios come down to. */
static bool s_cpu_ticks(uint64_t *busy, uint64_t *total)
{
	unsigned long long v[8] = {0};
	FILE *f = fopen("/proc/stat", "r");
	if (!f)
		return false;
	int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
		       &v[4], &v[5], &v[6], &v[7]);
	fclose(f);
	if (n < 5)
		return false;
	*total = 0;
	for (int i = 0; i < 8; i++)
		*total += v[i];
	*busy = *total - v[3] - v[4]; /* idle, iowait */
	return true;
}

/* --- workloads --------------------------------------------------------- */

static void s_stmt(s_work_t *w, const char *db, const char *sql, int64_t expect, int n, ...)
{
	s_stmt_t *s = &w->st[w->n++];
	va_list ap;
	*s = (s_stmt_t){.db = db, .sql = sql, .expect = expect};
	s->nparams = n;
	va_start(ap, n);
	for (int i = 0; i < n; i++) {
		snprintf(s->params[i], sizeof(s->params[i]), "%s", va_arg(ap, const char *));
		s->pv[i] = s->params[i];
	}
	va_end(ap);
}

/* splitmix64's finaliser: a well-spread number from a counter */
static uint64_t s_mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static void s_build(const s_opts_t *o, unsigned client, unsigned nclients, uint64_t n, s_work_t *w)
{
	char a[32], b[96], c[96], ref[96];
	w->n = 0;
	if (strcmp(o->workload, "select") == 0) {
		for (unsigned i = 0; i < o->ndbs; i++)
			s_stmt(w, o->dbs[i], "SELECT 1", -1, 0);
	} else if (strcmp(o->workload, "shop") == 0) {
		snprintf(ref, sizeof(ref), "bench-%d-%u-%" PRIu64, (int)getpid(), client, n);
		snprintf(b, sizeof(b), "%s-%u", o->customer, client);
		snprintf(c, sizeof(c), "%s-%u", o->item, client);
		s_stmt(w, "shop",
		       "INSERT INTO orders (ref, customer, item, qty, total) "
		       "VALUES ($1, $2, $3, $4, $5)",
		       1, 5, ref, b, c, "1", "1");
		s_stmt(w, "bank",
		       "UPDATE wallets SET balance = balance - $2 WHERE customer = $1 AND balance "
		       ">= $2",
		       1, 2, b, "1");
		s_stmt(w, "stock", "UPDATE items SET qty = qty - $2 WHERE item = $1 AND qty >= $2",
		       1, 2, c, "1");
	} else {
		bool saga = strcmp(o->workload, "saga") == 0;
		/* the client's own account, or one drawn from the client's share
		 * of 1..accounts (client + 1 + k * nclients): clients never
		 * wait for each other, so never deadlock across databases */
		unsigned id = client + 1, share = o->accounts / (nclients ? nclients : 1);
		if (share > 1)
			id += (unsigned)(s_mix64(((uint64_t)client << 40) ^ n) % share) * nclients;
		snprintf(a, sizeof(a), "%u", id);
		snprintf(b, sizeof(b), "%d", -(int)(o->ndbs - 1));
		for (unsigned i = 0; i < o->ndbs; i++)
			s_stmt(w, o->dbs[i],
			       "UPDATE bench_accounts SET balance = balance + $2 WHERE id = $1", 1,
			       2, a, i ? "1" : b);
		if (saga) { /* three databases (main() checks): reserve, pay, notify */
			static const char *const names[] = {"reserve", "pay", "notify"};
			static const int kinds[] = {DTX_SAGA_COMPENSABLE, DTX_SAGA_PIVOT,
						    DTX_SAGA_RETRIABLE};
			for (unsigned i = 0; i < w->n; i++) {
				w->st[i].step = names[i];
				w->st[i].kind = kinds[i];
			}
			w->st[0].comp_sql =
				"UPDATE bench_accounts SET balance = balance - $2 WHERE id = $1";
		}
	}
}

/* --- dtx and null modes ------------------------------------------------ */

/* The saga of w's steps (null mode: the i-th step to the i-th null
 * participant), or NULL (out of memory). */
static dtx_saga_t *s_saga_of(const s_opts_t *o, unsigned mode, const s_work_t *w)
{
	dtx_saga_t *saga = dtx_saga_new();
	for (unsigned i = 0; saga && i < w->n; i++) {
		const s_stmt_t *s = &w->st[i];
		const char *part = mode == MODE_NULL ? o->nulls[i % o->nnulls] : s->db;
		if (dtx_saga_step(saga, s->step, part, s->kind) ||
		    dtx_saga_add(saga, s->sql, s->nparams, s->pv, s->expect) ||
		    (s->comp_sql &&
		     dtx_saga_compensate(saga, s->comp_sql, s->nparams, s->pv, s->expect)))
			dtx_saga_destroy(&saga);
	}
	if (saga && o->timeout_ms)
		dtx_saga_set_timeout(saga, o->timeout_ms);
	return saga;
}

/* The saga workload through the coordinator: one SAGA, its steps from w. */
static int s_run_dtx_saga(s_client_t *c, dtx_client_t *cl, const s_work_t *w, bool *completed)
{
	dtx_saga_t *saga = s_saga_of(c->o, c->mode, w);
	dtx_outcome_t out;
	int rc;
	if (!saga)
		return DTX_ENOMEM;
	rc = dtx_client_run_saga(cl, saga, &out, 30000);
	if (rc)
		snprintf(c->last_error, sizeof(c->last_error), "%s: %s", dtx_strerror(rc),
			 out.reason);
	else if (!(*completed = out.status == DTX_OUTCOME_COMPLETED))
		snprintf(c->last_error, sizeof(c->last_error), "%s at step %s: %s",
			 dtx_outcome_str(out.status), out.step[0] ? out.step : "-", out.reason);
	dtx_saga_destroy(&saga);
	return rc;
}

static int s_run_dtx(s_client_t *c, dtx_client_t *cl, const s_work_t *w, bool *committed)
{
	if (w->n && w->st[0].step)
		return s_run_dtx_saga(c, cl, w, committed);
	dtx_tx_t *tx = dtx_tx_new();
	dtx_outcome_t out;
	int rc = DTX_ENOMEM;
	if (!tx)
		goto done;
	for (unsigned i = 0; i < w->n; i++) {
		const s_stmt_t *s = &w->st[i];
		/* null mode: the i-th database's branch goes to the i-th null participant */
		const char *part = c->mode == MODE_NULL ? c->o->nulls[i % c->o->nnulls] : s->db;
		if ((rc = dtx_tx_add(tx, part, s->sql, s->nparams, s->pv, s->expect)))
			goto done;
	}
	if (c->o->timeout_ms)
		dtx_tx_set_timeout(tx, c->o->timeout_ms);
	rc = dtx_client_run(cl, tx, &out, 30000);
	if (rc)
		snprintf(c->last_error, sizeof(c->last_error), "%s: %s", dtx_strerror(rc),
			 out.reason);
	else if (!(*committed = out.status == DTX_OUTCOME_COMMITTED))
		snprintf(c->last_error, sizeof(c->last_error), "aborted: %s", out.reason);
done:
	dtx_tx_destroy(&tx);
	return rc;
}

/* --- direct mode: two-phase commit by hand ----------------------------- */

typedef struct {
	PGconn *conn[MAX_DBS];
	unsigned n;
} s_direct_t;

static int s_direct_open(s_client_t *c, s_direct_t *d)
{
	char ci[1024];
	d->n = c->o->ndbs;
	for (unsigned i = 0; i < d->n; i++) {
		snprintf(ci, sizeof(ci), "%s dbname=%s", c->o->conninfo, c->o->dbs[i]);
		d->conn[i] = PQconnectdb(ci);
		if (PQstatus(d->conn[i]) != CONNECTION_OK) {
			snprintf(c->last_error, sizeof(c->last_error), "cannot connect to %s: %s",
				 c->o->dbs[i], PQerrorMessage(d->conn[i]));
			return DTX_EDB;
		}
	}
	return 0;
}

static void s_direct_close(s_direct_t *d)
{
	for (unsigned i = 0; i < d->n; i++)
		PQfinish(d->conn[i]);
}

/* Collect the result of what was sent on conn; false (with the message in
 * c->last_error) if it failed or touched another row count than expected. */
static bool s_direct_result(s_client_t *c, PGconn *conn, int64_t expect)
{
	PGresult *r;
	bool ok = true;
	while ((r = PQgetResult(conn))) {
		ExecStatusType st = PQresultStatus(r);
		if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
			if (ok)
				snprintf(c->last_error, sizeof(c->last_error), "%s",
					 PQresultErrorMessage(r));
			ok = false;
		} else if (ok && expect >= 0 && atoll(PQcmdTuples(r)) != expect) {
			snprintf(c->last_error, sizeof(c->last_error),
				 "%s touched %s rows, not %" PRId64, PQcmdStatus(r), PQcmdTuples(r),
				 expect);
			ok = false;
		}
		PQclear(r);
	}
	return ok;
}

/* One step on every branch at once: send sql (or the branch's statement
 * when sql is NULL) to every database, then collect every result. */
static bool s_direct_step(s_client_t *c, s_direct_t *d, const s_work_t *w, const char *fmt,
			  const char *gid)
{
	char sql[256];
	bool ok = true, sent[MAX_DBS] = {0};
	for (unsigned i = 0; i < w->n; i++) {
		const s_stmt_t *s = &w->st[i];
		int r;
		if (fmt) {
			snprintf(sql, sizeof(sql), fmt, gid, i);
			r = PQsendQuery(d->conn[i], sql);
		} else {
			r = PQsendQueryParams(d->conn[i], s->sql, s->nparams, NULL, s->pv, NULL,
					      NULL, 0);
		}
		if (!(sent[i] = r == 1)) {
			snprintf(c->last_error, sizeof(c->last_error), "%s",
				 PQerrorMessage(d->conn[i]));
			ok = false;
		}
	}
	for (unsigned i = 0; i < w->n; i++)
		if (sent[i] && !s_direct_result(c, d->conn[i], fmt ? -1 : w->st[i].expect))
			ok = false;
	return ok;
}

static int s_run_direct(s_client_t *c, s_direct_t *d, const s_work_t *w, uint64_t n,
			bool *committed)
{
	char gid[96];
	snprintf(gid, sizeof(gid), "bench:%d:%u:%" PRIu64, (int)getpid(), c->id, n);
	/* every workload statement runs in the database of its position */
	if (!s_direct_step(c, d, w, "BEGIN /* %s %u */", gid))
		return DTX_EDB;
	if (s_direct_step(c, d, w, NULL, NULL) &&
	    s_direct_step(c, d, w, "PREPARE TRANSACTION '%s:%u'", gid)) {
		if (!s_direct_step(c, d, w, "COMMIT PREPARED '%s:%u'", gid))
			return DTX_EDB;
		*committed = true;
		return 0;
	}
	/* a NO: roll back whatever is open or prepared */
	for (unsigned i = 0; i < w->n; i++) {
		char sql[160];
		PGresult *r = PQexec(d->conn[i], "ROLLBACK");
		PQclear(r);
		snprintf(sql, sizeof(sql), "ROLLBACK PREPARED '%s:%u'", gid, i);
		PQclear(PQexec(d->conn[i], sql)); /* fails harmlessly if it was not prepared */
	}
	*committed = false;
	return 0;
}

/* One local transaction on conn: BEGIN, sql with s's parameters, COMMIT,
 * each a round trip, as an agent runs a saga's step. true: committed;
 * false (the message in c->last_error): rolled back, *broken when the
 * connection is unusable. */
static bool s_local_tx(s_client_t *c, PGconn *conn, const char *sql, const s_stmt_t *s,
		       bool *broken)
{
	PGresult *r = PQexec(conn, "BEGIN");
	bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
	PQclear(r);
	if (ok && PQsendQueryParams(conn, sql, s->nparams, NULL, s->pv, NULL, NULL, 0) != 1)
		ok = false;
	else if (ok)
		ok = s_direct_result(c, conn, s->expect);
	r = PQexec(conn, ok ? "COMMIT" : "ROLLBACK");
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		if (ok)
			snprintf(c->last_error, sizeof(c->last_error), "%s",
				 PQresultErrorMessage(r));
		ok = false;
	}
	PQclear(r);
	if (PQstatus(conn) != CONNECTION_OK) {
		snprintf(c->last_error, sizeof(c->last_error), "%s", PQerrorMessage(conn));
		*broken = true;
	}
	return ok;
}

/* The saga workload without the coordinator: each step a local
 * transaction on its database, one after the other. A reserve or pay that
 * fails turns it around: the compensable steps done are compensated, last
 * first (*completed false); a retriable step is tried again, a few times. */
static int s_run_direct_saga(s_client_t *c, s_direct_t *d, const s_work_t *w, bool *completed)
{
	bool broken = false;
	unsigned i;
	for (i = 0; i < w->n && !broken; i++) {
		const s_stmt_t *s = &w->st[i];
		bool ok = s_local_tx(c, d->conn[i], s->sql, s, &broken);
		for (int tries = 1; !ok && !broken && s->kind == DTX_SAGA_RETRIABLE && tries < 5;
		     tries++)
			ok = s_local_tx(c, d->conn[i], s->sql, s, &broken);
		if (ok)
			continue;
		if (broken || s->kind == DTX_SAGA_RETRIABLE)
			return DTX_EDB; /* after the pivot there is no turning round */
		while (i-- > 0) {
			const s_stmt_t *p = &w->st[i];
			if (p->comp_sql && !s_local_tx(c, d->conn[i], p->comp_sql, p, &broken))
				return DTX_EDB; /* a compensation that fails: not a benchmark */
		}
		*completed = false;
		return 0;
	}
	if (broken)
		return DTX_EDB;
	*completed = true;
	return 0;
}

/* --- the client loop ------------------------------------------------------ */

static void s_record(s_client_t *c, int64_t us)
{
	if (c->nlat == c->caplat) {
		size_t cap = c->caplat ? c->caplat * 2 : 4096;
		uint32_t *l = realloc(c->lat_us, cap * sizeof(*l));
		if (!l)
			return;
		c->lat_us = l;
		c->caplat = cap;
	}
	c->lat_us[c->nlat++] = (uint32_t)us;
}

/* A client of the coordinator, with CURVE when keys are given; NULL with
 * why filled. */
static dtx_client_t *s_connect(const s_opts_t *o, char *why, size_t why_len)
{
	dtx_client_t *cl;
	if (o->server_key || o->key)
		return dtx_client_new_curve(o->endpoint, o->server_key, o->key, why, why_len);
	if (!(cl = dtx_client_new(o->endpoint)))
		snprintf(why, why_len, "cannot connect to %s", o->endpoint);
	return cl;
}

static void *s_client(void *arg)
{
	s_client_t *c = arg;
	dtx_client_t *cl = NULL;
	s_direct_t d = {0};
	s_work_t w;
	uint64_t n = 0;

	if (c->mode == MODE_DIRECT) {
		if (s_direct_open(c, &d)) {
			c->errors++;
			goto out;
		}
	} else if (!(cl = s_connect(c->o, c->last_error, sizeof(c->last_error)))) {
		c->errors++;
		goto out;
	}
	for (;;) {
		int64_t now = dtx_now_ms();
		if (c->quota ? n >= c->quota : now >= c->stop_ms)
			break;
		bool committed = false;
		s_build(c->o, c->id, c->nclients, n++, &w);
		int64_t t0 = s_now_us();
		int rc = c->mode != MODE_DIRECT ? s_run_dtx(c, cl, &w, &committed)
			 : w.n && w.st[0].step  ? s_run_direct_saga(c, &d, &w, &committed)
						: s_run_direct(c, &d, &w, n, &committed);
		int64_t t1 = s_now_us();
		if (rc) {
			c->errors++;
			if (rc == DTX_ETIMEOUT || rc == DTX_EDB)
				break; /* this connection may be unusable now */
		} else if (t1 / 1000 >= c->record_ms) {
			committed ? c->committed++ : c->aborted++;
			s_record(c, t1 - t0);
		}
		__atomic_store_n(&c->done, n, __ATOMIC_RELAXED);
	}
out:
	__atomic_store_n(&c->finished, true, __ATOMIC_RELEASE);
	pthread_mutex_lock(&c->gate->mu);
	c->gate->working--;
	pthread_cond_broadcast(&c->gate->cv);
	while (!c->gate->release)
		pthread_cond_wait(&c->gate->cv, &c->gate->mu);
	pthread_mutex_unlock(&c->gate->mu);
	dtx_client_destroy(&cl);
	s_direct_close(&d);
	return NULL;
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

static int s_run(const s_opts_t *o, unsigned mode, unsigned clients, s_result_t *res)
{
	s_client_t *cs = calloc(clients, sizeof(*cs));
	pthread_t *th = calloc(clients, sizeof(*th));
	if (!cs || !th) {
		free(cs);
		free(th);
		return DTX_ENOMEM;
	}
	int64_t t0 = dtx_now_ms(), rec = t0 + (int64_t)(o->warmup * 1000);
	uint64_t busy0 = 0, total0 = 0, busy1, total1;
	bool cpu_ok = false;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	int64_t stop = rec + (int64_t)(o->seconds * 1000);
	s_gate_t gate = {.mu = PTHREAD_MUTEX_INITIALIZER,
			 .cv = PTHREAD_COND_INITIALIZER,
			 .working = clients};
	for (unsigned i = 0; i < clients; i++) {
		cs[i] = (s_client_t){.o = o,
				     .gate = &gate,
				     .mode = mode,
				     .id = i,
				     .nclients = clients,
				     .start_ms = t0,
				     .record_ms = rec,
				     .stop_ms = stop};
		if (o->count)
			cs[i].quota = o->count / clients + (i < o->count % clients);
		if (pthread_create(&th[i], NULL, s_client, &cs[i])) {
			fprintf(stderr, "dtxbench: cannot start client %u\n", i);
			exit(1);
		}
	}
	if (o->warmup > 0)
		usleep((useconds_t)(o->warmup * 1e6));
	cpu_ok = s_cpu_ticks(&busy0, &total0);
	cpuby_t *by0 = cpuby_snap();
	if (o->progress) {
		uint64_t last = 0;
		int64_t lt = t0;
		for (;;) {
			usleep(250000);
			bool alive = false;
			uint64_t done = 0;
			for (unsigned i = 0; i < clients; i++) {
				done += __atomic_load_n(&cs[i].done, __ATOMIC_RELAXED);
				alive |= !__atomic_load_n(&cs[i].finished, __ATOMIC_ACQUIRE);
			}
			int64_t now = dtx_now_ms();
			if (now - lt >= 1000 || !alive) {
				fprintf(stderr,
					"\r%-6s %3u clients %5.1f s %9" PRIu64 " tx %8.0f tx/s ",
					s_mode_names[mode], clients, (now - t0) / 1000.0, done,
					(double)(done - last) * 1000.0 / (double)(now - lt));
				last = done;
				lt = now;
			}
			if (!alive || (o->count ? done >= o->count : now >= stop))
				break;
		}
		fprintf(stderr, "\n");
	}
	/* Every client done, none gone: the figures. */
	pthread_mutex_lock(&gate.mu);
	while (gate.working)
		pthread_cond_wait(&gate.cv, &gate.mu);
	pthread_mutex_unlock(&gate.mu);
	int64_t end = dtx_now_ms();
	*res = (s_result_t){.mode = mode, .clients = clients, .cpu = -1};
	if (cpu_ok && s_cpu_ticks(&busy1, &total1) && total1 > total0 && ncpu > 0)
		res->cpu = (double)(busy1 - busy0) / (double)(total1 - total0) * (double)ncpu;
	cpuby_t *by1 = by0 ? cpuby_snap() : NULL;
	if (by1)
		res->nby = cpuby_diff(by0, by1, res->by, sizeof(res->by) / sizeof(res->by[0]));
	cpuby_destroy(&by0);
	cpuby_destroy(&by1);
	pthread_mutex_lock(&gate.mu);
	gate.release = true;
	pthread_cond_broadcast(&gate.cv);
	pthread_mutex_unlock(&gate.mu);
	size_t n = 0;
	for (unsigned i = 0; i < clients; i++) {
		pthread_join(th[i], NULL);
		n += cs[i].nlat;
		res->committed += cs[i].committed;
		res->aborted += cs[i].aborted;
		res->errors += cs[i].errors;
		if (!res->last_error[0] && cs[i].last_error[0])
			snprintf(res->last_error, sizeof(res->last_error), "%s", cs[i].last_error);
	}
	res->secs = (double)(end - (rec < end ? rec : t0)) / 1000.0;
	uint32_t *all = malloc((n ? n : 1) * sizeof(*all));
	size_t k = 0;
	for (unsigned i = 0; i < clients; i++) {
		if (all)
			memcpy(all + k, cs[i].lat_us, cs[i].nlat * sizeof(*all));
		k += cs[i].nlat;
		free(cs[i].lat_us);
	}
	if (all) {
		qsort(all, n, sizeof(*all), s_cmp);
		res->tps = res->secs > 0 ? (double)(res->committed + res->aborted) / res->secs : 0;
		res->p50 = s_pct(all, n, 0.5);
		res->p90 = s_pct(all, n, 0.9);
		res->p99 = s_pct(all, n, 0.99);
		res->p999 = s_pct(all, n, 0.999);
		res->max = n ? all[n - 1] / 1000.0 : 0;
	}
	free(all);
	free(cs);
	free(th);
	return 0;
}

/* --- fire: many in flight at once ---------------------------------------- */

static int s_fire(const s_opts_t *o)
{
	char why[1200];
	dtx_client_t *cl = s_connect(o, why, sizeof(why));
	dtx_outcome_t out;
	unsigned sent = 0;
	s_work_t w;

	if (!cl) {
		fprintf(stderr, "dtxbench: %s\n", why);
		return 1;
	}
	for (unsigned i = 0; i < o->fire; i++) {
		/* transfer and saga: each its own account (1..N must exist), so
		 * that none waits for another's row lock */
		bool own = strcmp(o->workload, "transfer") == 0 || strcmp(o->workload, "saga") == 0;
		s_build(o, own ? i : 0, o->fire, i, &w);
		if (w.st[0].step) {
			dtx_saga_t *saga = s_saga_of(o, MODE_DTX, &w);
			if (saga && dtx_client_run_saga(cl, saga, &out, 0) == DTX_ETIMEOUT)
				sent++;
			dtx_saga_destroy(&saga);
			continue;
		}
		dtx_tx_t *tx = dtx_tx_new();
		for (unsigned k = 0; tx && k < w.n; k++)
			dtx_tx_add(tx, w.st[k].db, w.st[k].sql, w.st[k].nparams, w.st[k].pv,
				   w.st[k].expect);
		if (o->timeout_ms)
			dtx_tx_set_timeout(tx, o->timeout_ms);
		/* wait 0: send, do not wait; the answer is left unread */
		if (tx && dtx_client_run(cl, tx, &out, 0) == DTX_ETIMEOUT)
			sent++;
		dtx_tx_destroy(&tx);
	}
	printf("fired %u %s\n", sent, strcmp(o->workload, "saga") ? "transactions" : "sagas");
	fflush(stdout);
	usleep((useconds_t)(o->seconds * 1e6));
	dtx_client_destroy(&cl);
	return sent == o->fire ? 0 : 1;
}

/* --- output ---------------------------------------------------------------- */

/* Program k's CPU per transaction of run r, in microseconds (0: no transactions). */
static double s_by_us(const s_result_t *r, size_t k)
{
	uint64_t tx = r->committed + r->aborted;
	return tx ? r->by[k].seconds * 1e6 / (double)tx : 0;
}

/* The machine's CPU per transaction of run r, in microseconds; with
 * free_dtx, less what coordinatord and the agents spent (what a dtx
 * transaction would cost were they free). 0: not measured. */
static double s_cpu_us(const s_result_t *r, bool free_dtx)
{
	double us = r->tps > 0 && r->cpu >= 0 ? r->cpu * 1e6 / r->tps : 0;
	for (size_t k = 0; free_dtx && us > 0 && k < r->nby; k++)
		if (strcmp(r->by[k].name, "coordinatord") == 0 ||
		    strcmp(r->by[k].name, "dtx-pgagent") == 0)
			us -= s_by_us(r, k);
	return us > 0 ? us : 0;
}

/* Per run, a figure per transaction by program: where the CPU went (µs),
 * or with wakeups how often its threads were woken. */
static void s_print_by(const s_result_t *r, unsigned n, bool wakeups)
{
	bool head = false;
	for (unsigned i = 0; i < n; i++) {
		double tx = (double)(r[i].committed + r[i].aborted);
		if (!r[i].nby || !tx)
			continue;
		if (!head)
			printf("%s per transaction by program%s:\n",
			       wakeups ? "wake-ups" : "cpu-us",
			       wakeups ? " (its threads blocked and woken)" : "");
		head = true;
		printf("  %-6s %3u:", s_mode_names[r[i].mode], r[i].clients);
		const char *sep = " ";
		for (size_t k = 0; k < r[i].nby; k++) {
			double v = wakeups ? r[i].by[k].wakeups / tx : s_by_us(&r[i], k);
			if (v < (wakeups ? 0.005 : 0.5))
				continue;
			printf("%s%s %.*f", sep, r[i].by[k].name, wakeups ? 2 : 0, v);
			sep = ", ";
		}
		printf("\n");
	}
}

static void s_print(const s_opts_t *o, const s_result_t *r, unsigned n)
{
	printf("%-6s %-8s %7s %9s %7s %7s %7s %7s %8s %9s %7s %6s %5s %7s\n", "mode", "workload",
	       "clients", "tx/s", "p50", "p90", "p99", "p99.9", "max", "committed", "aborted",
	       "errors", "cores", "cpu-us");
	for (unsigned i = 0; i < n; i++)
		printf("%-6s %-8s %7u %9.0f %7.2f %7.2f %7.2f %7.2f %8.2f %9" PRIu64 " %7" PRIu64
		       " %6" PRIu64 " %5.2f %7.0f\n",
		       s_mode_names[r[i].mode], o->workload, r[i].clients, r[i].tps, r[i].p50,
		       r[i].p90, r[i].p99, r[i].p999, r[i].max, r[i].committed, r[i].aborted,
		       r[i].errors, r[i].cpu, s_cpu_us(&r[i], false));
	printf("(latencies in ms; cores: the machine's busy cores on average during the run;\n"
	       " cpu-us: busy CPU time of the whole machine per transaction, in microseconds)\n");
	s_print_by(r, n, false);
	s_print_by(r, n, true);
	/* dtx against direct at the same number of clients; and, by CPU per
	 * transaction, what limits dtx where the machine is busy: direct's
	 * over dtx's, and over dtx's without coordinatord and the agents.
	 * The saga workload: a saga through the coordinator against its steps
	 * run one after the other by hand. */
	bool head = false, saga = strcmp(o->workload, "saga") == 0;
	for (unsigned i = 0; i < n; i++) {
		if (r[i].mode != MODE_DTX)
			continue;
		for (unsigned j = 0; j < n; j++)
			if (r[j].mode == MODE_DIRECT && r[j].clients == r[i].clients &&
			    r[j].tps > 0) {
				double d = s_cpu_us(&r[j], false), x = s_cpu_us(&r[i], false),
				       xf = s_cpu_us(&r[i], true);
				if (!head)
					printf("%-11s clients  throughput  p50 overhead (ms)"
					       "  cpu/tx  cpu/tx, crd+agents free\n",
					       saga ? "saga/direct:" : "dtx/direct:");
				head = true;
				printf("            %7u  %9.2fx  %+8.2f          %6.2fx  %6.2fx\n",
				       r[i].clients, r[i].tps / r[j].tps, r[i].p50 - r[j].p50,
				       x ? d / x : 0, xf ? d / xf : 0);
			}
	}
	if (head && saga)
		printf("(per saga: the same figures, a saga counted as one transaction)\n");
	if (head)
		printf("(cpu/tx: direct's CPU per transaction over dtx's, the throughput ratio\n"
		       " when both keep the machine busy; crd+agents free: the same were\n"
		       " coordinatord and dtx-pgagent to cost nothing)\n");
	for (unsigned i = 0; i < n; i++)
		if (r[i].last_error[0])
			printf("last problem (%s, %u clients): %s\n", s_mode_names[r[i].mode],
			       r[i].clients, r[i].last_error);
}

static int s_json(const s_opts_t *o, const s_result_t *r, unsigned n)
{
	json_object *root = json_object_new_object(), *runs = json_object_new_array();
	json_object_object_add(root, "workload", json_object_new_string(o->workload));
	json_object_object_add(root, "seconds", json_object_new_double(o->seconds));
	json_object_object_add(root, "runs", runs);
	for (unsigned i = 0; i < n; i++) {
		json_object *x = json_object_new_object(), *l = json_object_new_object();
		json_object_object_add(x, "mode", json_object_new_string(s_mode_names[r[i].mode]));
		json_object_object_add(x, "clients", json_object_new_int((int)r[i].clients));
		json_object_object_add(x, "seconds", json_object_new_double(r[i].secs));
		json_object_object_add(x, "tps", json_object_new_double(r[i].tps));
		json_object_object_add(x, "committed",
				       json_object_new_int64((int64_t)r[i].committed));
		json_object_object_add(x, "aborted", json_object_new_int64((int64_t)r[i].aborted));
		json_object_object_add(x, "errors", json_object_new_int64((int64_t)r[i].errors));
		if (r[i].cpu >= 0)
			json_object_object_add(x, "busy_cores", json_object_new_double(r[i].cpu));
		if (r[i].nby && r[i].committed + r[i].aborted) {
			json_object *by = json_object_new_object();
			for (size_t k = 0; k < r[i].nby; k++)
				json_object_object_add(by, r[i].by[k].name,
						       json_object_new_double(s_by_us(&r[i], k)));
			json_object_object_add(x, "cpu_us_by_program", by);
			json_object *w = json_object_new_object();
			double tx = (double)(r[i].committed + r[i].aborted);
			for (size_t k = 0; k < r[i].nby; k++)
				json_object_object_add(w, r[i].by[k].name,
						       json_object_new_double(r[i].by[k].wakeups /
									      tx));
			json_object_object_add(x, "wakeups_by_program", w);
		}
		json_object_object_add(l, "p50", json_object_new_double(r[i].p50));
		json_object_object_add(l, "p90", json_object_new_double(r[i].p90));
		json_object_object_add(l, "p99", json_object_new_double(r[i].p99));
		json_object_object_add(l, "p99.9", json_object_new_double(r[i].p999));
		json_object_object_add(l, "max", json_object_new_double(r[i].max));
		json_object_object_add(x, "latency_ms", l);
		if (r[i].last_error[0])
			json_object_object_add(x, "last_error",
					       json_object_new_string(r[i].last_error));
		json_object_array_add(runs, x);
	}
	int rc = strcmp(o->json_path, "-") == 0
			 ? (puts(json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY)) < 0)
			 : json_object_to_file_ext(o->json_path, root, JSON_C_TO_STRING_PRETTY);
	json_object_put(root);
	if (rc)
		fprintf(stderr, "dtxbench: cannot write %s\n", o->json_path);
	return rc ? 1 : 0;
}

/* --- options ---------------------------------------------------------------- */

/* Split a comma list in place into out[], at most max entries. */
static unsigned s_split(char *s, const char **out, unsigned max)
{
	unsigned n = 0;
	for (char *save = NULL, *t = strtok_r(s, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (n == max)
			return max + 1;
		out[n++] = t;
	}
	return n;
}

/* A whole number option in [lo, hi], or a message and false. */
static bool s_int_opt(const char *what, const char *arg, long long lo, long long hi, long long *v)
{
	if (dtx_parse_int(arg, lo, hi, v))
		return true;
	fprintf(stderr, "dtxbench: bad %s '%s'\n", what, arg);
	return false;
}

/* --- --wakeup-cost -------------------------------------------------------- */

typedef struct {
	int ping, pong;   /* eventfds: to the partner, back */
} s_token_t;

enum { TOKEN = 1, STOP = 2 };

static bool s_pin(pthread_t t, int cpu)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return pthread_setaffinity_np(t, sizeof(set), &set) == 0;
}

/* The partner sends the token back until it reads STOP. */
static void *s_partner(void *arg)
{
	s_token_t *k = arg;
	uint64_t v;
	while (read(k->ping, &v, sizeof(v)) == sizeof(v) && v == TOKEN)
		if (write(k->pong, &v, sizeof(v)) != sizeof(v))
			break;
	return NULL;
}

static double s_cpu_now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* n round trips of a token between this thread, on CPU cpu0, and a partner
 * on cpu1: the CPU time per wake-up and the wall time per round trip, in
 * us. -1 if the threads cannot be pinned there. */
static int s_ping_pong(int cpu0, int cpu1, unsigned n, double *cpu_us, double *rtt_us)
{
	s_token_t k = {.ping = eventfd(0, 0), .pong = eventfd(0, 0)};
	pthread_t t;
	bool started = false;
	unsigned i = 0;
	if (k.ping >= 0 && k.pong >= 0 && s_pin(pthread_self(), cpu0) &&
	    (started = pthread_create(&t, NULL, s_partner, &k) == 0) && s_pin(t, cpu1)) {
		uint64_t v = TOKEN;
		double c0 = s_cpu_now(), w0 = (double)dtx_now_us();
		while (i < n && write(k.ping, &v, sizeof(v)) == sizeof(v) &&
		       read(k.pong, &v, sizeof(v)) == sizeof(v))
			i++;
		*cpu_us = (s_cpu_now() - c0) * 1e6 / (2.0 * n);
		*rtt_us = ((double)dtx_now_us() - w0) / n;
	}
	if (started) {
		uint64_t stop = STOP;
		if (write(k.ping, &stop, sizeof(stop)) == sizeof(stop))
			pthread_join(t, NULL);
	}
	if (k.ping >= 0)
		close(k.ping);
	if (k.pong >= 0)
		close(k.pong);
	return i == n ? 0 : -1;
}

/* --wakeup-cost: on the first CPU this process may use, then across the
 * first two. */
static int s_wakeup_cost(void)
{
	double cpu1, rtt1, cpu2, rtt2;
	cpu_set_t set;
	int cpus[2], ncpus = 0;
	if (sched_getaffinity(0, sizeof(set), &set) == 0)
		for (int c = 0; c < CPU_SETSIZE && ncpus < 2; c++)
			if (CPU_ISSET(c, &set))
				cpus[ncpus++] = c;
	if (!ncpus || s_ping_pong(cpus[0], cpus[0], 20000, &cpu1, &rtt1)) {
		fprintf(stderr, "dtxbench: cannot measure wake-ups\n");
		return 1;
	}
	printf("wake-up cost: within one CPU %.1f us of CPU (round trip %.1f us)", cpu1, rtt1);
	if (ncpus == 2 && s_ping_pong(cpus[0], cpus[1], 20000, &cpu2, &rtt2) == 0)
		printf("; across two CPUs %.1f us of CPU (round trip %.1f us)", cpu2, rtt2);
	printf("\n");
	return 0;
}

static void s_usage(void)
{
	fprintf(stderr,
		"usage: dtxbench [-m dtx,direct,null] [-c CLIENTS[,CLIENTS...]] [-s SECONDS | -n "
		"COUNT]\n"
		"                [-w transfer|shop|select|saga] [--dbs DB,DB...] [--null "
		"NAME,NAME...]\n"
		"                [-e ENDPOINT [--server-key FILE --key FILE]] [--conninfo "
		"CONNINFO]\n"
		"                [--warmup SECONDS]\n"
		"                [--json FILE|-] [--progress] [--timeout MS]\n"
		"                [--customer NAME] [--item NAME] [--accounts N] [--fire N]\n"
		"       dtxbench --wakeup-cost\n"
		"Runs every mode at every client count in turn and prints one table;\n"
		"with dtx and direct both, also their ratios. See the head of dtxbench.c.\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"endpoint", required_argument, NULL, 'e'},
		{"clients", required_argument, NULL, 'c'},
		{"seconds", required_argument, NULL, 's'},
		{"workload", required_argument, NULL, 'w'},
		{"mode", required_argument, NULL, 'm'},
		{"count", required_argument, NULL, 'n'},
		{"dbs", required_argument, NULL, 'd'},
		{"null", required_argument, NULL, 'N'},
		{"conninfo", required_argument, NULL, 'C'},
		{"warmup", required_argument, NULL, 'W'},
		{"json", required_argument, NULL, 'j'},
		{"progress", no_argument, NULL, 'p'},
		{"customer", required_argument, NULL, 'u'},
		{"item", required_argument, NULL, 'i'},
		{"timeout", required_argument, NULL, 't'},
		{"fire", required_argument, NULL, 'f'},
		{"accounts", required_argument, NULL, 'a'},
		{"help", no_argument, NULL, 'h'},
		{"wakeup-cost", no_argument, NULL, 'K'},
		{"server-key", required_argument, NULL, 'S'},
		{"key", required_argument, NULL, 'k'},
		{NULL, 0, NULL, 0},
	};
	static char dbs_default[] = "bank,stock", nulls_default[] = "null1,null2",
		    shop_dbs[] = "shop,bank,stock", modes_default[] = "dtx",
		    clients_default[] = "1";
	s_opts_t o = {.endpoint = getenv("DTX_CLIENT"),
		      .server_key = getenv("DTX_SERVER_KEY"),
		      .key = getenv("DTX_KEY"),
		      .workload = "shop",
		      .customer = "bench",
		      .item = "bolt",
		      .seconds = 5,
		      .conninfo = ""};
	char *dbs = NULL, *nulls = nulls_default, *modes = modes_default,
	     *clients = clients_default;
	const char *list[MAX_DBS + 1];
	int c;
	long long v;

	if (!o.endpoint)
		o.endpoint = "ipc:///run/dtx/client.sock";
	while ((c = getopt_long(argc, argv, "e:c:s:w:m:n:h", opts, NULL)) != -1) {
		switch (c) {
		case 'e': o.endpoint = optarg; break;
		case 'S': o.server_key = optarg; break;
		case 'k': o.key = optarg; break;
		case 'c': clients = optarg; break;
		case 's':
		case 'W': {
			char *end;
			double d = strtod(optarg, &end);
			if (*end || d < 0 || (c == 's' && d == 0)) {
				fprintf(stderr, "dtxbench: bad number of seconds '%s'\n", optarg);
				return 2;
			}
			*(c == 's' ? &o.seconds : &o.warmup) = d;
			break;
		}
		case 'w':
			o.workload = optarg;
			if (strcmp(o.workload, "shop") && strcmp(o.workload, "transfer") &&
			    strcmp(o.workload, "select") && strcmp(o.workload, "saga")) {
				fprintf(stderr, "dtxbench: unknown workload '%s'\n", optarg);
				return 2;
			}
			break;
		case 'm': modes = optarg; break;
		case 'n':
			if (!s_int_opt("count", optarg, 1, 1000000000, &v))
				return 2;
			o.count = (uint64_t)v;
			break;
		case 'd': dbs = optarg; break;
		case 'N': nulls = optarg; break;
		case 'C': o.conninfo = optarg; break;
		case 'j': o.json_path = optarg; break;
		case 'p': o.progress = true; break;
		case 'u': o.customer = optarg; break;
		case 'i': o.item = optarg; break;
		case 't':
			if (!s_int_opt("timeout", optarg, 1, 3600000, &v))
				return 2;
			o.timeout_ms = (uint32_t)v;
			break;
		case 'f':
			if (!s_int_opt("--fire", optarg, 1, 10000000, &v))
				return 2;
			o.fire = (unsigned)v;
			break;
		case 'a':
			if (!s_int_opt("--accounts", optarg, 1, 1000000000, &v))
				return 2;
			o.accounts = (unsigned)v;
			break;
		case 'K': return s_wakeup_cost();
		case 'h': s_usage(); return 0;
		default: s_usage(); return 2;
		}
	}
	if (optind != argc) {
		s_usage();
		return 2;
	}
	if (strcmp(o.workload, "shop") == 0) {
		if (dbs) {
			fprintf(stderr,
				"dtxbench: the shop workload always uses shop, bank and stock\n");
			return 2;
		}
		dbs = shop_dbs;
	}
	o.ndbs = s_split(dbs ? dbs : dbs_default, o.dbs, MAX_DBS);
	o.nnulls = s_split(nulls, o.nulls, MAX_DBS);
	if (o.ndbs < 1 || o.ndbs > MAX_DBS || o.nnulls < 1 || o.nnulls > MAX_DBS) {
		fprintf(stderr, "dtxbench: between 1 and %d databases and null participants\n",
			MAX_DBS);
		return 2;
	}
	if (strcmp(o.workload, "saga") == 0 && o.ndbs != 3) {
		fprintf(stderr, "dtxbench: the saga workload runs over three databases: --dbs "
				"A,B,C (reserve on A, pay on B, notify on C)\n");
		return 2;
	}
	unsigned nm = s_split(modes, list, MAX_DBS);
	for (unsigned i = 0; i < nm && i < MAX_DBS; i++) {
		unsigned m = 0;
		while (m < MODE__COUNT && strcmp(list[i], s_mode_names[m]))
			m++;
		if (m == MODE__COUNT || o.nmodes == MODE__COUNT) {
			fprintf(stderr, "dtxbench: unknown mode '%s' (dtx, direct, null)\n",
				list[i]);
			return 2;
		}
		o.modes[o.nmodes++] = m;
	}
	o.nclients = s_split(clients, list, 16);
	if (!o.nclients || o.nclients > 16) {
		fprintf(stderr, "dtxbench: 1 to 16 client counts\n");
		return 2;
	}
	for (unsigned i = 0; i < o.nclients; i++) {
		if (!dtx_parse_int(list[i], 1, 4096, &v)) {
			fprintf(stderr, "dtxbench: bad number of clients '%s'\n", list[i]);
			return 2;
		}
		o.clients[i] = (unsigned)v;
	}
	if (o.fire)
		return s_fire(&o);

	s_result_t res[MAX_RUNS];
	unsigned nres = 0, errors = 0;
	/* client counts outside, modes inside: the modes of one client count
	 * run back to back, under the same conditions as far as can be */
	for (unsigned i = 0; i < o.nclients; i++)
		for (unsigned m = 0; m < o.nmodes && nres < MAX_RUNS; m++) {
			if (s_run(&o, o.modes[m], o.clients[i], &res[nres]))
				return 1;
			errors += res[nres].errors > 0;
			nres++;
		}
	s_print(&o, res, nres);
	if (o.json_path && s_json(&o, res, nres))
		return 1;
	return errors ? 1 : 0;
}
