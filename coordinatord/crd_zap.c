/*
 * crd_zap.c — who a connection is: the ZAP handler (ZeroMQ's
 * authentication protocol, RFC 27) every coordinator socket asks before
 * its peer may send anything.
 *
 * libzmq asks it for each new connection of a socket with a ZAP domain
 * (all of ours: "client", "agent", "admin", "events") and attaches the
 * User-Id it answers to every frame of that connection; dtx_recv_routed()
 * hands it up as dtx_peer_t.user, and the handlers trust nothing else
 * about who sent a frame. It is bound before any socket, so no connection
 * is ever accepted without it (without a handler libzmq lets every peer
 * in, CURVE key or not).
 *
 *   domain  mechanism  who                           User-Id
 *   client  CURVE      a [client NAME] key           client:NAME
 *   client  NULL/ipc   a [client NAME] user's uid    client:NAME
 *   client  NULL/tcp   anyone, with insecure = true  client:*
 *   agent   CURVE      an [agent NAME] key           agent:NAME
 *   agent   NULL/ipc   anyone who can reach the socket  local:UID
 *   agent   NULL/tcp   anyone, with insecure = true  insecure:ADDRESS
 *   admin,  NULL/ipc   anyone who can reach the socket  uid:UID
 *   events
 *
 * Everything else is refused (status 400; 300, for the moment, beyond
 * max_connections), and the refusal logged: each new reason, and the
 * same one again at most once a second. ipc:// peers are known by the credentials the
 * kernel gives for a Unix socket (SO_PEERCRED: libzmq appends
 * ":UID:GID:PID" to an ipc:// peer's address).
 *
 * The handler answers from the loop (crd.c polls its socket first), so
 * it reads the configuration in use without locks, and a reload's keys
 * and policies apply to the next connection.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "crd_int.h"
#include "dtx_curve.h"

#define ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define ZAP_WATCHED 4 /* client, agent, admin, events */
#define ZAP_FRAMES 7 /* version, request id, domain, address, identity, mechanism, credentials */

/*
 * Connections per endpoint, for max_connections: a socket monitor tells
 * of each accepted connection and each one gone, and the handler refuses
 * a handshake while its endpoint has more than max_connections (counting
 * the one asking). A connection that never finishes its handshake holds
 * its descriptor for handshake_timeout_ms at most.
 */
int crd_zap_watch(crd_t *self, void *sock, const char *domain, char *why, size_t why_len)
{
	char ep[64];
	unsigned i = self->nwatched;
	if (i == ZAP_WATCHED)
		return DTX_EINVAL;
	snprintf(ep, sizeof(ep), "inproc://crd.monitor.%s", domain);
	/* The monitor's queue must never fill: libzmq's I/O thread, which
	 * reports each accepted connection, would wait for room, and with it
	 * every connection of the coordinator. Unbounded here (0), and read
	 * every round of the loop (crd_zap_tick). */
	int unbounded = 0;
	if (zmq_socket_monitor(sock, ep, ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED) != 0 ||
	    !(self->watched[i].mon = zmq_socket(self->ctx, ZMQ_PAIR)) ||
	    zmq_setsockopt(self->watched[i].mon, ZMQ_RCVHWM, &unbounded, sizeof(unbounded)) != 0 ||
	    zmq_connect(self->watched[i].mon, ep) != 0) {
		snprintf(why, why_len, "cannot watch the %s endpoint's connections: %s", domain,
			 zmq_strerror(errno));
		if (self->watched[i].mon)
			zmq_close(self->watched[i].mon);
		self->watched[i].mon = NULL;
		return DTX_EIO;
	}
	snprintf(self->watched[i].domain, sizeof(self->watched[i].domain), "%s", domain);
	self->watched[i].conns = 0;
	self->nwatched++;
	return 0;
}

/* Read what the monitors said since last time. */
static void s_count_connections(crd_t *self)
{
	for (unsigned i = 0; i < self->nwatched; i++) {
		zmq_msg_t ev, addr;
		zmq_msg_init(&ev);
		while (zmq_msg_recv(&ev, self->watched[i].mon, ZMQ_DONTWAIT) >= 0) {
			uint16_t event = 0;
			if (zmq_msg_size(&ev) >= 2)
				memcpy(&event, zmq_msg_data(&ev), sizeof(event));
			if (zmq_msg_more(&ev)) { /* the endpoint's address */
				zmq_msg_init(&addr);
				zmq_msg_recv(&addr, self->watched[i].mon, 0);
				zmq_msg_close(&addr);
			}
			if (event == ZMQ_EVENT_ACCEPTED)
				self->watched[i].conns++;
			else if (event == ZMQ_EVENT_DISCONNECTED && self->watched[i].conns)
				self->watched[i].conns--;
		}
		zmq_msg_close(&ev);
	}
}

