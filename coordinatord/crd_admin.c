/*
 * crd_admin.c — the admin endpoint (dtxctl): a ROUTER socket on an ipc://
 * path only its owner can reach, and one table of handlers. Requests and
 * replies are libdtx's typed admin protocol (dtx_admin.h): the command
 * table there says which arguments each command takes and checks them
 * before a handler runs; a handler answers with rows, each one item
 * (a transaction, a record, a participant), and leaves the prose to
 * dtxctl. Reads first flush what is queued, so that what the operator
 * reads from the log includes every record so far. The operator's acts
 * (resolve, forget) are moves of the state machine by CRD_BY_OPERATOR and
 * leave a HEURISTIC record saying who did what.
 */
#include "config.h"

#include <pwd.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crd_int.h"
#include "dtx_admin.h"

/* The most items one list answers with, well under DTX_WIRE_MAX_ITEMS
 * rows: past it a "limit" row says only the first LIST_MAX are there. */
#define LIST_MAX 1000

typedef struct {
	dtx_reply_t *r;
	const char *filter;    /* a state, or NULL */
	crd_t *self;
	unsigned shown;
} s_list_t;

static int s_list_fn(const wal_rec_t *recs, unsigned n, void *arg)
{
	s_list_t *l = arg;
	const wal_rec_t *last = &recs[n - 1];
	dtx_gtid_t g = {.epoch = recs[0].epoch, .seq = recs[0].seq};
	char gtid[DTX_GTID_MAX];
	crd_tx_t *tx = crd_tx_find(l->self, recs[0].seq);
	crd_saga_t *sg = recs[0].kind == WAL_SAGA ? crd_saga_find(l->self, recs[0].seq) : NULL;
	const char *state = tx   ? crd_txstate_shown(tx->state)
			    : sg ? crd_sagastate_shown(sg->state)
			    : recs[0].kind == WAL_SAGA && !wal_kind_is_end(last->kind)
				    ? "running"
				    : wal_kind_str(last->kind);

	if (!tx && !sg && crd_recs_heuristic(recs, n))
		state = "heuristic";
	if (l->filter && strcmp(l->filter, state) != 0)
		return 0;
	if (l->shown++ >= LIST_MAX)
		return 1;
	snprintf(g.coord, sizeof(g.coord), "%s", l->self->cfg.id);
	dtx_gtid_format(&g, gtid, sizeof(gtid));
	dtx_reply_row(l->r, recs[0].kind == WAL_SAGA ? "saga" : "transaction");
	dtx_reply_str(l->r, DTX_A_GTID, gtid);
	dtx_reply_str(l->r, DTX_A_STATE, state);
	dtx_reply_i64(l->r, DTX_A_WHEN_US, recs[0].at_us);
	dtx_reply_strs_empty(l->r, DTX_A_PARTICIPANTS);
	for (unsigned i = 0; i < recs[0].nparts; i++)
		dtx_reply_push(l->r, DTX_A_PARTICIPANTS, recs[0].parts[i]);
	return 0;
}

static int s_show_fn(const wal_rec_t *recs, unsigned n, void *arg)
{
	dtx_reply_t *r = arg;
	for (unsigned i = 0; i < n; i++) {
		dtx_reply_row(r, "record");
		dtx_reply_i64(r, DTX_A_WHEN_US, recs[i].at_us);
		dtx_reply_str(r, DTX_A_STATE, wal_kind_str(recs[i].kind));
		/* Only the begin record names the participants. */
		if (recs[i].step >= 0 && recs[i].kind >= WAL_SAGA)
			dtx_reply_u64(r, DTX_A_INDEX, (uint64_t)recs[i].step);
		if (recs[i].kind == WAL_ACTIVE || recs[i].kind == WAL_SAGA)
			for (unsigned p = 0; p < recs[i].nparts; p++)
				dtx_reply_push(r, DTX_A_PARTICIPANTS, recs[i].parts[p]);
		if (recs[i].note)
			dtx_reply_str(r, DTX_A_NOTE, recs[i].note);
	}
	return 0;
}

static int s_count_heuristic_fn(const wal_rec_t *recs, unsigned n, void *arg)
{
	*(unsigned *)arg += crd_recs_heuristic(recs, n);
	return 0;
}

