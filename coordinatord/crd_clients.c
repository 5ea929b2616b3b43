/*
 * crd_clients.c — the client endpoint: TX (run a global transaction) and
 * QUERY (what became of one). Admission is here: participants known and
 * connected, the log taking writes, room in flight; a TX whose submission
 * key is known is answered with the transaction it names, never run again.
 * Every answer is one a crash cannot make false: an outcome the log does
 * not hold yet is not given.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crd_int.h"

/*
 * A TX whose key names a transaction submitted before (its begin record
 * carries the key): it is answered with that transaction, never run
 * again. In flight and undecided, this client waits for it instead of the
 * first; decided, or finished (from the log), it hears the outcome now.
 * false: the key is new.
 */
static bool s_on_tx_again(crd_t *self, const dtx_peer_t *peer, const dtx_msg_t *m)
{
	char text[160], gtid_s[DTX_GTID_MAX];
	uint64_t seq;
	int rc = wal_key_find(self->wal, m->key, &seq);

	if (rc == DTX_ENOTFOUND)
		return false;
	if (rc) {
		snprintf(text, sizeof(text), "cannot look the key up in the log: %s",
			 dtx_strerror(rc));
		crd_send_error(self->client, peer, true, m->id, rc, text);
		return true;
	}
	crd_saga_t *sg = crd_saga_find(self, seq);
	if (sg) {
		crd_saga_again(self, sg, peer, m->id);
		return true;
	}
	crd_tx_t *tx = crd_tx_find(self, seq);
	if (tx) {
		crd_tx_gtid(self, tx, gtid_s, sizeof(gtid_s));
		dtx_info_tx(gtid_s, "submitted again with key %s: answered with it, not run again",
			    m->key);
		tx->client = *peer;
		tx->req_id = m->id;
		tx->client_waiting = true;
		crd_reply_accepted(self, tx);
		if (crd_txstate_in_phase_two(tx->state))
			crd_reply_client(self, tx, crd_tx_outcome(tx));
		return true;
	}
	/* Finished: its last records may still be queued or in the batch
	 * being written; the log answers once they are on disk (as for
	 * QUERY). A log that takes no writes cannot say yet. */
	if (!self->log_failing && crd_flush(self)) {
		self->io_failed = true;
		self->stop = 1;
		return true;
	}
	if (crd_log_behind(self)) {
		crd_send_error(self->client, peer, true, m->id, DTX_EBUSY,
			       "submitted before with this key; its outcome is not on disk yet "
			       "(the log takes no writes): ask again");
		return true;
	}
	int outcome;
	uint32_t epoch;
	rc = crd_logged_history(self, seq, &outcome, &epoch);
	dtx_gtid_t g = {.epoch = epoch, .seq = seq};
	snprintf(g.coord, sizeof(g.coord), "%s", self->cfg.id);
	dtx_gtid_format(&g, gtid_s, sizeof(gtid_s));
	snprintf(text, sizeof(text), "submitted before with this key: %s",
		 rc ? "its records cannot be read" : "the outcome is the log's");
	dtx_msg_t r = {.type = DTX_T_OUTCOME,
		       .has = DTX_F_ID | DTX_F_CODE | DTX_F_TEXT,
		       .id = m->id,
		       .code = rc ? DTX_OUTCOME_IN_DOUBT : outcome,
		       .text = text};
	if (rc == 0) {
		r.has |= DTX_F_GTID;
		r.gtid = gtid_s;
	}
	dtx_info_tx(gtid_s, "submitted again with key %s after it finished: %s", m->key,
		    dtx_outcome_str((int)r.code));
	crd_send(self->client, peer, &r);
	return true;
}

/* The participant of a TX's branch i, or of a SAGA's step i. */
static const char *s_part_of(const dtx_msg_t *m, uint32_t i)
{
	return m->type == DTX_T_SAGA ? m->steps[i].participant : m->branches[i].participant;
}

