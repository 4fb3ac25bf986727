/* teltonika.c — Teltonika FMB/FMC/FMM trackers: Codec 8, Codec 8 Extended (0x8E) and
 * Codec 16 AVL data over TCP and UDP, Codec 12 GPRS commands and their answers
 * (docs/protocols/teltonika.md, Teltonika wiki "Teltonika Data Sending Protocols").
 *
 * Three frame shapes, told apart by their first two bytes (every one starts with 0x00..0x0F):
 *   IMEI     00 0F + 15 ASCII digits: the first TCP frame; answered 0x01.
 *   TCP data 00 00 00 00, data length (4), codec … count, CRC-16/IBM (4): no IMEI inside.
 *   UDP      length (2), packet id (2), 0x01, AVL packet id, 00 0F + IMEI, codec … count.
 * A UDP datagram is at least UDP_MIN bytes long, so its length never reads 0x0000 or 0x000F.
 * Pure code: no allocation, no logging; every read is bounded by the length passed in.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "../core/err.h"
#include "proto.h"

#define IMEI_LEN 15
#define IMEI_FRAME_LEN (2 + IMEI_LEN)
#define TCP_HEAD 8     /* 4 zero bytes + data field length */
#define TCP_CRC 4      /* CRC-16 in the low half of 4 bytes */
#define TCP_DATA_MIN 3 /* codec id, count, count */
#define TCP_DATA_MAX (PROTO_FRAME_MAX - TCP_HEAD - TCP_CRC)
#define UDP_IMEI_AT 6 /* length, packet id, unused byte, AVL packet id */
#define UDP_CODEC_AT (UDP_IMEI_AT + 2 + IMEI_LEN)
#define UDP_MIN (UDP_CODEC_AT + TCP_DATA_MIN)
#define UDP_UNUSED_BYTE 0x01
#define UDP_REPLY_LEN 7
#define LENGTH_HIGH_MAX 0x0F /* first byte of any frame: PROTO_FRAME_MAX is 0x1000 */

#define CODEC_8 0x08
#define CODEC_8E 0x8E
#define CODEC_16 0x10
#define CODEC_12 0x0C
#define CODEC_13 0x0D
#define CODEC_14 0x0E
#define CMD_HEAD 7 /* codec id, quantity, type, size (4) */
#define CMD_TYPE_COMMAND 0x05
#define CMD_TYPE_RESPONSE 0x06

#define RECORD_FIXED 24 /* timestamp (8), priority, GPS element (15) */
#define PRIORITY_PANIC 2
#define IO_GROUPS 4 /* values of 1, 2, 4 and 8 bytes; 8E adds a variable-length group */
#define IMEI_ACCEPT 0x01

/* ---- small readers ------------------------------------------------------ */

static unsigned be16(const uint8_t *p)
{
    return (unsigned)p[0] << 8 | p[1];
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t be_n(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    for (int i = 3; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static bool all_digits(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] < '0' || p[i] > '9')
            return false;
    return true;
}

/* CRC-16/IBM (reflected polynomial 0xA001, initial value 0), as the wiki specifies. */
static uint16_t crc16_ibm(const uint8_t *p, size_t n)
{
    unsigned crc = 0;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int b = 0; b < 8; b++)
            crc = crc & 1 ? crc >> 1 ^ 0xA001u : crc >> 1;
    }
    return (uint16_t)crc;
}

static bool is_avl_codec(unsigned codec)
{
    return codec == CODEC_8 || codec == CODEC_8E || codec == CODEC_16;
}

static bool is_known_codec(unsigned codec)
{
    return is_avl_codec(codec) || codec == CODEC_12 || codec == CODEC_13 || codec == CODEC_14;
}

static const char *codec_name(unsigned codec)
{
    switch (codec) {
    case CODEC_8: return "codec8";
    case CODEC_8E: return "codec8e";
    case CODEC_16: return "codec16";
    case CODEC_12: return "codec12";
    case CODEC_13: return "codec13";
    default: return "codec14";
    }
}

