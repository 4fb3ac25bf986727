/* commands_test.c — remote commands against a real SQLite file and the real protocol
 * encoders and decoders: a JT701D unlock goes out as (P43,888888) and the device's real
 * answer frame confirms or fails it; the JT709A (JT/T 808) has no unlock until an
 * operator enables a template; a JT/T 808 reboot is matched by the serial of the 0x0001
 * general response; lock and bad arguments are refused; TTLs expire; unlocks outside the
 * open shipment's unlock zones are stored as refused with a custody entry; and the API
 * routes answer with masked secrets, 403/400/422/404/409 as documented. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <sqlite3.h>

#include "../../../src/api/api_internal.h"
#include "../../../src/core/config.h"
#include "../../../src/core/err.h"
#include "../../../src/core/log.h"
#include "../../../src/domain/commands.h"
#include "../../../src/domain/custody.h"
#include "../../../src/proto/jt808.h"
#include "../../../src/proto/proto.h"
#include "../testdb.h"

#define JT701D 1 /* device rows (seed) */
#define JT709A 2
#define NEVER_SEEN 3
#define OTHER_ORG 4
#define JT701D_UID "8000620011"
#define JT709A_UID "794308010679"
#define NOW 1780000000

static struct testdb tdb;

static const char seed_sql[] =
    "INSERT INTO orgs(id, name, created_at) VALUES(2, 'other', 0);"
    "INSERT INTO users(id, org_id, name, password_hash, role, created_at) VALUES"
    " (1, 1, 'alice', 'x', 'operator', 0), (2, 1, 'root', 'x', 'admin', 0),"
    " (3, 1, 'vic', 'x', 'viewer', 0), (4, 2, 'eve', 'x', 'admin', 0);"
    "INSERT INTO devices(id, uid, org_id, protocol, model, created_at) VALUES"
    " (1, '" JT701D_UID "', 1, 'jt600', 'JT701D', 0),"
    " (2, '" JT709A_UID "', 1, 'jt808', 'JT709A', 0),"
    " (3, 'seal-3', 1, NULL, 'JT701D', 0),"
    " (4, 'other-4', 2, 'jt600', 'JT701D', 0);"
    "INSERT INTO device_state(device_id, last_seen, fix_time, valid, lat, lon) VALUES"
    " (1, 1779999990, 1779999980, 1, 47.0001, 8.0001);"
    "INSERT INTO geofences(id, org_id, name, kind, shape, points, radius_m, created_at,"
    " updated_at) VALUES (1, 1, 'Depot A', 'control_point', 'circle', '[[47.0, 8.0]]', 500, 0,"
    " 0), (2, 1, 'Port B', 'control_point', 'circle', '[[51.9, 4.1]]', 800, 0, 0);";

static int setup(void **state)
{
    (void)state;
    assert_int_equal(testdb_open(&tdb, "commands"), 0);
    testdb_exec(tdb.db, "%s", seed_sql);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    assert_true(sqlite3_get_autocommit(tdb.db));  /* no transaction left open */
    assert_null(sqlite3_next_stmt(tdb.db, NULL)); /* no statement left unfinalized */
    assert_int_equal(testdb_close(&tdb), 0);
    return 0;
}

/* A text column of command id (copied). */
static const char *column(int64_t id, const char *col)
{
    static char out[512];
    return testdb_text(tdb.db, out, sizeof out, "SELECT %s FROM commands WHERE id = %lld", col,
                       (long long)id);
}

struct outcome {
    int rc;
    int64_t id;
    const char *field;
    char err[512];
};

static struct outcome create(struct command_request req)
{
    struct outcome o;
    req.org_id = req.org_id ? req.org_id : 1;
    req.user_id = 1;
    req.user_name = "alice";
    req.now = req.now ? req.now : NOW;
    o.rc = commands_create(tdb.db, &req, &o.id, &o.field, o.err, sizeof o.err);
    return o;
}

static int take(int64_t device, const struct proto_ops *p, struct proto_ctx *ctx, int64_t now,
                struct command_wire *out, size_t cap)
{
    return commands_take(tdb.db, device, p, ctx, now, out, cap);
}

static struct report reports[PROTO_MAX_REPORTS];

/* Decode a device frame with the real decoder and hand its report to commands_on_answer in a
 * transaction, as the writer does. */
static int answer(const struct proto_ops *p, int64_t device, int64_t shipment, const uint8_t *frame,
                  size_t len, struct domain_event *ev)
{
    struct proto_ctx ctx = {.now = NOW};
    struct proto_reply reply;
    size_t n = 0;
    int rc = p->decode(&ctx, frame, len, reports, PROTO_MAX_REPORTS, &n, &reply);
    assert_true(rc == 0 || rc == ST_EUNSUPPORTED);
    assert_int_equal(n, 1);
    testdb_exec(tdb.db, "BEGIN IMMEDIATE");
    int m = commands_on_answer(tdb.db, device, shipment, &reports[0], NOW + 5, ev);
    testdb_exec(tdb.db, "COMMIT");
    return m;
}

static int answer_text(int64_t device, int64_t shipment, const char *text, struct domain_event *ev)
{
    return answer(&proto_jt600, device, shipment, (const uint8_t *)text, strlen(text), ev);
}

/* A JT/T 808 0x0001 general response of the JT709A to server serial `serial`. */
static int answer_0001(uint16_t serial, uint16_t msg_id, uint8_t result, struct domain_event *ev)
{
    uint8_t body[5] = {(uint8_t)(serial >> 8), (uint8_t)serial, (uint8_t)(msg_id >> 8),
                       (uint8_t)msg_id, result};
    uint8_t frame[64];
    ptrdiff_t n =
        jt808_encode_frame(0x0001, JT709A_UID, 77, body, sizeof body, frame, sizeof frame);
    assert_true(n > 0);
    return answer(&proto_jt808, JT709A, 0, frame, (size_t)n, ev);
}

/* ---- JT701D (JT600 family) -------------------------------------------------- */

