/* report_json.h — the JSON form of a report, shared by `sealtrack decode`, the
 * database columns (attrs, event detail) and later the API. */
#ifndef ST_REPORT_JSON_H
#define ST_REPORT_JSON_H

#include "../core/jsonw.h"
#include "report.h"

/** The whole report as one object: protocol, device_id, time, lat, lon, speed_kmh,
 *  course, valid, fix, battery_pct, lock, events, attrs, … (docs/protocols.md). */
void report_json_write(struct jsonw *w, const struct report *r);
/** The attribute bag as an object. */
void report_json_attrs(struct jsonw *w, const struct report *r);
/** One event as an object (type and its detail). */
void report_json_event(struct jsonw *w, const struct report_event *e);

#endif
