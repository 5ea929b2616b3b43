/*
 * coordinatord — the dtx transaction coordinator daemon.
 */
#include "config.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#include "crd.h"
#include "dtx_journal.h"
#include "dtx_util.h"

static crd_t *s_crd;

static void s_on_signal(int sig)
{
	(void)sig;
	if (s_crd)
		crd_stop(s_crd);
}

static void s_on_hup(int sig)
{
	(void)sig;
	if (s_crd)
		crd_reload(s_crd);
}

int main(int argc, char **argv)
{
	const char *path = NULL;
	bool check = false, create = false;
	crd_config_t cfg;
	char why[1024];
	int rc;

	if ((rc = dtx_daemon_args(argc, argv, "coordinatord", &path, &check, &create)) >= 0)
		return rc;
	crd_config_defaults(&cfg);
	if (crd_config_load(&cfg, path, why, sizeof(why))) {
		fprintf(stderr, "coordinatord: %s\n", why);
		return 1;
	}
	if (check) {
		printf("%s: ok\n", path);
		return 0;
	}
	if (create) {
		uint32_t epoch;
		if (crd_create_log(&cfg, &epoch, why, sizeof(why))) {
			fprintf(stderr, "coordinatord: cannot create the log: %s\n", why);
			return 1;
		}
		printf("coordinatord: created the log of coordinator %s in %s (first epoch %u)\n",
		       cfg.id, cfg.log_dir, (unsigned)epoch);
		return 0;
	}
	dtx_daemon_start(cfg.log_level, s_on_signal);
	dtx_journal_setup("coordinatord", NULL);
	/* SIGHUP before crd_new() is ignored: the file was just read. */
	struct sigaction hup = {.sa_handler = s_on_hup};
	sigemptyset(&hup.sa_mask);
	sigaction(SIGHUP, &hup, NULL);

	if ((rc = crd_new(&cfg, &s_crd, why, sizeof(why)))) {
		dtx_err("cannot start: %s", why);
		return 1;
	}
	dtx_notice("coordinator %s serving clients on %s, agents on %s, admin on %s", cfg.id,
		   cfg.client_endpoint, cfg.agent_endpoint, cfg.admin_endpoint);
	/* Ready only now: the log is recovered and every socket is bound. */
	sd_notifyf(0, "READY=1\nSTATUS=coordinator %s serving on %s", cfg.id,
		   cfg.client_endpoint);
	rc = crd_run(s_crd); /* says STOPPING=1 when SIGTERM arrives */
	crd_destroy(&s_crd);
	if (rc) {
		dtx_err("stopped: %s", dtx_strerror(rc));
		return 1;
	}
	dtx_notice("stopped");
	return 0;
}
