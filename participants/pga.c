/*
 * pga.c — dtx-pgagent's loop.
 *
 * One thread: its loop polls the DEALER to the coordinator and the sockets
 * of pool_size PostgreSQL connections, driven by libpq without blocking
 * (pga_db.c). Each connection runs one job at a time (prepare a branch,
 * apply a decision, scan for prepared branches); a round of the loop takes
 * in every frame that has arrived, advances every connection whose socket
 * is ready, and starts queued jobs on the idle connections.
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
 *
 * Whose GIDs: the agent prepares, commits and rolls back only branch GIDs
 * of its coordinator (the configured coordinator_id, else the id the last
 * WELCOME gave), in canonical form (s_ours). A PREPARE of any other GID
 * votes NO, a DECIDE of one is answered ERROR; neither reaches
 * PostgreSQL. So a prepared transaction that is not dtx's ("app-xa-42"),
 * or one of another coordinator, is never touched from here, whoever
 * sends the frame.
 *
 * Saga steps (STEP): each one local transaction under the barrier of
 * pga_db.c, which alone makes a repeated or reordered RUN, COMPENSATE or
 * PROBE of a step id answer the truth; what is kept here only schedules.
 * A RUN is scheduled as a prepare (it may block on locks), COMPENSATE and
 * PROBE as decisions; a STEP repeated while the same one is queued or
 * running is dropped (that job answers it). Step ids are branch GIDs and
 * pass the same checks as a PREPARE's: the coordinator's, the statement
 * check, the named statements.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <zmq.h>

#include "dtx_curve.h"
#include "dtx_frame.h"
#include "dtx_util.h"
#include "dtx_wire.h"
#include "pga.h"
#include "pga_db.h"
#include "pga_named.h"
#include "pga_stmt.h"

typedef struct s_job {
	struct s_job *next, *prev;     /* its queue */
	struct s_job *hnext;           /* GID hash chain */
	bool running;                  /* on a connection */
	int deferred;           /* decision that arrived during the prepare: -1 none */
	dtx_msg_t msg;          /* PGA_OP_PREPARE: owns the statements */
	pga_op_t op;            /* what to do, and its results */
} s_job_t;

#define TOMBS 1024
#define BUCKETS 4096

/* Decisions and scans are dispatched before prepares (see s_next_job). */
enum { Q_FIRST, Q_PREPARE, NQ };

typedef struct {
	struct s_job *head, *tail;
} s_queue_t;

struct pga {
	pga_config_t cfg;
	void *ctx, *coord;
	volatile sig_atomic_t stop;
	s_queue_t q[NQ];               /* not yet dispatched */
	s_job_t **buckets;             /* GID -> its job, queued or running */
	pga_db_t **dbs;                /* the connections, pool_size of them */
	s_job_t **running;             /* running[i]: the job of dbs[i], or NULL */
	unsigned *idle;                /* indexes of connections without a job */
	unsigned nidle;
	unsigned nprepares;            /* prepare jobs running */
	zmq_pollitem_t *items;         /* the coordinator, then connections ... */
	unsigned *item_db;             /* ... items[k + 1] is dbs[item_db[k]] */
	bool welcomed, scan_owed;
	dtx_delayed_t *delayed;        /* frames held by an injected delay fault */
	char (*tombs)[200];            /* GIDs rolled back here: ring of TOMBS */
	unsigned ntombs, tomb_next;
	char coord_id[DTX_COORD_ID_MAX + 1]; /* whose GIDs: coordinator_id, else the
					      * last WELCOME's; "" until known */
	char refused_id[DTX_COORD_ID_MAX + 1]; /* the last WELCOME refused, logged once */
	pga_named_t *named;            /* the named statements, or NULL */
	int64_t last_heard_ms, last_ping_ms, last_hello_ms, scan_retry_ms;
	int64_t last_connect_ms;       /* the DEALER was (re)connected */
	int64_t last_prune_ms;         /* a scan or a prune was queued */
	bool prune_queued;
	uint64_t odd_seen[64];         /* hashes of look-alike GIDs already logged */
	unsigned nodd;
};

#define NODD (sizeof(((struct pga *)0)->odd_seen) / sizeof(uint64_t))

/* Whether the look-alike GID gid is logged for the first time (FNV-1a;
 * past NODD of them, the rest are skipped without a word). */
static bool s_odd_first(pga_t *self, const char *gid)
{
	uint64_t h = 14695981039346656037u;
	for (const char *c = gid; *c; c++)
		h = (h ^ (uint8_t)*c) * 1099511628211u;
	for (unsigned i = 0; i < self->nodd; i++)
		if (self->odd_seen[i] == h)
			return false;
	if (self->nodd == NODD)
		return false;
	self->odd_seen[self->nodd++] = h;
	return true;
}

