/*
 * crd_saga.h — the saga's state machine, beside the transaction's
 * (crd_txsm.h), sharing crd_move_t and crd_move_find().
 *
 * A saga is a list of steps, each one local transaction on one
 * participant, committed at once: compensable steps (each with a
 * compensation), at most one pivot, then retriable steps. The protocol's
 * moves (the operator's and recovery's are in the table, crd_saga.c):
 *
 *   NONE         -> LOGGING        a client's SAGA; its definition forced
 *   LOGGING      -> RUNNING        the definition is on disk: steps leave
 *                -> FORWARD        ... and it has nothing to compensate
 *   RUNNING      -> FORWARD        the pivot committed
 *                -> DECIDING       no pivot: the last compensable step
 *                                  committed, that record forced
 *                -> TURNING        a step failed or fell silent, the pivot
 *                                  found not to have run: the decision to
 *                                  compensate, forced
 *   DECIDING     -> FORWARD        that record is on disk
 *   TURNING      -> COMPENSATING   the decision is on disk: compensations
 *                                  leave, in reverse order
 *   FORWARD      -> COMPLETED      every step done
 *   COMPENSATING -> COMPENSATED    every step that may have run undone
 *
 * RUNNING is before the point of no return, FORWARD after it: a saga in
 * FORWARD is never turned around, and one in COMPENSATING never goes
 * forward. The point of no return is the pivot's commit, which the
 * participant's barrier row proves (a silent pivot is asked, PROBE,
 * never presumed); a saga without a pivot forces its own record of it
 * (DECIDING), since nothing else would prove it after a crash.
 */
#ifndef CRD_SAGA_H
#define CRD_SAGA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crd_txsm.h"

typedef enum {
	CRD_SAGA_NONE = 0,    /* not yet (or no longer) a saga: where moves start */
	CRD_SAGA_LOGGING,     /* its definition forced, in a group commit: nothing sent */
	CRD_SAGA_RUNNING,     /* forward, before the point of no return */
	CRD_SAGA_DECIDING,    /* no pivot: the last compensable step done, that record
			    * forced and in a group commit */
	CRD_SAGA_FORWARD,     /* past the point of no return: forward only */
	CRD_SAGA_TURNING,     /* the decision to compensate forced, in a group commit */
	CRD_SAGA_COMPENSATING, /* compensations out, in reverse order */
	CRD_SAGA_COMPLETED,   /* end: every step done; forgotten */
	CRD_SAGA_COMPENSATED, /* end: every step that may have run compensated; forgotten */
	CRD_SAGA__COUNT
} crd_sagastate_t;

/* A step's state. A step is compensated only after it was sent; a step
 * that failed is compensated too (its compensation fences it: a copy of
 * the step still on its way can then never run). */
typedef enum {
	CRD_STEP_PENDING = 0, /* not sent (or its agent not connected) */
	CRD_STEP_SENT,        /* RUN out (or PROBE, for a pivot being resolved) */
	CRD_STEP_DONE,        /* committed */
	CRD_STEP_FAILED,      /* rolled back, or fenced: it never ran */
	CRD_STEP_COMPENSATING, /* COMPENSATE out */
	CRD_STEP_COMPENSATED, /* its compensation committed (or it was fenced) */
	CRD_STEP__COUNT
} crd_stepstate_t;

extern const crd_move_t crd_saga_moves[];
extern const size_t crd_saga_nmoves;

const char *crd_sagastate_str(crd_sagastate_t s);
const char *crd_stepstate_str(crd_stepstate_t s);
bool crd_sagastate_ended(crd_sagastate_t s);
/* Waiting for a group commit: nothing about it may leave the process. */
bool crd_sagastate_awaits_flush(crd_sagastate_t s);
/* What dtxctl list and show print: "running", "compensating", ... */
const char *crd_sagastate_shown(crd_sagastate_t s);

struct crd;
struct crd_saga;

/*
 * Move saga to state to, by (one CRD_BY_*). step: the step the move's
 * record is about (< 0: none); note goes into the record. 0, DTX_ESTATE
 * (no such move for by: nothing changed), or the log's error when a
 * forced record cannot be queued (nothing changed). On entering an end
 * state the saga is freed.
 */
int crd_saga_move(struct crd *self, struct crd_saga *saga, crd_sagastate_t to, int step,
		  const char *note, unsigned by);

#endif
