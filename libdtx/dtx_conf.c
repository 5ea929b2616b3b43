/*
 * dtx_conf.c — the table-driven reader of the daemons' INI files, and the
 * comparison a reload makes. See dtx_conf.h.
 */
#include "config.h"

#include <ini.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "dtx_conf.h"
#include "dtx_util.h"
#include "dtx_wire.h"

/* A LIST value is cut into names in a buffer of this size. */
#define LIST_MAX 4096

typedef struct {
	const dtx_conf_key_t *keys;     /* those of the section being read */
	void *cfg;        /* where they go: top, or a named section's element */
	const dtx_conf_key_t *top_keys; /* the one section's */
	const char *section;
	void *top;
	const dtx_conf_section_t *sections;
	char current[160]; /* the section being read; "" before the first */
	FILE *f;           /* read line by line (s_reader) */
	int line;          /* lines read so far */
	int err_line;      /* where why was set */
	char why[512];
} s_ctx_t;

static void *s_field(void *cfg, const dtx_conf_key_t *k)
{
	return (char *)cfg + k->off;
}

static const void *s_cfield(const void *cfg, const dtx_conf_key_t *k)
{
	return (const char *)cfg + k->off;
}

/* UINT fields are 4 or 8 bytes wide (uint32_t, unsigned, uint64_t, size_t). */
static unsigned long long s_uint_get(const void *cfg, const dtx_conf_key_t *k)
{
	const void *f = s_cfield(cfg, k);
	if (k->size == sizeof(uint32_t)) {
		uint32_t v;
		memcpy(&v, f, sizeof(v));
		return v;
	}
	uint64_t v;
	memcpy(&v, f, sizeof(v));
	return v;
}

static void s_uint_set(void *cfg, const dtx_conf_key_t *k, unsigned long long v)
{
	void *f = s_field(cfg, k);
	if (k->size == sizeof(uint32_t)) {
		uint32_t w = (uint32_t)v;
		memcpy(f, &w, sizeof(w));
	} else {
		uint64_t w = v;
		memcpy(f, &w, sizeof(w));
	}
}

static unsigned s_count(const void *cfg, const dtx_conf_key_t *k)
{
	unsigned n;
	memcpy(&n, (const char *)cfg + k->count_off, sizeof(n));
	return n;
}

static bool s_bad(s_ctx_t *c, const dtx_conf_key_t *k, const char *reason)
{
	snprintf(c->why, sizeof(c->why), "'%s': %s", k->name, reason);
	return false;
}

/* Check with the key's own function; false with the reason in c->why. */
static bool s_checked(s_ctx_t *c, const dtx_conf_key_t *k, const char *val)
{
	char reason[256] = "";
	if (!k->check || k->check(val, reason, sizeof(reason)))
		return true;
	return s_bad(c, k, reason);
}

static bool s_list(s_ctx_t *c, const dtx_conf_key_t *k, const char *val)
{
	char buf[LIST_MAX], *save = NULL;
	char *names = s_field(c->cfg, k);
	unsigned n = 0;

	if (strlen(val) >= sizeof(buf))
		return s_bad(c, k, "too long");
	snprintf(buf, sizeof(buf), "%s", val);
	/* A repeated key replaces the list: the count restarts here. */
	memcpy((char *)c->cfg + k->count_off, &n, sizeof(n));
	for (char *t = strtok_r(buf, ", \t", &save); t; t = strtok_r(NULL, ", \t", &save)) {
		if (!s_checked(c, k, t))
			return false;
		if (strlen(t) >= k->elem)
			return s_bad(c, k, "too long");
		if (n == (unsigned)k->max) {
			char reason[128];
			snprintf(reason, sizeof(reason), "more than %lld %s", k->max, k->name);
			return s_bad(c, k, reason);
		}
		for (unsigned i = 0; i < n; i++)
			if (strcmp(names + i * k->elem, t) == 0)
				return s_bad(c, k, "a name appears twice");
		snprintf(names + n++ * k->elem, k->elem, "%s", t);
		memcpy((char *)c->cfg + k->count_off, &n, sizeof(n));
	}
	return true;
}

static bool s_value(s_ctx_t *c, const dtx_conf_key_t *k, const char *val)
{
	long long v;
	int level;

	switch (k->type) {
	case DTX_CONF_STR:
		return s_checked(c, k, val) && dtx_conf_str(k->name, val, s_field(c->cfg, k),
							    k->size, c->why, sizeof(c->why));
	case DTX_CONF_UINT:
		if (k->size != sizeof(uint32_t) && k->size != sizeof(uint64_t))
			return s_bad(c, k, "no such type"); /* a table entry with a bad field */
		if (!dtx_conf_int(k->name, val, k->min, k->max, &v, c->why, sizeof(c->why)))
			return false;
		s_uint_set(c->cfg, k, (unsigned long long)v << k->shift);
		return true;
	case DTX_CONF_BOOL:
		if (strcmp(val, "true") && strcmp(val, "false"))
			return s_bad(c, k, "true or false");
		*(bool *)s_field(c->cfg, k) = strcmp(val, "true") == 0;
		return true;
	case DTX_CONF_LEVEL:
		if ((level = dtx_log_level_parse(val)) < 0)
			return s_bad(c, k, "one of err, warning, notice, info, debug");
		*(int *)s_field(c->cfg, k) = level;
		return true;
	case DTX_CONF_LIST: return s_list(c, k, val);
	}
	return s_bad(c, k, "no such type"); /* a table entry with a bad type */
}

