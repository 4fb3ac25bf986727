/* suntech.c — Suntech ASCII protocol (ST300/ST340/ST310U, SA200, ST600, ST500…
 * and the universal `STT;` form), docs/protocols/suntech.md.
 *
 * One report per line, fields separated by `;`, closed by CR (LF tolerated):
 *   legacy    `<model><TYPE>;<dev id>;…` e.g. `ST300STT;205173382;07;564;20160322;…`
 *   universal `<TYPE>;<dev id 10 digits>;<hdr mask hex>;…` e.g. `STT;0560001616;BFFFFF;…`
 * TYPE: STT status, ALT alert, EMG emergency, EVT input event, ALV keep-alive,
 * UEX external data. Models add or drop fields before the position, so the
 * position is found from the date (YYYYMMDD;hh:mm:ss) and the coordinates that
 * follow it. Pure code: no allocation, no logging; every read is bounded.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "../core/err.h"
#include "proto.h"
#include "text_common.h"

#define FIELDS_MAX 96
#define ID_MIN 6
#define ID_MAX 10
#define UNIVERSAL_ID 10
#define FULL_MASK 0x3FFFFFu /* universal header mask with every standard field present */

static const char *const types[] = {"STT", "ALT", "EMG", "EVT", "ALV", "UEX", "HTE"};
#define N_TYPES (sizeof types / sizeof types[0])

/* Bytes b[i..i+n) match `cls`; `need` is set when the buffer ends first. */
static bool run_of(const uint8_t *b, size_t len, size_t i, size_t n, bool (*cls)(uint8_t),
                   bool *need)
{
    for (size_t k = 0; k < n; k++) {
        if (i + k >= len) {
            *need = true;
            return true;
        }
        if (!cls(b[i + k]))
            return false;
    }
    return true;
}

static bool known_type(const uint8_t *p)
{
    for (size_t i = 0; i < N_TYPES; i++)
        if (memcmp(p, types[i], 3) == 0)
            return true;
    return false;
}

/* Digits from b[i] up to `stop`: PROTO_DETECT_* for an id of min..max digits. */
static int id_then(const uint8_t *b, size_t len, size_t i, size_t min, size_t max, bool universal)
{
    size_t n = 0;
    while (i + n < len && tc_is_digit(b[i + n]))
        if (++n > max)
            return PROTO_DETECT_NO;
    if (i + n >= len)
        return PROTO_DETECT_MAYBE;
    if (n < min)
        return PROTO_DETECT_NO;
    uint8_t c = b[i + n];
    if (c == '\r')
        return PROTO_DETECT_YES; /* keep-alive: `…ALV;<id>\r` */
    if (c != ';')
        return PROTO_DETECT_NO;
    if (!universal)
        return PROTO_DETECT_YES;
    /* universal: the header mask (hex) follows */
    size_t m = 0, j = i + n + 1;
    while (j + m < len && tc_is_hex(b[j + m]))
        if (++m > 8)
            return PROTO_DETECT_NO;
    if (j + m >= len)
        return PROTO_DETECT_MAYBE;
    return m >= 6 && b[j + m] == ';' ? PROTO_DETECT_YES : PROTO_DETECT_NO;
}

/* Legacy: 2 capitals + 3 digits + type + `;` + 6..10 digit id.
 * Universal: type + `;` + 10 digit id + `;` + hex mask + `;`. */
static int suntech_detect(const uint8_t *buf, size_t len)
{
    bool need = false;
    if (!run_of(buf, len, 0, 2, tc_is_upper, &need))
        return PROTO_DETECT_NO;
    if (need || len < 4)
        return PROTO_DETECT_MAYBE;
    if (tc_is_upper(buf[2])) {
        if (buf[3] != ';' || !known_type(buf))
            return PROTO_DETECT_NO;
        return id_then(buf, len, 4, UNIVERSAL_ID, UNIVERSAL_ID, true);
    }
    if (!run_of(buf, len, 2, 3, tc_is_digit, &need) || !run_of(buf, len, 5, 3, tc_is_upper, &need))
        return PROTO_DETECT_NO;
    if (need || len < 9)
        return PROTO_DETECT_MAYBE;
    if (!known_type(buf + 5) || buf[8] != ';')
        return PROTO_DETECT_NO;
    return id_then(buf, len, 9, ID_MIN, ID_MAX, false);
}

