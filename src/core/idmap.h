/* idmap.h — an open-addressing hash map from non-zero int64 ids (database row ids)
 * to int64 values. The writer's per-device caches (geofence state, open shipments). */
#ifndef ST_IDMAP_H
#define ST_IDMAP_H

#include <stddef.h>
#include <stdint.h>

struct idmap {
    int64_t *keys, *vals; /* key 0 = empty slot */
    size_t cap, count;
};

void idmap_init(struct idmap *m);
void idmap_deinit(struct idmap *m);
/** Pointer to the value of key (≠ 0), or NULL. */
int64_t *idmap_get(const struct idmap *m, int64_t key);
/** Pointer to the value of key (≠ 0), inserted as `initial` when absent. */
int64_t *idmap_put(struct idmap *m, int64_t key, int64_t initial);
/** Forget every key. */
void idmap_clear(struct idmap *m);

#endif
