/* commands.c — remote commands: validation against the device's protocol (a trial encode),
 * per-model templates for what a protocol does not document, unlock authorisation by the
 * open shipment's unlock zones, delivery, answer matching and expiry.
 *
 * A command's row keeps what is needed to encode it later (params, secrets included: a
 * password has to be sent when the device comes online) until it is done; then its secrets
 * are masked (COMMAND_PARAMS_MASKED), as the API always shows them. Delivery sets match_key, the
 * name the device's answer will carry: "jt808:<serial>" (the 0x0001 general response repeats the
 * serial), "jt600:<word>" (the JT701 answer `(ID,P43,…)` repeats the command word), "<proto>:any"
 * for protocols whose answers are not matched (those commands stay sent until they expire).
 */
#include "commands.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/buf.h"
#include "../core/err.h"
#include "../core/jsonw.h"
#include "../core/log.h"
#include "../core/timeutil.h"
#include "custody.h"
#include "geo.h"
#include "geofence.h"

#define MATCH_KEY_MAX 48
/* A done command keeps no secrets (SQL assignment, for UPDATEs ending a command). */
#define DONE_MASK " params = " COMMAND_PARAMS_MASKED("params") ","
#define REASON_MAX 512

/* The command types the API takes, and which request fields fill the protocol command's
 * text, text2 and number. Types are the registry's names (proto_command_type). */
struct command_kind {
    const char *name;
    const char *text, *text2; /* request field names; NULL unused */
    bool number;              /* number required */
    bool unlock;              /* subject to the shipment's unlock zones */
};

static const struct command_kind kinds[] = {
    {"unlock", "password", NULL, false, true},
    {"unlock_dynamic", "code", NULL, false, true},
    {"set_password", "new_password", "password", false, false},
    {"cards", "cards", NULL, false, false},
    {"reboot", NULL, NULL, false, false},
    {"position", NULL, NULL, false, false},
    {"interval", NULL, NULL, true, false},
    {"custom", "text", NULL, false, false},
};

/* Placeholders a template may use (the request fields of the same names, and the device id). */
static const char *const placeholders[] = {"password", "code",   "new_password",
                                           "cards",    "number", "uid"};

static const struct command_kind *kind_find(const char *name)
{
    for (size_t i = 0; name && i < sizeof kinds / sizeof kinds[0]; i++)
        if (strcmp(kinds[i].name, name) == 0)
            return &kinds[i];
    return NULL;
}

/* A command's arguments, from the request or from the stored params. */
struct command_args {
    const char *password, *code, *new_password, *cards, *text;
    long number;
    const char *uid;
    const char *rendered; /* a template's output: sent as a custom command */
    int64_t template_id;
};

/* The value of request field `name` as text (number in num), NULL when absent or empty. */
static const char *arg_text(const struct command_args *a, const char *name, char num[24])
{
    const char *v = NULL;
    if (strcmp(name, "password") == 0)
        v = a->password;
    else if (strcmp(name, "code") == 0)
        v = a->code;
    else if (strcmp(name, "new_password") == 0)
        v = a->new_password;
    else if (strcmp(name, "cards") == 0)
        v = a->cards;
    else if (strcmp(name, "text") == 0)
        v = a->text;
    else if (strcmp(name, "uid") == 0)
        v = a->uid;
    else if (strcmp(name, "number") == 0 && a->number != 0) {
        snprintf(num, 24, "%ld", a->number);
        v = num;
    }
    return v && *v ? v : NULL;
}

static void command_of(const struct command_kind *k, const struct command_args *a,
                       struct proto_command *cmd)
{
    char num[24];
    memset(cmd, 0, sizeof *cmd);
    cmd->device_id = a->uid;
    if (a->rendered) {
        cmd->type = PROTO_CMD_CUSTOM;
        cmd->text = a->rendered;
        return;
    }
    cmd->type = (uint8_t)proto_command_type(k->name);
    cmd->text = k->text ? arg_text(a, k->text, num) : NULL;
    cmd->text2 = k->text2 ? arg_text(a, k->text2, num) : NULL;
    cmd->number = a->number;
}

/* The first required field of k that a lacks, or NULL. */
static const char *missing_field(const struct command_kind *k, const struct command_args *a)
{
    char num[24];
    if (k->text && !arg_text(a, k->text, num))
        return k->text;
    if (k->text2 && !arg_text(a, k->text2, num))
        return k->text2;
    if (k->number && a->number <= 0)
        return "number";
    return NULL;
}

/* ---- templates ------------------------------------------------------------ */

/* A placeholder's value: printable ASCII without the parentheses that frame text commands;
 * commas only in the card list, which is a list. */
static bool value_ok(const char *name, const char *v)
{
    bool list = strcmp(name, "cards") == 0;
    for (; *v; v++)
        if (*v < 0x20 || *v > 0x7E || *v == '(' || *v == ')' || (*v == ',' && !list))
            return false;
    return true;
}

/* Check tpl, and render it with a's values into out[cap] when a is not NULL. 0, or
 * ST_EMALFORMED with *field (the template, or the request field a placeholder lacks) and err
 * set. */
