/*
 * test_frame.c — dtx frames on real ZeroMQ sockets (inproc, no
 * coordinator): a ROUTER serving a DEALER and a REQ peer as the
 * coordinator's endpoints do, round trips both ways, a REQ peer's reply
 * carrying its delimiter, and the refusal of multi-frame and malformed
 * messages with an ERROR that echoes the request id. Every wait is
 * bounded and says what it waited for when it runs out.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "../tap.h"
#include "dtx_frame.h"
#include "dtx_util.h"
#include "dtx_wire.h"

#define WAIT_MS 2000
#define ENDPOINT "inproc://test-frame"

static void *s_ctx, *s_router, *s_dealer, *s_req;

static void *s_peer_socket(int type)
{
	void *s = zmq_socket(s_ctx, type);
	int zero = 0, wait = WAIT_MS;
	zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero));
	/* A REQ or DEALER that is never answered fails the test, not hangs it. */
	zmq_setsockopt(s, ZMQ_RCVTIMEO, &wait, sizeof(wait));
	zmq_setsockopt(s, ZMQ_SNDTIMEO, &wait, sizeof(wait));
	if (zmq_connect(s, ENDPOINT) != 0) {
		printf("Bail out! cannot connect to %s: %s\n", ENDPOINT, zmq_strerror(errno));
		exit(1);
	}
	return s;
}

static void s_setup(void)
{
	int one = 1, zero = 0;
	s_ctx = zmq_ctx_new();
	s_router = zmq_socket(s_ctx, ZMQ_ROUTER);
	/* As the coordinator's: a send to a gone peer fails with EHOSTUNREACH. */
	zmq_setsockopt(s_router, ZMQ_ROUTER_MANDATORY, &one, sizeof(one));
	zmq_setsockopt(s_router, ZMQ_LINGER, &zero, sizeof(zero));
	if (zmq_bind(s_router, ENDPOINT) != 0) {
		printf("Bail out! cannot bind %s: %s\n", ENDPOINT, zmq_strerror(errno));
		exit(1);
	}
	s_dealer = s_peer_socket(ZMQ_DEALER);
	s_req = s_peer_socket(ZMQ_REQ);
}

/* Wait for a message to reach the ROUTER; what: what it waits for. */
static bool s_router_wait(const char *what)
{
	zmq_pollitem_t it = {.socket = s_router, .events = ZMQ_POLLIN};
	if (zmq_poll(&it, 1, WAIT_MS) == 1)
		return true;
	printf("# the ROUTER waited %d ms for %s: nothing came\n", WAIT_MS, what);
	return false;
}

/* Receive on a peer socket (bounded by its ZMQ_RCVTIMEO); what: what it
 * waits for. */
static int s_peer_recv(void *sock, dtx_msg_t *m, const char *what)
{
	char why[256];
	int rc = dtx_recv(sock, m, 0, why, sizeof(why));
	if (rc == DTX_ETIMEOUT)
		printf("# waited %d ms for %s: nothing came\n", WAIT_MS, what);
	else if (rc)
		printf("# %s: %s\n", what, why);
	return rc;
}

static int s_send_raw(void *sock, const void *buf, size_t len, int flags)
{
	return zmq_send(sock, buf, len, flags) == (int)len ? 0 : -1;
}

/* A QUERY from peer, answered with an OUTCOME carrying its id. */
static void test_round_trip(void *peer_sock, const char *kind, uint64_t id, bool req)
{
	char what[128];
	dtx_msg_t q = {.type = DTX_T_QUERY,
		       .has = DTX_F_ID | DTX_F_GTID,
		       .id = id,
		       .gtid = "c1.1.7"},
		  m, r;
	dtx_peer_t peer;

	is_int(dtx_send(peer_sock, &q, 0), 0, "a QUERY leaves a peer socket");
	snprintf(what, sizeof(what), "the QUERY of the %s peer", kind);
	if (!ok(s_router_wait(what), "%s", what))
		return;
	is_int(dtx_recv_from(s_router, &peer, &m, "client"), 1, "the ROUTER decodes it");
	ok(m.type == DTX_T_QUERY && m.id == id && strcmp(m.gtid, "c1.1.7") == 0,
	   "QUERY fields survive from the %s peer", kind);
	ok(peer.req == req && peer.frames == 1, "the %s peer is recognised as %s", kind,
	   req ? "a REQ socket" : "no REQ socket");
	dtx_msg_clear(&m);

	dtx_msg_t o = {.type = DTX_T_OUTCOME,
		       .has = DTX_F_ID | DTX_F_CODE | DTX_F_GTID,
		       .id = id,
		       .code = DTX_OUTCOME_COMMITTED,
		       .gtid = "c1.1.7"};
	is_int(dtx_send_to(s_router, &peer, &o), 0, "the OUTCOME leaves the ROUTER");
	snprintf(what, sizeof(what), "the OUTCOME on the %s peer", kind);
	is_int(s_peer_recv(peer_sock, &r, what), 0, what);
	ok(r.type == DTX_T_OUTCOME && r.id == id && r.code == DTX_OUTCOME_COMMITTED,
	   "the %s peer's reply is its OUTCOME", kind);
	dtx_msg_clear(&r);
}

