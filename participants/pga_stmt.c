/*
 * pga_stmt.c — a branch's statements, read by PostgreSQL's parser before
 * they run (see pga_stmt.h).
 *
 * libpg_query gives the raw parse tree as JSON:
 *   {"version":150001,"stmts":[{"stmt":{"SelectStmt":{...}},...}, ...]}
 * The verdict reads how many statements there are and the node type of
 * each; the whole tree is walked for an INTO clause, for schema dtx, for
 * the parameters of a named statement and for what makes a statement not
 * quiet (s_calls()). What the parser refuses, or JSON nested deeper than
 * we read, is refused: the check fails closed.
 */
#include "config.h"

#include <json-c/json.h>
#include <pg_query.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dtx.h"
#include "pga_stmt.h"

/* JSON nesting read; a parse tree deeper than this is refused. Ordinary
 * statements nest a few dozen levels; 1 + 1 + ... + 1 nests one level per
 * term. */
#define S_MAX_DEPTH 2000

static const char S_TAKES[] = "a branch takes one SELECT, INSERT, UPDATE, DELETE or MERGE";

/* The statements a branch may run: data manipulation only. */
static const char *const s_accepted[] = {"SelectStmt", "InsertStmt", "UpdateStmt", "DeleteStmt",
					 "MergeStmt"};

/* Names a client knows for the nodes most often sent by mistake (or not
 * by mistake); any other node is named by its parser node type. */
static const struct {
	const char *node, *name;
} s_names[] = {
	{"VariableSetStmt", "SET"},
	{"VariableShowStmt", "SHOW"},
	{"CopyStmt", "COPY"},
	{"DoStmt", "DO"},
	{"CallStmt", "CALL"},
	{"DiscardStmt", "DISCARD"},
	{"LockStmt", "LOCK"},
	{"ExplainStmt", "EXPLAIN"},
	{"PrepareStmt", "PREPARE"},
	{"ExecuteStmt", "EXECUTE"},
	{"DeallocateStmt", "DEALLOCATE"},
	{"ListenStmt", "LISTEN"},
	{"UnlistenStmt", "UNLISTEN"},
	{"NotifyStmt", "NOTIFY"},
	{"DeclareCursorStmt", "DECLARE"},
	{"FetchStmt", "FETCH"},
	{"ClosePortalStmt", "CLOSE"},
	{"VacuumStmt", "VACUUM"},
	{"TruncateStmt", "TRUNCATE"},
	{"CreateTableAsStmt", "CREATE TABLE AS"},
	{"CheckPointStmt", "CHECKPOINT"},
};

/* TransactionStmt.kind, as the client wrote it (END is COMMIT, ABORT is
 * ROLLBACK to the parser). */
static const struct {
	const char *kind, *name;
} s_tx_kinds[] = {
	{"TRANS_STMT_BEGIN", "BEGIN"},
	{"TRANS_STMT_START", "START TRANSACTION"},
	{"TRANS_STMT_COMMIT", "COMMIT"},
	{"TRANS_STMT_ROLLBACK", "ROLLBACK"},
	{"TRANS_STMT_SAVEPOINT", "SAVEPOINT"},
	{"TRANS_STMT_RELEASE", "RELEASE SAVEPOINT"},
	{"TRANS_STMT_ROLLBACK_TO", "ROLLBACK TO SAVEPOINT"},
	{"TRANS_STMT_PREPARE", "PREPARE TRANSACTION"},
	{"TRANS_STMT_COMMIT_PREPARED", "COMMIT PREPARED"},
	{"TRANS_STMT_ROLLBACK_PREPARED", "ROLLBACK PREPARED"},
};

/* The one node of {"NodeType": {...}}: its type, and its body in *body. */
static const char *s_node(json_object *wrapper, json_object **body)
{
	if (!json_object_is_type(wrapper, json_type_object) ||
	    json_object_object_length(wrapper) != 1)
		return NULL;
	json_object_object_foreach(wrapper, key, val)
	{
		*body = val;
		return key;
	}
	return NULL;
}

/* Whether the tree o holds an "intoClause" anywhere: SELECT ... INTO, at
 * the top or on a leaf of a UNION / INTERSECT / EXCEPT (PostgreSQL puts it
 * on the leftmost one). */