static int template_render(const char *tpl, const struct command_args *a, char *out, size_t cap,
                           const char **field, char *err, size_t errlen)
{
    size_t used = 0;
    *field = "template";
    for (const char *p = tpl; *p;) {
        const char *piece = p, *value = NULL;
        size_t n = 1;
        char num[24];
        if (*p == '}') {
            snprintf(err, errlen, "'}' without '{' at character %zu", (size_t)(p - tpl) + 1);
            return ST_EMALFORMED;
        }
        if (*p == '{') {
            const char *close = strchr(p, '}');
            size_t i = 0, len = close ? (size_t)(close - p - 1) : 0;
            while (close && i < sizeof placeholders / sizeof placeholders[0] &&
                   (strlen(placeholders[i]) != len || memcmp(placeholders[i], p + 1, len) != 0))
                i++;
            if (!close || i == sizeof placeholders / sizeof placeholders[0]) {
                snprintf(err, errlen,
                         "unknown placeholder at character %zu (known: {password}, {code},"
                         " {new_password}, {cards}, {number}, {uid})",
                         (size_t)(p - tpl) + 1);
                return ST_EMALFORMED;
            }
            n = len + 2;
            if (a) {
                value = arg_text(a, placeholders[i], num);
                if (!value) {
                    *field = placeholders[i];
                    snprintf(err, errlen, "%s is required by the command template",
                             placeholders[i]);
                    return ST_EMALFORMED;
                }
                if (!value_ok(placeholders[i], value)) {
                    *field = placeholders[i];
                    snprintf(err, errlen, "%s must be printable ASCII without parentheses%s",
                             placeholders[i], strcmp(placeholders[i], "cards") ? " or commas" : "");
                    return ST_EMALFORMED;
                }
                piece = value;
            }
        }
        p += n;
        if (!a)
            continue;
        size_t pn = value ? strlen(value) : 1;
        if (used + pn >= cap) {
            snprintf(err, errlen, "the rendered command is longer than %zu bytes", cap - 1);
            return ST_EMALFORMED;
        }
        memcpy(out + used, piece, pn);
        used += pn;
    }
    if (a)
        out[used] = '\0';
    return 0;
}

int commands_template_check(const char *type, const char *tpl, const char **field, char *err,
                            size_t errlen)
{
    const struct command_kind *k = kind_find(type);
    *field = "type";
    if (!k || strcmp(type, "custom") == 0) {
        snprintf(err, errlen,
                 "must be a command type other than custom: unlock, unlock_dynamic,"
                 " set_password, cards, reboot, position or interval");
        return ST_EMALFORMED;
    }
    *field = "template";
    if (!*tpl || strlen(tpl) > COMMAND_TEMPLATE_MAX) {
        snprintf(err, errlen, "must be 1..%d characters", COMMAND_TEMPLATE_MAX);
        return ST_EMALFORMED;
    }
    return template_render(tpl, NULL, NULL, 0, field, err, errlen);
}

/* ---- small SQL helpers ---------------------------------------------------- */

static int exec(sqlite3 *db, const char *sql)
{
    if (sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK)
        return 0;
    st_log(ST_LOG_ERROR, "event=commands_db_error sql=\"%.24s\" reason=\"%s\"", sql,
           sqlite3_errmsg(db));
    return ST_EIO;
}

static int prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st)
{
    if (sqlite3_prepare_v2(db, sql, -1, st, NULL) == SQLITE_OK)
        return 0;
    st_log(ST_LOG_ERROR, "event=commands_db_error reason=\"%s\"", sqlite3_errmsg(db));
    *st = NULL;
    return ST_EIO;
}

/* Step a write and finalize it. */
static int step_done(sqlite3 *db, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc == SQLITE_DONE)
        return 0;
    st_log(ST_LOG_ERROR, "event=commands_db_error reason=\"%s\"", sqlite3_errmsg(db));
    return ST_EIO;
}

static const char *col_text(sqlite3_stmt *st, int col)
{
    return (const char *)sqlite3_column_text(st, col);
}

/* A JSON object's text in b, NUL-terminated. */
static const char *json_text(struct buf *b)
{
    buf_append(b, "", 1);
    return (const char *)b->data;
}

/* Append f (a fact about command f->command_id) to its shipment's chain. */
static int custody_add(sqlite3 *db, const struct custody_fact *f)
{
    int rc = custody_append(db, f, st_now_ms(), NULL);
    if (rc < 0)
        st_log(ST_LOG_ERROR,
               "event=custody_failed shipment=%" PRId64 " command=%" PRId64
               " kind=%s reason=\"%s\"",
               f->shipment_id, f->command_id, f->kind, st_strerror(rc));
    return rc < 0 ? ST_EIO : 0;
}

/* Append a custody fact without position about command `command_id`. */
static int custody_command(sqlite3 *db, int64_t shipment_id, int64_t device_id, int64_t command_id,
                           int64_t now, const char *kind, const char *actor, const char *source,
                           const char *detail)
{
    struct custody_fact f = {.shipment_id = shipment_id,
                             .time = now,
                             .kind = kind,
                             .actor = actor,
                             .source = source,
                             .device_id = device_id,
                             .command_id = command_id,
                             .detail = detail};
    return custody_add(db, &f);
}

