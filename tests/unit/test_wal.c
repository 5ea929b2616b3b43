/*
 * test_wal.c — the coordinator log: sequences that never repeat, group
 * commit, scans, the single-instance lock, checksums, retention, and a
 * full log that refuses writes without losing what it holds.
 */
#include "config.h"

#include <lmdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../tap.h"
#include "dtx.h"
#include "wal.h"

static char base[200], dir[256];

/* Open the log in dir, creating it (an explicit act) where there is none. */
static int open_log(wal_t **w, size_t map)
{
	char path[300];
	snprintf(path, sizeof(path), "%s/data.mdb", dir);
	wal_opts_t o = {.dir = dir,
			.coord_id = "c1",
			.map_size = map,
			.seq_block = 10,
			.create = access(path, F_OK) != 0};
	char why[256];
	int rc = wal_open(&o, w, why, sizeof(why));
	if (rc)
		printf("# wal_open: %s\n", why);
	return rc;
}

static int rec(wal_t *w, uint64_t seq, uint8_t idx, int kind, int64_t at, bool forced)
{
	wal_rec_t r = {.seq = seq, .idx = idx, .kind = (uint8_t)kind, .epoch = 1, .at_us = at};
	if (kind == WAL_ACTIVE) {
		r.nparts = 2;
		r.parts[0] = "shop";
		r.parts[1] = "bank";
	}
	if (kind == WAL_ABORTING)
		r.note = "bank voted no";
	return wal_append(w, &r, forced);
}

typedef struct {
	unsigned ntx, nrecs;
	uint64_t seqs[64];
	int last_kind[64];
	char first_part[64][16];
	char note[128];
	char key[64];               /* the last begin record's key */
} collect_t;

static int collect(const wal_rec_t *recs, unsigned n, void *arg)
{
	collect_t *c = arg;
	if (c->ntx < 64) {
		c->seqs[c->ntx] = recs[0].seq;
		c->last_kind[c->ntx] = recs[n - 1].kind;
		snprintf(c->first_part[c->ntx], 16, "%s", recs[0].nparts ? recs[0].parts[0] : "");
	}
	for (unsigned i = 0; i < n; i++)
		if (recs[i].note)
			snprintf(c->note, sizeof(c->note), "%s", recs[i].note);
	if (recs[0].key)
		snprintf(c->key, sizeof(c->key), "%s", recs[0].key);
	c->ntx++;
	c->nrecs += n;
	return 0;
}

/* Prune what ended before older_than_us in a batch of its own; the count
 * in *removed. */
static int prune_now(wal_t *w, int64_t older_than_us, unsigned *removed)
{
	bool started;
	size_t n;
	int rc, prc;
	wal_prune_later(w, older_than_us);
	if ((rc = wal_flush_start(w, &started)) || (rc = wal_flush_finish(w, &n)))
		return rc;
	*removed = wal_last_pruned(w, &prc);
	return prc;
}

static void test_sequences(void)
{
	wal_t *w = NULL, *w2 = NULL;
	uint64_t a = 0, b = 0, seen_max = 0;
	bool distinct = true;

	wal_opts_t plain = {.dir = dir, .coord_id = "c1"};
	char why[256];
	is_int(wal_open(&plain, &w, why, sizeof(why)), DTX_ENOTFOUND,
	       "no log is created unless asked: DTX_ENOTFOUND");
	ok(w == NULL && strstr(why, "--create-log") != NULL, "... saying how to create one");
	int64_t clock_epoch = (int64_t)time(NULL) - 1735689600;
	is_int(open_log(&w, 0), 0, "a new log is created and opens");
	ok(wal_epoch(w) > clock_epoch && wal_epoch(w) <= clock_epoch + 2,
	   "its epoch is the clock's next second (%u, clock %lld)", wal_epoch(w),
	   (long long)clock_epoch);
	is_int(wal_first_epoch(w), wal_epoch(w), "... and is kept as the first");
	uint32_t first = wal_epoch(w);
	for (int i = 0; i < 25; i++) { /* crosses two blocks of 10 */
		wal_next_seq(w, &b);
		distinct &= b > a;
		a = b;
	}
	seen_max = b;
	ok(distinct, "sequence numbers increase across block reservations");
	ok(open_log(&w2, 0) == DTX_ELOCKED, "a second open of the same log is refused (locked)");
	wal_close(&w);
	is_int(open_log(&w, 0), 0, "the log reopens once closed");
	is_int(wal_epoch(w), first, "the epoch is the log's own: it stays at a reopen");
	is_int(wal_first_epoch(w), first, "the first epoch stays");
	wal_next_seq(w, &b);
	ok(b > seen_max, "no sequence number repeats after a restart (%llu > %llu)",
	   (unsigned long long)b, (unsigned long long)seen_max);
	wal_close(&w);
	wal_close(&w);
	ok(w == NULL, "wal_close is idempotent and clears the pointer");
}