static bool s_has_into(json_object *o, int depth)
{
	if (depth > S_MAX_DEPTH)
		return true; /* cannot tell: refuse */
	if (json_object_is_type(o, json_type_array)) {
		size_t n = json_object_array_length(o);
		for (size_t i = 0; i < n; i++)
			if (s_has_into(json_object_array_get_idx(o, i), depth + 1))
				return true;
	} else if (json_object_is_type(o, json_type_object)) {
		json_object_object_foreach(o, key, val)
		{
			if (strcmp(key, "intoClause") == 0 || s_has_into(val, depth + 1))
				return true;
		}
	}
	return false;
}

/* Whether the tree o names schema dtx anywhere ("schemaname": "dtx" on a
 * table or a function): the agent's own rows (markers, barrier rows) are
 * no branch's or step's business, and writing them would fake outcomes. */
static bool s_names_dtx(json_object *o, int depth)
{
	if (depth > S_MAX_DEPTH)
		return true; /* cannot tell: refuse */
	if (json_object_is_type(o, json_type_array)) {
		size_t n = json_object_array_length(o);
		for (size_t i = 0; i < n; i++)
			if (s_names_dtx(json_object_array_get_idx(o, i), depth + 1))
				return true;
	} else if (json_object_is_type(o, json_type_object)) {
		json_object_object_foreach(o, key, val)
		{
			if (strcmp(key, "schemaname") == 0 &&
			    json_object_is_type(val, json_type_string) &&
			    strcmp(json_object_get_string(val), "dtx") == 0)
				return true;
			if (s_names_dtx(val, depth + 1))
				return true;
		}
	}
	return false;
}

/* Whether a relation's or schema's name (a JSON string) is the system's:
 * pg_*, information_schema. PostgreSQL's own views may change the session
 * (an UPDATE of pg_settings is set_config(name, setting, false), by a
 * rule), and the name a view is known by says nothing of that. */
static bool s_system_name(json_object *name)
{
	const char *n = json_object_is_type(name, json_type_string) ? json_object_get_string(name)
								    : "";
	return strncmp(n, "pg_", 3) == 0 || strcmp(n, "information_schema") == 0;
}

/* Whether an indirection list selects a field ({"String": ...}): what a
 * function in attribute notation looks like before the parse analysis. */
static bool s_selects_field(json_object *list)
{
	if (!json_object_is_type(list, json_type_array))
		return true;
	size_t n = json_object_array_length(list);
	for (size_t i = 0; i < n; i++) {
		json_object *el = json_object_array_get_idx(list, i), *body;
		if (!json_object_is_type(el, json_type_object) ||
		    json_object_object_get_ex(el, "String", &body))
			return true;
	}
	return false;
}

/*
 * Whether the tree o may call a function its text chooses: by name
 * (FuncCall: f(...), aggregates, table functions, EXTRACT and the like), in
 * attribute notation ((expr).f is f(expr): an A_Indirection selecting a
 * field; t.f may be f(t): a ColumnRef of more than one field), through a
 * qualified operator (OPERATOR(s.op), also before ANY (SELECT ...), ORDER
 * BY ... USING), a TABLESAMPLE method, or a relation of the system's (the
 * rule on pg_settings calls set_config()). A statement without any of
 * these is quiet: it calls only what the database's owner put behind its
 * tables, types and operators (triggers, defaults, rules, casts), and so
 * does not change its session; pga_db.c then ends the branch with DISCARD
 * SEQUENCES instead of the whole session reset. Too deep to read: not
 * quiet.
 */
static bool s_calls(json_object *o, int depth)
{
	if (depth > S_MAX_DEPTH)
		return true;
	if (json_object_is_type(o, json_type_array)) {
		size_t n = json_object_array_length(o);
		for (size_t i = 0; i < n; i++)
			if (s_calls(json_object_array_get_idx(o, i), depth + 1))
				return true;
	} else if (json_object_is_type(o, json_type_object)) {
		/* a relation (a RangeVar's body: UPDATE's target is one
		 * unwrapped) of the system's */
		json_object *rel, *sch;
		if ((json_object_object_get_ex(o, "relname", &rel) && s_system_name(rel)) ||
		    (json_object_object_get_ex(o, "schemaname", &sch) && s_system_name(sch)))
			return true;
		json_object_object_foreach(o, key, val)
		{
			json_object *list;
			if (strcmp(key, "FuncCall") == 0 || strcmp(key, "RangeTableSample") == 0 ||
			    strcmp(key, "useOp") == 0)
				return true;
			/* x OPERATOR(s.op) ANY (SELECT ...) */
			if (strcmp(key, "operName") == 0 &&
			    (!json_object_is_type(val, json_type_array) ||
			     json_object_array_length(val) > 1))
				return true;
			/* (x).f, not x[i] */
			if (strcmp(key, "A_Indirection") == 0 &&
			    (!json_object_object_get_ex(val, "indirection", &list) ||
			     s_selects_field(list)))
				return true;
			if ((strcmp(key, "ColumnRef") == 0 &&
			     json_object_object_get_ex(val, "fields", &list)) ||
			    (strcmp(key, "A_Expr") == 0 &&
			     json_object_object_get_ex(val, "name", &list)))
				if (!json_object_is_type(list, json_type_array) ||
				    json_object_array_length(list) > 1)
					return true;
			if (s_calls(val, depth + 1))
				return true;
		}
	}
	return false;
}

