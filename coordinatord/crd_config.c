/*
 * crd_config.c — coordinatord's configuration: its keys in one table
 * (name, type, bounds, field, whether SIGHUP changes it), read and
 * compared by libdtx's dtx_conf engine. Every key is documented in
 * coordinatord.conf(5) and in etc/coordinatord.conf (tests/integration/
 * confkeys.sh checks both against this table).
 */
#include "config.h"

#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "crd_config.h"
#include "crd_metrics.h"
#include "dtx_conf.h"
#include "dtx_curve.h"
#include "dtx_util.h"
#include "dtx_wire.h"

void crd_config_defaults(crd_config_t *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->log_dir, sizeof(cfg->log_dir), "/var/lib/dtx");
	snprintf(cfg->client_endpoint, sizeof(cfg->client_endpoint), "ipc:///run/dtx/client.sock");
	snprintf(cfg->agent_endpoint, sizeof(cfg->agent_endpoint), "ipc:///run/dtx/agent.sock");
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
	cfg->max_connections = 1024;
	cfg->handshake_timeout_ms = 5000;
}

static void s_client_defaults(void *elem)
{
	crd_client_policy_t *c = elem;
	c->uid = -1;
	c->max_inflight = 1000;
}

static bool s_id_ok(const char *val, char *why, size_t len)
{
	if (dtx_coord_id_valid(val))
		return true;
	snprintf(why, len, "1-32 characters of A-Z a-z 0-9 _ -");
	return false;
}

static bool s_listen_ok(const char *val, char *why, size_t len)
{
	struct sockaddr_storage sa;
	/* empty is the default, no endpoint; dtx_conf_str refuses it in a
	 * file, as it always has */
	return !val[0] || crd_listen_parse(val, &sa, why, len) == 0;
}

/* An ipc:// endpoint names a socket file: an abstract one (ipc://@name)
 * has no permissions, anyone on the host may connect to it. */
static bool s_ipc_path_ok(const char *val, char *why, size_t len)
{
	if (strncmp(val, "ipc://", 6) != 0)
		return true;
	if (val[6] == '@') {
		snprintf(why, len,
			 "an abstract socket (ipc://@...) has no permissions: give a "
			 "path, ipc:///run/dtx/NAME.sock");
		return false;
	}
	if (val[6] == '\0') {
		snprintf(why, len, "ipc:// wants a path, e.g. ipc:///run/dtx/NAME.sock");
		return false;
	}
	return true;
}

/* The admin and events endpoints are local only: a socket file, whose
 * directory and mode say who may connect (never TCP). */
static bool s_local_ok(const char *val, char *why, size_t len)
{
	if (strncmp(val, "ipc://", 6) != 0) {
		snprintf(why, len,
			 "local only: ipc:// with a path (e.g. ipc:///run/dtx/NAME.sock), "
			 "not tcp:// or another transport");
		return false;
	}
	return s_ipc_path_ok(val, why, len);
}

static bool s_name_ok(const char *val, char *why, size_t len)
{
	if (dtx_name_valid(val))
		return true;
	snprintf(why, len, "names are 1-63 characters of A-Z a-z 0-9 _ -");
	return false;
}

static bool s_key_ok(const char *val, char *why, size_t len)
{
	if (dtx_key_z85_valid(val))
		return true;
	snprintf(why, len,
		 "a public key: 40 characters of Z85, as dtxctl keygen writes in NAME.pub");
	return false;
}

static bool s_policy_part_ok(const char *val, char *why, size_t len)
{
	return strcmp(val, "*") == 0 || s_name_ok(val, why, len);
}

