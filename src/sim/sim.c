/* sim.c — simulated devices over libuv, one script per protocol.
 *
 * Each device keeps a FIFO of the replies it is owed; every reply that arrives
 * must equal the head of that FIFO byte for byte (JT/T 808: all but the
 * server's own serial number, which is read from the reply and used to build
 * the expected frame). A reply that does not come within the timeout fails
 * the run, naming the device and the frame.
 */
#include "sim.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "../core/buf.h"
#include "../core/err.h"
#include "../core/mem.h"
#include "../core/timeutil.h"
#include "../proto/jt600.h"
#include "../proto/jt808.h"
#include "../proto/proto.h"

#define MAX_WINDOW 64
#define FRAME_MAX 1024 /* bytes of one scripted frame at most */

enum expect_kind {
    EXPECT_EXACT,      /* reply bytes known in advance */
    EXPECT_JT808,      /* JT/T 808 frame: msg id + body known, server serial free */
    EXPECT_TIME_TEXT,  /* text with the current time: prefix + digits + ")" */
};

struct expect {
    int kind;
    uint16_t msg_id;        /* EXPECT_JT808 */
    size_t len;             /* bytes in data */
    uint8_t data[128];      /* exact reply, JT/T 808 body, or text prefix */
    size_t digits;          /* EXPECT_TIME_TEXT */
    uint64_t sent_ms;
    char what[48];          /* for messages: "0x0200 serial 12" */
    int64_t fix_time;       /* > 0: a report to record once acknowledged */
    char kind_text[16];
};

struct device {
    struct sim *sim;
    int index;
    bool jt808;             /* JT709A (JT/T 808), else JT701D (JT600) */
    char id[24];
    union {
        uv_tcp_t tcp;
        uv_udp_t udp;
    } h;
    uv_connect_t connect_req;
    uv_timer_t pause;
    struct buf rx;
    struct expect q[MAX_WINDOW];
    int q_head, q_len;
    int step;               /* next script step */
    int steps;              /* script length */
    uint16_t serial;        /* device's message serial */
    char auth_code[32];
    int done, failed, closing;
};

struct sim {
    const struct sim_opts *o;
    uv_loop_t *loop;
    struct sockaddr_storage addr;
    struct device *devs;
    uv_timer_t watchdog;
    FILE *record;
    int active;
    uint64_t sent, ok, missing, wrong;
    uint64_t *lat;          /* reply latencies, µs */
    size_t n_lat, cap_lat;
    uint64_t start_ms;
};

/* ---- script --------------------------------------------------------------- */

/* The state of device d at report k: a drive along a line, battery draining,
 * an RFID unlock and auto-lock every ten reports, a rope cut mid-way, low
 * battery at the end. */
static void script_report(const struct device *d, int k, struct report *r)
{
    const struct sim_opts *o = d->sim->o;
    report_init(r, d->jt808 ? "jt808" : "jt600");
    snprintf(r->device_id, sizeof r->device_id, "%s", d->id);
    r->fix_time = o->start_time + (int64_t)k * 30;
    r->has_position = true;
    r->valid = true;
    r->fix = REPORT_FIX_GNSS;
    r->lat = 22.5 + d->index * 0.01 + k * 0.0005;
    r->lon = 113.9 + d->index * 0.01 + k * 0.0005;
    r->speed_kmh = 92.6; /* 50 knots: exact in knots (JT600) and in 0.1 km/h (JT/T 808) */
    r->course = 44;
    r->satellites = 9;
    r->gsm_signal = 27;
    r->battery_pct = (int16_t)(100 - (k * 80) / (o->reports > 0 ? o->reports : 1));
    r->battery_v = 3.60 + r->battery_pct / 200.0;
    int phase = k % 10;
    r->lock = phase >= 3 && phase < 5 ? REPORT_LOCK_UNLOCKED : REPORT_LOCK_LOCKED;
    struct report_event *e = NULL;
    if (phase == 3) {
        e = report_add_event(r, REPORT_EV_UNLOCK);
        e->source = REPORT_SRC_RFID;
        e->granted = 1;
        snprintf(e->card, sizeof e->card, "%010d", 6437000 + d->index);
    } else if (phase == 5) {
        e = report_add_event(r, REPORT_EV_LOCK);
        e->source = REPORT_SRC_AUTO;
    } else if (k == o->reports / 2 && o->reports >= 4) {
        e = report_add_event(r, REPORT_EV_TAMPER);
        snprintf(e->reason, sizeof e->reason, "rope_cut");
    } else if (k == o->reports - 1 && o->reports >= 2) {
        r->battery_pct = 15;
        report_add_event(r, REPORT_EV_LOW_BATTERY);
    }
}

