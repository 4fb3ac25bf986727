/* export_test.c — positions / events exports in every format parsed back (jansson,
 * a small RFC 4180 reader, a small XML well-formedness checker), haversine, trip
 * and stop detection on synthetic routes, trips / stops exports. Expected values
 * are worked out by hand from the fixtures (see the comments next to them). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ctype.h>
#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "../../../src/api/export.h"
#include "../../../src/core/buf.h"
#include "../../../src/core/mem.h"

/* 2026-01-01T00:00:00Z: 2025-01-01 is 1735689600, plus 365 days of 86400 s. */
#define T0 1767225600
/* Metres per degree of latitude on the 6371008.8 m sphere: R * pi / 180. */
#define M_PER_DEG 111195.0802

/* ------------------------------------------------------------------ helpers */

/* The buffer as a C string (a NUL after the bytes, not counted in len). */
static const char *buf_text(struct buf *b)
{
    buf_append(b, "", 1);
    b->len--;
    return (const char *)b->data;
}

static size_t count_substr(const char *hay, const char *needle)
{
    size_t count = 0, n = strlen(needle);
    for (const char *p = strstr(hay, needle); p; p = strstr(p + n, needle))
        count++;
    return count;
}

static json_t *parse_json(const struct buf *b)
{
    json_error_t err;
    json_t *root = json_loadb((const char *)b->data, b->len, 0, &err);
    if (!root)
        fail_msg("JSON does not parse: %s at %d", err.text, err.position);
    return root;
}

static void expect_json_str(const json_t *obj, const char *key, const char *want)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_string(v))
        fail_msg("%s: not a string", key);
    assert_string_equal(json_string_value(v), want);
}

static void expect_json_num(const json_t *obj, const char *key, double want, double tolerance)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_number(v))
        fail_msg("%s: not a number", key);
    if (fabs(json_number_value(v) - want) > tolerance)
        fail_msg("%s: %.9g, want %.9g", key, json_number_value(v), want);
}

static void expect_json_null(const json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_null(v)) /* also fails when the key is missing (v == NULL) */
        fail_msg("%s: not null", key);
}

static void expect_json_bool(const json_t *obj, const char *key, bool want)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_boolean(v))
        fail_msg("%s: not a boolean", key);
    assert_int_equal(json_is_true(v), want);
}

/* A small RFC 4180 reader: quoted fields with doubled quotes, CRLF after every
 * record (a bare LF or a missing final CRLF is an error). */
#define CSV_MAX_ROWS 16
#define CSV_MAX_COLS 20
#define CSV_MAX_FIELD 128
struct csv_table {
    size_t rows;
    size_t cols[CSV_MAX_ROWS];
    char field[CSV_MAX_ROWS][CSV_MAX_COLS][CSV_MAX_FIELD];
};

static bool csv_add_char(char *field, size_t *len, char c)
{
    if (*len + 1 >= CSV_MAX_FIELD)
        return false;
    field[(*len)++] = c;
    field[*len] = '\0';
    return true;
}

static bool csv_read_field(const char *s, size_t n, size_t *i, char *field)
{
    size_t len = 0;
    field[0] = '\0';
    if (*i < n && s[*i] == '"') {
        for (++*i;; ++*i) {
            if (*i >= n)
                return false; /* unterminated quote */
            if (s[*i] == '"') {
                if (*i + 1 < n && s[*i + 1] == '"')
                    ++*i; /* doubled quote: one literal quote */
                else {
                    ++*i;
                    return true;
                }
            }
            if (!csv_add_char(field, &len, s[*i]))
                return false;
        }
    }
    for (; *i < n && s[*i] != ',' && s[*i] != '\r' && s[*i] != '\n'; ++*i)
        if (s[*i] == '"' || !csv_add_char(field, &len, s[*i]))
            return false; /* a quote inside an unquoted field */
    return true;
}

static bool csv_read(const struct buf *b, struct csv_table *t)
{
    const char *s = (const char *)b->data;
    size_t n = b->len, i = 0;
    t->rows = 0;
    while (i < n) {
        if (t->rows >= CSV_MAX_ROWS)
            return false;
        size_t col = 0;
        for (;;) {
            if (col >= CSV_MAX_COLS || !csv_read_field(s, n, &i, t->field[t->rows][col]))
                return false;
            col++;
            if (i < n && s[i] == ',') {
                i++;
                continue;
            }
            if (i + 1 < n && s[i] == '\r' && s[i + 1] == '\n') {
                i += 2;
                break;
            }
            return false;
        }
        t->cols[t->rows++] = col;
    }
    return true;
}

static bool xml_entity_ok(const char **p)
{
    static const char *const entities[] = {"&amp;", "&lt;", "&gt;", "&quot;", "&apos;"};
    for (size_t k = 0; k < sizeof entities / sizeof entities[0]; k++) {
        size_t n = strlen(entities[k]);
        if (strncmp(*p, entities[k], n) == 0) {
            *p += n;
            return true;
        }
    }
    return false;
}

/* Well-formed enough for our output: one root, tags nest and match, attribute
 * values quoted, no raw '<' '>' '&' in text or attributes. */
static bool xml_well_formed(const char *s)
{
    char stack[16][48];
    size_t depth = 0, roots = 0;
    const char *p = s;
    while (*p) {
        if (*p == '&') {
            if (!xml_entity_ok(&p))
                return false;
            continue;
        }
        if (*p == '>')
            return false;
        if (*p != '<') {
            if (depth == 0 && *p != '\n')
                return false; /* text outside the root */
            p++;
            continue;
        }
        if (p[1] == '?') {
            p = strstr(p, "?>");
            if (!p)
                return false;
            p += 2;
            continue;
        }
        bool closing = p[1] == '/';
        p += closing ? 2 : 1;
        char name[48];
        size_t len = 0;
        while (*p && *p != ' ' && *p != '>' && *p != '/' && len + 1 < sizeof name) {
            if (!isalnum((unsigned char)*p) && !strchr(":_-.", *p))
                return false;
            name[len++] = *p++;
        }
        name[len] = '\0';
        if (len == 0)
            return false;
        bool self_closing = false;
        while (*p != '>') {
            if (!*p || *p == '<' || *p == '&')
                return false;
            if (*p == '"') {
                for (p++; *p != '"';) {
                    if (!*p || *p == '<')
                        return false;
                    if (*p == '&') {
                        if (!xml_entity_ok(&p))
                            return false;
                    } else {
                        p++;
                    }
                }
            }
            self_closing = *p == '/';
            p++;
        }
        p++;
        if (closing) {
            if (depth == 0 || strcmp(stack[depth - 1], name) != 0)
                return false;
            depth--;
        } else if (!self_closing) {
            if (depth == 0)
                roots++;
            if (depth >= 16)
                return false;
            memcpy(stack[depth++], name, len + 1);
        }
    }
    return depth == 0 && roots == 1;
}