void crd_zap_tick(crd_t *self)
{
	s_count_connections(self);
}

unsigned crd_zap_connections(crd_t *self, const char *domain)
{
	s_count_connections(self);
	for (unsigned i = 0; i < self->nwatched; i++)
		if (strcmp(self->watched[i].domain, domain) == 0)
			return self->watched[i].conns;
	return 0;
}

int crd_zap_open(crd_t *self, char *why, size_t why_len)
{
	int zero = 0;
	if (!(self->zap = zmq_socket(self->ctx, ZMQ_REP)) ||
	    zmq_setsockopt(self->zap, ZMQ_LINGER, &zero, sizeof(zero)) != 0 ||
	    zmq_bind(self->zap, ZAP_ENDPOINT) != 0) {
		snprintf(why, why_len, "cannot start the authentication handler: %s",
			 zmq_strerror(errno));
		return DTX_EIO;
	}
	return 0;
}

/* The uid libzmq found for an ipc:// peer: its address ends ":UID:GID:PID". */
static long s_ipc_uid(const char *address)
{
	const char *p[3];
	const char *end = address + strlen(address);
	for (int i = 0; i < 3; i++) {
		while (end > address && end[-1] != ':')
			end--;
		if (end == address)
			return -1;
		p[i] = end;
		end--;
	}
	char *stop;
	long uid = strtol(p[2], &stop, 10);
	return stop != p[2] && *stop == ':' && uid >= 0 ? uid : -1;
}

/* Refusals: each new reason (it names the key or uid) logged, the same
 * one again at most once a second, saying how many were not. */
static void s_refused(const char *domain, const char *address, const char *why)
{
	static struct {
		char why[160];
		int64_t last_ms;
		unsigned quiet;
	} seen[16];
	static unsigned next;
	int64_t now = dtx_now_ms();
	unsigned i = 0;
	while (i < 16 && strcmp(seen[i].why, why) != 0)
		i++;
	if (i == 16) {
		i = next;
		next = (next + 1) % 16;
		snprintf(seen[i].why, sizeof(seen[i].why), "%s", why);
		seen[i].last_ms = 0;
		seen[i].quiet = 0;
	}
	if (seen[i].last_ms && now - seen[i].last_ms < 1000) {
		seen[i].quiet++;
		return;
	}
	if (seen[i].quiet)
		dtx_warn("%s connection refused from %s: %s (and %u times more since the last "
			 "such line)",
			 domain, address[0] ? address : "?", why, seen[i].quiet);
	else
		dtx_warn("%s connection refused from %s: %s", domain, address[0] ? address : "?",
			 why);
	seen[i].last_ms = now;
	seen[i].quiet = 0;
}

/* Decide one request: a User-Id in user, or a refusal (false, why). */
static bool s_decide(crd_t *self, const char *domain, const char *address, bool ipc,
		     const char *mechanism, const uint8_t *cred, size_t cred_len, char *user,
		     size_t user_len, char *why, size_t why_len)
{
	const crd_config_t *cfg = &self->cfg;
	bool curve = strcmp(mechanism, "CURVE") == 0;
	bool null = strcmp(mechanism, "NULL") == 0;
	char key[DTX_Z85_KEY_LEN + 1] = "";
	long uid = ipc ? s_ipc_uid(address) : -1;

	if (curve) {
		if (cred_len != 32 || !zmq_z85_encode(key, cred, 32)) {
			snprintf(why, why_len, "a CURVE key that is not 32 bytes");
			return false;
		}
	} else if (!null) {
		snprintf(why, why_len, "mechanism %s is not served", mechanism);
		return false;
	}
	if (null && !ipc && !cfg->insecure) {
		snprintf(why, why_len, "no CURVE key: a tcp:// endpoint takes CURVE only");
		return false;
	}
	if (null && ipc && uid < 0) {
		snprintf(why, why_len, "no peer credentials on an ipc:// connection");
		return false;
	}
	if (strcmp(domain, "client") == 0) {
		if (null && !ipc) {
			snprintf(user, user_len, "client:*");
			return true;
		}
		const crd_client_policy_t *c = crd_config_client_of(cfg, curve ? key : NULL, uid);
		if (!c) {
			if (curve)
				snprintf(why, why_len, "key %s is no [client]'s", key);
			else
				snprintf(why, why_len, "uid %ld is no [client]'s user", uid);
			return false;
		}
		snprintf(user, user_len, "client:%s", c->name);
		return true;
	}
	if (strcmp(domain, "agent") == 0) {
		if (curve) {
			const char *name = crd_config_agent_of(cfg, key);
			if (!name) {
				snprintf(why, why_len, "key %s is no [agent]'s", key);
				return false;
			}
			snprintf(user, user_len, "agent:%s", name);
		} else if (ipc) {
			snprintf(user, user_len, "local:%ld", uid);
		} else {
			snprintf(user, user_len, "insecure:%s", address);
		}
		return true;
	}
	if ((strcmp(domain, "admin") == 0 || strcmp(domain, "events") == 0) && null && ipc) {
		snprintf(user, user_len, "uid:%ld", uid);
		return true;
	}
	snprintf(why, why_len, "domain '%s' takes no %s peer", domain, mechanism);
	return false;
}

