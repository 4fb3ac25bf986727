/* store_sqlite.c — the SQLite writer thread and its batch queue.
 *
 * A batch holds at most batch_max reports: a full one waits in `full` for the writer, so
 * one transaction never grows with the backlog and replies keep flowing under load.
 * Batches cycle through these lists under one mutex: `pending` (the loop
 * appends), the writer's current batch (being committed), and `done` (committed,
 * waiting for the loop to send replies); drained batches go to `spare` and are
 * reused, so a warmed-up server allocates nothing per frame.
 */
#include "store.h"

#include <netinet/in.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sqlite3.h>
#include <string.h>

#include "../core/buf.h"
#include "../core/err.h"
#include "../core/jsonw.h"
#include "../core/log.h"
#include "../core/mem.h"
#include "../core/strmap.h"
#include "../core/timeutil.h"
#include "../model/report_json.h"
#include "../domain/domain_writer.h"
#include "schema.h"

struct item {
    void *owner;
    struct sockaddr_storage udp_peer;
    bool has_udp_peer;
    int result;
    const char *protocol;
    const char *transport;
    char device_id[REPORT_ID_LEN];
    char peer[64];
    char status[64];
    int64_t recv_ms;
    size_t first_report, n_reports; /* byte offset of the first in batch.reports, count */
    size_t raw_off, raw_len, reply_off, reply_len; /* into batch.bytes */
    size_t live_off, live_len;                      /* into batch.bytes, by the writer */
    int64_t device_row, org_id;
};

struct batch {
    struct item *items;
    size_t n_items, cap_items;
    struct buf reports;  /* reports back to back, each only its used part (report_span) */
    size_t n_reports;
    struct buf bytes;
    struct batch *next;
};

struct device_entry {
    int64_t id, org_id;
    char group[DOMAIN_GROUP_MAX]; /* "" none */
    int tz_min; /* the device's zone, else its model's, else the default */
    uint32_t state_gen;  /* == store.state_gen: states[state_idx] holds this batch's latest */
    uint32_t state_idx;
};

/* A device's latest state in the batch being written: one device_state upsert per device
 * per transaction instead of one per report. Pointers are into the batch's items. */
struct state_acc {
    int64_t device_id, last_seen;
    const char *protocol, *transport, *peer;
    bool has_pos;        /* the position with the latest fix time (a later report wins ties) */
    bool valid;
    int64_t fix_time, pos_id;
    double lat, lon, speed_kmh, course;
    int battery_pct;     /* the last known in the batch, -1 none */
    uint8_t lock;        /* the last known in the batch, REPORT_LOCK_UNKNOWN none */
};

#define DEVICE_CACHE_MS 60000 /* re-read devices (zone, model) edited while the server runs */
#define SPARE_BATCHES 4 /* batches kept for reuse; more were only needed for a backlog */
#define RETENTION_BATCH 2000 /* rows per table per retention transaction */
#define RETENTION_AGAIN_MS 100 /* pause between full retention batches: ingest goes first */
#define DOMAIN_PERIOD_MS 5000  /* offline alerts and command expiry */
#define EVENTS_MAX REPORT_MAX_EVENTS

const double store_commit_bucket_s[STORE_COMMIT_BUCKETS] = {0.001, 0.0025, 0.005, 0.01, 0.025,
                                                            0.05,  0.1,    0.25,  1.0};

struct store {
    struct store_opts opts;
    char path[512];
    sqlite3 *db;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stop, joined;
    struct batch *pending;        /* loop appends here */
    struct batch *full_head, *full_tail; /* batches that reached batch_max, oldest first */
    size_t n_spare;
    struct batch *done_head, *done_tail;
    struct batch *spare;
    size_t queued_reports;        /* in pending and full */
    struct store_stats stats;     /* under lock */
    atomic_bool live, devices_changed, domain_changed;
    /* writer-thread only */
    struct strmap device_ids;     /* uid → index into devices[] + 1 */
    struct device_entry *devices;
    size_t n_devices, cap_devices;
    int64_t cache_since_ms;
    struct st_model_tz model_tz[ST_MODEL_TZ_MAX];
    struct strmap rejected_logged;
    struct buf json;
    struct state_acc *states;     /* this batch's device states, n_states used */
    size_t n_states, cap_states;
    uint32_t state_gen;           /* bumped per batch: stale state_idx values are ignored */
    int64_t retention_next_ms, domain_next_ms;
    struct domain_writer *domain; /* NULL unless opts.domain */
    struct buf alert_live;        /* the item being written: its alerts' stream text */
    sqlite3_stmt *sel_device, *ins_device, *ins_raw, *ins_pos, *ins_event, *upsert_state,
        *trim_raw, *sel_retention, *del_positions, *del_raw, *set_protocol;
};

/* Bytes a waiting report takes in a batch: its fields and the used part of its attribute
 * records (they hold no pointer into the report: report.h), rounded to keep the next
 * report aligned. */
static size_t report_span(const struct report *r)
{
    size_t n = offsetof(struct report, attr_text) + r->attr_used;
    return (n + _Alignof(struct report) - 1) & ~(_Alignof(struct report) - 1);
}

static struct report *report_next(struct report *r)
{
    return (struct report *)(void *)((uint8_t *)r + report_span(r));
}

static struct batch *batch_get(struct store *s)
{
    struct batch *b = s->spare;
    if (b) {
        s->spare = b->next;
        s->n_spare--;
        b->next = NULL;
        return b;
    }
    return st_calloc(1, sizeof *b);
}

static void batch_reset(struct batch *b)
{
    b->n_items = b->n_reports = 0;
    b->reports.len = 0;
    b->bytes.len = 0;
    b->next = NULL;
}

static void batch_free(struct batch *b)
{
    if (!b)
        return;
    st_free(b->items);
    buf_free(&b->reports);
    buf_free(&b->bytes);
    st_free(b);
}

static void copy_text(char *dst, size_t cap, const char *src)
{
    size_t n = src ? strlen(src) : 0;
    if (n >= cap)
        n = cap - 1;
    if (n)
        memcpy(dst, src, n);
    dst[n] = '\0';
}

