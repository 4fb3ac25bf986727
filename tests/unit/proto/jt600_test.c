/* jt600_test.c — src/proto/jt600.c against every row of tests/vectors/jt600.tsv
 * (plus the three JT709A text rows of jt808.tsv), framing under any split,
 * resynchronisation, limits, truncation, the simulator's encoders and the downlink
 * commands (every `downlink` row).
 * Vector mismatches are collected over all rows and reported together. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../../src/core/err.h"
#include "../../../src/core/timeutil.h"
#include "../../../src/proto/jt600.h"
#include "../vectors.h"

#define MAX_FRAMES 16

/* The JT808 file's rows the JT600 text decoder serves (JT709A dialect). */
static const char *const jt808_text_rows[] = {"JT808-D053", "JT808-D068", "JT808-F01", NULL};

/* Expected keys that are not report output, each checked another way or not ours. */
static const char *const ignored[] = {
    "id",        /* compared with report.device_id */
    "frame_len", /* compared with frame()'s return value */
    "position",  /* `none` = no position: compared with has_position */
    "reply",     /* replies compared with the reply buffer (reply_vendor first) */
    "reply_vendor",
    "reply_traccar",        /* what Traccar sends; we follow the vendor (reply_vendor / reply) */
    "traccar_speed_kn_bcd", /* Traccar's BCD misreading of the speed byte: not our reading */
    NULL,
};

static uint8_t msg[PROTO_FRAME_MAX * 2];
static struct report reports[PROTO_MAX_REPORTS];

struct framed {
    size_t n, leftover;
    size_t off[MAX_FRAMES], len[MAX_FRAMES];
};

static int64_t fixed_now(void)
{
    return st_time_from_utc(2026, 8, 24, 10, 15, 0);
}

static int in_list(const char *const *list, const char *s)
{
    for (size_t i = 0; list[i]; i++)
        if (strcmp(list[i], s) == 0)
            return 1;
    return 0;
}

/* Cut every frame of buf[0..len) at once. */
static void frame_all(const uint8_t *buf, size_t len, struct framed *out)
{
    size_t off = 0;
    out->n = 0;
    while (off < len) {
        ptrdiff_t r = proto_jt600.frame(buf + off, len - off);
        assert_true(r <= (ptrdiff_t)(len - off));
        if (r == 0)
            break;
        if (r > 0) {
            assert_true(out->n < MAX_FRAMES);
            out->off[out->n] = off;
            out->len[out->n++] = (size_t)r;
            off += (size_t)r;
        } else {
            off += (size_t)-r;
        }
    }
    out->leftover = len - off;
}

/* Independent oracle for the text escape (spec §2.7): 0x3D x → x ^ 0x3D. */
static size_t unescape(const uint8_t *in, size_t n, uint8_t *out)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (in[i] == 0x3D && i + 1 < n &&
            (in[i + 1] == 0x00 || in[i + 1] == 0x11 || in[i + 1] == 0x14 || in[i + 1] == 0x15)) {
            out[k++] = in[i + 1] ^ 0x3D;
            i++;
        } else {
            out[k++] = in[i];
        }
    }
    return k;
}

static int check_frame_value(const char *id, size_t i, const char *want, const uint8_t *frame,
                             size_t len)
{
    uint8_t plain[PROTO_FRAME_MAX], expect[PROTO_FRAME_MAX];
    size_t pn = frame[0] == '(' ? unescape(frame, len, plain) : len;
    if (frame[0] != '(')
        memcpy(plain, frame, len);
    size_t en =
        want[0] == '(' ? strlen(want) : vec_unhex(want, strlen(want), expect, sizeof expect);
    if (want[0] == '(')
        memcpy(expect, want, en);
    if (en == pn && memcmp(expect, plain, pn) == 0)
        return 0;
    fprintf(stderr, "%s: f%zu: frame differs (%zu bytes, expected %zu)\n", id, i, pn, en);
    return 1;
}

/* Layer `stream`: frames/f0…/leftover. */
static int check_stream(const struct vec_row *row, const struct vec_kv *kv, size_t nkv, int *keys)
{
    size_t len = vec_message(row, msg, sizeof msg);
    struct framed fr;
    frame_all(msg, len, &fr);
    int bad = 0;
    const char *frames = vec_get(kv, nkv, "frames");
    if (frames) {
        (*keys)++;
        if ((size_t)strtoul(frames, NULL, 10) != fr.n) {
            fprintf(stderr, "%s: frames: expected %s, got %zu\n", row->id, frames, fr.n);
            bad++;
        }
    }
    for (size_t i = 0; i < fr.n; i++) {
        char key[24];
        snprintf(key, sizeof key, "f%zu", i);
        const char *want = vec_get(kv, nkv, key);
        if (!want)
            continue;
        (*keys)++;
        bad += check_frame_value(row->id, i, want, msg + fr.off[i], fr.len[i]);
    }
    const char *left = vec_get(kv, nkv, "leftover");
    if (left) {
        (*keys)++;
        size_t want = strcmp(left, "none") == 0 ? 0 : strlen(left) / 2;
        if (want != fr.leftover) {
            fprintf(stderr, "%s: leftover: expected %s, got %zu bytes\n", row->id, left,
                    fr.leftover);
            bad++;
        }
    }
    return bad;
}

