/*
 * crd_int.h — what coordinatord's modules share and nothing outside
 * libcrd sees: the coordinator's state (struct crd), its in-memory records
 * (participants, branches, transactions, in-doubt branches) and each
 * module's entry points. The unit tests include it to drive the state
 * machine directly.
 *
 * The modules, each one job (coordinatord/README.md lists them):
 *
 *   crd.c          the loop, start and stop
 *   crd_table.c    the in-flight table, the participant registry, in-doubt branches
 *   crd_txsm.c     the transaction state machine: states, moves, their effects
 *   crd_twopc.c    two-phase commit: votes, decisions, phase two, timeouts
 *   crd_saga.c     sagas: their state machine, driver and recovery
 *   crd_send.c     sending: to agents (with back-off), to clients
 *   crd_log.c      records, group commit, what the log says, recovery
 *   crd_zap.c      who each connection is (ZAP), connections per endpoint
 *   crd_agents.c   the agent endpoint
 *   crd_clients.c  the client endpoint: TX and QUERY, client policies
 *   crd_admin.c    the admin endpoint: the command table
 *   crd_events.c   the event stream (dtxctl watch)
 *   crd_stats.c    counters, gauges, Prometheus text, dtxctl stats
 *   crd_reload.c   SIGHUP
 *
 * Dependencies point one way: the endpoint modules (agents, clients,
 * admin) drive twopc, which moves the state machine, which logs, sends and
 * tells the event stream. Nothing includes anything above it.
 */
#ifndef CRD_INT_H
#define CRD_INT_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crd.h"
#include "crd_metrics.h"
#include "crd_saga.h"
#include "crd_txsm.h"
#include "dtx_frame.h"
#include "dtx_util.h"
#include "dtx_wire.h"
#include "wal.h"

#define CRD_TICK_MS 20
#define CRD_ONE_PHASE_NOTE "one-phase" /* the begin record's note */

/* A participant the configuration names: its agent's connection. */
typedef struct {
	char name[64];
	bool allowed;           /* in the allow-list (a reload may remove it) */
	bool connected;
	dtx_peer_t peer;
	int64_t last_seen_ms;
} crd_part_t;

enum { CRD_VOTE_NONE = -1 };

/* One branch of a transaction: one participant's share. */
typedef struct {
	int part;               /* index into crd.parts; -1: no longer configured */
	char name[64];
	int vote;               /* CRD_VOTE_NONE or DTX_VOTE_* */
	bool acked;             /* phase two done for this branch (or none owed) */
	int64_t next_send_ms;   /* phase two: when to (re)send the decision */
	int backoff_ms;
} crd_branch_t;

/* A global transaction in flight. */
typedef struct crd_tx {
	struct crd_tx *hnext;          /* hash chain */
	struct crd_tx *prev, *next;    /* in-flight list */
	struct crd_tx *flush_next;     /* LOGGING or DECIDING: in a flush list */
	uint64_t seq;
	uint32_t epoch;
	crd_txstate_t state;           /* changed by crd_tx_move() alone */
	uint8_t nlog;                  /* records logged so far */
	/* Two properties beside the state, not states themselves: */
	bool one_phase;                /* its only branch commits on its own */
	bool heuristic;                /* a branch went against the decision, or an
			 * operator overruled it: its outcome says so */
	bool answered;                 /* the client has had an outcome once */
	int64_t begun_us;              /* when the client's TX arrived (monotonic) */
	int64_t deadline_ms;
	int64_t decided_ms;            /* when it was decided (or recovered) */
	/* the client waiting for the outcome, if any */
	bool client_waiting;
	dtx_peer_t client;
	uint64_t req_id;
	dtx_msg_t req;                 /* owns the statements until they are sent */
	char culprit[64], sqlstate[8], reason[512];
	char key[DTX_KEY_MAX + 1];     /* the client's submission key, or "" */
	int client_slot;               /* crd.client_load of its client; -1: none */
	uint32_t nbranches;
	crd_branch_t br[];
} crd_tx_t;

