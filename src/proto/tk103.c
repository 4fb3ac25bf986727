/* tk103.c — TK103 (Xexun / Coban TK103-2 and clones), the `(` + 12-digit ID +
 * 4-character command code protocol (docs/protocols/tk103.md).
 *
 * Frame: `(` <12-digit ID> <command, e.g. BP05> <body> `)`. The ID runs straight
 * into the command code (no comma): that separates TK103 from the JT600 `(`+10
 * digits+`,` and JT709A `(`+12 digits+`,` texts. Device commands start with `B`,
 * server commands with `A`. Position bodies are fixed-width:
 * YYMMDD A|V DDMM.MMMM N|S DDDMM.MMMM E|W speed(5, km/h) hhmmss course(6)
 * io(8) `L` odometer(8 hex, metres).
 * Pure code: no allocation, no logging; every read is bounded by the length passed in.
 */
#include <stdio.h>
#include <string.h>

#include "../core/err.h"
#include "nmea_common.h"
#include "proto.h"

#define ID_LEN 12
#define HEADER_LEN (1 + ID_LEN + 4) /* `(`, ID, command code */
#define BLOCK_MIN 55                /* the position block up to `L` and one odometer digit */
#define IMEI_LEN 15
#define CELL_FIELDS 8

static bool is_upper_or_digit(uint8_t c)
{
    return tc_is_digit(c) || (c >= 'A' && c <= 'Z');
}

static bool is_hex(char c)
{
    return tc_is_digit((uint8_t)c) || (c >= 'A' && c <= 'F') || (c >= 'a' && c <= 'f');
}

enum layout { LAYOUT_NEED, LAYOUT_BAD, LAYOUT_OK };

/* `(` + 12 digits + `B` + letter + two letters/digits. */
static enum layout header(const uint8_t *buf, size_t len)
{
    for (size_t i = 1; i < HEADER_LEN; i++) {
        if (i >= len)
            return LAYOUT_NEED;
        bool ok = i <= ID_LEN       ? tc_is_digit(buf[i])
                  : i == ID_LEN + 1 ? buf[i] == 'B'
                  : i == ID_LEN + 2 ? buf[i] >= 'A' && buf[i] <= 'Z'
                                    : is_upper_or_digit(buf[i]);
        if (!ok)
            return LAYOUT_BAD;
    }
    return LAYOUT_OK;
}

static int tk103_detect(const uint8_t *buf, size_t len)
{
    if (len == 0)
        return PROTO_DETECT_MAYBE;
    if (buf[0] != '(')
        return PROTO_DETECT_NO;
    enum layout l = header(buf, len);
    return l == LAYOUT_OK     ? PROTO_DETECT_YES
           : l == LAYOUT_NEED ? PROTO_DETECT_MAYBE
                              : PROTO_DETECT_NO;
}

/* Skip garbage: everything before the next `(` (at least one byte). */
static ptrdiff_t resync(const uint8_t *buf, size_t len)
{
    size_t i = 1;
    while (i < len && buf[i] != '(')
        i++;
    return -(ptrdiff_t)i;
}

static ptrdiff_t tk103_frame(const uint8_t *buf, size_t len)
{
    if (len == 0)
        return 0;
    if (buf[0] != '(')
        return resync(buf, len);
    switch (header(buf, len)) {
    case LAYOUT_NEED: return 0;
    case LAYOUT_BAD: return resync(buf, len);
    case LAYOUT_OK: break;
    }
    size_t limit = len < PROTO_FRAME_MAX ? len : PROTO_FRAME_MAX;
    for (size_t i = HEADER_LEN; i < limit; i++) {
        if (buf[i] == ')')
            return (ptrdiff_t)i + 1;
        if (buf[i] == '(') /* a new frame before the end mark: the start was cut off */
            return -(ptrdiff_t)i;
    }
    return len >= PROTO_FRAME_MAX ? resync(buf, len) : 0;
}

/* ---- position block ------------------------------------------------------ */

static struct tc_field sub(const char *p, size_t at, size_t n)
{
    struct tc_field f = {p + at, n};
    return f;
}

/* Numeric fixed-width field; devices pad with spaces or zeros. */
static bool padded_decimal(struct tc_field f, double *out)
{
    while (f.n > 0 && f.p[0] == ' ') {
        f.p++;
        f.n--;
    }
    return tc_decimal(f, out);
}

