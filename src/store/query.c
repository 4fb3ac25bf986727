#include "query.h"

#include <sqlite3.h>
#include <string.h>

#include "../core/buf.h"
#include "../core/err.h"
#include "../core/jsonw.h"
#include "../core/log.h"
#include "../core/timeutil.h"
#include "schema.h"

/* Write column i under `key` in its SQLite type; NULL columns are written as null. */
static void column(struct jsonw *w, sqlite3_stmt *st, int i, const char *key)
{
    jsonw_key(w, key);
    switch (sqlite3_column_type(st, i)) {
    case SQLITE_INTEGER:
        jsonw_int(w, sqlite3_column_int64(st, i));
        break;
    case SQLITE_FLOAT:
        jsonw_num(w, sqlite3_column_double(st, i), 6);
        break;
    case SQLITE_TEXT:
        jsonw_str(w, (const char *)sqlite3_column_text(st, i));
        break;
    default:
        jsonw_null(w);
    }
}

static void time_column(struct jsonw *w, sqlite3_stmt *st, int i, const char *key, int64_t div)
{
    jsonw_key(w, key);
    if (sqlite3_column_type(st, i) == SQLITE_NULL) {
        jsonw_null(w);
        return;
    }
    char iso[ST_ISO_LEN];
    st_time_iso(sqlite3_column_int64(st, i) / div, iso);
    jsonw_str(w, iso);
}

enum col_kind { COL_PLAIN, COL_BOOL, COL_TIME_S, COL_TIME_MS, COL_JSON };

struct col {
    const char *key;
    enum col_kind kind;
};

/* Run `sql` (bound by bind_range) and print one JSON object per row, columns named by cols. */
static int print_rows(const char *db_path, const char *sql, const struct query_range *q,
                      const struct col *cols, int ncols, FILE *out)
{
    sqlite3 *db;
    if (schema_open(db_path, 1, &db))
        return ST_EIO;
    sqlite3_stmt *st = NULL;
    int rc = ST_EIO;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        st_log(ST_LOG_ERROR, "event=query_failed reason=\"%s\"", sqlite3_errmsg(db));
        goto done;
    }
    if (q) {
        int idx;
        if ((idx = sqlite3_bind_parameter_index(st, ":device")) && q->device)
            sqlite3_bind_text(st, idx, q->device, -1, SQLITE_STATIC);
        if ((idx = sqlite3_bind_parameter_index(st, ":since")))
            sqlite3_bind_int64(st, idx, q->since);
        if ((idx = sqlite3_bind_parameter_index(st, ":until")))
            sqlite3_bind_int64(st, idx, q->until ? q->until : INT64_MAX);
        if ((idx = sqlite3_bind_parameter_index(st, ":limit")))
            sqlite3_bind_int64(st, idx, q->limit > 0 ? q->limit : -1);
        if ((idx = sqlite3_bind_parameter_index(st, ":type")) && q->type)
            sqlite3_bind_text(st, idx, q->type, -1, SQLITE_STATIC);
    }
    struct buf b = {0};
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        struct jsonw w;
        b.len = 0;
        jsonw_init(&w, &b);
        jsonw_obj_begin(&w);
        for (int i = 0; i < ncols; i++) {
            switch (cols[i].kind) {
            case COL_TIME_S:
                time_column(&w, st, i, cols[i].key, 1);
                break;
            case COL_TIME_MS:
                time_column(&w, st, i, cols[i].key, 1000);
                break;
            case COL_BOOL:
                jsonw_key(&w, cols[i].key);
                if (sqlite3_column_type(st, i) == SQLITE_NULL)
                    jsonw_null(&w);
                else
                    jsonw_bool(&w, sqlite3_column_int(st, i) != 0);
                break;
            case COL_JSON:
                jsonw_key(&w, cols[i].key);
                if (sqlite3_column_type(st, i) == SQLITE_NULL)
                    jsonw_null(&w);
                else
                    jsonw_raw(&w, (const char *)sqlite3_column_text(st, i));
                break;
            default:
                column(&w, st, i, cols[i].key);
            }
        }
        jsonw_obj_end(&w);
        buf_append(&b, "\n", 1);
        fwrite(b.data, 1, b.len, out);
    }
    buf_free(&b);
    if (step != SQLITE_DONE) {
        st_log(ST_LOG_ERROR, "event=query_failed reason=\"%s\"", sqlite3_errmsg(db));
        goto done;
    }
    rc = 0;
