/* jt808.h — JT/T 808 (2011/2013/2019) with Jointech JT709A items or the standard
 * meanings (dialects below); the protocol itself is `proto_jt808` (proto.h), whose
 * encode_command() builds the downlink commands. These encoders serve replies, the
 * simulator and the tests. */
#ifndef ST_JT808_H
#define ST_JT808_H

#include <stddef.h>
#include <stdint.h>

#include "proto.h"

/* Vendor variants of the item, status and alarm meanings (proto_ctx.dialect). A decoder
 * cannot tell them apart from the bytes: the device's configuration chooses. */
#define JT808_DIALECT_JOINTECH 0 /* Jointech JT709A meanings (the default) */
#define JT808_DIALECT_STANDARD 1 /* JT/T 808-2013/2019 meanings + documented vendor items */

/** Dialect by its configuration name: "jointech" → 0, "standard" → 1 (exact, lower case);
 *  ST_ECONFIG for any other name or NULL. */
int jt808_dialect_by_name(const char *name);

/** Build an escaped wire frame (0x7E … checksum 0x7E, 2013 header) for `msg_id`
 *  to/from terminal `terminal` (up to 12 decimal digits, left-padded with 0).
 *  Returns the frame length or a negative ST_E* (ST_ERANGE when `cap` is short). */
ptrdiff_t jt808_encode_frame(uint16_t msg_id, const char *terminal, uint16_t serial,
                             const uint8_t *body, size_t body_len, uint8_t *out, size_t cap);

/** Build a 0x0200 location body from r: time (written as UTC), position, speed,
 *  course, validity, battery % (0xD4) and volts (0xD5), GSM signal (0x30),
 *  satellites (0x31), lock state (status bits 20/21), and for r's first event a
 *  Jointech 0x0B item (RFID unlock 0x22 with card, auto-lock 0x0D, rope cut 0x0C,
 *  wrong password 0x06) or alarm bit (low battery bit 7). Returns the body length
 *  or a negative ST_E*. */
ptrdiff_t jt808_encode_location(const struct report *r, uint8_t *body, size_t cap);

#endif