/* Which of our sockets a domain is, for the kind of its endpoint. */
static const char *s_endpoint_of(const crd_t *self, const char *domain)
{
	if (strcmp(domain, "client") == 0)
		return self->cfg.client_endpoint;
	if (strcmp(domain, "agent") == 0)
		return self->cfg.agent_endpoint;
	if (strcmp(domain, "admin") == 0)
		return self->cfg.admin_endpoint;
	if (strcmp(domain, "events") == 0)
		return self->cfg.events_endpoint;
	return "";
}

static void s_str(const zmq_msg_t *m, char *buf, size_t len)
{
	size_t n = zmq_msg_size(m) < len - 1 ? zmq_msg_size(m) : len - 1;
	memcpy(buf, zmq_msg_data((zmq_msg_t *)m), n);
	buf[n] = '\0';
}

/* Read one request and answer it. false: nothing was waiting. */
static bool s_serve_one(crd_t *self)
{
	zmq_msg_t f[ZAP_FRAMES + 1];
	int n = 0;
	bool more = true;
	char version[8], domain[64], address[160], mechanism[16], user[96] = "", why[160] = "";

	while (more) {
		zmq_msg_t *m = &f[n < ZAP_FRAMES ? n : ZAP_FRAMES];
		zmq_msg_init(m);
		int rc;
		while ((rc = zmq_msg_recv(m, self->zap, n == 0 ? ZMQ_DONTWAIT : 0)) < 0 &&
		       errno == EINTR && n > 0)
			; /* the rest of a message is there: only a signal stops it */
		if (rc < 0) {
			zmq_msg_close(m);
			if (n == 0)
				return false;
			break;
		}
		more = zmq_msg_more(m);
		if (n >= ZAP_FRAMES) /* a second CURVE... frame: not ours to read */
			zmq_msg_close(m);
		else
			n++;
	}
	if (n < ZAP_FRAMES - 1) {
		/* not a ZAP request: a REP socket must still answer something */
		for (int i = 0; i < n; i++)
			zmq_msg_close(&f[i]);
		zmq_send(self->zap, "", 0, 0);
		return true;
	}
	s_str(&f[0], version, sizeof(version));
	s_str(&f[2], domain, sizeof(domain));
	s_str(&f[3], address, sizeof(address));
	s_str(&f[5], mechanism, sizeof(mechanism));
	bool ipc = strncmp(s_endpoint_of(self, domain), "ipc://", 6) == 0;
	unsigned conns = crd_zap_connections(self, domain);
	bool full = conns > self->cfg.max_connections;
	if (full)
		snprintf(why, sizeof(why), "%u connections, more than max_connections", conns);
	bool ok = !why[0] && strcmp(version, "1.0") == 0 &&
		  s_decide(self, domain, address, ipc, mechanism,
			   n > 6 ? zmq_msg_data(&f[6]) : NULL, n > 6 ? zmq_msg_size(&f[6]) : 0,
			   user, sizeof(user), why, sizeof(why));
	if (!ok && !why[0])
		snprintf(why, sizeof(why), "ZAP version %s", version);
	if (ok)
		dtx_debug("%s connection from %s: %s", domain, address, user);
	else
		s_refused(domain, address, why);
	zmq_send(self->zap, "1.0", 3, ZMQ_SNDMORE);
	zmq_send(self->zap, zmq_msg_data(&f[1]), zmq_msg_size(&f[1]), ZMQ_SNDMORE);
	/* 300: for the moment (RFC 27's temporary error); 400: refused */
	zmq_send(self->zap, ok ? "200" : full ? "300" : "400", 3, ZMQ_SNDMORE);
	zmq_send(self->zap, ok ? "OK" : why, strlen(ok ? "OK" : why), ZMQ_SNDMORE);
	zmq_send(self->zap, user, strlen(user), ZMQ_SNDMORE);
	zmq_send(self->zap, "", 0, 0);
	for (int i = 0; i < n; i++)
		zmq_msg_close(&f[i]);
	return true;
}

void crd_zap_serve(crd_t *self, int budget)
{
	while (budget-- > 0 && s_serve_one(self))
		;
}

void crd_zap_close(crd_t *self)
{
	for (unsigned i = 0; i < self->nwatched; i++)
		zmq_close(self->watched[i].mon);
	self->nwatched = 0;
	if (self->zap)
		zmq_close(self->zap);
	self->zap = NULL;
}
