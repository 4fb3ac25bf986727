/* api.c — request dispatch, authentication, input checks, the live stream and
 * /metrics. A request is routed on the loop, then authenticated and handled on
 * the thread pool with a pooled SQLite connection, then answered on the loop. */
#include "api.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../core/err.h"
#include "../core/log.h"
#include "../core/mem.h"
#include "../core/strmap.h"
#include "../core/timeutil.h"
#include "../proto/proto.h"
#include "../store/schema.h"
#include "api_internal.h"
#include "auth.h"

#define POOL_MAX 16
#define PING_MS 15000
#define API_WORKER_NICE 10
#define HTTP_MAX_HEADER (16 * 1024)
#define HTTP_IDLE_S 60

struct subscriber {
    struct http_exchange *ex;
    struct api *api;
    int64_t org_id, device;
    struct subscriber *prev, *next;
};

struct api {
    uv_loop_t *loop;
    const struct st_config *cfg;
    struct store *store;
    const struct api_counters *counters;
    struct http_server *http;
    uv_timer_t ping;
    bool closing;
    int64_t started_ms;
    pthread_mutex_t pool_lock;
    sqlite3 *pool[POOL_MAX];
    int n_pool;
    pthread_mutex_t presence_lock;
    struct strmap connected;   /* device uid → open TCP connections */
    struct subscriber *subs;
    size_t n_subs;
    uint64_t http_codes[6];    /* answers by class: [2] = 2xx … [5] = 5xx */
    api_command_hook_fn *command_hook;
    void *command_hook_arg;
};

static const struct api_route routes[] = {
    {"GET", "/api/health", ROLE_NONE, NULL},
    {"GET", "/metrics", ROLE_ADMIN, NULL},
    {"GET", "/api/stream", ROLE_VIEWER, NULL},
    {"POST", "/api/session", ROLE_NONE, api_session_create},
    {"GET", "/api/session", ROLE_VIEWER, api_session_get},
    {"DELETE", "/api/session", ROLE_VIEWER, api_session_delete},
    {"GET", "/api/tokens", ROLE_VIEWER, api_tokens_list},
    {"POST", "/api/tokens", ROLE_VIEWER, api_tokens_create},
    {"DELETE", "/api/tokens/{id}", ROLE_VIEWER, api_tokens_delete},
    {"GET", "/api/orgs", ROLE_ADMIN, api_orgs_list},
    {"POST", "/api/orgs", ROLE_ADMIN, api_orgs_create},
    {"GET", "/api/orgs/{id}", ROLE_ADMIN, api_orgs_get},
    {"PATCH", "/api/orgs/{id}", ROLE_ADMIN, api_orgs_update},
    {"DELETE", "/api/orgs/{id}", ROLE_ADMIN, api_orgs_delete},
    {"GET", "/api/users", ROLE_ADMIN, api_users_list},
    {"POST", "/api/users", ROLE_ADMIN, api_users_create},
    {"GET", "/api/users/{id}", ROLE_ADMIN, api_users_get},
    {"PATCH", "/api/users/{id}", ROLE_ADMIN, api_users_update},
    {"DELETE", "/api/users/{id}", ROLE_ADMIN, api_users_delete},
    {"GET", "/api/devices", ROLE_VIEWER, api_devices_list},
    {"POST", "/api/devices", ROLE_OPERATOR, api_devices_create},
    {"GET", "/api/devices/{id}", ROLE_VIEWER, api_devices_get},
    {"PATCH", "/api/devices/{id}", ROLE_OPERATOR, api_devices_update},
    {"DELETE", "/api/devices/{id}", ROLE_OPERATOR, api_devices_delete},
    {"GET", "/api/devices/{id}/positions", ROLE_VIEWER, api_positions_get},
    {"GET", "/api/devices/{id}/raw", ROLE_VIEWER, api_raw_get},
    {"GET", "/api/devices/{id}/reports/route", ROLE_VIEWER, api_report_route},
    {"GET", "/api/devices/{id}/reports/trips", ROLE_VIEWER, api_report_trips},
    {"GET", "/api/devices/{id}/reports/stops", ROLE_VIEWER, api_report_stops},
    {"GET", "/api/devices/{id}/reports/summary", ROLE_VIEWER, api_report_summary},
    {"GET", "/api/events", ROLE_VIEWER, api_events_get},
    /* geofences (routes_geofences.c) */
    {"GET", "/api/geofences", ROLE_VIEWER, api_geofences_list},
    {"POST", "/api/geofences", ROLE_OPERATOR, api_geofences_create},
    {"GET", "/api/geofences/{id}", ROLE_VIEWER, api_geofences_get},
    {"PATCH", "/api/geofences/{id}", ROLE_OPERATOR, api_geofences_update},
    {"DELETE", "/api/geofences/{id}", ROLE_OPERATOR, api_geofences_delete},
    /* shipments and seal state (routes_shipments.c) */
    {"GET", "/api/shipments", ROLE_VIEWER, api_shipments_list},
    {"POST", "/api/shipments", ROLE_OPERATOR, api_shipments_create},
    {"GET", "/api/shipments/{id}", ROLE_VIEWER, api_shipments_get},
    {"PATCH", "/api/shipments/{id}", ROLE_OPERATOR, api_shipments_update},
    {"GET", "/api/shipments/{id}/report", ROLE_VIEWER, api_shipment_report},
    {"GET", "/api/devices/{id}/seal", ROLE_VIEWER, api_device_seal},
    {"GET", "/api/reports/seals", ROLE_VIEWER, api_report_seals},
    {"GET", "/api/reports/violations", ROLE_VIEWER, api_report_violations},
    /* custody chain (routes_custody.c) */
    {"GET", "/api/shipments/{id}/custody", ROLE_VIEWER, api_custody_get},
    {"POST", "/api/shipments/{id}/custody", ROLE_OPERATOR, api_custody_add},
    {"GET", "/api/shipments/{id}/custody/verify", ROLE_VIEWER, api_custody_verify},
    /* alert rules, webhooks, alerts (routes_alerts.c) */
    {"GET", "/api/webhooks", ROLE_OPERATOR, api_webhooks_list},
    {"POST", "/api/webhooks", ROLE_OPERATOR, api_webhooks_create},
    {"GET", "/api/webhooks/{id}", ROLE_OPERATOR, api_webhooks_get},
    {"PATCH", "/api/webhooks/{id}", ROLE_OPERATOR, api_webhooks_update},
    {"DELETE", "/api/webhooks/{id}", ROLE_OPERATOR, api_webhooks_delete},
    {"GET", "/api/webhooks/{id}/deliveries", ROLE_OPERATOR, api_webhook_deliveries},
    {"GET", "/api/alert-rules", ROLE_VIEWER, api_alert_rules_list},
    {"POST", "/api/alert-rules", ROLE_OPERATOR, api_alert_rules_create},
    {"GET", "/api/alert-rules/{id}", ROLE_VIEWER, api_alert_rules_get},
    {"PATCH", "/api/alert-rules/{id}", ROLE_OPERATOR, api_alert_rules_update},
    {"DELETE", "/api/alert-rules/{id}", ROLE_OPERATOR, api_alert_rules_delete},
    {"GET", "/api/alerts", ROLE_VIEWER, api_alerts_list},
    /* commands and command templates (routes_commands.c) */
    {"POST", "/api/devices/{id}/commands", ROLE_OPERATOR, api_commands_create},
    {"GET", "/api/devices/{id}/commands", ROLE_VIEWER, api_commands_list},
    {"GET", "/api/commands/{id}", ROLE_VIEWER, api_commands_get},
    {"DELETE", "/api/commands/{id}", ROLE_OPERATOR, api_commands_cancel},
    {"GET", "/api/command-templates", ROLE_OPERATOR, api_command_templates_list},
    {"POST", "/api/command-templates", ROLE_ADMIN, api_command_templates_create},
    {"PATCH", "/api/command-templates/{id}", ROLE_ADMIN, api_command_templates_update},
    {"DELETE", "/api/command-templates/{id}", ROLE_ADMIN, api_command_templates_delete},
};
#define N_ROUTES (sizeof routes / sizeof routes[0])

