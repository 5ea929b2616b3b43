/*
 * dtx-banktest — the crash suite's workload: concurrent clients make
 * random transfers between accounts in the databases shop, bank and stock
 * (tables accounts(id, balance >= 0) and ledger(ref, account, delta) in
 * each), through coordinatord, and record what each client was told.
 *
 * A transfer debits account a in database A (only if the balance covers
 * it), credits account b in database B, and inserts a ledger row keyed by
 * the transfer's ref in each database it touches; of the others, half
 * also touch the third database with a zero-delta ledger row (three
 * branches). One in four stays in one database (one branch: committed in
 * one phase); its credit's ledger row is keyed "REF/2".
 *
 * Output, one line per transfer: "REF OUTCOME DB,DB[,DB]" where OUTCOME is
 * committed, aborted, refused (the coordinator refused it: nothing ran) or
 * unknown (no answer: the coordinator died or timed out). With -g each
 * line ends with a fourth field, the GTID the client learnt or "-".
 * -s SEED makes the clients' choices (accounts, amounts, shapes) repeat
 * from run to run; without it they follow the process id.
 *
 * dtx-banktest -Q ENDPOINT WAIT_MS reads GTIDs, one a line, from standard
 * input and asks the coordinator for each outcome as a client does
 * (QUERY, what dtxctl query sends), printing "GTID STATUS" per line:
 * STATUS is dtx_outcome_str()'s name, or "error:<dtx_strerror()>" when
 * there was no answer. One connection, one query at a time, each waiting
 * at most WAIT_MS.
 */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dtx.h"
#include "dtx_util.h"

static const char *const s_dbs[3] = {"shop", "bank", "stock"};

typedef struct {
	const char *endpoint;
	unsigned id, accounts;
	int64_t stop_ms;
	FILE *out;
	pthread_mutex_t *lock;
	unsigned seed;
	bool gtids;
	unsigned long n[4];
} s_client_t;

static void *s_run(void *arg)
{
	s_client_t *c = arg;
	dtx_client_t *cl = NULL;
	unsigned long seq = 0;

	while (dtx_now_ms() < c->stop_ms) {
		if (!cl && !(cl = dtx_client_new(c->endpoint))) {
			usleep(100000);
			continue;
		}
		int a = (int)(rand_r(&c->seed) % 3), b = (a + 1 + (int)(rand_r(&c->seed) % 2)) % 3;
		int third = 3 - a - b;
		bool three = rand_r(&c->seed) % 2, one = rand_r(&c->seed) % 4 == 0;
		char ref[64], acc_a[16], acc_b[16], amount[16], minus[24];
		snprintf(ref, sizeof(ref), "t%d-%u-%lu", (int)getpid(), c->id, seq++);
		snprintf(acc_a, sizeof(acc_a), "%u", 1 + rand_r(&c->seed) % c->accounts);
		snprintf(acc_b, sizeof(acc_b), "%u", 1 + rand_r(&c->seed) % c->accounts);
		snprintf(amount, sizeof(amount), "%u", 1 + rand_r(&c->seed) % 20);
		snprintf(minus, sizeof(minus), "-%s", amount);

		dtx_tx_t *tx = dtx_tx_new();
		const char *debit[] = {acc_a, amount}, *credit[] = {acc_b, amount};
		const char *la[] = {ref, acc_a, minus}, *lb[] = {ref, acc_b, amount};
		const char *lz[] = {ref};
		char ref2[72];
		snprintf(ref2, sizeof(ref2), "%s/2", ref);
		const char *lb2[] = {ref2, acc_b, amount};
		if (one) {
			b = a;
			three = false;
		}
		dtx_tx_add(tx, s_dbs[a],
			   "UPDATE accounts SET balance = balance - $2 WHERE id = $1 AND balance "
			   ">= $2",
			   2, debit, 1);
		dtx_tx_add(tx, s_dbs[a], "INSERT INTO ledger VALUES ($1, $2, $3)", 3, la, 1);
		dtx_tx_add(tx, s_dbs[b], "UPDATE accounts SET balance = balance + $2 WHERE id = $1",
			   2, credit, 1);
		dtx_tx_add(tx, s_dbs[b], "INSERT INTO ledger VALUES ($1, $2, $3)", 3,
			   one ? lb2 : lb, 1);
		if (three)
			dtx_tx_add(tx, s_dbs[third], "INSERT INTO ledger VALUES ($1, 0, 0)", 1, lz,
				   1);
		dtx_tx_set_timeout(tx, 2000);

		dtx_outcome_t out;
		memset(&out, 0, sizeof(out));
		int rc = dtx_client_run(cl, tx, &out, 2500);
		dtx_tx_destroy(&tx);
		const char *what;
		if (rc == 0 && out.status == DTX_OUTCOME_COMMITTED)
			what = "committed", c->n[0]++;
		else if (rc == 0 && out.status == DTX_OUTCOME_ABORTED)
			what = "aborted", c->n[1]++;
		else if (rc < 0 && rc != DTX_ETIMEOUT && rc != DTX_EIO && rc != DTX_EPROTO)
			what = "refused", c->n[2]++;
		else
			what = "unknown", c->n[3]++;
		char dbs[32], tail[DTX_GTID_MAX + 2] = "";
		if (one)
			snprintf(dbs, sizeof(dbs), "%s", s_dbs[a]);
		else if (three)
			snprintf(dbs, sizeof(dbs), "%s,%s,%s", s_dbs[a], s_dbs[b], s_dbs[third]);
		else
			snprintf(dbs, sizeof(dbs), "%s,%s", s_dbs[a], s_dbs[b]);
		if (c->gtids)
			snprintf(tail, sizeof(tail), " %s", out.gtid[0] ? out.gtid : "-");
		pthread_mutex_lock(c->lock);
		fprintf(c->out, "%s %s %s%s\n", ref, what, dbs, tail);
		pthread_mutex_unlock(c->lock);
		if (rc == 0 && out.status != DTX_OUTCOME_COMMITTED &&
		    out.status != DTX_OUTCOME_ABORTED)
			fprintf(stderr, "banktest: %s answered %s\n", ref,
				dtx_outcome_str(out.status));
		if (strcmp(what, "unknown") == 0 || strcmp(what, "refused") == 0) {
			/* A late answer may still come on this connection: start a
			 * new one, and give a restarting peer a moment. */
			dtx_client_destroy(&cl);
			usleep(100000);
		}
	}
	dtx_client_destroy(&cl);
	return NULL;
}

