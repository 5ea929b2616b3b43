/*
 * dtx-nullagent — a participant without a database, for measuring the
 * coordinator alone (dtxbench's null mode). It registers under a name,
 * votes YES to every PREPARE at once, acknowledges every decision at once,
 * answers every saga STEP done at once (run, compensation or probe)
 * and pings like a real agent. It keeps no state: it is not a participant
 * for anything but a benchmark.
 *
 *   dtx-nullagent NAME ENDPOINT [HEARTBEAT_MS]
 *
 * For a tcp:// endpoint, DTX_SERVER_KEY and DTX_KEY in the environment name
 * the coordinator's public key file and this agent's secret key file (CURVE).
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "dtx.h"
#include "dtx_curve.h"
#include "dtx_frame.h"
#include "dtx_util.h"
#include "dtx_wire.h"

static volatile sig_atomic_t s_stop;

static void s_on_signal(int sig)
{
	(void)sig;
	s_stop = 1;
}

static void s_send(void *sock, const dtx_msg_t *m)
{
	if (dtx_send(sock, m, ZMQ_DONTWAIT) == DTX_EIO && errno != EAGAIN)
		dtx_warn("send: %s", zmq_strerror(errno));
}

static void s_hello(void *sock, const char *name)
{
	dtx_msg_t m = {.type = DTX_T_HELLO, .has = DTX_F_NAME, .name = name};
	s_send(sock, &m);
}

/* One message from the coordinator. */
static void s_on_msg(void *sock, const char *name, const dtx_msg_t *m, bool *welcomed)
{
	dtx_msg_t r = {0};
	switch (m->type) {
	case DTX_T_WELCOME:
		if (!*welcomed)
			dtx_notice("registered as %s", name);
		*welcomed = true;
		break;
	case DTX_T_PREPARE:
		r = (dtx_msg_t){.type = DTX_T_VOTE,
				.has = DTX_F_GTID | DTX_F_CODE,
				.gtid = m->gtid,
				.code = DTX_VOTE_YES};
		s_send(sock, &r);
		break;
	case DTX_T_DECIDE:
		r = (dtx_msg_t){.type = DTX_T_ACK,
				.has = DTX_F_GTID | DTX_F_CODE,
				.gtid = m->gtid,
				.code = DTX_ACK_DONE};
		s_send(sock, &r);
		break;
	case DTX_T_STEP:
		/* a saga's step, its compensation or a probe: done (a probe: it
		 * ran; with no database, nothing is fenced) */
		r = (dtx_msg_t){.type = DTX_T_RESULT,
				.has = DTX_F_GTID | DTX_F_CODE | DTX_F_ASKED,
				.gtid = m->gtid,
				.asked = m->code,
				.code = DTX_RESULT_DONE};
		s_send(sock, &r);
		break;
	case DTX_T_ERROR:
		if (m->code == DTX_ENOTREG) {
			*welcomed = false;
			s_hello(sock, name);
		} else {
			dtx_err("coordinator says: %s", m->text ? m->text : "?");
		}
		break;
	default: break;
	}
}

int main(int argc, char **argv)
{
	if (argc < 3 || argc > 4 || !dtx_name_valid(argv[1])) {
		fprintf(stderr, "usage: dtx-nullagent NAME ENDPOINT [HEARTBEAT_MS]\n");
		return 2;
	}
	const char *name = argv[1], *endpoint = argv[2];
	long long hb = 1000;
	if (argc == 4 && !dtx_parse_int(argv[3], 10, 600000, &hb)) {
		fprintf(stderr, "dtx-nullagent: bad heartbeat '%s'\n", argv[3]);
		return 2;
	}
	dtx_daemon_start(DTX_LOG_NOTICE, s_on_signal);

	void *ctx = zmq_ctx_new();
	void *sock = ctx ? zmq_socket(ctx, ZMQ_DEALER) : NULL;
	int zero = 0;
	char cwhy[1200];
	/* CURVE, for a tcp:// endpoint: the coordinator's public key file and
	 * this agent's secret key file */
	const char *server_key = getenv("DTX_SERVER_KEY"), *key = getenv("DTX_KEY");
	if (sock && server_key && key &&
	    dtx_curve_client(sock, server_key, key, cwhy, sizeof(cwhy))) {
		dtx_err("%s", cwhy);
		return 1;
	}
	if (!sock || zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof(zero)) ||
	    zmq_connect(sock, endpoint)) {
		dtx_err("cannot connect to %s: %s", endpoint, zmq_strerror(errno));
		return 1;
	}
	bool welcomed = false;
	int64_t last_hello = dtx_now_ms(), last_ping = last_hello;
	s_hello(sock, name);
	while (!s_stop) {
		zmq_pollitem_t it = {.socket = sock, .events = ZMQ_POLLIN};
		if (zmq_poll(&it, 1, 50) < 0 && errno != EINTR)
			break;
		for (int n = 0; n < 1000; n++) {
			dtx_msg_t m;
			char why[256];
			int rc = dtx_recv(sock, &m, ZMQ_DONTWAIT, why, sizeof(why));
			if (rc == DTX_ETIMEOUT || rc == DTX_EIO)
				break; /* nothing more this round */
			if (rc) {
				dtx_warn("frame refused: %s", why);
				continue;
			}
			s_on_msg(sock, name, &m, &welcomed);
			dtx_msg_clear(&m);
		}
		int64_t now = dtx_now_ms();
		if (!welcomed && now - last_hello >= 250) {
			last_hello = now;
			s_hello(sock, name);
		}
		if (now - last_ping >= hb) {
			dtx_msg_t p = {.type = DTX_T_PING};
			last_ping = now;
			s_send(sock, &p);
		}
	}
	zmq_close(sock);
	zmq_ctx_term(ctx);
	return 0;
}
