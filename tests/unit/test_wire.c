/*
 * test_wire.c — the frame codec: round trips, and refusal of every kind of
 * malformed frame without a crash or an unbounded allocation.
 */
#include "config.h"

#include <msgpack.h>
#include <string.h>

#include "../tap.h"
#include "dtx_util.h"
#include "dtx_wire.h"

static int decode(const void *buf, size_t len, dtx_msg_t *m)
{
	char why[256];
	return dtx_msg_decode(buf, len, m, why, sizeof(why));
}

static void test_round_trip(void)
{
	const char *p1[] = {"widget", NULL, "3"};
	dtx_stmt_t st[2] = {{.sql = "INSERT INTO t VALUES ($1, $2, $3)",
			     .nparams = 3,
			     .params = p1,
			     .expect = 1},
			    {.sql = "SELECT 1", .expect = -1}};
	dtx_branch_t br[2] = {{.participant = "shop", .nstmts = 2, .stmts = st},
			      {.participant = "bank", .nstmts = 1, .stmts = st + 1}};
	dtx_msg_t m = {.type = DTX_T_TX,
		       .has = DTX_F_ID | DTX_F_BRANCHES | DTX_F_TIMEOUT | DTX_F_KEY,
		       .id = 42,
		       .timeout_ms = 1500,
		       .nbranches = 2,
		       .branches = br,
		       .key = "order-42:a"};
	dtx_msg_t d;
	char *buf;
	size_t len;

	is_int(dtx_msg_encode(&m, &buf, &len), 0, "TX encodes");
	is_int(decode(buf, len, &d), 0, "TX decodes");
	ok(d.type == DTX_T_TX && d.id == 42 && d.timeout_ms == 1500, "TX header fields survive");
	ok((d.has & DTX_F_KEY) && strcmp(d.key, "order-42:a") == 0, "the submission key survives");
	ok(d.nbranches == 2 && strcmp(d.branches[1].participant, "bank") == 0,
	   "branches survive in order");
	ok(d.branches[0].nstmts == 2 && d.branches[0].stmts[0].nparams == 3 &&
		   strcmp(d.branches[0].stmts[0].params[0], "widget") == 0 &&
		   d.branches[0].stmts[0].params[1] == NULL && d.branches[0].stmts[0].expect == 1 &&
		   d.branches[0].stmts[1].expect == -1,
	   "statements, NULL parameters and expected counts survive");
	dtx_msg_clear(&d);
	/* Every proper prefix is refused. */
	int refused = 0;
	for (size_t i = 0; i < len; i++) {
		if (decode(buf, i, &d) != 0)
			refused++;
		else
			dtx_msg_clear(&d);
	}
	is_int(refused, len, "every truncation of a TX frame is refused");
	/* Random corruption never crashes; whatever decodes is cleared. */
	srand(7);
	for (int i = 0; i < 20000; i++) {
		unsigned char *c = malloc(len);
		memcpy(c, buf, len);
		for (int k = 0; k < 1 + rand() % 4; k++)
			c[rand() % len] = (unsigned char)rand();
		if (decode(c, len, &d) == 0)
			dtx_msg_clear(&d);
		free(c);
	}
	ok(1, "20000 corrupted TX frames decoded or refused without a crash");
	free(buf);

	const char *gids[] = {"dtx:c1:1:5:0", "dtx:c1:1:6:1"};
	dtx_msg_t in = {.type = DTX_T_INDOUBT, .has = DTX_F_GIDS, .ngids = 2, .gids = gids};
	is_int(dtx_msg_encode(&in, &buf, &len), 0, "INDOUBT encodes");
	is_int(decode(buf, len, &d), 0, "INDOUBT decodes");
	ok(d.ngids == 2 && strcmp(d.gids[1], "dtx:c1:1:6:1") == 0, "gids survive");
	dtx_msg_clear(&d);
	free(buf);

	dtx_msg_t bad = {.type = DTX_T_VOTE, .has = DTX_F_GTID, .gtid = "x"};
	ok(dtx_msg_encode(&bad, &buf, &len) == DTX_EINVAL, "encoding refuses a missing field");
}

/* Pack a map with the given writer and decode it. */
typedef void (*packer_fn)(msgpack_packer *pk);

static int decode_packed(packer_fn fn, char *why, size_t why_len)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	dtx_msg_t d;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	fn(&pk);
	int rc = dtx_msg_decode(sb.data, sb.size, &d, why, why_len);
	if (rc == 0)
		dtx_msg_clear(&d);
	msgpack_sbuffer_destroy(&sb);
	return rc;
}

