/*
 * wal.h — the coordinator's write-ahead log, on LMDB. The only module of
 * dtx that calls LMDB.
 *
 * The log holds records, one per state transition of a global transaction,
 * keyed (sequence, index) so that a transaction's records lie together in
 * the order they were written. Each record carries a format version and a
 * CRC-32 of its bytes. Records are queued by wal_append() and written by
 * wal_flush() in ONE LMDB write transaction, committed with fsync: group
 * commit. A queued record is not durable until wal_flush() returns 0.
 *
 * Also kept: the coordinator id the log belongs to, its epoch (the second
 * it was created in: see wal_open) and the end of the reserved sequence
 * block, so a GTID never repeats across crashes, nor across a log created
 * afresh.
 *
 * Threads: one thread owns a wal_t.
 */
#ifndef DTX_WAL_H
#define DTX_WAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Record kinds. For transitions, the kind is the state entered; the states
 * are ordered by progress (see coordinatord/README.md for the machine).
 */
typedef enum {
	WAL_ACTIVE = 1,     /* begun; body lists the participants (lazy) */
	WAL_PREPARING = 2,  /* PREPARE sent to every participant (lazy) */
	WAL_COMMITTING = 3, /* decision COMMIT (forced: durable before anyone hears it) */
	WAL_COMMITTED = 4,  /* every participant acknowledged COMMIT: END (lazy) */
	WAL_ABORTING = 5,   /* decision ABORT; body says why (lazy: presumed abort) */
	WAL_ABORTED = 6,    /* every participant acknowledged ROLLBACK: END (lazy) */
	WAL_HEURISTIC = 7,  /* a branch went against the decision, or an operator act */
	WAL_IN_DOUBT = 8,   /* recovery could not decide: left to the operator */
	/* sagas (coordinatord/crd_saga.c): the same sequence space, each saga's
	 * records together like a transaction's */
	WAL_SAGA = 9,            /* begun: body = the definition, key (forced) */
	WAL_STEP_DONE = 10,      /* step `step` committed (lazy) */
	WAL_STEP_FAILED = 11,    /* step `step` failed or fenced; note says why (lazy) */
	WAL_COMPENSATING = 12,   /* the decision to compensate; `step` the culprit,
				* note why (forced) */
	WAL_STEP_COMPENSATED = 13, /* step `step`'s compensation committed (lazy) */
	WAL_COMPLETED = 14,      /* every step done: END (lazy) */
	WAL_COMPENSATED = 15,    /* every compensation done: END (lazy) */
	WAL_FORWARD = 16,        /* a saga without a pivot passed its point of no
			   * return: every compensable step done (forced) */
} wal_kind_t;

const char *wal_kind_str(int kind);
/* true for the kinds that end a transaction or saga (COMMITTED, ABORTED,
 * COMPLETED, COMPENSATED). */
bool wal_kind_is_end(int kind);

#define WAL_MAX_PARTS 32
#define WAL_NOTE_MAX 512

typedef struct {
	uint64_t seq;
	uint8_t idx;          /* 0 for the first record of seq, then 1, 2, ... */
	uint8_t kind;         /* wal_kind_t */
	uint32_t epoch;       /* the epoch the GTID was allocated in */
	int64_t at_us;        /* wall-clock time of the transition */
	uint8_t nparts;       /* WAL_ACTIVE: participants, in branch order */
	const char *parts[WAL_MAX_PARTS];
	const char *note;     /* optional text (reason, operator act), may be NULL */
	const char *key;      /* WAL_ACTIVE, WAL_SAGA: the client's submission key, or NULL */
	int step;             /* saga records: the step it is about; < 0: none */
	const void *body;     /* WAL_SAGA: the definition (a msgpack frame) */
	uint32_t body_len;
} wal_rec_t;

#define WAL_BODY_MAX (4u << 20)

#define WAL_KEY_MAX 64

typedef struct {
	const char *dir;        /* folder of data.mdb; created if missing */
	const char *coord_id;   /* the coordinator this log belongs to */
	size_t map_size;        /* LMDB map size: the most the log may hold */
	uint64_t seq_block;     /* sequence numbers reserved per meta write */
	bool create;            /* create a new log: refused if one is there; without
		      * it, a missing or empty log is refused */
} wal_opts_t;

typedef struct wal wal_t;

/*
 * Open the log (opts->create: create it, an explicit act): take the
 * single-instance lock, verify every record's CRC, check the coordinator
 * id and reserve a sequence block (durably). A log's epoch is the second
 * it was created in (counted from 2025; creating waits for the next
 * second, at most one) and stays its own; sequence numbers never repeat
 * within it. So a log created afresh for a coordinator id has an epoch no
 * earlier log of that id had, and no GTID repeats, as long as the clock is
 * not set back across the
 * re-creation. Returns 0 and *out (caller owns it), or
 * DTX_ENOTFOUND (no log, and not asked to create one), DTX_ELOCKED
 * (another process holds the log), DTX_ECRC (a damaged record), DTX_ELOG
 * (LMDB error, wrong coordinator id, a log with no coordinator record —
 * zeroed or emptied —, or create with a log there already), DTX_EIO; why
 * receives a description.
 */
int wal_open(const wal_opts_t *opts, wal_t **out, char *why, size_t why_len);

/* Close; queued records not flushed are dropped. Idempotent, clears *self_p. */
void wal_close(wal_t **self_p);

