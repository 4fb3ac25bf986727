/* routes_account.c — sessions, API tokens, organisations and users. */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "../core/err.h"
#include "../core/log.h"
#include "../core/timeutil.h"
#include "../store/schema.h"
#include "api_internal.h"
#include "auth.h"

#define NAME_MAX_LEN 64
#define PASSWORD_MIN 8
#define PASSWORD_MAX 256
#define RETENTION_DAYS_MAX 36500

/* ---- sessions ------------------------------------------------------------- */

/* A hash to check when the user does not exist, so that a wrong name costs the
 * same time as a wrong password (no user enumeration by timing). */
static char dummy_hash[AUTH_HASH_MAX];
static pthread_once_t dummy_once = PTHREAD_ONCE_INIT;
static void dummy_hash_make(void)
{
    auth_password_hash("not a password of anybody", dummy_hash);
}

static void write_user(struct jsonw *w, sqlite3_stmt *st)
{
    jsonw_obj_begin(w);
    api_col_int(w, "id", st, 0);
    api_col_str(w, "name", st, 1);
    api_col_int(w, "org_id", st, 2);
    api_col_str(w, "role", st, 3);
    api_col_bool(w, "disabled", st, 4);
    api_col_time(w, "created_at", st, 5, 1);
    jsonw_obj_end(w);
}
#define USER_COLUMNS "id, name, org_id, role, disabled, created_at"

static void answer_me(struct api_call *c, int64_t user_id)
{
    sqlite3_stmt *st;
    if (api_prepare(c, "SELECT u.id, u.name, u.org_id, u.role, u.disabled, u.created_at, o.name"
                       " FROM users u JOIN orgs o ON o.id = u.org_id WHERE u.id = ?1", &st))
        return;
    sqlite3_bind_int64(st, 1, user_id);
    if (sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_finalize(st);
        api_error(c, 401, NULL, "the user no longer exists");
        return;
    }
    struct jsonw w;
    api_json_begin(c, 200, &w);
    jsonw_obj_begin(&w);
    jsonw_key(&w, "user");
    write_user(&w, st);
    jsonw_key(&w, "org");
    jsonw_obj_begin(&w);
    api_col_int(&w, "id", st, 2);
    api_col_str(&w, "name", st, 6);
    jsonw_obj_end(&w);
    jsonw_key(&w, "system_admin");
    jsonw_bool(&w, sqlite3_column_int64(st, 2) == 1 &&
                       strcmp((const char *)sqlite3_column_text(st, 3), "admin") == 0);
    jsonw_obj_end(&w);
    sqlite3_finalize(st);
}

void api_session_create(struct api_call *c)
{
    static const char *const allowed[] = {"name", "password", NULL};
    const char *name, *password;
    if (api_body(c, allowed) || api_field_str(c, "name", NAME_MAX_LEN, true, false, &name) ||
        api_field_str(c, "password", PASSWORD_MAX, true, false, &password))
        return;
    int64_t now = st_now();
    char addr_key[96], user_key[96];
    snprintf(addr_key, sizeof addr_key, "addr:%s", c->req->peer);
    snprintf(user_key, sizeof user_key, "user:%s", name);
    int64_t wait = auth_limit_wait(addr_key, now), wait_user = auth_limit_wait(user_key, now);
    if (wait_user > wait)
        wait = wait_user;
    if (wait > 0) {
        api_header(c, "Retry-After: %" PRId64, wait);
        api_error(c, 429, NULL, "too many failed logins; retry in %" PRId64 " s", wait);
        return;
    }
    sqlite3_stmt *st;
    if (api_prepare(c, "SELECT id, password_hash, disabled FROM users WHERE name = ?1", &st))
        return;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    bool found = sqlite3_step(st) == SQLITE_ROW;
    int64_t user_id = found ? sqlite3_column_int64(st, 0) : 0;
    bool ok;
    if (found) {
        ok = auth_password_verify((const char *)sqlite3_column_text(st, 1), password) &&
             sqlite3_column_int(st, 2) == 0;
    } else {
        pthread_once(&dummy_once, dummy_hash_make);
        auth_password_verify(dummy_hash, password);
        ok = false;
    }
    sqlite3_finalize(st);
    if (!ok) {
        auth_limit_fail(addr_key, now);
        auth_limit_fail(user_key, now);
        char who[ST_LOG_TEXT_MAX];
        st_log(ST_LOG_WARN, "event=login_failed peer=%s user=\"%s\"", c->req->peer,
               st_log_text(name, who));
        api_error(c, 401, NULL, "wrong name or password");
        return;
    }
    auth_limit_reset(user_key);
    char secret[AUTH_SECRET_LEN + 1];
    uint8_t digest[AUTH_DIGEST_LEN];
    auth_secret_new(secret, digest);
    if (api_prepare(c, "INSERT INTO sessions(user_id, hash, created_at, expires_at, peer)"
                       " VALUES(?1, ?2, ?3, ?4, ?5)", &st))
        return;
    sqlite3_bind_int64(st, 1, user_id);
    sqlite3_bind_blob(st, 2, digest, sizeof digest, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, now);
    sqlite3_bind_int64(st, 4, now + (int64_t)c->cfg->http_session_hours * 3600);
    sqlite3_bind_text(st, 5, c->req->peer, -1, SQLITE_STATIC);
    if (api_step_write(c, st, NULL))
        return;
    /* expired sessions go when anybody logs in: the table stays small */
    if (sqlite3_prepare_v2(c->db, "DELETE FROM sessions WHERE expires_at <= ?1", -1, &st, NULL) ==
        SQLITE_OK) {
        sqlite3_bind_int64(st, 1, now);
        sqlite3_step(st);
        sqlite3_finalize(st);
    }
    c->who.user_id = user_id;
    answer_me(c, user_id);
    api_set_cookie(c, secret);
}

