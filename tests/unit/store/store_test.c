/* store_test.c — the writer thread against a real SQLite file: group commit,
 * completion order, device registration modes, time zones, raw-frame cap,
 * latest state with out-of-order history, and queue limits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <pthread.h>
#include <sqlite3.h>

#include <cmocka.h>

#include "../../../src/core/err.h"
#include "../../../src/core/log.h"
#include "../../../src/store/query.h"
#include "../../../src/store/store.h"
#include "../testdb.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int notified;

static void on_notify(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&lock);
    notified++;
    pthread_cond_signal(&cond);
    pthread_mutex_unlock(&lock);
}

struct seen {
    int n;
    void *owners[64];
    int results[64];
    uint8_t replies[64][16];
    size_t reply_len[64];
};

static void on_done(void *arg, const struct store_done *d)
{
    struct seen *s = arg;
    s->owners[s->n] = d->owner;
    s->results[s->n] = d->result;
    memcpy(s->replies[s->n], d->reply, d->reply_len < 16 ? d->reply_len : 16);
    s->reply_len[s->n] = d->reply_len;
    s->n++;
}

/* Drain until `want` frames completed (the writer notifies after each batch). */
static void drain_until(struct store *st, struct seen *s, int want)
{
    for (int spins = 0; s->n < want && spins < 500; spins++) {
        pthread_mutex_lock(&lock);
        if (!notified) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 10 * 1000 * 1000;
            if (ts.tv_nsec >= 1000000000) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000;
            }
            pthread_cond_timedwait(&cond, &lock, &ts);
        }
        notified = 0;
        pthread_mutex_unlock(&lock);
        store_drain(st, on_done, s);
    }
    assert_int_equal(s->n, want);
}

/* One integer from a connection of its own: what another reader of the file sees. */
static int64_t scalar(const char *path, const char *sql)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    int64_t v = testdb_scalar(db, "%s", sql);
    sqlite3_close(db);
    return v;
}

static void make_report(struct report *r, const char *id, int64_t t, double lat)
{
    report_init(r, "jt808");
    snprintf(r->device_id, sizeof r->device_id, "%s", id);
    snprintf(r->msg_type, sizeof r->msg_type, "0x0200");
    r->fix_time = t;
    r->has_position = true;
    r->valid = true;
    r->lat = lat;
    r->lon = 113.9;
    r->battery_pct = 80;
    r->lock = REPORT_LOCK_LOCKED;
    report_attr_set(r, "serial", "%d", 1);
}

static struct store_frame frame_of(void *owner, const char *id, struct report *r, size_t n,
                                   const char *reply)
{
    static const uint8_t raw[] = {0x7e, 0x02, 0x00, 0x7e};
    return (struct store_frame){
        .owner = owner, .protocol = "jt808", .transport = "tcp", .peer = "127.0.0.1:1",
        .device_id = id, .status = "ok", .raw = raw, .raw_len = sizeof raw, .reports = r,
        .n_reports = n, .reply = (const uint8_t *)reply, .reply_len = strlen(reply),
        .recv_ms = 1700000000000,
    };
}

/* The writer creates the file itself: only its directory and name are made here. */
static struct testdb tdb;

static int setup(void **state)
{
    (void)state;
    st_log_set_level(ST_LOG_ERROR);
    return testdb_mktemp(&tdb, "store");
}

static int teardown(void **state)
{
    (void)state;
    testdb_close(&tdb);
    return 0;
}

