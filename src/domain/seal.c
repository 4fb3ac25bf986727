/* seal.c — seal state and custody facts from device events (seal.h). */
#include "seal.h"

#include <stdio.h>
#include <string.h>

#include "../core/buf.h"
#include "../core/err.h"
#include "../core/idmap.h"
#include "../core/jsonw.h"
#include "../core/log.h"
#include "../core/mem.h"
#include "../core/timeutil.h"
#include "../store/schema.h"
#include "custody.h"
#include "geofence.h"

enum { STATE_NONE = 0, STATE_SEALED, STATE_UNSEALED, STATE_VIOLATED };
static const char *const state_names[] = {NULL, SEAL_SEALED, SEAL_UNSEALED, SEAL_VIOLATED};

struct seal_device {
    int64_t shipment_id;
    int state;
};

struct seal_engine {
    sqlite3 *db;
    struct idmap idx; /* device id → index into devs + 1 */
    struct seal_device *devs;
    size_t n_devs, cap_devs;
    sqlite3_stmt *sel_shipment, *sel_state, *up_state, *sel_zones, *has_cards, *sel_card,
        *sel_last_pos;
    struct buf json;
};

int seal_engine_open(sqlite3 *db, struct seal_engine **out)
{
    struct seal_engine *s = st_calloc(1, sizeof *s);
    s->db = db;
    idmap_init(&s->idx);
    if (schema_prepare(s->db, "SELECT id FROM shipments WHERE device_id = ?1 AND status = 'open'",
                       &s->sel_shipment) ||
        schema_prepare(s->db, "SELECT state FROM seal_state WHERE device_id = ?1", &s->sel_state) ||
        schema_prepare(s->db,
                       "INSERT INTO seal_state(device_id, state, since, event_id, reason)"
                       " VALUES(?1, ?2, ?3, ?4, ?5) ON CONFLICT(device_id) DO UPDATE SET"
                       " state = ?2, since = ?3, event_id = ?4, reason = ?5",
                       &s->up_state) ||
        schema_prepare(s->db, "SELECT fence_id FROM shipment_unlock_zones WHERE shipment_id = ?1",
                       &s->sel_zones) ||
        schema_prepare(s->db, "SELECT count(*) FROM shipment_cards WHERE shipment_id = ?1",
                       &s->has_cards) ||
        schema_prepare(s->db, "SELECT 1 FROM shipment_cards WHERE shipment_id = ?1 AND card = ?2",
                       &s->sel_card) ||
        schema_prepare(s->db,
                       "SELECT lat, lon FROM device_state WHERE device_id = ?1 AND valid = 1"
                       " AND lat IS NOT NULL",
                       &s->sel_last_pos)) {
        seal_engine_free(s);
        return ST_EIO;
    }
    *out = s;
    return 0;
}

void seal_engine_free(struct seal_engine *s)
{
    if (!s)
        return;
    sqlite3_stmt *all[] = {s->sel_shipment, s->sel_state, s->up_state,    s->sel_zones,
                           s->has_cards,    s->sel_card,  s->sel_last_pos};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        sqlite3_finalize(all[i]);
    idmap_deinit(&s->idx);
    st_free(s->devs);
    buf_free(&s->json);
    st_free(s);
}

void seal_engine_reload(struct seal_engine *s)
{
    idmap_clear(&s->idx);
    s->n_devs = 0;
}

/* One integer (or NULL as 0) from a one-row query. */
static int query_int(sqlite3_stmt *st, int64_t *out)
{
    int rc = sqlite3_step(st);
    *out = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : ST_EIO;
}

static struct seal_device *device_get(struct seal_engine *s, int64_t device_id)
{
    int64_t *idx = idmap_get(&s->idx, device_id);
    if (idx)
        return &s->devs[*idx - 1];
    struct seal_device d = {0};
    sqlite3_bind_int64(s->sel_shipment, 1, device_id);
    if (query_int(s->sel_shipment, &d.shipment_id))
        return NULL;
    sqlite3_bind_int64(s->sel_state, 1, device_id);
    int rc = sqlite3_step(s->sel_state);
    if (rc == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(s->sel_state, 0);
        for (int i = STATE_SEALED; i <= STATE_VIOLATED; i++)
            if (name && strcmp(name, state_names[i]) == 0)
                d.state = i;
    }
    sqlite3_reset(s->sel_state);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return NULL;
    if (s->n_devs == s->cap_devs) {
        s->cap_devs = s->cap_devs ? s->cap_devs * 2 : 256;
        s->devs = st_realloc(s->devs, s->cap_devs * sizeof *s->devs);
    }
    s->devs[s->n_devs] = d;
    *idmap_put(&s->idx, device_id, 0) = (int64_t)++s->n_devs;
    return &s->devs[s->n_devs - 1];
}

