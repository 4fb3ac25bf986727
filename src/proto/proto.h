/* proto.h — the interface every tracker protocol implements, and the registry.
 *
 * One protocol per file (src/proto/<name>.c), each exporting one
 * `const struct proto_ops proto_<name>`. Protocol code is pure: no libuv,
 * SQLite, logging or allocation, so it is reusable by the server, the
 * simulator, `sealtrack decode`, the unit tests and the fuzzers.
 */
#ifndef ST_PROTO_H
#define ST_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../model/report.h"

#define PROTO_REPLY_MAX 512     /* largest reply one frame can owe */
#define PROTO_MAX_REPORTS 64    /* records one frame may carry (JT/T 808 0x0704 batches, JT600 tracks) */
#define PROTO_FRAME_MAX 4096    /* largest frame any protocol here accepts (wire bytes) */

/* Detection scores. */
#define PROTO_DETECT_NO 0       /* these bytes are not this protocol */
#define PROTO_DETECT_MAYBE 50   /* could be, need more bytes to tell */
#define PROTO_DETECT_YES 100    /* certainly this protocol */

/** The bytes a device is owed for one frame; len 0 = no reply. */
struct proto_reply {
    size_t len;
    uint8_t buf[PROTO_REPLY_MAX];
};

/** Per-connection state a protocol may read and update (owned by the caller). */
struct proto_ctx {
    int64_t now;            /* current time, UTC seconds: time answers (JT600 P22, JT808 BASE,2) */
    uint16_t server_serial; /* serial of the next server-originated JT/T 808 frame */
    uint8_t dialect;        /* vendor variant of a shared protocol; 0 = the protocol's default
                               (JT/T 808: Jointech item and bit meanings) */
};

/** A downlink command, protocol-neutral. Text fields may be NULL when unused. */
enum proto_command_type {
    PROTO_CMD_CUSTOM = 1,    /* text: the protocol's own command text (or hex for binary protocols) */
    PROTO_CMD_REBOOT,
    PROTO_CMD_POSITION,      /* ask for a position now */
    PROTO_CMD_INTERVAL,      /* number: report interval in seconds */
    PROTO_CMD_ENGINE_STOP,   /* vehicle trackers: cut fuel / ignition */
    PROTO_CMD_ENGINE_RESUME,
    PROTO_CMD_UNLOCK,        /* e-locks: text = the password (static) */
    PROTO_CMD_UNLOCK_DYNAMIC,/* e-locks: text = the current dynamic password */
    PROTO_CMD_SET_PASSWORD,  /* e-locks: text = new password, text2 = old password */
    PROTO_CMD_CARDS,         /* e-locks: text = the protocol's card-list arguments */
};

struct proto_command {
    uint8_t type;            /* enum proto_command_type */
    const char *device_id;   /* as the device names itself */
    const char *text, *text2;
    long number;
};

struct proto_ops {
    const char *name;
    /** How sure is this protocol that `buf` starts one of its frames (PROTO_DETECT_*). */
    int (*detect)(const uint8_t *buf, size_t len);
    /** Cut the next frame from `buf`: > 0 its length in bytes; 0 need more bytes;
     *  < 0 the first -n bytes are garbage to skip (resynchronisation). */
    ptrdiff_t (*frame)(const uint8_t *buf, size_t len);
    /** Decode one frame (as cut by frame()) into out[0..max_out), setting *n_out,
     *  and fill `reply` with what the device is owed once the reports are stored.
     *  Returns 0; ST_EUNSUPPORTED for a well-formed frame of an unknown type
     *  (reports may still carry the device id, reply may be set); or another
     *  negative ST_E* code for a malformed frame (no reports, *n_out 0; out[0].device_id
     *  still names the device when the header was readable, for the log line). */
    int (*decode)(struct proto_ctx *ctx, const uint8_t *frame, size_t len, struct report *out,
                  size_t max_out, size_t *n_out, struct proto_reply *reply);
    /** Encode a downlink command into out[0..cap), setting *len. Returns 0,
     *  ST_EUNSUPPORTED when the protocol (or this build) has no such command,
     *  ST_EMALFORMED for bad arguments, ST_ERANGE when cap is short. NULL when the
     *  protocol has no downlink commands at all. */
    int (*encode_command)(struct proto_ctx *ctx, const struct proto_command *cmd, uint8_t *out,
                          size_t cap, size_t *len);
    /** proto_ctx.dialect value for a vendor variant's name ("standard", …), or -1 when the
     *  protocol has no such variant. NULL when the protocol has no variants. */
    int (*dialect_by_name)(const char *name);
};

extern const struct proto_ops proto_jt600;
extern const struct proto_ops proto_jt808;
extern const struct proto_ops proto_gt06;
extern const struct proto_ops proto_watch;
extern const struct proto_ops proto_h02;
extern const struct proto_ops proto_tk103;
extern const struct proto_ops proto_gps103;
extern const struct proto_ops proto_teltonika;
extern const struct proto_ops proto_meitrack;
extern const struct proto_ops proto_queclink;
extern const struct proto_ops proto_suntech;
extern const struct proto_ops proto_osmand;
extern const struct proto_ops proto_wialon;

/** NULL-terminated list of every protocol, in detection order. */
extern const struct proto_ops *const proto_registry[];

/** printf the reply into reply->buf; a reply that does not fit is left empty (len 0). */
void proto_reply_printf(struct proto_reply *reply, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/** Command type by name ("reboot", "unlock", …), 0 when unknown. */
int proto_command_type(const char *name);

/** True when some protocol reads devices in a variant of this name (devices.dialect). */
bool proto_dialect_known(const char *name);

/** Protocol by name, or NULL. */
const struct proto_ops *proto_find(const char *name);

/** The protocol whose detect() is certain about `buf`; NULL with *need_more set
 *  when some protocol still says maybe; NULL with *need_more clear when none matches. */
const struct proto_ops *proto_detect(const uint8_t *buf, size_t len, int *need_more);

/** Cutting a byte stream into frames of whichever protocol it speaks: the one
 *  loop shared by the TCP server, UDP datagrams and `sealtrack decode`. */
struct proto_stream {
    const struct proto_ops *proto; /* detected protocol, NULL until known */
    size_t skipped;                /* garbage bytes skipped so far (caller may reset) */
};

enum proto_stream_result {
    PROTO_STREAM_FRAME,     /* a frame at buf + *off, *frame_len bytes */
    PROTO_STREAM_NEED_MORE, /* the bytes from *off on are an incomplete frame */
    PROTO_STREAM_UNKNOWN,   /* the bytes at *off match no protocol (after PROTO_DETECT_BYTES) */
};

/* Undecided after this many bytes: not a protocol we speak. A JT/T 808 first frame is
 * only recognised whole (length and checksum), so the bound is the largest frame. */
#define PROTO_DETECT_BYTES PROTO_FRAME_MAX

/** Find the next frame in buf[*off..len), skipping garbage (advancing *off and
 *  ps->skipped). Detects the protocol on first use; switches to a sibling
 *  protocol when the current one calls the bytes garbage and the sibling is
 *  certain (a JT709A sends JT/T 808 binary and `(` texts on one connection). */
int proto_stream_next(struct proto_stream *ps, const uint8_t *buf, size_t len, size_t *off,
                      size_t *frame_len);

#endif
