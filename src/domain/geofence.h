/* geofence.h — geofences as stored (the geofences table) and their evaluation.
 *
 * Reading a fence: geofence_read turns a row into geometry (geo.h) for the API's
 * checks (unlock zones) and the engine. The engine runs on the store's writer thread,
 * inside each batch's transaction: it keeps every organisation's fences in one
 * spatial index and, per device, the state of the fences it is in, and turns each
 * stored fix into enter/exit events (events rows, source 'server').
 *
 * Order: fixes are evaluated in fix-time order per device, not arrival order. A
 * device's state is that after its latest fix (its watermark); a batch holding an
 * older fix (history uploaded late) replays the device's stored fixes from the one
 * before it, and the events of that span are corrected (missing ones added, marked
 * late; ones that history proves false removed). Dwell: a side (inside/outside) must
 * hold for dwell_s of fix time before the event fires.
 */
#ifndef ST_GEOFENCE_H
#define ST_GEOFENCE_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#include "../core/buf.h"
#include "../model/report.h"
#include "domain.h"
#include "geo.h"

/** A fence read from the database; owns its points. */
struct geofence_def {
    int64_t id, org_id;
    char name[129];          /* the API allows 128 bytes */
    char kind[16];           /* allowed, forbidden, control_point */
    int dwell_s;
    struct geo_fence geo;    /* geo.pts points into pts */
    struct geo_point *pts;
};

/** Columns geofence_read expects, in order, from geofences. */
#define GEOFENCE_COLUMNS "id, org_id, name, kind, shape, points, radius_m, dwell_s"

/** Fill d from a row of GEOFENCE_COLUMNS starting at column col. 0 or ST_EMALFORMED. */
int geofence_read(sqlite3_stmt *st, int col, struct geofence_def *d);
void geofence_def_free(struct geofence_def *d);

/** Load fence id of organisation org (any org when org is 0). 0, ST_ENOTFOUND, ST_EIO. */
int geofence_load(sqlite3 *db, int64_t id, int64_t org, struct geofence_def *d);

/** Parse a points JSON text ([[lat, lon], ...]) into a new array (*out, *n). 0 or
 *  ST_EMALFORMED. */
int geofence_points_parse(const char *json, struct geo_point **out, size_t *n);

/* ---- the engine (writer thread) ------------------------------------------ */

struct geofence_engine;

int geofence_engine_open(sqlite3 *db, struct geofence_engine **out);
void geofence_engine_free(struct geofence_engine *g);

/** Re-read fences and targets at the next batch (after API edits). */
void geofence_engine_reload(struct geofence_engine *g);

/** Start a batch (in the writer's open transaction). */
int geofence_batch_begin(struct geofence_engine *g);

/** A stored fix of a device in this batch. group: the device's group (NULL none). */
void geofence_note_fix(struct geofence_engine *g, int64_t org_id, int64_t device_id,
                       const char *device_uid, const char *group, int64_t fix_time,
                       int64_t position_id, double lat, double lon);

/** Evaluate the batch's fixes (in fix-time order per device), store the events and the
 *  state, and call fn for each event stored. 0 or ST_EIO. */
int geofence_batch_end(struct geofence_engine *g, domain_event_fn *fn, void *arg);

/** Fences in the index (for logs and the benchmark). */
size_t geofence_engine_size(const struct geofence_engine *g);

#endif
