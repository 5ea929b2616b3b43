/*
 * crd_saga.c — sagas: the state machine's table and crd_saga_move(), the
 * driver (steps forward group by group, compensations in reverse order,
 * retries with back-off), and recovery.
 *
 * Durability (DESIGN.md "Sagas"), each point marked DURABILITY below:
 *   - the whole definition is forced before the first step leaves
 *     (LOGGING): recovery must be able to compensate;
 *   - the decision to compensate is forced before the first compensation
 *     leaves (TURNING);
 *   - a saga without a pivot forces the record that its last compensable
 *     step committed before anything after it (DECIDING): the point of no
 *     return must survive a crash, and without a pivot no barrier row
 *     proves it;
 *   - every other record (a step's result, a compensation's, the end)
 *     rides the next group commit: a lost one means the step is sent
 *     again after a crash, and the participant's barrier row answers as
 *     before without running it.
 *
 * Nothing here trusts the in-memory state of an agent: a step sent twice,
 * a compensation that overtakes its step, a pivot whose answer was lost,
 * are all settled by the barrier rows in the participant's database
 * (participants/, "Saga steps and the barrier" in DESIGN.md).
 */
#include "config.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crd_int.h"

#define P CRD_BY_PROTOCOL
#define O CRD_BY_OPERATOR
#define R CRD_BY_RECOVERY

const crd_move_t crd_saga_moves[] = {
	/* a client's SAGA: its definition is forced before any step leaves */
	{CRD_SAGA_NONE, CRD_SAGA_LOGGING, P, WAL_SAGA, CRD_REC_FORCED},
	/* the definition is durable: the first steps leave */
	{CRD_SAGA_LOGGING, CRD_SAGA_RUNNING, P, 0, CRD_REC_LAZY},
	/* ... and no step has a compensation: forward only from the start */
	{CRD_SAGA_LOGGING, CRD_SAGA_FORWARD, P, 0, CRD_REC_LAZY},
	/* the pivot committed (the record is its STEP_DONE) */
	{CRD_SAGA_RUNNING, CRD_SAGA_FORWARD, P, WAL_STEP_DONE, CRD_REC_LAZY},
	/* no pivot: every compensable step committed, forced */
	{CRD_SAGA_RUNNING, CRD_SAGA_DECIDING, P, WAL_FORWARD, CRD_REC_FORCED},
	{CRD_SAGA_DECIDING, CRD_SAGA_FORWARD, P, 0, CRD_REC_LAZY},
	/* a step failed or fell silent, the pivot did not run; an operator */
	{CRD_SAGA_RUNNING, CRD_SAGA_TURNING, P | O, WAL_COMPENSATING, CRD_REC_FORCED},
	{CRD_SAGA_TURNING, CRD_SAGA_COMPENSATING, P, 0, CRD_REC_LAZY},
	{CRD_SAGA_FORWARD, CRD_SAGA_COMPLETED, P | O, WAL_COMPLETED, CRD_REC_LAZY},
	{CRD_SAGA_COMPENSATING, CRD_SAGA_COMPENSATED, P | O, WAL_COMPENSATED, CRD_REC_LAZY},
	/* Recovery: the direction the log's records give. */
	{CRD_SAGA_NONE, CRD_SAGA_RUNNING, R, 0, CRD_REC_LAZY},
	{CRD_SAGA_NONE, CRD_SAGA_FORWARD, R, 0, CRD_REC_LAZY},
	{CRD_SAGA_NONE, CRD_SAGA_COMPENSATING, R, 0, CRD_REC_LAZY},
};
const size_t crd_saga_nmoves = sizeof(crd_saga_moves) / sizeof(crd_saga_moves[0]);

const char *crd_sagastate_str(crd_sagastate_t s)
{
	static const char *const names[CRD_SAGA__COUNT] = {
		[CRD_SAGA_NONE] = "NONE",
		[CRD_SAGA_LOGGING] = "LOGGING",
		[CRD_SAGA_RUNNING] = "RUNNING",
		[CRD_SAGA_DECIDING] = "DECIDING",
		[CRD_SAGA_FORWARD] = "FORWARD",
		[CRD_SAGA_TURNING] = "TURNING",
		[CRD_SAGA_COMPENSATING] = "COMPENSATING",
		[CRD_SAGA_COMPLETED] = "COMPLETED",
		[CRD_SAGA_COMPENSATED] = "COMPENSATED",
	};
	return (unsigned)s < CRD_SAGA__COUNT && names[s] ? names[s] : "INVALID";
}

const char *crd_stepstate_str(crd_stepstate_t s)
{
	static const char *const names[CRD_STEP__COUNT] = {
		[CRD_STEP_PENDING] = "pending",
		[CRD_STEP_SENT] = "sent",
		[CRD_STEP_DONE] = "done",
		[CRD_STEP_FAILED] = "failed",
		[CRD_STEP_COMPENSATING] = "compensating",
		[CRD_STEP_COMPENSATED] = "compensated",
	};
	return (unsigned)s < CRD_STEP__COUNT ? names[s] : "invalid";
}

bool crd_sagastate_ended(crd_sagastate_t s)
{
	return s == CRD_SAGA_COMPLETED || s == CRD_SAGA_COMPENSATED;
}

bool crd_sagastate_awaits_flush(crd_sagastate_t s)
{
	return s == CRD_SAGA_LOGGING || s == CRD_SAGA_DECIDING || s == CRD_SAGA_TURNING;
}

const char *crd_sagastate_shown(crd_sagastate_t s)
{
	switch (s) {
	case CRD_SAGA_COMPENSATING: return "compensating";
	case CRD_SAGA_COMPLETED: return "completed";
	case CRD_SAGA_COMPENSATED: return "compensated";
	case CRD_SAGA_FORWARD: return "forward";
	default: return "running"; /* TURNING too: its decision is not durable yet */
	}
}

/* --- the table of sagas in flight --------------------------------------- */

crd_saga_t *crd_saga_find(crd_t *self, uint64_t seq)
{
	if (!self->nsbuckets)
		return NULL;
	for (crd_saga_t *s = self->sbuckets[seq & (self->nsbuckets - 1)]; s; s = s->hnext)
		if (s->seq == seq)
			return s;
	return NULL;
}

