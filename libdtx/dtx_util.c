#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dtx_util.h"

/* --- errors ----------------------------------------------------------- */

const char *dtx_strerror(int code)
{
	switch (code) {
	case DTX_OK: return "success";
	case DTX_EINVAL: return "invalid argument";
	case DTX_ENOMEM: return "out of memory";
	case DTX_EPROTO: return "malformed frame";
	case DTX_EVERSION: return "unsupported protocol version";
	case DTX_ETOOBIG: return "too big";
	case DTX_ETIMEOUT: return "timed out";
	case DTX_EIO: return "i/o error";
	case DTX_ELOG: return "coordinator log error";
	case DTX_ELOCKED: return "log held by another coordinator";
	case DTX_ENOTFOUND: return "not found";
	case DTX_EUNKNOWNPART: return "unknown participant";
	case DTX_EPARTDOWN: return "participant not connected";
	case DTX_ENOTREG: return "peer not registered";
	case DTX_EBUSY: return "busy";
	case DTX_ECONFIG: return "bad configuration";
	case DTX_EDB: return "database error";
	case DTX_ECRC: return "log record failed its checksum";
	case DTX_EFULL: return "log full";
	case DTX_ESTATE: return "not allowed in this state";
	case DTX_ESHUTDOWN: return "coordinator shutting down";
	case DTX_EPERM: return "not permitted";
	}
	return "unknown error";
}

const char *dtx_outcome_str(int status)
{
	switch (status) {
	case DTX_OUTCOME_UNKNOWN: return "unknown";
	case DTX_OUTCOME_ACTIVE: return "active";
	case DTX_OUTCOME_COMMITTED: return "committed";
	case DTX_OUTCOME_ABORTED: return "aborted";
	case DTX_OUTCOME_IN_DOUBT: return "in-doubt";
	case DTX_OUTCOME_HEURISTIC: return "heuristic";
	case DTX_OUTCOME_COMPLETED: return "completed";
	case DTX_OUTCOME_COMPENSATED: return "compensated";
	}
	return "invalid";
}

/* --- logging ---------------------------------------------------------- */

static int s_level = DTX_LOG_INFO;
static dtx_log_fn s_fn;
static void *s_fn_arg;

void dtx_log_set(int level, dtx_log_fn fn, void *arg)
{
	s_level = level;
	s_fn = fn;
	s_fn_arg = arg;
}

void dtx_log_set_level(int level)
{
	s_level = level;
}

int dtx_log_level(void)
{
	return s_level;
}

static const char *const s_level_names[] = {"emerg",   "alert",  "crit", "err",
					    "warning", "notice", "info", "debug"};

int dtx_log_level_parse(const char *name)
{
	for (int i = 0; i < 8; i++)
		if (strcmp(name, s_level_names[i]) == 0)
			return i;
	return -1;
}

const char *dtx_log_level_str(int level)
{
	return level >= 0 && level < 8 ? s_level_names[level] : "?";
}

/* One line to the sink or stderr; prefix (a GTID) before the message. */
static void s_log(int level, const dtx_log_ctx_t *ctx, const char *fmt, va_list ap)
{
	char line[2048];
	size_t off = 0;

	if (ctx && ctx->gtid) {
		snprintf(line, sizeof(line), "%s: ", ctx->gtid);
		off = strlen(line);
	}
	vsnprintf(line + off, sizeof(line) - off, fmt, ap);
	if (s_fn) {
		s_fn(level, line, ctx, s_fn_arg);
		return;
	}
	fprintf(stderr, "<%d>%s\n", level, line);
}

void dtx_log(int level, const char *fmt, ...)
{
	va_list ap;

	if (level > s_level)
		return;
	va_start(ap, fmt);
	s_log(level, NULL, fmt, ap);
	va_end(ap);
}

void dtx_log_ctx(int level, const char *gtid, const char *participant, const char *fmt, ...)
{
	dtx_log_ctx_t ctx = {.gtid = gtid, .participant = participant};
	va_list ap;

	if (level > s_level)
		return;
	va_start(ap, fmt);
	s_log(level, &ctx, fmt, ap);
	va_end(ap);
}

/* --- rate-limited lines ---------------------------------------------- */

