/* alerts_test.c — alert rules and webhook delivery against a real SQLite file and real
 * loopback HTTP receivers (plain sockets in threads): matching by type and by each scope,
 * the stream's JSON, thresholds once per excursion, offline alerts once per silence, and
 * the delivery thread — signatures recomputed here, retries with back-off, and a dead and
 * a hanging receiver that do not delay a healthy one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cmocka.h>
#include <jansson.h>
#include <sodium.h>
#include <sqlite3.h>

#include "../../../src/api/api_internal.h"
#include "../../../src/api/auth.h"
#include "../../../src/core/buf.h"
#include "../../../src/core/config.h"
#include "../../../src/core/log.h"
#include "../../../src/core/timeutil.h"
#include "../../../src/domain/alerts.h"
#include "../../../src/domain/webhook.h"
#include "../../../src/store/store.h"
#include "../testdb.h"

#define T0 1767225600 /* 2026-01-01T00:00:00Z */

static struct testdb tdb;

/* Organisation 1: devices 1 (group g1), 2 (group g2, open shipment 7) and 4 (no group);
 * organisation 2: device 3 (group g1, the same name as organisation 1's). */
static int setup(void **state)
{
    (void)state;
    st_log_set_level(ST_LOG_ERROR);
    if (testdb_open(&tdb, "alerts"))
        return -1;
    testdb_exec(tdb.db,
                "INSERT INTO orgs(id, name, created_at) VALUES(2, 'other', 0);"
                "INSERT INTO devices(id, uid, org_id, group_name, created_at) VALUES"
                " (1, 'dev-1', 1, 'g1', 0), (2, 'dev-2', 1, 'g2', 0), (3, 'dev-3', 2, 'g1', 0),"
                " (4, 'dev-4', 1, NULL, 0);"
                "INSERT INTO shipments(id, org_id, reference, device_id, status, created_at)"
                " VALUES(7, 1, 'S-7', 2, 'open', 0);");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    testdb_unlink(&tdb, "s.db"); /* the routes' store (route_setup) */
    testdb_close(&tdb);
    return 0;
}

static struct domain_event ev(const char *type, int64_t org, int64_t device, const char *uid,
                              const char *group, int64_t shipment)
{
    return (struct domain_event){.type = type,
                                 .org_id = org,
                                 .device_id = device,
                                 .device_uid = uid,
                                 .group_name = group,
                                 .shipment_id = shipment,
                                 .time = T0,
                                 .speed_kmh = -1,
                                 .battery_pct = -1};
}

static struct domain_event dev1(const char *type)
{
    return ev(type, 1, 1, "dev-1", "g1", 0);
}

static struct domain_event dev2(const char *type)
{
    return ev(type, 1, 2, "dev-2", "g2", 7);
}

static void rule(int64_t id, int64_t org, const char *types, const char *extra_cols,
                 const char *extra_vals)
{
    testdb_exec(tdb.db,
                "INSERT INTO alert_rules(id, org_id, name, types, created_at%s)"
                " VALUES(%lld, %lld, 'rule %lld', '%s', 0%s)",
                extra_cols, (long long)id, (long long)org, (long long)id, types, extra_vals);
}

static int64_t alerts_of(int64_t rule_id)
{
    return testdb_scalar(tdb.db, "SELECT count(*) FROM alerts WHERE rule_id = %lld",
                         (long long)rule_id);
}

/* ---- matching ------------------------------------------------------------------ */

static void test_match_types_and_scopes(void **state)
{
    (void)state;
    rule(1, 1, "[\"tamper\"]", "", "");                          /* the whole org */
    rule(2, 1, "[\"tamper\",\"unlock\"]", ", device_id", ", 1"); /* device 1 */
    rule(3, 1, "[\"unlock\"]", ", group_name", ", 'g2'");        /* group g2 */
    rule(4, 1, "[\"tamper\"]", ", shipment_id", ", 7");          /* shipment 7 */
    rule(5, 2, "[\"tamper\"]", ", group_name", ", 'g1'");        /* org 2's g1 */
    rule(6, 1, "[\"tamper\"]", ", enabled", ", 0");              /* disabled */
    rule(7, 1, "[\"geofence_enter\"]", ", group_name", ", 'g1'");
    struct alerts *a;
    assert_int_equal(alerts_open(tdb.db, &a), 0);

    struct domain_event e = dev1("tamper");
    assert_int_equal(alerts_on_event(a, tdb.db, &e, NULL), 2); /* rules 1, 2 */
    e = dev2("unlock");
    assert_int_equal(alerts_on_event(a, tdb.db, &e, NULL), 1); /* rule 3 */
    e = dev2("tamper");
    assert_int_equal(alerts_on_event(a, tdb.db, &e, NULL), 2); /* rules 1, 4 */
    e = ev("tamper", 2, 3, "dev-3", "g1", 0);
    assert_int_equal(alerts_on_event(a, tdb.db, &e, NULL), 1); /* rule 5 only: not org 1's */
    e = ev("tamper", 1, 4, "dev-4", NULL, 0);
    assert_int_equal(alerts_on_event(a, tdb.db, &e, NULL), 1); /* rule 1 */
    e = dev1("geofence_enter");
    e.fence_id = 12;
    e.has_pos = true;
    e.lat = 52.5;
    e.lon = 13.4;
    assert_int_equal(alerts_on_event(a, tdb.db, &e, NULL), 1); /* rule 7 */
    e = dev1("position");
    assert_int_equal(alerts_on_event(a, tdb.db, &e, NULL), 0);
    e = dev1("no_such_type");
    assert_int_equal(alerts_on_event(a, tdb.db, &e, NULL), 0);
    e = ev("tamper", 9, 1, "dev-1", "g1", 0); /* an organisation without rules */
    assert_int_equal(alerts_on_event(a, tdb.db, &e, NULL), 0);

    int64_t want[] = {0, 3, 1, 1, 1, 1, 0, 1};
    for (int r = 1; r <= 7; r++)
        assert_int_equal(alerts_of(r), want[r]);
    /* the row carries the fact */
    assert_int_equal(testdb_scalar(tdb.db,
                                   "SELECT count(*) FROM alerts WHERE rule_id = 4 AND org_id = 1"
                                   " AND device_id = 2 AND shipment_id = 7 AND type = 'tamper'"
                                   " AND time = %d AND event_id IS NULL AND lat IS NULL",
                                   T0),
                     1);
    assert_int_equal(testdb_scalar(tdb.db,
                                   "SELECT count(*) FROM alerts WHERE rule_id = 7 AND fence_id = 12"
                                   " AND lat = 52.5 AND lon = 13.4"),
                     1);
    int64_t now = st_now_ms();
    assert_true(testdb_scalar(tdb.db, "SELECT min(created_at) FROM alerts") > now - 60000);

    /* edited rules are read again at the next call, not before */
    rule(8, 1, "[\"lock\"]", "", "");
    e = dev1("lock");
    assert_int_equal(alerts_on_event(a, tdb.db, &e, NULL), 0);
    alerts_rules_changed(a);
    assert_int_equal(alerts_on_event(a, tdb.db, &e, NULL), 1);
    testdb_exec(tdb.db, "UPDATE alert_rules SET enabled = 0 WHERE id = 8");
    alerts_rules_changed(a);
    assert_int_equal(alerts_on_event(a, tdb.db, &e, NULL), 0);
    alerts_free(a);
}

