/*
 * dtx_daemon.h — what coordinatord's and dtx-pgagent's main() share: the
 * command line and the configuration file read before anything starts,
 * the signals, the journal, and the last line. Each main() keeps only what
 * its daemon does differently. Linked by the daemons only (libdtx_daemon).
 */
#ifndef DTX_DAEMON_H
#define DTX_DAEMON_H

#include <stdbool.h>
#include <stddef.h>

/* Read the file at path into cfg, defaults first: 0, or an error with why
 * holding "path:line: reason" (crd_config_load, pga_config_load). */
typedef int (*dtx_daemon_load_fn)(void *cfg, const char *path, char *why, size_t why_len);

/*
 * The command line (dtx_daemon_args: -c FILE, --check-config, -h, and
 * --create-log where create_log is not NULL), then load(cfg, FILE), its
 * error on standard error as "prog: why", and --check-config answered
 * ("FILE: ok" on standard output). Anything but --help and --check-config
 * is refused as root (geteuid() 0), with a line naming the fix, before
 * the file is read. Returns -1 to go on with cfg read
 * (*create_log set for --create-log), else the exit code: 0 after --help
 * or a good --check-config, 1 for a bad file, 2 for a usage error.
 */
int dtx_daemon_config(int argc, char **argv, const char *prog, dtx_daemon_load_fn load, void *cfg,
		      bool *create_log);

/*
 * Once the one-shot work is done and the daemon starts serving:
 * dtx_daemon_start() (log level, crash points, faults, on_stop for SIGTERM
 * and SIGINT), the journal sink under ident (participant: the agent's own
 * name, for its lines that name none; NULL for the coordinator), and
 * on_hup for SIGHUP when not NULL (else SIGHUP is ignored); and the
 * soft limit on descriptors raised to the hard one, said at info.
 */
void dtx_daemon_up(const char *ident, const char *participant, int log_level, void (*on_stop)(int),
		   void (*on_hup)(int));

/* The last line: "stopped", or "stopped: REASON" at err for rc, a DTX_E
 * code from the daemon's loop. Returns the exit code, 0 or 1. */
int dtx_daemon_exit(int rc);

#endif
