/*
 * dtx_client.c — the application side: build a transaction, send it over a
 * DEALER socket, wait for the coordinator's answer.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <zmq.h>

#include "dtx_curve.h"
#include "dtx_frame.h"
#include "dtx_util.h"
#include "dtx_wire.h"

struct dtx_tx {
	uint32_t nbranches;
	dtx_branch_t *branches; /* strings owned (strdup), arrays owned */
	uint32_t timeout_ms;
	char key[DTX_KEY_MAX + 1]; /* the submission key: random unless set */
};

struct dtx_client {
	void *ctx;
	void *sock;
	void *mon;       /* PAIR: the socket's handshake events, to say why nothing came */
	uint64_t next_id;
	char endpoint[256];
	int refused;     /* the last handshake failed: its ZMQ_EVENT_HANDSHAKE_FAILED_*, or 0 */
	int refused_how; /* ... and its value (the ZAP status code, 400 for a refused key) */
};

/* A fresh submission key into key (DTX_KEY_MAX + 1 bytes): the wall
 * clock's milliseconds (48 bits), then 80 random bits, in hex. No two
 * submissions share a key by chance, and keys made about the same time
 * sort together, so the coordinator's key index (a B-tree) grows at its
 * end instead of touching a page per key. -1 without random bytes. */
static int s_key_make(char *key)
{
	static const char hex[] = "0123456789abcdef";
	uint8_t r[16];
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	for (int i = 5; i >= 0; i--, ms >>= 8)
		r[i] = (uint8_t)ms;
	if (getrandom(r + 6, sizeof(r) - 6, 0) != (ssize_t)(sizeof(r) - 6))
		return -1;
	for (size_t i = 0; i < sizeof(r); i++) {
		key[2 * i] = hex[r[i] >> 4];
		key[2 * i + 1] = hex[r[i] & 15];
	}
	key[2 * sizeof(r)] = '\0';
	return 0;
}

dtx_tx_t *dtx_tx_new(void)
{
	dtx_tx_t *self = calloc(1, sizeof(dtx_tx_t));
	if (!self)
		return NULL;
	if (s_key_make(self->key)) {
		free(self); /* no key that could not collide: no transaction */
		return NULL;
	}
	return self;
}

int dtx_tx_set_key(dtx_tx_t *self, const char *key)
{
	if (!dtx_key_valid(key))
		return DTX_EINVAL;
	snprintf(self->key, sizeof(self->key), "%s", key);
	return 0;
}

const char *dtx_tx_key(const dtx_tx_t *self)
{
	return self->key;
}

static void s_stmt_free(dtx_stmt_t *st)
{
	free((char *)st->sql);
	free((char *)st->statement);
	for (uint32_t p = 0; p < st->nparams; p++)
		free((char *)st->params[p]);
	free(st->params);
}

void dtx_tx_destroy(dtx_tx_t **self_p)
{
	dtx_tx_t *self = self_p ? *self_p : NULL;
	if (!self)
		return;
	for (uint32_t b = 0; b < self->nbranches; b++) {
		for (uint32_t i = 0; i < self->branches[b].nstmts; i++)
			s_stmt_free(&self->branches[b].stmts[i]);
		free(self->branches[b].stmts);
		free((char *)self->branches[b].participant);
	}
	free(self->branches);
	free(self);
	*self_p = NULL;
}

void dtx_tx_set_timeout(dtx_tx_t *self, uint32_t timeout_ms)
{
	self->timeout_ms = timeout_ms;
}

/* Whether a statement's arguments are ones s_stmt_append() takes. */
static bool s_stmt_ok(const char *sql, const char *statement, int nparams,
		      const char *const *params)
{
	if (nparams < 0 || nparams > DTX_WIRE_MAX_ITEMS || (nparams > 0 && !params))
		return false;
	return statement ? dtx_name_valid(statement)
			 : sql && *sql && strlen(sql) <= DTX_WIRE_MAX_STR;
}

