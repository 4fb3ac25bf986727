/* geofence.c — stored fences and their evaluation on the writer thread (geofence.h).
 *
 * Per (device, fence) the state is three facts: the side of the latest fix (inside),
 * the fix time that side began (since), and the side last reported by an event
 * (reported). An event fires when inside ≠ reported has held for the fence's dwell.
 * Rows exist only while inside or reported is set: a device far from every fence costs
 * nothing. Each device's states are cached after first use; the cache is dropped when
 * fences or devices change.
 */
#include "geofence.h"

#include <jansson.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/err.h"
#include "../core/idmap.h"
#include "../core/jsonw.h"
#include "../core/log.h"
#include "../core/mem.h"
#include "../core/timeutil.h"
#include "../store/schema.h"

#define REPLAY_MAX 20000   /* stored fixes one out-of-order replay reads at most */
#define HITS_MAX 256       /* fences one fix can be inside at once (more are ignored, logged) */
#define WALK_BACK_MAX 2000 /* fixes read back to find when a pending side began */

/* ---- reading fences ------------------------------------------------------ */

int geofence_points_parse(const char *json, struct geo_point **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    json_t *root = json_loads(json ? json : "", 0, NULL);
    if (!json_is_array(root) || json_array_size(root) == 0 ||
        json_array_size(root) > GEO_POINTS_MAX) {
        json_decref(root);
        return ST_EMALFORMED;
    }
    size_t count = json_array_size(root);
    struct geo_point *pts = st_calloc(count, sizeof *pts);
    for (size_t i = 0; i < count; i++) {
        json_t *p = json_array_get(root, i);
        if (!json_is_array(p) || json_array_size(p) != 2 || !json_is_number(json_array_get(p, 0)) ||
            !json_is_number(json_array_get(p, 1))) {
            st_free(pts);
            json_decref(root);
            return ST_EMALFORMED;
        }
        pts[i].lat = json_number_value(json_array_get(p, 0));
        pts[i].lon = json_number_value(json_array_get(p, 1));
    }
    json_decref(root);
    *out = pts;
    *n = count;
    return 0;
}

static void copy_col(char *dst, size_t cap, sqlite3_stmt *st, int col)
{
    const char *v = (const char *)sqlite3_column_text(st, col);
    snprintf(dst, cap, "%s", v ? v : "");
}

int geofence_read(sqlite3_stmt *st, int col, struct geofence_def *d)
{
    memset(d, 0, sizeof *d);
    d->id = sqlite3_column_int64(st, col);
    d->org_id = sqlite3_column_int64(st, col + 1);
    copy_col(d->name, sizeof d->name, st, col + 2);
    copy_col(d->kind, sizeof d->kind, st, col + 3);
    d->geo.id = d->id;
    d->geo.shape = (uint8_t)geo_shape_by_name((const char *)sqlite3_column_text(st, col + 4));
    if (!d->geo.shape ||
        geofence_points_parse((const char *)sqlite3_column_text(st, col + 5), &d->pts, &d->geo.n))
        return ST_EMALFORMED;
    d->geo.pts = d->pts;
    d->geo.radius_m = sqlite3_column_double(st, col + 6);
    d->dwell_s = sqlite3_column_int(st, col + 7);
    return 0;
}

void geofence_def_free(struct geofence_def *d)
{
    if (d) {
        st_free(d->pts);
        d->pts = NULL;
        d->geo.pts = NULL;
    }
}

int geofence_load(sqlite3 *db, int64_t id, int64_t org, struct geofence_def *d)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db,
                           "SELECT " GEOFENCE_COLUMNS
                           " FROM geofences WHERE id = ?1 AND (?2 = 0 OR org_id = ?2)",
                           -1, &st, NULL) != SQLITE_OK)
        return ST_EIO;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, org);
    int rc = sqlite3_step(st);
    int ret = rc == SQLITE_ROW    ? geofence_read(st, 0, d)
              : rc == SQLITE_DONE ? ST_ENOTFOUND
                                  : ST_EIO;
    sqlite3_finalize(st);
    return ret;
}

/* ---- the engine ------------------------------------------------------------ */

struct fence_entry {
    struct geofence_def def;
    bool all_devices;
    int64_t *devices; /* sorted */
    size_t n_devices;
    char **groups;
    size_t n_groups;
};

struct fence_state {
    int64_t fence_id;
    int64_t since;
    bool inside, reported, dirty;
};