/* ---- answers ------------------------------------------------------------ */

void api_error(struct api_call *c, int status, const char *field, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->error, sizeof c->error, fmt, ap);
    va_end(ap);
    c->body.len = 0;
    c->status = status;
    c->content_type = "application/json";
    http_error_json(&c->body, field, c->error);
}

void api_db_error(struct api_call *c)
{
    int code = sqlite3_errcode(c->db);
    st_log(ST_LOG_ERROR, "event=api_db_error path=\"%s\" reason=\"%s\"", c->req->path,
           sqlite3_errmsg(c->db));
    if (code == SQLITE_BUSY || code == SQLITE_LOCKED) {
        api_header(c, "Retry-After: 1");
        api_error(c, 503, NULL, "database busy, try again");
    } else
        api_error(c, 500, NULL, "database error");
}

void api_json_begin(struct api_call *c, int status, struct jsonw *w)
{
    c->status = status;
    c->content_type = "application/json";
    c->body.len = 0;
    jsonw_init(w, &c->body);
}

void api_no_content(struct api_call *c)
{
    c->status = 204;
    c->content_type = NULL;
    c->body.len = 0;
}

void api_header(struct api_call *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(c->headers + c->headers_len, sizeof c->headers - c->headers_len - 2, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof c->headers - c->headers_len - 2)
        return; /* our own short headers: cannot happen with the sizes used */
    c->headers_len += (size_t)n;
    memcpy(c->headers + c->headers_len, "\r\n", 3);
    c->headers_len += 2;
}

void api_set_cookie(struct api_call *c, const char *value)
{
    if (value)
        api_header(c, "Set-Cookie: st_session=%s; Path=/; HttpOnly; SameSite=Strict; Max-Age=%d%s",
                   value, c->cfg->http_session_hours * 3600,
                   c->cfg->http_secure_cookie ? "; Secure" : "");
    else
        api_header(c, "Set-Cookie: st_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0%s",
                   c->cfg->http_secure_cookie ? "; Secure" : "");
}

/* ---- input -------------------------------------------------------------- */

int api_body(struct api_call *c, const char *const *allowed)
{
    const char *ct = http_request_header(c->req, "content-type");
    if (c->req->body_len == 0) {
        api_error(c, 400, NULL, "a JSON object body is required");
        return -1;
    }
    if (!ct || strncmp(ct, "application/json", 16) != 0) {
        api_error(c, 415, NULL, "the body must be application/json");
        return -1;
    }
    json_error_t jerr;
    c->in = json_loadb(c->req->body, c->req->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!c->in) {
        api_error(c, 400, NULL, "malformed JSON at line %d column %d: %s", jerr.line, jerr.column,
                  jerr.text);
        return -1;
    }
    if (!json_is_object(c->in)) {
        api_error(c, 400, NULL, "the body must be a JSON object");
        return -1;
    }
    const char *key;
    json_t *val;
    json_object_foreach(c->in, key, val)
    {
        (void)val;
        size_t i = 0;
        while (allowed[i] && strcmp(allowed[i], key) != 0)
            i++;
        if (!allowed[i]) {
            api_error(c, 400, key, "unknown field");
            return -1;
        }
    }
    return 0;
}

