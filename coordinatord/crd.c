/*
 * crd.c — the coordinator's loop, its start and its stop.
 *
 * One thread, zmq_poll over three ROUTER sockets — clients, agents (which
 * connect out and say HELLO with their name), admin (ipc://, 0600) — the
 * log writer's eventfd, the XPUB event stream and the metrics server's
 * descriptor, with a 20 ms tick for timeouts, phase-two resends and
 * liveness. Each round first releases what the disk made durable, then
 * reads the sockets, then starts the next group commit if one is due.
 * SIGTERM drains, SIGHUP reloads: both act from the loop, the handlers
 * only set flags.
 *
 * What each message does is elsewhere (crd_int.h lists the modules).
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <zmq.h>

#include "crd_int.h"
#include "dtx_curve.h"

#define PRUNE_EVERY_MS 1000

typedef void (*s_handler_fn)(crd_t *, const dtx_peer_t *, const void *, size_t);

/* A round of the loop reads one socket for at most this long, so that
 * a peer sending costly frames cannot starve the others, the log's
 * releases or the timers. */
#define ROUND_BUDGET_US 10000

/* At most budget messages of sock, each to fn, for ROUND_BUDGET_US at most. */
static void s_drain(crd_t *self, void *sock, s_handler_fn fn, int budget)
{
	dtx_peer_t peer;
	zmq_msg_t body;
	int64_t until = dtx_now_us() + ROUND_BUDGET_US;
	while (budget-- > 0 && dtx_recv_routed(sock, &peer, &body)) {
		fn(self, &peer, zmq_msg_data(&body), zmq_msg_size(&body));
		zmq_msg_close(&body);
		if (dtx_now_us() > until)
			break;
	}
}

/* Draining after SIGTERM: whether the loop may end now. It may once
 * nothing is in flight and the log holds everything, or once the bound has
 * passed: what is left then is in the log, and recovery finishes it. */
static bool s_drained(crd_t *self, int64_t now)
{
	if (!self->drain_since_ms) {
		self->drain_since_ms = now;
		sd_notify(0, "STOPPING=1");
		dtx_notice("shutting down: refusing new transactions, finishing %zu in flight "
			   "(at most %" PRIu32 " ms)",
			   self->ntx, self->cfg.shutdown_timeout_ms);
	}
	if (self->ntx == 0 && self->nsagas == 0 && !wal_pending(self->wal) &&
	    !wal_flush_busy(self->wal)) {
		dtx_notice("shut down: nothing left in flight after %" PRId64 " ms",
			   now - self->drain_since_ms);
		return true;
	}
	if (now - self->drain_since_ms < (int64_t)self->cfg.shutdown_timeout_ms)
		return false;
	unsigned undecided = 0, decided = 0;
	for (crd_tx_t *tx = self->head; tx; tx = tx->next) {
		int kind = crd_txstate_kind(tx->state);
		if (kind == WAL_COMMITTING || kind == WAL_ABORTING)
			decided++;
		else
			undecided++;
	}
	dtx_warn("shutdown bound of %" PRIu32 " ms reached: %u decided transactions still "
		 "unacknowledged, %u undecided and %zu sagas are left to recovery",
		 self->cfg.shutdown_timeout_ms, decided, undecided, self->nsagas);
	return true;
}

/* How long the next poll may wait: a tick, or less when lazy records
 * are due for their group commit sooner. */
static long s_poll_timeout(crd_t *self, int64_t now)
{
	long timeout = CRD_TICK_MS;
	if (wal_pending(self->wal) && !self->log_failing && !wal_flush_busy(self->wal)) {
		long due = (long)(self->first_lazy_ms + self->cfg.lazy_flush_ms - now);
		timeout = due < 0 ? 0 : (due < timeout ? due : timeout);
	}
	return timeout;
}