struct device_geo {
    int64_t device_id;
    bool has_mark;
    int64_t mark_time, mark_pos; /* the latest fix evaluated */
    struct fence_state *states;
    size_t n_states, cap_states;
};

struct fix_note {
    int64_t org_id, device_id, fix_time, pos_id;
    double lat, lon;
    char uid[REPORT_ID_LEN];
    char group[DOMAIN_GROUP_MAX]; /* "" none */
};

struct geofence_engine {
    sqlite3 *db;
    atomic_bool reload;
    bool loaded;
    struct fence_entry *fences; /* by index position */
    size_t n_fences;
    struct idmap fence_pos; /* fence id → position + 1 */
    struct geo_index *ix;
    struct idmap dev_idx; /* device id → index into devs + 1 */
    struct device_geo *devs;
    size_t n_devs, cap_devs;
    struct fix_note *notes;
    size_t n_notes, cap_notes;
    sqlite3_stmt *sel_mark, *sel_states, *up_state, *del_state, *ins_event, *sel_prev, *sel_window,
        *sel_last_event, *sel_window_events, *del_event;
    struct buf json;
};

static void fences_free(struct geofence_engine *g)
{
    for (size_t i = 0; i < g->n_fences; i++) {
        struct fence_entry *f = &g->fences[i];
        geofence_def_free(&f->def);
        st_free(f->devices);
        for (size_t k = 0; k < f->n_groups; k++)
            st_free(f->groups[k]);
        st_free(f->groups);
    }
    st_free(g->fences);
    g->fences = NULL;
    g->n_fences = 0;
    geo_index_free(g->ix);
    g->ix = NULL;
    idmap_clear(&g->fence_pos);
}

static void devices_forget(struct geofence_engine *g)
{
    for (size_t i = 0; i < g->n_devs; i++)
        st_free(g->devs[i].states);
    g->n_devs = 0;
    idmap_clear(&g->dev_idx);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static char *dup_text(const unsigned char *s)
{
    size_t n = strlen((const char *)s);
    char *d = st_malloc(n + 1);
    memcpy(d, s, n + 1);
    return d;
}

static int fences_load(struct geofence_engine *g)
{
    fences_free(g);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(g->db,
                           "SELECT " GEOFENCE_COLUMNS ", all_devices FROM geofences ORDER BY id",
                           -1, &st, NULL) != SQLITE_OK)
        return ST_EIO;
    size_t cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (g->n_fences == cap) {
            cap = cap ? cap * 2 : 64;
            g->fences = st_realloc(g->fences, cap * sizeof *g->fences);
        }
        struct fence_entry *f = &g->fences[g->n_fences];
        memset(f, 0, sizeof *f);
        char err[160];
        if (geofence_read(st, 0, &f->def) || geo_validate(&f->def.geo, err, sizeof err)) {
            st_log(ST_LOG_WARN, "event=geofence_skipped fence=%lld reason=\"unreadable geometry\"",
                   (long long)f->def.id);
            geofence_def_free(&f->def);
            continue;
        }
        f->all_devices = sqlite3_column_int(st, 8) != 0;
        *idmap_put(&g->fence_pos, f->def.id, 0) = (int64_t)g->n_fences + 1;
        g->n_fences++;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return ST_EIO;
    if (sqlite3_prepare_v2(g->db, "SELECT fence_id, device_id, group_name FROM geofence_targets",
                           -1, &st, NULL) != SQLITE_OK)
        return ST_EIO;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t *pos = idmap_get(&g->fence_pos, sqlite3_column_int64(st, 0));
        if (!pos)
            continue;
        struct fence_entry *f = &g->fences[*pos - 1];
        if (sqlite3_column_type(st, 1) != SQLITE_NULL) {
            f->devices = st_realloc(f->devices, (f->n_devices + 1) * sizeof *f->devices);
            f->devices[f->n_devices++] = sqlite3_column_int64(st, 1);
        } else if (sqlite3_column_type(st, 2) != SQLITE_NULL) {
            f->groups = st_realloc(f->groups, (f->n_groups + 1) * sizeof *f->groups);
            f->groups[f->n_groups++] = dup_text(sqlite3_column_text(st, 2));
        }
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return ST_EIO;
    struct geo_fence *geos = st_calloc(g->n_fences ? g->n_fences : 1, sizeof *geos);
    for (size_t i = 0; i < g->n_fences; i++) {
        struct fence_entry *f = &g->fences[i];
        if (f->n_devices)
            qsort(f->devices, f->n_devices, sizeof *f->devices, cmp_i64);
        geos[i] = f->def.geo;
    }
    g->ix = geo_index_build(geos, g->n_fences);
    st_free(geos);
    return 0;
}