static const char *event_kind(const struct report *r)
{
    return r->n_events ? report_event_name(r->events[0].type) : "position";
}

/* Push what the device will be owed for the frame it is about to send. */
static struct expect *expect_push(struct device *d)
{
    struct expect *e = &d->q[(d->q_head + d->q_len++) % MAX_WINDOW];
    memset(e, 0, sizeof *e);
    e->sent_ms = uv_hrtime(); /* ns, converted when measured */
    return e;
}

static void expect_jt808_ack(struct expect *e, uint16_t serial, uint16_t msg_id)
{
    e->kind = EXPECT_JT808;
    e->msg_id = 0x8001;
    uint8_t b[5] = {(uint8_t)(serial >> 8), (uint8_t)serial, (uint8_t)(msg_id >> 8),
                    (uint8_t)msg_id, 0};
    memcpy(e->data, b, 5);
    e->len = 5;
    snprintf(e->what, sizeof e->what, "0x%04x serial %u", msg_id, serial);
}

/* Build step `step` of the device's script into out; returns its length (0 = nothing to send). */
static size_t build_jt808(struct device *d, int step, uint8_t *out, size_t cap)
{
    uint8_t body[512];
    ptrdiff_t blen = 0;
    uint16_t msg_id;
    uint16_t serial = d->serial++;
    struct expect *e;
    if (step == 0) { /* registration: province, city, maker, model, terminal id, plate colour, plate */
        msg_id = 0x0100;
        memset(body, 0, 37);
        memcpy(body + 4, "JTECH", 5);
        memcpy(body + 9, "JT709A", 6);
        memcpy(body + 29, "SIM0001", 7);
        blen = 37;
        e = expect_push(d);
        e->kind = EXPECT_JT808;
        e->msg_id = 0x8100;
        e->data[0] = (uint8_t)(serial >> 8);
        e->data[1] = (uint8_t)serial;
        e->data[2] = 0;
        size_t idl = strlen(d->id);
        memcpy(e->data + 3, d->id, idl);
        e->len = 3 + idl;
        snprintf(e->what, sizeof e->what, "registration serial %u", serial);
    } else if (step == 1) { /* authentication with the code from 0x8100 */
        msg_id = 0x0102;
        blen = (ptrdiff_t)strlen(d->auth_code);
        memcpy(body, d->auth_code, (size_t)blen);
        expect_jt808_ack(expect_push(d), serial, msg_id);
    } else if (step == 2) { /* the JT709A text dialect: time request */
        d->serial--;
        int n = snprintf((char *)out, cap, "(%s,1,001,BASE,2,TIME)", d->id);
        e = expect_push(d);
        e->kind = EXPECT_TIME_TEXT;
        e->len = (size_t)snprintf((char *)e->data, sizeof e->data, "(%s,1,001,BASE,2,", d->id);
        e->digits = 14;
        snprintf(e->what, sizeof e->what, "BASE,2,TIME");
        return (size_t)n;
    } else if (step == d->steps - 1) { /* heartbeat before leaving */
        msg_id = 0x0002;
        expect_jt808_ack(expect_push(d), serial, msg_id);
    } else {
        struct report r;
        int k = step - 3;
        script_report(d, k, &r);
        msg_id = 0x0200;
        blen = jt808_encode_location(&r, body, sizeof body);
        e = expect_push(d);
        expect_jt808_ack(e, serial, msg_id);
        e->fix_time = r.fix_time;
        snprintf(e->kind_text, sizeof e->kind_text, "%s", event_kind(&r));
    }
    if (blen < 0)
        return 0;
    ptrdiff_t n = jt808_encode_frame(msg_id, d->id, serial, body, (size_t)blen, out, cap);
    return n > 0 ? (size_t)n : 0;
}

