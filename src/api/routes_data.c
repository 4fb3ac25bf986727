/* routes_data.c — positions, events and raw frames of the caller's devices, and the
 * route / trips / stops / summary reports, in JSON, CSV, GPX and GeoJSON. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../core/hex.h"
#include "../core/mem.h"
#include "../core/timeutil.h"
#include "../model/report.h"
#include "api_internal.h"
#include "export.h"

#define DAY_S 86400
#define PAGE_MAX 1000       /* rows per JSON page */
#define EXPORT_MAX 100000   /* rows per export (and per report range) */

/* Rows read from SQLite: column text is copied into one arena and the row's string
 * fields hold offsets until the reading is over (the arena may move while it grows). */
struct position_rows {
    struct export_position *v;
    size_t n, cap;
    struct buf text;
};

static const char *text_keep(struct buf *arena, sqlite3_stmt *st, int col)
{
    if (sqlite3_column_type(st, col) == SQLITE_NULL)
        return NULL;
    size_t off = arena->len;
    buf_append(arena, sqlite3_column_text(st, col), (size_t)sqlite3_column_bytes(st, col));
    buf_append(arena, "", 1);
    return (const char *)(uintptr_t)(off + 1); /* an offset + 1 until text_fix */
}

static const char *text_fix(const struct buf *arena, const char *p)
{
    return p ? (const char *)arena->data + ((uintptr_t)p - 1) : NULL;
}

static double col_num(sqlite3_stmt *st, int col)
{
    return sqlite3_column_type(st, col) == SQLITE_NULL ? NAN : sqlite3_column_double(st, col);
}

static int col_int(sqlite3_stmt *st, int col)
{
    return sqlite3_column_type(st, col) == SQLITE_NULL ? -1 : sqlite3_column_int(st, col);
}

static void rows_free(struct position_rows *r)
{
    st_free(r->v);
    buf_free(&r->text);
}

struct position_query {
    int64_t device, from, to, after; /* after: the cursor (a position id), 0 = none */
    int64_t limit;
    bool valid_only;
};

/* Read positions oldest first (fix time, then id); one more than limit tells whether a
 * next page exists (*next = the last returned id). 0 or -1 (answered). */
static int positions_read(struct api_call *c, const char *uid, const struct position_query *q,
                          struct position_rows *r, int64_t *next)
{
    sqlite3_stmt *st;
    int64_t after_time = q->from - 1, after_id = 0;
    *next = -1;
    if (q->after) { /* keyset pagination: resume after the cursor row's (time, id) */
        if (api_prepare(c, "SELECT fix_time FROM positions WHERE id = ?1 AND device_id = ?2", &st))
            return -1;
        sqlite3_bind_int64(st, 1, q->after);
        sqlite3_bind_int64(st, 2, q->device);
        bool found = sqlite3_step(st) == SQLITE_ROW;
        after_time = found ? sqlite3_column_int64(st, 0) : 0;
        sqlite3_finalize(st);
        if (!found) {
            api_error(c, 400, "cursor", "no such position (deleted by retention?); start again");
            return -1;
        }
        after_id = q->after;
    }
    if (api_prepare(c, "SELECT id, fix_time, recv_time, valid, lat, lon, altitude, speed_kmh,"
                       " course, satellites, battery_pct, protocol, fix, lock_state, attrs"
                       " FROM positions WHERE device_id = ?1 AND fix_time BETWEEN ?2 AND ?3"
                       " AND (fix_time > ?4 OR (fix_time = ?4 AND id > ?5)) AND (valid OR NOT ?6)"
                       " ORDER BY fix_time, id LIMIT ?7", &st))
        return -1;
    sqlite3_bind_int64(st, 1, q->device);
    sqlite3_bind_int64(st, 2, q->from);
    sqlite3_bind_int64(st, 3, q->to);
    sqlite3_bind_int64(st, 4, after_time);
    sqlite3_bind_int64(st, 5, after_id);
    sqlite3_bind_int(st, 6, q->valid_only);
    sqlite3_bind_int64(st, 7, q->limit + 1);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if ((int64_t)r->n == q->limit) {
            *next = r->v[r->n - 1].id;
            break;
        }
        if (r->n == r->cap) {
            r->cap = r->cap ? r->cap * 2 : 256;
            r->v = st_realloc(r->v, r->cap * sizeof *r->v);
        }
        struct export_position *p = &r->v[r->n++];
        p->id = sqlite3_column_int64(st, 0);
        p->device_uid = uid;
        p->fix_time = sqlite3_column_int64(st, 1);
        p->recv_time = sqlite3_column_int64(st, 2) / 1000;
        p->valid = sqlite3_column_int(st, 3) != 0;
        p->lat = col_num(st, 4);
        p->lon = col_num(st, 5);
        p->altitude = col_num(st, 6);
        p->speed_kmh = col_num(st, 7);
        p->course = col_num(st, 8);
        p->satellites = col_int(st, 9);
        p->battery_pct = col_int(st, 10);
        p->protocol = text_keep(&r->text, st, 11);
        p->fix = text_keep(&r->text, st, 12);
        p->lock_state = text_keep(&r->text, st, 13);
        p->attrs = text_keep(&r->text, st, 14);
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        api_db_error(c);
        sqlite3_finalize(st);
        return -1;
    }
    sqlite3_finalize(st);
    for (size_t i = 0; i < r->n; i++) {
        struct export_position *p = &r->v[i];
        p->protocol = text_fix(&r->text, p->protocol);
        p->fix = text_fix(&r->text, p->fix);
        p->lock_state = text_fix(&r->text, p->lock_state);
        p->attrs = text_fix(&r->text, p->attrs);
    }
    return 0;
}

