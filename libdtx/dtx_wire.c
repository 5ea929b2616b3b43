/*
 * dtx_wire.c — frame codec. The only file of dtx that calls msgpack.
 */
#include "config.h"

#include <inttypes.h>
#include <msgpack.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dtx_wire.h"

/* --- names ------------------------------------------------------------ */

static const char *const s_type_names[DTX_T__COUNT] = {
	[DTX_T_NONE] = "NONE",       [DTX_T_TX] = "TX",           [DTX_T_QUERY] = "QUERY",
	[DTX_T_OUTCOME] = "OUTCOME", [DTX_T_ERROR] = "ERROR",     [DTX_T_HELLO] = "HELLO",
	[DTX_T_WELCOME] = "WELCOME", [DTX_T_INDOUBT] = "INDOUBT", [DTX_T_PREPARE] = "PREPARE",
	[DTX_T_VOTE] = "VOTE",       [DTX_T_DECIDE] = "DECIDE",   [DTX_T_ACK] = "ACK",
	[DTX_T_PING] = "PING",       [DTX_T_PONG] = "PONG",       [DTX_T_ADMIN] = "ADMIN",
	[DTX_T_REPLY] = "REPLY",     [DTX_T_EVENT] = "EVENT",     [DTX_T_SAGA] = "SAGA",
	[DTX_T_STEP] = "STEP",       [DTX_T_RESULT] = "RESULT",
};

/* What each type requires and what it may carry besides. */
static const struct {
	uint32_t required, optional;
} s_fields[DTX_T__COUNT] = {
	[DTX_T_TX] = {DTX_F_ID | DTX_F_BRANCHES, DTX_F_TIMEOUT | DTX_F_KEY},
	[DTX_T_QUERY] = {DTX_F_ID | DTX_F_GTID, 0},
	[DTX_T_OUTCOME] = {DTX_F_ID | DTX_F_CODE,
			   DTX_F_GTID | DTX_F_NAME | DTX_F_SQLSTATE | DTX_F_TEXT | DTX_F_STEP},
	[DTX_T_ERROR] = {DTX_F_CODE | DTX_F_TEXT, DTX_F_ID},
	[DTX_T_HELLO] = {DTX_F_NAME, 0},
	[DTX_T_WELCOME] = {DTX_F_TEXT, 0},
	[DTX_T_INDOUBT] = {DTX_F_GIDS, 0},
	[DTX_T_PREPARE] = {DTX_F_GTID | DTX_F_STMTS, DTX_F_CODE | DTX_F_TIMEOUT},
	[DTX_T_VOTE] = {DTX_F_GTID | DTX_F_CODE, DTX_F_SQLSTATE | DTX_F_TEXT},
	[DTX_T_DECIDE] = {DTX_F_GTID | DTX_F_CODE, 0},
	[DTX_T_ACK] = {DTX_F_GTID | DTX_F_CODE, DTX_F_TEXT},
	[DTX_T_PING] = {0, 0},
	[DTX_T_PONG] = {0, 0},
	[DTX_T_ADMIN] = {DTX_F_ID | DTX_F_NAME, DTX_F_TEXT | DTX_F_ARGS},
	[DTX_T_REPLY] = {DTX_F_ID | DTX_F_CODE, DTX_F_TEXT | DTX_F_ROWS},
	[DTX_T_EVENT] = {DTX_F_GTID | DTX_F_EVENT | DTX_F_PARTS | DTX_F_AT,
			 DTX_F_WHO | DTX_F_DETAIL | DTX_F_STEP},
	[DTX_T_SAGA] = {DTX_F_ID | DTX_F_STEPS, DTX_F_TIMEOUT | DTX_F_KEY},
	[DTX_T_STEP] = {DTX_F_GTID | DTX_F_CODE, DTX_F_STMTS | DTX_F_TIMEOUT},
	[DTX_T_RESULT] = {DTX_F_GTID | DTX_F_CODE | DTX_F_ASKED, DTX_F_SQLSTATE | DTX_F_TEXT},
};

/* Each attribute's name and type; max bounds a string's bytes (0: the
 * frame's bound, DTX_WIRE_MAX_STR), each string of an array's too. */
static const struct {
	const char *name;
	dtx_vtype_t type;
	uint32_t max;
} s_attrs[DTX_A__COUNT] = {
	[DTX_A_KIND] = {"kind", DTX_V_STR, 32},
	[DTX_A_GTID] = {"gtid", DTX_V_STR, 200},
	[DTX_A_GID] = {"gid", DTX_V_STR, 200},
	[DTX_A_STATE] = {"state", DTX_V_STR, 32},
	[DTX_A_PARTICIPANT] = {"participant", DTX_V_STR, DTX_WIRE_MAX_NAME},
	[DTX_A_PARTICIPANTS] = {"participants", DTX_V_STRS, DTX_WIRE_MAX_NAME},
	[DTX_A_WHEN_US] = {"when_us", DTX_V_INT, 0},
	[DTX_A_NOTE] = {"note", DTX_V_STR, 0},
	[DTX_A_REASON] = {"reason", DTX_V_STR, 0},
	[DTX_A_VERB] = {"verb", DTX_V_STR, 32},
	[DTX_A_FORCE] = {"force", DTX_V_BOOL, 0},
	[DTX_A_WHO] = {"who", DTX_V_STR, 256},
	[DTX_A_COUNT] = {"count", DTX_V_UINT, 0},
	[DTX_A_INDEX] = {"index", DTX_V_UINT, 0},
	[DTX_A_VOTE] = {"vote", DTX_V_STR, 32},
	[DTX_A_ACKED] = {"acked", DTX_V_BOOL, 0},
	[DTX_A_UP] = {"up", DTX_V_BOOL, 0},
	[DTX_A_ALLOWED] = {"allowed", DTX_V_BOOL, 0},
	[DTX_A_LAST_SEEN_MS] = {"last_seen_ms", DTX_V_UINT, 0},
	[DTX_A_AGE_MS] = {"age_ms", DTX_V_UINT, 0},
	[DTX_A_WAITING] = {"waiting", DTX_V_STRS, DTX_WIRE_MAX_NAME},
	[DTX_A_UNCONFIGURED] = {"unconfigured", DTX_V_STRS, DTX_WIRE_MAX_NAME},
	[DTX_A_PRUNED] = {"pruned", DTX_V_BOOL, 0},
	[DTX_A_SENT] = {"sent", DTX_V_BOOL, 0},
	[DTX_A_RESENT] = {"resent", DTX_V_BOOL, 0},
	[DTX_A_COORDINATOR] = {"coordinator", DTX_V_STR, 64},
	[DTX_A_EPOCH] = {"epoch", DTX_V_UINT, 0},
	[DTX_A_UPTIME_S] = {"uptime_s", DTX_V_UINT, 0},
	[DTX_A_ENDPOINT] = {"endpoint", DTX_V_STR, 1024},
	[DTX_A_ACTIVE] = {"active", DTX_V_UINT, 0},
	[DTX_A_PREPARING] = {"preparing", DTX_V_UINT, 0},
	[DTX_A_COMMITTING] = {"committing", DTX_V_UINT, 0},
	[DTX_A_ABORTING] = {"aborting", DTX_V_UINT, 0},
	[DTX_A_COMMITTED] = {"committed", DTX_V_UINT, 0},
	[DTX_A_ABORTED] = {"aborted", DTX_V_UINT, 0},
	[DTX_A_HEURISTIC] = {"heuristic", DTX_V_UINT, 0},
	[DTX_A_IN_DOUBT] = {"in_doubt", DTX_V_UINT, 0},
	[DTX_A_STUCK] = {"stuck", DTX_V_UINT, 0},
	[DTX_A_ORPHANS] = {"orphans", DTX_V_UINT, 0},
	[DTX_A_RETRIES] = {"retries", DTX_V_UINT, 0},
	[DTX_A_RECORDS] = {"records", DTX_V_UINT, 0},
	[DTX_A_DECISIONS] = {"decisions", DTX_V_UINT, 0},
	[DTX_A_MEAN_US] = {"mean_us", DTX_V_UINT, 0},
	[DTX_A_P50_US] = {"p50_us", DTX_V_UINT, 0},
	[DTX_A_P99_US] = {"p99_us", DTX_V_UINT, 0},
	[DTX_A_CODE] = {"code", DTX_V_INT, 0},
	[DTX_A_STEP] = {"step", DTX_V_STR, DTX_WIRE_MAX_NAME},
	[DTX_A_COMPLETED] = {"completed", DTX_V_UINT, 0},
	[DTX_A_COMPENSATED] = {"compensated", DTX_V_UINT, 0},
	[DTX_A_SAGAS] = {"sagas", DTX_V_UINT, 0},
};