int api_field_str(struct api_call *c, const char *key, size_t max_len, bool required,
                  bool nullable, const char **out)
{
    json_t *v = json_object_get(c->in, key);
    *out = NULL;
    if (!v) {
        if (required) {
            api_error(c, 400, key, "required");
            return -1;
        }
        return 0;
    }
    if (json_is_null(v) && nullable) {
        *out = "";
        return 0;
    }
    if (!json_is_string(v)) {
        api_error(c, 400, key, "must be a string");
        return -1;
    }
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (n > max_len || strlen(s) != n) {
        api_error(c, 400, key, "must be at most %zu characters without NUL", max_len);
        return -1;
    }
    if (required && n == 0) {
        api_error(c, 400, key, "must not be empty");
        return -1;
    }
    *out = s;
    return 0;
}

int api_field_int(struct api_call *c, const char *key, int64_t lo, int64_t hi, bool nullable,
                  bool *is_null, int64_t *out)
{
    json_t *v = json_object_get(c->in, key);
    if (is_null)
        *is_null = false;
    if (!v)
        return 0;
    if (json_is_null(v) && nullable && is_null) {
        *is_null = true;
        return 1;
    }
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
        api_error(c, 400, key, "must be an integer in %" PRId64 "..%" PRId64 "%s", lo, hi,
                  nullable ? " or null" : "");
        return -1;
    }
    *out = json_integer_value(v);
    return 1;
}

int api_field_bool(struct api_call *c, const char *key, bool *out)
{
    json_t *v = json_object_get(c->in, key);
    if (!v)
        return 0;
    if (!json_is_boolean(v)) {
        api_error(c, 400, key, "must be true or false");
        return -1;
    }
    *out = json_is_true(v);
    return 1;
}

int api_query_str(struct api_call *c, const char *name, char *out, size_t cap)
{
    int rc = http_query_get(c->req->query, name, out, cap);
    if (rc == ST_ERANGE) {
        api_error(c, 400, name, "longer than %zu characters", cap - 1);
        return -1;
    }
    if (rc < 0) {
        api_error(c, 400, name, "bad %%-escape");
        return -1;
    }
    return rc;
}

int api_query_int(struct api_call *c, const char *name, int64_t lo, int64_t hi, int64_t def,
                  int64_t *out)
{
    char text[32];
    int rc = api_query_str(c, name, text, sizeof text);
    if (rc <= 0) {
        *out = def;
        return rc;
    }
    char *end;
    long long v = strtoll(text, &end, 10);
    if (end == text || *end || v < lo || v > hi) {
        api_error(c, 400, name, "must be an integer in %" PRId64 "..%" PRId64, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

int api_query_num(struct api_call *c, const char *name, double lo, double hi, double def,
                  double *out)
{
    char text[32];
    int rc = api_query_str(c, name, text, sizeof text);
    if (rc <= 0) {
        *out = def;
        return rc;
    }
    char *end;
    double v = strtod(text, &end);
    if (end == text || *end || !(v >= lo && v <= hi)) {
        api_error(c, 400, name, "must be a number in %g..%g", lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

static int query_time(struct api_call *c, const char *name, int64_t def, int64_t *out)
{
    char text[40];
    int rc = api_query_str(c, name, text, sizeof text);
    if (rc < 0)
        return -1;
    if (rc == 0) {
        *out = def;
        return 0;
    }
    if (st_time_parse(text, out) || *out < 0) {
        api_error(c, 400, name, "not a time: use ISO 8601 UTC (2026-01-01T00:00:00Z) or epoch seconds");
        return -1;
    }
    return 0;
}

int api_query_range(struct api_call *c, int64_t default_span, int64_t *from, int64_t *to)
{
    if (query_time(c, "to", st_now(), to))
        return -1;
    if (query_time(c, "from", *to - default_span, from))
        return -1;
    if (*from > *to) {
        api_error(c, 400, "to", "to must not be before from");
        return -1;
    }
    return 0;
}

/* ---- database helpers ----------------------------------------------------- */

int api_prepare(struct api_call *c, const char *sql, sqlite3_stmt **st)
{
    if (sqlite3_prepare_v2(c->db, sql, -1, st, NULL) != SQLITE_OK) {
        api_db_error(c);
        *st = NULL;
        return -1;
    }
    return 0;
}

int api_step_write(struct api_call *c, sqlite3_stmt *st, const char *conflict_field)
{
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc == SQLITE_DONE || rc == SQLITE_ROW)
        return 0;
    if (sqlite3_extended_errcode(c->db) == SQLITE_CONSTRAINT_UNIQUE && conflict_field)
        api_error(c, 409, conflict_field, "already taken");
    else
        api_db_error(c);
    return -1;
}

void api_answer_row(struct api_call *c, sqlite3_stmt *st, int status, api_row_fn *fn, void *arg,
                    const char *not_found)
{
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        struct jsonw w;
        api_json_begin(c, status, &w);
        fn(c, &w, st, arg);
    } else if (rc == SQLITE_DONE) {
        api_error(c, 404, NULL, "%s", not_found);
    } else {
        api_db_error(c);
    }
    sqlite3_finalize(st);
}

void api_answer_page(struct api_call *c, sqlite3_stmt *st, const char *key, int64_t limit,
                     api_row_fn *fn, void *arg)
{
    struct jsonw w;
    api_json_begin(c, 200, &w);
    jsonw_obj_begin(&w);
    jsonw_key(&w, key);
    jsonw_arr_begin(&w);
    int64_t n = 0, last = 0, next = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n++ == limit) {
            next = last;
            break;
        }
        last = sqlite3_column_int64(st, 0);
        fn(c, &w, st, arg);
    }
    jsonw_arr_end(&w);
    jsonw_key(&w, "next");
    if (next) {
        jsonw_int(&w, next);
        api_header(c, "X-Next-Cursor: %" PRId64, next);
    } else
        jsonw_null(&w);
    jsonw_obj_end(&w);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        api_db_error(c);
    sqlite3_finalize(st);
}

void api_answer_owned(struct api_call *c, const char *select, int64_t id, int status,
                      api_row_fn *fn, void *arg, const char *not_found)
{
    sqlite3_stmt *st;
    if (api_prepare(c, select, &st))
        return;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, c->who.org_id);
    api_answer_row(c, st, status, fn, arg, not_found);
}

bool api_delete_owned(struct api_call *c, const char *table, const char *not_found)
{
    char sql[96];
    snprintf(sql, sizeof sql, "DELETE FROM %s WHERE id = ?1 AND org_id = ?2", table);
    sqlite3_stmt *st;
    if (api_prepare(c, sql, &st))
        return false;
    sqlite3_bind_int64(st, 1, c->id);
    sqlite3_bind_int64(st, 2, c->who.org_id);
    if (api_step_write(c, st, NULL))
        return false;
    if (sqlite3_changes(c->db) == 0) {
        api_error(c, 404, NULL, "%s", not_found);
        return false;
    }
    return true;
}

int api_user_name(struct api_call *c, char *out, size_t cap)
{
    sqlite3_stmt *st;
    if (api_prepare(c, "SELECT name FROM users WHERE id = ?1", &st))
        return -1;
    sqlite3_bind_int64(st, 1, c->who.user_id);
    out[0] = '\0';
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        snprintf(out, cap, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        api_db_error(c);
        return -1;
    }
    return 0;
}

int api_org_has(struct api_call *c, const char *sql, int64_t id, const char *text)
{
    sqlite3_stmt *st;
    if (api_prepare(c, sql, &st))
        return -1;
    sqlite3_bind_int64(st, 1, c->who.org_id);
    if (text)
        sqlite3_bind_text(st, 2, text, -1, SQLITE_STATIC);
    else
        sqlite3_bind_int64(st, 2, id);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc == SQLITE_ROW || rc == SQLITE_DONE)
        return rc == SQLITE_ROW;
    api_db_error(c);
    return -1;
}