static void test_records(void)
{
	wal_t *w = NULL;
	collect_t c = {0};
	size_t n = 0;

	open_log(&w, 0);
	rec(w, 100, 0, WAL_ACTIVE, 1000, false);
	rec(w, 100, 1, WAL_PREPARING, 1001, false);
	rec(w, 101, 0, WAL_ACTIVE, 1002, false);
	rec(w, 101, 1, WAL_PREPARING, 1003, false);
	ok(!wal_forced_pending(w), "lazy records do not ask for a flush");
	rec(w, 101, 2, WAL_COMMITTING, 1004, true);
	ok(wal_forced_pending(w), "a forced record asks for a flush");
	is_int(wal_pending(w), 5, "five records queued");
	rec(w, 102, 0, WAL_ACTIVE, 1005, false);
	rec(w, 102, 1, WAL_ABORTING, 1006, false);
	rec(w, 102, 2, WAL_ABORTED, 1007, false);
	is_int(wal_flush(w, &n), 0, "one group commit writes them all");
	is_int(n, 8, "... all eight records");
	ok(!wal_pending(w) && !wal_forced_pending(w), "the queue is empty after the flush");

	wal_scan(w, true, collect, &c);
	is_int(c.ntx, 2, "the recovery scan sees the two unfinished transactions");
	ok(c.seqs[0] == 100 && c.last_kind[0] == WAL_PREPARING && c.seqs[1] == 101 &&
		   c.last_kind[1] == WAL_COMMITTING,
	   "... in order, with their last state");
	ok(strcmp(c.first_part[0], "shop") == 0, "participants survive in the begin record");
	memset(&c, 0, sizeof(c));
	wal_scan(w, false, collect, &c);
	is_int(c.ntx, 3, "the full scan sees the finished one too");
	memset(&c, 0, sizeof(c));
	is_int(wal_history(w, 102, collect, &c), 0, "history of one transaction");
	ok(c.nrecs == 3 && strcmp(c.note, "bank voted no") == 0, "... its three records and note");
	is_int(wal_history(w, 999, collect, &c), DTX_ENOTFOUND,
	       "history of an unknown one: not found");
	wal_close(&w);

	/* After a close (or a crash) what was flushed is there. */
	open_log(&w, 0);
	memset(&c, 0, sizeof(c));
	wal_scan(w, true, collect, &c);
	is_int(c.ntx, 2, "flushed records survive a reopen");
	/* Queued but not flushed: gone, as after a crash before the commit. */
	rec(w, 103, 0, WAL_ACTIVE, 2000, false);
	wal_close(&w);
	open_log(&w, 0);
	memset(&c, 0, sizeof(c));
	wal_scan(w, false, collect, &c);
	is_int(c.ntx, 3, "records never flushed are not in the log");

	/* Retention: 102 ended at 1007 µs; prune what ended before 5000. */
	unsigned removed = 0;
	rec(w, 100, 2, WAL_ABORTING, 1008, false);
	rec(w, 100, 3, WAL_ABORTED, 900000, false);
	wal_flush(w, NULL);
	is_int(prune_now(w, 5000, &removed), 0, "prune runs");
	is_int(removed, 1, "it removes the one transaction that ended before the cut");
	memset(&c, 0, sizeof(c));
	wal_scan(w, false, collect, &c);
	ok(c.ntx == 2 && c.seqs[0] == 100 && c.seqs[1] == 101,
	   "unfinished and recently ended transactions stay");
	ok(wal_pruned_hi(w) == 102, "the log knows the highest sequence number it pruned");
	wal_close(&w);
	open_log(&w, 0);
	ok(wal_pruned_hi(w) == 102, "... across a reopen");
	is_int(prune_now(w, 5000, &removed), 0, "a prune that removes nothing");
	ok(removed == 0 && wal_pruned_hi(w) == 102, "... leaves it as it was");
	wal_close(&w);
}

/* The background group commit: the queue keeps filling while a batch is
 * written; the next batch waits for it; a close waits too. */