void api_session_get(struct api_call *c)
{
    answer_me(c, c->who.user_id);
}

void api_session_delete(struct api_call *c)
{
    sqlite3_stmt *st;
    if (c->who.session_id) {
        if (api_prepare(c, "DELETE FROM sessions WHERE id = ?1", &st))
            return;
        sqlite3_bind_int64(st, 1, c->who.session_id);
        if (api_step_write(c, st, NULL))
            return;
    }
    api_no_content(c);
    api_set_cookie(c, NULL);
}

/* ---- tokens ---------------------------------------------------------------- */

static void write_token(struct jsonw *w, sqlite3_stmt *st, const char *secret)
{
    jsonw_obj_begin(w);
    api_col_int(w, "id", st, 0);
    api_col_str(w, "name", st, 1);
    api_col_str(w, "prefix", st, 2);
    api_col_time(w, "created_at", st, 3, 1);
    api_col_time(w, "last_used", st, 4, 1);
    api_col_time(w, "expires_at", st, 5, 1);
    if (secret) {
        jsonw_key(w, "token");
        jsonw_str(w, secret);
    }
    jsonw_obj_end(w);
}
#define TOKEN_COLUMNS "id, name, prefix, created_at, last_used, expires_at"

void api_tokens_list(struct api_call *c)
{
    sqlite3_stmt *st;
    if (api_prepare(c, "SELECT " TOKEN_COLUMNS " FROM api_tokens WHERE user_id = ?1"
                       " AND revoked_at IS NULL ORDER BY id", &st))
        return;
    sqlite3_bind_int64(st, 1, c->who.user_id);
    struct jsonw w;
    api_json_begin(c, 200, &w);
    jsonw_obj_begin(&w);
    jsonw_key(&w, "tokens");
    jsonw_arr_begin(&w);
    while (sqlite3_step(st) == SQLITE_ROW)
        write_token(&w, st, NULL);
    jsonw_arr_end(&w);
    jsonw_obj_end(&w);
    sqlite3_finalize(st);
}

void api_tokens_create(struct api_call *c)
{
    static const char *const allowed[] = {"name", "expires_days", NULL};
    const char *name;
    int64_t days = 0;
    if (api_body(c, allowed) || api_field_str(c, "name", NAME_MAX_LEN, true, false, &name) ||
        api_field_int(c, "expires_days", 1, 3650, false, NULL, &days) < 0)
        return;
    char secret[AUTH_SECRET_LEN + 1], prefix[AUTH_PREFIX_LEN + 1];
    uint8_t digest[AUTH_DIGEST_LEN];
    auth_secret_new(secret, digest);
    memcpy(prefix, secret, AUTH_PREFIX_LEN);
    prefix[AUTH_PREFIX_LEN] = '\0';
    int64_t now = st_now();
    sqlite3_stmt *st;
    if (api_prepare(c, "INSERT INTO api_tokens(user_id, name, prefix, hash, created_at, expires_at)"
                       " VALUES(?1, ?2, ?3, ?4, ?5, ?6) RETURNING " TOKEN_COLUMNS, &st))
        return;
    sqlite3_bind_int64(st, 1, c->who.user_id);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, prefix, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 4, digest, sizeof digest, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, now);
    if (days)
        sqlite3_bind_int64(st, 6, now + days * 86400);
    if (sqlite3_step(st) != SQLITE_ROW) {
        api_db_error(c);
        sqlite3_finalize(st);
        return;
    }
    struct jsonw w;
    api_json_begin(c, 201, &w);
    write_token(&w, st, secret);
    sqlite3_finalize(st);
    st_log(ST_LOG_INFO, "event=token_created user=%" PRId64 " prefix=%s", c->who.user_id, prefix);
}