/* Skip to the next capital letter (at least one byte). */
static ptrdiff_t resync(const uint8_t *b, size_t len)
{
    size_t i = 1;
    while (i < len && !tc_is_upper(b[i]))
        i++;
    return -(ptrdiff_t)i;
}

static ptrdiff_t suntech_frame(const uint8_t *buf, size_t len)
{
    if (len == 0)
        return 0;
    if (!tc_is_upper(buf[0]))
        return resync(buf, len);
    size_t limit = len < PROTO_FRAME_MAX ? len : PROTO_FRAME_MAX;
    const uint8_t *cr = memchr(buf, '\r', limit);
    if (!cr)
        return len >= PROTO_FRAME_MAX ? resync(buf, len) : 0;
    /* The frame ends at CR even when an LF follows: whether the LF has arrived yet depends
     * on how the stream was cut, and a frame must not. The LF is skipped before the next. */
    return (ptrdiff_t)(cr - buf) + 1;
}

/* ---- decode --------------------------------------------------------------- */

static bool coordinate(struct tc_field f, double limit, double *v)
{
    return memchr(f.p, '.', f.n) && tc_decimal(f, v) && *v >= -limit && *v <= limit;
}

/* `YYYYMMDD` + `hh:mm:ss` → epoch seconds. */
static bool date_time(struct tc_field d, struct tc_field t, int64_t *out)
{
    if (!tc_digits(d, 8, 8) || t.n != 8 || t.p[2] != ':' || t.p[5] != ':')
        return false;
    char digits[14];
    memcpy(digits, d.p, 8);
    memcpy(digits + 8, t.p, 2);
    memcpy(digits + 10, t.p + 3, 2);
    memcpy(digits + 12, t.p + 6, 2);
    return tc_time_digits(digits, sizeof digits, out);
}

/* Alert ids with a typed event (ST300 manual, ALT report ALERT_ID). */
static void alert_event(struct report *r, uint64_t id)
{
    switch (id) {
    case 1: tc_event(r, REPORT_EV_OVERSPEED, "", -1); break;
    case 5: tc_event(r, REPORT_EV_GEOFENCE_EXIT, "", -1); break;
    case 6: tc_event(r, REPORT_EV_GEOFENCE_ENTER, "", -1); break;
    case 14: tc_event(r, REPORT_EV_LOW_BATTERY, "vehicle_battery_low", -1); break;
    case 15: tc_event(r, REPORT_EV_VIBRATION, "shocked", -1); break;
    case 16: tc_event(r, REPORT_EV_ALARM, "collision", -1); break;
    case 41: tc_event(r, REPORT_EV_POWER_CUT, "", -1); break;
    case 50: tc_event(r, REPORT_EV_ALARM, "jamming", -1); break;
    default: break;
    }
}

/* Emergency types (EMG_ID). */
static void emergency_event(struct report *r, uint64_t id, bool known)
{
    if (known && id == 1)
        tc_event(r, REPORT_EV_SOS, "panic_button", -1);
    else if (known && id == 3)
        tc_event(r, REPORT_EV_POWER_CUT, "", -1);
    else
        tc_event(r, REPORT_EV_ALARM,
                 !known    ? "emergency"
                 : id == 2 ? "parking_lock"
                 : id == 5 ? "anti_theft"
                 : id == 7 ? "motion"
                 : id == 8 ? "anti_theft_shock"
                           : "emergency",
                 -1);
}

/* The 6-field cell block before the position of ST600 / universal reports:
 * cell id (hex), MCC, MNC, LAC (hex), RX level. */
