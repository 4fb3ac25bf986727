/* jt600.c — Jointech JT600 family: JT600 vehicle trackers and JT701/JT701D
 * container e-locks (docs/protocols/jt600.md, spec /work/shared/protocols/jointech.md §2).
 *
 * Two frame kinds share one connection:
 *   `$` binary: 5-byte BCD terminal ID, then a short (JT600) or long (JT701/D)
 *       header; the whole frame is `length field + 10` bytes, its last byte is
 *       the record serial.
 *   `(` text: comma-separated ASCII up to the first raw `)`; 0x28/0x29/0x2C/0x3D
 *       inside travel as 0x3D + (byte ^ 0x3D) so binary can be embedded (WLNET,5).
 * Pure code: no allocation, no logging; every read is bounded by the length passed in.
 */
#include "jt600.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "../core/err.h"
#include "../core/hex.h"
#include "../core/timeutil.h"
#include "jointech_block.h"

#define LONG_HEADER 10     /* `$`, ID (5), protocol version, type, length (2) */
#define SHORT_HEADER 9     /* `$`, ID (5), type, length (2) */
#define LONG_COMMON 34     /* record bytes every long variant carries */
#define LONG_EXT_FULL 17   /* JT701D extension (length 52) */
#define LONG_EXT_FENCE 4   /* fence ID + 3 undocumented bytes (length 39) */
#define SHORT_RECORD 27    /* location block + 10-byte tail */
#define ESC 0x3D           /* text escape byte */
#define TEXT_FIELDS_MAX 48 /* further commas stay inside the last field */
#define MPH_KMH 1.609344

/* ---- small readers ------------------------------------------------------ */

static unsigned be16(const uint8_t *p)
{
    return (unsigned)p[0] << 8 | p[1];
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static bool is_digit(int c)
{
    return c >= '0' && c <= '9';
}

static int hex_digit(char c)
{
    return is_digit(c)            ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* Skip garbage: everything before the next `$` or `(` (at least one byte). */
static ptrdiff_t resync(const uint8_t *buf, size_t len)
{
    size_t i = 1;
    while (i < len && buf[i] != '$' && buf[i] != '(')
        i++;
    return -(ptrdiff_t)i;
}

/* ---- binary layout (shared by detect, frame and decode) ------------------ */

enum layout { LAYOUT_NEED, LAYOUT_BAD, LAYOUT_OK };

/* Classify the `$` header in buf[0..len): BCD terminal ID, then the layout by
 * the byte-8 rule (spec §2.2) and a sanity check of the length field. */
static enum layout binary_layout(const uint8_t *buf, size_t len, size_t *total, bool *is_long)
{
    for (size_t i = 1; i < 6 && i < len; i++)
        if (jointech_bcd(buf[i]) < 0)
            return LAYOUT_BAD;
    if (len < LONG_HEADER)
        return LAYOUT_NEED;
    unsigned length;
    if (buf[8] == 0) {
        length = be16(buf + 8);
        *is_long = true;
        if (length < LONG_COMMON + 1)
            return LAYOUT_BAD;
    } else {
        unsigned version = buf[6] >> 4;
        length = be16(buf + 7);
        *is_long = false;
        if (version < 1 || version > 3 || length % SHORT_RECORD != 0)
            return LAYOUT_BAD;
    }
    *total = (size_t)length + 10;
    return *total <= PROTO_FRAME_MAX ? LAYOUT_OK : LAYOUT_BAD;
}

/* ---- detect / frame ----------------------------------------------------- */

static int jt600_detect(const uint8_t *buf, size_t len)
{
    if (len == 0)
        return PROTO_DETECT_MAYBE;
    if (buf[0] == '$') {
        size_t total;
        bool is_long;
        enum layout l = binary_layout(buf, len, &total, &is_long);
        return l == LAYOUT_OK     ? PROTO_DETECT_YES
               : l == LAYOUT_NEED ? PROTO_DETECT_MAYBE
                                  : PROTO_DETECT_NO;
    }
    if (buf[0] != '(')
        return PROTO_DETECT_NO;
    /* `(` + 10 digits + `,` is ours; 12 digits is the JT709A / JT808 text dialect. */
    size_t digits = 0;
    for (size_t i = 1; i < len; i++) {
        if (is_digit(buf[i])) {
            if (++digits > 12)
                return PROTO_DETECT_NO;
        } else {
            return buf[i] == ',' && digits == 10 ? PROTO_DETECT_YES : PROTO_DETECT_NO;
        }
    }
    return PROTO_DETECT_MAYBE;
}

static ptrdiff_t jt600_frame(const uint8_t *buf, size_t len)
{
    if (len == 0)
        return 0;
    if (buf[0] == '$') {
        size_t total = 0;
        bool is_long;
        switch (binary_layout(buf, len, &total, &is_long)) {
        case LAYOUT_NEED: return 0;
        case LAYOUT_BAD: return resync(buf, len);
        case LAYOUT_OK: return len >= total ? (ptrdiff_t)total : 0;
        }
    }
    if (buf[0] == '(') {
        size_t limit = len < PROTO_FRAME_MAX ? len : PROTO_FRAME_MAX;
        const uint8_t *end = memchr(buf, ')', limit);
        if (end)
            return end - buf + 1;
        return len >= PROTO_FRAME_MAX ? resync(buf, len) : 0;
    }
    return resync(buf, len);
}

/* ---- report helpers ----------------------------------------------------- */

/* Device ID without leading zeros (both paths, so `$` and `(` frames of one
 * device name it the same way); "0" stays "0". */
static void set_device_id(struct report *r, const char *digits, size_t n)
{
    while (n > 1 && digits[0] == '0') {
        digits++;
        n--;
    }
    if (n >= sizeof r->device_id)
        n = sizeof r->device_id - 1;
    memcpy(r->device_id, digits, n);
    r->device_id[n] = '\0';
}

static void add_event(struct report *r, enum report_event_type type, enum report_source source,
                      int granted, int fence_id, const char *card, const char *reason)
{
    struct report_event *e = report_add_event(r, type);
    if (!e)
        return;
    e->source = (uint8_t)source;
    e->granted = (int8_t)granted;
    e->fence_id = (int16_t)fence_id;
    snprintf(e->card, sizeof e->card, "%s", card ? card : "");
    snprintf(e->reason, sizeof e->reason, "%s", reason ? reason : "");
}

/* Join the names of the set bits of `bits` with `|` ("none" when no bit is set). */
static void bit_names(char *out, size_t cap, uint32_t bits, const char *const *names, size_t n)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (!(bits >> i & 1) || !names[i])
            continue;
        int w = snprintf(out + used, cap - used, "%s%s", used ? "|" : "", names[i]);
        if (w < 0 || (size_t)w >= cap - used)
            break;
        used += (size_t)w;
    }
    if (!used)
        snprintf(out, cap, "none");
}

static void set_cell(struct report *r, unsigned mcc, unsigned mnc, uint32_t lac, uint32_t cid)
{
    r->has_cell = true;
    r->cell.mcc = (uint16_t)mcc;
    r->cell.mnc = (uint16_t)mnc;
    r->cell.lac = lac;
    r->cell.cid = cid;
}

/* ---- `$` binary frames -------------------------------------------------- */