static bool fence_applies(const struct fence_entry *f, const struct fix_note *n)
{
    if (f->def.org_id != n->org_id)
        return false;
    if (f->all_devices)
        return true;
    if (f->n_devices &&
        bsearch(&n->device_id, f->devices, f->n_devices, sizeof *f->devices, cmp_i64))
        return true;
    for (size_t k = 0; n->group[0] && k < f->n_groups; k++)
        if (strcmp(f->groups[k], n->group) == 0)
            return true;
    return false;
}

/* Fence ids (ascending) containing the fix and applying to its device. */
static size_t fences_at(const struct geofence_engine *g, const struct fix_note *n, int64_t *ids)
{
    uint32_t hits[HITS_MAX];
    size_t total = geo_index_query(g->ix, (struct geo_point){n->lat, n->lon}, hits, HITS_MAX);
    if (total > HITS_MAX)
        total = HITS_MAX;
    size_t k = 0;
    for (size_t i = 0; i < total; i++)
        if (fence_applies(&g->fences[hits[i]], n))
            ids[k++] = g->fences[hits[i]].def.id; /* positions ascend with ids (ORDER BY id) */
    return k;
}

int geofence_engine_open(sqlite3 *db, struct geofence_engine **out)
{
    struct geofence_engine *g = st_calloc(1, sizeof *g);
    g->db = db;
    idmap_init(&g->fence_pos);
    idmap_init(&g->dev_idx);
    atomic_init(&g->reload, true);
    const char *events_window = " FROM events WHERE device_id = ?1 AND source = 'server'"
                                " AND type IN ('geofence_enter', 'geofence_exit')";
    char sql_last[256], sql_window[320];
    snprintf(sql_last, sizeof sql_last,
             "SELECT type%s AND fence_id = ?2 AND (time < ?3 OR (time = ?3 AND position_id <= ?4))"
             " ORDER BY time DESC, position_id DESC LIMIT 1",
             events_window);
    snprintf(sql_window, sizeof sql_window,
             "SELECT id, fence_id, type, position_id%s"
             " AND (time > ?2 OR (time = ?2 AND position_id > ?3))",
             events_window);
    /* the watermark is the device's latest position, which the store keeps anyway */
    if (schema_prepare(g->db,
                       "SELECT fix_time, position_id FROM device_state WHERE device_id = ?1"
                       " AND position_id IS NOT NULL",
                       &g->sel_mark) ||
        schema_prepare(
            g->db,
            "SELECT fence_id, inside, since, reported FROM geofence_state WHERE device_id = ?1",
            &g->sel_states) ||
        schema_prepare(g->db,
                       "INSERT INTO geofence_state(device_id, fence_id, inside, since, reported)"
                       " VALUES(?1, ?2, ?3, ?4, ?5) ON CONFLICT(device_id, fence_id) DO UPDATE SET"
                       " inside = ?3, since = ?4, reported = ?5",
                       &g->up_state) ||
        schema_prepare(g->db, "DELETE FROM geofence_state WHERE device_id = ?1 AND fence_id = ?2",
                       &g->del_state) ||
        schema_prepare(
            g->db,
            "INSERT INTO events(device_id, time, recv_time, type, source, fence_id, lat, lon,"
            " position_id, detail) VALUES(?1, ?2, ?3, ?4, 'server', ?5, ?6, ?7, ?8, ?9)",
            &g->ins_event) ||
        schema_prepare(
            g->db,
            "SELECT id, fix_time, lat, lon FROM positions WHERE device_id = ?1 AND valid = 1"
            " AND (fix_time < ?2 OR (fix_time = ?2 AND id < ?3))"
            " ORDER BY fix_time DESC, id DESC LIMIT ?4",
            &g->sel_prev) ||
        schema_prepare(
            g->db,
            "SELECT id, fix_time, lat, lon FROM positions WHERE device_id = ?1 AND valid = 1"
            " AND (fix_time > ?2 OR (fix_time = ?2 AND id >= ?3))"
            " ORDER BY fix_time, id LIMIT ?4",
            &g->sel_window) ||
        schema_prepare(g->db, sql_last, &g->sel_last_event) ||
        schema_prepare(g->db, sql_window, &g->sel_window_events) ||
        schema_prepare(g->db, "DELETE FROM events WHERE id = ?1", &g->del_event)) {
        geofence_engine_free(g);
        return ST_EIO;
    }
    *out = g;
    return 0;
}

