/*
 * pga.h — dtx-pgagent's core: the participant agent beside one PostgreSQL
 * database. Built as a convenience library that main.c and tests link.
 */
#ifndef PGA_H
#define PGA_H

#include <stddef.h>

#include "pga_config.h"

typedef struct pga pga_t;

/*
 * Create the marker table if needed (so PostgreSQL must be reachable) and
 * connect to the coordinator; the pool's connections to PostgreSQL open
 * on first use. 0 and *out (caller owns it), or DTX_EDB / DTX_EIO with why
 * set.
 */
int pga_new(const pga_config_t *cfg, pga_t **out, char *why, size_t why_len);

/* Serve until pga_stop(), then let running jobs finish and answer (5 s
 * at most). 0, or DTX_EIO. */
int pga_run(pga_t *self);

/* Ask pga_run() to return; async-signal-safe. */
void pga_stop(pga_t *self);

/* Close the connections (a job still running is abandoned: PostgreSQL
 * rolls back its open transaction, a prepared branch stays prepared) and
 * free everything. Clears *self_p. */
void pga_destroy(pga_t **self_p);

#endif
