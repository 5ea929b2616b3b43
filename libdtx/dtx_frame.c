/*
 * dtx_frame.c — dtx frames on ZeroMQ sockets: encode and send, receive and
 * decode, and the refusal of what does not decode. The only file of dtx
 * that sends or receives a dtx frame (see dtx_frame.h).
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dtx_frame.h"
#include "dtx_util.h"

static void s_why(char *why, size_t why_len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void s_why(char *why, size_t why_len, const char *fmt, ...)
{
	if (!why || !why_len)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, why_len, fmt, ap);
	va_end(ap);
}

/* Another frame of the message being read follows. */
static bool s_more(void *sock)
{
	int more = 0;
	size_t ml = sizeof(more);
	return zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &ml) == 0 && more;
}

/* Read and drop the rest of a message; how many frames that was. */
static uint32_t s_drain_rest(void *sock)
{
	zmq_msg_t extra;
	uint32_t n = 0;
	zmq_msg_init(&extra);
	while (s_more(sock) && zmq_msg_recv(&extra, sock, 0) >= 0)
		n++;
	zmq_msg_close(&extra);
	return n;
}

/* Send [id (ROUTER)][empty delimiter (REQ peer)][msg encoded]. On
 * DTX_EIO errno is what zmq said, whatever free() did since. */
static int s_send_encoded(void *sock, const void *id, size_t id_len, bool delim,
			  const dtx_msg_t *msg, int flags)
{
	char *buf;
	size_t len;
	int rc = dtx_msg_encode(msg, &buf, &len), err = 0;
	if (rc)
		return rc;
	/* Under ROUTER only the first frame can be refused (peer gone,
	 * queue full): once it is taken the rest of the message is too. */
	if ((id && zmq_send(sock, id, id_len, ZMQ_SNDMORE | flags) < 0) ||
	    (delim && zmq_send(sock, "", 0, ZMQ_SNDMORE | flags) < 0) ||
	    zmq_send(sock, buf, len, flags) < 0) {
		err = errno;
		rc = DTX_EIO;
	}
	free(buf);
	if (rc)
		errno = err;
	return rc;
}

int dtx_send(void *sock, const dtx_msg_t *msg, int flags)
{
	return s_send_encoded(sock, NULL, 0, false, msg, flags);
}

int dtx_send_to(void *sock, const dtx_peer_t *peer, const dtx_msg_t *msg)
{
	return s_send_encoded(sock, peer->id, peer->n, peer->req, msg, ZMQ_DONTWAIT);
}

int dtx_send_error_to(void *sock, const dtx_peer_t *peer, const dtx_msg_t *req, int code,
		      const char *text)
{
	dtx_msg_t m = {.type = DTX_T_ERROR,
		       .has = DTX_F_CODE | DTX_F_TEXT,
		       .code = code,
		       .text = text};
	if (req && (req->has & DTX_F_ID)) {
		m.id = req->id;
		m.has |= DTX_F_ID;
	}
	return dtx_send_to(sock, peer, &m);
}

bool dtx_recv_routed(void *sock, dtx_peer_t *peer, zmq_msg_t *body)
{
	int n = zmq_recv(sock, peer->id, sizeof(peer->id), ZMQ_DONTWAIT);
	if (n < 0)
		return false;
	peer->n = (size_t)n > sizeof(peer->id) ? sizeof(peer->id) : (size_t)n;
	peer->req = false;
	peer->frames = 0;
	peer->has_msg_id = false;
	peer->msg_id = 0;
	peer->user[0] = '\0';
	if (!s_more(sock))
		return false; /* a routing id alone: ROUTER never hands one up */
	zmq_msg_init(body);
	if (zmq_msg_recv(body, sock, 0) < 0)
		goto fail;
	/* REQ puts an empty delimiter before its message; a DEALER's
	 * message is never empty (it would not decode), so an empty first
	 * frame with more behind it is a REQ peer's. */
	if (zmq_msg_size(body) == 0 && s_more(sock)) {
		peer->req = true;
		if (zmq_msg_recv(body, sock, 0) < 0)
			goto fail;
	}
	peer->frames = 1;
	/* Who the connection proved to be: the ZAP handler's User-Id,
	 * attached by libzmq to every frame of the connection. */
	const char *user = zmq_msg_gets(body, "User-Id");
	snprintf(peer->user, sizeof(peer->user), "%s", user ? user : "");
	if (s_more(sock)) {
		/* One frame per message. The first frame's id, if it has one,
		 * is kept so that the refusal can name the request refused. */
		dtx_msg_t m;
		dtx_msg_decode(zmq_msg_data(body), zmq_msg_size(body), &m, NULL, 0);
		peer->has_msg_id = (m.has & DTX_F_ID) != 0;
		peer->msg_id = m.id;
		dtx_msg_clear(&m);
		peer->frames += s_drain_rest(sock);
		zmq_msg_close(body);
		zmq_msg_init(body); /* empty: no decoder takes it */
	}
	return true;
fail:
	zmq_msg_close(body);
	return false;
}

