#include "jsonw.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "timeutil.h"
#include "utf8.h"

void jsonw_init(struct jsonw *w, struct buf *out)
{
    w->out = out;
    w->depth = 0;
    w->first[0] = true;
    w->after_key = false;
}

/* Separator before a value or key at the current level. */
static void sep(struct jsonw *w)
{
    if (w->after_key) {
        w->after_key = false;
        return;
    }
    if (!w->first[w->depth])
        buf_append(w->out, ",", 1);
    w->first[w->depth] = false;
}

static void open(struct jsonw *w, char c)
{
    sep(w);
    buf_append(w->out, &c, 1);
    if (w->depth < JSONW_MAX_DEPTH - 1)
        w->depth++;
    w->first[w->depth] = true;
}

static void close_(struct jsonw *w, char c)
{
    buf_append(w->out, &c, 1);
    if (w->depth > 0)
        w->depth--;
}

void jsonw_obj_begin(struct jsonw *w) { open(w, '{'); }
void jsonw_obj_end(struct jsonw *w) { close_(w, '}'); }
void jsonw_arr_begin(struct jsonw *w) { open(w, '['); }
void jsonw_arr_end(struct jsonw *w) { close_(w, ']'); }

/* Device-supplied text may hold any bytes: control characters are escaped and bytes
 * that are not UTF-8 become U+FFFD, so the output is always valid JSON. */
static void escaped(struct buf *b, const char *s, size_t n)
{
    buf_append(b, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x80) {
            size_t len = st_utf8_valid_len((const unsigned char *)s + i, n - i);
            if (len) {
                i += len - 1;
                continue;
            }
        } else if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        buf_append(b, s + run, i - run);
        run = i + 1;
        char esc[8];
        switch (c) {
        case '"': buf_append(b, "\\\"", 2); break;
        case '\\': buf_append(b, "\\\\", 2); break;
        case '\n': buf_append(b, "\\n", 2); break;
        case '\r': buf_append(b, "\\r", 2); break;
        case '\t': buf_append(b, "\\t", 2); break;
        default:
            if (c >= 0x80) {
                buf_append(b, "\\ufffd", 6);
                break;
            }
            snprintf(esc, sizeof esc, "\\u%04x", c);
            buf_append(b, esc, 6);
        }
    }
    buf_append(b, s + run, n - run);
    buf_append(b, "\"", 1);
}

void jsonw_key(struct jsonw *w, const char *key)
{
    sep(w);
    escaped(w->out, key, strlen(key));
    buf_append(w->out, ":", 1);
    w->after_key = true;
}

void jsonw_strn(struct jsonw *w, const char *s, size_t n)
{
    sep(w);
    escaped(w->out, s, n);
}

void jsonw_str(struct jsonw *w, const char *s)
{
    jsonw_strn(w, s, strlen(s));
}

void jsonw_int(struct jsonw *w, int64_t v)
{
    sep(w);
    buf_printf(w->out, "%lld", (long long)v);
}

size_t jsonw_format_num(double v, int decimals, char *text, size_t cap)
{
    if (!isfinite(v) || cap < 32)
        return 0;
    if (fabs(v) >= 1e15) /* a device's absurd value: exponent form, not a 300-digit integer */
        return (size_t)snprintf(text, cap, "%.17g", v);
    /* below 1e15 with at most 12 places: at most 29 characters */
    int n = snprintf(text, cap, "%.*f", decimals < 0 ? 0 : decimals > 12 ? 12 : decimals, v);
    /* Trim trailing zeros so 9.260000 prints as 9.26 and 18.0 as 18. */
    if (memchr(text, '.', (size_t)n)) {
        while (n > 0 && text[n - 1] == '0')
            n--;
        if (n > 0 && text[n - 1] == '.')
            n--;
    }
    if (n == 2 && text[0] == '-' && text[1] == '0') { /* -0.0000001 at 6 places */
        text[0] = '0';
        n = 1;
    }
    text[n] = '\0';
    return (size_t)n;
}

void jsonw_num(struct jsonw *w, double v, int decimals)
{
    char tmp[64];
    size_t n = jsonw_format_num(v, decimals, tmp, sizeof tmp);
    if (n == 0) {
        jsonw_null(w);
        return;
    }
    sep(w);
    buf_append(w->out, tmp, n);
}

void jsonw_bool(struct jsonw *w, bool v)
{
    sep(w);
    buf_append_str(w->out, v ? "true" : "false");
}

void jsonw_null(struct jsonw *w)
{
    sep(w);
    buf_append(w->out, "null", 4);
}

void jsonw_raw(struct jsonw *w, const char *json)
{
    sep(w);
    buf_append_str(w->out, json);
}

void jsonw_key_time(struct jsonw *w, const char *key, int64_t t)
{
    char iso[ST_ISO_LEN];
    st_time_iso(t, iso);
    jsonw_key(w, key);
    jsonw_str(w, iso);
}
