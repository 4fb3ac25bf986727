/* wialon.c — Wialon IPS 1.1 and 2.0 over TCP, the text protocol trackers and
 * retranslating platforms speak (docs/protocols/wialon.md).
 *
 * Every packet is one line `#TYPE#message\r\n`. A connection starts with a
 * login (`#L#imei;password`, v2.0 `#L#2.0;imei;password;crc16`); the data
 * packets after it carry no identifier. Version 2.0 ends the L, SD, D and M
 * messages with a CRC-16 (ARC: polynomial 0xA001 reflected, initial 0) of the
 * message text up to and including the `;` before it, and a black box packet
 * with `|crc16`. Every packet type the device sends is answered with `#A<TYPE>#code`.
 * Pure code: no allocation, no logging; every read is bounded by the length passed in.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../core/err.h"
#include "../core/timeutil.h"
#include "proto.h"

#define WIALON_V2 2     /* ctx->dialect after a 2.0 login: messages carry a CRC */
#define TYPE_MAX 3      /* longest packet type ("AIT" is a server answer) */
#define FIELDS_MAX 20   /* `;` fields of one record (16 + CRC; more is not IPS) */
#define SHORT_FIELDS 10 /* SD: date … sats */
#define LONG_FIELDS 16  /* D: … hdop, inputs, outputs, adc, ibutton, params */
#define NUM_MAX 40      /* longest number text read */

/* Answer codes of the specification (the text after `#ASD#` / `#AD#`). */
enum code {
    CODE_STRUCTURE = -1,
    CODE_TIME = 0,
    CODE_OK = 1,
    CODE_COORDS = 10,
    CODE_MOTION = 11, /* speed, course or altitude */
    CODE_SATS = 12,   /* satellites or HDOP */
    CODE_IO = 13,     /* inputs or outputs */
    CODE_ADC = 14,
    CODE_PARAMS = 15,
};

struct field {
    const char *p;
    size_t n;
};

/* ---- small readers ------------------------------------------------------ */

static uint16_t crc16_arc(const char *p, size_t n)
{
    uint16_t crc = 0;
    for (size_t i = 0; i < n; i++) {
        crc ^= (uint8_t)p[i];
        for (int k = 0; k < 8; k++)
            crc = (uint16_t)(crc & 1 ? crc >> 1 ^ 0xA001 : crc >> 1);
    }
    return crc;
}

static int hex_digit(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* A CRC field: 1..4 hex digits, optionally after "0x" (seen in the wild). */
static bool read_crc(struct field f, uint16_t *crc)
{
    if (f.n > 2 && f.p[0] == '0' && (f.p[1] == 'x' || f.p[1] == 'X')) {
        f.p += 2;
        f.n -= 2;
    }
    if (f.n == 0 || f.n > 4)
        return false;
    unsigned v = 0;
    for (size_t i = 0; i < f.n; i++) {
        int d = hex_digit(f.p[i]);
        if (d < 0)
            return false;
        v = v << 4 | (unsigned)d;
    }
    *crc = (uint16_t)v;
    return true;
}

/* True when the CRC field `crc` matches the text from `start` up to the field. */
static bool crc_matches(const char *start, struct field crc)
{
    uint16_t want;
    return read_crc(crc, &want) && crc16_arc(start, (size_t)(crc.p - start)) == want;
}

/* "NA" and "" both mean "not available". */
static bool is_na(struct field f)
{
    return f.n == 0 || (f.n == 2 && f.p[0] == 'N' && f.p[1] == 'A');
}

static bool all_digits(struct field f)
{
    for (size_t i = 0; i < f.n; i++)
        if (f.p[i] < '0' || f.p[i] > '9')
            return false;
    return f.n > 0;
}

static int two_digits(const char *p)
{
    return (p[0] - '0') * 10 + (p[1] - '0');
}

/* A plain decimal number (sign, digits, point, exponent). */
static bool read_number(struct field f, double *v)
{
    char s[NUM_MAX];
    if (f.n == 0 || f.n >= sizeof s)
        return false;
    memcpy(s, f.p, f.n);
    s[f.n] = '\0';
    if (strspn(s, "0123456789+-.eE") != f.n)
        return false;
    char *end;
    *v = strtod(s, &end);
    return *end == '\0' && *v > -1e15 && *v < 1e15;
}

static bool read_long(struct field f, long long *v)
{
    bool neg = f.n > 0 && f.p[0] == '-';
    struct field d = {f.p + neg, f.n - neg};
    if (!all_digits(d) || d.n > 18)
        return false;
    *v = 0;
    for (size_t i = 0; i < d.n; i++)
        *v = *v * 10 + (d.p[i] - '0');
    if (neg)
        *v = -*v;
    return true;
}

/* Split s[0..n) at `sep` into at most max fields; the count, or max + 1 when there are more. */
static size_t split(const char *s, size_t n, char sep, struct field *f, size_t max)
{
    size_t count = 0, start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && s[i] != sep)
            continue;
        if (count == max)
            return max + 1;
        f[count++] = (struct field){s + start, i - start};
        start = i + 1;
    }
    return count;
}

