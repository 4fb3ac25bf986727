/* export.c — positions, events, trips and stops as JSON, CSV, GPX 1.1 and GeoJSON,
 * and the trip / stop segmentation behind the trips and stops reports.
 *
 * Each output format has one set of writers (JSON fields, CSV fields, XML text,
 * GPX points, GeoJSON features) shared by every export, so a fix to quoting or
 * escaping lands everywhere at once. Unknown formats are written as JSON (the
 * REST layer validates ?format= with export_format_parse before calling). */
#include "export.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "../core/jsonw.h"
#include "../core/mem.h"
#include "../core/timeutil.h"
#include "../core/utf8.h"

#define EARTH_RADIUS_M 6371008.8
#define DEG_TO_RAD (3.14159265358979323846 / 180.0)

/* Decimal places: 6 for degrees (~0.1 m), 2 for measures (altitude, speed, course),
 * 1 for distances in metres. */
#define COORD_DECIMALS 6
#define MEASURE_DECIMALS 2
#define DISTANCE_DECIMALS 1

/* A device with unknown speed that stays this close to a stop's first point is not moving. */
#define STILL_RADIUS_M 50.0

/* ------------------------------------------------------------------ formats */

static const struct {
    const char *name, *content_type;
} format_table[] = {
    [EXPORT_JSON] = {"json", "application/json"},
    [EXPORT_CSV] = {"csv", "text/csv; charset=utf-8"},
    [EXPORT_GPX] = {"gpx", "application/gpx+xml"},
    [EXPORT_GEOJSON] = {"geojson", "application/geo+json"},
};
#define FORMAT_COUNT ((int)(sizeof format_table / sizeof format_table[0]))

int export_format_parse(const char *name)
{
    if (!name)
        return -1;
    for (int f = 0; f < FORMAT_COUNT; f++)
        if (strcasecmp(name, format_table[f].name) == 0)
            return f;
    return -1;
}

const char *export_content_type(int format)
{
    if (format < 0 || format >= FORMAT_COUNT)
        return "application/octet-stream";
    return format_table[format].content_type;
}

/* ------------------------------------------------------------------ numbers */

double export_distance_m(double lat1, double lon1, double lat2, double lon2)
{
    double dlat = (lat2 - lat1) * DEG_TO_RAD, dlon = (lon2 - lon1) * DEG_TO_RAD;
    double s1 = sin(dlat / 2), s2 = sin(dlon / 2);
    double a = s1 * s1 + cos(lat1 * DEG_TO_RAD) * cos(lat2 * DEG_TO_RAD) * s2 * s2;
    if (a > 1.0) /* rounding near antipodes would make asin NaN */
        a = 1.0;
    return 2.0 * EARTH_RADIUS_M * asin(sqrt(a));
}

static bool has_position(double lat, double lon)
{
    return isfinite(lat) && isfinite(lon);
}

/* A position the maps and the trip detector can use. */
static bool position_usable(const struct export_position *p)
{
    return p->valid && has_position(p->lat, p->lon);
}

/* ------------------------------------------------------------------ JSON */

static void json_key_str(struct jsonw *w, const char *key, const char *s)
{
    jsonw_key(w, key);
    if (s)
        jsonw_str(w, s);
    else
        jsonw_null(w);
}

static void json_key_num(struct jsonw *w, const char *key, double v, int decimals)
{
    jsonw_key(w, key);
    jsonw_num(w, v, decimals); /* NaN → null */
}

static void json_key_int(struct jsonw *w, const char *key, int64_t v)
{
    jsonw_key(w, key);
    jsonw_int(w, v);
}

/* Counts stored as -1 when missing (satellites, battery). */
static void json_key_count(struct jsonw *w, const char *key, int v)
{
    jsonw_key(w, key);
    if (v >= 0)
        jsonw_int(w, v);
    else
        jsonw_null(w);
}

/* -1 unknown → null, 0 → false, anything else → true. */
static void json_key_tristate(struct jsonw *w, const char *key, int v)
{
    jsonw_key(w, key);
    if (v < 0)
        jsonw_null(w);
    else
        jsonw_bool(w, v != 0);
}

/* {"<list_key>":[ — the caller writes the items, then json_list_close. */
static void json_list_open(struct jsonw *w, const char *list_key)
{
    jsonw_obj_begin(w);
    jsonw_key(w, list_key);
    jsonw_arr_begin(w);
}

