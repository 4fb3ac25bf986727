/* meitrack.c — Meitrack GPRS protocol (MVT/T1/T3/T333/T622…), docs/protocols/meitrack.md.
 *
 * Device → server: `$$<flag><length>,<IMEI>,<command>,<data>*<checksum>\r\n`
 *   flag     one byte 0x41..0x7A (echoed by command replies)
 *   length   decimal, counts from the comma before the IMEI through `\r\n`
 *   checksum two hex digits: sum of every byte from `$$` through `*`, mod 256
 * Server → device: the same with `@@`. The length field makes framing exact,
 * so binary payloads (CCE) may contain `*`, `,` or CR LF.
 * Pure code: no allocation, no logging; every read is bounded by a length.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "../core/err.h"
#include "proto.h"
#include "text_common.h"

#define TAIL_LEN 5 /* `*`, two checksum digits, CR, LF */
#define LEN_DIGITS_MAX 4
#define IMEI_MIN 10
#define IMEI_MAX 20
#define CMD_LEN 3
#define AAA_FIELDS 17 /* 16 documented positions + the raw rest */
#define SECONDS_1970_TO_2000 946684800
#define INTERVAL_UNIT_S 10 /* A12 counts tens of seconds */
#define INTERVAL_MAX 65535

struct header {
    size_t total; /* whole frame, bytes */
    size_t imei_off, imei_len;
    size_t cmd_off; /* 3 command characters */
};

enum parse { PARSE_NEED, PARSE_BAD, PARSE_OK };

static bool is_upper_alnum(uint8_t c)
{
    return tc_is_digit(c) || tc_is_upper(c);
}

/* `$$`, flag, length, IMEI and command: everything before the data. */
static enum parse parse_header(const uint8_t *b, size_t len, struct header *h)
{
    static const uint8_t start[2] = {'$', '$'};
    for (size_t i = 0; i < 2; i++) {
        if (i >= len)
            return PARSE_NEED;
        if (b[i] != start[i])
            return PARSE_BAD;
    }
    if (len < 3)
        return PARSE_NEED;
    if (b[2] < 0x41 || b[2] > 0x7A)
        return PARSE_BAD;
    size_t i = 3, length = 0;
    for (; i < len && tc_is_digit(b[i]); i++) {
        if (i - 3 >= LEN_DIGITS_MAX)
            return PARSE_BAD;
        length = length * 10 + (size_t)(b[i] - '0');
    }
    if (i >= len)
        return PARSE_NEED;
    if (i == 3 || b[i] != ',')
        return PARSE_BAD;
    size_t len_end = i++;
    h->imei_off = i;
    for (; i < len && tc_is_digit(b[i]); i++)
        if (i - h->imei_off >= IMEI_MAX)
            return PARSE_BAD;
    if (i >= len)
        return PARSE_NEED;
    h->imei_len = i - h->imei_off;
    if (h->imei_len < IMEI_MIN || b[i] != ',')
        return PARSE_BAD;
    h->cmd_off = ++i;
    for (; i < h->cmd_off + CMD_LEN; i++) {
        if (i >= len)
            return PARSE_NEED;
        if (!is_upper_alnum(b[i]))
            return PARSE_BAD;
    }
    if (i >= len)
        return PARSE_NEED;
    if (b[i] != ',' && b[i] != '*')
        return PARSE_BAD;
    h->total = len_end + length;
    /* the length must reach at least past the command and the tail */
    if (h->total < i + TAIL_LEN || h->total > PROTO_FRAME_MAX)
        return PARSE_BAD;
    return PARSE_OK;
}

static int hex_nibble(uint8_t c)
{
    return tc_is_digit(c)            ? c - '0'
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                  : -1;
}

static uint8_t byte_sum(const uint8_t *b, size_t n)
{
    unsigned s = 0;
    for (size_t i = 0; i < n; i++)
        s += b[i];
    return (uint8_t)s;
}

/* `*XX\r\n` closes the frame; returns the checksum it carries, or -1. */
static int tail_checksum(const uint8_t *b, size_t total)
{
    const uint8_t *t = b + total - TAIL_LEN;
    if (t[0] != '*' || t[3] != '\r' || t[4] != '\n')
        return -1;
    int hi = hex_nibble(t[1]), lo = hex_nibble(t[2]);
    return hi < 0 || lo < 0 ? -1 : hi << 4 | lo;
}

