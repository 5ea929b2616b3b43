#include "config.h"

#include <ini.h>
#include <sys/socket.h>
#include <stdio.h>
#include <string.h>

#include "crd_config.h"
#include "crd_metrics.h"
#include "dtx_util.h"
#include "dtx_wire.h"

void crd_config_defaults(crd_config_t *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->log_dir, sizeof(cfg->log_dir), "/var/lib/dtx");
	snprintf(cfg->client_endpoint, sizeof(cfg->client_endpoint), "tcp://127.0.0.1:7100");
	snprintf(cfg->agent_endpoint, sizeof(cfg->agent_endpoint), "tcp://127.0.0.1:7101");
	snprintf(cfg->admin_endpoint, sizeof(cfg->admin_endpoint), "ipc:///run/dtx/admin.sock");
	snprintf(cfg->events_endpoint, sizeof(cfg->events_endpoint), "ipc:///run/dtx/events.sock");
	cfg->default_timeout_ms = 5000;
	cfg->max_timeout_ms = 60000;
	cfg->heartbeat_ms = 1000;
	cfg->lazy_flush_ms = 5;
	cfg->one_phase = true;
	cfg->stuck_after_ms = 30000;
	cfg->shutdown_timeout_ms = 10000;
	cfg->max_frame_bytes = 1 << 20;
	cfg->map_size = (size_t)1 << 30;
	cfg->retention_s = 3600;
	cfg->max_inflight = 100000;
	cfg->log_level = DTX_LOG_INFO;
}

typedef struct {
	crd_config_t *cfg;
	char *why;
	size_t why_len;
} s_ctx_t;

static int s_bad(s_ctx_t *c, const char *key, const char *reason)
{
	snprintf(c->why, c->why_len, "'%s': %s", key, reason);
	return 0; /* inih: stop, report this line */
}

#define STR(dst) dtx_conf_str(key, val, (dst), sizeof(dst), c->why, c->why_len)
#define INT(min, max) dtx_conf_int(key, val, (min), (max), &v, c->why, c->why_len)

static int s_participants(s_ctx_t *c, const char *val)
{
	char buf[4096], *save = NULL;
	crd_config_t *cfg = c->cfg;

	if (strlen(val) >= sizeof(buf))
		return s_bad(c, "participants", "too long");
	snprintf(buf, sizeof(buf), "%s", val);
	cfg->nparticipants = 0;
	for (char *t = strtok_r(buf, ", \t", &save); t; t = strtok_r(NULL, ", \t", &save)) {
		if (!dtx_name_valid(t))
			return s_bad(c, "participants",
				     "names are 1-63 characters of A-Z a-z 0-9 _ -");
		if (cfg->nparticipants == CRD_MAX_PARTICIPANTS)
			return s_bad(c, "participants", "more than 64 participants");
		for (unsigned i = 0; i < cfg->nparticipants; i++)
			if (strcmp(cfg->participants[i], t) == 0)
				return s_bad(c, "participants", "a name appears twice");
		snprintf(cfg->participants[cfg->nparticipants++], 64, "%s", t);
	}
	return 1;
}

