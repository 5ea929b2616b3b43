/*
 * wal.c — the coordinator log on LMDB.
 *
 * Layout: three named LMDB databases in one environment.
 *   "log"  key = seq (8 bytes big-endian) . idx (1 byte); value = a record
 *   "done" key = end time (8 bytes big-endian, µs) . seq; empty value.
 *          The retention index: which transactions ended when.
 *   "keys" key = a client's submission key; value = seq (8 bytes
 *          big-endian): written with the begin record that carries it,
 *          removed with the transaction by retention.
 *   "meta" "coord" = coordinator id, "epoch" = u32, "first_epoch" = u32
 *          (the epoch the log was created in), "seq_hi" = u64: the end
 *          of the reserved sequence block (no GTID at or above it was used),
 *          "pruned_hi" = u64: the highest sequence number retention removed
 *          (a GTID at or below it that the log lacks may have committed).
 *
 * Record value (little-endian):
 *   u8 version | u8 kind | u8 nparts | u8 flags | u32 epoch | i64 at_us |
 *   u16 note_len | nparts x (u8 len, bytes) | note bytes |
 *   [flags & 1: u8 key_len, key bytes] | [flags & 2: u8 step] |
 *   [flags & 4: u32 body_len, body bytes] | u32 crc
 * where crc = CRC-32 (zlib) over the key and every value byte before it.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "dtx.h"
#include "dtx_util.h"
#include "wal.h"

#define WAL_FORMAT 1
#define KEY_LEN 9
#define HDR_LEN 18
/* Retention in the background removes at most this many transactions in
 * one commit: enough to keep pace with any rate the log takes (hundreds
 * of commits a second), small enough not to hold up the decisions the
 * commit carries. */
#define PRUNE_PER_COMMIT 256

typedef struct {
	uint8_t key[KEY_LEN];
	uint8_t *val;
	size_t vlen;
	bool end;
	int64_t at_us;
	uint16_t key_off;              /* the submission key's bytes in val */
	uint8_t key_len;               /* 0: none */
} s_pending_t;

#define REC_F_KEY 1
#define REC_F_STEP 2
#define REC_F_BODY 4

struct wal {
	MDB_env *env;
	MDB_dbi log, done, meta;
	int lock_fd;
	uint32_t epoch;
	uint32_t first_epoch;          /* the epoch the log was created in */
	MDB_dbi keys;
	uint64_t seq_next, seq_hi, seq_block;
	uint64_t pruned_hi;            /* read and raised with __atomic: the
			     * writer thread raises it */
	uint64_t pruned_hi_disk;       /* as committed; with the write lock */
	s_pending_t *q;
	size_t nq, capq;
	bool forced;
	/* the background group commit: the writer thread writes wq while the
	 * caller fills q; efd says when it is done */
	pthread_t writer;
	bool writer_started, busy;     /* busy: the caller's view */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool job, stop;                /* under mu */
	int wrc;         /* under mu: the batch's result */
	s_pending_t *wq;
	size_t wnq, wcapq;
	/* retention in the background: transactions that ended before
	 * prune_before_us (0: none due) go in the writer's commits, at most
	 * PRUNE_PER_COMMIT at a time; the writer's copy, and how many its
	 * last batch pruned (written under mu, read once it is collected) */
	int64_t prune_before_us, wprune_before_us;
	unsigned wpruned;
	int wprune_rc;
	int efd;
	bool mu_init;
	int64_t commit_us;             /* how long the last batch's commit took */
};

const char *wal_kind_str(int kind)
{
	switch (kind) {
	case WAL_ACTIVE: return "active";
	case WAL_PREPARING: return "preparing";
	case WAL_COMMITTING: return "committing";
	case WAL_COMMITTED: return "committed";
	case WAL_ABORTING: return "aborting";
	case WAL_ABORTED: return "aborted";
	case WAL_HEURISTIC: return "heuristic";
	case WAL_IN_DOUBT: return "in-doubt";
	case WAL_SAGA: return "saga";
	case WAL_STEP_DONE: return "step-done";
	case WAL_STEP_FAILED: return "step-failed";
	case WAL_COMPENSATING: return "compensating";
	case WAL_STEP_COMPENSATED: return "step-compensated";
	case WAL_COMPLETED: return "completed";
	case WAL_COMPENSATED: return "compensated";
	case WAL_FORWARD: return "forward";
	}
	return "invalid";
}

bool wal_kind_is_end(int kind)
{
	return kind == WAL_COMMITTED || kind == WAL_ABORTED || kind == WAL_COMPLETED ||
	       kind == WAL_COMPENSATED;
}

static int s_why(char *why, size_t len, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int s_why(char *why, size_t len, int code, const char *fmt, ...)
{
	if (why && len) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(why, len, fmt, ap);
		va_end(ap);
	}
	return code;
}

/* The one translation of LMDB's error space. */
static int s_err(int mdb_rc)
{
	switch (mdb_rc) {
	case 0: return 0;
	case MDB_NOTFOUND: return DTX_ENOTFOUND;
	case MDB_MAP_FULL: return DTX_EFULL;
	case ENOSPC: return DTX_EFULL;
	case ENOMEM: return DTX_ENOMEM;
	case EIO: return DTX_EIO;
	default: return DTX_ELOG;
	}
}

static void s_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static uint64_t s_get_be64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

static void s_le(uint8_t *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++, v >>= 8)
		p[i] = (uint8_t)v;
}

