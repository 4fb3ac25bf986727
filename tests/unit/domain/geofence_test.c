/* geofence_test.c — the geofence engine against a real SQLite file: events at the
 * right fixes, dwell, and the property that matters for buffered history: whatever
 * order a device's fixes arrive in, the stored enter/exit events are the same as
 * when they arrive in fix-time order (late ones added, false ones removed). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sqlite3.h>

#include <cmocka.h>

#include "../../../src/core/err.h"
#include "../../../src/core/log.h"
#include "../../../src/domain/geofence.h"
#include "../testdb.h"

#define T0 1700000000LL
#define STEP 30

static void add_fence(sqlite3 *db, const char *name, const char *shape, const char *points,
                      double radius, int dwell)
{
    testdb_exec(db,
                "INSERT INTO geofences(org_id, name, kind, shape, points, radius_m, dwell_s,"
                " created_at, updated_at) VALUES(1, '%s', 'allowed', '%s', '%s', %g, %d, 0, 0)",
                name, shape, points, radius, dwell);
}

struct collected {
    int n;
};

static int count_event(void *arg, const struct domain_event *e)
{
    struct collected *c = arg;
    assert_non_null(e->type);
    c->n++;
    return 0;
}

/* Store fixes idx[0..n) of route (lat, lon per index) for a device in one transaction and
 * let the engine evaluate them, as the writer does. */
static void batch(sqlite3 *db, struct geofence_engine *g, int64_t device, const double (*route)[2],
                  const int *idx, int n, struct collected *c)
{
    testdb_exec(db, "BEGIN IMMEDIATE");
    assert_int_equal(geofence_batch_begin(g), 0);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "INSERT INTO positions(device_id, fix_time, recv_time,"
                                        " protocol, valid, lat, lon) VALUES(?1, ?2, 0, 'test', 1, ?3, ?4)",
                                        -1, &st, NULL),
                     SQLITE_OK);
    for (int i = 0; i < n; i++) {
        int64_t t = T0 + (int64_t)idx[i] * STEP;
        sqlite3_bind_int64(st, 1, device);
        sqlite3_bind_int64(st, 2, t);
        sqlite3_bind_double(st, 3, route[idx[i]][0]);
        sqlite3_bind_double(st, 4, route[idx[i]][1]);
        assert_int_equal(sqlite3_step(st), SQLITE_DONE);
        sqlite3_reset(st);
        geofence_note_fix(g, 1, device, "dev", NULL, t, sqlite3_last_insert_rowid(db),
                          route[idx[i]][0], route[idx[i]][1]);
    }
    sqlite3_finalize(st);
    assert_int_equal(geofence_batch_end(g, count_event, c), 0);
    testdb_exec(db, "COMMIT");
}

/* The device's server events as "fence:type:fix index" lines, in order. */
static void events_of(sqlite3 *db, int64_t device, char *out, size_t cap)
{
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT e.fence_id, e.type, e.time FROM events e"
                                        " WHERE e.device_id = ?1 AND e.source = 'server'"
                                        " ORDER BY e.time, e.fence_id, e.type",
                                        -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_int64(st, 1, device);
    size_t len = 0;
    out[0] = '\0';
    while (sqlite3_step(st) == SQLITE_ROW && len + 64 < cap)
        len += (size_t)snprintf(out + len, cap - len, "%lld:%s:%lld ",
                                (long long)sqlite3_column_int64(st, 0),
                                sqlite3_column_text(st, 1) + 9, /* after "geofence_" */
                                (long long)((sqlite3_column_int64(st, 2) - T0) / STEP));
    sqlite3_finalize(st);
}

static void add_devices(sqlite3 *db, int n)
{
    for (int i = 1; i <= n; i++)
        testdb_exec(db, "INSERT INTO devices(id, uid, created_at) VALUES(%d, 'd%d', 0)", i, i);
}

/* A straight route east along 47°N, ~760 m per fix, through a circle, a square with a dwell
 * of 60 s and a corridor along the whole route. */
#define N_FIX 24
static double straight[N_FIX][2];

static void straight_route(sqlite3 *db)
{
    for (int i = 0; i < N_FIX; i++) {
        straight[i][0] = 47.0;
        straight[i][1] = 8.0 + i * 0.01;
    }
    add_fence(db, "A", "circle", "[[47.0, 8.0]]", 1000, 0);                /* fixes 0, 1 */
    add_fence(db, "B", "polygon", "[[46.99, 8.075], [46.99, 8.125], [47.01, 8.125], [47.01, 8.075]]",
              0, 60);                                                         /* fixes 8..12 */
    add_fence(db, "C", "corridor", "[[47.0, 7.99], [47.0, 8.15]]", 500, 0); /* fixes 0..15 */
}

static void test_in_order_events_and_dwell(void **state)
{
    (void)state;
    struct testdb tdb;
    assert_int_equal(testdb_open(&tdb, "geofence"), 0);
    sqlite3 *db = tdb.db;
    add_devices(db, 1);
    straight_route(db);
    struct geofence_engine *g;
    assert_int_equal(geofence_engine_open(db, &g), 0);
    struct collected c = {0};
    for (int i = 0; i < N_FIX; i += 4) {
        int idx[4] = {i, i + 1, i + 2, i + 3};
        batch(db, g, 1, straight, idx, 4, &c);
    }
    char got[1024];
    events_of(db, 1, got, sizeof got);
    /* A: enter at 0, exit at 2. C: enter at 0, exit at 16. B (dwell 60 s = 2 steps): inside
     * from 8, enter at 10; outside from 13, exit at 15. */
    assert_string_equal(got, "1:enter:0 3:enter:0 1:exit:2 2:enter:10 2:exit:15 3:exit:16 ");
    assert_int_equal(c.n, 6);
    geofence_engine_free(g);
    testdb_close(&tdb);
}