/* Keep in op's list only the GIDs that are ours in canonical form: a
 * prepared transaction whose GID only starts like ours (made by someone
 * else, or by a statement) is nobody's for this agent to report. */
static void s_keep_ours(pga_t *self, pga_op_t *op)
{
	uint32_t n = 0;
	for (uint32_t i = 0; i < op->ngids; i++) {
		dtx_gtid_t g;
		uint32_t b;
		if (dtx_gid_parse(op->gids[i], &g, &b) == 0 && strcmp(g.coord, op->coord) == 0) {
			op->gids[n++] = op->gids[i];
			continue;
		}
		if (s_odd_first(self, op->gids[i]))
			dtx_warn(
				"prepared transaction '%.80s%s' has coordinator %s's prefix but is "
				"not a dtx GID: left alone, not reported",
				op->gids[i], strlen(op->gids[i]) > 80 ? "..." : "", op->coord);
		free(op->gids[i]);
	}
	op->ngids = n;
}

/* Whether gid is a branch GID of this agent's coordinator, in canonical
 * form: the only GIDs it prepares, commits or rolls back. If not, why. */
static bool s_ours(const pga_t *self, const char *gid, char *why, size_t len)
{
	dtx_gtid_t g;
	uint32_t b;
	if (!self->coord_id[0]) {
		snprintf(why, len, "no coordinator has welcomed this agent yet");
		return false;
	}
	/* the peer said it is another coordinator: nothing it sends is run */
	if (self->refused_id[0]) {
		snprintf(why, len, "the coordinator here says it is %s, not %s", self->refused_id,
			 self->coord_id);
		return false;
	}
	if (dtx_gid_parse(gid, &g, &b)) {
		snprintf(why, len, "'%.80s' is not a dtx GID", gid);
		return false;
	}
	if (strcmp(g.coord, self->coord_id) != 0) {
		snprintf(why, len, "'%s' is a GID of coordinator %s, not of %s", gid, g.coord,
			 self->coord_id);
		return false;
	}
	return true;
}

/* --- jobs ------------------------------------------------------------- */

/* Jobs for a GID are found by it (one job per GID); scans and prunes are not. */
static bool s_keyed(const s_job_t *job)
{
	return job->op.kind == PGA_OP_PREPARE || job->op.kind == PGA_OP_DECIDE ||
	       job->op.kind == PGA_OP_STEP;
}

/* Jobs that may block on row locks a queued decision would release: they
 * wait in Q_PREPARE and hold at most pool_size - 1 connections. */
static bool s_blocks(const s_job_t *job)
{
	return job->op.kind == PGA_OP_PREPARE ||
	       (job->op.kind == PGA_OP_STEP && job->op.step_code == DTX_STEP_RUN);
}

static s_job_t *s_job_new(pga_op_kind_t kind, const char *gid)
{
	s_job_t *job = calloc(1, sizeof(*job));
	if (!job)
		return NULL;
	job->op.kind = kind;
	job->deferred = -1;
	if (gid)
		snprintf(job->op.gid, sizeof(job->op.gid), "%s", gid);
	return job;
}

