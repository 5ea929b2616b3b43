/*
 * cpuby.c — CPU time by program name, from /proc (see cpuby.h).
 */
#include "config.h"

#include <ctype.h>
#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cpuby.h"

typedef struct {
	int pid, ppid;
	unsigned long long start;   /* start time: a reused PID is another process */
	unsigned long long ticks;   /* utime + stime + cutime + cstime */
	unsigned long long wakeups; /* voluntary context switches, all threads */
	char name[20];
} s_proc_t;

struct cpuby {
	s_proc_t *p;
	size_t n;
};

/* The voluntary context switches of every thread of pid. */
static unsigned long long s_wakeups(int pid)
{
	char path[64], line[256];
	unsigned long long sum = 0, v;
	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	DIR *d = opendir(path);
	struct dirent *e;
	if (!d)
		return 0;
	while ((e = readdir(d))) {
		if (!isdigit((unsigned char)e->d_name[0]))
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%.16s/status", pid, e->d_name);
		FILE *f = fopen(path, "r");
		if (!f)
			continue;
		while (fgets(line, sizeof(line), f))
			if (sscanf(line, "voluntary_ctxt_switches: %llu", &v) == 1)
				sum += v;
		fclose(f);
	}
	closedir(d);
	return sum;
}

/* One process's line of /proc/PID/stat; false if it is gone or garbled. */
static bool s_read(int pid, s_proc_t *out)
{
	char path[64], line[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return false;
	size_t len = fread(line, 1, sizeof(line) - 1, f);
	fclose(f);
	line[len] = '\0';
	/* "pid (comm) state ppid ..." where comm may hold spaces and ')' */
	char *open = strchr(line, '('), *close = strrchr(line, ')');
	if (!open || !close || close < open || close[1] != ' ')
		return false;
	int ppid;
	unsigned long long ut, st, cut, cst, start;
	if (sscanf(close + 2,
		   "%*c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %llu %llu %*d %*d %*d %*d "
		   "%llu",
		   &ppid, &ut, &st, &cut, &cst, &start) != 6)
		return false;
	*out = (s_proc_t){.pid = pid,
			  .ppid = ppid,
			  .start = start,
			  .ticks = ut + st + cut + cst,
			  .wakeups = s_wakeups(pid)};
	if (pid == 2 || ppid == 2)
		snprintf(out->name, sizeof(out->name), "[kernel]");
	else
		snprintf(out->name, sizeof(out->name), "%.*s", (int)(close - open - 1), open + 1);
	return true;
}

cpuby_t *cpuby_snap(void)
{
	DIR *d = opendir("/proc");
	cpuby_t *self = calloc(1, sizeof(*self));
	size_t cap = 0;
	struct dirent *e;
	if (!d || !self)
		goto fail;
	while ((e = readdir(d))) {
		if (!isdigit((unsigned char)e->d_name[0]))
			continue;
		if (self->n == cap) {
			size_t ncap = cap ? cap * 2 : 256;
			s_proc_t *p = realloc(self->p, ncap * sizeof(*p));
			if (!p)
				goto fail;
			self->p = p;
			cap = ncap;
		}
		if (s_read(atoi(e->d_name), &self->p[self->n]))
			self->n++;
	}
	closedir(d);
	return self;
fail:
	if (d)
		closedir(d);
	cpuby_destroy(&self);
	return NULL;
}

void cpuby_destroy(cpuby_t **self_p)
{
	cpuby_t *self = self_p ? *self_p : NULL;
	if (!self)
		return;
	free(self->p);
	free(self);
	*self_p = NULL;
}

static const s_proc_t *s_find(const cpuby_t *s, const s_proc_t *p)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->p[i].pid == p->pid && s->p[i].start == p->start)
			return &s->p[i];
	return NULL;
}

/* p's nearest ancestor (in snapshot a) still alive at b, or NULL. */
static const s_proc_t *s_reaper(const cpuby_t *a, const cpuby_t *b, const s_proc_t *p)
{
	for (unsigned depth = 0; depth < 64 && p->ppid > 0; depth++) {
		const s_proc_t *parent = NULL;
		for (size_t i = 0; i < a->n && !parent; i++)
			if (a->p[i].pid == p->ppid)
				parent = &a->p[i];
		if (!parent)
			return NULL;
		if (s_find(b, parent))
			return parent;
		p = parent;
	}
	return NULL;
}

static int s_by_seconds(const void *x, const void *y)
{
	double a = ((const cpuby_entry_t *)x)->seconds, b = ((const cpuby_entry_t *)y)->seconds;
	return (a < b) - (a > b);
}

/* Add ticks and wakeups to name's entry in e[0..*n) (growing *n; e has
 * room). */
static void s_add(cpuby_entry_t *e, size_t *n, const char *name, double ticks, double wakeups)
{
	size_t i = 0;
	while (i < *n && strcmp(e[i].name, name) != 0)
		i++;
	if (i == *n) {
		e[i] = (cpuby_entry_t){0};
		snprintf(e[i].name, sizeof(e[i].name), "%s", name);
		(*n)++;
	}
	e[i].seconds += ticks;
	e[i].wakeups += wakeups;
}

size_t cpuby_diff(const cpuby_t *a, const cpuby_t *b, cpuby_entry_t *out, size_t max)
{
	cpuby_entry_t *e = calloc(a->n + b->n + 1, sizeof(*e));
	size_t n = 0;
	double hz = (double)sysconf(_SC_CLK_TCK);
	if (!e || hz <= 0) {
		free(e);
		return 0;
	}
	/* A process alive at b: its time since a (all of it if it began
	 * since). One gone since a: its whole life's time went into the
	 * reaped-children time of its nearest ancestor alive at b (its
	 * parent, or whoever reaped that one), counted above under that
	 * ancestor's name; take back from that name what it had used by a.
	 * (Taken from the gone one's own name instead, a program whose
	 * process another program reaps — a test's PostgreSQL stopped by its
	 * script — would lose time it never had in the interval.) */
	for (size_t i = 0; i < b->n; i++) {
		const s_proc_t *was = s_find(a, &b->p[i]);
		double w = (double)b->p[i].wakeups - (was ? (double)was->wakeups : 0);
		/* (fewer than before: some threads ended; what they did is lost) */
		s_add(e, &n, b->p[i].name, (double)b->p[i].ticks - (was ? (double)was->ticks : 0),
		      w > 0 ? w : 0);
	}
	for (size_t i = 0; i < a->n; i++) {
		const s_proc_t *reaper;
		if (!s_find(b, &a->p[i]) && (reaper = s_reaper(a, b, &a->p[i])))
			s_add(e, &n, reaper->name, -(double)a->p[i].ticks, 0);
	}
	for (size_t i = 0; i < n; i++)
		e[i].seconds = e[i].seconds > 0 ? e[i].seconds / hz : 0;
	qsort(e, n, sizeof(*e), s_by_seconds);
	while (n && e[n - 1].seconds <= 0)
		n--;
	if (n > max && max > 0) {
		/* the last entry stands for all the rest */
		for (size_t i = max; i < n; i++) {
			e[max - 1].seconds += e[i].seconds;
			e[max - 1].wakeups += e[i].wakeups;
		}
		snprintf(e[max - 1].name, sizeof(e[max - 1].name), "others");
		n = max;
	}
	memcpy(out, e, n * sizeof(*e));
	free(e);
	return n;
}