/* One in-doubt branch left to the operator (status, list --state in-doubt). */
static void s_row_orphan(crd_t *self, dtx_reply_t *r, unsigned i)
{
	dtx_reply_row(r, "in_doubt");
	dtx_reply_str(r, DTX_A_GID, self->orphans[i].gid);
	dtx_reply_str(r, DTX_A_PARTICIPANT, self->orphans[i].part);
	dtx_reply_bool(r, DTX_A_PRUNED, self->orphans[i].pruned);
}

/* The in-doubt branches, the first LIST_MAX of them: there is no bound on
 * how many agents may report, and a reply has one on its rows. */
static void s_rows_orphans(crd_t *self, dtx_reply_t *r)
{
	for (unsigned i = 0; i < self->norphans && i < LIST_MAX; i++)
		s_row_orphan(self, r, i);
	if (self->norphans > LIST_MAX) {
		dtx_reply_row(r, "limit");
		dtx_reply_u64(r, DTX_A_COUNT, LIST_MAX);
	}
}

/* Every branch owes its acknowledgement again: the decision goes to all. */
static void s_unack_all(crd_tx_t *tx)
{
	for (uint32_t i = 0; i < tx->nbranches; i++) {
		tx->br[i].acked = false;
		tx->br[i].backoff_ms = 0;
	}
}

/* A decision on branches the log does not know (orphans of g): sent to
 * each agent holding one, then left to it. One action row a branch. */
static void s_resolve_orphans(crd_t *self, dtx_reply_t *r, const dtx_gtid_t *g, int o, bool commit,
			      const char *verb, const char *note)
{
	for (; o >= 0; o = crd_orphan_find(self, g, (unsigned)o)) {
		const crd_orphan_t *orph = &self->orphans[o];
		int idx = crd_part_index(self, orph->part);
		dtx_msg_t d = {.type = DTX_T_DECIDE,
			       .has = DTX_F_GTID | DTX_F_CODE,
			       .gtid = orph->gid,
			       .code = commit ? DTX_DECIDE_COMMIT : DTX_DECIDE_ROLLBACK};
		bool sent = idx >= 0 && crd_send_part(self, &self->parts[idx], &d);
		dtx_reply_row(r, "action");
		dtx_reply_str(r, DTX_A_GID, orph->gid);
		dtx_reply_str(r, DTX_A_PARTICIPANT, orph->part);
		dtx_reply_str(r, DTX_A_VERB, verb);
		dtx_reply_bool(r, DTX_A_SENT, sent);
		dtx_log_ctx(DTX_LOG_NOTICE, orph->gid, orph->part,
			    "%s on %s: %s (heuristic decision; %s)", orph->gid, orph->part, note,
			    crd_orphan_why(self, (unsigned)o));
		crd_orphan_drop(self, (unsigned)o);
	}
}

