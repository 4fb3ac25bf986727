/* jt808.c — JT/T 808 (2011/2013/2019 headers) with the Jointech JT709A meanings of the
 * vendor items, status and alarm bits, the Jointech 0x5501/0x5502 report, and the
 * `(ID,1,NNN,…)` text frames those devices mix into the same connection (decoded by
 * jt600_decode_text). Decisions and their reasons: docs/protocols/jt808.md.
 *
 * Invariants: decode() never reads past `len`, allocates nothing and logs nothing;
 * every frame is un-escaped into a stack buffer of PROTO_FRAME_MAX bytes first, so all
 * field reads below work on plain bytes with explicit length checks.
 */
#include "jt808.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "../core/err.h"
#include "../core/timeutil.h"
#include "jointech_block.h"
#include "jt600.h"

#define DELIM 0x7E
#define ESCAPE 0x7D
#define TEXT_OPEN '('
#define TEXT_CLOSE ')'
#define TEXT_ID_DIGITS 12 /* JT709 texts; JT600 texts carry 10 and belong to proto_jt600 */

enum {
    MSG_TERMINAL_ACK = 0x0001,
    MSG_HEARTBEAT = 0x0002,
    MSG_LOGOUT = 0x0003,
    MSG_REGISTER = 0x0100,
    MSG_AUTH = 0x0102,
    MSG_LOCATION = 0x0200,
    MSG_LOCATION_ANSWER = 0x0201, /* answer to 0x8201: the query's serial, then a 0x0200 body */
    MSG_BATCH = 0x0704,
    MSG_JT_REPORT_ACK = 0x4401,
    MSG_JT_REPORT = 0x5501,
    MSG_JT_REPORT_BLIND = 0x5502,
    MSG_SERVER_ACK = 0x8001,
    MSG_REGISTER_ACK = 0x8100,
    MSG_SET_PARAMS = 0x8103,
    MSG_TERMINAL_CONTROL = 0x8105,
    MSG_LOCATION_QUERY = 0x8201,
    MSG_TEXT_DOWN = 0x8300,
};

/* Body attribute word. */
#define ATTR_LEN_MASK 0x03FFu
#define ATTR_ENCRYPTED 0x1C00u
#define ATTR_SUBPACKET 0x2000u
#define ATTR_V2019 0x4000u
#define ATTR_JT_WANTS_ACK 0x8000u /* 0x5501/0x5502 only */

#define HDR_LEN_2013 12
#define HDR_LEN_2019 17
#define HDR_LEN_JT 11 /* 0x5501/0x5502: 2013 header with a 1-byte serial */
#define TERMINAL_LEN_2013 6
#define TERMINAL_LEN_2019 10
#define SUBPACKET_LEN 4
#define BODY_MAX ATTR_LEN_MASK

#define LOCATION_LEN 28 /* fixed part of a 0x0200 body */
#define JT_REPORT_LEN 35 /* fixed part of a 0x5501 body */
/* Fixed part of a 2013 registration (20-byte model); shorter bodies use the 2011 layout. */
#define REGISTER_MIN_2013 37

/* 0x0200 status bits (standard, and the Jointech readings of §4.2). */
#define ST_POSITIONED (1u << 1)
#define ST_SOUTH (1u << 2)
#define ST_WEST (1u << 3)
#define ST_JT_LBS (1u << 6)
#define ST_JT_BACK_COVER (1u << 7)
#define ST_GNSS (1u << 18)
#define ST_BEIDOU (1u << 19)
#define ST_JT_ROPE_OPEN (1u << 20)
#define ST_JT_MOTOR_OPEN (1u << 21)
#define ST_JT_WAKE_SHIFT 24

#define JT_BATTERY_CHARGING 0xFF
#define JT_UNLOCK_FAILED 0xFF
#define JT_FENCE_MAX 99
#define JT_PASSWORD_LEN 6
#define JT_CARD_LEN 4

static uint16_t be16(const uint8_t *b)
{
    return (uint16_t)(b[0] << 8 | b[1]);
}

static uint32_t be32(const uint8_t *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

static uint8_t *put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
    return p + 2;
}

static uint8_t *put32(uint8_t *p, uint32_t v)
{
    p = put16(p, (uint16_t)(v >> 16));
    return put16(p, (uint16_t)v);
}

/* Eight bytes at a time, folded at the end: the checksum covers every frame byte twice
 * (receive and reply). */
static uint8_t xor_sum(const uint8_t *b, size_t len)
{
    uint64_t w = 0;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t v;
        memcpy(&v, b + i, sizeof v);
        w ^= v;
    }
    w ^= w >> 32;
    w ^= w >> 16;
    w ^= w >> 8;
    uint8_t x = (uint8_t)w;
    for (; i < len; i++)
        x ^= b[i];
    return x;
}

/* Lower-case hex of b into out (NUL-terminated); cut at the room available. Returns
 * whether every digit written is decimal (packed BCD). */
static bool hex_text(const uint8_t *b, size_t len, char *out, size_t cap)
{
    static const char digits[] = "0123456789abcdef";
    size_t n = 0;
    unsigned letters = 0;
    for (size_t i = 0; i < len && n + 2 < cap; i++) {
        letters |= ((b[i] >> 4) + 6u) | ((b[i] & 15) + 6u); /* bit 4 set: a nibble above 9 */
        out[n++] = digits[b[i] >> 4];
        out[n++] = digits[b[i] & 15];
    }
    if (cap)
        out[n] = '\0';
    return !(letters & 16);
}

/* ---------------------------------------------------------------------------------------
 * Escaping (§3.1): 0x7E ↔ 7D 02, 0x7D ↔ 7D 01 between the two delimiters.
 */

/* Bytes before the first 0x7E or 0x7D in b[0..len): memchr finds them many bytes a step. */
static size_t plain_run(const uint8_t *b, size_t len)
{
    const uint8_t *delim = memchr(b, DELIM, len);
    size_t n = delim ? (size_t)(delim - b) : len;
    const uint8_t *esc = memchr(b, ESCAPE, n);
    return esc ? (size_t)(esc - b) : n;
}

/* Un-escape in[0..len) into out[0..cap) until the input ends, the room ends or a 0x7E
 * (a delimiter) is met; *used = input bytes consumed (a trailing lone 0x7D is left
 * unconsumed: on a partial buffer its partner has not arrived yet). Returns the output
 * length, or ST_EMALFORMED for 0x7D followed by anything but 01/02. */
static ptrdiff_t unescape(const uint8_t *in, size_t len, uint8_t *out, size_t cap, size_t *used)
{
    size_t i = 0, n = 0;
    for (;;) {
        size_t run = plain_run(in + i, len - i);
        if (run > cap - n)
            run = cap - n;
        memcpy(out + n, in + i, run);
        i += run;
        n += run;
        if (i >= len || n >= cap || in[i] == DELIM || i + 1 >= len)
            break;
        if (in[i + 1] != 0x01 && in[i + 1] != 0x02)
            return ST_EMALFORMED;
        out[n++] = (uint8_t)(ESCAPE + in[i + 1] - 1);
        i += 2;
    }
    *used = i;
    return (ptrdiff_t)n;
}

/* Wrap content[0..len) as a wire frame: delimiters, escapes. Returns the length or ST_ERANGE. */
static ptrdiff_t escape_frame(const uint8_t *content, size_t len, uint8_t *out, size_t cap)
{
    size_t n = 0;
    if (cap < 2)
        return ST_ERANGE;
    out[n++] = DELIM;
    for (size_t i = 0; i < len; i++) { /* a run of plain bytes, then one escaped */
        size_t run = plain_run(content + i, len - i);
        if (n + run + 1 > cap)
            return ST_ERANGE;
        memcpy(out + n, content + i, run);
        n += run;
        i += run;
        if (i == len)
            break;
        if (n + 2 + 1 > cap)
            return ST_ERANGE;
        out[n++] = ESCAPE;
        out[n++] = content[i] == DELIM ? 0x02 : 0x01;
    }
    out[n++] = DELIM;
    return (ptrdiff_t)n;
}

/* What one frame header says, plus where the body and checksum sit in the un-escaped bytes. */
struct frame_head {
    uint16_t msg_id, attr;
    bool v2019;
    uint8_t version;
    bool short_serial; /* 0x5501/0x5502 */
    const uint8_t *terminal;
    size_t terminal_len;
    uint16_t serial;
    bool subpacket;
    uint16_t packet_total, packet_index;
    const uint8_t *body;
    size_t body_len;      /* bytes actually present before the checksum */
    size_t declared_len;  /* attr bits 0–9 */
    bool checksum_ok;
    bool binary_imei;
    char device_id[REPORT_ID_LEN];
};

/* Everything a frame built here carries (replies and the encoder share this). */
struct frame_spec {
    uint16_t msg_id;
    bool v2019;
    uint8_t version;
    const uint8_t *terminal;
    size_t terminal_len;
    uint16_t serial;
    bool short_serial;
    const uint8_t *body;
    size_t body_len;
};

static ptrdiff_t frame_build(const struct frame_spec *s, uint8_t *out, size_t cap)
{
    uint8_t c[HDR_LEN_2019 + BODY_MAX + 1];
    if (s->body_len > BODY_MAX)
        return ST_ERANGE;
    uint8_t *p = put16(c, s->msg_id);
    p = put16(p, (uint16_t)(s->body_len | (s->v2019 ? ATTR_V2019 : 0)));
    if (s->v2019)
        *p++ = s->version;
    memcpy(p, s->terminal, s->terminal_len);
    p += s->terminal_len;
    if (s->short_serial)
        *p++ = (uint8_t)s->serial;
    else
        p = put16(p, s->serial);
    if (s->body_len)
        memcpy(p, s->body, s->body_len);
    p += s->body_len;
    size_t n = (size_t)(p - c);
    c[n] = xor_sum(c, n);
    return escape_frame(c, n + 1, out, cap);
}

/* ---------------------------------------------------------------------------------------
 * Terminal number → device id (§3.2).
 */

/* Luhn check digit for the digits of `s` (the IMEI without its last digit). */
static int luhn_digit(const char *s, size_t n)
{
    int sum = 0;
    for (size_t i = 0; i < n; i++) {
        int d = s[n - 1 - i] - '0';
        if (i % 2 == 0) {
            d *= 2;
            if (d > 9)
                d -= 9;
        }
        sum += d;
    }
    return (10 - sum % 10) % 10;
}

