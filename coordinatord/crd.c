/*
 * crd.c — the coordinator.
 *
 * State machine (the wal_kind_t values, ordered by progress):
 *
 *   ACTIVE -> PREPARING -> COMMITTING -> COMMITTED (END, forgotten)
 *   ACTIVE | PREPARING  -> ABORTING   -> ABORTED   (END, forgotten)
 *
 * s_transition() is the one place that changes a state; it checks the
 * move against s_legal[] and logs it. COMMITTING is forced: no participant
 * and no client hears COMMIT before the group commit holding that record
 * returns (see s_after_flush()). So is a one-phase begin record: its
 * PREPARE leaves only once the log knows the transaction, since the agent
 * commits it on its own (see s_on_tx()). Every other record rides the next group
 * commit and nothing waits for it: with presumed abort, a lost ACTIVE,
 * PREPARING or ABORTING record means "abort", which is what they say.
 *
 * Group commit: records produced while handling one poll round are handed
 * together to the log's writer thread at the end of the round, at once if
 * a forced record is among them, otherwise within lazy_flush_ms. While it
 * syncs, the loop goes on and the next batch forms; the decisions of a
 * batch go out when its commit returns (s_flush_end()). One batch is out
 * at a time, so batches reach the disk in order.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <zmq.h>

#include "crd.h"
#include "crd_metrics.h"
#include "dtx_util.h"
#include "dtx_wire.h"
#include "wal.h"

#define TICK_MS 20
#define RETRY_FIRST_MS 500
#define RETRY_MAX_MS 10000
#define PRUNE_EVERY_MS 1000
#define ONE_PHASE_NOTE "one-phase" /* the begin record's note */
#define LOG_RETRY_MS 1000

typedef struct {
	uint8_t b[256];
	size_t n;
} s_rid_t;

typedef struct {
	char name[64];
	bool allowed;           /* in the allow-list (a reload may remove it) */
	bool connected;
	s_rid_t rid;
	int64_t last_seen_ms;
} s_part_t;

enum { VOTE_NONE = -1 };

typedef struct {
	int part;               /* index into crd.parts; -1: no longer configured */
	char name[64];
	int vote;               /* VOTE_NONE, DTX_VOTE_NO, DTX_VOTE_YES */
	bool acked;             /* phase two done for this branch */
	int64_t next_send_ms;   /* phase two: when to (re)send the decision */
	int backoff_ms;
} s_branch_t;

typedef struct s_tx {
	struct s_tx *hnext;            /* hash chain */
	struct s_tx *prev, *next;      /* in-flight list */
	struct s_tx *flush_next;       /* awaiting the group commit of its decision */
	uint64_t seq;
	uint32_t epoch;
	int state;                     /* wal_kind_t */
	uint8_t nlog;                  /* records logged so far */
	bool awaiting_flush;
	bool heuristic;
	bool one_phase;                /* one branch: committed without PREPARE */
	bool resolving;                /* one-phase, vote lost: asking which way it went */
	bool answered;                 /* the client has had an outcome once */
	int64_t begun_us;              /* when the client's TX arrived (monotonic) */
	int64_t deadline_ms;
	int64_t decided_ms;            /* when COMMITTING or ABORTING was entered */
	/* the client waiting for the outcome, if any */
	bool client_waiting;
	s_rid_t client;
	uint64_t req_id;
	dtx_msg_t req;                 /* owns the statements of every branch */
	char culprit[64], sqlstate[8], reason[512];
	char key[DTX_KEY_MAX + 1];     /* the client's submission key, or "" */
	uint32_t nbranches;
	s_branch_t br[];
} s_tx_t;

/* A prepared branch the log cannot decide, reported by its participant.
 * Only GIDs in dtx's canonical form get here (dtx_gid_parse), so both
 * strings fit whole. */
typedef struct {
	char gid[DTX_GID_MAX];
	char part[64];
	dtx_gtid_t g;                  /* the transaction it belongs to */
	bool pruned;                   /* of a transaction retention removed */
} s_orphan_t;

struct crd {
	crd_config_t cfg;
	wal_t *wal;
	void *ctx, *client, *agent, *admin;
	void *events;                  /* XPUB: the stream dtxctl watch reads */
	int watchers;                  /* subscriptions on it; 0: events not made */
	volatile sig_atomic_t stop;    /* stop now */
	volatile sig_atomic_t draining; /* SIGTERM: finish what is in flight, then stop */
	volatile sig_atomic_t reload;   /* SIGHUP: read the configuration again */
	int64_t drain_since_ms;
	s_part_t parts[CRD_MAX_PARTICIPANTS];
	unsigned nparts;
	/* in-flight transactions */
	s_tx_t **buckets;
	size_t nbuckets, ntx;
	s_tx_t *head;
	s_tx_t *flush_head;            /* decisions waiting for the group commit */
	s_tx_t *flushing_head;         /* decisions in the group commit under way */
	int64_t started_us, last_flush_ms, first_lazy_ms, last_tick_ms, last_prune_ms;
	uint64_t n_committed, n_aborted, n_heuristic, n_flushes, n_flushed, n_decisions;
	/* Branches the log cannot decide, left to the operator: from an epoch
	 * the log never saw, or (pruned) of a transaction retention removed */
	s_orphan_t *orphans;           /* any number; grown as needed */
	unsigned norphans, orphans_cap;
	int log_failing;               /* last group-commit error, 0 when fine */
	bool prune_failing;            /* retention's last pruning failed */
	dtx_delayed_t *delayed;        /* frames held by a delay fault */
	bool io_failed;                /* a flush outside the loop failed: stop */
	bool closing;                  /* crd_destroy: start nothing new */
	int64_t watchdog_ms, last_watchdog_ms; /* systemd's watchdog: ping this often */
	/* metrics (crd_metrics.h), served on metrics_listen and by dtxctl stats */
	crd_http_t *http;
	uint64_t n_retries;            /* decisions sent again (phase two) */
	crd_hist_t h_decision;         /* seconds from TX to the client's answer */
	crd_hist_t h_commit;           /* seconds per log commit (writes + fsync) */
	crd_hist_t h_batch;            /* records per group commit */
};

static const double s_le_decision[] = {0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05,
				       0.1,    0.2,   0.5,   1,     2,    5,    10};
static const double s_le_commit[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
				     0.01,   0.025,   0.05,   0.1,   0.25,   1};
static const double s_le_batch[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096};
#define NLE(a) (unsigned)(sizeof(a) / sizeof((a)[0]))

/* --- names and the transition table ----------------------------------- */

static bool s_legal(int from, int to)
{
	switch (from) {
	case WAL_ACTIVE: return to == WAL_PREPARING || to == WAL_ABORTING;
	/* PREPARING -> COMMITTED: every branch voted READ-ONLY */
	case WAL_PREPARING: return to == WAL_COMMITTING || to == WAL_ABORTING || to == WAL_COMMITTED;
	case WAL_COMMITTING: return to == WAL_COMMITTED;
	case WAL_ABORTING: return to == WAL_ABORTED;
	}
	return false;
}

static void s_gtid(const crd_t *self, const s_tx_t *tx, char *buf, size_t len)
{
	dtx_gtid_t g = {.epoch = tx->epoch, .seq = tx->seq};
	snprintf(g.coord, sizeof(g.coord), "%s", self->cfg.id);
	dtx_gtid_format(&g, buf, len);
}

static void s_gid(const crd_t *self, const s_tx_t *tx, uint32_t branch, char *buf, size_t len)
{
	dtx_gtid_t g = {.epoch = tx->epoch, .seq = tx->seq};
	snprintf(g.coord, sizeof(g.coord), "%s", self->cfg.id);
	dtx_gid_format(&g, branch, buf, len);
}

/* --- the in-flight table ---------------------------------------------- */

static s_tx_t *s_find(crd_t *self, uint64_t seq)
{
	for (s_tx_t *t = self->buckets[seq & (self->nbuckets - 1)]; t; t = t->hnext)
		if (t->seq == seq)
			return t;
	return NULL;
}

static int s_insert(crd_t *self, s_tx_t *tx)
{
	if (self->ntx + 1 > self->nbuckets) {
		size_t nb = self->nbuckets * 2;
		s_tx_t **b = calloc(nb, sizeof(*b));
		if (!b)
			return DTX_ENOMEM;
		for (size_t i = 0; i < self->nbuckets; i++)
			for (s_tx_t *t = self->buckets[i], *n; t; t = n) {
				n = t->hnext;
				t->hnext = b[t->seq & (nb - 1)];
				b[t->seq & (nb - 1)] = t;
			}
		free(self->buckets);
		self->buckets = b;
		self->nbuckets = nb;
	}
	s_tx_t **slot = &self->buckets[tx->seq & (self->nbuckets - 1)];
	tx->hnext = *slot;
	*slot = tx;
	tx->prev = NULL;
	tx->next = self->head;
	if (self->head)
		self->head->prev = tx;
	self->head = tx;
	self->ntx++;
	return 0;
}

static void s_forget(crd_t *self, s_tx_t *tx)
{
	s_tx_t **pp = &self->buckets[tx->seq & (self->nbuckets - 1)];
	while (*pp != tx)
		pp = &(*pp)->hnext;
	*pp = tx->hnext;
	if (tx->prev)
		tx->prev->next = tx->next;
	else
		self->head = tx->next;
	if (tx->next)
		tx->next->prev = tx->prev;
	self->ntx--;
	dtx_msg_clear(&tx->req);
	free(tx);
}

static s_tx_t *s_tx_alloc(uint32_t nbranches)
{
	s_tx_t *tx = calloc(1, sizeof(*tx) + nbranches * sizeof(s_branch_t));
	if (!tx)
		return NULL;
	tx->nbranches = nbranches;
	for (uint32_t i = 0; i < nbranches; i++)
		tx->br[i].vote = VOTE_NONE;
	return tx;
}

static int s_part_index(const crd_t *self, const char *name)
{
	for (unsigned i = 0; i < self->nparts; i++)
		if (strcmp(self->parts[i].name, name) == 0)
			return (int)i;
	return -1;
}

/* --- sending ---------------------------------------------------------- */

/* false if the frame did not leave: the peer is gone (ROUTER_MANDATORY
 * reports EHOSTUNREACH) or its queue is full. */
static bool s_send(void *sock, const s_rid_t *rid, const dtx_msg_t *msg)
{
	char *buf;
	size_t len;
	bool sent = false;
	int rc = dtx_msg_encode(msg, &buf, &len);
	if (rc) {
		dtx_err("cannot encode %s: %s", dtx_msg_type_str(msg->type), dtx_strerror(rc));
		return false;
	}
	if (zmq_send(sock, rid->b, rid->n, ZMQ_SNDMORE | ZMQ_DONTWAIT) >= 0)
		sent = zmq_send(sock, buf, len, ZMQ_DONTWAIT) >= 0;
	free(buf);
	return sent;
}

/* Send to a participant; one whose connection is gone is marked down. */
static bool s_send_part(crd_t *self, s_part_t *p, const dtx_msg_t *msg)
{
	if (!p->connected)
		return false;
	if (s_send(self->agent, &p->rid, msg))
		return true;
	if (errno == EHOSTUNREACH) {
		dtx_warn("participant %s: connection gone: marked down", p->name);
		p->connected = false;
	}
	return false;
}

static void s_send_error(void *sock, const s_rid_t *rid, bool has_id, uint64_t id, int code,
			 const char *text)
{
	dtx_msg_t m = {.type = DTX_T_ERROR, .has = DTX_F_CODE | DTX_F_TEXT, .code = code,
		       .text = text, .id = id};
	if (has_id)
		m.has |= DTX_F_ID;
	s_send(sock, rid, &m);
}

static void s_reply_client(crd_t *self, s_tx_t *tx, int status)
{
	char gtid[DTX_GTID_MAX];
	dtx_msg_t m = {.type = DTX_T_OUTCOME, .has = DTX_F_ID | DTX_F_CODE | DTX_F_GTID,
		       .id = tx->req_id, .code = status, .gtid = gtid};
	if (!tx->client_waiting)
		return;
	s_gtid(self, tx, gtid, sizeof(gtid));
	if (tx->culprit[0]) {
		m.name = tx->culprit;
		m.has |= DTX_F_NAME;
	}
	if (tx->sqlstate[0]) {
		m.sqlstate = tx->sqlstate;
		m.has |= DTX_F_SQLSTATE;
	}
	if (tx->reason[0]) {
		m.text = tx->reason;
		m.has |= DTX_F_TEXT;
	}
	s_send(self->client, &tx->client, &m);
	tx->client_waiting = false;
	if (tx->begun_us && !tx->answered) /* not a recovered one, nor a key's second answer */
		crd_hist_observe(&self->h_decision, (double)(dtx_now_us() - tx->begun_us) / 1e6);
	tx->answered = true;
	/* Crash point: the outcome left the process. */
	dtx_crash_point("crd.client_answered");
}