/* One step of a saga in flight; its definition is in crd_saga.def. */
typedef struct {
	uint8_t state;          /* crd_stepstate_t */
	bool maybe_sent;        /* it may have reached its agent: sent by this process,
			  * or before a crash (recovery cannot know) */
	bool probing;           /* the pivot: PROBE out, to learn whether it ran */
	int part;               /* index into crd.parts; -1: no longer configured */
	int backoff_ms;
	int64_t next_send_ms;   /* when to (re)send, for those that are resent */
	char *why;              /* its last failure, for stuck listings: malloc'ed, or
		    * NULL (crd_text()) */
} crd_step_t;

/* A saga in flight. */
typedef struct crd_saga {
	struct crd_saga *hnext;        /* hash chain */
	struct crd_saga *prev, *next;  /* in-flight list */
	struct crd_saga *flush_next;   /* LOGGING, DECIDING, TURNING: in a flush list */
	uint64_t seq;
	uint32_t epoch;
	crd_sagastate_t state;         /* changed by crd_saga_move() alone */
	uint8_t nlog;                  /* records logged so far */
	bool heuristic;                /* an operator resolved it */
	bool answered;
	bool client_waiting;
	bool turn_pending;             /* to be turned around once the pivot is
			    * found not to have run (it is probed) */
	int pivot;       /* the pivot's index, -1: none */
	int ncomp;       /* compensable steps: 0..ncomp-1 */
	uint32_t cursor;               /* RUNNING, FORWARD: the first step of the group
			  * under way; COMPENSATING: the highest step
			  * that may still need its compensation */
	int culprit;                   /* the step that turned it around, -1 */
	int64_t begun_us;              /* monotonic; 0: recovered */
	int64_t deadline_ms;           /* bounds the steps before the point of no return */
	int64_t since_ms;              /* when it entered FORWARD or COMPENSATING */
	uint32_t timeout_ms;
	dtx_peer_t client;
	uint64_t req_id;
	int client_slot;
	char key[DTX_KEY_MAX + 1];
	char sqlstate[8];
	char *reason;                  /* why it turned around: malloc'ed, or NULL
		       * (crd_text()); few sagas have one */
	dtx_msg_t def;                 /* the SAGA as decoded: owns the statements */
	uint32_t nsteps;
	crd_step_t st[];
} crd_saga_t;

/* A text kept only when there is one: "" for NULL. */
static inline const char *crd_text(const char *p)
{
	return p ? p : "";
}

/* A prepared branch the log cannot decide, reported by its participant.
 * Only GIDs in dtx's canonical form get here (dtx_gid_parse), so both
 * strings fit whole. */
typedef struct {
	char gid[DTX_GID_MAX];
	char part[64];
	dtx_gtid_t g;                  /* the transaction it belongs to */
	bool pruned;                   /* of a transaction retention removed */
} crd_orphan_t;

