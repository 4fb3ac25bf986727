/* routes_alerts.c — webhooks (and their delivery log), alert rules, and the alerts they
 * raised. Webhook secrets are write-only: a generated one is shown once, in the answer
 * to its POST. Webhook routes need the operator role, reads included, because a
 * webhook URL often carries a credential of its own. */
#include <curl/curl.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "../core/log.h"
#include "../core/timeutil.h"
#include "../domain/domain.h"
#include "api_internal.h"

#define NAME_MAX_LEN 128
#define GROUP_MAX_LEN 256 /* as a device's group */
#define URL_MAX_LEN 2048
#define SECRET_MIN_LEN 16
#define SECRET_MAX_LEN 256
#define SECRET_BYTES 32 /* generated: 43 base64url characters */
#define OFFLINE_MINUTES_MAX 10080
#define SPEED_MAX_KMH 1000
#define BATTERY_DEFAULT_PCT 20
#define PAGE_DEFAULT 100
#define PAGE_MAX 1000

static const char *const alert_types[] = {DOMAIN_TYPES};
#define N_ALERT_TYPES (sizeof alert_types / sizeof alert_types[0])

/* The index of type name s in alert_types, -1 when unknown. */
static int type_index(const char *s)
{
    for (size_t i = 0; i < N_ALERT_TYPES; i++)
        if (strcmp(alert_types[i], s) == 0)
            return (int)i;
    return -1;
}

/* ---- webhooks ---------------------------------------------------------------- */

#define WEBHOOK_COLUMNS "id, name, url, enabled, created_at"
static const char *const webhook_keys[] = {"name", "url", "secret", "enabled", NULL};

/* A webhook; arg: the secret, shown only in the answer to its creation (else NULL). */
static void webhook_json(struct api_call *c, struct jsonw *w, sqlite3_stmt *st, void *arg)
{
    (void)c;
    const char *secret = arg;
    jsonw_obj_begin(w);
    api_col_int(w, "id", st, 0);
    api_col_str(w, "name", st, 1);
    api_col_str(w, "url", st, 2);
    api_col_bool(w, "enabled", st, 3);
    api_col_time(w, "created_at", st, 4, 1);
    if (secret) {
        jsonw_key(w, "secret");
        jsonw_str(w, secret);
    }
    jsonw_obj_end(w);
}

static void answer_webhook(struct api_call *c, int64_t id, int status, const char *secret)
{
    api_answer_owned(c, "SELECT " WEBHOOK_COLUMNS " FROM webhooks WHERE id = ?1 AND org_id = ?2",
                     id, status, webhook_json, (void *)secret, "no such webhook");
}

/* An absolute http or https URL with a host, printable ASCII only (libcurl parses it as
 * the sender will). */
static bool url_valid(const char *url)
{
    for (const char *p = url; *p; p++)
        if (*p <= ' ' || *p > '~')
            return false;
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL;
    bool ok = u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
              curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
              curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK && host[0] &&
              (strcmp(scheme, "http") == 0 || strcmp(scheme, "https") == 0);
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    return ok;
}

/* The webhook fields of the body (any may be absent: *name, *url, *secret NULL, *enabled
 * -1). 0 or -1 (answered). */
static int webhook_fields(struct api_call *c, bool create, const char **name, const char **url,
                          const char **secret, int *enabled)
{
    bool on = true;
    int rc;
    if (api_field_str(c, "name", NAME_MAX_LEN, create, false, name) ||
        api_field_str(c, "url", URL_MAX_LEN, create, false, url) ||
        api_field_str(c, "secret", SECRET_MAX_LEN, false, false, secret) ||
        (rc = api_field_bool(c, "enabled", &on)) < 0)
        return -1;
    *enabled = rc ? on : -1;
    if (*name && !**name) {
        api_error(c, 400, "name", "must not be empty");
        return -1;
    }
    if (*url && !url_valid(*url)) {
        api_error(c, 400, "url", "must be an absolute http:// or https:// URL");
        return -1;
    }
    if (*secret && strlen(*secret) < SECRET_MIN_LEN) {
        api_error(c, 400, "secret", "must be %d..%d characters", SECRET_MIN_LEN, SECRET_MAX_LEN);
        return -1;
    }
    return 0;
}