/* {"command_id":…,"type":…,<key>:<value>} as text in b. */
static const char *command_detail(struct buf *b, int64_t id, const char *type, const char *key,
                                  const char *value)
{
    struct jsonw w;
    jsonw_init(&w, b);
    jsonw_obj_begin(&w);
    jsonw_key(&w, "command_id");
    jsonw_int(&w, id);
    jsonw_key(&w, "type");
    jsonw_str(&w, type);
    if (key) {
        jsonw_key(&w, key);
        jsonw_str(&w, value);
    }
    jsonw_obj_end(&w);
    return json_text(b);
}

/* ---- create --------------------------------------------------------------- */

/* What commands_create reads of the device. */
struct device_facts {
    char uid[REPORT_ID_LEN];
    char protocol[24];
    char model[65];
    bool has_fix, fix_valid;
    double lat, lon;
    int64_t fix_time;
    int64_t shipment_id; /* open shipment; 0 none */
};

static int device_read(sqlite3 *db, const struct command_request *req, struct device_facts *d)
{
    sqlite3_stmt *st;
    memset(d, 0, sizeof *d);
    if (prepare(db,
                "SELECT d.uid, d.protocol, d.model, s.lat, s.lon, s.valid, s.fix_time,"
                " (SELECT id FROM shipments WHERE device_id = d.id AND status = 'open')"
                " FROM devices d LEFT JOIN device_state s ON s.device_id = d.id"
                " WHERE d.id = ?1 AND d.org_id = ?2",
                &st))
        return ST_EIO;
    sqlite3_bind_int64(st, 1, req->device_id);
    sqlite3_bind_int64(st, 2, req->org_id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        snprintf(d->uid, sizeof d->uid, "%s", col_text(st, 0));
        snprintf(d->protocol, sizeof d->protocol, "%s", col_text(st, 1) ? col_text(st, 1) : "");
        snprintf(d->model, sizeof d->model, "%s", col_text(st, 2) ? col_text(st, 2) : "");
        d->has_fix =
            sqlite3_column_type(st, 3) != SQLITE_NULL && sqlite3_column_type(st, 4) != SQLITE_NULL;
        d->lat = sqlite3_column_double(st, 3);
        d->lon = sqlite3_column_double(st, 4);
        d->fix_valid = sqlite3_column_int(st, 5) != 0;
        d->fix_time = sqlite3_column_int64(st, 6);
        d->shipment_id = sqlite3_column_int64(st, 7);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? ST_ENOTFOUND : ST_EIO;
}

/* The enabled template of (org, model, type): 0 with text in out, ST_ENOTFOUND or ST_EIO. */
static int template_find(sqlite3 *db, int64_t org, const char *model, const char *type, int64_t *id,
                         char *out, size_t cap)
{
    sqlite3_stmt *st;
    if (prepare(db,
                "SELECT id, template FROM command_templates"
                " WHERE org_id = ?1 AND model = ?2 AND type = ?3 AND enabled",
                &st))
        return ST_EIO;
    sqlite3_bind_int64(st, 1, org);
    sqlite3_bind_text(st, 2, model, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, type, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *id = sqlite3_column_int64(st, 0);
        snprintf(out, cap, "%s", col_text(st, 1));
    }
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? ST_ENOTFOUND : ST_EIO;
}

/* Whether an unlock is authorised now: 0 yes, 1 refused (reason in reason), ST_EIO. Without
 * unlock zones on the device's open shipment, anywhere is authorised; with zones, only a valid
 * last fix inside one of them (zones that cannot be read authorise nothing). */
static int unlock_check(sqlite3 *db, int64_t org, const struct device_facts *d, char *reason,
                        size_t cap)
{
    if (!d->shipment_id)
        return 0;
    sqlite3_stmt *st;
    if (prepare(db,
                "SELECT fence_id FROM shipment_unlock_zones WHERE shipment_id = ?1"
                " ORDER BY fence_id",
                &st))
        return ST_EIO;
    sqlite3_bind_int64(st, 1, d->shipment_id);
    char names[REASON_MAX] = "";
    size_t used = 0;
    int zones = 0, result = 1, rc;
    while (result == 1 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct geofence_def f;
        zones++;
        int lrc = geofence_load(db, sqlite3_column_int64(st, 0), org, &f);
        if (lrc == ST_ENOTFOUND)
            continue;
        if (lrc < 0) {
            result = ST_EIO;
            break;
        }
        if (d->has_fix && d->fix_valid && geo_contains(&f.geo, (struct geo_point){d->lat, d->lon}))
            result = 0;
        if (used < sizeof names) {
            int n = snprintf(names + used, sizeof names - used, "%s%s", used ? ", " : "", f.name);
            used += n > 0 ? (size_t)n : 0;
        }
        geofence_def_free(&f);
    }
    sqlite3_finalize(st);
    if (result == 1 && rc != SQLITE_DONE)
        result = ST_EIO;
    if (result != 1 || zones == 0)
        return result == 1 ? 0 : result;
    char when[ST_ISO_LEN];
    st_time_iso(d->fix_time, when);
    if (!d->has_fix)
        snprintf(reason, cap, "no position known");
    else
        snprintf(reason, cap, "last fix %.5f,%.5f at %s %s outside the authorised unlock zones: %s",
                 d->lat, d->lon, when, d->fix_valid ? "is" : "is not valid, so not known to be",
                 used ? names : "(none readable)");
    return 1;
}

/* The params column: the request's arguments (secrets included) and the template used. */
static const char *params_text(struct buf *b, const struct command_args *a)
{
    static const char *const keys[] = {"password", "code", "new_password",
                                       "cards",    "text", "number"};
    struct jsonw w;
    char num[24];
    jsonw_init(&w, b);
    jsonw_obj_begin(&w);
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const char *v = arg_text(a, keys[i], num);
        if (!v)
            continue;
        jsonw_key(&w, keys[i]);
        if (v == num)
            jsonw_int(&w, a->number);
        else
            jsonw_str(&w, v);
    }
    if (a->rendered) {
        jsonw_key(&w, "template_id");
        jsonw_int(&w, a->template_id);
        jsonw_key(&w, "rendered");
        jsonw_str(&w, a->rendered);
    }
    jsonw_obj_end(&w);
    return json_text(b);
}

