/*
 * test_stmt.c — the agent's statement check (participants/pga_stmt.c)
 * and its cache of accepted verdicts: what is accepted and refused, with
 * what message, and that the cache changes none of it. pga_stmt.c is
 * compiled into this test, so that the test can look into the cache and
 * put every text in one set (t_collide: every text has the same hash),
 * where only the full comparison of texts and of nparams tells entries
 * apart.
 */
#include "config.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../tap.h"

static bool t_collide;
static uint64_t t_hash(const char *sql, size_t len, long nparams);
#define S_CACHE_HASH t_hash
#include "../../participants/pga_stmt.c"

static uint64_t t_hash(const char *sql, size_t len, long nparams)
{
	return t_collide ? 5 : s_cache_hash(sql, len, nparams);
}

/* The cache emptied. */
static void t_flush(void)
{
	for (unsigned s = 0; s < S_CACHE_SETS; s++)
		for (unsigned w = 0; w < S_CACHE_WAYS; w++) {
			free(s_cache[s][w].sql);
			s_cache[s][w] = (s_cache_entry_t){0};
		}
}

/* How many entries the cache holds; how many hold sql with nparams. */
static unsigned t_entries(const char *sql, long nparams, unsigned *found)
{
	unsigned n = 0;
	*found = 0;
	for (unsigned s = 0; s < S_CACHE_SETS; s++)
		for (unsigned w = 0; w < S_CACHE_WAYS; w++) {
			const s_cache_entry_t *e = &s_cache[s][w];
			if (!e->sql)
				continue;
			n++;
			if (sql && e->nparams == nparams && strcmp(e->sql, sql) == 0)
				(*found)++;
		}
	return n;
}

static bool t_cached(const char *sql, long nparams)
{
	unsigned found;
	t_entries(sql, nparams, &found);
	return found == 1;
}

/* pga_stmt_check() of one SQL statement: its return, why in why. */
static int t_check(const char *sql, char *why, size_t len)
{
	dtx_stmt_t st = {.sql = sql, .expect = -1};
	char sqlstate[8] = "";
	why[0] = '\0';
	return pga_stmt_check(1, &st, sqlstate, why, len, NULL);
}

/* sql is refused, twice, with the same message holding want. */
static void t_refused(const char *sql, const char *want, const char *name)
{
	char why1[600], why2[600];
	int rc1 = t_check(sql, why1, sizeof(why1)), rc2 = t_check(sql, why2, sizeof(why2));
	if (!ok(rc1 == DTX_EINVAL && rc2 == DTX_EINVAL && strcmp(why1, why2) == 0 &&
			strstr(why1, want),
		"%s: refused", name))
		printf("#   %d '%s', %d '%s'; want '%s'\n", rc1, why1, rc2, why2, want);
	ok(!t_cached(sql, -1), "%s: not cached", name);
}

static void t_accepted(const char *sql, const char *name)
{
	char why[600];
	int rc = t_check(sql, why, sizeof(why));
	if (!ok(rc == 0, "%s: accepted", name))
		printf("#   %d '%s'\n", rc, why);
}

/* The check itself, the cache as the agent uses it. */
static void t_verdicts(void)
{
	char why[600];
	t_flush();
	t_accepted("UPDATE acc SET balance = balance - $1 WHERE id = $2", "UPDATE");
	ok(t_cached("UPDATE acc SET balance = balance - $1 WHERE id = $2", -1),
	   "an accepted text is cached, as a branch's (nparams -1)");
	t_accepted("UPDATE acc SET balance = balance - $1 WHERE id = $2", "UPDATE again (cached)");
	t_refused("COMMIT", "statement 1 refused: COMMIT is transaction control", "COMMIT");
	t_refused("SET search_path = x", "SET is a utility statement", "SET");
	t_refused("SELECT 1; SELECT 2", "it holds 2 statements", "two statements");
	t_refused("SELECT * INTO t FROM acc", "SELECT INTO creates a table", "SELECT INTO");
	t_refused("SELECT * FROM dtx.barrier", "names schema dtx", "schema dtx");
	t_refused("SELECT 'a\\b'", "backslash", "a backslash");
	t_refused("SELEC 1", "syntax error", "a syntax error");
	t_refused("", "it is empty", "empty");

	/* a refused one after an accepted one, in one branch: counted as
	 * the client counts */
	dtx_stmt_t two[] = {{.sql = "SELECT 1", .expect = -1}, {.sql = "BEGIN", .expect = -1}};
	char sqlstate[8] = "";
	is_int(pga_stmt_check(2, two, sqlstate, why, sizeof(why), NULL), DTX_EINVAL,
	       "a branch with a refused second statement");
	ok(strstr(why, "statement 2 refused: BEGIN is transaction control") &&
		   strcmp(sqlstate, "0A000") == 0,
	   "... names statement 2, 0A000 (%s, %s)", why, sqlstate);
	is_int(pga_stmt_check(2, two, sqlstate, why, sizeof(why), NULL), DTX_EINVAL,
	       "... and again, the first one cached");
}