static void test_commit_and_reply_order(void **state)
{
    (void)state;
    struct store_opts o = {.path = tdb.path, .sync_full = true, .batch_max = 100, .queue_max = 1000,
                           .raw_frames_max = 1000, .notify = on_notify};
    struct store *st;
    assert_int_equal(store_open(&o, &st), 0);
    static struct report r[3];
    int owners[20];
    for (int i = 0; i < 20; i++) {
        make_report(&r[0], "794308010679", 1700000000 + i * 30, 22.5 + i * 0.001);
        if (i == 5) {
            struct report_event *e = report_add_event(&r[0], REPORT_EV_UNLOCK);
            e->source = REPORT_SRC_RFID;
            snprintf(e->card, sizeof e->card, "0006437449");
        }
        char reply[8];
        snprintf(reply, sizeof reply, "ack%d", i);
        struct store_frame f = frame_of(&owners[i], "794308010679", r, 1, reply);
        assert_int_equal(store_submit(st, &f), 0);
    }
    struct seen s = {0};
    drain_until(st, &s, 20);
    for (int i = 0; i < 20; i++) {
        char reply[8];
        snprintf(reply, sizeof reply, "ack%d", i);
        assert_ptr_equal(s.owners[i], &owners[i]);
        assert_int_equal(s.results[i], STORE_COMMITTED);
        assert_memory_equal(s.replies[i], reply, strlen(reply));
    }
    /* completed means committed: another connection sees the rows */
    assert_int_equal(scalar(tdb.path, "SELECT count(*) FROM positions"), 20);
    assert_int_equal(scalar(tdb.path, "SELECT count(*) FROM devices"), 1);
    assert_int_equal(scalar(tdb.path, "SELECT count(*) FROM events WHERE type='unlock' AND card='0006437449'"), 1);
    assert_int_equal(scalar(tdb.path, "SELECT count(*) FROM raw_frames"), 20);
    assert_int_equal(scalar(tdb.path, "SELECT fix_time FROM device_state"), 1700000000 + 19 * 30);

    /* a late, older fix is stored but does not move the latest state back */
    make_report(&r[0], "794308010679", 1600000000, 1.0);
    struct store_frame f = frame_of(&owners[0], "794308010679", r, 1, "late");
    assert_int_equal(store_submit(st, &f), 0);
    drain_until(st, &s, 21);
    assert_int_equal(scalar(tdb.path, "SELECT count(*) FROM positions"), 21);
    assert_int_equal(scalar(tdb.path, "SELECT fix_time FROM device_state"), 1700000000 + 19 * 30);
    store_close(st);
}

static void test_register_known_and_tz(void **state)
{
    (void)state;
    assert_int_equal(query_device_add(tdb.path, "000000000001", "seal 1", "JT709A", 480, NULL), 0);
    assert_int_equal(query_device_add(tdb.path, "000000000002", "seal 2", "GT808", INT32_MIN, NULL), 0);
    assert_int_equal(query_device_add(tdb.path, "000000000003", "seal 3", NULL, INT32_MIN, NULL), 0);
    struct st_model_tz models[] = {{"GT808", -60}, {"JT709A", 300}};
    struct store_opts o = {.path = tdb.path, .register_known = true, .batch_max = 100,
                           .queue_max = 1000, .raw_frames_max = 1000, .default_tz_min = 120,
                           .model_tz = models, .n_model_tz = 2, .notify = on_notify};
    struct store *st;
    assert_int_equal(store_open(&o, &st), 0);
    static struct report r;
    int a, b;
    make_report(&r, "000000000001", 1700000000, 22.5);
    r.time_is_local = true; /* the device sends GMT+8 (tz 480 above) */
    struct store_frame f = frame_of(&a, "000000000001", &r, 1, "ok");
    assert_int_equal(store_submit(st, &f), 0);
    make_report(&r, "999999999999", 1700000000, 22.5);
    f = frame_of(&b, "999999999999", &r, 1, "no");
    assert_int_equal(store_submit(st, &f), 0);
    /* no zone of its own: its model's (-60), then the default (120) */
    int c2, c3;
    make_report(&r, "000000000002", 1700000000, 22.5);
    r.time_is_local = true;
    f = frame_of(&c2, "000000000002", &r, 1, "ok");
    assert_int_equal(store_submit(st, &f), 0);
    make_report(&r, "000000000003", 1700000000, 22.5);
    r.time_is_local = true;
    f = frame_of(&c3, "000000000003", &r, 1, "ok");
    assert_int_equal(store_submit(st, &f), 0);
    struct seen s = {0};
    drain_until(st, &s, 4);
    assert_int_equal(s.results[0], STORE_COMMITTED);
    assert_int_equal(s.results[1], STORE_REJECTED);
    store_close(st);
    /* the device's own zone (480) wins over its model's (300) */
    assert_int_equal(scalar(tdb.path, "SELECT fix_time FROM positions p JOIN devices d ON d.id=p.device_id"
                                     " WHERE d.uid='000000000001'"), 1700000000 - 8 * 3600);
    assert_int_equal(scalar(tdb.path, "SELECT fix_time FROM positions p JOIN devices d ON d.id=p.device_id"
                                     " WHERE d.uid='000000000002'"), 1700000000 + 3600);
    assert_int_equal(scalar(tdb.path, "SELECT fix_time FROM positions p JOIN devices d ON d.id=p.device_id"
                                     " WHERE d.uid='000000000003'"), 1700000000 - 2 * 3600);
    assert_int_equal(scalar(tdb.path, "SELECT count(*) FROM devices"), 3);
    /* the refused device's frame is kept raw, with the reason */
    assert_int_equal(scalar(tdb.path, "SELECT count(*) FROM raw_frames WHERE device_uid='999999999999'"
                                     " AND status LIKE 'rejected%'"), 1);
}