struct crd {
	crd_config_t cfg;
	wal_t *wal;
	void *ctx, *client, *agent, *admin;
	void *events;                  /* XPUB: the stream dtxctl watch reads */
	void *zap;       /* REP: the authentication handler (crd_zap.c) */
	struct {
		char domain[16];
		void *mon;       /* PAIR: the endpoint's socket monitor */
		unsigned conns;  /* its connections now */
	} watched[4];
	unsigned nwatched;
	int watchers;                  /* subscriptions on it; 0: events not made */
	volatile sig_atomic_t stop;    /* stop now */
	volatile sig_atomic_t draining; /* SIGTERM: finish what is in flight, then stop */
	volatile sig_atomic_t reload;   /* SIGHUP: read the configuration again */
	int64_t drain_since_ms;
	crd_part_t parts[CRD_MAX_PARTICIPANTS];
	unsigned nparts;
	/* Transactions in flight by client, for its policy's max_inflight:
	 * a slot per client name ever seen, never reused (a reload may
	 * rename; at most this many names are counted) */
	struct {
		char name[64];
		unsigned inflight;
	} client_load[2 * CRD_MAX_CLIENTS];
	unsigned nclient_load;
	char admin_operator[128];      /* who the admin request being served is from */
	/* in-flight transactions */
	crd_tx_t **buckets;
	size_t nbuckets, ntx;
	crd_tx_t *head;
	crd_tx_t *flush_head;          /* waiting for the next group commit */
	crd_tx_t *flushing_head;       /* waiting for the group commit under way */
	/* sagas in flight (crd_saga.c): a hash table on the sequence, a list */
	crd_saga_t **sbuckets;
	size_t nsbuckets, nsagas;
	crd_saga_t *saga_head;
	crd_saga_t *saga_flush_head, *saga_flushing_head;
	uint64_t n_completed, n_compensated, n_steps, n_compensations;
	crd_hist_t h_saga;             /* seconds from SAGA to the client's answer */
	int64_t started_us, last_flush_ms, first_lazy_ms, last_tick_ms, last_prune_ms;
	uint64_t n_committed, n_aborted, n_heuristic, n_flushes, n_flushed, n_decisions;
	/* Branches the log cannot decide, left to the operator: from an epoch
	 * the log never saw, or (pruned) of a transaction retention removed */
	crd_orphan_t *orphans;         /* any number; grown as needed */
	unsigned norphans, orphans_cap;
	int log_failing;               /* last group-commit error, 0 when fine */
	bool prune_failing;            /* retention's last pruning failed */
	dtx_delayed_t *delayed;        /* frames held by a delay fault */
	bool io_failed;                /* a flush outside the loop failed: stop */
	bool closing;                  /* crd_destroy: start nothing new */
	int64_t watchdog_ms, last_watchdog_ms; /* systemd's watchdog: ping this often */
	/* metrics (crd_stats.c), served on metrics_listen and by dtxctl stats */
	crd_http_t *http;
	uint64_t n_retries;            /* decisions sent again (phase two) */
	crd_hist_t h_decision;         /* seconds from TX to the client's answer */
	crd_hist_t h_commit;           /* seconds per log commit (writes + fsync) */
	crd_hist_t h_batch;            /* records per group commit */
};

/* --- crd_table.c: what is held in memory ------------------------------ */

crd_tx_t *crd_tx_alloc(uint32_t nbranches);
crd_tx_t *crd_tx_find(crd_t *self, uint64_t seq);
int crd_tx_insert(crd_t *self, crd_tx_t *tx);
/* Out of the table, and freed. */
void crd_tx_forget(crd_t *self, crd_tx_t *tx);
void crd_tx_gtid(const crd_t *self, const crd_tx_t *tx, char *buf, size_t len);
void crd_tx_gid(const crd_t *self, const crd_tx_t *tx, uint32_t branch, char *buf, size_t len);
/* Resolve a branch GID to one of our in-flight transactions. *ours: it
 * names this coordinator; *known: and the log has seen its epoch. */
crd_tx_t *crd_tx_by_gid(crd_t *self, const char *gid, uint32_t *branch, dtx_gtid_t *g, bool *ours,
			bool *known);
int crd_part_index(const crd_t *self, const char *name);
crd_part_t *crd_part_by_peer(crd_t *self, const dtx_peer_t *peer);
/* Leave branch gid of participant part to the operator (once). */
void crd_orphan_add(crd_t *self, const char *gid, const dtx_gtid_t *g, const char *part,
		    bool pruned);
/* The first orphan of transaction g at position from or later, or -1. */
int crd_orphan_find(const crd_t *self, const dtx_gtid_t *g, unsigned from);
void crd_orphan_drop(crd_t *self, unsigned i);
const char *crd_orphan_why(const crd_t *self, unsigned i);

/* --- crd_zap.c: who each connection is --------------------------------- */

/* Bind the ZAP handler's socket; before any other. */
int crd_zap_open(crd_t *self, char *why, size_t why_len);
/* Count sock's connections (domain: its ZAP domain), for max_connections. */
int crd_zap_watch(crd_t *self, void *sock, const char *domain, char *why, size_t why_len);
/* Read the monitors' news: every round of the loop. */
void crd_zap_tick(crd_t *self);
/* The connections of domain's endpoint now. */
unsigned crd_zap_connections(crd_t *self, const char *domain);
/* Answer at most budget waiting requests. */
void crd_zap_serve(crd_t *self, int budget);
void crd_zap_close(crd_t *self);

/* --- crd_send.c --------------------------------------------------------- */