static uint32_t s_nparts_of(const dtx_msg_t *m)
{
	return m->type == DTX_T_SAGA ? m->nsteps : m->nbranches;
}

/* Why a TX or SAGA cannot be taken now (an error code and text), or 0.
 * A saga's participants need not be connected: its steps wait for them
 * (before the point of no return, at most the saga's timeout). */
static int s_admit(crd_t *self, const dtx_msg_t *m, char *text, size_t len)
{
	for (uint32_t i = 0; i < s_nparts_of(m); i++) {
		int idx = crd_part_index(self, s_part_of(m, i));
		if (idx < 0 || !self->parts[idx].allowed) {
			snprintf(text, len, "unknown participant '%s'", s_part_of(m, i));
			return DTX_EUNKNOWNPART;
		}
		if (!self->parts[idx].connected && m->type == DTX_T_TX) {
			snprintf(text, len, "participant '%s' is not connected", s_part_of(m, i));
			return DTX_EPARTDOWN;
		}
	}
	if (self->draining) {
		snprintf(text, len, "no new transactions are taken");
		return DTX_ESHUTDOWN;
	}
	if (self->log_failing) {
		snprintf(text, len, "the coordinator log takes no writes: %s",
			 dtx_strerror(self->log_failing));
		return self->log_failing;
	}
	if (self->ntx + self->nsagas >= self->cfg.max_inflight) {
		snprintf(text, len, "too many transactions in flight");
		return DTX_EBUSY;
	}
	return 0;
}

/* The slot counting name's transactions in flight, or -1 when all are
 * taken. */
static int s_client_slot(crd_t *self, const char *name)
{
	for (unsigned i = 0; i < self->nclient_load; i++)
		if (strcmp(self->client_load[i].name, name) == 0)
			return (int)i;
	if (self->nclient_load == sizeof(self->client_load) / sizeof(self->client_load[0]))
		return -1;
	snprintf(self->client_load[self->nclient_load].name, sizeof(self->client_load[0].name),
		 "%s", name);
	self->client_load[self->nclient_load].inflight = 0;
	return (int)self->nclient_load++;
}

static bool s_may_name(const crd_client_policy_t *c, const char *participant)
{
	for (unsigned i = 0; i < c->nparticipants; i++)
		if (strcmp(c->participants[i], "*") == 0 ||
		    strcmp(c->participants[i], participant) == 0)
			return true;
	return false;
}

/*
 * Whether the client's policy lets it submit m: who the connection proved
 * to be (crd_zap.c) names the policy. 0 and *slot (its in-flight count,
 * -1 for none), or DTX_EPERM / DTX_EBUSY with the reason. Nothing about
 * m has been acted on.
 */
static int s_policy(crd_t *self, const dtx_peer_t *peer, const dtx_msg_t *m, int *slot, char *text,
		    size_t len)
{
	*slot = -1;
	if (strcmp(peer->user, "client:*") == 0)
		return 0; /* insecure = true */
	if (strncmp(peer->user, "client:", 7) != 0) {
		snprintf(text, len, "this connection is no client's");
		return DTX_EPERM;
	}
	const char *name = peer->user + 7;
	const crd_client_policy_t *c = crd_config_client(&self->cfg, name);
	if (!c) {
		snprintf(text, len, "client %s has no [client] section any more", name);
		return DTX_EPERM;
	}
	for (uint32_t i = 0; i < s_nparts_of(m); i++) {
		const char *part = s_part_of(m, i);
		int idx = crd_part_index(self, part);
		if (idx < 0 || !self->parts[idx].allowed)
			continue; /* unknown to every client: s_admit says so */
		if (!s_may_name(c, part)) {
			snprintf(text, len, "client %s may not name participant '%s'", name, part);
			return DTX_EPERM;
		}
		/* a saga's compensations are statements like its steps' */
		const dtx_stmt_t *lists[2];
		uint32_t counts[2];
		if (m->type == DTX_T_SAGA) {
			lists[0] = m->steps[i].stmts, counts[0] = m->steps[i].nstmts;
			lists[1] = m->steps[i].comp, counts[1] = m->steps[i].ncomp;
		} else {
			lists[0] = m->branches[i].stmts, counts[0] = m->branches[i].nstmts;
			lists[1] = NULL, counts[1] = 0;
		}
		for (int l = 0; l < 2 && !c->sql; l++)
			for (uint32_t j = 0; j < counts[l]; j++)
				if (lists[l][j].sql) {
					snprintf(text, len,
						 "client %s may send named statements only, not "
						 "SQL text",
						 name);
					return DTX_EPERM;
				}
	}
	if ((*slot = s_client_slot(self, name)) < 0) {
		snprintf(text, len, "too many client names to count transactions for");
		return DTX_EBUSY;
	}
	return 0;
}