void geofence_engine_free(struct geofence_engine *g)
{
    if (!g)
        return;
    sqlite3_stmt *all[] = {g->sel_mark,          g->sel_states, g->up_state,   g->del_state,
                           g->ins_event,         g->sel_prev,   g->sel_window, g->sel_last_event,
                           g->sel_window_events, g->del_event};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        sqlite3_finalize(all[i]);
    fences_free(g);
    devices_forget(g);
    idmap_deinit(&g->fence_pos);
    idmap_deinit(&g->dev_idx);
    st_free(g->devs);
    st_free(g->notes);
    buf_free(&g->json);
    st_free(g);
}

void geofence_engine_reload(struct geofence_engine *g)
{
    atomic_store(&g->reload, true);
}

size_t geofence_engine_size(const struct geofence_engine *g)
{
    return g->n_fences;
}

int geofence_batch_begin(struct geofence_engine *g)
{
    g->n_notes = 0;
    if (atomic_exchange(&g->reload, false) || !g->loaded) {
        devices_forget(g); /* states of deleted fences, targets and groups may have changed */
        if (fences_load(g)) {
            atomic_store(&g->reload, true);
            return ST_EIO;
        }
        g->loaded = true;
    }
    return 0;
}

void geofence_note_fix(struct geofence_engine *g, int64_t org_id, int64_t device_id,
                       const char *device_uid, const char *group, int64_t fix_time,
                       int64_t position_id, double lat, double lon)
{
    if (!g->n_fences)
        return;
    if (g->n_notes == g->cap_notes) {
        g->cap_notes = g->cap_notes ? g->cap_notes * 2 : 256;
        g->notes = st_realloc(g->notes, g->cap_notes * sizeof *g->notes);
    }
    struct fix_note *x = &g->notes[g->n_notes++];
    *x = (struct fix_note){org_id, device_id, fix_time, position_id, lat, lon, "", ""};
    snprintf(x->uid, sizeof x->uid, "%s", device_uid ? device_uid : "");
    snprintf(x->group, sizeof x->group, "%s", group ? group : "");
}

static int cmp_note(const void *a, const void *b)
{
    const struct fix_note *x = a, *y = b;
    if (x->device_id != y->device_id)
        return (x->device_id > y->device_id) - (x->device_id < y->device_id);
    if (x->fix_time != y->fix_time)
        return (x->fix_time > y->fix_time) - (x->fix_time < y->fix_time);
    return (x->pos_id > y->pos_id) - (x->pos_id < y->pos_id);
}

/* (t1, p1) < (t2, p2) in fix order. */
static bool fix_before(int64_t t1, int64_t p1, int64_t t2, int64_t p2)
{
    return t1 < t2 || (t1 == t2 && p1 < p2);
}

static struct device_geo *device_get(struct geofence_engine *g, int64_t device_id, int *err)
{
    int64_t *idx = idmap_get(&g->dev_idx, device_id);
    if (idx)
        return &g->devs[*idx - 1];
    if (g->n_devs == g->cap_devs) {
        g->cap_devs = g->cap_devs ? g->cap_devs * 2 : 256;
        g->devs = st_realloc(g->devs, g->cap_devs * sizeof *g->devs);
    }
    struct device_geo *d = &g->devs[g->n_devs];
    memset(d, 0, sizeof *d);
    d->device_id = device_id;
    sqlite3_bind_int64(g->sel_mark, 1, device_id);
    int rc = sqlite3_step(g->sel_mark);
    if (rc == SQLITE_ROW) {
        d->has_mark = true;
        d->mark_time = sqlite3_column_int64(g->sel_mark, 0);
        d->mark_pos = sqlite3_column_int64(g->sel_mark, 1);
    }
    sqlite3_reset(g->sel_mark);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        *err = ST_EIO;
        return NULL;
    }
    sqlite3_bind_int64(g->sel_states, 1, device_id);
    while ((rc = sqlite3_step(g->sel_states)) == SQLITE_ROW) {
        if (d->n_states == d->cap_states) {
            d->cap_states = d->cap_states ? d->cap_states * 2 : 4;
            d->states = st_realloc(d->states, d->cap_states * sizeof *d->states);
        }
        d->states[d->n_states++] = (struct fence_state){
            .fence_id = sqlite3_column_int64(g->sel_states, 0),
            .inside = sqlite3_column_int(g->sel_states, 1) != 0,
            .since = sqlite3_column_int64(g->sel_states, 2),
            .reported = sqlite3_column_int(g->sel_states, 3) != 0,
        };
    }
    sqlite3_reset(g->sel_states);
    if (rc != SQLITE_DONE) {
        st_free(d->states);
        *err = ST_EIO;
        return NULL;
    }
    *idmap_put(&g->dev_idx, device_id, 0) = (int64_t)++g->n_devs;
    return d;
}

