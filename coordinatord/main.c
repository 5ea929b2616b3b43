/*
 * coordinatord — the dtx transaction coordinator daemon. What every dtx
 * daemon does at start and exit is in libdtx's dtx_daemon; here only what
 * the coordinator adds: --create-log, SIGHUP, and its loop.
 */
#include "config.h"

#include <stdio.h>
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