/* DDMM.MMMM (DDDMM.MMMM) with its hemisphere letter → signed degrees. */
static bool read_coordinate(struct field v, struct field hemi, const char *pos_neg, double limit,
                            double *deg)
{
    double raw;
    if (hemi.n != 1 || !strchr(pos_neg, hemi.p[0]) || hemi.p[0] == '\0' || !read_number(v, &raw) ||
        raw < 0)
        return false;
    double whole = (double)(long long)(raw / 100);
    double minutes = raw - whole * 100;
    *deg = whole + minutes / 60;
    if (minutes >= 60 || *deg > limit)
        return false;
    if (hemi.p[0] == pos_neg[1])
        *deg = -*deg;
    return true;
}

/* ---- detect / frame ----------------------------------------------------- */

/* Packet types a device sends and this decoder serves. */
static const char *const device_types[] = {"L", "SD", "D", "P", "B", "M"};
#define N_DEVICE_TYPES (sizeof device_types / sizeof device_types[0])

/* Length of the `#TYPE#` header at buf (1..3 capital letters), 0 while too
 * short to tell, -1 when there is none. */
static ptrdiff_t header_len(const uint8_t *buf, size_t len)
{
    if (len == 0)
        return 0;
    if (buf[0] != '#')
        return -1;
    for (size_t i = 1; i <= TYPE_MAX + 1; i++) {
        if (i == len)
            return 0;
        if (buf[i] == '#')
            return i > 1 ? (ptrdiff_t)i + 1 : -1;
        if (buf[i] < 'A' || buf[i] > 'Z')
            return -1;
    }
    return -1;
}

/* End of the line at buf (index of its '\n'); 0 while incomplete; -1 when it
 * holds a control byte or outgrows the frame bound. */
static ptrdiff_t line_end(const uint8_t *buf, size_t len)
{
    size_t limit = len < PROTO_FRAME_MAX ? len : PROTO_FRAME_MAX;
    for (size_t i = 0; i < limit; i++) {
        if (buf[i] == '\n')
            return (ptrdiff_t)i;
        if (buf[i] < 0x20 && !(buf[i] == '\r' && (i + 1 == len || buf[i + 1] == '\n')))
            return -1;
    }
    return len >= PROTO_FRAME_MAX ? -1 : 0;
}

/* A first frame: a served device packet type, then a whole clean line. */
static int wialon_detect(const uint8_t *buf, size_t len)
{
    ptrdiff_t h = header_len(buf, len);
    if (h <= 0)
        return h == 0 ? PROTO_DETECT_MAYBE : PROTO_DETECT_NO;
    bool served = false;
    for (size_t i = 0; i < N_DEVICE_TYPES; i++)
        served |= strlen(device_types[i]) == (size_t)h - 2 &&
                  memcmp(device_types[i], buf + 1, (size_t)h - 2) == 0;
    if (!served)
        return PROTO_DETECT_NO;
    ptrdiff_t end = line_end(buf, len);
    if (end == 0)
        return PROTO_DETECT_MAYBE;
    return end > 0 && buf[end - 1] == '\r' ? PROTO_DETECT_YES : PROTO_DETECT_NO;
}

static ptrdiff_t resync(const uint8_t *buf, size_t len)
{
    size_t i = 1;
    while (i < len && buf[i] != '#')
        i++;
    return -(ptrdiff_t)i;
}

static ptrdiff_t wialon_frame(const uint8_t *buf, size_t len)
{
    ptrdiff_t h = header_len(buf, len);
    if (h < 0)
        return resync(buf, len);
    ptrdiff_t end = line_end(buf, len);
    if (h == 0 || end == 0)
        return 0;
    return end > 0 ? end + 1 : resync(buf, len);
}

/* ---- report helpers ----------------------------------------------------- */

static void start_report(struct report *r, const char *type)
{
    report_init(r, "wialon");
    snprintf(r->msg_type, sizeof r->msg_type, "%s", type);
}

