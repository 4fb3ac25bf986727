/* routes_devices.c — devices: create, list, get, update, delete, with their latest state. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "../core/log.h"
#include "../core/timeutil.h"
#include "../model/report.h"
#include "../proto/proto.h"
#include "api_internal.h"

#define TEXT_MAX 256
#define NOTES_MAX 4000

/* Body field → column, for create and update (uid is create-only, org_id admin-only). */
struct device_field {
    const char *key, *column;
    size_t max_len; /* 0 = an integer field */
};
static const struct device_field device_fields[] = {
    {"name", "name", TEXT_MAX},       {"model", "model", 64},       {"asset", "asset", TEXT_MAX},
    {"group", "group_name", TEXT_MAX}, {"notes", "notes", NOTES_MAX}, {"dialect", "dialect", 24},
    {"tz_offset_min", "tz_offset_min", 0},
};
#define N_DEVICE_FIELDS (sizeof device_fields / sizeof device_fields[0])
static const char *const device_keys[] = {"uid",   "name",    "model",         "asset", "group",
                                          "notes", "dialect", "tz_offset_min", "org_id", NULL};

/* Check the body's device fields and bind the present ones to st in table order from
 * parameter `first` on; *mask gets a bit per present field. 0 or -1 (answered). */
static int bind_device_fields(struct api_call *c, sqlite3_stmt *st, int first, unsigned *mask)
{
    *mask = 0;
    for (size_t i = 0; i < N_DEVICE_FIELDS; i++) {
        const struct device_field *f = &device_fields[i];
        int param = first + (int)i;
        if (f->max_len == 0) {
            bool is_null;
            int64_t v = 0;
            int rc = api_field_int(c, f->key, -720, 840, true, &is_null, &v);
            if (rc < 0)
                return -1;
            if (rc == 1 && !is_null)
                sqlite3_bind_int64(st, param, v);
            if (rc == 1)
                *mask |= 1u << i;
            continue;
        }
        const char *v;
        if (api_field_str(c, f->key, f->max_len, false, true, &v))
            return -1;
        if (!v)
            continue;
        if (strcmp(f->key, "dialect") == 0 && *v && !proto_dialect_known(v)) {
            api_error(c, 400, "dialect", "unknown dialect (jt808: jointech or standard)");
            return -1;
        }
        if (*v)
            sqlite3_bind_text(st, param, v, -1, SQLITE_STATIC);
        *mask |= 1u << i;
    }
    return 0;
}

static void device_json(struct api_call *c, struct jsonw *w, sqlite3_stmt *st, void *arg)
{
    (void)arg;
    api_device_json(c, w, st, false);
}

static void answer_device(struct api_call *c, int64_t id, int status)
{
    sqlite3_stmt *st;
    if (api_prepare(c, "SELECT " API_DEVICE_COLUMNS API_DEVICE_FROM " WHERE d.id = ?1", &st))
        return;
    sqlite3_bind_int64(st, 1, id);
    api_answer_row(c, st, status, device_json, NULL, "no such device");
}

static bool uid_valid(const char *uid)
{
    size_t n = strlen(uid);
    if (n == 0 || n >= REPORT_ID_LEN)
        return false;
    for (size_t i = 0; i < n; i++)
        if (uid[i] <= ' ' || uid[i] > '~')
            return false;
    return true;
}

void api_devices_create(struct api_call *c)
{
    const char *uid;
    if (api_body(c, device_keys) || api_field_str(c, "uid", REPORT_ID_LEN - 1, true, false, &uid))
        return;
    if (!uid_valid(uid)) {
        api_error(c, 400, "uid", "must be 1..%d printable characters without spaces",
                  REPORT_ID_LEN - 1);
        return;
    }
    if (json_object_get(c->in, "org_id")) {
        api_error(c, 400, "org_id", "set with PATCH by an administrator of organisation 1");
        return;
    }
    sqlite3_stmt *st;
    if (api_prepare(c, "INSERT INTO devices(uid, org_id, created_at, name, model, asset,"
                       " group_name, notes, dialect, tz_offset_min)"
                       " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)", &st))
        return;
    sqlite3_bind_text(st, 1, uid, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, c->who.org_id);
    sqlite3_bind_int64(st, 3, st_now());
    unsigned mask;
    if (bind_device_fields(c, st, 4, &mask)) {
        sqlite3_finalize(st);
        return;
    }
    if (api_step_write(c, st, "uid"))
        return;
    int64_t id = sqlite3_last_insert_rowid(c->db);
    store_devices_changed(api_store(c->api));
    char dev[ST_LOG_TEXT_MAX];
    st_log(ST_LOG_INFO, "event=device_created by=%" PRId64 " device=%s org=%" PRId64,
           c->who.user_id, st_log_text(uid, dev), c->who.org_id);
    answer_device(c, id, 201);
}

