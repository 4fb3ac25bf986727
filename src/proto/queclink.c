/* queclink.c — Queclink @Track ASCII protocol (GL300, GV300, GV200, GL500…),
 * docs/protocols/queclink.md.
 *
 * `+RESP:GTxxx,<protocol version>,<unique id>,<device name>,…,<send time>,<count>$`
 * (`+BUFF:` = the same, sent late from the buffer; `+ACK:` = command answers and
 * the GTHBD heartbeat). Field counts differ per model and firmware, so position
 * records are found by their shape: a block of 12 fields (GPS accuracy, speed,
 * azimuth, altitude, longitude, latitude, UTC time, MCC, MNC, LAC, cell ID,
 * reserved/odometer), repeated <Number> times. Everything else stays raw.
 * Pure code: no allocation, no logging; every read is bounded by a length.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "../core/err.h"
#include "proto.h"
#include "text_common.h"

#define FIELDS_MAX 320 /* GTCAN carries ~80, 15-point GTFRI ~190 */
#define BLOCK 12       /* fields of one position record */
#define HEAD 4         /* type, protocol version, unique id, device name */
#define TRAILER 2      /* send time, count number */
#define ID_MIN 10
#define ID_MAX 20
#define PASSWORD_MAX 16

static const char *const prefixes[] = {"+RESP:GT", "+BUFF:GT", "+ACK:GT"};
#define N_PREFIXES (sizeof prefixes / sizeof prefixes[0])

/* Count the run of bytes from `i` that satisfy `ok`; *done = the run ended before len. */
static size_t run(const uint8_t *b, size_t len, size_t i, bool (*ok)(uint8_t), bool *done)
{
    size_t n = 0;
    while (i + n < len && ok(b[i + n]))
        n++;
    *done = i + n < len;
    return n;
}

static bool is_version_char(uint8_t c)
{
    return tc_is_digit(c) || tc_is_upper(c);
}

/* `+RESP:GT` / `+BUFF:GT` / `+ACK:GT`, three capitals, `,`, a protocol version of
 * 6 or 10 capitals/digits, `,`, a unique id of 10..20 hex digits (IMEI or MEID), `,`. */
static int queclink_detect(const uint8_t *buf, size_t len)
{
    size_t i = 0;
    bool matched = false;
    for (size_t p = 0; p < N_PREFIXES && !matched; p++) {
        size_t n = strlen(prefixes[p]);
        size_t m = len < n ? len : n;
        if (memcmp(buf, prefixes[p], m) != 0)
            continue;
        if (len < n)
            return PROTO_DETECT_MAYBE;
        matched = true;
        i = n;
    }
    if (!matched)
        return PROTO_DETECT_NO;
    bool done;
    size_t n = run(buf, len, i, tc_is_upper, &done);
    if (!done)
        return n <= 3 ? PROTO_DETECT_MAYBE : PROTO_DETECT_NO;
    if (n != 3 || buf[i + n] != ',')
        return PROTO_DETECT_NO;
    i += n + 1;
    n = run(buf, len, i, is_version_char, &done);
    if (!done)
        return n <= 10 ? PROTO_DETECT_MAYBE : PROTO_DETECT_NO;
    if ((n != 6 && n != 10) || buf[i + n] != ',')
        return PROTO_DETECT_NO;
    i += n + 1;
    n = run(buf, len, i, tc_is_hex, &done);
    if (!done)
        return n <= ID_MAX ? PROTO_DETECT_MAYBE : PROTO_DETECT_NO;
    return n >= ID_MIN && n <= ID_MAX && buf[i + n] == ',' ? PROTO_DETECT_YES : PROTO_DETECT_NO;
}

/* Skip to the next `+` (at least one byte). */
static ptrdiff_t resync(const uint8_t *b, size_t len)
{
    size_t i = 1;
    while (i < len && b[i] != '+')
        i++;
    return -(ptrdiff_t)i;
}

static ptrdiff_t queclink_frame(const uint8_t *buf, size_t len)
{
    if (len == 0)
        return 0;
    if (buf[0] != '+')
        return resync(buf, len);
    size_t limit = len < PROTO_FRAME_MAX ? len : PROTO_FRAME_MAX;
    const uint8_t *end = memchr(buf, '$', limit);
    if (end)
        return end - buf + 1;
    return len >= PROTO_FRAME_MAX ? resync(buf, len) : 0;
}

/* ---- position blocks ------------------------------------------------------ */

static bool empty_or_uint(struct tc_field f, uint64_t max)
{
    uint64_t v;
    return f.n == 0 || tc_uint(f, max, &v);
}

static bool empty_or_hex(struct tc_field f, size_t max_digits)
{
    uint64_t v;
    return f.n == 0 || (f.n <= max_digits && tc_hex(f, UINT64_MAX, &v));
}