/* A new transaction of the client of slot: room in its max_inflight? */
static int s_client_room(crd_t *self, const dtx_peer_t *peer, int slot, char *text, size_t len)
{
	const crd_client_policy_t *c = slot >= 0 ? crd_config_client(&self->cfg, peer->user + 7)
						 : NULL;
	if (c && self->client_load[slot].inflight >= c->max_inflight) {
		snprintf(text, len, "client %s has %u transactions in flight, its most", c->name,
			 c->max_inflight);
		return DTX_EBUSY;
	}
	return 0;
}

static void s_on_tx(crd_t *self, const dtx_peer_t *peer, dtx_msg_t *m)
{
	char text[256], gtid[DTX_GTID_MAX];
	uint64_t seq;
	int rc;
	crd_tx_t *tx;

	if (m->nbranches > WAL_MAX_PARTS) {
		snprintf(text, sizeof(text), "at most %d participants per transaction",
			 WAL_MAX_PARTS);
		crd_send_error(self->client, peer, true, m->id, DTX_EINVAL, text);
		return;
	}
	int slot;
	if ((rc = s_policy(self, peer, m, &slot, text, sizeof(text)))) {
		crd_send_error(self->client, peer, true, m->id, rc, text);
		return;
	}
	/* A TX sent again is answered with its transaction even at the
	 * client's limit: only a new one counts against it. */
	if ((m->has & DTX_F_KEY) && s_on_tx_again(self, peer, m))
		return;
	if ((rc = s_client_room(self, peer, slot, text, sizeof(text))) ||
	    (rc = s_admit(self, m, text, sizeof(text)))) {
		crd_send_error(self->client, peer, true, m->id, rc, text);
		return;
	}
	if ((rc = wal_next_seq(self->wal, &seq))) {
		snprintf(text, sizeof(text), "cannot allocate a transaction id: %s",
			 dtx_strerror(rc));
		crd_send_error(self->client, peer, true, m->id, rc, text);
		return;
	}
	if (!(tx = crd_tx_alloc(m->nbranches))) {
		crd_send_error(self->client, peer, true, m->id, DTX_ENOMEM, "out of memory");
		return;
	}
	tx->seq = seq;
	tx->epoch = wal_epoch(self->wal);
	uint32_t timeout = (m->has & DTX_F_TIMEOUT) && m->timeout_ms ? m->timeout_ms
								     : self->cfg.default_timeout_ms;
	if (timeout > self->cfg.max_timeout_ms)
		timeout = self->cfg.max_timeout_ms;
	tx->begun_us = dtx_now_us();
	tx->deadline_ms = tx->begun_us / 1000 + timeout;
	tx->client_waiting = true;
	tx->client = *peer;
	tx->req_id = m->id;
	for (uint32_t i = 0; i < m->nbranches; i++) {
		tx->br[i].part = crd_part_index(self, m->branches[i].participant);
		snprintf(tx->br[i].name, sizeof(tx->br[i].name), "%s", m->branches[i].participant);
	}
	if (m->has & DTX_F_KEY)
		snprintf(tx->key, sizeof(tx->key), "%s", m->key);
	tx->req = *m; /* takes the statements */
	memset(m, 0, sizeof(*m));
	/* One branch: the participant decides, in one phase. The begin
	 * record says so, for recovery: such a transaction is not presumed
	 * aborted but asked about (RESOLVING). */
	tx->one_phase = tx->nbranches == 1 && self->cfg.one_phase;
	if ((rc = crd_tx_insert(self, tx))) {
		crd_send_error(self->client, peer, true, tx->req_id, rc, "out of memory");
		dtx_msg_clear(&tx->req);
		free(tx);
		return;
	}
	if ((tx->client_slot = slot) >= 0)
		self->client_load[slot].inflight++;
	crd_tx_gtid(self, tx, gtid, sizeof(gtid));
	dtx_debug_tx(gtid, "begin, %" PRIu32 " branches", tx->nbranches);
	/* The GTID before the outcome: a client that never hears the outcome
	 * can still ask for it (QUERY), or send the TX again with its key.
	 * Only to a TX with a key: a client older than keys would take it for
	 * the outcome. */
	if (tx->key[0])
		crd_reply_accepted(self, tx);
	if ((rc = crd_tx_move(self, tx, CRD_TX_ACTIVE, tx->one_phase ? CRD_ONE_PHASE_NOTE : NULL,
			      CRD_BY_PROTOCOL))) {
		/* Its forced begin record not even queued: its branch must not
		 * be sent. Nothing ran. */
		snprintf(text, sizeof(text), "cannot queue the begin record: %s", dtx_strerror(rc));
		tx->br[0].acked = true;
		dtx_msg_clear(&tx->req);
		crd_abort(self, tx, NULL, NULL, text);
		return;
	}
	crd_event(self, tx, gtid, "begun", NULL, "timeout %" PRIu32 " ms%s", timeout,
		  tx->one_phase ? ", one phase" : "");
	dtx_crash_point("crd.begun");
	if (tx->one_phase) {
		/* The PREPARE waits for the group commit: crd_after_flush(). */
		crd_tx_move(self, tx, CRD_TX_LOGGING, NULL, CRD_BY_PROTOCOL);
		return;
	}
	if (crd_tx_move(self, tx, CRD_TX_PREPARING, NULL, CRD_BY_PROTOCOL) == 0)
		crd_send_prepares(self, tx);
}

