/* jt808_test.c — src/proto/jt808.c against tests/vectors/jt808.tsv (every row, every
 * expected key) plus framing, resynchronisation, robustness, encoder round trips, the
 * standard dialect (hand-worked rows of other vendors) and the downlink commands. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../../src/core/err.h"
#include "../../../src/core/timeutil.h"
#include "../../../src/proto/jt808.h"
#include "../../../src/proto/proto.h"
#include "../vectors.h"

#define MAX_BYTES 8192
#define MAX_FRAMES 16
#define EXPECTED_MAX 128
#define GMT8 (8 * 3600)

static struct vec_file vectors;
static struct report reports[PROTO_MAX_REPORTS];
static size_t keys_compared, rows_checked;

/* Keys of `expected` that are not decoder output, and why. Every other key must match. */
static const char *const not_decoder_output[] = {
    "reply_traccar",           /* the reply: compared byte by byte in check_reply() */
    "reply",                   /* text reply: compared in check_text_reply() */
    "wire",                    /* the input of `unescaped` rows */
    "valid_traccar",           /* Traccar's 0x5501 validity (0x5502 = invalid); ours: valid_flag */
    "time_utc_if_device_utc",  /* checked against fix_time in check_times() */
    "time_utc_if_device_gmt8", /* checked against fix_time - 8 h in check_times() */
    "platform_serial",         /* downlink rows: the header serial, checked as attr `serial` */
    "id",                      /* text rows: the device id, checked as device_id */
    NULL,
};

/* Downlink rows (server → device frames, decoded for `sealtrack decode`) in addition. */
static const char *const downlink_extra[] = {
    "device_id", /* the encoder's input IMEI: check_downlink_device_id() */
    NULL,
};

/* ------------------------------------------------------------------------------------ */

static void to_hex(const uint8_t *b, size_t len, char *out)
{
    static const char d[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = d[b[i] >> 4];
        out[2 * i + 1] = d[b[i] & 15];
    }
    out[2 * len] = '\0';
}

/* Test oracle for §3.1: delimiters kept, 7D 01 → 7D, 7D 02 → 7E. */
static size_t unescape_oracle(const uint8_t *in, size_t len, uint8_t *out)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (in[i] == 0x7D && i + 1 < len && i > 0) {
            out[n++] = (uint8_t)(0x7C + in[i + 1]);
            i++;
        } else {
            out[n++] = in[i];
        }
    }
    return n;
}

struct split {
    size_t n;
    size_t off[MAX_FRAMES], len[MAX_FRAMES];
    size_t leftover_off;
};

/* The server's loop: cut frames from the front, skip garbage, stop when more is needed. */
static void split_stream(const uint8_t *buf, size_t len, struct split *s)
{
    size_t pos = 0;
    s->n = 0;
    for (;;) {
        ptrdiff_t r = proto_jt808.frame(buf + pos, len - pos);
        if (r == 0)
            break;
        if (r < 0) {
            assert_true((size_t)-r <= len - pos);
            pos += (size_t)-r;
            continue;
        }
        assert_true((size_t)r <= len - pos);
        if (s->n < MAX_FRAMES) {
            s->off[s->n] = pos;
            s->len[s->n] = (size_t)r;
        }
        s->n++;
        pos += (size_t)r;
    }
    s->leftover_off = pos;
}

static int decode_bytes(struct proto_ctx *ctx, const uint8_t *f, size_t len, size_t *n,
                        struct proto_reply *reply)
{
    return proto_jt808.decode(ctx, f, len, reports, PROTO_MAX_REPORTS, n, reply);
}

static bool ignored(const char *key, const char *const *ignore)
{
    for (size_t i = 0; ignore[i]; i++)
        if (strcmp(ignore[i], key) == 0)
            return true;
    return false;
}

static bool record_key(const char *key)
{
    return key[0] == 'r' && key[1] >= '0' && key[1] <= '9' && !strchr(key, '.');
}

/* Compare with the expected keys of this row (record tuples and ignored keys excluded). */
static int check_keys(const struct vec_row *row, const struct report *r, const struct vec_kv *kv,
                      size_t n)
{
    struct vec_kv sel[EXPECTED_MAX];
    size_t m = 0;
    bool downlink = strcmp(row->layer, "downlink") == 0;
    for (size_t i = 0; i < n; i++)
        if (!record_key(kv[i].key) && !ignored(kv[i].key, not_decoder_output) &&
            !(downlink && ignored(kv[i].key, downlink_extra)))
            sel[m++] = kv[i];
    keys_compared += m;
    return vec_check_report(row->id, r, sel, m, "", NULL);
}

/* rN=time_raw,lat,lon,valid,speed_kmh against record N of a 0x0704 batch. */
static int check_records(const struct vec_row *row, size_t n_out, const struct vec_kv *kv,
                         size_t n)
{
    static const char *const names[] = {"time_raw", "lat", "lon", "valid", "speed_kmh"};
    int bad = 0;
    size_t records = 0;
    for (size_t i = 0; i < n; i++) {
        if (!record_key(kv[i].key))
            continue;
        size_t idx = (size_t)strtoul(kv[i].key + 1, NULL, 10);
        struct vec_kv t[5];
        const char *p = kv[i].val;
        for (size_t k = 0; k < 5; k++) {
            const char *comma = strchr(p, ',');
            size_t l = comma ? (size_t)(comma - p) : strlen(p);
            snprintf(t[k].key, sizeof t[k].key, "%s", names[k]);
            snprintf(t[k].val, sizeof t[k].val, "%.*s", (int)l, p);
            p += l + (comma ? 1 : 0);
        }
        records++;
        if (idx >= n_out) {
            fprintf(stderr, "%s: record %zu missing\n", row->id, idx);
            bad++;
            continue;
        }
        keys_compared += 5;
        bad += vec_check_report(row->id, &reports[idx], t, 5, "", NULL);
    }
    if (records && records != n_out) {
        fprintf(stderr, "%s: %zu records decoded, %zu expected\n", row->id, n_out, records);
        bad++;
    }
    return bad;
}

static int check_times(const struct vec_row *row, const struct report *r, const struct vec_kv *kv,
                       size_t n)
{
    static const struct {
        const char *key;
        int64_t offset;
    } readings[] = {{"time_utc_if_device_utc", 0}, {"time_utc_if_device_gmt8", GMT8}};
    int bad = 0;
    for (size_t i = 0; i < 2; i++) {
        const char *want = vec_get(kv, n, readings[i].key);
        int64_t t;
        if (!want)
            continue;
        keys_compared++;
        if (st_time_parse(want, &t) != 0 || t != r->fix_time - readings[i].offset ||
            !r->time_is_local) {
            char got[ST_ISO_LEN];
            st_time_iso(r->fix_time - readings[i].offset, got);
            fprintf(stderr, "%s: %s: expected %s, got %s\n", row->id, readings[i].key, want, got);
            bad++;
        }
    }
    return bad;
}

/* Serial offset of a frame built by the server (un-escaped, delimiter at 0). */
static void server_serial_span(const uint8_t *u, size_t *off, size_t *len)
{
    uint16_t msg_id = (uint16_t)(u[1] << 8 | u[2]);
    *off = 11;
    *len = 2;
    if (msg_id == 0x4401)
        *len = 1;
    else if (u[3] & 0x40)
        *off = 16;
}

/* reply vs reply_traccar with the server serial (and therefore the XOR) masked: Traccar
 * writes 0 or 1 there, the server its own counter. Our own checksum is verified. */
