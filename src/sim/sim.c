/* sim.c — simulated devices over libuv, one script per protocol.
 *
 * Each device keeps a FIFO of the replies it is owed; every reply that arrives
 * must equal the head of that FIFO byte for byte (JT/T 808: all but the
 * server's own serial number, which is read from the reply and used to build
 * the expected frame). A reply that does not come within the timeout fails
 * the run, naming the device and the frame. Whatever else the server sends is
 * a command — told from a reply by what it is, not by when it comes: the
 * device answers the commands its manual documents as the real one would, and
 * the summary lists every command received.
 *
 * Reports are built in index order (events and lock state change as they are
 * built); a report in the --late range is built at its turn and kept, as a
 * device keeps it in flash when it has no network, then sent after the last one.
 */
#include "sim.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "../core/buf.h"
#include "../core/err.h"
#include "../core/hex.h"
#include "../core/jsonw.h"
#include "../core/mem.h"
#include "../core/timeutil.h"
#include "../proto/jt600.h"
#include "../proto/jt808.h"
#include "../proto/proto.h"

#define MAX_WINDOW 64
#define FRAME_MAX 1024 /* bytes of one scripted frame at most */
#define HELD_MAX 192   /* one held-back report: a JT600 frame or a 0x0200 body */
/* Reports per 0x0704 batch: 8 × (2 + a 0x0200 body of ≤ 51 bytes) keeps the body and its
 * escaped frame well inside the 1023-byte body limit and FRAME_MAX. */
#define LATE_BATCH 8
#define BATCH_BLIND_AREA 1 /* 0x0704 type: blind-area re-upload */
#define PENDING_MAX 16     /* commanded unlocks not yet reported, at most */

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
    int held_from, n_held;  /* a 0x0704 batch: acknowledges these held reports */
};

/* A report kept back for the late (blind-area) upload. */
struct held {
    int index;              /* report index */
    int64_t fix_time;
    char kind_text[16];
    unsigned serial;        /* JT600: the frame's serial */
    size_t len;
    uint8_t data[HELD_MAX]; /* JT600: the whole frame; JT/T 808: the 0x0200 body */
};

struct event_kind;

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
    uv_timer_t pause;       /* --interval-ms pauses, then the --hold-ms wait */
    struct buf rx;
    struct expect q[MAX_WINDOW];
    int q_head, q_len;
    int step;               /* next script step */
    int steps;              /* script length */
    uint16_t serial;        /* device's message serial */
    char auth_code[32];
    uint8_t lock;           /* scripted runs: REPORT_LOCK_* now */
    int next_event;         /* scripted runs: first event not yet reported */
    int built;              /* reports built so far */
    int64_t newest_fix;     /* newest fix time built */
    struct held *held;      /* room for the --late range */
    int n_held, held_sent;
    const struct event_kind *pending[PENDING_MAX]; /* commanded unlocks to report next */
    int n_pending;
    int extra;              /* frames sent beyond the script (their JT600 serials) */
    char password[16];      /* JT701D static password (P43, P44) */
    int wrong_tries;        /* consecutive wrong P43 passwords */
    int done, failed, hold_started, hold_over;
};

/* A command the server sent a device, and the answer it got. */
struct sim_command {
    int device;
    bool binary, answered;
    size_t len, alen;
    uint8_t *bytes;         /* the command, then the answer: len + alen bytes, owned */
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
    struct sim_command *cmds;
    size_t n_cmds, cap_cmds;
};

/* ---- events ----------------------------------------------------------------- */

/* What each event kind becomes in a report; the encoders pick the wire form (JT/T 808: a
 * Jointech 0x0B item or an alarm bit; JT600: a P45 text or a status bit). */
enum { EV_LOCK, EV_UNLOCK_RFID, EV_UNLOCK_REMOTE, EV_UNLOCK_DYNAMIC, EV_TAMPER, EV_WRONG_PASSWORD,
       EV_LOW_BATTERY, N_EVENT_KINDS };

static const struct event_kind {
    const char *name;
    uint8_t type, source;
    uint8_t lock; /* lock state after it; REPORT_LOCK_UNKNOWN = unchanged */
    bool card;    /* takes the card number */
    const char *reason;
} event_kinds[N_EVENT_KINDS] = {
    [EV_LOCK] = {"lock", REPORT_EV_LOCK, REPORT_SRC_AUTO, REPORT_LOCK_LOCKED, false, ""},
    [EV_UNLOCK_RFID] = {"unlock_rfid", REPORT_EV_UNLOCK, REPORT_SRC_RFID, REPORT_LOCK_UNLOCKED,
                        true, ""},
    [EV_UNLOCK_REMOTE] = {"unlock_remote", REPORT_EV_UNLOCK, REPORT_SRC_REMOTE_STATIC,
                          REPORT_LOCK_UNLOCKED, false, ""},
    [EV_UNLOCK_DYNAMIC] = {"unlock_dynamic", REPORT_EV_UNLOCK, REPORT_SRC_REMOTE_DYNAMIC,
                           REPORT_LOCK_UNLOCKED, false, ""},
    [EV_TAMPER] = {"tamper", REPORT_EV_TAMPER, REPORT_SRC_ROPE, REPORT_LOCK_UNKNOWN, false,
                   "rope_cut"},
    [EV_WRONG_PASSWORD] = {"wrong_password", REPORT_EV_WRONG_PASSWORD, REPORT_SRC_NONE,
                           REPORT_LOCK_UNKNOWN, false, ""},
    [EV_LOW_BATTERY] = {"low_battery", REPORT_EV_LOW_BATTERY, REPORT_SRC_NONE, REPORT_LOCK_UNKNOWN,
                        false, ""},
};