uint32_t wal_epoch(const wal_t *self);
/* The epoch the log was created in: wal_epoch() for a log made with this
 * version; 1 for an older log, whose epoch counted up at every open. A
 * GTID of an epoch below it, or above wal_epoch(), is not this log's. */
uint32_t wal_first_epoch(const wal_t *self);

/* The next sequence number; reserves (fsyncs) a new block when needed.
 * 0 or DTX_ELOG / DTX_EFULL. */
int wal_next_seq(wal_t *self, uint64_t *seq);

/*
 * Queue rec (copied). forced: the caller will not act on it before the
 * next wal_flush() returns; wal_forced_pending() tells the event loop a
 * flush is owed now. 0, DTX_EINVAL or DTX_ENOMEM.
 */
int wal_append(wal_t *self, const wal_rec_t *rec, bool forced);

size_t wal_pending(const wal_t *self);
bool wal_forced_pending(const wal_t *self);

/*
 * Write every queued record in one LMDB write transaction and commit it
 * (fsync). 0: all are durable and the queue is empty. DTX_EFULL (the map
 * or the disk is full) or DTX_ELOG: nothing was written and the queue is
 * kept for another try. DTX_EIO: the commit failed while writing or
 * syncing, so whether it reached the disk is unknown; the caller must not
 * go on (restart and let recovery read the log). *nflushed, if not NULL,
 * receives how many records went.
 */
int wal_flush(wal_t *self, size_t *nflushed);

/*
 * The same group commit in the background, so that the caller goes on
 * queueing while the disk syncs (the next batch forms during this one's
 * fsync). wal_flush_start hands every queued record to the writer thread
 * (*started false: nothing queued and no pruning due, or a batch is still
 * being written).
 * When wal_flush_fd() becomes readable, wal_flush_finish collects the
 * result with wal_flush's meanings: 0 (*nflushed records durable),
 * DTX_EFULL / DTX_ELOG (nothing written; the batch is queued again, in
 * front) or DTX_EIO. wal_flush_finish blocks until the batch is done when
 * called before; wal_flush refuses (DTX_EBUSY) while a batch is out.
 */
int wal_flush_start(wal_t *self, bool *started);
/* How long the LMDB commit (writes and fsyncs) of the last batch took, in
 * microseconds; read it after wal_flush or wal_flush_finish. */
int64_t wal_last_commit_us(const wal_t *self);
int wal_flush_fd(const wal_t *self);
bool wal_flush_busy(const wal_t *self);
int wal_flush_finish(wal_t *self, size_t *nflushed);

/*
 * Call fn once per transaction in the log, in sequence order, with its
 * records. Strings in recs live until fn returns. unfinished_only: skip
 * transactions whose last record ends them. fn returning non-zero stops the
 * scan with that value.
 */
typedef int (*wal_tx_fn)(const wal_rec_t *recs, unsigned nrecs, void *arg);
int wal_scan(wal_t *self, bool unfinished_only, wal_tx_fn fn, void *arg);

/* fn over the records of seq only; DTX_ENOTFOUND if there are none. */
int wal_history(wal_t *self, uint64_t seq, wal_tx_fn fn, void *arg);

/*
 * Decode and verify one record as the log holds it: key (9 bytes: seq
 * big-endian, idx) and value (the layout at the top of wal.c, its CRC-32
 * last). wal_open, wal_scan and wal_history read every record through it;
 * it is public for the fuzz target (tests/fuzz/fuzz_wal_rec.c) and trusts
 * none of the bytes. On 0, *rec is filled and its strings point into
 * *scratch. *scratch is malloc'ed or NULL on every return, errors
 * included: the caller frees it, and rec's strings die with it. DTX_ECRC
 * (the key's length, the checksum, the version or the layout is wrong),
 * DTX_ENOMEM.
 */
int wal_rec_decode(const void *kdata, size_t klen, const void *vdata, size_t vlen, wal_rec_t *rec,
		   char **scratch);

/*
 * The transaction whose begin record carries submission key (queued,
 * being written or in the log): 0 and *seq, DTX_ENOTFOUND (never seen, or
 * pruned with its transaction by retention), DTX_EINVAL, DTX_ELOG. A key
 * is written in the same commit as its begin record and removed with it.
 */
int wal_key_find(wal_t *self, const char *key, uint64_t *seq);

/*
 * Retention: remove transactions that ended before older_than_us (wall
 * clock). The writer thread removes them, a bounded number in each commit,
 * in the commits of the batches that
 * wal_flush_start hands it (no fsync of its own while records flow; with
 * none queued, wal_flush_start starts a batch for the pruning alone) until
 * none that old is left. A later call moves the cutoff. wal_prune_pending:
 * some are still due. After wal_flush_finish, wal_last_pruned tells how
 * many that batch removed and *rc whether its pruning failed (DTX_EFULL,
 * DTX_ELOG: then it was left out of the commit, the records went without
 * it, and it waits for the next call).
 */
void wal_prune_later(wal_t *self, int64_t older_than_us);
bool wal_prune_pending(const wal_t *self);
unsigned wal_last_pruned(const wal_t *self, int *rc);

/* The highest sequence number pruned so far (0: none), kept across
 * restarts. A GTID at or below it that the log lacks may have finished
 * either way: presumed abort cannot answer for it. */
uint64_t wal_pruned_hi(const wal_t *self);

#endif /* DTX_WAL_H */
