/*
 * pga.c — dtx-pgagent's loop.
 *
 * The main thread owns the DEALER to the coordinator and an inproc ROUTER
 * to pool_size worker threads; each worker owns one PostgreSQL connection
 * and runs one job at a time (prepare a branch, apply a decision, scan for
 * prepared branches). Jobs travel to workers and back as pointers.
 *
 * Per GID there is at most one job in flight: a decision that arrives while
 * the branch is still being prepared waits for the prepare (else a rollback
 * could run first, find nothing, and leave the later PREPARE orphaned); a
 * repeated decision for a GID being applied is dropped, since the running
 * job answers it.
 *
 * Reconnects: HELLO at start, whenever the coordinator says ENOTREG (it
 * restarted) and when it has been silent for three heartbeats. After each
 * WELCOME a scan job lists this database's prepared branches of that
 * coordinator and sends them as INDOUBT; the coordinator answers each one.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <zmq.h>

#include "dtx_util.h"
#include "dtx_wire.h"
#include "pga.h"
#include "pga_db.h"

#define WORKERS_EP "inproc://pga-workers"

typedef enum { JOB_PREPARE, JOB_DECIDE, JOB_SCAN } s_kind_t;

typedef struct s_job {
	struct s_job *next, *prev;     /* its queue (prev unused at a worker) */
	struct s_job *hnext;           /* GID hash chain */
	bool at_worker;
	s_kind_t kind;
	char gid[200];
	int decision;           /* JOB_DECIDE: DTX_DECIDE_* */
	int deferred;           /* decision that arrived during the prepare: -1 none */
	dtx_msg_t msg;          /* JOB_PREPARE: owns the statements */
	char coord[DTX_COORD_ID_MAX + 1];
	/* results */
	int result;
	char sqlstate[8];
	char text[512];
	char **gids;
	uint32_t ngids;
} s_job_t;

typedef struct {
	uint8_t b[256];
	size_t n;
} s_rid_t;

#define TOMBS 1024
#define BUCKETS 4096

/* Decisions and scans are dispatched before prepares (see s_next_job). */
enum { Q_FIRST, Q_PREPARE, NQ };

typedef struct {
	struct s_job *head, *tail;
} s_queue_t;

struct pga {
	pga_config_t cfg;
	void *ctx, *coord, *workers;
	pthread_t *threads;
	unsigned nthreads;
	volatile sig_atomic_t stop;
	s_queue_t q[NQ];               /* not yet dispatched */
	s_job_t **buckets;             /* GID -> its job, queued or at a worker */
	s_job_t *active;               /* at a worker */
	s_rid_t *idle;                 /* workers waiting for a job */
	unsigned nidle;
	unsigned nprepares;            /* prepare jobs at a worker */
	bool welcomed, scan_owed;
	dtx_delayed_t *delayed;        /* frames held by an injected delay fault */
	char (*tombs)[200];            /* GIDs rolled back here: ring of TOMBS */
	unsigned ntombs, tomb_next;
	char coord_id[DTX_COORD_ID_MAX + 1];
	int64_t last_heard_ms, last_ping_ms, last_hello_ms, scan_retry_ms;
};

/* --- workers ---------------------------------------------------------- */

typedef struct {
	pga_t *pga;
	unsigned index;
} s_worker_arg_t;

static void s_run_job(pga_t *self, pga_db_t *db, s_job_t *job)
{
	switch (job->kind) {
	case JOB_PREPARE:
		job->result = pga_db_prepare(db, job->gid,
					     (job->msg.has & DTX_F_CODE) &&
						     job->msg.code == DTX_PREPARE_ONE_PHASE,
					     job->msg.nstmts, job->msg.stmts, job->sqlstate,
					     job->text, sizeof(job->text));
		break;
	case JOB_DECIDE:
		job->result = pga_db_decide(db, job->gid, job->decision, job->text,
					    sizeof(job->text));
		break;
	case JOB_SCAN:
		job->result = pga_db_scan(db, job->coord, self->cfg.marker_retention_s, &job->gids,
					  &job->ngids, job->text, sizeof(job->text));
		break;
	}
}