static void add_event(struct report *r, const struct event_kind *k, const char *card)
{
    struct report_event *e = report_add_event(r, k->type);
    if (!e)
        return;
    e->source = k->source;
    snprintf(e->reason, sizeof e->reason, "%s", k->reason);
    if (k->type == REPORT_EV_UNLOCK)
        e->granted = 1;
    if (k->card)
        snprintf(e->card, sizeof e->card, "%s", card);
    if (k->lock != REPORT_LOCK_UNKNOWN)
        r->lock = k->lock;
    if (k->type == REPORT_EV_LOW_BATTERY)
        r->battery_pct = 15;
}

/* ---- script --------------------------------------------------------------- */

/* The state of device d at report k without events: on the route (or, built in, a drive
 * along a line with the lock open for two reports in every ten), battery draining. */
static void base_report(const struct device *d, int k, struct report *r)
{
    const struct sim_opts *o = d->sim->o;
    report_init(r, d->jt808 ? "jt808" : "jt600");
    snprintf(r->device_id, sizeof r->device_id, "%s", d->id);
    r->fix_time = o->start_time + (int64_t)k * o->step_s;
    r->has_position = true;
    r->valid = true;
    r->fix = REPORT_FIX_GNSS;
    if (o->route) {
        r->lat = o->route[k].lat;
        r->lon = o->route[k].lon;
    } else {
        r->lat = 22.5 + d->index * 0.01 + k * 0.0005;
        r->lon = 113.9 + d->index * 0.01 + k * 0.0005;
    }
    r->speed_kmh = 92.6; /* 50 knots: exact in knots (JT600) and in 0.1 km/h (JT/T 808) */
    r->course = 44;
    r->satellites = 9;
    r->gsm_signal = 27;
    r->battery_pct = (int16_t)(100 - (k * 80) / (o->reports > 0 ? o->reports : 1));
    r->battery_v = 3.60 + r->battery_pct / 200.0;
    int phase = k % 10;
    if (o->scripted)
        r->lock = d->lock;
    else
        r->lock = phase >= 3 && phase < 5 ? REPORT_LOCK_UNLOCKED : REPORT_LOCK_LOCKED;
}

/* Report k with its events: the scripted ones, or built in an RFID unlock and auto-lock
 * every ten reports, a rope cut mid-way and low battery at the end. Called once per k,
 * in order. */
static void script_report(struct device *d, int k, struct report *r)
{
    const struct sim_opts *o = d->sim->o;
    base_report(d, k, r);
    d->built = k + 1;
    d->newest_fix = r->fix_time;
    if (o->scripted) {
        if (d->next_event < o->n_events && o->events[d->next_event].index == k) {
            const struct sim_event *ev = &o->events[d->next_event++];
            add_event(r, &event_kinds[ev->kind], ev->card);
            d->lock = r->lock;
        }
        return;
    }
    int phase = k % 10;
    if (phase == 3) {
        char card[16];
        snprintf(card, sizeof card, "%010d", 6437000 + d->index);
        add_event(r, &event_kinds[EV_UNLOCK_RFID], card);
    } else if (phase == 5) {
        add_event(r, &event_kinds[EV_LOCK], "");
    } else if (k == o->reports / 2 && o->reports >= 4) {
        add_event(r, &event_kinds[EV_TAMPER], "");
    } else if (k == o->reports - 1 && o->reports >= 2) {
        add_event(r, &event_kinds[EV_LOW_BATTERY], "");
    }
}

static const char *event_kind(const struct report *r)
{
    return r->n_events ? report_event_name(r->events[0].type) : "position";
}

static bool is_late(const struct sim_opts *o, int k)
{
    return k >= o->late_from && k < o->late_to;
}

/* r as the device sends it: JT/T 808 a 0x0200 body; JT600 a P45 text for lock and unlock
 * events, else a long `$` frame. Returns the length or a negative ST_E*. */
static ptrdiff_t encode_report(bool jt808, const struct report *r, unsigned serial, uint8_t *out,
                               size_t cap)
{
    if (jt808)
        return jt808_encode_location(r, out, cap);
    uint8_t type = r->n_events ? r->events[0].type : 0;
    if (type == REPORT_EV_UNLOCK || type == REPORT_EV_LOCK)
        return jt600_encode_p45(r, &r->events[0], serial, out, cap);
    return jt600_encode_long(r, (uint8_t)serial, out, cap);
}

/* Keep report k (serial: JT600) for the late upload. Returns 0 (nothing to send now) or a
 * negative ST_E*. */