static int check_reply(const struct vec_row *row, const struct proto_reply *reply,
                       const char *want_hex)
{
    uint8_t want[PROTO_REPLY_MAX], wu[PROTO_REPLY_MAX], gu[PROTO_REPLY_MAX];
    keys_compared++;
    if (strcmp(want_hex, "none") == 0) {
        if (reply->len == 0)
            return 0;
        fprintf(stderr, "%s: reply: expected none, got %zu bytes\n", row->id, reply->len);
        return 1;
    }
    size_t wl = vec_unhex(want_hex, strlen(want_hex), want, sizeof want);
    assert_true(wl != (size_t)-1);
    size_t wn = unescape_oracle(want, wl, wu), gn = unescape_oracle(reply->buf, reply->len, gu);
    uint8_t x = 0;
    for (size_t i = 1; gn >= 3 && i < gn - 2; i++)
        x ^= gu[i];
    bool same = wn == gn && gn >= 14 && x == gu[gn - 2];
    if (same) {
        size_t off, len;
        server_serial_span(wu, &off, &len);
        memset(wu + off, 0, len);
        memset(gu + off, 0, len);
        wu[wn - 2] = gu[gn - 2] = 0;
        same = memcmp(wu, gu, wn) == 0;
    }
    if (same)
        return 0;
    char got[2 * PROTO_REPLY_MAX + 1];
    to_hex(reply->buf, reply->len, got);
    fprintf(stderr, "%s: reply: expected %s, got %s\n", row->id, want_hex, got);
    return 1;
}

/* `(…,BASE,2,<yyyyMMddHHmmss UTC now>)`: the fixed part, then 14 digits and `)`. */
static int check_text_reply(const struct vec_row *row, const struct proto_reply *reply,
                            const char *want)
{
    keys_compared++;
    if (strcmp(want, "none") == 0)
        return reply->len == 0 ? 0 : (fprintf(stderr, "%s: reply not expected\n", row->id), 1);
    const char *lt = strchr(want, '<');
    size_t fixed = lt ? (size_t)(lt - want) : strlen(want);
    const char *got = (const char *)reply->buf;
    bool ok = reply->len >= fixed && memcmp(got, want, fixed) == 0;
    if (ok && lt) {
        ok = reply->len == fixed + 15 && got[fixed + 14] == ')';
        for (size_t i = 0; ok && i < 14; i++)
            ok = got[fixed + i] >= '0' && got[fixed + i] <= '9';
    }
    if (!ok)
        fprintf(stderr, "%s: reply: expected %s, got %.*s\n", row->id, want, (int)reply->len, got);
    return ok ? 0 : 1;
}

/* `frames=N; f0=…; leftover=…` of stream rows. */
static int check_stream(const struct vec_row *row, const uint8_t *msg, size_t len,
                        const struct vec_kv *kv, size_t n)
{
    struct split s;
    char name[8], hex[2 * MAX_BYTES + 1];
    uint8_t u[MAX_BYTES];
    int bad = 0;
    split_stream(msg, len, &s);
    const char *frames = vec_get(kv, n, "frames");
    keys_compared++;
    if (!frames || strtoul(frames, NULL, 10) != s.n) {
        fprintf(stderr, "%s: frames: expected %s, got %zu\n", row->id, frames ? frames : "?", s.n);
        return 1;
    }
    for (size_t i = 0; i < s.n && i < MAX_FRAMES; i++) {
        snprintf(name, sizeof name, "f%zu", i);
        const char *want = vec_get(kv, n, name);
        const uint8_t *f = msg + s.off[i];
        size_t fl = f[0] == 0x7E ? unescape_oracle(f, s.len[i], u) : s.len[i];
        to_hex(f[0] == 0x7E ? u : f, fl, hex);
        keys_compared++;
        if (!want || strcmp(want, hex) != 0) {
            fprintf(stderr, "%s: %s: expected %s, got %s\n", row->id, name, want ? want : "?", hex);
            bad++;
        }
    }
    const char *left = vec_get(kv, n, "leftover");
    if (s.leftover_off < len)
        to_hex(msg + s.leftover_off, len - s.leftover_off, hex);
    else
        snprintf(hex, sizeof hex, "none");
    keys_compared++;
    if (!left || strcmp(left, hex) != 0) {
        fprintf(stderr, "%s: leftover: expected %s, got %s\n", row->id, left ? left : "?", hex);
        bad++;
    }
    return bad;
}

/* One complete frame: frame() must take it whole, then decode and compare everything. */
static int check_frame(const struct vec_row *row, const uint8_t *f, size_t len,
                       const struct vec_kv *kv, size_t n)
{
    struct proto_ctx ctx = {.now = 1700000000, .server_serial = 0, .dialect = 0};
    struct proto_reply reply;
    size_t n_out;
    int bad = 0;
    ptrdiff_t cut = proto_jt808.frame(f, len);
    if (cut != (ptrdiff_t)len) {
        fprintf(stderr, "%s: frame() returned %td for %zu bytes\n", row->id, cut, len);
        bad++;
    }
    int rc = decode_bytes(&ctx, f, len, &n_out, &reply);
    if ((rc != 0 && rc != ST_EUNSUPPORTED) || n_out == 0) {
        fprintf(stderr, "%s: decode: %s (%d reports)\n", row->id, st_strerror(rc), (int)n_out);
        return bad + 1;
    }
    if (f[0] == '(') {
        const char *id = vec_get(kv, n, "id");
        keys_compared++;
        if (!id || strcmp(id, reports[0].device_id) != 0) {
            fprintf(stderr, "%s: id: expected %s, got %s\n", row->id, id ? id : "?",
                    reports[0].device_id);
            bad++;
        }
        const char *want = vec_get(kv, n, "reply");
        if (want)
            bad += check_text_reply(row, &reply, want);
        return bad + check_keys(row, &reports[0], kv, n);
    }
    for (size_t i = 0; i < n_out; i++) {
        bad += check_keys(row, &reports[i], kv, n);
        bad += check_times(row, &reports[i], kv, n);
    }
    bad += check_records(row, n_out, kv, n);
    const char *platform_serial = vec_get(kv, n, "platform_serial");
    const char *serial = report_attr_get(&reports[0], "serial");
    if (platform_serial) {
        keys_compared++;
        if (!serial || strcmp(platform_serial, serial) != 0) {
            fprintf(stderr, "%s: platform_serial: expected %s\n", row->id, platform_serial);
            bad++;
        }
    }
    const char *want_reply = vec_get(kv, n, "reply_traccar");
    if (want_reply)
        bad += check_reply(row, &reply, want_reply);
    return bad;
}

/* Downlink rows name the device by the IMEI the encoder was given; a 6-byte terminal
 * holds only its first 14 digits (E01: Traccar's test IMEI 123456789012345 has no valid
 * Luhn digit, the decoder derives 7). Compare those 14. */
static int check_downlink_device_id(const struct vec_row *row, const struct vec_kv *kv, size_t n)
{
    const char *want = vec_get(kv, n, "device_id");
    if (!want)
        return 0;
    keys_compared++;
    size_t cmp = strlen(want) == 15 ? 14 : strlen(want) + 1;
    if (strncmp(want, reports[0].device_id, cmp) == 0)
        return 0;
    fprintf(stderr, "%s: device_id: expected %s, got %s\n", row->id, want, reports[0].device_id);
    return 1;
}

/* Downlink rows: what the server's encoder must produce for these fields. */
static int check_downlink_encoding(const struct vec_row *row, const uint8_t *msg, size_t len,
                                   const struct vec_kv *kv, size_t n)
{
    uint8_t body[512], out[1024];
    size_t bl = 0;
    const char *v;
    if ((v = vec_get(kv, n, "body")) != NULL) {
        bl = vec_unhex(v, strlen(v), body, sizeof body);
    } else if ((v = vec_get(kv, n, "body_flag")) != NULL) {
        const char *text = vec_get(kv, n, "text");
        body[0] = (uint8_t)strtoul(v, NULL, 10);
        bl = 1 + strlen(text);
        memcpy(body + 1, text, bl - 1);
    } else if ((v = vec_get(kv, n, "ack_serial")) != NULL) {
        unsigned long s = strtoul(v, NULL, 10);
        unsigned long id = strtoul(vec_get(kv, n, "ack_msg_id"), NULL, 16);
        body[0] = (uint8_t)(s >> 8), body[1] = (uint8_t)s;
        body[2] = (uint8_t)(id >> 8), body[3] = (uint8_t)id;
        body[4] = (uint8_t)strtoul(vec_get(kv, n, "result"), NULL, 10);
        bl = 5;
    }
    /* Header fields the row leaves out (E02) come from the decoded frame: what is under
     * test there is the body and the escaping. E01's device_id is Traccar's test IMEI, whose
     * 15th digit is not a Luhn digit: the encoder drops it anyway. */
    const char *serial = vec_get(kv, n, "serial");
    if (!serial)
        serial = vec_get(kv, n, "platform_serial");
    if (!serial)
        serial = report_attr_get(&reports[0], "serial");
    const char *id = vec_get(kv, n, "device_id");
    if (!id)
        id = vec_get(kv, n, "terminal");
    if (!id)
        id = reports[0].device_id;
    ptrdiff_t got = jt808_encode_frame((uint16_t)strtoul(vec_get(kv, n, "msg_id"), NULL, 16), id,
                                       (uint16_t)strtoul(serial, NULL, 10), body, bl, out,
                                       sizeof out);
    keys_compared++;
    if (got == (ptrdiff_t)len && memcmp(out, msg, len) == 0)
        return 0;
    fprintf(stderr, "%s: encoder output differs (%td bytes)\n", row->id, got);
    return 1;
}