/* A coordinate has a decimal point and lies within ±limit. */
static bool coordinate(struct tc_field f, double limit, double *v)
{
    return memchr(f.p, '.', f.n) && tc_decimal(f, v) && *v >= -limit && *v <= limit;
}

/* Score of one 12-field block (higher = more of it present), -1 when its shape is wrong. */
static int block_score(const struct tc_field *b)
{
    double v, lon, lat;
    int64_t t;
    if (!(b[0].n == 0 || (tc_decimal(b[0], &v) && v >= 0 && v <= 50)) ||
        !(b[1].n == 0 || (tc_decimal(b[1], &v) && v >= 0 && v < 10000)) ||
        !empty_or_uint(b[2], 360) || !(b[3].n == 0 || tc_decimal(b[3], &v)) ||
        !empty_or_uint(b[7], 9999) || !empty_or_uint(b[8], 9999) || !empty_or_hex(b[9], 8) ||
        !empty_or_hex(b[10], 8))
        return -1;
    int score = 0;
    if (b[4].n || b[5].n) {
        if (!coordinate(b[4], 180, &lon) || !coordinate(b[5], 90, &lat))
            return -1;
        score += 2;
    }
    if (b[6].n) {
        if (!tc_time_digits(b[6].p, b[6].n, &t))
            return -1;
        score += 4;
    }
    return score + (b[7].n ? 1 : 0);
}

struct layout {
    size_t start, count; /* first block field, number of blocks */
    bool counted;        /* a <Number> field precedes the blocks */
};

static int layout_score(const struct tc_field *f, size_t nf, size_t start, size_t count)
{
    if (count == 0 || start + count * BLOCK > nf - TRAILER)
        return -1;
    int total = 0;
    for (size_t k = 0; k < count; k++) {
        int s = block_score(f + start + k * BLOCK);
        if (s < 0)
            return -1;
        total += s;
    }
    return total;
}

/* The best-scoring place for the position blocks: either after a <Number>
 * field that counts them, or a single block with no count (GTBPL, GTIGN…). */
static bool find_blocks(const struct tc_field *f, size_t nf, struct layout *best)
{
    int best_score = -1;
    if (nf < HEAD + BLOCK + TRAILER)
        return false;
    for (size_t s = HEAD; s + BLOCK <= nf - TRAILER; s++) {
        uint64_t n;
        if (tc_uint(f[s - 1], PROTO_MAX_REPORTS, &n) && n > 0 && s > HEAD) {
            int sc = layout_score(f, nf, s, (size_t)n);
            if (sc > best_score) {
                best_score = sc;
                *best = (struct layout){s, (size_t)n, true};
            }
        }
        int sc = layout_score(f, nf, s, 1);
        if (sc > best_score) {
            best_score = sc;
            *best = (struct layout){s, 1, false};
        }
    }
    return best_score >= 0;
}

/* Join fields [from, to) with commas into attribute `key` (skipped when empty). */
static void attr_span(struct report *r, const char *key, const struct tc_field *f, size_t from,
                      size_t to)
{
    if (from >= to)
        return;
    const char *start = f[from].p;
    const char *end = f[to - 1].p + f[to - 1].n;
    tc_attr(r, key, (struct tc_field){start, (size_t)(end - start)});
}

static void decode_block(struct report *r, const struct tc_field *b)
{
    double acc = 0, v;
    uint64_t u, mcc, mnc, lac, cid;
    if (b[0].n && tc_decimal(b[0], &acc))
        tc_attr(r, "gps_accuracy", b[0]);
    if (b[4].n && b[5].n) {
        r->has_position = true;
        tc_decimal(b[4], &r->lon);
        tc_decimal(b[5], &r->lat);
        /* accuracy 0 = no fix: the last known position is repeated */
        r->valid = acc > 0;
        r->fix = r->valid ? REPORT_FIX_GNSS : REPORT_FIX_NONE;
        if (tc_decimal(b[1], &v))
            r->speed_kmh = v;
        if (tc_uint(b[2], 360, &u))
            r->course = (double)u;
        if (tc_decimal(b[3], &v)) {
            r->has_altitude = true;
            r->altitude_m = v;
        }
    }
    if (b[6].n)
        tc_time_digits(b[6].p, b[6].n, &r->fix_time);
    if (tc_uint(b[7], 9999, &mcc) && tc_uint(b[8], 9999, &mnc) && tc_hex(b[9], 0xFFFFFFFF, &lac) &&
        tc_hex(b[10], 0xFFFFFFFF, &cid)) {
        r->has_cell = true;
        r->cell.mcc = (uint16_t)mcc;
        r->cell.mnc = (uint16_t)mnc;
        r->cell.lac = (uint32_t)lac;
        r->cell.cid = (uint32_t)cid;
    }
    /* GL300 repeats <Odo mileage> in each block; GV models send a reserved `00` */
    if (memchr(b[11].p, '.', b[11].n) && tc_decimal(b[11], &v))
        r->odometer_km = v;
    else if (b[11].n)
        tc_attr(r, "block_reserved", b[11]);
}