/* Append a statement to the list (*n, *stmts): SQL text (sql) or a named
 * one (statement), the other NULL; its strings copied. The list is left
 * as it was on failure. */
static int s_stmt_append(uint32_t *n, dtx_stmt_t **stmts, const char *sql, const char *statement,
			 int nparams, const char *const *params, int64_t expect)
{
	dtx_stmt_t st = {.expect = expect < 0 ? -1 : expect};

	if (!s_stmt_ok(sql, statement, nparams, params) || *n >= DTX_WIRE_MAX_ITEMS)
		return DTX_EINVAL;
	if (statement)
		st.statement = strdup(statement);
	else
		st.sql = strdup(sql);
	st.nparams = (uint32_t)nparams;
	st.params = calloc((size_t)nparams + 1, sizeof(char *));
	if ((!st.sql && !st.statement) || !st.params)
		goto nomem;
	for (int p = 0; p < nparams; p++)
		if (params[p] && !(st.params[p] = strdup(params[p])))
			goto nomem;
	dtx_stmt_t *ns = realloc(*stmts, (*n + 1) * sizeof(*ns));
	if (!ns)
		goto nomem;
	*stmts = ns;
	ns[(*n)++] = st;
	return 0;
nomem:
	s_stmt_free(&st);
	return DTX_ENOMEM;
}

/* Append a statement to participant's branch, made on first use. */
static int s_add(dtx_tx_t *self, const char *participant, const char *sql, const char *statement,
		 int nparams, const char *const *params, int64_t expect)
{
	dtx_branch_t *br = NULL;

	/* a statement refused makes no branch */
	if (!self || !dtx_name_valid(participant) || !s_stmt_ok(sql, statement, nparams, params))
		return DTX_EINVAL;
	for (uint32_t b = 0; b < self->nbranches; b++)
		if (strcmp(self->branches[b].participant, participant) == 0)
			br = &self->branches[b];
	if (!br) {
		if (self->nbranches >= DTX_WIRE_MAX_ITEMS)
			return DTX_EINVAL;
		dtx_branch_t *nb = realloc(self->branches, (self->nbranches + 1) * sizeof(*nb));
		if (!nb)
			return DTX_ENOMEM;
		self->branches = nb;
		br = &nb[self->nbranches];
		*br = (dtx_branch_t){.participant = strdup(participant)};
		if (!br->participant)
			return DTX_ENOMEM;
		self->nbranches++;
	}
	return s_stmt_append(&br->nstmts, &br->stmts, sql, statement, nparams, params, expect);
}

int dtx_tx_add(dtx_tx_t *self, const char *participant, const char *sql, int nparams,
	       const char *const *params, int64_t expect)
{
	return s_add(self, participant, sql, NULL, nparams, params, expect);
}

int dtx_tx_add_named(dtx_tx_t *self, const char *participant, const char *statement, int nparams,
		     const char *const *params, int64_t expect)
{
	if (!statement)
		return DTX_EINVAL;
	return s_add(self, participant, NULL, statement, nparams, params, expect);
}

/* --- sagas ----------------------------------------------------------------- */

_Static_assert((int)DTX_SAGA_COMPENSABLE == (int)DTX_STEP_COMPENSABLE &&
		       (int)DTX_SAGA_PIVOT == (int)DTX_STEP_PIVOT &&
		       (int)DTX_SAGA_RETRIABLE == (int)DTX_STEP_RETRIABLE,
	       "dtx.h's step kinds are the wire's");

struct dtx_saga {
	uint32_t nsteps;
	dtx_step_t *steps; /* strings owned (strdup), arrays owned */
	uint32_t timeout_ms;
	char key[DTX_KEY_MAX + 1]; /* the submission key: random unless set */
};

dtx_saga_t *dtx_saga_new(void)
{
	dtx_saga_t *self = calloc(1, sizeof(*self));
	if (!self)
		return NULL;
	if (s_key_make(self->key)) {
		free(self);
		return NULL;
	}
	return self;
}

