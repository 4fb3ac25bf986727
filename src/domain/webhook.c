/* webhook.c — the delivery thread: pending webhook_deliveries rows out as signed POSTs.
 *
 * One thread, one SQLite connection, one libcurl multi handle: requests run side by side
 * (at most opts.concurrency), each with its own timeout, so a slow or dead receiver holds
 * only its own slots. A webhook may hold at most a quarter of the slots, so a dead one with
 * a backlog of due deliveries cannot starve a healthy one either. The database is the only
 * queue: a row is in flight when a slot carries its id; the thread scans the due rows
 * (oldest due first) whenever it has a free slot, and sleeps in curl_multi_poll until a
 * transfer progresses, the next row falls due (at most a second: rows of a webhook that
 * is enabled again are noticed that way) or webhook_wake rings.
 *
 * Invariant: a delivery is in at most one slot; its row is written only when its transfer
 * ends (outcomes of one loop turn in one transaction). A crash or a stop mid-transfer
 * leaves the row pending, so it is sent again: receivers see at-least-once delivery and
 * can use X-Sealtrack-Delivery to drop repeats.
 */
#include "webhook.h"

#include <curl/curl.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "../core/buf.h"
#include "../core/err.h"
#include "../core/hex.h"
#include "../core/jsonw.h"
#include "../core/log.h"
#include "../core/mem.h"
#include "../core/timeutil.h"
#include "../store/schema.h"

#define SCAN_MAX 4096    /* due rows looked at per claim */
#define POLL_MAX_MS 1000 /* the longest sleep: picks up re-enabled webhooks */
#define SHIFT_MAX 40     /* back-off doubling beyond this only overflows */

struct flight {
    CURL *easy;
    struct curl_slist *headers;
    bool busy;
    int64_t id, webhook_id;
    int attempts; /* before this one */
    struct buf body;
    char host[ST_LOG_TEXT_MAX]; /* for log lines */
    char error[CURL_ERROR_SIZE];
    char answer[ST_LOG_TEXT_MAX]; /* the start of a refusing receiver's answer */
    size_t answer_len;
};