const char *dtx_msg_type_str(dtx_msg_type_t type)
{
	if (type <= DTX_T_NONE || type >= DTX_T__COUNT)
		return "NONE";
	return s_type_names[type];
}

const char *dtx_attr_name(dtx_attr_t attr)
{
	if (attr <= DTX_A_NONE || attr >= DTX_A__COUNT)
		return "";
	return s_attrs[attr].name;
}

dtx_vtype_t dtx_attr_type(dtx_attr_t attr)
{
	if (attr <= DTX_A_NONE || attr >= DTX_A__COUNT)
		return DTX_V_NONE;
	return s_attrs[attr].type;
}

static dtx_attr_t s_attr_lookup(const char *s, size_t n)
{
	for (int a = DTX_A_NONE + 1; a < DTX_A__COUNT; a++)
		if (strlen(s_attrs[a].name) == n && memcmp(s_attrs[a].name, s, n) == 0)
			return (dtx_attr_t)a;
	return DTX_A_NONE;
}

dtx_attr_t dtx_attr_lookup(const char *name)
{
	return name ? s_attr_lookup(name, strlen(name)) : DTX_A_NONE;
}

size_t dtx_attr_max(dtx_attr_t attr)
{
	if (attr <= DTX_A_NONE || attr >= DTX_A__COUNT)
		return 0;
	return s_attrs[attr].max ? s_attrs[attr].max : DTX_WIRE_MAX_STR;
}

static dtx_msg_type_t s_type_lookup(const char *s, size_t n)
{
	for (int t = DTX_T_NONE + 1; t < DTX_T__COUNT; t++)
		if (strlen(s_type_names[t]) == n && memcmp(s_type_names[t], s, n) == 0)
			return (dtx_msg_type_t)t;
	return DTX_T_NONE;
}

bool dtx_key_valid(const char *key)
{
	size_t n = key ? strlen(key) : 0;
	return n > 0 && n <= DTX_KEY_MAX &&
	       strspn(key, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:-") ==
		       n;
}

bool dtx_name_valid(const char *name)
{
	size_t n = name ? strlen(name) : 0;
	if (n == 0 || n > DTX_WIRE_MAX_NAME)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-'))
			return false;
	}
	return true;
}

/* --- arena: decoded strings and arrays, freed at once ---------------- */

typedef struct s_chunk {
	struct s_chunk *next;
	size_t used, size;
	max_align_t data[];
} s_chunk_t;

static void *s_alloc(dtx_msg_t *msg, size_t n)
{
	s_chunk_t *c = msg->arena_;
	n = (n + sizeof(max_align_t) - 1) & ~(sizeof(max_align_t) - 1);
	if (!c || c->size - c->used < n) {
		size_t size = n > 4096 ? n : 4096;
		s_chunk_t *nc = malloc(sizeof(*nc) + size);
		if (!nc)
			return NULL;
		nc->next = c;
		nc->used = 0;
		nc->size = size;
		msg->arena_ = c = nc;
	}
	void *p = (char *)c->data + c->used;
	c->used += n;
	return p;
}

/* An empty first chunk of size bytes (a multiple of the alignment). */
static bool s_arena_begin(dtx_msg_t *msg, size_t size)
{
	size = (size + sizeof(max_align_t) - 1) & ~(sizeof(max_align_t) - 1);
	s_chunk_t *c = malloc(sizeof(*c) + size);
	if (!c)
		return false;
	*c = (s_chunk_t){.size = size};
	msg->arena_ = c;
	return true;
}

void dtx_msg_clear(dtx_msg_t *msg)
{
	s_chunk_t *c = msg->arena_;
	while (c) {
		s_chunk_t *next = c->next;
		free(c);
		c = next;
	}
	memset(msg, 0, sizeof(*msg));
}

/* --- pre-scan: bound everything before msgpack allocates ------------- */

typedef struct {
	const uint8_t *p, *end;
	char *why;
	size_t why_len;
	uint64_t elements; /* scanned so far, for DTX_WIRE_MAX_ELEMENTS */
} s_scan_t;

static int s_fail(char *why, size_t why_len, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int s_fail(char *why, size_t why_len, int code, const char *fmt, ...)
{
	if (why && why_len) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(why, why_len, fmt, ap);
		va_end(ap);
	}
	return code;
}

static int s_need(s_scan_t *s, size_t n, uint64_t *out)
{
	if ((size_t)(s->end - s->p) < n)
		return s_fail(s->why, s->why_len, DTX_EPROTO, "truncated frame");
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++)
		v = (v << 8) | s->p[i];
	s->p += n;
	if (out)
		*out = v;
	return 0;
}

static int s_skip_bytes(s_scan_t *s, uint64_t n, bool is_str)
{
	if (is_str && n > DTX_WIRE_MAX_STR)
		return s_fail(s->why, s->why_len, DTX_ETOOBIG,
			      "string of %" PRIu64 " bytes exceeds %d", n, DTX_WIRE_MAX_STR);
	if ((uint64_t)(s->end - s->p) < n)
		return s_fail(s->why, s->why_len, DTX_EPROTO, "truncated frame");
	s->p += n;
	return 0;
}

static int s_scan(s_scan_t *s, int depth)
{
	uint64_t n = 0, items = 0;
	uint8_t b;
	int rc;

	if (depth > DTX_WIRE_MAX_DEPTH)
		return s_fail(s->why, s->why_len, DTX_ETOOBIG, "nesting deeper than %d",
			      DTX_WIRE_MAX_DEPTH);
	if (s->p >= s->end)
		return s_fail(s->why, s->why_len, DTX_EPROTO, "truncated frame");
	/* What a frame may cost to decode is bounded by its elements, not
	 * only by its bytes: a frame of nils is cheap to send. */
	if (++s->elements > DTX_WIRE_MAX_ELEMENTS)
		return s_fail(s->why, s->why_len, DTX_ETOOBIG, "more than %d elements in a frame",
			      DTX_WIRE_MAX_ELEMENTS);
	b = *s->p++;
	if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3)
		return 0;
	if (b >= 0xa0 && b <= 0xbf)
		return s_skip_bytes(s, b & 0x1f, true);
	if (b >= 0x80 && b <= 0x8f) {
		items = 2 * (uint64_t)(b & 0x0f);
		goto container;
	}
	if (b >= 0x90 && b <= 0x9f) {
		items = b & 0x0f;
		goto container;
	}
	switch (b) {
	case 0xc4:
	case 0xc5:
	case 0xc6:
		if ((rc = s_need(s, 1u << (b - 0xc4), &n)))
			return rc;
		return s_skip_bytes(s, n, true);
	case 0xc7:
	case 0xc8:
	case 0xc9:
		if ((rc = s_need(s, 1u << (b - 0xc7), &n)))
			return rc;
		return s_skip_bytes(s, n + 1, true);
	case 0xca: return s_skip_bytes(s, 4, false);
	case 0xcb: return s_skip_bytes(s, 8, false);
	case 0xcc:
	case 0xcd:
	case 0xce:
	case 0xcf: return s_skip_bytes(s, 1u << (b - 0xcc), false);
	case 0xd0:
	case 0xd1:
	case 0xd2:
	case 0xd3: return s_skip_bytes(s, 1u << (b - 0xd0), false);
	case 0xd4:
	case 0xd5:
	case 0xd6:
	case 0xd7:
	case 0xd8: return s_skip_bytes(s, 1 + (1u << (b - 0xd4)), false);
	case 0xd9:
	case 0xda:
	case 0xdb:
		if ((rc = s_need(s, 1u << (b - 0xd9), &n)))
			return rc;
		return s_skip_bytes(s, n, true);
	case 0xdc:
	case 0xdd:
		if ((rc = s_need(s, b == 0xdc ? 2 : 4, &items)))
			return rc;
		goto container;
	case 0xde:
	case 0xdf:
		if ((rc = s_need(s, b == 0xde ? 2 : 4, &items)))
			return rc;
		items *= 2;
		goto container;
	default: return s_fail(s->why, s->why_len, DTX_EPROTO, "invalid msgpack byte 0x%02x", b);
	}
