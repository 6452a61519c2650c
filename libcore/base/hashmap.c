/* hashmap.c - linear probing over a power-of-two table of (hash, key, value) slots. */
#include "hashmap.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "error.h"

typedef struct {
    uint64_t hash;
    char *key; /* NULL marks an empty slot; there is no delete */
    size_t value;
} slot;

struct lathe_hashmap {
    slot *slots;
    size_t cap, count;
};

lathe_hashmap *lathe_hashmap_create(void) {
    lathe_hashmap *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->cap = 64;
    m->slots = calloc(m->cap, sizeof *m->slots);
    if (!m->slots) {
        free(m);
        return NULL;
    }
    return m;
}

void lathe_hashmap_free(lathe_hashmap *m) {
    if (!m) return;
    for (size_t i = 0; i < m->cap; i++) free(m->slots[i].key);
    free(m->slots);
    free(m);
}

static slot *find_slot(slot *slots, size_t cap, uint64_t hash, const char *key) {
    size_t i = (size_t)hash & (cap - 1);
    while (slots[i].key && !(slots[i].hash == hash && strcmp(slots[i].key, key) == 0))
        i = (i + 1) & (cap - 1);
    return &slots[i];
}

static int grow(lathe_hashmap *m) {
    size_t cap = m->cap * 2;
    slot *slots = calloc(cap, sizeof *slots);
    if (!slots) return lathe_fail(LATHE_ENOMEM, "hash map of %zu slots", cap);
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i].key) *find_slot(slots, cap, m->slots[i].hash, m->slots[i].key) = m->slots[i];
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
    return 0;
}

int lathe_hashmap_put(lathe_hashmap *m, const char *key, size_t value) {
    if ((m->count + 1) * 4 > m->cap * 3) {
        int rc = grow(m);
        if (rc) return rc;
    }
    uint64_t hash = XXH64(key, strlen(key), 0);
    slot *s = find_slot(m->slots, m->cap, hash, key);
    if (!s->key) {
        s->key = strdup(key);
        if (!s->key) return lathe_fail(LATHE_ENOMEM, "hash map key");
        s->hash = hash;
        m->count++;
    }
    s->value = value;
    return 0;
}

int lathe_hashmap_get(const lathe_hashmap *m, const char *key, size_t *value) {
    uint64_t hash = XXH64(key, strlen(key), 0);
    const slot *s = find_slot(m->slots, m->cap, hash, key);
    if (!s->key) return 0;
    if (value) *value = s->value;
    return 1;
}

size_t lathe_hashmap_count(const lathe_hashmap *m) { return m->count; }
