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
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "dtx.h"
#include "dtx_frame.h"
#include "dtx_util.h"
#include "dtx_wire.h"

/* Exit codes. */
enum {
	XC_OK = 0, XC_ABORTED = 1, XC_USAGE = 2, XC_ERROR = 3, XC_HEURISTIC = 4, XC_IN_DOUBT = 5,
	XC_ACTIVE = 6
};

typedef struct {
	const char *admin;
	const char *client;
	int wait_ms;
} s_opts_t;

static const struct {
	const char *name, *usage, *help;
} s_cmds[] = {
	{"status", "status", "uptime, transactions in flight by state, participants and their liveness"},
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
	 "  --on PARTICIPANT (--sql SQL [--param VALUE | --null]... [--expect ROWS])...\n"
	 "TX.json: {\"timeout_ms\": 5000, \"branches\": [{\"participant\": \"shop\",\n"
	 "  \"stmts\": [{\"sql\": \"...\", \"params\": [\"a\", 1, null], \"expect\": 1}]}]}\n"
	 "--timeout: time the coordinator allows for the decision; --wait: how long to\n"
	 "wait for the answer; --key (or \"key\" in TX.json): the submission key, so that\n"
	 "running the same exec again never runs the transaction twice but answers with\n"
	 "it (random when not given). Prints the GTID and the outcome; exit 0 committed,\n"
	 "1 aborted, 3 refused, failed or no answer (the GTID printed if one was given)"},
	{"watch", "watch [--gtid GTID] [--participant NAME] [--count N]",
	 "a live stream of transaction events, one line each: time, GTID, event\n"
	 "(begun, voted, decided, completed, heuristic), the participant it is about\n"
	 "(or all of the transaction's), detail; only GTID's, or only transactions\n"
	 "NAME takes part in; stops after N events or at Ctrl-C"},
	{"help", "help [COMMAND]", "this text, or one command's"},
};

