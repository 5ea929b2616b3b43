/*
 * pga_named.c — the named statements' file (see pga_named.h): read whole,
 * split into statements, each checked before the agent starts.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dtx.h"
#include "pga_named.h"
#include "pga_stmt.h"

#define S_MAX_FILE (16 << 20)

struct pga_named {
	char *path;
	uint32_t n;
	pga_named_stmt_t st[PGA_NAMED_MAX_STMTS];
};

void pga_named_destroy(pga_named_t **self_p)
{
	pga_named_t *self = self_p ? *self_p : NULL;
	if (!self)
		return;
	for (uint32_t i = 0; i < self->n; i++) {
		free((char *)self->st[i].name);
		free((char *)self->st[i].pgname);
		free((char *)self->st[i].sql);
	}
	free(self->path);
	free(self);
	*self_p = NULL;
}

const char *pga_named_path(const pga_named_t *self)
{
	return self ? self->path : "";
}

uint32_t pga_named_count(const pga_named_t *self)
{
	return self ? self->n : 0;
}

const pga_named_stmt_t *pga_named_at(const pga_named_t *self, uint32_t i)
{
	return self && i < self->n ? &self->st[i] : NULL;
}

const pga_named_stmt_t *pga_named_find(const pga_named_t *self, const char *name)
{
	for (uint32_t i = 0; name && i < pga_named_count(self); i++)
		if (strcmp(self->st[i].name, name) == 0)
			return &self->st[i];
	return NULL;
}

int pga_named_check(const pga_named_t *self, uint32_t n, const dtx_stmt_t *stmts, char *sqlstate,
		    char *why, size_t why_len, bool *quiet)
{
	bool q = true;
	if (quiet)
		*quiet = false;
	for (uint32_t i = 0; i < n; i++) {
		if (!stmts[i].statement)
			continue;
		const pga_named_stmt_t *st = pga_named_find(self, stmts[i].statement);
		if (!st) {
			snprintf(sqlstate, 6, "26000");
			snprintf(why, why_len,
				 "statement %u: no statement '%s' is defined in this agent",
				 (unsigned)(i + 1), stmts[i].statement);
			return DTX_ENOTFOUND;
		}
		if (stmts[i].nparams != st->nparams) {
			snprintf(sqlstate, 6, "08P01");
			snprintf(why, why_len, "statement %u: '%s' takes %u parameters, %u given",
				 (unsigned)(i + 1), st->name, (unsigned)st->nparams,
				 (unsigned)stmts[i].nparams);
			return DTX_EINVAL;
		}
		q = q && st->quiet;
	}
	if (quiet)
		*quiet = q;
	return 0;
}

/* The whole file, NUL-terminated, into *text. 0 or DTX_ECONFIG with why. */
static int s_read(const char *path, char **text, size_t *len, char *why, size_t why_len)
{
	struct stat sb;
	char *buf = NULL;
	size_t n = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		snprintf(why, why_len, "%s:0: cannot read the file: %s", path, strerror(errno));
		return DTX_ECONFIG;
	}
	if (fstat(fd, &sb) || !S_ISREG(sb.st_mode)) {
		snprintf(why, why_len, "%s:0: not a regular file", path);
		goto fail;
	}
	/* Its SQL runs for any client that names it: no one but its owner
	 * may change it. */
	if (sb.st_mode & (S_IWGRP | S_IWOTH)) {
		snprintf(why, why_len, "%s:0: writable by others than its owner (chmod go-w)",
			 path);
		goto fail;
	}
	if (sb.st_size > S_MAX_FILE) {
		snprintf(why, why_len, "%s:0: larger than %d bytes", path, S_MAX_FILE);
		goto fail;
	}
	if (!(buf = malloc((size_t)sb.st_size + 1))) {
		snprintf(why, why_len, "%s:0: out of memory", path);
		goto fail;
	}
	while (n < (size_t)sb.st_size) {
		ssize_t r = read(fd, buf + n, (size_t)sb.st_size - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			snprintf(why, why_len, "%s:0: cannot read the file: %s", path,
				 r < 0 ? strerror(errno) : "it shrank");
			goto fail;
		}
		n += (size_t)r;
	}
	buf[n] = '\0';
	if (memchr(buf, '\0', n)) {
		snprintf(why, why_len, "%s:0: holds a NUL byte", path);
		goto fail;
	}
	close(fd);
	*text = buf;
	*len = n;
	return 0;
fail:
	free(buf);
	close(fd);
	return DTX_ECONFIG;
}

static bool s_name_ok(const char *s, size_t n)
{
	if (n == 0 || n > PGA_NAMED_MAX_NAME)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-'))
			return false;
	}
	return true;
}

/* The statement being read: its header line's parts and its SQL so far. */
typedef struct {
	bool open;
	unsigned line;
	char name[PGA_NAMED_MAX_NAME + 1];
	uint32_t nparams;
	char *sql;
	size_t len;
} s_cur_t;

static int s_append(s_cur_t *c, const char *p, size_t n)
{
	if (c->len + n + 2 > DTX_WIRE_MAX_STR + 1)
		return DTX_ETOOBIG;
	char *s = realloc(c->sql, c->len + n + 2);
	if (!s)
		return DTX_ENOMEM;
	c->sql = s;
	if (c->len)
		c->sql[c->len++] = '\n';
	memcpy(c->sql + c->len, p, n);
	c->len += n;
	c->sql[c->len] = '\0';
	return 0;
}

