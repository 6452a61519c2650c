/* hashmap.h - an open-addressing map from strings to size_t values (copies its keys).
 * Used for the indexes of the ingest scan (paths, sample ids); grows by doubling. */
#ifndef LATHE_BASE_HASHMAP_H
#define LATHE_BASE_HASHMAP_H
#include <stddef.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

typedef struct lathe_hashmap lathe_hashmap;

lathe_hashmap *lathe_hashmap_create(void);
void lathe_hashmap_free(lathe_hashmap *m);
/* Inserts or replaces key -> value; returns 0 or -LATHE_ENOMEM. */
int lathe_hashmap_put(lathe_hashmap *m, const char *key, size_t value);
/* Returns 1 and stores the value when key is present, else 0. */
int lathe_hashmap_get(const lathe_hashmap *m, const char *key, size_t *value);
size_t lathe_hashmap_count(const lathe_hashmap *m);

#ifdef __cplusplus
}
#endif
#endif