/* I/O characters (protocol description): 1st main power ('1' = cut), 2nd ACC. */
static void io_state(struct report *r, struct tc_field io)
{
    tc_attr(r, "io", io);
    report_attr_set(r, "main_power_off", "%s", io.p[0] == '1' ? "true" : "false");
    report_attr_set(r, "ignition", "%s", io.p[1] == '1' ? "true" : "false");
}

static int decode_block(struct report *r, const char *p, size_t n)
{
    int ymd[3], hms[3];
    double speed, course;
    if (n < BLOCK_MIN || !nmea_pairs(sub(p, 0, 6), ymd) || !nmea_pairs(sub(p, 33, 6), hms) ||
        !nmea_time(ymd[0], ymd[1], ymd[2], hms, &r->fix_time) || (p[6] != 'A' && p[6] != 'V') ||
        !nmea_lat(sub(p, 7, 9), p[16], &r->lat) || !nmea_lon(sub(p, 17, 10), p[27], &r->lon) ||
        !padded_decimal(sub(p, 28, 5), &speed) || !padded_decimal(sub(p, 39, 6), &course) ||
        p[53] != 'L')
        return ST_EMALFORMED;
    size_t hex = 0; /* odometer: up to 8 hex digits, some firmwares send fewer */
    uint64_t odometer;
    while (hex < 8 && 54 + hex < n && is_hex(p[54 + hex]))
        hex++;
    if (!tc_hex(sub(p, 54, hex), UINT32_MAX, &odometer))
        return ST_EMALFORMED;
    r->has_position = true;
    r->fix = REPORT_FIX_GNSS;
    r->valid = p[6] == 'A';
    r->speed_kmh = speed;
    r->course = course;
    r->odometer_km = (double)odometer / 1000.0;
    io_state(r, sub(p, 45, 8));
    if (54 + hex < n)
        tc_attr(r, "extra", sub(p, 54 + hex, n - 54 - hex));
    return 0;
}

/* BO01 alarm codes (protocol description) → events. */
static void alarm_event(struct report *r, char code)
{
    static const struct {
        char code;
        uint8_t type;
        const char *reason;
    } alarms[] = {
        {'0', REPORT_EV_POWER_CUT, ""},
        {'1', REPORT_EV_ALARM, "accident"},
        {'2', REPORT_EV_SOS, ""},
        {'3', REPORT_EV_VIBRATION, "anti_theft"},
        {'4', REPORT_EV_ALARM, "low_speed"},
        {'5', REPORT_EV_OVERSPEED, ""},
        {'6', REPORT_EV_GEOFENCE_EXIT, ""},
    };
    for (size_t i = 0; i < sizeof alarms / sizeof alarms[0]; i++) {
        if (alarms[i].code == code) {
            tc_event(r, (enum report_event_type)alarms[i].type, alarms[i].reason, -1);
            return;
        }
    }
    char reason[16];
    snprintf(reason, sizeof reason, "code_%c", code);
    tc_event(r, REPORT_EV_ALARM, reason, -1);
}

/* BZ00: ,mcc,mnc,lac(hex),cid(hex)[,lac,cid…] — the serving cell first. */
static int decode_cells(struct report *r, const char *p, size_t n)
{
    struct tc_field f[CELL_FIELDS];
    uint64_t mcc, mnc, lac, cid;
    if (n < 1 || p[0] != ',')
        return ST_EMALFORMED;
    size_t k = tc_split(p + 1, n - 1, ',', f, CELL_FIELDS);
    if (k < 4 || !tc_uint(f[0], 999, &mcc) || !tc_uint(f[1], 999, &mnc) ||
        !tc_hex(f[2], UINT32_MAX, &lac) || !tc_hex(f[3], UINT32_MAX, &cid))
        return ST_EMALFORMED;
    r->has_cell = true;
    r->cell.mcc = (uint16_t)mcc;
    r->cell.mnc = (uint16_t)mnc;
    r->cell.lac = (uint32_t)lac;
    r->cell.cid = (uint32_t)cid;
    if (k > 4)
        tc_attr(r, "neighbours", sub(f[4].p, 0, (size_t)(p + n - f[4].p)));
    return 0;
}

static void set_reply(struct proto_reply *reply, const char *id, const char *code, const char *arg)
{
    int n = snprintf((char *)reply->buf, sizeof reply->buf, "(%.*s%s%s)", ID_LEN, id, code, arg);
    reply->len = n > 0 && (size_t)n < sizeof reply->buf ? (size_t)n : 0;
}