/* ---- frame layout ------------------------------------------------------- */

enum layout { LAYOUT_NEED, LAYOUT_BAD, LAYOUT_OK };

/* Which shape starts at buf and how long it is, from the header alone (no CRC, no
 * records): the framer's view. detect() adds the content checks. */
static enum layout frame_layout(const uint8_t *buf, size_t len, size_t *total)
{
    if (buf[0] > LENGTH_HIGH_MAX)
        return LAYOUT_BAD;
    if (len < 2)
        return LAYOUT_NEED;
    if (buf[0] == 0 && buf[1] == IMEI_LEN) {
        *total = IMEI_FRAME_LEN;
        size_t have = len < IMEI_FRAME_LEN ? len : IMEI_FRAME_LEN;
        if (!all_digits(buf + 2, have - 2))
            return LAYOUT_BAD;
        return have == IMEI_FRAME_LEN ? LAYOUT_OK : LAYOUT_NEED;
    }
    if (buf[0] == 0 && buf[1] == 0) {
        if ((len > 2 && buf[2]) || (len > 3 && buf[3]))
            return LAYOUT_BAD;
        if (len < TCP_HEAD + 1)
            return LAYOUT_NEED;
        uint32_t data_len = be32(buf + 4);
        if (data_len < TCP_DATA_MIN || data_len > TCP_DATA_MAX || !is_known_codec(buf[TCP_HEAD]))
            return LAYOUT_BAD;
        *total = TCP_HEAD + data_len + TCP_CRC;
        return LAYOUT_OK;
    }
    *total = be16(buf) + 2u;
    if (*total < UDP_MIN || *total > PROTO_FRAME_MAX)
        return LAYOUT_BAD;
    /* IMEI length 0x000F, 15 digits, an AVL codec: checked as far as the bytes go */
    static const uint8_t imei_len[2] = {0, IMEI_LEN};
    for (size_t i = UDP_IMEI_AT; i < UDP_IMEI_AT + 2 && i < len; i++)
        if (buf[i] != imei_len[i - UDP_IMEI_AT])
            return LAYOUT_BAD;
    size_t digits_end = len < UDP_CODEC_AT ? len : UDP_CODEC_AT;
    if (digits_end > UDP_IMEI_AT + 2 &&
        !all_digits(buf + UDP_IMEI_AT + 2, digits_end - UDP_IMEI_AT - 2))
        return LAYOUT_BAD;
    if (len <= UDP_CODEC_AT)
        return LAYOUT_NEED;
    return is_avl_codec(buf[UDP_CODEC_AT]) ? LAYOUT_OK : LAYOUT_BAD;
}

/* ---- IO elements -------------------------------------------------------- */

/* Walks the IO element of one record: event IO id, [generation type], total count, then
 * the groups of 1-, 2-, 4- and 8-byte values and (Codec 8E) the variable-length group. */
struct io_iter {
    const uint8_t *p;
    size_t len, off;
    unsigned id_len, count_len; /* Codec 8: 1/1; 8E: 2/2; 16: 2/1 */
    bool has_nx;
    int group;     /* 0..3 fixed sizes, 4 variable, -1 before the first */
    unsigned left; /* elements left in the group */
};

struct io_elem {
    unsigned id;
    const uint8_t *val;
    size_t len;
    bool variable; /* from the NX group: value kept as hex */
};

static int io_take(struct io_iter *it, size_t n, uint64_t *v)
{
    if (it->len - it->off < n)
        return ST_ETRUNCATED;
    *v = be_n(it->p + it->off, n);
    it->off += n;
    return 0;
}

