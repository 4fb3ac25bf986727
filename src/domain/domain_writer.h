/* domain_writer.h — the seal-operations work of the store's writer thread: what every
 * stored report, and every batch, means for seals, geofences, commands and alerts.
 * Everything runs inside the writer's open transaction, so it commits (or rolls back)
 * with the reports it comes from.
 */
#ifndef ST_DOMAIN_WRITER_H
#define ST_DOMAIN_WRITER_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#include "../core/buf.h"
#include "../model/report.h"
#include "domain.h"

struct domain_writer;

struct domain_device {
    int64_t id, org_id;
    const char *uid;
    const char *group; /* NULL none */
};

int domain_writer_open(sqlite3 *db, struct domain_writer **out);
void domain_writer_free(struct domain_writer *w);

/** Fences, shipments or rules changed (the API told the store): re-read them before the next
 *  batch. Writer thread. */
void domain_writer_changed(struct domain_writer *w);

/** Start a batch (in the open transaction). */
int domain_writer_begin(struct domain_writer *w);

/** A report was stored: fix_time as stored, pos_id its positions row (0 none), event_ids
 *  the events rows of r->events. Alert text for the live stream is appended to live when
 *  not NULL. 0 or ST_EIO. */
int domain_writer_report(struct domain_writer *w, const struct domain_device *dev,
                         const struct report *r, int64_t fix_time, int64_t pos_id,
                         const int64_t *event_ids, struct buf *live);

/** The batch's reports are stored: evaluate geofences. live_fn may be NULL. */
int domain_writer_end(struct domain_writer *w, domain_live_fn *live_fn, void *arg);

/** Periodic work in its own transaction (the caller's): offline alerts, command expiry.
 *  live_fn may be NULL. */
int domain_writer_periodic(struct domain_writer *w, int64_t now_ms, domain_live_fn *live_fn,
                           void *arg);

/** Alerts were stored since the last call (webhook deliveries may be due). */
bool domain_writer_take_alerts(struct domain_writer *w);

#endif