void dtx_saga_destroy(dtx_saga_t **self_p)
{
	dtx_saga_t *self = self_p ? *self_p : NULL;
	if (!self)
		return;
	for (uint32_t i = 0; i < self->nsteps; i++) {
		dtx_step_t *st = &self->steps[i];
		for (uint32_t k = 0; k < st->nstmts; k++)
			s_stmt_free(&st->stmts[k]);
		for (uint32_t k = 0; k < st->ncomp; k++)
			s_stmt_free(&st->comp[k]);
		free(st->stmts);
		free(st->comp);
		free((char *)st->name);
		free((char *)st->participant);
	}
	free(self->steps);
	free(self);
	*self_p = NULL;
}

int dtx_saga_step(dtx_saga_t *self, const char *name, const char *participant, int kind)
{
	if (!self || !dtx_name_valid(name) || !dtx_name_valid(participant) ||
	    (kind != DTX_SAGA_COMPENSABLE && kind != DTX_SAGA_PIVOT &&
	     kind != DTX_SAGA_RETRIABLE) ||
	    self->nsteps >= DTX_SAGA_MAX_STEPS)
		return DTX_EINVAL;
	dtx_step_t *ns = realloc(self->steps, (self->nsteps + 1) * sizeof(*ns));
	if (!ns)
		return DTX_ENOMEM;
	self->steps = ns;
	dtx_step_t st = {.name = strdup(name), .participant = strdup(participant), .kind = kind};
	if (!st.name || !st.participant) {
		free((char *)st.name);
		free((char *)st.participant);
		return DTX_ENOMEM;
	}
	ns[self->nsteps++] = st;
	return 0;
}

/* The step the last dtx_saga_step() began, or NULL. */
static dtx_step_t *s_last(dtx_saga_t *self)
{
	return self && self->nsteps ? &self->steps[self->nsteps - 1] : NULL;
}

int dtx_saga_add(dtx_saga_t *self, const char *sql, int nparams, const char *const *params,
		 int64_t expect)
{
	dtx_step_t *st = s_last(self);
	if (!st)
		return DTX_EINVAL;
	return s_stmt_append(&st->nstmts, &st->stmts, sql, NULL, nparams, params, expect);
}

int dtx_saga_add_named(dtx_saga_t *self, const char *statement, int nparams,
		       const char *const *params, int64_t expect)
{
	dtx_step_t *st = s_last(self);
	if (!st || !statement)
		return DTX_EINVAL;
	return s_stmt_append(&st->nstmts, &st->stmts, NULL, statement, nparams, params, expect);
}

int dtx_saga_compensate(dtx_saga_t *self, const char *sql, int nparams, const char *const *params,
			int64_t expect)
{
	dtx_step_t *st = s_last(self);
	if (!st)
		return DTX_EINVAL;
	return s_stmt_append(&st->ncomp, &st->comp, sql, NULL, nparams, params, expect);
}

int dtx_saga_compensate_named(dtx_saga_t *self, const char *statement, int nparams,
			      const char *const *params, int64_t expect)
{
	dtx_step_t *st = s_last(self);
	if (!st || !statement)
		return DTX_EINVAL;
	return s_stmt_append(&st->ncomp, &st->comp, NULL, statement, nparams, params, expect);
}

int dtx_saga_set_group(dtx_saga_t *self, uint32_t group)
{
	dtx_step_t *st = s_last(self);
	if (!st)
		return DTX_EINVAL;
	st->group = group;
	return 0;
}

void dtx_saga_set_timeout(dtx_saga_t *self, uint32_t timeout_ms)
{
	self->timeout_ms = timeout_ms;
}

int dtx_saga_set_key(dtx_saga_t *self, const char *key)
{
	if (!dtx_key_valid(key))
		return DTX_EINVAL;
	snprintf(self->key, sizeof(self->key), "%s", key);
	return 0;
}

const char *dtx_saga_key(const dtx_saga_t *self)
{
	return self->key;
}

