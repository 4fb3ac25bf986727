/* api_internal.h — what the route files (routes_*.c) share with api.c: the call
 * a handler fills, input checks that answer 400 naming the field, and output
 * helpers. Handlers run on the thread pool with c->db, a pooled connection. */
#ifndef ST_API_INTERNAL_H
#define ST_API_INTERNAL_H

#include <jansson.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#include "../core/buf.h"
#include "../core/jsonw.h"
#include "api.h"
#include "http.h"

enum api_role { ROLE_NONE = 0, ROLE_VIEWER = 1, ROLE_OPERATOR = 2, ROLE_ADMIN = 3 };

struct api_principal {
    int64_t user_id, org_id, session_id; /* session_id 0: a token authenticated */
    int role;           /* enum api_role */
    bool system_admin;  /* admin of organisation 1 */
};

enum api_call_kind { CALL_RESPOND, CALL_STREAM, CALL_METRICS };

struct api_route;

struct api_call {
    uv_work_t work;
    struct api *api;
    const struct st_config *cfg;
    struct http_exchange *ex;
    const struct http_request *req;
    const struct api_route *route;
    sqlite3 *db;
    struct api_principal who;
    int64_t id;              /* the path's numeric {id}; 0 when the route has none */
    json_t *in;              /* request body (api_body) */
    int kind;                /* enum api_call_kind */
    int64_t stream_device;   /* CALL_STREAM: one device, 0 = all of the organisation */
    int status;
    const char *content_type;
    struct buf body;
    char headers[640];       /* extra response headers, "Name: value\r\n" each */
    size_t headers_len;
    char error[160];         /* the 4xx/5xx message, for the access log */
    int64_t command_device;  /* a handler queued a command for this device row: the server
                                delivers it after the answer (api_set_command_hook) */
    int64_t started_us;
};

typedef void api_handler_fn(struct api_call *c);

struct api_route {
    const char *method;
    const char *pattern;   /* "/api/devices/{id}/positions" */
    int role;              /* least role; ROLE_NONE = no authentication */
    api_handler_fn *fn;
};

