/*
 * crd_twopc.c — two-phase commit (and its one-phase case) as a driver of
 * the transaction state machine: what votes, acknowledgements, group
 * commits and the clock make of a transaction. The endpoint modules call
 * in here; the moves themselves, and what they mean, are crd_txsm.c's.
 *
 * Presumed abort. COMMIT is the only forced decision; a one-phase begin
 * record the only other forced record. No participant and no client hears
 * COMMIT before the group commit holding it returns (DECIDING until then),
 * and a one-phase PREPARE does not leave before its begin record is on
 * disk (LOGGING until then).
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>

#include "crd_int.h"

bool crd_abort(crd_t *self, crd_tx_t *tx, const char *culprit, const char *sqlstate,
	       const char *reason)
{
	char gtid[DTX_GTID_MAX];

	crd_tx_gtid(self, tx, gtid, sizeof(gtid));
	snprintf(tx->culprit, sizeof(tx->culprit), "%s", culprit ? culprit : "");
	snprintf(tx->sqlstate, sizeof(tx->sqlstate), "%s", sqlstate ? sqlstate : "");
	snprintf(tx->reason, sizeof(tx->reason), "%s", reason);
	dtx_info_tx(gtid, "abort%s%s: %s", culprit ? " by " : "", culprit ? culprit : "", reason);
	if (crd_tx_move(self, tx, CRD_TX_ABORTING, reason, CRD_BY_PROTOCOL))
		return true;
	return !crd_settle(self, tx);
}

bool crd_settle(crd_t *self, crd_tx_t *tx)
{
	char gtid[DTX_GTID_MAX];

	if (!crd_txstate_in_phase_two(tx->state))
		return false;
	for (uint32_t i = 0; i < tx->nbranches; i++)
		if (!tx->br[i].acked)
			return false;
	dtx_crash_point("crd.acks_in");
	crd_tx_gtid(self, tx, gtid, sizeof(gtid));
	bool commit = tx->state == CRD_TX_COMMITTING;
	dtx_info_tx(gtid, "%s on every participant", commit ? "committed" : "aborted");
	crd_tx_move(self, tx, commit ? CRD_TX_COMMITTED : CRD_TX_ABORTED, NULL, CRD_BY_PROTOCOL);
	return true;
}

void crd_one_phase_done(crd_t *self, crd_tx_t *tx, bool committed)
{
	char gtid[DTX_GTID_MAX], why[sizeof(tx->reason)];

	crd_tx_gtid(self, tx, gtid, sizeof(gtid));
	tx->br[0].acked = true;
	dtx_info_tx(gtid, "one phase, %s", committed ? "committed" : "rolled back");
	/* The text is set here, from the result: a vote lost or a recovery
	 * leaves in tx->reason only why the participant was asked. Nothing
	 * forced: a crash before these lazy records land leaves the begin
	 * record, and recovery asks again. */
	if (committed) {
		if (tx->reason[0]) {
			snprintf(why, sizeof(why), "%s", tx->reason);
			snprintf(tx->reason, sizeof(tx->reason),
				 "%.400s; the only participant committed its branch", why);
		}
		crd_tx_move(self, tx, CRD_TX_COMMITTED, "one phase", CRD_BY_PROTOCOL);
		return;
	}
	snprintf(why, sizeof(why), "%s", tx->reason[0] ? tx->reason : "timed out");
	snprintf(tx->reason, sizeof(tx->reason),
		 "%.400s; the only participant rolled its branch back", why);
	if (crd_tx_move(self, tx, CRD_TX_ABORTING, tx->reason, CRD_BY_PROTOCOL) == 0)
		crd_tx_move(self, tx, CRD_TX_ABORTED, NULL, CRD_BY_PROTOCOL);
}

/* A one-phase transaction whose vote did not come may have committed: it
 * is not presumed aborted but its participant is asked to roll it back if
 * it can and say which way it went; the client hears that. */
static void s_resolve(crd_t *self, crd_tx_t *tx, const char *why)
{
	char gtid[DTX_GTID_MAX];
	crd_tx_gtid(self, tx, gtid, sizeof(gtid));
	if (crd_tx_move(self, tx, CRD_TX_RESOLVING, NULL, CRD_BY_PROTOCOL))
		return;
	dtx_info_tx(gtid, "one phase, %s: asking %s which way it went", why, tx->br[0].name);
	snprintf(tx->reason, sizeof(tx->reason), "%s", why); /* the result is added to it */
	tx->br[0].backoff_ms = 0;
	crd_send_decision(self, tx, 0, dtx_now_ms());
}

void crd_all_voted(crd_t *self, crd_tx_t *tx)
{
	bool wrote = false;
	int rc;
	for (uint32_t i = 0; i < tx->nbranches; i++) {
		if (tx->br[i].vote != DTX_VOTE_YES && tx->br[i].vote != DTX_VOTE_READONLY)
			return;
		wrote |= tx->br[i].vote == DTX_VOTE_YES;
	}
	dtx_crash_point("crd.votes_in");
	if (!wrote) {
		/* Every branch read-only and committed already: nothing to
		 * decide durably (a lost record makes it "aborted", which wrote
		 * nothing as well), nothing to send. */
		crd_tx_move(self, tx, CRD_TX_COMMITTED, "read-only", CRD_BY_PROTOCOL);
		return;
	}
	/* The forced record: nothing about this decision leaves the process
	 * until the group commit returns (crd_after_flush). */
	if ((rc = crd_tx_move(self, tx, CRD_TX_DECIDING, NULL, CRD_BY_PROTOCOL))) {
		char reason[128];
		snprintf(reason, sizeof(reason), "the commit decision cannot be logged: %s",
			 dtx_strerror(rc));
		crd_abort(self, tx, NULL, NULL, reason);
	}
}

