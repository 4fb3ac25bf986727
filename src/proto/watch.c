/* watch.c — the "Watch" text protocol of 3G/4G kids' watches (SeTracker / Beesure):
 * `[VV*<id>*LLLL*<content>]`, VV a two-character vendor (SG, 3G, CS, ZJ, …), LLLL the
 * content length in 4 hex digits; some firmwares put a 4-hex-digit index before it
 * (`[ZJ*<id>*IIII*LLLL*<content>]`). Decisions and sources: docs/protocols/watch.md.
 *
 * Frames end at the first `]`: binary payloads (voice, images) escape `[`, `]`, `,`, `*`
 * and 0x7D as 0x7D 0x01..0x05, so a raw `]` only closes a frame. The length field is
 * often wrong on real devices (public samples are off by 3 or 8): it is reported, not
 * trusted.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/err.h"
#include "../core/timeutil.h"
#include "proto.h"

#define OPEN '['
#define CLOSE ']'
#define SEP '*'
#define VENDOR_LEN 2
#define ID_MIN 6
#define ID_MAX 20
#define HEX4 4
#define CONTENT_MAX 0xFFFF
#define FIELDS_MAX 160 /* position fields: 16 fixed + cells and Wi-Fi triples */
#define NUMBER_TEXT 32

/* ctx->dialect: index into vendors[] (0 = default "CS"), bit 7 = frames carry an index. */
#define DIALECT_INDEX 0x80u
#define DIALECT_VENDOR_MASK 0x7Fu

static const char *const vendors[] = {"CS", "SG", "3G", "ZJ"};

/* Position status word (protocol appendix 1): bits 0–4 states, 16–22 alarms. */
#define ST_LOW_BATTERY (1u << 0)
#define ST_FENCE_OUT (1u << 1)
#define ST_FENCE_IN (1u << 2)
#define ST_WEAR (1u << 3)
#define ST_MOTION (1u << 4)
#define ST_ALARM_MASK 0x007F0000u

static bool is_digit(uint8_t c)
{
    return c >= '0' && c <= '9';
}

