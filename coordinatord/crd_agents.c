/*
 * crd_agents.c — the agent endpoint: a ROUTER socket that agents connect
 * to and say HELLO with their participant's name (the allow-list decides),
 * then VOTE, ACK, INDOUBT (their prepared branches, at every scan) and PING.
 * Each message is turned into what two-phase commit makes of it
 * (crd_twopc.c); anything not ours is answered by presumed abort or left
 * to the operator, never guessed.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "crd_int.h"

/* The branch bi of tx is p's: a message about it comes from its agent. */
static bool s_branch_of(const crd_t *self, const crd_tx_t *tx, uint32_t bi, const crd_part_t *p)
{
	return tx && tx->br[bi].part >= 0 && &self->parts[tx->br[bi].part] == p;
}

/*
 * How much of a peer's text goes into a log record and the client's
 * answer: at most CRD_PEER_TEXT_MAX bytes, cut at a character. Such text
 * (a NO vote's reason quotes the database's error, which may quote the
 * client's statement) is chosen by others; its cost in the log is
 * bounded.
 */
#define CRD_PEER_TEXT_MAX 200

static int s_cut(const char *text)
{
	size_t n = strlen(text);
	if (n <= CRD_PEER_TEXT_MAX)
		return (int)n;
	n = CRD_PEER_TEXT_MAX;
	while (n > 0 && ((unsigned char)text[n] & 0xC0) == 0x80)
		n--; /* not inside a UTF-8 sequence */
	return (int)n;
}

static const char *s_vote_str(int64_t code)
{
	switch (code) {
	case DTX_VOTE_YES: return "yes";
	case DTX_VOTE_READONLY: return "read-only";
	case DTX_VOTE_COMMITTED: return "committed";
	default: return "no";
	}
}

static void s_on_vote(crd_t *self, crd_part_t *p, const dtx_msg_t *m)
{
	uint32_t bi;
	dtx_gtid_t g;
	bool ours, known;
	crd_tx_t *tx = crd_tx_by_gid(self, m->gtid, &bi, &g, &ours, &known);

	if (!s_branch_of(self, tx, bi, p)) {
		if (!ours)
			return;
		/* Presumed abort: a vote for a transaction we do not hold. */
		if (m->code == DTX_VOTE_YES) {
			dtx_msg_t d = {.type = DTX_T_DECIDE,
				       .has = DTX_F_GTID | DTX_F_CODE,
				       .gtid = m->gtid,
				       .code = DTX_DECIDE_ROLLBACK};
			dtx_info_tx(m->gtid,
				    "vote from %s for a transaction not in flight: rollback",
				    p->name);
			crd_send_part(self, p, &d);
		}
		return;
	}
	if (crd_txstate_awaits_flush(tx->state))
		return; /* a one-phase PREPARE not sent yet, or a decision being written */
	if (tx->br[bi].vote != CRD_VOTE_NONE)
		return; /* repeated */
	tx->br[bi].vote = (int)m->code;
	bool why = m->code == DTX_VOTE_NO && (m->has & DTX_F_TEXT);
	crd_event(self, tx, NULL, "voted", p->name, "%s%s%s", s_vote_str(m->code), why ? ": " : "",
		  why ? m->text : "");
	if (m->code == DTX_VOTE_READONLY)
		tx->br[bi].acked = true; /* committed by the agent; no phase two */
	if (tx->one_phase && m->code == DTX_VOTE_COMMITTED &&
	    (tx->state == CRD_TX_PREPARING || tx->state == CRD_TX_RESOLVING)) {
		crd_one_phase_done(self, tx, true); /* late or not, it says how it went */
		return;
	}
	if (tx->state != CRD_TX_PREPARING)
		return; /* decided already, or resolving: that answer tells */
	if (m->code != DTX_VOTE_YES && m->code != DTX_VOTE_READONLY) {
		/* NO, or COMMITTED from a branch that was not one-phase */
		char reason[600];
		const char *said = (m->has & DTX_F_TEXT) ? m->text : "no reason given";
		snprintf(reason, sizeof(reason), "%s voted no: %.*s%s", p->name, s_cut(said), said,
			 s_cut(said) < (int)strlen(said) ? "..." : "");
		crd_abort(self, tx, p->name, (m->has & DTX_F_SQLSTATE) ? m->sqlstate : NULL,
			  reason);
		return;
	}
	crd_all_voted(self, tx);
}

