/*
 * crd_admin.c — the admin endpoint (dtxctl): a ROUTER socket on an ipc://
 * path only its owner can reach, and one table of commands. Reads first
 * flush what is queued, so that what the operator reads from the log
 * includes every record so far. The operator's acts (resolve, forget) are
 * moves of the state machine by CRD_BY_OPERATOR and leave a HEURISTIC
 * record saying who did what.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crd_int.h"

#define LIST_MAX 1000

typedef struct {
	FILE *f;
	const char *filter;
	crd_t *self;
	unsigned shown;
} s_list_t;

static int s_list_fn(const wal_rec_t *recs, unsigned n, void *arg)
{
	s_list_t *l = arg;
	const wal_rec_t *last = &recs[n - 1];
	dtx_gtid_t g = {.epoch = recs[0].epoch, .seq = recs[0].seq};
	char gtid[DTX_GTID_MAX], when[40];
	crd_tx_t *tx = crd_tx_find(l->self, recs[0].seq);
	const char *state = tx ? crd_txstate_shown(tx->state) : wal_kind_str(last->kind);

	if (!tx && crd_recs_heuristic(recs, n))
		state = "heuristic";
	if (l->filter && *l->filter && strcmp(l->filter, state) != 0)
		return 0;
	if (l->shown++ >= LIST_MAX)
		return 1;
	snprintf(g.coord, sizeof(g.coord), "%s", l->self->cfg.id);
	dtx_gtid_format(&g, gtid, sizeof(gtid));
	dtx_wall_format(recs[0].at_us, when, sizeof(when));
	fprintf(l->f, "%-24s %-11s %s", gtid, state, when);
	for (unsigned i = 0; i < recs[0].nparts; i++)
		fprintf(l->f, "%s%s", i ? "," : " ", recs[0].parts[i]);
	fputc('\n', l->f);
	return 0;
}

static int s_show_fn(const wal_rec_t *recs, unsigned n, void *arg)
{
	FILE *f = arg;
	for (unsigned i = 0; i < n; i++) {
		char when[40];
		dtx_wall_format(recs[i].at_us, when, sizeof(when));
		fprintf(f, "  %s  %-10s", when, wal_kind_str(recs[i].kind));
		for (unsigned p = 0; p < recs[i].nparts; p++)
			fprintf(f, "%s%s", p ? "," : " participants ", recs[i].parts[p]);
		if (recs[i].note)
			fprintf(f, " %s", recs[i].note);
		fputc('\n', f);
	}
	return 0;
}

static int s_count_heuristic_fn(const wal_rec_t *recs, unsigned n, void *arg)
{
	*(unsigned *)arg += crd_recs_heuristic(recs, n);
	return 0;
}

/* Every branch owes its acknowledgement again: the decision goes to all. */
static void s_unack_all(crd_tx_t *tx)
{
	for (uint32_t i = 0; i < tx->nbranches; i++) {
		tx->br[i].acked = false;
		tx->br[i].backoff_ms = 0;
	}
}

/* A decision on branches the log does not know (orphans of g): sent to
 * each agent holding one, then left to it. */
static void s_resolve_orphans(crd_t *self, FILE *f, const dtx_gtid_t *g, int o, bool commit,
			      const char *verb, const char *note)
{
	for (; o >= 0; o = crd_orphan_find(self, g, (unsigned)o)) {
		const crd_orphan_t *or = &self->orphans[o];
		int idx = crd_part_index(self, or->part);
		dtx_msg_t d = {.type = DTX_T_DECIDE, .has = DTX_F_GTID | DTX_F_CODE,
			       .gtid = or->gid,
			       .code = commit ? DTX_DECIDE_COMMIT : DTX_DECIDE_ROLLBACK};
		if (idx >= 0 && crd_send_part(self, &self->parts[idx], &d))
			fprintf(f, "%s: %s sent to %s\n", or->gid, verb, or->part);
		else
			fprintf(f, "%s: %s is not connected; it will report the branch again\n",
				or->gid, or->part);
		dtx_log_ctx(DTX_LOG_NOTICE, or->gid, or->part, "%s on %s: %s (heuristic decision; %s)", or->gid, or->part, note,
			   crd_orphan_why(self, (unsigned)o));
		crd_orphan_drop(self, (unsigned)o);
	}
}

