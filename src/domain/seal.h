/* seal.h — a seal's state (sealed / unsealed / violated) and the custody facts of its
 * open shipment, driven by the lock, unlock and tamper events devices report.
 *
 * Writer thread, inside the batch transaction. lock → sealed, unlock → unsealed,
 * tamper → violated; violated holds until a new shipment starts (a cut rope that is
 * re-inserted is still a broken seal). An unlock is checked against the shipment's
 * authorised unlock zones and cards: outside every zone → an "unlock_outside_zone"
 * fact, a card not on the list → "unknown_card" (both for the alert rules, and
 * recorded in the custody entry's detail).
 */
#ifndef ST_SEAL_H
#define ST_SEAL_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#include "domain.h"

struct seal_engine;

int seal_engine_open(sqlite3 *db, struct seal_engine **out);
void seal_engine_free(struct seal_engine *s);

/** Shipments were opened or closed elsewhere: forget the cached ones (writer thread). */
void seal_engine_reload(struct seal_engine *s);

/** The device's open shipment (0 none), cached. 0 or ST_EIO. */
int seal_shipment_of(struct seal_engine *s, int64_t device_id, int64_t *shipment_id);

/** A device event was stored (e->type its events.type name, e->shipment_id set): move the
 *  seal state, append the custody fact, and pass derived facts to fn. 0 or ST_EIO. */
int seal_on_event(struct seal_engine *s, const struct domain_event *e, domain_event_fn *fn,
                  void *arg);

/** A report's lock status: the first one known sets the state of a device without one. */
int seal_on_lock_status(struct seal_engine *s, int64_t device_id, bool locked, int64_t time);

/** Seal state names. */
#define SEAL_SEALED "sealed"
#define SEAL_UNSEALED "unsealed"
#define SEAL_VIOLATED "violated"

#endif