/* ?format= → format (json when absent); -1 answered. */
static int format_param(struct api_call *c, int def)
{
    char name[16];
    int rc = api_query_str(c, "format", name, sizeof name);
    if (rc <= 0)
        return rc < 0 ? -1 : def;
    int f = export_format_parse(name);
    if (f < 0)
        api_error(c, 400, "format", "must be json, csv, gpx or geojson");
    return f;
}

static void answer_format(struct api_call *c, int format, int64_t next)
{
    c->status = 200;
    c->content_type = export_content_type(format);
    if (next >= 0)
        api_header(c, "X-Next-Cursor: %" PRId64, next);
}

/* Common parameters of the device data routes: visibility, range, format, limit. */
static int data_params(struct api_call *c, char *uid, size_t uid_cap, struct position_query *q,
                       int *format, int64_t default_limit)
{
    if (!api_device_visible(c, c->id, uid, uid_cap) || (*format = format_param(c, EXPORT_JSON)) < 0 ||
        api_query_range(c, DAY_S, &q->from, &q->to))
        return -1;
    int64_t max = *format == EXPORT_JSON ? PAGE_MAX : EXPORT_MAX;
    if (api_query_int(c, "limit", 1, max, default_limit < max ? default_limit : max, &q->limit) ||
        api_query_int(c, "cursor", 1, INT64_MAX, 0, &q->after))
        return -1;
    q->device = c->id;
    return 0;
}

static void positions_answer(struct api_call *c, bool valid_only)
{
    char uid[REPORT_ID_LEN];
    struct position_query q = {.valid_only = valid_only};
    int format;
    if (data_params(c, uid, sizeof uid, &q, &format, valid_only ? EXPORT_MAX : 100))
        return;
    struct position_rows r = {0};
    int64_t next;
    if (positions_read(c, uid, &q, &r, &next) == 0) {
        c->body.len = 0;
        export_positions(&c->body, format, r.v, r.n, next);
        answer_format(c, format, next);
    }
    rows_free(&r);
}

void api_positions_get(struct api_call *c)
{
    positions_answer(c, false);
}

void api_report_route(struct api_call *c)
{
    positions_answer(c, true);
}

