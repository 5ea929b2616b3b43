/*
 * test_client.c — libdtx's saga builder and dtx_client_run_saga() against
 * a stand-in coordinator (a ROUTER on an ipc:// socket in a temporary
 * folder, served by a thread of this test): what the builder refuses, the
 * rules refused before anything is sent, the steps as they arrive, the
 * ACTIVE then COMPENSATED answer with the failing step, a completed saga,
 * a time-out that keeps the GTID, a refusal with its reason, and QUERY of
 * a saga. Every wait is bounded.
 */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "../tap.h"
#include "dtx.h"
#include "dtx_frame.h"
#include "dtx_util.h"
#include "dtx_wire.h"

#define WAIT_MS 3000

#define is_str(got, want, name)                                                                    \
	do {                                                                                       \
		const char *g_ = (got), *w_ = (want);                                              \
		if (!ok(g_ && strcmp(g_, w_) == 0, "%s", name))                                    \
			printf("#   got  '%s'\n#   want '%s'\n", g_ ? g_ : "(null)", w_);          \
	} while (0)

/* What the stand-in coordinator saw of the last SAGA. */
static struct {
	pthread_mutex_t mu;
	int sagas;             /* SAGA frames received */
	char seen[1024];       /* the last one's steps, "name:p:kind:nstmts:ncomp:group ..." */
	char key[DTX_KEY_MAX + 1];
	uint32_t timeout_ms;
	char first_sql[128];   /* its first step's first statement */
	char first_comp[128];  /* ... and compensation */
} s_seen = {.mu = PTHREAD_MUTEX_INITIALIZER};

static char s_endpoint[256];
static volatile int s_stop;

/* The answers, by the saga's key: "ok" completes, "silent" is answered
 * ACTIVE only, "refuse" is refused with EPERM; any other is compensated
 * at its second step. */
static void s_answer(void *router, const dtx_peer_t *peer, const dtx_msg_t *m)
{
	dtx_msg_t o = {.type = DTX_T_OUTCOME, .has = DTX_F_ID | DTX_F_CODE, .id = m->id};
	if (m->type == DTX_T_QUERY) {
		o.has |= DTX_F_GTID | DTX_F_NAME | DTX_F_STEP | DTX_F_TEXT;
		o.code = DTX_OUTCOME_COMPENSATED;
		o.gtid = m->gtid;
		o.name = "bank";
		o.step = "pay";
		o.text = "pay voted no";
		dtx_send_to(router, peer, &o);
		return;
	}
	if (strcmp(m->key, "refuse") == 0) {
		dtx_send_error_to(router, peer, m, DTX_EPERM, "participant 'bank' not allowed");
		return;
	}
	pthread_mutex_lock(&s_seen.mu);
	s_seen.sagas++;
	s_seen.seen[0] = '\0';
	for (uint32_t i = 0; i < m->nsteps; i++) {
		const dtx_step_t *st = &m->steps[i];
		size_t len = strlen(s_seen.seen);
		snprintf(s_seen.seen + len, sizeof(s_seen.seen) - len, "%s%s:%s:%d:%u:%u:%u",
			 i ? " " : "", st->name, st->participant, st->kind, st->nstmts, st->ncomp,
			 st->group);
	}
	snprintf(s_seen.key, sizeof(s_seen.key), "%s", m->key);
	s_seen.timeout_ms = (m->has & DTX_F_TIMEOUT) ? m->timeout_ms : 0;
	snprintf(s_seen.first_sql, sizeof(s_seen.first_sql), "%s",
		 m->steps[0].stmts[0].sql ? m->steps[0].stmts[0].sql
					  : m->steps[0].stmts[0].statement);
	snprintf(s_seen.first_comp, sizeof(s_seen.first_comp), "%s",
		 m->steps[0].ncomp ? m->steps[0].comp[0].sql : "");
	pthread_mutex_unlock(&s_seen.mu);

	o.has |= DTX_F_GTID;
	o.gtid = "c1.1.42";
	o.code = DTX_OUTCOME_ACTIVE;
	dtx_send_to(router, peer, &o);
	if (strcmp(m->key, "silent") == 0)
		return;
	if (strcmp(m->key, "ok") == 0) {
		o.code = DTX_OUTCOME_COMPLETED;
	} else {
		o.code = DTX_OUTCOME_COMPENSATED;
		o.has |= DTX_F_NAME | DTX_F_STEP | DTX_F_SQLSTATE | DTX_F_TEXT;
		o.name = m->steps[1].participant;
		o.step = m->steps[1].name;
		o.sqlstate = "23514";
		o.text = "step 'pay' failed: insufficient funds";
	}
	dtx_send_to(router, peer, &o);
}

