/* catalog.c - records and classes collected from label files, indexed by path and basename. */
#include "catalog.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../base/error.h"
#include "../base/hashmap.h"

struct lathe_catalog {
    lathe_record **records;
    size_t nrecords, caprecords, capchain;
    lathe_hashmap *by_file; /* file -> record index */
    /* basename -> index into the chain arrays: records sharing a basename, for suffix matching */
    lathe_hashmap *by_base;
    size_t *chain_next;     /* per record: next record with the same basename, SIZE_MAX ends */
    lathe_class *classes;
    size_t nclasses, capclasses;
    lathe_label_reject *rejects;
    size_t nrejects, caprejects;
    lathe_hashmap *class_by_id, *class_by_name; /* "<id>" / name -> index into classes */
    int declared_by_id; /* some class was declared by source id: number classes by id, not name */
    int64_t next_class_id; /* one past the largest source id, for classes named on the fly */
    int finished;
    /* split lists: image stem -> (index into list_stems) << 5 | LIST_USED | the lists' splits (1 << LATHE_SPLIT_*) */
    lathe_hashmap *split_lists;
    struct {
        char *stem, *list; /* and the list file that first named it */
    } *list_stems;
    size_t nlist_stems, caplist_stems;
    struct {
        char *folder; /* "images/set_a/" */
        int split;    /* -1: named for two splits */
    } *split_folders;
    size_t nsplit_folders, capsplit_folders;
    struct {
        char *path;    /* a list file kept for a label file to name */
        uint8_t *data;
        size_t len;
    } *kept_lists;
    size_t nkept_lists, capkept_lists;
    struct {
        char *name; /* a list file a label file named, and for which split */
        int split;
    } *named_lists;
    size_t nnamed_lists, capnamed_lists;
};

enum { LIST_USED = 1 << 4, LIST_INDEX_SHIFT = 5 };

static int grow_array(void **ptr, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return 0;
    size_t cap2 = *cap ? *cap * 2 : 16;
    while (cap2 < need) cap2 *= 2;
    void *p = realloc(*ptr, cap2 * elem);
    if (!p) return lathe_fail(LATHE_ENOMEM, "catalog: growing to %zu entries", cap2);
    *ptr = p;
    *cap = cap2;
    return 0;
}

lathe_catalog *lathe_catalog_create(void) {
    lathe_catalog *cat = calloc(1, sizeof *cat);
    if (!cat) return NULL;
    cat->by_file = lathe_hashmap_create();
    cat->by_base = lathe_hashmap_create();
    cat->class_by_id = lathe_hashmap_create();
    cat->class_by_name = lathe_hashmap_create();
    cat->split_lists = lathe_hashmap_create();
    if (!cat->by_file || !cat->by_base || !cat->class_by_id || !cat->class_by_name || !cat->split_lists) {
        lathe_catalog_free(cat);
        return NULL;
    }
    return cat;
}

void lathe_catalog_free(lathe_catalog *cat) {
    if (!cat) return;
    for (size_t i = 0; i < cat->nrecords; i++) {
        lathe_record *r = cat->records[i];
        free(r->file);
        free(r->text);
        free(r->mask_file);
        free(r->boxes);
        free(r);
    }
    free(cat->records);
    free(cat->chain_next);
    for (size_t i = 0; i < cat->nclasses; i++) free(cat->classes[i].name);
    free(cat->classes);
    for (size_t i = 0; i < cat->nrejects; i++) {
        free(cat->rejects[i].path);
        free(cat->rejects[i].reason);
        free(cat->rejects[i].detail);
    }
    free(cat->rejects);
    lathe_hashmap_free(cat->by_file);
    lathe_hashmap_free(cat->by_base);
    lathe_hashmap_free(cat->class_by_id);
    lathe_hashmap_free(cat->class_by_name);
    lathe_hashmap_free(cat->split_lists);
    for (size_t i = 0; i < cat->nlist_stems; i++) free(cat->list_stems[i].stem), free(cat->list_stems[i].list);
    free(cat->list_stems);
    for (size_t i = 0; i < cat->nsplit_folders; i++) free(cat->split_folders[i].folder);
    free(cat->split_folders);
    for (size_t i = 0; i < cat->nkept_lists; i++) free(cat->kept_lists[i].path), free(cat->kept_lists[i].data);
    free(cat->kept_lists);
    for (size_t i = 0; i < cat->nnamed_lists; i++) free(cat->named_lists[i].name);
    free(cat->named_lists);
    free(cat);
}