static void test_background(void)
{
	wal_t *w = NULL;
	collect_t c = {0};
	size_t n = 99;
	bool started = false;

	snprintf(dir, sizeof(dir), "%s/bg", base);
	open_log(&w, 0);
	is_int(wal_flush_start(w, &started), 0, "nothing queued: nothing to start");
	ok(!started && !wal_flush_busy(w), "... and nothing under way");
	rec(w, 200, 0, WAL_ACTIVE, 1, false);
	rec(w, 200, 1, WAL_COMMITTING, 2, true);
	is_int(wal_flush_start(w, &started), 0, "a batch starts");
	ok(started && wal_flush_busy(w), "... and is under way");
	ok(!wal_pending(w) && !wal_forced_pending(w), "its records left the queue");
	rec(w, 200, 2, WAL_COMMITTED, 3, false);
	is_int(wal_pending(w), 1, "the queue fills meanwhile");
	is_int(wal_flush_start(w, &started), 0, "a second batch does not start...");
	ok(!started, "... while the first is under way");
	is_int(wal_flush(w, NULL), DTX_EBUSY, "a synchronous flush refuses while a batch is out");
	struct pollfd pfd = {.fd = wal_flush_fd(w), .events = POLLIN};
	is_int(poll(&pfd, 1, 10000), 1, "the flush descriptor says when the batch is done");
	is_int(wal_flush_finish(w, &n), 0, "the batch is durable");
	is_int(n, 2, "... both of its records");
	ok(!wal_flush_busy(w), "nothing under way any more");
	is_int(wal_flush_start(w, &started), 0, "the next batch starts");
	is_int(wal_flush_finish(w, &n), 0, "finishing before the descriptor fires waits for it");
	is_int(n, 1, "... its record");
	rec(w, 201, 0, WAL_ACTIVE, 4, false);
	wal_flush_start(w, &started);
	wal_close(&w); /* waits for the batch under way */
	open_log(&w, 0);
	wal_scan(w, false, collect, &c);
	ok(c.ntx == 2 && c.seqs[0] == 200 && c.last_kind[0] == WAL_COMMITTED && c.seqs[1] == 201,
	   "every batch is in the log, in order, after a close");
	wal_close(&w);
	snprintf(dir, sizeof(dir), "%s", base);
}

/* Retention in the background: the writer prunes a bounded number in each
 * batch's commit, and a batch of its own when no record is queued. */
static void test_background_prune(void)
{
	wal_t *w = NULL;
	collect_t c = {0};
	size_t n = 99;
	unsigned first, second;
	int prc = -1;
	bool started = false;

	snprintf(dir, sizeof(dir), "%s/bgprune", base);
	open_log(&w, 0);
	/* 300 transactions that ended at 10 µs .. 3000 µs, one that ended
	 * late, one under way */
	for (uint64_t seq = 1; seq <= 300; seq++) {
		rec(w, seq, 0, WAL_ACTIVE, (int64_t)seq * 10 - 5, false);
		rec(w, seq, 1, WAL_COMMITTED, (int64_t)seq * 10, false);
	}
	rec(w, 301, 0, WAL_ACTIVE, 1, false);
	rec(w, 301, 1, WAL_COMMITTED, 1000000, false);
	rec(w, 302, 0, WAL_ACTIVE, 1, false);
	is_int(wal_flush(w, NULL), 0, "302 transactions in the log");
	ok(!wal_prune_pending(w), "no pruning due before it is asked for");
	wal_prune_later(w, 5000);
	ok(wal_prune_pending(w), "pruning is due once asked for");
	rec(w, 303, 0, WAL_ACTIVE, 1, false);
	wal_flush_start(w, &started);
	is_int(wal_flush_finish(w, &n), 0, "a batch commits");
	is_int(n, 1, "... with its record");
	first = wal_last_pruned(w, &prc);
	ok(first > 0 && first < 300 && prc == 0,
	   "its commit pruned some of the 300, not all at once (%u)", first);
	ok(wal_pruned_hi(w) == first, "the mark is the highest pruned: %llu",
	   (unsigned long long)wal_pruned_hi(w));
	ok(wal_prune_pending(w), "more are due");
	ok(!wal_pending(w), "no record queued");
	is_int(wal_flush_start(w, &started), 0, "a batch for pruning alone...");
	ok(started, "... starts");
	is_int(wal_flush_finish(w, &n), 0, "... commits");
	second = wal_last_pruned(w, &prc);
	ok(n == 0 && second == 300 - first && prc == 0, "... and prunes the rest (%u)", second);
	ok(!wal_prune_pending(w), "nothing due any more");
	is_int(wal_flush_start(w, &started), 0, "then nothing to start");
	ok(!started, "... and nothing started");
	/* A cutoff moved while a batch is out stays due after it. */
	wal_prune_later(w, 5000);
	wal_flush_start(w, &started);
	wal_prune_later(w, 6000);
	wal_flush_finish(w, &n);
	ok(started && wal_last_pruned(w, &prc) == 0 && wal_prune_pending(w),
	   "a cutoff moved during a batch is still due after it");
	wal_flush_start(w, &started);
	wal_flush_finish(w, &n);
	ok(!wal_prune_pending(w), "... and done by the next");
	wal_scan(w, false, collect, &c);
	ok(c.ntx == 3 && c.seqs[0] == 301 && c.seqs[1] == 302 && c.seqs[2] == 303,
	   "what ended late, what is under way and the new record stay");
	wal_close(&w);
	open_log(&w, 0);
	ok(wal_pruned_hi(w) == 300, "the mark was committed with the pruning");
	wal_close(&w);
	snprintf(dir, sizeof(dir), "%s", base);
}