/* Send the decision to branch i if its participant is connected. */
static void s_send_decision(crd_t *self, s_tx_t *tx, uint32_t i, int64_t now)
{
	s_branch_t *b = &tx->br[i];
	char gid[200];
	dtx_msg_t m = {.type = DTX_T_DECIDE, .has = DTX_F_GTID | DTX_F_CODE, .gtid = gid,
		       .code = tx->resolving                 ? DTX_DECIDE_RESOLVE
			       : tx->state == WAL_COMMITTING ? DTX_DECIDE_COMMIT
							     : DTX_DECIDE_ROLLBACK};

	if (b->backoff_ms)
		self->n_retries++;
	b->backoff_ms = b->backoff_ms ? (b->backoff_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS
									   : b->backoff_ms * 2)
				      : RETRY_FIRST_MS;
	b->next_send_ms = now + b->backoff_ms;
	if (b->part < 0 || !self->parts[b->part].connected)
		return;
	s_gid(self, tx, i, gid, sizeof(gid));
	s_send_part(self, &self->parts[b->part], &m);
}

/* --- the event stream (dtxctl watch) ------------------------------------ */

/*
 * One text frame per event, fields separated by one space:
 *   GTID EVENT WHO PARTICIPANTS DETAIL
 * EVENT is begun, voted, decided, completed or heuristic; WHO the
 * participant it is about or "-"; PARTICIPANTS the transaction's, comma
 * separated; DETAIL free text (may be empty). Made only while someone
 * watches; a watcher too slow for the stream loses events (XPUB drops),
 * the loop never waits for it.
 */