static void test_jt701d_unlock_confirmed(void **state)
{
    (void)state;
    struct outcome o = create(
        (struct command_request){.device_id = JT701D, .type = "unlock", .password = "888888"});
    assert_int_equal(o.rc, COMMAND_QUEUED);
    assert_string_equal(column(o.id, "state"), "queued");
    assert_int_equal(
        testdb_scalar(tdb.db, "SELECT expires_at FROM commands WHERE id = %lld", (long long)o.id),
        NOW + COMMAND_TTL_DEFAULT_S);
    /* the password waits in the row to be sent, and is masked for the API */
    assert_string_equal(column(o.id, "params"), "{\"password\":\"888888\"}");
    assert_string_equal(column(o.id, COMMAND_PARAMS_MASKED("params")), "{\"password\":\"***\"}");
    assert_true(commands_has_queued(tdb.db, JT701D, NOW));

    struct proto_ctx ctx = {.now = NOW};
    struct command_wire w[COMMANDS_PER_TAKE];
    assert_int_equal(take(JT701D, &proto_jt600, &ctx, NOW + 1, w, COMMANDS_PER_TAKE), 1);
    assert_int_equal(w[0].id, o.id);
    assert_int_equal(w[0].len, strlen("(P43,888888)"));
    assert_memory_equal(w[0].bytes, "(P43,888888)", w[0].len);
    assert_string_equal(column(o.id, "state"), "sent");
    assert_string_equal(column(o.id, "match_key"), "jt600:P43");
    assert_string_equal(column(o.id, "attempts"), "1");
    assert_string_equal(column(o.id, "sent_at"), "1780000001");
    assert_false(commands_has_queued(tdb.db, JT701D, NOW));
    assert_int_equal(take(JT701D, &proto_jt600, &ctx, NOW + 2, w, COMMANDS_PER_TAKE), 0);

    /* a heartbeat and a position are not answers */
    struct domain_event ev;
    assert_int_equal(answer_text(JT701D, 0, "(" JT701D_UID ",@JT)", &ev), 0);
    /* the device's answer: unlocked, 0 wrong tries */
    assert_int_equal(answer_text(JT701D, 0, "(" JT701D_UID ",P43,1,0)", &ev), 1);
    assert_null(ev.type);
    assert_string_equal(column(o.id, "state"), "confirmed");
    assert_string_equal(column(o.id, "result"), "1,0");
    assert_string_equal(column(o.id, "done_at"), "1780000005");
    /* done: the password is not kept */
    assert_string_equal(column(o.id, "params"), "{\"password\":\"***\"}");
    /* a second answer matches nothing */
    assert_int_equal(answer_text(JT701D, 0, "(" JT701D_UID ",P43,1,0)", &ev), 0);
}

static void test_jt701d_wrong_password_fails(void **state)
{
    (void)state;
    struct outcome o = create(
        (struct command_request){.device_id = JT701D, .type = "unlock", .password = "123456"});
    assert_int_equal(o.rc, COMMAND_QUEUED);
    struct proto_ctx ctx = {.now = NOW};
    struct command_wire w[2];
    assert_int_equal(take(JT701D, &proto_jt600, &ctx, NOW, w, 2), 1);
    struct domain_event ev;
    assert_int_equal(answer_text(JT701D, 0, "(" JT701D_UID ",P43,0,1)", &ev), 1);
    assert_string_equal(column(o.id, "state"), "failed");
    assert_string_equal(column(o.id, "result"), "0,1");
    assert_non_null(ev.type);
    assert_string_equal(ev.type, "command_failed");
    assert_int_equal(ev.device_id, JT701D);
    assert_int_equal(ev.org_id, 1);
    assert_string_equal(ev.device_uid, JT701D_UID);
    assert_non_null(ev.detail);
    json_t *d = json_loads(ev.detail, 0, NULL);
    assert_non_null(d);
    assert_int_equal(json_integer_value(json_object_get(d, "command_id")), o.id);
    assert_string_equal(json_string_value(json_object_get(d, "type")), "unlock");
    json_decref(d);
}

/* Dynamic-password unlock: (P52,3,code), answered (ID,P52,3,1,0); the device's own P52,2
 * announcements of a new password are not answers. Commands answered in order. */
static void test_jt701d_dynamic_unlock_and_order(void **state)
{
    (void)state;
    struct outcome a = create(
        (struct command_request){.device_id = JT701D, .type = "unlock_dynamic", .code = "386531"});
    struct outcome b = create(
        (struct command_request){.device_id = JT701D, .type = "unlock_dynamic", .code = "386532"});
    struct outcome r = create((struct command_request){.device_id = JT701D, .type = "reboot"});
    assert_int_equal(a.rc, COMMAND_QUEUED);
    assert_int_equal(b.rc, COMMAND_QUEUED);
    assert_int_equal(r.rc, COMMAND_QUEUED);
    struct proto_ctx ctx = {.now = NOW};
    struct command_wire w[2];
    /* the cap holds: two now, the third on the next take */
    assert_int_equal(take(JT701D, &proto_jt600, &ctx, NOW, w, 2), 2);
    assert_memory_equal(w[0].bytes, "(P52,3,386531)", w[0].len);
    assert_memory_equal(w[1].bytes, "(P52,3,386532)", w[1].len);
    assert_string_equal(column(r.id, "state"), "queued");
    assert_int_equal(take(JT701D, &proto_jt600, &ctx, NOW, w, 2), 1);
    assert_memory_equal(w[0].bytes, "(P15)", w[0].len);
    assert_string_equal(column(r.id, "match_key"), "jt600:P15");

    struct domain_event ev;
    assert_int_equal(answer_text(JT701D, 0, "(" JT701D_UID ",P52,2,654321)", &ev), 0);
    assert_int_equal(answer_text(JT701D, 0, "(" JT701D_UID ",P52,3,1,0)", &ev), 1);
    assert_string_equal(column(a.id, "state"), "confirmed");
    assert_string_equal(column(b.id, "state"), "sent");
    assert_int_equal(answer_text(JT701D, 0, "(" JT701D_UID ",P52,3,0,1)", &ev), 1);
    assert_string_equal(column(b.id, "state"), "failed");
    assert_string_equal(column(b.id, "result"), "3,0,1");
    assert_string_equal(ev.type, "command_failed");
}

