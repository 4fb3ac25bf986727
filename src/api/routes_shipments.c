/* routes_shipments.c — shipments (a seal bound to an order, its authorised unlock zones
 * and cards), a device's seal state, and the seal reports. Opening and closing a
 * shipment are custody facts, written in the same transaction as the change. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "../core/log.h"
#include "../core/timeutil.h"
#include "../domain/custody.h"
#include "api_internal.h"

#define REF_MAX 128
#define TEXT_MAX 256
#define CARDS_MAX 500u /* a JT701D holds 500 cards */
#define ZONES_MAX 100u

static const char *const shipment_keys[] = {
    "reference",   "device_id", "origin",       "destination", "origin_fence_id",
    "destination_fence_id",     "corridor_fence_id", "unlock_zones", "cards", "notes",
    "status",      NULL};

#define SHIPMENT_COLUMNS                                                                        \
    "s.id, s.reference, s.device_id, d.uid, s.origin, s.destination, s.origin_fence_id,"      \
    " s.destination_fence_id, s.corridor_fence_id, s.status, s.notes, s.created_at,"          \
    " s.closed_at, s.custody_seq, s.custody_head, ss.state, ss.since, ss.reason"
#define SHIPMENT_FROM                                                                           \
    " FROM shipments s LEFT JOIN devices d ON d.id = s.device_id"                             \
    " LEFT JOIN seal_state ss ON ss.device_id = s.device_id"

static void id_list(struct api_call *c, struct jsonw *w, const char *key, const char *sql, int64_t id,
                    bool text)
{
    sqlite3_stmt *st;
    jsonw_key(w, key);
    jsonw_arr_begin(w);
    if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, id);
        while (sqlite3_step(st) == SQLITE_ROW) {
            if (!text) {
                jsonw_int(w, sqlite3_column_int64(st, 0));
                continue;
            }
            jsonw_obj_begin(w);
            api_col_str(w, "card", st, 0);
            api_col_str(w, "holder", st, 1);
            jsonw_obj_end(w);
        }
        sqlite3_finalize(st);
    }
    jsonw_arr_end(w);
}

/* A shipment; arg non-NULL: with its unlock zones and cards. */
static void shipment_json(struct api_call *c, struct jsonw *w, sqlite3_stmt *st, void *arg)
{
    bool full = arg != NULL;
    int64_t id = sqlite3_column_int64(st, 0);
    jsonw_obj_begin(w);
    api_col_int(w, "id", st, 0);
    api_col_str(w, "reference", st, 1);
    api_col_int(w, "device_id", st, 2);
    api_col_str(w, "device_uid", st, 3);
    api_col_str(w, "origin", st, 4);
    api_col_str(w, "destination", st, 5);
    api_col_int(w, "origin_fence_id", st, 6);
    api_col_int(w, "destination_fence_id", st, 7);
    api_col_int(w, "corridor_fence_id", st, 8);
    api_col_str(w, "status", st, 9);
    api_col_str(w, "notes", st, 10);
    api_col_time(w, "created_at", st, 11, 1);
    api_col_time(w, "closed_at", st, 12, 1);
    jsonw_key(w, "seal");
    jsonw_obj_begin(w);
    api_col_str(w, "state", st, 15);
    api_col_time(w, "since", st, 16, 1);
    api_col_str(w, "reason", st, 17);
    jsonw_obj_end(w);
    jsonw_key(w, "custody_head");
    jsonw_obj_begin(w);
    api_col_int(w, "seq", st, 13);
    api_col_str(w, "hash", st, 14);
    jsonw_obj_end(w);
    if (full) {
        id_list(c, w, "unlock_zones",
                "SELECT fence_id FROM shipment_unlock_zones WHERE shipment_id = ?1 ORDER BY fence_id",
                id, false);
        id_list(c, w, "cards",
                "SELECT card, holder FROM shipment_cards WHERE shipment_id = ?1 ORDER BY card", id,
                true);
    }
    jsonw_obj_end(w);
}

