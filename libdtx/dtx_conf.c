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

/* A LIST value is cut into names in a buffer of this size. */
#define LIST_MAX 4096

typedef struct {
	const dtx_conf_key_t *keys;
	const char *section;
	void *cfg;
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

static int s_handler(void *arg, const char *section, const char *key, const char *val)
{
	s_ctx_t *c = arg;

	if (c->why[0])
		return 0; /* inih goes on after an error: keep the first reason */
	if (strcmp(section, c->section) != 0) {
		snprintf(c->why, sizeof(c->why), "unknown section [%s]", section);
		return 0;
	}
	for (const dtx_conf_key_t *k = c->keys; k->name; k++)
		if (strcmp(k->name, key) == 0)
			return s_value(c, k, val) ? 1 : 0; /* 0: inih reports this line */
	snprintf(c->why, sizeof(c->why), "unknown key '%s'", key);
	return 0;
}

static bool s_empty(const void *cfg, const dtx_conf_key_t *k)
{
	switch (k->type) {
	case DTX_CONF_STR: return *(const char *)s_cfield(cfg, k) == '\0';
	case DTX_CONF_LIST: return s_count(cfg, k) == 0;
	default: return false; /* a number or a bool always has a value */
	}
}

int dtx_conf_load(const dtx_conf_key_t *keys, const char *section, void *cfg, const char *path,
		  char *why, size_t why_len)
{
	s_ctx_t c = {.keys = keys, .section = section, .cfg = cfg};
	int line = ini_parse(path, s_handler, &c);

	if (line < 0) {
		snprintf(why, why_len, "%s:0: cannot read the file", path);
		return DTX_ECONFIG;
	}
	if (line > 0) {
		snprintf(why, why_len, "%s:%d: %s", path, line, c.why[0] ? c.why : "syntax error");
		return DTX_ECONFIG;
	}
	for (const dtx_conf_key_t *k = keys; k->name; k++) {
		if ((k->flags & DTX_CONF_REQUIRED) && s_empty(cfg, k)) {
			snprintf(why, why_len, "%s:0: '%s' is required in [%s]", path, k->name,
				 section);
			return DTX_ECONFIG;
		}
	}
	return 0;
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