static uint64_t s_get_le(const uint8_t *p, int n)
{
	uint64_t v = 0;
	for (int i = n - 1; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static uint32_t s_crc(const uint8_t *key, const uint8_t *val, size_t vlen)
{
	uLong c = crc32(0L, Z_NULL, 0);
	c = crc32(c, key, KEY_LEN);
	c = crc32(c, val, (uInt)vlen);
	return (uint32_t)c;
}

/* Decode and verify one record (wal.h). */
int wal_rec_decode(const void *kdata, size_t klen, const void *vdata, size_t vlen, wal_rec_t *rec,
		   char **scratch)
{
	const uint8_t *p = vdata;
	size_t n = vlen, off = HDR_LEN;
	char *s;

	*scratch = NULL;
	if (klen != KEY_LEN || n < HDR_LEN + 4)
		return DTX_ECRC;
	if ((uint32_t)s_get_le(p + n - 4, 4) != s_crc(kdata, p, n - 4))
		return DTX_ECRC;
	if (p[0] != WAL_FORMAT || p[2] > WAL_MAX_PARTS)
		return DTX_ECRC;
	memset(rec, 0, sizeof(*rec));
	rec->seq = s_get_be64(kdata);
	rec->idx = ((const uint8_t *)kdata)[8];
	rec->kind = p[1];
	rec->nparts = p[2];
	rec->epoch = (uint32_t)s_get_le(p + 4, 4);
	rec->at_us = (int64_t)s_get_le(p + 8, 8);
	size_t note_len = s_get_le(p + 16, 2);
	if (!(s = *scratch = malloc(n + WAL_MAX_PARTS + 3)))
		return DTX_ENOMEM;
	for (unsigned i = 0; i < rec->nparts; i++) {
		if (off + 1 > n - 4 || off + 1 + p[off] > n - 4)
			return DTX_ECRC;
		size_t len = p[off++];
		memcpy(s, p + off, len);
		s[len] = '\0';
		rec->parts[i] = s;
		s += len + 1;
		off += len;
	}
	/* after the note: the key, the step, the body, each if its flag says */
	size_t end = n - 4, q = off + note_len, key_len = 0, body_len = 0;
	rec->step = -1;
	if (q > end || (p[3] & ~(REC_F_KEY | REC_F_STEP | REC_F_BODY)))
		return DTX_ECRC;
	if (p[3] & REC_F_KEY) {
		if (q + 1 > end || (key_len = p[q]) == 0 || q + 1 + key_len > end)
			return DTX_ECRC;
		q += 1 + key_len;
	}
	if (p[3] & REC_F_STEP) {
		if (q + 1 > end)
			return DTX_ECRC;
		rec->step = p[q++];
	}
	if (p[3] & REC_F_BODY) {
		if (q + 4 > end || (body_len = s_get_le(p + q, 4)) > end - q - 4 ||
		    body_len > WAL_BODY_MAX)
			return DTX_ECRC;
		rec->body = p + q + 4; /* points into vdata, not scratch: see below */
		rec->body_len = (uint32_t)body_len;
		q += 4 + body_len;
	}
	if (q != end)
		return DTX_ECRC;
	if (note_len) {
		memcpy(s, p + off, note_len);
		s[note_len] = '\0';
		rec->note = s;
		s += note_len + 1;
	}
	if (key_len) {
		memcpy(s, p + off + note_len + 1, key_len);
		s[key_len] = '\0';
		rec->key = s;
		s += key_len + 1;
	}
	if (body_len) {
		memcpy(s, rec->body, body_len);
		rec->body = s;
	}
	return 0;
}

static int s_decode(const MDB_val *k, const MDB_val *v, wal_rec_t *rec, char **scratch)
{
	return wal_rec_decode(k->mv_data, k->mv_size, v->mv_data, v->mv_size, rec, scratch);
}

/* --- meta ------------------------------------------------------------- */

static int s_meta_get_u64(MDB_txn *txn, MDB_dbi dbi, const char *name, int bytes, uint64_t *out)
{
	MDB_val k = {strlen(name), (void *)name}, v;
	int rc = mdb_get(txn, dbi, &k, &v);
	if (rc)
		return rc;
	if (v.mv_size != (size_t)bytes)
		return MDB_CORRUPTED;
	*out = s_get_le(v.mv_data, bytes);
	return 0;
}

static int s_meta_put_u64(MDB_txn *txn, MDB_dbi dbi, const char *name, int bytes, uint64_t val)
{
	uint8_t b[8];
	MDB_val k = {strlen(name), (void *)name}, v = {(size_t)bytes, b};
	s_le(b, val, bytes);
	return mdb_put(txn, dbi, &k, &v, 0);
}

/* Reserve the next sequence block: one synced write of seq_hi. */
static int s_reserve(wal_t *self)
{
	MDB_txn *txn;
	uint64_t hi = self->seq_hi + self->seq_block;
	int rc = mdb_txn_begin(self->env, NULL, 0, &txn);
	if (rc)
		return s_err(rc);
	if ((rc = s_meta_put_u64(txn, self->meta, "seq_hi", 8, hi))) {
		mdb_txn_abort(txn);
		return s_err(rc);
	}
	/* Durability point: once this commit returns, no GTID below hi will be
	 * allocated again, whatever happens to this process. */
	if ((rc = mdb_txn_commit(txn)))
		return s_err(rc);
	self->seq_hi = hi;
	return 0;
}

/* --- open / close ----------------------------------------------------- */

/*
 * LMDB maps data.mdb and trusts it to hold every page its meta page
 * names: a truncated file would fault (SIGBUS) on the first read past
 * its end. Check the size before any page is touched.
 */
static int s_check_size(wal_t *self, const char *dir, char *why, size_t why_len)
{
	MDB_envinfo info;
	MDB_stat st;
	struct stat fst;
	char path[4096];

	snprintf(path, sizeof(path), "%s/data.mdb", dir);
	if (stat(path, &fst) != 0)
		return s_why(why, why_len, DTX_EIO, "cannot stat %s: %s", path, strerror(errno));
	if (mdb_env_info(self->env, &info) || mdb_env_stat(self->env, &st))
		return s_why(why, why_len, DTX_ELOG, "cannot read the log's meta page");
	uint64_t need = ((uint64_t)info.me_last_pgno + 1) * st.ms_psize;
	if ((uint64_t)fst.st_size < need)
		return s_why(why, why_len, DTX_ECRC,
			     "%s is truncated: %lld bytes, its meta page needs %llu", path,
			     (long long)fst.st_size, (unsigned long long)need);
	return 0;
}

static int s_verify_all(wal_t *self, MDB_txn *txn, char *why, size_t why_len)
{
	MDB_cursor *cur;
	MDB_val k, v;
	int rc = mdb_cursor_open(txn, self->log, &cur);
	if (rc)
		return s_why(why, why_len, s_err(rc), "lmdb: %s", mdb_strerror(rc));
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		wal_rec_t rec;
		char *scratch;
		int drc = s_decode(&k, &v, &rec, &scratch);
		free(scratch);
		if (drc) {
			uint64_t seq = k.mv_size >= 8 ? s_get_be64(k.mv_data) : 0;
			mdb_cursor_close(cur);
			return s_why(why, why_len, drc == DTX_ECRC ? DTX_ECRC : drc,
				     "log record of sequence %" PRIu64 " fails its checksum", seq);
		}
	}
	mdb_cursor_close(cur);
	if (rc != MDB_NOTFOUND)
		return s_why(why, why_len, s_err(rc), "lmdb scan: %s", mdb_strerror(rc));
	return 0;
}

/* A log's epoch is the second it was created in, counted from 2025-01-01
 * UTC, and stays its own for life: within a log no sequence number repeats
 * (blocks are reserved durably), and a log created afresh for the same
 * coordinator id (the old one lost) has a later second, so no GTID repeats
 * (s_creation_epoch). A log made before this was kept ("first_epoch"
 * absent) goes on counting its epoch up at every open, as it did. */
#define EPOCH_BASE_S 1735689600

static int64_t s_clock_epoch(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec - EPOCH_BASE_S;
}

/* The epoch of a new log: the next second of the clock (waited for, at
 * most one second), so that it is later than the second any earlier log
 * was created in, this one included. */
static uint32_t s_creation_epoch(void)
{
	int64_t t0 = s_clock_epoch(), now;
	while ((now = s_clock_epoch()) <= t0) {
		struct timespec nap = {0, 20 * 1000 * 1000};
		nanosleep(&nap, NULL);
	}
	return (uint32_t)(now > 0 ? now : 1);
}

/* The files of a log folder: each absent, or a regular file (lstat). */
static int s_plain_files(const char *dir, char *why, size_t why_len)
{
	static const char *const names[] = {"data.mdb", "lock.mdb", "coordinatord.lock"};
	char path[4096];
	struct stat st;

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		if (lstat(path, &st) != 0) {
			if (errno == ENOENT)
				continue;
			return s_why(why, why_len, DTX_EIO, "log_dir %s: cannot stat %s: %s", dir,
				     names[i], strerror(errno));
		}
		if (!S_ISREG(st.st_mode))
			return s_why(why, why_len, DTX_ECONFIG,
				     "log_dir %s: %s is %s, not a regular file: refused", dir,
				     names[i], S_ISLNK(st.st_mode) ? "a symbolic link" : "special");
	}
	return 0;
}

