/*
 * mkcorpus.c — writes the seed corpora of the fuzz targets whose inputs
 * are binary: tests/fuzz/corpus/wire (one frame of each message type,
 * encoded by dtx_msg_encode) and corpus/wal_rec (one record of each kind,
 * written to a log by wal_append and wal_flush and read back from LMDB).
 * Run by make fuzz-corpus; its output is committed, so that the seeds
 * change only when someone means them to.
 *
 * usage: mkcorpus DIR   (DIR/wire and DIR/wal_rec must exist)
 */
#include "config.h"

#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dtx.h"
#include "dtx_wire.h"
#include "wal.h"

static int s_write(const char *dir, const char *sub, const char *name, const void *k, size_t klen,
		   const void *v, size_t vlen)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s/%s", dir, sub, name);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(k, 1, klen, f) != klen || fwrite(v, 1, vlen, f) != vlen) {
		perror(path);
		if (f)
			fclose(f);
		return -1;
	}
	return fclose(f) == 0 ? 0 : -1;
}

static int s_frame(const char *dir, const char *name, const dtx_msg_t *m)
{
	char *buf;
	size_t len;
	int rc = dtx_msg_encode(m, &buf, &len);
	if (rc) {
		fprintf(stderr, "mkcorpus: %s does not encode: %s\n", name, dtx_strerror(rc));
		return -1;
	}
	rc = s_write(dir, "wire", name, "", 0, buf, len);
	free(buf);
	return rc;
}

static int s_frames(const char *dir)
{
	const char *params[] = {"alice", NULL, "42"};
	dtx_stmt_t stmts[] = {
		{.sql = "UPDATE wallets SET balance = balance - $2 WHERE customer = $1",
		 .nparams = 2,
		 .params = params,
		 .expect = 1},
		{.sql = "SELECT $1::int", .nparams = 3, .params = params, .expect = -1},
	};
	/* named statements: defined in the agent, sent by name */
	dtx_stmt_t named[] = {
		{.statement = "debit", .nparams = 2, .params = params, .expect = 1},
		{.statement = "audit_row", .expect = -1},
	};
	dtx_branch_t branches[] = {
		{.participant = "bank", .nstmts = 2, .stmts = stmts},
		{.participant = "shop", .nstmts = 1, .stmts = stmts},
	};
	dtx_branch_t named_branches[] = {
		{.participant = "bank", .nstmts = 2, .stmts = named},
		{.participant = "shop", .nstmts = 1, .stmts = stmts},
	};
	const char *gids[] = {"dtx:c1:1:7:0", "dtx:c1:1:8:1"};
	const char *gid = "dtx:c1:1:7:0";
	struct {
		const char *name;
		dtx_msg_t m;
	} f[] = {
		{"tx",
		 {.type = DTX_T_TX,
		  .has = DTX_F_ID | DTX_F_BRANCHES | DTX_F_TIMEOUT | DTX_F_KEY,
		  .id = 1,
		  .timeout_ms = 5000,
		  .nbranches = 2,
		  .branches = branches,
		  .key = "order-1"}},
		{"tx-min",
		 {.type = DTX_T_TX,
		  .has = DTX_F_ID | DTX_F_BRANCHES,
		  .id = 2,
		  .nbranches = 1,
		  .branches = branches + 1}},
		{"tx-named",
		 {.type = DTX_T_TX,
		  .has = DTX_F_ID | DTX_F_BRANCHES,
		  .id = 5,
		  .nbranches = 2,
		  .branches = named_branches}},
		{"query",
		 {.type = DTX_T_QUERY, .has = DTX_F_ID | DTX_F_GTID, .id = 3, .gtid = "c1:1:7"}},
		{"outcome",
		 {.type = DTX_T_OUTCOME,
		  .has = DTX_F_ID | DTX_F_CODE | DTX_F_GTID | DTX_F_NAME | DTX_F_SQLSTATE |
			 DTX_F_TEXT,
		  .id = 1,
		  .code = 2,
		  .gtid = "c1:1:7",
		  .name = "bank",
		  .sqlstate = "23514",
		  .text = "new row violates check constraint"}},
		{"error",
		 {.type = DTX_T_ERROR,
		  .has = DTX_F_ID | DTX_F_CODE | DTX_F_TEXT,
		  .id = 9,
		  .code = DTX_EPROTO,
		  .text = "frame has no type 't'"}},
		{"hello", {.type = DTX_T_HELLO, .has = DTX_F_NAME, .name = "shop"}},
		{"welcome", {.type = DTX_T_WELCOME, .has = DTX_F_TEXT, .text = "c1"}},
		{"indoubt", {.type = DTX_T_INDOUBT, .has = DTX_F_GIDS, .ngids = 2, .gids = gids}},
		{"prepare",
		 {.type = DTX_T_PREPARE,
		  .has = DTX_F_GTID | DTX_F_STMTS | DTX_F_CODE | DTX_F_TIMEOUT,
		  .gtid = gid,
		  .nstmts = 2,
		  .stmts = stmts,
		  .code = DTX_PREPARE_ONE_PHASE,
		  .timeout_ms = 4000}},
		{"prepare-named",
		 {.type = DTX_T_PREPARE,
		  .has = DTX_F_GTID | DTX_F_STMTS | DTX_F_TIMEOUT,
		  .gtid = gid,
		  .nstmts = 2,
		  .stmts = named,
		  .timeout_ms = 4000}},
		{"vote",
		 {.type = DTX_T_VOTE,
		  .has = DTX_F_GTID | DTX_F_CODE | DTX_F_SQLSTATE | DTX_F_TEXT,
		  .gtid = gid,
		  .code = DTX_VOTE_NO,
		  .sqlstate = "40P01",
		  .text = "deadlock detected"}},
		{"decide",
		 {.type = DTX_T_DECIDE,
		  .has = DTX_F_GTID | DTX_F_CODE,
		  .gtid = gid,
		  .code = DTX_DECIDE_COMMIT}},
		{"ack",
		 {.type = DTX_T_ACK,
		  .has = DTX_F_GTID | DTX_F_CODE | DTX_F_TEXT,
		  .gtid = gid,
		  .code = DTX_ACK_HEURISTIC,
		  .text = "rolled back by an operator"}},
		{"ping", {.type = DTX_T_PING}},
		{"pong", {.type = DTX_T_PONG}},
		{"admin",
		 {.type = DTX_T_ADMIN,
		  .has = DTX_F_ID | DTX_F_NAME | DTX_F_TEXT,
		  .id = 4,
		  .name = "commit",
		  .text = "c1:1:7"}},
		{"reply",
		 {.type = DTX_T_REPLY,
		  .has = DTX_F_ID | DTX_F_CODE | DTX_F_TEXT,
		  .id = 4,
		  .code = 0,
		  .text = "ok"}},
	};
	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
		if (s_frame(dir, f[i].name, &f[i].m))
			return -1;
	return 0;
}

