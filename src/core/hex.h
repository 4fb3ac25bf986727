/* hex.h — bytes as lower-case hex text, the one encoder for attributes, logs, the
 * API's raw frames and the decoders that name devices by their hex bytes. */
#ifndef ST_HEX_H
#define ST_HEX_H

#include <stddef.h>
#include <stdint.h>

/** Hex of b[0..len) into out (NUL-terminated), cut to the whole bytes that fit in
 *  cap - 1 characters. Returns the characters written. */
size_t st_hex_encode(const uint8_t *b, size_t len, char *out, size_t cap);

#endif
