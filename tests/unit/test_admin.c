/*
 * test_admin.c — the typed admin protocol: every command's request from
 * dtxctl's words to the coordinator's check, replies with rows through the
 * wire, refusal of wrong types and oversized rows, unknown attributes
 * skipped, the prose and JSON dtxctl prints, and events.
 */
#include "config.h"

#include <msgpack.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../tap.h"
#include "dtx_admin.h"
#include "dtx_util.h"
#include "dtx_wire.h"

#define is_str(got, want, name)                                                                    \
	do {                                                                                       \
		const char *g_ = (got), *w_ = (want);                                              \
		if (!ok(g_ && strcmp(g_, w_) == 0, "%s", name))                                    \
			printf("#   got  '%s'\n#   want '%s'\n", g_ ? g_ : "(null)", w_);          \
	} while (0)

/* What f received, as a string the caller frees. */
typedef struct {
	char *buf;
	size_t len;
	FILE *f;
} s_out_t;

static FILE *out_open(s_out_t *o)
{
	o->buf = NULL;
	o->len = 0;
	return o->f = open_memstream(&o->buf, &o->len);
}

static char *out_close(s_out_t *o)
{
	fclose(o->f);
	return o->buf;
}

/* Encode a request from words, decode it and check it as the coordinator
 * would. 0 and *m decoded, or the first error. */
static int ask(int argc, char **argv, const char *who, dtx_msg_t *m, const dtx_admin_cmd_t **cmd,
	       char *why, size_t why_len)
{
	dtx_request_t *rq;
	char *buf;
	size_t len;
	int rc = dtx_request_argv(&rq, 9, argc, argv, who, why, why_len);
	if (rc)
		return rc;
	rc = dtx_request_encode(rq, &buf, &len);
	dtx_request_destroy(&rq);
	ok(rq == NULL, "dtx_request_destroy clears the caller's pointer");
	if (rc)
		return rc;
	rc = dtx_msg_decode(buf, len, m, why, why_len);
	free(buf);
	if (rc)
		return rc;
	if ((rc = dtx_admin_check(m, cmd, why, why_len)))
		dtx_msg_clear(m);
	return rc;
}

static void test_requests(void)
{
	const dtx_admin_cmd_t *cmd;
	dtx_msg_t m;
	char why[256];

	ok(dtx_admin_ncmds == 7, "seven admin commands");
	const char *names[] = {"status", "list", "show", "resolve", "forget", "stats", "watch"};
	for (unsigned i = 0; i < 7; i++)
		ok(dtx_admin_cmd_find(names[i]) && dtx_admin_cmd_find(names[i])->help[0],
		   "the table has %s, with a help line", names[i]);
	ok(!dtx_admin_cmd_find("launch") && !dtx_admin_cmd_find(NULL), "and nothing else");
	ok((dtx_admin_cmd_find("resolve")->flags & DTX_CMD_CHANGES) &&
		   (dtx_admin_cmd_find("forget")->flags & DTX_CMD_CHANGES) &&
		   !(dtx_admin_cmd_find("show")->flags & DTX_CMD_CHANGES),
	   "resolve and forget change state, show does not");

	char *st[] = {"status"}, *sts[] = {"stats"}, *wa[] = {"watch"};
	char **bare[] = {st, sts, wa};
	for (unsigned i = 0; i < 3; i++) {
		int rc = ask(1, bare[i], "uid 0 (root)", &m, &cmd, why, sizeof(why));
		ok(rc == 0 && cmd == dtx_admin_cmd_find(bare[i][0]) && m.id == 9 &&
			   strcmp(m.name, bare[i][0]) == 0 && m.args.n == 0,
		   "%s: a request without arguments round-trips (%s)", bare[i][0], rc ? why : "ok");
		if (!rc)
			dtx_msg_clear(&m);
	}

	char *l1[] = {"list"};
	is_int(ask(1, l1, NULL, &m, &cmd, why, sizeof(why)), 0, "list: no filter");
	ok(dtx_admin_arg_str(&m, DTX_A_STATE) == NULL, "... and no state argument");
	dtx_msg_clear(&m);
	char *l2[] = {"list", "--state", "in-doubt"};
	is_int(ask(3, l2, NULL, &m, &cmd, why, sizeof(why)), 0, "list --state in-doubt");
	is_str(dtx_admin_arg_str(&m, DTX_A_STATE), "in-doubt", "... carries state=in-doubt");
	dtx_msg_clear(&m);
	char *l3[] = {"list", "--state", "bogus"};
	is_int(ask(3, l3, NULL, &m, &cmd, why, sizeof(why)), DTX_EINVAL,
	       "list --state bogus is refused");
	ok(strstr(why, "--state takes one of active, preparing") != NULL,
	   "... saying what it takes (%s)", why);
	char *l4[] = {"list", "--state"};
	is_int(ask(2, l4, NULL, &m, &cmd, why, sizeof(why)), DTX_EINVAL,
	       "list --state without a value");

	char *s1[] = {"show", "c1.1.42"};
	is_int(ask(2, s1, NULL, &m, &cmd, why, sizeof(why)), 0, "show GTID");
	is_str(dtx_admin_arg_str(&m, DTX_A_GTID), "c1.1.42", "... carries the GTID");
	dtx_msg_clear(&m);
	char *s2[] = {"show"};
	is_int(ask(1, s2, NULL, &m, &cmd, why, sizeof(why)), DTX_EINVAL, "show without GTID");
	is_str(why, "show: needs GTID", "... says so");
	char *s3[] = {"show", "a", "b"};
	is_int(ask(3, s3, NULL, &m, &cmd, why, sizeof(why)), DTX_EINVAL, "show with two GTIDs");

	char *r1[] = {"resolve", "c1.1.42", "--abort", "--force"};
	is_int(ask(4, r1, "uid 0 (root)", &m, &cmd, why, sizeof(why)), 0,
	       "resolve GTID --abort --force");
	ok(strcmp(dtx_admin_arg_str(&m, DTX_A_GTID), "c1.1.42") == 0 &&
		   strcmp(dtx_admin_arg_str(&m, DTX_A_VERB), "abort") == 0 &&
		   dtx_admin_arg_bool(&m, DTX_A_FORCE) &&
		   strcmp(dtx_admin_arg_str(&m, DTX_A_WHO), "uid 0 (root)") == 0,
	   "... gtid, verb=abort, force and who arrive typed");
	dtx_msg_clear(&m);
	char *r2[] = {"resolve", "--commit", "c1.1.42"};
	is_int(ask(3, r2, "op", &m, &cmd, why, sizeof(why)), 0, "resolve: flags before the GTID");
	ok(!dtx_admin_arg_bool(&m, DTX_A_FORCE) &&
		   strcmp(dtx_admin_arg_str(&m, DTX_A_VERB), "commit") == 0,
	   "... verb=commit, not forced");
	dtx_msg_clear(&m);
	char *r3[] = {"resolve", "c1.1.42"};
	is_int(ask(2, r3, "op", &m, &cmd, why, sizeof(why)), DTX_EINVAL, "resolve without a verb");
	is_str(why, "resolve: needs --commit or --abort", "... says which");
	char *r4[] = {"resolve", "c1.1.42", "--commit", "--abort"};
	is_int(ask(4, r4, "op", &m, &cmd, why, sizeof(why)), DTX_EINVAL,
	       "resolve --commit --abort");
	char *r5[] = {"resolve", "c1.1.42", "--commit", "--now"};
	is_int(ask(4, r5, "op", &m, &cmd, why, sizeof(why)), DTX_EINVAL,
	       "resolve with an unknown flag");
	is_str(why, "resolve: unexpected '--now'", "... names it");
	is_int(ask(3, r2, NULL, &m, &cmd, why, sizeof(why)), DTX_EINVAL,
	       "resolve without an operator's name");

	char *f1[] = {"forget", "c1.1.42"};
	is_int(ask(2, f1, "op", &m, &cmd, why, sizeof(why)), 0, "forget GTID");
	ok(strcmp(dtx_admin_arg_str(&m, DTX_A_WHO), "op") == 0 && m.args.n == 2,
	   "... gtid and who");
	dtx_msg_clear(&m);
	char *x[] = {"launch"};
	is_int(ask(1, x, NULL, &m, &cmd, why, sizeof(why)), DTX_EINVAL, "an unknown command");

	/* What a peer built by hand: the coordinator's check. */
	dtx_kv_t kv[2] = {{.attr = DTX_A_GTID, .s = "c1.1.1"}, {.attr = DTX_A_FORCE, .b = true}};
	dtx_msg_t h = {.type = DTX_T_ADMIN,
		       .has = DTX_F_ID | DTX_F_NAME | DTX_F_ARGS,
		       .id = 1,
		       .name = "forget",
		       .args = {2, kv}};
	is_int(dtx_admin_check(&h, &cmd, why, sizeof(why)), DTX_EINVAL,
	       "check: an argument the command does not take is refused");
	is_str(why, "forget takes no 'force'", "... naming it");
	h.args.n = 1;
	is_int(dtx_admin_check(&h, &cmd, why, sizeof(why)), DTX_EINVAL,
	       "check: forget without who");
	is_str(why, "forget needs 'who'", "... naming what is missing");
	h.name = "nope";
	is_int(dtx_admin_check(&h, &cmd, why, sizeof(why)), DTX_EINVAL,
	       "check: an unknown command");
	is_str(why, "unknown admin command 'nope'", "... in the words the coordinator used");
	dtx_kv_t bad = {.attr = DTX_A_VERB, .s = "maybe"};
	dtx_kv_t r[4] = {{.attr = DTX_A_GTID, .s = "c1.1.1"}, bad, {.attr = DTX_A_WHO, .s = "op"}};
	h = (dtx_msg_t){.type = DTX_T_ADMIN,
			.has = DTX_F_ID | DTX_F_NAME | DTX_F_ARGS,
			.id = 1,
			.name = "resolve",
			.args = {3, r}};
	is_int(dtx_admin_check(&h, &cmd, why, sizeof(why)), DTX_EINVAL, "check: verb=maybe");
	is_str(why, "resolve: 'verb' must be one of commit, abort", "... with the values allowed");
	dtx_request_t *rq = dtx_request_new("resolve", 1);
	dtx_request_str(rq, DTX_A_GTID, "c1.1.1");
	char *buf;
	size_t len;
	is_int(dtx_request_encode(rq, &buf, &len), DTX_EINVAL,
	       "a request missing a required argument is not encoded");
	is_int(dtx_request_u64(rq, DTX_A_GTID, 5), DTX_EINVAL,
	       "a request argument of the wrong type");
	dtx_request_destroy(&rq);
	dtx_request_destroy(&rq);
	ok(1, "dtx_request_destroy is idempotent");
}