/* What the clock asks for, after the sockets are read. */
static void s_timers(crd_t *self, int64_t now)
{
	if (now - self->last_tick_ms >= CRD_TICK_MS) {
		self->last_tick_ms = now;
		crd_tick(self, now);
		crd_saga_tick(self, now);
		if (self->http)
			crd_http_run(self->http); /* its idle timeouts */
	}
	if (self->watchdog_ms && now - self->last_watchdog_ms >= self->watchdog_ms) {
		self->last_watchdog_ms = now;
		sd_notify(0, "WATCHDOG=1");
	}
	/* Group commit: at once for a forced record, else when the oldest
	 * lazy record has waited lazy_flush_ms; in the background, one batch
	 * at a time. */
	if (wal_forced_pending(self->wal) || wal_prune_pending(self->wal) ||
	    (wal_pending(self->wal) &&
	     now - self->first_lazy_ms >= (int64_t)self->cfg.lazy_flush_ms))
		crd_flush_begin(self);
	/* Retention: the log writer prunes, a bounded number in each group
	 * commit (a commit of its own when no record is queued), so the loop
	 * never waits on it and no decision waits long. */
	if (self->cfg.retention_s && now - self->last_prune_ms >= PRUNE_EVERY_MS) {
		self->last_prune_ms = now;
		wal_prune_later(self->wal,
				dtx_wall_us() - (int64_t)self->cfg.retention_s * 1000000);
	}
}

int crd_run(crd_t *self)
{
	uint64_t wd_us = 0;
	/* Under systemd with WatchdogSec=: ping at half the interval, from the
	 * loop itself, so that a loop that hangs stops the pings. */
	if (sd_watchdog_enabled(0, &wd_us) > 0 && wd_us >= 2000)
		self->watchdog_ms = (int64_t)(wd_us / 2000);
	while (!self->stop) {
		zmq_pollitem_t items[7] = {
			{.socket = self->client, .events = ZMQ_POLLIN},
			{.socket = self->agent, .events = ZMQ_POLLIN},
			{.socket = self->admin, .events = ZMQ_POLLIN},
			{.fd = wal_flush_fd(self->wal), .events = ZMQ_POLLIN},
			{.socket = self->events, .events = ZMQ_POLLIN},
			{.socket = self->zap, .events = ZMQ_POLLIN},
			{.fd = self->http ? crd_http_fd(self->http) : -1, .events = ZMQ_POLLIN},
		};
		if (zmq_poll(items, self->http ? 7 : 6, s_poll_timeout(self, dtx_now_ms())) < 0 &&
		    errno != EINTR) {
			dtx_err("zmq_poll: %s", zmq_strerror(errno));
			return DTX_EIO;
		}
		/* First the decisions the disk has made durable: they go out. */
		if ((items[3].revents & ZMQ_POLLIN) && crd_flush_end(self))
			return DTX_EIO;
		/* New connections wait for the authentication handler. */
		crd_zap_tick(self);
		if (items[5].revents & ZMQ_POLLIN)
			crd_zap_serve(self, 100);
		if (items[1].revents & ZMQ_POLLIN)
			s_drain(self, self->agent, crd_on_agent, 1000);
		if (items[0].revents & ZMQ_POLLIN)
			s_drain(self, self->client, crd_on_client, 1000);
		if (items[2].revents & ZMQ_POLLIN)
			s_drain(self, self->admin, crd_on_admin, 100);
		if (items[4].revents & ZMQ_POLLIN)
			crd_on_subscription(self);
		if (items[6].revents & ZMQ_POLLIN)
			crd_http_run(self->http);
		int64_t now = dtx_now_ms();
		if (self->draining && s_drained(self, now))
			break;
		if (self->reload) {
			self->reload = 0;
			crd_do_reload(self);
		}
		s_timers(self, now);
	}
	return self->io_failed ? DTX_EIO : 0;
}

void crd_stop(crd_t *self)
{
	if (self->draining)
		self->stop = 1;
	self->draining = 1;
}

void crd_reload(crd_t *self)
{
	self->reload = 1;
}

/* --- set-up ----------------------------------------------------------- */

