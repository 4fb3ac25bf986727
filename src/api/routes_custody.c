/* routes_custody.c — a shipment's chain of custody: the entries (JSON, CSV, or the export
 * that scripts/custody_verify.py checks offline), their verification, and the facts an
 * operator adds by hand (handed over, note, sealed, unsealed). The encoding and the export
 * are specified in docs/seals.md "Chain of custody". */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../core/log.h"
#include "../core/timeutil.h"
#include "../domain/custody.h"
#include "api_internal.h"
#include "export.h"

#define ACTOR_MAX 128
#define DETAIL_MAX 4096

/* What an export says about itself, so that the file alone tells how to check it. */
#define EXPORT_FORMAT "sealtrack-custody-export/1"
#define EXPORT_CANONICAL                                                                           \
    "hash = lower-case hex SHA-256 of the entry's canonical bytes: a JSON object of the keys "     \
    "actor, command_id, detail, device_id, event_id, kind, lat, lon, prev_hash, recorded_at, "     \
    "seq, shipment_id, source, time in this order without whitespace, values as in the export "    \
    "(absent: null; integers in decimal; lat/lon in 1e-7 degree; detail a JSON string); "          \
    "strings escape only '\"' and '\\' (as \\\" and \\\\) and U+0000..U+001F (as \\u00xx, "        \
    "lower-case hex), every other character as its UTF-8 bytes. prev_hash = the previous "         \
    "entry's hash, 64 zeros for seq 1; seq runs 1, 2, 3 ...; the last entry is the head."

/* Columns of an entry: its id and hash, then custody_entry_read()'s. */
#define ENTRY_COLUMNS "id, hash, " CUSTODY_ENTRY_COLUMNS
enum {
    COL_ID,
    COL_HASH,
    COL_SHIPMENT,
    COL_SEQ,
    COL_TIME,
    COL_RECORDED,
    COL_KIND,
    COL_ACTOR,
    COL_SOURCE,
    COL_DEVICE,
    COL_LAT,
    COL_LON,
    COL_EVENT,
    COL_COMMAND,
    COL_DETAIL,
    COL_PREV
};

enum custody_format { FORMAT_JSON, FORMAT_CSV, FORMAT_EXPORT };

/* The caller's shipment c->id: *st stands on its row (reference, status, custody_seq,
 * custody_head) and the caller finalizes it. false when answered (404 or database error). */
static bool shipment_row(struct api_call *c, sqlite3_stmt **st)
{
    if (api_prepare(c,
                    "SELECT reference, status, custody_seq,"
                    " coalesce(custody_head, '" CUSTODY_GENESIS "')"
                    " FROM shipments WHERE id = ?1 AND org_id = ?2",
                    st))
        return false;
    sqlite3_bind_int64(*st, 1, c->id);
    sqlite3_bind_int64(*st, 2, c->who.org_id);
    int rc = sqlite3_step(*st);
    if (rc == SQLITE_ROW)
        return true;
    if (rc == SQLITE_DONE)
        api_error(c, 404, NULL, "no such shipment");
    else
        api_db_error(c);
    sqlite3_finalize(*st);
    *st = NULL;
    return false;
}

/* detail as the object it holds; text that is not one (an edited row) as a string, so
 * that nothing stored is hidden from the reader. */
static void detail_json(struct jsonw *w, sqlite3_stmt *st)
{
    jsonw_key(w, "detail");
    const char *d = (const char *)sqlite3_column_text(st, COL_DETAIL);
    if (!d) {
        jsonw_null(w);
        return;
    }
    json_t *j = json_loads(d, 0, NULL);
    if (json_is_object(j))
        jsonw_raw(w, d);
    else
        jsonw_str(w, d);
    json_decref(j);
}