static int s_insert(crd_t *self, crd_saga_t *sg)
{
	if (self->nsagas + 1 > self->nsbuckets) {
		size_t nb = self->nsbuckets ? self->nsbuckets * 2 : 64;
		crd_saga_t **b = calloc(nb, sizeof(*b));
		if (!b)
			return DTX_ENOMEM;
		for (size_t i = 0; i < self->nsbuckets; i++)
			for (crd_saga_t *s = self->sbuckets[i], *n; s; s = n) {
				n = s->hnext;
				s->hnext = b[s->seq & (nb - 1)];
				b[s->seq & (nb - 1)] = s;
			}
		free(self->sbuckets);
		self->sbuckets = b;
		self->nsbuckets = nb;
	}
	crd_saga_t **slot = &self->sbuckets[sg->seq & (self->nsbuckets - 1)];
	sg->hnext = *slot;
	*slot = sg;
	sg->prev = NULL;
	sg->next = self->saga_head;
	if (self->saga_head)
		self->saga_head->prev = sg;
	self->saga_head = sg;
	self->nsagas++;
	return 0;
}

/* Bounds of the texts, with their NUL. */
#define S_REASON_MAX 512
#define S_WHY_MAX 208

/*
 * Set a text kept only when there is one (few sagas fail): *p becomes a
 * malloc'ed copy of at most max bytes, or NULL when it is "". Out of
 * memory leaves it NULL: the texts are for people, no decision reads them.
 */
