/* gt06.c — GT06 / Concox binary protocol: 0x78 0x78 (1-byte length) and 0x79 0x79 (2-byte
 * length) packets, CRC-ITU checked. Decisions and their sources: docs/protocols/gt06.md.
 *
 * Packet: start (2), length (1|2), protocol number (1), content (N), serial (2), CRC (2),
 * 0x0D 0x0A. The length counts protocol number .. CRC (N + 5); the CRC (CRC-16/X-25) covers
 * length .. serial. Only the login carries the device id (IMEI): every other packet leaves
 * device_id "" for the connection to fill in.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "../core/err.h"
#include "../core/hex.h"
#include "../core/timeutil.h"
#include "proto.h"

#define START_SHORT 0x78 /* 0x78 0x78: 1-byte length */
#define START_LONG 0x79  /* 0x79 0x79: 2-byte length */
#define STOP_CR 0x0D
#define STOP_LF 0x0A
#define LENGTH_MIN 5  /* protocol number + serial + CRC: an empty content */
#define TRAILER_LEN 6 /* serial + CRC + stop bytes */

enum {
    MSG_LOGIN = 0x01,
    MSG_GPS_LBS = 0x12,
    MSG_STATUS = 0x13,
    MSG_STRING = 0x15,
    MSG_ALARM = 0x16,
    MSG_LBS_EXTEND = 0x18,
    MSG_STRING_LONG = 0x21,
    MSG_GPS_LBS_2 = 0x22,
    MSG_ALARM_2 = 0x26,
    MSG_LBS_MULTI = 0x28,
    MSG_COMMAND = 0x80,
    MSG_TIME_REQUEST = 0x8A,
    MSG_INFO = 0x94,
};

#define IMEI_BCD_LEN 8
#define GPS_BLOCK_LEN 18      /* date time 6, GPS info 1, lat 4, lon 4, speed 1, course/status 2 */
#define STATUS_BLOCK_LEN 3    /* terminal info, voltage level, GSM signal */
#define LBS_CELLS 7           /* 0x18/0x28: the serving cell and six neighbours */
#define LBS_CELL_LEN 6        /* LAC 2, cell id 3, RSSI 1 */
#define COORD_UNITS 1800000.0 /* 1/30000 minute: degrees × 60 × 30000 */
#define VOLTAGE_LEVEL_MAX 6
#define COMMAND_TEXT_MAX 245 /* 0x78 0x78 length byte: 10 + text ≤ 255 */
#define SERVER_FLAG_LEN 4

/* Course/status word of the GPS block. */
#define CS_COURSE_MASK 0x03FFu
#define CS_NORTH (1u << 10)
#define CS_WEST (1u << 11)
#define CS_POSITIONED (1u << 12)
#define CS_DIFFERENTIAL (1u << 13)
#define MCC_TWO_BYTE_MNC 0x8000u

static uint16_t be16(const uint8_t *b)
{
    return (uint16_t)(b[0] << 8 | b[1]);
}

static uint32_t be24(const uint8_t *b)
{
    return (uint32_t)b[0] << 16 | (uint32_t)b[1] << 8 | b[2];
}

static uint32_t be32(const uint8_t *b)
{
    return (uint32_t)b[0] << 24 | be24(b + 1);
}

/* CRC-ITU as Concox names it: CRC-16/X-25 (reflected 0x1021, init and xor-out 0xFFFF). */
static uint16_t crc_itu(const uint8_t *b, size_t len)
{
    uint16_t crc = 0xFFFF;
    for (size_t i = 0; i < len; i++) {
        crc ^= b[i];
        for (int k = 0; k < 8; k++)
            crc = (crc & 1) ? (uint16_t)(crc >> 1 ^ 0x8408) : (uint16_t)(crc >> 1);
    }
    return (uint16_t)~crc;
}

static void set_flag(struct report *r, const char *key, bool on)
{
    report_attr_set(r, key, "%s", on ? "true" : "false");
}

/* ---------------------------------------------------------------------------------------
 * Packet layout.
 */