/* Long-format status word (spec §2.5), bit 0 first. */
static const char *const status_names[16] = {
    "lbs_fix",
    "fence_enter_alarm",
    "fence_exit_alarm",
    "rope_cut_alarm",
    "vibration_alarm",
    "ack_required",
    "rope_inserted",
    "motor_locked",
    "long_unlocked_alarm",
    "wrong_password_alarm",
    "illegal_rfid_alarm",
    "low_battery_alarm",
    "back_cover_open_alarm",
    "back_cover_closed",
    "motor_stuck_alarm",
    "reserved_bit15",
};

#define STATUS_LBS 0x0001u
#define STATUS_ACK 0x0020u
#define STATUS_ROPE_IN 0x0040u
#define STATUS_LOCKED 0x0080u
#define STATUS_COVER_OPEN 0x1000u
#define STATUS_COVER_CLOSED 0x2000u
#define STATUS_ALARMS 0x5F1Eu /* every alarm bit of status_events[] */

/* Alarm bits of the status word and the event each one raises; the encoder
 * reads the same table backwards. */
static const struct status_event {
    uint16_t mask;
    uint8_t type, source;
    int8_t granted;
    bool fence;
    const char *reason;
} status_events[] = {
    {0x0002, REPORT_EV_GEOFENCE_ENTER, REPORT_SRC_NONE, -1, true, ""},
    {0x0004, REPORT_EV_GEOFENCE_EXIT, REPORT_SRC_NONE, -1, true, ""},
    {0x0008, REPORT_EV_TAMPER, REPORT_SRC_ROPE, -1, false, "rope_cut"},
    {0x0010, REPORT_EV_VIBRATION, REPORT_SRC_NONE, -1, false, ""},
    {0x0100, REPORT_EV_LONG_UNLOCKED, REPORT_SRC_NONE, -1, false, ""},
    {0x0200, REPORT_EV_WRONG_PASSWORD, REPORT_SRC_NONE, -1, false, ""},
    {0x0400, REPORT_EV_RFID_ACCESS, REPORT_SRC_RFID, 0, false, "illegal_card"},
    {0x0800, REPORT_EV_LOW_BATTERY, REPORT_SRC_NONE, -1, false, ""},
    {0x1000, REPORT_EV_TAMPER, REPORT_SRC_BACK_COVER, -1, false, "back_cover_open"},
    {0x4000, REPORT_EV_MOTOR_FAULT, REPORT_SRC_NONE, -1, false, ""},
};
#define N_STATUS_EVENTS (sizeof status_events / sizeof status_events[0])

/* Attributes every record of a `$` frame carries (each report stands alone). */
static void binary_common(struct report *r, const uint8_t *f, bool is_long, unsigned type_byte,
                          unsigned length, size_t records, unsigned index)
{
    char id[11];
    set_device_id(r, id, st_hex_encode(f + 1, 5, id, sizeof id));
    snprintf(r->msg_type, sizeof r->msg_type, "%s", is_long ? "long" : "short");
    report_attr_set(r, "kind", "binary");
    report_attr_set(r, "format", "%s", r->msg_type);
    report_attr_set(r, "type_byte", "0x%02x", type_byte);
    report_attr_set(r, "length_field", "%u", length);
    report_attr_set(r, "records", "%zu", records);
    report_attr_set(r, "index", "%u", index);
}

static int decode_block(const uint8_t *b, struct report *r)
{
    int rc = jointech_block_decode(b, r);
    if (rc == 0)
        report_attr_set(r, "flag_bit3", "%u", (unsigned)(b[14] >> 3 & 1));
    return rc;
}

/* Bytes after the GSM signal, chosen by their count; returns the fence alarm
 * ID (1..10) or -1. */
static int long_extension(const uint8_t *x, size_t n, struct report *r, uint32_t cid_low,
                          uint32_t lac)
{
    if (n == LONG_EXT_FULL) {
        unsigned mnc_high = x[2], cid_high = be16(x + 12), mcc = be16(x + 14), mnc_low = x[16];
        report_attr_set(r, "fence_id", "%u", x[0]);
        report_attr_set(r, "ext_status", "0x%02x", x[1]);
        report_attr_set(r, "wake_source", "%u", x[1] & 15u);
        report_attr_set(r, "mnc_high", "0x%02x", mnc_high);
        report_attr_hex(r, "ext_reserved", x + 3, 1);
        report_attr_hex(r, "imei_field", x + 4, 8);
        report_attr_set(r, "cid_high16", "%u", cid_high);
        report_attr_set(r, "mcc", "%u", mcc);
        report_attr_set(r, "mnc_low", "%u", mnc_low);
        /* 0x0F = firmware before 2021-12-24: the MNC is one byte */
        unsigned mnc = mnc_high == 0x0F ? mnc_low : mnc_high << 8 | mnc_low;
        set_cell(r, mcc, mnc, lac, (uint32_t)cid_high << 16 | cid_low);
    } else if (n == LONG_EXT_FENCE) {
        report_attr_set(r, "fence_id", "%u", x[0]);
        report_attr_hex(r, "ext_raw", x + 1, 3); /* layout not public */
    } else if (n > 0) {
        report_attr_hex(r, "ext_raw", x, n);
        return -1;
    }
    return n > 0 && x[0] >= 1 && x[0] <= 10 ? x[0] : -1;
}

static int decode_long(const uint8_t *f, size_t len, struct report *r, struct proto_reply *reply)
{
    unsigned version = f[6], type_byte = f[7], length = be16(f + 8), serial = f[len - 1];
    const uint8_t *rec = f + LONG_HEADER;
    report_init(r, "jt600");
    binary_common(r, f, true, type_byte, length, 1, serial);
    report_attr_set(r, "proto_ver", "0x%02x", version);
    int rc = decode_block(rec, r);
    if (rc < 0)
        return rc;

    unsigned status = be16(rec + 26), battery = rec[28], gsm = rec[33];
    uint32_t cid = be16(rec + 29), lac = be16(rec + 31);
    r->odometer_km = be32(rec + 17);
    r->satellites = rec[21];
    report_attr_hex(r, "vehicle_id", rec + 22, 4);
    report_attr_set(r, "status", "0x%04x", status);
    report_attr_set(r, "battery_raw", "%u", battery);
    if (battery == 0xFF) { /* charging: the level is not reported */
        r->charging = 1;
    } else {
        r->charging = 0;
        r->battery_pct = (int16_t)battery;
    }
    report_attr_set(r, "cid", "%u", (unsigned)cid);
    report_attr_set(r, "lac", "%u", (unsigned)lac);
    report_attr_set(r, "gsm_signal", "%u", gsm);
    r->gsm_signal = (int16_t)gsm;
    if (cid || lac)
        set_cell(r, 0, 0, lac, cid);
    int fence_id = long_extension(rec + LONG_COMMON, length - (LONG_COMMON + 1), r, cid, lac);

    char names[256];
    bit_names(names, sizeof names, status, status_names, 16);
    report_attr_set(r, "status_flags", "%s", names);
    report_attr_set(r, "ack_bit5", "%s", status & STATUS_ACK ? "true" : "false");
    r->lock = status & STATUS_LOCKED ? REPORT_LOCK_LOCKED : REPORT_LOCK_UNLOCKED;
    if (status & STATUS_LBS)
        r->fix = REPORT_FIX_LBS;

    for (size_t i = 0; i < N_STATUS_EVENTS; i++) {
        const struct status_event *se = &status_events[i];
        if (status & se->mask)
            add_event(r, se->type, se->source, se->granted, se->fence ? fence_id : -1, "",
                      se->reason);
    }

    /* JT701D (0x19) wants P69 for every frame; older locks P35 when bit 5 asks. */
    if (version >= 0x19)
        proto_reply_printf(reply, "(P69,0,%u)", serial);
    else if (status & STATUS_ACK)
        proto_reply_printf(reply, "(P35)");
    return 0;
}