static size_t build_jt600(struct device *d, int step, uint8_t *out, size_t cap)
{
    struct expect *e;
    if (step == 0) { /* time request; answered with the server's clock */
        e = expect_push(d);
        e->kind = EXPECT_TIME_TEXT;
        e->len = (size_t)snprintf((char *)e->data, sizeof e->data, "(P22,");
        e->digits = 12;
        snprintf(e->what, sizeof e->what, "P22,2");
        return (size_t)snprintf((char *)out, cap, "(%s,P22,2)", d->id);
    }
    if (step == d->steps - 1) /* heartbeat: owed nothing */
        return (size_t)snprintf((char *)out, cap, "(%s,@JT)", d->id);
    struct report r;
    int k = step - 1;
    script_report(d, k, &r);
    unsigned serial = (unsigned)k % 256;
    ptrdiff_t n;
    if (r.n_events && (r.events[0].type == REPORT_EV_UNLOCK || r.events[0].type == REPORT_EV_LOCK))
        n = jt600_encode_p45(&r, &r.events[0], serial, out, cap);
    else
        n = jt600_encode_long(&r, (uint8_t)serial, out, cap);
    if (n <= 0)
        return 0;
    e = expect_push(d);
    e->kind = EXPECT_EXACT;
    e->len = (size_t)snprintf((char *)e->data, sizeof e->data, "(P69,0,%u)", serial);
    snprintf(e->what, sizeof e->what, "report %d serial %u", k, serial);
    e->fix_time = r.fix_time;
    snprintf(e->kind_text, sizeof e->kind_text, "%s", event_kind(&r));
    return (size_t)n;
}

/* ---- I/O ------------------------------------------------------------------- */

static void device_finish(struct device *d);
static void on_pause(uv_timer_t *t);

static void send_failed(struct device *d, int status)
{
    if (status < 0 && !d->failed) {
        fprintf(stderr, "sim: device %s: send failed: %s\n", d->id, uv_strerror(status));
        d->failed = 1;
        device_finish(d);
    }
}

static void on_sent(uv_write_t *req, int status)
{
    send_failed(req->data, status);
    st_free(req);
}

static void on_udp_sent(uv_udp_send_t *req, int status)
{
    send_failed(req->data, status);
    st_free(req);
}

static void send_bytes(struct device *d, const uint8_t *p, size_t n)
{
    struct sim *s = d->sim;
    if (s->o->udp) { /* the request and its bytes in one allocation, freed when sent */
        uv_udp_send_t *req = st_malloc(sizeof *req + n);
        memcpy(req + 1, p, n);
        req->data = d;
        uv_buf_t b = uv_buf_init((char *)(req + 1), (unsigned)n);
        uv_udp_send(req, &d->h.udp, &b, 1, (const struct sockaddr *)&s->addr, on_udp_sent);
        return;
    }
    /* Most writes go out at once; only what the socket does not take needs a request. */
    uv_buf_t b = uv_buf_init((char *)p, (unsigned)n);
    int w = uv_try_write((uv_stream_t *)&d->h.tcp, &b, 1);
    if (w < 0 && w != UV_EAGAIN) {
        send_failed(d, w);
        return;
    }
    size_t done = w > 0 ? (size_t)w : 0;
    if (done == n)
        return;
    uv_write_t *req = st_malloc(sizeof *req + (n - done));
    memcpy(req + 1, p + done, n - done);
    req->data = d;
    b = uv_buf_init((char *)(req + 1), (unsigned)(n - done));
    uv_write(req, (uv_stream_t *)&d->h.tcp, &b, 1, on_sent);
}

/* Send script steps while the window has room. Steps that depend on an earlier
 * reply (authentication needs the registration's code) wait for it. Over TCP the
 * frames of one call go out in one write, as a device's queued frames would. */