/* A list reply, as the coordinator builds it. */
static dtx_reply_t *list_reply(void)
{
	dtx_reply_t *r = dtx_reply_new(7);
	const char *parts[] = {"shop", "bank", "stock"};
	dtx_reply_row(r, "transaction");
	dtx_reply_str(r, DTX_A_GTID, "c1.3.17");
	dtx_reply_str(r, DTX_A_STATE, "committed");
	dtx_reply_i64(r, DTX_A_WHEN_US, 1700000000123456);
	dtx_reply_strs(r, DTX_A_PARTICIPANTS, 3, parts);
	dtx_reply_row(r, "transaction");
	dtx_reply_str(r, DTX_A_GTID, "c1.3.18");
	dtx_reply_str(r, DTX_A_STATE, "aborted");
	dtx_reply_i64(r, DTX_A_WHEN_US, 1700000001000000);
	dtx_reply_push(r, DTX_A_PARTICIPANTS, "shop");
	dtx_reply_row(r, "limit");
	dtx_reply_u64(r, DTX_A_COUNT, 1000);
	return r;
}

static int reply_round_trip(const dtx_reply_t *r, dtx_msg_t *d)
{
	char *buf, why[256];
	size_t len;
	int rc = dtx_reply_encode(r, &buf, &len);
	if (rc)
		return rc;
	rc = dtx_msg_decode(buf, len, d, why, sizeof(why));
	if (rc)
		printf("# %s\n", why);
	free(buf);
	return rc;
}