/* F04: the escaped interior appears as such between header and checksum. */
static int check_escape_row(const struct vec_row *row, const uint8_t *msg, size_t len,
                            const struct vec_kv *kv, size_t n)
{
    uint8_t want[64], out[128];
    const char *esc = vec_get(kv, n, "escaped");
    size_t wl = vec_unhex(esc, strlen(esc), want, sizeof want);
    ptrdiff_t got = jt808_encode_frame(0x0200, "1", 0, msg + 1, len - 2, out, sizeof out);
    keys_compared++;
    /* 7E + 12 header bytes (nothing to escape in them here), then the body. */
    if (got > 13 && (size_t)got >= 13 + wl - 2 && memcmp(out + 13, want + 1, wl - 2) == 0)
        return 0;
    fprintf(stderr, "%s: escaped body differs\n", row->id);
    return 1;
}

static void test_every_vector(void **state)
{
    (void)state;
    int bad = 0;
    keys_compared = rows_checked = 0;
    for (size_t i = 0; i < vectors.n; i++) {
        const struct vec_row *row = &vectors.rows[i];
        static uint8_t msg[MAX_BYTES], wire[MAX_BYTES], u[MAX_BYTES];
        struct vec_kv kv[EXPECTED_MAX];
        size_t n = vec_expected(row, kv, EXPECTED_MAX);
        size_t len = vec_message(row, msg, sizeof msg);
        rows_checked++;
        if (strcmp(row->layer, "stream") == 0) {
            bad += check_stream(row, msg, len, kv, n);
        } else if (strcmp(row->layer, "frame") == 0) {
            bad += check_frame(row, msg, len, kv, n);
        } else if (strcmp(row->layer, "unescaped") == 0) {
            const char *w = vec_get(kv, n, "wire");
            assert_non_null(w);
            size_t wl = vec_unhex(w, strlen(w), wire, sizeof wire);
            assert_true(wl != (size_t)-1);
            size_t ul = unescape_oracle(wire, wl, u);
            keys_compared++;
            if (ul != len || memcmp(u, msg, len) != 0) {
                fprintf(stderr, "%s: wire= does not un-escape to the message\n", row->id);
                bad++;
            }
            bad += check_frame(row, wire, wl, kv, n);
        } else if (strcmp(row->layer, "downlink") == 0) {
            bad += check_frame(row, msg, len, kv, n);
            bad += check_downlink_device_id(row, kv, n);
            bad += check_downlink_encoding(row, msg, len, kv, n);
        } else if (strcmp(row->layer, "encode") == 0) {
            bad += check_escape_row(row, msg, len, kv, n);
        } else {
            fprintf(stderr, "%s: unknown layer %s\n", row->id, row->layer);
            bad++;
        }
    }
    printf("jt808 vectors: %zu rows, %zu keys compared, %d mismatches\n", rows_checked,
           keys_compared, bad);
    assert_int_equal(bad, 0);
}

/* ------------------------------------------------------------------------------------ */

/* The wire bytes of row i (the `wire=` form for un-escaped rows); 0 when it has none. */
static size_t row_wire(size_t i, uint8_t *out, size_t cap)
{
    const struct vec_row *row = &vectors.rows[i];
    struct vec_kv kv[EXPECTED_MAX];
    size_t n = vec_expected(row, kv, EXPECTED_MAX);
    if (strcmp(row->layer, "unescaped") == 0) {
        const char *w = vec_get(kv, n, "wire");
        return vec_unhex(w, strlen(w), out, cap);
    }
    if (strcmp(row->layer, "encode") == 0)
        return 0;
    return vec_message(row, out, cap);
}

static void frames_hex(const uint8_t *buf, size_t len, char *out, size_t cap)
{
    struct split s;
    split_stream(buf, len, &s);
    size_t pos = 0;
    out[0] = '\0';
    for (size_t i = 0; i < s.n && i < MAX_FRAMES; i++) {
        assert_true(pos + 2 * s.len[i] + 2 < cap);
        to_hex(buf + s.off[i], s.len[i], out + pos);
        pos += 2 * s.len[i];
        out[pos++] = '/';
        out[pos] = '\0';
    }
}

/* Every vector, and all of them back to back, fed one byte at a time through an
 * accumulate-and-frame loop, gives the frames the whole buffer gives. */
static void test_chunked_framing(void **state)
{
    (void)state;
    static uint8_t all[64 * 1024], acc[64 * 1024];
    static char whole[128 * 1024 + 64], pieces[128 * 1024 + 64];
    size_t all_len = 0;
    for (size_t i = 0; i < vectors.n; i++) {
        uint8_t w[MAX_BYTES];
        size_t wl = row_wire(i, w, sizeof w);
        if (wl == 0 || wl == (size_t)-1)
            continue;
        assert_true(all_len + wl <= sizeof all);
        memcpy(all + all_len, w, wl);
        all_len += wl;
    }
    /* All frames at once. */
    struct split s;
    split_stream(all, all_len, &s);
    size_t whole_n = s.n;
    size_t wpos = 0;
    for (size_t i = 0; i < s.n && i < MAX_FRAMES; i++) {
        to_hex(all + s.off[i], s.len[i], whole + wpos);
        wpos += 2 * s.len[i];
    }
    /* Byte by byte. */
    size_t acc_len = 0, got_n = 0, ppos = 0;
    for (size_t b = 0; b < all_len; b++) {
        acc[acc_len++] = all[b];
        for (;;) {
            ptrdiff_t r = proto_jt808.frame(acc, acc_len);
            if (r == 0)
                break;
            size_t used = (size_t)(r < 0 ? -r : r);
            assert_true(used <= acc_len);
            if (r > 0) {
                if (got_n < MAX_FRAMES) {
                    to_hex(acc, used, pieces + ppos);
                    ppos += used * 2;
                }
                got_n++;
            }
            memmove(acc, acc + used, acc_len - used);
            acc_len -= used;
        }
    }
    assert_int_equal(got_n, whole_n);
    assert_true(whole_n > 100);
    pieces[ppos] = whole[wpos] = '\0';
    assert_string_equal(pieces, whole);

    /* Per vector, byte by byte vs at once. */
    for (size_t i = 0; i < vectors.n; i++) {
        uint8_t w[MAX_BYTES];
        size_t wl = row_wire(i, w, sizeof w);
        if (wl == 0 || wl == (size_t)-1)
            continue;
        static char a[4 * MAX_BYTES], c[4 * MAX_BYTES];
        frames_hex(w, wl, a, sizeof a);
        size_t al = 0, cp = 0;
        c[0] = '\0';
        for (size_t b = 0; b < wl; b++) {
            acc[al++] = w[b];
            ptrdiff_t r;
            while ((r = proto_jt808.frame(acc, al)) != 0) {
                size_t used = (size_t)(r < 0 ? -r : r);
                if (r > 0) {
                    to_hex(acc, used, c + cp);
                    cp += 2 * used;
                    c[cp++] = '/';
                    c[cp] = '\0';
                }
                memmove(acc, acc + used, al - used);
                al -= used;
            }
        }
        assert_string_equal(a, c);
    }
}