static void answer_shipment(struct api_call *c, int64_t id, int status)
{
    api_answer_owned(c,
                     "SELECT " SHIPMENT_COLUMNS SHIPMENT_FROM " WHERE s.id = ?1 AND s.org_id = ?2",
                     id, status, shipment_json, c, "no such shipment");
}

/* Is fence `id` one of the caller's organisation? (400 naming field when not.) */
static bool fence_ok(struct api_call *c, int64_t id, const char *field)
{
    int found = api_org_has(c, "SELECT 1 FROM geofences WHERE org_id = ?1 AND id = ?2", id, NULL);
    if (found == 0)
        api_error(c, 400, field, "no geofence %" PRId64 " in this organisation", id);
    return found == 1;
}

/* Bind item i of a list to ins (parameter 1, the shipment, is bound); -1 answered. */
typedef int list_item_fn(struct api_call *c, sqlite3_stmt *ins, size_t i, json_t *item);

static int zone_item(struct api_call *c, sqlite3_stmt *ins, size_t i, json_t *item)
{
    if (!json_is_integer(item)) {
        api_error(c, 400, "unlock_zones", "item %zu is not a geofence id", i);
        return -1;
    }
    if (!fence_ok(c, json_integer_value(item), "unlock_zones"))
        return -1;
    sqlite3_bind_int64(ins, 2, json_integer_value(item));
    return 0;
}

