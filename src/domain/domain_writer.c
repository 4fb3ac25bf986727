/* domain_writer.c — glue between the writer's batch and the domain engines
 * (domain_writer.h): builds each fact once and hands it to seal state, custody,
 * geofences, command answers and the alert rules. */
#include "domain_writer.h"

#include <string.h>

#include "../core/err.h"
#include "../core/mem.h"
#include "../core/timeutil.h"
#include "alerts.h"
#include "commands.h"
#include "geofence.h"
#include "seal.h"

struct domain_writer {
    sqlite3 *db;
    struct geofence_engine *fences;
    struct seal_engine *seals;
    struct alerts *alerts;
    bool alerts_stored;
    struct buf live;          /* alert text of the fact being handled */
};

int domain_writer_open(sqlite3 *db, struct domain_writer **out)
{
    struct domain_writer *w = st_calloc(1, sizeof *w);
    w->db = db;
    if (geofence_engine_open(db, &w->fences) || seal_engine_open(db, &w->seals) ||
        alerts_open(db, &w->alerts)) {
        domain_writer_free(w);
        return ST_EIO;
    }
    *out = w;
    return 0;
}

void domain_writer_free(struct domain_writer *w)
{
    if (!w)
        return;
    geofence_engine_free(w->fences);
    seal_engine_free(w->seals);
    alerts_free(w->alerts);
    buf_free(&w->live);
    st_free(w);
}

void domain_writer_changed(struct domain_writer *w)
{
    geofence_engine_reload(w->fences);
    seal_engine_reload(w->seals);
    alerts_rules_changed(w->alerts);
}

int domain_writer_begin(struct domain_writer *w)
{
    return geofence_batch_begin(w->fences);
}

struct alert_sink {
    struct domain_writer *w;
    struct buf *live;
};

/* Every fact goes to the alert rules. */
static int to_alerts(void *arg, const struct domain_event *e)
{
    struct alert_sink *sink = arg;
    int n = alerts_on_event(sink->w->alerts, sink->w->db, e, sink->live);
    if (n < 0)
        return ST_EIO;
    sink->w->alerts_stored |= n > 0;
    return 0;
}

/* A fact of a device event: seal state and custody first (they may derive more facts),
 * then the rules. */
static int to_seal_and_alerts(void *arg, const struct domain_event *e)
{
    struct alert_sink *sink = arg;
    if (seal_on_event(sink->w->seals, e, to_alerts, sink))
        return ST_EIO;
    return to_alerts(arg, e);
}

int domain_writer_report(struct domain_writer *w, const struct domain_device *dev,
                         const struct report *r, int64_t fix_time, int64_t pos_id,
                         const int64_t *event_ids, struct buf *live)
{
    int64_t shipment = 0;
    if (seal_shipment_of(w->seals, dev->id, &shipment))
        return ST_EIO;
    struct alert_sink sink = {w, live};
    bool fix = pos_id && r->valid;
    struct domain_event e = {
        .org_id = dev->org_id,
        .device_id = dev->id,
        .device_uid = dev->uid,
        .group_name = dev->group,
        .shipment_id = shipment,
        .time = fix_time,
        .has_pos = fix,
        .lat = r->lat,
        .lon = r->lon,
        .speed_kmh = r->has_position ? r->speed_kmh : -1,
        .battery_pct = r->battery_pct,
        .granted = -1,
    };
    if (r->lock != REPORT_LOCK_UNKNOWN &&
        seal_on_lock_status(w->seals, dev->id, r->lock == REPORT_LOCK_LOCKED, fix_time))
        return ST_EIO;
    for (int i = 0; i < r->n_events; i++) {
        const struct report_event *re = &r->events[i];
        struct domain_event ev = e;
        ev.type = report_event_name(re->type);
        ev.event_id = event_ids[i];
        ev.source = re->source ? report_source_name(re->source) : NULL;
        ev.card = re->card[0] ? re->card : NULL;
        ev.reason = re->reason[0] ? re->reason : NULL;
        ev.granted = re->granted;
        if (to_seal_and_alerts(&sink, &ev))
            return ST_EIO;
    }
    if (fix) {
        geofence_note_fix(w->fences, dev->org_id, dev->id, dev->uid, dev->group, fix_time, pos_id,
                          r->lat, r->lon);
        e.type = "position";
        int n = alerts_on_position(w->alerts, w->db, &e, live);
        if (n < 0)
            return ST_EIO;
        w->alerts_stored |= n > 0;
    }
    struct domain_event answer = {0};
    int matched = commands_on_answer(w->db, dev->id, shipment, r, st_now(), &answer);
    if (matched < 0)
        return ST_EIO;
    if (matched && answer.type && to_alerts(&sink, &answer))
        return ST_EIO;
    return 0;
}

struct live_sink {
    struct domain_writer *w;
    domain_live_fn *fn;
    void *arg;
};

/* Alerts of facts that belong to no frame go out one fact at a time. */
static int to_alerts_live(void *arg, const struct domain_event *e)
{
    struct live_sink *ls = arg;
    ls->w->live.len = 0;
    struct alert_sink sink = {ls->w, ls->fn ? &ls->w->live : NULL};
    if (to_alerts(&sink, e))
        return ST_EIO;
    if (ls->fn && ls->w->live.len)
        ls->fn(ls->arg, e->org_id, e->device_id, (const char *)ls->w->live.data, ls->w->live.len);
    return 0;
}

int domain_writer_end(struct domain_writer *w, domain_live_fn *live_fn, void *arg)
{
    struct live_sink ls = {w, live_fn, arg};
    return geofence_batch_end(w->fences, to_alerts_live, &ls);
}

int domain_writer_periodic(struct domain_writer *w, int64_t now_ms, domain_live_fn *live_fn,
                           void *arg)
{
    if (commands_expire(w->db, now_ms / 1000) < 0)
        return ST_EIO;
    int n = alerts_offline_pass(w->alerts, w->db, now_ms, live_fn, arg);
    if (n < 0)
        return ST_EIO;
    w->alerts_stored |= n > 0;
    return 0;
}

bool domain_writer_take_alerts(struct domain_writer *w)
{
    bool any = w->alerts_stored;
    w->alerts_stored = false;
    return any;
}