bool crd_send_prepares(crd_t *self, crd_tx_t *tx)
{
	char text[128];

	for (uint32_t i = 0; i < tx->nbranches; i++) {
		char gid[DTX_GID_MAX];
		dtx_msg_t prep = {.type = DTX_T_PREPARE,
				  .has = DTX_F_GTID | DTX_F_STMTS,
				  .gtid = gid,
				  .nstmts = tx->req.branches[i].nstmts,
				  .stmts = tx->req.branches[i].stmts};
		if (tx->one_phase) {
			prep.has |= DTX_F_CODE;
			prep.code = DTX_PREPARE_ONE_PHASE;
		}
		/* what is left of the timeout bounds the branch's statements */
		int64_t left = tx->deadline_ms - (int64_t)(dtx_now_us() / 1000);
		prep.has |= DTX_F_TIMEOUT;
		prep.timeout_ms = left > 1 ? (uint32_t)left : 1;
		crd_tx_gid(self, tx, i, gid, sizeof(gid));
		if (tx->br[i].part < 0 ||
		    !crd_send_part(self, &self->parts[tx->br[i].part], &prep)) {
			snprintf(text, sizeof(text), "participant '%s' is not connected",
				 tx->br[i].name);
			dtx_msg_clear(&tx->req);
			crd_abort(self, tx, tx->br[i].name, NULL, text);
			return false;
		}
		dtx_crash_point("crd.prepare_sent");
	}
	/* The statements went out with the PREPAREs; nothing sends them again.
	 * Their decoded frame (a few KiB) need not wait for the outcome. */
	dtx_msg_clear(&tx->req);
	return true;
}

/* LOGGING: the one-phase begin record is durable. */
static void s_begin_logged(crd_t *self, crd_tx_t *tx, int64_t now)
{
	/* Durability point: a one-phase begin record is on disk. A crash
	 * from here on finds it undecided at recovery and asks the
	 * participant (RESOLVE), never presumes abort. */
	dtx_crash_point("crd.begin_logged");
	if (self->closing)
		return; /* stopping: recovery asks about it at the next start */
	if (now >= tx->deadline_ms) {
		/* Its PREPARE never left: nothing to roll back. */
		tx->br[0].acked = true;
		dtx_msg_clear(&tx->req);
		crd_abort(self, tx, NULL, NULL,
			  "timed out before the branch could be sent (the log was slow)");
		return;
	}
	if (crd_tx_move(self, tx, CRD_TX_PREPARING, NULL, CRD_BY_PROTOCOL) == 0)
		crd_send_prepares(self, tx);
}

void crd_after_flush(crd_t *self, crd_tx_t *list)
{
	int64_t now = dtx_now_ms();

	for (crd_tx_t *tx = list, *next; tx; tx = next) {
		next = tx->flush_next;
		tx->flush_next = NULL;
		if (tx->state == CRD_TX_LOGGING) {
			s_begin_logged(self, tx, now);
		} else if (tx->state == CRD_TX_DECIDING) {
			self->n_decisions++;
			crd_tx_move(self, tx, CRD_TX_COMMITTING, NULL, CRD_BY_PROTOCOL);
		} else {
			char gtid[DTX_GTID_MAX];
			crd_tx_gtid(self, tx, gtid, sizeof(gtid));
			dtx_err_tx(gtid,
				   "in %s after its group commit, which it did not wait for: "
				   "nothing sent",
				   crd_txstate_str(tx->state));
		}
	}
}

/* The vote of every branch not heard from, for a timeout's reason. */
static void s_waiting_for(const crd_tx_t *tx, char *buf, size_t len)
{
	size_t off = 0;
	buf[0] = '\0';
	for (uint32_t i = 0; i < tx->nbranches && off < len - 1; i++)
		if (tx->br[i].vote == CRD_VOTE_NONE)
			off += (size_t)snprintf(buf + off, len - off, "%s%s", off ? "," : "",
						tx->br[i].name);
}

void crd_tick(crd_t *self, int64_t now)
{
	dtx_delayed_release(&self->delayed, now, crd_on_delayed, self);
	for (unsigned i = 0; i < self->nparts; i++) {
		crd_part_t *p = &self->parts[i];
		if (p->connected && now - p->last_seen_ms > 3 * (int64_t)self->cfg.heartbeat_ms) {
			dtx_warn_part(p->name,
				      "participant %s silent for %" PRId64 " ms: marked down",
				      p->name, now - p->last_seen_ms);
			p->connected = false;
		}
	}
	for (crd_tx_t *tx = self->head, *next; tx; tx = next) {
		next = tx->next;
		switch (tx->state) {
		case CRD_TX_RESOLVING:
			if (now >= tx->br[0].next_send_ms)
				crd_send_decision(self, tx, 0, now);
			break;
		case CRD_TX_ACTIVE:
		case CRD_TX_PREPARING:
			if (now < tx->deadline_ms)
				break;
			if (tx->one_phase && tx->state == CRD_TX_PREPARING) {
				s_resolve(self, tx, "timed out waiting for the vote");
			} else {
				char reason[256], waiting[128];
				s_waiting_for(tx, waiting, sizeof(waiting));
				snprintf(reason, sizeof(reason),
					 "timed out waiting for the vote of %s", waiting);
				crd_abort(self, tx, NULL, NULL, reason);
			}
			break;
		case CRD_TX_COMMITTING:
		case CRD_TX_ABORTING:
			for (uint32_t i = 0; i < tx->nbranches; i++)
				if (!tx->br[i].acked && now >= tx->br[i].next_send_ms)
					crd_send_decision(self, tx, i, now);
			break;
		default: break; /* LOGGING, DECIDING: crd_after_flush() acts */
		}
	}
}
