/* vectors_test.c — every protocol's vector file (tests/vectors/<protocol>.tsv, format
 * in tests/vectors/README.md) through detection, framing, decoding, replies and
 * command encoding. A new row or a new file is tested without code changes.
 * jt600.tsv and jt808.tsv keep their research-specific keys and have their own
 * tests; here they take part in the detection check only. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../../src/core/err.h"
#include "../../../src/proto/proto.h"
#include "../vectors.h"

#define NOW 1767225600 /* 2026-01-01T00:00:00Z: the clock of time answers in the vectors */

static struct report reports[PROTO_MAX_REPORTS];
static struct vec_kv kv[512];
static uint8_t msg[65536];

/* Keys that are checks of their own, not report fields. */
static const char *const not_report_keys[] = {
    "protocol", "records", "events", "reply_hex", "reply_uses_now", "detect", "rc", "frames",
    "command", "text", "text2", "number", "transport", NULL,
};

/* "gt06.tsv" → the protocol it belongs to. */
static const struct proto_ops *file_proto(const char *file)
{
    char name[64];
    size_t n = strlen(file) - 4; /* list_files keeps names under 60 bytes */
    memcpy(name, file, n);
    name[n] = '\0';
    return proto_find(name);
}

static size_t row_bytes(const struct vec_row *row, size_t nkv)
{
    if (strcmp(row->layer, "unescaped") == 0) {
        const char *wire = vec_get(kv, nkv, "wire");
        return wire ? vec_unhex(wire, strlen(wire), msg, sizeof msg) : 0;
    }
    return vec_message(row, msg, sizeof msg);
}

static int is_device_frame(const struct vec_row *row)
{
    return strcmp(row->layer, "frame") == 0 || strcmp(row->layer, "udp") == 0 ||
           strcmp(row->layer, "unescaped") == 0 || strcmp(row->layer, "stream") == 0;
}

/* Zero misdetections: every device frame is claimed by its own protocol and no other. */
static void test_detection(void **state)
{
    (void)state;
    static char files[64][64];
    static struct vec_file f;
    int nfiles = vec_list(files, 64), bad = 0, checked = 0;
    for (int i = 0; i < nfiles; i++) {
        const struct proto_ops *want = file_proto(files[i]);
        if (!want) {
            fprintf(stderr, "%s: no protocol of that name\n", files[i]);
            bad++;
            continue;
        }
        vec_load(files[i], &f);
        for (size_t r = 0; r < f.n; r++) {
            const struct vec_row *row = &f.rows[r];
            if (!is_device_frame(row))
                continue;
            size_t nkv = vec_expected(row, kv, 512);
            size_t len = row_bytes(row, nkv);
            const char *det = vec_get(kv, nkv, "detect");
            int wants_no = det && strcmp(det, "no") == 0;
            /* the research files flag frames with both checksum and length wrong: not a first frame */
            const char *ck = vec_get(kv, nkv, "checksum_ok"), *bl = vec_get(kv, nkv, "body_len_ok");
            if (ck && bl && strcmp(ck, "false") == 0 && strcmp(bl, "false") == 0)
                wants_no = 1;
            if (len == 0 || strcmp(row->layer, "stream") == 0)
                continue; /* stream rows test framing; some start with deliberate garbage */
            for (size_t p = 0; proto_registry[p]; p++) {
                int score = proto_registry[p]->detect(msg, len);
                int mine = proto_registry[p] == want;
                if (!mine && score >= PROTO_DETECT_YES) {
                    fprintf(stderr, "%s: also claimed by %s\n", row->id, proto_registry[p]->name);
                    bad++;
                }
                if (mine && !wants_no && score < PROTO_DETECT_YES) {
                    fprintf(stderr, "%s: not claimed by its protocol %s (score %d)\n", row->id,
                            want->name, score);
                    bad++;
                }
            }
            checked++;
        }
        vec_free(&f);
    }
    int nprotos = 0;
    while (proto_registry[nprotos])
        nprotos++;
    fprintf(stderr, "detection: %d frames of %d files checked against %d protocols\n", checked,
            nfiles, nprotos);
    assert_int_equal(bad, 0);
}

static int check_events(const char *id, const struct report *r, const char *want)
{
    char got[512] = "";
    size_t used = 0;
    for (int i = 0; i < r->n_events && used < sizeof got - 32; i++)
        used += (size_t)snprintf(got + used, sizeof got - used, "%s%s", i ? "|" : "",
                                 report_event_name(r->events[i].type));
    if (strcmp(want, "none") == 0 ? used == 0 : strcmp(want, got) == 0)
        return 0;
    fprintf(stderr, "%s: events %s, want %s\n", id, got[0] ? got : "none", want);
    return 1;
}

