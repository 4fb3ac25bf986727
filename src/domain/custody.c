/* custody.c — the hash-chained custody log (custody.h; the encoding is specified in
 * docs/seals.md "Chain of custody" and re-implemented by scripts/custody_verify.py).
 *
 * Invariants: entries of a shipment have seq 1, 2, 3 … without gap; entry n's prev_hash
 * is entry n-1's hash (CUSTODY_GENESIS for seq 1); its hash is the SHA-256 of the
 * canonical bytes of its own stored row; the shipment row holds the last seq and hash.
 * Everything hashed is exactly what is stored, so the chain can be re-computed from the
 * rows alone: positions are rounded to 1e-7 degree before both, text that is not UTF-8
 * is made UTF-8 before both (an export must carry it as JSON text). Appends are rare:
 * statements are prepared per call, which works on any connection. */
#include "custody.h"

#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "../core/err.h"
#include "../core/hex.h"
#include "../core/log.h"
#include "../core/mem.h"
#include "../core/utf8.h"

static const char *const kinds[] = {CUSTODY_KINDS};
#define N_KINDS (sizeof kinds / sizeof kinds[0])
#define E7 10000000.0

static bool kind_known(const char *kind)
{
    for (size_t i = 0; kind && i < N_KINDS; i++)
        if (strcmp(kinds[i], kind) == 0)
            return true;
    return false;
}

/* A JSON string as the canonical form wants it: only '"', '\' and the C0 controls are
 * escaped (controls always as \u00xx, never \n), every other byte is copied. */
static void canon_str(struct buf *out, const char *s)
{
    if (!s) {
        buf_append(out, "null", 4);
        return;
    }
    buf_append(out, "\"", 1);
    size_t run = 0, i = 0;
    for (; s[i]; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        buf_append(out, s + run, i - run);
        run = i + 1;
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            buf_append(out, esc, 2);
        } else
            buf_printf(out, "\\u%04x", c);
    }
    buf_append(out, s + run, i - run);
    buf_append(out, "\"", 1);
}

/* 0 stands for "none" in the id fields. */
static void canon_id(struct buf *out, int64_t v)
{
    if (v)
        buf_printf(out, "%" PRId64, v);
    else
        buf_append(out, "null", 4);
}

static void canon_e7(struct buf *out, bool has, double deg)
{
    if (has)
        buf_printf(out, "%lld", llround(deg * E7));
    else
        buf_append(out, "null", 4);
}

void custody_canonical(const struct custody_entry *e, struct buf *out)
{
    buf_append_str(out, "{\"actor\":");
    canon_str(out, e->actor);
    buf_append_str(out, ",\"command_id\":");
    canon_id(out, e->command_id);
    buf_append_str(out, ",\"detail\":");
    canon_str(out, e->detail);
    buf_append_str(out, ",\"device_id\":");
    canon_id(out, e->device_id);
    buf_append_str(out, ",\"event_id\":");
    canon_id(out, e->event_id);
    buf_append_str(out, ",\"kind\":");
    canon_str(out, e->kind);
    buf_append_str(out, ",\"lat\":");
    canon_e7(out, e->has_pos, e->lat);
    buf_append_str(out, ",\"lon\":");
    canon_e7(out, e->has_pos, e->lon);
    buf_append_str(out, ",\"prev_hash\":");
    canon_str(out, e->prev_hash);
    buf_printf(out, ",\"recorded_at\":%" PRId64 ",\"seq\":%" PRId64 ",\"shipment_id\":%" PRId64,
               e->recorded_at, e->seq, e->shipment_id);
    buf_append_str(out, ",\"source\":");
    canon_str(out, e->source);
    buf_printf(out, ",\"time\":%" PRId64 "}", e->time);
}

static void json_str_or_null(struct jsonw *w, const char *key, const char *s)
{
    jsonw_key(w, key);
    if (s)
        jsonw_str(w, s);
    else
        jsonw_null(w);
}

static void json_int_or_null(struct jsonw *w, const char *key, bool has, int64_t v)
{
    jsonw_key(w, key);
    if (has)
        jsonw_int(w, v);
    else
        jsonw_null(w);
}

