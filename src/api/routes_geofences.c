/* routes_geofences.c — geofences: list, create, get, update, delete, with their targets
 * (devices and groups; none listed = every device of the organisation).
 *
 * Geometry arrives as `center` + `radius_m` (circle), `points` (polygon) or `points` +
 * `width_m` (corridor) and is stored as the points column's JSON text [[lat, lon], ...] with
 * radius_m. Coordinates are rounded to COORD_DECIMALS before geo_validate sees them, so what
 * is stored is exactly what was validated. Each write is one transaction and tells the
 * writer's engine to reload (store_domain_changed).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/err.h"
#include "../core/log.h"
#include "../core/mem.h"
#include "../core/timeutil.h"
#include "../domain/geofence.h"
#include "api_internal.h"

#define NAME_MAX_LEN 128
#define GROUP_MAX_LEN 256 /* as devices.group_name */
#define DWELL_MAX_S 86400
#define FENCES_PER_ORG_MAX 10000
#define DEVICES_MAX 1000 /* devices listed by one fence (more: use a group) */
#define GROUPS_MAX 100
#define COORD_DECIMALS 9 /* 0.1 mm */

static const char *const fence_keys[] = {"name",     "kind",   "shape",   "center",
                                         "radius_m", "points", "width_m", "dwell_s",
                                         "devices",  "groups", NULL};

#define FENCE_COLUMNS                                                                              \
    "id, name, kind, shape, points, radius_m, dwell_s, all_devices, created_at, updated_at"

/* ---- answers -------------------------------------------------------------- */

static void point_json(struct jsonw *w, struct geo_point p)
{
    jsonw_arr_begin(w);
    jsonw_num(w, p.lat, COORD_DECIMALS);
    jsonw_num(w, p.lon, COORD_DECIMALS);
    jsonw_arr_end(w);
}

/* One fence from a row of FENCE_COLUMNS; arg: the prepared targets query. */
static void fence_json(struct api_call *c, struct jsonw *w, sqlite3_stmt *st, void *arg)
{
    (void)c;
    sqlite3_stmt *targets = arg;
    const char *shape_name = (const char *)sqlite3_column_text(st, 3);
    int shape = geo_shape_by_name(shape_name);
    struct geo_point *pts = NULL;
    size_t n = 0;
    bool readable = geofence_points_parse((const char *)sqlite3_column_text(st, 4), &pts, &n) == 0;
    jsonw_obj_begin(w);
    api_col_int(w, "id", st, 0);
    api_col_str(w, "name", st, 1);
    api_col_str(w, "kind", st, 2);
    api_col_str(w, "shape", st, 3);
    jsonw_key(w, shape == GEO_CIRCLE ? "center" : "points");
    if (!readable)
        jsonw_null(w);
    else if (shape == GEO_CIRCLE)
        point_json(w, pts[0]);
    else {
        jsonw_arr_begin(w);
        for (size_t i = 0; i < n; i++)
            point_json(w, pts[i]);
        jsonw_arr_end(w);
    }
    st_free(pts);
    if (shape != GEO_POLYGON)
        api_col_num(w, shape == GEO_CIRCLE ? "radius_m" : "width_m", st, 5, 3);
    api_col_int(w, "dwell_s", st, 6);
    api_col_bool(w, "all_devices", st, 7);
    sqlite3_reset(targets);
    sqlite3_bind_int64(targets, 1, sqlite3_column_int64(st, 0));
    /* device rows sort first (NULL group), then groups by name */
    jsonw_key(w, "devices");
    jsonw_arr_begin(w);
    bool in_groups = false;
    while (sqlite3_step(targets) == SQLITE_ROW) {
        if (sqlite3_column_type(targets, 0) != SQLITE_NULL) {
            jsonw_int(w, sqlite3_column_int64(targets, 0));
            continue;
        }
        if (!in_groups) {
            jsonw_arr_end(w);
            jsonw_key(w, "groups");
            jsonw_arr_begin(w);
            in_groups = true;
        }
        jsonw_strn(w, (const char *)sqlite3_column_text(targets, 1),
                   (size_t)sqlite3_column_bytes(targets, 1));
    }
    if (!in_groups) {
        jsonw_arr_end(w);
        jsonw_key(w, "groups");
        jsonw_arr_begin(w);
    }
    jsonw_arr_end(w);
    api_col_time(w, "created_at", st, 8, 1);
    api_col_time(w, "updated_at", st, 9, 1);
    jsonw_obj_end(w);
}

