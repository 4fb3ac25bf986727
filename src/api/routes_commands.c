/* routes_commands.c — remote commands (queue, list, get, cancel) and the per-model command
 * templates that fill in commands a protocol does not document. Validation, authorisation
 * and storage are commands.c's; this file reads the body and shapes the answers. A command's
 * params are always shown with their secrets masked (COMMAND_PARAMS_MASKED). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "../core/log.h"
#include "../core/timeutil.h"
#include "../domain/commands.h"
#include "api_internal.h"

#define SECRET_MAX 64
#define TEXT_MAX 512
#define MODEL_MAX 64

#define COMMAND_COLUMNS                                                                            \
    "id, device_id, type, " COMMAND_PARAMS_MASKED(                                                 \
        "params") ", state, created_at, expires_at,"                                               \
                  " sent_at, done_at, result, user_id, shipment_id, attempts"

static const char *const command_states[] = {"queued",  "sent",    "confirmed", "failed",
                                             "expired", "refused", "cancelled", NULL};

static void command_json(struct api_call *c, struct jsonw *w, sqlite3_stmt *st, void *arg)
{
    (void)c;
    (void)arg;
    jsonw_obj_begin(w);
    api_col_int(w, "id", st, 0);
    api_col_int(w, "device_id", st, 1);
    api_col_str(w, "type", st, 2);
    api_col_json(w, "params", st, 3);
    api_col_str(w, "state", st, 4);
    api_col_time(w, "created_at", st, 5, 1);
    api_col_time(w, "expires_at", st, 6, 1);
    api_col_time(w, "sent_at", st, 7, 1);
    api_col_time(w, "done_at", st, 8, 1);
    api_col_str(w, "result", st, 9);
    api_col_int(w, "user_id", st, 10);
    api_col_int(w, "shipment_id", st, 11);
    api_col_int(w, "attempts", st, 12);
    jsonw_obj_end(w);
}

/* Answer with command id of the caller's organisation (404 when there is none). */
static void answer_command(struct api_call *c, int64_t id, int status)
{
    api_answer_owned(c, "SELECT " COMMAND_COLUMNS " FROM commands WHERE id = ?1 AND org_id = ?2",
                     id, status, command_json, NULL, "no such command");
}

void api_commands_create(struct api_call *c)
{
    static const char *const keys[] = {
        "type", "password", "code", "new_password", "cards", "text", "number", "ttl_s", NULL};
    struct command_request req = {
        .org_id = c->who.org_id, .device_id = c->id, .user_id = c->who.user_id, .now = st_now()};
    int64_t number = 0;
    char name[128];
    if (!api_device_visible(c, c->id, NULL, 0) || api_body(c, keys) ||
        api_field_str(c, "type", 32, true, false, &req.type) ||
        api_field_str(c, "password", SECRET_MAX, false, false, &req.password) ||
        api_field_str(c, "code", SECRET_MAX, false, false, &req.code) ||
        api_field_str(c, "new_password", SECRET_MAX, false, false, &req.new_password) ||
        api_field_str(c, "cards", TEXT_MAX, false, false, &req.cards) ||
        api_field_str(c, "text", TEXT_MAX, false, false, &req.text) ||
        api_field_int(c, "number", 1, INT32_MAX, false, NULL, &number) < 0 ||
        api_field_int(c, "ttl_s", 1, COMMAND_TTL_MAX_S, false, NULL, &req.ttl_s) < 0 ||
        api_user_name(c, name, sizeof name))
        return;
    req.number = (long)number;
    req.user_name = name[0] ? name : NULL;
    int64_t id;
    const char *field;
    char err[512];
    int rc = commands_create(c->db, &req, &id, &field, err, sizeof err);
    switch (rc) {
    case COMMAND_QUEUED:
        c->command_device = c->id;
        answer_command(c, id, 201);
        return;
    case COMMAND_REFUSED: {
        struct jsonw w;
        api_json_begin(c, 403, &w);
        snprintf(c->error, sizeof c->error, "%.*s", (int)sizeof c->error - 1, err);
        jsonw_obj_begin(&w);
        jsonw_key(&w, "error");
        jsonw_str(&w, err);
        jsonw_key(&w, "command_id");
        jsonw_int(&w, id);
        jsonw_obj_end(&w);
        return;
    }
    case COMMAND_INVALID: api_error(c, 400, field, "%s", err); return;
    case COMMAND_UNSUPPORTED: api_error(c, 422, field, "%s", err); return;
    case COMMAND_NO_DEVICE: api_error(c, 404, NULL, "no such device"); return;
    default: api_db_error(c); return;
    }
}