int wal_open(const wal_opts_t *opts, wal_t **out, char *why, size_t why_len)
{
	wal_t *self;
	MDB_txn *txn = NULL;
	char path[4096];
	uint64_t epoch = 0, hi = 0;
	int rc, mrc;

	*out = NULL;
	if (!opts->dir || !opts->coord_id)
		return s_why(why, why_len, DTX_EINVAL,
			     "log folder and coordinator id are required");
	if (!(self = calloc(1, sizeof(*self))))
		return DTX_ENOMEM;
	self->lock_fd = -1;
	self->seq_block = opts->seq_block ? opts->seq_block : 100000;
	pthread_mutex_init(&self->mu, NULL);
	pthread_cond_init(&self->cv, NULL);
	self->mu_init = true;
	if ((self->efd = eventfd(0, EFD_CLOEXEC)) < 0) {
		free(self);
		return s_why(why, why_len, DTX_EIO, "eventfd: %s", strerror(errno));
	}

	/* The folder is ours alone, and what LMDB and the lock open in it
	 * are plain files: no symlink planted there sends a write elsewhere
	 * (LMDB's own opens follow links; nobody else can add one). */
	if (opts->create && mkdir(opts->dir, 0700) != 0 && errno != EEXIST) {
		rc = s_why(why, why_len, DTX_EIO, "cannot create %s: %s", opts->dir,
			   strerror(errno));
		goto fail;
	}
	if ((rc = dtx_dir_check(opts->dir, "log_dir", why, why_len))) {
		if (rc == DTX_ENOTFOUND)
			s_why(why, why_len, rc,
			      "no log in %s: creating one is an explicit act (coordinatord -c FILE "
			      "--create-log)",
			      opts->dir);
		goto fail;
	}
	if ((rc = s_plain_files(opts->dir, why, why_len)))
		goto fail;

	struct stat dst;
	snprintf(path, sizeof(path), "%s/data.mdb", opts->dir);
	bool exists = lstat(path, &dst) == 0;
	if (!opts->create && !exists) {
		rc = s_why(why, why_len, DTX_ENOTFOUND,
			   "no log in %s: creating one is an explicit act (coordinatord -c FILE "
			   "--create-log)",
			   opts->dir);
		goto fail;
	}
	if (opts->create && exists && dst.st_size > 0) {
		rc = s_why(why, why_len, DTX_ELOG, "%s exists: a log is there already", path);
		goto fail;
	}
	snprintf(path, sizeof(path), "%s/coordinatord.lock", opts->dir);
	if ((self->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK,
				  0600)) < 0) {
		rc = s_why(why, why_len, DTX_EIO, "cannot open %s: %s", path, strerror(errno));
		goto fail;
	}
	/* LMDB lets many processes share an environment: this lock is what
	 * keeps a second coordinator off the same log. */
	if (flock(self->lock_fd, LOCK_EX | LOCK_NB) != 0) {
		rc = s_why(why, why_len, DTX_ELOCKED, "the log in %s is held by another process",
			   opts->dir);
		goto fail;
	}
	if ((mrc = mdb_env_create(&self->env)) || (mrc = mdb_env_set_maxdbs(self->env, 5)) ||
	    (mrc = mdb_env_set_mapsize(self->env, opts->map_size ? opts->map_size : (1u << 30))) ||
	    (mrc = mdb_env_open(self->env, opts->dir, MDB_NORDAHEAD, 0600))) {
		rc = s_why(why, why_len, s_err(mrc), "cannot open the log in %s: %s", opts->dir,
			   mdb_strerror(mrc));
		goto fail;
	}
	if ((rc = s_check_size(self, opts->dir, why, why_len)))
		goto fail;
	if ((mrc = mdb_txn_begin(self->env, NULL, 0, &txn)) ||
	    (mrc = mdb_dbi_open(txn, "log", MDB_CREATE, &self->log)) ||
	    (mrc = mdb_dbi_open(txn, "done", MDB_CREATE, &self->done)) ||
	    (mrc = mdb_dbi_open(txn, "meta", MDB_CREATE, &self->meta)) ||
	    (mrc = mdb_dbi_open(txn, "keys", MDB_CREATE, &self->keys))) {
		rc = s_why(why, why_len, s_err(mrc), "cannot open the log databases: %s",
			   mdb_strerror(mrc));
		goto fail;
	}
	MDB_val ck = {5, "coord"}, cv;
	mrc = mdb_get(txn, self->meta, &ck, &cv);
	if (mrc == MDB_NOTFOUND && !opts->create) {
		/* A zeroed or emptied file opens as an empty LMDB environment:
		 * starting on it would hand out GTIDs again. */
		rc = s_why(why, why_len, DTX_ELOG,
			   "the log in %s holds no coordinator record: it is damaged or was never "
			   "created; refusing to start (if it is lost for good, move it away and "
			   "create a new one with --create-log)",
			   opts->dir);
		goto fail;
	}
	if (mrc == 0 && opts->create) {
		/* Checked again under the lock: another --create-log won. */
		rc = s_why(why, why_len, DTX_ELOG, "the log in %s exists: a log is there already",
			   opts->dir);
		goto fail;
	}
	if (mrc == MDB_NOTFOUND) {
		cv = (MDB_val){strlen(opts->coord_id), (void *)opts->coord_id};
		mrc = mdb_put(txn, self->meta, &ck, &cv, 0);
	} else if (mrc == 0 && (cv.mv_size != strlen(opts->coord_id) ||
				memcmp(cv.mv_data, opts->coord_id, cv.mv_size) != 0)) {
		rc = s_why(why, why_len, DTX_ELOG,
			   "the log in %s belongs to coordinator '%.*s', not '%s'", opts->dir,
			   (int)(cv.mv_size > 32 ? 32 : cv.mv_size), (const char *)cv.mv_data,
			   opts->coord_id);
		goto fail;
	}
	if (mrc) {
		rc = s_why(why, why_len, s_err(mrc), "log meta: %s", mdb_strerror(mrc));
		goto fail;
	}
	if ((rc = s_verify_all(self, txn, why, why_len)))
		goto fail;
	mrc = s_meta_get_u64(txn, self->meta, "epoch", 4, &epoch);
	if (mrc == 0 || mrc == MDB_NOTFOUND)
		mrc = s_meta_get_u64(txn, self->meta, "seq_hi", 8, &hi);
	if (mrc == 0 || mrc == MDB_NOTFOUND)
		mrc = s_meta_get_u64(txn, self->meta, "pruned_hi", 8, &self->pruned_hi);
	uint64_t first = 0;
	if (mrc == 0 || mrc == MDB_NOTFOUND)
		mrc = s_meta_get_u64(txn, self->meta, "first_epoch", 4, &first);
	self->pruned_hi_disk = self->pruned_hi;
	if (mrc && mrc != MDB_NOTFOUND) {
		rc = s_why(why, why_len, DTX_ECRC, "log meta is damaged: %s", mdb_strerror(mrc));
		goto fail;
	}
	if (epoch >= UINT32_MAX) {
		rc = s_why(why, why_len, DTX_ELOG, "epoch counter exhausted");
		goto fail;
	}
	if (opts->create)
		self->epoch = self->first_epoch = s_creation_epoch();
	else if (first)
		self->epoch = self->first_epoch = (uint32_t)first;
	else /* a log from before: counted up at every open, from 1 */
		self->epoch = (uint32_t)epoch + 1, self->first_epoch = 1;
	mrc = opts->create ? s_meta_put_u64(txn, self->meta, "first_epoch", 4, self->first_epoch)
			   : 0;
	if (mrc || (mrc = s_meta_put_u64(txn, self->meta, "epoch", 4, self->epoch))) {
		rc = s_why(why, why_len, s_err(mrc), "log meta: %s", mdb_strerror(mrc));
		goto fail;
	}
	/* Durability point: the epoch is on disk before any GTID of it is
	 * handed out. */
	mrc = mdb_txn_commit(txn);
	txn = NULL;
	if (mrc) {
		rc = s_why(why, why_len, s_err(mrc), "log commit: %s", mdb_strerror(mrc));
		goto fail;
	}
	/* Everything below the old block end may have been used: start there. */
	self->seq_next = self->seq_hi = hi ? hi : 1;
	if ((rc = s_reserve(self))) {
		s_why(why, why_len, rc, "cannot reserve a sequence block: %s", dtx_strerror(rc));
		goto fail;
	}
	*out = self;
	return 0;