/* One entry as the API shows it (ENTRY_COLUMNS at st). */
static void entry_json(struct jsonw *w, sqlite3_stmt *st)
{
    jsonw_obj_begin(w);
    api_col_int(w, "id", st, COL_ID);
    api_col_int(w, "seq", st, COL_SEQ);
    api_col_time(w, "time", st, COL_TIME, 1);
    api_col_time(w, "recorded_at", st, COL_RECORDED, 1000);
    api_col_str(w, "kind", st, COL_KIND);
    api_col_str(w, "actor", st, COL_ACTOR);
    api_col_str(w, "source", st, COL_SOURCE);
    api_col_int(w, "device_id", st, COL_DEVICE);
    api_col_num(w, "lat", st, COL_LAT, 7);
    api_col_num(w, "lon", st, COL_LON, 7);
    api_col_int(w, "event_id", st, COL_EVENT);
    api_col_int(w, "command_id", st, COL_COMMAND);
    detail_json(w, st);
    api_col_str(w, "prev_hash", st, COL_PREV);
    api_col_str(w, "hash", st, COL_HASH);
    jsonw_obj_end(w);
}

/* One entry exactly as hashed, with its id and stored hash (the export). */
static void entry_export(struct jsonw *w, sqlite3_stmt *st)
{
    struct custody_entry e;
    custody_entry_read(st, COL_SHIPMENT, &e);
    jsonw_obj_begin(w);
    api_col_int(w, "id", st, COL_ID);
    api_col_str(w, "hash", st, COL_HASH);
    custody_entry_json(&e, w);
    jsonw_obj_end(w);
}

static void csv_line(struct buf *b, sqlite3_stmt *st)
{
    char iso[2][ST_ISO_LEN], num[2][40];
    st_time_iso(sqlite3_column_int64(st, COL_TIME), iso[0]);
    st_time_iso(sqlite3_column_int64(st, COL_RECORDED) / 1000, iso[1]);
    for (int i = 0; i < 2; i++)
        if (sqlite3_column_type(st, COL_LAT + i) == SQLITE_NULL ||
            !jsonw_format_num(sqlite3_column_double(st, COL_LAT + i), 7, num[i], sizeof num[i]))
            num[i][0] = '\0';
    const char *text[] = {
        (const char *)sqlite3_column_text(st, COL_ID),
        (const char *)sqlite3_column_text(st, COL_SEQ),
        iso[0],
        iso[1],
        (const char *)sqlite3_column_text(st, COL_KIND),
        (const char *)sqlite3_column_text(st, COL_ACTOR),
        (const char *)sqlite3_column_text(st, COL_SOURCE),
        (const char *)sqlite3_column_text(st, COL_DEVICE),
        num[0],
        num[1],
        (const char *)sqlite3_column_text(st, COL_EVENT),
        (const char *)sqlite3_column_text(st, COL_COMMAND),
        (const char *)sqlite3_column_text(st, COL_DETAIL),
        (const char *)sqlite3_column_text(st, COL_PREV),
        (const char *)sqlite3_column_text(st, COL_HASH),
    };
    for (size_t i = 0; i < sizeof text / sizeof text[0]; i++)
        export_csv_field(b, i == 0, text[i]);
    buf_append(b, "\r\n", 2);
}

static int format_param(struct api_call *c)
{
    char name[16];
    int rc = api_query_str(c, "format", name, sizeof name);
    if (rc <= 0)
        return rc < 0 ? -1 : FORMAT_JSON;
    static const char *const names[] = {
        [FORMAT_JSON] = "json", [FORMAT_CSV] = "csv", [FORMAT_EXPORT] = "export"};
    for (int f = 0; f < 3; f++)
        if (strcmp(name, names[f]) == 0)
            return f;
    api_error(c, 400, "format", "must be json, csv or export");
    return -1;
}