void api_webhooks_create(struct api_call *c)
{
    const char *name, *url, *secret;
    int enabled;
    if (api_body(c, webhook_keys) || webhook_fields(c, true, &name, &url, &secret, &enabled))
        return;
    char made[sodium_base64_ENCODED_LEN(SECRET_BYTES, sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
    if (!secret) {
        unsigned char bytes[SECRET_BYTES];
        randombytes_buf(bytes, sizeof bytes);
        secret = sodium_bin2base64(made, sizeof made, bytes, sizeof bytes,
                                   sodium_base64_VARIANT_URLSAFE_NO_PADDING);
        sodium_memzero(bytes, sizeof bytes);
    }
    sqlite3_stmt *st;
    if (api_prepare(c,
                    "INSERT INTO webhooks(org_id, name, url, secret, enabled, created_at)"
                    " VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
                    &st))
        goto out;
    sqlite3_bind_int64(st, 1, c->who.org_id);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, url, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, secret, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 5, enabled != 0);
    sqlite3_bind_int64(st, 6, st_now());
    if (api_step_write(c, st, NULL))
        goto out;
    int64_t id = sqlite3_last_insert_rowid(c->db);
    st_log(ST_LOG_INFO, "event=webhook_created by=%" PRId64 " webhook=%" PRId64 " org=%" PRId64,
           c->who.user_id, id, c->who.org_id);
    answer_webhook(c, id, 201, secret);
out:
    sodium_memzero(made, sizeof made);
}

void api_webhooks_list(struct api_call *c)
{
    sqlite3_stmt *st;
    if (api_prepare(c, "SELECT " WEBHOOK_COLUMNS " FROM webhooks WHERE org_id = ?1 ORDER BY id",
                    &st))
        return;
    sqlite3_bind_int64(st, 1, c->who.org_id);
    api_answer_page(c, st, "webhooks", INT64_MAX, webhook_json, NULL);
}

void api_webhooks_get(struct api_call *c)
{
    answer_webhook(c, c->id, 200, NULL);
}

void api_webhooks_update(struct api_call *c)
{
    const char *name, *url, *secret;
    int enabled;
    if (api_body(c, webhook_keys) || webhook_fields(c, false, &name, &url, &secret, &enabled))
        return;
    sqlite3_stmt *st;
    if (api_prepare(c,
                    "UPDATE webhooks SET name = coalesce(?3, name), url = coalesce(?4, url),"
                    " secret = coalesce(?5, secret), enabled = coalesce(?6, enabled)"
                    " WHERE id = ?1 AND org_id = ?2",
                    &st))
        return;
    sqlite3_bind_int64(st, 1, c->id);
    sqlite3_bind_int64(st, 2, c->who.org_id);
    const char *texts[] = {name, url, secret};
    for (int i = 0; i < 3; i++)
        if (texts[i])
            sqlite3_bind_text(st, 3 + i, texts[i], -1, SQLITE_STATIC);
    if (enabled >= 0)
        sqlite3_bind_int(st, 6, enabled);
    if (api_step_write(c, st, NULL))
        return;
    if (sqlite3_changes(c->db) == 0) {
        api_error(c, 404, NULL, "no such webhook");
        return;
    }
    answer_webhook(c, c->id, 200, NULL);
}

void api_webhooks_delete(struct api_call *c)
{
    /* its deliveries go with it; rules naming it keep alerting without a webhook */
    if (!api_delete_owned(c, "webhooks", "no such webhook"))
        return;
    store_domain_changed(api_store(c->api));
    st_log(ST_LOG_INFO, "event=webhook_deleted by=%" PRId64 " webhook=%" PRId64, c->who.user_id,
           c->id);
    api_no_content(c);
}

static void delivery_json(struct api_call *c, struct jsonw *w, sqlite3_stmt *st, void *arg)
{
    (void)c;
    (void)arg;
    bool pending = strcmp((const char *)sqlite3_column_text(st, 2), "pending") == 0;
    jsonw_obj_begin(w);
    api_col_int(w, "id", st, 0);
    api_col_int(w, "alert_id", st, 1);
    api_col_str(w, "state", st, 2);
    api_col_int(w, "attempts", st, 3);
    api_col_int(w, "last_status", st, 4);
    api_col_str(w, "last_error", st, 5);
    if (pending)
        api_col_time(w, "next_attempt_at", st, 6, 1000);
    else {
        jsonw_key(w, "next_attempt_at");
        jsonw_null(w);
    }
    api_col_time(w, "created_at", st, 7, 1000);
    api_col_time(w, "delivered_at", st, 8, 1000);
    jsonw_obj_end(w);
}

void api_webhook_deliveries(struct api_call *c)
{
    int64_t before, limit;
    if (api_query_int(c, "before_id", 1, INT64_MAX, 0, &before) ||
        api_query_int(c, "limit", 1, PAGE_MAX, PAGE_DEFAULT, &limit))
        return;
    int found = api_org_has(c, "SELECT 1 FROM webhooks WHERE org_id = ?1 AND id = ?2", c->id, NULL);
    if (found <= 0) {
        if (found == 0)
            api_error(c, 404, NULL, "no such webhook");
        return;
    }
    sqlite3_stmt *st;
    if (api_prepare(c,
                    "SELECT id, alert_id, state, attempts, last_status, last_error,"
                    " next_attempt_at, created_at, delivered_at FROM webhook_deliveries"
                    " WHERE webhook_id = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3",
                    &st))
        return;
    sqlite3_bind_int64(st, 1, c->id);
    sqlite3_bind_int64(st, 2, before ? before : INT64_MAX);
    sqlite3_bind_int64(st, 3, limit + 1);
    api_answer_page(c, st, "deliveries", limit, delivery_json, NULL);
}

/* ---- alert rules ------------------------------------------------------------ */

/* The body keys are the column names, which lets an update start from the row. */
#define RULE_FIELDS                                                                                \
    "name, types, device_id, group_name, shipment_id, webhook_id, stream, offline_minutes,"        \
    " speed_kmh, battery_pct, enabled"
static const char *const rule_keys[] = {
    "name",   "types",           "device_id", "group_name",  "shipment_id", "webhook_id",
    "stream", "offline_minutes", "speed_kmh", "battery_pct", "enabled",     NULL};

struct rule_in {
    const char *name, *group;                   /* group NULL: none */
    struct buf types;                           /* JSON array text */
    int64_t device_id, shipment_id, webhook_id; /* 0 none */
    bool stream, enabled;
    int64_t offline_minutes; /* 0 none */
    double speed_kmh;        /* < 0 none */
    int64_t battery_pct;     /* < 0 none */
};

static void rule_json(struct api_call *c, struct jsonw *w, sqlite3_stmt *st, void *arg)
{
    (void)c;
    (void)arg;
    jsonw_obj_begin(w);
    api_col_int(w, "id", st, 0);
    api_col_str(w, "name", st, 1);
    jsonw_key(w, "types");
    jsonw_raw(w, (const char *)sqlite3_column_text(st, 2));
    api_col_int(w, "device_id", st, 3);
    api_col_str(w, "group_name", st, 4);
    api_col_int(w, "shipment_id", st, 5);
    api_col_int(w, "webhook_id", st, 6);
    api_col_bool(w, "stream", st, 7);
    api_col_int(w, "offline_minutes", st, 8);
    api_col_num(w, "speed_kmh", st, 9, 1);
    api_col_int(w, "battery_pct", st, 10);
    api_col_bool(w, "enabled", st, 11);
    api_col_time(w, "created_at", st, 12, 1);
    jsonw_obj_end(w);
}

static void answer_rule(struct api_call *c, int64_t id, int status)
{
    api_answer_owned(c,
                     "SELECT id, " RULE_FIELDS ", created_at FROM alert_rules"
                     " WHERE id = ?1 AND org_id = ?2",
                     id, status, rule_json, NULL, "no such alert rule");
}

/* types: a non-empty array of known names, written without repeats into in->types.
 * *bits gets the names seen (index in alert_types). 0 or -1 (answered). */
static int rule_types(struct api_call *c, struct rule_in *in, uint32_t *bits)
{
    json_t *arr = json_object_get(c->in, "types");
    if (!json_is_array(arr) || json_array_size(arr) == 0) {
        api_error(c, 400, "types", "must be a non-empty array of alert types");
        return -1;
    }
    struct jsonw w;
    jsonw_init(&w, &in->types);
    jsonw_arr_begin(&w);
    *bits = 0;
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        const char *s = json_string_value(v);
        if (!s) {
            api_error(c, 400, "types", "must be an array of alert type names");
            return -1;
        }
        int k = type_index(s);
        if (k < 0) {
            char safe[ST_LOG_TEXT_MAX];
            api_error(c, 400, "types", "unknown alert type \"%s\"", st_log_text(s, safe));
            return -1;
        }
        if (!(*bits & 1u << k))
            jsonw_str(&w, s);
        *bits |= 1u << k;
    }
    jsonw_arr_end(&w);
    return 0;
}