/* A rule's webhook gets a pending delivery per alert while it is enabled. */
static void test_deliveries_queued(void **state)
{
    (void)state;
    testdb_exec(tdb.db, "INSERT INTO webhooks(id, org_id, name, url, secret, created_at) VALUES"
                        " (1, 1, 'on', 'http://127.0.0.1:1/', 's', 0),"
                        " (2, 1, 'off', 'http://127.0.0.1:1/', 's', 0)");
    testdb_exec(tdb.db, "UPDATE webhooks SET enabled = 0 WHERE id = 2");
    rule(1, 1, "[\"tamper\"]", ", webhook_id", ", 1");
    rule(2, 1, "[\"tamper\"]", ", webhook_id", ", 2");
    rule(3, 1, "[\"tamper\"]", "", "");
    struct alerts *a;
    assert_int_equal(alerts_open(tdb.db, &a), 0);
    int64_t before = st_now_ms();
    struct domain_event e = dev1("tamper");
    testdb_exec(tdb.db, "BEGIN IMMEDIATE");
    assert_int_equal(alerts_on_event(a, tdb.db, &e, NULL), 3);
    testdb_exec(tdb.db, "COMMIT");
    assert_int_equal(testdb_scalar(tdb.db, "SELECT count(*) FROM webhook_deliveries"), 1);
    assert_int_equal(testdb_scalar(tdb.db,
                                   "SELECT count(*) FROM webhook_deliveries d JOIN alerts a"
                                   " ON a.id = d.alert_id WHERE a.rule_id = 1 AND d.webhook_id = 1"
                                   " AND d.state = 'pending' AND d.attempts = 0"
                                   " AND d.next_attempt_at >= %lld AND d.created_at >= %lld",
                                   (long long)before, (long long)before),
                     1);
    alerts_free(a);
}

/* ---- the stream ---------------------------------------------------------------- */

/* Stream text of alerts that belong to no frame, with the organisation and device given. */
struct live_seen {
    int n;
    int64_t org[8], device[8];
    struct buf text;
};

static void on_live(void *arg, int64_t org_id, int64_t device_id, const char *text, size_t len)
{
    struct live_seen *l = arg;
    if (l->n < 8) {
        l->org[l->n] = org_id;
        l->device[l->n] = device_id;
    }
    l->n++;
    buf_append(&l->text, text, len);
}

static json_t *event_json(const char *text, int index, const char *name)
{
    const char *p = text;
    for (int i = 0; i <= index; i++) {
        p = strstr(p, "event: ");
        assert_non_null(p);
        if (i < index)
            p += 7;
    }
    char want[64];
    snprintf(want, sizeof want, "event: %s\ndata: ", name);
    assert_memory_equal(p, want, strlen(want));
    p += strlen(want);
    const char *end = strstr(p, "\n\n");
    assert_non_null(end);
    json_error_t err;
    json_t *j = json_loadb(p, (size_t)(end - p), 0, &err);
    if (!j)
        fail_msg("stream event is not JSON: %s (%.*s)", err.text, (int)(end - p), p);
    return j;
}