static ptrdiff_t hold_report(struct device *d, const struct report *r, int k, unsigned serial)
{
    struct held *h = &d->held[d->n_held];
    ptrdiff_t n = encode_report(d->jt808, r, serial, h->data, sizeof h->data);
    if (n < 0)
        return n;
    h->index = k;
    h->len = (size_t)n;
    h->fix_time = r->fix_time;
    h->serial = serial;
    snprintf(h->kind_text, sizeof h->kind_text, "%s", event_kind(r));
    d->n_held++;
    return 0;
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

/* A JT701D report (report `k`, or late report `k`) is owed (P69,0,<serial>). */
static void expect_jt600_ack(struct device *d, unsigned serial, const char *what, int k,
                             int64_t fix_time, const char *kind)
{
    struct expect *e = expect_push(d);
    e->kind = EXPECT_EXACT;
    e->len = (size_t)snprintf((char *)e->data, sizeof e->data, "(P69,0,%u)", serial);
    snprintf(e->what, sizeof e->what, "%s %d serial %u", what, k, serial);
    e->fix_time = fix_time;
    snprintf(e->kind_text, sizeof e->kind_text, "%s", kind);
}

/* The next 0x0704 blind-area batch of held 0x0200 bodies into body (room for LATE_BATCH of
 * HELD_MAX); e learns which reports it acknowledges. Returns the body length. */
static size_t batch_body(struct device *d, uint8_t *body, struct expect *e)
{
    int n = d->n_held - d->held_sent < LATE_BATCH ? d->n_held - d->held_sent : LATE_BATCH;
    body[0] = (uint8_t)(n >> 8);
    body[1] = (uint8_t)n;
    body[2] = BATCH_BLIND_AREA;
    size_t len = 3;
    for (int i = 0; i < n; i++) {
        const struct held *h = &d->held[d->held_sent + i];
        body[len++] = (uint8_t)(h->len >> 8);
        body[len++] = (uint8_t)h->len;
        memcpy(body + len, h->data, h->len);
        len += h->len;
    }
    e->held_from = d->held_sent;
    e->n_held = n;
    d->held_sent += n;
    return len;
}

/* Build step `step` of the device's script into out: returns its length, 0 when the step
 * sends nothing now (a report held back), or a negative ST_E*. Steps: registration,
 * authentication, time request, the reports, the late batches, a heartbeat. */
static ptrdiff_t build_jt808(struct device *d, int step, uint8_t *out, size_t cap)
{
    const struct sim_opts *o = d->sim->o;
    uint8_t body[3 + LATE_BATCH * (2 + HELD_MAX)];
    size_t blen = 0;
    uint16_t msg_id;
    uint16_t serial = d->serial;
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
        blen = strlen(d->auth_code);
        memcpy(body, d->auth_code, blen);
        expect_jt808_ack(expect_push(d), serial, msg_id);
    } else if (step == 2) { /* the JT709A text dialect: time request */
        int n = snprintf((char *)out, cap, "(%s,1,001,BASE,2,TIME)", d->id);
        e = expect_push(d);
        e->kind = EXPECT_TIME_TEXT;
        e->len = (size_t)snprintf((char *)e->data, sizeof e->data, "(%s,1,001,BASE,2,", d->id);
        e->digits = 14;
        snprintf(e->what, sizeof e->what, "BASE,2,TIME");
        return n;
    } else if (step == d->steps - 1) { /* heartbeat before leaving */
        msg_id = 0x0002;
        expect_jt808_ack(expect_push(d), serial, msg_id);
    } else if (step < 3 + o->reports) {
        struct report r;
        int k = step - 3;
        script_report(d, k, &r);
        if (is_late(o, k))
            return hold_report(d, &r, k, 0);
        ptrdiff_t n = jt808_encode_location(&r, body, sizeof body);
        if (n < 0)
            return n;
        blen = (size_t)n;
        msg_id = 0x0200;
        e = expect_push(d);
        expect_jt808_ack(e, serial, msg_id);
        e->fix_time = r.fix_time;
        snprintf(e->kind_text, sizeof e->kind_text, "%s", event_kind(&r));
    } else { /* the late reports, as the blind-area upload */
        msg_id = 0x0704;
        e = expect_push(d);
        expect_jt808_ack(e, serial, msg_id);
        blen = batch_body(d, body, e);
    }
    ptrdiff_t n = jt808_encode_frame(msg_id, d->id, serial, body, blen, out, cap);
    if (n > 0)
        d->serial++;
    return n;
}

/* Steps: time request, the reports, the late reports (their own frames and fix times), a
 * heartbeat. */
static ptrdiff_t build_jt600(struct device *d, int step, uint8_t *out, size_t cap)
{
    const struct sim_opts *o = d->sim->o;
    struct expect *e;
    if (step == 0) { /* time request; answered with the server's clock */
        e = expect_push(d);
        e->kind = EXPECT_TIME_TEXT;
        e->len = (size_t)snprintf((char *)e->data, sizeof e->data, "(P22,");
        e->digits = 12;
        snprintf(e->what, sizeof e->what, "P22,2");
        return snprintf((char *)out, cap, "(%s,P22,2)", d->id);
    }
    if (step == d->steps - 1) /* heartbeat: owed nothing */
        return snprintf((char *)out, cap, "(%s,@JT)", d->id);
    if (step > o->reports) {
        const struct held *h = &d->held[d->held_sent++];
        if (h->len > cap)
            return ST_ERANGE;
        memcpy(out, h->data, h->len);
        expect_jt600_ack(d, h->serial, "late report", h->index, h->fix_time, h->kind_text);
        return (ptrdiff_t)h->len;
    }
    struct report r;
    int k = step - 1;
    script_report(d, k, &r);
    unsigned serial = (unsigned)k % 256;
    if (is_late(o, k))
        return hold_report(d, &r, k, serial);
    ptrdiff_t n = encode_report(false, &r, serial, out, cap);
    if (n > 0)
        expect_jt600_ack(d, serial, "report", k, r.fix_time, event_kind(&r));
    return n;
}