static bool checksum_ok(const uint8_t *b, size_t total)
{
    return tail_checksum(b, total) == byte_sum(b, total - TAIL_LEN + 1);
}

/* Skip to the next `$$` (at least one byte). */
static ptrdiff_t resync(const uint8_t *b, size_t len)
{
    size_t i = 1;
    while (i < len && !(b[i] == '$' && (i + 1 == len || b[i + 1] == '$')))
        i++;
    return -(ptrdiff_t)i;
}

static int meitrack_detect(const uint8_t *buf, size_t len)
{
    struct header h;
    switch (parse_header(buf, len, &h)) {
    case PARSE_NEED: return PROTO_DETECT_MAYBE;
    case PARSE_BAD: return PROTO_DETECT_NO;
    case PARSE_OK: break;
    }
    if (len < h.total)
        return PROTO_DETECT_MAYBE;
    return checksum_ok(buf, h.total) ? PROTO_DETECT_YES : PROTO_DETECT_NO;
}

static ptrdiff_t meitrack_frame(const uint8_t *buf, size_t len)
{
    struct header h;
    if (len == 0)
        return 0;
    switch (parse_header(buf, len, &h)) {
    case PARSE_NEED: return 0;
    case PARSE_BAD: return resync(buf, len);
    case PARSE_OK: break;
    }
    if (len < h.total)
        return 0;
    return tail_checksum(buf, h.total) < 0 ? resync(buf, len) : (ptrdiff_t)h.total;
}

/* ---- AAA / AFF text records --------------------------------------------- */

/* Event codes with a typed event (MEITRACK GPRS protocol, "Event Code" table);
 * every code is also kept as the `event` attribute. */
static void add_event_for_code(struct report *r, uint64_t code)
{
    switch (code) {
    case 1: tc_event(r, REPORT_EV_SOS, "", -1); break;
    case 17: tc_event(r, REPORT_EV_LOW_BATTERY, "", -1); break;
    case 18: tc_event(r, REPORT_EV_LOW_BATTERY, "external_power_low", -1); break;
    case 19: tc_event(r, REPORT_EV_OVERSPEED, "", -1); break;
    case 20: tc_event(r, REPORT_EV_GEOFENCE_ENTER, "", -1); break;
    case 21: tc_event(r, REPORT_EV_GEOFENCE_EXIT, "", -1); break;
    case 23: tc_event(r, REPORT_EV_POWER_CUT, "", -1); break;
    default: break;
    }
}

/* `MCC|MNC|LAC|CI`, decimal MCC/MNC and hexadecimal LAC/CI. */
static void decode_base_station(struct report *r, struct tc_field f)
{
    struct tc_field p[5];
    uint64_t mcc, mnc, lac, ci;
    tc_attr(r, "base_station", f);
    if (tc_split(f.p, f.n, '|', p, 5) == 4 && tc_uint(p[0], 999, &mcc) &&
        tc_uint(p[1], 999, &mnc) && tc_hex(p[2], 0xFFFFFFFF, &lac) &&
        tc_hex(p[3], 0xFFFFFFFF, &ci) && mcc != 0) {
        r->has_cell = true;
        r->cell.mcc = (uint16_t)mcc;
        r->cell.mnc = (uint16_t)mnc;
        r->cell.lac = (uint32_t)lac;
        r->cell.cid = (uint32_t)ci;
    }
}

/* Newer firmware sends volts as decimals (`4.33|12.96|…`): battery, then
 * external power. Older firmware sends model-scaled hex: kept raw only. */
static void decode_analog(struct report *r, struct tc_field f)
{
    struct tc_field p[8];
    double battery, power;
    tc_attr(r, "analog", f);
    size_t n = tc_split(f.p, f.n, '|', p, 8);
    if (n >= 2 && memchr(p[0].p, '.', p[0].n) && tc_decimal(p[0], &battery) &&
        tc_decimal(p[1], &power)) {
        r->battery_v = battery;
        report_attr_set(r, "power_v", "%.2f", power);
    }
}