/* "GTID commit|abort force|- WHO..." */
static int s_admin_resolve(crd_t *self, FILE *f, const char *arg)
{
	char gtid_s[DTX_GTID_MAX], verb[16], force_s[16], note[WAL_NOTE_MAX];
	int who_at = 0, rc;
	dtx_gtid_t g;
	crd_tx_t *tx;

	if (sscanf(arg, "%95s %15s %15s %n", gtid_s, verb, force_s, &who_at) != 3 ||
	    (strcmp(verb, "commit") && strcmp(verb, "abort"))) {
		fprintf(f, "usage: resolve GTID commit|abort\n");
		return DTX_EINVAL;
	}
	bool commit = strcmp(verb, "commit") == 0, force = strcmp(force_s, "force") == 0;
	const char *who = arg + who_at;
	int st = crd_status_of(self, gtid_s, &g, &tx);
	snprintf(note, sizeof(note), "operator %s: resolve %s%s", who, verb, force ? " (forced)" : "");

	if (!tx) {
		int o = strcmp(g.coord, self->cfg.id) == 0 ? crd_orphan_find(self, &g, 0) : -1;
		if (o >= 0) {
			s_resolve_orphans(self, f, &g, o, commit, verb, note);
			return 0;
		}
		if (st == DTX_OUTCOME_UNKNOWN || st == DTX_OUTCOME_IN_DOUBT) {
			fprintf(f, "%s: no such transaction in flight or in the log%s\n", gtid_s,
				st == DTX_OUTCOME_IN_DOUBT ? " (pruned?), and no branch of it in doubt"
							   : "");
			return DTX_ENOTFOUND;
		}
		fprintf(f, "%s: already finished (%s)\n", gtid_s, dtx_outcome_str(st));
		return DTX_ESTATE;
	}
	if (crd_txstate_awaits_flush(tx->state)) {
		fprintf(f, "%s: its decision is being written: try again\n", gtid_s);
		return DTX_EBUSY;
	}
	bool decided = crd_txstate_in_phase_two(tx->state);
	bool same = (tx->state == CRD_TX_COMMITTING) == commit;
	if (decided && same) {
		s_unack_all(tx);
		for (uint32_t i = 0; i < tx->nbranches; i++)
			crd_send_decision(self, tx, i, dtx_now_ms());
		fprintf(f, "%s: already %s: decision re-sent to every branch\n", gtid_s,
			crd_txstate_shown(tx->state));
		return 0;
	}
	if (decided && !force) {
		fprintf(f, "%s: the log holds %s for it; --force contradicts it (branches that "
			   "already applied it become heuristic)\n", gtid_s,
			tx->state == CRD_TX_COMMITTING ? "COMMIT" : "ABORT");
		return DTX_ESTATE;
	}
	crd_tx_heuristic(self, tx, NULL, note);
	if (commit) {
		if (decided)
			for (uint32_t i = 0; i < tx->nbranches; i++)
				tx->br[i].acked = false; /* the commit goes to all */
		rc = crd_tx_move(self, tx, CRD_TX_DECIDING, note, CRD_BY_OPERATOR);
	} else if (decided) {
		s_unack_all(tx);
		rc = crd_tx_move(self, tx, CRD_TX_ABORTING, note, CRD_BY_OPERATOR);
	} else {
		char reason[WAL_NOTE_MAX + 16];
		snprintf(reason, sizeof(reason), "aborted by %s", note);
		crd_abort(self, tx, NULL, NULL, reason);
		rc = 0;
	}
	if (rc) {
		fprintf(f, "%s: not %s: %s\n", gtid_s, verb, dtx_strerror(rc));
		return rc;
	}
	fprintf(f, "%s: %s\n", gtid_s, note);
	return 0;
}

/* "GTID WHO..." */
static int s_admin_forget(crd_t *self, FILE *f, const char *arg)
{
	char gtid_s[DTX_GTID_MAX], note[WAL_NOTE_MAX];
	int who_at = 0;
	dtx_gtid_t g;
	crd_tx_t *tx;

	if (sscanf(arg, "%95s %n", gtid_s, &who_at) != 1) {
		fprintf(f, "usage: forget GTID\n");
		return DTX_EINVAL;
	}
	int st = crd_status_of(self, gtid_s, &g, &tx);
	if (!tx) {
		int o = strcmp(g.coord, self->cfg.id) == 0 ? crd_orphan_find(self, &g, 0) : -1;
		if (o < 0) {
			fprintf(f, "%s: not in flight (%s)\n", gtid_s, dtx_outcome_str(st));
			return st == DTX_OUTCOME_UNKNOWN ? DTX_ENOTFOUND : DTX_ESTATE;
		}
		for (; o >= 0; o = crd_orphan_find(self, &g, (unsigned)o)) {
			dtx_log_ctx(DTX_LOG_NOTICE, self->orphans[o].gid, self->orphans[o].part,
				    "%s@%s: forgotten by operator %s (left prepared in its database)",
				   self->orphans[o].gid, self->orphans[o].part, arg + who_at);
			fprintf(f, "%s@%s: forgotten; the branch stays prepared in its database\n",
				self->orphans[o].gid, self->orphans[o].part);
			crd_orphan_drop(self, (unsigned)o);
		}
		return 0;
	}
	if (tx->state == CRD_TX_DECIDING) {
		fprintf(f, "%s: its decision is being written: try again\n", gtid_s);
		return DTX_EBUSY;
	}
	if (!crd_txstate_in_phase_two(tx->state)) {
		fprintf(f, "%s: undecided; resolve it first\n", gtid_s);
		return DTX_ESTATE;
	}
	size_t off = (size_t)snprintf(note, sizeof(note), "operator %s: forgotten; unacknowledged:",
				      arg + who_at);
	for (uint32_t i = 0; i < tx->nbranches && off < sizeof(note); i++)
		if (!tx->br[i].acked)
			off += (size_t)snprintf(note + off, sizeof(note) - off, " %s", tx->br[i].name);
	crd_tx_heuristic(self, tx, NULL, note);
	for (uint32_t i = 0; i < tx->nbranches; i++)
		tx->br[i].acked = true;
	fprintf(f, "%s: %s\n", gtid_s, note);
	crd_settle(self, tx);
	return 0;
}