static void decode_cell(struct report *r, const struct tc_field *c)
{
    uint64_t cid, mcc, mnc, lac;
    tc_attr(r, "rx_level", c[4]);
    if (tc_hex(c[0], 0xFFFFFFFF, &cid) && tc_uint(c[1], 999, &mcc) && tc_uint(c[2], 999, &mnc) &&
        tc_hex(c[3], 0xFFFFFFFF, &lac)) {
        r->has_cell = true;
        r->cell.mcc = (uint16_t)mcc;
        r->cell.mnc = (uint16_t)mnc;
        r->cell.lac = (uint32_t)lac;
        r->cell.cid = (uint32_t)cid;
    }
}

/* Fields after <fix>: legacy DIST;PWR_VOLT;I/O;<type field>…, universal
 * IN_STATE;OUT_STATE;<type field>… (the latter only with the full header mask). */
static void decode_after_fix(struct report *r, const char *type, const struct tc_field *f,
                             size_t nf, size_t p, bool universal, uint64_t mask)
{
    uint64_t id, dist;
    double volt;
    size_t typed = p + 3;
    if (universal) {
        if (p + 1 < nf) {
            tc_attr(r, "in_state", f[p]);
            tc_attr(r, "out_state", f[p + 1]);
        }
        typed = (mask & FULL_MASK) == FULL_MASK ? p + 2 : nf;
    } else if (p + 2 < nf) {
        if (tc_uint(f[p], UINT32_MAX, &dist))
            r->odometer_km = (double)dist / 1000.0;
        if (tc_decimal(f[p + 1], &volt))
            report_attr_set(r, "power_v", "%.2f", volt);
        tc_attr(r, "io", f[p + 2]);
    }
    bool have_id = typed < nf && tc_uint(f[typed], 999, &id);
    if (strcmp(type, "ALT") == 0 && have_id) {
        report_attr_set(r, "alert_id", "%u", (unsigned)id);
        alert_event(r, id);
    } else if (strcmp(type, "EMG") == 0) {
        if (have_id)
            report_attr_set(r, "emergency_id", "%u", (unsigned)id);
        emergency_event(r, have_id ? id : 0, have_id);
    } else if (strcmp(type, "EVT") == 0 && have_id) {
        report_attr_set(r, "event_id", "%u", (unsigned)id);
    } else if (strcmp(type, "STT") == 0 && have_id) {
        report_attr_set(r, "mode", "%u", (unsigned)id);
    }
    if (typed < nf) {
        const char *end = f[nf - 1].p + f[nf - 1].n;
        tc_attr(r, "fields_after", (struct tc_field){f[typed].p, (size_t)(end - f[typed].p)});
    }
}

/* Find YYYYMMDD;hh:mm:ss, then the latitude 2, 3 or 7 fields later (no cell,
 * one cell id, or the cell id/MCC/MNC/LAC/RX block). */
static bool decode_position(struct report *r, const struct tc_field *f, size_t nf, size_t *after)
{
    static const size_t lat_offsets[] = {2, 3, 7};
    for (size_t d = 2; d + 1 < nf; d++) {
        int64_t t;
        if (!date_time(f[d], f[d + 1], &t))
            continue;
        for (size_t k = 0; k < sizeof lat_offsets / sizeof lat_offsets[0]; k++) {
            size_t c = d + lat_offsets[k];
            double lat, lon, speed, course;
            uint64_t sats, fix;
            if (c + 5 >= nf || !coordinate(f[c], 90, &lat) || !coordinate(f[c + 1], 180, &lon) ||
                !tc_decimal(f[c + 2], &speed) || !tc_decimal(f[c + 3], &course) ||
                !tc_uint(f[c + 4], 99, &sats) || !tc_uint(f[c + 5], 1, &fix))
                continue;
            r->fix_time = t;
            r->has_position = true;
            r->lat = lat;
            r->lon = lon;
            r->speed_kmh = speed;
            r->course = course;
            r->satellites = (int16_t)sats;
            r->valid = fix == 1;
            r->fix = r->valid ? REPORT_FIX_GNSS : REPORT_FIX_NONE;
            if (lat_offsets[k] == 3)
                tc_attr(r, "cell_id", f[d + 2]);
            else if (lat_offsets[k] == 7)
                decode_cell(r, f + d + 2);
            *after = c + 6;
            return true;
        }
        return false;
    }
    return false;
}