static int card_item(struct api_call *c, sqlite3_stmt *ins, size_t i, json_t *item)
{
    json_t *card = json_is_object(item) ? json_object_get(item, "card") : item;
    json_t *holder = json_is_object(item) ? json_object_get(item, "holder") : NULL;
    const char *text = json_string_value(card);
    if (!text || !*text || strlen(text) > 15 || (holder && !json_is_string(holder))) {
        api_error(c, 400, "cards",
                  "item %zu: a card number (1..15 characters) or {\"card\", \"holder\"}", i);
        return -1;
    }
    sqlite3_bind_text(ins, 2, text, -1, SQLITE_STATIC);
    if (holder)
        sqlite3_bind_text(ins, 3, json_string_value(holder), -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(ins, 3);
    return 0;
}

/* Replace the shipment's rows of one list with the body's field (when given). 0 or -1. */
static int write_list(struct api_call *c, int64_t id, const char *field, size_t max,
                      const char *what, const char *del_sql, const char *ins_sql,
                      list_item_fn *bind_item)
{
    json_t *list = json_object_get(c->in, field);
    if (!list)
        return 0;
    if (!json_is_array(list) || json_array_size(list) > max) {
        api_error(c, 400, field, "an array of at most %zu %s", max, what);
        return -1;
    }
    sqlite3_stmt *del, *ins;
    if (api_prepare(c, del_sql, &del))
        return -1;
    sqlite3_bind_int64(del, 1, id);
    if (api_step_write(c, del, NULL) || api_prepare(c, ins_sql, &ins))
        return -1;
    size_t i;
    json_t *item;
    int rc = 0;
    json_array_foreach(list, i, item) {
        sqlite3_bind_int64(ins, 1, id);
        if ((rc = bind_item(c, ins, i, item)) != 0)
            break;
        if (sqlite3_step(ins) != SQLITE_DONE) {
            api_db_error(c);
            rc = -1;
            break;
        }
        sqlite3_reset(ins);
    }
    sqlite3_finalize(ins);
    return rc;
}

/* The shipment's authorised unlock zones and cards, from the body. 0 or -1. */
static int write_lists(struct api_call *c, int64_t id)
{
    return write_list(c, id, "unlock_zones", ZONES_MAX, "geofence ids",
                      "DELETE FROM shipment_unlock_zones WHERE shipment_id = ?1",
                      "INSERT OR IGNORE INTO shipment_unlock_zones(shipment_id, fence_id)"
                      " VALUES(?1, ?2)",
                      zone_item) ||
                   write_list(c, id, "cards", CARDS_MAX, "cards",
                              "DELETE FROM shipment_cards WHERE shipment_id = ?1",
                              "INSERT OR REPLACE INTO shipment_cards(shipment_id, card, holder)"
                              " VALUES(?1, ?2, ?3)",
                              card_item)
               ? -1
               : 0;
}

/* A custody fact of the caller (source api) in the open transaction; -1 answered. */
static int custody_by_caller(struct api_call *c, int64_t shipment, int64_t device, const char *kind,
                             const char *detail)
{
    char actor[128];
    if (api_user_name(c, actor, sizeof actor))
        return -1;
    struct custody_fact f = {.shipment_id = shipment,
                             .time = st_now(),
                             .kind = kind,
                             .actor = actor,
                             .source = "api",
                             .device_id = device,
                             .detail = detail};
    if (custody_append(c->db, &f, st_now_ms(), NULL)) {
        api_db_error(c);
        return -1;
    }
    return 0;
}

static const struct {
    const char *key;
} fence_fields[] = {{"origin_fence_id"}, {"destination_fence_id"}, {"corridor_fence_id"}};

void api_shipments_create(struct api_call *c)
{
    const char *ref, *origin, *dest, *notes;
    int64_t device;
    bool is_null;
    if (api_body(c, shipment_keys) || api_field_str(c, "reference", REF_MAX, true, false, &ref) ||
        api_field_int(c, "device_id", 1, INT64_MAX, false, &is_null, &device) < 0 ||
        api_field_str(c, "origin", TEXT_MAX, false, true, &origin) ||
        api_field_str(c, "destination", TEXT_MAX, false, true, &dest) ||
        api_field_str(c, "notes", 4000, false, true, &notes))
        return;
    if (!json_object_get(c->in, "device_id")) {
        api_error(c, 400, "device_id", "required: the seal this shipment is sealed with");
        return;
    }
    if (json_object_get(c->in, "status")) {
        api_error(c, 400, "status", "a new shipment is open; close it with PATCH");
        return;
    }
    if (!*ref) {
        api_error(c, 400, "reference", "must not be empty");
        return;
    }
    char uid[REPORT_ID_LEN];
    if (!api_device_visible(c, device, uid, sizeof uid))
        return;
    int64_t fences[3] = {0};
    for (int i = 0; i < 3; i++) {
        int rc = api_field_int(c, fence_fields[i].key, 1, INT64_MAX, true, &is_null, &fences[i]);
        if (rc < 0 || (rc == 1 && !is_null && !fence_ok(c, fences[i], fence_fields[i].key)))
            return;
        if (rc != 1 || is_null)
            fences[i] = 0;
    }
    if (!api_begin(c))
        return;
    sqlite3_stmt *st;
    int64_t now = st_now();
    if (api_prepare(c, "INSERT INTO shipments(org_id, reference, device_id, origin, destination,"
                       " origin_fence_id, destination_fence_id, corridor_fence_id, status, notes,"
                       " created_by, created_at) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'open', ?9,"
                       " ?10, ?11)", &st))
        goto rollback;
    sqlite3_bind_int64(st, 1, c->who.org_id);
    sqlite3_bind_text(st, 2, ref, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, device);
    if (origin && *origin)
        sqlite3_bind_text(st, 4, origin, -1, SQLITE_STATIC);
    if (dest && *dest)
        sqlite3_bind_text(st, 5, dest, -1, SQLITE_STATIC);
    for (int i = 0; i < 3; i++)
        if (fences[i])
            sqlite3_bind_int64(st, 6 + i, fences[i]);
    if (notes && *notes)
        sqlite3_bind_text(st, 9, notes, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 10, c->who.user_id);
    sqlite3_bind_int64(st, 11, now);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        if (sqlite3_extended_errcode(c->db) == SQLITE_CONSTRAINT_UNIQUE)
            api_error(c, 409, "reference",
                      "the reference is taken, or the seal already has an open shipment");
        else
            api_db_error(c);
        goto rollback;
    }
    int64_t id = sqlite3_last_insert_rowid(c->db);
    if (write_lists(c, id))
        goto rollback;
    /* a new journey starts from the lock as it is now: a previous violation is closed */
    char detail[256];
    if (api_prepare(c, "INSERT INTO seal_state(device_id, state, since, reason)"
                       " SELECT ?1, CASE WHEN lock_state = 'locked' THEN 'sealed' ELSE 'unsealed' END,"
                       " ?2, 'shipment opened' FROM device_state WHERE device_id = ?1"
                       " ON CONFLICT(device_id) DO UPDATE SET state = excluded.state,"
                       " since = excluded.since, event_id = NULL, reason = excluded.reason", &st))
        goto rollback;
    sqlite3_bind_int64(st, 1, device);
    sqlite3_bind_int64(st, 2, now);
    if (api_step_write(c, st, NULL))
        goto rollback;
    struct buf text = {0};
    struct jsonw w;
    jsonw_init(&w, &text);
    jsonw_obj_begin(&w);
    jsonw_key(&w, "reference");
    jsonw_str(&w, ref);
    jsonw_key(&w, "device");
    jsonw_str(&w, uid);
    jsonw_obj_end(&w);
    snprintf(detail, sizeof detail, "%.*s", (int)text.len, (const char *)text.data);
    buf_free(&text);
    if (custody_by_caller(c, id, device, "shipment_opened", detail) || !api_commit(c))
        goto rollback;
    store_domain_changed(api_store(c->api));
    st_log(ST_LOG_INFO, "event=shipment_opened by=%" PRId64 " shipment=%" PRId64 " device=%" PRId64,
           c->who.user_id, id, device);
    answer_shipment(c, id, 201);
    return;
rollback:
    api_rollback(c);
}

