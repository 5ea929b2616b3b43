/*
 * dtxctl — administer coordinatord and run transactions from the shell.
 */
#include "config.h"

#include <errno.h>
#include <json-c/json.h>
#include <pwd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "dtx.h"
#include "dtx_admin.h"
#include "dtx_curve.h"
#include "dtx_frame.h"
#include "dtx_util.h"
#include "dtx_wire.h"

/* Exit codes. */
enum {
	XC_OK = 0,
	XC_ABORTED = 1,
	XC_USAGE = 2,
	XC_ERROR = 3,
	XC_HEURISTIC = 4,
	XC_IN_DOUBT = 5,
	XC_ACTIVE = 6
};

typedef struct {
	const char *admin;
	const char *client;
	const char *server_key; /* the coordinator's public key file: CURVE */
	const char *key;        /* this client's secret key file */
	int wait_ms;
	bool json;             /* admin replies and events as JSON, one object a line */
} s_opts_t;

static const struct {
	const char *name, *usage, *help;
} s_cmds[] = {
	{"status", "status",
	 "uptime, transactions in flight by state, participants and their liveness"},
	{"stats", "stats",
	 "the numbers of the coordinator's /metrics endpoint, for a person: outcomes,\n"
	 "in flight and in doubt, decision latency, phase-two retries, group commits,\n"
	 "participants"},
	{"list", "list [--state STATE]",
	 "transactions in the log (first 1000), optionally only those in STATE:\n"
	 "  active, preparing, deciding, committing, committed, aborting, aborted, heuristic;\n"
	 "or what needs an operator: in-doubt (branches from an epoch the log never had,\n"
	 "or of a transaction retention removed from it),\n"
	 "stuck (decided longer than stuck_after_ms ago, not acknowledged by every branch)"},
	{"resolve", "resolve GTID --commit|--abort [--force]",
	 "decide GTID by hand: an undecided transaction, or a branch left in doubt;\n"
	 "logged as a heuristic decision with who and when. Contradicting a logged\n"
	 "decision needs --force (branches that applied it become heuristic)"},
	{"forget", "forget GTID",
	 "stop driving a decided transaction whose branches cannot be reached; logged\n"
	 "as a heuristic decision naming the branches left unacknowledged"},
	{"show", "show GTID", "every logged transition of GTID with its time, and its branches"},
	{"query", "query GTID",
	 "the outcome of GTID, a transaction's or a saga's, as a client sees it; exit 0\n"
	 "committed or completed, 1 aborted, unknown or compensated (with the failing\n"
	 "step), 4 heuristic (see dtxctl show), 5 in doubt, 6 not decided yet (ask again)"},
	{"exec", "exec [--timeout MS] [--wait MS] [--key KEY] (--file TX.json | BRANCH...)",
	 "run one global transaction; BRANCH is\n"
	 "  --on PARTICIPANT ((--sql SQL | --statement NAME) [--param VALUE | --null]...\n"
	 "  [--expect ROWS])...; --statement names one the agent defines (its statements\n"
	 "  file): the SQL stays there\n"
	 "TX.json: {\"timeout_ms\": 5000, \"branches\": [{\"participant\": \"shop\",\n"
	 "  \"stmts\": [{\"sql\": \"...\", \"params\": [\"a\", 1, null], \"expect\": 1}]}]}\n"
	 "--timeout: time the coordinator allows for the decision; --wait: how long to\n"
	 "wait for the answer; --key (or \"key\" in TX.json): the submission key, so that\n"
	 "running the same exec again never runs the transaction twice but answers with\n"
	 "it (random when not given). Prints the GTID and the outcome; exit 0 committed,\n"
	 "1 aborted, 3 refused, failed or no answer (the GTID printed if one was given)"},
	{"saga", "saga --file SAGA.json [--key KEY] [--timeout MS] [--wait MS]",
	 "run one saga: steps in order, each one local transaction on one participant\n"
	 "SAGA.json: {\"timeout_ms\": 10000, \"steps\": [{\"name\": \"reserve\",\n"
	 "  \"participant\": \"stock\", \"stmts\": [S...], \"compensate\": [S...]},\n"
	 "  {\"name\": \"pay\", \"participant\": \"bank\", \"pivot\": true, \"stmts\": [S...]},\n"
	 "  {\"name\": \"notify\", \"participant\": \"shop\", \"retry\": true, \"stmts\": "
	 "[S...]}]}\n"
	 "  S as in exec's TX.json; compensable steps (each with \"compensate\"), then\n"
	 "  at most one pivot, then retriable steps; \"group\": N runs consecutive steps\n"
	 "  of one kind together. A file that breaks this is refused before anything\n"
	 "  is sent (exit 2)\n"
	 "--timeout (or \"timeout_ms\"): time the coordinator allows the steps before the\n"
	 "pivot; --key (or \"key\"): the submission key, as for exec; --wait: how long\n"
	 "to wait for the answer. Prints the GTID and 'completed' (exit 0), or\n"
	 "'compensated' with the reason, the failing step and its participant (exit 1);\n"
	 "4 heuristic, 5 in doubt, 3 refused, failed or no answer (the GTID printed if\n"
	 "one was given)"},
	{"watch", "watch [--gtid GTID] [--participant NAME] [--count N]",
	 "a live stream of transaction and saga events, one line each: time, GTID,\n"
	 "event (begun, voted, decided, completed, heuristic; a saga's step sent, step\n"
	 "done, step failed, compensating, compensated, completed), the participant it\n"
	 "is about (or all of the transaction's), for a saga's step STEP@PARTICIPANT,\n"
	 "detail; only GTID's, or only transactions and sagas NAME takes part in;\n"
	 "stops after N events or at Ctrl-C"},
	{"keygen", "keygen NAME [--dir DIR]",
	 "make a CURVE key pair: DIR/NAME.key (the secret key, mode 0600) and\n"
	 "DIR/NAME.pub (the public key), DIR the current folder by default; prints\n"
	 "the public key. The coordinator's secret_key is one such NAME.key; an\n"
	 "agent's or client's public key goes into its [agent NAME] or [client NAME]\n"
	 "section, and the coordinator's public key to each of them"},
	{"help", "help [COMMAND]", "this text, or one command's"},
};

