/* strmap.h — a small hash map from strings to int64 values (keys copied).
 * Used for the writer's device cache and the listener's per-address counts. */
#ifndef ST_STRMAP_H
#define ST_STRMAP_H

#include <stddef.h>
#include <stdint.h>

struct strmap_node;

struct strmap {
    struct strmap_node **slots;
    size_t nslots, count;
};

void strmap_init(struct strmap *m);
void strmap_deinit(struct strmap *m);
/** Pointer to the value of key, or NULL. */
int64_t *strmap_get(struct strmap *m, const char *key);
/** Pointer to the value of key, inserted as `initial` when absent. */
int64_t *strmap_put(struct strmap *m, const char *key, int64_t initial);
void strmap_del(struct strmap *m, const char *key);

#endif