/* resolve {gtid, verb, force, who} */
static void s_cmd_resolve(crd_t *self, const dtx_msg_t *m, dtx_reply_t *r)
{
	const char *gtid_s = dtx_admin_arg_str(m, DTX_A_GTID);
	const char *verb = dtx_admin_arg_str(m, DTX_A_VERB);
	const char *who = self->admin_operator;
	bool commit = strcmp(verb, "commit") == 0, force = dtx_admin_arg_bool(m, DTX_A_FORCE);
	const char *state;
	char note[WAL_NOTE_MAX];
	dtx_gtid_t g;
	crd_tx_t *tx;
	int rc;

	int st = crd_status_of(self, gtid_s, &g, &tx);
	snprintf(note, sizeof(note), "operator %s: resolve %s%s", who, verb,
		 force ? " (forced)" : "");
	crd_saga_t *sg = !tx && strcmp(g.coord, self->cfg.id) == 0 ? crd_saga_find(self, g.seq)
								   : NULL;
	if (sg && sg->epoch == g.epoch) {
		char text[300];
		if ((rc = crd_saga_resolve(self, sg, commit, who, text, sizeof(text)))) {
			dtx_reply_error(r, rc, "%s", text);
			return;
		}
		dtx_reply_row(r, "result");
		dtx_reply_str(r, DTX_A_GTID, gtid_s);
		dtx_reply_str(r, DTX_A_VERB, verb);
		dtx_reply_str(r, DTX_A_NOTE, text);
		return;
	}

	if (!tx) {
		int o = strcmp(g.coord, self->cfg.id) == 0 ? crd_orphan_find(self, &g, 0) : -1;
		if (o >= 0) {
			s_resolve_orphans(self, r, &g, o, commit, verb, note);
			return;
		}
		if (st == DTX_OUTCOME_UNKNOWN || st == DTX_OUTCOME_IN_DOUBT) {
			dtx_reply_error(r, DTX_ENOTFOUND,
					"%s: no such transaction in flight or in the log%s", gtid_s,
					st == DTX_OUTCOME_IN_DOUBT
						? " (pruned?), and no branch of it in doubt"
						: "");
			return;
		}
		dtx_reply_error(r, DTX_ESTATE, "%s: already finished (%s)", gtid_s,
				dtx_outcome_str(st));
		return;
	}
	if (crd_txstate_awaits_flush(tx->state)) {
		dtx_reply_error(r, DTX_EBUSY, "%s: its decision is being written: try again",
				gtid_s);
		return;
	}
	bool decided = crd_txstate_in_phase_two(tx->state);
	bool same = (tx->state == CRD_TX_COMMITTING) == commit;
	if (decided && same) {
		s_unack_all(tx);
		for (uint32_t i = 0; i < tx->nbranches; i++)
			crd_send_decision(self, tx, i, dtx_now_ms());
		dtx_reply_row(r, "result");
		dtx_reply_str(r, DTX_A_GTID, gtid_s);
		dtx_reply_str(r, DTX_A_STATE, crd_txstate_shown(tx->state));
		dtx_reply_bool(r, DTX_A_RESENT, true);
		return;
	}
	if (decided && !force) {
		dtx_reply_error(r, DTX_ESTATE,
				"%s: the log holds %s for it; --force contradicts it "
				"(branches that already applied it become heuristic)",
				gtid_s, tx->state == CRD_TX_COMMITTING ? "COMMIT" : "ABORT");
		return;
	}
	crd_tx_heuristic(self, tx, NULL, note);
	if (commit) {
		if (decided)
			for (uint32_t i = 0; i < tx->nbranches; i++)
				tx->br[i].acked = false; /* the commit goes to all */
		rc = crd_tx_move(self, tx, CRD_TX_DECIDING, note, CRD_BY_OPERATOR);
		state = crd_txstate_shown(tx->state);
	} else if (decided) {
		s_unack_all(tx);
		rc = crd_tx_move(self, tx, CRD_TX_ABORTING, note, CRD_BY_OPERATOR);
		state = crd_txstate_shown(tx->state);
	} else {
		char reason[WAL_NOTE_MAX + 16];
		snprintf(reason, sizeof(reason), "aborted by %s", note);
		/* false: every branch was done and tx is gone, aborted */
		state = crd_abort(self, tx, NULL, NULL, reason) ? crd_txstate_shown(tx->state)
								: "aborted";
		rc = 0;
	}
	if (rc) {
		dtx_reply_error(r, rc, "%s: not %s: %s", gtid_s, verb, dtx_strerror(rc));
		return;
	}
	dtx_reply_row(r, "result");
	dtx_reply_str(r, DTX_A_GTID, gtid_s);
	dtx_reply_str(r, DTX_A_STATE, state);
	dtx_reply_str(r, DTX_A_VERB, verb);
	dtx_reply_str(r, DTX_A_NOTE, note);
}

