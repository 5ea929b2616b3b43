/*
 * pga_db.c — dtx-pgagent's SQL, over libpq without blocking.
 *
 * A connection stays in pipeline mode. An operation is a few steps; each
 * step sends its queries and a sync in one pipeline (one round trip) and,
 * when the sync's result is in, looks at the results and sends the next
 * step or finishes. A new connection (or one whose marker statement was
 * dropped) first runs the set-up step. A two-phase branch that succeeds
 * is one step: its work, marker row and PREPARE TRANSACTION together. A
 * saga step is two: its barrier row and work, then COMMIT.
 */
#include "config.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dtx_util.h"
#include "pga_db.h"
#include "pga_named.h"

typedef enum {
	ST_SETUP,    /* the session reset (SET lock_timeout included) and/or
		   * PREPARE the marker statement and the named statements */
	ST_WORK,     /* prepare: BEGIN, SET LOCAL statement_timeout, the
		  * statements, the guard, the marker row, and PREPARE
		  * TRANSACTION and s_add_tail() unless one phase */
	ST_END,      /* prepare: COMMIT (one phase), COMMIT PREPARED (read-only),
		 * then s_add_tail() (the session reset after a branch
		 * that is not quiet) */
	ST_ROLLBACK, /* prepare: ROLLBACK (PREPARED) after a failure, then
		      * s_add_tail(); vote no */
	ST_APPLY,    /* decide: COMMIT / ROLLBACK PREPARED */
	ST_MARKED,   /* decide: is there a marker row? */
	ST_LIST,     /* scan: the prepared GIDs */
	ST_PRUNE,    /* scan, prune: delete old marker and barrier rows */
	ST_STEP_RUN, /* step RUN: BEGIN, SET LOCAL statement_timeout, the
		      * barrier row ('a', 'd'), the statements, the guard */
	ST_STEP_SEEN, /* step RUN, its barrier row was there: ROLLBACK, read
		       * the row, s_add_tail() */
	ST_COMP_FENCE, /* step COMPENSATE: BEGIN, SET LOCAL, the fence ('a',
			* 'f', ON CONFLICT DO NOTHING), the row ('c', 'd') */
	ST_COMP_WORK, /* step COMPENSATE: the statements, the guard */
	ST_STEP_COMMIT, /* step: COMMIT, then s_add_tail() */
	ST_PROBE,    /* step PROBE: BEGIN, SET LOCAL, the fence, read the row,
		   * COMMIT */
} s_step_t;

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

struct pga_db {
	char *conninfo;
	PGconn *conn;
	char lock_timeout[64];  /* SET lock_timeout, or "" */
	uint64_t max_rows, max_bytes; /* a branch statement's result bound; 0: none */
	const pga_named_t *named; /* the named statements, borrowed; NULL: none */
	bool connecting;        /* PQconnectPoll under way */
	int64_t connect_deadline_ms; /* connecting: give up then, or 0 */
	bool want_write;        /* connecting, or output not yet flushed */
	bool marked;            /* MARK_STMT and the named statements are
		      * prepared in this session */
	bool clean;             /* the session is as the reset leaves it: no
		     * branch ran in it since but quiet ones */
	bool used;              /* a branch (quiet or not) ran in it since the reset */
	/* the operation running */
	pga_op_t *op;
	s_step_t step;
	bool reused;            /* it began on a connection opened before it */
	bool first;             /* its first pipeline has not come back */
	bool read_only;         /* ST_END: the branch wrote nothing */
	const char *mark[1];    /* MARK_STMT's parameter: op->gid */
	char cmd[300];          /* PREPARE TRANSACTION 'gid' and the like */
	char stmt_timeout[64];  /* ST_WORK, steps: SET LOCAL statement_timeout, or "" */
	int after;              /* ST_ROLLBACK, ST_STEP_COMMIT: the result then */
	const char *bar[2];     /* a step's barrier key: op->saga, step_no */
	char step_no[16];
	unsigned i_bar;         /* a step's first pipeline: its first barrier query */
	/* ST_WORK's pipeline: where the branch's statements (nstmts of
	 * them from i_stmt), the guard, the marker and PREPARE are */
	unsigned i_stmt, i_guard, i_mark, i_prep;
	/* the session reset in the pipeline in flight: nreset queries from
	 * i_reset; nreset 0: none */
	unsigned i_reset, nreset;
	/* ST_WORK: the rows and bytes of the statement being received, and
	 * the first statement whose result went over the bound (0: none) */
	uint64_t rows, bytes;
	unsigned over;
	char param[64];
	const char *params[1];  /* {param} */
	/* the pipeline in flight */
	s_query_t *q;
	unsigned nq, qcap, nres, nulls;
};

/* CREATE SCHEMA IF NOT EXISTS wants the right to create schemas even when
 * dtx exists: a role that only owns schema dtx (dtx-pgagent(8), DATABASE
 * ROLE) makes it only when it is missing. */
/* dtx.barrier: one row per saga step that ran or was fenced (kind 'a',
 * result 'd' done or 'f' fenced: it never ran and never will) and one per
 * compensation that ran (kind 'c', result 'd'), each written in the local
 * transaction it stands for (DESIGN.md, "Saga steps and the barrier"). */
static const char SQL_SCHEMA[] = "DO $$BEGIN IF pg_catalog.to_regnamespace('dtx') IS NULL THEN"
				 " CREATE SCHEMA dtx; END IF; END$$;"
				 "CREATE TABLE IF NOT EXISTS dtx.branches ("
				 " gid text PRIMARY KEY,"
				 " created timestamptz NOT NULL DEFAULT now());"
				 "CREATE TABLE IF NOT EXISTS dtx.barrier ("
				 " saga text NOT NULL,"
				 " step int NOT NULL,"
				 " kind char(1) NOT NULL CHECK (kind IN ('a', 'c')),"
				 " result char(1) NOT NULL CHECK (result IN ('d', 'f')),"
				 " created timestamptz NOT NULL DEFAULT now(),"
				 " PRIMARY KEY (saga, step, kind))";
/* Rows are appended in time order: a block range index lets the prune
 * read only the old part of the table, at little cost to the insert on
 * every branch's path. CREATE INDEX waits for the table's lock even when
 * the index exists, and a prepared branch holds that lock until it is
 * decided, so: only when missing, and not waiting long. */
static const char SQL_PRUNE_INDEX[] =
	"DO $$BEGIN PERFORM set_config('lock_timeout', '1s', true);"
	" IF to_regclass('dtx.branches_created') IS NULL THEN"
	" CREATE INDEX branches_created ON dtx.branches USING brin (created);"
	" END IF;"
	" IF to_regclass('dtx.barrier_created') IS NULL THEN"
	" CREATE INDEX barrier_created ON dtx.barrier USING brin (created);"
	" END IF; END$$";
/* The marker row, written only when the branch wrote something: its row
 * count (1 or 0) is also the read-only probe. Prepared once per
 * connection; it runs after the branch's statements, under a search_path
 * they may have set, so every name in it is qualified. */
#define MARK_STMT "dtx_mark"
static const char SQL_MARK[] =
	"INSERT INTO dtx.branches (gid)"
	" SELECT $1 WHERE pg_catalog.pg_current_xact_id_if_assigned() IS NOT NULL";
/*
 * The other fixed statements (BEGIN, the guard, the barrier, COMMIT,
 * ROLLBACK, the session reset) go as text, parsed at each use, not
 * prepared once per session like MARK_STMT. A function that a branch
 * calls can DEALLOCATE any of the session's prepared statements and
 * PREPARE another under its name (dynamic SQL; that outlives the branch's
 * rollback, and no part of the reset undoes it), so a prepared barrier
 * query, BEGIN or reset statement could be made to do nothing, or
 * something else, in the next job on the connection. Only a query sent
 * as text can tell (pg_prepared_statement(), from_sql), and one in every
 * reset costs PostgreSQL as much as preparing the statements saves.
 * MARK_STMT and the named statements are open to the same replacement.
 */
