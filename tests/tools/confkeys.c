/*
 * dtx-confkeys — prints a daemon's configuration keys from its own key
 * table, one a line: "NAME restart" for a key SIGHUP leaves alone, else
 * "NAME reload" (the coordinator) or "NAME start" (the agent, which has no
 * reload). tests/integration/confkeys.sh checks each against the manual
 * page and the sample file; the table is the truth, not a list kept by hand.
 *
 *   dtx-confkeys coordinatord | dtx-pgagent
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "crd_config.h"
#include "pga_config.h"

int main(int argc, char **argv)
{
	const dtx_conf_key_t *k;
	const char *other;

	if (argc == 2 && strcmp(argv[1], "coordinatord") == 0) {
		k = crd_config_keys();
		other = "reload";
	} else if (argc == 2 && strcmp(argv[1], "dtx-pgagent") == 0) {
		k = pga_config_keys();
		other = "start";
	} else {
		fprintf(stderr, "usage: dtx-confkeys coordinatord | dtx-pgagent\n");
		return 2;
	}
	for (; k->name; k++)
		printf("%s %s\n", k->name, (k->flags & DTX_CONF_RESTART) ? "restart" : other);
	return 0;
}