/* The report of a remote unlock the server commanded (JT701D): where the device last was,
 * a second after its newest fix (so the server takes it as the newest), the lock open
 * from then on. */
static ptrdiff_t build_remote_unlock(struct device *d, uint8_t *out, size_t cap)
{
    const struct sim_opts *o = d->sim->o;
    struct report r;
    int k = d->built > 0 ? d->built - 1 : 0;
    base_report(d, k, &r);
    r.fix_time = d->newest_fix = (d->newest_fix ? d->newest_fix : r.fix_time) + 1;
    add_event(&r, d->pending[0], "");
    memmove(d->pending, d->pending + 1, (size_t)--d->n_pending * sizeof d->pending[0]);
    if (o->scripted)
        d->lock = REPORT_LOCK_UNLOCKED;
    unsigned serial = (unsigned)(o->reports + d->extra++) % 256;
    ptrdiff_t n = encode_report(false, &r, serial, out, cap);
    if (n > 0)
        expect_jt600_ack(d, serial, "remote unlock", k, r.fix_time, event_kind(&r));
    return n;
}

/* ---- I/O ------------------------------------------------------------------- */

static void device_finish(struct device *d);
static void on_pause(uv_timer_t *t);
static void on_hold_end(uv_timer_t *t);

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
    /* Most writes go out at once; only what the socket does not take needs a request.
     * (uv_try_write refuses while a request is queued, so the order is kept.) */
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

/* Send frames while the window has room: a commanded unlock first, then script steps.
 * Steps that depend on an earlier reply (authentication needs the registration's code)
 * wait for it. Over TCP the frames of one call go out in one write, as a device's queued
 * frames would. Once the script is done and nothing is owed, the device stays --hold-ms
 * longer, then leaves. */
static void pump(struct device *d)
{
    struct sim *s = d->sim;
    static uint8_t out[MAX_WINDOW * FRAME_MAX];
    size_t len = 0;
    if (d->done)
        return;
    while (!d->failed && d->q_len < s->o->window) {
        ptrdiff_t n;
        if (d->n_pending) {
            n = build_remote_unlock(d, out + len, FRAME_MAX);
        } else if (d->step < d->steps) {
            if (d->jt808 && d->step == 1 && !d->auth_code[0])
                break;
            if (d->jt808 && d->step >= 1 && d->step <= 2 && d->q_len > 0)
                break; /* handshake one frame at a time, as devices do */
            n = d->jt808 ? build_jt808(d, d->step, out + len, FRAME_MAX)
                         : build_jt600(d, d->step, out + len, FRAME_MAX);
            d->step++;
        } else {
            break;
        }
        if (n < 0) {
            fprintf(stderr, "sim: device %s: could not encode step %d: %s\n", d->id, d->step - 1,
                    st_strerror((int)n));
            d->failed = 1;
            break;
        }
        if (n == 0)
            continue; /* held back for the late upload */
        s->sent++;
        if (s->o->udp)
            send_bytes(d, out, (size_t)n);
        else
            len += (size_t)n;
        if (s->o->interval_ms > 0)
            break;
    }
    if (len && !d->failed)
        send_bytes(d, out, len);
    if (d->failed) {
        device_finish(d);
    } else if (d->step < d->steps || d->q_len > 0 || d->n_pending) {
        if (s->o->interval_ms > 0 && d->q_len == 0 && d->step < d->steps)
            uv_timer_start(&d->pause, on_pause, (uint64_t)s->o->interval_ms, 0);
    } else if (s->o->hold_ms > 0 && !d->hold_started) {
        d->hold_started = 1;
        uv_timer_start(&d->pause, on_hold_end, (uint64_t)s->o->hold_ms, 0);
    } else if (s->o->hold_ms == 0 || d->hold_over) {
        device_finish(d);
    }
}

static void on_pause(uv_timer_t *t)
{
    pump(t->data);
}

static void on_hold_end(uv_timer_t *t)
{
    struct device *d = t->data;
    d->hold_over = 1;
    pump(d);
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
    if (!s->record)
        return;
    char iso[ST_ISO_LEN];
    for (int i = 0; i < e->n_held; i++) {
        const struct held *h = &d->held[e->held_from + i];
        st_time_iso(h->fix_time, iso);
        fprintf(s->record, "%s %s %s\n", d->id, iso, h->kind_text);
    }
    if (e->fix_time > 0) {
        st_time_iso(e->fix_time, iso);
        fprintf(s->record, "%s %s %s\n", d->id, iso, e->kind_text);
    }
}

/* A JT/T 808 wire frame (both 0x7E included) → the bytes between its delimiters,
 * unescaped, at most cap of them; returns their count. */
