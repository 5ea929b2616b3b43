/*
 * pga_named.h — named statements: SQL defined in the agent's own
 * configuration, which a client names (with parameters) instead of
 * sending SQL text. The file is the agent's `statements` key, read once
 * at start:
 *
 *   # comment
 *   NAME NPARAMS SQL...
 *       a line that begins with a space or a tab continues the SQL above
 *
 * NAME: 1-57 characters of [A-Za-z0-9_-], once in the file; NPARAMS:
 * 0-4096, the number of $n placeholders the SQL uses (each of $1..$N).
 * Every SQL is checked as a client's would be (pga_stmt_check_named): one
 * SELECT, INSERT, UPDATE, DELETE or MERGE. The agent prepares each one on
 * every database connection it opens, as "dtx_s_NAME" (pga_db.c).
 *
 * A set is read-only once loaded; what it hands out lives as long as it.
 */
#ifndef PGA_NAMED_H
#define PGA_NAMED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dtx_wire.h"

#define PGA_NAMED_MAX_NAME 57  /* "dtx_s_" + name fits PostgreSQL's 63 bytes */
#define PGA_NAMED_MAX_STMTS 1024
#define PGA_NAMED_PREFIX "dtx_s_"

typedef struct {
	const char *name;    /* as clients send it */
	const char *pgname;  /* the prepared statement's name: "dtx_s_" + name */
	const char *sql;
	uint32_t nparams;
	bool quiet;          /* it calls no function it chooses (pga_stmt_check()) */
	unsigned line;       /* its first line in the file */
} pga_named_stmt_t;

typedef struct pga_named pga_named_t;

/*
 * Read the statements file path. 0 and *out (caller owns it), or
 * DTX_ECONFIG with why "path:line: reason" (line 0: the file as a whole:
 * unreadable, not a regular file, writable by others than its owner),
 * DTX_ENOMEM.
 */
int pga_named_load(const char *path, pga_named_t **out, char *why, size_t why_len);

/* Free the set; clears *self_p, accepts NULL. */
void pga_named_destroy(pga_named_t **self_p);

/* The file it was read from. */
const char *pga_named_path(const pga_named_t *self);

/* How many statements; the i-th (0 <= i < count). self may be NULL (none). */
uint32_t pga_named_count(const pga_named_t *self);
const pga_named_stmt_t *pga_named_at(const pga_named_t *self, uint32_t i);

/* The statement called name, or NULL. self may be NULL (none). */
const pga_named_stmt_t *pga_named_find(const pga_named_t *self, const char *name);

/*
 * Check the named entries of a branch's n statements (SQL entries are
 * pga_stmt_check()'s): each must name a statement of self and carry its
 * number of parameters. 0, or DTX_ENOTFOUND with sqlstate 26000
 * (invalid_sql_statement_name) or DTX_EINVAL with sqlstate 08P01
 * (protocol_violation), and why ("statement 2: no statement 'x' is
 * defined in this agent"); sqlstate at least 6 bytes. On 0, *quiet (NULL:
 * not asked): whether every named one is quiet.
 */
int pga_named_check(const pga_named_t *self, uint32_t n, const dtx_stmt_t *stmts, char *sqlstate,
		    char *why, size_t why_len, bool *quiet);

#endif