/* ------------------------------------------------------------------ fixtures */

static const char DEV1[] = "dev,\"1\""; /* a comma and a quote for CSV */
static const char DEV2[] = "a<b&c";     /* XML specials for GPX */

static void make_positions(struct export_position p[5])
{
    /* 0: a full fix */
    p[0] = (struct export_position){.id = 1,
                                    .device_uid = DEV1,
                                    .fix_time = T0,
                                    .recv_time = T0 + 2,
                                    .valid = true,
                                    .lat = 52.5,
                                    .lon = 13.25,
                                    .altitude = 34.5,
                                    .speed_kmh = 12.5,
                                    .course = 270,
                                    .satellites = 9,
                                    .battery_pct = 80,
                                    .protocol = "jt808",
                                    .fix = "3d",
                                    .lock_state = "locked",
                                    .attrs = "{\"temp\":21.5,\"door\":\"open\"}"};
    /* 1: invalid, nothing known */
    p[1] = (struct export_position){.id = 2,
                                    .device_uid = DEV1,
                                    .fix_time = T0 + 60,
                                    .recv_time = T0 + 61,
                                    .valid = false,
                                    .lat = NAN,
                                    .lon = NAN,
                                    .altitude = NAN,
                                    .speed_kmh = NAN,
                                    .course = NAN,
                                    .satellites = -1,
                                    .battery_pct = -1,
                                    .protocol = "gt06"};
    /* 2: another device, a CRLF in a string, no altitude */
    p[2] = (struct export_position){.id = 3,
                                    .device_uid = DEV2,
                                    .fix_time = T0 + 120,
                                    .recv_time = T0 + 121,
                                    .valid = true,
                                    .lat = -33.86882,
                                    .lon = 151.20929,
                                    .altitude = NAN,
                                    .speed_kmh = 0,
                                    .course = NAN,
                                    .satellites = -1,
                                    .battery_pct = -1,
                                    .protocol = "h02",
                                    .lock_state = "tamper\r\nalarm"};
    /* 3: valid but without coordinates */
    p[3] = (struct export_position){.id = 4,
                                    .device_uid = DEV2,
                                    .fix_time = T0 + 180,
                                    .recv_time = T0 + 181,
                                    .valid = true,
                                    .lat = NAN,
                                    .lon = NAN,
                                    .altitude = NAN,
                                    .speed_kmh = NAN,
                                    .course = NAN,
                                    .satellites = -1,
                                    .battery_pct = -1};
    /* 4: back to the first device */
    p[4] = (struct export_position){.id = 5,
                                    .device_uid = DEV1,
                                    .fix_time = T0 + 240,
                                    .recv_time = T0 + 241,
                                    .valid = true,
                                    .lat = 52.6,
                                    .lon = 13.3,
                                    .altitude = NAN,
                                    .speed_kmh = NAN,
                                    .course = NAN,
                                    .satellites = -1,
                                    .battery_pct = -1};
}

static void make_events(struct export_event e[3])
{
    e[0] = (struct export_event){.id = 10,
                                 .device_uid = "seal-1",
                                 .time = T0,
                                 .recv_time = T0 + 5,
                                 .type = "unlock",
                                 .source = "rfid",
                                 .card = "CARD,01",
                                 .granted = 1,
                                 .lat = 22.5,
                                 .lon = 114.0};
    e[1] = (struct export_event){.id = 11,
                                 .device_uid = "seal-1",
                                 .time = T0 + 30,
                                 .recv_time = T0 + 31,
                                 .type = "tamper",
                                 .reason = "cut <wire> & \"x\"",
                                 .granted = -1,
                                 .lat = NAN,
                                 .lon = NAN};
    e[2] = (struct export_event){.id = 12,
                                 .device_uid = "seal&2",
                                 .time = T0 + 60,
                                 .recv_time = T0 + 61,
                                 .type = "lock",
                                 .reason = "ok",
                                 .granted = 0,
                                 .lat = 22.6,
                                 .lon = 114.1};
}

/* ------------------------------------------------------------------ formats */

static void test_format_parse(void **state)
{
    (void)state;
    assert_int_equal(export_format_parse("json"), EXPORT_JSON);
    assert_int_equal(export_format_parse("csv"), EXPORT_CSV);
    assert_int_equal(export_format_parse("gpx"), EXPORT_GPX);
    assert_int_equal(export_format_parse("geojson"), EXPORT_GEOJSON);
    assert_int_equal(export_format_parse("GeoJSON"), EXPORT_GEOJSON);
    assert_int_equal(export_format_parse("kml"), -1);
    assert_int_equal(export_format_parse(""), -1);
    assert_int_equal(export_format_parse("jsonx"), -1);
    assert_int_equal(export_format_parse(NULL), -1);
    assert_string_equal(export_content_type(EXPORT_JSON), "application/json");
    assert_string_equal(export_content_type(EXPORT_CSV), "text/csv; charset=utf-8");
    assert_string_equal(export_content_type(EXPORT_GPX), "application/gpx+xml");
    assert_string_equal(export_content_type(EXPORT_GEOJSON), "application/geo+json");
    assert_string_equal(export_content_type(-1), "application/octet-stream");
    assert_string_equal(export_content_type(9), "application/octet-stream");
}

static void test_distance(void **state)
{
    (void)state;
    /* One degree along a meridian or the equator: R * pi / 180 = 111195.08 m. */
    assert_true(fabs(export_distance_m(0, 0, 1, 0) - 111195.08) < 1);
    assert_true(fabs(export_distance_m(52, 13, 53, 13) - 111195.08) < 1);
    assert_true(fabs(export_distance_m(0, 100, 0, 101) - 111195.08) < 1);
    /* One degree of longitude at 60 N: about half of it (2R asin(cos 60 sin 0.5°) = 55597.0). */
    assert_true(fabs(export_distance_m(60, 0, 60, 1) - 55597.0) < 1);
    assert_true(export_distance_m(22.5, 114, 22.5, 114) == 0);
    /* Symmetric, and half the circumference for antipodes (pi R = 20015114.4 m). */
    assert_true(fabs(export_distance_m(0, 0, 0, 180) - 20015114.4) < 1);
    assert_true(fabs(export_distance_m(10, 20, -5, 30) - export_distance_m(-5, 30, 10, 20)) < 1e-6);
}

