/* api_fuzz.c — libFuzzer target for the API's route handlers (src/api/routes_*.c and
 * api.c's input checks): routing, query strings and JSON bodies run through
 * api_call_run_for_test on an in-memory database restored before every input from a
 * seeded copy (two organisations, users of each role, devices with positions,
 * events and raw frames), so every input sees the same data.
 *
 * Input: byte 0 = caller (bits 0-1: system admin, admin, operator, viewer of
 * organisation 2; bit 2: the body is not declared JSON), then "METHOD /path?query",
 * a newline, and the body.
 *
 * Checks: no 5xx for anything a client sends; a 4xx is a JSON object with an
 * "error" string; a JSON answer parses as an object, a stream's events as JSON;
 * 204 has no body; extra headers are CRLF-terminated lines; the handler leaves no
 * transaction open and no statement unfinalized. Password hashing (argon2id, slow
 * by design) is skipped: logins, and users created or updated with a password. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sqlite3.h>

#include "src/api/api_internal.h"
#include "src/api/auth.h"
#include "src/core/config.h"
#include "src/core/log.h"
#include "src/store/schema.h"
#include "src/store/store.h"

static struct st_config cfg;
static struct api *api;
static sqlite3 *seeded, *db;

/* Organisation 1 holds the system administrator; organisation 2 one user per role. Device 2
 * (organisation 2) has positions (a drive, a stop, a drive; some invalid, without a fix or
 * optional values) over the last hour, events and raw frames; devices 1 (organisation 1)
 * and 3 (organisation 2) have nothing. */
static const char seed_sql[] =
    "INSERT INTO orgs(id, name, created_at) VALUES(2, 'acme', 1700000000);"
    "INSERT INTO users(id, org_id, name, password_hash, role, created_at) VALUES"
    " (1, 1, 'root', 'x', 'admin', 1700000000), (2, 2, 'boss', 'x', 'admin', 1700000000),"
    " (3, 2, 'op', 'x', 'operator', 1700000000), (4, 2, 'view', 'x', 'viewer', 1700000000);"
    "INSERT INTO devices(id, uid, org_id, name, protocol, dialect, created_at) VALUES"
    " (1, '860000000000001', 1, 'sys', 'jt600', NULL, 1700000000),"
    " (2, '860000000000002', 2, 'truck', 'jt808', 'jointech', 1700000000),"
    " (3, 'seal-3', 2, NULL, NULL, NULL, 1700000000);"
    "CREATE TEMP TABLE t(k INTEGER);"
    "WITH RECURSIVE n(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM n WHERE k < 59)"
    " INSERT INTO t SELECT k FROM n;"
    "INSERT INTO positions(device_id, fix_time, recv_time, protocol, valid, lat, lon, speed_kmh,"
    " course, satellites, battery_pct, fix, lock_state, attrs)"
    " SELECT 2, CAST(strftime('%s','now') AS INTEGER) - 3600 + k * 60,"
    " (CAST(strftime('%s','now') AS INTEGER) - 3600 + k * 60) * 1000, 'jt808', k % 7 != 3,"
    " CASE WHEN k % 7 = 3 THEN NULL ELSE 52.5 + (CASE WHEN k BETWEEN 20 AND 39 THEN 20 ELSE k END)"
    " * 0.001 END, CASE WHEN k % 7 = 3 THEN NULL ELSE 13.4 END,"
    " CASE WHEN k BETWEEN 20 AND 39 THEN 0 ELSE 40 END, 90, 8, CASE WHEN k % 3 THEN 80 END, '3d',"
    " CASE WHEN k % 2 THEN 'locked' END,"
    " CASE WHEN k % 5 THEN '{\"odometer_km\":' || k || '}' END FROM t;"
    "INSERT INTO events(device_id, time, recv_time, type, source, card, granted, reason, lat, lon)"
    " SELECT 2, CAST(strftime('%s','now') AS INTEGER) - 3600 + k * 300,"
    " (CAST(strftime('%s','now') AS INTEGER) - 3600 + k * 300) * 1000,"
    " CASE WHEN k % 2 THEN 'unlock' ELSE 'alarm' END, 'rfid', CASE WHEN k % 3 THEN '0012345' END,"
    " CASE WHEN k % 3 THEN k % 2 END, 'ok', CASE WHEN k % 4 THEN 52.5 END, 13.4 FROM t WHERE k < 12;"
    "INSERT INTO raw_frames(device_id, device_uid, recv_time, protocol, transport, peer, status,"
    " raw, decoded) SELECT 2, '860000000000002', (CAST(strftime('%s','now') AS INTEGER) - k) * 1000,"
    " 'jt808', 'tcp', '10.0.0.1:4000', 'ok', x'7e0200007e', '{\"lat\":52.5}' FROM t WHERE k < 5;"
    "INSERT INTO device_state(device_id, last_seen, protocol, transport, peer, fix_time, valid, lat,"
    " lon, speed_kmh, course, battery_pct, lock_state) VALUES(2,"
    " CAST(strftime('%s','now') AS INTEGER) * 1000, 'jt808', 'tcp', '10.0.0.1:4000',"
    " CAST(strftime('%s','now') AS INTEGER), 1, 52.5, 13.4, 40, 90, 80, 'locked');"
    "INSERT INTO api_tokens(user_id, name, prefix, hash, created_at) VALUES"
    " (3, 'ci', 'abcd', x'00', 1700000000), (1, 'root', 'efgh', x'01', 1700000000);"
    /* seal operations: a fence, a shipment with its custody head, a webhook, a rule, a command */
    "INSERT INTO geofences(id, org_id, name, kind, shape, points, radius_m, dwell_s, created_at,"
    " updated_at) VALUES(1, 2, 'depot', 'allowed', 'circle', '[[52.5, 13.4]]', 500, 0, 1700000000,"
    " 1700000000);"
    "INSERT INTO shipments(id, org_id, reference, device_id, status, created_at) VALUES"
    " (1, 2, 'PO-1', 2, 'open', 1700000000);"
    "INSERT INTO shipment_unlock_zones(shipment_id, fence_id) VALUES(1, 1);"
    "INSERT INTO webhooks(id, org_id, name, url, secret, created_at) VALUES"
    " (1, 2, 'ops', 'http://127.0.0.1:9/hook', 'secret-secret-secret', 1700000000);"
    "INSERT INTO alert_rules(id, org_id, name, types, webhook_id, created_at) VALUES"
    " (1, 2, 'tamper', '[\"tamper\"]', 1, 1700000000);"
    "INSERT INTO commands(org_id, device_id, type, params, state, created_at, expires_at) VALUES"
    " (2, 2, 'reboot', '{}', 'queued', 1700000000, 1800000000);"
    "DROP TABLE t;";