static void s_usage(FILE *f)
{
	fprintf(f, "usage: dtxctl [--admin ENDPOINT] [--client ENDPOINT] [--server-key FILE "
		   "--key FILE] [--wait MS] [--json] COMMAND ...\n"
		   "  --admin   coordinatord's admin endpoint (env DTX_ADMIN, default "
		   "ipc:///run/dtx/admin.sock)\n"
		   "  --client  coordinatord's client endpoint (env DTX_CLIENT, default "
		   "ipc:///run/dtx/client.sock)\n"
		   "  --server-key, --key  for a tcp:// client endpoint (CURVE): the file of\n"
		   "            the coordinator's public key and of this client's secret key\n"
		   "            (env DTX_SERVER_KEY, DTX_KEY; see dtxctl help keygen)\n"
		   "  --wait    how long to wait for an answer (default 30000 ms)\n"
		   "  --json    admin commands: the reply as one JSON object; watch: one\n"
		   "            JSON object a line, an event each\n"
		   "commands:\n");
	for (size_t i = 0; i < sizeof(s_cmds) / sizeof(s_cmds[0]); i++)
		fprintf(f, "  %-50s\n", s_cmds[i].usage);
}

static int s_help(int argc, char **argv)
{
	if (argc < 2) {
		s_usage(stdout);
		return XC_OK;
	}
	for (size_t i = 0; i < sizeof(s_cmds) / sizeof(s_cmds[0]); i++)
		if (strcmp(argv[1], s_cmds[i].name) == 0) {
			printf("usage: dtxctl %s\n%s\n", s_cmds[i].usage, s_cmds[i].help);
			return XC_OK;
		}
	fprintf(stderr, "dtxctl: no command '%s'\n", argv[1]);
	return XC_USAGE;
}

/* "uid 0 (root)": who an operator act is logged as. */
static void s_who(char *buf, size_t len)
{
	struct passwd *pw = getpwuid(getuid());
	snprintf(buf, len, "uid %u (%s)", (unsigned)getuid(), pw ? pw->pw_name : "?");
}

/*
 * One request on the admin endpoint, from dtxctl's words (args[0] the
 * command): the reply in *rep (caller clears it) and XC_OK, or an exit
 * code with a message printed. The words are checked against libdtx's
 * command table here, so that a wrong one is a usage error before
 * anything is sent.
 */
static int s_admin_ask(const s_opts_t *o, int n, char **args, dtx_msg_t *rep)
{
	void *ctx = NULL, *sock = NULL;
	dtx_request_t *rq = NULL;
	dtx_msg_t req = {0};
	char why[256], who[128], *buf = NULL;
	size_t len;
	int zero = 0, rc = XC_ERROR, drc;

	s_who(who, sizeof(who));
	if ((drc = dtx_request_argv(&rq, 1, n, args, who, why, sizeof(why)))) {
		const dtx_admin_cmd_t *cmd = dtx_admin_cmd_find(args[0]);
		fprintf(stderr, "dtxctl: %s\n", drc == DTX_EINVAL ? why : dtx_strerror(drc));
		if (drc != DTX_EINVAL)
			return XC_ERROR;
		if (cmd)
			fprintf(stderr, "usage: dtxctl %s\n", cmd->usage);
		return XC_USAGE;
	}
	/* The builder hands back bytes, dtx_send() takes a message: decoding
	 * our own bytes also proves they are what the coordinator will read. */
	if ((drc = dtx_request_encode(rq, &buf, &len)) ||
	    (drc = dtx_msg_decode(buf, len, &req, why, sizeof(why)))) {
		fprintf(stderr, "dtxctl: cannot build the request: %s\n", dtx_strerror(drc));
		goto out;
	}
	ctx = zmq_ctx_new();
	sock = zmq_socket(ctx, ZMQ_DEALER);
	zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof(zero));
	if (zmq_connect(sock, o->admin) != 0) {
		fprintf(stderr, "dtxctl: cannot connect to %s: %s\n", o->admin,
			zmq_strerror(errno));
		goto out;
	}
	if (dtx_send(sock, &req, 0))
		goto out;
	drc = dtx_recv_wait(sock, rep, o->wait_ms, why, sizeof(why));
	if (drc == DTX_ETIMEOUT || drc == DTX_EIO) {
		fprintf(stderr, "dtxctl: no answer from %s within %d ms\n", o->admin, o->wait_ms);
		goto out;
	}
	if (drc) {
		fprintf(stderr, "dtxctl: bad answer: %s\n", why);
		goto out;
	}
	if (rep->type != DTX_T_REPLY && rep->type != DTX_T_ERROR) {
		fprintf(stderr, "dtxctl: bad answer: %s\n", dtx_msg_type_str(rep->type));
		dtx_msg_clear(rep);
		goto out;
	}
	rc = XC_OK;