/* ------------------------------------------------------------------ positions */

static void test_positions_json(void **state)
{
    (void)state;
    struct export_position p[5];
    make_positions(p);
    struct buf b = {0};
    export_positions(&b, EXPORT_JSON, p, 5, 42);
    json_t *root = parse_json(&b);
    expect_json_num(root, "next", 42, 0);
    json_t *list = json_object_get(root, "positions");
    assert_int_equal(json_array_size(list), 5);

    json_t *r0 = json_array_get(list, 0);
    expect_json_num(r0, "id", 1, 0);
    expect_json_str(r0, "device", DEV1);
    expect_json_str(r0, "time", "2026-01-01T00:00:00Z");
    expect_json_str(r0, "recv_time", "2026-01-01T00:00:02Z");
    expect_json_bool(r0, "valid", true);
    expect_json_num(r0, "lat", 52.5, 1e-9);
    expect_json_num(r0, "lon", 13.25, 1e-9);
    expect_json_num(r0, "altitude", 34.5, 1e-9);
    expect_json_num(r0, "speed_kmh", 12.5, 1e-9);
    expect_json_num(r0, "course", 270, 1e-9);
    expect_json_num(r0, "satellites", 9, 0);
    expect_json_num(r0, "battery_pct", 80, 0);
    expect_json_str(r0, "protocol", "jt808");
    expect_json_str(r0, "fix", "3d");
    expect_json_str(r0, "lock_state", "locked");
    json_t *attrs = json_object_get(r0, "attrs");
    assert_true(json_is_object(attrs));
    expect_json_num(attrs, "temp", 21.5, 1e-9);
    expect_json_str(attrs, "door", "open");

    json_t *r1 = json_array_get(list, 1);
    expect_json_bool(r1, "valid", false);
    expect_json_str(r1, "time", "2026-01-01T00:01:00Z");
    const char *nulls[] = {"lat",        "lon",         "altitude", "speed_kmh",  "course",
                           "satellites", "battery_pct", "fix",      "lock_state", "attrs"};
    for (size_t k = 0; k < sizeof nulls / sizeof nulls[0]; k++)
        expect_json_null(r1, nulls[k]);
    expect_json_str(r1, "protocol", "gt06");

    json_t *r2 = json_array_get(list, 2);
    expect_json_str(r2, "device", DEV2);
    expect_json_num(r2, "lat", -33.86882, 1e-9);
    expect_json_num(r2, "speed_kmh", 0, 0);
    expect_json_str(r2, "lock_state", "tamper\r\nalarm");
    json_decref(root);

    /* No further page: "next": null. An empty page is still a valid document. */
    b.len = 0;
    export_positions(&b, EXPORT_JSON, p, 0, -1);
    root = parse_json(&b);
    expect_json_null(root, "next");
    assert_int_equal(json_array_size(json_object_get(root, "positions")), 0);
    json_decref(root);
    buf_free(&b);
}

static void test_positions_csv(void **state)
{
    (void)state;
    struct export_position p[5];
    make_positions(p);
    struct buf b = {0};
    export_positions(&b, EXPORT_CSV, p, 5, 42);
    const char *text = buf_text(&b);
    const char header[] = "id,device,time,recv_time,valid,lat,lon,altitude,speed_kmh,course,"
                          "satellites,battery_pct,protocol,fix,lock_state\r\n";
    assert_memory_equal(text, header, sizeof header - 1);
    /* The device is quoted with its quote doubled. */
    assert_non_null(strstr(text, "\r\n1,\"dev,\"\"1\"\"\",2026-01-01T00:00:00Z,"));

    struct csv_table *t = calloc(1, sizeof *t);
    assert_non_null(t);
    assert_true(csv_read(&b, t));
    assert_int_equal(t->rows, 6); /* header + 5 rows, invalid ones included */
    for (size_t r = 0; r < t->rows; r++)
        assert_int_equal(t->cols[r], 15);
    assert_string_equal(t->field[0][14], "lock_state");
    /* row 0 */
    assert_string_equal(t->field[1][0], "1");
    assert_string_equal(t->field[1][1], DEV1);
    assert_string_equal(t->field[1][2], "2026-01-01T00:00:00Z");
    assert_string_equal(t->field[1][3], "2026-01-01T00:00:02Z");
    assert_string_equal(t->field[1][4], "true");
    assert_string_equal(t->field[1][5], "52.5");
    assert_string_equal(t->field[1][6], "13.25");
    assert_string_equal(t->field[1][7], "34.5");
    assert_string_equal(t->field[1][8], "12.5");
    assert_string_equal(t->field[1][9], "270");
    assert_string_equal(t->field[1][10], "9");
    assert_string_equal(t->field[1][11], "80");
    assert_string_equal(t->field[1][12], "jt808");
    /* row 1: missing values are empty fields */
    assert_string_equal(t->field[2][4], "false");
    for (size_t c = 5; c <= 11; c++)
        assert_string_equal(t->field[2][c], "");
    assert_string_equal(t->field[2][12], "gt06");
    assert_string_equal(t->field[2][13], "");
    assert_string_equal(t->field[2][14], "");
    /* row 2: a CRLF inside a quoted field survives, 6 decimals for coordinates */
    assert_string_equal(t->field[3][1], DEV2);
    assert_string_equal(t->field[3][5], "-33.86882");
    assert_string_equal(t->field[3][6], "151.20929");
    assert_string_equal(t->field[3][8], "0");
    assert_string_equal(t->field[3][14], "tamper\r\nalarm");
    assert_string_equal(t->field[5][0], "5");
    free(t);
    buf_free(&b);
}