int seal_shipment_of(struct seal_engine *s, int64_t device_id, int64_t *shipment_id)
{
    struct seal_device *d = device_get(s, device_id);
    *shipment_id = d ? d->shipment_id : 0;
    return d ? 0 : ST_EIO;
}

static int state_set(struct seal_engine *s, struct seal_device *d, int64_t device_id, int state,
                     int64_t time, int64_t event_id, const char *reason)
{
    if (d->state == state)
        return 0;
    d->state = state;
    sqlite3_stmt *st = s->up_state;
    sqlite3_bind_int64(st, 1, device_id);
    sqlite3_bind_text(st, 2, state_names[state], -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, time);
    if (event_id)
        sqlite3_bind_int64(st, 4, event_id);
    if (reason && reason[0])
        sqlite3_bind_text(st, 5, reason, -1, SQLITE_TRANSIENT);
    return schema_step(st);
}

int seal_on_lock_status(struct seal_engine *s, int64_t device_id, bool locked, int64_t time)
{
    struct seal_device *d = device_get(s, device_id);
    if (!d)
        return ST_EIO;
    if (d->state != STATE_NONE)
        return 0;
    return state_set(s, d, device_id, locked ? STATE_SEALED : STATE_UNSEALED, time, 0,
                     "lock status");
}

/* Where the unlock happened: its own fix, else the device's last. */
static bool unlock_position(struct seal_engine *s, const struct domain_event *e,
                            struct geo_point *p)
{
    if (e->has_pos) {
        *p = (struct geo_point){e->lat, e->lon};
        return true;
    }
    sqlite3_bind_int64(s->sel_last_pos, 1, e->device_id);
    bool found = sqlite3_step(s->sel_last_pos) == SQLITE_ROW;
    if (found)
        *p = (struct geo_point){sqlite3_column_double(s->sel_last_pos, 0),
                                sqlite3_column_double(s->sel_last_pos, 1)};
    sqlite3_reset(s->sel_last_pos);
    return found;
}

/* Is the unlock inside one of the shipment's authorised zones? *zones: how many it has;
 * zone: the name of the one containing it. */
static int unlock_zone_check(struct seal_engine *s, const struct domain_event *e, int *zones,
                             bool *inside, char *zone, size_t zone_cap)
{
    *zones = 0;
    *inside = false;
    struct geo_point p;
    bool has_pos = unlock_position(s, e, &p);
    sqlite3_bind_int64(s->sel_zones, 1, e->shipment_id);
    int rc;
    while ((rc = sqlite3_step(s->sel_zones)) == SQLITE_ROW) {
        (*zones)++;
        struct geofence_def def;
        if (!has_pos || *inside ||
            geofence_load(s->db, sqlite3_column_int64(s->sel_zones, 0), 0, &def))
            continue;
        if (geo_contains(&def.geo, p)) {
            *inside = true;
            snprintf(zone, zone_cap, "%s", def.name);
        }
        geofence_def_free(&def);
    }
    sqlite3_reset(s->sel_zones);
    return rc == SQLITE_DONE ? 0 : ST_EIO;
}

/* Is the card on the shipment's list (true when the shipment lists none)? */
static int card_check(struct seal_engine *s, int64_t shipment_id, const char *card, bool *listed,
                      bool *known)
{
    int64_t n;
    sqlite3_bind_int64(s->has_cards, 1, shipment_id);
    if (query_int(s->has_cards, &n))
        return ST_EIO;
    *listed = n > 0;
    *known = true;
    if (!*listed)
        return 0;
    int64_t hit;
    sqlite3_bind_int64(s->sel_card, 1, shipment_id);
    sqlite3_bind_text(s->sel_card, 2, card, -1, SQLITE_STATIC);
    if (query_int(s->sel_card, &hit))
        return ST_EIO;
    *known = hit != 0;
    return 0;
}

