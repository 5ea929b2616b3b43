/*
 * dtx_admin.c — the admin command table, request and reply builders, and
 * dtxctl's renderings of replies and events. The wire itself is
 * dtx_wire.c's: this file never sees msgpack.
 */
#include "config.h"

#include <inttypes.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dtx_admin.h"
#include "dtx_util.h"

/* --- the command table ------------------------------------------------ */

static const char *const s_list_states[] = {
	"active",       "preparing", "deciding",    "committing", "committed", "aborting",
	"aborted",      "heuristic", "in-doubt",    "stuck",      "running",   "forward",
	"compensating", "completed", "compensated", NULL,
};
static const char *const s_verbs[] = {"commit", "abort", NULL};

#define GTID_ARG {DTX_A_GTID, DTX_ARG_REQUIRED | DTX_ARG_POSITIONAL, NULL, NULL}
#define WHO_ARG {DTX_A_WHO, DTX_ARG_REQUIRED | DTX_ARG_IMPLICIT, NULL, NULL}

/* The order is dtxctl help's. */
const dtx_admin_cmd_t dtx_admin_cmds[] = {
	{"status",
	 0,
	 "status",
	 "uptime, transactions in flight by state, participants and their liveness",
	 0,
	 {{0}}},
	{"stats",
	 0,
	 "stats",
	 "the numbers of the coordinator's /metrics endpoint, for a person",
	 0,
	 {{0}}},
	{"list",
	 0,
	 "list [--state STATE]",
	 "transactions in the log, or those in STATE, in-doubt branches or stuck ones",
	 1,
	 {{DTX_A_STATE, 0, "--state", s_list_states}}},
	{"show",
	 0,
	 "show GTID",
	 "every logged transition of GTID with its time, and its branches",
	 1,
	 {GTID_ARG}},
	{"resolve",
	 DTX_CMD_CHANGES,
	 "resolve GTID --commit|--abort [--force]",
	 "decide GTID by hand (a heuristic decision, logged with who and when)",
	 4,
	 {GTID_ARG,
	  {DTX_A_VERB, DTX_ARG_REQUIRED | DTX_ARG_VALUE_FLAG, NULL, s_verbs},
	  {DTX_A_FORCE, 0, "--force", NULL},
	  WHO_ARG}},
	{"forget",
	 DTX_CMD_CHANGES,
	 "forget GTID",
	 "stop driving a decided transaction whose branches cannot be reached",
	 2,
	 {GTID_ARG, WHO_ARG}},
	{"watch", 0, "watch", "the endpoint of the live stream of transaction events", 0, {{0}}},
};
const unsigned dtx_admin_ncmds = sizeof(dtx_admin_cmds) / sizeof(dtx_admin_cmds[0]);

const dtx_admin_cmd_t *dtx_admin_cmd_find(const char *name)
{
	for (unsigned i = 0; name && i < dtx_admin_ncmds; i++)
		if (strcmp(dtx_admin_cmds[i].name, name) == 0)
			return &dtx_admin_cmds[i];
	return NULL;
}

static bool s_among(const char *const *values, const char *s)
{
	for (; *values; values++)
		if (strcmp(*values, s) == 0)
			return true;
	return false;
}