container:
	if (items > 2 * (uint64_t)DTX_WIRE_MAX_ITEMS)
		return s_fail(s->why, s->why_len, DTX_ETOOBIG,
			      "container of %" PRIu64 " items exceeds %d", items,
			      DTX_WIRE_MAX_ITEMS);
	/* Every element takes at least one byte: a count the frame cannot
	 * hold is refused before anything is allocated from it. */
	if (items > (uint64_t)(s->end - s->p))
		return s_fail(s->why, s->why_len, DTX_EPROTO,
			      "container declares %" PRIu64 " items, frame holds fewer", items);
	for (uint64_t i = 0; i < items; i++)
		if ((rc = s_scan(s, depth + 1)))
			return rc;
	return 0;
}

/* --- decode ----------------------------------------------------------- */

typedef struct {
	dtx_msg_t *msg;
	char *why;
	size_t why_len;
} s_dec_t;

#define FAIL(d, code, ...) s_fail((d)->why, (d)->why_len, (code), __VA_ARGS__)

static bool s_key_is(const msgpack_object *k, const char *name)
{
	size_t n = strlen(name);
	return k->type == MSGPACK_OBJECT_STR && k->via.str.size == n &&
	       memcmp(k->via.str.ptr, name, n) == 0;
}

static char *s_dup(s_dec_t *d, const char *p, size_t n)
{
	char *s = s_alloc(d->msg, n + 1);
	if (!s)
		return NULL;
	memcpy(s, p, n);
	s[n] = '\0';
	return s;
}

/* A string field of at most max bytes with no NUL inside. */
static int s_str(s_dec_t *d, const msgpack_object *o, const char *field, size_t max,
		 const char **out)
{
	if (o->type != MSGPACK_OBJECT_STR)
		return FAIL(d, DTX_EPROTO, "field '%s' must be a string", field);
	if (o->via.str.size > max)
		return FAIL(d, DTX_ETOOBIG, "field '%s' longer than %zu bytes", field, max);
	if (memchr(o->via.str.ptr, '\0', o->via.str.size))
		return FAIL(d, DTX_EPROTO, "field '%s' contains a NUL byte", field);
	if (!(*out = s_dup(d, o->via.str.ptr, o->via.str.size)))
		return DTX_ENOMEM;
	return 0;
}

static int s_int(s_dec_t *d, const msgpack_object *o, const char *field, int64_t min, int64_t max,
		 int64_t *out)
{
	int64_t v;
	if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
		if (o->via.u64 > (uint64_t)INT64_MAX)
			return FAIL(d, DTX_EPROTO, "field '%s' out of range", field);
		v = (int64_t)o->via.u64;
	} else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
		v = o->via.i64;
	} else {
		return FAIL(d, DTX_EPROTO, "field '%s' must be an integer", field);
	}
	if (v < min || v > max)
		return FAIL(d, DTX_EPROTO, "field '%s' out of range", field);
	*out = v;
	return 0;
}

/* A parameter: string or nil; numbers and booleans become their text. */
static int s_param(s_dec_t *d, const msgpack_object *o, const char **out)
{
	char buf[64];
	switch (o->type) {
	case MSGPACK_OBJECT_NIL: *out = NULL; return 0;
	case MSGPACK_OBJECT_STR: return s_str(d, o, "params", DTX_WIRE_MAX_STR, out);
	case MSGPACK_OBJECT_BOOLEAN:
		snprintf(buf, sizeof(buf), "%s", o->via.boolean ? "true" : "false");
		break;
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		snprintf(buf, sizeof(buf), "%" PRIu64, o->via.u64);
		break;
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		snprintf(buf, sizeof(buf), "%" PRId64, o->via.i64);
		break;
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64: snprintf(buf, sizeof(buf), "%.17g", o->via.f64); break;
	default: return FAIL(d, DTX_EPROTO, "a parameter must be a string, number, boolean or nil");
	}
	if (!(*out = s_dup(d, buf, strlen(buf))))
		return DTX_ENOMEM;
	return 0;
}

static int s_stmts(s_dec_t *d, const msgpack_object *o, uint32_t *n_out, dtx_stmt_t **out)
{
	int rc;
	if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size == 0)
		return FAIL(d, DTX_EPROTO, "field 'stmts' must be a non-empty array");
	uint32_t n = o->via.array.size;
	dtx_stmt_t *st = s_alloc(d->msg, n * sizeof(*st));
	if (!st)
		return DTX_ENOMEM;
	for (uint32_t i = 0; i < n; i++) {
		const msgpack_object *m = &o->via.array.ptr[i];
		st[i] = (dtx_stmt_t){.expect = -1};
		if (m->type != MSGPACK_OBJECT_MAP)
			return FAIL(d, DTX_EPROTO, "a statement must be a map");
		for (uint32_t k = 0; k < m->via.map.size; k++) {
			const msgpack_object *key = &m->via.map.ptr[k].key;
			const msgpack_object *val = &m->via.map.ptr[k].val;
			if (s_key_is(key, "sql")) {
				if ((rc = s_str(d, val, "sql", DTX_WIRE_MAX_STR, &st[i].sql)))
					return rc;
			} else if (s_key_is(key, "statement")) {
				if ((rc = s_str(d, val, "statement", DTX_WIRE_MAX_NAME,
						&st[i].statement)))
					return rc;
				if (!dtx_name_valid(st[i].statement))
					return FAIL(
						d, DTX_EPROTO,
						"field 'statement' must be 1 to %d characters of "
						"[A-Za-z0-9_-]",
						DTX_WIRE_MAX_NAME);
			} else if (s_key_is(key, "expect")) {
				if ((rc = s_int(d, val, "expect", 0, INT64_MAX, &st[i].expect)))
					return rc;
			} else if (s_key_is(key, "params")) {
				if (val->type != MSGPACK_OBJECT_ARRAY)
					return FAIL(d, DTX_EPROTO,
						    "field 'params' must be an array");
				st[i].nparams = val->via.array.size;
				st[i].params = s_alloc(d->msg,
						       (st[i].nparams + 1) * sizeof(char *));
				if (!st[i].params)
					return DTX_ENOMEM;
				for (uint32_t p = 0; p < st[i].nparams; p++)
					if ((rc = s_param(d, &val->via.array.ptr[p],
							  &st[i].params[p])))
						return rc;
			} else {
				return FAIL(d, DTX_EPROTO, "unknown field in a statement");
			}
		}
		/* SQL text or the name of a statement the agent defines: one
		 * of them, never both (which one would run?) */
		if (st[i].sql && st[i].statement)
			return FAIL(d, DTX_EPROTO,
				    "a statement has both 'sql' and 'statement': give one");
		if (!st[i].statement && (!st[i].sql || !st[i].sql[0]))
			return FAIL(d, DTX_EPROTO, "a statement has neither 'sql' nor 'statement'");
	}
	*n_out = n;
	*out = st;
	return 0;
}