void api_shipments_list(struct api_call *c)
{
    char status[16];
    int64_t device, limit, cursor;
    int has_status = api_query_str(c, "status", status, sizeof status);
    if (has_status < 0 || api_query_int(c, "device_id", 0, INT64_MAX, 0, &device) ||
        api_query_int(c, "limit", 1, 1000, 100, &limit) ||
        api_query_int(c, "cursor", 0, INT64_MAX, 0, &cursor))
        return;
    sqlite3_stmt *st;
    if (api_prepare(c, "SELECT " SHIPMENT_COLUMNS SHIPMENT_FROM " WHERE s.org_id = ?1"
                       " AND (?2 IS NULL OR s.status = ?2) AND (?3 = 0 OR s.device_id = ?3)"
                       " AND s.id > ?4 ORDER BY s.id LIMIT ?5", &st))
        return;
    sqlite3_bind_int64(st, 1, c->who.org_id);
    if (has_status)
        sqlite3_bind_text(st, 2, status, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, device);
    sqlite3_bind_int64(st, 4, cursor);
    sqlite3_bind_int64(st, 5, limit + 1);
    api_answer_page(c, st, "shipments", limit, shipment_json, NULL);
}

void api_shipments_get(struct api_call *c)
{
    answer_shipment(c, c->id, 200);
}