static struct fence_state *state_find(struct device_geo *d, int64_t fence_id)
{
    for (size_t i = 0; i < d->n_states; i++)
        if (d->states[i].fence_id == fence_id)
            return &d->states[i];
    return NULL;
}

static struct fence_state *state_add(struct device_geo *d, int64_t fence_id, int64_t t)
{
    if (d->n_states == d->cap_states) {
        d->cap_states = d->cap_states ? d->cap_states * 2 : 4;
        d->states = st_realloc(d->states, d->cap_states * sizeof *d->states);
    }
    struct fence_state *s = &d->states[d->n_states++];
    *s = (struct fence_state){.fence_id = fence_id, .since = t};
    return s;
}

static const struct fence_entry *fence_by_id(const struct geofence_engine *g, int64_t id)
{
    int64_t *pos = idmap_get(&g->fence_pos, id);
    return pos ? &g->fences[*pos - 1] : NULL;
}

/* The side of one fence at fix time t; returns +1 enter, -1 exit, 0 nothing. */
static int fence_step(struct fence_state *s, bool inside, int64_t t, int dwell_s)
{
    if (inside != s->inside) {
        s->inside = inside;
        s->since = t;
        s->dirty = true;
    }
    if (s->inside != s->reported && t - s->since >= dwell_s) {
        s->reported = s->inside;
        s->dirty = true;
        return s->inside ? 1 : -1;
    }
    return 0;
}

struct new_event {
    int64_t fence_id, time, pos_id;
    double lat, lon;
    int dir;
};

static int event_store(struct geofence_engine *g, const struct fix_note *n,
                       const struct new_event *e, bool late, domain_event_fn *fn, void *arg)
{
    const struct fence_entry *f = fence_by_id(g, e->fence_id);
    struct jsonw w;
    g->json.len = 0;
    jsonw_init(&w, &g->json);
    jsonw_obj_begin(&w);
    jsonw_key(&w, "fence");
    jsonw_str(&w, f ? f->def.name : "");
    jsonw_key(&w, "kind");
    jsonw_str(&w, f ? f->def.kind : "");
    if (late) {
        jsonw_key(&w, "late");
        jsonw_bool(&w, true);
    }
    jsonw_obj_end(&w);
    const char *type = e->dir > 0 ? "geofence_enter" : "geofence_exit";
    sqlite3_stmt *st = g->ins_event;
    sqlite3_bind_int64(st, 1, n->device_id);
    sqlite3_bind_int64(st, 2, e->time);
    sqlite3_bind_int64(st, 3, st_now_ms());
    sqlite3_bind_text(st, 4, type, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, e->fence_id);
    sqlite3_bind_double(st, 6, e->lat);
    sqlite3_bind_double(st, 7, e->lon);
    sqlite3_bind_int64(st, 8, e->pos_id);
    sqlite3_bind_text(st, 9, (const char *)g->json.data, (int)g->json.len, SQLITE_STATIC);
    if (schema_step(st))
        return ST_EIO;
    struct domain_event de = {
        .type = type,
        .org_id = n->org_id,
        .device_id = n->device_id,
        .device_uid = n->uid,
        .group_name = n->group[0] ? n->group : NULL,
        .time = e->time,
        .event_id = sqlite3_last_insert_rowid(g->db),
        .fence_id = e->fence_id,
        .has_pos = true,
        .lat = e->lat,
        .lon = e->lon,
        .speed_kmh = -1,
        .battery_pct = -1,
        .source = "server",
        .granted = -1,
        .reason = f ? f->def.kind : NULL,
        .detail = buf_cstr(&g->json),
        .late = late,
    };
    return fn ? fn(arg, &de) : 0;
}