static void s_event(crd_t *self, const s_tx_t *tx, const char *gtid, const char *event,
		    const char *who, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static void s_event(crd_t *self, const s_tx_t *tx, const char *gtid, const char *event,
		    const char *who, const char *fmt, ...)
{
	char buf[1024], g[DTX_GTID_MAX];
	size_t off;
	va_list ap;

	if (!self->watchers)
		return;
	if (!gtid) {
		s_gtid(self, tx, g, sizeof(g));
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
static void s_on_subscription(crd_t *self)
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

/* --- logging transitions ---------------------------------------------- */

static int s_log(crd_t *self, s_tx_t *tx, int kind, const char *note, bool forced)
{
	wal_rec_t r = {.seq = tx->seq, .idx = tx->nlog, .kind = (uint8_t)kind,
		       .epoch = tx->epoch, .at_us = dtx_wall_us(), .note = note};
	int rc;

	if (tx->nlog == 255)
		return DTX_EFULL;
	if (kind == WAL_ACTIVE) {
		r.key = tx->key[0] ? tx->key : NULL;
		r.nparts = (uint8_t)tx->nbranches;
		for (uint32_t i = 0; i < tx->nbranches; i++)
			r.parts[i] = tx->br[i].name;
	}
	if ((rc = wal_append(self->wal, &r, forced)))
		return rc;
	if (wal_pending(self->wal) == 1)
		self->first_lazy_ms = dtx_now_ms();
	tx->nlog++;
	return 0;
}

/* Move tx to state to and log it. force: an operator's act, allowed to
 * leave the table (to contradict a decision); the caller logs why. */
static void s_move(crd_t *self, s_tx_t *tx, int to, const char *note, bool force)
{
	char gtid[DTX_GTID_MAX];
	int rc;

	s_gtid(self, tx, gtid, sizeof(gtid));
	if (!force && !s_legal(tx->state, to)) {
		dtx_err("%s: refused transition %s -> %s", gtid, wal_kind_str(tx->state),
			wal_kind_str(to));
		return;
	}
	dtx_debug("%s: %s -> %s", gtid, wal_kind_str(tx->state), wal_kind_str(to));
	if (to == WAL_ABORTING)
		s_event(self, tx, gtid, "decided", NULL, "abort%s%s", note ? ": " : "",
			note ? note : "");
	else if (to == WAL_COMMITTED && tx->state == WAL_PREPARING)
		s_event(self, tx, gtid, "decided", NULL, "commit%s%s", note ? ": " : "",
			note ? note : "");
	if (to == WAL_COMMITTED || to == WAL_ABORTED)
		s_event(self, tx, gtid, "completed", NULL, "%s", wal_kind_str(to));
	tx->state = to;
	if (to == WAL_COMMITTING || to == WAL_ABORTING)
		tx->decided_ms = dtx_now_ms();
	if ((rc = s_log(self, tx, to, note, to == WAL_COMMITTING)))
		dtx_err("%s: cannot queue %s record: %s", gtid, wal_kind_str(to), dtx_strerror(rc));
}

static void s_transition(crd_t *self, s_tx_t *tx, int to, const char *note)
{
	s_move(self, tx, to, note, false);
}

/* --- abort, commit, completion ---------------------------------------- */

static void s_abort(crd_t *self, s_tx_t *tx, const char *culprit, const char *sqlstate,
		    const char *reason)
{
	char gtid[DTX_GTID_MAX];
	int64_t now = dtx_now_ms();

	s_gtid(self, tx, gtid, sizeof(gtid));
	snprintf(tx->culprit, sizeof(tx->culprit), "%s", culprit ? culprit : "");
	snprintf(tx->sqlstate, sizeof(tx->sqlstate), "%s", sqlstate ? sqlstate : "");
	snprintf(tx->reason, sizeof(tx->reason), "%s", reason);
	dtx_info("%s: abort%s%s: %s", gtid, culprit ? " by " : "", culprit ? culprit : "", reason);
	s_transition(self, tx, WAL_ABORTING, reason);
	/* Presumed abort: the client may hear "aborted" before ABORTING is
	 * durable; if we crash, recovery aborts the transaction anyway. */
	s_reply_client(self, tx, DTX_OUTCOME_ABORTED);
	/* Every branch gets the ROLLBACK, a NO voter too: a NO that came from
	 * a connection lost during PREPARE TRANSACTION cannot tell whether the
	 * branch was prepared. The agent's rollback is idempotent. */
	for (uint32_t i = 0; i < tx->nbranches; i++)
		if (!tx->br[i].acked) {
			s_send_decision(self, tx, i, now);
			dtx_crash_point("crd.abort_sent");
		}
}

static void s_maybe_end(crd_t *self, s_tx_t *tx)
{
	char gtid[DTX_GTID_MAX];

	if (tx->state != WAL_COMMITTING && tx->state != WAL_ABORTING)
		return;
	if (tx->awaiting_flush)
		return;
	for (uint32_t i = 0; i < tx->nbranches; i++)
		if (!tx->br[i].acked)
			return;
	dtx_crash_point("crd.acks_in");
	s_gtid(self, tx, gtid, sizeof(gtid));
	if (tx->state == WAL_COMMITTING) {
		s_transition(self, tx, WAL_COMMITTED, NULL);
		self->n_committed++;
	} else {
		s_transition(self, tx, WAL_ABORTED, NULL);
		self->n_aborted++;
	}
	dtx_info("%s: %s on every participant", gtid, wal_kind_str(tx->state));
	s_forget(self, tx);
}

/* Decide COMMIT: the forced record. Nothing about this decision leaves the
 * process until the group commit returns: s_after_flush() sends it. */
static void s_decide_commit(crd_t *self, s_tx_t *tx, bool force, const char *note)
{
	s_move(self, tx, WAL_COMMITTING, note, force);
	tx->awaiting_flush = true;
	tx->flush_next = self->flush_head;
	self->flush_head = tx;
}

/* A one-phase transaction's outcome is its branch's: committed (its vote
 * said so, or its RESOLVE found it committed) or rolled back. Nothing
 * forced: a crash before these lazy records land leaves the begin record,
 * and recovery asks again. */
static void s_one_phase_done(crd_t *self, s_tx_t *tx, bool committed)
{
	char gtid[DTX_GTID_MAX];
	s_gtid(self, tx, gtid, sizeof(gtid));
	tx->br[0].acked = true;
	/* The text is set here, from the result: a vote lost or a recovery
	 * leaves in tx->reason only why the participant was asked. */
	if (committed) {
		if (tx->reason[0]) {
			char why[sizeof(tx->reason)];
			snprintf(why, sizeof(why), "%s", tx->reason);
			snprintf(tx->reason, sizeof(tx->reason),
				 "%.400s; the only participant committed its branch", why);
		}
		s_transition(self, tx, WAL_COMMITTED, "one phase");
		self->n_committed++;
		s_reply_client(self, tx, DTX_OUTCOME_COMMITTED);
	} else {
		char why[sizeof(tx->reason)];
		snprintf(why, sizeof(why), "%s", tx->reason[0] ? tx->reason : "timed out");
		snprintf(tx->reason, sizeof(tx->reason),
			 "%.400s; the only participant rolled its branch back", why);
		s_transition(self, tx, WAL_ABORTING, tx->reason);
		s_transition(self, tx, WAL_ABORTED, NULL);
		self->n_aborted++;
		s_reply_client(self, tx, DTX_OUTCOME_ABORTED);
	}
	dtx_info("%s: one phase, %s", gtid, committed ? "committed" : "rolled back");
	s_forget(self, tx);
}

/* A one-phase transaction whose vote did not come (timed out, or found
 * undecided by recovery) may have committed: it is not presumed aborted
 * but its participant is asked to roll it back if it can and say which
 * way it went; the client hears that. */
static void s_resolve(crd_t *self, s_tx_t *tx, const char *why)
{
	char gtid[DTX_GTID_MAX];
	s_gtid(self, tx, gtid, sizeof(gtid));
	dtx_info("%s: one phase, %s: asking %s which way it went", gtid, why, tx->br[0].name);
	snprintf(tx->reason, sizeof(tx->reason), "%s", why); /* the result is added to it */
	tx->resolving = true;
	tx->br[0].backoff_ms = 0;
	s_send_decision(self, tx, 0, dtx_now_ms());
}

static void s_all_voted(crd_t *self, s_tx_t *tx)
{
	bool wrote = false;
	for (uint32_t i = 0; i < tx->nbranches; i++) {
		if (tx->br[i].vote != DTX_VOTE_YES && tx->br[i].vote != DTX_VOTE_READONLY)
			return;
		wrote |= tx->br[i].vote == DTX_VOTE_YES;
	}
	dtx_crash_point("crd.votes_in");
	if (wrote) {
		s_decide_commit(self, tx, false, NULL);
		return;
	}
	/* Every branch read-only and committed already: nothing to decide
	 * durably (a lost record makes it "aborted", which wrote nothing as
	 * well), nothing to send. */
	s_transition(self, tx, WAL_COMMITTED, "read-only");
	self->n_committed++;
	s_reply_client(self, tx, DTX_OUTCOME_COMMITTED);
	s_forget(self, tx);
}

static bool s_send_prepares(crd_t *self, s_tx_t *tx);

/* The group commit returned 0: the decisions (and one-phase begin records)
 * it held are durable. */
static void s_after_flush(crd_t *self, s_tx_t *list)
{
	int64_t now = dtx_now_ms();
	s_tx_t *tx = list;

	while (tx) {
		s_tx_t *next = tx->flush_next;
		tx->awaiting_flush = false;
		tx->flush_next = NULL;
		if (tx->state == WAL_PREPARING && tx->one_phase) {
			/* Durability point: a one-phase begin record is on disk.
			 * A crash from here on finds it undecided at recovery and
			 * asks the participant (RESOLVE), never presumes abort. */
			dtx_crash_point("crd.begin_logged");
			if (self->closing) {
				/* stopping: recovery asks about it at the next start */
			} else if (now >= tx->deadline_ms) {
				/* Its PREPARE never left: nothing to roll back. */
				tx->br[0].acked = true;
				dtx_msg_clear(&tx->req);
				s_abort(self, tx, NULL, NULL,
					"timed out before the branch could be sent (the log was slow)");
				s_maybe_end(self, tx);
			} else {
				s_send_prepares(self, tx);
			}
			tx = next;
			continue;
		}
		if (tx->state != WAL_COMMITTING) {
			char gtid[DTX_GTID_MAX];
			s_gtid(self, tx, gtid, sizeof(gtid));
			dtx_err("%s: in %s after its group commit, neither a commit decision nor a "
				"one-phase begin: nothing sent", gtid, wal_kind_str(tx->state));
			tx = next;
			continue;
		}
		self->n_decisions++;
		s_event(self, tx, NULL, "decided", NULL, "commit");
		/* Durability point: COMMIT is on disk. A crash from here on
		 * re-drives the commit at recovery. */
		dtx_crash_point("crd.commit_logged");
		s_reply_client(self, tx, DTX_OUTCOME_COMMITTED);
		for (uint32_t i = 0; i < tx->nbranches; i++) {
			if (tx->br[i].acked)
				continue; /* read-only */
			s_send_decision(self, tx, i, now);
			dtx_crash_point("crd.commit_sent");
		}
		tx = next;
	}
}

/* --- the participant side --------------------------------------------- */

static s_part_t *s_part_by_rid(crd_t *self, const s_rid_t *rid)
{
	for (unsigned i = 0; i < self->nparts; i++)
		if (self->parts[i].connected && self->parts[i].rid.n == rid->n &&
		    memcmp(self->parts[i].rid.b, rid->b, rid->n) == 0)
			return &self->parts[i];
	return NULL;
}

/* Leave branch gid of participant p to the operator (once). */
static void s_orphan_add(crd_t *self, const char *gid, const dtx_gtid_t *g, const s_part_t *p,
			 bool pruned)
{
	for (unsigned k = 0; k < self->norphans; k++)
		if (strcmp(self->orphans[k].gid, gid) == 0 && strcmp(self->orphans[k].part, p->name) == 0)
			return;
	if (self->norphans == self->orphans_cap) {
		unsigned cap = self->orphans_cap ? 2 * self->orphans_cap : 16;
		s_orphan_t *o = realloc(self->orphans, cap * sizeof(*o));
		if (!o) {
			dtx_err("%s on %s: out of memory: not listed as in doubt (it will be "
				"reported again at the agent's next scan)", gid, p->name);
			return;
		}
		self->orphans = o;
		self->orphans_cap = cap;
	}
	s_orphan_t *o = &self->orphans[self->norphans++];
	snprintf(o->gid, sizeof(o->gid), "%s", gid);
	snprintf(o->part, sizeof(o->part), "%s", p->name);
	o->g = *g;
	o->pruned = pruned;
}

/* Resolve a branch GID to one of our in-flight transactions. *known: it
 * is ours and the log has seen its epoch and sequence. */
static s_tx_t *s_tx_by_gid(crd_t *self, const char *gid, uint32_t *branch, dtx_gtid_t *g,
			   bool *ours, bool *known)
{
	*ours = *known = false;
	if (dtx_gid_parse(gid, g, branch) || strcmp(g->coord, self->cfg.id) != 0)
		return NULL;
	*ours = true;
	*known = g->epoch >= wal_first_epoch(self->wal) && g->epoch <= wal_epoch(self->wal);
	s_tx_t *tx = s_find(self, g->seq);
	if (tx && (tx->epoch != g->epoch || *branch >= tx->nbranches))
		return NULL;
	return tx;
}

static void s_on_vote(crd_t *self, s_part_t *p, const dtx_msg_t *m)
{
	uint32_t bi;
	dtx_gtid_t g;
	bool ours, known;
	s_tx_t *tx = s_tx_by_gid(self, m->gtid, &bi, &g, &ours, &known);

	if (!tx || tx->br[bi].part < 0 || &self->parts[tx->br[bi].part] != p) {
		if (!ours)
			return;
		/* Presumed abort: a vote for a transaction we do not hold. */
		if (m->code == DTX_VOTE_YES) {
			dtx_msg_t d = {.type = DTX_T_DECIDE, .has = DTX_F_GTID | DTX_F_CODE,
				       .gtid = m->gtid, .code = 0};
			dtx_info("%s: vote from %s for a transaction not in flight: rollback",
				 m->gtid, p->name);
			s_send_part(self, p, &d);
		}
		return;
	}
	if (tx->awaiting_flush)
		return; /* a one-phase PREPARE not sent yet: no vote can be ours */
	if (tx->br[bi].vote != VOTE_NONE)
		return; /* repeated */
	tx->br[bi].vote = (int)m->code;
	s_event(self, tx, NULL, "voted", p->name, "%s%s%s",
		m->code == DTX_VOTE_YES		? "yes"
		: m->code == DTX_VOTE_READONLY	? "read-only"
		: m->code == DTX_VOTE_COMMITTED ? "committed"
						: "no",
		m->code == DTX_VOTE_NO && (m->has & DTX_F_TEXT) ? ": " : "",
		m->code == DTX_VOTE_NO && (m->has & DTX_F_TEXT) ? m->text : "");
	if (m->code == DTX_VOTE_READONLY)
		tx->br[bi].acked = true; /* committed by the agent; no phase two */
	if (tx->state != WAL_PREPARING)
		return; /* decided already; phase two covers this branch */
	if (tx->one_phase && m->code == DTX_VOTE_COMMITTED) {
		s_one_phase_done(self, tx, true);
		return;
	}
	if (tx->resolving)
		return; /* the RESOLVE's answer tells */
	if (m->code != DTX_VOTE_YES && m->code != DTX_VOTE_READONLY) {
		/* NO, or COMMITTED from a branch that was not one-phase */
		char reason[600];
		snprintf(reason, sizeof(reason), "%s voted no: %s", p->name,
			 (m->has & DTX_F_TEXT) ? m->text : "no reason given");
		s_abort(self, tx, p->name, (m->has & DTX_F_SQLSTATE) ? m->sqlstate : NULL, reason);
		return;
	}
	s_all_voted(self, tx);
}

/* The outcome the log gives for a transaction not in flight. */
static int s_logged_outcome(crd_t *self, uint64_t seq, uint32_t epoch);

static int s_count_fn(const wal_rec_t *recs, unsigned n, void *arg)
{
	*(unsigned *)arg = n;
	return 0;
}

/*
 * A branch of a transaction no longer in flight went against what the log
 * (or presumed abort) told it. Append HEURISTIC and an END of the logged
 * outcome, so that show, list and query report it and recovery still sees
 * the transaction finished.
 */
static int s_flush(crd_t *self);

static void s_log_late_heuristic(crd_t *self, s_part_t *p, const dtx_gtid_t *g,
				 const dtx_msg_t *m)
{
	char note[WAL_NOTE_MAX], gtid[DTX_GTID_MAX];
	unsigned n = 0;
	int rc;

	dtx_gtid_format(g, gtid, sizeof(gtid));
	/* Records of it may still be queued: write them first so the index
	 * of the new ones follows theirs. */
	if (s_flush(self)) {
		self->io_failed = true;
		self->stop = 1;
		return;
	}
	rc = wal_pending(self->wal) ? DTX_EFULL : 0;
	wal_history(self->wal, g->seq, s_count_fn, &n);
	bool commit = n && s_logged_outcome(self, g->seq, g->epoch) != DTX_OUTCOME_ABORTED;
	snprintf(note, sizeof(note), "%s: %s", p->name,
		 (m->has & DTX_F_TEXT) ? m->text : "branch went the other way");
	dtx_err("%s: heuristic outcome on %s", gtid, note);
	self->n_heuristic++;
	s_event(self, NULL, gtid, "heuristic", p->name, "%s", note);
	if (rc || n + 2 > 255)
		return; /* the daemon log line above is all that can be kept */
	wal_rec_t h = {.seq = g->seq, .idx = (uint8_t)n, .kind = WAL_HEURISTIC, .epoch = g->epoch,
		       .at_us = dtx_wall_us(), .note = note};
	wal_rec_t e = h;
	e.idx++;
	e.kind = commit ? WAL_COMMITTED : WAL_ABORTED;
	e.note = NULL;
	if (wal_append(self->wal, &h, false) || wal_append(self->wal, &e, false))
		dtx_err("%s: cannot queue the heuristic record", gtid);
}

static void s_on_ack(crd_t *self, s_part_t *p, const dtx_msg_t *m)
{
	uint32_t bi;
	dtx_gtid_t g;
	bool ours, known;
	s_tx_t *tx = s_tx_by_gid(self, m->gtid, &bi, &g, &ours, &known);

	if (!tx || tx->br[bi].part < 0 || &self->parts[tx->br[bi].part] != p) {
		/* An answer to a decision taken from the log or presumed. Only
		 * a heuristic one needs keeping. */
		if (ours && known && m->code == DTX_ACK_HEURISTIC)
			s_log_late_heuristic(self, p, &g, m);
		return;
	}
	if (tx->resolving && m->code != DTX_ACK_RETRY) {
		tx->br[bi].acked = true;
		s_one_phase_done(self, tx, m->code == DTX_ACK_COMMITTED);
		return;
	}
	if (tx->state != WAL_COMMITTING && tx->state != WAL_ABORTING)
		return;
	if (m->code == DTX_ACK_RETRY) {
		tx->br[bi].next_send_ms = dtx_now_ms() + tx->br[bi].backoff_ms;
		return;
	}
	if (tx->br[bi].acked)
		return;
	if (m->code == DTX_ACK_HEURISTIC) {
		char note[WAL_NOTE_MAX];
		snprintf(note, sizeof(note), "%s: %s", p->name,
			 (m->has & DTX_F_TEXT) ? m->text : "branch went the other way");
		dtx_err("%s: heuristic outcome on %s", m->gtid, note);
		tx->heuristic = true;
		self->n_heuristic++;
		s_event(self, tx, NULL, "heuristic", p->name, "%s", note);
		s_log(self, tx, WAL_HEURISTIC, note, false);
	}
	tx->br[bi].acked = true;
	dtx_crash_point("crd.ack_received");
	s_maybe_end(self, tx);
}

static void s_on_indoubt(crd_t *self, s_part_t *p, const dtx_msg_t *m)
{
	for (uint32_t i = 0; i < m->ngids; i++) {
		uint32_t bi;
		dtx_gtid_t g;
		bool ours, known;
		s_tx_t *tx = s_tx_by_gid(self, m->gids[i], &bi, &g, &ours, &known);
		dtx_msg_t d = {.type = DTX_T_DECIDE, .has = DTX_F_GTID | DTX_F_CODE,
			       .gtid = m->gids[i]};

		if (!ours)
			continue;
		if (!known) {
			/* Presumed abort is only safe while the log is intact:
			 * a branch from an epoch this log never had means the
			 * log was lost or replaced. Leave it to the operator. */
			dtx_err("%s on %s: epoch %" PRIu32 " unknown to this log (epoch %" PRIu32
				"): left in doubt", m->gids[i], p->name, g.epoch,
				wal_epoch(self->wal));
			s_orphan_add(self, m->gids[i], &g, p, false);
			continue;
		}
		if (tx && tx->br[bi].part >= 0 && &self->parts[tx->br[bi].part] == p) {
			if (tx->state == WAL_ACTIVE || tx->state == WAL_PREPARING) {
				/* Prepared is not a yes vote: the agent prepares in
				 * the work's own round trip and checks the row
				 * counts after, so a branch it had no time to vote
				 * on may be one it would have rolled back. Its vote
				 * died with it (or is behind this list): no. A one
				 * phase branch is never prepared; its outcome is
				 * the RESOLVE's to find. */
				if (tx->br[bi].vote == VOTE_NONE && !tx->one_phase) {
					tx->br[bi].vote = DTX_VOTE_NO;
					s_event(self, tx, NULL, "voted", p->name,
						"no: prepared, but not voted on before the scan");
					s_abort(self, tx, p->name, NULL,
						"the branch was found prepared with no vote");
				}
			} else if (!tx->awaiting_flush) {
				s_send_decision(self, tx, bi, dtx_now_ms());
			}
			continue;
		}
		int outcome = s_logged_outcome(self, g.seq, g.epoch);
		if (outcome == DTX_OUTCOME_IN_DOUBT) {
			/* Finished and pruned (or the log cannot be read): it
			 * may have committed. Nothing is presumed. */
			dtx_err("%s on %s: not in the log, which pruned transactions up to "
				"sequence %" PRIu64 ": left in doubt", m->gids[i], p->name,
				wal_pruned_hi(self->wal));
			s_orphan_add(self, m->gids[i], &g, p, true);
			continue;
		}
		d.code = outcome == DTX_OUTCOME_COMMITTED;
		dtx_info("%s on %s: not in flight, log says %s", m->gids[i], p->name,
			 d.code ? "commit" : "rollback");
		s_send_part(self, p, &d);
	}
}

static void s_on_hello(crd_t *self, const s_rid_t *rid, const dtx_msg_t *m)
{
	int idx = s_part_index(self, m->name);
	int64_t now = dtx_now_ms();
	char text[128];

	if (idx < 0) {
		snprintf(text, sizeof(text), "participant '%s' is not in the allow-list", m->name);
		dtx_warn("refused hello: %s", text);
		s_send_error(self->agent, rid, false, 0, DTX_EUNKNOWNPART, text);
		return;
	}
	s_part_t *p = &self->parts[idx];
	dtx_notice("participant %s %s", p->name, p->connected ? "reconnected" : "connected");
	p->connected = true;
	p->rid = *rid;
	p->last_seen_ms = now;
	dtx_msg_t w = {.type = DTX_T_WELCOME, .has = DTX_F_TEXT, .text = self->cfg.id};
	s_send(self->agent, rid, &w);
	/* Phase two owed to this participant goes out now. */
	for (s_tx_t *tx = self->head; tx; tx = tx->next) {
		if ((tx->state != WAL_COMMITTING && tx->state != WAL_ABORTING) || tx->awaiting_flush)
			continue;
		for (uint32_t i = 0; i < tx->nbranches; i++)
			if (tx->br[i].part == idx && !tx->br[i].acked) {
				tx->br[i].backoff_ms = 0;
				s_send_decision(self, tx, i, now);
			}
	}
}

static void s_on_agent_msg(crd_t *self, const s_rid_t *rid, const dtx_msg_t *m)
{
	if (m->type == DTX_T_HELLO) {
		s_on_hello(self, rid, m);
		return;
	}
	s_part_t *p = s_part_by_rid(self, rid);
	if (!p) {
		s_send_error(self->agent, rid, false, 0, DTX_ENOTREG, "say HELLO first");
		return;
	}
	p->last_seen_ms = dtx_now_ms();
	switch (m->type) {
	case DTX_T_VOTE: s_on_vote(self, p, m); break;
	case DTX_T_ACK: s_on_ack(self, p, m); break;
	case DTX_T_INDOUBT: s_on_indoubt(self, p, m); break;
	case DTX_T_PING: {
		dtx_msg_t pong = {.type = DTX_T_PONG};
		s_send(self->agent, rid, &pong);
		break;
	}
	default:
		dtx_warn("participant %s sent an unexpected %s", p->name, dtx_msg_type_str(m->type));
		s_send_error(self->agent, rid, false, 0, DTX_EPROTO, "unexpected message type");
	}
}

/* One frame from an agent; faults: apply injected message faults (off
 * for a frame a delay fault already held back). */
static void s_on_agent_frame(crd_t *self, const s_rid_t *rid, const void *data, size_t len,
			     bool faults)
{
	dtx_msg_t m;
	char why[256];
	int rc = dtx_msg_decode(data, len, &m, why, sizeof(why));

	if (rc) {
		dtx_warn("agent frame refused: %s", why);
		s_send_error(self->agent, rid, false, 0, rc, why);
		return;
	}
	int delay_ms, times = 1;
	switch (faults ? dtx_fault_on_recv(dtx_msg_type_str(m.type), &delay_ms) : DTX_FAULT_NONE) {
	case DTX_FAULT_DROP: times = 0; break;
	case DTX_FAULT_DUP: times = 2; break;
	case DTX_FAULT_DELAY: {
		/* Held back and handled later: frames sent after it overtake it. */
		dtx_delayed_hold(&self->delayed, delay_ms, rid, sizeof(*rid), data, len);
		times = 0;
		break;
	}
	default: break;
	}
	for (int i = 0; i < times; i++)
		s_on_agent_msg(self, rid, &m);
	dtx_msg_clear(&m);
}

static void s_on_agent(crd_t *self, const s_rid_t *rid, const void *data, size_t len)
{
	s_on_agent_frame(self, rid, data, len, true);
}

/* A frame held by a delay fault whose time has come. */
static void s_on_delayed(void *arg, const void *tag, const void *frame, size_t len)
{
	s_rid_t rid;
	memcpy(&rid, tag, sizeof(rid));
	s_on_agent_frame(arg, &rid, frame, len, false);
}

/* --- the client side -------------------------------------------------- */

/* Send every branch its PREPARE with its statements. A participant that
 * cannot be reached aborts the transaction (and may end it: tx is then
 * gone, and false is returned). */
static bool s_send_prepares(crd_t *self, s_tx_t *tx)
{
	char text[128];

	for (uint32_t i = 0; i < tx->nbranches; i++) {
		char gid[200];
		dtx_msg_t prep = {.type = DTX_T_PREPARE, .has = DTX_F_GTID | DTX_F_STMTS,
				  .gtid = gid, .nstmts = tx->req.branches[i].nstmts,
				  .stmts = tx->req.branches[i].stmts};
		if (tx->one_phase) {
			prep.has |= DTX_F_CODE;
			prep.code = DTX_PREPARE_ONE_PHASE;
		}
		/* what is left of the timeout bounds the branch's statements */
		int64_t left = tx->deadline_ms - (int64_t)(dtx_now_us() / 1000);
		prep.has |= DTX_F_TIMEOUT;
		prep.timeout_ms = left > 1 ? (uint32_t)left : 1;
		s_gid(self, tx, i, gid, sizeof(gid));
		if (tx->br[i].part < 0 || !s_send_part(self, &self->parts[tx->br[i].part], &prep)) {
			snprintf(text, sizeof(text), "participant '%s' is not connected",
				 tx->br[i].name);
			dtx_msg_clear(&tx->req);
			s_abort(self, tx, tx->br[i].name, NULL, text);
			s_maybe_end(self, tx);
			return false;
		}
		dtx_crash_point("crd.prepare_sent");
	}
	/* The statements went out with the PREPAREs; nothing sends them again.
	 * Their decoded frame (a few KiB) need not wait for the outcome. */
	dtx_msg_clear(&tx->req);
	return true;
}

/* The client waiting for tx learns its GTID: OUTCOME ACTIVE. */
static void s_reply_accepted(crd_t *self, s_tx_t *tx)
{
	char gtid[DTX_GTID_MAX];
	dtx_msg_t m = {.type = DTX_T_OUTCOME, .has = DTX_F_ID | DTX_F_CODE | DTX_F_GTID,
		       .id = tx->req_id, .code = DTX_OUTCOME_ACTIVE, .gtid = gtid};
	s_gtid(self, tx, gtid, sizeof(gtid));
	s_send(self->client, &tx->client, &m);
}

static int s_logged_fn(const wal_rec_t *recs, unsigned n, void *arg);

/* Whether records the log cannot take yet (it is failing) are still
 * waiting: then the disk alone may lack an outcome, and could presume
 * abort for work that committed. */
static bool s_log_behind(crd_t *self)
{
	return self->log_failing && (wal_pending(self->wal) || wal_flush_busy(self->wal));
}

/* The outcome of an in-flight transaction as a client may hear it. */
static int s_tx_outcome(const s_tx_t *tx)
{
	if (tx->heuristic)
		return DTX_OUTCOME_HEURISTIC;
	switch (tx->state) {
	case WAL_COMMITTING: return tx->awaiting_flush ? DTX_OUTCOME_ACTIVE : DTX_OUTCOME_COMMITTED;
	case WAL_ABORTING: return DTX_OUTCOME_ABORTED;
	default: return DTX_OUTCOME_ACTIVE;
	}
}

/*
 * A TX whose key names a transaction submitted before (its begin record
 * carries the key): it is answered with that transaction, never run
 * again. In flight and undecided, this client waits for it instead of the
 * first; decided, or finished (from the log), it hears the outcome now.
 * false: the key is new.
 */
static bool s_on_tx_again(crd_t *self, const s_rid_t *rid, const dtx_msg_t *m)
{
	char text[160], gtid_s[DTX_GTID_MAX];
	uint64_t seq;
	int rc = wal_key_find(self->wal, m->key, &seq);

	if (rc == DTX_ENOTFOUND)
		return false;
	if (rc) {
		snprintf(text, sizeof(text), "cannot look the key up in the log: %s",
			 dtx_strerror(rc));
		s_send_error(self->client, rid, true, m->id, rc, text);
		return true;
	}
	s_tx_t *tx = s_find(self, seq);
	if (tx) {
		s_gtid(self, tx, gtid_s, sizeof(gtid_s));
		dtx_info("%s: submitted again with key %s: answered with it, not run again", gtid_s,
			 m->key);
		tx->client = *rid;
		tx->req_id = m->id;
		tx->client_waiting = true;
		s_reply_accepted(self, tx);
		bool decided = (tx->state == WAL_COMMITTING && !tx->awaiting_flush) ||
			       tx->state == WAL_ABORTING;
		if (decided)
			s_reply_client(self, tx, s_tx_outcome(tx));
		return true;
	}
	/* Finished: its last records may still be queued or in the batch
	 * being written; the log answers once they are on disk (as for
	 * QUERY). A log that takes no writes cannot say yet. */
	if (!self->log_failing && s_flush(self)) {
		self->io_failed = true;
		self->stop = 1;
		return true;
	}
	if (s_log_behind(self)) {
		s_send_error(self->client, rid, true, m->id, DTX_EBUSY,
			     "submitted before with this key; its outcome is not on disk yet "
			     "(the log takes no writes): ask again");
		return true;
	}
	int out[2] = {DTX_OUTCOME_IN_DOUBT, 0};
	rc = wal_history(self->wal, seq, s_logged_fn, out);
	dtx_gtid_t g = {.epoch = (uint32_t)out[1], .seq = seq};
	snprintf(g.coord, sizeof(g.coord), "%s", self->cfg.id);
	dtx_gtid_format(&g, gtid_s, sizeof(gtid_s));
	snprintf(text, sizeof(text), "submitted before with this key: %s",
		 rc ? "its records cannot be read" : "the outcome is the log's");
	dtx_msg_t r = {.type = DTX_T_OUTCOME, .has = DTX_F_ID | DTX_F_CODE | DTX_F_TEXT,
		       .id = m->id, .code = rc ? DTX_OUTCOME_IN_DOUBT : out[0], .text = text};
	if (rc == 0) {
		r.has |= DTX_F_GTID;
		r.gtid = gtid_s;
	}
	dtx_info("%s: submitted again with key %s after it finished: %s", gtid_s, m->key,
		 dtx_outcome_str((int)r.code));
	s_send(self->client, rid, &r);
	return true;
}

static void s_on_tx(crd_t *self, const s_rid_t *rid, dtx_msg_t *m)
{
	char text[256], gtid[DTX_GTID_MAX];
	uint64_t seq;
	int rc;
	s_tx_t *tx;

	if (m->nbranches > WAL_MAX_PARTS) {
		snprintf(text, sizeof(text), "at most %d participants per transaction", WAL_MAX_PARTS);
		s_send_error(self->client, rid, true, m->id, DTX_EINVAL, text);
		return;
	}
	if ((m->has & DTX_F_KEY) && s_on_tx_again(self, rid, m))
		return;
	for (uint32_t i = 0; i < m->nbranches; i++) {
		int idx = s_part_index(self, m->branches[i].participant);
		if (idx < 0 || !self->parts[idx].allowed) {
			snprintf(text, sizeof(text), "unknown participant '%s'",
				 m->branches[i].participant);
			s_send_error(self->client, rid, true, m->id, DTX_EUNKNOWNPART, text);
			return;
		}
		if (!self->parts[idx].connected) {
			snprintf(text, sizeof(text), "participant '%s' is not connected",
				 m->branches[i].participant);
			s_send_error(self->client, rid, true, m->id, DTX_EPARTDOWN, text);
			return;
		}
	}
	if (self->draining) {
		s_send_error(self->client, rid, true, m->id, DTX_ESHUTDOWN,
			     "no new transactions are taken");
		return;
	}
	if (self->log_failing) {
		snprintf(text, sizeof(text), "the coordinator log takes no writes: %s",
			 dtx_strerror(self->log_failing));
		s_send_error(self->client, rid, true, m->id, self->log_failing, text);
		return;
	}
	if (self->ntx >= self->cfg.max_inflight) {
		s_send_error(self->client, rid, true, m->id, DTX_EBUSY,
			     "too many transactions in flight");
		return;
	}
	if ((rc = wal_next_seq(self->wal, &seq))) {
		snprintf(text, sizeof(text), "cannot allocate a transaction id: %s", dtx_strerror(rc));
		s_send_error(self->client, rid, true, m->id, rc, text);
		return;
	}
	if (!(tx = s_tx_alloc(m->nbranches))) {
		s_send_error(self->client, rid, true, m->id, DTX_ENOMEM, "out of memory");
		return;
	}
	tx->seq = seq;
	tx->epoch = wal_epoch(self->wal);
	tx->state = WAL_ACTIVE;
	uint32_t timeout = (m->has & DTX_F_TIMEOUT) && m->timeout_ms ? m->timeout_ms
								      : self->cfg.default_timeout_ms;
	if (timeout > self->cfg.max_timeout_ms)
		timeout = self->cfg.max_timeout_ms;
	tx->begun_us = dtx_now_us();
	tx->deadline_ms = tx->begun_us / 1000 + timeout;
	tx->client_waiting = true;
	tx->client = *rid;
	tx->req_id = m->id;
	for (uint32_t i = 0; i < m->nbranches; i++) {
		tx->br[i].part = s_part_index(self, m->branches[i].participant);
		snprintf(tx->br[i].name, sizeof(tx->br[i].name), "%s", m->branches[i].participant);
	}
	if (m->has & DTX_F_KEY)
		snprintf(tx->key, sizeof(tx->key), "%s", m->key);
	tx->req = *m; /* takes the statements */
	memset(m, 0, sizeof(*m));
	/* One branch: the participant decides, in one phase. The begin
	 * record says so, for recovery: such a transaction is not presumed
	 * aborted but asked about (see s_resolve). */
	tx->one_phase = tx->nbranches == 1 && self->cfg.one_phase;
	if ((rc = s_insert(self, tx))) {
		s_send_error(self->client, rid, true, tx->req_id, rc, "out of memory");
		dtx_msg_clear(&tx->req);
		free(tx);
		return;
	}
	s_gtid(self, tx, gtid, sizeof(gtid));
	dtx_debug("%s: begin, %" PRIu32 " branches", gtid, tx->nbranches);
	/* The GTID before the outcome: a client that never hears the outcome
	 * can still ask for it (QUERY), or send the TX again with its key.
	 * Only to a TX with a key: a client older than keys would take it for
	 * the outcome. */
	if (tx->key[0])
		s_reply_accepted(self, tx);
	/* A one-phase begin record is forced: its branch commits on its own
	 * and may tell the client "committed" before any later record of ours
	 * lands, so the log must know the transaction (and that it is one
	 * phase, to be asked about, never presumed aborted) before the PREPARE
	 * leaves. The two-phase begin record rides the next group commit:
	 * lost, it means abort, which is what presumed abort says anyway. */
	if ((rc = s_log(self, tx, WAL_ACTIVE, tx->one_phase ? ONE_PHASE_NOTE : NULL,
			tx->one_phase)) && tx->one_phase) {
		/* Not even queued: its branch must not be sent. Nothing ran. */
		snprintf(text, sizeof(text), "cannot queue the begin record: %s", dtx_strerror(rc));
		dtx_err("%s: %s", gtid, text);
		tx->br[0].acked = true;
		dtx_msg_clear(&tx->req);
		s_abort(self, tx, NULL, NULL, text);
		s_maybe_end(self, tx);
		return;
	}
	s_event(self, tx, gtid, "begun", NULL, "timeout %" PRIu32 " ms%s", timeout,
		tx->one_phase ? ", one phase" : "");
	dtx_crash_point("crd.begun");
	s_transition(self, tx, WAL_PREPARING, NULL);
	if (tx->one_phase) {
		/* The PREPARE waits for the group commit: s_after_flush(). */
		tx->awaiting_flush = true;
		tx->flush_next = self->flush_head;
		self->flush_head = tx;
		return;
	}
	s_send_prepares(self, tx);
}

/* The decision the records hold: the last COMMITTING or ABORTING wins
 * (an operator may have overruled an earlier one); none: presumed abort. */
static bool s_recs_commit(const wal_rec_t *recs, unsigned n)
{
	bool commit = false;
	for (unsigned i = 0; i < n; i++) {
		if (recs[i].kind == WAL_COMMITTING || recs[i].kind == WAL_COMMITTED)
			commit = true;
		else if (recs[i].kind == WAL_ABORTING || recs[i].kind == WAL_ABORTED)
			commit = false;
	}
	return commit;
}

static bool s_recs_heuristic(const wal_rec_t *recs, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (recs[i].kind == WAL_HEURISTIC)
			return true;
	return false;
}

static int s_logged_fn(const wal_rec_t *recs, unsigned n, void *arg)
{
	int *out = arg;
	out[0] = s_recs_heuristic(recs, n)  ? DTX_OUTCOME_HEURISTIC
		 : s_recs_commit(recs, n) ? DTX_OUTCOME_COMMITTED
					  : DTX_OUTCOME_ABORTED;
	out[1] = (int)recs[0].epoch;
	return 0;
}

/* What the log says of seq. Not there: presumed abort (UNKNOWN), unless
 * retention may have removed it (IN_DOUBT: it may have committed), as when
 * the log cannot be read. */
static int s_logged_outcome(crd_t *self, uint64_t seq, uint32_t epoch)
{
	int out[2] = {DTX_OUTCOME_UNKNOWN, 0};
	int rc = wal_history(self->wal, seq, s_logged_fn, out);
	if (rc == DTX_ENOTFOUND)
		return seq <= wal_pruned_hi(self->wal) ? DTX_OUTCOME_IN_DOUBT : DTX_OUTCOME_UNKNOWN;
	if (rc)
		return DTX_OUTCOME_IN_DOUBT;
	if ((uint32_t)out[1] != epoch)
		return DTX_OUTCOME_UNKNOWN;
	return out[0];
}

static int s_status_of(crd_t *self, const char *gtid_s, dtx_gtid_t *g, s_tx_t **txp)
{
	/* An outcome recorded lazily (one phase, read-only) is in memory no
	 * more: put it on disk first, or the log would presume abort. */
	if (!self->log_failing && s_flush(self)) {
		self->io_failed = true;
		self->stop = 1;
	}
	*txp = NULL;
	memset(g, 0, sizeof(*g));
	if (dtx_gtid_parse(gtid_s, g) || strcmp(g->coord, self->cfg.id) != 0)
		return DTX_OUTCOME_UNKNOWN;
	s_tx_t *tx = s_find(self, g->seq);
	if (tx && tx->epoch == g->epoch) {
		*txp = tx;
		return s_tx_outcome(tx);
	}
	return s_logged_outcome(self, g->seq, g->epoch);
}


static void s_on_query(crd_t *self, const s_rid_t *rid, const dtx_msg_t *m)
{
	dtx_gtid_t g;
	s_tx_t *tx;
	dtx_msg_t r = {.type = DTX_T_OUTCOME, .has = DTX_F_ID | DTX_F_CODE | DTX_F_GTID,
		       .id = m->id, .gtid = m->gtid};
	char text[160];

	/* "unknown" means presumed aborted: never the answer to a GTID that
	 * is not one, or not one of ours. */
	if (dtx_gtid_parse(m->gtid, &g)) {
		snprintf(text, sizeof(text), "malformed GTID '%.40s': a GTID reads "
			 "<coordinator>.<epoch>.<sequence>", m->gtid);
		s_send_error(self->client, rid, true, m->id, DTX_EINVAL, text);
		return;
	}
	if (strcmp(g.coord, self->cfg.id) != 0) {
		snprintf(text, sizeof(text), "GTID %.40s belongs to coordinator '%s'; this is '%s'",
			 m->gtid, g.coord, self->cfg.id);
		s_send_error(self->client, rid, true, m->id, DTX_ENOTFOUND, text);
		return;
	}
	r.code = s_status_of(self, m->gtid, &g, &tx);
	if (!tx && s_log_behind(self)) {
		s_send_error(self->client, rid, true, m->id, DTX_EBUSY,
			     "the log takes no writes and outcomes wait to be written: ask again");
		return;
	}
	if (tx && tx->reason[0]) {
		r.text = tx->reason;
		r.has |= DTX_F_TEXT;
	} else if (r.code == DTX_OUTCOME_IN_DOUBT) {
		r.text = "not in the log: it finished longer ago than retention_s and was "
			 "pruned, so it may have committed";
		r.has |= DTX_F_TEXT;
	}
	s_send(self->client, rid, &r);
}

static void s_on_client(crd_t *self, const s_rid_t *rid, const void *data, size_t len)
{
	dtx_msg_t m;
	char why[256];
	int rc = dtx_msg_decode(data, len, &m, why, sizeof(why));

	if (rc) {
		dtx_warn("client frame refused: %s", why);
		s_send_error(self->client, rid, (m.has & DTX_F_ID) != 0, m.id, rc, why);
		return;
	}
	if (m.type == DTX_T_TX)
		s_on_tx(self, rid, &m);
	else if (m.type == DTX_T_QUERY)
		s_on_query(self, rid, &m);
	else
		s_send_error(self->client, rid, (m.has & DTX_F_ID) != 0, m.id, DTX_EPROTO,
			     "the client endpoint takes TX and QUERY only");
	dtx_msg_clear(&m);
}

/* --- admin ------------------------------------------------------------ */

static const char *s_state_name(const s_tx_t *tx)
{
	if (tx->state == WAL_COMMITTING && tx->awaiting_flush)
		return "deciding";
	return wal_kind_str(tx->state);
}

typedef struct {
	FILE *f;
	const char *filter;
	crd_t *self;
	unsigned shown;
} s_list_t;

static int s_list_fn(const wal_rec_t *recs, unsigned n, void *arg)
{
	s_list_t *l = arg;
	const wal_rec_t *last = &recs[n - 1];
	dtx_gtid_t g = {.epoch = recs[0].epoch, .seq = recs[0].seq};
	char gtid[DTX_GTID_MAX], when[40];
	s_tx_t *tx = s_find(l->self, recs[0].seq);
	const char *state = tx ? s_state_name(tx) : wal_kind_str(last->kind);

	for (unsigned i = 0; i < n; i++)
		if (recs[i].kind == WAL_HEURISTIC && !tx)
			state = "heuristic";
	if (l->filter && *l->filter && strcmp(l->filter, state) != 0)
		return 0;
	if (l->shown++ >= 1000)
		return 1;
	snprintf(g.coord, sizeof(g.coord), "%s", l->self->cfg.id);
	dtx_gtid_format(&g, gtid, sizeof(gtid));
	dtx_wall_format(recs[0].at_us, when, sizeof(when));
	fprintf(l->f, "%-24s %-11s %s", gtid, state, when);
	for (unsigned i = 0; i < recs[0].nparts; i++)
		fprintf(l->f, "%s%s", i ? "," : " ", recs[0].parts[i]);
	fputc('\n', l->f);
	return 0;
}

static int s_show_fn(const wal_rec_t *recs, unsigned n, void *arg)
{
	FILE *f = arg;
	for (unsigned i = 0; i < n; i++) {
		char when[40];
		dtx_wall_format(recs[i].at_us, when, sizeof(when));
		fprintf(f, "  %s  %-10s", when, wal_kind_str(recs[i].kind));
		for (unsigned p = 0; p < recs[i].nparts; p++)
			fprintf(f, "%s%s", p ? "," : " participants ", recs[i].parts[p]);
		if (recs[i].note)
			fprintf(f, " %s", recs[i].note);
		fputc('\n', f);
	}
	return 0;
}

/* Orphans (branches from epochs the log never had) of gtid g: index or -1,
 * from position from on. */
static int s_orphan_find(crd_t *self, const dtx_gtid_t *g, unsigned from)
{
	for (unsigned i = from; i < self->norphans; i++) {
		const dtx_gtid_t *og = &self->orphans[i].g;
		if (og->epoch == g->epoch && og->seq == g->seq && strcmp(og->coord, g->coord) == 0)
			return (int)i;
	}
	return -1;
}

static void s_orphan_drop(crd_t *self, unsigned i)
{
	memmove(&self->orphans[i], &self->orphans[i + 1],
		(self->norphans - i - 1) * sizeof(self->orphans[0]));
	self->norphans--;
}

/* Why orphan i is in doubt, for status and list. */
static const char *s_orphan_why(const crd_t *self, unsigned i)
{
	return self->orphans[i].pruned ? "pruned from this log: it may have committed"
				      : "epoch unknown to this log";
}

/* Reset phase two so the (new) decision goes to every branch now. */
static void s_redrive(crd_t *self, s_tx_t *tx)
{
	int64_t now = dtx_now_ms();
	for (uint32_t i = 0; i < tx->nbranches; i++) {
		tx->br[i].acked = false;
		tx->br[i].backoff_ms = 0;
		s_send_decision(self, tx, i, now);
	}
}

/* "GTID commit|abort force|- WHO..." */
static int s_admin_resolve(crd_t *self, FILE *f, const char *arg)
{
	char gtid_s[DTX_GTID_MAX], verb[16], force_s[16], note[WAL_NOTE_MAX];
	int who_at = 0;
	dtx_gtid_t g;
	s_tx_t *tx;

	if (sscanf(arg, "%95s %15s %15s %n", gtid_s, verb, force_s, &who_at) != 3 ||
	    (strcmp(verb, "commit") && strcmp(verb, "abort"))) {
		fprintf(f, "usage: resolve GTID commit|abort\n");
		return DTX_EINVAL;
	}
	bool commit = strcmp(verb, "commit") == 0, force = strcmp(force_s, "force") == 0;
	const char *who = arg + who_at;
	int st = s_status_of(self, gtid_s, &g, &tx);
	snprintf(note, sizeof(note), "operator %s: resolve %s%s", who, verb, force ? " (forced)" : "");

	if (!tx) {
		int o = strcmp(g.coord, self->cfg.id) == 0 ? s_orphan_find(self, &g, 0) : -1;
		if (o >= 0) {
			/* Not in this log at all: tell each agent holding a branch. */
			for (; o >= 0; o = s_orphan_find(self, &g, (unsigned)o)) {
				const s_orphan_t *or = &self->orphans[o];
				int idx = s_part_index(self, or->part);
				dtx_msg_t d = {.type = DTX_T_DECIDE, .has = DTX_F_GTID | DTX_F_CODE,
					       .gtid = (char *)or->gid, .code = commit};
				if (idx >= 0 && s_send_part(self, &self->parts[idx], &d))
					fprintf(f, "%s: %s sent to %s\n", or->gid, verb, or->part);
				else
					fprintf(f, "%s: %s is not connected; it will report the branch "
						   "again\n", or->gid, or->part);
				dtx_notice("%s on %s: %s (heuristic decision; %s)", or->gid, or->part,
					   note, s_orphan_why(self, (unsigned)o));
				s_orphan_drop(self, (unsigned)o);
			}
			return 0;
		}
		if (st == DTX_OUTCOME_UNKNOWN || st == DTX_OUTCOME_IN_DOUBT) {
			fprintf(f, "%s: no such transaction in flight or in the log%s\n", gtid_s,
				st == DTX_OUTCOME_IN_DOUBT ? " (pruned?), and no branch of it in doubt"
							   : "");
			return DTX_ENOTFOUND;
		}
		fprintf(f, "%s: already finished (%s)\n", gtid_s, dtx_outcome_str(st));
		return DTX_ESTATE;
	}
	if (tx->awaiting_flush) {
		fprintf(f, "%s: its decision is being written: try again\n", gtid_s);
		return DTX_EBUSY;
	}
	bool decided = tx->state == WAL_COMMITTING || tx->state == WAL_ABORTING;
	bool same = (tx->state == WAL_COMMITTING) == commit;
	if (decided && same) {
		s_redrive(self, tx);
		fprintf(f, "%s: already %s: decision re-sent to every branch\n", gtid_s,
			wal_kind_str(tx->state));
		return 0;
	}
	if (decided && !force) {
		fprintf(f, "%s: the log holds %s for it; --force contradicts it (branches that "
			   "already applied it become heuristic)\n", gtid_s,
			tx->state == WAL_COMMITTING ? "COMMIT" : "ABORT");
		return DTX_ESTATE;
	}
	dtx_notice("%s: %s", gtid_s, note);
	s_log(self, tx, WAL_HEURISTIC, note, false);
	s_event(self, tx, gtid_s, "heuristic", NULL, "%s", note);
	tx->heuristic = true;
	self->n_heuristic++;
	if (commit) {
		s_decide_commit(self, tx, true, note);
		if (decided)
			for (uint32_t i = 0; i < tx->nbranches; i++)
				tx->br[i].acked = false; /* s_after_flush sends to all */
	} else if (decided) {
		s_move(self, tx, WAL_ABORTING, note, true);
		s_redrive(self, tx);
	} else {
		char reason[WAL_NOTE_MAX + 16];
		snprintf(reason, sizeof(reason), "aborted by %s", note);
		s_abort(self, tx, NULL, NULL, reason);
		s_maybe_end(self, tx);
	}
	fprintf(f, "%s: %s\n", gtid_s, note);
	return 0;
}

/* "GTID WHO..." */
static int s_admin_forget(crd_t *self, FILE *f, const char *arg)
{
	char gtid_s[DTX_GTID_MAX], note[WAL_NOTE_MAX];
	int who_at = 0;
	dtx_gtid_t g;
	s_tx_t *tx;

	if (sscanf(arg, "%95s %n", gtid_s, &who_at) != 1) {
		fprintf(f, "usage: forget GTID\n");
		return DTX_EINVAL;
	}
	int st = s_status_of(self, gtid_s, &g, &tx);
	if (!tx) {
		int o = strcmp(g.coord, self->cfg.id) == 0 ? s_orphan_find(self, &g, 0) : -1;
		if (o < 0) {
			fprintf(f, "%s: not in flight (%s)\n", gtid_s, dtx_outcome_str(st));
			return st == DTX_OUTCOME_UNKNOWN ? DTX_ENOTFOUND : DTX_ESTATE;
		}
		for (; o >= 0; o = s_orphan_find(self, &g, (unsigned)o)) {
			dtx_notice("%s@%s: forgotten by operator %s (left prepared in its database)",
				   self->orphans[o].gid, self->orphans[o].part, arg + who_at);
			fprintf(f, "%s@%s: forgotten; the branch stays prepared in its database\n",
				self->orphans[o].gid, self->orphans[o].part);
			s_orphan_drop(self, (unsigned)o);
		}
		return 0;
	}
	if (tx->state != WAL_COMMITTING && tx->state != WAL_ABORTING) {
		fprintf(f, "%s: undecided; resolve it first\n", gtid_s);
		return DTX_ESTATE;
	}
	if (tx->awaiting_flush) {
		fprintf(f, "%s: its decision is being written: try again\n", gtid_s);
		return DTX_EBUSY;
	}
	size_t off = (size_t)snprintf(note, sizeof(note), "operator %s: forgotten; unacknowledged:",
				      arg + who_at);
	for (uint32_t i = 0; i < tx->nbranches && off < sizeof(note); i++)
		if (!tx->br[i].acked)
			off += (size_t)snprintf(note + off, sizeof(note) - off, " %s", tx->br[i].name);
	dtx_notice("%s: %s", gtid_s, note);
	s_log(self, tx, WAL_HEURISTIC, note, false);
	s_event(self, tx, gtid_s, "heuristic", NULL, "%s", note);
	self->n_heuristic++;
	for (uint32_t i = 0; i < tx->nbranches; i++)
		tx->br[i].acked = true;
	tx->heuristic = true;
	fprintf(f, "%s: %s\n", gtid_s, note);
	s_maybe_end(self, tx);
	return 0;
}

/* list --state in-doubt | stuck: what recovery cannot finish alone. */
static void s_admin_list_attention(crd_t *self, FILE *f, bool in_doubt)
{
	int64_t now = dtx_now_ms();
	if (in_doubt) {
		for (unsigned i = 0; i < self->norphans; i++) {
			char id[sizeof(self->orphans[i].gid) + sizeof(self->orphans[i].part) + 1];
			snprintf(id, sizeof(id), "%s@%s", self->orphans[i].gid, self->orphans[i].part);
			fprintf(f, "%-40s in-doubt    %s\n", id,
				self->orphans[i].pruned ? "branch of a transaction pruned from this log"
						       : "branch from an epoch this log never had");
		}
		return;
	}
	for (s_tx_t *tx = self->head; tx; tx = tx->next) {
		bool unconfigured = false;
		for (uint32_t i = 0; i < tx->nbranches; i++)
			unconfigured |= tx->br[i].part < 0 && !tx->br[i].acked;
		if ((tx->state != WAL_COMMITTING && tx->state != WAL_ABORTING) ||
		    (now - tx->decided_ms < (int64_t)self->cfg.stuck_after_ms && !unconfigured))
			continue;
		char gtid[DTX_GTID_MAX];
		s_gtid(self, tx, gtid, sizeof(gtid));
		fprintf(f, "%-24s %-11s decided %" PRId64 " s ago, waiting for", gtid,
			s_state_name(tx), (now - tx->decided_ms) / 1000);
		for (uint32_t i = 0; i < tx->nbranches; i++)
			if (!tx->br[i].acked)
				fprintf(f, " %s%s", tx->br[i].name,
					tx->br[i].part < 0 ? " (not configured)" : "");
		fputc('\n', f);
	}
}

/* --- metrics ----------------------------------------------------------- */

typedef struct {
	unsigned by_state[WAL_IN_DOUBT + 1];
	unsigned in_doubt;     /* a branch prepared, the decision not yet acknowledged */
	unsigned stuck;        /* decided, unacknowledged past stuck_after_ms */
} s_gauges_t;

static void s_gauges(const crd_t *self, s_gauges_t *g)
{
	int64_t now = dtx_now_ms();
	memset(g, 0, sizeof(*g));
	for (const s_tx_t *tx = self->head; tx; tx = tx->next) {
		bool prepared = false;
		g->by_state[tx->state]++;
		for (uint32_t i = 0; i < tx->nbranches; i++)
			prepared |= tx->br[i].vote == DTX_VOTE_YES && !tx->br[i].acked;
		g->in_doubt += prepared;
		g->stuck += (tx->state == WAL_COMMITTING || tx->state == WAL_ABORTING) &&
			    now - tx->decided_ms >= (int64_t)self->cfg.stuck_after_ms;
	}
}

#define HELP(name, type, text) fprintf(f, "# HELP " name " " text "\n# TYPE " name " " type "\n")

/* The Prometheus text format (version 0.0.4). */
static void s_metrics(void *arg, FILE *f)
{
	crd_t *self = arg;
	s_gauges_t g;
	s_gauges(self, &g);
	HELP("dtx_transactions_total", "counter", "Global transactions finished, by outcome.");
	fprintf(f, "dtx_transactions_total{outcome=\"committed\"} %" PRIu64 "\n", self->n_committed);
	fprintf(f, "dtx_transactions_total{outcome=\"aborted\"} %" PRIu64 "\n", self->n_aborted);
	fprintf(f, "dtx_transactions_total{outcome=\"heuristic\"} %" PRIu64 "\n", self->n_heuristic);
	HELP("dtx_transactions_in_flight", "gauge", "Transactions not finished, by state.");
	for (int st = WAL_ACTIVE; st <= WAL_ABORTING; st++)
		if (st != WAL_COMMITTED)
			fprintf(f, "dtx_transactions_in_flight{state=\"%s\"} %u\n", wal_kind_str(st),
				g.by_state[st]);
	HELP("dtx_transactions_in_doubt", "gauge",
	     "Transactions with a prepared branch still waiting for its decision.");
	fprintf(f, "dtx_transactions_in_doubt %u\n", g.in_doubt);
	HELP("dtx_transactions_stuck", "gauge",
	     "Decided transactions unacknowledged for longer than stuck_after_ms.");
	fprintf(f, "dtx_transactions_stuck %u\n", g.stuck);
	HELP("dtx_orphan_branches", "gauge",
	     "Prepared branches from an epoch this log never had (left to the operator).");
	fprintf(f, "dtx_orphan_branches %u\n", self->norphans);
	HELP("dtx_decision_seconds", "histogram",
	     "From a client's transaction to the answer with its outcome.");
	crd_hist_write(&self->h_decision, f, "dtx_decision_seconds", "");
	HELP("dtx_phase2_retries_total", "counter", "Decisions sent again to a branch.");
	fprintf(f, "dtx_phase2_retries_total %" PRIu64 "\n", self->n_retries);
	HELP("dtx_group_commits_total", "counter", "LMDB commits of the log.");
	fprintf(f, "dtx_group_commits_total %" PRIu64 "\n", self->n_flushes);
	HELP("dtx_group_commit_decisions_total", "counter",
	     "Commit decisions made durable by group commits.");
	fprintf(f, "dtx_group_commit_decisions_total %" PRIu64 "\n", self->n_decisions);
	HELP("dtx_group_commit_records", "histogram", "Log records per group commit.");
	crd_hist_write(&self->h_batch, f, "dtx_group_commit_records", "");
	HELP("dtx_log_commit_seconds", "histogram",
	     "Time of one group commit: LMDB writes and fsyncs.");
	crd_hist_write(&self->h_commit, f, "dtx_log_commit_seconds", "");
	HELP("dtx_log_failing", "gauge", "1 while the log refuses writes (disk full, ...).");
	fprintf(f, "dtx_log_failing %d\n", self->log_failing != 0);
	HELP("dtx_participant_up", "gauge", "1 while the participant's agent is registered.");
	for (unsigned i = 0; i < self->nparts; i++)
		fprintf(f, "dtx_participant_up{participant=\"%s\"} %d\n", self->parts[i].name,
			self->parts[i].connected);
	HELP("dtx_start_time_seconds", "gauge", "When this coordinator started, Unix time.");
	fprintf(f, "dtx_start_time_seconds %.3f\n", (double)self->started_us / 1e6);
	HELP("dtx_draining", "gauge", "1 after SIGTERM, while in-flight work is finished.");
	fprintf(f, "dtx_draining %d\n", self->draining != 0);
}

static void s_ms(FILE *f, const char *what, double s)
{
	if (isinf(s))
		fprintf(f, " %s > 10 s", what);
	else
		fprintf(f, " %s <= %g ms", what, s * 1000);
}

/* The same numbers for a person (dtxctl stats). */
static void s_stats(crd_t *self, FILE *f)
{
	s_gauges_t g;
	s_gauges(self, &g);
	fprintf(f, "transactions: committed %" PRIu64 ", aborted %" PRIu64 ", heuristic %" PRIu64
		"\n", self->n_committed, self->n_aborted, self->n_heuristic);
	fprintf(f, "in flight: %zu (active %u, preparing %u, committing %u, aborting %u); "
		"in doubt %u; stuck %u; orphan branches %u\n", self->ntx,
		g.by_state[WAL_ACTIVE], g.by_state[WAL_PREPARING], g.by_state[WAL_COMMITTING],
		g.by_state[WAL_ABORTING], g.in_doubt, g.stuck, self->norphans);
	const crd_hist_t *h = &self->h_decision;
	fprintf(f, "decision latency: %" PRIu64 " answered", h->count);
	if (h->count) {
		fprintf(f, ", mean %.3f ms,", h->sum * 1000 / (double)h->count);
		s_ms(f, "p50", crd_hist_quantile(h, 0.5));
		s_ms(f, "p99", crd_hist_quantile(h, 0.99));
	}
	fprintf(f, "\nphase-two retries: %" PRIu64 "\n", self->n_retries);
	h = &self->h_commit;
	fprintf(f, "group commits: %" PRIu64 ", records %" PRIu64 " (%.1f per commit), decisions %"
		PRIu64 "", self->n_flushes, self->n_flushed,
		self->n_flushes ? (double)self->n_flushed / (double)self->n_flushes : 0.0,
		self->n_decisions);
	if (h->count) {
		fprintf(f, "; commit time mean %.3f ms,", h->sum * 1000 / (double)h->count);
		s_ms(f, "p99", crd_hist_quantile(h, 0.99));
	}
	fprintf(f, "\nlog: %s\nparticipants:", self->log_failing ? dtx_strerror(self->log_failing)
							: "taking writes");
	for (unsigned i = 0; i < self->nparts; i++)
		fprintf(f, " %s %s", self->parts[i].name, self->parts[i].connected ? "up" : "down");
	fputc('\n', f);
}

static int s_count_heuristic_fn(const wal_rec_t *recs, unsigned n, void *arg)
{
	*(unsigned *)arg += s_recs_heuristic(recs, n);
	return 0;
}

static void s_on_admin(crd_t *self, const s_rid_t *rid, const void *data, size_t len)
{
	dtx_msg_t m;
	char why[256], *text = NULL;
	size_t tlen = 0;
	int code = 0, rc = dtx_msg_decode(data, len, &m, why, sizeof(why));
	FILE *f;

	if (rc) {
		s_send_error(self->admin, rid, false, 0, rc, why);
		return;
	}
	if (m.type != DTX_T_ADMIN || !(f = open_memstream(&text, &tlen))) {
		s_send_error(self->admin, rid, (m.has & DTX_F_ID) != 0, m.id, DTX_EPROTO,
			     "the admin endpoint takes ADMIN only");
		dtx_msg_clear(&m);
		return;
	}
	const char *arg = (m.has & DTX_F_TEXT) ? m.text : "";
	/* What the operator reads from the log includes every record so far. */
	if (!self->log_failing && s_flush(self)) {
		self->io_failed = true;
		self->stop = 1;
	}
	if (strcmp(m.name, "status") == 0) {
		unsigned by_state[WAL_IN_DOUBT + 1] = {0};
		int64_t now = dtx_now_ms();
		for (s_tx_t *tx = self->head; tx; tx = tx->next)
			by_state[tx->state]++;
		fprintf(f, "coordinator %s epoch %" PRIu32 " up %" PRId64 " s\n", self->cfg.id,
			wal_epoch(self->wal), (dtx_wall_us() - self->started_us) / 1000000);
		fprintf(f, "in flight %zu:", self->ntx);
		for (int s = WAL_ACTIVE; s <= WAL_ABORTING; s++)
			if (s != WAL_COMMITTED)
				fprintf(f, " %s %u", wal_kind_str(s), by_state[s]);
		fprintf(f, "\nsince start: committed %" PRIu64 " aborted %" PRIu64
			" heuristic %" PRIu64 "\n", self->n_committed, self->n_aborted,
			self->n_heuristic);
		fprintf(f, "group commits %" PRIu64 " records %" PRIu64 " decisions %" PRIu64 "\n",
			self->n_flushes, self->n_flushed, self->n_decisions);
		for (unsigned i = 0; i < self->nparts; i++) {
			s_part_t *p = &self->parts[i];
			if (p->connected)
				fprintf(f, "participant %s up, last seen %" PRId64 " ms ago%s\n",
					p->name, now - p->last_seen_ms,
					p->allowed ? "" : " (removed from the allow-list)");
			else
				fprintf(f, "participant %s down%s\n", p->name,
					p->allowed ? "" : " (removed from the allow-list)");
		}
		unsigned heur = 0;
		wal_scan(self->wal, false, s_count_heuristic_fn, &heur);
		fprintf(f, "heuristic outcomes in the log: %u%s\n", heur,
			heur ? " (dtxctl list --state heuristic)" : "");
		for (unsigned i = 0; i < self->norphans; i++)
			fprintf(f, "in doubt (%s): %s@%s\n", s_orphan_why(self, i),
				self->orphans[i].gid, self->orphans[i].part);
	} else if (strcmp(m.name, "watch") == 0) {
		fprintf(f, "%s", self->cfg.events_endpoint);
	} else if (strcmp(m.name, "stats") == 0) {
		s_stats(self, f);
	} else if (strcmp(m.name, "resolve") == 0) {
		code = s_admin_resolve(self, f, arg);
	} else if (strcmp(m.name, "forget") == 0) {
		code = s_admin_forget(self, f, arg);
	} else if (strcmp(m.name, "list") == 0 &&
		   (strcmp(arg, "in-doubt") == 0 || strcmp(arg, "stuck") == 0)) {
		s_admin_list_attention(self, f, strcmp(arg, "in-doubt") == 0);
	} else if (strcmp(m.name, "list") == 0) {
		s_list_t l = {.f = f, .filter = arg, .self = self};
		if ((rc = wal_scan(self->wal, false, s_list_fn, &l)) && rc != 1) {
			fprintf(f, "log scan failed: %s\n", dtx_strerror(rc));
			code = rc;
		}
		if (l.shown > 1000)
			fprintf(f, "(first 1000 shown)\n");
	} else if (strcmp(m.name, "show") == 0) {
		dtx_gtid_t g;
		s_tx_t *tx;
		int st = s_status_of(self, arg, &g, &tx);
		fprintf(f, "%s %s\n", arg, tx ? s_state_name(tx) : dtx_outcome_str(st));
		if (st == DTX_OUTCOME_UNKNOWN && !tx) {
			code = DTX_ENOTFOUND;
		} else if (wal_history(self->wal, g.seq, s_show_fn, f) != 0) {
			fprintf(f, "  (no records in the log)\n");
		}
		if (tx && tx->reason[0])
			fprintf(f, "  reason: %s\n", tx->reason);
		for (uint32_t i = 0; tx && i < tx->nbranches; i++)
			fprintf(f, "  branch %u %s vote %s%s\n", i, tx->br[i].name,
				tx->br[i].vote == DTX_VOTE_YES        ? "yes"
				: tx->br[i].vote == DTX_VOTE_NO       ? "no"
				: tx->br[i].vote == DTX_VOTE_READONLY ? "read-only"
								      : "none",
				tx->br[i].acked ? " acknowledged" : "");
	} else {
		fprintf(f, "unknown admin command '%s'\n", m.name);
		code = DTX_EINVAL;
	}
	fclose(f);
	dtx_msg_t r = {.type = DTX_T_REPLY, .has = DTX_F_ID | DTX_F_CODE | DTX_F_TEXT,
		       .id = m.id, .code = code, .text = text};
	if (tlen > DTX_WIRE_MAX_STR)
		text[DTX_WIRE_MAX_STR] = '\0';
	s_send(self->admin, rid, &r);
	free(text);
	dtx_msg_clear(&m);
}

/* --- timers ----------------------------------------------------------- */

static void s_tick(crd_t *self, int64_t now)
{
	dtx_delayed_release(&self->delayed, now, s_on_delayed, self);
	for (unsigned i = 0; i < self->nparts; i++) {
		s_part_t *p = &self->parts[i];
		if (p->connected && now - p->last_seen_ms > 3 * (int64_t)self->cfg.heartbeat_ms) {
			dtx_warn("participant %s silent for %" PRId64 " ms: marked down", p->name,
				 now - p->last_seen_ms);
			p->connected = false;
		}
	}
	for (s_tx_t *tx = self->head, *next; tx; tx = next) {
		next = tx->next;
		if (tx->awaiting_flush)
			continue; /* its record is being written: s_after_flush() acts */
		if (tx->resolving) {
			if (now >= tx->br[0].next_send_ms)
				s_send_decision(self, tx, 0, now);
			continue;
		}
		if (tx->one_phase && tx->state == WAL_PREPARING && now >= tx->deadline_ms) {
			s_resolve(self, tx, "timed out waiting for the vote");
			continue;
		}
		if ((tx->state == WAL_ACTIVE || tx->state == WAL_PREPARING) &&
		    now >= tx->deadline_ms) {
			char reason[256], waiting[128] = "";
			size_t off = 0;
			for (uint32_t i = 0; i < tx->nbranches && off < sizeof(waiting) - 1; i++)
				if (tx->br[i].vote == VOTE_NONE)
					off += (size_t)snprintf(waiting + off, sizeof(waiting) - off,
								"%s%s", off ? "," : "",
								tx->br[i].name);
			snprintf(reason, sizeof(reason), "timed out waiting for the vote of %s",
				 waiting);
			s_abort(self, tx, NULL, NULL, reason);
			s_maybe_end(self, tx);
			continue;
		}
		if ((tx->state == WAL_COMMITTING || tx->state == WAL_ABORTING) &&
		    !tx->awaiting_flush)
			for (uint32_t i = 0; i < tx->nbranches; i++)
				if (!tx->br[i].acked && now >= tx->br[i].next_send_ms)
					s_send_decision(self, tx, i, now);
	}
}

/* --- recovery --------------------------------------------------------- */

static int s_recover_fn(const wal_rec_t *recs, unsigned n, void *arg)
{
	crd_t *self = arg;
	char gtid[DTX_GTID_MAX];
	dtx_gtid_t g = {.epoch = recs[0].epoch, .seq = recs[0].seq};
	bool commit = false;

	snprintf(g.coord, sizeof(g.coord), "%s", self->cfg.id);
	dtx_gtid_format(&g, gtid, sizeof(gtid));
	if (recs[0].kind != WAL_ACTIVE) {
		dtx_err("%s: log holds no begin record: cannot recover it", gtid);
		return 0;
	}
	commit = s_recs_commit(recs, n);
	s_tx_t *tx = s_tx_alloc(recs[0].nparts);
	if (!tx)
		return DTX_ENOMEM;
	tx->seq = recs[0].seq;
	tx->epoch = recs[0].epoch;
	tx->nlog = (uint8_t)n;
	tx->heuristic = s_recs_heuristic(recs, n);
	tx->decided_ms = dtx_now_ms();
	for (unsigned i = 0; i < recs[0].nparts; i++) {
		snprintf(tx->br[i].name, sizeof(tx->br[i].name), "%s", recs[0].parts[i]);
		tx->br[i].part = s_part_index(self, recs[0].parts[i]);
		if (tx->br[i].part < 0)
			dtx_err("%s: participant %s is no longer configured: branch stuck", gtid,
				recs[0].parts[i]);
	}
	if (s_insert(self, tx)) {
		free(tx);
		return DTX_ENOMEM;
	}
	bool decided = false;
	for (unsigned i = 0; i < n; i++)
		decided |= recs[i].kind == WAL_COMMITTING || recs[i].kind == WAL_ABORTING;
	if (commit) {
		tx->state = WAL_COMMITTING;
		dtx_notice("%s: recovered with a commit decision: re-driving commit", gtid);
	} else if (!decided && recs[0].note && strcmp(recs[0].note, ONE_PHASE_NOTE) == 0 &&
		   recs[0].nparts == 1) {
		/* One phase: the participant may have committed. Ask. */
		tx->state = WAL_PREPARING;
		tx->one_phase = tx->resolving = true;
		snprintf(tx->reason, sizeof(tx->reason),
			 "found undecided by recovery");
		dtx_notice("%s: recovered one-phase and undecided: asking %s", gtid,
			   tx->br[0].name);
	} else {
		bool aborting = false;
		for (unsigned i = 0; i < n; i++)
			aborting |= recs[i].kind == WAL_ABORTING;
		tx->state = WAL_ABORTING; /* the last decision, or presumed abort */
		if (!aborting)
			s_log(self, tx, WAL_ABORTING, "recovery: no decision logged, presumed abort",
			      false);
		snprintf(tx->reason, sizeof(tx->reason), "aborted by recovery");
		dtx_notice("%s: recovered undecided: aborting", gtid);
	}
	dtx_crash_point("crd.recovered_one");
	return 0;
}

/* --- the loop --------------------------------------------------------- */

static bool s_recv_routed(void *sock, s_rid_t *rid, zmq_msg_t *body)
{
	int more = 0;
	size_t ml = sizeof(more);
	int n = zmq_recv(sock, rid->b, sizeof(rid->b), ZMQ_DONTWAIT);
	if (n < 0)
		return false;
	rid->n = (size_t)n > sizeof(rid->b) ? sizeof(rid->b) : (size_t)n;
	zmq_msg_init(body);
	zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &ml);
	if (!more || zmq_msg_recv(body, sock, 0) < 0)
		return false;
	zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &ml);
	if (more) { /* one frame per message: drain and refuse the rest */
		zmq_msg_t extra;
		zmq_msg_init(&extra);
		while (more && zmq_msg_recv(&extra, sock, 0) >= 0)
			zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &ml);
		zmq_msg_close(&extra);
		zmq_msg_close(body);
		zmq_msg_init(body); /* empty body: refused as an empty frame */
	}
	return true;
}