out:
	dtx_msg_clear(&req);
	free(buf);
	dtx_request_destroy(&rq);
	if (sock)
		zmq_close(sock);
	if (ctx)
		zmq_ctx_term(ctx);
	return rc;
}

/* An admin command: its reply printed, as prose or JSON. */
static int s_admin(const s_opts_t *o, int n, char **args)
{
	dtx_msg_t rep;
	int rc = s_admin_ask(o, n, args, &rep);

	if (rc != XC_OK)
		return rc;
	if (o->json)
		dtx_admin_print_json(stdout, &rep);
	else if (rep.type == DTX_T_REPLY)
		dtx_admin_print_text(stdout, args[0], &rep);
	else
		fprintf(stderr, "dtxctl: %s\n", rep.text);
	rc = rep.type == DTX_T_REPLY && rep.code == 0 ? XC_OK : XC_ERROR;
	dtx_msg_clear(&rep);
	return rc;
}

static volatile sig_atomic_t s_interrupted;
static void s_on_int(int sig)
{
	(void)sig;
	s_interrupted = 1;
}

/* dtxctl watch: the coordinator's event stream, one line per event. */
static int s_watch(const s_opts_t *o, int n, char **args)
{
	const char *gtid = NULL, *part = NULL;
	long long count = 0, v;
	char *endpoint = NULL, *ask[] = {"watch"}, why[256];
	void *ctx = NULL, *sock = NULL;
	dtx_msg_t rep;
	int rc;

	for (int i = 1; i < n; i++) {
		if (i + 1 < n && strcmp(args[i], "--gtid") == 0)
			gtid = args[++i];
		else if (i + 1 < n && strcmp(args[i], "--participant") == 0)
			part = args[++i];
		else if (i + 1 < n && strcmp(args[i], "--count") == 0 &&
			 dtx_parse_int(args[i + 1], 1, 1000000000, &v))
			count = v, i++;
		else {
			fprintf(stderr, "usage: dtxctl watch [--gtid GTID] [--participant NAME] "
					"[--count N]\n");
			return XC_USAGE;
		}
	}
	/* The filters stay here: the coordinator sends every event to all. */
	if ((rc = s_admin_ask(o, 1, ask, &rep)) != XC_OK)
		return rc;
	const dtx_kvs_t *row = rep.type == DTX_T_REPLY && rep.code == 0
				       ? dtx_reply_find(&rep, "endpoint")
				       : NULL;
	if (row && dtx_kvs_str(row, DTX_A_ENDPOINT))
		endpoint = strdup(dtx_kvs_str(row, DTX_A_ENDPOINT));
	if (!endpoint)
		fprintf(stderr, "dtxctl: no event stream: %s\n",
			rep.has & DTX_F_TEXT ? rep.text : "the reply names no endpoint");
	dtx_msg_clear(&rep);
	if (!endpoint)
		return XC_ERROR;
	ctx = zmq_ctx_new();
	sock = zmq_socket(ctx, ZMQ_SUB);
	int zero = 0;
	zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof(zero));
	/* Every event: a msgpack frame's first bytes are the same for all
	 * (dtx_wire.h), so the filters run after decoding. */
	zmq_setsockopt(sock, ZMQ_SUBSCRIBE, "", 0);
	if (zmq_connect(sock, endpoint) != 0) {
		fprintf(stderr, "dtxctl: cannot connect to %s: %s\n", endpoint,
			zmq_strerror(errno));
		rc = XC_ERROR;
		goto out;
	}
	struct sigaction sa = {.sa_handler = s_on_int};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	while (!s_interrupted) {
		dtx_msg_t ev;
		int drc = dtx_recv(sock, &ev, 0, why, sizeof(why));
		if (drc == DTX_EIO && errno == EINTR)
			continue;
		if (drc == DTX_EIO) {
			fprintf(stderr, "dtxctl: %s\n", zmq_strerror(errno));
			rc = XC_ERROR;
			break;
		}
		if (drc)
			continue; /* not a frame this dtxctl can read: skipped */
		bool want = ev.type == DTX_T_EVENT && (!gtid || strcmp(ev.gtid, gtid) == 0) &&
			    (!part || dtx_event_involves(&ev, part));
		if (want) {
			if (o->json)
				dtx_admin_print_json(stdout, &ev);
			else
				dtx_event_print_text(stdout, &ev);
			fflush(stdout);
		}
		dtx_msg_clear(&ev);
		if (want && count && --count == 0)
			break;
	}
out:
	free(endpoint);
	zmq_close(sock);
	zmq_ctx_term(ctx);
	return rc;
}

static void s_print_outcome(const dtx_outcome_t *out)
{
	printf("%s %s", out->gtid[0] ? out->gtid : "-", dtx_outcome_str(out->status));
	if (out->reason[0])
		printf(": %s", out->reason);
	if (out->step[0]) /* a saga's failing step */
		printf(" (step %s, participant %s%s%s)", out->step,
		       out->participant[0] ? out->participant : "-",
		       out->sqlstate[0] ? ", sqlstate " : "", out->sqlstate);
	else if (out->participant[0] || out->sqlstate[0])
		printf(" (participant %s%s%s)", out->participant[0] ? out->participant : "-",
		       out->sqlstate[0] ? ", sqlstate " : "", out->sqlstate);
	putchar('\n');
}

static int s_exit_for(const dtx_outcome_t *out)
{
	switch (out->status) {
	case DTX_OUTCOME_COMMITTED:
	case DTX_OUTCOME_COMPLETED: return XC_OK;
	case DTX_OUTCOME_HEURISTIC: return XC_HEURISTIC;
	case DTX_OUTCOME_IN_DOUBT: return XC_IN_DOUBT;
	case DTX_OUTCOME_ACTIVE: return XC_ACTIVE;
	default: return XC_ABORTED; /* aborted, unknown, compensated */
	}
}