int store_submit(struct store *s, const struct store_frame *f)
{
    pthread_mutex_lock(&s->lock);
    if (s->queued_reports + f->n_reports > (size_t)s->opts.queue_max) {
        pthread_mutex_unlock(&s->lock);
        return ST_EFULL;
    }
    struct batch *b = s->pending;
    if (b->n_items > 0 && b->n_reports + f->n_reports > (size_t)s->opts.batch_max) {
        if (s->full_tail)
            s->full_tail->next = b;
        else
            s->full_head = b;
        s->full_tail = b;
        b = s->pending = batch_get(s);
    }
    if (b->n_items == b->cap_items) {
        b->cap_items = b->cap_items ? b->cap_items * 2 : 256;
        b->items = st_realloc(b->items, b->cap_items * sizeof *b->items);
    }
    struct item *it = &b->items[b->n_items++];
    it->owner = f->owner;
    it->has_udp_peer = f->udp_peer != NULL;
    if (f->udp_peer)
        memcpy(&it->udp_peer, f->udp_peer,
               f->udp_peer->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                  : sizeof(struct sockaddr_in));
    it->result = STORE_COMMITTED;
    it->live_off = it->live_len = 0;
    it->device_row = it->org_id = 0;
    it->protocol = f->protocol;
    it->transport = f->transport;
    copy_text(it->device_id, sizeof it->device_id, f->device_id);
    copy_text(it->peer, sizeof it->peer, f->peer);
    copy_text(it->status, sizeof it->status, f->status);
    it->recv_ms = f->recv_ms;
    it->first_report = b->reports.len;
    it->n_reports = f->n_reports;
    for (size_t i = 0; i < f->n_reports; i++) { /* the used part only: attr_text is mostly empty */
        size_t span = report_span(&f->reports[i]);
        buf_reserve(&b->reports, span);
        memcpy(b->reports.data + b->reports.len, &f->reports[i],
               offsetof(struct report, attr_text) + f->reports[i].attr_used);
        b->reports.len += span;
        b->n_reports++;
    }
    it->raw_off = b->bytes.len;
    it->raw_len = f->raw_len;
    buf_append(&b->bytes, f->raw, f->raw_len);
    it->reply_off = b->bytes.len;
    it->reply_len = f->reply_len;
    buf_append(&b->bytes, f->reply, f->reply_len);
    s->queued_reports += f->n_reports;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->lock);
    return 0;
}

void store_get_stats(struct store *s, struct store_stats *out)
{
    pthread_mutex_lock(&s->lock);
    *out = s->stats;
    pthread_mutex_unlock(&s->lock);
}

void store_set_live(struct store *s, bool on)
{
    atomic_store(&s->live, on);
}

void store_devices_changed(struct store *s)
{
    atomic_store(&s->devices_changed, true);
}

size_t store_queue_depth(struct store *s)
{
    pthread_mutex_lock(&s->lock);
    size_t n = s->queued_reports;
    pthread_mutex_unlock(&s->lock);
    return n;
}

void store_domain_changed(struct store *s)
{
    atomic_store(&s->domain_changed, true);
}

void store_drain(struct store *s, store_done_fn *fn, void *arg)
{
    pthread_mutex_lock(&s->lock);
    struct batch *list = s->done_head;
    s->done_head = s->done_tail = NULL;
    pthread_mutex_unlock(&s->lock);
    while (list) {
        struct batch *b = list;
        list = b->next;
        for (size_t i = 0; i < b->n_items; i++) {
            struct item *it = &b->items[i];
            struct store_done d = {
                .owner = it->owner,
                .udp_peer = it->has_udp_peer ? (const struct sockaddr *)&it->udp_peer : NULL,
                .result = it->result,
                .device_id = it->device_id,
                .device_row = it->device_row,
                .org_id = it->org_id,
                .reply = b->bytes.data + it->reply_off,
                .reply_len = it->reply_len,
                .live = it->live_len ? (const char *)b->bytes.data + it->live_off : NULL,
                .live_len = it->live_len,
            };
            fn(arg, &d);
        }
        batch_reset(b);
        pthread_mutex_lock(&s->lock);
        if (s->n_spare < SPARE_BATCHES) {
            b->next = s->spare;
            s->spare = b;
            s->n_spare++;
            b = NULL;
        }
        pthread_mutex_unlock(&s->lock);
        batch_free(b); /* a backlog's extra batches give their memory back */
    }
}

/* ---- WAL writes in one piece --------------------------------------------
 *
 * SQLite writes each WAL frame as two pwrite calls (header, page): a commit of 500 pages is
 * 1,000 system calls, the largest cost of a commit on this kind of machine. The writer's WAL
 * file (opted in by wal_buffer_enable) collects contiguous writes and issues them as one
 * pwrite when SQLite syncs, reads, truncates or asks the size. Only a connection that syncs
 * the WAL at every commit (synchronous=FULL) may opt in: other connections learn of a commit
 * from the WAL index, and must find its frames in the file by then. The layer is registered
 * as the process's default VFS, so every connection's WAL passes through it, unbuffered
 * unless opted in; every other file is the underlying VFS's own.
 */
#define WAL_WRITE_MAX 0x1ffff /* the default VFS writes at most this much in one call */

struct wal_file {
    sqlite3_file base;   /* pMethods = &wal_methods */
    sqlite3_file *real;  /* the default VFS's file, right after this struct */
    bool buffered;
    sqlite3_int64 off;   /* file offset of pend.data[0] */
    struct buf pend;
};

static sqlite3_vfs wal_vfs;
static const sqlite3_io_methods wal_methods;

static int wal_flush(struct wal_file *f)
{
    if (f->pend.len == 0)
        return SQLITE_OK;
    int rc = f->real->pMethods->xWrite(f->real, f->pend.data, (int)f->pend.len, f->off);
    f->pend.len = 0;
    return rc;
}

static int wal_close(sqlite3_file *p)
{
    struct wal_file *f = (struct wal_file *)p;
    int rc = wal_flush(f);
    int rc2 = f->real->pMethods->xClose(f->real);
    buf_free(&f->pend);
    return rc ? rc : rc2;
}

static int wal_read(sqlite3_file *p, void *out, int n, sqlite3_int64 off)
{
    struct wal_file *f = (struct wal_file *)p;
    int rc = wal_flush(f);
    return rc ? rc : f->real->pMethods->xRead(f->real, out, n, off);
}

