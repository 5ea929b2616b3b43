/*
 * coordinatord — the dtx transaction coordinator daemon.
 */
#include "config.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crd.h"
#include "dtx_util.h"

static crd_t *s_crd;

static void s_on_signal(int sig)
{
	(void)sig;
	if (s_crd)
		crd_stop(s_crd);
}

static void s_usage(FILE *f)
{
	fprintf(f, "usage: coordinatord -c FILE [--check-config]\n"
		   "  -c, --config FILE   configuration (see coordinatord.conf(5))\n"
		   "      --check-config  read and check the configuration, then exit\n"
		   "  -h, --help          this text\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"check-config", no_argument, NULL, 'C'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *path = NULL;
	bool check = false;
	crd_config_t cfg;
	char why[1024];
	int c, rc;

	while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c': path = optarg; break;
		case 'C': check = true; break;
		case 'h': s_usage(stdout); return 0;
		default: s_usage(stderr); return 2;
		}
	}
	if (!path || optind != argc) {
		s_usage(stderr);
		return 2;
	}
	crd_config_defaults(&cfg);
	if (crd_config_load(&cfg, path, why, sizeof(why))) {
		fprintf(stderr, "coordinatord: %s\n", why);
		return 1;
	}
	if (check) {
		printf("%s: ok\n", path);
		return 0;
	}
	dtx_log_set(cfg.log_level, NULL, NULL);
	dtx_crash_init();

	struct sigaction sa = {.sa_handler = s_on_signal};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if ((rc = crd_new(&cfg, &s_crd, why, sizeof(why)))) {
		dtx_err("cannot start: %s", why);
		return 1;
	}
	dtx_notice("coordinator %s serving clients on %s, agents on %s, admin on %s", cfg.id,
		   cfg.client_endpoint, cfg.agent_endpoint, cfg.admin_endpoint);
	rc = crd_run(s_crd);
	crd_destroy(&s_crd);
	if (rc) {
		dtx_err("stopped: %s", dtx_strerror(rc));
		return 1;
	}
	dtx_notice("stopped");
	return 0;
}
