/*
 * pga_config.h — dtx-pgagent's configuration file (INI, parsed by inih
 * through libdtx's dtx_conf from the key table in pga_config.c). Every key,
 * its default and its bounds are in etc/dtx-pgagent.conf and
 * dtx-pgagent(8).
 */
#ifndef PGA_CONFIG_H
#define PGA_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dtx_conf.h"

typedef struct {
	char name[64];              /* participant name, as the coordinator knows it */
	char coordinator[256];      /* coordinatord's agent endpoint */
	char coordinator_id[33];    /* the coordinator's id, "" to learn it from WELCOME */
	char coordinator_key[256];  /* its public key file (CURVE), or "" */
	char secret_key[256];       /* this agent's secret key file (CURVE), or "" */
	bool insecure;              /* a tcp:// coordinator without CURVE is allowed */
	char statements[256];       /* the named statements' file, or "" */
	char conninfo[1024];        /* libpq connection string */
	unsigned pool_size;         /* connections; prepares use all but one */
	uint32_t heartbeat_ms;
	uint32_t lock_timeout_ms;   /* a branch waiting longer for a lock votes no; 0: wait */
	uint64_t max_result_rows;   /* a statement returning more votes no; 0: no bound */
	uint64_t max_result_bytes;  /* likewise, the sum of its values' sizes */
	uint64_t marker_retention_s;
	uint32_t marker_prune_interval_s; /* how often old marker rows are deleted */
	int log_level;
} pga_config_t;

void pga_config_defaults(pga_config_t *cfg);
/* 0, or DTX_ECONFIG with why = "path:line: reason" (line 0 for what is
 * wrong with keys together: a tcp:// coordinator without CURVE keys, one
 * key file without the other). The files the configuration names
 * (statements, keys) are read by pga_new(), not here. */
int pga_config_load(pga_config_t *cfg, const char *path, char *why, size_t why_len);

/* The key table, ended by a NULL name (for tests: the keys' names). */
const dtx_conf_key_t *pga_config_keys(void);

#endif