/* Short version-2 status bytes → alarm bits named below (Traccar's mapping). */
static const char *const short_alarm_names[] = {"sos", "gpsAntennaCut", "overspeed", "fatigue",
                                                "tow"};

static void short_tail_v2(const uint8_t *t, struct report *r)
{
    const uint8_t *st = t + 1;
    uint32_t alarms = (st[1] & 0x04 ? 1u : 0) | (st[1] & 0x18 ? 2u : 0) | (st[1] & 0x10 ? 4u : 0) |
                      (st[2] & 0x04 ? 8u : 0) | (st[2] & 0x08 ? 16u : 0);
    char names[96];
    report_attr_hex(r, "status_bytes", st, 4);
    report_attr_set(r, "ignition", "%s", st[0] & 0x01 ? "true" : "false");
    report_attr_set(r, "door", "%s", st[0] & 0x40 ? "true" : "false");
    report_attr_set(r, "charge", "%s", st[1] & 0x01 ? "true" : "false");
    report_attr_set(r, "blocked", "%s", st[1] & 0x02 ? "true" : "false");
    bit_names(names, sizeof names, alarms, short_alarm_names, 5);
    report_attr_set(r, "alarms", "%s", names);
    report_attr_set(r, "fuel", "%u", (unsigned)t[0] << 8 | t[9]);
    r->charging = st[1] & 0x01 ? 1 : 0;
    r->odometer_km = be32(t + 5);
    if (alarms & 1)
        add_event(r, REPORT_EV_SOS, REPORT_SRC_NONE, -1, -1, "", "");
    if (alarms & 4)
        add_event(r, REPORT_EV_OVERSPEED, REPORT_SRC_NONE, -1, -1, "", "");
    if (alarms & 2)
        add_event(r, REPORT_EV_ALARM, REPORT_SRC_NONE, -1, -1, "", "gps_antenna_cut");
    if (alarms & 8)
        add_event(r, REPORT_EV_ALARM, REPORT_SRC_NONE, -1, -1, "", "fatigue");
    if (alarms & 16)
        add_event(r, REPORT_EV_ALARM, REPORT_SRC_NONE, -1, -1, "", "tow");
}

/* Version 3: 80 bits MSB first: fuel1, fuel2, fuel3 (12 each), odometer (20), status (24). */
static void short_tail_v3(const uint8_t *t, struct report *r)
{
    uint64_t hi = 0;
    for (int i = 0; i < 7; i++)
        hi = hi << 8 | t[i];
    uint32_t status = (uint32_t)t[7] << 16 | (uint32_t)t[8] << 8 | t[9];
    report_attr_set(r, "fuel1", "%u", (unsigned)(hi >> 44 & 0xFFF));
    report_attr_set(r, "fuel2", "%u", (unsigned)(hi >> 32 & 0xFFF));
    report_attr_set(r, "fuel3", "%u", (unsigned)(hi >> 20 & 0xFFF));
    r->odometer_km = (double)(hi & 0xFFFFF);
    report_attr_set(r, "status", "%u", (unsigned)status);
    report_attr_set(r, "ignition", "%s", status & 1 ? "true" : "false");
}

static void short_tail_v1(const uint8_t *t, struct report *r)
{
    unsigned altitude = be16(t + 3), cid = be16(t + 5), lac = be16(t + 7);
    r->satellites = t[0];
    report_attr_set(r, "power", "%u", t[1]);
    report_attr_set(r, "flags_sensors", "0x%02x", t[2]);
    report_attr_set(r, "altitude", "%u", altitude);
    r->has_altitude = true;
    r->altitude_m = altitude;
    report_attr_set(r, "cid", "%u", cid);
    report_attr_set(r, "lac", "%u", lac);
    report_attr_set(r, "rssi", "%u", t[9]);
    r->gsm_signal = t[9];
    if (cid && lac) /* zeros mean "no cell" on these trackers */
        set_cell(r, 0, 0, lac, cid);
}

static int decode_short(const uint8_t *f, size_t len, struct report *out, size_t max_out,
                        size_t *n_out)
{
    unsigned type_byte = f[6], length = be16(f + 7), serial = f[len - 1];
    size_t records = length / SHORT_RECORD;
    if (records > max_out)
        return ST_ERANGE;
    for (size_t i = 0; i < records; i++) {
        const uint8_t *rec = f + SHORT_HEADER + i * SHORT_RECORD;
        struct report *r = &out[i];
        report_init(r, "jt600");
        binary_common(r, f, false, type_byte, length, records, serial);
        int rc = decode_block(rec, r);
        if (rc < 0)
            return rc;
        switch (type_byte >> 4) {
        case 1: short_tail_v1(rec + 17, r); break;
        case 2: short_tail_v2(rec + 17, r); break;
        default: short_tail_v3(rec + 17, r); break;
        }
    }
    *n_out = records;
    return 0;
}

static int decode_binary(const uint8_t *f, size_t len, struct report *out, size_t max_out,
                         size_t *n_out, struct proto_reply *reply)
{
    size_t total = 0;
    bool is_long = false;
    if (binary_layout(f, len, &total, &is_long) != LAYOUT_OK || total != len)
        return ST_EMALFORMED;
    if (is_long) {
        int rc = decode_long(f, len, out, reply);
        if (rc == 0)
            *n_out = 1;
        return rc;
    }
    return decode_short(f, len, out, max_out, n_out);
}

/* ---- `(` text frames ---------------------------------------------------- */

struct span {
    size_t off, len;
};

/* A text frame without its parentheses, unescaped, split at the raw commas
 * (escaped commas are data). Separators stay in buf so field runs are contiguous. */
struct text {
    uint8_t buf[PROTO_FRAME_MAX];
    size_t len, n;
    struct span f[TEXT_FIELDS_MAX];
    bool bad_escape;
};

static void text_split(const uint8_t *p, size_t n, struct text *t)
{
    t->len = 0;
    t->n = 0;
    t->bad_escape = false;
    t->f[0].off = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = p[i];
        if (c == ',' && t->n + 1 < TEXT_FIELDS_MAX) {
            t->f[t->n].len = t->len - t->f[t->n].off;
            t->f[++t->n].off = t->len + 1;
        } else if (c == ESC) {
            uint8_t d = i + 1 < n ? p[i + 1] : 0xFF;
            if (d == 0x00 || d == 0x11 || d == 0x14 || d == 0x15) {
                c = d ^ ESC;
                i++;
            } else {
                t->bad_escape = true; /* keep both bytes (vendor SDK behaviour) */
            }
        }
        t->buf[t->len++] = c;
    }
    t->f[t->n].len = t->len - t->f[t->n].off;
    t->n++;
}