done:
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rc;
}

#define RANGE_WHERE " (:device IS NULL OR d.uid = :device) AND %s BETWEEN :since AND :until "

int query_positions(const char *db, const struct query_range *q, FILE *out)
{
    static const struct col cols[] = {
        {"id", COL_PLAIN},        {"device_id", COL_PLAIN},  {"time", COL_TIME_S},
        {"recv_time", COL_TIME_MS}, {"protocol", COL_PLAIN}, {"msg_type", COL_PLAIN},
        {"valid", COL_BOOL},      {"lat", COL_PLAIN},        {"lon", COL_PLAIN},
        {"altitude_m", COL_PLAIN}, {"speed_kmh", COL_PLAIN}, {"course", COL_PLAIN},
        {"fix", COL_PLAIN},       {"satellites", COL_PLAIN}, {"battery_pct", COL_PLAIN},
        {"battery_v", COL_PLAIN}, {"charging", COL_BOOL},    {"gsm_signal", COL_PLAIN},
        {"odometer_km", COL_PLAIN}, {"lock", COL_PLAIN},     {"mcc", COL_PLAIN},
        {"mnc", COL_PLAIN},       {"lac", COL_PLAIN},        {"cid", COL_PLAIN},
        {"attrs", COL_JSON},
    };
    char sql[1024];
    snprintf(sql, sizeof sql,
             "SELECT p.id, d.uid, p.fix_time, p.recv_time, p.protocol, p.msg_type, p.valid, p.lat,"
             " p.lon, p.altitude, p.speed_kmh, p.course, p.fix, p.satellites, p.battery_pct,"
             " p.battery_v, p.charging, p.gsm_signal, p.odometer_km, p.lock_state, p.mcc, p.mnc,"
             " p.lac, p.cid, p.attrs FROM positions p JOIN devices d ON d.id = p.device_id"
             " WHERE" RANGE_WHERE "ORDER BY p.fix_time, p.id LIMIT :limit",
             "p.fix_time");
    return print_rows(db, sql, q, cols, (int)(sizeof cols / sizeof cols[0]), out);
}

int query_events(const char *db, const struct query_range *q, FILE *out)
{
    static const struct col cols[] = {
        {"id", COL_PLAIN},     {"device_id", COL_PLAIN}, {"time", COL_TIME_S},
        {"recv_time", COL_TIME_MS}, {"type", COL_PLAIN}, {"source", COL_PLAIN},
        {"card", COL_PLAIN},   {"granted", COL_BOOL},    {"fence_id", COL_PLAIN},
        {"reason", COL_PLAIN}, {"lat", COL_PLAIN},       {"lon", COL_PLAIN},
        {"position_id", COL_PLAIN},
    };
    char sql[1024];
    snprintf(sql, sizeof sql,
             "SELECT e.id, d.uid, e.time, e.recv_time, e.type, e.source, e.card, e.granted,"
             " e.fence_id, e.reason, e.lat, e.lon, e.position_id FROM events e"
             " JOIN devices d ON d.id = e.device_id WHERE" RANGE_WHERE
             "AND (:type IS NULL OR e.type = :type) ORDER BY e.time, e.id LIMIT :limit",
             "e.time");
    return print_rows(db, sql, q, cols, (int)(sizeof cols / sizeof cols[0]), out);
}

