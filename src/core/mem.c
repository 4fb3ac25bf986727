#include "mem.h"

#include <stdio.h>
#include <stdlib.h>

static void *check(void *p, size_t n)
{
    if (!p) {
        fprintf(stderr, "sealtrack: out of memory allocating %zu bytes\n", n);
        abort();
    }
    return p;
}

void *st_malloc(size_t n)
{
    return check(malloc(n ? n : 1), n);
}

void *st_calloc(size_t n, size_t size)
{
    return check(calloc(n ? n : 1, size ? size : 1), n * size);
}

void *st_realloc(void *p, size_t n)
{
    return check(realloc(p, n ? n : 1), n);
}

void st_free(void *p)
{
    free(p);
}
