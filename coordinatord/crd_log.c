/*
 * crd_log.c — the coordinator's side of its log (wal/): appending records,
 * group commit, reading what the log says of a transaction, and recovery.
 *
 * Group commit: records produced while handling one poll round are handed
 * together to the log's writer thread at the end of the round, at once if
 * a forced record is among them, otherwise within lazy_flush_ms. While it
 * syncs, the loop goes on and the next batch forms; the transactions that
 * wait for a batch (crd_log_await) move on when its commit returns
 * (crd_after_flush). One batch is out at a time, so batches reach the disk
 * in order.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crd_int.h"

#define LOG_RETRY_MS 1000

int crd_log_append(crd_t *self, crd_tx_t *tx, int kind, const char *note, bool forced)
{
	wal_rec_t r = {.seq = tx->seq,
		       .idx = tx->nlog,
		       .kind = (uint8_t)kind,
		       .epoch = tx->epoch,
		       .at_us = dtx_wall_us(),
		       .note = note};
	int rc;

	if (tx->nlog == 255)
		return DTX_EFULL;
	if (kind == WAL_ACTIVE) {
		r.key = tx->key[0] ? tx->key : NULL;
		r.nparts = (uint8_t)tx->nbranches;
		for (uint32_t i = 0; i < tx->nbranches; i++)
			r.parts[i] = tx->br[i].name;
	}
	if ((rc = wal_append(self->wal, &r, forced)))
		return rc;
	if (wal_pending(self->wal) == 1)
		self->first_lazy_ms = dtx_now_ms();
	tx->nlog++;
	return 0;
}

void crd_log_await(crd_t *self, crd_tx_t *tx)
{
	tx->flush_next = self->flush_head;
	self->flush_head = tx;
}

/* The result of a group commit of n records that released list.
 * Nonzero only when the daemon must stop. */
static int s_flushed(crd_t *self, int rc, size_t n, crd_tx_t *list, crd_saga_t *slist)
{
	if (rc == DTX_EIO) {
		/* A write or fsync failed: the records may or may not be on
		 * disk. Like PostgreSQL, stop and let recovery read the log. */
		dtx_err("log write failed with an i/o error: stopping for recovery");
		return rc;
	}
	if (rc) {
		/* Nothing was written and the records are queued again:
		 * decisions wait, new transactions are refused, the flush is
		 * retried. */
		if (list) {
			crd_tx_t *t = list;
			while (t->flush_next)
				t = t->flush_next;
			t->flush_next = self->flush_head;
			self->flush_head = list;
		}
		if (slist) {
			crd_saga_t *t = slist;
			while (t->flush_next)
				t = t->flush_next;
			t->flush_next = self->saga_flush_head;
			self->saga_flush_head = slist;
		}
		if (!self->log_failing)
			dtx_err("group commit failed: %s; refusing new transactions until the "
				"log takes writes again",
				dtx_strerror(rc));
		self->log_failing = rc;
		return 0;
	}
	if (self->log_failing)
		dtx_notice("the log takes writes again");
	self->log_failing = 0;
	if (n == 0 && !list && !slist)
		return 0; /* a commit of pruning alone */
	self->n_flushes++;
	self->n_flushed += n;
	crd_hist_observe(&self->h_batch, (double)n);
	crd_hist_observe(&self->h_commit, (double)wal_last_commit_us(self->wal) / 1e6);
	crd_after_flush(self, list);
	crd_saga_after_flush(self, slist);
	return 0;
}

/* Whether a group commit may start now (a failing log is retried only
 * every LOG_RETRY_MS). */
static bool s_flush_allowed(crd_t *self, int64_t now)
{
	return (wal_pending(self->wal) || wal_prune_pending(self->wal)) &&
	       !(self->log_failing && now - self->last_flush_ms < LOG_RETRY_MS);
}

