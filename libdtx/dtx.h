/*
 * dtx.h — the client library of dtx, a distributed-transaction coordinator
 * for PostgreSQL.
 *
 * An application builds a global transaction (per participant, the SQL
 * statements with their parameters and an optional expected row count),
 * hands it to coordinatord and receives the outcome once the decision is
 * durable. Every function that can fail returns an int: 0 on success or a
 * negative DTX_E... code; dtx_strerror() names it.
 *
 * Threads: a dtx_client_t is used by one thread at a time. Distinct clients
 * may be used from distinct threads.
 */
#ifndef DTX_H
#define DTX_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Error codes. Values travel on the wire (ERROR frames): never renumber. */
typedef enum {
	DTX_OK = 0,
	DTX_EINVAL = -1,      /* invalid argument or request */
	DTX_ENOMEM = -2,      /* out of memory */
	DTX_EPROTO = -3,      /* malformed frame or unexpected message */
	DTX_EVERSION = -4,    /* unsupported protocol version */
	DTX_ETOOBIG = -5,     /* frame, string or container above its bound */
	DTX_ETIMEOUT = -6,    /* no answer within the time allowed */
	DTX_EIO = -7,         /* I/O error (disk, socket) */
	DTX_ELOG = -8,        /* the coordinator log failed or is damaged */
	DTX_ELOCKED = -9,     /* the log is held by another coordinator */
	DTX_ENOTFOUND = -10,  /* no such transaction, key or object */
	DTX_EUNKNOWNPART = -11, /* participant not in the allow-list */
	DTX_EPARTDOWN = -12,  /* participant not connected */
	DTX_ENOTREG = -13,    /* peer must say HELLO first */
	DTX_EBUSY = -14,      /* limit reached, try later */
	DTX_ECONFIG = -15,    /* bad configuration */
	DTX_EDB = -16,        /* database error (see the SQLSTATE) */
	DTX_ECRC = -17,       /* a log record failed its checksum */
	DTX_EFULL = -18,      /* log or disk full */
	DTX_ESTATE = -19,     /* transition not allowed in this state */
	DTX_ESHUTDOWN = -20,  /* the coordinator is shutting down */
	DTX_EPERM = -21,      /* not allowed: unauthenticated, or outside the peer's policy */
} dtx_err_t;

/* A static, lowercase description of code; never NULL. */
const char *dtx_strerror(int code);

/* Outcome of a global transaction, as the coordinator reports it. */
typedef enum {
	DTX_OUTCOME_UNKNOWN = 0,   /* no such GTID (presumed aborted) */
	DTX_OUTCOME_ACTIVE = 1,    /* not decided yet */
	DTX_OUTCOME_COMMITTED = 2, /* decision COMMIT is durable */
	DTX_OUTCOME_ABORTED = 3,   /* aborted; see reason */
	DTX_OUTCOME_IN_DOUBT = 4,  /* the log cannot say: needs an operator, or it
				   * finished longer ago than the coordinator's
				   * retention_s and may have committed */
	DTX_OUTCOME_HEURISTIC = 5, /* some branch went against the decision, or an
				    * operator decided: see dtxctl show */
	DTX_OUTCOME_COMPLETED = 6, /* a saga: every step done */
	DTX_OUTCOME_COMPENSATED = 7, /* a saga: turned around, every step that
				      * may have run compensated; see reason */
} dtx_outcome_status_t;

const char *dtx_outcome_str(int status);

#define DTX_GTID_MAX 96
typedef struct {
	int status;                 /* dtx_outcome_status_t */
	char gtid[DTX_GTID_MAX];    /* "<coordinator>.<epoch>.<sequence>" */
	char participant[64];       /* who caused an abort, or "" (a saga: the
			       * participant of the failing step) */
	char sqlstate[8];           /* its SQLSTATE, or "" */
	char reason[512];           /* why it aborted, or "" */
	char step[64];              /* a saga: the step that failed, or "" */
} dtx_outcome_t;

/*
 * A global transaction under construction. Caller owns the return value of
 * dtx_tx_new() (NULL: out of memory, or no random bytes for its key) and
 * frees it with dtx_tx_destroy(), which clears *self_p and
 * accepts NULL. Strings passed in are copied.
 */
typedef struct dtx_tx dtx_tx_t;

dtx_tx_t *dtx_tx_new(void);
void dtx_tx_destroy(dtx_tx_t **self_p);

/*
 * Append a statement to participant's branch (the branch is created on
 * first use, branches keep the order of first use). params may hold NULL
 * entries (SQL NULL). expect < 0: any row count; expect >= 0: the branch
 * votes NO unless the statement reports exactly that many rows.
 * Returns 0, DTX_EINVAL (empty name or sql, too many params) or DTX_ENOMEM.
 */