/* BCD digits (leading zeros kept: the vectors key devices on all 12/20 digits). Some
 * vendors put the IMEI there as a 48-bit number of its first 14 digits; the 15th is the
 * Luhn digit (Traccar does the same; vectors D013, D038). */
static void terminal_device_id(struct frame_head *h)
{
    if (!hex_text(h->terminal, h->terminal_len, h->device_id, sizeof h->device_id) &&
        h->terminal_len == TERMINAL_LEN_2013) {
        uint64_t v = 0;
        for (size_t i = 0; i < TERMINAL_LEN_2013; i++)
            v = v << 8 | h->terminal[i];
        int n = snprintf(h->device_id, sizeof h->device_id, "%014llu", (unsigned long long)v);
        snprintf(h->device_id + n, sizeof h->device_id - (size_t)n, "%d",
                 luhn_digit(h->device_id, (size_t)n));
        h->binary_imei = true;
    }
}

/* Parse the header of un-escaped content u[0..n) (n includes the checksum byte). */
static int parse_head(const uint8_t *u, size_t n, struct frame_head *h)
{
    memset(h, 0, sizeof *h);
    if (n < HDR_LEN_JT + 1)
        return ST_ETRUNCATED;
    h->msg_id = be16(u);
    h->attr = be16(u + 2);
    h->declared_len = h->attr & ATTR_LEN_MASK;
    size_t hl;
    if (h->msg_id == MSG_JT_REPORT || h->msg_id == MSG_JT_REPORT_BLIND) {
        /* Jointech reuses bits 10–15 of this header for its own flags (bit 15 = wants 0x4401). */
        h->short_serial = true;
        h->terminal = u + 4;
        h->terminal_len = TERMINAL_LEN_2013;
        h->serial = u[10];
        hl = HDR_LEN_JT;
    } else if (h->attr & ATTR_V2019) {
        if (n < HDR_LEN_2019 + 1)
            return ST_ETRUNCATED;
        h->v2019 = true;
        h->version = u[4];
        h->terminal = u + 5;
        h->terminal_len = TERMINAL_LEN_2019;
        h->serial = be16(u + 15);
        hl = HDR_LEN_2019;
    } else {
        if (n < HDR_LEN_2013 + 1)
            return ST_ETRUNCATED;
        h->terminal = u + 4;
        h->terminal_len = TERMINAL_LEN_2013;
        h->serial = be16(u + 10);
        hl = HDR_LEN_2013;
    }
    if (!h->short_serial && (h->attr & ATTR_SUBPACKET)) {
        if (n < hl + SUBPACKET_LEN + 1)
            return ST_ETRUNCATED;
        h->subpacket = true;
        h->packet_total = be16(u + hl);
        h->packet_index = be16(u + hl + 2);
        hl += SUBPACKET_LEN;
    }
    h->body = u + hl;
    h->body_len = n - 1 - hl;
    h->checksum_ok = xor_sum(u, n - 1) == u[n - 1];
    terminal_device_id(h);
    return 0;
}

/* Header facts every report of the frame carries (named as in the vectors). */
static void head_attrs(const struct frame_head *h, struct report *r)
{
    static const char digits[] = "0123456789abcdef";
    report_init(r, proto_jt808.name);
    memcpy(r->device_id, h->device_id, sizeof r->device_id);
    char *t = r->msg_type; /* "0x%04x" */
    t[0] = '0';
    t[1] = 'x';
    for (int i = 0; i < 4; i++)
        t[2 + i] = digits[h->msg_id >> (12 - 4 * i) & 15];
    t[6] = '\0';
    report_attr_uint_hex(r, "msg_id", h->msg_id, 4);
    report_attr_uint_hex(r, "attr", h->attr, 4);
    report_attr_bool(r, "v2019", h->v2019);
    if (h->v2019)
        report_attr_uint(r, "proto_ver", h->version);
    report_attr_bytes_hex(r, "terminal", h->terminal, h->terminal_len);
    if (h->binary_imei)
        report_attr_static(r, "id_encoding", "binary-imei+luhn");
    report_attr_uint(r, "serial", h->serial);
    report_attr_uint(r, "body_len", (uint32_t)h->declared_len);
    report_attr_bool(r, "body_len_ok", h->declared_len == h->body_len);
    report_attr_bool(r, "checksum_ok", h->checksum_ok);
    if (h->subpacket) {
        report_attr_uint(r, "packet_total", h->packet_total);
        report_attr_uint(r, "packet_index", h->packet_index);
    }
}

/* ---------------------------------------------------------------------------------------
 * Text fields: ASCII, or GBK for the Chinese plate characters (§3.3 registration).
 */

struct gbk_char {
    uint16_t code;
    const char *utf8;
};

/* The province abbreviations and special characters that start Chinese plates: the only
 * non-ASCII text the registration carries in practice. A full GBK table is not worth its
 * size here; anything else is kept as hex. */
static const struct gbk_char gbk_plate_chars[] = {
    {0xbea9, "京"}, {0xbdf2, "津"}, {0xbba6, "沪"}, {0xd3e5, "渝"}, {0xbcbd, "冀"},
    {0xd4a5, "豫"}, {0xd4c6, "云"}, {0xc1c9, "辽"}, {0xbada, "黑"}, {0xcfe6, "湘"},
    {0xcdee, "皖"}, {0xc2b3, "鲁"}, {0xd0c2, "新"}, {0xcbd5, "苏"}, {0xd5e3, "浙"},
    {0xb8d3, "赣"}, {0xb6f5, "鄂"}, {0xb9f0, "桂"}, {0xb8ca, "甘"}, {0xbdfa, "晋"},
    {0xc3c9, "蒙"}, {0xc9c2, "陕"}, {0xbcaa, "吉"}, {0xc3f6, "闽"}, {0xb9f3, "贵"},
    {0xd4c1, "粤"}, {0xc7e0, "青"}, {0xb2d8, "藏"}, {0xb4a8, "川"}, {0xc4fe, "宁"},
    {0xc7ed, "琼"}, {0xcab9, "使"}, {0xc1ec, "领"}, {0xbeaf, "警"}, {0xd1a7, "学"},
    {0xb9d2, "挂"}, {0xb8db, "港"}, {0xb0c4, "澳"}, {0xc1d9, "临"},
};

/* GBK b[0..len) → UTF-8 text in out; false when a byte is a control character or a
 * two-byte character outside gbk_plate_chars. */
static bool gbk_to_utf8(const uint8_t *b, size_t len, char *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        const char *piece = NULL;
        char ascii[2] = {(char)b[i], '\0'};
        if (b[i] >= 0x20 && b[i] < 0x7F) {
            piece = ascii;
            i++;
        } else if (b[i] >= 0x81 && i + 1 < len) {
            uint16_t code = be16(b + i);
            for (size_t k = 0; k < sizeof gbk_plate_chars / sizeof gbk_plate_chars[0]; k++)
                if (gbk_plate_chars[k].code == code)
                    piece = gbk_plate_chars[k].utf8;
            i += 2;
        }
        if (!piece)
            return false;
        size_t pl = strlen(piece);
        if (n + pl >= cap)
            return false;
        memcpy(out + n, piece, pl);
        n += pl;
    }
    out[n] = '\0';
    return true;
}

/* A fixed-width text field: trailing NUL padding dropped; "empty" when nothing is left;
 * "hex:…" when the bytes are not text. */
static void text_attr(struct report *r, const char *key, const uint8_t *b, size_t len)
{
    char text[2 * BODY_MAX + 5];
    while (len && b[len - 1] == 0)
        len--;
    if (len == 0) {
        report_attr_static(r, key, "empty");
        return;
    }
    if (!gbk_to_utf8(b, len, text, sizeof text)) {
        memcpy(text, "hex:", 4);
        hex_text(b, len, text + 4, sizeof text - 4);
    }
    report_attr_strn(r, key, text, strlen(text));
}

/* ---------------------------------------------------------------------------------------
 * Additional items (id, length, value), shared by 0x0200 and 0x5501.
 */

struct item {
    uint8_t id, len;
    const uint8_t *v;
};

/* Next item at *p (advancing it); false at the end or when the item would run past `end`. */
static bool item_next(const uint8_t **p, const uint8_t *end, struct item *it)
{
    if (end - *p < 2 || end - *p - 2 < (*p)[1])
        return false;
    it->id = (*p)[0];
    it->len = (*p)[1];
    it->v = *p + 2;
    *p += 2 + it->len;
    return true;
}

static bool items_well_formed(const uint8_t *b, size_t len)
{
    const uint8_t *p = b, *end = b + len;
    struct item it;
    while (item_next(&p, end, &it))
        ;
    return p == end;
}

/* Formatter of attr `items`: every item raw as `id:len:hex|…`, or `not-tlv:<hex>` when
 * the tail does not split exactly into items (nothing is interpreted then). Cut at cap. */
static size_t items_text(const uint8_t *b, size_t len, char *text, size_t cap)
{
    static const char digits[] = "0123456789abcdef";
    if (!items_well_formed(b, len)) {
        memcpy(text, "not-tlv:", 8);
        hex_text(b, len, text + 8, cap - 8);
        return 8 + strlen(text + 8);
    }
    const uint8_t *p = b, *end = b + len;
    struct item it;
    size_t n = 0;
    text[0] = '\0';
    while (item_next(&p, end, &it) && n + 10 < cap) { /* "|id:len:" fits in 10 */
        if (n)
            text[n++] = '|';
        text[n++] = digits[it.id >> 4];
        text[n++] = digits[it.id & 15];
        text[n++] = ':';
        if (it.len >= 100)
            text[n++] = (char)('0' + it.len / 100);
        if (it.len >= 10)
            text[n++] = (char)('0' + it.len / 10 % 10);
        text[n++] = (char)('0' + it.len % 10);
        text[n++] = ':';
        hex_text(it.v, it.len, text + n, cap - n);
        n += strlen(text + n);
    }
    return n;
}

/* ---------------------------------------------------------------------------------------
 * Jointech lock event item 0x0B (§4.5). One table drives the decoder and the encoder.
 */

enum lock_payload {
    LP_NONE,            /* type byte only */
    LP_PASSWORD,        /* password (6 ASCII) */
    LP_PASSWORD_STATUS, /* password + status byte */
    LP_CARD,            /* card (4) */
    LP_CARD_STATUS,     /* card + status byte */
};

struct lock_kind {
    uint8_t type;
    uint8_t payload; /* enum lock_payload */
    uint8_t event;   /* enum report_event_type */
    uint8_t source;  /* enum report_source */
    const char *reason;
    const char *name;
};