void api_commands_list(struct api_call *c)
{
    int64_t limit, before;
    char state[16];
    int has_state;
    if (!api_device_visible(c, c->id, NULL, 0) || api_query_int(c, "limit", 1, 1000, 100, &limit) ||
        api_query_int(c, "before_id", 1, INT64_MAX, INT64_MAX, &before) ||
        (has_state = api_query_str(c, "state", state, sizeof state)) < 0)
        return;
    if (has_state) {
        size_t i = 0;
        while (command_states[i] && strcmp(command_states[i], state) != 0)
            i++;
        if (!command_states[i]) {
            api_error(c, 400, "state",
                      "one of queued, sent, confirmed, failed, expired, refused,"
                      " cancelled");
            return;
        }
    }
    sqlite3_stmt *st;
    if (api_prepare(c,
                    "SELECT " COMMAND_COLUMNS " FROM commands"
                    " WHERE device_id = ?1 AND org_id = ?2 AND id < ?3"
                    " AND (?4 IS NULL OR state = ?4) ORDER BY id DESC LIMIT ?5",
                    &st))
        return;
    sqlite3_bind_int64(st, 1, c->id);
    sqlite3_bind_int64(st, 2, c->who.org_id);
    sqlite3_bind_int64(st, 3, before);
    if (has_state)
        sqlite3_bind_text(st, 4, state, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, limit + 1);
    api_answer_page(c, st, "commands", limit, command_json, NULL);
}

void api_commands_get(struct api_call *c)
{
    answer_command(c, c->id, 200);
}

/* Cancel: only a queued command (one already sent is in the device's hands). */
void api_commands_cancel(struct api_call *c)
{
    sqlite3_stmt *st;
    if (api_prepare(c,
                    "UPDATE commands SET state = 'cancelled', done_at = ?3,"
                    " params = " COMMAND_PARAMS_MASKED(
                        "params") ","
                                  " result = 'cancelled by an operator'"
                                  " WHERE id = ?1 AND org_id = ?2 AND state = 'queued'",
                    &st))
        return;
    sqlite3_bind_int64(st, 1, c->id);
    sqlite3_bind_int64(st, 2, c->who.org_id);
    sqlite3_bind_int64(st, 3, st_now());
    if (api_step_write(c, st, NULL))
        return;
    if (sqlite3_changes(c->db) == 1) {
        st_log(ST_LOG_INFO, "event=command_cancelled id=%" PRId64 " by=%" PRId64, c->id,
               c->who.user_id);
        answer_command(c, c->id, 200);
        return;
    }
    if (api_prepare(c, "SELECT state FROM commands WHERE id = ?1 AND org_id = ?2", &st))
        return;
    sqlite3_bind_int64(st, 1, c->id);
    sqlite3_bind_int64(st, 2, c->who.org_id);
    if (sqlite3_step(st) == SQLITE_ROW)
        api_error(c, 409, NULL, "the command is %s: only a queued command can be cancelled",
                  (const char *)sqlite3_column_text(st, 0));
    else
        api_error(c, 404, NULL, "no such command");
    sqlite3_finalize(st);
}

/* ---- templates ------------------------------------------------------------ */

#define TEMPLATE_COLUMNS "id, model, type, template, enabled, created_at"

static void template_json(struct api_call *c, struct jsonw *w, sqlite3_stmt *st, void *arg)
{
    (void)c;
    (void)arg;
    jsonw_obj_begin(w);
    api_col_int(w, "id", st, 0);
    api_col_str(w, "model", st, 1);
    api_col_str(w, "type", st, 2);
    api_col_str(w, "template", st, 3);
    api_col_bool(w, "enabled", st, 4);
    api_col_time(w, "created_at", st, 5, 1);
    jsonw_obj_end(w);
}

static void answer_template(struct api_call *c, int64_t id, int status)
{
    api_answer_owned(c,
                     "SELECT " TEMPLATE_COLUMNS " FROM command_templates"
                     " WHERE id = ?1 AND org_id = ?2",
                     id, status, template_json, NULL, "no such command template");
}

void api_command_templates_list(struct api_call *c)
{
    sqlite3_stmt *st;
    if (api_prepare(c,
                    "SELECT " TEMPLATE_COLUMNS " FROM command_templates WHERE org_id = ?1"
                    " ORDER BY model, type",
                    &st))
        return;
    sqlite3_bind_int64(st, 1, c->who.org_id);
    api_answer_page(c, st, "templates", INT64_MAX, template_json, NULL);
}

