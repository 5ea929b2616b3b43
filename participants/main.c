/*
 * dtx-pgagent — the dtx participant agent for one PostgreSQL database.
 * What every dtx daemon does at start and exit is in libdtx's dtx_daemon;
 * here only what the agent adds: waiting for its database, and its loop.
 */
#include "config.h"

#include <signal.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "dtx_daemon.h"
#include "dtx_util.h"
#include "pga.h"

static pga_t *s_pga;
static volatile sig_atomic_t s_stopping;

static void s_on_signal(int sig)
{
	(void)sig;
	s_stopping = 1;
	if (s_pga)
		pga_stop(s_pga);
}

static int s_load(void *cfg, const char *path, char *why, size_t why_len)
{
	pga_config_defaults(cfg);
	return pga_config_load(cfg, path, why, why_len);
}

int main(int argc, char **argv)
{
	pga_config_t cfg;
	char why[1024] = "";
	int rc;
	unsigned delay_ms = 200;

	if ((rc = dtx_daemon_config(argc, argv, "dtx-pgagent", s_load, &cfg, NULL)) >= 0)
		return rc;
	dtx_daemon_up("dtx-pgagent", cfg.name, cfg.log_level, s_on_signal, NULL);

	/* PostgreSQL may not be up yet: wait for it with back-off. */
	while ((rc = pga_new(&cfg, &s_pga, why, sizeof(why))) == DTX_EDB && !s_stopping) {
		dtx_warn("%s: database not ready (%s): retrying in %u ms", cfg.name, why, delay_ms);
		usleep(delay_ms * 1000);
		delay_ms = delay_ms * 2 > 5000 ? 5000 : delay_ms * 2;
		why[0] = '\0';
	}
	if (rc) {
		if (!s_stopping)
			dtx_err("cannot start: %s", why);
		return s_stopping ? 0 : 1;
	}
	dtx_notice("agent %s up, coordinator %s, %u connections", cfg.name, cfg.coordinator,
		   cfg.pool_size);
	/* Ready: the database answered and the marker table is there; the
	 * coordinator may still be away (the agent keeps saying HELLO). */
	sd_notifyf(0, "READY=1\nSTATUS=agent %s for coordinator %s", cfg.name, cfg.coordinator);
	rc = pga_run(s_pga);
	sd_notify(0, "STOPPING=1");
	pga_destroy(&s_pga);
	return dtx_daemon_exit(rc);
}
