/* jt808_fuzz.c — libFuzzer target for src/proto/jt808.c: detect(), the framing loop the
 * server runs, and decode() of every frame cut (in both dialects) and of the raw input
 * itself, plus re-encoding of each decoded position. Seeds: fuzz/corpus/jt808/. */
#include <stddef.h>
#include <stdint.h>

#include "../src/proto/jt808.h"
#include "../src/proto/proto.h"

static struct report reports[PROTO_MAX_REPORTS];

static void decode_one(const uint8_t *frame, size_t len, uint8_t dialect)
{
    struct proto_ctx ctx = {.now = 1700000000, .server_serial = 0xFFFF, .dialect = dialect};
    struct proto_reply reply;
    size_t n_out = 0;
    (void)proto_jt808.decode(&ctx, frame, len, reports, PROTO_MAX_REPORTS, &n_out, &reply);
    if (n_out > PROTO_MAX_REPORTS || reply.len > PROTO_REPLY_MAX)
        __builtin_trap();
    for (size_t i = 0; i < n_out; i++) {
        uint8_t body[256];
        if (reports[i].has_position)
            (void)jt808_encode_location(&reports[i], body, sizeof body);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size); /* libFuzzer's entry point */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    (void)proto_jt808.detect(data, size);
    size_t pos = 0;
    while (pos < size) {
        ptrdiff_t r = proto_jt808.frame(data + pos, size - pos);
        if (r == 0)
            break;
        size_t used = (size_t)(r < 0 ? -r : r);
        if (used > size - pos)
            __builtin_trap();
        if (r > 0) {
            decode_one(data + pos, used, 0);
            decode_one(data + pos, used, 1);
        }
        pos += used;
    }
    decode_one(data, size, 0);
    return 0;
}