static void test_positions_gpx(void **state)
{
    (void)state;
    struct export_position p[5];
    make_positions(p);
    struct buf b = {0};
    export_positions(&b, EXPORT_GPX, p, 5, 42);
    const char *text = buf_text(&b);
    assert_true(xml_well_formed(text));
    assert_non_null(strstr(text, "<gpx version=\"1.1\" creator=\"sealtrack\" "
                                 "xmlns=\"http://www.topografix.com/GPX/1/1\""));
    /* Rows 0, 2 and 4 have a valid fix with coordinates; three device runs. */
    assert_int_equal(count_substr(text, "<trkpt "), 3);
    assert_int_equal(count_substr(text, "<trk>"), 3);
    assert_int_equal(count_substr(text, "<name>dev,&quot;1&quot;</name>"), 2);
    assert_int_equal(count_substr(text, "<name>a&lt;b&amp;c</name>"), 1);
    assert_null(strstr(text, "a<b"));
    /* The invalid row 1 (00:01) and the coordinate-less row 3 (00:03) are left out. */
    assert_null(strstr(text, "2026-01-01T00:01:00Z"));
    assert_null(strstr(text, "2026-01-01T00:03:00Z"));
    /* Row 0 in full: 12.5 km/h = 3.47 m/s in the extension. */
    assert_non_null(strstr(text, "<trkpt lat=\"52.5\" lon=\"13.25\"><ele>34.5</ele>"
                                 "<time>2026-01-01T00:00:00Z</time><sat>9</sat>"));
    assert_non_null(strstr(text, "<gpxtpx:speed>3.47</gpxtpx:speed>"));
    assert_non_null(strstr(text, "<gpxtpx:course>270</gpxtpx:course>"));
    assert_non_null(strstr(text, "<trkpt lat=\"-33.86882\" lon=\"151.20929\">"));
    buf_free(&b);
}

static void test_positions_geojson(void **state)
{
    (void)state;
    struct export_position p[5];
    make_positions(p);
    struct buf b = {0};
    export_positions(&b, EXPORT_GEOJSON, p, 5, 42);
    json_t *root = parse_json(&b);
    expect_json_str(root, "type", "FeatureCollection");
    json_t *features = json_object_get(root, "features");
    assert_int_equal(json_array_size(features), 3); /* rows 1 and 3 have no lat/lon */

    json_t *f0 = json_array_get(features, 0);
    expect_json_str(f0, "type", "Feature");
    json_t *geometry = json_object_get(f0, "geometry");
    expect_json_str(geometry, "type", "Point");
    json_t *coords = json_object_get(geometry, "coordinates");
    assert_int_equal(json_array_size(coords), 3); /* lon, lat, altitude */
    assert_true(fabs(json_number_value(json_array_get(coords, 0)) - 13.25) < 1e-9);
    assert_true(fabs(json_number_value(json_array_get(coords, 1)) - 52.5) < 1e-9);
    assert_true(fabs(json_number_value(json_array_get(coords, 2)) - 34.5) < 1e-9);
    json_t *props = json_object_get(f0, "properties");
    expect_json_num(props, "id", 1, 0);
    expect_json_str(props, "device", DEV1);
    expect_json_str(props, "time", "2026-01-01T00:00:00Z");
    expect_json_num(props, "speed_kmh", 12.5, 1e-9);
    assert_null(json_object_get(props, "lat")); /* in the geometry only */
    expect_json_num(json_object_get(props, "attrs"), "temp", 21.5, 1e-9);

    json_t *f1 = json_array_get(features, 1);
    coords = json_object_get(json_object_get(f1, "geometry"), "coordinates");
    assert_int_equal(json_array_size(coords), 2); /* no altitude */
    assert_true(fabs(json_number_value(json_array_get(coords, 0)) - 151.20929) < 1e-9);
    assert_true(fabs(json_number_value(json_array_get(coords, 1)) + 33.86882) < 1e-9);
    props = json_object_get(f1, "properties");
    expect_json_num(props, "id", 3, 0);
    expect_json_str(props, "device", DEV2);
    expect_json_null(props, "course");
    expect_json_null(props, "attrs");
    expect_json_num(json_object_get(json_array_get(features, 2), "properties"), "id", 5, 0);
    json_decref(root);
    buf_free(&b);
}

/* ------------------------------------------------------------------ events */

static void test_events_json(void **state)
{
    (void)state;
    struct export_event e[3];
    make_events(e);
    struct buf b = {0};
    export_events(&b, EXPORT_JSON, e, 3, -1);
    json_t *root = parse_json(&b);
    expect_json_null(root, "next");
    json_t *list = json_object_get(root, "events");
    assert_int_equal(json_array_size(list), 3);
    json_t *e0 = json_array_get(list, 0);
    expect_json_num(e0, "id", 10, 0);
    expect_json_str(e0, "device", "seal-1");
    expect_json_str(e0, "time", "2026-01-01T00:00:00Z");
    expect_json_str(e0, "recv_time", "2026-01-01T00:00:05Z");
    expect_json_str(e0, "type", "unlock");
    expect_json_str(e0, "source", "rfid");
    expect_json_str(e0, "card", "CARD,01");
    expect_json_bool(e0, "granted", true);
    expect_json_null(e0, "reason");
    expect_json_num(e0, "lat", 22.5, 1e-9);
    expect_json_num(e0, "lon", 114.0, 1e-9);
    json_t *e1 = json_array_get(list, 1);
    expect_json_null(e1, "granted");
    expect_json_null(e1, "source");
    expect_json_null(e1, "card");
    expect_json_null(e1, "lat");
    expect_json_null(e1, "lon");
    expect_json_str(e1, "reason", "cut <wire> & \"x\"");
    expect_json_bool(json_array_get(list, 2), "granted", false);
    json_decref(root);

    b.len = 0;
    export_events(&b, EXPORT_JSON, e, 1, 7);
    root = parse_json(&b);
    expect_json_num(root, "next", 7, 0);
    json_decref(root);
    buf_free(&b);
}

static void test_events_csv(void **state)
{
    (void)state;
    struct export_event e[3];
    make_events(e);
    struct buf b = {0};
    export_events(&b, EXPORT_CSV, e, 3, -1);
    struct csv_table *t = calloc(1, sizeof *t);
    assert_non_null(t);
    assert_true(csv_read(&b, t));
    assert_int_equal(t->rows, 4);
    const char *header[] = {"id",   "device",  "time",   "recv_time", "type", "source",
                            "card", "granted", "reason", "lat",       "lon"};
    for (size_t r = 0; r < t->rows; r++)
        assert_int_equal(t->cols[r], 11);
    for (size_t c = 0; c < 11; c++)
        assert_string_equal(t->field[0][c], header[c]);
    assert_string_equal(t->field[1][0], "10");
    assert_string_equal(t->field[1][2], "2026-01-01T00:00:00Z");
    assert_string_equal(t->field[1][6], "CARD,01");
    assert_string_equal(t->field[1][7], "true");
    assert_string_equal(t->field[1][8], "");
    assert_string_equal(t->field[1][9], "22.5");
    assert_string_equal(t->field[1][10], "114");
    assert_string_equal(t->field[2][5], "");
    assert_string_equal(t->field[2][7], "");
    assert_string_equal(t->field[2][8], "cut <wire> & \"x\"");
    assert_string_equal(t->field[2][9], "");
    assert_string_equal(t->field[3][1], "seal&2");
    assert_string_equal(t->field[3][7], "false");
    free(t);
    buf_free(&b);
}

