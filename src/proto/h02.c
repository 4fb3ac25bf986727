/* h02.c — H02, the "TQ" protocol of SinoTrack and many clone trackers
 * (docs/protocols/h02.md).
 *
 * Two frame kinds share one connection (TCP or UDP):
 *   `*` text: `*XX,<id>,<command>,…#`, XX a two-letter maker code (HQ, TH, …);
 *   `$` binary: `$`, BCD device ID (5 bytes, or 8 bytes holding an IMEI), BCD
 *       time/date/coordinates, speed/course and a 4-byte status word. There is
 *       no length field: the variant is recognised by its structure.
 * The status word is negative logic: a cleared bit raises the alarm.
 * Pure code: no allocation, no logging; every read is bounded by the length passed in.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "../core/err.h"
#include "../core/timeutil.h"
#include "nmea_common.h"
#include "proto.h"

#define KNOTS_KMH 1.852
#define TEXT_FIELDS_MAX 64
#define ID_SHORT 5       /* BCD bytes of a ten-digit device ID */
#define ID_IMEI 8        /* BCD bytes of a fifteen-digit IMEI plus a filler nibble */
#define CORE_AFTER_ID 23 /* time 3, date 3, lat 4, battery 1, lon 5, speed/course 3, status 4 */
#define BIN_SHORT 32     /* `$` + 5-byte ID + core + 3 trailer bytes */
#define BIN_EXTENDED 45  /* the short frame + 13 bytes carrying the serving cell */
#define BIN_IMEI 42      /* `$` + 8-byte ID + core + 10 trailer bytes */

/* ---- binary layout ------------------------------------------------------ */

/* Nibble i of b (high nibble of b[0] first). */
static unsigned nibble(const uint8_t *b, size_t i)
{
    return i % 2 ? b[i / 2] & 15u : (unsigned)b[i / 2] >> 4;
}

/* `count` BCD digits starting at nibble `first`, or -1 when one is above 9. */
static long bcd_value(const uint8_t *b, size_t first, size_t count)
{
    long v = 0;
    for (size_t i = first; i < first + count; i++) {
        unsigned d = nibble(b, i);
        if (d > 9)
            return -1;
        v = v * 10 + (long)d;
    }
    return v;
}

/* The fields of a `$` frame, read from the core after the ID. */
struct bin_fix {
    int64_t time;
    double lat, lon, speed_kn, course;
    unsigned battery, flags;
    uint32_t status;
};

/* The Luhn check digit of a fifteen-digit IMEI held as BCD nibbles. */
static bool imei_luhn_ok(const uint8_t *id)
{
    unsigned sum = 0;
    for (size_t i = 0; i < 15; i++) {
        unsigned d = nibble(id, 14 - i);
        if (i % 2)
            d = d * 2 > 9 ? d * 2 - 9 : d * 2;
        sum += d;
    }
    return sum % 10 == 0;
}

/* Read and validate the core that follows an ID of `id_len` bytes; b holds at
 * least 1 + id_len + CORE_AFTER_ID bytes. A long ID must be a real IMEI (Luhn),
 * which keeps other `$` binary frames from reading as one. */