static size_t jt808_plain(const uint8_t *f, size_t len, uint8_t *plain, size_t cap)
{
    size_t n = 0;
    for (size_t i = 1; i + 1 < len && n < cap; i++) {
        if (f[i] == 0x7D && i + 2 < len) {
            plain[n++] = f[i + 1] == 0x02 ? 0x7E : 0x7D;
            i++;
        } else {
            plain[n++] = f[i];
        }
    }
    return n;
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
    size_t n = jt808_plain(reply, len, plain, sizeof plain);
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
        st_hex_encode(reply, len > 64 ? 64 : len, hex, sizeof hex);
        fprintf(stderr, "sim: device %s: wrong reply to %s: expected %s, got %s\n", d->id, e->what,
                want, hex);
        s->wrong++;
        d->failed = 1;
    }
    d->q_head = (d->q_head + 1) % MAX_WINDOW;
    d->q_len--;
}

/* ---- commands from the server --------------------------------------------------- */

#define TEXT_FIELDS 8

/* Split a `( … )` text into at most TEXT_FIELDS comma-separated fields, copied into
 * text[cap] (NUL-terminated each). Returns the field count. */
static int text_fields(const uint8_t *f, size_t len, char *text, size_t cap, char **fields)
{
    size_t n = len >= 2 ? len - 2 : 0;
    if (n >= cap)
        n = cap - 1;
    memcpy(text, f + 1, n);
    text[n] = '\0';
    int nf = 0;
    for (char *p = text; nf < TEXT_FIELDS;) {
        fields[nf++] = p;
        p = strchr(p, ',');
        if (!p)
            break;
        *p++ = '\0';
    }
    return nf;
}

/* Replies are told from commands by what they are: the JT/T 808 general and registration
 * responses, the JT600 acknowledgement P69, the JT709A time answer (`(ID,1,001,BASE,2,…)`)
 * and a P22 time answer while one is owed (at any other time P22 sets the clock). Anything
 * else that is not a text or a JT/T 808 frame is checked as a reply, and fails. */
static bool is_reply(const struct device *d, const uint8_t *f, size_t len)
{
    if (f[0] == 0x7E) {
        uint8_t id[2];
        if (jt808_plain(f, len, id, sizeof id) < sizeof id)
            return true;
        return (id[0] == 0x80 && id[1] == 0x01) || (id[0] == 0x81 && id[1] == 0x00);
    }
    if (f[0] != '(')
        return true;
    char text[64], *fields[TEXT_FIELDS];
    int nf = text_fields(f, len, text, sizeof text, fields);
    if (strcmp(fields[0], "P22") == 0)
        return d->q_len > 0 && d->q[d->q_head].kind == EXPECT_TIME_TEXT;
    return strcmp(fields[0], "P69") == 0 || (nf > 3 && strcmp(fields[3], "BASE") == 0);
}

/* Report a commanded unlock in the device's next frame (each one: they may come several
 * in one read, before the device sends anything). */
static void unlock_later(struct device *d, int kind)
{
    if (d->n_pending == PENDING_MAX) {
        fprintf(stderr, "sim: device %s: over %d unlocks pending, one not reported\n", d->id,
                PENDING_MAX);
        return;
    }
    d->pending[d->n_pending++] = &event_kinds[kind];
}

/* JT701D commands whose answer the manual documents (jointech.md §2.12): the answer into
 * ans[cap]; returns its length, 0 for any other command. A right P43 password or a P52,3
 * unlocks: the unlock is reported in the device's next frame. */
static size_t answer_jt600(struct device *d, const uint8_t *f, size_t len, uint8_t *ans,
                           size_t cap)
{
    char text[PROTO_FRAME_MAX], *a[TEXT_FIELDS];
    int nf = text_fields(f, len, text, sizeof text, a), n = 0;
    if (nf == 2 && strcmp(a[0], "P43") == 0) { /* static password unlock */
        bool ok = strcmp(a[1], d->password) == 0;
        d->wrong_tries = ok ? 0 : d->wrong_tries + 1;
        if (ok)
            unlock_later(d, EV_UNLOCK_REMOTE);
        n = snprintf((char *)ans, cap, "(%s,P43,%d,%d)", d->id, ok, d->wrong_tries);
    } else if (nf == 3 && strcmp(a[0], "P52") == 0 && strcmp(a[1], "3") == 0) {
        unlock_later(d, EV_UNLOCK_DYNAMIC); /* the simulator keeps no dynamic code */
        n = snprintf((char *)ans, cap, "(%s,P52,3,1,0)", d->id);
    } else if (nf == 3 && strcmp(a[0], "P44") == 0) { /* new password, old password */
        bool ok = strcmp(a[2], d->password) == 0 && a[1][0] && strlen(a[1]) < sizeof d->password;
        if (ok)
            snprintf(d->password, sizeof d->password, "%s", a[1]);
        n = snprintf((char *)ans, cap, "(%s,P44,%d)", d->id, ok);
    }
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

/* JT/T 808 platform messages the device acknowledges with a 0x0001 general response
 * (its serial, the message's serial and id, result 0). */
static const uint16_t jt808_acked[] = {0x8103, 0x8105, 0x8201, 0x8300};

static size_t answer_jt808(struct device *d, const uint8_t *f, size_t len, uint8_t *ans,
                           size_t cap)
{
    uint8_t h[17]; /* header: id, attributes, (2019: version), terminal, serial */
    size_t n = f[0] == 0x7E ? jt808_plain(f, len, h, sizeof h) : 0;
    if (n < 12)
        return 0;
    uint16_t id = (uint16_t)(h[0] << 8 | h[1]);
    size_t so = h[2] & 0x40 ? 15 : 10; /* attribute bit 14: 2019 header */
    bool known = false;
    for (size_t i = 0; i < sizeof jt808_acked / sizeof jt808_acked[0]; i++)
        if (jt808_acked[i] == id)
            known = true;
    if (!known || n < so + 2)
        return 0;
    uint8_t body[5] = {h[so], h[so + 1], h[0], h[1], 0};
    ptrdiff_t fl = jt808_encode_frame(0x0001, d->id, d->serial, body, sizeof body, ans, cap);
    if (fl <= 0)
        return 0;
    d->serial++;
    return (size_t)fl;
}

static bool printable(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] < 0x20 || p[i] > 0x7E)
            return false;
    return true;
}

