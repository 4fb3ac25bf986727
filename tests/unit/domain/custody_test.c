/* custody_test.c — the custody chain against a real SQLite file: appends within a
 * transaction, the pinned canonical encoding, and verification naming exactly the
 * first broken link after the edits an attacker holding the file could make (the
 * append-only triggers dropped first, as they could). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>
#include <sqlite3.h>

#include "../../../src/core/err.h"
#include "../../../src/core/hex.h"
#include "../../../src/core/log.h"
#include "../../../src/domain/custody.h"
#include "../testdb.h"

#define SHIPMENT 1

static struct testdb tdb;

static int64_t id_of_seq(int seq)
{
    return testdb_scalar(tdb.db, "SELECT id FROM custody_log WHERE seq = %d", seq);
}

static int setup(void **state)
{
    (void)state;
    st_log_set_level(ST_LOG_ERROR);
    if (testdb_open(&tdb, "custody"))
        return -1;
    testdb_exec(tdb.db, "INSERT INTO shipments(id, org_id, reference, status, created_at)"
                        " VALUES(1, 1, 'R-1', 'open', 1767225600)");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    testdb_close(&tdb);
    return 0;
}

/* One append in its own transaction, as the writer and the API do. */
static int append(const struct custody_fact *f, int64_t *id)
{
    testdb_exec(tdb.db, "BEGIN IMMEDIATE");
    int rc = custody_append(tdb.db, f, f->time * 1000 + 123, id);
    testdb_exec(tdb.db, rc ? "ROLLBACK" : "COMMIT");
    return rc;
}

/* Five facts of several kinds, with and without position, detail, actor. */
static void append_five(void)
{
    const struct custody_fact facts[] = {
        {.shipment_id = SHIPMENT,
         .time = 1767225600,
         .kind = "shipment_opened",
         .actor = "ops",
         .source = "api"},
        {.shipment_id = SHIPMENT,
         .time = 1767225660,
         .kind = "sealed",
         .source = "rfid",
         .actor = "card 0042",
         .device_id = 7,
         .event_id = 11,
         .has_pos = true,
         .lat = 52.123456789,
         .lon = 13.000000049},
        {.shipment_id = SHIPMENT,
         .time = 1767229200,
         .kind = "handed_over",
         .actor = "driver \"B\"",
         .source = "api",
         .detail = "{\"to\": \"carrier\\nX\", \"n\": [1, 2]}"},
        {.shipment_id = SHIPMENT,
         .time = 1767232800,
         .kind = "command_sent",
         .device_id = 7,
         .command_id = 3,
         .source = "server",
         .detail = "{\"type\":\"unlock\"}"},
        {.shipment_id = SHIPMENT,
         .time = 1767236400,
         .kind = "unsealed",
         .source = "remote_static",
         .device_id = 7,
         .event_id = 12,
         .has_pos = true,
         .lat = -33.8688,
         .lon = 151.2093},
    };
    for (size_t i = 0; i < 5; i++) {
        int64_t id = 0;
        assert_int_equal(append(&facts[i], &id), 0);
        assert_true(id > 0);
    }
}

static void check_ok(int64_t entries)
{
    struct custody_check chk;
    char head[CUSTODY_HASH_HEX + 1];
    assert_int_equal(custody_verify(tdb.db, SHIPMENT, &chk), 0);
    if (!chk.ok)
        fail_msg("broken at id %lld seq %lld: %s", (long long)chk.broken_id,
                 (long long)chk.broken_seq, chk.reason);
    assert_int_equal(chk.entries, entries);
    /* an empty chain's head is the genesis value, what its first entry will name */
    testdb_text(tdb.db, head, sizeof head,
                "SELECT coalesce(custody_head, '" CUSTODY_GENESIS "') FROM shipments WHERE id = 1");
    assert_string_equal(chk.head, head);
}

static void check_broken(int64_t id, int64_t seq, const char *reason)
{
    struct custody_check chk;
    assert_int_equal(custody_verify(tdb.db, SHIPMENT, &chk), 0);
    assert_false(chk.ok);
    assert_string_equal(chk.reason, reason);
    assert_int_equal(chk.broken_seq, seq);
    assert_int_equal(chk.broken_id, id);
}

static void test_append_and_verify(void **state)
{
    (void)state;
    check_ok(0); /* an empty chain is whole */
    append_five();
    check_ok(5);
    assert_int_equal(testdb_scalar(tdb.db, "SELECT custody_seq FROM shipments WHERE id = 1"), 5);
    char prev[80], head[80], last[80];
    testdb_text(tdb.db, prev, sizeof prev, "SELECT prev_hash FROM custody_log WHERE seq = 1");
    assert_string_equal(prev, CUSTODY_GENESIS);
    testdb_text(tdb.db, head, sizeof head, "SELECT custody_head FROM shipments WHERE id = 1");
    testdb_text(tdb.db, last, sizeof last, "SELECT hash FROM custody_log WHERE seq = 5");
    assert_string_equal(head, last);
    /* positions are stored as hashed: 1e-7 degree */
    assert_int_equal(
        testdb_scalar(tdb.db, "SELECT lat * 10000000 = 521234568 AND lon * 10000000 = 130000000"
                              " FROM custody_log WHERE seq = 2"),
        1);
    /* detail kept byte for byte */
    char detail[80];
    testdb_text(tdb.db, detail, sizeof detail, "SELECT detail FROM custody_log WHERE seq = 3");
    assert_string_equal(detail, "{\"to\": \"carrier\\nX\", \"n\": [1, 2]}");
}