bool api_begin(struct api_call *c)
{
    if (sqlite3_exec(c->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK)
        return true;
    api_db_error(c);
    return false;
}

bool api_commit(struct api_call *c)
{
    if (sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK)
        return true;
    api_db_error(c);
    api_rollback(c);
    return false;
}

void api_rollback(struct api_call *c)
{
    sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
}

void api_col_str(struct jsonw *w, const char *key, sqlite3_stmt *st, int col)
{
    jsonw_key(w, key);
    if (sqlite3_column_type(st, col) == SQLITE_NULL)
        jsonw_null(w);
    else
        jsonw_strn(w, (const char *)sqlite3_column_text(st, col),
                   (size_t)sqlite3_column_bytes(st, col));
}

void api_col_int(struct jsonw *w, const char *key, sqlite3_stmt *st, int col)
{
    jsonw_key(w, key);
    if (sqlite3_column_type(st, col) == SQLITE_NULL)
        jsonw_null(w);
    else
        jsonw_int(w, sqlite3_column_int64(st, col));
}

void api_col_num(struct jsonw *w, const char *key, sqlite3_stmt *st, int col, int decimals)
{
    jsonw_key(w, key);
    if (sqlite3_column_type(st, col) == SQLITE_NULL)
        jsonw_null(w);
    else
        jsonw_num(w, sqlite3_column_double(st, col), decimals);
}

void api_col_bool(struct jsonw *w, const char *key, sqlite3_stmt *st, int col)
{
    jsonw_key(w, key);
    if (sqlite3_column_type(st, col) == SQLITE_NULL)
        jsonw_null(w);
    else
        jsonw_bool(w, sqlite3_column_int(st, col) != 0);
}

void api_col_json(struct jsonw *w, const char *key, sqlite3_stmt *st, int col)
{
    jsonw_key(w, key);
    if (sqlite3_column_type(st, col) == SQLITE_NULL)
        jsonw_null(w);
    else
        jsonw_raw(w, (const char *)sqlite3_column_text(st, col));
}

void api_col_time(struct jsonw *w, const char *key, sqlite3_stmt *st, int col, int64_t divisor)
{
    if (sqlite3_column_type(st, col) == SQLITE_NULL) {
        jsonw_key(w, key);
        jsonw_null(w);
    } else
        jsonw_key_time(w, key, sqlite3_column_int64(st, col) / divisor);
}

bool api_device_visible(struct api_call *c, int64_t id, char *uid, size_t uid_cap)
{
    sqlite3_stmt *st;
    if (api_prepare(c, "SELECT uid, org_id FROM devices WHERE id = ?1", &st))
        return false;
    sqlite3_bind_int64(st, 1, id);
    bool ok = sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int64(st, 1) == c->who.org_id;
    if (ok && uid)
        snprintf(uid, uid_cap, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    if (!ok)
        api_error(c, 404, NULL, "no such device");
    return ok;
}

bool api_device_connected(struct api *a, const char *uid)
{
    pthread_mutex_lock(&a->presence_lock);
    bool on = strmap_get(&a->connected, uid) != NULL;
    pthread_mutex_unlock(&a->presence_lock);
    return on;
}

struct store *api_store(struct api *a)
{
    return a->store;
}

void api_device_json(struct api_call *c, struct jsonw *w, sqlite3_stmt *st, bool as_event)
{
    static const char *const fields[] = {"name", "model", "asset", "group", "notes", "protocol",
                                         "dialect"};
    jsonw_obj_begin(w);
    api_col_int(w, as_event ? "device_id" : "id", st, 0);
    api_col_str(w, "uid", st, 1);
    api_col_int(w, "org_id", st, 2);
    for (int i = 0; i < 7; i++)
        api_col_str(w, fields[i], st, 3 + i);
    api_col_int(w, "tz_offset_min", st, 10);
    api_col_time(w, "created_at", st, 11, 1);
    jsonw_key(w, "state");
    if (sqlite3_column_type(st, 12) == SQLITE_NULL) {
        jsonw_null(w);
    } else {
        jsonw_obj_begin(w);
        api_col_time(w, "last_seen", st, 12, 1000);
        jsonw_key(w, "connected");
        jsonw_bool(w, api_device_connected(c->api, (const char *)sqlite3_column_text(st, 1)));
        api_col_str(w, "protocol", st, 13);
        api_col_str(w, "transport", st, 14);
        api_col_time(w, "fix_time", st, 15, 1);
        api_col_bool(w, "valid", st, 16);
        api_col_num(w, "lat", st, 17, 6);
        api_col_num(w, "lon", st, 18, 6);
        api_col_num(w, "speed_kmh", st, 19, 1);
        api_col_num(w, "course", st, 20, 1);
        api_col_int(w, "battery_pct", st, 21);
        api_col_str(w, "lock_state", st, 22);
        jsonw_obj_end(w);
    }
    jsonw_obj_end(w);
}

/* ---- the connection pool -------------------------------------------------- */

static sqlite3 *pool_get(struct api *a)
{
    pthread_mutex_lock(&a->pool_lock);
    sqlite3 *db = a->n_pool ? a->pool[--a->n_pool] : NULL;
    pthread_mutex_unlock(&a->pool_lock);
    if (!db && schema_open(a->cfg->db, 0, &db))
        return NULL;
    return db;
}

static void pool_put(struct api *a, sqlite3 *db)
{
    pthread_mutex_lock(&a->pool_lock);
    if (a->n_pool < POOL_MAX) {
        a->pool[a->n_pool++] = db;
        db = NULL;
    }
    pthread_mutex_unlock(&a->pool_lock);
    sqlite3_close(db);
}

/* ---- authentication --------------------------------------------------------- */

static const char *role_names[] = {"none", "viewer", "operator", "admin"};


/* The st_session cookie's value in a Cookie header, or NULL. */
static const char *cookie_session(const char *cookies, size_t *len)
{
    const char *p = cookies;
    while (p && *p) {
        while (*p == ' ' || *p == ';')
            p++;
        const char *end = strchr(p, ';');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n > 11 && strncmp(p, "st_session=", 11) == 0) {
            *len = n - 11;
            return p + 11;
        }
        p = end;
    }
    return NULL;
}

/* 0 = authenticated (c->who set); -1 = answered 401. */
static int authenticate(struct api_call *c)
{
    const char *authz = http_request_header(c->req, "authorization");
    const char *cookies = http_request_header(c->req, "cookie");
    const char *secret = NULL;
    size_t len = 0;
    bool token = false;
    if (authz && strncasecmp(authz, "Bearer ", 7) == 0) {
        secret = authz + 7;
        len = strlen(secret);
        token = true;
    } else if (cookies)
        secret = cookie_session(cookies, &len);
    if (!secret || len == 0) {
        api_header(c, "WWW-Authenticate: Bearer");
        api_error(c, 401, NULL, "authentication required (session cookie or bearer token)");
        return -1;
    }
    uint8_t digest[AUTH_DIGEST_LEN];
    auth_secret_digest(secret, len, digest);
    int64_t now = st_now();
    sqlite3_stmt *st;
    const char *sql =
        token ? "SELECT t.id, u.id, u.org_id, u.role, t.last_used FROM api_tokens t"
                " JOIN users u ON u.id = t.user_id WHERE t.hash = ?1 AND t.revoked_at IS NULL"
                " AND (t.expires_at IS NULL OR t.expires_at > ?2) AND u.disabled = 0"
              : "SELECT s.id, u.id, u.org_id, u.role, NULL FROM sessions s"
                " JOIN users u ON u.id = s.user_id WHERE s.hash = ?1 AND s.expires_at > ?2"
                " AND u.disabled = 0";
    if (api_prepare(c, sql, &st))
        return -1;
    sqlite3_bind_blob(st, 1, digest, sizeof digest, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, now);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE) {
            api_db_error(c);
            return -1;
        }
        api_header(c, "WWW-Authenticate: Bearer");
        api_error(c, 401, NULL, "invalid, expired or revoked credentials");
        return -1;
    }
    int64_t id = sqlite3_column_int64(st, 0);
    c->who.user_id = sqlite3_column_int64(st, 1);
    c->who.org_id = sqlite3_column_int64(st, 2);
    c->who.role = api_role_parse((const char *)sqlite3_column_text(st, 3));
    c->who.system_admin = c->who.role == ROLE_ADMIN && c->who.org_id == 1;
    bool stale = token && sqlite3_column_int64(st, 4) < now - 60;
    sqlite3_finalize(st);
    if (token) {
        /* last_used to the minute: a write per request would contend with ingestion */
        if (stale && sqlite3_prepare_v2(c->db, "UPDATE api_tokens SET last_used=?2 WHERE id=?1",
                                        -1, &st, NULL) == SQLITE_OK) {
            sqlite3_bind_int64(st, 1, id);
            sqlite3_bind_int64(st, 2, now);
            sqlite3_step(st);
            sqlite3_finalize(st);
        }
    } else
        c->who.session_id = id;
    return 0;
}

