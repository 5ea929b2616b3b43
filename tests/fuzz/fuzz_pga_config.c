/*
 * fuzz_pga_config.c — libFuzzer target: dtx-pgagent's configuration file,
 * through pga_config_defaults and pga_config_load only (the parser behind
 * them may change). The input is the file's text.
 *
 * Checked beyond ASan and UBSan: 0 or DTX_ECONFIG with a terminated,
 * non-empty reason; on 0, the required keys present, every string of the
 * configuration terminated and the bounds etc/dtx-pgagent.conf states,
 * and the keys that go together (CURVE, a tcp:// coordinator).
 */
#include "config.h"

#include "dtx_curve.h"
#include "dtx_util.h"
#include "dtx_wire.h"
#include "fuzz_file.h"
#include "pga_config.h"

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
	pga_config_t cfg;
	char why[512];

	const char *path = fuzz_file_write(data, size);
	pga_config_defaults(&cfg);
	memset(why, 'x', sizeof(why));
	int rc = pga_config_load(&cfg, path, why, sizeof(why));
	if (rc) {
		FUZZ_CHECK(rc == DTX_ECONFIG);
		FUZZ_CHECK(fuzz_terminated(why, sizeof(why)) && why[0]);
		return 0;
	}
	FUZZ_CHECK(fuzz_terminated(cfg.name, sizeof(cfg.name)) && dtx_name_valid(cfg.name));
	FUZZ_CHECK(fuzz_terminated(cfg.coordinator, sizeof(cfg.coordinator)));
	FUZZ_CHECK(fuzz_terminated(cfg.conninfo, sizeof(cfg.conninfo)) && cfg.conninfo[0]);
	FUZZ_CHECK(cfg.pool_size >= 2 && cfg.pool_size <= 256);
	/* trust: CURVE keys both or neither, and a tcp:// coordinator only
	 * with them or insecure = true */
	FUZZ_CHECK(!cfg.coordinator_key[0] == !cfg.secret_key[0]);
	FUZZ_CHECK(!dtx_endpoint_remote(cfg.coordinator) || cfg.coordinator_key[0] || cfg.insecure);
	FUZZ_CHECK(!cfg.coordinator_id[0] || dtx_coord_id_valid(cfg.coordinator_id));
	/* syslog's levels: dtx_log_level_parse takes emerg, alert and crit
	 * too, though the files document err to debug */
	FUZZ_CHECK(cfg.log_level >= 0 && cfg.log_level <= DTX_LOG_DEBUG);
	return 0;
}
