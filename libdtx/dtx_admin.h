/*
 * dtx_admin.h — the admin protocol coordinatord and dtxctl share: one table
 * of commands and their typed arguments, builders for requests and
 * replies, accessors for decoded ones, and what dtxctl prints of a reply
 * or an event (its prose, and JSON).
 *
 * A request is ADMIN {id, name = command, args = {attribute: value}}, a
 * reply REPLY {id, code, text?, rows}; the attributes are dtx_wire.h's
 * dtx_attr_t, each with one name and one type. Every item a reply carries
 * is one row, a list of attributes whose "kind" says what it is. The rows
 * of each command, in the order the coordinator sends them:
 *
 *   status   coordinator {coordinator, epoch, uptime_s}
 *            in_flight {count, active, preparing, committing, aborting}
 *            transactions {committed, aborted, heuristic}      (since start)
 *            group_commits {count, records, decisions}
 *            participant {participant, up, last_seen_ms (if up), allowed}...
 *            log {heuristic (outcomes in the log), code}
 *            in_doubt {gid, participant, pruned}...          (left to the operator)
 *   stats    transactions {committed, aborted, heuristic}
 *            in_flight {count, active, preparing, committing, aborting,
 *                       in_doubt, stuck, orphans}
 *            decision_latency {count, mean_us, p50_us, p99_us} (the last three
 *                       only when count > 0)
 *            phase_two {retries}
 *            group_commits {count, records, decisions, mean_us, p99_us} (commit
 *                       time, only when a commit was timed)
 *            log {code}                                    (0: taking writes)
 *            participant {participant, up, allowed}...
 *   list     transaction {gtid, state, when_us (begun), participants}...
 *            limit {count}         (more matched: only the first count are listed)
 *     state=stuck     transaction {gtid, state, age_ms, waiting, unconfigured}...
 *     state=in-doubt  in_doubt {gid, participant, pruned}...
 *   show     transaction {gtid, state, reason?}
 *            record {when_us, state (the record's kind), participants?, note?}...
 *            branch {index, participant, vote, acked}...
 *   resolve  action {gid, participant, verb, sent}...  (branches of a transaction
 *                       the log does not hold: where the decision went)
 *            result {gtid, state, verb, note}  or  result {gtid, state, resent}
 *   forget   action {gid, participant, verb = "forget"}...
 *            result {gtid, state, note, waiting (left unacknowledged)}
 *   watch    endpoint {endpoint}
 *
 * A refusal has code < 0 and says why in text; a reply may carry rows and
 * a code (show of an unknown GTID: its row, and DTX_ENOTFOUND). text holds
 * only what the rows do not say. A reader skips a kind and an attribute it
 * does not know: rows and attributes may be added, never change meaning.
 *
 * Builders copy what they are given; the encoded buffer is the caller's.
 * Functions returning int return 0 or a negative DTX_E... code.
 */
#ifndef DTX_ADMIN_H
#define DTX_ADMIN_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "dtx_wire.h"

/* --- the command table ------------------------------------------------ */

/* dtx_admin_cmd_t.flags */
enum {
	DTX_CMD_CHANGES = 1u << 0, /* changes the coordinator's state; logged with who */
};

/* dtx_admin_arg_t.flags */
enum {
	DTX_ARG_REQUIRED = 1u << 0,
	DTX_ARG_POSITIONAL = 1u << 1,  /* dtxctl: a bare word, in the table's order */
	DTX_ARG_VALUE_FLAG = 1u << 2,  /* dtxctl: a string spelled --VALUE (--commit) */
	DTX_ARG_IMPLICIT = 1u << 3,    /* dtxctl fills it (who), the operator does not */
};

typedef struct {
	dtx_attr_t attr;
	unsigned flags;                /* DTX_ARG_* */
	const char *option;            /* dtxctl: "--state" takes the next word; a bool's
			     * option ("--force") takes none; NULL: see flags */
	const char *const *values;     /* the strings allowed, NULL-terminated; NULL: any */
} dtx_admin_arg_t;

#define DTX_ADMIN_MAX_ARGS 4

typedef struct {
	const char *name;              /* ADMIN.name */
	unsigned flags;                /* DTX_CMD_* */
	const char *usage;             /* "resolve GTID --commit|--abort [--force]" */
	const char *help;              /* one line */
	unsigned nargs;
	dtx_admin_arg_t args[DTX_ADMIN_MAX_ARGS];
} dtx_admin_cmd_t;