static int s_branches(s_dec_t *d, const msgpack_object *o)
{
	int rc;
	if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size == 0)
		return FAIL(d, DTX_EPROTO, "field 'branches' must be a non-empty array");
	uint32_t n = o->via.array.size;
	dtx_branch_t *br = s_alloc(d->msg, n * sizeof(*br));
	if (!br)
		return DTX_ENOMEM;
	for (uint32_t i = 0; i < n; i++) {
		const msgpack_object *m = &o->via.array.ptr[i];
		br[i] = (dtx_branch_t){0};
		if (m->type != MSGPACK_OBJECT_MAP)
			return FAIL(d, DTX_EPROTO, "a branch must be a map");
		for (uint32_t k = 0; k < m->via.map.size; k++) {
			const msgpack_object *key = &m->via.map.ptr[k].key;
			const msgpack_object *val = &m->via.map.ptr[k].val;
			if (s_key_is(key, "p")) {
				if ((rc = s_str(d, val, "p", DTX_WIRE_MAX_NAME,
						&br[i].participant)))
					return rc;
			} else if (s_key_is(key, "stmts")) {
				if ((rc = s_stmts(d, val, &br[i].nstmts, &br[i].stmts)))
					return rc;
			} else {
				return FAIL(d, DTX_EPROTO, "unknown field in a branch");
			}
		}
		if (!br[i].participant || !dtx_name_valid(br[i].participant))
			return FAIL(d, DTX_EPROTO, "a branch needs a valid participant name 'p'");
		if (!br[i].stmts)
			return FAIL(d, DTX_EPROTO, "branch '%s' has no 'stmts'", br[i].participant);
		for (uint32_t j = 0; j < i; j++)
			if (strcmp(br[j].participant, br[i].participant) == 0)
				return FAIL(d, DTX_EPROTO, "participant '%s' appears twice",
					    br[i].participant);
	}
	d->msg->nbranches = n;
	d->msg->branches = br;
	return 0;
}

static int s_bool(s_dec_t *d, const msgpack_object *o, const char *field, bool *out)
{
	if (o->type != MSGPACK_OBJECT_BOOLEAN)
		return FAIL(d, DTX_EPROTO, "field '%s' must be a boolean", field);
	*out = o->via.boolean;
	return 0;
}

/* A saga's steps: the shape here, the saga's rules in dtx_saga_check(). */
static int s_steps(s_dec_t *d, const msgpack_object *o)
{
	int rc;
	if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size == 0)
		return FAIL(d, DTX_EPROTO, "field 'steps' must be a non-empty array");
	if (o->via.array.size > DTX_SAGA_MAX_STEPS)
		return FAIL(d, DTX_ETOOBIG, "a saga has at most %d steps", DTX_SAGA_MAX_STEPS);
	uint32_t n = o->via.array.size;
	dtx_step_t *st = s_alloc(d->msg, n * sizeof(*st));
	if (!st)
		return DTX_ENOMEM;
	for (uint32_t i = 0; i < n; i++) {
		const msgpack_object *m = &o->via.array.ptr[i];
		bool pivot = false, retry = false;
		int64_t group = 0;
		st[i] = (dtx_step_t){0};
		if (m->type != MSGPACK_OBJECT_MAP)
			return FAIL(d, DTX_EPROTO, "a step must be a map");
		for (uint32_t k = 0; k < m->via.map.size; k++) {
			const msgpack_object *key = &m->via.map.ptr[k].key;
			const msgpack_object *val = &m->via.map.ptr[k].val;
			if (s_key_is(key, "name"))
				rc = s_str(d, val, "name", DTX_WIRE_MAX_NAME, &st[i].name);
			else if (s_key_is(key, "p"))
				rc = s_str(d, val, "p", DTX_WIRE_MAX_NAME, &st[i].participant);
			else if (s_key_is(key, "stmts"))
				rc = s_stmts(d, val, &st[i].nstmts, &st[i].stmts);
			else if (s_key_is(key, "compensate"))
				rc = s_stmts(d, val, &st[i].ncomp, &st[i].comp);
			else if (s_key_is(key, "pivot"))
				rc = s_bool(d, val, "pivot", &pivot);
			else if (s_key_is(key, "retry"))
				rc = s_bool(d, val, "retry", &retry);
			else if (s_key_is(key, "group"))
				rc = s_int(d, val, "group", 0, UINT32_MAX, &group);
			else
				return FAIL(d, DTX_EPROTO, "unknown field in a step");
			if (rc)
				return rc;
		}
		if (!st[i].participant || !dtx_name_valid(st[i].participant))
			return FAIL(d, DTX_EPROTO, "a step needs a valid participant name 'p'");
		if (!st[i].name || !dtx_name_valid(st[i].name))
			return FAIL(d, DTX_EPROTO,
				    "a step needs a 'name' of 1 to %d characters of [A-Za-z0-9_-]",
				    DTX_WIRE_MAX_NAME);
		if (!st[i].stmts)
			return FAIL(d, DTX_EPROTO, "step '%s' has no 'stmts'", st[i].name);
		if (pivot && retry)
			return FAIL(d, DTX_EPROTO, "step '%s' is both the pivot and retriable",
				    st[i].name);
		st[i].kind = pivot   ? DTX_STEP_PIVOT
			     : retry ? DTX_STEP_RETRIABLE
				     : DTX_STEP_COMPENSABLE;
		st[i].group = (uint32_t)group;
	}
	d->msg->nsteps = n;
	d->msg->steps = st;
	return 0;
}

static int s_check_stmts(uint32_t n, const dtx_stmt_t *st);

int dtx_saga_check(const dtx_step_t *st, uint32_t n, char *why, size_t why_len)
{
	bool pivot = false;
	if (n == 0 || n > DTX_SAGA_MAX_STEPS)
		return s_fail(why, why_len, DTX_EINVAL, "a saga has 1 to %d steps",
			      DTX_SAGA_MAX_STEPS);
	for (uint32_t i = 0; i < n; i++) {
		const dtx_step_t *s = &st[i];
		if (!s->name || !dtx_name_valid(s->name) || !s->participant ||
		    !dtx_name_valid(s->participant) || !s->nstmts ||
		    s_check_stmts(s->nstmts, s->stmts) ||
		    (s->ncomp && s_check_stmts(s->ncomp, s->comp)))
			return s_fail(why, why_len, DTX_EINVAL,
				      "step %u: a name, a participant and statements are needed",
				      i + 1);
		for (uint32_t j = 0; j < i; j++)
			if (strcmp(st[j].name, s->name) == 0)
				return s_fail(why, why_len, DTX_EINVAL, "two steps are named '%s'",
					      s->name);
		switch (s->kind) {
		case DTX_STEP_COMPENSABLE:
			if (i && st[i - 1].kind != DTX_STEP_COMPENSABLE)
				return s_fail(why, why_len, DTX_EINVAL,
					      "step '%s' has a compensation but comes after the "
					      "pivot or a retriable step",
					      s->name);
			if (!s->ncomp)
				return s_fail(why, why_len, DTX_EINVAL,
					      "step '%s' comes before the pivot and has no "
					      "compensation: mark it \"pivot\" or give it one",
					      s->name);
			break;
		case DTX_STEP_PIVOT:
			if (pivot)
				return s_fail(why, why_len, DTX_EINVAL,
					      "step '%s' is a second pivot", s->name);
			if (i && st[i - 1].kind == DTX_STEP_RETRIABLE)
				return s_fail(why, why_len, DTX_EINVAL,
					      "the pivot '%s' comes after a retriable step",
					      s->name);
			pivot = true;
			/* fall through */
		case DTX_STEP_RETRIABLE:
			if (s->ncomp)
				return s_fail(why, why_len, DTX_EINVAL,
					      "step '%s' is the pivot or retriable: it has no "
					      "compensation",
					      s->name);
			break;
		default: return s_fail(why, why_len, DTX_EINVAL, "step '%s': bad kind", s->name);
		}
		if (!s->group)
			continue;
		if (s->kind == DTX_STEP_PIVOT)
			return s_fail(why, why_len, DTX_EINVAL,
				      "the pivot '%s' runs alone: it cannot be in a group",
				      s->name);
		bool cont = i && st[i - 1].group == s->group;
		if (cont && st[i - 1].kind != s->kind)
			return s_fail(why, why_len, DTX_EINVAL,
				      "group %u mixes compensable and retriable steps", s->group);
		for (uint32_t j = 0; !cont && j < i; j++)
			if (st[j].group == s->group)
				return s_fail(why, why_len, DTX_EINVAL,
					      "group %u is not consecutive steps", s->group);
	}
	return 0;
}