/* ---- JT709A (JT/T 808) -------------------------------------------------------- */

static void test_jt709a_unlock_needs_template(void **state)
{
    (void)state;
    struct command_request req = {.device_id = JT709A, .type = "unlock", .password = "888888"};
    struct outcome o = create(req);
    assert_int_equal(o.rc, COMMAND_UNSUPPORTED);
    assert_string_equal(o.err, "protocol jt808 (model JT709A) has no unlock command; an operator"
                               " can configure a command template for this model");
    assert_int_equal(o.id, 0);
    assert_int_equal(testdb_scalar(tdb.db, "SELECT count(*) FROM commands"), 0);

    /* templates ship disabled: a disabled one changes nothing */
    testdb_exec(tdb.db, "INSERT INTO command_templates(org_id, model, type, template, created_at)"
                        " VALUES(1, 'JT709A', 'unlock', 'operator text {password} for {uid}', 0)");
    assert_int_equal(create(req).rc, COMMAND_UNSUPPORTED);
    /* another organisation's enabled template is not ours */
    testdb_exec(tdb.db,
                "INSERT INTO command_templates(org_id, model, type, template, enabled, created_at)"
                " VALUES(2, 'JT709A', 'unlock', 'theirs {password}', 1, 0)");
    assert_int_equal(create(req).rc, COMMAND_UNSUPPORTED);

    testdb_exec(tdb.db, "UPDATE command_templates SET enabled = 1 WHERE org_id = 1");
    /* the template's placeholders are what is required now */
    o = create((struct command_request){.device_id = JT709A, .type = "unlock"});
    assert_int_equal(o.rc, COMMAND_INVALID);
    assert_string_equal(o.field, "password");
    o = create(
        (struct command_request){.device_id = JT709A, .type = "unlock", .password = "88(888"});
    assert_int_equal(o.rc, COMMAND_INVALID);
    assert_string_equal(o.field, "password");

    o = create(req);
    assert_int_equal(o.rc, COMMAND_QUEUED);
    /* the rendered text holds the password: masked too */
    assert_string_equal(column(o.id, COMMAND_PARAMS_MASKED("params")),
                        "{\"password\":\"***\",\"template_id\":1,\"rendered\":\"***\"}");

    struct proto_ctx ctx = {.now = NOW, .server_serial = 41};
    struct command_wire w[1];
    assert_int_equal(take(JT709A, &proto_jt808, &ctx, NOW, w, 1), 1);
    /* a 0x8300 text message (flag 0x01, then the text) with serial 41 */
    const char text[] = "operator text 888888 for " JT709A_UID;
    uint8_t body[64], want[128];
    body[0] = 0x01;
    memcpy(body + 1, text, sizeof text - 1);
    ptrdiff_t n = jt808_encode_frame(0x8300, JT709A_UID, 41, body, sizeof text, want, sizeof want);
    assert_true(n > 0);
    assert_int_equal(w[0].len, (size_t)n);
    assert_memory_equal(w[0].bytes, want, w[0].len);
    assert_int_equal(ctx.server_serial, 42);
    assert_string_equal(column(o.id, "match_key"), "jt808:41");

    struct domain_event ev;
    assert_int_equal(answer_0001(41, 0x8300, 0, &ev), 1);
    assert_string_equal(column(o.id, "state"), "confirmed");
    assert_string_equal(column(o.id, "result"), "device answered 0 (success)");
}

/* A "hex:" template is a binary JT/T 808 message: id, then body, after substitution. */
static void test_jt709a_hex_template(void **state)
{
    (void)state;
    testdb_exec(tdb.db,
                "INSERT INTO command_templates(org_id, model, type, template, enabled, created_at)"
                " VALUES(1, 'JT709A', 'unlock_dynamic', 'hex:8300{code}', 1, 0)");
    struct outcome o = create((struct command_request){
        .device_id = JT709A, .type = "unlock_dynamic", .code = "01414243"});
    assert_int_equal(o.rc, COMMAND_QUEUED);
    /* a value that makes the hex invalid is refused when queued, not when sent */
    struct outcome bad = create(
        (struct command_request){.device_id = JT709A, .type = "unlock_dynamic", .code = "zz"});
    assert_int_equal(bad.rc, COMMAND_INVALID);
    assert_string_equal(bad.field, "template");
    struct proto_ctx ctx = {.now = NOW, .server_serial = 9};
    struct command_wire w[1];
    assert_int_equal(take(JT709A, &proto_jt808, &ctx, NOW, w, 1), 1);
    const uint8_t body[] = {0x01, 'A', 'B', 'C'};
    uint8_t want[64];
    ptrdiff_t n = jt808_encode_frame(0x8300, JT709A_UID, 9, body, sizeof body, want, sizeof want);
    assert_int_equal(w[0].len, (size_t)n);
    assert_memory_equal(w[0].bytes, want, w[0].len);
}