/* ],"next":cursor|null} */
static void json_list_close(struct jsonw *w, int64_t next_cursor)
{
    jsonw_arr_end(w);
    jsonw_key(w, "next");
    if (next_cursor >= 0)
        jsonw_int(w, next_cursor);
    else
        jsonw_null(w);
    jsonw_obj_end(w);
}

/* ------------------------------------------------------------------ GeoJSON */

static void geojson_open(struct jsonw *w)
{
    jsonw_obj_begin(w);
    json_key_str(w, "type", "FeatureCollection");
    jsonw_key(w, "features");
    jsonw_arr_begin(w);
}

static void geojson_close(struct jsonw *w)
{
    jsonw_arr_end(w);
    jsonw_obj_end(w);
}

/* One GeoJSON position: [lon, lat] (RFC 7946 order), plus altitude when known. */
static void geojson_coordinates(struct jsonw *w, double lat, double lon, double altitude)
{
    jsonw_arr_begin(w);
    jsonw_num(w, lon, COORD_DECIMALS);
    jsonw_num(w, lat, COORD_DECIMALS);
    if (isfinite(altitude))
        jsonw_num(w, altitude, MEASURE_DECIMALS);
    jsonw_arr_end(w);
}

/* {"type":"Feature","geometry":{"type":<type>,"coordinates": — the caller writes
 * the coordinates, then geojson_properties_open. */
static void geojson_feature_open(struct jsonw *w, const char *geometry_type)
{
    jsonw_obj_begin(w);
    json_key_str(w, "type", "Feature");
    jsonw_key(w, "geometry");
    jsonw_obj_begin(w);
    json_key_str(w, "type", geometry_type);
    jsonw_key(w, "coordinates");
}

/* },"properties":{ — the caller writes the properties, then geojson_feature_close. */
static void geojson_properties_open(struct jsonw *w)
{
    jsonw_obj_end(w);
    jsonw_key(w, "properties");
    jsonw_obj_begin(w);
}

static void geojson_feature_close(struct jsonw *w)
{
    jsonw_obj_end(w);
    jsonw_obj_end(w);
}

static void geojson_point_open(struct jsonw *w, double lat, double lon, double altitude)
{
    geojson_feature_open(w, "Point");
    geojson_coordinates(w, lat, lon, altitude);
    geojson_properties_open(w);
}

/* ------------------------------------------------------------------ CSV */

/* One CSV line being written; fields add their own separators. */
struct csv_line {
    struct buf *out;
    bool started;
};

static struct csv_line csv_line_start(struct buf *out)
{
    return (struct csv_line){.out = out, .started = false};
}

static void csv_separator(struct csv_line *l)
{
    if (l->started)
        buf_append(l->out, ",", 1);
    l->started = true;
}

void export_csv_field(struct buf *out, bool first, const char *s)
{
    if (!first)
        buf_append(out, ",", 1);
    if (!s)
        return;
    size_t n = strlen(s);
    if (strcspn(s, ",\"\r\n") == n) {
        buf_append(out, s, n);
        return;
    }
    buf_append(out, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '"')
            continue;
        buf_append(out, s + run, i + 1 - run); /* up to and including the quote */
        buf_append(out, "\"", 1);
        run = i + 1;
    }
    buf_append(out, s + run, n - run);
    buf_append(out, "\"", 1);
}

static void csv_str(struct csv_line *l, const char *s)
{
    export_csv_field(l->out, !l->started, s);
    l->started = true;
}

static void csv_num(struct csv_line *l, double v, int decimals)
{
    char text[64];
    size_t n = jsonw_format_num(v, decimals, text, sizeof text);
    csv_separator(l);
    buf_append(l->out, text, n); /* n = 0 (empty field) when missing */
}

static void csv_int(struct csv_line *l, int64_t v)
{
    csv_separator(l);
    buf_printf(l->out, "%lld", (long long)v);
}

/* Counts stored as -1 when missing. */
static void csv_count(struct csv_line *l, int v)
{
    if (v >= 0)
        csv_int(l, v);
    else
        csv_str(l, NULL);
}

static void csv_time(struct csv_line *l, int64_t t)
{
    char iso[ST_ISO_LEN];
    st_time_iso(t, iso);
    csv_str(l, iso);
}

static void csv_tristate(struct csv_line *l, int v)
{
    csv_str(l, v < 0 ? NULL : v ? "true" : "false");
}

static void csv_line_end(struct csv_line *l)
{
    buf_append(l->out, "\r\n", 2);
}

static void csv_header(struct buf *out, const char *columns)
{
    buf_append_str(out, columns);
    buf_append(out, "\r\n", 2);
}

/* ------------------------------------------------------------------ XML / GPX */