static void test_stream_json(void **state)
{
    (void)state;
    rule(1, 1, "[\"unlock\"]", "", "");
    rule(2, 1, "[\"unlock\"]", ", stream", ", 0"); /* stored, not streamed */
    testdb_exec(tdb.db, "UPDATE alert_rules SET name = 'quote \" and \\ back' WHERE id = 1");
    struct alerts *a;
    assert_int_equal(alerts_open(tdb.db, &a), 0);
    struct domain_event e = dev2("unlock");
    e.event_id = 55;
    e.has_pos = true;
    e.lat = 52.520008;
    e.lon = 13.404954;
    e.source = "rfid";
    e.card = "00\"12";
    e.reason = "outside zone";
    e.late = true;
    e.battery_pct = 41;
    e.detail = "{\"zone\":\"depot\",\"source\":\"shadowed\",\"n\":[1,{\"x\":null}]}";
    struct buf live = {0};
    assert_int_equal(alerts_on_event(a, tdb.db, &e, &live), 2);
    buf_append(&live, "", 1);
    const char *text = (const char *)live.data;
    assert_null(strstr(strstr(text, "\n\n") + 2, "event: ")); /* one event */

    json_t *j = event_json(text, 0, "alert");
    assert_int_equal(json_integer_value(json_object_get(j, "id")),
                     testdb_scalar(tdb.db, "SELECT id FROM alerts WHERE rule_id = 1"));
    assert_string_equal(json_string_value(json_object_get(j, "type")), "unlock");
    assert_string_equal(json_string_value(json_object_get(j, "time")), "2026-01-01T00:00:00Z");
    assert_int_equal(json_integer_value(json_object_get(j, "device_id")), 2);
    assert_string_equal(json_string_value(json_object_get(j, "uid")), "dev-2");
    assert_int_equal(json_integer_value(json_object_get(j, "shipment_id")), 7);
    assert_true(json_is_null(json_object_get(j, "fence_id")));
    json_t *r = json_object_get(j, "rule");
    assert_int_equal(json_integer_value(json_object_get(r, "id")), 1);
    assert_string_equal(json_string_value(json_object_get(r, "name")), "quote \" and \\ back");
    assert_true(fabs(json_real_value(json_object_get(j, "lat")) - 52.520008) < 1e-9);
    json_t *d = json_object_get(j, "detail");
    assert_string_equal(json_string_value(json_object_get(d, "source")), "rfid");
    assert_string_equal(json_string_value(json_object_get(d, "card")), "00\"12");
    assert_string_equal(json_string_value(json_object_get(d, "reason")), "outside zone");
    assert_true(json_is_true(json_object_get(d, "late")));
    assert_int_equal(json_integer_value(json_object_get(d, "battery_pct")), 41);
    assert_null(json_object_get(d, "speed_kmh")); /* unknown */
    assert_string_equal(json_string_value(json_object_get(d, "zone")), "depot");
    assert_int_equal(json_array_size(json_object_get(d, "n")), 2);
    assert_int_equal(json_object_size(d), 7); /* the shadowed "source" once */
    json_decref(j);

    /* the stored detail is the same object */
    sqlite3_stmt *st;
    assert_int_equal(
        sqlite3_prepare_v2(tdb.db, "SELECT detail FROM alerts WHERE rule_id = 2", -1, &st, NULL),
        SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    json_error_t err;
    j = json_loads((const char *)sqlite3_column_text(st, 0), 0, &err);
    sqlite3_finalize(st);
    assert_non_null(j);
    assert_int_equal(json_object_size(j), 7);
    json_decref(j);

    /* a fact with no extras, and one whose detail is not an object: still valid JSON */
    live.len = 0;
    e = dev1("unlock");
    e.detail = "{not json";
    assert_int_equal(alerts_on_event(a, tdb.db, &e, &live), 2);
    buf_append(&live, "", 1);
    j = event_json((const char *)live.data, 0, "alert");
    assert_int_equal(json_object_size(json_object_get(j, "detail")), 0);
    assert_true(json_is_null(json_object_get(j, "shipment_id")));
    assert_true(json_is_null(json_object_get(j, "lat")));
    json_decref(j);
    buf_free(&live);
    alerts_free(a);
}

/* ---- thresholds ----------------------------------------------------------------- */

static void test_thresholds_once_per_excursion(void **state)
{
    (void)state;
    rule(1, 1, "[\"overspeed\"]", ", speed_kmh", ", 80");
    rule(2, 1, "[\"low_battery\"]", ", battery_pct, device_id", ", 20, 1");
    rule(3, 1, "[\"overspeed\"]", "", ""); /* no limit: never fires on positions */
    struct alerts *a;
    assert_int_equal(alerts_open(tdb.db, &a), 0);
    struct buf live = {0};
    const double speeds[] = {50, 90, 100, -1, 80, 95, 120, 70, 81};
    const int fired[] = {0, 1, 0, 0, 0, 1, 0, 0, 1};
    for (size_t i = 0; i < sizeof speeds / sizeof speeds[0]; i++) {
        struct domain_event e = dev1("position");
        e.speed_kmh = speeds[i];
        assert_int_equal(alerts_on_position(a, tdb.db, &e, &live), fired[i]);
    }
    assert_int_equal(alerts_of(1), 3);
    assert_int_equal(testdb_scalar(tdb.db, "SELECT count(*) FROM alerts WHERE type = 'overspeed'"),
                     3);
    /* each device has its own excursion */
    struct domain_event e = dev2("position");
    e.speed_kmh = 130;
    assert_int_equal(alerts_on_position(a, tdb.db, &e, NULL), 1);
    assert_int_equal(alerts_of(1), 4);

    const int batteries[] = {50, 20, 15, -1, 21, 10, 5};
    const int low[] = {0, 1, 0, 0, 0, 1, 0};
    for (size_t i = 0; i < sizeof batteries / sizeof batteries[0]; i++) {
        e = dev1("position");
        e.battery_pct = batteries[i];
        assert_int_equal(alerts_on_position(a, tdb.db, &e, NULL), low[i]);
    }
    e = dev2("position"); /* rule 2 is scoped to device 1 */
    e.battery_pct = 3;
    assert_int_equal(alerts_on_position(a, tdb.db, &e, NULL), 0);
    assert_int_equal(alerts_of(2), 2);
    assert_int_equal(alerts_of(3), 0);
    assert_int_equal(testdb_scalar(tdb.db,
                                   "SELECT count(*) FROM alerts WHERE rule_id = 2 AND type ="
                                   " 'low_battery' AND json_extract(detail, '$.battery_pct') = 20"
                                   " AND json_extract(detail, '$.limit_pct') = 20"),
                     1);
    /* the streamed alerts name their type and limit */
    buf_append(&live, "", 1);
    json_t *j = event_json((const char *)live.data, 2, "alert");
    assert_string_equal(json_string_value(json_object_get(j, "type")), "overspeed");
    json_t *d = json_object_get(j, "detail");
    assert_true(json_real_value(json_object_get(d, "speed_kmh")) == 81.0 ||
                json_integer_value(json_object_get(d, "speed_kmh")) == 81);
    assert_int_equal(json_integer_value(json_object_get(d, "limit_kmh")), 80);
    json_decref(j);
    buf_free(&live);
    alerts_free(a);
}

/* ---- offline --------------------------------------------------------------------- */

static void test_offline_once_per_silence(void **state)
{
    (void)state;
    int64_t now = st_now_ms(), min = 60000;
    rule(1, 1, "[\"device_offline\"]", ", offline_minutes", ", 5");
    rule(2, 1, "[\"device_offline\"]", ", offline_minutes, group_name", ", 30, 'g2'");
    rule(3, 1, "[\"device_offline\"]", ", offline_minutes, shipment_id", ", 5, 7");
    rule(4, 2, "[\"device_offline\"]", ", offline_minutes", ", 5");
    /* device 1 silent 10 minutes, device 2 seen now, device 4 never seen, device 3 (org 2)
     * silent 6 minutes */
    testdb_exec(tdb.db,
                "INSERT INTO device_state(device_id, last_seen, lat, lon) VALUES"
                " (1, %lld, 52.5, 13.4), (2, %lld, NULL, NULL), (3, %lld, NULL, NULL)",
                (long long)(now - 10 * min), (long long)now, (long long)(now - 6 * min));
    struct alerts *a;
    assert_int_equal(alerts_open(tdb.db, &a), 0);
    struct live_seen live = {0};
    assert_int_equal(alerts_offline_pass(a, tdb.db, now, on_live, &live),
                     2); /* rule 1: dev 1; rule 4: dev 3 */
    assert_int_equal(live.n, 2); /* each with its organisation and device */
    assert_true((live.org[0] == 1 && live.device[0] == 1 && live.org[1] == 2 && live.device[1] == 3) ||
                (live.org[0] == 2 && live.device[0] == 3 && live.org[1] == 1 && live.device[1] == 1));
    assert_int_equal(alerts_of(1), 1);
    assert_int_equal(alerts_of(4), 1);
    assert_int_equal(testdb_scalar(tdb.db,
                                   "SELECT count(*) FROM alerts WHERE rule_id = 1 AND device_id = 1"
                                   " AND type = 'device_offline' AND time = %lld AND lat = 52.5"
                                   " AND json_extract(detail, '$.offline_minutes') = 5",
                                   (long long)((now - 10 * min) / 1000)),
                     1);
    buf_append(&live.text, "", 1);
    json_t *j = event_json((const char *)live.text.data, 0, "alert");
    assert_string_equal(json_string_value(json_object_get(j, "type")), "device_offline");
    json_decref(j);
    /* the same silence never fires again */
    assert_int_equal(alerts_offline_pass(a, tdb.db, now + 1000, NULL, NULL), 0);
    /* an hour on, device 2 is silent too: rules 1, 2 (group g2, 30 minutes), 3 (shipment 7) */
    assert_int_equal(alerts_offline_pass(a, tdb.db, now + 60 * min, NULL, NULL), 3);
    assert_int_equal(alerts_of(1), 2);
    assert_int_equal(alerts_of(2), 1);
    assert_int_equal(alerts_of(3), 1);
    assert_int_equal(alerts_offline_pass(a, tdb.db, now + 61 * min, NULL, NULL), 0);
    /* device 1 speaks and falls silent again: a new silence, a new alert */
    testdb_exec(tdb.db, "UPDATE device_state SET last_seen = %lld WHERE device_id = 1",
                (long long)(now + 2 * min));
    assert_int_equal(alerts_offline_pass(a, tdb.db, now + 4 * min, NULL, NULL), 0);
    assert_int_equal(alerts_offline_pass(a, tdb.db, now + 8 * min, NULL, NULL), 1);
    assert_int_equal(alerts_of(1), 3);
    /* a closed shipment's device is no longer the rule's */
    testdb_exec(tdb.db, "UPDATE shipments SET status = 'closed' WHERE id = 7");
    testdb_exec(tdb.db, "UPDATE device_state SET last_seen = %lld WHERE device_id = 2",
                (long long)(now + 62 * min));
    assert_int_equal(alerts_offline_pass(a, tdb.db, now + 100 * min, NULL, NULL), 1 + 1); /* rules 1, 2 */
    assert_int_equal(alerts_of(3), 1);
    buf_free(&live.text);
    alerts_free(a);
}

/* The work of a pass is bounded: 2,500 silent devices take three passes, each alerted once. */
static void test_offline_bounded(void **state)
{
    (void)state;
    int64_t now = st_now_ms();
    testdb_exec(
        tdb.db,
        "WITH RECURSIVE n(k) AS (SELECT 100 UNION ALL SELECT k + 1 FROM n WHERE k < 2599)"
        " INSERT INTO devices(id, uid, org_id, created_at) SELECT k, 'bulk-' || k, 1, 0 FROM n");
    testdb_exec(tdb.db,
                "INSERT INTO device_state(device_id, last_seen) SELECT id, %lld FROM devices"
                " WHERE id >= 100",
                (long long)(now - 3600000));
    rule(1, 1, "[\"device_offline\"]", ", offline_minutes", ", 5");
    struct alerts *a;
    assert_int_equal(alerts_open(tdb.db, &a), 0);
    int total = 0, passes = 0;
    for (;;) { /* each pass in its transaction, as the writer runs it */
        testdb_exec(tdb.db, "BEGIN IMMEDIATE");
        int n = alerts_offline_pass(a, tdb.db, now, NULL, NULL);
        testdb_exec(tdb.db, "COMMIT");
        if (n <= 0)
            break;
        assert_true(n <= 1000);
        total += n;
        passes++;
    }
    assert_int_equal(total, 2500);
    assert_int_equal(passes, 3);
    assert_int_equal(alerts_offline_pass(a, tdb.db, now, NULL, NULL), 0);
    assert_int_equal(alerts_of(1), 2500);
    alerts_free(a);
}

/* ---- loopback receivers -------------------------------------------------------------- */

enum rx_mode { RX_OK, RX_FAIL_TWICE, RX_HANG };

struct receiver {
    int fd, port;
    enum rx_mode mode;
    const char *secret;
    pthread_t thread;
    atomic_bool stop;
    pthread_mutex_t lock;
    int requests, good_signatures;
    int64_t at_us[16];
    char body[4096];
    char delivery[32];
    int hung[64], n_hung;
};

static int listen_any(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(fd, 64), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    *port = ntohs(sa.sin_port);
    return fd;
}

/* The value of header name in the request head, into out. */
static bool header(const char *head, const char *name, char *out, size_t cap)
{
    char key[64];
    snprintf(key, sizeof key, "\r\n%s:", name);
    const char *p = strcasestr(head, key);
    if (!p)
        return false;
    p += strlen(key);
    p += strspn(p, " ");
    size_t n = strcspn(p, "\r\n");
    snprintf(out, cap, "%.*s", (int)(n < cap ? n : cap - 1), p);
    return true;
}

/* Read one request (head and Content-Length body); 0 or -1. */
static int read_request(int fd, char *buf, size_t cap, char **body, size_t *body_len)
{
    size_t len = 0;
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 3000) != 1)
            return -1;
        ssize_t n = recv(fd, buf + len, cap - 1 - len, 0);
        if (n <= 0)
            return -1;
        len += (size_t)n;
        buf[len] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        char cl[32];
        if (end && header(buf, "Content-Length", cl, sizeof cl)) {
            size_t want = (size_t)strtoul(cl, NULL, 10);
            size_t have = len - (size_t)(end + 4 - buf);
            if (have >= want) {
                *end = '\0';
                *body = end + 4;
                *body_len = want;
                return 0;
            }
        }
        if (len + 1 >= cap)
            return -1;
    }
}

