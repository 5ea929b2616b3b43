/*
 * crd_events.c — the event stream dtxctl watch reads: an XPUB socket,
 * one EVENT frame (dtx_wire.h) per event, made only while someone watches
 * (subscriptions are counted). A watcher too slow for the stream loses
 * events (XPUB drops); the loop never waits for it.
 *
 * An event carries the GTID, what happened (begun, voted, decided,
 * completed or heuristic), who it is about if one participant, the
 * transaction's participants, a free-text detail and when it happened.
 * A msgpack frame's first bytes are the same for every event, so the
 * stream cannot be filtered by subscription prefix: watchers subscribe to
 * everything and pick what they want after decoding.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <zmq.h>

#include "crd_int.h"

void crd_event(crd_t *self, const crd_tx_t *tx, const char *gtid, const char *event,
	       const char *who, const char *fmt, ...)
{
	char detail[1024], g[DTX_GTID_MAX];
	const char *parts[WAL_MAX_PARTS];
	va_list ap;
	int rc;

	if (!self->watchers)
		return;
	if (!gtid) {
		crd_tx_gtid(self, tx, g, sizeof(g));
		gtid = g;
	}
	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	dtx_msg_t ev = {.type = DTX_T_EVENT,
			.has = DTX_F_GTID | DTX_F_EVENT | DTX_F_PARTS | DTX_F_DETAIL | DTX_F_AT,
			.gtid = gtid,
			.event = event,
			.parts = parts,
			.detail = detail,
			.at_us = dtx_wall_us()};
	/* crd_clients.c admits at most WAL_MAX_PARTS branches a transaction. */
	for (uint32_t i = 0; tx && i < tx->nbranches && i < WAL_MAX_PARTS; i++)
		parts[ev.nparts++] = tx->br[i].name;
	if (!tx && who)
		parts[ev.nparts++] = who;
	if (who) {
		ev.who = who;
		ev.has |= DTX_F_WHO;
	}
	/* EAGAIN (nobody connected yet, or a full queue) loses the event, as
	 * a slow watcher must; anything else is an event that cannot be
	 * encoded. */
	if ((rc = dtx_send(self->events, &ev, ZMQ_DONTWAIT)) && rc != DTX_EIO)
		dtx_warn("event %s of %s not sent: %s", event, gtid, dtx_strerror(rc));
}

void crd_event_saga(crd_t *self, const crd_saga_t *sg, int step, const char *event, const char *fmt,
		    ...)
{
	char detail[1024], g[DTX_GTID_MAX];
	const char *parts[DTX_SAGA_MAX_STEPS];
	va_list ap;
	int rc;

	if (!self->watchers)
		return;
	crd_saga_gtid(self, sg, g, sizeof(g));
	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	dtx_msg_t ev = {.type = DTX_T_EVENT,
			.has = DTX_F_GTID | DTX_F_EVENT | DTX_F_PARTS | DTX_F_DETAIL | DTX_F_AT,
			.gtid = g,
			.event = event,
			.parts = parts,
			.detail = detail,
			.at_us = dtx_wall_us()};
	ev.nparts = crd_saga_parts(sg, parts, DTX_SAGA_MAX_STEPS);
	if (step >= 0 && (uint32_t)step < sg->nsteps) {
		ev.who = sg->def.steps[step].participant;
		ev.step = sg->def.steps[step].name;
		ev.has |= DTX_F_WHO | DTX_F_STEP;
	}
	if ((rc = dtx_send(self->events, &ev, ZMQ_DONTWAIT)) && rc != DTX_EIO)
		dtx_warn("event %s of %s not sent: %s", event, g, dtx_strerror(rc));
}

/* Subscriptions come and go as watchers connect and leave. What XPUB
 * reads back are its subscription frames (1 or 0, then the prefix), not
 * dtx frames: the one place in the coordinator that reads a raw zmq
 * frame, and rightly so. */
void crd_on_subscription(crd_t *self)
{
	char b[256];
	int n;
	while ((n = zmq_recv(self->events, b, sizeof(b), ZMQ_DONTWAIT)) >= 0) {
		if (n >= 1 && b[0] == 1)
			self->watchers++;
		else if (n >= 1 && b[0] == 0 && self->watchers > 0)
			self->watchers--;
		dtx_info("event stream: %d watching", self->watchers);
	}
}
