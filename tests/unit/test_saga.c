/*
 * test_saga.c — the saga state machine (coordinatord/crd_saga.c), linked
 * from libcrd: every (from, to) pair against the moves the design allows,
 * for each of protocol, operator and recovery; then the driver's rules on
 * a real coordinator (its log in a temporary folder, sockets on ipc://
 * there), fed RESULT frames as its participants would send them. The
 * participants are configured but not connected, so nothing leaves: each
 * test marks by hand the steps "sent" that a connected agent would have
 * received.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "../tap.h"
#include "crd_int.h"

#define N CRD_SAGA__COUNT
#define P CRD_BY_PROTOCOL
#define O CRD_BY_OPERATOR
#define R CRD_BY_RECOVERY

/* The moves DESIGN.md lists, written out again by hand. */
static const struct {
	crd_sagastate_t from, to;
	unsigned by;
} want[] = {
	{CRD_SAGA_NONE, CRD_SAGA_LOGGING, P},
	{CRD_SAGA_LOGGING, CRD_SAGA_RUNNING, P},
	{CRD_SAGA_LOGGING, CRD_SAGA_FORWARD, P},
	{CRD_SAGA_RUNNING, CRD_SAGA_FORWARD, P},
	{CRD_SAGA_RUNNING, CRD_SAGA_DECIDING, P},
	{CRD_SAGA_DECIDING, CRD_SAGA_FORWARD, P},
	{CRD_SAGA_RUNNING, CRD_SAGA_TURNING, P | O},
	{CRD_SAGA_TURNING, CRD_SAGA_COMPENSATING, P},
	{CRD_SAGA_FORWARD, CRD_SAGA_COMPLETED, P | O},
	{CRD_SAGA_COMPENSATING, CRD_SAGA_COMPENSATED, P | O},
	{CRD_SAGA_NONE, CRD_SAGA_RUNNING, R},
	{CRD_SAGA_NONE, CRD_SAGA_FORWARD, R},
	{CRD_SAGA_NONE, CRD_SAGA_COMPENSATING, R},
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
	unsigned bad = 0;
	for (int from = 0; from < N; from++)
		for (int to = 0; to < N; to++) {
			const crd_move_t *m = crd_move_find(crd_saga_moves, crd_saga_nmoves, from,
							    to);
			unsigned have = m ? m->by : 0;
			if (have != s_want(from, to)) {
				printf("# %s -> %s: table %u, design %u\n", crd_sagastate_str(from),
				       crd_sagastate_str(to), have, s_want(from, to));
				bad++;
			}
		}
	is_int(bad, 0, "the saga table holds exactly the moves of the design");
	const crd_move_t *m = crd_move_find(crd_saga_moves, crd_saga_nmoves, CRD_SAGA_NONE,
					    CRD_SAGA_LOGGING);
	ok(m && m->record == WAL_SAGA && m->durability == CRD_REC_FORCED,
	   "the definition is forced before the first step");
	m = crd_move_find(crd_saga_moves, crd_saga_nmoves, CRD_SAGA_RUNNING, CRD_SAGA_TURNING);
	ok(m && m->record == WAL_COMPENSATING && m->durability == CRD_REC_FORCED,
	   "the decision to compensate is forced");
	m = crd_move_find(crd_saga_moves, crd_saga_nmoves, CRD_SAGA_RUNNING, CRD_SAGA_DECIDING);
	ok(m && m->record == WAL_FORWARD && m->durability == CRD_REC_FORCED,
	   "without a pivot, the point of no return is forced");
	m = crd_move_find(crd_saga_moves, crd_saga_nmoves, CRD_SAGA_RUNNING, CRD_SAGA_FORWARD);
	ok(m && m->record == WAL_STEP_DONE && m->durability == CRD_REC_LAZY,
	   "the pivot's result is lazy: its barrier row proves it");
	ok(!crd_move_find(crd_saga_moves, crd_saga_nmoves, CRD_SAGA_FORWARD, CRD_SAGA_TURNING) &&
		   !crd_move_find(crd_saga_moves, crd_saga_nmoves, CRD_SAGA_FORWARD,
				  CRD_SAGA_COMPENSATING),
	   "nothing turns a saga around past its point of no return");
}

