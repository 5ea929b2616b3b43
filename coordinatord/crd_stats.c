/*
 * crd_stats.c — what the coordinator counts, as numbers a program reads
 * (the Prometheus text format, served by crd_metrics.c's HTTP server) and
 * as lines a person reads (dtxctl stats). Both are written from one
 * snapshot of the gauges, taken by walking the in-flight list.
 */
#include "config.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "crd_int.h"

static const double s_le_decision[] = {0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05,
				       0.1,    0.2,   0.5,   1,     2,    5,    10};
static const double s_le_commit[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
				     0.01,   0.025,   0.05,   0.1,   0.25,   1};
static const double s_le_batch[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096};
#define NLE(a) (unsigned)(sizeof(a) / sizeof((a)[0]))

void crd_stats_init(crd_t *self)
{
	crd_hist_init(&self->h_decision, s_le_decision, NLE(s_le_decision));
	crd_hist_init(&self->h_commit, s_le_commit, NLE(s_le_commit));
	crd_hist_init(&self->h_batch, s_le_batch, NLE(s_le_batch));
}

/* The gauges at one moment. */
typedef struct {
	unsigned by_kind[WAL_IN_DOUBT + 1]; /* in flight, by the state's log kind */
	unsigned in_doubt;     /* a branch prepared, the decision not yet acknowledged */
	unsigned stuck;        /* decided, unacknowledged past stuck_after_ms */
} s_gauges_t;

static void s_gauges(const crd_t *self, s_gauges_t *g)
{
	int64_t now = dtx_now_ms();
	memset(g, 0, sizeof(*g));
	for (const crd_tx_t *tx = self->head; tx; tx = tx->next) {
		bool prepared = false;
		int kind = crd_txstate_kind(tx->state);
		g->by_kind[kind]++;
		for (uint32_t i = 0; i < tx->nbranches; i++)
			prepared |= tx->br[i].vote == DTX_VOTE_YES && !tx->br[i].acked;
		g->in_doubt += prepared;
		g->stuck += (kind == WAL_COMMITTING || kind == WAL_ABORTING) &&
			    now - tx->decided_ms >= (int64_t)self->cfg.stuck_after_ms;
	}
}

#define HELP(name, type, text) fprintf(f, "# HELP " name " " text "\n# TYPE " name " " type "\n")

/* The Prometheus text format (version 0.0.4). */
void crd_metrics(void *arg, FILE *f)
{
	crd_t *self = arg;
	s_gauges_t g;
	s_gauges(self, &g);
	HELP("dtx_transactions_total", "counter", "Global transactions finished, by outcome.");
	fprintf(f, "dtx_transactions_total{outcome=\"committed\"} %" PRIu64 "\n", self->n_committed);
	fprintf(f, "dtx_transactions_total{outcome=\"aborted\"} %" PRIu64 "\n", self->n_aborted);
	fprintf(f, "dtx_transactions_total{outcome=\"heuristic\"} %" PRIu64 "\n", self->n_heuristic);
	HELP("dtx_transactions_in_flight", "gauge", "Transactions not finished, by state.");
	for (int st = WAL_ACTIVE; st <= WAL_ABORTING; st++)
		if (st != WAL_COMMITTED)
			fprintf(f, "dtx_transactions_in_flight{state=\"%s\"} %u\n", wal_kind_str(st),
				g.by_kind[st]);
	HELP("dtx_transactions_in_doubt", "gauge",
	     "Transactions with a prepared branch still waiting for its decision.");
	fprintf(f, "dtx_transactions_in_doubt %u\n", g.in_doubt);
	HELP("dtx_transactions_stuck", "gauge",
	     "Decided transactions unacknowledged for longer than stuck_after_ms.");
	fprintf(f, "dtx_transactions_stuck %u\n", g.stuck);
	HELP("dtx_orphan_branches", "gauge",
	     "Prepared branches from an epoch this log never had (left to the operator).");
	fprintf(f, "dtx_orphan_branches %u\n", self->norphans);
	HELP("dtx_decision_seconds", "histogram",
	     "From a client's transaction to the answer with its outcome.");
	crd_hist_write(&self->h_decision, f, "dtx_decision_seconds", "");
	HELP("dtx_phase2_retries_total", "counter", "Decisions sent again to a branch.");
	fprintf(f, "dtx_phase2_retries_total %" PRIu64 "\n", self->n_retries);
	HELP("dtx_group_commits_total", "counter", "LMDB commits of the log.");
	fprintf(f, "dtx_group_commits_total %" PRIu64 "\n", self->n_flushes);
	HELP("dtx_group_commit_decisions_total", "counter",
	     "Commit decisions made durable by group commits.");
	fprintf(f, "dtx_group_commit_decisions_total %" PRIu64 "\n", self->n_decisions);
	HELP("dtx_group_commit_records", "histogram", "Log records per group commit.");
	crd_hist_write(&self->h_batch, f, "dtx_group_commit_records", "");
	HELP("dtx_log_commit_seconds", "histogram",
	     "Time of one group commit: LMDB writes and fsyncs.");
	crd_hist_write(&self->h_commit, f, "dtx_log_commit_seconds", "");
	HELP("dtx_log_failing", "gauge", "1 while the log refuses writes (disk full, ...).");
	fprintf(f, "dtx_log_failing %d\n", self->log_failing != 0);
	HELP("dtx_participant_up", "gauge", "1 while the participant's agent is registered.");
	for (unsigned i = 0; i < self->nparts; i++)
		fprintf(f, "dtx_participant_up{participant=\"%s\"} %d\n", self->parts[i].name,
			self->parts[i].connected);
	HELP("dtx_start_time_seconds", "gauge", "When this coordinator started, Unix time.");
	fprintf(f, "dtx_start_time_seconds %.3f\n", (double)self->started_us / 1e6);
	HELP("dtx_draining", "gauge", "1 after SIGTERM, while in-flight work is finished.");
	fprintf(f, "dtx_draining %d\n", self->draining != 0);
}