/* Indexes stay valid until finish() reorders the classes (no lookups happen after it). */
static lathe_class *find_class(const lathe_catalog *cat, int64_t source_id) {
    char key[32];
    size_t idx;
    snprintf(key, sizeof key, "%lld", (long long)source_id);
    return lathe_hashmap_get(cat->class_by_id, key, &idx) ? &cat->classes[idx] : NULL;
}

static int index_name(lathe_catalog *cat, size_t idx) {
    const char *name = cat->classes[idx].name;
    return name && !lathe_hashmap_get(cat->class_by_name, name, NULL) ? lathe_hashmap_put(cat->class_by_name, name, idx)
                                                                        : 0;
}

static int declare_class(lathe_catalog *cat, int64_t source_id, const char *name) {
    LATHE_ASSERT(!cat->finished);
    lathe_class *c = find_class(cat, source_id);
    if (c) {
        if (c->name || !name) return 0;
        int rc = lathe_record_set(&c->name, name);
        return rc ? rc : index_name(cat, (size_t)(c - cat->classes));
    }
    int rc = grow_array((void **)&cat->classes, &cat->capclasses, cat->nclasses + 1, sizeof *cat->classes);
    if (rc) return rc;
    c = &cat->classes[cat->nclasses];
    c->source_id = source_id;
    c->name = NULL;
    if (name && !(c->name = strdup(name))) return lathe_fail(LATHE_ENOMEM, "class name");
    char key[32];
    snprintf(key, sizeof key, "%lld", (long long)source_id);
    if ((rc = lathe_hashmap_put(cat->class_by_id, key, cat->nclasses)) || (rc = index_name(cat, cat->nclasses))) {
        free(c->name);
        return rc;
    }
    cat->nclasses++;
    if (source_id >= cat->next_class_id) cat->next_class_id = source_id + 1;
    return 0;
}

int lathe_catalog_declare_class(lathe_catalog *cat, int64_t source_id, const char *name) {
    cat->declared_by_id = 1;
    return declare_class(cat, source_id, name);
}

int64_t lathe_catalog_class_named(lathe_catalog *cat, const char *name) {
    size_t idx;
    if (lathe_hashmap_get(cat->class_by_name, name, &idx)) return cat->classes[idx].source_id;
    int64_t id = cat->next_class_id;
    int rc = declare_class(cat, id, name);
    return rc ? rc : id;
}