fail:
	if (txn)
		mdb_txn_abort(txn);
	wal_close(&self);
	return rc;
}

static void s_drop_queue(wal_t *self)
{
	for (size_t i = 0; i < self->nq; i++)
		free(self->q[i].val);
	self->nq = 0;
	self->forced = false;
}

static void s_writer_stop(wal_t *self)
{
	if (!self->writer_started)
		return;
	pthread_mutex_lock(&self->mu);
	self->stop = true;
	pthread_cond_signal(&self->cv);
	pthread_mutex_unlock(&self->mu);
	pthread_join(self->writer, NULL);
	self->writer_started = false;
	for (size_t i = 0; i < self->wnq; i++)
		free(self->wq[i].val);
	self->wnq = 0;
}

void wal_close(wal_t **self_p)
{
	wal_t *self = self_p ? *self_p : NULL;
	if (!self)
		return;
	s_writer_stop(self);
	s_drop_queue(self);
	free(self->q);
	free(self->wq);
	if (self->efd >= 0)
		close(self->efd);
	if (self->mu_init) {
		pthread_mutex_destroy(&self->mu);
		pthread_cond_destroy(&self->cv);
	}
	if (self->env)
		mdb_env_close(self->env);
	if (self->lock_fd >= 0)
		close(self->lock_fd); /* releases the flock */
	free(self);
	*self_p = NULL;
}