/* status, list, show, resolve, forget, stats, watch. */
extern const dtx_admin_cmd_t dtx_admin_cmds[];
extern const unsigned dtx_admin_ncmds;

/* The command named name, or NULL. */
const dtx_admin_cmd_t *dtx_admin_cmd_find(const char *name);

/* --- a decoded request (coordinator side) ----------------------------- */

/*
 * Check req, a decoded ADMIN, against the table: a known command, every
 * required argument present, none the command does not take (a filter
 * silently ignored would answer another question), strings among their
 * allowed values. 0 with *cmd set (cmd may be NULL); DTX_EINVAL with a
 * sentence in why ("unknown admin command 'x'", "resolve needs 'verb'")
 * fit for the refusal's text.
 */
int dtx_admin_check(const dtx_msg_t *req, const dtx_admin_cmd_t **cmd, char *why, size_t why_len);

/* An argument of req: NULL, false or 0 when absent (or of another type).
 * Strings live as long as req. */
const char *dtx_admin_arg_str(const dtx_msg_t *req, dtx_attr_t attr);
bool dtx_admin_arg_bool(const dtx_msg_t *req, dtx_attr_t attr);
uint64_t dtx_admin_arg_u64(const dtx_msg_t *req, dtx_attr_t attr);

/* --- reading attribute lists (args, rows) ----------------------------- */

/* The attribute attr of kvs, or NULL. */
const dtx_kv_t *dtx_kvs_find(const dtx_kvs_t *kvs, dtx_attr_t attr);
/* Its value; when absent or of another type: NULL, dflt, or 0 strings. */
const char *dtx_kvs_str(const dtx_kvs_t *kvs, dtx_attr_t attr);
uint64_t dtx_kvs_u64(const dtx_kvs_t *kvs, dtx_attr_t attr, uint64_t dflt);
int64_t dtx_kvs_i64(const dtx_kvs_t *kvs, dtx_attr_t attr, int64_t dflt);
bool dtx_kvs_bool(const dtx_kvs_t *kvs, dtx_attr_t attr, bool dflt);
uint32_t dtx_kvs_strs(const dtx_kvs_t *kvs, dtx_attr_t attr, const char *const **v);
/* Whether the string array attr of kvs holds s. */
bool dtx_kvs_strs_has(const dtx_kvs_t *kvs, dtx_attr_t attr, const char *s);

/* The first row of reply whose kind is kind, or NULL. */
const dtx_kvs_t *dtx_reply_find(const dtx_msg_t *reply, const char *kind);

/* --- building a reply (coordinator side) ------------------------------ */

typedef struct dtx_reply dtx_reply_t;

/* A reply to the request with this id, code 0, no rows. NULL: no memory.
 * Caller owns return value. */
dtx_reply_t *dtx_reply_new(uint64_t id);
/* Idempotent; clears *self_p. */
void dtx_reply_destroy(dtx_reply_t **self_p);

/*
 * Start a row of this kind; the attributes that follow go into it. The
 * first error sticks: later calls do nothing and return it, and so does
 * dtx_reply_encode(), so that a run of calls is checked once, at the end.
 * Errors: DTX_EINVAL (no row started, an attribute of another type or one
 * given twice in a row, a string over its bound or NULL), DTX_ETOOBIG
 * (more than DTX_WIRE_MAX_ITEMS rows or DTX_WIRE_MAX_KV attributes in one;
 * the coordinator bounds its lists below that), DTX_ENOMEM.
 */
int dtx_reply_row(dtx_reply_t *self, const char *kind);
int dtx_reply_str(dtx_reply_t *self, dtx_attr_t attr, const char *s);
int dtx_reply_u64(dtx_reply_t *self, dtx_attr_t attr, uint64_t v);
int dtx_reply_i64(dtx_reply_t *self, dtx_attr_t attr, int64_t v);
int dtx_reply_bool(dtx_reply_t *self, dtx_attr_t attr, bool v);
int dtx_reply_strs(dtx_reply_t *self, dtx_attr_t attr, uint32_t n, const char *const *v);
/* Append s to the string array attr of the current row, starting it
 * empty if the row has none yet (a list built in a loop). */