static const uint8_t heartbeat[] = {0x7e, 0x00, 0x02, 0x00, 0x00, 0x04, 0x30, 0x48,
                                    0x32, 0x54, 0x65, 0x00, 0xb7, 0xca, 0x7e}; /* D093 */

static void test_garbage_resync(void **state)
{
    (void)state;
    uint8_t buf[256];
    static const uint8_t garbage[] = {'$', '$', 0x00, 0xff, 0x7d, 0x01, 'A'};
    size_t n = 0;
    memcpy(buf, garbage, sizeof garbage);
    n += sizeof garbage;
    buf[n++] = 0x7e; /* an empty 7E 7E pair: the second opens the frame */
    memcpy(buf + n, heartbeat, sizeof heartbeat);
    n += sizeof heartbeat;
    memcpy(buf + n, heartbeat, sizeof heartbeat); /* adjacent frame 7e..7e7e..7e */
    n += sizeof heartbeat;
    struct split s;
    split_stream(buf, n, &s);
    assert_int_equal(s.n, 2);
    assert_int_equal(s.len[0], sizeof heartbeat);
    assert_memory_equal(buf + s.off[0], heartbeat, sizeof heartbeat);
    assert_memory_equal(buf + s.off[1], heartbeat, sizeof heartbeat);
    assert_int_equal(s.leftover_off, n);

    /* Only garbage: all of it is skipped, nothing is waited for. */
    assert_int_equal(proto_jt808.frame(garbage, sizeof garbage), -(ptrdiff_t)sizeof garbage);
    /* A stray `(` before a binary frame is dropped at the 0x7E. */
    uint8_t paren[1 + sizeof heartbeat] = {'('};
    memcpy(paren + 1, heartbeat, sizeof heartbeat);
    split_stream(paren, sizeof paren, &s);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.off[0], 1);
}

static void test_oversized_frames(void **state)
{
    (void)state;
    static uint8_t buf[PROTO_FRAME_MAX * 2 + 64];
    size_t n = 0;
    buf[n++] = 0x7e;
    memset(buf + n, 0x11, PROTO_FRAME_MAX + 100);
    n += PROTO_FRAME_MAX + 100;
    buf[n++] = 0x7e;
    memcpy(buf + n, heartbeat, sizeof heartbeat);
    n += sizeof heartbeat;
    /* The first call rejects the oversized frame without waiting for its end. */
    assert_true(proto_jt808.frame(buf, PROTO_FRAME_MAX) < 0);
    struct split s;
    split_stream(buf, n, &s);
    assert_true(s.n >= 1);
    size_t last = (s.n < MAX_FRAMES ? s.n : MAX_FRAMES) - 1;
    assert_int_equal(s.len[last], sizeof heartbeat);
    assert_memory_equal(buf + s.off[last], heartbeat, sizeof heartbeat);
    for (size_t i = 0; i < s.n && i < MAX_FRAMES; i++)
        assert_true(s.len[i] <= PROTO_FRAME_MAX);

    /* A text frame without `)` inside PROTO_FRAME_MAX is garbage too. */
    buf[0] = '(';
    memset(buf + 1, 'a', PROTO_FRAME_MAX + 10);
    assert_true(proto_jt808.frame(buf, PROTO_FRAME_MAX + 11) < 0);
    assert_int_equal(proto_jt808.frame(buf, 100), 0); /* still may end: wait */
}

/* Every prefix and every one-byte corruption of every vector: decode and detect return
 * something and never touch memory they should not (ASan/UBSan watch). */
static void test_truncated_and_corrupt(void **state)
{
    (void)state;
    struct proto_ctx ctx = {0};
    struct proto_reply reply;
    size_t n_out;
    static uint8_t w[MAX_BYTES], f[MAX_BYTES];
    for (size_t i = 0; i < vectors.n; i++) {
        size_t wl = row_wire(i, w, sizeof w);
        if (wl == 0 || wl == (size_t)-1)
            continue;
        for (size_t cut = 0; cut <= wl; cut++) {
            memcpy(f, w, cut);
            f[cut] = w[0] == 0x7e ? 0x7e : ')';
            (void)decode_bytes(&ctx, f, cut + 1, &n_out, &reply);
            assert_true(n_out <= PROTO_MAX_REPORTS && reply.len <= PROTO_REPLY_MAX);
            (void)proto_jt808.detect(w, cut);
            (void)proto_jt808.frame(w, cut);
        }
        for (size_t pos = 1; pos + 1 < wl; pos++) {
            static const uint8_t values[] = {0x00, 0xff, 0x7d, 0x7e, 0x28};
            for (size_t k = 0; k < sizeof values; k++) {
                memcpy(f, w, wl);
                f[pos] = values[k];
                ctx.dialect = (uint8_t)(k & 1);
                (void)decode_bytes(&ctx, f, wl, &n_out, &reply);
                assert_true(n_out <= PROTO_MAX_REPORTS);
            }
        }
    }
}

static void test_detect(void **state)
{
    (void)state;
    static uint8_t w[MAX_BYTES];
    for (size_t i = 0; i < vectors.n; i++) {
        const struct vec_row *row = &vectors.rows[i];
        if (strcmp(row->layer, "frame") != 0 && strcmp(row->layer, "unescaped") != 0)
            continue;
        struct vec_kv kv[EXPECTED_MAX];
        size_t n = vec_expected(row, kv, EXPECTED_MAX);
        const char *len_ok = vec_get(kv, n, "body_len_ok"), *sum_ok = vec_get(kv, n, "checksum_ok");
        /* A first frame with both the length and the checksum wrong carries no evidence. */
        bool evidence = !len_ok || strcmp(len_ok, "true") == 0 || strcmp(sum_ok, "true") == 0;
        size_t wl = row_wire(i, w, sizeof w);
        assert_int_equal(proto_jt808.detect(w, wl), evidence ? PROTO_DETECT_YES : PROTO_DETECT_NO);
        assert_int_equal(proto_jt808.detect(w, 3), PROTO_DETECT_MAYBE);
    }
    static const char jt709[] = "(794104004140,1,001,BASE,2,TIME)";
    static const char jt600[] = "(8054201973,1,168,WLNET,5,2)";
    assert_int_equal(proto_jt808.detect((const uint8_t *)jt709, 14), PROTO_DETECT_YES);
    assert_int_equal(proto_jt808.detect((const uint8_t *)jt709, 8), PROTO_DETECT_MAYBE);
    assert_int_equal(proto_jt808.detect((const uint8_t *)jt600, sizeof jt600 - 1), PROTO_DETECT_NO);
    static const uint8_t dollar[] = {'$', 0x80, 0x43, 0x39};
    assert_int_equal(proto_jt808.detect(dollar, sizeof dollar), PROTO_DETECT_NO);
    static const uint8_t server_msg[] = {0x7e, 0x80, 0x01, 0x00};
    assert_int_equal(proto_jt808.detect(server_msg, sizeof server_msg), PROTO_DETECT_NO);
    uint8_t bad[sizeof heartbeat];
    memcpy(bad, heartbeat, sizeof bad);
    bad[4] = 0x09; /* body length 9 and a wrong checksum */
    assert_int_equal(proto_jt808.detect(bad, sizeof bad), PROTO_DETECT_NO);
}

/* ------------------------------------------------------------------------------------ */

static const char *const jt709a_id = "794308010679";

/* Encode r as a 0x0200 frame, cut it, decode it into reports[0]. */
static void round_trip(const struct report *r, struct proto_reply *reply)
{
    uint8_t body[256], wire[600];
    ptrdiff_t bl = jt808_encode_location(r, body, sizeof body);
    assert_true(bl >= 28);
    ptrdiff_t wl = jt808_encode_frame(0x0200, jt709a_id, 77, body, (size_t)bl, wire, sizeof wire);
    assert_true(wl > 0);
    assert_int_equal(proto_jt808.frame(wire, (size_t)wl), wl);
    assert_int_equal(proto_jt808.detect(wire, (size_t)wl), PROTO_DETECT_YES);
    struct proto_ctx ctx = {0};
    size_t n_out;
    assert_int_equal(decode_bytes(&ctx, wire, (size_t)wl, &n_out, reply), 0);
    assert_int_equal(n_out, 1);
    assert_string_equal(reports[0].device_id, jt709a_id);
    assert_string_equal(report_attr_get(&reports[0], "checksum_ok"), "true");
    assert_string_equal(report_attr_get(&reports[0], "body_len_ok"), "true");
}

