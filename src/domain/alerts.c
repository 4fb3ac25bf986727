/* alerts.c — alert rules matched against domain facts on the store's writer thread.
 *
 * Every organisation's enabled rules sit in one array sorted by organisation, so a fact
 * costs one binary search and a walk over its organisation's rules; nothing touches the
 * database unless a rule matches. A rule's types are a bit set over DOMAIN_TYPES.
 * Threshold rules (overspeed, low battery) remember in memory which (rule, device) pairs
 * are over the threshold: a device fires once per excursion, and once more after a
 * restart if it is still over then. Whether a rule's webhook is enabled is read when an
 * alert is stored (one INSERT … SELECT), so toggling a webhook needs no reload.
 */
#include "alerts.h"

#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/err.h"
#include "../core/jsonw.h"
#include "../core/log.h"
#include "../core/mem.h"
#include "../core/strmap.h"
#include "../core/timeutil.h"
#include "../store/schema.h"

#define OFFLINE_PASS_MAX 1000 /* devices looked at per offline pass, over all rules */

static const char *const type_names[] = {DOMAIN_TYPES};
#define N_TYPES (sizeof type_names / sizeof type_names[0])
_Static_assert(N_TYPES <= 32, "rule types are a 32-bit set");

struct rule {
    int64_t id, org_id;
    int64_t device_id, shipment_id, webhook_id; /* 0 none */
    char *name;                                 /* owned */
    char *group;                                /* owned; NULL none */
    uint32_t types;                             /* bit i: type_names[i] */
    bool stream;
    int offline_minutes;    /* 0 none */
    double speed_kmh;       /* < 0 none */
    int battery_pct;        /* < 0 none */
    int64_t offline_cursor; /* offline pass: the last device id looked at */
};

struct alerts {
    sqlite3 *db; /* the connection the statements belong to */
    sqlite3_stmt *ins_alert, *ins_delivery, *sel_offline;
    struct rule *rules; /* sorted by org_id, id */
    size_t n_rules;
    atomic_bool changed;
    struct strmap over;  /* "o:<rule>:<device>" / "b:…" while over a threshold */
    size_t offline_next; /* the rule the next offline pass starts with */
};

static int type_index(const char *name)
{
    for (size_t i = 0; name && i < N_TYPES; i++)
        if (strcmp(type_names[i], name) == 0)
            return (int)i;
    return -1;
}

static uint32_t type_bit(const char *name)
{
    int i = type_index(name);
    return i < 0 ? 0 : 1u << i;
}

/* ---- statements -------------------------------------------------------------- */

static void stmts_free(struct alerts *a)
{
    sqlite3_finalize(a->ins_alert);
    sqlite3_finalize(a->ins_delivery);
    sqlite3_finalize(a->sel_offline);
    a->ins_alert = a->ins_delivery = a->sel_offline = NULL;
    a->db = NULL;
}

/* The statements on db (prepared again if the caller's connection changed). */
static int stmts(struct alerts *a, sqlite3 *db)
{
    if (a->db == db)
        return 0;
    stmts_free(a);
    /* sel_offline: a rule's candidate devices, one page of its organisation from a cursor;
     * the last column says "silent and not yet alerted for this silence" (CASE: the EXISTS
     * runs only for silent devices). */
    if (schema_prepare(db,
                "INSERT INTO alerts(org_id, rule_id, device_id, shipment_id, type, time,"
                " created_at, event_id, fence_id, lat, lon, detail)"
                " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                &a->ins_alert) ||
        schema_prepare(db,
                "INSERT INTO webhook_deliveries(alert_id, webhook_id, state, attempts,"
                " next_attempt_at, created_at) SELECT ?1, id, 'pending', 0, ?2, ?2"
                " FROM webhooks WHERE id = ?3 AND org_id = ?4 AND enabled = 1",
                &a->ins_delivery) ||
        schema_prepare(db,
                "SELECT d.id, d.uid, d.group_name, s.last_seen, s.lat, s.lon,"
                " (SELECT sh.id FROM shipments sh WHERE sh.device_id = d.id"
                "  AND sh.status = 'open'),"
                " CASE WHEN s.last_seen < ?5 THEN NOT EXISTS (SELECT 1 FROM alerts al"
                "  WHERE al.rule_id = ?6 AND al.device_id = d.id"
                "  AND al.type = 'device_offline' AND al.time = s.last_seen / 1000)"
                " ELSE 0 END"
                " FROM devices d JOIN device_state s ON s.device_id = d.id"
                " WHERE d.org_id = ?1 AND d.id > ?2 AND (?3 IS NULL OR d.id = ?3)"
                " AND (?4 IS NULL OR d.group_name = ?4)"
                " AND (?7 IS NULL OR d.id = (SELECT device_id FROM shipments"
                "  WHERE id = ?7 AND status = 'open'))"
                " ORDER BY d.id LIMIT ?8",
                &a->sel_offline)) {
        stmts_free(a);
        return ST_EIO;
    }
    a->db = db;
    return 0;
}

/* ---- rules ------------------------------------------------------------------- */

static void rules_free(struct rule *r, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        st_free(r[i].name);
        st_free(r[i].group);
    }
    st_free(r);
}