/* list --state in-doubt | stuck: what recovery cannot finish alone. */
static void s_admin_list_attention(crd_t *self, FILE *f, bool in_doubt)
{
	int64_t now = dtx_now_ms();
	if (in_doubt) {
		for (unsigned i = 0; i < self->norphans; i++) {
			char id[sizeof(self->orphans[i].gid) + sizeof(self->orphans[i].part) + 1];
			snprintf(id, sizeof(id), "%s@%s", self->orphans[i].gid, self->orphans[i].part);
			fprintf(f, "%-40s in-doubt    %s\n", id,
				self->orphans[i].pruned ? "branch of a transaction pruned from this log"
						       : "branch from an epoch this log never had");
		}
		return;
	}
	for (crd_tx_t *tx = self->head; tx; tx = tx->next) {
		bool unconfigured = false;
		for (uint32_t i = 0; i < tx->nbranches; i++)
			unconfigured |= tx->br[i].part < 0 && !tx->br[i].acked;
		int kind = crd_txstate_kind(tx->state);
		if ((kind != WAL_COMMITTING && kind != WAL_ABORTING) ||
		    (now - tx->decided_ms < (int64_t)self->cfg.stuck_after_ms && !unconfigured))
			continue;
		char gtid[DTX_GTID_MAX];
		crd_tx_gtid(self, tx, gtid, sizeof(gtid));
		fprintf(f, "%-24s %-11s decided %" PRId64 " s ago, waiting for", gtid,
			crd_txstate_shown(tx->state), (now - tx->decided_ms) / 1000);
		for (uint32_t i = 0; i < tx->nbranches; i++)
			if (!tx->br[i].acked)
				fprintf(f, " %s%s", tx->br[i].name,
					tx->br[i].part < 0 ? " (not configured)" : "");
		fputc('\n', f);
	}
}

static int s_cmd_status(crd_t *self, FILE *f, const char *arg)
{
	unsigned by_kind[WAL_IN_DOUBT + 1] = {0}, heur = 0;
	int64_t now = dtx_now_ms();
	(void)arg;
	for (crd_tx_t *tx = self->head; tx; tx = tx->next)
		by_kind[crd_txstate_kind(tx->state)]++;
	fprintf(f, "coordinator %s epoch %" PRIu32 " up %" PRId64 " s\n", self->cfg.id,
		wal_epoch(self->wal), (dtx_wall_us() - self->started_us) / 1000000);
	fprintf(f, "in flight %zu:", self->ntx);
	for (int s = WAL_ACTIVE; s <= WAL_ABORTING; s++)
		if (s != WAL_COMMITTED)
			fprintf(f, " %s %u", wal_kind_str(s), by_kind[s]);
	fprintf(f, "\nsince start: committed %" PRIu64 " aborted %" PRIu64 " heuristic %" PRIu64
		"\n", self->n_committed, self->n_aborted, self->n_heuristic);
	fprintf(f, "group commits %" PRIu64 " records %" PRIu64 " decisions %" PRIu64 "\n",
		self->n_flushes, self->n_flushed, self->n_decisions);
	for (unsigned i = 0; i < self->nparts; i++) {
		crd_part_t *p = &self->parts[i];
		const char *removed = p->allowed ? "" : " (removed from the allow-list)";
		if (p->connected)
			fprintf(f, "participant %s up, last seen %" PRId64 " ms ago%s\n", p->name,
				now - p->last_seen_ms, removed);
		else
			fprintf(f, "participant %s down%s\n", p->name, removed);
	}
	wal_scan(self->wal, false, s_count_heuristic_fn, &heur);
	fprintf(f, "heuristic outcomes in the log: %u%s\n", heur,
		heur ? " (dtxctl list --state heuristic)" : "");
	for (unsigned i = 0; i < self->norphans; i++)
		fprintf(f, "in doubt (%s): %s@%s\n", crd_orphan_why(self, i), self->orphans[i].gid,
			self->orphans[i].part);
	return 0;
}