static int suntech_decode(struct proto_ctx *ctx, const uint8_t *frame, size_t len,
                          struct report *out, size_t max_out, size_t *n_out,
                          struct proto_reply *reply)
{
    (void)ctx;
    struct tc_field f[FIELDS_MAX];
    *n_out = 0;
    reply->len = 0;
    if (max_out == 0)
        return ST_ERANGE;
    struct report *r = &out[0];
    report_init(r, "suntech");
    while (len > 0 && (frame[len - 1] == '\r' || frame[len - 1] == '\n'))
        len--;
    size_t nf = tc_split((const char *)frame, len, ';', f, FIELDS_MAX);
    bool universal = f[0].n == 3;
    if (nf < 2 || !(f[0].n == 3 || f[0].n == 8) ||
        !known_type((const uint8_t *)f[0].p + f[0].n - 3) || !tc_digits(f[1], ID_MIN, ID_MAX))
        return ST_EMALFORMED;
    tc_set_device_id(r, f[1]);
    snprintf(r->msg_type, sizeof r->msg_type, "%.*s", (int)f[0].n, f[0].p);
    char type[4];
    memcpy(type, f[0].p + f[0].n - 3, 3);
    type[3] = '\0';
    *n_out = 1;
    if (strcmp(type, "ALV") == 0)
        return 0; /* keep-alive: the id is all it carries */
    if (!universal)
        report_attr_set(r, "model", "%.5s", f[0].p);
    uint64_t mask = 0;
    if (universal && !(nf > 2 && tc_hex(f[2], 0xFFFFFFFF, &mask))) {
        *n_out = 0;
        return ST_EMALFORMED;
    }
    if (strcmp(type, "HTE") == 0)
        return ST_EUNSUPPORTED; /* trip summary: two positions, not decoded */
    size_t after;
    if (!decode_position(r, f, nf, &after)) {
        *n_out = 0;
        return ST_EMALFORMED;
    }
    decode_after_fix(r, type, f, nf, after, universal, mask);
    return 0;
}

/* ---- commands ------------------------------------------------------------- */

/* `ST300CMD;<dev id>;02;<command>\r` (ST300 manual §7); custom text is sent
 * as given, CR added. */
static int suntech_encode(struct proto_ctx *ctx, const struct proto_command *cmd, uint8_t *out,
                          size_t cap, size_t *len)
{
    (void)ctx;
    const char *what;
    switch (cmd->type) {
    case PROTO_CMD_CUSTOM: what = cmd->text; break;
    case PROTO_CMD_REBOOT: what = "Reboot"; break;
    case PROTO_CMD_POSITION: what = "StatusReq"; break;
    case PROTO_CMD_ENGINE_STOP: what = "Enable1"; break;
    case PROTO_CMD_ENGINE_RESUME: what = "Disable1"; break;
    default: return ST_EUNSUPPORTED;
    }
    if (!what || !*what)
        return ST_EMALFORMED;
    for (const char *p = what; *p; p++)
        if ((uint8_t)*p < 0x20 || (uint8_t)*p > 0x7E)
            return ST_EMALFORMED;
    int n;
    if (cmd->type == PROTO_CMD_CUSTOM) {
        n = snprintf((char *)out, cap, "%s\r", what);
    } else {
        struct tc_field id = {cmd->device_id, cmd->device_id ? strlen(cmd->device_id) : 0};
        if (!tc_digits(id, ID_MIN, ID_MAX))
            return ST_EMALFORMED;
        n = snprintf((char *)out, cap, "ST300CMD;%s;02;%s\r", cmd->device_id, what);
    }
    if (n < 0 || (size_t)n >= cap)
        return ST_ERANGE;
    *len = (size_t)n;
    return 0;
}

const struct proto_ops proto_suntech = {
    .name = "suntech",
    .detect = suntech_detect,
    .frame = suntech_frame,
    .decode = suntech_decode,
    .encode_command = suntech_encode,
};