static void str(msgpack_packer *pk, const char *s)
{
	msgpack_pack_str(pk, strlen(s));
	msgpack_pack_str_body(pk, s, strlen(s));
}

static void p_v2(msgpack_packer *pk)
{
	msgpack_pack_map(pk, 2);
	str(pk, "v");
	msgpack_pack_int(pk, 2);
	str(pk, "t");
	str(pk, "PING");
}
static void p_no_v(msgpack_packer *pk)
{
	msgpack_pack_map(pk, 1);
	str(pk, "t");
	str(pk, "PING");
}
static void p_bad_type(msgpack_packer *pk)
{
	msgpack_pack_map(pk, 2);
	str(pk, "v");
	msgpack_pack_int(pk, 1);
	str(pk, "t");
	str(pk, "LAUNCH");
}
static void p_unknown_field(msgpack_packer *pk)
{
	msgpack_pack_map(pk, 3);
	str(pk, "v");
	msgpack_pack_int(pk, 1);
	str(pk, "t");
	str(pk, "PING");
	str(pk, "evil");
	msgpack_pack_int(pk, 1);
}
static void p_int_key(msgpack_packer *pk)
{
	msgpack_pack_map(pk, 3);
	str(pk, "v");
	msgpack_pack_int(pk, 1);
	str(pk, "t");
	str(pk, "PING");
	msgpack_pack_int(pk, 7);
	msgpack_pack_int(pk, 1);
}
static void p_unknown_deep(msgpack_packer *pk)
{
	msgpack_pack_map(pk, 3);
	str(pk, "v");
	msgpack_pack_int(pk, 1);
	str(pk, "t");
	str(pk, "PING");
	str(pk, "future");
	for (int i = 0; i < 200; i++)
		msgpack_pack_array(pk, 1);
	msgpack_pack_nil(pk);
}
static void p_unknown_in_stmt(msgpack_packer *pk)
{
	msgpack_pack_map(pk, 4);
	str(pk, "v");
	msgpack_pack_int(pk, 1);
	str(pk, "t");
	str(pk, "PREPARE");
	str(pk, "gtid");
	str(pk, "dtx:c1:1:1:0");
	str(pk, "stmts");
	msgpack_pack_array(pk, 1);
	msgpack_pack_map(pk, 2);
	str(pk, "sql");
	str(pk, "SELECT 1");
	str(pk, "savepoint");
	msgpack_pack_true(pk);
}
static void p_not_allowed(msgpack_packer *pk)
{
	msgpack_pack_map(pk, 3);
	str(pk, "v");
	msgpack_pack_int(pk, 1);
	str(pk, "t");
	str(pk, "PING");
	str(pk, "gtid");
	str(pk, "c1.1.1");
}
static void p_wrong_field_type(msgpack_packer *pk)
{
	msgpack_pack_map(pk, 4);
	str(pk, "v");
	msgpack_pack_int(pk, 1);
	str(pk, "t");
	str(pk, "VOTE");
	str(pk, "gtid");
	msgpack_pack_int(pk, 5);
	str(pk, "code");
	msgpack_pack_int(pk, 1);
}
static void p_missing_required(msgpack_packer *pk)
{
	msgpack_pack_map(pk, 3);
	str(pk, "v");
	msgpack_pack_int(pk, 1);
	str(pk, "t");
	str(pk, "VOTE");
	str(pk, "gtid");
	str(pk, "dtx:c1:1:1:0");
}
static void p_not_a_map(msgpack_packer *pk)
{
	msgpack_pack_array(pk, 2);
	msgpack_pack_int(pk, 1);
	msgpack_pack_int(pk, 2);
}
static void p_bad_name(msgpack_packer *pk)
{
	msgpack_pack_map(pk, 3);
	str(pk, "v");
	msgpack_pack_int(pk, 1);
	str(pk, "t");
	str(pk, "HELLO");
	str(pk, "name");
	str(pk, "shop; DROP TABLE");
}
static void p_huge_string(msgpack_packer *pk)
{
	static char big[DTX_WIRE_MAX_STR + 10];
	memset(big, 'a', sizeof(big));
	msgpack_pack_map(pk, 3);
	str(pk, "v");
	msgpack_pack_int(pk, 1);
	str(pk, "t");
	str(pk, "ERROR");
	str(pk, "text");
	msgpack_pack_str(pk, sizeof(big));
	msgpack_pack_str_body(pk, big, sizeof(big));
}
/* 60 unknown arrays of 4096 nils each: every container within its bound,
 * 245,760 elements in all (240 KB) */
