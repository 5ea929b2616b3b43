/*
 * crd_stats.c — what the coordinator counts, as numbers a program reads
 * (the Prometheus text format, served by crd_metrics.c's HTTP server) and
 * as the rows of dtxctl stats' reply, which dtxctl prints for a person.
 * Both are written from one snapshot of the gauges, taken by walking the
 * in-flight list.
 */
#include "config.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "crd_int.h"
#include "dtx_admin.h"

static const double s_le_decision[] = {0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05,
				       0.1,    0.2,   0.5,   1,     2,    5,    10};
static const double s_le_commit[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
				     0.01,   0.025,   0.05,   0.1,   0.25,   1};
static const double s_le_batch[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096};
#define NLE(a) (unsigned)(sizeof(a) / sizeof((a)[0]))

void crd_stats_init(crd_t *self)
{
	crd_hist_init(&self->h_decision, s_le_decision, NLE(s_le_decision));
	crd_hist_init(&self->h_saga, s_le_decision, NLE(s_le_decision));
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
	fprintf(f, "dtx_transactions_total{outcome=\"committed\"} %" PRIu64 "\n",
		self->n_committed);
	fprintf(f, "dtx_transactions_total{outcome=\"aborted\"} %" PRIu64 "\n", self->n_aborted);
	fprintf(f, "dtx_transactions_total{outcome=\"heuristic\"} %" PRIu64 "\n",
		self->n_heuristic);
	HELP("dtx_transactions_in_flight", "gauge", "Transactions not finished, by state.");
	for (int st = WAL_ACTIVE; st <= WAL_ABORTING; st++)
		if (st != WAL_COMMITTED)
			fprintf(f, "dtx_transactions_in_flight{state=\"%s\"} %u\n",
				wal_kind_str(st), g.by_kind[st]);
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
	HELP("dtx_sagas_total", "counter", "Sagas finished, by outcome.");
	fprintf(f, "dtx_sagas_total{outcome=\"completed\"} %" PRIu64 "\n", self->n_completed);
	fprintf(f, "dtx_sagas_total{outcome=\"compensated\"} %" PRIu64 "\n", self->n_compensated);
	HELP("dtx_sagas_in_flight", "gauge", "Sagas not finished.");
	fprintf(f, "dtx_sagas_in_flight %zu\n", self->nsagas);
	HELP("dtx_saga_steps_total", "counter", "Saga steps sent, first tries.");
	fprintf(f, "dtx_saga_steps_total %" PRIu64 "\n", self->n_steps);
	HELP("dtx_saga_compensations_total", "counter", "Saga compensations sent, first tries.");
	fprintf(f, "dtx_saga_compensations_total %" PRIu64 "\n", self->n_compensations);
	HELP("dtx_saga_seconds", "histogram",
	     "From a client's saga to the answer with its outcome.");
	crd_hist_write(&self->h_saga, f, "dtx_saga_seconds", "");
	HELP("dtx_phase2_retries_total", "counter",
	     "Decisions sent again to a branch, saga steps and compensations sent again.");
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

/* A latency quantile in whole microseconds, or DTX_A_INF past the
 * histogram's last bound. */
static uint64_t s_quantile_us(const crd_hist_t *h, double q)
{
	double s = crd_hist_quantile(h, q);
	return isinf(s) ? DTX_A_INF : (uint64_t)llround(s * 1e6);
}

static uint64_t s_mean_us(const crd_hist_t *h)
{
	return (uint64_t)llround(h->sum * 1e6 / (double)h->count);
}

void crd_stats_rows(crd_t *self, dtx_reply_t *r)
{
	s_gauges_t g;
	s_gauges(self, &g);
	dtx_reply_row(r, "transactions");
	dtx_reply_u64(r, DTX_A_COMMITTED, self->n_committed);
	dtx_reply_u64(r, DTX_A_ABORTED, self->n_aborted);
	dtx_reply_u64(r, DTX_A_HEURISTIC, self->n_heuristic);
	dtx_reply_row(r, "in_flight");
	dtx_reply_u64(r, DTX_A_COUNT, self->ntx);
	dtx_reply_u64(r, DTX_A_ACTIVE, g.by_kind[WAL_ACTIVE]);
	dtx_reply_u64(r, DTX_A_PREPARING, g.by_kind[WAL_PREPARING]);
	dtx_reply_u64(r, DTX_A_COMMITTING, g.by_kind[WAL_COMMITTING]);
	dtx_reply_u64(r, DTX_A_ABORTING, g.by_kind[WAL_ABORTING]);
	dtx_reply_u64(r, DTX_A_IN_DOUBT, g.in_doubt);
	dtx_reply_u64(r, DTX_A_STUCK, g.stuck);
	dtx_reply_u64(r, DTX_A_ORPHANS, self->norphans);
	const crd_hist_t *h = &self->h_decision;
	dtx_reply_row(r, "decision_latency");
	dtx_reply_u64(r, DTX_A_COUNT, h->count);
	if (h->count) {
		dtx_reply_u64(r, DTX_A_MEAN_US, s_mean_us(h));
		dtx_reply_u64(r, DTX_A_P50_US, s_quantile_us(h, 0.5));
		dtx_reply_u64(r, DTX_A_P99_US, s_quantile_us(h, 0.99));
	}
	dtx_reply_row(r, "sagas");
	dtx_reply_u64(r, DTX_A_SAGAS, self->nsagas);
	dtx_reply_u64(r, DTX_A_COMPLETED, self->n_completed);
	dtx_reply_u64(r, DTX_A_COMPENSATED, self->n_compensated);
	h = &self->h_saga;
	dtx_reply_row(r, "saga_latency");
	dtx_reply_u64(r, DTX_A_COUNT, h->count);
	if (h->count) {
		dtx_reply_u64(r, DTX_A_MEAN_US, s_mean_us(h));
		dtx_reply_u64(r, DTX_A_P50_US, s_quantile_us(h, 0.5));
		dtx_reply_u64(r, DTX_A_P99_US, s_quantile_us(h, 0.99));
	}
	dtx_reply_row(r, "phase_two");
	dtx_reply_u64(r, DTX_A_RETRIES, self->n_retries);
	h = &self->h_commit;
	dtx_reply_row(r, "group_commits");
	dtx_reply_u64(r, DTX_A_COUNT, self->n_flushes);
	dtx_reply_u64(r, DTX_A_RECORDS, self->n_flushed);
	dtx_reply_u64(r, DTX_A_DECISIONS, self->n_decisions);
	if (h->count) {
		dtx_reply_u64(r, DTX_A_MEAN_US, s_mean_us(h));
		dtx_reply_u64(r, DTX_A_P99_US, s_quantile_us(h, 0.99));
	}
	dtx_reply_row(r, "log");
	dtx_reply_i64(r, DTX_A_CODE, self->log_failing);
	for (unsigned i = 0; i < self->nparts; i++) {
		dtx_reply_row(r, "participant");
		dtx_reply_str(r, DTX_A_PARTICIPANT, self->parts[i].name);
		dtx_reply_bool(r, DTX_A_UP, self->parts[i].connected);
		dtx_reply_bool(r, DTX_A_ALLOWED, self->parts[i].allowed);
	}
}