static void s_job_free(s_job_t *job)
{
	if (!job)
		return;
	dtx_msg_clear(&job->msg);
	for (uint32_t i = 0; i < job->op.ngids; i++)
		free(job->op.gids[i]);
	free(job->op.gids);
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

/* The branch job (PREPARE or DECIDE) of gid, or NULL. */
static s_job_t *s_find(pga_t *self, const char *gid)
{
	for (s_job_t *j = self->buckets[s_hash(gid)]; j; j = j->hnext)
		if (j->op.kind != PGA_OP_STEP && strcmp(j->op.gid, gid) == 0)
			return j;
	return NULL;
}

/* The STEP job of step id gid with code, queued or running, or NULL.
 * Steps of other codes for the same id may be there too: the barrier
 * orders them. */
static s_job_t *s_find_step(pga_t *self, const char *gid, int code)
{
	for (s_job_t *j = self->buckets[s_hash(gid)]; j; j = j->hnext)
		if (j->op.kind == PGA_OP_STEP && j->op.step_code == code &&
		    strcmp(j->op.gid, gid) == 0)
			return j;
	return NULL;
}

static void s_enqueue(pga_t *self, s_job_t *job, bool front)
{
	s_queue_t *q = &self->q[s_blocks(job) ? Q_PREPARE : Q_FIRST];
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
	if (s_keyed(job)) {
		unsigned h = s_hash(job->op.gid);
		job->hnext = self->buckets[h];
		self->buckets[h] = job;
	}
}

static void s_unqueue(pga_t *self, s_job_t *job)
{
	s_queue_t *q = &self->q[s_blocks(job) ? Q_PREPARE : Q_FIRST];
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

/* Forget a job that is in no queue and not running, and free it. */
static void s_drop_job(pga_t *self, s_job_t *job)
{
	if (s_keyed(job)) {
		s_job_t **pp = &self->buckets[s_hash(job->op.gid)];
		while (*pp && *pp != job)
			pp = &(*pp)->hnext;
		if (*pp)
			*pp = job->hnext;
	}
	s_job_free(job);
}

/*
 * The next job for an idle connection. Decisions and scans go first, and
 * prepares may hold at most pool_size - 1 connections: a prepare can block on
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

/* --- talking to the coordinator --------------------------------------- */

static void s_send(pga_t *self, const dtx_msg_t *msg)
{
	int rc = dtx_send(self->coord, msg, ZMQ_DONTWAIT);
	/* Not connected: dropped. The coordinator resends decisions and
	 * learns of prepared branches from the next INDOUBT. */
	if (rc == DTX_EIO)
		dtx_debug("%s not sent: %s", dtx_msg_type_str(msg->type), zmq_strerror(errno));
	else if (rc)
		dtx_err("cannot encode %s: %s", dtx_msg_type_str(msg->type), dtx_strerror(rc));
}

static void s_hello(pga_t *self)
{
	dtx_msg_t m = {.type = DTX_T_HELLO, .has = DTX_F_NAME, .name = self->cfg.name};
	/* The connection worked until now: the reconnect below, for one
	 * that never did, waits its full interval from here (else it cut
	 * the connection this HELLO goes out on, and the coordinator's
	 * next frame to it was lost). */
	if (self->welcomed)
		self->last_connect_ms = dtx_now_ms();
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
		if (job->op.kind == PGA_OP_DECIDE)
			return; /* queued or being applied: that one answers */
		if (job->running) {
			job->deferred = decision; /* applied when the prepare returns */
			/* A branch still running is cut short: its work is lost
			 * anyway, and its locks and its connection are wanted. */
			if (!commit)
				for (unsigned i = 0; i < self->cfg.pool_size; i++)
					if (self->running[i] == job)
						pga_db_cancel(self->dbs[i]);
			return;
		}
		if (!commit) {
			/* Rollback before the prepare ran: drop the prepare,
			 * nothing was done, and say so. */
			s_unqueue(self, job);
			s_drop_job(self, job);
			dtx_msg_t ack = {.type = DTX_T_ACK,
					 .has = DTX_F_GTID | DTX_F_CODE,
					 .gtid = m->gtid,
					 .code = DTX_ACK_DONE};
			s_send(self, &ack);
			return;
		}
		job->deferred = DTX_DECIDE_COMMIT;
		return;
	}
	if (!(job = s_job_new(PGA_OP_DECIDE, m->gtid)))
		return; /* the coordinator will ask again */
	job->op.decision = decision;
	dtx_crash_point("pga.decision_received");
	s_enqueue(self, job, false);
}

/* Send RESULT code for step id gid, answering STEP asked; text and
 * sqlstate NULL or "": none. */
static void s_result(pga_t *self, const char *gid, int asked, int code, const char *sqlstate,
		     const char *text)
{
	dtx_msg_t r = {.type = DTX_T_RESULT,
		       .has = DTX_F_GTID | DTX_F_CODE | DTX_F_ASKED,
		       .gtid = gid,
		       .asked = asked,
		       .code = code};
	if (text && text[0]) {
		r.has |= DTX_F_TEXT;
		r.text = text;
	}
	if (sqlstate && sqlstate[0]) {
		r.has |= DTX_F_SQLSTATE;
		r.sqlstate = sqlstate;
	}
	s_send(self, &r);
}

static const char *s_step_code_str(int code)
{
	return code == DTX_STEP_RUN          ? "run"
	       : code == DTX_STEP_COMPENSATE ? "compensate"
	       : code == DTX_STEP_PROBE      ? "probe"
					     : "?";
}

/* A STEP: checked as a PREPARE is, then queued. Takes the statements of
 * *m (clears it) when the job is queued. */
/* The checks of m's statements before any reaches PostgreSQL: named ones
 * this agent defines with their parameters (pga_named_check()), SQL ones
 * one statement each (pga_stmt_check()). 0 and *quiet (all of them quiet),
 * or an error with sqlstate and why. */
static int s_check_stmts(const pga_t *self, const dtx_msg_t *m, char *sqlstate, char *why,
			 size_t why_len, bool *quiet)
{
	bool qn = false, qs = false;
	int rc = pga_named_check(self->named, m->nstmts, m->stmts, sqlstate, why, why_len, &qn);
	if (!rc)
		rc = pga_stmt_check(m->nstmts, m->stmts, sqlstate, why, why_len, &qs);
	*quiet = !rc && qn && qs;
	return rc;
}

static void s_on_step(pga_t *self, dtx_msg_t *m)
{
	char refused[512], sqlstate[8] = "";
	int code = (int)m->code;
	dtx_gtid_t g;
	uint32_t step;
	if (!s_ours(self, m->gtid, refused, sizeof(refused))) {
		/* no RESULT: none says "not done because not ours" */
		dtx_err("STEP refused, nothing run: %s", refused);
		dtx_msg_t e = {.type = DTX_T_ERROR,
			       .has = DTX_F_CODE | DTX_F_TEXT,
			       .code = DTX_EINVAL,
			       .text = refused};
		s_send(self, &e);
		return;
	}
	if ((code != DTX_STEP_RUN && code != DTX_STEP_COMPENSATE && code != DTX_STEP_PROBE) ||
	    (code == DTX_STEP_PROBE && m->nstmts)) {
		snprintf(refused, sizeof(refused), "STEP %s: code %lld%s", m->gtid,
			 (long long)m->code,
			 code == DTX_STEP_PROBE ? " (probe) carries no statements"
						: " is not known");
		dtx_err("STEP refused, nothing run: %s", refused);
		dtx_msg_t e = {.type = DTX_T_ERROR,
			       .has = DTX_F_CODE | DTX_F_TEXT,
			       .code = DTX_EINVAL,
			       .text = refused};
		s_send(self, &e);
		return;
	}
	if (s_find_step(self, m->gtid, code))
		return; /* repeated: the job queued or running answers */
	/* A client's statements are read before anything of the step
	 * reaches PostgreSQL, as a branch's are. */
	bool quiet;
	if (s_check_stmts(self, m, sqlstate, refused, sizeof(refused), &quiet)) {
		dtx_info_tx(m->gtid, "step %s failed, nothing run: %s", s_step_code_str(code),
			    refused);
		s_result(self, m->gtid, code, DTX_RESULT_FAILED, sqlstate, refused);
		return;
	}
	s_job_t *job = s_job_new(PGA_OP_STEP, m->gtid);
	if (!job)
		return; /* no RESULT: the coordinator sends the step again */
	dtx_gid_parse(m->gtid, &g, &step); /* s_ours() parsed it */
	dtx_gtid_format(&g, job->op.saga, sizeof(job->op.saga));
	job->op.step = step;
	job->op.step_code = code;
	job->op.quiet = quiet;
	job->op.timeout_ms = (m->has & DTX_F_TIMEOUT) ? m->timeout_ms : 0;
	job->msg = *m;
	memset(m, 0, sizeof(*m));
	job->op.nstmts = job->msg.nstmts;
	job->op.stmts = job->msg.stmts;
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
	case DTX_FAULT_DROP: dtx_msg_clear(&m); return;
	case DTX_FAULT_DUP:
		s_on_coord(self, data, len, false); /* then this one below */
		break;
	case DTX_FAULT_DELAY:
		dtx_delayed_hold(&self->delayed, delay_ms, NULL, 0, data, len);
		dtx_msg_clear(&m);
		return;
	default: break;
	}
	self->last_heard_ms = dtx_now_ms();
	switch (m.type) {
	case DTX_T_WELCOME:
		if (!dtx_coord_id_valid(m.text)) {
			dtx_err("coordinator sent an invalid id: not registered");
			break;
		}
		/* Another coordinator (or someone posing as one) is not served:
		 * no registration, no scan, none of its GIDs. Said once per id:
		 * the HELLOs that follow get the same answer. */
		if (self->cfg.coordinator_id[0] && strcmp(m.text, self->cfg.coordinator_id) != 0) {
			if (strcmp(self->refused_id, m.text) != 0)
				dtx_err("WELCOME from coordinator %s refused: this agent serves "
					"coordinator %s (coordinator_id); not registered",
					m.text, self->cfg.coordinator_id);
			snprintf(self->refused_id, sizeof(self->refused_id), "%s", m.text);
			break;
		}
		if (self->coord_id[0] && strcmp(self->coord_id, m.text) != 0)
			dtx_warn("coordinator id changed from %s to %s: the branches of %s are no "
				 "longer this agent's to finish",
				 self->coord_id, m.text, self->coord_id);
		snprintf(self->coord_id, sizeof(self->coord_id), "%s", m.text);
		self->refused_id[0] = '\0';
		dtx_notice("registered as %s with coordinator %s", self->cfg.name, self->coord_id);
		self->welcomed = true;
		self->scan_owed = true;
		break;
	case DTX_T_PREPARE: {
		char refused[512], sqlstate[8] = "";
		if (!s_ours(self, m.gtid, refused, sizeof(refused))) {
			dtx_err("PREPARE refused, nothing run: %s", refused);
			dtx_msg_t v = {.type = DTX_T_VOTE,
				       .has = DTX_F_GTID | DTX_F_CODE | DTX_F_TEXT,
				       .gtid = m.gtid,
				       .code = DTX_VOTE_NO,
				       .text = refused};
			s_send(self, &v);
			break;
		}
		if (s_find(self, m.gtid))
			break; /* repeated */
		if (s_tomb_has(self, m.gtid)) {
			dtx_msg_t v = {.type = DTX_T_VOTE,
				       .has = DTX_F_GTID | DTX_F_CODE | DTX_F_TEXT,
				       .gtid = m.gtid,
				       .code = DTX_VOTE_NO,
				       .text = "rolled back before its PREPARE arrived"};
			dtx_info_tx(m.gtid, "prepare refused: rolled back already");
			s_send(self, &v);
			break;
		}
		/* A client's statements are read before anything of the branch
		 * reaches PostgreSQL: one that could step outside the
		 * branch's transaction (or is not one statement) is a NO, and
		 * so is a named one this agent does not define as sent. */
		bool quiet;
		if (s_check_stmts(self, &m, sqlstate, refused, sizeof(refused), &quiet)) {
			dtx_msg_t v = {.type = DTX_T_VOTE,
				       .has = DTX_F_GTID | DTX_F_CODE | DTX_F_TEXT,
				       .gtid = m.gtid,
				       .code = DTX_VOTE_NO,
				       .text = refused};
			if (sqlstate[0]) {
				v.has |= DTX_F_SQLSTATE;
				v.sqlstate = sqlstate;
			}
			dtx_info_tx(m.gtid, "vote no: %s", refused);
			s_send(self, &v);
			break;
		}
		s_job_t *job = s_job_new(PGA_OP_PREPARE, m.gtid);
		if (!job)
			break; /* no vote: the coordinator times the branch out */
		job->msg = m;
		memset(&m, 0, sizeof(m));
		job->op.one_phase = (job->msg.has & DTX_F_CODE) &&
				    job->msg.code == DTX_PREPARE_ONE_PHASE;
		job->op.quiet = quiet;
		/* The coordinator says how much of the global timeout is left;
		 * time queued here counts against it. */
		if ((job->msg.has & DTX_F_TIMEOUT) && job->msg.timeout_ms)
			job->op.deadline_ms = dtx_now_ms() + job->msg.timeout_ms;
		job->op.nstmts = job->msg.nstmts;
		job->op.stmts = job->msg.stmts;
		s_enqueue(self, job, false);
		break;
	}
	case DTX_T_DECIDE: {
		char refused[512];
		if (!s_ours(self, m.gtid, refused, sizeof(refused))) {
			/* no ACK: none says "not done because not ours" */
			dtx_err("DECIDE refused, nothing run: %s", refused);
			dtx_msg_t e = {.type = DTX_T_ERROR,
				       .has = DTX_F_CODE | DTX_F_TEXT,
				       .code = DTX_EINVAL,
				       .text = refused};
			s_send(self, &e);
			break;
		}
		s_on_decide(self, &m);
		break;
	}
	case DTX_T_STEP: s_on_step(self, &m); break;
	case DTX_T_PONG: break;
	case DTX_T_ERROR:
		if (m.code == DTX_ENOTREG) {
			dtx_notice("coordinator does not know us (it restarted?): hello again");
			s_hello(self);
		} else {
			dtx_err("coordinator says: %s (%s)", m.text, dtx_strerror((int)m.code));
		}
		break;
	default: dtx_warn("unexpected %s from the coordinator", dtx_msg_type_str(m.type));
	}
	dtx_msg_clear(&m);
}

