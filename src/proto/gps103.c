/* gps103.c — GPS103 / Coban (TK103-2 text variant) protocol (docs/protocols/gps103.md).
 *
 * Frames are ASCII ending in `;`:
 *   `##,imei:<15 digits>,A;`  login            → server answers `LOAD`
 *   `<15 digits>;`            heartbeat        → server answers `ON`
 *   `imei:<15 digits>,<keyword>,<local YYMMDDhhmm[ss]>,<phone>,F|L,<UTC hhmmss.sss>,
 *    A|V,DDMM.MMMM,N|S,DDDMM.MMMM,E|W,<speed kn>,<course>[,altitude,acc,door,fuel1,fuel2,temp];`
 * The keyword names the report (tracker, help me, low battery, …). F = GPS fix,
 * L = no fix (LAC and cell ID in the coordinate fields).
 * Pure code: no allocation, no logging; every read is bounded by the length passed in.
 */
#include <stdio.h>
#include <string.h>

#include "../core/err.h"
#include "nmea_common.h"
#include "proto.h"

#define IMEI_LEN 15
#define FIELDS_MAX 24
#define KNOTS_KMH 1.852

enum layout { LAYOUT_NEED, LAYOUT_BAD, LAYOUT_OK };

/* buf starts with `prefix`, 15 digits and then `end`. */
static enum layout match(const uint8_t *buf, size_t len, const char *prefix, char end)
{
    size_t pl = strlen(prefix);
    for (size_t i = 0; i < pl + IMEI_LEN + 1; i++) {
        if (i >= len)
            return LAYOUT_NEED;
        bool ok = i < pl              ? buf[i] == (uint8_t)prefix[i]
                  : i < pl + IMEI_LEN ? buf[i] >= '0' && buf[i] <= '9'
                                      : buf[i] == (uint8_t)end;
        if (!ok)
            return LAYOUT_BAD;
    }
    return LAYOUT_OK;
}

/* The three first-frame shapes: login, report, heartbeat. */
static enum layout start_layout(const uint8_t *buf, size_t len)
{
    enum layout l[3] = {match(buf, len, "##,imei:", ','), match(buf, len, "imei:", ','),
                        match(buf, len, "", ';')};
    enum layout best = LAYOUT_BAD;
    for (int i = 0; i < 3; i++)
        if (l[i] == LAYOUT_OK || (l[i] == LAYOUT_NEED && best == LAYOUT_BAD))
            best = l[i];
    return best;
}

static int gps103_detect(const uint8_t *buf, size_t len)
{
    enum layout l = start_layout(buf, len);
    return l == LAYOUT_OK     ? PROTO_DETECT_YES
           : l == LAYOUT_NEED ? PROTO_DETECT_MAYBE
                              : PROTO_DETECT_NO;
}

/* Skip garbage up to the next byte that may start a frame (`#`, `i`, a digit). */
static ptrdiff_t resync(const uint8_t *buf, size_t len)
{
    size_t i = 1;
    while (i < len && buf[i] != '#' && buf[i] != 'i' && (buf[i] < '0' || buf[i] > '9'))
        i++;
    return -(ptrdiff_t)i;
}

static ptrdiff_t gps103_frame(const uint8_t *buf, size_t len)
{
    if (len == 0)
        return 0;
    switch (start_layout(buf, len)) {
    case LAYOUT_NEED: return 0;
    case LAYOUT_BAD: return resync(buf, len);
    case LAYOUT_OK: break;
    }
    size_t limit = len < PROTO_FRAME_MAX ? len : PROTO_FRAME_MAX;
    const uint8_t *end = memchr(buf, ';', limit);
    if (end)
        return end - buf + 1;
    return len >= PROTO_FRAME_MAX ? resync(buf, len) : 0;
}

/* ---- decode -------------------------------------------------------------- */

static void set_reply(struct proto_reply *reply, const char *text)
{
    int n = snprintf((char *)reply->buf, sizeof reply->buf, "%s", text);
    reply->len = n > 0 && (size_t)n < sizeof reply->buf ? (size_t)n : 0;
}

/* Report keywords that are alarms (protocol description's keyword list). */
static const struct keyword_alarm {
    const char *keyword;
    uint8_t type;
    const char *reason;
} keyword_alarms[] = {
    {"help me", REPORT_EV_SOS, ""},
    {"low battery", REPORT_EV_LOW_BATTERY, ""},
    {"speed", REPORT_EV_OVERSPEED, ""},
    {"ac alarm", REPORT_EV_POWER_CUT, ""},
    {"sensor alarm", REPORT_EV_VIBRATION, ""},
    {"move", REPORT_EV_ALARM, "movement"},
    {"stockade", REPORT_EV_ALARM, "geofence"},
    {"door alarm", REPORT_EV_ALARM, "door"},
    {"acc alarm", REPORT_EV_ALARM, "acc"},
    {"accident alarm", REPORT_EV_ALARM, "accident"},
    {"bonnet alarm", REPORT_EV_ALARM, "bonnet"},
    {"footbrake alarm", REPORT_EV_ALARM, "footbrake"},
    {"DTC", REPORT_EV_ALARM, "dtc"},
};