typedef void (*s_handler_fn)(crd_t *, const s_rid_t *, const void *, size_t);

static void s_drain(crd_t *self, void *sock, s_handler_fn fn, int budget)
{
	s_rid_t rid;
	zmq_msg_t body;
	while (budget-- > 0 && s_recv_routed(sock, &rid, &body)) {
		fn(self, &rid, zmq_msg_data(&body), zmq_msg_size(&body));
		zmq_msg_close(&body);
	}
}

/* The result of a group commit of n records that held the decisions in
 * list. Nonzero only when the daemon must stop. */
static int s_flushed(crd_t *self, int rc, size_t n, s_tx_t *list)
{
	if (rc == DTX_EIO) {
		/* A write or fsync failed: the records may or may not be on
		 * disk. Like PostgreSQL, stop and let recovery read the log. */
		dtx_err("log write failed with an i/o error: stopping for recovery");
		return rc;
	}
	if (rc) {
		/* Nothing was written and the records are queued again:
		 * decisions wait, new transactions are refused, the flush is
		 * retried. */
		if (list) {
			s_tx_t *t = list;
			while (t->flush_next)
				t = t->flush_next;
			t->flush_next = self->flush_head;
			self->flush_head = list;
		}
		if (!self->log_failing)
			dtx_err("group commit failed: %s; refusing new transactions until the "
				"log takes writes again", dtx_strerror(rc));
		self->log_failing = rc;
		return 0;
	}
	if (self->log_failing)
		dtx_notice("the log takes writes again");
	self->log_failing = 0;
	if (n == 0 && !list)
		return 0; /* a commit of pruning alone */
	self->n_flushes++;
	self->n_flushed += n;
	crd_hist_observe(&self->h_batch, (double)n);
	crd_hist_observe(&self->h_commit, (double)wal_last_commit_us(self->wal) / 1e6);
	s_after_flush(self, list);
	return 0;
}

