/* jt600_fuzz.c — libFuzzer target for src/proto/jt600.c: detect, the framing
 * loop and decode on arbitrary bytes, the text decoder on the raw input, and the
 * input as a downlink command (first byte: type, the rest: text and text2). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "src/core/err.h"
#include "src/proto/jt600.h"
#include "fuzz_report.h"

static struct report reports[PROTO_MAX_REPORTS];

/* Every decode must leave the outputs consistent, whatever it returns. */
static void decode_checked(int (*decode)(struct proto_ctx *, const uint8_t *, size_t,
                                         struct report *, size_t, size_t *, struct proto_reply *),
                           const uint8_t *frame, size_t len)
{
    struct proto_ctx ctx = {.now = 1787566500};
    struct proto_reply reply;
    size_t n = 0;
    int rc = decode(&ctx, frame, len, reports, PROTO_MAX_REPORTS, &n, &reply);
    if (n > PROTO_MAX_REPORTS || reply.len > PROTO_REPLY_MAX ||
        (rc < 0 && rc != ST_EUNSUPPORTED && n != 0))
        __builtin_trap();
    for (size_t i = 0; i < n; i++)
        if (memchr(reports[i].device_id, '\0', sizeof reports[i].device_id) == NULL)
            __builtin_trap();
    fuzz_check_reports(reports, n);
}

/* A produced command is one whole `( … )` text frame. */
static void encode_from(const uint8_t *data, size_t size)
{
    static char text[PROTO_FRAME_MAX + 16];
    static uint8_t out[PROTO_FRAME_MAX + 16];
    if (size == 0)
        return;
    size_t n = size - 1 < sizeof text - 1 ? size - 1 : sizeof text - 1;
    memcpy(text, data + 1, n);
    text[n] = '\0';
    const char *nul = memchr(data + 1, 0, n); /* text2 after the first NUL, if any */
    struct proto_command cmd = {.type = (uint8_t)(data[0] & 15),
                                .text = data[0] & 64 ? NULL : text,
                                .text2 = nul ? text + (nul - (const char *)(data + 1)) + 1 : NULL};
    struct proto_ctx ctx = {.now = 1787566500};
    size_t len = 1;
    int rc = proto_jt600.encode_command(&ctx, &cmd, out, data[0] & 128 ? 12 : sizeof out, &len);
    if ((rc == 0) != (len > 0) ||
        (rc == 0 && (out[0] != '(' || proto_jt600.frame(out, len) != (ptrdiff_t)len)))
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size); /* libFuzzer's entry point */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int score = proto_jt600.detect(data, size);
    if (score != PROTO_DETECT_NO && score != PROTO_DETECT_MAYBE && score != PROTO_DETECT_YES)
        __builtin_trap();
    size_t off = 0;
    while (off < size) {
        ptrdiff_t r = proto_jt600.frame(data + off, size - off);
        if (r == 0)
            break;
        if (r < 0) {
            if ((size_t)-r > size - off)
                __builtin_trap();
            off += (size_t)-r;
            continue;
        }
        if ((size_t)r > size - off || r > PROTO_FRAME_MAX)
            __builtin_trap();
        decode_checked(proto_jt600.decode, data + off, (size_t)r);
        off += (size_t)r;
    }
    decode_checked(proto_jt600.decode, data, size);
    decode_checked(jt600_decode_text, data, size);
    encode_from(data, size);
    return 0;
}
