#include "mem.h"

#include <malloc.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static atomic_size_t used;

static void *check(void *p, size_t n)
{
    if (!p && n) {
        fprintf(stderr, "sealtrack: out of memory allocating %zu bytes\n", n);
        abort();
    }
    if (p)
        atomic_fetch_add(&used, malloc_usable_size(p));
    return p;
}

void *st_malloc(size_t n)
{
    return check(malloc(n ? n : 1), n ? n : 1);
}

void *st_calloc(size_t n, size_t size)
{
    return check(calloc(n ? n : 1, size ? size : 1), n * size + 1);
}

void *st_realloc(void *p, size_t n)
{
    if (p)
        atomic_fetch_sub(&used, malloc_usable_size(p));
    return check(realloc(p, n ? n : 1), n ? n : 1);
}

char *st_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = st_malloc(n);
    memcpy(d, s, n);
    return d;
}

void st_free(void *p)
{
    if (!p)
        return;
    atomic_fetch_sub(&used, malloc_usable_size(p));
    free(p);
}

size_t st_mem_used(void)
{
    return atomic_load(&used);
}