/* Fast path: the device's fixes of this batch all follow its watermark. */
static int evaluate_in_order(struct geofence_engine *g, struct device_geo *d,
                             const struct fix_note *notes, size_t n, domain_event_fn *fn, void *arg)
{
    int64_t ids[HITS_MAX];
    for (size_t i = 0; i < n; i++) {
        const struct fix_note *x = &notes[i];
        size_t k = fences_at(g, x, ids);
        for (size_t j = 0; j < k; j++)
            if (!state_find(d, ids[j]))
                state_add(d, ids[j], x->fix_time);
        for (size_t s = 0; s < d->n_states; s++) {
            struct fence_state *st = &d->states[s];
            const struct fence_entry *f = fence_by_id(g, st->fence_id);
            bool inside = bsearch(&st->fence_id, ids, k, sizeof *ids, cmp_i64) != NULL;
            int dir = fence_step(st, inside, x->fix_time, f ? f->def.dwell_s : 0);
            if (!dir)
                continue;
            struct new_event e = {st->fence_id, x->fix_time, x->pos_id, x->lat, x->lon, dir};
            if (event_store(g, x, &e, false, fn, arg))
                return ST_EIO;
        }
    }
    d->mark_time = notes[n - 1].fix_time;
    d->mark_pos = notes[n - 1].pos_id;
    d->has_mark = true;
    return 0;
}

struct window_fix {
    int64_t pos_id, time;
    double lat, lon;
};

static void id_add(int64_t **ids, size_t *n, size_t *cap, int64_t id)
{
    for (size_t i = 0; i < *n; i++)
        if ((*ids)[i] == id)
            return;
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 16;
        *ids = st_realloc(*ids, *cap * sizeof **ids);
    }
    (*ids)[(*n)++] = id;
}

