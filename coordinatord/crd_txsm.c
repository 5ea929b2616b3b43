/*
 * crd_txsm.c — the global transaction's state machine: the table of legal
 * moves and crd_tx_move(), the one function that changes a transaction's
 * state and does what entering the new state means.
 *
 * Durability is the table's: a move whose record is forced (the COMMIT
 * decision; the begin record of a one-phase transaction) queues it before
 * anything changes, and a record that cannot be queued refuses the move.
 * What the move then releases waits for that record's group commit: the
 * transaction sits in DECIDING or LOGGING until crd_after_flush() moves
 * it on. Every other record rides the next group commit and nothing waits
 * for it: with presumed abort, a lost ACTIVE, PREPARING or ABORTING record
 * means "abort", which is what they say.
 */
#include "config.h"

#include <string.h>

#include "crd_int.h"

#define P CRD_BY_PROTOCOL
#define O CRD_BY_OPERATOR
#define R CRD_BY_RECOVERY

const crd_move_t crd_tx_moves[] = {
	/* A client's TX. A one-phase begin record is forced: its branch
	 * commits on its own, so the log must know the transaction (and that
	 * it is to be asked about, never presumed aborted) first. */
	{CRD_TX_NONE, CRD_TX_ACTIVE, P, WAL_ACTIVE, CRD_REC_FORCED_ONE_PHASE},
	/* that forced record cannot be queued: nothing ran */
	{CRD_TX_NONE, CRD_TX_ABORTING, P | R, WAL_ABORTING, CRD_REC_LAZY},
	{CRD_TX_ACTIVE, CRD_TX_PREPARING, P, WAL_PREPARING, CRD_REC_LAZY},
	{CRD_TX_ACTIVE, CRD_TX_LOGGING, P, WAL_PREPARING, CRD_REC_LAZY},
	/* a timeout; an operator's abort */
	{CRD_TX_ACTIVE, CRD_TX_ABORTING, P | O, WAL_ABORTING, CRD_REC_LAZY},
	{CRD_TX_ACTIVE, CRD_TX_DECIDING, O, WAL_COMMITTING, CRD_REC_FORCED},
	/* the begin record is durable: the PREPARE leaves */
	{CRD_TX_LOGGING, CRD_TX_PREPARING, P, 0, CRD_REC_LAZY},
	/* it became durable after the deadline: nothing was sent */
	{CRD_TX_LOGGING, CRD_TX_ABORTING, P, WAL_ABORTING, CRD_REC_LAZY},
	/* every vote yes (or read-only) */
	{CRD_TX_PREPARING, CRD_TX_DECIDING, P | O, WAL_COMMITTING, CRD_REC_FORCED},
	/* every branch read-only; or the one-phase branch committed */
	{CRD_TX_PREPARING, CRD_TX_COMMITTED, P, WAL_COMMITTED, CRD_REC_LAZY},
	/* a no vote, a timeout, a branch that cannot be reached */
	{CRD_TX_PREPARING, CRD_TX_ABORTING, P | O, WAL_ABORTING, CRD_REC_LAZY},
	/* one phase, its vote not heard in time */
	{CRD_TX_PREPARING, CRD_TX_RESOLVING, P, 0, CRD_REC_LAZY},
	{CRD_TX_RESOLVING, CRD_TX_COMMITTED, P, WAL_COMMITTED, CRD_REC_LAZY},
	{CRD_TX_RESOLVING, CRD_TX_ABORTING, P | O, WAL_ABORTING, CRD_REC_LAZY},
	{CRD_TX_RESOLVING, CRD_TX_DECIDING, O, WAL_COMMITTING, CRD_REC_FORCED},
	/* the COMMIT record is durable: everyone may hear it */
	{CRD_TX_DECIDING, CRD_TX_COMMITTING, P, 0, CRD_REC_LAZY},
	{CRD_TX_COMMITTING, CRD_TX_COMMITTED, P, WAL_COMMITTED, CRD_REC_LAZY},
	{CRD_TX_COMMITTING, CRD_TX_ABORTING, O, WAL_ABORTING, CRD_REC_LAZY},
	{CRD_TX_ABORTING, CRD_TX_ABORTED, P, WAL_ABORTED, CRD_REC_LAZY},
	{CRD_TX_ABORTING, CRD_TX_DECIDING, O, WAL_COMMITTING, CRD_REC_FORCED},
	/* Recovery: what the log's records say, restored as they were. */
	{CRD_TX_NONE, CRD_TX_COMMITTING, R, 0, CRD_REC_LAZY},
	{CRD_TX_NONE, CRD_TX_RESOLVING, R, 0, CRD_REC_LAZY},
	/* (NONE -> ABORTING, above, restores an abort; recovery logs the
	 * presumed abort itself when no decision was logged) */
};
const size_t crd_tx_nmoves = sizeof(crd_tx_moves) / sizeof(crd_tx_moves[0]);