static void test_replies(void)
{
	dtx_reply_t *r = list_reply();
	dtx_msg_t d;
	char *buf, why[256];
	size_t len;

	is_int(dtx_reply_failed(r), 0, "a reply of three rows builds");
	is_int(reply_round_trip(r, &d), 0, "... and round-trips");
	ok(d.type == DTX_T_REPLY && d.id == 7 && d.code == 0 && !(d.has & DTX_F_TEXT) &&
		   d.nrows == 3,
	   "id, code, no text, three rows");
	const char *const *v;
	ok(dtx_kvs_strs(&d.rows[0], DTX_A_PARTICIPANTS, &v) == 3 && strcmp(v[2], "stock") == 0 &&
		   dtx_kvs_i64(&d.rows[0], DTX_A_WHEN_US, 0) == 1700000000123456 &&
		   strcmp(dtx_kvs_str(&d.rows[1], DTX_A_STATE), "aborted") == 0 &&
		   dtx_kvs_strs(&d.rows[1], DTX_A_PARTICIPANTS, &v) == 1,
	   "strings, integers and string arrays survive, row by row");
	ok(dtx_reply_find(&d, "limit") &&
		   dtx_kvs_u64(dtx_reply_find(&d, "limit"), DTX_A_COUNT, 0) == 1000,
	   "dtx_reply_find finds a row by kind");
	ok(dtx_kvs_str(&d.rows[0], DTX_A_COUNT) == NULL &&
		   dtx_kvs_u64(&d.rows[0], DTX_A_COUNT, 5) == 5,
	   "an absent attribute reads as the default");
	dtx_msg_clear(&d);

	/* Every proper prefix refused, corruption survived. */
	dtx_reply_encode(r, &buf, &len);
	int refused = 0;
	for (size_t i = 0; i < len; i++) {
		if (dtx_msg_decode(buf, i, &d, why, sizeof(why)) != 0)
			refused++;
		else
			dtx_msg_clear(&d);
	}
	is_int(refused, len, "every truncation of a REPLY with rows is refused");
	srand(11);
	for (int i = 0; i < 20000; i++) {
		unsigned char *c = malloc(len);
		memcpy(c, buf, len);
		for (int k = 0; k < 1 + rand() % 4; k++)
			c[rand() % len] = (unsigned char)rand();
		if (dtx_msg_decode(c, len, &d, why, sizeof(why)) == 0)
			dtx_msg_clear(&d);
		free(c);
	}
	ok(1, "20000 corrupted REPLY frames decoded or refused without a crash");
	free(buf);
	dtx_reply_destroy(&r);
	ok(r == NULL, "dtx_reply_destroy clears the caller's pointer");
	dtx_reply_destroy(&r);

	/* A refusal: code and text, no rows. */
	r = dtx_reply_new(3);
	dtx_reply_error(r, DTX_ESTATE, "%s: undecided; resolve it first", "c1.1.1");
	is_int(reply_round_trip(r, &d), 0, "a refusal round-trips");
	ok(d.code == DTX_ESTATE && strcmp(d.text, "c1.1.1: undecided; resolve it first") == 0 &&
		   d.nrows == 0,
	   "... code and text, no rows");
	dtx_msg_clear(&d);
	dtx_reply_destroy(&r);

	/* Misuse sticks and fails the encoding. */
	r = dtx_reply_new(1);
	is_int(dtx_reply_str(r, DTX_A_GTID, "x"), DTX_EINVAL, "an attribute before any row");
	is_int(dtx_reply_row(r, "transaction"), DTX_EINVAL, "... sticks");
	is_int(dtx_reply_encode(r, &buf, &len), DTX_EINVAL, "... and the reply does not encode");
	dtx_reply_destroy(&r);
	r = dtx_reply_new(1);
	dtx_reply_row(r, "transaction");
	is_int(dtx_reply_u64(r, DTX_A_GTID, 1), DTX_EINVAL, "an attribute of the wrong type");
	dtx_reply_destroy(&r);
	r = dtx_reply_new(1);
	dtx_reply_row(r, "transaction");
	dtx_reply_str(r, DTX_A_GTID, "a");
	is_int(dtx_reply_str(r, DTX_A_GTID, "b"), DTX_EINVAL, "an attribute twice in a row");
	dtx_reply_destroy(&r);
	r = dtx_reply_new(1);
	dtx_reply_row(r, "participant");
	char longname[DTX_WIRE_MAX_NAME + 2];
	memset(longname, 'p', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	is_int(dtx_reply_str(r, DTX_A_PARTICIPANT, longname), DTX_EINVAL,
	       "a participant name over its bound");
	dtx_reply_destroy(&r);

	/* Bounds: rows and attributes per row. */
	r = dtx_reply_new(1);
	int rc = 0;
	for (int i = 0; i < DTX_WIRE_MAX_ITEMS && !rc; i++)
		rc = dtx_reply_row(r, "transaction");
	is_int(rc, 0, "DTX_WIRE_MAX_ITEMS rows build");
	is_int(dtx_reply_encode(r, &buf, &len), 0, "... and encode");
	is_int(dtx_msg_decode(buf, len, &d, why, sizeof(why)), 0, "... and decode");
	is_int(d.nrows, DTX_WIRE_MAX_ITEMS, "... all of them");
	dtx_msg_clear(&d);
	free(buf);
	is_int(dtx_reply_row(r, "transaction"), DTX_ETOOBIG, "one row more is refused");
	dtx_reply_destroy(&r);
	r = dtx_reply_new(1);
	dtx_reply_row(r, "counter");
	rc = 0;
	int added = 1;
	for (int a = DTX_A_KIND + 1; a < DTX_A__COUNT && !rc; a++) {
		if (dtx_attr_type(a) == DTX_V_UINT) {
			rc = dtx_reply_u64(r, a, 1);
			added++;
		}
	}
	ok(rc == 0, "a row of every unsigned attribute builds (%d)", added);
	dtx_reply_destroy(&r);
}

/* --- raw frames -------------------------------------------------------- */

typedef void (*packer_fn)(msgpack_packer *pk);

static int decode_packed(packer_fn fn, dtx_msg_t *d, char *why, size_t why_len)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	fn(&pk);
	int rc = dtx_msg_decode(sb.data, sb.size, d, why, why_len);
	msgpack_sbuffer_destroy(&sb);
	return rc;
}

static void str(msgpack_packer *pk, const char *s)
{
	msgpack_pack_str(pk, strlen(s));
	msgpack_pack_str_body(pk, s, strlen(s));
}

/* {"v":1,"t":"REPLY","id":1,"code":0,"rows":[ROW]} with ROW of n pairs
 * the caller packs next. */
static void reply_head(msgpack_packer *pk, unsigned nrows)
{
	msgpack_pack_map(pk, 5);
	str(pk, "v");
	msgpack_pack_int(pk, 1);
	str(pk, "t");
	str(pk, "REPLY");
	str(pk, "id");
	msgpack_pack_int(pk, 1);
	str(pk, "code");
	msgpack_pack_int(pk, 0);
	str(pk, "rows");
	msgpack_pack_array(pk, nrows);
}

static void admin_head(msgpack_packer *pk, const char *cmd, unsigned nargs)
{
	msgpack_pack_map(pk, 5);
	str(pk, "v");
	msgpack_pack_int(pk, 1);
	str(pk, "t");
	str(pk, "ADMIN");
	str(pk, "id");
	msgpack_pack_int(pk, 1);
	str(pk, "name");
	str(pk, cmd);
	str(pk, "args");
	msgpack_pack_map(pk, nargs);
}