static bool is_start(uint8_t b)
{
    return b == START_SHORT || b == START_LONG;
}

/* Skip to the next byte that could start a packet. */
static ptrdiff_t skip_garbage(const uint8_t *buf, size_t len)
{
    size_t i = 1;
    while (i < len && !is_start(buf[i]))
        i++;
    return -(ptrdiff_t)i;
}

/* Total packet length from its header: > 0 the length, 0 need more bytes, < 0 not a header. */
static ptrdiff_t packet_length(const uint8_t *buf, size_t len)
{
    if (len < 2)
        return len == 1 && !is_start(buf[0]) ? -1 : 0;
    if (!is_start(buf[0]) || buf[1] != buf[0])
        return -1;
    size_t head = buf[0] == START_LONG ? 4 : 3;
    if (len < head)
        return 0;
    size_t field = head == 4 ? be16(buf + 2) : buf[2];
    size_t total = head + field + 2;
    if (field < LENGTH_MIN || total > PROTO_FRAME_MAX)
        return -1;
    return (ptrdiff_t)total;
}

static bool stop_bytes_ok(const uint8_t *buf, size_t total)
{
    return buf[total - 2] == STOP_CR && buf[total - 1] == STOP_LF;
}

/* Header + content + serial → out, with CRC and stop bytes. Returns the length, 0 if short. */
static size_t packet_build(bool long_form, uint8_t type, const uint8_t *content, size_t content_len,
                           uint16_t serial, uint8_t *out, size_t cap)
{
    size_t head = long_form ? 4 : 3, field = content_len + LENGTH_MIN;
    size_t total = head + field + 2;
    if (total > cap || (!long_form && field > 0xFF) || field > 0xFFFF)
        return 0;
    out[0] = out[1] = long_form ? START_LONG : START_SHORT;
    if (long_form) {
        out[2] = (uint8_t)(field >> 8);
        out[3] = (uint8_t)field;
    } else {
        out[2] = (uint8_t)field;
    }
    out[head] = type;
    if (content_len)
        memcpy(out + head + 1, content, content_len);
    uint8_t *p = out + head + 1 + content_len;
    p[0] = (uint8_t)(serial >> 8);
    p[1] = (uint8_t)serial;
    uint16_t crc = crc_itu(out + 2, (size_t)(p + 2 - (out + 2)));
    p[2] = (uint8_t)(crc >> 8);
    p[3] = (uint8_t)crc;
    p[4] = STOP_CR;
    p[5] = STOP_LF;
    return total;
}

/* ---------------------------------------------------------------------------------------
 * Content blocks shared by several packets.
 */

/* Date time (6 bytes, year − 2000, UTC) → epoch seconds; 0 when not a calendar time. */
static int64_t packet_time(const uint8_t *b)
{
    int64_t t = st_time_from_utc(2000 + b[0], b[1], b[2], b[3], b[4], b[5]);
    return t < 0 ? 0 : t;
}

/* GPS block (GPS_BLOCK_LEN bytes). */
static void decode_gps(const uint8_t *b, struct report *r)
{
    r->fix_time = packet_time(b);
    r->satellites = b[6] & 15;
    report_attr_set(r, "gps_info_len", "%u", b[6] >> 4);
    uint16_t cs = be16(b + 16);
    double lat = be32(b + 7) / COORD_UNITS, lon = be32(b + 11) / COORD_UNITS;
    r->has_position = true;
    r->valid = cs & CS_POSITIONED;
    r->fix = r->valid ? REPORT_FIX_GPS : REPORT_FIX_NONE;
    r->lat = cs & CS_NORTH ? lat : -lat;
    r->lon = cs & CS_WEST ? -lon : lon;
    r->speed_kmh = b[15];
    r->course = cs & CS_COURSE_MASK;
    report_attr_set(r, "course_status", "0x%04x", cs);
    set_flag(r, "gps_differential", cs & CS_DIFFERENTIAL);
}

/* MCC (2; top bit set = 2-byte MNC), MNC (1|2), LAC (2), cell id (3). Returns the bytes
 * used, or ST_ETRUNCATED. */
