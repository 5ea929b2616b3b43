/*
 * test_txsm.c — the transaction state machine (coordinatord/crd_txsm.c),
 * linked from libcrd: every (from, to) pair against the moves the design
 * allows, for each of protocol, operator and recovery; and what entering
 * each end state does, on a real coordinator (its log in a temporary
 * folder, its sockets on ipc:// there): the record, the counter, the
 * client's answer, the transaction forgotten.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "../tap.h"
#include "crd_int.h"

#define N CRD_TX__COUNT

/* The moves the design document lists, written out again by hand: a
 * move the table gains or loses without this list changing fails here. */
static const struct {
	crd_txstate_t from, to;
	unsigned by;
} want[] = {
	{CRD_TX_NONE, CRD_TX_ACTIVE, CRD_BY_PROTOCOL},
	{CRD_TX_NONE, CRD_TX_ABORTING, CRD_BY_PROTOCOL | CRD_BY_RECOVERY},
	{CRD_TX_NONE, CRD_TX_COMMITTING, CRD_BY_RECOVERY},
	{CRD_TX_NONE, CRD_TX_RESOLVING, CRD_BY_RECOVERY},
	{CRD_TX_ACTIVE, CRD_TX_PREPARING, CRD_BY_PROTOCOL},
	{CRD_TX_ACTIVE, CRD_TX_LOGGING, CRD_BY_PROTOCOL},
	{CRD_TX_ACTIVE, CRD_TX_ABORTING, CRD_BY_PROTOCOL | CRD_BY_OPERATOR},
	{CRD_TX_ACTIVE, CRD_TX_DECIDING, CRD_BY_OPERATOR},
	{CRD_TX_LOGGING, CRD_TX_PREPARING, CRD_BY_PROTOCOL},
	{CRD_TX_LOGGING, CRD_TX_ABORTING, CRD_BY_PROTOCOL},
	{CRD_TX_PREPARING, CRD_TX_DECIDING, CRD_BY_PROTOCOL | CRD_BY_OPERATOR},
	{CRD_TX_PREPARING, CRD_TX_COMMITTED, CRD_BY_PROTOCOL},
	{CRD_TX_PREPARING, CRD_TX_ABORTING, CRD_BY_PROTOCOL | CRD_BY_OPERATOR},
	{CRD_TX_PREPARING, CRD_TX_RESOLVING, CRD_BY_PROTOCOL},
	{CRD_TX_RESOLVING, CRD_TX_COMMITTED, CRD_BY_PROTOCOL},
	{CRD_TX_RESOLVING, CRD_TX_ABORTING, CRD_BY_PROTOCOL | CRD_BY_OPERATOR},
	{CRD_TX_RESOLVING, CRD_TX_DECIDING, CRD_BY_OPERATOR},
	{CRD_TX_DECIDING, CRD_TX_COMMITTING, CRD_BY_PROTOCOL},
	{CRD_TX_COMMITTING, CRD_TX_COMMITTED, CRD_BY_PROTOCOL},
	{CRD_TX_COMMITTING, CRD_TX_ABORTING, CRD_BY_OPERATOR},
	{CRD_TX_ABORTING, CRD_TX_ABORTED, CRD_BY_PROTOCOL},
	{CRD_TX_ABORTING, CRD_TX_DECIDING, CRD_BY_OPERATOR},
};

static unsigned s_want(int from, int to)
{
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		if ((int)want[i].from == from && (int)want[i].to == to)
			return want[i].by;
	return 0;
}

static void test_table(void)
{
	unsigned bad = 0, legal = 0;
	for (int from = 0; from < N; from++)
		for (int to = 0; to < N; to++) {
			const crd_move_t *m = crd_move_find(crd_tx_moves, crd_tx_nmoves, from, to);
			unsigned got = m ? m->by : 0;
			if (got != s_want(from, to)) {
				printf("# %s -> %s: table allows %#x, the design %#x\n",
				       crd_txstate_str(from), crd_txstate_str(to), got,
				       s_want(from, to));
				bad++;
			}
			legal += got != 0;
		}
	ok(bad == 0,
	   "every one of the %d (from, to) pairs is legal exactly for whom the design says", N * N);
	is_int(legal, sizeof(want) / sizeof(want[0]), "the table has one row per legal move");
	bool ends_closed = true, forced_decide = true;
	for (size_t i = 0; i < crd_tx_nmoves; i++) {
		const crd_move_t *m = &crd_tx_moves[i];
		ends_closed &= !crd_txstate_ended(m->from);
		if (m->to == CRD_TX_DECIDING)
			forced_decide &= m->record == WAL_COMMITTING &&
					 m->durability == CRD_REC_FORCED;
		if (m->by == CRD_BY_RECOVERY)
			ends_closed &= m->record == 0;
	}
	ok(ends_closed, "no move leaves an end state; recovery's moves log nothing");
	ok(forced_decide, "every move into DECIDING logs a forced COMMITTING record");
	ok(strcmp(crd_txstate_str(CRD_TX_LOGGING), "LOGGING") == 0 &&
		   strcmp(crd_txstate_str((crd_txstate_t)99), "?") == 0,
	   "states have names; an unknown one is '?'");
	ok(strcmp(crd_txstate_shown(CRD_TX_DECIDING), "deciding") == 0 &&
		   strcmp(crd_txstate_shown(CRD_TX_RESOLVING), "preparing") == 0,
	   "operators see DECIDING as 'deciding', RESOLVING as preparing (as before)");
}