static void s_why(char *why, size_t why_len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void s_why(char *why, size_t why_len, const char *fmt, ...)
{
	va_list ap;
	if (!why || !why_len)
		return;
	va_start(ap, fmt);
	vsnprintf(why, why_len, fmt, ap);
	va_end(ap);
}

/* "active, preparing, ..." */
static void s_join(char *buf, size_t len, const char *const *values)
{
	size_t off = 0;
	buf[0] = '\0';
	for (unsigned i = 0; values[i] && off < len; i++)
		off += (size_t)snprintf(buf + off, len - off, "%s%s", i ? ", " : "", values[i]);
}

/* args against cmd: the one check both sides make. */
static int s_check_args(const dtx_admin_cmd_t *cmd, const dtx_kvs_t *args, char *why,
			size_t why_len)
{
	for (uint32_t i = 0; i < args->n; i++) {
		const dtx_admin_arg_t *a = NULL;
		for (unsigned j = 0; j < cmd->nargs && !a; j++)
			if (cmd->args[j].attr == args->kv[i].attr)
				a = &cmd->args[j];
		if (!a) {
			s_why(why, why_len, "%s takes no '%s'", cmd->name,
			      dtx_attr_name(args->kv[i].attr));
			return DTX_EINVAL;
		}
		if (a->values && !s_among(a->values, args->kv[i].s)) {
			char v[256];
			s_join(v, sizeof(v), a->values);
			s_why(why, why_len, "%s: '%s' must be one of %s", cmd->name,
			      dtx_attr_name(a->attr), v);
			return DTX_EINVAL;
		}
	}
	for (unsigned j = 0; j < cmd->nargs; j++)
		if ((cmd->args[j].flags & DTX_ARG_REQUIRED) &&
		    !dtx_kvs_find(args, cmd->args[j].attr)) {
			s_why(why, why_len, "%s needs '%s'", cmd->name,
			      dtx_attr_name(cmd->args[j].attr));
			return DTX_EINVAL;
		}
	return 0;
}

int dtx_admin_check(const dtx_msg_t *req, const dtx_admin_cmd_t **cmd, char *why, size_t why_len)
{
	const dtx_admin_cmd_t *c;
	dtx_kvs_t none = {0};
	int rc;

	if (cmd)
		*cmd = NULL;
	if (req->type != DTX_T_ADMIN || !(req->has & DTX_F_NAME)) {
		s_why(why, why_len, "not an admin request");
		return DTX_EINVAL;
	}
	if (!(c = dtx_admin_cmd_find(req->name))) {
		s_why(why, why_len, "unknown admin command '%s'", req->name);
		return DTX_EINVAL;
	}
	if ((rc = s_check_args(c, (req->has & DTX_F_ARGS) ? &req->args : &none, why, why_len)))
		return rc;
	if (cmd)
		*cmd = c;
	return 0;
}

/* --- reading attribute lists ------------------------------------------ */

const dtx_kv_t *dtx_kvs_find(const dtx_kvs_t *kvs, dtx_attr_t attr)
{
	for (uint32_t i = 0; kvs && i < kvs->n; i++)
		if (kvs->kv[i].attr == attr)
			return &kvs->kv[i];
	return NULL;
}

/* attr of kvs if it has type t. */
static const dtx_kv_t *s_typed(const dtx_kvs_t *kvs, dtx_attr_t attr, dtx_vtype_t t)
{
	const dtx_kv_t *kv = dtx_kvs_find(kvs, attr);
	return kv && dtx_attr_type(attr) == t ? kv : NULL;
}

const char *dtx_kvs_str(const dtx_kvs_t *kvs, dtx_attr_t attr)
{
	const dtx_kv_t *kv = s_typed(kvs, attr, DTX_V_STR);
	return kv ? kv->s : NULL;
}

uint64_t dtx_kvs_u64(const dtx_kvs_t *kvs, dtx_attr_t attr, uint64_t dflt)
{
	const dtx_kv_t *kv = s_typed(kvs, attr, DTX_V_UINT);
	return kv ? kv->u : dflt;
}

int64_t dtx_kvs_i64(const dtx_kvs_t *kvs, dtx_attr_t attr, int64_t dflt)
{
	const dtx_kv_t *kv = s_typed(kvs, attr, DTX_V_INT);
	return kv ? kv->i : dflt;
}

bool dtx_kvs_bool(const dtx_kvs_t *kvs, dtx_attr_t attr, bool dflt)
{
	const dtx_kv_t *kv = s_typed(kvs, attr, DTX_V_BOOL);
	return kv ? kv->b : dflt;
}

uint32_t dtx_kvs_strs(const dtx_kvs_t *kvs, dtx_attr_t attr, const char *const **v)
{
	const dtx_kv_t *kv = s_typed(kvs, attr, DTX_V_STRS);
	*v = kv ? (const char *const *)kv->a.v : NULL;
	return kv ? kv->a.n : 0;
}

bool dtx_kvs_strs_has(const dtx_kvs_t *kvs, dtx_attr_t attr, const char *s)
{
	const char *const *v;
	uint32_t n = dtx_kvs_strs(kvs, attr, &v);
	for (uint32_t i = 0; i < n; i++)
		if (strcmp(v[i], s) == 0)
			return true;
	return false;
}

const dtx_kvs_t *dtx_reply_find(const dtx_msg_t *reply, const char *kind)
{
	for (uint32_t i = 0; i < reply->nrows; i++) {
		const char *k = dtx_kvs_str(&reply->rows[i], DTX_A_KIND);
		if (k && strcmp(k, kind) == 0)
			return &reply->rows[i];
	}
	return NULL;
}

const char *dtx_admin_arg_str(const dtx_msg_t *req, dtx_attr_t attr)
{
	return (req->has & DTX_F_ARGS) ? dtx_kvs_str(&req->args, attr) : NULL;
}

bool dtx_admin_arg_bool(const dtx_msg_t *req, dtx_attr_t attr)
{
	return (req->has & DTX_F_ARGS) && dtx_kvs_bool(&req->args, attr, false);
}

uint64_t dtx_admin_arg_u64(const dtx_msg_t *req, dtx_attr_t attr)
{
	return (req->has & DTX_F_ARGS) ? dtx_kvs_u64(&req->args, attr, 0) : 0;
}

/* --- rows under construction ------------------------------------------ */

/*
 * Rows, their attribute arrays and string arrays grow by doubling (a
 * count that is a power of two is a full array); strings are copied into
 * blocks freed together.
 */
typedef struct s_block {
	struct s_block *next;
	max_align_t data[];
} s_block_t;

typedef struct {
	dtx_kvs_t *rows;
	uint32_t nrows;
	s_block_t *blocks;
	int err;
} s_build_t;

static int s_err(s_build_t *b, int code)
{
	if (!b->err)
		b->err = code;
	return b->err;
}

static char *s_copy(s_build_t *b, const char *s)
{
	size_t n = strlen(s) + 1;
	s_block_t *blk = malloc(sizeof(*blk) + n);
	if (!blk)
		return NULL;
	blk->next = b->blocks;
	b->blocks = blk;
	return memcpy(blk->data, s, n);
}

/* Room for element n of an array of n elements of size sz at *p. */
static int s_grow(void **p, uint32_t n, size_t sz)
{
	if (n >= 8 && (n & (n - 1)))
		return 0;
	void *q = realloc(*p, (n < 8 ? 8 : 2 * (size_t)n) * sz);
	if (!q)
		return DTX_ENOMEM;
	*p = q;
	return 0;
}

static void s_build_free(s_build_t *b)
{
	for (uint32_t r = 0; r < b->nrows; r++) {
		for (uint32_t i = 0; i < b->rows[r].n; i++)
			if (dtx_attr_type(b->rows[r].kv[i].attr) == DTX_V_STRS)
				free(b->rows[r].kv[i].a.v);
		free(b->rows[r].kv);
	}
	free(b->rows);
	while (b->blocks) {
		s_block_t *next = b->blocks->next;
		free(b->blocks);
		b->blocks = next;
	}
	memset(b, 0, sizeof(*b));
}

static int s_build_row(s_build_t *b)
{
	if (b->err)
		return b->err;
	if (b->nrows >= DTX_WIRE_MAX_ITEMS)
		return s_err(b, DTX_ETOOBIG);
	if (s_grow((void **)&b->rows, b->nrows, sizeof(*b->rows)))
		return s_err(b, DTX_ENOMEM);
	b->rows[b->nrows++] = (dtx_kvs_t){0};
	return 0;
}

/* A new attribute attr of type t in the current row, or NULL (the error
 * kept). */
static dtx_kv_t *s_build_kv(s_build_t *b, dtx_attr_t attr, dtx_vtype_t t)
{
	if (b->err)
		return NULL;
	if (!b->nrows || dtx_attr_type(attr) != t || t == DTX_V_NONE) {
		s_err(b, DTX_EINVAL);
		return NULL;
	}
	dtx_kvs_t *row = &b->rows[b->nrows - 1];
	if (dtx_kvs_find(row, attr)) {
		s_err(b, DTX_EINVAL);
		return NULL;
	}
	if (row->n >= DTX_WIRE_MAX_KV) {
		s_err(b, DTX_ETOOBIG);
		return NULL;
	}
	if (s_grow((void **)&row->kv, row->n, sizeof(*row->kv))) {
		s_err(b, DTX_ENOMEM);
		return NULL;
	}
	dtx_kv_t *kv = &row->kv[row->n++];
	*kv = (dtx_kv_t){.attr = attr};
	return kv;
}

static int s_build_str(s_build_t *b, dtx_attr_t attr, const char *s)
{
	if (!b->err && (!s || strlen(s) > dtx_attr_max(attr)))
		return s_err(b, DTX_EINVAL);
	dtx_kv_t *kv = s_build_kv(b, attr, DTX_V_STR);
	if (!kv)
		return b->err;
	if (!(kv->s = s_copy(b, s)))
		return s_err(b, DTX_ENOMEM);
	return 0;
}

/* Append s to the array of kv. */
static int s_build_push_to(s_build_t *b, dtx_kv_t *kv, const char *s)
{
	if (!s || strlen(s) > dtx_attr_max(kv->attr))
		return s_err(b, DTX_EINVAL);
	if (kv->a.n >= DTX_WIRE_MAX_ITEMS)
		return s_err(b, DTX_ETOOBIG);
	if (s_grow((void **)&kv->a.v, kv->a.n, sizeof(*kv->a.v)))
		return s_err(b, DTX_ENOMEM);
	if (!(kv->a.v[kv->a.n] = s_copy(b, s)))
		return s_err(b, DTX_ENOMEM);
	kv->a.n++;
	return 0;
}

/* The string array attr of the current row, started empty if absent. */
static dtx_kv_t *s_build_strs_kv(s_build_t *b, dtx_attr_t attr)
{
	if (b->err)
		return NULL;
	if (b->nrows) {
		dtx_kv_t *kv = (dtx_kv_t *)dtx_kvs_find(&b->rows[b->nrows - 1], attr);
		if (kv && dtx_attr_type(attr) == DTX_V_STRS)
			return kv;
	}
	return s_build_kv(b, attr, DTX_V_STRS);
}

static int s_build_strs(s_build_t *b, dtx_attr_t attr, uint32_t n, const char *const *v)
{
	if (!b->err && b->nrows && dtx_kvs_find(&b->rows[b->nrows - 1], attr))
		return s_err(b, DTX_EINVAL);
	dtx_kv_t *kv = s_build_strs_kv(b, attr);
	for (uint32_t i = 0; kv && i < n && !b->err; i++)
		s_build_push_to(b, kv, v[i]);
	return b->err;
}

/* --- replies ---------------------------------------------------------- */

struct dtx_reply {
	uint64_t id;
	int code;
	char *text;
	s_build_t b;
};

dtx_reply_t *dtx_reply_new(uint64_t id)
{
	dtx_reply_t *self = calloc(1, sizeof(*self));
	if (self)
		self->id = id;
	return self;
}

void dtx_reply_destroy(dtx_reply_t **self_p)
{
	if (!*self_p)
		return;
	s_build_free(&(*self_p)->b);
	free((*self_p)->text);
	free(*self_p);
	*self_p = NULL;
}

int dtx_reply_row(dtx_reply_t *self, const char *kind)
{
	int rc = s_build_row(&self->b);
	return rc ? rc : s_build_str(&self->b, DTX_A_KIND, kind);
}

int dtx_reply_str(dtx_reply_t *self, dtx_attr_t attr, const char *s)
{
	return s_build_str(&self->b, attr, s);
}

int dtx_reply_u64(dtx_reply_t *self, dtx_attr_t attr, uint64_t v)
{
	dtx_kv_t *kv = s_build_kv(&self->b, attr, DTX_V_UINT);
	if (kv)
		kv->u = v;
	return self->b.err;
}

int dtx_reply_i64(dtx_reply_t *self, dtx_attr_t attr, int64_t v)
{
	dtx_kv_t *kv = s_build_kv(&self->b, attr, DTX_V_INT);
	if (kv)
		kv->i = v;
	return self->b.err;
}

int dtx_reply_bool(dtx_reply_t *self, dtx_attr_t attr, bool v)
{
	dtx_kv_t *kv = s_build_kv(&self->b, attr, DTX_V_BOOL);
	if (kv)
		kv->b = v;
	return self->b.err;
}

int dtx_reply_strs(dtx_reply_t *self, dtx_attr_t attr, uint32_t n, const char *const *v)
{
	return s_build_strs(&self->b, attr, n, v);
}

int dtx_reply_push(dtx_reply_t *self, dtx_attr_t attr, const char *s)
{
	dtx_kv_t *kv = s_build_strs_kv(&self->b, attr);
	return kv ? s_build_push_to(&self->b, kv, s) : self->b.err;
}

int dtx_reply_strs_empty(dtx_reply_t *self, dtx_attr_t attr)
{
	s_build_strs_kv(&self->b, attr);
	return self->b.err;
}

void dtx_reply_code(dtx_reply_t *self, int code)
{
	self->code = code;
}

static int s_vtext(dtx_reply_t *self, const char *fmt, va_list ap)
{
	va_list again;
	char *t;
	int n;

	if (self->b.err)
		return self->b.err;
	va_copy(again, ap);
	n = vsnprintf(NULL, 0, fmt, again);
	va_end(again);
	/* A summary cut to the frame's bound beats no reply at all. */
	if (n < 0 || !(t = malloc((n > DTX_WIRE_MAX_STR ? DTX_WIRE_MAX_STR : (size_t)n) + 1)))
		return s_err(&self->b, DTX_ENOMEM);
	vsnprintf(t, (n > DTX_WIRE_MAX_STR ? DTX_WIRE_MAX_STR : (size_t)n) + 1, fmt, ap);
	free(self->text);
	self->text = t;
	return 0;
}

int dtx_reply_text(dtx_reply_t *self, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = s_vtext(self, fmt, ap);
	va_end(ap);
	return rc;
}

int dtx_reply_error(dtx_reply_t *self, int code, const char *fmt, ...)
{
	va_list ap;
	self->code = code;
	va_start(ap, fmt);
	int rc = s_vtext(self, fmt, ap);
	va_end(ap);
	return rc;
}

int dtx_reply_failed(const dtx_reply_t *self)
{
	return self->b.err;
}

uint32_t dtx_reply_nrows(const dtx_reply_t *self)
{
	return self->b.nrows;
}

int dtx_reply_msg(const dtx_reply_t *self, dtx_msg_t *out)
{
	*out = (dtx_msg_t){.type = DTX_T_REPLY,
			   .has = DTX_F_ID | DTX_F_CODE | DTX_F_ROWS,
			   .id = self->id,
			   .code = self->code,
			   .nrows = self->b.nrows,
			   .rows = self->b.rows};
	if (self->text) {
		out->text = self->text;
		out->has |= DTX_F_TEXT;
	}
	return self->b.err;
}

int dtx_reply_encode(const dtx_reply_t *self, char **buf, size_t *len)
{
	dtx_msg_t m;
	int rc = dtx_reply_msg(self, &m);
	return rc ? rc : dtx_msg_encode(&m, buf, len);
}

/* --- requests --------------------------------------------------------- */

struct dtx_request {
	uint64_t id;
	char *cmd;
	s_build_t b;   /* one row: the args */
};

dtx_request_t *dtx_request_new(const char *cmd, uint64_t id)
{
	dtx_request_t *self = calloc(1, sizeof(*self));
	if (!self)
		return NULL;
	self->id = id;
	if (!cmd || !(self->cmd = strdup(cmd)) || s_build_row(&self->b)) {
		dtx_request_destroy(&self);
		return NULL;
	}
	return self;
}

void dtx_request_destroy(dtx_request_t **self_p)
{
	if (!*self_p)
		return;
	s_build_free(&(*self_p)->b);
	free((*self_p)->cmd);
	free(*self_p);
	*self_p = NULL;
}

int dtx_request_str(dtx_request_t *self, dtx_attr_t attr, const char *s)
{
	return s_build_str(&self->b, attr, s);
}

int dtx_request_u64(dtx_request_t *self, dtx_attr_t attr, uint64_t v)
{
	dtx_kv_t *kv = s_build_kv(&self->b, attr, DTX_V_UINT);
	if (kv)
		kv->u = v;
	return self->b.err;
}

int dtx_request_bool(dtx_request_t *self, dtx_attr_t attr, bool v)
{
	dtx_kv_t *kv = s_build_kv(&self->b, attr, DTX_V_BOOL);
	if (kv)
		kv->b = v;
	return self->b.err;
}

int dtx_request_encode(const dtx_request_t *self, char **buf, size_t *len)
{
	dtx_msg_t m = {.type = DTX_T_ADMIN,
		       .has = DTX_F_ID | DTX_F_NAME | DTX_F_ARGS,
		       .id = self->id,
		       .name = self->cmd,
		       .args = self->b.rows[0]};
	if (self->b.err)
		return self->b.err;
	if (dtx_admin_check(&m, NULL, NULL, 0))
		return DTX_EINVAL;
	return dtx_msg_encode(&m, buf, len);
}

/* The upper-case placeholder of a positional argument: "GTID". */
static void s_placeholder(char *buf, size_t len, dtx_attr_t attr)
{
	snprintf(buf, len, "%s", dtx_attr_name(attr));
	for (char *p = buf; *p; p++)
		if (*p >= 'a' && *p <= 'z')
			*p = (char)(*p - 'a' + 'A');
}

int dtx_request_argv(dtx_request_t **out, uint64_t id, int argc, char *const *argv, const char *who,
		     char *why, size_t why_len)
{
	const dtx_admin_cmd_t *cmd = argc > 0 ? dtx_admin_cmd_find(argv[0]) : NULL;
	dtx_request_t *rq = NULL;
	unsigned next_pos = 0;
	char name[64];
	int rc = DTX_EINVAL;

	*out = NULL;
	if (!cmd) {
		s_why(why, why_len, "no admin command '%s'", argc > 0 ? argv[0] : "");
		return DTX_EINVAL;
	}
	if (!(rq = dtx_request_new(cmd->name, id)))
		return DTX_ENOMEM;
	for (int i = 1; i < argc; i++) {
		const char *w = argv[i];
		const dtx_admin_arg_t *a = NULL;
		const char *val = NULL;
		bool flag = strncmp(w, "--", 2) == 0;
		for (unsigned j = 0; j < cmd->nargs && !a; j++) {
			const dtx_admin_arg_t *c = &cmd->args[j];
			if (flag && c->option && strcmp(c->option, w) == 0)
				a = c;
			else if (flag && (c->flags & DTX_ARG_VALUE_FLAG) &&
				 s_among(c->values, w + 2))
				a = c, val = w + 2;
		}
		if (!a && !flag) {
			while (next_pos < cmd->nargs &&
			       !(cmd->args[next_pos].flags & DTX_ARG_POSITIONAL))
				next_pos++;
			if (next_pos < cmd->nargs)
				a = &cmd->args[next_pos++], val = w;
		}
		if (!a) {
			s_why(why, why_len, "%s: unexpected '%s'", cmd->name, w);
			goto out;
		}
		if (dtx_kvs_find(&rq->b.rows[0], a->attr)) {
			s_why(why, why_len, "%s: '%s' repeats or contradicts an earlier word",
			      cmd->name, w);
			goto out;
		}
		if (dtx_attr_type(a->attr) == DTX_V_BOOL) {
			dtx_request_bool(rq, a->attr, true);
			continue;
		}
		if (!val) {
			if (i + 1 >= argc) {
				s_why(why, why_len, "%s: %s needs a value", cmd->name, w);
				goto out;
			}
			val = argv[++i];
		}
		if (a->values && !s_among(a->values, val)) {
			char v[256];
			s_join(v, sizeof(v), a->values);
			s_why(why, why_len, "%s: %s takes one of %s", cmd->name,
			      a->option ? a->option : dtx_attr_name(a->attr), v);
			goto out;
		}
		if (dtx_request_str(rq, a->attr, val)) {
			rc = rq->b.err;
			s_why(why, why_len, "%s: '%s': %s", cmd->name, val,
			      rc == DTX_EINVAL ? "too long" : dtx_strerror(rc));
			goto out;
		}
	}
	for (unsigned j = 0; j < cmd->nargs; j++) {
		const dtx_admin_arg_t *a = &cmd->args[j];
		if ((a->flags & DTX_ARG_IMPLICIT) && who && dtx_request_str(rq, a->attr, who)) {
			rc = rq->b.err;
			s_why(why, why_len, "%s: '%s': %s", cmd->name, who,
			      rc == DTX_EINVAL ? "too long" : dtx_strerror(rc));
			goto out;
		}
		if (!(a->flags & DTX_ARG_REQUIRED) || dtx_kvs_find(&rq->b.rows[0], a->attr))
			continue;
		if (a->flags & DTX_ARG_POSITIONAL) {
			s_placeholder(name, sizeof(name), a->attr);
			s_why(why, why_len, "%s: needs %s", cmd->name, name);
		} else if (a->flags & DTX_ARG_VALUE_FLAG) {
			size_t off = 0;
			for (unsigned v = 0; a->values[v] && off < sizeof(name); v++)
				off += (size_t)snprintf(name + off, sizeof(name) - off, "%s--%s",
							!v                 ? ""
							: a->values[v + 1] ? ", "
									   : " or ",
							a->values[v]);
			s_why(why, why_len, "%s: needs %s", cmd->name, name);
		} else {
			s_why(why, why_len, "%s: needs '%s'", cmd->name, dtx_attr_name(a->attr));
		}
		goto out;
	}
	if ((rc = rq->b.err)) {
		s_why(why, why_len, "%s: %s", cmd->name, dtx_strerror(rc));
		goto out;
	}
	*out = rq;
	rq = NULL;
out:
	dtx_request_destroy(&rq);
	return rc;
}

/* --- text ------------------------------------------------------------- */

static const char *s_kind(const dtx_kvs_t *row)
{
	const char *k = dtx_kvs_str(row, DTX_A_KIND);
	return k ? k : "";
}

static bool s_is(const dtx_kvs_t *row, const char *kind)
{
	return strcmp(s_kind(row), kind) == 0;
}

#define U(row, a) dtx_kvs_u64((row), (a), 0)
#define S(row, a) (dtx_kvs_str((row), (a)) ? dtx_kvs_str((row), (a)) : "")

/* ",a,b" after first: the participants of a row, as the prose joined them. */
static void s_print_strs(FILE *f, const dtx_kvs_t *row, dtx_attr_t attr, const char *first,
			 const char *sep)
{
	const char *const *v;
	uint32_t n = dtx_kvs_strs(row, attr, &v);
	for (uint32_t i = 0; i < n; i++)
		fprintf(f, "%s%s", i ? sep : first, v[i]);
}

/* " p50 <= 2 ms", or beyond the histogram's last bound " p50 > 10 s". */
static void s_print_quantile(FILE *f, const char *what, uint64_t us)
{
	if (us == DTX_A_INF)
		fprintf(f, " %s > 10 s", what);
	else
		fprintf(f, " %s <= %g ms", what, (double)us / 1000);
}

static const char *s_allow(const dtx_kvs_t *row)
{
	return dtx_kvs_bool(row, DTX_A_ALLOWED, true) ? "" : " (removed from the allow-list)";
}

static void s_text_status(FILE *f, const dtx_msg_t *r)
{
	for (uint32_t i = 0; i < r->nrows; i++) {
		const dtx_kvs_t *row = &r->rows[i];
		if (s_is(row, "coordinator")) {
			fprintf(f, "coordinator %s epoch %" PRIu64 " up %" PRIu64 " s\n",
				S(row, DTX_A_COORDINATOR), U(row, DTX_A_EPOCH),
				U(row, DTX_A_UPTIME_S));
		} else if (s_is(row, "in_flight")) {
			fprintf(f,
				"in flight %" PRIu64 ": active %" PRIu64 " preparing %" PRIu64
				" committing %" PRIu64 " aborting %" PRIu64 "\n",
				U(row, DTX_A_COUNT), U(row, DTX_A_ACTIVE), U(row, DTX_A_PREPARING),
				U(row, DTX_A_COMMITTING), U(row, DTX_A_ABORTING));
		} else if (s_is(row, "transactions")) {
			fprintf(f,
				"since start: committed %" PRIu64 " aborted %" PRIu64
				" heuristic %" PRIu64 "\n",
				U(row, DTX_A_COMMITTED), U(row, DTX_A_ABORTED),
				U(row, DTX_A_HEURISTIC));
		} else if (s_is(row, "group_commits")) {
			fprintf(f,
				"group commits %" PRIu64 " records %" PRIu64 " decisions %" PRIu64
				"\n",
				U(row, DTX_A_COUNT), U(row, DTX_A_RECORDS),
				U(row, DTX_A_DECISIONS));
		} else if (s_is(row, "participant")) {
			if (dtx_kvs_bool(row, DTX_A_UP, false))
				fprintf(f, "participant %s up, last seen %" PRIu64 " ms ago%s\n",
					S(row, DTX_A_PARTICIPANT), U(row, DTX_A_LAST_SEEN_MS),
					s_allow(row));
			else
				fprintf(f, "participant %s down%s\n", S(row, DTX_A_PARTICIPANT),
					s_allow(row));
		} else if (s_is(row, "log") && dtx_kvs_find(row, DTX_A_HEURISTIC)) {
			uint64_t h = U(row, DTX_A_HEURISTIC);
			fprintf(f, "heuristic outcomes in the log: %" PRIu64 "%s\n", h,
				h ? " (dtxctl list --state heuristic)" : "");
		} else if (s_is(row, "in_doubt")) {
			fprintf(f, "in doubt (%s): %s@%s\n",
				dtx_kvs_bool(row, DTX_A_PRUNED, false)
					? "pruned from this log: it may have committed"
					: "epoch unknown to this log",
				S(row, DTX_A_GID), S(row, DTX_A_PARTICIPANT));
		}
	}
}

static void s_text_stats(FILE *f, const dtx_msg_t *r)
{
	for (uint32_t i = 0; i < r->nrows; i++) {
		const dtx_kvs_t *row = &r->rows[i];
		if (s_is(row, "transactions")) {
			fprintf(f,
				"transactions: committed %" PRIu64 ", aborted %" PRIu64
				", heuristic %" PRIu64 "\n",
				U(row, DTX_A_COMMITTED), U(row, DTX_A_ABORTED),
				U(row, DTX_A_HEURISTIC));
		} else if (s_is(row, "in_flight")) {
			fprintf(f,
				"in flight: %" PRIu64 " (active %" PRIu64 ", preparing %" PRIu64
				", committing %" PRIu64 ", aborting %" PRIu64 "); in doubt %" PRIu64
				"; stuck %" PRIu64 "; orphan branches %" PRIu64 "\n",
				U(row, DTX_A_COUNT), U(row, DTX_A_ACTIVE), U(row, DTX_A_PREPARING),
				U(row, DTX_A_COMMITTING), U(row, DTX_A_ABORTING),
				U(row, DTX_A_IN_DOUBT), U(row, DTX_A_STUCK), U(row, DTX_A_ORPHANS));
		} else if (s_is(row, "decision_latency") || s_is(row, "saga_latency")) {
			fprintf(f, "%s latency: %" PRIu64 " answered",
				s_is(row, "saga_latency") ? "saga" : "decision",
				U(row, DTX_A_COUNT));
			if (dtx_kvs_find(row, DTX_A_MEAN_US)) {
				fprintf(f, ", mean %.3f ms,", (double)U(row, DTX_A_MEAN_US) / 1000);
				s_print_quantile(f, "p50", U(row, DTX_A_P50_US));
				s_print_quantile(f, "p99", U(row, DTX_A_P99_US));
			}
			fputc('\n', f);
		} else if (s_is(row, "phase_two")) {
			fprintf(f, "phase-two retries: %" PRIu64 "\n", U(row, DTX_A_RETRIES));
		} else if (s_is(row, "group_commits")) {
			uint64_t n = U(row, DTX_A_COUNT), rec = U(row, DTX_A_RECORDS);
			fprintf(f,
				"group commits: %" PRIu64 ", records %" PRIu64
				" (%.1f per commit), decisions %" PRIu64,
				n, rec, n ? (double)rec / (double)n : 0.0, U(row, DTX_A_DECISIONS));
			if (dtx_kvs_find(row, DTX_A_MEAN_US)) {
				fprintf(f, "; commit time mean %.3f ms,",
					(double)U(row, DTX_A_MEAN_US) / 1000);
				s_print_quantile(f, "p99", U(row, DTX_A_P99_US));
			}
			fputc('\n', f);
		} else if (s_is(row, "sagas")) {
			fprintf(f,
				"sagas: in flight %" PRIu64 ", completed %" PRIu64
				", compensated %" PRIu64 "\n",
				U(row, DTX_A_SAGAS), U(row, DTX_A_COMPLETED),
				U(row, DTX_A_COMPENSATED));
		} else if (s_is(row, "log")) {
			int64_t code = dtx_kvs_i64(row, DTX_A_CODE, 0);
			fprintf(f, "log: %s\n", code ? dtx_strerror((int)code) : "taking writes");
		}
	}
	/* One line for all participants, as the last: always there, empty
	 * when none is configured. */
	fprintf(f, "participants:");
	for (uint32_t i = 0; i < r->nrows; i++)
		if (s_is(&r->rows[i], "participant"))
			fprintf(f, " %s %s", S(&r->rows[i], DTX_A_PARTICIPANT),
				dtx_kvs_bool(&r->rows[i], DTX_A_UP, false) ? "up" : "down");
	fputc('\n', f);
}

static void s_text_in_doubt(FILE *f, const dtx_kvs_t *row)
{
	char id[300];
	snprintf(id, sizeof(id), "%s@%s", S(row, DTX_A_GID), S(row, DTX_A_PARTICIPANT));
	fprintf(f, "%-40s in-doubt    %s\n", id,
		dtx_kvs_bool(row, DTX_A_PRUNED, false)
			? "branch of a transaction pruned from this log"
			: "branch from an epoch this log never had");
}

static void s_text_list(FILE *f, const dtx_msg_t *r)
{
	for (uint32_t i = 0; i < r->nrows; i++) {
		const dtx_kvs_t *row = &r->rows[i];
		if (s_is(row, "transaction") && dtx_kvs_find(row, DTX_A_AGE_MS)) {
			fprintf(f, "%-24s %-11s decided %" PRIu64 " s ago, waiting for",
				S(row, DTX_A_GTID), S(row, DTX_A_STATE),
				U(row, DTX_A_AGE_MS) / 1000);
			const char *const *w;
			uint32_t n = dtx_kvs_strs(row, DTX_A_WAITING, &w);
			for (uint32_t k = 0; k < n; k++)
				fprintf(f, " %s%s", w[k],
					dtx_kvs_strs_has(row, DTX_A_UNCONFIGURED, w[k])
						? " (not configured)"
						: "");
			fputc('\n', f);
		} else if (s_is(row, "transaction") || s_is(row, "saga")) {
			char when[40];
			dtx_wall_format(dtx_kvs_i64(row, DTX_A_WHEN_US, 0), when, sizeof(when));
			fprintf(f, "%-24s %-11s %s", S(row, DTX_A_GTID), S(row, DTX_A_STATE), when);
			s_print_strs(f, row, DTX_A_PARTICIPANTS, " ", ",");
			fputc('\n', f);
		} else if (s_is(row, "in_doubt")) {
			s_text_in_doubt(f, row);
		} else if (s_is(row, "limit")) {
			fprintf(f, "(first %" PRIu64 " shown)\n", U(row, DTX_A_COUNT));
		}
	}
}

static void s_text_show(FILE *f, const dtx_msg_t *r)
{
	const dtx_kvs_t *tx = dtx_reply_find(r, "transaction");
	unsigned records = 0;

	if (tx)
		fprintf(f, "%s %s\n", S(tx, DTX_A_GTID), S(tx, DTX_A_STATE));
	for (uint32_t i = 0; i < r->nrows; i++) {
		const dtx_kvs_t *row = &r->rows[i];
		char when[40];
		if (!s_is(row, "record"))
			continue;
		records++;
		dtx_wall_format(dtx_kvs_i64(row, DTX_A_WHEN_US, 0), when, sizeof(when));
		fprintf(f, "  %s  %-10s", when, S(row, DTX_A_STATE));
		if (dtx_kvs_find(row, DTX_A_INDEX))
			fprintf(f, " step %" PRIu64, U(row, DTX_A_INDEX));
		s_print_strs(f, row, DTX_A_PARTICIPANTS, " participants ", ",");
		if (dtx_kvs_str(row, DTX_A_NOTE))
			fprintf(f, " %s", dtx_kvs_str(row, DTX_A_NOTE));
		fputc('\n', f);
	}
	if (tx && !records)
		fprintf(f, "  (no records in the log)\n");
	if (tx && dtx_kvs_str(tx, DTX_A_REASON))
		fprintf(f, "  reason: %s\n", dtx_kvs_str(tx, DTX_A_REASON));
	for (uint32_t i = 0; i < r->nrows; i++) {
		const dtx_kvs_t *row = &r->rows[i];
		if (s_is(row, "branch"))
			fprintf(f, "  branch %" PRIu64 " %s vote %s%s\n", U(row, DTX_A_INDEX),
				S(row, DTX_A_PARTICIPANT), S(row, DTX_A_VOTE),
				dtx_kvs_bool(row, DTX_A_ACKED, false) ? " acknowledged" : "");
		else if (s_is(row, "step"))
			fprintf(f, "  step %" PRIu64 " %s on %s (%s): %s%s%s\n",
				U(row, DTX_A_INDEX), S(row, DTX_A_STEP), S(row, DTX_A_PARTICIPANT),
				S(row, DTX_A_VERB), S(row, DTX_A_STATE),
				dtx_kvs_str(row, DTX_A_REASON) ? ", " : "",
				dtx_kvs_str(row, DTX_A_REASON) ? dtx_kvs_str(row, DTX_A_REASON)
							       : "");
	}
}

/* resolve and forget */
static void s_text_act(FILE *f, const dtx_msg_t *r)
{
	for (uint32_t i = 0; i < r->nrows; i++) {
		const dtx_kvs_t *row = &r->rows[i];
		if (s_is(row, "action") && strcmp(S(row, DTX_A_VERB), "forget") == 0)
			fprintf(f, "%s@%s: forgotten; the branch stays prepared in its database\n",
				S(row, DTX_A_GID), S(row, DTX_A_PARTICIPANT));
		else if (s_is(row, "action") && dtx_kvs_bool(row, DTX_A_SENT, false))
			fprintf(f, "%s: %s sent to %s\n", S(row, DTX_A_GID), S(row, DTX_A_VERB),
				S(row, DTX_A_PARTICIPANT));
		else if (s_is(row, "action"))
			fprintf(f, "%s: %s is not connected; it will report the branch again\n",
				S(row, DTX_A_GID), S(row, DTX_A_PARTICIPANT));
		else if (s_is(row, "result") && dtx_kvs_bool(row, DTX_A_RESENT, false))
			fprintf(f, "%s: already %s: decision re-sent to every branch\n",
				S(row, DTX_A_GTID), S(row, DTX_A_STATE));
		else if (s_is(row, "result"))
			fprintf(f, "%s: %s\n", S(row, DTX_A_GTID), S(row, DTX_A_NOTE));
	}
}

static void s_text_value(FILE *f, const dtx_kv_t *kv)
{
	switch (dtx_attr_type(kv->attr)) {
	case DTX_V_STR: fputs(kv->s, f); break;
	case DTX_V_UINT: fprintf(f, "%" PRIu64, kv->u); break;
	case DTX_V_INT: fprintf(f, "%" PRId64, kv->i); break;
	case DTX_V_BOOL: fputs(kv->b ? "true" : "false", f); break;
	case DTX_V_STRS:
		for (uint32_t i = 0; i < kv->a.n; i++)
			fprintf(f, "%s%s", i ? "," : "", kv->a.v[i]);
		break;
	default: break;
	}
}

/* A command this file has no prose for: "kind: name=value ..." a row. */
static void s_text_rows(FILE *f, const dtx_msg_t *r)
{
	for (uint32_t i = 0; i < r->nrows; i++) {
		const dtx_kvs_t *row = &r->rows[i];
		fprintf(f, "%s:", s_kind(row));
		for (uint32_t k = 0; k < row->n; k++) {
			if (row->kv[k].attr == DTX_A_KIND)
				continue;
			fprintf(f, " %s=", dtx_attr_name(row->kv[k].attr));
			s_text_value(f, &row->kv[k]);
		}
		fputc('\n', f);
	}
}

int dtx_admin_print_text(FILE *f, const char *cmd, const dtx_msg_t *r)
{
	if (r->type != DTX_T_REPLY && r->type != DTX_T_ERROR)
		return DTX_EINVAL;
	if (r->type == DTX_T_REPLY) {
		if (strcmp(cmd, "status") == 0)
			s_text_status(f, r);
		else if (strcmp(cmd, "stats") == 0)
			s_text_stats(f, r);
		else if (strcmp(cmd, "list") == 0)
			s_text_list(f, r);
		else if (strcmp(cmd, "show") == 0)
			s_text_show(f, r);
		else if (strcmp(cmd, "resolve") == 0 || strcmp(cmd, "forget") == 0)
			s_text_act(f, r);
		else if (strcmp(cmd, "watch") == 0 && dtx_reply_find(r, "endpoint"))
			fprintf(f, "%s\n", S(dtx_reply_find(r, "endpoint"), DTX_A_ENDPOINT));
		else
			s_text_rows(f, r);
	}
	if ((r->has & DTX_F_TEXT) && r->text[0]) {
		size_t n = strlen(r->text);
		fprintf(f, "%s%s", r->text, r->text[n - 1] == '\n' ? "" : "\n");
	}
	return 0;
}

int dtx_event_print_text(FILE *f, const dtx_msg_t *ev)
{
	time_t sec;
	struct tm tm;

	if (ev->type != DTX_T_EVENT)
		return DTX_EINVAL;
	/* Floor division: a time before 1970 still prints its own second. */
	sec = (time_t)(ev->at_us / 1000000 - (ev->at_us % 1000000 < 0));
	localtime_r(&sec, &tm);
	fprintf(f, "%02d:%02d:%02d.%03d %s %-9s ", tm.tm_hour, tm.tm_min, tm.tm_sec,
		(int)(((ev->at_us % 1000000) + 1000000) % 1000000 / 1000), ev->gtid, ev->event);
	if (ev->has & DTX_F_STEP) /* a saga's step, where it runs */
		fprintf(f, "%s@", ev->step);
	if (ev->has & DTX_F_WHO)
		fputs(ev->who, f);
	else if (!ev->nparts)
		fputs("-", f);
	else
		for (uint32_t i = 0; i < ev->nparts; i++)
			fprintf(f, "%s%s", i ? "," : "", ev->parts[i]);
	fprintf(f, " %s\n", (ev->has & DTX_F_DETAIL) ? ev->detail : "");
	return 0;
}

bool dtx_event_involves(const dtx_msg_t *ev, const char *participant)
{
	if ((ev->has & DTX_F_WHO) && strcmp(ev->who, participant) == 0)
		return true;
	for (uint32_t i = 0; i < ev->nparts; i++)
		if (strcmp(ev->parts[i], participant) == 0)
			return true;
	return false;
}

/* --- JSON ------------------------------------------------------------- */

static json_object *s_json_u64(uint64_t v)
{
#if JSON_C_VERSION_NUM >= ((0 << 16) | (14 << 8))
	return json_object_new_uint64(v);
#else
	/* json-c before 0.14 has no unsigned 64-bit number */
	return json_object_new_int64(v > INT64_MAX ? INT64_MAX : (int64_t)v);
#endif
}

static json_object *s_json_strs(uint32_t n, const char *const *v)
{
	json_object *a = json_object_new_array();
	for (uint32_t i = 0; a && i < n; i++)
		json_object_array_add(a, json_object_new_string(v[i]));
	return a;
}

static json_object *s_json_kvs(const dtx_kvs_t *kvs)
{
	json_object *o = json_object_new_object();
	for (uint32_t i = 0; o && i < kvs->n; i++) {
		const dtx_kv_t *kv = &kvs->kv[i];
		json_object *v = NULL;
		switch (dtx_attr_type(kv->attr)) {
		case DTX_V_STR: v = json_object_new_string(kv->s); break;
		case DTX_V_UINT: v = s_json_u64(kv->u); break;
		case DTX_V_INT: v = json_object_new_int64(kv->i); break;
		case DTX_V_BOOL: v = json_object_new_boolean(kv->b); break;
		case DTX_V_STRS: v = s_json_strs(kv->a.n, (const char *const *)kv->a.v); break;
		default: continue;
		}
		json_object_object_add(o, dtx_attr_name(kv->attr), v);
	}
	return o;
}

int dtx_admin_print_json(FILE *f, const dtx_msg_t *m)
{
	json_object *o;
	int flags = JSON_C_TO_STRING_PLAIN;

#ifdef JSON_C_TO_STRING_NOSLASHESCAPE
	flags |= JSON_C_TO_STRING_NOSLASHESCAPE; /* endpoints: "ipc:///run/dtx/..." */
#endif
	if (m->type != DTX_T_REPLY && m->type != DTX_T_ERROR && m->type != DTX_T_EVENT)
		return DTX_EINVAL;
	if (!(o = json_object_new_object()))
		return DTX_ENOMEM;
	if (m->type == DTX_T_EVENT) {
		json_object_object_add(o, "gtid", json_object_new_string(m->gtid));
		json_object_object_add(o, "event", json_object_new_string(m->event));
		if (m->has & DTX_F_WHO)
			json_object_object_add(o, "who", json_object_new_string(m->who));
		if (m->has & DTX_F_STEP)
			json_object_object_add(o, "step", json_object_new_string(m->step));
		json_object_object_add(o, "participants", s_json_strs(m->nparts, m->parts));
		if (m->has & DTX_F_DETAIL)
			json_object_object_add(o, "detail", json_object_new_string(m->detail));
		json_object_object_add(o, "at_us", json_object_new_int64(m->at_us));
	} else {
		json_object_object_add(o, "code", json_object_new_int64(m->code));
		if (m->has & DTX_F_TEXT)
			json_object_object_add(o, "text", json_object_new_string(m->text));
		if (m->type == DTX_T_REPLY) {
			json_object *rows = json_object_new_array();
			for (uint32_t i = 0; rows && i < m->nrows; i++)
				json_object_array_add(rows, s_json_kvs(&m->rows[i]));
			json_object_object_add(o, "rows", rows);
		}
	}
	const char *s = json_object_to_json_string_ext(o, flags);
	int rc = s ? 0 : DTX_ENOMEM;
	if (s)
		fprintf(f, "%s\n", s);
	json_object_put(o);
	return rc;
}