/* false if the frame did not leave (errno says why: EHOSTUNREACH, the
 * peer is gone; EAGAIN, its queue is full). */
bool crd_send(void *sock, const dtx_peer_t *peer, const dtx_msg_t *msg);
/* To a participant; one whose connection is gone is marked down. */
bool crd_send_part(crd_t *self, crd_part_t *p, const dtx_msg_t *msg);
/* ERROR to a client or agent; has_id: echo id. */
void crd_send_error(void *sock, const dtx_peer_t *peer, bool has_id, uint64_t id, int code,
		    const char *text);
/* The outcome to the client waiting for tx, if one is. */
void crd_reply_client(crd_t *self, crd_tx_t *tx, int outcome);
/* OUTCOME ACTIVE with the GTID: the client may ask for it from now on. */
void crd_reply_accepted(crd_t *self, crd_tx_t *tx);
/* The next wait of a back-off (0.5 s, doubling to 10 s): *backoff_ms
 * updated (0: the first try) and returned. */
int crd_backoff_next(int *backoff_ms);
/* The decision (or RESOLVE) to branch i, with back-off for the next try. */
void crd_send_decision(crd_t *self, crd_tx_t *tx, uint32_t i, int64_t now);

/* --- crd_events.c ------------------------------------------------------- */

/* One event of tx (NULL: of a transaction not in flight, named by gtid);
 * made only while someone watches. */
