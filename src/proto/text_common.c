/* text_common.c — see text_common.h. */
#include "text_common.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "../core/err.h"
#include "../core/timeutil.h"

size_t tc_split(const char *s, size_t len, char sep, struct tc_field *f, size_t max)
{
    size_t n = 0, start = 0;
    for (size_t i = 0; i < len && n + 1 < max; i++) {
        if (s[i] != sep)
            continue;
        f[n].p = s + start;
        f[n].n = i - start;
        n++;
        start = i + 1;
    }
    f[n].p = s + start;
    f[n].n = len - start;
    return n + 1;
}

bool tc_eq(struct tc_field f, const char *s)
{
    size_t n = strlen(s);
    return f.n == n && memcmp(f.p, s, n) == 0;
}

bool tc_digits(struct tc_field f, size_t min, size_t max)
{
    if (f.n < min || f.n > max)
        return false;
    for (size_t i = 0; i < f.n; i++)
        if (f.p[i] < '0' || f.p[i] > '9')
            return false;
    return true;
}

bool tc_uint(struct tc_field f, uint64_t max, uint64_t *out)
{
    if (!tc_digits(f, 1, 18))
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < f.n; i++)
        v = v * 10 + (uint64_t)(f.p[i] - '0');
    if (v > max)
        return false;
    *out = v;
    return true;
}

static int hex_value(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

bool tc_hex(struct tc_field f, uint64_t max, uint64_t *out)
{
    if (f.n < 1 || f.n > 16)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < f.n; i++) {
        int d = hex_value(f.p[i]);
        if (d < 0)
            return false;
        v = v << 4 | (uint64_t)d;
    }
    if (v > max)
        return false;
    *out = v;
    return true;
}

bool tc_decimal(struct tc_field f, double *out)
{
    size_t i = 0;
    bool neg = false;
    if (i < f.n && (f.p[i] == '-' || f.p[i] == '+'))
        neg = f.p[i++] == '-';
    uint64_t mant = 0, scale = 1;
    size_t digits = 0;
    bool dot = false;
    for (; i < f.n; i++) {
        char c = f.p[i];
        if (c == '.' && !dot) {
            dot = true;
            continue;
        }
        if (c < '0' || c > '9' || ++digits > 15)
            return false;
        mant = mant * 10 + (uint64_t)(c - '0');
        if (dot)
            scale *= 10;
    }
    if (digits == 0)
        return false;
    double v = (double)mant / (double)scale;
    *out = neg ? -v : v;
    return true;
}

static int two_digits(const char *p)
{
    return (p[0] - '0') * 10 + (p[1] - '0');
}

bool tc_time_digits(const char *p, size_t n, int64_t *out)
{
    struct tc_field f = {p, n};
    if (!(n == 12 || n == 14) || !tc_digits(f, n, n))
        return false;
    int year = n == 14 ? two_digits(p) * 100 + two_digits(p + 2) : 2000 + two_digits(p);
    const char *q = p + (n - 10);
    int64_t t = st_time_from_utc(year, two_digits(q), two_digits(q + 2), two_digits(q + 4),
                                 two_digits(q + 6), two_digits(q + 8));
    if (t < 0)
        return false;
    *out = t;
    return true;
}

void tc_set_device_id(struct report *r, struct tc_field f)
{
    size_t n = f.n < sizeof r->device_id - 1 ? f.n : sizeof r->device_id - 1;
    memcpy(r->device_id, f.p, n);
    r->device_id[n] = '\0';
}

void tc_attr(struct report *r, const char *key, struct tc_field f)
{
    int n = f.n > 2048 ? 2048 : (int)f.n;
    report_attr_set(r, key, "%.*s", n, f.p);
}

void tc_event(struct report *r, enum report_event_type type, const char *reason, int fence_id)
{
    struct report_event *e = report_add_event(r, type);
    if (!e)
        return;
    snprintf(e->reason, sizeof e->reason, "%s", reason);
    e->fence_id = (int16_t)fence_id;
}

int tc_command(uint8_t *out, size_t cap, size_t *len, const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof text)
        return ST_EMALFORMED;
    if ((size_t)n > cap)
        return ST_ERANGE;
    memcpy(out, text, (size_t)n);
    *len = (size_t)n;
    return 0;
}
