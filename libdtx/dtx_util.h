/*
 * dtx_util.h — what every dtx program shares: error names, logging, clocks,
 * transaction ids and crash points. Internal: not installed.
 */
#ifndef DTX_UTIL_H
#define DTX_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dtx.h"

/* --- logging: syslog levels, one line each, to stderr by default ------ */

enum {
	DTX_LOG_ERR = 3,
	DTX_LOG_WARNING = 4,
	DTX_LOG_NOTICE = 5,
	DTX_LOG_INFO = 6,
	DTX_LOG_DEBUG = 7
};

/*
 * What a line is about, given by the caller rather than read back from the
 * text: for sinks that keep it apart (the journal's DTX_GTID, DTX_GID,
 * DTX_PARTICIPANT fields). Borrowed for the sink's call only.
 */
typedef struct {
	const char *gtid;        /* a GTID, or a branch's PostgreSQL GID; NULL: none */
	const char *participant; /* a participant's name; NULL: none */
} dtx_log_ctx_t;

/* A sink: line is the text as stderr would show it (no "<N>" prefix); ctx
 * is NULL for a line logged without context (dtx_log), else what the
 * caller said the line is about. */
typedef void (*dtx_log_fn)(int level, const char *line, const dtx_log_ctx_t *ctx, void *arg);

/* Lines above level are dropped. fn NULL: stderr with a "<level>" prefix as
 * journald reads it. */
void dtx_log_set(int level, dtx_log_fn fn, void *arg);
int dtx_log_level(void);
/* Change the level only, keeping where lines go. */
void dtx_log_set_level(int level);
/* "err", "warning", "notice", "info", "debug" -> level; -1 if unknown. */
int dtx_log_level_parse(const char *name);
const char *dtx_log_level_str(int level);
void dtx_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/*
 * A line about a transaction and/or a participant. With gtid, the text is
 * "GTID: message", as the lines that wrote "%s: ..." themselves read; the
 * participant is not added to the text (say it there if the reader needs
 * it). Either may be NULL.
 */