static void keyword_events(struct report *r, struct tc_field kw, struct tc_field phone)
{
    tc_attr(r, "keyword", kw);
    for (size_t i = 0; i < sizeof keyword_alarms / sizeof keyword_alarms[0]; i++)
        if (tc_eq(kw, keyword_alarms[i].keyword))
            tc_event(r, (enum report_event_type)keyword_alarms[i].type, keyword_alarms[i].reason,
                     -1);
    if (kw.n >= 2 && memcmp(kw.p, "T:", 2) == 0)
        tc_event(r, REPORT_EV_ALARM, "temperature", -1);
    else if (kw.n >= 3 && memcmp(kw.p, "oil", 3) == 0)
        tc_event(r, REPORT_EV_ALARM, "fuel", -1);
    else if (tc_eq(kw, "acc on") || tc_eq(kw, "acc off"))
        report_attr_set(r, "ignition", "%s", kw.n == 6 ? "true" : "false");
    else if (tc_eq(kw, "rfid") && phone.n > 0) {
        struct report_event *e = report_add_event(r, REPORT_EV_RFID_ACCESS);
        if (e)
            snprintf(e->card, sizeof e->card, "%.*s", (int)phone.n, phone.p);
    }
}

/* The device's local YYMMDDhhmm[ss] field as y, m, d, hh, mm, ss (ss 0 when absent). */
static bool local_clock(struct tc_field f, int out[6])
{
    if ((f.n != 10 && f.n != 12) || !tc_digits(f, f.n, f.n))
        return false;
    for (size_t i = 0; i < 6; i++)
        out[i] = 2 * i < f.n ? (f.p[2 * i] - '0') * 10 + (f.p[2 * i + 1] - '0') : 0;
    return true;
}

/* UTC time: the local date carries the day, the UTC clock field the time of day;
 * their difference (within ±12 h) is the device's zone offset. */
static int fix_time(struct report *r, struct tc_field local, struct tc_field utc)
{
    int lc[6], hms[3];
    int64_t t;
    if (!local_clock(local, lc) || !nmea_pairs(utc, hms))
        return ST_EMALFORMED;
    int delta = (lc[3] * 60 + lc[4]) - (hms[0] * 60 + hms[1]);
    if (delta <= -12 * 60)
        delta += 24 * 60;
    else if (delta > 12 * 60)
        delta -= 24 * 60;
    int local_hms[3] = {lc[3], lc[4], hms[2]};
    if (!nmea_time(lc[0], lc[1], lc[2], local_hms, &t))
        return ST_EMALFORMED;
    r->fix_time = t - (int64_t)delta * 60;
    return 0;
}

static void optional_attr(struct report *r, const struct tc_field *f, size_t n, size_t i,
                          const char *key)
{
    if (i < n && f[i].n > 0)
        tc_attr(r, key, f[i]);
}

static int decode_gps(struct report *r, const struct tc_field *f, size_t n)
{
    double speed = 0, course = 0, altitude;
    if (n < 11 || fix_time(r, f[2], f[5]) < 0 || f[8].n != 1 || f[10].n != 1 ||
        !nmea_lat(f[7], f[8].p[0], &r->lat) || !nmea_lon(f[9], f[10].p[0], &r->lon) ||
        (n > 11 && f[11].n > 0 && !tc_decimal(f[11], &speed)) ||
        (n > 12 && f[12].n > 0 && !tc_decimal(f[12], &course)))
        return ST_EMALFORMED;
    r->has_position = true;
    r->fix = REPORT_FIX_GNSS;
    r->valid = tc_eq(f[6], "A");
    r->speed_kmh = speed * KNOTS_KMH;
    r->course = course;
    if (n > 13 && f[13].n > 0 && tc_decimal(f[13], &altitude)) {
        r->has_altitude = true;
        r->altitude_m = altitude;
    }
    optional_attr(r, f, n, 14, "acc");
    optional_attr(r, f, n, 15, "door");
    optional_attr(r, f, n, 16, "fuel1");
    optional_attr(r, f, n, 17, "fuel2");
    optional_attr(r, f, n, 18, "temperature");
    return 0;
}

/* L: no fix; LAC and cell ID (hex) stand where the coordinates would be. */
static int decode_lbs(struct report *r, const struct tc_field *f, size_t n)
{
    uint64_t lac, cid;
    int lc[6];
    if (n < 10 || !tc_hex(f[7], UINT32_MAX, &lac) || !tc_hex(f[9], UINT32_MAX, &cid))
        return ST_EMALFORMED;
    r->has_cell = true;
    r->cell.lac = (uint32_t)lac;
    r->cell.cid = (uint32_t)cid;
    if (local_clock(f[2], lc) && nmea_time(lc[0], lc[1], lc[2], lc + 3, &r->fix_time))
        r->time_is_local = true; /* only the device's own clock: its local time */
    return 0;
}