/* The head and the entries of shipment row sh, in one format. */
static int write_chain(struct api_call *c, sqlite3_stmt *sh, int format)
{
    sqlite3_stmt *st;
    if (api_prepare(c,
                    "SELECT " ENTRY_COLUMNS " FROM custody_log WHERE shipment_id = ?1"
                    " ORDER BY seq",
                    &st))
        return -1;
    sqlite3_bind_int64(st, 1, c->id);
    c->status = 200;
    struct jsonw w;
    if (format == FORMAT_CSV) {
        c->content_type = export_content_type(EXPORT_CSV);
        buf_append_str(&c->body, "id,seq,time,recorded_at,kind,actor,source,device_id,lat,lon,"
                                 "event_id,command_id,detail,prev_hash,hash\r\n");
    } else {
        api_json_begin(c, 200, &w);
        jsonw_obj_begin(&w);
        if (format == FORMAT_EXPORT) {
            api_header(c, "Content-Disposition: attachment; filename=\"custody-%" PRId64 ".json\"",
                       c->id);
            jsonw_key(&w, "format");
            jsonw_str(&w, EXPORT_FORMAT);
            jsonw_key(&w, "algorithm");
            jsonw_str(&w, "sha256");
            jsonw_key(&w, "canonical");
            jsonw_str(&w, EXPORT_CANONICAL);
        }
        jsonw_key(&w, "shipment_id");
        jsonw_int(&w, c->id);
        api_col_str(&w, "reference", sh, 0);
        jsonw_key(&w, "head");
        jsonw_obj_begin(&w);
        api_col_int(&w, "seq", sh, 2);
        api_col_str(&w, "hash", sh, 3);
        jsonw_obj_end(&w);
        jsonw_key(&w, "entries");
        jsonw_arr_begin(&w);
    }
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (format == FORMAT_CSV)
            csv_line(&c->body, st);
        else if (format == FORMAT_EXPORT)
            entry_export(&w, st);
        else
            entry_json(&w, st);
    }
    if (format != FORMAT_CSV) {
        jsonw_arr_end(&w);
        jsonw_obj_end(&w);
    }
    if (rc != SQLITE_DONE)
        api_db_error(c);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

void api_custody_get(struct api_call *c)
{
    int format = format_param(c);
    if (format < 0)
        return;
    /* head and entries from one snapshot: an export must not end beyond its own head */
    if (sqlite3_exec(c->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
        api_db_error(c);
        return;
    }
    sqlite3_stmt *sh;
    if (shipment_row(c, &sh)) {
        write_chain(c, sh, format);
        sqlite3_finalize(sh);
    }
    sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL); /* read only: cannot fail */
}

void api_custody_verify(struct api_call *c)
{
    sqlite3_stmt *sh;
    if (!shipment_row(c, &sh))
        return;
    sqlite3_finalize(sh);
    struct custody_check chk;
    if (custody_verify(c->db, c->id, &chk)) {
        api_db_error(c);
        return;
    }
    struct jsonw w;
    api_json_begin(c, 200, &w);
    jsonw_obj_begin(&w);
    jsonw_key(&w, "ok");
    jsonw_bool(&w, chk.ok);
    jsonw_key(&w, "entries");
    jsonw_int(&w, chk.entries);
    if (chk.ok) {
        jsonw_key(&w, "head");
        jsonw_str(&w, chk.head);
    } else {
        jsonw_key(&w, "broken");
        jsonw_obj_begin(&w);
        jsonw_key(&w, "id");
        if (chk.broken_id)
            jsonw_int(&w, chk.broken_id);
        else
            jsonw_null(&w);
        jsonw_key(&w, "seq");
        jsonw_int(&w, chk.broken_seq);
        jsonw_key(&w, "reason");
        jsonw_str(&w, chk.reason);
        jsonw_obj_end(&w);
    }
    jsonw_obj_end(&w);
}

/* lat and lon: both or neither, numbers in range. 1 present, 0 absent, -1 answered. */
static int body_position(struct api_call *c, double *lat, double *lon)
{
    json_t *v[2] = {json_object_get(c->in, "lat"), json_object_get(c->in, "lon")};
    static const char *const key[2] = {"lat", "lon"};
    static const double limit[2] = {90, 180};
    double *out[2] = {lat, lon};
    if (!v[0] && !v[1])
        return 0;
    for (int i = 0; i < 2; i++) {
        if (!v[i]) {
            api_error(c, 400, key[i], "lat and lon come together");
            return -1;
        }
        if (!json_is_number(v[i]) || !(fabs(json_number_value(v[i])) <= limit[i])) {
            api_error(c, 400, key[i], "must be a number in -%g..%g", limit[i], limit[i]);
            return -1;
        }
        *out[i] = json_number_value(v[i]);
    }
    return 1;
}