static int decode_aaa(struct report *r, const char *data, size_t n)
{
    struct tc_field f[AAA_FIELDS];
    size_t nf = tc_split(data, n, ',', f, AAA_FIELDS);
    uint64_t event, sats, gsm, mileage, runtime;
    double lat, lon, speed, course, alt;
    int64_t t;
    if (nf < 15)
        return ST_EMALFORMED;
    if (!tc_uint(f[0], 65535, &event) || !tc_decimal(f[1], &lat) || !tc_decimal(f[2], &lon) ||
        lat < -90 || lat > 90 || lon < -180 || lon > 180 || !tc_time_digits(f[3].p, f[3].n, &t) ||
        !(tc_eq(f[4], "A") || tc_eq(f[4], "V")) || !tc_uint(f[5], 99, &sats) ||
        !tc_uint(f[6], 99, &gsm) || !tc_decimal(f[7], &speed) || speed < 0 ||
        !tc_decimal(f[8], &course) || !tc_decimal(f[10], &alt) ||
        !tc_uint(f[11], UINT32_MAX, &mileage) || !tc_uint(f[12], UINT32_MAX, &runtime))
        return ST_EMALFORMED;
    report_attr_set(r, "event", "%u", (unsigned)event);
    add_event_for_code(r, event);
    r->has_position = true;
    r->lat = lat;
    r->lon = lon;
    r->fix_time = t;
    r->valid = f[4].p[0] == 'A';
    r->fix = r->valid ? REPORT_FIX_GNSS : REPORT_FIX_NONE;
    r->satellites = (int16_t)sats;
    r->gsm_signal = (int16_t)gsm;
    r->speed_kmh = speed;
    r->course = course;
    tc_attr(r, "hdop", f[9]);
    r->has_altitude = true;
    r->altitude_m = alt;
    r->odometer_km = (double)mileage / 1000.0;
    report_attr_set(r, "runtime_s", "%llu", (unsigned long long)runtime);
    decode_base_station(r, f[13]);
    tc_attr(r, "io_status", f[14]);
    if (nf > 15)
        decode_analog(r, f[15]);
    if (nf > 16)
        tc_attr(r, "extra", f[16]); /* fields models add after the analog inputs */
    return 0;
}

/* ---- CCE binary batches --------------------------------------------------- */