static void test_encode_location_round_trip(void **state)
{
    (void)state;
    static const struct {
        uint8_t event, source;
        const char *reason, *card;
        int16_t fence;
    } cases[] = {
        {REPORT_EV_UNLOCK, REPORT_SRC_RFID, "", "0006437449", 7},
        {REPORT_EV_LOCK, REPORT_SRC_AUTO, "", "", -1},
        {REPORT_EV_TAMPER, REPORT_SRC_NONE, "rope_cut", "", -1},
        {REPORT_EV_WRONG_PASSWORD, REPORT_SRC_APP_DYNAMIC, "", "", -1},
        {REPORT_EV_LOW_BATTERY, REPORT_SRC_NONE, "", "", -1},
        {0, 0, "", "", -1},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        static struct report r;
        report_init(&r, "jt808");
        r.fix_time = 1763465171 + (int64_t)c; /* 2025-11-18T11:26:11Z */
        r.has_position = r.valid = c != 4;
        r.fix = c == 1 ? REPORT_FIX_BEIDOU : REPORT_FIX_GNSS;
        r.lat = c % 2 ? 22.580517 : -25.269608;
        r.lon = c % 2 ? 113.917483 : -57.602956;
        r.has_altitude = true;
        r.altitude_m = c % 2 ? -12 : 92;
        r.speed_kmh = 36.4;
        r.course = 271;
        r.battery_pct = c == 5 ? -1 : 87;
        r.charging = c == 5 ? 1 : -1;
        r.battery_v = 4.18;
        r.gsm_signal = 29;
        r.satellites = 12;
        r.lock = c == 0 ? REPORT_LOCK_UNLOCKED : REPORT_LOCK_LOCKED;
        if (cases[c].event) {
            struct report_event *e = report_add_event(&r, (enum report_event_type)cases[c].event);
            e->source = cases[c].source;
            snprintf(e->reason, sizeof e->reason, "%s", cases[c].reason);
            snprintf(e->card, sizeof e->card, "%s", cases[c].card);
            e->fence_id = cases[c].fence;
        }
        struct proto_reply reply;
        round_trip(&r, &reply);
        const struct report *d = &reports[0];
        assert_int_equal(d->fix_time, r.fix_time);
        assert_true(d->time_is_local);
        assert_int_equal(d->valid, r.valid);
        assert_true(d->lat - r.lat < 1e-6 && r.lat - d->lat < 1e-6);
        assert_true(d->lon - r.lon < 1e-6 && r.lon - d->lon < 1e-6);
        assert_true(d->altitude_m == r.altitude_m);
        assert_true(d->speed_kmh > 36.35 && d->speed_kmh < 36.45);
        assert_true(d->course == 271);
        assert_int_equal(d->battery_pct, r.battery_pct);
        assert_int_equal(d->charging, r.charging);
        assert_true(d->battery_v > 4.179 && d->battery_v < 4.181);
        assert_int_equal(d->gsm_signal, 29);
        assert_int_equal(d->satellites, 12);
        assert_int_equal(d->lock, r.lock);
        if (r.valid)
            assert_int_equal(d->fix, r.fix);
        if (!cases[c].event) {
            assert_int_equal(d->n_events, 0);
        } else {
            assert_true(d->n_events >= 1);
            const struct report_event *e = &d->events[0];
            assert_int_equal(e->type, cases[c].event);
            if (cases[c].source)
                assert_int_equal(e->source, cases[c].source);
            assert_string_equal(e->reason, cases[c].reason);
            assert_string_equal(e->card, cases[c].card);
            assert_int_equal(e->fence_id, cases[c].fence);
        }
        /* The reply is the 0x8001 for this frame. */
        assert_true(reply.len > 0);
        assert_int_equal(reply.buf[1], 0x80);
        assert_int_equal(reply.buf[2], 0x01);
    }
}

/* D007 (the JT709A frame) beyond its attributes: typed fields and events. */
static void test_jt709a_frame_fields(void **state)
{
    (void)state;
    static uint8_t w[MAX_BYTES];
    size_t wl = 0;
    for (size_t i = 0; i < vectors.n; i++)
        if (strcmp(vectors.rows[i].id, "JT808-D007") == 0)
            wl = row_wire(i, w, sizeof w);
    assert_true(wl > 0);
    struct proto_ctx ctx = {.server_serial = 41};
    struct proto_reply reply;
    size_t n_out;
    assert_int_equal(decode_bytes(&ctx, w, wl, &n_out, &reply), 0);
    const struct report *r = &reports[0];
    assert_int_equal(ctx.server_serial, 42);
    assert_int_equal(r->lock, REPORT_LOCK_UNLOCKED);
    assert_int_equal(r->fix, REPORT_FIX_BEIDOU);
    assert_int_equal(r->battery_pct, 100);
    assert_true(r->battery_v > 4.179 && r->battery_v < 4.181);
    assert_int_equal(r->gsm_signal, 29);
    assert_true(r->has_cell);
    assert_int_equal(r->cell.mcc, 744);
    assert_int_equal(r->cell.mnc, 4);
    assert_int_equal(r->cell.cid, 281109);
    assert_int_equal(r->cell.lac, 4070);
    assert_int_equal(r->n_events, 2);
    assert_int_equal(r->events[0].type, REPORT_EV_UNLOCK);
    assert_int_equal(r->events[0].source, REPORT_SRC_RFID);
    assert_string_equal(r->events[0].card, "0006437449");
    assert_int_equal(r->events[0].fence_id, -1); /* status 101: no fence */
    assert_int_equal(r->events[1].type, REPORT_EV_RFID_ACCESS);
    assert_int_equal(r->events[1].granted, 1);
    /* The reply carries the server serial. */
    uint8_t u[64];
    size_t ul = unescape_oracle(reply.buf, reply.len, u);
    assert_true(ul == 20);
    assert_int_equal(u[11] << 8 | u[12], 41);

    /* A standard (non-Jointech) dialect leaves the vendor items alone. */
    ctx.dialect = 1;
    assert_int_equal(decode_bytes(&ctx, w, wl, &n_out, &reply), 0);
    assert_null(report_attr_get(&reports[0], "jt.battery_pct"));
    assert_int_equal(reports[0].battery_pct, -1);
    assert_int_equal(reports[0].lock, REPORT_LOCK_UNKNOWN);
    assert_int_equal(reports[0].n_events, 0);
    assert_int_equal(reports[0].gsm_signal, 29); /* 0x30 is standard */
}

/* A 0x0200 frame from base fields (valid: status bits 1 + 18) plus `status` bits and extra raw
 * items, decoded in `dialect` into reports[0]. */
static void decode_with_items(uint32_t alarm, uint32_t status, const uint8_t *items,
                              size_t items_len, uint8_t dialect)
{
    static struct report r;
    uint8_t body[300], wire[700];
    report_init(&r, "jt808");
    r.fix_time = 1763465171;
    r.valid = true;
    ptrdiff_t bl = jt808_encode_location(&r, body, sizeof body);
    assert_true(bl > 0);
    body[0] = (uint8_t)(alarm >> 24), body[1] = (uint8_t)(alarm >> 16);
    body[2] = (uint8_t)(alarm >> 8), body[3] = (uint8_t)alarm;
    for (int i = 0; i < 4; i++)
        body[4 + i] |= (uint8_t)(status >> (24 - 8 * i));
    if (items_len)
        memcpy(body + bl, items, items_len);
    ptrdiff_t wl = jt808_encode_frame(0x0200, jt709a_id, 1, body, (size_t)bl + items_len, wire,
                                      sizeof wire);
    assert_true(wl > 0);
    struct proto_ctx ctx = {.dialect = dialect};
    struct proto_reply reply;
    size_t n_out;
    assert_int_equal(decode_bytes(&ctx, wire, (size_t)wl, &n_out, &reply), 0);
}