static bool binary_core(const uint8_t *b, size_t id_len, struct bin_fix *fx)
{
    size_t id_digits = id_len == ID_IMEI ? 15 : 2 * id_len;
    if (bcd_value(b + 1, 0, id_digits) < 0 || (id_len == ID_IMEI && !imei_luhn_ok(b + 1)))
        return false;
    const uint8_t *c = b + 1 + id_len;
    long hms = bcd_value(c, 0, 6), dmy = bcd_value(c, 6, 6);
    long lat_deg = bcd_value(c, 12, 2), lat_min = bcd_value(c, 14, 6);
    long lon_deg = bcd_value(c, 22, 3), lon_min = bcd_value(c, 25, 6);
    long speed = bcd_value(c, 32, 3), course = bcd_value(c, 35, 3);
    if (hms < 0 || dmy < 0 || lat_deg < 0 || lat_min < 0 || lon_deg < 0 || lon_min < 0 ||
        speed < 0 || course < 0 || lat_deg > 90 || lon_deg > 180 || lat_min >= 600000 ||
        lon_min >= 600000 || course > 360)
        return false;
    int64_t t =
        st_time_from_utc(2000 + (int)(dmy % 100), (int)(dmy / 100 % 100), (int)(dmy / 10000),
                         (int)(hms / 10000), (int)(hms / 100 % 100), (int)(hms % 100));
    if (t < 0)
        return false;
    fx->time = t;
    fx->flags = nibble(c, 31);
    fx->lat = (double)lat_deg + (double)lat_min / 10000.0 / 60.0;
    fx->lon = (double)lon_deg + (double)lon_min / 10000.0 / 60.0;
    if (!(fx->flags & 0x04)) /* bit 2: north */
        fx->lat = -fx->lat;
    if (!(fx->flags & 0x08)) /* bit 3: east */
        fx->lon = -fx->lon;
    fx->battery = c[10];
    fx->speed_kn = (double)speed;
    fx->course = (double)course;
    fx->status = (uint32_t)c[19] << 24 | (uint32_t)c[20] << 16 | (uint32_t)c[21] << 8 | c[22];
    return true;
}

enum layout { LAYOUT_NEED, LAYOUT_BAD, LAYOUT_OK };

static bool frame_start(uint8_t c)
{
    return c == '$' || c == '*';
}

/* Which binary variant buf holds, and its total length. The short and extended
 * frames share their first 32 bytes: the byte after them decides (the next
 * frame's start, or the extension). */
static enum layout binary_layout(const uint8_t *buf, size_t len, size_t *total, size_t *id_len)
{
    for (size_t i = 1; i <= ID_SHORT && i < len; i++)
        if (nibble(buf + i, 0) > 9 || nibble(buf + i, 1) > 9)
            return LAYOUT_BAD;
    struct bin_fix fx;
    if (len < 1 + ID_SHORT + CORE_AFTER_ID)
        return LAYOUT_NEED;
    if (binary_core(buf, ID_SHORT, &fx)) {
        *id_len = ID_SHORT;
        if (len < BIN_SHORT)
            return LAYOUT_NEED;
        *total = len == BIN_SHORT || frame_start(buf[BIN_SHORT]) ? BIN_SHORT : BIN_EXTENDED;
        return LAYOUT_OK;
    }
    if (len < 1 + ID_IMEI + CORE_AFTER_ID)
        return LAYOUT_NEED;
    if (!binary_core(buf, ID_IMEI, &fx))
        return LAYOUT_BAD;
    *id_len = ID_IMEI;
    *total = BIN_IMEI;
    return LAYOUT_OK;
}

/* ---- text header -------------------------------------------------------- */