static unsigned le16(const uint8_t *p)
{
    return (unsigned)p[0] | (unsigned)p[1] << 8;
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* One parameter of a CCE record: id, value width in bytes, value. */
static void cce_param(struct report *r, unsigned id, size_t width, const uint8_t *v)
{
    uint32_t u = width == 1 ? v[0] : width == 2 ? le16(v) : le32(v);
    switch (id) {
    case 0x01:
    case 0x40:
        report_attr_set(r, "event", "%u", (unsigned)u);
        add_event_for_code(r, u);
        break;
    case 0x02: r->lat = (int32_t)u / 1e6; break;
    case 0x03: r->lon = (int32_t)u / 1e6; break;
    case 0x04: r->fix_time = (int64_t)u + SECONDS_1970_TO_2000; break;
    case 0x05:
        r->valid = u != 0;
        r->fix = r->valid ? REPORT_FIX_GNSS : REPORT_FIX_NONE;
        break;
    case 0x06: r->satellites = (int16_t)u; break;
    case 0x07: r->gsm_signal = (int16_t)u; break;
    case 0x08: r->speed_kmh = u; break;
    case 0x09: r->course = u; break;
    case 0x0B:
        r->has_altitude = true;
        r->altitude_m = (int16_t)(uint16_t)u;
        break;
    case 0x0C: r->odometer_km = u / 1000.0; break;
    case 0x0D: report_attr_set(r, "runtime_s", "%u", (unsigned)u); break;
    case 0x14: report_attr_set(r, "output", "%u", (unsigned)u); break;
    case 0x15: report_attr_set(r, "input", "%u", (unsigned)u); break;
    case 0x19: r->battery_v = u / 100.0; break;
    case 0x1A: report_attr_set(r, "power_v", "%.2f", u / 100.0); break;
    default: {
        char key[16];
        snprintf(key, sizeof key, "p%02x", id);
        report_attr_set(r, key, "%u", (unsigned)u);
        break;
    }
    }
}

/* Parameter id: one byte, or 0xFE + one byte for the extended ids. */
static bool cce_id(const uint8_t *p, size_t end, size_t *i, unsigned *id)
{
    if (*i >= end)
        return false;
    if (p[*i] != 0xFE) {
        *id = p[(*i)++];
        return true;
    }
    if (*i + 2 > end)
        return false;
    *id = 0xFE00u | p[*i + 1];
    *i += 2;
    return true;
}

/* Four groups: 1-, 2- and 4-byte values, then id + length + bytes. */
static int decode_cce_record(struct report *r, const uint8_t *p, size_t n)
{
    static const size_t widths[3] = {1, 2, 4};
    size_t i = 2; /* record index first */
    report_attr_set(r, "index", "%u", le16(p));
    for (int g = 0; g < 4; g++) {
        if (i >= n)
            return ST_ETRUNCATED;
        unsigned count = p[i++];
        for (unsigned k = 0; k < count; k++) {
            unsigned id;
            if (!cce_id(p, n, &i, &id))
                return ST_ETRUNCATED;
            size_t width = g < 3 ? widths[g] : (i < n ? p[i++] : n);
            if (width > n - i)
                return ST_ETRUNCATED;
            if (g < 3) {
                cce_param(r, id, width, p + i);
            } else {
                char key[24];
                snprintf(key, sizeof key, id == 0x0E ? "base_station_hex" : "p%02x", id);
                report_attr_hex(r, key, p + i, width);
            }
            i += width;
        }
    }
    return i == n ? 0 : ST_EMALFORMED;
}

static int decode_cce(const uint8_t *d, size_t n, struct report *out, size_t max_out, size_t *n_out)
{
    /* out[0] is reused for the first record: keep the header fields apart */
    char device_id[REPORT_ID_LEN], msg_type[sizeof out[0].msg_type];
    memcpy(device_id, out[0].device_id, sizeof device_id);
    memcpy(msg_type, out[0].msg_type, sizeof msg_type);
    if (n < 6)
        return ST_ETRUNCATED;
    uint32_t remaining = le32(d);
    unsigned count = le16(d + 4);
    size_t i = 6;
    if (count == 0 || count > max_out)
        return ST_ERANGE;
    for (unsigned k = 0; k < count; k++) {
        if (n - i < 2)
            return ST_ETRUNCATED;
        size_t rlen = le16(d + i);
        i += 2;
        if (rlen < 2 || rlen > n - i)
            return ST_ETRUNCATED;
        struct report *r = &out[k];
        report_init(r, "meitrack");
        memcpy(r->device_id, device_id, sizeof r->device_id);
        memcpy(r->msg_type, msg_type, sizeof r->msg_type);
        r->has_position = true;
        report_attr_set(r, "cache_remaining", "%u", (unsigned)remaining);
        int rc = decode_cce_record(r, d + i, rlen);
        if (rc < 0)
            return rc;
        i += rlen;
    }
    if (i != n)
        return ST_EMALFORMED;
    *n_out = count;
    return 0;
}

/* ---- decode --------------------------------------------------------------- */

static bool printable(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] < 0x20 || p[i] > 0x7E)
            return false;
    return true;
}