void api_devices_list(struct api_call *c)
{
    int64_t limit, cursor;
    char uid[REPORT_ID_LEN], group[TEXT_MAX + 1];
    int has_uid, has_group;
    if (api_query_int(c, "limit", 1, 1000, 100, &limit) ||
        api_query_int(c, "cursor", 0, INT64_MAX, 0, &cursor) ||
        (has_uid = api_query_str(c, "uid", uid, sizeof uid)) < 0 ||
        (has_group = api_query_str(c, "group", group, sizeof group)) < 0)
        return;
    sqlite3_stmt *st;
    if (api_prepare(c, "SELECT " API_DEVICE_COLUMNS API_DEVICE_FROM
                       " WHERE d.org_id = ?1 AND d.id > ?2 AND (?3 IS NULL OR d.uid = ?3)"
                       " AND (?4 IS NULL OR d.group_name = ?4) ORDER BY d.id LIMIT ?5", &st))
        return;
    sqlite3_bind_int64(st, 1, c->who.org_id);
    sqlite3_bind_int64(st, 2, cursor);
    if (has_uid)
        sqlite3_bind_text(st, 3, uid, -1, SQLITE_STATIC);
    if (has_group)
        sqlite3_bind_text(st, 4, group, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, limit + 1);
    api_answer_page(c, st, "devices", limit, device_json, NULL);
}

/* Get and update: an administrator of organisation 1 may address any device by id (to place
 * it in its organisation and to move it back); everybody else only their organisation's. */
static bool device_addressable(struct api_call *c)
{
    return c->who.system_admin || api_device_visible(c, c->id, NULL, 0);
}

void api_devices_get(struct api_call *c)
{
    if (device_addressable(c))
        answer_device(c, c->id, 200);
}

void api_devices_update(struct api_call *c)
{
    if (!device_addressable(c) || api_body(c, device_keys))
        return;
    if (json_object_get(c->in, "uid")) {
        api_error(c, 400, "uid", "the uid cannot change; create another device");
        return;
    }
    int64_t org = 0;
    int has_org = api_field_int(c, "org_id", 1, INT64_MAX, false, NULL, &org);
    if (has_org < 0)
        return;
    if (has_org && !c->who.system_admin) {
        api_error(c, 403, "org_id", "only administrators of organisation 1 move devices");
        return;
    }
    /* One statement for any subset: ?N+10 says whether field N is present. */
    char sql[1024];
    size_t used = (size_t)snprintf(sql, sizeof sql, "UPDATE devices SET org_id = coalesce(?20, org_id)");
    for (size_t i = 0; i < N_DEVICE_FIELDS; i++)
        used += (size_t)snprintf(sql + used, sizeof sql - used,
                                 ", %s = CASE WHEN ?%zu THEN ?%zu ELSE %s END",
                                 device_fields[i].column, i + 11, i + 1, device_fields[i].column);
    snprintf(sql + used, sizeof sql - used, " WHERE id = ?21");
    sqlite3_stmt *st;
    if (api_prepare(c, sql, &st))
        return;
    unsigned mask;
    if (bind_device_fields(c, st, 1, &mask)) {
        sqlite3_finalize(st);
        return;
    }
    for (size_t i = 0; i < N_DEVICE_FIELDS; i++)
        sqlite3_bind_int(st, (int)i + 11, (mask >> i) & 1);
    if (has_org) {
        sqlite3_stmt *chk;
        if (api_prepare(c, "SELECT 1 FROM orgs WHERE id = ?1", &chk)) {
            sqlite3_finalize(st);
            return;
        }
        sqlite3_bind_int64(chk, 1, org);
        bool exists = sqlite3_step(chk) == SQLITE_ROW;
        sqlite3_finalize(chk);
        if (!exists) {
            sqlite3_finalize(st);
            api_error(c, 400, "org_id", "no such organisation");
            return;
        }
        sqlite3_bind_int64(st, 20, org);
    }
    sqlite3_bind_int64(st, 21, c->id);
    if (api_step_write(c, st, NULL))
        return;
    store_devices_changed(api_store(c->api));
    answer_device(c, c->id, 200);
}

void api_devices_delete(struct api_call *c)
{
    char uid[REPORT_ID_LEN];
    if (!api_device_visible(c, c->id, uid, sizeof uid))
        return;
    /* positions, events and state cascade; raw frames name the device without a key */
    if (!api_begin(c))
        return;
    sqlite3_stmt *st;
    const char *const sql[] = {"DELETE FROM raw_frames WHERE device_id = ?1",
                               "DELETE FROM devices WHERE id = ?1"};
    for (int i = 0; i < 2; i++) {
        if (api_prepare(c, sql[i], &st))
            goto fail;
        sqlite3_bind_int64(st, 1, c->id);
        if (api_step_write(c, st, NULL))
            goto fail;
    }
    if (!api_commit(c))
        return;
    store_devices_changed(api_store(c->api));
    char dev[ST_LOG_TEXT_MAX];
    st_log(ST_LOG_INFO, "event=device_deleted by=%" PRId64 " device=%s", c->who.user_id,
           st_log_text(uid, dev));
    api_no_content(c);
    return;
fail:
    api_rollback(c);
}