/* The encoding is a contract with third parties (docs/seals.md): pinned byte for byte, and
 * its SHA-256 as computed by Python's hashlib over the same text. */
static void test_canonical_pinned(void **state)
{
    (void)state;
    const struct custody_entry e = {
        .shipment_id = 9,
        .seq = 1,
        .time = 1767225600,
        .recorded_at = 1767225600123,
        .kind = "handed_over",
        .actor = "card \"7\" \\ \n\xc3\xa9",
        .source = "rfid",
        .device_id = 12,
        .event_id = 345,
        .command_id = 0,
        .has_pos = true,
        .lat = 52.12345678,
        .lon = -0.12345674,
        .detail = "{\"seal\":\"ok\"}",
        .prev_hash = CUSTODY_GENESIS,
    };
    const char *want =
        "{\"actor\":\"card \\\"7\\\" \\\\ \\u000a\xc3\xa9\",\"command_id\":null,"
        "\"detail\":\"{\\\"seal\\\":\\\"ok\\\"}\",\"device_id\":12,\"event_id\":345,"
        "\"kind\":\"handed_over\",\"lat\":521234568,\"lon\":-1234567,\"prev_hash\":"
        "\"" CUSTODY_GENESIS "\",\"recorded_at\":1767225600123,\"seq\":1,\"shipment_id\":9,"
        "\"source\":\"rfid\",\"time\":1767225600}";
    struct buf out = {0};
    custody_canonical(&e, &out);
    buf_append(&out, "", 1);
    assert_string_equal((const char *)out.data, want);
    unsigned char digest[crypto_hash_sha256_BYTES];
    char hex[CUSTODY_HASH_HEX + 1];
    crypto_hash_sha256(digest, out.data, out.len - 1);
    st_hex_encode(digest, sizeof digest, hex, sizeof hex);
    assert_string_equal(hex, "5b94ec0a7ce9a4e1ed59f9a5f8f8fdd60b08d81cd6ae55f796fb09be80e46a97");
    buf_free(&out);
}

static void test_edited_row_named(void **state)
{
    (void)state;
    append_five();
    testdb_exec(tdb.db, "DROP TRIGGER custody_log_no_update");
    testdb_exec(tdb.db, "UPDATE custody_log SET actor = 'mallory' WHERE seq = 3");
    check_broken(id_of_seq(3), 3, "hash does not match the entry's content");
}

static void test_edited_position_named(void **state)
{
    (void)state;
    append_five();
    testdb_exec(tdb.db, "DROP TRIGGER custody_log_no_update");
    testdb_exec(tdb.db, "UPDATE custody_log SET lat = lat + 0.0000002 WHERE seq = 5");
    check_broken(id_of_seq(5), 5, "hash does not match the entry's content");
}

static void test_deleted_middle_row(void **state)
{
    (void)state;
    append_five();
    testdb_exec(tdb.db, "DROP TRIGGER custody_log_no_delete");
    testdb_exec(tdb.db, "DELETE FROM custody_log WHERE seq = 3");
    check_broken(id_of_seq(4), 3, "entry seq 3 missing");
}

static void test_truncation(void **state)
{
    (void)state;
    append_five();
    testdb_exec(tdb.db, "DROP TRIGGER custody_log_no_delete");
    testdb_exec(tdb.db, "DELETE FROM custody_log WHERE seq = 5");
    check_broken(0, 5, "chain ends at seq 4 but the shipment's head is seq 5");
}