static void s_usage(FILE *f)
{
	fprintf(f, "usage: dtxctl [--admin ENDPOINT] [--client ENDPOINT] [--wait MS] COMMAND ...\n"
		   "  --admin   coordinatord's admin endpoint (env DTX_ADMIN, default "
		   "ipc:///run/dtx/admin.sock)\n"
		   "  --client  coordinatord's client endpoint (env DTX_CLIENT, default "
		   "tcp://127.0.0.1:7100)\n"
		   "  --wait    how long to wait for an answer (default 30000 ms)\n"
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

/* One request on the admin endpoint; the reply text in *text (caller
 * frees), or printed when text is NULL. */
static int s_admin_ask(const s_opts_t *o, const char *cmd, const char *arg, char **text)
{
	void *ctx = zmq_ctx_new(), *sock = zmq_socket(ctx, ZMQ_DEALER);
	int zero = 0, rc = XC_ERROR;
	dtx_msg_t req = {.type = DTX_T_ADMIN, .has = DTX_F_ID | DTX_F_NAME, .id = 1,
			 .name = cmd}, rep;
	char why[256];

	if (arg) {
		req.text = arg;
		req.has |= DTX_F_TEXT;
	}
	zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof(zero));
	if (zmq_connect(sock, o->admin) != 0) {
		fprintf(stderr, "dtxctl: cannot connect to %s: %s\n", o->admin, zmq_strerror(errno));
		goto out;
	}
	if (dtx_send(sock, &req, 0))
		goto out;
	int drc = dtx_recv_wait(sock, &rep, o->wait_ms, why, sizeof(why));
	if (drc == DTX_ETIMEOUT || drc == DTX_EIO) {
		fprintf(stderr, "dtxctl: no answer from %s within %d ms\n", o->admin, o->wait_ms);
		goto out;
	}
	if (drc) {
		fprintf(stderr, "dtxctl: bad answer: %s\n", why);
		goto out;
	}
	if (rep.type == DTX_T_REPLY) {
		if (text)
			*text = strdup(rep.text);
		else
			fputs(rep.text, stdout);
		rc = rep.code ? XC_ERROR : XC_OK;
	} else if (rep.type == DTX_T_ERROR) {
		fprintf(stderr, "dtxctl: %s\n", rep.text);
	}
	dtx_msg_clear(&rep);
out:
	zmq_close(sock);
	zmq_ctx_term(ctx);
	return rc;
}

static int s_admin(const s_opts_t *o, const char *cmd, const char *arg)
{
	return s_admin_ask(o, cmd, arg, NULL);
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
	char *endpoint = NULL, prefix[DTX_GTID_MAX + 1] = "";
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
	if ((rc = s_admin_ask(o, "watch", NULL, &endpoint)) != XC_OK)
		return rc;
	void *ctx = zmq_ctx_new(), *sock = zmq_socket(ctx, ZMQ_SUB);
	int zero = 0;
	zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof(zero));
	/* A GTID is filtered by the stream itself: frames start "GTID ". */
	if (gtid)
		snprintf(prefix, sizeof(prefix), "%s ", gtid);
	zmq_setsockopt(sock, ZMQ_SUBSCRIBE, prefix, strlen(prefix));
	if (zmq_connect(sock, endpoint) != 0) {
		fprintf(stderr, "dtxctl: cannot connect to %s: %s\n", endpoint, zmq_strerror(errno));
		rc = XC_ERROR;
		goto out;
	}
	struct sigaction sa = {.sa_handler = s_on_int};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	while (!s_interrupted) {
		char buf[1100], *f[5], *save = NULL;
		int len = zmq_recv(sock, buf, sizeof(buf) - 1, 0);
		if (len < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "dtxctl: %s\n", zmq_strerror(errno));
			rc = XC_ERROR;
			break;
		}
		buf[len < (int)sizeof(buf) - 1 ? len : (int)sizeof(buf) - 1] = '\0';
		/* GTID EVENT WHO PARTICIPANTS DETAIL */
		int nf = 0;
		for (char *t = strtok_r(buf, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
			f[nf++] = t;
			if (nf == 4)
				break; /* the rest is the detail */
		}
		if (nf < 4)
			continue;
		f[4] = save ? save : "";
		if (part) {
			bool in = false;
			char parts[512], *ps = NULL;
			snprintf(parts, sizeof(parts), "%s", f[3]);
			for (char *t = strtok_r(parts, ",", &ps); t && !in; t = strtok_r(NULL, ",", &ps))
				in = strcmp(t, part) == 0;
			if (!in)
				continue;
		}
		struct timespec ts;
		struct tm tm;
		clock_gettime(CLOCK_REALTIME, &ts);
		localtime_r(&ts.tv_sec, &tm);
		printf("%02d:%02d:%02d.%03ld %s %-9s %s %s\n", tm.tm_hour, tm.tm_min, tm.tm_sec,
		       ts.tv_nsec / 1000000, f[0], f[1], strcmp(f[2], "-") ? f[2] : f[3], f[4]);
		fflush(stdout);
		if (count && --count == 0)
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
		printf(" (participant %s%s%s)", out->participant[0] ? out->participant : "-",
		       out->sqlstate[0] ? ", sqlstate " : "", out->sqlstate);
	putchar('\n');
}

static int s_exit_for(const dtx_outcome_t *out)
{
	switch (out->status) {
	case DTX_OUTCOME_COMMITTED: return XC_OK;
	case DTX_OUTCOME_HEURISTIC: return XC_HEURISTIC;
	case DTX_OUTCOME_IN_DOUBT: return XC_IN_DOUBT;
	case DTX_OUTCOME_ACTIVE: return XC_ACTIVE;
	default: return XC_ABORTED;
	}
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
			json_object *st = json_object_array_get_idx(stmts, s), *sql, *params, *ex;
			const char *pv[DTX_WIRE_MAX_ITEMS];
			int np = 0;
			int64_t expect = -1;
			if (!json_object_object_get_ex(st, "sql", &sql)) {
				fprintf(stderr, "dtxctl: %s: a statement has no 'sql'\n", path);
				goto out;
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
			if (dtx_tx_add(tx, json_object_get_string(p), json_object_get_string(sql), np,
				       pv, expect)) {
				fprintf(stderr, "dtxctl: %s: invalid statement in branch %zu\n", path,
					b + 1);
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
	const char *params[256];
	int nparams;
	int64_t expect;
} s_pending_stmt_t;

static int s_flush_stmt(dtx_tx_t *tx, s_pending_stmt_t *p)
{
	int rc;
	if (!p->sql)
		return 0;
	if ((rc = dtx_tx_add(tx, p->on, p->sql, p->nparams, p->params, p->expect))) {
		fprintf(stderr, "dtxctl: invalid statement for '%s': %s\n", p->on, dtx_strerror(rc));
		return XC_USAGE;
	}
	p->sql = NULL;
	p->nparams = 0;
	p->expect = -1;
	return 0;
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
		} else if (strcmp(a, "--sql") == 0 && has_val) {
			if (!p.on) {
				fprintf(stderr, "dtxctl: --sql needs a --on PARTICIPANT before it\n");
				goto out;
			}
			if (s_flush_stmt(tx, &p))
				goto out;
			p.sql = argv[++i];
		} else if ((strcmp(a, "--param") == 0 && has_val) || strcmp(a, "--null") == 0) {
			if (!p.sql || p.nparams == 256) {
				fprintf(stderr, "dtxctl: %s belongs after a --sql\n", a);
				goto out;
			}
			p.params[p.nparams++] = strcmp(a, "--null") == 0 ? NULL : argv[++i];
		} else if (strcmp(a, "--expect") == 0 && has_val) {
			if (!p.sql || !dtx_parse_int(argv[++i], 0, INT64_MAX, &v)) {
				fprintf(stderr, "dtxctl: --expect ROWS belongs after a --sql\n");
				goto out;
			}
			p.expect = v;
		} else {
			fprintf(stderr, "dtxctl: exec: unexpected '%s' (see dtxctl help exec)\n", a);
			goto out;
		}
	}
	if (s_flush_stmt(tx, &p))
		goto out;
	if (!(cl = dtx_client_new(o->client))) {
		fprintf(stderr, "dtxctl: cannot connect to %s\n", o->client);
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
			fprintf(stderr, "dtxctl: %s: its outcome: dtxctl query %s, or the same exec "
					"with --key %s\n", out.gtid, out.gtid, dtx_tx_key(tx));
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

static int s_query(const s_opts_t *o, const char *gtid)
{
	dtx_client_t *cl = dtx_client_new(o->client);
	dtx_outcome_t out;
	int r;
	if (!cl) {
		fprintf(stderr, "dtxctl: cannot connect to %s\n", o->client);
		return XC_ERROR;
	}
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

/* "uid 0 (root)": who an operator act is logged as. */
static void s_who(char *buf, size_t len)
{
	struct passwd *pw = getpwuid(getuid());
	snprintf(buf, len, "uid %u (%s)", (unsigned)getuid(), pw ? pw->pw_name : "?");
}

static int s_resolve(const s_opts_t *o, int n, char **args)
{
	const char *verb = NULL;
	bool force = false;
	char arg[512], who[128];

	for (int i = 2; i < n; i++) {
		if (strcmp(args[i], "--commit") == 0 && !verb)
			verb = "commit";
		else if (strcmp(args[i], "--abort") == 0 && !verb)
			verb = "abort";
		else if (strcmp(args[i], "--force") == 0)
			force = true;
		else
			verb = NULL, i = n;
	}
	if (n < 3 || !verb) {
		fprintf(stderr, "usage: dtxctl resolve GTID --commit|--abort [--force]\n");
		return XC_USAGE;
	}
	s_who(who, sizeof(who));
	snprintf(arg, sizeof(arg), "%s %s %s %s", args[1], verb, force ? "force" : "-", who);
	return s_admin(o, "resolve", arg);
}

int main(int argc, char **argv)
{
	s_opts_t o = {.admin = getenv("DTX_ADMIN"), .client = getenv("DTX_CLIENT"),
		      .wait_ms = 30000};
	long long v;
	int i = 1;

	if (!o.admin)
		o.admin = "ipc:///run/dtx/admin.sock";
	if (!o.client)
		o.client = "tcp://127.0.0.1:7100";
	for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
		if (strcmp(argv[i], "--help") == 0) {
			s_usage(stdout);
			return XC_OK;
		}
		if (i + 1 >= argc) {
			s_usage(stderr);
			return XC_USAGE;
		}
		if (strcmp(argv[i], "--admin") == 0)
			o.admin = argv[++i];
		else if (strcmp(argv[i], "--client") == 0)
			o.client = argv[++i];
		else if (strcmp(argv[i], "--wait") == 0 && dtx_parse_int(argv[i + 1], 1, 86400000, &v))
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
	if (strcmp(cmd, "status") == 0 && n == 1)
		return s_admin(&o, "status", NULL);
	if (strcmp(cmd, "watch") == 0)
		return s_watch(&o, n, args);
	if (strcmp(cmd, "stats") == 0 && n == 1)
		return s_admin(&o, "stats", NULL);
	if (strcmp(cmd, "list") == 0 && n == 1)
		return s_admin(&o, "list", NULL);
	if (strcmp(cmd, "list") == 0 && n == 3 && strcmp(args[1], "--state") == 0)
		return s_admin(&o, "list", args[2]);
	if (strcmp(cmd, "show") == 0 && n == 2)
		return s_admin(&o, "show", args[1]);
	if (strcmp(cmd, "resolve") == 0)
		return s_resolve(&o, n, args);
	if (strcmp(cmd, "forget") == 0 && n == 2) {
		char arg[512], who[128];
		s_who(who, sizeof(who));
		snprintf(arg, sizeof(arg), "%s %s", args[1], who);
		return s_admin(&o, "forget", arg);
	}
	if (strcmp(cmd, "query") == 0 && n == 2)
		return s_query(&o, args[1]);
	if (strcmp(cmd, "exec") == 0)
		return s_exec(&o, n, args);
	fprintf(stderr, "dtxctl: bad command line (see dtxctl help)\n");
	return XC_USAGE;
}
