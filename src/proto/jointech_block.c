/* jointech_block.c — the 17-byte Jointech location block (spec §2.3).
 * Speed is an unsigned binary byte in knots, not BCD (spec finding 2). */
#include "jointech_block.h"

#include "../core/err.h"
#include "../core/timeutil.h"

#define KNOT_KMH 1.852

/* `ndigits` BCD digits starting at the high nibble of b[0]. */
static int64_t bcd_digits(const uint8_t *b, int ndigits)
{
    int64_t v = 0;
    for (int i = 0; i < ndigits; i++) {
        int nib = (i & 1) ? (b[i / 2] & 15) : (b[i / 2] >> 4);
        if (nib > 9)
            return -1;
        v = v * 10 + nib;
    }
    return v;
}

int jointech_block_decode(const uint8_t *b, struct report *r)
{
    int day = jointech_bcd(b[0]), mon = jointech_bcd(b[1]), yy = jointech_bcd(b[2]);
    int hh = jointech_bcd(b[3]), mi = jointech_bcd(b[4]), ss = jointech_bcd(b[5]);
    int64_t lat_raw = bcd_digits(b + 6, 8), lon_raw = bcd_digits(b + 10, 9);
    if (day < 0 || mon < 0 || yy < 0 || hh < 0 || mi < 0 || ss < 0 || lat_raw < 0 || lon_raw < 0)
        return ST_EMALFORMED;
    if (day == 0 && mon == 0) { /* no time yet: the vendor SDK reads it as 2000-01-01 */
        day = 1;
        mon = 1;
    }
    int64_t t = st_time_from_utc(2000 + yy, mon, day, hh, mi, ss);
    if (t < 0)
        return ST_EMALFORMED;
    uint8_t flags = b[14] & 15;
    double lat = (double)(lat_raw / 1000000) + (double)(lat_raw % 1000000) / 10000.0 / 60.0;
    double lon = (double)(lon_raw / 1000000) + (double)(lon_raw % 1000000) / 10000.0 / 60.0;
    r->fix_time = t;
    r->has_position = true;
    r->valid = flags & 1;
    r->lat = (flags & 2) ? lat : -lat;
    r->lon = (flags & 4) ? lon : -lon;
    r->speed_kmh = b[15] * KNOT_KMH;
    r->course = b[16] * 2;
    r->fix = r->valid ? REPORT_FIX_GNSS : REPORT_FIX_NONE;
    report_attr_uint(r, "speed_kn", b[15]);
    return 0;
}

static uint8_t to_bcd(int v)
{
    return (uint8_t)(((v / 10) % 10) << 4 | (v % 10));
}

/* Write `ndigits` BCD digits of v starting at the high nibble of b[0]. */
static void put_digits(uint8_t *b, int64_t v, int ndigits)
{
    for (int i = ndigits - 1; i >= 0; i--) {
        int d = (int)(v % 10);
        v /= 10;
        if (i & 1)
            b[i / 2] = (uint8_t)((b[i / 2] & 0xF0) | d);
        else
            b[i / 2] = (uint8_t)((b[i / 2] & 0x0F) | d << 4);
    }
}

static int64_t degrees_to_ddmm(double deg)
{
    if (deg < 0)
        deg = -deg;
    int64_t whole = (int64_t)deg;
    int64_t minutes = (int64_t)((deg - (double)whole) * 60.0 * 10000.0 + 0.5);
    return whole * 1000000 + minutes;
}

void jointech_block_encode(const struct report *r, uint8_t *b)
{
    int y, mo, d, h, mi, s;
    st_time_to_utc(r->fix_time, &y, &mo, &d, &h, &mi, &s);
    b[0] = to_bcd(d);
    b[1] = to_bcd(mo);
    b[2] = to_bcd(y % 100);
    b[3] = to_bcd(h);
    b[4] = to_bcd(mi);
    b[5] = to_bcd(s);
    b[14] = 0;
    put_digits(b + 6, degrees_to_ddmm(r->lat), 8);
    put_digits(b + 10, degrees_to_ddmm(r->lon), 9);
    b[14] = (uint8_t)((b[14] & 0xF0) | 8 | (r->lon >= 0 ? 4 : 0) | (r->lat >= 0 ? 2 : 0) |
                      (r->valid ? 1 : 0));
    /* clamped, NaN included: casting a double outside 0..255 is undefined */
    double kn = r->speed_kmh / KNOT_KMH + 0.5;
    b[15] = (uint8_t)(!(kn >= 0) ? 0 : kn > 255 ? 255 : kn);
    b[16] = (uint8_t)((int)r->course / 2);
}
