/*
 * crd_send.c — what the coordinator sends: decisions to agents, with
 * back-off for the resends of phase two, and answers to clients. Every
 * frame leaves through libdtx's dtx_send_to(); nothing here waits.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>

#include "crd_int.h"

#define RETRY_FIRST_MS 500
#define RETRY_MAX_MS 10000

bool crd_send(void *sock, const dtx_peer_t *peer, const dtx_msg_t *msg)
{
	int rc = dtx_send_to(sock, peer, msg);
	if (rc && rc != DTX_EIO)
		dtx_err("cannot encode %s: %s", dtx_msg_type_str(msg->type), dtx_strerror(rc));
	return rc == 0;
}

bool crd_send_part(crd_t *self, crd_part_t *p, const dtx_msg_t *msg)
{
	if (!p->connected)
		return false;
	int rc = dtx_send_to(self->agent, &p->peer, msg);
	if (rc == 0)
		return true;
	if (rc == DTX_EIO && errno == EHOSTUNREACH) {
		dtx_warn_part(p->name, "participant %s: connection gone: marked down", p->name);
		p->connected = false;
	}
	return false;
}

void crd_send_error(void *sock, const dtx_peer_t *peer, bool has_id, uint64_t id, int code,
		    const char *text)
{
	dtx_msg_t req = {.has = has_id ? DTX_F_ID : 0, .id = id};
	dtx_send_error_to(sock, peer, &req, code, text);
}

void crd_reply_client(crd_t *self, crd_tx_t *tx, int outcome)
{
	char gtid[DTX_GTID_MAX];
	dtx_msg_t m = {.type = DTX_T_OUTCOME,
		       .has = DTX_F_ID | DTX_F_CODE | DTX_F_GTID,
		       .id = tx->req_id,
		       .code = outcome,
		       .gtid = gtid};
	if (!tx->client_waiting)
		return;
	crd_tx_gtid(self, tx, gtid, sizeof(gtid));
	if (tx->culprit[0]) {
		m.name = tx->culprit;
		m.has |= DTX_F_NAME;
	}
	if (tx->sqlstate[0]) {
		m.sqlstate = tx->sqlstate;
		m.has |= DTX_F_SQLSTATE;
	}
	if (tx->reason[0]) {
		m.text = tx->reason;
		m.has |= DTX_F_TEXT;
	}
	crd_send(self->client, &tx->client, &m);
	tx->client_waiting = false;
	if (tx->begun_us && !tx->answered) /* not a recovered one, nor a key's second answer */
		crd_hist_observe(&self->h_decision, (double)(dtx_now_us() - tx->begun_us) / 1e6);
	tx->answered = true;
	/* Crash point: the outcome left the process. */
	dtx_crash_point("crd.client_answered");
}

void crd_reply_accepted(crd_t *self, crd_tx_t *tx)
{
	char gtid[DTX_GTID_MAX];
	dtx_msg_t m = {.type = DTX_T_OUTCOME,
		       .has = DTX_F_ID | DTX_F_CODE | DTX_F_GTID,
		       .id = tx->req_id,
		       .code = DTX_OUTCOME_ACTIVE,
		       .gtid = gtid};
	crd_tx_gtid(self, tx, gtid, sizeof(gtid));
	crd_send(self->client, &tx->client, &m);
}

int crd_backoff_next(int *backoff_ms)
{
	*backoff_ms = *backoff_ms
			      ? (*backoff_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : *backoff_ms * 2)
			      : RETRY_FIRST_MS;
	return *backoff_ms;
}

void crd_send_decision(crd_t *self, crd_tx_t *tx, uint32_t i, int64_t now)
{
	crd_branch_t *b = &tx->br[i];
	char gid[DTX_GID_MAX];
	dtx_msg_t m = {.type = DTX_T_DECIDE,
		       .has = DTX_F_GTID | DTX_F_CODE,
		       .gtid = gid,
		       .code = tx->state == CRD_TX_RESOLVING    ? DTX_DECIDE_RESOLVE
			       : tx->state == CRD_TX_COMMITTING ? DTX_DECIDE_COMMIT
								: DTX_DECIDE_ROLLBACK};

	if (b->backoff_ms)
		self->n_retries++;
	b->next_send_ms = now + crd_backoff_next(&b->backoff_ms);
	if (b->part < 0 || !self->parts[b->part].connected)
		return;
	crd_tx_gid(self, tx, i, gid, sizeof(gid));
	crd_send_part(self, &self->parts[b->part], &m);
}