/* Whether a group commit may start now (a failing log is retried only
 * every LOG_RETRY_MS). */
static bool s_flush_allowed(crd_t *self, int64_t now)
{
	return (wal_pending(self->wal) || wal_prune_pending(self->wal)) &&
	       !(self->log_failing && now - self->last_flush_ms < LOG_RETRY_MS);
}

/* Start the group commit of everything queued in the background: the loop
 * goes on while the disk syncs, and the next batch forms meanwhile. */
static void s_flush_begin(crd_t *self)
{
	int64_t now = dtx_now_ms();
	bool started;

	if (wal_flush_busy(self->wal) || !s_flush_allowed(self, now))
		return;
	dtx_crash_point("crd.group_commit");
	self->last_flush_ms = now;
	int rc = wal_flush_start(self->wal, &started);
	if (rc) {
		if (!self->log_failing)
			dtx_err("cannot start a group commit: %s", dtx_strerror(rc));
		self->log_failing = rc;
		return;
	}
	if (started) {
		self->flushing_head = self->flush_head;
		self->flush_head = NULL;
	}
}

/* The background group commit is done (called before it is: waits). */
static int s_flush_end(crd_t *self)
{
	size_t n;
	int rc = wal_flush_finish(self->wal, &n), prune_rc;
	s_tx_t *list = self->flushing_head;
	unsigned pruned = wal_last_pruned(self->wal, &prune_rc);
	self->flushing_head = NULL;
	if (pruned)
		dtx_debug("pruned %u finished transactions from the log", pruned);
	if (prune_rc && !self->prune_failing) {
		dtx_warn("cannot prune finished transactions from the log: %s; trying again "
			 "every second", dtx_strerror(prune_rc));
		self->prune_failing = true;
	} else if (pruned && self->prune_failing) {
		dtx_notice("pruning the log works again");
		self->prune_failing = false;
	}
	return s_flushed(self, rc, n, list);
}