const char *api_role_name(int role)
{
    return role >= ROLE_NONE && role <= ROLE_ADMIN ? role_names[role] : "none";
}

int api_role_parse(const char *s)
{
    for (int i = ROLE_VIEWER; i <= ROLE_ADMIN; i++)
        if (strcmp(s, role_names[i]) == 0)
            return i;
    return ROLE_NONE;
}

/* ---- live stream -------------------------------------------------------- */

static void stream_write(struct subscriber *sub, const char *text, size_t len)
{
    if (http_stream_write(sub->ex, text, len) == ST_EFULL) {
        st_log(ST_LOG_WARN, "event=stream_closed org=%" PRId64 " reason=\"client over 1 MiB behind\"",
               sub->org_id);
        http_stream_end(sub->ex);
    }
}

static void on_stream_closed(void *arg)
{
    struct subscriber *sub = arg;
    struct api *a = sub->api;
    if (sub->prev)
        sub->prev->next = sub->next;
    else
        a->subs = sub->next;
    if (sub->next)
        sub->next->prev = sub->prev;
    if (--a->n_subs == 0)
        store_set_live(a->store, false);
    st_free(sub);
}

static void stream_start(struct api_call *c)
{
    struct api *a = c->api;
    struct subscriber *sub = st_calloc(1, sizeof *sub);
    sub->ex = c->ex;
    sub->api = a;
    sub->org_id = c->who.org_id;
    sub->device = c->stream_device;
    sub->next = a->subs;
    if (a->subs)
        a->subs->prev = sub;
    a->subs = sub;
    if (a->n_subs++ == 0)
        store_set_live(a->store, true);
    http_stream_begin(c->ex, 200, "text/event-stream", "X-Accel-Buffering: no\r\n",
                      on_stream_closed, sub);
    stream_write(sub, (const char *)c->body.data, c->body.len); /* the latest states */
}