static ptrdiff_t decode_cell(const uint8_t *b, size_t len, struct report *r)
{
    if (len < 2)
        return ST_ETRUNCATED;
    uint16_t mcc = be16(b);
    size_t mnc_len = mcc & MCC_TWO_BYTE_MNC ? 2 : 1, used = 2 + mnc_len + 2 + 3;
    if (len < used)
        return ST_ETRUNCATED;
    r->cell.mcc = mcc & (uint16_t)~MCC_TWO_BYTE_MNC;
    r->cell.mnc = mnc_len == 2 ? be16(b + 2) : b[2];
    r->cell.lac = be16(b + 2 + mnc_len);
    r->cell.cid = be24(b + 4 + mnc_len);
    r->has_cell = r->cell.mcc || r->cell.lac || r->cell.cid;
    report_attr_set(r, "mcc", "%u", r->cell.mcc);
    report_attr_set(r, "mnc", "%u", r->cell.mnc);
    report_attr_set(r, "lac", "%u", r->cell.lac);
    report_attr_set(r, "cid", "%u", r->cell.cid);
    return (ptrdiff_t)used;
}

static const char *const alarm_state_names[8] = {
    "normal", "vibration", "power_cut", "low_battery", "sos", "code_5", "code_6", "code_7",
};

/* Terminal information, voltage level, GSM signal (STATUS_BLOCK_LEN bytes). */
static void decode_status(const uint8_t *b, struct report *r)
{
    uint8_t info = b[0];
    report_attr_set(r, "terminal_info", "0x%02x", info);
    set_flag(r, "armed", info & 0x01);
    set_flag(r, "acc", info & 0x02);
    set_flag(r, "charging", info & 0x04);
    report_attr_set(r, "alarm_state", "%s", alarm_state_names[(info >> 3) & 7]);
    set_flag(r, "gps_tracking", info & 0x40);
    set_flag(r, "oil_electric_cut", info & 0x80);
    r->charging = (info & 0x04) ? 1 : 0;

    report_attr_set(r, "voltage_level", "%u", b[1]);
    if (b[1] <= VOLTAGE_LEVEL_MAX) /* levels 0..6, read linearly as a percentage */
        r->battery_pct = (int16_t)(b[1] * 100 / VOLTAGE_LEVEL_MAX);
    r->gsm_signal = b[2];
    report_attr_set(r, "gsm_level", "%u", b[2]);
}

static void decode_language(uint8_t lang, struct report *r)
{
    if (lang == 1)
        report_attr_set(r, "language", "chinese");
    else if (lang == 2)
        report_attr_set(r, "language", "english");
    else
        report_attr_set(r, "language", "%u", lang);
}

struct alarm_code {
    uint8_t code, event;
    const char *reason;
};

/* Alarm byte of 0x16/0x26 (GT06 v1.8 codes 1–5; JM-VL01 extensions). */
static const struct alarm_code alarm_codes[] = {
    {0x01, REPORT_EV_SOS, ""},
    {0x02, REPORT_EV_POWER_CUT, ""},
    {0x03, REPORT_EV_VIBRATION, ""},
    {0x04, REPORT_EV_GEOFENCE_ENTER, ""},
    {0x05, REPORT_EV_GEOFENCE_EXIT, ""},
    {0x06, REPORT_EV_OVERSPEED, ""},
    {0x0E, REPORT_EV_LOW_BATTERY, "external_low"},
    {0x0F, REPORT_EV_LOW_BATTERY, "external_protection"},
    {0x13, REPORT_EV_TAMPER, "removed"},
};

static void decode_alarm_code(uint8_t code, struct report *r)
{
    report_attr_set(r, "alarm_code", "0x%02x", code);
    if (code == 0)
        return;
    struct report_event *e = NULL;
    for (size_t i = 0; i < sizeof alarm_codes / sizeof alarm_codes[0]; i++) {
        if (alarm_codes[i].code != code)
            continue;
        e = report_add_event(r, (enum report_event_type)alarm_codes[i].event);
        if (e)
            snprintf(e->reason, sizeof e->reason, "%s", alarm_codes[i].reason);
        return;
    }
    e = report_add_event(r, REPORT_EV_ALARM);
    if (e)
        snprintf(e->reason, sizeof e->reason, "code_0x%02x", code);
}