#define F(field) .off = offsetof(crd_config_t, field), .size = sizeof(((crd_config_t *)0)->field)
#define STR(name, field, fl, chk) {#name, DTX_CONF_STR, 0, 0, 0, F(field), 0, 0, (fl), (chk)}
#define UINT(name, field, lo, hi, fl)                                                              \
	{#name, DTX_CONF_UINT, (lo), (hi), 0, F(field), 0, 0, (fl), NULL}
#define R DTX_CONF_RESTART

/*
 * The order is the one of the checks after reading: id is required before
 * participants. Restart (R): what the sockets, the log and the GTIDs were
 * made with.
 */
static const dtx_conf_key_t s_keys[] = {
	STR(id, id, DTX_CONF_REQUIRED | R, s_id_ok),
	{"participants", DTX_CONF_LIST, 0, CRD_MAX_PARTICIPANTS, 0, F(participants),
	 sizeof(((crd_config_t *)0)->participants[0]), offsetof(crd_config_t, nparticipants),
	 DTX_CONF_REQUIRED | DTX_CONF_CALLER, s_name_ok},
	STR(log_dir, log_dir, R, NULL),
	STR(client_endpoint, client_endpoint, R, s_ipc_path_ok),
	STR(agent_endpoint, agent_endpoint, R, s_ipc_path_ok),
	STR(admin_endpoint, admin_endpoint, R, s_local_ok),
	STR(metrics_listen, metrics_listen, R, s_listen_ok),
	STR(events_endpoint, events_endpoint, R, s_local_ok),
	UINT(max_frame_bytes, max_frame_bytes, 1024, 64 << 20, R),
	{"map_size_mb", DTX_CONF_UINT, 1, 1 << 20, 20, F(map_size), 0, 0, R, NULL},
	UINT(default_timeout_ms, default_timeout_ms, 1, 3600000, 0),
	UINT(max_timeout_ms, max_timeout_ms, 1, 86400000, 0),
	UINT(heartbeat_ms, heartbeat_ms, 50, 600000, 0),
	UINT(lazy_flush_ms, lazy_flush_ms, 0, 10000, 0),
	UINT(stuck_after_ms, stuck_after_ms, 0, 86400000, 0),
	UINT(shutdown_timeout_ms, shutdown_timeout_ms, 0, 3600000, 0),
	UINT(retention_s, retention_s, 0, 10LL * 365 * 86400, 0),
	UINT(max_inflight, max_inflight, 1, 10000000, 0),
	{"one_phase", DTX_CONF_BOOL, 0, 0, 0, F(one_phase), 0, 0, 0, NULL},
	{"log_level", DTX_CONF_LEVEL, 0, 0, 0, F(log_level), 0, 0, 0, NULL},
	STR(secret_key, secret_key, R, NULL),
	{"insecure", DTX_CONF_BOOL, 0, 0, 0, F(insecure), 0, 0, R, NULL},
	UINT(max_connections, max_connections, 1, 1000000, R),
	UINT(handshake_timeout_ms, handshake_timeout_ms, 100, 600000, R),
	DTX_CONF_END,
};

#undef F
#define F(field)                                                                                   \
	.off = offsetof(crd_client_policy_t, field),                                               \
	.size = sizeof(((crd_client_policy_t *)0)->field)

/* [client NAME] */
static const dtx_conf_key_t s_client_keys[] = {
	STR(key, key, 0, s_key_ok),
	STR(user, user, 0, NULL),
	{"participants", DTX_CONF_LIST, 0, CRD_MAX_PARTICIPANTS, 0, F(participants),
	 sizeof(((crd_client_policy_t *)0)->participants[0]),
	 offsetof(crd_client_policy_t, nparticipants), DTX_CONF_REQUIRED, s_policy_part_ok},
	UINT(max_inflight, max_inflight, 1, 10000000, 0),
	{"sql", DTX_CONF_BOOL, 0, 0, 0, F(sql), 0, 0, 0, NULL},
	DTX_CONF_END,
};

#undef F
#define F(field)                                                                                   \
	.off = offsetof(crd_agent_key_t, field), .size = sizeof(((crd_agent_key_t *)0)->field)

/* [agent NAME] */
static const dtx_conf_key_t s_agent_keys[] = {
	STR(key, key, DTX_CONF_REQUIRED, s_key_ok),
	DTX_CONF_END,
};

static const dtx_conf_section_t s_sections[] = {
	{"client", s_client_keys, offsetof(crd_config_t, clients), sizeof(crd_client_policy_t),
	 CRD_MAX_CLIENTS, offsetof(crd_config_t, nclients), offsetof(crd_client_policy_t, name),
	 sizeof(((crd_client_policy_t *)0)->name), s_client_defaults},
	{"agent", s_agent_keys, offsetof(crd_config_t, agent_keys), sizeof(crd_agent_key_t),
	 CRD_MAX_AGENT_KEYS, offsetof(crd_config_t, nagent_keys), offsetof(crd_agent_key_t, name),
	 sizeof(((crd_agent_key_t *)0)->name), NULL},
	{.kind = NULL},
};

#undef F
#undef STR
#undef UINT
#undef R

const dtx_conf_key_t *crd_config_keys(void)
{
	return s_keys;
}

static bool s_allowed(const crd_config_t *cfg, const char *name)
{
	for (unsigned i = 0; i < cfg->nparticipants; i++)
		if (strcmp(cfg->participants[i], name) == 0)
			return true;
	return false;
}

/* A user's name or number: its uid, or -1. */
static long s_uid(const char *user)
{
	char *end;
	struct passwd *pw = getpwnam(user);
	if (pw)
		return (long)pw->pw_uid;
	long v = strtol(user, &end, 10);
	return user[0] && !*end && v >= 0 ? v : -1;
}

/* What one section cannot say alone: a tcp:// endpoint has CURVE, each
 * client is someone, each agent key is a participant's, no key twice. */
static int s_check_trust(crd_config_t *cfg, const char *path, char *why, size_t why_len)
{
	bool remote = dtx_endpoint_remote(cfg->client_endpoint) ||
		      dtx_endpoint_remote(cfg->agent_endpoint);
	if (remote && !cfg->secret_key[0] && !cfg->insecure) {
		snprintf(why, why_len,
			 "%s:0: a tcp:// client or agent endpoint needs secret_key (CURVE): "
			 "without it anyone who reaches the port could pose as an agent or a "
			 "client (insecure = true allows it, for tests)",
			 path);
		return DTX_ECONFIG;
	}
	for (unsigned i = 0; i < cfg->nclients; i++) {
		crd_client_policy_t *c = &cfg->clients[i];
		if (!c->key[0] == !c->user[0]) {
			snprintf(why, why_len,
				 "%s:0: [client %s] needs one of key (a CURVE public key, for "
				 "tcp://) or user (a local user, for ipc://)",
				 path, c->name);
			return DTX_ECONFIG;
		}
		if (c->user[0] && (c->uid = s_uid(c->user)) < 0) {
			snprintf(why, why_len, "%s:0: [client %s]: no such user '%s'", path,
				 c->name, c->user);
			return DTX_ECONFIG;
		}
		for (unsigned j = 0; j < c->nparticipants; j++)
			if (strcmp(c->participants[j], "*") &&
			    !s_allowed(cfg, c->participants[j])) {
				snprintf(why, why_len,
					 "%s:0: [client %s]: participant '%s' is not in "
					 "participants",
					 path, c->name, c->participants[j]);
				return DTX_ECONFIG;
			}
		for (unsigned j = 0; j < i; j++)
			if ((c->key[0] && strcmp(c->key, cfg->clients[j].key) == 0) ||
			    (c->uid >= 0 && c->uid == cfg->clients[j].uid)) {
				snprintf(why, why_len,
					 "%s:0: [client %s] and [client %s] are the same %s", path,
					 cfg->clients[j].name, c->name, c->key[0] ? "key" : "user");
				return DTX_ECONFIG;
			}
	}
	for (unsigned i = 0; i < cfg->nagent_keys; i++) {
		crd_agent_key_t *a = &cfg->agent_keys[i];
		if (!s_allowed(cfg, a->name)) {
			snprintf(why, why_len, "%s:0: [agent %s]: not in participants", path,
				 a->name);
			return DTX_ECONFIG;
		}
		for (unsigned j = 0; j < i; j++)
			if (strcmp(a->key, cfg->agent_keys[j].key) == 0) {
				snprintf(why, why_len,
					 "%s:0: [agent %s] and [agent %s] have the same key: a key "
					 "speaks for one participant",
					 path, cfg->agent_keys[j].name, a->name);
				return DTX_ECONFIG;
			}
		for (unsigned j = 0; j < cfg->nclients; j++)
			if (strcmp(a->key, cfg->clients[j].key) == 0) {
				snprintf(why, why_len,
					 "%s:0: [agent %s] and [client %s] have the same key", path,
					 a->name, cfg->clients[j].name);
				return DTX_ECONFIG;
			}
	}
	return 0;
}

const crd_client_policy_t *crd_config_client(const crd_config_t *cfg, const char *name)
{
	for (unsigned i = 0; i < cfg->nclients; i++)
		if (strcmp(cfg->clients[i].name, name) == 0)
			return &cfg->clients[i];
	return NULL;
}

const crd_client_policy_t *crd_config_client_of(const crd_config_t *cfg, const char *key, long uid)
{
	for (unsigned i = 0; i < cfg->nclients; i++) {
		const crd_client_policy_t *c = &cfg->clients[i];
		if (key ? strcmp(c->key, key) == 0 : (c->uid >= 0 && c->uid == uid))
			return c;
	}
	return NULL;
}

const char *crd_config_agent_of(const crd_config_t *cfg, const char *key)
{
	for (unsigned i = 0; i < cfg->nagent_keys; i++)
		if (strcmp(cfg->agent_keys[i].key, key) == 0)
			return cfg->agent_keys[i].name;
	return NULL;
}

int crd_config_load(crd_config_t *cfg, const char *path, char *why, size_t why_len)
{
	int rc;

	snprintf(cfg->path, sizeof(cfg->path), "%s", path);
	if ((rc = dtx_conf_load_sections(s_keys, "coordinator", s_sections, cfg, path, why,
					 why_len)))
		return rc;
	if (cfg->default_timeout_ms > cfg->max_timeout_ms) {
		snprintf(why, why_len, "%s:0: default_timeout_ms exceeds max_timeout_ms", path);
		return DTX_ECONFIG;
	}
	return s_check_trust(cfg, path, why, why_len);
}

void crd_config_reload(crd_config_t *inuse, const crd_config_t *fresh, char *changed,
		       size_t changed_len, char *kept, size_t kept_len)
{
	dtx_conf_reload(s_keys, inuse, fresh, changed, changed_len, kept, kept_len);
}
