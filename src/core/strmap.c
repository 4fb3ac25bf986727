#include "strmap.h"

#include <string.h>

#include "mem.h"

struct strmap_node {
    struct strmap_node *next;
    int64_t value;
    char key[];
};

static uint64_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

void strmap_init(struct strmap *m)
{
    m->nslots = 64;
    m->count = 0;
    m->slots = st_calloc(m->nslots, sizeof *m->slots);
}

void strmap_deinit(struct strmap *m)
{
    for (size_t i = 0; i < m->nslots; i++) {
        struct strmap_node *n = m->slots[i];
        while (n) {
            struct strmap_node *next = n->next;
            st_free(n);
            n = next;
        }
    }
    st_free(m->slots);
    m->slots = NULL;
    m->nslots = m->count = 0;
}

int64_t *strmap_get(struct strmap *m, const char *key)
{
    for (struct strmap_node *n = m->slots[hash(key) % m->nslots]; n; n = n->next)
        if (strcmp(n->key, key) == 0)
            return &n->value;
    return NULL;
}

static void grow(struct strmap *m)
{
    size_t nslots = m->nslots * 2;
    struct strmap_node **slots = st_calloc(nslots, sizeof *slots);
    for (size_t i = 0; i < m->nslots; i++) {
        struct strmap_node *n = m->slots[i];
        while (n) {
            struct strmap_node *next = n->next;
            size_t j = hash(n->key) % nslots;
            n->next = slots[j];
            slots[j] = n;
            n = next;
        }
    }
    st_free(m->slots);
    m->slots = slots;
    m->nslots = nslots;
}

int64_t *strmap_put(struct strmap *m, const char *key, int64_t initial)
{
    int64_t *v = strmap_get(m, key);
    if (v)
        return v;
    if (m->count >= m->nslots)
        grow(m);
    size_t klen = strlen(key) + 1;
    struct strmap_node *n = st_malloc(sizeof *n + klen);
    memcpy(n->key, key, klen);
    n->value = initial;
    size_t i = hash(key) % m->nslots;
    n->next = m->slots[i];
    m->slots[i] = n;
    m->count++;
    return &n->value;
}

void strmap_del(struct strmap *m, const char *key)
{
    struct strmap_node **pp = &m->slots[hash(key) % m->nslots];
    for (; *pp; pp = &(*pp)->next) {
        if (strcmp((*pp)->key, key) == 0) {
            struct strmap_node *n = *pp;
            *pp = n->next;
            st_free(n);
            m->count--;
            return;
        }
    }
}