static void *s_worker(void *arg)
{
	s_worker_arg_t *wa = arg;
	pga_t *self = wa->pga;
	pga_db_t *db = pga_db_new(self->cfg.conninfo, self->cfg.lock_timeout_ms);
	void *sock = zmq_socket(self->ctx, ZMQ_DEALER);
	s_job_t *job = NULL;

	free(wa);
	if (!db || !sock || zmq_connect(sock, WORKERS_EP) != 0) {
		dtx_err("worker cannot start");
		goto out;
	}
	/* A NULL job says "ready". */
	zmq_send(sock, &job, sizeof(job), 0);
	for (;;) {
		if (zmq_recv(sock, &job, sizeof(job), 0) != sizeof(job) || !job)
			break; /* context terminated or told to stop */
		s_run_job(self, db, job);
		if (zmq_send(sock, &job, sizeof(job), 0) < 0)
			break;
	}
out:
	if (sock) {
		int zero = 0;
		zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof(zero));
		zmq_close(sock);
	}
	pga_db_destroy(&db);
	return NULL;
}

/* --- jobs ------------------------------------------------------------- */

static s_job_t *s_job_new(s_kind_t kind, const char *gid)
{
	s_job_t *job = calloc(1, sizeof(*job));
	if (!job)
		return NULL;
	job->kind = kind;
	job->deferred = -1;
	if (gid)
		snprintf(job->gid, sizeof(job->gid), "%s", gid);
	return job;
}

static void s_job_free(s_job_t *job)
{
	if (!job)
		return;
	dtx_msg_clear(&job->msg);
	for (uint32_t i = 0; i < job->ngids; i++)
		free(job->gids[i]);
	free(job->gids);
	free(job);
}

/* At most one job per GID (a PREPARE and then its DECIDE): this hash
 * finds it in O(1), however long the backlog. */
static unsigned s_hash(const char *gid)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	for (; *gid; gid++)
		h = (h ^ (uint8_t)*gid) * 16777619u;
	return h & (BUCKETS - 1);
}

static s_job_t *s_find(pga_t *self, const char *gid)
{
	for (s_job_t *j = self->buckets[s_hash(gid)]; j; j = j->hnext)
		if (strcmp(j->gid, gid) == 0)
			return j;
	return NULL;
}

static void s_enqueue(pga_t *self, s_job_t *job, bool front)
{
	s_queue_t *q = &self->q[job->kind == JOB_PREPARE ? Q_PREPARE : Q_FIRST];
	if (front) {
		job->prev = NULL;
		job->next = q->head;
		if (q->head)
			q->head->prev = job;
		else
			q->tail = job;
		q->head = job;
	} else {
		job->next = NULL;
		job->prev = q->tail;
		if (q->tail)
			q->tail->next = job;
		else
			q->head = job;
		q->tail = job;
	}
	if (job->kind != JOB_SCAN) {
		unsigned h = s_hash(job->gid);
		job->hnext = self->buckets[h];
		self->buckets[h] = job;
	}
}

static void s_unqueue(pga_t *self, s_job_t *job)
{
	s_queue_t *q = &self->q[job->kind == JOB_PREPARE ? Q_PREPARE : Q_FIRST];
	if (job->prev)
		job->prev->next = job->next;
	else
		q->head = job->next;
	if (job->next)
		job->next->prev = job->prev;
	else
		q->tail = job->prev;
	job->next = job->prev = NULL;
}

/* Forget a job that is in no queue and at no worker, and free it. */
static void s_drop_job(pga_t *self, s_job_t *job)
{
	if (job->kind != JOB_SCAN) {
		s_job_t **pp = &self->buckets[s_hash(job->gid)];
		while (*pp && *pp != job)
			pp = &(*pp)->hnext;
		if (*pp)
			*pp = job->hnext;
	}
	s_job_free(job);
}

/*
 * Hand queued jobs to idle workers. Decisions and scans go first, and
 * prepares may hold at most pool_size - 1 workers: a prepare can block on
 * row locks that a prepared branch holds until its COMMIT PREPARED, so a
 * decision must never wait behind prepares, or the pool deadlocks until
 * the transactions time out.
 */
static s_job_t *s_next_job(pga_t *self)
{
	s_job_t *job = self->q[Q_FIRST].head;
	if (!job && self->nprepares + 1 < self->cfg.pool_size)
		job = self->q[Q_PREPARE].head;
	if (job)
		s_unqueue(self, job);
	return job;
}

static void s_dispatch(pga_t *self)
{
	s_job_t *job;
	while (self->nidle && (job = s_next_job(self))) {
		s_rid_t *w = &self->idle[--self->nidle];
		if (job->kind == JOB_PREPARE)
			self->nprepares++;
		job->at_worker = true;
		job->next = self->active;
		self->active = job;
		zmq_send(self->workers, w->b, w->n, ZMQ_SNDMORE);
		zmq_send(self->workers, &job, sizeof(job), 0);
	}
}