/* A message of two frames whose first is a QUERY with id: refused with
 * an ERROR that echoes the id. */
static void test_multi_frame(void *peer_sock, const char *kind, uint64_t id)
{
	char *buf, what[128];
	size_t len;
	dtx_msg_t q = {.type = DTX_T_QUERY,
		       .has = DTX_F_ID | DTX_F_GTID,
		       .id = id,
		       .gtid = "c1.1.7"},
		  m, r;
	dtx_peer_t peer;

	if (dtx_msg_encode(&q, &buf, &len) != 0)
		abort();
	ok(s_send_raw(peer_sock, buf, len, ZMQ_SNDMORE) == 0 &&
		   s_send_raw(peer_sock, "x", 1, 0) == 0,
	   "the %s peer sends a message of two frames", kind);
	free(buf);
	snprintf(what, sizeof(what), "the two-frame message of the %s peer", kind);
	if (!ok(s_router_wait(what), "%s", what))
		return;
	is_int(dtx_recv_from(s_router, &peer, &m, "client"), DTX_EPROTO,
	       "a message of two frames is refused");
	ok(peer.frames == 2 && m.type == DTX_T_NONE && !m.arena_,
	   "its frames are counted and nothing is decoded");
	snprintf(what, sizeof(what), "the ERROR on the %s peer", kind);
	is_int(s_peer_recv(peer_sock, &r, what), 0, what);
	ok(r.type == DTX_T_ERROR && r.code == DTX_EPROTO && (r.has & DTX_F_ID) && r.id == id,
	   "the %s peer hears ERROR EPROTO echoing id %llu", kind, (unsigned long long)id);
	ok(r.text && strstr(r.text, "2 frames"), "the ERROR says why (%s)", r.text ? r.text : "");
	dtx_msg_clear(&r);
}

/* Bytes that do not decode get an ERROR; the id is echoed when the
 * decoder could keep it. */
static void test_malformed(void)
{
	/* {"id": 5, "v": 1, "t": "BOGUS"} */
	static const unsigned char bogus[] = {0x83, 0xa2, 'i',  'd', 0x05, 0xa1, 'v', 0x01,
					      0xa1, 't',  0xa5, 'B', 'O',  'G',  'U', 'S'};
	static const unsigned char junk[] = {0xc1, 0x00};
	dtx_peer_t peer;
	dtx_msg_t m, r;

	ok(s_send_raw(s_dealer, junk, sizeof(junk), 0) == 0, "the DEALER sends junk");
	if (!ok(s_router_wait("the junk frame"), "the junk frame arrives"))
		return;
	ok(dtx_recv_from(s_router, &peer, &m, "client") < 0, "junk is refused");
	is_int(s_peer_recv(s_dealer, &r, "the ERROR for junk"), 0, "the ERROR for junk arrives");
	ok(r.type == DTX_T_ERROR && r.code == DTX_EPROTO && !(r.has & DTX_F_ID),
	   "junk gets ERROR EPROTO, without an id");
	dtx_msg_clear(&r);

	ok(s_send_raw(s_req, bogus, sizeof(bogus), 0) == 0, "the REQ peer sends an unknown type");
	if (!ok(s_router_wait("the unknown type"), "the unknown type arrives"))
		return;
	ok(dtx_recv_from(s_router, &peer, &m, "client") < 0 && peer.req,
	   "an unknown type from the REQ peer is refused");
	is_int(s_peer_recv(s_req, &r, "the ERROR for the unknown type"), 0,
	       "the REQ peer takes the ERROR for it");
	ok(r.type == DTX_T_ERROR && r.code == DTX_EPROTO && (r.has & DTX_F_ID) && r.id == 5,
	   "the ERROR echoes the id the decoder kept (5)");
	dtx_msg_clear(&r);
}

