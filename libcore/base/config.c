/* config.c - YAML experiment specs as cJSON trees (see config.h). libfyaml parses; this file only
 * maps its nodes to JSON values and back. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <libfyaml.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "error.h"
#include "fsutil.h"
#include "hashmap.h"
#include "yaml_check.h"

/* A plain scalar under YAML 1.2's core schema. */
static cJSON *plain_scalar(const char *s, size_t n) {
    char buf[128];
    if (n < sizeof buf) {
        memcpy(buf, s, n);
        buf[n] = 0;
        if (!strcmp(buf, "") || !strcmp(buf, "~") || !strcasecmp(buf, "null")) return cJSON_CreateNull();
        if (!strcmp(buf, "true") || !strcmp(buf, "True") || !strcmp(buf, "TRUE")) return cJSON_CreateTrue();
        if (!strcmp(buf, "false") || !strcmp(buf, "False") || !strcmp(buf, "FALSE")) return cJSON_CreateFalse();
        char *end;
        errno = 0;
        double v = strtod(buf, &end);
        if (end != buf && *end == 0 && errno == 0 && isfinite(v) && !isspace((unsigned char)buf[0]))
            return cJSON_CreateNumber(v);
    }
    char *copy = strndup(s, n);
    cJSON *str = copy ? cJSON_CreateString(copy) : NULL;
    free(copy);
    return str;
}

/* Where the nodes convert() reads come from: the file's name for messages and the text parsed. */
typedef struct {
    const char *name;
    lathe_yaml_source src;
} yaml_origin;

static cJSON *convert(struct fy_node *node, const yaml_origin *from) {
    if (!node) return cJSON_CreateNull();
    switch (fy_node_get_type(node)) {
    case FYNT_SCALAR: {
        if (fy_node_is_alias(node)) {
            lathe_fail(LATHE_EFORMAT, "%s: YAML aliases are not supported in specs", from->name);
            return NULL;
        }
        size_t n;
        char *s = lathe_yaml_scalar_copy(node, &from->src, &n);
        if (!s && lathe_last_error()[0]) lathe_fail_context(LATHE_EFORMAT, "%s", from->name);
        cJSON *v = !s ? NULL : fy_node_get_style(node) == FYNS_PLAIN ? plain_scalar(s, n) : cJSON_CreateString(s);
        free(s);
        return v;
    }
    case FYNT_SEQUENCE: {
        cJSON *a = cJSON_CreateArray();
        void *it = NULL;
        struct fy_node *item;
        while (a && (item = fy_node_sequence_iterate(node, &it))) {
            cJSON *v = convert(item, from);
            if (!v) {
                cJSON_Delete(a);
                return NULL;
            }
            cJSON_AddItemToArray(a, v);
        }
        return a;
    }
    default: {
        cJSON *o = cJSON_CreateObject();
        void *it = NULL;
        struct fy_node_pair *pair;
        while (o && (pair = fy_node_mapping_iterate(node, &it))) {
            struct fy_node *k = fy_node_pair_key(pair);
            if (!k || !fy_node_is_scalar(k)) {
                lathe_fail(LATHE_EFORMAT, "%s: a mapping key is not a scalar", from->name);
                cJSON_Delete(o);
                return NULL;
            }
            size_t n;
            char *kc = lathe_yaml_scalar_copy(k, &from->src, &n);
            if (!kc || !strcmp(kc, "<<")) {
                if (kc) lathe_fail(LATHE_EFORMAT, "%s: YAML merge keys are not supported in specs", from->name);
                free(kc);
                cJSON_Delete(o);
                return NULL;
            }
            cJSON *v = convert(fy_node_pair_value(pair), from);
            if (!v) {
                free(kc);
                cJSON_Delete(o);
                return NULL;
            }
            cJSON_DeleteItemFromObjectCaseSensitive(o, kc); /* the last of duplicate keys wins */
            cJSON_AddItemToObject(o, kc, v);
            free(kc);
        }
        return o;
    }
    }
}

/* A spec is a few kilobytes; anything this size is not one. */
#define SPEC_MAX_BYTES ((size_t)16 << 20)