/* Bind s to endpoint, an ipc:// one with mode 0600; closes s on failure. */
static void *s_bind_socket(void *s, const char *endpoint, char *why, size_t why_len)
{
	mode_t old = 0;
	bool ipc = strncmp(endpoint, "ipc://", 6) == 0;

	if (ipc)
		old = umask(0077);
	int rc = zmq_bind(s, endpoint);
	if (ipc)
		umask(old);
	if (rc != 0) {
		snprintf(why, why_len, "cannot bind %s: %s", endpoint, zmq_strerror(errno));
		zmq_close(s);
		return NULL;
	}
	return s;
}

/*
 * What every socket of ours has: a ZAP domain, so that the handler
 * (crd_zap.c) is asked about every connection, ipc:// ones too; on a
 * remote endpoint CURVE with the coordinator's key (or, with insecure =
 * true, nothing); a bound on the handshake, and ZMTP heartbeats that
 * close a connection whose peer stopped answering.
 */
static bool s_secure(crd_t *self, void *s, const char *domain, const char *endpoint, char *why,
		     size_t why_len)
{
	int hs = (int)self->cfg.handshake_timeout_ms, ivl = 10000, ttl = 30000;
	if (zmq_setsockopt(s, ZMQ_ZAP_DOMAIN, domain, strlen(domain)) != 0) {
		snprintf(why, why_len, "ZMQ_ZAP_DOMAIN: %s", zmq_strerror(errno));
		return false;
	}
	if (crd_zap_watch(self, s, domain, why, why_len))
		return false;
	zmq_setsockopt(s, ZMQ_HANDSHAKE_IVL, &hs, sizeof(hs));
	zmq_setsockopt(s, ZMQ_HEARTBEAT_IVL, &ivl, sizeof(ivl));
	zmq_setsockopt(s, ZMQ_HEARTBEAT_TIMEOUT, &ttl, sizeof(ttl));
	if (!dtx_endpoint_remote(endpoint) || !self->cfg.secret_key[0])
		return true; /* crd_config_load refused a remote one without insecure */
	char inner[1200];
	if (dtx_curve_server(s, self->cfg.secret_key, inner, sizeof(inner))) {
		snprintf(why, why_len, "secret_key %s", inner);
		return false;
	}
	return true;
}

static void *s_bind(crd_t *self, const char *domain, const char *endpoint, char *why,
		    size_t why_len)
{
	void *s = zmq_socket(self->ctx, ZMQ_ROUTER);
	int one = 1, zero = 0, hwm = 100000;
	int64_t max = (int64_t)self->cfg.max_frame_bytes;

	if (!s)
		return NULL;
	if (!s_secure(self, s, domain, endpoint, why, why_len)) {
		zmq_close(s);
		return NULL;
	}
	zmq_setsockopt(s, ZMQ_ROUTER_MANDATORY, &one, sizeof(one));
	zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &max, sizeof(max));
	zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof(hwm));
	zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof(hwm));
	return s_bind_socket(s, endpoint, why, why_len);
}

/* The event stream: XPUB, so that subscriptions are seen (events are made
 * only while someone watches); VERBOSER passes every subscribe and
 * unsubscribe, so they can be counted. */
static void *s_bind_events(crd_t *self, const char *endpoint, char *why, size_t why_len)
{
	void *s = zmq_socket(self->ctx, ZMQ_XPUB);
	int one = 1, zero = 0, hwm = 10000;

	if (!s)
		return NULL;
	if (!s_secure(self, s, "events", endpoint, why, why_len)) {
		zmq_close(s);
		return NULL;
	}
	zmq_setsockopt(s, ZMQ_XPUB_VERBOSER, &one, sizeof(one));
	zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof(hwm));
	return s_bind_socket(s, endpoint, why, why_len);
}

