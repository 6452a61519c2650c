/* config.h - experiment specs: YAML files read into a cJSON tree (YAML's core schema: plain null,
 * booleans and numbers become JSON values, everything else strings), `key.path=value` overrides
 * from the command line, and the resolved tree written back as block YAML (runs/NAME/config.yaml). */
#ifndef LATHE_BASE_CONFIG_H
#define LATHE_BASE_CONFIG_H
#include <cjson/cJSON.h>
#include <stddef.h>
#ifdef __cplusplus
extern "C" {
#endif

/* Parses one YAML document. Returns 0 with *out (cJSON_Delete it), -LATHE_ENOTFOUND, or
 * -LATHE_EFORMAT with the file, line and reason (aliases and merge keys are refused). A top-level
 * `base: FILE` (relative to this file) loads that file first and merges this one over it: mappings
 * key by key, lists and values replaced; bases may chain, 8 deep at most. */
int lathe_config_load(const char *path, cJSON **out);
/* The same from a string (name appears in messages). */
int lathe_config_parse(const char *text, const char *name, cJSON **out);
/* Applies "a.b.c=value": objects are created along the path; a numeric part indexes an array;
 * value is read as YAML (a scalar, or a flow sequence or mapping like [3, 64, 64]). Returns 0 or -LATHE_EINVAL (no '=', empty key, a path
 * through a non-object, an index out of range). */
int lathe_config_override(cJSON *root, const char *assignment);
/* Block YAML of the tree (strings double-quoted); NULL on allocation failure. free() it. */
char *lathe_config_to_yaml(const cJSON *root);

/* The one JSON value of text[0, len) (cJSON_Delete it), or NULL when it is not valid JSON or when
 * anything but whitespace follows the value (two files joined by `cat`: json.load refuses them, and
 * reading the first alone would drop the rest unsaid). *error_at, when given, is the byte offset
 * where parsing failed or where the extra data starts. After NULL, errno is ENOMEM when the parse
 * ran out of memory (cJSON says only that it failed: a tree of small values takes ~25x the text).
 * A key an object repeats has its last value, at its first place, as Python's json reads it. A NUL
 * character (a byte, or the escape \u0000) is refused there (NULL, errno 0): cJSON's strings end
 * at one, so "a\u0000b" would read as "a", another key or file name than the text says. */
cJSON *lathe_json_parse(const char *text, size_t len, size_t *error_at);
/* Reads a JSON file of at most max_bytes. Returns 0 with *out (cJSON_Delete it), the errors of
 * lathe_read_file, or -LATHE_EFORMAT when the text is not one JSON value (lathe_json_parse). */
int lathe_json_load(const char *path, size_t max_bytes, cJSON **out);
/* Writes json, indented, to path durably (lathe_write_atomic). Returns 0, -LATHE_ENOMEM or its errors. */
int lathe_json_save(const char *path, const cJSON *json);
/* The first object of a JSON list whose "name" is the string name, or NULL. */
const cJSON *lathe_json_named(const cJSON *list, const char *name);
/* What stops matching a list's items by name (lathe_json_named): the index of the first item without
 * a string "name" (*repeated NULL), or of the first whose name an earlier item has (*repeated that
 * name); -1 when each item has a name of its own. */
int lathe_json_names_problem(const cJSON *list, const char **repeated);

/* 1 when w is one of the space-separated words ("cosine linear step"); never for an empty w. */
int lathe_word_listed(const char *words, const char *w);

/* Lookups by dotted path: the value, or def when absent or of another type. */
const cJSON *lathe_config_get(const cJSON *root, const char *path);
double lathe_config_num(const cJSON *root, const char *path, double def);
const char *lathe_config_str(const cJSON *root, const char *path, const char *def);
/* A JSON number as an int for a count or size that is checked after: truncated toward zero and held
 * to [-2^30, 2^30] (NaN: 0), so a file's 1e40 becomes a value the check refuses, not an undefined
 * conversion. */
static inline int lathe_json_int(double v) {
    return v != v ? 0 : v > 1073741824.0 ? 1073741824 : v < -1073741824.0 ? -1073741824 : (int)v;
}
/* A probability: the number, when_true for true, 0 for false, def when absent or of another type. */
double lathe_config_prob(const cJSON *root, const char *path, double def, double when_true);
/* Removes every null-valued key of every mapping in the tree: a spec's `key: ~` (or a child spec's,
 * over its base) means "not set", so the default applies. */
void lathe_config_drop_nulls(cJSON *root);

#ifdef __cplusplus
}
#endif
#endif