static void handle_command(struct device *d, const uint8_t *f, size_t len)
{
    struct sim *s = d->sim;
    uint8_t ans[128];
    size_t alen = d->jt808 ? answer_jt808(d, f, len, ans, sizeof ans)
                           : f[0] == '(' ? answer_jt600(d, f, len, ans, sizeof ans) : 0;
    if (alen)
        send_bytes(d, ans, alen);
    bool binary = !printable(f, len);
    if (!alen) {
        char shown[2 * 64 + 1];
        if (binary)
            st_hex_encode(f, len > 64 ? 64 : len, shown, sizeof shown);
        else
            snprintf(shown, sizeof shown, "%.*s", (int)(len > 128 ? 128 : len), (const char *)f);
        fprintf(stderr, "sim: device %s: command %s not known, not answered\n", d->id, shown);
    }
    if (s->n_cmds == s->cap_cmds) {
        s->cap_cmds = s->cap_cmds ? s->cap_cmds * 2 : 16;
        s->cmds = st_realloc(s->cmds, s->cap_cmds * sizeof *s->cmds);
    }
    struct sim_command *c = &s->cmds[s->n_cmds++];
    c->device = d->index;
    c->binary = binary;
    c->answered = alen > 0;
    c->len = len;
    c->alen = alen;
    c->bytes = st_malloc(len + alen);
    memcpy(c->bytes, f, len);
    memcpy(c->bytes + len, ans, alen);
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
        const uint8_t *f = d->rx.data + off;
        if (is_reply(d, f, (size_t)fl))
            handle_reply(d, f, (size_t)fl);
        else
            handle_command(d, f, (size_t)fl);
        off += (size_t)fl;
    }
    buf_consume(&d->rx, off);
    /* --interval-ms paces the device: the next frame waits that long after a reply. */
    if (d->sim->o->interval_ms > 0 && !d->failed && !d->hold_started) {
        if (!uv_is_active((uv_handle_t *)&d->pause))
            uv_timer_start(&d->pause, on_pause, (uint64_t)d->sim->o->interval_ms, 0);
    } else {
        pump(d);
    }
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

/* ---- options ------------------------------------------------------------------- */

/* Refuse scripted events a device's protocol cannot carry: each is encoded as the device
 * would send it and decoded back by the server's own decoder, which must find it. */
static int check_events(const struct device *d)
{
    const struct sim_opts *o = d->sim->o;
    const struct proto_ops *p = d->jt808 ? &proto_jt808 : &proto_jt600;
    for (int i = 0; i < o->n_events; i++) {
        const struct sim_event *ev = &o->events[i];
        const struct event_kind *k = &event_kinds[ev->kind];
        struct report r, got;
        struct proto_reply reply;
        struct proto_ctx ctx = {0};
        uint8_t body[HELD_MAX], frame[FRAME_MAX];
        size_t n_got = 0;
        base_report(d, ev->index, &r);
        add_event(&r, k, ev->card);
        ptrdiff_t n = encode_report(d->jt808, &r, 0, d->jt808 ? body : frame,
                                    d->jt808 ? sizeof body : sizeof frame);
        if (n > 0 && d->jt808)
            n = jt808_encode_frame(0x0200, d->id, 0, body, (size_t)n, frame, sizeof frame);
        bool found = false;
        if (n > 0 && p->decode(&ctx, frame, (size_t)n, &got, 1, &n_got, &reply) == 0 && n_got)
            for (int j = 0; j < got.n_events; j++)
                if (got.events[j].type == k->type)
                    found = true;
        if (!found) {
            fprintf(stderr, "sim: --events %d:%s: a %s cannot report %s\n", ev->index, k->name,
                    d->jt808 ? "JT709A (jt808)" : "JT701D (jt600)", k->name);
            return ST_EUNSUPPORTED;
        }
    }
    return 0;
}