/* Start at p (after the GPS element); read the event IO id and the generation type. */
static int io_begin(struct io_iter *it, unsigned codec, const uint8_t *p, size_t len,
                    unsigned *event_id, int *generation)
{
    *it = (struct io_iter){.p = p, .len = len, .group = -1, .has_nx = codec == CODEC_8E};
    it->id_len = codec == CODEC_8 ? 1 : 2;
    it->count_len = codec == CODEC_8E ? 2 : 1;
    uint64_t v = 0, total = 0;
    int rc = io_take(it, it->id_len, &v);
    *event_id = (unsigned)v;
    *generation = -1;
    if (!rc && codec == CODEC_16) {
        rc = io_take(it, 1, &v);
        *generation = (int)v;
    }
    return rc ? rc : io_take(it, it->count_len, &total);
}

/* Next element: 1, 0 at the end of the IO element, or a negative ST_E* code. */
static int io_next(struct io_iter *it, struct io_elem *e)
{
    uint64_t v = 0;
    while (it->left == 0) {
        if (++it->group >= IO_GROUPS + (it->has_nx ? 1 : 0))
            return 0;
        int rc = io_take(it, it->count_len, &v);
        if (rc)
            return rc;
        it->left = (unsigned)v;
    }
    it->left--;
    int rc = io_take(it, it->id_len, &v);
    if (rc)
        return rc;
    e->id = (unsigned)v;
    e->variable = it->group == IO_GROUPS;
    if (e->variable) {
        if ((rc = io_take(it, 2, &v)))
            return rc;
        e->len = (size_t)v;
    } else {
        e->len = (size_t)1 << it->group;
    }
    if (it->len - it->off < e->len)
        return ST_ETRUNCATED;
    e->val = it->p + it->off;
    it->off += e->len;
    return 1;
}

/* ---- record decoding ---------------------------------------------------- */

static void add_alarm(struct report *r, enum report_event_type type, const char *reason)
{
    struct report_event *e = report_add_event(r, type);
    if (e && reason)
        snprintf(e->reason, sizeof e->reason, "%s", reason);
}

/* The record was generated by IO `id` changing to `v` (FMB AVL ID list, eventual IOs). */
static void io_event(struct report *r, unsigned id, uint64_t v)
{
    static const char *const green_driving[] = {NULL, "harsh_acceleration", "harsh_braking",
                                                "harsh_cornering"};
    switch (id) {
    case 252: /* unplug: 1 = external power removed */
        if (v == 1)
            add_alarm(r, REPORT_EV_POWER_CUT, NULL);
        break;
    case 255: /* over speeding: the speed at start and end of the episode */
        add_alarm(r, REPORT_EV_OVERSPEED, NULL);
        break;
    case 246: /* towing: 1 = towing started */
        if (v == 1)
            add_alarm(r, REPORT_EV_ALARM, "towing");
        break;
    case 247: /* crash detection: 1..6 = crash kinds and traces */
        if (v)
            add_alarm(r, REPORT_EV_ALARM, "crash");
        break;
    case 249: /* jamming: 1 = jamming started */
        if (v == 1)
            add_alarm(r, REPORT_EV_ALARM, "jamming");
        break;
    case 253: /* green driving type */
        if (v >= 1 && v <= 3)
            add_alarm(r, REPORT_EV_ALARM, green_driving[v]);
        break;
    default: break;
    }
}

/* Named attributes of well-known IO ids (the raw io<id> is kept as well). */
static const struct io_name {
    uint16_t id;
    const char *name;
    enum { AS_INT, AS_BOOL, AS_MILLI, AS_DECI } kind;
} io_names[] = {
    {1, "din1", AS_INT},      {2, "din2", AS_INT},       {3, "din3", AS_INT},
    {179, "dout1", AS_INT},   {180, "dout2", AS_INT},    {239, "ignition", AS_BOOL},
    {240, "motion", AS_BOOL}, {66, "power_v", AS_MILLI}, {69, "gnss_status", AS_INT},
    {181, "pdop", AS_DECI},   {182, "hdop", AS_DECI},    {200, "sleep_mode", AS_INT},
};

struct cell_parts {
    bool has_cid, has_lac, has_operator;
    uint32_t cid, lac, operator_code;
};