static void test_events_gpx(void **state)
{
    (void)state;
    struct export_event e[3];
    make_events(e);
    struct buf b = {0};
    export_events(&b, EXPORT_GPX, e, 3, -1);
    const char *text = buf_text(&b);
    assert_true(xml_well_formed(text));
    assert_int_equal(count_substr(text, "<wpt "), 2); /* the tamper event has no position */
    assert_non_null(strstr(text, "<wpt lat=\"22.5\" lon=\"114\"><time>2026-01-01T00:00:00Z</time>"
                                 "<name>unlock</name>"));
    assert_non_null(strstr(text, "<name>lock</name><desc>seal&amp;2</desc>"));
    assert_null(strstr(text, "tamper"));
    assert_null(strstr(text, "<trk"));
    buf_free(&b);
}

static void test_events_geojson(void **state)
{
    (void)state;
    struct export_event e[3];
    make_events(e);
    struct buf b = {0};
    export_events(&b, EXPORT_GEOJSON, e, 3, -1);
    json_t *root = parse_json(&b);
    json_t *features = json_object_get(root, "features");
    assert_int_equal(json_array_size(features), 2);
    json_t *f0 = json_array_get(features, 0);
    json_t *coords = json_object_get(json_object_get(f0, "geometry"), "coordinates");
    assert_int_equal(json_array_size(coords), 2);
    assert_true(fabs(json_number_value(json_array_get(coords, 0)) - 114.0) < 1e-9);
    assert_true(fabs(json_number_value(json_array_get(coords, 1)) - 22.5) < 1e-9);
    json_t *props = json_object_get(f0, "properties");
    expect_json_str(props, "type", "unlock");
    expect_json_bool(props, "granted", true);
    expect_json_num(props, "id", 10, 0);
    props = json_object_get(json_array_get(features, 1), "properties");
    expect_json_num(props, "id", 12, 0);
    expect_json_bool(props, "granted", false);
    expect_json_str(props, "reason", "ok");
    json_decref(root);
    buf_free(&b);
}

/* ------------------------------------------------------------------ routes */

#define ROUTE_MAX 400
struct route {
    struct export_position p[ROUTE_MAX];
    size_t n;
    int64_t t;
    double lat, lon; /* where the device is (jitter is added around it) */
};

static void route_fix(struct route *r, double speed_kmh, double north_m, double east_m)
{
    assert_true(r->n < ROUTE_MAX);
    r->p[r->n] =
        (struct export_position){.id = (int64_t)r->n + 1,
                                 .device_uid = "veh-1",
                                 .fix_time = r->t,
                                 .recv_time = r->t,
                                 .valid = true,
                                 .lat = r->lat + north_m / M_PER_DEG,
                                 .lon = r->lon + east_m / (M_PER_DEG * cos(r->lat * M_PI / 180)),
                                 .altitude = NAN,
                                 .speed_kmh = speed_kmh,
                                 .course = NAN,
                                 .satellites = -1,
                                 .battery_pct = -1};
    r->n++;
}

static void route_start(struct route *r, double speed_kmh)
{
    r->n = 0;
    r->t = T0;
    r->lat = 52.0;
    r->lon = 13.0;
    route_fix(r, speed_kmh, 0, 0);
}

/* North for `meters` at speed_kmh, one fix every step_s (exact steps). */
static void route_drive(struct route *r, double meters, double speed_kmh, int64_t step_s,
                        bool speed_known)
{
    double step_m = speed_kmh / 3.6 * (double)step_s;
    int steps = (int)lround(meters / step_m);
    for (int k = 0; k < steps; k++) {
        r->t += step_s;
        r->lat += step_m / M_PER_DEG;
        route_fix(r, speed_known ? speed_kmh : NAN, 0, 0);
    }
}

/* Parked for `seconds`, a fix every step_s, each up to jitter_m from the spot
 * (on a circle: no two fixes more than 2 * jitter_m apart). */
static void route_park(struct route *r, int64_t seconds, int64_t step_s, double jitter_m,
                       double speed_kmh)
{
    for (int64_t k = 1; k <= seconds / step_s; k++) {
        r->t += step_s;
        double angle = 2.4 * (double)k;
        route_fix(r, speed_kmh, jitter_m * sin(angle), jitter_m * cos(angle));
    }
}

struct detected {
    struct trip *trips;
    size_t n_trips;
    struct stop *stops;
    size_t n_stops;
};

static struct detected detect(const struct export_position *rows, size_t n)
{
    struct trips_opts o;
    trips_opts_defaults(&o);
    struct detected d;
    trips_detect(rows, n, &o, &d.trips, &d.n_trips, &d.stops, &d.n_stops);
    return d;
}

static void detected_free(struct detected *d)
{
    st_free(d->trips);
    st_free(d->stops);
}

static void expect_near(double got, double want, double tolerance)
{
    if (fabs(got - want) > tolerance)
        fail_msg("%.9g, want %.9g ± %g", got, want, tolerance);
}

/* Drive 10 km at 60 km/h (fixes 0..60, t0..t0+600), park 10 min (fixes 61..120,
 * t0+610..t0+1200), drive 5 km (fixes 121..150, t0+1210..t0+1500). */
static void drive_stop_drive(struct route *r, bool speed_known)
{
    route_start(r, speed_known ? 0 : NAN);
    route_drive(r, 10000, 60, 10, speed_known);
    route_park(r, 600, 10, 0, speed_known ? 0 : NAN);
    route_drive(r, 5000, 60, 10, speed_known);
}

