/*
 * fuzz_crd_config.c — libFuzzer target: coordinatord's configuration file,
 * through crd_config_defaults and crd_config_load only (the parser behind
 * them may change). The input is the file's text.
 *
 * Checked beyond ASan and UBSan: 0 or DTX_ECONFIG with a terminated,
 * non-empty reason; on 0, the required keys present, every string of the
 * configuration terminated and the bounds etc/coordinatord.conf states.
 */
#include "config.h"

#include "crd_config.h"
#include "dtx_wire.h"
#include "fuzz_file.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_quiet();
	fuzz_file_init();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	crd_config_t cfg;
	char why[512];

	const char *path = fuzz_file_write(data, size);
	crd_config_defaults(&cfg);
	memset(why, 'x', sizeof(why));
	int rc = crd_config_load(&cfg, path, why, sizeof(why));
	if (rc) {
		FUZZ_CHECK(rc == DTX_ECONFIG);
		FUZZ_CHECK(fuzz_terminated(why, sizeof(why)) && why[0]);
		return 0;
	}
	FUZZ_CHECK(fuzz_terminated(cfg.id, sizeof(cfg.id)) && cfg.id[0]);
	FUZZ_CHECK(fuzz_terminated(cfg.path, sizeof(cfg.path)));
	FUZZ_CHECK(fuzz_terminated(cfg.log_dir, sizeof(cfg.log_dir)));
	FUZZ_CHECK(fuzz_terminated(cfg.client_endpoint, sizeof(cfg.client_endpoint)));
	FUZZ_CHECK(fuzz_terminated(cfg.agent_endpoint, sizeof(cfg.agent_endpoint)));
	FUZZ_CHECK(fuzz_terminated(cfg.admin_endpoint, sizeof(cfg.admin_endpoint)));
	FUZZ_CHECK(fuzz_terminated(cfg.events_endpoint, sizeof(cfg.events_endpoint)));
	FUZZ_CHECK(fuzz_terminated(cfg.metrics_listen, sizeof(cfg.metrics_listen)));
	FUZZ_CHECK(cfg.nparticipants >= 1 && cfg.nparticipants <= CRD_MAX_PARTICIPANTS);
	for (unsigned i = 0; i < cfg.nparticipants; i++)
		FUZZ_CHECK(dtx_name_valid(cfg.participants[i]));
	FUZZ_CHECK(cfg.default_timeout_ms <= cfg.max_timeout_ms);
	FUZZ_CHECK(cfg.heartbeat_ms >= 50);
	/* syslog's levels: dtx_log_level_parse takes emerg, alert and crit
	 * too, though the files document err to debug */
	FUZZ_CHECK(cfg.log_level >= 0 && cfg.log_level <= DTX_LOG_DEBUG);
	return 0;
}