/* Where statements parsed from JSON go: sql or statement (a named one),
 * the other NULL. 0 or a DTX_E... code. */
typedef int (*s_add_fn)(void *arg, const char *sql, const char *statement, int nparams,
			const char *const *params, int64_t expect);

/*
 * The statements of a JSON array, each {"sql": SQL | "statement": NAME,
 * "params": [...], "expect": ROWS}, handed to add(arg, ...); where names
 * them in messages ("branch 2", "step 'pay'"). 0 or XC_USAGE with a
 * message printed. Shared by exec's TX.json and saga's SAGA.json.
 */
static int s_stmts_from_json(const char *path, const char *where, json_object *stmts, s_add_fn add,
			     void *arg)
{
	if (!json_object_is_type(stmts, json_type_array) || !json_object_array_length(stmts)) {
		fprintf(stderr, "dtxctl: %s: %s: 'stmts' must be a non-empty array\n", path, where);
		return XC_USAGE;
	}
	for (size_t s = 0; s < json_object_array_length(stmts); s++) {
		json_object *st = json_object_array_get_idx(stmts, s), *sql, *named, *params, *ex;
		const char *pv[DTX_WIRE_MAX_ITEMS];
		int np = 0, rc;
		int64_t expect = -1;
		if (!json_object_is_type(st, json_type_object)) {
			fprintf(stderr, "dtxctl: %s: statement %zu of %s must be an object\n", path,
				s + 1, where);
			return XC_USAGE;
		}
		/* SQL text, or the name of a statement the agent defines */
		bool has_sql = json_object_object_get_ex(st, "sql", &sql);
		bool has_named = json_object_object_get_ex(st, "statement", &named);
		if (has_sql == has_named ||
		    !json_object_is_type(has_sql ? sql : named, json_type_string)) {
			fprintf(stderr,
				"dtxctl: %s: statement %zu of %s needs one of 'sql' and "
				"'statement', a string\n",
				path, s + 1, where);
			return XC_USAGE;
		}
		if (json_object_object_get_ex(st, "params", &params)) {
			if (!json_object_is_type(params, json_type_array) ||
			    json_object_array_length(params) > DTX_WIRE_MAX_ITEMS) {
				fprintf(stderr,
					"dtxctl: %s: statement %zu of %s: 'params' must be an "
					"array of at most %d values\n",
					path, s + 1, where, DTX_WIRE_MAX_ITEMS);
				return XC_USAGE;
			}
			np = (int)json_object_array_length(params);
			for (int i = 0; i < np; i++) {
				json_object *e = json_object_array_get_idx(params, (size_t)i);
				pv[i] = e ? json_object_get_string(e) : NULL; /* null: SQL NULL */
			}
		}
		if (json_object_object_get_ex(st, "expect", &ex)) {
			if (!json_object_is_type(ex, json_type_int) ||
			    (expect = json_object_get_int64(ex)) < 0) {
				fprintf(stderr,
					"dtxctl: %s: statement %zu of %s: 'expect' must be a row "
					"count\n",
					path, s + 1, where);
				return XC_USAGE;
			}
		}
		if ((rc = has_named
				  ? add(arg, NULL, json_object_get_string(named), np, pv, expect)
				  : add(arg, json_object_get_string(sql), NULL, np, pv, expect))) {
			fprintf(stderr, "dtxctl: %s: statement %zu of %s: %s\n", path, s + 1, where,
				rc == DTX_EINVAL ? "invalid (empty SQL, or a statement name "
						   "outside [A-Za-z0-9_-])"
						 : dtx_strerror(rc));
			return XC_USAGE;
		}
	}
	return 0;
}

/* exec: statements to one participant's branch */
typedef struct {
	dtx_tx_t *tx;
	const char *participant;
} s_branch_arg_t;

static int s_branch_add(void *arg, const char *sql, const char *statement, int nparams,
			const char *const *params, int64_t expect)
{
	s_branch_arg_t *b = arg;
	return statement
		       ? dtx_tx_add_named(b->tx, b->participant, statement, nparams, params, expect)
		       : dtx_tx_add(b->tx, b->participant, sql, nparams, params, expect);
}

/* A JSON file's root object, or NULL with a message printed. */
static json_object *s_json_file(const char *path)
{
	json_object *root = json_object_from_file(path);
	if (!root) {
		fprintf(stderr, "dtxctl: %s: %s\n", path, json_util_get_last_err());
		return NULL;
	}
	if (!json_object_is_type(root, json_type_object)) {
		fprintf(stderr, "dtxctl: %s: not a JSON object\n", path);
		json_object_put(root);
		return NULL;
	}
	return root;
}

/* "timeout_ms" of a JSON file: 0 and *ms (unchanged when absent), or
 * XC_USAGE with a message printed. */
static int s_json_timeout(const char *path, json_object *root, uint32_t *ms)
{
	json_object *v;
	if (!json_object_object_get_ex(root, "timeout_ms", &v))
		return 0;
	int64_t t = json_object_get_int64(v);
	if (!json_object_is_type(v, json_type_int) || t < 0 || t > UINT32_MAX) {
		fprintf(stderr, "dtxctl: %s: 'timeout_ms' must be milliseconds\n", path);
		return XC_USAGE;
	}
	*ms = (uint32_t)t;
	return 0;
}