static void test_raw_cap_and_queue_limit(void **state)
{
    (void)state;
    struct store_opts o = {.path = tdb.path, .batch_max = 100, .queue_max = 100,
                           .raw_frames_max = 5, .notify = on_notify};
    struct store *st;
    assert_int_equal(store_open(&o, &st), 0);
    static struct report r[64];
    int owner;
    for (int i = 0; i < 30; i++) {
        make_report(&r[0], "1", 1700000000 + i, 1);
        struct store_frame f = frame_of(&owner, "1", r, 1, "");
        assert_int_equal(store_submit(st, &f), 0);
        struct seen s = {0};
        drain_until(st, &s, 1);
    }
    assert_true(scalar(tdb.path, "SELECT count(*) FROM raw_frames") <= 5);
    assert_int_equal(scalar(tdb.path, "SELECT count(*) FROM positions"), 30);
    /* more waiting reports than queue_max: refused, not dropped silently. Another
     * connection holds the write lock so the writer cannot drain meanwhile. */
    sqlite3 *blocker;
    assert_int_equal(sqlite3_open(tdb.path, &blocker), SQLITE_OK);
    assert_int_equal(sqlite3_exec(blocker, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    for (int i = 0; i < 64; i++)
        make_report(&r[i], "1", 1700000100 + i, 1);
    int refused = 0, accepted = 0;
    for (int i = 0; i < 10; i++) {
        struct store_frame f = frame_of(&owner, "1", r, 64, "");
        int rc = store_submit(st, &f);
        assert_true(rc == 0 || rc == ST_EFULL);
        refused += rc == ST_EFULL;
        accepted += rc == 0;
    }
    assert_true(refused > 0);
    assert_int_equal(sqlite3_exec(blocker, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(blocker);
    struct seen s = {0};
    drain_until(st, &s, accepted);
    store_close(st);
}

/* Reports of one device in one transaction fold into one device_state row as the reports
 * one by one would have: the latest fix by fix time, the last known battery and lock. */
static void test_state_of_a_batch(void **state)
{
    (void)state;
    struct store_opts o = {.path = tdb.path, .batch_max = 100, .queue_max = 1000,
                           .raw_frames_max = 1000, .notify = on_notify};
    struct store *st;
    assert_int_equal(store_open(&o, &st), 0);
    sqlite3 *blocker; /* holds the writer back so that both frames share its next batch */
    assert_int_equal(sqlite3_open(tdb.path, &blocker), SQLITE_OK);
    assert_int_equal(sqlite3_exec(blocker, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    static struct report r[3];
    int owners[3];
    /* a frame of another device first: the writer takes it and waits for the lock, so the
     * two frames below queue together for its next transaction */
    make_report(&r[2], "8", 1700000000, 0.5);
    struct store_frame f = frame_of(&owners[2], "8", &r[2], 1, "");
    assert_int_equal(store_submit(st, &f), 0);
    while (store_queue_depth(st) != 0)
        usleep(1000);
    make_report(&r[0], "9", 1700002000, 2.0);
    make_report(&r[1], "9", 1700001000, 1.0); /* buffered history after the newer fix */
    r[1].battery_pct = 40;
    r[1].lock = REPORT_LOCK_UNLOCKED;
    f = frame_of(&owners[0], "9", &r[0], 1, "");
    assert_int_equal(store_submit(st, &f), 0);
    f = frame_of(&owners[1], "9", &r[1], 1, "");
    assert_int_equal(store_submit(st, &f), 0);
    assert_int_equal(store_queue_depth(st), 2); /* one batch, still waiting */
    assert_int_equal(sqlite3_exec(blocker, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(blocker);
    struct seen s = {0};
    drain_until(st, &s, 3);
    const char *dev9 = " FROM device_state WHERE device_id = (SELECT id FROM devices WHERE uid = '9')";
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT fix_time%s", dev9);
    assert_int_equal(scalar(tdb.path, sql), 1700002000);
    snprintf(sql, sizeof sql, "SELECT lat * 10%s", dev9);
    assert_int_equal(scalar(tdb.path, sql), 20);
    snprintf(sql, sizeof sql, "SELECT battery_pct%s", dev9);
    assert_int_equal(scalar(tdb.path, sql), 40);
    snprintf(sql, sizeof sql, "SELECT lock_state = 'unlocked'%s", dev9);
    assert_int_equal(scalar(tdb.path, sql), 1);
    snprintf(sql, sizeof sql, "SELECT position_id = (SELECT id FROM positions WHERE fix_time = 1700002000)%s",
             dev9);
    assert_int_equal(scalar(tdb.path, sql), 1);
    store_close(st);
}

/* Frames beyond batch_max wait in further batches: all committed, in order. */
static void test_batch_max_splits(void **state)
{
    (void)state;
    struct store_opts o = {.path = tdb.path, .batch_max = 3, .queue_max = 1000,
                           .raw_frames_max = 1000, .notify = on_notify};
    struct store *st;
    assert_int_equal(store_open(&o, &st), 0);
    sqlite3 *blocker;
    assert_int_equal(sqlite3_open(tdb.path, &blocker), SQLITE_OK);
    assert_int_equal(sqlite3_exec(blocker, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    static struct report r;
    int owners[20];
    for (int i = 0; i < 20; i++) {
        make_report(&r, "7", 1700000000 + i, 1);
        struct store_frame f = frame_of(&owners[i], "7", &r, 1, "");
        assert_int_equal(store_submit(st, &f), 0);
    }
    assert_true(store_queue_depth(st) >= 17); /* at most one batch taken by the blocked writer */
    assert_int_equal(sqlite3_exec(blocker, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(blocker);
    struct seen s = {0};
    drain_until(st, &s, 20);
    for (int i = 0; i < 20; i++)
        assert_ptr_equal(s.owners[i], &owners[i]);
    assert_int_equal(store_queue_depth(st), 0);
    store_close(st);
    assert_int_equal(scalar(tdb.path, "SELECT count(*) FROM positions"), 20);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_commit_and_reply_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_register_known_and_tz, setup, teardown),
        cmocka_unit_test_setup_teardown(test_raw_cap_and_queue_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_max_splits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_state_of_a_batch, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