int dtx_decode_or_refuse(void *sock, const dtx_peer_t *peer, const void *data, size_t len,
			 dtx_msg_t *msg, const char *what)
{
	char why[256];
	dtx_msg_t req = {0};
	int rc;

	if (peer->frames > 1) {
		memset(msg, 0, sizeof(*msg));
		snprintf(why, sizeof(why), "a message of %" PRIu32 " frames: one frame per message",
			 peer->frames);
		rc = DTX_EPROTO;
		if (peer->has_msg_id) {
			req.id = peer->msg_id;
			req.has = DTX_F_ID;
		}
	} else {
		if (!(rc = dtx_msg_decode(data, len, msg, why, sizeof(why))))
			return 0;
		/* What the decoder kept: the id, for the refusal to echo. */
		req.id = msg->id;
		req.has = msg->has & DTX_F_ID;
	}
	/* A peer can send these as fast as it likes: ten at once, then two a
	 * second, with the count of those left out (every one is still
	 * answered). One limit for all sockets: they share the log. */
	static dtx_ratelimit_t rl = DTX_RATELIMIT_INIT(10, 2);
	dtx_log_rl(&rl, DTX_LOG_WARNING, "%s frame refused: %s", what, why);
	dtx_send_error_to(sock, peer, &req, rc, why);
	dtx_msg_clear(msg);
	return rc;
}

int dtx_recv_from(void *sock, dtx_peer_t *peer, dtx_msg_t *msg, const char *what)
{
	zmq_msg_t body;
	memset(msg, 0, sizeof(*msg));
	if (!dtx_recv_routed(sock, peer, &body))
		return 0;
	int rc = dtx_decode_or_refuse(sock, peer, zmq_msg_data(&body), zmq_msg_size(&body), msg,
				      what);
	zmq_msg_close(&body);
	return rc ? rc : 1;
}

int dtx_recv_frame(void *sock, zmq_msg_t *frame, int flags, char *why, size_t why_len)
{
	zmq_msg_init(frame);
	if (zmq_msg_recv(frame, sock, flags) < 0) {
		int err = errno;
		zmq_msg_close(frame);
		errno = err;
		if (err == EAGAIN) {
			s_why(why, why_len, "nothing received");
			return DTX_ETIMEOUT;
		}
		s_why(why, why_len, "cannot receive: %s", zmq_strerror(err));
		return DTX_EIO;
	}
	if (s_more(sock)) {
		uint32_t n = 1 + s_drain_rest(sock);
		zmq_msg_close(frame);
		s_why(why, why_len, "a message of %" PRIu32 " frames: one frame per message", n);
		return DTX_EPROTO;
	}
	return 0;
}

int dtx_recv(void *sock, dtx_msg_t *msg, int flags, char *why, size_t why_len)
{
	zmq_msg_t frame;
	memset(msg, 0, sizeof(*msg));
	int rc = dtx_recv_frame(sock, &frame, flags, why, why_len);
	if (rc)
		return rc;
	rc = dtx_msg_decode(zmq_msg_data(&frame), zmq_msg_size(&frame), msg, why, why_len);
	zmq_msg_close(&frame);
	if (rc)
		dtx_msg_clear(msg); /* the kept id too: nobody here answers */
	return rc;
}

int dtx_recv_wait(void *sock, dtx_msg_t *msg, long timeout_ms, char *why, size_t why_len)
{
	zmq_pollitem_t item = {.socket = sock, .events = ZMQ_POLLIN};
	memset(msg, 0, sizeof(*msg));
	int n = zmq_poll(&item, 1, timeout_ms < 0 ? -1 : timeout_ms);
	if (n < 0) {
		int err = errno;
		s_why(why, why_len, "cannot poll: %s", zmq_strerror(err));
		errno = err;
		return DTX_EIO;
	}
	if (!(item.revents & ZMQ_POLLIN)) {
		s_why(why, why_len, "nothing received within %ld ms", timeout_ms);
		return DTX_ETIMEOUT;
	}
	return dtx_recv(sock, msg, ZMQ_DONTWAIT, why, why_len);
}