/* What is wrong with the one statement tree root (the JSON of
 * pg_query_parse), into what; "" when it is accepted. */
static void s_judge(json_object *root, char *what, size_t len)
{
	json_object *stmts, *stmt, *body = NULL;
	what[0] = '\0';
	if (!json_object_object_get_ex(root, "stmts", &stmts) ||
	    !json_object_is_type(stmts, json_type_array)) {
		snprintf(what, len, "the parser's answer cannot be read");
		return;
	}
	size_t n = json_object_array_length(stmts);
	if (n == 0) {
		snprintf(what, len, "it is empty");
		return;
	}
	if (n > 1) {
		snprintf(what, len, "it holds %zu statements", n);
		return;
	}
	const char *node = json_object_object_get_ex(json_object_array_get_idx(stmts, 0), "stmt",
						     &stmt)
				   ? s_node(stmt, &body)
				   : NULL;
	if (!node) {
		snprintf(what, len, "the parser's answer cannot be read");
		return;
	}
	for (size_t i = 0; i < sizeof(s_accepted) / sizeof(s_accepted[0]); i++) {
		if (strcmp(node, s_accepted[i]) != 0)
			continue;
		/* SELECT ... INTO t is CREATE TABLE t AS SELECT ... */
		if (s_has_into(body, 0))
			snprintf(what, len, "SELECT INTO creates a table");
		else if (s_names_dtx(body, 0))
			snprintf(what, len, "it names schema dtx, the agent's own");
		return;
	}
	if (strcmp(node, "TransactionStmt") == 0) {
		json_object *kind;
		const char *k = json_object_object_get_ex(body, "kind", &kind)
					? json_object_get_string(kind)
					: "";
		const char *name = "a transaction statement";
		for (size_t i = 0; i < sizeof(s_tx_kinds) / sizeof(s_tx_kinds[0]); i++)
			if (strcmp(k, s_tx_kinds[i].kind) == 0)
				name = s_tx_kinds[i].name;
		snprintf(what, len, "%s is transaction control", name);
		return;
	}
	const char *name = node;
	for (size_t i = 0; i < sizeof(s_names) / sizeof(s_names[0]); i++)
		if (strcmp(node, s_names[i].node) == 0)
			name = s_names[i].name;
	if (strcmp(node, "VariableSetStmt") == 0) {
		json_object *kind;
		const char *k = json_object_object_get_ex(body, "kind", &kind)
					? json_object_get_string(kind)
					: "";
		if (strncmp(k, "VAR_RESET", 9) == 0)
			name = "RESET";
	}
	snprintf(what, len, "%s is a utility statement", name);
}

/* The parameters the tree o refers to ({"ParamRef": {"number": N}}):
 * used[N] set for each N in 1..n; *bad the first N outside that range
 * (or -1 when the tree is too deep to read), else left alone. */
static void s_params(json_object *o, int depth, bool *used, uint32_t n, long *bad)
{
	if (depth > S_MAX_DEPTH) {
		*bad = -1;
		return;
	}
	if (json_object_is_type(o, json_type_array)) {
		size_t k = json_object_array_length(o);
		for (size_t i = 0; i < k; i++)
			s_params(json_object_array_get_idx(o, i), depth + 1, used, n, bad);
	} else if (json_object_is_type(o, json_type_object)) {
		json_object_object_foreach(o, key, val)
		{
			json_object *num;
			if (strcmp(key, "ParamRef") == 0 &&
			    json_object_object_get_ex(val, "number", &num)) {
				int64_t v = json_object_get_int64(num);
				if (v >= 1 && (uint64_t)v <= n)
					used[v] = true;
				else if (!*bad)
					*bad = (long)(v > 0 && v < 1000000 ? v : 1000000);
			}
			s_params(val, depth + 1, used, n, bad);
		}
	}
}