/* Every text in one set: a refused text stays refused whatever accepted
 * text of the same hash is cached, and a named statement's nparams is
 * part of the key. */
static void t_collisions(void)
{
	char why[600];
	t_flush();
	t_collide = true;
	t_accepted("SELECT * FROM tt", "same hash: SELECT * FROM tt");
	ok(t_cached("SELECT * FROM tt", -1), "... cached");
	/* the same length, the same hash */
	t_refused("SELECT * INTO tt", "SELECT INTO creates a table", "same hash and length");
	t_accepted("SELECT 1", "same hash: SELECT 1");
	t_refused("SELECT 1; COMMIT", "it holds 2 statements",
		  "same hash, a cached text as prefix");
	t_refused("SELECT 1)", "syntax error", "same hash, one character more");
	t_refused("SELECT * FROM", "syntax error", "same hash, a prefix of a cached text");

	/* nparams: the named statements' check judges the placeholders */
	t_flush();
	is_int(pga_stmt_check_named("SELECT $1", 1, why, sizeof(why), NULL), 0,
	       "named SELECT $1, 1");
	ok(t_cached("SELECT $1", 1), "... cached with nparams 1");
	is_int(pga_stmt_check_named("SELECT $1", 2, why, sizeof(why), NULL), DTX_EINVAL,
	       "named SELECT $1, 2 parameters: still refused");
	ok(strstr(why, "declares 2 parameters but does not use $2") != NULL, "... %s", why);
	is_int(pga_stmt_check_named("SELECT $1", 0, why, sizeof(why), NULL), DTX_EINVAL,
	       "named SELECT $1, 0 parameters: still refused");
	ok(strstr(why, "uses $1 but declares 0 parameters") != NULL, "... %s", why);
	ok(!t_cached("SELECT $1", 2) && !t_cached("SELECT $1", 0), "... neither cached");
	t_accepted("SELECT $1", "SELECT $1 as a branch's SQL (nparams -1)");
	ok(t_cached("SELECT $1", -1) && t_cached("SELECT $1", 1),
	   "... cached beside the named one");
	is_int(pga_stmt_check_named("SELECT $1", 2, why, sizeof(why), NULL), DTX_EINVAL,
	       "named SELECT $1, 2 parameters, both cached: still refused");

	/* two ways: the one used longest ago goes */
	t_flush();
	t_accepted("SELECT 1", "A");
	t_accepted("SELECT 2", "B");
	t_accepted("SELECT 1", "A again");
	t_accepted("SELECT 3", "C");
	ok(t_cached("SELECT 1", -1) && t_cached("SELECT 3", -1) && !t_cached("SELECT 2", -1),
	   "C replaced B, the one used longest ago");
	t_collide = false;
}

/* The bounds: a long text is not cached; many texts fill the cache no
 * further than its entries, and every verdict stays. */
static void t_bounds(void)
{
	unsigned found, n;
	size_t len = S_CACHE_MAX_TEXT + 1;
	char *big = malloc(len + 1), sql[64];
	t_flush();
	/* "SELECT          ...1": one statement of len bytes, then of len - 1 */
	memset(big, ' ', len);
	memcpy(big, "SELECT", 6);
	big[len - 1] = '1';
	big[len] = '\0';
	t_accepted(big, "a text one byte over the bound");
	is_int(t_entries(NULL, 0, &found), 0, "... not cached");
	big[len - 2] = '1';
	big[len - 1] = '\0';
	t_accepted(big, "a text at the bound");
	ok(t_cached(big, -1), "... cached");
	free(big);

	bool right = true;
	for (unsigned i = 0; i < 4 * S_CACHE_SETS * S_CACHE_WAYS; i++) {
		char why[600];
		snprintf(sql, sizeof(sql), "SELECT %u", i);
		right = right && t_check(sql, why, sizeof(why)) == 0;
		snprintf(sql, sizeof(sql), "SELECT %u; COMMIT", i);
		right = right && t_check(sql, why, sizeof(why)) == DTX_EINVAL;
	}
	ok(right, "%u texts accepted and as many refused, each as it should be",
	   4 * S_CACHE_SETS * S_CACHE_WAYS);
	n = t_entries(NULL, 0, &found);
	ok(n <= S_CACHE_SETS * S_CACHE_WAYS && n > S_CACHE_SETS,
	   "the cache holds %u entries, at most %u", n, S_CACHE_SETS * S_CACHE_WAYS);
	t_flush();
}