static void test_checksum(void)
{
	wal_t *w = NULL;
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val k, v;
	uint8_t key[9] = {0, 0, 0, 0, 0, 0, 0, 101, 1};

	/* Flip one byte of a record behind the log's back. */
	mdb_env_create(&env);
	mdb_env_set_maxdbs(env, 4);
	mdb_env_open(env, dir, 0, 0600);
	mdb_txn_begin(env, NULL, 0, &txn);
	mdb_dbi_open(txn, "log", 0, &dbi);
	k = (MDB_val){9, key};
	int got = mdb_get(txn, dbi, &k, &v);
	ok(got == 0, "the record to damage is there");
	if (got == 0) {
		uint8_t *copy = malloc(v.mv_size);
		memcpy(copy, v.mv_data, v.mv_size);
		copy[10] ^= 0x40; /* inside at_us */
		v.mv_data = copy;
		mdb_put(txn, dbi, &k, &v, 0);
		free(copy);
	}
	mdb_txn_commit(txn);
	mdb_env_close(env);

	is_int(open_log(&w, 0), DTX_ECRC, "a record that fails its checksum stops the open");
	ok(w == NULL, "... and no log is handed out");

	wal_opts_t o = {.dir = dir, .coord_id = "other"};
	char why[256];
	ok(wal_open(&o, &w, why, sizeof(why)) != 0, "a log of another coordinator is refused");
}

static void test_truncated(void)
{
	wal_t *w = NULL;
	char path[300], note[400];
	struct stat st;

	snprintf(dir, sizeof(dir), "%s/trunc", base);
	is_int(open_log(&w, 0), 0, "a log to truncate opens");
	memset(note, 'n', sizeof(note) - 1);
	note[sizeof(note) - 1] = '\0';
	for (uint64_t seq = 1; seq <= 2000; seq++) {
		wal_rec_t r = {.seq = seq, .kind = WAL_ACTIVE, .epoch = 1, .note = note};
		wal_append(w, &r, false);
	}
	is_int(wal_flush(w, NULL), 0, "2000 records written");
	wal_close(&w);
	snprintf(path, sizeof(path), "%s/data.mdb", dir);
	stat(path, &st);
	ok(truncate(path, st.st_size / 2) == 0, "data.mdb cut to half its size (%lld bytes)",
	   (long long)st.st_size / 2);
	is_int(open_log(&w, 0), DTX_ECRC, "a truncated log stops the open instead of crashing");
	snprintf(dir, sizeof(dir), "%s", base);
}

/* Submission keys: written with their begin record, found while queued,
 * being written and on disk, kept across a reopen, pruned with it. */