static void test_jointech_lock_events(void **state)
{
    (void)state;
    static const struct {
        uint8_t item[12];
        uint8_t event, source;
        const char *reason, *card;
        int granted, fence;
    } cases[] = {
        {{0x0b, 0x05, 0x23, 0x00, 0x62, 0x3a, 0x49}, REPORT_EV_RFID_ACCESS, REPORT_SRC_RFID,
         "illegal_card", "0006437449", 0, -1},
        {{0x0b, 0x08, 0x01, '1', '2', '3', '4', '5', '6', 0xff}, REPORT_EV_UNLOCK_REFUSED,
         REPORT_SRC_REMOTE_STATIC, "unlock_failed", "", -1, -1},
        {{0x0b, 0x08, 0x1f, '1', '2', '3', '4', '5', '6', 0x03}, REPORT_EV_UNLOCK,
         REPORT_SRC_SMS_DYNAMIC, "", "", -1, 3},
        {{0x0b, 0x07, 0x10, '1', '2', '3', '4', '5', '6'}, REPORT_EV_UNLOCK_REFUSED,
         REPORT_SRC_REMOTE_STATIC, "no_position", "", -1, -1},
        {{0x0b, 0x05, 0x2b, 0x00, 0x00, 0x00, 0x01}, REPORT_EV_UNLOCK_REFUSED, REPORT_SRC_RFID,
         "outside_fence", "0000000001", -1, -1},
        {{0x0b, 0x07, 0x29, '1', '2', '3', '4', '5', '6'}, REPORT_EV_WRONG_PASSWORD,
         REPORT_SRC_SMS_STATIC, "", "", -1, -1},
        {{0x0b, 0x01, 0x0b}, REPORT_EV_LONG_UNLOCKED, REPORT_SRC_NONE, "", "", -1, -1},
        {{0x0b, 0x01, 0x12}, REPORT_EV_MOTOR_FAULT, REPORT_SRC_NONE, "", "", -1, -1},
        {{0x0b, 0x01, 0x1c}, REPORT_EV_UNLOCK, REPORT_SRC_ROPE, "rope_pulled", "", -1, -1},
        {{0x0b, 0x01, 0x77}, REPORT_EV_ALARM, REPORT_SRC_NONE, "lock_event_0x77", "", -1, -1},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        decode_with_items(0, 0, cases[c].item, 2u + cases[c].item[1], 0);
        const struct report_event *e = &reports[0].events[0];
        assert_true(reports[0].n_events >= 1);
        assert_int_equal(e->type, cases[c].event);
        assert_int_equal(e->source, cases[c].source);
        assert_string_equal(e->reason, cases[c].reason);
        assert_string_equal(e->card, cases[c].card);
        assert_int_equal(e->granted, cases[c].granted);
        assert_int_equal(e->fence_id, cases[c].fence);
    }
    /* Alarm bits 16/17/18 with the fence item 0xFC. */
    static const uint8_t fence[] = {0xfc, 0x01, 0x09};
    decode_with_items(1u << 16 | 1u << 17 | 1u << 7, 0, fence, sizeof fence, 0);
    const struct report *r = &reports[0];
    assert_int_equal(r->n_events, 3);
    assert_int_equal(r->events[0].type, REPORT_EV_LOW_BATTERY);
    assert_int_equal(r->events[1].type, REPORT_EV_TAMPER);
    assert_string_equal(r->events[1].reason, "back_cover_open");
    assert_int_equal(r->events[2].type, REPORT_EV_GEOFENCE_ENTER);
    assert_int_equal(r->events[2].fence_id, 9);
    /* 0xD4 = 0xFF: charging, percentage unknown. */
    static const uint8_t charging[] = {0xd4, 0x01, 0xff};
    decode_with_items(0, 0, charging, sizeof charging, 0);
    assert_int_equal(reports[0].charging, 1);
    assert_int_equal(reports[0].battery_pct, -1);
}

/* 0x5501 beyond the attributes: events, cell and the 0x4401 rule. */
static void test_jt_report(void **state)
{
    (void)state;
    static uint8_t w[MAX_BYTES];
    struct proto_ctx ctx = {0};
    struct proto_reply reply;
    size_t n_out, wl = 0;
    for (size_t i = 0; i < vectors.n; i++)
        if (strcmp(vectors.rows[i].id, "JT808-D070") == 0)
            wl = row_wire(i, w, sizeof w);
    assert_int_equal(decode_bytes(&ctx, w, wl, &n_out, &reply), 0);
    const struct report *r = &reports[0];
    assert_false(r->time_is_local);
    assert_int_equal(r->n_events, 1);
    assert_int_equal(r->events[0].type, REPORT_EV_LOCK);
    assert_int_equal(r->events[0].source, REPORT_SRC_AUTO);
    assert_int_equal(r->cell.mcc, 732);
    assert_int_equal(r->cell.mnc, 101);
    assert_int_equal(r->battery_pct, 70);
    assert_true(reply.len > 0);
    w[3] &= 0x7f; /* attr bit 15 clear: no 0x4401 (the checksum is not checked for replies) */
    assert_int_equal(decode_bytes(&ctx, w, wl, &n_out, &reply), 0);
    assert_int_equal(reply.len, 0);
}

static void test_registration_reply_2019(void **state)
{
    (void)state;
    /* A 2019 heartbeat: the reply keeps the 2019 layout and the 10-byte terminal. */
    static const uint8_t hb2019[] = {0x7e, 0x00, 0x02, 0x40, 0x00, 0x01, 0x00, 0x00, 0x08,
                                     0x66, 0x49, 0x60, 0x77, 0x58, 0x21, 0x64, 0x00, 0x05,
                                     0x00, 0x7e};
    uint8_t f[sizeof hb2019];
    memcpy(f, hb2019, sizeof f);
    uint8_t x = 0;
    for (size_t i = 1; i < sizeof f - 2; i++)
        x ^= f[i];
    f[sizeof f - 2] = x;
    struct proto_ctx ctx = {0};
    struct proto_reply reply;
    size_t n_out;
    assert_int_equal(decode_bytes(&ctx, f, sizeof f, &n_out, &reply), 0);
    assert_string_equal(reports[0].device_id, "00000866496077582164");
    assert_string_equal(report_attr_get(&reports[0], "v2019"), "true");
    assert_int_equal(reply.len, 1 + 17 + 5 + 1 + 1);
    assert_int_equal(reply.buf[3], 0x40);
    assert_memory_equal(reply.buf + 6, f + 6, 10);
}

/* ------------------------------------------------------------------------------------
 * Standard dialect (ctx->dialect = 1): other vendors' frames of jt808.tsv with the JT/T 808
 * meanings. Expected values worked out by hand from the bytes (items listed in each row's
 * `items`): status/alarm bits per the standard's tables (spec §3.4), standard items 0x01–0x31,
 * vendor items by the layouts in docs/protocols/jt808.md. E.g. D048: 0x02 = 0001 → 0.1 l;
 * 0xF3 sub-item 0003 = 02f2 → 754 rpm, 0004 = 375f → 14.175 V, 0009 = 0072 → 114 - 40 = 74 °C;
 * status 0x000c0003 → ACC on, positioned, GPS + BeiDou. Keys `events` (type[:reason][@fence]),
 * `lock`, `fix`, `gsm_signal`, `battery_v` are report fields checked by check_fields(). */