/* Attribute from a field, skipped when not available. */
static void attr_field(struct report *r, const char *key, struct field f)
{
    if (!is_na(f))
        report_attr_set(r, key, "%.*s", (int)f.n, f.p);
}

/* `NAME:TYPE:VALUE,…` (type 1 integer, 2 real, 3 text) → attributes named as
 * sent; SOS and pwr_int also fill the report. */
static int read_params(struct report *r, struct field all)
{
    struct field p[PROTO_FRAME_MAX / 6];
    size_t n = split(all.p, all.n, ',', p, sizeof p / sizeof p[0]);
    for (size_t i = 0; i < n; i++) {
        if (p[i].n == 0)
            continue; /* a stray comma */
        const char *c1 = memchr(p[i].p, ':', p[i].n);
        size_t klen = c1 ? (size_t)(c1 - p[i].p) : 0;
        if (klen == 0 || klen >= 64 || p[i].n < klen + 3 || c1[1] < '1' || c1[1] > '3' ||
            c1[2] != ':')
            return CODE_PARAMS;
        struct field v = {c1 + 3, p[i].n - klen - 3};
        double d = 0;
        long long l = 0;
        if ((c1[1] == '1' && !read_long(v, &l)) || (c1[1] == '2' && !read_number(v, &d)))
            return CODE_PARAMS;
        char key[64];
        memcpy(key, p[i].p, klen);
        key[klen] = '\0';
        report_attr_set(r, key, "%.*s", (int)v.n, v.p);
        if (strcasecmp(key, "SOS") == 0 && c1[1] == '1' && l != 0)
            report_add_event(r, REPORT_EV_SOS);
        else if (strcasecmp(key, "pwr_int") == 0 && c1[1] == '2' && d >= 0)
            r->battery_v = d;
    }
    return CODE_OK;
}

/* `adc1,adc2,…` → adc1, adc2, … attributes. */
static int read_adc(struct report *r, struct field all)
{
    struct field a[16];
    size_t n = split(all.p, all.n, ',', a, 16);
    if (n > 16)
        return CODE_ADC;
    for (size_t i = 0; i < n; i++) {
        double d;
        if (!read_number(a[i], &d))
            return CODE_ADC;
        char key[8];
        snprintf(key, sizeof key, "adc%zu", i + 1);
        attr_field(r, key, a[i]);
    }
    return CODE_OK;
}

static int read_time(struct field date, struct field time, struct report *r)
{
    if (is_na(date) && is_na(time))
        return CODE_OK; /* the server's time: fix_time 0 = the receive time */
    /* hhmmss may carry a fraction (IPS 2.1: hhmmss.nnnnnnnnn); it is dropped */
    struct field hms = {time.p, time.n > 6 && time.p[6] == '.' ? 6 : time.n};
    if (date.n != 6 || hms.n != 6 || !all_digits(date) || !all_digits(hms))
        return CODE_TIME;
    r->fix_time =
        st_time_from_utc(2000 + two_digits(date.p + 4), two_digits(date.p + 2), two_digits(date.p),
                         two_digits(hms.p), two_digits(hms.p + 2), two_digits(hms.p + 4));
    return r->fix_time < 0 ? CODE_TIME : CODE_OK;
}

/* Optional number: NA keeps *v; otherwise it must be a number. */
static bool optional_number(struct field f, double *v, bool *present)
{
    *present = !is_na(f);
    return !*present || read_number(f, v);
}

