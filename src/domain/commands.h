/* commands.h — remote commands to devices: queued in the commands table, delivered
 * when the device is (or comes) online, confirmed or failed by the device's answer,
 * expired after their TTL. States: queued → sent → confirmed | failed | expired;
 * refused (never queued: unlock outside the authorised zones) and cancelled (by an
 * operator while queued).
 *
 * Three threads use this module, each with its own connection and transaction:
 * the API creates (commands_create), the device server's thread-pool job takes a
 * connected device's queued commands and encodes them (commands_take), and the store's
 * writer matches answers (commands_on_answer) and expires (commands_expire) inside its
 * batch. Custody facts (command sent / confirmed / failed / expired, unlock refused)
 * are appended in the same transactions when the device has an open shipment.
 */
#ifndef ST_COMMANDS_H
#define ST_COMMANDS_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../model/report.h"
#include "../proto/proto.h"
#include "domain.h"

#define COMMAND_TTL_DEFAULT_S 86400
#define COMMAND_TTL_MAX_S (30 * 86400)
#define COMMAND_BYTES_MAX 1024  /* an encoded command at most */
#define COMMANDS_PER_TAKE 8     /* commands one delivery job sends at most */
#define COMMAND_TEMPLATE_MAX 512 /* a command template's characters at most */

/** What the API asks for. Strings may be NULL when unused. */
struct command_request {
    int64_t org_id, device_id, user_id;
    const char *user_name;
    const char *type;        /* "unlock", "unlock_dynamic", "set_password", "cards", "reboot",
                                "position", "interval", "custom", "lock" (refused: see below) */
    const char *password;    /* unlock: static password; set_password: the old one */
    const char *code;        /* unlock_dynamic: the dynamic password */
    const char *new_password;/* set_password */
    const char *cards;       /* cards: the protocol's card-list arguments */
    const char *text;        /* custom: raw text, or "hex:…" */
    long number;             /* interval: seconds */
    int64_t ttl_s;           /* 0 = COMMAND_TTL_DEFAULT_S */
    int64_t now;             /* UTC seconds */
};

enum command_outcome {
    COMMAND_QUEUED = 0,      /* stored; *id set */
    COMMAND_REFUSED,         /* unlock not authorised: stored as refused, custody logged; *id set */
    COMMAND_INVALID,         /* bad request (400): err says why, nothing stored */
    COMMAND_UNSUPPORTED,     /* the device's protocol / model has no such command (422) */
    COMMAND_NO_DEVICE,       /* no such device in the organisation (404) */
};

/** Validate, authorise and store a command, in its own transaction on db. Returns an
 *  enum command_outcome (err: the reason, for the answer and the log; *field: the request
 *  field at fault, a static string, NULL when none), or ST_EIO. */
int commands_create(sqlite3 *db, const struct command_request *req, int64_t *id,
                    const char **field, char *err, size_t errlen);

/** SQL of a commands.params value (col) with its secrets (passwords, codes, a rendered
 *  template) replaced by "***": what the API shows, and what a command keeps once done. */
#define COMMAND_PARAMS_MASKED(col)                                                          \
    "json_replace(" col ", '$.password', '***', '$.code', '***', '$.new_password', '***',"  \
    " '$.rendered', '***')"

/** Check a command template for a command type: type one of the types above except custom
 *  and lock, tpl 1..COMMAND_TEMPLATE_MAX characters whose `{…}` are only the placeholders
 *  {password}, {code}, {new_password}, {cards}, {number}, {uid}. 0, or ST_EMALFORMED with
 *  *field ("type" or "template") and err set. */
int commands_template_check(const char *type, const char *tpl, const char **field, char *err,
                            size_t errlen);

/** One command encoded for a connection. */
struct command_wire {
    int64_t id;
    size_t len;
    uint8_t bytes[COMMAND_BYTES_MAX];
};

/** A connected device's queued commands (oldest first, at most cap): expire the stale,
 *  encode the rest with proto and ctx (ctx->server_serial advances), mark them sent with
 *  the key their answer will carry, and log custody. One transaction. Returns the number
 *  written to out, or ST_EIO. Commands that fail to encode are marked failed. */
int commands_take(sqlite3 *db, int64_t device_id, const struct proto_ops *proto,
                  struct proto_ctx *ctx, int64_t now, struct command_wire *out, size_t cap);

/** The connection closed before the bytes of these sent commands went out: queue them
 *  again. */
int commands_untake(sqlite3 *db, const int64_t *ids, size_t n);

/** Writer thread, in its batch: if r answers a sent command of the device, mark it
 *  confirmed or failed (the answer kept in result), log custody, and fill *ev with a
 *  "command_failed" fact for the alert rules (ev->type NULL otherwise; its detail lasts
 *  until the thread's next call). 1 matched, 0 not, ST_EIO. */
int commands_on_answer(sqlite3 *db, int64_t device_id, int64_t shipment_id,
                       const struct report *r, int64_t now, struct domain_event *ev);

/** Writer thread: expire queued and sent commands past their TTL (custody logged). Rows
 *  expired, or ST_EIO. */
int commands_expire(sqlite3 *db, int64_t now);

/** Whether a device's queued commands exist (the server asks after a device connects). */
bool commands_has_queued(sqlite3 *db, int64_t device_id, int64_t now);

#endif