/* Bytes after the layout a packet defines are kept raw. */
static void extra_attr(struct report *r, const uint8_t *b, size_t len)
{
    if (len)
        report_attr_hex(r, "extra", b, len);
}

/* Printable ASCII as is, anything else as hex. */
static void text_attr(struct report *r, const char *key, const uint8_t *b, size_t len)
{
    char text[PROTO_FRAME_MAX + 1];
    bool printable = true;
    for (size_t i = 0; i < len; i++)
        printable = printable && b[i] >= 0x20 && b[i] < 0x7F;
    if (!printable) {
        report_attr_hex(r, key, b, len);
        return;
    }
    memcpy(text, b, len);
    text[len] = '\0';
    report_attr_set(r, key, "%s", text);
}

/* ---------------------------------------------------------------------------------------
 * Packets.
 */

/* 0x01: terminal id = IMEI as 16 BCD digits (leading 0); optional type code (2) and time
 * zone/language word (2). */
static int decode_login(const uint8_t *c, size_t n, struct report *r)
{
    char digits[2 * IMEI_BCD_LEN + 1];
    if (n < IMEI_BCD_LEN)
        return ST_ETRUNCATED;
    st_hex_encode(c, IMEI_BCD_LEN, digits, sizeof digits);
    if (strspn(digits, "0123456789") != 2 * IMEI_BCD_LEN)
        return ST_EMALFORMED;
    snprintf(r->device_id, sizeof r->device_id, "%s", digits[0] == '0' ? digits + 1 : digits);
    if (n >= IMEI_BCD_LEN + 2)
        report_attr_set(r, "type_code", "0x%04x", be16(c + IMEI_BCD_LEN));
    if (n >= IMEI_BCD_LEN + 4) {
        /* bits 15–4: zone × 100 (800 = 8:00), bit 3: west, bits 1–0: language */
        uint16_t tz = be16(c + IMEI_BCD_LEN + 2);
        unsigned hhmm = (unsigned)(tz >> 4);
        report_attr_set(r, "tz_language", "0x%04x", tz);
        report_attr_set(r, "timezone", "%c%02u:%02u", tz & 0x08 ? '-' : '+', hhmm / 100,
                        hhmm % 100);
        extra_attr(r, c + IMEI_BCD_LEN + 4, n - IMEI_BCD_LEN - 4);
    }
    return 0;
}

/* 0x12 / 0x22: GPS block + cell; 0x22 adds ACC, upload mode, re-upload flag, mileage. */
static int decode_location(uint8_t type, const uint8_t *c, size_t n, struct report *r)
{
    if (n < GPS_BLOCK_LEN)
        return ST_ETRUNCATED;
    decode_gps(c, r);
    ptrdiff_t used = decode_cell(c + GPS_BLOCK_LEN, n - GPS_BLOCK_LEN, r);
    if (used < 0)
        return (int)used;
    size_t at = GPS_BLOCK_LEN + (size_t)used;
    if (type == MSG_GPS_LBS_2 && n - at >= 3) {
        set_flag(r, "acc", c[at]);
        report_attr_set(r, "upload_mode", "0x%02x", c[at + 1]);
        set_flag(r, "reupload", c[at + 2]);
        at += 3;
        if (n - at >= 4) { /* unit not stated in the sources: kept raw */
            report_attr_set(r, "mileage_raw", "%u", be32(c + at));
            at += 4;
        }
    }
    extra_attr(r, c + at, n - at);
    return 0;
}