/* -Q: one QUERY per GTID on standard input; see the head comment. */
static int s_query_all(const char *endpoint, int wait_ms)
{
	dtx_client_t *cl = dtx_client_new(endpoint);
	char line[256];
	if (!cl)
		return 2;
	while (fgets(line, sizeof(line), stdin)) {
		line[strcspn(line, " \r\n")] = '\0';
		if (!line[0])
			continue;
		dtx_outcome_t out;
		memset(&out, 0, sizeof(out));
		int rc = dtx_client_query(cl, line, &out, wait_ms);
		if (rc == 0) {
			printf("%s %s\n", line, dtx_outcome_str(out.status));
		} else {
			printf("%s error:%s\n", line, dtx_strerror(rc));
			/* a late answer may still come on this connection */
			dtx_client_destroy(&cl);
			if (!(cl = dtx_client_new(endpoint)))
				return 2;
		}
	}
	dtx_client_destroy(&cl);
	return 0;
}

static int s_usage(void)
{
	fprintf(stderr,
		"usage: dtx-banktest [-g] [-s SEED] ENDPOINT CLIENTS SECONDS ACCOUNTS OUTFILE\n"
		"       dtx-banktest -Q ENDPOINT WAIT_MS < GTIDS\n");
	return 2;
}

int main(int argc, char **argv)
{
	bool gtids = false, seeded = false;
	unsigned seed = 0;
	int opt;
	while ((opt = getopt(argc, argv, "gs:Q")) != -1) {
		switch (opt) {
		case 'g': gtids = true; break;
		case 's':
			seed = (unsigned)strtoul(optarg, NULL, 10);
			seeded = true;
			break;
		case 'Q':
			if (argc - optind != 2)
				return s_usage();
			return s_query_all(argv[optind], atoi(argv[optind + 1]));
		default: return s_usage();
		}
	}
	argc -= optind - 1;
	argv += optind - 1;
	if (argc != 6)
		return s_usage();
	unsigned n = (unsigned)atoi(argv[2]);
	FILE *out = fopen(argv[5], "w");
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
				     .accounts = (unsigned)atoi(argv[4]),
				     .stop_ms = stop,
				     .out = out,
				     .lock = &lock,
				     .seed = (seeded ? seed : (unsigned)getpid()) * 7919u + i,
				     .gtids = gtids};
		pthread_create(&th[i], NULL, s_run, &cs[i]);
	}
	unsigned long tot[4] = {0};
	for (unsigned i = 0; i < n; i++) {
		pthread_join(th[i], NULL);
		for (int k = 0; k < 4; k++)
			tot[k] += cs[i].n[k];
	}
	fclose(out);
	printf("committed %lu aborted %lu refused %lu unknown %lu\n", tot[0], tot[1], tot[2],
	       tot[3]);
	free(cs);
	free(th);
	return 0;
}