static int parse_text(const char *src, size_t len, const char *name, cJSON **out) {
    *out = NULL;
    struct fy_document *doc;
    int rc = lathe_yaml_parse(src, len, name, &doc);
    if (rc) return rc;
    lathe_clear_error();
    yaml_origin from = {name, {src, len}};
    cJSON *tree = convert(fy_document_root(doc), &from);
    fy_document_destroy(doc);
    if (!tree) return lathe_last_error()[0] ? -LATHE_EFORMAT : lathe_fail(LATHE_ENOMEM, "%s", name);
    *out = tree;
    return 0;
}

/* Mappings of over merge into base's, key by key; anything else in over replaces. Consumes over. */
static void merge_into(cJSON *base, cJSON *over) {
    while (over->child) {
        cJSON *item = cJSON_DetachItemViaPointer(over, over->child);
        cJSON *mine = cJSON_GetObjectItemCaseSensitive(base, item->string);
        if (cJSON_IsObject(mine) && cJSON_IsObject(item)) {
            merge_into(mine, item); /* consumes item */
        } else if (mine) {
            cJSON_ReplaceItemViaPointer(base, mine, item);
        } else {
            cJSON_AddItemToObject(base, item->string, item);
        }
    }
    cJSON_Delete(over);
}

enum { MAX_BASE_DEPTH = 8 };

static int load_depth(const char *path, int depth, cJSON **out) {
    struct stat st;
    if (stat(path, &st)) return lathe_fail(LATHE_ENOTFOUND, "%s: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode)) return lathe_fail(LATHE_EFORMAT, "%s is a folder, not a spec file", path);
    if (st.st_size == 0) return lathe_fail(LATHE_EFORMAT, "%s is empty", path);
    char *text = NULL;
    size_t len = 0;
    int rc = lathe_read_file(path, SPEC_MAX_BYTES, &text, &len);
    if (!rc) rc = parse_text(text, len, path, out);
    free(text);
    cJSON *base_key = rc ? NULL : cJSON_GetObjectItemCaseSensitive(*out, "base");
    if (!base_key) return rc;
    if (!cJSON_IsString(base_key) || depth >= MAX_BASE_DEPTH) {
        cJSON_Delete(*out), *out = NULL;
        return lathe_fail(LATHE_EFORMAT, "%s: base must name a file, at most %d levels deep", path, MAX_BASE_DEPTH);
    }
    char base_path[4096];
    const char *slash = strrchr(path, '/');
    if (base_key->valuestring[0] == '/' || !slash) snprintf(base_path, sizeof base_path, "%s", base_key->valuestring);
    else snprintf(base_path, sizeof base_path, "%.*s/%s", (int)(slash - path), path, base_key->valuestring);
    cJSON *base;
    rc = load_depth(base_path, depth + 1, &base);
    if (rc) {
        cJSON_Delete(*out), *out = NULL;
        return lathe_fail_context(-rc, "%s", path);
    }
    if (!cJSON_IsObject(base)) {
        cJSON_Delete(base), cJSON_Delete(*out), *out = NULL;
        return lathe_fail(LATHE_EFORMAT, "%s: its base %s is not a mapping", path, base_path);
    }
    cJSON_DeleteItemFromObjectCaseSensitive(*out, "base");
    merge_into(base, *out);
    *out = base;
    return 0;
}

int lathe_config_load(const char *path, cJSON **out) { return load_depth(path, 0, out); }

int lathe_config_parse(const char *text, const char *name, cJSON **out) {
    return parse_text(text, strlen(text), name, out);
}

static int is_index(const char *s) {
    if (!*s) return 0;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s)) return 0;
    return 1;
}