/* The statement read so far is complete: check it and keep it. */
static int s_close_stmt(pga_named_t *self, s_cur_t *c, char *why, size_t why_len)
{
	char tmp[512];
	int rc;
	if (!c->open)
		return 0;
	c->open = false;
	if (!c->len) {
		snprintf(why, why_len, "%s:%u: statement '%s' has no SQL", self->path, c->line,
			 c->name);
		return DTX_ECONFIG;
	}
	bool quiet = false;
	if ((rc = pga_stmt_check_named(c->sql, c->nparams, tmp, sizeof(tmp), &quiet))) {
		snprintf(why, why_len, "%s:%u: statement '%s' %s", self->path, c->line, c->name,
			 tmp);
		return rc == DTX_ENOMEM ? DTX_ENOMEM : DTX_ECONFIG;
	}
	pga_named_stmt_t *st = &self->st[self->n];
	size_t pglen = strlen(PGA_NAMED_PREFIX) + strlen(c->name) + 1;
	st->name = strdup(c->name);
	st->pgname = malloc(pglen);
	if (!st->name || !st->pgname) {
		free((char *)st->name);
		free((char *)st->pgname);
		snprintf(why, why_len, "%s: out of memory", self->path);
		return DTX_ENOMEM;
	}
	snprintf((char *)st->pgname, pglen, "%s%s", PGA_NAMED_PREFIX, c->name);
	st->sql = c->sql;
	st->quiet = quiet;
	st->nparams = c->nparams;
	st->line = c->line;
	c->sql = NULL;
	c->len = 0;
	self->n++;
	return 0;
}

/* One line (without its newline) at lineno. */
static int s_line(pga_named_t *self, s_cur_t *c, char *p, unsigned lineno, char *why,
		  size_t why_len)
{
	size_t n = strlen(p);
	int rc;
	if (n && p[n - 1] == '\r')
		p[--n] = '\0';
	const char *q = p + strspn(p, " \t");
	if (*q == '\0' || *q == '#')
		return 0; /* blank or comment */
	if (q != p) {
		/* a continuation of the SQL above */
		if (!c->open) {
			snprintf(why, why_len,
				 "%s:%u: an indented line continues a statement, and none is "
				 "open",
				 self->path, lineno);
			return DTX_ECONFIG;
		}
		rc = s_append(c, q, strlen(q));
		goto appended;
	}
	if ((rc = s_close_stmt(self, c, why, why_len)))
		return rc;
	size_t nl = strcspn(p, " \t");
	if (!s_name_ok(p, nl)) {
		snprintf(why, why_len,
			 "%s:%u: a statement's name is 1-%d characters of A-Z a-z 0-9 _ - "
			 "(the line reads NAME NPARAMS SQL)",
			 self->path, lineno, PGA_NAMED_MAX_NAME);
		return DTX_ECONFIG;
	}
	memcpy(c->name, p, nl);
	c->name[nl] = '\0';
	if (pga_named_find(self, c->name)) {
		snprintf(why, why_len, "%s:%u: statement '%s' is defined twice (first at line %u)",
			 self->path, lineno, c->name, pga_named_find(self, c->name)->line);
		return DTX_ECONFIG;
	}
	if (self->n == PGA_NAMED_MAX_STMTS) {
		snprintf(why, why_len, "%s:%u: more than %d statements", self->path, lineno,
			 PGA_NAMED_MAX_STMTS);
		return DTX_ECONFIG;
	}
	q = p + nl + strspn(p + nl, " \t");
	size_t dl = strspn(q, "0123456789");
	if (dl == 0 || dl > 4 || (q[dl] && q[dl] != ' ' && q[dl] != '\t') ||
	    (dl > 1 && q[0] == '0') || atoi(q) > PGA_STMT_MAX_PARAMS) {
		snprintf(why, why_len,
			 "%s:%u: statement '%s': its number of parameters (0-%d) follows the "
			 "name",
			 self->path, lineno, c->name, PGA_STMT_MAX_PARAMS);
		return DTX_ECONFIG;
	}
	c->nparams = (uint32_t)atoi(q);
	c->open = true;
	c->line = lineno;
	c->len = 0;
	q += dl;
	q += strspn(q, " \t");
	rc = *q ? s_append(c, q, strlen(q)) : 0;
appended:
	if (rc == DTX_ETOOBIG) {
		snprintf(why, why_len, "%s:%u: statement '%s' is longer than %d bytes", self->path,
			 lineno, c->name, DTX_WIRE_MAX_STR);
		return DTX_ECONFIG;
	}
	if (rc) {
		snprintf(why, why_len, "%s: out of memory", self->path);
		return rc;
	}
	return 0;
}

int pga_named_load(const char *path, pga_named_t **out, char *why, size_t why_len)
{
	pga_named_t *self = NULL;
	s_cur_t cur = {0};
	char *text = NULL;
	size_t len = 0;
	unsigned lineno = 0;
	int rc;

	*out = NULL;
	if ((rc = s_read(path, &text, &len, why, why_len)))
		return rc;
	if (!(self = calloc(1, sizeof(*self))) || !(self->path = strdup(path))) {
		snprintf(why, why_len, "%s: out of memory", path);
		rc = DTX_ENOMEM;
		goto out;
	}
	for (char *p = text, *end = text + len; p < end;) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		if (nl)
			*nl = '\0';
		if ((rc = s_line(self, &cur, p, ++lineno, why, why_len)))
			goto out;
		p = nl ? nl + 1 : end;
	}
	if ((rc = s_close_stmt(self, &cur, why, why_len)))
		goto out;
	*out = self;
	self = NULL;
out:
	free(cur.sql);
	free(text);
	pga_named_destroy(&self);
	return rc;
}