static bool has_type(uint32_t bits, const char *name)
{
    return bits & 1u << type_index(name); /* name: one of ours */
}

/* A threshold field follows its type: required with it (unless it has a default), refused
 * without it when the body gives it. On an update (patch: the body) a value kept from the
 * row goes away with its type (*clear). 0 or -1 (answered). */
static int threshold_check(struct api_call *c, const json_t *patch, bool typed, bool present,
                           const char *field, const char *type, bool has_default, bool *clear)
{
    *clear = false;
    if (typed && !present && !has_default) {
        api_error(c, 400, field, "required with the %s type", type);
        return -1;
    }
    if (!typed && present) {
        if (!patch || json_object_get(patch, field)) {
            api_error(c, 400, field, "only with the %s type", type);
            return -1;
        }
        *clear = true;
    }
    return 0;
}

/* Read and check the rule in c->in (a whole rule: an update merges the row first and passes
 * its body as patch; NULL on create). 0 or -1 (answered). */
static int rule_parse(struct api_call *c, const json_t *patch, struct rule_in *in)
{
    uint32_t bits;
    bool is_null;
    int64_t v;
    int rc;
    memset(in, 0, sizeof *in);
    in->stream = in->enabled = true;
    in->speed_kmh = -1;
    in->battery_pct = -1;
    if (api_field_str(c, "name", NAME_MAX_LEN, true, false, &in->name) ||
        rule_types(c, in, &bits) ||
        api_field_str(c, "group_name", GROUP_MAX_LEN, false, true, &in->group) ||
        api_field_bool(c, "stream", &in->stream) < 0 ||
        api_field_bool(c, "enabled", &in->enabled) < 0)
        return -1;
    if (in->group && !*in->group)
        in->group = NULL;
    const char *id_keys[] = {"device_id", "shipment_id", "webhook_id"};
    int64_t *ids[] = {&in->device_id, &in->shipment_id, &in->webhook_id};
    for (int i = 0; i < 3; i++) {
        if ((rc = api_field_int(c, id_keys[i], 1, INT64_MAX, true, &is_null, &v)) < 0)
            return -1;
        *ids[i] = rc == 1 && !is_null ? v : 0;
    }
    if ((rc = api_field_int(c, "offline_minutes", 1, OFFLINE_MINUTES_MAX, true, &is_null, &v)) < 0)
        return -1;
    in->offline_minutes = rc == 1 && !is_null ? v : 0;
    if ((rc = api_field_int(c, "battery_pct", 0, 100, true, &is_null, &v)) < 0)
        return -1;
    in->battery_pct = rc == 1 && !is_null ? v : -1;
    json_t *speed = json_object_get(c->in, "speed_kmh");
    if (speed && !json_is_null(speed)) {
        double s = json_number_value(speed);
        if (!json_is_number(speed) || !(s > 0 && s <= SPEED_MAX_KMH)) {
            api_error(c, 400, "speed_kmh", "must be a number over 0 and at most %d, or null",
                      SPEED_MAX_KMH);
            return -1;
        }
        in->speed_kmh = s;
    }

    if ((in->device_id != 0) + (in->group != NULL) + (in->shipment_id != 0) > 1) {
        api_error(c, 400, in->device_id ? "device_id" : "group_name",
                  "at most one of device_id, group_name and shipment_id");
        return -1;
    }
    bool clear;
    if (threshold_check(c, patch, has_type(bits, "device_offline"), in->offline_minutes > 0,
                        "offline_minutes", "device_offline", false, &clear))
        return -1;
    if (clear)
        in->offline_minutes = 0;
    if (threshold_check(c, patch, has_type(bits, "overspeed"), in->speed_kmh >= 0, "speed_kmh",
                        "overspeed", false, &clear))
        return -1;
    if (clear)
        in->speed_kmh = -1;
    if (threshold_check(c, patch, has_type(bits, "low_battery"), in->battery_pct >= 0,
                        "battery_pct", "low_battery", true, &clear))
        return -1;
    if (clear)
        in->battery_pct = -1;
    if (has_type(bits, "low_battery") && in->battery_pct < 0)
        in->battery_pct = BATTERY_DEFAULT_PCT;

    /* what the rule names must be the organisation's */
    struct {
        bool set;
        const char *field, *sql, *missing;
        int64_t id;
        const char *text;
    } refs[] = {
        {in->device_id != 0, "device_id", "SELECT 1 FROM devices WHERE org_id = ?1 AND id = ?2",
         "no such device", in->device_id, NULL},
        {in->group != NULL, "group_name",
         "SELECT 1 FROM devices WHERE org_id = ?1 AND group_name = ?2 LIMIT 1",
         "no device is in this group", 0, in->group},
        {in->shipment_id != 0, "shipment_id",
         "SELECT 1 FROM shipments WHERE org_id = ?1 AND id = ?2", "no such shipment",
         in->shipment_id, NULL},
        {in->webhook_id != 0, "webhook_id", "SELECT 1 FROM webhooks WHERE org_id = ?1 AND id = ?2",
         "no such webhook", in->webhook_id, NULL},
    };
    for (size_t i = 0; i < sizeof refs / sizeof refs[0]; i++) {
        if (!refs[i].set)
            continue;
        int found = api_org_has(c, refs[i].sql, refs[i].id, refs[i].text);
        if (found == 0)
            api_error(c, 400, refs[i].field, "%s", refs[i].missing);
        if (found <= 0)
            return -1;
    }
    return 0;
}

