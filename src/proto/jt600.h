/* jt600.h — Jointech JT600 family (JT600 trackers, JT701/JT701D e-locks):
 * `$` binary frames and `( … )` text frames. The text decoder also serves the
 * JT709A text dialect `(ID,1,NNN,WORD,SUB,…)` arriving on JT/T 808 connections.
 * The protocol itself is `proto_jt600` (proto.h). */
#ifndef ST_JT600_H
#define ST_JT600_H

#include <stddef.h>
#include <stdint.h>

#include "proto.h"

/** Decode one `( … )` text frame (escaped as on the wire, both parentheses included). */
int jt600_decode_text(struct proto_ctx *ctx, const uint8_t *frame, size_t len, struct report *out,
                      size_t max_out, size_t *n_out, struct proto_reply *reply);

/** Encode a long-format `$` frame (protocol version 0x19, JT701D) carrying r's
 *  position, battery, lock state and alarms, with record serial `serial`.
 *  r->device_id must be 10 digits. Returns the frame length or a negative ST_E*. */
ptrdiff_t jt600_encode_long(const struct report *r, uint8_t serial, uint8_t *out, size_t cap);

/** Encode a P45 lock/unlock text frame for event `ev` of r (event serial `serial`).
 *  Returns the frame length or a negative ST_E*. */
ptrdiff_t jt600_encode_p45(const struct report *r, const struct report_event *ev, unsigned serial,
                           uint8_t *out, size_t cap);

#endif
