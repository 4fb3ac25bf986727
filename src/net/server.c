/* server.c — one port, two transports, many protocols.
 *
 * Path of a frame: read into a shared buffer (a connection keeps bytes only for
 * a partial frame) → detect the protocol once per connection → frame → decode
 * into a reused report array → store_submit. The writer thread commits and
 * wakes the loop (uv_async); the loop then queues each committed frame's reply
 * on its connection and flushes every touched connection once (one write per
 * connection per commit, not per frame).
 *
 * A connection may close while frames of it are still being committed: it is
 * freed only when its in-flight count drops to zero, so completions never see
 * freed memory.
 */
#include "server.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "../core/buf.h"
#include "../core/err.h"
#include "../core/log.h"
#include "../core/mem.h"
#include "../core/idmap.h"
#include "../core/strmap.h"
#include "../core/timeutil.h"
#include "../proto/proto.h"
#include "../api/api.h"
#include "../domain/commands.h"
#include "../domain/webhook.h"
#include "../store/schema.h"
#include "../store/query.h"
#include "../store/store.h"

#define READ_BUF_SIZE 65536
#define OUT_MAX_PENDING 65536    /* unsent reply bytes before a peer counts as not reading */
/* Frames of one connection waiting for the writer before its reading pauses (TCP flow control
 * then holds the device back): one fast device cannot fill the shared queue and starve others. */
#define CONN_IN_FLIGHT_MAX 256
/* Garbage skipped since the last frame before a connection is closed: a device may resync after
 * noise, but a stream of garbage (or of frames over the size limit) only costs CPU and log lines. */
#define CONN_GARBAGE_MAX 16384

struct conn {
    uv_tcp_t tcp;
    struct server *srv;
    struct proto_stream stream;
    struct proto_ctx ctx;
    struct buf in;               /* partial frame only */
    struct buf out;              /* replies waiting for the flush */
    size_t writing;              /* bytes handed to uv_write, not yet completed */
    uint32_t in_flight;          /* frames submitted, not yet committed */
    bool closing, closed, touched;
    bool paused;                 /* reading stopped: CONN_IN_FLIGHT_MAX frames in flight */
    size_t garbage;              /* bytes skipped since the last frame */
    uint64_t last_rx_ms;
    char peer[64];
    char ip[48];
    char device_id[REPORT_ID_LEN];
    int64_t device_row, org_id;  /* the device's row once a frame of it committed (live status) */
    char status_uid[REPORT_ID_LEN]; /* the uid reported connected: device_id may change later */
    struct conn *prev, *next;    /* idle list, least recently active first */
    struct conn *next_touched;
};

#define DIALECT_REFRESH_MS 60000
#define DIALECT_NAMES_MAX 16

/* Devices read in a vendor variant of their protocol (devices.dialect), refreshed from the
 * database on the thread pool: the loop only swaps the finished table in. */
struct dialect_table {
    struct strmap by_uid; /* uid → index into names */
    char names[DIALECT_NAMES_MAX][24];
    int n_names;
};

struct server {
    const struct st_config *cfg;
    uv_loop_t *loop;
    uv_tcp_t tcp;
    uv_udp_t udp;
    uv_async_t committed;
    uv_timer_t sweep;
    uv_signal_t sigint, sigterm;
    struct store *store;
    struct api *api;             /* NULL when http_port is 0 */
    struct api_counters counters;
    struct conn *idle_head, *idle_tail;
    struct conn *touched;
    struct strmap per_ip;
    uint8_t read_buf[READ_BUF_SIZE];
    uint8_t udp_buf[READ_BUF_SIZE];
    struct report reports[PROTO_MAX_REPORTS];
    struct proto_reply reply;
    struct proto_ctx udp_ctx;
    struct dialect_table *dialects, *dialects_next;
    uv_timer_t dialect_timer;
    uv_work_t dialect_work;
    bool dialect_busy;
    bool stopping;               /* the store is stopped: paused connections stay paused */
    struct webhook_sender *webhooks;
    /* remote commands: one delivery job at a time on the thread pool, with its own connection */
    sqlite3 *cmd_db;
    struct idmap conn_by_device; /* device row → its newest connection (0 once closed) */
    int64_t *cmd_queue;          /* device rows whose queued commands to look up, from cmd_head */
    size_t cmd_head, n_cmd_queue, cap_cmd_queue;
    struct idmap cmd_queued;     /* device row → 1 while in cmd_queue (a connect storm queues
                                    thousands: no scan, no shifting) */
    bool cmd_busy;
};

static void cmd_schedule(struct server *srv, int64_t device_row);