#undef P
#undef O
#undef R

const crd_move_t *crd_move_find(const crd_move_t *table, size_t n, int from, int to)
{
	for (size_t i = 0; i < n; i++)
		if (table[i].from == from && table[i].to == to)
			return &table[i];
	return NULL;
}

const char *crd_txstate_str(crd_txstate_t s)
{
	static const char *const names[CRD_TX__COUNT] = {
		[CRD_TX_NONE] = "NONE",
		[CRD_TX_ACTIVE] = "ACTIVE",
		[CRD_TX_LOGGING] = "LOGGING",
		[CRD_TX_PREPARING] = "PREPARING",
		[CRD_TX_RESOLVING] = "RESOLVING",
		[CRD_TX_DECIDING] = "DECIDING",
		[CRD_TX_COMMITTING] = "COMMITTING",
		[CRD_TX_ABORTING] = "ABORTING",
		[CRD_TX_COMMITTED] = "COMMITTED",
		[CRD_TX_ABORTED] = "ABORTED",
	};
	return (unsigned)s < CRD_TX__COUNT ? names[s] : "?";
}

bool crd_txstate_ended(crd_txstate_t s)
{
	return s == CRD_TX_COMMITTED || s == CRD_TX_ABORTED;
}

bool crd_txstate_in_phase_two(crd_txstate_t s)
{
	return s == CRD_TX_COMMITTING || s == CRD_TX_ABORTING;
}

bool crd_txstate_awaits_flush(crd_txstate_t s)
{
	return s == CRD_TX_LOGGING || s == CRD_TX_DECIDING;
}

int crd_txstate_kind(crd_txstate_t s)
{
	switch (s) {
	case CRD_TX_ACTIVE: return WAL_ACTIVE;
	case CRD_TX_LOGGING:
	case CRD_TX_PREPARING:
	case CRD_TX_RESOLVING: return WAL_PREPARING;
	case CRD_TX_DECIDING:
	case CRD_TX_COMMITTING: return WAL_COMMITTING;
	case CRD_TX_ABORTING: return WAL_ABORTING;
	case CRD_TX_COMMITTED: return WAL_COMMITTED;
	case CRD_TX_ABORTED: return WAL_ABORTED;
	default: return 0;
	}
}

const char *crd_txstate_shown(crd_txstate_t s)
{
	return s == CRD_TX_DECIDING ? "deciding" : wal_kind_str(crd_txstate_kind(s));
}

/* Phase two starts, or starts again: the decision to every branch still
 * owing an acknowledgement. */
static void s_phase_two(crd_t *self, crd_tx_t *tx)
{
	int64_t now = dtx_now_ms();
	bool commit = tx->state == CRD_TX_COMMITTING;
	for (uint32_t i = 0; i < tx->nbranches; i++) {
		if (tx->br[i].acked)
			continue; /* read-only, or done */
		crd_send_decision(self, tx, i, now);
		dtx_crash_point(commit ? "crd.commit_sent" : "crd.abort_sent");
	}
}