/* One SD-shaped (10 fields) or D-shaped (16 fields) record into r; the answer code. */
static int read_record(const struct field *f, size_t n, struct report *r)
{
    if (n != SHORT_FIELDS && n != LONG_FIELDS)
        return CODE_STRUCTURE;
    int code = read_time(f[0], f[1], r);
    if (code != CODE_OK)
        return code;
    bool na_pos = is_na(f[2]) && is_na(f[3]) && is_na(f[4]) && is_na(f[5]);
    if (!na_pos) {
        if (!read_coordinate(f[2], f[3], "NS", 90, &r->lat) ||
            !read_coordinate(f[4], f[5], "EW", 180, &r->lon))
            return CODE_COORDS;
        r->has_position = true;
        r->fix = REPORT_FIX_GNSS;
    }
    bool has_speed, has_course;
    if (!optional_number(f[6], &r->speed_kmh, &has_speed) ||
        !optional_number(f[7], &r->course, &has_course) ||
        !optional_number(f[8], &r->altitude_m, &r->has_altitude) || r->speed_kmh < 0 ||
        r->course < 0 || r->course > 360)
        return CODE_MOTION;
    long long sats = -1;
    if (!is_na(f[9]) && (!read_long(f[9], &sats) || sats < 0 || sats > 99))
        return CODE_SATS;
    r->satellites = (int16_t)sats;
    /* IPS has no validity flag: a fix from 3 satellites on counts as valid (as Traccar). */
    r->valid = r->has_position && sats >= 3;
    if (n == SHORT_FIELDS)
        return CODE_OK;

    double hdop;
    bool has_hdop;
    long long io;
    if (!optional_number(f[10], &hdop, &has_hdop))
        return CODE_SATS;
    if ((!is_na(f[11]) && !read_long(f[11], &io)) || (!is_na(f[12]) && !read_long(f[12], &io)))
        return CODE_IO;
    attr_field(r, "hdop", f[10]);
    attr_field(r, "inputs", f[11]);
    attr_field(r, "outputs", f[12]);
    if (!is_na(f[13]) && (code = read_adc(r, f[13])) != CODE_OK)
        return code;
    attr_field(r, "ibutton", f[14]);
    return is_na(f[15]) ? CODE_OK : read_params(r, f[15]);
}

/* ---- packets ------------------------------------------------------------ */

/* `#L#imei;password` or `#L#2.0;imei;password;crc16`. The password is not kept. */
static int decode_login(struct proto_ctx *ctx, struct field body, struct report *r,
                        struct proto_reply *reply)
{
    struct field f[5];
    size_t n = split(body.p, body.n, ';', f, 4);
    bool v2 = n == 4 && memchr(f[0].p, '.', f[0].n) != NULL;
    struct field id = v2 ? f[1] : f[0];
    if ((n != 2 && !v2) || id.n == 0 || id.n >= sizeof r->device_id) {
        proto_reply_printf(reply, "#AL#0\r\n");
        return ST_EMALFORMED;
    }
    memcpy(r->device_id, id.p, id.n);
    r->device_id[id.n] = '\0';
    if (v2 && !crc_matches(body.p, f[3])) {
        proto_reply_printf(reply, "#AL#10\r\n");
        return ST_ECHECKSUM;
    }
    ctx->dialect = v2 ? WIALON_V2 : 0;
    report_attr_set(r, "ips_version", "%.*s", v2 ? (int)f[0].n : 3, v2 ? f[0].p : "1.1");
    proto_reply_printf(reply, "#AL#1\r\n");
    return 0;
}

/* SD / D: one record, v2.0 with a CRC as the extra last field. */
static int decode_data(const char *type, struct field body, struct report *r,
                       struct proto_reply *reply)
{
    bool is_short = type[0] == 'S';
    size_t want = is_short ? SHORT_FIELDS : LONG_FIELDS;
    struct field f[FIELDS_MAX];
    size_t n = split(body.p, body.n, ';', f, FIELDS_MAX);
    int code = CODE_STRUCTURE;
    if (n == want + 1) {
        if (!crc_matches(body.p, f[want])) {
            proto_reply_printf(reply, "#A%s#%d\r\n", type, is_short ? 13 : 16);
            return ST_ECHECKSUM;
        }
        n--;
    }
    if (n == want)
        code = read_record(f, n, r);
    proto_reply_printf(reply, "#A%s#%d\r\n", type, code);
    return code == CODE_OK ? 0 : ST_EMALFORMED;
}

/* `#B#record|record|…[|crc16]`: one report per record read; the answer counts them. */
static int decode_blackbox(struct field body, struct report *out, size_t max_out, size_t *n_out,
                           struct proto_reply *reply)
{
    struct field rec[PROTO_MAX_REPORTS + 2];
    size_t n = split(body.p, body.n, '|', rec, PROTO_MAX_REPORTS + 1);
    uint16_t crc;
    if (n > PROTO_MAX_REPORTS + 1 || n == 0) {
        proto_reply_printf(reply, "#AB#\r\n");
        return ST_EMALFORMED;
    }
    if (n > 1 && !memchr(rec[n - 1].p, ';', rec[n - 1].n) && read_crc(rec[n - 1], &crc)) {
        if (!crc_matches(body.p, rec[n - 1])) {
            proto_reply_printf(reply, "#AB#\r\n");
            return ST_ECHECKSUM;
        }
        n--;
    }
    size_t stored = 0;
    for (size_t i = 0; i < n && stored < max_out; i++) {
        struct field f[FIELDS_MAX];
        size_t nf = split(rec[i].p, rec[i].n, ';', f, FIELDS_MAX);
        struct report *r = &out[stored];
        start_report(r, "B");
        if (read_record(f, nf, r) != CODE_OK)
            continue;
        report_attr_set(r, "archive", "true");
        stored++;
    }
    *n_out = stored;
    proto_reply_printf(reply, "#AB#%zu\r\n", stored);
    return stored ? 0 : ST_EMALFORMED;
}