static void print_summary(const struct sim *s, double elapsed, int failed)
{
    const struct sim_opts *o = s->o;
    double p50 = s->n_lat ? (double)s->lat[s->n_lat / 2] / 1000.0 : 0;
    double p99 = s->n_lat ? (double)s->lat[(s->n_lat * 99) / 100] / 1000.0 : 0;
    double max = s->n_lat ? (double)s->lat[s->n_lat - 1] / 1000.0 : 0;
    struct buf cmds = {0};
    struct jsonw w;
    jsonw_init(&w, &cmds);
    jsonw_arr_begin(&w);
    for (size_t i = 0; i < s->n_cmds; i++) {
        const struct sim_command *c = &s->cmds[i];
        size_t cap = 2 * (c->len > c->alen ? c->len : c->alen) + 1;
        char *hex = st_malloc(cap);
        jsonw_obj_begin(&w);
        jsonw_key(&w, "device");
        jsonw_str(&w, s->devs[c->device].id);
        for (int part = 0; part < 1 + c->answered; part++) {
            const uint8_t *b = part ? c->bytes + c->len : c->bytes;
            size_t n = part ? c->alen : c->len;
            if (part) {
                jsonw_key(&w, "answered");
                jsonw_bool(&w, true);
            }
            jsonw_key(&w, part ? "answer" : c->binary ? "hex" : "text");
            if (c->binary)
                jsonw_strn(&w, hex, st_hex_encode(b, n, hex, cap));
            else
                jsonw_strn(&w, (const char *)b, n);
        }
        if (!c->answered) {
            jsonw_key(&w, "answered");
            jsonw_bool(&w, false);
        }
        jsonw_obj_end(&w);
        st_free(hex);
    }
    jsonw_arr_end(&w);
    printf("{\"protocol\":\"%s\",\"transport\":\"%s\",\"devices\":%d,\"devices_failed\":%d,"
           "\"frames_sent\":%" PRIu64 ",\"replies_ok\":%" PRIu64 ",\"replies_missing\":%" PRIu64
           ",\"replies_wrong\":%" PRIu64 ",\"elapsed_s\":%.3f,\"replies_per_s\":%.0f,"
           "\"latency_ms_p50\":%.3f,\"latency_ms_p99\":%.3f,\"latency_ms_max\":%.3f,"
           "\"commands\":%.*s}\n",
           o->protocol, o->udp ? "udp" : "tcp", o->devices, failed, s->sent, s->ok, s->missing,
           s->wrong, elapsed, elapsed > 0 ? (double)s->ok / elapsed : 0, p50, p99, max,
           (int)cmds.len, (const char *)cmds.data);
    buf_free(&cmds);
}