static const char *fstr(const struct text *t, size_t i)
{
    return (const char *)t->buf + t->f[i].off;
}

static bool field_is(const struct text *t, size_t i, const char *s)
{
    return i < t->n && t->f[i].len == strlen(s) && memcmp(fstr(t, i), s, t->f[i].len) == 0;
}

static bool all_digits(const char *p, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!is_digit(p[i]))
            return false;
    return true;
}

static bool parse_uint(const char *p, size_t n, uint32_t *v)
{
    if (n > 9 || !all_digits(p, n))
        return false;
    uint32_t x = 0;
    for (size_t i = 0; i < n; i++)
        x = x * 10 + (uint32_t)(p[i] - '0');
    *v = x;
    return true;
}

static bool field_uint(const struct text *t, size_t i, uint32_t *v)
{
    return i < t->n && parse_uint(fstr(t, i), t->f[i].len, v);
}

/* [-]digits[.digits], at most 15 digits in all. */
static bool field_decimal(const struct text *t, size_t i, double *v)
{
    if (i >= t->n)
        return false;
    const char *p = fstr(t, i);
    size_t n = t->f[i].len, k = 0, digits = 0;
    bool neg = n > 0 && p[0] == '-', point = false;
    double x = 0, scale = 1;
    for (k = neg ? 1 : 0; k < n; k++) {
        if (p[k] == '.' && !point && digits > 0) {
            point = true;
            continue;
        }
        if (!is_digit(p[k]) || ++digits > 15)
            return false;
        x = x * 10 + (p[k] - '0');
        if (point)
            scale *= 10;
    }
    if (digits == 0 || p[n - 1] == '.')
        return false;
    *v = (neg ? -x : x) / scale;
    return true;
}

static void set_field_attr(struct report *r, const char *key, const struct text *t, size_t i)
{
    report_attr_set(r, key, "%.*s", (int)t->f[i].len, fstr(t, i));
}

/* Fields from..n-1 joined by `sep` (the text's own commas when sep is ','). */
static void set_rest_attr(struct report *r, const char *key, const struct text *t, size_t from,
                          char sep)
{
    char v[1024];
    size_t used = 0;
    for (size_t i = from; i < t->n && used < sizeof v - 1; i++) {
        if (i > from)
            v[used++] = sep;
        size_t n = t->f[i].len < sizeof v - 1 - used ? t->f[i].len : sizeof v - 1 - used;
        memcpy(v + used, fstr(t, i), n);
        used += n;
    }
    v[used] = '\0';
    report_attr_set(r, key, "%s", v);
}

static int two_digits(const char *p)
{
    return (p[0] - '0') * 10 + (p[1] - '0');
}

/* DDMMYY + hhmmss (UTC) → r->fix_time. */
static bool field_time(const struct text *t, size_t i_date, size_t i_time, struct report *r)
{
    if (i_time >= t->n || t->f[i_date].len != 6 || t->f[i_time].len != 6 ||
        !all_digits(fstr(t, i_date), 6) || !all_digits(fstr(t, i_time), 6))
        return false;
    const char *d = fstr(t, i_date), *h = fstr(t, i_time);
    int64_t v = st_time_from_utc(2000 + two_digits(d + 4), two_digits(d + 2), two_digits(d),
                                 two_digits(h), two_digits(h + 2), two_digits(h + 4));
    if (v < 0)
        return false;
    r->fix_time = v;
    return true;
}

/* One coordinate: value field + hemisphere letter; `ddmm` = DDDMM.MMMM form. */
static bool field_coord(const struct text *t, size_t i, char positive, char negative, bool ddmm,
                        double *out)
{
    double v;
    if (i + 1 >= t->n || t->f[i + 1].len != 1 || !field_decimal(t, i, &v) || v < 0)
        return false;
    char h = fstr(t, i + 1)[0];
    if (h != positive && h != negative)
        return false;
    if (ddmm) {
        double deg = (double)(long)(v / 100);
        v = deg + (v - deg * 100) / 60.0;
    }
    *out = h == positive ? v : -v;
    return true;
}

/* `flag` = the letter meaning "valid" (A, T). */
static bool field_valid(const struct text *t, size_t i, char flag, struct report *r)
{
    if (i >= t->n || t->f[i].len != 1)
        return false;
    r->valid = fstr(t, i)[0] == flag;
    r->fix = r->valid ? REPORT_FIX_GNSS : REPORT_FIX_NONE;
    return true;
}

/* P45 unlock verification says "unlocked" (spec §2.8). */
static bool verification_granted(uint32_t src, uint32_t verify)
{
    if (src == 4)
        return verify == 1;
    return (verify >= 1 && verify <= 10) || verify == 98;
}

/* Events of one P45 record (spec §2.8). */
static void p45_events(struct report *r, uint32_t src, uint32_t verify, const char *card,
                       bool pwd_ok)
{
    static const uint8_t password_source[8] = {[4] = REPORT_SRC_REMOTE_STATIC,
                                               [6] = REPORT_SRC_REMOTE_DYNAMIC,
                                               [7] = REPORT_SRC_BLUETOOTH};
    bool granted = verification_granted(src, verify);
    int fence = src != 4 && verify >= 1 && verify <= 10 ? (int)verify : -1;
    const char *refusal = verify == 99 ? "outside_fence" : "refused";
    switch (src) {
    case 1: /* authorised card */
        add_event(r, REPORT_EV_RFID_ACCESS, REPORT_SRC_RFID, granted, fence, card,
                  granted ? "" : refusal);
        if (granted)
            add_event(r, REPORT_EV_UNLOCK, REPORT_SRC_RFID, 1, fence, card, "");
        else
            add_event(r, REPORT_EV_UNLOCK_REFUSED, REPORT_SRC_RFID, 0, -1, card, refusal);
        break;
    case 2:
        add_event(r, REPORT_EV_RFID_ACCESS, REPORT_SRC_RFID, 0, -1, card, "illegal_card");
        break;
    case 3: /* vehicle-ID card binding swipe: neither granted nor refused */
        add_event(r, REPORT_EV_RFID_ACCESS, REPORT_SRC_RFID, -1, -1, card, "binding_card");
        break;
    case 4:
    case 6:
        if (granted)
            add_event(r, REPORT_EV_UNLOCK, password_source[src], 1, fence, "", "");
        else if (!pwd_ok)
            add_event(r, REPORT_EV_WRONG_PASSWORD, password_source[src], 0, -1, "", "");
        else
            add_event(r, REPORT_EV_UNLOCK_REFUSED, password_source[src], 0, -1, "", refusal);
        break;
    case 5: add_event(r, REPORT_EV_LOCK, REPORT_SRC_AUTO, -1, -1, "", ""); break;
    case 7:
        add_event(r, REPORT_EV_BT_ACCESS, REPORT_SRC_BLUETOOTH, pwd_ok, -1, "", "");
        if (pwd_ok)
            add_event(r, REPORT_EV_UNLOCK, REPORT_SRC_BLUETOOTH, 1, -1, "", "");
        else
            add_event(r, REPORT_EV_WRONG_PASSWORD, REPORT_SRC_BLUETOOTH, 0, -1, "", "");
        break;
    default: break;
    }
    for (uint8_t i = 0; i < r->n_events; i++) {
        if (r->events[i].type == REPORT_EV_UNLOCK)
            r->lock = REPORT_LOCK_UNLOCKED;
        else if (r->events[i].type == REPORT_EV_LOCK)
            r->lock = REPORT_LOCK_LOCKED;
    }
}

