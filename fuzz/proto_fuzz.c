/* proto_fuzz.c — one libFuzzer target per protocol, built with -DFUZZ_PROTO=proto_<name>
 * (fuzz/meson.build): detect(), the framing loop the server runs over the input, and
 * decode() of every frame cut and of the whole input; invariants trap. Seeds: the
 * protocol's vector file (scripts/fuzz.sh). */
#include <stddef.h>
#include <stdint.h>

#include "../src/core/err.h"
#include "../src/proto/proto.h"
#include "fuzz_report.h"

#ifndef FUZZ_PROTO
#error "build with -DFUZZ_PROTO=proto_<name>"
#endif

static struct report reports[PROTO_MAX_REPORTS];

static void decode_one(const uint8_t *frame, size_t len)
{
    struct proto_ctx ctx = {.now = 1767225600};
    struct proto_reply reply;
    size_t n = 0;
    int rc = FUZZ_PROTO.decode(&ctx, frame, len, reports, PROTO_MAX_REPORTS, &n, &reply);
    if (n > PROTO_MAX_REPORTS || reply.len > PROTO_REPLY_MAX || (rc < 0 && rc != ST_EUNSUPPORTED && n != 0))
        __builtin_trap(); /* only ST_EUNSUPPORTED may carry a report (naming the device) */
    fuzz_check_reports(reports, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size); /* libFuzzer's entry point */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int score = FUZZ_PROTO.detect(data, size);
    if (score != PROTO_DETECT_NO && score != PROTO_DETECT_MAYBE && score != PROTO_DETECT_YES)
        __builtin_trap();
    size_t off = 0;
    while (off < size) {
        ptrdiff_t fl = FUZZ_PROTO.frame(data + off, size - off);
        if (fl == 0)
            break;
        if (fl < 0) {
            if ((size_t)-fl > size - off)
                __builtin_trap();
            off += (size_t)-fl;
            continue;
        }
        if ((size_t)fl > size - off)
            __builtin_trap();
        decode_one(data + off, (size_t)fl);
        off += (size_t)fl;
    }
    if (size <= PROTO_FRAME_MAX)
        decode_one(data, size); /* decode() must survive bytes its framer would refuse */
    return 0;
}