void api_shipments_update(struct api_call *c)
{
    const char *status, *notes, *dest;
    if (api_body(c, shipment_keys) || api_field_str(c, "status", 16, false, false, &status) ||
        api_field_str(c, "notes", 4000, false, true, &notes) ||
        api_field_str(c, "destination", TEXT_MAX, false, true, &dest))
        return;
    const char *fixed[] = {"reference", "device_id", "origin", "origin_fence_id",
                           "destination_fence_id", "corridor_fence_id"};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        if (json_object_get(c->in, fixed[i])) {
            api_error(c, 400, fixed[i], "fixed once the shipment is open");
            return;
        }
    if (status && strcmp(status, "closed") != 0 && strcmp(status, "cancelled") != 0) {
        api_error(c, 400, "status", "closed or cancelled");
        return;
    }
    if (!api_begin(c))
        return;
    sqlite3_stmt *st;
    if (api_prepare(c, "SELECT status, device_id FROM shipments WHERE id = ?1 AND org_id = ?2", &st))
        goto rollback;
    sqlite3_bind_int64(st, 1, c->id);
    sqlite3_bind_int64(st, 2, c->who.org_id);
    if (sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_finalize(st);
        api_error(c, 404, NULL, "no such shipment");
        goto rollback;
    }
    bool open = strcmp((const char *)sqlite3_column_text(st, 0), "open") == 0;
    int64_t device = sqlite3_column_int64(st, 1);
    sqlite3_finalize(st);
    if (!open) {
        api_error(c, 409, "status", "the shipment is no longer open");
        goto rollback;
    }
    if (write_lists(c, c->id))
        goto rollback;
    if (api_prepare(c, "UPDATE shipments SET notes = coalesce(?2, notes),"
                       " destination = coalesce(?3, destination), status = coalesce(?4, status),"
                       " closed_at = CASE WHEN ?4 IS NULL THEN closed_at ELSE ?5 END WHERE id = ?1",
                    &st))
        goto rollback;
    sqlite3_bind_int64(st, 1, c->id);
    if (notes)
        sqlite3_bind_text(st, 2, notes, -1, SQLITE_STATIC);
    if (dest)
        sqlite3_bind_text(st, 3, dest, -1, SQLITE_STATIC);
    if (status)
        sqlite3_bind_text(st, 4, status, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, st_now());
    if (api_step_write(c, st, NULL))
        goto rollback;
    bool lists = json_object_get(c->in, "unlock_zones") || json_object_get(c->in, "cards");
    if (lists && custody_by_caller(c, c->id, device, "note",
                                   "{\"changed\":\"authorised unlock zones or cards\"}"))
        goto rollback;
    if (status && custody_by_caller(c, c->id, device, "shipment_closed",
                                    strcmp(status, "closed") == 0 ? "{\"status\":\"closed\"}"
                                                                  : "{\"status\":\"cancelled\"}"))
        goto rollback;
    if (!api_commit(c))
        goto rollback;
    store_domain_changed(api_store(c->api));
    answer_shipment(c, c->id, 200);
    return;
rollback:
    api_rollback(c);
}

void api_device_seal(struct api_call *c)
{
    char uid[REPORT_ID_LEN];
    if (!api_device_visible(c, c->id, uid, sizeof uid))
        return;
    sqlite3_stmt *st;
    if (api_prepare(c, "SELECT ss.state, ss.since, ss.reason, ss.event_id, d.lock_state,"
                       " (SELECT id FROM shipments WHERE device_id = ?1 AND status = 'open')"
                       " FROM (SELECT ?1 AS id) x LEFT JOIN seal_state ss ON ss.device_id = x.id"
                       " LEFT JOIN device_state d ON d.device_id = x.id", &st))
        return;
    sqlite3_bind_int64(st, 1, c->id);
    struct jsonw w;
    api_json_begin(c, 200, &w);
    jsonw_obj_begin(&w);
    jsonw_key(&w, "device_id");
    jsonw_int(&w, c->id);
    if (sqlite3_step(st) == SQLITE_ROW) {
        api_col_str(&w, "state", st, 0);
        api_col_time(&w, "since", st, 1, 1);
        api_col_str(&w, "reason", st, 2);
        api_col_int(&w, "event_id", st, 3);
        api_col_str(&w, "lock_state", st, 4);
        api_col_int(&w, "shipment_id", st, 5);
    }
    sqlite3_finalize(st);
    jsonw_key(&w, "remote_lock");
    jsonw_str(&w, "none: the lock closes itself when the rope is inserted (the lock event)");
    jsonw_obj_end(&w);
}

