/*
 * dtx-roguecoord — test helper: someone posing as the coordinator. It
 * binds an agent endpoint as a ROUTER (a CURVE server with --curve),
 * answers the first HELLO with WELCOME (--id, default c1), then sends its
 * actions in order, and prints every frame it receives, one a line:
 *
 *   HELLO NAME | INDOUBT GID,GID... | VOTE GID CODE TEXT | ACK GID CODE TEXT
 *   RESULT GID done|failed|fenced TEXT [sqlstate S]
 *   ERROR CODE TEXT | OTHER TYPE | UNDECODABLE WHY
 *
 * until --for milliseconds have passed, or (--results N) once every
 * action is sent, 100 ms (or the last sleep) have passed and N RESULTs
 * came; "no HELLO" at the end if none came.
 * PINGs are answered with PONG and not printed; a PING before any HELLO
 * is answered ERROR DTX_ENOTREG, as a coordinator that restarted does, so
 * that an agent registered with an earlier one says HELLO again. Used by
 * tests/integration/agenttrust.sh and barrier.sh to show what an agent
 * does (and does not do) for such a peer.
 *
 *   dtx-roguecoord keygen DIR NAME
 *   dtx-roguecoord serve ENDPOINT [--curve SECRET] [--id ID] [--for MS]
 *       [--results N] [decide GID CODE | prepare GID SQL |
 *        step GID CODE[=EXPECT] [STMT] | sleep MS]...
 *
 * step sends STEP with code run, compensate or probe (or a number), the
 * statement STMT (run and compensate; none for probe) expecting EXPECT
 * rows if given, timeout 5 s.
 * STMT is SQL, or @NAME[,PARAM...] for a named statement.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "dtx_curve.h"
#include "dtx_frame.h"
#include "dtx_util.h"
#include "dtx_wire.h"

static void s_print(const dtx_msg_t *m)
{
	switch (m->type) {
	case DTX_T_HELLO: printf("HELLO %s\n", m->name); break;
	case DTX_T_INDOUBT:
		printf("INDOUBT ");
		for (uint32_t i = 0; i < m->ngids; i++)
			printf("%s%s", i ? "," : "", m->gids[i]);
		printf("\n");
		break;
	case DTX_T_VOTE:
	case DTX_T_ACK:
		printf("%s %s %lld %s\n", dtx_msg_type_str(m->type), m->gtid, (long long)m->code,
		       (m->has & DTX_F_TEXT) ? m->text : "");
		break;
	case DTX_T_RESULT:
		printf("RESULT %s %s %s", m->gtid,
		       m->code == DTX_RESULT_DONE     ? "done"
		       : m->code == DTX_RESULT_FAILED ? "failed"
		       : m->code == DTX_RESULT_FENCED ? "fenced"
						      : "?",
		       (m->has & DTX_F_TEXT) ? m->text : "");
		if (m->has & DTX_F_SQLSTATE)
			printf(" [sqlstate %s]", m->sqlstate);
		printf("\n");
		break;
	case DTX_T_ERROR: printf("ERROR %lld %s\n", (long long)m->code, m->text); break;
	default: printf("OTHER %s\n", dtx_msg_type_str(m->type)); break;
	}
}

static int s_serve(int argc, char **argv)
{
	const char *endpoint = argv[0], *curve = NULL, *id = "c1";
	long for_ms = 3000, want_results = -1, nresults = 0;
	int i = 1, one = 1, zero = 0;
	const char *params[16];
	char named[256];
	char why[256];

	for (; i + 1 < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
		if (strcmp(argv[i], "--curve") == 0)
			curve = argv[i + 1];
		else if (strcmp(argv[i], "--id") == 0)
			id = argv[i + 1];
		else if (strcmp(argv[i], "--for") == 0)
			for_ms = atol(argv[i + 1]);
		else if (strcmp(argv[i], "--results") == 0)
			want_results = atol(argv[i + 1]);
		else
			return 2;
	}
	char **actions = argv + i;
	int nactions = argc - i;

	void *ctx = zmq_ctx_new(), *sock = zmq_socket(ctx, ZMQ_ROUTER);
	zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_setsockopt(sock, ZMQ_ROUTER_MANDATORY, &one, sizeof(one));
	if (curve && dtx_curve_server(sock, curve, why, sizeof(why))) {
		fprintf(stderr, "dtx-roguecoord: %s\n", why);
		return 1;
	}
	if (zmq_bind(sock, endpoint)) {
		fprintf(stderr, "dtx-roguecoord: bind %s: %s\n", endpoint, zmq_strerror(errno));
		return 1;
	}
	printf("BOUND %s\n", endpoint);
	fflush(stdout);

	dtx_peer_t peer = {0};
	bool hello = false;
	int next = 0;
	int64_t end = dtx_now_ms() + for_ms, act_at = 0;
	while (dtx_now_ms() < end) {
		zmq_pollitem_t it = {.socket = sock, .events = ZMQ_POLLIN};
		zmq_poll(&it, 1, 20);
		dtx_peer_t from;
		zmq_msg_t body;
		while (dtx_recv_routed(sock, &from, &body)) {
			dtx_msg_t m;
			if (dtx_msg_decode(zmq_msg_data(&body), zmq_msg_size(&body), &m, why,
					   sizeof(why))) {
				printf("UNDECODABLE %s\n", why);
			} else if (m.type == DTX_T_PING && !hello) {
				dtx_msg_t e = {.type = DTX_T_ERROR,
					       .has = DTX_F_CODE | DTX_F_TEXT,
					       .code = DTX_ENOTREG,
					       .text = "not registered"};
				dtx_send_to(sock, &from, &e);
			} else if (m.type == DTX_T_PING) {
				dtx_msg_t p = {.type = DTX_T_PONG};
				dtx_send_to(sock, &from, &p);
			} else {
				if (m.type == DTX_T_RESULT)
					nresults++;
				s_print(&m);
				if (m.type == DTX_T_HELLO) {
					dtx_msg_t w = {.type = DTX_T_WELCOME,
						       .has = DTX_F_TEXT,
						       .text = id};
					dtx_send_to(sock, &from, &w);
					if (!hello)
						act_at = dtx_now_ms() + 300; /* after INDOUBT */
					hello = true;
					peer = from;
				}
			}
			fflush(stdout);
			dtx_msg_clear(&m);
			zmq_msg_close(&body);
		}
		if (want_results >= 0 && next == nactions && dtx_now_ms() >= act_at &&
		    nresults >= want_results)
			break;
		/* one action every 100 ms once welcomed */
		if (hello && next < nactions && dtx_now_ms() >= act_at) {
			dtx_msg_t m = {0};
			dtx_stmt_t st = {.expect = -1};
			if (strcmp(actions[next], "sleep") == 0 && next + 1 < nactions) {
				act_at = dtx_now_ms() + atol(actions[next + 1]);
				next += 2;
				continue;
			}
			if (strcmp(actions[next], "step") == 0 && next + 2 < nactions) {
				const char *c = actions[next + 2], *eq = strchr(c, '=');
				size_t clen = eq ? (size_t)(eq - c) : strlen(c);
				int64_t code = strncmp(c, "run", clen) == 0 ? DTX_STEP_RUN
					       : strncmp(c, "compensate", clen) == 0
						       ? DTX_STEP_COMPENSATE
					       : strncmp(c, "probe", clen) == 0 ? DTX_STEP_PROBE
										: atoll(c);
				bool stmt = code != DTX_STEP_PROBE && next + 3 < nactions;
				m = (dtx_msg_t){.type = DTX_T_STEP,
						.has = DTX_F_GTID | DTX_F_CODE | DTX_F_TIMEOUT,
						.gtid = actions[next + 1],
						.code = code,
						.timeout_ms = 5000};
				if (eq)
					st.expect = atoll(eq + 1);
				if (stmt) {
					const char *a = actions[next + 3];
					if (a[0] == '@') {
						/* @NAME,PARAM,...: a named statement */
						snprintf(named, sizeof(named), "%s", a + 1);
						char *save = NULL,
						     *tok = strtok_r(named, ",", &save);
						st.statement = tok;
						while ((tok = strtok_r(NULL, ",", &save)) &&
						       st.nparams < 16)
							params[st.nparams++] = tok;
						st.params = params;
					} else {
						st.sql = a;
					}
					m.has |= DTX_F_STMTS;
					m.nstmts = 1;
					m.stmts = &st;
				}
				next += stmt ? 4 : 3;
			} else if (strcmp(actions[next], "decide") == 0 && next + 2 < nactions) {
				m = (dtx_msg_t){.type = DTX_T_DECIDE,
						.has = DTX_F_GTID | DTX_F_CODE,
						.gtid = actions[next + 1],
						.code = atoi(actions[next + 2])};
				next += 3;
			} else if (strcmp(actions[next], "prepare") == 0 && next + 2 < nactions) {
				st.sql = actions[next + 2];
				m = (dtx_msg_t){.type = DTX_T_PREPARE,
						.has = DTX_F_GTID | DTX_F_STMTS | DTX_F_TIMEOUT,
						.gtid = actions[next + 1],
						.nstmts = 1,
						.stmts = &st,
						.timeout_ms = 5000};
				next += 3;
			} else {
				fprintf(stderr, "dtx-roguecoord: bad action '%s'\n", actions[next]);
				return 2;
			}
			int rc = dtx_send_to(sock, &peer, &m);
			if (rc)
				printf("SEND FAILED %s\n", dtx_strerror(rc));
			act_at = dtx_now_ms() + 100;
		}
	}
	if (!hello)
		printf("no HELLO\n");
	zmq_close(sock);
	zmq_ctx_term(ctx);
	return 0;
}

int main(int argc, char **argv)
{
	char why[512];
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 4 && strcmp(argv[1], "keygen") == 0) {
		if (dtx_key_generate(argv[2], argv[3], why, sizeof(why))) {
			fprintf(stderr, "dtx-roguecoord: %s\n", why);
			return 1;
		}
		return 0;
	}
	if (argc >= 3 && strcmp(argv[1], "serve") == 0) {
		int rc = s_serve(argc - 2, argv + 2);
		if (rc == 2)
			fprintf(stderr,
				"usage: dtx-roguecoord serve ENDPOINT [--curve SECRET] [--id "
				"ID] [--for MS] [--results N] [decide GID CODE | prepare GID SQL "
				"| step GID CODE[=EXPECT] [STMT] | sleep MS]...\n");
		return rc;
	}
	fprintf(stderr, "usage: dtx-roguecoord keygen DIR NAME | serve ENDPOINT ...\n");
	return 2;
}