void api_tokens_delete(struct api_call *c)
{
    sqlite3_stmt *st;
    if (api_prepare(c, "UPDATE api_tokens SET revoked_at = ?3 WHERE id = ?1 AND user_id = ?2"
                       " AND revoked_at IS NULL", &st))
        return;
    sqlite3_bind_int64(st, 1, c->id);
    sqlite3_bind_int64(st, 2, c->who.user_id);
    sqlite3_bind_int64(st, 3, st_now());
    if (api_step_write(c, st, NULL))
        return;
    if (sqlite3_changes(c->db) == 0) {
        api_error(c, 404, NULL, "no such token");
        return;
    }
    api_no_content(c);
}

/* ---- organisations ----------------------------------------------------------- */

#define ORG_COLUMNS "id, name, retention_positions_days, retention_raw_days, created_at"

static void write_org(struct jsonw *w, sqlite3_stmt *st)
{
    jsonw_obj_begin(w);
    api_col_int(w, "id", st, 0);
    api_col_str(w, "name", st, 1);
    api_col_int(w, "retention_positions_days", st, 2);
    api_col_int(w, "retention_raw_days", st, 3);
    api_col_time(w, "created_at", st, 4, 1);
    jsonw_obj_end(w);
}

static bool require_system_admin(struct api_call *c)
{
    if (!c->who.system_admin)
        api_error(c, 403, NULL, "only administrators of organisation 1 manage organisations");
    return c->who.system_admin;
}

/* Answer one organisation (status 200 or 201), 404 when absent. */
static void answer_org(struct api_call *c, int64_t id, int status)
{
    sqlite3_stmt *st;
    if (api_prepare(c, "SELECT " ORG_COLUMNS " FROM orgs WHERE id = ?1", &st))
        return;
    sqlite3_bind_int64(st, 1, id);
    if (sqlite3_step(st) == SQLITE_ROW) {
        struct jsonw w;
        api_json_begin(c, status, &w);
        write_org(&w, st);
    } else
        api_error(c, 404, NULL, "no such organisation");
    sqlite3_finalize(st);
}

void api_orgs_list(struct api_call *c)
{
    sqlite3_stmt *st;
    if (!require_system_admin(c) || api_prepare(c, "SELECT " ORG_COLUMNS " FROM orgs ORDER BY id", &st))
        return;
    struct jsonw w;
    api_json_begin(c, 200, &w);
    jsonw_obj_begin(&w);
    jsonw_key(&w, "orgs");
    jsonw_arr_begin(&w);
    while (sqlite3_step(st) == SQLITE_ROW)
        write_org(&w, st);
    jsonw_arr_end(&w);
    jsonw_obj_end(&w);
    sqlite3_finalize(st);
}

static const char *const org_fields[] = {"name", "retention_positions_days", "retention_raw_days",
                                         NULL};

/* Bind the retention fields present in the body to ?2/?3 (?4/?5 say which are present). */
static int bind_retention(struct api_call *c, sqlite3_stmt *st)
{
    for (int i = 0; i < 2; i++) {
        bool is_null;
        int64_t days = 0;
        int rc = api_field_int(c, org_fields[1 + i], 1, RETENTION_DAYS_MAX, true, &is_null, &days);
        if (rc < 0)
            return -1;
        if (rc == 1 && !is_null)
            sqlite3_bind_int64(st, 2 + i, days);
        sqlite3_bind_int(st, 4 + i, rc == 1);
    }
    return 0;
}