/* What entering tx->state means (from: where it came from). */
static void s_entered(crd_t *self, crd_tx_t *tx, crd_txstate_t from, const char *gtid,
		      const char *note)
{
	switch (tx->state) {
	case CRD_TX_LOGGING:
	case CRD_TX_DECIDING:
		/* crd_after_flush() moves it on */
		crd_log_await(self, tx);
		break;
	case CRD_TX_COMMITTING:
		crd_event(self, tx, gtid, "decided", NULL, "commit");
		/* Durability point: COMMIT is on disk. A crash from here on
		 * re-drives the commit at recovery. */
		dtx_crash_point("crd.commit_logged");
		crd_reply_client(self, tx, DTX_OUTCOME_COMMITTED);
		s_phase_two(self, tx);
		break;
	case CRD_TX_ABORTING:
		crd_event(self, tx, gtid, "decided", NULL, "abort%s%s", note ? ": " : "",
			  note ? note : "");
		/* Presumed abort: the client may hear "aborted" before ABORTING
		 * is durable; if we crash, recovery aborts it anyway. Every
		 * branch gets the ROLLBACK, a NO voter too: a NO that came from
		 * a connection lost during PREPARE TRANSACTION cannot tell
		 * whether the branch was prepared. The agent's rollback is
		 * idempotent. */
		crd_reply_client(self, tx, DTX_OUTCOME_ABORTED);
		s_phase_two(self, tx);
		break;
	case CRD_TX_COMMITTED:
	case CRD_TX_ABORTED: {
		bool committed = tx->state == CRD_TX_COMMITTED;
		if (committed && from != CRD_TX_COMMITTING)
			crd_event(self, tx, gtid, "decided", NULL, "commit%s%s", note ? ": " : "",
				  note ? note : "");
		crd_event(self, tx, gtid, "completed", NULL, "%s",
			  wal_kind_str(crd_txstate_kind(tx->state)));
		if (committed)
			self->n_committed++;
		else
			self->n_aborted++;
		crd_reply_client(self, tx, committed ? DTX_OUTCOME_COMMITTED : DTX_OUTCOME_ABORTED);
		crd_tx_forget(self, tx);
		break;
	}
	default: break;
	}
}

int crd_tx_move(crd_t *self, crd_tx_t *tx, crd_txstate_t to, const char *note, unsigned by)
{
	char gtid[DTX_GTID_MAX];
	const crd_move_t *mv = crd_move_find(crd_tx_moves, crd_tx_nmoves, tx->state, to);
	crd_txstate_t from = tx->state;
	int rc;

	crd_tx_gtid(self, tx, gtid, sizeof(gtid));
	if (!mv || !(mv->by & by)) {
		dtx_err_tx(gtid, "refused transition %s -> %s", crd_txstate_str(from),
			   crd_txstate_str(to));
		return DTX_ESTATE;
	}
	bool forced = mv->durability == CRD_REC_FORCED ||
		      (mv->durability == CRD_REC_FORCED_ONE_PHASE && tx->one_phase);
	if (mv->record && forced && (rc = crd_log_append(self, tx, mv->record, note, true))) {
		dtx_err_tx(gtid, "cannot queue the %s record: %s", wal_kind_str(mv->record),
			   dtx_strerror(rc));
		return rc;
	}
	dtx_debug_tx(gtid, "%s -> %s", crd_txstate_str(from), crd_txstate_str(to));
	tx->state = to;
	if (by == CRD_BY_RECOVERY) {
		tx->decided_ms = dtx_now_ms();
		return 0; /* it all happened before the crash */
	}
	if (to == CRD_TX_DECIDING || to == CRD_TX_ABORTING)
		tx->decided_ms = dtx_now_ms();
	if (mv->record && !forced && (rc = crd_log_append(self, tx, mv->record, note, false)))
		dtx_err_tx(gtid, "cannot queue %s record: %s", wal_kind_str(mv->record),
			   dtx_strerror(rc));
	s_entered(self, tx, from, gtid, note);
	return 0;
}

void crd_tx_heuristic(crd_t *self, crd_tx_t *tx, const char *who, const char *why)
{
	char gtid[DTX_GTID_MAX];
	crd_tx_gtid(self, tx, gtid, sizeof(gtid));
	if (who)
		dtx_log_ctx(DTX_LOG_ERR, gtid, who, "heuristic outcome on %s", why);
	else
		dtx_notice_tx(gtid, "%s", why);
	crd_log_append(self, tx, WAL_HEURISTIC, why, false);
	crd_event(self, tx, gtid, "heuristic", who, "%s", why);
	tx->heuristic = true;
	self->n_heuristic++;
}

int crd_tx_outcome(const crd_tx_t *tx)
{
	if (tx->heuristic)
		return DTX_OUTCOME_HEURISTIC;
	switch (tx->state) {
	case CRD_TX_COMMITTING: return DTX_OUTCOME_COMMITTED;
	case CRD_TX_ABORTING: return DTX_OUTCOME_ABORTED;
	default: return DTX_OUTCOME_ACTIVE;
	}
}