static void s_on_ack(crd_t *self, crd_part_t *p, const dtx_msg_t *m)
{
	uint32_t bi;
	dtx_gtid_t g;
	bool ours, known;
	crd_tx_t *tx = crd_tx_by_gid(self, m->gtid, &bi, &g, &ours, &known);
	char note[WAL_NOTE_MAX];

	if (m->code == DTX_ACK_HEURISTIC) {
		const char *why = (m->has & DTX_F_TEXT) ? m->text : "branch went the other way";
		snprintf(note, sizeof(note), "%s: %.*s%s", p->name, s_cut(why), why,
			 s_cut(why) < (int)strlen(why) ? "..." : "");
	}
	if (!s_branch_of(self, tx, bi, p)) {
		/* An answer to a decision taken from the log or presumed. Only
		 * a heuristic one needs keeping. */
		if (ours && known && m->code == DTX_ACK_HEURISTIC)
			crd_log_late_heuristic(self, p->name, &g, note);
		return;
	}
	if (tx->state == CRD_TX_RESOLVING && m->code != DTX_ACK_RETRY) {
		crd_one_phase_done(self, tx, m->code == DTX_ACK_COMMITTED);
		return;
	}
	if (!crd_txstate_in_phase_two(tx->state))
		return;
	if (m->code == DTX_ACK_RETRY) {
		tx->br[bi].next_send_ms = dtx_now_ms() + tx->br[bi].backoff_ms;
		return;
	}
	if (tx->br[bi].acked)
		return;
	if (m->code == DTX_ACK_HEURISTIC)
		crd_tx_heuristic(self, tx, p->name, note);
	tx->br[bi].acked = true;
	dtx_crash_point("crd.ack_received");
	crd_settle(self, tx);
}

/* One prepared branch an agent reported, gids[i] of its INDOUBT. */
static void s_on_indoubt_one(crd_t *self, crd_part_t *p, const char *gid)
{
	uint32_t bi;
	dtx_gtid_t g;
	bool ours, known;
	crd_tx_t *tx = crd_tx_by_gid(self, gid, &bi, &g, &ours, &known);
	dtx_msg_t d = {.type = DTX_T_DECIDE, .has = DTX_F_GTID | DTX_F_CODE, .gtid = gid};

	if (!ours)
		return;
	if (!known) {
		/* Presumed abort is only safe while the log is intact: a branch
		 * from an epoch this log never had means the log was lost or
		 * replaced. Leave it to the operator. */
		dtx_log_ctx(DTX_LOG_ERR, gid, p->name,
			    "%s on %s: epoch %" PRIu32 " unknown to this log (epoch %" PRIu32
			    "): left in doubt",
			    gid, p->name, g.epoch, wal_epoch(self->wal));
		crd_orphan_add(self, gid, &g, p->name, false);
		return;
	}
	if (s_branch_of(self, tx, bi, p)) {
		if (crd_txstate_in_phase_two(tx->state)) {
			crd_send_decision(self, tx, bi, dtx_now_ms());
		} else if (tx->state != CRD_TX_DECIDING && tx->br[bi].vote == CRD_VOTE_NONE &&
			   !tx->one_phase) {
			/* Prepared is not a yes vote: the agent prepares in the
			 * work's own round trip and checks the row counts after,
			 * so a branch it had no time to vote on may be one it
			 * would have rolled back. Its vote died with it (or is
			 * behind this list): no. A one-phase branch is never
			 * prepared; its outcome is the RESOLVE's to find. */
			tx->br[bi].vote = DTX_VOTE_NO;
			crd_event(self, tx, NULL, "voted", p->name,
				  "no: prepared, but not voted on before the scan");
			crd_abort(self, tx, p->name, NULL,
				  "the branch was found prepared with no vote");
		}
		return;
	}
	int outcome = crd_logged_outcome(self, g.seq, g.epoch);
	if (outcome == DTX_OUTCOME_IN_DOUBT) {
		/* Finished and pruned (or the log cannot be read): it may have
		 * committed. Nothing is presumed. */
		dtx_log_ctx(DTX_LOG_ERR, gid, p->name,
			    "%s on %s: not in the log, which pruned transactions up to sequence "
			    "%" PRIu64 ": left in doubt",
			    gid, p->name, wal_pruned_hi(self->wal));
		crd_orphan_add(self, gid, &g, p->name, true);
		return;
	}
	d.code = outcome == DTX_OUTCOME_COMMITTED ? DTX_DECIDE_COMMIT : DTX_DECIDE_ROLLBACK;
	dtx_log_ctx(DTX_LOG_INFO, gid, p->name, "%s on %s: not in flight, log says %s", gid,
		    p->name, d.code == DTX_DECIDE_COMMIT ? "commit" : "rollback");
	crd_send_part(self, p, &d);
}