static bool is_hex(uint8_t c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static bool is_alpha(uint8_t c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Value of a hex digit (the caller checked is_hex). */
static unsigned hex_value(uint8_t c)
{
    return (unsigned)(is_digit(c) ? c - '0' : (c | 0x20) - 'a' + 10);
}

static unsigned hex4(const uint8_t *b)
{
    unsigned v = 0;
    for (int i = 0; i < HEX4; i++)
        v = v * 16 + hex_value(b[i]);
    return v;
}

/* What the header says; pointers into the frame. */
struct head {
    const uint8_t *vendor;
    const uint8_t *id;
    size_t id_len;
    const uint8_t *index; /* NULL when absent, else HEX4 bytes */
    unsigned declared;    /* the length field */
    size_t content;       /* offset of the content */
};

/* Scan buf for `[VV*digits*HHHH*[HHHH*]` followed by a letter (the keyword). Returns 1 when
 * the header is complete, 0 when the bytes so far fit one, -1 when they cannot be one. */
static int head_scan(const uint8_t *buf, size_t len, struct head *h)
{
    size_t i = 0;
    if (len == 0)
        return 0;
    if (buf[i++] != OPEN)
        return -1;
    for (; i < 1 + VENDOR_LEN; i++) {
        if (i >= len)
            return 0;
        if (!is_alpha(buf[i]) && !is_digit(buf[i]))
            return -1;
    }
    if (i >= len)
        return 0;
    if (buf[i++] != SEP)
        return -1;
    h->vendor = buf + 1;
    h->id = buf + i;
    while (i < len && is_digit(buf[i]))
        i++;
    h->id_len = (size_t)(buf + i - h->id);
    if (h->id_len > ID_MAX)
        return -1;
    if (i >= len)
        return 0;
    if (buf[i++] != SEP || h->id_len < ID_MIN)
        return -1;
    /* One or two 4-hex-digit fields, then the keyword's first letter. */
    h->index = NULL;
    for (int field = 0;; field++) {
        size_t start = i;
        for (; i < start + HEX4; i++) {
            if (i >= len)
                return 0;
            if (!is_hex(buf[i]))
                break;
        }
        if (i == start + HEX4 && i < len && buf[i] == SEP) {
            if (field == 2)
                return -1;
            if (field == 1)
                h->index = buf + start - HEX4 - 1;
            h->declared = hex4(buf + start);
            i++;
            continue;
        }
        if (i == start + HEX4 && i >= len)
            return 0;
        /* Not a hex field: this is the content, which must follow at least one field. */
        if (field == 0)
            return -1;
        h->content = start;
        return is_alpha(buf[start]) ? 1 : -1;
    }
}

static ptrdiff_t skip_to_open(const uint8_t *buf, size_t len)
{
    size_t i = 1;
    while (i < len && buf[i] != OPEN)
        i++;
    return -(ptrdiff_t)i;
}

/* ---------------------------------------------------------------------------------------
 * Content fields.
 */

struct field {
    const char *s;
    size_t len;
};

/* Split text[0..len) at commas into f[0..max); returns the count (extra fields dropped). */
static size_t split_fields(const char *text, size_t len, struct field *f, size_t max)
{
    size_t n = 0, start = 0;
    for (size_t i = 0; i <= len && n < max; i++) {
        if (i == len || text[i] == ',') {
            f[n].s = text + start;
            f[n].len = i - start;
            n++;
            start = i + 1;
        }
    }
    return n;
}

static bool field_is(const struct field *f, const char *word)
{
    return f->len == strlen(word) && memcmp(f->s, word, f->len) == 0;
}

/* Unsigned decimal of 1..9 digits. */
static bool field_uint(const struct field *f, unsigned long *v)
{
    if (f->len == 0 || f->len > 9)
        return false;
    *v = 0;
    for (size_t i = 0; i < f->len; i++) {
        if (!is_digit((uint8_t)f->s[i]))
            return false;
        *v = *v * 10 + (unsigned long)(f->s[i] - '0');
    }
    return true;
}

/* Decimal number, optional sign and leading spaces (devices pad longitudes with one). */
static bool field_number(const struct field *f, double *v)
{
    char text[NUMBER_TEXT];
    if (f->len == 0 || f->len >= sizeof text)
        return false;
    memcpy(text, f->s, f->len);
    text[f->len] = '\0';
    for (size_t i = 0; i < f->len; i++)
        if (!is_digit((uint8_t)text[i]) && !strchr(" +-.", text[i]))
            return false;
    char *end;
    *v = strtod(text, &end);
    return end != text && *end == '\0';
}

static bool field_hex(const struct field *f, uint32_t *v)
{
    if (f->len == 0 || f->len > 8)
        return false;
    *v = 0;
    for (size_t i = 0; i < f->len; i++) {
        uint8_t c = (uint8_t)f->s[i];
        if (!is_hex(c))
            return false;
        *v = *v * 16 + hex_value(c);
    }
    return true;
}

/* DDMMYY + HHMMSS (UTC) → epoch seconds; -1 when not six digits each or not a date. */
static int64_t field_time(const struct field *date, const struct field *time)
{
    int v[6];
    if (date->len != 6 || time->len != 6)
        return -1;
    for (int i = 0; i < 6; i++) {
        const struct field *f = i < 3 ? date : time;
        const char *p = f->s + 2 * (i % 3);
        if (!is_digit((uint8_t)p[0]) || !is_digit((uint8_t)p[1]))
            return -1;
        v[i] = (p[0] - '0') * 10 + (p[1] - '0');
    }
    return st_time_from_utc(2000 + v[2], v[1], v[0], v[3], v[4], v[5]);
}

static void field_attr(struct report *r, const char *key, const struct field *f)
{
    report_attr_set(r, key, "%.*s", (int)f->len, f->s);
}

/* ---------------------------------------------------------------------------------------
 * Messages.
 */

struct status_alarm {
    uint8_t bit, event;
    const char *reason;
};

static const struct status_alarm status_alarms[] = {
    {16, REPORT_EV_SOS, ""},
    {17, REPORT_EV_LOW_BATTERY, ""},
    {18, REPORT_EV_GEOFENCE_EXIT, ""},
    {19, REPORT_EV_GEOFENCE_ENTER, ""},
    {20, REPORT_EV_TAMPER, "removed"},
    {21, REPORT_EV_ALARM, "fall_down"},
    {22, REPORT_EV_ALARM, "heart_rate"},
};

static void add_event(struct report *r, uint8_t type, const char *reason)
{
    struct report_event *e = report_add_event(r, (enum report_event_type)type);
    if (e)
        snprintf(e->reason, sizeof e->reason, "%s", reason);
}

static void decode_status_word(struct report *r, uint32_t status, bool alarm_message)
{
    report_attr_set(r, "status", "0x%08x", status);
    report_attr_set(r, "low_battery", "%s", status & ST_LOW_BATTERY ? "true" : "false");
    report_attr_set(r, "fence_out", "%s", status & ST_FENCE_OUT ? "true" : "false");
    report_attr_set(r, "fence_in", "%s", status & ST_FENCE_IN ? "true" : "false");
    report_attr_set(r, "wear_bit", "%u", (status & ST_WEAR) != 0);
    report_attr_set(r, "motion", "%s", status & ST_MOTION ? "true" : "false");
    for (size_t i = 0; i < sizeof status_alarms / sizeof status_alarms[0]; i++)
        if (status & (1u << status_alarms[i].bit))
            add_event(r, status_alarms[i].event, status_alarms[i].reason);
    /* An AL record names no alarm bit: still an alarm, of unknown kind. */
    if (alarm_message && !(status & ST_ALARM_MASK))
        add_event(r, REPORT_EV_ALARM, "unspecified");
}

/* Base stations and Wi-Fi after the status word: count, timing advance, MCC, MNC, count ×
 * (LAC, cell id, signal), then Wi-Fi count × (name, MAC, signal), then accuracy. With no
 * cell, firmwares disagree on what follows: only the count is read then. */
static void decode_network(struct report *r, const struct field *f, size_t n)
{
    unsigned long cells, mcc, mnc, lac, cid, wifi;
    if (n < 1 || !field_uint(&f[0], &cells))
        return;
    report_attr_set(r, "cell_count", "%lu", cells);
    if (cells == 0 || n < 4 + 3 * cells)
        return;
    field_attr(r, "timing_advance", &f[1]);
    if (field_uint(&f[2], &mcc) && field_uint(&f[3], &mnc) && field_uint(&f[4], &lac) &&
        field_uint(&f[5], &cid) && mcc <= 0xFFFF && mnc <= 0xFFFF) {
        r->has_cell = true;
        r->cell.mcc = (uint16_t)mcc;
        r->cell.mnc = (uint16_t)mnc;
        r->cell.lac = (uint32_t)lac;
        r->cell.cid = (uint32_t)cid;
        report_attr_set(r, "mcc", "%lu", mcc);
        report_attr_set(r, "mnc", "%lu", mnc);
        report_attr_set(r, "lac", "%lu", lac);
        report_attr_set(r, "cid", "%lu", cid);
        field_attr(r, "cell_signal", &f[6]);
    }
    size_t at = 4 + 3 * cells;
    if (at >= n || !field_uint(&f[at], &wifi))
        return;
    report_attr_set(r, "wifi_count", "%lu", wifi);
    if (wifi < n && at + 1 + 3 * wifi < n)
        field_attr(r, "accuracy", &f[at + 1 + 3 * wifi]);
}

/* UD, UD2, UD_LTE, AL, …: date, time, A/V, lat, N/S, lon, E/W, speed km/h, course,
 * altitude, satellites, GSM signal, battery %, steps, rolls, status (hex), network. */
static int decode_position(struct report *r, const char *args, size_t len, bool alarm)
{
    struct field f[FIELDS_MAX];
    size_t n = split_fields(args, len, f, FIELDS_MAX);
    double lat, lon, speed, course, altitude;
    unsigned long sats, gsm, battery, steps, rolls;
    uint32_t status;
    if (n < 16)
        return ST_ETRUNCATED;
    int64_t t = field_time(&f[0], &f[1]);
    bool ns_ok = field_is(&f[4], "N") || field_is(&f[4], "S") || f[4].len == 0;
    bool ew_ok = field_is(&f[6], "E") || field_is(&f[6], "W") || f[6].len == 0;
    if (t < 0 || !(field_is(&f[2], "A") || field_is(&f[2], "V")) || !ns_ok || !ew_ok ||
        !field_number(&f[3], &lat) || !field_number(&f[5], &lon) || !field_number(&f[7], &speed) ||
        !field_number(&f[8], &course) || !field_number(&f[9], &altitude) ||
        !field_uint(&f[10], &sats) || !field_uint(&f[11], &gsm) || !field_uint(&f[12], &battery) ||
        !field_uint(&f[13], &steps) || !field_uint(&f[14], &rolls) || !field_hex(&f[15], &status))
        return ST_EMALFORMED;
    r->fix_time = t;
    r->has_position = true;
    r->valid = field_is(&f[2], "A");
    r->fix = r->valid ? REPORT_FIX_GNSS : REPORT_FIX_NONE;
    /* The sign is kept; S / W make the value negative whatever its sign (devices do both). */
    r->lat = field_is(&f[4], "S") ? -(lat < 0 ? -lat : lat) : lat;
    r->lon = field_is(&f[6], "W") ? -(lon < 0 ? -lon : lon) : lon;
    r->speed_kmh = speed;
    r->course = course;
    r->has_altitude = true;
    r->altitude_m = altitude;
    r->satellites = (int16_t)(sats > 0x7FFF ? 0x7FFF : sats);
    r->gsm_signal = (int16_t)(gsm > 0x7FFF ? 0x7FFF : gsm);
    if (battery <= 100)
        r->battery_pct = (int16_t)battery;
    report_attr_set(r, "gsm_signal", "%lu", gsm);
    report_attr_set(r, "steps", "%lu", steps);
    report_attr_set(r, "rolls", "%lu", rolls);
    decode_status_word(r, status, alarm);
    decode_network(r, f + 16, n - 16);
    return 0;
}

/* LK or LK,steps,rolls,battery. */
static void decode_link(struct report *r, const char *args, size_t len)
{
    struct field f[4];
    unsigned long steps, rolls, battery;
    size_t n = split_fields(args, len, f, 4);
    if (n == 3 && field_uint(&f[0], &steps) && field_uint(&f[1], &rolls) &&
        field_uint(&f[2], &battery)) {
        report_attr_set(r, "steps", "%lu", steps);
        report_attr_set(r, "rolls", "%lu", rolls);
        if (battery <= 100)
            r->battery_pct = (int16_t)battery;
    } else if (len) {
        report_attr_set(r, "lk_args", "%.*s", (int)len, args);
    }
}

static bool starts_with(const char *s, size_t len, const char *prefix)
{
    size_t pl = strlen(prefix);
    return len >= pl && memcmp(s, prefix, pl) == 0;
}

/* `[vendor*id*[index*]LLLL*content]` into out; returns the length, 0 when it does not fit. */
static size_t frame_build(const char *vendor, const char *id, size_t id_len, const char *index,
                          const char *content, size_t content_len, uint8_t *out, size_t cap)
{
    char head[64];
    int hl = snprintf(head, sizeof head, "[%s*%.*s*%s%s%04zX*", vendor, (int)id_len, id,
                      index ? index : "", index ? "*" : "", content_len);
    if (hl < 0 || (size_t)hl >= sizeof head || content_len > CONTENT_MAX ||
        (size_t)hl + content_len + 1 > cap)
        return 0;
    memcpy(out, head, (size_t)hl);
    memcpy(out + hl, content, content_len);
    out[(size_t)hl + content_len] = CLOSE;
    return (size_t)hl + content_len + 1;
}

static void reply_with(const struct head *h, const char *content, struct proto_reply *reply)
{
    char vendor[VENDOR_LEN + 1], index[HEX4 + 1];
    memcpy(vendor, h->vendor, VENDOR_LEN);
    vendor[VENDOR_LEN] = '\0';
    if (h->index) {
        memcpy(index, h->index, HEX4);
        index[HEX4] = '\0';
    }
    reply->len = frame_build(vendor, (const char *)h->id, h->id_len, h->index ? index : NULL,
                             content, strlen(content), reply->buf, sizeof reply->buf);
}

/* Remember the vendor (and index style) for commands on this connection. */
static void remember_dialect(struct proto_ctx *ctx, const struct head *h)
{
    uint8_t d = 0;
    for (uint8_t i = 0; i < sizeof vendors / sizeof vendors[0]; i++)
        if (memcmp(vendors[i], h->vendor, VENDOR_LEN) == 0)
            d = i;
    ctx->dialect = (uint8_t)(d | (h->index ? DIALECT_INDEX : 0));
}

/* ---------------------------------------------------------------------------------------
 * proto_ops.
 */

static int detect(const uint8_t *buf, size_t len)
{
    struct head h;
    int rc = head_scan(buf, len, &h);
    return rc > 0 ? PROTO_DETECT_YES : rc == 0 ? PROTO_DETECT_MAYBE : PROTO_DETECT_NO;
}

static ptrdiff_t frame(const uint8_t *buf, size_t len)
{
    struct head h;
    if (len == 0)
        return 0;
    int rc = head_scan(buf, len, &h);
    if (rc < 0)
        return skip_to_open(buf, len);
    if (rc == 0)
        return 0;
    size_t limit = len < PROTO_FRAME_MAX ? len : PROTO_FRAME_MAX;
    for (size_t i = h.content; i < limit; i++) {
        if (buf[i] == CLOSE)
            return (ptrdiff_t)(i + 1);
        if (buf[i] == OPEN) /* a new frame before this one closed: this one is lost */
            return -(ptrdiff_t)i;
    }
    return len >= PROTO_FRAME_MAX ? skip_to_open(buf, len) : 0;
}

static int decode(struct proto_ctx *ctx, const uint8_t *buf, size_t len, struct report *out,
                  size_t max_out, size_t *n_out, struct proto_reply *reply)
{
    struct head h;
    *n_out = 0;
    reply->len = 0;
    if (max_out == 0 || len < 2 || len > PROTO_FRAME_MAX || head_scan(buf, len, &h) <= 0 ||
        buf[len - 1] != CLOSE)
        return ST_EMALFORMED;
    const char *content = (const char *)buf + h.content;
    size_t content_len = len - 1 - h.content;
    if (memchr(content, CLOSE, content_len) || memchr(content, OPEN, content_len))
        return ST_EMALFORMED;
    size_t kw_len = 0;
    while (kw_len < content_len && content[kw_len] != ',')
        kw_len++;
    const char *args = kw_len < content_len ? content + kw_len + 1 : content + content_len;
    size_t args_len = kw_len < content_len ? content_len - kw_len - 1 : 0;

    struct report *r = &out[0];
    report_init(r, proto_watch.name);
    snprintf(r->device_id, sizeof r->device_id, "%.*s", (int)h.id_len, (const char *)h.id);
    snprintf(r->msg_type, sizeof r->msg_type, "%.*s", (int)kw_len, content);
    report_attr_set(r, "vendor", "%.*s", VENDOR_LEN, (const char *)h.vendor);
    if (h.index)
        report_attr_set(r, "index", "%.*s", HEX4, (const char *)h.index);
    report_attr_set(r, "length", "%u", h.declared);
    report_attr_set(r, "length_ok", "%s", h.declared == content_len ? "true" : "false");
    remember_dialect(ctx, &h);

    int rc = 0;
    bool alarm = starts_with(content, kw_len, "AL");
    if (starts_with(content, kw_len, "UD") || alarm ||
        (kw_len == 2 && starts_with(content, 2, "WT"))) {
        rc = decode_position(r, args, args_len, alarm);
        if (starts_with(content, kw_len, "UD2"))
            report_attr_set(r, "archive", "true");
        if (rc == 0 && alarm)
            reply_with(&h, "AL", reply);
    } else if (kw_len == 2 && starts_with(content, kw_len, "LK")) {
        decode_link(r, args, args_len);
        reply_with(&h, "LK", reply);
    } else if ((kw_len == 3 && starts_with(content, kw_len, "TKQ")) ||
               (kw_len == 4 && starts_with(content, kw_len, "TKQ2"))) {
        reply_with(&h, r->msg_type, reply);
    } else {
        if (args_len)
            report_attr_set(r, "args", "%.*s", (int)args_len, args);
        rc = ST_EUNSUPPORTED;
    }
    if (rc < 0 && rc != ST_EUNSUPPORTED)
        return rc;
    *n_out = 1;
    return rc;
}

/* Platform commands of the SeTracker protocol: the command text is the whole content. */
static int encode_command(struct proto_ctx *ctx, const struct proto_command *cmd, uint8_t *out,
                          size_t cap, size_t *len)
{
    char text[32];
    const char *content = text;
    *len = 0;
    switch (cmd->type) {
    case PROTO_CMD_CUSTOM: content = cmd->text; break;
    case PROTO_CMD_POSITION: content = "CR"; break;
    case PROTO_CMD_REBOOT: content = "RESET"; break;
    case PROTO_CMD_INTERVAL:
        if (cmd->number <= 0 || cmd->number > 86400)
            return ST_EMALFORMED;
        snprintf(text, sizeof text, "UPLOAD,%ld", cmd->number);
        break;
    default: return ST_EUNSUPPORTED;
    }
    const char *id = cmd->device_id;
    size_t id_len = id ? strlen(id) : 0;
    if (!content || !*content || strpbrk(content, "[]") || id_len < ID_MIN || id_len > ID_MAX ||
        strspn(id, "0123456789") != id_len)
        return ST_EMALFORMED;
    unsigned vendor = ctx->dialect & DIALECT_VENDOR_MASK;
    if (vendor >= sizeof vendors / sizeof vendors[0])
        vendor = 0;
    /* Index-style firmwares get an index field too (value not documented; Traccar sends 0001). */
    size_t n =
        frame_build(vendors[vendor], id, id_len, ctx->dialect & DIALECT_INDEX ? "0001" : NULL,
                    content, strlen(content), out, cap);
    if (n == 0)
        return ST_ERANGE;
    *len = n;
    return 0;
}

const struct proto_ops proto_watch = {
    .name = "watch",
    .detect = detect,
    .frame = frame,
    .decode = decode,
    .encode_command = encode_command,
};