/* The side a fence was reported on at fix (t, pos): its last server event up to there. */
static int reported_at(struct geofence_engine *g, int64_t device_id, int64_t fence_id, int64_t t,
                       int64_t pos, bool *reported)
{
    sqlite3_stmt *st = g->sel_last_event;
    sqlite3_bind_int64(st, 1, device_id);
    sqlite3_bind_int64(st, 2, fence_id);
    sqlite3_bind_int64(st, 3, t);
    sqlite3_bind_int64(st, 4, pos);
    int rc = sqlite3_step(st);
    *reported =
        rc == SQLITE_ROW && strcmp((const char *)sqlite3_column_text(st, 0), "geofence_enter") == 0;
    sqlite3_reset(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : ST_EIO;
}

/* When the side `inside` of a fence began, looking back from fix (t, pos) (inclusive).
 * Only needed while an event is pending; stops once the side has held for dwell_s. */
static int side_since(struct geofence_engine *g, const struct fix_note *x,
                      const struct fence_entry *f, int64_t t, int64_t pos, bool inside,
                      int64_t *since)
{
    *since = t;
    sqlite3_stmt *st = g->sel_prev;
    sqlite3_bind_int64(st, 1, x->device_id);
    sqlite3_bind_int64(st, 2, t);
    sqlite3_bind_int64(st, 3, pos);
    sqlite3_bind_int(st, 4, WALK_BACK_MAX);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct geo_point p = {sqlite3_column_double(st, 2), sqlite3_column_double(st, 3)};
        if (geo_contains(&f->def.geo, p) != inside || *since < t - f->def.dwell_s)
            break;
        *since = sqlite3_column_int64(st, 1);
    }
    sqlite3_reset(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : ST_EIO;
}

/* Out-of-order path: replay the device's stored fixes from the one before its earliest fix
 * of this batch to the latest, for every fence the span touches, and correct the span's
 * events: add the missing (late), remove the ones history proves false. */
static int evaluate_replay(struct geofence_engine *g, struct device_geo *d,
                           const struct fix_note *first, domain_event_fn *fn, void *arg)
{
    int rc = ST_EIO;
    struct window_fix *win = NULL;
    size_t n_win = 0, cap_win = 0;
    int64_t *touched = NULL, *hits = NULL;
    size_t n_touched = 0, cap_touched = 0;
    struct new_event *fresh = NULL;
    size_t n_fresh = 0, cap_fresh = 0;
    struct fence_state *replay = NULL;

    /* the window: the fix before the earliest of the batch (if any), then everything after */
    int64_t from_t = first->fix_time, from_pos = first->pos_id;
    sqlite3_stmt *st = g->sel_prev;
    sqlite3_bind_int64(st, 1, d->device_id);
    sqlite3_bind_int64(st, 2, from_t);
    sqlite3_bind_int64(st, 3, from_pos);
    sqlite3_bind_int(st, 4, 1);
    int step = sqlite3_step(st);
    bool has_prev = step == SQLITE_ROW;
    if (has_prev) {
        from_pos = sqlite3_column_int64(st, 0);
        from_t = sqlite3_column_int64(st, 1);
    }
    sqlite3_reset(st);
    if (step != SQLITE_ROW && step != SQLITE_DONE)
        goto out;
    st = g->sel_window;
    sqlite3_bind_int64(st, 1, d->device_id);
    sqlite3_bind_int64(st, 2, from_t);
    sqlite3_bind_int64(st, 3, from_pos);
    sqlite3_bind_int(st, 4, REPLAY_MAX);
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (n_win == cap_win) {
            cap_win = cap_win ? cap_win * 2 : 256;
            win = st_realloc(win, cap_win * sizeof *win);
        }
        win[n_win++] =
            (struct window_fix){sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1),
                                sqlite3_column_double(st, 2), sqlite3_column_double(st, 3)};
    }
    sqlite3_reset(st);
    if (step != SQLITE_DONE || n_win == 0)
        goto out;
    if (n_win == REPLAY_MAX)
        st_log(ST_LOG_WARN, "event=geofence_replay_cut device=%lld fixes=%d",
               (long long)d->device_id, REPLAY_MAX);

    /* fences the span touches: inside at some fix, an event in the span, or active now */
    hits = st_malloc(HITS_MAX * sizeof *hits);
    for (size_t i = 0; i < n_win; i++) {
        struct fix_note x = *first;
        x.lat = win[i].lat;
        x.lon = win[i].lon;
        size_t k = fences_at(g, &x, hits);
        for (size_t j = 0; j < k; j++)
            id_add(&touched, &n_touched, &cap_touched, hits[j]);
    }
    for (size_t s = 0; s < d->n_states; s++)
        id_add(&touched, &n_touched, &cap_touched, d->states[s].fence_id);
    st = g->sel_window_events;
    sqlite3_bind_int64(st, 1, d->device_id);
    sqlite3_bind_int64(st, 2, from_t);
    sqlite3_bind_int64(st, 3, from_pos);
    while ((step = sqlite3_step(st)) == SQLITE_ROW)
        id_add(&touched, &n_touched, &cap_touched, sqlite3_column_int64(st, 1));
    sqlite3_reset(st);
    if (step != SQLITE_DONE)
        goto out;

    /* replay each touched fence over the window */
    replay = st_calloc(n_touched ? n_touched : 1, sizeof *replay);
    for (size_t j = 0; j < n_touched; j++) {
        const struct fence_entry *f = fence_by_id(g, touched[j]);
        struct fence_state *s = &replay[j];
        s->fence_id = touched[j];
        if (!f) /* deleted fence: its old events stay, no new ones */
            continue;
        struct fix_note x = *first;
        bool applies = fence_applies(f, &x);
        size_t i0 = 0;
        if (has_prev) { /* the state after the fix before the batch's earliest */
            struct geo_point p = {win[0].lat, win[0].lon};
            s->inside = applies && geo_contains(&f->def.geo, p);
            if (reported_at(g, d->device_id, f->def.id, win[0].time, win[0].pos_id, &s->reported))
                goto out;
            s->since = win[0].time;
            if (s->inside != s->reported && f->def.dwell_s > 0 &&
                side_since(g, &x, f, win[0].time, win[0].pos_id, s->inside, &s->since))
                goto out;
            i0 = 1;
        }
        for (size_t i = i0; i < n_win; i++) {
            struct geo_point p = {win[i].lat, win[i].lon};
            bool inside = applies && geo_contains(&f->def.geo, p);
            int dir = fence_step(s, inside, win[i].time, f->def.dwell_s);
            if (!dir)
                continue;
            if (n_fresh == cap_fresh) {
                cap_fresh = cap_fresh ? cap_fresh * 2 : 16;
                fresh = st_realloc(fresh, cap_fresh * sizeof *fresh);
            }
            fresh[n_fresh++] = (struct new_event){f->def.id,  win[i].time, win[i].pos_id,
                                                  win[i].lat, win[i].lon,  dir};
        }
    }

    /* correct the span's stored events: remove the false, keep the confirmed */
    st = g->sel_window_events;
    sqlite3_bind_int64(st, 1, d->device_id);
    sqlite3_bind_int64(st, 2, from_t);
    sqlite3_bind_int64(st, 3, from_pos);
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t ev_id = sqlite3_column_int64(st, 0), fence = sqlite3_column_int64(st, 1);
        int dir = strcmp((const char *)sqlite3_column_text(st, 2), "geofence_enter") == 0 ? 1 : -1;
        int64_t pos = sqlite3_column_int64(st, 3);
        bool kept = false;
        for (size_t i = 0; i < n_fresh && !kept; i++)
            if (fresh[i].fence_id == fence && fresh[i].pos_id == pos && fresh[i].dir == dir) {
                fresh[i].dir = 0; /* already stored */
                kept = true;
            }
        if (!kept && fence_by_id(g, fence)) {
            sqlite3_bind_int64(g->del_event, 1, ev_id);
            if (schema_step(g->del_event))
                goto out_reset;
            st_log(ST_LOG_INFO,
                   "event=geofence_event_retracted device=%lld fence=%lld event=%lld "
                   "reason=\"history that arrived late shows it did not happen\"",
                   (long long)d->device_id, (long long)fence, (long long)ev_id);
        }
    }
    sqlite3_reset(st);
    if (step != SQLITE_DONE)
        goto out;
    for (size_t i = 0; i < n_fresh; i++) {
        if (!fresh[i].dir)
            continue;
        struct fix_note x = *first;
        x.fix_time = fresh[i].time;
        x.pos_id = fresh[i].pos_id;
        /* late: the event's fix is older than what the device had already told us */
        bool late =
            d->has_mark && fix_before(fresh[i].time, fresh[i].pos_id, d->mark_time, d->mark_pos);
        if (event_store(g, &x, &fresh[i], late, fn, arg))
            goto out;
    }

    /* the device's states become the replay's end states */
    for (size_t s = 0; s < d->n_states; s++)
        d->states[s].dirty = true; /* rewritten or deleted below */
    for (size_t j = 0; j < n_touched; j++) {
        struct fence_state *cur = state_find(d, replay[j].fence_id);
        if (!cur)
            cur = state_add(d, replay[j].fence_id, replay[j].since);
        *cur = replay[j];
        cur->dirty = true;
    }
    d->mark_time = win[n_win - 1].time;
    d->mark_pos = win[n_win - 1].pos_id;
    d->has_mark = true;
    rc = 0;
    goto out;