static void p_many_nils(msgpack_packer *pk)
{
	msgpack_pack_map(pk, 62);
	str(pk, "v");
	msgpack_pack_int(pk, 1);
	str(pk, "t");
	str(pk, "PING");
	for (int i = 0; i < 60; i++) {
		char k[8];
		snprintf(k, sizeof(k), "x%d", i);
		str(pk, k);
		msgpack_pack_array(pk, 4096);
		for (int j = 0; j < 4096; j++)
			msgpack_pack_nil(pk);
	}
}
static void p_deep(msgpack_packer *pk)
{
	msgpack_pack_map(pk, 3);
	str(pk, "v");
	msgpack_pack_int(pk, 1);
	str(pk, "t");
	str(pk, "PING");
	str(pk, "x");
	for (int i = 0; i < 200; i++)
		msgpack_pack_array(pk, 1);
	msgpack_pack_nil(pk);
}

static void test_refusals(void)
{
	char why[256];
	is_int(decode_packed(p_v2, why, sizeof(why)), DTX_EVERSION, "version 2 is refused");
	ok(strstr(why, "version") != NULL, "... and the reason names the version");
	is_int(decode_packed(p_no_v, why, sizeof(why)), DTX_EPROTO,
	       "a frame without 'v' is refused");
	is_int(decode_packed(p_bad_type, why, sizeof(why)), DTX_EPROTO,
	       "an unknown type is refused");
	is_int(decode_packed(p_unknown_field, why, sizeof(why)), 0,
	       "an unknown top-level field is skipped (the protocol can grow)");
	{
		msgpack_sbuffer sb;
		msgpack_packer pk;
		dtx_msg_t d;
		msgpack_sbuffer_init(&sb);
		msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
		p_unknown_field(&pk);
		ok(dtx_msg_decode(sb.data, sb.size, &d, why, sizeof(why)) == 0 &&
			   d.type == DTX_T_PING && d.has == 0,
		   "... and leaves nothing behind in the message");
		dtx_msg_clear(&d);
		msgpack_sbuffer_destroy(&sb);
	}
	is_int(decode_packed(p_unknown_deep, why, sizeof(why)), DTX_ETOOBIG,
	       "an unknown field is still bounded by the pre-scan (deep nesting refused)");
	is_int(decode_packed(p_int_key, why, sizeof(why)), DTX_EPROTO,
	       "a key that is not a string is refused");
	is_int(decode_packed(p_not_allowed, why, sizeof(why)), DTX_EPROTO,
	       "a known field the type does not carry is refused");
	is_int(decode_packed(p_unknown_in_stmt, why, sizeof(why)), DTX_EPROTO,
	       "an unknown field inside a statement is still refused");
	is_int(decode_packed(p_wrong_field_type, why, sizeof(why)), DTX_EPROTO,
	       "a field of the wrong type is refused");
	is_int(decode_packed(p_missing_required, why, sizeof(why)), DTX_EPROTO,
	       "a missing required field is refused");
	is_int(decode_packed(p_not_a_map, why, sizeof(why)), DTX_EPROTO,
	       "a non-map frame is refused");
	is_int(decode_packed(p_bad_name, why, sizeof(why)), DTX_EPROTO,
	       "a participant name outside [A-Za-z0-9_-] is refused");
	is_int(decode_packed(p_huge_string, why, sizeof(why)), DTX_ETOOBIG,
	       "a string over the bound is refused");
	is_int(decode_packed(p_deep, why, sizeof(why)), DTX_ETOOBIG, "deep nesting is refused");
	is_int(decode_packed(p_many_nils, why, sizeof(why)), DTX_ETOOBIG,
	       "a frame of 245,760 nils is refused before it is unpacked");
	ok(strstr(why, "elements in a frame") != NULL, "... for its elements");

	/* array32 declaring 2^31 elements in a 12-byte frame: refused before
	 * msgpack-c could allocate for them. */
	unsigned char lie[] = {0x82, 0xa1, 'v', 0x01, 0xa1, 't', 0xdd, 0x80, 0, 0, 0, 0xc0};
	dtx_msg_t d;
	ok(dtx_msg_decode(lie, sizeof(lie), &d, why, sizeof(why)) != 0,
	   "an array declaring 2^31 items in a tiny frame is refused (%s)", why);
	unsigned char trail[] = {0x82, 0xa1, 'v', 0x01, 0xa1, 't', 0xa4, 'P', 'I', 'N', 'G', 0x00};
	is_int(dtx_msg_decode(trail, sizeof(trail), &d, why, sizeof(why)), DTX_EPROTO,
	       "trailing bytes are refused");
	is_int(dtx_msg_decode(trail, sizeof(trail) - 1, &d, why, sizeof(why)), 0,
	       "the same frame without them decodes");
	dtx_msg_clear(&d);
	unsigned char c1[] = {0xc1};
	is_int(dtx_msg_decode(c1, 1, &d, why, sizeof(why)), DTX_EPROTO,
	       "the never-used byte 0xc1 is refused");
	is_int(dtx_msg_decode("", 0, &d, why, sizeof(why)), DTX_EPROTO,
	       "an empty frame is refused");
}