static int decode_report(const char *s, size_t len, struct report *r, struct proto_reply *reply)
{
    struct tc_field f[FIELDS_MAX];
    size_t n = tc_split(s, len, ',', f, FIELDS_MAX);
    if (n < 5)
        return ST_EMALFORMED;
    struct tc_field kw = f[1];
    snprintf(r->msg_type, sizeof r->msg_type, "%.*s", (int)kw.n, kw.p);
    if (tc_eq(kw, "OBD") || (kw.n >= 2 && kw.p[0] == 'v' && (kw.p[1] == 'r' || kw.p[1] == 't')))
        return ST_EUNSUPPORTED; /* OBD data and photo transfer: not decoded */
    if (f[3].n > 0)
        tc_attr(r, "phone", f[3]);
    int rc = tc_eq(f[4], "F")   ? decode_gps(r, f, n)
             : tc_eq(f[4], "L") ? decode_lbs(r, f, n)
                                : ST_EMALFORMED;
    if (rc < 0)
        return rc;
    keyword_events(r, kw, f[3]);
    if (tc_eq(kw, "help me")) { /* acknowledge the SOS so the device stops repeating it */
        char ack[40];
        snprintf(ack, sizeof ack, "**,imei:%s,E", r->device_id);
        set_reply(reply, ack);
    }
    return 0;
}

static int decode_frame(const uint8_t *frame, size_t len, struct report *r,
                        struct proto_reply *reply)
{
    if (start_layout(frame, len) != LAYOUT_OK || frame[len - 1] != ';')
        return ST_EMALFORMED;
    const char *s = (const char *)frame;
    size_t n = len - 1; /* without the `;` */
    if (s[0] == '#') {
        tc_set_device_id(r, (struct tc_field){s + 8, IMEI_LEN});
        snprintf(r->msg_type, sizeof r->msg_type, "login");
        set_reply(reply, "LOAD");
        return 0;
    }
    if (s[0] != 'i') {
        if (n != IMEI_LEN)
            return ST_EMALFORMED;
        tc_set_device_id(r, (struct tc_field){s, IMEI_LEN});
        snprintf(r->msg_type, sizeof r->msg_type, "heartbeat");
        set_reply(reply, "ON");
        return 0;
    }
    tc_set_device_id(r, (struct tc_field){s + 5, IMEI_LEN});
    return decode_report(s, n, r, reply);
}

static int gps103_decode(struct proto_ctx *ctx, const uint8_t *frame, size_t len,
                         struct report *out, size_t max_out, size_t *n_out,
                         struct proto_reply *reply)
{
    (void)ctx;
    *n_out = 0;
    reply->len = 0;
    if (max_out == 0)
        return ST_EMALFORMED;
    report_init(out, "gps103");
    int rc = decode_frame(frame, len, out, reply);
    if (rc == 0 || rc == ST_EUNSUPPORTED)
        *n_out = 1;
    else
        reply->len = 0;
    return rc;
}

/* ---- downlink commands -------------------------------------------------- */

/* Interval argument: two digits and a unit (s, m, h), the largest exact unit. */
static bool interval_text(long seconds, char *out, size_t cap)
{
    static const struct {
        long unit;
        char name;
    } units[] = {{3600, 'h'}, {60, 'm'}, {1, 's'}};
    for (size_t i = 0; i < 3; i++) {
        if (seconds % units[i].unit == 0 && seconds / units[i].unit <= 99) {
            snprintf(out, cap, "%02ld%c", seconds / units[i].unit, units[i].name);
            return true;
        }
    }
    return false;
}

/* `**,imei:<imei>,<letter>[,args]` (server sending data format of the protocol
 * description): B one position, C,<NNu> interval, J cut oil and power, K resume. */
static int gps103_encode(struct proto_ctx *ctx, const struct proto_command *cmd, uint8_t *out,
                         size_t cap, size_t *len)
{
    (void)ctx;
    char body[128];
    switch (cmd->type) {
    case PROTO_CMD_CUSTOM:
        if (!cmd->text || !*cmd->text || strlen(cmd->text) >= sizeof body)
            return ST_EMALFORMED;
        snprintf(body, sizeof body, "%s", cmd->text);
        break;
    case PROTO_CMD_POSITION: snprintf(body, sizeof body, "B"); break;
    case PROTO_CMD_ENGINE_STOP: snprintf(body, sizeof body, "J"); break;
    case PROTO_CMD_ENGINE_RESUME: snprintf(body, sizeof body, "K"); break;
    case PROTO_CMD_INTERVAL: {
        char arg[8];
        if (cmd->number <= 0 || !interval_text(cmd->number, arg, sizeof arg))
            return ST_EMALFORMED;
        snprintf(body, sizeof body, "C,%s", arg);
        break;
    }
    default: return ST_EUNSUPPORTED;
    }
    const char *id = cmd->device_id;
    if (!id || strlen(id) != IMEI_LEN ||
        !tc_digits((struct tc_field){id, IMEI_LEN}, IMEI_LEN, IMEI_LEN))
        return ST_EMALFORMED;
    return tc_command(out, cap, len, "**,imei:%s,%s", id, body);
}

const struct proto_ops proto_gps103 = {
    .name = "gps103",
    .detect = gps103_detect,
    .frame = gps103_frame,
    .decode = gps103_decode,
    .encode_command = gps103_encode,
};