/* Remote refusals (0x10/0x11) do not say which password kind was used; they are filed
 * under the static remote password (documented choice). */
static const struct lock_kind lock_kinds[] = {
    {0x01, LP_PASSWORD_STATUS, REPORT_EV_UNLOCK, REPORT_SRC_REMOTE_STATIC, "",
     "remote unlock, static password"},
    {0x02, LP_PASSWORD_STATUS, REPORT_EV_UNLOCK, REPORT_SRC_REMOTE_DYNAMIC, "",
     "remote unlock, dynamic password"},
    {0x03, LP_PASSWORD_STATUS, REPORT_EV_UNLOCK, REPORT_SRC_APP_DYNAMIC, "",
     "app unlock, dynamic password"},
    {0x05, LP_PASSWORD_STATUS, REPORT_EV_UNLOCK, REPORT_SRC_APP_STATIC, "",
     "app unlock, static password"},
    {0x1E, LP_PASSWORD_STATUS, REPORT_EV_UNLOCK, REPORT_SRC_SMS_STATIC, "",
     "SMS unlock, static password"},
    {0x1F, LP_PASSWORD_STATUS, REPORT_EV_UNLOCK, REPORT_SRC_SMS_DYNAMIC, "",
     "SMS unlock, dynamic password"},
    {0x06, LP_PASSWORD, REPORT_EV_WRONG_PASSWORD, REPORT_SRC_REMOTE_STATIC, "",
     "wrong remote static password"},
    {0x07, LP_PASSWORD, REPORT_EV_WRONG_PASSWORD, REPORT_SRC_REMOTE_DYNAMIC, "",
     "wrong remote dynamic password"},
    {0x08, LP_PASSWORD, REPORT_EV_WRONG_PASSWORD, REPORT_SRC_APP_DYNAMIC, "",
     "wrong app dynamic password"},
    {0x28, LP_PASSWORD, REPORT_EV_WRONG_PASSWORD, REPORT_SRC_APP_STATIC, "",
     "wrong app static password"},
    {0x20, LP_PASSWORD, REPORT_EV_WRONG_PASSWORD, REPORT_SRC_SMS_DYNAMIC, "",
     "wrong SMS dynamic password"},
    {0x29, LP_PASSWORD, REPORT_EV_WRONG_PASSWORD, REPORT_SRC_SMS_STATIC, "",
     "wrong SMS static password"},
    {0x10, LP_PASSWORD, REPORT_EV_UNLOCK_REFUSED, REPORT_SRC_REMOTE_STATIC, "no_position",
     "remote unlock refused, no position"},
    {0x11, LP_PASSWORD, REPORT_EV_UNLOCK_REFUSED, REPORT_SRC_REMOTE_STATIC, "outside_fence",
     "remote unlock refused, outside fence"},
    {0x18, LP_PASSWORD, REPORT_EV_UNLOCK_REFUSED, REPORT_SRC_BLUETOOTH, "no_position",
     "Bluetooth unlock refused, no position"},
    {0x19, LP_PASSWORD, REPORT_EV_UNLOCK_REFUSED, REPORT_SRC_BLUETOOTH, "outside_fence",
     "Bluetooth unlock refused, outside fence"},
    {0x22, LP_CARD_STATUS, REPORT_EV_UNLOCK, REPORT_SRC_RFID, "", "RFID card unlock"},
    {0x23, LP_CARD, REPORT_EV_RFID_ACCESS, REPORT_SRC_RFID, "illegal_card", "illegal RFID card"},
    {0x2A, LP_CARD, REPORT_EV_UNLOCK_REFUSED, REPORT_SRC_RFID, "no_position",
     "RFID unlock refused, no position"},
    {0x2B, LP_CARD, REPORT_EV_UNLOCK_REFUSED, REPORT_SRC_RFID, "outside_fence",
     "RFID unlock refused, outside fence"},
    {0x0B, LP_NONE, REPORT_EV_LONG_UNLOCKED, REPORT_SRC_NONE, "", "unlocked too long"},
    {0x0C, LP_NONE, REPORT_EV_TAMPER, REPORT_SRC_ROPE, "rope_cut", "lock rope cut"},
    {0x0D, LP_NONE, REPORT_EV_LOCK, REPORT_SRC_AUTO, "", "locked automatically"},
    {0x12, LP_NONE, REPORT_EV_MOTOR_FAULT, REPORT_SRC_NONE, "", "motor fault"},
    {0x1C, LP_NONE, REPORT_EV_UNLOCK, REPORT_SRC_ROPE, "rope_pulled", "unlocked, rope pulled out"},
};

#define N_LOCK_KINDS (sizeof lock_kinds / sizeof lock_kinds[0])

static const struct lock_kind *lock_kind_by_type(uint8_t type)
{
    for (size_t i = 0; i < N_LOCK_KINDS; i++)
        if (lock_kinds[i].type == type)
            return &lock_kinds[i];
    return NULL;
}

/* Formatter of attr jt.lock_event: "<name> (0x<type>)" of the type byte. */
static size_t lock_event_text(const uint8_t *type, size_t len, char *out, size_t cap)
{
    const struct lock_kind *k = len ? lock_kind_by_type(type[0]) : NULL;
    int n = snprintf(out, cap, "%s (0x%02x)", k ? k->name : "unknown", len ? type[0] : 0u);
    return n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
}

#define CARD_DIGITS 10

/* The card number as printed: 10 decimal digits ("%010u"), NUL-terminated. */
static void card_text(uint32_t v, char card[CARD_DIGITS + 1])
{
    for (int i = CARD_DIGITS - 1; i >= 0; i--, v /= 10)
        card[i] = (char)('0' + v % 10);
    card[CARD_DIGITS] = '\0';
}

static struct report_event *add_event(struct report *r, uint8_t type, uint8_t source,
                                      const char *reason)
{
    struct report_event *e = report_add_event(r, (enum report_event_type)type);
    if (e) {
        e->source = source;
        if (reason[0]) /* the reason is preset to zeros */
            memcpy(e->reason, reason, strnlen(reason, sizeof e->reason - 1));
    }
    return e;
}

/* Item 0x0B: type byte + payload → typed events and jt.* attributes. */
static void decode_lock_event(struct report *r, const uint8_t *v, size_t len)
{
    if (len == 0)
        return;
    const struct lock_kind *k = lock_kind_by_type(v[0]);
    report_attr_uint_hex(r, "jt.lock_event_type", v[0], 2);
    report_attr_format(r, "jt.lock_event", lock_event_text, v, 1);
    if (!k) {
        char reason[24];
        snprintf(reason, sizeof reason, "lock_event_0x%02x", v[0]);
        add_event(r, REPORT_EV_ALARM, REPORT_SRC_NONE, reason);
        return;
    }

    char card[16] = "";
    int status = -1;
    if (k->payload == LP_CARD || k->payload == LP_CARD_STATUS) {
        if (len >= 1 + JT_CARD_LEN) {
            card_text(be32(v + 1), card);
            report_attr_strn(r, "jt.card", card, CARD_DIGITS);
        }
        if (k->payload == LP_CARD_STATUS && len == 1 + JT_CARD_LEN + 1)
            status = v[len - 1];
    } else if (k->payload == LP_PASSWORD_STATUS && len == 1 + JT_PASSWORD_LEN + 1) {
        status = v[len - 1];
    }
    /* The password itself is not copied into an attribute: a static unlock password does
     * not belong in the database (it stays visible only inside the raw `items`). */

    bool failed = status == JT_UNLOCK_FAILED;
    if (status >= 0) {
        report_attr_bool(r, "jt.unlock_ok", !failed);
        report_attr_uint(r, "jt.unlock_status_byte", (uint32_t)status);
    }
    struct report_event *e;
    if (k->event == REPORT_EV_UNLOCK && failed)
        e = add_event(r, REPORT_EV_UNLOCK_REFUSED, k->source, "unlock_failed");
    else
        e = add_event(r, k->event, k->source, k->reason);
    if (!e)
        return;
    memcpy(e->card, card, sizeof e->card);
    if (k->event == REPORT_EV_RFID_ACCESS)
        e->granted = 0;
    if (status >= 1 && status <= JT_FENCE_MAX)
        e->fence_id = (int16_t)status;
    if (k->type == 0x22) { /* an authorised card was swiped: record the access as well */
        struct report_event *a = add_event(r, REPORT_EV_RFID_ACCESS, REPORT_SRC_RFID, "");
        if (a) {
            a->granted = 1;
            memcpy(a->card, card, sizeof a->card);
        }
    }
}

/* ---------------------------------------------------------------------------------------
 * 0x0200 location body (§3.4, Jointech §4.2–4.4).
 */

/* Items every JT/T 808 device means the same way. */
static void standard_item(struct report *r, const struct item *it)
{
    if (it->id == 0x01 && it->len == 4)
        r->odometer_km = be32(it->v) * 0.1;
    else if (it->id == 0x30 && it->len == 1)
        r->gsm_signal = it->v[0];
    else if (it->id == 0x31 && it->len == 1)
        r->satellites = it->v[0];
}

/* Jointech vendor items (§4.4); lengths are checked because other vendors reuse the ids. */
static void jointech_item(struct report *r, const struct item *it, int *fence_id)
{
    const uint8_t *v = it->v;
    switch (it->id) {
    case 0x0B:
        if (it->len >= 1 && it->len <= 8)
            decode_lock_event(r, v, it->len);
        break;
    case 0x30:
        if (it->len == 1)
            report_attr_uint(r, "jt.gsm_signal", v[0]);
        break;
    case 0x31:
        if (it->len == 1)
            report_attr_uint(r, "jt.satellites", v[0]);
        break;
    case 0xD4:
        if (it->len == 1) {
            report_attr_uint(r, "jt.battery_pct", v[0]);
            if (v[0] == JT_BATTERY_CHARGING)
                r->charging = 1;
            else
                r->battery_pct = v[0];
        }
        break;
    case 0xD5:
        if (it->len == 2) {
            r->battery_v = be16(v) / 100.0;
            report_attr_fixed(r, "jt.battery_v", be16(v), 2);
        }
        break;
    case 0xF9:
        if (it->len == 2)
            report_attr_uint(r, "jt.proto_ver", be16(v));
        break;
    case 0xFC:
        if (it->len == 1)
            *fence_id = v[0];
        break;
    case 0xFD:
        /* MCC (2), MNC (1 per the SDK, 2 in the real JT709A frame), cell id (4), LAC (2). */
        if (it->len == 9 || it->len == 10) {
            size_t mnc_len = it->len - 8u;
            r->has_cell = true;
            r->cell.mcc = be16(v);
            r->cell.mnc = mnc_len == 2 ? be16(v + 2) : v[2];
            r->cell.cid = be32(v + 2 + mnc_len);
            r->cell.lac = be16(v + 6 + mnc_len);
            report_attr_uint(r, "jt.mcc", r->cell.mcc);
            report_attr_uint(r, "jt.mnc", r->cell.mnc);
            report_attr_uint(r, "jt.cell_id", r->cell.cid);
            report_attr_uint(r, "jt.lac", r->cell.lac);
        }
        break;
    case 0xFE:
        if (it->len == 4) /* unit unknown (§7): kept raw, not an odometer */
            report_attr_uint(r, "jt.mileage_raw", be32(v));
        break;
    default:
        break;
    }
}