static void pump(struct device *d)
{
    struct sim *s = d->sim;
    static uint8_t out[MAX_WINDOW * FRAME_MAX];
    size_t len = 0;
    while (!d->failed && d->step < d->steps && d->q_len < s->o->window) {
        if (d->jt808 && d->step == 1 && !d->auth_code[0])
            break;
        if (d->jt808 && d->step >= 1 && d->step <= 2 && d->q_len > 0)
            break; /* handshake one frame at a time, as devices do */
        size_t n = d->jt808 ? build_jt808(d, d->step, out + len, FRAME_MAX)
                            : build_jt600(d, d->step, out + len, FRAME_MAX);
        d->step++;
        if (n == 0) {
            fprintf(stderr, "sim: device %s: could not encode step %d\n", d->id, d->step - 1);
            d->failed = 1;
            break;
        }
        s->sent++;
        if (s->o->udp)
            send_bytes(d, out, n);
        else
            len += n;
        if (s->o->interval_ms > 0)
            break;
    }
    if (len && !d->failed)
        send_bytes(d, out, len);
    if (d->failed || (d->step >= d->steps && d->q_len == 0))
        device_finish(d);
    else if (s->o->interval_ms > 0 && d->q_len == 0 && d->step < d->steps)
        uv_timer_start(&d->pause, on_pause, (uint64_t)s->o->interval_ms, 0);
}

static void on_pause(uv_timer_t *t)
{
    pump(t->data);
}

static void record_ack(struct device *d, const struct expect *e)
{
    struct sim *s = d->sim;
    uint64_t us = (uv_hrtime() - e->sent_ms) / 1000;
    if (s->n_lat == s->cap_lat) {
        s->cap_lat = s->cap_lat ? s->cap_lat * 2 : 4096;
        s->lat = st_realloc(s->lat, s->cap_lat * sizeof *s->lat);
    }
    s->lat[s->n_lat++] = us;
    if (s->record && e->fix_time > 0) {
        char iso[ST_ISO_LEN];
        st_time_iso(e->fix_time, iso);
        fprintf(s->record, "%s %s %s\n", d->id, iso, e->kind_text);
    }
}

/* Does `reply` answer expectation e? On a mismatch, writes what was expected into want. */
static int reply_matches(struct device *d, const struct expect *e, const uint8_t *reply,
                         size_t len, char *want, size_t wantlen)
{
    if (e->kind == EXPECT_EXACT) {
        snprintf(want, wantlen, "%.*s", (int)e->len, (const char *)e->data);
        return len == e->len && memcmp(reply, e->data, len) == 0;
    }
    if (e->kind == EXPECT_TIME_TEXT) {
        snprintf(want, wantlen, "%.*s<%zu digits>)", (int)e->len, (const char *)e->data,
                 e->digits);
        if (len != e->len + e->digits + 1 || memcmp(reply, e->data, e->len) || reply[len - 1] != ')')
            return 0;
        for (size_t i = e->len; i < len - 1; i++)
            if (reply[i] < '0' || reply[i] > '9')
                return 0;
        return 1;
    }
    /* JT/T 808: unescape to read the server serial, then rebuild the whole expected frame. */
    uint8_t plain[256];
    size_t n = 0;
    for (size_t i = 1; i + 1 < len && n < sizeof plain; i++) {
        if (reply[i] == 0x7D && i + 2 < len) {
            plain[n++] = reply[i + 1] == 0x02 ? 0x7E : 0x7D;
            i++;
        } else {
            plain[n++] = reply[i];
        }
    }
    uint16_t server_serial = (uint16_t)(n >= 12 ? plain[10] << 8 | plain[11] : 0);
    uint8_t frame[256];
    ptrdiff_t fl = jt808_encode_frame(e->msg_id, d->id, server_serial, e->data, e->len, frame,
                                      sizeof frame);
    snprintf(want, wantlen, "JT/T 808 0x%04x with body of %zu bytes", e->msg_id, e->len);
    if (fl <= 0 || (size_t)fl != len || memcmp(frame, reply, len))
        return 0;
    if (e->msg_id == 0x8100 && e->len > 3) { /* the auth code for step 1 */
        size_t cl = e->len - 3 < sizeof d->auth_code - 1 ? e->len - 3 : sizeof d->auth_code - 1;
        memcpy(d->auth_code, e->data + 3, cl);
        d->auth_code[cl] = '\0';
    }
    return 1;
}

