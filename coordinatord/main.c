/*
 * coordinatord — the dtx transaction coordinator daemon. What every dtx
 * daemon does at start and exit is in libdtx's dtx_daemon; here only what
 * the coordinator adds: --create-log, SIGHUP, and its loop.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#include "crd.h"
#include "dtx_daemon.h"
#include "dtx_util.h"

static crd_t *s_crd;

static void s_on_signal(int sig)
{
	(void)sig;
	if (s_crd)
		crd_stop(s_crd);
}

/* SIGHUP before crd_new() is ignored: the file was just read. */
static void s_on_hup(int sig)
{
	(void)sig;
	if (s_crd)
		crd_reload(s_crd);
}

static int s_load(void *cfg, const char *path, char *why, size_t why_len)
{
	crd_config_defaults(cfg);
	return crd_config_load(cfg, path, why, why_len);
}

/*
 * The folder of each ipc:// endpoint the coordinator binds must be its own
 * and writable by nobody else (dtx_dir_check): the socket's permissions
 * are all that keeps others off the admin socket, and libzmq replaces
 * whatever is at the path. (Abstract ipc://@ names are refused when the
 * file is read.) 0, or 1 with why said.
 */
static int s_check_ipc_dirs(const crd_config_t *cfg)
{
	const struct {
		const char *key, *endpoint;
	} eps[] = {
		{"client_endpoint", cfg->client_endpoint},
		{"agent_endpoint", cfg->agent_endpoint},
		{"admin_endpoint", cfg->admin_endpoint},
		{"events_endpoint", cfg->events_endpoint},
	};
	char dir[sizeof(cfg->admin_endpoint)], what[64], why[1024];

	for (size_t i = 0; i < sizeof(eps) / sizeof(eps[0]); i++) {
		const char *p = eps[i].endpoint, *slash;
		if (strncmp(p, "ipc://", 6) != 0)
			continue;
		p += 6;
		if (!(slash = strrchr(p, '/')))
			snprintf(dir, sizeof(dir), ".");
		else if (slash == p)
			snprintf(dir, sizeof(dir), "/");
		else
			snprintf(dir, sizeof(dir), "%.*s", (int)(slash - p), p);
		snprintf(what, sizeof(what), "%s's directory", eps[i].key);
		if (dtx_dir_check(dir, what, why, sizeof(why))) {
			dtx_err("cannot start: %s", why);
			return 1;
		}
	}
	return 0;
}

/* --create-log: make the log of a new coordinator, then exit. */
static int s_create_log(const crd_config_t *cfg)
{
	char why[1024];
	uint32_t epoch;

	if (crd_create_log(cfg, &epoch, why, sizeof(why))) {
		fprintf(stderr, "coordinatord: cannot create the log: %s\n", why);
		return 1;
	}
	printf("coordinatord: created the log of coordinator %s in %s (first epoch %u)\n", cfg->id,
	       cfg->log_dir, (unsigned)epoch);
	return 0;
}

int main(int argc, char **argv)
{
	bool create = false;
	crd_config_t cfg;
	char why[1024];
	int rc;

	if ((rc = dtx_daemon_config(argc, argv, "coordinatord", s_load, &cfg, &create)) >= 0)
		return rc;
	if (create)
		return s_create_log(&cfg);
	dtx_daemon_up("coordinatord", NULL, cfg.log_level, s_on_signal, s_on_hup);
	if (s_check_ipc_dirs(&cfg))
		return 1;
	if ((rc = crd_new(&cfg, &s_crd, why, sizeof(why)))) {
		dtx_err("cannot start: %s", why);
		return 1;
	}
	dtx_notice("coordinator %s serving clients on %s, agents on %s, admin on %s", cfg.id,
		   cfg.client_endpoint, cfg.agent_endpoint, cfg.admin_endpoint);
	/* Ready only now: the log is recovered and every socket is bound. */
	sd_notifyf(0, "READY=1\nSTATUS=coordinator %s serving on %s", cfg.id, cfg.client_endpoint);
	rc = crd_run(s_crd); /* says STOPPING=1 when SIGTERM arrives */
	crd_destroy(&s_crd);
	return dtx_daemon_exit(rc);
}