/* The stop starts at the arrival fix (60): it and the parked fixes are one spot. */
static void expect_drive_stop_drive(const struct detected *d, bool speed_known)
{
    assert_int_equal(d->n_trips, 2);
    assert_int_equal(d->n_stops, 1);
    const struct trip *t1 = &d->trips[0], *t2 = &d->trips[1];
    assert_int_equal(t1->start_time, T0);
    assert_int_equal(t1->end_time, T0 + 600);
    expect_near(t1->distance_m, 10000, 100);
    expect_near(t1->avg_speed_kmh, 60, 0.6); /* 10 km in 600 s */
    expect_near(t1->start_lat, 52.0, 1e-9);
    expect_near(t1->end_lat, 52.0 + 10000 / M_PER_DEG, 1e-6);
    assert_int_equal(t1->first, 0);
    assert_int_equal(t1->last, 60);

    const struct stop *s = &d->stops[0];
    assert_int_equal(s->start_time, T0 + 600);
    assert_int_equal(s->end_time, T0 + 1200);
    expect_near(s->lat, 52.0 + 10000 / M_PER_DEG, 1e-6);
    expect_near(s->lon, 13.0, 1e-9);
    assert_int_equal(s->first, 60);
    assert_int_equal(s->last, 120);

    assert_int_equal(t2->start_time, T0 + 1200);
    assert_int_equal(t2->end_time, T0 + 1500);
    expect_near(t2->distance_m, 5000, 50);
    expect_near(t2->avg_speed_kmh, 60, 0.6); /* 5 km in 300 s */
    expect_near(t2->end_lat, 52.0 + 15000 / M_PER_DEG, 1e-6);
    assert_int_equal(t2->first, 120);
    assert_int_equal(t2->last, 150);
    if (speed_known) {
        expect_near(t1->max_speed_kmh, 60, 1e-9);
        expect_near(t2->max_speed_kmh, 60, 1e-9);
    } else {
        assert_true(isnan(t1->max_speed_kmh));
        assert_true(isnan(t2->max_speed_kmh));
    }
}

static void test_trips_drive_stop_drive(void **state)
{
    (void)state;
    static struct route r;
    drive_stop_drive(&r, true);
    assert_int_equal(r.n, 151);
    struct detected d = detect(r.p, r.n);
    expect_drive_stop_drive(&d, true);
    detected_free(&d);
}

static void test_trips_nan_speeds(void **state)
{
    (void)state;
    static struct route r;
    drive_stop_drive(&r, false);
    struct detected d = detect(r.p, r.n);
    expect_drive_stop_drive(&d, false);
    detected_free(&d);
}

/* Invalid fixes (at 0,0) and valid rows without coordinates between every row
 * change nothing but the row indexes. */
static void test_trips_ignore_invalid(void **state)
{
    (void)state;
    static struct route r;
    static struct export_position mixed[3 * ROUTE_MAX];
    drive_stop_drive(&r, true);
    size_t n = 0;
    for (size_t i = 0; i < r.n; i++) {
        mixed[n] = r.p[i];
        mixed[n].valid = false;
        mixed[n].lat = mixed[n].lon = 0;
        mixed[n++].speed_kmh = 300;
        mixed[n] = r.p[i];
        mixed[n].lat = NAN;
        mixed[n++].speed_kmh = 300;
        mixed[n++] = r.p[i];
    }
    struct detected d = detect(mixed, n);
    assert_int_equal(d.n_trips, 2);
    assert_int_equal(d.n_stops, 1);
    /* Row i of the route is row 3 i + 2 here. */
    assert_int_equal(d.trips[0].first, 2);
    assert_int_equal(d.trips[0].last, 3 * 60 + 2);
    assert_int_equal(d.stops[0].first, 3 * 60 + 2);
    assert_int_equal(d.stops[0].last, 3 * 120 + 2);
    assert_int_equal(d.trips[1].last, 3 * 150 + 2);
    expect_near(d.trips[0].distance_m, 10000, 100);
    expect_near(d.trips[0].max_speed_kmh, 60, 1e-9);
    assert_int_equal(d.stops[0].start_time, T0 + 600);
    detected_free(&d);

    /* All invalid: nothing. */
    for (size_t i = 0; i < r.n; i++)
        r.p[i].valid = false;
    d = detect(r.p, r.n);
    assert_int_equal(d.n_trips, 0);
    assert_int_equal(d.n_stops, 0);
    detected_free(&d);
}

static void test_trips_parked_jitter(void **state)
{
    (void)state;
    static struct route r;
    /* One hour parked, 20 m jitter, a fix every 30 s: speed 0, unknown speed, and
     * speed noise (5 km/h every 7th fix) all give one stop over the whole hour. */
    const double speeds[] = {0, NAN, -1};
    for (size_t v = 0; v < 3; v++) {
        route_start(&r, speeds[v] < 0 ? 0 : speeds[v]);
        route_park(&r, 3600, 30, 20, speeds[v] < 0 ? 0 : speeds[v]);
        if (speeds[v] < 0)
            for (size_t i = 3; i < r.n; i += 7)
                r.p[i].speed_kmh = 5;
        assert_int_equal(r.n, 121);
        struct detected d = detect(r.p, r.n);
        assert_int_equal(d.n_trips, 0);
        assert_int_equal(d.n_stops, 1);
        assert_int_equal(d.stops[0].start_time, T0);
        assert_int_equal(d.stops[0].end_time, T0 + 3600);
        assert_int_equal(d.stops[0].first, 0);
        assert_int_equal(d.stops[0].last, 120);
        detected_free(&d);
    }

    /* Four minutes of the same jitter every 5 s: too short for a stop, and its path
     * (48 chords of 37 m = 1.8 km) is long but never 100 m from the start: no trip. */
    route_start(&r, 0);
    route_park(&r, 240, 5, 20, 0);
    struct detected d = detect(r.p, r.n);
    assert_int_equal(d.n_trips, 0);
    assert_int_equal(d.n_stops, 0);
    detected_free(&d);
}

/* Twenty minutes parked with unknown speed and one fix 80 m off at minute 10: two
 * stationary runs of 570 s joined into one stop, the 160 m glitch is no trip. */
static void test_trips_glitch_joins_stops(void **state)
{
    (void)state;
    static struct route r;
    route_start(&r, NAN);
    route_park(&r, 1200, 30, 0, NAN);
    r.p[20].lat += 80 / M_PER_DEG;
    struct detected d = detect(r.p, r.n);
    assert_int_equal(d.n_trips, 0);
    assert_int_equal(d.n_stops, 1);
    assert_int_equal(d.stops[0].start_time, T0);
    assert_int_equal(d.stops[0].end_time, T0 + 1200);
    detected_free(&d);
}