/* A SAGA: its rules (the kind order), the client's policy, its key,
 * then the admission a TX has; crd_saga_begin() runs it. */
static void s_on_saga(crd_t *self, const dtx_peer_t *peer, dtx_msg_t *m)
{
	char text[256];
	int rc, slot;

	if ((rc = dtx_saga_check(m->steps, m->nsteps, text, sizeof(text)))) {
		crd_send_error(self->client, peer, true, m->id, rc, text);
		return;
	}
	if ((rc = s_policy(self, peer, m, &slot, text, sizeof(text)))) {
		crd_send_error(self->client, peer, true, m->id, rc, text);
		return;
	}
	if ((m->has & DTX_F_KEY) && s_on_tx_again(self, peer, m))
		return;
	if ((rc = s_client_room(self, peer, slot, text, sizeof(text))) ||
	    (rc = s_admit(self, m, text, sizeof(text)))) {
		crd_send_error(self->client, peer, true, m->id, rc, text);
		return;
	}
	crd_saga_begin(self, peer, m, slot);
}

int crd_status_of(crd_t *self, const char *gtid_s, dtx_gtid_t *g, crd_tx_t **txp)
{
	/* An outcome recorded lazily (one phase, read-only) is in memory no
	 * more: put it on disk first, or the log would presume abort. */
	crd_flush_for_read(self);
	*txp = NULL;
	memset(g, 0, sizeof(*g));
	if (dtx_gtid_parse(gtid_s, g) || strcmp(g->coord, self->cfg.id) != 0)
		return DTX_OUTCOME_UNKNOWN;
	crd_tx_t *tx = crd_tx_find(self, g->seq);
	if (tx && tx->epoch == g->epoch) {
		*txp = tx;
		return crd_tx_outcome(tx);
	}
	crd_saga_t *sg = crd_saga_find(self, g->seq);
	if (sg && sg->epoch == g->epoch)
		return crd_saga_outcome(sg);
	return crd_logged_outcome(self, g->seq, g->epoch);
}