static int decode_frame(const uint8_t *frame, size_t len, struct report *r,
                        struct proto_reply *reply)
{
    if (len < HEADER_LEN + 1 || header(frame, len) != LAYOUT_OK || frame[len - 1] != ')')
        return ST_EMALFORMED;
    const char *id = (const char *)frame + 1, *cmd = id + ID_LEN, *body = cmd + 4;
    size_t n = len - HEADER_LEN - 1;
    tc_set_device_id(r, sub(id, 0, ID_LEN));
    snprintf(r->msg_type, sizeof r->msg_type, "%.4s", cmd);
    if (memcmp(cmd, "BP00", 4) == 0) { /* handshake: answered, nothing to store */
        set_reply(reply, id, "AP01HSO", "");
        if (n > 0)
            tc_attr(r, "handshake", sub(body, 0, n));
        return 0;
    }
    if (memcmp(cmd, "BP05", 4) == 0) { /* login: IMEI + position */
        if (n < IMEI_LEN || !tc_digits(sub(body, 0, IMEI_LEN), IMEI_LEN, IMEI_LEN))
            return ST_EMALFORMED;
        tc_attr(r, "imei", sub(body, 0, IMEI_LEN));
        int rc = decode_block(r, body + IMEI_LEN, n - IMEI_LEN);
        if (rc == 0)
            set_reply(reply, id, "AP05", "");
        return rc;
    }
    if (memcmp(cmd, "BO01", 4) == 0) { /* alarm: code + position, acknowledged with AS01 */
        if (n < 1)
            return ST_EMALFORMED;
        char code[2] = {body[0], '\0'};
        int rc = decode_block(r, body + 1, n - 1);
        if (rc < 0)
            return rc;
        report_attr_set(r, "alarm_code", "%s", code);
        alarm_event(r, body[0]);
        set_reply(reply, id, "AS01", code);
        return 0;
    }
    if (memcmp(cmd, "BR0", 3) == 0 || memcmp(cmd, "BP04", 4) == 0) /* positions, no answer */
        return decode_block(r, body, n);
    if (memcmp(cmd, "BZ00", 4) == 0)
        return decode_cells(r, body, n);
    return ST_EUNSUPPORTED;
}

static int tk103_decode(struct proto_ctx *ctx, const uint8_t *frame, size_t len, struct report *out,
                        size_t max_out, size_t *n_out, struct proto_reply *reply)
{
    (void)ctx;
    *n_out = 0;
    reply->len = 0;
    if (max_out == 0)
        return ST_EMALFORMED;
    report_init(out, "tk103");
    int rc = decode_frame(frame, len, out, reply);
    if (rc == 0 || rc == ST_EUNSUPPORTED)
        *n_out = 1;
    else
        reply->len = 0;
    return rc;
}

/* ---- downlink commands -------------------------------------------------- */

/* `(` ID command `)` as Traccar's TK103 encoder writes them: AP00 one position,
 * AR00 + 4 hex digits interval + 0000, AV01 + 0/1 oil and power, AT00 restart. */
static int tk103_encode(struct proto_ctx *ctx, const struct proto_command *cmd, uint8_t *out,
                        size_t cap, size_t *len)
{
    (void)ctx;
    char body[128];
    switch (cmd->type) {
    case PROTO_CMD_CUSTOM:
        if (!cmd->text || !*cmd->text || strlen(cmd->text) >= sizeof body ||
            strpbrk(cmd->text, "()"))
            return ST_EMALFORMED;
        snprintf(body, sizeof body, "%s", cmd->text);
        break;
    case PROTO_CMD_REBOOT: snprintf(body, sizeof body, "AT00"); break;
    case PROTO_CMD_POSITION: snprintf(body, sizeof body, "AP00"); break;
    case PROTO_CMD_ENGINE_STOP: snprintf(body, sizeof body, "AV010"); break;
    case PROTO_CMD_ENGINE_RESUME: snprintf(body, sizeof body, "AV011"); break;
    case PROTO_CMD_INTERVAL:
        if (cmd->number <= 0 || cmd->number > 0xFFFF)
            return ST_EMALFORMED;
        snprintf(body, sizeof body, "AR00%04lX0000", (unsigned long)cmd->number);
        break;
    default: return ST_EUNSUPPORTED;
    }
    const char *id = cmd->device_id;
    if (!id || strlen(id) != ID_LEN || !tc_digits(sub(id, 0, ID_LEN), ID_LEN, ID_LEN))
        return ST_EMALFORMED;
    return tc_command(out, cap, len, "(%s%s)", id, body);
}

const struct proto_ops proto_tk103 = {
    .name = "tk103",
    .detect = tk103_detect,
    .frame = tk103_frame,
    .decode = tk103_decode,
    .encode_command = tk103_encode,
};