struct webhook_sender {
    struct webhook_opts o;
    char *db_path;
    sqlite3 *db;
    sqlite3_stmt *sel_due, *sel_one, *sel_next, *upd_ok, *upd_fail;
    CURLM *multi;
    struct flight *slots;
    int per_hook_max;
    pthread_t thread;
    atomic_bool stop;
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static int global_rc;

static void global_init(void)
{
    if (sodium_init() < 0 || curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        global_rc = ST_EIO;
}

/* ---- signing and the body --------------------------------------------------- */

void webhook_sign(const char *secret, int64_t ts, const char *body, size_t body_len, char *out,
                  size_t cap)
{
    if (cap < 72) {
        if (cap)
            out[0] = '\0';
        return;
    }
    char stamp[24];
    int n = snprintf(stamp, sizeof stamp, "%" PRId64 ".", ts);
    crypto_auth_hmacsha256_state h;
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_init(&h, (const unsigned char *)secret, strlen(secret));
    crypto_auth_hmacsha256_update(&h, (const unsigned char *)stamp, (unsigned long long)n);
    crypto_auth_hmacsha256_update(&h, (const unsigned char *)body, body_len);
    crypto_auth_hmacsha256_final(&h, mac);
    memcpy(out, "sha256=", 7);
    st_hex_encode(mac, sizeof mac, out + 7, cap - 7);
}

static void col_int(struct jsonw *w, const char *key, sqlite3_stmt *st, int col)
{
    jsonw_key(w, key);
    if (sqlite3_column_type(st, col) == SQLITE_NULL)
        jsonw_null(w);
    else
        jsonw_int(w, sqlite3_column_int64(st, col));
}

static void col_str(struct jsonw *w, const char *key, sqlite3_stmt *st, int col)
{
    jsonw_key(w, key);
    if (sqlite3_column_type(st, col) == SQLITE_NULL)
        jsonw_null(w);
    else
        jsonw_strn(w, (const char *)sqlite3_column_text(st, col),
                   (size_t)sqlite3_column_bytes(st, col));
}

static void col_num(struct jsonw *w, const char *key, sqlite3_stmt *st, int col)
{
    jsonw_key(w, key);
    jsonw_num(w, sqlite3_column_type(st, col) == SQLITE_NULL ? NAN : sqlite3_column_double(st, col),
              6);
}

/* The detail column, spliced only when it is a JSON object (it is written by alerts.c;
 * a hand-edited row must not make the body invalid). */
static void col_detail(struct jsonw *w, sqlite3_stmt *st, int col)
{
    const char *text = (const char *)sqlite3_column_text(st, col);
    json_error_t jerr;
    json_t *j = text ? json_loads(text, 0, &jerr) : NULL;
    jsonw_key(w, "detail");
    if (json_is_object(j))
        jsonw_raw(w, text);
    else
        jsonw_null(w);
    json_decref(j);
}

/* Columns of sel_one: 0 attempts, 1 url, 2 secret, 3 alert id, 4 type, 5 time, 6 device id,
 * 7 uid, 8 shipment, 9 fence, 10 lat, 11 lon, 12 detail, 13 rule id, 14 rule name. */
static void body_build(int64_t delivery_id, sqlite3_stmt *st, struct buf *out)
{
    struct jsonw w;
    out->len = 0;
    jsonw_init(&w, out);
    jsonw_obj_begin(&w);
    jsonw_key(&w, "delivery_id");
    jsonw_int(&w, delivery_id);
    jsonw_key(&w, "alert");
    jsonw_obj_begin(&w);
    col_int(&w, "id", st, 3);
    col_str(&w, "type", st, 4);
    jsonw_key_time(&w, "time", sqlite3_column_int64(st, 5));
    jsonw_key(&w, "device");
    if (sqlite3_column_type(st, 6) == SQLITE_NULL)
        jsonw_null(&w);
    else {
        jsonw_obj_begin(&w);
        col_int(&w, "id", st, 6);
        col_str(&w, "uid", st, 7);
        jsonw_obj_end(&w);
    }
    col_int(&w, "shipment_id", st, 8);
    col_int(&w, "fence_id", st, 9);
    col_num(&w, "lat", st, 10);
    col_num(&w, "lon", st, 11);
    col_detail(&w, st, 12);
    jsonw_obj_end(&w);
    jsonw_key(&w, "rule");
    if (sqlite3_column_type(st, 13) == SQLITE_NULL)
        jsonw_null(&w); /* the rule was deleted since */
    else {
        jsonw_obj_begin(&w);
        col_int(&w, "id", st, 13);
        col_str(&w, "name", st, 14);
        jsonw_obj_end(&w);
    }
    jsonw_obj_end(&w);
}

/* ---- one transfer ------------------------------------------------------------ */

static size_t on_answer(char *data, size_t size, size_t n, void *arg)
{
    struct flight *f = arg;
    size_t len = size * n, room = sizeof f->answer - 1 - f->answer_len;
    size_t take = len < room ? len : room;
    memcpy(f->answer + f->answer_len, data, take);
    f->answer_len += take;
    f->answer[f->answer_len] = '\0';
    return len; /* the rest is read and dropped */
}

static void url_host(const char *url, char out[ST_LOG_TEXT_MAX])
{
    CURLU *u = curl_url();
    char *host = NULL;
    if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK)
        curl_url_get(u, CURLUPART_HOST, &host, 0);
    st_log_text(host ? host : "-", out);
    curl_free(host);
    curl_url_cleanup(u);
}

static bool header_add(struct flight *f, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static bool header_add(struct flight *f, const char *fmt, ...)
{
    char line[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    struct curl_slist *l = curl_slist_append(f->headers, line);
    if (l)
        f->headers = l;
    return l != NULL;
}

/* Set up f's request from sel_one's row and hand it to the multi handle. 0 or ST_EIO
 * (f->error says why). */
static int transfer_start(struct webhook_sender *w, struct flight *f, sqlite3_stmt *st)
{
    const char *url = (const char *)sqlite3_column_text(st, 1);
    const char *secret = (const char *)sqlite3_column_text(st, 2);
    url_host(url ? url : "", f->host);
    body_build(f->id, st, &f->body);
    int64_t ts = st_now();
    char sig[80];
    webhook_sign(secret ? secret : "", ts, (const char *)f->body.data, f->body.len, sig,
                 sizeof sig);
    CURL *e = f->easy;
    curl_easy_reset(e);
    f->error[0] = '\0';
    f->answer_len = 0;
    f->answer[0] = '\0';
    /* "Expect:" turns off 100-continue, which would stall bigger bodies on receivers that
     * do not answer it */
    if (!header_add(f, "Content-Type: application/json") ||
        !header_add(f, "X-Sealtrack-Signature: %s", sig) ||
        !header_add(f, "X-Sealtrack-Timestamp: %" PRId64, ts) ||
        !header_add(f, "X-Sealtrack-Delivery: %" PRId64, f->id) || !header_add(f, "Expect:"))
        goto fail;
    if (curl_easy_setopt(e, CURLOPT_URL, url ? url : "") != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)w->o.timeout_ms) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_POST, 1L) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, f->body.data) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)f->body.len) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, f->headers) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_USERAGENT, "sealtrack/" SEALTRACK_VERSION) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_answer) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_WRITEDATA, f) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_ERRORBUFFER, f->error) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_PRIVATE, f) != CURLE_OK)
        goto fail;
    if (curl_multi_add_handle(w->multi, e) != CURLM_OK)
        goto fail;
    f->busy = true;
    return 0;