/* Whether sql is accepted as quiet, asked twice (the second answer comes
 * from the cache). */
static void t_quiet(const char *sql, bool want, const char *name)
{
	dtx_stmt_t st = {.sql = sql, .expect = -1};
	char sqlstate[8], why[600];
	bool q1 = !want, q2 = !want;
	int rc1 = pga_stmt_check(1, &st, sqlstate, why, sizeof(why), &q1);
	int rc2 = pga_stmt_check(1, &st, sqlstate, why, sizeof(why), &q2);
	ok(rc1 == 0 && rc2 == 0 && q1 == want && q2 == want, "%s: %s (%d %d)", name,
	   want ? "quiet" : "may call a function", q1, q2);
}

/* Quiet statements call no function their text chooses: the agent skips
 * the session reset after them. Every way of naming a function is not
 * quiet, and so is a branch with one such statement among quiet ones. */
static void t_quiet_statements(void)
{
	t_flush();
	t_quiet("UPDATE accounts SET balance = balance - $1 WHERE id = $2", true, "plain UPDATE");
	t_quiet("INSERT INTO orders (ref, qty) VALUES ($1, $2)", true, "plain INSERT");
	t_quiet("SELECT qty FROM items WHERE item = $1 AND qty >= 2 ORDER BY qty", true,
		"plain SELECT");
	t_quiet("DELETE FROM orders WHERE ref = $1 RETURNING *", true, "DELETE RETURNING *");
	t_quiet("SELECT $1::int + 1, CASE WHEN $2 > 0 THEN 'a' END, COALESCE($3, 'x'), "
		"(ARRAY[1, 2])[1], current_user",
		true, "operators, casts, CASE, COALESCE, a subscript, current_user");
	t_quiet("SELECT set_config('role', 'x', false)", false, "a function by name");
	t_quiet("SELECT pg_catalog.pg_advisory_lock(1)", false, "a qualified function");
	t_quiet("SELECT count(*) FROM orders", false, "an aggregate");
	t_quiet("SELECT * FROM generate_series(1, 3)", false, "a table function");
	t_quiet("SELECT extract(year FROM now())", false, "EXTRACT");
	t_quiet("SELECT (1::bigint).pg_advisory_lock", false, "attribute notation on a value");
	t_quiet("SELECT o.f FROM orders o", false, "attribute notation on a row (t.f)");
	t_quiet("SELECT 1 OPERATOR(public.+) 2", false, "a qualified operator");
	t_quiet("SELECT ref FROM orders ORDER BY ref USING <", false, "ORDER BY USING");
	t_quiet("SELECT * FROM orders TABLESAMPLE system (10)", false, "TABLESAMPLE");
	t_quiet("INSERT INTO orders VALUES ((SELECT max(qty) FROM items))", false,
		"a function in a subquery");
	t_quiet("UPDATE pg_settings SET setting = 'on' WHERE name = "
		"'default_transaction_read_only'",
		false, "an UPDATE of pg_settings (its rule calls set_config)");
	t_quiet("SELECT setting FROM pg_catalog.pg_settings", false, "a system view");
	t_quiet("SELECT 1 FROM information_schema.tables", false, "information_schema");
	t_quiet("SELECT 1 WHERE 1 OPERATOR(myschema.===) ANY (SELECT 1)", false,
		"a qualified operator before ANY (SELECT ...)");
	t_quiet("SELECT 1 WHERE 1 = ANY (SELECT 1)", true, "= ANY (SELECT ...)");
	dtx_stmt_t two[2] = {{.sql = "UPDATE a SET b = 1", .expect = -1},
			     {.sql = "SELECT nextval('s')", .expect = -1}};
	char sqlstate[8], why[300];
	bool q = true;
	ok(pga_stmt_check(2, two, sqlstate, why, sizeof(why), &q) == 0 && !q,
	   "a branch is quiet only if every statement is");
	bool qn = false;
	ok(pga_stmt_check_named("UPDATE a SET b = $1", 1, why, sizeof(why), &qn) == 0 && qn,
	   "a named statement is judged the same: quiet");
	ok(pga_stmt_check_named("SELECT lastval() + $1", 1, why, sizeof(why), &qn) == 0 && !qn,
	   "... or not");
}

int main(void)
{
	t_verdicts();
	t_quiet_statements();
	t_collisions();
	t_bounds();
	return tap_done();
}
