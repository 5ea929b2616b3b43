/*
 * pga_db.h — everything dtx-pgagent says to PostgreSQL: the one place with
 * SQL text. One pga_db_t is one libpq connection, used by one thread.
 */
#ifndef PGA_DB_H
#define PGA_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dtx_wire.h"

typedef struct pga_db pga_db_t;

/*
 * Caller owns the return value; the connection opens on first use.
 * lock_timeout_ms > 0: a branch statement waiting longer than that for a
 * lock fails (SQLSTATE 55P03) and the branch votes no. Waits across
 * databases and prepared transactions are invisible to PostgreSQL's
 * deadlock detector, so without it a distributed deadlock lasts until
 * the global timeout.
 */
pga_db_t *pga_db_new(const char *conninfo, uint32_t lock_timeout_ms);
void pga_db_destroy(pga_db_t **self_p);

/* Create schema dtx and its marker table dtx.branches if missing.
 * 0 or DTX_EDB with why set. */
int pga_db_ensure_schema(pga_db_t *self, char *why, size_t why_len);

/* pga_db_prepare's answer when it cannot tell: a one-phase COMMIT whose
 * connection broke. No vote is sent; the coordinator will RESOLVE. */
enum { PGA_VOTE_UNKNOWN = -1 };

/*
 * Run the statements of branch gid in one local transaction, insert its
 * marker row and PREPARE TRANSACTION gid (one_phase: COMMIT instead).
 * Returns DTX_VOTE_YES (DTX_VOTE_COMMITTED), DTX_VOTE_READONLY (nothing
 * was written: committed at once), PGA_VOTE_UNKNOWN (see above), or
 * DTX_VOTE_NO with sqlstate (6 bytes) and why set: a statement failed, a
 * row count did not match, the database is unreachable, PREPARE failed.
 */
int pga_db_prepare(pga_db_t *self, const char *gid, bool one_phase, uint32_t nstmts,
		   const dtx_stmt_t *stmts, char *sqlstate, char *why, size_t why_len);

/*
 * Apply decision (DTX_DECIDE_*) to gid: COMMIT PREPARED or ROLLBACK
 * PREPARED, idempotently: a branch that is gone is judged by its marker
 * row. RESOLVE rolls back like ROLLBACK but a branch found committed (one
 * phase) is its answer, not a contradiction. Returns DTX_ACK_DONE,
 * DTX_ACK_COMMITTED (RESOLVE only), DTX_ACK_HEURISTIC (the branch went the
 * other way; why says how) or DTX_ACK_RETRY (the database could not be
 * asked; why says why).
 */
int pga_db_decide(pga_db_t *self, const char *gid, int decision, char *why, size_t why_len);

/*
 * The GIDs prepared in this database for coordinator coord_id, and prune
 * marker rows older than marker_retention_s. On 0, *gids (malloc'ed array
 * of malloc'ed strings, caller frees) and *n are set. DTX_EDB otherwise.
 */
int pga_db_scan(pga_db_t *self, const char *coord_id, uint64_t marker_retention_s, char ***gids,
		uint32_t *n, char *why, size_t why_len);

#endif