/* Everything queued durable now, waiting for it. */
static int s_flush(crd_t *self)
{
	int64_t now = dtx_now_ms();
	size_t n;
	int rc;

	if (wal_flush_busy(self->wal) && (rc = s_flush_end(self)))
		return rc;
	if (!s_flush_allowed(self, now))
		return 0;
	dtx_crash_point("crd.group_commit");
	rc = wal_flush(self->wal, &n);
	self->last_flush_ms = now;
	s_tx_t *list = self->flush_head;
	self->flush_head = NULL;
	return s_flushed(self, rc, n, list);
}

/* --- SIGHUP: what can change without a restart ----------------------- */

static void s_said(char *buf, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void s_said(char *buf, size_t len, const char *fmt, ...)
{
	size_t off = strlen(buf);
	va_list ap;
	if (off + 2 >= len)
		return;
	if (off)
		buf[off++] = ',', buf[off++] = ' ', buf[off] = '\0';
	va_start(ap, fmt);
	vsnprintf(buf + off, len - off, fmt, ap);
	va_end(ap);
}

/* The participant allow-list of cfg: new names are added, missing ones
 * stay known (their transactions in flight finish, their agents may still
 * connect for that) but no new transaction may name them. */
static void s_reload_participants(crd_t *self, const crd_config_t *cfg, char *chg, size_t len)
{
	for (unsigned i = 0; i < self->nparts; i++) {
		s_part_t *p = &self->parts[i];
		bool listed = false;
		for (unsigned j = 0; j < cfg->nparticipants && !listed; j++)
			listed = strcmp(cfg->participants[j], p->name) == 0;
		if (p->allowed != listed)
			s_said(chg, len, "participant %s %s", p->name, listed ? "allowed again" : "removed");
		p->allowed = listed;
	}
	for (unsigned j = 0; j < cfg->nparticipants; j++) {
		if (s_part_index(self, cfg->participants[j]) >= 0)
			continue;
		if (self->nparts == CRD_MAX_PARTICIPANTS) {
			dtx_warn("reload: participant %s not added: %d known already",
				 cfg->participants[j], CRD_MAX_PARTICIPANTS);
			continue;
		}
		s_part_t *p = &self->parts[self->nparts++];
		memset(p, 0, sizeof(*p));
		snprintf(p->name, sizeof(p->name), "%s", cfg->participants[j]);
		p->allowed = true;
		s_said(chg, len, "participant %s added", p->name);
	}
}

static void s_reload(crd_t *self)
{
	crd_config_t n, *o = &self->cfg;
	char why[1200], chg[2048] = "", kept[512] = "";

	sd_notify(0, "RELOADING=1");
	crd_config_defaults(&n);
	if (crd_config_load(&n, o->path, why, sizeof(why))) {
		dtx_err("reload refused, the configuration in use is unchanged: %s", why);
		sd_notify(0, "READY=1\nSTATUS=reload refused: the configuration has an error");
		return;
	}
	/* What the sockets, the log and the GTIDs were made with. */
#define FIXED_S(k) if (strcmp(n.k, o->k)) s_said(kept, sizeof(kept), #k)
#define FIXED_N(k) if (n.k != o->k) s_said(kept, sizeof(kept), #k)
	FIXED_S(id);
	FIXED_S(log_dir);
	FIXED_S(client_endpoint);
	FIXED_S(agent_endpoint);
	FIXED_S(admin_endpoint);
	FIXED_S(metrics_listen);
	FIXED_S(events_endpoint);
	FIXED_N(max_frame_bytes);
	FIXED_N(map_size);
#undef FIXED_S
#undef FIXED_N
#define TAKE(k, fmt) do { if (n.k != o->k) { \
		s_said(chg, sizeof(chg), #k " %" fmt " -> %" fmt, o->k, n.k); o->k = n.k; } } while (0)
	TAKE(default_timeout_ms, PRIu32);
	TAKE(max_timeout_ms, PRIu32);
	TAKE(heartbeat_ms, PRIu32);
	TAKE(lazy_flush_ms, PRIu32);
	TAKE(stuck_after_ms, PRIu32);
	TAKE(shutdown_timeout_ms, PRIu32);
	TAKE(retention_s, PRIu64);
	TAKE(max_inflight, "u");
#undef TAKE
	if (n.one_phase != o->one_phase) {
		s_said(chg, sizeof(chg), "one_phase %s", n.one_phase ? "true" : "false");
		o->one_phase = n.one_phase;
	}
	if (n.log_level != o->log_level) {
		s_said(chg, sizeof(chg), "log_level %s", dtx_log_level_str(n.log_level));
		o->log_level = n.log_level;
		dtx_log_set_level(n.log_level);
	}
	s_reload_participants(self, &n, chg, sizeof(chg));
	memcpy(o->participants, n.participants, sizeof(o->participants));
	o->nparticipants = n.nparticipants;
	dtx_notice("reloaded %s: %s", o->path, chg[0] ? chg : "nothing changed");
	if (kept[0])
		dtx_warn("reload: not changed without a restart: %s (the values in use are kept)",
			 kept);
	sd_notify(0, "READY=1\nSTATUS=configuration reloaded");
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
			   "(at most %" PRIu32 " ms)", self->ntx, self->cfg.shutdown_timeout_ms);
	}
	if (self->ntx == 0 && !wal_pending(self->wal) && !wal_flush_busy(self->wal)) {
		dtx_notice("shut down: nothing left in flight after %" PRId64 " ms",
			   now - self->drain_since_ms);
		return true;
	}
	if (now - self->drain_since_ms < (int64_t)self->cfg.shutdown_timeout_ms)
		return false;
	unsigned undecided = 0, decided = 0;
	for (s_tx_t *tx = self->head; tx; tx = tx->next)
		if (tx->state == WAL_COMMITTING || tx->state == WAL_ABORTING)
			decided++;
		else
			undecided++;
	dtx_warn("shutdown bound of %" PRIu32 " ms reached: %u decided transactions still "
		 "unacknowledged and %u undecided are left to recovery",
		 self->cfg.shutdown_timeout_ms, decided, undecided);
	return true;
}