int dtx_saga_validate(const dtx_saga_t *self, char *why, size_t why_len)
{
	if (why && why_len)
		why[0] = '\0';
	if (!self)
		return DTX_EINVAL;
	return dtx_saga_check(self->steps, self->nsteps, why, why_len);
}

/* One ZeroMQ context (one I/O thread) for every client of the process,
 * created with the first client and ended with the last: an application
 * with a client per thread does not pay a thread per client. */
static pthread_mutex_t s_ctx_lock = PTHREAD_MUTEX_INITIALIZER;
static void *s_ctx;
static unsigned s_ctx_users;

static void *s_ctx_get(void)
{
	pthread_mutex_lock(&s_ctx_lock);
	if (!s_ctx)
		s_ctx = zmq_ctx_new();
	void *ctx = s_ctx;
	if (ctx)
		s_ctx_users++;
	pthread_mutex_unlock(&s_ctx_lock);
	return ctx;
}

static void s_ctx_put(void)
{
	pthread_mutex_lock(&s_ctx_lock);
	if (--s_ctx_users == 0) {
		zmq_ctx_term(s_ctx);
		s_ctx = NULL;
	}
	pthread_mutex_unlock(&s_ctx_lock);
}

static dtx_client_t *s_new(const char *endpoint, const char *server_key, const char *secret_key,
			   char *why, size_t why_len)
{
	dtx_client_t *self = calloc(1, sizeof(*self));
	int linger = 0;

	if (why && why_len)
		why[0] = '\0';
	if (!self)
		return NULL;
	self->next_id = 1;
	if (!(self->ctx = s_ctx_get()) || !(self->sock = zmq_socket(self->ctx, ZMQ_DEALER)))
		goto fail;
	zmq_setsockopt(self->sock, ZMQ_LINGER, &linger, sizeof(linger));
	if (server_key && dtx_curve_client(self->sock, server_key, secret_key, why, why_len))
		goto fail;
	/* Handshake outcomes: a coordinator that refuses this connection
	 * (ZAP) answers nothing at all; the monitor lets a timeout say why. */
	/* Its queue unbounded (a monitor's send waits for room, and the I/O
	 * thread with it), read at every call. */
	static unsigned long mon_seq;
	char mon_ep[64];
	int unbounded = 0;
	snprintf(mon_ep, sizeof(mon_ep), "inproc://dtx-client-%lu",
		 __atomic_add_fetch(&mon_seq, 1, __ATOMIC_RELAXED));
	if (zmq_socket_monitor(self->sock, mon_ep,
			       ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
				       ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) == 0) {
		if (!(self->mon = zmq_socket(self->ctx, ZMQ_PAIR)) ||
		    zmq_setsockopt(self->mon, ZMQ_RCVHWM, &unbounded, sizeof(unbounded)) != 0 ||
		    zmq_connect(self->mon, mon_ep) != 0) {
			if (self->mon)
				zmq_close(self->mon);
			self->mon = NULL;
			zmq_socket_monitor(self->sock, NULL, 0);
		}
	}
	snprintf(self->endpoint, sizeof(self->endpoint), "%s", endpoint);
	if (zmq_connect(self->sock, endpoint) != 0) {
		if (why && why_len)
			snprintf(why, why_len, "%s: %s", endpoint, zmq_strerror(errno));
		goto fail;
	}
	return self;
fail:
	dtx_client_destroy(&self);
	return NULL;
}

dtx_client_t *dtx_client_new(const char *endpoint)
{
	return s_new(endpoint, NULL, NULL, NULL, 0);
}

dtx_client_t *dtx_client_new_curve(const char *endpoint, const char *server_key,
				   const char *secret_key, char *why, size_t why_len)
{
	if (!server_key || !secret_key) {
		if (why && why_len)
			snprintf(why, why_len,
				 "CURVE needs the server's public key and a secret key");
		return NULL;
	}
	return s_new(endpoint, server_key, secret_key, why, why_len);
}