int dtx_reply_push(dtx_reply_t *self, dtx_attr_t attr, const char *s);
/* An empty string array attr in the current row, if it has none yet. */
int dtx_reply_strs_empty(dtx_reply_t *self, dtx_attr_t attr);

/* The reply's code (a DTX_E... code, 0 when it did what was asked). */
void dtx_reply_code(dtx_reply_t *self, int code);
/* Its text: one line, no newline. */
int dtx_reply_text(dtx_reply_t *self, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A refusal: code and the text saying why. */
int dtx_reply_error(dtx_reply_t *self, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* The sticky error, 0 if none. */
int dtx_reply_failed(const dtx_reply_t *self);
/* How many rows so far. */
uint32_t dtx_reply_nrows(const dtx_reply_t *self);

/* *out (overwritten) as the REPLY to encode, borrowing the reply's storage
 * until its next change or destroy. Returns the sticky error. */
int dtx_reply_msg(const dtx_reply_t *self, dtx_msg_t *out);
/* Encode it. On 0 *buf is malloc'ed and the caller's (free()), *len its size. */
int dtx_reply_encode(const dtx_reply_t *self, char **buf, size_t *len);

/* --- building a request (dtxctl side) --------------------------------- */

typedef struct dtx_request dtx_request_t;

/* A request for command cmd (not checked until encoding). NULL: no memory.
 * Caller owns return value. */
dtx_request_t *dtx_request_new(const char *cmd, uint64_t id);
void dtx_request_destroy(dtx_request_t **self_p);
/* Arguments; errors stick as with dtx_reply_str(). */
int dtx_request_str(dtx_request_t *self, dtx_attr_t attr, const char *s);
int dtx_request_u64(dtx_request_t *self, dtx_attr_t attr, uint64_t v);
int dtx_request_bool(dtx_request_t *self, dtx_attr_t attr, bool v);
/* Check the request as dtx_admin_check() would (DTX_EINVAL) and encode it;
 * on 0 *buf is malloc'ed and the caller's. */
int dtx_request_encode(const dtx_request_t *self, char **buf, size_t *len);

/*
 * A request from dtxctl's words: argv[0] the command, then its arguments
 * as the table spells them (positional GTID, "--state STATE", "--commit",
 * "--force"); who fills DTX_ARG_IMPLICIT arguments (the operator's name,
 * for commands that change state). On 0 *out is the caller's. DTX_EINVAL:
 * not a command or not its arguments, why says which word ("resolve: needs
 * --commit or --abort"); print the command's usage with it. watch takes
 * no argument here: dtxctl's --gtid, --participant and --count filter the
 * stream on its side.
 */
int dtx_request_argv(dtx_request_t **out, uint64_t id, int argc, char *const *argv, const char *who,
		     char *why, size_t why_len);

/* --- what dtxctl prints ----------------------------------------------- */

/*
 * reply (REPLY or ERROR) as dtxctl's prose for command cmd: for status,
 * list, show, stats, resolve and forget the lines the text protocol had,
 * byte for byte; rows of kinds it does not know are left out; for another
 * command one line per row, "kind: name=value ...". Then text, if any, as
 * one line. DTX_EINVAL for another message type.
 */
int dtx_admin_print_text(FILE *f, const char *cmd, const dtx_msg_t *reply);

/*
 * One JSON object and a newline: for a REPLY {"code": .., "text": ..,
 * "rows": [{"kind": .., ...}]} (text only when present), for an ERROR
 * {"code": .., "text": ..}, for an EVENT {"gtid": .., "event": .., "who":
 * .., "step": .., "participants": [..], "detail": .., "at_us": ..} (who,
 * step and detail when present; step: a saga's step). Attributes keep
 * their wire names and types. DTX_EINVAL for another message type,
 * DTX_ENOMEM.
 */
int dtx_admin_print_json(FILE *f, const dtx_msg_t *m);

/*
 * An EVENT as dtxctl watch prints it: "HH:MM:SS.mmm GTID EVENT WHO DETAIL"
 * with the event's time (at_us) in local time, EVENT padded to 9, WHO the
 * participant it is about or else all of the transaction's, comma-separated;
 * for an event about a saga's step, "STEP@WHO".
 */
int dtx_event_print_text(FILE *f, const dtx_msg_t *ev);
/* Whether participant takes part in the event's transaction (or is who). */
bool dtx_event_involves(const dtx_msg_t *ev, const char *participant);

#endif /* DTX_ADMIN_H */