static int insert_command(sqlite3 *db, const struct command_request *req, const char *type,
                          const char *params, const char *state, int64_t expires_at,
                          int64_t shipment_id, const char *result, int64_t *id)
{
    sqlite3_stmt *st;
    if (prepare(db,
                "INSERT INTO commands(org_id, device_id, type, params, state, created_at,"
                " expires_at, user_id, shipment_id, result, done_at)"
                " VALUES(?1, ?2, ?3, CASE WHEN ?5 = 'queued' THEN ?4 ELSE " COMMAND_PARAMS_MASKED(
                    "?4") " END, ?5, ?6, ?7, ?8, ?9, ?10,"
                          " CASE WHEN ?5 = 'queued' THEN NULL ELSE ?6 END)",
                &st))
        return ST_EIO;
    sqlite3_bind_int64(st, 1, req->org_id);
    sqlite3_bind_int64(st, 2, req->device_id);
    sqlite3_bind_text(st, 3, type, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, params, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, state, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, req->now);
    sqlite3_bind_int64(st, 7, expires_at);
    if (req->user_id)
        sqlite3_bind_int64(st, 8, req->user_id);
    if (shipment_id)
        sqlite3_bind_int64(st, 9, shipment_id);
    if (result)
        sqlite3_bind_text(st, 10, result, -1, SQLITE_STATIC);
    if (step_done(db, st))
        return ST_EIO;
    *id = sqlite3_last_insert_rowid(db);
    return 0;
}

/* Trial-encode the command (or its template) for the device's protocol: COMMAND_QUEUED when
 * it encodes (a->rendered set when a template made it), another outcome with field and err
 * set, or ST_EIO. */
static int command_resolve(sqlite3 *db, const struct command_request *req,
                           const struct command_kind *k, const struct device_facts *d,
                           struct command_args *a, char *rendered, size_t cap, const char **field,
                           char *err, size_t errlen)
{
    const struct proto_ops *p = d->protocol[0] ? proto_find(d->protocol) : NULL;
    *field = "type";
    if (!p) {
        snprintf(err, errlen,
                 d->protocol[0] ? "protocol %s is unknown to this server"
                                : "device has not connected yet: its protocol is"
                                  " unknown",
                 d->protocol);
        return COMMAND_UNSUPPORTED;
    }
    if (!p->encode_command) { /* not even a custom text to carry a template */
        snprintf(err, errlen, "protocol %s has no downlink commands", p->name);
        return COMMAND_UNSUPPORTED;
    }
    struct proto_ctx scratch = {.now = req->now};
    struct proto_command cmd;
    uint8_t wire[COMMAND_BYTES_MAX];
    size_t len;
    command_of(k, a, &cmd);
    int rc = p->encode_command(&scratch, &cmd, wire, sizeof wire, &len);
    if (rc == ST_EUNSUPPORTED) {
        int64_t tid = 0;
        char tpl[COMMAND_TEMPLATE_MAX + 1];
        int trc = d->model[0]
                      ? template_find(db, req->org_id, d->model, k->name, &tid, tpl, sizeof tpl)
                      : ST_ENOTFOUND;
        if (trc == ST_EIO)
            return ST_EIO;
        if (trc == ST_ENOTFOUND) {
            snprintf(err, errlen,
                     "protocol %s (model %s) has no %s command; an operator can configure a"
                     " command template for this model",
                     p->name, d->model[0] ? d->model : "not set", k->name);
            return COMMAND_UNSUPPORTED;
        }
        if (template_render(tpl, a, rendered, cap, field, err, errlen))
            return COMMAND_INVALID;
        a->rendered = rendered;
        a->template_id = tid;
        command_of(k, a, &cmd);
        rc = p->encode_command(&scratch, &cmd, wire, sizeof wire, &len);
        if (rc < 0) {
            *field = "template";
            snprintf(err, errlen,
                     "command template %" PRId64 " renders a command protocol %s"
                     " refuses (%s)",
                     tid, p->name, st_strerror(rc));
            return COMMAND_INVALID;
        }
        return COMMAND_QUEUED;
    }
    const char *missing = missing_field(k, a);
    if (missing) {
        *field = missing;
        snprintf(err, errlen, "%s is required for %s", missing, k->name);
        return COMMAND_INVALID;
    }
    if (rc < 0) {
        *field = k->text ? k->text : k->number ? "number" : "type";
        snprintf(err, errlen, "%s%s%s not accepted by protocol %s (%s)", *field,
                 k->text2 ? " or " : "", k->text2 ? k->text2 : "", p->name, st_strerror(rc));
        return COMMAND_INVALID;
    }
    return COMMAND_QUEUED;
}

