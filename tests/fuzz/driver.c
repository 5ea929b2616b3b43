/*
 * driver.c — the main of a fuzz target in a build without libFuzzer (gcc's,
 * make check): runs LLVMFuzzerTestOneInput once over each input, so that
 * the seed corpus, and every crash once committed to it, is a regression
 * test. TAP, one line per input.
 *
 * usage: fuzz_NAME [FILE|DIR]...
 * Without arguments: $top_srcdir/tests/fuzz/corpus/NAME (NAME: the program's
 * name without "fuzz_"); top_srcdir defaults to the program's folder/../..
 * A failed check aborts, as under libFuzzer: the harness reports it.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <libgen.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

static int s_n;

/* An input's name in TAP lines: its folder and file ("wire/tx"). */
static const char *s_short(const char *path)
{
	const char *last = strrchr(path, '/');
	if (!last || last == path)
		return path;
	for (const char *p = last - 1; p > path; p--)
		if (*p == '/')
			return p + 1;
	return path;
}

static int s_run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0;
	int rc = -1;

	if (!f) {
		printf("not ok %d - %s: %s\n", ++s_n, s_short(path), strerror(errno));
		return -1;
	}
	for (;;) {
		if (len == cap) {
			cap = cap ? cap * 2 : 4096;
			uint8_t *nbuf = realloc(buf, cap);
			if (!nbuf)
				goto out;
			buf = nbuf;
		}
		size_t got = fread(buf + len, 1, cap - len, f);
		len += got;
		if (got == 0)
			break;
	}
	if (ferror(f))
		goto out;
	/* the exact bytes, so that ASan sees a read past the end */
	uint8_t *exact = malloc(len ? len : 1);
	if (!exact)
		goto out;
	memcpy(exact, buf, len);
	LLVMFuzzerTestOneInput(exact, len);
	free(exact);
	rc = 0;
out:
	fclose(f);
	free(buf);
	printf("%s %d - %s\n", rc ? "not ok" : "ok", ++s_n, s_short(path));
	return rc;
}

static int s_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A folder's files in name order, so that runs are alike. */
static int s_run_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char **names = NULL;
	size_t n = 0, cap = 0;
	int rc = 0;

	if (!d) {
		printf("not ok %d - %s: %s\n", ++s_n, dir, strerror(errno));
		return -1;
	}
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			char **nn = realloc(names, cap * sizeof(*names));
			if (!nn) {
				rc = -1;
				break;
			}
			names = nn;
		}
		if (!(names[n] = malloc(strlen(dir) + strlen(e->d_name) + 2))) {
			rc = -1;
			break;
		}
		sprintf(names[n++], "%s/%s", dir, e->d_name);
	}
	closedir(d);
	if (names)
		qsort(names, n, sizeof(*names), s_cmp);
	for (size_t i = 0; i < n; i++) {
		if (rc == 0 && s_run_file(names[i]))
			rc = -1;
		free(names[i]);
	}
	free(names);
	if (n == 0)
		printf("not ok %d - %s: no inputs\n", ++s_n, dir);
	return n ? rc : -1;
}

static int s_run(const char *path)
{
	struct stat st;
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		return s_run_dir(path);
	return s_run_file(path);
}

int main(int argc, char **argv)
{
	int rc = 0;

	LLVMFuzzerInitialize(&argc, &argv);
	if (argc > 1) {
		for (int i = 1; i < argc; i++)
			if (s_run(argv[i]))
				rc = 1;
	} else {
		char self[4096], corpus[8192];
		const char *top = getenv("top_srcdir");
		snprintf(self, sizeof(self), "%s", argv[0]);
		const char *name = basename(self);
		if (strncmp(name, "lt-", 3) == 0) /* libtool's */
			name += 3;
		if (strncmp(name, "fuzz_", 5) == 0)
			name += 5;
		if (top && *top) {
			snprintf(corpus, sizeof(corpus), "%s/tests/fuzz/corpus/%s", top, name);
		} else {
			char dir[4096];
			snprintf(dir, sizeof(dir), "%s", argv[0]);
			snprintf(corpus, sizeof(corpus), "%s/corpus/%s", dirname(dir), name);
		}
		rc = s_run(corpus) ? 1 : 0;
	}
	printf("1..%d\n", s_n);
	return rc;
}