void api_orgs_create(struct api_call *c)
{
    const char *name;
    sqlite3_stmt *st;
    if (!require_system_admin(c) || api_body(c, org_fields) ||
        api_field_str(c, "name", NAME_MAX_LEN, true, false, &name) ||
        api_prepare(c, "INSERT INTO orgs(name, retention_positions_days, retention_raw_days,"
                       " created_at) VALUES(?1, ?2, ?3, ?6)", &st))
        return;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, st_now());
    if (bind_retention(c, st)) {
        sqlite3_finalize(st);
        return;
    }
    if (api_step_write(c, st, "name"))
        return;
    answer_org(c, sqlite3_last_insert_rowid(c->db), 201);
}

/* May the caller see organisation c->id? (404 otherwise.) */
static bool org_visible(struct api_call *c)
{
    if (c->who.system_admin || c->who.org_id == c->id)
        return true;
    api_error(c, 404, NULL, "no such organisation");
    return false;
}

void api_orgs_get(struct api_call *c)
{
    if (org_visible(c))
        answer_org(c, c->id, 200);
}

void api_orgs_update(struct api_call *c)
{
    const char *name;
    sqlite3_stmt *st;
    if (!org_visible(c) || api_body(c, org_fields) ||
        api_field_str(c, "name", NAME_MAX_LEN, false, false, &name))
        return;
    if (name && !c->who.system_admin) {
        api_error(c, 403, "name", "only administrators of organisation 1 rename organisations");
        return;
    }
    if (api_prepare(c, "UPDATE orgs SET name = coalesce(?1, name),"
                       " retention_positions_days = CASE WHEN ?4 THEN ?2 ELSE retention_positions_days END,"
                       " retention_raw_days = CASE WHEN ?5 THEN ?3 ELSE retention_raw_days END"
                       " WHERE id = ?6", &st))
        return;
    if (name)
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, c->id);
    if (bind_retention(c, st)) {
        sqlite3_finalize(st);
        return;
    }
    if (api_step_write(c, st, "name"))
        return;
    answer_org(c, c->id, 200);
}

/* Count rows of a table that belong to organisation id. */
static int64_t org_count(struct api_call *c, const char *sql, int64_t id)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_int64(st, 1, id);
    int64_t n = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_finalize(st);
    return n;
}

void api_orgs_delete(struct api_call *c)
{
    if (!require_system_admin(c))
        return;
    if (c->id == 1) {
        api_error(c, 409, NULL, "organisation 1 holds the system administrators and stays");
        return;
    }
    int64_t devices = org_count(c, "SELECT count(*) FROM devices WHERE org_id = ?1", c->id);
    int64_t users = org_count(c, "SELECT count(*) FROM users WHERE org_id = ?1", c->id);
    if (devices < 0 || users < 0) {
        api_db_error(c);
        return;
    }
    if (devices || users) {
        api_error(c, 409, NULL, "the organisation still has %" PRId64 " devices and %" PRId64
                  " users", devices, users);
        return;
    }
    sqlite3_stmt *st;
    if (api_prepare(c, "DELETE FROM orgs WHERE id = ?1", &st))
        return;
    sqlite3_bind_int64(st, 1, c->id);
    if (api_step_write(c, st, NULL))
        return;
    if (sqlite3_changes(c->db) == 0)
        api_error(c, 404, NULL, "no such organisation");
    else
        api_no_content(c);
}

/* ---- users -------------------------------------------------------------------- */

/* Answer one user of an organisation the caller administers (404 otherwise). */
static void answer_user(struct api_call *c, int64_t id, int status)
{
    sqlite3_stmt *st;
    if (api_prepare(c, "SELECT " USER_COLUMNS " FROM users WHERE id = ?1"
                       " AND (org_id = ?2 OR ?3)", &st))
        return;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, c->who.org_id);
    sqlite3_bind_int(st, 3, c->who.system_admin);
    if (sqlite3_step(st) == SQLITE_ROW) {
        struct jsonw w;
        api_json_begin(c, status, &w);
        write_user(&w, st);
    } else
        api_error(c, 404, NULL, "no such user");
    sqlite3_finalize(st);
}

void api_users_list(struct api_call *c)
{
    int64_t org;
    if (api_query_int(c, "org_id", 1, INT64_MAX, c->who.org_id, &org))
        return;
    if (org != c->who.org_id && !c->who.system_admin) {
        api_error(c, 404, "org_id", "no such organisation");
        return;
    }
    sqlite3_stmt *st;
    if (api_prepare(c, "SELECT " USER_COLUMNS " FROM users WHERE org_id = ?1 ORDER BY id", &st))
        return;
    sqlite3_bind_int64(st, 1, org);
    struct jsonw w;
    api_json_begin(c, 200, &w);
    jsonw_obj_begin(&w);
    jsonw_key(&w, "users");
    jsonw_arr_begin(&w);
    while (sqlite3_step(st) == SQLITE_ROW)
        write_user(&w, st);
    jsonw_arr_end(&w);
    jsonw_obj_end(&w);
    sqlite3_finalize(st);
}