/* Escape the five XML specials. Control characters other than tab, LF and CR are
 * not allowed in XML 1.0 at all, so they are dropped instead of breaking the file;
 * bytes that are not UTF-8 (the document's encoding) become U+FFFD. */
static void xml_text(struct buf *out, const char *s)
{
    size_t run = 0, i = 0, n = strlen(s);
    for (; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *entity;
        if (c >= 0x80) {
            size_t len = st_utf8_valid_len((const unsigned char *)s + i, n - i);
            if (len) {
                i += len - 1;
                continue;
            }
            buf_append(out, s + run, i - run);
            buf_append_str(out, "\xef\xbf\xbd");
            run = i + 1;
            continue;
        }
        switch (c) {
        case '&': entity = "&amp;"; break;
        case '<': entity = "&lt;"; break;
        case '>': entity = "&gt;"; break;
        case '"': entity = "&quot;"; break;
        case '\'': entity = "&apos;"; break;
        default:
            if (c >= 0x20 || c == '\t' || c == '\n' || c == '\r')
                continue;
            entity = "";
        }
        buf_append(out, s + run, i - run);
        buf_append_str(out, entity);
        run = i + 1;
    }
    buf_append(out, s + run, i - run);
}

/* <tag>text</tag>; nothing for NULL. */
static void xml_element(struct buf *out, const char *tag, const char *text)
{
    if (!text)
        return;
    buf_printf(out, "<%s>", tag);
    xml_text(out, text);
    buf_printf(out, "</%s>", tag);
}

/* <tag>number</tag>; nothing for NaN. */
static void xml_number_element(struct buf *out, const char *tag, double v, int decimals)
{
    char text[64];
    if (jsonw_format_num(v, decimals, text, sizeof text) > 0)
        xml_element(out, tag, text);
}

/* Speed and course ride in Garmin's TrackPointExtension v2 (speed in m/s, course
 * in degrees): GPX 1.1 itself has no speed element, and this extension is the one
 * that common readers (Garmin, GPSBabel, QGIS via GDAL) understand. */
static void gpx_open(struct buf *out)
{
    buf_append_str(out,
                   "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                   "<gpx version=\"1.1\" creator=\"sealtrack\" "
                   "xmlns=\"http://www.topografix.com/GPX/1/1\" "
                   "xmlns:gpxtpx=\"http://www.garmin.com/xmlschemas/TrackPointExtension/v2\">\n");
}

static void gpx_close(struct buf *out)
{
    buf_append_str(out, "</gpx>\n");
}

static void gpx_track_open(struct buf *out, const char *name)
{
    buf_append_str(out, "<trk>");
    xml_element(out, "name", name);
    buf_append_str(out, "<trkseg>\n");
}

static void gpx_track_close(struct buf *out)
{
    buf_append_str(out, "</trkseg></trk>\n");
}

/* What a <wpt> or <trkpt> carries; NaN / NULL / -1 fields are left out. */
struct gpx_point {
    double lat, lon, altitude;
    int64_t time;
    const char *name, *desc;
    int satellites;
    double speed_kmh, course;
};

static void gpx_point(struct buf *out, const char *tag, const struct gpx_point *p)
{
    char lat[64], lon[64], iso[ST_ISO_LEN];
    jsonw_format_num(p->lat, COORD_DECIMALS, lat, sizeof lat);
    jsonw_format_num(p->lon, COORD_DECIMALS, lon, sizeof lon);
    buf_printf(out, "<%s lat=\"%s\" lon=\"%s\">", tag, lat, lon);
    /* Children in the order the GPX 1.1 schema's wptType requires. */
    xml_number_element(out, "ele", p->altitude, MEASURE_DECIMALS);
    st_time_iso(p->time, iso);
    xml_element(out, "time", iso);
    xml_element(out, "name", p->name);
    xml_element(out, "desc", p->desc);
    if (p->satellites >= 0)
        buf_printf(out, "<sat>%d</sat>", p->satellites);
    if (isfinite(p->speed_kmh) || isfinite(p->course)) {
        buf_append_str(out, "<extensions><gpxtpx:TrackPointExtension>");
        xml_number_element(out, "gpxtpx:speed", p->speed_kmh / 3.6, MEASURE_DECIMALS);
        xml_number_element(out, "gpxtpx:course", p->course, MEASURE_DECIMALS);
        buf_append_str(out, "</gpxtpx:TrackPointExtension></extensions>");
    }
    buf_printf(out, "</%s>\n", tag);
}

