/*
 * fuzz.h — what the libFuzzer targets in tests/fuzz share: a check that
 * aborts (so libFuzzer keeps the input), quiet logging, and (fuzz_file.h)
 * the file a configuration parser reads each input from. Header only.
 */
#ifndef DTX_FUZZ_H
#define DTX_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dtx_util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A property of the code under test that does not hold: abort, naming it. */
#define FUZZ_CHECK(cond)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);   \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

/* The code under test logs through libdtx; a fuzzer's millions of refusals
 * would bury libFuzzer's own report. */
static inline void s_fuzz_quiet(int level, const char *line, const dtx_log_ctx_t *ctx, void *arg)
{
	(void)level;
	(void)line;
	(void)ctx;
	(void)arg;
}

static inline void fuzz_quiet(void)
{
	dtx_log_set(DTX_LOG_ERR, s_fuzz_quiet, NULL);
}

/* true if s has a NUL within its n bytes */
static inline int fuzz_terminated(const char *s, size_t n)
{
	return memchr(s, '\0', n) != NULL;
}

#endif /* DTX_FUZZ_H */