int sim_run(const struct sim_opts *o)
{
    struct sim s = {0};
    int rc = 2;
    s.o = o;
    bool mixed = strcmp(o->protocol, "mixed") == 0;
    int n_late = o->late_to > o->late_from ? o->late_to - o->late_from : 0;
    s.loop = uv_default_loop();
    if (uv_ip4_addr(o->host, o->port, (struct sockaddr_in *)&s.addr) &&
        uv_ip6_addr(o->host, o->port, (struct sockaddr_in6 *)&s.addr)) {
        fprintf(stderr, "sim: '%s' is not an IP address\n", o->host);
        return 2;
    }
    s.devs = st_calloc((size_t)o->devices, sizeof *s.devs);
    for (int i = 0; i < o->devices; i++) {
        struct device *d = &s.devs[i];
        d->sim = &s;
        d->index = i;
        /* mixed: every other device is a JT701D, each kind numbered from its own base */
        d->jt808 = mixed ? i % 2 == 0 : strcmp(o->protocol, "jt808") == 0;
        int64_t id = mixed ? (d->jt808 ? SIM_JT808_ID_BASE : SIM_JT600_ID_BASE) + i / 2
                           : o->id_base + i;
        snprintf(d->id, sizeof d->id, d->jt808 ? "%012" PRId64 : "%010" PRId64, id);
        d->steps = o->reports + (d->jt808 ? 4 + (n_late + LATE_BATCH - 1) / LATE_BATCH
                                          : 2 + n_late);
        d->lock = REPORT_LOCK_UNLOCKED; /* scripted runs: the rope is out until a lock event */
        snprintf(d->password, sizeof d->password, "%s", o->lock_password ? o->lock_password : "");
        if (n_late)
            d->held = st_calloc((size_t)n_late, sizeof *d->held);
        if (i < 2 && check_events(d))
            goto out;
    }
    if (o->record && !(s.record = fopen(o->record, "w"))) {
        fprintf(stderr, "sim: cannot write %s\n", o->record);
        goto out;
    }
    s.start_ms = uv_now(s.loop);
    uv_timer_init(s.loop, &s.watchdog);
    s.watchdog.data = &s;
    uv_timer_start(&s.watchdog, on_watchdog, 100, 100);
    for (int i = 0; i < o->devices; i++) {
        struct device *d = &s.devs[i];
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
            int crc = uv_tcp_connect(&d->connect_req, &d->h.tcp, (const struct sockaddr *)&s.addr,
                                     on_connect);
            if (crc < 0) {
                fprintf(stderr, "sim: device %s: cannot connect: %s\n", d->id, uv_strerror(crc));
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
    if (s.n_lat)
        qsort(s.lat, s.n_lat, sizeof *s.lat, cmp_u64);
    print_summary(&s, elapsed, failed);
    rc = failed || s.missing || s.wrong ? 1 : 0;
out:
    if (s.record)
        fclose(s.record);
    for (int i = 0; i < o->devices; i++) {
        buf_free(&s.devs[i].rx);
        st_free(s.devs[i].held);
    }
    for (size_t i = 0; i < s.n_cmds; i++)
        st_free(s.cmds[i].bytes);
    st_free(s.cmds);
    st_free(s.devs);
    st_free(s.lat);
    uv_loop_close(s.loop);
    return rc;
}

/* ---- option parsing -------------------------------------------------------------- */

/* One `lat,lon` (surrounding blanks allowed) into p; false when it is not one. */
static bool parse_point(const char *item, struct sim_point *p)
{
    char *end;
    p->lat = strtod(item, &end);
    if (end == item || *end != ',')
        return false;
    const char *lon = end + 1;
    p->lon = strtod(lon, &end);
    while (*end == ' ' || *end == '\t' || *end == '\r')
        end++;
    return end != lon && *end == '\0' && isfinite(p->lat) && isfinite(p->lon) &&
           fabs(p->lat) <= 90 && fabs(p->lon) <= 180;
}

/* Points of `text` separated by `sep`; blank items are skipped. */
static int parse_points(const char *text, char sep, const char *what, struct sim_point **out,
                        int *n)
{
    size_t cap = 0;
    int count = 0;
    struct sim_point *pts = NULL;
    for (const char *p = text; *p;) {
        const char *e = strchr(p, sep);
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (strspn(p, " \t\r") < len) {
            char item[64];
            if ((size_t)count == cap) {
                cap = cap ? cap * 2 : 64;
                pts = st_realloc(pts, cap * sizeof *pts);
            }
            if (len < sizeof item) {
                memcpy(item, p, len);
                item[len] = '\0';
            }
            if (len >= sizeof item || !parse_point(item, &pts[count])) {
                fprintf(stderr, "sealtrack sim: --route: point %d of %s, '%.*s', is not 'lat,lon' "
                                "in degrees\n", count + 1, what, (int)(len > 60 ? 60 : len), p);
                st_free(pts);
                return ST_EMALFORMED;
            }
            count++;
        }
        p += len + (e ? 1 : 0);
    }
    if (count == 0) {
        fprintf(stderr, "sealtrack sim: --route: %s has no point\n", what);
        st_free(pts);
        return ST_EMALFORMED;
    }
    *out = pts;
    *n = count;
    return 0;
}

int sim_parse_route(const char *spec, struct sim_point **out, int *n)
{
    if (spec[0] != '@')
        return parse_points(spec, ';', "the list", out, n);
    FILE *f = fopen(spec + 1, "r");
    if (!f) {
        fprintf(stderr, "sealtrack sim: --route: cannot read %s\n", spec + 1);
        return ST_EIO;
    }
    struct buf text = {0};
    char chunk[4096];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0)
        buf_append(&text, chunk, got);
    int rc = ferror(f) ? ST_EIO : 0;
    fclose(f);
    buf_append(&text, "", 1);
    if (rc < 0 || strlen((const char *)text.data) != text.len - 1) {
        fprintf(stderr, "sealtrack sim: --route: cannot read %s as text\n", spec + 1);
        rc = rc < 0 ? rc : ST_EMALFORMED;
    } else {
        rc = parse_points((const char *)text.data, '\n', spec + 1, out, n);
    }
    buf_free(&text);
    return rc;
}

static int cmp_event(const void *a, const void *b)
{
    int x = ((const struct sim_event *)a)->index, y = ((const struct sim_event *)b)->index;
    return x < y ? -1 : x > y;
}

/* One `i:kind[:arg]` into ev; false when it is not one. */
static bool parse_event(char *item, struct sim_event *ev)
{
    char *end, *name = strchr(item, ':');
    long i = strtol(item, &end, 10);
    if (!name || end != name || end == item || i < 0 || i > 100000000)
        return false;
    *name++ = '\0';
    char *arg = strchr(name, ':');
    if (arg)
        *arg++ = '\0';
    ev->index = (int)i;
    for (ev->kind = 0; ev->kind < N_EVENT_KINDS; ev->kind++) {
        const struct event_kind *k = &event_kinds[ev->kind];
        if (strcmp(name, k->name))
            continue;
        if (!k->card)
            return !arg;
        size_t n = arg ? strlen(arg) : 0;
        if (n == 0 || n > 10 || strspn(arg, "0123456789") != n)
            return false;
        snprintf(ev->card, sizeof ev->card, "%s", arg);
        return true;
    }
    return false;
}

int sim_parse_events(const char *spec, struct sim_event **out, int *n)
{
    int count = 0, cap = 0;
    struct sim_event *evs = NULL;
    for (const char *p = spec; *p;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        char item[64];
        if (count == cap) {
            cap = cap ? cap * 2 : 16;
            evs = st_realloc(evs, (size_t)cap * sizeof *evs);
        }
        memset(&evs[count], 0, sizeof evs[count]);
        if (len < sizeof item) {
            memcpy(item, p, len);
            item[len] = '\0';
        }
        if (len >= sizeof item || !parse_event(item, &evs[count])) {
            fprintf(stderr, "sealtrack sim: --events: '%.*s' is not i:kind (kinds: lock, "
                            "unlock_rfid:<card digits>, unlock_remote, unlock_dynamic, tamper, "
                            "wrong_password, low_battery)\n", (int)(len > 60 ? 60 : len), p);
            st_free(evs);
            return ST_EMALFORMED;
        }
        count++;
        p += len + (e ? 1 : 0);
    }
    if (count > 1)
        qsort(evs, (size_t)count, sizeof *evs, cmp_event);
    for (int i = 1; i < count; i++) {
        if (evs[i].index == evs[i - 1].index) {
            fprintf(stderr, "sealtrack sim: --events: two events at report %d (one per report)\n",
                    evs[i].index);
            st_free(evs);
            return ST_EMALFORMED;
        }
    }
    *out = evs;
    *n = count;
    return 0;
}