static void test_ids(void)
{
	dtx_gtid_t g = {.coord = "c1", .epoch = 7, .seq = 123456789}, p;
	char buf[256];
	uint32_t branch;

	dtx_gtid_format(&g, buf, sizeof(buf));
	ok(strcmp(buf, "c1.7.123456789") == 0, "GTID format is coordinator.epoch.sequence");
	ok(dtx_gtid_parse(buf, &p) == 0 && p.epoch == 7 && p.seq == 123456789 &&
		   strcmp(p.coord, "c1") == 0,
	   "GTID parses back");
	dtx_gid_format(&g, 2, buf, sizeof(buf));
	ok(strcmp(buf, "dtx:c1:7:123456789:2") == 0, "branch GID format");
	ok(dtx_gid_parse(buf, &p, &branch) == 0 && branch == 2 && p.seq == 123456789,
	   "branch GID parses back");
	snprintf(g.coord, sizeof(g.coord), "%s", "abcdefghijabcdefghijabcdefghij12");
	g.epoch = UINT32_MAX;
	g.seq = UINT64_MAX;
	dtx_gid_format(&g, UINT32_MAX, buf, sizeof(buf));
	ok(strlen(buf) < 200 && strspn(buf, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
					    "0123456789:_.-") == strlen(buf),
	   "the longest GID fits PostgreSQL's 200 bytes and its character set (%zu)", strlen(buf));
	ok(dtx_gid_parse("dtx:c1:7:12", &p, &branch) != 0, "a GID without branch is refused");
	ok(dtx_gid_parse("xa:c1:7:12:0", &p, &branch) != 0, "a foreign GID is refused");
	ok(dtx_gtid_parse("c1.7.x", &p) != 0, "a bad GTID is refused");
	ok(dtx_gtid_parse("c1.07.1", &p) != 0 &&
		   dtx_gtid_parse("c1.7.99999999999999999999", &p) != 0,
	   "a GTID not in canonical form (leading zero, out of range) is refused");
	ok(dtx_gid_parse("dtx:c1:99:5:0000", &p, &branch) != 0,
	   "a GID not in canonical form (dtx:c1:99:5:0000) is refused");
	ok(dtx_key_valid("order-42:a") && !dtx_key_valid("") && !dtx_key_valid("a b") &&
		   !dtx_key_valid(
			   "12345678901234567890123456789012345678901234567890123456789012345"),
	   "keys: 1 to 64 bytes of [A-Za-z0-9_.:-]");
	ok(!dtx_coord_id_valid("a.b") && !dtx_coord_id_valid(""),
	   "coordinator ids exclude . and empty");
}