void crd_flush_begin(crd_t *self)
{
	int64_t now = dtx_now_ms();
	bool started;

	if (wal_flush_busy(self->wal) || !s_flush_allowed(self, now))
		return;
	dtx_crash_point("crd.group_commit");
	self->last_flush_ms = now;
	int rc = wal_flush_start(self->wal, &started);
	if (rc) {
		if (!self->log_failing)
			dtx_err("cannot start a group commit: %s", dtx_strerror(rc));
		self->log_failing = rc;
		return;
	}
	if (started) {
		self->flushing_head = self->flush_head;
		self->flush_head = NULL;
		self->saga_flushing_head = self->saga_flush_head;
		self->saga_flush_head = NULL;
	}
}

int crd_flush_end(crd_t *self)
{
	size_t n;
	int rc = wal_flush_finish(self->wal, &n), prune_rc;
	crd_tx_t *list = self->flushing_head;
	crd_saga_t *slist = self->saga_flushing_head;
	unsigned pruned = wal_last_pruned(self->wal, &prune_rc);
	self->flushing_head = NULL;
	self->saga_flushing_head = NULL;
	if (pruned)
		dtx_debug("pruned %u finished transactions from the log", pruned);
	if (prune_rc && !self->prune_failing) {
		dtx_warn("cannot prune finished transactions from the log: %s; trying again "
			 "every second",
			 dtx_strerror(prune_rc));
		self->prune_failing = true;
	} else if (pruned && self->prune_failing) {
		dtx_notice("pruning the log works again");
		self->prune_failing = false;
	}
	return s_flushed(self, rc, n, list, slist);
}

int crd_flush(crd_t *self)
{
	int64_t now = dtx_now_ms();
	size_t n;
	int rc;

	if (wal_flush_busy(self->wal) && (rc = crd_flush_end(self)))
		return rc;
	if (!s_flush_allowed(self, now))
		return 0;
	dtx_crash_point("crd.group_commit");
	rc = wal_flush(self->wal, &n);
	self->last_flush_ms = now;
	crd_tx_t *list = self->flush_head;
	crd_saga_t *slist = self->saga_flush_head;
	self->flush_head = NULL;
	self->saga_flush_head = NULL;
	return s_flushed(self, rc, n, list, slist);
}

void crd_flush_for_read(crd_t *self)
{
	if (!self->log_failing && crd_flush(self)) {
		self->io_failed = true;
		self->stop = 1;
	}
}

bool crd_log_behind(crd_t *self)
{
	return self->log_failing && (wal_pending(self->wal) || wal_flush_busy(self->wal));
}

/* --- what the log says ------------------------------------------------ */

/* The decision the records hold: the last COMMITTING or ABORTING wins
 * (an operator may have overruled an earlier one); none: presumed abort. */
static bool s_recs_commit(const wal_rec_t *recs, unsigned n)
{
	bool commit = false;
	for (unsigned i = 0; i < n; i++) {
		if (recs[i].kind == WAL_COMMITTING || recs[i].kind == WAL_COMMITTED)
			commit = true;
		else if (recs[i].kind == WAL_ABORTING || recs[i].kind == WAL_ABORTED)
			commit = false;
	}
	return commit;
}

bool crd_recs_heuristic(const wal_rec_t *recs, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (recs[i].kind == WAL_HEURISTIC)
			return true;
	return false;
}

typedef struct {
	int outcome;
	uint32_t epoch;
	unsigned n;
} s_hist_t;

static int s_history_fn(const wal_rec_t *recs, unsigned n, void *arg)
{
	s_hist_t *h = arg;
	if (recs[0].kind == WAL_SAGA) {
		h->outcome = crd_saga_logged_outcome(recs, n);
		h->epoch = recs[0].epoch;
		h->n = n;
		return 0;
	}
	h->outcome = crd_recs_heuristic(recs, n) ? DTX_OUTCOME_HEURISTIC
		     : s_recs_commit(recs, n)    ? DTX_OUTCOME_COMMITTED
						 : DTX_OUTCOME_ABORTED;
	h->epoch = recs[0].epoch;
	h->n = n;
	return 0;
}