static int is_blank(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* 1 when YAML would drop part of a one-line override value as a comment: a '#' at its start or
 * after a blank, outside a quoted scalar. On a command line that is text the user typed (name=run
 * #3), not a comment. A quote opens a quoted scalar only where YAML starts a node: at the start,
 * after a tag or an anchor (!!str "a", &x "a"), after a mapping's "key: " or a lone - or ?, and in a
 * flow collection after [, { or ,. A value of several lines is YAML the user composed (a file's text
 * through $(cat ...)), its comments meant as comments: 0. */
static int has_yaml_comment(const char *s) {
    if (strpbrk(s, "\n\r")) return 0;
    char quote = 0;
    int may_open = 1, depth = 0, leading = 1; /* leading: only lone - or ? before this word */
    const char *word = NULL;                  /* where the current run of non-blanks began */
    for (const char *p = s; *p; p++) {
        char c = *p;
        if (quote) {
            if ((c == '\\' && quote == '"' && p[1]) || (c == '\'' && quote == '\'' && p[1] == '\''))
                p++; /* an escaped character inside: \" or '' */
            else if (c == quote) quote = 0, may_open = 0, leading = 0;
            continue;
        }
        if (c == '#' && (p == s || is_blank(p[-1]))) return 1;
        if (is_blank(c)) {
            if (word) {
                int lone = p - word == 1 && (*word == '-' || *word == '?');
                if (*word == '!' || *word == '&' || p[-1] == ':' || (lone && leading)) may_open = 1;
                leading = leading && lone;
            }
            word = NULL;
        } else if ((c == '"' || c == '\'') && may_open) {
            quote = c;
        } else if ((c == '[' || c == '{') && may_open) {
            depth++, leading = 0;
        } else if (c == ',' && depth) {
            may_open = 1, word = NULL;
        } else if ((c == ']' || c == '}') && depth) {
            depth--, may_open = 0, word = NULL;
        } else {
            if (!word) word = p;
            may_open = 0;
        }
    }
    return 0;
}

int lathe_config_override(cJSON *root, const char *assignment) {
    const char *eq = strchr(assignment, '=');
    if (!eq || eq == assignment) return lathe_fail(LATHE_EINVAL, "'%s' is not key=value", assignment);
    char path[512];
    size_t klen = (size_t)(eq - assignment);
    if (klen >= sizeof path) return lathe_fail(LATHE_EINVAL, "key too long in '%s'", assignment);
    memcpy(path, assignment, klen);
    path[klen] = 0;
    if (path[0] == '.' || path[klen - 1] == '.' || strstr(path, ".."))
        return lathe_fail(LATHE_EINVAL, "'%s': the key has an empty part", assignment);
    cJSON *node = root;
    char *save = NULL, *part = strtok_r(path, ".", &save);
    while (part) {
        char *next = strtok_r(NULL, ".", &save);
        cJSON *child;
        if (cJSON_IsArray(node)) {
            int i = is_index(part) ? atoi(part) : -1;
            if (i < 0 || i >= cJSON_GetArraySize(node))
                return lathe_fail(LATHE_EINVAL, "'%s': %s is not an index of the list", assignment, part);
            child = cJSON_GetArrayItem(node, i);
        } else if (cJSON_IsObject(node)) {
            child = cJSON_GetObjectItemCaseSensitive(node, part);
        } else {
            return lathe_fail(LATHE_EINVAL, "'%s': %s sits under a value that is not a mapping", assignment, part);
        }
        if (!next) {
            cJSON *v = NULL; /* a YAML value ([3, 64, 64], {a: 1}, 0.5, text); plain text if it is not YAML */
            if (has_yaml_comment(eq + 1) || lathe_config_parse(eq + 1, "override", &v) || !v)
                v = plain_scalar(eq + 1, strlen(eq + 1));
            if (!v) return lathe_fail(LATHE_ENOMEM, "override");
            if (cJSON_IsArray(node)) cJSON_ReplaceItemInArray(node, atoi(part), v);
            else if (child) cJSON_ReplaceItemInObjectCaseSensitive(node, part, v);
            else cJSON_AddItemToObject(node, part, v);
            return 0;
        }
        if (!child) child = cJSON_AddObjectToObject(node, part);
        node = child;
        part = next;
    }
    return lathe_fail(LATHE_EINVAL, "'%s': empty key", assignment);
}

typedef struct {
    char *buf;
    size_t len, cap;
    int oom;
} sbuf;

static void put(sbuf *b, const char *s) {
    size_t n = strlen(s);
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = (b->cap + n + 1) * 2;
        char *grown = realloc(b->buf, cap);
        if (!grown) {
            b->oom = 1;
            return;
        }
        b->buf = grown, b->cap = cap;
    }
    memcpy(b->buf + b->len, s, n + 1);
    b->len += n;
}

static void indent(sbuf *b, int depth) {
    for (int i = 0; i < depth; i++) put(b, "  ");
}

static void scalar(sbuf *b, const cJSON *v) {
    char *text = cJSON_PrintUnformatted(v); /* JSON scalars are valid YAML flow scalars */
    if (!text) b->oom = 1;
    else put(b, text);
    cJSON_free(text);
}

static int is_container(const cJSON *v) { return (cJSON_IsObject(v) || cJSON_IsArray(v)) && v->child; }

static void emit(sbuf *b, const cJSON *v, int depth) {
    const cJSON *item;
    cJSON_ArrayForEach(item, v) {
        indent(b, depth);
        if (cJSON_IsArray(v)) put(b, "-");
        else {
            cJSON *k = cJSON_CreateString(item->string);
            scalar(b, k);
            cJSON_Delete(k);
            put(b, ":");
        }
        if (is_container(item)) {
            put(b, "\n");
            emit(b, item, depth + 1);
        } else {
            put(b, " ");
            if (cJSON_IsObject(item)) put(b, "{}");
            else if (cJSON_IsArray(item)) put(b, "[]");
            else scalar(b, item);
            put(b, "\n");
        }
    }
}

char *lathe_config_to_yaml(const cJSON *root) {
    sbuf b = {0};
    put(&b, "");
    if (is_container(root)) emit(&b, root, 0);
    else {
        scalar(&b, root);
        put(&b, "\n");
    }
    if (b.oom) {
        free(b.buf);
        return NULL;
    }
    return b.buf;
}

const cJSON *lathe_config_get(const cJSON *root, const char *path) {
    char buf[512];
    snprintf(buf, sizeof buf, "%s", path);
    const cJSON *node = root;
    char *save = NULL;
    for (char *part = strtok_r(buf, ".", &save); part && node; part = strtok_r(NULL, ".", &save))
        node = cJSON_IsArray(node) ? (is_index(part) ? cJSON_GetArrayItem(node, atoi(part)) : NULL)
                                   : cJSON_GetObjectItemCaseSensitive(node, part);
    return node;
}

double lathe_config_num(const cJSON *root, const char *path, double def) {
    const cJSON *v = lathe_config_get(root, path);
    return cJSON_IsNumber(v) ? v->valuedouble : def;
}

double lathe_config_prob(const cJSON *root, const char *path, double def, double when_true) {
    const cJSON *v = lathe_config_get(root, path);
    return cJSON_IsNumber(v) ? v->valuedouble : cJSON_IsTrue(v) ? when_true : cJSON_IsFalse(v) ? 0 : def;
}

static void drop_nulls(cJSON *node) {
    cJSON *v = node ? node->child : NULL;
    while (v) {
        cJSON *next = v->next;
        if (cJSON_IsNull(v) && cJSON_IsObject(node)) cJSON_Delete(cJSON_DetachItemViaPointer(node, v));
        else if (cJSON_IsObject(v) || cJSON_IsArray(v)) drop_nulls(v);
        v = next;
    }
}

void lathe_config_drop_nulls(cJSON *root) { drop_nulls(root); }

const char *lathe_config_str(const cJSON *root, const char *path, const char *def) {
    const cJSON *v = lathe_config_get(root, path);
    return cJSON_IsString(v) ? v->valuestring : def;
}

/* Of a key an object holds twice, the later value takes the earlier's place, as Python's json
 * (and so pycocotools, and every script beside lathe) reads it; cJSON's lookups would find the
 * first. Objects of many keys find repeats through a map. Returns 0, or -1 out of memory. */
static int json_keep_last_values(cJSON *node) {
    size_t n = 0;
    for (cJSON *c = node->child; c; c = c->next, n++)
        if (json_keep_last_values(c)) return -1; /* depth is cJSON's nesting limit, 1000 */
    if (!cJSON_IsObject(node) || n < 2) return 0;
    lathe_hashmap *seen = n > 16 ? lathe_hashmap_create() : NULL;
    if (n > 16 && !seen) return -1;
    for (cJSON *c = node->child, *next; c; c = next) {
        next = c->next;
        cJSON *earlier = NULL;
        size_t at;
        if (seen) {
            if (lathe_hashmap_get(seen, c->string, &at)) earlier = (cJSON *)(uintptr_t)at;
            else if (lathe_hashmap_put(seen, c->string, (uintptr_t)c)) return lathe_hashmap_free(seen), -1;
        } else {
            for (cJSON *e = node->child; e != c && !earlier; e = e->next)
                if (!strcmp(e->string, c->string)) earlier = e;
        }
        if (earlier) { /* c takes `earlier`'s place and `earlier` is freed: the map now names c */
            cJSON_DetachItemViaPointer(node, c);
            cJSON_ReplaceItemViaPointer(node, earlier, c);
            if (seen && lathe_hashmap_put(seen, c->string, (uintptr_t)c)) return lathe_hashmap_free(seen), -1;
        }
    }
    lathe_hashmap_free(seen);
    return 0;
}

/* Where text holds a NUL character, as a byte or as the escape \u0000; len when it holds none. cJSON
 * keeps strings NUL-terminated, so "a\u0000b" would come back as "a": a key that collides with
 * another, a file name that matches another file. */
static size_t json_nul_at(const char *text, size_t len) {
    for (size_t i = 0; i < len; i++) {
        if (!text[i]) return i;
        if (text[i] != '\\') continue;
        if (i + 5 < len && !memcmp(text + i + 1, "u0000", 5)) return i;
        i++; /* an escape is two bytes at least: \\ is one backslash, never the start of another */
    }
    return len;
}

cJSON *lathe_json_parse(const char *text, size_t len, size_t *error_at) {
    size_t nul = json_nul_at(text, len);
    if (nul < len) {
        if (error_at) *error_at = nul;
        errno = 0;
        return NULL;
    }
    const char *end = NULL;
    errno = 0; /* malloc's ENOMEM tells an allocation failure from bad text */
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    int parse_errno = errno;
    size_t at = end ? (size_t)(end - text) : 0;
    while (root && at < len && (unsigned char)text[at] <= ' ' && text[at]) at++; /* cJSON's whitespace */
    if (root && at < len) cJSON_Delete(root), root = NULL, parse_errno = 0;
    if (root && json_keep_last_values(root)) cJSON_Delete(root), root = NULL, parse_errno = ENOMEM;
    if (error_at) *error_at = at;
    errno = parse_errno;
    return root;
}

int lathe_json_load(const char *path, size_t max_bytes, cJSON **out) {
    *out = NULL;
    char *text;
    size_t len, at;
    int rc = lathe_read_file(path, max_bytes, &text, &len);
    if (rc) return rc;
    *out = lathe_json_parse(text, len, &at);
    int oom = !*out && errno == ENOMEM, nul = !*out && at < len && json_nul_at(text + at, len - at) == 0;
    free(text);
    if (oom) return lathe_fail(LATHE_ENOMEM, "%s: out of memory for its JSON tree (%zu bytes of text)", path, len);
    if (nul) return lathe_fail(LATHE_EFORMAT, "%s: a NUL character (\\u0000) at byte %zu, which lathe does not read", path, at);
    return *out ? 0 : lathe_fail(LATHE_EFORMAT, "%s is not valid JSON (at byte %zu)", path, at);
}

int lathe_json_save(const char *path, const cJSON *json) {
    char *text = cJSON_Print(json);
    int rc = text ? lathe_write_atomic(path, text, strlen(text)) : lathe_fail(LATHE_ENOMEM, "%s", path);
    cJSON_free(text);
    return rc;
}

const cJSON *lathe_json_named(const cJSON *list, const char *name) {
    const cJSON *item;
    cJSON_ArrayForEach(item, list) {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(item, "name");
        if (cJSON_IsString(n) && !strcmp(n->valuestring, name)) return item;
    }
    return NULL;
}

int lathe_json_names_problem(const cJSON *list, const char **repeated) {
    const cJSON *item, *earlier;
    int k = 0;
    *repeated = NULL;
    cJSON_ArrayForEach(item, list) {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(item, "name");
        if (!cJSON_IsString(n)) return k;
        for (earlier = list->child; earlier != item; earlier = earlier->next)
            if (!strcmp(cJSON_GetObjectItemCaseSensitive(earlier, "name")->valuestring, n->valuestring))
                return *repeated = n->valuestring, k;
        k++;
    }
    return -1;
}

int lathe_word_listed(const char *words, const char *w) {
    size_t n = strlen(w);
    for (const char *p = n ? strstr(words, w) : NULL; p; p = strstr(p + 1, w))
        if ((p == words || p[-1] == ' ') && (p[n] == ' ' || !p[n])) return 1;
    return 0;
}
