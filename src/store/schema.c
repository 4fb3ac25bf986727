/* schema.c — versioned migrations (PRAGMA user_version counts the ones applied). */
#include "schema.h"

#include <stdio.h>

#include "../core/err.h"
#include "../core/log.h"

static const char *const migrations[] = {
    /* 1: devices, positions, events, raw frames, latest state */
    "CREATE TABLE devices ("
    "  id INTEGER PRIMARY KEY,"
    "  uid TEXT NOT NULL UNIQUE,"          /* the id the device sends */
    "  name TEXT, model TEXT, asset TEXT,"
    "  protocol TEXT,"
    "  tz_offset_min INTEGER,"             /* device-local time zone; NULL = server default */
    "  created_at INTEGER NOT NULL);"
    "CREATE TABLE positions ("
    "  id INTEGER PRIMARY KEY,"
    "  device_id INTEGER NOT NULL REFERENCES devices(id) ON DELETE CASCADE,"
    "  fix_time INTEGER NOT NULL, recv_time INTEGER NOT NULL,"
    "  protocol TEXT NOT NULL, msg_type TEXT,"
    "  valid INTEGER NOT NULL, lat REAL, lon REAL, altitude REAL, speed_kmh REAL, course REAL,"
    "  fix TEXT, satellites INTEGER, battery_pct INTEGER, battery_v REAL, charging INTEGER,"
    "  gsm_signal INTEGER, odometer_km REAL, lock_state TEXT,"
    "  mcc INTEGER, mnc INTEGER, lac INTEGER, cid INTEGER,"
    "  attrs TEXT, raw_id INTEGER);"
    "CREATE INDEX positions_device_time ON positions(device_id, fix_time);"
    "CREATE TABLE events ("
    "  id INTEGER PRIMARY KEY,"
    "  device_id INTEGER NOT NULL REFERENCES devices(id) ON DELETE CASCADE,"
    "  time INTEGER NOT NULL, recv_time INTEGER NOT NULL,"
    "  type TEXT NOT NULL, source TEXT, card TEXT, granted INTEGER, fence_id INTEGER, reason TEXT,"
    "  lat REAL, lon REAL, position_id INTEGER, raw_id INTEGER);"
    "CREATE INDEX events_device_time ON events(device_id, time);"
    "CREATE TABLE raw_frames ("
    "  id INTEGER PRIMARY KEY,"
    "  device_id INTEGER, device_uid TEXT,"
    "  recv_time INTEGER NOT NULL, protocol TEXT, transport TEXT, peer TEXT,"
    "  status TEXT NOT NULL, raw BLOB NOT NULL, decoded TEXT);"
    "CREATE INDEX raw_frames_device ON raw_frames(device_id, id);"
    "CREATE TABLE device_state ("
    "  device_id INTEGER PRIMARY KEY REFERENCES devices(id) ON DELETE CASCADE,"
    "  last_seen INTEGER NOT NULL, protocol TEXT, transport TEXT, peer TEXT,"
    "  fix_time INTEGER, valid INTEGER, lat REAL, lon REAL, speed_kmh REAL, course REAL,"
    "  battery_pct INTEGER, lock_state TEXT, position_id INTEGER);",
    /* 2: the vendor variant a device's protocol is read in (JT/T 808: jointech / standard) */
    "ALTER TABLE devices ADD COLUMN dialect TEXT;",
    /* 3: organisations, users, sessions, API tokens; devices belong to an organisation
     * (no REFERENCES: SQLite cannot add a non-NULL-default foreign key column; the API
     * refuses to delete an organisation that still has devices). Raw frames are found
     * by arrival time for retention. */
    "CREATE TABLE orgs ("
    "  id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
    "  retention_positions_days INTEGER, retention_raw_days INTEGER,"
    "  created_at INTEGER NOT NULL);"
    "INSERT INTO orgs(id, name, created_at) VALUES(1, 'default', CAST(strftime('%s','now') AS INTEGER));"
    "CREATE TABLE users ("
    "  id INTEGER PRIMARY KEY,"
    "  org_id INTEGER NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,"
    "  name TEXT NOT NULL UNIQUE, password_hash TEXT NOT NULL,"
    "  role TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'viewer')),"
    "  disabled INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL);"
    "CREATE TABLE sessions ("
    "  id INTEGER PRIMARY KEY,"
    "  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    "  hash BLOB NOT NULL UNIQUE, created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL,"
    "  peer TEXT);"
    "CREATE TABLE api_tokens ("
    "  id INTEGER PRIMARY KEY,"
    "  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    "  name TEXT NOT NULL, prefix TEXT NOT NULL, hash BLOB NOT NULL UNIQUE,"
    "  created_at INTEGER NOT NULL, last_used INTEGER, expires_at INTEGER, revoked_at INTEGER);"
    "ALTER TABLE devices ADD COLUMN org_id INTEGER NOT NULL DEFAULT 1;"
    "ALTER TABLE devices ADD COLUMN group_name TEXT;"
    "ALTER TABLE devices ADD COLUMN notes TEXT;"
    "CREATE INDEX devices_org ON devices(org_id, id);"
    "DROP INDEX raw_frames_device;"
    "CREATE INDEX raw_frames_device_time ON raw_frames(device_id, recv_time);",
};

