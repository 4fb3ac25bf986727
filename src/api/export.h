/* export.h — positions and events as JSON, CSV, GPX and GeoJSON, and the
 * route / trips / stops / events-summary reports computed from positions.
 * Pure code: rows in, bytes appended to a struct buf out; no I/O. */
#ifndef ST_EXPORT_H
#define ST_EXPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/buf.h"

/** One stored position (a row of the positions table). Missing numbers are NaN
 *  (doubles) or -1 (satellites, battery_pct); missing strings NULL. */
struct export_position {
    int64_t id;
    const char *device_uid;
    int64_t fix_time, recv_time;   /* seconds UTC */
    bool valid;
    double lat, lon, altitude, speed_kmh, course;
    int satellites, battery_pct;
    const char *protocol, *fix, *lock_state;
    const char *attrs;             /* JSON object text or NULL */
};

/** One stored event (a row of the events table). */
struct export_event {
    int64_t id;
    const char *device_uid;
    int64_t time, recv_time;       /* seconds UTC */
    const char *type, *source, *card, *reason; /* NULL when absent */
    int granted;                   /* -1 unknown, 0, 1 */
    double lat, lon;               /* NaN when absent */
};

enum export_format { EXPORT_JSON, EXPORT_CSV, EXPORT_GPX, EXPORT_GEOJSON };

/** "json" / "csv" / "gpx" / "geojson" → format; -1 when unknown. */
int export_format_parse(const char *name);
/** MIME type of a format ("text/csv; charset=utf-8", "application/gpx+xml", ...). */
const char *export_content_type(int format);

/** Write positions in a format. JSON: {"positions":[...],"next":<cursor>|null};
 *  CSV: a header line then one line per row (RFC 4180 quoting, ISO 8601 UTC
 *  times); GPX 1.1: one <trk> per device, invalid fixes left out, XML escaped;
 *  GeoJSON: a FeatureCollection of Point features with the fields as properties.
 *  next_cursor < 0 = no further page (only JSON carries it in the body). */
void export_positions(struct buf *out, int format, const struct export_position *rows, size_t n,
                      int64_t next_cursor);
/** Same for events (GPX: waypoints for events that have a position). */
void export_events(struct buf *out, int format, const struct export_event *rows, size_t n,
                   int64_t next_cursor);

/** Thresholds of the trips and stops report. */
struct trips_opts {
    double stop_speed_kmh;   /* at or below: not moving (default 3) */
    int64_t min_stop_s;      /* a stop lasts at least this long (default 300) */
    double min_trip_m;       /* shorter movements are not trips (default 200) */
};
void trips_opts_defaults(struct trips_opts *o);

struct trip {
    int64_t start_time, end_time;
    double start_lat, start_lon, end_lat, end_lon;
    double distance_m, max_speed_kmh, avg_speed_kmh;
    size_t first, last;      /* row indexes */
};
struct stop {
    int64_t start_time, end_time;
    double lat, lon;
    size_t first, last;
};

/** Split a device's positions (fix time order; invalid fixes ignored) into
 *  trips and stops. Caller frees *trips and *stops with st_free. */
void trips_detect(const struct export_position *rows, size_t n, const struct trips_opts *o,
                  struct trip **trips, size_t *n_trips, struct stop **stops, size_t *n_stops);

/** Write trips / stops in a format (JSON {"trips":[...]}, CSV, GPX (a track
 *  per trip / waypoints per stop), GeoJSON (LineString per trip / Point per stop)). */
void export_trips(struct buf *out, int format, const char *device_uid,
                  const struct export_position *rows, const struct trip *trips, size_t n);
void export_stops(struct buf *out, int format, const char *device_uid, const struct stop *stops,
                  size_t n);

/** Great-circle distance in metres (haversine, mean Earth radius 6371008.8 m). */
double export_distance_m(double lat1, double lon1, double lat2, double lon2);

/** One CSV field (RFC 4180: quoted when it holds a comma, quote, CR or LF; quotes doubled;
 *  NULL is an empty field), preceded by a comma unless first. */
void export_csv_field(struct buf *out, bool first, const char *s);

#endif
