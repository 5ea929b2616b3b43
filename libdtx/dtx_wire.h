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
#define DTX_WIRE_MAX_NAME 63       /* participant names */

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
	DTX_T_ADMIN,    /* id, name=command, text=argument */
	DTX_T_REPLY,    /* id, code, text */
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
};

typedef struct {
	const char *sql;
	uint32_t nparams;
	const char **params;   /* entries may be NULL (SQL NULL) */
	int64_t expect;        /* < 0: no expectation */
} dtx_stmt_t;

typedef struct {
	const char *participant;
	uint32_t nstmts;
	dtx_stmt_t *stmts;
} dtx_branch_t;

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
	void *arena_;          /* private: decoded storage */
} dtx_msg_t;

const char *dtx_msg_type_str(dtx_msg_type_t type);

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
int dtx_msg_decode(const void *data, size_t len, dtx_msg_t *msg, char *why,
		   size_t why_len);

/* Participant names: [A-Za-z0-9_-], 1..63 bytes. */
bool dtx_name_valid(const char *name);
/* Submission keys: 1..DTX_KEY_MAX bytes of [A-Za-z0-9_.:-]. */
#define DTX_KEY_MAX 64
bool dtx_key_valid(const char *key);

#endif /* DTX_WIRE_H */