out_reset:
    sqlite3_reset(g->sel_window_events);
out:
    st_free(win);
    st_free(touched);
    st_free(hits);
    st_free(fresh);
    st_free(replay);
    return rc;
}

/* Write the device's changed states (rows only while inside or reported). */
static int device_flush(struct geofence_engine *g, struct device_geo *d)
{
    size_t keep = 0;
    for (size_t i = 0; i < d->n_states; i++) {
        struct fence_state *s = &d->states[i];
        bool active = s->inside || s->reported;
        if (s->dirty) {
            sqlite3_stmt *st = active ? g->up_state : g->del_state;
            sqlite3_bind_int64(st, 1, d->device_id);
            sqlite3_bind_int64(st, 2, s->fence_id);
            if (active) {
                sqlite3_bind_int(st, 3, s->inside);
                sqlite3_bind_int64(st, 4, s->since);
                sqlite3_bind_int(st, 5, s->reported);
            }
            if (schema_step(st))
                return ST_EIO;
            s->dirty = false;
        }
        if (active)
            d->states[keep++] = *s;
    }
    d->n_states = keep;
    return 0;
}

int geofence_batch_end(struct geofence_engine *g, domain_event_fn *fn, void *arg)
{
    if (!g->n_notes)
        return 0;
    qsort(g->notes, g->n_notes, sizeof *g->notes, cmp_note);
    int rc = 0;
    for (size_t i = 0; i < g->n_notes && !rc;) {
        size_t j = i;
        while (j < g->n_notes && g->notes[j].device_id == g->notes[i].device_id)
            j++;
        struct device_geo *d = device_get(g, g->notes[i].device_id, &rc);
        if (!d)
            break;
        const struct fix_note *first = &g->notes[i];
        bool late =
            d->has_mark && fix_before(first->fix_time, first->pos_id, d->mark_time, d->mark_pos);
        rc = late ? evaluate_replay(g, d, first, fn, arg)
                  : evaluate_in_order(g, d, first, j - i, fn, arg);
        if (!rc)
            rc = device_flush(g, d);
        i = j;
    }
    g->n_notes = 0;
    if (rc) /* the transaction rolls back: cached states may be ahead of the database */
        devices_forget(g);
    return rc;
}