/* Whether peer may speak for participant name: an [agent NAME] key speaks
 * for NAME alone; a local (ipc://) or insecure peer for any. */
static bool s_speaks_for(const dtx_peer_t *peer, const char *name)
{
	if (strncmp(peer->user, "agent:", 6) == 0)
		return strcmp(peer->user + 6, name) == 0;
	return strncmp(peer->user, "local:", 6) == 0 || strncmp(peer->user, "insecure:", 9) == 0;
}

/* A refused HELLO, logged once for each of the last 16 peers refused (an
 * agent that says it again and again, or two that take turns, are not
 * news). */
static void s_hello_refused(crd_t *self, const dtx_peer_t *peer, int code, const char *text)
{
	static struct {
		uint8_t id[sizeof(peer->id)];
		size_t n;
	} seen[16];
	static unsigned next;
	bool known = false;
	for (unsigned i = 0; i < 16 && !known; i++)
		known = seen[i].n == peer->n && memcmp(seen[i].id, peer->id, peer->n) == 0;
	if (!known) {
		dtx_warn("refused hello from %s: %s", peer->user[0] ? peer->user : "?", text);
		memcpy(seen[next].id, peer->id, peer->n);
		seen[next].n = peer->n;
		next = (next + 1) % 16;
	}
	crd_send_error(self->agent, peer, false, 0, code, text);
}

static void s_on_hello(crd_t *self, const dtx_peer_t *peer, const dtx_msg_t *m)
{
	int idx = crd_part_index(self, m->name);
	int64_t now = dtx_now_ms();
	char text[200];

	if (idx < 0) {
		snprintf(text, sizeof(text), "participant '%s' is not in the allow-list", m->name);
		s_hello_refused(self, peer, DTX_EUNKNOWNPART, text);
		return;
	}
	crd_part_t *p = &self->parts[idx];
	if (!s_speaks_for(peer, p->name)) {
		snprintf(text, sizeof(text), "this connection's key speaks for %s, not for %s",
			 strncmp(peer->user, "agent:", 6) == 0 ? peer->user + 6 : "nobody",
			 p->name);
		s_hello_refused(self, peer, DTX_EPERM, text);
		return;
	}
	bool same_conn = p->connected && p->peer.n == peer->n &&
			 memcmp(p->peer.id, peer->id, peer->n) == 0 &&
			 strcmp(p->peer.user, peer->user) == 0;
	/* A name that is connected is not taken over by another connection,
	 * unless that one proved the same identity (the agent restarted, its
	 * old connection not yet seen gone) or the old one fell silent. */
	if (p->connected && !same_conn && strcmp(p->peer.user, peer->user) != 0 &&
	    now - p->last_seen_ms < 3 * (int64_t)self->cfg.heartbeat_ms) {
		snprintf(text, sizeof(text),
			 "participant %s is connected from another connection (%s)", p->name,
			 p->peer.user[0] ? p->peer.user : "?");
		s_hello_refused(self, peer, DTX_EBUSY, text);
		return;
	}
	if (!same_conn)
		dtx_notice_part(p->name, "participant %s %s (%s)", p->name,
				p->connected ? "reconnected" : "connected", peer->user);
	p->connected = true;
	p->peer = *peer;
	p->last_seen_ms = now;
	dtx_msg_t w = {.type = DTX_T_WELCOME, .has = DTX_F_TEXT, .text = self->cfg.id};
	crd_send(self->agent, peer, &w);
	/* Phase two owed to this participant goes out now. */
	for (crd_tx_t *tx = self->head; tx; tx = tx->next) {
		if (!crd_txstate_in_phase_two(tx->state))
			continue;
		for (uint32_t i = 0; i < tx->nbranches; i++)
			if (tx->br[i].part == idx && !tx->br[i].acked) {
				tx->br[i].backoff_ms = 0;
				crd_send_decision(self, tx, i, now);
			}
	}
	/* and every saga step it owes an answer for, or that waits for it */
	crd_saga_on_hello(self, idx);
}