static void test_jt808_reboot_by_serial(void **state)
{
    (void)state;
    struct outcome a = create((struct command_request){.device_id = JT709A, .type = "reboot"});
    struct outcome b = create((struct command_request){.device_id = JT709A, .type = "reboot"});
    assert_int_equal(a.rc, COMMAND_QUEUED);
    assert_int_equal(b.rc, COMMAND_QUEUED);
    struct proto_ctx ctx = {.now = NOW, .server_serial = 7};
    struct command_wire w[COMMANDS_PER_TAKE];
    assert_int_equal(take(JT709A, &proto_jt808, &ctx, NOW, w, COMMANDS_PER_TAKE), 2);
    const uint8_t reset[] = {0x04}; /* 0x8105 terminal control: reset */
    uint8_t want[64];
    ptrdiff_t n = jt808_encode_frame(0x8105, JT709A_UID, 7, reset, 1, want, sizeof want);
    assert_int_equal(w[0].len, (size_t)n);
    assert_memory_equal(w[0].bytes, want, w[0].len);
    n = jt808_encode_frame(0x8105, JT709A_UID, 8, reset, 1, want, sizeof want);
    assert_memory_equal(w[1].bytes, want, w[1].len);
    assert_string_equal(column(a.id, "match_key"), "jt808:7");
    assert_string_equal(column(b.id, "match_key"), "jt808:8");
    assert_int_equal(ctx.server_serial, 9);

    struct domain_event ev;
    assert_int_equal(answer_0001(99, 0x8105, 0, &ev), 0); /* no command with serial 99 */
    assert_int_equal(answer_0001(8, 0x8105, 1, &ev), 1);
    assert_string_equal(column(b.id, "state"), "failed");
    assert_string_equal(column(b.id, "result"), "device answered 1 (failure)");
    assert_string_equal(ev.type, "command_failed");
    assert_string_equal(column(a.id, "state"), "sent");
    assert_int_equal(answer_0001(7, 0x8105, 0, &ev), 1);
    assert_string_equal(column(a.id, "state"), "confirmed");
    assert_null(ev.type);
}

/* A position query (0x8201) is answered by 0x0201: the query's serial, then a position. */
static void test_jt808_position_answered_by_0201(void **state)
{
    (void)state;
    struct outcome a = create((struct command_request){.device_id = JT709A, .type = "position"});
    assert_int_equal(a.rc, COMMAND_QUEUED);
    struct proto_ctx ctx = {.now = NOW, .server_serial = 40};
    struct command_wire w[1];
    assert_int_equal(take(JT709A, &proto_jt808, &ctx, NOW, w, 1), 1);
    struct report pos;
    report_init(&pos, "jt808");
    pos.fix_time = NOW;
    pos.has_position = pos.valid = true;
    pos.lat = 47.5;
    pos.lon = 8.25;
    uint8_t body[256], frame[600];
    ptrdiff_t bl = jt808_encode_location(&pos, body + 2, sizeof body - 2);
    assert_true(bl > 0);
    body[0] = 0; /* the query's serial, 40 */
    body[1] = 40;
    ptrdiff_t n = jt808_encode_frame(0x0201, JT709A_UID, 78, body, (size_t)bl + 2, frame, sizeof frame);
    assert_true(n > 0);
    struct domain_event ev;
    assert_int_equal(answer(&proto_jt808, JT709A, 0, frame, (size_t)n, &ev), 1);
    assert_true(reports[0].has_position);
    assert_true(reports[0].lat > 47.49 && reports[0].lat < 47.51);
    assert_string_equal(column(a.id, "state"), "confirmed");
}

/* Serials restart with each connection: an answer names the latest command sent with it. */
static void test_jt808_serial_reused_after_reconnect(void **state)
{
    (void)state;
    struct outcome a = create((struct command_request){.device_id = JT709A, .type = "reboot"});
    struct proto_ctx first = {.now = NOW};
    struct command_wire w[1];
    assert_int_equal(take(JT709A, &proto_jt808, &first, NOW, w, 1), 1);
    struct outcome b = create((struct command_request){.device_id = JT709A, .type = "position"});
    struct proto_ctx second = {.now = NOW}; /* the device reconnected */
    assert_int_equal(take(JT709A, &proto_jt808, &second, NOW + 30, w, 1), 1);
    assert_string_equal(column(a.id, "match_key"), "jt808:0");
    assert_string_equal(column(b.id, "match_key"), "jt808:0");
    struct domain_event ev;
    assert_int_equal(answer_0001(0, 0x8201, 0, &ev), 1);
    assert_string_equal(column(b.id, "state"), "confirmed");
    assert_string_equal(column(a.id, "state"), "sent");
}

/* ---- refusals ------------------------------------------------------------------ */

static void test_refused_requests(void **state)
{
    (void)state;
    struct outcome o = create((struct command_request){.device_id = JT701D, .type = "lock"});
    assert_int_equal(o.rc, COMMAND_INVALID);
    assert_string_equal(o.field, "type");
    assert_string_equal(o.err, "there is no remote lock: Jointech locks close themselves when the"
                               " rope is inserted; watch for the lock event");
    o = create((struct command_request){.device_id = JT701D, .type = "self_destruct"});
    assert_int_equal(o.rc, COMMAND_INVALID);
    assert_string_equal(o.field, "type");
    o = create((struct command_request){.device_id = JT701D, .type = NULL});
    assert_int_equal(o.rc, COMMAND_INVALID);
    o = create((struct command_request){.device_id = JT701D, .type = "unlock"});
    assert_int_equal(o.rc, COMMAND_INVALID);
    assert_string_equal(o.field, "password");
    assert_string_equal(o.err, "password is required for unlock");
    o = create(
        (struct command_request){.device_id = JT701D, .type = "unlock", .password = "88,888"});
    assert_int_equal(o.rc, COMMAND_INVALID);
    assert_string_equal(o.field, "password");
    o = create((struct command_request){
        .device_id = JT701D, .type = "set_password", .new_password = "123456"});
    assert_int_equal(o.rc, COMMAND_INVALID);
    assert_string_equal(o.field, "password");
    o = create((struct command_request){
        .device_id = JT701D, .type = "reboot", .ttl_s = COMMAND_TTL_MAX_S + 1});
    assert_int_equal(o.rc, COMMAND_INVALID);
    assert_string_equal(o.field, "ttl_s");
    /* JT600 has no position command and there is no template for it */
    o = create((struct command_request){.device_id = JT701D, .type = "position"});
    assert_int_equal(o.rc, COMMAND_UNSUPPORTED);
    o = create((struct command_request){.device_id = JT709A, .type = "interval"});
    assert_int_equal(o.rc, COMMAND_INVALID);
    assert_string_equal(o.field, "number");
    o = create((struct command_request){.device_id = NEVER_SEEN, .type = "reboot"});
    assert_int_equal(o.rc, COMMAND_UNSUPPORTED);
    assert_string_equal(o.err, "device has not connected yet: its protocol is unknown");
    /* a protocol without downlink commands: a template has nothing to travel in */
    testdb_exec(tdb.db,
                "INSERT INTO devices(id, uid, org_id, protocol, model, created_at)"
                " VALUES(5, 'phone-5', 1, 'osmand', 'app', 0);"
                "INSERT INTO command_templates(org_id, model, type, template, enabled, created_at)"
                " VALUES(1, 'app', 'reboot', 'reboot', 1, 0)");
    o = create((struct command_request){.device_id = 5, .type = "reboot"});
    assert_int_equal(o.rc, COMMAND_UNSUPPORTED);
    assert_string_equal(o.err, "protocol osmand has no downlink commands");
    o = create((struct command_request){.device_id = OTHER_ORG, .type = "reboot"});
    assert_int_equal(o.rc, COMMAND_NO_DEVICE);
    o = create((struct command_request){.device_id = 999, .type = "reboot"});
    assert_int_equal(o.rc, COMMAND_NO_DEVICE);
    assert_int_equal(testdb_scalar(tdb.db, "SELECT count(*) FROM commands"), 0);
    /* the same request by the device's organisation goes through */
    o = create((struct command_request){.org_id = 2, .device_id = OTHER_ORG, .type = "reboot"});
    assert_int_equal(o.rc, COMMAND_QUEUED);
}