/* forget {gtid, who} */
static void s_cmd_forget(crd_t *self, const dtx_msg_t *m, dtx_reply_t *r)
{
	const char *gtid_s = dtx_admin_arg_str(m, DTX_A_GTID);
	const char *who = self->admin_operator;
	char note[WAL_NOTE_MAX];
	dtx_gtid_t g;
	crd_tx_t *tx;

	int st = crd_status_of(self, gtid_s, &g, &tx);
	if (!tx && strcmp(g.coord, self->cfg.id) == 0 && crd_saga_find(self, g.seq)) {
		dtx_reply_error(r, DTX_ESTATE,
				"%s is a saga: end it by hand with resolve (commit: completed, "
				"abort: compensated)",
				gtid_s);
		return;
	}
	if (!tx) {
		int o = strcmp(g.coord, self->cfg.id) == 0 ? crd_orphan_find(self, &g, 0) : -1;
		if (o < 0) {
			dtx_reply_error(r, st == DTX_OUTCOME_UNKNOWN ? DTX_ENOTFOUND : DTX_ESTATE,
					"%s: not in flight (%s)", gtid_s, dtx_outcome_str(st));
			return;
		}
		for (; o >= 0; o = crd_orphan_find(self, &g, (unsigned)o)) {
			dtx_log_ctx(
				DTX_LOG_NOTICE, self->orphans[o].gid, self->orphans[o].part,
				"%s@%s: forgotten by operator %s (left prepared in its database)",
				self->orphans[o].gid, self->orphans[o].part, who);
			dtx_reply_row(r, "action");
			dtx_reply_str(r, DTX_A_GID, self->orphans[o].gid);
			dtx_reply_str(r, DTX_A_PARTICIPANT, self->orphans[o].part);
			dtx_reply_str(r, DTX_A_VERB, "forget");
			crd_orphan_drop(self, (unsigned)o);
		}
		return;
	}
	if (tx->state == CRD_TX_DECIDING) {
		dtx_reply_error(r, DTX_EBUSY, "%s: its decision is being written: try again",
				gtid_s);
		return;
	}
	if (!crd_txstate_in_phase_two(tx->state)) {
		dtx_reply_error(r, DTX_ESTATE, "%s: undecided; resolve it first", gtid_s);
		return;
	}
	dtx_reply_row(r, "result");
	dtx_reply_str(r, DTX_A_GTID, gtid_s);
	/* The decision it was driving: crd_settle() below ends (and frees) it. */
	dtx_reply_str(r, DTX_A_STATE, crd_txstate_shown(tx->state));
	dtx_reply_strs_empty(r, DTX_A_WAITING);
	size_t off = (size_t)snprintf(note, sizeof(note),
				      "operator %s: forgotten; unacknowledged:", who);
	for (uint32_t i = 0; i < tx->nbranches; i++) {
		if (tx->br[i].acked)
			continue;
		dtx_reply_push(r, DTX_A_WAITING, tx->br[i].name);
		if (off < sizeof(note))
			off += (size_t)snprintf(note + off, sizeof(note) - off, " %s",
						tx->br[i].name);
	}
	dtx_reply_str(r, DTX_A_NOTE, note);
	crd_tx_heuristic(self, tx, NULL, note);
	for (uint32_t i = 0; i < tx->nbranches; i++)
		tx->br[i].acked = true;
	crd_settle(self, tx);
}

/* list --state stuck: decided transactions phase two cannot finish alone,
 * and sagas whose steps or compensations keep failing. */
static void s_list_stuck(crd_t *self, dtx_reply_t *r)
{
	int64_t now = dtx_now_ms();
	unsigned shown = 0;

	for (crd_saga_t *sg = self->saga_head; sg; sg = sg->next) {
		if (!crd_saga_stuck(self, sg, now))
			continue;
		if (shown++ >= LIST_MAX)
			break;
		char gtid[DTX_GTID_MAX];
		crd_saga_gtid(self, sg, gtid, sizeof(gtid));
		dtx_reply_row(r, "transaction");
		dtx_reply_str(r, DTX_A_GTID, gtid);
		dtx_reply_str(r, DTX_A_STATE, crd_sagastate_shown(sg->state));
		dtx_reply_u64(r, DTX_A_AGE_MS,
			      now > sg->since_ms ? (uint64_t)(now - sg->since_ms) : 0);
		dtx_reply_strs_empty(r, DTX_A_WAITING);
		dtx_reply_strs_empty(r, DTX_A_UNCONFIGURED);
		const char *pushed[DTX_SAGA_MAX_STEPS];
		unsigned npushed = 0;
		for (uint32_t i = 0; i < sg->nsteps; i++) {
			uint8_t st = sg->st[i].state;
			bool waiting = sg->state == CRD_SAGA_COMPENSATING
					       ? st == CRD_STEP_COMPENSATING
					       : st == CRD_STEP_SENT || st == CRD_STEP_PENDING;
			if (!waiting || (sg->state == CRD_SAGA_FORWARD && i < sg->cursor))
				continue;
			const char *p = sg->def.steps[i].participant;
			bool seen = false;
			for (unsigned k = 0; k < npushed && !seen; k++)
				seen = strcmp(pushed[k], p) == 0;
			if (seen)
				continue;
			pushed[npushed++] = p;
			dtx_reply_push(r, DTX_A_WAITING, p);
			if (sg->st[i].part < 0)
				dtx_reply_push(r, DTX_A_UNCONFIGURED, p);
		}
	}

	for (crd_tx_t *tx = self->head; tx; tx = tx->next) {
		bool unconfigured = false;
		for (uint32_t i = 0; i < tx->nbranches; i++)
			unconfigured |= tx->br[i].part < 0 && !tx->br[i].acked;
		int kind = crd_txstate_kind(tx->state);
		if ((kind != WAL_COMMITTING && kind != WAL_ABORTING) ||
		    (now - tx->decided_ms < (int64_t)self->cfg.stuck_after_ms && !unconfigured))
			continue;
		if (shown++ >= LIST_MAX) {
			dtx_reply_row(r, "limit");
			dtx_reply_u64(r, DTX_A_COUNT, LIST_MAX);
			break;
		}
		char gtid[DTX_GTID_MAX];
		crd_tx_gtid(self, tx, gtid, sizeof(gtid));
		dtx_reply_row(r, "transaction");
		dtx_reply_str(r, DTX_A_GTID, gtid);
		dtx_reply_str(r, DTX_A_STATE, crd_txstate_shown(tx->state));
		dtx_reply_u64(r, DTX_A_AGE_MS,
			      now > tx->decided_ms ? (uint64_t)(now - tx->decided_ms) : 0);
		dtx_reply_strs_empty(r, DTX_A_WAITING);
		dtx_reply_strs_empty(r, DTX_A_UNCONFIGURED);
		for (uint32_t i = 0; i < tx->nbranches; i++) {
			if (tx->br[i].acked)
				continue;
			dtx_reply_push(r, DTX_A_WAITING, tx->br[i].name);
			if (tx->br[i].part < 0)
				dtx_reply_push(r, DTX_A_UNCONFIGURED, tx->br[i].name);
		}
	}
}