/* (ID,P45,DDMMYY,hhmmss,lat,N,lon,E,A,speed,course,src,verify,rfid,pwdok,pwdbad,serial
 *  [,mileage,…]) */
static int decode_p45(const struct text *t, struct report *r, struct proto_reply *reply)
{
    double speed, course, mileage;
    uint32_t src, verify, pwd_ok, pwd_bad, serial;
    if (t->n < 17 || !field_time(t, 2, 3, r) || !field_coord(t, 4, 'N', 'S', false, &r->lat) ||
        !field_coord(t, 6, 'E', 'W', false, &r->lon) || !field_valid(t, 8, 'A', r) ||
        !field_decimal(t, 9, &speed) || !field_decimal(t, 10, &course) ||
        !field_uint(t, 11, &src) || !field_uint(t, 12, &verify) || t->f[13].len > 15 ||
        !field_uint(t, 14, &pwd_ok) || !field_uint(t, 15, &pwd_bad) || !field_uint(t, 16, &serial))
        return ST_EMALFORMED;
    r->has_position = true;
    r->speed_kmh = speed; /* km/h per the JT701D manual */
    r->course = course;
    report_attr_set(r, "event_source", "%u", src);
    report_attr_set(r, "unlock_verification", "%u", verify);
    set_field_attr(r, "rfid", t, 13);
    report_attr_set(r, "password_verification", "%u", pwd_ok);
    report_attr_set(r, "wrong_password_count", "%u", pwd_bad);
    report_attr_set(r, "event_serial", "%u", serial);
    if (t->n > 17 && field_decimal(t, 17, &mileage)) {
        set_field_attr(r, "mileage_km", t, 17);
        r->odometer_km = mileage;
    }
    if (t->n > 18)
        set_rest_attr(r, "p45_extra", t, 18, '|');

    char card[16];
    snprintf(card, sizeof card, "%.*s", (int)t->f[13].len, fstr(t, 13));
    p45_events(r, src, verify, all_digits(card, strlen(card)) ? card : "", pwd_ok == 1);
    proto_reply_printf(reply, "(P69,0,%u)", serial);
    return 0;
}

/* (ID,U0x,[alarm,]DDMMYY,hhmmss,T/F,lat,N/S,lon,E/W,speed,course,sats,batt%,bits,
 *  cid,lac,gsm,odometer,serial[,checksum | ,extra…]) */
static int decode_u0x(const struct text *t, bool alarm, struct report *r, struct proto_reply *reply)
{
    size_t b = alarm ? 3 : 2;
    double speed, course, odometer;
    uint32_t sats, battery, cid, lac, gsm, serial, code = 0;
    if (t->n < b + 17 || (alarm && !field_uint(t, 2, &code)) || !field_time(t, b, b + 1, r) ||
        !field_valid(t, b + 2, 'T', r) || !field_coord(t, b + 3, 'N', 'S', false, &r->lat) ||
        !field_coord(t, b + 5, 'E', 'W', false, &r->lon) || !field_decimal(t, b + 7, &speed) ||
        !field_decimal(t, b + 8, &course) || !field_uint(t, b + 9, &sats) || t->f[b + 10].len < 2 ||
        fstr(t, b + 10)[t->f[b + 10].len - 1] != '%' ||
        !parse_uint(fstr(t, b + 10), t->f[b + 10].len - 1, &battery) || t->f[b + 11].len > 32 ||
        !field_uint(t, b + 12, &cid) || !field_uint(t, b + 13, &lac) ||
        !field_uint(t, b + 14, &gsm) || !field_decimal(t, b + 15, &odometer) ||
        !field_uint(t, b + 16, &serial))
        return ST_EMALFORMED;
    uint32_t status = 0;
    const char *bits = fstr(t, b + 11);
    for (size_t i = 0; i < t->f[b + 11].len; i++) {
        if (bits[i] != '0' && bits[i] != '1')
            return ST_EMALFORMED;
        status = status << 1 | (uint32_t)(bits[i] - '0');
    }
    r->has_position = true;
    r->speed_kmh = speed * MPH_KMH; /* unit undocumented; Traccar reads mph */
    r->course = course;
    r->satellites = (int16_t)sats;
    r->battery_pct = (int16_t)battery;
    r->gsm_signal = (int16_t)gsm;
    r->odometer_km = odometer;
    set_cell(r, 0, 0, lac, cid);
    if (alarm) {
        report_attr_set(r, "alarm_code", "%u", code);
        char reason[24];
        snprintf(reason, sizeof reason, "alarm_%u", code);
        add_event(r, REPORT_EV_ALARM, REPORT_SRC_NONE, -1, -1, "", reason);
    }
    set_field_attr(r, "speed_raw", t, b + 7);
    set_field_attr(r, "status_bits", t, b + 11);
    report_attr_set(r, "status", "%u", status);
    report_attr_set(r, "cid", "%u", cid);
    report_attr_set(r, "lac", "%u", lac);
    report_attr_set(r, "gsm", "%u", gsm);
    report_attr_set(r, "serial", "%u", serial);

    size_t rest = b + 17;
    if (!alarm && t->n == rest + 1 && t->f[rest].len == 2) {
        /* XOR of every byte after `(` up to the comma before the checksum */
        uint8_t x = 0;
        for (size_t i = 0; i < t->f[rest].off; i++)
            x ^= t->buf[i];
        char calc[3];
        snprintf(calc, sizeof calc, "%02X", x);
        set_field_attr(r, "checksum", t, rest);
        report_attr_set(r, "checksum_calc", "%s", calc);
        int hi = hex_digit(fstr(t, rest)[0]), lo = hex_digit(fstr(t, rest)[1]);
        report_attr_set(r, "checksum_ok", "%s",
                        hi >= 0 && lo >= 0 && (hi << 4 | lo) == x ? "true" : "false");
    } else if (t->n > rest) {
        set_rest_attr(r, "extra", t, rest, '|');
    }
    proto_reply_printf(reply, alarm ? "(S20)" : "(S39)");
    return 0;
}

