/* timeutil.h — UTC calendar arithmetic without the C library's time zone state. */
#ifndef ST_TIMEUTIL_H
#define ST_TIMEUTIL_H

#include <stdint.h>

#define ST_ISO_LEN 21 /* "2011-02-16T05:59:10Z" + NUL */

/** Seconds since the epoch for a UTC calendar time, or -1 when a field is out of range. */
int64_t st_time_from_utc(int year, int month, int day, int hour, int min, int sec);

/** Split epoch seconds into a UTC calendar time. */
void st_time_to_utc(int64_t t, int *year, int *month, int *day, int *hour, int *min, int *sec);

/** Format as ISO 8601 UTC ("2011-02-16T05:59:10Z") into buf[ST_ISO_LEN]. */
void st_time_iso(int64_t t, char *buf);

/** Parse ISO 8601 UTC ("2011-02-16T05:59:10Z", "2011-02-16" or epoch seconds); 0 or ST_EMALFORMED. */
int st_time_parse(const char *s, int64_t *out);

/** Wall-clock now in milliseconds / seconds (UTC). */
int64_t st_now_ms(void);
int64_t st_now(void);
/** Monotonic microseconds (durations only). */
int64_t st_monotonic_us(void);

#endif
