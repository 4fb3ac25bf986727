/* text_common.h — field helpers shared by the delimiter-separated ASCII protocols
 * (Meitrack, Queclink @Track, Suntech): splitting, strict number parsing and
 * digit-string timestamps. Pure: no allocation; every read is bounded by a length. */
#ifndef ST_TEXT_COMMON_H
#define ST_TEXT_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../model/report.h"

/** One field of a text frame: a view into the frame, not NUL-terminated. */
struct tc_field {
    const char *p;
    size_t n;
};

/** Split s[0..len) at `sep` into at most `max` fields (max >= 1); further
 *  separators stay inside the last field. Returns the number of fields (>= 1). */
/* Character classes of the ASCII protocols (no locale). */
static inline bool tc_is_digit(uint8_t c)
{
    return c >= '0' && c <= '9';
}

static inline bool tc_is_upper(uint8_t c)
{
    return c >= 'A' && c <= 'Z';
}

static inline bool tc_is_hex(uint8_t c)
{
    return tc_is_digit(c) || (c >= 'A' && c <= 'F') || (c >= 'a' && c <= 'f');
}

size_t tc_split(const char *s, size_t len, char sep, struct tc_field *f, size_t max);

/** Field equals the NUL-terminated `s`. */
bool tc_eq(struct tc_field f, const char *s);

/** Field is `min`..`max` decimal digits and nothing else. */
bool tc_digits(struct tc_field f, size_t min, size_t max);

/** Unsigned decimal (1..18 digits) no larger than `max`. */
bool tc_uint(struct tc_field f, uint64_t max, uint64_t *out);

/** Unsigned hexadecimal (1..16 digits, either case) no larger than `max`. */
bool tc_hex(struct tc_field f, uint64_t max, uint64_t *out);

/** Signed decimal `[+-]digits[.digits]` (at least one digit, at most 15). */
bool tc_decimal(struct tc_field f, double *out);

/** "YYMMDDhhmmss" (12 digits, years 2000–2099) or "YYYYMMDDhhmmss" (14) as UTC
 *  epoch seconds; false when malformed or out of range. */
bool tc_time_digits(const char *p, size_t n, int64_t *out);

/** Copy the field into r->device_id (truncated to fit). */
void tc_set_device_id(struct report *r, struct tc_field f);

/** Append an event with an optional reason ("" none) and fence (-1 none). */
void tc_event(struct report *r, enum report_event_type type, const char *reason, int fence_id);

/** Store the field's text as attribute `key`. */
void tc_attr(struct report *r, const char *key, struct tc_field f);

/** printf a downlink command into out[0..cap), setting *len: the one shape of every text
 *  protocol's encoder. ST_EMALFORMED when the text exceeds 1 KiB, ST_ERANGE when cap is short. */
int tc_command(uint8_t *out, size_t cap, size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