static char *col_dup(sqlite3_stmt *st, int col)
{
    if (sqlite3_column_type(st, col) == SQLITE_NULL)
        return NULL;
    const unsigned char *s = sqlite3_column_text(st, col);
    size_t n = (size_t)sqlite3_column_bytes(st, col);
    char *p = st_malloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

/* The types column (a JSON array of names) as a bit set; names this build does not know
 * are skipped with a warning (the API refuses them, so only a hand-edited row has any). */
static uint32_t types_parse(int64_t rule_id, const char *text)
{
    json_error_t jerr;
    json_t *arr = text ? json_loads(text, 0, &jerr) : NULL;
    uint32_t bits = 0;
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        uint32_t bit = type_bit(json_string_value(v));
        if (!bit)
            st_log(ST_LOG_WARN, "event=alert_rule_type_unknown rule=%" PRId64, rule_id);
        bits |= bit;
    }
    json_decref(arr);
    return bits;
}

static int rules_load(struct alerts *a, sqlite3 *db)
{
    sqlite3_stmt *st;
    struct rule *v = NULL;
    size_t n = 0, cap = 0;
    if (sqlite3_prepare_v2(db,
                           "SELECT id, org_id, name, types, device_id, group_name,"
                           " shipment_id, webhook_id, stream, offline_minutes, speed_kmh,"
                           " battery_pct FROM alert_rules WHERE enabled = 1"
                           " ORDER BY org_id, id",
                           -1, &st, NULL) != SQLITE_OK)
        goto fail;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            v = st_realloc(v, cap * sizeof *v);
        }
        struct rule *r = &v[n++];
        memset(r, 0, sizeof *r);
        r->id = sqlite3_column_int64(st, 0);
        r->org_id = sqlite3_column_int64(st, 1);
        r->name = col_dup(st, 2);
        r->types = types_parse(r->id, (const char *)sqlite3_column_text(st, 3));
        r->device_id = sqlite3_column_int64(st, 4);
        r->group = col_dup(st, 5);
        r->shipment_id = sqlite3_column_int64(st, 6);
        r->webhook_id = sqlite3_column_int64(st, 7);
        r->stream = sqlite3_column_int(st, 8) != 0;
        r->offline_minutes = sqlite3_column_int(st, 9);
        r->speed_kmh =
            sqlite3_column_type(st, 10) == SQLITE_NULL ? -1 : sqlite3_column_double(st, 10);
        r->battery_pct =
            sqlite3_column_type(st, 11) == SQLITE_NULL ? -1 : sqlite3_column_int(st, 11);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        goto fail;
    rules_free(a->rules, a->n_rules);
    a->rules = v;
    a->n_rules = n;
    a->offline_next = 0;
    st_log(ST_LOG_INFO, "event=alert_rules_loaded rules=%zu", n);
    return 0;
fail:
    st_log(ST_LOG_ERROR, "event=alert_rules_load_failed reason=\"%s\"", sqlite3_errmsg(db));
    rules_free(v, n);
    return ST_EIO;
}

/* Re-read the rules if the API changed them; on failure keep the old ones and try again
 * at the next call. */
static void rules_refresh(struct alerts *a, sqlite3 *db)
{
    if (atomic_exchange(&a->changed, false) && rules_load(a, db))
        atomic_store(&a->changed, true);
}

/* The organisation's rules: [*first, *end). */
static void org_rules(const struct alerts *a, int64_t org, size_t *first, size_t *end)
{
    size_t lo = 0, hi = a->n_rules;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (a->rules[mid].org_id < org)
            lo = mid + 1;
        else
            hi = mid;
    }
    *first = lo;
    while (hi < a->n_rules && a->rules[hi].org_id == org)
        hi++;
    *end = hi;
}

static bool scope_matches(const struct rule *r, const struct domain_event *e)
{
    if (r->device_id)
        return r->device_id == e->device_id;
    if (r->group)
        return e->group_name && strcmp(r->group, e->group_name) == 0;
    if (r->shipment_id)
        return r->shipment_id == e->shipment_id;
    return true;
}