/* What an attacker who knows the encoding does: rewrite entry seq's actor and its hash. */
static void rehash_row(int seq, const char *actor)
{
    char sql[200];
    snprintf(sql, sizeof sql, "SELECT " CUSTODY_ENTRY_COLUMNS " FROM custody_log WHERE seq = %d",
             seq);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(tdb.db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    struct custody_entry e;
    custody_entry_read(st, 0, &e);
    e.actor = actor;
    struct buf canon = {0};
    custody_canonical(&e, &canon);
    sqlite3_finalize(st);
    unsigned char digest[crypto_hash_sha256_BYTES];
    char hex[CUSTODY_HASH_HEX + 1];
    crypto_hash_sha256(digest, canon.data, canon.len);
    st_hex_encode(digest, sizeof digest, hex, sizeof hex);
    buf_free(&canon);
    testdb_exec(tdb.db, "UPDATE custody_log SET actor = '%s', hash = '%s' WHERE seq = %d", actor,
                hex, seq);
}

/* A rewritten and re-hashed entry is whole in itself: the break is the next entry, whose
 * prev_hash still names the original. */
static void test_rehashed_row_breaks_next(void **state)
{
    (void)state;
    append_five();
    testdb_exec(tdb.db, "DROP TRIGGER custody_log_no_update");
    rehash_row(2, "card 0666");
    check_broken(id_of_seq(3), 3, "prev_hash does not match entry seq 2");
}

/* The last entry rewritten and re-hashed: only the shipment's head can tell; moving the
 * head back as well leaves an entry beyond it. */
static void test_rehashed_last_row(void **state)
{
    (void)state;
    append_five();
    testdb_exec(tdb.db, "DROP TRIGGER custody_log_no_update");
    rehash_row(5, "nobody");
    check_broken(id_of_seq(5), 5, "the shipment's head hash is not that of entry seq 5");
    testdb_exec(tdb.db, "UPDATE shipments SET custody_seq = 4");
    check_broken(id_of_seq(5), 5, "entry seq 5 is beyond the shipment's head seq 4");
}

static void test_missing_shipment(void **state)
{
    (void)state;
    struct custody_fact f = {.shipment_id = 99, .time = 1, .kind = "note"};
    assert_int_equal(append(&f, NULL), ST_ENOTFOUND);
    struct custody_check chk;
    assert_int_equal(custody_verify(tdb.db, 99, &chk), ST_ENOTFOUND);
}

static void test_malformed_facts(void **state)
{
    (void)state;
    struct custody_fact f = {.shipment_id = SHIPMENT, .time = 1, .kind = "bogus"};
    assert_int_equal(append(&f, NULL), ST_EMALFORMED);
    f.kind = NULL;
    assert_int_equal(append(&f, NULL), ST_EMALFORMED);
    f.kind = "note";
    const char *details[] = {"[1]", "\"x\"", "{\"a\":", "{\"a\":1} x", "", "{\"a\":1,\"a\":2}"};
    for (size_t i = 0; i < sizeof details / sizeof details[0]; i++) {
        f.detail = details[i];
        assert_int_equal(append(&f, NULL), ST_EMALFORMED);
    }
    f.detail = NULL;
    f.has_pos = true;
    f.lat = 91;
    assert_int_equal(append(&f, NULL), ST_EMALFORMED);
    f.lat = NAN;
    assert_int_equal(append(&f, NULL), ST_EMALFORMED);
    assert_int_equal(testdb_scalar(tdb.db, "SELECT custody_seq FROM shipments WHERE id = 1"), 0);
    assert_int_equal(testdb_scalar(tdb.db, "SELECT count(*) FROM custody_log"), 0);
}

/* Bytes that are not UTF-8 cannot travel in a JSON export: stored and hashed as U+FFFD. */
static void test_non_utf8_text(void **state)
{
    (void)state;
    struct custody_fact f = {.shipment_id = SHIPMENT,
                             .time = 1,
                             .kind = "note",
                             .actor = "a\xff"
                                      "b\xc3",
                             .source = "\xe2\x82\xac"};
    assert_int_equal(append(&f, NULL), 0);
    char actor[32], source[32];
    testdb_text(tdb.db, actor, sizeof actor, "SELECT actor FROM custody_log");
    testdb_text(tdb.db, source, sizeof source, "SELECT source FROM custody_log");
    assert_string_equal(actor, "a\xef\xbf\xbd"
                               "b\xef\xbf\xbd");
    assert_string_equal(source, "\xe2\x82\xac");
    check_ok(1);
}

static void test_rollback_keeps_head(void **state)
{
    (void)state;
    append_five();
    char before[80], after[80];
    testdb_text(tdb.db, before, sizeof before, "SELECT custody_head FROM shipments WHERE id = 1");
    struct custody_fact f = {.shipment_id = SHIPMENT, .time = 1767240000, .kind = "tamper"};
    testdb_exec(tdb.db, "BEGIN IMMEDIATE");
    assert_int_equal(custody_append(tdb.db, &f, 1767240000000, NULL), 0);
    assert_int_equal(testdb_scalar(tdb.db, "SELECT custody_seq FROM shipments WHERE id = 1"), 6);
    testdb_exec(tdb.db, "ROLLBACK");
    testdb_text(tdb.db, after, sizeof after, "SELECT custody_head FROM shipments WHERE id = 1");
    assert_string_equal(after, before);
    assert_int_equal(testdb_scalar(tdb.db, "SELECT custody_seq FROM shipments WHERE id = 1"), 5);
    check_ok(5);
    assert_int_equal(append(&f, NULL), 0); /* the next append continues from the kept head */
    check_ok(6);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_append_and_verify, setup, teardown),
        cmocka_unit_test(test_canonical_pinned),
        cmocka_unit_test_setup_teardown(test_edited_row_named, setup, teardown),
        cmocka_unit_test_setup_teardown(test_edited_position_named, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deleted_middle_row, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rehashed_row_breaks_next, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rehashed_last_row, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_shipment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_facts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_non_utf8_text, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rollback_keeps_head, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
