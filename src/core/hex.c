/* hex.c — see hex.h. */
#include "hex.h"

size_t st_hex_encode(const uint8_t *b, size_t len, char *out, size_t cap)
{
    static const char digits[] = "0123456789abcdef";
    if (cap == 0)
        return 0;
    if (len > (cap - 1) / 2)
        len = (cap - 1) / 2;
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * len] = '\0';
    return 2 * len;
}