/* ---- storing an alert ------------------------------------------------------- */

/* The alert's detail object: the fact's own fields, then the members of e->detail that do
 * not repeat one of them. Written into out; returns its text. */
static const char *detail_build(const struct domain_event *e, struct buf *out)
{
    static const char *const own[] = {"source", "card",      "reason",
                                      "late",   "speed_kmh", "battery_pct"};
    const char *texts[] = {e->source, e->card, e->reason};
    bool wrote[6] = {false};
    struct jsonw w;
    out->len = 0;
    jsonw_init(&w, out);
    jsonw_obj_begin(&w);
    for (int i = 0; i < 3; i++)
        if (texts[i]) {
            jsonw_key(&w, own[i]);
            jsonw_str(&w, texts[i]);
            wrote[i] = true;
        }
    if (e->late) {
        jsonw_key(&w, own[3]);
        jsonw_bool(&w, true);
        wrote[3] = true;
    }
    if (e->speed_kmh >= 0) {
        jsonw_key(&w, own[4]);
        jsonw_num(&w, e->speed_kmh, 1);
        wrote[4] = true;
    }
    if (e->battery_pct >= 0) {
        jsonw_key(&w, own[5]);
        jsonw_int(&w, e->battery_pct);
        wrote[5] = true;
    }
    json_error_t jerr;
    json_t *extra = e->detail ? json_loads(e->detail, JSON_REJECT_DUPLICATES, &jerr) : NULL;
    const char *key;
    json_t *val;
    json_object_foreach(extra, key, val)
    {
        size_t i = 0;
        while (i < 6 && !(wrote[i] && strcmp(own[i], key) == 0))
            i++;
        char *text = i == 6 ? json_dumps(val, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
        if (text) {
            jsonw_key(&w, key);
            jsonw_raw(&w, text);
        }
        free(text); /* jansson's allocation */
    }
    json_decref(extra);
    jsonw_obj_end(&w);
    return buf_cstr(out);
}

static void bind_id(sqlite3_stmt *st, int i, int64_t v)
{
    if (v)
        sqlite3_bind_int64(st, i, v);
    else
        sqlite3_bind_null(st, i);
}

static void stream_render(const struct rule *r, const struct domain_event *e, int64_t alert_id,
                          const char *detail, struct buf *live)
{
    struct jsonw w;
    buf_append_str(live, "event: alert\ndata: ");
    jsonw_init(&w, live);
    jsonw_obj_begin(&w);
    jsonw_key(&w, "id");
    jsonw_int(&w, alert_id);
    jsonw_key(&w, "type");
    jsonw_str(&w, e->type);
    jsonw_key_time(&w, "time", e->time);
    jsonw_key(&w, "device_id");
    jsonw_int(&w, e->device_id);
    jsonw_key(&w, "uid");
    if (e->device_uid)
        jsonw_str(&w, e->device_uid);
    else
        jsonw_null(&w);
    const char *ids[] = {"shipment_id", "fence_id"};
    int64_t vals[] = {e->shipment_id, e->fence_id};
    for (int i = 0; i < 2; i++) {
        jsonw_key(&w, ids[i]);
        if (vals[i])
            jsonw_int(&w, vals[i]);
        else
            jsonw_null(&w);
    }
    jsonw_key(&w, "rule");
    jsonw_obj_begin(&w);
    jsonw_key(&w, "id");
    jsonw_int(&w, r->id);
    jsonw_key(&w, "name");
    jsonw_str(&w, r->name ? r->name : "");
    jsonw_obj_end(&w);
    jsonw_key(&w, "lat");
    jsonw_num(&w, e->has_pos ? e->lat : NAN, 6);
    jsonw_key(&w, "lon");
    jsonw_num(&w, e->has_pos ? e->lon : NAN, 6);
    jsonw_key(&w, "detail");
    jsonw_raw(&w, detail);
    jsonw_obj_end(&w);
    buf_append_str(live, "\n\n");
}

/* Store one alert of rule r for e (type e->type), queue its webhook delivery and stream it.
 * detail: scratch for the detail text. 0 or ST_EIO. */
static int fire(struct alerts *a, const struct rule *r, const struct domain_event *e,
                struct buf *detail, struct buf *live)
{
    int64_t now_ms = st_now_ms();
    const char *text = detail_build(e, detail);
    sqlite3_stmt *st = a->ins_alert;
    sqlite3_bind_int64(st, 1, e->org_id);
    sqlite3_bind_int64(st, 2, r->id);
    bind_id(st, 3, e->device_id);
    bind_id(st, 4, e->shipment_id);
    sqlite3_bind_text(st, 5, e->type, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, e->time);
    sqlite3_bind_int64(st, 7, now_ms);
    bind_id(st, 8, e->event_id);
    bind_id(st, 9, e->fence_id);
    if (e->has_pos) {
        sqlite3_bind_double(st, 10, e->lat);
        sqlite3_bind_double(st, 11, e->lon);
    } else {
        sqlite3_bind_null(st, 10);
        sqlite3_bind_null(st, 11);
    }
    sqlite3_bind_text(st, 12, text, (int)detail->len, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc != SQLITE_DONE)
        goto fail;
    int64_t alert_id = sqlite3_last_insert_rowid(a->db);
    if (r->webhook_id) {
        st = a->ins_delivery;
        sqlite3_bind_int64(st, 1, alert_id);
        sqlite3_bind_int64(st, 2, now_ms);
        sqlite3_bind_int64(st, 3, r->webhook_id);
        sqlite3_bind_int64(st, 4, r->org_id);
        rc = sqlite3_step(st);
        sqlite3_reset(st);
        if (rc != SQLITE_DONE)
            goto fail;
    }
    if (r->stream && live)
        stream_render(r, e, alert_id, text, live);
    return 0;
fail:
    st_log(ST_LOG_ERROR,
           "event=alert_store_failed rule=%" PRId64 " device=%" PRId64 " reason=\"%s\"", r->id,
           e->device_id, sqlite3_errmsg(a->db));
    return ST_EIO;
}

/* ---- the interface -------------------------------------------------------- */

int alerts_open(sqlite3 *db, struct alerts **out)
{
    struct alerts *a = st_calloc(1, sizeof *a);
    strmap_init(&a->over);
    atomic_init(&a->changed, false);
    if (stmts(a, db) || rules_load(a, db)) {
        alerts_free(a);
        return ST_EIO;
    }
    *out = a;
    return 0;
}

void alerts_free(struct alerts *a)
{
    if (!a)
        return;
    stmts_free(a);
    rules_free(a->rules, a->n_rules);
    strmap_deinit(&a->over);
    st_free(a);
}

void alerts_rules_changed(struct alerts *a)
{
    atomic_store(&a->changed, true);
}

int alerts_on_event(struct alerts *a, sqlite3 *db, const struct domain_event *e, struct buf *live)
{
    rules_refresh(a, db);
    uint32_t bit = type_bit(e->type);
    size_t i, end;
    org_rules(a, e->org_id, &i, &end);
    if (!bit || i == end)
        return 0;
    struct buf detail = {0};
    int n = 0;
    for (; i < end; i++) {
        const struct rule *r = &a->rules[i];
        if (!(r->types & bit) || !scope_matches(r, e))
            continue;
        if (stmts(a, db) || fire(a, r, e, &detail, live)) {
            n = ST_EIO;
            break;
        }
        n++;
    }
    buf_free(&detail);
    return n;
}

/* One threshold of one rule for a device's new value: fires when the value crosses into
 * the alerting side and the pair was not there already. 1 fired, 0 not, ST_EIO. */
static int threshold(struct alerts *a, const struct rule *r, const struct domain_event *e,
                     char kind, bool over, const char *type, struct buf *detail, struct buf *live)
{
    char key[64];
    snprintf(key, sizeof key, "%c:%" PRId64 ":%" PRId64, kind, r->id, e->device_id);
    if (!over) {
        strmap_del(&a->over, key);
        return 0;
    }
    if (strmap_get(&a->over, key))
        return 0;
    /* the limit goes with the alert: the rule may change later */
    char limit[64], num[32];
    if (kind == 'o') {
        jsonw_format_num(r->speed_kmh, 1, num, sizeof num);
        snprintf(limit, sizeof limit, "{\"limit_kmh\":%s}", num);
    } else
        snprintf(limit, sizeof limit, "{\"limit_pct\":%d}", r->battery_pct);
    struct domain_event x = *e;
    x.type = type;
    x.detail = limit;
    x.event_id = 0;
    if (fire(a, r, &x, detail, live))
        return ST_EIO;
    strmap_put(&a->over, key, 1);
    return 1;
}

int alerts_on_position(struct alerts *a, sqlite3 *db, const struct domain_event *e,
                       struct buf *live)
{
    rules_refresh(a, db);
    static const char overspeed[] = "overspeed", low_battery[] = "low_battery";
    const uint32_t speed_bit = type_bit(overspeed), battery_bit = type_bit(low_battery);
    size_t i, end;
    org_rules(a, e->org_id, &i, &end);
    struct buf detail = {0};
    int n = 0;
    for (; i < end; i++) {
        const struct rule *r = &a->rules[i];
        bool speed = (r->types & speed_bit) && r->speed_kmh >= 0 && e->speed_kmh >= 0;
        bool battery = (r->types & battery_bit) && r->battery_pct >= 0 && e->battery_pct >= 0;
        if ((!speed && !battery) || !scope_matches(r, e))
            continue;
        int rs = 0, rb = 0;
        if (stmts(a, db) ||
            (speed && (rs = threshold(a, r, e, 'o', e->speed_kmh > r->speed_kmh, overspeed, &detail,
                                      live)) < 0) ||
            (battery && (rb = threshold(a, r, e, 'b', e->battery_pct <= r->battery_pct, low_battery,
                                        &detail, live)) < 0)) {
            n = ST_EIO;
            break;
        }
        n += rs + rb;
    }
    buf_free(&detail);
    return n;
}

/* One page of a rule's devices from its cursor: an alert for each newly silent one. Spends
 * *budget; returns the alerts stored or ST_EIO. */
static int offline_rule(struct alerts *a, struct rule *r, int64_t now_ms, int *budget,
                        struct buf *detail, struct buf *text, domain_live_fn *live,
                        void *live_arg)
{
    sqlite3_stmt *st = a->sel_offline;
    sqlite3_bind_int64(st, 1, r->org_id);
    sqlite3_bind_int64(st, 2, r->offline_cursor);
    bind_id(st, 3, r->device_id);
    if (r->group)
        sqlite3_bind_text(st, 4, r->group, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 4);
    sqlite3_bind_int64(st, 5, now_ms - (int64_t)r->offline_minutes * 60000);
    sqlite3_bind_int64(st, 6, r->id);
    bind_id(st, 7, r->shipment_id);
    sqlite3_bind_int(st, 8, *budget);
    char extra[48];
    snprintf(extra, sizeof extra, "{\"offline_minutes\":%d}", r->offline_minutes);
    int n = 0, rows = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        rows++;
        r->offline_cursor = sqlite3_column_int64(st, 0);
        if (!sqlite3_column_int(st, 7))
            continue;
        struct domain_event e = {
            .type = "device_offline",
            .org_id = r->org_id,
            .device_id = r->offline_cursor,
            .device_uid = (const char *)sqlite3_column_text(st, 1),
            .group_name = (const char *)sqlite3_column_text(st, 2),
            .shipment_id = sqlite3_column_int64(st, 6),
            .time = sqlite3_column_int64(st, 3) / 1000,
            .has_pos = sqlite3_column_type(st, 4) != SQLITE_NULL &&
                       sqlite3_column_type(st, 5) != SQLITE_NULL,
            .lat = sqlite3_column_double(st, 4),
            .lon = sqlite3_column_double(st, 5),
            .speed_kmh = -1,
            .battery_pct = -1,
            .detail = extra,
        };
        text->len = 0;
        if (fire(a, r, &e, detail, live ? text : NULL)) {
            n = ST_EIO;
            break;
        }
        if (live && text->len)
            live(live_arg, e.org_id, e.device_id, (const char *)text->data, text->len);
        n++;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        st_log(ST_LOG_ERROR, "event=alert_offline_failed rule=%" PRId64 " reason=\"%s\"", r->id,
               sqlite3_errmsg(a->db));
        n = ST_EIO;
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    *budget -= rows;
    if (n >= 0 && *budget > 0)
        r->offline_cursor = 0; /* the page was the last: start over next time */
    return n;
}

int alerts_offline_pass(struct alerts *a, sqlite3 *db, int64_t now_ms, domain_live_fn *live,
                        void *live_arg)
{
    rules_refresh(a, db);
    const uint32_t bit = type_bit("device_offline");
    if (a->n_rules == 0)
        return 0;
    if (stmts(a, db))
        return ST_EIO;
    struct buf detail = {0}, text = {0};
    int budget = OFFLINE_PASS_MAX, n = 0;
    size_t k = a->offline_next % a->n_rules;
    for (size_t seen = 0; seen < a->n_rules && budget > 0; seen++) {
        struct rule *r = &a->rules[k];
        if ((r->types & bit) && r->offline_minutes > 0) {
            int rc = offline_rule(a, r, now_ms, &budget, &detail, &text, live, live_arg);
            if (rc < 0) {
                n = rc;
                break;
            }
            n += rc;
            if (budget <= 0)
                break; /* this rule continues from its cursor next time */
        }
        k = (k + 1) % a->n_rules;
    }
    a->offline_next = k;
    buf_free(&detail);
    buf_free(&text);
    return n;
}
