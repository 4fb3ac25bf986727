/* utf8.h — UTF-8 well-formedness, for writers whose output must be valid text
 * (JSON, XML) whatever bytes a device sent. */
#ifndef ST_UTF8_H
#define ST_UTF8_H

#include <stddef.h>

/** Length of the well-formed UTF-8 sequence of a non-ASCII lead byte at s (RFC 3629:
 *  no overlong forms, no surrogates, nothing above U+10FFFF), or 0 when the n bytes
 *  at s do not start one. */
size_t st_utf8_valid_len(const unsigned char *s, size_t n);

#endif