/* "key" of a JSON file, or NULL when absent; *bad when it is not a key. */
static const char *s_json_key(const char *path, json_object *root, bool *bad)
{
	json_object *v;
	*bad = false;
	if (!json_object_object_get_ex(root, "key", &v))
		return NULL;
	if (json_object_is_type(v, json_type_string) && dtx_key_valid(json_object_get_string(v)))
		return json_object_get_string(v);
	fprintf(stderr, "dtxctl: %s: 'key' must be 1 to 64 characters of [A-Za-z0-9_.:-]\n", path);
	*bad = true;
	return NULL;
}

/* Build tx from a JSON file. 0 or an exit code with a message printed. */
static int s_tx_from_json(dtx_tx_t *tx, const char *path)
{
	json_object *root = s_json_file(path), *branches;
	const char *key;
	uint32_t timeout_ms = 0;
	bool bad;
	int rc = XC_USAGE;

	if (!root)
		return XC_USAGE;
	if (s_json_timeout(path, root, &timeout_ms))
		goto out;
	if (timeout_ms)
		dtx_tx_set_timeout(tx, timeout_ms);
	if ((key = s_json_key(path, root, &bad)))
		dtx_tx_set_key(tx, key);
	if (bad)
		goto out;
	if (!json_object_object_get_ex(root, "branches", &branches) ||
	    !json_object_is_type(branches, json_type_array)) {
		fprintf(stderr, "dtxctl: %s: 'branches' must be an array\n", path);
		goto out;
	}
	for (size_t b = 0; b < json_object_array_length(branches); b++) {
		json_object *br = json_object_array_get_idx(branches, b), *p, *stmts;
		char where[32];
		if (!json_object_object_get_ex(br, "participant", &p) ||
		    !json_object_is_type(p, json_type_string) ||
		    !json_object_object_get_ex(br, "stmts", &stmts)) {
			fprintf(stderr, "dtxctl: %s: branch %zu needs 'participant' and 'stmts'\n",
				path, b + 1);
			goto out;
		}
		if (!dtx_name_valid(json_object_get_string(p))) {
			fprintf(stderr,
				"dtxctl: %s: branch %zu: a participant is 1 to 63 characters of "
				"[A-Za-z0-9_-]\n",
				path, b + 1);
			goto out;
		}
		snprintf(where, sizeof(where), "branch %zu", b + 1);
		s_branch_arg_t arg = {.tx = tx, .participant = json_object_get_string(p)};
		if (s_stmts_from_json(path, where, stmts, s_branch_add, &arg))
			goto out;
	}
	rc = 0;
out:
	json_object_put(root);
	return rc;
}

/* saga: statements to the last step, or to its compensation */
static int s_step_add(void *arg, const char *sql, const char *statement, int nparams,
		      const char *const *params, int64_t expect)
{
	return statement ? dtx_saga_add_named(arg, statement, nparams, params, expect)
			 : dtx_saga_add(arg, sql, nparams, params, expect);
}

static int s_comp_add(void *arg, const char *sql, const char *statement, int nparams,
		      const char *const *params, int64_t expect)
{
	return statement ? dtx_saga_compensate_named(arg, statement, nparams, params, expect)
			 : dtx_saga_compensate(arg, sql, nparams, params, expect);
}

/* Whether each key of object o is one of names (NULL-terminated); if not,
 * a message naming it, in where. */
static bool s_json_keys(const char *path, const char *where, json_object *o,
			const char *const *names)
{
	json_object_object_foreach(o, k, v)
	{
		(void)v;
		size_t i = 0;
		while (names[i] && strcmp(names[i], k))
			i++;
		if (!names[i]) {
			fprintf(stderr, "dtxctl: %s: %s: unknown field '%s'\n", path, where, k);
			return false;
		}
	}
	return true;
}

/* A boolean field of step st, false when absent; -1 when not a boolean. */
static int s_json_flag(const char *path, const char *where, json_object *st, const char *name)
{
	json_object *v;
	if (!json_object_object_get_ex(st, name, &v))
		return 0;
	if (!json_object_is_type(v, json_type_boolean)) {
		fprintf(stderr, "dtxctl: %s: %s: '%s' must be true or false\n", path, where, name);
		return -1;
	}
	return json_object_get_boolean(v) ? 1 : 0;
}

/*
 * Build saga from a JSON file in DESIGN.md's shape: {"timeout_ms": MS,
 * "key": KEY, "steps": [{"name", "participant", "stmts", "compensate",
 * "pivot", "retry", "group"}, ...]}, the statements as exec's. Then the
 * saga's rules (dtx_saga_validate()). 0 or XC_USAGE with a message printed;
 * nothing is sent either way.
 */