/* The unlock was refused: store it as refused and log custody (in the open transaction). */
static int refuse(sqlite3 *db, const struct command_request *req, const struct device_facts *d,
                  const char *params, const char *reason, int64_t *id)
{
    if (insert_command(db, req, req->type, params, "refused", req->now, d->shipment_id, reason, id))
        return ST_EIO;
    struct buf b = {0};
    struct custody_fact f = {.shipment_id = d->shipment_id,
                             .time = req->now,
                             .kind = "unlock_refused",
                             .actor = req->user_name,
                             .source = "api",
                             .device_id = req->device_id,
                             .command_id = *id,
                             .has_pos = d->has_fix,
                             .lat = d->lat,
                             .lon = d->lon,
                             .detail = command_detail(&b, *id, req->type, "reason", reason)};
    int rc = custody_add(db, &f);
    buf_free(&b);
    return rc;
}

int commands_create(sqlite3 *db, const struct command_request *req, int64_t *id, const char **field,
                    char *err, size_t errlen)
{
    const struct command_kind *k = kind_find(req->type);
    *id = 0;
    *field = "type";
    if (req->type && strcmp(req->type, "lock") == 0) {
        snprintf(err, errlen,
                 "there is no remote lock: Jointech locks close themselves when the"
                 " rope is inserted; watch for the lock event");
        return COMMAND_INVALID;
    }
    if (!k) {
        snprintf(err, errlen,
                 "unknown command type: unlock, unlock_dynamic, set_password, cards,"
                 " reboot, position, interval or custom");
        return COMMAND_INVALID;
    }
    int64_t ttl = req->ttl_s ? req->ttl_s : COMMAND_TTL_DEFAULT_S;
    if (ttl < 1 || ttl > COMMAND_TTL_MAX_S) {
        *field = "ttl_s";
        snprintf(err, errlen, "must be 1..%d seconds", COMMAND_TTL_MAX_S);
        return COMMAND_INVALID;
    }
    if (exec(db, "BEGIN IMMEDIATE"))
        return ST_EIO;
    struct device_facts d;
    struct command_args a = {.password = req->password,
                             .code = req->code,
                             .new_password = req->new_password,
                             .cards = req->cards,
                             .text = req->text,
                             .number = req->number};
    char rendered[COMMAND_BYTES_MAX], reason[REASON_MAX];
    struct buf params = {0};
    int outcome = device_read(db, req, &d);
    if (outcome == ST_ENOTFOUND) {
        *field = NULL;
        snprintf(err, errlen, "no such device");
        outcome = COMMAND_NO_DEVICE;
        goto done;
    }
    if (outcome < 0)
        goto done;
    a.uid = d.uid;
    outcome = command_resolve(db, req, k, &d, &a, rendered, sizeof rendered, field, err, errlen);
    if (outcome != COMMAND_QUEUED)
        goto done;
    params_text(&params, &a);
    int auth = k->unlock ? unlock_check(db, req->org_id, &d, reason, sizeof reason) : 0;
    if (auth < 0) {
        outcome = ST_EIO;
    } else if (auth == 1) {
        outcome = refuse(db, req, &d, (const char *)params.data, reason, id);
        if (outcome == 0) {
            outcome = COMMAND_REFUSED;
            *field = NULL;
            snprintf(err, errlen, "%s", reason);
        }
    } else {
        outcome = insert_command(db, req, k->name, (const char *)params.data, "queued",
                                 req->now + ttl, d.shipment_id, NULL, id);
    }
    if (outcome >= 0 && exec(db, "COMMIT"))
        outcome = ST_EIO;
done:
    buf_free(&params);
    if (!sqlite3_get_autocommit(db))
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    char dev[ST_LOG_TEXT_MAX], why[ST_LOG_TEXT_MAX];
    if (outcome == COMMAND_QUEUED)
        st_log(ST_LOG_INFO,
               "event=command_queued id=%" PRId64 " device=%s type=%s by=%" PRId64 "%s", *id,
               st_log_text(d.uid, dev), k->name, req->user_id, a.rendered ? " template=yes" : "");
    else if (outcome == COMMAND_REFUSED)
        st_log(ST_LOG_WARN,
               "event=command_refused id=%" PRId64 " device=%s type=%s by=%" PRId64
               " reason=\"%s\"",
               *id, st_log_text(d.uid, dev), k->name, req->user_id, st_log_text(reason, why));
    else if (outcome >= 0)
        *id = 0;
    return outcome;
}

/* ---- expiry ----------------------------------------------------------------- */

/* Expire the queued and sent commands past their TTL (of one device; all when device_id is
 * 0), with custody for devices that have an open shipment. In the caller's transaction. */