static const char *base_name(const char *path) {
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

int lathe_catalog_list_split(lathe_catalog *cat, const char *list, const char *stem, int s) {
    LATHE_ASSERT(!cat->finished && s >= 0 && s <= LATHE_SPLIT_TRAINVAL);
    size_t value;
    if (!lathe_hashmap_get(cat->split_lists, stem, &value)) { /* first named: remembered for the missing_file check */
        if (grow_array((void **)&cat->list_stems, &cat->caplist_stems, cat->nlist_stems + 1, sizeof *cat->list_stems))
            return -LATHE_ENOMEM;
        char *st = strdup(stem), *li = strdup(list);
        if (!st || !li) {
            free(st), free(li);
            return lathe_fail(LATHE_ENOMEM, "split lists");
        }
        cat->list_stems[cat->nlist_stems].stem = st, cat->list_stems[cat->nlist_stems].list = li;
        value = cat->nlist_stems++ << LIST_INDEX_SHIFT;
    }
    return lathe_hashmap_put(cat->split_lists, stem, value | (size_t)1 << s) ? lathe_fail(LATHE_ENOMEM, "split lists") : 0;
}

/* The file name of p[0..n) without its extension into out: its length, or 0 when it is empty, too
 * long for cap or holds a NUL. Split lists and records meet by this stem. */
static size_t file_stem(const char *p, size_t n, char *out, size_t cap) {
    const char *name = p + n, *dot = NULL;
    while (name > p && name[-1] != '/') name--;
    for (const char *q = name; q < p + n; q++)
        if (*q == '.') dot = q;
    size_t m = (size_t)((dot ? dot : p + n) - name);
    if (!m || m >= cap || memchr(name, '\0', m)) return 0;
    memcpy(out, name, m);
    out[m] = '\0';
    return m;
}

int lathe_catalog_read_split_list(lathe_catalog *cat, const char *path, const uint8_t *data, size_t len, int s) {
    for (size_t i = 0; i < len;) {
        size_t start = i;
        while (i < len && data[i] != '\n') i++;
        size_t end = i++;
        while (end > start && isspace(data[end - 1])) end--;
        while (start < end && isspace(data[start])) start++;
        if (end == start || data[start] == '#') continue;
        char stem[1024];
        if (!file_stem((const char *)data + start, end - start, stem, sizeof stem)) {
            lathe_catalog_reject(cat, path, "malformed_label", "a line names no image");
            continue;
        }
        int rc = lathe_catalog_list_split(cat, path, stem, s);
        if (rc) return rc;
    }
    return 0;
}

int lathe_imagesets_split(const char *path) {
    static const char *const names[] = {"train.txt", "val.txt", "test.txt", "trainval.txt"};
    if (lathe_path_is_debris(path) || !lathe_path_has_dir(path, "ImageSets")) return -1;
    for (int s = 0; s < 4; s++)
        if (strcmp(base_name(path), names[s]) == 0) return s;
    return -1;
}

int lathe_catalog_split_folder(lathe_catalog *cat, const char *folder, int s) {
    LATHE_ASSERT(!cat->finished && s >= 0 && s < LATHE_NSPLITS);
    while (!strncmp(folder, "./", 2) || !strncmp(folder, "../", 3)) folder += folder[1] == '/' ? 2 : 3;
    size_t n = strlen(folder);
    while (n && folder[n - 1] == '/') n--;
    if (!n) return 0; /* "." or "..": the whole source, which says nothing about splits */
    char *f = malloc(n + 2);
    if (!f) return lathe_fail(LATHE_ENOMEM, "split folders");
    memcpy(f, folder, n);
    f[n] = '/', f[n + 1] = '\0';
    for (size_t i = 0; i < cat->nsplit_folders; i++)
        if (!strcmp(cat->split_folders[i].folder, f)) {
            if (cat->split_folders[i].split != s) cat->split_folders[i].split = -1;
            free(f);
            return 0;
        }
    if (grow_array((void **)&cat->split_folders, &cat->capsplit_folders, cat->nsplit_folders + 1, sizeof *cat->split_folders)) {
        free(f);
        return -LATHE_ENOMEM;
    }
    cat->split_folders[cat->nsplit_folders].folder = f;
    cat->split_folders[cat->nsplit_folders++].split = s;
    return 0;
}

int lathe_catalog_keep_list(lathe_catalog *cat, const char *path, const uint8_t *data, size_t len) {
    LATHE_ASSERT(!cat->finished);
    if (grow_array((void **)&cat->kept_lists, &cat->capkept_lists, cat->nkept_lists + 1, sizeof *cat->kept_lists))
        return -LATHE_ENOMEM;
    char *p = strdup(path);
    uint8_t *d = malloc(len + 1);
    if (!p || !d) {
        free(p), free(d);
        return lathe_fail(LATHE_ENOMEM, "list file %s", path);
    }
    if (len) memcpy(d, data, len);
    cat->kept_lists[cat->nkept_lists].path = p, cat->kept_lists[cat->nkept_lists].data = d;
    cat->kept_lists[cat->nkept_lists++].len = len;
    return 0;
}

int lathe_catalog_name_list(lathe_catalog *cat, const char *name, int s) {
    LATHE_ASSERT(!cat->finished && s >= 0 && s < LATHE_NSPLITS);
    while (!strncmp(name, "./", 2) || !strncmp(name, "../", 3)) name += name[1] == '/' ? 2 : 3;
    if (!*name) return 0;
    if (grow_array((void **)&cat->named_lists, &cat->capnamed_lists, cat->nnamed_lists + 1, sizeof *cat->named_lists))
        return -LATHE_ENOMEM;
    if (!(cat->named_lists[cat->nnamed_lists].name = strdup(name))) return lathe_fail(LATHE_ENOMEM, "list names");
    cat->named_lists[cat->nnamed_lists++].split = s;
    return 0;
}

/* The split the label files name kept list i for: LATHE_SPLIT_*, -1 none, -2 two splits. */
static int kept_list_split(const lathe_catalog *cat, size_t i) {
    const char *p = cat->kept_lists[i].path;
    size_t m = strlen(p);
    int split = -1;
    for (size_t k = 0; k < cat->nnamed_lists; k++) {
        const char *name = cat->named_lists[k].name;
        size_t n = strlen(name);
        if (m >= n && !strcmp(p + m - n, name) && (m == n || p[m - n - 1] == '/'))
            split = split == -1 || split == cat->named_lists[k].split ? cat->named_lists[k].split : -2;
    }
    return split;
}

/* 1 when folder ("a/b/") is a '/'-bounded part of file's folders */
static int under_folder(const char *file, const char *folder) {
    size_t n = strlen(folder);
    for (const char *p = file; p; p = strchr(p, '/'), p = p ? p + 1 : NULL)
        if (!strncmp(p, folder, n)) return 1;
    return 0;
}

/* Each record in the longest split folder that holds it takes its split (lathe_catalog_split_folder). */
static void apply_split_folders(lathe_catalog *cat) {
    for (size_t i = 0; cat->nsplit_folders && i < cat->nrecords; i++) {
        size_t best = 0;
        int split = -1;
        for (size_t k = 0; k < cat->nsplit_folders; k++) {
            size_t n = strlen(cat->split_folders[k].folder);
            if (n > best && under_folder(cat->records[i]->file, cat->split_folders[k].folder))
                best = n, split = cat->split_folders[k].split;
        }
        if (split >= 0) lathe_record_put_split(cat->records[i], split);
    }
}

/* The split lists' word on each record (lathe_catalog_list_split), and a reject for each image a
 * list names that no record has. Returns 0 or -LATHE_ENOMEM. */
static int apply_split_lists(lathe_catalog *cat) {
    for (size_t i = 0; i < cat->nrecords; i++) {
        lathe_record *r = cat->records[i];
        char stem[1024];
        size_t mask = 0;
        if (!file_stem(r->file, strlen(r->file), stem, sizeof stem) || !lathe_hashmap_get(cat->split_lists, stem, &mask))
            continue;
        for (int s = 0; s < LATHE_NSPLITS; s++)
            if (mask & (size_t)1 << s) lathe_record_put_split(r, s);
        if (!(mask & 7) && (mask & (size_t)1 << LATHE_SPLIT_TRAINVAL)) lathe_record_put_split(r, LATHE_SPLIT_TRAIN);
        if (lathe_hashmap_put(cat->split_lists, stem, mask | LIST_USED)) return lathe_fail(LATHE_ENOMEM, "split lists");
    }
    for (size_t i = 0; i < cat->nlist_stems; i++) {
        size_t mask = 0;
        lathe_hashmap_get(cat->split_lists, cat->list_stems[i].stem, &mask);
        if (!(mask & LIST_USED))
            lathe_catalog_reject(cat, cat->list_stems[i].list, "missing_file",
                                 "the split list names %s, and no label record of the source is that image",
                                 cat->list_stems[i].stem);
    }
    return 0;
}

void lathe_record_put_split(lathe_record *rec, int s) {
    if (rec->split == -1) rec->split = s;
    else if (rec->split != s) rec->split = LATHE_SPLIT_CONFLICT;
}

static int split_word(const char *w, size_t n) {
    static const char *const names[LATHE_NSPLITS][4] = {
        {"train", "training", NULL}, {"val", "valid", "validation", NULL}, {"test", "testing", NULL}};
    while (n > 0 && w[n - 1] >= '0' && w[n - 1] <= '9') n--; /* train2017, val2017 */
    for (int s = 0; s < LATHE_NSPLITS; s++)
        for (const char *const *name = names[s]; *name; name++)
            if (n == strlen(*name) && strncasecmp(w, *name, n) == 0) return s;
    return -1;
}

int lathe_split_named(const char *name, size_t len) {
    int split = -1;
    for (size_t i = 0; i < len;) {
        while (i < len && !isalnum((unsigned char)name[i])) i++;
        size_t start = i;
        while (i < len && isalnum((unsigned char)name[i])) i++;
        if (i > start) {
            int s = split_word(name + start, i - start);
            if (s >= 0) split = s;
        }
    }
    return split;
}

lathe_record *lathe_catalog_record(lathe_catalog *cat, const char *file) {
    LATHE_ASSERT(!cat->finished);
    size_t idx;
    if (lathe_hashmap_get(cat->by_file, file, &idx)) return cat->records[idx];
    if (grow_array((void **)&cat->records, &cat->caprecords, cat->nrecords + 1, sizeof *cat->records) ||
        grow_array((void **)&cat->chain_next, &cat->capchain, cat->nrecords + 1, sizeof *cat->chain_next))
        return NULL;
    lathe_record *r = calloc(1, sizeof *r);
    if (!r || !(r->file = strdup(file))) {
        free(r);
        lathe_fail(LATHE_ENOMEM, "catalog record");
        return NULL;
    }
    r->image_id = -1;
    r->label = -1;
    r->split = -1;
    idx = cat->nrecords;
    size_t head;
    cat->chain_next[idx] = lathe_hashmap_get(cat->by_base, base_name(file), &head) ? head : SIZE_MAX;
    if (lathe_hashmap_put(cat->by_file, file, idx) || lathe_hashmap_put(cat->by_base, base_name(file), idx)) {
        free(r->file);
        free(r);
        return NULL;
    }
    cat->records[cat->nrecords++] = r;
    return r;
}

lathe_record *lathe_catalog_find(const lathe_catalog *cat, const char *file) {
    size_t idx;
    return lathe_hashmap_get(cat->by_file, file, &idx) ? cat->records[idx] : NULL;
}

/* 1 when suffix equals path or a '/'-bounded tail of it. */
static int is_path_suffix(const char *path, const char *suffix) {
    size_t lp = strlen(path), ls = strlen(suffix);
    if (ls > lp) return 0;
    if (strcmp(path + lp - ls, suffix) != 0) return 0;
    return ls == lp || path[lp - ls - 1] == '/';
}

static lathe_record *match_path(const lathe_catalog *cat, const char *entry_path) {
    lathe_record *exact = lathe_catalog_find(cat, entry_path);
    if (exact) return exact;
    size_t idx;
    if (!lathe_hashmap_get(cat->by_base, base_name(entry_path), &idx)) return NULL;
    /* the longest matching suffix wins: "train/a.jpg" beats "a.jpg" for "x/train/a.jpg" */
    lathe_record *best = NULL;
    for (; idx != SIZE_MAX; idx = cat->chain_next[idx]) {
        lathe_record *r = cat->records[idx];
        const char *file = r->file;
        while (file[0] == '.' && file[1] == '/') file += 2;
        if (is_path_suffix(entry_path, file) && (!best || strlen(r->file) > strlen(best->file))) best = r;
    }
    return best;
}

lathe_record *lathe_catalog_match(const lathe_catalog *cat, const char *entry_path) {
    lathe_record *r = match_path(cat, entry_path);
    if (r) return r;
    /* formats that name images without their extension (YOLO, KITTI): "images/a.jpg" -> "images/a" */
    const char *dot = strrchr(entry_path, '.');
    if (!dot || strchr(dot, '/')) return NULL;
    char *bare = strndup(entry_path, (size_t)(dot - entry_path));
    if (!bare) return NULL;
    r = match_path(cat, bare);
    free(bare);
    return r;
}

int lathe_record_add_box(lathe_record *rec, const lathe_box *box) {
    int rc = grow_array((void **)&rec->boxes, &rec->capboxes, rec->nboxes + 1, sizeof *rec->boxes);
    if (rc) return rc;
    rec->boxes[rec->nboxes++] = *box;
    return 0;
}

int lathe_record_set(char **field, const char *value) {
    char *copy = NULL;
    if (value && !(copy = strdup(value))) return lathe_fail(LATHE_ENOMEM, "string field");
    free(*field);
    *field = copy;
    return 0;
}

void lathe_catalog_reject(lathe_catalog *cat, const char *path, const char *reason, const char *fmt, ...) {
    if (grow_array((void **)&cat->rejects, &cat->caprejects, cat->nrejects + 1, sizeof *cat->rejects)) return;
    char detail[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    lathe_label_reject *r = &cat->rejects[cat->nrejects];
    r->path = strdup(path ? path : "");
    r->reason = strdup(reason);
    r->detail = strdup(detail);
    if (!r->path || !r->reason || !r->detail) {
        free(r->path);
        free(r->reason);
        free(r->detail);
        return;
    }
    cat->nrejects++;
}

static int compare_class_id(const void *a, const void *b) {
    int64_t x = ((const lathe_class *)a)->source_id, y = ((const lathe_class *)b)->source_id;
    return (x > y) - (x < y);
}

static int compare_class_name(const void *a, const void *b) {
    return strcmp(((const lathe_class *)a)->name, ((const lathe_class *)b)->name);
}

/* (source id, class index) pairs sorted by id, for relabelling */
typedef struct {
    int64_t source_id;
    int index;
} id_index;

static int compare_id_index(const void *a, const void *b) {
    int64_t x = ((const id_index *)a)->source_id, y = ((const id_index *)b)->source_id;
    return (x > y) - (x < y);
}

static int lookup_index(const id_index *map, size_t n, int64_t source_id) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (map[mid].source_id < source_id) lo = mid + 1;
        else hi = mid;
    }
    return lo < n && map[lo].source_id == source_id ? map[lo].index : -1;
}

