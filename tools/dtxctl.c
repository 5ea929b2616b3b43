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
	 "the outcome of GTID as a client sees it; exit 0 committed, 1 aborted or unknown,\n"
	 "4 heuristic (see dtxctl show), 5 in doubt, 6 not decided yet (ask again)"},
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
	 "run one saga: steps, each one local transaction committed at once;\n"
	 "SAGA.json: {\"timeout_ms\": 10000, \"steps\": [{\"name\": \"reserve\",\n"
	 "  \"participant\": \"stock\", \"stmts\": [...], \"compensate\": [...]},\n"
	 "  {\"name\": \"pay\", \"participant\": \"bank\", \"pivot\": true, \"stmts\": [...]},\n"
	 "  {\"name\": \"notify\", \"participant\": \"shop\", \"retry\": true, \"stmts\": [...]}]}\n"
	 "statements as in exec's file; \"group\": N runs consecutive steps together.\n"
	 "Compensable steps (each with \"compensate\"), at most one pivot, then retriable\n"
	 "steps: anything else is refused before it runs. --timeout bounds the steps\n"
	 "before the pivot; --key as for exec. Prints the GTID and the outcome; exit 0\n"
	 "completed, 1 compensated (the failing step, its participant and why are\n"
	 "printed), 4 heuristic, 3 refused or no answer (the saga goes on: the GTID printed)"},
	{"watch", "watch [--gtid GTID] [--participant NAME] [--count N]",
	 "a live stream of transaction events, one line each: time, GTID, event\n"
	 "(begun, voted, decided, completed, heuristic), the participant it is about\n"
	 "(or all of the transaction's), detail; only GTID's, or only transactions\n"
	 "NAME takes part in; stops after N events or at Ctrl-C"},
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
	if (out->participant[0] || out->sqlstate[0])
		printf(" (%s%s%sparticipant %s%s%s)", out->step[0] ? "step " : "", out->step,
		       out->step[0] ? ", " : "", out->participant[0] ? out->participant : "-",
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
	default: return XC_ABORTED;
	}
}

/* Where a JSON statement goes: a TX's branch, or a saga step's statements
 * or compensation. */
typedef int (*s_add_fn)(void *ctx, const char *sql, const char *named, int np,
			const char *const *pv, int64_t expect);

/* Each statement of the JSON array stmts through add. what names the list
 * in messages ("branch 2", "step 'pay'"). 0 or XC_USAGE, said. */
static int s_json_stmts(const char *path, const char *what, json_object *stmts, s_add_fn add,
			void *ctx)
{
	if (!json_object_is_type(stmts, json_type_array) || !json_object_array_length(stmts)) {
		fprintf(stderr, "dtxctl: %s: %s: statements must be a non-empty array\n", path,
			what);
		return XC_USAGE;
	}
	for (size_t s = 0; s < json_object_array_length(stmts); s++) {
		json_object *st = json_object_array_get_idx(stmts, s), *sql, *named, *params, *ex;
		const char *pv[DTX_WIRE_MAX_ITEMS];
		int np = 0;
		int64_t expect = -1;
		/* SQL text, or the name of a statement the agent defines */
		bool has_sql = json_object_object_get_ex(st, "sql", &sql);
		bool has_named = json_object_object_get_ex(st, "statement", &named);
		if (has_sql == has_named) {
			fprintf(stderr,
				"dtxctl: %s: statement %zu of %s needs one of 'sql' and "
				"'statement'\n",
				path, s + 1, what);
			return XC_USAGE;
		}
		if (json_object_object_get_ex(st, "params", &params)) {
			np = (int)json_object_array_length(params);
			if (np > DTX_WIRE_MAX_ITEMS)
				np = DTX_WIRE_MAX_ITEMS;
			for (int i = 0; i < np; i++) {
				json_object *e = json_object_array_get_idx(params, (size_t)i);
				pv[i] = e ? json_object_get_string(e) : NULL;
			}
		}
		if (json_object_object_get_ex(st, "expect", &ex))
			expect = json_object_get_int64(ex);
		if (add(ctx, has_sql ? json_object_get_string(sql) : NULL,
			has_named ? json_object_get_string(named) : NULL, np, pv, expect)) {
			fprintf(stderr, "dtxctl: %s: invalid statement %zu of %s\n", path, s + 1,
				what);
			return XC_USAGE;
		}
	}
	return 0;
}