static void test_templates_checked(void **state)
{
    (void)state;
    const char *field;
    char err[256];
    assert_int_equal(commands_template_check("unlock", "(P43,{password})", &field, err, sizeof err),
                     0);
    assert_int_equal(commands_template_check("unlock",
                                             "{uid},{number},{cards},{code},"
                                             "{new_password}",
                                             &field, err, sizeof err),
                     0);
    assert_int_equal(commands_template_check("unlock", "(P43,{pasword})", &field, err, sizeof err),
                     ST_EMALFORMED);
    assert_string_equal(field, "template");
    assert_int_equal(commands_template_check("unlock", "(P43,{password)", &field, err, sizeof err),
                     ST_EMALFORMED);
    assert_int_equal(commands_template_check("unlock", "x}", &field, err, sizeof err),
                     ST_EMALFORMED);
    assert_int_equal(commands_template_check("unlock", "", &field, err, sizeof err), ST_EMALFORMED);
    assert_int_equal(commands_template_check("lock", "x", &field, err, sizeof err), ST_EMALFORMED);
    assert_string_equal(field, "type");
    assert_int_equal(commands_template_check("custom", "x", &field, err, sizeof err),
                     ST_EMALFORMED);
    char big[COMMAND_TEMPLATE_MAX + 2];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(commands_template_check("reboot", big, &field, err, sizeof err),
                     ST_EMALFORMED);
    big[COMMAND_TEMPLATE_MAX] = '\0';
    assert_int_equal(commands_template_check("reboot", big, &field, err, sizeof err), 0);
}

/* ---- TTL ----------------------------------------------------------------------- */

static void test_ttl_expiry(void **state)
{
    (void)state;
    struct outcome q =
        create((struct command_request){.device_id = JT701D, .type = "reboot", .ttl_s = 60});
    assert_int_equal(q.rc, COMMAND_QUEUED);
    assert_true(commands_has_queued(tdb.db, JT701D, NOW + 59));
    assert_false(commands_has_queued(tdb.db, JT701D, NOW + 60));
    /* the device comes back too late: nothing goes out */
    struct proto_ctx ctx = {.now = NOW};
    struct command_wire w[2];
    assert_int_equal(take(JT701D, &proto_jt600, &ctx, NOW + 60, w, 2), 0);
    assert_string_equal(column(q.id, "state"), "expired");
    assert_string_equal(column(q.id, "done_at"), "1780000060");

    /* sent and never answered: the writer's pass expires it */
    struct outcome s = create((struct command_request){
        .device_id = JT701D, .type = "unlock", .password = "888888", .ttl_s = 60});
    assert_int_equal(take(JT701D, &proto_jt600, &ctx, NOW + 1, w, 2), 1);
    testdb_exec(tdb.db, "BEGIN IMMEDIATE");
    assert_int_equal(commands_expire(tdb.db, NOW + 59), 0);
    assert_int_equal(commands_expire(tdb.db, NOW + 60), 1);
    testdb_exec(tdb.db, "COMMIT");
    assert_string_equal(column(s.id, "state"), "expired");
    assert_string_equal(column(s.id, "params"), "{\"password\":\"***\"}");
    /* a late answer confirms nothing */
    struct domain_event ev;
    assert_int_equal(answer_text(JT701D, 0, "(" JT701D_UID ",P43,1,0)", &ev), 0);
}

/* Sent, then the connection closed before the bytes left: queued again, sent again. */
static void test_untake(void **state)
{
    (void)state;
    struct outcome o = create((struct command_request){.device_id = JT709A, .type = "reboot"});
    struct proto_ctx ctx = {.now = NOW};
    struct command_wire w[1];
    assert_int_equal(take(JT709A, &proto_jt808, &ctx, NOW, w, 1), 1);
    assert_int_equal(commands_untake(tdb.db, &w[0].id, 1), 0);
    assert_string_equal(column(o.id, "state"), "queued");
    assert_string_equal(column(o.id, "match_key"), "(null)");
    assert_int_equal(take(JT709A, &proto_jt808, &ctx, NOW, w, 1), 1);
    assert_string_equal(column(o.id, "state"), "sent");
    assert_string_equal(column(o.id, "attempts"), "2");
    assert_string_equal(column(o.id, "match_key"), "jt808:1");
}

/* ---- unlock zones ---------------------------------------------------------------- */

static void open_shipment(void)
{
    testdb_exec(tdb.db,
                "INSERT INTO shipments(id, org_id, reference, device_id, status, created_at)"
                " VALUES(5, 1, 'S-5', 1, 'open', 0);"
                "INSERT INTO shipment_unlock_zones(shipment_id, fence_id) VALUES(5, 1), (5, 2)");
}