static bool s_empty(const void *cfg, const dtx_conf_key_t *k)
{
	switch (k->type) {
	case DTX_CONF_STR: return *(const char *)s_cfield(cfg, k) == '\0';
	case DTX_CONF_LIST: return s_count(cfg, k) == 0;
	default: return false; /* a number or a bool always has a value */
	}
}

/* The first DTX_CONF_REQUIRED key of keys still empty in cfg, or NULL. */
static const dtx_conf_key_t *s_missing(const dtx_conf_key_t *keys, const void *cfg)
{
	for (const dtx_conf_key_t *k = keys; k->name; k++)
		if ((k->flags & DTX_CONF_REQUIRED) && s_empty(cfg, k))
			return k;
	return NULL;
}

static bool s_fail(s_ctx_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static bool s_fail(s_ctx_t *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->why, sizeof(c->why), fmt, ap);
	va_end(ap);
	c->err_line = c->line;
	return false;
}

/* The named section read last has its required keys. */
static bool s_section_done(s_ctx_t *c)
{
	const dtx_conf_key_t *k;
	if (!c->current[0] || c->cfg == c->top || !(k = s_missing(c->keys, c->cfg)))
		return true;
	return s_fail(c, "'%s' is required in [%s]", k->name, c->current);
}

/* Section section begins: the one section, or [KIND NAME] of a named
 * kind, which adds an element to its array. */
static bool s_enter(s_ctx_t *c, const char *section)
{
	if (!s_section_done(c))
		return false;
	snprintf(c->current, sizeof(c->current), "%s", section);
	if (strcmp(section, c->section) == 0) {
		c->cfg = c->top;
		c->keys = c->top_keys;
		return true;
	}
	const char *sp = strchr(section, ' ');
	const dtx_conf_section_t *s = c->sections;
	for (; sp && s && s->kind; s++)
		if (strlen(s->kind) == (size_t)(sp - section) &&
		    strncmp(section, s->kind, (size_t)(sp - section)) == 0)
			break;
	if (!sp || !s || !s->kind)
		return s_fail(c, "unknown section [%s]", section);
	const char *name = sp + strspn(sp, " \t");
	if (!dtx_name_valid(name))
		return s_fail(c, "[%s NAME]: names are 1-63 characters of A-Z a-z 0-9 _ -",
			      s->kind);
	unsigned n;
	memcpy(&n, (char *)c->top + s->count_off, sizeof(n));
	char *arr = (char *)c->top + s->off;
	for (unsigned i = 0; i < n; i++)
		if (strcmp(arr + i * s->elem + s->name_off, name) == 0)
			return s_fail(c, "[%s %s] appears twice", s->kind, name);
	if (n == s->max)
		return s_fail(c, "more than %zu [%s NAME] sections", s->max, s->kind);
	c->cfg = arr + n * s->elem;
	memset(c->cfg, 0, s->elem);
	if (s->defaults)
		s->defaults(c->cfg);
	snprintf((char *)c->cfg + s->name_off, s->name_size, "%s", name);
	n++;
	memcpy((char *)c->top + s->count_off, &n, sizeof(n));
	c->keys = s->keys;
	return true;
}

/*
 * inih's reader (fgets' contract): one line, counted. A line that does not
 * fit inih's buffer is refused, where inih would cut it and read the rest
 * as a line of its own. A section header is taken here, so that a section
 * without keys is seen too.
 */
static char *s_reader(char *str, int num, void *arg)
{
	s_ctx_t *c = arg;
	if (c->why[0] || !fgets(str, num, c->f))
		return NULL;
	c->line++;
	if (c->line == 1 && strncmp(str, "\xEF\xBB\xBF", 3) == 0)
		memmove(str, str + 3, strlen(str + 3) + 1); /* a UTF-8 BOM, as inih skips it */
	size_t len = strlen(str);
	if (len && str[len - 1] != '\n' && !feof(c->f)) {
		s_fail(c, "line too long (at most %d characters)", num - 2);
		return NULL;
	}
	const char *p = str + strspn(str, " \t");
	const char *end = *p == '[' ? strchr(p, ']') : NULL;
	if (end) {
		char section[160];
		const char *q = p + 1 + strspn(p + 1, " \t");
		int n = (int)(end - q);
		while (n > 0 && (q[n - 1] == ' ' || q[n - 1] == '\t'))
			n--;
		snprintf(section, sizeof(section), "%.*s", n < 0 ? 0 : n, q);
		if (!s_enter(c, section))
			return NULL;
	}
	return str;
}