void custody_entry_json(const struct custody_entry *e, struct jsonw *w)
{
    json_str_or_null(w, "actor", e->actor);
    json_int_or_null(w, "command_id", e->command_id, e->command_id);
    json_str_or_null(w, "detail", e->detail);
    json_int_or_null(w, "device_id", e->device_id, e->device_id);
    json_int_or_null(w, "event_id", e->event_id, e->event_id);
    json_str_or_null(w, "kind", e->kind);
    json_int_or_null(w, "lat", e->has_pos, e->has_pos ? llround(e->lat * E7) : 0);
    json_int_or_null(w, "lon", e->has_pos, e->has_pos ? llround(e->lon * E7) : 0);
    json_str_or_null(w, "prev_hash", e->prev_hash);
    json_int_or_null(w, "recorded_at", true, e->recorded_at);
    json_int_or_null(w, "seq", true, e->seq);
    json_int_or_null(w, "shipment_id", true, e->shipment_id);
    json_str_or_null(w, "source", e->source);
    json_int_or_null(w, "time", true, e->time);
}

static const char *col_text(sqlite3_stmt *st, int col)
{
    return (const char *)sqlite3_column_text(st, col);
}

void custody_entry_read(sqlite3_stmt *st, int col, struct custody_entry *e)
{
    *e = (struct custody_entry){
        .shipment_id = sqlite3_column_int64(st, col),
        .seq = sqlite3_column_int64(st, col + 1),
        .time = sqlite3_column_int64(st, col + 2),
        .recorded_at = sqlite3_column_int64(st, col + 3),
        .kind = col_text(st, col + 4),
        .actor = col_text(st, col + 5),
        .source = col_text(st, col + 6),
        .device_id = sqlite3_column_int64(st, col + 7),
        .has_pos = sqlite3_column_type(st, col + 8) != SQLITE_NULL &&
                   sqlite3_column_type(st, col + 9) != SQLITE_NULL,
        .lat = sqlite3_column_double(st, col + 8),
        .lon = sqlite3_column_double(st, col + 9),
        .event_id = sqlite3_column_int64(st, col + 10),
        .command_id = sqlite3_column_int64(st, col + 11),
        .detail = col_text(st, col + 12),
        .prev_hash = col_text(st, col + 13),
    };
}

/* hex[CUSTODY_HASH_HEX + 1] = SHA-256 of e's canonical bytes; scratch is reused. */
static void entry_hash(const struct custody_entry *e, struct buf *scratch, char *hex)
{
    unsigned char digest[crypto_hash_sha256_BYTES];
    scratch->len = 0;
    custody_canonical(e, scratch);
    crypto_hash_sha256(digest, scratch->data, scratch->len);
    st_hex_encode(digest, sizeof digest, hex, CUSTODY_HASH_HEX + 1);
}

/* s with every byte that does not start well-formed UTF-8 replaced by U+FFFD, in *owned
 * (caller frees) when a change was needed; else s itself. */
static const char *utf8_clean(const char *s, char **owned)
{
    *owned = NULL;
    if (!s)
        return NULL;
    size_t n = strlen(s), i = 0;
    struct buf b = {0};
    size_t run = 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        size_t len = c < 0x80 ? 1 : st_utf8_valid_len((const unsigned char *)s + i, n - i);
        if (len) {
            i += len;
            continue;
        }
        buf_append(&b, s + run, i - run);
        buf_append(&b, "\xef\xbf\xbd", 3);
        run = ++i;
    }
    if (!b.data)
        return s;
    buf_append(&b, s + run, n - run + 1); /* with the NUL */
    *owned = (char *)b.data;
    return *owned;
}

static bool detail_is_object(const char *detail)
{
    json_t *j = json_loads(detail, JSON_REJECT_DUPLICATES, NULL);
    bool ok = json_is_object(j);
    json_decref(j);
    return ok;
}

static void bind_text_or_null(sqlite3_stmt *st, int i, const char *s)
{
    if (s)
        sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

static void bind_id_or_null(sqlite3_stmt *st, int i, int64_t v)
{
    if (v)
        sqlite3_bind_int64(st, i, v);
    else
        sqlite3_bind_null(st, i);
}

static int prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st)
{
    if (sqlite3_prepare_v3(db, sql, -1, 0, st, NULL) == SQLITE_OK)
        return 0;
    st_log(ST_LOG_ERROR, "event=custody_db_error reason=\"%s\"", sqlite3_errmsg(db));
    return ST_EIO;
}

/* Read the shipment's head: 0, ST_ENOTFOUND or ST_EIO. head gets CUSTODY_GENESIS when
 * the chain is empty. */