/* The guard, just before the marker and PREPARE TRANSACTION: SAVEPOINT
 * fails (25P01) unless the session is still inside a transaction block,
 * and no statement a branch may send can open one, so the block is the
 * one BEGIN opened. A branch that left it (should a COMMIT ever get past
 * pga_stmt.c) stops the pipeline here: no marker, no PREPARE. */
static const char SQL_GUARD[] = "SAVEPOINT dtx_guard";
static const char SQL_UNGUARD[] = "RELEASE SAVEPOINT dtx_guard";
/*
 * The session reset, after every branch that is not quiet (pga_stmt.h)
 * and before any other job on a session such a branch ran in: what a branch can leave behind
 * through the functions a SELECT may call (set_config(..., false), session advisory locks, SET ROLE
 * through set_config('role'), temporary tables and LISTEN made by a function's dynamic SQL,
 * sequence state). DISCARD ALL would do it in one, but it cannot run in a pipeline's implicit
 * transaction and it drops MARK_STMT; these can, and ride at the end of the branch's last pipeline
 * (no round trip of their own). The agent's own settings (lock_timeout) follow them.
 */
static const char *const SQL_RESET[] = {
	"SET SESSION AUTHORIZATION DEFAULT", /* also the role */
	"RESET ALL",
	"SELECT pg_catalog.pg_advisory_unlock_all()",
	"DISCARD TEMP",
	"DISCARD SEQUENCES",
	"UNLISTEN *",
};
#define NRESET (sizeof(SQL_RESET) / sizeof(SQL_RESET[0]))
static const char SQL_MARKED[] = "SELECT 1 FROM dtx.branches WHERE gid = $1";
static const char SQL_SCAN[] =
	"SELECT gid FROM pg_prepared_xacts"
	" WHERE database = current_database() AND starts_with(gid, $1) ORDER BY gid";
static const char SQL_PRUNE[] =
	"DELETE FROM dtx.branches WHERE created < now() - make_interval(secs => $1::float8)"
	" AND gid NOT IN (SELECT gid FROM pg_prepared_xacts)";
/* Barrier rows of sagas long finished: the coordinator has forgotten
 * them (marker_retention_s is kept above its retention), so no step of
 * theirs arrives again. */
static const char SQL_PRUNE_BARRIER[] =
	"DELETE FROM dtx.barrier WHERE created < now() - make_interval(secs => $1::float8)";
/*
 * The barrier (DESIGN.md, "Saga steps and the barrier"). Each is the
 * first write of its local transaction, keyed by (saga, step, kind):
 * PostgreSQL's unique index makes a second writer of a key wait for the
 * first one's transaction and then fail (23505) if it committed, or go on
 * if it rolled back. The step's row is a plain INSERT: 23505 means it ran
 * or was fenced before. The fence (ON CONFLICT DO NOTHING) writes the
 * step's row as 'f' only if there is none: 1 row means the step never ran
 * and now never will.
 */
static const char SQL_BAR_RUN[] =
	"INSERT INTO dtx.barrier (saga, step, kind, result) VALUES ($1, $2, 'a', 'd')";
static const char SQL_BAR_FENCE[] =
	"INSERT INTO dtx.barrier (saga, step, kind, result) VALUES ($1, $2, 'a', 'f')"
	" ON CONFLICT DO NOTHING";
static const char SQL_BAR_COMP[] =
	"INSERT INTO dtx.barrier (saga, step, kind, result) VALUES ($1, $2, 'c', 'd')";
static const char SQL_BAR_READ[] =
	"SELECT result FROM dtx.barrier WHERE saga = $1 AND step = $2 AND kind = 'a'";

pga_db_t *pga_db_new(const char *conninfo, uint32_t lock_timeout_ms, uint64_t max_rows,
		     uint64_t max_bytes, const pga_named_t *named)
{
	pga_db_t *self = calloc(1, sizeof(*self));
	if (!self)
		return NULL;
	self->named = named;
	self->max_rows = max_rows;
	self->max_bytes = max_bytes;
	if (lock_timeout_ms)
		snprintf(self->lock_timeout, sizeof(self->lock_timeout), "SET lock_timeout = %u",
			 (unsigned)lock_timeout_ms);
	self->params[0] = self->param;
	if (!(self->conninfo = strdup(conninfo))) {
		free(self);
		return NULL;
	}
	return self;
}

static void s_clear_results(pga_db_t *self)
{
	for (unsigned i = 0; i < self->nq; i++) {
		PQclear(self->q[i].res);
		self->q[i].res = NULL;
	}
}

static void s_close(pga_db_t *self)
{
	s_clear_results(self);
	if (self->conn)
		PQfinish(self->conn);
	self->conn = NULL;
	self->connecting = self->want_write = self->marked = self->clean = self->used = false;
	self->nreset = 0;
}