void api_publish(struct api *a, const struct store_done *d)
{
    if (!a || !d->live_len || d->result != STORE_COMMITTED)
        return;
    for (struct subscriber *sub = a->subs, *next; sub; sub = next) {
        next = sub->next; /* stream_write may end (and free) sub */
        if (sub->org_id == d->org_id && (!sub->device || sub->device == d->device_row))
            stream_write(sub, d->live, d->live_len);
    }
}

void api_device_status(struct api *a, int64_t org_id, int64_t device_row, const char *uid,
                       bool connected)
{
    if (!a)
        return;
    pthread_mutex_lock(&a->presence_lock);
    int64_t *n = strmap_put(&a->connected, uid, 0);
    *n += connected ? 1 : -1;
    bool changed = connected ? *n == 1 : *n <= 0;
    if (*n <= 0)
        strmap_del(&a->connected, uid);
    pthread_mutex_unlock(&a->presence_lock);
    if (!changed || !a->subs)
        return;
    struct buf text = {0};
    struct jsonw w;
    buf_append_str(&text, "event: status\ndata: ");
    jsonw_init(&w, &text);
    jsonw_obj_begin(&w);
    jsonw_key(&w, "device_id");
    jsonw_int(&w, device_row);
    jsonw_key(&w, "uid");
    jsonw_str(&w, uid);
    jsonw_key(&w, "connected");
    jsonw_bool(&w, connected);
    jsonw_obj_end(&w);
    buf_append_str(&text, "\n\n");
    for (struct subscriber *sub = a->subs, *next; sub; sub = next) {
        next = sub->next;
        if (sub->org_id == org_id && (!sub->device || sub->device == device_row))
            stream_write(sub, (const char *)text.data, text.len);
    }
    buf_free(&text);
}

static void on_ping(uv_timer_t *t)
{
    struct api *a = t->data;
    for (struct subscriber *sub = a->subs, *next; sub; sub = next) {
        next = sub->next;
        stream_write(sub, ": ping\n\n", 8);
    }
}

/* Worker: the latest state of every device the caller may see, as SSE text. */
static void stream_snapshot(struct api_call *c)
{
    if (api_query_int(c, "device", 1, INT64_MAX, 0, &c->stream_device))
        return;
    if (c->stream_device && !api_device_visible(c, c->stream_device, NULL, 0))
        return;
    sqlite3_stmt *st;
    if (api_prepare(c, "SELECT " API_DEVICE_COLUMNS API_DEVICE_FROM
                       " WHERE d.org_id = ?1 AND (?2 = 0 OR d.id = ?2) ORDER BY d.id", &st))
        return;
    sqlite3_bind_int64(st, 1, c->who.org_id);
    sqlite3_bind_int64(st, 2, c->stream_device);
    c->body.len = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct jsonw w;
        buf_append_str(&c->body, "event: state\ndata: ");
        jsonw_init(&w, &c->body);
        api_device_json(c, &w, st, true);
        buf_append_str(&c->body, "\n\n");
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        api_db_error(c);
        return;
    }
    c->kind = CALL_STREAM;
    c->status = 200;
}

/* ---- health and metrics (rendered on the loop: the counters live there) ---- */

static void render_health(struct api *a, struct api_call *c)
{
    struct jsonw w;
    api_json_begin(c, 200, &w);
    jsonw_obj_begin(&w);
    jsonw_key(&w, "status");
    jsonw_str(&w, "ok");
    jsonw_key(&w, "version");
    jsonw_str(&w, SEALTRACK_VERSION);
    jsonw_key(&w, "uptime_s");
    jsonw_int(&w, (st_now_ms() - a->started_ms) / 1000);
    jsonw_obj_end(&w);
}