/* Build tx from a JSON file. 0 or an exit code with a message printed. */
static int s_tx_from_json(dtx_tx_t *tx, const char *path)
{
	json_object *root = json_object_from_file(path), *branches, *v;
	int rc = XC_USAGE;

	if (!root) {
		fprintf(stderr, "dtxctl: %s: %s\n", path, json_util_get_last_err());
		return XC_USAGE;
	}
	if (json_object_object_get_ex(root, "timeout_ms", &v))
		dtx_tx_set_timeout(tx, (uint32_t)json_object_get_int64(v));
	if (json_object_object_get_ex(root, "key", &v) &&
	    (!json_object_is_type(v, json_type_string) ||
	     dtx_tx_set_key(tx, json_object_get_string(v)))) {
		fprintf(stderr, "dtxctl: %s: 'key' must be 1 to 64 characters of [A-Za-z0-9_.:-]\n",
			path);
		goto out;
	}
	if (!json_object_object_get_ex(root, "branches", &branches) ||
	    !json_object_is_type(branches, json_type_array)) {
		fprintf(stderr, "dtxctl: %s: 'branches' must be an array\n", path);
		goto out;
	}
	for (size_t b = 0; b < json_object_array_length(branches); b++) {
		json_object *br = json_object_array_get_idx(branches, b), *p, *stmts;
		if (!json_object_object_get_ex(br, "participant", &p) ||
		    !json_object_object_get_ex(br, "stmts", &stmts) ||
		    !json_object_is_type(stmts, json_type_array)) {
			fprintf(stderr, "dtxctl: %s: branch %zu needs 'participant' and 'stmts'\n",
				path, b + 1);
			goto out;
		}
		for (size_t s = 0; s < json_object_array_length(stmts); s++) {
			json_object *st = json_object_array_get_idx(stmts, s), *sql, *named,
				    *params, *ex;
			const char *pv[DTX_WIRE_MAX_ITEMS];
			int np = 0;
			int64_t expect = -1;
			/* SQL text, or the name of a statement the agent defines */
			bool has_sql = json_object_object_get_ex(st, "sql", &sql);
			bool has_named = json_object_object_get_ex(st, "statement", &named);
			if (has_sql == has_named) {
				fprintf(stderr,
					"dtxctl: %s: statement %zu of branch %zu needs one of "
					"'sql' "
					"and 'statement'\n",
					path, s + 1, b + 1);
				goto out;
			}
			if (has_named && (!json_object_is_type(named, json_type_string) ||
					  json_object_object_get_ex(st, "expect", &ex))) {
				fprintf(stderr,
					"dtxctl: %s: statement %zu of branch %zu: 'statement' "
					"takes "
					"a name, 'params', and no 'expect'\n",
					path, s + 1, b + 1);
				goto out;
			}
			if (json_object_object_get_ex(st, "params", &params)) {
				np = (int)json_object_array_length(params);
				if (np > DTX_WIRE_MAX_ITEMS)
					np = DTX_WIRE_MAX_ITEMS;
				for (int i = 0; i < np; i++) {
					json_object *e = json_object_array_get_idx(params,
										   (size_t)i);
					pv[i] = e ? json_object_get_string(e) : NULL;
				}
			}
			if (json_object_object_get_ex(st, "expect", &ex))
				expect = json_object_get_int64(ex);
			if (has_named ? dtx_tx_add_named(tx, json_object_get_string(p),
							 json_object_get_string(named), np, pv,
							 expect)
				      : dtx_tx_add(tx, json_object_get_string(p),
						   json_object_get_string(sql), np, pv, expect)) {
				fprintf(stderr, "dtxctl: %s: invalid statement in branch %zu\n",
					path, b + 1);
				goto out;
			}
		}
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

/* saga --file: a step's statements, or its compensation */
static int s_saga_add(void *ctx, const char *sql, const char *named, int np,
		      const char *const *pv, int64_t expect)
{
	return named ? dtx_saga_add_named(ctx, named, np, pv, expect)
		     : dtx_saga_add(ctx, sql, np, pv, expect);
}

static int s_saga_comp(void *ctx, const char *sql, const char *named, int np,
		       const char *const *pv, int64_t expect)
{
	return named ? dtx_saga_compensate_named(ctx, named, np, pv, expect)
		     : dtx_saga_compensate(ctx, sql, np, pv, expect);
}

/* Build saga from DESIGN.md's JSON shape. 0 or XC_USAGE, said. */
static int s_saga_from_json(dtx_saga_t *saga, const char *path)
{
	json_object *root = json_object_from_file(path), *steps, *v;
	int rc = XC_USAGE;

	if (!root) {
		fprintf(stderr, "dtxctl: %s: %s\n", path, json_util_get_last_err());
		return XC_USAGE;
	}
	if (json_object_object_get_ex(root, "timeout_ms", &v))
		dtx_saga_set_timeout(saga, (uint32_t)json_object_get_int64(v));
	if (json_object_object_get_ex(root, "key", &v) &&
	    (!json_object_is_type(v, json_type_string) ||
	     dtx_saga_set_key(saga, json_object_get_string(v)))) {
		fprintf(stderr, "dtxctl: %s: 'key' must be 1 to 64 characters of [A-Za-z0-9_.:-]\n",
			path);
		goto out;
	}
	if (!json_object_object_get_ex(root, "steps", &steps) ||
	    !json_object_is_type(steps, json_type_array)) {
		fprintf(stderr, "dtxctl: %s: 'steps' must be an array\n", path);
		goto out;
	}
	for (size_t i = 0; i < json_object_array_length(steps); i++) {
		json_object *st = json_object_array_get_idx(steps, i), *name, *p, *stmts, *comp, *g;
		char what[100];
		if (!json_object_object_get_ex(st, "name", &name) ||
		    !json_object_object_get_ex(st, "participant", &p) ||
		    !json_object_object_get_ex(st, "stmts", &stmts)) {
			fprintf(stderr, "dtxctl: %s: step %zu needs 'name', 'participant' and "
					"'stmts'\n",
				path, i + 1);
			goto out;
		}
		bool pivot = json_object_object_get_ex(st, "pivot", &v) && json_object_get_boolean(v);
		bool retry = json_object_object_get_ex(st, "retry", &v) && json_object_get_boolean(v);
		if (pivot && retry) {
			fprintf(stderr, "dtxctl: %s: step %zu is both the pivot and retriable\n",
				path, i + 1);
			goto out;
		}
		if (dtx_saga_step(saga, json_object_get_string(name), json_object_get_string(p),
				  pivot   ? DTX_SAGA_PIVOT
				  : retry ? DTX_SAGA_RETRIABLE
					  : DTX_SAGA_COMPENSABLE)) {
			fprintf(stderr,
				"dtxctl: %s: step %zu: a name and a participant of 1 to 63 "
				"characters of [A-Za-z0-9_-], at most %d steps\n",
				path, i + 1, DTX_SAGA_MAX_STEPS);
			goto out;
		}
		snprintf(what, sizeof(what), "step '%.60s'", json_object_get_string(name));
		if (s_json_stmts(path, what, stmts, s_saga_add, saga))
			goto out;
		if (json_object_object_get_ex(st, "compensate", &comp)) {
			snprintf(what, sizeof(what), "the compensation of step '%.40s'",
				 json_object_get_string(name));
			if (s_json_stmts(path, what, comp, s_saga_comp, saga))
				goto out;
		}
		if (json_object_object_get_ex(st, "group", &g))
			dtx_saga_set_group(saga, (uint32_t)json_object_get_int64(g));
	}
	rc = 0;
out:
	json_object_put(root);
	return rc;
}

/* saga --file SAGA.json [--key KEY] [--timeout MS] [--wait MS] */
static int s_saga(const s_opts_t *opts, int argc, char **argv)
{
	s_opts_t own = *opts, *o = &own;
	dtx_saga_t *saga = dtx_saga_new();
	dtx_client_t *cl = NULL;
	dtx_outcome_t out;
	const char *file = NULL, *key = NULL;
	int rc = XC_USAGE;
	long long v, timeout = 0;

	if (!saga)
		return XC_ERROR;
	for (int i = 1; i < argc; i++) {
		bool has_val = i + 1 < argc;
		if (strcmp(argv[i], "--file") == 0 && has_val)
			file = argv[++i];
		else if (strcmp(argv[i], "--key") == 0 && has_val)
			key = argv[++i];
		else if (strcmp(argv[i], "--timeout") == 0 && has_val &&
			 dtx_parse_int(argv[i + 1], 1, UINT32_MAX, &v))
			timeout = v, i++;
		else if (strcmp(argv[i], "--wait") == 0 && has_val &&
			 dtx_parse_int(argv[i + 1], 1, 86400000, &v))
			o->wait_ms = (int)v, i++;
		else {
			fprintf(stderr, "usage: dtxctl saga --file SAGA.json [--key KEY] [--timeout "
					"MS] [--wait MS]\n");
			goto out;
		}
	}
	if (!file) {
		fprintf(stderr, "dtxctl: saga needs --file SAGA.json\n");
		goto out;
	}
	if ((rc = s_saga_from_json(saga, file)))
		goto out;
	rc = XC_USAGE;
	if (key && dtx_saga_set_key(saga, key)) {
		fprintf(stderr, "dtxctl: --key takes 1 to 64 characters of [A-Za-z0-9_.:-]\n");
		goto out;
	}
	if (timeout)
		dtx_saga_set_timeout(saga, (uint32_t)timeout);
	if (!(cl = s_client(o))) {
		rc = XC_ERROR;
		goto out;
	}
	int r = dtx_client_run_saga(cl, saga, &out, o->wait_ms);
	if (r == DTX_EINVAL && !out.gtid[0]) {
		fprintf(stderr, "dtxctl: %s: %s\n", file, out.reason[0] ? out.reason : "not a saga");
		goto out;
	}
	if (r) {
		fprintf(stderr, "dtxctl: %s%s%s\n", dtx_strerror(r), out.reason[0] ? ": " : "",
			out.reason);
		if (out.gtid[0])
			fprintf(stderr,
				"dtxctl: %s: it goes on; its outcome: dtxctl query %s, or the same "
				"saga with --key %s\n",
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
