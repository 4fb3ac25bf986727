/* stream_test.c — proto_stream_next, the loop the server, UDP and `decode`
 * share: detection per stream, sibling switching on one connection, garbage
 * resynchronisation, and identical frames whatever the read sizes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../../src/proto/proto.h"
#include "../vectors.h"

#define MAX_STREAM (256 * 1024)
#define MAX_FRAMES 1024

struct cut {
    size_t n;
    size_t off[MAX_FRAMES], len[MAX_FRAMES];
    const char *proto[MAX_FRAMES];
};

/* Feed data in pieces of `chunk` bytes (0 = all at once), as a connection would:
 * an accumulator keeps only the unframed tail. Frames are recorded by their
 * offset in the whole stream. */
static void cut_stream(const uint8_t *data, size_t len, size_t chunk, struct cut *c)
{
    static uint8_t acc[MAX_STREAM];
    struct proto_stream ps = {0};
    size_t acc_len = 0, base = 0; /* base = stream offset of acc[0] */
    memset(c, 0, sizeof *c);
    for (size_t pos = 0; pos < len;) {
        size_t n = chunk ? chunk : len;
        if (n > len - pos)
            n = len - pos;
        memcpy(acc + acc_len, data + pos, n);
        acc_len += n;
        pos += n;
        size_t off = 0, flen = 0;
        int k;
        while ((k = proto_stream_next(&ps, acc, acc_len, &off, &flen)) == PROTO_STREAM_FRAME) {
            assert_true(c->n < MAX_FRAMES);
            c->off[c->n] = base + off;
            c->len[c->n] = flen;
            c->proto[c->n] = ps.proto->name;
            c->n++;
            off += flen;
        }
        assert_int_not_equal(k, PROTO_STREAM_UNKNOWN);
        memmove(acc, acc + off, acc_len - off);
        acc_len -= off;
        base += off;
    }
}

/* All device-sent bytes of a vector file, one after the other. */
static size_t file_stream(const char *name, uint8_t *out, size_t cap)
{
    static struct vec_file f;
    static uint8_t msg[65536];
    static struct vec_kv kv[256];
    size_t len = 0;
    vec_load(name, &f);
    for (size_t i = 0; i < f.n; i++) {
        const struct vec_row *row = &f.rows[i];
        size_t n;
        if (strcmp(row->layer, "downlink") == 0 || strcmp(row->layer, "encode") == 0 ||
            strcmp(row->layer, "udp") == 0)
            continue; /* not bytes of a device's TCP stream */
        if (strcmp(row->layer, "unescaped") == 0) {
            size_t nkv = vec_expected(row, kv, 256);
            const char *wire = vec_get(kv, nkv, "wire");
            if (!wire)
                continue;
            n = vec_unhex(wire, strlen(wire), msg, sizeof msg);
        } else {
            n = vec_message(row, msg, sizeof msg);
        }
        assert_true(len + n <= cap);
        memcpy(out + len, msg, n);
        len += n;
    }
    vec_free(&f);
    return len;
}

static void same_cuts(const uint8_t *data, size_t len)
{
    static struct cut whole, piece;
    cut_stream(data, len, 0, &whole);
    assert_true(whole.n > 0);
    size_t sizes[] = {1, 2, 3, 7, 64, 1000};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        cut_stream(data, len, sizes[s], &piece);
        assert_int_equal(piece.n, whole.n);
        for (size_t i = 0; i < whole.n; i++) {
            assert_int_equal(piece.off[i], whole.off[i]);
            assert_int_equal(piece.len[i], whole.len[i]);
            assert_string_equal(piece.proto[i], whole.proto[i]);
        }
    }
}

/* Every protocol's vectors, as one TCP stream per file, cut the same at every read size. */
static void test_chunking_all(void **state)
{
    (void)state;
    static uint8_t data[MAX_STREAM];
    static char files[64][64];
    int n = vec_list(files, 64);
    int n_protocols = 0;
    while (proto_registry[n_protocols])
        n_protocols++;
    assert_int_equal(n, n_protocols); /* one vector file per protocol: none may go missing */
    for (int i = 0; i < n; i++) {
        size_t len = file_stream(files[i], data, sizeof data);
        fprintf(stderr, "chunking %s: %zu bytes\n", files[i], len);
        same_cuts(data, len);
    }
}

