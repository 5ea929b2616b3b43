/*
 * dtx_wire.h — the one place that encodes and decodes dtx frames.
 *
 * A frame is one msgpack map {"v": 1, "t": "<TYPE>", ...}. dtx_msg_decode()
 * first walks the raw bytes and bounds nesting depth, string sizes and
 * container counts (msgpack-c would allocate from a declared count before
 * reading it), then unpacks and checks every field's type against the
 * table of what each message type requires and allows. Anything else is
 * refused with a negative DTX_E... code and a message; nothing is trusted.
 *
 * Unknown fields: a key this decoder does not know, at the top of a frame
 * or inside ADMIN's args or a REPLY row, is skipped (the bounds pre-scan
 * has still walked it), so that the protocol can grow: a newer peer's
 * addition is ignored by an older one. An addition must therefore be one
 * an older peer may safely ignore; one that changes what a message means
 * needs a new type or version. A key must still be a string, and a known
 * key keeps its type check; inside a statement or a branch of TX an
 * unknown key is still refused (ignoring it would run other SQL than asked).
 *
 * Events: EVENT frames go out on the coordinator's XPUB socket. ZeroMQ's
 * SUB side filters on a frame's first bytes, and those of a msgpack frame
 * are its map header and "v" and "t", the same for every event: a watcher
 * subscribes to everything ("") and picks what it wants (a GTID, a
 * participant) after dtx_msg_decode().
 *
 * Ownership: a decoded dtx_msg_t owns one arena holding all its strings and
 * arrays; every pointer in it lives until dtx_msg_clear(). A dtx_msg_t to be
 * encoded only borrows what it points at.
 */
#ifndef DTX_WIRE_H
#define DTX_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dtx.h"

#define DTX_WIRE_VERSION 1
#define DTX_WIRE_MAX_DEPTH 6
#define DTX_WIRE_MAX_STR 65536     /* one SQL text or parameter */
#define DTX_WIRE_MAX_ITEMS 4096    /* elements of one array or map */
#define DTX_WIRE_MAX_ELEMENTS 65536 /* msgpack objects in one frame, all told */
#define DTX_WIRE_MAX_NAME 63       /* participant names */
#define DTX_WIRE_MAX_KV 64         /* attributes in ADMIN's args or one REPLY row */

typedef enum {
	DTX_T_NONE = 0,
	/* client -> coordinator */
	DTX_T_TX,       /* run a global transaction: branches, timeout, key */
	DTX_T_QUERY,    /* outcome of gtid */
	/* coordinator -> client */
	DTX_T_OUTCOME,  /* id, gtid, code=status, name=participant, sqlstate, text;
			* to a TX, first code=ACTIVE with the GTID once assigned */
	DTX_T_ERROR,    /* id?, code, text */
	/* agent <-> coordinator */
	DTX_T_HELLO,    /* agent: name */
	DTX_T_WELCOME,  /* coordinator: text=coordinator id */
	DTX_T_INDOUBT,  /* agent: gids prepared in its database */
	DTX_T_PREPARE,  /* coordinator: gtid=branch gid, stmts, code=DTX_PREPARE_*,
			* timeout=ms left of the global timeout */
	DTX_T_VOTE,     /* agent: gtid=gid, code=vote, sqlstate, text */
	DTX_T_DECIDE,   /* coordinator: gtid=gid, code=DTX_DECIDE_* */
	DTX_T_ACK,      /* agent: gtid=gid, code=ack result, text */
	DTX_T_PING,
	DTX_T_PONG,
	/* dtxctl <-> coordinator (admin endpoint) */
	DTX_T_ADMIN,    /* id, name=command, args (attributes; dtx_admin.h), text=the
		      * former positional argument, kept for older peers */
	DTX_T_REPLY,    /* id, code, text? (a summary line), rows? (each a list of
		      * attributes: one transaction, record, participant...) */
	/* coordinator -> watchers (events endpoint, XPUB) */
	DTX_T_EVENT,    /* gtid, event, who?, participants, detail?, at_us, step? */
	/* sagas (DESIGN.md "Sagas") */
	DTX_T_SAGA,     /* client: id, steps, timeout?, key?; answered by OUTCOME */
	DTX_T_STEP,     /* coordinator: gtid=step id (a branch GID, branch = the
		     * step's index), code=DTX_STEP_*, stmts (RUN, COMPENSATE),
		     * timeout=ms the local transaction may take */
	DTX_T_RESULT,   /* agent: gtid=step id, asked=the STEP's code it answers,
		       * code=DTX_RESULT_*, sqlstate?, text? */
	DTX_T__COUNT
} dtx_msg_type_t;