uint32_t wal_epoch(const wal_t *self)
{
	return self->epoch;
}

uint32_t wal_first_epoch(const wal_t *self)
{
	return self->first_epoch;
}

uint64_t wal_pruned_hi(const wal_t *self)
{
	return __atomic_load_n(&self->pruned_hi, __ATOMIC_ACQUIRE);
}

int wal_next_seq(wal_t *self, uint64_t *seq)
{
	int rc;
	if (self->seq_next >= self->seq_hi && (rc = s_reserve(self)))
		return rc;
	*seq = self->seq_next++;
	return 0;
}

/* --- append / flush --------------------------------------------------- */

int wal_append(wal_t *self, const wal_rec_t *rec, bool forced)
{
	size_t note_len = rec->note ? strlen(rec->note) : 0;
	size_t key_len = rec->key ? strlen(rec->key) : 0;
	bool has_step = rec->step >= 0 && rec->kind >= WAL_SAGA;
	size_t body_len = rec->body ? rec->body_len : 0;
	size_t n = HDR_LEN + note_len + (key_len ? 1 + key_len : 0) + has_step +
		   (body_len ? 4 + body_len : 0) + 4;
	uint8_t *v, *p;

	if (rec->kind < WAL_ACTIVE || rec->kind > WAL_FORWARD || rec->nparts > WAL_MAX_PARTS ||
	    note_len > WAL_NOTE_MAX || key_len > WAL_KEY_MAX ||
	    (key_len && rec->kind != WAL_ACTIVE && rec->kind != WAL_SAGA) || rec->step > 255 ||
	    body_len > WAL_BODY_MAX || (body_len && rec->kind != WAL_SAGA))
		return DTX_EINVAL;
	for (unsigned i = 0; i < rec->nparts; i++) {
		size_t len = strlen(rec->parts[i]);
		if (len > 255)
			return DTX_EINVAL;
		n += 1 + len;
	}
	if (self->nq == self->capq) {
		size_t cap = self->capq ? self->capq * 2 : 256;
		s_pending_t *q = realloc(self->q, cap * sizeof(*q));
		if (!q)
			return DTX_ENOMEM;
		self->q = q;
		self->capq = cap;
	}
	if (!(v = malloc(n)))
		return DTX_ENOMEM;
	s_pending_t *e = &self->q[self->nq];
	s_be64(e->key, rec->seq);
	e->key[8] = rec->idx;
	v[0] = WAL_FORMAT;
	v[1] = rec->kind;
	v[2] = rec->nparts;
	v[3] = (key_len ? REC_F_KEY : 0) | (has_step ? REC_F_STEP : 0) |
	       (body_len ? REC_F_BODY : 0);
	s_le(v + 4, rec->epoch, 4);
	s_le(v + 8, (uint64_t)rec->at_us, 8);
	s_le(v + 16, note_len, 2);
	p = v + HDR_LEN;
	for (unsigned i = 0; i < rec->nparts; i++) {
		size_t len = strlen(rec->parts[i]);
		*p++ = (uint8_t)len;
		memcpy(p, rec->parts[i], len);
		p += len;
	}
	if (note_len) {
		memcpy(p, rec->note, note_len);
		p += note_len;
	}
	e->key_len = (uint8_t)key_len;
	if (key_len) {
		*p++ = (uint8_t)key_len;
		e->key_off = (uint16_t)(p - v);
		memcpy(p, rec->key, key_len);
		p += key_len;
	}
	if (has_step)
		*p++ = (uint8_t)rec->step;
	if (body_len) {
		s_le(p, body_len, 4);
		memcpy(p + 4, rec->body, body_len);
		p += 4 + body_len;
	}
	s_le(p, s_crc(e->key, v, n - 4), 4);
	e->val = v;
	e->vlen = n;
	e->end = wal_kind_is_end(rec->kind);
	e->at_us = rec->at_us;
	self->nq++;
	self->forced |= forced;
	return 0;
}