void dtx_client_destroy(dtx_client_t **self_p)
{
	dtx_client_t *self = self_p ? *self_p : NULL;
	if (!self)
		return;
	if (self->mon)
		zmq_close(self->mon);
	if (self->sock)
		zmq_close(self->sock);
	if (self->ctx)
		s_ctx_put();
	free(self);
	*self_p = NULL;
}

/* Read the handshake events so far: the last one says whether the
 * coordinator refused this connection. */
static void s_handshakes(dtx_client_t *self)
{
	zmq_msg_t ev;
	if (!self->mon)
		return;
	zmq_msg_init(&ev);
	while (zmq_msg_recv(&ev, self->mon, ZMQ_DONTWAIT) >= 0) {
		uint16_t event = 0;
		uint32_t value = 0;
		if (zmq_msg_size(&ev) >= 6) {
			memcpy(&event, zmq_msg_data(&ev), sizeof(event));
			memcpy(&value, (char *)zmq_msg_data(&ev) + 2, sizeof(value));
		}
		if (zmq_msg_more(&ev)) { /* the endpoint */
			zmq_msg_t addr;
			zmq_msg_init(&addr);
			zmq_msg_recv(&addr, self->mon, 0);
			zmq_msg_close(&addr);
		}
		self->refused = event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED ? 0 : event;
		self->refused_how = (int)value;
	}
	zmq_msg_close(&ev);
}

/* A timeout: ETIMEOUT, or EPERM with the reason when the coordinator
 * refused the connection itself and this call heard nothing (a call that
 * was answered ACTIVE ran something: it is in doubt, a time-out). */
static int s_timed_out(dtx_client_t *self, dtx_outcome_t *out)
{
	s_handshakes(self);
	if (out->gtid[0])
		return DTX_ETIMEOUT;
	if (self->refused == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH && self->refused_how == 300) {
		snprintf(out->reason, sizeof(out->reason),
			 "the coordinator has too many connections (max_connections): try again");
		return DTX_EBUSY;
	}
	if (self->refused == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
		snprintf(out->reason, sizeof(out->reason),
			 "the coordinator refused this connection (authentication, status %d): "
			 "its configuration has no [client] section for this key or user",
			 self->refused_how);
		return DTX_EPERM;
	}
	if (self->refused) {
		snprintf(out->reason, sizeof(out->reason),
			 "the handshake with the coordinator failed (a CURVE key that does not "
			 "match, or a tcp:// endpoint without CURVE)");
		return DTX_EPERM;
	}
	return DTX_ETIMEOUT;
}

/* Send req (its id set here) and wait for the reply with the same id. To
 * a TX or a SAGA the coordinator first says OUTCOME ACTIVE with the GTID
 * it gave: kept in out->gtid, and the wait goes on for the outcome. */