static void relabel_record(lathe_catalog *cat, lathe_record *r, const id_index *map) {
    if (r->label >= 0) {
        int idx = lookup_index(map, cat->nclasses, r->label);
        if (idx < 0)
            lathe_catalog_reject(cat, r->file, "unknown_category", "image label %d is not a declared class",
                                 r->label);
        r->label = idx;
    }
    size_t kept = 0;
    for (size_t b = 0; b < r->nboxes; b++) {
        int idx = lookup_index(map, cat->nclasses, r->boxes[b].label);
        if (idx < 0) {
            lathe_catalog_reject(cat, r->file, "unknown_category",
                                 "annotation %lld has category %d, which is not declared",
                                 (long long)r->boxes[b].id, r->boxes[b].label);
            continue;
        }
        r->boxes[kept] = r->boxes[b];
        r->boxes[kept++].label = idx;
    }
    r->nboxes = kept;
}

int lathe_catalog_finish(lathe_catalog *cat) {
    LATHE_ASSERT(!cat->finished);
    if (cat->nclasses == 0) {
        /* nothing to order */
    } else if (cat->declared_by_id) {
        if (cat->nclasses) qsort(cat->classes, cat->nclasses, sizeof *cat->classes, compare_class_id);
    } else {
        /* classes known only by name (folders, VOC): alphabetical, whatever the file order */
        if (cat->nclasses) qsort(cat->classes, cat->nclasses, sizeof *cat->classes, compare_class_name);
    }
    id_index *map = malloc((cat->nclasses ? cat->nclasses : 1) * sizeof *map);
    if (!map) return lathe_fail(LATHE_ENOMEM, "class map");
    for (size_t i = 0; i < cat->nclasses; i++) {
        map[i].source_id = cat->classes[i].source_id;
        map[i].index = (int)i;
        if (cat->classes[i].name) continue;
        char name[40];
        snprintf(name, sizeof name, "class_%lld", (long long)cat->classes[i].source_id);
        if (!(cat->classes[i].name = strdup(name))) {
            free(map);
            return lathe_fail(LATHE_ENOMEM, "class name");
        }
    }
    if (cat->nclasses) qsort(map, cat->nclasses, sizeof *map, compare_id_index);
    for (size_t i = 0; i < cat->nrecords; i++) relabel_record(cat, cat->records[i], map);
    free(map);
    apply_split_folders(cat);
    int rc = 0;
    for (size_t i = 0; !rc && i < cat->nkept_lists; i++) { /* the lists a label file named, now that all are read */
        int split = kept_list_split(cat, i);
        if (split >= 0)
            rc = lathe_catalog_read_split_list(cat, cat->kept_lists[i].path, cat->kept_lists[i].data, cat->kept_lists[i].len,
                                               split);
    }
    if (!rc) rc = apply_split_lists(cat);
    if (rc) return rc;
    cat->finished = 1;
    return 0;
}