static bool is_alpha(uint8_t c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

/* `*XX,<0..20 digits>,<command of 1..8 letters/digits>` followed by `,` or `#`. */
static enum layout text_header(const uint8_t *buf, size_t len)
{
    size_t i = 1;
    for (; i < 3; i++) {
        if (i >= len)
            return LAYOUT_NEED;
        if (!is_alpha(buf[i]))
            return LAYOUT_BAD;
    }
    if (i >= len)
        return LAYOUT_NEED;
    if (buf[i++] != ',')
        return LAYOUT_BAD;
    size_t digits = 0;
    for (;; i++) {
        if (i >= len)
            return LAYOUT_NEED;
        if (buf[i] == ',')
            break;
        if (!tc_is_digit(buf[i]) || ++digits > 20)
            return LAYOUT_BAD;
    }
    size_t cmd = 0;
    for (i++;; i++) {
        if (i >= len)
            return LAYOUT_NEED;
        if (buf[i] == ',' || buf[i] == '#')
            return cmd > 0 ? LAYOUT_OK : LAYOUT_BAD;
        if (!(is_alpha(buf[i]) || tc_is_digit(buf[i])) || ++cmd > 8)
            return LAYOUT_BAD;
    }
}

/* ---- detect / frame ----------------------------------------------------- */

static int h02_detect(const uint8_t *buf, size_t len)
{
    if (len == 0)
        return PROTO_DETECT_MAYBE;
    size_t total, id_len;
    enum layout l = buf[0] == '$'   ? binary_layout(buf, len, &total, &id_len)
                    : buf[0] == '*' ? text_header(buf, len)
                                    : LAYOUT_BAD;
    return l == LAYOUT_OK     ? PROTO_DETECT_YES
           : l == LAYOUT_NEED ? PROTO_DETECT_MAYBE
                              : PROTO_DETECT_NO;
}

/* Skip garbage: everything before the next `$` or `*` (at least one byte). */
static ptrdiff_t resync(const uint8_t *buf, size_t len)
{
    size_t i = 1;
    while (i < len && !frame_start(buf[i]))
        i++;
    return -(ptrdiff_t)i;
}

static ptrdiff_t h02_frame(const uint8_t *buf, size_t len)
{
    if (len == 0)
        return 0;
    if (buf[0] == '$') {
        size_t total = 0, id_len;
        switch (binary_layout(buf, len, &total, &id_len)) {
        case LAYOUT_NEED: return 0;
        case LAYOUT_BAD: return resync(buf, len);
        case LAYOUT_OK: return len >= total ? (ptrdiff_t)total : 0;
        }
    }
    if (buf[0] != '*')
        return resync(buf, len);
    switch (text_header(buf, len)) {
    case LAYOUT_NEED: return 0;
    case LAYOUT_BAD: return resync(buf, len);
    case LAYOUT_OK: break;
    }
    size_t limit = len < PROTO_FRAME_MAX ? len : PROTO_FRAME_MAX;
    for (size_t i = 1; i < limit; i++) {
        if (buf[i] == '#')
            return (ptrdiff_t)i + 1;
        if (buf[i] == '*') /* a new frame before the end mark: the start was cut off */
            return -(ptrdiff_t)i;
    }
    return len >= PROTO_FRAME_MAX ? resync(buf, len) : 0;
}

/* ---- report helpers ----------------------------------------------------- */

/* Status bits (cleared = active) that raise an event. Bits 1, 2, 4, 7 and 19 mean
 * the same in every published variant of the table; bit 0 is "thief"/"illegal
 * door" there and vibration in Traccar (the anti-theft shock sensor). */
static const struct status_alarm {
    uint8_t bit, type;
    const char *reason;
} status_alarms[] = {
    {0, REPORT_EV_VIBRATION, "thief"}, {1, REPORT_EV_SOS, ""},
    {2, REPORT_EV_OVERSPEED, ""},      {4, REPORT_EV_GEOFENCE_ENTER, ""},
    {7, REPORT_EV_GEOFENCE_EXIT, ""},  {19, REPORT_EV_POWER_CUT, "backup_battery"},
};

static void apply_status(struct report *r, uint32_t status)
{
    report_attr_set(r, "status", "%08X", (unsigned)status);
    report_attr_set(r, "ignition", "%s", status >> 10 & 1 ? "true" : "false");
    for (size_t i = 0; i < sizeof status_alarms / sizeof status_alarms[0]; i++)
        if (!(status >> status_alarms[i].bit & 1))
            tc_event(r, (enum report_event_type)status_alarms[i].type, status_alarms[i].reason, -1);
}

static void set_cell(struct report *r, uint64_t mcc, uint64_t mnc, uint64_t lac, uint64_t cid)
{
    r->has_cell = true;
    r->cell.mcc = (uint16_t)mcc;
    r->cell.mnc = (uint16_t)mnc;
    r->cell.lac = (uint32_t)lac;
    r->cell.cid = (uint32_t)cid;
}

/* Binary battery byte: levels 1..6 (Traccar's reading of the level scale), a
 * percentage up to 100, 0 = not reported. */
static int battery_percent(unsigned v)
{
    return v == 0     ? -1
           : v <= 3   ? (int)(v - 1) * 10
           : v <= 6   ? (int)(v - 1) * 20
           : v <= 100 ? (int)v
                      : -1;
}

/* ---- `$` binary frames -------------------------------------------------- */

static int decode_binary(const uint8_t *f, size_t len, struct report *r)
{
    size_t total = 0, id_len = 0;
    if (binary_layout(f, len, &total, &id_len) != LAYOUT_OK || total != len)
        return ST_EMALFORMED;
    struct bin_fix fx;
    binary_core(f, id_len, &fx);
    static const char hex[] = "0123456789abcdef";
    size_t digits = id_len == ID_IMEI ? 15 : 2 * id_len;
    for (size_t i = 0; i < digits; i++)
        r->device_id[i] = hex[nibble(f + 1, i)];
    r->device_id[digits] = '\0';
    snprintf(r->msg_type, sizeof r->msg_type, "binary");
    r->fix_time = fx.time;
    r->has_position = true;
    r->fix = REPORT_FIX_GNSS;
    r->valid = fx.flags & 0x02;
    r->lat = fx.lat;
    r->lon = fx.lon;
    r->speed_kmh = fx.speed_kn * KNOTS_KMH;
    r->course = fx.course;
    r->battery_pct = (int16_t)battery_percent(fx.battery);
    report_attr_set(r, "battery_raw", "%u", fx.battery);
    report_attr_set(r, "flags", "0x%x", fx.flags);
    apply_status(r, fx.status);
    size_t tail = 1 + id_len + CORE_AFTER_ID;
    report_attr_hex(r, "tail", f + tail, len - tail);
    if (len == BIN_EXTENDED) { /* serving cell, layout read from public samples */
        const uint8_t *x = f + BIN_EXTENDED - 8;
        set_cell(r, (unsigned)x[0] << 8 | x[1], x[2], (unsigned)x[3] << 8 | x[4],
                 (unsigned)x[5] << 8 | x[6]);
    }
    return 0;
}

/* ---- `*` text frames ---------------------------------------------------- */

static struct tc_field trimmed(struct tc_field f)
{
    while (f.n > 0 && f.p[0] == ' ') {
        f.p++;
        f.n--;
    }
    return f;
}

/* Decimal field, empty = 0 (the protocol leaves speed and course empty when zero). */
static bool number_or_zero(struct tc_field f, double *out)
{
    f = trimmed(f);
    *out = 0;
    return f.n == 0 || tc_decimal(f, out);
}

/* hhmmss + ddmmyy; both empty = time unknown. */
static int text_time(struct report *r, struct tc_field hms_f, struct tc_field dmy_f)
{
    int hms[3], dmy[3];
    if (hms_f.n == 0 && dmy_f.n == 0)
        return 0;
    if (hms_f.n != 6 || dmy_f.n != 6 || !nmea_pairs(hms_f, hms) || !nmea_pairs(dmy_f, dmy) ||
        !nmea_time(dmy[2], dmy[1], dmy[0], hms, &r->fix_time))
        return ST_EMALFORMED;
    return 0;
}

/* The position block `HHMMSS,S,lat,D,lon,G,speed,course,DDMMYY,status` at f[0..10). */
static int text_position(struct report *r, const struct tc_field *f)
{
    if (text_time(r, f[0], f[8]) < 0)
        return ST_EMALFORMED;
    r->valid = tc_eq(f[1], "A");
    if (f[2].n > 0 || f[4].n > 0) {
        if (f[3].n != 1 || f[5].n != 1 || !nmea_lat(f[2], f[3].p[0], &r->lat) ||
            !nmea_lon(f[4], f[5].p[0], &r->lon))
            return ST_EMALFORMED;
        r->has_position = true;
        r->fix = REPORT_FIX_GNSS;
    }
    double speed, course;
    if (!number_or_zero(f[6], &speed) || !number_or_zero(f[7], &course))
        return ST_EMALFORMED;
    r->speed_kmh = speed * KNOTS_KMH;
    r->course = course;
    uint64_t status;
    if (f[9].n != 8 || !tc_hex(f[9], UINT32_MAX, &status))
        return ST_EMALFORMED;
    apply_status(r, (uint32_t)status);
    return 0;
}

/* Text from field a through the end of field b (a <= b), commas included. */
static struct tc_field span(const struct tc_field *f, size_t a, size_t b)
{
    struct tc_field s = {f[a].p, (size_t)(f[b].p + f[b].n - f[a].p)};
    return s;
}

/* NBR: hhmmss,mcc,mnc,delay,count,(lac,cid,rssi)×count,ddmmyy,status. */
static int decode_nbr(struct report *r, const struct tc_field *f, size_t n)
{
    uint64_t mcc, mnc, count, lac, cid;
    if (n < 11 || !tc_uint(f[4], 999, &mcc) || !tc_uint(f[5], 999, &mnc) ||
        !tc_uint(f[7], 64, &count) || count == 0 || n < 10 + 3 * count)
        return ST_EMALFORMED;
    size_t date = 8 + 3 * (size_t)count;
    uint64_t status;
    if (!tc_uint(f[8], UINT32_MAX, &lac) || !tc_uint(f[9], UINT32_MAX, &cid) ||
        text_time(r, f[3], f[date]) < 0 || f[date + 1].n != 8 ||
        !tc_hex(f[date + 1], UINT32_MAX, &status))
        return ST_EMALFORMED;
    set_cell(r, mcc, mnc, lac, cid);
    tc_attr(r, "gsm_delay", f[6]);
    report_attr_set(r, "cell_count", "%u", (unsigned)count);
    tc_attr(r, "cells", span(f, 8, date - 1));
    apply_status(r, (uint32_t)status);
    return 0;
}

/* LINK: hhmmss,rssi,satellites,battery,steps,turnovers,ddmmyy,status. */
static int decode_link(struct report *r, const struct tc_field *f, size_t n)
{
    uint64_t rssi, sats, battery, status;
    if (n < 11 || !tc_uint(f[4], 99, &rssi) || !tc_uint(f[5], 99, &sats) ||
        !tc_uint(f[6], 100, &battery) || text_time(r, f[3], f[9]) < 0 || f[10].n != 8 ||
        !tc_hex(f[10], UINT32_MAX, &status))
        return ST_EMALFORMED;
    r->gsm_signal = (int16_t)rssi;
    r->satellites = (int16_t)sats;
    r->battery_pct = (int16_t)battery;
    tc_attr(r, "steps", f[7]);
    tc_attr(r, "turnovers", f[8]);
    apply_status(r, (uint32_t)status);
    return 0;
}

static int decode_text(const uint8_t *frame, size_t len, struct report *r,
                       struct proto_reply *reply)
{
    if (len < 2 || text_header(frame, len) != LAYOUT_OK || frame[len - 1] != '#')
        return ST_EMALFORMED;
    struct tc_field f[TEXT_FIELDS_MAX];
    size_t n = tc_split((const char *)frame + 1, len - 2, ',', f, TEXT_FIELDS_MAX);
    tc_set_device_id(r, f[1]);
    struct tc_field cmd = f[2]; /* text_header() guarantees `XX,<id>,<cmd>` */
    snprintf(r->msg_type, sizeof r->msg_type, "%.*s", (int)cmd.n, cmd.p);
    tc_attr(r, "maker", f[0]);
    if (tc_eq(cmd, "V1") || tc_eq(cmd, "VI1")) {
        if (n < 13)
            return ST_EMALFORMED;
        if (n > 13)
            tc_attr(r, "extra", span(f, 13, n - 1));
        return text_position(r, f + 3);
    }
    if (tc_eq(cmd, "V4")) { /* V4,CMD,[params…,]cmd time, then a V1 position block */
        if (n < 15)
            return ST_EMALFORMED;
        tc_attr(r, "command", f[3]);
        tc_attr(r, "answer", span(f, 3, n - 11));
        return text_position(r, f + n - 10);
    }
    if (tc_eq(cmd, "NBR"))
        return decode_nbr(r, f, n);
    if (tc_eq(cmd, "LINK"))
        return decode_link(r, f, n);
    if (tc_eq(cmd, "HTBT") || tc_eq(cmd, "V0")) {
        uint64_t battery;
        if (n > 3 && tc_uint(f[3], 100, &battery))
            r->battery_pct = (int16_t)battery;
        /* the device expects its own header back, or it drops the link */
        proto_reply_printf(reply, "*%.*s,%.*s,%.*s#", (int)f[0].n, f[0].p, (int)f[1].n, f[1].p, (int)cmd.n,
                  cmd.p);
        return 0;
    }
    return ST_EUNSUPPORTED;
}

static int h02_decode(struct proto_ctx *ctx, const uint8_t *frame, size_t len, struct report *out,
                      size_t max_out, size_t *n_out, struct proto_reply *reply)
{
    (void)ctx;
    *n_out = 0;
    reply->len = 0;
    if (max_out == 0 || len == 0)
        return ST_EMALFORMED;
    report_init(out, "h02");
    int rc = frame[0] == '$'   ? decode_binary(frame, len, out)
             : frame[0] == '*' ? decode_text(frame, len, out, reply)
                               : ST_EMALFORMED;
    if (rc == 0 || rc == ST_EUNSUPPORTED)
        *n_out = 1;
    else
        reply->len = 0;
    return rc;
}

/* ---- downlink commands -------------------------------------------------- */

/* `*HQ,<id>,<cmd>,<hhmmss now>,<args>#` — the documented server command shape
 * (engine S20 and interval S71 as Traccar's H02 encoder sends them). */
static int h02_encode(struct proto_ctx *ctx, const struct proto_command *cmd, uint8_t *out,
                      size_t cap, size_t *len)
{
    char args[32];
    const char *code;
    switch (cmd->type) {
    case PROTO_CMD_CUSTOM: {
        size_t n = cmd->text ? strlen(cmd->text) : 0;
        if (n == 0)
            return ST_EMALFORMED;
        if (n > cap)
            return ST_ERANGE;
        memcpy(out, cmd->text, n);
        *len = n;
        return 0;
    }
    case PROTO_CMD_ENGINE_STOP:
    case PROTO_CMD_ENGINE_RESUME:
        code = "S20";
        snprintf(args, sizeof args, "1,%d", cmd->type == PROTO_CMD_ENGINE_STOP);
        break;
    case PROTO_CMD_INTERVAL:
        if (cmd->number <= 0 || cmd->number > 65535)
            return ST_EMALFORMED;
        code = "S71";
        snprintf(args, sizeof args, "22,%ld", cmd->number);
        break;
    default: return ST_EUNSUPPORTED;
    }
    const char *id = cmd->device_id;
    if (!id || !*id || strlen(id) > 20 || strpbrk(id, ",#*"))
        return ST_EMALFORMED;
    int y, mo, d, h, mi, s;
    st_time_to_utc(ctx->now, &y, &mo, &d, &h, &mi, &s);
    return tc_command(out, cap, len, "*HQ,%s,%s,%02d%02d%02d,%s#", id, code, h, mi, s, args);
}

const struct proto_ops proto_h02 = {
    .name = "h02",
    .detect = h02_detect,
    .frame = h02_frame,
    .decode = h02_decode,
    .encode_command = h02_encode,
};