static bool signature_ok(const struct receiver *rx, const char *head, const char *body,
                         size_t body_len)
{
    char sig[128], ts[32];
    if (!header(head, "X-Sealtrack-Signature", sig, sizeof sig) ||
        !header(head, "X-Sealtrack-Timestamp", ts, sizeof ts) ||
        !strstr(head, "\r\nContent-Type: application/json"))
        return false;
    long long t = strtoll(ts, NULL, 10);
    if (llabs(t - (long long)time(NULL)) > 60)
        return false;
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state h;
    crypto_auth_hmacsha256_init(&h, (const unsigned char *)rx->secret, strlen(rx->secret));
    crypto_auth_hmacsha256_update(&h, (const unsigned char *)ts, strlen(ts));
    crypto_auth_hmacsha256_update(&h, (const unsigned char *)".", 1);
    crypto_auth_hmacsha256_update(&h, (const unsigned char *)body, body_len);
    crypto_auth_hmacsha256_final(&h, mac);
    char want[8 + 2 * sizeof mac + 1] = "sha256=";
    sodium_bin2hex(want + 7, sizeof want - 7, mac, sizeof mac);
    return strcmp(sig, want) == 0;
}

static void *rx_run(void *arg)
{
    struct receiver *rx = arg;
    while (!atomic_load(&rx->stop)) {
        struct pollfd p = {.fd = rx->fd, .events = POLLIN};
        if (poll(&p, 1, 20) != 1)
            continue;
        int c = accept(rx->fd, NULL, NULL);
        if (c < 0)
            continue;
        if (rx->mode == RX_HANG) { /* accept, read nothing, answer nothing */
            pthread_mutex_lock(&rx->lock);
            rx->requests++;
            if (rx->n_hung < 64)
                rx->hung[rx->n_hung++] = c;
            else
                close(c);
            pthread_mutex_unlock(&rx->lock);
            continue;
        }
        char buf[8192], *body = NULL;
        size_t body_len = 0;
        if (read_request(c, buf, sizeof buf, &body, &body_len) == 0) {
            pthread_mutex_lock(&rx->lock);
            int n = rx->requests++;
            if (n < 16)
                rx->at_us[n] = st_monotonic_us();
            rx->good_signatures += signature_ok(rx, buf, body, body_len);
            snprintf(rx->body, sizeof rx->body, "%.*s", (int)body_len, body);
            header(buf, "X-Sealtrack-Delivery", rx->delivery, sizeof rx->delivery);
            pthread_mutex_unlock(&rx->lock);
            bool fail = rx->mode == RX_FAIL_TWICE && n < 2;
            const char *answer = fail ? "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4"
                                        "\r\nConnection: close\r\n\r\noops"
                                      : "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n"
                                        "Connection: close\r\n\r\n";
            ssize_t sent = send(c, answer, strlen(answer), MSG_NOSIGNAL);
            (void)sent;
        }
        close(c);
    }
    return NULL;
}

static void rx_start(struct receiver *rx, enum rx_mode mode, const char *secret)
{
    memset(rx, 0, sizeof *rx);
    rx->mode = mode;
    rx->secret = secret;
    pthread_mutex_init(&rx->lock, NULL);
    atomic_init(&rx->stop, false);
    rx->fd = listen_any(&rx->port);
    assert_int_equal(pthread_create(&rx->thread, NULL, rx_run, rx), 0);
}

static void rx_stop(struct receiver *rx)
{
    atomic_store(&rx->stop, true);
    pthread_join(rx->thread, NULL);
    for (int i = 0; i < rx->n_hung; i++)
        close(rx->hung[i]);
    close(rx->fd);
    pthread_mutex_destroy(&rx->lock);
}

static int rx_requests(struct receiver *rx)
{
    pthread_mutex_lock(&rx->lock);
    int n = rx->requests;
    pthread_mutex_unlock(&rx->lock);
    return n;
}

/* A port nothing listens on: bound, then closed. */
static int dead_port(void)
{
    int port;
    close(listen_any(&port));
    return port;
}

static void webhook_row(int64_t id, int port, const char *secret)
{
    testdb_exec(tdb.db,
                "INSERT INTO webhooks(id, org_id, name, url, secret, created_at)"
                " VALUES(%lld, 1, 'hook %lld', 'http://127.0.0.1:%d/hook?x=1', '%s', 0)",
                (long long)id, (long long)id, port, secret);
}

/* One alert of rule `id` (which posts to webhook `id`) for device 1. */
static void alert_for_webhook(struct alerts **a, int64_t id)
{
    char col[32];
    snprintf(col, sizeof col, ", %lld, 1", (long long)id);
    rule(id, 1, "[\"tamper\"]", ", webhook_id, device_id", col);
    if (*a)
        alerts_rules_changed(*a);
    else
        assert_int_equal(alerts_open(tdb.db, a), 0);
}