static int s_handler(void *arg, const char *section, const char *key, const char *val)
{
	s_ctx_t *c = arg;
	crd_config_t *cfg = c->cfg;
	long long v;

	if (c->why[0])
		return 0; /* inih goes on after an error: keep the first reason */
	if (strcmp(section, "coordinator") != 0) {
		snprintf(c->why, c->why_len, "unknown section [%s]", section);
		return 0;
	}
	if (strcmp(key, "id") == 0) {
		if (!dtx_coord_id_valid(val))
			return s_bad(c, key, "1-32 characters of A-Z a-z 0-9 _ -");
		return STR(cfg->id);
	}
	if (strcmp(key, "log_dir") == 0)
		return STR(cfg->log_dir);
	if (strcmp(key, "client_endpoint") == 0)
		return STR(cfg->client_endpoint);
	if (strcmp(key, "agent_endpoint") == 0)
		return STR(cfg->agent_endpoint);
	if (strcmp(key, "admin_endpoint") == 0)
		return STR(cfg->admin_endpoint);
	if (strcmp(key, "events_endpoint") == 0)
		return STR(cfg->events_endpoint);
	if (strcmp(key, "metrics_listen") == 0) {
		struct sockaddr_storage sa;
		char why[256];
		if (val[0] && crd_listen_parse(val, &sa, why, sizeof(why)))
			return s_bad(c, key, why);
		return STR(cfg->metrics_listen);
	}
	if (strcmp(key, "participants") == 0)
		return s_participants(c, val);
	if (strcmp(key, "log_level") == 0) {
		if ((cfg->log_level = dtx_log_level_parse(val)) < 0)
			return s_bad(c, key, "one of err, warning, notice, info, debug");
		return 1;
	}
	if (strcmp(key, "one_phase") == 0) {
		if (strcmp(val, "true") && strcmp(val, "false"))
			return s_bad(c, key, "true or false");
		cfg->one_phase = strcmp(val, "true") == 0;
		return 1;
	}
	if (strcmp(key, "default_timeout_ms") == 0) {
		if (!INT(1, 3600000))
			return 0;
		cfg->default_timeout_ms = (uint32_t)v;
	} else if (strcmp(key, "max_timeout_ms") == 0) {
		if (!INT(1, 86400000))
			return 0;
		cfg->max_timeout_ms = (uint32_t)v;
	} else if (strcmp(key, "heartbeat_ms") == 0) {
		if (!INT(50, 600000))
			return 0;
		cfg->heartbeat_ms = (uint32_t)v;
	} else if (strcmp(key, "lazy_flush_ms") == 0) {
		if (!INT(0, 10000))
			return 0;
		cfg->lazy_flush_ms = (uint32_t)v;
	} else if (strcmp(key, "shutdown_timeout_ms") == 0) {
		if (!INT(0, 3600000))
			return 0;
		cfg->shutdown_timeout_ms = (uint32_t)v;
	} else if (strcmp(key, "stuck_after_ms") == 0) {
		if (!INT(0, 86400000))
			return 0;
		cfg->stuck_after_ms = (uint32_t)v;
	} else if (strcmp(key, "max_frame_bytes") == 0) {
		if (!INT(1024, 64 << 20))
			return 0;
		cfg->max_frame_bytes = (size_t)v;
	} else if (strcmp(key, "map_size_mb") == 0) {
		if (!INT(1, 1 << 20))
			return 0;
		cfg->map_size = (size_t)v << 20;
	} else if (strcmp(key, "retention_s") == 0) {
		if (!INT(0, 10LL * 365 * 86400))
			return 0;
		cfg->retention_s = (uint64_t)v;
	} else if (strcmp(key, "max_inflight") == 0) {
		if (!INT(1, 10000000))
			return 0;
		cfg->max_inflight = (unsigned)v;
	} else {
		snprintf(c->why, c->why_len, "unknown key '%s'", key);
		return 0;
	}
	return 1;
}

int crd_config_load(crd_config_t *cfg, const char *path, char *why, size_t why_len)
{
	char reason[512] = "";
	s_ctx_t c = {.cfg = cfg, .why = reason, .why_len = sizeof(reason)};
	int line;

	snprintf(cfg->path, sizeof(cfg->path), "%s", path);
	line = ini_parse(path, s_handler, &c);

	if (line < 0) {
		snprintf(why, why_len, "%s:0: cannot read the file", path);
		return DTX_ECONFIG;
	}
	if (line > 0) {
		snprintf(why, why_len, "%s:%d: %s", path, line, reason[0] ? reason : "syntax error");
		return DTX_ECONFIG;
	}
	if (!cfg->id[0]) {
		snprintf(why, why_len, "%s:0: 'id' is required in [coordinator]", path);
		return DTX_ECONFIG;
	}
	if (cfg->nparticipants == 0) {
		snprintf(why, why_len, "%s:0: 'participants' is required in [coordinator]", path);
		return DTX_ECONFIG;
	}
	if (cfg->default_timeout_ms > cfg->max_timeout_ms) {
		snprintf(why, why_len, "%s:0: default_timeout_ms exceeds max_timeout_ms", path);
		return DTX_ECONFIG;
	}
	return 0;
}