static void s_on_query(crd_t *self, const dtx_peer_t *peer, const dtx_msg_t *m)
{
	dtx_gtid_t g;
	crd_tx_t *tx;
	dtx_msg_t r = {.type = DTX_T_OUTCOME,
		       .has = DTX_F_ID | DTX_F_CODE | DTX_F_GTID,
		       .id = m->id,
		       .gtid = m->gtid};
	char text[160];

	/* "unknown" means presumed aborted: never the answer to a GTID that
	 * is not one, or not one of ours. */
	if (dtx_gtid_parse(m->gtid, &g)) {
		snprintf(text, sizeof(text),
			 "malformed GTID '%.40s': a GTID reads "
			 "<coordinator>.<epoch>.<sequence>",
			 m->gtid);
		crd_send_error(self->client, peer, true, m->id, DTX_EINVAL, text);
		return;
	}
	if (strcmp(g.coord, self->cfg.id) != 0) {
		snprintf(text, sizeof(text), "GTID %.40s belongs to coordinator '%s'; this is '%s'",
			 m->gtid, g.coord, self->cfg.id);
		crd_send_error(self->client, peer, true, m->id, DTX_ENOTFOUND, text);
		return;
	}
	r.code = crd_status_of(self, m->gtid, &g, &tx);
	crd_saga_t *sg = crd_saga_find(self, g.seq);
	if (sg && sg->epoch == g.epoch) {
		snprintf(text, sizeof(text), "saga %s%s%.100s", crd_sagastate_shown(sg->state),
			 sg->reason ? ": " : "", crd_text(sg->reason));
		r.text = text;
		r.has |= DTX_F_TEXT;
		crd_send(self->client, peer, &r);
		return;
	}
	if (!tx && crd_log_behind(self)) {
		crd_send_error(
			self->client, peer, true, m->id, DTX_EBUSY,
			"the log takes no writes and outcomes wait to be written: ask again");
		return;
	}
	if (tx && tx->reason[0]) {
		r.text = tx->reason;
		r.has |= DTX_F_TEXT;
	} else if (r.code == DTX_OUTCOME_IN_DOUBT && !crd_epoch_known(self, g.epoch)) {
		snprintf(text, sizeof(text),
			 "epoch %" PRIu32 " is not one of this log's (%" PRIu32 " to %" PRIu32
			 "): it was a log lost or replaced, so it may have committed",
			 g.epoch, wal_first_epoch(self->wal), wal_epoch(self->wal));
		r.text = text;
		r.has |= DTX_F_TEXT;
	} else if (r.code == DTX_OUTCOME_IN_DOUBT) {
		r.text = "not in the log: it finished longer ago than retention_s and was "
			 "pruned, so it may have committed";
		r.has |= DTX_F_TEXT;
	}
	crd_send(self->client, peer, &r);
}

void crd_on_client(crd_t *self, const dtx_peer_t *peer, const void *data, size_t len)
{
	dtx_msg_t m;

	if (dtx_decode_or_refuse(self->client, peer, data, len, &m, "client"))
		return;
	if (m.type == DTX_T_TX)
		s_on_tx(self, peer, &m);
	else if (m.type == DTX_T_SAGA)
		s_on_saga(self, peer, &m);
	else if (m.type == DTX_T_QUERY)
		s_on_query(self, peer, &m);
	else
		crd_send_error(self->client, peer, (m.has & DTX_F_ID) != 0, m.id, DTX_EPROTO,
			       "the client endpoint takes TX, SAGA and QUERY only");
	dtx_msg_clear(&m);
}