/* The expected reply with `<…>` replaced by ctx.now in the format it names. */
static void expected_reply(const char *want, char *out, size_t cap)
{
    const char *lt = strchr(want, '<'), *gt = lt ? strchr(lt, '>') : NULL;
    if (!lt || !gt) {
        snprintf(out, cap, "%s", strcmp(want, "none") == 0 ? "" : want);
        return;
    }
    int y, mo, d, h, mi, s;
    char t[32];
    st_time_to_utc(fixed_now(), &y, &mo, &d, &h, &mi, &s);
    if (strstr(lt, "yyyyMMdd") && strstr(lt, "yyyyMMdd") < gt)
        snprintf(t, sizeof t, "%04d%02d%02d%02d%02d%02d", y, mo, d, h, mi, s);
    else
        snprintf(t, sizeof t, "%02d%02d%02d%02d%02d%02d", d, mo, y % 100, h, mi, s);
    snprintf(out, cap, "%.*s%s%s", (int)(lt - want), want, t, gt + 1);
}

/* Keys this test compares: all but the two that record Traccar's behaviour. */
static int count_checked(const struct vec_kv *kv, size_t nkv)
{
    int n = 0;
    for (size_t i = 0; i < nkv; i++)
        n += !strstr(kv[i].key, "traccar");
    return n;
}

/* Layers `frame` and `unescaped`: frame() takes all of it, then every expected key. */
static int check_decoded(const struct vec_row *row, const struct vec_kv *kv, size_t nkv, int *keys)
{
    size_t len = vec_message(row, msg, sizeof msg);
    int bad = 0;
    ptrdiff_t fl = proto_jt600.frame(msg, len);
    if (fl != (ptrdiff_t)len) {
        fprintf(stderr, "%s: frame() returned %td for %zu bytes\n", row->id, fl, len);
        bad++;
    }
    const char *flen = vec_get(kv, nkv, "frame_len");
    if (flen && (ptrdiff_t)strtol(flen, NULL, 10) != fl) {
        fprintf(stderr, "%s: frame_len: expected %s, got %td\n", row->id, flen, fl);
        bad++;
    }

    struct proto_ctx ctx = {.now = fixed_now()};
    struct proto_reply reply;
    size_t n = 0;
    int rc = proto_jt600.decode(&ctx, msg, len, reports, PROTO_MAX_REPORTS, &n, &reply);
    if ((rc != 0 && rc != ST_EUNSUPPORTED) || n == 0) {
        fprintf(stderr, "%s: decode returned %d (%s) with %zu reports\n", row->id, rc,
                st_strerror(rc), n);
        return bad + 1;
    }
    *keys += count_checked(kv, nkv);

    const char *id = vec_get(kv, nkv, "id");
    if (id && strcmp(id, reports[0].device_id) != 0) {
        fprintf(stderr, "%s: id: expected %s, got %s\n", row->id, id, reports[0].device_id);
        bad++;
    }
    const char *pos = vec_get(kv, nkv, "position");
    if (pos && strcmp(pos, "none") == 0 && reports[0].has_position) {
        fprintf(stderr, "%s: position: expected none\n", row->id);
        bad++;
    }
    const char *records = vec_get(kv, nkv, "records");
    if (records && (size_t)strtoul(records, NULL, 10) != n) {
        fprintf(stderr, "%s: records: expected %s, got %zu reports\n", row->id, records, n);
        bad++;
    }
    bad += vec_check_report(row->id, &reports[0], kv, nkv, "", ignored);
    for (size_t i = 0; n > 1 && i < n; i++) {
        char prefix[24];
        snprintf(prefix, sizeof prefix, "r%zu.", i);
        bad += vec_check_report(row->id, &reports[i], kv, nkv, prefix, ignored);
    }

    const char *want = vec_get(kv, nkv, "reply_vendor");
    if (!want)
        want = vec_get(kv, nkv, "reply");
    if (want) {
        char expect[PROTO_REPLY_MAX];
        expected_reply(want, expect, sizeof expect);
        if (reply.len != strlen(expect) || memcmp(reply.buf, expect, reply.len) != 0) {
            fprintf(stderr, "%s: reply: expected '%s', got '%.*s'\n", row->id, expect,
                    (int)reply.len, (const char *)reply.buf);
            bad++;
        }
    }
    return bad;
}