/* Report fields and named attributes from one fixed-size IO value. */
static void io_apply(struct report *r, unsigned id, uint64_t v, struct cell_parts *cell)
{
    switch (id) {
    case 21: r->gsm_signal = (int16_t)(v > 5 ? 5 : v); return; /* scale 0..5 */
    case 67: r->battery_v = (double)v / 1000.0; return;        /* mV */
    case 113: r->battery_pct = (int16_t)(v > 100 ? 100 : v); return;
    case 16: r->odometer_km = (double)v / 1000.0; return; /* total odometer, m */
    case 205:
        cell->has_cid = true;
        cell->cid = (uint32_t)v;
        return;
    case 206:
        cell->has_lac = true;
        cell->lac = (uint32_t)v;
        return;
    case 241:
        cell->has_operator = true;
        cell->operator_code = (uint32_t)v;
        return;
    default: break;
    }
    for (size_t i = 0; i < sizeof io_names / sizeof io_names[0]; i++) {
        const struct io_name *n = &io_names[i];
        if (n->id != id)
            continue;
        switch (n->kind) {
        case AS_BOOL: report_attr_set(r, n->name, "%s", v ? "true" : "false"); break;
        case AS_MILLI: report_attr_set(r, n->name, "%.3f", (double)v / 1000.0); break;
        case AS_DECI: report_attr_set(r, n->name, "%.1f", (double)v / 10.0); break;
        case AS_INT: report_attr_set(r, n->name, "%llu", (unsigned long long)v); break;
        }
        return;
    }
}

/* The serving cell needs all three: cell id, area code and operator (MCC then a 2- or
 * 3-digit MNC, e.g. 24602 = 246/02, 310410 = 310/410). */
static void set_cell(struct report *r, const struct cell_parts *c)
{
    if (!c->has_cid || !c->has_lac || !c->has_operator)
        return;
    unsigned div = c->operator_code >= 100000 ? 1000 : 100;
    unsigned mcc = c->operator_code / div;
    if (mcc < 100 || mcc > 999)
        return; /* not an operator code */
    r->has_cell = true;
    r->cell.mcc = (uint16_t)mcc;
    r->cell.mnc = (uint16_t)(c->operator_code % div);
    r->cell.lac = c->lac;
    r->cell.cid = c->cid;
}

static void record_gps(struct report *r, const uint8_t *p)
{
    uint64_t ms = be_n(p, 8);
    r->fix_time = (int64_t)(ms / 1000);
    unsigned priority = p[8];
    report_attr_set(r, "priority", "%u", priority);
    if (priority == PRIORITY_PANIC)
        add_alarm(r, REPORT_EV_SOS, NULL);
    double lon = (double)(int32_t)be32(p + 9) / 1e7, lat = (double)(int32_t)be32(p + 13) / 1e7;
    /* no fix: the last valid coordinates with angle, satellites and speed 0; 0/0 = never had one */
    if ((lat != 0.0 || lon != 0.0) && lat >= -90.0 && lat <= 90.0 && lon >= -180.0 &&
        lon <= 180.0) {
        r->has_position = true;
        r->fix = REPORT_FIX_GNSS;
        r->lat = lat;
        r->lon = lon;
        r->has_altitude = true;
        r->altitude_m = (int16_t)be16(p + 17);
        r->course = be16(p + 19) % 360;
        r->speed_kmh = be16(p + 22);
    }
    r->satellites = p[21];
    r->valid = r->has_position && p[21] > 0;
}

