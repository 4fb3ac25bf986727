/* jointech_block.h — the 17-byte Jointech location block shared by JT600 `$`
 * records, WLNET,5 sub-lock data and the JT/T 808 0x5501/0x5502 report
 * (docs/protocols.md "Location block"). */
#ifndef ST_JOINTECH_BLOCK_H
#define ST_JOINTECH_BLOCK_H

#include <stddef.h>
#include <stdint.h>

#include "../model/report.h"

#define JOINTECH_BLOCK_LEN 17

/** Decode `b[0..17)` into r: fix_time, lat/lon (signed), valid, speed (binary
 *  knots → km/h), course (×2) and has_position. Sets attrs speed_kn, flags.
 *  Returns 0 or ST_EMALFORMED when a BCD nibble is not a digit. */
int jointech_block_decode(const uint8_t *b, struct report *r);

/** Encode r's time/position/speed/course into b[0..17) (the simulator's and tests' writer). */
void jointech_block_encode(const struct report *r, uint8_t *b);

/** Value of one packed-BCD byte, or -1 when a nibble is above 9 (inline: six a frame). */
static inline int jointech_bcd(uint8_t v)
{
    if ((v >> 4) > 9 || (v & 15) > 9)
        return -1;
    return (v >> 4) * 10 + (v & 15);
}

#endif