static void test_keys(void)
{
	wal_t *w = NULL;
	uint64_t seq = 0;
	bool started = false;
	size_t n;
	collect_t c = {0};

	snprintf(dir, sizeof(dir), "%s/keys", base);
	is_int(open_log(&w, 0), 0, "a log for keys opens");
	wal_rec_t r = {.seq = 7, .kind = WAL_ACTIVE, .epoch = 1, .at_us = 5, .key = "order-7"};
	is_int(wal_append(w, &r, false), 0, "a begin record with a key is queued");
	wal_rec_t bad = {.seq = 7, .idx = 1, .kind = WAL_PREPARING, .epoch = 1, .key = "k"};
	is_int(wal_append(w, &bad, false), DTX_EINVAL, "only a begin record carries a key");
	is_int(wal_key_find(w, "order-7", &seq), 0, "the key is found while queued");
	is_int((int)seq, 7, "... naming its transaction");
	is_int(wal_key_find(w, "order-8", &seq), DTX_ENOTFOUND, "another key is not");
	wal_flush_start(w, &started);
	seq = 0;
	ok(started && wal_key_find(w, "order-7", &seq) == 0 && seq == 7,
	   "found while its batch is being written");
	is_int(wal_flush_finish(w, &n), 0, "the batch commits");
	seq = 0;
	ok(wal_key_find(w, "order-7", &seq) == 0 && seq == 7, "found on disk");
	wal_close(&w);
	open_log(&w, 0);
	seq = 0;
	ok(wal_key_find(w, "order-7", &seq) == 0 && seq == 7, "found after a reopen");
	wal_history(w, 7, collect, &c);
	ok(c.ntx == 1 && strcmp(c.key, "order-7") == 0, "the begin record reads back with its key");
	rec(w, 7, 1, WAL_COMMITTED, 10, false);
	wal_flush(w, NULL);
	wal_prune_later(w, 100);
	wal_flush_start(w, &started);
	wal_flush_finish(w, &n);
	is_int(wal_key_find(w, "order-7", &seq), DTX_ENOTFOUND,
	       "retention removes the key with its transaction");
	wal_close(&w);
	snprintf(dir, sizeof(dir), "%s", base);
}

/* A saga's records: the definition as a body, a key, step numbers; its
 * end records end it for the scan. */
typedef struct {
	unsigned n;
	int steps[8], kinds[8];
	char body[64];
	uint32_t body_len;
	char key[16];
} saga_seen_t;

static int saga_fn(const wal_rec_t *recs, unsigned n, void *arg)
{
	saga_seen_t *s = arg;
	for (unsigned i = 0; i < n && s->n < 8; i++, s->n++) {
		s->steps[s->n] = recs[i].step;
		s->kinds[s->n] = recs[i].kind;
		if (recs[i].body_len && recs[i].body_len <= sizeof(s->body)) {
			memcpy(s->body, recs[i].body, recs[i].body_len);
			s->body_len = recs[i].body_len;
		}
		if (recs[i].key)
			snprintf(s->key, sizeof(s->key), "%s", recs[i].key);
	}
	return 0;
}

static void test_saga_records(void)
{
	wal_t *w = NULL;
	uint64_t seq = 0;
	saga_seen_t seen = {0};
	static const char def[] = "\x82\xa1v\x01\xa1t\xa4SAGA and more bytes";

	snprintf(dir, sizeof(dir), "%s/saga", base);
	is_int(open_log(&w, 0), 0, "a log for sagas opens");
	wal_rec_t r = {.seq = 9,
		       .kind = WAL_SAGA,
		       .epoch = 1,
		       .at_us = 5,
		       .key = "order-9",
		       .step = -1,
		       .body = def,
		       .body_len = sizeof(def)};
	is_int(wal_append(w, &r, true), 0, "a saga's definition is queued with its key");
	wal_rec_t st = {.seq = 9, .idx = 1, .kind = WAL_STEP_DONE, .epoch = 1, .step = 0};
	is_int(wal_append(w, &st, false), 0, "a step result with step 0");
	st = (wal_rec_t){.seq = 9,
			 .idx = 2,
			 .kind = WAL_COMPENSATING,
			 .epoch = 1,
			 .step = 2,
			 .note = "stock: 23514 out of stock"};
	is_int(wal_append(w, &st, false), 0, "the decision to compensate");
	wal_rec_t bad = {.seq = 9,
			 .idx = 3,
			 .kind = WAL_STEP_DONE,
			 .epoch = 1,
			 .step = 1,
			 .body = def,
			 .body_len = 4};
	is_int(wal_append(w, &bad, false), DTX_EINVAL, "only the definition has a body");
	is_int(wal_flush(w, NULL), 0, "they commit");
	wal_close(&w);
	is_int(open_log(&w, 0), 0, "and the log opens again over them");
	ok(wal_key_find(w, "order-9", &seq) == 0 && seq == 9, "the saga's key is found");
	wal_scan(w, true, saga_fn, &seen);
	ok(seen.n == 3 && seen.kinds[0] == WAL_SAGA && seen.steps[0] == -1 && seen.steps[1] == 0 &&
		   seen.steps[2] == 2 && seen.kinds[2] == WAL_COMPENSATING,
	   "an unfinished saga scans with its step numbers");
	ok(seen.body_len == sizeof(def) && memcmp(seen.body, def, sizeof(def)) == 0 &&
		   strcmp(seen.key, "order-9") == 0,
	   "the definition reads back byte for byte, with the key");
	st = (wal_rec_t){.seq = 9, .idx = 3, .kind = WAL_COMPENSATED, .epoch = 1, .step = -1};
	wal_append(w, &st, false);
	wal_flush(w, NULL);
	memset(&seen, 0, sizeof(seen));
	wal_scan(w, true, saga_fn, &seen);
	is_int(seen.n, 0, "COMPENSATED ends it: the scan of unfinished ones skips it");
	wal_close(&w);
	snprintf(dir, sizeof(dir), "%s", base);
}

