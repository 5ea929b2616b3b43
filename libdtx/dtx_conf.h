/*
 * dtx_conf.h — the daemons' configuration files, read from a table of
 * keys. Each daemon describes its keys once (name, type, bounds, where the
 * value goes in its config struct, whether SIGHUP may change it); this
 * engine parses the INI file with inih, refuses what the table refuses
 * with "path:line: reason", and tells what a reload changes. The tables
 * stay with their daemons (crd_config.c, pga_config.c). Internal.
 */
#ifndef DTX_CONF_H
#define DTX_CONF_H

#include <stdbool.h>
#include <stddef.h>

typedef enum {
	DTX_CONF_STR,   /* char[size]: not empty, shorter than size */
	DTX_CONF_UINT,  /* an unsigned integer of size 4 or 8 in [min, max], stored << shift */
	DTX_CONF_BOOL,  /* bool: "true" or "false" */
	DTX_CONF_LEVEL, /* int: a log level's name (dtx_log_level_parse) */
	DTX_CONF_LIST,  /* char[max][elem]: names separated by commas or spaces, each
			* once, their count an unsigned at count_off */
} dtx_conf_type_t;

enum {
	DTX_CONF_REQUIRED = 1 << 0, /* still empty after the file: refused */
	DTX_CONF_RESTART = 1 << 1,  /* SIGHUP keeps the value in use */
	DTX_CONF_CALLER = 1 << 2,   /* SIGHUP may change it, but the caller applies it */
};

/*
 * Extra validity of a value (a STR, or each name of a LIST): true, or false
 * with the reason in why (the engine prefixes "'key': ").
 */
typedef bool (*dtx_conf_check_fn)(const char *val, char *why, size_t why_len);

typedef struct {
	const char *name;
	dtx_conf_type_t type;
	long long min, max;      /* UINT: the bounds in the file; LIST: max names */
	unsigned shift;          /* UINT: the file says units of 2^shift (map_size_mb) */
	size_t off, size;        /* the field: offsetof, sizeof */
	size_t elem, count_off;  /* LIST: one name's size; where the count is */
	unsigned flags;          /* DTX_CONF_* above */
	dtx_conf_check_fn check; /* NULL: none */
} dtx_conf_key_t;

/* A key table ends with an entry whose name is NULL. */
#define DTX_CONF_END {.name = NULL}

/*
 * Read path into cfg (already holding the defaults) by keys: one section,
 * section, of key = value lines. 0, or DTX_ECONFIG with why holding
 * "path:line: reason": the first unknown section, unknown key or bad
 * value, "syntax error" for a line inih cannot read; line 0 when the file
 * cannot be read or a DTX_CONF_REQUIRED key is missing (the first of the
 * table's order).
 */
int dtx_conf_load(const dtx_conf_key_t *keys, const char *section, void *cfg, const char *path,
		  char *why, size_t why_len);

/*
 * Named sections: [KIND NAME], each making one element of an array in the
 * config struct (a client's policy, an agent's key), any number of them up
 * to max, NAME unique and dtx_name_valid(). keys are relative to one
 * element; defaults() fills an element before its keys are read; a
 * DTX_CONF_REQUIRED key missing from an element is refused with the
 * section's line.
 */
typedef struct {
	const char *kind;            /* "client": sections [client NAME] */
	const dtx_conf_key_t *keys;  /* within one element */
	size_t off, elem, max;       /* the array in cfg, one element's size, its length */
	size_t count_off;            /* unsigned: how many there are */
	size_t name_off, name_size;  /* char[name_size] in the element: NAME */
	void (*defaults)(void *elem);
} dtx_conf_section_t;

/*
 * dtx_conf_load() with named sections besides the one section (sections
 * ends with an entry whose kind is NULL). A line longer than inih reads
 * (199 characters) is refused as "line too long" at its line, never cut.
 */
int dtx_conf_load_sections(const dtx_conf_key_t *keys, const char *section,
			   const dtx_conf_section_t *sections, void *cfg, const char *path,
			   char *why, size_t why_len);

/*
 * A reload: for every key whose value differs between inuse and fresh,
 * a DTX_CONF_RESTART one is named in kept; a DTX_CONF_CALLER one is left
 * alone (the caller compares and applies it); any other is copied into
 * inuse and said in changed: "key old -> new" for numbers and strings,
 * "key true" for a bool, "key debug" for a log level. Items are separated
 * by ", " and appended to what the buffers hold already; what does not
 * fit is cut.
 */
void dtx_conf_reload(const dtx_conf_key_t *keys, void *inuse, const void *fresh, char *changed,
		     size_t changed_len, char *kept, size_t kept_len);

/* Append ", "-separated printf text to buf (NUL-terminated); cut if full. */
void dtx_conf_said(char *buf, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