static void test_trips_never_stops(void **state)
{
    (void)state;
    static struct route r;
    /* 20 km at 72 km/h: 100 fixes of 200 m every 10 s after the start. */
    route_start(&r, 0);
    route_drive(&r, 20000, 72, 10, true);
    r.p[50].speed_kmh = 95;  /* the maximum is in the middle, */
    r.p[51].speed_kmh = NAN; /* and an unknown speed is skipped */
    struct detected d = detect(r.p, r.n);
    assert_int_equal(d.n_trips, 1);
    assert_int_equal(d.n_stops, 0);
    assert_int_equal(d.trips[0].start_time, T0);
    assert_int_equal(d.trips[0].end_time, T0 + 1000);
    expect_near(d.trips[0].distance_m, 20000, 200);
    expect_near(d.trips[0].avg_speed_kmh, 72, 0.72);
    expect_near(d.trips[0].max_speed_kmh, 95, 1e-9);
    assert_int_equal(d.trips[0].first, 0);
    assert_int_equal(d.trips[0].last, 100);
    detected_free(&d);

    /* Sparse reports at red lights 5 km apart, all at 0 km/h: not a stop. */
    route_start(&r, 0);
    for (int k = 0; k < 3; k++) {
        r.t += 600;
        r.lat += 5000 / M_PER_DEG;
        route_fix(&r, 0, 0, 0);
    }
    d = detect(r.p, r.n);
    assert_int_equal(d.n_stops, 0);
    assert_int_equal(d.n_trips, 1);
    expect_near(d.trips[0].distance_m, 15000, 150);
    expect_near(d.trips[0].avg_speed_kmh, 30, 0.3); /* 15 km in 1800 s */
    expect_near(d.trips[0].max_speed_kmh, 0, 0);
    detected_free(&d);
}

static void test_trips_short_stop(void **state)
{
    (void)state;
    static struct route r;
    /* 5 km, 2 minutes parked (< 300 s), 5 km: one trip across the pause. */
    route_start(&r, 0);
    route_drive(&r, 5000, 60, 10, true);
    route_park(&r, 120, 10, 0, 0);
    route_drive(&r, 5000, 60, 10, true);
    struct detected d = detect(r.p, r.n);
    assert_int_equal(d.n_trips, 1);
    assert_int_equal(d.n_stops, 0);
    assert_int_equal(d.trips[0].start_time, T0);
    assert_int_equal(d.trips[0].end_time, T0 + 300 + 120 + 300);
    expect_near(d.trips[0].distance_m, 10000, 100);
    expect_near(d.trips[0].avg_speed_kmh, 10000.0 / 720 * 3.6, 0.5);
    detected_free(&d);

    /* A longer min_stop_s turns a 10 minute stop into a pause of one trip too. */
    drive_stop_drive(&r, true);
    struct trips_opts o;
    trips_opts_defaults(&o);
    assert_int_equal(o.min_stop_s, 300);
    expect_near(o.stop_speed_kmh, 3, 0);
    expect_near(o.min_trip_m, 200, 0);
    o.min_stop_s = 900;
    trips_detect(r.p, r.n, &o, &d.trips, &d.n_trips, &d.stops, &d.n_stops);
    assert_int_equal(d.n_trips, 1);
    assert_int_equal(d.n_stops, 0);
    expect_near(d.trips[0].distance_m, 15000, 150);
    detected_free(&d);
}

static void test_trips_degenerate(void **state)
{
    (void)state;
    struct detected d = detect(NULL, 0);
    assert_int_equal(d.n_trips, 0);
    assert_int_equal(d.n_stops, 0);
    detected_free(&d);

    static struct route r;
    route_start(&r, 50);
    d = detect(r.p, 1);
    assert_int_equal(d.n_trips, 0);
    assert_int_equal(d.n_stops, 0);
    detected_free(&d);

    /* NULL options mean the defaults: the 10 minute stop is found. */
    drive_stop_drive(&r, true);
    trips_detect(r.p, r.n, NULL, &d.trips, &d.n_trips, &d.stops, &d.n_stops);
    assert_int_equal(d.n_trips, 2);
    assert_int_equal(d.n_stops, 1);
    detected_free(&d);
}

/* ------------------------------------------------------------------ trip / stop exports */

static void test_trips_export(void **state)
{
    (void)state;
    static struct route r;
    drive_stop_drive(&r, true);
    struct detected d = detect(r.p, r.n);
    assert_int_equal(d.n_trips, 2);
    struct buf b = {0};

    export_trips(&b, EXPORT_JSON, "veh-1", r.p, d.trips, d.n_trips);
    json_t *root = parse_json(&b);
    expect_json_str(root, "device", "veh-1");
    json_t *list = json_object_get(root, "trips");
    assert_int_equal(json_array_size(list), 2);
    json_t *t0 = json_array_get(list, 0);
    expect_json_str(t0, "start_time", "2026-01-01T00:00:00Z");
    expect_json_str(t0, "end_time", "2026-01-01T00:10:00Z");
    expect_json_num(t0, "duration_s", 600, 0);
    expect_json_num(t0, "start_lat", 52.0, 1e-9);
    expect_json_num(t0, "start_lon", 13.0, 1e-9);
    expect_json_num(t0, "end_lat", 52.0 + 10000 / M_PER_DEG, 1e-6);
    expect_json_num(t0, "distance_m", 10000, 100);
    expect_json_num(t0, "max_speed_kmh", 60, 1e-9);
    expect_json_num(t0, "avg_speed_kmh", 60, 0.6);
    expect_json_str(json_array_get(list, 1), "start_time", "2026-01-01T00:20:00Z");
    json_decref(root);

    b.len = 0;
    export_trips(&b, EXPORT_CSV, "veh-1", r.p, d.trips, d.n_trips);
    struct csv_table *t = calloc(1, sizeof *t);
    assert_non_null(t);
    assert_true(csv_read(&b, t));
    assert_int_equal(t->rows, 3);
    assert_int_equal(t->cols[0], 11);
    assert_int_equal(t->cols[2], 11);
    assert_string_equal(t->field[0][3], "duration_s");
    assert_string_equal(t->field[1][0], "veh-1");
    assert_string_equal(t->field[1][3], "600");
    assert_string_equal(t->field[2][1], "2026-01-01T00:20:00Z");
    assert_string_equal(t->field[2][3], "300");
    free(t);

    /* GPX: a track per trip from its rows — 61 fixes (0..60) and 31 (120..150). */
    b.len = 0;
    export_trips(&b, EXPORT_GPX, "veh-1", r.p, d.trips, d.n_trips);
    const char *text = buf_text(&b);
    assert_true(xml_well_formed(text));
    assert_int_equal(count_substr(text, "<trk>"), 2);
    assert_int_equal(count_substr(text, "<trkpt "), 92);
    assert_non_null(strstr(text, "<name>trip 2</name>"));

    b.len = 0;
    export_trips(&b, EXPORT_GEOJSON, "veh-1", r.p, d.trips, d.n_trips);
    root = parse_json(&b);
    json_t *features = json_object_get(root, "features");
    assert_int_equal(json_array_size(features), 2);
    json_t *geometry = json_object_get(json_array_get(features, 0), "geometry");
    expect_json_str(geometry, "type", "LineString");
    json_t *line = json_object_get(geometry, "coordinates");
    assert_int_equal(json_array_size(line), 61);
    assert_true(fabs(json_number_value(json_array_get(json_array_get(line, 0), 0)) - 13.0) < 1e-9);
    assert_true(fabs(json_number_value(json_array_get(json_array_get(line, 0), 1)) - 52.0) < 1e-9);
    json_t *props = json_object_get(json_array_get(features, 1), "properties");
    expect_json_num(props, "distance_m", 5000, 50);
    expect_json_str(props, "device", "veh-1");
    json_decref(root);

    /* Unknown maximum speed is null. */
    d.trips[0].max_speed_kmh = NAN;
    b.len = 0;
    export_trips(&b, EXPORT_JSON, "veh-1", r.p, d.trips, 1);
    root = parse_json(&b);
    expect_json_null(json_array_get(json_object_get(root, "trips"), 0), "max_speed_kmh");
    json_decref(root);
    buf_free(&b);
    detected_free(&d);
}