static void metric_head(struct buf *b, const char *name, const char *type, const char *help)
{
    buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void render_metrics(struct api *a, struct api_call *c)
{
    struct buf *b = &c->body;
    const struct api_counters *k = a->counters;
    b->len = 0;
    c->status = 200;
    c->content_type = "text/plain; version=0.0.4; charset=utf-8";
    metric_head(b, "sealtrack_connections", "gauge", "Open TCP device connections.");
    buf_printf(b, "sealtrack_connections %" PRIu64 "\n", k->connections);
    metric_head(b, "sealtrack_frames_total", "counter", "Frames received, by protocol and transport.");
    for (size_t i = 0; proto_registry[i] && i < API_PROTOCOLS_MAX; i++)
        for (int t = 0; t < 2; t++)
            buf_printf(b, "sealtrack_frames_total{protocol=\"%s\",transport=\"%s\"} %" PRIu64 "\n",
                       proto_registry[i]->name, t ? "udp" : "tcp", k->frames[i][t]);
    metric_head(b, "sealtrack_decode_errors_total", "counter", "Malformed frames, by protocol.");
    for (size_t i = 0; proto_registry[i] && i < API_PROTOCOLS_MAX; i++)
        buf_printf(b, "sealtrack_decode_errors_total{protocol=\"%s\"} %" PRIu64 "\n",
                   proto_registry[i]->name, k->decode_errors[i]);
    metric_head(b, "sealtrack_frames_refused_total", "counter", "Frames refused: storage queue full.");
    buf_printf(b, "sealtrack_frames_refused_total %" PRIu64 "\n", k->frames_refused);
    metric_head(b, "sealtrack_queue_depth", "gauge", "Reports waiting for the database writer.");
    buf_printf(b, "sealtrack_queue_depth %zu\n", store_queue_depth(a->store));
    struct store_stats ss;
    store_get_stats(a->store, &ss);
    metric_head(b, "sealtrack_commit_seconds", "histogram", "Database transaction times.");
    uint64_t cum = 0;
    for (int i = 0; i < STORE_COMMIT_BUCKETS; i++) {
        cum += ss.bucket[i];
        buf_printf(b, "sealtrack_commit_seconds_bucket{le=\"%g\"} %" PRIu64 "\n",
                   store_commit_bucket_s[i], cum);
    }
    buf_printf(b, "sealtrack_commit_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n", ss.commits);
    buf_printf(b, "sealtrack_commit_seconds_sum %.6f\nsealtrack_commit_seconds_count %" PRIu64 "\n",
               ss.commit_seconds_sum, ss.commits);
    metric_head(b, "sealtrack_commit_failures_total", "counter", "Failed database transactions.");
    buf_printf(b, "sealtrack_commit_failures_total %" PRIu64 "\n", ss.commit_failures);
    metric_head(b, "sealtrack_retention_deleted_total", "counter", "Rows deleted by retention.");
    buf_printf(b, "sealtrack_retention_deleted_total{table=\"positions\"} %" PRIu64 "\n",
               ss.retention_positions);
    buf_printf(b, "sealtrack_retention_deleted_total{table=\"raw_frames\"} %" PRIu64 "\n",
               ss.retention_raw);
    metric_head(b, "sealtrack_http_requests_total", "counter", "API answers by status class.");
    for (int i = 2; i <= 5; i++)
        buf_printf(b, "sealtrack_http_requests_total{code=\"%dxx\"} %" PRIu64 "\n", i,
                   a->http_codes[i]);
    metric_head(b, "sealtrack_live_subscribers", "gauge", "Open live streams.");
    buf_printf(b, "sealtrack_live_subscribers %zu\n", a->n_subs);
}

/* ---- dispatch ------------------------------------------------------------ */

/* Does path match pattern? {id} takes a positive decimal number (into *id). */
static bool route_match(const char *pattern, const char *path, int64_t *id)
{
    while (*pattern && *path) {
        if (strncmp(pattern, "{id}", 4) == 0) {
            int64_t v = 0;
            int digits = 0;
            while (*path >= '0' && *path <= '9' && digits < 15) {
                v = v * 10 + (*path++ - '0');
                digits++;
            }
            if (!digits || v == 0 || (*path && *path != '/'))
                return false;
            *id = v;
            pattern += 4;
            continue;
        }
        if (*pattern++ != *path++)
            return false;
    }
    return *pattern == '\0' && *path == '\0';
}

static void call_free(struct api_call *c)
{
    json_decref(c->in);
    buf_free(&c->body);
    st_free(c);
}

/* API work yields the CPU to device ingestion: the pool's threads run at a lower priority
 * than the loop and the writer (Linux nice values are per thread). */
static void worker_lower_priority(void)
{
    static _Thread_local bool lowered;
    if (!lowered) {
        setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), API_WORKER_NICE);
        lowered = true;
    }
}

/* Worker, c->who known: the role check, then the route's work. */
static void call_handle(struct api_call *c)
{
    if (c->who.role < c->route->role)
        api_error(c, 403, NULL, "the %s role may not do this", api_role_name(c->who.role));
    else if (c->route->fn)
        c->route->fn(c);
    else if (strcmp(c->route->pattern, "/api/stream") == 0)
        stream_snapshot(c);
    else
        c->kind = CALL_METRICS;
}

static void call_work(uv_work_t *w)
{
    struct api_call *c = w->data;
    worker_lower_priority();
    c->db = pool_get(c->api);
    if (!c->db) {
        api_error(c, 503, NULL, "database unavailable");
        return;
    }
    if (c->route->role == ROLE_NONE || authenticate(c) == 0)
        call_handle(c);
    pool_put(c->api, c->db);
    c->db = NULL;
}