/* Job is done: answer the coordinator, then free it. */
static void s_on_done(pga_t *self, s_job_t *job)
{
	pga_op_t *op = &job->op;
	switch (op->kind) {
	case PGA_OP_PREPARE: {
		self->nprepares--;
		dtx_msg_t v = {.type = DTX_T_VOTE,
			       .has = DTX_F_GTID | DTX_F_CODE,
			       .gtid = op->gid,
			       .code = op->result};
		if (op->result == PGA_VOTE_UNKNOWN) {
			/* no vote: the coordinator times out and RESOLVEs */
			dtx_warn_tx(op->gid, "%s; outcome unknown until asked", op->why);
		} else if (op->result == DTX_VOTE_NO) {
			dtx_info_tx(op->gid, "vote no: %s", op->why);
			v.has |= DTX_F_TEXT;
			v.text = op->why;
			if (op->sqlstate[0]) {
				v.has |= DTX_F_SQLSTATE;
				v.sqlstate = op->sqlstate;
			}
		}
		if (op->result != PGA_VOTE_UNKNOWN)
			s_send(self, &v);
		if (job->deferred >= 0) {
			s_job_t *d = s_job_new(PGA_OP_DECIDE, op->gid);
			if (d) {
				d->op.decision = job->deferred;
				s_enqueue(self, d, false);
			}
		}
		break;
	}
	case PGA_OP_DECIDE: {
		dtx_msg_t a = {.type = DTX_T_ACK,
			       .has = DTX_F_GTID | DTX_F_CODE,
			       .gtid = op->gid,
			       .code = op->result};
		if (op->result != DTX_ACK_DONE && op->result != DTX_ACK_COMMITTED) {
			dtx_log_ctx(op->result == DTX_ACK_HEURISTIC ? DTX_LOG_ERR : DTX_LOG_WARNING,
				    op->gid, NULL, "%s", op->why);
			a.has |= DTX_F_TEXT;
			a.text = op->why;
		}
		if (op->result == DTX_ACK_RETRY)
			break; /* say nothing: the coordinator resends after its back-off */
		dtx_crash_point("pga.applied_unacked");
		s_send(self, &a);
		break;
	}
	case PGA_OP_SCAN:
		if (op->result) {
			dtx_warn("cannot list prepared branches: %s", op->why);
			self->scan_owed = true;
			self->scan_retry_ms = dtx_now_ms() + 1000;
			break;
		}
		s_keep_ours(self, op);
		dtx_info("%u prepared branches of coordinator %s found", op->ngids, op->coord);
		dtx_msg_t d = {.type = DTX_T_INDOUBT,
			       .has = DTX_F_GIDS,
			       .ngids = op->ngids,
			       .gids = (const char **)op->gids};
		s_send(self, &d);
		break;
	case PGA_OP_PRUNE:
		/* the DELETE's own failure is logged where it is seen */
		if (op->result)
			dtx_warn("cannot prune marker rows: %s", op->why);
		self->prune_queued = false;
		break;
	case PGA_OP_STEP:
		if (s_blocks(job))
			self->nprepares--;
		if (op->result == PGA_RESULT_UNKNOWN) {
			/* no RESULT: the coordinator sends the step again or
			 * probes it, and the barrier answers */
			dtx_warn_tx(op->gid, "step %s: %s; outcome unknown until asked",
				    s_step_code_str(op->step_code), op->why);
			break;
		}
		if (op->result == DTX_RESULT_FAILED)
			dtx_info_tx(op->gid, "step %s failed: %s", s_step_code_str(op->step_code),
				    op->why);
		else
			dtx_info_tx(op->gid, "step %s %s%s%s", s_step_code_str(op->step_code),
				    op->result == DTX_RESULT_FENCED ? "fenced" : "done",
				    op->why[0] ? ": " : "", op->why);
		s_result(self, op->gid, op->step_code, op->result,
			 op->result == DTX_RESULT_FAILED ? op->sqlstate : NULL, op->why);
		break;
	}
	s_drop_job(self, job);
}