/* PREPARE.code (absent: two-phase). ONE_PHASE: the transaction's only
 * branch: commit it rather than prepare it, and vote COMMITTED. */
enum { DTX_PREPARE_TWO_PHASE = 0, DTX_PREPARE_ONE_PHASE = 1 };

/* Votes carried by VOTE.code. READONLY: the branch wrote nothing; the
 * agent committed it at once and wants no phase two. COMMITTED: a
 * one-phase branch committed. */
enum { DTX_VOTE_NO = 0, DTX_VOTE_YES = 1, DTX_VOTE_READONLY = 2, DTX_VOTE_COMMITTED = 3 };

/* DECIDE.code. RESOLVE: for a one-phase branch whose vote was never
 * heard: roll it back if it has not committed, and say which way it went
 * (ACK DONE: rolled back, ACK COMMITTED: it had committed). */
enum { DTX_DECIDE_ROLLBACK = 0, DTX_DECIDE_COMMIT = 1, DTX_DECIDE_RESOLVE = 2 };

/* Results carried by ACK.code. */
enum {
	DTX_ACK_DONE = 0,       /* the decision is applied (now or earlier) */
	DTX_ACK_HEURISTIC = 1,  /* the branch went the other way: text says how */
	DTX_ACK_RETRY = 2,      /* could not apply now (database down): resend */
	DTX_ACK_COMMITTED = 3,  /* RESOLVE: the one-phase branch had committed */
};

/* STEP.code: run the step, run its compensation, or say whether the step
 * ran (fencing it if it did not). */
enum { DTX_STEP_RUN = 0, DTX_STEP_COMPENSATE = 1, DTX_STEP_PROBE = 2 };

/* RESULT.code. DONE: RUN, the step committed (now or before); COMPENSATE,
 * the compensation committed (now or before), or the step had never run
 * and is fenced (text says which); PROBE, the step ran. FAILED: the local
 * transaction rolled back (sqlstate, text say why); nothing of it
 * remains. FENCED: RUN or PROBE, the step never ran and now never will
 * (its compensation, or a probe, came first). */
enum { DTX_RESULT_DONE = 0, DTX_RESULT_FAILED = 1, DTX_RESULT_FENCED = 2 };

/* A saga step's kind (dtx_step_t.kind). */
enum { DTX_STEP_COMPENSABLE = 0, DTX_STEP_PIVOT = 1, DTX_STEP_RETRIABLE = 2 };

/* Field presence bits of dtx_msg_t.has. */
enum {
	DTX_F_ID = 1u << 0,
	DTX_F_GTID = 1u << 1,
	DTX_F_NAME = 1u << 2,
	DTX_F_TEXT = 1u << 3,
	DTX_F_SQLSTATE = 1u << 4,
	DTX_F_CODE = 1u << 5,
	DTX_F_TIMEOUT = 1u << 6,
	DTX_F_BRANCHES = 1u << 7,
	DTX_F_STMTS = 1u << 8,
	DTX_F_GIDS = 1u << 9,
	DTX_F_KEY = 1u << 10,
	DTX_F_ARGS = 1u << 11,
	DTX_F_ROWS = 1u << 12,
	DTX_F_EVENT = 1u << 13,
	DTX_F_WHO = 1u << 14,
	DTX_F_PARTS = 1u << 15,
	DTX_F_DETAIL = 1u << 16,
	DTX_F_AT = 1u << 17,
	DTX_F_STEPS = 1u << 18,
	DTX_F_STEP = 1u << 19,
	DTX_F_ASKED = 1u << 20,
};