static void p_count_str(msgpack_packer *pk)
{
	reply_head(pk, 1);
	msgpack_pack_map(pk, 2);
	str(pk, "kind");
	str(pk, "in_flight");
	str(pk, "count");
	str(pk, "three");
}
static void p_negative_count(msgpack_packer *pk)
{
	reply_head(pk, 1);
	msgpack_pack_map(pk, 1);
	str(pk, "count");
	msgpack_pack_int(pk, -3);
}
static void p_force_int(msgpack_packer *pk)
{
	admin_head(pk, "resolve", 1);
	str(pk, "force");
	msgpack_pack_int(pk, 1);
}
static void p_parts_ints(msgpack_packer *pk)
{
	reply_head(pk, 1);
	msgpack_pack_map(pk, 1);
	str(pk, "participants");
	msgpack_pack_array(pk, 1);
	msgpack_pack_int(pk, 1);
}
static void p_row_not_map(msgpack_packer *pk)
{
	reply_head(pk, 1);
	str(pk, "transaction");
}
static void p_args_not_map(msgpack_packer *pk)
{
	msgpack_pack_map(pk, 5);
	str(pk, "v");
	msgpack_pack_int(pk, 1);
	str(pk, "t");
	str(pk, "ADMIN");
	str(pk, "id");
	msgpack_pack_int(pk, 1);
	str(pk, "name");
	str(pk, "show");
	str(pk, "args");
	str(pk, "c1.1.1");
}
static void p_int_key_in_row(msgpack_packer *pk)
{
	reply_head(pk, 1);
	msgpack_pack_map(pk, 1);
	msgpack_pack_int(pk, 1);
	msgpack_pack_int(pk, 1);
}
static void p_dup_in_row(msgpack_packer *pk)
{
	reply_head(pk, 1);
	msgpack_pack_map(pk, 2);
	str(pk, "gtid");
	str(pk, "a");
	str(pk, "gtid");
	str(pk, "b");
}
static void p_long_gtid(msgpack_packer *pk)
{
	char g[202];
	memset(g, 'g', sizeof(g) - 1);
	g[sizeof(g) - 1] = '\0';
	admin_head(pk, "show", 1);
	str(pk, "gtid");
	str(pk, g);
}
static void p_wide_row(msgpack_packer *pk)
{
	reply_head(pk, 1);
	msgpack_pack_map(pk, DTX_WIRE_MAX_KV + 1);
	for (int i = 0; i <= DTX_WIRE_MAX_KV; i++) {
		char k[16];
		snprintf(k, sizeof(k), "x%d", i);
		str(pk, k);
		msgpack_pack_int(pk, i);
	}
}
static void p_many_rows(msgpack_packer *pk)
{
	reply_head(pk, DTX_WIRE_MAX_ITEMS + 1);
	for (int i = 0; i <= DTX_WIRE_MAX_ITEMS; i++)
		msgpack_pack_map(pk, 0);
}
static void p_unknown_args(msgpack_packer *pk)
{
	admin_head(pk, "show", 3);
	str(pk, "since_us");
	msgpack_pack_map(pk, 1);
	str(pk, "deep");
	msgpack_pack_array(pk, 2);
	msgpack_pack_nil(pk);
	msgpack_pack_double(pk, 1.5);
	str(pk, "gtid");
	str(pk, "c1.1.1");
	str(pk, "colour");
	str(pk, "blue");
}
static void p_unknown_in_row(msgpack_packer *pk)
{
	reply_head(pk, 1);
	msgpack_pack_map(pk, 3);
	str(pk, "kind");
	str(pk, "participant");
	str(pk, "rtt_us");
	msgpack_pack_double(pk, 0.25);
	str(pk, "up");
	msgpack_pack_true(pk);
}

static void test_wire_refusals(void)
{
	dtx_msg_t d;
	char why[256];

	is_int(decode_packed(p_count_str, &d, why, sizeof(why)), DTX_EPROTO,
	       "a row's count as a string is refused");
	ok(strstr(why, "'count' must be an unsigned integer") != NULL, "... saying so (%s)", why);
	is_int(decode_packed(p_negative_count, &d, why, sizeof(why)), DTX_EPROTO,
	       "a negative count is refused");
	is_int(decode_packed(p_force_int, &d, why, sizeof(why)), DTX_EPROTO,
	       "force as an integer is refused");
	is_int(decode_packed(p_parts_ints, &d, why, sizeof(why)), DTX_EPROTO,
	       "participants holding an integer are refused");
	is_int(decode_packed(p_row_not_map, &d, why, sizeof(why)), DTX_EPROTO,
	       "a row that is not a map is refused");
	is_int(decode_packed(p_args_not_map, &d, why, sizeof(why)), DTX_EPROTO,
	       "args that are not a map are refused");
	is_int(decode_packed(p_int_key_in_row, &d, why, sizeof(why)), DTX_EPROTO,
	       "a key in a row must be a string");
	is_int(decode_packed(p_dup_in_row, &d, why, sizeof(why)), DTX_EPROTO,
	       "an attribute twice in a row is refused");
	is_int(decode_packed(p_long_gtid, &d, why, sizeof(why)), DTX_ETOOBIG,
	       "a GTID argument over 200 bytes is refused");
	is_int(decode_packed(p_wide_row, &d, why, sizeof(why)), DTX_ETOOBIG,
	       "a row of more than DTX_WIRE_MAX_KV attributes is refused, known or not");
	is_int(decode_packed(p_many_rows, &d, why, sizeof(why)), DTX_ETOOBIG,
	       "more than DTX_WIRE_MAX_ITEMS rows are refused");

	is_int(decode_packed(p_unknown_args, &d, why, sizeof(why)), 0,
	       "unknown arguments, of any shape, are skipped");
	ok(d.args.n == 1 && strcmp(dtx_admin_arg_str(&d, DTX_A_GTID), "c1.1.1") == 0,
	   "... and the known one is there");
	is_int(dtx_admin_check(&d, NULL, why, sizeof(why)), 0,
	       "... and passes the command's check");
	dtx_msg_clear(&d);
	is_int(decode_packed(p_unknown_in_row, &d, why, sizeof(why)), 0,
	       "an unknown attribute in a row is skipped");
	ok(d.nrows == 1 && d.rows[0].n == 2 && dtx_kvs_bool(&d.rows[0], DTX_A_UP, false),
	   "... the others kept");
	dtx_msg_clear(&d);

	/* The encoder refuses what the decoder would. */
	dtx_kv_t kv[2] = {{.attr = DTX_A_GTID, .s = "a"}, {.attr = DTX_A_GTID, .s = "b"}};
	dtx_msg_t m = {.type = DTX_T_REPLY,
		       .has = DTX_F_ID | DTX_F_CODE | DTX_F_ROWS,
		       .nrows = 1,
		       .rows = (dtx_kvs_t[]){{2, kv}}};
	char *buf;
	size_t len;
	is_int(dtx_msg_encode(&m, &buf, &len), DTX_EINVAL, "encoding refuses an attribute twice");
	kv[1] = (dtx_kv_t){.attr = DTX_A__COUNT};
	is_int(dtx_msg_encode(&m, &buf, &len), DTX_EINVAL,
	       "... and an attribute that does not exist");
	kv[1] = (dtx_kv_t){.attr = DTX_A_STATE, .s = NULL};
	is_int(dtx_msg_encode(&m, &buf, &len), DTX_EINVAL, "... and a NULL string");

	ok(dtx_attr_lookup("gtid") == DTX_A_GTID && dtx_attr_lookup("nope") == DTX_A_NONE &&
		   strcmp(dtx_attr_name(DTX_A_LAST_SEEN_MS), "last_seen_ms") == 0 &&
		   dtx_attr_type(DTX_A_WAITING) == DTX_V_STRS,
	   "attribute names and types");
	int named = 0;
	for (int a = DTX_A_NONE + 1; a < DTX_A__COUNT; a++)
		named += dtx_attr_name(a)[0] != '\0' && dtx_attr_type(a) != DTX_V_NONE &&
			 dtx_attr_lookup(dtx_attr_name(a)) == (dtx_attr_t)a;
	is_int(named, DTX_A__COUNT - 1, "every attribute has a name of its own and a type");
}