static int meitrack_decode(struct proto_ctx *ctx, const uint8_t *frame, size_t len,
                           struct report *out, size_t max_out, size_t *n_out,
                           struct proto_reply *reply)
{
    (void)ctx;
    struct header h;
    *n_out = 0;
    reply->len = 0;
    if (max_out == 0)
        return ST_ERANGE;
    report_init(&out[0], "meitrack");
    if (parse_header(frame, len, &h) != PARSE_OK || h.total != len)
        return ST_EMALFORMED;
    struct report *r = &out[0];
    tc_set_device_id(r, (struct tc_field){(const char *)frame + h.imei_off, h.imei_len});
    memcpy(r->msg_type, frame + h.cmd_off, CMD_LEN);
    r->msg_type[CMD_LEN] = '\0';
    if (!checksum_ok(frame, len))
        return ST_ECHECKSUM;
    /* data: after `<cmd>,` up to the `*` of the tail (empty for `<cmd>*`) */
    size_t data_off = h.cmd_off + CMD_LEN + 1, data_end = len - TAIL_LEN;
    if (data_off > data_end)
        data_off = data_end;
    const uint8_t *data = frame + data_off;
    size_t n = data_end - data_off;
    const char *text = (const char *)data;
    int rc;
    if (strcmp(r->msg_type, "CCE") == 0)
        return decode_cce(data, n, out, max_out, n_out);
    if (strcmp(r->msg_type, "AAA") == 0) {
        rc = decode_aaa(r, text, n);
    } else if (strcmp(r->msg_type, "AFF") == 0) {
        /* AAA preceded by the record serial (C03 confirmation mode) */
        const char *comma = memchr(text, ',', n);
        if (!comma)
            return ST_EMALFORMED;
        tc_attr(r, "serial", (struct tc_field){text, (size_t)(comma - text)});
        rc = decode_aaa(r, comma + 1, n - (size_t)(comma - text) - 1);
    } else if (printable(data, n)) {
        tc_attr(r, "response", (struct tc_field){text, n}); /* command answer, e.g. `OK` */
        rc = 0;
    } else {
        *n_out = 1;
        return ST_EUNSUPPORTED; /* binary payloads other than CCE (photos) */
    }
    if (rc == 0)
        *n_out = 1;
    return rc;
}

/* ---- commands --------------------------------------------------------------- */

/* `@@<flag><length>,<IMEI>,<content>*<checksum>\r\n`. */
static int frame_command(char flag, const char *imei, const char *content, uint8_t *out, size_t cap,
                         size_t *len)
{
    size_t ilen = imei ? strlen(imei) : 0, clen = strlen(content);
    if (ilen < IMEI_MIN || ilen > IMEI_MAX || clen == 0)
        return ST_EMALFORMED;
    for (size_t i = 0; i < ilen; i++)
        if (!tc_is_digit((uint8_t)imei[i]))
            return ST_EMALFORMED;
    if (!printable((const uint8_t *)content, clen))
        return ST_EMALFORMED;
    size_t length = 1 + ilen + 1 + clen + TAIL_LEN;
    int head = snprintf((char *)out, cap, "@@%c%zu,%s,%s*", flag, length, imei, content);
    if (head < 0 || (size_t)head + 4 + 1 > cap)
        return ST_ERANGE;
    size_t n = (size_t)head;
    snprintf((char *)out + n, cap - n, "%02X\r\n", byte_sum(out, n));
    *len = n + 4;
    return 0;
}

static int meitrack_encode(struct proto_ctx *ctx, const struct proto_command *cmd, uint8_t *out,
                           size_t cap, size_t *len)
{
    (void)ctx;
    char content[64];
    switch (cmd->type) {
    case PROTO_CMD_CUSTOM:
        if (!cmd->text)
            return ST_EMALFORMED;
        return frame_command('A', cmd->device_id, cmd->text, out, cap, len);
    case PROTO_CMD_POSITION: return frame_command('Q', cmd->device_id, "A10", out, cap, len);
    case PROTO_CMD_INTERVAL: {
        if (cmd->number < 0 || cmd->number > (long)INTERVAL_MAX * INTERVAL_UNIT_S)
            return ST_EMALFORMED;
        /* tens of seconds, rounded up so a short interval never becomes 0 (= off) */
        long tens = (cmd->number + INTERVAL_UNIT_S - 1) / INTERVAL_UNIT_S;
        snprintf(content, sizeof content, "A12,%ld", tens);
        return frame_command('V', cmd->device_id, content, out, cap, len);
    }
    /* C01,<speed>,<outputs 1..5>: 1 on, 0 off, 2 unchanged; speed 0 = at once */
    case PROTO_CMD_ENGINE_STOP:
        return frame_command('M', cmd->device_id, "C01,0,12222", out, cap, len);
    case PROTO_CMD_ENGINE_RESUME:
        return frame_command('M', cmd->device_id, "C01,0,02222", out, cap, len);
    default: return ST_EUNSUPPORTED;
    }
}

const struct proto_ops proto_meitrack = {
    .name = "meitrack",
    .detect = meitrack_detect,
    .frame = meitrack_frame,
    .decode = meitrack_decode,
    .encode_command = meitrack_encode,
};