void dtx_log_ctx(int level, const char *gtid, const char *participant, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#define dtx_err(...) dtx_log(DTX_LOG_ERR, __VA_ARGS__)
#define dtx_warn(...) dtx_log(DTX_LOG_WARNING, __VA_ARGS__)
#define dtx_notice(...) dtx_log(DTX_LOG_NOTICE, __VA_ARGS__)
#define dtx_info(...) dtx_log(DTX_LOG_INFO, __VA_ARGS__)
#define dtx_debug(...)                                                                             \
	do {                                                                                       \
		if (dtx_log_level() >= DTX_LOG_DEBUG)                                              \
			dtx_log(DTX_LOG_DEBUG, __VA_ARGS__);                                       \
	} while (0)

/* About one transaction: dtx_info_tx(gtid, "vote no: %s", why) logs
 * "GTID: vote no: ..." with the GTID as context. */
#define dtx_err_tx(gtid, ...) dtx_log_ctx(DTX_LOG_ERR, (gtid), NULL, __VA_ARGS__)
#define dtx_warn_tx(gtid, ...) dtx_log_ctx(DTX_LOG_WARNING, (gtid), NULL, __VA_ARGS__)
#define dtx_notice_tx(gtid, ...) dtx_log_ctx(DTX_LOG_NOTICE, (gtid), NULL, __VA_ARGS__)
#define dtx_info_tx(gtid, ...) dtx_log_ctx(DTX_LOG_INFO, (gtid), NULL, __VA_ARGS__)
#define dtx_debug_tx(gtid, ...)                                                                    \
	do {                                                                                       \
		if (dtx_log_level() >= DTX_LOG_DEBUG)                                              \
			dtx_log_ctx(DTX_LOG_DEBUG, (gtid), NULL, __VA_ARGS__);                     \
	} while (0)

/* About one participant (no GTID): the text is the caller's alone. */
#define dtx_err_part(part, ...) dtx_log_ctx(DTX_LOG_ERR, NULL, (part), __VA_ARGS__)
#define dtx_warn_part(part, ...) dtx_log_ctx(DTX_LOG_WARNING, NULL, (part), __VA_ARGS__)
#define dtx_notice_part(part, ...) dtx_log_ctx(DTX_LOG_NOTICE, NULL, (part), __VA_ARGS__)
#define dtx_info_part(part, ...) dtx_log_ctx(DTX_LOG_INFO, NULL, (part), __VA_ARGS__)
#define dtx_debug_part(part, ...)                                                                  \
	do {                                                                                       \
		if (dtx_log_level() >= DTX_LOG_DEBUG)                                              \
			dtx_log_ctx(DTX_LOG_DEBUG, NULL, (part), __VA_ARGS__);                     \
	} while (0)

/* --- rate-limited lines ---------------------------------------------- */

/*
 * A line a peer can make us repeat at will (a refused frame, a bad
 * request) goes through a rate limit, one per call site: a burst of
 * `burst` lines at once, then `per_s` lines a second (a token bucket),
 * the rest suppressed and counted. The first line let through after some
 * were suppressed says how many. Not thread-safe: a limit belongs to one
 * thread (the daemons' loops).
 *
 *	static dtx_ratelimit_t rl = DTX_RATELIMIT_INIT(10, 2);
 *	dtx_log_rl(&rl, DTX_LOG_WARNING, "client frame refused: %s", why);
 *
 * logs "client frame refused: ..." for the first ten and then two a
 * second, each let through after a gap ending in
 * " (N similar lines suppressed)".
 */
typedef struct {
	unsigned burst;      /* lines let through at once; 0 means 1 */
	unsigned per_s;      /* lines a second after the burst; 0 means 1 */
	bool started;        /* tokens set on first use */
	int64_t tokens_ms;   /* the bucket, in thousandths of a line */
	int64_t last_ms;     /* dtx_now_ms() at the last refill */
	uint64_t suppressed; /* dropped since the last line let through */
} dtx_ratelimit_t;

#define DTX_RATELIMIT_INIT(burst_, per_s_) {.burst = (burst_), .per_s = (per_s_)}

/* true: the caller may log now; *suppressed (when not NULL) gets how many
 * were dropped since the last true, and the count starts again. false:
 * drop this one (counted). */
bool dtx_ratelimit_ok(dtx_ratelimit_t *rl, uint64_t *suppressed);

/* dtx_log() through rl; a line above the log level costs nothing. */
void dtx_log_rl(dtx_ratelimit_t *rl, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* --- clocks ----------------------------------------------------------- */

int64_t dtx_now_ms(void);       /* CLOCK_MONOTONIC, milliseconds */
int64_t dtx_now_us(void);       /* CLOCK_MONOTONIC, microseconds */
int64_t dtx_wall_us(void);      /* CLOCK_REALTIME, microseconds since the epoch */
/* "2026-11-21 05:06:55.123456Z" into buf (>= 32 bytes). */
void dtx_wall_format(int64_t us, char *buf, size_t len);

/* --- transaction ids -------------------------------------------------- */

#define DTX_COORD_ID_MAX 32
/* A branch GID in canonical form, with its NUL: "dtx:" + id + three numbers. */
#define DTX_GID_MAX 96

typedef struct {
	char coord[DTX_COORD_ID_MAX + 1];
	uint32_t epoch;
	uint64_t seq;
} dtx_gtid_t;

/* Coordinator ids: [A-Za-z0-9_-], 1..32 bytes. */
bool dtx_coord_id_valid(const char *id);
/* "<coord>.<epoch>.<seq>" */
void dtx_gtid_format(const dtx_gtid_t *g, char *buf, size_t len);
int dtx_gtid_parse(const char *s, dtx_gtid_t *out);
/* The PostgreSQL GID of one branch: "dtx:<coord>:<epoch>:<seq>:<branch>".
 * Both parsers take the canonical form only, as the formatters write it
 * (decimal numbers without leading zeros or signs, in range): anything
 * else is DTX_EINVAL, so a GID or GTID made up to look like ours (say
 * "dtx:c1:99:5:" followed by 190 zeros) is never taken for one of ours. */
void dtx_gid_format(const dtx_gtid_t *g, uint32_t branch, char *buf, size_t len);
int dtx_gid_parse(const char *s, dtx_gtid_t *out, uint32_t *branch);

/* --- crash points ----------------------------------------------------- */

/*
 * DTX_CRASH="name:N" (or "name" for N=1) makes the process _exit(99) at the
 * Nth pass through dtx_crash_point(name). Inert when unset.
 */
void dtx_crash_init(void);
void dtx_crash_point(const char *name);

/* --- message faults (tests) ------------------------------------------ */

/*
 * DTX_FAULT="ACTION:TYPE:N[:MS],..." makes a daemon mistreat every Nth
 * frame of TYPE (VOTE, DECIDE, ...) it receives: drop (lost on the wire),
 * dup (delivered twice), delay (held MS ms while later frames go first).
 * Inert when unset.
 */
typedef enum { DTX_FAULT_NONE, DTX_FAULT_DROP, DTX_FAULT_DUP, DTX_FAULT_DELAY } dtx_fault_t;

void dtx_fault_init(void);
/* What to do with this frame of type; *delay_ms set for DTX_FAULT_DELAY. */
dtx_fault_t dtx_fault_on_recv(const char *type, int *delay_ms);

/*
 * Frames held back by a delay fault until their time comes, each with a
 * copy of the caller's tag (e.g. the sender's routing id; NULL, 0: none).
 * dtx_delayed_hold returns false when out of memory (the frame is lost,
 * as on a wire). dtx_delayed_release calls fn for every frame due by
 * now_ms and forgets it; the tag may be unaligned (copy it out).
 */
typedef struct dtx_delayed dtx_delayed_t;
typedef void (*dtx_delayed_fn)(void *arg, const void *tag, const void *frame, size_t len);
bool dtx_delayed_hold(dtx_delayed_t **list, int delay_ms, const void *tag, size_t tag_len,
		      const void *frame, size_t len);
void dtx_delayed_release(dtx_delayed_t **list, int64_t now_ms, dtx_delayed_fn fn, void *arg);
void dtx_delayed_free(dtx_delayed_t **list);

/* --- daemon start-up -------------------------------------------------- */

/*
 * The command line every dtx daemon takes: -c FILE [--check-config] [-h],
 * and --create-log where create_log is not NULL (the coordinator).
 * Returns -1 to go on (*path set, *check true for --check-config,
 * *create_log for --create-log), else the exit code (0 after --help, 2
 * after a usage error, usage printed).
 */
int dtx_daemon_args(int argc, char **argv, const char *prog, const char **path, bool *check,
		    bool *create_log);

/* Once the configuration is read: log level, crash points and faults from
 * the environment, on_stop for SIGTERM and SIGINT, SIGPIPE ignored. */
void dtx_daemon_start(int log_level, void (*on_stop)(int));

/*
 * A directory the daemon keeps its files or sockets in: 0 when path is a
 * directory (not a symbolic link to one: lstat), owned by this process's
 * effective user and writable by nobody else (no group or other write
 * bit). Else why says "WHAT PATH: reason", e.g. "log_dir /x: owned by uid
 * 65534, not by this user (uid 1000)" or "log_dir /x: mode 0777: writable
 * by others", and the result is DTX_ENOTFOUND (no such path), DTX_EIO
 * (lstat failed otherwise) or DTX_ECONFIG (refused).
 */
int dtx_dir_check(const char *path, const char *what, char *why, size_t why_len);

/* --- configuration helpers -------------------------------------------- */

/* Parse a whole decimal integer within [min, max]; false otherwise. */
bool dtx_parse_int(const char *s, long long min, long long max, long long *out);

/* For INI handlers: store val, or write "'key': reason" to why and return
 * false. dtx_conf_str refuses empty and too-long values. */
bool dtx_conf_str(const char *key, const char *val, char *dst, size_t n, char *why, size_t why_len);
bool dtx_conf_int(const char *key, const char *val, long long min, long long max, long long *out,
		  char *why, size_t why_len);
#endif /* DTX_UTIL_H */