static void dialect_table_free(struct dialect_table *t)
{
    if (!t)
        return;
    strmap_deinit(&t->by_uid);
    st_free(t);
}

static void dialect_add(void *arg, const char *uid, const char *name)
{
    struct dialect_table *t = arg;
    int i = 0;
    while (i < t->n_names && strcmp(t->names[i], name) != 0)
        i++;
    if (i == t->n_names) {
        if (t->n_names == DIALECT_NAMES_MAX || strlen(name) >= sizeof t->names[0])
            return;
        memcpy(t->names[t->n_names++], name, strlen(name) + 1);
    }
    *strmap_put(&t->by_uid, uid, 0) = i;
}

static void dialect_load(uv_work_t *w) /* thread pool: reads the database */
{
    struct server *srv = w->data;
    struct dialect_table *t = st_calloc(1, sizeof *t);
    strmap_init(&t->by_uid);
    if (query_device_dialects(srv->cfg->db, dialect_add, t)) {
        dialect_table_free(t);
        t = NULL;
    }
    srv->dialects_next = t;
}

static void dialect_loaded(uv_work_t *w, int status)
{
    struct server *srv = w->data;
    srv->dialect_busy = false;
    if (status == 0 && srv->dialects_next) {
        dialect_table_free(srv->dialects);
        srv->dialects = srv->dialects_next;
    }
    srv->dialects_next = NULL;
}

static void on_dialect_timer(uv_timer_t *t)
{
    struct server *srv = t->data;
    if (srv->dialect_busy)
        return;
    srv->dialect_busy = true;
    srv->dialect_work.data = srv;
    uv_queue_work(srv->loop, &srv->dialect_work, dialect_load, dialect_loaded);
}

/* The ctx.dialect configured for `device` under `proto`, or -1: none configured (the
 * protocol keeps whatever its context holds; some track a version there, e.g. Wialon). */
static int dialect_of(const struct server *srv, const struct proto_ops *proto, const char *device)
{
    if (!srv->dialects || !proto->dialect_by_name || !device[0])
        return -1;
    int64_t *i = strmap_get(&srv->dialects->by_uid, device);
    int d = i ? proto->dialect_by_name(srv->dialects->names[*i]) : -1;
    return d >= 0 && d < 256 ? d : -1;
}

/* ---- connection list and lifetime ------------------------------------- */

static void idle_unlink(struct server *srv, struct conn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else if (srv->idle_head == c)
        srv->idle_head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else if (srv->idle_tail == c)
        srv->idle_tail = c->prev;
    c->prev = c->next = NULL;
}

static void idle_push(struct server *srv, struct conn *c)
{
    c->prev = srv->idle_tail;
    c->next = NULL;
    if (srv->idle_tail)
        srv->idle_tail->next = c;
    else
        srv->idle_head = c;
    srv->idle_tail = c;
}

static void conn_free_if_done(struct conn *c)
{
    if (!c->closed || c->in_flight || c->writing)
        return;
    buf_free(&c->in);
    buf_free(&c->out);
    st_free(c);
}

static void on_conn_closed(uv_handle_t *h)
{
    struct conn *c = h->data;
    c->closed = true;
    conn_free_if_done(c);
}


static void conn_close(struct conn *c, const char *reason)
{
    if (c->closing)
        return;
    struct server *srv = c->srv;
    char dev[ST_LOG_TEXT_MAX];
    c->closing = true;
    idle_unlink(srv, c);
    srv->counters.connections--;
    if (c->device_row) {
        api_device_status(srv->api, c->org_id, c->device_row, c->status_uid, false);
        int64_t *slot = idmap_get(&srv->conn_by_device, c->device_row);
        if (slot && *slot == (int64_t)(intptr_t)c)
            *slot = 0;
    }
    int64_t *n = strmap_get(&srv->per_ip, c->ip);
    if (n && --*n <= 0)
        strmap_del(&srv->per_ip, c->ip);
    st_log(reason[0] == '-' ? ST_LOG_INFO : ST_LOG_WARN,
           "event=conn_closed peer=%s device=%s protocol=%s reason=\"%s\"", c->peer,
           st_log_text(c->device_id, dev), c->stream.proto ? c->stream.proto->name : "-",
           reason[0] == '-' ? reason + 1 : reason);
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

/* ---- replies ------------------------------------------------------------ */

struct write_req {
    uv_write_t req;
    struct conn *conn;
    size_t len;
    uint8_t data[];
};

static void on_written(uv_write_t *req, int status)
{
    struct write_req *w = (struct write_req *)req;
    struct conn *c = w->conn;
    c->writing -= w->len;
    if (status < 0 && !c->closing)
        conn_close(c, "write failed");
    st_free(w);
    conn_free_if_done(c);
}

/* One write per connection per commit; uv_try_write avoids a request for the common case. */
static void conn_flush(struct conn *c)
{
    if (c->closing || c->out.len == 0)
        return;
    if (c->writing == 0) {
        uv_buf_t b = uv_buf_init((char *)c->out.data, (unsigned)c->out.len);
        int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
        if (n > 0)
            buf_consume(&c->out, (size_t)n);
        else if (n < 0 && n != UV_EAGAIN) {
            conn_close(c, "write failed");
            return;
        }
        if (c->out.len == 0)
            return;
    }
    if (c->writing + c->out.len > OUT_MAX_PENDING) {
        conn_close(c, "peer does not read its replies");
        return;
    }
    struct write_req *w = st_malloc(sizeof *w + c->out.len);
    w->conn = c;
    w->len = c->out.len;
    memcpy(w->data, c->out.data, c->out.len);
    c->out.len = 0;
    uv_buf_t b = uv_buf_init((char *)w->data, (unsigned)w->len);
    c->writing += w->len;
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_written) < 0) {
        c->writing -= w->len;
        st_free(w);
        conn_close(c, "write failed");
    }
}

