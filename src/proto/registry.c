/* registry.c — the table of protocols and first-bytes detection. */
#include "proto.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const struct proto_ops *const proto_registry[] = {
    &proto_jt808,
    &proto_jt600,
    &proto_gt06,
    &proto_watch,
    &proto_h02,
    &proto_tk103,
    &proto_gps103,
    &proto_teltonika,
    &proto_meitrack,
    &proto_queclink,
    &proto_suntech,
    &proto_osmand,
    &proto_wialon,
    NULL,
};

static const char *const command_names[] = {
    [PROTO_CMD_CUSTOM] = "custom",
    [PROTO_CMD_REBOOT] = "reboot",
    [PROTO_CMD_POSITION] = "position",
    [PROTO_CMD_INTERVAL] = "interval",
    [PROTO_CMD_ENGINE_STOP] = "engine_stop",
    [PROTO_CMD_ENGINE_RESUME] = "engine_resume",
    [PROTO_CMD_UNLOCK] = "unlock",
    [PROTO_CMD_UNLOCK_DYNAMIC] = "unlock_dynamic",
    [PROTO_CMD_SET_PASSWORD] = "set_password",
    [PROTO_CMD_CARDS] = "cards",
};

bool proto_dialect_known(const char *name)
{
    for (size_t i = 0; proto_registry[i]; i++)
        if (proto_registry[i]->dialect_by_name && proto_registry[i]->dialect_by_name(name) >= 0)
            return true;
    return false;
}

int proto_command_type(const char *name)
{
    for (size_t i = 1; i < sizeof command_names / sizeof command_names[0]; i++)
        if (strcmp(command_names[i], name) == 0)
            return (int)i;
    return 0;
}

const struct proto_ops *proto_find(const char *name)
{
    for (size_t i = 0; proto_registry[i]; i++)
        if (strcmp(proto_registry[i]->name, name) == 0)
            return proto_registry[i];
    return NULL;
}

/* Does the frame `p` cuts at buf end where another frame of p starts? The structural
 * tie-break between protocols whose first frames look alike (JT600 and H02 binary `$`
 * frames share id and time layouts; H02's has no length field). */
static int next_frame_follows(const struct proto_ops *p, const uint8_t *buf, size_t len)
{
    ptrdiff_t fl = p->frame(buf, len);
    return fl > 0 && (size_t)fl < len && p->detect(buf + fl, len - (size_t)fl) > PROTO_DETECT_NO;
}

/* A protocol other than `skip` (NULL: any) that is certain (returned) or may be (*maybe) at
 * buf. When several are certain, the one whose next frame follows its first wins; without
 * that evidence (a single frame), the first in registry order. */
static const struct proto_ops *detect_except(const struct proto_ops *skip, const uint8_t *buf,
                                             size_t len, int *maybe)
{
    const struct proto_ops *first = NULL;
    *maybe = 0;
    for (size_t i = 0; proto_registry[i]; i++) {
        const struct proto_ops *p = proto_registry[i];
        if (p == skip)
            continue;
        int score = p->detect(buf, len);
        if (score > PROTO_DETECT_NO && score < PROTO_DETECT_YES)
            *maybe = 1;
        if (score < PROTO_DETECT_YES)
            continue;
        if (!first) {
            first = p;
            if (next_frame_follows(p, buf, len))
                return p;
        } else if (next_frame_follows(p, buf, len)) {
            return p;
        }
    }
    return first;
}

const struct proto_ops *proto_detect(const uint8_t *buf, size_t len, int *need_more)
{
    return detect_except(NULL, buf, len, need_more);
}

/* Bytes some protocol's frame can start with (its detect() on that byte alone is not "no"):
 * skipping garbage looks for a sibling only there, not at every byte (a flood of garbage
 * otherwise costs every detector at every offset). */
static uint8_t can_start[256];
static pthread_once_t can_start_once = PTHREAD_ONCE_INIT;

static void can_start_init(void)
{
    for (int b = 0; b < 256; b++) {
        uint8_t byte = (uint8_t)b;
        for (size_t i = 0; proto_registry[i]; i++)
            if (proto_registry[i]->detect(&byte, 1) > PROTO_DETECT_NO)
                can_start[b] = 1;
    }
}

int proto_stream_next(struct proto_stream *ps, const uint8_t *buf, size_t len, size_t *off,
                      size_t *frame_len)
{
    pthread_once(&can_start_once, can_start_init);
    while (*off < len) {
        const uint8_t *p = buf + *off;
        size_t n = len - *off;
        int more;
        if (!ps->proto) {
            ps->proto = proto_detect(p, n, &more);
            if (!ps->proto)
                return more && n < PROTO_DETECT_BYTES ? PROTO_STREAM_NEED_MORE
                                                      : PROTO_STREAM_UNKNOWN;
        }
        ptrdiff_t fl = ps->proto->frame(p, n);
        if (fl > 0) {
            *frame_len = (size_t)fl;
            return PROTO_STREAM_FRAME;
        }
        if (fl == 0)
            return PROTO_STREAM_NEED_MORE;
        /* Garbage for the current protocol. A sibling's frame may start inside
         * it: skip only up to where another protocol is (or may be) speaking. */
        size_t skip = (size_t)-fl;
        for (size_t i = 0; i < skip; i++) {
            if (i > 0 && !can_start[p[i]])
                continue;
            const struct proto_ops *other = detect_except(ps->proto, p + i, n - i, &more);
            if (other && i == 0) {
                ps->proto = other;
                skip = 0;
                break;
            }
            if (other || (more && n - i < PROTO_DETECT_BYTES)) {
                if (i == 0)
                    return PROTO_STREAM_NEED_MORE;
                skip = i;
                break;
            }
        }
        /* Line endings between text frames are not worth a log line. */
        for (size_t i = 0; i < skip; i++)
            if (p[i] != '\r' && p[i] != '\n') {
                ps->skipped += skip;
                break;
            }
        *off += skip;
    }
    return PROTO_STREAM_NEED_MORE;
}

void proto_reply_printf(struct proto_reply *reply, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf((char *)reply->buf, sizeof reply->buf, fmt, ap);
    va_end(ap);
    reply->len = n > 0 && (size_t)n < sizeof reply->buf ? (size_t)n : 0;
}