/* 0x13: status block, then alarm and language bytes. */
static int decode_heartbeat(const uint8_t *c, size_t n, struct report *r)
{
    if (n < STATUS_BLOCK_LEN)
        return ST_ETRUNCATED;
    decode_status(c, r);
    size_t at = STATUS_BLOCK_LEN;
    if (n - at >= 2) {
        report_attr_set(r, "alarm_code", "0x%02x", c[at]);
        decode_language(c[at + 1], r);
        at += 2;
    }
    extra_attr(r, c + at, n - at);
    return 0;
}

/* 0x16 / 0x26: GPS block, LBS length (counts itself), cell, status block, alarm, language. */
static int decode_alarm(const uint8_t *c, size_t n, struct report *r)
{
    if (n < GPS_BLOCK_LEN + 1)
        return ST_ETRUNCATED;
    decode_gps(c, r);
    size_t at = GPS_BLOCK_LEN, lbs_len = c[at++];
    if (lbs_len > 1) {
        size_t block = lbs_len - 1;
        if (n - at < block)
            return ST_ETRUNCATED;
        ptrdiff_t used = decode_cell(c + at, block, r);
        if (used < 0)
            return (int)used;
        at += block;
    }
    if (n - at < STATUS_BLOCK_LEN + 2)
        return ST_ETRUNCATED;
    decode_status(c + at, r);
    at += STATUS_BLOCK_LEN;
    decode_alarm_code(c[at], r);
    decode_language(c[at + 1], r);
    at += 2;
    extra_attr(r, c + at, n - at);
    return 0;
}

/* 0x18 / 0x28: date time, MCC/MNC, seven cells (serving first), timing advance, language. */
static int decode_lbs(const uint8_t *c, size_t n, struct report *r)
{
    if (n < 6 + 2)
        return ST_ETRUNCATED;
    r->fix_time = packet_time(c);
    size_t mnc_len = be16(c + 6) & MCC_TWO_BYTE_MNC ? 2 : 1;
    size_t plmn = 2 + mnc_len, at = 6 + plmn;
    if (n < at + LBS_CELLS * LBS_CELL_LEN + 1)
        return ST_ETRUNCATED;
    /* The serving cell reads like the common cell block once MCC/MNC precede it. */
    uint8_t cell[9];
    memcpy(cell, c + 6, plmn);
    memcpy(cell + plmn, c + at, 5);
    decode_cell(cell, plmn + 5, r);
    report_attr_set(r, "rssi", "%u", c[at + 5]);
    unsigned neighbours = 0;
    for (size_t i = 1; i < LBS_CELLS; i++)
        neighbours += be16(c + at + i * LBS_CELL_LEN) != 0;
    report_attr_set(r, "neighbours", "%u", neighbours);
    at += LBS_CELLS * LBS_CELL_LEN;
    report_attr_set(r, "timing_advance", "%u", c[at++]);
    if (n - at >= 2) {
        decode_language(c[at + 1], r);
        at += 2;
    }
    extra_attr(r, c + at, n - at);
    return 0;
}

/* 0x15: answer to a 0x80 command: length (server flag + text), server flag, text, language. */
static int decode_string(const uint8_t *c, size_t n, struct report *r)
{
    if (n < 1 || c[0] < SERVER_FLAG_LEN || n - 1 < c[0])
        return ST_ETRUNCATED;
    report_attr_set(r, "server_flag", "0x%08x", be32(c + 1));
    text_attr(r, "response", c + 1 + SERVER_FLAG_LEN, c[0] - SERVER_FLAG_LEN);
    size_t at = 1 + (size_t)c[0];
    if (n - at >= 2) {
        decode_language(c[at + 1], r);
        at += 2;
    }
    extra_attr(r, c + at, n - at);
    return 0;
}

/* 0x21 (long frames): server flag, encoding (1 ASCII, 2 UTF-16BE), text. */
static int decode_string_long(const uint8_t *c, size_t n, struct report *r)
{
    if (n < SERVER_FLAG_LEN + 1)
        return ST_ETRUNCATED;
    report_attr_set(r, "server_flag", "0x%08x", be32(c));
    report_attr_set(r, "encoding", "%u", c[SERVER_FLAG_LEN]);
    const uint8_t *text = c + SERVER_FLAG_LEN + 1;
    size_t len = n - SERVER_FLAG_LEN - 1;
    if (c[SERVER_FLAG_LEN] == 1)
        text_attr(r, "response", text, len);
    else
        report_attr_hex(r, "response", text, len);
    return 0;
}