static int s_call(dtx_client_t *self, dtx_msg_t *req, dtx_outcome_t *out, int wait_ms)
{
	char why[sizeof(out->reason)];
	int rc;
	int64_t deadline = wait_ms < 0 ? -1 : dtx_now_ms() + wait_ms;

	memset(out, 0, sizeof(*out));
	/* libzmq does not connect again after a refused handshake: this call
	 * tries anew (the refusal may have been for the moment, or the
	 * configuration has changed since). */
	s_handshakes(self);
	if (self->refused) {
		zmq_disconnect(self->sock, self->endpoint);
		zmq_connect(self->sock, self->endpoint);
		self->refused = 0;
	}
	req->id = self->next_id++;
	req->has |= DTX_F_ID;
	if ((rc = dtx_send(self->sock, req, 0)))
		return rc;

	for (;;) {
		dtx_msg_t rep;
		long left = deadline < 0 ? -1 : (long)(deadline - dtx_now_ms());
		if (deadline >= 0 && left <= 0)
			return s_timed_out(self, out);
		rc = dtx_recv_wait(self->sock, &rep, left, why, sizeof(why));
		if (rc == DTX_ETIMEOUT)
			continue; /* the deadline above says whether time is up */
		if (rc == DTX_EIO)
			return rc;
		if (rc) { /* an answer that does not decode: the reason is why */
			snprintf(out->reason, sizeof(out->reason), "%s", why);
			return rc;
		}
		if (!(rep.has & DTX_F_ID) || rep.id != req->id) {
			dtx_msg_clear(&rep); /* a late answer to an earlier call */
			continue;
		}
		if ((req->type == DTX_T_TX || req->type == DTX_T_SAGA) &&
		    rep.type == DTX_T_OUTCOME && rep.code == DTX_OUTCOME_ACTIVE) {
			if (rep.has & DTX_F_GTID)
				snprintf(out->gtid, sizeof(out->gtid), "%s", rep.gtid);
			dtx_msg_clear(&rep);
			continue;
		}
		if (rep.type == DTX_T_ERROR) {
			snprintf(out->reason, sizeof(out->reason), "%s", rep.text);
			rc = rep.code < 0 ? (int)rep.code : DTX_EPROTO;
		} else if (rep.type == DTX_T_OUTCOME) {
			out->status = (int)rep.code;
			if (rep.has & DTX_F_GTID)
				snprintf(out->gtid, sizeof(out->gtid), "%s", rep.gtid);
			if (rep.has & DTX_F_NAME)
				snprintf(out->participant, sizeof(out->participant), "%s",
					 rep.name);
			if (rep.has & DTX_F_SQLSTATE)
				snprintf(out->sqlstate, sizeof(out->sqlstate), "%s", rep.sqlstate);
			if (rep.has & DTX_F_STEP)
				snprintf(out->step, sizeof(out->step), "%s", rep.step);
			if (rep.has & DTX_F_TEXT)
				snprintf(out->reason, sizeof(out->reason), "%s", rep.text);
			rc = 0;
		} else {
			rc = DTX_EPROTO;
		}
		dtx_msg_clear(&rep);
		return rc;
	}
}

int dtx_client_run(dtx_client_t *self, const dtx_tx_t *tx, dtx_outcome_t *out, int wait_ms)
{
	dtx_msg_t req = {.type = DTX_T_TX,
			 .has = DTX_F_BRANCHES | DTX_F_KEY,
			 .nbranches = tx->nbranches,
			 .branches = tx->branches,
			 .key = tx->key};
	memset(out, 0, sizeof(*out)); /* a refusal here says so with no reason */
	if (tx->nbranches == 0)
		return DTX_EINVAL;
	if (tx->timeout_ms) {
		req.timeout_ms = tx->timeout_ms;
		req.has |= DTX_F_TIMEOUT;
	}
	return s_call(self, &req, out, wait_ms);
}

int dtx_client_run_saga(dtx_client_t *self, const dtx_saga_t *saga, dtx_outcome_t *out, int wait_ms)
{
	dtx_msg_t req = {.type = DTX_T_SAGA,
			 .has = DTX_F_STEPS | DTX_F_KEY,
			 .nsteps = saga->nsteps,
			 .steps = saga->steps,
			 .key = saga->key};
	int rc;
	/* the rules before anything leaves: the encoder would refuse the
	 * saga too, without saying why */
	memset(out, 0, sizeof(*out));
	if ((rc = dtx_saga_validate(saga, out->reason, sizeof(out->reason))))
		return rc;
	if (saga->timeout_ms) {
		req.timeout_ms = saga->timeout_ms;
		req.has |= DTX_F_TIMEOUT;
	}
	return s_call(self, &req, out, wait_ms);
}

int dtx_client_query(dtx_client_t *self, const char *gtid, dtx_outcome_t *out, int wait_ms)
{
	dtx_msg_t req = {.type = DTX_T_QUERY, .has = DTX_F_GTID, .gtid = gtid};
	if (!gtid || !*gtid)
		return DTX_EINVAL;
	return s_call(self, &req, out, wait_ms);
}