static void s_cmd_status(crd_t *self, const dtx_msg_t *m, dtx_reply_t *r)
{
	unsigned by_kind[WAL_IN_DOUBT + 1] = {0}, heur = 0;
	int64_t now = dtx_now_ms(), up_us = dtx_wall_us() - self->started_us;
	(void)m;

	for (crd_tx_t *tx = self->head; tx; tx = tx->next)
		by_kind[crd_txstate_kind(tx->state)]++;
	dtx_reply_row(r, "coordinator");
	dtx_reply_str(r, DTX_A_COORDINATOR, self->cfg.id);
	dtx_reply_u64(r, DTX_A_EPOCH, wal_epoch(self->wal));
	dtx_reply_u64(r, DTX_A_UPTIME_S, up_us > 0 ? (uint64_t)(up_us / 1000000) : 0);
	dtx_reply_row(r, "in_flight");
	dtx_reply_u64(r, DTX_A_COUNT, self->ntx);
	dtx_reply_u64(r, DTX_A_ACTIVE, by_kind[WAL_ACTIVE]);
	dtx_reply_u64(r, DTX_A_PREPARING, by_kind[WAL_PREPARING]);
	dtx_reply_u64(r, DTX_A_COMMITTING, by_kind[WAL_COMMITTING]);
	dtx_reply_u64(r, DTX_A_ABORTING, by_kind[WAL_ABORTING]);
	dtx_reply_row(r, "transactions");
	dtx_reply_u64(r, DTX_A_COMMITTED, self->n_committed);
	dtx_reply_u64(r, DTX_A_ABORTED, self->n_aborted);
	dtx_reply_u64(r, DTX_A_HEURISTIC, self->n_heuristic);
	dtx_reply_row(r, "sagas");
	dtx_reply_u64(r, DTX_A_SAGAS, self->nsagas);
	dtx_reply_u64(r, DTX_A_COMPLETED, self->n_completed);
	dtx_reply_u64(r, DTX_A_COMPENSATED, self->n_compensated);
	dtx_reply_row(r, "group_commits");
	dtx_reply_u64(r, DTX_A_COUNT, self->n_flushes);
	dtx_reply_u64(r, DTX_A_RECORDS, self->n_flushed);
	dtx_reply_u64(r, DTX_A_DECISIONS, self->n_decisions);
	for (unsigned i = 0; i < self->nparts; i++) {
		const crd_part_t *p = &self->parts[i];
		dtx_reply_row(r, "participant");
		dtx_reply_str(r, DTX_A_PARTICIPANT, p->name);
		dtx_reply_bool(r, DTX_A_UP, p->connected);
		if (p->connected)
			dtx_reply_u64(r, DTX_A_LAST_SEEN_MS,
				      now > p->last_seen_ms ? (uint64_t)(now - p->last_seen_ms)
							    : 0);
		dtx_reply_bool(r, DTX_A_ALLOWED, p->allowed);
	}
	wal_scan(self->wal, false, s_count_heuristic_fn, &heur);
	dtx_reply_row(r, "log");
	dtx_reply_u64(r, DTX_A_HEURISTIC, heur);
	dtx_reply_i64(r, DTX_A_CODE, self->log_failing);
	s_rows_orphans(self, r);
}

