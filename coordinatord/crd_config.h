/*
 * crd_config.h — coordinatord's configuration file (INI, parsed by inih
 * through libdtx's dtx_conf from the key table in crd_config.c). Every
 * key, its default and its bounds are in etc/coordinatord.conf and
 * coordinatord.conf(5).
 */
#ifndef CRD_CONFIG_H
#define CRD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dtx_conf.h"

#define CRD_MAX_PARTICIPANTS 64
#define CRD_MAX_CLIENTS 64
#define CRD_MAX_AGENT_KEYS CRD_MAX_PARTICIPANTS

/*
 * [client NAME]: who may submit transactions and what they may do. A
 * connection is a client's when its CURVE key is key (tcp://), or, on an
 * ipc:// endpoint, when its process runs as user.
 */
typedef struct {
	char name[64];
	char key[41];      /* Z85 public key; "" none */
	char user[64];     /* a local user's name or uid; "" none */
	long uid;          /* user resolved at load; -1 none */
	char participants[CRD_MAX_PARTICIPANTS][64]; /* "*": any of the allow-list */
	unsigned nparticipants;
	unsigned max_inflight; /* its transactions in flight at once */
	bool sql;          /* may send SQL text; false: named statements only */
} crd_client_policy_t;

/* [agent NAME]: the CURVE key that speaks for participant NAME. */
typedef struct {
	char name[64];
	char key[41];
} crd_agent_key_t;

typedef struct {
	char path[1024];             /* the file read, for reloads */
	char id[33];                 /* coordinator id, in every GTID */
	char log_dir[1024];          /* LMDB folder */
	char client_endpoint[256];
	char agent_endpoint[256];
	char admin_endpoint[256];
	char events_endpoint[256];   /* dtxctl watch's stream (XPUB) */
	char metrics_listen[128];    /* HOST:PORT on loopback; empty: no metrics */
	char participants[CRD_MAX_PARTICIPANTS][64]; /* allow-list */
	unsigned nparticipants;
	uint32_t default_timeout_ms;
	uint32_t max_timeout_ms;
	uint32_t heartbeat_ms;
	uint32_t lazy_flush_ms;      /* lazy records wait at most this long */
	bool one_phase;              /* one branch: commit it in one phase */
	uint32_t shutdown_timeout_ms; /* SIGTERM: finish in-flight work this long */
	uint32_t stuck_after_ms;     /* decided, unfinished this long: listed as stuck */
	size_t max_frame_bytes;
	size_t map_size;             /* bytes */
	uint64_t retention_s;        /* finished transactions kept this long */
	unsigned max_inflight;
	int log_level;
	char secret_key[1024];       /* the coordinator's CURVE secret key file */
	bool insecure;               /* tcp:// without CURVE allowed (tests only) */
	unsigned max_connections;    /* per endpoint */
	uint32_t handshake_timeout_ms;
	crd_client_policy_t clients[CRD_MAX_CLIENTS];
	unsigned nclients;
	crd_agent_key_t agent_keys[CRD_MAX_AGENT_KEYS];
	unsigned nagent_keys;
} crd_config_t;

/* The policy named name, or NULL. */
const crd_client_policy_t *crd_config_client(const crd_config_t *cfg, const char *name);
/* The policy of a CURVE key (Z85) or of a local uid (key NULL), or NULL. */
const crd_client_policy_t *crd_config_client_of(const crd_config_t *cfg, const char *key, long uid);
/* The participant a CURVE key speaks for, or NULL. */
const char *crd_config_agent_of(const crd_config_t *cfg, const char *key);

/* Defaults for every key. */
void crd_config_defaults(crd_config_t *cfg);

/*
 * Read path over the defaults. 0, or DTX_ECONFIG with why holding
 * "path:line: reason" (line 0 when the file cannot be read or a required
 * key is missing).
 */
int crd_config_load(crd_config_t *cfg, const char *path, char *why, size_t why_len);

/*
 * SIGHUP: fresh is the file just read (crd_config_load succeeded). Every
 * key SIGHUP may change whose value differs is copied into *inuse and said
 * in changed ("default_timeout_ms 5000 -> 1000", "one_phase false",
 * "log_level debug"); every key that needs a restart and differs is named
 * in kept (id, log_dir, the endpoints, metrics_listen, max_frame_bytes,
 * map_size_mb), its value in use kept. Items are ", "-separated and
 * appended to what the buffers hold.
 *
 * Left to the caller: participants (SIGHUP changes the allow-list, but the
 * coordinator's registry applies it, and says what changed, itself: copy
 * participants and nparticipants after that), and dtx_log_set_level() with
 * inuse->log_level (this function only changes the struct). path is not a
 * key and is never compared.
 */
void crd_config_reload(crd_config_t *inuse, const crd_config_t *fresh, char *changed,
		       size_t changed_len, char *kept, size_t kept_len);

/* The key table, ended by a NULL name (for tests: the keys' names). */
const dtx_conf_key_t *crd_config_keys(void);

#endif