int crd_logged_history(crd_t *self, uint64_t seq, int *outcome, uint32_t *epoch)
{
	s_hist_t h = {.outcome = DTX_OUTCOME_IN_DOUBT};
	int rc = wal_history(self->wal, seq, s_history_fn, &h);
	*outcome = h.outcome;
	*epoch = h.epoch;
	return rc;
}

bool crd_epoch_known(crd_t *self, uint32_t epoch)
{
	return epoch >= wal_first_epoch(self->wal) && epoch <= wal_epoch(self->wal);
}

int crd_logged_outcome(crd_t *self, uint64_t seq, uint32_t epoch)
{
	int outcome;
	uint32_t e;
	/* An epoch this log never had: the transaction was in a log that was
	 * lost or replaced, and may have committed. Nothing is presumed. */
	if (!crd_epoch_known(self, epoch))
		return DTX_OUTCOME_IN_DOUBT;
	int rc = crd_logged_history(self, seq, &outcome, &e);
	if (rc == DTX_ENOTFOUND)
		return seq <= wal_pruned_hi(self->wal) ? DTX_OUTCOME_IN_DOUBT : DTX_OUTCOME_UNKNOWN;
	if (rc)
		return DTX_OUTCOME_IN_DOUBT;
	if (e != epoch)
		return DTX_OUTCOME_UNKNOWN;
	return outcome;
}

/*
 * A branch of a transaction no longer in flight went against what the log
 * (or presumed abort) told it. Append HEURISTIC and an END of the logged
 * outcome, so that show, list and query report it and recovery still sees
 * the transaction finished.
 */
void crd_log_late_heuristic(crd_t *self, const char *part, const dtx_gtid_t *g, const char *note)
{
	char gtid[DTX_GTID_MAX];
	s_hist_t h = {0};
	int rc;

	dtx_gtid_format(g, gtid, sizeof(gtid));
	if (crd_saga_find(self, g->seq)) {
		/* a saga's step GID: its records are the saga's own */
		dtx_warn_tx(gtid, "%s sent a heuristic answer for a saga step: ignored (%s)", part,
			    note);
		return;
	}
	/* Records of it may still be queued: write them first so the index
	 * of the new ones follows theirs. */
	if (crd_flush(self)) {
		self->io_failed = true;
		self->stop = 1;
		return;
	}
	rc = wal_pending(self->wal) ? DTX_EFULL : 0;
	wal_history(self->wal, g->seq, s_history_fn, &h);
	bool commit = h.n && crd_logged_outcome(self, g->seq, g->epoch) != DTX_OUTCOME_ABORTED;
	dtx_log_ctx(DTX_LOG_ERR, gtid, part, "heuristic outcome on %s", note);
	self->n_heuristic++;
	crd_event(self, NULL, gtid, "heuristic", part, "%s", note);
	if (rc || h.n + 2 > 255)
		return; /* the daemon log line above is all that can be kept */
	wal_rec_t hr = {.seq = g->seq,
			.idx = (uint8_t)h.n,
			.kind = WAL_HEURISTIC,
			.epoch = g->epoch,
			.at_us = dtx_wall_us(),
			.note = note};
	wal_rec_t e = hr;
	e.idx++;
	e.kind = commit ? WAL_COMMITTED : WAL_ABORTED;
	e.note = NULL;
	if (wal_append(self->wal, &hr, false) || wal_append(self->wal, &e, false))
		dtx_err_tx(gtid, "cannot queue the heuristic record");
}

/* --- recovery --------------------------------------------------------- */

/* One unfinished transaction of the log: back in flight, in the state its
 * records say (crd_tx_move by recovery). */
