/*
 * cpuby.h — CPU time of every process on the machine, by program name,
 * over an interval: where a benchmark's CPU went (the coordinator, its
 * agents, PostgreSQL, the bench itself, the kernel's threads).
 *
 * A snapshot reads /proc/PID/stat for each process: its own user and
 * system time plus that of its children it has reaped, so the work of a
 * short-lived child (a PostgreSQL backend serving one client) lands on
 * its parent's name once reaped. Kernel threads count as "[kernel]".
 *
 * Also the wake-ups: how often the threads of a program blocked (waiting
 * for a socket, a lock, the disk) and were woken again, from
 * voluntary_ctxt_switches of /proc/PID/task/TID/status. A thread that has
 * ended by the second snapshot takes its count with it (dtxbench takes it
 * before its clients disconnect). Where a wake-up
 * crosses CPUs on a virtual machine it costs far more CPU than the work
 * it brings (dtxbench --wakeup-cost measures both).
 */
#ifndef CPUBY_H
#define CPUBY_H

#include <stddef.h>
#include <stdint.h>

typedef struct cpuby cpuby_t;

typedef struct {
	char name[20];
	double seconds;    /* CPU time during the interval */
	double wakeups;    /* times its threads blocked and were woken */
} cpuby_entry_t;

/* A snapshot of every process now; NULL if /proc cannot be read. Caller
 * owns it and frees it with cpuby_destroy (which accepts NULL). */
cpuby_t *cpuby_snap(void);
void cpuby_destroy(cpuby_t **self_p);

/*
 * CPU time per program name between snapshots a and b, largest first,
 * into out[0..max), names that used none left out; when there are more
 * than max, the last entry is "others", the sum of the rest. Returns the
 * number of entries written.
 */
size_t cpuby_diff(const cpuby_t *a, const cpuby_t *b, cpuby_entry_t *out, size_t max);

#endif