static int s_gids(s_dec_t *d, const msgpack_object *o)
{
	int rc;
	if (o->type != MSGPACK_OBJECT_ARRAY)
		return FAIL(d, DTX_EPROTO, "field 'gids' must be an array");
	uint32_t n = o->via.array.size;
	const char **g = s_alloc(d->msg, (n + 1) * sizeof(*g));
	if (!g)
		return DTX_ENOMEM;
	for (uint32_t i = 0; i < n; i++)
		if ((rc = s_str(d, &o->via.array.ptr[i], "gids", 200, &g[i])))
			return rc;
	d->msg->ngids = n;
	d->msg->gids = g;
	return 0;
}

/* An array of strings, each of at most max bytes. */
static int s_strs(s_dec_t *d, const msgpack_object *o, const char *field, size_t max,
		  uint32_t *n_out, const char ***out)
{
	int rc;
	if (o->type != MSGPACK_OBJECT_ARRAY)
		return FAIL(d, DTX_EPROTO, "field '%s' must be an array of strings", field);
	uint32_t n = o->via.array.size;
	const char **v = s_alloc(d->msg, (n + 1) * sizeof(*v));
	if (!v)
		return DTX_ENOMEM;
	for (uint32_t i = 0; i < n; i++)
		if ((rc = s_str(d, &o->via.array.ptr[i], field, max, &v[i])))
			return rc;
	v[n] = NULL;
	*n_out = n;
	*out = v;
	return 0;
}

/*
 * A map of attributes (ADMIN's args, one REPLY row) into *out. A name this
 * decoder does not know is skipped whatever its value; a known one must
 * have its type and appear once.
 */