static int s_recover_fn(const wal_rec_t *recs, unsigned n, void *arg)
{
	crd_t *self = arg;
	char gtid[DTX_GTID_MAX];
	dtx_gtid_t g = {.epoch = recs[0].epoch, .seq = recs[0].seq};

	snprintf(g.coord, sizeof(g.coord), "%s", self->cfg.id);
	dtx_gtid_format(&g, gtid, sizeof(gtid));
	if (recs[0].kind == WAL_SAGA)
		return crd_saga_recover(self, recs, n);
	if (recs[0].kind != WAL_ACTIVE) {
		dtx_err_tx(gtid, "log holds no begin record: cannot recover it");
		return 0;
	}
	crd_tx_t *tx = crd_tx_alloc(recs[0].nparts);
	if (!tx)
		return DTX_ENOMEM;
	tx->seq = recs[0].seq;
	tx->epoch = recs[0].epoch;
	tx->nlog = (uint8_t)n;
	tx->heuristic = crd_recs_heuristic(recs, n);
	for (unsigned i = 0; i < recs[0].nparts; i++) {
		snprintf(tx->br[i].name, sizeof(tx->br[i].name), "%s", recs[0].parts[i]);
		tx->br[i].part = crd_part_index(self, recs[0].parts[i]);
		if (tx->br[i].part < 0)
			dtx_err_tx(gtid, "participant %s is no longer configured: branch stuck",
				   recs[0].parts[i]);
	}
	if (crd_tx_insert(self, tx)) {
		free(tx);
		return DTX_ENOMEM;
	}
	bool decided = false, aborting = false;
	for (unsigned i = 0; i < n; i++) {
		decided |= recs[i].kind == WAL_COMMITTING || recs[i].kind == WAL_ABORTING;
		aborting |= recs[i].kind == WAL_ABORTING;
	}
	if (s_recs_commit(recs, n)) {
		crd_tx_move(self, tx, CRD_TX_COMMITTING, NULL, CRD_BY_RECOVERY);
		dtx_notice_tx(gtid, "recovered with a commit decision: re-driving commit");
	} else if (!decided && recs[0].note && strcmp(recs[0].note, CRD_ONE_PHASE_NOTE) == 0 &&
		   recs[0].nparts == 1) {
		/* One phase: the participant may have committed. Ask. */
		tx->one_phase = true;
		crd_tx_move(self, tx, CRD_TX_RESOLVING, NULL, CRD_BY_RECOVERY);
		snprintf(tx->reason, sizeof(tx->reason), "found undecided by recovery");
		dtx_notice_tx(gtid, "recovered one-phase and undecided: asking %s", tx->br[0].name);
	} else {
		/* the last decision, or presumed abort */
		crd_tx_move(self, tx, CRD_TX_ABORTING, NULL, CRD_BY_RECOVERY);
		if (!aborting)
			crd_log_append(self, tx, WAL_ABORTING,
				       "recovery: no decision logged, presumed abort", false);
		snprintf(tx->reason, sizeof(tx->reason), "aborted by recovery");
		dtx_notice_tx(gtid, "recovered undecided: aborting");
	}
	dtx_crash_point("crd.recovered_one");
	return 0;
}

int crd_recover(crd_t *self, char *why, size_t why_len)
{
	int rc;
	if ((rc = wal_scan(self->wal, true, s_recover_fn, self))) {
		snprintf(why, why_len, "recovery scan failed: %s", dtx_strerror(rc));
		return rc;
	}
	if (self->ntx)
		dtx_notice("recovered %zu unfinished transactions", self->ntx);
	if (self->nsagas)
		dtx_notice("recovered %zu unfinished sagas", self->nsagas);
	if ((rc = wal_flush(self->wal, NULL))) {
		snprintf(why, why_len, "cannot log recovery decisions: %s", dtx_strerror(rc));
		return rc;
	}
	/* sagas recovery turned around: their decisions are on disk now */
	crd_saga_t *slist = self->saga_flush_head;
	self->saga_flush_head = NULL;
	crd_saga_after_flush(self, slist);
	return 0;
}