static void copy_id(char *dst, const char *src)
{
    size_t n = strnlen(src, REPORT_ID_LEN - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static void on_committed_frame(void *arg, const struct store_done *d)
{
    struct server *srv = arg;
    api_publish(srv->api, d);
    if (!d->owner && !d->udp_peer) /* stream text only (alerts of geofence events) */
        return;
    if (d->udp_peer) {
        if (d->result == STORE_COMMITTED && d->reply_len) {
            uv_buf_t b = uv_buf_init((char *)d->reply, (unsigned)d->reply_len);
            int rc = uv_udp_try_send(&srv->udp, &b, 1, d->udp_peer);
            char dev[ST_LOG_TEXT_MAX];
            if (rc < 0)
                st_log(ST_LOG_WARN, "event=udp_reply_failed device=%s reason=\"%s\"",
                       st_log_text(d->device_id, dev), uv_strerror(rc));
        }
        return;
    }
    struct conn *c = d->owner;
    c->in_flight--;
    if (d->device_row && !c->device_row && !c->closing) {
        c->device_row = d->device_row;
        c->org_id = d->org_id;
        copy_id(c->status_uid, d->device_id);
        api_device_status(srv->api, c->org_id, c->device_row, c->status_uid, true);
        *idmap_put(&srv->conn_by_device, c->device_row, 0) = (int64_t)(intptr_t)c;
        if (srv->cmd_db)
            cmd_schedule(srv, c->device_row); /* commands queued while it was away */
    }
    bool has_reply = d->result == STORE_COMMITTED && d->reply_len && !c->closing;
    if (has_reply)
        buf_append(&c->out, d->reply, d->reply_len);
    if ((has_reply || (c->paused && c->in_flight <= CONN_IN_FLIGHT_MAX / 2)) && !c->closing &&
        !c->touched) {
        c->touched = true;
        c->next_touched = srv->touched;
        srv->touched = c;
    }
    conn_free_if_done(c);
}

static void conn_resume(struct conn *c);

/* ---- remote commands ------------------------------------------------------ */

/* One look-up (or give-back) of a device's queued commands on the thread pool. */
struct cmd_job {
    uv_work_t work;
    struct server *srv;
    int64_t device_row;
    const struct proto_ops *proto;
    struct proto_ctx ctx;
    uint16_t first_serial;       /* ctx.server_serial when the job started */
    bool give_back;              /* the connection closed before they were written */
    int n;
    struct command_wire wires[COMMANDS_PER_TAKE];
};

static struct conn *conn_of_device(struct server *srv, int64_t device_row)
{
    int64_t *slot = idmap_get(&srv->conn_by_device, device_row);
    struct conn *c = slot && *slot ? (struct conn *)(intptr_t)*slot : NULL;
    return c && !c->closing ? c : NULL;
}

static void cmd_work(uv_work_t *w)
{
    struct cmd_job *j = w->data;
    if (j->give_back) {
        int64_t ids[COMMANDS_PER_TAKE];
        for (int i = 0; i < j->n; i++)
            ids[i] = j->wires[i].id;
        commands_untake(j->srv->cmd_db, ids, (size_t)j->n);
        return;
    }
    j->n = commands_take(j->srv->cmd_db, j->device_row, j->proto, &j->ctx, st_now(), j->wires,
                         COMMANDS_PER_TAKE);
}

static void cmd_next(struct server *srv);

static void cmd_done(uv_work_t *w, int status)
{
    struct cmd_job *j = w->data;
    struct server *srv = j->srv;
    struct conn *c = conn_of_device(srv, j->device_row);
    if (status == 0 && !j->give_back && j->n > 0) {
        if (!c || srv->stopping) { /* gone meanwhile: the commands wait for the next connection */
            j->give_back = true;
            uv_queue_work(srv->loop, &j->work, cmd_work, cmd_done);
            return;
        }
        char dev[ST_LOG_TEXT_MAX];
        for (int i = 0; i < j->n; i++) {
            buf_append(&c->out, j->wires[i].bytes, j->wires[i].len);
            st_log(ST_LOG_INFO, "event=command_sent device=%s command=%lld bytes=%zu",
                   st_log_text(c->device_id, dev), (long long)j->wires[i].id, j->wires[i].len);
        }
        /* the serials the job used: replies sent meanwhile may have advanced the counter too */
        c->ctx.server_serial = (uint16_t)(c->ctx.server_serial + (uint16_t)(j->ctx.server_serial -
                                                                          j->first_serial));
        conn_flush(c);
        if (j->n == COMMANDS_PER_TAKE)
            cmd_schedule(srv, j->device_row); /* more may wait */
    }
    st_free(j);
    srv->cmd_busy = false;
    cmd_next(srv);
}

static void cmd_next(struct server *srv)
{
    while (!srv->cmd_busy && !srv->stopping && srv->cmd_head < srv->n_cmd_queue) {
        int64_t row = srv->cmd_queue[srv->cmd_head++];
        if (srv->cmd_head == srv->n_cmd_queue)
            srv->cmd_head = srv->n_cmd_queue = 0;
        *idmap_put(&srv->cmd_queued, row, 0) = 0;
        struct conn *c = conn_of_device(srv, row);
        if (!c || !c->stream.proto || !c->stream.proto->encode_command)
            continue;
        struct cmd_job *j = st_calloc(1, sizeof *j);
        j->work.data = j;
        j->srv = srv;
        j->device_row = row;
        j->proto = c->stream.proto;
        j->ctx = c->ctx;
        j->first_serial = c->ctx.server_serial;
        srv->cmd_busy = true;
        uv_queue_work(srv->loop, &j->work, cmd_work, cmd_done);
    }
}

static void cmd_schedule(struct server *srv, int64_t device_row)
{
    int64_t *queued = idmap_put(&srv->cmd_queued, device_row, 0);
    if (*queued)
        return;
    *queued = 1;
    if (srv->n_cmd_queue == srv->cap_cmd_queue && srv->cmd_head) { /* reuse the taken front */
        srv->n_cmd_queue -= srv->cmd_head;
        memmove(srv->cmd_queue, srv->cmd_queue + srv->cmd_head,
                srv->n_cmd_queue * sizeof *srv->cmd_queue);
        srv->cmd_head = 0;
    }
    if (srv->n_cmd_queue == srv->cap_cmd_queue) {
        srv->cap_cmd_queue = srv->cap_cmd_queue ? srv->cap_cmd_queue * 2 : 64;
        srv->cmd_queue = st_realloc(srv->cmd_queue, srv->cap_cmd_queue * sizeof *srv->cmd_queue);
    }
    srv->cmd_queue[srv->n_cmd_queue++] = device_row;
    cmd_next(srv);
}

/* The API queued a command: deliver it now when the device is connected. */
static void on_command_queued(void *arg, int64_t device_row)
{
    struct server *srv = arg;
    if (srv->cmd_db && conn_of_device(srv, device_row))
        cmd_schedule(srv, device_row);
}

/* Writer thread: alerts were committed. */
static void on_alerted(void *arg)
{
    struct server *srv = arg;
    webhook_wake(srv->webhooks);
}

static void on_committed(uv_async_t *h)
{
    struct server *srv = h->data;
    store_drain(srv->store, on_committed_frame, srv);
    while (srv->touched) {
        struct conn *c = srv->touched;
        srv->touched = c->next_touched;
        c->touched = false;
        conn_flush(c);
        if (c->paused && !c->closing && !srv->stopping && c->in_flight <= CONN_IN_FLIGHT_MAX / 2)
            conn_resume(c);
    }
}

static void notify_committed(void *arg)
{
    uv_async_send(arg);
}

/* ---- frames ------------------------------------------------------------- */


/* The protocol's place in the registry, which is its row in the metrics counters. */
static size_t proto_index(const struct proto_ops *proto)
{
    size_t i = 0;
    while (proto_registry[i] && proto_registry[i] != proto)
        i++;
    return i < API_PROTOCOLS_MAX ? i : API_PROTOCOLS_MAX - 1;
}

/* Decode one frame and queue it for the writer. `c` is NULL for UDP. */
static void handle_frame(struct server *srv, struct conn *c, const struct proto_ops *proto,
                         struct proto_ctx *ctx, const uint8_t *frame, size_t len,
                         const struct sockaddr *udp_peer, const char *peer, char *device_id)
{
    size_t n = 0;
    srv->reply.len = 0;
    srv->reports[0].device_id[0] = '\0';
    int64_t recv_ms = st_now_ms();
    ctx->now = recv_ms / 1000;
    size_t pi = proto_index(proto);
    srv->counters.frames[pi][c ? 0 : 1]++;
    int rc = proto->decode(ctx, frame, len, srv->reports, PROTO_MAX_REPORTS, &n, &srv->reply);
    if (srv->reports[0].device_id[0]) /* also set by a malformed frame with a readable header */
        copy_id(device_id, srv->reports[0].device_id);
    int dialect = dialect_of(srv, proto, device_id);
    if (dialect >= 0 && dialect != ctx->dialect) {
        /* The frame named a device read in another variant: decode it again as such (once
         * per connection: the context keeps the variant for the frames that follow). */
        ctx->dialect = (uint8_t)dialect;
        srv->reply.len = 0;
        rc = proto->decode(ctx, frame, len, srv->reports, PROTO_MAX_REPORTS, &n, &srv->reply);
    }
    for (size_t i = 0; i < n; i++) {
        srv->reports[i].protocol = proto->name; /* the connection's protocol, also for shared texts */
        if (!srv->reports[i].device_id[0])
            copy_id(srv->reports[i].device_id, device_id);
    }
    char status[64] = "ok";
    char dev[ST_LOG_TEXT_MAX], msg[ST_LOG_TEXT_MAX];
    if (rc == ST_EUNSUPPORTED) {
        snprintf(status, sizeof status, "unsupported message %s", n ? srv->reports[0].msg_type : "");
        char hex[65];
        st_log_hex(frame, len, 32, hex);
        st_log(ST_LOG_WARN,
               "event=frame_unsupported peer=%s device=%s protocol=%s msg=%s first_bytes=%s "
               "action=\"stored raw\"",
               peer, st_log_text(device_id, dev), proto->name,
               st_log_text(n ? srv->reports[0].msg_type : "", msg), hex);
    } else if (rc < 0) {
        snprintf(status, sizeof status, "malformed: %s", st_strerror(rc));
        srv->counters.decode_errors[pi]++;
        char hex[65];
        st_log_hex(frame, len, 32, hex);
        /* The reply, if any, is the protocol's own error answer (HTTP 400, Wialon error codes). */
        st_log(ST_LOG_WARN,
               "event=frame_malformed peer=%s device=%s protocol=%s reason=\"%s\" len=%zu "
               "first_bytes=%s action=\"stored raw, %s\"",
               peer, st_log_text(device_id, dev), proto->name, st_strerror(rc), len, hex,
               srv->reply.len ? "error answer sent" : "no reply");
        n = 0;
    }
    struct store_frame f = {
        .owner = c,
        .udp_peer = udp_peer,
        .protocol = proto->name,
        .transport = c ? "tcp" : "udp",
        .peer = peer,
        .device_id = device_id,
        .status = status,
        .raw = frame,
        .raw_len = len,
        .reports = srv->reports,
        .n_reports = n,
        .reply = srv->reply.buf,
        .reply_len = srv->reply.len,
        .recv_ms = recv_ms,
    };
    if (store_submit(srv->store, &f) == ST_EFULL) {
        srv->counters.frames_refused++;
        st_log(ST_LOG_WARN,
               "event=frame_refused peer=%s device=%s reason=\"storage queue full\" "
               "action=\"no reply; the device resends\"",
               peer, st_log_text(device_id, dev));
        return;
    }
    if (c)
        c->in_flight++;
}

/* Frame and decode what `data` holds; returns bytes consumed, or -1 when the
 * connection must close (reason logged). */
static ptrdiff_t process(struct server *srv, struct conn *c, const uint8_t *data, size_t len)
{
    size_t off = 0, flen = 0, frames = 0;
    int k = PROTO_STREAM_NEED_MORE;
    while (!c->closing && c->in_flight < CONN_IN_FLIGHT_MAX &&
           (k = proto_stream_next(&c->stream, data, len, &off, &flen)) == PROTO_STREAM_FRAME) {
        handle_frame(srv, c, c->stream.proto, &c->ctx, data + off, flen, NULL, c->peer,
                     c->device_id);
        off += flen;
        frames++;
    }
    if (c->stream.skipped) {
        char dev[ST_LOG_TEXT_MAX];
        st_log(ST_LOG_WARN, "event=garbage_skipped peer=%s device=%s bytes=%zu", c->peer,
               st_log_text(c->device_id, dev), c->stream.skipped);
        c->garbage = frames ? 0 : c->garbage + c->stream.skipped;
        c->stream.skipped = 0;
        if (c->garbage > CONN_GARBAGE_MAX && !c->closing)
            conn_close(c, "too much garbage without a frame");
    } else if (frames) {
        c->garbage = 0;
    }
    if (c->closing)
        return -1;
    if (c->in_flight >= CONN_IN_FLIGHT_MAX && off < len) {
        /* Enough of this connection waits for the writer: keep the rest and read no more
         * until commits bring it down (conn_resume). */
        if (!c->paused) {
            c->paused = true;
            uv_read_stop((uv_stream_t *)&c->tcp);
        }
        return (ptrdiff_t)off;
    }
    if (k == PROTO_STREAM_UNKNOWN) {
        char hex[2 * 32 + 1];
        st_log_hex(data + off, len - off, 32, hex);
        st_log(ST_LOG_WARN, "event=protocol_unknown peer=%s first_bytes=%s", c->peer, hex);
        conn_close(c, "no known protocol");
        return -1;
    }
    if (len - off > PROTO_FRAME_MAX) {
        conn_close(c, "frame over the size limit");
        return -1;
    }
    return (ptrdiff_t)off;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    (void)suggested;
    struct conn *c = h->data;
    b->base = (char *)c->srv->read_buf;
    b->len = READ_BUF_SIZE;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b);

/* Frames of a paused connection have committed: process what it kept, then read again. */
static void conn_resume(struct conn *c)
{
    c->paused = false;
    if (c->in.len) {
        ptrdiff_t used = process(c->srv, c, c->in.data, c->in.len);
        if (used < 0)
            return;
        buf_consume(&c->in, (size_t)used);
        if (c->paused)
            return;
    }
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0)
        conn_close(c, "read failed");
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    struct conn *c = s->data;
    struct server *srv = c->srv;
    if (nread < 0) {
        conn_close(c, nread == UV_EOF ? "-peer closed" : uv_strerror((int)nread));
        return;
    }
    if (nread == 0)
        return;
    c->last_rx_ms = uv_now(srv->loop);
    idle_unlink(srv, c);
    idle_push(srv, c);
    const uint8_t *data = (const uint8_t *)b->base;
    size_t len = (size_t)nread;
    if (c->in.len) { /* a partial frame is waiting: continue it */
        buf_append(&c->in, data, len);
        data = c->in.data;
        len = c->in.len;
    }
    ptrdiff_t used = process(srv, c, data, len);
    if (used < 0)
        return;
    if (data == c->in.data) {
        buf_consume(&c->in, (size_t)used);
    } else if ((size_t)used < len) {
        buf_append(&c->in, data + used, len - (size_t)used);
    }
    if (c->in.len == 0 && c->in.cap > 2 * PROTO_FRAME_MAX)
        buf_free(&c->in); /* idle connections hold no buffer */
}

/* ---- accept, limits, idle sweep --------------------------------------- */

static void peer_text(const struct sockaddr *sa, char *ip, size_t iplen, char *peer, size_t plen)
{
    int port = 0;
    ip[0] = '\0';
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        uv_ip4_name(in, ip, iplen);
        port = ntohs(in->sin_port);
        snprintf(peer, plen, "%s:%d", ip, port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        uv_ip6_name(in6, ip, iplen);
        port = ntohs(in6->sin6_port);
        snprintf(peer, plen, "[%s]:%d", ip, port);
    } else {
        snprintf(ip, iplen, "?");
        snprintf(peer, plen, "?");
    }
}

static void on_refused_closed(uv_handle_t *h)
{
    st_free(h);
}

static void on_connection(uv_stream_t *server, int status)
{
    struct server *srv = server->data;
    if (status < 0) {
        st_log(ST_LOG_WARN, "event=accept_failed reason=\"%s\"", uv_strerror(status));
        return;
    }
    struct conn *c = st_calloc(1, sizeof *c);
    uv_tcp_init(srv->loop, &c->tcp);
    c->tcp.data = c;
    c->srv = srv;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0) {
        uv_close((uv_handle_t *)&c->tcp, on_refused_closed);
        return;
    }
    struct sockaddr_storage ss;
    int sl = sizeof ss;
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &sl) == 0)
        peer_text((struct sockaddr *)&ss, c->ip, sizeof c->ip, c->peer, sizeof c->peer);
    int64_t *per_ip = strmap_put(&srv->per_ip, c->ip, 0);
    const char *refuse = NULL;
    if (srv->counters.connections >= (uint64_t)srv->cfg->max_connections)
        refuse = "server connection limit reached";
    else if (*per_ip >= srv->cfg->max_conn_per_ip)
        refuse = "too many connections from this address";
    if (refuse) {
        if (*per_ip == 0)
            strmap_del(&srv->per_ip, c->ip);
        st_log(ST_LOG_WARN, "event=conn_refused peer=%s reason=\"%s\"", c->peer, refuse);
        uv_close((uv_handle_t *)&c->tcp, on_refused_closed);
        return;
    }
    ++*per_ip;
    srv->counters.connections++;
    uv_tcp_nodelay(&c->tcp, 1);
    c->last_rx_ms = uv_now(srv->loop);
    idle_push(srv, c);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static void on_sweep(uv_timer_t *t)
{
    struct server *srv = t->data;
    uint64_t now = uv_now(srv->loop);
    uint64_t limit = (uint64_t)srv->cfg->idle_timeout_s * 1000;
    while (srv->idle_head && now - srv->idle_head->last_rx_ms >= limit)
        conn_close(srv->idle_head, "idle timeout");
}

