/*
 * pga_db.c — dtx-pgagent's SQL, over libpq.
 */
#include "config.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dtx_util.h"
#include "pga_db.h"

struct pga_db {
	char *conninfo;
	PGconn *conn;
	char lock_timeout[64];  /* SET lock_timeout, or "" */
	bool mark_ready;        /* MARK_STMT is prepared on conn */
};

static const char SQL_SCHEMA[] =
	"CREATE SCHEMA IF NOT EXISTS dtx;"
	"CREATE TABLE IF NOT EXISTS dtx.branches ("
	" gid text PRIMARY KEY,"
	" created timestamptz NOT NULL DEFAULT now())";
/* The marker row, written only when the branch wrote something: its row
 * count (1 or 0) is also the read-only probe. Prepared once per
 * connection. */
#define MARK_STMT "dtx_mark"
static const char SQL_MARK[] = "INSERT INTO dtx.branches (gid)"
			       " SELECT $1 WHERE pg_current_xact_id_if_assigned() IS NOT NULL";
static const char SQL_MARKED[] = "SELECT 1 FROM dtx.branches WHERE gid = $1";
static const char SQL_SCAN[] =
	"SELECT gid FROM pg_prepared_xacts"
	" WHERE database = current_database() AND starts_with(gid, $1) ORDER BY gid";
static const char SQL_PRUNE[] =
	"DELETE FROM dtx.branches WHERE created < now() - make_interval(secs => $1::float8)"
	" AND gid NOT IN (SELECT gid FROM pg_prepared_xacts)";

pga_db_t *pga_db_new(const char *conninfo, uint32_t lock_timeout_ms)
{
	pga_db_t *self = calloc(1, sizeof(*self));
	if (!self)
		return NULL;
	if (lock_timeout_ms)
		snprintf(self->lock_timeout, sizeof(self->lock_timeout),
			 "SET lock_timeout = %u", (unsigned)lock_timeout_ms);
	if (!(self->conninfo = strdup(conninfo))) {
		free(self);
		return NULL;
	}
	return self;
}

void pga_db_destroy(pga_db_t **self_p)
{
	pga_db_t *self = self_p ? *self_p : NULL;
	if (!self)
		return;
	if (self->conn)
		PQfinish(self->conn);
	free(self->conninfo);
	free(self);
	*self_p = NULL;
}

/* One line, no trailing newline. */
static void s_msg(char *why, size_t len, const char *prefix, const char *msg)
{
	snprintf(why, len, "%s%s", prefix, msg ? msg : "");
	char *nl = strchr(why, '\n');
	if (nl)
		*nl = '\0';
}

/* A usable connection, or NULL with why set. */
static PGconn *s_conn(pga_db_t *self, char *why, size_t why_len)
{
	if (self->conn && PQstatus(self->conn) == CONNECTION_OK)
		return self->conn;
	if (self->conn) {
		PQfinish(self->conn);
		self->conn = NULL;
	}
	self->conn = PQconnectdb(self->conninfo);
	self->mark_ready = false;
	if (PQstatus(self->conn) != CONNECTION_OK) {
		s_msg(why, why_len, "cannot connect: ", PQerrorMessage(self->conn));
		PQfinish(self->conn);
		self->conn = NULL;
		return NULL;
	}
	/* For the session: a branch's statements wait this long for a lock
	 * (one statement per connection rather than one per branch). */
	PGresult *res = self->lock_timeout[0] ? PQexec(self->conn, self->lock_timeout) : NULL;
	if (res && PQresultStatus(res) != PGRES_COMMAND_OK) {
		s_msg(why, why_len, "cannot set lock_timeout: ", PQresultErrorMessage(res));
		PQclear(res);
		PQfinish(self->conn);
		self->conn = NULL;
		return NULL;
	}
	PQclear(res);
	return self->conn;
}

/* The one translation of a libpq result into our terms. 0 when ok. */
static int s_check(PGresult *res, PGconn *conn, char *sqlstate, char *why, size_t why_len)
{
	ExecStatusType st = PQresultStatus(res);
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
		return 0;
	const char *code = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	if (sqlstate)
		snprintf(sqlstate, 6, "%s", code ? code : "08006");
	s_msg(why, why_len, "", msg ? msg : PQerrorMessage(conn));
	return DTX_EDB;
}

static int s_exec(PGconn *conn, const char *sql, char *sqlstate, char *why, size_t why_len)
{
	PGresult *res = PQexec(conn, sql);
	int rc = s_check(res, conn, sqlstate, why, why_len);
	PQclear(res);
	return rc;
}

/*
 * The first statement of a job, on a connection that may have gone stale
 * (PostgreSQL restarted since its last use): if the connection turns out
 * broken, open a new one and run it once more. Nothing was done in the
 * old session, so the retry is safe. *conn_p follows the new connection.
 */
