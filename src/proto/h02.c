/* h02.c — PLACEHOLDER while the decoder is being written: claims nothing. */
#include "proto.h"

static int detect(const uint8_t *buf, size_t len)
{
    (void)buf;
    (void)len;
    return PROTO_DETECT_NO;
}

static ptrdiff_t frame(const uint8_t *buf, size_t len)
{
    (void)buf;
    return -(ptrdiff_t)len;
}

static int decode(struct proto_ctx *ctx, const uint8_t *frame_, size_t len, struct report *out,
                  size_t max_out, size_t *n_out, struct proto_reply *reply)
{
    (void)ctx, (void)frame_, (void)len, (void)out, (void)max_out, (void)reply;
    *n_out = 0;
    return -4;
}

const struct proto_ops proto_h02 = {.name = "h02", .detect = detect, .frame = frame, .decode = decode};