/* ---- UDP ----------------------------------------------------------------- */

static void on_udp_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    (void)suggested;
    struct server *srv = h->data;
    b->base = (char *)srv->udp_buf;
    b->len = READ_BUF_SIZE;
}

static void on_udp(uv_udp_t *h, ssize_t nread, const uv_buf_t *b, const struct sockaddr *addr,
                   unsigned flags)
{
    struct server *srv = h->data;
    if (nread <= 0 || !addr)
        return;
    char ip[48], peer[64];
    peer_text(addr, ip, sizeof ip, peer, sizeof peer);
    const uint8_t *data = (const uint8_t *)b->base;
    size_t len = (size_t)nread;
    if (flags & UV_UDP_PARTIAL) {
        st_log(ST_LOG_WARN, "event=udp_truncated peer=%s reason=\"datagram over %d bytes\"", peer,
               READ_BUF_SIZE);
        return;
    }
    struct proto_stream ps = {0};
    char device_id[REPORT_ID_LEN] = "";
    size_t off = 0, flen = 0;
    int k;
    /* A datagram is its own session: what a decoder learned from the previous one (another
     * device's variant, a Wialon 2.0 login, a watch vendor) must not apply to this one. */
    srv->udp_ctx.dialect = 0;
    while ((k = proto_stream_next(&ps, data, len, &off, &flen)) == PROTO_STREAM_FRAME) {
        handle_frame(srv, NULL, ps.proto, &srv->udp_ctx, data + off, flen, addr, peer, device_id);
        off += flen;
    }
    if (k == PROTO_STREAM_UNKNOWN || (k == PROTO_STREAM_NEED_MORE && off < len)) {
        char hex[2 * 32 + 1];
        st_log_hex(data + off, len - off, 32, hex);
        st_log(ST_LOG_WARN, "event=%s peer=%s transport=udp bytes=%zu first_bytes=%s",
               k == PROTO_STREAM_UNKNOWN ? "protocol_unknown" : "udp_partial_frame", peer,
               len - off, hex);
    }
}

