/* osmand.c — OsmAnd / Traccar Client location reports: HTTP/1.1 requests on the
 * shared raw TCP port (docs/protocols/osmand.md).
 *
 * One frame = request line + header lines up to the empty line + a body of
 * Content-Length bytes, all within PROTO_FRAME_MAX. The report travels either
 * as `key=value&…` parameters (in the query, or in a form body when the query
 * has none) or as a Traccar Client JSON document (Content-Type application/json).
 * Every request is answered with an empty 200 response (400 when it names no
 * device); the connection stays open for the next request (keep-alive).
 * Pure code: no allocation, no logging; every read is bounded by the length passed in.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../core/err.h"
#include "../core/timeutil.h"
#include "proto.h"

#define KNOT_KMH 1.852
#define MPS_KMH 3.6
#define KEY_MAX 64        /* longest parameter / JSON path kept (longer: cut) */
#define VALUE_MAX 256     /* longest parameter value kept (longer: cut) */
#define JSON_DEPTH_MAX 16 /* nesting deeper than this is refused */
#define HTTP_TAIL " HTTP/1.x\r\n"
#define HTTP_TAIL_LEN 11

static const char reply_ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
static const char reply_bad[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";

/* The methods served, each with the space and the slash of an origin-form target. */
static const char *const methods[] = {"GET /", "POST /"};
#define N_METHODS (sizeof methods / sizeof methods[0])

/* ---- request line and headers (shared by detect, frame and decode) ------- */

static bool is_visible(uint8_t c)
{
    return c > 0x20 && c < 0x7f;
}

/* Length of "GET " / "POST " when buf starts with a served method and "/";
 * 0 while buf is a strict prefix of one; -1 otherwise. */
static ptrdiff_t method_len(const uint8_t *buf, size_t len)
{
    if (len == 0)
        return 0;
    for (size_t m = 0; m < N_METHODS; m++) {
        size_t n = strlen(methods[m]);
        size_t k = len < n ? len : n;
        if (memcmp(buf, methods[m], k) == 0)
            return len < n ? 0 : (ptrdiff_t)n - 1;
    }
    return -1;
}

/* "METHOD /target HTTP/1.x\r\n": its length; 0 while incomplete; -1 when not one. */
static ptrdiff_t request_line(const uint8_t *buf, size_t len)
{
    ptrdiff_t m = method_len(buf, len);
    if (m <= 0)
        return m;
    size_t limit = len < PROTO_FRAME_MAX ? len : PROTO_FRAME_MAX;
    size_t i = (size_t)m;
    while (i < limit && is_visible(buf[i]))
        i++;
    if (i == limit)
        return limit == PROTO_FRAME_MAX ? -1 : 0;
    for (size_t k = 0; k < HTTP_TAIL_LEN; k++, i++) {
        if (i == len)
            return 0;
        char want = HTTP_TAIL[k];
        if (want == 'x' ? buf[i] != '0' && buf[i] != '1' : buf[i] != (uint8_t)want)
            return -1;
    }
    return (ptrdiff_t)i;
}

/* Skip garbage: everything before the next possible method (at least one byte). */
static ptrdiff_t resync(const uint8_t *buf, size_t len)
{
    size_t i = 1;
    while (i < len && buf[i] != 'G' && buf[i] != 'P')
        i++;
    return -(ptrdiff_t)i;
}

struct http_head {
    size_t head_len; /* request line + headers + the empty line */
    size_t body_len; /* Content-Length (0 when absent) */
    bool length_bad; /* Content-Length unreadable or over the frame bound */
    bool chunked;    /* a Transfer-Encoding other than identity (not served) */
    bool json;       /* Content-Type: application/json */
    bool line_bad;   /* a header line without a colon */
};

static bool name_is(const uint8_t *p, size_t n, const char *name)
{
    return n == strlen(name) && strncasecmp((const char *)p, name, n) == 0;
}

static bool value_starts(const uint8_t *p, size_t n, const char *prefix)
{
    size_t k = strlen(prefix);
    return n >= k && strncasecmp((const char *)p, prefix, k) == 0;
}

static void read_header(const uint8_t *p, size_t n, struct http_head *h)
{
    const uint8_t *colon = memchr(p, ':', n);
    if (!colon) {
        h->line_bad = true;
        return;
    }
    size_t nlen = (size_t)(colon - p), vpos = nlen + 1;
    while (vpos < n && (p[vpos] == ' ' || p[vpos] == '\t'))
        vpos++;
    const uint8_t *v = p + vpos;
    size_t vlen = n - vpos;
    while (vlen && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
        vlen--;
    if (name_is(p, nlen, "content-length")) {
        size_t cl = 0;
        h->length_bad = vlen == 0;
        for (size_t i = 0; i < vlen && !h->length_bad; i++) {
            if (v[i] < '0' || v[i] > '9' || cl > PROTO_FRAME_MAX)
                h->length_bad = true;
            else
                cl = cl * 10 + (size_t)(v[i] - '0');
        }
        h->body_len = cl;
    } else if (name_is(p, nlen, "transfer-encoding")) {
        h->chunked = !(vlen == 8 && value_starts(v, vlen, "identity"));
    } else if (name_is(p, nlen, "content-type")) {
        h->json = value_starts(v, vlen, "application/json");
    }
}

/* Read the head of the request whose line is `line` bytes long; false while the
 * empty line has not arrived within the frame bound. */
static bool read_head(const uint8_t *buf, size_t len, size_t line, struct http_head *h)
{
    memset(h, 0, sizeof *h);
    size_t limit = len < PROTO_FRAME_MAX ? len : PROTO_FRAME_MAX;
    size_t pos = line;
    for (;;) {
        const uint8_t *eol = pos < limit ? memchr(buf + pos, '\n', limit - pos) : NULL;
        if (!eol)
            return false;
        size_t end = (size_t)(eol - buf);
        if (end == pos || buf[end - 1] != '\r') {
            h->line_bad = true; /* bare LF: not HTTP; end the head here */
            h->head_len = end + 1;
            return true;
        }
        if (end - 1 == pos) {
            h->head_len = end + 1;
            if (h->length_bad || h->head_len + h->body_len > PROTO_FRAME_MAX) {
                h->length_bad = true;
                h->body_len = 0; /* cannot be buffered: the head alone is the frame */
            }
            if (h->chunked)
                h->body_len = 0;
            return true;
        }
        read_header(buf + pos, end - 1 - pos, h);
        pos = end + 1;
    }
}

/* ---- detect / frame ----------------------------------------------------- */

static int osmand_detect(const uint8_t *buf, size_t len)
{
    ptrdiff_t n = request_line(buf, len);
    return n > 0 ? PROTO_DETECT_YES : n == 0 ? PROTO_DETECT_MAYBE : PROTO_DETECT_NO;
}

static ptrdiff_t osmand_frame(const uint8_t *buf, size_t len)
{
    if (len == 0)
        return 0;
    ptrdiff_t line = request_line(buf, len);
    if (line < 0)
        return resync(buf, len);
    struct http_head h;
    if (line == 0 || !read_head(buf, len, (size_t)line, &h))
        return len >= PROTO_FRAME_MAX ? resync(buf, len) : 0;
    size_t total = h.head_len + h.body_len;
    return len >= total ? (ptrdiff_t)total : 0;
}

/* ---- values ------------------------------------------------------------- */

/* A plain decimal number (sign, digits, point, exponent); false otherwise. */
static bool parse_number(const char *s, double *v)
{
    size_t n = strlen(s);
    if (n == 0 || n > 40 || strspn(s, "0123456789+-.eE") != n)
        return false;
    char *end;
    *v = strtod(s, &end);
    return *end == '\0' && *v > -1e15 && *v < 1e15;
}

static bool all_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return n > 0;
}

static int digits_at(const char *s, size_t n)
{
    int v = 0;
    for (size_t i = 0; i < n; i++)
        v = v * 10 + (s[i] - '0');
    return v;
}

/* "YYYY-MM-DD[T ]hh:mm:ss[.fff][Z|±hh:mm|±hhmm]"; without a zone the time is
 * the device's own (*local set). */
static bool parse_datetime(const char *s, int64_t *t, bool *local)
{
    size_t n = strlen(s);
    if (n < 19 || !all_digits(s, 4) || s[4] != '-' || !all_digits(s + 5, 2) || s[7] != '-' ||
        !all_digits(s + 8, 2) || (s[10] != 'T' && s[10] != ' ') || !all_digits(s + 11, 2) ||
        s[13] != ':' || !all_digits(s + 14, 2) || s[16] != ':' || !all_digits(s + 17, 2))
        return false;
    *t = st_time_from_utc(digits_at(s, 4), digits_at(s + 5, 2), digits_at(s + 8, 2),
                          digits_at(s + 11, 2), digits_at(s + 14, 2), digits_at(s + 17, 2));
    if (*t < 0)
        return false;
    const char *z = s + 19;
    if (*z == '.') {
        z++;
        while (*z >= '0' && *z <= '9')
            z++;
    }
    *local = *z == '\0';
    if (*z == '\0' || (z[0] == 'Z' && z[1] == '\0'))
        return true;
    size_t zn = strlen(z);
    if ((z[0] != '+' && z[0] != '-') || !all_digits(z + 1, 2))
        return false;
    int mins;
    if (zn == 6 && z[3] == ':' && all_digits(z + 4, 2))
        mins = digits_at(z + 4, 2);
    else if (zn == 5 && all_digits(z + 3, 2))
        mins = digits_at(z + 3, 2);
    else
        return false;
    int64_t offset = (int64_t)digits_at(z + 1, 2) * 3600 + mins * 60;
    *t += z[0] == '+' ? -offset : offset;
    return true;
}

/* `timestamp`: epoch seconds or milliseconds, DDMMYYhhmmss (UTC), or a date-time. */
static bool parse_timestamp(const char *s, int64_t *t, bool *local)
{
    size_t n = strlen(s);
    *local = false;
    if (n == 12 && all_digits(s, 12)) {
        *t = st_time_from_utc(2000 + digits_at(s + 4, 2), digits_at(s + 2, 2), digits_at(s, 2),
                              digits_at(s + 6, 2), digits_at(s + 8, 2), digits_at(s + 10, 2));
        if (*t >= 0)
            return true;
    }
    if (all_digits(s, n)) {
        if (n > 15)
            return false;
        int64_t v = 0;
        for (size_t i = 0; i < n; i++)
            v = v * 10 + (s[i] - '0');
        *t = v > INT32_MAX ? v / 1000 : v; /* past 2038 in seconds = milliseconds */
        return true;
    }
    return parse_datetime(s, t, local);
}

/* ---- report building (shared by the parameter and JSON forms) ------------ */

struct osm {
    struct report *r;
    bool has_lat, has_lon, valid_set, bad;
    double lat, lon;
};

/* Alarm names as Traccar Client and the OsmAnd protocol page spell them. */
static const struct alarm_name {
    const char *name;
    uint8_t type;
} alarm_names[] = {
    {"sos", REPORT_EV_SOS},
    {"lowBattery", REPORT_EV_LOW_BATTERY},
    {"overspeed", REPORT_EV_OVERSPEED},
    {"vibration", REPORT_EV_VIBRATION},
    {"powerCut", REPORT_EV_POWER_CUT},
    {"tampering", REPORT_EV_TAMPER},
    {"geofenceEnter", REPORT_EV_GEOFENCE_ENTER},
    {"geofenceExit", REPORT_EV_GEOFENCE_EXIT},
    {"lock", REPORT_EV_LOCK},
    {"unlock", REPORT_EV_UNLOCK},
};

/* `alarm=a,b`: one event per name; names without a type of their own → alarm + reason. */
static void add_alarms(struct report *r, const char *v)
{
    report_attr_set(r, "alarm", "%s", v);
    while (*v) {
        size_t n = strcspn(v, ",");
        if (n > 0) {
            uint8_t type = REPORT_EV_ALARM;
            for (size_t i = 0; i < sizeof alarm_names / sizeof alarm_names[0]; i++)
                if (strlen(alarm_names[i].name) == n && strncasecmp(alarm_names[i].name, v, n) == 0)
                    type = alarm_names[i].type;
            struct report_event *e = report_add_event(r, type);
            if (e && type == REPORT_EV_ALARM)
                snprintf(e->reason, sizeof e->reason, "%.*s", (int)n, v);
        }
        v += n + (v[n] == ',');
    }
}

/* An attribute under `key`, or key2, key3 … when the key repeats (cell=, wifi=). */
static void attr_unique(struct report *r, const char *key, const char *v)
{
    if (!report_attr_get(r, key)) {
        report_attr_set(r, key, "%s", v);
        return;
    }
    char k[KEY_MAX + 4];
    for (int i = 2; i < 10; i++) {
        snprintf(k, sizeof k, "%s%d", key, i);
        if (!report_attr_get(r, k)) {
            report_attr_set(r, k, "%s", v);
            return;
        }
    }
}

/* `cell=mcc,mnc,lac,cid[,rssi]`: the first one fills the serving cell. */
static void set_cell(struct report *r, const char *v)
{
    long f[5];
    int n = 0;
    const char *p = v;
    while (n < 5) {
        char *end;
        f[n++] = strtol(p, &end, 10);
        if (end == p || (*end != ',' && *end != '\0'))
            return;
        if (*end == '\0')
            break;
        p = end + 1;
    }
    if (r->has_cell || n < 4 || f[0] < 0 || f[0] > 999 || f[1] < 0 || f[1] > 999 || f[2] < 0 ||
        f[2] > UINT32_MAX || f[3] < 0 || f[3] > UINT32_MAX)
        return;
    r->has_cell = true;
    r->cell = (struct report_cell){(uint16_t)f[0], (uint16_t)f[1], (uint32_t)f[2], (uint32_t)f[3]};
}

static bool set_id(struct report *r, const char *v)
{
    size_t n = strlen(v);
    if (n >= sizeof r->device_id)
        return false;
    memcpy(r->device_id, v, n + 1);
    return true;
}

static void set_battery(struct report *r, double pct)
{
    if (pct >= 0 && pct <= 100)
        r->battery_pct = (int16_t)(pct + 0.5);
}

/* One `key=value` of the parameter form (both already percent-decoded). */
static void apply_param(struct osm *st, const char *key, const char *v)
{
    struct report *r = st->r;
    double d = 0;
    bool num = parse_number(v, &d);
    if (strcmp(key, "id") == 0 || strcmp(key, "deviceid") == 0) {
        st->bad |= !set_id(r, v);
    } else if (strcmp(key, "valid") == 0) {
        st->valid_set = true;
        r->valid = strcasecmp(v, "true") == 0 || strcmp(v, "1") == 0;
    } else if (strcmp(key, "timestamp") == 0) {
        st->bad |= !parse_timestamp(v, &r->fix_time, &r->time_is_local);
    } else if (strcmp(key, "lat") == 0) {
        st->has_lat = num;
        st->lat = d;
        st->bad |= !num;
    } else if (strcmp(key, "lon") == 0) {
        st->has_lon = num;
        st->lon = d;
        st->bad |= !num;
    } else if (strcmp(key, "location") == 0) {
        char lat[VALUE_MAX];
        size_t n = strcspn(v, ",");
        snprintf(lat, sizeof lat, "%.*s", (int)n, v);
        st->has_lat = st->has_lon =
            v[n] == ',' && parse_number(lat, &st->lat) && parse_number(v + n + 1, &st->lon);
        st->bad |= !st->has_lat;
    } else if (strcmp(key, "speed") == 0) {
        r->speed_kmh = d * KNOT_KMH;
        st->bad |= !num || d < 0;
    } else if (strcmp(key, "bearing") == 0 || strcmp(key, "heading") == 0) {
        r->course = d >= 0 && d <= 360 ? d : 0; /* -1 and the like: not known */
        st->bad |= !num;
    } else if (strcmp(key, "altitude") == 0) {
        r->has_altitude = num;
        r->altitude_m = d;
        st->bad |= !num;
    } else if (strcmp(key, "batt") == 0 && num && d >= 0 && d <= 100) {
        set_battery(r, d);
    } else if (strcmp(key, "charge") == 0 && (strcmp(v, "true") == 0 || strcmp(v, "false") == 0)) {
        r->charging = v[0] == 't';
    } else if (strcmp(key, "alarm") == 0) {
        add_alarms(r, v);
    } else {
        if (strcmp(key, "cell") == 0)
            set_cell(r, v);
        attr_unique(r, key, v);
    }
}

/* ---- parameter form ----------------------------------------------------- */

static int hex_digit(uint8_t c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* Percent-decode p[0..n) into out[cap] ("+" is a space; a bad or NUL escape
 * stays as written); longer text is cut. */
static void url_decode(const uint8_t *p, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 1 < cap; i++) {
        int hi = i + 2 < n && p[i] == '%' ? hex_digit(p[i + 1]) : -1;
        int lo = hi >= 0 ? hex_digit(p[i + 2]) : -1;
        if (lo >= 0 && (hi | lo) != 0) {
            out[o++] = (char)(hi << 4 | lo);
            i += 2;
        } else {
            out[o++] = p[i] == '+' ? ' ' : (char)p[i];
        }
    }
    out[o] = '\0';
}

static void decode_params(struct osm *st, const uint8_t *p, size_t n)
{
    while (n > 0) {
        const uint8_t *amp = memchr(p, '&', n);
        size_t pair = amp ? (size_t)(amp - p) : n;
        const uint8_t *eq = memchr(p, '=', pair);
        if (eq && eq > p && (size_t)(eq - p) + 1 < pair) { /* empty names and values are skipped */
            char key[KEY_MAX], value[VALUE_MAX];
            url_decode(p, (size_t)(eq - p), key, sizeof key);
            url_decode(eq + 1, pair - (size_t)(eq - p) - 1, value, sizeof value);
            apply_param(st, key, value);
        }
        p += pair + (amp != NULL);
        n -= pair + (amp != NULL);
    }
}

/* ---- JSON form ---------------------------------------------------------- */

struct json {
    const uint8_t *p, *end;
    int depth;
    char path[KEY_MAX]; /* dotted member names down to the current value */
    struct osm *st;
};

static void json_ws(struct json *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\r' || *j->p == '\n'))
        j->p++;
}

static void put_utf8(char *out, size_t cap, size_t *o, unsigned cp)
{
    uint8_t b[3];
    size_t n;
    if (cp < 0x80) {
        b[0] = (uint8_t)cp;
        n = 1;
    } else if (cp < 0x800) {
        b[0] = (uint8_t)(0xC0 | cp >> 6);
        b[1] = (uint8_t)(0x80 | (cp & 0x3F));
        n = 2;
    } else {
        b[0] = (uint8_t)(0xE0 | cp >> 12);
        b[1] = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
        b[2] = (uint8_t)(0x80 | (cp & 0x3F));
        n = 3;
    }
    if (*o + n < cap) {
        memcpy(out + *o, b, n);
        *o += n;
    }
}

/* A JSON string at j->p (at its quote) into out[cap], unescaped (cut when longer;
 * \u0000 and lone surrogates become '?'). */
static bool json_string(struct json *j, char *out, size_t cap)
{
    size_t o = 0;
    j->p++;
    while (j->p < j->end && *j->p != '"') {
        uint8_t c = *j->p++;
        unsigned cp = c;
        if (c < 0x20)
            return false;
        if (c == '\\') {
            if (j->p == j->end)
                return false;
            c = *j->p++;
            const char *esc = strchr("\"\\/bfnrtu", c);
            if (!esc || c == '\0')
                return false;
            cp = (unsigned)"\"\\/\b\f\n\r\t"[esc - "\"\\/bfnrtu"];
            if (c == 'u') {
                if (j->end - j->p < 4)
                    return false;
                cp = 0;
                for (int k = 0; k < 4; k++) {
                    int d = hex_digit(*j->p++);
                    if (d < 0)
                        return false;
                    cp = cp << 4 | (unsigned)d;
                }
                if (cp == 0 || (cp >= 0xD800 && cp <= 0xDFFF))
                    cp = '?';
            }
        }
        if (c < 0x80)
            put_utf8(out, cap, &o, cp);
        else if (o + 1 < cap) /* UTF-8 bytes pass through */
            out[o++] = (char)c;
    }
    out[o] = '\0';
    if (j->p == j->end)
        return false;
    j->p++;
    return true;
}

/* A number or literal: the raw token into out[cap]. */
static bool json_token(struct json *j, char *out, size_t cap)
{
    const uint8_t *s = j->p;
    while (j->p < j->end && strchr("0123456789+-.eEtruefalsn", *j->p) && *j->p)
        j->p++;
    size_t n = (size_t)(j->p - s);
    if (n == 0 || n >= cap)
        return false;
    memcpy(out, s, n);
    out[n] = '\0';
    double d;
    return strcmp(out, "true") == 0 || strcmp(out, "false") == 0 || strcmp(out, "null") == 0 ||
           parse_number(out, &d);
}

static bool path_is(const struct json *j, const char *path)
{
    return strcmp(j->path, path) == 0;
}

/* One scalar member: the Traccar Client fields, every other one an attribute
 * named by its path below `location` (extras by their own name). */
static void json_scalar(struct json *j, const char *v, bool is_string)
{
    struct osm *st = j->st;
    struct report *r = st->r;
    double d = 0;
    bool num = !is_string && parse_number(v, &d);
    if (!is_string && strcmp(v, "null") == 0)
        return;
    if (path_is(j, "device_id")) {
        st->bad |= !set_id(r, v);
    } else if (path_is(j, "location.timestamp")) {
        st->bad |= !is_string || !parse_timestamp(v, &r->fix_time, &r->time_is_local);
    } else if (path_is(j, "location.coords.latitude")) {
        st->has_lat = num;
        st->lat = d;
        st->bad |= !num;
    } else if (path_is(j, "location.coords.longitude")) {
        st->has_lon = num;
        st->lon = d;
        st->bad |= !num;
    } else if (path_is(j, "location.coords.speed") && num) {
        if (d >= 0) /* -1: not known */
            r->speed_kmh = d * MPS_KMH;
    } else if (path_is(j, "location.coords.heading") && num) {
        if (d >= 0)
            r->course = d;
    } else if (path_is(j, "location.coords.altitude") && num) {
        r->has_altitude = true;
        r->altitude_m = d;
    } else if (path_is(j, "location.coords.accuracy")) {
        report_attr_set(r, "accuracy", "%s", v);
    } else if (path_is(j, "location.odometer") && num && d >= 0) {
        r->odometer_km = d / 1000;
    } else if (path_is(j, "location.battery.level") && num) {
        set_battery(r, d * 100);
    } else if (path_is(j, "location.battery.is_charging") && !is_string &&
               (strcmp(v, "true") == 0 || strcmp(v, "false") == 0)) {
        r->charging = v[0] == 't';
    } else if (path_is(j, "location.is_moving")) {
        report_attr_set(r, "motion", "%s", v);
    } else if (path_is(j, "location.activity.type")) {
        report_attr_set(r, "activity", "%s", v);
    } else if (path_is(j, "location.alarm") || path_is(j, "location.extras.alarm")) {
        if (!report_attr_get(r, "alarm"))
            add_alarms(r, v);
    } else if (strncmp(j->path, "location.extras.", 16) == 0) {
        report_attr_set(r, j->path + 16, "%s", v);
    } else {
        const char *key = strncmp(j->path, "location.", 9) == 0 ? j->path + 9 : j->path;
        report_attr_set(r, key, "%s", v);
    }
}

static bool json_value(struct json *j);

/* Members of an object at j->p (at its brace), each under path.<name>. */
static bool json_object(struct json *j)
{
    size_t base = strlen(j->path);
    j->p++;
    json_ws(j);
    if (j->p < j->end && *j->p == '}') {
        j->p++;
        return true;
    }
    for (;;) {
        char name[KEY_MAX];
        json_ws(j);
        if (j->p == j->end || *j->p != '"' || !json_string(j, name, sizeof name))
            return false;
        json_ws(j);
        if (j->p == j->end || *j->p != ':')
            return false;
        j->p++;
        snprintf(j->path + base, sizeof j->path - base, "%s%s", base ? "." : "", name);
        if (!json_value(j))
            return false;
        j->path[base] = '\0';
        json_ws(j);
        if (j->p == j->end)
            return false;
        if (*j->p == '}') {
            j->p++;
            return true;
        }
        if (*j->p++ != ',')
            return false;
    }
}

/* An array is kept whole, as its raw text, under its path. */
static bool json_array(struct json *j)
{
    const uint8_t *start = j->p;
    char saved[KEY_MAX];
    memcpy(saved, j->path, sizeof saved);
    j->path[0] = '\0'; /* elements are not report fields */
    struct osm *st = j->st;
    j->p++;
    json_ws(j);
    bool ok = true;
    if (j->p < j->end && *j->p == ']') {
        j->p++;
    } else {
        for (;;) {
            j->st = NULL;
            ok = json_value(j);
            j->st = st;
            json_ws(j);
            if (!ok || j->p == j->end) {
                ok = false;
                break;
            }
            if (*j->p == ']') {
                j->p++;
                break;
            }
            if (*j->p++ != ',') {
                ok = false;
                break;
            }
        }
    }
    memcpy(j->path, saved, sizeof saved);
    if (ok && st && j->path[0])
        report_attr_set(st->r, j->path, "%.*s", (int)(j->p - start), (const char *)start);
    return ok;
}

static bool json_value(struct json *j)
{
    json_ws(j);
    if (j->p == j->end || ++j->depth > JSON_DEPTH_MAX)
        return false;
    bool ok;
    char v[VALUE_MAX];
    if (*j->p == '{') {
        ok = json_object(j);
    } else if (*j->p == '[') {
        ok = json_array(j);
    } else {
        bool is_string = *j->p == '"';
        ok = is_string ? json_string(j, v, sizeof v) : json_token(j, v, sizeof v);
        if (ok && j->st && j->path[0])
            json_scalar(j, v, is_string);
    }
    j->depth--;
    return ok;
}

static bool decode_json(struct osm *st, const uint8_t *p, size_t n)
{
    struct json j = {.p = p, .end = p + n, .st = st};
    json_ws(&j);
    if (j.p == j.end || *j.p != '{' || !json_value(&j))
        return false;
    json_ws(&j);
    return j.p == j.end;
}

/* ---- decode ------------------------------------------------------------- */

static void set_reply(struct proto_reply *reply, const char *text)
{
    reply->len = strlen(text);
    memcpy(reply->buf, text, reply->len);
}

static int osmand_decode(struct proto_ctx *ctx, const uint8_t *f, size_t len, struct report *out,
                         size_t max_out, size_t *n_out, struct proto_reply *reply)
{
    *n_out = 0;
    reply->len = 0;
    if (max_out < 1)
        return ST_ERANGE;
    ptrdiff_t line = request_line(f, len);
    struct http_head h;
    if (line <= 0 || !read_head(f, len, (size_t)line, &h))
        return ST_EMALFORMED;
    struct report *r = &out[0];
    report_init(r, "osmand");
    set_reply(reply, reply_bad); /* replaced once the request proves to be a report */
    snprintf(r->msg_type, sizeof r->msg_type, "%s", f[0] == 'G' ? "GET" : "POST");
    if (h.chunked) {
        *n_out = 1;
        return ST_EUNSUPPORTED;
    }
    if (h.line_bad || h.length_bad || h.head_len + h.body_len != len)
        return ST_EMALFORMED;

    /* The target runs from the method's space to the " HTTP/1.x" tail. */
    size_t mlen = (size_t)method_len(f, len);
    const uint8_t *target = f + mlen, *body = f + h.head_len;
    size_t tlen = (size_t)line - HTTP_TAIL_LEN - mlen;
    const uint8_t *q = memchr(target, '?', tlen);
    size_t qlen = q ? tlen - (size_t)(q - target) - 1 : 0;

    struct osm st = {.r = r};
    if (h.json) {
        snprintf(r->msg_type, sizeof r->msg_type, "json");
        if (!decode_json(&st, body, h.body_len))
            return ST_EMALFORMED;
    } else if (qlen > 0) {
        decode_params(&st, q + 1, qlen);
    } else {
        snprintf(r->msg_type, sizeof r->msg_type, "form");
        decode_params(&st, body, h.body_len);
    }
    if (st.bad || st.has_lat != st.has_lon ||
        (st.has_lat && (st.lat < -90 || st.lat > 90 || st.lon < -180 || st.lon > 180)))
        return ST_EMALFORMED;
    if (!r->device_id[0]) {
        *n_out = 1;
        return ST_EUNSUPPORTED; /* no device named: 400, as the protocol page says */
    }
    (void)ctx; /* no timestamp: fix_time stays 0 and the server uses the receive time */
    if (st.has_lat) {
        r->has_position = true;
        r->lat = st.lat;
        r->lon = st.lon;
        r->valid = st.valid_set ? r->valid : true;
        r->fix = REPORT_FIX_GNSS;
    }
    set_reply(reply, reply_ok);
    *n_out = 1;
    return 0;
}

const struct proto_ops proto_osmand = {
    .name = "osmand", .detect = osmand_detect, .frame = osmand_frame, .decode = osmand_decode};