/* One record's IO element: fields, events of the event IO, then every element raw. */
static void record_io(struct report *r, unsigned codec, const uint8_t *p, size_t len)
{
    struct io_iter it;
    struct io_elem e;
    struct cell_parts cell = {0};
    unsigned event_id;
    int generation;
    io_begin(&it, codec, p, len, &event_id, &generation); /* validated by record_length */
    report_attr_set(r, "event_io", "%u", event_id);
    if (generation >= 0)
        report_attr_set(r, "generation", "%d", generation);
    while (io_next(&it, &e) > 0) {
        if (e.variable)
            continue;
        uint64_t v = be_n(e.val, e.len);
        io_apply(r, e.id, v, &cell);
        if (e.id == event_id)
            io_event(r, e.id, v);
    }
    set_cell(r, &cell);
    char key[16];
    io_begin(&it, codec, p, len, &event_id, &generation);
    while (io_next(&it, &e) > 0) {
        snprintf(key, sizeof key, "io%u", e.id);
        if (e.variable)
            report_attr_hex(r, key, e.val, e.len);
        else
            report_attr_set(r, key, "%llu", (unsigned long long)be_n(e.val, e.len));
    }
}

/* Length of the record at p, or a negative ST_E* code. */
static int record_length(unsigned codec, const uint8_t *p, size_t len, size_t *used)
{
    if (len < RECORD_FIXED)
        return ST_ETRUNCATED;
    struct io_iter it;
    struct io_elem e;
    unsigned event_id;
    int generation,
        rc = io_begin(&it, codec, p + RECORD_FIXED, len - RECORD_FIXED, &event_id, &generation);
    while (!rc && (rc = io_next(&it, &e)) > 0)
        rc = 0;
    *used = RECORD_FIXED + it.off;
    return rc;
}

/* The AVL data `count, records…, count` (d[0..n)): checks it, and with `out` fills one
 * report per record. Returns the record count or a negative ST_E* code. */
static int avl_records(unsigned codec, const uint8_t *d, size_t n, const char *device_id,
                       struct report *out, size_t max_out)
{
    if (n < 2 || d[0] != d[n - 1] || d[0] == 0)
        return ST_EMALFORMED;
    unsigned count = d[0];
    if (out && count > max_out)
        return ST_ERANGE;
    size_t off = 1, end = n - 1;
    for (unsigned i = 0; i < count; i++) {
        size_t used;
        int rc = record_length(codec, d + off, end - off, &used);
        if (rc)
            return rc;
        if (out) {
            struct report *r = &out[i];
            report_init(r, "teltonika");
            snprintf(r->msg_type, sizeof r->msg_type, "%s", codec_name(codec));
            if (device_id)
                snprintf(r->device_id, sizeof r->device_id, "%s", device_id);
            record_gps(r, d + off);
            record_io(r, codec, d + off + RECORD_FIXED, used - RECORD_FIXED);
        }
        off += used;
    }
    return off == end ? (int)count : ST_EMALFORMED;
}

/* ---- Codec 12/13/14 ----------------------------------------------------- */

/* `codec, quantity, type, size (4), payload (size), quantity` fills the data field exactly. */
static bool command_shape_ok(const uint8_t *d, size_t n)
{
    return n >= CMD_HEAD + 1 && be32(d + 3) == n - CMD_HEAD - 1 && d[1] == d[n - 1];
}

/* A device's answer to a GPRS command: text when printable, else hex. */
static void command_answer(struct report *r, const uint8_t *text, size_t n)
{
    while (n && (text[n - 1] == '\r' || text[n - 1] == '\n'))
        n--;
    bool printable = true;
    for (size_t i = 0; i < n; i++)
        if (text[i] < 0x20 || text[i] > 0x7E)
            printable = false;
    if (printable)
        report_attr_set(r, "response", "%.*s", (int)n, (const char *)text);
    else
        report_attr_hex(r, "response_hex", text, n);
}

/* ---- detect / frame ----------------------------------------------------- */

static bool tcp_content_ok(const uint8_t *buf, size_t total)
{
    const uint8_t *d = buf + TCP_HEAD;
    size_t n = total - TCP_HEAD - TCP_CRC;
    if (be32(buf + TCP_HEAD + n) != crc16_ibm(d, n))
        return false;
    if (is_avl_codec(d[0]))
        return avl_records(d[0], d + 1, n - 1, NULL, NULL, 0) > 0;
    return command_shape_ok(d, n);
}