static const struct {
    const char *id, *expected;
} standard_rows[] = {
    {"JT808-D003", "valid=true; odometer_km=10; gsm_signal=31; satellites=12; ignition=false; "
                   "gnss_systems=gps|beidou; fix=beidou; adc0=0; adc1=43862; battery_pct=none; "
                   "events=none; lock=unknown; doors_locked=false; load_state=empty"},
    {"JT808-D004", "odometer_km=0.1; gsm_signal=28; satellites=9; battery_pct=99; charging=true; "
                   "motion=false; fix=beidou; events=none"},
    {"JT808-D009", "odometer_km=6.2; gsm_signal=21; satellites=19; ignition=true; "
                   "gnss_systems=none; fix=gnss; iccid=89882280666134274509; battery_pct=92; "
                   "battery_v=4.005; events=none"},
    {"JT808-D014", "odometer_km=57.2; gsm_signal=25; satellites=22; vehicle_signals=0x00000000; "
                   "vehicle_signals_on=none; adc0=0; adc1=0; ignition=true; battery_pct=none; "
                   "fix=beidou"},
    {"JT808-D022", "events=power_cut; iccid=none; battery_pct=none; fix=gnss"},
    {"JT808-D031", "events=power_cut; iccid=8942310221007544309; out_of_service=true; "
                   "ignition=false"},
    {"JT808-D036", "events=alarm:fatigue; doors_open=3; gnss_systems=glonass; fix=gnss"},
    {"JT808-D039", "events=alarm:alarm_bit_17; valid=false; fix=none; gnss_systems=gps|beidou"},
    {"JT808-D043", "battery_pct=45; gsm_signal=27; satellites=14; odometer_km=0"},
    {"JT808-D048", "odometer_km=38.3; fuel_l=0.1; tacho_speed_kmh=0.0; "
                   "vehicle_signals=0x00000000; io_status=0x0000; deep_sleep=false; sleep=false; "
                   "adc0=0; adc1=0; gsm_signal=23; satellites=18; obd_speed_kmh=0.0; rpm=754; "
                   "obd_power_v=14.175; obd_odometer_km=0.0; coolant_temp_c=74; "
                   "vin=LFPM4ACPXG1A37097; ignition=true; oil_cut=false; electric_cut=false; "
                   "fix=beidou; events=none"},
    {"JT808-D057", "events=low_battery; iccid=89860477012070271502; battery_v=3.6; "
                   "ignition=true"},
    {"JT808-D091", "events=sos; odometer_km=1.8; valid=true"},
};

static const char *const own_fields[] = {"events", "lock", "fix", "gsm_signal", "battery_v", NULL};

static void events_text(const struct report *r, char *out, size_t cap)
{
    size_t n = 0;
    snprintf(out, cap, "none");
    for (int i = 0; i < r->n_events && n < cap; i++) {
        const struct report_event *e = &r->events[i];
        n += (size_t)snprintf(out + n, cap - n, "%s%s%s%s", i ? "|" : "",
                              report_event_name(e->type), e->reason[0] ? ":" : "", e->reason);
        if (e->fence_id >= 0 && n < cap)
            n += (size_t)snprintf(out + n, cap - n, "@%d", e->fence_id);
    }
}

/* The keys of own_fields against the report; returns the number of mismatches. */
static int check_fields(const char *id, const struct report *r, const struct vec_kv *kv, size_t n)
{
    static const char *const fixes[] = {"none", "gnss", "gps", "beidou", "lbs", "wifi"};
    static const char *const locks[] = {"unknown", "locked", "unlocked"};
    int bad = 0;
    for (size_t i = 0; own_fields[i]; i++) {
        const char *want = vec_get(kv, n, own_fields[i]);
        char got[256];
        if (!want)
            continue;
        if (i == 0)
            events_text(r, got, sizeof got);
        else if (i == 1)
            snprintf(got, sizeof got, "%s", locks[r->lock]);
        else if (i == 2)
            snprintf(got, sizeof got, "%s", fixes[r->fix]);
        else if (i == 3)
            snprintf(got, sizeof got, "%d", r->gsm_signal);
        else
            snprintf(got, sizeof got, "%g", r->battery_v);
        if (strcmp(want, got) != 0) {
            fprintf(stderr, "%s: %s: expected %s, got %s\n", id, own_fields[i], want, got);
            bad++;
        }
    }
    return bad;
}

static int decode_row(const char *id, uint8_t dialect, size_t *n_out)
{
    static uint8_t w[MAX_BYTES];
    size_t wl = 0;
    for (size_t i = 0; i < vectors.n && wl == 0; i++)
        if (strcmp(vectors.rows[i].id, id) == 0)
            wl = row_wire(i, w, sizeof w);
    assert_true(wl > 0 && wl != (size_t)-1);
    struct proto_ctx ctx = {.dialect = dialect};
    struct proto_reply reply;
    return decode_bytes(&ctx, w, wl, n_out, &reply);
}

static void test_standard_dialect_rows(void **state)
{
    (void)state;
    int bad = 0;
    keys_compared = 0;
    for (size_t c = 0; c < sizeof standard_rows / sizeof standard_rows[0]; c++) {
        struct vec_row row = {.id = standard_rows[c].id, .expected = standard_rows[c].expected};
        struct vec_kv kv[EXPECTED_MAX];
        size_t n = vec_expected(&row, kv, EXPECTED_MAX), n_out;
        keys_compared += n;
        assert_int_equal(decode_row(row.id, 1, &n_out), 0);
        bad += check_fields(row.id, &reports[0], kv, n);
        bad += vec_check_report(row.id, &reports[0], kv, n, "", own_fields);
        assert_null(report_attr_get(&reports[0], "jt.lock_open")); /* no Jointech reading */
    }
    printf("jt808 standard dialect: %zu rows, %zu keys compared, %d mismatches\n",
           sizeof standard_rows / sizeof standard_rows[0], keys_compared, bad);
    assert_int_equal(bad, 0);

    /* Every frame decodes in both dialects with the same outcome. */
    for (size_t i = 0; i < vectors.n; i++) {
        const struct vec_row *row = &vectors.rows[i];
        if (strcmp(row->layer, "frame") != 0 && strcmp(row->layer, "unescaped") != 0)
            continue;
        size_t n0, n1;
        int rc0 = decode_row(row->id, 0, &n0), rc1 = decode_row(row->id, 1, &n1);
        assert_int_equal(rc0, rc1);
        assert_int_equal(n0, n1);
    }
}