int dtx_tx_add(dtx_tx_t *self, const char *participant, const char *sql, int nparams,
	       const char *const *params, int64_t expect);

/*
 * Append a named statement to participant's branch, like dtx_tx_add():
 * statement is the name of a statement defined in that participant's
 * agent (its statements file: name, SQL, number of parameters), and only
 * the name and params travel, never the SQL. statement: 1..63 bytes of
 * [A-Za-z0-9_-]. expect as for dtx_tx_add(). The agent votes NO (SQLSTATE
 * 26000) for a name it does not define and (08P01) for a number of
 * parameters other than the one defined; that is known only when the
 * transaction runs. Returns 0, DTX_EINVAL (bad participant or statement
 * name, too many params) or DTX_ENOMEM.
 */
int dtx_tx_add_named(dtx_tx_t *self, const char *participant, const char *statement, int nparams,
		     const char *const *params, int64_t expect);

/* Time the coordinator allows for the decision; 0 = its default. */
void dtx_tx_set_timeout(dtx_tx_t *self, uint32_t timeout_ms);

/*
 * The submission key: dtx_tx_new() makes one (the clock's milliseconds
 * and 80 random bits). The
 * coordinator keeps key -> GTID as long as the outcome itself: a tx run
 * again with a key it knows (after a timeout, a lost connection, a
 * coordinator restart) is answered with that transaction and its outcome,
 * never run twice. Set one to make the key your own (say, an order id):
 * 1..64 bytes of [A-Za-z0-9_.:-]; DTX_EINVAL otherwise. dtx_tx_key()'s
 * string lives as long as self.
 */
int dtx_tx_set_key(dtx_tx_t *self, const char *key);
const char *dtx_tx_key(const dtx_tx_t *self);

/*
 * A connection to coordinatord's client endpoint (e.g. "tcp://127.0.0.1:7100").
 * Returns NULL on failure (bad endpoint, out of memory). Caller owns it.
 */
typedef struct dtx_client dtx_client_t;

dtx_client_t *dtx_client_new(const char *endpoint);

/*
 * dtx_client_new() with CURVE, as a tcp:// endpoint needs: server_key is
 * the file holding the coordinator's public key, secret_key the file
 * holding this client's own secret key (made by `dtxctl keygen NAME`; mode
 * 0600, owned by the user running the client). The coordinator serves
 * the client only if a [client NAME] section of its configuration has the
 * public half of this key, and as that section allows; if the server does
 * not hold the secret half of server_key, nothing is exchanged with it.
 * NULL on failure, with the reason in why (why_len bytes; may be NULL).
 */
dtx_client_t *dtx_client_new_curve(const char *endpoint, const char *server_key,
				   const char *secret_key, char *why, size_t why_len);
void dtx_client_destroy(dtx_client_t **self_p);

/*
 * Run tx and wait up to wait_ms for its outcome (wait_ms < 0: forever).
 * On 0, *out holds the outcome (committed or aborted, with the reason).
 * DTX_ETIMEOUT: no outcome in time; out->gtid holds the GTID whenever the
 * coordinator had assigned one (it says so before the outcome), so the
 * outcome may be asked for with dtx_client_query(), or tx run again: its
 * key makes that return the same transaction. A refused request returns
 * the coordinator's error code (e.g. DTX_EUNKNOWNPART) with out->reason
 * set; nothing ran. DTX_EPERM with out->reason: outside this client's
 * policy, or nothing came because the coordinator refused the connection
 * itself (a key or user it does not know, a CURVE key that does not
 * match); nothing ran.
 */
int dtx_client_run(dtx_client_t *self, const dtx_tx_t *tx, dtx_outcome_t *out, int wait_ms);

/*
 * Ask for the outcome of gtid, a transaction's or a saga's. 0 with
 * out->status set (a saga's: ACTIVE, COMPLETED, COMPENSATED with the
 * failing step, HEURISTIC or IN_DOUBT), or an error.
 */
int dtx_client_query(dtx_client_t *self, const char *gtid, dtx_outcome_t *out, int wait_ms);

/*
 * Sagas (DESIGN.md "Sagas"): an ordered list of steps, each one local
 * transaction on one participant, committed at once. The kinds, in this
 * order: compensable steps, each with a compensation that undoes it; at
 * most one pivot, the go/no-go step; retriable steps, retried until they
 * succeed. Neither of the last two has a compensation. A compensable step
 * or the pivot that fails turns the saga around: every compensable step
 * that may have run is compensated, last first, and the saga ends
 * COMPENSATED, naming the step that failed.
 */
enum {
	DTX_SAGA_COMPENSABLE = 0, /* undone by its compensation if the saga turns */
	DTX_SAGA_PIVOT = 1,       /* once it commits, the saga only goes forward */
	DTX_SAGA_RETRIABLE = 2,   /* after the pivot: retried until done */
};