/* --- talking to the coordinator --------------------------------------- */

static void s_send(pga_t *self, const dtx_msg_t *msg)
{
	char *buf;
	size_t len;
	int rc = dtx_msg_encode(msg, &buf, &len);
	if (rc) {
		dtx_err("cannot encode %s: %s", dtx_msg_type_str(msg->type), dtx_strerror(rc));
		return;
	}
	/* Not connected: dropped. The coordinator resends decisions and
	 * learns of prepared branches from the next INDOUBT. */
	if (zmq_send(self->coord, buf, len, ZMQ_DONTWAIT) < 0)
		dtx_debug("%s not sent: %s", dtx_msg_type_str(msg->type), zmq_strerror(errno));
	free(buf);
}

static void s_hello(pga_t *self)
{
	dtx_msg_t m = {.type = DTX_T_HELLO, .has = DTX_F_NAME, .name = self->cfg.name};
	self->welcomed = false;
	self->last_hello_ms = dtx_now_ms();
	s_send(self, &m);
}

/* A rollback of gid was received: a PREPARE of it arriving later (lost in
 * the network for a while, reordered) must be refused, not prepared. */
static void s_tomb_add(pga_t *self, const char *gid)
{
	snprintf(self->tombs[self->tomb_next], sizeof(self->tombs[0]), "%s", gid);
	self->tomb_next = (self->tomb_next + 1) % TOMBS;
	if (self->ntombs < TOMBS)
		self->ntombs++;
}

static bool s_tomb_has(const pga_t *self, const char *gid)
{
	for (unsigned i = 0; i < self->ntombs; i++)
		if (strcmp(self->tombs[i], gid) == 0)
			return true;
	return false;
}

static void s_on_decide(pga_t *self, const dtx_msg_t *m)
{
	s_job_t *job;
	int decision = m->code == DTX_DECIDE_COMMIT    ? DTX_DECIDE_COMMIT
		       : m->code == DTX_DECIDE_RESOLVE ? DTX_DECIDE_RESOLVE
						       : DTX_DECIDE_ROLLBACK;
	bool commit = decision == DTX_DECIDE_COMMIT;

	if (!commit)
		s_tomb_add(self, m->gtid);
	if ((job = s_find(self, m->gtid))) {
		if (job->kind == JOB_DECIDE)
			return; /* queued or being applied: that one answers */
		if (job->at_worker) {
			job->deferred = decision; /* applied when the prepare returns */
			return;
		}
		if (!commit) {
			/* Rollback before the prepare ran: drop the prepare,
			 * nothing was done, and say so. */
			s_unqueue(self, job);
			s_drop_job(self, job);
			dtx_msg_t ack = {.type = DTX_T_ACK, .has = DTX_F_GTID | DTX_F_CODE,
					 .gtid = m->gtid, .code = DTX_ACK_DONE};
			s_send(self, &ack);
			return;
		}
		job->deferred = DTX_DECIDE_COMMIT;
		return;
	}
	if (!(job = s_job_new(JOB_DECIDE, m->gtid)))
		return; /* the coordinator will ask again */
	job->decision = decision;
	dtx_crash_point("pga.decision_received");
	s_enqueue(self, job, false);
}