/* detail: a JSON object of at most DETAIL_MAX bytes as compact text into out[DETAIL_MAX
 * + 1]. 1 present, 0 absent or null, -1 answered. */
static int body_detail(struct api_call *c, char *out)
{
    json_t *d = json_object_get(c->in, "detail");
    if (!d || json_is_null(d))
        return 0;
    size_t n = json_is_object(d) ? json_dumpb(d, out, DETAIL_MAX + 1, JSON_COMPACT) : 0;
    if (n == 0 || n > DETAIL_MAX) { /* 0: not an object (an empty one dumps as "{}") */
        api_error(c, 400, "detail", "must be a JSON object of at most %d bytes", DETAIL_MAX);
        return -1;
    }
    out[n] = '\0';
    return 1;
}

static bool manual_kind(const char *kind)
{
    static const char *const kinds[] = {"handed_over", "note", "sealed", "unsealed"};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (strcmp(kind, kinds[i]) == 0)
            return true;
    return false;
}

static void answer_entry(struct api_call *c, int64_t id)
{
    sqlite3_stmt *st;
    if (api_prepare(c, "SELECT " ENTRY_COLUMNS " FROM custody_log WHERE id = ?1", &st))
        return;
    sqlite3_bind_int64(st, 1, id);
    if (sqlite3_step(st) == SQLITE_ROW) {
        struct jsonw w;
        api_json_begin(c, 201, &w);
        entry_json(&w, st);
    } else
        api_db_error(c);
    sqlite3_finalize(st);
}

void api_custody_add(struct api_call *c)
{
    static const char *const allowed[] = {"kind", "actor", "detail", "lat", "lon", NULL};
    const char *kind, *actor;
    char detail[DETAIL_MAX + 1], name[ACTOR_MAX + 1];
    double lat = 0, lon = 0;
    int has_detail, has_pos;
    if (api_body(c, allowed) || api_field_str(c, "kind", 32, true, false, &kind) ||
        api_field_str(c, "actor", ACTOR_MAX, false, false, &actor) ||
        (has_detail = body_detail(c, detail)) < 0 || (has_pos = body_position(c, &lat, &lon)) < 0)
        return;
    if (!manual_kind(kind)) {
        api_error(c, 400, "kind", "must be handed_over, note, sealed or unsealed");
        return;
    }
    if (actor && !*actor) {
        api_error(c, 400, "actor", "must not be empty (leave it out for your user name)");
        return;
    }
    if (!actor) {
        if (api_user_name(c, name, sizeof name))
            return;
        actor = name;
    }
    if (!api_begin(c))
        return;
    sqlite3_stmt *sh;
    if (!shipment_row(c, &sh))
        goto fail;
    bool is_open = strcmp((const char *)sqlite3_column_text(sh, 1), "open") == 0;
    if (!is_open)
        api_error(c, 409, NULL, "the shipment is %s", (const char *)sqlite3_column_text(sh, 1));
    sqlite3_finalize(sh);
    if (!is_open)
        goto fail;
    int64_t now_ms = st_now_ms(), id = 0;
    const struct custody_fact f = {
        .shipment_id = c->id,
        .time = now_ms / 1000,
        .kind = kind,
        .actor = actor,
        .source = "api",
        .has_pos = has_pos == 1,
        .lat = lat,
        .lon = lon,
        .detail = has_detail == 1 ? detail : NULL,
    };
    /* the fact is checked above and the shipment read in this transaction: only the
     * database can fail here */
    if (custody_append(c->db, &f, now_ms, &id)) {
        api_db_error(c);
        goto fail;
    }
    if (!api_commit(c))
        return;
    char who[ST_LOG_TEXT_MAX];
    st_log(ST_LOG_INFO, "event=custody_added by=%" PRId64 " shipment=%" PRId64 " kind=%s actor=%s",
           c->who.user_id, c->id, kind, st_log_text(actor, who));
    answer_entry(c, id);
    return;
fail:
    api_rollback(c);
}