static int s_exec_first(pga_db_t *self, PGconn **conn_p, const char *sql, char *sqlstate,
			char *why, size_t why_len)
{
	char tmp[512], state[8] = "";
	if (s_exec(*conn_p, sql, state, why, why_len) == 0)
		return 0;
	if (sqlstate)
		memcpy(sqlstate, state, 6);
	/* Broken: libpq says so, or the error is of the connection classes
	 * (08, 57P admin shutdown), or it came from libpq itself (08006). */
	if (PQstatus(*conn_p) != CONNECTION_BAD && strncmp(state, "08", 2) != 0 &&
	    strncmp(state, "57P", 3) != 0)
		return DTX_EDB;
	PQfinish(self->conn);
	self->conn = NULL;
	if (!(*conn_p = s_conn(self, tmp, sizeof(tmp)))) {
		if (sqlstate)
			snprintf(sqlstate, 6, "08006");
		snprintf(why, why_len, "database unreachable: %.400s", tmp);
		return DTX_EDB;
	}
	return s_exec(*conn_p, sql, sqlstate, why, why_len);
}

static void s_rollback(PGconn *conn)
{
	PQclear(PQexec(conn, "ROLLBACK"));
}

int pga_db_ensure_schema(pga_db_t *self, char *why, size_t why_len)
{
	PGconn *conn = s_conn(self, why, why_len);
	if (!conn)
		return DTX_EDB;
	return s_exec(conn, SQL_SCHEMA, NULL, why, why_len);
}

/* "PREPARE TRANSACTION '<gid>'" with the gid quoted by libpq. */
static int s_gid_cmd(PGconn *conn, const char *verb, const char *gid, char *out, size_t len)
{
	char *lit = PQescapeLiteral(conn, gid, strlen(gid));
	if (!lit)
		return DTX_ENOMEM;
	snprintf(out, len, "%s %s", verb, lit);
	PQfreemem(lit);
	return 0;
}

/* One query of a pipeline, and its result once run. With name: prepare
 * sql as that statement (prepare) or run the statement of that name. */
typedef struct {
	const char *sql;
	int nparams;
	const char *const *params;
	const char *name;
	bool prepare;
	PGresult *res;
} s_query_t;

static void s_queries_clear(s_query_t *q, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		PQclear(q[i].res);
		q[i].res = NULL;
	}
}

/*
 * Send n queries in one pipeline (one round trip) and collect their
 * results into q[i].res (NULL for a query that got none: the connection
 * broke). Returns 0, or DTX_EDB when the pipeline could not be sent or
 * read (the connection is then closed: its transaction is lost with it).
 * A query that failed is the caller's to see in its result; the queries
 * after it come back PGRES_PIPELINE_ABORTED.
 */
static int s_pipeline(pga_db_t *self, PGconn *conn, s_query_t *q, unsigned n, char *why,
		      size_t why_len)
{
	unsigned got = 0, nulls = 0;
	if (PQenterPipelineMode(conn) != 1)
		goto broken;
	for (unsigned i = 0; i < n; i++) {
		int ok = q[i].prepare ? PQsendPrepare(conn, q[i].name, q[i].sql, q[i].nparams, NULL)
			 : q[i].name  ? PQsendQueryPrepared(conn, q[i].name, q[i].nparams,
							    q[i].params, NULL, NULL, 0)
				      : PQsendQueryParams(conn, q[i].sql, q[i].nparams, NULL,
							  q[i].params, NULL, NULL, 0);
		if (ok != 1)
			goto broken;
	}
	if (PQpipelineSync(conn) != 1)
		goto broken;
	for (;;) {
		PGresult *r = PQgetResult(conn);
		if (!r) {
			/* the end of one query's results; many in a row: broken */
			if (PQstatus(conn) != CONNECTION_OK || ++nulls > 2 * n + 2)
				goto broken;
			continue;
		}
		nulls = 0;
		if (PQresultStatus(r) == PGRES_PIPELINE_SYNC) {
			PQclear(r);
			break;
		}
		if (got < n)
			q[got++].res = r;
		else
			PQclear(r);
	}
	if (PQexitPipelineMode(conn) != 1)
		goto broken;
	return 0;
broken:
	s_msg(why, why_len, "connection lost: ", PQerrorMessage(conn));
	s_queries_clear(q, n);
	PQfinish(conn);
	self->conn = NULL;
	return DTX_EDB;
}

/*
 * Two round trips: the transaction's start, its statements and the marker
 * row (inserted only if the branch wrote something, so its row count is
 * the read-only probe) go in one pipeline; then either COMMIT (nothing
 * written: read-only) or PREPARE TRANSACTION in a second one. Row-count
 * expectations are checked between the two, so nothing is prepared that
 * should have voted NO.
 */