void pga_db_destroy(pga_db_t **self_p)
{
	pga_db_t *self = self_p ? *self_p : NULL;
	if (!self)
		return;
	s_close(self);
	free(self->q);
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

/* The one translation of a libpq result into our terms. 0 when ok. */
static int s_check(const PGresult *res, PGconn *conn, char *sqlstate, char *why, size_t why_len)
{
	ExecStatusType st = PQresultStatus(res);
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
		return 0;
	const char *code = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	if (sqlstate)
		snprintf(sqlstate, 6, "%s", code ? code : "08006");
	s_msg(why, why_len, "", msg ? msg : conn ? PQerrorMessage(conn) : "no connection");
	return DTX_EDB;
}

static void s_no_notice(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

int pga_db_ensure_schema(const char *conninfo, char *why, size_t why_len)
{
	PGconn *conn = PQconnectdb(conninfo);
	int rc = DTX_EDB;
	if (PQstatus(conn) != CONNECTION_OK) {
		s_msg(why, why_len, "cannot connect: ", PQerrorMessage(conn));
	} else {
		/* not "relation ... already exists, skipping" on stderr */
		PQsetNoticeProcessor(conn, s_no_notice, NULL);
		PGresult *res = PQexec(conn, SQL_SCHEMA);
		rc = s_check(res, conn, NULL, why, why_len);
		PQclear(res);
		if (rc == 0) {
			char sqlstate[8] = "", tmp[400];
			res = PQexec(conn, SQL_PRUNE_INDEX);
			if (s_check(res, conn, sqlstate, tmp, sizeof(tmp))) {
				if (strcmp(sqlstate, "55P03")) {
					snprintf(why, why_len, "%s", tmp);
					rc = DTX_EDB;
				} else {
					dtx_warn("index dtx.branches_created or "
						 "dtx.barrier_created not made: prepared branches "
						 "hold its table; until a later start makes it, "
						 "pruning reads the whole table");
				}
			}
			PQclear(res);
		}
	}
	PQfinish(conn);
	return rc;
}

int pga_db_check_named(const char *conninfo, const pga_named_t *named, char *why, size_t why_len)
{
	if (!pga_named_count(named))
		return 0;
	PGconn *conn = PQconnectdb(conninfo);
	int rc = 0;
	if (PQstatus(conn) != CONNECTION_OK) {
		s_msg(why, why_len, "cannot connect: ", PQerrorMessage(conn));
		rc = DTX_EDB;
	}
	for (uint32_t i = 0; rc == 0 && i < pga_named_count(named); i++) {
		const pga_named_stmt_t *st = pga_named_at(named, i);
		char tmp[400], sqlstate[8] = "";
		PGresult *res = PQprepare(conn, st->pgname, st->sql, 0, NULL);
		if (s_check(res, conn, sqlstate, tmp, sizeof(tmp))) {
			/* the database going away is not the file's fault */
			bool gone = !res || strncmp(sqlstate, "08", 2) == 0 ||
				    strncmp(sqlstate, "57P", 3) == 0;
			snprintf(why, why_len, "%s:%u: statement '%s' does not prepare (%s): %s",
				 pga_named_path(named), st->line, st->name, sqlstate, tmp);
			rc = gone ? DTX_EDB : DTX_ECONFIG;
		}
		PQclear(res);
	}
	PQfinish(conn);
	return rc;
}

/* --- pipelines -------------------------------------------------------- */

/* Room for n queries in self->q; false when out of memory. */
static bool s_reserve(pga_db_t *self, unsigned n)
{
	if (n <= self->qcap)
		return true;
	s_query_t *q = realloc(self->q, n * sizeof(*q));
	if (!q)
		return false;
	self->q = q;
	self->qcap = n;
	return true;
}

/* Whether q[i] is one of the branch's statements in the pipeline in flight. */
static bool s_is_stmt(const pga_db_t *self, unsigned i)
{
	bool work = self->op && ((self->op->kind == PGA_OP_PREPARE && self->step == ST_WORK) ||
				 (self->op->kind == PGA_OP_STEP &&
				  (self->step == ST_STEP_RUN || self->step == ST_COMP_WORK)));
	return work && i >= self->i_stmt && i < self->i_guard;
}

/*
 * The query q[nres] becomes current. A branch statement's rows are taken
 * one at a time (single-row mode) and only counted: the agent keeps none
 * of them, so a result of any size costs one row's memory, and one past
 * max_rows or max_bytes makes its branch vote no.
 */
static void s_next_query(pga_db_t *self)
{
	self->rows = self->bytes = 0;
	if ((self->max_rows || self->max_bytes) && s_is_stmt(self, self->nres))
		PQsetSingleRowMode(self->conn);
}

static void s_count_row(pga_db_t *self, const PGresult *r)
{
	self->rows++;
	for (int c = 0; c < PQnfields(r); c++)
		self->bytes += (uint64_t)PQgetlength(r, 0, c);
	if (!self->over && ((self->max_rows && self->rows > self->max_rows) ||
			    (self->max_bytes && self->bytes > self->max_bytes)))
		self->over = self->nres + 1; /* q[nres] is receiving */
}

/* Send self->q[0..n) and a sync. false: the connection broke. */
static bool s_send(pga_db_t *self, unsigned n)
{
	PGconn *conn = self->conn;
	self->nq = n;
	self->nres = self->nulls = 0;
	self->rows = self->bytes = 0;
	self->over = 0;
	for (unsigned i = 0; i < n; i++) {
		s_query_t *q = &self->q[i];
		q->res = NULL;
		int ok = q->prepare ? PQsendPrepare(conn, q->name, q->sql, q->nparams, NULL)
			 : q->name ? PQsendQueryPrepared(conn, q->name, q->nparams, q->params, NULL,
							 NULL, 0)
				   : PQsendQueryParams(conn, q->sql, q->nparams, NULL, q->params,
						       NULL, NULL, 0);
		if (ok != 1)
			return false;
	}
	if (PQpipelineSync(conn) != 1)
		return false;
	s_next_query(self);
	int f = PQflush(conn);
	self->want_write = f == 1;
	return f >= 0;
}

/* Send the single query sql (no parameters, or self->param). */
static bool s_send1(pga_db_t *self, const char *sql, int nparams)
{
	self->q[0] = (s_query_t){.sql = sql, .nparams = nparams, .params = self->params};
	return s_send(self, 1);
}

/*
 * Take in what has arrived. 1: the pipeline's sync is in, every query's
 * result in q[i].res (NULL for one that got none); 0: more to come; -1:
 * the connection broke.
 */
static int s_collect(pga_db_t *self)
{
	PGconn *conn = self->conn;
	if (self->want_write) {
		int f = PQflush(conn);
		if (f < 0)
			return -1;
		self->want_write = f == 1;
	}
	if (!PQconsumeInput(conn))
		return -1;
	while (!PQisBusy(conn)) {
		PGresult *r = PQgetResult(conn);
		if (!r) {
			/* the end of one query's results; many in a row: broken */
			if (PQstatus(conn) != CONNECTION_OK || ++self->nulls > 2 * self->nq + 2)
				return -1;
			s_next_query(self);
			continue;
		}
		self->nulls = 0;
		ExecStatusType st = PQresultStatus(r);
		if (st == PGRES_SINGLE_TUPLE) {
			s_count_row(self, r);
			PQclear(r);
			continue;
		}
		if (st == PGRES_PIPELINE_SYNC) {
			PQclear(r);
			return 1;
		}
		/* A COPY (pga_stmt.c refuses them) would hold the session in
		 * its sub-protocol, answering every PQgetResult with itself:
		 * the session is given up. */
		if (st == PGRES_COPY_OUT || st == PGRES_COPY_IN || st == PGRES_COPY_BOTH) {
			PQclear(r);
			dtx_warn("a statement started COPY: the connection is closed");
			return -1;
		}
		if (self->nres < self->nq)
			self->q[self->nres++].res = r;
		else
			PQclear(r);
	}
	return PQstatus(conn) == CONNECTION_OK ? 0 : -1;
}

/* --- operations ------------------------------------------------------- */

static pga_op_t *s_finish(pga_db_t *self, int result)
{
	pga_op_t *op = self->op;
	s_clear_results(self);
	op->result = result;
	self->op = NULL;
	return op;
}

/* The operation cannot go on; why is already set. */
static pga_op_t *s_fail(pga_db_t *self)
{
	switch (self->op->kind) {
	case PGA_OP_PREPARE: return s_finish(self, DTX_VOTE_NO);
	case PGA_OP_DECIDE: return s_finish(self, DTX_ACK_RETRY);
	case PGA_OP_STEP: return s_finish(self, DTX_RESULT_FAILED);
	default: return s_finish(self, DTX_EDB);
	}
}

/* The database cannot be reached: the operation fails with why. */
static pga_op_t *s_unreachable(pga_db_t *self, const char *why)
{
	pga_op_t *op = self->op;
	snprintf(op->sqlstate, 6, "08006");
	snprintf(op->why, sizeof(op->why), "database unreachable: %.400s", why);
	return s_fail(self);
}

/* PostgreSQL's notices and warnings (a branch's RAISE NOTICE, "terminating
 * connection due to ... shutdown") go to the log, not to stderr. */
static void s_notice(void *arg, const char *message)
{
	char line[400];
	(void)arg;
	s_msg(line, sizeof(line), "PostgreSQL says: ", message);
	dtx_info("%s", line);
}

/* libpq leaves conninfo's connect_timeout to a caller that polls: the
 * deadline it asks for (libpq's rules: seconds, at least 2), or 0. */
static int64_t s_connect_deadline(PGconn *conn)
{
	PQconninfoOption *opts = PQconninfo(conn);
	int64_t deadline = 0;
	for (PQconninfoOption *o = opts; o && o->keyword; o++) {
		long secs = strcmp(o->keyword, "connect_timeout") == 0 && o->val ? atol(o->val) : 0;
		if (secs > 0)
			deadline = dtx_now_ms() + (secs < 2 ? 2 : secs) * 1000;
	}
	PQconninfoFree(opts);
	return deadline;
}

static void s_connect(pga_db_t *self)
{
	self->conn = PQconnectStart(self->conninfo);
	self->connect_deadline_ms = 0;
	if (self->conn) {
		PQsetNoticeProcessor(self->conn, s_notice, NULL);
		self->connect_deadline_ms = s_connect_deadline(self->conn);
	}
	self->connecting = true;
	self->want_write = true; /* PQconnectPoll's first wait is for writing */
	self->marked = self->clean = self->used = false;
	self->reused = false;
}

/* self->cmd = "<verb> '<gid>'", the gid quoted by libpq. false: out of
 * memory. */
static bool s_gid_cmd(pga_db_t *self, const char *verb)
{
	pga_op_t *op = self->op;
	char *lit = PQescapeLiteral(self->conn, op->gid, strlen(op->gid));
	if (!lit)
		return false;
	snprintf(self->cmd, sizeof(self->cmd), "%s %s", verb, lit);
	PQfreemem(lit);
	return true;
}

/* Markers of branches and barrier rows of sagas long finished: the
 * coordinator has forgotten them by now (retention), so nobody will ask
 * again. */
static bool s_send_prune(pga_db_t *self)
{
	snprintf(self->param, sizeof(self->param), "%llu",
		 (unsigned long long)self->op->retention_s);
	self->step = ST_PRUNE;
	self->q[0] = (s_query_t){.sql = SQL_PRUNE, .nparams = 1, .params = self->params};
	self->q[1] = (s_query_t){.sql = SQL_PRUNE_BARRIER, .nparams = 1, .params = self->params};
	return s_send(self, 2);
}

/* The operation's statements (a branch's, a step's or a compensation's)
 * go on the session: from here on it holds whatever they leave, which is
 * nothing when they are all quiet (pga_stmt_check()). */
static void s_runs_statements(pga_db_t *self)
{
	if (!self->op->quiet)
		self->clean = false;
	self->used = true;
}

/* Append the session reset, and the agent's own settings after it, to
 * the pipeline being built (*n queries so far). */
static void s_add_reset(pga_db_t *self, unsigned *n)
{
	self->i_reset = *n;
	for (unsigned i = 0; i < NRESET; i++)
		self->q[(*n)++] = (s_query_t){.sql = SQL_RESET[i]};
	if (self->lock_timeout[0])
		self->q[(*n)++] = (s_query_t){.sql = self->lock_timeout};
	self->nreset = *n - self->i_reset;
}

/* What ends a branch's last pipeline: the session reset after one that
 * is not quiet; after a quiet one DISCARD SEQUENCES alone (what it can
 * leave is a sequence value a column default or trigger took, which a
 * later branch's default or trigger could read: currval()); nothing on a
 * session no branch used since the reset. */
static void s_add_tail(pga_db_t *self, unsigned *n)
{
	if (!self->clean) {
		s_add_reset(self, n);
	} else if (self->used) {
		self->i_reset = *n;
		self->q[(*n)++] = (s_query_t){.sql = "DISCARD SEQUENCES"};
		self->nreset = 1;
	}
}

/* The pipeline that ends a branch: cmd, then s_add_tail(). */
static bool s_send_end(pga_db_t *self, const char *cmd)
{
	unsigned n = 0;
	self->q[n++] = (s_query_t){.sql = cmd};
	s_add_tail(self, &n);
	return s_send(self, n);
}

/* Append op's statements to the pipeline being built (*n queries so far):
 * SQL as it came, a named one as EXECUTE of its prepared statement.
 * false: a name this agent does not define (pga_named_check() found it
 * before the job was queued). */
static bool s_add_stmts(pga_db_t *self, unsigned *n)
{
	pga_op_t *op = self->op;
	for (uint32_t i = 0; i < op->nstmts; i++) {
		const dtx_stmt_t *st = &op->stmts[i];
		const pga_named_stmt_t *ns = st->statement
						     ? pga_named_find(self->named, st->statement)
						     : NULL;
		if (st->statement && !ns)
			return false;
		self->q[(*n)++] = (s_query_t){.sql = ns ? NULL : st->sql,
					      .nparams = (int)st->nparams,
					      .params = st->params,
					      .name = ns ? ns->pgname : NULL};
	}
	return true;
}

/* The barrier query sql for the step: its key as parameters. */
static s_query_t s_bar_query(pga_db_t *self, const char *sql)
{
	return (s_query_t){.sql = sql, .nparams = 2, .params = self->bar};
}

/*
 * A saga step's first pipeline. BEGIN and the step's time; then RUN: its
 * barrier row, the statements, the guard (the COMMIT follows once the
 * results are checked); COMPENSATE: the fence and the compensation's row
 * (its statements follow only if the step ran); PROBE: the fence, the
 * step's row read, COMMIT. Each barrier query is the first write of the
 * transaction: a running step's row makes it wait for that step.
 */
static bool s_send_step(pga_db_t *self)
{
	pga_op_t *op = self->op;
	unsigned n = 0;
	self->q[n++] = (s_query_t){.sql = "BEGIN"};
	if (op->timeout_ms) {
		snprintf(self->stmt_timeout, sizeof(self->stmt_timeout),
			 "SET LOCAL statement_timeout = %u", (unsigned)op->timeout_ms);
		self->q[n++] = (s_query_t){.sql = self->stmt_timeout};
	}
	self->i_bar = n;
	switch (op->step_code) {
	case DTX_STEP_RUN:
		self->step = ST_STEP_RUN;
		self->q[n++] = s_bar_query(self, SQL_BAR_RUN);
		self->i_stmt = n;
		if (!s_add_stmts(self, &n))
			return false;
		self->i_guard = n;
		self->q[n++] = (s_query_t){.sql = SQL_GUARD};
		self->q[n++] = (s_query_t){.sql = SQL_UNGUARD};
		s_runs_statements(self);
		break;
	case DTX_STEP_COMPENSATE:
		self->step = ST_COMP_FENCE;
		self->q[n++] = s_bar_query(self, SQL_BAR_FENCE);
		self->q[n++] = s_bar_query(self, SQL_BAR_COMP);
		break;
	default:
		self->step = ST_PROBE;
		self->q[n++] = s_bar_query(self, SQL_BAR_FENCE);
		self->q[n++] = s_bar_query(self, SQL_BAR_READ);
		self->q[n++] = (s_query_t){.sql = "COMMIT"};
		break;
	}
	if (!s_send(self, n))
		return false;
	/* Crash point: the step's first pipeline is sent, nothing read. RUN
	 * and COMPENSATE hold no COMMIT: PostgreSQL rolls them back. PROBE
	 * may have fenced the step; a probe again says so. */
	dtx_crash_point("pga.step_sent");
	return true;
}

/* The first step of the operation: its queries on the pipeline. */
static bool s_send_first(pga_db_t *self)
{
	pga_op_t *op = self->op;
	unsigned n = 0;
	switch (op->kind) {
	case PGA_OP_PREPARE:
		self->step = ST_WORK;
		self->q[n++] = (s_query_t){.sql = "BEGIN"};
		/* What is left of the global timeout bounds each statement
		 * (and the PREPARE); SET LOCAL ends with the transaction. */
		self->stmt_timeout[0] = '\0';
		if (op->deadline_ms) {
			int64_t left = op->deadline_ms - dtx_now_ms();
			snprintf(self->stmt_timeout, sizeof(self->stmt_timeout),
				 "SET LOCAL statement_timeout = %lld",
				 (long long)(left > 1 ? left : 1));
			self->q[n++] = (s_query_t){.sql = self->stmt_timeout};
		}
		self->i_stmt = n;
		if (!s_add_stmts(self, &n))
			return false;
		self->i_guard = n;
		self->q[n++] = (s_query_t){.sql = SQL_GUARD};
		self->q[n++] = (s_query_t){.sql = SQL_UNGUARD};
		self->i_mark = n;
		self->q[n++] = (s_query_t){.sql = SQL_MARK,
					   .nparams = 1,
					   .params = self->mark,
					   .name = MARK_STMT};
		s_runs_statements(self);
		/* Two phases: prepared in this same round trip, and the
		 * session reset after it (s_add_tail()); a row count found
		 * wrong afterwards rolls the prepared branch back. */
		self->i_prep = 0;
		if (!op->one_phase) {
			if (!s_gid_cmd(self, "PREPARE TRANSACTION"))
				return false;
			self->i_prep = n;
			self->q[n++] = (s_query_t){.sql = self->cmd};
			s_add_tail(self, &n);
		}
		if (!s_send(self, n))
			return false;
		/* Crash point: the work is sent (with its PREPARE), no vote. */
		dtx_crash_point("pga.work_done");
		return true;
	case PGA_OP_DECIDE:
		if (!s_gid_cmd(self, op->decision == DTX_DECIDE_COMMIT ? "COMMIT PREPARED"
								       : "ROLLBACK PREPARED"))
			return false;
		self->step = ST_APPLY;
		return s_send1(self, self->cmd, 0);
	case PGA_OP_PRUNE: return s_send_prune(self);
	case PGA_OP_STEP: return s_send_step(self);
	default:
		snprintf(self->param, sizeof(self->param), "dtx:%s:", op->coord);
		self->step = ST_LIST;
		return s_send1(self, SQL_SCAN, 1);
	}
}

/* Send the set-up step if the session needs it, else the first step. A
 * new session gets the reset too (it is one round trip either way); one
 * that a branch left unreset (its last pipeline failed before the reset,
 * or the branch was not quiet) gets it before any other job runs there,
 * and one that only quiet branches used since, before a branch that is
 * not quiet. */
static bool s_send_begin(pga_db_t *self)
{
	unsigned n = 0;
	const pga_op_t *op = self->op;
	/* Statements that are not quiet may read the session too (lastval(),
	 * current_setting()): they run only on one reset since any branch
	 * ran there, quiet ones included. A quiet branch's last pipeline
	 * ends with s_add_tail(), and one stopped before it leaves the
	 * session not clean; this holds for a branch that ended otherwise. */
	bool reset = !self->clean || (self->used && !op->quiet &&
				      (op->kind == PGA_OP_PREPARE || op->kind == PGA_OP_STEP));
	if (self->marked && !reset)
		return s_send_first(self);
	self->step = ST_SETUP;
	if (reset)
		s_add_reset(self, &n);
	if (!self->marked) {
		self->q[n++] = (s_query_t){.sql = SQL_MARK,
					   .nparams = 1,
					   .name = MARK_STMT,
					   .prepare = true};
		/* The named statements, in the session as the reset leaves
		 * it: their parameters' types are inferred from their SQL. */
		for (uint32_t i = 0; i < pga_named_count(self->named); i++) {
			const pga_named_stmt_t *st = pga_named_at(self->named, i);
			self->q[n++] = (s_query_t){.sql = st->sql,
						   .name = st->pgname,
						   .prepare = true};
		}
	}
	return s_send(self, n);
}

static pga_op_t *s_on_step(pga_db_t *self, bool lost, const char *lost_why);

/* The connection broke (or libpq refused a query): close it; the step
 * sees its pipeline lost. */
static pga_op_t *s_lost(pga_db_t *self)
{
	char why[400];
	s_msg(why, sizeof(why), "connection lost: ", PQerrorMessage(self->conn));
	s_close(self);
	return s_on_step(self, true, why);
}

/* Begin or restart the operation: connect first if need be. Returns it
 * when it finished at once. */
static pga_op_t *s_begin(pga_db_t *self)
{
	self->first = true;
	if (!self->conn)
		s_connect(self);
	if (PQstatus(self->conn) == CONNECTION_BAD) {
		char why[400];
		s_msg(why, sizeof(why), "cannot connect: ", PQerrorMessage(self->conn));
		s_close(self);
		return s_unreachable(self, why);
	}
	if (self->connecting)
		return NULL;
	return s_send_begin(self) ? NULL : s_lost(self);
}

pga_op_t *pga_db_start(pga_db_t *self, pga_op_t *op)
{
	self->op = op;
	op->result = 0;
	op->sqlstate[0] = op->why[0] = '\0';
	op->gids = NULL;
	op->ngids = 0;
	self->mark[0] = op->gid;
	self->reused = self->conn != NULL;
	bool work = op->kind == PGA_OP_PREPARE || op->kind == PGA_OP_STEP;
	if (op->kind == PGA_OP_STEP) {
		snprintf(self->step_no, sizeof(self->step_no), "%u", (unsigned)op->step);
		self->bar[0] = op->saga;
		self->bar[1] = self->step_no;
	}
	/* BEGIN, SET LOCAL, the guard (2), the marker, PREPARE; the reset;
	 * or the set-up: the reset, the marker and the named statements; a
	 * step needs fewer */
	if (!s_reserve(self, (work ? op->nstmts : 0) + 8 + NRESET + pga_named_count(self->named))) {
		snprintf(op->why, sizeof(op->why), "out of memory");
		return s_fail(self);
	}
	if (work && pga_named_check(self->named, op->nstmts, op->stmts, op->sqlstate, op->why,
				    sizeof(op->why), NULL))
		return s_fail(self); /* pga.c checked it already */
	if (op->kind == PGA_OP_PREPARE && op->deadline_ms && dtx_now_ms() >= op->deadline_ms) {
		snprintf(op->sqlstate, 6, "57014");
		snprintf(op->why, sizeof(op->why),
			 "the transaction's timeout passed before the branch could start");
		return s_fail(self);
	}
	return s_begin(self);
}

int pga_db_socket(const pga_db_t *self, bool *want_write)
{
	*want_write = self->want_write;
	return self->op && self->conn ? PQsocket(self->conn) : -1;
}

/* A result that says the session is gone: PostgreSQL shut it down or
 * restarted, or libpq lost it. */
static bool s_session_gone(const PGresult *res)
{
	const char *code = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	return !res || (code && (strncmp(code, "08", 2) == 0 || strncmp(code, "57P", 3) == 0));
}

/* Undo a branch that votes no (why is set): ROLLBACK PREPARED once
 * prepared, else ROLLBACK; then the vote. */
static pga_op_t *s_undo(pga_db_t *self, bool prepared)
{
	s_clear_results(self);
	if (prepared && !s_gid_cmd(self, "ROLLBACK PREPARED"))
		return s_finish(self, DTX_VOTE_NO); /* the coordinator's ROLLBACK will */
	if (!prepared)
		snprintf(self->cmd, sizeof(self->cmd), "ROLLBACK");
	self->step = ST_ROLLBACK;
	self->after = DTX_VOTE_NO;
	return s_send_end(self, self->cmd) ? NULL : s_lost(self);
}

/* Whether q[i], one of the client's statements (from i_stmt), went wrong:
 * *error, it failed; else its result was over the bound or its row count
 * not the one expected. op->sqlstate and op->why say how, in the words a
 * branch's NO vote and a step's FAILED use alike. */
static bool s_stmt_bad(pga_db_t *self, unsigned i, bool *error)
{
	pga_op_t *op = self->op;
	unsigned stmt = i - self->i_stmt + 1; /* 1-based, as the client counts */
	char tmp[400];
	*error = false;
	if (s_check(self->q[i].res, self->conn, op->sqlstate, tmp, sizeof(tmp))) {
		*error = true;
		snprintf(op->why, sizeof(op->why), "statement %u failed: %s", stmt, tmp);
		/* a named statement gone (a function's DEALLOCATE): prepare
		 * them all again next time */
		if (op->stmts[stmt - 1].statement && strcmp(op->sqlstate, "26000") == 0)
			self->marked = false;
		return true;
	}
	if (self->over == i + 1) {
		snprintf(op->sqlstate, 6, "54000");
		snprintf(op->why, sizeof(op->why),
			 "statement %u returned more than %llu rows or %llu bytes", stmt,
			 (unsigned long long)self->max_rows, (unsigned long long)self->max_bytes);
		return true;
	}
	if (op->stmts[stmt - 1].expect >= 0) {
		const char *t = PQcmdTuples(self->q[i].res);
		long long rows = t && *t ? atoll(t) : (long long)PQntuples(self->q[i].res);
		if (rows != op->stmts[stmt - 1].expect) {
			snprintf(op->why, sizeof(op->why),
				 "statement %u touched %lld rows, expected %lld", stmt, rows,
				 (long long)op->stmts[stmt - 1].expect);
			return true;
		}
	}
	return false;
}

/* ST_WORK is back: check every result. Two phases: the branch is prepared
 * (vote yes) unless something failed (undo, vote no) or it wrote nothing
 * (COMMIT PREPARED, vote read-only). One phase: COMMIT next, if the
 * session is still in the branch's transaction. */
static pga_op_t *s_on_work(pga_db_t *self)
{
	pga_op_t *op = self->op;
	char tmp[400];
	const PGresult *prep = op->one_phase ? NULL : self->q[self->i_prep].res;
	/* PREPARE TRANSACTION outside a transaction block only warns and
	 * answers ROLLBACK: its command tag tells */
	bool prepared = prep && PQresultStatus(prep) == PGRES_COMMAND_OK &&
			strcmp(PQcmdStatus((PGresult *)prep), "PREPARE TRANSACTION") == 0;
	/* Crash point: the branch may be prepared, its row counts unchecked. */
	dtx_crash_point("pga.work_back");
	for (unsigned i = 0; i <= self->i_mark; i++) {
		if (i >= self->i_stmt && i < self->i_guard) {
			bool error;
			if (!s_stmt_bad(self, i, &error))
				continue;
			if (error)
				return s_undo(self, false); /* the PREPARE did not run */
			/* a failed PREPARE cancelled the transaction */
			return prep && !prepared ? s_finish(self, DTX_VOTE_NO)
						 : s_undo(self, prepared);
		}
		if (s_check(self->q[i].res, self->conn, op->sqlstate, tmp, sizeof(tmp))) {
			if (i == 0)
				snprintf(op->why, sizeof(op->why), "BEGIN failed: %s", tmp);
			else if (i < self->i_stmt)
				snprintf(op->why, sizeof(op->why),
					 "cannot set statement_timeout: %s", tmp);
			else if (i < self->i_mark)
				snprintf(op->why, sizeof(op->why),
					 "the branch is no longer in the transaction the agent "
					 "began: "
					 "%s",
					 tmp);
			else {
				snprintf(op->why, sizeof(op->why),
					 "cannot write the marker row: %s", tmp);
				/* gone: prepare it again next time */
				if (strcmp(op->sqlstate, "26000") == 0)
					self->marked = false;
			}
			return s_undo(self, false); /* the PREPARE did not run */
		}
	}
	/* The marker row's count: 0 when nothing was written, no row locked. */
	self->read_only = strcmp(PQcmdTuples(self->q[self->i_mark].res), "0") == 0;
	if (prep && !prepared) {
		/* PostgreSQL cancelled the transaction: nothing to undo */
		if (!s_check(prep, self->conn, op->sqlstate, tmp, sizeof(tmp)))
			snprintf(tmp, sizeof(tmp), "not in the transaction the agent began");
		snprintf(op->why, sizeof(op->why), "prepare failed: %s", tmp);
		return s_finish(self, DTX_VOTE_NO);
	}
	/* One phase: the COMMIT goes in a pipeline of its own; it must end
	 * the transaction BEGIN opened, not some other. */
	if (!prep && PQtransactionStatus(self->conn) != PQTRANS_INTRANS) {
		snprintf(op->sqlstate, 6, "25000");
		snprintf(op->why, sizeof(op->why),
			 "the branch is no longer in the transaction the agent began");
		return s_undo(self, false);
	}
	s_clear_results(self);
	if (prepared && !self->read_only) {
		/* Durability point: the branch is prepared in PostgreSQL's WAL;
		 * it survives our death and PostgreSQL's, and is reported at
		 * the next HELLO. */
		dtx_crash_point("pga.prepared");
		return s_finish(self, DTX_VOTE_YES);
	}
	/* Nothing written: commit now (that releases a snapshot and
	 * AccessShare locks) and vote READ-ONLY; the coordinator sends no
	 * phase two. One phase: COMMIT. */
	if (!prepared)
		snprintf(self->cmd, sizeof(self->cmd), "COMMIT");
	else if (!s_gid_cmd(self, "COMMIT PREPARED")) {
		snprintf(op->why, sizeof(op->why), "out of memory");
		return s_undo(self, prepared);
	}
	self->step = ST_END;
	return s_send_end(self, self->cmd) ? NULL : s_lost(self);
}

static pga_op_t *s_on_end(pga_db_t *self, bool lost, const char *lost_why)
{
	pga_op_t *op = self->op;
	const char *what = self->read_only ? "commit of a read-only branch" : "commit";
	char tmp[400];
	if (lost) {
		snprintf(op->sqlstate, 6, "08006");
		snprintf(op->why, sizeof(op->why), "%s failed: %s", what, lost_why);
		/* Lost while committing one phase: it may have committed; only
		 * the marker row can tell, later. A read-only branch votes no:
		 * the coordinator's ROLLBACK finishes one left prepared. */
		return s_finish(self, self->read_only ? DTX_VOTE_NO : PGA_VOTE_UNKNOWN);
	}
	if (s_check(self->q[0].res, self->conn, op->sqlstate, tmp, sizeof(tmp))) {
		snprintf(op->why, sizeof(op->why), "%s failed: %s", what, tmp);
		return s_undo(self, !op->one_phase);
	}
	if (self->read_only)
		return s_finish(self, DTX_VOTE_READONLY);
	/* Durability point: the one-phase branch is committed. */
	dtx_crash_point("pga.prepared");
	return s_finish(self, DTX_VOTE_COMMITTED);
}

static pga_op_t *s_on_apply(pga_db_t *self, bool lost, const char *lost_why)
{
	pga_op_t *op = self->op;
	char state[8] = "08006", tmp[400];
	bool commit = op->decision == DTX_DECIDE_COMMIT;
	if (!lost && s_check(self->q[0].res, self->conn, state, tmp, sizeof(tmp)) == 0) {
		dtx_crash_point("pga.applied");
		return s_finish(self, DTX_ACK_DONE);
	}
	if (lost || strcmp(state, "42704") != 0) {
		/* busy, connection lost, ...: try again later */
		snprintf(op->why, sizeof(op->why), "%s failed (%s): %s",
			 commit ? "commit" : "rollback", state, lost ? lost_why : tmp);
		return s_finish(self, DTX_ACK_RETRY);
	}
	/* The branch is gone: its marker row says which way it went. A marker
	 * is written inside the prepared transaction, so it exists exactly
	 * when the branch committed. */
	s_clear_results(self);
	self->q[0] = (s_query_t){.sql = SQL_MARKED, .nparams = 1, .params = self->mark};
	self->step = ST_MARKED;
	return s_send(self, 1) ? NULL : s_lost(self);
}

static pga_op_t *s_on_marked(pga_db_t *self, bool lost, const char *lost_why)
{
	pga_op_t *op = self->op;
	char tmp[400];
	if (lost || s_check(self->q[0].res, self->conn, NULL, tmp, sizeof(tmp))) {
		snprintf(op->why, sizeof(op->why), "cannot read the marker row: %s",
			 lost ? lost_why : tmp);
		return s_finish(self, DTX_ACK_RETRY);
	}
	bool committed = PQntuples(self->q[0].res) > 0;
	if (op->decision == DTX_DECIDE_RESOLVE)
		return s_finish(self, committed ? DTX_ACK_COMMITTED : DTX_ACK_DONE);
	if (committed == (op->decision == DTX_DECIDE_COMMIT))
		return s_finish(self, DTX_ACK_DONE);
	snprintf(op->why, sizeof(op->why), "%s was %s outside dtx", op->gid,
		 committed ? "committed" : "rolled back");
	return s_finish(self, DTX_ACK_HEURISTIC);
}

static pga_op_t *s_on_list(pga_db_t *self)
{
	pga_op_t *op = self->op;
	PGresult *res = self->q[0].res;
	if (s_check(res, self->conn, NULL, op->why, sizeof(op->why)))
		return s_fail(self);
	int rows = PQntuples(res);
	if (!(op->gids = calloc((size_t)rows + 1, sizeof(char *)))) {
		snprintf(op->why, sizeof(op->why), "out of memory");
		return s_fail(self);
	}
	for (int i = 0; i < rows; i++)
		if (!(op->gids[i] = strdup(PQgetvalue(res, i, 0)))) {
			for (int j = 0; j < i; j++)
				free(op->gids[j]);
			free(op->gids);
			op->gids = NULL;
			snprintf(op->why, sizeof(op->why), "out of memory");
			return s_fail(self);
		}
	op->ngids = (uint32_t)rows;
	dtx_crash_point("pga.scanned");
	s_clear_results(self);
	return s_send_prune(self) ? NULL : s_lost(self);
}

/* --- saga steps (DESIGN.md, "Saga steps and the barrier") -------------- */

/* End the step's transaction with ROLLBACK (and s_add_tail()), then
 * answer result; why is already set. */
static pga_op_t *s_step_rollback(pga_db_t *self, int result)
{
	s_clear_results(self);
	snprintf(self->cmd, sizeof(self->cmd), "ROLLBACK");
	self->step = ST_ROLLBACK;
	self->after = result;
	return s_send_end(self, self->cmd) ? NULL : s_lost(self);
}

/* COMMIT the step's transaction (and s_add_tail()), then answer
 * result with why as its text. Only while libpq reports the session in
 * the transaction BEGIN opened: the COMMIT must end that one. */
static pga_op_t *s_step_commit(pga_db_t *self, int result, const char *text)
{
	pga_op_t *op = self->op;
	if (PQtransactionStatus(self->conn) != PQTRANS_INTRANS) {
		snprintf(op->sqlstate, 6, "25000");
		snprintf(op->why, sizeof(op->why),
			 "the step is no longer in the transaction the agent began");
		return s_step_rollback(self, DTX_RESULT_FAILED);
	}
	snprintf(op->why, sizeof(op->why), "%s", text);
	s_clear_results(self);
	self->step = ST_STEP_COMMIT;
	self->after = result;
	return s_send_end(self, "COMMIT") ? NULL : s_lost(self);
}

/* Whether BEGIN or SET LOCAL statement_timeout (the queries before
 * i_bar) failed; why says which. */
static bool s_step_head_bad(pga_db_t *self)
{
	pga_op_t *op = self->op;
	char tmp[400];
	for (unsigned i = 0; i < self->i_bar; i++)
		if (s_check(self->q[i].res, self->conn, op->sqlstate, tmp, sizeof(tmp))) {
			snprintf(op->why, sizeof(op->why), "%s: %s",
				 i == 0 ? "BEGIN failed" : "cannot set statement_timeout", tmp);
			return true;
		}
	return false;
}

/* Whether q[i] holds an error of SQLSTATE code. */
static bool s_is_state(const pga_db_t *self, unsigned i, const char *code)
{
	const char *c = self->q[i].res ? PQresultErrorField(self->q[i].res, PG_DIAG_SQLSTATE)
				       : NULL;
	return c && strcmp(c, code) == 0;
}

/* The step's statements (q[i_stmt..i_guard)) and the guard after them:
 * RUN's first pipeline, COMPENSATE's second. On a failure ROLLBACK and
 * FAILED, else COMMIT and answer DONE with text. */
static pga_op_t *s_step_work_end(pga_db_t *self, const char *text)
{
	pga_op_t *op = self->op;
	char tmp[400];
	for (unsigned i = self->i_stmt; i < self->i_guard; i++) {
		bool error;
		if (s_stmt_bad(self, i, &error))
			return s_step_rollback(self, DTX_RESULT_FAILED);
	}
	for (unsigned i = self->i_guard; i < self->i_guard + 2; i++)
		if (s_check(self->q[i].res, self->conn, op->sqlstate, tmp, sizeof(tmp))) {
			snprintf(op->why, sizeof(op->why),
				 "the step is no longer in the transaction the agent began: %s",
				 tmp);
			return s_step_rollback(self, DTX_RESULT_FAILED);
		}
	return s_step_commit(self, DTX_RESULT_DONE, text);
}

/* RUN's first pipeline is back. The barrier row is the first write: if
 * it is there already (23505, from a transaction that committed: a
 * running one made this INSERT wait for it), the statements did not run
 * and the row says what became of the step. */
static pga_op_t *s_on_step_run(pga_db_t *self)
{
	pga_op_t *op = self->op;
	char tmp[400];
	if (s_step_head_bad(self))
		return s_step_rollback(self, DTX_RESULT_FAILED);
	if (s_is_state(self, self->i_bar, "23505")) {
		unsigned n = 0;
		s_clear_results(self);
		self->q[n++] = (s_query_t){.sql = "ROLLBACK"};
		self->q[n++] = s_bar_query(self, SQL_BAR_READ);
		s_add_tail(self, &n);
		self->step = ST_STEP_SEEN;
		return s_send(self, n) ? NULL : s_lost(self);
	}
	if (s_check(self->q[self->i_bar].res, self->conn, op->sqlstate, tmp, sizeof(tmp))) {
		snprintf(op->why, sizeof(op->why), "cannot write the barrier row: %s", tmp);
		return s_step_rollback(self, DTX_RESULT_FAILED);
	}
	return s_step_work_end(self, "");
}

/* The step's barrier row, read after RUN found it there: 'd' it ran
 * before, 'f' a compensation or a probe fenced it before it ran. A row
 * that cannot be read (the connection broke, or it is gone) leaves the
 * answer to a later ask. */
static pga_op_t *s_on_step_seen(pga_db_t *self, bool lost, const char *lost_why)
{
	pga_op_t *op = self->op;
	char tmp[400];
	const PGresult *res = lost ? NULL : self->q[1].res;
	if (lost || s_check(res, self->conn, NULL, tmp, sizeof(tmp))) {
		snprintf(op->why, sizeof(op->why), "cannot read the barrier row: %s",
			 lost ? lost_why : tmp);
		return s_finish(self, PGA_RESULT_UNKNOWN);
	}
	if (PQntuples(res) != 1) {
		snprintf(op->why, sizeof(op->why), "the barrier row is gone (pruned?)");
		return s_finish(self, PGA_RESULT_UNKNOWN);
	}
	if (strcmp(PQgetvalue(res, 0, 0), "d") == 0) {
		snprintf(op->why, sizeof(op->why), "done before");
		return s_finish(self, DTX_RESULT_DONE);
	}
	snprintf(op->why, sizeof(op->why), "compensated or probed before it ran: fenced");
	return s_finish(self, DTX_RESULT_FENCED);
}

/* COMPENSATE's first pipeline is back: the fence, then the
 * compensation's row. */
static pga_op_t *s_on_comp_fence(pga_db_t *self)
{
	pga_op_t *op = self->op;
	char tmp[400];
	unsigned n = 0;
	if (s_step_head_bad(self))
		return s_step_rollback(self, DTX_RESULT_FAILED);
	if (s_check(self->q[self->i_bar].res, self->conn, op->sqlstate, tmp, sizeof(tmp))) {
		snprintf(op->why, sizeof(op->why), "cannot write the barrier row: %s", tmp);
		return s_step_rollback(self, DTX_RESULT_FAILED);
	}
	if (s_is_state(self, self->i_bar + 1, "23505")) {
		/* a compensation committed before: nothing more to do */
		snprintf(op->why, sizeof(op->why), "compensated before");
		return s_step_rollback(self, DTX_RESULT_DONE);
	}
	if (s_check(self->q[self->i_bar + 1].res, self->conn, op->sqlstate, tmp, sizeof(tmp))) {
		snprintf(op->why, sizeof(op->why),
			 "cannot write the compensation's barrier row: %s", tmp);
		return s_step_rollback(self, DTX_RESULT_FAILED);
	}
	/* The fence wrote the step's row: the step never ran (a running one
	 * made the fence wait for it), and now never will. Nothing to undo:
	 * the compensation's statements do not run. */
	if (strcmp(PQcmdTuples(self->q[self->i_bar].res), "1") == 0)
		return s_step_commit(self, DTX_RESULT_DONE,
				     "the step had not run: fenced, nothing to undo");
	/* The step ran: its compensation, in the same transaction. */
	s_clear_results(self);
	self->i_stmt = 0;
	if (!s_add_stmts(self, &n)) {
		snprintf(op->sqlstate, 6, "26000");
		snprintf(op->why, sizeof(op->why), "a named statement is not defined here");
		return s_step_rollback(self, DTX_RESULT_FAILED);
	}
	self->i_guard = n;
	self->q[n++] = (s_query_t){.sql = SQL_GUARD};
	self->q[n++] = (s_query_t){.sql = SQL_UNGUARD};
	s_runs_statements(self);
	self->step = ST_COMP_WORK;
	return s_send(self, n) ? NULL : s_lost(self);
}

/* A step's COMMIT is back. Lost: it may have committed; the barrier row
 * will tell when the coordinator asks again. */
static pga_op_t *s_on_step_commit(pga_db_t *self, bool lost, const char *lost_why)
{
	pga_op_t *op = self->op;
	char tmp[400];
	if (lost) {
		snprintf(op->sqlstate, 6, "08006");
		snprintf(op->why, sizeof(op->why), "commit failed: %s", lost_why);
		return s_finish(self, PGA_RESULT_UNKNOWN);
	}
	if (s_check(self->q[0].res, self->conn, op->sqlstate, tmp, sizeof(tmp))) {
		snprintf(op->why, sizeof(op->why), "commit failed: %s", tmp);
		return s_step_rollback(self, DTX_RESULT_FAILED);
	}
	/* COMMIT of a transaction that failed answers ROLLBACK */
	if (strcmp(PQcmdStatus(self->q[0].res), "COMMIT") != 0) {
		snprintf(op->sqlstate, 6, "25000");
		snprintf(op->why, sizeof(op->why), "commit failed: the transaction rolled back");
		return s_finish(self, DTX_RESULT_FAILED);
	}
	/* Durability point: the step (or its compensation, or the fence) is
	 * committed with its barrier row; the RESULT is not sent. The
	 * coordinator asks again, and the barrier answers. */
	dtx_crash_point("pga.step_done");
	return s_finish(self, self->after);
}

/* PROBE's pipeline is back: the fence, the step's row, COMMIT. */
static pga_op_t *s_on_probe(pga_db_t *self, bool lost, const char *lost_why)
{
	pga_op_t *op = self->op;
	char tmp[400];
	unsigned i = self->i_bar;
	if (lost) {
		/* the fence may have committed: a probe again will say */
		snprintf(op->why, sizeof(op->why), "probe lost: %s", lost_why);
		return s_finish(self, PGA_RESULT_UNKNOWN);
	}
	if (s_step_head_bad(self))
		return s_step_rollback(self, DTX_RESULT_FAILED);
	for (; i < self->i_bar + 3; i++)
		if (s_check(self->q[i].res, self->conn, op->sqlstate, tmp, sizeof(tmp))) {
			snprintf(op->why, sizeof(op->why), "cannot probe the barrier: %s", tmp);
			return s_step_rollback(self, DTX_RESULT_FAILED);
		}
	const PGresult *row = self->q[self->i_bar + 1].res;
	if (strcmp(PQcmdStatus(self->q[self->i_bar + 2].res), "COMMIT") != 0 ||
	    PQntuples(row) != 1) {
		snprintf(op->sqlstate, 6, "25000");
		snprintf(op->why, sizeof(op->why), "cannot probe the barrier: not committed");
		return s_step_rollback(self, DTX_RESULT_FAILED);
	}
	bool ran = strcmp(PQgetvalue(row, 0, 0), "d") == 0;
	/* Durability point: the fence, if written, is committed. */
	dtx_crash_point("pga.step_done");
	snprintf(op->why, sizeof(op->why), "%s", ran ? "it ran" : "it had not run: fenced");
	return s_finish(self, ran ? DTX_RESULT_DONE : DTX_RESULT_FENCED);
}

/* The pipeline of the current step is back (or lost: lost_why says why). */
static pga_op_t *s_on_step(pga_db_t *self, bool lost, const char *lost_why)
{
	pga_op_t *op = self->op;
	char tmp[400];
	/* A connection gone stale (PostgreSQL restarted since its last use)
	 * is found out by an operation's first pipeline: open a new one and
	 * send again. A session that died before its COMMIT or PREPARE left
	 * nothing behind. One that died just after preparing the branch
	 * makes the second attempt fail (the GID, and the marker row's key,
	 * are taken): the branch votes no and the prepared one is rolled
	 * back with the transaction. */
	bool first = self->first;
	self->first = false;
	/* The session reset that rode on this pipeline: clean only if every
	 * part of it ran (a failure before it skips it). */
	if (self->nreset) {
		bool ok = !lost;
		for (unsigned i = self->i_reset; ok && i < self->i_reset + self->nreset; i++)
			ok = PQresultStatus(self->q[i].res) == PGRES_COMMAND_OK ||
			     PQresultStatus(self->q[i].res) == PGRES_TUPLES_OK;
		self->clean = ok;
		if (ok)
			self->used = false;
		self->nreset = 0;
	}
	if (first && self->reused && (lost || s_session_gone(self->q[0].res))) {
		s_close(self);
		return s_begin(self);
	}
	switch (self->step) {
	case ST_SETUP:
		if (lost)
			return s_unreachable(self, lost_why);
		for (unsigned i = 0; i < self->nq; i++)
			if (s_check(self->q[i].res, self->conn, op->sqlstate, tmp, sizeof(tmp))) {
				/* a session a branch left in a state the reset cannot
				 * undo: a new one is clean by construction */
				if (self->reused) {
					s_close(self);
					return s_begin(self);
				}
				snprintf(op->why, sizeof(op->why), "cannot set up the session: %s",
					 tmp);
				return s_fail(self);
			}
		s_clear_results(self);
		self->marked = self->clean = true;
		self->first = true; /* the operation's own first pipeline follows */
		return s_send_first(self) ? NULL : s_lost(self);
	case ST_WORK:
		if (lost)
			return s_unreachable(self, lost_why);
		return s_on_work(self);
	case ST_END: return s_on_end(self, lost, lost_why);
	/* why says what failed; lost or not, nothing of it was committed */
	case ST_ROLLBACK: return s_finish(self, self->after);
	case ST_APPLY: return s_on_apply(self, lost, lost_why);
	case ST_MARKED: return s_on_marked(self, lost, lost_why);
	case ST_LIST:
		if (lost) {
			snprintf(op->why, sizeof(op->why), "%s", lost_why);
			return s_fail(self);
		}
		return s_on_list(self);
	case ST_STEP_RUN:
		if (lost)
			return s_unreachable(self, lost_why);
		return s_on_step_run(self);
	case ST_STEP_SEEN: return s_on_step_seen(self, lost, lost_why);
	case ST_COMP_FENCE:
		if (lost)
			return s_unreachable(self, lost_why);
		return s_on_comp_fence(self);
	case ST_COMP_WORK:
		if (lost)
			return s_unreachable(self, lost_why);
		return s_step_work_end(self, "compensated");
	case ST_STEP_COMMIT: return s_on_step_commit(self, lost, lost_why);
	case ST_PROBE: return s_on_probe(self, lost, lost_why);
	case ST_PRUNE:
		if (lost || s_check(self->q[0].res, self->conn, NULL, tmp, sizeof(tmp)))
			dtx_warn("cannot prune marker rows: %s", lost ? lost_why : tmp);
		else if (s_check(self->q[1].res, self->conn, NULL, tmp, sizeof(tmp)))
			dtx_warn("cannot prune barrier rows: %s", tmp);
		return s_finish(self, 0);
	}
	return NULL;
}

pga_op_t *pga_db_expire(pga_db_t *self, int64_t now_ms)
{
	if (!self->op || !self->connecting || !self->connect_deadline_ms ||
	    now_ms < self->connect_deadline_ms)
		return NULL;
	s_close(self);
	return s_unreachable(self, "cannot connect: connect_timeout expired");
}

void pga_db_cancel(pga_db_t *self)
{
	char err[256];
	if (!self->op || self->op->kind != PGA_OP_PREPARE || self->step != ST_WORK || !self->conn ||
	    self->connecting)
		return;
	PGcancel *c = PQgetCancel(self->conn);
	if (!c || !PQcancel(c, err, sizeof(err)))
		dtx_warn_tx(self->op->gid, "cannot cancel its statements: %s",
			    c ? err : "out of memory");
	else
		dtx_info_tx(self->op->gid, "rolled back while running: its statements cancelled");
	PQfreeCancel(c);
}

pga_op_t *pga_db_advance(pga_db_t *self)
{
	char why[400];
	if (!self->op || !self->conn)
		return NULL;
	if (self->connecting) {
		switch (PQconnectPoll(self->conn)) {
		case PGRES_POLLING_READING: self->want_write = false; return NULL;
		case PGRES_POLLING_WRITING: self->want_write = true; return NULL;
		case PGRES_POLLING_OK:
			self->connecting = self->want_write = false;
			if (PQsetnonblocking(self->conn, 1) == 0 &&
			    PQenterPipelineMode(self->conn) == 1)
				return s_send_begin(self) ? NULL : s_lost(self);
			/* fall through */
		default:
			s_msg(why, sizeof(why), "cannot connect: ", PQerrorMessage(self->conn));
			s_close(self);
			return s_unreachable(self, why);
		}
	}
	int rc = s_collect(self);
	if (rc == 0)
		return NULL;
	return rc < 0 ? s_lost(self) : s_on_step(self, false, NULL);
}