static void test_stops_export(void **state)
{
    (void)state;
    static struct route r;
    drive_stop_drive(&r, true);
    struct detected d = detect(r.p, r.n);
    assert_int_equal(d.n_stops, 1);
    double stop_lat = 52.0 + 10000 / M_PER_DEG; /* 52.0899321 */
    struct buf b = {0};

    export_stops(&b, EXPORT_JSON, "veh<1>", d.stops, d.n_stops);
    json_t *root = parse_json(&b);
    expect_json_str(root, "device", "veh<1>");
    json_t *s = json_array_get(json_object_get(root, "stops"), 0);
    expect_json_str(s, "start_time", "2026-01-01T00:10:00Z");
    expect_json_str(s, "end_time", "2026-01-01T00:20:00Z");
    expect_json_num(s, "duration_s", 600, 0);
    expect_json_num(s, "lat", stop_lat, 1e-6);
    expect_json_num(s, "lon", 13.0, 1e-9);
    json_decref(root);

    b.len = 0;
    export_stops(&b, EXPORT_CSV, "veh<1>", d.stops, d.n_stops);
    assert_string_equal(buf_text(&b), "device,start_time,end_time,duration_s,lat,lon\r\n"
                                      "veh<1>,2026-01-01T00:10:00Z,2026-01-01T00:20:00Z,600,"
                                      "52.089932,13\r\n");

    b.len = 0;
    export_stops(&b, EXPORT_GPX, "veh<1>", d.stops, d.n_stops);
    const char *text = buf_text(&b);
    assert_true(xml_well_formed(text));
    assert_int_equal(count_substr(text, "<wpt "), 1);
    assert_non_null(strstr(text, "<wpt lat=\"52.089932\" lon=\"13\">"
                                 "<time>2026-01-01T00:10:00Z</time><name>stop 1</name>"));

    b.len = 0;
    export_stops(&b, EXPORT_GEOJSON, "veh<1>", d.stops, d.n_stops);
    root = parse_json(&b);
    json_t *f = json_array_get(json_object_get(root, "features"), 0);
    json_t *coords = json_object_get(json_object_get(f, "geometry"), "coordinates");
    assert_true(fabs(json_number_value(json_array_get(coords, 0)) - 13.0) < 1e-9);
    assert_true(fabs(json_number_value(json_array_get(coords, 1)) - stop_lat) < 1e-6);
    expect_json_num(json_object_get(f, "properties"), "duration_s", 600, 0);
    json_decref(root);
    buf_free(&b);
    detected_free(&d);
}

/* The test's own checkers must reject what they are meant to catch. */
static void test_checkers(void **state)
{
    (void)state;
    assert_true(xml_well_formed("<?xml version=\"1.0\"?>\n<a><b x=\"1&amp;\">t</b></a>\n"));
    assert_false(xml_well_formed("<a><b>a<b&c</b></a>"));
    assert_false(xml_well_formed("<a><b>x & y</b></a>"));
    assert_false(xml_well_formed("<a><b></a></b>"));
    assert_false(xml_well_formed("<a x=\"<\"></a>"));
    struct csv_table *t = calloc(1, sizeof *t);
    assert_non_null(t);
    struct buf b = {0};
    buf_append_str(&b, "a,\"b,\"\"c\"\"\"\r\n,\r\n");
    assert_true(csv_read(&b, t));
    assert_int_equal(t->rows, 2);
    assert_string_equal(t->field[0][1], "b,\"c\"");
    assert_int_equal(t->cols[1], 2);
    b.len = 0;
    buf_append_str(&b, "a,b\n");
    assert_false(csv_read(&b, t));
    b.len = 0;
    buf_append_str(&b, "a,b\"c\r\n");
    assert_false(csv_read(&b, t));
    buf_free(&b);
    free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_checkers),
        cmocka_unit_test(test_format_parse),
        cmocka_unit_test(test_distance),
        cmocka_unit_test(test_positions_json),
        cmocka_unit_test(test_positions_csv),
        cmocka_unit_test(test_positions_gpx),
        cmocka_unit_test(test_positions_geojson),
        cmocka_unit_test(test_events_json),
        cmocka_unit_test(test_events_csv),
        cmocka_unit_test(test_events_gpx),
        cmocka_unit_test(test_events_geojson),
        cmocka_unit_test(test_trips_drive_stop_drive),
        cmocka_unit_test(test_trips_nan_speeds),
        cmocka_unit_test(test_trips_ignore_invalid),
        cmocka_unit_test(test_trips_parked_jitter),
        cmocka_unit_test(test_trips_glitch_joins_stops),
        cmocka_unit_test(test_trips_never_stops),
        cmocka_unit_test(test_trips_short_stop),
        cmocka_unit_test(test_trips_degenerate),
        cmocka_unit_test(test_trips_export),
        cmocka_unit_test(test_stops_export),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