/* ---- answers ------------------------------------------------------------- */
/** A JSON error answer {"error":…,"field":…}. */
void api_error(struct api_call *c, int status, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/** Database failure: 503 when busy, else 500; logged with SQLite's reason. */
void api_db_error(struct api_call *c);
/** Start a JSON answer: status, content type, a writer on c->body. */
void api_json_begin(struct api_call *c, int status, struct jsonw *w);
/** Answer with no body (204) or just a status. */
void api_no_content(struct api_call *c);
/** Add a response header line (without CRLF). */
void api_header(struct api_call *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- input (each answers 400 naming the field and returns -1 on error) ---- */
/** Parse the body as a JSON object whose keys are all in allowed (NULL-terminated). */
int api_body(struct api_call *c, const char *const *allowed);
/** String field: absent → 0 and *out NULL; null → 0 and *out "" when nullable, else 400. */
int api_field_str(struct api_call *c, const char *key, size_t max_len, bool required,
                  bool nullable, const char **out);
/** Integer field in lo..hi: returns 1 present, 0 absent, -1 error; *is_null for JSON null
 *  (only when nullable). */
int api_field_int(struct api_call *c, const char *key, int64_t lo, int64_t hi, bool nullable,
                  bool *is_null, int64_t *out);
/** Boolean field: 1 present, 0 absent, -1 error. */
int api_field_bool(struct api_call *c, const char *key, bool *out);
/** Query parameter text: 1 present, 0 absent, -1 error. */
int api_query_str(struct api_call *c, const char *name, char *out, size_t cap);
/** Query integer in lo..hi (default when absent): 0 or -1. */
int api_query_int(struct api_call *c, const char *name, int64_t lo, int64_t hi, int64_t def,
                  int64_t *out);
/** Query number in lo..hi: 0 or -1. */
int api_query_num(struct api_call *c, const char *name, double lo, double hi, double def,
                  double *out);
/** from/to pair (ISO 8601 or epoch seconds); defaults: to = now, from = to - default_span. */
int api_query_range(struct api_call *c, int64_t default_span, int64_t *from, int64_t *to);

/* ---- database helpers ----------------------------------------------------- */
/** Prepare; on failure answers 500 and returns -1. */
int api_prepare(struct api_call *c, const char *sql, sqlite3_stmt **st);
/** Step a write statement and finalize it: 0, or -1 answered (409 naming conflict_field
 *  on a unique constraint, else the database error). */
int api_step_write(struct api_call *c, sqlite3_stmt *st, const char *conflict_field);
/** Column as JSON under key: text (null when NULL), integer, real, ISO time (seconds). */
void api_col_str(struct jsonw *w, const char *key, sqlite3_stmt *st, int col);
void api_col_int(struct jsonw *w, const char *key, sqlite3_stmt *st, int col);
void api_col_num(struct jsonw *w, const char *key, sqlite3_stmt *st, int col, int decimals);
void api_col_time(struct jsonw *w, const char *key, sqlite3_stmt *st, int col, int64_t divisor);
void api_col_bool(struct jsonw *w, const char *key, sqlite3_stmt *st, int col);
/** A column holding JSON text, written as is (null when NULL). */
void api_col_json(struct jsonw *w, const char *key, sqlite3_stmt *st, int col);

/** Writes one row of st as a JSON value (arg: the caller's). */
typedef void api_row_fn(struct api_call *c, struct jsonw *w, sqlite3_stmt *st, void *arg);
/** Answer with the first row of st (bound, not stepped) written by fn with `status`; 404
 *  `not_found` when there is none; the database error otherwise. Finalizes st. */
void api_answer_row(struct api_call *c, sqlite3_stmt *st, int status, api_row_fn *fn, void *arg,
                    const char *not_found);
/** Answer a page: st (bound, LIMIT limit + 1, ordered by the id in column 0) as
 *  {"<key>":[rows by fn],"next":id|null}; the next page's cursor (the last id written) also in
 *  an X-Next-Cursor header. Finalizes st. */
void api_answer_page(struct api_call *c, sqlite3_stmt *st, const char *key, int64_t limit,
                     api_row_fn *fn, void *arg);
/** The caller's user name into out ("" when the user is gone); 0, or -1 answered. */
int api_user_name(struct api_call *c, char *out, size_t cap);
/** Answer row `id` of the caller's organisation: select is "SELECT <columns> FROM <table>
 *  WHERE id = ?1 AND org_id = ?2" (404 not_found when absent). */
void api_answer_owned(struct api_call *c, const char *select, int64_t id, int status,
                      api_row_fn *fn, void *arg, const char *not_found);
/** Delete row c->id of table if it is the caller's organisation's; false when answered
 *  (404 not_found, or the database error). */
bool api_delete_owned(struct api_call *c, const char *table, const char *not_found);
/** Does sql ("… WHERE org_id = ?1 AND <key> = ?2") find a row of the caller's organisation
 *  for the integer id, or for text when not NULL? 1 or 0; -1 on a database error (answered). */
int api_org_has(struct api_call *c, const char *sql, int64_t id, const char *text);
/** BEGIN IMMEDIATE; false when answered (busy: 503). */
bool api_begin(struct api_call *c);
/** COMMIT; false when answered (rolled back). */
bool api_commit(struct api_call *c);
/** ROLLBACK of a failed write (the answer was given). */
void api_rollback(struct api_call *c);

/** True when the device row `id` exists and the caller may see it (else 404 answered). */
bool api_device_visible(struct api_call *c, int64_t id, char *uid, size_t uid_cap);
/** Is the device (uid) connected now (any thread). */
bool api_device_connected(struct api *a, const char *uid);
/** The store, to tell the writer that devices changed. */
struct store *api_store(struct api *a);

/** Write one device object (the columns of API_DEVICE_COLUMNS at col 0…); as_event names
 *  its id "device_id", as the live stream's events do. */
#define API_DEVICE_COLUMNS                                                                       \
    "d.id, d.uid, d.org_id, d.name, d.model, d.asset, d.group_name, d.notes, d.protocol,"       \
    " d.dialect, d.tz_offset_min, d.created_at, s.last_seen, s.protocol, s.transport,"          \
    " s.fix_time, s.valid, s.lat, s.lon, s.speed_kmh, s.course, s.battery_pct, s.lock_state"
#define API_DEVICE_FROM " FROM devices d LEFT JOIN device_state s ON s.device_id = d.id"
void api_device_json(struct api_call *c, struct jsonw *w, sqlite3_stmt *st, bool as_event);

/* Route handlers (routes_*.c). */
api_handler_fn api_session_create, api_session_get, api_session_delete;
api_handler_fn api_tokens_list, api_tokens_create, api_tokens_delete;
api_handler_fn api_orgs_list, api_orgs_create, api_orgs_get, api_orgs_update, api_orgs_delete;
api_handler_fn api_users_list, api_users_create, api_users_get, api_users_update,
    api_users_delete;
api_handler_fn api_devices_list, api_devices_create, api_devices_get, api_devices_update,
    api_devices_delete;
api_handler_fn api_positions_get, api_events_get, api_raw_get;
api_handler_fn api_report_route, api_report_trips, api_report_stops, api_report_summary;
/* routes_geofences.c */
api_handler_fn api_geofences_list, api_geofences_create, api_geofences_get, api_geofences_update,
    api_geofences_delete;
/* routes_shipments.c */
api_handler_fn api_shipments_list, api_shipments_create, api_shipments_get, api_shipments_update;
api_handler_fn api_shipment_report, api_device_seal, api_report_seals, api_report_violations;
/* routes_custody.c */
api_handler_fn api_custody_get, api_custody_add, api_custody_verify;
/* routes_alerts.c */
api_handler_fn api_webhooks_list, api_webhooks_create, api_webhooks_get, api_webhooks_update,
    api_webhooks_delete, api_webhook_deliveries;
api_handler_fn api_alert_rules_list, api_alert_rules_create, api_alert_rules_get,
    api_alert_rules_update, api_alert_rules_delete, api_alerts_list;
/* routes_commands.c */
api_handler_fn api_commands_create, api_commands_list, api_commands_get, api_commands_cancel;
api_handler_fn api_command_templates_list, api_command_templates_create,
    api_command_templates_update, api_command_templates_delete;

/** "viewer" / "operator" / "admin" and back (ROLE_NONE when unknown). */
const char *api_role_name(int role);
int api_role_parse(const char *s);

/** Set the session cookie (login) or clear it (logout, value NULL). */
void api_set_cookie(struct api_call *c, const char *value);

/* ---- tests and fuzzers only (the server never calls these) ---------------- */
/** An API without HTTP or pool, to run handlers directly; free with api_free. */
struct api *api_new_for_test(const struct st_config *cfg, struct store *store);
/** Route c->req and run it as a worker does once c->who is authenticated (role check,
 *  handler) on c->db; the caller fills req, who and db, and frees c->in and c->body.
 *  What the loop renders itself (health, metrics) comes back as kind CALL_METRICS. */
void api_call_run_for_test(struct api *a, struct api_call *c);

#endif