/* Whether the statement tree root uses exactly $1..$n; "" in what if so. */
static void s_judge_params(json_object *root, uint32_t n, char *what, size_t len)
{
	bool used[PGA_STMT_MAX_PARAMS + 1] = {0};
	long bad = 0;
	s_params(root, 0, used, n, &bad);
	if (bad < 0) {
		snprintf(what, len, "its parse tree is too deep to check");
		return;
	}
	if (bad) {
		snprintf(what, len, "it uses $%ld but declares %u parameters", bad, (unsigned)n);
		return;
	}
	for (uint32_t i = 1; i <= n; i++)
		if (!used[i]) {
			/* PostgreSQL could not tell the type of an unused one */
			snprintf(what, len, "it declares %u parameters but does not use $%u",
				 (unsigned)n, (unsigned)i);
			return;
		}
	what[0] = '\0';
}

/* One statement, through the parser: 0, or DTX_EINVAL / DTX_ENOMEM with
 * what and sqlstate. nparams >= 0: it must use exactly $1..$nparams,
 * too. */
static int s_parse_check(const char *sql, long nparams, char *sqlstate, char *what, size_t len,
			 bool *quiet)
{
	*quiet = false;
	/* The parser reads string literals with standard_conforming_strings
	 * on; the server reads them with the session's setting, which an
	 * earlier statement of the branch can turn off (set_config): a
	 * backslash could then hide text from this check. Data belongs in
	 * parameters. */
	if (strchr(sql, '\\')) {
		snprintf(sqlstate, 6, "0A000");
		snprintf(what, len,
			 "it holds a backslash, which PostgreSQL may read otherwise than "
			 "this check does (standard_conforming_strings); pass such text as a "
			 "parameter");
		return DTX_EINVAL;
	}
	PgQueryParseResult r = pg_query_parse(sql);
	int rc = 0;
	if (r.error) {
		snprintf(sqlstate, 6, "42601");
		snprintf(what, len, "%s (at character %d)",
			 r.error->message ? r.error->message : "", r.error->cursorpos);
		rc = DTX_EINVAL;
		goto out;
	}
	struct json_tokener *tok = json_tokener_new_ex(S_MAX_DEPTH);
	if (!tok) {
		snprintf(what, len, "out of memory");
		rc = DTX_ENOMEM;
		goto out;
	}
	json_object *root = json_tokener_parse_ex(tok, r.parse_tree, (int)strlen(r.parse_tree));
	if (!root) {
		snprintf(sqlstate, 6, "54001");
		snprintf(what, len, "its parse tree is too deep to check (%s)",
			 json_tokener_error_desc(json_tokener_get_error(tok)));
		rc = DTX_EINVAL;
	} else {
		s_judge(root, what, len);
		if (!what[0] && nparams >= 0)
			s_judge_params(root, (uint32_t)nparams, what, len);
		if (what[0]) {
			snprintf(sqlstate, 6, "0A000");
			rc = DTX_EINVAL;
		} else {
			*quiet = !s_calls(root, 0);
		}
		json_object_put(root);
	}
	json_tokener_free(tok);
out:
	pg_query_free_parse_result(r);
	return rc;
}

/*
 * Accepted verdicts. The parse above (libpg_query to JSON, then json-c)
 * costs more than anything else the agent does for a statement, and
 * clients send the same few texts over and over. So what s_parse_check()
 * accepted is remembered, keyed by all its verdict depends on: the text,
 * compared in full (the hash only finds the set), and the nparams it
 * judged (-1 for a branch's SQL, whose placeholders it does not check; N
 * for a named statement's). Nothing else enters the verdict: the parser,
 * the depth bound and the lists above are fixed when the agent is built.
 * A refusal is not remembered (the text is checked again, so its message
 * stays exact), nor a text longer than S_CACHE_MAX_TEXT. Bounded: S_CACHE_SETS
 * sets of S_CACHE_WAYS entries, the one used longest ago replaced, so at
 * most S_CACHE_SETS * S_CACHE_WAYS * (S_CACHE_MAX_TEXT + 1) bytes of text.
 * The agent is one thread (pga.c): no lock.
 */
#define S_CACHE_SETS 256 /* a power of two */
#define S_CACHE_WAYS 2
#define S_CACHE_MAX_TEXT 1024

