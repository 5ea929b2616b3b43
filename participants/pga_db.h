/*
 * pga_db.h — everything dtx-pgagent says to PostgreSQL: the one place with
 * SQL text. One pga_db_t is one libpq connection, driven without blocking
 * from the agent's event loop: an operation (prepare a branch, apply a
 * decision, list the prepared branches) is started, then advanced each
 * time the connection's socket is ready, until it is done.
 */
#ifndef PGA_DB_H
#define PGA_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dtx_util.h"
#include "dtx_wire.h"
#include "pga_named.h"

typedef struct pga_db pga_db_t;

typedef enum {
	PGA_OP_PREPARE,
	PGA_OP_DECIDE,
	PGA_OP_SCAN,
	PGA_OP_PRUNE,
	PGA_OP_STEP
} pga_op_kind_t;

/* The answer to a PREPARE or a STEP when it cannot be told: a COMMIT whose
 * connection broke. No vote (no RESULT) is sent; the coordinator will
 * RESOLVE (send the step again, or probe it). */
enum { PGA_VOTE_UNKNOWN = -1, PGA_RESULT_UNKNOWN = -1 };

/*
 * One operation; the caller owns it and keeps it (and what it points to)
 * alive until it comes back from pga_db_start() or pga_db_advance().
 *
 * PREPARE: run the statements of branch gid in one local transaction,
 * insert its marker row and PREPARE TRANSACTION gid (one_phase: COMMIT
 * instead), each statement bounded by what is left until deadline_ms.
 * Whatever the branch changed in its session is reset before another job
 * runs on the connection. result: DTX_VOTE_YES (DTX_VOTE_COMMITTED), DTX_VOTE_READONLY
 * (nothing was written: committed at once), PGA_VOTE_UNKNOWN (see above),
 * or DTX_VOTE_NO with sqlstate and why set: a statement failed, a row count
 * did not match, the database is unreachable, PREPARE failed.
 *
 * DECIDE: apply decision (DTX_DECIDE_*) to gid: COMMIT PREPARED or
 * ROLLBACK PREPARED, idempotently: a branch that is gone is judged by its
 * marker row. RESOLVE rolls back like ROLLBACK but a branch found
 * committed (one phase) is its answer, not a contradiction. result:
 * DTX_ACK_DONE, DTX_ACK_COMMITTED (RESOLVE only), DTX_ACK_HEURISTIC (the
 * branch went the other way; why says how) or DTX_ACK_RETRY (the database
 * could not be asked; why says why).
 *
 * SCAN: the GIDs prepared in this database for coordinator coord, and
 * prune marker rows older than retention_s. result 0 with gids
 * (malloc'ed array of malloc'ed strings, the caller frees) and ngids set,
 * or DTX_EDB with why set.
 *
 * PRUNE: only the second half of SCAN (marker rows and barrier rows).
 * result 0; a failure is logged.
 *
 * STEP: saga step step of saga (gid is its step id), code DTX_STEP_*, in
 * one local transaction committed at once, under the barrier in
 * dtx.barrier (DESIGN.md, "Saga steps and the barrier"), each statement
 * bounded by timeout_ms (0: none). RUN: the barrier row ('a', 'd') and the
 * statements; COMPENSATE: the step fenced if it never ran ('a', 'f'), else
 * the compensation's row ('c', 'd') and the statements; PROBE (no
 * statements): fence the step if it never ran, say whether it ran. result:
 * DTX_RESULT_DONE or DTX_RESULT_FENCED (why: what the barrier said),
 * DTX_RESULT_FAILED (rolled back; sqlstate and why say why) or
 * PGA_RESULT_UNKNOWN (the connection broke during COMMIT, or the barrier
 * could not be read).
 */
typedef struct {
	pga_op_kind_t kind;
	char gid[200];
	bool one_phase;
	int64_t deadline_ms;    /* PREPARE: the global timeout (dtx_now_ms()), 0: none */
	uint32_t nstmts;
	const dtx_stmt_t *stmts;
	bool quiet;             /* PREPARE, STEP: every statement is quiet
		     * (pga_stmt_check()): DISCARD SEQUENCES after it,
		     * not the whole session reset */
	int decision;
	char coord[DTX_COORD_ID_MAX + 1];
	uint64_t retention_s;
	int step_code;          /* STEP: DTX_STEP_* */
	char saga[DTX_GID_MAX]; /* STEP: the saga's GTID */
	uint32_t step;          /* STEP: the step's index in the saga */
	uint32_t timeout_ms;    /* STEP: statement_timeout, 0: none */
	/* results */
	int result;
	char sqlstate[8];
	char why[512];
	char **gids;
	uint32_t ngids;
} pga_op_t;

/*
 * Caller owns the return value; the connection opens on first use.
 * lock_timeout_ms > 0: a branch statement waiting longer than that for a
 * lock fails (SQLSTATE 55P03) and the branch votes no. Waits across
 * databases and prepared transactions are invisible to PostgreSQL's
 * deadlock detector, so without it a distributed deadlock lasts until
 * the global timeout. max_rows, max_bytes > 0: a branch statement whose
 * result is larger votes no (its rows are counted one at a time, never
 * kept). named (borrowed, NULL: none) are the named statements, prepared
 * on every connection it opens, before its first job there, and again
 * after a reconnect.
 */
pga_db_t *pga_db_new(const char *conninfo, uint32_t lock_timeout_ms, uint64_t max_rows,
		     uint64_t max_bytes, const pga_named_t *named);

/* Closes the connection; an operation still running is abandoned (an open
 * transaction rolls back, a prepared one stays prepared). */
void pga_db_destroy(pga_db_t **self_p);

/* Create schema dtx, its marker table dtx.branches and its barrier table
 * dtx.barrier if missing, on a connection of its own, blocking. 0 or
 * DTX_EDB with why set. */
int pga_db_ensure_schema(const char *conninfo, char *why, size_t why_len);

/* Prepare every named statement once on a connection of its own,
 * blocking, to find at start one that PostgreSQL refuses (a table that is
 * not there, a parameter whose type it cannot tell). 0; DTX_ECONFIG with
 * why "path:line: statement 'x' does not prepare (42P01): ..."; DTX_EDB
 * when the database cannot be reached. */
int pga_db_check_named(const char *conninfo, const pga_named_t *named, char *why, size_t why_len);

/* Start op on a connection that runs none. Returns op when it finished at
 * once (the database cannot be reached), else NULL. */
pga_op_t *pga_db_start(pga_db_t *self, pga_op_t *op);

/* The socket to wait on while an operation runs, and whether to wait for
 * it to be writable as well as readable; -1 when idle. */
int pga_db_socket(const pga_db_t *self, bool *want_write);

/* A connection attempt past conninfo's connect_timeout gives up: returns
 * the operation, failed (database unreachable), else NULL. */
pga_op_t *pga_db_expire(pga_db_t *self, int64_t now_ms);

/* Ask PostgreSQL to cancel the statements of the prepare running here
 * (its transaction is being rolled back): the branch then votes no. Does
 * nothing when none runs. Blocks for the cancel request's own connection
 * (libpq 15 has no asynchronous one): a local round trip. */
void pga_db_cancel(pga_db_t *self);

/* Go on after the socket was ready. Returns the operation once it is
 * done, else NULL. */
pga_op_t *pga_db_advance(pga_db_t *self);

#endif