static int s_saga_from_json(dtx_saga_t *saga, const char *path)
{
	static const char *const root_keys[] = {"timeout_ms", "key", "steps", NULL};
	static const char *const step_keys[] = {"name",  "participant", "stmts", "compensate",
						"pivot", "retry",       "group", NULL};
	json_object *root = s_json_file(path), *steps;
	const char *key;
	uint32_t timeout_ms = 0;
	char why[512];
	bool bad;
	int rc = XC_USAGE;

	if (!root)
		return XC_USAGE;
	if (!s_json_keys(path, "the saga", root, root_keys) ||
	    s_json_timeout(path, root, &timeout_ms))
		goto out;
	if (timeout_ms)
		dtx_saga_set_timeout(saga, timeout_ms);
	if ((key = s_json_key(path, root, &bad)))
		dtx_saga_set_key(saga, key);
	if (bad)
		goto out;
	if (!json_object_object_get_ex(root, "steps", &steps) ||
	    !json_object_is_type(steps, json_type_array) || !json_object_array_length(steps)) {
		fprintf(stderr, "dtxctl: %s: 'steps' must be a non-empty array\n", path);
		goto out;
	}
	if (json_object_array_length(steps) > DTX_SAGA_MAX_STEPS) {
		fprintf(stderr, "dtxctl: %s: a saga has at most %d steps\n", path,
			DTX_SAGA_MAX_STEPS);
		goto out;
	}
	for (size_t i = 0; i < json_object_array_length(steps); i++) {
		json_object *st = json_object_array_get_idx(steps, i), *name, *part, *stmts, *comp,
			    *group;
		char where[96];
		snprintf(where, sizeof(where), "step %zu", i + 1);
		if (!json_object_is_type(st, json_type_object)) {
			fprintf(stderr, "dtxctl: %s: %s must be an object\n", path, where);
			goto out;
		}
		if (!s_json_keys(path, where, st, step_keys))
			goto out;
		if (!json_object_object_get_ex(st, "name", &name) ||
		    !json_object_is_type(name, json_type_string) ||
		    !dtx_name_valid(json_object_get_string(name)) ||
		    !json_object_object_get_ex(st, "participant", &part) ||
		    !json_object_is_type(part, json_type_string) ||
		    !dtx_name_valid(json_object_get_string(part))) {
			fprintf(stderr,
				"dtxctl: %s: %s needs a 'name' and a 'participant', each 1 to "
				"63 characters of [A-Za-z0-9_-]\n",
				path, where);
			goto out;
		}
		snprintf(where, sizeof(where), "step '%s'", json_object_get_string(name));
		int pivot = s_json_flag(path, where, st, "pivot");
		int retry = s_json_flag(path, where, st, "retry");
		if (pivot < 0 || retry < 0)
			goto out;
		if (pivot && retry) {
			fprintf(stderr, "dtxctl: %s: %s is both the pivot and retriable\n", path,
				where);
			goto out;
		}
		if (dtx_saga_step(saga, json_object_get_string(name), json_object_get_string(part),
				  pivot   ? DTX_SAGA_PIVOT
				  : retry ? DTX_SAGA_RETRIABLE
					  : DTX_SAGA_COMPENSABLE)) {
			fprintf(stderr, "dtxctl: %s: %s: out of memory\n", path, where);
			goto out;
		}
		if (json_object_object_get_ex(st, "group", &group)) {
			int64_t g = json_object_get_int64(group);
			if (!json_object_is_type(group, json_type_int) || g < 1 || g > UINT32_MAX) {
				fprintf(stderr, "dtxctl: %s: %s: 'group' must be a number from 1\n",
					path, where);
				goto out;
			}
			dtx_saga_set_group(saga, (uint32_t)g);
		}
		if (!json_object_object_get_ex(st, "stmts", &stmts)) {
			fprintf(stderr, "dtxctl: %s: %s has no 'stmts'\n", path, where);
			goto out;
		}
		if (s_stmts_from_json(path, where, stmts, s_step_add, saga))
			goto out;
		if (json_object_object_get_ex(st, "compensate", &comp)) {
			char cwhere[128];
			snprintf(cwhere, sizeof(cwhere), "the compensation of %s", where);
			if (s_stmts_from_json(path, cwhere, comp, s_comp_add, saga))
				goto out;
		}
	}
	if (dtx_saga_validate(saga, why, sizeof(why))) {
		fprintf(stderr, "dtxctl: %s: not a saga: %s\n", path, why);
		goto out;
	}
	rc = 0;
out:
	json_object_put(root);
	return rc;
}

/* Statements from --on/--sql/--param/--null/--expect. */
typedef struct {
	const char *on, *sql;
	bool named;        /* sql is a named statement's name (--statement) */
	const char *params[256];
	int nparams;
	int64_t expect;
} s_pending_stmt_t;

static int s_flush_stmt(dtx_tx_t *tx, s_pending_stmt_t *p)
{
	int rc;
	if (!p->sql)
		return 0;
	if ((rc = p->named ? dtx_tx_add_named(tx, p->on, p->sql, p->nparams, p->params, p->expect)
			   : dtx_tx_add(tx, p->on, p->sql, p->nparams, p->params, p->expect))) {
		fprintf(stderr, "dtxctl: invalid statement for '%s': %s\n", p->on,
			dtx_strerror(rc));
		return XC_USAGE;
	}
	p->sql = NULL;
	p->nparams = 0;
	p->expect = -1;
	return 0;
}

/* A connection to the client endpoint, with CURVE when keys are given;
 * NULL after saying why. */
static dtx_client_t *s_client(const s_opts_t *o)
{
	char why[1200] = "";
	dtx_client_t *cl;
	if (o->server_key || o->key) {
		cl = dtx_client_new_curve(o->client, o->server_key, o->key, why, sizeof(why));
	} else if (dtx_endpoint_remote(o->client)) {
		fprintf(stderr,
			"dtxctl: %s is a tcp:// endpoint: it needs --server-key and --key "
			"(CURVE)\n",
			o->client);
		return NULL;
	} else {
		cl = dtx_client_new(o->client);
	}
	if (!cl)
		fprintf(stderr, "dtxctl: cannot connect to %s%s%s\n", o->client, why[0] ? ": " : "",
			why);
	return cl;
}