static int prepare_targets(struct api_call *c, sqlite3_stmt **st)
{
    return api_prepare(c,
                       "SELECT device_id, group_name FROM geofence_targets WHERE fence_id = ?1"
                       " ORDER BY group_name IS NOT NULL, device_id, group_name",
                       st);
}

static void answer_fence(struct api_call *c, int64_t id, int status)
{
    sqlite3_stmt *st, *targets;
    if (api_prepare(c, "SELECT " FENCE_COLUMNS " FROM geofences WHERE id = ?1 AND org_id = ?2",
                    &st))
        return;
    if (prepare_targets(c, &targets)) {
        sqlite3_finalize(st);
        return;
    }
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, c->who.org_id);
    api_answer_row(c, st, status, fence_json, targets, "no such geofence");
    sqlite3_finalize(targets);
}

/* ---- input ---------------------------------------------------------------- */

static bool kind_valid(const char *kind)
{
    return strcmp(kind, "allowed") == 0 || strcmp(kind, "forbidden") == 0 ||
           strcmp(kind, "control_point") == 0;
}

/* v rounded as the points column stores it. */
static double coord_canon(double v)
{
    char text[64];
    return jsonw_format_num(v, COORD_DECIMALS, text, sizeof text) ? strtod(text, NULL) : v;
}

/* [lat, lon] at v into *out: 0, or -1 answered naming field (what: "" or "point 3 "). */
static int read_point(struct api_call *c, json_t *v, const char *field, const char *what,
                      struct geo_point *out)
{
    if (!json_is_array(v) || json_array_size(v) != 2 || !json_is_number(json_array_get(v, 0)) ||
        !json_is_number(json_array_get(v, 1))) {
        api_error(c, 400, field, "%smust be [lat, lon] (two numbers)", what);
        return -1;
    }
    out->lat = coord_canon(json_number_value(json_array_get(v, 0)));
    out->lon = coord_canon(json_number_value(json_array_get(v, 1)));
    return 0;
}

/* A number field: 1 present, 0 absent, -1 answered. */
static int read_number(struct api_call *c, const char *key, double *out)
{
    json_t *v = json_object_get(c->in, key);
    if (!v)
        return 0;
    if (!json_is_number(v)) {
        api_error(c, 400, key, "must be a number");
        return -1;
    }
    *out = json_number_value(v);
    return 1;
}

/* A fence's geometry while it is read and checked; owns pts. */
struct fence_geom {
    struct geo_fence geo;
    struct geo_point *pts;
};

/* The shape's geometry fields, the others it must not carry. */
static const struct {
    const char *pts_key, *radius_key, *not [3];
} shape_fields[] = {
    [GEO_CIRCLE] = {"center", "radius_m", {"points", "width_m", NULL}},
    [GEO_POLYGON] = {"points", NULL, {"center", "radius_m", "width_m"}},
    [GEO_CORRIDOR] = {"points", "width_m", {"center", "radius_m", NULL}},
};

/* Read the body's geometry over cur's (NULL when creating): a changed shape needs all its
 * fields, otherwise each absent one keeps its value. Validated; 0 or -1 answered. */