/* Alarm bits and items no vector carries: a synthetic 0x0200 read in the standard dialect. */
static void test_standard_dialect_alarms(void **state)
{
    (void)state;
    static const struct {
        uint32_t alarm, status;
        uint8_t items[24];
        size_t items_len;
        const char *expected;
    } cases[] = {
        /* bit 20 with 0x12: rectangle 7, out */
        {1u << 20,
         0,
         {0x12, 6, 2, 0, 0, 0, 7, 1},
         8,
         "events=geofence_exit@7; area_type=rectangle; area_id=7; area_direction=out"},
        /* bit 21 with 0x12: route 3, in */
        {1u << 21, 0, {0x12, 6, 4, 0, 0, 0, 3, 0}, 8, "events=geofence_enter:route@3"},
        /* bit 20 with a route item, bit 21 without one: plain alarms */
        {1u << 20 | 1u << 21,
         0,
         {0x12, 6, 4, 0, 0, 0, 3, 0},
         8,
         "events=alarm:area_in_out|geofence_enter:route@3"},
        {1u << 20, 0, {0}, 0, "events=alarm:area_in_out; area_type=none"},
        /* overspeed in circle 9; 0x13 route time too long */
        {1u << 1 | 1u << 22,
         0,
         {0x11, 5, 1, 0, 0, 0, 9, 0x13, 7, 0, 0, 0, 5, 0x01, 0x2c, 1},
         16,
         "events=overspeed@9|alarm:route_time; overspeed_area_type=circle; "
         "overspeed_area_id=9; route_segment_id=5; route_drive_time_s=300; "
         "route_time_result=too_long"},
        {1u << 1, 0, {0x11, 1, 0}, 3, "events=overspeed; overspeed_area_type=none"},
        {1u << 29 | 1u << 30 | 1u << 31,
         0,
         {0},
         0,
         "events=alarm:collision|alarm:rollover|alarm:illegal_door_opening"},
        /* status: doors locked, oil and electric cut, half load, doors 1 and 5, Galileo */
        {0,
         1u << 12 | 1u << 10 | 1u << 11 | 1u << 8 | 1u << 13 | 1u << 17 | 1u << 21,
         {0x25, 4, 0, 0, 0, 0x30, 0x2a, 2, 0, 3, 0x04, 2, 0x01, 0x02},
         14,
         "lock=locked; doors_locked=true; oil_cut=true; electric_cut=true; load_state=half; "
         "doors_open=1|5; gnss_systems=gps|galileo; vehicle_signals_on=brake|reverse; "
         "deep_sleep=true; sleep=true; alarm_event_id=258; events=none"},
        /* vendor items outside their documented shape stay raw */
        {0,
         0,
         {0xe1, 1, 101, 0xe4, 2, 0, 101, 0xe5, 1, 2, 0xf3, 1, 1, 0xeb, 3, 0, 1, 0},
         18,
         "battery_pct=none; motion=none; iccid=none; events=none"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        struct vec_row row = {.id = "standard-alarm", .expected = cases[c].expected};
        struct vec_kv kv[EXPECTED_MAX];
        size_t n = vec_expected(&row, kv, EXPECTED_MAX);
        decode_with_items(cases[c].alarm, cases[c].status, cases[c].items, cases[c].items_len,
                          JT808_DIALECT_STANDARD);
        assert_int_equal(check_fields(row.id, &reports[0], kv, n) +
                             vec_check_report(row.id, &reports[0], kv, n, "", own_fields),
                         0);
    }
    /* The Jointech default reads the same alarm word its own way. */
    decode_with_items(1u << 17, 0, NULL, 0, JT808_DIALECT_JOINTECH);
    assert_int_equal(reports[0].events[0].type, REPORT_EV_GEOFENCE_ENTER);
}

static void test_dialect_by_name(void **state)
{
    (void)state;
    assert_int_equal(jt808_dialect_by_name("jointech"), JT808_DIALECT_JOINTECH);
    assert_int_equal(jt808_dialect_by_name("standard"), JT808_DIALECT_STANDARD);
    assert_int_equal(jt808_dialect_by_name("Standard"), ST_ECONFIG);
    assert_int_equal(jt808_dialect_by_name(""), ST_ECONFIG);
    assert_int_equal(jt808_dialect_by_name(NULL), ST_ECONFIG);
}

/* ------------------------------------------------------------------------------------
 * Downlink commands. Expected frames: header, body and XOR worked out by hand (JT/T 808
 * §3.2; the 15-digit IMEI of E01/E02 packs as 0b3a73ce2ff2, see the rows' notes).
 */

static int command(struct proto_ctx *ctx, uint8_t type, const char *id, const char *text,
                   long number, uint8_t *out, size_t cap, size_t *len)
{
    struct proto_command cmd = {.type = type, .device_id = id, .text = text, .number = number};
    return proto_jt808.encode_command(ctx, &cmd, out, cap, len);
}

static void assert_command(struct proto_ctx *ctx, uint8_t type, const char *id, const char *text,
                           long number, const char *want_hex)
{
    uint8_t out[1100], want[1100];
    size_t len, wl = vec_unhex(want_hex, strlen(want_hex), want, sizeof want);
    uint16_t serial = ctx->server_serial;
    assert_int_equal(command(ctx, type, id, text, number, out, sizeof out, &len), 0);
    assert_int_equal(len, wl);
    assert_memory_equal(out, want, wl);
    assert_int_equal(ctx->server_serial, (uint16_t)(serial + 1));
}

static const char *row_message(const char *id)
{
    for (size_t i = 0; i < vectors.n; i++)
        if (strcmp(vectors.rows[i].id, id) == 0)
            return vectors.rows[i].message;
    fail();
    return NULL;
}

static void test_encode_commands(void **state)
{
    (void)state;
    static const char imei[] = "123456789012345", id[] = "013511221122";
    struct proto_ctx ctx = {.server_serial = 0};
    /* E01: Traccar's engine stop, a vendor 0x8105 command word, sent as custom hex. */
    assert_command(&ctx, PROTO_CMD_CUSTOM, imei, "hex:8105f0", 0, row_message("JT808-E01"));
    ctx.server_serial = 0;
    assert_command(&ctx, PROTO_CMD_CUSTOM, imei, "Test, Command, 123#", 0,
                   row_message("JT808-E02"));
    ctx.server_serial = 5;
    assert_command(&ctx, PROTO_CMD_REBOOT, id, NULL, 0, "7e81050001013511221122000504b07e");
    assert_command(&ctx, PROTO_CMD_POSITION, id, NULL, 0, "7e820100000135112211220006b17e");
    assert_command(&ctx, PROTO_CMD_INTERVAL, id, NULL, 3600,
                   "7e8103000a013511221122000701000000290400000e10897e");
    assert_command(&ctx, PROTO_CMD_REBOOT, "00000866496077582164", NULL, 0,
                   "7e810540010100000866496077582164000804e57e");
    assert_command(&ctx, PROTO_CMD_CUSTOM, id, "a~b}", 0,
                   "7e83000005013511221122000901617d02627d01ba7e");

    /* Refused without advancing the serial. */
    static const uint8_t unsupported[] = {PROTO_CMD_UNLOCK,
                                          PROTO_CMD_UNLOCK_DYNAMIC,
                                          PROTO_CMD_SET_PASSWORD,
                                          PROTO_CMD_CARDS,
                                          PROTO_CMD_ENGINE_STOP,
                                          PROTO_CMD_ENGINE_RESUME,
                                          0};
    uint8_t out[64];
    size_t len;
    ctx.server_serial = 40;
    for (size_t i = 0; i < sizeof unsupported; i++)
        assert_int_equal(command(&ctx, unsupported[i], id, "888888", 0, out, sizeof out, &len),
                         ST_EUNSUPPORTED);
    static const struct {
        uint8_t type;
        const char *id, *text;
        long number;
    } malformed[] = {
        {PROTO_CMD_REBOOT, NULL, NULL, 0},        {PROTO_CMD_REBOOT, "", NULL, 0},
        {PROTO_CMD_REBOOT, "12345x", NULL, 0},    {PROTO_CMD_REBOOT, "1234567890123", NULL, 0},
        {PROTO_CMD_INTERVAL, id, NULL, 0},        {PROTO_CMD_INTERVAL, id, NULL, -5},
        {PROTO_CMD_INTERVAL, id, NULL, 1L << 40}, {PROTO_CMD_CUSTOM, id, NULL, 0},
        {PROTO_CMD_CUSTOM, id, "hex:81", 0},      {PROTO_CMD_CUSTOM, id, "hex:8105f", 0},
        {PROTO_CMD_CUSTOM, id, "hex:81g5", 0},
    };
    for (size_t i = 0; i < sizeof malformed / sizeof malformed[0]; i++)
        assert_int_equal(command(&ctx, malformed[i].type, malformed[i].id, malformed[i].text,
                                 malformed[i].number, out, sizeof out, &len),
                         ST_EMALFORMED);
    static char long_text[1100];
    memset(long_text, 'x', sizeof long_text - 1);
    assert_int_equal(command(&ctx, PROTO_CMD_CUSTOM, id, long_text, 0, out, sizeof out, &len),
                     ST_ERANGE);
    assert_int_equal(command(&ctx, PROTO_CMD_REBOOT, id, NULL, 0, out, 15, &len), ST_ERANGE);
    assert_int_equal(len, 0);
    assert_int_equal(ctx.server_serial, 40);
    assert_int_equal(command(&ctx, PROTO_CMD_REBOOT, id, NULL, 0, out, 16, &len), 0);
    assert_int_equal(len, 16);
}

static int setup(void **state)
{
    (void)state;
    vec_load("jt808.tsv", &vectors);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    vec_free(&vectors);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_vector),
        cmocka_unit_test(test_chunked_framing),
        cmocka_unit_test(test_garbage_resync),
        cmocka_unit_test(test_oversized_frames),
        cmocka_unit_test(test_truncated_and_corrupt),
        cmocka_unit_test(test_detect),
        cmocka_unit_test(test_encode_location_round_trip),
        cmocka_unit_test(test_jt709a_frame_fields),
        cmocka_unit_test(test_jointech_lock_events),
        cmocka_unit_test(test_jt_report),
        cmocka_unit_test(test_registration_reply_2019),
        cmocka_unit_test(test_standard_dialect_rows),
        cmocka_unit_test(test_standard_dialect_alarms),
        cmocka_unit_test(test_dialect_by_name),
        cmocka_unit_test(test_encode_commands),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