/* Counts of seal events per device over [from, to]: the lock/unlock summary. */
void api_report_seals(struct api_call *c)
{
    int64_t from, to;
    if (api_query_range(c, 7 * 86400, &from, &to))
        return;
    sqlite3_stmt *st;
    if (api_prepare(c,
                    "SELECT d.id, d.uid, d.name, ss.state,"
                    " (SELECT id FROM shipments WHERE device_id = d.id AND status = 'open'),"
                    " sum(e.type = 'lock'), sum(e.type = 'unlock'), sum(e.type = 'tamper'),"
                    " sum(e.type = 'wrong_password'), sum(e.type = 'rfid_access' AND e.granted = 0),"
                    " sum(e.type = 'unlock_refused')"
                    " FROM devices d LEFT JOIN seal_state ss ON ss.device_id = d.id"
                    " LEFT JOIN events e ON e.device_id = d.id AND e.time BETWEEN ?2 AND ?3"
                    " WHERE d.org_id = ?1 GROUP BY d.id ORDER BY d.id", &st))
        return;
    sqlite3_bind_int64(st, 1, c->who.org_id);
    sqlite3_bind_int64(st, 2, from);
    sqlite3_bind_int64(st, 3, to);
    struct jsonw w;
    api_json_begin(c, 200, &w);
    jsonw_obj_begin(&w);
    jsonw_key_time(&w, "from", from);
    jsonw_key_time(&w, "to", to);
    jsonw_key(&w, "devices");
    jsonw_arr_begin(&w);
    static const char *const counts[] = {"locks", "unlocks", "tampers", "wrong_passwords",
                                         "cards_refused", "unlocks_refused"};
    while (sqlite3_step(st) == SQLITE_ROW) {
        jsonw_obj_begin(&w);
        api_col_int(&w, "device_id", st, 0);
        api_col_str(&w, "uid", st, 1);
        api_col_str(&w, "name", st, 2);
        api_col_str(&w, "seal_state", st, 3);
        api_col_int(&w, "open_shipment_id", st, 4);
        for (int i = 0; i < 6; i++) {
            jsonw_key(&w, counts[i]);
            jsonw_int(&w, sqlite3_column_int64(st, 5 + i));
        }
        jsonw_obj_end(&w);
    }
    sqlite3_finalize(st);
    jsonw_arr_end(&w);
    jsonw_obj_end(&w);
}

/* Custody facts that are violations, across the organisation's shipments. */
#define VIOLATION_WHERE                                                                         \
    " (l.kind IN ('tamper', 'unlock_refused', 'wrong_password', 'card_refused', 'command_failed')" \
    " OR (l.kind = 'unsealed' AND (json_type(l.detail, '$.authorised_zone') = 'null'"              \
    " OR json_extract(l.detail, '$.card_authorised') = 0)))"

static void violations_json(struct api_call *c, struct jsonw *w, sqlite3_stmt *st)
{
    jsonw_key(w, "violations");
    jsonw_arr_begin(w);
    while (sqlite3_step(st) == SQLITE_ROW) {
        jsonw_obj_begin(w);
        api_col_int(w, "shipment_id", st, 0);
        api_col_int(w, "seq", st, 1);
        api_col_time(w, "time", st, 2, 1);
        api_col_str(w, "kind", st, 3);
        api_col_str(w, "actor", st, 4);
        api_col_str(w, "source", st, 5);
        api_col_num(w, "lat", st, 6, 7);
        api_col_num(w, "lon", st, 7, 7);
        api_col_json(w, "detail", st, 8);
        jsonw_obj_end(w);
    }
    jsonw_arr_end(w);
    (void)c;
}

