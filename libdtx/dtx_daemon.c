/*
 * dtx_daemon.c — the start and end both daemons' main() share. See
 * dtx_daemon.h.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

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
	/* Root would own what the daemon makes and could be led through a
	 * symlink in a directory someone else controls; a check of the file
	 * makes nothing and may run as anyone. */
	if (!check && geteuid() == 0) {
		fprintf(stderr,
			"%s: refusing to run as root: run it as the dtx user (User=dtx in its "
			"systemd unit; by hand: runuser -u dtx -- %s ...)\n",
			prog, prog);
		return 1;
	}
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

/* Every peer connection costs a descriptor: take the hard limit, so that
 * systemd's soft default of 1024 is not what a flood of idle connections
 * runs into (LimitNOFILE= in the units sets both). */
static void s_raise_nofile(void)
{
	struct rlimit rl;
	rlim_t was;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
		dtx_warn("cannot read the descriptor limit: %s", strerror(errno));
		return;
	}
	was = rl.rlim_cur;
	if (rl.rlim_cur != rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
			dtx_warn("cannot raise the descriptor limit from %llu to %llu: %s",
				 (unsigned long long)was, (unsigned long long)rl.rlim_max,
				 strerror(errno));
			return;
		}
	}
	if (was != rl.rlim_cur)
		dtx_info("descriptor limit %llu (raised from %llu)",
			 (unsigned long long)rl.rlim_cur, (unsigned long long)was);
	else
		dtx_info("descriptor limit %llu", (unsigned long long)rl.rlim_cur);
}

void dtx_daemon_up(const char *ident, const char *participant, int log_level, void (*on_stop)(int),
		   void (*on_hup)(int))
{
	dtx_daemon_start(log_level, on_stop); /* SIGHUP ignored from here */
	dtx_journal_setup(ident, participant);
	s_raise_nofile();
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
