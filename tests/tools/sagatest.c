/*
 * dtx-sagatest — the saga crash suite's workload: concurrent clients run
 * order sagas through coordinatord and record what each was told.
 *
 * One saga, for order REF (also its submission key):
 *   reserve  stock, compensable: one widget out of sitems, a row in sres;
 *            compensated by putting it back and a row in sunres;
 *   pay      bank, the pivot: AMOUNT (1..40) off account A of saccounts
 *            (only if the balance covers it: many do not, and those sagas
 *            are compensated), a row (REF, A, AMOUNT) in spaid;
 *   notify   shop, retriable: a row in snotes.
 * No table has a key on REF, so a step applied twice shows as two rows.
 *
 * A client that hears no outcome (the coordinator died, a time-out, a
 * refusal while it restarts) sends the same saga again with the same key
 * until it hears one or the run is over (then for at most GRACE seconds
 * more): a key is never run twice, so what it hears at last is the
 * outcome of the first submission.
 *
 * Output, one line per saga: "REF OUTCOME GTID" where OUTCOME is
 * completed, compensated, heuristic, refused (nothing ran: the
 * coordinator refused it at the first try) or unknown (never answered),
 * and GTID the saga's, or "-".
 */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dtx.h"
#include "dtx_util.h"

typedef struct {
	const char *endpoint;
	unsigned id, accounts;
	int64_t stop_ms, grace_ms;
	FILE *out;
	pthread_mutex_t *lock;
	unsigned seed;
	unsigned long n[5];
} s_client_t;

static dtx_saga_t *s_saga(const char *ref, const char *acc, const char *amount)
{
	dtx_saga_t *sg = dtx_saga_new();
	const char *r[] = {ref}, *pay[] = {acc, amount, ref};
	if (!sg || dtx_saga_set_key(sg, ref) ||
	    dtx_saga_step(sg, "reserve", "stock", DTX_SAGA_COMPENSABLE) ||
	    dtx_saga_add(sg, "UPDATE sitems SET qty = qty - 1 WHERE item = 'w' AND qty >= 1", 0,
			 NULL, 1) ||
	    dtx_saga_add(sg, "INSERT INTO sres (ord) VALUES ($1)", 1, r, 1) ||
	    dtx_saga_compensate(sg, "UPDATE sitems SET qty = qty + 1 WHERE item = 'w'", 0, NULL,
				1) ||
	    dtx_saga_compensate(sg, "INSERT INTO sunres (ord) VALUES ($1)", 1, r, 1) ||
	    dtx_saga_step(sg, "pay", "bank", DTX_SAGA_PIVOT) ||
	    dtx_saga_add(
		    sg,
		    "UPDATE saccounts SET balance = balance - $2 WHERE id = $1 AND balance >= $2",
		    2, pay, 1) ||
	    dtx_saga_add(sg, "INSERT INTO spaid (ord, account, amount) VALUES ($3, $1, $2)", 3, pay,
			 1) ||
	    dtx_saga_step(sg, "notify", "shop", DTX_SAGA_RETRIABLE) ||
	    dtx_saga_add(sg, "INSERT INTO snotes (ord) VALUES ($1)", 1, r, 1)) {
		dtx_saga_destroy(&sg);
		return NULL;
	}
	dtx_saga_set_timeout(sg, 2000);
	return sg;
}

static void *s_run(void *arg)
{
	s_client_t *c = arg;
	dtx_client_t *cl = NULL;
	unsigned long seq = 0;

	while (dtx_now_ms() < c->stop_ms) {
		char ref[64], acc[16], amount[16], gtid[DTX_GTID_MAX] = "-";
		snprintf(ref, sizeof(ref), "s%d-%u-%lu", (int)getpid(), c->id, seq++);
		snprintf(acc, sizeof(acc), "%u", 1 + rand_r(&c->seed) % c->accounts);
		snprintf(amount, sizeof(amount), "%u", 1 + rand_r(&c->seed) % 40);
		dtx_saga_t *sg = s_saga(ref, acc, amount);
		if (!sg)
			return NULL;
		const char *what = NULL;
		for (unsigned tries = 0; !what; tries++) {
			if (!cl && !(cl = dtx_client_new(c->endpoint))) {
				usleep(100000);
				continue;
			}
			dtx_outcome_t out;
			memset(&out, 0, sizeof(out));
			int rc = dtx_client_run_saga(cl, sg, &out, 3000);
			if (out.gtid[0])
				snprintf(gtid, sizeof(gtid), "%s", out.gtid);
			if (rc == 0 && out.status == DTX_OUTCOME_COMPLETED)
				what = "completed", c->n[0]++;
			else if (rc == 0 && out.status == DTX_OUTCOME_COMPENSATED)
				what = "compensated", c->n[1]++;
			else if (rc == 0 && out.status == DTX_OUTCOME_HEURISTIC)
				what = "heuristic", c->n[2]++;
			else if (tries == 0 && rc < 0 && rc != DTX_ETIMEOUT && rc != DTX_EIO &&
				 rc != DTX_EPROTO && rc != DTX_ESHUTDOWN)
				what = "refused", c->n[3]++;
			else if (dtx_now_ms() > c->stop_ms + c->grace_ms)
				what = "unknown", c->n[4]++;
			if (!what || rc != 0) {
				/* a late answer may still come on this connection */
				dtx_client_destroy(&cl);
				if (!what)
					usleep(200000);
			}
		}
		dtx_saga_destroy(&sg);
		pthread_mutex_lock(c->lock);
		fprintf(c->out, "%s %s %s\n", ref, what, gtid);
		pthread_mutex_unlock(c->lock);
	}
	dtx_client_destroy(&cl);
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc != 7) {
		fprintf(stderr,
			"usage: dtx-sagatest ENDPOINT CLIENTS SECONDS GRACE ACCOUNTS OUTFILE\n");
		return 2;
	}
	unsigned n = (unsigned)atoi(argv[2]);
	FILE *out = fopen(argv[6], "w");
	pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	s_client_t *cs = calloc(n, sizeof(*cs));
	pthread_t *th = calloc(n, sizeof(*th));
	int64_t stop = dtx_now_ms() + (int64_t)(atof(argv[3]) * 1000);

	if (!out || !cs || !th || n == 0)
		return 2;
	setvbuf(out, NULL, _IOLBF, 0);
	for (unsigned i = 0; i < n; i++) {
		cs[i] = (s_client_t){.endpoint = argv[1],
				     .id = i,
				     .accounts = (unsigned)atoi(argv[5]),
				     .stop_ms = stop,
				     .grace_ms = (int64_t)(atof(argv[4]) * 1000),
				     .out = out,
				     .lock = &lock,
				     .seed = (unsigned)getpid() * 7919u + i};
		pthread_create(&th[i], NULL, s_run, &cs[i]);
	}
	unsigned long tot[5] = {0};
	for (unsigned i = 0; i < n; i++) {
		pthread_join(th[i], NULL);
		for (int k = 0; k < 5; k++)
			tot[k] += cs[i].n[k];
	}
	fclose(out);
	printf("completed %lu compensated %lu heuristic %lu refused %lu unknown %lu\n", tot[0],
	       tot[1], tot[2], tot[3], tot[4]);
	free(cs);
	free(th);
	return 0;
}