typedef struct {
	char *sql; /* malloc'ed, NUL-terminated; NULL: unused */
	size_t len;
	long nparams;
	bool quiet; /* s_calls() found nothing */
	uint64_t hash;
	uint64_t used; /* s_cache_clock when last stored or found */
} s_cache_entry_t;

static s_cache_entry_t s_cache[S_CACHE_SETS][S_CACHE_WAYS];
static uint64_t s_cache_clock;

/* FNV-1a over the text, then nparams. */
static uint64_t s_cache_hash(const char *sql, size_t len, long nparams)
{
	uint64_t h = 14695981039346656037u;
	for (size_t i = 0; i < len; i++)
		h = (h ^ (uint8_t)sql[i]) * 1099511628211u;
	h = (h ^ (uint64_t)nparams) * 1099511628211u;
	return h ^ (h >> 32);
}

/* A unit test may put every text in one set. */
#ifndef S_CACHE_HASH
#define S_CACHE_HASH s_cache_hash
#endif

/* One statement: 0 and *quiet, or DTX_EINVAL / DTX_ENOMEM with what and
 * sqlstate, as s_parse_check() says; an accepted text seen before is not
 * parsed again. */
static int s_check_one(const char *sql, long nparams, char *sqlstate, char *what, size_t len,
		       bool *quiet)
{
	size_t n = strlen(sql);
	if (n > S_CACHE_MAX_TEXT)
		return s_parse_check(sql, nparams, sqlstate, what, len, quiet);
	uint64_t h = S_CACHE_HASH(sql, n, nparams);
	s_cache_entry_t *set = s_cache[h & (S_CACHE_SETS - 1)], *victim = &set[0];
	for (unsigned w = 0; w < S_CACHE_WAYS; w++) {
		s_cache_entry_t *e = &set[w];
		if (e->sql && e->hash == h && e->nparams == nparams && e->len == n &&
		    memcmp(e->sql, sql, n) == 0) {
			e->used = ++s_cache_clock;
			*quiet = e->quiet;
			return 0;
		}
		if (e->used < victim->used)
			victim = e;
	}
	int rc = s_parse_check(sql, nparams, sqlstate, what, len, quiet);
	if (rc)
		return rc;
	/* Not remembered when out of memory: the verdict stands all the same. */
	char *copy = malloc(n + 1);
	if (copy) {
		memcpy(copy, sql, n + 1);
		free(victim->sql);
		*victim = (s_cache_entry_t){.sql = copy,
					    .len = n,
					    .nparams = nparams,
					    .quiet = *quiet,
					    .hash = h,
					    .used = ++s_cache_clock};
	}
	return 0;
}

int pga_stmt_check(uint32_t n, const dtx_stmt_t *stmts, char *sqlstate, char *why, size_t why_len,
		   bool *quiet)
{
	char what[400];
	bool q = true;
	if (quiet)
		*quiet = false;
	for (uint32_t i = 0; i < n; i++) {
		/* A named statement was checked when the agent read it
		 * (pga_stmt_check_named); pga_named_check() finds it. */
		if (stmts[i].statement)
			continue;
		bool one;
		int rc = s_check_one(stmts[i].sql, -1, sqlstate, what, sizeof(what), &one);
		if (rc == DTX_ENOMEM) {
			snprintf(why, why_len, "statement %u cannot be checked: %s",
				 (unsigned)(i + 1), what);
			return rc;
		}
		if (rc) {
			snprintf(why, why_len, "statement %u refused: %s; %s", (unsigned)(i + 1),
				 what, S_TAKES);
			return rc;
		}
		q = q && one;
	}
	if (quiet)
		*quiet = q;
	return 0;
}

int pga_stmt_check_named(const char *sql, uint32_t nparams, char *why, size_t why_len, bool *quiet)
{
	char what[400], sqlstate[8];
	bool q = false;
	if (quiet)
		*quiet = false;
	if (nparams > PGA_STMT_MAX_PARAMS) {
		snprintf(why, why_len, "more than %d parameters", PGA_STMT_MAX_PARAMS);
		return DTX_EINVAL;
	}
	int rc = s_check_one(sql, nparams, sqlstate, what, sizeof(what), &q);
	if (!rc && quiet)
		*quiet = q;
	if (rc == DTX_ENOMEM)
		snprintf(why, why_len, "cannot be checked: %s", what);
	else if (rc)
		snprintf(why, why_len,
			 "refused: %s; a named statement is one SELECT, INSERT, "
			 "UPDATE, DELETE or MERGE",
			 what);
	return rc;
}