size_t wal_pending(const wal_t *self)
{
	return self->nq;
}

bool wal_forced_pending(const wal_t *self)
{
	return self->forced;
}

static int s_prune_txn(wal_t *self, MDB_txn *txn, int64_t older_than_us, unsigned max,
		       unsigned *removed, uint64_t *disk_hi);

/* Write n records in one LMDB write transaction, with it remove up to
 * PRUNE_PER_COMMIT transactions that ended before prune_before_us (0:
 * none; *pruned gets the count), and commit it: 0, or the error (nothing
 * written: DTX_EFULL, DTX_ELOG; unknown: DTX_EIO). */
static int s_write(wal_t *self, const s_pending_t *q, size_t n, int64_t prune_before_us,
		   unsigned *pruned)
{
	MDB_txn *txn;
	uint64_t disk_hi = 0;
	unsigned removed = 0;
	int rc;

	*pruned = 0;
	if ((rc = mdb_txn_begin(self->env, NULL, 0, &txn)))
		return s_err(rc);
	for (size_t i = 0; i < n && rc == 0; i++) {
		const s_pending_t *e = &q[i];
		MDB_val k = {KEY_LEN, (void *)e->key}, v = {e->vlen, e->val};
		rc = mdb_put(txn, self->log, &k, &v, 0);
		if (rc == 0 && e->key_len) {
			MDB_val kk = {e->key_len, e->val + e->key_off}, kv = {8, (void *)e->key};
			rc = mdb_put(txn, self->keys, &kk, &kv, 0);
		}
		if (rc == 0 && e->end) {
			uint8_t dk[16];
			MDB_val dkv = {16, dk}, empty = {0, ""};
			s_be64(dk, (uint64_t)e->at_us);
			memcpy(dk + 8, e->key, 8);
			rc = mdb_put(txn, self->done, &dkv, &empty, 0);
		}
	}
	if (rc == 0 && prune_before_us)
		rc = s_prune_txn(self, txn, prune_before_us, PRUNE_PER_COMMIT, &removed, &disk_hi);
	if (rc) {
		mdb_txn_abort(txn);
		return s_err(rc);
	}
	/* Crash point: every record is in the write transaction, none on disk. */
	dtx_crash_point("wal.before_commit");
	int64_t t0 = dtx_now_us();
	/* Durability point: when this commit returns 0, every record is on
	 * disk (LMDB fsyncs the data, then the meta page). If the process
	 * dies before it returns, none of them is, and recovery presumes
	 * abort for every transaction whose decision was among them. */
	rc = mdb_txn_commit(txn);
	self->commit_us = dtx_now_us() - t0; /* read after the batch is collected */
	if (rc == 0) {
		*pruned = removed;
		if (disk_hi)
			self->pruned_hi_disk = disk_hi;
	}
	if (rc == MDB_MAP_FULL || rc == ENOSPC)
		return DTX_EFULL; /* refused before the meta page: nothing written */
	if (rc)
		return DTX_EIO;   /* a failed write or fsync: on disk or not, unknown */
	return 0;
}

int wal_flush(wal_t *self, size_t *nflushed)
{
	size_t n = self->nq;
	int rc;

	if (nflushed)
		*nflushed = 0;
	if (self->busy)
		return DTX_EBUSY;
	if (n == 0)
		return 0;
	unsigned pruned;
	if ((rc = s_write(self, self->q, n, 0, &pruned)))
		return rc; /* the queue stays for the next try */
	s_drop_queue(self);
	if (nflushed)
		*nflushed = n;
	return 0;
}

static void *s_writer(void *arg)
{
	wal_t *self = arg;
	pthread_mutex_lock(&self->mu);
	for (;;) {
		while (!self->job && !self->stop)
			pthread_cond_wait(&self->cv, &self->mu);
		if (!self->job)
			break;
		pthread_mutex_unlock(&self->mu);
		unsigned pruned = 0;
		int64_t before = self->wprune_before_us;
		int prc = 0, rc = s_write(self, self->wq, self->wnq, before, &pruned);
		/* Nothing written: pruning must not cost the records their
		 * commit (deleting needs pages too, on a full map); again
		 * without it. */
		if (before && (rc == DTX_EFULL || rc == DTX_ELOG)) {
			prc = rc;
			rc = self->wnq ? s_write(self, self->wq, self->wnq, 0, &pruned) : 0;
		}
		pthread_mutex_lock(&self->mu);
		self->job = false;
		self->wrc = rc;
		self->wpruned = pruned;
		self->wprune_rc = prc;
		uint64_t one = 1;
		if (write(self->efd, &one, sizeof(one)) != sizeof(one))
			abort(); /* an eventfd write cannot fail short of a bug */
	}
	pthread_mutex_unlock(&self->mu);
	return NULL;
}

int64_t wal_last_commit_us(const wal_t *self)
{
	return self->commit_us;
}