static const char *const template_keys[] = {"model", "type", "template", "enabled", NULL};

/* A template's fields, from the body over the stored ones (update) or none (create). */
struct template_fields {
    const char *model, *type, *template;
    bool enabled;
};

/* Read the body's fields into f (present ones replace f's) and check the result. 0 or -1
 * (answered). */
static int template_fields_read(struct api_call *c, bool create, struct template_fields *f)
{
    const char *model, *type, *tpl, *field;
    char err[256];
    if (api_field_str(c, "model", MODEL_MAX, create, false, &model) ||
        api_field_str(c, "type", 32, create, false, &type) ||
        api_field_str(c, "template", COMMAND_TEMPLATE_MAX, create, false, &tpl) ||
        api_field_bool(c, "enabled", &f->enabled) < 0)
        return -1;
    f->model = model ? model : f->model;
    f->type = type ? type : f->type;
    f->template = tpl ? tpl : f->template;
    if (!*f->model) {
        api_error(c, 400, "model", "must not be empty");
        return -1;
    }
    if (commands_template_check(f->type, f->template, &field, err, sizeof err)) {
        api_error(c, 400, field, "%s", err);
        return -1;
    }
    return 0;
}

static void template_log(struct api_call *c, const char *what, int64_t id,
                         const struct template_fields *f)
{
    char model[ST_LOG_TEXT_MAX];
    st_log(ST_LOG_INFO,
           "event=command_template_%s id=%" PRId64 " by=%" PRId64 " model=%s type=%s enabled=%d",
           what, id, c->who.user_id, st_log_text(f->model, model), f->type, f->enabled);
}

void api_command_templates_create(struct api_call *c)
{
    struct template_fields f = {.enabled = false};
    if (api_body(c, template_keys) || template_fields_read(c, true, &f))
        return;
    sqlite3_stmt *st;
    if (api_prepare(c,
                    "INSERT INTO command_templates(org_id, model, type, template, enabled,"
                    " created_at) VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
                    &st))
        return;
    sqlite3_bind_int64(st, 1, c->who.org_id);
    sqlite3_bind_text(st, 2, f.model, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, f.type, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, f.template, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 5, f.enabled);
    sqlite3_bind_int64(st, 6, st_now());
    if (api_step_write(c, st, "type"))
        return;
    int64_t id = sqlite3_last_insert_rowid(c->db);
    template_log(c, "created", id, &f);
    answer_template(c, id, 201);
}

void api_command_templates_update(struct api_call *c)
{
    sqlite3_stmt *st;
    if (api_body(c, template_keys) ||
        api_prepare(c,
                    "SELECT model, type, template, enabled FROM command_templates"
                    " WHERE id = ?1 AND org_id = ?2",
                    &st))
        return;
    sqlite3_bind_int64(st, 1, c->id);
    sqlite3_bind_int64(st, 2, c->who.org_id);
    char model[MODEL_MAX + 1], type[33], tpl[COMMAND_TEMPLATE_MAX + 1];
    struct template_fields f = {model, type, tpl, false};
    bool found = sqlite3_step(st) == SQLITE_ROW;
    if (found) {
        snprintf(model, sizeof model, "%s", (const char *)sqlite3_column_text(st, 0));
        snprintf(type, sizeof type, "%s", (const char *)sqlite3_column_text(st, 1));
        snprintf(tpl, sizeof tpl, "%s", (const char *)sqlite3_column_text(st, 2));
        f.enabled = sqlite3_column_int(st, 3) != 0;
    }
    sqlite3_finalize(st);
    if (!found) {
        api_error(c, 404, NULL, "no such command template");
        return;
    }
    if (template_fields_read(c, false, &f) ||
        api_prepare(c,
                    "UPDATE command_templates SET model = ?3, type = ?4, template = ?5,"
                    " enabled = ?6 WHERE id = ?1 AND org_id = ?2",
                    &st))
        return;
    sqlite3_bind_int64(st, 1, c->id);
    sqlite3_bind_int64(st, 2, c->who.org_id);
    sqlite3_bind_text(st, 3, f.model, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, f.type, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, f.template, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 6, f.enabled);
    if (api_step_write(c, st, "type"))
        return;
    template_log(c, "updated", c->id, &f);
    answer_template(c, c->id, 200);
}

void api_command_templates_delete(struct api_call *c)
{
    if (!api_delete_owned(c, "command_templates", "no such command template"))
        return;
    st_log(ST_LOG_INFO, "event=command_template_deleted id=%" PRId64 " by=%" PRId64, c->id,
           c->who.user_id);
    api_no_content(c);
}