static int wal_write(sqlite3_file *p, const void *data, int n, sqlite3_int64 off)
{
    struct wal_file *f = (struct wal_file *)p;
    if (f->pend.len && (off != f->off + (sqlite3_int64)f->pend.len ||
                        f->pend.len + (size_t)n > WAL_WRITE_MAX)) {
        int rc = wal_flush(f);
        if (rc)
            return rc;
    }
    if (!f->buffered || n > WAL_WRITE_MAX)
        return f->real->pMethods->xWrite(f->real, data, n, off);
    if (f->pend.len == 0)
        f->off = off;
    buf_append(&f->pend, data, (size_t)n);
    return SQLITE_OK;
}

static int wal_truncate(sqlite3_file *p, sqlite3_int64 size)
{
    struct wal_file *f = (struct wal_file *)p;
    int rc = wal_flush(f);
    return rc ? rc : f->real->pMethods->xTruncate(f->real, size);
}

static int wal_sync(sqlite3_file *p, int flags)
{
    struct wal_file *f = (struct wal_file *)p;
    int rc = wal_flush(f);
    return rc ? rc : f->real->pMethods->xSync(f->real, flags);
}

static int wal_file_size(sqlite3_file *p, sqlite3_int64 *size)
{
    struct wal_file *f = (struct wal_file *)p;
    int rc = wal_flush(f);
    return rc ? rc : f->real->pMethods->xFileSize(f->real, size);
}

/* The rest only passes through. */
#define REAL(p) (((struct wal_file *)(p))->real)
static int wal_lock(sqlite3_file *p, int l) { return REAL(p)->pMethods->xLock(REAL(p), l); }
static int wal_unlock(sqlite3_file *p, int l) { return REAL(p)->pMethods->xUnlock(REAL(p), l); }
static int wal_check_lock(sqlite3_file *p, int *out)
{
    return REAL(p)->pMethods->xCheckReservedLock(REAL(p), out);
}
static int wal_control(sqlite3_file *p, int op, void *arg)
{
    return REAL(p)->pMethods->xFileControl(REAL(p), op, arg);
}
static int wal_sector(sqlite3_file *p) { return REAL(p)->pMethods->xSectorSize(REAL(p)); }
static int wal_device(sqlite3_file *p)
{
    return REAL(p)->pMethods->xDeviceCharacteristics(REAL(p));
}
#undef REAL

static const sqlite3_io_methods wal_methods = {
    .iVersion = 1, /* no shared memory or mmap: those belong to the database file */
    .xClose = wal_close,
    .xRead = wal_read,
    .xWrite = wal_write,
    .xTruncate = wal_truncate,
    .xSync = wal_sync,
    .xFileSize = wal_file_size,
    .xLock = wal_lock,
    .xUnlock = wal_unlock,
    .xCheckReservedLock = wal_check_lock,
    .xFileControl = wal_control,
    .xSectorSize = wal_sector,
    .xDeviceCharacteristics = wal_device,
};

static int wal_vfs_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *p, int flags,
                        int *out_flags)
{
    sqlite3_vfs *real_vfs = vfs->pAppData;
    if (!(flags & SQLITE_OPEN_WAL)) /* the default VFS's file, in place */
        return real_vfs->xOpen(real_vfs, name, p, flags, out_flags);
    struct wal_file *f = (struct wal_file *)p;
    memset(f, 0, sizeof *f);
    f->real = (sqlite3_file *)(f + 1);
    int rc = real_vfs->xOpen(real_vfs, name, f->real, flags, out_flags);
    f->base.pMethods = rc == SQLITE_OK ? &wal_methods : NULL;
    return rc;
}

static void wal_vfs_register(void)
{
    sqlite3_vfs *real_vfs = sqlite3_vfs_find(NULL);
    wal_vfs = *real_vfs;
    wal_vfs.pNext = NULL;
    wal_vfs.zName = "sealtrack";
    wal_vfs.pAppData = real_vfs;
    wal_vfs.szOsFile = (int)sizeof(struct wal_file) + real_vfs->szOsFile;
    wal_vfs.xOpen = wal_vfs_open;
    sqlite3_vfs_register(&wal_vfs, 1);
}

/* Collect the WAL writes of db, which syncs its WAL at every commit. */
static void wal_buffer_enable(sqlite3 *db)
{
    sqlite3_file *f = NULL;
    if (sqlite3_file_control(db, "main", SQLITE_FCNTL_JOURNAL_POINTER, &f) == SQLITE_OK && f &&
        f->pMethods == &wal_methods)
        ((struct wal_file *)f)->buffered = true;
}

/* ---- writer thread ---------------------------------------------------- */