static void test_unlock_inside_zone_queued(void **state)
{
    (void)state;
    open_shipment();
    struct outcome o = create(
        (struct command_request){.device_id = JT701D, .type = "unlock", .password = "888888"});
    assert_int_equal(o.rc, COMMAND_QUEUED);
    assert_string_equal(column(o.id, "shipment_id"), "5");
    assert_int_equal(testdb_scalar(tdb.db, "SELECT count(*) FROM custody_log"), 0);
    struct proto_ctx ctx = {.now = NOW};
    struct command_wire w[1];
    assert_int_equal(take(JT701D, &proto_jt600, &ctx, NOW, w, 1), 1);
    assert_int_equal(testdb_scalar(tdb.db,
                                   "SELECT count(*) FROM custody_log WHERE kind = 'command_sent'"
                                   " AND command_id = %lld AND shipment_id = 5 AND actor = 'alice'"
                                   " AND source = 'server'",
                                   (long long)o.id),
                     1);
    struct domain_event ev;
    assert_int_equal(answer_text(JT701D, 5, "(" JT701D_UID ",P43,1,0)", &ev), 1);
    assert_int_equal(
        testdb_scalar(tdb.db,
                      "SELECT count(*) FROM custody_log WHERE kind = 'command_confirmed'"
                      " AND command_id = %lld",
                      (long long)o.id),
        1);
    struct custody_check chk;
    assert_int_equal(custody_verify(tdb.db, 5, &chk), 0);
    assert_true(chk.ok);
    assert_int_equal(chk.entries, 2);
}

static void test_unlock_outside_zone_refused(void **state)
{
    (void)state;
    open_shipment();
    testdb_exec(tdb.db, "UPDATE device_state SET lat = 47.1234, lon = 8.5678 WHERE device_id = 1");
    struct outcome o = create(
        (struct command_request){.device_id = JT701D, .type = "unlock", .password = "888888"});
    assert_int_equal(o.rc, COMMAND_REFUSED);
    assert_true(o.id > 0);
    assert_null(o.field);
    assert_string_equal(o.err, "last fix 47.12340,8.56780 at 2026-05-28T20:26:20Z is outside the"
                               " authorised unlock zones: Depot A, Port B");
    assert_string_equal(column(o.id, "state"), "refused");
    assert_string_equal(column(o.id, "result"), o.err);
    assert_string_equal(column(o.id, "params"), "{\"password\":\"***\"}");
    assert_false(commands_has_queued(tdb.db, JT701D, NOW));
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(tdb.db,
                                        "SELECT kind, actor, source, device_id, command_id,"
                                        " lat, lon, detail FROM custody_log WHERE shipment_id = 5",
                                        -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "unlock_refused");
    assert_string_equal((const char *)sqlite3_column_text(st, 1), "alice");
    assert_string_equal((const char *)sqlite3_column_text(st, 2), "api");
    assert_int_equal(sqlite3_column_int64(st, 3), JT701D);
    assert_int_equal(sqlite3_column_int64(st, 4), o.id);
    assert_true(sqlite3_column_double(st, 5) > 47.1233 && sqlite3_column_double(st, 5) < 47.1235);
    json_t *d = json_loads((const char *)sqlite3_column_text(st, 7), 0, NULL);
    assert_int_equal(json_integer_value(json_object_get(d, "command_id")), o.id);
    assert_string_equal(json_string_value(json_object_get(d, "reason")), o.err);
    json_decref(d);
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);

    /* a reboot is not an unlock: zones do not apply */
    assert_int_equal(create((struct command_request){.device_id = JT701D, .type = "reboot"}).rc,
                     COMMAND_QUEUED);
    /* an invalid fix inside the zone does not authorise */
    testdb_exec(tdb.db,
                "UPDATE device_state SET lat = 47.0, lon = 8.0, valid = 0 WHERE device_id = 1");
    assert_int_equal(create((struct command_request){
                                .device_id = JT701D, .type = "unlock", .password = "888888"})
                         .rc,
                     COMMAND_REFUSED);
    /* no position at all */
    testdb_exec(tdb.db, "DELETE FROM device_state WHERE device_id = 1");
    o = create(
        (struct command_request){.device_id = JT701D, .type = "unlock_dynamic", .code = "123456"});
    assert_int_equal(o.rc, COMMAND_REFUSED);
    assert_string_equal(o.err, "no position known");
    struct custody_check chk;
    assert_int_equal(custody_verify(tdb.db, 5, &chk), 0);
    assert_true(chk.ok);
    assert_int_equal(chk.entries, 3);
    /* with the zone gone from the shipment, unlocking is authorised anywhere again */
    testdb_exec(tdb.db, "DELETE FROM shipment_unlock_zones");
    assert_int_equal(create((struct command_request){
                                .device_id = JT701D, .type = "unlock", .password = "888888"})
                         .rc,
                     COMMAND_QUEUED);
}

static void test_expiry_custody(void **state)
{
    (void)state;
    open_shipment();
    struct outcome o =
        create((struct command_request){.device_id = JT701D, .type = "reboot", .ttl_s = 10});
    testdb_exec(tdb.db, "BEGIN IMMEDIATE");
    assert_int_equal(commands_expire(tdb.db, NOW + 10), 1);
    testdb_exec(tdb.db, "COMMIT");
    assert_int_equal(testdb_scalar(tdb.db,
                                   "SELECT count(*) FROM custody_log WHERE kind = 'command_expired'"
                                   " AND command_id = %lld",
                                   (long long)o.id),
                     1);
}

/* ---- API routes -------------------------------------------------------------------- */

static struct st_config cfg;
static struct api *api;

struct answer {
    int status;
    int64_t command_device;
    json_t *json;
};

