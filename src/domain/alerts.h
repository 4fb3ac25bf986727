/* alerts.h — alert rules: which facts of which devices, groups or shipments an
 * organisation wants to hear about, and where (a webhook, the live stream).
 *
 * Matching runs on the writer thread inside the transaction that stores the fact:
 * each match becomes an alerts row and, when the rule names a webhook, a pending
 * webhook_deliveries row that webhook.h sends after commit. Ingestion therefore
 * never waits for a webhook, and a dead webhook only holds its own deliveries.
 * Rules live in memory, re-read when the API changes them (alerts_rules_changed).
 */
#ifndef ST_ALERTS_H
#define ST_ALERTS_H

#include <sqlite3.h>
#include <stdint.h>

#include "../core/buf.h"
#include "domain.h"

struct alerts;

/** Load every enabled rule from db (the writer's connection). 0 or ST_EIO. */
int alerts_open(sqlite3 *db, struct alerts **out);
void alerts_free(struct alerts *a);

/** Rules were edited elsewhere: re-read them before the next match. Any thread. */
void alerts_rules_changed(struct alerts *a);

/** A fact happened (in the caller's open transaction): store an alert per matching rule;
 *  rules with stream on append one Server-Sent Event per alert to live (when not NULL):
 *  "event: alert\ndata: {…}\n\n". Returns the number of alerts stored, or ST_EIO. */
int alerts_on_event(struct alerts *a, sqlite3 *db, const struct domain_event *e,
                    struct buf *live);

/** A stored position (e->type "position"; speed, battery set): threshold rules
 *  (overspeed above speed_kmh, low_battery at or below battery_pct) fire once per excursion
 *  (the device must come back under the threshold before the next one). Same results. */
int alerts_on_position(struct alerts *a, sqlite3 *db, const struct domain_event *e,
                       struct buf *live);

/** Offline rules: devices whose device_state.last_seen is older than the rule's
 *  offline_minutes get one device_offline alert per silence (called every few seconds
 *  by the writer, in its own transaction). Each streamed alert's SSE text goes to live
 *  (when not NULL) with its organisation and device. Same results. */
int alerts_offline_pass(struct alerts *a, sqlite3 *db, int64_t now_ms, domain_live_fn *live,
                        void *live_arg);

#endif
