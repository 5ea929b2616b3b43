/*
 * dtx_frame.h — dtx frames on ZeroMQ sockets: the one send and the one
 * receive every dtx program uses. Internal: not installed.
 *
 * A dtx message is one ZeroMQ frame holding one encoded dtx_msg_t
 * (dtx_wire.h). A ROUTER socket (the coordinator's endpoints) sees each
 * message behind its peer's routing id, and, from a REQ peer, the empty
 * delimiter frame REQ puts first; a reply to a REQ peer must carry it
 * back, or the REQ socket never takes the reply. dtx_recv_routed()
 * notes which kind of peer it read from, dtx_send_to() answers in kind.
 *
 * A message of more than one body frame is never a dtx message: it is
 * read whole (so that its tail is not taken for the next message) and
 * refused.
 *
 * Return values: 0 or a negative DTX_E... code. Where zmq refused a send
 * or a receive the code is DTX_EIO and errno is as zmq left it; nothing
 * here logs except dtx_decode_or_refuse(), whose job it is.
 */
#ifndef DTX_FRAME_H
#define DTX_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

#include "dtx_wire.h"

/*
 * A peer of a ROUTER socket, as dtx_recv_routed() read it. Plain data:
 * copy it to answer later (the routing id stays valid as long as the
 * peer's connection). Two peers are the same connection when n and the
 * first n bytes of id are.
 */
typedef struct {
	uint8_t id[256];   /* ROUTER routing id */
	size_t n;
	bool req;          /* the peer is a REQ socket: replies carry the empty delimiter frame */
	char user[96];     /* who its connection proved to be: the ZAP handler's User-Id
			* ("" without one); never anything the peer sent */
	/* Of the message last read, for dtx_decode_or_refuse(): */
	uint32_t frames;   /* its body frames (more than 1: refused) */
	bool has_msg_id;   /* its first frame held an "id" to echo ... */
	uint64_t msg_id;   /* ... this one */
} dtx_peer_t;

/*
 * Encode msg, send it as one frame on sock (DEALER, REQ, PUB...), free the
 * encoding. flags: ZMQ_DONTWAIT or 0. 0; DTX_EIO: zmq did not take the
 * frame (errno as zmq set it: EAGAIN under ZMQ_DONTWAIT when the queue is
 * full or nobody is connected, EFSM on a REQ socket that owes a receive);
 * or the encoder's DTX_EINVAL or DTX_ENOMEM, errno untouched.
 */
int dtx_send(void *sock, const dtx_msg_t *msg, int flags);

/*
 * ROUTER: send the routing id, the empty delimiter when peer->req, then
 * the frame; never blocks (ZMQ_DONTWAIT). 0; DTX_EIO with errno as zmq
 * left it (EHOSTUNREACH under ZMQ_ROUTER_MANDATORY: the peer is gone;
 * EAGAIN: its queue is full); or the encoder's DTX_EINVAL or DTX_ENOMEM,
 * errno untouched.
 */
int dtx_send_to(void *sock, const dtx_peer_t *peer, const dtx_msg_t *msg);

/*
 * Send ERROR {code, text} to peer, echoing req's id when req is not NULL
 * and has one (DTX_F_ID). As dtx_send_to().
 */
int dtx_send_error_to(void *sock, const dtx_peer_t *peer, const dtx_msg_t *req, int code,
		      const char *text);

/*
 * Receive one message from a ROUTER socket without blocking: *peer and
 * the body. true: one was read, and the caller closes body with
 * zmq_msg_close(). false: nothing waiting (or zmq failed: errno); body
 * is not initialised and wants no close.
 *
 * A REQ peer is recognised by its empty delimiter frame (peer->req =
 * true). A message of more than one body frame: the rest is drained,
 * body is made empty (so that any decoding refuses it) and
 * peer->frames says how many there were, for dtx_decode_or_refuse() to
 * refuse it for what it is, echoing the first frame's id.
 */
bool dtx_recv_routed(void *sock, dtx_peer_t *peer, zmq_msg_t *body);

/*
 * Decode data, a message read from peer on sock (a ROUTER); what names
 * the endpoint for the log ("client", "agent"). On failure log a warning
 * "<what> frame refused: <why>" and answer the peer with ERROR {code,
 * why}, echoing the request id if the decoder kept one (or, for a
 * message of several frames, if its first frame held one). 0 and *msg
 * filled (caller clears it), or the decode error (DTX_EPROTO,
 * DTX_EVERSION, DTX_ETOOBIG) with *msg cleared.
 */
int dtx_decode_or_refuse(void *sock, const dtx_peer_t *peer, const void *data, size_t len,
			 dtx_msg_t *msg, const char *what);

/*
 * dtx_recv_routed() + dtx_decode_or_refuse(). 1: *msg decoded (caller
 * clears it); 0: nothing waiting; < 0: a message was read and refused
 * (already answered and logged), the decode error.
 */
int dtx_recv_from(void *sock, dtx_peer_t *peer, dtx_msg_t *msg, const char *what);

/*
 * DEALER, REQ or SUB side: receive one message (flags as zmq_msg_recv:
 * 0 or ZMQ_DONTWAIT) and check it is one frame. 0: *frame holds it
 * (caller closes it with zmq_msg_close()). On error *frame is not
 * initialised and why (if not NULL) says what happened:
 * DTX_ETIMEOUT: nothing came (EAGAIN: ZMQ_DONTWAIT with nothing waiting,
 * or ZMQ_RCVTIMEO ran out); DTX_EIO: zmq failed (errno: EINTR, ETERM...);
 * DTX_EPROTO: a message of several frames, read whole and dropped.
 * For a caller that needs the raw bytes (to hold a frame back, say);
 * dtx_recv() decodes too.
 */
int dtx_recv_frame(void *sock, zmq_msg_t *frame, int flags, char *why, size_t why_len);

/*
 * dtx_recv_frame(), then decode. 0: *msg filled (caller clears it);
 * otherwise dtx_recv_frame()'s errors or the decode error, *msg cleared
 * and why filled.
 */
int dtx_recv(void *sock, dtx_msg_t *msg, int flags, char *why, size_t why_len);

/*
 * Wait up to timeout_ms (< 0: forever) for a message on sock with
 * zmq_poll(), then dtx_recv() it. As dtx_recv(); DTX_ETIMEOUT when
 * nothing came in time, DTX_EIO when the poll failed (errno: EINTR...).
 */
int dtx_recv_wait(void *sock, dtx_msg_t *msg, long timeout_ms, char *why, size_t why_len);

#endif /* DTX_FRAME_H */
