/* buf.h — a growable byte buffer that carries its length (owned by its user). */
#ifndef ST_BUF_H
#define ST_BUF_H

#include <stddef.h>
#include <stdint.h>

struct buf {
    uint8_t *data;
    size_t len, cap;
};

/** Make room for `extra` more bytes (grows geometrically). */
void buf_reserve(struct buf *b, size_t extra);
void buf_append(struct buf *b, const void *p, size_t n);
void buf_append_str(struct buf *b, const char *s);
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** The bytes as a C string: a NUL is kept after them (not counted in len). */
const char *buf_cstr(struct buf *b);
/** Drop the first n bytes. */
void buf_consume(struct buf *b, size_t n);
/** Release the memory; the buffer is empty and reusable. */
void buf_free(struct buf *b);

#endif