/* 0x94: information type + data (JM-VL01 §information transmission). */
static int decode_info(const uint8_t *c, size_t n, struct report *r)
{
    char hex[2 * 10 + 1];
    if (n < 1)
        return ST_ETRUNCATED;
    uint8_t sub = c[0];
    const uint8_t *d = c + 1;
    size_t dn = n - 1;
    report_attr_set(r, "info_type", "0x%02x", sub);
    if (sub == 0x00 && dn == 2) {
        report_attr_set(r, "power_v", "%.2f", be16(d) / 100.0);
    } else if (sub == 0x04) {
        text_attr(r, "info_text", d, dn);
    } else if (sub == 0x0A && dn == 26) { /* IMEI 8, IMSI 8, ICCID 10 (hex digits, F-padded) */
        st_hex_encode(d, 8, hex, sizeof hex);
        report_attr_set(r, "imei", "%s", hex[0] == '0' ? hex + 1 : hex);
        st_hex_encode(d + 8, 8, hex, sizeof hex);
        report_attr_set(r, "imsi", "%s", hex[0] == '0' ? hex + 1 : hex);
        st_hex_encode(d + 16, 10, hex, sizeof hex);
        hex[strcspn(hex, "f")] = '\0';
        report_attr_set(r, "iccid", "%s", hex);
    } else if (dn) {
        report_attr_hex(r, "info_data", d, dn);
    }
    return 0;
}

/* What the device is owed: login, status and alarms are echoed; time requests answered. */
static void build_reply(const struct proto_ctx *ctx, bool long_form, uint8_t type, uint16_t serial,
                        struct proto_reply *reply)
{
    uint8_t now[6];
    const uint8_t *content = NULL;
    size_t content_len = 0;
    switch (type) {
    case MSG_LOGIN:
    case MSG_STATUS:
    case MSG_ALARM:
    case MSG_ALARM_2: break;
    case MSG_TIME_REQUEST: {
        int y, mo, d, h, mi, s;
        st_time_to_utc(ctx->now, &y, &mo, &d, &h, &mi, &s);
        now[0] = (uint8_t)(y - 2000);
        now[1] = (uint8_t)mo;
        now[2] = (uint8_t)d;
        now[3] = (uint8_t)h;
        now[4] = (uint8_t)mi;
        now[5] = (uint8_t)s;
        content = now;
        content_len = sizeof now;
        break;
    }
    default: return;
    }
    reply->len =
        packet_build(long_form, type, content, content_len, serial, reply->buf, sizeof reply->buf);
}

/* ---------------------------------------------------------------------------------------
 * proto_ops.
 */

static int detect(const uint8_t *buf, size_t len)
{
    if (len == 0)
        return PROTO_DETECT_MAYBE;
    ptrdiff_t total = packet_length(buf, len);
    if (total < 0)
        return PROTO_DETECT_NO;
    if (total == 0 || len < (size_t)total)
        return PROTO_DETECT_MAYBE;
    size_t t = (size_t)total;
    if (!stop_bytes_ok(buf, t) || crc_itu(buf + 2, t - 6) != be16(buf + t - 4))
        return PROTO_DETECT_NO;
    return PROTO_DETECT_YES;
}

static ptrdiff_t frame(const uint8_t *buf, size_t len)
{
    if (len == 0)
        return 0;
    ptrdiff_t total = packet_length(buf, len);
    if (total < 0)
        return skip_garbage(buf, len);
    if (total == 0 || len < (size_t)total)
        return 0;
    if (!stop_bytes_ok(buf, (size_t)total))
        return skip_garbage(buf, len);
    return total;
}