/* A zeroed or emptied data.mdb opens as an empty LMDB environment: the
 * log must refuse it rather than start again at a new epoch and hand out
 * GTIDs an earlier log handed out. */
static void test_zeroed(void)
{
	wal_t *w = NULL;
	char path[300], why[300];
	struct stat st;
	uint64_t seq = 0;

	snprintf(dir, sizeof(dir), "%s/zeroed", base);
	is_int(open_log(&w, 0), 0, "a log to zero opens");
	wal_next_seq(w, &seq);
	rec(w, seq, 0, WAL_ACTIVE, 1, false);
	is_int(wal_flush(w, NULL), 0, "a record written");
	wal_close(&w);
	wal_opts_t again = {.dir = dir, .coord_id = "c1", .create = true};
	is_int(wal_open(&again, &w, why, sizeof(why)), DTX_ELOG,
	       "creating a log where one is is refused");
	snprintf(path, sizeof(path), "%s/data.mdb", dir);
	stat(path, &st);
	FILE *f = fopen(path, "r+");
	for (off_t i = 0; f && i < st.st_size; i++)
		fputc(0, f);
	ok(f && fclose(f) == 0, "data.mdb overwritten with %lld zero bytes", (long long)st.st_size);
	wal_opts_t plain = {.dir = dir, .coord_id = "c1"};
	int rc = wal_open(&plain, &w, why, sizeof(why));
	ok(rc != 0 && w == NULL, "a zeroed log refuses the open (%s)", why);
	ok(truncate(path, 0) == 0, "data.mdb emptied");
	rc = wal_open(&plain, &w, why, sizeof(why));
	ok(rc != 0 && w == NULL, "an empty log refuses the open (%s)", why);
	snprintf(dir, sizeof(dir), "%s", base);
}

static void test_full(void)
{
	wal_t *w = NULL;
	collect_t c = {0};
	char note[500];
	int rc = 0;
	uint64_t seq = 1;

	snprintf(dir + strlen(dir), 16, "/full");
	is_int(open_log(&w, 256 * 1024), 0, "a small log opens");
	memset(note, 'x', sizeof(note) - 1);
	note[sizeof(note) - 1] = '\0';
	rec(w, seq++, 0, WAL_ACTIVE, 1, false);
	is_int(wal_flush(w, NULL), 0, "a first record fits");
	for (int round = 0; round < 1000 && rc == 0; round++) {
		for (int i = 0; i < 20; i++) {
			wal_rec_t r = {.seq = seq++, .kind = WAL_ACTIVE, .epoch = 1, .note = note};
			wal_append(w, &r, false);
		}
		rc = wal_flush(w, NULL);
	}
	is_int(rc, DTX_EFULL, "a full log refuses the group commit with DTX_EFULL");
	ok(wal_pending(w) > 0, "the refused records stay queued for another try");
	wal_close(&w);
	is_int(open_log(&w, 256 * 1024), 0, "the full log still opens");
	wal_scan(w, false, collect, &c);
	ok(c.ntx > 0 && c.seqs[0] == 1, "what it held before is intact (%u transactions)", c.ntx);
	wal_close(&w);
}

int main(void)
{
	snprintf(base, sizeof(base), "/tmp/dtx-test-wal-XXXXXX");
	if (!mkdtemp(base))
		return 99;
	snprintf(dir, sizeof(dir), "%s", base);
	test_sequences();
	test_records();
	test_background();
	test_background_prune();
	test_checksum();
	test_truncated();
	test_zeroed();
	test_keys();
	test_saga_records();
	test_full();
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
	if (system(cmd) != 0)
		printf("# could not remove the test folder\n");
	return tap_done();
}
