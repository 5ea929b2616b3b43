/*
 * dtx-pgagent — the dtx participant agent for one PostgreSQL database.
 */
#include "config.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "dtx_journal.h"
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

int main(int argc, char **argv)
{
	const char *path = NULL;
	bool check = false;
	pga_config_t cfg;
	char why[1024] = "";
	int rc;
	unsigned delay_ms = 200;

	if ((rc = dtx_daemon_args(argc, argv, "dtx-pgagent", &path, &check, NULL)) >= 0)
		return rc;
	pga_config_defaults(&cfg);
	if (pga_config_load(&cfg, path, why, sizeof(why))) {
		fprintf(stderr, "dtx-pgagent: %s\n", why);
		return 1;
	}
	if (check) {
		printf("%s: ok\n", path);
		return 0;
	}
	dtx_daemon_start(cfg.log_level, s_on_signal);
	dtx_journal_setup("dtx-pgagent", cfg.name);

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
	dtx_notice("stopped");
	return rc ? 1 : 0;
}