/* Events of the message type; `type_field` is the field before <Number>
 * (GV: report ID and type as two hex digits; GL300: the type alone). */
static void add_events(struct report *r, const char *type, const struct tc_field *f,
                       const struct layout *l)
{
    struct tc_field rt =
        l->counted && l->start >= HEAD + 2 ? f[l->start - 2] : (struct tc_field){"", 0};
    char report_type = rt.n ? rt.p[rt.n - 1] : '\0';
    if (strcmp(type, "GTSOS") == 0) {
        tc_event(r, REPORT_EV_SOS, "", -1);
    } else if (strcmp(type, "GTSPD") == 0 && report_type == '0') {
        tc_event(r, REPORT_EV_OVERSPEED, "", -1); /* type 0: outside the allowed speed range */
    } else if (strcmp(type, "GTGEO") == 0 && (report_type == '0' || report_type == '1')) {
        uint64_t id = 0;
        bool have_id = rt.n == 2 ? tc_hex((struct tc_field){rt.p, 1}, 15, &id)
                                 : l->start >= HEAD + 3 && tc_uint(f[l->start - 3], 99, &id);
        tc_event(r, report_type == '1' ? REPORT_EV_GEOFENCE_ENTER : REPORT_EV_GEOFENCE_EXIT, "",
                 have_id ? (int)id : -1);
    } else if (strcmp(type, "GTBPL") == 0) {
        tc_event(r, REPORT_EV_LOW_BATTERY, "backup_battery_low", -1);
    } else if (strcmp(type, "GTMPF") == 0) {
        tc_event(r, REPORT_EV_POWER_CUT, "", -1);
    }
}

/* Fields after the blocks: GV models start with <Mileage> (x.x km); GL300
 * sends only <battery percentage>. The rest stays raw. */
static void decode_tail(struct report *r, const struct tc_field *f, size_t from, size_t to)
{
    double v;
    uint64_t pct;
    if (from < to && r->odometer_km < 0 && memchr(f[from].p, '.', f[from].n) &&
        tc_decimal(f[from], &v))
        r->odometer_km = v;
    if (to - from == 1 && tc_uint(f[from], 100, &pct))
        r->battery_pct = (int16_t)pct;
    attr_span(r, "fields_after", f, from, to);
}

/* Header attributes every report of the frame carries. */
static void common_fields(struct report *r, const char *kind, const char *type,
                          const struct tc_field *f, size_t nf)
{
    report_init(r, "queclink");
    tc_set_device_id(r, f[2]);
    snprintf(r->msg_type, sizeof r->msg_type, "%s:%s", kind, type);
    tc_attr(r, "protocol_version", f[1]);
    if (f[3].n)
        tc_attr(r, "device_name", f[3]);
    if (strcmp(kind, "BUFF") == 0)
        report_attr_set(r, "buffered", "true");
    tc_attr(r, "send_time", f[nf - 2]);
    /* the GPS time of a block replaces it; reports without one are timed when sent */
    tc_time_digits(f[nf - 2].p, f[nf - 2].n, &r->fix_time);
    tc_attr(r, "count", f[nf - 1]);
}

static void set_reply(struct proto_reply *reply, struct tc_field version, struct tc_field count)
{
    int n = snprintf((char *)reply->buf, sizeof reply->buf, "+SACK:GTHBD,%.*s,%.*s$",
                     (int)version.n, version.p, (int)count.n, count.p);
    reply->len = n > 0 && (size_t)n < sizeof reply->buf ? (size_t)n : 0;
}