/* Jointech status bits (§4.2) and alarm bits (§4.3). */
static void jointech_flags(struct report *r, uint32_t alarm, uint32_t status, int fence_id)
{
    bool rope = status & ST_JT_ROPE_OPEN, motor = status & ST_JT_MOTOR_OPEN;
    report_attr_uint(r, "jt.rope_bit20", rope);
    report_attr_uint(r, "jt.motor_bit21", motor);
    report_attr_uint(r, "jt.lock_open", rope || motor);
    report_attr_uint(r, "jt.back_cover_bit7", (status & ST_JT_BACK_COVER) != 0);
    report_attr_uint(r, "jt.gnss_bit18", (status & ST_GNSS) != 0);
    report_attr_uint(r, "jt.beidou_bit19", (status & ST_BEIDOU) != 0);
    report_attr_uint(r, "jt.wake_source", (status >> ST_JT_WAKE_SHIFT) & 15);
    r->lock = rope || motor ? REPORT_LOCK_UNLOCKED : REPORT_LOCK_LOCKED;

    if (status & (ST_POSITIONED | ST_GNSS))
        r->fix = status & ST_BEIDOU ? REPORT_FIX_BEIDOU : REPORT_FIX_GNSS;
    else if (status & ST_JT_LBS)
        r->fix = REPORT_FIX_LBS;

    static const struct {
        uint8_t bit, event;
        const char *reason;
    } alarms[] = {
        {1, REPORT_EV_OVERSPEED, ""},
        {7, REPORT_EV_LOW_BATTERY, ""},
        {16, REPORT_EV_TAMPER, "back_cover_open"},
        {17, REPORT_EV_GEOFENCE_ENTER, ""},
        {18, REPORT_EV_GEOFENCE_EXIT, ""},
    };
    for (size_t i = 0; i < sizeof alarms / sizeof alarms[0]; i++) {
        if (!(alarm & (1u << alarms[i].bit)))
            continue;
        struct report_event *e = add_event(r, alarms[i].event, REPORT_SRC_NONE, alarms[i].reason);
        if (e && alarms[i].bit >= 17)
            e->fence_id = (int16_t)fence_id;
    }
}

/* ---------------------------------------------------------------------------------------
 * Standard dialect (ctx->dialect != 0): the JT/T 808-2013/2019 meanings of the status and
 * alarm bits and of items 0x01–0x31, plus the few vendor items (0xE0–0xFF) with a public
 * description. Vendor ids collide between makers, so each is read only with the length and
 * shape its source gives; everything stays raw in `items` as well.
 */

#define ST_ACC (1u << 0)
#define ST_OUT_OF_SERVICE (1u << 4)
#define ST_COORDS_ENCRYPTED (1u << 5)
#define ST_LOAD_SHIFT 8
#define ST_OIL_CUT (1u << 10)
#define ST_ELECTRIC_CUT (1u << 11)
#define ST_DOORS_LOCKED (1u << 12)

#define ALARM_AREA_BIT 20
#define ALARM_ROUTE_BIT 21
#define AREA_TYPE_ROUTE 4 /* 0x11/0x12 position type: 1 circle, 2 rectangle, 3 polygon, 4 route */

/* Facts of items 0x11/0x12 the alarm bits need (fence ids of the events). */
struct area_detail {
    int overspeed_area; /* area id of 0x11, -1 none */
    int inout_type;     /* 0x12: position type, -1 no item */
    int inout_area;
    bool inout_exit;
};

/* A set-bits list `a|b` of names[bit] (NULL names skipped), or "none". */
static void bit_list_attr(struct report *r, const char *key, uint32_t bits,
                          const char *const *names, size_t n_names)
{
    char text[256];
    size_t n = 0;
    text[0] = '\0';
    for (size_t i = 0; i < n_names && i < 32 && n < sizeof text; i++)
        if (names[i] && (bits & (1u << i)))
            n += (size_t)snprintf(text + n, sizeof text - n, "%s%s", n ? "|" : "", names[i]);
    if (n)
        report_attr_strn(r, key, text, strlen(text));
    else
        report_attr_static(r, key, "none");
}

/* A fence id for an event: area ids are DWORDs, events hold int16 (-1 = none). */
static int16_t fence_of(uint32_t area)
{
    return area <= INT16_MAX ? (int16_t)area : -1;
}

/* Items 0x01–0x31 of JT/T 808 table 27 (0x01, 0x30, 0x31 are read by standard_item). */
static void standard_dialect_item(struct report *r, const struct item *it, struct area_detail *area)
{
    static const char *const vehicle_signals[] = {
        "low_beam", "high_beam",      "right_turn", "left_turn",       "brake",   "reverse",
        "fog_lamp", "clearance_lamp", "horn",       "air_conditioner", "neutral", "retarder",
        "abs",      "heater",         "clutch",
    };
    static const char *const area_types[] = {"none", "circle", "rectangle", "polygon", "route"};
    const uint8_t *v = it->v;
    switch (it->id) {
    case 0x02:
        if (it->len == 2)
            report_attr_fixed(r, "fuel_l", be16(v), 1);
        break;
    case 0x03:
        if (it->len == 2)
            report_attr_fixed(r, "tacho_speed_kmh", be16(v), 1);
        break;
    case 0x04:
        if (it->len == 2)
            report_attr_uint(r, "alarm_event_id", be16(v));
        break;
    case 0x11: /* overspeed: position type, then the area id unless the type is 0 */
        if ((it->len == 1 && v[0] == 0) || (it->len == 5 && v[0] >= 1 && v[0] <= 4)) {
            report_attr_static(r, "overspeed_area_type", area_types[v[0]]);
            if (it->len == 5) {
                report_attr_uint(r, "overspeed_area_id", be32(v + 1));
                area->overspeed_area = fence_of(be32(v + 1));
            }
        }
        break;
    case 0x12: /* area / route in-out: position type, id, direction (0 in, 1 out) */
        if (it->len == 6 && v[0] >= 1 && v[0] <= 4 && v[5] <= 1) {
            area->inout_type = v[0];
            area->inout_area = fence_of(be32(v + 1));
            area->inout_exit = v[5] == 1;
            report_attr_static(r, "area_type", area_types[v[0]]);
            report_attr_uint(r, "area_id", be32(v + 1));
            report_attr_static(r, "area_direction", v[5] ? "out" : "in");
        }
        break;
    case 0x13: /* route segment driving time: segment id, seconds, 0 too short / 1 too long */
        if (it->len == 7 && v[6] <= 1) {
            report_attr_uint(r, "route_segment_id", be32(v));
            report_attr_uint(r, "route_drive_time_s", be16(v + 4));
            report_attr_static(r, "route_time_result", v[6] ? "too_long" : "too_short");
        }
        break;
    case 0x25:
        if (it->len == 4) {
            report_attr_uint_hex(r, "vehicle_signals", be32(v), 8);
            bit_list_attr(r, "vehicle_signals_on", be32(v), vehicle_signals,
                          sizeof vehicle_signals / sizeof vehicle_signals[0]);
        }
        break;
    case 0x2A: /* IO status: bit 0 deep sleep, bit 1 sleep */
        if (it->len == 2) {
            report_attr_uint_hex(r, "io_status", be16(v), 4);
            report_attr_bool(r, "deep_sleep", v[1] & 1);
            report_attr_bool(r, "sleep", v[1] & 2);
        }
        break;
    case 0x2B: /* analog: bits 0–15 AD0, bits 16–31 AD1 (raw, unit not standardised) */
        if (it->len == 4) {
            report_attr_uint(r, "adc0", be16(v + 2));
            report_attr_uint(r, "adc1", be16(v));
        }
        break;
    default: break;
    }
}

/* 0xEB: sub-items [length (2, counting the type) + type (2) + value] to the item's end.
 * Reads 0x00B2 ICCID (10 BCD bytes, trailing F filler dropped), 0x00A8 battery %, 0x002D
 * battery (2 bytes, mV) and 0x00D8 cell (MCC 2, MNC 1, LAC 2, cell id 4). Nothing is read
 * when the item does not split exactly into sub-items (other vendors put text there). */
static void vendor_eb_item(struct report *r, const uint8_t *v, size_t len)
{
    size_t pos = 0;
    while (pos + 4 <= len && be16(v + pos) >= 2 && pos + 2 + be16(v + pos) <= len)
        pos += 2u + be16(v + pos);
    if (pos != len)
        return;
    for (pos = 0; pos < len; pos += 2u + be16(v + pos)) {
        uint16_t type = be16(v + pos + 2);
        const uint8_t *x = v + pos + 4;
        size_t n = be16(v + pos) - 2u;
        if (type == 0x00B2 && n == 10) {
            char iccid[21];
            hex_text(x, n, iccid, sizeof iccid);
            size_t end = strlen(iccid);
            while (end && iccid[end - 1] == 'f')
                iccid[--end] = '\0';
            report_attr_strn(r, "iccid", iccid, end);
        } else if (type == 0x00A8 && n == 1 && x[0] <= 100) {
            r->battery_pct = x[0];
        } else if (type == 0x002D && n == 2) {
            r->battery_v = be16(x) / 1000.0;
        } else if (type == 0x00D8 && n == 9) {
            r->has_cell = true;
            r->cell.mcc = be16(x);
            r->cell.mnc = x[2];
            r->cell.lac = be16(x + 3);
            r->cell.cid = be32(x + 5);
        }
    }
}

/* 0xF3 with OBD data: sub-items [type (2) + length (1) + value]. Read: 0x0002 speed
 * (0.1 km/h), 0x0003 rpm, 0x0004 supply (mV), 0x0005 odometer (100 m), 0x0009 coolant
 * (°C + 40), 0x0050 VIN; each only with the length given here. */