int pga_db_prepare(pga_db_t *self, const char *gid, bool one_phase, uint32_t nstmts,
		   const dtx_stmt_t *stmts, char *sqlstate, char *why, size_t why_len)
{
	char cmd[300], tmp[512];
	const char *mark[1] = {gid};
	unsigned n = 0, first = 0, nq = nstmts + 3;
	int rc = DTX_VOTE_NO;
	s_query_t *q = calloc(nq, sizeof(*q));

	snprintf(sqlstate, 6, "%s", "");
	if (!q) {
		snprintf(why, why_len, "out of memory");
		return DTX_VOTE_NO;
	}

	/* A connection gone stale (PostgreSQL restarted since its last use)
	 * is found out here: open a new one and send once more. Nothing was
	 * done in the old session, so the retry is safe. */
	PGconn *conn = NULL;
	for (int attempt = 0; attempt < 2; attempt++) {
		if (!(conn = s_conn(self, tmp, sizeof(tmp)))) {
			snprintf(sqlstate, 6, "08006");
			snprintf(why, why_len, "database unreachable: %s", tmp);
			goto out;
		}
		n = 0;
		if (!self->mark_ready)
			q[n++] = (s_query_t){.sql = SQL_MARK, .nparams = 1, .name = MARK_STMT,
					     .prepare = true};
		q[n++] = (s_query_t){.sql = "BEGIN"};
		first = n;
		for (uint32_t i = 0; i < nstmts; i++)
			q[n++] = (s_query_t){.sql = stmts[i].sql, .nparams = (int)stmts[i].nparams,
					     .params = stmts[i].params};
		q[n++] = (s_query_t){.sql = SQL_MARK, .nparams = 1, .params = mark, .name = MARK_STMT};
		if (s_pipeline(self, conn, q, n, tmp, sizeof(tmp)) == 0)
			break;
		conn = NULL;
	}
	if (!conn) {
		snprintf(sqlstate, 6, "08006");
		snprintf(why, why_len, "database unreachable: %s", tmp);
		goto out;
	}
	if (q[0].prepare && PQresultStatus(q[0].res) == PGRES_COMMAND_OK)
		self->mark_ready = true;
	for (unsigned i = 0; i < n; i++) {
		if (s_check(q[i].res, conn, sqlstate, tmp, sizeof(tmp))) {
			if (i >= first && i < first + nstmts)
				snprintf(why, why_len, "statement %u failed: %s", i - first + 1, tmp);
			else if (q[i].name) {
				snprintf(why, why_len, "cannot write the marker row: %s", tmp);
				/* gone (a branch ran DEALLOCATE): prepare it again next time */
				if (strcmp(sqlstate, "26000") == 0)
					self->mark_ready = false;
			}
			else
				snprintf(why, why_len, "%s failed: %s", q[i].sql, tmp);
			goto rollback;
		}
		if (i >= first && i < first + nstmts && stmts[i - first].expect >= 0) {
			const char *t = PQcmdTuples(q[i].res);
			long long rows = t && *t ? atoll(t) : (long long)PQntuples(q[i].res);
			if (rows != stmts[i - first].expect) {
				snprintf(why, why_len, "statement %u touched %lld rows, expected %lld",
					 i - first + 1, rows, (long long)stmts[i - first].expect);
				goto rollback;
			}
		}
	}
	bool read_only = strcmp(PQcmdTuples(q[n - 1].res), "0") == 0;
	s_queries_clear(q, n);
	if (read_only) {
		/* Nothing written, no row locked: commit now (it releases only a
		 * snapshot) and vote READ-ONLY; the coordinator sends no phase
		 * two. */
		if (s_exec(conn, "COMMIT", sqlstate, tmp, sizeof(tmp))) {
			snprintf(why, why_len, "commit of a read-only branch failed: %s", tmp);
			goto rollback;
		}
		rc = DTX_VOTE_READONLY;
		goto out;
	}
	/* Crash point: the work is done, nothing is prepared. */
	dtx_crash_point("pga.work_done");
	if (one_phase)
		snprintf(cmd, sizeof(cmd), "COMMIT");
	else if (s_gid_cmd(conn, "PREPARE TRANSACTION", gid, cmd, sizeof(cmd))) {
		snprintf(why, why_len, "out of memory");
		goto rollback;
	}
	q[0] = (s_query_t){.sql = cmd};
	n = 1;
	if (s_pipeline(self, conn, q, 1, tmp, sizeof(tmp))) {
		snprintf(sqlstate, 6, "08006");
		snprintf(why, why_len, "%s failed: %s", one_phase ? "commit" : "prepare", tmp);
		/* Lost while preparing: the branch may be prepared or not. The
		 * NO vote makes the coordinator roll it back, which is
		 * idempotent either way. Lost while committing one phase: it
		 * may have committed; only the marker row can tell, later. */
		rc = one_phase ? PGA_VOTE_UNKNOWN : DTX_VOTE_NO;
		goto out;
	}
	if (s_check(q[0].res, conn, sqlstate, tmp, sizeof(tmp))) {
		snprintf(why, why_len, "%s failed: %s", one_phase ? "commit" : "prepare", tmp);
		goto rollback;
	}
	/* Durability point: the branch is prepared (committed, one phase) in
	 * PostgreSQL's WAL; it survives our death and PostgreSQL's; a
	 * prepared one is reported at the next HELLO. */
	dtx_crash_point("pga.prepared");
	rc = one_phase ? DTX_VOTE_COMMITTED : DTX_VOTE_YES;
	goto out;
rollback:
	s_rollback(conn);
out:
	s_queries_clear(q, nq);
	free(q);
	return rc;
}

