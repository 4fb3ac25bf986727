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
    /* 4: seal operations (docs/seals.md): geofences and the per-device state of their
     * evaluation, seal state, shipments, the hash-chained custody log (append-only: updates
     * and deletes are refused by triggers; verification catches edits made around them),
     * alert rules, webhooks and their delivery log, remote commands and per-model command
     * templates. Server-computed events carry source 'server' and JSON detail. */
    "ALTER TABLE events ADD COLUMN detail TEXT;"
    "CREATE TABLE geofences ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"  /* events keep fence ids: never reused */
    "  org_id INTEGER NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,"
    "  name TEXT NOT NULL,"
    "  kind TEXT NOT NULL CHECK (kind IN ('allowed', 'forbidden', 'control_point')),"
    "  shape TEXT NOT NULL CHECK (shape IN ('circle', 'polygon', 'corridor')),"
    "  points TEXT NOT NULL,"              /* JSON [[lat, lon], ...]; a circle has its centre */
    "  radius_m REAL,"                     /* circle: radius; corridor: distance either side */
    "  dwell_s INTEGER NOT NULL DEFAULT 0,"
    "  all_devices INTEGER NOT NULL DEFAULT 1,"
    "  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);"
    "CREATE INDEX geofences_org ON geofences(org_id, id);"
    "CREATE TABLE geofence_targets ("
    "  fence_id INTEGER NOT NULL REFERENCES geofences(id) ON DELETE CASCADE,"
    "  device_id INTEGER REFERENCES devices(id) ON DELETE CASCADE,"
    "  group_name TEXT,"
    "  CHECK ((device_id IS NULL) <> (group_name IS NULL)));"
    "CREATE INDEX geofence_targets_fence ON geofence_targets(fence_id);"
    "CREATE TABLE geofence_state ("        /* rows only while inside or reported inside */
    "  device_id INTEGER NOT NULL REFERENCES devices(id) ON DELETE CASCADE,"
    "  fence_id INTEGER NOT NULL REFERENCES geofences(id) ON DELETE CASCADE,"
    "  inside INTEGER NOT NULL, since INTEGER NOT NULL, reported INTEGER NOT NULL,"
    "  PRIMARY KEY (device_id, fence_id)) WITHOUT ROWID;"
    "CREATE TABLE seal_state ("
    "  device_id INTEGER PRIMARY KEY REFERENCES devices(id) ON DELETE CASCADE,"
    "  state TEXT NOT NULL CHECK (state IN ('sealed', 'unsealed', 'violated')),"
    "  since INTEGER NOT NULL, event_id INTEGER, reason TEXT);"
    "CREATE TABLE shipments ("
    "  id INTEGER PRIMARY KEY,"
    "  org_id INTEGER NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,"
    "  reference TEXT NOT NULL,"
    "  device_id INTEGER REFERENCES devices(id) ON DELETE SET NULL,"
    "  origin TEXT, destination TEXT,"
    "  origin_fence_id INTEGER REFERENCES geofences(id) ON DELETE SET NULL,"
    "  destination_fence_id INTEGER REFERENCES geofences(id) ON DELETE SET NULL,"
    "  corridor_fence_id INTEGER REFERENCES geofences(id) ON DELETE SET NULL,"
    "  status TEXT NOT NULL CHECK (status IN ('open', 'closed', 'cancelled')),"
    "  notes TEXT, created_by INTEGER, created_at INTEGER NOT NULL, closed_at INTEGER,"
    "  custody_seq INTEGER NOT NULL DEFAULT 0, custody_head TEXT,"
    "  UNIQUE (org_id, reference));"
    "CREATE UNIQUE INDEX shipments_open_device ON shipments(device_id) WHERE status = 'open';"
    "CREATE TABLE shipment_unlock_zones ("
    "  shipment_id INTEGER NOT NULL REFERENCES shipments(id) ON DELETE CASCADE,"
    "  fence_id INTEGER NOT NULL REFERENCES geofences(id) ON DELETE CASCADE,"
    "  PRIMARY KEY (shipment_id, fence_id)) WITHOUT ROWID;"
    "CREATE TABLE shipment_cards ("
    "  shipment_id INTEGER NOT NULL REFERENCES shipments(id) ON DELETE CASCADE,"
    "  card TEXT NOT NULL, holder TEXT,"
    "  PRIMARY KEY (shipment_id, card)) WITHOUT ROWID;"
    "CREATE TABLE custody_log ("
    "  id INTEGER PRIMARY KEY,"
    "  shipment_id INTEGER NOT NULL REFERENCES shipments(id),"
    "  seq INTEGER NOT NULL, time INTEGER NOT NULL, recorded_at INTEGER NOT NULL,"
    "  kind TEXT NOT NULL, actor TEXT, source TEXT, device_id INTEGER,"
    "  lat REAL, lon REAL, event_id INTEGER, command_id INTEGER, detail TEXT,"
    "  prev_hash TEXT NOT NULL, hash TEXT NOT NULL,"
    "  UNIQUE (shipment_id, seq));"
    "CREATE TRIGGER custody_log_no_update BEFORE UPDATE ON custody_log"
    "  BEGIN SELECT RAISE(ABORT, 'custody_log is append-only'); END;"
    "CREATE TRIGGER custody_log_no_delete BEFORE DELETE ON custody_log"
    "  BEGIN SELECT RAISE(ABORT, 'custody_log is append-only'); END;"
    "CREATE TABLE webhooks ("
    "  id INTEGER PRIMARY KEY,"
    "  org_id INTEGER NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,"
    "  name TEXT NOT NULL, url TEXT NOT NULL, secret TEXT NOT NULL,"
    "  enabled INTEGER NOT NULL DEFAULT 1, created_at INTEGER NOT NULL);"
    "CREATE TABLE alert_rules ("
    "  id INTEGER PRIMARY KEY,"
    "  org_id INTEGER NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,"
    "  name TEXT NOT NULL,"
    "  types TEXT NOT NULL,"               /* JSON array of alert types */
    "  device_id INTEGER REFERENCES devices(id) ON DELETE CASCADE,"
    "  group_name TEXT,"
    "  shipment_id INTEGER REFERENCES shipments(id) ON DELETE CASCADE,"
    "  webhook_id INTEGER REFERENCES webhooks(id) ON DELETE SET NULL,"
    "  stream INTEGER NOT NULL DEFAULT 1,"
    "  offline_minutes INTEGER, speed_kmh REAL, battery_pct INTEGER,"
    "  enabled INTEGER NOT NULL DEFAULT 1, created_at INTEGER NOT NULL);"
    "CREATE TABLE alerts ("
    "  id INTEGER PRIMARY KEY,"
    "  org_id INTEGER NOT NULL, rule_id INTEGER, device_id INTEGER, shipment_id INTEGER,"
    "  type TEXT NOT NULL, time INTEGER NOT NULL, created_at INTEGER NOT NULL,"
    "  event_id INTEGER, fence_id INTEGER, lat REAL, lon REAL, detail TEXT);"
    "CREATE INDEX alerts_org ON alerts(org_id, id);"
    "CREATE INDEX alerts_rule_device ON alerts(rule_id, device_id, type, time);"
    "CREATE TABLE webhook_deliveries ("
    "  id INTEGER PRIMARY KEY,"
    "  alert_id INTEGER NOT NULL REFERENCES alerts(id) ON DELETE CASCADE,"
    "  webhook_id INTEGER NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,"
    "  state TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  next_attempt_at INTEGER NOT NULL,"  /* ms */
    "  last_status INTEGER, last_error TEXT,"
    "  created_at INTEGER NOT NULL, delivered_at INTEGER);"
    "CREATE INDEX webhook_deliveries_pending ON webhook_deliveries(next_attempt_at)"
    "  WHERE state = 'pending';"
    "CREATE INDEX webhook_deliveries_hook ON webhook_deliveries(webhook_id, id);"
    "CREATE TABLE commands ("
    "  id INTEGER PRIMARY KEY,"
    "  org_id INTEGER NOT NULL,"
    "  device_id INTEGER NOT NULL REFERENCES devices(id) ON DELETE CASCADE,"
    "  type TEXT NOT NULL, params TEXT,"
    "  state TEXT NOT NULL CHECK (state IN"
    "    ('queued', 'sent', 'confirmed', 'failed', 'expired', 'refused', 'cancelled')),"
    "  created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL,"
    "  sent_at INTEGER, done_at INTEGER,"
    "  user_id INTEGER, shipment_id INTEGER,"
    "  match_key TEXT,"                    /* how the device's answer names it */
    "  result TEXT, attempts INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX commands_device_state ON commands(device_id, state, id);"
    "CREATE INDEX commands_due ON commands(expires_at) WHERE state IN ('queued', 'sent');"
    "CREATE TABLE command_templates ("
    "  id INTEGER PRIMARY KEY,"
    "  org_id INTEGER NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,"
    "  model TEXT NOT NULL, type TEXT NOT NULL, template TEXT NOT NULL,"
    "  enabled INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL,"
    "  UNIQUE (org_id, model, type));",
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

int schema_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st)
{
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL) == SQLITE_OK)
        return 0;
    st_log(ST_LOG_ERROR, "event=db_prepare_failed reason=\"%s\" sql=\"%.60s\"",
           sqlite3_errmsg(db), sql);
    return ST_EIO;
}

int schema_step(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc == SQLITE_DONE || rc == SQLITE_ROW)
        return 0;
    sqlite3 *db = sqlite3_db_handle(st);
    st_log(ST_LOG_ERROR, "event=db_write_failed db=\"%s\" reason=\"%s\"",
           sqlite3_db_filename(db, "main"), sqlite3_errmsg(db));
    return ST_EIO;
}
