/* nmea_common.c — see nmea_common.h. */
#include "nmea_common.h"

#include "../core/timeutil.h"

/* `positive`/`negative`: the hemisphere letters; `limit`: the largest value in degrees. */
static bool coord(struct tc_field f, char hemisphere, char positive, char negative, double limit,
                  double *out)
{
    while (f.n > 0 && f.p[0] == ' ') {
        f.p++;
        f.n--;
    }
    double value;
    /* a sign would make "-23-3.3408" style fields look numeric: digits and one dot only */
    if (f.n == 0 || f.p[0] < '0' || f.p[0] > '9' || !tc_decimal(f, &value))
        return false;
    double degrees = (double)(long)(value / 100.0), minutes = value - degrees * 100.0;
    double result = degrees + minutes / 60.0;
    if (minutes >= 60.0 || result > limit || (hemisphere != positive && hemisphere != negative))
        return false;
    *out = hemisphere == negative ? -result : result;
    return true;
}

bool nmea_lat(struct tc_field f, char hemisphere, double *out)
{
    return coord(f, hemisphere, 'N', 'S', 90.0, out);
}

bool nmea_lon(struct tc_field f, char hemisphere, double *out)
{
    return coord(f, hemisphere, 'E', 'W', 180.0, out);
}

bool nmea_pairs(struct tc_field f, int out[3])
{
    if (f.n < 6)
        return false;
    struct tc_field six = {f.p, 6};
    if (!tc_digits(six, 6, 6))
        return false;
    for (int i = 0; i < 3; i++)
        out[i] = (f.p[2 * i] - '0') * 10 + (f.p[2 * i + 1] - '0');
    return true;
}

bool nmea_time(int yy, int month, int day, const int hms[3], int64_t *out)
{
    int64_t t = st_time_from_utc(2000 + yy, month, day, hms[0], hms[1], hms[2]);
    if (t < 0)
        return false;
    *out = t;
    return true;
}