int wal_flush_fd(const wal_t *self)
{
	return self->efd;
}

bool wal_flush_busy(const wal_t *self)
{
	return self->busy;
}

int wal_flush_start(wal_t *self, bool *started)
{
	*started = false;
	if (self->busy || (self->nq == 0 && !self->prune_before_us))
		return 0;
	if (!self->writer_started) {
		if (pthread_create(&self->writer, NULL, s_writer, self))
			return DTX_ENOMEM;
		self->writer_started = true;
	}
	/* hand the queue over; the emptied batch array becomes the queue */
	s_pending_t *t = self->wq;
	size_t tcap = self->wcapq;
	self->wq = self->q;
	self->wnq = self->nq;
	self->wcapq = self->capq;
	self->q = t;
	self->capq = tcap;
	self->nq = 0;
	self->forced = false;
	self->busy = true;
	self->wprune_before_us = self->prune_before_us;
	pthread_mutex_lock(&self->mu);
	self->job = true;
	pthread_cond_signal(&self->cv);
	pthread_mutex_unlock(&self->mu);
	*started = true;
	return 0;
}

int wal_flush_finish(wal_t *self, size_t *nflushed)
{
	uint64_t v;
	int rc;

	*nflushed = 0;
	if (!self->busy)
		return 0;
	while (read(self->efd, &v, sizeof(v)) < 0 && errno == EINTR)
		;
	pthread_mutex_lock(&self->mu);
	rc = self->wrc;
	pthread_mutex_unlock(&self->mu);
	self->busy = false;
	/* Retention is done up to its cutoff when a commit removed fewer
	 * than it could (or failed to: the next request tries again),
	 * unless a newer cutoff came meanwhile. */
	if (self->wprune_before_us && self->prune_before_us == self->wprune_before_us &&
	    (self->wprune_rc || self->wpruned < PRUNE_PER_COMMIT))
		self->prune_before_us = 0;
	if (rc == 0) {
		for (size_t i = 0; i < self->wnq; i++)
			free(self->wq[i].val);
		*nflushed = self->wnq;
		self->wnq = 0;
		return 0;
	}
	if (rc == DTX_EIO)
		return rc;
	/* Nothing was written: the batch goes back before what was queued
	 * since, for the next try. */
	if (self->capq < self->nq + self->wnq) {
		s_pending_t *q = realloc(self->q, (self->nq + self->wnq) * sizeof(*q));
		if (!q)
			return DTX_EIO; /* cannot keep them: as bad as not knowing */
		self->q = q;
		self->capq = self->nq + self->wnq;
	}
	memmove(self->q + self->wnq, self->q, self->nq * sizeof(*self->q));
	memcpy(self->q, self->wq, self->wnq * sizeof(*self->q));
	self->nq += self->wnq;
	self->wnq = 0;
	self->forced = true;
	return rc;
}

/* --- scans ------------------------------------------------------------ */

typedef struct {
	wal_rec_t recs[256];
	char *scratch[256];
	unsigned n;
} s_group_t;

static void s_group_reset(s_group_t *g)
{
	for (unsigned i = 0; i < g->n; i++)
		free(g->scratch[i]);
	g->n = 0;
}

static int s_emit(s_group_t *g, bool unfinished_only, wal_tx_fn fn, void *arg)
{
	int rc = 0;
	if (g->n && !(unfinished_only && wal_kind_is_end(g->recs[g->n - 1].kind)))
		rc = fn(g->recs, g->n, arg);
	s_group_reset(g);
	return rc;
}

/* Walk the log from seq_from (all if has_only is false, else only seq_from). */
static int s_walk(wal_t *self, uint64_t seq_from, bool only, bool unfinished_only, wal_tx_fn fn,
		  void *arg)
{
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v;
	uint8_t start[KEY_LEN] = {0};
	s_group_t *g = calloc(1, sizeof(*g));
	int rc, out = 0;
	bool any = false;

	if (!g)
		return DTX_ENOMEM;
	if ((rc = mdb_txn_begin(self->env, NULL, MDB_RDONLY, &txn))) {
		free(g);
		return s_err(rc);
	}
	if ((rc = mdb_cursor_open(txn, self->log, &cur))) {
		mdb_txn_abort(txn);
		free(g);
		return s_err(rc);
	}
	s_be64(start, seq_from);
	k = (MDB_val){KEY_LEN, start};
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		wal_rec_t rec;
		char *scratch;
		int drc = s_decode(&k, &v, &rec, &scratch);
		if (drc) {
			free(scratch);
			out = drc;
			break;
		}
		if (only && rec.seq != seq_from) {
			free(scratch);
			break;
		}
		if (g->n && (g->recs[0].seq != rec.seq || g->n == 256) &&
		    (out = s_emit(g, unfinished_only, fn, arg))) {
			free(scratch);
			break;
		}
		g->recs[g->n] = rec;
		g->scratch[g->n++] = scratch;
		any = true;
	}
	if (!out && (rc == 0 || rc == MDB_NOTFOUND))
		out = s_emit(g, unfinished_only, fn, arg);
	else if (!out)
		out = s_err(rc);
	s_group_reset(g);
	free(g);
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	if (out == 0 && only && !any)
		return DTX_ENOTFOUND;
	return out;
}

int wal_scan(wal_t *self, bool unfinished_only, wal_tx_fn fn, void *arg)
{
	return s_walk(self, 0, false, unfinished_only, fn, arg);
}

int wal_history(wal_t *self, uint64_t seq, wal_tx_fn fn, void *arg)
{
	return s_walk(self, seq, true, false, fn, arg);
}