/* (ID,W01,lon,E/W,lat,N/S,A/V,DDMMYY,hhmmss,speed,course,power,gps,gsm,alert,…) */
static int decode_w01(const struct text *t, struct report *r)
{
    double speed, course;
    uint32_t power, gps, gsm, alert;
    if (t->n < 15 || !field_coord(t, 2, 'E', 'W', true, &r->lon) ||
        !field_coord(t, 4, 'N', 'S', true, &r->lat) || !field_valid(t, 6, 'A', r) ||
        !field_time(t, 7, 8, r) || !field_decimal(t, 9, &speed) || !field_decimal(t, 10, &course) ||
        !field_uint(t, 11, &power) || !field_uint(t, 12, &gps) || !field_uint(t, 13, &gsm) ||
        !field_uint(t, 14, &alert))
        return ST_EMALFORMED;
    r->has_position = true;
    r->speed_kmh = speed;
    r->course = course;
    r->gsm_signal = (int16_t)gsm;
    report_attr_set(r, "power", "%u", power);
    report_attr_set(r, "gps_signal", "%u", gps);
    report_attr_set(r, "gsm_signal", "%u", gsm);
    report_attr_set(r, "alert_type", "%u", alert);
    char reason[24];
    snprintf(reason, sizeof reason, "alert_%u", alert);
    add_event(r, REPORT_EV_ALARM, REPORT_SRC_NONE, -1, -1, "", reason);
    if (t->n > 15)
        set_rest_attr(r, "extra", t, 15, '|');
    return 0;
}

/* Binary BCD DDMMYYhhmmss at p → ISO text attribute; false when not BCD. */
static bool bcd_time_attr(struct report *r, const char *key, const uint8_t *p)
{
    int v[6];
    for (int i = 0; i < 6; i++)
        if ((v[i] = jointech_bcd(p[i])) < 0)
            return false;
    int64_t t = st_time_from_utc(2000 + v[2], v[1], v[0], v[3], v[4], v[5]);
    if (t < 0)
        return false;
    char iso[ST_ISO_LEN];
    st_time_iso(t, iso);
    report_attr_set(r, key, "%s", iso);
    return true;
}

/* WLNET,5: the master lock's block + one peripheral record (spec §2.9). One
 * report for the master lock; the peripheral's values are sensor_* attributes. */
static int decode_wlnet5(const struct text *t, struct report *r, struct proto_reply *reply)
{
    if (t->n < 7)
        return ST_EMALFORMED;
    const uint8_t *b = t->buf + t->f[6].off;
    size_t n = t->len - t->f[6].off;
    if (n < 34)
        return ST_EMALFORMED;
    int rc = decode_block(b, r);
    if (rc < 0 || !bcd_time_attr(r, "sensor_time", b + 17))
        return ST_EMALFORMED;
    set_field_attr(r, "sub_count_or_flag", t, 5);
    report_attr_set(r, "sensor_id", "%02X%02X%02X%02X%02X", b[23], b[24], b[25], b[26], b[27]);
    report_attr_set(r, "sensor_serial", "%u", b[28]);
    report_attr_set(r, "sensor_voltage_v", "%.2f", be16(b + 29) / 100.0);
    report_attr_set(r, "sensor_battery_pct", "%u", b[31]);
    report_attr_set(r, "sensor_rssi_dbm", "-%u", b[32]);
    report_attr_set(r, "sensor_type", "%u", b[33]);
    const uint8_t *x = b + 34;
    size_t xn = n - 34;
    if (b[33] == 1 && xn >= 6) {
        unsigned temp = be16(x);
        double celsius = (temp & 0x0FFF) / 10.0;
        if (temp != 0xFFFF) /* low 12 bits in 0.1 °C; any top bit = below zero */
            report_attr_set(r, "temp_c", "%.1f", temp & 0xF000 ? -celsius : celsius);
        report_attr_set(r, "humidity_pct", "%u", x[2]);
        report_attr_set(r, "gw_stored_count", "%u", be16(x + 3));
        report_attr_set(r, "gw_status", "%u", x[5]);
    } else if (b[33] >= 4 && b[33] <= 6 && xn >= 7) {
        report_attr_set(r, "event_bits", "0x%04x", be16(x));
        report_attr_set(r, "lock_status_word", "0x%04x", be16(x + 2));
        report_attr_set(r, "sensor_locked", "%s", x[3] & 1 ? "true" : "false");
        report_attr_set(r, "lock_count", "%u", be16(x + 4));
        report_attr_set(r, "gw_status", "%u", x[6]);
    } else if (xn > 0) {
        report_attr_hex(r, "sensor_raw", x, xn);
    }
    proto_reply_printf(reply, "(P69,0,%u)", b[28]);
    return 0;
}

/* Shape B `(ID,F1,SERIAL,WORD,SUB,args…)` (spec §2.7, §4.6). */
static int decode_shape_b(struct proto_ctx *ctx, const struct text *t, struct report *r,
                          struct proto_reply *reply)
{
    if (t->n < 5)
        return ST_EMALFORMED;
    set_field_attr(r, "field1", t, 1);
    set_field_attr(r, "text_serial", t, 2);
    set_field_attr(r, "word", t, 3);
    set_field_attr(r, "sub", t, 4);
    if (field_is(t, 3, "WLNET"))
        return field_is(t, 4, "5") ? decode_wlnet5(t, r, reply) : ST_EUNSUPPORTED;
    if (t->n > 5)
        set_rest_attr(r, "args", t, 5, ',');
    if (field_is(t, 3, "BASE") && field_is(t, 4, "2") && t->n == 6 && field_is(t, 5, "TIME")) {
        int y, mo, d, h, mi, s;
        st_time_to_utc(ctx ? ctx->now : 0, &y, &mo, &d, &h, &mi, &s);
        proto_reply_printf(reply, "(%.*s,%.*s,%.*s,BASE,2,%04d%02d%02d%02d%02d%02d)", (int)t->f[0].len,
                  fstr(t, 0), (int)t->f[1].len, fstr(t, 1), (int)t->f[2].len, fstr(t, 2), y, mo, d,
                  h, mi, s);
    }
    return 0; /* other shape-B texts are answers to commands (ELOCK,3, OTA,9 …) */
}

/* Shape A `(ID,WORD,params…)`. */
static int decode_shape_a(struct proto_ctx *ctx, const struct text *t, size_t w, struct report *r,
                          struct proto_reply *reply)
{
    const char *word = fstr(t, w);
    size_t wl = t->f[w].len;
    if (w != 1)
        return ST_EUNSUPPORTED; /* e.g. (ID,2,U09,…): another layout, not public */
    if (field_is(t, 1, "@JT"))
        return 0; /* heartbeat */
    if (field_is(t, 1, "P45"))
        return decode_p45(t, r, reply);
    if (field_is(t, 1, "U01") || field_is(t, 1, "U02") || field_is(t, 1, "U03"))
        return decode_u0x(t, false, r, reply);
    if (field_is(t, 1, "U06"))
        return decode_u0x(t, true, r, reply);
    if (field_is(t, 1, "W01"))
        return decode_w01(t, r);
    if (wl == 3 && word[0] == 'P' && is_digit(word[1]) && is_digit(word[2])) {
        if (t->n > 2)
            set_field_attr(r, "sub", t, 2);
        if (field_is(t, 1, "P22") && field_is(t, 2, "2") && t->n == 3) {
            int y, mo, d, h, mi, s;
            st_time_to_utc(ctx ? ctx->now : 0, &y, &mo, &d, &h, &mi, &s);
            proto_reply_printf(reply, "(P22,%02d%02d%02d%02d%02d%02d)", d, mo, y % 100, h, mi, s);
        } else if (field_is(t, 1, "P52") && field_is(t, 2, "2") && t->n == 4 && t->f[3].len == 6 &&
                   all_digits(fstr(t, 3), 6)) {
            set_field_attr(r, "dynamic_password", t, 3);
            proto_reply_printf(reply, "(P52,2,%.6s)", fstr(t, 3));
        } else if (t->n > 2) {
            set_rest_attr(r, "answer", t, 2, ','); /* answer to a command (§2.12) */
        }
        return 0;
    }
    return ST_EUNSUPPORTED;
}