/* ---- start / stop --------------------------------------------------------- */

static void close_walk(uv_handle_t *h, void *arg)
{
    struct server *srv = arg;
    if (uv_is_closing(h))
        return;
    if (h->type == UV_TCP && h != (uv_handle_t *)&srv->tcp)
        conn_close(h->data, "-server shutting down");
    else
        uv_close(h, NULL);
}

static void on_signal(uv_signal_t *s, int signum)
{
    struct server *srv = s->data;
    st_log(ST_LOG_INFO, "event=shutdown signal=%d", signum);
    uv_stop(srv->loop);
}

int server_run(const struct st_config *cfg)
{
    static struct server srv_storage; /* big (read buffers, report array): not on the stack */
    struct server *srv = &srv_storage;
    memset(srv, 0, sizeof *srv);
    srv->cfg = cfg;
    srv->loop = uv_default_loop();
    strmap_init(&srv->per_ip);
    idmap_init(&srv->conn_by_device);
    idmap_init(&srv->cmd_queued);
    int rc = ST_EIO;

    uv_async_init(srv->loop, &srv->committed, on_committed);
    srv->committed.data = srv;
    struct store_opts so = {
        .path = cfg->db,
        .sync_full = cfg->sync_full,
        .register_known = cfg->register_mode == ST_REGISTER_KNOWN,
        .discard = cfg->store_none,
        .batch_max = cfg->batch_max,
        .queue_max = cfg->queue_max,
        .raw_frames_max = cfg->raw_frames_max,
        .default_tz_min = cfg->default_tz_min,
        .model_tz = cfg->model_tz,
        .n_model_tz = cfg->n_model_tz,
        .retention_interval_s = cfg->retention_interval_s,
        .domain = true,
        .alerted = on_alerted,
        .alerted_arg = srv,
        .notify = notify_committed,
        .notify_arg = &srv->committed,
    };
    if (!cfg->store_none) {
        struct webhook_opts wo = {.db_path = cfg->db};
        if (store_open(&so, &srv->store) || webhook_start(&wo, &srv->webhooks) ||
            schema_open(cfg->db, 0, &srv->cmd_db))
            goto out;
    } else if (store_open(&so, &srv->store)) {
        goto out;
    }
    if (cfg->store_none)
        st_log(ST_LOG_WARN, "event=store_none reason=\"benchmark mode: nothing is stored, replies "
                            "are sent without durability\"");

    struct sockaddr_storage addr;
    if (uv_ip4_addr(cfg->listen, cfg->port, (struct sockaddr_in *)&addr) &&
        uv_ip6_addr(cfg->listen, cfg->port, (struct sockaddr_in6 *)&addr)) {
        st_log(ST_LOG_ERROR, "event=bad_listen_address listen=\"%s\"", cfg->listen);
        goto out;
    }
    uv_tcp_init(srv->loop, &srv->tcp);
    srv->tcp.data = srv;
    int err = uv_tcp_bind(&srv->tcp, (struct sockaddr *)&addr, 0);
    if (!err)
        err = uv_listen((uv_stream_t *)&srv->tcp, 4096, on_connection);
    if (err) {
        st_log(ST_LOG_ERROR, "event=listen_failed transport=tcp listen=%s port=%d reason=\"%s\"",
               cfg->listen, cfg->port, uv_strerror(err));
        goto out;
    }
    uv_udp_init(srv->loop, &srv->udp);
    srv->udp.data = srv;
    err = uv_udp_bind(&srv->udp, (struct sockaddr *)&addr, 0);
    if (!err)
        err = uv_udp_recv_start(&srv->udp, on_udp_alloc, on_udp);
    if (err) {
        st_log(ST_LOG_ERROR, "event=listen_failed transport=udp listen=%s port=%d reason=\"%s\"",
               cfg->listen, cfg->port, uv_strerror(err));
        goto out;
    }
    if (api_start(srv->loop, cfg, srv->store, &srv->counters, &srv->api))
        goto out;
    api_set_command_hook(srv->api, on_command_queued, srv);
    uv_timer_init(srv->loop, &srv->dialect_timer);
    srv->dialect_timer.data = srv;
    uv_timer_start(&srv->dialect_timer, on_dialect_timer, 0, DIALECT_REFRESH_MS);
    uv_timer_init(srv->loop, &srv->sweep);
    srv->sweep.data = srv;
    uv_timer_start(&srv->sweep, on_sweep, 1000, 1000);
    uv_signal_init(srv->loop, &srv->sigint);
    uv_signal_init(srv->loop, &srv->sigterm);
    srv->sigint.data = srv->sigterm.data = srv;
    uv_signal_start(&srv->sigint, on_signal, SIGINT);
    uv_signal_start(&srv->sigterm, on_signal, SIGTERM);
    st_log(ST_LOG_INFO, "event=listening listen=%s port=%d transports=tcp,udp db=\"%s\" register=%s",
           cfg->listen, cfg->port, cfg->db,
           cfg->register_mode == ST_REGISTER_KNOWN ? "known" : "auto");
    uv_run(srv->loop, UV_RUN_DEFAULT);
    rc = 0;
out:
    /* Commit what is queued and send its replies before the connections close. */
    srv->stopping = true;
    if (srv->store) {
        store_stop(srv->store);
        on_committed(&srv->committed);
    }
    api_close(srv->api); /* its handles first: close_walk takes other TCP handles for devices */
    uv_walk(srv->loop, close_walk, srv);
    uv_run(srv->loop, UV_RUN_DEFAULT);
    api_free(srv->api);
    store_close(srv->store);
    webhook_stop(srv->webhooks);
    sqlite3_close(srv->cmd_db); /* the loop ran dry: no delivery job is left */
    idmap_deinit(&srv->conn_by_device);
    st_free(srv->cmd_queue);
    idmap_deinit(&srv->cmd_queued);
    uv_loop_close(srv->loop);
    strmap_deinit(&srv->per_ip);
    dialect_table_free(srv->dialects);
    dialect_table_free(srv->dialects_next);
    return rc;
}