size_t lathe_catalog_nrecords(const lathe_catalog *cat) { return cat->nrecords; }
lathe_record *lathe_catalog_at(const lathe_catalog *cat, size_t i) { return cat->records[i]; }
size_t lathe_catalog_nclasses(const lathe_catalog *cat) { return cat->nclasses; }
const lathe_class *lathe_catalog_class_at(const lathe_catalog *cat, size_t i) { return &cat->classes[i]; }
size_t lathe_catalog_nrejects(const lathe_catalog *cat) { return cat->nrejects; }
const lathe_label_reject *lathe_catalog_reject_at(const lathe_catalog *cat, size_t i) {
    return &cat->rejects[i];
}

static int has_extension(const char *path, const char *const *exts) {
    const char *dot = strrchr(path, '.');
    if (!dot || strchr(dot, '/')) return 0;
    for (; *exts; exts++)
        if (strcasecmp(dot + 1, *exts) == 0) return 1;
    return 0;
}

int lathe_path_is_image(const char *path) {
    static const char *const exts[] = {"jpg", "jpeg", "png", NULL};
    return has_extension(path, exts);
}

int lathe_path_is_unsupported_image(const char *path) {
    static const char *const exts[] = {"bmp", "tif", "tiff", "gif", "webp", "ppm", "pgm", "jp2", "heic", NULL};
    return has_extension(path, exts);
}

void lathe_path_stem(const char *path, char *out, size_t cap) {
    const char *base = base_name(path);
    const char *dot = strrchr(base, '.');
    size_t n = dot && dot != base ? (size_t)(dot - base) : strlen(base);
    if (n >= cap) n = cap - 1;
    memcpy(out, base, n);
    out[n] = '\0';
}

int lathe_path_has_dir(const char *path, const char *dir) {
    size_t n = strlen(dir);
    for (const char *p = path; (p = strstr(p, dir)); p++) {
        if ((p == path || p[-1] == '/') && p[n] == '/') return 1;
    }
    return 0;
}

int lathe_path_is_debris(const char *path) {
    for (const char *c = path; c; c = strchr(c, '/')) {
        if (*c == '/') c++;
        if ((c[0] == '.' && c[1] != '/' && c[1] != '\0') || strncmp(c, "__MACOSX/", 9) == 0) return 1;
    }
    return 0;
}

int lathe_path_ends_with(const char *path, const char *suffix) {
    size_t lp = strlen(path), ls = strlen(suffix);
    return lp >= ls && strcasecmp(path + lp - ls, suffix) == 0;
}