int jt600_decode_text(struct proto_ctx *ctx, const uint8_t *frame, size_t len, struct report *out,
                      size_t max_out, size_t *n_out, struct proto_reply *reply)
{
    struct text t;
    *n_out = 0;
    reply->len = 0;
    if (max_out < 1)
        return ST_ERANGE;
    if (len < 2 || len > PROTO_FRAME_MAX || frame[0] != '(')
        return ST_EMALFORMED;
    const uint8_t *end = memchr(frame, ')', len);
    if (!end)
        return ST_EMALFORMED;
    text_split(frame + 1, (size_t)(end - frame) - 1, &t);
    if (t.n < 2 || t.f[0].len > 20 || !all_digits(fstr(&t, 0), t.f[0].len))
        return ST_EMALFORMED;

    /* The message word is the first non-numeric field: field 1 in shape A,
     * field 3 in shape B (the two numbers before it are F1 and the text serial). */
    size_t w = 1;
    while (w < t.n && all_digits(fstr(&t, w), t.f[w].len))
        w++;
    if (w == t.n)
        return ST_EMALFORMED;

    struct report *r = &out[0];
    report_init(r, "jt600");
    set_device_id(r, fstr(&t, 0), t.f[0].len);
    report_attr_set(r, "kind", "text");
    if (w == 3) {
        snprintf(r->msg_type, sizeof r->msg_type, "%.*s,%.*s", (int)t.f[3].len, fstr(&t, 3),
                 t.n > 4 ? (int)t.f[4].len : 0, t.n > 4 ? fstr(&t, 4) : "");
    } else {
        snprintf(r->msg_type, sizeof r->msg_type, "%.*s", (int)t.f[w].len, fstr(&t, w));
    }
    report_attr_set(r, "type", "%s", r->msg_type);
    if (t.bad_escape)
        report_attr_set(r, "bad_escape", "true");

    int rc = w == 3 ? decode_shape_b(ctx, &t, r, reply) : decode_shape_a(ctx, &t, w, r, reply);
    if (rc == 0 || rc == ST_EUNSUPPORTED) {
        *n_out = 1;
    } else {
        reply->len = 0;
    }
    return rc;
}

static int jt600_decode(struct proto_ctx *ctx, const uint8_t *frame, size_t len, struct report *out,
                        size_t max_out, size_t *n_out, struct proto_reply *reply)
{
    *n_out = 0;
    reply->len = 0;
    if (len == 0)
        return ST_EMALFORMED;
    if (frame[0] == '(')
        return jt600_decode_text(ctx, frame, len, out, max_out, n_out, reply);
    if (frame[0] != '$')
        return ST_EMALFORMED;
    if (max_out < 1)
        return ST_ERANGE;
    int rc = decode_binary(frame, len, out, max_out, n_out, reply);
    if (rc < 0) {
        *n_out = 0;
        reply->len = 0;
    }
    return rc;
}

/* ---- downlink commands (§2.12, docs/protocols/jt600.md "Commands") --------- */

/* A command argument: printable ASCII without the frame's parentheses; commas only where
 * the argument is itself a list (card lists, custom texts). */
static bool command_arg_ok(const char *s, bool list)
{
    if (!s || !*s)
        return false;
    for (; *s; s++)
        if (*s < 0x20 || *s > 0x7E || *s == '(' || *s == ')' || (!list && *s == ','))
            return false;
    return true;
}

/* `(WORD[,a1[,a2]])`: the one shape of every command. */
static int command_frame(const char *word, const char *a1, const char *a2, uint8_t *out, size_t cap,
                         size_t *len)
{
    char text[PROTO_FRAME_MAX];
    int n = snprintf(text, sizeof text, "(%s%s%s%s%s)", word, a1 ? "," : "", a1 ? a1 : "",
                     a2 ? "," : "", a2 ? a2 : "");
    if (n < 0 || (size_t)n >= sizeof text || (size_t)n > cap)
        return ST_ERANGE;
    memcpy(out, text, (size_t)n);
    *len = (size_t)n;
    return 0;
}

/* Custom: the command text with or without its parentheses, e.g. `P22,150720164328`. */
static int custom_command(const char *text, uint8_t *out, size_t cap, size_t *len)
{
    char inner[PROTO_FRAME_MAX];
    size_t n = text ? strlen(text) : 0;
    if (n >= 2 && text[0] == '(' && text[n - 1] == ')') {
        n -= 2;
        text++;
    }
    if (n >= sizeof inner)
        return ST_ERANGE;
    memcpy(inner, text ? text : "", n);
    inner[n] = '\0';
    if (!command_arg_ok(inner, true))
        return ST_EMALFORMED;
    return command_frame(inner, NULL, NULL, out, cap, len);
}

/* JT701/JT701D commands from the vendor manual; engine stop/resume are the JT600 vehicle
 * trackers' S07 as Traccar sends it (no vendor text). No position or interval command:
 * P02 answers by SMS and P04 needs a sleep interval the command does not carry. */
static int jt600_encode_command(struct proto_ctx *ctx, const struct proto_command *cmd,
                                uint8_t *out, size_t cap, size_t *len)
{
    (void)ctx; /* texts carry no serial */
    const char *word, *a1 = NULL, *a2 = NULL;
    bool list = false;
    *len = 0;
    switch (cmd->type) {
    case PROTO_CMD_CUSTOM: return custom_command(cmd->text, out, cap, len);
    case PROTO_CMD_UNLOCK:
        word = "P43";
        a1 = cmd->text ? cmd->text : "";
        break;
    case PROTO_CMD_UNLOCK_DYNAMIC:
        word = "P52,3";
        a1 = cmd->text ? cmd->text : "";
        break;
    case PROTO_CMD_SET_PASSWORD: /* new, then old */
        word = "P44";
        a1 = cmd->text ? cmd->text : "";
        a2 = cmd->text2 ? cmd->text2 : "";
        break;
    case PROTO_CMD_CARDS:
        word = "P41";
        a1 = cmd->text ? cmd->text : "";
        list = true;
        break;
    case PROTO_CMD_REBOOT: word = "P15"; break;
    case PROTO_CMD_ENGINE_STOP: word = "S07,0"; break;
    case PROTO_CMD_ENGINE_RESUME: word = "S07,1"; break;
    default: return ST_EUNSUPPORTED;
    }
    if ((a1 && !command_arg_ok(a1, list)) || (a2 && !command_arg_ok(a2, false)))
        return ST_EMALFORMED;
    return command_frame(word, a1, a2, out, cap, len);
}

const struct proto_ops proto_jt600 = {
    .name = "jt600",
    .detect = jt600_detect,
    .frame = jt600_frame,
    .decode = jt600_decode,
    .encode_command = jt600_encode_command,
};

/* ---- encoders (device simulator, tests) --------------------------------- */