/* One record of each kind in a log of its own, then every record as LMDB
 * holds it: key bytes, then value bytes. */
static int s_records(const char *dir)
{
	char tmp[] = "/tmp/dtx-mkcorpus.XXXXXX", why[256];
	wal_t *w = NULL;
	int rc = -1;

	if (!mkdtemp(tmp)) {
		perror("mkdtemp");
		return -1;
	}
	wal_opts_t o = {.dir = tmp,
			.coord_id = "c1",
			.map_size = 1 << 20,
			.seq_block = 10,
			.create = true};
	if (wal_open(&o, &w, why, sizeof(why))) {
		fprintf(stderr, "mkcorpus: wal_open: %s\n", why);
		goto out;
	}
	wal_rec_t recs[] = {
		{.kind = WAL_ACTIVE,
		 .nparts = 3,
		 .parts = {"shop", "bank", "stock"},
		 .key = "order-1"},
		{.kind = WAL_ACTIVE, .nparts = 1, .parts = {"shop"}},
		{.kind = WAL_PREPARING},
		{.kind = WAL_COMMITTING},
		{.kind = WAL_COMMITTED},
		{.kind = WAL_ABORTING, .note = "bank voted no: 23514"},
		{.kind = WAL_ABORTED},
		{.kind = WAL_HEURISTIC, .note = "operator: commit"},
		{.kind = WAL_IN_DOUBT, .note = "no answer from stock"},
	};
	for (size_t i = 0; i < sizeof(recs) / sizeof(recs[0]); i++) {
		recs[i].seq = 100 + i;
		recs[i].idx = (uint8_t)i;
		recs[i].epoch = 1;
		recs[i].at_us = 1750000000000000 + (int64_t)i;
		if (wal_append(w, &recs[i], true))
			goto out;
	}
	if (wal_flush(w, NULL))
		goto out;
	wal_close(&w);

	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_cursor *cur;
	MDB_val k, v;
	if (mdb_env_create(&env) || mdb_env_set_maxdbs(env, 8) ||
	    mdb_env_open(env, tmp, MDB_RDONLY, 0600) ||
	    mdb_txn_begin(env, NULL, MDB_RDONLY, &txn) || mdb_dbi_open(txn, "log", 0, &dbi) ||
	    mdb_cursor_open(txn, dbi, &cur)) {
		fprintf(stderr, "mkcorpus: cannot read the log back\n");
		goto out;
	}
	rc = 0;
	for (int got = mdb_cursor_get(cur, &k, &v, MDB_FIRST); got == 0 && rc == 0;
	     got = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		const uint8_t *val = v.mv_data;
		char name[64];
		snprintf(name, sizeof(name), "%s-%u", wal_kind_str(val[1]),
			 ((const uint8_t *)k.mv_data)[8]);
		rc = s_write(dir, "wal_rec", name, k.mv_data, k.mv_size, v.mv_data, v.mv_size);
	}
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	mdb_env_close(env);
out:
	wal_close(&w);
	const char *files[] = {"data.mdb", "lock.mdb", "coordinatord.lock"};
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		char path[64];
		snprintf(path, sizeof(path), "%s/%s", tmp, files[i]);
		unlink(path);
	}
	rmdir(tmp);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: mkcorpus DIR\n");
		return 2;
	}
	return s_frames(argv[1]) || s_records(argv[1]) ? 1 : 0;
}