bool dtx_ratelimit_ok(dtx_ratelimit_t *rl, uint64_t *suppressed)
{
	int64_t now = dtx_now_ms();
	int64_t cap = (int64_t)(rl->burst ? rl->burst : 1) * 1000;
	int64_t rate = rl->per_s ? rl->per_s : 1; /* thousandths of a line per ms */

	if (!rl->started) {
		rl->started = true;
		rl->tokens_ms = cap;
		rl->last_ms = now;
	}
	if (now > rl->last_ms) {
		/* capped before multiplying: a long quiet spell cannot overflow */
		int64_t gap = now - rl->last_ms;
		rl->tokens_ms = gap >= cap ? cap : rl->tokens_ms + gap * rate;
		if (rl->tokens_ms > cap)
			rl->tokens_ms = cap;
		rl->last_ms = now;
	}
	if (rl->tokens_ms < 1000) {
		rl->suppressed++;
		return false;
	}
	rl->tokens_ms -= 1000;
	if (suppressed)
		*suppressed = rl->suppressed;
	rl->suppressed = 0;
	return true;
}

void dtx_log_rl(dtx_ratelimit_t *rl, int level, const char *fmt, ...)
{
	char line[2048];
	uint64_t n;
	va_list ap;

	if (level > s_level || !dtx_ratelimit_ok(rl, &n))
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n)
		dtx_log(level, "%s (%" PRIu64 " similar lines suppressed)", line, n);
	else
		dtx_log(level, "%s", line);
}

/* --- clocks ----------------------------------------------------------- */

int64_t dtx_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t dtx_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t dtx_wall_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void dtx_wall_format(int64_t us, char *buf, size_t len)
{
	time_t sec = (time_t)(us / 1000000);
	struct tm tm;
	char day[24];
	gmtime_r(&sec, &tm);
	strftime(day, sizeof(day), "%Y-%m-%d %H:%M:%S", &tm);
	snprintf(buf, len, "%s.%06dZ", day, (int)(us % 1000000));
}

/* --- transaction ids -------------------------------------------------- */

bool dtx_coord_id_valid(const char *id)
{
	size_t n = id ? strlen(id) : 0;
	if (n == 0 || n > DTX_COORD_ID_MAX)
		return false;
	return strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") == n;
}

void dtx_gtid_format(const dtx_gtid_t *g, char *buf, size_t len)
{
	snprintf(buf, len, "%s.%" PRIu32 ".%" PRIu64, g->coord, g->epoch, g->seq);
}

void dtx_gid_format(const dtx_gtid_t *g, uint32_t branch, char *buf, size_t len)
{
	snprintf(buf, len, "dtx:%s:%" PRIu32 ":%" PRIu64 ":%" PRIu32, g->coord, g->epoch, g->seq,
		 branch);
}

/* Parse "<coord><sep><epoch><sep><seq>" followed by end or sep; returns the
 * position after seq or NULL. */
static const char *s_parse3(const char *s, char sep, dtx_gtid_t *out)
{
	const char *p = strchr(s, sep);
	char *end;
	unsigned long long v;

	if (!p || p == s || (size_t)(p - s) > DTX_COORD_ID_MAX)
		return NULL;
	memset(out, 0, sizeof(*out));
	memcpy(out->coord, s, (size_t)(p - s));
	if (!dtx_coord_id_valid(out->coord))
		return NULL;
	p++;
	if (*p < '0' || *p > '9')
		return NULL;
	v = strtoull(p, &end, 10);
	if (*end != sep || v > UINT32_MAX)
		return NULL;
	out->epoch = (uint32_t)v;
	p = end + 1;
	if (*p < '0' || *p > '9')
		return NULL;
	out->seq = strtoull(p, &end, 10);
	if (*end != '\0' && *end != sep)
		return NULL;
	return end;
}

int dtx_gtid_parse(const char *s, dtx_gtid_t *out)
{
	char again[DTX_GTID_MAX];
	const char *end = s_parse3(s, '.', out);
	if (!end || *end != '\0')
		return DTX_EINVAL;
	dtx_gtid_format(out, again, sizeof(again));
	return strcmp(again, s) == 0 ? 0 : DTX_EINVAL; /* canonical only */
}

int dtx_gid_parse(const char *s, dtx_gtid_t *out, uint32_t *branch)
{
	const char *end;
	char *e2;
	unsigned long long v;

	if (strncmp(s, "dtx:", 4) != 0)
		return DTX_EINVAL;
	end = s_parse3(s + 4, ':', out);
	if (!end || *end != ':' || end[1] < '0' || end[1] > '9')
		return DTX_EINVAL;
	v = strtoull(end + 1, &e2, 10);
	if (*e2 != '\0' || v > UINT32_MAX)
		return DTX_EINVAL;
	*branch = (uint32_t)v;
	char again[DTX_GID_MAX];
	dtx_gid_format(out, *branch, again, sizeof(again));
	return strcmp(again, s) == 0 ? 0 : DTX_EINVAL; /* canonical only */
}