static int decode_content(uint8_t type, const uint8_t *c, size_t n, struct report *r)
{
    switch (type) {
    case MSG_LOGIN: return decode_login(c, n, r);
    case MSG_GPS_LBS:
    case MSG_GPS_LBS_2: return decode_location(type, c, n, r);
    case MSG_STATUS: return decode_heartbeat(c, n, r);
    case MSG_STRING: return decode_string(c, n, r);
    case MSG_ALARM:
    case MSG_ALARM_2: return decode_alarm(c, n, r);
    case MSG_LBS_EXTEND:
    case MSG_LBS_MULTI: return decode_lbs(c, n, r);
    case MSG_STRING_LONG: return decode_string_long(c, n, r);
    case MSG_TIME_REQUEST: extra_attr(r, c, n); return 0;
    case MSG_INFO: return decode_info(c, n, r);
    default:
        if (n)
            report_attr_hex(r, "content", c, n);
        return ST_EUNSUPPORTED;
    }
}

static int decode(struct proto_ctx *ctx, const uint8_t *buf, size_t len, struct report *out,
                  size_t max_out, size_t *n_out, struct proto_reply *reply)
{
    *n_out = 0;
    reply->len = 0;
    if (max_out == 0 || len == 0)
        return ST_EMALFORMED;
    if (frame(buf, len) != (ptrdiff_t)len)
        return ST_EMALFORMED;
    if (crc_itu(buf + 2, len - 6) != be16(buf + len - 4))
        return ST_ECHECKSUM;
    bool long_form = buf[0] == START_LONG;
    size_t head = long_form ? 4 : 3;
    uint8_t type = buf[head];
    const uint8_t *content = buf + head + 1;
    size_t content_len = len - head - 1 - TRAILER_LEN;
    uint16_t serial = be16(buf + len - 6);

    struct report *r = &out[0];
    report_init(r, proto_gt06.name);
    snprintf(r->msg_type, sizeof r->msg_type, "0x%02x", type);
    report_attr_set(r, "serial", "%u", serial);
    if (long_form)
        set_flag(r, "long_frame", true);
    int rc = decode_content(type, content, content_len, r);
    if (rc < 0 && rc != ST_EUNSUPPORTED) {
        /* out[0].device_id still names a login's device for the log line */
        return rc;
    }
    *n_out = 1;
    build_reply(ctx, long_form, type, serial, reply);
    return rc;
}

/* 0x80: command length (server flag + text), server flag 0, ASCII text; no language field
 * (optional in the Concox documents, absent in Traccar's encoder and its test frame). */
static int encode_command(struct proto_ctx *ctx, const struct proto_command *cmd, uint8_t *out,
                          size_t cap, size_t *len)
{
    const char *text;
    *len = 0;
    switch (cmd->type) {
    case PROTO_CMD_CUSTOM: text = cmd->text; break;
    case PROTO_CMD_ENGINE_STOP: text = "RELAY,1#"; break;
    case PROTO_CMD_ENGINE_RESUME: text = "RELAY,0#"; break;
    case PROTO_CMD_REBOOT: text = "RESET#"; break;
    default: return ST_EUNSUPPORTED;
    }
    if (!text || !*text)
        return ST_EMALFORMED;
    size_t tl = strlen(text);
    if (tl > COMMAND_TEXT_MAX)
        return ST_ERANGE;
    uint8_t content[1 + SERVER_FLAG_LEN + COMMAND_TEXT_MAX];
    content[0] = (uint8_t)(SERVER_FLAG_LEN + tl);
    memset(content + 1, 0, SERVER_FLAG_LEN);
    memcpy(content + 1 + SERVER_FLAG_LEN, text, tl);
    size_t n = packet_build(false, MSG_COMMAND, content, 1 + SERVER_FLAG_LEN + tl,
                            ctx->server_serial, out, cap);
    if (n == 0)
        return ST_ERANGE;
    ctx->server_serial++;
    *len = n;
    return 0;
}

const struct proto_ops proto_gt06 = {
    .name = "gt06",
    .detect = detect,
    .frame = frame,
    .decode = decode,
    .encode_command = encode_command,
};