static int check_frame_row(const struct proto_ops *p, const struct vec_row *row, size_t nkv,
                           size_t len)
{
    int bad = 0;
    ptrdiff_t fl = p->frame(msg, len);
    if (fl != (ptrdiff_t)len) {
        fprintf(stderr, "%s: frame() = %td, want %zu\n", row->id, fl, len);
        return 1;
    }
    struct proto_ctx ctx = {.now = NOW};
    struct proto_reply reply = {0};
    size_t n = 0;
    int rc = p->decode(&ctx, msg, len, reports, PROTO_MAX_REPORTS, &n, &reply);
    const char *want_rc = vec_get(kv, nkv, "rc");
    int rc_ok = want_rc ? (strcmp(want_rc, "unsupported") == 0 ? rc == ST_EUNSUPPORTED
                           : strcmp(want_rc, "malformed") == 0 ? rc < 0 && rc != ST_EUNSUPPORTED
                                                               : rc == 0)
                        : rc == 0;
    if (!rc_ok) {
        fprintf(stderr, "%s: decode() = %d (%s)\n", row->id, rc, st_strerror(rc));
        return 1;
    }
    const char *records = vec_get(kv, nkv, "records");
    size_t want_n = records ? (size_t)strtoul(records, NULL, 10) : (rc < 0 && rc != ST_EUNSUPPORTED ? 0 : 1);
    if (n != want_n) {
        fprintf(stderr, "%s: %zu reports, want %zu\n", row->id, n, want_n);
        return 1;
    }
    for (size_t i = 0; i < n; i++) {
        char prefix[32] = "";
        if (records)
            snprintf(prefix, sizeof prefix, "r%zu.", i);
        bad += vec_check_report(row->id, &reports[i], kv, nkv, prefix, not_report_keys);
        char key[48];
        snprintf(key, sizeof key, "%sevents", prefix);
        const char *ev = vec_get(kv, nkv, key);
        if (ev)
            bad += check_events(row->id, &reports[i], ev);
    }
    const char *want_reply = vec_get(kv, nkv, "reply_hex");
    if (want_reply) {
        static uint8_t expect[PROTO_REPLY_MAX];
        size_t elen = strcmp(want_reply, "none") == 0
                          ? 0
                          : vec_unhex(want_reply, strlen(want_reply), expect, sizeof expect);
        if (elen == (size_t)-1 || elen != reply.len || memcmp(expect, reply.buf, elen)) {
            char got[2 * PROTO_REPLY_MAX + 1];
            for (size_t i = 0; i < reply.len; i++)
                snprintf(got + 2 * i, 3, "%02x", reply.buf[i]);
            got[2 * reply.len] = '\0';
            fprintf(stderr, "%s: reply %s, want %s\n", row->id, reply.len ? got : "none", want_reply);
            bad++;
        }
    }
    return bad;
}

static int check_stream_row(const struct proto_ops *p, const struct vec_row *row, size_t nkv,
                            size_t len)
{
    const char *frames = vec_get(kv, nkv, "frames");
    if (!frames)
        return 0;
    struct proto_stream ps = {.proto = p};
    size_t off = 0, flen = 0, n = 0;
    while (proto_stream_next(&ps, msg, len, &off, &flen) == PROTO_STREAM_FRAME) {
        n++;
        off += flen;
    }
    if (n == strtoul(frames, NULL, 10))
        return 0;
    fprintf(stderr, "%s: %zu frames, want %s\n", row->id, n, frames);
    return 1;
}

static int check_downlink_row(const struct proto_ops *p, const struct vec_row *row, size_t nkv,
                              size_t len)
{
    const char *name = vec_get(kv, nkv, "command");
    if (!name)
        return 0; /* research rows: device answers, not encoder cases */
    struct proto_command cmd = {
        .type = (uint8_t)proto_command_type(name),
        .device_id = vec_get(kv, nkv, "device_id"),
        .text = vec_get(kv, nkv, "text"),
        .text2 = vec_get(kv, nkv, "text2"),
    };
    const char *number = vec_get(kv, nkv, "number");
    cmd.number = number ? strtol(number, NULL, 10) : 0;
    static uint8_t out[4096];
    size_t olen = 0;
    struct proto_ctx ctx = {.now = NOW};
    int rc = p->encode_command ? p->encode_command(&ctx, &cmd, out, sizeof out, &olen)
                               : ST_EUNSUPPORTED;
    if (rc == 0 && olen == len && memcmp(out, msg, len) == 0)
        return 0;
    fprintf(stderr, "%s: command %s: rc %d, %zu bytes (want %zu): %.*s\n", row->id, name, rc, olen,
            len, (int)olen, (const char *)out);
    return 1;
}

static void test_vectors(void **state)
{
    (void)state;
    static char files[64][64];
    static struct vec_file f;
    int nfiles = vec_list(files, 64), bad = 0, rows = 0;
    for (int i = 0; i < nfiles; i++) {
        const struct proto_ops *p = file_proto(files[i]);
        if (!p || strcmp(files[i], "jt600.tsv") == 0 || strcmp(files[i], "jt808.tsv") == 0)
            continue;
        vec_load(files[i], &f);
        for (size_t r = 0; r < f.n; r++) {
            const struct vec_row *row = &f.rows[r];
            size_t nkv = vec_expected(row, kv, 512);
            size_t len = row_bytes(row, nkv);
            if (strcmp(row->layer, "stream") == 0)
                bad += check_stream_row(p, row, nkv, len);
            else if (strcmp(row->layer, "downlink") == 0)
                bad += check_downlink_row(p, row, nkv, len);
            else
                bad += check_frame_row(p, row, nkv, len);
            rows++;
        }
        vec_free(&f);
    }
    fprintf(stderr, "vectors: %d rows checked\n", rows);
    assert_int_equal(bad, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_detection),
        cmocka_unit_test(test_vectors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