int query_devices(const char *db, FILE *out)
{
    static const struct col cols[] = {
        {"device_id", COL_PLAIN}, {"name", COL_PLAIN},     {"model", COL_PLAIN},
        {"protocol", COL_PLAIN},  {"tz_offset_min", COL_PLAIN}, {"last_seen", COL_TIME_MS},
        {"transport", COL_PLAIN}, {"peer", COL_PLAIN},     {"time", COL_TIME_S},
        {"valid", COL_BOOL},      {"lat", COL_PLAIN},      {"lon", COL_PLAIN},
        {"speed_kmh", COL_PLAIN}, {"course", COL_PLAIN},   {"battery_pct", COL_PLAIN},
        {"lock", COL_PLAIN},
    };
    return print_rows(db,
                      "SELECT d.uid, d.name, d.model, coalesce(s.protocol, d.protocol),"
                      " d.tz_offset_min, s.last_seen, s.transport, s.peer, s.fix_time, s.valid,"
                      " s.lat, s.lon, s.speed_kmh, s.course, s.battery_pct, s.lock_state"
                      " FROM devices d LEFT JOIN device_state s ON s.device_id = d.id ORDER BY d.uid",
                      NULL, cols, (int)(sizeof cols / sizeof cols[0]), out);
}

int query_raw(const char *db, const struct query_range *q, FILE *out)
{
    static const struct col cols[] = {
        {"id", COL_PLAIN},       {"device_id", COL_PLAIN}, {"recv_time", COL_TIME_MS},
        {"protocol", COL_PLAIN}, {"transport", COL_PLAIN}, {"peer", COL_PLAIN},
        {"status", COL_PLAIN},   {"hex", COL_PLAIN},       {"decoded", COL_JSON},
    };
    return print_rows(db,
                      "SELECT id, device_uid, recv_time, protocol, transport, peer, status,"
                      " lower(hex(raw)), decoded FROM raw_frames"
                      " WHERE (:device IS NULL OR device_uid = :device)"
                      " AND recv_time / 1000 BETWEEN :since AND :until ORDER BY id LIMIT :limit",
                      q, cols, (int)(sizeof cols / sizeof cols[0]), out);
}

int query_device_add(const char *db_path, const char *uid, const char *name, const char *model,
                     int tz_min, const char *dialect)
{
    sqlite3 *db;
    if (schema_open(db_path, 0, &db))
        return ST_EIO;
    sqlite3_stmt *st = NULL;
    int rc = ST_EIO;
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO devices(uid, name, model, tz_offset_min, created_at, dialect)"
                           " VALUES(?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(uid) DO UPDATE SET"
                           " name=coalesce(excluded.name, name), model=coalesce(excluded.model, model),"
                           " tz_offset_min=coalesce(excluded.tz_offset_min, tz_offset_min),"
                           " dialect=coalesce(excluded.dialect, dialect)",
                           -1, &st, NULL) != SQLITE_OK)
        goto done;
    sqlite3_bind_text(st, 1, uid, -1, SQLITE_STATIC);
    if (name)
        sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    if (model)
        sqlite3_bind_text(st, 3, model, -1, SQLITE_STATIC);
    if (tz_min != INT32_MIN)
        sqlite3_bind_int(st, 4, tz_min);
    sqlite3_bind_int64(st, 5, st_now());
    if (dialect)
        sqlite3_bind_text(st, 6, dialect, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_DONE)
        rc = 0;
done:
    if (rc)
        st_log(ST_LOG_ERROR, "event=device_add_failed device=%s reason=\"%s\"", uid,
               sqlite3_errmsg(db));
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rc;
}

int query_device_dialects(const char *db_path, void (*fn)(void *arg, const char *uid, const char *dialect),
                          void *arg)
{
    sqlite3 *db;
    if (schema_open(db_path, 1, &db))
        return ST_EIO;
    sqlite3_stmt *st = NULL;
    int rc = ST_EIO;
    if (sqlite3_prepare_v2(db, "SELECT uid, dialect FROM devices WHERE dialect IS NOT NULL", -1, &st,
                           NULL) == SQLITE_OK) {
        int step;
        while ((step = sqlite3_step(st)) == SQLITE_ROW)
            fn(arg, (const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1));
        rc = step == SQLITE_DONE ? 0 : ST_EIO;
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rc;
}