static char dir[200];
static crd_t *crd;
static void *cli;
static dtx_peer_t cli_peer;

static int setup(void)
{
	crd_config_t cfg;
	char why[512];
	uint32_t epoch;

	snprintf(dir, sizeof(dir), "/tmp/test_saga.XXXXXX");
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
	const char *parts[] = {"stock", "bank", "shop"};
	for (int i = 0; i < 3; i++)
		snprintf(cfg.participants[i], sizeof(cfg.participants[i]), "%s", parts[i]);
	cfg.nparticipants = 3;
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
	cli = zmq_socket(crd->ctx, ZMQ_DEALER);
	int t = 2000;
	zmq_setsockopt(cli, ZMQ_RCVTIMEO, &t, sizeof(t));
	if (zmq_connect(cli, cfg.client_endpoint) || zmq_send(cli, "x", 1, 0) != 1)
		return -1;
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

/* The next OUTCOME: its code (and step name in *step), -1 when none comes
 * within 2 s, -2 when none is waiting (expect false). */
static int outcome(bool expect, char *step, size_t len)
{
	char buf[4096];
	int n;
	if (step)
		step[0] = '\0';
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
	if (step && (m.has & DTX_F_STEP))
		snprintf(step, len, "%s", m.step);
	dtx_msg_clear(&m);
	return code;
}

static const char *pr[] = {"o1"};
static dtx_stmt_t fwd = {.sql = "UPDATE t SET n = n - 1 WHERE k = $1",
			 .nparams = 1,
			 .params = pr,
			 .expect = 1};
static dtx_stmt_t back = {.sql = "UPDATE t SET n = n + 1 WHERE k = $1",
			  .nparams = 1,
			  .params = pr,
			  .expect = 1};

/* A saga begun through the client endpoint's entry point; its
 * definition's group commit done: RUNNING (or FORWARD). */
static crd_saga_t *new_saga(const dtx_step_t *steps, uint32_t n)
{
	char *buf = NULL;
	size_t len;
	dtx_msg_t in = {.type = DTX_T_SAGA,
			.has = DTX_F_ID | DTX_F_STEPS | DTX_F_TIMEOUT,
			.id = 7,
			.timeout_ms = 60000,
			.nsteps = n,
			.steps = (dtx_step_t *)steps},
		  m;
	/* decoded, as the endpoint hands it over: the saga owns its arena */
	if (dtx_msg_encode(&in, &buf, &len) || dtx_msg_decode(buf, len, &m, NULL, 0))
		return NULL;
	free(buf);
	size_t before = crd->nsagas;
	crd_saga_begin(crd, &cli_peer, &m, -1);
	if (crd->nsagas != before + 1)
		return NULL;
	crd_saga_t *sg = crd->saga_head;
	if (sg->state != CRD_SAGA_LOGGING || !wal_forced_pending(crd->wal))
		return NULL;
	if (crd_flush(crd))
		return NULL;
	return sg;
}

static void sent(crd_saga_t *sg, int i)
{
	sg->st[i].state = CRD_STEP_SENT;
	sg->st[i].maybe_sent = true;
}

static void result(crd_saga_t *sg, int i, int asked, int code, const char *text)
{
	char gid[DTX_GID_MAX];
	dtx_gtid_t g = {.epoch = sg->epoch, .seq = sg->seq};
	snprintf(g.coord, sizeof(g.coord), "c1");
	dtx_gid_format(&g, (uint32_t)i, gid, sizeof(gid));
	dtx_msg_t m = {.type = DTX_T_RESULT,
		       .has = DTX_F_GTID | DTX_F_CODE | DTX_F_ASKED | DTX_F_TEXT,
		       .gtid = gid,
		       .asked = asked,
		       .code = code,
		       .text = text};
	crd_saga_on_result(crd, &crd->parts[sg->st[i].part], &m);
}

typedef struct {
	char kinds[40];
} hist_t;

static int hist_fn(const wal_rec_t *recs, unsigned n, void *arg)
{
	hist_t *h = arg;
	/* S saga, d step-done, f step-failed, T compensating, c step-compensated,
	 * C completed, X compensated, F forward, H heuristic */
	static const char letters[] = "????????"
				      "SdfTcCXF";
	unsigned k = 0;
	for (unsigned i = 0; i < n && k + 3 < sizeof(h->kinds); i++) {
		int kind = recs[i].kind;
		h->kinds[k++] = kind == WAL_HEURISTIC ? 'H' : kind < 17 ? letters[kind - 1] : '?';
		if (recs[i].step >= 0 && kind >= WAL_SAGA)
			h->kinds[k++] = (char)('0' + recs[i].step);
	}
	h->kinds[k] = '\0';
	return 0;
}

static const char *records(uint64_t seq)
{
	static hist_t h;
	memset(&h, 0, sizeof(h));
	if (crd_flush(crd) || wal_history(crd->wal, seq, hist_fn, &h))
		return "(none)";
	return h.kinds;
}

static const dtx_step_t order[3] = {
	{.name = "reserve",
	 .participant = "stock",
	 .nstmts = 1,
	 .stmts = &fwd,
	 .ncomp = 1,
	 .comp = &back},
	{.name = "pay", .participant = "bank", .nstmts = 1, .stmts = &fwd, .kind = DTX_STEP_PIVOT},
	{.name = "notify",
	 .participant = "shop",
	 .nstmts = 1,
	 .stmts = &fwd,
	 .kind = DTX_STEP_RETRIABLE},
};

static void test_completed(void)
{
	crd_saga_t *sg = new_saga(order, 3);
	if (!ok(sg && sg->state == CRD_SAGA_RUNNING, "a saga's definition is forced, then it runs"))
		return;
	uint64_t seq = sg->seq;
	sent(sg, 0);
	result(sg, 0, DTX_STEP_RUN, DTX_RESULT_DONE, "");
	ok(sg->state == CRD_SAGA_RUNNING && sg->cursor == 1, "reserve done: the pivot is next");
	sent(sg, 1);
	result(sg, 1, DTX_STEP_RUN, DTX_RESULT_DONE, "");
	is_int(sg->state, CRD_SAGA_FORWARD, "the pivot committed: forward only");
	sent(sg, 2);
	result(sg, 2, DTX_STEP_RUN, DTX_RESULT_FAILED, "connection refused");
	ok(sg->state == CRD_SAGA_FORWARD && sg->st[2].state == CRD_STEP_PENDING,
	   "a retriable step that fails waits for its retry, never compensates");
	crd_saga_resolve(crd, sg, false, "x", (char[200]){0}, 200);
	is_int(sg->state, CRD_SAGA_FORWARD, "... and the operator cannot compensate it either");
	sent(sg, 2);
	result(sg, 2, DTX_STEP_RUN, DTX_RESULT_DONE, "");
	char step[64];
	is_int(outcome(true, step, sizeof(step)), DTX_OUTCOME_COMPLETED,
	       "every step done: the client hears completed");
	ok(crd_saga_find(crd, seq) == NULL, "... and the saga is forgotten");
	ok(strcmp(records(seq), "Sd0d1d2C") == 0,
	   "... its records: saga, three steps done, completed (%s)", records(seq));
}

static void test_pivot_fails(void)
{
	char step[64];
	crd_saga_t *sg = new_saga(order, 3);
	if (!ok(sg != NULL, "a second saga runs"))
		return;
	uint64_t seq = sg->seq;
	sent(sg, 0);
	result(sg, 0, DTX_STEP_RUN, DTX_RESULT_DONE, "");
	sent(sg, 1);
	result(sg, 1, DTX_STEP_RUN, DTX_RESULT_FAILED, "0 rows where 1 expected");
	ok(sg->state == CRD_SAGA_RUNNING && sg->turn_pending && sg->st[1].probing,
	   "the pivot's NO is not taken on trust: it is probed first");
	result(sg, 1, DTX_STEP_RUN, DTX_RESULT_FAILED, "55P03 lock timeout");
	ok(sg->state == CRD_SAGA_RUNNING && sg->turn_pending,
	   "another NO while probing does not settle it either");
	result(sg, 1, DTX_STEP_PROBE, DTX_RESULT_FENCED, "fenced");
	is_int(sg->state, CRD_SAGA_TURNING, "the probe fenced it: the decision to compensate");
	ok(wal_forced_pending(crd->wal), "... forced");
	is_int(outcome(false, NULL, 0), -2, "... and nobody hears of it before it is on disk");
	crd_flush(crd);
	ok(sg->state == CRD_SAGA_COMPENSATING && sg->st[0].state == CRD_STEP_COMPENSATING,
	   "on disk: the reservation is compensated");
	result(sg, 0, DTX_STEP_RUN, DTX_RESULT_DONE, "late");
	is_int(sg->st[0].state, CRD_STEP_COMPENSATING,
	       "a late answer of the step itself does not count as its compensation");
	result(sg, 0, DTX_STEP_COMPENSATE, DTX_RESULT_FAILED, "database down");
	ok(sg->st[0].state == CRD_STEP_COMPENSATING && sg->st[0].next_send_ms > 0,
	   "a failed compensation is tried again, never given up");
	result(sg, 0, DTX_STEP_COMPENSATE, DTX_RESULT_DONE, "");
	is_int(outcome(true, step, sizeof(step)), DTX_OUTCOME_COMPENSATED,
	       "compensated: the client hears it");
	ok(strcmp(step, "pay") == 0, "... naming the failing step (%s)", step);
	ok(strcmp(records(seq), "Sd0f1T0c0X") == 0,
	   "... records: saga, reserve done, pay failed, compensating, reserve compensated, "
	   "compensated (%s)",
	   records(seq));
}

static void test_silent_pivot(void)
{
	crd_saga_t *sg = new_saga(order, 3);
	if (!ok(sg != NULL, "a third saga runs"))
		return;
	uint64_t seq = sg->seq;
	sent(sg, 0);
	result(sg, 0, DTX_STEP_RUN, DTX_RESULT_DONE, "");
	sent(sg, 1);
	sg->deadline_ms = dtx_now_ms() - 1;
	crd_saga_tick(crd, dtx_now_ms());
	ok(sg->state == CRD_SAGA_RUNNING && sg->st[1].probing,
	   "a pivot silent past the timeout is probed, never presumed");
	result(sg, 1, DTX_STEP_PROBE, DTX_RESULT_DONE, "it ran");
	is_int(sg->state, CRD_SAGA_FORWARD, "the probe says it ran: the saga goes forward");
	sent(sg, 2);
	result(sg, 2, DTX_STEP_RUN, DTX_RESULT_DONE, "");
	is_int(outcome(true, NULL, 0), DTX_OUTCOME_COMPLETED, "... and completes");
	ok(strchr(records(seq), 'T') == NULL, "no decision to compensate was logged (%s)",
	   records(seq));
}

static void test_silent_step(void)
{
	char step[64];
	crd_saga_t *sg = new_saga(order, 3);
	if (!ok(sg != NULL, "a fourth saga runs"))
		return;
	sent(sg, 0);
	sg->deadline_ms = dtx_now_ms() - 1;
	crd_saga_tick(crd, dtx_now_ms());
	is_int(sg->state, CRD_SAGA_TURNING,
	       "a compensable step silent past the timeout turns it around (the pivot never "
	       "left)");
	crd_flush(crd);
	ok(sg->state == CRD_SAGA_COMPENSATING && sg->st[0].state == CRD_STEP_COMPENSATING,
	   "the silent step itself is compensated");
	result(sg, 0, DTX_STEP_COMPENSATE, DTX_RESULT_DONE, "the step had not run: fenced");
	is_int(outcome(true, step, sizeof(step)), DTX_OUTCOME_COMPENSATED, "compensated");
	ok(strcmp(step, "reserve") == 0, "... naming the silent step (%s)", step);
}

static void test_no_pivot(void)
{
	static const dtx_step_t two[2] = {
		{.name = "a",
		 .participant = "stock",
		 .nstmts = 1,
		 .stmts = &fwd,
		 .ncomp = 1,
		 .comp = &back,
		 .group = 1},
		{.name = "b",
		 .participant = "bank",
		 .nstmts = 1,
		 .stmts = &fwd,
		 .ncomp = 1,
		 .comp = &back,
		 .group = 1},
	};
	crd_saga_t *sg = new_saga(two, 2);
	if (!ok(sg != NULL, "a saga of one group and no pivot runs"))
		return;
	uint64_t seq = sg->seq;
	sent(sg, 0);
	sent(sg, 1);
	result(sg, 1, DTX_STEP_RUN, DTX_RESULT_DONE, "");
	is_int(sg->state, CRD_SAGA_RUNNING, "one step of the group done: still running");
	result(sg, 0, DTX_STEP_RUN, DTX_RESULT_DONE, "");
	ok(sg->state == CRD_SAGA_DECIDING && wal_forced_pending(crd->wal),
	   "every compensable step done, no pivot: the point of no return is forced");
	is_int(outcome(false, NULL, 0), -2,
	       "... and the client hears nothing before it is on disk");
	crd_flush(crd);
	is_int(outcome(true, NULL, 0), DTX_OUTCOME_COMPLETED, "on disk: completed");
	ok(strcmp(records(seq), "Sd1d0FC") == 0, "... records (%s)", records(seq));

	sg = new_saga(two, 2);
	if (!sg)
		return;
	seq = sg->seq;
	sent(sg, 0);
	sent(sg, 1);
	result(sg, 0, DTX_STEP_RUN, DTX_RESULT_FAILED, "23514 check violated");
	is_int(sg->state, CRD_SAGA_TURNING, "a step of the group fails: turned around");
	crd_flush(crd);
	ok(sg->st[1].state == CRD_STEP_COMPENSATING,
	   "compensation in reverse: the group's last step first, though it never answered");
	result(sg, 1, DTX_STEP_COMPENSATE, DTX_RESULT_DONE, "");
	ok(sg->st[0].state == CRD_STEP_COMPENSATING, "then the failed one (its fence)");
	result(sg, 0, DTX_STEP_COMPENSATE, DTX_RESULT_DONE, "");
	is_int(outcome(true, NULL, 0), DTX_OUTCOME_COMPENSATED, "compensated");
	ok(strcmp(records(seq), "Sf0T1c1c0X") == 0, "... records (%s)", records(seq));
}

static void test_rogue(void)
{
	crd_saga_t *sg = new_saga(order, 3);
	if (!ok(sg != NULL, "a saga for the rogue"))
		return;
	sent(sg, 0);
	char gid[DTX_GID_MAX];
	dtx_gtid_t g = {.epoch = sg->epoch, .seq = sg->seq};
	snprintf(g.coord, sizeof(g.coord), "c1");
	dtx_gid_format(&g, 0, gid, sizeof(gid));
	dtx_msg_t m = {.type = DTX_T_RESULT,
		       .has = DTX_F_GTID | DTX_F_CODE | DTX_F_ASKED,
		       .gtid = gid,
		       .asked = DTX_STEP_RUN,
		       .code = DTX_RESULT_DONE};
	crd_saga_on_result(crd, &crd->parts[2], &m); /* shop answers for stock's step */
	is_int(sg->st[0].state, CRD_STEP_SENT, "another participant cannot answer for a step");
	result(sg, 0, DTX_STEP_RUN, DTX_RESULT_FAILED, "");
	crd_flush(crd);
	result(sg, 0, DTX_STEP_COMPENSATE, DTX_RESULT_DONE, "");
	(void)outcome(true, NULL, 0);
}

int main(void)
{
	dtx_log_set_level(DTX_LOG_ERR);
	test_table();
	if (!ok(setup() == 0, "a coordinator with its log in a temporary folder starts"))
		return tap_done();
	test_completed();
	test_pivot_fails();
	test_silent_pivot();
	test_silent_step();
	test_no_pivot();
	test_rogue();
	zmq_close(cli);
	crd_destroy(&crd);
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		printf("# could not remove %s\n", dir);
	return tap_done();
}