/* --- what dtxctl prints ------------------------------------------------ */

static char *text_of(const char *cmd, const dtx_reply_t *r)
{
	dtx_msg_t d;
	s_out_t o;
	if (reply_round_trip(r, &d))
		return strdup("(did not round-trip)");
	dtx_admin_print_text(out_open(&o), cmd, &d);
	dtx_msg_clear(&d);
	return out_close(&o);
}

static char *json_of(const dtx_msg_t *m)
{
	s_out_t o;
	dtx_admin_print_json(out_open(&o), m);
	return out_close(&o);
}

static void test_text(void)
{
	dtx_reply_t *r = dtx_reply_new(1);
	char *t;

	/* status */
	dtx_reply_row(r, "coordinator");
	dtx_reply_str(r, DTX_A_COORDINATOR, "c1");
	dtx_reply_u64(r, DTX_A_EPOCH, 3);
	dtx_reply_u64(r, DTX_A_UPTIME_S, 42);
	dtx_reply_row(r, "in_flight");
	dtx_reply_u64(r, DTX_A_COUNT, 3);
	dtx_reply_u64(r, DTX_A_ACTIVE, 1);
	dtx_reply_u64(r, DTX_A_PREPARING, 0);
	dtx_reply_u64(r, DTX_A_COMMITTING, 2);
	dtx_reply_u64(r, DTX_A_ABORTING, 0);
	dtx_reply_row(r, "transactions");
	dtx_reply_u64(r, DTX_A_COMMITTED, 10);
	dtx_reply_u64(r, DTX_A_ABORTED, 2);
	dtx_reply_u64(r, DTX_A_HEURISTIC, 1);
	dtx_reply_row(r, "group_commits");
	dtx_reply_u64(r, DTX_A_COUNT, 5);
	dtx_reply_u64(r, DTX_A_RECORDS, 40);
	dtx_reply_u64(r, DTX_A_DECISIONS, 9);
	dtx_reply_row(r, "participant");
	dtx_reply_str(r, DTX_A_PARTICIPANT, "shop");
	dtx_reply_bool(r, DTX_A_UP, true);
	dtx_reply_u64(r, DTX_A_LAST_SEEN_MS, 120);
	dtx_reply_bool(r, DTX_A_ALLOWED, true);
	dtx_reply_row(r, "participant");
	dtx_reply_str(r, DTX_A_PARTICIPANT, "stock");
	dtx_reply_bool(r, DTX_A_UP, true);
	dtx_reply_u64(r, DTX_A_LAST_SEEN_MS, 7);
	dtx_reply_bool(r, DTX_A_ALLOWED, false);
	dtx_reply_row(r, "participant");
	dtx_reply_str(r, DTX_A_PARTICIPANT, "audit");
	dtx_reply_bool(r, DTX_A_UP, false);
	dtx_reply_bool(r, DTX_A_ALLOWED, true);
	dtx_reply_row(r, "log");
	dtx_reply_u64(r, DTX_A_HEURISTIC, 1);
	dtx_reply_i64(r, DTX_A_CODE, 0);
	dtx_reply_row(r, "in_doubt");
	dtx_reply_str(r, DTX_A_GID, "dtx:c1:99:5:0");
	dtx_reply_str(r, DTX_A_PARTICIPANT, "shop");
	dtx_reply_bool(r, DTX_A_PRUNED, false);
	dtx_reply_row(r, "in_doubt");
	dtx_reply_str(r, DTX_A_GID, "dtx:c1:3:8:1");
	dtx_reply_str(r, DTX_A_PARTICIPANT, "bank");
	dtx_reply_bool(r, DTX_A_PRUNED, true);
	dtx_reply_row(r, "a_kind_of_tomorrow");
	is_str(t = text_of("status", r),
	       "coordinator c1 epoch 3 up 42 s\n"
	       "in flight 3: active 1 preparing 0 committing 2 aborting 0\n"
	       "since start: committed 10 aborted 2 heuristic 1\n"
	       "group commits 5 records 40 decisions 9\n"
	       "participant shop up, last seen 120 ms ago\n"
	       "participant stock up, last seen 7 ms ago (removed from the allow-list)\n"
	       "participant audit down\n"
	       "heuristic outcomes in the log: 1 (dtxctl list --state heuristic)\n"
	       "in doubt (epoch unknown to this log): dtx:c1:99:5:0@shop\n"
	       "in doubt (pruned from this log: it may have committed): dtx:c1:3:8:1@bank\n",
	       "status prints the text protocol's lines from the rows (an unknown kind left out)");
	free(t);
	dtx_reply_destroy(&r);

	/* stats */
	r = dtx_reply_new(1);
	dtx_reply_row(r, "transactions");
	dtx_reply_u64(r, DTX_A_COMMITTED, 6);
	dtx_reply_u64(r, DTX_A_ABORTED, 1);
	dtx_reply_u64(r, DTX_A_HEURISTIC, 0);
	dtx_reply_row(r, "in_flight");
	dtx_reply_u64(r, DTX_A_COUNT, 0);
	dtx_reply_u64(r, DTX_A_ACTIVE, 0);
	dtx_reply_u64(r, DTX_A_PREPARING, 0);
	dtx_reply_u64(r, DTX_A_COMMITTING, 0);
	dtx_reply_u64(r, DTX_A_ABORTING, 0);
	dtx_reply_u64(r, DTX_A_IN_DOUBT, 0);
	dtx_reply_u64(r, DTX_A_STUCK, 0);
	dtx_reply_u64(r, DTX_A_ORPHANS, 2);
	dtx_reply_row(r, "decision_latency");
	dtx_reply_u64(r, DTX_A_COUNT, 7);
	dtx_reply_u64(r, DTX_A_MEAN_US, 1234);
	dtx_reply_u64(r, DTX_A_P50_US, 2000);
	dtx_reply_u64(r, DTX_A_P99_US, DTX_A_INF);
	dtx_reply_row(r, "phase_two");
	dtx_reply_u64(r, DTX_A_RETRIES, 3);
	dtx_reply_row(r, "group_commits");
	dtx_reply_u64(r, DTX_A_COUNT, 4);
	dtx_reply_u64(r, DTX_A_RECORDS, 21);
	dtx_reply_u64(r, DTX_A_DECISIONS, 6);
	dtx_reply_u64(r, DTX_A_MEAN_US, 250);
	dtx_reply_u64(r, DTX_A_P99_US, 500);
	dtx_reply_row(r, "log");
	dtx_reply_i64(r, DTX_A_CODE, 0);
	dtx_reply_row(r, "participant");
	dtx_reply_str(r, DTX_A_PARTICIPANT, "shop");
	dtx_reply_bool(r, DTX_A_UP, true);
	dtx_reply_row(r, "participant");
	dtx_reply_str(r, DTX_A_PARTICIPANT, "stock");
	dtx_reply_bool(r, DTX_A_UP, false);
	is_str(t = text_of("stats", r),
	       "transactions: committed 6, aborted 1, heuristic 0\n"
	       "in flight: 0 (active 0, preparing 0, committing 0, aborting 0); in doubt 0; stuck "
	       "0; "
	       "orphan branches 2\n"
	       "decision latency: 7 answered, mean 1.234 ms, p50 <= 2 ms p99 > 10 s\n"
	       "phase-two retries: 3\n"
	       "group commits: 4, records 21 (5.2 per commit), decisions 6; commit time mean 0.250 "
	       "ms,"
	       " p99 <= 0.5 ms\n"
	       "log: taking writes\n"
	       "participants: shop up stock down\n",
	       "stats prints the text protocol's lines");
	free(t);
	dtx_reply_destroy(&r);
	r = dtx_reply_new(1);
	dtx_reply_row(r, "decision_latency");
	dtx_reply_u64(r, DTX_A_COUNT, 0);
	dtx_reply_row(r, "group_commits");
	dtx_reply_u64(r, DTX_A_COUNT, 0);
	dtx_reply_u64(r, DTX_A_RECORDS, 0);
	dtx_reply_u64(r, DTX_A_DECISIONS, 0);
	dtx_reply_row(r, "log");
	dtx_reply_i64(r, DTX_A_CODE, DTX_EFULL);
	is_str(t = text_of("stats", r),
	       "decision latency: 0 answered\n"
	       "group commits: 0, records 0 (0.0 per commit), decisions 0\n"
	       "log: log full\n"
	       "participants:\n",
	       "stats before any transaction, with a failing log and no participant");
	free(t);
	dtx_reply_destroy(&r);

	/* list */
	setenv("TZ", "UTC", 1);
	tzset();
	r = list_reply();
	is_str(t = text_of("list", r),
	       "c1.3.17                  committed   2023-11-14 22:13:20.123456Z shop,bank,stock\n"
	       "c1.3.18                  aborted     2023-11-14 22:13:21.000000Z shop\n"
	       "(first 1000 shown)\n",
	       "list prints one line a transaction");
	free(t);
	dtx_reply_destroy(&r);
	r = dtx_reply_new(1);
	dtx_reply_row(r, "transaction");
	dtx_reply_str(r, DTX_A_GTID, "c1.3.19");
	dtx_reply_str(r, DTX_A_STATE, "committing");
	dtx_reply_u64(r, DTX_A_AGE_MS, 12999);
	dtx_reply_push(r, DTX_A_WAITING, "stock");
	dtx_reply_push(r, DTX_A_WAITING, "gone");
	dtx_reply_push(r, DTX_A_UNCONFIGURED, "gone");
	dtx_reply_row(r, "in_doubt");
	dtx_reply_str(r, DTX_A_GID, "dtx:c1:99:5:0");
	dtx_reply_str(r, DTX_A_PARTICIPANT, "shop");
	dtx_reply_bool(r, DTX_A_PRUNED, false);
	dtx_reply_row(r, "in_doubt");
	dtx_reply_str(r, DTX_A_GID, "dtx:c1:3:8:1");
	dtx_reply_str(r, DTX_A_PARTICIPANT, "bank");
	dtx_reply_bool(r, DTX_A_PRUNED, true);
	is_str(t = text_of("list", r),
	       "c1.3.19                  committing  decided 12 s ago, waiting for stock gone (not "
	       "configured)\n"
	       "dtx:c1:99:5:0@shop                       in-doubt    branch from an epoch this log "
	       "never had\n"
	       "dtx:c1:3:8:1@bank                        in-doubt    branch of a transaction "
	       "pruned "
	       "from this log\n",
	       "list of stuck and in-doubt rows");
	free(t);
	dtx_reply_destroy(&r);

	/* show */
	r = dtx_reply_new(1);
	const char *parts[] = {"shop", "bank"};
	dtx_reply_row(r, "transaction");
	dtx_reply_str(r, DTX_A_GTID, "c1.3.20");
	dtx_reply_str(r, DTX_A_STATE, "aborting");
	dtx_reply_str(r, DTX_A_REASON, "bank voted no");
	dtx_reply_row(r, "record");
	dtx_reply_i64(r, DTX_A_WHEN_US, 1700000000000001);
	dtx_reply_str(r, DTX_A_STATE, "active");
	dtx_reply_strs(r, DTX_A_PARTICIPANTS, 2, parts);
	dtx_reply_row(r, "record");
	dtx_reply_i64(r, DTX_A_WHEN_US, 1700000000500000);
	dtx_reply_str(r, DTX_A_STATE, "aborting");
	dtx_reply_str(r, DTX_A_NOTE, "bank voted no");
	dtx_reply_row(r, "branch");
	dtx_reply_u64(r, DTX_A_INDEX, 0);
	dtx_reply_str(r, DTX_A_PARTICIPANT, "shop");
	dtx_reply_str(r, DTX_A_VOTE, "yes");
	dtx_reply_bool(r, DTX_A_ACKED, true);
	dtx_reply_row(r, "branch");
	dtx_reply_u64(r, DTX_A_INDEX, 1);
	dtx_reply_str(r, DTX_A_PARTICIPANT, "bank");
	dtx_reply_str(r, DTX_A_VOTE, "no");
	dtx_reply_bool(r, DTX_A_ACKED, false);
	is_str(t = text_of("show", r),
	       "c1.3.20 aborting\n"
	       "  2023-11-14 22:13:20.000001Z  active     participants shop,bank\n"
	       "  2023-11-14 22:13:20.500000Z  aborting   bank voted no\n"
	       "  reason: bank voted no\n"
	       "  branch 0 shop vote yes acknowledged\n"
	       "  branch 1 bank vote no\n",
	       "show: the header, the records, the reason, the branches");
	free(t);
	dtx_reply_destroy(&r);
	r = dtx_reply_new(1);
	dtx_reply_row(r, "transaction");
	dtx_reply_str(r, DTX_A_GTID, "c1.999.1");
	dtx_reply_str(r, DTX_A_STATE, "unknown");
	dtx_reply_code(r, DTX_ENOTFOUND);
	is_str(t = text_of("show", r), "c1.999.1 unknown\n  (no records in the log)\n",
	       "show of an unknown GTID");
	free(t);
	dtx_reply_destroy(&r);

	/* resolve and forget */
	r = dtx_reply_new(1);
	dtx_reply_row(r, "action");
	dtx_reply_str(r, DTX_A_GID, "dtx:c1:99:5:0");
	dtx_reply_str(r, DTX_A_PARTICIPANT, "bank");
	dtx_reply_str(r, DTX_A_VERB, "commit");
	dtx_reply_bool(r, DTX_A_SENT, true);
	dtx_reply_row(r, "action");
	dtx_reply_str(r, DTX_A_GID, "dtx:c1:99:5:1");
	dtx_reply_str(r, DTX_A_PARTICIPANT, "shop");
	dtx_reply_str(r, DTX_A_VERB, "commit");
	dtx_reply_bool(r, DTX_A_SENT, false);
	is_str(t = text_of("resolve", r),
	       "dtx:c1:99:5:0: commit sent to bank\n"
	       "dtx:c1:99:5:1: shop is not connected; it will report the branch again\n",
	       "resolve of branches in doubt: where the decision went");
	free(t);
	dtx_reply_destroy(&r);
	r = dtx_reply_new(1);
	dtx_reply_row(r, "result");
	dtx_reply_str(r, DTX_A_GTID, "c1.3.21");
	dtx_reply_str(r, DTX_A_STATE, "aborting");
	dtx_reply_str(r, DTX_A_VERB, "abort");
	dtx_reply_str(r, DTX_A_NOTE, "operator uid 0 (root): resolve abort");
	is_str(t = text_of("resolve", r), "c1.3.21: operator uid 0 (root): resolve abort\n",
	       "resolve of a transaction: the note it logged");
	free(t);
	dtx_reply_destroy(&r);
	r = dtx_reply_new(1);
	dtx_reply_row(r, "result");
	dtx_reply_str(r, DTX_A_GTID, "c1.3.21");
	dtx_reply_str(r, DTX_A_STATE, "committing");
	dtx_reply_bool(r, DTX_A_RESENT, true);
	is_str(t = text_of("resolve", r),
	       "c1.3.21: already committing: decision re-sent to every branch\n",
	       "resolve the way it went already");
	free(t);
	dtx_reply_destroy(&r);
	r = dtx_reply_new(1);
	dtx_reply_error(r, DTX_ESTATE,
			"c1.3.22: the log holds COMMIT for it; --force contradicts "
			"it (branches that already applied it become heuristic)");
	is_str(t = text_of("resolve", r),
	       "c1.3.22: the log holds COMMIT for it; --force contradicts it (branches that "
	       "already "
	       "applied it become heuristic)\n",
	       "a refusal prints its text");
	free(t);
	dtx_reply_destroy(&r);
	r = dtx_reply_new(1);
	dtx_reply_row(r, "action");
	dtx_reply_str(r, DTX_A_GID, "dtx:c1:99:7:0");
	dtx_reply_str(r, DTX_A_PARTICIPANT, "shop");
	dtx_reply_str(r, DTX_A_VERB, "forget");
	dtx_reply_row(r, "result");
	dtx_reply_str(r, DTX_A_GTID, "c1.3.23");
	dtx_reply_str(r, DTX_A_STATE, "committing");
	dtx_reply_str(r, DTX_A_NOTE, "operator op: forgotten; unacknowledged: stock");
	dtx_reply_push(r, DTX_A_WAITING, "stock");
	is_str(t = text_of("forget", r),
	       "dtx:c1:99:7:0@shop: forgotten; the branch stays prepared in its database\n"
	       "c1.3.23: operator op: forgotten; unacknowledged: stock\n",
	       "forget: the branches left prepared, the transaction's note");
	free(t);
	dtx_reply_destroy(&r);

	/* watch and a command with no prose */
	r = dtx_reply_new(1);
	dtx_reply_row(r, "endpoint");
	dtx_reply_str(r, DTX_A_ENDPOINT, "ipc:///run/dtx/events.sock");
	is_str(t = text_of("watch", r), "ipc:///run/dtx/events.sock\n", "watch: the endpoint");
	free(t);
	is_str(t = text_of("tomorrow", r), "endpoint: endpoint=ipc:///run/dtx/events.sock\n",
	       "a command without prose: one line a row");
	free(t);

	/* JSON */
	dtx_msg_t d;
	reply_round_trip(r, &d);
	is_str(t = json_of(&d),
	       "{\"code\":0,\"rows\":[{\"kind\":\"endpoint\",\"endpoint\":\"ipc:///run/dtx/"
	       "events.sock\"}]}\n",
	       "JSON of a reply: code and rows, no text when there is none");
	free(t);
	dtx_msg_clear(&d);
	dtx_reply_destroy(&r);
	r = list_reply();
	dtx_reply_row(r, "flags");
	dtx_reply_bool(r, DTX_A_FORCE, true);
	dtx_reply_u64(r, DTX_A_COUNT, UINT64_MAX);
	dtx_reply_i64(r, DTX_A_CODE, -19);
	dtx_reply_text(r, "a \"quoted\"\ttext");
	reply_round_trip(r, &d);
	is_str(t = json_of(&d),
	       "{\"code\":0,\"text\":\"a \\\"quoted\\\"\\ttext\",\"rows\":["
	       "{\"kind\":\"transaction\",\"gtid\":\"c1.3.17\",\"state\":\"committed\","
	       "\"when_us\":1700000000123456,\"participants\":[\"shop\",\"bank\",\"stock\"]},"
	       "{\"kind\":\"transaction\",\"gtid\":\"c1.3.18\",\"state\":\"aborted\","
	       "\"when_us\":1700000001000000,\"participants\":[\"shop\"]},"
	       "{\"kind\":\"limit\",\"count\":1000},"
	       "{\"kind\":\"flags\",\"force\":true,\"count\":18446744073709551615,\"code\":-19}]}"
	       "\n",
	       "JSON of a reply with rows: every type, in order, escaped");
	free(t);
	dtx_msg_clear(&d);
	dtx_reply_destroy(&r);
	dtx_msg_t e = {.type = DTX_T_ERROR,
		       .has = DTX_F_CODE | DTX_F_TEXT,
		       .code = DTX_EPROTO,
		       .text = "the admin endpoint takes ADMIN only"};
	is_str(t = json_of(&e), "{\"code\":-3,\"text\":\"the admin endpoint takes ADMIN only\"}\n",
	       "JSON of an ERROR");
	free(t);
	s_out_t o;
	e.type = DTX_T_PING;
	is_int(dtx_admin_print_json(out_open(&o), &e), DTX_EINVAL, "no JSON for a PING");
	free(out_close(&o));
}