static int read_geometry(struct api_call *c, const struct geofence_def *cur, struct fence_geom *g)
{
    memset(g, 0, sizeof *g);
    const char *shape_name;
    if (api_field_str(c, "shape", 16, !cur, false, &shape_name))
        return -1;
    int shape = shape_name ? geo_shape_by_name(shape_name) : cur->geo.shape;
    if (!shape) {
        api_error(c, 400, "shape", "must be circle, polygon or corridor");
        return -1;
    }
    const char *shape_label = geo_shape_name(shape);
    for (int i = 0; i < 3 && shape_fields[shape].not [i]; i++)
        if (json_object_get(c->in, shape_fields[shape].not [i])) {
            api_error(c, 400, shape_fields[shape].not [i], "not a field of a %s", shape_label);
            return -1;
        }
    bool keep = cur && cur->geo.shape == shape;
    g->geo = (struct geo_fence){.id = cur ? cur->id : 0, .shape = (uint8_t)shape};

    const char *pts_key = shape_fields[shape].pts_key;
    json_t *v = json_object_get(c->in, pts_key);
    if (!v && !keep) {
        api_error(c, 400, pts_key, "required for a %s", shape_label);
        return -1;
    }
    if (!v) {
        g->pts = st_malloc(cur->geo.n * sizeof *g->pts);
        memcpy(g->pts, cur->geo.pts, cur->geo.n * sizeof *g->pts);
        g->geo.n = cur->geo.n;
    } else if (shape == GEO_CIRCLE) {
        g->pts = st_malloc(sizeof *g->pts);
        g->geo.n = 1;
        if (read_point(c, v, pts_key, "", &g->pts[0]))
            return -1;
    } else {
        if (!json_is_array(v) || json_array_size(v) > GEO_POINTS_MAX) {
            api_error(c, 400, pts_key, "must be an array of at most %d [lat, lon] points",
                      GEO_POINTS_MAX);
            return -1;
        }
        g->geo.n = json_array_size(v);
        g->pts = st_malloc((g->geo.n ? g->geo.n : 1) * sizeof *g->pts);
        for (size_t i = 0; i < g->geo.n; i++) {
            char what[32];
            snprintf(what, sizeof what, "point %zu ", i);
            if (read_point(c, json_array_get(v, i), pts_key, what, &g->pts[i]))
                return -1;
        }
    }
    g->geo.pts = g->pts;

    const char *radius_key = shape_fields[shape].radius_key;
    if (radius_key) {
        int rc = read_number(c, radius_key, &g->geo.radius_m);
        if (rc < 0)
            return -1;
        if (rc == 0 && !keep) {
            api_error(c, 400, radius_key, "required for a %s", shape_label);
            return -1;
        }
        if (rc == 0)
            g->geo.radius_m = cur->geo.radius_m;
    }

    char err[160];
    if (geo_validate(&g->geo, err, sizeof err)) {
        /* geo_validate's radius and width messages start with the word */
        const char *field = strncmp(err, "radius", 6) == 0  ? "radius_m"
                            : strncmp(err, "width", 5) == 0 ? "width_m"
                                                            : pts_key;
        api_error(c, 400, field, "%s", err);
        return -1;
    }
    return 0;
}

/* Bind the geometry to shape (p), points (p + 1) and radius_m (p + 2) of st; text receives
 * the points' JSON and must outlive the statement's step. */