/* The connecting side refuses a message of several frames, and the
 * next message is read as itself, not as the tail of the refused one. */
static void test_recv_refuses_multi(void)
{
	dtx_msg_t ping = {.type = DTX_T_PING}, pong = {.type = DTX_T_PONG}, m, r;
	dtx_peer_t peer;
	char *buf, why[256];
	size_t len;

	is_int(dtx_send(s_dealer, &ping, 0), 0, "the DEALER sends PING");
	if (!ok(s_router_wait("the PING"), "the PING arrives"))
		return;
	is_int(dtx_recv_from(s_router, &peer, &m, "agent"), 1, "the ROUTER takes the PING");
	dtx_msg_clear(&m);
	if (dtx_msg_encode(&pong, &buf, &len) != 0)
		abort();
	ok(s_send_raw(s_router, peer.id, peer.n, ZMQ_SNDMORE) == 0 &&
		   s_send_raw(s_router, buf, len, ZMQ_SNDMORE) == 0 &&
		   s_send_raw(s_router, buf, len, 0) == 0,
	   "the ROUTER sends two PONG frames as one message");
	free(buf);
	int rc = dtx_recv(s_dealer, &r, 0, why, sizeof(why));
	is_int(rc, DTX_EPROTO, "dtx_recv refuses a message of two frames");
	ok(rc == DTX_EPROTO && strstr(why, "2 frames") && r.type == DTX_T_NONE, "and says why (%s)",
	   why);
	is_int(dtx_send_to(s_router, &peer, &pong), 0, "the ROUTER sends one PONG");
	is_int(s_peer_recv(s_dealer, &r, "the single PONG"), 0, "the single PONG is read");
	ok(r.type == DTX_T_PONG, "as a PONG");
	dtx_msg_clear(&r);
}

/* Nothing waiting, and a peer that is gone. */
static void test_nothing_and_gone(void)
{
	dtx_msg_t m;
	dtx_peer_t peer, gone = {.id = {0, 1, 2, 3, 4}, .n = 5};
	char why[256];

	is_int(dtx_recv_from(s_router, &peer, &m, "client"), 0,
	       "dtx_recv_from: 0 when nothing waits");
	is_int(dtx_recv(s_dealer, &m, ZMQ_DONTWAIT, why, sizeof(why)), DTX_ETIMEOUT,
	       "dtx_recv ZMQ_DONTWAIT: DTX_ETIMEOUT when nothing waits");
	is_int(dtx_recv_wait(s_dealer, &m, 20, why, sizeof(why)), DTX_ETIMEOUT,
	       "dtx_recv_wait: DTX_ETIMEOUT when nothing comes in time");
	dtx_msg_t pong = {.type = DTX_T_PONG};
	errno = 0;
	int rc = dtx_send_to(s_router, &gone, &pong);
	ok(rc == DTX_EIO && errno == EHOSTUNREACH,
	   "a send to a gone peer: DTX_EIO with errno EHOSTUNREACH (%d, %s)", rc, strerror(errno));
	dtx_msg_t bad = {.type = DTX_T_QUERY}; /* no id, no gtid: does not encode */
	errno = EHOSTUNREACH;
	rc = dtx_send_to(s_router, &gone, &bad);
	ok(rc == DTX_EINVAL && errno == EHOSTUNREACH,
	   "a message that does not encode: the encoder's DTX_EINVAL, errno untouched");
}

int main(void)
{
	s_setup();
	test_round_trip(s_dealer, "DEALER", 1, false);
	test_round_trip(s_req, "REQ", 2, true);
	test_multi_frame(s_dealer, "DEALER", 3);
	test_multi_frame(s_req, "REQ", 4);
	test_malformed();
	test_recv_refuses_multi();
	test_nothing_and_gone();
	zmq_close(s_req);
	zmq_close(s_dealer);
	zmq_close(s_router);
	zmq_ctx_term(s_ctx);
	return tap_done();
}