static void test_events(void)
{
	const char *parts[] = {"shop", "bank", "stock"};
	dtx_msg_t ev = {.type = DTX_T_EVENT,
			.has = DTX_F_GTID | DTX_F_EVENT | DTX_F_WHO | DTX_F_PARTS | DTX_F_DETAIL |
			       DTX_F_AT,
			.gtid = "c1.3.30",
			.event = "voted",
			.who = "bank",
			.nparts = 3,
			.parts = parts,
			.detail = "yes",
			.at_us = 1700000000123456},
		  d;
	char *buf, why[256], *t;
	size_t len;
	s_out_t o;

	is_int(dtx_msg_encode(&ev, &buf, &len), 0, "EVENT encodes");
	is_int(dtx_msg_decode(buf, len, &d, why, sizeof(why)), 0, "EVENT decodes");
	free(buf);
	ok(d.type == DTX_T_EVENT && strcmp(d.gtid, "c1.3.30") == 0 &&
		   strcmp(d.event, "voted") == 0 && strcmp(d.who, "bank") == 0 && d.nparts == 3 &&
		   strcmp(d.parts[2], "stock") == 0 && strcmp(d.detail, "yes") == 0 &&
		   d.at_us == 1700000000123456,
	   "every field of the event survives");
	ok(dtx_event_involves(&d, "stock") && dtx_event_involves(&d, "bank") &&
		   !dtx_event_involves(&d, "audit"),
	   "dtx_event_involves: a participant of the transaction, not another");
	dtx_event_print_text(out_open(&o), &d);
	is_str(t = out_close(&o), "22:13:20.123 c1.3.30 voted     bank yes\n",
	       "the watch line: time, GTID, event, who, detail");
	free(t);
	is_str(t = json_of(&d),
	       "{\"gtid\":\"c1.3.30\",\"event\":\"voted\",\"who\":\"bank\","
	       "\"participants\":[\"shop\",\"bank\",\"stock\"],\"detail\":\"yes\","
	       "\"at_us\":1700000000123456}\n",
	       "JSON of an event, one line");
	free(t);
	dtx_msg_clear(&d);

	ev.has &= ~DTX_F_WHO;
	ev.event = "completed";
	ev.detail = "committed";
	is_int(dtx_msg_encode(&ev, &buf, &len), 0, "an event about the whole transaction encodes");
	is_int(dtx_msg_decode(buf, len, &d, why, sizeof(why)), 0, "... and decodes");
	free(buf);
	dtx_event_print_text(out_open(&o), &d);
	is_str(t = out_close(&o), "22:13:20.123 c1.3.30 completed shop,bank,stock committed\n",
	       "... its line names every participant");
	free(t);
	dtx_msg_clear(&d);

	/* A saga's step: its name, and where it runs. */
	ev.has |= DTX_F_WHO | DTX_F_STEP;
	ev.event = "step done";
	ev.who = "stock";
	ev.step = "reserve";
	ev.detail = "";
	is_int(dtx_msg_encode(&ev, &buf, &len), 0, "an event about a saga's step encodes");
	is_int(dtx_msg_decode(buf, len, &d, why, sizeof(why)), 0, "... and decodes");
	free(buf);
	dtx_event_print_text(out_open(&o), &d);
	is_str(t = out_close(&o), "22:13:20.123 c1.3.30 step done reserve@stock \n",
	       "... its line names the step where it ran");
	free(t);
	is_str(t = json_of(&d),
	       "{\"gtid\":\"c1.3.30\",\"event\":\"step done\",\"who\":\"stock\","
	       "\"step\":\"reserve\",\"participants\":[\"shop\",\"bank\",\"stock\"],"
	       "\"detail\":\"\",\"at_us\":1700000000123456}\n",
	       "... and its JSON carries the step");
	free(t);
	dtx_msg_clear(&d);
	ev.has &= ~(DTX_F_WHO | DTX_F_STEP);

	ev.has &= ~DTX_F_PARTS;
	is_int(dtx_msg_encode(&ev, &buf, &len), DTX_EINVAL,
	       "an event without participants is not encoded");
	ev.has |= DTX_F_PARTS | DTX_F_WHO;
	ev.who = "shop; DROP TABLE x";
	is_int(dtx_msg_encode(&ev, &buf, &len), DTX_EINVAL, "... nor one whose who is not a name");

	/* A peer's event naming "two words" as a participant is refused. */
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 6);
	str(&pk, "v");
	msgpack_pack_int(&pk, 1);
	str(&pk, "t");
	str(&pk, "EVENT");
	str(&pk, "gtid");
	str(&pk, "c1.1.1");
	str(&pk, "event");
	str(&pk, "begun");
	str(&pk, "participants");
	msgpack_pack_array(&pk, 1);
	str(&pk, "two words");
	str(&pk, "at_us");
	msgpack_pack_int(&pk, 0);
	is_int(dtx_msg_decode(sb.data, sb.size, &d, why, sizeof(why)), DTX_EPROTO,
	       "an event whose participant is not a name is refused");
	msgpack_sbuffer_destroy(&sb);
}

int main(void)
{
	test_requests();
	test_replies();
	test_wire_refusals();
	test_text();
	test_events();
	return tap_done();
}