/* A saga's steps travel whole, and dtx_saga_check() holds the kind order. */
static void test_saga(void)
{
	const char *pr[] = {"widget", "2"};
	dtx_stmt_t fwd = {.sql = "UPDATE items SET qty = qty - $2 WHERE item = $1",
			  .nparams = 2,
			  .params = pr,
			  .expect = 1};
	dtx_stmt_t back = {.sql = "UPDATE items SET qty = qty + $2 WHERE item = $1",
			   .nparams = 2,
			   .params = pr,
			   .expect = 1};
	dtx_step_t st[4] = {
		{.name = "reserve",
		 .participant = "stock",
		 .nstmts = 1,
		 .stmts = &fwd,
		 .ncomp = 1,
		 .comp = &back,
		 .group = 3},
		{.name = "hold",
		 .participant = "shop",
		 .nstmts = 1,
		 .stmts = &fwd,
		 .ncomp = 1,
		 .comp = &back,
		 .group = 3},
		{.name = "pay",
		 .participant = "bank",
		 .nstmts = 1,
		 .stmts = &fwd,
		 .kind = DTX_STEP_PIVOT},
		{.name = "notify",
		 .participant = "shop",
		 .nstmts = 1,
		 .stmts = &fwd,
		 .kind = DTX_STEP_RETRIABLE},
	};
	dtx_msg_t m = {.type = DTX_T_SAGA,
		       .has = DTX_F_ID | DTX_F_STEPS | DTX_F_KEY,
		       .id = 9,
		       .key = "order-1",
		       .nsteps = 4,
		       .steps = st};
	char *buf = NULL, why[256];
	size_t len = 0;
	dtx_msg_t d;
	ok(dtx_msg_encode(&m, &buf, &len) == 0, "a saga encodes");
	ok(buf && dtx_msg_decode(buf, len, &d, why, sizeof(why)) == 0, "a saga decodes");
	ok(d.nsteps == 4 && strcmp(d.steps[2].name, "pay") == 0 &&
		   d.steps[2].kind == DTX_STEP_PIVOT && d.steps[3].kind == DTX_STEP_RETRIABLE &&
		   d.steps[0].ncomp == 1 && d.steps[1].group == 3 &&
		   strcmp(d.steps[0].comp[0].sql, back.sql) == 0 && d.steps[0].comp[0].expect == 1,
	   "steps, kinds, groups and compensations survive");
	ok(dtx_saga_check(d.steps, d.nsteps, why, sizeof(why)) == 0, "... and make a saga");
	/* A definition kept in flight takes what it needs, not 4 KiB. */
	dtx_msg_t f;
	ok(dtx_msg_decode_fit(buf, len, &f, why, sizeof(why)) == 0 && f.nsteps == 4 &&
		   strcmp(f.steps[3].name, "notify") == 0 &&
		   strcmp(f.steps[1].comp[0].params[0], "widget") == 0 &&
		   strcmp(f.key, "order-1") == 0,
	   "a saga decoded to fit has the same steps");
	ok(dtx_msg_footprint(&f) < dtx_msg_footprint(&d) && dtx_msg_footprint(&f) < 4 * len,
	   "... in a block of about its size (%zu bytes; %zu decoded as usual, frame %zu)",
	   dtx_msg_footprint(&f), dtx_msg_footprint(&d), len);
	size_t plain = dtx_msg_footprint(&d);
	dtx_msg_refit(&d);
	ok(dtx_msg_footprint(&d) == dtx_msg_footprint(&f) && d.nsteps == 4 &&
		   strcmp(d.steps[3].name, "notify") == 0 && strcmp(d.key, "order-1") == 0,
	   "a saga decoded as usual, refitted, takes the same block (%zu bytes, from %zu)",
	   dtx_msg_footprint(&d), plain);
	dtx_msg_clear(&f);
	dtx_msg_clear(&d);
	free(buf);

	dtx_step_t bad[4];
	memcpy(bad, st, sizeof(bad));
	bad[3].kind = DTX_STEP_COMPENSABLE;
	bad[3].ncomp = 1;
	bad[3].comp = &back;
	ok(dtx_saga_check(bad, 4, why, sizeof(why)) == DTX_EINVAL && strstr(why, "after the pivot"),
	   "a compensable step after the pivot is refused (%s)", why);
	memcpy(bad, st, sizeof(bad));
	bad[3].kind = DTX_STEP_PIVOT;
	ok(dtx_saga_check(bad, 4, why, sizeof(why)) == DTX_EINVAL && strstr(why, "second pivot"),
	   "a second pivot is refused (%s)", why);
	memcpy(bad, st, sizeof(bad));
	bad[1].ncomp = 0;
	ok(dtx_saga_check(bad, 4, why, sizeof(why)) == DTX_EINVAL && strstr(why, "no compensation"),
	   "a step before the pivot without compensation is refused (%s)", why);
	memcpy(bad, st, sizeof(bad));
	bad[2].group = 3;
	ok(dtx_saga_check(bad, 4, why, sizeof(why)) == DTX_EINVAL && strstr(why, "runs alone"),
	   "the pivot in a group is refused (%s)", why);
	memcpy(bad, st, sizeof(bad));
	bad[3].group = 3;
	ok(dtx_saga_check(bad, 4, why, sizeof(why)) == DTX_EINVAL && strstr(why, "not consecutive"),
	   "a group split by the pivot is refused (%s)", why);
	memcpy(bad, st, sizeof(bad));
	bad[3].name = "pay";
	ok(dtx_saga_check(bad, 4, why, sizeof(why)) == DTX_EINVAL && strstr(why, "two steps"),
	   "two steps of one name are refused (%s)", why);
	m.steps = bad;
	ok(dtx_msg_encode(&m, &buf, &len) == DTX_EINVAL,
	   "a saga that breaks the rules is not encoded");
}

int main(void)
{
	test_saga();
	test_round_trip();
	test_refusals();
	test_ids();
	return tap_done();
}