static int detect(const uint8_t *buf, size_t len)
{
    if (len == 0)
        return PROTO_DETECT_MAYBE;
    size_t total = 0;
    enum layout l = frame_layout(buf, len, &total);
    if (l != LAYOUT_OK)
        return l == LAYOUT_NEED ? PROTO_DETECT_MAYBE : PROTO_DETECT_NO;
    if (len < total)
        return PROTO_DETECT_MAYBE;
    bool ok;
    if (buf[0] == 0 && buf[1] == IMEI_LEN)
        ok = true; /* 00 0F + 15 digits, checked by frame_layout */
    else if (buf[0] == 0 && buf[1] == 0)
        ok = tcp_content_ok(buf, total);
    else
        ok = buf[4] == UDP_UNUSED_BYTE && avl_records(buf[UDP_CODEC_AT], buf + UDP_CODEC_AT + 1,
                                                      total - UDP_CODEC_AT - 1, NULL, NULL, 0) > 0;
    return ok ? PROTO_DETECT_YES : PROTO_DETECT_NO;
}

static ptrdiff_t frame(const uint8_t *buf, size_t len)
{
    if (len == 0)
        return 0;
    size_t total = 0;
    switch (frame_layout(buf, len, &total)) {
    case LAYOUT_NEED: return 0;
    case LAYOUT_OK: return len >= total ? (ptrdiff_t)total : 0;
    case LAYOUT_BAD: break;
    }
    /* garbage: skip to the next byte that can start a frame */
    size_t i = 1;
    while (i < len && buf[i] > LENGTH_HIGH_MAX)
        i++;
    return -(ptrdiff_t)i;
}

/* ---- decode ------------------------------------------------------------- */

static int decode_tcp(const uint8_t *f, size_t len, struct report *out, size_t max_out,
                      size_t *n_out, struct proto_reply *reply)
{
    if (len < TCP_HEAD + TCP_DATA_MIN + TCP_CRC || be32(f) != 0)
        return ST_EMALFORMED;
    uint32_t n = be32(f + 4);
    if (n < TCP_DATA_MIN || (size_t)n != len - TCP_HEAD - TCP_CRC)
        return ST_EMALFORMED;
    const uint8_t *d = f + TCP_HEAD;
    if (be32(d + n) != crc16_ibm(d, n))
        return ST_ECHECKSUM;
    unsigned codec = d[0];
    if (is_avl_codec(codec)) {
        int count = avl_records(codec, d + 1, n - 1, NULL, out, max_out);
        if (count < 0)
            return count;
        *n_out = (size_t)count;
        put_be32(reply->buf, (uint32_t)count); /* the records accepted */
        reply->len = 4;
        return 0;
    }
    if (!is_known_codec(codec) || !command_shape_ok(d, n))
        return ST_EMALFORMED;
    report_init(&out[0], "teltonika");
    snprintf(out[0].msg_type, sizeof out[0].msg_type, "%s", codec_name(codec));
    *n_out = 1;
    if (codec != CODEC_12 || d[2] != CMD_TYPE_RESPONSE)
        return ST_EUNSUPPORTED; /* Codec 13 messages, Codec 14, commands echoed back */
    command_answer(&out[0], d + CMD_HEAD, n - CMD_HEAD - 1);
    return 0;
}