static int s_cmd_watch(crd_t *self, FILE *f, const char *arg)
{
	(void)arg;
	fprintf(f, "%s", self->cfg.events_endpoint);
	return 0;
}

static int s_cmd_stats(crd_t *self, FILE *f, const char *arg)
{
	(void)arg;
	crd_stats_text(self, f);
	return 0;
}

static int s_cmd_list(crd_t *self, FILE *f, const char *arg)
{
	int rc;
	if (strcmp(arg, "in-doubt") == 0 || strcmp(arg, "stuck") == 0) {
		s_admin_list_attention(self, f, strcmp(arg, "in-doubt") == 0);
		return 0;
	}
	s_list_t l = {.f = f, .filter = arg, .self = self};
	if ((rc = wal_scan(self->wal, false, s_list_fn, &l)) && rc != 1) {
		fprintf(f, "log scan failed: %s\n", dtx_strerror(rc));
		return rc;
	}
	if (l.shown > LIST_MAX)
		fprintf(f, "(first %d shown)\n", LIST_MAX);
	return 0;
}

static const char *s_vote_str(int vote)
{
	switch (vote) {
	case DTX_VOTE_YES: return "yes";
	case DTX_VOTE_NO: return "no";
	case DTX_VOTE_READONLY: return "read-only";
	default: return "none";
	}
}

static int s_cmd_show(crd_t *self, FILE *f, const char *arg)
{
	dtx_gtid_t g;
	crd_tx_t *tx;
	int code = 0, st = crd_status_of(self, arg, &g, &tx);

	fprintf(f, "%s %s\n", arg, tx ? crd_txstate_shown(tx->state) : dtx_outcome_str(st));
	if (st == DTX_OUTCOME_UNKNOWN && !tx)
		code = DTX_ENOTFOUND;
	else if (wal_history(self->wal, g.seq, s_show_fn, f) != 0)
		fprintf(f, "  (no records in the log)\n");
	if (tx && tx->reason[0])
		fprintf(f, "  reason: %s\n", tx->reason);
	for (uint32_t i = 0; tx && i < tx->nbranches; i++)
		fprintf(f, "  branch %u %s vote %s%s\n", i, tx->br[i].name, s_vote_str(tx->br[i].vote),
			tx->br[i].acked ? " acknowledged" : "");
	return code;
}

/* The commands: name, handler. Each writes its reply's text to f and
 * returns the reply's code. */
static const struct {
	const char *name;
	int (*fn)(crd_t *self, FILE *f, const char *arg);
} s_cmds[] = {
	{"status", s_cmd_status}, {"watch", s_cmd_watch},	  {"stats", s_cmd_stats},
	{"resolve", s_admin_resolve}, {"forget", s_admin_forget}, {"list", s_cmd_list},
	{"show", s_cmd_show},
};

void crd_on_admin(crd_t *self, const dtx_peer_t *peer, const void *data, size_t len)
{
	dtx_msg_t m;
	char *text = NULL;
	size_t tlen = 0;
	int code = DTX_EINVAL;
	FILE *f;

	if (dtx_decode_or_refuse(self->admin, peer, data, len, &m, "admin"))
		return;
	if (m.type != DTX_T_ADMIN || !(f = open_memstream(&text, &tlen))) {
		crd_send_error(self->admin, peer, (m.has & DTX_F_ID) != 0, m.id, DTX_EPROTO,
			       "the admin endpoint takes ADMIN only");
		dtx_msg_clear(&m);
		return;
	}
	const char *arg = (m.has & DTX_F_TEXT) ? m.text : "";
	crd_flush_for_read(self);
	size_t i = 0;
	while (i < sizeof(s_cmds) / sizeof(s_cmds[0]) && strcmp(s_cmds[i].name, m.name) != 0)
		i++;
	if (i < sizeof(s_cmds) / sizeof(s_cmds[0]))
		code = s_cmds[i].fn(self, f, arg);
	else
		fprintf(f, "unknown admin command '%s'\n", m.name);
	fclose(f);
	dtx_msg_t r = {.type = DTX_T_REPLY, .has = DTX_F_ID | DTX_F_CODE | DTX_F_TEXT,
		       .id = m.id, .code = code, .text = text};
	if (tlen > DTX_WIRE_MAX_STR)
		text[DTX_WIRE_MAX_STR] = '\0';
	crd_send(self->admin, peer, &r);
	free(text);
	dtx_msg_clear(&m);
}