static void bind_geometry(sqlite3_stmt *st, int p, const struct fence_geom *g, struct buf *text)
{
    struct jsonw w;
    jsonw_init(&w, text);
    jsonw_arr_begin(&w);
    for (size_t i = 0; i < g->geo.n; i++)
        point_json(&w, g->pts[i]);
    jsonw_arr_end(&w);
    sqlite3_bind_text(st, p, geo_shape_name(g->geo.shape), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, p + 1, (const char *)text->data, (int)text->len, SQLITE_STATIC);
    if (g->geo.shape == GEO_POLYGON)
        sqlite3_bind_null(st, p + 2);
    else
        sqlite3_bind_double(st, p + 2, g->geo.radius_m);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The body's `devices`: each a device of the caller's organisation, into a new sorted array
 * without repeats (*ids, *n). 1 present, 0 absent, -1 answered. */
static int read_devices(struct api_call *c, int64_t **ids, size_t *n)
{
    json_t *v = json_object_get(c->in, "devices");
    *ids = NULL;
    *n = 0;
    if (!v)
        return 0;
    if (!json_is_array(v) || json_array_size(v) > DEVICES_MAX) {
        api_error(c, 400, "devices", "must be an array of at most %d device ids", DEVICES_MAX);
        return -1;
    }
    size_t count = json_array_size(v);
    *ids = st_malloc((count ? count : 1) * sizeof **ids);
    for (size_t i = 0; i < count; i++) {
        json_t *id = json_array_get(v, i);
        if (!json_is_integer(id)) {
            api_error(c, 400, "devices", "item %zu is not a device id", i);
            return -1;
        }
        (*ids)[i] = json_integer_value(id);
    }
    qsort(*ids, count, sizeof **ids, cmp_i64);
    sqlite3_stmt *st;
    if (api_prepare(c, "SELECT 1 FROM devices WHERE id = ?1 AND org_id = ?2", &st))
        return -1;
    for (size_t i = 0; i < count; i++) {
        if (*n && (*ids)[*n - 1] == (*ids)[i])
            continue;
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, (*ids)[i]);
        sqlite3_bind_int64(st, 2, c->who.org_id);
        int rc = sqlite3_step(st);
        if (rc != SQLITE_ROW) {
            sqlite3_finalize(st);
            if (rc == SQLITE_DONE)
                api_error(c, 400, "devices", "no device %" PRId64 " in this organisation",
                          (*ids)[i]);
            else
                api_db_error(c);
            return -1;
        }
        (*ids)[(*n)++] = (*ids)[i];
    }
    sqlite3_finalize(st);
    return 1;
}

/* The body's `groups`: names (1..GROUP_MAX_LEN) into a new sorted array without repeats;
 * the strings belong to c->in. 1 present, 0 absent, -1 answered. */
static int read_groups(struct api_call *c, const char ***names, size_t *n)
{
    json_t *v = json_object_get(c->in, "groups");
    *names = NULL;
    *n = 0;
    if (!v)
        return 0;
    if (!json_is_array(v) || json_array_size(v) > GROUPS_MAX) {
        api_error(c, 400, "groups", "must be an array of at most %d group names", GROUPS_MAX);
        return -1;
    }
    size_t count = json_array_size(v);
    *names = st_malloc((count ? count : 1) * sizeof **names);
    for (size_t i = 0; i < count; i++) {
        json_t *s = json_array_get(v, i);
        size_t len = json_string_length(s);
        if (!json_is_string(s) || len == 0 || len > GROUP_MAX_LEN ||
            strlen(json_string_value(s)) != len) {
            api_error(c, 400, "groups", "item %zu is not a group name (1..%d characters)", i,
                      GROUP_MAX_LEN);
            return -1;
        }
        (*names)[i] = json_string_value(s);
    }
    qsort(*names, count, sizeof **names, cmp_str);
    for (size_t i = 0; i < count; i++)
        if (!*n || strcmp((*names)[*n - 1], (*names)[i]) != 0)
            (*names)[(*n)++] = (*names)[i];
    return 1;
}

/* Replace the fence's device targets and/or group targets with the body's (when given), and
 * set all_devices to whether none remain. In the caller's transaction; 0 or -1 answered. */