/*
 * Attributes: the typed fields of ADMIN's args and of REPLY's rows (the
 * model is Knot's knot_ctl_idx_t). Each has one name, used as the msgpack
 * key and as the JSON key, and one value type; the decoder checks the type
 * of every attribute it knows and skips a name it does not. A row names
 * what it is in DTX_A_KIND; dtx_admin.h lists the rows each command
 * answers with. Append new attributes at the end: the numbers are not on
 * the wire, but the names are, and a name never changes meaning.
 */
typedef enum {
	DTX_A_NONE = 0,
	DTX_A_KIND,         /* str: what a row is: "transaction", "record", "branch"... */
	DTX_A_GTID,         /* str: a global transaction */
	DTX_A_GID,          /* str: a branch's PostgreSQL GID */
	DTX_A_STATE,        /* str: a transaction's state, a record's kind (as
		      * wal_kind_str names them, and "deciding"), or list's filter */
	DTX_A_PARTICIPANT,  /* str */
	DTX_A_PARTICIPANTS, /* strs: a transaction's participants, in branch order */
	DTX_A_WHEN_US,      /* int: wall clock, microseconds since 1970 (UTC) */
	DTX_A_NOTE,         /* str: a log record's note */
	DTX_A_REASON,       /* str: why a transaction aborted */
	DTX_A_VERB,         /* str: commit, abort (resolve) or forget */
	DTX_A_FORCE,        /* bool: resolve may contradict a logged decision */
	DTX_A_WHO,          /* str: the operator an act is logged as */
	DTX_A_COUNT,        /* uint: how many (in flight, answered, group commits...) */
	DTX_A_INDEX,        /* uint: a branch's index in its transaction */
	DTX_A_VOTE,         /* str: yes, no, read-only, committed, none */
	DTX_A_ACKED,        /* bool: the branch acknowledged the decision */
	DTX_A_UP,           /* bool: the participant's agent is registered */
	DTX_A_ALLOWED,      /* bool: the participant is in the allow-list */
	DTX_A_LAST_SEEN_MS, /* uint: milliseconds since the agent was last heard */
	DTX_A_AGE_MS,       /* uint: milliseconds since the transaction was decided */
	DTX_A_WAITING,      /* strs: participants that have not acknowledged */
	DTX_A_UNCONFIGURED, /* strs: those of them no longer configured */
	DTX_A_PRUNED,       /* bool: an in-doubt branch's transaction was pruned from
		       * the log (false: its epoch is unknown to the log) */
	DTX_A_SENT,         /* bool: the decision went to the agent (false: not connected) */
	DTX_A_RESENT,       /* bool: the decision was logged already and sent again */
	DTX_A_COORDINATOR,  /* str: the coordinator's id */
	DTX_A_EPOCH,        /* uint */
	DTX_A_UPTIME_S,     /* uint: seconds since the coordinator started */
	DTX_A_ENDPOINT,     /* str: the events endpoint (watch) */
	DTX_A_ACTIVE,       /* uint: transactions in flight in each state */
	DTX_A_PREPARING,
	DTX_A_COMMITTING,
	DTX_A_ABORTING,
	DTX_A_COMMITTED,    /* uint: transactions finished since start, by outcome */
	DTX_A_ABORTED,
	DTX_A_HEURISTIC,
	DTX_A_IN_DOUBT,     /* uint: with a prepared branch waiting for the decision */
	DTX_A_STUCK,        /* uint: decided, unacknowledged past stuck_after_ms */
	DTX_A_ORPHANS,      /* uint: in-doubt branches left to the operator */
	DTX_A_RETRIES,      /* uint: decisions sent again to a branch */
	DTX_A_RECORDS,      /* uint: log records written by group commits */
	DTX_A_DECISIONS,    /* uint: commit decisions made durable by group commits */
	DTX_A_MEAN_US,      /* uint: a latency's mean, microseconds */
	DTX_A_P50_US,       /* uint: a latency's histogram bucket holding the median,
		       * its upper bound in microseconds; DTX_A_INF: beyond the last */
	DTX_A_P99_US,       /* uint: the same for the 99th percentile */
	DTX_A_CODE,         /* int: a DTX_E... code, 0 for none (the log's health) */
	DTX_A_STEP,         /* str: a saga step's name */
	DTX_A_COMPLETED,    /* uint: sagas completed since start */
	DTX_A_COMPENSATED,  /* uint: sagas compensated since start */
	DTX_A_SAGAS,        /* uint: sagas in flight */
	DTX_A__COUNT
} dtx_attr_t;