static void *s_coordinator(void *arg)
{
	void *router = arg;
	while (!s_stop) {
		zmq_pollitem_t it = {.socket = router, .events = ZMQ_POLLIN};
		if (zmq_poll(&it, 1, 50) <= 0)
			continue;
		dtx_peer_t peer;
		dtx_msg_t m;
		while (dtx_recv_from(router, &peer, &m, "client") == 1) {
			if (m.type == DTX_T_SAGA || m.type == DTX_T_QUERY)
				s_answer(router, &peer, &m);
			dtx_msg_clear(&m);
		}
	}
	return NULL;
}

static const char *const s_pr[] = {"widget", "2"};

/* The DESIGN.md example: reserve (compensable), pay (the pivot), notify. */
static dtx_saga_t *s_example(const char *key)
{
	dtx_saga_t *sg = dtx_saga_new();
	int rc = 0;
	if (!sg)
		return NULL;
	rc |= dtx_saga_step(sg, "reserve", "stock", DTX_SAGA_COMPENSABLE);
	rc |= dtx_saga_add(sg, "UPDATE items SET qty = qty - $2 WHERE item = $1 AND qty >= $2", 2,
			   s_pr, 1);
	rc |= dtx_saga_compensate(sg, "UPDATE items SET qty = qty + $2 WHERE item = $1", 2, s_pr,
				  1);
	rc |= dtx_saga_set_group(sg, 7);
	rc |= dtx_saga_step(sg, "pay", "bank", DTX_SAGA_PIVOT);
	rc |= dtx_saga_add_named(sg, "pay", 2, s_pr, 1);
	rc |= dtx_saga_step(sg, "notify", "shop", DTX_SAGA_RETRIABLE);
	rc |= dtx_saga_add(sg, "INSERT INTO notices (ref, text) VALUES ($1, $2)", 2, s_pr, 1);
	if (key)
		rc |= dtx_saga_set_key(sg, key);
	if (rc)
		dtx_saga_destroy(&sg);
	return sg;
}

