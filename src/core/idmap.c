/* idmap.c — linear probing over a power-of-two table, grown at 1/2 load. */
#include "idmap.h"

#include <string.h>

#include "mem.h"

void idmap_init(struct idmap *m)
{
    memset(m, 0, sizeof *m);
}

void idmap_deinit(struct idmap *m)
{
    st_free(m->keys);
    st_free(m->vals);
    idmap_init(m);
}

static size_t slot_of(int64_t key, size_t cap)
{
    uint64_t h = (uint64_t)key * 0x9e3779b97f4a7c15ull; /* Fibonacci hashing */
    return (size_t)(h >> 32) & (cap - 1);
}

int64_t *idmap_get(const struct idmap *m, int64_t key)
{
    if (!m->cap || !key)
        return NULL;
    for (size_t i = slot_of(key, m->cap);; i = (i + 1) & (m->cap - 1)) {
        if (m->keys[i] == key)
            return &m->vals[i];
        if (!m->keys[i])
            return NULL;
    }
}

static void grow(struct idmap *m)
{
    struct idmap bigger = {.cap = m->cap ? m->cap * 2 : 64};
    bigger.keys = st_calloc(bigger.cap, sizeof *bigger.keys);
    bigger.vals = st_calloc(bigger.cap, sizeof *bigger.vals);
    for (size_t i = 0; i < m->cap; i++)
        if (m->keys[i])
            *idmap_put(&bigger, m->keys[i], 0) = m->vals[i];
    idmap_deinit(m);
    *m = bigger;
}

int64_t *idmap_put(struct idmap *m, int64_t key, int64_t initial)
{
    int64_t *v = idmap_get(m, key);
    if (v)
        return v;
    if ((m->count + 1) * 2 > m->cap)
        grow(m);
    size_t i = slot_of(key, m->cap);
    while (m->keys[i])
        i = (i + 1) & (m->cap - 1);
    m->keys[i] = key;
    m->vals[i] = initial;
    m->count++;
    return &m->vals[i];
}

void idmap_clear(struct idmap *m)
{
    if (m->cap) {
        memset(m->keys, 0, m->cap * sizeof *m->keys);
        m->count = 0;
    }
}