/* A latency quantile beyond the histogram's last bound (10 s). */
#define DTX_A_INF UINT64_MAX

typedef enum {
	DTX_V_NONE = 0,
	DTX_V_STR,   /* a string without NUL, at most the attribute's bound */
	DTX_V_UINT,  /* msgpack positive integer */
	DTX_V_INT,   /* msgpack integer in int64_t's range */
	DTX_V_BOOL,
	DTX_V_STRS,  /* array of strings, at most DTX_WIRE_MAX_ITEMS */
} dtx_vtype_t;

/* One attribute and its value; the value's type is dtx_attr_type(attr). */
typedef struct {
	dtx_attr_t attr;
	union {
		const char *s;
		uint64_t u;
		int64_t i;
		bool b;
		struct {
			uint32_t n;
			const char **v;
		} a;
	};
} dtx_kv_t;

/* A list of attributes: ADMIN's args, or one REPLY row. No attribute twice. */
typedef struct {
	uint32_t n;
	dtx_kv_t *kv;
} dtx_kvs_t;

/* A branch's statement: exactly one of sql (SQL text) and statement (the
 * name of a statement defined in the participant's agent, [A-Za-z0-9_-],
 * 1..63 bytes, dtx_name_valid) is set; the other is NULL. */
typedef struct {
	const char *sql;
	const char *statement;
	uint32_t nparams;
	const char **params;   /* entries may be NULL (SQL NULL) */
	int64_t expect;        /* < 0: no expectation */
} dtx_stmt_t;

typedef struct {
	const char *participant;
	uint32_t nstmts;
	dtx_stmt_t *stmts;
} dtx_branch_t;

/*
 * A saga's step: one local transaction on one participant. kind is
 * DTX_STEP_*; a compensable step has its compensation (ncomp > 0), the
 * others none. group > 0: consecutive steps of the same group run
 * together. dtx_saga_check() says whether a list of steps makes a saga.
 */
typedef struct {
	const char *name;        /* dtx_name_valid, unique in the saga */
	const char *participant;
	uint32_t nstmts;
	dtx_stmt_t *stmts;
	uint32_t ncomp;
	dtx_stmt_t *comp;
	int kind;
	uint32_t group;
} dtx_step_t;

#define DTX_SAGA_MAX_STEPS 32