static void call_answer(struct api *a, struct api_call *c)
{
    char path[ST_LOG_TEXT_MAX], msg[160];
    int status = c->status;
    long ms = (long)((st_monotonic_us() - c->started_us) / 1000);
    st_log(status >= 500 ? ST_LOG_ERROR : status >= 400 ? ST_LOG_WARN : ST_LOG_INFO,
           "event=http_request peer=%s method=%s path=%s status=%d user=%" PRId64 " ms=%ld%s%s%s",
           c->req->peer, c->req->method, st_log_text(c->req->path, path), status, c->who.user_id,
           ms, c->error[0] ? " reason=\"" : "", c->error[0] ? st_log_text(c->error, msg) : "",
           c->error[0] ? "\"" : "");
    if (status >= 100 && status < 600)
        a->http_codes[status / 100]++;
    if (c->kind == CALL_STREAM && status == 200 && !a->closing && !http_exchange_closed(c->ex))
        stream_start(c);
    else
        http_respond(c->ex, status, c->content_type, c->headers_len ? c->headers : NULL,
                     c->body.data, c->body.len);
    call_free(c);
}

void api_set_command_hook(struct api *a, api_command_hook_fn *fn, void *arg)
{
    if (!a)
        return;
    a->command_hook = fn;
    a->command_hook_arg = arg;
}

static void call_done(uv_work_t *w, int status)
{
    struct api_call *c = w->data;
    struct api *a = c->api;
    if (status == UV_ECANCELED)
        api_error(c, 503, NULL, "server shutting down");
    else if (c->kind == CALL_METRICS)
        render_metrics(a, c);
    if (c->command_device && a->command_hook && !a->closing)
        a->command_hook(a->command_hook_arg, c->command_device);
    call_answer(a, c);
}

/* Set c->route and c->id for c->req; false when answered (404, 405). */
static bool route_find(struct api_call *c)
{
    const struct http_request *req = c->req;
    bool path_known = false;
    for (size_t i = 0; i < N_ROUTES; i++) {
        int64_t id = 0;
        if (!route_match(routes[i].pattern, req->path, &id))
            continue;
        path_known = true;
        if (strcmp(routes[i].method, req->method) == 0) {
            c->route = &routes[i];
            c->id = id;
            return true;
        }
    }
    if (path_known) {
        char allow[64] = "";
        size_t used = 0;
        for (size_t i = 0; i < N_ROUTES; i++) {
            int64_t id;
            if (route_match(routes[i].pattern, req->path, &id))
                used += (size_t)snprintf(allow + used, sizeof allow - used, "%s%s",
                                         used ? ", " : "", routes[i].method);
        }
        api_header(c, "Allow: %s", allow);
        api_error(c, 405, NULL, "method %s not allowed here", req->method);
    } else
        api_error(c, 404, NULL, "no such route");
    return false;
}

static void on_request(void *arg, struct http_exchange *ex, const struct http_request *req)
{
    struct api *a = arg;
    struct api_call *c = st_calloc(1, sizeof *c);
    c->api = a;
    c->cfg = a->cfg;
    c->ex = ex;
    c->req = req;
    c->started_us = st_monotonic_us();
    c->status = 200;
    if (!route_find(c)) {
        call_answer(a, c);
        return;
    }
    if (c->route->role == ROLE_NONE && !c->route->fn) { /* health: no database */
        render_health(a, c);
        call_answer(a, c);
        return;
    }
    c->work.data = c;
    uv_queue_work(a->loop, &c->work, call_work, call_done);
}

/* ---- life cycle -------------------------------------------------------------- */

/* The parts of an api that need no loop (api_free frees them). */
static struct api *api_new(const struct st_config *cfg, struct store *store)
{
    struct api *a = st_calloc(1, sizeof *a);
    a->cfg = cfg;
    a->store = store;
    a->started_ms = st_now_ms();
    pthread_mutex_init(&a->pool_lock, NULL);
    pthread_mutex_init(&a->presence_lock, NULL);
    strmap_init(&a->connected);
    return a;
}

int api_start(uv_loop_t *loop, const struct st_config *cfg, struct store *store,
              const struct api_counters *counters, struct api **out)
{
    *out = NULL;
    if (cfg->http_port <= 0)
        return 0;
    if (auth_init())
        return ST_EIO;
    struct api *a = api_new(cfg, store);
    a->loop = loop;
    a->counters = counters;
    struct http_server_opts ho = {
        .listen = cfg->http_listen,
        .port = cfg->http_port,
        .max_body = (size_t)cfg->http_max_body,
        .max_header = HTTP_MAX_HEADER,
        .idle_timeout_s = HTTP_IDLE_S,
        .max_connections = cfg->http_max_connections,
        .handler = on_request,
        .arg = a,
    };
    if (http_server_start(loop, &ho, &a->http)) {
        api_free(a);
        return ST_EIO;
    }
    uv_timer_init(loop, &a->ping);
    a->ping.data = a;
    uv_timer_start(&a->ping, on_ping, PING_MS, PING_MS);
    *out = a;
    return 0;
}

void api_close(struct api *a)
{
    if (!a || a->closing)
        return;
    a->closing = true;
    uv_close((uv_handle_t *)&a->ping, NULL);
    http_server_close(a->http); /* ends the streams: their subscribers are freed */
    a->http = NULL;
}

void api_free(struct api *a)
{
    if (!a)
        return;
    for (int i = 0; i < a->n_pool; i++)
        sqlite3_close(a->pool[i]);
    strmap_deinit(&a->connected);
    pthread_mutex_destroy(&a->pool_lock);
    pthread_mutex_destroy(&a->presence_lock);
    auth_limit_free();
    st_free(a);
}

/* ---- tests and fuzzers --------------------------------------------------------- */

struct api *api_new_for_test(const struct st_config *cfg, struct store *store)
{
    return api_new(cfg, store);
}

void api_call_run_for_test(struct api *a, struct api_call *c)
{
    c->api = a;
    c->cfg = a->cfg;
    c->status = 200;
    if (route_find(c))
        call_handle(c);
}