static int check_row(const struct vec_row *row, int *rows, int *keys)
{
    static struct vec_kv kv[1024];
    size_t nkv = vec_expected(row, kv, sizeof kv / sizeof kv[0]);
    if (strcmp(row->layer, "stream") == 0) {
        (*rows)++;
        return check_stream(row, kv, nkv, keys);
    }
    if (strcmp(row->layer, "frame") == 0 || strcmp(row->layer, "unescaped") == 0) {
        (*rows)++;
        return check_decoded(row, kv, nkv, keys);
    }
    if (strcmp(row->layer, "downlink") == 0) {
        /* Server commands: no decoder output; they must still be whole text frames. */
        size_t len = vec_message(row, msg, sizeof msg);
        (*rows)++;
        return proto_jt600.frame(msg, len) == (ptrdiff_t)len ? 0 : 1;
    }
    return 0;
}

static int is_ours(const char *file, const struct vec_row *row)
{
    return strcmp(file, "jt600.tsv") == 0 || in_list(jt808_text_rows, row->id);
}

static void test_vectors(void **state)
{
    (void)state;
    static const char *const files[] = {"jt600.tsv", "jt808.tsv"};
    static struct vec_file f;
    int bad = 0, rows = 0, keys = 0;
    for (size_t k = 0; k < 2; k++) {
        vec_load(files[k], &f);
        for (size_t i = 0; i < f.n; i++)
            if (is_ours(files[k], &f.rows[i]))
                bad += check_row(&f.rows[i], &rows, &keys);
        vec_free(&f);
    }
    printf("jt600 vectors: %d rows, %d expected keys, %d mismatches\n", rows, keys, bad);
    assert_int_equal(rows, 87);
    assert_true(keys > 1500);
    assert_int_equal(bad, 0);
}

/* ---- framing under any split ---------------------------------------------- */

/* Feed buf in chunks of `step` bytes into an accumulate-and-frame loop. */
static void frame_chunked(const uint8_t *buf, size_t len, size_t step, struct framed *out,
                          uint8_t *frames)
{
    static uint8_t acc[PROTO_FRAME_MAX * 2];
    size_t alen = 0, fpos = 0;
    out->n = 0;
    for (size_t off = 0; off < len; off += step) {
        size_t take = len - off < step ? len - off : step;
        assert_true(alen + take <= sizeof acc);
        memcpy(acc + alen, buf + off, take);
        alen += take;
        for (;;) {
            ptrdiff_t r = proto_jt600.frame(acc, alen);
            assert_true(r <= (ptrdiff_t)alen);
            if (r == 0)
                break;
            size_t used = (size_t)(r > 0 ? r : -r);
            if (r > 0) {
                assert_true(out->n < MAX_FRAMES);
                memcpy(frames + fpos, acc, used);
                out->off[out->n] = fpos;
                out->len[out->n++] = used;
                fpos += used;
            }
            memmove(acc, acc + used, alen - used);
            alen -= used;
        }
    }
    out->leftover = alen;
}

static void assert_same_frames(const uint8_t *buf, size_t len)
{
    static uint8_t frames[PROTO_FRAME_MAX * 2];
    static const size_t steps[] = {1, 2, 3, 5, 7, 13, 64};
    struct framed whole, part;
    frame_all(buf, len, &whole);
    for (size_t s = 0; s < sizeof steps / sizeof steps[0]; s++) {
        frame_chunked(buf, len, steps[s], &part, frames);
        assert_int_equal(part.n, whole.n);
        assert_int_equal(part.leftover, whole.leftover);
        for (size_t i = 0; i < whole.n; i++) {
            assert_int_equal(part.len[i], whole.len[i]);
            assert_memory_equal(frames + part.off[i], buf + whole.off[i], whole.len[i]);
        }
    }
}

static void for_each_wire_row(void (*fn)(const struct vec_row *row, const uint8_t *b, size_t n))
{
    static const char *const files[] = {"jt600.tsv", "jt808.tsv"};
    static struct vec_file f;
    for (size_t k = 0; k < 2; k++) {
        vec_load(files[k], &f);
        for (size_t i = 0; i < f.n; i++) {
            const struct vec_row *row = &f.rows[i];
            if (!is_ours(files[k], row) || strcmp(row->layer, "downlink") == 0)
                continue;
            size_t len = vec_message(row, msg, sizeof msg);
            fn(row, msg, len);
        }
        vec_free(&f);
    }
}