static struct answer call(int role, const char *method, const char *path, const char *query,
                          const char *body)
{
    struct http_request req = {.method = method,
                               .path = path,
                               .query = query ? query : "",
                               .body = body ? body : "",
                               .body_len = body ? strlen(body) : 0,
                               .peer = "192.0.2.1",
                               .n_headers = 1};
    req.headers[0] = (struct http_header){"content-type", "application/json"};
    int64_t user = role == ROLE_ADMIN ? 2 : role == ROLE_OPERATOR ? 1 : 3;
    struct api_call c = {
        .req = &req, .db = tdb.db, .who = {.user_id = user, .org_id = 1, .role = role}};
    api_call_run_for_test(api, &c);
    struct answer a = {.status = c.status, .command_device = c.command_device};
    if (c.body.len)
        a.json = json_loadb((const char *)c.body.data, c.body.len, 0, NULL);
    json_decref(c.in);
    buf_free(&c.body);
    return a;
}

static const char *jstr(const struct answer *a, const char *key)
{
    return json_string_value(json_object_get(a->json, key));
}

static void test_api_commands(void **state)
{
    (void)state;
    st_config_defaults(&cfg);
    api = api_new_for_test(&cfg, NULL);

    struct answer a = call(ROLE_OPERATOR, "POST", "/api/devices/1/commands", NULL,
                           "{\"type\":\"unlock\",\"password\":\"888888\",\"ttl_s\":600}");
    assert_int_equal(a.status, 201);
    assert_int_equal(a.command_device, 1);
    assert_string_equal(jstr(&a, "state"), "queued");
    assert_string_equal(jstr(&a, "type"), "unlock");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(a.json, "params"), "password")), "***");
    int64_t first = json_integer_value(json_object_get(a.json, "id"));
    assert_int_equal(testdb_scalar(tdb.db,
                                   "SELECT expires_at - created_at FROM commands WHERE id = %lld",
                                   (long long)first),
                     600);
    assert_non_null(jstr(&a, "expires_at"));
    assert_true(json_is_null(json_object_get(a.json, "sent_at")));
    assert_int_equal(json_integer_value(json_object_get(a.json, "user_id")), 1);
    json_decref(a.json);

    a = call(ROLE_VIEWER, "POST", "/api/devices/1/commands", NULL, "{\"type\":\"reboot\"}");
    assert_int_equal(a.status, 403);
    json_decref(a.json);
    a = call(ROLE_OPERATOR, "POST", "/api/devices/1/commands", NULL, "{\"type\":\"lock\"}");
    assert_int_equal(a.status, 400);
    assert_string_equal(jstr(&a, "field"), "type");
    assert_string_equal(jstr(&a, "error"), "there is no remote lock: Jointech locks close"
                                           " themselves when the rope is inserted; watch for"
                                           " the lock event");
    json_decref(a.json);
    a = call(ROLE_OPERATOR, "POST", "/api/devices/1/commands", NULL,
             "{\"type\":\"reboot\",\"ttl_s\":0}");
    assert_int_equal(a.status, 400);
    assert_string_equal(jstr(&a, "field"), "ttl_s");
    json_decref(a.json);
    a = call(ROLE_OPERATOR, "POST", "/api/devices/1/commands", NULL,
             "{\"type\":\"reboot\",\"colour\":\"red\"}");
    assert_int_equal(a.status, 400);
    json_decref(a.json);
    a = call(ROLE_OPERATOR, "POST", "/api/devices/2/commands", NULL,
             "{\"type\":\"unlock\",\"password\":\"888888\"}");
    assert_int_equal(a.status, 422);
    assert_int_equal(a.command_device, 0);
    json_decref(a.json);
    a = call(ROLE_OPERATOR, "POST", "/api/devices/4/commands", NULL, "{\"type\":\"reboot\"}");
    assert_int_equal(a.status, 404);
    json_decref(a.json);

    open_shipment();
    testdb_exec(tdb.db, "UPDATE device_state SET lat = 10, lon = 10 WHERE device_id = 1");
    a = call(ROLE_OPERATOR, "POST", "/api/devices/1/commands", NULL,
             "{\"type\":\"unlock\",\"password\":\"888888\"}");
    assert_int_equal(a.status, 403);
    assert_int_equal(a.command_device, 0);
    int64_t refused = json_integer_value(json_object_get(a.json, "command_id"));
    assert_true(refused > first);
    assert_non_null(
        strstr(jstr(&a, "error"), "outside the authorised unlock zones: Depot A, Port B"));
    json_decref(a.json);
    assert_int_equal(testdb_scalar(tdb.db,
                                   "SELECT count(*) FROM custody_log WHERE kind = 'unlock_refused'"
                                   " AND actor = 'alice'"),
                     1);
    a = call(ROLE_OPERATOR, "POST", "/api/devices/1/commands", NULL, "{\"type\":\"reboot\"}");
    assert_int_equal(a.status, 201);
    int64_t third = json_integer_value(json_object_get(a.json, "id"));
    json_decref(a.json);

    /* newest first, a page at a time */
    a = call(ROLE_VIEWER, "GET", "/api/devices/1/commands", "limit=2", NULL);
    assert_int_equal(a.status, 200);
    json_t *list = json_object_get(a.json, "commands");
    assert_int_equal(json_array_size(list), 2);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(list, 0), "id")), third);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(list, 1), "id")), refused);
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 1), "state")),
                        "refused");
    int64_t next = json_integer_value(json_object_get(a.json, "next"));
    assert_int_equal(next, refused);
    json_decref(a.json);
    char query[64];
    snprintf(query, sizeof query, "limit=2&before_id=%lld", (long long)next);
    a = call(ROLE_VIEWER, "GET", "/api/devices/1/commands", query, NULL);
    list = json_object_get(a.json, "commands");
    assert_int_equal(json_array_size(list), 1);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(list, 0), "id")), first);
    assert_true(json_is_null(json_object_get(a.json, "next")));
    json_decref(a.json);
    a = call(ROLE_VIEWER, "GET", "/api/devices/1/commands", "state=refused", NULL);
    assert_int_equal(json_array_size(json_object_get(a.json, "commands")), 1);
    json_decref(a.json);
    a = call(ROLE_VIEWER, "GET", "/api/devices/1/commands", "state=bogus", NULL);
    assert_int_equal(a.status, 400);
    json_decref(a.json);

    /* cancel: while queued only */
    char path[64];
    snprintf(path, sizeof path, "/api/commands/%lld", (long long)first);
    a = call(ROLE_OPERATOR, "DELETE", path, NULL, NULL);
    assert_int_equal(a.status, 200);
    assert_string_equal(jstr(&a, "state"), "cancelled");
    json_decref(a.json);
    assert_string_equal(column(first, "params"), "{\"password\":\"***\"}");
    a = call(ROLE_OPERATOR, "DELETE", path, NULL, NULL);
    assert_int_equal(a.status, 409);
    json_decref(a.json);
    a = call(ROLE_VIEWER, "GET", path, NULL, NULL);
    assert_int_equal(a.status, 200);
    assert_string_equal(jstr(&a, "state"), "cancelled");
    json_decref(a.json);
    struct command_request other = {.org_id = 2, .device_id = OTHER_ORG, .type = "reboot"};
    struct outcome theirs = create(other);
    snprintf(path, sizeof path, "/api/commands/%lld", (long long)theirs.id);
    a = call(ROLE_VIEWER, "GET", path, NULL, NULL);
    assert_int_equal(a.status, 404);
    json_decref(a.json);
    a = call(ROLE_OPERATOR, "DELETE", path, NULL, NULL);
    assert_int_equal(a.status, 404);
    json_decref(a.json);
    api_free(api);
}