/* All valid positions of the range for a report (at most EXPORT_MAX). 0 or -1. */
static int report_rows(struct api_call *c, char *uid, size_t uid_cap, struct position_rows *r,
                       int *format, int64_t *from, int64_t *to)
{
    struct position_query q = {.valid_only = true};
    if (!api_device_visible(c, c->id, uid, uid_cap) ||
        (*format = format_param(c, EXPORT_JSON)) < 0 || api_query_range(c, DAY_S, &q.from, &q.to))
        return -1;
    q.device = c->id;
    q.limit = EXPORT_MAX;
    int64_t next;
    if (positions_read(c, uid, &q, r, &next))
        return -1;
    if (next >= 0) {
        api_error(c, 400, "from", "the range holds more than %d positions; narrow it", EXPORT_MAX);
        return -1;
    }
    *from = q.from;
    *to = q.to;
    return 0;
}

static void trips_or_stops(struct api_call *c, bool trips)
{
    struct trips_opts o;
    trips_opts_defaults(&o);
    double min_stop = (double)o.min_stop_s;
    if (api_query_num(c, "stop_speed_kmh", 0, 300, o.stop_speed_kmh, &o.stop_speed_kmh) ||
        api_query_num(c, "min_stop_s", 0, 7 * DAY_S, min_stop, &min_stop) ||
        api_query_num(c, "min_trip_m", 0, 1e7, o.min_trip_m, &o.min_trip_m))
        return;
    o.min_stop_s = (int64_t)min_stop;
    char uid[REPORT_ID_LEN];
    struct position_rows r = {0};
    int format;
    int64_t from, to;
    if (report_rows(c, uid, sizeof uid, &r, &format, &from, &to) == 0) {
        struct trip *tv = NULL;
        struct stop *sv = NULL;
        size_t nt = 0, ns = 0;
        trips_detect(r.v, r.n, &o, &tv, &nt, &sv, &ns);
        c->body.len = 0;
        if (trips)
            export_trips(&c->body, format, uid, r.v, tv, nt);
        else
            export_stops(&c->body, format, uid, sv, ns);
        answer_format(c, format, -1);
        st_free(tv);
        st_free(sv);
    }
    rows_free(&r);
}

void api_report_trips(struct api_call *c)
{
    trips_or_stops(c, true);
}

void api_report_stops(struct api_call *c)
{
    trips_or_stops(c, false);
}

void api_report_summary(struct api_call *c)
{
    char uid[REPORT_ID_LEN];
    struct position_rows r = {0};
    int format;
    int64_t from, to;
    if (report_rows(c, uid, sizeof uid, &r, &format, &from, &to))
        goto out;
    if (format != EXPORT_JSON) {
        api_error(c, 400, "format", "the summary is JSON only");
        goto out;
    }
    double distance = 0;
    for (size_t i = 1; i < r.n; i++)
        distance += export_distance_m(r.v[i - 1].lat, r.v[i - 1].lon, r.v[i].lat, r.v[i].lon);
    sqlite3_stmt *st;
    if (api_prepare(c, "SELECT type, count(*) FROM events WHERE device_id = ?1"
                       " AND time BETWEEN ?2 AND ?3 GROUP BY type ORDER BY type", &st))
        goto out;
    sqlite3_bind_int64(st, 1, c->id);
    sqlite3_bind_int64(st, 2, from);
    sqlite3_bind_int64(st, 3, to);
    struct jsonw w;
    api_json_begin(c, 200, &w);
    jsonw_obj_begin(&w);
    jsonw_key(&w, "device");
    jsonw_str(&w, uid);
    jsonw_key_time(&w, "from", from);
    jsonw_key_time(&w, "to", to);
    jsonw_key(&w, "positions");
    jsonw_int(&w, (int64_t)r.n);
    jsonw_key(&w, "distance_m");
    jsonw_num(&w, distance, 1);
    if (r.n) {
        jsonw_key_time(&w, "first_fix", r.v[0].fix_time);
        jsonw_key_time(&w, "last_fix", r.v[r.n - 1].fix_time);
    } else {
        jsonw_key(&w, "first_fix");
        jsonw_null(&w);
        jsonw_key(&w, "last_fix");
        jsonw_null(&w);
    }
    jsonw_key(&w, "events");
    jsonw_obj_begin(&w);
    while (sqlite3_step(st) == SQLITE_ROW) {
        jsonw_key(&w, (const char *)sqlite3_column_text(st, 0));
        jsonw_int(&w, sqlite3_column_int64(st, 1));
    }
    jsonw_obj_end(&w);
    jsonw_obj_end(&w);
    sqlite3_finalize(st);
out:
    rows_free(&r);
}