fail:
    if (!f->error[0])
        snprintf(f->error, sizeof f->error, "cannot set up the request");
    return ST_EIO;
}

static void flight_clear(struct flight *f)
{
    curl_slist_free_all(f->headers);
    f->headers = NULL;
    f->busy = false;
}

/* Write the outcome of f's attempt (status 0: no HTTP answer, f->error says why). */
static void outcome(struct webhook_sender *w, struct flight *f, long status)
{
    int64_t now = st_now_ms();
    int attempts = f->attempts + 1;
    sqlite3_stmt *st;
    if (status >= 200 && status <= 299) {
        st = w->upd_ok;
        sqlite3_bind_int64(st, 1, f->id);
        sqlite3_bind_int64(st, 2, status);
        sqlite3_bind_int64(st, 3, now);
        sqlite3_bind_int(st, 4, attempts);
        st_log(ST_LOG_DEBUG,
               "event=webhook_delivered delivery=%" PRId64 " webhook=%" PRId64
               " host=%s status=%ld attempts=%d",
               f->id, f->webhook_id, f->host, status, attempts);
    } else {
        char answer[ST_LOG_TEXT_MAX + 24];
        const char *why = f->error[0] ? f->error : "no answer";
        if (status) {
            snprintf(answer, sizeof answer, "HTTP %ld: %s", status, f->answer);
            why = answer;
        }
        char safe[ST_LOG_TEXT_MAX];
        st_log_text(why, safe);
        bool failed = attempts >= w->o.max_attempts;
        int shift = attempts - 1 < SHIFT_MAX ? attempts - 1 : SHIFT_MAX;
        int64_t delay = (int64_t)w->o.backoff_ms << shift;
        if (delay > w->o.backoff_max_ms || delay <= 0)
            delay = w->o.backoff_max_ms;
        /* up to a tenth more, so receivers coming back are not hit by every retry at once */
        delay += (int64_t)randombytes_uniform((uint32_t)(delay / 10 + 1));
        char next[ST_ISO_LEN];
        st_time_iso((now + delay) / 1000, next);
        st_log(ST_LOG_WARN,
               "event=webhook_attempt_failed delivery=%" PRId64 " webhook=%" PRId64
               " host=%s status=%ld error=\"%s\" attempts=%d next_attempt=%s",
               f->id, f->webhook_id, f->host, status, safe, attempts, failed ? "never" : next);
        st = w->upd_fail;
        sqlite3_bind_int64(st, 1, f->id);
        sqlite3_bind_text(st, 2, failed ? "failed" : "pending", -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 3, attempts);
        if (status)
            sqlite3_bind_int64(st, 4, status);
        else
            sqlite3_bind_null(st, 4);
        sqlite3_bind_text(st, 5, why, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 6, now + delay);
    }
    if (sqlite3_step(st) != SQLITE_DONE)
        st_log(ST_LOG_ERROR, "event=webhook_db_error delivery=%" PRId64 " reason=\"%s\"", f->id,
               sqlite3_errmsg(w->db));
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

/* Record every finished transfer, in one transaction. */
static void collect(struct webhook_sender *w)
{
    CURLMsg *m;
    int left;
    bool open = false;
    while ((m = curl_multi_info_read(w->multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE)
            continue;
        void *priv = NULL;
        long status = 0;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
        struct flight *f = priv;
        CURLcode result = m->data.result;
        if (result == CURLE_OK)
            curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &status);
        else if (!f->error[0])
            snprintf(f->error, sizeof f->error, "%s", curl_easy_strerror(result));
        curl_multi_remove_handle(w->multi, m->easy_handle);
        if (!open)
            open = sqlite3_exec(w->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK;
        outcome(w, f, status);
        flight_clear(f);
    }
    if (open && sqlite3_exec(w->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        st_log(ST_LOG_ERROR, "event=webhook_db_error reason=\"%s\"", sqlite3_errmsg(w->db));
        sqlite3_exec(w->db, "ROLLBACK", NULL, NULL, NULL);
    }
}

/* ---- claiming due rows ------------------------------------------------------ */

static struct flight *free_slot(struct webhook_sender *w, int64_t id, int64_t hook)
{
    struct flight *free_one = NULL;
    int same_hook = 0;
    for (int i = 0; i < w->o.concurrency; i++) {
        struct flight *f = &w->slots[i];
        if (!f->busy) {
            free_one = free_one ? free_one : f;
            continue;
        }
        if (f->id == id)
            return NULL;
        same_hook += f->webhook_id == hook;
    }
    return same_hook < w->per_hook_max ? free_one : NULL;
}

/* Start the row's transfer in f; a row that cannot start counts as a failed attempt.
 * False when the row is gone (deleted since the scan). */
static bool start(struct webhook_sender *w, struct flight *f, int64_t id, int64_t hook)
{
    sqlite3_stmt *st = w->sel_one;
    sqlite3_bind_int64(st, 1, id);
    bool found = sqlite3_step(st) == SQLITE_ROW;
    if (found) {
        f->id = id;
        f->webhook_id = hook;
        f->attempts = sqlite3_column_int(st, 0);
        if (transfer_start(w, f, st)) {
            outcome(w, f, 0);
            flight_clear(f);
        }
    }
    sqlite3_reset(st);
    return found;
}

/* Start due rows in the free slots; returns how many started. */
static int claim(struct webhook_sender *w, int64_t now)
{
    sqlite3_stmt *st = w->sel_due;
    sqlite3_bind_int64(st, 1, now);
    sqlite3_bind_int(st, 2, SCAN_MAX);
    int free_slots = 0;
    for (int i = 0; i < w->o.concurrency; i++)
        free_slots += !w->slots[i].busy;
    int rc = SQLITE_ROW, started = 0;
    while (started < free_slots && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(st, 0), hook = sqlite3_column_int64(st, 1);
        struct flight *f = free_slot(w, id, hook);
        if (f && start(w, f, id, hook))
            started++;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        st_log(ST_LOG_ERROR, "event=webhook_db_error reason=\"%s\"", sqlite3_errmsg(w->db));
    sqlite3_reset(st);
    return started;
}

/* Milliseconds until the next row falls due (POLL_MAX_MS at most). */
static int next_due_ms(struct webhook_sender *w, int64_t now)
{
    sqlite3_stmt *st = w->sel_next;
    int64_t wait = POLL_MAX_MS;
    sqlite3_bind_int64(st, 1, now);
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
        int64_t d = sqlite3_column_int64(st, 0) - now;
        wait = d < wait ? d : wait;
    }
    sqlite3_reset(st);
    return wait < 0 ? 0 : (int)wait;
}

static void *run(void *arg)
{
    struct webhook_sender *w = arg;
    while (!atomic_load(&w->stop)) {
        int running;
        curl_multi_perform(w->multi, &running);
        collect(w);
        int64_t now = st_now_ms();
        /* new transfers run (and instant failures are collected) before any sleep: a
         * completion left in the multi handle would not wake the poll */
        if (claim(w, now) > 0)
            continue;
        curl_multi_poll(w->multi, NULL, 0, next_due_ms(w, now), NULL);
    }
    return NULL;
}

/* ---- life cycle ------------------------------------------------------------------ */

static int prepare_all(struct webhook_sender *w)
{
    return schema_prepare(w->db,
                   "SELECT d.id, d.webhook_id FROM webhook_deliveries d"
                   " JOIN webhooks h ON h.id = d.webhook_id WHERE d.state = 'pending'"
                   " AND d.next_attempt_at <= ?1 AND h.enabled = 1"
                   " ORDER BY d.next_attempt_at, d.id LIMIT ?2",
                   &w->sel_due) ||
           schema_prepare(w->db,
                   "SELECT d.attempts, h.url, h.secret, a.id, a.type, a.time, a.device_id,"
                   " dev.uid, a.shipment_id, a.fence_id, a.lat, a.lon, a.detail, r.id, r.name"
                   " FROM webhook_deliveries d JOIN webhooks h ON h.id = d.webhook_id"
                   " JOIN alerts a ON a.id = d.alert_id"
                   " LEFT JOIN alert_rules r ON r.id = a.rule_id"
                   " LEFT JOIN devices dev ON dev.id = a.device_id"
                   " WHERE d.id = ?1 AND d.state = 'pending'",
                   &w->sel_one) ||
           schema_prepare(w->db,
                   "SELECT min(next_attempt_at) FROM webhook_deliveries"
                   " WHERE state = 'pending' AND next_attempt_at > ?1",
                   &w->sel_next) ||
           schema_prepare(w->db,
                   "UPDATE webhook_deliveries SET state = 'delivered', attempts = ?4,"
                   " last_status = ?2, last_error = NULL, delivered_at = ?3 WHERE id = ?1",
                   &w->upd_ok) ||
           schema_prepare(w->db,
                   "UPDATE webhook_deliveries SET state = ?2, attempts = ?3,"
                   " last_status = ?4, last_error = ?5, next_attempt_at = ?6 WHERE id = ?1",
                   &w->upd_fail);
}

static void sender_free(struct webhook_sender *w)
{
    for (int i = 0; w->slots && i < w->o.concurrency; i++) {
        struct flight *f = &w->slots[i];
        if (f->busy)
            curl_multi_remove_handle(w->multi, f->easy);
        flight_clear(f);
        curl_easy_cleanup(f->easy);
        buf_free(&f->body);
    }
    st_free(w->slots);
    curl_multi_cleanup(w->multi);
    sqlite3_stmt *all[] = {w->sel_due, w->sel_one, w->sel_next, w->upd_ok, w->upd_fail};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        sqlite3_finalize(all[i]);
    sqlite3_close(w->db);
    st_free(w->db_path);
    st_free(w);
}

static int or_default(int v, int def)
{
    return v > 0 ? v : def;
}

int webhook_start(const struct webhook_opts *o, struct webhook_sender **out)
{
    pthread_once(&global_once, global_init);
    if (global_rc) {
        st_log(ST_LOG_ERROR, "event=webhook_start_failed reason=\"libcurl or libsodium init\"");
        return ST_EIO;
    }
    struct webhook_sender *w = st_calloc(1, sizeof *w);
    w->o = *o;
    w->o.max_attempts = or_default(o->max_attempts, 10);
    w->o.timeout_ms = or_default(o->timeout_ms, 10000);
    w->o.backoff_ms = or_default(o->backoff_ms, 1000);
    w->o.backoff_max_ms = or_default(o->backoff_max_ms, 3600000);
    w->o.concurrency = or_default(o->concurrency, 16);
    w->per_hook_max = w->o.concurrency / 4 > 0 ? w->o.concurrency / 4 : 1;
    size_t n = strlen(o->db_path);
    w->db_path = st_malloc(n + 1);
    memcpy(w->db_path, o->db_path, n + 1);
    w->o.db_path = w->db_path;
    atomic_init(&w->stop, false);
    if (schema_open(w->db_path, 0, &w->db) || prepare_all(w))
        goto fail;
    w->multi = curl_multi_init();
    w->slots = st_calloc((size_t)w->o.concurrency, sizeof *w->slots);
    if (!w->multi)
        goto fail;
    for (int i = 0; i < w->o.concurrency; i++)
        if (!(w->slots[i].easy = curl_easy_init()))
            goto fail;
    if (pthread_create(&w->thread, NULL, run, w) != 0)
        goto fail;
    st_log(ST_LOG_INFO,
           "event=webhook_sender_started concurrency=%d timeout_ms=%d"
           " max_attempts=%d",
           w->o.concurrency, w->o.timeout_ms, w->o.max_attempts);
    *out = w;
    return 0;
fail:
    st_log(ST_LOG_ERROR, "event=webhook_start_failed db=\"%s\"", o->db_path);
    sender_free(w);
    return ST_EIO;
}

void webhook_wake(struct webhook_sender *w)
{
    if (w)
        curl_multi_wakeup(w->multi);
}

void webhook_stop(struct webhook_sender *w)
{
    if (!w)
        return;
    atomic_store(&w->stop, true);
    curl_multi_wakeup(w->multi);
    pthread_join(w->thread, NULL);
    sender_free(w);
}