/* What the builder takes and refuses, and the rules before sending. */
static void test_builder(dtx_client_t *cl)
{
	dtx_saga_t *sg = dtx_saga_new(), *other = dtx_saga_new();
	dtx_outcome_t out;
	char why[256];

	ok(sg && other, "dtx_saga_new");
	ok(strlen(dtx_saga_key(sg)) == 32 && strcmp(dtx_saga_key(sg), dtx_saga_key(other)) != 0,
	   "each saga gets a key of its own (%s)", dtx_saga_key(sg));
	dtx_saga_destroy(&other);
	ok(other == NULL, "dtx_saga_destroy clears the pointer");
	dtx_saga_destroy(&other);
	dtx_saga_destroy(NULL);

	is_int(dtx_saga_add(sg, "SELECT 1", 0, NULL, -1), DTX_EINVAL, "no statement before a step");
	is_int(dtx_saga_compensate(sg, "SELECT 1", 0, NULL, -1), DTX_EINVAL,
	       "no compensation before a step");
	is_int(dtx_saga_set_group(sg, 1), DTX_EINVAL, "no group before a step");
	is_int(dtx_saga_step(sg, "bad name", "stock", DTX_SAGA_COMPENSABLE), DTX_EINVAL,
	       "a step name outside [A-Za-z0-9_-] is refused");
	is_int(dtx_saga_step(sg, "reserve", "", DTX_SAGA_COMPENSABLE), DTX_EINVAL,
	       "an empty participant is refused");
	is_int(dtx_saga_step(sg, "reserve", "stock", 3), DTX_EINVAL, "an unknown kind is refused");
	is_int(dtx_saga_validate(sg, why, sizeof(why)), DTX_EINVAL, "a saga of no steps is none");
	is_int(dtx_saga_set_key(sg, "no spaces"), DTX_EINVAL, "a bad key is refused");

	is_int(dtx_saga_step(sg, "reserve", "stock", DTX_SAGA_COMPENSABLE), 0,
	       "a compensable step");
	is_int(dtx_saga_add(sg, "", 0, NULL, -1), DTX_EINVAL, "empty SQL is refused");
	is_int(dtx_saga_add(sg, "SELECT $1", 1, NULL, -1), DTX_EINVAL,
	       "parameters without their array are refused");
	is_int(dtx_saga_add_named(sg, "no such/name", 0, NULL, -1), DTX_EINVAL,
	       "a bad statement name is refused");
	is_int(dtx_saga_add(sg, "UPDATE t SET n = n - 1", 0, NULL, 1), 0, "its statement");
	is_int(dtx_saga_validate(sg, why, sizeof(why)), DTX_EINVAL,
	       "a compensable step without compensation breaks the rules");
	ok(strstr(why, "no compensation") != NULL, "... and says so (%s)", why);

	memset(&out, 0x55, sizeof(out));
	is_int(dtx_client_run_saga(cl, sg, &out, WAIT_MS), DTX_EINVAL,
	       "dtx_client_run_saga refuses it");
	ok(strstr(out.reason, "no compensation") && !out.gtid[0] && !out.step[0],
	   "... with the reason in out->reason and nothing else (%s)", out.reason);

	is_int(dtx_saga_compensate(sg, "UPDATE t SET n = n + 1", 0, NULL, 1), 0,
	       "its compensation");
	is_int(dtx_saga_validate(sg, why, sizeof(why)), 0, "one compensable step makes a saga");
	is_int(dtx_saga_step(sg, "pay", "bank", DTX_SAGA_PIVOT), 0, "a pivot");
	is_int(dtx_saga_add(sg, "UPDATE w SET b = b - 1", 0, NULL, 1), 0, "its statement");
	is_int(dtx_saga_step(sg, "refund", "bank", DTX_SAGA_COMPENSABLE), 0,
	       "the builder takes a compensable step after the pivot ...");
	is_int(dtx_saga_add(sg, "UPDATE w SET b = b + 1", 0, NULL, 1), 0, "... its statement");
	is_int(dtx_saga_compensate(sg, "UPDATE w SET b = b - 1", 0, NULL, 1), 0,
	       "... and compensation");
	is_int(dtx_saga_validate(sg, why, sizeof(why)), DTX_EINVAL, "... which breaks the rules");
	ok(strstr(why, "after the pivot") != NULL, "... and says so (%s)", why);
	is_int(dtx_client_run_saga(cl, sg, &out, WAIT_MS), DTX_EINVAL,
	       "dtx_client_run_saga refuses it too");
	dtx_saga_destroy(&sg);

	sg = dtx_saga_new();
	dtx_saga_step(sg, "a", "stock", DTX_SAGA_PIVOT);
	dtx_saga_add(sg, "SELECT 1", 0, NULL, -1);
	dtx_saga_step(sg, "a", "bank", DTX_SAGA_RETRIABLE);
	dtx_saga_add(sg, "SELECT 1", 0, NULL, -1);
	ok(dtx_saga_validate(sg, why, sizeof(why)) == DTX_EINVAL && strstr(why, "two steps"),
	   "two steps of one name break the rules (%s)", why);
	dtx_saga_destroy(&sg);

	sg = dtx_saga_new();
	int rc = 0;
	for (int i = 0; i < DTX_SAGA_MAX_STEPS && !rc; i++) {
		char name[16];
		snprintf(name, sizeof(name), "s%d", i);
		rc = dtx_saga_step(sg, name, "shop", DTX_SAGA_RETRIABLE);
	}
	is_int(rc, 0, "DTX_SAGA_MAX_STEPS steps are taken");
	is_int(dtx_saga_step(sg, "one-more", "shop", DTX_SAGA_RETRIABLE), DTX_EINVAL,
	       "... and not one more");
	dtx_saga_destroy(&sg);

	pthread_mutex_lock(&s_seen.mu);
	is_int(s_seen.sagas, 0, "nothing that breaks the rules reached the coordinator");
	pthread_mutex_unlock(&s_seen.mu);
}