static int decode_udp(const uint8_t *f, size_t len, struct report *out, size_t max_out,
                      size_t *n_out, struct proto_reply *reply)
{
    if (len < UDP_MIN || be16(f) + 2u != len || be16(f + UDP_IMEI_AT) != IMEI_LEN ||
        !all_digits(f + UDP_IMEI_AT + 2, IMEI_LEN))
        return ST_EMALFORMED;
    char imei[IMEI_LEN + 1];
    memcpy(imei, f + UDP_IMEI_AT + 2, IMEI_LEN);
    imei[IMEI_LEN] = '\0';
    snprintf(out[0].device_id, sizeof out[0].device_id, "%s", imei); /* names it on failure */
    unsigned codec = f[UDP_CODEC_AT];
    if (!is_avl_codec(codec))
        return ST_EMALFORMED;
    int count =
        avl_records(codec, f + UDP_CODEC_AT + 1, len - UDP_CODEC_AT - 1, imei, out, max_out);
    if (count < 0)
        return count;
    *n_out = (size_t)count;
    /* length 5, packet id, 0x01, AVL packet id, records accepted */
    reply->buf[0] = 0;
    reply->buf[1] = UDP_REPLY_LEN - 2;
    memcpy(reply->buf + 2, f + 2, 2);
    reply->buf[4] = UDP_UNUSED_BYTE;
    reply->buf[5] = f[5];
    reply->buf[6] = (uint8_t)count;
    reply->len = UDP_REPLY_LEN;
    return 0;
}

static int decode(struct proto_ctx *ctx, const uint8_t *f, size_t len, struct report *out,
                  size_t max_out, size_t *n_out, struct proto_reply *reply)
{
    (void)ctx;
    *n_out = 0;
    reply->len = 0;
    if (max_out == 0 || len < 2)
        return len < 2 ? ST_ETRUNCATED : ST_ERANGE;
    out[0].device_id[0] = '\0';
    if (len == IMEI_FRAME_LEN && f[0] == 0 && f[1] == IMEI_LEN) {
        if (!all_digits(f + 2, IMEI_LEN))
            return ST_EMALFORMED;
        report_init(&out[0], "teltonika");
        snprintf(out[0].msg_type, sizeof out[0].msg_type, "imei");
        memcpy(out[0].device_id, f + 2, IMEI_LEN);
        out[0].device_id[IMEI_LEN] = '\0';
        reply->buf[0] = IMEI_ACCEPT;
        reply->len = 1;
        *n_out = 1;
        return 0;
    }
    int rc = f[0] == 0 && f[1] == 0 ? decode_tcp(f, len, out, max_out, n_out, reply)
                                    : decode_udp(f, len, out, max_out, n_out, reply);
    if (rc < 0 && rc != ST_EUNSUPPORTED) {
        *n_out = 0;
        reply->len = 0;
    }
    return rc;
}

/* ---- downlink: Codec 12 GPRS commands ----------------------------------- */

/* 00000000, data size, 0x0C, 1, type 0x05, text size, text, 1, CRC-16 over codec..quantity. */
static int encode_command(struct proto_ctx *ctx, const struct proto_command *cmd, uint8_t *out,
                          size_t cap, size_t *len)
{
    (void)ctx;
    const char *text;
    switch (cmd->type) {
    case PROTO_CMD_CUSTOM: text = cmd->text; break;
    case PROTO_CMD_REBOOT: text = "cpureset"; break;
    case PROTO_CMD_POSITION: text = "getrecord"; break; /* a high-priority record, now */
    default: return ST_EUNSUPPORTED;
    }
    if (!text || !*text)
        return ST_EMALFORMED;
    size_t n = strlen(text), data = CMD_HEAD + n + 1, total = TCP_HEAD + data + TCP_CRC;
    if (total > PROTO_FRAME_MAX)
        return ST_ERANGE;
    if (cap < total)
        return ST_ERANGE;
    put_be32(out, 0);
    put_be32(out + 4, (uint32_t)data);
    uint8_t *d = out + TCP_HEAD;
    d[0] = CODEC_12;
    d[1] = 1;
    d[2] = CMD_TYPE_COMMAND;
    put_be32(d + 3, (uint32_t)n);
    memcpy(d + CMD_HEAD, text, n);
    d[CMD_HEAD + n] = 1;
    put_be32(d + data, crc16_ibm(d, data));
    *len = total;
    return 0;
}

const struct proto_ops proto_teltonika = {
    .name = "teltonika",
    .detect = detect,
    .frame = frame,
    .decode = decode,
    .encode_command = encode_command,
};