static int s_handler(void *arg, const char *section, const char *key, const char *val)
{
	s_ctx_t *c = arg;

	if (c->why[0])
		return 0; /* inih goes on after an error: keep the first reason */
	if (!c->current[0]) {
		s_fail(c, "key '%s' before any section", key);
		return 0;
	}
	(void)section; /* the reader saw the header whole (inih cuts long names) */
	for (const dtx_conf_key_t *k = c->keys; k->name; k++)
		if (strcmp(k->name, key) == 0) {
			if (s_value(c, k, val))
				return 1;
			c->err_line = c->line;
			return 0;
		}
	s_fail(c, "unknown key '%s'", key);
	return 0;
}

int dtx_conf_load_sections(const dtx_conf_key_t *keys, const char *section,
			   const dtx_conf_section_t *sections, void *cfg, const char *path,
			   char *why, size_t why_len)
{
	s_ctx_t c = {.keys = keys,
		     .cfg = cfg,
		     .top_keys = keys,
		     .section = section,
		     .top = cfg,
		     .sections = sections};
	const dtx_conf_key_t *k;

	if (!(c.f = fopen(path, "re"))) {
		snprintf(why, why_len, "%s:0: cannot read the file", path);
		return DTX_ECONFIG;
	}
	int line = ini_parse_stream(s_reader, &c, s_handler, &c);
	bool read_error = ferror(c.f);
	fclose(c.f);
	if (!c.why[0] && line == 0 && !read_error)
		s_section_done(&c);
	if (c.why[0] || line > 0) {
		snprintf(why, why_len, "%s:%d: %s", path, c.why[0] ? c.err_line : line,
			 c.why[0] ? c.why : "syntax error");
		return DTX_ECONFIG;
	}
	if (read_error) {
		snprintf(why, why_len, "%s:%d: cannot read the file", path, c.line);
		return DTX_ECONFIG;
	}
	if ((k = s_missing(keys, cfg))) {
		snprintf(why, why_len, "%s:0: '%s' is required in [%s]", path, k->name, section);
		return DTX_ECONFIG;
	}
	return 0;
}

int dtx_conf_load(const dtx_conf_key_t *keys, const char *section, void *cfg, const char *path,
		  char *why, size_t why_len)
{
	return dtx_conf_load_sections(keys, section, NULL, cfg, path, why, why_len);
}

void dtx_conf_said(char *buf, size_t len, const char *fmt, ...)
{
	size_t off = strlen(buf);
	va_list ap;

	if (off + 2 >= len)
		return;
	if (off)
		buf[off++] = ',', buf[off++] = ' ', buf[off] = '\0';
	va_start(ap, fmt);
	vsnprintf(buf + off, len - off, fmt, ap);
	va_end(ap);
}

static bool s_differs(const dtx_conf_key_t *k, const void *a, const void *b)
{
	switch (k->type) {
	case DTX_CONF_STR: return strcmp(s_cfield(a, k), s_cfield(b, k)) != 0;
	case DTX_CONF_LIST:
		return s_count(a, k) != s_count(b, k) ||
		       memcmp(s_cfield(a, k), s_cfield(b, k), s_count(a, k) * k->elem) != 0;
	default: return memcmp(s_cfield(a, k), s_cfield(b, k), k->size) != 0;
	}
}

void dtx_conf_reload(const dtx_conf_key_t *keys, void *inuse, const void *fresh, char *changed,
		     size_t changed_len, char *kept, size_t kept_len)
{
	for (const dtx_conf_key_t *k = keys; k->name; k++) {
		if ((k->flags & DTX_CONF_CALLER) || !s_differs(k, inuse, fresh))
			continue;
		if (k->flags & DTX_CONF_RESTART) {
			dtx_conf_said(kept, kept_len, "%s", k->name);
			continue;
		}
		switch (k->type) {
		case DTX_CONF_STR:
			dtx_conf_said(changed, changed_len, "%s %s -> %s", k->name,
				      (const char *)s_cfield(inuse, k),
				      (const char *)s_cfield(fresh, k));
			break;
		case DTX_CONF_UINT:
			dtx_conf_said(changed, changed_len, "%s %llu -> %llu", k->name,
				      s_uint_get(inuse, k) >> k->shift,
				      s_uint_get(fresh, k) >> k->shift);
			break;
		case DTX_CONF_BOOL:
			dtx_conf_said(changed, changed_len, "%s %s", k->name,
				      *(const bool *)s_cfield(fresh, k) ? "true" : "false");
			break;
		case DTX_CONF_LEVEL:
			dtx_conf_said(changed, changed_len, "%s %s", k->name,
				      dtx_log_level_str(*(const int *)s_cfield(fresh, k)));
			break;
		case DTX_CONF_LIST:
			dtx_conf_said(changed, changed_len, "%s changed", k->name);
			memcpy((char *)inuse + k->count_off, (const char *)fresh + k->count_off,
			       sizeof(unsigned));
			break;
		}
		memcpy(s_field(inuse, k), s_cfield(fresh, k), k->size);
	}
}