static void test_detection(void **state)
{
    (void)state;
    int more;
    /* vector JT808-D093, a heartbeat */
    const uint8_t jt808[] = {0x7e, 0x00, 0x02, 0x00, 0x00, 0x04, 0x30, 0x48, 0x32, 0x54,
                             0x65, 0x00, 0xb7, 0xca, 0x7e};
    assert_ptr_equal(proto_detect(jt808, sizeof jt808, &more), &proto_jt808);
    /* a header alone could still be anything: wait */
    assert_null(proto_detect(jt808, 5, &more));
    assert_true(more);
    const char *jt709_text = "(794104004140,1,001,BASE,2,TIME)";
    assert_ptr_equal(proto_detect((const uint8_t *)jt709_text, strlen(jt709_text), &more),
                     &proto_jt808);
    const char *jt701_text = "(8000620011,@JT)";
    assert_ptr_equal(proto_detect((const uint8_t *)jt701_text, strlen(jt701_text), &more),
                     &proto_jt600);
    /* too few bytes: wait */
    assert_null(proto_detect((const uint8_t *)"(80", 3, &more));
    assert_true(more);
    /* HTTP is OsmAnd's (phones on the shared port); a method it does not serve is nobody's */
    assert_ptr_equal(proto_detect((const uint8_t *)"GET / HTTP/1.1\r\n", 16, &more), &proto_osmand);
    assert_null(proto_detect((const uint8_t *)"PUT / HTTP/1.1\r\n", 16, &more));
    assert_false(more);
    struct proto_stream ps = {0};
    size_t off = 0, flen;
    static const uint8_t junk[80] = "hello this is not a tracker protocol at all, no way, none";
    assert_int_equal(proto_stream_next(&ps, junk, sizeof junk, &off, &flen), PROTO_STREAM_UNKNOWN);
}

/* An H02 binary frame at hh:mm:00 on day 23..31 also parses as a JT600 long header (seconds
 * byte 0 = long format, day = a plausible length): both claim it. The next frame decides. */
static void test_tie_broken_by_next_frame(void **state)
{
    (void)state;
    static const uint8_t h02[] = {0x24, 0x41, 0x06, 0x01, 0x16, 0x60, 0x12, 0x45, 0x00, 0x25, 0x11,
                                  0x16, 0x50, 0x35, 0x31, 0x30, 0x06, 0x00, 0x43, 0x18, 0x21, 0x0e,
                                  0x00, 0x00, 0x00, 0xff, 0xff, 0xfb, 0xff, 0xff, 0x00, 0x24};
    uint8_t two[2 * sizeof h02];
    memcpy(two, h02, sizeof h02);
    memcpy(two + sizeof h02, h02, sizeof h02);
    assert_int_equal(proto_jt600.detect(h02, sizeof h02), PROTO_DETECT_YES);
    assert_int_equal(proto_h02.detect(h02, sizeof h02), PROTO_DETECT_YES);
    int more;
    assert_ptr_equal(proto_detect(two, sizeof two, &more), &proto_h02);
    /* and a JT600 stream keeps being JT600 (vector JT600-M01 twice) */
    static const uint8_t m01[] = {
        0x24, 0x80, 0x00, 0x62, 0x00, 0x11, 0x19, 0x11, 0x00, 0x34, 0x18, 0x04, 0x21, 0x16, 0x22,
        0x59, 0x22, 0x34, 0x83, 0x10, 0x11, 0x35, 0x50, 0x54, 0x3f, 0x12, 0x98, 0x00, 0x00, 0x00,
        0x2d, 0x06, 0x00, 0x00, 0x00, 0x00, 0x20, 0xe0, 0x28, 0x10, 0x92, 0x28, 0x66, 0x1f, 0x00,
        0x01, 0x00, 0x00, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x00, 0x00, 0x01, 0xcc,
        0x01, 0x56};
    uint8_t mm[2 * sizeof m01];
    memcpy(mm, m01, sizeof m01);
    memcpy(mm + sizeof m01, m01, sizeof m01);
    assert_ptr_equal(proto_detect(mm, sizeof mm, &more), &proto_jt600);
}

static void test_sibling_switch_and_resync(void **state)
{
    (void)state;
    /* A JT701D connection that later sends a JT/T 808 frame, with garbage before it. */
    static uint8_t data[4096];
    const char *t1 = "(8000620011,@JT)";
    const uint8_t f808[] = {0x7e, 0x00, 0x02, 0x00, 0x00, 0x04, 0x30, 0x48, 0x32, 0x54,
                            0x65, 0x00, 0xb7, 0xca, 0x7e}; /* JT808-D093 */
    size_t len = 0;
    memcpy(data, t1, strlen(t1));
    len += strlen(t1);
    memcpy(data + len, "\x01\x02zz", 4);
    len += 4;
    memcpy(data + len, f808, sizeof f808);
    len += sizeof f808;
    struct cut c;
    cut_stream(data, len, 0, &c);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.proto[0], "jt600");
    assert_string_equal(c.proto[1], "jt808");
    assert_int_equal(c.off[1], strlen(t1) + 4);
    assert_int_equal(c.len[1], sizeof f808);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_detection),
        cmocka_unit_test(test_sibling_switch_and_resync),
        cmocka_unit_test(test_tie_broken_by_next_frame),
        cmocka_unit_test(test_chunking_all),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
