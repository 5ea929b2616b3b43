/*
 * dtx_daemon.c — the start and end both daemons' main() share. See
 * dtx_daemon.h.
 */
#include "config.h"

#include <signal.h>
#include <stdio.h>

#include "dtx_daemon.h"
#include "dtx_journal.h"
#include "dtx_util.h"

int dtx_daemon_config(int argc, char **argv, const char *prog, dtx_daemon_load_fn load, void *cfg,
		      bool *create_log)
{
	const char *path = NULL;
	bool check = false;
	char why[1024];
	int rc;

	if ((rc = dtx_daemon_args(argc, argv, prog, &path, &check, create_log)) >= 0)
		return rc;
	if (load(cfg, path, why, sizeof(why))) {
		fprintf(stderr, "%s: %s\n", prog, why);
		return 1;
	}
	if (check) {
		printf("%s: ok\n", path);
		return 0;
	}
	return -1;
}

void dtx_daemon_up(const char *ident, const char *participant, int log_level, void (*on_stop)(int),
		   void (*on_hup)(int))
{
	dtx_daemon_start(log_level, on_stop); /* SIGHUP ignored from here */
	dtx_journal_setup(ident, participant);
	if (on_hup) {
		struct sigaction hup = {.sa_handler = on_hup};
		sigemptyset(&hup.sa_mask);
		sigaction(SIGHUP, &hup, NULL);
	}
}

int dtx_daemon_exit(int rc)
{
	if (rc) {
		dtx_err("stopped: %s", dtx_strerror(rc));
		return 1;
	}
	dtx_notice("stopped");
	return 0;
}