static void vendor_obd_item(struct report *r, const uint8_t *v, size_t len)
{
    size_t pos = 0;
    while (pos + 3 <= len && pos + 3 + v[pos + 2] <= len)
        pos += 3u + v[pos + 2];
    if (pos != len)
        return;
    for (pos = 0; pos < len; pos += 3u + v[pos + 2]) {
        uint16_t type = be16(v + pos);
        const uint8_t *x = v + pos + 3;
        size_t n = v[pos + 2];
        if (type == 0x0002 && n == 2)
            report_attr_fixed(r, "obd_speed_kmh", be16(x), 1);
        else if (type == 0x0003 && n == 2)
            report_attr_uint(r, "rpm", be16(x));
        else if (type == 0x0004 && n == 2)
            report_attr_fixed(r, "obd_power_v", be16(x), 3);
        else if (type == 0x0005 && n == 4)
            report_attr_fixed(r, "obd_odometer_km", be32(x), 1);
        else if (type == 0x0009 && n == 2)
            report_attr_int(r, "coolant_temp_c", (int32_t)be16(x) - 40);
        else if (type == 0x0050 && n >= 17)
            text_attr(r, "vin", x, n);
    }
}

/* Vendor items with a public description (docs/protocols/jt808.md lists the sources). */
static void vendor_item(struct report *r, const struct item *it)
{
    const uint8_t *v = it->v;
    switch (it->id) {
    case 0xE1: /* battery %, one byte */
        if (it->len == 1 && v[0] <= 100)
            r->battery_pct = v[0];
        break;
    case 0xE4: /* charge state (0 = charging), battery % */
        if (it->len == 2 && v[1] <= 100) {
            r->charging = v[0] == 0;
            r->battery_pct = v[1];
        }
        break;
    case 0xE5: /* motion: 1 moving, 0 still */
        if (it->len == 1 && v[0] <= 1)
            report_attr_bool(r, "motion", v[0]);
        break;
    case 0xEB: vendor_eb_item(r, v, it->len); break;
    case 0xF3: /* one byte = an arming flag on some devices, a tag mask on others: raw */
        if (it->len >= 3)
            vendor_obd_item(r, v, it->len);
        break;
    default: break;
    }
}

/* The event of alarm bit 20 (area) or 21 (route): enter/exit with the fence of item 0x12
 * when it names that kind of place, else a plain alarm. */
static void area_alarm(struct report *r, bool route, const struct area_detail *area)
{
    bool known = area->inout_type >= 0 && (area->inout_type == AREA_TYPE_ROUTE) == route;
    if (!known) {
        add_event(r, REPORT_EV_ALARM, REPORT_SRC_NONE, route ? "route_in_out" : "area_in_out");
        return;
    }
    struct report_event *e =
        add_event(r, area->inout_exit ? REPORT_EV_GEOFENCE_EXIT : REPORT_EV_GEOFENCE_ENTER,
                  REPORT_SRC_NONE, route ? "route" : "");
    if (e)
        e->fence_id = (int16_t)area->inout_area;
}

/* Status bits → attributes, fix and lock; alarm bits → events (JT/T 808 tables 24 and 25). */
static void standard_flags(struct report *r, uint32_t alarm, uint32_t status,
                           const struct area_detail *area)
{
    static const char *const load_states[] = {"empty", "half", "reserved", "full"};
    static const char *const gnss[] = {
        [18] = "gps", [19] = "beidou", [20] = "glonass", [21] = "galileo"};
    static const char *const doors[] = {[13] = "1", [14] = "2", [15] = "3", [16] = "4", [17] = "5"};
    if (status & ST_POSITIONED)
        r->fix = status & ST_BEIDOU ? REPORT_FIX_BEIDOU
                 : status & ST_GNSS ? REPORT_FIX_GPS
                                    : REPORT_FIX_GNSS;
    report_attr_bool(r, "ignition", status & ST_ACC);
    report_attr_bool(r, "out_of_service", status & ST_OUT_OF_SERVICE);
    report_attr_bool(r, "coords_encrypted", status & ST_COORDS_ENCRYPTED);
    report_attr_static(r, "load_state", load_states[(status >> ST_LOAD_SHIFT) & 3]);
    report_attr_bool(r, "oil_cut", status & ST_OIL_CUT);
    report_attr_bool(r, "electric_cut", status & ST_ELECTRIC_CUT);
    report_attr_bool(r, "doors_locked", status & ST_DOORS_LOCKED);
    bit_list_attr(r, "doors_open", status, doors, sizeof doors / sizeof doors[0]);
    bit_list_attr(r, "gnss_systems", status, gnss, sizeof gnss / sizeof gnss[0]);
    /* A clear bit 12 is also what a tracker without door-lock wiring sends: not "unlocked". */
    if (status & ST_DOORS_LOCKED)
        r->lock = REPORT_LOCK_LOCKED;

    /* Bits 15–17 are reserved by the standard (vendors use them): alarm_bit_N. */
    static const struct {
        uint8_t event;
        const char *reason;
    } alarms[32] = {
        [0] = {REPORT_EV_SOS, ""},
        [1] = {REPORT_EV_OVERSPEED, ""},
        [2] = {REPORT_EV_ALARM, "fatigue"},
        [3] = {REPORT_EV_ALARM, "danger_warning"},
        [4] = {REPORT_EV_ALARM, "gnss_fault"},
        [5] = {REPORT_EV_ALARM, "gnss_antenna_open"},
        [6] = {REPORT_EV_ALARM, "gnss_antenna_short"},
        [7] = {REPORT_EV_LOW_BATTERY, ""},
        [8] = {REPORT_EV_POWER_CUT, ""},
        [9] = {REPORT_EV_ALARM, "lcd_fault"},
        [10] = {REPORT_EV_ALARM, "tts_fault"},
        [11] = {REPORT_EV_ALARM, "camera_fault"},
        [12] = {REPORT_EV_ALARM, "ic_card_fault"},
        [13] = {REPORT_EV_ALARM, "overspeed_warning"},
        [14] = {REPORT_EV_ALARM, "fatigue_warning"},
        [18] = {REPORT_EV_ALARM, "driving_time_exceeded"},
        [19] = {REPORT_EV_ALARM, "parking_overtime"},
        [22] = {REPORT_EV_ALARM, "route_time"},
        [23] = {REPORT_EV_ALARM, "off_route"},
        [24] = {REPORT_EV_ALARM, "vss_fault"},
        [25] = {REPORT_EV_ALARM, "fuel_abnormal"},
        [26] = {REPORT_EV_ALARM, "stolen"},
        [27] = {REPORT_EV_ALARM, "illegal_ignition"},
        [28] = {REPORT_EV_ALARM, "illegal_movement"},
        [29] = {REPORT_EV_ALARM, "collision"},
        [30] = {REPORT_EV_ALARM, "rollover"},
        [31] = {REPORT_EV_ALARM, "illegal_door_opening"},
    };
    for (unsigned bit = 0; bit < 32; bit++) {
        if (!(alarm & (1u << bit)))
            continue;
        if (bit == ALARM_AREA_BIT || bit == ALARM_ROUTE_BIT) {
            area_alarm(r, bit == ALARM_ROUTE_BIT, area);
        } else if (alarms[bit].event) {
            struct report_event *e =
                add_event(r, alarms[bit].event, REPORT_SRC_NONE, alarms[bit].reason);
            if (e && bit == 1)
                e->fence_id = (int16_t)area->overspeed_area;
        } else {
            char reason[16];
            snprintf(reason, sizeof reason, "alarm_bit_%u", bit);
            add_event(r, REPORT_EV_ALARM, REPORT_SRC_NONE, reason);
        }
    }
}

/* BCD YYMMDDhhmmss → epoch seconds read as UTC, or 0 when not a valid time. */
static int64_t bcd_time(const uint8_t *b)
{
    int f[6];
    for (int i = 0; i < 6; i++)
        if ((f[i] = jointech_bcd(b[i])) < 0)
            return 0;
    int64_t t = st_time_from_utc(2000 + f[0], f[1], f[2], f[3], f[4], f[5]);
    return t < 0 ? 0 : t;
}

static int decode_location(const struct proto_ctx *ctx, const uint8_t *b, size_t len,
                           struct report *r)
{
    if (len < LOCATION_LEN)
        return ST_ETRUNCATED;
    uint32_t alarm = be32(b), status = be32(b + 4);
    report_attr_uint_hex(r, "alarm", alarm, 8);
    report_attr_uint_hex(r, "status", status, 8);
    report_attr_bytes_hex(r, "time_raw", b + 22, 6);

    r->has_position = true;
    r->valid = status & ST_POSITIONED;
    r->lat = be32(b + 8) / 1e6 * (status & ST_SOUTH ? -1 : 1);
    r->lon = be32(b + 12) / 1e6 * (status & ST_WEST ? -1 : 1);
    r->has_altitude = true;
    r->altitude_m = (int16_t)be16(b + 16);
    r->speed_kmh = be16(b + 18) / 10.0;
    r->course = be16(b + 20);
    /* Jointech sends UTC, the standard GMT+8: the device's configured zone decides later. */
    r->fix_time = bcd_time(b + 22);
    r->time_is_local = true;