static void fail(const char *what, const struct api_call *c)
{
    fprintf(stderr, "api_fuzz: %s (status %d, error \"%s\", body %.*s)\n", what, c->status,
            c->error, (int)c->body.len, c->body.data ? (const char *)c->body.data : "");
    abort();
}

static json_t *json_of(const char *text, size_t len)
{
    json_error_t err;
    return json_loadb(text, len, 0, &err);
}

/* May this input run? Not when it would hash or verify a password. */
static bool affordable(const char *method, const char *path, const char *body, size_t len)
{
    if (strcmp(path, "/api/session") == 0 && strcmp(method, "POST") == 0)
        return false;
    if (strncmp(path, "/api/users", 10) != 0)
        return true;
    json_t *j = json_of(body, len);
    bool hashes = json_object_get(j, "password") != NULL;
    json_decref(j);
    return !hashes;
}

static void check_answer(struct api_call *c)
{
    buf_append(&c->body, "", 1); /* a C string for the checks */
    c->body.len--;
    const char *body = (const char *)c->body.data;
    if (c->status < 200 || c->status > 499)
        fail("not 2xx-4xx for client input", c);
    if (c->headers_len >= sizeof c->headers)
        fail("headers overflow", c);
    for (const char *h = c->headers, *end = c->headers + c->headers_len; h < end;) {
        const char *eol = strstr(h, "\r\n");
        const char *colon = memchr(h, ':', eol ? (size_t)(eol - h) : 0);
        if (!eol || eol >= end || !colon || colon == h || memchr(h, '\n', (size_t)(eol - h)))
            fail("bad extra header line", c);
        h = eol + 2;
    }
    if (c->kind == CALL_METRICS)
        return; /* rendered on the loop */
    if (c->kind == CALL_STREAM) { /* "event: state\ndata: {…}\n\n" per device */
        for (const char *p = body; (p = strstr(p, "data: ")) != NULL;) {
            const char *nl = strchr(p, '\n');
            json_t *j = nl ? json_of(p + 6, (size_t)(nl - p - 6)) : NULL;
            if (!json_is_object(j))
                fail("stream event not a JSON object", c);
            json_decref(j);
            p = nl;
        }
        return;
    }
    if (c->status == 204) {
        if (c->body.len)
            fail("204 with a body", c);
        return;
    }
    bool is_json = c->content_type && (strcmp(c->content_type, "application/json") == 0 ||
                                       strcmp(c->content_type, "application/geo+json") == 0);
    if (c->status >= 400 && (!c->content_type || strcmp(c->content_type, "application/json") != 0))
        fail("4xx not JSON", c);
    if (!is_json)
        return;
    json_t *j = json_of(body, c->body.len);
    if (!json_is_object(j) || (c->status >= 400 && !json_is_string(json_object_get(j, "error"))))
        fail("answer not a JSON object (with \"error\" for a 4xx)", c);
    json_decref(j);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    st_log_set_level(ST_LOG_ERROR); /* a database error (5xx) still says why */
    st_config_defaults(&cfg);
    static char dir[] = "/tmp/api_fuzz.XXXXXX";
    if (!mkdtemp(dir))
        abort();
    snprintf(cfg.db, sizeof cfg.db, "%s/store.db", dir);
    /* The store only takes device-change notices here; it needs a file of its own. */
    struct store_opts so = {.path = cfg.db, .batch_max = 16, .queue_max = 16,
                            .retention_interval_s = 86400};
    struct store *store;
    char *err = NULL;
    if (auth_init() || store_open(&so, &store) || schema_open(":memory:", 0, &seeded) ||
        schema_open(":memory:", 0, &db) ||
        sqlite3_exec(seeded, seed_sql, NULL, NULL, &err) != SQLITE_OK) {
        fprintf(stderr, "api_fuzz: setup failed: %s\n", err ? err : "");
        abort();
    }
    api = api_new_for_test(&cfg, store);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct api_principal callers[] = {
        {.user_id = 1, .org_id = 1, .role = ROLE_ADMIN, .system_admin = true},
        {.user_id = 2, .org_id = 2, .role = ROLE_ADMIN},
        {.user_id = 3, .org_id = 2, .role = ROLE_OPERATOR},
        {.user_id = 4, .org_id = 2, .role = ROLE_VIEWER},
    };
    if (size < 1 || size > 16384)
        return 0;
    /* "METHOD target\nbody" as C strings: the line ends at the newline or a NUL */
    char *text = malloc(size);
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    char *nl = memchr(text, '\n', size - 1);
    const char *body = nl ? nl + 1 : "";
    size_t body_len = nl ? (size_t)(text + size - 1 - body) : 0;
    if (nl)
        *nl = '\0';
    char *sp = strchr(text, ' ');
    if (!sp || sp[1] != '/')
        goto out; /* http.c refuses a target that is not an absolute path */
    *sp = '\0';
    char *query = strchr(sp + 1, '?');
    if (query)
        *query++ = '\0';
    const char *path = sp + 1;
    if (strspn(text, "ABCDEFGHIJKLMNOPQRSTUVWXYZ-") != strlen(text) || !text[0] ||
        !affordable(text, path, body, body_len))
        goto out; /* methods come from llhttp's table: tokens in capitals */
    struct http_request req = {.method = text, .path = path, .query = query ? query : "",
                               .body = body, .body_len = body_len, .peer = "192.0.2.1",
                               .n_headers = 1};
    req.headers[0] = (struct http_header){
        "content-type", data[0] & 4 ? "text/plain" : "application/json; charset=utf-8"};

    sqlite3_backup *b = sqlite3_backup_init(db, "main", seeded, "main");
    if (!b || sqlite3_backup_step(b, -1) != SQLITE_DONE || sqlite3_backup_finish(b) != SQLITE_OK)
        abort();
    struct api_call c = {.req = &req, .who = callers[data[0] & 3], .db = db};
    api_call_run_for_test(api, &c);
    check_answer(&c);
    if (!sqlite3_get_autocommit(db) || sqlite3_next_stmt(db, NULL))
        fail("a transaction left open or a statement not finalized", &c);
    json_decref(c.in);
    buf_free(&c.body);
out:
    free(text);
    return 0;
}
