/* custody.h — a shipment's chain of custody: an append-only log of custody facts
 * (sealed, unsealed, handed over, tamper, unlock refused, command sent/confirmed …)
 * in which each entry carries the SHA-256 of the previous one over a canonical
 * encoding (docs/seals.md), so an edit or a deletion is detectable, also offline
 * from an export (scripts/custody_verify.py).
 *
 * Appends run inside the caller's open write transaction (BEGIN IMMEDIATE), the same
 * one that stores the event the fact comes from: a crash never leaves half a chain.
 * The shipment row keeps the head (custody_seq, custody_head) so a truncated chain is
 * detected too. Any thread, any connection (each call prepares what it needs).
 */
#ifndef ST_CUSTODY_H
#define ST_CUSTODY_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#include "../core/buf.h"
#include "../core/jsonw.h"

#define CUSTODY_HASH_HEX 64
#define CUSTODY_GENESIS "0000000000000000000000000000000000000000000000000000000000000000"

/* Kinds of custody fact (custody_log.kind). */
#define CUSTODY_KINDS                                                                          \
    "shipment_opened", "sealed", "unsealed", "handed_over", "tamper", "unlock_refused",      \
        "wrong_password", "card_refused", "command_sent", "command_confirmed", "command_failed", \
        "command_expired", "shipment_closed", "note"

struct custody_fact {
    int64_t shipment_id;
    int64_t time;            /* when it happened, UTC seconds */
    const char *kind;        /* one of CUSTODY_KINDS */
    const char *actor;       /* card id, user name, device uid …; NULL none */
    const char *source;      /* rfid, remote_static, api, device …; NULL none */
    int64_t device_id, event_id, command_id; /* 0 none */
    bool has_pos;
    double lat, lon;
    const char *detail;      /* a JSON object's text, NULL none (kept byte for byte) */
};

/** Append f to its shipment's chain within the caller's transaction. recorded_ms: server
 *  time of the write. 0 (entry id in *entry_id when not NULL), ST_ENOTFOUND (no such
 *  shipment), ST_EMALFORMED (unknown kind, detail not a JSON object, position out of
 *  range) or ST_EIO. Text that is not UTF-8 is stored and hashed with U+FFFD in its place. */
int custody_append(sqlite3 *db, const struct custody_fact *f, int64_t recorded_ms,
                   int64_t *entry_id);

/** Result of re-computing a chain. */
struct custody_check {
    bool ok;
    int64_t entries;         /* rows read */
    int64_t broken_id;       /* custody_log.id of the first broken link; 0 when ok or missing */
    int64_t broken_seq;      /* its seq (or the first missing seq) */
    char reason[160];        /* "hash does not match the entry's content", "seq 4 missing", … */
    char head[CUSTODY_HASH_HEX + 1]; /* the last entry's hash as re-computed */
};

/** Re-compute the shipment's chain from its first entry. 0 (see out->ok), ST_ENOTFOUND
 *  or ST_EIO. */
int custody_verify(sqlite3 *db, int64_t shipment_id, struct custody_check *out);

/** The canonical bytes of one entry, the input of its hash (appended to out). Fields are
 *  the custody_log row's; prev_hash is the previous entry's hash (CUSTODY_GENESIS first). */
struct custody_entry {
    int64_t shipment_id, seq, time, recorded_at;
    const char *kind, *actor, *source;
    int64_t device_id, event_id, command_id;
    bool has_pos;
    double lat, lon;
    const char *detail;
    const char *prev_hash;
};
void custody_canonical(const struct custody_entry *e, struct buf *out);

/** The custody_log columns custody_entry_read() takes, in this order. */
#define CUSTODY_ENTRY_COLUMNS                                                                  \
    "shipment_id, seq, time, recorded_at, kind, actor, source, device_id, lat, lon, event_id," \
    " command_id, detail, prev_hash"
/** Fill e from the row at st, columns col… as CUSTODY_ENTRY_COLUMNS; its strings point into
 *  st (valid until the next step). The one reading of a row, for verify and the API. */
void custody_entry_read(sqlite3_stmt *st, int col, struct custody_entry *e);
/** Write e's canonical fields as one JSON object exactly as they are hashed (integers for
 *  the times, 1e-7 degree integers for lat/lon, detail as its text), for offline checks. */
void custody_entry_json(const struct custody_entry *e, struct jsonw *w);

#endif