static void handle_reply(struct device *d, const uint8_t *reply, size_t len)
{
    struct sim *s = d->sim;
    if (d->q_len == 0) {
        fprintf(stderr, "sim: device %s: unexpected reply %.*s\n", d->id, (int)(len > 80 ? 80 : len),
                (const char *)reply);
        s->wrong++;
        d->failed = 1;
        return;
    }
    struct expect *e = &d->q[d->q_head];
    char want[160];
    if (reply_matches(d, e, reply, len, want, sizeof want)) {
        s->ok++;
        record_ack(d, e);
    } else {
        char hex[2 * 64 + 1];
        size_t m = len > 64 ? 64 : len;
        for (size_t i = 0; i < m; i++)
            snprintf(hex + 2 * i, 3, "%02x", reply[i]);
        fprintf(stderr, "sim: device %s: wrong reply to %s: expected %s, got %s\n", d->id, e->what,
                want, hex);
        s->wrong++;
        d->failed = 1;
    }
    d->q_head = (d->q_head + 1) % MAX_WINDOW;
    d->q_len--;
}

static void consume_replies(struct device *d, const uint8_t *data, size_t len)
{
    const struct proto_ops *p = d->jt808 ? &proto_jt808 : &proto_jt600;
    buf_append(&d->rx, data, len);
    size_t off = 0;
    while (off < d->rx.len && !d->failed) {
        ptrdiff_t fl = p->frame(d->rx.data + off, d->rx.len - off);
        if (fl == 0)
            break;
        if (fl < 0) {
            fprintf(stderr, "sim: device %s: %td bytes of garbage in replies\n", d->id, -fl);
            d->sim->wrong++;
            d->failed = 1;
            break;
        }
        handle_reply(d, d->rx.data + off, (size_t)fl);
        off += (size_t)fl;
    }
    buf_consume(&d->rx, off);
    pump(d);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    (void)h;
    (void)suggested;
    static char buf[65536];
    b->base = buf;
    b->len = sizeof buf;
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *b)
{
    struct device *d = st->data;
    if (nread < 0) {
        if (!d->done) {
            fprintf(stderr, "sim: device %s: connection closed by the server (%s) with %d replies owed\n",
                    d->id, uv_strerror((int)nread), d->q_len);
            d->failed = 1;
            device_finish(d);
        }
        return;
    }
    consume_replies(d, (const uint8_t *)b->base, (size_t)nread);
}

static void on_udp_read(uv_udp_t *h, ssize_t nread, const uv_buf_t *b, const struct sockaddr *addr,
                        unsigned flags)
{
    (void)addr;
    (void)flags;
    struct device *d = h->data;
    if (nread <= 0 || d->done)
        return;
    consume_replies(d, (const uint8_t *)b->base, (size_t)nread);
}

static void on_connect(uv_connect_t *req, int status)
{
    struct device *d = req->data;
    if (status < 0) {
        fprintf(stderr, "sim: device %s: cannot connect: %s\n", d->id, uv_strerror(status));
        d->failed = 1;
        device_finish(d);
        return;
    }
    uv_read_start((uv_stream_t *)&d->h.tcp, on_alloc, on_read);
    pump(d);
}

static void on_device_closed(uv_handle_t *h)
{
    (void)h;
}

static void device_finish(struct device *d)
{
    if (d->done)
        return;
    d->done = 1;
    struct sim *s = d->sim;
    s->missing += (uint64_t)d->q_len;
    uv_timer_stop(&d->pause);
    uv_close((uv_handle_t *)&d->pause, on_device_closed);
    uv_close((uv_handle_t *)&d->h, on_device_closed);
    if (--s->active == 0)
        uv_timer_stop(&s->watchdog);
}