static int read_head(sqlite3 *db, int64_t shipment_id, int64_t *seq, char *head)
{
    sqlite3_stmt *st;
    int rc = prepare(db, "SELECT custody_seq, custody_head FROM shipments WHERE id = ?1", &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, shipment_id);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        const char *h = (const char *)sqlite3_column_text(st, 1);
        *seq = sqlite3_column_int64(st, 0);
        snprintf(head, CUSTODY_HASH_HEX + 1, "%s", h ? h : CUSTODY_GENESIS);
    } else if (step == SQLITE_DONE)
        rc = ST_ENOTFOUND;
    else {
        st_log(ST_LOG_ERROR, "event=custody_db_error reason=\"%s\"", sqlite3_errmsg(db));
        rc = ST_EIO;
    }
    sqlite3_finalize(st);
    return rc;
}

int custody_append(sqlite3 *db, const struct custody_fact *f, int64_t recorded_ms,
                   int64_t *entry_id)
{
    if (!kind_known(f->kind) || (f->detail && !detail_is_object(f->detail)) ||
        (f->has_pos && !(fabs(f->lat) <= 90 && fabs(f->lon) <= 180)))
        return ST_EMALFORMED;
    char *actor_owned, *source_owned;
    char prev[CUSTODY_HASH_HEX + 1], hash[CUSTODY_HASH_HEX + 1];
    struct buf scratch = {0};
    sqlite3_stmt *st = NULL;
    int64_t seq = 0;
    struct custody_entry e = {
        .shipment_id = f->shipment_id,
        .time = f->time,
        .recorded_at = recorded_ms,
        .kind = f->kind,
        .actor = utf8_clean(f->actor, &actor_owned),
        .source = utf8_clean(f->source, &source_owned),
        .device_id = f->device_id,
        .event_id = f->event_id,
        .command_id = f->command_id,
        .has_pos = f->has_pos,
        /* stored as the rounded value, so the row re-computes to the same integers */
        .lat = f->has_pos ? (double)llround(f->lat * E7) / E7 : 0,
        .lon = f->has_pos ? (double)llround(f->lon * E7) / E7 : 0,
        .detail = f->detail,
        .prev_hash = prev,
    };
    int rc = read_head(db, f->shipment_id, &seq, prev);
    if (rc)
        goto done;
    e.seq = seq + 1;
    entry_hash(&e, &scratch, hash);
    rc = ST_EIO;
    if (prepare(db,
                "INSERT INTO custody_log(shipment_id, seq, time, recorded_at, kind, actor,"
                " source, device_id, lat, lon, event_id, command_id, detail, prev_hash, hash)"
                " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
                &st))
        goto done;
    sqlite3_bind_int64(st, 1, e.shipment_id);
    sqlite3_bind_int64(st, 2, e.seq);
    sqlite3_bind_int64(st, 3, e.time);
    sqlite3_bind_int64(st, 4, e.recorded_at);
    sqlite3_bind_text(st, 5, e.kind, -1, SQLITE_STATIC);
    bind_text_or_null(st, 6, e.actor);
    bind_text_or_null(st, 7, e.source);
    bind_id_or_null(st, 8, e.device_id);
    if (e.has_pos) {
        sqlite3_bind_double(st, 9, e.lat);
        sqlite3_bind_double(st, 10, e.lon);
    }
    bind_id_or_null(st, 11, e.event_id);
    bind_id_or_null(st, 12, e.command_id);
    bind_text_or_null(st, 13, e.detail);
    sqlite3_bind_text(st, 14, prev, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 15, hash, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE)
        goto db_fail;
    int64_t id = sqlite3_last_insert_rowid(db);
    sqlite3_finalize(st);
    if (prepare(db, "UPDATE shipments SET custody_seq = ?1, custody_head = ?2 WHERE id = ?3", &st))
        goto done;
    sqlite3_bind_int64(st, 1, e.seq);
    sqlite3_bind_text(st, 2, hash, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, e.shipment_id);
    if (sqlite3_step(st) != SQLITE_DONE)
        goto db_fail;
    if (entry_id)
        *entry_id = id;
    rc = 0;
    goto done;
db_fail:
    st_log(ST_LOG_ERROR, "event=custody_db_error shipment=%" PRId64 " reason=\"%s\"",
           f->shipment_id, sqlite3_errmsg(db));
done:
    sqlite3_finalize(st);
    buf_free(&scratch);
    st_free(actor_owned);
    st_free(source_owned);
    return rc;
}

