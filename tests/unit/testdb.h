/* testdb.h — a throwaway SQLite database for the unit tests that run against a real file:
 * a fresh directory under /tmp holding `t.db` opened through schema_open (the project's
 * pragmas and every migration), its removal with the -wal and -shm files, and the
 * one-liners the tests assert with. Header-only (static inline), for cmocka tests:
 *
 *   static struct testdb tdb;
 *   setup:    if (testdb_open(&tdb, "alerts")) return -1;
 *   a test:   testdb_exec(tdb.db, "UPDATE devices SET org_id = %d", 2);
 *             assert_int_equal(testdb_scalar(tdb.db, "SELECT count(*) FROM alerts"), 1);
 *   teardown: testdb_close(&tdb);
 *
 * testdb_exec, testdb_scalar and testdb_text format their SQL printf-style (at most
 * TESTDB_SQL_MAX bytes) and fail the running test with fail_msg, naming the SQL and SQLite's
 * message, when it does not prepare or run; testdb_scalar and testdb_text also fail when the
 * query yields no row. */
#ifndef ST_TESTDB_H
#define ST_TESTDB_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "../../src/store/schema.h"

#define TESTDB_SQL_MAX 4096

/** A database file `path` (`dir`/t.db) in its own directory `dir`; `db` is NULL until
 *  testdb_open and after testdb_close. */
struct testdb {
    char dir[64], path[96];
    sqlite3 *db;
};

/** Make a fresh directory /tmp/sealtrack-`label`-XXXXXX and name `path` in it without
 *  creating the file (for code under test that creates it). Returns 0 or -1. */
static inline int testdb_mktemp(struct testdb *t, const char *label)
{
    t->db = NULL;
    int n = snprintf(t->dir, sizeof t->dir, "/tmp/sealtrack-%s-XXXXXX", label);
    if (n < 0 || (size_t)n >= sizeof t->dir || !mkdtemp(t->dir))
        return -1;
    n = snprintf(t->path, sizeof t->path, "%s/t.db", t->dir);
    return n < 0 || (size_t)n >= sizeof t->path ? -1 : 0;
}

/** testdb_mktemp, then open `path` with schema_open into `db`. Returns 0 or -1. */
static inline int testdb_open(struct testdb *t, const char *label)
{
    if (testdb_mktemp(t, label))
        return -1;
    return schema_open(t->path, 0, &t->db) ? -1 : 0;
}

/** Remove the database file `name` in the directory, with its -wal and -shm files. */
static inline void testdb_unlink(const struct testdb *t, const char *name)
{
    const char *const suffix[] = {"", "-wal", "-shm"};
    char p[160];
    for (size_t i = 0; i < sizeof suffix / sizeof suffix[0]; i++) {
        snprintf(p, sizeof p, "%s/%s%s", t->dir, name, suffix[i]);
        unlink(p);
    }
}

/** Close `db` (if open), remove t.db, its -wal and -shm files and the directory. Returns 0,
 *  or -1 when the directory could not be removed (something else was left in it). */
static inline int testdb_close(struct testdb *t)
{
    sqlite3_close(t->db);
    t->db = NULL;
    testdb_unlink(t, "t.db");
    return rmdir(t->dir) ? -1 : 0;
}

/* Format the SQL into `sql` (TESTDB_SQL_MAX bytes); fails the test when it does not fit. */
static inline void testdb__format(char *sql, const char *fmt, va_list ap)
{
    int n = vsnprintf(sql, TESTDB_SQL_MAX, fmt, ap);
    if (n < 0 || n >= TESTDB_SQL_MAX)
        fail_msg("SQL longer than %d bytes: %.80s...", TESTDB_SQL_MAX, fmt);
}

/* Prepare the formatted SQL and step to its first row; fails the test on an error or when
 * there is no row. Returns the statement, on that row (the caller finalizes). */
static inline sqlite3_stmt *testdb__row(sqlite3 *db, const char *fmt, va_list ap)
{
    char sql[TESTDB_SQL_MAX];
    testdb__format(sql, fmt, ap);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        char err[256];
        snprintf(err, sizeof err, "%s", rc == SQLITE_DONE ? "no row" : sqlite3_errmsg(db));
        sqlite3_finalize(st);
        fail_msg("%s: %s", sql, err);
    }
    return st;
}

/** Run the printf-style SQL (any number of statements) on `db`; fails the test with the SQL
 *  and SQLite's message when it does not succeed. */
static inline void testdb_exec(sqlite3 *db, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static inline void testdb_exec(sqlite3 *db, const char *fmt, ...)
{
    char sql[TESTDB_SQL_MAX];
    va_list ap;
    va_start(ap, fmt);
    testdb__format(sql, fmt, ap);
    va_end(ap);
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        char err[256];
        snprintf(err, sizeof err, "%s", msg ? msg : "?");
        sqlite3_free(msg);
        fail_msg("%s: %s", sql, err);
    }
}

/** The first column of the first row of the printf-style query, as an integer; fails the
 *  test when the query does not prepare or yields no row. */
static inline int64_t testdb_scalar(sqlite3 *db, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static inline int64_t testdb_scalar(sqlite3 *db, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sqlite3_stmt *st = testdb__row(db, fmt, ap);
    va_end(ap);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/** Copy the first column of the first row of the printf-style query into `out` (`cap`
 *  bytes, "(null)" for NULL); fails the test when the query does not prepare or yields no
 *  row. Returns `out`. */
static inline char *testdb_text(sqlite3 *db, char *out, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static inline char *testdb_text(sqlite3 *db, char *out, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sqlite3_stmt *st = testdb__row(db, fmt, ap);
    va_end(ap);
    const char *s = (const char *)sqlite3_column_text(st, 0);
    snprintf(out, cap, "%s", s ? s : "(null)");
    sqlite3_finalize(st);
    return out;
}

#endif