/* keygen NAME [--dir DIR] */
static int s_keygen(int argc, char **argv)
{
	const char *dir = ".";
	char why[1200], pub[DTX_Z85_KEY_LEN + 1], path[1100];
	if (argc == 4 && strcmp(argv[2], "--dir") == 0)
		dir = argv[3];
	else if (argc != 2) {
		fprintf(stderr, "usage: dtxctl keygen NAME [--dir DIR]\n");
		return XC_USAGE;
	}
	if (dtx_key_generate(dir, argv[1], why, sizeof(why))) {
		fprintf(stderr, "dtxctl: keygen: %s\n", why);
		return XC_ERROR;
	}
	snprintf(path, sizeof(path), "%s/%s.pub", dir, argv[1]);
	if (dtx_key_read_public(path, pub, why, sizeof(why))) {
		fprintf(stderr, "dtxctl: keygen: %s\n", why);
		return XC_ERROR;
	}
	printf("%s\n", pub);
	return XC_OK;
}

static int s_exec(const s_opts_t *opts, int argc, char **argv)
{
	s_opts_t own = *opts, *o = &own;
	dtx_tx_t *tx = dtx_tx_new();
	s_pending_stmt_t p = {.expect = -1};
	dtx_client_t *cl = NULL;
	dtx_outcome_t out;
	int rc = XC_USAGE;
	long long v;

	if (!tx)
		return XC_ERROR;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		bool has_val = i + 1 < argc;
		if (strcmp(a, "--file") == 0 && has_val) {
			if ((rc = s_tx_from_json(tx, argv[++i])))
				goto out;
			rc = XC_USAGE;
		} else if (strcmp(a, "--timeout") == 0 && has_val) {
			if (!dtx_parse_int(argv[++i], 1, UINT32_MAX, &v)) {
				fprintf(stderr, "dtxctl: --timeout takes milliseconds\n");
				goto out;
			}
			dtx_tx_set_timeout(tx, (uint32_t)v);
		} else if (strcmp(a, "--key") == 0 && has_val) {
			if (dtx_tx_set_key(tx, argv[++i])) {
				fprintf(stderr, "dtxctl: --key takes 1 to 64 characters of "
						"[A-Za-z0-9_.:-]\n");
				goto out;
			}
		} else if (strcmp(a, "--wait") == 0 && has_val) {
			if (!dtx_parse_int(argv[++i], 1, 86400000, &v)) {
				fprintf(stderr, "dtxctl: --wait takes milliseconds\n");
				goto out;
			}
			o->wait_ms = (int)v;
		} else if (strcmp(a, "--on") == 0 && has_val) {
			if (s_flush_stmt(tx, &p))
				goto out;
			p.on = argv[++i];
		} else if ((strcmp(a, "--sql") == 0 || strcmp(a, "--statement") == 0) && has_val) {
			if (!p.on) {
				fprintf(stderr, "dtxctl: %s needs a --on PARTICIPANT before it\n",
					a);
				goto out;
			}
			if (s_flush_stmt(tx, &p))
				goto out;
			p.sql = argv[++i];
			p.named = strcmp(a, "--statement") == 0;
		} else if ((strcmp(a, "--param") == 0 && has_val) || strcmp(a, "--null") == 0) {
			if (!p.sql || p.nparams == 256) {
				fprintf(stderr, "dtxctl: %s belongs after a --sql or --statement\n",
					a);
				goto out;
			}
			p.params[p.nparams++] = strcmp(a, "--null") == 0 ? NULL : argv[++i];
		} else if (strcmp(a, "--expect") == 0 && has_val) {
			if (!p.sql || !dtx_parse_int(argv[++i], 0, INT64_MAX, &v)) {
				fprintf(stderr, "dtxctl: --expect ROWS belongs after a --sql or "
						"--statement\n");
				goto out;
			}
			p.expect = v;
		} else {
			fprintf(stderr, "dtxctl: exec: unexpected '%s' (see dtxctl help exec)\n",
				a);
			goto out;
		}
	}
	if (s_flush_stmt(tx, &p))
		goto out;
	if (!(cl = s_client(o))) {
		rc = XC_ERROR;
		goto out;
	}
	int r = dtx_client_run(cl, tx, &out, o->wait_ms);
	if (r == DTX_EINVAL && !out.reason[0]) {
		fprintf(stderr, "dtxctl: exec needs at least one --on PARTICIPANT --sql SQL\n");
		goto out;
	}
	if (r) {
		fprintf(stderr, "dtxctl: %s%s%s\n", dtx_strerror(r), out.reason[0] ? ": " : "",
			out.reason);
		if (out.gtid[0])
			fprintf(stderr,
				"dtxctl: %s: its outcome: dtxctl query %s, or the same exec "
				"with --key %s\n",
				out.gtid, out.gtid, dtx_tx_key(tx));
		rc = XC_ERROR;
		goto out;
	}
	s_print_outcome(&out);
	rc = s_exit_for(&out);
out:
	dtx_client_destroy(&cl);
	dtx_tx_destroy(&tx);
	return rc;
}

/* saga --file SAGA.json [--key KEY] [--timeout MS] [--wait MS]: the
 * command line's key and time-out over the file's */
