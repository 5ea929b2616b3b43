/*
 * pga_config.c — dtx-pgagent's configuration: its keys in one table (name,
 * type, bounds, field), read by libdtx's dtx_conf engine. Every key is
 * documented in dtx-pgagent(8) and in etc/dtx-pgagent.conf
 * (tests/integration/confkeys.sh checks both against this table).
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "dtx_conf.h"
#include "dtx_curve.h"
#include "dtx_util.h"
#include "dtx_wire.h"
#include "pga_config.h"

void pga_config_defaults(pga_config_t *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->coordinator, sizeof(cfg->coordinator), "tcp://127.0.0.1:7101");
	cfg->pool_size = 4;
	cfg->heartbeat_ms = 1000;
	cfg->lock_timeout_ms = 2000;
	cfg->max_result_rows = 100000;
	cfg->max_result_bytes = 16 << 20;
	cfg->marker_retention_s = 7 * 86400;
	cfg->marker_prune_interval_s = 600;
	cfg->log_level = DTX_LOG_INFO;
}

static bool s_name_ok(const char *val, char *why, size_t len)
{
	if (dtx_name_valid(val))
		return true;
	snprintf(why, len, "1-63 characters of A-Z a-z 0-9 _ -");
	return false;
}

static bool s_coord_id_ok(const char *val, char *why, size_t len)
{
	if (dtx_coord_id_valid(val))
		return true;
	snprintf(why, len, "1-32 characters of A-Z a-z 0-9 _ -");
	return false;
}

#define F(field) .off = offsetof(pga_config_t, field), .size = sizeof(((pga_config_t *)0)->field)
#define STR(name, fl, chk) {#name, DTX_CONF_STR, 0, 0, 0, F(name), 0, 0, (fl), (chk)}
#define UINT(name, lo, hi) {#name, DTX_CONF_UINT, (lo), (hi), 0, F(name), 0, 0, 0, NULL}

/*
 * The agent has no reload: every key takes effect at the next start. The
 * order is the one of the checks after reading: name is required before
 * conninfo.
 */
static const dtx_conf_key_t s_keys[] = {
	STR(name, DTX_CONF_REQUIRED, s_name_ok),
	STR(conninfo, DTX_CONF_REQUIRED, NULL),
	STR(coordinator, 0, NULL),
	STR(coordinator_id, 0, s_coord_id_ok),
	STR(coordinator_key, 0, NULL),
	STR(secret_key, 0, NULL),
	{"insecure", DTX_CONF_BOOL, 0, 0, 0, F(insecure), 0, 0, 0, NULL},
	STR(statements, 0, NULL),
	/* at least one connection beyond the prepares, for decisions */
	UINT(pool_size, 2, 256),
	UINT(heartbeat_ms, 50, 600000),
	UINT(lock_timeout_ms, 0, 3600000),
	UINT(max_result_rows, 0, 1LL << 40),
	UINT(max_result_bytes, 0, 1LL << 40),
	UINT(marker_retention_s, 60, 10LL * 365 * 86400),
	UINT(marker_prune_interval_s, 1, 86400),
	{"log_level", DTX_CONF_LEVEL, 0, 0, 0, F(log_level), 0, 0, 0, NULL},
	DTX_CONF_END,
};

#undef F
#undef STR
#undef UINT

const dtx_conf_key_t *pga_config_keys(void)
{
	return s_keys;
}

int pga_config_load(pga_config_t *cfg, const char *path, char *why, size_t why_len)
{
	int rc = dtx_conf_load(s_keys, "agent", cfg, path, why, why_len);
	if (rc)
		return rc;
	if (!cfg->coordinator_key[0] != !cfg->secret_key[0]) {
		snprintf(why, why_len,
			 "%s:0: coordinator_key and secret_key go together: set both or neither",
			 path);
		return DTX_ECONFIG;
	}
	/* Without CURVE, whoever can reach (or take over) the endpoint is
	 * the coordinator to this agent. */
	if (dtx_endpoint_remote(cfg->coordinator) && !cfg->coordinator_key[0] && !cfg->insecure) {
		snprintf(why, why_len,
			 "%s:0: a tcp:// coordinator needs coordinator_key and secret_key: without "
			 "CURVE anyone on the network could pose as the coordinator",
			 path);
		return DTX_ECONFIG;
	}
	return 0;
}