/* A stored position as a track point. */
static void gpx_position_point(struct buf *out, const struct export_position *p)
{
    struct gpx_point g = {.lat = p->lat,
                          .lon = p->lon,
                          .altitude = p->altitude,
                          .time = p->fix_time,
                          .satellites = p->satellites,
                          .speed_kmh = p->speed_kmh,
                          .course = p->course};
    gpx_point(out, "trkpt", &g);
}

/* A waypoint with only a place, a time, a name and a description. */
static void gpx_waypoint(struct buf *out, double lat, double lon, int64_t time, const char *name,
                         const char *desc)
{
    struct gpx_point g = {.lat = lat,
                          .lon = lon,
                          .altitude = NAN,
                          .time = time,
                          .name = name,
                          .desc = desc,
                          .satellites = -1,
                          .speed_kmh = NAN,
                          .course = NAN};
    gpx_point(out, "wpt", &g);
}

static bool same_device(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

/* ------------------------------------------------------------------ positions */

/* The fields of a position; with_coords = false for GeoJSON, whose geometry has them. */
static void json_position_fields(struct jsonw *w, const struct export_position *p, bool with_coords)
{
    json_key_int(w, "id", p->id);
    json_key_str(w, "device", p->device_uid);
    jsonw_key_time(w, "time", p->fix_time);
    jsonw_key_time(w, "recv_time", p->recv_time);
    jsonw_key(w, "valid");
    jsonw_bool(w, p->valid);
    if (with_coords) {
        json_key_num(w, "lat", p->lat, COORD_DECIMALS);
        json_key_num(w, "lon", p->lon, COORD_DECIMALS);
    }
    json_key_num(w, "altitude", p->altitude, MEASURE_DECIMALS);
    json_key_num(w, "speed_kmh", p->speed_kmh, MEASURE_DECIMALS);
    json_key_num(w, "course", p->course, MEASURE_DECIMALS);
    json_key_count(w, "satellites", p->satellites);
    json_key_count(w, "battery_pct", p->battery_pct);
    json_key_str(w, "protocol", p->protocol);
    json_key_str(w, "fix", p->fix);
    json_key_str(w, "lock_state", p->lock_state);
    jsonw_key(w, "attrs");
    if (p->attrs)
        jsonw_raw(w, p->attrs); /* stored by us as a JSON object: spliced as is */
    else
        jsonw_null(w);
}

static void csv_position_line(struct buf *out, const struct export_position *p)
{
    struct csv_line l = csv_line_start(out);
    csv_int(&l, p->id);
    csv_str(&l, p->device_uid);
    csv_time(&l, p->fix_time);
    csv_time(&l, p->recv_time);
    csv_str(&l, p->valid ? "true" : "false");
    csv_num(&l, p->lat, COORD_DECIMALS);
    csv_num(&l, p->lon, COORD_DECIMALS);
    csv_num(&l, p->altitude, MEASURE_DECIMALS);
    csv_num(&l, p->speed_kmh, MEASURE_DECIMALS);
    csv_num(&l, p->course, MEASURE_DECIMALS);
    csv_count(&l, p->satellites);
    csv_count(&l, p->battery_pct);
    csv_str(&l, p->protocol);
    csv_str(&l, p->fix);
    csv_str(&l, p->lock_state);
    csv_line_end(&l);
}

/* One <trk> per run of consecutive rows of the same device. */
static void gpx_positions(struct buf *out, const struct export_position *rows, size_t n)
{
    gpx_open(out);
    bool in_track = false;
    const char *track_device = NULL;
    for (size_t i = 0; i < n; i++) {
        const struct export_position *p = &rows[i];
        if (!position_usable(p))
            continue;
        if (in_track && !same_device(track_device, p->device_uid)) {
            gpx_track_close(out);
            in_track = false;
        }
        if (!in_track) {
            gpx_track_open(out, p->device_uid);
            track_device = p->device_uid;
            in_track = true;
        }
        gpx_position_point(out, p);
    }
    if (in_track)
        gpx_track_close(out);
    gpx_close(out);
}

void export_positions(struct buf *out, int format, const struct export_position *rows, size_t n,
                      int64_t next_cursor)
{
    struct jsonw w;
    jsonw_init(&w, out);
    switch (format) {
    case EXPORT_CSV:
        /* attrs (free-form JSON per protocol) has no fixed column set: JSON only. */
        csv_header(out, "id,device,time,recv_time,valid,lat,lon,altitude,speed_kmh,course,"
                        "satellites,battery_pct,protocol,fix,lock_state");
        for (size_t i = 0; i < n; i++)
            csv_position_line(out, &rows[i]);
        break;
    case EXPORT_GPX: gpx_positions(out, rows, n); break;
    case EXPORT_GEOJSON:
        geojson_open(&w);
        for (size_t i = 0; i < n; i++) {
            if (!has_position(rows[i].lat, rows[i].lon))
                continue;
            geojson_point_open(&w, rows[i].lat, rows[i].lon, rows[i].altitude);
            json_position_fields(&w, &rows[i], false);
            geojson_feature_close(&w);
        }
        geojson_close(&w);
        break;
    default:
        json_list_open(&w, "positions");
        for (size_t i = 0; i < n; i++) {
            jsonw_obj_begin(&w);
            json_position_fields(&w, &rows[i], true);
            jsonw_obj_end(&w);
        }
        json_list_close(&w, next_cursor);
    }
}

/* ------------------------------------------------------------------ events */

static void json_event_fields(struct jsonw *w, const struct export_event *e, bool with_coords)
{
    json_key_int(w, "id", e->id);
    json_key_str(w, "device", e->device_uid);
    jsonw_key_time(w, "time", e->time);
    jsonw_key_time(w, "recv_time", e->recv_time);
    json_key_str(w, "type", e->type);
    json_key_str(w, "source", e->source);
    json_key_str(w, "card", e->card);
    json_key_tristate(w, "granted", e->granted);
    json_key_str(w, "reason", e->reason);
    if (with_coords) {
        json_key_num(w, "lat", e->lat, COORD_DECIMALS);
        json_key_num(w, "lon", e->lon, COORD_DECIMALS);
    }
}

static void csv_event_line(struct buf *out, const struct export_event *e)
{
    struct csv_line l = csv_line_start(out);
    csv_int(&l, e->id);
    csv_str(&l, e->device_uid);
    csv_time(&l, e->time);
    csv_time(&l, e->recv_time);
    csv_str(&l, e->type);
    csv_str(&l, e->source);
    csv_str(&l, e->card);
    csv_tristate(&l, e->granted);
    csv_str(&l, e->reason);
    csv_num(&l, e->lat, COORD_DECIMALS);
    csv_num(&l, e->lon, COORD_DECIMALS);
    csv_line_end(&l);
}

void export_events(struct buf *out, int format, const struct export_event *rows, size_t n,
                   int64_t next_cursor)
{
    struct jsonw w;
    jsonw_init(&w, out);
    switch (format) {
    case EXPORT_CSV:
        csv_header(out, "id,device,time,recv_time,type,source,card,granted,reason,lat,lon");
        for (size_t i = 0; i < n; i++)
            csv_event_line(out, &rows[i]);
        break;
    case EXPORT_GPX:
        gpx_open(out);
        for (size_t i = 0; i < n; i++)
            if (has_position(rows[i].lat, rows[i].lon))
                gpx_waypoint(out, rows[i].lat, rows[i].lon, rows[i].time,
                             rows[i].type ? rows[i].type : "event", rows[i].device_uid);
        gpx_close(out);
        break;
    case EXPORT_GEOJSON:
        geojson_open(&w);
        for (size_t i = 0; i < n; i++) {
            if (!has_position(rows[i].lat, rows[i].lon))
                continue;
            geojson_point_open(&w, rows[i].lat, rows[i].lon, NAN);
            json_event_fields(&w, &rows[i], false);
            geojson_feature_close(&w);
        }
        geojson_close(&w);
        break;
    default:
        json_list_open(&w, "events");
        for (size_t i = 0; i < n; i++) {
            jsonw_obj_begin(&w);
            json_event_fields(&w, &rows[i], true);
            jsonw_obj_end(&w);
        }
        json_list_close(&w, next_cursor);
    }
}

/* ------------------------------------------------------------------ trips and stops */

void trips_opts_defaults(struct trips_opts *o)
{
    o->stop_speed_kmh = 3.0;
    o->min_stop_s = 300;
    o->min_trip_m = 200.0;
}

/* The usable positions, by row index, so the detector never looks at invalid fixes. */
struct fixes {
    const struct export_position *rows;
    size_t *at; /* row index of the k-th usable fix */
    size_t n;
};

static const struct export_position *fix_at(const struct fixes *f, size_t k)
{
    return &f->rows[f->at[k]];
}

static double fix_distance(const struct fixes *f, size_t a, size_t b)
{
    const struct export_position *p = fix_at(f, a), *q = fix_at(f, b);
    return export_distance_m(p->lat, p->lon, q->lat, q->lon);
}

/* A span of usable fixes [a, b] (indexes into fixes.at). */
struct span {
    size_t a, b;
};

/* Is fix k still part of the stationary run anchored at fix `anchor`? Near the
 * anchor it is, whatever its speed says (speed noise while parked); a reported
 * speed at or below the threshold also counts, unless the device has meanwhile
 * gone a trip's length away (sparse reports taken at different red lights). */
static bool fix_is_still(const struct fixes *f, size_t anchor, size_t k, const struct trips_opts *o)
{
    double d = fix_distance(f, anchor, k);
    if (d < STILL_RADIUS_M)
        return true;
    double speed = fix_at(f, k)->speed_kmh;
    return isfinite(speed) && speed <= o->stop_speed_kmh && d < fmax(STILL_RADIUS_M, o->min_trip_m);
}

static int64_t span_duration(const struct fixes *f, struct span s)
{
    return fix_at(f, s.b)->fix_time - fix_at(f, s.a)->fix_time;
}

/* Path length of the fixes [a, b]. */
static double path_length(const struct fixes *f, struct span s)
{
    double sum = 0;
    for (size_t k = s.a; k < s.b; k++)
        sum += fix_distance(f, k, k + 1);
    return sum;
}

/* A movement is a trip when its path is at least min_trip_m long and it takes the
 * device at least half that far from where it started: GPS jitter around a parked
 * device sums to kilometres over an hour but never gets far from the spot. */
static bool movement_is_trip(const struct fixes *f, struct span s, const struct trips_opts *o)
{
    if (s.b <= s.a || path_length(f, s) < o->min_trip_m)
        return false;
    double reach = 0;
    for (size_t k = s.a + 1; k <= s.b; k++)
        reach = fmax(reach, fix_distance(f, s.a, k));
    return reach >= o->min_trip_m / 2;
}

static struct trip make_trip(const struct fixes *f, struct span s)
{
    const struct export_position *p = fix_at(f, s.a), *q = fix_at(f, s.b);
    struct trip t = {.start_time = p->fix_time,
                     .end_time = q->fix_time,
                     .start_lat = p->lat,
                     .start_lon = p->lon,
                     .end_lat = q->lat,
                     .end_lon = q->lon,
                     .distance_m = path_length(f, s),
                     .max_speed_kmh = NAN,
                     .first = f->at[s.a],
                     .last = f->at[s.b]};
    for (size_t k = s.a; k <= s.b; k++) {
        double v = fix_at(f, k)->speed_kmh;
        if (isfinite(v) && !(v <= t.max_speed_kmh)) /* the first finite speed replaces NaN */
            t.max_speed_kmh = v;
    }
    int64_t duration = t.end_time - t.start_time;
    t.avg_speed_kmh = duration > 0 ? t.distance_m / (double)duration * 3.6 : 0.0;
    return t;
}

static struct stop make_stop(const struct fixes *f, struct span s)
{
    const struct export_position *p = fix_at(f, s.a);
    return (struct stop){.start_time = p->fix_time,
                         .end_time = fix_at(f, s.b)->fix_time,
                         .lat = p->lat,
                         .lon = p->lon,
                         .first = f->at[s.a],
                         .last = f->at[s.b]};
}

/* Stationary runs lasting at least min_stop_s (and longer than 0 s), greedily:
 * a run starts at an anchor fix and takes the following fixes while they are
 * still (fix_is_still); the fix that breaks a run anchors the next one. */
static size_t find_stationary_runs(const struct fixes *f, const struct trips_opts *o,
                                   struct span *runs)
{
    size_t count = 0, i = 0;
    while (i < f->n) {
        size_t j = i + 1;
        while (j < f->n && fix_is_still(f, i, j, o))
            j++;
        struct span run = {i, j - 1};
        int64_t duration = span_duration(f, run);
        if (duration > 0 && duration >= o->min_stop_s)
            runs[count++] = run;
        i = j;
    }
    return count;
}

void trips_detect(const struct export_position *rows, size_t n, const struct trips_opts *o,
                  struct trip **trips, size_t *n_trips, struct stop **stops, size_t *n_stops)
{
    /* Algorithm, over the valid fixes with coordinates only:
     *  1. stationary runs: from an anchor fix, take following fixes while they stay
     *     within 50 m of it, or report speed <= stop_speed_kmh without having gone
     *     min_trip_m away; runs lasting >= min_stop_s are candidate stops;
     *  2. the movement between two neighbouring candidates that is not a trip (see
     *     3) joins them into one stop (a GPS glitch must not split a parked hour);
     *  3. movements before the first stop, between stops and after the last one are
     *     trips when their path is >= min_trip_m and they get >= min_trip_m / 2 from
     *     their start (jitter never does). A trip starts at the fix ending a stop
     *     and ends at the fix starting the next, so the two share boundary fixes. */
    struct trips_opts defaults;
    if (!o) {
        trips_opts_defaults(&defaults);
        o = &defaults;
    }
    *trips = NULL;
    *stops = NULL;
    *n_trips = *n_stops = 0;

    struct fixes f = {.rows = rows, .at = st_calloc(n, sizeof *f.at), .n = 0};
    for (size_t i = 0; i < n; i++)
        if (position_usable(&rows[i]))
            f.at[f.n++] = i;
    if (f.n == 0) {
        st_free(f.at);
        return;
    }

    struct span *runs = st_calloc(f.n, sizeof *runs);
    size_t n_runs = find_stationary_runs(&f, o, runs);
    size_t kept = 0;
    for (size_t r = 0; r < n_runs; r++) {
        if (kept > 0 && !movement_is_trip(&f, (struct span){runs[kept - 1].b, runs[r].a}, o))
            runs[kept - 1].b = runs[r].b;
        else
            runs[kept++] = runs[r];
    }
    n_runs = kept;

    *stops = st_calloc(n_runs, sizeof **stops);
    *trips = st_calloc(n_runs + 1, sizeof **trips);
    size_t from = 0; /* where the current movement starts */
    for (size_t r = 0; r <= n_runs; r++) {
        struct span movement = {from, r < n_runs ? runs[r].a : f.n - 1};
        if (movement_is_trip(&f, movement, o))
            (*trips)[(*n_trips)++] = make_trip(&f, movement);
        if (r < n_runs) {
            (*stops)[(*n_stops)++] = make_stop(&f, runs[r]);
            from = runs[r].b;
        }
    }
    st_free(runs);
    st_free(f.at);
}

/* ------------------------------------------------------------------ trip / stop exports */

static void json_trip_fields(struct jsonw *w, const struct trip *t)
{
    jsonw_key_time(w, "start_time", t->start_time);
    jsonw_key_time(w, "end_time", t->end_time);
    json_key_int(w, "duration_s", t->end_time - t->start_time);
    json_key_num(w, "start_lat", t->start_lat, COORD_DECIMALS);
    json_key_num(w, "start_lon", t->start_lon, COORD_DECIMALS);
    json_key_num(w, "end_lat", t->end_lat, COORD_DECIMALS);
    json_key_num(w, "end_lon", t->end_lon, COORD_DECIMALS);
    json_key_num(w, "distance_m", t->distance_m, DISTANCE_DECIMALS);
    json_key_num(w, "max_speed_kmh", t->max_speed_kmh, MEASURE_DECIMALS);
    json_key_num(w, "avg_speed_kmh", t->avg_speed_kmh, MEASURE_DECIMALS);
}

static void json_stop_fields(struct jsonw *w, const struct stop *s, bool with_coords)
{
    jsonw_key_time(w, "start_time", s->start_time);
    jsonw_key_time(w, "end_time", s->end_time);
    json_key_int(w, "duration_s", s->end_time - s->start_time);
    if (with_coords) {
        json_key_num(w, "lat", s->lat, COORD_DECIMALS);
        json_key_num(w, "lon", s->lon, COORD_DECIMALS);
    }
}

/* {"device":uid,"<list_key>":[ — items follow, then json_report_close. */
static void json_report_open(struct jsonw *w, const char *device_uid, const char *list_key)
{
    jsonw_obj_begin(w);
    json_key_str(w, "device", device_uid);
    jsonw_key(w, list_key);
    jsonw_arr_begin(w);
}

static void json_report_close(struct jsonw *w)
{
    jsonw_arr_end(w);
    jsonw_obj_end(w);
}

/* The trip's route: its usable fixes, or just its ends when the rows are not given. */
static void geojson_trip_line(struct jsonw *w, const struct export_position *rows,
                              const struct trip *t)
{
    jsonw_arr_begin(w);
    if (rows) {
        for (size_t i = t->first; i <= t->last; i++)
            if (position_usable(&rows[i]))
                geojson_coordinates(w, rows[i].lat, rows[i].lon, NAN);
    } else {
        geojson_coordinates(w, t->start_lat, t->start_lon, NAN);
        geojson_coordinates(w, t->end_lat, t->end_lon, NAN);
    }
    jsonw_arr_end(w);
}

static void gpx_trip_track(struct buf *out, const struct export_position *rows,
                           const struct trip *t, size_t number)
{
    char name[32];
    snprintf(name, sizeof name, "trip %zu", number);
    gpx_track_open(out, name);
    if (rows) {
        for (size_t i = t->first; i <= t->last; i++)
            if (position_usable(&rows[i]))
                gpx_position_point(out, &rows[i]);
    }
    gpx_track_close(out);
}

void export_trips(struct buf *out, int format, const char *device_uid,
                  const struct export_position *rows, const struct trip *trips, size_t n)
{
    struct jsonw w;
    jsonw_init(&w, out);
    switch (format) {
    case EXPORT_CSV:
        csv_header(out, "device,start_time,end_time,duration_s,start_lat,start_lon,end_lat,"
                        "end_lon,distance_m,max_speed_kmh,avg_speed_kmh");
        for (size_t i = 0; i < n; i++) {
            const struct trip *t = &trips[i];
            struct csv_line l = csv_line_start(out);
            csv_str(&l, device_uid);
            csv_time(&l, t->start_time);
            csv_time(&l, t->end_time);
            csv_int(&l, t->end_time - t->start_time);
            csv_num(&l, t->start_lat, COORD_DECIMALS);
            csv_num(&l, t->start_lon, COORD_DECIMALS);
            csv_num(&l, t->end_lat, COORD_DECIMALS);
            csv_num(&l, t->end_lon, COORD_DECIMALS);
            csv_num(&l, t->distance_m, DISTANCE_DECIMALS);
            csv_num(&l, t->max_speed_kmh, MEASURE_DECIMALS);
            csv_num(&l, t->avg_speed_kmh, MEASURE_DECIMALS);
            csv_line_end(&l);
        }
        break;
    case EXPORT_GPX:
        gpx_open(out);
        for (size_t i = 0; i < n; i++)
            gpx_trip_track(out, rows, &trips[i], i + 1);
        gpx_close(out);
        break;
    case EXPORT_GEOJSON:
        geojson_open(&w);
        for (size_t i = 0; i < n; i++) {
            geojson_feature_open(&w, "LineString");
            geojson_trip_line(&w, rows, &trips[i]);
            geojson_properties_open(&w);
            json_key_str(&w, "device", device_uid);
            json_trip_fields(&w, &trips[i]);
            geojson_feature_close(&w);
        }
        geojson_close(&w);
        break;
    default:
        json_report_open(&w, device_uid, "trips");
        for (size_t i = 0; i < n; i++) {
            jsonw_obj_begin(&w);
            json_trip_fields(&w, &trips[i]);
            jsonw_obj_end(&w);
        }
        json_report_close(&w);
    }
}

void export_stops(struct buf *out, int format, const char *device_uid, const struct stop *stops,
                  size_t n)
{
    struct jsonw w;
    jsonw_init(&w, out);
    switch (format) {
    case EXPORT_CSV:
        csv_header(out, "device,start_time,end_time,duration_s,lat,lon");
        for (size_t i = 0; i < n; i++) {
            struct csv_line l = csv_line_start(out);
            csv_str(&l, device_uid);
            csv_time(&l, stops[i].start_time);
            csv_time(&l, stops[i].end_time);
            csv_int(&l, stops[i].end_time - stops[i].start_time);
            csv_num(&l, stops[i].lat, COORD_DECIMALS);
            csv_num(&l, stops[i].lon, COORD_DECIMALS);
            csv_line_end(&l);
        }
        break;
    case EXPORT_GPX:
        gpx_open(out);
        for (size_t i = 0; i < n; i++) {
            char name[32], desc[32];
            snprintf(name, sizeof name, "stop %zu", i + 1);
            snprintf(desc, sizeof desc, "%lld s",
                     (long long)(stops[i].end_time - stops[i].start_time));
            gpx_waypoint(out, stops[i].lat, stops[i].lon, stops[i].start_time, name, desc);
        }
        gpx_close(out);
        break;
    case EXPORT_GEOJSON:
        geojson_open(&w);
        for (size_t i = 0; i < n; i++) {
            geojson_point_open(&w, stops[i].lat, stops[i].lon, NAN);
            json_key_str(&w, "device", device_uid);
            json_stop_fields(&w, &stops[i], false);
            geojson_feature_close(&w);
        }
        geojson_close(&w);
        break;
    default:
        json_report_open(&w, device_uid, "stops");
        for (size_t i = 0; i < n; i++) {
            jsonw_obj_begin(&w);
            json_stop_fields(&w, &stops[i], true);
            jsonw_obj_end(&w);
        }
        json_report_close(&w);
    }
}
