/*
 * pga_stmt.h — the check of a branch's statements before any of them is
 * sent to PostgreSQL. A branch's statements come from a client: they may
 * run only inside the transaction the agent begins for them, so each one
 * must be exactly one SELECT, INSERT, UPDATE, DELETE or MERGE, as
 * PostgreSQL's own parser (libpg_query) reads it. Transaction control,
 * SET, COPY, DO, CALL, every other utility statement, SELECT ... INTO (a
 * CREATE TABLE), an empty entry, several statements in one entry and
 * anything the parser refuses are refused.
 *
 * This is the first of the agent's lines of containment; pga_db.c holds
 * the others (the transaction guard before PREPARE, the session reset
 * after a branch, the timeouts, the result bound), because a SELECT can
 * still call functions that no parse tree tells apart.
 */
#ifndef PGA_STMT_H
#define PGA_STMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dtx_wire.h"

/* The most parameters a named statement may declare: as many as a
 * statement may carry on the wire. */
#define PGA_STMT_MAX_PARAMS 4096

/*
 * Check the n statements of a branch (named ones, stmts[i].statement set,
 * are skipped: they were checked when the agent read them). 0 when every one is accepted; else
 * DTX_EINVAL with why ("statement 2 refused: COMMIT is transaction
 * control; ...", statements counted from 1) and sqlstate (42601: the
 * parser refused it, 0A000: a kind of statement a branch may not run;
 * at least 6 bytes) set. DTX_ENOMEM when out of memory (why set).
 * quiet (NULL: not asked): on 0, whether every SQL statement is quiet: it
 * calls no function its text chooses (no f(...), (x).f, t.f,
 * OPERATOR(s.op), ORDER BY USING, TABLESAMPLE, nor a pg_* or
 * information_schema relation such as pg_settings, whose rule calls
 * set_config()): only the database owner's triggers, defaults and rules
 * run, and the agent ends its branch with DISCARD SEQUENCES alone.
 */
int pga_stmt_check(uint32_t n, const dtx_stmt_t *stmts, char *sqlstate, char *why, size_t why_len,
		   bool *quiet);

/*
 * Check the SQL of a named statement, as the agent reads its statements
 * file: the same containment as a branch's SQL, and its placeholders must
 * be exactly $1..$nparams (each used: PostgreSQL must be able to tell
 * every parameter's type). 0, or DTX_EINVAL / DTX_ENOMEM with why
 * ("refused: COPY is a utility statement; ..."); on 0, *quiet (NULL: not
 * asked) as pga_stmt_check() says.
 */
int pga_stmt_check_named(const char *sql, uint32_t nparams, char *why, size_t why_len, bool *quiet);

#endif