/* ---- events --------------------------------------------------------------- */

void api_events_get(struct api_call *c)
{
    int64_t device, from, to, limit, after;
    char type[32];
    int has_type, format;
    if ((format = format_param(c, EXPORT_JSON)) < 0 ||
        api_query_int(c, "device", 1, INT64_MAX, 0, &device) ||
        (has_type = api_query_str(c, "type", type, sizeof type)) < 0 ||
        api_query_range(c, DAY_S, &from, &to) ||
        api_query_int(c, "limit", 1, format == EXPORT_JSON ? PAGE_MAX : EXPORT_MAX, 100, &limit) ||
        api_query_int(c, "cursor", 1, INT64_MAX, 0, &after))
        return;
    if (device && !api_device_visible(c, device, NULL, 0))
        return;
    sqlite3_stmt *st;
    int64_t after_time = from - 1;
    if (after) {
        if (api_prepare(c, "SELECT e.time FROM events e JOIN devices d ON d.id = e.device_id"
                           " WHERE e.id = ?1 AND d.org_id = ?2", &st))
            return;
        sqlite3_bind_int64(st, 1, after);
        sqlite3_bind_int64(st, 2, c->who.org_id);
        bool found = sqlite3_step(st) == SQLITE_ROW;
        after_time = found ? sqlite3_column_int64(st, 0) : 0;
        sqlite3_finalize(st);
        if (!found) {
            api_error(c, 400, "cursor", "no such event; start again");
            return;
        }
    }
    if (api_prepare(c, "SELECT e.id, d.uid, e.time, e.recv_time, e.type, e.source, e.card,"
                       " e.granted, e.reason, e.lat, e.lon FROM events e"
                       " JOIN devices d ON d.id = e.device_id WHERE d.org_id = ?1"
                       " AND (?2 = 0 OR e.device_id = ?2) AND (?3 IS NULL OR e.type = ?3)"
                       " AND e.time BETWEEN ?4 AND ?5 AND (e.time > ?6 OR (e.time = ?6 AND e.id > ?7))"
                       " ORDER BY e.time, e.id LIMIT ?8", &st))
        return;
    sqlite3_bind_int64(st, 1, c->who.org_id);
    sqlite3_bind_int64(st, 2, device);
    if (has_type)
        sqlite3_bind_text(st, 3, type, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, from);
    sqlite3_bind_int64(st, 5, to);
    sqlite3_bind_int64(st, 6, after_time);
    sqlite3_bind_int64(st, 7, after);
    sqlite3_bind_int64(st, 8, limit + 1);
    struct export_event *v = NULL;
    size_t n = 0, cap = 0;
    struct buf arena = {0};
    int64_t next = -1;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if ((int64_t)n == limit) {
            next = v[n - 1].id;
            break;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 256;
            v = st_realloc(v, cap * sizeof *v);
        }
        struct export_event *e = &v[n++];
        e->id = sqlite3_column_int64(st, 0);
        e->device_uid = text_keep(&arena, st, 1);
        e->time = sqlite3_column_int64(st, 2);
        e->recv_time = sqlite3_column_int64(st, 3) / 1000;
        e->type = text_keep(&arena, st, 4);
        e->source = text_keep(&arena, st, 5);
        e->card = text_keep(&arena, st, 6);
        e->granted = col_int(st, 7);
        e->reason = text_keep(&arena, st, 8);
        e->lat = col_num(st, 9);
        e->lon = col_num(st, 10);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        api_db_error(c);
    else {
        for (size_t i = 0; i < n; i++) {
            struct export_event *e = &v[i];
            e->device_uid = text_fix(&arena, e->device_uid);
            e->type = text_fix(&arena, e->type);
            e->source = text_fix(&arena, e->source);
            e->card = text_fix(&arena, e->card);
            e->reason = text_fix(&arena, e->reason);
        }
        c->body.len = 0;
        export_events(&c->body, format, v, n, next);
        answer_format(c, format, next);
    }
    st_free(v);
    buf_free(&arena);
}