static void test_api_templates(void **state)
{
    (void)state;
    st_config_defaults(&cfg);
    api = api_new_for_test(&cfg, NULL);
    struct answer a = call(ROLE_OPERATOR, "POST", "/api/command-templates", NULL,
                           "{\"model\":\"JT709A\",\"type\":\"unlock\",\"template\":\"x\"}");
    assert_int_equal(a.status, 403);
    json_decref(a.json);
    a = call(ROLE_ADMIN, "POST", "/api/command-templates", NULL,
             "{\"model\":\"JT709A\",\"type\":\"unlock\",\"template\":\"t {pwd}\"}");
    assert_int_equal(a.status, 400);
    assert_string_equal(jstr(&a, "field"), "template");
    json_decref(a.json);
    a = call(ROLE_ADMIN, "POST", "/api/command-templates", NULL,
             "{\"model\":\"JT709A\",\"type\":\"lock\",\"template\":\"t\"}");
    assert_int_equal(a.status, 400);
    assert_string_equal(jstr(&a, "field"), "type");
    json_decref(a.json);
    a = call(ROLE_ADMIN, "POST", "/api/command-templates", NULL,
             "{\"model\":\"JT709A\",\"type\":\"unlock\",\"template\":\"t {password}\"}");
    assert_int_equal(a.status, 201);
    assert_false(json_is_true(json_object_get(a.json, "enabled")));
    int64_t id = json_integer_value(json_object_get(a.json, "id"));
    json_decref(a.json);
    a = call(ROLE_ADMIN, "POST", "/api/command-templates", NULL,
             "{\"model\":\"JT709A\",\"type\":\"unlock\",\"template\":\"again\"}");
    assert_int_equal(a.status, 409);
    json_decref(a.json);

    /* disabled: still unsupported; enabled: queued */
    a = call(ROLE_OPERATOR, "POST", "/api/devices/2/commands", NULL,
             "{\"type\":\"unlock\",\"password\":\"888888\"}");
    assert_int_equal(a.status, 422);
    json_decref(a.json);
    char path[64];
    snprintf(path, sizeof path, "/api/command-templates/%lld", (long long)id);
    a = call(ROLE_ADMIN, "PATCH", path, NULL, "{\"enabled\":true,\"template\":\"t {wrong}\"}");
    assert_int_equal(a.status, 400);
    json_decref(a.json);
    a = call(ROLE_ADMIN, "PATCH", path, NULL, "{\"enabled\":true}");
    assert_int_equal(a.status, 200);
    assert_true(json_is_true(json_object_get(a.json, "enabled")));
    assert_string_equal(jstr(&a, "template"), "t {password}");
    json_decref(a.json);
    a = call(ROLE_OPERATOR, "POST", "/api/devices/2/commands", NULL,
             "{\"type\":\"unlock\",\"password\":\"888888\"}");
    assert_int_equal(a.status, 201);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(a.json, "params"), "rendered")), "***");
    json_decref(a.json);

    a = call(ROLE_VIEWER, "GET", "/api/command-templates", NULL, NULL);
    assert_int_equal(a.status, 403);
    json_decref(a.json);
    a = call(ROLE_OPERATOR, "GET", "/api/command-templates", NULL, NULL);
    assert_int_equal(a.status, 200);
    assert_int_equal(json_array_size(json_object_get(a.json, "templates")), 1);
    json_decref(a.json);
    a = call(ROLE_ADMIN, "DELETE", path, NULL, NULL);
    assert_int_equal(a.status, 204);
    a = call(ROLE_ADMIN, "DELETE", path, NULL, NULL);
    assert_int_equal(a.status, 404);
    json_decref(a.json);
    api_free(api);
}

int main(void)
{
    st_log_set_level(ST_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_jt701d_unlock_confirmed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_jt701d_wrong_password_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_jt701d_dynamic_unlock_and_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_jt709a_unlock_needs_template, setup, teardown),
        cmocka_unit_test_setup_teardown(test_jt709a_hex_template, setup, teardown),
        cmocka_unit_test_setup_teardown(test_jt808_reboot_by_serial, setup, teardown),
        cmocka_unit_test_setup_teardown(test_jt808_serial_reused_after_reconnect, setup, teardown),
        cmocka_unit_test_setup_teardown(test_jt808_position_answered_by_0201, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_templates_checked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ttl_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_untake, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unlock_inside_zone_queued, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unlock_outside_zone_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expiry_custody, setup, teardown),
        cmocka_unit_test_setup_teardown(test_api_commands, setup, teardown),
        cmocka_unit_test_setup_teardown(test_api_templates, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