static void s_on_coord(pga_t *self, const void *data, size_t len, bool faults)
{
	dtx_msg_t m;
	char why[256];
	int rc = dtx_msg_decode(data, len, &m, why, sizeof(why));
	int delay_ms;

	if (rc) {
		dtx_warn("frame from the coordinator refused: %s", why);
		return;
	}
	switch (faults ? dtx_fault_on_recv(dtx_msg_type_str(m.type), &delay_ms) : DTX_FAULT_NONE) {
	case DTX_FAULT_DROP:
		dtx_msg_clear(&m);
		return;
	case DTX_FAULT_DUP:
		s_on_coord(self, data, len, false); /* then this one below */
		break;
	case DTX_FAULT_DELAY:
		dtx_delayed_hold(&self->delayed, delay_ms, NULL, 0, data, len);
		dtx_msg_clear(&m);
		return;
	default:
		break;
	}
	self->last_heard_ms = dtx_now_ms();
	switch (m.type) {
	case DTX_T_WELCOME:
		snprintf(self->coord_id, sizeof(self->coord_id), "%s", m.text);
		if (!dtx_coord_id_valid(self->coord_id)) {
			dtx_err("coordinator sent an invalid id");
			break;
		}
		dtx_notice("registered as %s with coordinator %s", self->cfg.name, self->coord_id);
		self->welcomed = true;
		self->scan_owed = true;
		break;
	case DTX_T_PREPARE: {
		if (s_find(self, m.gtid))
			break; /* repeated */
		if (s_tomb_has(self, m.gtid)) {
			dtx_msg_t v = {.type = DTX_T_VOTE,
				       .has = DTX_F_GTID | DTX_F_CODE | DTX_F_TEXT,
				       .gtid = m.gtid, .code = DTX_VOTE_NO,
				       .text = "rolled back before its PREPARE arrived"};
			dtx_info("%s: prepare refused: rolled back already", m.gtid);
			s_send(self, &v);
			break;
		}
		s_job_t *job = s_job_new(JOB_PREPARE, m.gtid);
		if (!job)
			break; /* no vote: the coordinator times the branch out */
		job->msg = m;
		memset(&m, 0, sizeof(m));
		s_enqueue(self, job, false);
		break;
	}
	case DTX_T_DECIDE:
		s_on_decide(self, &m);
		break;
	case DTX_T_PONG:
		break;
	case DTX_T_ERROR:
		if (m.code == DTX_ENOTREG) {
			dtx_notice("coordinator does not know us (it restarted?): hello again");
			s_hello(self);
		} else {
			dtx_err("coordinator says: %s (%s)", m.text, dtx_strerror((int)m.code));
		}
		break;
	default:
		dtx_warn("unexpected %s from the coordinator", dtx_msg_type_str(m.type));
	}
	dtx_msg_clear(&m);
}

/* A worker finished job (or said ready, job NULL). */
static void s_on_worker(pga_t *self, const s_rid_t *w, s_job_t *job)
{
	self->idle[self->nidle++] = *w;
	if (!job)
		return;
	for (s_job_t **pp = &self->active; *pp; pp = &(*pp)->next)
		if (*pp == job) {
			*pp = job->next;
			break;
		}
	switch (job->kind) {
	case JOB_PREPARE: {
		self->nprepares--;
		dtx_msg_t v = {.type = DTX_T_VOTE, .has = DTX_F_GTID | DTX_F_CODE, .gtid = job->gid,
			       .code = job->result};
		if (job->result == PGA_VOTE_UNKNOWN) {
			/* no vote: the coordinator times out and RESOLVEs */
			dtx_warn("%s: %s; outcome unknown until asked", job->gid, job->text);
		} else if (job->result == DTX_VOTE_NO) {
			dtx_info("%s: vote no: %s", job->gid, job->text);
			v.has |= DTX_F_TEXT;
			v.text = job->text;
			if (job->sqlstate[0]) {
				v.has |= DTX_F_SQLSTATE;
				v.sqlstate = job->sqlstate;
			}
		}
		if (job->result != PGA_VOTE_UNKNOWN)
			s_send(self, &v);
		if (job->deferred >= 0) {
			s_job_t *d = s_job_new(JOB_DECIDE, job->gid);
			if (d) {
				d->decision = job->deferred;
				s_enqueue(self, d, false);
			}
		}
		break;
	}
	case JOB_DECIDE: {
		dtx_msg_t a = {.type = DTX_T_ACK, .has = DTX_F_GTID | DTX_F_CODE, .gtid = job->gid,
			       .code = job->result};
		if (job->result != DTX_ACK_DONE && job->result != DTX_ACK_COMMITTED) {
			dtx_log(job->result == DTX_ACK_HEURISTIC ? DTX_LOG_ERR : DTX_LOG_WARNING,
				"%s: %s", job->gid, job->text);
			a.has |= DTX_F_TEXT;
			a.text = job->text;
		}
		if (job->result == DTX_ACK_RETRY)
			break; /* say nothing: the coordinator resends after its back-off */
		dtx_crash_point("pga.applied_unacked");
		s_send(self, &a);
		break;
	}
	case JOB_SCAN:
		if (job->result) {
			dtx_warn("cannot list prepared branches: %s", job->text);
			self->scan_owed = true;
			self->scan_retry_ms = dtx_now_ms() + 1000;
			break;
		}
		dtx_info("%u prepared branches of coordinator %s found", job->ngids, job->coord);
		dtx_msg_t d = {.type = DTX_T_INDOUBT, .has = DTX_F_GIDS, .ngids = job->ngids,
			       .gids = (const char **)job->gids};
		s_send(self, &d);
		break;
	}
	s_drop_job(self, job);
}