/* r->device_id as 10 digits, left-padded with zeros (the decoder strips them). */
static bool padded_id(const struct report *r, char id[11])
{
    size_t n = strlen(r->device_id);
    if (n == 0 || n > 10 || !all_digits(r->device_id, n))
        return false;
    memset(id, '0', 10 - n);
    memcpy(id + 10 - n, r->device_id, n);
    id[10] = '\0';
    return true;
}

static void put16(uint8_t *p, unsigned v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static bool event_matches(const struct report_event *e, const struct status_event *se)
{
    if (e->type != se->type)
        return false;
    if (se->reason[0] && strcmp(e->reason, se->reason) != 0)
        return false;
    return e->type != REPORT_EV_RFID_ACCESS || e->granted == 0;
}

ptrdiff_t jt600_encode_long(const struct report *r, uint8_t serial, uint8_t *out, size_t cap)
{
    const size_t total = LONG_HEADER + LONG_COMMON + LONG_EXT_FULL + 1;
    char id[11];
    if (!padded_id(r, id))
        return ST_EMALFORMED;
    if (cap < total)
        return ST_ERANGE;
    memset(out, 0, total);
    out[0] = '$';
    for (int i = 0; i < 5; i++)
        out[1 + i] = (uint8_t)((id[2 * i] - '0') << 4 | (id[2 * i + 1] - '0'));
    out[6] = 0x19;
    put16(out + 8, (unsigned)(total - 10));

    uint8_t *rec = out + LONG_HEADER;
    jointech_block_encode(r, rec);
    uint32_t km = r->odometer_km > 0 && r->odometer_km < 4e9 ? (uint32_t)r->odometer_km : 0;
    for (int i = 0; i < 4; i++)
        rec[17 + i] = (uint8_t)(km >> (24 - 8 * i));
    rec[21] = (uint8_t)(r->satellites > 0 ? r->satellites : 0);

    unsigned status = STATUS_ACK | STATUS_COVER_CLOSED, fence = 0;
    if (r->lock == REPORT_LOCK_LOCKED)
        status |= STATUS_LOCKED | STATUS_ROPE_IN;
    if (r->fix == REPORT_FIX_LBS)
        status |= STATUS_LBS;
    for (uint8_t e = 0; e < r->n_events; e++) {
        for (size_t i = 0; i < N_STATUS_EVENTS; i++) {
            if (!event_matches(&r->events[e], &status_events[i]))
                continue;
            status |= status_events[i].mask;
            if (status_events[i].fence && r->events[e].fence_id > 0)
                fence = (unsigned)r->events[e].fence_id;
        }
    }
    if (status & STATUS_COVER_OPEN)
        status &= ~STATUS_COVER_CLOSED;
    out[7] = status & STATUS_ALARMS ? 0x12 : 0x11; /* data type: alarm or real-time position */
    put16(rec + 26, status);
    rec[28] = r->charging == 1     ? 0xFF
              : r->battery_pct < 0 ? 0
                                   : (uint8_t)(r->battery_pct > 100 ? 100 : r->battery_pct);
    uint32_t cid = r->has_cell ? r->cell.cid : 0;
    put16(rec + 29, cid & 0xFFFF);
    put16(rec + 31, r->has_cell ? r->cell.lac & 0xFFFF : 0);
    rec[33] = (uint8_t)(r->gsm_signal >= 0 && r->gsm_signal <= 31 ? r->gsm_signal : 99);

    uint8_t *x = rec + LONG_COMMON;
    x[0] = (uint8_t)fence;
    x[2] = (uint8_t)((r->has_cell ? r->cell.mnc : 0) >> 8);
    memset(x + 4, 0x0F, 8);
    put16(x + 12, cid >> 16);
    put16(x + 14, r->has_cell ? r->cell.mcc : 0);
    x[16] = (uint8_t)(r->has_cell ? r->cell.mnc : 0);
    out[total - 1] = serial;
    return (ptrdiff_t)total;
}

/* The P45 event source / verification / password fields that decode back to ev. */
static bool p45_fields(const struct report_event *ev, unsigned *src, unsigned *verify,
                       unsigned *pwd_ok)
{
    unsigned fence = ev->fence_id >= 1 && ev->fence_id <= 10 ? (unsigned)ev->fence_id : 98;
    unsigned refused = strcmp(ev->reason, "outside_fence") == 0 ? 99 : 0;
    *pwd_ok = 0;
    *verify = 0;
    switch (ev->type) {
    case REPORT_EV_LOCK: *src = 5; return true;
    case REPORT_EV_RFID_ACCESS:
        *src = 2;
        return ev->granted == 0 && (!ev->reason[0] || strcmp(ev->reason, "illegal_card") == 0);
    case REPORT_EV_UNLOCK:
    case REPORT_EV_UNLOCK_REFUSED:
    case REPORT_EV_WRONG_PASSWORD: break;
    default: return false;
    }
    bool unlock = ev->type == REPORT_EV_UNLOCK, wrong = ev->type == REPORT_EV_WRONG_PASSWORD;
    *pwd_ok = !wrong;
    switch (ev->source) {
    case REPORT_SRC_RFID: /* the password fields are 0 for card swipes */
        *src = 1;
        *verify = unlock ? fence : refused;
        *pwd_ok = 0;
        return !wrong;
    case REPORT_SRC_REMOTE_STATIC:
        *src = 4;
        *verify = unlock;
        return refused == 0;
    case REPORT_SRC_REMOTE_DYNAMIC:
        *src = 6;
        *verify = unlock ? fence : refused;
        return true;
    case REPORT_SRC_BLUETOOTH: *src = 7; return ev->type != REPORT_EV_UNLOCK_REFUSED;
    default: return false;
    }
}

ptrdiff_t jt600_encode_p45(const struct report *r, const struct report_event *ev, unsigned serial,
                           uint8_t *out, size_t cap)
{
    char id[11], date[16];
    unsigned src, verify, pwd_ok;
    if (!padded_id(r, id) || !p45_fields(ev, &src, &verify, &pwd_ok))
        return ST_EMALFORMED;
    const char *card =
        ev->card[0] && strlen(ev->card) <= 10 && all_digits(ev->card, strlen(ev->card))
            ? ev->card
            : "0000000000";
    int y, mo, d, h, mi, s;
    st_time_to_utc(r->fix_time, &y, &mo, &d, &h, &mi, &s);
    snprintf(date, sizeof date, "%02d%02d%02d,%02d%02d%02d", d, mo, y % 100, h, mi, s);
    int n = snprintf(
        (char *)out, cap, "(%s,P45,%s,%.6f,%c,%.6f,%c,%c,%.2f,%.0f,%u,%u,%s,%u,%u,%u,%.0f)", id,
        date, r->lat < 0 ? -r->lat : r->lat, r->lat < 0 ? 'S' : 'N', r->lon < 0 ? -r->lon : r->lon,
        r->lon < 0 ? 'W' : 'E', r->valid ? 'A' : 'V', r->speed_kmh > 0 ? r->speed_kmh : 0.0,
        r->course > 0 ? r->course : 0.0, src, verify, card, pwd_ok, pwd_ok ? 0u : 1u, serial,
        r->odometer_km > 0 ? r->odometer_km : 0.0);
    if (n < 0 || (size_t)n >= cap)
        return ST_ERANGE;
    return n;
}