static int prepare_all(struct store *s)
{
    return schema_prepare(s->db, "SELECT id, tz_offset_min, model, org_id, protocol, group_name FROM devices WHERE uid=?1", &s->sel_device) ||
           schema_prepare(s->db, "UPDATE devices SET protocol=?2 WHERE id=?1 AND protocol IS NULL", &s->set_protocol) ||
           schema_prepare(s->db, "INSERT INTO devices(uid, protocol, created_at) VALUES(?1, ?2, ?3) "
                   "ON CONFLICT(uid) DO NOTHING", &s->ins_device) ||
           schema_prepare(s->db, "INSERT INTO raw_frames(device_id, device_uid, recv_time, protocol, transport,"
                   " peer, status, raw, decoded) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9)", &s->ins_raw) ||
           schema_prepare(s->db, "INSERT INTO positions(device_id, fix_time, recv_time, protocol, msg_type,"
                   " valid, lat, lon, altitude, speed_kmh, course, fix, satellites, battery_pct,"
                   " battery_v, charging, gsm_signal, odometer_km, lock_state, mcc, mnc, lac, cid,"
                   " attrs, raw_id) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,"
                   "?16,?17,?18,?19,?20,?21,?22,?23,?24,?25)", &s->ins_pos) ||
           schema_prepare(s->db, "INSERT INTO events(device_id, time, recv_time, type, source, card, granted,"
                   " fence_id, reason, lat, lon, position_id, raw_id)"
                   " VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13)", &s->ins_event) ||
           schema_prepare(s->db, "INSERT INTO device_state(device_id, last_seen, protocol, transport, peer,"
                   " fix_time, valid, lat, lon, speed_kmh, course, battery_pct, lock_state,"
                   " position_id) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14) "
                   "ON CONFLICT(device_id) DO UPDATE SET last_seen=excluded.last_seen,"
                   " protocol=excluded.protocol, transport=excluded.transport, peer=excluded.peer,"
                   " battery_pct=coalesce(excluded.battery_pct, battery_pct),"
                   " lock_state=CASE WHEN excluded.lock_state='unknown' THEN lock_state"
                   "   ELSE excluded.lock_state END,"
                   /* buffered history must not move the latest position backwards */
                   " position_id=CASE WHEN excluded.fix_time >= coalesce(fix_time, 0)"
                   "   AND excluded.position_id IS NOT NULL THEN excluded.position_id ELSE position_id END,"
                   " valid=CASE WHEN excluded.fix_time >= coalesce(fix_time, 0)"
                   "   AND excluded.position_id IS NOT NULL THEN excluded.valid ELSE valid END,"
                   " lat=CASE WHEN excluded.fix_time >= coalesce(fix_time, 0)"
                   "   AND excluded.position_id IS NOT NULL THEN excluded.lat ELSE lat END,"
                   " lon=CASE WHEN excluded.fix_time >= coalesce(fix_time, 0)"
                   "   AND excluded.position_id IS NOT NULL THEN excluded.lon ELSE lon END,"
                   " speed_kmh=CASE WHEN excluded.fix_time >= coalesce(fix_time, 0)"
                   "   AND excluded.position_id IS NOT NULL THEN excluded.speed_kmh ELSE speed_kmh END,"
                   " course=CASE WHEN excluded.fix_time >= coalesce(fix_time, 0)"
                   "   AND excluded.position_id IS NOT NULL THEN excluded.course ELSE course END,"
                   " fix_time=CASE WHEN excluded.fix_time >= coalesce(fix_time, 0)"
                   "   AND excluded.position_id IS NOT NULL THEN excluded.fix_time ELSE fix_time END", &s->upsert_state) ||
           schema_prepare(s->db, "DELETE FROM raw_frames WHERE id <= ?1", &s->trim_raw) ||
           schema_prepare(s->db, "SELECT id, retention_positions_days, retention_raw_days FROM orgs"
                   " WHERE retention_positions_days IS NOT NULL OR retention_raw_days IS NOT NULL", &s->sel_retention) ||
           /* per device, a range of the (device_id, time) index: no table scan */
           schema_prepare(s->db, "DELETE FROM positions WHERE id IN (SELECT p.id FROM devices d"
                   " JOIN positions p ON p.device_id = d.id AND p.fix_time < ?2"
                   " WHERE d.org_id = ?1 LIMIT ?3)", &s->del_positions) ||
           schema_prepare(s->db, "DELETE FROM raw_frames WHERE id IN (SELECT r.id FROM devices d"
                   " JOIN raw_frames r ON r.device_id = d.id AND r.recv_time < ?2"
                   " WHERE d.org_id = ?1 LIMIT ?3)", &s->del_raw);
}

static void finalize_all(struct store *s)
{
    sqlite3_stmt *all[] = {s->sel_device,   s->ins_device,    s->ins_raw,
                           s->ins_pos,      s->ins_event,     s->upsert_state,
                           s->trim_raw,     s->sel_retention, s->del_positions,
                           s->del_raw,      s->set_protocol};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        sqlite3_finalize(all[i]);
}