static void chunk_row(const struct vec_row *row, const uint8_t *b, size_t n)
{
    (void)row;
    assert_same_frames(b, n);
}

static void test_chunking(void **state)
{
    (void)state;
    for_each_wire_row(chunk_row);
}

/* A truncated frame asks for more bytes and never decodes. */
static void truncate_row(const struct vec_row *row, const uint8_t *b, size_t n)
{
    struct proto_ctx ctx = {.now = fixed_now()};
    struct proto_reply reply;
    if (strcmp(row->layer, "stream") == 0)
        return;
    for (size_t k = 0; k < n; k++) {
        size_t nr = 99;
        uint8_t copy[PROTO_FRAME_MAX];
        memcpy(copy, b, k); /* exact-size view so ASan sees any over-read */
        assert_int_equal(proto_jt600.frame(copy, k), 0);
        int rc = proto_jt600.decode(&ctx, copy, k, reports, PROTO_MAX_REPORTS, &nr, &reply);
        assert_true(rc < 0);
        assert_int_equal(nr, 0);
        assert_int_equal(reply.len, 0);
    }
}

static void test_truncated(void **state)
{
    (void)state;
    for_each_wire_row(truncate_row);
}

static size_t from_hex(const char *hex, uint8_t *out, size_t cap)
{
    size_t n = vec_unhex(hex, strlen(hex), out, cap);
    assert_true(n != (size_t)-1);
    return n;
}

static void test_resync(void **state)
{
    (void)state;
    static const char long_frame[] =
        "2480006200111911003418042116225922348310113550543f12980000002d060000000020e028109228661f"
        "000100000f0f0f0f0f0f0f0f000001cc0156";
    static const char heartbeat[] = "(8000620011,@JT)";
    uint8_t buf[512], one[128];
    size_t n = 0, flen = from_hex(long_frame, one, sizeof one);
    memcpy(buf + n, "GET / \x7e\x01", 8);
    n += 8;
    memcpy(buf + n, one, flen);
    n += flen;
    memcpy(buf + n, "$\xff\x01\x02", 4); /* `$` with a non-BCD terminal ID is garbage */
    n += 4;
    memcpy(buf + n, heartbeat, strlen(heartbeat));
    n += strlen(heartbeat);
    struct framed fr;
    frame_all(buf, n, &fr);
    assert_int_equal(fr.n, 2);
    assert_int_equal(fr.len[0], flen);
    assert_memory_equal(buf + fr.off[0], one, flen);
    assert_int_equal(fr.len[1], strlen(heartbeat));
    assert_int_equal(fr.leftover, 0);
    assert_same_frames(buf, n);
}

static void test_oversized(void **state)
{
    (void)state;
    static uint8_t buf[PROTO_FRAME_MAX + 64];
    const char *hb = "(8000620011,@JT)";
    size_t body = PROTO_FRAME_MAX + 10;
    buf[0] = '(';
    memset(buf + 1, 'A', body - 1);
    buf[body - 1] = ')';
    memcpy(buf + body, hb, strlen(hb));
    size_t n = body + strlen(hb);
    ptrdiff_t r = proto_jt600.frame(buf, n);
    assert_true(r < 0); /* no `)` within PROTO_FRAME_MAX bytes: garbage */
    struct framed fr;
    frame_all(buf, n, &fr);
    assert_int_equal(fr.n, 1);
    assert_int_equal(fr.len[0], strlen(hb));
    assert_same_frames(buf, n);
    /* A `$` header announcing more than PROTO_FRAME_MAX bytes is garbage too. */
    static const uint8_t big[] = {'$', 0x80, 0x00, 0x62, 0x00, 0x11, 0x19, 0x11, 0x00, 0x00};
    uint8_t hdr[10];
    memcpy(hdr, big, sizeof hdr);
    hdr[8] = 0x00;
    hdr[9] = 0x34; /* plausible: 52 */
    assert_int_equal(proto_jt600.frame(hdr, sizeof hdr), 0);
    uint8_t huge[10];
    memcpy(huge, big, sizeof huge);
    huge[7] = 0x11;
    huge[8] = 0xF3; /* short layout, 0x11F3 = 4595 = 27 * 170 + 5: not whole records */
    assert_true(proto_jt600.frame(huge, sizeof huge) < 0);
}