    const uint8_t *tail = b + LOCATION_LEN;
    size_t tail_len = len - LOCATION_LEN;
    bool tlv = items_well_formed(tail, tail_len);
    report_attr_format(r, "items", items_text, tail, tail_len);
    bool jointech = ctx->dialect == JT808_DIALECT_JOINTECH;
    int fence_id = -1;
    struct area_detail area = {.overspeed_area = -1, .inout_type = -1, .inout_area = -1};
    const uint8_t *p = tail, *end = tail + tail_len;
    struct item it;
    while (tlv && item_next(&p, end, &it)) {
        standard_item(r, &it);
        if (jointech) {
            jointech_item(r, &it, &fence_id);
        } else {
            standard_dialect_item(r, &it, &area);
            vendor_item(r, &it);
        }
    }
    if (jointech)
        jointech_flags(r, alarm, status, fence_id);
    else
        standard_flags(r, alarm, status, &area);
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * 0x5501 / 0x5502 Jointech report (§4.8).
 */

static void jt_report_item(struct report *r, const struct item *it, int *fence_id)
{
    const uint8_t *v = it->v;
    switch (it->id) {
    case 0x02:
        if (it->len == 2) {
            r->has_altitude = true;
            r->altitude_m = (int16_t)be16(v);
        }
        break;
    case 0x0A:
        if (it->len == 3 || it->len == 4) {
            r->cell.mcc = be16(v);
            r->cell.mnc = it->len == 4 ? be16(v + 2) : v[2];
            report_attr_uint(r, "mcc", r->cell.mcc);
            report_attr_uint(r, "mnc", r->cell.mnc);
        }
        break;
    case 0x0B:
        decode_lock_event(r, v, it->len);
        break;
    case 0x0C:
        if (it->len == 6)
            report_attr_set(r, "tilt", "%d,%d,%d", (int16_t)be16(v), (int16_t)be16(v + 2),
                            (int16_t)be16(v + 4));
        break;
    case 0x10:
        if (it->len == 1)
            report_attr_uint(r, "wake_source", v[0]);
        break;
    case 0xFC:
        if (it->len == 1)
            *fence_id = v[0];
        break;
    default:
        break;
    }
}

static void jt_report_alarms(struct report *r, uint8_t product, uint16_t alarm, int fence_id)
{
    static const struct {
        uint8_t bit, event;
    } product3[] = {
        {0, REPORT_EV_OVERSPEED},      {1, REPORT_EV_LOW_BATTERY}, {2, REPORT_EV_VIBRATION},
        {5, REPORT_EV_GEOFENCE_ENTER}, {6, REPORT_EV_GEOFENCE_EXIT},
    };
    if (product != 3) { /* products 1 and 2: bit 0 low power */
        if (alarm & 1)
            add_event(r, REPORT_EV_LOW_BATTERY, REPORT_SRC_NONE, "");
        return;
    }
    /* Bit 3 (low battery) and bit 1 (low power) mean one event to a user. */
    if (alarm & (1u << 3) && !(alarm & (1u << 1)))
        add_event(r, REPORT_EV_LOW_BATTERY, REPORT_SRC_NONE, "");
    for (size_t i = 0; i < sizeof product3 / sizeof product3[0]; i++) {
        if (!(alarm & (1u << product3[i].bit)))
            continue;
        struct report_event *e = add_event(r, product3[i].event, REPORT_SRC_NONE, "");
        if (e && product3[i].bit >= 5)
            e->fence_id = (int16_t)fence_id;
    }
}

static int decode_jt_report(const struct frame_head *h, struct report *r)
{
    const uint8_t *b = h->body;
    if (h->body_len < JT_REPORT_LEN)
        return ST_ETRUNCATED;
    int rc = jointech_block_decode(b, r);
    if (rc < 0)
        return rc;
    report_attr_bool(r, "valid_flag", r->valid);
    r->gsm_signal = b[17];
    report_attr_uint(r, "rssi", b[17]);
    r->satellites = b[18];
    r->odometer_km = be32(b + 19);
    uint8_t battery = b[23];
    report_attr_uint(r, "battery_raw", battery);
    if (battery <= 100)
        r->battery_pct = battery;
    else if (battery == 0xAA || battery == 0xAB)
        r->charging = 1;
    r->cell.cid = be32(b + 24);
    r->cell.lac = be16(b + 28);
    r->has_cell = r->cell.cid || r->cell.lac;
    report_attr_uint(r, "cid", r->cell.cid);
    report_attr_uint(r, "lac", r->cell.lac);
    uint8_t product = b[30];
    uint16_t status = be16(b + 31), alarm = be16(b + 33);
    report_attr_uint(r, "product", product);
    report_attr_uint_hex(r, "status16", status, 4);
    report_attr_uint_hex(r, "alarm16", alarm, 4);
    if (product == 3)
        report_attr_bool(r, "output_blocked", status & (1u << 5));

    const uint8_t *tail = b + JT_REPORT_LEN, *end = b + h->body_len;
    size_t tail_len = h->body_len - JT_REPORT_LEN;
    bool tlv = items_well_formed(tail, tail_len);
    report_attr_format(r, "items", items_text, tail, tail_len);
    int fence_id = -1;
    struct item it;
    while (tlv && item_next(&tail, end, &it))
        jt_report_item(r, &it, &fence_id);
    jt_report_alarms(r, product, alarm, fence_id);
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * Other device messages.
 */

/* 0x0100: province, city, maker, model, terminal id, plate colour, plate (§3.3). */
static int decode_register(const struct frame_head *h, struct report *r)
{
    size_t maker_len = 5, model_len = 20, tid_len = 7;
    const char *layout = "2013";
    if (h->v2019) {
        maker_len = 11;
        model_len = 30;
        tid_len = 30;
        layout = "2019";
    } else if (h->body_len < REGISTER_MIN_2013) {
        model_len = 8;
        layout = "2011";
    }
    size_t fixed = 4 + maker_len + model_len + tid_len + 1;
    if (h->body_len < fixed)
        return ST_ETRUNCATED;
    const uint8_t *p = h->body;
    report_attr_static(r, "layout", layout);
    report_attr_uint(r, "province", be16(p));
    report_attr_uint(r, "city", be16(p + 2));
    p += 4;
    text_attr(r, "maker", p, maker_len);
    p += maker_len;
    text_attr(r, "model", p, model_len);
    p += model_len;
    text_attr(r, "terminal_id", p, tid_len);
    p += tid_len;
    report_attr_uint(r, "plate_color", *p++);
    text_attr(r, "plate", p, h->body_len - fixed);
    return 0;
}

/* 0x0102: the auth code; 2019 prefixes its length and appends IMEI (15) and firmware (20). */
static void decode_auth(const struct frame_head *h, struct report *r)
{
    const uint8_t *b = h->body;
    size_t n = h->body_len;
    if (h->v2019 && n >= 1 && (size_t)b[0] + 1 <= n) {
        size_t code_len = b[0], rest = n - 1 - code_len;
        text_attr(r, "auth_code", b + 1, code_len);
        if (rest >= 15)
            text_attr(r, "imei", b + 1 + code_len, 15);
        if (rest > 15)
            text_attr(r, "firmware", b + 1 + code_len + 15, rest - 15);
        return;
    }
    text_attr(r, "auth_code", b, n);
}

/* 0x0001 (terminal) and 0x8001 (platform) general responses share one body. */
static void decode_general_ack(const struct frame_head *h, struct report *r)
{
    if (h->body_len < 5)
        return;
    report_attr_uint(r, "ack_serial", be16(h->body));
    report_attr_uint_hex(r, "ack_msg_id", be16(h->body + 2), 4);
    report_attr_uint(r, "result", h->body[4]);
}

/* 0x0704: count (2), type (1), then count × [length (2) + 0x0200 body]; one report each.
 * Records are decoded until one does not fit; none decodable with count > 0 = malformed. */
static int decode_batch(const struct proto_ctx *ctx, const struct frame_head *h, struct report *out,
                        size_t max_out, size_t *n_out)
{
    if (h->body_len < 3)
        return ST_ETRUNCATED;
    uint16_t count = be16(h->body);
    uint8_t type = h->body[2];
    const uint8_t *p = h->body + 3, *end = h->body + h->body_len;
    size_t n = 0;
    while (n < count && n < max_out && end - p >= 2 && end - p - 2 >= be16(p)) {
        size_t rec_len = be16(p);
        struct report *r = &out[n];
        head_attrs(h, r);
        report_attr_uint(r, "count", count);
        report_attr_uint(r, "batch_type", type);
        report_attr_uint(r, "record", (uint32_t)n);
        if (decode_location(ctx, p + 2, rec_len, r) < 0)
            break;
        p += 2 + rec_len;
        n++;
    }
    if (n == 0 && count > 0)
        return ST_EMALFORMED;
    if (n == 0) { /* an empty batch still names the device */
        head_attrs(h, &out[0]);
        report_attr_uint(&out[0], "count", 0);
        report_attr_uint(&out[0], "batch_type", type);
        n = 1;
    }
    *n_out = n;
    return 0;
}

/* Raw body for messages decoded no further (sub-packets, encrypted bodies, unknown ids). */
static void body_attr(const struct frame_head *h, struct report *r)
{
    report_attr_bytes_hex(r, "body", h->body, h->body_len);
}

/* ---------------------------------------------------------------------------------------
 * Replies.
 */

/* Whether a device message is answered with 0x8001. JT/T 808 answers every uplink; the
 * vectors follow Traccar, which does not answer these (0x0001 is itself an answer), and
 * 0x8xxx ids are platform→terminal messages a terminal never sends. */
static bool wants_general_response(uint16_t msg_id)
{
    switch (msg_id) {
    case MSG_TERMINAL_ACK:
    case 0x0701: /* e-waybill */
    case 0x0702: /* driver identity */
    case 0x1300:
    case 0x2070:
        return false;
    default:
        return msg_id < 0x8000;
    }
}

static void reply_build(struct proto_ctx *ctx, const struct frame_head *h, uint16_t msg_id,
                        const uint8_t *body, size_t body_len, struct proto_reply *reply)
{
    struct frame_spec s = {
        .msg_id = msg_id,
        .v2019 = h->v2019,
        .version = h->version,
        .terminal = h->terminal,
        .terminal_len = h->terminal_len,
        .serial = ctx->server_serial++,
        .short_serial = h->short_serial,
        .body = body,
        .body_len = body_len,
    };
    ptrdiff_t n = frame_build(&s, reply->buf, sizeof reply->buf);
    reply->len = n > 0 ? (size_t)n : 0;
}

static void reply_general(struct proto_ctx *ctx, const struct frame_head *h,
                          struct proto_reply *reply)
{
    uint8_t body[5];
    put16(put16(body, h->serial), h->msg_id);
    body[4] = 0; /* OK */
    reply_build(ctx, h, MSG_SERVER_ACK, body, sizeof body, reply);
}

/* 0x8100: device serial, result 0, auth code = the device id text (as Traccar). */
static void reply_register(struct proto_ctx *ctx, const struct frame_head *h,
                           struct proto_reply *reply)
{
    uint8_t body[3 + REPORT_ID_LEN];
    size_t id_len = strlen(h->device_id);
    put16(body, h->serial);
    body[2] = 0;
    memcpy(body + 3, h->device_id, id_len);
    reply_build(ctx, h, MSG_REGISTER_ACK, body, 3 + id_len, reply);
}

/* 0x4401 (only when attr bit 15 asks for it): the report's message id + result 0. */
static void reply_jt_report(struct proto_ctx *ctx, const struct frame_head *h,
                            struct proto_reply *reply)
{
    uint8_t body[3];
    put16(body, h->msg_id);
    body[2] = 0;
    if (h->attr & ATTR_JT_WANTS_ACK)
        reply_build(ctx, h, MSG_JT_REPORT_ACK, body, sizeof body, reply);
}

/* ---------------------------------------------------------------------------------------
 * proto_ops.
 */

static int decode_binary(struct proto_ctx *ctx, const uint8_t *frame, size_t len,
                         struct report *out, size_t max_out, size_t *n_out,
                         struct proto_reply *reply)
{
    uint8_t copy[PROTO_FRAME_MAX];
    const uint8_t *u = frame + 1; /* read in place unless something is escaped */
    size_t used;
    if (len < 2 || frame[len - 1] != DELIM)
        return ST_EMALFORMED;
    ptrdiff_t n = (ptrdiff_t)plain_run(u, len - 2);
    if ((size_t)n < len - 2) {
        n = unescape(u, len - 2, copy, sizeof copy, &used);
        if (n < 0)
            return (int)n;
        if (used != len - 2)
            return ST_EMALFORMED; /* a 0x7E or a dangling 0x7D inside */
        u = copy;
    }
    struct frame_head h;
    int rc = parse_head(u, (size_t)n, &h);
    if (rc < 0)
        return rc;

    struct report *r = &out[0];
    head_attrs(&h, r);
    *n_out = 1;
    rc = 0;
    bool opaque = h.subpacket || (!h.short_serial && (h.attr & ATTR_ENCRYPTED));
    switch (opaque ? 0 : h.msg_id) {
    case MSG_TERMINAL_ACK:
    case MSG_SERVER_ACK:
        decode_general_ack(&h, r);
        break;
    case MSG_HEARTBEAT:
    case MSG_LOGOUT:
        break;
    case MSG_REGISTER:
        rc = decode_register(&h, r);
        break;
    case MSG_AUTH:
        decode_auth(&h, r);
        break;
    case MSG_LOCATION:
        rc = decode_location(ctx, h.body, h.body_len, r);
        break;
    case MSG_LOCATION_ANSWER:
        if (h.body_len < 2) {
            rc = ST_ETRUNCATED;
            break;
        }
        report_attr_uint(r, "ack_serial", be16(h.body));
        rc = decode_location(ctx, h.body + 2, h.body_len - 2, r);
        break;
    case MSG_BATCH:
        rc = decode_batch(ctx, &h, out, max_out, n_out);
        break;
    case MSG_JT_REPORT:
    case MSG_JT_REPORT_BLIND:
        rc = decode_jt_report(&h, r);
        break;
    case MSG_TEXT_DOWN:
        if (h.body_len >= 1) {
            report_attr_uint(r, "body_flag", h.body[0]);
            text_attr(r, "text", h.body + 1, h.body_len - 1);
        }
        break;
    default:
        body_attr(&h, r);
        rc = ST_EUNSUPPORTED;
        break;
    }
    if (rc < 0 && rc != ST_EUNSUPPORTED) {
        *n_out = 0;
        return rc;
    }
    if (h.short_serial)
        reply_jt_report(ctx, &h, reply);
    else if (h.msg_id == MSG_REGISTER && !opaque)
        reply_register(ctx, &h, reply);
    else if (wants_general_response(h.msg_id))
        reply_general(ctx, &h, reply);
    return rc;
}

static int decode(struct proto_ctx *ctx, const uint8_t *frame, size_t len, struct report *out,
                  size_t max_out, size_t *n_out, struct proto_reply *reply)
{
    *n_out = 0;
    reply->len = 0;
    if (len == 0 || max_out == 0)
        return ST_EMALFORMED;
    if (len > PROTO_FRAME_MAX)
        return ST_ERANGE;
    if (frame[0] == TEXT_OPEN)
        return jt600_decode_text(ctx, frame, len, out, max_out, n_out, reply);
    if (frame[0] != DELIM)
        return ST_EMALFORMED;
    return decode_binary(ctx, frame, len, out, max_out, n_out, reply);
}

/* `(` + 12 digits + `,`: YES once all 14 bytes match, MAYBE while they match so far. */
static int detect_text(const uint8_t *buf, size_t len)
{
    for (size_t i = 1; i < len && i <= TEXT_ID_DIGITS + 1; i++) {
        bool ok = i <= TEXT_ID_DIGITS ? buf[i] >= '0' && buf[i] <= '9' : buf[i] == ',';
        if (!ok)
            return PROTO_DETECT_NO;
    }
    return len >= TEXT_ID_DIGITS + 2 ? PROTO_DETECT_YES : PROTO_DETECT_MAYBE;
}

/* 0x7E frame: MAYBE until the closing delimiter is in; then YES when the header is
 * plausible (an uplink id) and the body length or the checksum agrees. Traccar's samples
 * have one of the two wrong now and then (decode() tolerates that); a first frame with
 * both wrong gives no evidence at all and is not claimed. */
static int detect_binary(const uint8_t *buf, size_t len)
{
    while (len >= 2 && buf[1] == DELIM) { /* 7E 7E: the second one opens the frame */
        buf++;
        len--;
    }
    size_t limit = len < PROTO_FRAME_MAX ? len : PROTO_FRAME_MAX;
    size_t end = 1;
    while (end < limit && buf[end] != DELIM)
        end++;
    uint8_t u[PROTO_FRAME_MAX];
    size_t used;
    ptrdiff_t n = unescape(buf + 1, end - 1, u, sizeof u, &used);
    if (n < 0)
        return PROTO_DETECT_NO;
    uint16_t msg_id = n >= 2 ? be16(u) : 1;
    if (msg_id == 0 || msg_id >= 0x8000)
        return PROTO_DETECT_NO;
    if (end == limit)
        return len >= PROTO_FRAME_MAX ? PROTO_DETECT_NO : PROTO_DETECT_MAYBE;
    struct frame_head h;
    if (used != end - 1 || parse_head(u, (size_t)n, &h) < 0)
        return PROTO_DETECT_NO;
    return h.checksum_ok || h.body_len == h.declared_len ? PROTO_DETECT_YES : PROTO_DETECT_NO;
}

static int detect(const uint8_t *buf, size_t len)
{
    if (len == 0)
        return PROTO_DETECT_MAYBE;
    if (buf[0] == TEXT_OPEN)
        return detect_text(buf, len);
    if (buf[0] == DELIM)
        return detect_binary(buf, len);
    return PROTO_DETECT_NO;
}

/* `( … )` up to the first `)`. A 0x7E or another `(` before it means the `(` was noise. */
static ptrdiff_t frame_text(const uint8_t *buf, size_t len)
{
    size_t limit = len < PROTO_FRAME_MAX ? len : PROTO_FRAME_MAX;
    for (size_t i = 1; i < limit; i++) {
        if (buf[i] == TEXT_CLOSE)
            return (ptrdiff_t)i + 1;
        if (buf[i] == DELIM || buf[i] == TEXT_OPEN)
            return -(ptrdiff_t)i;
    }
    return len >= PROTO_FRAME_MAX ? -(ptrdiff_t)PROTO_FRAME_MAX : 0;
}

/* 0x7E … 0x7E. An empty pair `7E 7E` is a closing delimiter followed by an opening one
 * (or noise): skip the first. Over PROTO_FRAME_MAX without a closing delimiter: skip. */
static ptrdiff_t frame_binary(const uint8_t *buf, size_t len)
{
    if (len >= 2 && buf[1] == DELIM)
        return -1;
    size_t limit = len < PROTO_FRAME_MAX ? len : PROTO_FRAME_MAX;
    const uint8_t *end = limit > 1 ? memchr(buf + 1, DELIM, limit - 1) : NULL;
    if (end)
        return end - buf + 1;
    return len >= PROTO_FRAME_MAX ? -(ptrdiff_t)PROTO_FRAME_MAX : 0;
}

static ptrdiff_t frame(const uint8_t *buf, size_t len)
{
    if (len == 0)
        return 0;
    if (buf[0] == DELIM)
        return frame_binary(buf, len);
    if (buf[0] == TEXT_OPEN)
        return frame_text(buf, len);
    size_t i = 1;
    while (i < len && buf[i] != DELIM && buf[i] != TEXT_OPEN)
        i++;
    return -(ptrdiff_t)i;
}

/* ---------------------------------------------------------------------------------------
 * Encoders (replies above, the simulator and the tests).
 */

/* Terminal text → the 6-byte field: up to 12 digits as BCD (left-padded), or a 15-digit
 * IMEI as the 48-bit number of its first 14 digits (the inverse of terminal_device_id). */
static int terminal_encode(const char *text, uint8_t *t)
{
    size_t n = strlen(text);
    for (size_t i = 0; i < n; i++)
        if (text[i] < '0' || text[i] > '9')
            return ST_EMALFORMED;
    if (n == 15) {
        uint64_t v = 0;
        for (size_t i = 0; i < 14; i++)
            v = v * 10 + (uint64_t)(text[i] - '0');
        for (int i = TERMINAL_LEN_2013 - 1; i >= 0; i--, v >>= 8) /* 14 digits < 2^48 */
            t[i] = (uint8_t)v;
        return 0;
    }
    if (n > 2 * TERMINAL_LEN_2013)
        return ST_ERANGE;
    memset(t, 0, TERMINAL_LEN_2013);
    for (size_t i = 0; i < n; i++) {
        size_t pos = 2 * TERMINAL_LEN_2013 - n + i; /* digit position in the 12 */
        t[pos / 2] |= (uint8_t)((text[i] - '0') << (pos % 2 ? 0 : 4));
    }
    return 0;
}

ptrdiff_t jt808_encode_frame(uint16_t msg_id, const char *terminal, uint16_t serial,
                             const uint8_t *body, size_t body_len, uint8_t *out, size_t cap)
{
    uint8_t t[TERMINAL_LEN_2013];
    int rc = terminal_encode(terminal, t);
    if (rc < 0)
        return rc;
    struct frame_spec s = {
        .msg_id = msg_id,
        .terminal = t,
        .terminal_len = sizeof t,
        .serial = serial,
        .body = body,
        .body_len = body_len,
    };
    return frame_build(&s, out, cap);
}

/* ---------------------------------------------------------------------------------------
 * Downlink commands (JT/T 808 platform messages; docs/protocols/jt808.md "Commands").
 */

#define CONTROL_RESET 0x04           /* 0x8105 command word: terminal reset */
#define PARAM_REPORT_INTERVAL 0x0029 /* 0x8103: default time reporting interval, s */
#define TEXT_FLAG_URGENT 0x01        /* 0x8300 flag (as Traccar sends) */
#define CUSTOM_HEX_PREFIX "hex:"     /* custom text = message id + body in hex */
#define V2019_VERSION 1              /* protocol version byte of a 2019 header */

/* The header a command to `id` needs: 20 digits = a 2019 terminal (10 BCD bytes), else the
 * 2013 rules of terminal_encode(). */
static int command_terminal(const char *id, uint8_t t[TERMINAL_LEN_2019], struct frame_spec *s)
{
    size_t n = id ? strlen(id) : 0;
    if (n == 0)
        return ST_EMALFORMED;
    if (n != 2 * TERMINAL_LEN_2019) {
        s->terminal_len = TERMINAL_LEN_2013;
        return terminal_encode(id, t);
    }
    for (size_t i = 0; i < n; i++) {
        if (id[i] < '0' || id[i] > '9')
            return ST_EMALFORMED;
        if (i % 2 == 0)
            t[i / 2] = (uint8_t)((id[i] - '0') << 4);
        else
            t[i / 2] |= (uint8_t)(id[i] - '0');
    }
    s->terminal_len = TERMINAL_LEN_2019;
    s->v2019 = true;
    s->version = V2019_VERSION;
    return 0;
}

/* `hex:` + message id (4 digits) + body: any platform message the device's maker documents
 * (e.g. vendor 0x8105 command words). Returns 0 or ST_EMALFORMED / ST_ERANGE. */
static int custom_hex(const char *hex, uint16_t *msg_id, uint8_t *body, size_t *body_len)
{
    size_t n = strlen(hex);
    uint8_t bytes[2 + BODY_MAX];
    if (n < 4 || n % 2)
        return ST_EMALFORMED;
    if (n / 2 > sizeof bytes)
        return ST_ERANGE;
    for (size_t i = 0; i < n; i++) {
        char c = hex[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0)
            return ST_EMALFORMED;
        bytes[i / 2] = (uint8_t)(i % 2 ? bytes[i / 2] | d : d << 4);
    }
    *msg_id = be16(bytes);
    *body_len = n / 2 - 2;
    memcpy(body, bytes + 2, *body_len);
    return 0;
}

/* The message a command becomes: id and body. ST_EUNSUPPORTED for commands JT/T 808 does not
 * standardise (engine stop/resume, unlock: vendor command words differ; JT709A unlock has no
 * public description). */
static int command_message(const struct proto_command *cmd, uint16_t *msg_id, uint8_t *body,
                           size_t *body_len)
{
    *body_len = 0;
    switch (cmd->type) {
    case PROTO_CMD_REBOOT:
        *msg_id = MSG_TERMINAL_CONTROL;
        body[(*body_len)++] = CONTROL_RESET;
        return 0;
    case PROTO_CMD_POSITION: *msg_id = MSG_LOCATION_QUERY; return 0;
    case PROTO_CMD_INTERVAL: /* one parameter: id (4), length (1), DWORD seconds */
        if (cmd->number <= 0 || (uint64_t)cmd->number > UINT32_MAX)
            return ST_EMALFORMED;
        *msg_id = MSG_SET_PARAMS;
        body[0] = 1;
        put32(body + 1, PARAM_REPORT_INTERVAL);
        body[5] = 4;
        put32(body + 6, (uint32_t)cmd->number);
        *body_len = 10;
        return 0;
    case PROTO_CMD_CUSTOM: {
        if (!cmd->text)
            return ST_EMALFORMED;
        size_t prefix = strlen(CUSTOM_HEX_PREFIX);
        if (strncmp(cmd->text, CUSTOM_HEX_PREFIX, prefix) == 0)
            return custom_hex(cmd->text + prefix, msg_id, body, body_len);
        size_t n = strlen(cmd->text);
        if (n + 1 > BODY_MAX)
            return ST_ERANGE;
        *msg_id = MSG_TEXT_DOWN;
        body[0] = TEXT_FLAG_URGENT;
        memcpy(body + 1, cmd->text, n);
        *body_len = n + 1;
        return 0;
    }
    default: return ST_EUNSUPPORTED;
    }
}

static int encode_command(struct proto_ctx *ctx, const struct proto_command *cmd, uint8_t *out,
                          size_t cap, size_t *len)
{
    uint8_t body[BODY_MAX], terminal[TERMINAL_LEN_2019];
    struct frame_spec s = {.terminal = terminal, .body = body, .serial = ctx->server_serial};
    *len = 0;
    int rc = command_message(cmd, &s.msg_id, body, &s.body_len);
    if (rc < 0)
        return rc;
    rc = command_terminal(cmd->device_id, terminal, &s);
    if (rc < 0)
        return rc == ST_ERANGE ? ST_EMALFORMED : rc; /* an id no terminal field can hold */
    ptrdiff_t n = frame_build(&s, out, cap);
    if (n < 0)
        return (int)n;
    ctx->server_serial++;
    *len = (size_t)n;
    return 0;
}

int jt808_dialect_by_name(const char *name)
{
    static const char *const names[] = {
        [JT808_DIALECT_JOINTECH] = "jointech", [JT808_DIALECT_STANDARD] = "standard"};
    for (size_t i = 0; name && i < sizeof names / sizeof names[0]; i++)
        if (strcmp(name, names[i]) == 0)
            return (int)i;
    return ST_ECONFIG;
}

const struct proto_ops proto_jt808 = {
    .name = "jt808",
    .detect = detect,
    .frame = frame,
    .decode = decode,
    .encode_command = encode_command,
    .dialect_by_name = jt808_dialect_by_name,
};

static uint8_t to_bcd(int v)
{
    return (uint8_t)((v / 10 % 10) << 4 | v % 10);
}

static uint32_t scaled(double v, double scale, double max)
{
    v = v < 0 ? -v * scale : v * scale;
    return v >= max ? (uint32_t)max : (uint32_t)(v + 0.5);
}

/* The Jointech 0x0B kind for an event (type and reason must match; the source too unless
 * the event leaves it unset), or NULL. */
static const struct lock_kind *lock_kind_for_event(const struct report_event *e)
{
    for (size_t i = 0; i < N_LOCK_KINDS; i++) {
        const struct lock_kind *k = &lock_kinds[i];
        if (k->event == e->type && strcmp(k->reason, e->reason) == 0 &&
            (e->source == REPORT_SRC_NONE || e->source == k->source))
            return k;
    }
    return NULL;
}

/* Item 0x0B for event e at p (room checked by the caller: at most 10 bytes). */
static uint8_t *lock_item_encode(const struct lock_kind *k, const struct report_event *e,
                                 uint8_t *p)
{
    uint8_t *len = p + 1;
    p[0] = 0x0B;
    p += 2;
    *p++ = k->type;
    if (k->payload == LP_PASSWORD || k->payload == LP_PASSWORD_STATUS) {
        memset(p, '0', JT_PASSWORD_LEN); /* the simulator has no password to report */
        p += JT_PASSWORD_LEN;
    } else if (k->payload == LP_CARD || k->payload == LP_CARD_STATUS) {
        uint64_t card = 0;
        for (const char *c = e->card; *c >= '0' && *c <= '9'; c++)
            card = card * 10 + (uint64_t)(*c - '0');
        p = put32(p, (uint32_t)card);
    }
    if (k->payload == LP_PASSWORD_STATUS || k->payload == LP_CARD_STATUS)
        *p++ = (uint8_t)(e->fence_id >= 1 && e->fence_id <= JT_FENCE_MAX ? e->fence_id : 0);
    *len = (uint8_t)(p - len - 1);
    return p;
}

#define LOCATION_ENCODED_MAX (LOCATION_LEN + 3 + 3 + 3 + 4 + 10)

ptrdiff_t jt808_encode_location(const struct report *r, uint8_t *body, size_t cap)
{
    if (cap < LOCATION_ENCODED_MAX)
        return ST_ERANGE;
    uint32_t alarm = 0, status = 0;
    if (r->valid)
        status |= ST_POSITIONED | ST_GNSS;
    if (r->valid && r->fix == REPORT_FIX_BEIDOU)
        status |= ST_BEIDOU;
    if (!r->valid && r->fix == REPORT_FIX_LBS)
        status |= ST_JT_LBS;
    if (r->lat < 0)
        status |= ST_SOUTH;
    if (r->lon < 0)
        status |= ST_WEST;
    if (r->lock == REPORT_LOCK_UNLOCKED)
        status |= ST_JT_MOTOR_OPEN;
    const struct report_event *ev = r->n_events ? &r->events[0] : NULL;
    const struct lock_kind *k = ev ? lock_kind_for_event(ev) : NULL;
    if (ev && ev->type == REPORT_EV_LOW_BATTERY)
        alarm |= 1u << 7;

    uint8_t *p = put32(body, alarm);
    p = put32(p, status);
    p = put32(p, scaled(r->lat, 1e6, 90e6));
    p = put32(p, scaled(r->lon, 1e6, 180e6));
    double alt = r->has_altitude ? r->altitude_m : 0;
    alt = alt < -32768 ? -32768 : alt > 32767 ? 32767 : alt;
    p = put16(p, (uint16_t)(int16_t)(alt < 0 ? alt - 0.5 : alt + 0.5));
    p = put16(p, (uint16_t)scaled(r->speed_kmh, 10, 65535));
    p = put16(p, (uint16_t)scaled(r->course, 1, 359));
    int y, mo, d, h, mi, s;
    st_time_to_utc(r->fix_time, &y, &mo, &d, &h, &mi, &s);
    const int fields[6] = {y % 100, mo, d, h, mi, s};
    for (int i = 0; i < 6; i++)
        *p++ = to_bcd(fields[i]);

    if (r->gsm_signal >= 0) {
        *p++ = 0x30, *p++ = 1;
        *p++ = (uint8_t)(r->gsm_signal > 255 ? 255 : r->gsm_signal);
    }
    if (r->satellites >= 0) {
        *p++ = 0x31, *p++ = 1;
        *p++ = (uint8_t)(r->satellites > 255 ? 255 : r->satellites);
    }
    if (r->battery_pct >= 0 || r->charging == 1) {
        *p++ = 0xD4, *p++ = 1;
        *p++ = r->battery_pct >= 0 ? (uint8_t)(r->battery_pct > 100 ? 100 : r->battery_pct)
                                   : JT_BATTERY_CHARGING;
    }
    if (r->battery_v >= 0) {
        *p++ = 0xD5, *p++ = 2;
        p = put16(p, (uint16_t)scaled(r->battery_v, 100, 65535));
    }
    if (k)
        p = lock_item_encode(k, ev, p);
    return p - body;
}
