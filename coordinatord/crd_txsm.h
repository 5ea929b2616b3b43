/*
 * crd_txsm.h — the global transaction's state machine.
 *
 * The protocol's moves (the operator's and recovery's are in the table):
 *
 *   NONE       -> ACTIVE                      a client's TX
 *   ACTIVE     -> PREPARING | LOGGING         LOGGING: one phase, begin record forced
 *   LOGGING    -> PREPARING | ABORTING        its group commit returned
 *   PREPARING  -> DECIDING                    every vote yes
 *              -> COMMITTED                   every branch read-only; one phase committed
 *              -> RESOLVING                   one phase, its vote not heard in time
 *              -> ABORTING                    a no, a timeout, a branch out of reach
 *   RESOLVING  -> COMMITTED | ABORTING        the participant's answer
 *   DECIDING   -> COMMITTING                  the COMMIT record is on disk
 *   COMMITTING -> COMMITTED                   every branch acknowledged
 *   ABORTING   -> ABORTED                     every branch acknowledged
 *
 * One table (crd_txsm.c) holds every legal move, who may make it (the
 * protocol, the operator, recovery) and the record it logs. crd_tx_move()
 * is the only code that changes a state, and it does what entering a
 * state means in one place: the record, the event, the client's answer,
 * phase two, and at an end state the counters and forgetting.
 *
 * The two-phase protocol (crd_twopc.c) drives this machine; a second kind
 * of global work gets its own enum, table and driver beside it, sharing
 * crd_move_t and crd_move_find().
 */
#ifndef CRD_TXSM_H
#define CRD_TXSM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
	CRD_TX_NONE = 0,    /* not yet (or no longer) a transaction: where moves start */
	CRD_TX_ACTIVE,      /* begun: its begin record queued, nothing sent */
	CRD_TX_LOGGING,     /* one phase: waits for the group commit of its forced
			 * begin record before its PREPARE may leave */
	CRD_TX_PREPARING,   /* PREPAREs sent: collecting votes */
	CRD_TX_RESOLVING,   /* one phase, its vote never heard (timed out, or found
			   * undecided by recovery): RESOLVE sent, the participant's
			   * answer is the outcome */
	CRD_TX_DECIDING,    /* COMMIT decided; its forced record is in a group commit
			  * and nobody has been told */
	CRD_TX_COMMITTING,  /* COMMIT durable: phase two, until every branch acks */
	CRD_TX_ABORTING,    /* ABORT decided (not forced: presumed abort): phase two */
	CRD_TX_COMMITTED,   /* end: every branch committed; forgotten */
	CRD_TX_ABORTED,     /* end: every branch rolled back; forgotten */
	CRD_TX__COUNT
} crd_txstate_t;

/* Who makes a move. */
enum {
	CRD_BY_PROTOCOL = 1u << 0, /* votes, acks, timeouts, group commits */
	CRD_BY_OPERATOR = 1u << 1, /* dtxctl resolve --force: may contradict a decision */
	CRD_BY_RECOVERY = 1u << 2, /* restoring a state read from the log: nothing
				    * logged, sent or told (it was, before the crash) */
};

/* How a move's record goes to the log. */
enum { CRD_REC_LAZY, CRD_REC_FORCED, CRD_REC_FORCED_ONE_PHASE };

/* One legal move of a state machine. record: the wal_kind_t it logs, or 0. */
typedef struct {
	uint8_t from, to;
	uint8_t by;         /* CRD_BY_* allowed to make it */
	uint8_t record;
	uint8_t durability; /* CRD_REC_* */
} crd_move_t;

/* The row of table[0..n) for from -> to, or NULL. */
const crd_move_t *crd_move_find(const crd_move_t *table, size_t n, int from, int to);

/* The transaction machine's table. */
extern const crd_move_t crd_tx_moves[];
extern const size_t crd_tx_nmoves;

/* "ACTIVE", "LOGGING", ... */
const char *crd_txstate_str(crd_txstate_t s);
/* End states: the transaction is forgotten on entering one. */
bool crd_txstate_ended(crd_txstate_t s);
/* Decided: COMMITTING or ABORTING, with phase two under way. */
bool crd_txstate_in_phase_two(crd_txstate_t s);
/* Waiting for a group commit (LOGGING, DECIDING): nothing about it may
 * leave the process until crd_after_flush(). */
bool crd_txstate_awaits_flush(crd_txstate_t s);
/* The log's kind a state reports as, for operators and metrics (ACTIVE,
 * PREPARING, COMMITTING or ABORTING for the states in flight). */
int crd_txstate_kind(crd_txstate_t s);
/* The name dtxctl list and show print: the kind's, "deciding" for DECIDING. */
const char *crd_txstate_shown(crd_txstate_t s);

struct crd;
struct crd_tx;

/*
 * Move tx to state to, by (one CRD_BY_*), note going into the record.
 * 0, or DTX_ESTATE when the table has no such move for by (nothing
 * changed: the caller stops), or the log's error when a forced record
 * cannot be queued (nothing changed). On entering an end state tx is
 * freed: the caller must not touch it again.
 */
int crd_tx_move(struct crd *self, struct crd_tx *tx, crd_txstate_t to, const char *note,
		unsigned by);

/* Record a heuristic outcome of tx: why (logged, counted, in the event
 * stream, and the outcome says HEURISTIC from now on). who: the
 * participant it is about, or NULL. */
void crd_tx_heuristic(struct crd *self, struct crd_tx *tx, const char *who, const char *why);

/* The outcome of an in-flight transaction as a client may hear it. */
int crd_tx_outcome(const struct crd_tx *tx);

#endif