int crd_new(const crd_config_t *cfg, crd_t **out, char *why, size_t why_len)
{
	crd_t *self = calloc(1, sizeof(*self));
	wal_opts_t wo = {.dir = cfg->log_dir, .coord_id = cfg->id, .map_size = cfg->map_size};
	int rc;

	*out = NULL;
	if (!self)
		return DTX_ENOMEM;
	self->cfg = *cfg;
	self->nbuckets = 1024;
	if (!(self->buckets = calloc(self->nbuckets, sizeof(*self->buckets)))) {
		free(self);
		return DTX_ENOMEM;
	}
	for (unsigned i = 0; i < cfg->nparticipants; i++) {
		snprintf(self->parts[i].name, sizeof(self->parts[i].name), "%s",
			 cfg->participants[i]);
		self->parts[i].allowed = true;
	}
	self->nparts = cfg->nparticipants;
	self->started_us = dtx_wall_us();
	crd_stats_init(self);

	if ((rc = wal_open(&wo, &self->wal, why, why_len)))
		goto fail;
	/* Recovery before any socket is bound: nothing new arrives while the
	 * log is read. */
	if ((rc = crd_recover(self, why, why_len)))
		goto fail;
	rc = DTX_EIO;
	if (!(self->ctx = zmq_ctx_new()))
		goto fail;
	/* CURVE's encryption is done by libzmq's I/O threads: a second one
	 * shares it when an endpoint is remote. */
	if (cfg->secret_key[0] &&
	    (dtx_endpoint_remote(cfg->client_endpoint) || dtx_endpoint_remote(cfg->agent_endpoint)))
		zmq_ctx_set(self->ctx, ZMQ_IO_THREADS, 2);
	/* The authentication handler first: a socket bound before it would
	 * let anyone in. */
	if (crd_zap_open(self, why, why_len))
		goto fail;
	if (cfg->insecure)
		dtx_warn("insecure = true: tcp:// endpoints without a CURVE key are served, and "
			 "anyone who reaches them may act as any client or agent; for tests only");
	if (!(self->client = s_bind(self, "client", cfg->client_endpoint, why, why_len)) ||
	    !(self->agent = s_bind(self, "agent", cfg->agent_endpoint, why, why_len)) ||
	    !(self->admin = s_bind(self, "admin", cfg->admin_endpoint, why, why_len)))
		goto fail;
	if (!(self->events = s_bind_events(self, cfg->events_endpoint, why, why_len)))
		goto fail;
	if (cfg->metrics_listen[0] && (rc = crd_http_start(cfg->metrics_listen, crd_metrics, self,
							   &self->http, why, why_len)))
		goto fail;
	*out = self;
	return 0;
fail:
	crd_destroy(&self);
	return rc;
}

int crd_create_log(const crd_config_t *cfg, uint32_t *epoch, char *why, size_t why_len)
{
	wal_opts_t wo = {.dir = cfg->log_dir,
			 .coord_id = cfg->id,
			 .map_size = cfg->map_size,
			 .create = true};
	wal_t *w = NULL;
	int rc = wal_open(&wo, &w, why, why_len);
	if (rc == 0)
		*epoch = wal_epoch(w);
	wal_close(&w);
	return rc;
}

void crd_destroy(crd_t **self_p)
{
	crd_t *self = self_p ? *self_p : NULL;
	if (!self)
		return;
	self->closing = true; /* a flush from here on sends no new PREPARE */
	if (self->wal)
		crd_flush(self); /* the batch under way, then what is queued */
	while (self->head)
		crd_tx_forget(self, self->head);
	crd_saga_free_all(self);
	dtx_delayed_free(&self->delayed);
	crd_http_stop(&self->http);
	free(self->buckets);
	free(self->orphans);
	if (self->client)
		zmq_close(self->client);
	if (self->agent)
		zmq_close(self->agent);
	if (self->admin)
		zmq_close(self->admin);
	if (self->events)
		zmq_close(self->events);
	crd_zap_close(self);
	if (self->ctx)
		zmq_ctx_term(self->ctx);
	wal_close(&self->wal);
	free(self);
	*self_p = NULL;
}
