/*
 * crd_reload.c — SIGHUP: the configuration file read again, and what may
 * change without a restart taken (log level, timeouts, the participant
 * allow-list, ...). A file with an error changes nothing; keys that need a
 * restart (what the sockets, the log and the GTIDs were made with) are
 * named in the log and keep their values.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#include "crd_int.h"
#include "dtx_conf.h"

/* The participant allow-list of cfg: new names are added, missing ones
 * stay known (their transactions in flight finish, their agents may still
 * connect for that) but no new transaction may name them. */
static void s_reload_participants(crd_t *self, const crd_config_t *cfg, char *chg, size_t len)
{
	for (unsigned i = 0; i < self->nparts; i++) {
		crd_part_t *p = &self->parts[i];
		bool listed = false;
		for (unsigned j = 0; j < cfg->nparticipants && !listed; j++)
			listed = strcmp(cfg->participants[j], p->name) == 0;
		if (p->allowed != listed)
			dtx_conf_said(chg, len, "participant %s %s", p->name,
				      listed ? "allowed again" : "removed");
		p->allowed = listed;
	}
	for (unsigned j = 0; j < cfg->nparticipants; j++) {
		if (crd_part_index(self, cfg->participants[j]) >= 0)
			continue;
		if (self->nparts == CRD_MAX_PARTICIPANTS) {
			dtx_warn("reload: participant %s not added: %d known already",
				 cfg->participants[j], CRD_MAX_PARTICIPANTS);
			continue;
		}
		crd_part_t *p = &self->parts[self->nparts++];
		memset(p, 0, sizeof(*p));
		snprintf(p->name, sizeof(p->name), "%s", cfg->participants[j]);
		p->allowed = true;
		dtx_conf_said(chg, len, "participant %s added", p->name);
	}
}

void crd_do_reload(crd_t *self)
{
	crd_config_t n, *o = &self->cfg;
	char why[1200], chg[2048] = "", kept[512] = "";

	sd_notify(0, "RELOADING=1");
	crd_config_defaults(&n);
	if (crd_config_load(&n, o->path, why, sizeof(why))) {
		dtx_err("reload refused, the configuration in use is unchanged: %s", why);
		sd_notify(0, "READY=1\nSTATUS=reload refused: the configuration has an error");
		return;
	}
	/* The key table says what may change now; what the sockets, the log
	 * and the GTIDs were made with is kept, and named. */
	crd_config_reload(o, &n, chg, sizeof(chg), kept, sizeof(kept));
	dtx_log_set_level(o->log_level);
	s_reload_participants(self, &n, chg, sizeof(chg));
	memcpy(o->participants, n.participants, sizeof(o->participants));
	o->nparticipants = n.nparticipants;
	/* Who may connect and what clients may do: the next connection, and
	 * the next TX, see the new ones. */
	if (o->nclients != n.nclients ||
	    memcmp(o->clients, n.clients, n.nclients * sizeof(n.clients[0])) != 0)
		dtx_conf_said(chg, sizeof(chg), "[client] sections changed");
	if (o->nagent_keys != n.nagent_keys ||
	    memcmp(o->agent_keys, n.agent_keys, n.nagent_keys * sizeof(n.agent_keys[0])) != 0)
		dtx_conf_said(chg, sizeof(chg), "[agent] sections changed");
	memcpy(o->clients, n.clients, sizeof(o->clients));
	o->nclients = n.nclients;
	memcpy(o->agent_keys, n.agent_keys, sizeof(o->agent_keys));
	o->nagent_keys = n.nagent_keys;
	dtx_notice("reloaded %s: %s", o->path, chg[0] ? chg : "nothing changed");
	if (kept[0])
		dtx_warn("reload: not changed without a restart: %s (the values in use are kept)",
			 kept);
	sd_notify(0, "READY=1\nSTATUS=configuration reloaded");
}