static int s_saga(const s_opts_t *opts, int argc, char **argv)
{
	s_opts_t own = *opts, *o = &own;
	const char *file = NULL, *key = NULL;
	dtx_saga_t *saga = dtx_saga_new();
	dtx_client_t *cl = NULL;
	dtx_outcome_t out;
	uint32_t timeout_ms = 0;
	int rc = XC_USAGE;
	long long v;

	if (!saga)
		return XC_ERROR;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		bool has_val = i + 1 < argc;
		if (strcmp(a, "--file") == 0 && has_val && !file) {
			file = argv[++i];
		} else if (strcmp(a, "--key") == 0 && has_val) {
			if (!dtx_key_valid(key = argv[++i])) {
				fprintf(stderr, "dtxctl: --key takes 1 to 64 characters of "
						"[A-Za-z0-9_.:-]\n");
				goto out;
			}
		} else if (strcmp(a, "--timeout") == 0 && has_val) {
			if (!dtx_parse_int(argv[++i], 1, UINT32_MAX, &v)) {
				fprintf(stderr, "dtxctl: --timeout takes milliseconds\n");
				goto out;
			}
			timeout_ms = (uint32_t)v;
		} else if (strcmp(a, "--wait") == 0 && has_val) {
			if (!dtx_parse_int(argv[++i], 1, 86400000, &v)) {
				fprintf(stderr, "dtxctl: --wait takes milliseconds\n");
				goto out;
			}
			o->wait_ms = (int)v;
		} else {
			fprintf(stderr, "dtxctl: saga: unexpected '%s' (see dtxctl help saga)\n",
				a);
			goto out;
		}
	}
	if (!file) {
		fprintf(stderr, "usage: dtxctl saga --file SAGA.json [--key KEY] [--timeout MS] "
				"[--wait MS]\n");
		goto out;
	}
	/* the file and the saga's rules, before any connection */
	if (s_saga_from_json(saga, file))
		goto out;
	if (key)
		dtx_saga_set_key(saga, key);
	if (timeout_ms)
		dtx_saga_set_timeout(saga, timeout_ms);
	if (!(cl = s_client(o))) {
		rc = XC_ERROR;
		goto out;
	}
	int r = dtx_client_run_saga(cl, saga, &out, o->wait_ms);
	if (r) {
		fprintf(stderr, "dtxctl: %s%s%s\n", dtx_strerror(r), out.reason[0] ? ": " : "",
			out.reason);
		if (out.gtid[0])
			fprintf(stderr,
				"dtxctl: %s: its outcome: dtxctl query %s, or the same saga "
				"with --key %s\n",
				out.gtid, out.gtid, dtx_saga_key(saga));
		rc = XC_ERROR;
		goto out;
	}
	s_print_outcome(&out);
	rc = s_exit_for(&out);
out:
	dtx_client_destroy(&cl);
	dtx_saga_destroy(&saga);
	return rc;
}

static int s_query(const s_opts_t *o, const char *gtid)
{
	dtx_client_t *cl = s_client(o);
	dtx_outcome_t out;
	int r;
	if (!cl)
		return XC_ERROR;
	r = dtx_client_query(cl, gtid, &out, o->wait_ms);
	dtx_client_destroy(&cl);
	if (r) {
		fprintf(stderr, "dtxctl: %s%s%s\n", dtx_strerror(r), out.reason[0] ? ": " : "",
			out.reason);
		return XC_ERROR;
	}
	s_print_outcome(&out);
	return s_exit_for(&out);
}

int main(int argc, char **argv)
{
	s_opts_t o = {.admin = getenv("DTX_ADMIN"),
		      .client = getenv("DTX_CLIENT"),
		      .server_key = getenv("DTX_SERVER_KEY"),
		      .key = getenv("DTX_KEY"),
		      .wait_ms = 30000};
	long long v;
	int i = 1;

	if (!o.admin)
		o.admin = "ipc:///run/dtx/admin.sock";
	if (!o.client)
		o.client = "ipc:///run/dtx/client.sock";
	for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
		if (strcmp(argv[i], "--help") == 0) {
			s_usage(stdout);
			return XC_OK;
		}
		if (strcmp(argv[i], "--json") == 0) {
			o.json = true;
			continue;
		}
		if (i + 1 >= argc) {
			s_usage(stderr);
			return XC_USAGE;
		}
		if (strcmp(argv[i], "--admin") == 0)
			o.admin = argv[++i];
		else if (strcmp(argv[i], "--client") == 0)
			o.client = argv[++i];
		else if (strcmp(argv[i], "--server-key") == 0)
			o.server_key = argv[++i];
		else if (strcmp(argv[i], "--key") == 0)
			o.key = argv[++i];
		else if (strcmp(argv[i], "--wait") == 0 &&
			 dtx_parse_int(argv[i + 1], 1, 86400000, &v))
			o.wait_ms = (int)v, i++;
		else {
			s_usage(stderr);
			return XC_USAGE;
		}
	}
	if (i >= argc) {
		s_usage(stderr);
		return XC_USAGE;
	}
	const char *cmd = argv[i];
	int n = argc - i;
	char **args = argv + i;
	if (strcmp(cmd, "help") == 0)
		return s_help(n, args);
	if (n > 1 && (strcmp(args[1], "--help") == 0 || strcmp(args[1], "-h") == 0)) {
		char *h[] = {"help", (char *)cmd};
		return s_help(2, h);
	}
	if (strcmp(cmd, "watch") == 0)
		return s_watch(&o, n, args);
	if (strcmp(cmd, "keygen") == 0)
		return s_keygen(n, args);
	if (dtx_admin_cmd_find(cmd))
		return s_admin(&o, n, args);
	if (strcmp(cmd, "query") == 0 && n == 2)
		return s_query(&o, args[1]);
	if (strcmp(cmd, "exec") == 0)
		return s_exec(&o, n, args);
	if (strcmp(cmd, "saga") == 0)
		return s_saga(&o, n, args);
	fprintf(stderr, "dtxctl: bad command line (see dtxctl help)\n");
	return XC_USAGE;
}