static void broken(struct custody_check *out, int64_t id, int64_t seq, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void broken(struct custody_check *out, int64_t id, int64_t seq, const char *fmt, ...)
{
    va_list ap;
    out->ok = false;
    out->broken_id = id;
    out->broken_seq = seq;
    va_start(ap, fmt);
    vsnprintf(out->reason, sizeof out->reason, fmt, ap);
    va_end(ap);
}

int custody_verify(sqlite3 *db, int64_t shipment_id, struct custody_check *out)
{
    memset(out, 0, sizeof *out);
    out->ok = true;
    char head_stored[CUSTODY_HASH_HEX + 1], prev_stored[CUSTODY_HASH_HEX + 1];
    int64_t head_seq;
    sqlite3_stmt *st = NULL;
    struct buf scratch = {0};
    /* The head and the rows from one snapshot: an append between the two reads would look
     * like an entry beyond the head. A savepoint nests in the caller's transaction if any. */
    if (sqlite3_exec(db, "SAVEPOINT custody_verify", NULL, NULL, NULL) != SQLITE_OK) {
        st_log(ST_LOG_ERROR, "event=custody_db_error reason=\"%s\"", sqlite3_errmsg(db));
        return ST_EIO;
    }
    int rc = read_head(db, shipment_id, &head_seq, head_stored);
    if (rc || (rc = prepare(db,
                            "SELECT id, hash, " CUSTODY_ENTRY_COLUMNS
                            " FROM custody_log WHERE shipment_id = ?1 ORDER BY seq",
                            &st)))
        goto done;
    sqlite3_bind_int64(st, 1, shipment_id);
    memcpy(prev_stored, CUSTODY_GENESIS, sizeof prev_stored);
    memcpy(out->head, CUSTODY_GENESIS, sizeof out->head);
    int64_t last_id = 0;
    int step;
    /* Past the first break rows are only counted: the first broken link is the one named. */
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t want = ++out->entries;
        if (!out->ok)
            continue;
        int64_t id = sqlite3_column_int64(st, 0);
        const char *hash = col_text(st, 1);
        struct custody_entry e;
        custody_entry_read(st, 2, &e);
        if (e.seq != want)
            broken(out, id, want, "entry seq %" PRId64 " missing", want);
        else if (e.seq > head_seq)
            broken(out, id, e.seq,
                   "entry seq %" PRId64 " is beyond the shipment's head seq %" PRId64, e.seq,
                   head_seq);
        else if (!e.prev_hash || strcmp(e.prev_hash, prev_stored) != 0) {
            if (e.seq == 1)
                broken(out, id, 1, "prev_hash is not the genesis value");
            else
                broken(out, id, e.seq, "prev_hash does not match entry seq %" PRId64, e.seq - 1);
        } else {
            entry_hash(&e, &scratch, out->head);
            if (!hash || strcmp(hash, out->head) != 0)
                broken(out, id, e.seq, "hash does not match the entry's content");
            else {
                memcpy(prev_stored, hash, sizeof prev_stored);
                last_id = id;
            }
        }
    }
    if (step != SQLITE_DONE) {
        st_log(ST_LOG_ERROR, "event=custody_db_error shipment=%" PRId64 " reason=\"%s\"",
               shipment_id, sqlite3_errmsg(db));
        rc = ST_EIO;
    } else if (out->ok && out->entries < head_seq)
        broken(out, 0, out->entries + 1,
               "chain ends at seq %" PRId64 " but the shipment's head is seq %" PRId64,
               out->entries, head_seq);
    else if (out->ok && strcmp(out->head, head_stored) != 0)
        broken(out, last_id, out->entries,
               "the shipment's head hash is not that of entry seq %" PRId64, out->entries);
    if (!rc && !out->ok)
        st_log(ST_LOG_WARN,
               "event=custody_broken shipment=%" PRId64 " id=%" PRId64 " seq=%" PRId64
               " reason=\"%s\"",
               shipment_id, out->broken_id, out->broken_seq, out->reason);
done:
    sqlite3_finalize(st);
    buf_free(&scratch);
    sqlite3_exec(db, "RELEASE custody_verify", NULL, NULL, NULL); /* read only: cannot fail */
    return rc;
}
