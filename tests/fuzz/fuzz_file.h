/*
 * fuzz_file.h — for the targets whose parser takes a file name.
 */
#ifndef DTX_FUZZ_FILE_H
#define DTX_FUZZ_FILE_H

#include <sys/mman.h>
#include <unistd.h>

#include "fuzz.h"

/*
 * The path a parser that takes a file name reads the input from: a memfd
 * (no disk, nothing to remove) opened again by its /proc/self/fd name;
 * without /proc, a file in $TMPDIR removed at exit. fuzz_file_write puts
 * the input there, replacing the last. Both abort on failure: a target
 * that cannot write its input tests nothing.
 */
static int s_fuzz_fd = -1;
static char s_fuzz_path[4096];

static inline void s_fuzz_unlink(void)
{
	unlink(s_fuzz_path);
}

static inline void fuzz_file_init(void)
{
	s_fuzz_fd = memfd_create("dtx-fuzz", 0);
	if (s_fuzz_fd >= 0) {
		snprintf(s_fuzz_path, sizeof(s_fuzz_path), "/proc/self/fd/%d", s_fuzz_fd);
		if (access(s_fuzz_path, R_OK) == 0)
			return;
		close(s_fuzz_fd);
	}
	const char *tmp = getenv("TMPDIR");
	snprintf(s_fuzz_path, sizeof(s_fuzz_path), "%s/dtx-fuzz.XXXXXX",
		 tmp && *tmp ? tmp : "/tmp");
	s_fuzz_fd = mkstemp(s_fuzz_path);
	FUZZ_CHECK(s_fuzz_fd >= 0);
	atexit(s_fuzz_unlink);
}

static inline const char *fuzz_file_write(const uint8_t *data, size_t size)
{
	FUZZ_CHECK(ftruncate(s_fuzz_fd, 0) == 0);
	FUZZ_CHECK(pwrite(s_fuzz_fd, data, size, 0) == (ssize_t)size);
	return s_fuzz_path;
}

#endif /* DTX_FUZZ_FILE_H */