static int write_targets(struct api_call *c, int64_t fence)
{
    int64_t *ids;
    const char **names = NULL;
    size_t n_ids = 0, n_names = 0;
    int ret = -1, has_ids = read_devices(c, &ids, &n_ids), has_names = 0;
    sqlite3_stmt *st = NULL;
    if (has_ids < 0 || (has_names = read_groups(c, &names, &n_names)) < 0)
        goto done;
    const char *const del[] = {"DELETE FROM geofence_targets WHERE fence_id = ?1"
                               " AND device_id IS NOT NULL",
                               "DELETE FROM geofence_targets WHERE fence_id = ?1"
                               " AND group_name IS NOT NULL"};
    const char *const ins[] = {"INSERT INTO geofence_targets(fence_id, device_id) VALUES(?1, ?2)",
                               "INSERT INTO geofence_targets(fence_id, group_name) VALUES(?1, ?2)"};
    for (int list = 0; list < 2; list++) {
        if (!(list ? has_names : has_ids))
            continue;
        if (api_prepare(c, del[list], &st))
            goto done;
        sqlite3_bind_int64(st, 1, fence);
        int deleted = api_step_write(c, st, NULL); /* finalizes st */
        st = NULL;
        if (deleted || api_prepare(c, ins[list], &st))
            goto done;
        for (size_t i = 0; i < (list ? n_names : n_ids); i++) {
            sqlite3_reset(st);
            sqlite3_bind_int64(st, 1, fence);
            if (list)
                sqlite3_bind_text(st, 2, names[i], -1, SQLITE_STATIC);
            else
                sqlite3_bind_int64(st, 2, ids[i]);
            if (sqlite3_step(st) != SQLITE_DONE) {
                api_db_error(c);
                goto done;
            }
        }
        sqlite3_finalize(st);
        st = NULL;
    }
    if (api_prepare(c,
                    "UPDATE geofences SET all_devices = NOT EXISTS (SELECT 1 FROM"
                    " geofence_targets WHERE fence_id = ?1) WHERE id = ?1",
                    &st))
        goto done;
    sqlite3_bind_int64(st, 1, fence);
    ret = api_step_write(c, st, NULL);
    st = NULL;
done:
    sqlite3_finalize(st);
    st_free(ids);
    st_free(names);
    return ret;
}

/* The fields every write shares: name (required when creating), kind, dwell_s; bound to
 * st's parameters 1, 2 and 3 when present (NULL otherwise). 0 or -1 answered. */
static int bind_plain_fields(struct api_call *c, sqlite3_stmt *st, bool create)
{
    const char *name, *kind;
    int64_t dwell = 0;
    int has_dwell;
    if (api_field_str(c, "name", NAME_MAX_LEN, create, false, &name) ||
        api_field_str(c, "kind", 16, create, false, &kind) ||
        (has_dwell = api_field_int(c, "dwell_s", 0, DWELL_MAX_S, false, NULL, &dwell)) < 0)
        return -1;
    if (name && !*name) {
        api_error(c, 400, "name", "must not be empty");
        return -1;
    }
    if (kind && !kind_valid(kind)) {
        api_error(c, 400, "kind", "must be allowed, forbidden or control_point");
        return -1;
    }
    if (name)
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    if (kind)
        sqlite3_bind_text(st, 2, kind, -1, SQLITE_STATIC);
    if (create || has_dwell)
        sqlite3_bind_int64(st, 3, dwell);
    return 0;
}


/* Commit, tell the engine, log, answer the fence. On failure everything is rolled back. */
static void finish_write(struct api_call *c, int64_t id, const char *what, int status)
{
    if (!api_commit(c))
        return;
    store_domain_changed(api_store(c->api));
    st_log(ST_LOG_INFO, "event=geofence_%s by=%" PRId64 " fence=%" PRId64 " org=%" PRId64, what,
           c->who.user_id, id, c->who.org_id);
    answer_fence(c, id, status);
}

/* ---- handlers ------------------------------------------------------------- */

void api_geofences_list(struct api_call *c)
{
    int64_t limit, cursor;
    char kind[16];
    int has_kind;
    if (api_query_int(c, "limit", 1, 1000, 100, &limit) ||
        api_query_int(c, "cursor", 0, INT64_MAX, 0, &cursor) ||
        (has_kind = api_query_str(c, "kind", kind, sizeof kind)) < 0)
        return;
    if (has_kind && !kind_valid(kind)) {
        api_error(c, 400, "kind", "must be allowed, forbidden or control_point");
        return;
    }
    sqlite3_stmt *st, *targets;
    if (api_prepare(c,
                    "SELECT " FENCE_COLUMNS " FROM geofences WHERE org_id = ?1 AND id > ?2"
                    " AND (?3 IS NULL OR kind = ?3) ORDER BY id LIMIT ?4",
                    &st))
        return;
    if (prepare_targets(c, &targets)) {
        sqlite3_finalize(st);
        return;
    }
    sqlite3_bind_int64(st, 1, c->who.org_id);
    sqlite3_bind_int64(st, 2, cursor);
    if (has_kind)
        sqlite3_bind_text(st, 3, kind, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, limit + 1);
    api_answer_page(c, st, "geofences", limit, fence_json, targets);
    sqlite3_finalize(targets);
}

