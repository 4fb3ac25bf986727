/* nmea_common.h — the NMEA-style pieces shared by the H02, TK103 and GPS103 text
 * protocols: "DDMM.MMMM" / "DDDMM.MMMM" coordinates with a hemisphere letter and
 * six-digit clock/calendar fields. Builds on text_common.h; pure, bounded by lengths. */
#ifndef ST_NMEA_COMMON_H
#define ST_NMEA_COMMON_H

#include <stdbool.h>

#include "text_common.h"

/** Degrees-and-minutes latitude ("2555.3531": degrees are the digits before the
 *  last two integer digits) with hemisphere 'N' or 'S' → signed decimal degrees.
 *  False when malformed, minutes >= 60, above 90° or another hemisphere letter.
 *  Leading spaces count as zeros (space-padded devices). */
bool nmea_lat(struct tc_field f, char hemisphere, double *out);

/** The same for a longitude ("11346.6574") with 'E' or 'W', up to 180°. */
bool nmea_lon(struct tc_field f, char hemisphere, double *out);

/** Six leading digits of `f` (further text such as ".000" is ignored) as three
 *  two-digit numbers: hh mm ss, dd mm yy or yy mm dd. */
bool nmea_pairs(struct tc_field f, int out[3]);

/** UTC epoch seconds from a `yy` two-digit year (2000–2099) and the other fields;
 *  false when out of range. */
bool nmea_time(int yy, int month, int day, const int hms[3], int64_t *out);

#endif