void api_report_violations(struct api_call *c)
{
    int64_t from, to;
    if (api_query_range(c, 7 * 86400, &from, &to))
        return;
    sqlite3_stmt *st;
    if (api_prepare(c, "SELECT l.shipment_id, l.seq, l.time, l.kind, l.actor, l.source, l.lat,"
                       " l.lon, l.detail FROM custody_log l JOIN shipments s ON s.id = l.shipment_id"
                       " WHERE s.org_id = ?1 AND l.time BETWEEN ?2 AND ?3 AND" VIOLATION_WHERE
                       " ORDER BY l.time, l.id LIMIT 10000", &st))
        return;
    sqlite3_bind_int64(st, 1, c->who.org_id);
    sqlite3_bind_int64(st, 2, from);
    sqlite3_bind_int64(st, 3, to);
    struct jsonw w;
    api_json_begin(c, 200, &w);
    jsonw_obj_begin(&w);
    jsonw_key_time(&w, "from", from);
    jsonw_key_time(&w, "to", to);
    violations_json(c, &w, st);
    sqlite3_finalize(st);
    jsonw_obj_end(&w);
}

/* One shipment: its seal status, counts, violations and custody timeline. */
void api_shipment_report(struct api_call *c)
{
    sqlite3_stmt *st;
    if (api_prepare(c, "SELECT " SHIPMENT_COLUMNS SHIPMENT_FROM " WHERE s.id = ?1 AND s.org_id = ?2",
                    &st))
        return;
    sqlite3_bind_int64(st, 1, c->id);
    sqlite3_bind_int64(st, 2, c->who.org_id);
    if (sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_finalize(st);
        api_error(c, 404, NULL, "no such shipment");
        return;
    }
    struct jsonw w;
    api_json_begin(c, 200, &w);
    jsonw_obj_begin(&w);
    jsonw_key(&w, "shipment");
    shipment_json(c, &w, st, c);
    sqlite3_finalize(st);
    if (api_prepare(c, "SELECT count(*), sum(kind = 'sealed'), sum(kind = 'unsealed'),"
                       " sum(kind = 'tamper'), min(time), max(time) FROM custody_log"
                       " WHERE shipment_id = ?1", &st))
        return;
    sqlite3_bind_int64(st, 1, c->id);
    if (sqlite3_step(st) == SQLITE_ROW) {
        jsonw_key(&w, "summary");
        jsonw_obj_begin(&w);
        api_col_int(&w, "custody_entries", st, 0);
        api_col_int(&w, "sealed", st, 1);
        api_col_int(&w, "unsealed", st, 2);
        api_col_int(&w, "tampers", st, 3);
        api_col_time(&w, "first", st, 4, 1);
        api_col_time(&w, "last", st, 5, 1);
        jsonw_obj_end(&w);
    }
    sqlite3_finalize(st);
    if (api_prepare(c, "SELECT l.shipment_id, l.seq, l.time, l.kind, l.actor, l.source, l.lat,"
                       " l.lon, l.detail FROM custody_log l WHERE l.shipment_id = ?1 AND"
                       VIOLATION_WHERE " ORDER BY l.seq", &st))
        return;
    sqlite3_bind_int64(st, 1, c->id);
    violations_json(c, &w, st);
    sqlite3_finalize(st);
    if (api_prepare(c, "SELECT shipment_id, seq, time, kind, actor, source, lat, lon, detail"
                       " FROM custody_log l WHERE shipment_id = ?1 ORDER BY seq", &st))
        return;
    sqlite3_bind_int64(st, 1, c->id);
    jsonw_key(&w, "timeline");
    jsonw_arr_begin(&w);
    while (sqlite3_step(st) == SQLITE_ROW) {
        jsonw_obj_begin(&w);
        api_col_int(&w, "seq", st, 1);
        api_col_time(&w, "time", st, 2, 1);
        api_col_str(&w, "kind", st, 3);
        api_col_str(&w, "actor", st, 4);
        api_col_str(&w, "source", st, 5);
        api_col_num(&w, "lat", st, 6, 7);
        api_col_num(&w, "lon", st, 7, 7);
        jsonw_obj_end(&w);
    }
    sqlite3_finalize(st);
    jsonw_arr_end(&w);
    jsonw_obj_end(&w);
}