/* --- a coordinator to move transactions on ---------------------------- */

static char dir[200];
static crd_t *crd;
static void *cli;            /* a DEALER on the client endpoint */
static dtx_peer_t cli_peer;  /* and how the coordinator addresses it */

static int setup(void)
{
	crd_config_t cfg;
	char why[512];
	uint32_t epoch;

	snprintf(dir, sizeof(dir), "/tmp/test_txsm.XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	crd_config_defaults(&cfg);
	snprintf(cfg.id, sizeof(cfg.id), "c1");
	snprintf(cfg.log_dir, sizeof(cfg.log_dir), "%s", dir);
	snprintf(cfg.client_endpoint, sizeof(cfg.client_endpoint), "ipc://%s/client", dir);
	snprintf(cfg.agent_endpoint, sizeof(cfg.agent_endpoint), "ipc://%s/agent", dir);
	snprintf(cfg.admin_endpoint, sizeof(cfg.admin_endpoint), "ipc://%s/admin", dir);
	snprintf(cfg.events_endpoint, sizeof(cfg.events_endpoint), "ipc://%s/events", dir);
	cfg.metrics_listen[0] = '\0';
	/* this process, a client of the coordinator (crd_zap.c decides) */
	cfg.nclients = 1;
	snprintf(cfg.clients[0].name, sizeof(cfg.clients[0].name), "test");
	cfg.clients[0].uid = (long)getuid();
	snprintf(cfg.clients[0].participants[0], sizeof(cfg.clients[0].participants[0]), "*");
	cfg.clients[0].nparticipants = 1;
	cfg.clients[0].max_inflight = 1000;
	cfg.clients[0].sql = true;
	if (crd_create_log(&cfg, &epoch, why, sizeof(why)) ||
	    crd_new(&cfg, &crd, why, sizeof(why))) {
		printf("# coordinator: %s\n", why);
		return -1;
	}
	/* A client the coordinator can answer: its first frame tells the
	 * ROUTER who it is. */
	cli = zmq_socket(crd->ctx, ZMQ_DEALER);
	int t = 2000;
	zmq_setsockopt(cli, ZMQ_RCVTIMEO, &t, sizeof(t));
	if (zmq_connect(cli, cfg.client_endpoint) || zmq_send(cli, "x", 1, 0) != 1)
		return -1;
	/* The loop is not running: its authentication handler is served
	 * here until the frame arrives. */
	zmq_msg_t body;
	int64_t until = dtx_now_ms() + 2000;
	bool got = false;
	while (!got && dtx_now_ms() < until) {
		zmq_pollitem_t it[2] = {{.socket = crd->client, .events = ZMQ_POLLIN},
					{.socket = crd->zap, .events = ZMQ_POLLIN}};
		if (zmq_poll(it, 2, 100) < 0)
			break;
		if (it[1].revents & ZMQ_POLLIN)
			crd_zap_serve(crd, 10);
		got = (it[0].revents & ZMQ_POLLIN) &&
		      dtx_recv_routed(crd->client, &cli_peer, &body);
	}
	if (!got) {
		printf("# waited 2000 ms for the client's first frame: nothing came\n");
		return -1;
	}
	zmq_msg_close(&body);
	return 0;
}

/* A transaction of one branch (its participant not configured: nothing
 * is sent to it), in flight, its client waiting. */
static crd_tx_t *new_tx(void)
{
	uint64_t seq;
	crd_tx_t *tx = crd_tx_alloc(1);
	if (!tx || wal_next_seq(crd->wal, &seq))
		return NULL;
	tx->seq = seq;
	tx->epoch = wal_epoch(crd->wal);
	tx->br[0].part = -1;
	snprintf(tx->br[0].name, sizeof(tx->br[0].name), "p1");
	tx->deadline_ms = dtx_now_ms() + 60000;
	tx->client_waiting = true;
	tx->client = cli_peer;
	tx->req_id = seq;
	if (crd_tx_insert(crd, tx)) {
		free(tx);
		return NULL;
	}
	return tx;
}

/* The next OUTCOME the client hears: its code, or -1 when none comes
 * within 2 s (said), -2 when none is waiting (poll: 0 ms). */
static int outcome(bool expect)
{
	char buf[4096];
	int n;
	if (!expect) {
		zmq_pollitem_t it = {.socket = cli, .events = ZMQ_POLLIN};
		return zmq_poll(&it, 1, 50) == 0 ? -2 : -3;
	}
	if ((n = zmq_recv(cli, buf, sizeof(buf), 0)) < 0) {
		printf("# waited 2000 ms for an OUTCOME on the client: nothing came\n");
		return -1;
	}
	dtx_msg_t m;
	if (dtx_msg_decode(buf, (size_t)n, &m, NULL, 0) || m.type != DTX_T_OUTCOME)
		return -1;
	int code = (int)m.code;
	dtx_msg_clear(&m);
	return code;
}

typedef struct {
	int kinds[16];
	unsigned n;
} hist_t;

static int hist_fn(const wal_rec_t *recs, unsigned n, void *arg)
{
	hist_t *h = arg;
	for (unsigned i = 0; i < n && i < 16; i++)
		h->kinds[i] = recs[i].kind;
	h->n = n;
	return 0;
}

/* The log's records of seq, as kind letters: "APC" for ACTIVE, PREPARING,
 * COMMITTED (A P D=COMMITTING C R=ABORTING X=ABORTED H=HEURISTIC). */
static const char *records(uint64_t seq)
{
	static char s[20];
	hist_t h = {0};
	if (crd_flush(crd) || wal_history(crd->wal, seq, hist_fn, &h))
		return "(none)";
	for (unsigned i = 0; i < h.n && i < 16; i++)
		s[i] = " APDCRXH"[h.kinds[i] & 7];
	s[h.n < 16 ? h.n : 16] = '\0';
	return s;
}

static void test_effects(void)
{
	uint64_t committed = crd->n_committed, aborted = crd->n_aborted;
	size_t ntx = crd->ntx;

	/* PREPARING -> COMMITTED: every branch read-only. */
	crd_tx_t *tx = new_tx();
	uint64_t seq = tx->seq;
	is_int(crd_tx_move(crd, tx, CRD_TX_ACTIVE, NULL, CRD_BY_PROTOCOL), 0, "NONE -> ACTIVE");
	is_int(crd_tx_move(crd, tx, CRD_TX_COMMITTED, NULL, CRD_BY_PROTOCOL), DTX_ESTATE,
	       "ACTIVE -> COMMITTED is refused with DTX_ESTATE");
	is_int(tx->state, CRD_TX_ACTIVE, "... and the state is unchanged");
	is_int(crd_tx_move(crd, tx, CRD_TX_PREPARING, NULL, CRD_BY_PROTOCOL), 0,
	       "ACTIVE -> PREPARING");
	tx->br[0].acked = true;
	is_int(crd_tx_move(crd, tx, CRD_TX_COMMITTED, "read-only", CRD_BY_PROTOCOL), 0,
	       "PREPARING -> COMMITTED");
	is_int(outcome(true), DTX_OUTCOME_COMMITTED,
	       "entering COMMITTED answers the waiting client: committed");
	is_int(crd->n_committed, committed + 1, "... counts it committed");
	ok(crd_tx_find(crd, seq) == NULL && crd->ntx == ntx, "... and forgets it");
	ok(strcmp(records(seq), "APC") == 0, "... its records: ACTIVE PREPARING COMMITTED (%s)",
	   records(seq));

	/* PREPARING -> ABORTING -> ABORTED. */
	tx = new_tx();
	seq = tx->seq;
	crd_tx_move(crd, tx, CRD_TX_ACTIVE, NULL, CRD_BY_PROTOCOL);
	crd_tx_move(crd, tx, CRD_TX_PREPARING, NULL, CRD_BY_PROTOCOL);
	snprintf(tx->reason, sizeof(tx->reason), "p1 voted no");
	is_int(crd_tx_move(crd, tx, CRD_TX_ABORTING, tx->reason, CRD_BY_PROTOCOL), 0,
	       "PREPARING -> ABORTING");
	is_int(outcome(true), DTX_OUTCOME_ABORTED,
	       "entering ABORTING answers the client: aborted (presumed abort)");
	ok(tx->decided_ms > 0 && tx->br[0].next_send_ms > 0,
	   "... stamps the decision and starts phase two (the ROLLBACK's back-off is set)");
	is_int(crd_tx_move(crd, tx, CRD_TX_DECIDING, NULL, CRD_BY_PROTOCOL), DTX_ESTATE,
	       "ABORTING -> DECIDING is the operator's alone");
	tx->br[0].acked = true;
	ok(crd_settle(crd, tx), "every branch acknowledged: settled");
	is_int(outcome(false), -2, "entering ABORTED tells the client nothing more");
	is_int(crd->n_aborted, aborted + 1, "... counts it aborted");
	ok(crd_tx_find(crd, seq) == NULL, "... and forgets it");
	ok(strcmp(records(seq), "APRX") == 0,
	   "... its records: ACTIVE PREPARING ABORTING ABORTED (%s)", records(seq));

	/* PREPARING -> DECIDING -> (group commit) COMMITTING -> COMMITTED. */
	tx = new_tx();
	seq = tx->seq;
	crd_tx_move(crd, tx, CRD_TX_ACTIVE, NULL, CRD_BY_PROTOCOL);
	crd_tx_move(crd, tx, CRD_TX_PREPARING, NULL, CRD_BY_PROTOCOL);
	tx->br[0].vote = DTX_VOTE_YES;
	is_int(crd_tx_move(crd, tx, CRD_TX_DECIDING, NULL, CRD_BY_PROTOCOL), 0,
	       "PREPARING -> DECIDING");
	ok(crd->flush_head == tx && wal_forced_pending(crd->wal),
	   "DECIDING waits for the group commit of its forced record");
	is_int(outcome(false), -2, "... and nobody hears COMMIT before it returns");
	is_int(crd_flush(crd), 0, "the group commit returns");
	is_int(tx->state, CRD_TX_COMMITTING, "... DECIDING -> COMMITTING");
	is_int(outcome(true), DTX_OUTCOME_COMMITTED, "... and the client hears committed");
	is_int(crd_tx_move(crd, tx, CRD_TX_ABORTING, NULL, CRD_BY_PROTOCOL), DTX_ESTATE,
	       "COMMITTING -> ABORTING by the protocol is refused");
	tx->br[0].acked = true;
	ok(crd_settle(crd, tx), "every branch acknowledged: settled");
	is_int(crd->n_committed, committed + 2, "COMMITTED counted");
	ok(crd_tx_find(crd, seq) == NULL, "... and forgotten");
	ok(strcmp(records(seq), "APDC") == 0,
	   "... its records: ACTIVE PREPARING COMMITTING COMMITTED (%s)", records(seq));

	/* Recovery restores without logging, sending or telling. */
	tx = new_tx();
	seq = tx->seq;
	size_t pending = wal_pending(crd->wal);
	is_int(crd_tx_move(crd, tx, CRD_TX_COMMITTING, NULL, CRD_BY_RECOVERY), 0,
	       "NONE -> COMMITTING by recovery");
	ok(wal_pending(crd->wal) == pending && tx->br[0].next_send_ms == 0,
	   "... logs nothing and sends nothing");
	is_int(outcome(false), -2, "... and answers no client");
	is_int(crd_tx_move(crd, tx, CRD_TX_ABORTING, "operator x: resolve abort (forced)",
			   CRD_BY_OPERATOR),
	       0, "COMMITTING -> ABORTING by the operator");
	crd_tx_heuristic(crd, tx, NULL, "operator x: resolve abort (forced)");
	is_int(crd_tx_outcome(tx), DTX_OUTCOME_HEURISTIC, "a heuristic outcome is told as such");
	tx->br[0].acked = true;
	crd_settle(crd, tx);
	ok(strcmp(records(seq), "RHX") == 0, "... records ABORTING HEURISTIC ABORTED (%s)",
	   records(seq));
	(void)outcome(false);
}

int main(void)
{
	dtx_log_set_level(DTX_LOG_WARNING);
	test_table();
	if (!ok(setup() == 0, "a coordinator with its log in a temporary folder starts"))
		return tap_done();
	test_effects();
	zmq_close(cli);
	crd_destroy(&crd);
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		printf("# could not remove %s\n", dir);
	return tap_done();
}
