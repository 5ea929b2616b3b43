#include "config.h"

#include <ini.h>
#include <stdio.h>
#include <string.h>

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

typedef struct {
	pga_config_t *cfg;
	char why[512];
} s_ctx_t;

static int s_handler(void *arg, const char *section, const char *key, const char *val)
{
	s_ctx_t *c = arg;
	pga_config_t *cfg = c->cfg;
	long long v;

	if (c->why[0])
		return 0; /* inih goes on after an error: keep the first reason */
	if (strcmp(section, "agent") != 0) {
		snprintf(c->why, sizeof(c->why), "unknown section [%s]", section);
		return 0;
	}
	if (strcmp(key, "name") == 0) {
		if (!dtx_name_valid(val)) {
			snprintf(c->why, sizeof(c->why), "'name': 1-63 characters of A-Z a-z 0-9 _ -");
			return 0;
		}
		return dtx_conf_str(key, val, cfg->name, sizeof(cfg->name), c->why, sizeof(c->why));
	}
	if (strcmp(key, "coordinator") == 0)
		return dtx_conf_str(key, val, cfg->coordinator, sizeof(cfg->coordinator), c->why,
				    sizeof(c->why));
	if (strcmp(key, "conninfo") == 0)
		return dtx_conf_str(key, val, cfg->conninfo, sizeof(cfg->conninfo), c->why,
				    sizeof(c->why));
	if (strcmp(key, "log_level") == 0) {
		if ((cfg->log_level = dtx_log_level_parse(val)) < 0) {
			snprintf(c->why, sizeof(c->why),
				 "'log_level': one of err, warning, notice, info, debug");
			return 0;
		}
		return 1;
	}
	if (strcmp(key, "pool_size") == 0) {
		/* at least one connection beyond the prepares, for decisions */
		if (!dtx_conf_int(key, val, 2, 256, &v, c->why, sizeof(c->why)))
			return 0;
		cfg->pool_size = (unsigned)v;
	} else if (strcmp(key, "heartbeat_ms") == 0) {
		if (!dtx_conf_int(key, val, 50, 600000, &v, c->why, sizeof(c->why)))
			return 0;
		cfg->heartbeat_ms = (uint32_t)v;
	} else if (strcmp(key, "lock_timeout_ms") == 0) {
		if (!dtx_conf_int(key, val, 0, 3600000, &v, c->why, sizeof(c->why)))
			return 0;
		cfg->lock_timeout_ms = (uint32_t)v;
	} else if (strcmp(key, "max_result_rows") == 0) {
		if (!dtx_conf_int(key, val, 0, 1LL << 40, &v, c->why, sizeof(c->why)))
			return 0;
		cfg->max_result_rows = (uint64_t)v;
	} else if (strcmp(key, "max_result_bytes") == 0) {
		if (!dtx_conf_int(key, val, 0, 1LL << 40, &v, c->why, sizeof(c->why)))
			return 0;
		cfg->max_result_bytes = (uint64_t)v;
	} else if (strcmp(key, "marker_retention_s") == 0) {
		if (!dtx_conf_int(key, val, 60, 10LL * 365 * 86400, &v, c->why, sizeof(c->why)))
			return 0;
		cfg->marker_retention_s = (uint64_t)v;
	} else if (strcmp(key, "marker_prune_interval_s") == 0) {
		if (!dtx_conf_int(key, val, 1, 86400, &v, c->why, sizeof(c->why)))
			return 0;
		cfg->marker_prune_interval_s = (uint32_t)v;
	} else {
		snprintf(c->why, sizeof(c->why), "unknown key '%s'", key);
		return 0;
	}
	return 1;
}

int pga_config_load(pga_config_t *cfg, const char *path, char *why, size_t why_len)
{
	s_ctx_t c = {.cfg = cfg};
	int line = ini_parse(path, s_handler, &c);

	if (line < 0)
		snprintf(why, why_len, "%s:0: cannot read the file", path);
	else if (line > 0)
		snprintf(why, why_len, "%s:%d: %s", path, line, c.why[0] ? c.why : "syntax error");
	else if (!cfg->name[0])
		snprintf(why, why_len, "%s:0: 'name' is required in [agent]", path);
	else if (!cfg->conninfo[0])
		snprintf(why, why_len, "%s:0: 'conninfo' is required in [agent]", path);
	else
		return 0;
	return DTX_ECONFIG;
}