static int expire_due(sqlite3 *db, int64_t device_id, int64_t now)
{
#define DUE_WHERE " WHERE c.state IN ('queued', 'sent') AND c.expires_at <= ?1"
#define DUE_DEVICE " AND c.device_id = ?2"
    sqlite3_stmt *st;
    if (prepare(db,
                device_id ? "SELECT c.id, c.device_id, c.type, c.state, s.id FROM commands c"
                            " LEFT JOIN shipments s ON s.device_id = c.device_id"
                            " AND s.status = 'open'" DUE_WHERE DUE_DEVICE
                          : "SELECT c.id, c.device_id, c.type, c.state, s.id FROM commands c"
                            " LEFT JOIN shipments s ON s.device_id = c.device_id"
                            " AND s.status = 'open'" DUE_WHERE,
                &st))
        return ST_EIO;
    sqlite3_bind_int64(st, 1, now);
    if (device_id)
        sqlite3_bind_int64(st, 2, device_id);
    int rc, fail = 0;
    struct buf b = {0};
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && !fail) {
        if (sqlite3_column_type(st, 4) == SQLITE_NULL)
            continue;
        b.len = 0;
        const char *detail = command_detail(&b, sqlite3_column_int64(st, 0), col_text(st, 2), "was",
                                            col_text(st, 3));
        fail = custody_command(db, sqlite3_column_int64(st, 4), sqlite3_column_int64(st, 1),
                               sqlite3_column_int64(st, 0), now, "command_expired", NULL, "server",
                               detail);
    }
    buf_free(&b);
    sqlite3_finalize(st);
    if (fail || (rc != SQLITE_ROW && rc != SQLITE_DONE))
        return ST_EIO;
    if (prepare(db,
                device_id ? "UPDATE commands AS c SET state = 'expired', done_at = ?1," DONE_MASK
                            " result = 'expired before the device answered'" DUE_WHERE DUE_DEVICE
                          : "UPDATE commands AS c SET state = 'expired', done_at = ?1," DONE_MASK
                            " result = 'expired before the device answered'" DUE_WHERE,
                &st))
        return ST_EIO;
#undef DUE_WHERE
#undef DUE_DEVICE
    sqlite3_bind_int64(st, 1, now);
    if (device_id)
        sqlite3_bind_int64(st, 2, device_id);
    if (step_done(db, st))
        return ST_EIO;
    int n = sqlite3_changes(db);
    if (n > 0)
        st_log(ST_LOG_INFO, "event=commands_expired count=%d", n);
    return n;
}

int commands_expire(sqlite3 *db, int64_t now)
{
    return expire_due(db, 0, now);
}

/* ---- delivery ----------------------------------------------------------------- */

/* The name the answer to `wire` will carry (see the file comment). serial: the JT/T 808
 * serial the frame was built with. */
static void match_key(const struct proto_ops *p, uint16_t serial, const uint8_t *wire, size_t len,
                      char out[MATCH_KEY_MAX])
{
    if (strcmp(p->name, "jt808") == 0) {
        snprintf(out, MATCH_KEY_MAX, "jt808:%u", serial);
    } else if (strcmp(p->name, "jt600") == 0 && len > 1 && wire[0] == '(') {
        size_t n = 1;
        while (n < len && n < 17 && wire[n] != ',' && wire[n] != ')')
            n++;
        snprintf(out, MATCH_KEY_MAX, "jt600:%.*s", (int)(n - 1), (const char *)wire + 1);
    } else {
        snprintf(out, MATCH_KEY_MAX, "%s:any", p->name);
    }
}

/* Arguments from a stored params object (strings point into o). */
static void args_from_params(const json_t *o, const char *uid, struct command_args *a)
{
    memset(a, 0, sizeof *a);
    a->uid = uid;
    a->password = json_string_value(json_object_get(o, "password"));
    a->code = json_string_value(json_object_get(o, "code"));
    a->new_password = json_string_value(json_object_get(o, "new_password"));
    a->cards = json_string_value(json_object_get(o, "cards"));
    a->text = json_string_value(json_object_get(o, "text"));
    a->rendered = json_string_value(json_object_get(o, "rendered"));
    a->number = (long)json_integer_value(json_object_get(o, "number"));
}

/* Encode the device's oldest queued command into w and mark it sent (or failed when it no
 * longer encodes). 1 sent, 0 failed, 2 none left, ST_EIO. */