static void s_cmd_watch(crd_t *self, const dtx_msg_t *m, dtx_reply_t *r)
{
	(void)m;
	dtx_reply_row(r, "endpoint");
	dtx_reply_str(r, DTX_A_ENDPOINT, self->cfg.events_endpoint);
}

static void s_cmd_stats(crd_t *self, const dtx_msg_t *m, dtx_reply_t *r)
{
	(void)m;
	crd_stats_rows(self, r);
}

/* list {state?}: dtx_admin_check() let only the table's states through. */
static void s_cmd_list(crd_t *self, const dtx_msg_t *m, dtx_reply_t *r)
{
	const char *state = dtx_admin_arg_str(m, DTX_A_STATE);
	int rc;

	if (state && strcmp(state, "in-doubt") == 0) {
		s_rows_orphans(self, r);
		return;
	}
	if (state && strcmp(state, "stuck") == 0) {
		s_list_stuck(self, r);
		return;
	}
	s_list_t l = {.r = r, .filter = state, .self = self};
	if ((rc = wal_scan(self->wal, false, s_list_fn, &l)) && rc != 1) {
		dtx_reply_error(r, rc, "log scan failed: %s", dtx_strerror(rc));
		return;
	}
	if (l.shown > LIST_MAX) {
		dtx_reply_row(r, "limit");
		dtx_reply_u64(r, DTX_A_COUNT, LIST_MAX);
	}
}

static const char *s_vote_str(int vote)
{
	switch (vote) {
	case DTX_VOTE_YES: return "yes";
	case DTX_VOTE_NO: return "no";
	case DTX_VOTE_READONLY: return "read-only";
	case DTX_VOTE_COMMITTED: return "committed";
	default: return "none";
	}
}

/* show {gtid} */
static void s_cmd_show(crd_t *self, const dtx_msg_t *m, dtx_reply_t *r)
{
	const char *gtid_s = dtx_admin_arg_str(m, DTX_A_GTID);
	dtx_gtid_t g;
	crd_tx_t *tx;
	int st = crd_status_of(self, gtid_s, &g, &tx);

	crd_saga_t *sg = !tx && strcmp(g.coord, self->cfg.id) == 0 ? crd_saga_find(self, g.seq)
								   : NULL;
	if (sg && sg->epoch != g.epoch)
		sg = NULL;
	dtx_reply_row(r, "transaction");
	dtx_reply_str(r, DTX_A_GTID, gtid_s);
	dtx_reply_str(r, DTX_A_STATE,
		      tx   ? crd_txstate_shown(tx->state)
		      : sg ? crd_sagastate_shown(sg->state)
			   : dtx_outcome_str(st));
	if (tx && tx->reason[0])
		dtx_reply_str(r, DTX_A_REASON, tx->reason);
	if (sg && sg->reason)
		dtx_reply_str(r, DTX_A_REASON, sg->reason);
	if (sg) {
		wal_history(self->wal, g.seq, s_show_fn, r);
		for (uint32_t i = 0; i < sg->nsteps; i++) {
			const dtx_step_t *d = &sg->def.steps[i];
			dtx_reply_row(r, "step");
			dtx_reply_u64(r, DTX_A_INDEX, i);
			dtx_reply_str(r, DTX_A_STEP, d->name);
			dtx_reply_str(r, DTX_A_PARTICIPANT, d->participant);
			dtx_reply_str(r, DTX_A_VERB,
				      d->kind == DTX_STEP_PIVOT       ? "pivot"
				      : d->kind == DTX_STEP_RETRIABLE ? "retriable"
								      : "compensable");
			dtx_reply_str(r, DTX_A_STATE, crd_stepstate_str(sg->st[i].state));
			if (sg->st[i].why)
				dtx_reply_str(r, DTX_A_REASON, sg->st[i].why);
		}
		return;
	}
	/* Not found: presumed aborted (UNKNOWN), or not a GTID of this log at
	 * all (another coordinator's, or of an epoch the log never had, which
	 * a QUERY may call in doubt). A pruned one is found, its records gone. */
	bool ours = strcmp(g.coord, self->cfg.id) == 0 && g.epoch >= wal_first_epoch(self->wal) &&
		    g.epoch <= wal_epoch(self->wal);
	if (!tx && (st == DTX_OUTCOME_UNKNOWN || !ours)) {
		dtx_reply_code(r, DTX_ENOTFOUND);
		return;
	}
	/* A history the log no longer has leaves no record row: dtxctl says so. */
	wal_history(self->wal, g.seq, s_show_fn, r);
	for (uint32_t i = 0; tx && i < tx->nbranches; i++) {
		dtx_reply_row(r, "branch");
		dtx_reply_u64(r, DTX_A_INDEX, i);
		dtx_reply_str(r, DTX_A_PARTICIPANT, tx->br[i].name);
		dtx_reply_str(r, DTX_A_VOTE, s_vote_str(tx->br[i].vote));
		dtx_reply_bool(r, DTX_A_ACKED, tx->br[i].acked);
	}
}