/* `#M#text` (v2.0 `#M#text;crc16`): a message from the driver. */
static int decode_message(const struct proto_ctx *ctx, struct field body, struct report *r,
                          struct proto_reply *reply)
{
    const char *semi = NULL;
    for (size_t i = body.n; i > 0 && !semi; i--)
        if (body.p[i - 1] == ';')
            semi = body.p + i - 1;
    struct field crc = semi ? (struct field){semi + 1, body.n - (size_t)(semi + 1 - body.p)}
                            : (struct field){NULL, 0};
    if (semi && crc_matches(body.p, crc)) {
        body.n = (size_t)(semi - body.p);
    } else if (ctx->dialect == WIALON_V2) {
        proto_reply_printf(reply, "#AM#01\r\n");
        return ST_ECHECKSUM;
    }
    report_attr_set(r, "message", "%.*s", (int)body.n, body.p);
    proto_reply_printf(reply, "#AM#1\r\n");
    return 0;
}

static int wialon_decode(struct proto_ctx *ctx, const uint8_t *frame, size_t len,
                         struct report *out, size_t max_out, size_t *n_out,
                         struct proto_reply *reply)
{
    *n_out = 0;
    reply->len = 0;
    if (max_out < 1)
        return ST_ERANGE;
    ptrdiff_t h = header_len(frame, len);
    if (h <= 0 || len > PROTO_FRAME_MAX || frame[len - 1] != '\n')
        return ST_EMALFORMED;
    char type[TYPE_MAX + 1];
    memcpy(type, frame + 1, (size_t)h - 2);
    type[h - 2] = '\0';
    struct field body = {(const char *)frame + h, len - (size_t)h - 1};
    if (body.n > 0 && body.p[body.n - 1] == '\r')
        body.n--;
    struct report *r = &out[0];
    start_report(r, type);

    int rc;
    if (strcmp(type, "B") == 0)
        return decode_blackbox(body, out, max_out, n_out, reply);
    if (strcmp(type, "L") == 0) {
        rc = decode_login(ctx, body, r, reply);
    } else if (strcmp(type, "SD") == 0 || strcmp(type, "D") == 0) {
        rc = decode_data(type, body, r, reply);
    } else if (strcmp(type, "P") == 0) {
        rc = body.n == 0 ? 0 : ST_EMALFORMED;
        proto_reply_printf(reply, "#AP#\r\n");
    } else if (strcmp(type, "M") == 0) {
        rc = decode_message(ctx, body, r, reply);
    } else {
        rc = ST_EUNSUPPORTED; /* photos, tachograph files: kept raw, not answered */
    }
    *n_out = rc == 0 || rc == ST_EUNSUPPORTED;
    return rc;
}

/* ---- downlink ----------------------------------------------------------- */

/* The one server message of the specification: `#M#text` to the driver's
 * display (with `;crc16` on a 2.0 connection). */
static int wialon_encode(struct proto_ctx *ctx, const struct proto_command *cmd, uint8_t *out,
                         size_t cap, size_t *len)
{
    *len = 0;
    if (cmd->type != PROTO_CMD_CUSTOM)
        return ST_EUNSUPPORTED;
    if (!cmd->text || !cmd->text[0] || strpbrk(cmd->text, "\r\n"))
        return ST_EMALFORMED;
    char crc[8] = "";
    if (ctx && ctx->dialect == WIALON_V2) {
        char with_semi[PROTO_FRAME_MAX];
        int m = snprintf(with_semi, sizeof with_semi, "%s;", cmd->text);
        if (m < 0 || (size_t)m >= sizeof with_semi)
            return ST_ERANGE;
        snprintf(crc, sizeof crc, ";%04X", crc16_arc(with_semi, (size_t)m));
    }
    int n = snprintf((char *)out, cap, "#M#%s%s\r\n", cmd->text, crc);
    if (n < 0 || (size_t)n >= cap)
        return ST_ERANGE;
    *len = (size_t)n;
    return 0;
}

const struct proto_ops proto_wialon = {.name = "wialon",
                                       .detect = wialon_detect,
                                       .frame = wialon_frame,
                                       .decode = wialon_decode,
                                       .encode_command = wialon_encode};
