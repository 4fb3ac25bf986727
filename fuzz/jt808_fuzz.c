/* jt808_fuzz.c — libFuzzer target for src/proto/jt808.c: detect(), the framing loop the
 * server runs, and decode() of every frame cut (in both dialects) and of the raw input
 * itself, plus re-encoding of each decoded position, and the input as a downlink command
 * (first byte: type and terminal, the rest: text). Seeds: fuzz/corpus/jt808/. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../src/proto/jt808.h"
#include "../src/proto/proto.h"
#include "fuzz_report.h"

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
    fuzz_check_reports(reports, n_out);
}

/* A produced command is exactly one whole frame, and the serial moved only then. */
static void encode_from(const uint8_t *data, size_t size)
{
    static const char *const ids[] = {"013511221122", "123456789012345", "00000866496077582164",
                                      NULL};
    static char text[1200];
    static uint8_t out[2600];
    if (size == 0)
        return;
    size_t n = size - 1 < sizeof text - 1 ? size - 1 : sizeof text - 1;
    memcpy(text, data + 1, n);
    text[n] = '\0';
    struct proto_ctx ctx = {.server_serial = 0xFFFF};
    struct proto_command cmd = {.type = (uint8_t)(data[0] & 15),
                                .device_id = ids[data[0] >> 4 & 3] ? ids[data[0] >> 4 & 3] : text,
                                .text = data[0] & 64 ? text : NULL,
                                .number = (long)n * 977 - 1000};
    size_t len = 1;
    int rc = proto_jt808.encode_command(&ctx, &cmd, out, data[0] & 128 ? 40 : sizeof out, &len);
    if ((rc == 0) != (len > 0) || (rc == 0) != (ctx.server_serial == 0) ||
        (rc == 0 && proto_jt808.frame(out, len) != (ptrdiff_t)len))
        __builtin_trap();
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
    encode_from(data, size);
    return 0;
}