/* The handlers, by dtx_admin_cmds' names. Each fills the reply: rows, or
 * a refusal's code and text; a builder's error sticks in it and is
 * answered for at the end. */
static const struct {
	const char *name;
	void (*fn)(crd_t *self, const dtx_msg_t *m, dtx_reply_t *r);
} s_cmds[] = {
	{"status", s_cmd_status},   {"watch", s_cmd_watch},   {"stats", s_cmd_stats},
	{"resolve", s_cmd_resolve}, {"forget", s_cmd_forget}, {"list", s_cmd_list},
	{"show", s_cmd_show},
};

/*
 * Who an operator act is logged as: the user of the process at the other
 * end of the admin socket, as the kernel says (SO_PEERCRED, through the
 * ZAP handler's "uid:N"), never what dtxctl says ("who", kept on the wire
 * for older dtxctl and ignored).
 */
static void s_operator(const dtx_peer_t *peer, char *buf, size_t len)
{
	char *end;
	long uid = strncmp(peer->user, "uid:", 4) == 0 ? strtol(peer->user + 4, &end, 10) : -1;
	struct passwd *pw = uid >= 0 ? getpwuid((uid_t)uid) : NULL;
	if (uid < 0)
		snprintf(buf, len, "unknown");
	else
		snprintf(buf, len, "uid %ld (%s)", uid, pw ? pw->pw_name : "?");
}

void crd_on_admin(crd_t *self, const dtx_peer_t *peer, const void *data, size_t len)
{
	const dtx_admin_cmd_t *cmd;
	dtx_reply_t *r = NULL;
	dtx_msg_t m, out;
	char why[256];
	int rc;

	if (dtx_decode_or_refuse(self->admin, peer, data, len, &m, "admin"))
		return;
	if (m.type != DTX_T_ADMIN) {
		crd_send_error(self->admin, peer, (m.has & DTX_F_ID) != 0, m.id, DTX_EPROTO,
			       "the admin endpoint takes ADMIN only");
		goto out;
	}
	if (!(r = dtx_reply_new(m.id))) {
		crd_send_error(self->admin, peer, (m.has & DTX_F_ID) != 0, m.id, DTX_ENOMEM,
			       dtx_strerror(DTX_ENOMEM));
		goto out;
	}
	if ((rc = dtx_admin_check(&m, &cmd, why, sizeof(why)))) {
		dtx_reply_error(r, rc, "%s", why);
	} else {
		size_t i = 0;
		crd_flush_for_read(self);
		s_operator(peer, self->admin_operator, sizeof(self->admin_operator));
		while (i < sizeof(s_cmds) / sizeof(s_cmds[0]) && strcmp(s_cmds[i].name, cmd->name))
			i++;
		if (i < sizeof(s_cmds) / sizeof(s_cmds[0]))
			s_cmds[i].fn(self, &m, r);
		else /* in libdtx's table, not yet in this coordinator's */
			dtx_reply_error(r, DTX_EINVAL, "unknown admin command '%s'", cmd->name);
	}
	if ((rc = dtx_reply_msg(r, &out))) {
		dtx_err("admin %s: reply not built: %s", m.name, dtx_strerror(rc));
		crd_send_error(self->admin, peer, (m.has & DTX_F_ID) != 0, m.id, rc,
			       dtx_strerror(rc));
	} else {
		crd_send(self->admin, peer, &out);
	}
out:
	dtx_reply_destroy(&r);
	dtx_msg_clear(&m);
}