static int queclink_decode(struct proto_ctx *ctx, const uint8_t *frame, size_t len,
                           struct report *out, size_t max_out, size_t *n_out,
                           struct proto_reply *reply)
{
    (void)ctx;
    static const char *const no_position[] = {"GTPNA", "GTPFA", "GTPDP", NULL};
    struct tc_field f[FIELDS_MAX];
    *n_out = 0;
    reply->len = 0;
    if (max_out == 0)
        return ST_ERANGE;
    report_init(&out[0], "queclink");
    if (len < 2 || frame[len - 1] != '$' || queclink_detect(frame, len) != PROTO_DETECT_YES)
        return ST_EMALFORMED;
    size_t nf = tc_split((const char *)frame, len - 1, ',', f, FIELDS_MAX);
    if (nf < HEAD + TRAILER || nf == FIELDS_MAX)
        return ST_EMALFORMED;
    /* "+RESP:GTFRI" → kind "RESP", type "GTFRI" */
    const char *colon = memchr(f[0].p, ':', f[0].n);
    char kind[8], type[8];
    snprintf(kind, sizeof kind, "%.*s", (int)(colon - f[0].p - 1), f[0].p + 1);
    snprintf(type, sizeof type, "%.*s", (int)(f[0].p + f[0].n - colon - 1), colon + 1);
    uint64_t count;
    int64_t t;
    if (!tc_hex(f[nf - 1], 0xFFFF, &count) || f[nf - 1].n != 4 ||
        !tc_time_digits(f[nf - 2].p, f[nf - 2].n, &t)) {
        tc_set_device_id(&out[0], f[2]);
        return ST_EMALFORMED;
    }
    struct report *r = &out[0];
    common_fields(r, kind, type, f, nf);
    if (strcmp(kind, "ACK") == 0) {
        if (strcmp(type, "GTHBD") == 0)
            set_reply(reply, f[1], f[nf - 1]);
        attr_span(r, "fields", f, HEAD, nf - TRAILER);
        *n_out = 1;
        return 0;
    }
    struct layout l = {0, 0, false};
    if (!find_blocks(f, nf, &l)) {
        for (size_t i = 0; no_position[i]; i++) {
            if (strcmp(type, no_position[i]) != 0)
                continue;
            if (strcmp(type, "GTPFA") == 0)
                tc_event(r, REPORT_EV_ALARM, "power_off", -1);
            attr_span(r, "fields", f, HEAD, nf - TRAILER);
            *n_out = 1;
            return 0;
        }
        *n_out = 1;
        return ST_EUNSUPPORTED;
    }
    if (l.count > max_out)
        return ST_ERANGE;
    size_t tail = l.start + l.count * BLOCK;
    for (size_t k = 0; k < l.count; k++) {
        r = &out[k];
        if (k > 0)
            common_fields(r, kind, type, f, nf);
        attr_span(r, "fields_before", f, HEAD, l.counted ? l.start - 1 : l.start);
        decode_block(r, f + l.start + k * BLOCK);
        decode_tail(r, f, tail, nf - TRAILER);
        add_events(r, type, f, &l);
    }
    *n_out = l.count;
    return 0;
}

/* ---- commands ------------------------------------------------------------- */

static bool password_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > PASSWORD_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!tc_is_digit((uint8_t)s[i]) && !tc_is_upper((uint8_t)s[i]) && !(s[i] >= 'a' && s[i] <= 'z'))
            return false;
    return true;
}

/* AT+GTRTO=<password>,<sub command>,<single config>,,,,,<serial>$ (GL300 @Track §3.2.11). */
static int real_time_operation(struct proto_ctx *ctx, const char *password, char sub, uint8_t *out,
                               size_t cap, size_t *len)
{
    if (!password_ok(password))
        return ST_EMALFORMED;
    unsigned serial = ctx ? ctx->server_serial : 0;
    int n =
        snprintf((char *)out, cap, "AT+GTRTO=%s,%c,,,,,,%04X$", password, sub, serial & 0xFFFFu);
    if (n < 0 || (size_t)n >= cap)
        return ST_ERANGE;
    if (ctx)
        ctx->server_serial = (uint16_t)(serial + 1);
    *len = (size_t)n;
    return 0;
}

static int queclink_encode(struct proto_ctx *ctx, const struct proto_command *cmd, uint8_t *out,
                           size_t cap, size_t *len)
{
    switch (cmd->type) {
    case PROTO_CMD_CUSTOM: {
        size_t n = cmd->text ? strlen(cmd->text) : 0;
        if (n == 0)
            return ST_EMALFORMED;
        for (size_t i = 0; i < n; i++)
            if ((uint8_t)cmd->text[i] < 0x20 || (uint8_t)cmd->text[i] > 0x7E)
                return ST_EMALFORMED;
        if (n > cap)
            return ST_ERANGE;
        memcpy(out, cmd->text, n);
        *len = n;
        return 0;
    }
    case PROTO_CMD_POSITION: return real_time_operation(ctx, cmd->text, '1', out, cap, len);
    case PROTO_CMD_REBOOT: return real_time_operation(ctx, cmd->text, '3', out, cap, len);
    default: return ST_EUNSUPPORTED;
    }
}

const struct proto_ops proto_queclink = {
    .name = "queclink",
    .detect = queclink_detect,
    .frame = queclink_frame,
    .decode = queclink_decode,
    .encode_command = queclink_encode,
};