/* --- the loop --------------------------------------------------------- */

static void s_tick(pga_t *self, int64_t now)
{
	int64_t hb = self->cfg.heartbeat_ms;
	if (!self->welcomed) {
		/* Until WELCOME, HELLO again soon: the first one is dropped
		 * when the connection is not up yet (ZMQ_IMMEDIATE). */
		if (now - self->last_hello_ms >= (hb < 250 ? hb : 250))
			s_hello(self);
		return;
	}
	if (now - self->last_heard_ms > 3 * hb) {
		dtx_warn("coordinator silent for %lld ms: hello again",
			 (long long)(now - self->last_heard_ms));
		s_hello(self);
		return;
	}
	if (now - self->last_ping_ms >= hb) {
		dtx_msg_t p = {.type = DTX_T_PING};
		self->last_ping_ms = now;
		s_send(self, &p);
	}
	if (self->scan_owed && now >= self->scan_retry_ms) {
		s_job_t *job = s_job_new(JOB_SCAN, NULL);
		if (job) {
			snprintf(job->coord, sizeof(job->coord), "%s", self->coord_id);
			self->scan_owed = false;
			/* First in line: the in-doubt list goes before new work. */
			s_enqueue(self, job, true);
		}
	}
}

/* A frame held by a delay fault whose time has come. */
static void s_on_delayed(void *arg, const void *tag, const void *frame, size_t len)
{
	(void)tag;
	s_on_coord(arg, frame, len, false);
}

int pga_run(pga_t *self)
{
	uint64_t wd_us = 0;
	int64_t wd_ms = 0, last_wd = 0;
	/* systemd's watchdog, pinged from the loop at half its interval */
	if (sd_watchdog_enabled(0, &wd_us) > 0 && wd_us >= 2000)
		wd_ms = (int64_t)(wd_us / 2000);
	s_hello(self);
	while (!self->stop) {
		zmq_pollitem_t items[2] = {
			{.socket = self->coord, .events = ZMQ_POLLIN},
			{.socket = self->workers, .events = ZMQ_POLLIN},
		};
		if (zmq_poll(items, 2, 50) < 0 && errno != EINTR) {
			dtx_err("zmq_poll: %s", zmq_strerror(errno));
			return DTX_EIO;
		}
		while (items[0].revents & ZMQ_POLLIN) {
			zmq_msg_t f;
			zmq_msg_init(&f);
			if (zmq_msg_recv(&f, self->coord, ZMQ_DONTWAIT) < 0) {
				zmq_msg_close(&f);
				break;
			}
			s_on_coord(self, zmq_msg_data(&f), zmq_msg_size(&f), true);
			zmq_msg_close(&f);
		}
		while (items[1].revents & ZMQ_POLLIN) {
			s_rid_t w;
			s_job_t *job = NULL;
			int n = zmq_recv(self->workers, w.b, sizeof(w.b), ZMQ_DONTWAIT);
			if (n < 0)
				break;
			w.n = (size_t)n;
			if (zmq_recv(self->workers, &job, sizeof(job), 0) != sizeof(job))
				continue;
			s_on_worker(self, &w, job);
		}
		s_tick(self, dtx_now_ms());
		dtx_delayed_release(&self->delayed, dtx_now_ms(), s_on_delayed, self);
		if (wd_ms && dtx_now_ms() - last_wd >= wd_ms) {
			last_wd = dtx_now_ms();
			sd_notify(0, "WATCHDOG=1");
		}
		s_dispatch(self);
	}
	return 0;
}

void pga_stop(pga_t *self)
{
	self->stop = 1;
}