static int check_role(struct api_call *c, const char *role)
{
    if (role && api_role_parse(role) == ROLE_NONE) {
        api_error(c, 400, "role", "must be admin, operator or viewer");
        return -1;
    }
    return 0;
}

static int check_password(struct api_call *c, const char *password, char hash[AUTH_HASH_MAX])
{
    if (!password)
        return 0;
    if (strlen(password) < PASSWORD_MIN) {
        api_error(c, 400, "password", "must have at least %d characters", PASSWORD_MIN);
        return -1;
    }
    if (auth_password_hash(password, hash)) {
        api_error(c, 500, NULL, "could not hash the password");
        return -1;
    }
    return 0;
}

void api_users_create(struct api_call *c)
{
    static const char *const allowed[] = {"name", "password", "role", "org_id", NULL};
    const char *name, *password, *role;
    int64_t org = c->who.org_id;
    char hash[AUTH_HASH_MAX];
    if (api_body(c, allowed) || api_field_str(c, "name", NAME_MAX_LEN, true, false, &name) ||
        api_field_str(c, "password", PASSWORD_MAX, true, false, &password) ||
        api_field_str(c, "role", 16, true, false, &role) ||
        api_field_int(c, "org_id", 1, INT64_MAX, false, NULL, &org) < 0 || check_role(c, role))
        return;
    if (org != c->who.org_id) {
        if (!c->who.system_admin) {
            api_error(c, 403, "org_id", "only administrators of organisation 1 place users in "
                                        "other organisations");
            return;
        }
        if (org_count(c, "SELECT count(*) FROM orgs WHERE id = ?1", org) != 1) {
            api_error(c, 400, "org_id", "no such organisation");
            return;
        }
    }
    if (check_password(c, password, hash))
        return;
    sqlite3_stmt *st;
    if (api_prepare(c, "INSERT INTO users(org_id, name, password_hash, role, created_at)"
                       " VALUES(?1, ?2, ?3, ?4, ?5)", &st))
        return;
    sqlite3_bind_int64(st, 1, org);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, hash, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, role, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, st_now());
    if (api_step_write(c, st, "name"))
        return;
    int64_t id = sqlite3_last_insert_rowid(c->db);
    st_log(ST_LOG_INFO, "event=user_created by=%" PRId64 " user=%" PRId64 " org=%" PRId64 " role=%s",
           c->who.user_id, id, org, role);
    answer_user(c, id, 201);
}

void api_users_get(struct api_call *c)
{
    answer_user(c, c->id, 200);
}

/* Is user id in an organisation the caller administers? (404 otherwise.) */
static bool user_visible(struct api_call *c)
{
    sqlite3_stmt *st;
    if (api_prepare(c, "SELECT 1 FROM users WHERE id = ?1 AND (org_id = ?2 OR ?3)", &st))
        return false;
    sqlite3_bind_int64(st, 1, c->id);
    sqlite3_bind_int64(st, 2, c->who.org_id);
    sqlite3_bind_int(st, 3, c->who.system_admin);
    bool ok = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
    if (!ok)
        api_error(c, 404, NULL, "no such user");
    return ok;
}

void api_users_update(struct api_call *c)
{
    static const char *const allowed[] = {"password", "role", "disabled", NULL};
    const char *password, *role;
    bool disabled = false;
    int has_disabled;
    char hash[AUTH_HASH_MAX];
    if (!user_visible(c) || api_body(c, allowed) ||
        api_field_str(c, "password", PASSWORD_MAX, false, false, &password) ||
        api_field_str(c, "role", 16, false, false, &role) || check_role(c, role) ||
        (has_disabled = api_field_bool(c, "disabled", &disabled)) < 0 ||
        check_password(c, password, hash))
        return;
    sqlite3_stmt *st;
    if (api_prepare(c, "UPDATE users SET password_hash = coalesce(?2, password_hash),"
                       " role = coalesce(?3, role), disabled = coalesce(?4, disabled) WHERE id = ?1",
                    &st))
        return;
    sqlite3_bind_int64(st, 1, c->id);
    if (password)
        sqlite3_bind_text(st, 2, hash, -1, SQLITE_STATIC);
    if (role)
        sqlite3_bind_text(st, 3, role, -1, SQLITE_STATIC);
    if (has_disabled)
        sqlite3_bind_int(st, 4, disabled);
    if (api_step_write(c, st, NULL))
        return;
    if (password || disabled) { /* a new password or a disabled account ends its sessions */
        if (api_prepare(c, "DELETE FROM sessions WHERE user_id = ?1", &st))
            return;
        sqlite3_bind_int64(st, 1, c->id);
        if (api_step_write(c, st, NULL))
            return;
    }
    answer_user(c, c->id, 200);
}