/* ---- raw frames ------------------------------------------------------------- */

void api_raw_get(struct api_call *c)
{
    int64_t limit, before;
    if (!api_device_visible(c, c->id, NULL, 0) ||
        api_query_int(c, "limit", 1, PAGE_MAX, 100, &limit) ||
        api_query_int(c, "cursor", 1, INT64_MAX, 0, &before))
        return;
    sqlite3_stmt *st;
    int64_t before_time = INT64_MAX;
    if (before) {
        if (api_prepare(c, "SELECT recv_time FROM raw_frames WHERE id = ?1 AND device_id = ?2", &st))
            return;
        sqlite3_bind_int64(st, 1, before);
        sqlite3_bind_int64(st, 2, c->id);
        bool found = sqlite3_step(st) == SQLITE_ROW;
        before_time = found ? sqlite3_column_int64(st, 0) : 0;
        sqlite3_finalize(st);
        if (!found) {
            api_error(c, 400, "cursor", "no such frame (trimmed?); start again");
            return;
        }
    }
    /* newest first, along the (device_id, recv_time) index */
    if (api_prepare(c, "SELECT id, recv_time, protocol, transport, peer, status, raw, decoded"
                       " FROM raw_frames WHERE device_id = ?1 AND (recv_time < ?2"
                       " OR (recv_time = ?2 AND id < ?3)) ORDER BY recv_time DESC, id DESC LIMIT ?4",
                    &st))
        return;
    sqlite3_bind_int64(st, 1, c->id);
    sqlite3_bind_int64(st, 2, before_time);
    sqlite3_bind_int64(st, 3, before ? before : INT64_MAX);
    sqlite3_bind_int64(st, 4, limit + 1);
    struct jsonw w;
    api_json_begin(c, 200, &w);
    jsonw_obj_begin(&w);
    jsonw_key(&w, "frames");
    jsonw_arr_begin(&w);
    int64_t n = 0, last = 0, next = -1;
    struct buf hex = {0};
    while (sqlite3_step(st) == SQLITE_ROW) {
        if (n++ == limit) {
            next = last;
            break;
        }
        last = sqlite3_column_int64(st, 0);
        jsonw_obj_begin(&w);
        api_col_int(&w, "id", st, 0);
        api_col_time(&w, "time", st, 1, 1000);
        api_col_str(&w, "protocol", st, 2);
        api_col_str(&w, "transport", st, 3);
        api_col_str(&w, "peer", st, 4);
        api_col_str(&w, "status", st, 5);
        const uint8_t *raw = sqlite3_column_blob(st, 6);
        size_t len = (size_t)sqlite3_column_bytes(st, 6);
        buf_reserve(&hex, 2 * len + 1);
        jsonw_key(&w, "hex");
        jsonw_strn(&w, (const char *)hex.data, st_hex_encode(raw, len, (char *)hex.data, 2 * len + 1));
        jsonw_key(&w, "decoded");
        if (sqlite3_column_type(st, 7) == SQLITE_NULL)
            jsonw_null(&w);
        else
            jsonw_raw(&w, (const char *)sqlite3_column_text(st, 7));
        jsonw_obj_end(&w);
    }
    buf_free(&hex);
    sqlite3_finalize(st);
    jsonw_arr_end(&w);
    jsonw_key(&w, "next");
    if (next >= 0) {
        jsonw_int(&w, next);
        api_header(c, "X-Next-Cursor: %" PRId64, next);
    } else
        jsonw_null(&w);
    jsonw_obj_end(&w);
}