static void on_watchdog(uv_timer_t *t)
{
    struct sim *s = t->data;
    uint64_t now = uv_hrtime();
    for (int i = 0; i < s->o->devices; i++) {
        struct device *d = &s->devs[i];
        if (d->done || d->q_len == 0)
            continue;
        struct expect *e = &d->q[d->q_head];
        if ((now - e->sent_ms) / 1000000 > (uint64_t)s->o->timeout_ms) {
            fprintf(stderr, "sim: device %s: no reply to %s after %d ms\n", d->id, e->what,
                    s->o->timeout_ms);
            d->failed = 1;
            device_finish(d);
        }
    }
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int sim_run(const struct sim_opts *o)
{
    struct sim s = {0};
    s.o = o;
    bool mixed = strcmp(o->protocol, "mixed") == 0;
    s.loop = uv_default_loop();
    if (uv_ip4_addr(o->host, o->port, (struct sockaddr_in *)&s.addr) &&
        uv_ip6_addr(o->host, o->port, (struct sockaddr_in6 *)&s.addr)) {
        fprintf(stderr, "sim: '%s' is not an IP address\n", o->host);
        return 2;
    }
    if (o->record && !(s.record = fopen(o->record, "w"))) {
        fprintf(stderr, "sim: cannot write %s\n", o->record);
        return 2;
    }
    s.devs = st_calloc((size_t)o->devices, sizeof *s.devs);
    s.start_ms = uv_now(s.loop);
    uv_timer_init(s.loop, &s.watchdog);
    s.watchdog.data = &s;
    uv_timer_start(&s.watchdog, on_watchdog, 100, 100);
    for (int i = 0; i < o->devices; i++) {
        struct device *d = &s.devs[i];
        d->sim = &s;
        d->index = i;
        /* mixed: every other device is a JT701D, each kind numbered from its own base */
        d->jt808 = mixed ? i % 2 == 0 : strcmp(o->protocol, "jt808") == 0;
        int64_t id = mixed ? (d->jt808 ? SIM_JT808_ID_BASE : SIM_JT600_ID_BASE) + i / 2
                           : o->id_base + i;
        snprintf(d->id, sizeof d->id, d->jt808 ? "%012" PRId64 : "%010" PRId64, id);
        d->steps = o->reports + (d->jt808 ? 4 : 2);
        uv_timer_init(s.loop, &d->pause);
        d->pause.data = d;
        s.active++;
        if (o->udp) {
            uv_udp_init(s.loop, &d->h.udp);
            d->h.udp.data = d;
            uv_udp_recv_start(&d->h.udp, on_alloc, on_udp_read);
            pump(d);
        } else {
            uv_tcp_init(s.loop, &d->h.tcp);
            d->h.tcp.data = d;
            d->connect_req.data = d;
            uv_tcp_nodelay(&d->h.tcp, 1);
            int rc = uv_tcp_connect(&d->connect_req, &d->h.tcp, (const struct sockaddr *)&s.addr,
                                    on_connect);
            if (rc < 0) {
                fprintf(stderr, "sim: device %s: cannot connect: %s\n", d->id, uv_strerror(rc));
                d->failed = 1;
                device_finish(d);
            }
        }
    }
    uv_run(s.loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&s.watchdog, NULL);
    uv_run(s.loop, UV_RUN_DEFAULT);
    double elapsed = (double)(uv_now(s.loop) - s.start_ms) / 1000.0;
    int failed = 0;
    for (int i = 0; i < o->devices; i++)
        failed += s.devs[i].failed;
    qsort(s.lat, s.n_lat, sizeof *s.lat, cmp_u64);
    double p50 = s.n_lat ? (double)s.lat[s.n_lat / 2] / 1000.0 : 0;
    double p99 = s.n_lat ? (double)s.lat[(s.n_lat * 99) / 100] / 1000.0 : 0;
    double max = s.n_lat ? (double)s.lat[s.n_lat - 1] / 1000.0 : 0;
    printf("{\"protocol\":\"%s\",\"transport\":\"%s\",\"devices\":%d,\"devices_failed\":%d,"
           "\"frames_sent\":%" PRIu64 ",\"replies_ok\":%" PRIu64 ",\"replies_missing\":%" PRIu64
           ",\"replies_wrong\":%" PRIu64 ",\"elapsed_s\":%.3f,\"replies_per_s\":%.0f,"
           "\"latency_ms_p50\":%.3f,\"latency_ms_p99\":%.3f,\"latency_ms_max\":%.3f}\n",
           o->protocol, o->udp ? "udp" : "tcp", o->devices, failed, s.sent, s.ok, s.missing,
           s.wrong, elapsed, elapsed > 0 ? (double)s.ok / elapsed : 0, p50, p99, max);
    if (s.record)
        fclose(s.record);
    for (int i = 0; i < o->devices; i++)
        buf_free(&s.devs[i].rx);
    st_free(s.devs);
    st_free(s.lat);
    uv_loop_close(s.loop);
    return failed || s.missing || s.wrong ? 1 : 0;
}