int crd_run(crd_t *self)
{
	uint64_t wd_us = 0;
	/* Under systemd with WatchdogSec=: ping at half the interval, from the
	 * loop itself, so that a loop that hangs stops the pings. */
	if (sd_watchdog_enabled(0, &wd_us) > 0 && wd_us >= 2000)
		self->watchdog_ms = (int64_t)(wd_us / 2000);
	while (!self->stop) {
		zmq_pollitem_t items[6] = {
			{.socket = self->client, .events = ZMQ_POLLIN},
			{.socket = self->agent, .events = ZMQ_POLLIN},
			{.socket = self->admin, .events = ZMQ_POLLIN},
			{.fd = wal_flush_fd(self->wal), .events = ZMQ_POLLIN},
			{.socket = self->events, .events = ZMQ_POLLIN},
			{.fd = self->http ? crd_http_fd(self->http) : -1, .events = ZMQ_POLLIN},
		};
		int64_t now = dtx_now_ms();
		long timeout = TICK_MS;
		if (wal_pending(self->wal) && !self->log_failing && !wal_flush_busy(self->wal)) {
			long due = (long)(self->first_lazy_ms + self->cfg.lazy_flush_ms - now);
			timeout = due < 0 ? 0 : (due < timeout ? due : timeout);
		}
		if (zmq_poll(items, self->http ? 6 : 5, timeout) < 0 && errno != EINTR) {
			dtx_err("zmq_poll: %s", zmq_strerror(errno));
			return DTX_EIO;
		}
		/* First the decisions the disk has made durable: they go out. */
		if ((items[3].revents & ZMQ_POLLIN) && s_flush_end(self))
			return DTX_EIO;
		if (items[1].revents & ZMQ_POLLIN)
			s_drain(self, self->agent, s_on_agent, 1000);
		if (items[0].revents & ZMQ_POLLIN)
			s_drain(self, self->client, s_on_client, 1000);
		if (items[2].revents & ZMQ_POLLIN)
			s_drain(self, self->admin, s_on_admin, 100);
		if (items[4].revents & ZMQ_POLLIN)
			s_on_subscription(self);
		if (items[5].revents & ZMQ_POLLIN)
			crd_http_run(self->http);
		now = dtx_now_ms();
		if (self->draining && s_drained(self, now))
			break;
		if (self->reload) {
			self->reload = 0;
			s_reload(self);
		}
		if (now - self->last_tick_ms >= TICK_MS) {
			self->last_tick_ms = now;
			s_tick(self, now);
			if (self->http)
				crd_http_run(self->http); /* its idle timeouts */
		}
		if (self->watchdog_ms && now - self->last_watchdog_ms >= self->watchdog_ms) {
			self->last_watchdog_ms = now;
			sd_notify(0, "WATCHDOG=1");
		}
		/* Group commit: at once for a forced record, else when the
		 * oldest lazy record has waited lazy_flush_ms; in the
		 * background, one batch at a time. */
		if (wal_forced_pending(self->wal) || wal_prune_pending(self->wal) ||
		    (wal_pending(self->wal) &&
		     now - self->first_lazy_ms >= (int64_t)self->cfg.lazy_flush_ms))
			s_flush_begin(self);
		/* Retention: the log writer prunes, a bounded number in
		 * each group commit (a commit of its own when no record is
		 * queued), so the loop never waits on it and no decision
		 * waits long. */
		if (self->cfg.retention_s && now - self->last_prune_ms >= PRUNE_EVERY_MS) {
			self->last_prune_ms = now;
			wal_prune_later(self->wal,
					dtx_wall_us() - (int64_t)self->cfg.retention_s * 1000000);
		}
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

static void *s_bind(crd_t *self, const char *endpoint, char *why, size_t why_len)
{
	void *s = zmq_socket(self->ctx, ZMQ_ROUTER);
	int one = 1, zero = 0, hwm = 100000;
	int64_t max = (int64_t)self->cfg.max_frame_bytes;

	if (!s)
		return NULL;
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
		snprintf(self->parts[i].name, sizeof(self->parts[i].name), "%s", cfg->participants[i]);
		self->parts[i].allowed = true;
	}
	self->nparts = cfg->nparticipants;
	self->started_us = dtx_wall_us();
	crd_hist_init(&self->h_decision, s_le_decision, NLE(s_le_decision));
	crd_hist_init(&self->h_commit, s_le_commit, NLE(s_le_commit));
	crd_hist_init(&self->h_batch, s_le_batch, NLE(s_le_batch));

	if ((rc = wal_open(&wo, &self->wal, why, why_len)))
		goto fail;
	/* Recovery before any socket is bound: nothing new arrives while the
	 * log is read. */
	if ((rc = wal_scan(self->wal, true, s_recover_fn, self))) {
		snprintf(why, why_len, "recovery scan failed: %s", dtx_strerror(rc));
		goto fail;
	}
	if (self->ntx)
		dtx_notice("recovered %zu unfinished transactions", self->ntx);
	if ((rc = wal_flush(self->wal, NULL))) {
		snprintf(why, why_len, "cannot log recovery decisions: %s", dtx_strerror(rc));
		goto fail;
	}
	rc = DTX_EIO;
	if (!(self->ctx = zmq_ctx_new()))
		goto fail;
	if (!(self->client = s_bind(self, cfg->client_endpoint, why, why_len)) ||
	    !(self->agent = s_bind(self, cfg->agent_endpoint, why, why_len)) ||
	    !(self->admin = s_bind(self, cfg->admin_endpoint, why, why_len)))
		goto fail;
	if (!(self->events = s_bind_events(self, cfg->events_endpoint, why, why_len)))
		goto fail;
	if (cfg->metrics_listen[0] &&
	    (rc = crd_http_start(cfg->metrics_listen, s_metrics, self, &self->http, why, why_len)))
		goto fail;
	*out = self;
	return 0;
fail:
	crd_destroy(&self);
	return rc;
}

int crd_create_log(const crd_config_t *cfg, uint32_t *epoch, char *why, size_t why_len)
{
	wal_opts_t wo = {.dir = cfg->log_dir, .coord_id = cfg->id, .map_size = cfg->map_size,
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
		s_flush(self); /* the batch under way, then what is queued */
	while (self->head)
		s_forget(self, self->head);
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
	if (self->ctx)
		zmq_ctx_term(self->ctx);
	wal_close(&self->wal);
	free(self);
	*self_p = NULL;
}