static void test_run(dtx_client_t *cl)
{
	dtx_saga_t *sg = s_example(NULL);
	dtx_outcome_t out;
	int64_t t0;

	ok(sg != NULL, "the example saga builds");
	dtx_saga_set_timeout(sg, 10000);
	is_int(dtx_client_run_saga(cl, sg, &out, WAIT_MS), 0, "a saga runs");
	pthread_mutex_lock(&s_seen.mu);
	is_str(s_seen.seen, "reserve:stock:0:1:1:7 pay:bank:1:1:0:0 notify:shop:2:1:0:0",
	       "its steps arrive: names, participants, kinds, statements, compensations, group");
	ok(strcmp(s_seen.key, dtx_saga_key(sg)) == 0 && s_seen.timeout_ms == 10000,
	   "... with its key and time-out");
	ok(strstr(s_seen.first_sql, "qty - $2") && strstr(s_seen.first_comp, "qty + $2"),
	   "... and the step's statement and compensation, each its own");
	pthread_mutex_unlock(&s_seen.mu);
	is_int(out.status, DTX_OUTCOME_COMPENSATED, "compensated");
	is_str(out.gtid, "c1.1.42", "the GTID of ACTIVE is kept");
	is_str(out.step, "pay", "out->step: the failing step");
	is_str(out.participant, "bank", "out->participant: its participant");
	is_str(out.sqlstate, "23514", "out->sqlstate");
	ok(strstr(out.reason, "insufficient funds") != NULL, "out->reason (%s)", out.reason);
	dtx_saga_destroy(&sg);

	sg = s_example("ok");
	is_int(dtx_client_run_saga(cl, sg, &out, WAIT_MS), 0, "a saga that completes");
	ok(out.status == DTX_OUTCOME_COMPLETED && !out.step[0] && !out.reason[0] &&
		   strcmp(out.gtid, "c1.1.42") == 0,
	   "completed, with its GTID and no failing step");
	is_str(dtx_outcome_str(out.status), "completed", "dtx_outcome_str names it");
	dtx_saga_destroy(&sg);

	sg = s_example("silent");
	t0 = dtx_now_ms();
	is_int(dtx_client_run_saga(cl, sg, &out, 300), DTX_ETIMEOUT,
	       "a saga answered ACTIVE only: a time-out, not a failure");
	ok(strcmp(out.gtid, "c1.1.42") == 0 && dtx_now_ms() - t0 < WAIT_MS,
	   "... in time, with the GTID to ask for");
	dtx_saga_destroy(&sg);

	sg = s_example("refuse");
	is_int(dtx_client_run_saga(cl, sg, &out, WAIT_MS), DTX_EPERM,
	       "a refused saga returns the coordinator's code");
	ok(strstr(out.reason, "not allowed") && !out.gtid[0], "... with its reason (%s)",
	   out.reason);
	dtx_saga_destroy(&sg);

	is_int(dtx_client_query(cl, "c1.1.42", &out, WAIT_MS), 0, "QUERY of a saga");
	ok(out.status == DTX_OUTCOME_COMPENSATED && strcmp(out.step, "pay") == 0 &&
		   strcmp(out.participant, "bank") == 0,
	   "... answers compensated with the failing step");
}

int main(void)
{
	char dir[] = "/tmp/dtx-test-client-XXXXXX";
	void *ctx = zmq_ctx_new(), *router;
	int zero = 0;
	pthread_t th;

	if (!mkdtemp(dir)) {
		printf("Bail out! mkdtemp failed\n");
		return 1;
	}
	snprintf(s_endpoint, sizeof(s_endpoint), "ipc://%s/client.sock", dir);
	router = zmq_socket(ctx, ZMQ_ROUTER);
	zmq_setsockopt(router, ZMQ_LINGER, &zero, sizeof(zero));
	if (zmq_bind(router, s_endpoint) != 0) {
		printf("Bail out! cannot bind %s: %s\n", s_endpoint, zmq_strerror(zmq_errno()));
		return 1;
	}
	pthread_create(&th, NULL, s_coordinator, router);
	dtx_client_t *cl = dtx_client_new(s_endpoint);
	ok(cl != NULL, "a client of the stand-in coordinator");
	if (cl) {
		test_builder(cl);
		test_run(cl);
	}
	dtx_client_destroy(&cl);
	s_stop = 1;
	pthread_join(th, NULL);
	zmq_close(router);
	zmq_ctx_term(ctx);
	char sock[300];
	snprintf(sock, sizeof(sock), "%s/client.sock", dir);
	unlink(sock);
	rmdir(dir);
	return tap_done();
}