int pga_new(const pga_config_t *cfg, pga_t **out, char *why, size_t why_len)
{
	pga_t *self = calloc(1, sizeof(*self));
	pga_db_t *db = NULL;
	int zero = 0, one = 1;

	*out = NULL;
	if (!self)
		return DTX_ENOMEM;
	self->cfg = *cfg;
	/* The marker table before anything else: a branch cannot be
	 * prepared without it. */
	if (!(db = pga_db_new(cfg->conninfo, 0)) || pga_db_ensure_schema(db, why, why_len)) {
		pga_db_destroy(&db);
		free(self);
		return DTX_EDB;
	}
	pga_db_destroy(&db);
	if (!(self->ctx = zmq_ctx_new()) || !(self->coord = zmq_socket(self->ctx, ZMQ_DEALER)) ||
	    !(self->workers = zmq_socket(self->ctx, ZMQ_ROUTER)) ||
	    !(self->idle = calloc(cfg->pool_size, sizeof(s_rid_t))) ||
	    !(self->tombs = calloc(TOMBS, sizeof(*self->tombs))) ||
	    !(self->buckets = calloc(BUCKETS, sizeof(*self->buckets))) ||
	    !(self->threads = calloc(cfg->pool_size, sizeof(pthread_t))))
		goto fail;
	zmq_setsockopt(self->coord, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_setsockopt(self->coord, ZMQ_IMMEDIATE, &one, sizeof(one));
	zmq_setsockopt(self->workers, ZMQ_LINGER, &zero, sizeof(zero));
	if (zmq_bind(self->workers, WORKERS_EP) != 0 || zmq_connect(self->coord, cfg->coordinator)) {
		snprintf(why, why_len, "cannot connect to %s: %s", cfg->coordinator,
			 zmq_strerror(errno));
		goto fail;
	}
	for (unsigned i = 0; i < cfg->pool_size; i++) {
		s_worker_arg_t *wa = malloc(sizeof(*wa));
		if (!wa)
			goto fail;
		*wa = (s_worker_arg_t){self, i};
		if (pthread_create(&self->threads[i], NULL, s_worker, wa) != 0) {
			free(wa);
			goto fail;
		}
		self->nthreads++;
	}
	*out = self;
	return 0;
fail:
	if (!why[0])
		snprintf(why, why_len, "cannot set up: %s", zmq_strerror(errno));
	pga_destroy(&self);
	return DTX_EIO;
}

static void s_free_list(s_job_t *j)
{
	while (j) {
		s_job_t *next = j->next;
		s_job_free(j);
		j = next;
	}
}

void pga_destroy(pga_t **self_p)
{
	pga_t *self = self_p ? *self_p : NULL;
	if (!self)
		return;
	/* Stop the workers: each finishes its job, then reads NULL. Busy
	 * ones are waited for, a bounded time: a branch may be blocked on a
	 * lock that only a decision we will not run now would release. */
	unsigned stopped = 0;
	int64_t deadline = dtx_now_ms() + 5000;
	while (stopped < self->nthreads) {
		while (self->nidle && stopped < self->nthreads) {
			s_rid_t *w = &self->idle[--self->nidle];
			s_job_t *none = NULL;
			zmq_send(self->workers, w->b, w->n, ZMQ_SNDMORE);
			zmq_send(self->workers, &none, sizeof(none), 0);
			stopped++;
		}
		if (stopped == self->nthreads)
			break;
		zmq_pollitem_t item = {.socket = self->workers, .events = ZMQ_POLLIN};
		long left = (long)(deadline - dtx_now_ms());
		if (left <= 0 || zmq_poll(&item, 1, left) <= 0) {
			/* Leave them: the process is ending, PostgreSQL rolls back
			 * their open transactions, prepared ones stay for recovery. */
			dtx_warn("%u workers still busy after 5 s: not waiting for them",
				 self->nthreads - stopped);
			*self_p = NULL;
			return;
		}
		s_rid_t w;
		s_job_t *job = NULL;
		int n = zmq_recv(self->workers, w.b, sizeof(w.b), 0);
		if (n < 0 || zmq_recv(self->workers, &job, sizeof(job), 0) != sizeof(job))
			break;
		w.n = (size_t)n;
		for (s_job_t **pp = &self->active; *pp; pp = &(*pp)->next)
			if (*pp == job) {
				*pp = job->next;
				break;
			}
		s_job_free(job);
		self->idle[self->nidle++] = w;
	}
	for (unsigned i = 0; i < self->nthreads; i++)
		pthread_join(self->threads[i], NULL);
	s_free_list(self->q[Q_FIRST].head);
	s_free_list(self->q[Q_PREPARE].head);
	s_free_list(self->active);
	free(self->buckets);
	if (self->coord)
		zmq_close(self->coord);
	if (self->workers)
		zmq_close(self->workers);
	if (self->ctx)
		zmq_ctx_term(self->ctx);
	dtx_delayed_free(&self->delayed);
	free(self->tombs);
	free(self->idle);
	free(self->threads);
	free(self);
	*self_p = NULL;
}