void api_users_delete(struct api_call *c)
{
    if (!user_visible(c))
        return;
    if (c->id == c->who.user_id) {
        api_error(c, 409, NULL, "you cannot delete yourself");
        return;
    }
    sqlite3_stmt *st;
    if (api_prepare(c, "DELETE FROM users WHERE id = ?1", &st)) /* sessions, tokens cascade */
        return;
    sqlite3_bind_int64(st, 1, c->id);
    if (api_step_write(c, st, NULL))
        return;
    api_no_content(c);
}

/* ---- the first admin (command line) ----------------------------------------------- */

int api_user_add(const char *path, const char *org, const char *name, const char *role,
                 const char *password, char *err, size_t errlen)
{
    err[0] = '\0';
    if (api_role_parse(role) == ROLE_NONE) {
        snprintf(err, errlen, "role '%s' is not admin, operator or viewer", role);
        return ST_ECONFIG;
    }
    if (strlen(name) == 0 || strlen(name) > NAME_MAX_LEN || strlen(org) == 0 ||
        strlen(org) > NAME_MAX_LEN) {
        snprintf(err, errlen, "names must have 1..%d characters", NAME_MAX_LEN);
        return ST_ECONFIG;
    }
    if (strlen(password) < PASSWORD_MIN || strlen(password) > PASSWORD_MAX) {
        snprintf(err, errlen, "the password must have %d..%d characters", PASSWORD_MIN,
                 PASSWORD_MAX);
        return ST_ECONFIG;
    }
    sqlite3 *db;
    if (schema_open(path, 0, &db)) {
        snprintf(err, errlen, "cannot open the database %s", path);
        return ST_EIO;
    }
    int64_t now = st_now();
    sqlite3_stmt *st = NULL;
    int rc = ST_EIO;
    char hash[AUTH_HASH_MAX];
    if (sqlite3_prepare_v2(db, "SELECT 1 FROM users WHERE name = ?1", -1, &st, NULL) != SQLITE_OK)
        goto done;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    bool exists = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
    st = NULL;
    if (exists) { /* before hashing: argon2id is slow on purpose */
        snprintf(err, errlen, "user '%s' exists already", name);
        rc = ST_EEXIST;
        goto done;
    }
    if (auth_init() || auth_password_hash(password, hash)) {
        snprintf(err, errlen, "could not hash the password");
        goto done;
    }
    if (sqlite3_prepare_v2(db, "INSERT INTO orgs(name, created_at) VALUES(?1, ?2)"
                               " ON CONFLICT(name) DO NOTHING", -1, &st, NULL) != SQLITE_OK)
        goto done;
    sqlite3_bind_text(st, 1, org, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, now);
    if (sqlite3_step(st) != SQLITE_DONE)
        goto done;
    sqlite3_finalize(st);
    if (sqlite3_prepare_v2(db, "INSERT INTO users(org_id, name, password_hash, role, created_at)"
                               " SELECT id, ?2, ?3, ?4, ?5 FROM orgs WHERE name = ?1",
                           -1, &st, NULL) != SQLITE_OK)
        goto done;
    sqlite3_bind_text(st, 1, org, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, hash, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, role, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, now);
    if (sqlite3_step(st) != SQLITE_DONE) {
        if (sqlite3_extended_errcode(db) == SQLITE_CONSTRAINT_UNIQUE) { /* created meanwhile */
            snprintf(err, errlen, "user '%s' exists already", name);
            rc = ST_EEXIST;
        }
        goto done;
    }
    rc = 0;
done:
    if (rc == ST_EIO && !err[0])
        snprintf(err, errlen, "database: %s", sqlite3_errmsg(db));
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rc;
}
