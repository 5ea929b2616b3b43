/*
 * crd.h — coordinatord's core: one event loop over three ZeroMQ ROUTER
 * sockets (clients, agents, admin), the transaction state machine, the
 * participant registry and recovery. Built as a convenience library that
 * main.c and the tests link.
 */
#ifndef CRD_H
#define CRD_H

#include <stddef.h>

#include "crd_config.h"

typedef struct crd crd_t;

/*
 * Open the log, recover every unfinished transaction from it, bind the
 * sockets. Returns 0 and *out (caller owns it), or a DTX_E... code with why
 * filled: DTX_ELOCKED, DTX_ECRC, DTX_ELOG, DTX_EIO (cannot bind).
 */
int crd_new(const crd_config_t *cfg, crd_t **out, char *why, size_t why_len);

/*
 * Create the log for cfg's coordinator id in cfg->log_dir (coordinatord
 * --create-log): an explicit act, refused when a log is there. crd_new()
 * refuses to start without one, and on one that is damaged or emptied,
 * rather than hand out GTIDs an earlier log handed out. 0 and *epoch (its
 * first), or an error code with why filled.
 */
int crd_create_log(const crd_config_t *cfg, uint32_t *epoch, char *why, size_t why_len);

/* Serve until crd_stop(). 0 on a requested stop, DTX_EIO on a fatal log
 * failure (the process must exit and let recovery decide). */
int crd_run(crd_t *self);

/* Ask crd_run() to return; async-signal-safe. The first call drains: new
 * transactions are refused, those in flight are finished for at most
 * shutdown_timeout_ms. A second call stops at once. */
void crd_stop(crd_t *self);

/* Read the configuration file again (SIGHUP); async-signal-safe. What can
 * change at run time does (log level, timeouts, the participant
 * allow-list, ...); keys that need a restart are named in the log. */
void crd_reload(crd_t *self);

/* Flush what is queued, close sockets and the log. Clears *self_p. */
void crd_destroy(crd_t **self_p);

#endif