static int derive(const struct domain_event *e, const char *type, const char *reason,
                  const char *detail, domain_event_fn *fn, void *arg)
{
    struct domain_event d = *e;
    d.type = type;
    d.reason = reason;
    d.detail = detail;
    return fn ? fn(arg, &d) : 0;
}

int seal_on_event(struct seal_engine *s, const struct domain_event *e, domain_event_fn *fn,
                  void *arg)
{
    const char *kind = NULL;
    int state = STATE_NONE;
    if (strcmp(e->type, "lock") == 0) {
        kind = "sealed";
        state = STATE_SEALED;
    } else if (strcmp(e->type, "unlock") == 0) {
        kind = "unsealed";
        state = STATE_UNSEALED;
    } else if (strcmp(e->type, "tamper") == 0) {
        kind = "tamper";
        state = STATE_VIOLATED;
    } else if (strcmp(e->type, "wrong_password") == 0) {
        kind = "wrong_password";
    } else if (strcmp(e->type, "rfid_access") == 0 && e->granted == 0) {
        kind = "card_refused";
    } else if (strcmp(e->type, "unlock_refused") == 0) {
        kind = "unlock_refused";
    } else {
        return 0;
    }
    struct seal_device *d = device_get(s, e->device_id);
    if (!d)
        return ST_EIO;
    if (state && !(d->state == STATE_VIOLATED && state != STATE_VIOLATED) &&
        state_set(s, d, e->device_id, state, e->time, e->event_id, e->reason))
        return ST_EIO;

    struct jsonw w;
    s->json.len = 0;
    jsonw_init(&w, &s->json);
    jsonw_obj_begin(&w);
    jsonw_key(&w, "event");
    jsonw_str(&w, e->type);
    if (e->reason && e->reason[0]) {
        jsonw_key(&w, "reason");
        jsonw_str(&w, e->reason);
    }
    bool outside = false, unknown_card = false;
    if (state == STATE_UNSEALED && d->shipment_id) {
        int zones;
        bool inside;
        char zone[sizeof((struct geofence_def *)0)->name] = "";
        if (unlock_zone_check(s, e, &zones, &inside, zone, sizeof zone))
            return ST_EIO;
        if (zones) {
            outside = !inside;
            jsonw_key(&w, "authorised_zone");
            if (inside)
                jsonw_str(&w, zone);
            else
                jsonw_null(&w);
        }
        if (e->card && e->card[0]) {
            bool listed, known;
            if (card_check(s, d->shipment_id, e->card, &listed, &known))
                return ST_EIO;
            if (listed) {
                unknown_card = !known;
                jsonw_key(&w, "card_authorised");
                jsonw_bool(&w, known);
            }
        }
    }
    jsonw_obj_end(&w);
    const char *detail = buf_cstr(&s->json);
    if (d->shipment_id) {
        struct custody_fact f = {
            .shipment_id = d->shipment_id,
            .time = e->time,
            .kind = kind,
            .actor = e->card && e->card[0] ? e->card : e->device_uid,
            .source = e->source && e->source[0] ? e->source : "device",
            .device_id = e->device_id,
            .event_id = e->event_id,
            .has_pos = e->has_pos,
            .lat = e->lat,
            .lon = e->lon,
            .detail = detail,
        };
        int rc = custody_append(s->db, &f, st_now_ms(), NULL);
        if (rc == ST_EIO)
            return ST_EIO;
        if (rc) { /* a fact we cannot record is a bug here, not a reason to lose the frame */
            char dev[ST_LOG_TEXT_MAX];
            st_log(ST_LOG_ERROR,
                   "event=custody_append_failed device=%s shipment=%lld reason=\"%s\"",
                   st_log_text(e->device_uid, dev), (long long)d->shipment_id, st_strerror(rc));
        }
    }
    if (outside && derive(e, "unlock_outside_zone", "outside_authorised_zones", detail, fn, arg))
        return ST_EIO;
    if (unknown_card && derive(e, "unknown_card", "card_not_authorised", detail, fn, arg))
        return ST_EIO;
    return 0;
}