void crd_event(crd_t *self, const crd_tx_t *tx, const char *gtid, const char *event,
	       const char *who, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* One event of a saga; step: the step it is about, or < 0. */
void crd_event_saga(crd_t *self, const crd_saga_t *sg, int step, const char *event, const char *fmt,
		    ...) __attribute__((format(printf, 5, 6)));
void crd_on_subscription(crd_t *self);

/* --- crd_log.c ---------------------------------------------------------- */

/* Queue a record of tx for the next group commit. */
int crd_log_append(crd_t *self, crd_tx_t *tx, int kind, const char *note, bool forced);
/* Put tx on the list that the next group commit's return releases. */
void crd_log_await(crd_t *self, crd_tx_t *tx);
/* Everything queued durable now (waits). Nonzero: the daemon must stop. */
int crd_flush(crd_t *self);
/* crd_flush() for a reader about to consult the log: a failure that
 * must stop the daemon is noted for the loop. */
void crd_flush_for_read(crd_t *self);
/* Start a group commit in the background, if one is due and allowed. */
void crd_flush_begin(crd_t *self);
/* The background group commit returned. Nonzero: the daemon must stop. */
int crd_flush_end(crd_t *self);
/* Whether records the log cannot take yet are waiting (it is failing):
 * the disk alone may then lack an outcome. */
bool crd_log_behind(crd_t *self);
/* Whether the log handed out GTIDs of this epoch. */
bool crd_epoch_known(crd_t *self, uint32_t epoch);
/* The outcome the log gives for a transaction not in flight (UNKNOWN:
 * presumed abort; IN_DOUBT: pruned, unreadable, or of an epoch the log
 * never had). */
int crd_logged_outcome(crd_t *self, uint64_t seq, uint32_t epoch);
/* The log's outcome and epoch of seq: 0, DTX_ENOTFOUND or a read error. */
int crd_logged_history(crd_t *self, uint64_t seq, int *outcome, uint32_t *epoch);
bool crd_recs_heuristic(const wal_rec_t *recs, unsigned n);
/* HEURISTIC and END records for a transaction no longer in flight. */
void crd_log_late_heuristic(crd_t *self, const char *part, const dtx_gtid_t *g, const char *note);
/* Load every unfinished transaction (crd_new, before any socket). */
int crd_recover(crd_t *self, char *why, size_t why_len);

/* --- crd_twopc.c -------------------------------------------------------- */

/* Abort tx: reason kept for the client, ROLLBACK to every branch. tx may
 * be gone on return (every branch was done): false then. */
bool crd_abort(crd_t *self, crd_tx_t *tx, const char *culprit, const char *sqlstate,
	       const char *reason);
/* COMMITTING or ABORTING and every branch acknowledged: the end state
 * (tx is gone then: true). */
bool crd_settle(crd_t *self, crd_tx_t *tx);
/* Every vote is in: decide. */
void crd_all_voted(crd_t *self, crd_tx_t *tx);
/* A one-phase transaction's outcome, its branch's. */
void crd_one_phase_done(crd_t *self, crd_tx_t *tx, bool committed);
/* PREPARE to every branch; false if one cannot leave (tx aborted, maybe gone). */
bool crd_send_prepares(crd_t *self, crd_tx_t *tx);
/* The group commit holding list's records returned 0. */
void crd_after_flush(crd_t *self, crd_tx_t *list);
/* Timeouts and phase-two resends. */
void crd_tick(crd_t *self, int64_t now);

/* --- crd_saga.c ---------------------------------------------------------- */

crd_saga_t *crd_saga_find(crd_t *self, uint64_t seq);
void crd_saga_gtid(const crd_t *self, const crd_saga_t *sg, char *buf, size_t len);
/* A saga's participants, each once, in the order of its steps: at most
 * max of them into parts (pointers into its definition); their number. */
uint32_t crd_saga_parts(const crd_saga_t *sg, const char **parts, uint32_t max);
/* Begin a saga the client endpoint admitted (policy, key, room): it takes
 * m's contents. slot: its client's in-flight count, or -1. */
void crd_saga_begin(crd_t *self, const dtx_peer_t *peer, dtx_msg_t *m, int slot);
/* A client sent the saga again with its key: it waits for it now. */
void crd_saga_again(crd_t *self, crd_saga_t *sg, const dtx_peer_t *peer, uint64_t req_id);
/* What a client may hear of a saga in flight (ACTIVE, HEURISTIC). */
int crd_saga_outcome(const crd_saga_t *sg);
/* A RESULT from participant p. */
void crd_saga_on_result(crd_t *self, crd_part_t *p, const dtx_msg_t *m);
/* Participant idx said HELLO: what is owed to it goes out. */
void crd_saga_on_hello(crd_t *self, int idx);
/* The group commit holding list's records returned 0. */
void crd_saga_after_flush(crd_t *self, crd_saga_t *list);
void crd_saga_tick(crd_t *self, int64_t now);
/* Unfinished saga recs[0..n) of the log, back in flight (crd_recover). */
int crd_saga_recover(crd_t *self, const wal_rec_t *recs, unsigned n);
/* The outcome a finished saga's records give. */
int crd_saga_logged_outcome(const wal_rec_t *recs, unsigned n);
/* Stuck: forward or compensating for longer than stuck_after_ms. */
bool crd_saga_stuck(const crd_t *self, const crd_saga_t *sg, int64_t now);
/* The operator's resolve: end it (commit: COMPLETED, abort: COMPENSATED,
 * or turn it around while before the pivot), logged as heuristic. */
int crd_saga_resolve(crd_t *self, crd_saga_t *sg, bool commit, const char *who, char *text,
		     size_t len);
void crd_saga_free_all(crd_t *self);

/* --- the endpoints ------------------------------------------------------ */

void crd_on_agent(crd_t *self, const dtx_peer_t *peer, const void *data, size_t len);
void crd_on_delayed(void *arg, const void *tag, const void *frame, size_t len);
void crd_on_client(crd_t *self, const dtx_peer_t *peer, const void *data, size_t len);
void crd_on_admin(crd_t *self, const dtx_peer_t *peer, const void *data, size_t len);
/* What QUERY, show and the operator's commands say of gtid_s: the
 * outcome, and *txp the transaction if in flight. */
int crd_status_of(crd_t *self, const char *gtid_s, dtx_gtid_t *g, crd_tx_t **txp);

/* --- crd_stats.c -------------------------------------------------------- */

void crd_stats_init(crd_t *self);
/* The Prometheus text format (crd_metrics_fn). */
void crd_metrics(void *arg, FILE *f);
/* The same numbers as the rows of dtxctl stats' reply (dtx_admin.h). */
struct dtx_reply;
void crd_stats_rows(crd_t *self, struct dtx_reply *r);

/* --- crd_reload.c ------------------------------------------------------- */

void crd_do_reload(crd_t *self);

#endif