/* as dtx_wire.h defines it, for the wire */
#define DTX_SAGA_MAX_STEPS 32

/*
 * A saga under construction, with the ownership rules of dtx_tx_t: caller
 * owns the return value of dtx_saga_new() (NULL: out of memory, or no
 * random bytes for its key) and frees it with dtx_saga_destroy(), which
 * clears *self_p and accepts NULL. Strings passed in are copied.
 *
 * The builder checks each argument; whether the steps make a saga (the
 * kind order, a compensation for every step before the pivot and none
 * after, unique names, groups) is checked as a whole by
 * dtx_saga_validate(), which dtx_client_run_saga() calls before sending.
 */
typedef struct dtx_saga dtx_saga_t;

dtx_saga_t *dtx_saga_new(void);
void dtx_saga_destroy(dtx_saga_t **self_p);

/*
 * Begin the next step: name (unique in the saga) and participant are 1..63
 * bytes of [A-Za-z0-9_-], kind a DTX_SAGA_* value. The statements added
 * next are its own. Returns 0, DTX_EINVAL (a bad name or kind, more than
 * DTX_SAGA_MAX_STEPS steps) or DTX_ENOMEM.
 */
int dtx_saga_step(dtx_saga_t *self, const char *name, const char *participant, int kind);

/*
 * Append a statement to the last step's local transaction, with the
 * arguments of dtx_tx_add() (expect >= 0: the step fails unless the
 * statement reports exactly that many rows) or, named, of
 * dtx_tx_add_named(). Returns 0, DTX_EINVAL (no step yet, empty sql, a
 * bad statement name, too many params) or DTX_ENOMEM.
 */
int dtx_saga_add(dtx_saga_t *self, const char *sql, int nparams, const char *const *params,
		 int64_t expect);
int dtx_saga_add_named(dtx_saga_t *self, const char *statement, int nparams,
		       const char *const *params, int64_t expect);

/*
 * Append a statement to the last step's compensation: statements on the
 * same participant that undo the step's business effect, run in one local
 * transaction if the saga turns around. Arguments and returns as for
 * dtx_saga_add(). A compensable step needs at least one.
 */
int dtx_saga_compensate(dtx_saga_t *self, const char *sql, int nparams, const char *const *params,
			int64_t expect);
int dtx_saga_compensate_named(dtx_saga_t *self, const char *statement, int nparams,
			      const char *const *params, int64_t expect);

/*
 * Put the last step in group (> 0; 0, the default: no group): consecutive
 * steps of one group and one kind run together, not one after the other.
 * The pivot runs alone. Returns 0, or DTX_EINVAL before any step.
 */
int dtx_saga_set_group(dtx_saga_t *self, uint32_t group);

/* Time the coordinator allows the steps before the pivot; 0 = its default. */
void dtx_saga_set_timeout(dtx_saga_t *self, uint32_t timeout_ms);

/*
 * The submission key, as for a transaction (dtx_tx_set_key()): a saga run
 * again with a key the coordinator knows is answered with that saga,
 * never run twice. dtx_saga_new() makes one; dtx_saga_key()'s string
 * lives as long as self.
 */
int dtx_saga_set_key(dtx_saga_t *self, const char *key);
const char *dtx_saga_key(const dtx_saga_t *self);

/*
 * Whether self's steps make a saga. 0, or DTX_EINVAL with the reason in
 * why (why_len bytes; may be NULL), e.g. "step 'pay' is a second pivot".
 */
int dtx_saga_validate(const dtx_saga_t *self, char *why, size_t why_len);

/*
 * Run saga and wait up to wait_ms for its outcome (wait_ms < 0: forever),
 * as dtx_client_run() runs a transaction. On 0, *out holds the outcome:
 * DTX_OUTCOME_COMPLETED (every step done), DTX_OUTCOME_COMPENSATED (out->step
 * the step that failed, out->participant its participant, out->sqlstate
 * and out->reason why), DTX_OUTCOME_HEURISTIC (an operator decided) or
 * DTX_OUTCOME_IN_DOUBT. DTX_EINVAL with out->reason: the steps make no
 * saga (dtx_saga_validate()); nothing was sent. DTX_ETIMEOUT: no outcome
 * in time; out->gtid holds the GTID whenever the coordinator had given
 * one: the saga runs on and its outcome may be asked for with
 * dtx_client_query(), or saga run again with the same key; a time-out is
 * never a failure. A refused request returns the coordinator's error code
 * (DTX_EPERM: outside this client's policy, DTX_EINVAL: a saga it does not
 * take) with out->reason set; nothing ran.
 */
int dtx_client_run_saga(dtx_client_t *self, const dtx_saga_t *saga, dtx_outcome_t *out,
			int wait_ms);

#ifdef __cplusplus
}
#endif
#endif /* DTX_H */