static bool s_key_in(const s_pending_t *q, size_t n, const char *key, size_t len, uint64_t *seq)
{
	for (size_t i = n; i-- > 0;)
		if (q[i].key_len == len && memcmp(q[i].val + q[i].key_off, key, len) == 0) {
			*seq = s_get_be64(q[i].key);
			return true;
		}
	return false;
}

int wal_key_find(wal_t *self, const char *key, uint64_t *seq)
{
	size_t len = key ? strlen(key) : 0;
	MDB_txn *txn;
	MDB_val k = {len, (void *)key}, v;
	int rc;

	if (len == 0 || len > WAL_KEY_MAX)
		return DTX_EINVAL;
	/* Queued, or in the batch the writer has (which it only reads). */
	if (s_key_in(self->q, self->nq, key, len, seq) ||
	    (self->busy && s_key_in(self->wq, self->wnq, key, len, seq)))
		return 0;
	if ((rc = mdb_txn_begin(self->env, NULL, MDB_RDONLY, &txn)))
		return s_err(rc);
	rc = mdb_get(txn, self->keys, &k, &v);
	if (rc == 0 && v.mv_size == 8)
		*seq = s_get_be64(v.mv_data);
	else if (rc == 0)
		rc = MDB_CORRUPTED;
	mdb_txn_abort(txn);
	return s_err(rc);
}

/* Remove up to max transactions that ended before older_than_us within
 * txn; *removed gets the count. The mark of the highest sequence number
 * pruned is raised before the commit, in memory (for readers, who must
 * never find a pruned transaction missing without it) and in meta (in
 * the same commit as the removal: the log never lacks a pruned
 * transaction without knowing it may have been one); *disk_hi gets the
 * mark the commit writes (0: unchanged), kept once it is committed. A commit
 * that fails leaves the mark in memory raised, which only makes answers
 * more cautious. */
/* A record about to be pruned: the submission key it carries (a begin
 * record's) goes with it. */
static int s_prune_key(wal_t *self, MDB_txn *txn, const MDB_val *k, const MDB_val *v)
{
	wal_rec_t rec;
	char *scratch;
	int rc = 0;
	if (v->mv_size < HDR_LEN || !(((const uint8_t *)v->mv_data)[3] & REC_F_KEY))
		return 0;
	if (s_decode(k, v, &rec, &scratch) == 0 && rec.key) {
		/* only if the key still names this transaction */
		MDB_val kk = {strlen(rec.key), (void *)rec.key}, kv;
		rc = mdb_get(txn, self->keys, &kk, &kv);
		if (rc == 0 && kv.mv_size == 8 && memcmp(kv.mv_data, k->mv_data, 8) == 0)
			rc = mdb_del(txn, self->keys, &kk, NULL);
		if (rc == MDB_NOTFOUND || rc == 0)
			rc = 0;
	}
	free(scratch);
	return rc;
}

static int s_prune_txn(wal_t *self, MDB_txn *txn, int64_t older_than_us, unsigned max,
		       unsigned *removed, uint64_t *disk_hi)
{
	MDB_cursor *dcur = NULL, *lcur = NULL;
	MDB_val k, v;
	unsigned n = 0;
	uint64_t hi = self->pruned_hi_disk;
	int rc;

	*removed = 0;
	*disk_hi = 0;
	if ((rc = mdb_cursor_open(txn, self->done, &dcur)) ||
	    (rc = mdb_cursor_open(txn, self->log, &lcur)))
		goto out;
	while (n < max && (rc = mdb_cursor_get(dcur, &k, &v, MDB_FIRST)) == 0) {
		if (k.mv_size != 16 || (int64_t)s_get_be64(k.mv_data) >= older_than_us)
			break;
		uint8_t lk[KEY_LEN] = {0};
		memcpy(lk, (uint8_t *)k.mv_data + 8, 8);
		MDB_val lkv = {KEY_LEN, lk}, lv;
		for (rc = mdb_cursor_get(lcur, &lkv, &lv, MDB_SET_RANGE);
		     rc == 0 && memcmp(lkv.mv_data, lk, 8) == 0;
		     rc = mdb_cursor_get(lcur, &lkv, &lv, MDB_NEXT)) {
			if ((rc = s_prune_key(self, txn, &lkv, &lv)) ||
			    (rc = mdb_cursor_del(lcur, 0)))
				goto out;
		}
		if (rc && rc != MDB_NOTFOUND)
			goto out;
		uint64_t seq = s_get_be64(lk);
		if ((rc = mdb_cursor_del(dcur, 0)))
			goto out;
		if (seq > hi)
			hi = seq;
		n++;
	}
	if (rc == MDB_NOTFOUND)
		rc = 0;
	if (rc == 0 && hi > self->pruned_hi_disk) {
		if (hi > wal_pruned_hi(self))
			__atomic_store_n(&self->pruned_hi, hi, __ATOMIC_RELEASE);
		rc = s_meta_put_u64(txn, self->meta, "pruned_hi", 8, hi);
		*disk_hi = hi;
	}
	*removed = n;
out:
	if (dcur)
		mdb_cursor_close(dcur);
	if (lcur)
		mdb_cursor_close(lcur);
	return rc;
}

void wal_prune_later(wal_t *self, int64_t older_than_us)
{
	self->prune_before_us = older_than_us;
}

bool wal_prune_pending(const wal_t *self)
{
	return self->prune_before_us != 0;
}

unsigned wal_last_pruned(const wal_t *self, int *rc)
{
	*rc = self->wprune_rc;
	return self->wpruned;
}