static void s_on_agent_msg(crd_t *self, const dtx_peer_t *peer, const dtx_msg_t *m)
{
	if (m->type == DTX_T_HELLO) {
		s_on_hello(self, peer, m);
		return;
	}
	crd_part_t *p = crd_part_by_peer(self, peer);
	if (!p || strcmp(p->peer.user, peer->user) != 0) {
		crd_send_error(self->agent, peer, false, 0, DTX_ENOTREG, "say HELLO first");
		return;
	}
	p->last_seen_ms = dtx_now_ms();
	switch (m->type) {
	case DTX_T_VOTE: s_on_vote(self, p, m); break;
	case DTX_T_ACK: s_on_ack(self, p, m); break;
	case DTX_T_RESULT: crd_saga_on_result(self, p, m); break;
	case DTX_T_INDOUBT:
		for (uint32_t i = 0; i < m->ngids; i++)
			s_on_indoubt_one(self, p, m->gids[i]);
		break;
	case DTX_T_PING: {
		dtx_msg_t pong = {.type = DTX_T_PONG};
		crd_send(self->agent, peer, &pong);
		break;
	}
	default:
		dtx_warn_part(p->name, "participant %s sent an unexpected %s", p->name,
			      dtx_msg_type_str(m->type));
		crd_send_error(self->agent, peer, false, 0, DTX_EPROTO, "unexpected message type");
	}
}

/* One frame from an agent; faults: apply injected message faults (off
 * for a frame a delay fault already held back). */
static void s_on_agent_frame(crd_t *self, const dtx_peer_t *peer, const void *data, size_t len,
			     bool faults)
{
	dtx_msg_t m;
	int delay_ms, times = 1;

	if (dtx_decode_or_refuse(self->agent, peer, data, len, &m, "agent"))
		return;
	switch (faults ? dtx_fault_on_recv(dtx_msg_type_str(m.type), &delay_ms) : DTX_FAULT_NONE) {
	case DTX_FAULT_DROP: times = 0; break;
	case DTX_FAULT_DUP: times = 2; break;
	case DTX_FAULT_DELAY:
		/* Held back and handled later: frames sent after it overtake it. */
		dtx_delayed_hold(&self->delayed, delay_ms, peer, sizeof(*peer), data, len);
		times = 0;
		break;
	default: break;
	}
	for (int i = 0; i < times; i++)
		s_on_agent_msg(self, peer, &m);
	dtx_msg_clear(&m);
}

void crd_on_agent(crd_t *self, const dtx_peer_t *peer, const void *data, size_t len)
{
	s_on_agent_frame(self, peer, data, len, true);
}

void crd_on_delayed(void *arg, const void *tag, const void *frame, size_t len)
{
	dtx_peer_t peer;
	memcpy(&peer, tag, sizeof(peer));
	s_on_agent_frame(arg, &peer, frame, len, false);
}