void api_geofences_get(struct api_call *c)
{
    answer_fence(c, c->id, 200);
}

void api_geofences_create(struct api_call *c)
{
    struct fence_geom g = {0};
    struct buf text = {0};
    sqlite3_stmt *st = NULL;
    if (api_body(c, fence_keys) || read_geometry(c, NULL, &g) || !api_begin(c))
        goto done;
    if (api_prepare(c, "SELECT count(*) FROM geofences WHERE org_id = ?1", &st))
        goto fail;
    sqlite3_bind_int64(st, 1, c->who.org_id);
    bool full = sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int64(st, 0) >= FENCES_PER_ORG_MAX;
    sqlite3_finalize(st);
    if (full) {
        api_error(c, 409, NULL, "at most %d geofences per organisation", FENCES_PER_ORG_MAX);
        goto fail;
    }
    if (api_prepare(c,
                    "INSERT INTO geofences(name, kind, dwell_s, shape, points, radius_m,"
                    " org_id, created_at, updated_at) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
                    &st))
        goto fail;
    if (bind_plain_fields(c, st, true)) {
        sqlite3_finalize(st);
        goto fail;
    }
    bind_geometry(st, 4, &g, &text);
    sqlite3_bind_int64(st, 7, c->who.org_id);
    sqlite3_bind_int64(st, 8, st_now());
    if (api_step_write(c, st, NULL))
        goto fail;
    int64_t id = sqlite3_last_insert_rowid(c->db);
    if (write_targets(c, id))
        goto fail;
    finish_write(c, id, "created", 201);
    goto done;
fail:
    api_rollback(c);
done:
    buf_free(&text);
    st_free(g.pts);
}

void api_geofences_update(struct api_call *c)
{
    struct geofence_def cur = {0};
    struct fence_geom g = {0};
    struct buf text = {0};
    sqlite3_stmt *st;
    if (api_body(c, fence_keys) || !api_begin(c))
        goto done;
    /* read in the transaction: a concurrent edit cannot slip between check and write */
    int rc = geofence_load(c->db, c->id, c->who.org_id, &cur);
    if (rc == ST_ENOTFOUND)
        api_error(c, 404, NULL, "no such geofence");
    else if (rc == ST_EIO)
        api_db_error(c);
    else if (rc)
        api_error(c, 500, NULL, "stored geometry unreadable");
    if (rc || read_geometry(c, &cur, &g))
        goto fail;
    if (api_prepare(c,
                    "UPDATE geofences SET name = coalesce(?1, name), kind = coalesce(?2, kind),"
                    " dwell_s = coalesce(?3, dwell_s), shape = ?4, points = ?5, radius_m = ?6,"
                    " updated_at = ?7 WHERE id = ?8 AND org_id = ?9",
                    &st))
        goto fail;
    if (bind_plain_fields(c, st, false)) {
        sqlite3_finalize(st);
        goto fail;
    }
    bind_geometry(st, 4, &g, &text);
    sqlite3_bind_int64(st, 7, st_now());
    sqlite3_bind_int64(st, 8, c->id);
    sqlite3_bind_int64(st, 9, c->who.org_id);
    if (api_step_write(c, st, NULL) || write_targets(c, c->id))
        goto fail;
    finish_write(c, c->id, "updated", 200);
    goto done;
fail:
    api_rollback(c);
done:
    buf_free(&text);
    st_free(g.pts);
    geofence_def_free(&cur);
}

void api_geofences_delete(struct api_call *c)
{
    /* targets and per-device states cascade; shipments drop the reference (SET NULL) or the
     * unlock zone (CASCADE); past events keep the id */
    if (!api_delete_owned(c, "geofences", "no such geofence"))
        return;
    store_domain_changed(api_store(c->api));
    st_log(ST_LOG_INFO, "event=geofence_deleted by=%" PRId64 " fence=%" PRId64, c->who.user_id,
           c->id);
    api_no_content(c);
}
