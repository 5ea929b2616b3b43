/*
 * crd_events.c — the event stream dtxctl watch reads: an XPUB socket,
 * one frame per event, made only while someone watches (subscriptions are
 * counted). A watcher too slow for the stream loses events (XPUB drops);
 * the loop never waits for it.
 *
 * One text frame per event, fields separated by one space:
 *   GTID EVENT WHO PARTICIPANTS DETAIL
 * EVENT is begun, voted, decided, completed or heuristic; WHO the
 * participant it is about or "-"; PARTICIPANTS the transaction's, comma
 * separated; DETAIL free text (may be empty).
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
	char buf[1024], g[DTX_GTID_MAX];
	size_t off;
	va_list ap;

	if (!self->watchers)
		return;
	if (!gtid) {
		crd_tx_gtid(self, tx, g, sizeof(g));
		gtid = g;
	}
	off = (size_t)snprintf(buf, sizeof(buf), "%s %s %s ", gtid, event, who ? who : "-");
	for (uint32_t i = 0; tx && i < tx->nbranches && off < sizeof(buf); i++)
		off += (size_t)snprintf(buf + off, sizeof(buf) - off, "%s%s", i ? "," : "",
					tx->br[i].name);
	if (!tx && off < sizeof(buf))
		off += (size_t)snprintf(buf + off, sizeof(buf) - off, "%s", who ? who : "-");
	if (off < sizeof(buf) - 1) {
		buf[off++] = ' ';
		va_start(ap, fmt);
		vsnprintf(buf + off, sizeof(buf) - off, fmt, ap);
		va_end(ap);
	}
	zmq_send(self->events, buf, strlen(buf), ZMQ_DONTWAIT);
}

/* Subscriptions come and go as watchers connect and leave. */
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