static int s_kvs(s_dec_t *d, const msgpack_object *o, const char *field, dtx_kvs_t *out)
{
	int rc;
	if (o->type != MSGPACK_OBJECT_MAP)
		return FAIL(d, DTX_EPROTO, "field '%s' must be a map", field);
	if (o->via.map.size > DTX_WIRE_MAX_KV)
		return FAIL(d, DTX_ETOOBIG, "field '%s' holds %" PRIu32 " attributes, more than %d",
			    field, o->via.map.size, DTX_WIRE_MAX_KV);
	dtx_kv_t *kv = s_alloc(d->msg, (o->via.map.size + 1) * sizeof(*kv));
	uint32_t n = 0;
	if (!kv)
		return DTX_ENOMEM;
	for (uint32_t k = 0; k < o->via.map.size; k++) {
		const msgpack_object *key = &o->via.map.ptr[k].key;
		const msgpack_object *val = &o->via.map.ptr[k].val;
		if (key->type != MSGPACK_OBJECT_STR)
			return FAIL(d, DTX_EPROTO, "map keys must be strings");
		dtx_attr_t a = s_attr_lookup(key->via.str.ptr, key->via.str.size);
		if (a == DTX_A_NONE)
			continue;
		const char *name = s_attrs[a].name;
		for (uint32_t j = 0; j < n; j++)
			if (kv[j].attr == a)
				return FAIL(d, DTX_EPROTO, "attribute '%s' twice in '%s'", name,
					    field);
		kv[n] = (dtx_kv_t){.attr = a};
		switch (s_attrs[a].type) {
		case DTX_V_STR: rc = s_str(d, val, name, dtx_attr_max(a), &kv[n].s); break;
		case DTX_V_UINT:
			if (val->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
				return FAIL(d, DTX_EPROTO,
					    "attribute '%s' must be an unsigned integer", name);
			kv[n].u = val->via.u64;
			rc = 0;
			break;
		case DTX_V_INT: rc = s_int(d, val, name, INT64_MIN, INT64_MAX, &kv[n].i); break;
		case DTX_V_BOOL:
			if (val->type != MSGPACK_OBJECT_BOOLEAN)
				return FAIL(d, DTX_EPROTO, "attribute '%s' must be a boolean",
					    name);
			kv[n].b = val->via.boolean;
			rc = 0;
			break;
		case DTX_V_STRS:
			rc = s_strs(d, val, name, dtx_attr_max(a), &kv[n].a.n, &kv[n].a.v);
			break;
		default: rc = FAIL(d, DTX_EPROTO, "attribute '%s' has no type", name);
		}
		if (rc)
			return rc;
		n++;
	}
	out->n = n;
	out->kv = kv;
	return 0;
}

static int s_rows(s_dec_t *d, const msgpack_object *o)
{
	int rc;
	if (o->type != MSGPACK_OBJECT_ARRAY)
		return FAIL(d, DTX_EPROTO, "field 'rows' must be an array");
	uint32_t n = o->via.array.size;
	if (n > DTX_WIRE_MAX_ITEMS)
		return FAIL(d, DTX_ETOOBIG, "more than %d rows", DTX_WIRE_MAX_ITEMS);
	dtx_kvs_t *rows = s_alloc(d->msg, (n + 1) * sizeof(*rows));
	if (!rows)
		return DTX_ENOMEM;
	for (uint32_t i = 0; i < n; i++)
		if ((rc = s_kvs(d, &o->via.array.ptr[i], "rows", &rows[i])))
			return rc;
	d->msg->nrows = n;
	d->msg->rows = rows;
	return 0;
}

/* The field of key into d->msg, its DTX_F_ bit in *bit; a string key this
 * decoder does not know: 0 and *bit 0 (skipped). */
static int s_field(s_dec_t *d, const msgpack_object *key, const msgpack_object *val, uint32_t *bit)
{
	dtx_msg_t *m = d->msg;
	int64_t v;
	int rc;

	if (s_key_is(key, "id")) {
		*bit = DTX_F_ID;
		if (val->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
			return FAIL(d, DTX_EPROTO, "field 'id' must be an unsigned integer");
		m->id = val->via.u64;
		return 0;
	}
	if (s_key_is(key, "gtid")) {
		*bit = DTX_F_GTID;
		return s_str(d, val, "gtid", 200, &m->gtid);
	}
	if (s_key_is(key, "name")) {
		*bit = DTX_F_NAME;
		return s_str(d, val, "name", DTX_WIRE_MAX_NAME, &m->name);
	}
	if (s_key_is(key, "text")) {
		*bit = DTX_F_TEXT;
		return s_str(d, val, "text", DTX_WIRE_MAX_STR, &m->text);
	}
	if (s_key_is(key, "sqlstate")) {
		*bit = DTX_F_SQLSTATE;
		return s_str(d, val, "sqlstate", 5, &m->sqlstate);
	}
	if (s_key_is(key, "code")) {
		*bit = DTX_F_CODE;
		return s_int(d, val, "code", INT32_MIN, INT32_MAX, &m->code);
	}
	if (s_key_is(key, "timeout")) {
		*bit = DTX_F_TIMEOUT;
		if ((rc = s_int(d, val, "timeout", 0, UINT32_MAX, &v)))
			return rc;
		m->timeout_ms = (uint32_t)v;
		return 0;
	}
	if (s_key_is(key, "branches")) {
		*bit = DTX_F_BRANCHES;
		return s_branches(d, val);
	}
	if (s_key_is(key, "stmts")) {
		*bit = DTX_F_STMTS;
		return s_stmts(d, val, &m->nstmts, &m->stmts);
	}
	if (s_key_is(key, "gids")) {
		*bit = DTX_F_GIDS;
		return s_gids(d, val);
	}
	if (s_key_is(key, "key")) {
		*bit = DTX_F_KEY;
		if ((rc = s_str(d, val, "key", DTX_KEY_MAX, &m->key)))
			return rc;
		if (!dtx_key_valid(m->key))
			return FAIL(d, DTX_EPROTO,
				    "field 'key' must be 1 to %d bytes of "
				    "[A-Za-z0-9_.:-]",
				    DTX_KEY_MAX);
		return 0;
	}
	if (s_key_is(key, "args")) {
		*bit = DTX_F_ARGS;
		return s_kvs(d, val, "args", &m->args);
	}
	if (s_key_is(key, "rows")) {
		*bit = DTX_F_ROWS;
		return s_rows(d, val);
	}
	if (s_key_is(key, "event")) {
		*bit = DTX_F_EVENT;
		return s_str(d, val, "event", 32, &m->event);
	}
	if (s_key_is(key, "who")) {
		*bit = DTX_F_WHO;
		return s_str(d, val, "who", DTX_WIRE_MAX_NAME, &m->who);
	}
	if (s_key_is(key, "participants")) {
		*bit = DTX_F_PARTS;
		return s_strs(d, val, "participants", DTX_WIRE_MAX_NAME, &m->nparts, &m->parts);
	}
	if (s_key_is(key, "detail")) {
		*bit = DTX_F_DETAIL;
		return s_str(d, val, "detail", DTX_WIRE_MAX_STR, &m->detail);
	}
	if (s_key_is(key, "steps")) {
		*bit = DTX_F_STEPS;
		return s_steps(d, val);
	}
	if (s_key_is(key, "asked")) {
		*bit = DTX_F_ASKED;
		return s_int(d, val, "asked", DTX_STEP_RUN, DTX_STEP_PROBE, &m->asked);
	}
	if (s_key_is(key, "step")) {
		*bit = DTX_F_STEP;
		if ((rc = s_str(d, val, "step", DTX_WIRE_MAX_NAME, &m->step)))
			return rc;
		if (!dtx_name_valid(m->step))
			return FAIL(d, DTX_EPROTO, "field 'step' is not a valid step name");
		return 0;
	}
	if (s_key_is(key, "at_us")) {
		*bit = DTX_F_AT;
		return s_int(d, val, "at_us", INT64_MIN, INT64_MAX, &m->at_us);
	}
	if (key->type == MSGPACK_OBJECT_STR) {
		*bit = 0; /* a newer peer's field: skipped */
		return 0;
	}
	return FAIL(d, DTX_EPROTO, "map keys must be strings");
}

/* Decode as dtx_msg_decode() does, into an arena whose first chunk is
 * first bytes (0: the usual 4 KiB as it fills). */
static int s_decode(const void *data, size_t len, dtx_msg_t *msg, char *why, size_t why_len,
		    size_t first);

int dtx_msg_decode(const void *data, size_t len, dtx_msg_t *msg, char *why, size_t why_len)
{
	return s_decode(data, len, msg, why, why_len, 0);
}

size_t dtx_msg_footprint(const dtx_msg_t *msg)
{
	size_t n = 0;
	for (const s_chunk_t *c = msg->arena_; c; c = c->next)
		n += sizeof(*c) + c->size;
	return n;
}

/* The bytes msg's arena holds in use (*used), and whether one block of
 * that size would spare much: more than one chunk, or over 256 bytes free. */
static bool s_loose(const dtx_msg_t *msg, size_t *used)
{
	size_t slack = 0, chunks = 0;
	*used = 0;
	for (const s_chunk_t *c = msg->arena_; c; c = c->next, chunks++) {
		*used += c->used;
		slack += c->size - c->used;
	}
	return chunks > 1 || slack >= 256;
}

/* Decoding is deterministic: a second decode of data into one chunk of
 * the bytes the first one used (into msg) makes the same allocations, all
 * in it. Out of memory the second time: msg stands as it is. */
static void s_refit(dtx_msg_t *msg, const void *data, size_t len, size_t used)
{
	dtx_msg_t fit;
	if (s_decode(data, len, &fit, NULL, 0, used) == 0) {
		dtx_msg_clear(msg);
		*msg = fit;
	}
}

int dtx_msg_decode_fit(const void *data, size_t len, dtx_msg_t *msg, char *why, size_t why_len)
{
	size_t used;
	int rc = s_decode(data, len, msg, why, why_len, 0);
	if (!rc && s_loose(msg, &used))
		s_refit(msg, data, len, used);
	return rc;
}

/* Its frame decodes to the same content: one encode, one decode. */
void dtx_msg_refit(dtx_msg_t *msg)
{
	char *buf = NULL;
	size_t len = 0, used;
	if (s_loose(msg, &used) && dtx_msg_encode(msg, &buf, &len) == 0)
		s_refit(msg, buf, len, used);
	free(buf);
}

static int s_decode(const void *data, size_t len, dtx_msg_t *msg, char *why, size_t why_len,
		    size_t first)
{
	s_scan_t scan = {.p = data,
			 .end = (const uint8_t *)data + len,
			 .why = why,
			 .why_len = why_len};
	s_dec_t d = {.msg = msg, .why = why, .why_len = why_len};
	msgpack_unpacked up;
	bool seen_v = false, has_id = false;
	uint64_t id = 0;
	int rc;

	memset(msg, 0, sizeof(*msg));
	if (why && why_len)
		why[0] = '\0';
	if (len == 0)
		return FAIL(&d, DTX_EPROTO, "empty frame");
	if ((rc = s_scan(&scan, 0)))
		return rc;
	if (scan.p != scan.end)
		return FAIL(&d, DTX_EPROTO, "trailing bytes after the message");
	if (first && !s_arena_begin(msg, first))
		return FAIL(&d, DTX_ENOMEM, "out of memory");

	msgpack_unpacked_init(&up);
	if (msgpack_unpack_next(&up, data, len, NULL) != MSGPACK_UNPACK_SUCCESS) {
		rc = FAIL(&d, DTX_EPROTO, "msgpack could not unpack the frame");
		goto out;
	}
	const msgpack_object *root = &up.data;
	if (root->type != MSGPACK_OBJECT_MAP) {
		rc = FAIL(&d, DTX_EPROTO, "a frame must be a map");
		goto out;
	}
	/* The request id first: a refusal echoes it, so that a peer with
	 * several requests in flight knows which one was refused. */
	for (uint32_t i = 0; i < root->via.map.size; i++) {
		const msgpack_object_kv *kv = &root->via.map.ptr[i];
		if (s_key_is(&kv->key, "id") && kv->val.type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
			id = kv->val.via.u64;
			has_id = true;
		}
	}
	/* Version and type first, whatever their position in the map. */
	for (uint32_t i = 0; i < root->via.map.size; i++) {
		const msgpack_object_kv *kv = &root->via.map.ptr[i];
		if (s_key_is(&kv->key, "v")) {
			if (kv->val.type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
				rc = FAIL(&d, DTX_EPROTO, "field 'v' must be an unsigned integer");
				goto out;
			}
			if (kv->val.via.u64 != DTX_WIRE_VERSION) {
				rc = FAIL(&d, DTX_EVERSION,
					  "protocol version %" PRIu64 " not supported (this is %d)",
					  kv->val.via.u64, DTX_WIRE_VERSION);
				goto out;
			}
			seen_v = true;
		} else if (s_key_is(&kv->key, "t")) {
			if (kv->val.type != MSGPACK_OBJECT_STR ||
			    !(msg->type = s_type_lookup(kv->val.via.str.ptr,
							kv->val.via.str.size))) {
				rc = FAIL(&d, DTX_EPROTO, "field 't' is not a known message type");
				goto out;
			}
		}
	}
	if (!seen_v) {
		rc = FAIL(&d, DTX_EPROTO, "frame has no version 'v'");
		goto out;
	}
	if (msg->type == DTX_T_NONE) {
		rc = FAIL(&d, DTX_EPROTO, "frame has no type 't'");
		goto out;
	}
	uint32_t allowed = s_fields[msg->type].required | s_fields[msg->type].optional;
	for (uint32_t i = 0; i < root->via.map.size; i++) {
		const msgpack_object_kv *kv = &root->via.map.ptr[i];
		uint32_t bit = 0;
		if (s_key_is(&kv->key, "v") || s_key_is(&kv->key, "t"))
			continue;
		if ((rc = s_field(&d, &kv->key, &kv->val, &bit)))
			goto out;
		if (!bit)
			continue;
		if (!(bit & allowed)) {
			rc = FAIL(&d, DTX_EPROTO, "field not allowed in %s",
				  dtx_msg_type_str(msg->type));
			goto out;
		}
		if (msg->has & bit) {
			rc = FAIL(&d, DTX_EPROTO, "duplicate field in %s",
				  dtx_msg_type_str(msg->type));
			goto out;
		}
		msg->has |= bit;
	}
	if ((msg->has & s_fields[msg->type].required) != s_fields[msg->type].required) {
		rc = FAIL(&d, DTX_EPROTO, "%s lacks a required field", dtx_msg_type_str(msg->type));
		goto out;
	}
	if ((msg->has & DTX_F_NAME) && !dtx_name_valid(msg->name) && msg->type != DTX_T_ADMIN &&
	    msg->type != DTX_T_OUTCOME) {
		rc = FAIL(&d, DTX_EPROTO, "'%s' is not a valid participant name", msg->name);
		goto out;
	}
	/* An event's names are printed in columns: each must be one word. */
	for (uint32_t i = 0; i < msg->nparts + ((msg->has & DTX_F_WHO) != 0); i++) {
		const char *p = i < msg->nparts ? msg->parts[i] : msg->who;
		if (!dtx_name_valid(p)) {
			rc = FAIL(&d, DTX_EPROTO, "'%s' is not a valid participant name", p);
			goto out;
		}
	}
	rc = 0;
out:
	msgpack_unpacked_destroy(&up);
	if (rc) {
		if (rc == DTX_ENOMEM)
			s_fail(why, why_len, rc, "out of memory");
		dtx_msg_clear(msg);
		if (has_id) {
			msg->id = id;
			msg->has = DTX_F_ID;
		}
	}
	return rc;
}

/* --- encode ----------------------------------------------------------- */

static void s_pack_str(msgpack_packer *pk, const char *s)
{
	size_t n = strlen(s);
	msgpack_pack_str(pk, n);
	msgpack_pack_str_body(pk, s, n);
}

static void s_pack_stmts(msgpack_packer *pk, uint32_t n, const dtx_stmt_t *st)
{
	msgpack_pack_array(pk, n);
	for (uint32_t i = 0; i < n; i++) {
		msgpack_pack_map(pk, 2 + (st[i].expect >= 0));
		s_pack_str(pk, st[i].statement ? "statement" : "sql");
		s_pack_str(pk, st[i].statement ? st[i].statement : st[i].sql);
		s_pack_str(pk, "params");
		msgpack_pack_array(pk, st[i].nparams);
		for (uint32_t p = 0; p < st[i].nparams; p++) {
			if (st[i].params[p])
				s_pack_str(pk, st[i].params[p]);
			else
				msgpack_pack_nil(pk);
		}
		if (st[i].expect >= 0) {
			s_pack_str(pk, "expect");
			msgpack_pack_int64(pk, st[i].expect);
		}
	}
}

static int s_check_stmts(uint32_t n, const dtx_stmt_t *st)
{
	if (n == 0 || n > DTX_WIRE_MAX_ITEMS)
		return DTX_EINVAL;
	for (uint32_t i = 0; i < n; i++) {
		/* exactly one of sql and statement, as the decoder wants */
		if (!st[i].sql == !st[i].statement || st[i].nparams > DTX_WIRE_MAX_ITEMS)
			return DTX_EINVAL;
		if (st[i].sql && (!st[i].sql[0] || strlen(st[i].sql) > DTX_WIRE_MAX_STR))
			return DTX_EINVAL;
		if (st[i].statement && !dtx_name_valid(st[i].statement))
			return DTX_EINVAL;
		if (st[i].nparams && !st[i].params)
			return DTX_EINVAL;
		for (uint32_t p = 0; p < st[i].nparams; p++)
			if (st[i].params[p] && strlen(st[i].params[p]) > DTX_WIRE_MAX_STR)
				return DTX_EINVAL;
	}
	return 0;
}

static int s_check_strs(uint32_t n, const char *const *v, size_t max)
{
	if (n > DTX_WIRE_MAX_ITEMS || (n && !v))
		return DTX_EINVAL;
	for (uint32_t i = 0; i < n; i++)
		if (!v[i] || strlen(v[i]) > max)
			return DTX_EINVAL;
	return 0;
}

/* What the decoder would refuse is not encoded: a bad attribute, one
 * twice, a string over its bound, too many. */
static int s_check_kvs(const dtx_kvs_t *kvs)
{
	if (kvs->n > DTX_WIRE_MAX_KV || (kvs->n && !kvs->kv))
		return DTX_EINVAL;
	for (uint32_t i = 0; i < kvs->n; i++) {
		const dtx_kv_t *kv = &kvs->kv[i];
		if (kv->attr <= DTX_A_NONE || kv->attr >= DTX_A__COUNT)
			return DTX_EINVAL;
		for (uint32_t j = 0; j < i; j++)
			if (kvs->kv[j].attr == kv->attr)
				return DTX_EINVAL;
		if (s_attrs[kv->attr].type == DTX_V_STR &&
		    (!kv->s || strlen(kv->s) > dtx_attr_max(kv->attr)))
			return DTX_EINVAL;
		if (s_attrs[kv->attr].type == DTX_V_STRS &&
		    s_check_strs(kv->a.n, (const char *const *)kv->a.v, dtx_attr_max(kv->attr)))
			return DTX_EINVAL;
	}
	return 0;
}

static void s_pack_strs(msgpack_packer *pk, uint32_t n, const char *const *v)
{
	msgpack_pack_array(pk, n);
	for (uint32_t i = 0; i < n; i++)
		s_pack_str(pk, v[i]);
}

static void s_pack_kvs(msgpack_packer *pk, const dtx_kvs_t *kvs)
{
	msgpack_pack_map(pk, kvs->n);
	for (uint32_t i = 0; i < kvs->n; i++) {
		const dtx_kv_t *kv = &kvs->kv[i];
		s_pack_str(pk, s_attrs[kv->attr].name);
		switch (s_attrs[kv->attr].type) {
		case DTX_V_STR: s_pack_str(pk, kv->s); break;
		case DTX_V_UINT: msgpack_pack_uint64(pk, kv->u); break;
		case DTX_V_INT: msgpack_pack_int64(pk, kv->i); break;
		case DTX_V_BOOL:
			if (kv->b)
				msgpack_pack_true(pk);
			else
				msgpack_pack_false(pk);
			break;
		case DTX_V_STRS: s_pack_strs(pk, kv->a.n, (const char *const *)kv->a.v); break;
		default: msgpack_pack_nil(pk); break; /* not reached: s_check_kvs */
		}
	}
}

int dtx_msg_encode(const dtx_msg_t *m, char **buf, size_t *len)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	uint32_t has = m->has;

	if (m->type <= DTX_T_NONE || m->type >= DTX_T__COUNT)
		return DTX_EINVAL;
	if ((has & s_fields[m->type].required) != s_fields[m->type].required ||
	    (has & ~(s_fields[m->type].required | s_fields[m->type].optional)))
		return DTX_EINVAL;
	if ((has & DTX_F_STMTS) && s_check_stmts(m->nstmts, m->stmts))
		return DTX_EINVAL;
	if (has & DTX_F_BRANCHES) {
		if (m->nbranches == 0 || m->nbranches > DTX_WIRE_MAX_ITEMS)
			return DTX_EINVAL;
		for (uint32_t i = 0; i < m->nbranches; i++)
			if (!dtx_name_valid(m->branches[i].participant) ||
			    s_check_stmts(m->branches[i].nstmts, m->branches[i].stmts))
				return DTX_EINVAL;
	}
	if ((has & DTX_F_GIDS) && m->ngids > DTX_WIRE_MAX_ITEMS)
		return DTX_EINVAL;
	if ((has & DTX_F_STEPS) && dtx_saga_check(m->steps, m->nsteps, NULL, 0))
		return DTX_EINVAL;
	if ((has & DTX_F_STEP) && !dtx_name_valid(m->step))
		return DTX_EINVAL;
	if ((has & DTX_F_KEY) && !dtx_key_valid(m->key))
		return DTX_EINVAL;
	if ((has & DTX_F_TEXT) && strlen(m->text) > DTX_WIRE_MAX_STR)
		return DTX_EINVAL;
	if ((has & DTX_F_ARGS) && s_check_kvs(&m->args))
		return DTX_EINVAL;
	if (has & DTX_F_ROWS) {
		if (m->nrows > DTX_WIRE_MAX_ITEMS || (m->nrows && !m->rows))
			return DTX_EINVAL;
		for (uint32_t i = 0; i < m->nrows; i++)
			if (s_check_kvs(&m->rows[i]))
				return DTX_EINVAL;
	}
	if ((has & DTX_F_EVENT) && (!m->event || strlen(m->event) > 32))
		return DTX_EINVAL;
	if ((has & DTX_F_WHO) && !dtx_name_valid(m->who))
		return DTX_EINVAL;
	if (has & DTX_F_PARTS) {
		if (s_check_strs(m->nparts, m->parts, DTX_WIRE_MAX_NAME))
			return DTX_EINVAL;
		for (uint32_t i = 0; i < m->nparts; i++)
			if (!dtx_name_valid(m->parts[i]))
				return DTX_EINVAL;
	}
	if ((has & DTX_F_DETAIL) && (!m->detail || strlen(m->detail) > DTX_WIRE_MAX_STR))
		return DTX_EINVAL;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 2 + __builtin_popcount(has));
	s_pack_str(&pk, "v");
	msgpack_pack_uint32(&pk, DTX_WIRE_VERSION);
	s_pack_str(&pk, "t");
	s_pack_str(&pk, s_type_names[m->type]);
	if (has & DTX_F_ID) {
		s_pack_str(&pk, "id");
		msgpack_pack_uint64(&pk, m->id);
	}
	if (has & DTX_F_GTID) {
		s_pack_str(&pk, "gtid");
		s_pack_str(&pk, m->gtid);
	}
	if (has & DTX_F_NAME) {
		s_pack_str(&pk, "name");
		s_pack_str(&pk, m->name);
	}
	if (has & DTX_F_TEXT) {
		s_pack_str(&pk, "text");
		s_pack_str(&pk, m->text);
	}
	if (has & DTX_F_SQLSTATE) {
		s_pack_str(&pk, "sqlstate");
		s_pack_str(&pk, m->sqlstate);
	}
	if (has & DTX_F_KEY) {
		s_pack_str(&pk, "key");
		s_pack_str(&pk, m->key);
	}
	if (has & DTX_F_CODE) {
		s_pack_str(&pk, "code");
		msgpack_pack_int64(&pk, m->code);
	}
	if (has & DTX_F_TIMEOUT) {
		s_pack_str(&pk, "timeout");
		msgpack_pack_uint32(&pk, m->timeout_ms);
	}
	if (has & DTX_F_BRANCHES) {
		s_pack_str(&pk, "branches");
		msgpack_pack_array(&pk, m->nbranches);
		for (uint32_t i = 0; i < m->nbranches; i++) {
			msgpack_pack_map(&pk, 2);
			s_pack_str(&pk, "p");
			s_pack_str(&pk, m->branches[i].participant);
			s_pack_str(&pk, "stmts");
			s_pack_stmts(&pk, m->branches[i].nstmts, m->branches[i].stmts);
		}
	}
	if (has & DTX_F_STMTS) {
		s_pack_str(&pk, "stmts");
		s_pack_stmts(&pk, m->nstmts, m->stmts);
	}
	if (has & DTX_F_GIDS) {
		s_pack_str(&pk, "gids");
		s_pack_strs(&pk, m->ngids, m->gids);
	}
	if (has & DTX_F_ARGS) {
		s_pack_str(&pk, "args");
		s_pack_kvs(&pk, &m->args);
	}
	if (has & DTX_F_ROWS) {
		s_pack_str(&pk, "rows");
		msgpack_pack_array(&pk, m->nrows);
		for (uint32_t i = 0; i < m->nrows; i++)
			s_pack_kvs(&pk, &m->rows[i]);
	}
	if (has & DTX_F_EVENT) {
		s_pack_str(&pk, "event");
		s_pack_str(&pk, m->event);
	}
	if (has & DTX_F_WHO) {
		s_pack_str(&pk, "who");
		s_pack_str(&pk, m->who);
	}
	if (has & DTX_F_PARTS) {
		s_pack_str(&pk, "participants");
		s_pack_strs(&pk, m->nparts, m->parts);
	}
	if (has & DTX_F_DETAIL) {
		s_pack_str(&pk, "detail");
		s_pack_str(&pk, m->detail);
	}
	if (has & DTX_F_STEPS) {
		s_pack_str(&pk, "steps");
		msgpack_pack_array(&pk, m->nsteps);
		for (uint32_t i = 0; i < m->nsteps; i++) {
			const dtx_step_t *st = &m->steps[i];
			msgpack_pack_map(&pk, 3 + (st->ncomp > 0) +
						      (st->kind != DTX_STEP_COMPENSABLE) +
						      (st->group > 0));
			s_pack_str(&pk, "name");
			s_pack_str(&pk, st->name);
			s_pack_str(&pk, "p");
			s_pack_str(&pk, st->participant);
			s_pack_str(&pk, "stmts");
			s_pack_stmts(&pk, st->nstmts, st->stmts);
			if (st->ncomp) {
				s_pack_str(&pk, "compensate");
				s_pack_stmts(&pk, st->ncomp, st->comp);
			}
			if (st->kind != DTX_STEP_COMPENSABLE) {
				s_pack_str(&pk, st->kind == DTX_STEP_PIVOT ? "pivot" : "retry");
				msgpack_pack_true(&pk);
			}
			if (st->group) {
				s_pack_str(&pk, "group");
				msgpack_pack_uint32(&pk, st->group);
			}
		}
	}
	if (has & DTX_F_ASKED) {
		s_pack_str(&pk, "asked");
		msgpack_pack_int64(&pk, m->asked);
	}
	if (has & DTX_F_STEP) {
		s_pack_str(&pk, "step");
		s_pack_str(&pk, m->step);
	}
	if (has & DTX_F_AT) {
		s_pack_str(&pk, "at_us");
		msgpack_pack_int64(&pk, m->at_us);
	}
	if (!sb.data) {
		msgpack_sbuffer_destroy(&sb);
		return DTX_ENOMEM;
	}
	*len = sb.size;
	*buf = msgpack_sbuffer_release(&sb);
	return 0;
}