int schema_version(void)
{
    return (int)(sizeof migrations / sizeof migrations[0]);
}

static int exec(sqlite3 *db, const char *path, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        st_log(ST_LOG_ERROR, "event=db_error db=\"%s\" reason=\"%s\"", path, msg ? msg : "?");
        sqlite3_free(msg);
        return ST_EIO;
    }
    return 0;
}

static int user_version(sqlite3 *db, int *out)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
        return ST_EIO;
    int rc = sqlite3_step(st) == SQLITE_ROW ? 0 : ST_EIO;
    *out = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return rc;
}

int schema_open(const char *path, int readonly, sqlite3 **out)
{
    sqlite3 *db = NULL;
    int flags = readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    if (sqlite3_open_v2(path, &db, flags | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        st_log(ST_LOG_ERROR, "event=db_open_failed db=\"%s\" reason=\"%s\"", path,
               db ? sqlite3_errmsg(db) : "out of memory");
        goto fail;
    }
    sqlite3_busy_timeout(db, 5000);
    if (exec(db, path, "PRAGMA foreign_keys=ON"))
        goto fail;
    int version = 0;
    if (user_version(db, &version)) {
        st_log(ST_LOG_ERROR, "event=db_open_failed db=\"%s\" reason=\"not a database\"", path);
        goto fail;
    }
    if (version > schema_version()) {
        st_log(ST_LOG_ERROR,
               "event=db_open_failed db=\"%s\" reason=\"schema %d is newer than this binary (%d)\"",
               path, version, schema_version());
        goto fail;
    }
    if (readonly) {
        if (version < schema_version()) {
            st_log(ST_LOG_ERROR, "event=db_open_failed db=\"%s\" reason=\"not initialised\"",
                   path);
            goto fail;
        }
        *out = db;
        return 0;
    }
    if (exec(db, path, "PRAGMA journal_mode=WAL"))
        goto fail;
    for (int v = version; v < schema_version(); v++) {
        char bump[64];
        snprintf(bump, sizeof bump, "PRAGMA user_version=%d", v + 1);
        if (exec(db, path, "BEGIN IMMEDIATE") || exec(db, path, migrations[v]) ||
            exec(db, path, bump) || exec(db, path, "COMMIT")) {
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
            goto fail;
        }
        st_log(ST_LOG_INFO, "event=db_migrated db=\"%s\" version=%d", path, v + 1);
    }
    *out = db;
    return 0;
fail:
    sqlite3_close(db);
    return ST_EIO;
}
