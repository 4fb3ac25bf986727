/* stream_fuzz.c — libFuzzer target for the loop every connection runs
 * (src/proto/registry.c proto_stream_next): detection among all protocols, sibling
 * switching and resynchronisation, with the input cut at a fuzzer-chosen point as
 * two reads would cut it, and decode() of every frame found. Seeds: both corpora. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../src/proto/proto.h"
#include "fuzz_report.h"

static struct report reports[PROTO_MAX_REPORTS];
static uint8_t acc[2 * PROTO_FRAME_MAX + 65536];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size); /* libFuzzer's entry point */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 65536)
        return 0;
    size_t cut = data[0] % size + 1; /* first read: data[1..cut) */
    struct proto_stream ps = {0};
    struct proto_ctx ctx = {.now = 1700000000};
    size_t acc_len = 0;
    for (size_t pos = 1; pos < size;) {
        size_t n = pos < cut ? cut - pos : size - pos;
        memcpy(acc + acc_len, data + pos, n);
        acc_len += n;
        pos += n;
        size_t off = 0, flen = 0;
        int k;
        while ((k = proto_stream_next(&ps, acc, acc_len, &off, &flen)) == PROTO_STREAM_FRAME) {
            if (flen == 0 || off + flen > acc_len)
                __builtin_trap();
            struct proto_reply reply;
            size_t n_out = 0;
            (void)ps.proto->decode(&ctx, acc + off, flen, reports, PROTO_MAX_REPORTS, &n_out, &reply);
            if (n_out > PROTO_MAX_REPORTS || reply.len > PROTO_REPLY_MAX)
                __builtin_trap();
            fuzz_check_reports(reports, n_out);
            off += flen;
        }
        if (k == PROTO_STREAM_UNKNOWN) /* the server closes here */
            return 0;
        if (off > acc_len)
            __builtin_trap();
        memmove(acc, acc + off, acc_len - off);
        acc_len -= off;
        if (acc_len > PROTO_FRAME_MAX + 1) /* the server closes: frame over the size limit */
            return 0;
    }
    return 0;
}
