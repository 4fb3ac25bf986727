/* mem.h — every allocation goes through here and aborts on failure (a server that cannot
 * allocate a few bytes cannot do anything useful; sizes a peer controls are checked against
 * limits before they get here). */
#ifndef ST_MEM_H
#define ST_MEM_H

#include <stddef.h>

void *st_malloc(size_t n);
void *st_calloc(size_t n, size_t size);
void *st_realloc(void *p, size_t n);
/** Accepts NULL. */
void st_free(void *p);

#endif