/* --- crash points ----------------------------------------------------- */

static char s_crash_name[128];
static long s_crash_left;

void dtx_crash_init(void)
{
	const char *spec = getenv("DTX_CRASH");
	const char *colon;

	s_crash_name[0] = '\0';
	if (!spec || !*spec)
		return;
	colon = strchr(spec, ':');
	size_t n = colon ? (size_t)(colon - spec) : strlen(spec);
	if (n >= sizeof(s_crash_name))
		n = sizeof(s_crash_name) - 1;
	memcpy(s_crash_name, spec, n);
	s_crash_name[n] = '\0';
	s_crash_left = colon ? strtol(colon + 1, NULL, 10) : 1;
	if (s_crash_left < 1)
		s_crash_left = 1;
}

void dtx_crash_point(const char *name)
{
	if (s_crash_name[0] == '\0' || strcmp(name, s_crash_name) != 0)
		return;
	if (--s_crash_left > 0)
		return;
	fprintf(stderr, "<2>crash point %s reached: exiting\n", name);
	_exit(99);
}

/* --- configuration helpers -------------------------------------------- */

bool dtx_parse_int(const char *s, long long min, long long max, long long *out)
{
	char *end;
	long long v;
	if (!s || !*s)
		return false;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end != '\0' || v < min || v > max)
		return false;
	*out = v;
	return true;
}

bool dtx_conf_str(const char *key, const char *val, char *dst, size_t n, char *why, size_t why_len)
{
	size_t len = strlen(val);
	if (len == 0 || len >= n) {
		snprintf(why, why_len, "'%s': %s", key, len ? "too long" : "must not be empty");
		return false;
	}
	memcpy(dst, val, len + 1);
	return true;
}

bool dtx_conf_int(const char *key, const char *val, long long min, long long max, long long *out,
		  char *why, size_t why_len)
{
	if (dtx_parse_int(val, min, max, out))
		return true;
	snprintf(why, why_len, "'%s': '%s' is not a whole number from %lld to %lld", key, val, min,
		 max);
	return false;
}

/* --- message faults (tests) ------------------------------------------ */

#define FAULTS_MAX 8

static struct {
	dtx_fault_t action;
	char type[16];
	long every, seen;
	int delay_ms;
} s_faults[FAULTS_MAX];
static int s_nfaults;

void dtx_fault_init(void)
{
	const char *spec = getenv("DTX_FAULT");
	char buf[512], *save = NULL;

	s_nfaults = 0;
	if (!spec || !*spec)
		return;
	snprintf(buf, sizeof(buf), "%s", spec);
	for (char *t = strtok_r(buf, ",", &save); t && s_nfaults < FAULTS_MAX;
	     t = strtok_r(NULL, ",", &save)) {
		char action[16] = "", type[16] = "";
		long every = 0;
		int ms = 0;
		if (sscanf(t, "%15[a-z]:%15[A-Z]:%ld:%d", action, type, &every, &ms) < 3 ||
		    every < 1)
			continue;
		dtx_fault_t a = strcmp(action, "drop") == 0    ? DTX_FAULT_DROP
				: strcmp(action, "dup") == 0   ? DTX_FAULT_DUP
				: strcmp(action, "delay") == 0 ? DTX_FAULT_DELAY
							       : DTX_FAULT_NONE;
		if (a == DTX_FAULT_NONE)
			continue;
		s_faults[s_nfaults].action = a;
		snprintf(s_faults[s_nfaults].type, sizeof(s_faults[0].type), "%s", type);
		s_faults[s_nfaults].every = every;
		s_faults[s_nfaults].seen = 0;
		s_faults[s_nfaults].delay_ms = ms > 0 ? ms : 1000;
		s_nfaults++;
	}
}

dtx_fault_t dtx_fault_on_recv(const char *type, int *delay_ms)
{
	static const char *const names[] = {"", "drop", "dup", "delay"};
	for (int i = 0; i < s_nfaults; i++) {
		if (strcmp(s_faults[i].type, type) != 0 || ++s_faults[i].seen % s_faults[i].every)
			continue;
		*delay_ms = s_faults[i].delay_ms;
		dtx_warn("fault injected: %s %s #%ld", names[s_faults[i].action], type,
			 s_faults[i].seen);
		return s_faults[i].action;
	}
	return DTX_FAULT_NONE;
}