static void bind_opt_id(sqlite3_stmt *st, int i, int64_t v)
{
    if (v)
        sqlite3_bind_int64(st, i, v);
}

/* Parameters 2..12 in RULE_FIELDS order. */
static void rule_bind(sqlite3_stmt *st, const struct rule_in *in)
{
    sqlite3_bind_text(st, 2, in->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, (const char *)in->types.data, (int)in->types.len, SQLITE_STATIC);
    bind_opt_id(st, 4, in->device_id);
    if (in->group)
        sqlite3_bind_text(st, 5, in->group, -1, SQLITE_STATIC);
    bind_opt_id(st, 6, in->shipment_id);
    bind_opt_id(st, 7, in->webhook_id);
    sqlite3_bind_int(st, 8, in->stream);
    bind_opt_id(st, 9, in->offline_minutes);
    if (in->speed_kmh >= 0)
        sqlite3_bind_double(st, 10, in->speed_kmh);
    if (in->battery_pct >= 0)
        sqlite3_bind_int64(st, 11, in->battery_pct);
    sqlite3_bind_int(st, 12, in->enabled);
}

void api_alert_rules_create(struct api_call *c)
{
    struct rule_in in = {0};
    if (api_body(c, rule_keys) || rule_parse(c, NULL, &in))
        goto out;
    sqlite3_stmt *st;
    if (api_prepare(c,
                    "INSERT INTO alert_rules(org_id, " RULE_FIELDS ", created_at)"
                    " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                    &st))
        goto out;
    sqlite3_bind_int64(st, 1, c->who.org_id);
    rule_bind(st, &in);
    sqlite3_bind_int64(st, 13, st_now());
    if (api_step_write(c, st, NULL))
        goto out;
    int64_t id = sqlite3_last_insert_rowid(c->db);
    store_domain_changed(api_store(c->api));
    st_log(ST_LOG_INFO, "event=alert_rule_created by=%" PRId64 " rule=%" PRId64 " org=%" PRId64,
           c->who.user_id, id, c->who.org_id);
    answer_rule(c, id, 201);
out:
    buf_free(&in.types);
}

/* The stored rule as a body object (keys = columns), for an update to merge into; NULL
 * answered (404 or database error). */
static json_t *rule_row(struct api_call *c)
{
    sqlite3_stmt *st;
    if (api_prepare(c, "SELECT " RULE_FIELDS " FROM alert_rules WHERE id = ?1 AND org_id = ?2",
                    &st))
        return NULL;
    sqlite3_bind_int64(st, 1, c->id);
    sqlite3_bind_int64(st, 2, c->who.org_id);
    json_t *o = NULL;
    if (sqlite3_step(st) == SQLITE_ROW) {
        o = json_object();
        for (int i = 0; i < sqlite3_column_count(st); i++) {
            const char *key = sqlite3_column_name(st, i);
            const char *text = (const char *)sqlite3_column_text(st, i);
            json_t *v;
            json_error_t jerr;
            if (sqlite3_column_type(st, i) == SQLITE_NULL)
                v = json_null();
            else if (strcmp(key, "types") == 0)
                v = json_loads(text, 0, &jerr);
            else if (strcmp(key, "stream") == 0 || strcmp(key, "enabled") == 0)
                v = json_boolean(sqlite3_column_int(st, i));
            else if (sqlite3_column_type(st, i) == SQLITE_INTEGER)
                v = json_integer(sqlite3_column_int64(st, i));
            else if (sqlite3_column_type(st, i) == SQLITE_FLOAT)
                v = json_real(sqlite3_column_double(st, i));
            else
                v = json_string(text);
            json_object_set_new(o, key, v ? v : json_null());
        }
    } else
        api_error(c, 404, NULL, "no such alert rule");
    sqlite3_finalize(st);
    return o;
}

void api_alert_rules_update(struct api_call *c)
{
    struct rule_in in = {0};
    if (api_body(c, rule_keys))
        return;
    json_t *merged = rule_row(c);
    if (!merged)
        return;
    /* a scope in the body replaces the row's */
    static const char *const scopes[] = {"device_id", "group_name", "shipment_id"};
    for (int i = 0; i < 3; i++)
        if (json_object_get(c->in, scopes[i]))
            for (int k = 0; k < 3; k++)
                json_object_set_new(merged, scopes[k], json_null());
    json_t *patch = c->in;
    json_object_update(merged, patch);
    c->in = merged;
    int rc = rule_parse(c, patch, &in);
    json_decref(patch);
    if (rc)
        goto out;
    sqlite3_stmt *st;
    if (api_prepare(c,
                    "UPDATE alert_rules SET name = ?2, types = ?3, device_id = ?4,"
                    " group_name = ?5, shipment_id = ?6, webhook_id = ?7, stream = ?8,"
                    " offline_minutes = ?9, speed_kmh = ?10, battery_pct = ?11, enabled = ?12"
                    " WHERE id = ?1 AND org_id = ?13",
                    &st))
        goto out;
    sqlite3_bind_int64(st, 1, c->id);
    rule_bind(st, &in);
    sqlite3_bind_int64(st, 13, c->who.org_id);
    if (api_step_write(c, st, NULL))
        goto out;
    store_domain_changed(api_store(c->api));
    answer_rule(c, c->id, 200);
out:
    buf_free(&in.types);
}

void api_alert_rules_list(struct api_call *c)
{
    sqlite3_stmt *st;
    if (api_prepare(c,
                    "SELECT id, " RULE_FIELDS ", created_at FROM alert_rules"
                    " WHERE org_id = ?1 ORDER BY id",
                    &st))
        return;
    sqlite3_bind_int64(st, 1, c->who.org_id);
    api_answer_page(c, st, "alert_rules", INT64_MAX, rule_json, NULL);
}

void api_alert_rules_get(struct api_call *c)
{
    answer_rule(c, c->id, 200);
}

void api_alert_rules_delete(struct api_call *c)
{
    if (!api_delete_owned(c, "alert_rules", "no such alert rule"))
        return;
    store_domain_changed(api_store(c->api));
    api_no_content(c);
}

/* ---- alerts ------------------------------------------------------------------------ */

static void alert_json(struct api_call *c, struct jsonw *w, sqlite3_stmt *st, void *arg)
{
    (void)c;
    (void)arg;
    jsonw_obj_begin(w);
    api_col_int(w, "id", st, 0);
    api_col_str(w, "type", st, 1);
    api_col_time(w, "time", st, 2, 1);
    api_col_time(w, "created_at", st, 3, 1000);
    jsonw_key(w, "rule");
    if (sqlite3_column_type(st, 4) == SQLITE_NULL)
        jsonw_null(w);
    else {
        jsonw_obj_begin(w);
        api_col_int(w, "id", st, 4);
        api_col_str(w, "name", st, 5); /* null once the rule is deleted */
        jsonw_obj_end(w);
    }
    api_col_int(w, "device_id", st, 6);
    api_col_str(w, "uid", st, 7);
    api_col_int(w, "shipment_id", st, 8);
    api_col_int(w, "event_id", st, 9);
    api_col_int(w, "fence_id", st, 10);
    api_col_num(w, "lat", st, 11, 6);
    api_col_num(w, "lon", st, 12, 6);
    api_col_json(w, "detail", st, 13);
    jsonw_obj_end(w);
}

void api_alerts_list(struct api_call *c)
{
    int64_t device, shipment, before, limit, from = INT64_MIN, to = INT64_MAX;
    char type[32], probe[40];
    int has_type, has_from, has_to;
    if ((has_type = api_query_str(c, "type", type, sizeof type)) < 0 ||
        api_query_int(c, "device_id", 1, INT64_MAX, 0, &device) ||
        api_query_int(c, "shipment_id", 1, INT64_MAX, 0, &shipment) ||
        api_query_int(c, "before_id", 1, INT64_MAX, 0, &before) ||
        api_query_int(c, "limit", 1, PAGE_MAX, PAGE_DEFAULT, &limit))
        return;
    if (has_type && type_index(type) < 0) {
        api_error(c, 400, "type", "unknown alert type");
        return;
    }
    /* a time window only when asked for one (to defaults to now, from to the beginning) */
    if ((has_from = api_query_str(c, "from", probe, sizeof probe)) < 0 ||
        (has_to = api_query_str(c, "to", probe, sizeof probe)) < 0 ||
        ((has_from || has_to) && api_query_range(c, INT64_MAX / 4, &from, &to)))
        return;
    sqlite3_stmt *st;
    if (api_prepare(c,
                    "SELECT a.id, a.type, a.time, a.created_at, a.rule_id, r.name,"
                    " a.device_id, d.uid, a.shipment_id, a.event_id, a.fence_id, a.lat, a.lon,"
                    " a.detail FROM alerts a LEFT JOIN devices d ON d.id = a.device_id"
                    " LEFT JOIN alert_rules r ON r.id = a.rule_id"
                    " WHERE a.org_id = ?1 AND a.id < ?2"
                    " AND (?3 IS NULL OR a.type = ?3) AND (?4 = 0 OR a.device_id = ?4)"
                    " AND (?5 = 0 OR a.shipment_id = ?5) AND a.time BETWEEN ?6 AND ?7"
                    " ORDER BY a.id DESC LIMIT ?8",
                    &st))
        return;
    sqlite3_bind_int64(st, 1, c->who.org_id);
    sqlite3_bind_int64(st, 2, before ? before : INT64_MAX);
    if (has_type)
        sqlite3_bind_text(st, 3, type, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, device);
    sqlite3_bind_int64(st, 5, shipment);
    sqlite3_bind_int64(st, 6, from);
    sqlite3_bind_int64(st, 7, to);
    sqlite3_bind_int64(st, 8, limit + 1);
    api_answer_page(c, st, "alerts", limit, alert_json, NULL);
}