static int take_one(sqlite3 *db, int64_t device_id, const struct proto_ops *proto,
                    struct proto_ctx *ctx, int64_t now, struct command_wire *w)
{
    sqlite3_stmt *st;
    if (prepare(db,
                "SELECT c.id, c.type, c.params, d.uid, u.name,"
                " (SELECT id FROM shipments WHERE device_id = c.device_id AND status = 'open')"
                " FROM commands c JOIN devices d ON d.id = c.device_id"
                " LEFT JOIN users u ON u.id = c.user_id"
                " WHERE c.device_id = ?1 AND c.state = 'queued' ORDER BY c.id LIMIT 1",
                &st))
        return ST_EIO;
    sqlite3_bind_int64(st, 1, device_id);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sqlite3_finalize(st);
        return rc == SQLITE_DONE ? 2 : ST_EIO;
    }
    /* copied: the row's text is not kept across the writes below */
    int64_t id = sqlite3_column_int64(st, 0), shipment = sqlite3_column_int64(st, 5);
    const struct command_kind *k = kind_find(col_text(st, 1));
    const char *type = k ? k->name : "?";
    char uid[REPORT_ID_LEN], actor[128];
    bool has_actor = col_text(st, 4) != NULL;
    snprintf(uid, sizeof uid, "%s", col_text(st, 3));
    snprintf(actor, sizeof actor, "%s", has_actor ? col_text(st, 4) : "");
    json_t *o = json_loads(col_text(st, 2) ? col_text(st, 2) : "{}", 0, NULL);
    sqlite3_finalize(st);
    struct command_args a;
    struct proto_command cmd;
    args_from_params(o, uid, &a);
    uint16_t serial = ctx->server_serial;
    int erc = ST_EUNSUPPORTED;
    if (k && proto->encode_command) {
        command_of(k, &a, &cmd);
        erc = proto->encode_command(ctx, &cmd, w->bytes, sizeof w->bytes, &w->len);
    }
    /* An encoder that leaves the serial alone still gets one serial per command (JT/T 808's
     * advances it itself). */
    if (erc == 0 && ctx->server_serial == serial)
        ctx->server_serial++;
    char key[MATCH_KEY_MAX], result[96];
    if (erc == 0)
        match_key(proto, serial, w->bytes, w->len, key);
    else
        snprintf(result, sizeof result, "protocol %s could not encode it: %s", proto->name,
                 st_strerror(erc));
    struct buf b = {0};
    const char *detail =
        command_detail(&b, id, type, erc == 0 ? "match_key" : "error", erc == 0 ? key : result);
    sqlite3_stmt *up;
    int out = prepare(db,
                      erc == 0 ? "UPDATE commands SET state = 'sent', sent_at = ?2,"
                                 " attempts = attempts + 1, match_key = ?3 WHERE id = ?1"
                               : "UPDATE commands SET state = 'failed', done_at = ?2," DONE_MASK
                                 " attempts = attempts + 1, result = ?3 WHERE id = ?1",
                      &up);
    if (out == 0) {
        sqlite3_bind_int64(up, 1, id);
        sqlite3_bind_int64(up, 2, now);
        sqlite3_bind_text(up, 3, erc == 0 ? key : result, -1, SQLITE_TRANSIENT);
        out = step_done(db, up);
    }
    if (out == 0 && shipment)
        out = custody_command(db, shipment, device_id, id, now,
                              erc == 0 ? "command_sent" : "command_failed",
                              has_actor ? actor : NULL, "server", detail);
    if (out == 0 && erc < 0) { /* a sent one is logged by the server as its bytes go out */
        char dev[ST_LOG_TEXT_MAX];
        st_log(ST_LOG_WARN, "event=command_failed id=%" PRId64 " device=%s type=%s reason=\"%s\"",
               id, st_log_text(uid, dev), type, st_strerror(erc));
    }
    if (out == 0) {
        w->id = id;
        out = erc == 0 ? 1 : 0;
    }
    buf_free(&b);
    json_decref(o);
    return out;
}

static bool queued_exists(sqlite3 *db, int64_t device_id, int64_t after);

int commands_take(sqlite3 *db, int64_t device_id, const struct proto_ops *proto,
                  struct proto_ctx *ctx, int64_t now, struct command_wire *out, size_t cap)
{
    /* Every device that connects is asked about: a read first, so the usual "nothing
     * queued" takes no write lock from the ingest writer. */
    if (!queued_exists(db, device_id, INT64_MIN))
        return 0;
    if (exec(db, "BEGIN IMMEDIATE"))
        return ST_EIO;
    size_t n = 0;
    int rc = expire_due(db, device_id, now);
    while (rc >= 0 && n < cap) {
        rc = take_one(db, device_id, proto, ctx, now, &out[n]);
        if (rc == 1)
            n++;
        else if (rc == 2)
            break;
    }
    if (rc < 0 || exec(db, "COMMIT")) {
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        return ST_EIO;
    }
    return (int)n;
}

int commands_untake(sqlite3 *db, const int64_t *ids, size_t n)
{
    sqlite3_stmt *st = NULL;
    if (exec(db, "BEGIN IMMEDIATE"))
        return ST_EIO;
    int rc = prepare(db,
                     "UPDATE commands SET state = 'queued', sent_at = NULL, match_key = NULL"
                     " WHERE id = ?1 AND state = 'sent'",
                     &st);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        sqlite3_bind_int64(st, 1, ids[i]);
        rc = sqlite3_step(st) == SQLITE_DONE ? 0 : ST_EIO;
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    if (rc || exec(db, "COMMIT")) {
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        return ST_EIO;
    }
    return 0;
}

/* Queued commands of the device expiring after `after` (INT64_MIN: stale ones too). */
static bool queued_exists(sqlite3 *db, int64_t device_id, int64_t after)
{
    sqlite3_stmt *st;
    if (prepare(db,
                "SELECT 1 FROM commands WHERE device_id = ?1 AND state = 'queued'"
                " AND expires_at > ?2 LIMIT 1",
                &st))
        return false;
    sqlite3_bind_int64(st, 1, device_id);
    sqlite3_bind_int64(st, 2, after);
    bool any = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
    return any;
}