static void s_ms(FILE *f, const char *what, double s)
{
	if (isinf(s))
		fprintf(f, " %s > 10 s", what);
	else
		fprintf(f, " %s <= %g ms", what, s * 1000);
}

void crd_stats_text(crd_t *self, FILE *f)
{
	s_gauges_t g;
	s_gauges(self, &g);
	fprintf(f, "transactions: committed %" PRIu64 ", aborted %" PRIu64 ", heuristic %" PRIu64
		"\n", self->n_committed, self->n_aborted, self->n_heuristic);
	fprintf(f, "in flight: %zu (active %u, preparing %u, committing %u, aborting %u); "
		"in doubt %u; stuck %u; orphan branches %u\n", self->ntx,
		g.by_kind[WAL_ACTIVE], g.by_kind[WAL_PREPARING], g.by_kind[WAL_COMMITTING],
		g.by_kind[WAL_ABORTING], g.in_doubt, g.stuck, self->norphans);
	const crd_hist_t *h = &self->h_decision;
	fprintf(f, "decision latency: %" PRIu64 " answered", h->count);
	if (h->count) {
		fprintf(f, ", mean %.3f ms,", h->sum * 1000 / (double)h->count);
		s_ms(f, "p50", crd_hist_quantile(h, 0.5));
		s_ms(f, "p99", crd_hist_quantile(h, 0.99));
	}
	fprintf(f, "\nphase-two retries: %" PRIu64 "\n", self->n_retries);
	h = &self->h_commit;
	fprintf(f, "group commits: %" PRIu64 ", records %" PRIu64 " (%.1f per commit), decisions %"
		PRIu64 "", self->n_flushes, self->n_flushed,
		self->n_flushes ? (double)self->n_flushed / (double)self->n_flushes : 0.0,
		self->n_decisions);
	if (h->count) {
		fprintf(f, "; commit time mean %.3f ms,", h->sum * 1000 / (double)h->count);
		s_ms(f, "p99", crd_hist_quantile(h, 0.99));
	}
	fprintf(f, "\nlog: %s\nparticipants:", self->log_failing ? dtx_strerror(self->log_failing)
							: "taking writes");
	for (unsigned i = 0; i < self->nparts; i++)
		fprintf(f, " %s %s", self->parts[i].name, self->parts[i].connected ? "up" : "down");
	fputc('\n', f);
}