static void s_text(char **p, size_t max, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void s_text(char **p, size_t max, const char *fmt, ...)
{
	char buf[S_REASON_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, max < sizeof(buf) ? max : sizeof(buf), fmt, ap);
	va_end(ap);
	free(*p);
	*p = buf[0] ? strdup(buf) : NULL;
}

static void s_text_clear(char **p)
{
	free(*p);
	*p = NULL;
}

static void s_free_texts(crd_saga_t *sg)
{
	s_text_clear(&sg->reason);
	for (uint32_t i = 0; i < sg->nsteps; i++)
		s_text_clear(&sg->st[i].why);
}

static void s_forget(crd_t *self, crd_saga_t *sg)
{
	crd_saga_t **pp = &self->sbuckets[sg->seq & (self->nsbuckets - 1)];
	while (*pp != sg)
		pp = &(*pp)->hnext;
	*pp = sg->hnext;
	if (sg->prev)
		sg->prev->next = sg->next;
	else
		self->saga_head = sg->next;
	if (sg->next)
		sg->next->prev = sg->prev;
	self->nsagas--;
	if (sg->client_slot >= 0)
		self->client_load[sg->client_slot].inflight--;
	dtx_msg_clear(&sg->def);
	s_free_texts(sg);
	free(sg);
}

void crd_saga_free_all(crd_t *self)
{
	while (self->saga_head) {
		crd_saga_t *sg = self->saga_head;
		sg->client_slot = -1;
		s_forget(self, sg);
	}
	free(self->sbuckets);
	self->sbuckets = NULL;
	self->nsbuckets = 0;
}

void crd_saga_gtid(const crd_t *self, const crd_saga_t *sg, char *buf, size_t len)
{
	dtx_gtid_t g = {.epoch = sg->epoch, .seq = sg->seq};
	snprintf(g.coord, sizeof(g.coord), "%s", self->cfg.id);
	dtx_gtid_format(&g, buf, len);
}

uint32_t crd_saga_parts(const crd_saga_t *sg, const char **parts, uint32_t max)
{
	uint32_t n = 0;
	for (uint32_t i = 0; i < sg->nsteps && n < max; i++) {
		const char *p = sg->def.steps[i].participant;
		bool seen = false;
		for (uint32_t j = 0; j < n && !seen; j++)
			seen = strcmp(parts[j], p) == 0;
		if (!seen)
			parts[n++] = p;
	}
	return n;
}

static const dtx_step_t *s_def(const crd_saga_t *sg, int i)
{
	return &sg->def.steps[i];
}

static crd_saga_t *s_alloc(const dtx_msg_t *def)
{
	crd_saga_t *sg = calloc(1, sizeof(*sg) + def->nsteps * sizeof(crd_step_t));
	if (!sg)
		return NULL;
	sg->nsteps = def->nsteps;
	sg->client_slot = -1;
	sg->culprit = -1;
	sg->pivot = -1;
	for (uint32_t i = 0; i < def->nsteps; i++) {
		if (def->steps[i].kind == DTX_STEP_PIVOT)
			sg->pivot = (int)i;
		if (def->steps[i].kind == DTX_STEP_COMPENSABLE)
			sg->ncomp = (int)i + 1;
	}
	return sg;
}

/* --- records ------------------------------------------------------------ */

static int s_log(crd_t *self, crd_saga_t *sg, int kind, int step, const char *note, bool forced,
		 const void *body, size_t body_len)
{
	wal_rec_t r = {.seq = sg->seq,
		       .idx = sg->nlog,
		       .kind = (uint8_t)kind,
		       .epoch = sg->epoch,
		       .at_us = dtx_wall_us(),
		       .note = note,
		       .step = step,
		       .body = body,
		       .body_len = (uint32_t)body_len};
	int rc;
	if (sg->nlog == 255)
		return DTX_EFULL;
	if (kind == WAL_SAGA) {
		r.key = sg->key[0] ? sg->key : NULL;
		/* its participants, for dtxctl list */
		r.nparts = crd_saga_parts(sg, r.parts, WAL_MAX_PARTS);
	}
	if ((rc = wal_append(self->wal, &r, forced)))
		return rc;
	if (wal_pending(self->wal) == 1)
		self->first_lazy_ms = dtx_now_ms();
	sg->nlog++;
	return 0;
}

/* A lazy record: losing it only means a step is asked again. */
static void s_log_lazy(crd_t *self, crd_saga_t *sg, int kind, int step, const char *note)
{
	int rc = s_log(self, sg, kind, step, note, false, NULL, 0);
	if (rc) {
		char gtid[DTX_GTID_MAX];
		crd_saga_gtid(self, sg, gtid, sizeof(gtid));
		dtx_err_tx(gtid, "cannot queue the %s record: %s", wal_kind_str(kind),
			   dtx_strerror(rc));
	}
}

/* The definition as the log keeps it: the SAGA frame without its id. */
static int s_encode_def(const crd_saga_t *sg, char **buf, size_t *len)
{
	dtx_msg_t m = {.type = DTX_T_SAGA,
		       .has = DTX_F_ID | DTX_F_STEPS | DTX_F_TIMEOUT,
		       .steps = sg->def.steps,
		       .nsteps = sg->def.nsteps,
		       .timeout_ms = sg->timeout_ms};
	return dtx_msg_encode(&m, buf, len);
}

/* --- telling the client --------------------------------------------------- */

int crd_saga_outcome(const crd_saga_t *sg)
{
	return sg->heuristic ? DTX_OUTCOME_HEURISTIC : DTX_OUTCOME_ACTIVE;
}

static void s_reply(crd_t *self, crd_saga_t *sg, int outcome)
{
	char gtid[DTX_GTID_MAX];
	dtx_msg_t m = {.type = DTX_T_OUTCOME,
		       .has = DTX_F_ID | DTX_F_CODE | DTX_F_GTID,
		       .id = sg->req_id,
		       .code = outcome,
		       .gtid = gtid};
	if (!sg->client_waiting)
		return;
	crd_saga_gtid(self, sg, gtid, sizeof(gtid));
	if (sg->culprit >= 0 && outcome != DTX_OUTCOME_ACTIVE) {
		m.name = s_def(sg, sg->culprit)->participant;
		m.step = s_def(sg, sg->culprit)->name;
		m.has |= DTX_F_NAME | DTX_F_STEP;
	}
	if (sg->sqlstate[0] && outcome != DTX_OUTCOME_ACTIVE) {
		m.sqlstate = sg->sqlstate;
		m.has |= DTX_F_SQLSTATE;
	}
	if (sg->reason && outcome != DTX_OUTCOME_ACTIVE) {
		m.text = sg->reason;
		m.has |= DTX_F_TEXT;
	}
	crd_send(self->client, &sg->client, &m);
	if (outcome == DTX_OUTCOME_ACTIVE)
		return;
	sg->client_waiting = false;
	if (sg->begun_us && !sg->answered)
		crd_hist_observe(&self->h_saga, (double)(dtx_now_us() - sg->begun_us) / 1e6);
	sg->answered = true;
	/* Crash point: the saga's outcome left the process. */
	dtx_crash_point("crd.saga_answered");
}

void crd_saga_again(crd_t *self, crd_saga_t *sg, const dtx_peer_t *peer, uint64_t req_id)
{
	char gtid[DTX_GTID_MAX];
	crd_saga_gtid(self, sg, gtid, sizeof(gtid));
	dtx_info_tx(gtid, "saga submitted again with its key: answered with it, not run again");
	sg->client = *peer;
	sg->req_id = req_id;
	sg->client_waiting = true;
	s_reply(self, sg, DTX_OUTCOME_ACTIVE);
}

/* --- the moves ------------------------------------------------------------ */

static void s_entered(crd_t *self, crd_saga_t *sg);

int crd_saga_move(crd_t *self, crd_saga_t *sg, crd_sagastate_t to, int step, const char *note,
		  unsigned by)
{
	const crd_move_t *mv = crd_move_find(crd_saga_moves, crd_saga_nmoves, sg->state, to);
	char gtid[DTX_GTID_MAX];
	int rc;

	crd_saga_gtid(self, sg, gtid, sizeof(gtid));
	if (!mv || !(mv->by & by)) {
		dtx_err_tx(gtid, "saga move %s -> %s refused", crd_sagastate_str(sg->state),
			   crd_sagastate_str(to));
		return DTX_ESTATE;
	}
	if (by == CRD_BY_RECOVERY) {
		sg->state = to;
		sg->since_ms = dtx_now_ms();
		return 0;
	}
	if (mv->record && mv->durability == CRD_REC_FORCED) {
		char *body = NULL;
		size_t body_len = 0;
		if (mv->record == WAL_SAGA && (rc = s_encode_def(sg, &body, &body_len)))
			return rc;
		rc = s_log(self, sg, mv->record, step, note, true, body, body_len);
		free(body);
		if (rc)
			return rc;
	}
	dtx_debug_tx(gtid, "saga %s -> %s", crd_sagastate_str(sg->state), crd_sagastate_str(to));
	sg->state = to;
	if (mv->record && mv->durability != CRD_REC_FORCED)
		s_log_lazy(self, sg, mv->record, step, note);
	s_entered(self, sg);
	return 0;
}

/* --- sending ------------------------------------------------------------- */

static void s_backoff(crd_step_t *st, int64_t now)
{
	st->next_send_ms = now + crd_backoff_next(&st->backoff_ms);
}

/* Send STEP code for step i; false if it could not leave (its agent is
 * not connected, or the connection is gone): then it certainly did not. */
static bool s_send_step(crd_t *self, crd_saga_t *sg, uint32_t i, int code, int64_t now)
{
	crd_step_t *st = &sg->st[i];
	const dtx_step_t *d = s_def(sg, (int)i);
	char gid[DTX_GID_MAX];
	dtx_gtid_t g = {.epoch = sg->epoch, .seq = sg->seq};
	uint32_t timeout = sg->timeout_ms;

	s_backoff(st, now);
	if (st->part < 0 || !self->parts[st->part].connected)
		return false;
	/* Before the point of no return the saga's deadline bounds a step. */
	if (code == DTX_STEP_RUN && sg->state == CRD_SAGA_RUNNING) {
		int64_t left = sg->deadline_ms - now;
		timeout = left < 1 ? 1 : (uint32_t)left;
	}
	snprintf(g.coord, sizeof(g.coord), "%s", self->cfg.id);
	dtx_gid_format(&g, i, gid, sizeof(gid));
	dtx_msg_t m = {.type = DTX_T_STEP,
		       .has = DTX_F_GTID | DTX_F_CODE | DTX_F_TIMEOUT,
		       .gtid = gid,
		       .code = code,
		       .timeout_ms = timeout};
	if (code == DTX_STEP_RUN) {
		m.stmts = d->stmts;
		m.nstmts = d->nstmts;
		m.has |= DTX_F_STMTS;
	} else if (code == DTX_STEP_COMPENSATE) {
		m.stmts = d->comp;
		m.nstmts = d->ncomp;
		m.has |= DTX_F_STMTS;
	}
	if (!crd_send_part(self, &self->parts[st->part], &m))
		return false;
	st->maybe_sent = true;
	return true;
}

static const char *s_code_str(int code)
{
	return code == DTX_STEP_RUN     ? "step sent"
	       : code == DTX_STEP_PROBE ? "probe sent"
					: "compensation sent";
}

static void s_send_and_tell(crd_t *self, crd_saga_t *sg, uint32_t i, int code, int64_t now)
{
	bool again = sg->st[i].backoff_ms != 0;
	if (!s_send_step(self, sg, i, code, now))
		return;
	if (again)
		self->n_retries++;
	crd_event_saga(self, sg, (int)i, s_code_str(code), "%s", again ? "again" : "");
	if (code == DTX_STEP_RUN)
		dtx_crash_point("crd.step_sent");
	else if (code == DTX_STEP_COMPENSATE)
		dtx_crash_point("crd.comp_sent");
}

/* The steps of the group starting at i: [i, end). */
static uint32_t s_group_end(const crd_saga_t *sg, uint32_t i)
{
	uint32_t j = i + 1;
	uint32_t grp = s_def(sg, (int)i)->group;
	while (grp && j < sg->nsteps && s_def(sg, (int)j)->group == grp)
		j++;
	return j;
}

static void s_past_pivot(crd_t *self, crd_saga_t *sg, int step);

/* The next group forward, or the end. */
static void s_forward(crd_t *self, crd_saga_t *sg)
{
	int64_t now = dtx_now_ms();
	for (;;) {
		if ((sg->state != CRD_SAGA_RUNNING && sg->state != CRD_SAGA_FORWARD) ||
		    sg->turn_pending)
			return;
		if (sg->state == CRD_SAGA_RUNNING && sg->pivot < 0 &&
		    (int)sg->cursor >= sg->ncomp) {
			/* every compensable step done, and no pivot */
			s_past_pivot(self, sg, -1);
			return;
		}
		if (sg->cursor >= sg->nsteps) {
			crd_saga_move(self, sg, CRD_SAGA_COMPLETED, -1, NULL, P);
			return; /* gone */
		}
		uint32_t end = s_group_end(sg, sg->cursor);
		bool all_done = true;
		for (uint32_t i = sg->cursor; i < end; i++)
			all_done &= sg->st[i].state == CRD_STEP_DONE;
		if (!all_done) {
			for (uint32_t i = sg->cursor; i < end; i++)
				if (sg->st[i].state == CRD_STEP_PENDING &&
				    now >= sg->st[i].next_send_ms) {
					bool again = sg->st[i].backoff_ms != 0;
					if (!s_send_step(self, sg, i, DTX_STEP_RUN, now))
						continue; /* not connected: sent at its HELLO */
					sg->st[i].state = CRD_STEP_SENT;
					if (again)
						self->n_retries++;
					else
						self->n_steps++;
					crd_event_saga(self, sg, (int)i, "step sent", "%s%s",
						       s_def(sg, (int)i)->kind == DTX_STEP_PIVOT
							       ? "the pivot"
							       : "",
						       again ? " again" : "");
					dtx_crash_point("crd.step_sent");
				}
			return;
		}
		sg->cursor = end;
	}
}

/* The next compensation, in reverse order, or the end. */
static void s_compensate_next(crd_t *self, crd_saga_t *sg)
{
	int64_t now = dtx_now_ms();
	if (sg->state != CRD_SAGA_COMPENSATING)
		return;
	for (int i = (int)sg->cursor; i >= 0; i--) {
		crd_step_t *st = &sg->st[i];
		if (i >= sg->ncomp || !st->maybe_sent || st->state == CRD_STEP_COMPENSATED) {
			sg->cursor = i > 0 ? (uint32_t)i - 1 : 0;
			if (i == 0)
				break;
			continue;
		}
		if (st->state != CRD_STEP_COMPENSATING) {
			st->state = CRD_STEP_COMPENSATING;
			st->backoff_ms = 0;
			st->next_send_ms = 0;
		}
		if (now >= st->next_send_ms) {
			if (!st->backoff_ms)
				self->n_compensations++;
			s_send_and_tell(self, sg, (uint32_t)i, DTX_STEP_COMPENSATE, now);
		}
		return;
	}
	crd_saga_move(self, sg, CRD_SAGA_COMPENSATED, -1, NULL, P);
}

/* What entering sg's state means. */
static void s_entered(crd_t *self, crd_saga_t *sg)
{
	char gtid[DTX_GTID_MAX];
	crd_saga_gtid(self, sg, gtid, sizeof(gtid));
	switch (sg->state) {
	case CRD_SAGA_LOGGING:
	case CRD_SAGA_DECIDING:
	case CRD_SAGA_TURNING:
		/* DURABILITY: the forced record is queued; nothing about the
		 * saga leaves before its group commit returns
		 * (crd_saga_after_flush). */
		sg->flush_next = self->saga_flush_head;
		self->saga_flush_head = sg;
		break;
	case CRD_SAGA_RUNNING: s_forward(self, sg); break;
	case CRD_SAGA_FORWARD:
		sg->since_ms = dtx_now_ms();
		crd_event_saga(self, sg, sg->pivot, "forward", "past the point of no return");
		s_forward(self, sg);
		break;
	case CRD_SAGA_COMPENSATING:
		sg->since_ms = dtx_now_ms();
		crd_event_saga(self, sg, sg->culprit, "compensating", "%s", crd_text(sg->reason));
		/* Crash point: the decision to compensate is on disk, no
		 * compensation sent. */
		dtx_crash_point("crd.turn_logged");
		s_compensate_next(self, sg);
		break;
	case CRD_SAGA_COMPLETED:
	case CRD_SAGA_COMPENSATED: {
		bool done = sg->state == CRD_SAGA_COMPLETED;
		if (done)
			self->n_completed++;
		else
			self->n_compensated++;
		crd_event_saga(self, sg, done ? -1 : sg->culprit,
			       done ? "completed" : "compensated", "%s",
			       done ? "" : crd_text(sg->reason));
		dtx_debug_tx(gtid, "saga %s", done ? "completed" : "compensated");
		s_reply(self, sg,
			sg->heuristic ? DTX_OUTCOME_HEURISTIC
			: done        ? DTX_OUTCOME_COMPLETED
				      : DTX_OUTCOME_COMPENSATED);
		s_forget(self, sg);
		break;
	}
	default: break;
	}
}

void crd_saga_after_flush(crd_t *self, crd_saga_t *list)
{
	if (self->closing)
		return; /* stopping: what is left is recovery's */
	for (crd_saga_t *sg = list, *next; sg; sg = next) {
		next = sg->flush_next;
		sg->flush_next = NULL;
		switch (sg->state) {
		case CRD_SAGA_LOGGING:
			/* Crash point: the definition is on disk, no step sent. */
			dtx_crash_point("crd.saga_logged");
			crd_saga_move(self, sg,
				      sg->ncomp || sg->pivot >= 0 ? CRD_SAGA_RUNNING
								  : CRD_SAGA_FORWARD,
				      -1, NULL, P);
			break;
		case CRD_SAGA_DECIDING:
			crd_saga_move(self, sg, CRD_SAGA_FORWARD, -1, NULL, P);
			break;
		case CRD_SAGA_TURNING:
			crd_saga_move(self, sg, CRD_SAGA_COMPENSATING, -1, NULL, P);
			break;
		default: break;
		}
	}
}

/* --- turning around --------------------------------------------------------- */

/* The highest step that may have run, of those that have compensations. */
static int s_hi_sent(const crd_saga_t *sg)
{
	int hi = -1;
	for (int i = 0; i < sg->ncomp; i++)
		if (sg->st[i].maybe_sent)
			hi = i;
	return hi;
}

static void s_set_reason(crd_saga_t *sg, int culprit, const char *sqlstate, const char *why)
{
	sg->culprit = culprit;
	snprintf(sg->sqlstate, sizeof(sg->sqlstate), "%s", sqlstate ? sqlstate : "");
	const dtx_step_t *d = s_def(sg, culprit);
	s_text(&sg->reason, S_REASON_MAX, "step %s on %s: %.400s", d->name, d->participant, why);
}

static void s_probe(crd_t *self, crd_saga_t *sg)
{
	crd_step_t *pv = &sg->st[sg->pivot];
	if (pv->probing)
		return;
	pv->probing = true;
	pv->state = CRD_STEP_SENT;
	pv->backoff_ms = 0;
	s_send_and_tell(self, sg, (uint32_t)sg->pivot, DTX_STEP_PROBE, dtx_now_ms());
}

/*
 * Step culprit failed (or fell silent, or was found not to have run):
 * turn the saga around. A pivot that may have run is never presumed: it
 * is probed first, and the turn waits for the answer (turn_pending).
 */
static void s_turn(crd_t *self, crd_saga_t *sg, int culprit, const char *sqlstate, const char *why)
{
	char gtid[DTX_GTID_MAX];
	if (sg->state != CRD_SAGA_RUNNING)
		return;
	if (!sg->turn_pending)
		s_set_reason(sg, culprit, sqlstate, why);
	if (sg->pivot >= 0 && sg->st[sg->pivot].maybe_sent &&
	    sg->st[sg->pivot].state != CRD_STEP_FAILED) {
		if (!sg->turn_pending)
			sg->since_ms = dtx_now_ms();
		sg->turn_pending = true;
		s_probe(self, sg);
		return;
	}
	sg->turn_pending = false;
	int hi = s_hi_sent(sg);
	crd_saga_gtid(self, sg, gtid, sizeof(gtid));
	dtx_info_tx(gtid, "saga turns around: %s", crd_text(sg->reason));
	/* DURABILITY: the decision to compensate, forced; step = the highest
	 * step that may have run, so that recovery compensates as far. */
	int rc = crd_saga_move(self, sg, CRD_SAGA_TURNING, hi, sg->reason, P);
	if (rc) {
		/* nothing changed: the tick tries again */
		dtx_err_tx(gtid, "cannot log the decision to compensate: %s; trying again",
			   dtx_strerror(rc));
		if (!sg->turn_pending)
			sg->since_ms = dtx_now_ms();
		sg->turn_pending = true;
		return;
	}
	sg->cursor = hi < 0 ? 0 : (uint32_t)hi;
}

/* The point of no return passed: the pivot committed, or (no pivot) the
 * last compensable step did. */
static void s_past_pivot(crd_t *self, crd_saga_t *sg, int step)
{
	/* a pivot that said NO, then was found to have run: no failure */
	sg->turn_pending = false;
	sg->culprit = -1;
	sg->sqlstate[0] = '\0';
	s_text_clear(&sg->reason);
	if (sg->pivot >= 0)
		crd_saga_move(self, sg, CRD_SAGA_FORWARD, step, NULL, P);
	else if (crd_saga_move(self, sg, CRD_SAGA_DECIDING, step, NULL, P))
		/* DURABILITY: no barrier row proves this point: force it. Not
		 * queued: nothing changed, the tick tries again. */
		dtx_err("saga %" PRIu64 ": cannot queue its FORWARD record: trying again", sg->seq);
}

/* --- results ---------------------------------------------------------------- */

static void s_step_done(crd_t *self, crd_saga_t *sg, uint32_t i, const char *text)
{
	crd_step_t *st = &sg->st[i];
	if (st->state == CRD_STEP_DONE)
		return;
	st->state = CRD_STEP_DONE;
	st->probing = false;
	s_text_clear(&st->why);
	crd_event_saga(self, sg, (int)i, "step done", "%s", text ? text : "");
	if ((int)i == sg->pivot && sg->state == CRD_SAGA_RUNNING) {
		/* the pivot's own record is the move's */
		sg->cursor = i;
		s_past_pivot(self, sg, (int)i);
		return;
	}
	/* DURABILITY: a step's result is lazy; lost, the step is asked again. */
	s_log_lazy(self, sg, WAL_STEP_DONE, (int)i, NULL);
	dtx_crash_point("crd.step_result");
	s_forward(self, sg);
}

void crd_saga_on_result(crd_t *self, crd_part_t *p, const dtx_msg_t *m)
{
	dtx_gtid_t g;
	uint32_t i;
	char gtid[DTX_GTID_MAX], why[200];

	if (dtx_gid_parse(m->gtid, &g, &i) || strcmp(g.coord, self->cfg.id) != 0)
		return;
	crd_saga_t *sg = crd_saga_find(self, g.seq);
	if (!sg || sg->epoch != g.epoch || i >= sg->nsteps)
		return; /* finished, or not ours: a late or repeated answer */
	crd_step_t *st = &sg->st[i];
	crd_saga_gtid(self, sg, gtid, sizeof(gtid));
	/* Only the step's own participant answers for it. */
	if (st->part < 0 || &self->parts[st->part] != p) {
		dtx_warn_tx(gtid, "participant %s answered for step %u, which is %s's", p->name, i,
			    s_def(sg, (int)i)->participant);
		return;
	}
	if (crd_sagastate_awaits_flush(sg->state))
		return; /* nothing was sent since: an old answer */
	const char *text = (m->has & DTX_F_TEXT) ? m->text : "";
	snprintf(why, sizeof(why), "%s%s%.150s", (m->has & DTX_F_SQLSTATE) ? m->sqlstate : "",
		 (m->has & DTX_F_SQLSTATE) ? " " : "", text);

	if (m->asked == DTX_STEP_COMPENSATE) {
		if (sg->state != CRD_SAGA_COMPENSATING || st->state != CRD_STEP_COMPENSATING)
			return;
		if (m->code == DTX_RESULT_DONE) {
			st->state = CRD_STEP_COMPENSATED;
			s_text_clear(&st->why);
			crd_event_saga(self, sg, (int)i, "step compensated", "%s", text);
			s_log_lazy(self, sg, WAL_STEP_COMPENSATED, (int)i, NULL);
			dtx_crash_point("crd.comp_result");
			s_compensate_next(self, sg);
		} else {
			s_text(&st->why, S_WHY_MAX, "compensation failed: %.180s", why);
			crd_event_saga(self, sg, (int)i, "compensation failed", "%s; again", why);
		}
		return;
	}
	/* RUN or PROBE: whether the step ran. Once turned around, only the
	 * compensations count: they fence or undo whatever ran. */
	if (sg->state != CRD_SAGA_RUNNING && sg->state != CRD_SAGA_FORWARD)
		return;
	if (m->asked == DTX_STEP_PROBE && !st->probing)
		return;
	if (st->state == CRD_STEP_DONE || st->state == CRD_STEP_FAILED)
		return; /* settled: a repeated answer */
	if (m->code != DTX_RESULT_DONE && m->code != DTX_RESULT_FAILED &&
	    m->code != DTX_RESULT_FENCED) {
		dtx_warn_tx(gtid, "participant %s answered step %u with code %lld: ignored",
			    p->name, i, (long long)m->code);
		return;
	}
	const dtx_step_t *d = s_def(sg, (int)i);
	if (m->code == DTX_RESULT_DONE) {
		s_step_done(self, sg, i, text);
		return;
	}
	if (d->kind == DTX_STEP_RETRIABLE) {
		/* forward only: again after the back-off */
		st->state = CRD_STEP_PENDING;
		s_text(&st->why, S_WHY_MAX, "%s", why);
		crd_event_saga(self, sg, (int)i, "step failed", "%s; again", why);
		return;
	}
	if (d->kind == DTX_STEP_PIVOT && m->code == DTX_RESULT_FAILED) {
		/* A NO from the pivot: this try rolled back, but an earlier
		 * copy may still be running (a lock timeout on its barrier row
		 * looks the same). Probe: the barrier settles it. */
		crd_event_saga(self, sg, (int)i, "step failed", "%s", why);
		if (!sg->turn_pending)
			s_set_reason(sg, (int)i, (m->has & DTX_F_SQLSTATE) ? m->sqlstate : NULL,
				     text);
		if (!sg->turn_pending)
			sg->since_ms = dtx_now_ms();
		sg->turn_pending = true;
		s_probe(self, sg); /* or, probing already, the tick asks again */
		return;
	}
	/* A compensable step that failed, or a step fenced: it never ran. */
	st->state = CRD_STEP_FAILED;
	st->probing = false;
	s_text(&st->why, S_WHY_MAX, "%s", why);
	crd_event_saga(self, sg, (int)i, "step failed", "%s", why);
	s_log_lazy(self, sg, WAL_STEP_FAILED, (int)i, why);
	if (sg->state == CRD_SAGA_RUNNING)
		s_turn(self, sg, sg->turn_pending ? sg->culprit : (int)i,
		       (m->has & DTX_F_SQLSTATE) ? m->sqlstate : NULL,
		       m->code == DTX_RESULT_FENCED ? "it did not run" : text);
}

/* --- timeouts, retries, reconnects ----------------------------------------- */

static void s_drive(crd_t *self, crd_saga_t *sg, int64_t now, bool hello)
{
	switch (sg->state) {
	case CRD_SAGA_RUNNING: {
		if (sg->pivot >= 0 && sg->st[sg->pivot].probing) {
			if (now >= sg->st[sg->pivot].next_send_ms)
				s_send_and_tell(self, sg, (uint32_t)sg->pivot, DTX_STEP_PROBE, now);
			return;
		}
		if (sg->turn_pending) { /* its decision could not be queued before */
			s_turn(self, sg, sg->culprit, NULL, NULL);
			return;
		}
		/* what is due: the next group, a step whose send failed, or the
		 * forced record of a saga without a pivot that could not be
		 * queued before */
		(void)hello;
		s_forward(self, sg);
		if (sg->state != CRD_SAGA_RUNNING || sg->cursor >= sg->nsteps)
			return;
		uint32_t end = s_group_end(sg, sg->cursor);
		if (now >= sg->deadline_ms) {
			for (uint32_t i = sg->cursor; i < end; i++) {
				if (sg->st[i].state == CRD_STEP_DONE)
					continue;
				char why[200];
				snprintf(why, sizeof(why),
					 "no answer within the saga's %" PRIu32 " ms",
					 sg->timeout_ms);
				if ((int)i == sg->pivot && !sg->st[i].maybe_sent)
					sg->st[i].state = CRD_STEP_FAILED; /* never left */
				s_turn(self, sg, (int)i, NULL, why);
				return;
			}
		}
		return;
	}
	case CRD_SAGA_FORWARD: {
		uint32_t end = sg->cursor < sg->nsteps ? s_group_end(sg, sg->cursor) : sg->nsteps;
		for (uint32_t i = sg->cursor; i < end; i++) {
			crd_step_t *st = &sg->st[i];
			if (st->state == CRD_STEP_SENT && now >= st->next_send_ms)
				s_send_and_tell(self, sg, i, DTX_STEP_RUN, now);
		}
		s_forward(self, sg); /* PENDING ones due again */
		return;
	}
	case CRD_SAGA_COMPENSATING: s_compensate_next(self, sg); return;
	default: return;
	}
}

void crd_saga_tick(crd_t *self, int64_t now)
{
	for (crd_saga_t *sg = self->saga_head, *next; sg; sg = next) {
		next = sg->next;
		s_drive(self, sg, now, false);
	}
}

void crd_saga_on_hello(crd_t *self, int idx)
{
	int64_t now = dtx_now_ms();
	for (crd_saga_t *sg = self->saga_head, *next; sg; sg = next) {
		next = sg->next;
		bool owed = false;
		for (uint32_t i = 0; i < sg->nsteps; i++)
			if (sg->st[i].part == idx) {
				sg->st[i].backoff_ms = 0;
				sg->st[i].next_send_ms = 0;
				owed = true;
			}
		if (owed)
			s_drive(self, sg, now, true);
	}
}

bool crd_saga_stuck(const crd_t *self, const crd_saga_t *sg, int64_t now)
{
	if (sg->state == CRD_SAGA_RUNNING && !sg->turn_pending)
		return now - sg->deadline_ms > (int64_t)self->cfg.stuck_after_ms;
	return (sg->state == CRD_SAGA_FORWARD || sg->state == CRD_SAGA_COMPENSATING ||
		sg->state == CRD_SAGA_RUNNING) &&
	       now - sg->since_ms > (int64_t)self->cfg.stuck_after_ms;
}

/* --- beginning ----------------------------------------------------------------- */

void crd_saga_begin(crd_t *self, const dtx_peer_t *peer, dtx_msg_t *m, int slot)
{
	char gtid[DTX_GTID_MAX], text[200];
	uint64_t seq;
	int rc;

	if ((rc = wal_next_seq(self->wal, &seq))) {
		snprintf(text, sizeof(text), "cannot allocate a saga id: %s", dtx_strerror(rc));
		crd_send_error(self->client, peer, true, m->id, rc, text);
		return;
	}
	crd_saga_t *sg = s_alloc(m);
	if (!sg) {
		crd_send_error(self->client, peer, true, m->id, DTX_ENOMEM, "out of memory");
		return;
	}
	sg->seq = seq;
	sg->epoch = wal_epoch(self->wal);
	uint32_t timeout = (m->has & DTX_F_TIMEOUT) && m->timeout_ms ? m->timeout_ms
								     : self->cfg.default_timeout_ms;
	if (timeout > self->cfg.max_timeout_ms)
		timeout = self->cfg.max_timeout_ms;
	sg->timeout_ms = timeout;
	sg->begun_us = dtx_now_us();
	sg->deadline_ms = sg->begun_us / 1000 + timeout;
	sg->client = *peer;
	sg->req_id = m->id;
	sg->client_waiting = true;
	if (m->has & DTX_F_KEY)
		snprintf(sg->key, sizeof(sg->key), "%s", m->key);
	for (uint32_t i = 0; i < sg->nsteps; i++)
		sg->st[i].part = crd_part_index(self, m->steps[i].participant);
	sg->def = *m; /* takes the steps */
	memset(m, 0, sizeof(*m));
	/* in one block of the size it needs, not the 4 KiB chunks of its
	 * decode off the wire: 10,000 sagas may be in flight */
	dtx_msg_refit(&sg->def);
	if (s_insert(self, sg)) {
		crd_send_error(self->client, peer, true, sg->req_id, DTX_ENOMEM, "out of memory");
		dtx_msg_clear(&sg->def);
		s_free_texts(sg);
		free(sg);
		return;
	}
	if ((sg->client_slot = slot) >= 0)
		self->client_load[slot].inflight++;
	crd_saga_gtid(self, sg, gtid, sizeof(gtid));
	/* DURABILITY: the definition, forced (NONE -> LOGGING): recovery must
	 * be able to compensate whatever a step does. */
	if ((rc = crd_saga_move(self, sg, CRD_SAGA_LOGGING, -1, NULL, P))) {
		snprintf(text, sizeof(text), "cannot log the saga: %s", dtx_strerror(rc));
		crd_send_error(self->client, &sg->client, true, sg->req_id, rc, text);
		s_forget(self, sg);
		return;
	}
	dtx_debug_tx(gtid, "saga begun, %" PRIu32 " steps", sg->nsteps);
	if (sg->key[0])
		s_reply(self, sg, DTX_OUTCOME_ACTIVE);
	crd_event_saga(self, sg, -1, "begun", "%" PRIu32 " steps, timeout %" PRIu32 " ms",
		       sg->nsteps, timeout);
}

/* --- the operator --------------------------------------------------------------- */

int crd_saga_resolve(crd_t *self, crd_saga_t *sg, bool commit, const char *who, char *text,
		     size_t len)
{
	char note[256], gtid[DTX_GTID_MAX];
	crd_saga_gtid(self, sg, gtid, sizeof(gtid));
	if (crd_sagastate_awaits_flush(sg->state)) {
		snprintf(text, len, "%s waits for a group commit: try again", gtid);
		return DTX_EBUSY;
	}
	if (commit && sg->state != CRD_SAGA_FORWARD) {
		snprintf(text, len,
			 "%s is %s: only a saga past its point of no return can be completed by "
			 "hand",
			 gtid, crd_sagastate_shown(sg->state));
		return DTX_ESTATE;
	}
	if (sg->turn_pending) {
		snprintf(text, len, "%s is turning around already: its pivot is being asked", gtid);
		return DTX_EBUSY;
	}
	if (!commit && sg->state == CRD_SAGA_FORWARD) {
		snprintf(text, len, "%s is past its point of no return: it cannot be compensated",
			 gtid);
		return DTX_ESTATE;
	}
	snprintf(note, sizeof(note), "operator %.120s: %s", who,
		 commit                          ? "completed by hand, its steps left as they are"
		 : sg->state == CRD_SAGA_RUNNING ? "turned around by hand"
						 : "compensated by hand, its compensations left "
						   "as they are");
	sg->heuristic = true;
	self->n_heuristic++;
	s_log_lazy(self, sg, WAL_HEURISTIC, -1, note);
	crd_event_saga(self, sg, -1, "heuristic", "%s", note);
	dtx_log_ctx(DTX_LOG_WARNING, gtid, NULL, "%s", note);
	if (sg->state == CRD_SAGA_RUNNING) {
		/* the pivot's rule holds for the operator too */
		s_turn(self, sg, sg->cursor < sg->nsteps ? (int)sg->cursor : 0, NULL,
		       "turned around by the operator");
		snprintf(text, len, "%s: turned around, compensating", gtid);
		return 0;
	}
	crd_saga_move(self, sg, commit ? CRD_SAGA_COMPLETED : CRD_SAGA_COMPENSATED, -1, note, O);
	snprintf(text, len, "%s: %s by hand", gtid, commit ? "completed" : "compensated");
	return 0;
}

/* --- recovery -------------------------------------------------------------------- */

int crd_saga_logged_outcome(const wal_rec_t *recs, unsigned n)
{
	int outcome = DTX_OUTCOME_IN_DOUBT;
	for (unsigned i = 0; i < n; i++) {
		if (recs[i].kind == WAL_HEURISTIC)
			return DTX_OUTCOME_HEURISTIC;
		if (recs[i].kind == WAL_COMPLETED)
			outcome = DTX_OUTCOME_COMPLETED;
		else if (recs[i].kind == WAL_COMPENSATED)
			outcome = DTX_OUTCOME_COMPENSATED;
	}
	return outcome;
}

int crd_saga_recover(crd_t *self, const wal_rec_t *recs, unsigned n)
{
	char gtid[DTX_GTID_MAX], why[256];
	dtx_gtid_t g = {.epoch = recs[0].epoch, .seq = recs[0].seq};
	dtx_msg_t def = {0};
	int rc = 0;

	snprintf(g.coord, sizeof(g.coord), "%s", self->cfg.id);
	dtx_gtid_format(&g, gtid, sizeof(gtid));
	if (recs[0].body_len)
		rc = dtx_msg_decode_fit(recs[0].body, recs[0].body_len, &def, why, sizeof(why));
	if (rc == DTX_ENOMEM)
		return rc; /* recovery fails: nothing is forgotten */
	if (!recs[0].body_len || rc || def.type != DTX_T_SAGA ||
	    dtx_saga_check(def.steps, def.nsteps, why, sizeof(why))) {
		dtx_err_tx(gtid, "the saga's definition in the log cannot be read: not recovered");
		dtx_msg_clear(&def);
		return 0;
	}
	crd_saga_t *sg = s_alloc(&def);
	if (!sg) {
		dtx_msg_clear(&def);
		return DTX_ENOMEM;
	}
	sg->def = def;
	sg->seq = recs[0].seq;
	sg->epoch = recs[0].epoch;
	sg->nlog = (uint8_t)n;
	sg->timeout_ms = def.timeout_ms ? def.timeout_ms : self->cfg.default_timeout_ms;
	sg->deadline_ms = dtx_now_ms() + sg->timeout_ms;
	if (recs[0].key)
		snprintf(sg->key, sizeof(sg->key), "%s", recs[0].key);
	for (uint32_t i = 0; i < sg->nsteps; i++) {
		sg->st[i].part = crd_part_index(self, def.steps[i].participant);
		if (sg->st[i].part < 0)
			dtx_err_tx(gtid, "participant %s is no longer configured: step %s stuck",
				   def.steps[i].participant, def.steps[i].name);
	}
	bool turned = false, forward = false;
	int hi = -1, first_failed = -1;
	for (unsigned r = 1; r < n; r++) {
		int s = recs[r].step;
		bool valid = s >= 0 && (uint32_t)s < sg->nsteps;
		switch (recs[r].kind) {
		case WAL_STEP_DONE:
			if (valid)
				sg->st[s].state = CRD_STEP_DONE;
			break;
		case WAL_STEP_FAILED:
			if (valid) {
				sg->st[s].state = CRD_STEP_FAILED;
				s_text(&sg->st[s].why, S_WHY_MAX, "%s", crd_text(recs[r].note));
				if (first_failed < 0 || s < first_failed)
					first_failed = s;
				sg->culprit = s;
			}
			break;
		case WAL_COMPENSATING:
			turned = true;
			hi = s;
			s_text(&sg->reason, S_REASON_MAX, "%s", crd_text(recs[r].note));
			break;
		case WAL_STEP_COMPENSATED:
			if (valid)
				sg->st[s].state = CRD_STEP_COMPENSATED;
			break;
		case WAL_HEURISTIC: sg->heuristic = true; break;
		case WAL_FORWARD: forward = true; break;
		default: break;
		}
	}
	if (s_insert(self, sg)) {
		dtx_msg_clear(&sg->def);
		s_free_texts(sg);
		free(sg);
		return DTX_ENOMEM;
	}
	if (turned) {
		/* compensate as far as any step may have run */
		for (int i = 0; i <= hi && i < sg->ncomp; i++)
			sg->st[i].maybe_sent = true;
		sg->cursor = hi < 0 ? 0 : (uint32_t)hi;
		crd_saga_move(self, sg, CRD_SAGA_COMPENSATING, -1, NULL, R);
		dtx_notice_tx(gtid, "recovered saga with its decision to compensate: compensating");
		dtx_crash_point("crd.recovered_one");
		return 0;
	}
	/* Forward past the point of no return? The pivot's result, or
	 * without a pivot the forced FORWARD record, says so. */
	bool past = sg->pivot >= 0 ? sg->st[sg->pivot].state == CRD_STEP_DONE
				   : sg->ncomp == 0 || forward;
	/* Which steps may have run: every one up to the point of no return.
	 * (Not fewer because a step is logged failed: after an earlier crash
	 * every step was sent again, and a repeated RUN of a step that had
	 * run may fail on its own, its connection lost say.) */
	uint32_t upto = sg->pivot >= 0 ? (uint32_t)sg->pivot + 1 : (uint32_t)sg->ncomp;
	for (uint32_t i = 0; i < sg->nsteps; i++)
		sg->st[i].maybe_sent = i < upto;
	sg->cursor = 0;
	if (past) {
		sg->cursor = sg->pivot >= 0 ? (uint32_t)sg->pivot + 1 : (uint32_t)sg->ncomp;
		for (uint32_t i = sg->cursor; i < sg->nsteps; i++)
			if (sg->st[i].state != CRD_STEP_DONE)
				sg->st[i].state = CRD_STEP_PENDING;
		crd_saga_move(self, sg, CRD_SAGA_FORWARD, -1, NULL, R);
		dtx_notice_tx(gtid, "recovered saga past its point of no return: going forward");
	} else {
		for (uint32_t i = 0; i < sg->nsteps; i++)
			if (sg->st[i].state == CRD_STEP_SENT)
				sg->st[i].state = CRD_STEP_PENDING;
		crd_saga_move(self, sg, CRD_SAGA_RUNNING, -1, NULL, R);
		if (first_failed >= 0)
			/* it failed before the crash: turn around now, the pivot's
			 * rule first (probed if it may have left) */
			s_turn(self, sg, first_failed, NULL, crd_text(sg->st[first_failed].why));
		dtx_notice_tx(gtid, "recovered saga before its point of no return: %s",
			      first_failed >= 0 ? "compensating" : "asking its steps again");
	}
	dtx_crash_point("crd.recovered_one");
	return 0;
}