static void bind_text(sqlite3_stmt *st, int i, const char *v)
{
    if (v && *v)
        sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

/* Zone of the device row in st: its own, else its model's, else the default. */
static int device_tz(const struct store *s, sqlite3_stmt *st)
{
    if (sqlite3_column_type(st, 1) != SQLITE_NULL)
        return sqlite3_column_int(st, 1);
    const char *model = (const char *)sqlite3_column_text(st, 2);
    for (int i = 0; model && i < s->opts.n_model_tz; i++)
        if (strcmp(s->model_tz[i].model, model) == 0)
            return s->model_tz[i].tz_min;
    return s->opts.default_tz_min;
}

static void device_cache_clear(struct store *s)
{
    strmap_deinit(&s->device_ids);
    strmap_init(&s->device_ids);
    s->n_devices = 0;
}

/* Device row id for uid (creating it when registering automatically); 0 = unknown. */
static int device_lookup(struct store *s, const char *uid, const char *protocol,
                         struct device_entry **out)
{
    *out = NULL;
    int64_t *idx = strmap_get(&s->device_ids, uid);
    if (idx) {
        *out = &s->devices[*idx];
        return 0;
    }
    for (int attempt = 0; attempt < 2; attempt++) {
        sqlite3_bind_text(s->sel_device, 1, uid, -1, SQLITE_STATIC);
        int rc = sqlite3_step(s->sel_device);
        if (rc == SQLITE_ROW) {
            if (s->n_devices == s->cap_devices) {
                s->cap_devices = s->cap_devices ? s->cap_devices * 2 : 1024;
                s->devices = st_realloc(s->devices, s->cap_devices * sizeof *s->devices);
            }
            struct device_entry *e = &s->devices[s->n_devices];
            e->id = sqlite3_column_int64(s->sel_device, 0);
            e->org_id = sqlite3_column_int64(s->sel_device, 3);
            const char *group = (const char *)sqlite3_column_text(s->sel_device, 5);
            copy_text(e->group, sizeof e->group, group ? group : "");
            bool no_protocol = sqlite3_column_type(s->sel_device, 4) == SQLITE_NULL;
            e->tz_min = device_tz(s, s->sel_device);
            e->state_gen = s->state_gen - 1; /* no state in this batch yet */
            *strmap_put(&s->device_ids, uid, 0) = (int64_t)s->n_devices++;
            sqlite3_reset(s->sel_device);
            if (no_protocol) { /* added by the API or the CLI before its first frame */
                sqlite3_bind_int64(s->set_protocol, 1, e->id);
                sqlite3_bind_text(s->set_protocol, 2, protocol, -1, SQLITE_STATIC);
                if (schema_step(s->set_protocol))
                    return ST_EIO;
            }
            *out = e;
            return 0;
        }
        sqlite3_reset(s->sel_device);
        if (rc != SQLITE_DONE)
            return ST_EIO;
        if (s->opts.register_known || attempt)
            return 0;
        sqlite3_bind_text(s->ins_device, 1, uid, -1, SQLITE_STATIC);
        sqlite3_bind_text(s->ins_device, 2, protocol, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s->ins_device, 3, st_now());
        if (schema_step(s->ins_device))
            return ST_EIO;
        char dev[ST_LOG_TEXT_MAX];
        st_log(ST_LOG_INFO, "event=device_registered device=%s protocol=%s", st_log_text(uid, dev),
               protocol);
    }
    return 0;
}

static const char *decoded_json(struct store *s, struct report *r, size_t n)
{
    struct jsonw w;
    s->json.len = 0;
    jsonw_init(&w, &s->json);
    jsonw_arr_begin(&w);
    for (size_t i = 0; i < n; i++, r = report_next(r))
        report_json_write(&w, r);
    jsonw_arr_end(&w);
    return (const char *)s->json.data;
}

/* Fold a report into its device's state for this batch, as the per-report upserts would have
 * left it: the last report's arrival and peer, the last known battery and lock, and the
 * position with the latest fix time (>=, so a later report wins a tie; the upsert compares
 * the winner with the stored one, so a late older fix never moves the latest back). */
static void state_note(struct store *s, const struct item *it, struct device_entry *dev,
                       const struct report *r, int64_t fix_time, int64_t pos_id)
{
    if (dev->state_gen != s->state_gen) {
        if (s->n_states == s->cap_states) {
            s->cap_states = s->cap_states ? s->cap_states * 2 : 256;
            s->states = st_realloc(s->states, s->cap_states * sizeof *s->states);
        }
        dev->state_gen = s->state_gen;
        dev->state_idx = (uint32_t)s->n_states;
        s->states[s->n_states++] = (struct state_acc){
            .device_id = dev->id, .battery_pct = -1, .lock = REPORT_LOCK_UNKNOWN};
    }
    struct state_acc *a = &s->states[dev->state_idx];
    a->last_seen = it->recv_ms;
    a->protocol = it->protocol;
    a->transport = it->transport;
    a->peer = it->peer;
    if (pos_id && (!a->has_pos || fix_time >= a->fix_time)) {
        a->has_pos = true;
        a->fix_time = fix_time;
        a->pos_id = pos_id;
        a->valid = r->valid;
        a->lat = r->lat;
        a->lon = r->lon;
        a->speed_kmh = r->speed_kmh;
        a->course = r->course;
    }
    if (r->battery_pct >= 0)
        a->battery_pct = r->battery_pct;
    if (r->lock != REPORT_LOCK_UNKNOWN)
        a->lock = r->lock;
}

/* One device_state upsert per device of the batch. */
static int state_flush(struct store *s)
{
    sqlite3_stmt *st = s->upsert_state;
    for (size_t i = 0; i < s->n_states; i++) {
        const struct state_acc *a = &s->states[i];
        sqlite3_bind_int64(st, 1, a->device_id);
        sqlite3_bind_int64(st, 2, a->last_seen);
        sqlite3_bind_text(st, 3, a->protocol, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, a->transport, -1, SQLITE_STATIC);
        bind_text(st, 5, a->peer);
        if (a->has_pos) {
            sqlite3_bind_int64(st, 6, a->fix_time);
            sqlite3_bind_int(st, 7, a->valid);
            sqlite3_bind_double(st, 8, a->lat);
            sqlite3_bind_double(st, 9, a->lon);
            sqlite3_bind_double(st, 10, a->speed_kmh);
            sqlite3_bind_double(st, 11, a->course);
            sqlite3_bind_int64(st, 14, a->pos_id);
        }
        if (a->battery_pct >= 0)
            sqlite3_bind_int(st, 12, a->battery_pct);
        sqlite3_bind_text(st, 13, report_lock_name(a->lock), -1, SQLITE_STATIC);
        if (schema_step(st))
            return ST_EIO;
    }
    return 0;
}

static int write_report(struct store *s, const struct item *it, struct device_entry *dev,
                        struct report *r, int64_t raw_id)
{
    if (r->time_is_local && r->fix_time) {
        r->fix_time -= (int64_t)dev->tz_min * 60;
    }
    int64_t fix_time = r->fix_time ? r->fix_time : it->recv_ms / 1000;
    int64_t pos_id = 0;
    if (r->has_position) {
        sqlite3_stmt *st = s->ins_pos;
        struct jsonw w;
        s->json.len = 0;
        jsonw_init(&w, &s->json);
        report_json_attrs(&w, r);
        sqlite3_bind_int64(st, 1, dev->id);
        sqlite3_bind_int64(st, 2, fix_time);
        sqlite3_bind_int64(st, 3, it->recv_ms);
        sqlite3_bind_text(st, 4, it->protocol, -1, SQLITE_STATIC);
        bind_text(st, 5, r->msg_type);
        sqlite3_bind_int(st, 6, r->valid);
        sqlite3_bind_double(st, 7, r->lat);
        sqlite3_bind_double(st, 8, r->lon);
        if (r->has_altitude)
            sqlite3_bind_double(st, 9, r->altitude_m);
        sqlite3_bind_double(st, 10, r->speed_kmh);
        sqlite3_bind_double(st, 11, r->course);
        sqlite3_bind_text(st, 12, report_fix_name(r->fix), -1, SQLITE_STATIC);
        if (r->satellites >= 0)
            sqlite3_bind_int(st, 13, r->satellites);
        if (r->battery_pct >= 0)
            sqlite3_bind_int(st, 14, r->battery_pct);
        if (r->battery_v >= 0)
            sqlite3_bind_double(st, 15, r->battery_v);
        if (r->charging >= 0)
            sqlite3_bind_int(st, 16, r->charging);
        if (r->gsm_signal >= 0)
            sqlite3_bind_int(st, 17, r->gsm_signal);
        if (r->odometer_km >= 0)
            sqlite3_bind_double(st, 18, r->odometer_km);
        sqlite3_bind_text(st, 19, report_lock_name(r->lock), -1, SQLITE_STATIC);
        if (r->has_cell) {
            sqlite3_bind_int(st, 20, r->cell.mcc);
            sqlite3_bind_int(st, 21, r->cell.mnc);
            sqlite3_bind_int64(st, 22, r->cell.lac);
            sqlite3_bind_int64(st, 23, r->cell.cid);
        }
        sqlite3_bind_text(st, 24, (const char *)s->json.data, (int)s->json.len, SQLITE_STATIC);
        sqlite3_bind_int64(st, 25, raw_id);
        if (schema_step(st))
            return ST_EIO;
        pos_id = sqlite3_last_insert_rowid(s->db);
    }
    int64_t event_ids[EVENTS_MAX];
    for (int i = 0; i < r->n_events; i++) {
        const struct report_event *e = &r->events[i];
        sqlite3_stmt *st = s->ins_event;
        sqlite3_bind_int64(st, 1, dev->id);
        sqlite3_bind_int64(st, 2, fix_time);
        sqlite3_bind_int64(st, 3, it->recv_ms);
        sqlite3_bind_text(st, 4, report_event_name(e->type), -1, SQLITE_STATIC);
        if (e->source)
            sqlite3_bind_text(st, 5, report_source_name(e->source), -1, SQLITE_STATIC);
        bind_text(st, 6, e->card);
        if (e->granted >= 0)
            sqlite3_bind_int(st, 7, e->granted);
        if (e->fence_id >= 0)
            sqlite3_bind_int(st, 8, e->fence_id);
        bind_text(st, 9, e->reason);
        if (r->has_position) {
            sqlite3_bind_double(st, 10, r->lat);
            sqlite3_bind_double(st, 11, r->lon);
            sqlite3_bind_int64(st, 12, pos_id);
        }
        sqlite3_bind_int64(st, 13, raw_id);
        if (schema_step(st))
            return ST_EIO;
        event_ids[i] = sqlite3_last_insert_rowid(s->db);
    }
    state_note(s, it, dev, r, fix_time, pos_id);
    if (s->domain) {
        struct domain_device d = {.id = dev->id,
                                  .org_id = dev->org_id,
                                  .uid = it->device_id,
                                  .group = dev->group[0] ? dev->group : NULL};
        bool live = atomic_load_explicit(&s->live, memory_order_relaxed);
        if (domain_writer_report(s->domain, &d, r, fix_time, pos_id, event_ids,
                                 live ? &s->alert_live : NULL))
            return ST_EIO;
    }
    return 0;
}

/* The item's reports as Server-Sent Events, appended to the batch's bytes (offsets,
 * not pointers, so growing the buffer is safe). */
static void live_text(struct batch *b, struct item *it, struct report *r)
{
    size_t start = b->bytes.len;
    for (size_t i = 0; i < it->n_reports; i++, r = report_next(r)) {
        struct jsonw w;
        buf_append_str(&b->bytes, "event: report\ndata: ");
        jsonw_init(&w, &b->bytes);
        jsonw_obj_begin(&w);
        jsonw_key(&w, "device_id");
        jsonw_int(&w, it->device_row);
        jsonw_key(&w, "uid");
        jsonw_str(&w, it->device_id);
        jsonw_key(&w, "report");
        report_json_write(&w, r);
        jsonw_obj_end(&w);
        buf_append_str(&b->bytes, "\n\n");
    }
    it->live_off = start;
    it->live_len = b->bytes.len - start;
}

static int write_item(struct store *s, struct batch *b, struct item *it, int64_t *last_raw)
{
    struct device_entry *dev = NULL;
    if (it->device_id[0] && device_lookup(s, it->device_id, it->protocol, &dev))
        return ST_EIO;
    const char *status = it->status;
    if (it->device_id[0] && !dev) {
        it->result = STORE_REJECTED;
        status = "rejected: unknown device";
        if (!strmap_get(&s->rejected_logged, it->device_id)) {
            strmap_put(&s->rejected_logged, it->device_id, 1);
            char id[ST_LOG_TEXT_MAX];
            st_log(ST_LOG_WARN,
                   "event=device_rejected device=%s peer=%s protocol=%s reason=\"unknown device "
                   "and register=known; raw frames kept, no reply sent\"",
                   st_log_text(it->device_id, id), it->peer, it->protocol);
        }
    }
    struct report *reps = (struct report *)(void *)(b->reports.data + it->first_report);
    bool any_position = false;
    struct report *r = reps;
    for (size_t i = 0; i < it->n_reports; i++, r = report_next(r))
        any_position |= r->has_position;
    if (s->opts.raw_frames_max > 0 || it->result == STORE_REJECTED) {
        sqlite3_stmt *st = s->ins_raw;
        if (dev)
            sqlite3_bind_int64(st, 1, dev->id);
        bind_text(st, 2, it->device_id);
        sqlite3_bind_int64(st, 3, it->recv_ms);
        sqlite3_bind_text(st, 4, it->protocol, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, it->transport, -1, SQLITE_STATIC);
        bind_text(st, 6, it->peer);
        sqlite3_bind_text(st, 7, status, -1, SQLITE_STATIC);
        sqlite3_bind_blob(st, 8, b->bytes.data + it->raw_off, (int)it->raw_len, SQLITE_STATIC);
        /* Position reports keep their decoded fields in positions; other frames
         * (heartbeats, command answers, unknown types) keep them here. */
        if (!any_position && it->n_reports) {
            const char *json = decoded_json(s, reps, it->n_reports);
            sqlite3_bind_text(st, 9, json, (int)s->json.len, SQLITE_STATIC);
        }
        if (schema_step(st))
            return ST_EIO;
        *last_raw = sqlite3_last_insert_rowid(s->db);
    }
    it->device_row = dev ? dev->id : 0;
    it->org_id = dev ? dev->org_id : 0;
    if (!dev)
        return 0;
    r = reps;
    s->alert_live.len = 0;
    for (size_t i = 0; i < it->n_reports; i++, r = report_next(r))
        if (write_report(s, it, dev, r, *last_raw))
            return ST_EIO;
    if (atomic_load_explicit(&s->live, memory_order_relaxed)) {
        live_text(b, it, reps);
        buf_append(&b->bytes, s->alert_live.data, s->alert_live.len); /* right after: one run */
        it->live_len += s->alert_live.len;
    }
    return 0;
}

/* Alerts that belong to no one frame (geofences) travel as items of their own: no owner,
 * no reply, only stream text. */
static void live_extra(void *arg, int64_t org_id, int64_t device_id, const char *text, size_t len)
{
    struct batch *b = arg;
    if (b->n_items == b->cap_items) {
        b->cap_items = b->cap_items ? b->cap_items * 2 : 256;
        b->items = st_realloc(b->items, b->cap_items * sizeof *b->items);
    }
    struct item *it = &b->items[b->n_items++];
    memset(it, 0, sizeof *it);
    it->result = STORE_COMMITTED;
    it->device_row = device_id;
    it->org_id = org_id;
    it->live_off = b->bytes.len;
    it->live_len = len;
    buf_append(&b->bytes, text, len);
}

static int commit_batch(struct store *s, struct batch *b)
{
    if (s->opts.discard) /* store=none: measures everything but the database */
        return 0;
    int64_t last_raw = 0;
    int64_t now = st_now_ms();
    size_t n_frames = b->n_items; /* live_extra may append items */
    bool devices_changed = atomic_exchange(&s->devices_changed, false);
    if (now - s->cache_since_ms > DEVICE_CACHE_MS || devices_changed) {
        device_cache_clear(s);
        s->cache_since_ms = now;
    }
    if (s->domain && (devices_changed || atomic_exchange(&s->domain_changed, false)))
        domain_writer_changed(s->domain);
    if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        goto fail;
    s->n_states = 0;
    s->state_gen++;
    if (s->domain && domain_writer_begin(s->domain))
        goto fail;
    for (size_t i = 0; i < n_frames; i++)
        if (write_item(s, b, &b->items[i], &last_raw))
            goto fail;
    if (s->domain && domain_writer_end(s->domain,
                                       atomic_load_explicit(&s->live, memory_order_relaxed)
                                           ? live_extra : NULL,
                                       b))
        goto fail;
    if (state_flush(s))
        goto fail;
    if (last_raw > s->opts.raw_frames_max && s->opts.raw_frames_max >= 0) {
        sqlite3_bind_int64(s->trim_raw, 1, last_raw - s->opts.raw_frames_max);
        if (schema_step(s->trim_raw))
            goto fail;
    }
    if (sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        goto fail;
    if (s->domain && domain_writer_take_alerts(s->domain) && s->opts.alerted)
        s->opts.alerted(s->opts.alerted_arg);
    return 0;
fail:
    st_log(ST_LOG_ERROR,
           "event=commit_failed db=\"%s\" frames=%zu reason=\"%s\" effect=\"no replies sent; "
           "devices will resend\"",
           s->path, b->n_items, sqlite3_errmsg(s->db));
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    device_cache_clear(s); /* it may name rows of the rolled-back transaction */
    if (s->domain) { /* its caches may hold rolled-back state */
        domain_writer_changed(s->domain);
        domain_writer_take_alerts(s->domain);
    }
    while (b->n_items > n_frames) /* stream text of alerts that were rolled back */
        b->n_items--;
    for (size_t i = 0; i < b->n_items; i++)
        b->items[i].result = STORE_FAILED;
    return ST_EIO;
}

/* Delete up to RETENTION_BATCH rows of sql for one organisation; rows deleted or -1. */
static int64_t retention_delete(struct store *s, sqlite3_stmt *st, int64_t org, int64_t before)
{
    sqlite3_bind_int64(st, 1, org);
    sqlite3_bind_int64(st, 2, before);
    sqlite3_bind_int(st, 3, RETENTION_BATCH);
    if (schema_step(st))
        return -1;
    return sqlite3_changes(s->db);
}

/* One retention pass: at most RETENTION_BATCH positions and raw frames per organisation,
 * in one short transaction between ingest transactions. Returns true when rows remain. */
static bool retention_step(struct store *s)
{
    int64_t now = st_now();
    int64_t n_pos = 0, n_raw = 0;
    bool more = false;
    if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        goto fail;
    while (sqlite3_step(s->sel_retention) == SQLITE_ROW) {
        int64_t org = sqlite3_column_int64(s->sel_retention, 0);
        for (int col = 1; col <= 2; col++) {
            if (sqlite3_column_type(s->sel_retention, col) == SQLITE_NULL)
                continue;
            int64_t days = sqlite3_column_int64(s->sel_retention, col);
            /* positions by fix time (seconds), raw frames by arrival (milliseconds) */
            int64_t n = col == 1 ? retention_delete(s, s->del_positions, org, now - days * 86400)
                                 : retention_delete(s, s->del_raw, org, (now - days * 86400) * 1000);
            if (n < 0) {
                sqlite3_reset(s->sel_retention);
                goto fail;
            }
            more |= n == RETENTION_BATCH;
            *(col == 1 ? &n_pos : &n_raw) += n;
        }
    }
    sqlite3_reset(s->sel_retention);
    if (sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        goto fail;
    if (n_pos || n_raw) {
        st_log(ST_LOG_INFO, "event=retention_deleted positions=%lld raw_frames=%lld",
               (long long)n_pos, (long long)n_raw);
        pthread_mutex_lock(&s->lock);
        s->stats.retention_positions += (uint64_t)n_pos;
        s->stats.retention_raw += (uint64_t)n_raw;
        pthread_mutex_unlock(&s->lock);
    }
    return more;
fail:
    st_log(ST_LOG_ERROR, "event=retention_failed db=\"%s\" reason=\"%s\"", s->path,
           sqlite3_errmsg(s->db));
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return false;
}

/* Run a retention pass when one is due; the writer holds no lock while it runs. */
static void retention_maybe(struct store *s)
{
    if (s->opts.discard || s->opts.retention_interval_s <= 0)
        return;
    int64_t now = st_now_ms();
    if (now < s->retention_next_ms)
        return;
    pthread_mutex_unlock(&s->lock);
    bool more = retention_step(s);
    pthread_mutex_lock(&s->lock);
    s->retention_next_ms =
        st_now_ms() + (more ? RETENTION_AGAIN_MS : (int64_t)s->opts.retention_interval_s * 1000);
}

/* Offline alerts and command expiry, every DOMAIN_PERIOD_MS in a short transaction. */
static void domain_maybe(struct store *s)
{
    if (!s->domain)
        return;
    int64_t now = st_now_ms();
    if (now < s->domain_next_ms)
        return;
    struct batch *extra = batch_get(s); /* stream text of offline alerts, under the lock */
    pthread_mutex_unlock(&s->lock);
    if (atomic_exchange(&s->domain_changed, false)) /* a rule added since the last batch */
        domain_writer_changed(s->domain);
    bool live = atomic_load_explicit(&s->live, memory_order_relaxed);
    bool ok = sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK &&
              domain_writer_periodic(s->domain, now, live ? live_extra : NULL, extra) == 0 &&
              sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK;
    if (!ok) {
        st_log(ST_LOG_ERROR, "event=domain_periodic_failed db=\"%s\" reason=\"%s\"", s->path,
               sqlite3_errmsg(s->db));
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        domain_writer_changed(s->domain);
        domain_writer_take_alerts(s->domain);
        extra->n_items = 0;
    } else if (domain_writer_take_alerts(s->domain) && s->opts.alerted) {
        s->opts.alerted(s->opts.alerted_arg);
    }
    pthread_mutex_lock(&s->lock);
    s->domain_next_ms = st_now_ms() + DOMAIN_PERIOD_MS;
    if (extra->n_items) { /* drained like committed frames: the loop publishes them */
        if (s->done_tail)
            s->done_tail->next = extra;
        else
            s->done_head = extra;
        s->done_tail = extra;
        pthread_mutex_unlock(&s->lock);
        if (s->opts.notify)
            s->opts.notify(s->opts.notify_arg);
        pthread_mutex_lock(&s->lock);
    } else {
        batch_reset(extra);
        extra->next = s->spare;
        s->spare = extra;
        s->n_spare++;
    }
}

static void record_commit(struct store *s, int rc, double seconds)
{
    s->stats.commits++;
    if (rc)
        s->stats.commit_failures++;
    s->stats.commit_seconds_sum += seconds;
    for (int i = 0; i < STORE_COMMIT_BUCKETS; i++)
        if (seconds <= store_commit_bucket_s[i]) {
            s->stats.bucket[i]++;
            break;
        }
}

static void *writer_main(void *arg)
{
    struct store *s = arg;
    pthread_mutex_lock(&s->lock);
    for (;;) {
        retention_maybe(s);
        domain_maybe(s);
        while (!s->stop && !s->full_head && s->pending->n_items == 0) {
            bool retention = s->opts.retention_interval_s > 0 && !s->opts.discard;
            if (!retention && !s->domain) {
                pthread_cond_wait(&s->wake, &s->lock);
                continue;
            }
            int64_t due = retention ? s->retention_next_ms : INT64_MAX;
            if (s->domain && s->domain_next_ms < due)
                due = s->domain_next_ms;
            struct timespec until = {.tv_sec = (time_t)(due / 1000),
                                     .tv_nsec = (long)(due % 1000) * 1000000};
            if (pthread_cond_timedwait(&s->wake, &s->lock, &until) == ETIMEDOUT) {
                retention_maybe(s);
                domain_maybe(s);
            }
        }
        if (!s->full_head && s->pending->n_items == 0 && s->stop)
            break;
        /* The oldest full batch, else everything queued while the previous commit was syncing. */
        struct batch *b = s->full_head;
        if (b) {
            s->full_head = b->next;
            if (!s->full_head)
                s->full_tail = NULL;
            b->next = NULL;
        } else {
            b = s->pending;
            s->pending = batch_get(s);
        }
        s->queued_reports -= b->n_reports;
        pthread_mutex_unlock(&s->lock);

        int64_t t0 = st_monotonic_us();
        int rc = commit_batch(s, b);
        double took = (double)(st_monotonic_us() - t0) / 1e6;

        pthread_mutex_lock(&s->lock);
        if (b->n_items && !s->opts.discard)
            record_commit(s, rc, took);
        if (s->done_tail)
            s->done_tail->next = b;
        else
            s->done_head = b;
        s->done_tail = b;
        pthread_mutex_unlock(&s->lock);
        if (s->opts.notify)
            s->opts.notify(s->opts.notify_arg);
        pthread_mutex_lock(&s->lock);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

int store_open(const struct store_opts *opts, struct store **out)
{
    struct store *s = st_calloc(1, sizeof *s);
    s->opts = *opts;
    copy_text(s->path, sizeof s->path, opts->path);
    s->opts.path = s->path;
    if (s->opts.n_model_tz > ST_MODEL_TZ_MAX)
        s->opts.n_model_tz = ST_MODEL_TZ_MAX;
    if (s->opts.n_model_tz > 0)
        memcpy(s->model_tz, opts->model_tz, (size_t)s->opts.n_model_tz * sizeof *s->model_tz);
    s->opts.model_tz = s->model_tz;
    static pthread_once_t vfs_once = PTHREAD_ONCE_INIT;
    pthread_once(&vfs_once, wal_vfs_register);
    if (schema_open(s->path, 0, &s->db))
        goto fail;
    if (sqlite3_exec(s->db, s->opts.sync_full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL",
                     NULL, NULL, NULL) != SQLITE_OK)
        goto fail;
    /* A commit dirties one leaf per device in each (device, time) index: a cache smaller than
     * those leaves re-reads them every batch (32 MiB: half the bytes read). A checkpoint
     * per 8 MiB of WAL instead of 4 copies hot pages less often; a larger one stalls the
     * writer long enough to show in p99 (32 MiB: p99 doubled). Statement journals (an upsert
     * with a CHECK or a foreign key needs one) stay in memory: as temp files each cost an open,
     * writes and an unlink — 200 µs per seal-state upsert, half the ingest rate. */
    if (sqlite3_exec(s->db, "PRAGMA cache_size=-32768; PRAGMA wal_autocheckpoint=2000; PRAGMA temp_store=MEMORY", NULL, NULL,
                     NULL) != SQLITE_OK)
        goto fail;
    if (s->opts.sync_full)
        wal_buffer_enable(s->db);
    if (prepare_all(s))
        goto fail;
    if (s->opts.domain && !s->opts.discard && domain_writer_open(s->db, &s->domain))
        goto fail;
    strmap_init(&s->device_ids);
    strmap_init(&s->rejected_logged);
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->wake, NULL);
    s->pending = batch_get(s);
    if (pthread_create(&s->thread, NULL, writer_main, s)) {
        st_log(ST_LOG_ERROR, "event=thread_failed what=writer");
        batch_free(s->pending);
        strmap_deinit(&s->device_ids);
        strmap_deinit(&s->rejected_logged);
        goto fail;
    }
    *out = s;
    return 0;
fail:
    domain_writer_free(s->domain);
    finalize_all(s);
    sqlite3_close(s->db);
    st_free(s);
    return ST_EIO;
}

void store_stop(struct store *s)
{
    if (s->joined)
        return;
    pthread_mutex_lock(&s->lock);
    s->stop = true;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->lock);
    pthread_join(s->thread, NULL);
    s->joined = true;
}

void store_close(struct store *s)
{
    if (!s)
        return;
    store_stop(s);
    batch_free(s->pending);
    struct batch *lists[] = {s->done_head, s->spare, s->full_head};
    for (size_t i = 0; i < 3; i++)
        while (lists[i]) {
            struct batch *next = lists[i]->next;
            batch_free(lists[i]);
            lists[i] = next;
        }
    domain_writer_free(s->domain);
    finalize_all(s);
    sqlite3_close(s->db);
    strmap_deinit(&s->device_ids);
    strmap_deinit(&s->rejected_logged);
    st_free(s->devices);
    st_free(s->states);
    buf_free(&s->json);
    buf_free(&s->alert_live);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->wake);
    st_free(s);
}