static void fire_tamper(struct alerts *a, int want)
{
    struct domain_event e = dev1("tamper");
    e.has_pos = true;
    e.lat = 52.5;
    e.lon = 13.4;
    e.source = "sensor";
    testdb_exec(tdb.db, "BEGIN IMMEDIATE");
    assert_int_equal(alerts_on_event(a, tdb.db, &e, NULL), want);
    testdb_exec(tdb.db, "COMMIT");
}

static const char *state_of(int64_t webhook_id, char *out, size_t cap)
{
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(tdb.db,
                                        "SELECT state FROM webhook_deliveries"
                                        " WHERE webhook_id = ?1",
                                        -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_int64(st, 1, webhook_id);
    snprintf(out, cap, "%s",
             sqlite3_step(st) == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : "none");
    sqlite3_finalize(st);
    return out;
}

/* Wait until webhook_id's delivery is in state (up to ms); the time it took in ms, or -1. */
static int64_t wait_state(int64_t webhook_id, const char *state, int64_t ms)
{
    int64_t t0 = st_monotonic_us();
    char now[16];
    while (strcmp(state_of(webhook_id, now, sizeof now), state) != 0) {
        if (st_monotonic_us() - t0 > ms * 1000)
            return -1;
        usleep(5000);
    }
    return (st_monotonic_us() - t0) / 1000;
}

static void test_webhook_signed_delivery(void **state)
{
    (void)state;
    struct receiver rx;
    rx_start(&rx, RX_OK, "correct horse battery staple");
    webhook_row(1, rx.port, "correct horse battery staple");
    struct alerts *a = NULL;
    alert_for_webhook(&a, 1);
    fire_tamper(a, 1);
    struct webhook_opts o = {.db_path = tdb.path, .backoff_ms = 50, .timeout_ms = 2000};
    struct webhook_sender *w;
    assert_int_equal(webhook_start(&o, &w), 0);
    webhook_wake(w);
    assert_true(wait_state(1, "delivered", 3000) >= 0);
    webhook_stop(w);
    assert_int_equal(rx_requests(&rx), 1);
    assert_int_equal(rx.good_signatures, 1);
    int64_t id = testdb_scalar(tdb.db, "SELECT id FROM webhook_deliveries");
    assert_int_equal(strtoll(rx.delivery, NULL, 10), id);
    assert_int_equal(testdb_scalar(tdb.db, "SELECT attempts FROM webhook_deliveries"), 1);
    assert_int_equal(testdb_scalar(tdb.db, "SELECT last_status FROM webhook_deliveries"), 200);
    assert_true(testdb_scalar(tdb.db, "SELECT delivered_at FROM webhook_deliveries") >=
                st_now_ms() - 10000);

    json_error_t err;
    json_t *j = json_loads(rx.body, 0, &err);
    assert_non_null(j);
    assert_int_equal(json_integer_value(json_object_get(j, "delivery_id")), id);
    json_t *al = json_object_get(j, "alert");
    assert_int_equal(json_integer_value(json_object_get(al, "id")),
                     testdb_scalar(tdb.db, "SELECT id FROM alerts"));
    assert_string_equal(json_string_value(json_object_get(al, "type")), "tamper");
    assert_string_equal(json_string_value(json_object_get(al, "time")), "2026-01-01T00:00:00Z");
    json_t *dev = json_object_get(al, "device");
    assert_int_equal(json_integer_value(json_object_get(dev, "id")), 1);
    assert_string_equal(json_string_value(json_object_get(dev, "uid")), "dev-1");
    assert_true(json_is_null(json_object_get(al, "shipment_id")));
    assert_true(json_is_null(json_object_get(al, "fence_id")));
    assert_true(json_real_value(json_object_get(al, "lat")) == 52.5);
    assert_string_equal(json_string_value(json_object_get(json_object_get(al, "detail"), "source")),
                        "sensor");
    json_t *r = json_object_get(j, "rule");
    assert_int_equal(json_integer_value(json_object_get(r, "id")), 1);
    assert_string_equal(json_string_value(json_object_get(r, "name")), "rule 1");
    json_decref(j);

    /* webhook_sign is the same function of secret, timestamp and body */
    char sig[80];
    webhook_sign("key", 1700000000, "{}", 2, sig, sizeof sig);
    assert_int_equal(strlen(sig), 71);
    assert_memory_equal(sig, "sha256=", 7);
    char again[80];
    webhook_sign("key", 1700000001, "{}", 2, again, sizeof again);
    assert_string_not_equal(sig, again);
    alerts_free(a);
    rx_stop(&rx);
}

static void test_webhook_retries_with_backoff(void **state)
{
    (void)state;
    struct receiver rx;
    rx_start(&rx, RX_FAIL_TWICE, "s");
    webhook_row(1, rx.port, "s");
    struct alerts *a = NULL;
    alert_for_webhook(&a, 1);
    fire_tamper(a, 1);
    struct webhook_opts o = {
        .db_path = tdb.path, .backoff_ms = 50, .timeout_ms = 2000, .max_attempts = 5};
    struct webhook_sender *w;
    assert_int_equal(webhook_start(&o, &w), 0);
    assert_true(wait_state(1, "delivered", 3000) >= 0);
    webhook_stop(w);
    assert_int_equal(rx_requests(&rx), 3);
    assert_int_equal(rx.good_signatures, 3);
    assert_int_equal(testdb_scalar(tdb.db, "SELECT attempts FROM webhook_deliveries"), 3);
    assert_int_equal(testdb_scalar(tdb.db, "SELECT last_status FROM webhook_deliveries"), 200);
    /* 50 ms, then 100 ms between attempts at least */
    assert_true(rx.at_us[1] - rx.at_us[0] >= 50000);
    assert_true(rx.at_us[2] - rx.at_us[1] >= 100000);
    assert_true(rx.at_us[2] - rx.at_us[0] < 1000000);
    alerts_free(a);
    rx_stop(&rx);
}

/* A closed port and a receiver that never answers fail on their own; a healthy webhook
 * whose alert came in after theirs is delivered at once. */
static void test_webhook_dead_ones_do_not_delay(void **state)
{
    (void)state;
    struct receiver hang, ok;
    rx_start(&hang, RX_HANG, "h");
    rx_start(&ok, RX_OK, "k");
    webhook_row(1, dead_port(), "d");
    webhook_row(2, hang.port, "h");
    webhook_row(3, ok.port, "k");
    struct alerts *a = NULL;
    for (int64_t id = 1; id <= 3; id++)
        alert_for_webhook(&a, id);
    /* a backlog for the dead and the hanging webhook first, then one healthy alert */
    testdb_exec(tdb.db, "DELETE FROM alert_rules WHERE id = 3");
    alerts_rules_changed(a);
    for (int i = 0; i < 8; i++)
        fire_tamper(a, 2);
    rule(3, 1, "[\"tamper\"]", ", webhook_id, device_id", ", 3, 1");
    testdb_exec(tdb.db, "DELETE FROM alert_rules WHERE id IN (1, 2)");
    alerts_rules_changed(a);
    fire_tamper(a, 1);

    struct webhook_opts o = {.db_path = tdb.path,
                             .backoff_ms = 50,
                             .timeout_ms = 300,
                             .max_attempts = 2,
                             .concurrency = 8};
    struct webhook_sender *w;
    assert_int_equal(webhook_start(&o, &w), 0);
    /* under one hanging request's timeout: had the backlog taken every slot, the healthy
     * delivery would wait for a hanging one to time out */
    int64_t took = wait_state(3, "delivered", 1000);
    assert_true(took >= 0);
    assert_true(took < 250);
    assert_int_equal(testdb_scalar(tdb.db,
                                   "SELECT count(*) FROM webhook_deliveries WHERE webhook_id = 2"
                                   " AND state = 'pending'"),
                     8);
    /* then each of the others fails after max_attempts */
    int64_t t0 = st_monotonic_us();
    while (testdb_scalar(tdb.db, "SELECT count(*) FROM webhook_deliveries WHERE state = 'failed'") <
               16 &&
           st_monotonic_us() - t0 < 10000000)
        usleep(20000);
    webhook_stop(w);
    assert_int_equal(
        testdb_scalar(tdb.db, "SELECT count(*) FROM webhook_deliveries WHERE webhook_id IN (1, 2)"
                              " AND state = 'failed' AND attempts = 2 AND last_status IS NULL"
                              " AND last_error IS NOT NULL"),
        16);
    assert_int_equal(rx_requests(&hang), 16); /* every attempt reached it */
    assert_int_equal(rx_requests(&ok), 1);
    alerts_free(a);
    rx_stop(&hang);
    rx_stop(&ok);
}

/* A disabled webhook's deliveries wait, and go once it is enabled again. */
static void test_webhook_disabled_waits(void **state)
{
    (void)state;
    struct receiver rx;
    rx_start(&rx, RX_OK, "s");
    webhook_row(1, rx.port, "s");
    struct alerts *a = NULL;
    alert_for_webhook(&a, 1);
    fire_tamper(a, 1);
    testdb_exec(tdb.db, "UPDATE webhooks SET enabled = 0");
    struct webhook_opts o = {.db_path = tdb.path, .backoff_ms = 50, .timeout_ms = 300};
    struct webhook_sender *w;
    assert_int_equal(webhook_start(&o, &w), 0);
    usleep(300000);
    char s[16];
    assert_string_equal(state_of(1, s, sizeof s), "pending");
    assert_int_equal(testdb_scalar(tdb.db, "SELECT attempts FROM webhook_deliveries"), 0);
    assert_int_equal(rx_requests(&rx), 0);
    testdb_exec(tdb.db, "UPDATE webhooks SET enabled = 1");
    assert_true(wait_state(1, "delivered", 2000) >= 0);
    webhook_stop(w);
    assert_int_equal(rx_requests(&rx), 1);
    alerts_free(a);
    rx_stop(&rx);
}

/* ---- routes ------------------------------------------------------------------------ */

static struct st_config cfg;
static struct api *api;
static struct store *store;

struct answer {
    int status;
    json_t *json; /* the body, NULL when not JSON */
};

/* Run "METHOD /path?query" with body as a caller of organisation 1 (or 2) with role. */
static struct answer call(int64_t org, int role, const char *method, const char *target,
                          const char *body)
{
    char path[256];
    snprintf(path, sizeof path, "%s", target);
    char *query = strchr(path, '?');
    if (query)
        *query++ = '\0';
    struct http_request req = {.method = method,
                               .path = path,
                               .query = query ? query : "",
                               .body = body ? body : "",
                               .body_len = body ? strlen(body) : 0,
                               .peer = "127.0.0.1",
                               .n_headers = 1};
    req.headers[0] = (struct http_header){"content-type", "application/json"};
    struct api_call c = {
        .req = &req, .db = tdb.db, .who = {.user_id = 1, .org_id = org, .role = role}};
    api_call_run_for_test(api, &c);
    assert_true(sqlite3_get_autocommit(tdb.db));
    assert_null(sqlite3_next_stmt(tdb.db, NULL));
    struct answer a = {.status = c.status};
    json_error_t err;
    if (c.body.len)
        a.json = json_loadb((const char *)c.body.data, c.body.len, 0, &err);
    if (c.status >= 400 && !json_is_string(json_object_get(a.json, "error")))
        fail_msg("%s %s: %d without an error object", method, target, c.status);
    json_decref(c.in);
    buf_free(&c.body);
    return a;
}

/* Expect status (and, for an error, the field it names); returns the body (caller frees). */
static json_t *expect(struct answer a, int status, const char *field)
{
    if (a.status != status) {
        char *text = a.json ? json_dumps(a.json, 0) : NULL;
        fail_msg("status %d, wanted %d: %s", a.status, status, text ? text : "");
    }
    if (field)
        assert_string_equal(json_string_value(json_object_get(a.json, "field")), field);
    return a.json;
}

static void expect_error(struct answer a, int status, const char *field)
{
    json_decref(expect(a, status, field));
}

static int route_setup(void **state)
{
    if (setup(state) || auth_init())
        return -1;
    st_config_defaults(&cfg);
    snprintf(cfg.db, sizeof cfg.db, "%s", tdb.path);
    char store_path[128];
    snprintf(store_path, sizeof store_path, "%s/s.db", tdb.dir);
    struct store_opts so = {
        .path = store_path, .batch_max = 16, .queue_max = 16, .retention_interval_s = 86400};
    if (store_open(&so, &store))
        return -1;
    api = api_new_for_test(&cfg, store);
    return 0;
}

static int route_teardown(void **state)
{
    api_free(api);
    store_close(store);
    return teardown(state);
}

static void test_routes_webhooks(void **state)
{
    (void)state;
    json_t *j = expect(call(1, ROLE_OPERATOR, "POST", "/api/webhooks",
                            "{\"name\":\"ops\",\"url\":\"https://example.com/hook?k=1\"}"),
                       201, NULL);
    int64_t id = json_integer_value(json_object_get(j, "id"));
    const char *secret = json_string_value(json_object_get(j, "secret"));
    assert_non_null(secret);
    assert_int_equal(strlen(secret), 43);
    assert_int_equal(strspn(secret, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                    "0123456789-_"),
                     43);
    assert_true(json_is_true(json_object_get(j, "enabled")));
    assert_int_equal(
        testdb_scalar(tdb.db, "SELECT count(*) FROM webhooks WHERE id = %lld AND secret = '%s'",
                      (long long)id, secret),
        1);
    json_decref(j);
    /* the secret is never shown again */
    char path[64];
    snprintf(path, sizeof path, "/api/webhooks/%lld", (long long)id);
    j = expect(call(1, ROLE_OPERATOR, "GET", path, NULL), 200, NULL);
    assert_null(json_object_get(j, "secret"));
    assert_string_equal(json_string_value(json_object_get(j, "url")),
                        "https://example.com/hook?k=1");
    json_decref(j);
    j = expect(call(1, ROLE_OPERATOR, "GET", "/api/webhooks", NULL), 200, NULL);
    assert_int_equal(json_array_size(json_object_get(j, "webhooks")), 1);
    assert_null(json_object_get(json_array_get(json_object_get(j, "webhooks"), 0), "secret"));
    json_decref(j);
    j = expect(call(1, ROLE_OPERATOR, "PATCH", path,
                    "{\"enabled\":false,\"secret\":\"0123456789abcdef\"}"),
               200, NULL);
    assert_true(json_is_false(json_object_get(j, "enabled")));
    assert_null(json_object_get(j, "secret"));
    json_decref(j);
    assert_int_equal(
        testdb_scalar(tdb.db, "SELECT count(*) FROM webhooks WHERE secret = '0123456789abcdef'"),
        1);

    /* bad input names its field */
    expect_error(call(1, ROLE_OPERATOR, "POST", "/api/webhooks",
                      "{\"name\":\"x\",\"url\":\"ftp://example.com/\"}"),
                 400, "url");
    expect_error(call(1, ROLE_OPERATOR, "POST", "/api/webhooks",
                      "{\"name\":\"x\",\"url\":\"example.com/hook\"}"),
                 400, "url");
    expect_error(
        call(1, ROLE_OPERATOR, "POST", "/api/webhooks", "{\"name\":\"x\",\"url\":\"http://a b/\"}"),
        400, "url");
    expect_error(call(1, ROLE_OPERATOR, "POST", "/api/webhooks",
                      "{\"name\":\"x\",\"url\":\"http://h/\",\"secret\":\"short\"}"),
                 400, "secret");
    expect_error(call(1, ROLE_OPERATOR, "POST", "/api/webhooks", "{\"url\":\"http://h/\"}"), 400,
                 "name");
    char big[2200];
    snprintf(big, sizeof big, "{\"name\":\"x\",\"url\":\"http://h/%02100d\"}", 0);
    expect_error(call(1, ROLE_OPERATOR, "POST", "/api/webhooks", big), 400, "url");
    /* another organisation's webhook does not exist; viewers do not see webhooks */
    expect_error(call(2, ROLE_OPERATOR, "GET", path, NULL), 404, NULL);
    expect_error(call(2, ROLE_OPERATOR, "DELETE", path, NULL), 404, NULL);
    expect_error(call(1, ROLE_VIEWER, "GET", "/api/webhooks", NULL), 403, NULL);

    /* the delivery log, newest first, a page at a time */
    testdb_exec(
        tdb.db,
        "INSERT INTO alerts(id, org_id, type, time, created_at) VALUES(1, 1, 'tamper', 0, 0)");
    for (int i = 0; i < 5; i++)
        testdb_exec(tdb.db,
                    "INSERT INTO webhook_deliveries(alert_id, webhook_id, state, next_attempt_at,"
                    " created_at) VALUES(1, %lld, '%s', 1767225600000, 1767225600000)",
                    (long long)id, i == 4 ? "pending" : "failed");
    snprintf(path, sizeof path, "/api/webhooks/%lld/deliveries?limit=3", (long long)id);
    j = expect(call(1, ROLE_OPERATOR, "GET", path, NULL), 200, NULL);
    json_t *list = json_object_get(j, "deliveries");
    assert_int_equal(json_array_size(list), 3);
    json_t *first = json_array_get(list, 0);
    int64_t newest = json_integer_value(json_object_get(first, "id"));
    assert_string_equal(json_string_value(json_object_get(first, "state")), "pending");
    assert_string_equal(json_string_value(json_object_get(first, "next_attempt_at")),
                        "2026-01-01T00:00:00Z");
    assert_true(json_is_null(json_object_get(json_array_get(list, 1), "next_attempt_at")));
    int64_t next = json_integer_value(json_object_get(j, "next"));
    assert_int_equal(next, newest - 2);
    json_decref(j);
    snprintf(path, sizeof path, "/api/webhooks/%lld/deliveries?before_id=%lld", (long long)id,
             (long long)next);
    j = expect(call(1, ROLE_OPERATOR, "GET", path, NULL), 200, NULL);
    assert_int_equal(json_array_size(json_object_get(j, "deliveries")), 2);
    assert_true(json_is_null(json_object_get(j, "next")));
    json_decref(j);

    /* deleting takes its deliveries along */
    snprintf(path, sizeof path, "/api/webhooks/%lld", (long long)id);
    expect_error(call(1, ROLE_OPERATOR, "DELETE", path, NULL), 204, NULL);
    assert_int_equal(testdb_scalar(tdb.db, "SELECT count(*) FROM webhook_deliveries"), 0);
    expect_error(call(1, ROLE_OPERATOR, "GET", path, NULL), 404, NULL);
}

static void test_routes_rules_and_alerts(void **state)
{
    (void)state;
    testdb_exec(tdb.db,
                "INSERT INTO webhooks(id, org_id, name, url, secret, created_at) VALUES"
                " (5, 1, 'mine', 'http://h/', 's', 0), (6, 2, 'theirs', 'http://h/', 's', 0)");
    const char *url = "/api/alert-rules";
    struct {
        const char *body, *field;
    } bad[] = {
        {"{\"name\":\"r\",\"types\":[\"tamper\",\"bogus\"]}", "types"},
        {"{\"name\":\"r\",\"types\":[]}", "types"},
        {"{\"name\":\"r\",\"types\":\"tamper\"}", "types"},
        {"{\"name\":\"r\"}", "types"},
        {"{\"types\":[\"tamper\"]}", "name"},
        {"{\"name\":\"r\",\"types\":[\"device_offline\"]}", "offline_minutes"},
        {"{\"name\":\"r\",\"types\":[\"device_offline\"],\"offline_minutes\":0}",
         "offline_minutes"},
        {"{\"name\":\"r\",\"types\":[\"tamper\"],\"offline_minutes\":5}", "offline_minutes"},
        {"{\"name\":\"r\",\"types\":[\"overspeed\"]}", "speed_kmh"},
        {"{\"name\":\"r\",\"types\":[\"overspeed\"],\"speed_kmh\":\"fast\"}", "speed_kmh"},
        {"{\"name\":\"r\",\"types\":[\"low_battery\"],\"battery_pct\":101}", "battery_pct"},
        {"{\"name\":\"r\",\"types\":[\"tamper\"],\"device_id\":3}", "device_id"},
        {"{\"name\":\"r\",\"types\":[\"tamper\"],\"device_id\":1,\"group_name\":\"g1\"}",
         "device_id"},
        {"{\"name\":\"r\",\"types\":[\"tamper\"],\"group_name\":\"nobody\"}", "group_name"},
        {"{\"name\":\"r\",\"types\":[\"tamper\"],\"shipment_id\":99}", "shipment_id"},
        {"{\"name\":\"r\",\"types\":[\"tamper\"],\"webhook_id\":6}", "webhook_id"},
        {"{\"name\":\"r\",\"types\":[\"tamper\"],\"colour\":\"red\"}", "colour"},
        {"{\"name\":5,\"types\":[\"tamper\"]}", "name"},
        {"{\"name\":\"r\",\"types\":[1]}", "types"},
        {"{\"name\":\"r\",\"types\":[\"tamper\"],\"stream\":1}", "stream"},
        {"{\"name\":\"r\",\"types\":[\"tamper\"],\"enabled\":null}", "enabled"},
        {"{\"name\":\"r\",\"types\":[\"tamper\"],\"device_id\":\"1\"}", "device_id"},
        {"{\"name\":\"r\",\"types\":[\"tamper\"],\"group_name\":7}", "group_name"},
        {"{\"name\":\"r\",\"types\":[\"tamper\"],\"webhook_id\":-1}", "webhook_id"},
        {"{\"name\":\"r\",\"types\":[\"low_battery\"],\"battery_pct\":50.5}", "battery_pct"},
        {"{\"name\":\"r\",\"types\":[\"overspeed\"],\"speed_kmh\":0}", "speed_kmh"},
        {"{\"name\":\"r\",\"types\":[\"device_offline\"],\"offline_minutes\":10081}",
         "offline_minutes"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct answer a = call(1, ROLE_OPERATOR, "POST", url, bad[i].body);
        if (a.status != 400 ||
            strcmp(json_string_value(json_object_get(a.json, "field")), bad[i].field) != 0)
            fail_msg("%s: %d %s", bad[i].body, a.status,
                     json_string_value(json_object_get(a.json, "error")));
        json_decref(a.json);
    }
    struct answer a = call(1, ROLE_OPERATOR, "POST", url, bad[0].body);
    assert_non_null(strstr(json_string_value(json_object_get(a.json, "error")), "bogus"));
    json_decref(a.json);
    assert_int_equal(testdb_scalar(tdb.db, "SELECT count(*) FROM alert_rules"), 0);
    expect_error(call(1, ROLE_VIEWER, "POST", url, "{\"name\":\"r\",\"types\":[\"tamper\"]}"), 403,
                 NULL);

    json_t *j = expect(call(1, ROLE_OPERATOR, "POST", url,
                            "{\"name\":\"seals\",\"types\":[\"tamper\",\"low_battery\",\"tamper\"],"
                            "\"group_name\":\"g1\",\"webhook_id\":5}"),
                       201, NULL);
    int64_t id = json_integer_value(json_object_get(j, "id"));
    assert_int_equal(json_array_size(json_object_get(j, "types")), 2);           /* no repeats */
    assert_int_equal(json_integer_value(json_object_get(j, "battery_pct")), 20); /* default */
    assert_true(json_is_true(json_object_get(j, "stream")));
    assert_true(json_is_true(json_object_get(j, "enabled")));
    assert_string_equal(json_string_value(json_object_get(j, "group_name")), "g1");
    assert_int_equal(json_integer_value(json_object_get(j, "webhook_id")), 5);
    assert_true(json_is_null(json_object_get(j, "device_id")));
    json_decref(j);

    /* an update merges: a new scope replaces the old, a dropped type takes its threshold */
    char path[64];
    snprintf(path, sizeof path, "/api/alert-rules/%lld", (long long)id);
    j = expect(call(1, ROLE_OPERATOR, "PATCH", path,
                    "{\"types\":[\"overspeed\"],\"speed_kmh\":90.5,\"device_id\":1,"
                    "\"stream\":false}"),
               200, NULL);
    assert_true(json_is_null(json_object_get(j, "group_name")));
    assert_int_equal(json_integer_value(json_object_get(j, "device_id")), 1);
    assert_true(json_is_null(json_object_get(j, "battery_pct")));
    assert_true(json_real_value(json_object_get(j, "speed_kmh")) == 90.5);
    assert_true(json_is_false(json_object_get(j, "stream")));
    assert_string_equal(json_string_value(json_object_get(j, "name")), "seals");
    json_decref(j);
    expect_error(call(1, ROLE_OPERATOR, "PATCH", path, "{\"battery_pct\":10}"), 400, "battery_pct");
    expect_error(call(1, ROLE_OPERATOR, "PATCH", path, "{\"speed_kmh\":null}"), 400, "speed_kmh");
    expect_error(call(2, ROLE_OPERATOR, "PATCH", path, "{\"name\":\"x\"}"), 404, NULL);
    expect_error(call(1, ROLE_OPERATOR, "PATCH", path, "{\"name\":"), 400, NULL);
    expect_error(call(1, ROLE_OPERATOR, "PATCH", path, "{\"device_id\":1,\"shipment_id\":7}"), 400,
                 "device_id");
    expect_error(call(1, ROLE_OPERATOR, "PATCH", "/api/alert-rules/999", "{\"name\":\"x\"}"), 404,
                 NULL);
    j = expect(call(1, ROLE_VIEWER, "GET", "/api/alert-rules", NULL), 200, NULL);
    assert_int_equal(json_array_size(json_object_get(j, "alert_rules")), 1);
    json_decref(j);
    j = expect(call(2, ROLE_VIEWER, "GET", "/api/alert-rules", NULL), 200, NULL);
    assert_int_equal(json_array_size(json_object_get(j, "alert_rules")), 0);
    json_decref(j);

    /* what the API stored is what the matcher reads */
    struct alerts *al;
    assert_int_equal(alerts_open(tdb.db, &al), 0);
    struct domain_event e = dev1("position");
    e.speed_kmh = 100;
    assert_int_equal(alerts_on_position(al, tdb.db, &e, NULL), 1);
    e = dev1("tamper");
    assert_int_equal(alerts_on_event(al, tdb.db, &e, NULL), 0);
    alerts_free(al);
    testdb_exec(
        tdb.db,
        "INSERT INTO alerts(org_id, rule_id, device_id, type, time, created_at, detail) VALUES"
        " (1, NULL, 2, 'tamper', %d, 0, '{}'), (1, NULL, 1, 'tamper', %d, 0, NULL),"
        " (2, NULL, 3, 'tamper', %d, 0, NULL)",
        T0 - 86400, T0 + 60, T0);

    /* alerts, newest first, filtered and paged */
    j = expect(call(1, ROLE_VIEWER, "GET", "/api/alerts", NULL), 200, NULL);
    json_t *list = json_object_get(j, "alerts");
    assert_int_equal(json_array_size(list), 3);
    json_t *o = json_array_get(list, 2);
    assert_string_equal(json_string_value(json_object_get(o, "type")), "overspeed");
    assert_string_equal(json_string_value(json_object_get(json_object_get(o, "rule"), "name")),
                        "seals");
    assert_string_equal(json_string_value(json_object_get(o, "uid")), "dev-1");
    assert_true(json_real_value(json_object_get(json_object_get(o, "detail"), "limit_kmh")) ==
                90.5);
    assert_true(json_is_null(json_object_get(json_array_get(list, 0), "rule")));
    json_decref(j);
    j = expect(call(1, ROLE_VIEWER, "GET", "/api/alerts?type=tamper&device_id=2", NULL), 200, NULL);
    assert_int_equal(json_array_size(json_object_get(j, "alerts")), 1);
    json_decref(j);
    j = expect(call(1, ROLE_VIEWER, "GET",
                    "/api/alerts?type=tamper&from=2025-12-31T12:00:00Z&to=1767225700", NULL),
               200, NULL);
    assert_int_equal(json_array_size(json_object_get(j, "alerts")), 1);
    json_decref(j);
    j = expect(call(1, ROLE_VIEWER, "GET", "/api/alerts?limit=2", NULL), 200, NULL);
    int64_t next = json_integer_value(json_object_get(j, "next"));
    json_decref(j);
    char q[64];
    snprintf(q, sizeof q, "/api/alerts?limit=2&before_id=%lld", (long long)next);
    j = expect(call(1, ROLE_VIEWER, "GET", q, NULL), 200, NULL);
    assert_int_equal(json_array_size(json_object_get(j, "alerts")), 1);
    assert_true(json_is_null(json_object_get(j, "next")));
    json_decref(j);
    expect_error(call(1, ROLE_VIEWER, "GET", "/api/alerts?type=bogus", NULL), 400, "type");
    expect_error(call(1, ROLE_VIEWER, "GET", "/api/alerts?limit=1001", NULL), 400, "limit");
    expect_error(call(1, ROLE_VIEWER, "GET", "/api/alerts?from=yesterday", NULL), 400, "from");

    expect_error(call(1, ROLE_OPERATOR, "DELETE", path, NULL), 204, NULL);
    expect_error(call(1, ROLE_OPERATOR, "DELETE", path, NULL), 404, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_match_types_and_scopes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deliveries_queued, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_json, setup, teardown),
        cmocka_unit_test_setup_teardown(test_thresholds_once_per_excursion, setup, teardown),
        cmocka_unit_test_setup_teardown(test_offline_once_per_silence, setup, teardown),
        cmocka_unit_test_setup_teardown(test_offline_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_webhook_signed_delivery, setup, teardown),
        cmocka_unit_test_setup_teardown(test_webhook_retries_with_backoff, setup, teardown),
        cmocka_unit_test_setup_teardown(test_webhook_dead_ones_do_not_delay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_webhook_disabled_waits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_routes_webhooks, route_setup, route_teardown),
        cmocka_unit_test_setup_teardown(test_routes_rules_and_alerts, route_setup, route_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