bool commands_has_queued(sqlite3 *db, int64_t device_id, int64_t now)
{
    return queued_exists(db, device_id, now);
}

/* ---- answers ------------------------------------------------------------------ */

static const char *jt808_result_name(unsigned v)
{
    switch (v) {
    case 0: return "success";
    case 1: return "failure";
    case 2: return "bad message";
    case 3: return "unsupported";
    default: return "unknown result";
    }
}

/* The detail of the last command_failed event, valid until the writer's next answer. */
static _Thread_local char failed_detail[256];

int commands_on_answer(sqlite3 *db, int64_t device_id, int64_t shipment_id, const struct report *r,
                       int64_t now, struct domain_event *ev)
{
    char key[MATCH_KEY_MAX], result[160];
    bool ok, newest = false;
    memset(ev, 0, sizeof *ev);
    ev->speed_kmh = -1;
    ev->battery_pct = -1;
    if (!r->protocol)
        return 0;
    bool position = strcmp(r->msg_type, "0x0201") == 0; /* the answer to a position query */
    if (strcmp(r->protocol, "jt808") == 0 && (position || strcmp(r->msg_type, "0x0001") == 0)) {
        const char *serial = report_attr_get(r, "ack_serial");
        const char *res = position ? "0" : report_attr_get(r, "result");
        if (!serial || !res)
            return 0;
        unsigned v = (unsigned)strtoul(res, NULL, 10);
        snprintf(key, sizeof key, "jt808:%s", serial);
        snprintf(result, sizeof result, "device answered %u (%s)", v, jt808_result_name(v));
        ok = v == 0;
        newest = true; /* serials restart with each connection: the latest use is meant */
    } else if (strcmp(r->protocol, "jt600") == 0 && r->msg_type[0] == 'P') {
        const char *answer = report_attr_get(r, "answer");
        if (!answer)
            return 0;
        /* (ID,P43,1,0): the first field says unlocked (1) or refused (0); P52 answers repeat
         * the sub-command first: (ID,P52,3,1,0). Other texts are data: the device answered. */
        const char *status = answer;
        if (strcmp(r->msg_type, "P52") == 0) {
            const char *comma = strchr(answer, ',');
            status = comma ? comma + 1 : "";
        }
        snprintf(key, sizeof key, "jt600:%s", r->msg_type);
        snprintf(result, sizeof result, "%s", answer);
        ok = !(status[0] == '0' && (status[1] == ',' || status[1] == '\0'));
    } else {
        return 0;
    }
    sqlite3_stmt *st;
    if (prepare(db,
                newest ? "SELECT id, type, org_id FROM commands WHERE device_id = ?1"
                         " AND state = 'sent' AND match_key = ?2 ORDER BY id DESC LIMIT 1"
                       : "SELECT id, type, org_id FROM commands WHERE device_id = ?1"
                         " AND state = 'sent' AND match_key = ?2 ORDER BY id LIMIT 1",
                &st))
        return ST_EIO;
    sqlite3_bind_int64(st, 1, device_id);
    sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sqlite3_finalize(st);
        return rc == SQLITE_DONE ? 0 : ST_EIO;
    }
    int64_t id = sqlite3_column_int64(st, 0), org = sqlite3_column_int64(st, 2);
    char type[32];
    snprintf(type, sizeof type, "%s", col_text(st, 1));
    sqlite3_finalize(st);

    sqlite3_stmt *up;
    if (prepare(db,
                "UPDATE commands SET state = ?2, done_at = ?3," DONE_MASK " result = ?4"
                " WHERE id = ?1",
                &up))
        return ST_EIO;
    sqlite3_bind_int64(up, 1, id);
    sqlite3_bind_text(up, 2, ok ? "confirmed" : "failed", -1, SQLITE_STATIC);
    sqlite3_bind_int64(up, 3, now);
    sqlite3_bind_text(up, 4, result, -1, SQLITE_STATIC);
    if (step_done(db, up))
        return ST_EIO;
    struct buf b = {0};
    const char *detail = command_detail(&b, id, type, "answer", result);
    int out = shipment_id ? custody_command(db, shipment_id, device_id, id, now,
                                            ok ? "command_confirmed" : "command_failed",
                                            r->device_id, "device", detail)
                          : 0;
    if (out == 0 && !ok) {
        snprintf(failed_detail, sizeof failed_detail, "%s", detail);
        ev->type = "command_failed";
        ev->org_id = org;
        ev->device_id = device_id;
        ev->device_uid = r->device_id;
        ev->shipment_id = shipment_id;
        ev->time = now;
        ev->source = "device";
        ev->reason = "the device refused the command";
        ev->detail = failed_detail;
    }
    buf_free(&b);
    if (out < 0)
        return out;
    char dev[ST_LOG_TEXT_MAX], res[ST_LOG_TEXT_MAX];
    st_log(ok ? ST_LOG_INFO : ST_LOG_WARN, "event=command_%s id=%" PRId64 " device=%s answer=%s",
           ok ? "confirmed" : "failed", id, st_log_text(r->device_id, dev),
           st_log_text(result, res));
    return 1;
}