int pga_db_decide(pga_db_t *self, const char *gid, int decision, char *why, size_t why_len)
{
	bool commit = decision == DTX_DECIDE_COMMIT;
	char cmd[300], state[8] = "", tmp[512];
	PGconn *conn = s_conn(self, tmp, sizeof(tmp));

	if (!conn) {
		snprintf(why, why_len, "database unreachable: %s", tmp);
		return DTX_ACK_RETRY;
	}
	if (s_gid_cmd(conn, commit ? "COMMIT PREPARED" : "ROLLBACK PREPARED", gid, cmd,
		      sizeof(cmd)))
		return DTX_ACK_RETRY;
	if (s_exec_first(self, &conn, cmd, state, tmp, sizeof(tmp)) == 0) {
		dtx_crash_point("pga.applied");
		return DTX_ACK_DONE;
	}
	if (!conn || strcmp(state, "42704") != 0) {
		/* busy, connection lost, ...: try again later */
		snprintf(why, why_len, "%s failed (%s): %s", commit ? "commit" : "rollback", state,
			 tmp);
		return DTX_ACK_RETRY;
	}
	/* The branch is gone: its marker row says which way it went. A marker
	 * is written inside the prepared transaction, so it exists exactly
	 * when the branch committed. */
	const char *p[1] = {gid};
	PGresult *res = PQexecParams(conn, SQL_MARKED, 1, NULL, p, NULL, NULL, 0);
	if (s_check(res, conn, NULL, tmp, sizeof(tmp))) {
		PQclear(res);
		snprintf(why, why_len, "cannot read the marker row: %s", tmp);
		return DTX_ACK_RETRY;
	}
	bool committed = PQntuples(res) > 0;
	PQclear(res);
	if (decision == DTX_DECIDE_RESOLVE)
		return committed ? DTX_ACK_COMMITTED : DTX_ACK_DONE;
	if (committed == commit)
		return DTX_ACK_DONE;
	snprintf(why, why_len, "%s was %s outside dtx", gid, committed ? "committed" : "rolled back");
	return DTX_ACK_HEURISTIC;
}

int pga_db_scan(pga_db_t *self, const char *coord_id, uint64_t marker_retention_s, char ***gids,
		uint32_t *n, char *why, size_t why_len)
{
	char prefix[64], secs[32];
	PGconn *conn = s_conn(self, why, why_len);
	PGresult *res;

	*gids = NULL;
	*n = 0;
	if (!conn)
		return DTX_EDB;
	snprintf(prefix, sizeof(prefix), "dtx:%s:", coord_id);
	const char *p[1] = {prefix};
	res = PQexecParams(conn, SQL_SCAN, 1, NULL, p, NULL, NULL, 0);
	if (s_check(res, conn, NULL, why, why_len)) {
		PQclear(res);
		return DTX_EDB;
	}
	int rows = PQntuples(res);
	char **out = calloc((size_t)rows + 1, sizeof(char *));
	if (!out) {
		PQclear(res);
		return DTX_ENOMEM;
	}
	for (int i = 0; i < rows; i++)
		if (!(out[i] = strdup(PQgetvalue(res, i, 0)))) {
			for (int j = 0; j < i; j++)
				free(out[j]);
			free(out);
			PQclear(res);
			return DTX_ENOMEM;
		}
	PQclear(res);
	dtx_crash_point("pga.scanned");
	/* Markers of branches long finished: the coordinator has forgotten
	 * them by now (retention), so nobody will ask again. */
	snprintf(secs, sizeof(secs), "%llu", (unsigned long long)marker_retention_s);
	const char *q[1] = {secs};
	res = PQexecParams(conn, SQL_PRUNE, 1, NULL, q, NULL, NULL, 0);
	if (s_check(res, conn, NULL, why, why_len))
		dtx_warn("cannot prune marker rows: %s", why);
	PQclear(res);
	*gids = out;
	*n = (uint32_t)rows;
	return 0;
}