struct dtx_delayed {
	struct dtx_delayed *next;
	int64_t due_ms;
	size_t tag_len, len;
	uint8_t data[]; /* tag, then frame */
};

bool dtx_delayed_hold(dtx_delayed_t **list, int delay_ms, const void *tag, size_t tag_len,
		      const void *frame, size_t len)
{
	dtx_delayed_t *d = malloc(sizeof(*d) + tag_len + len);
	if (!d)
		return false;
	d->due_ms = dtx_now_ms() + delay_ms;
	d->tag_len = tag_len;
	d->len = len;
	if (tag_len)
		memcpy(d->data, tag, tag_len);
	memcpy(d->data + tag_len, frame, len);
	d->next = *list;
	*list = d;
	return true;
}

void dtx_delayed_release(dtx_delayed_t **list, int64_t now_ms, dtx_delayed_fn fn, void *arg)
{
	for (dtx_delayed_t **pp = list; *pp;) {
		dtx_delayed_t *d = *pp;
		if (d->due_ms > now_ms) {
			pp = &d->next;
			continue;
		}
		*pp = d->next;
		fn(arg, d->tag_len ? d->data : NULL, d->data + d->tag_len, d->len);
		free(d);
	}
}

void dtx_delayed_free(dtx_delayed_t **list)
{
	while (*list) {
		dtx_delayed_t *d = *list;
		*list = d->next;
		free(d);
	}
}

/* --- daemon start-up -------------------------------------------------- */

static void s_daemon_usage(FILE *f, const char *prog, bool create)
{
	fprintf(f,
		"usage: %s -c FILE [--check-config%s]\n"
		"  -c, --config FILE   configuration (see etc/%s.conf)\n"
		"      --check-config  read and check the configuration, then exit\n"
		"%s"
		"  -h, --help          this text\n",
		prog, create ? " | --create-log" : "", prog,
		create ? "      --create-log    create the log (refused if one is there), then "
			 "exit\n"
		       : "");
}

int dtx_daemon_args(int argc, char **argv, const char *prog, const char **path, bool *check,
		    bool *create_log)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"check-config", no_argument, NULL, 'C'},
		{"create-log", no_argument, NULL, 'L'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int c;

	*path = NULL;
	*check = false;
	if (create_log)
		*create_log = false;
	while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c': *path = optarg; break;
		case 'C': *check = true; break;
		case 'L':
			if (create_log) {
				*create_log = true;
				break;
			}
			s_daemon_usage(stderr, prog, false);
			return 2;
		case 'h': s_daemon_usage(stdout, prog, create_log != NULL); return 0;
		default: s_daemon_usage(stderr, prog, create_log != NULL); return 2;
		}
	}
	if (!*path || optind != argc || (create_log && *create_log && *check)) {
		s_daemon_usage(stderr, prog, create_log != NULL);
		return 2;
	}
	return -1;
}

int dtx_dir_check(const char *path, const char *what, char *why, size_t why_len)
{
	struct stat st;
	uid_t me = geteuid();

	if (lstat(path, &st) != 0) {
		int err = errno;
		snprintf(why, why_len, "%s %s: %s", what, path, strerror(err));
		return err == ENOENT ? DTX_ENOTFOUND : DTX_EIO;
	}
	if (S_ISLNK(st.st_mode)) {
		snprintf(why, why_len, "%s %s: a symbolic link (name the directory itself)", what,
			 path);
		return DTX_ECONFIG;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(why, why_len, "%s %s: not a directory", what, path);
		return DTX_ECONFIG;
	}
	if (st.st_uid != me) {
		snprintf(why, why_len, "%s %s: owned by uid %u, not by this user (uid %u)", what,
			 path, (unsigned)st.st_uid, (unsigned)me);
		return DTX_ECONFIG;
	}
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		snprintf(why, why_len, "%s %s: mode %04o: writable by %s", what, path,
			 (unsigned)(st.st_mode & 07777),
			 (st.st_mode & S_IWOTH) ? "others" : "its group");
		return DTX_ECONFIG;
	}
	return 0;
}

void dtx_daemon_start(int log_level, void (*on_stop)(int))
{
	struct sigaction sa = {.sa_handler = on_stop};

	dtx_log_set(log_level, NULL, NULL);
	dtx_crash_init();
	dtx_fault_init();
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	/* A daemon that reloads installs its own SIGHUP handler after this;
	 * for the others a stray SIGHUP (systemctl reload) must not kill. */
	signal(SIGHUP, SIG_IGN);
}