/* Connection i finished its job. */
static void s_on_db(pga_t *self, unsigned i)
{
	s_job_t *job = self->running[i];
	self->running[i] = NULL;
	self->idle[self->nidle++] = i;
	job->running = false;
	s_on_done(self, job);
}

/* Start queued jobs on idle connections. */
static void s_dispatch(pga_t *self)
{
	s_job_t *job;
	while (self->nidle && (job = s_next_job(self))) {
		unsigned i = self->idle[--self->nidle];
		if (s_blocks(job))
			self->nprepares++;
		job->running = true;
		self->running[i] = job;
		if (pga_db_start(self->dbs[i], &job->op))
			s_on_db(self, i);
	}
}

/* --- the loop --------------------------------------------------------- */

static void s_tick(pga_t *self, int64_t now)
{
	int64_t hb = self->cfg.heartbeat_ms;
	/* Old marker rows go with every scan and every marker_prune_interval_s
	 * in between, whether the coordinator is there or not. */
	if (!self->prune_queued &&
	    now - self->last_prune_ms >= (int64_t)self->cfg.marker_prune_interval_s * 1000) {
		s_job_t *job = s_job_new(PGA_OP_PRUNE, NULL);
		if (job) {
			job->op.retention_s = self->cfg.marker_retention_s;
			self->prune_queued = true;
			self->last_prune_ms = now;
			s_enqueue(self, job, false);
		}
	}
	if (!self->welcomed) {
		/* libzmq gives up a connection whose handshake failed for a
		 * protocol error (a server without CURVE, or of another
		 * mechanism, answered) and never tries again: connect anew
		 * every few heartbeats until welcomed, or one such answer
		 * would cut the agent off for good. */
		if (now - self->last_connect_ms >= (3 * hb > 2000 ? 3 * hb : 2000)) {
			zmq_disconnect(self->coord, self->cfg.coordinator);
			if (zmq_connect(self->coord, self->cfg.coordinator))
				dtx_warn("cannot connect to %s: %s", self->cfg.coordinator,
					 zmq_strerror(errno));
			self->last_connect_ms = now;
		}
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
		s_job_t *job = s_job_new(PGA_OP_SCAN, NULL);
		if (job) {
			snprintf(job->op.coord, sizeof(job->op.coord), "%s", self->coord_id);
			job->op.retention_s = self->cfg.marker_retention_s;
			self->scan_owed = false;
			self->last_prune_ms = now;
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

/* Take in every frame the coordinator has sent. Raw frames, not decoded
 * messages: a delay fault holds the bytes back. */
static void s_read_coord(pga_t *self)
{
	for (;;) {
		zmq_msg_t f;
		char why[128];
		int rc = dtx_recv_frame(self->coord, &f, ZMQ_DONTWAIT, why, sizeof(why));
		if (rc == DTX_EPROTO) {
			dtx_warn("frame from the coordinator refused: %s", why);
			continue;
		}
		if (rc)
			return; /* nothing more (or the socket failed: the poll says) */
		s_on_coord(self, zmq_msg_data(&f), zmq_msg_size(&f), true);
		zmq_msg_close(&f);
	}
}

/*
 * Wait up to timeout_ms for the coordinator or a running job's connection,
 * then serve what is ready. Before the wait, a connection that has been
 * connecting too long gives up and one without a socket yet is advanced.
 * 0, or DTX_EIO.
 */
static int s_poll(pga_t *self, long timeout_ms)
{
	unsigned n = 1;
	int64_t now = dtx_now_ms();
	self->items[0] = (zmq_pollitem_t){.socket = self->coord, .events = ZMQ_POLLIN};
	for (unsigned i = 0; i < self->cfg.pool_size; i++) {
		bool want_write;
		int fd;
		if (!self->running[i])
			continue;
		if (pga_db_expire(self->dbs[i], now) ||
		    ((fd = pga_db_socket(self->dbs[i], &want_write)) < 0 &&
		     pga_db_advance(self->dbs[i]))) {
			s_on_db(self, i);
			continue;
		}
		if (fd < 0)
			continue;
		self->items[n] = (zmq_pollitem_t){
			.fd = fd,
			.events = (short)(ZMQ_POLLIN | (want_write ? ZMQ_POLLOUT : 0))};
		self->item_db[n - 1] = i;
		n++;
	}
	if (zmq_poll(self->items, (int)n, timeout_ms) < 0 && errno != EINTR) {
		dtx_err("zmq_poll: %s", zmq_strerror(errno));
		return DTX_EIO;
	}
	if (self->items[0].revents & ZMQ_POLLIN)
		s_read_coord(self);
	for (unsigned k = 1; k < n; k++)
		if (self->items[k].revents && pga_db_advance(self->dbs[self->item_db[k - 1]]))
			s_on_db(self, self->item_db[k - 1]);
	return 0;
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
		if (s_poll(self, 50))
			return DTX_EIO;
		s_tick(self, dtx_now_ms());
		dtx_delayed_release(&self->delayed, dtx_now_ms(), s_on_delayed, self);
		if (wd_ms && dtx_now_ms() - last_wd >= wd_ms) {
			last_wd = dtx_now_ms();
			sd_notify(0, "WATCHDOG=1");
		}
		s_dispatch(self);
	}
	/* Stopping: start nothing new; let the running jobs finish and
	 * answer, for 5 s at most, still pinging. A branch may be blocked on a lock that
	 * only a decision we will not run now would release. */
	int64_t deadline = dtx_now_ms() + 5000;
	while (self->nidle < self->cfg.pool_size) {
		long left = (long)(deadline - dtx_now_ms());
		if (left <= 0) {
			/* Left to the exit: PostgreSQL rolls back their open
			 * transactions, prepared ones stay for recovery. */
			dtx_warn("%u jobs still running after 5 s: not waiting for them",
				 self->cfg.pool_size - self->nidle);
			break;
		}
		if (s_poll(self, left < 50 ? left : 50))
			return DTX_EIO;
		s_tick(self, dtx_now_ms()); /* pings: still up to the coordinator */
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
	int zero = 0, one = 1;

	int rc = DTX_EIO;

	*out = NULL;
	if (!self)
		return DTX_ENOMEM;
	self->cfg = *cfg;
	self->last_prune_ms = dtx_now_ms(); /* the first scan prunes */
	snprintf(self->coord_id, sizeof(self->coord_id), "%s", cfg->coordinator_id);
	if (cfg->statements[0] &&
	    (rc = pga_named_load(cfg->statements, &self->named, why, why_len))) {
		free(self);
		return rc == DTX_ENOMEM ? rc : DTX_ECONFIG;
	}
	/* The marker table before anything else: a branch cannot be
	 * prepared without it. Then every named statement is prepared once,
	 * so that one PostgreSQL refuses stops the agent here. */
	if (pga_db_ensure_schema(cfg->conninfo, why, why_len) ||
	    (rc = pga_db_check_named(cfg->conninfo, self->named, why, why_len))) {
		pga_named_destroy(&self->named);
		free(self);
		return rc == DTX_ECONFIG ? rc : DTX_EDB;
	}
	rc = DTX_EIO;
	if (!(self->ctx = zmq_ctx_new()) || !(self->coord = zmq_socket(self->ctx, ZMQ_DEALER)) ||
	    !(self->dbs = calloc(cfg->pool_size, sizeof(*self->dbs))) ||
	    !(self->running = calloc(cfg->pool_size, sizeof(*self->running))) ||
	    !(self->idle = calloc(cfg->pool_size, sizeof(*self->idle))) ||
	    !(self->items = calloc(cfg->pool_size + 1, sizeof(*self->items))) ||
	    !(self->item_db = calloc(cfg->pool_size, sizeof(*self->item_db))) ||
	    !(self->tombs = calloc(TOMBS, sizeof(*self->tombs))) ||
	    !(self->buckets = calloc(BUCKETS, sizeof(*self->buckets))))
		goto fail;
	for (unsigned i = 0; i < cfg->pool_size; i++) {
		if (!(self->dbs[i] = pga_db_new(cfg->conninfo, cfg->lock_timeout_ms,
						cfg->max_result_rows, cfg->max_result_bytes,
						self->named)))
			goto fail;
		/* the lowest index on top: jobs go to few connections when few run */
		self->idle[self->nidle++] = cfg->pool_size - 1 - i;
	}
	zmq_setsockopt(self->coord, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_setsockopt(self->coord, ZMQ_IMMEDIATE, &one, sizeof(one));
	/* CURVE: libzmq completes no handshake with a server that does not
	 * hold the secret key of coordinator_key, so nothing reaches this
	 * agent from one posing as the coordinator. */
	if (cfg->coordinator_key[0]) {
		if (dtx_curve_client(self->coord, cfg->coordinator_key, cfg->secret_key, why,
				     why_len)) {
			rc = DTX_ECONFIG;
			goto fail;
		}
	} else if (dtx_endpoint_remote(cfg->coordinator)) {
		dtx_warn("INSECURE: coordinator %s is reached without CURVE (insecure = true): "
			 "whoever can reach or take over that endpoint can pose as the "
			 "coordinator and commit or roll back this database's dtx branches; set "
			 "coordinator_key and secret_key",
			 cfg->coordinator);
	}
	if (zmq_connect(self->coord, cfg->coordinator)) {
		snprintf(why, why_len, "cannot connect to %s: %s", cfg->coordinator,
			 zmq_strerror(errno));
		goto fail;
	}
	self->last_connect_ms = dtx_now_ms();
	*out = self;
	return 0;
fail:
	if (!why[0])
		snprintf(why, why_len, "cannot set up: %s", zmq_strerror(errno));
	pga_destroy(&self);
	return rc;
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
	for (unsigned i = 0; self->dbs && i < self->cfg.pool_size; i++) {
		pga_db_destroy(&self->dbs[i]);
		if (self->running)
			s_job_free(self->running[i]);
	}
	s_free_list(self->q[Q_FIRST].head);
	s_free_list(self->q[Q_PREPARE].head);
	free(self->buckets);
	if (self->coord) {
		/* the answers of the jobs finished while stopping: a second to
		 * go out */
		int linger_ms = 1000;
		zmq_setsockopt(self->coord, ZMQ_LINGER, &linger_ms, sizeof(linger_ms));
		zmq_close(self->coord);
	}
	if (self->ctx)
		zmq_ctx_term(self->ctx);
	dtx_delayed_free(&self->delayed);
	free(self->tombs);
	free(self->dbs);
	free(self->running);
	free(self->idle);
	free(self->items);
	free(self->item_db);
	pga_named_destroy(&self->named);
	free(self);
	*self_p = NULL;
}