static void test_detect(void **state)
{
    (void)state;
    const struct {
        const char *text;
        int want;
    } cases[] = {
        {"", PROTO_DETECT_MAYBE},
        {"(", PROTO_DETECT_MAYBE},
        {"(80006", PROTO_DETECT_MAYBE},
        {"(8000620011", PROTO_DETECT_MAYBE},
        {"(8000620011,", PROTO_DETECT_YES},
        {"(794104004140,", PROTO_DETECT_NO}, /* JT709A text: claimed by jt808 */
        {"(80006200111,", PROTO_DETECT_NO},
        {"(800062001,", PROTO_DETECT_NO},
        {"(P69,0,1)", PROTO_DETECT_NO},
        {"GET / HTTP/1.1", PROTO_DETECT_NO},
        {"$", PROTO_DETECT_MAYBE},
        {"$\xaa", PROTO_DETECT_NO}, /* terminal ID is not BCD */
        {"$\x80\x01\x62", PROTO_DETECT_MAYBE},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_int_equal(proto_jt600.detect((const uint8_t *)cases[i].text, strlen(cases[i].text)),
                         cases[i].want);
    uint8_t b[64];
    size_t n = from_hex(
        "24657060730131001b13111710361906538525079524797f000000000000000003f300036c", b, sizeof b);
    assert_int_equal(proto_jt600.detect(b, n), PROTO_DETECT_YES);
    assert_int_equal(proto_jt600.detect(b, 9), PROTO_DETECT_MAYBE);
}

/* ---- encoders ---------------------------------------------------------------- */

static size_t decode_one(const uint8_t *frame, size_t len, struct proto_reply *reply)
{
    struct proto_ctx ctx = {.now = fixed_now()};
    size_t n = 0;
    assert_int_equal(proto_jt600.frame(frame, len), (ptrdiff_t)len);
    assert_int_equal(proto_jt600.decode(&ctx, frame, len, reports, PROTO_MAX_REPORTS, &n, reply),
                     0);
    return n;
}

static void base_report(struct report *r)
{
    report_init(r, "jt600");
    snprintf(r->device_id, sizeof r->device_id, "62000011"); /* padded to 0062000011 */
    r->fix_time = st_time_from_utc(2024, 2, 29, 23, 59, 58);
    r->has_position = true;
    r->valid = true;
    r->fix = REPORT_FIX_GNSS;
    r->lat = -33.328823;
    r->lon = 20.033475;
    r->speed_kmh = 33.336;
    r->course = 304;
    r->odometer_km = 4321;
}

static const struct report_event *find_event(const struct report *r, uint8_t type)
{
    for (uint8_t i = 0; i < r->n_events; i++)
        if (r->events[i].type == type)
            return &r->events[i];
    return NULL;
}

static void assert_position(const struct report *got, const struct report *want)
{
    assert_string_equal(got->device_id, want->device_id);
    assert_int_equal(got->fix_time, want->fix_time);
    assert_true(got->valid == want->valid);
    assert_true(fabs(got->lat - want->lat) < 1e-5);
    assert_true(fabs(got->lon - want->lon) < 1e-5);
    assert_true(fabs(got->speed_kmh - want->speed_kmh) < 1.0);
    assert_true(fabs(got->course - want->course) < 2.0);
}

static void test_encode_long(void **state)
{
    (void)state;
    struct report r;
    base_report(&r);
    r.satellites = 12;
    r.battery_pct = 67;
    r.charging = 0;
    r.gsm_signal = 23;
    r.lock = REPORT_LOCK_LOCKED;
    r.has_cell = true;
    r.cell = (struct report_cell){.mcc = 655, .mnc = 1, .lac = 21101, .cid = 0x0EAA600A};
    struct report_event *e = report_add_event(&r, REPORT_EV_TAMPER);
    snprintf(e->reason, sizeof e->reason, "rope_cut");
    e = report_add_event(&r, REPORT_EV_GEOFENCE_ENTER);
    e->fence_id = 3;
    report_add_event(&r, REPORT_EV_LOW_BATTERY);

    uint8_t buf[128];
    struct proto_reply reply;
    ptrdiff_t n = jt600_encode_long(&r, 139, buf, sizeof buf);
    assert_int_equal(n, 62);
    assert_int_equal(jt600_encode_long(&r, 139, buf, 61), ST_ERANGE);
    assert_int_equal(decode_one(buf, (size_t)n, &reply), 1);
    const struct report *g = &reports[0];
    assert_position(g, &r);
    assert_int_equal(g->satellites, 12);
    assert_int_equal(g->battery_pct, 67);
    assert_int_equal(g->charging, 0);
    assert_int_equal(g->gsm_signal, 23);
    assert_int_equal(g->lock, REPORT_LOCK_LOCKED);
    assert_true(fabs(g->odometer_km - 4321) < 1e-9);
    assert_true(g->has_cell);
    assert_int_equal(g->cell.mcc, 655);
    assert_int_equal(g->cell.mnc, 1);
    assert_int_equal(g->cell.lac, 21101);
    assert_int_equal(g->cell.cid, 0x0EAA600A);
    assert_string_equal(report_attr_get(g, "index"), "139");
    assert_int_equal(g->n_events, 3);
    assert_string_equal(find_event(g, REPORT_EV_TAMPER)->reason, "rope_cut");
    assert_int_equal(find_event(g, REPORT_EV_GEOFENCE_ENTER)->fence_id, 3);
    assert_non_null(find_event(g, REPORT_EV_LOW_BATTERY));
    assert_int_equal(reply.len, strlen("(P69,0,139)"));
    assert_memory_equal(reply.buf, "(P69,0,139)", reply.len);

    /* Charging, unlocked, LBS, back cover opened. */
    base_report(&r);
    r.charging = 1;
    r.lock = REPORT_LOCK_UNLOCKED;
    r.fix = REPORT_FIX_LBS;
    e = report_add_event(&r, REPORT_EV_TAMPER);
    snprintf(e->reason, sizeof e->reason, "back_cover_open");
    n = jt600_encode_long(&r, 0, buf, sizeof buf);
    assert_int_equal(decode_one(buf, (size_t)n, &reply), 1);
    assert_int_equal(g->battery_pct, -1);
    assert_int_equal(g->charging, 1);
    assert_int_equal(g->lock, REPORT_LOCK_UNLOCKED);
    assert_int_equal(g->fix, REPORT_FIX_LBS);
    assert_int_equal(g->n_events, 1);
    assert_int_equal(g->events[0].source, REPORT_SRC_BACK_COVER);
    assert_string_equal(report_attr_get(g, "status_flags"),
                        "lbs_fix|ack_required|back_cover_open_alarm");

    snprintf(r.device_id, sizeof r.device_id, "12345678901");
    assert_int_equal(jt600_encode_long(&r, 0, buf, sizeof buf), ST_EMALFORMED);
}

static void test_encode_p45(void **state)
{
    (void)state;
    const struct {
        uint8_t type, source;
        int16_t fence;
        const char *card, *reason;
        uint8_t lock;
    } cases[] = {
        {REPORT_EV_UNLOCK, REPORT_SRC_RFID, 3, "0008627839", "", REPORT_LOCK_UNLOCKED},
        {REPORT_EV_UNLOCK, REPORT_SRC_RFID, -1, "0008627839", "", REPORT_LOCK_UNLOCKED},
        {REPORT_EV_UNLOCK, REPORT_SRC_REMOTE_STATIC, -1, "", "", REPORT_LOCK_UNLOCKED},
        {REPORT_EV_UNLOCK, REPORT_SRC_REMOTE_DYNAMIC, 7, "", "", REPORT_LOCK_UNLOCKED},
        {REPORT_EV_UNLOCK, REPORT_SRC_BLUETOOTH, -1, "", "", REPORT_LOCK_UNLOCKED},
        {REPORT_EV_LOCK, REPORT_SRC_AUTO, -1, "", "", REPORT_LOCK_LOCKED},
        {REPORT_EV_UNLOCK_REFUSED, REPORT_SRC_RFID, -1, "0008627839", "outside_fence",
         REPORT_LOCK_UNKNOWN},
        {REPORT_EV_UNLOCK_REFUSED, REPORT_SRC_REMOTE_DYNAMIC, -1, "", "outside_fence",
         REPORT_LOCK_UNKNOWN},
        {REPORT_EV_UNLOCK_REFUSED, REPORT_SRC_REMOTE_STATIC, -1, "", "refused",
         REPORT_LOCK_UNKNOWN},
        {REPORT_EV_WRONG_PASSWORD, REPORT_SRC_REMOTE_STATIC, -1, "", "", REPORT_LOCK_UNKNOWN},
        {REPORT_EV_WRONG_PASSWORD, REPORT_SRC_REMOTE_DYNAMIC, -1, "", "", REPORT_LOCK_UNKNOWN},
        {REPORT_EV_WRONG_PASSWORD, REPORT_SRC_BLUETOOTH, -1, "", "", REPORT_LOCK_UNKNOWN},
        {REPORT_EV_RFID_ACCESS, REPORT_SRC_RFID, -1, "0012260888", "illegal_card",
         REPORT_LOCK_UNKNOWN},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct report r;
        base_report(&r);
        struct report_event ev = {.type = cases[i].type,
                                  .source = cases[i].source,
                                  .granted = -1,
                                  .fence_id = cases[i].fence};
        snprintf(ev.card, sizeof ev.card, "%s", cases[i].card);
        snprintf(ev.reason, sizeof ev.reason, "%s", cases[i].reason);
        if (ev.type == REPORT_EV_RFID_ACCESS)
            ev.granted = 0;
        uint8_t buf[256];
        struct proto_reply reply;
        ptrdiff_t n = jt600_encode_p45(&r, &ev, 40000 + (unsigned)i, buf, sizeof buf);
        assert_true(n > 0);
        assert_int_equal(decode_one(buf, (size_t)n, &reply), 1);
        const struct report *g = &reports[0];
        assert_position(g, &r);
        assert_true(fabs(g->odometer_km - 4321) < 1e-9);
        assert_int_equal(g->lock, cases[i].lock);
        const struct report_event *e = find_event(g, ev.type);
        assert_non_null(e);
        assert_int_equal(e->source, ev.source);
        assert_int_equal(e->fence_id, ev.fence_id);
        assert_string_equal(e->card, ev.card);
        assert_string_equal(e->reason, ev.reason);
        char want[32];
        snprintf(want, sizeof want, "(P69,0,%u)", 40000 + (unsigned)i);
        assert_int_equal(reply.len, strlen(want));
        assert_memory_equal(reply.buf, want, reply.len);
    }
    struct report r;
    base_report(&r);
    struct report_event sos = {.type = REPORT_EV_SOS, .granted = -1, .fence_id = -1};
    uint8_t buf[256];
    assert_true(jt600_encode_p45(&r, &sos, 1, buf, sizeof buf) < 0);
    struct report_event lock = {.type = REPORT_EV_LOCK, .granted = -1, .fence_id = -1};
    assert_int_equal(jt600_encode_p45(&r, &lock, 1, buf, 20), ST_ERANGE);
}

/* Escapes: an escaped `)` inside a text is data; an unknown escape is kept and flagged. */
static void test_text_escapes(void **state)
{
    (void)state;
    static const uint8_t frame[] = "(8000620011,P01,JT701D=\x14=\x11x=\x00y=\x7f)";
    size_t len = sizeof frame - 1;
    struct proto_ctx ctx = {.now = fixed_now()};
    struct proto_reply reply;
    size_t n = 0;
    assert_int_equal(proto_jt600.frame(frame, len), (ptrdiff_t)len);
    assert_int_equal(proto_jt600.decode(&ctx, frame, len, reports, 1, &n, &reply), 0);
    assert_int_equal(n, 1);
    assert_string_equal(reports[0].msg_type, "P01");
    assert_string_equal(report_attr_get(&reports[0], "answer"), "JT701D),x=y=\x7f");
    assert_string_equal(report_attr_get(&reports[0], "bad_escape"), "true");
    assert_false(reports[0].has_position);
    assert_int_equal(reply.len, 0);

    /* Unknown text type: device id and type still reported. */
    static const uint8_t u04[] = "(0003301210,U04)";
    assert_int_equal(proto_jt600.decode(&ctx, u04, sizeof u04 - 1, reports, 1, &n, &reply),
                     ST_EUNSUPPORTED);
    assert_int_equal(n, 1);
    assert_string_equal(reports[0].device_id, "3301210"); /* leading zeros stripped */
    assert_string_equal(reports[0].msg_type, "U04");
}

/* ---- downlink commands ------------------------------------------------------ */

/* The command each `downlink` row of jt600.tsv is the encoding of (E rows: Traccar's JT600
 * vehicle-tracker commands; P rows: the JT701D manual). Time zone and the P-words without a
 * command type of their own go through `custom`, with and without parentheses. */
static const struct {
    const char *id;
    uint8_t type;
    const char *text, *text2;
} downlink_commands[] = {
    {"JT600-E01", PROTO_CMD_ENGINE_STOP, NULL, NULL},
    {"JT600-E02", PROTO_CMD_ENGINE_RESUME, NULL, NULL},
    {"JT600-E03", PROTO_CMD_CUSTOM, "S09,1,240", NULL},
    {"JT600-E04", PROTO_CMD_CUSTOM, "(S17)", NULL},
    {"JT600-P01", PROTO_CMD_UNLOCK, "888888", NULL},
    {"JT600-P02", PROTO_CMD_UNLOCK_DYNAMIC, "223457", NULL},
    {"JT600-P03", PROTO_CMD_SET_PASSWORD, "12#aAM", "888888"},
    {"JT600-P04", PROTO_CMD_REBOOT, NULL, NULL},
    {"JT600-P05", PROTO_CMD_CUSTOM, "P01", NULL},
    {"JT600-P06", PROTO_CMD_CUSTOM, "(P22,150720164328)", NULL},
    {"JT600-P07", PROTO_CMD_CUSTOM, "P69,0,123", NULL},
    {"JT600-P08", PROTO_CMD_CARDS, "1,2,3,0002124750,0002153582,0015451297", NULL},
    {"JT600-P09", PROTO_CMD_CUSTOM, "P59,0", NULL},
};

static int encode(uint8_t type, const char *text, const char *text2, uint8_t *out, size_t cap,
                  size_t *len)
{
    struct proto_ctx ctx = {.now = fixed_now()};
    struct proto_command cmd = {
        .type = type, .device_id = "8130630001", .text = text, .text2 = text2};
    return proto_jt600.encode_command(&ctx, &cmd, out, cap, len);
}

static void test_encode_commands(void **state)
{
    (void)state;
    static struct vec_file f;
    uint8_t out[512];
    size_t len, rows = 0;
    vec_load("jt600.tsv", &f);
    for (size_t i = 0; i < f.n; i++) {
        const struct vec_row *row = &f.rows[i];
        if (strcmp(row->layer, "downlink") != 0)
            continue;
        size_t k = 0, n = sizeof downlink_commands / sizeof downlink_commands[0];
        while (k < n && strcmp(downlink_commands[k].id, row->id) != 0)
            k++;
        assert_true(k < n); /* every downlink row has its command */
        size_t want = vec_message(row, msg, sizeof msg);
        assert_int_equal(encode(downlink_commands[k].type, downlink_commands[k].text,
                                downlink_commands[k].text2, out, sizeof out, &len),
                         0);
        assert_int_equal(len, want);
        assert_memory_equal(out, msg, want);
        assert_int_equal(proto_jt600.frame(out, len), (ptrdiff_t)len);
        rows++;
    }
    vec_free(&f);
    assert_int_equal(rows, sizeof downlink_commands / sizeof downlink_commands[0]);

    /* Not documented for these devices: no guess. */
    static const uint8_t unsupported[] = {PROTO_CMD_POSITION, PROTO_CMD_INTERVAL, 0, 200};
    for (size_t i = 0; i < sizeof unsupported; i++)
        assert_int_equal(encode(unsupported[i], "1", NULL, out, sizeof out, &len), ST_EUNSUPPORTED);
    /* Arguments that would break the frame or are missing. */
    assert_int_equal(encode(PROTO_CMD_UNLOCK, NULL, NULL, out, sizeof out, &len), ST_EMALFORMED);
    assert_int_equal(encode(PROTO_CMD_UNLOCK, "", NULL, out, sizeof out, &len), ST_EMALFORMED);
    assert_int_equal(encode(PROTO_CMD_UNLOCK, "12)456", NULL, out, sizeof out, &len),
                     ST_EMALFORMED);
    assert_int_equal(encode(PROTO_CMD_UNLOCK_DYNAMIC, "1,2", NULL, out, sizeof out, &len),
                     ST_EMALFORMED);
    assert_int_equal(encode(PROTO_CMD_SET_PASSWORD, "123456", NULL, out, sizeof out, &len),
                     ST_EMALFORMED);
    assert_int_equal(encode(PROTO_CMD_CUSTOM, "P01\n", NULL, out, sizeof out, &len), ST_EMALFORMED);
    assert_int_equal(encode(PROTO_CMD_CUSTOM, "()", NULL, out, sizeof out, &len), ST_EMALFORMED);
    assert_int_equal(encode(PROTO_CMD_CUSTOM, "(P01", NULL, out, sizeof out, &len), ST_EMALFORMED);
    assert_int_equal(len, 0);
    /* The output bound is exact: 5 bytes fit `(P15)`, 4 do not. */
    assert_int_equal(encode(PROTO_CMD_REBOOT, NULL, NULL, out, 5, &len), 0);
    assert_int_equal(encode(PROTO_CMD_REBOOT, NULL, NULL, out, 4, &len), ST_ERANGE);
    static char big[PROTO_FRAME_MAX + 8];
    memset(big, '1', sizeof big - 1);
    assert_int_equal(encode(PROTO_CMD_CUSTOM, big, NULL, out, sizeof out, &len), ST_ERANGE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),      cmocka_unit_test(test_chunking),
        cmocka_unit_test(test_truncated),    cmocka_unit_test(test_resync),
        cmocka_unit_test(test_oversized),    cmocka_unit_test(test_detect),
        cmocka_unit_test(test_encode_long),  cmocka_unit_test(test_encode_p45),
        cmocka_unit_test(test_text_escapes), cmocka_unit_test(test_encode_commands),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