static void test_short_visit_under_dwell_fires_nothing(void **state)
{
    (void)state;
    struct testdb tdb;
    assert_int_equal(testdb_open(&tdb, "geofence"), 0);
    sqlite3 *db = tdb.db;
    add_devices(db, 1);
    add_fence(db, "D", "circle", "[[47.0, 8.05]]", 400, 120); /* 4 steps of dwell */
    double route[8][2];
    for (int i = 0; i < 8; i++) {
        route[i][0] = 47.0;
        route[i][1] = 8.0 + i * 0.01; /* inside only at fix 5 */
    }
    struct geofence_engine *g;
    assert_int_equal(geofence_engine_open(db, &g), 0);
    struct collected c = {0};
    int idx[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    batch(db, g, 1, route, idx, 8, &c);
    assert_int_equal(c.n, 0);
    geofence_engine_free(g);
    testdb_close(&tdb);
}

/* Arrival orders of the same fixes: in order; the middle uploaded last (blind area);
 * newest first; random batches. Every order must end with the in-order events. */
static void test_arrival_order_does_not_change_events(void **state)
{
    (void)state;
    struct testdb tdb;
    assert_int_equal(testdb_open(&tdb, "geofence"), 0);
    sqlite3 *db = tdb.db;
    add_devices(db, 40);
    straight_route(db);
    struct geofence_engine *g;
    assert_int_equal(geofence_engine_open(db, &g), 0);
    struct collected c = {0};
    int order[N_FIX];
    for (int i = 0; i < N_FIX; i++)
        order[i] = i;
    batch(db, g, 1, straight, order, N_FIX, &c);
    char want[1024], got[1024];
    events_of(db, 1, want, sizeof want);

    /* device 2: fixes 5..13 held back and sent after the rest, one at a time */
    for (int i = 0; i < N_FIX; i++)
        if (i < 5 || i > 13)
            batch(db, g, 2, straight, &i, 1, &c);
    for (int i = 5; i <= 13; i++)
        batch(db, g, 2, straight, &i, 1, &c);
    events_of(db, 2, got, sizeof got);
    assert_string_equal(got, want);

    /* device 3: newest first */
    for (int i = N_FIX - 1; i >= 0; i--)
        batch(db, g, 3, straight, &i, 1, &c);
    events_of(db, 3, got, sizeof got);
    assert_string_equal(got, want);

    /* devices 4..39: random permutations sent in random batch sizes */
    srand(42);
    for (int dev = 4; dev < 40; dev++) {
        for (int i = N_FIX - 1; i > 0; i--) {
            int j = rand() % (i + 1), t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        for (int i = 0; i < N_FIX;) {
            int n = 1 + rand() % 5;
            if (i + n > N_FIX)
                n = N_FIX - i;
            batch(db, g, dev, straight, order + i, n, &c);
            i += n;
        }
        events_of(db, dev, got, sizeof got);
        if (strcmp(got, want) != 0)
            fail_msg("device %d: want %s got %s", dev, want, got);
    }
    /* every late event is marked late */
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT count(*) FROM events WHERE device_id = 2 AND"
                                        " json_extract(detail, '$.late') = 1",
                                        -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 2); /* B's enter at 10 and exit at 15 */
    sqlite3_finalize(st);
    geofence_engine_free(g);
    testdb_close(&tdb);
}

static void test_targets_and_reload(void **state)
{
    (void)state;
    struct testdb tdb;
    assert_int_equal(testdb_open(&tdb, "geofence"), 0);
    sqlite3 *db = tdb.db;
    add_devices(db, 2);
    add_fence(db, "only device 2", "circle", "[[47.0, 8.0]]", 1000, 0);
    testdb_exec(db, "UPDATE geofences SET all_devices = 0");
    testdb_exec(db, "INSERT INTO geofence_targets(fence_id, device_id) VALUES(1, 2)");
    struct geofence_engine *g;
    assert_int_equal(geofence_engine_open(db, &g), 0);
    assert_int_equal(geofence_engine_size(g), 0); /* loaded at the first batch */
    double route[1][2] = {{47.0, 8.0}};
    int idx = 0;
    struct collected c = {0};
    batch(db, g, 1, route, &idx, 1, &c);
    assert_int_equal(c.n, 0);
    batch(db, g, 2, route, &idx, 1, &c);
    assert_int_equal(c.n, 1);
    assert_int_equal(geofence_engine_size(g), 1);
    testdb_exec(db, "DELETE FROM geofences");
    geofence_engine_reload(g);
    route[0][1] = 9.0;
    batch(db, g, 2, route, &idx, 1, &c);
    assert_int_equal(geofence_engine_size(g), 0);
    assert_int_equal(c.n, 1); /* a deleted fence fires no exit */
    geofence_engine_free(g);
    testdb_close(&tdb);
}

int main(void)
{
    st_log_set_level(ST_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_in_order_events_and_dwell),
        cmocka_unit_test(test_short_visit_under_dwell_fires_nothing),
        cmocka_unit_test(test_arrival_order_does_not_change_events),
        cmocka_unit_test(test_targets_and_reload),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