typedef struct {
	dtx_msg_type_t type;
	uint32_t has;          /* DTX_F_* present */
	uint64_t id;
	const char *gtid;
	const char *name;
	const char *text;
	const char *sqlstate;
	const char *key;       /* TX: the client's submission key (dtx_key_valid) */
	int64_t code;
	uint32_t timeout_ms;
	uint32_t nbranches;
	dtx_branch_t *branches;
	uint32_t nstmts;
	dtx_stmt_t *stmts;
	uint32_t ngids;
	const char **gids;
	dtx_kvs_t args;        /* ADMIN */
	uint32_t nrows;        /* REPLY: at most DTX_WIRE_MAX_ITEMS */
	dtx_kvs_t *rows;
	const char *event;     /* EVENT: begun, voted, decided, completed, heuristic */
	const char *who;       /* EVENT: the participant it is about */
	const char *detail;    /* EVENT: free text */
	uint32_t nparts;       /* EVENT: the transaction's participants */
	const char **parts;
	int64_t at_us;         /* EVENT: when, wall clock (dtx_wall_us) */
	uint32_t nsteps;       /* SAGA */
	dtx_step_t *steps;
	const char *step;      /* OUTCOME, EVENT: the saga step it is about */
	int64_t asked;         /* RESULT: the code of the STEP it answers (DTX_STEP_*) */
	void *arena_;          /* private: decoded storage */
} dtx_msg_t;

const char *dtx_msg_type_str(dtx_msg_type_t type);

/* An attribute's name ("gtid"; "" for none), its value type (DTX_V_NONE
 * for none), the attribute of a name (DTX_A_NONE if unknown). */
const char *dtx_attr_name(dtx_attr_t attr);
dtx_vtype_t dtx_attr_type(dtx_attr_t attr);
dtx_attr_t dtx_attr_lookup(const char *name);
/* The most bytes a string of attr (or each of its array) may have. */
size_t dtx_attr_max(dtx_attr_t attr);

/* Reset *msg to empty, freeing what a decode allocated. Idempotent. */
void dtx_msg_clear(dtx_msg_t *msg);

/*
 * Encode msg (only the fields in msg->has) into a new buffer. On 0, *buf is
 * malloc'ed and owned by the caller (free()), *len its size. DTX_EINVAL if
 * a field the type requires is missing or a bound is exceeded.
 */
int dtx_msg_encode(const dtx_msg_t *msg, char **buf, size_t *len);

/*
 * Decode one frame. On 0, *msg is filled and owns its arena. On error *msg
 * is cleared, the return is DTX_EPROTO, DTX_EVERSION or DTX_ETOOBIG and,
 * if why is not NULL, a description is written there (why_len bytes);
 * when the frame passed the bounds check and held an unsigned "id", that
 * is kept (msg->id, DTX_F_ID in msg->has) for the refusal to echo.
 */
int dtx_msg_decode(const void *data, size_t len, dtx_msg_t *msg, char *why, size_t why_len);

/* dtx_msg_decode() for a message kept long (a saga's definition): its
 * arena is one block of the size it needs, not 4 KiB chunks. It decodes
 * twice when the first decode left more than a little unused. */
int dtx_msg_decode_fit(const void *data, size_t len, dtx_msg_t *msg, char *why, size_t why_len);
/* The same for a message decoded already (it is encoded and decoded
 * again); unchanged if that cannot be done. */
void dtx_msg_refit(dtx_msg_t *msg);
/* The bytes msg's arena holds (for tests and memory accounting). */
size_t dtx_msg_footprint(const dtx_msg_t *msg);

/*
 * Whether steps[0..n) make a saga: 1..DTX_SAGA_MAX_STEPS steps with
 * unique names; compensable steps (each with a compensation), then at
 * most one pivot, then retriable steps (neither with a compensation); a
 * group only of consecutive steps of one kind, never the pivot. 0, or
 * DTX_EINVAL with the reason in why.
 */
int dtx_saga_check(const dtx_step_t *steps, uint32_t n, char *why, size_t why_len);

/* Participant names: [A-Za-z0-9_-], 1..63 bytes. */
bool dtx_name_valid(const char *name);
/* Submission keys: 1..DTX_KEY_MAX bytes of [A-Za-z0-9_.:-]. */
#define DTX_KEY_MAX 64
bool dtx_key_valid(const char *key);

#endif /* DTX_WIRE_H */
