/* geo.c — geofence geometry (geo.h).
 *
 * Containment: circles by the haversine distance to the centre; polygons by ray casting in
 * the lat/lon plane (a point on an edge is inside); corridors by the distance to a polyline
 * whose segments are straight in the lat/lon plane (as polygon edges are), the nearest point
 * found in an equirectangular projection centred on the queried point and then measured by
 * haversine, so the answer is exact up to the choice of nearest point.
 *
 * Index: a static R-tree packed by sort-tile-recursive (STR) over the fences' bounding
 * boxes. All nodes live in one array, each with a box and a run of consecutive children
 * (fences for a leaf, nodes otherwise); the root is the last node. A query walks it with a
 * fixed-size stack and allocates nothing.
 *
 * Invariant the index rests on: geo_bbox holds every point geo_contains accepts.
 */
#include "geo.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/err.h"
#include "../core/mem.h"

#define DEG (M_PI / 180.0)
/* An edge passing closer than this (degrees, about 0.1 µm) to a point touches it. */
#define ON_EDGE_DEG 1e-12
/* Points within this of one line (degrees, about 0.1 mm) make a polygon without area. */
#define COLLINEAR_DEG 1e-9

static const char *const shape_names[] = {NULL, "circle", "polygon", "corridor"};

int geo_shape_by_name(const char *name)
{
    for (int s = GEO_CIRCLE; name && s <= GEO_CORRIDOR; s++)
        if (strcmp(name, shape_names[s]) == 0)
            return s;
    return 0;
}

const char *geo_shape_name(int shape)
{
    return shape >= GEO_CIRCLE && shape <= GEO_CORRIDOR ? shape_names[shape] : NULL;
}

double geo_distance_m(struct geo_point a, struct geo_point b)
{
    double s = sin((b.lat - a.lat) * DEG / 2), t = sin((b.lon - a.lon) * DEG / 2);
    double h = s * s + cos(a.lat * DEG) * cos(b.lat * DEG) * t * t;
    return 2 * GEO_EARTH_RADIUS_M * asin(sqrt(fmin(1.0, h)));
}

/* ---- containment -------------------------------------------------------- */

/* > 0 when c lies left of a→b (lat as y, lon as x). */
static double orient(struct geo_point a, struct geo_point b, struct geo_point c)
{
    return (b.lon - a.lon) * (c.lat - a.lat) - (b.lat - a.lat) * (c.lon - a.lon);
}

static bool in_span(double v, double a, double b)
{
    return a <= b ? v >= a && v <= b : v >= b && v <= a;
}

/* p within a→b's box: with orient(a, b, p) == 0 (or nearly), p is on the segment. */
static bool in_seg_box(struct geo_point a, struct geo_point b, struct geo_point p)
{
    return in_span(p.lat, a.lat, b.lat) && in_span(p.lon, a.lon, b.lon);
}

static bool polygon_contains(const struct geo_fence *f, struct geo_point p)
{
    bool in = false;
    for (size_t i = 0, j = f->n - 1; i < f->n; j = i++) {
        struct geo_point a = f->pts[j], b = f->pts[i];
        /* Inside the edge's own box only, so the polygon's box holds every boundary hit. */
        double len = fabs(b.lon - a.lon) + fabs(b.lat - a.lat);
        if (fabs(orient(a, b, p)) <= ON_EDGE_DEG * len && in_seg_box(a, b, p))
            return true;
        if ((a.lat > p.lat) != (b.lat > p.lat)) {
            double x = a.lon + (p.lat - a.lat) * (b.lon - a.lon) / (b.lat - a.lat);
            if (p.lon < x)
                in = !in;
        }
    }
    return in;
}

static bool corridor_contains(const struct geo_fence *f, struct geo_point p)
{
    /* A point q within radius_m of p (angular d) differs from it by at most d in latitude and
     * asin(sin d / cos lat(p)) in longitude: segments whose box is farther are skipped
     * without arithmetic (most of them, for a fence that is a candidate by its box only). */
    double d = f->radius_m / GEO_EARTH_RADIUS_M, cos_lat = cos(p.lat * DEG);
    double s = sin(d) / cos_lat;
    double dlat = d / DEG * (1 + 1e-9) + 1e-12;
    double dlon = s >= 1 ? 360.0 : asin(s) / DEG * (1 + 1e-9) + 1e-12;
    double lat0 = p.lat - dlat, lat1 = p.lat + dlat, lon0 = p.lon - dlon, lon1 = p.lon + dlon;
    /* Metres per degree around p: exact at p, so the nearest segment is found reliably;
     * the distance itself is then measured on the sphere. */
    double ky = GEO_EARTH_RADIUS_M * DEG, kx = ky * cos_lat;
    double best = INFINITY, best_t = 0;
    size_t best_i = 0;
    for (size_t i = 1; i < f->n; i++) {
        struct geo_point a = f->pts[i - 1], b = f->pts[i];
        if ((a.lat < lat0 && b.lat < lat0) || (a.lat > lat1 && b.lat > lat1) ||
            (a.lon < lon0 && b.lon < lon0) || (a.lon > lon1 && b.lon > lon1))
            continue;
        double ax = (a.lon - p.lon) * kx, ay = (a.lat - p.lat) * ky;
        double dx = (b.lon - a.lon) * kx, dy = (b.lat - a.lat) * ky, len2 = dx * dx + dy * dy;
        double t = len2 > 0 ? -(ax * dx + ay * dy) / len2 : 0;
        t = t > 0 ? t : 0;
        t = t < 1 ? t : 1;
        double cx = ax + t * dx, cy = ay + t * dy, d2 = cx * cx + cy * cy;
        bool nearer = d2 < best;
        best = nearer ? d2 : best;
        best_t = nearer ? t : best_t;
        best_i = nearer ? i - 1 : best_i;
    }
    if (best == INFINITY)
        return false;
    struct geo_point a = f->pts[best_i], b = f->pts[best_i + 1];
    struct geo_point q = {a.lat + best_t * (b.lat - a.lat), a.lon + best_t * (b.lon - a.lon)};
    return geo_distance_m(p, q) <= f->radius_m;
}

bool geo_contains(const struct geo_fence *f, struct geo_point p)
{
    if (f->n == 0)
        return false;
    switch (f->shape) {
    case GEO_CIRCLE: return geo_distance_m(p, f->pts[0]) <= f->radius_m;
    case GEO_POLYGON: return f->n >= 3 && polygon_contains(f, p);
    case GEO_CORRIDOR: return f->n >= 2 && corridor_contains(f, p);
    default: return false;
    }
}

/* ---- bounding boxes ----------------------------------------------------- */

/* The box before clamping: it may pass a pole or ±180°, which geo_validate refuses. */
static void bbox_raw(const struct geo_fence *f, struct geo_point *min, struct geo_point *max)
{
    *min = *max = f->pts[0];
    for (size_t i = 1; i < f->n; i++) {
        min->lat = fmin(min->lat, f->pts[i].lat);
        min->lon = fmin(min->lon, f->pts[i].lon);
        max->lat = fmax(max->lat, f->pts[i].lat);
        max->lon = fmax(max->lon, f->pts[i].lon);
    }
    if (f->shape == GEO_POLYGON)
        return;
    /* Every accepted point is within radius_m of a point q of the box (the centre, or a point
     * of a segment). Around q, latitude moves at most d = radius / R radians; longitude at
     * most asin(sin d / cos lat(q)), widest at the box's most polar latitude. A small margin
     * absorbs rounding. */
    double d = f->radius_m / GEO_EARTH_RADIUS_M;
    double s = sin(d) / cos(fmax(fabs(min->lat), fabs(max->lat)) * DEG);
    double dlat = d / DEG * (1 + 1e-9) + 1e-9;
    double dlon = s >= 1 ? 360.0 : asin(s) / DEG * (1 + 1e-9) + 1e-9;
    min->lat -= dlat;
    max->lat += dlat;
    min->lon -= dlon;
    max->lon += dlon;
}

void geo_bbox(const struct geo_fence *f, struct geo_point *min, struct geo_point *max)
{
    bbox_raw(f, min, max);
    min->lat = fmax(min->lat, -90.0);
    max->lat = fmin(max->lat, 90.0);
    min->lon = fmax(min->lon, -180.0);
    max->lon = fmin(max->lon, 180.0);
}

/* ---- validation --------------------------------------------------------- */

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (errlen)
        vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return ST_EMALFORMED;
}

/* All vertices within COLLINEAR_DEG of the line through p[0] and the vertex farthest from it. */
static bool collinear(const struct geo_point *p, size_t n)
{
    size_t k = 0;
    double far = 0;
    for (size_t i = 1; i < n; i++) {
        double dy = p[i].lat - p[0].lat, dx = p[i].lon - p[0].lon;
        if (dx * dx + dy * dy > far) {
            far = dx * dx + dy * dy;
            k = i;
        }
    }
    for (size_t i = 1; i < n; i++)
        if (fabs(orient(p[0], p[k], p[i])) > COLLINEAR_DEG * sqrt(far))
            return false;
    return true;
}

/* Edges i (p[i]→p[i+1]) and j of a polygon, whose boxes overlap, meet where they should not:
 * adjacent edges when they fold back over each other, others when they touch at all. */
static bool edges_meet(const struct geo_point *p, size_t n, size_t i, size_t j)
{
    struct geo_point a = p[i], b = p[(i + 1) % n], c = p[j], d = p[(j + 1) % n];
    if (j == (i + 1) % n) /* b == c */
        return orient(a, b, d) == 0 &&
               (a.lat - b.lat) * (d.lat - b.lat) + (a.lon - b.lon) * (d.lon - b.lon) > 0;
    if (i == (j + 1) % n) /* d == a */
        return orient(c, a, b) == 0 &&
               (c.lat - a.lat) * (b.lat - a.lat) + (c.lon - a.lon) * (b.lon - a.lon) > 0;
    double d1 = orient(c, d, a), d2 = orient(c, d, b), d3 = orient(a, b, c), d4 = orient(a, b, d);
    if (((d1 > 0 && d2 < 0) || (d1 < 0 && d2 > 0)) && ((d3 > 0 && d4 < 0) || (d3 < 0 && d4 > 0)))
        return true;
    return (d1 == 0 && in_seg_box(c, d, a)) || (d2 == 0 && in_seg_box(c, d, b)) ||
           (d3 == 0 && in_seg_box(a, b, c)) || (d4 == 0 && in_seg_box(a, b, d));
}

struct sweep_edge {
    double lo, hi;   /* extent along the sweep axis */
    double olo, ohi; /* and along the other */
    size_t i;
};

static int sweep_cmp(const void *x, const void *y)
{
    const struct sweep_edge *a = x, *b = y;
    if (a->lo != b->lo)
        return a->lo < b->lo ? -1 : 1;
    return a->i < b->i ? -1 : a->i > b->i;
}

/* Find two edges that meet: a sweep along one axis tests only the pairs whose extents overlap
 * on it (the axis along which edges are shorter relative to the polygon, so fewer overlap).
 * O(n log n + pairs overlapping on the axis); true with *e1 < *e2 when found. */
static bool polygon_crossing(const struct geo_point *p, size_t n, size_t *e1, size_t *e2)
{
    double span_lat = 0, span_lon = 0, lat0 = p[0].lat, lat1 = p[0].lat, lon0 = p[0].lon,
           lon1 = p[0].lon;
    for (size_t i = 0; i < n; i++) {
        struct geo_point a = p[i], b = p[(i + 1) % n];
        span_lat += fabs(b.lat - a.lat);
        span_lon += fabs(b.lon - a.lon);
        lat0 = fmin(lat0, a.lat), lat1 = fmax(lat1, a.lat);
        lon0 = fmin(lon0, a.lon), lon1 = fmax(lon1, a.lon);
    }
    bool by_lat = span_lat * (lon1 - lon0) < span_lon * (lat1 - lat0);
    struct sweep_edge *ev = st_malloc(n * sizeof *ev);
    for (size_t i = 0; i < n; i++) {
        struct geo_point a = p[i], b = p[(i + 1) % n];
        double u = by_lat ? a.lat : a.lon, v = by_lat ? b.lat : b.lon;
        double ou = by_lat ? a.lon : a.lat, ov = by_lat ? b.lon : b.lat;
        ev[i] = (struct sweep_edge){fmin(u, v), fmax(u, v), fmin(ou, ov), fmax(ou, ov), i};
    }
    qsort(ev, n, sizeof *ev, sweep_cmp);
    bool found = false;
    for (size_t k = 0; k < n && !found; k++)
        for (size_t m = k + 1; m < n && ev[m].lo <= ev[k].hi; m++)
            if (ev[m].olo <= ev[k].ohi && ev[m].ohi >= ev[k].olo &&
                edges_meet(p, n, ev[k].i, ev[m].i)) {
                *e1 = ev[k].i < ev[m].i ? ev[k].i : ev[m].i;
                *e2 = ev[k].i < ev[m].i ? ev[m].i : ev[k].i;
                found = true;
                break;
            }
    st_free(ev);
    return found;
}

int geo_validate(const struct geo_fence *f, char *err, size_t errlen)
{
    const char *name = geo_shape_name(f->shape);
    if (!name)
        return fail(err, errlen, "unknown shape");
    if (f->shape == GEO_CIRCLE && f->n != 1)
        return fail(err, errlen, "a circle has exactly one point, its centre");
    size_t least = f->shape == GEO_CIRCLE ? 1 : f->shape == GEO_POLYGON ? 3 : 2;
    if (f->n < least)
        return fail(err, errlen, "a %s needs at least %zu points", name, least);
    if (f->n > GEO_POINTS_MAX)
        return fail(err, errlen, "a %s has at most %d points", name, GEO_POINTS_MAX);
    for (size_t i = 0; i < f->n; i++) {
        char where[32];
        if (f->shape == GEO_CIRCLE)
            snprintf(where, sizeof where, "centre");
        else
            snprintf(where, sizeof where, "point %zu", i);
        if (!(f->pts[i].lat >= -90 && f->pts[i].lat <= 90))
            return fail(err, errlen, "%s: latitude %g is outside -90..90", where, f->pts[i].lat);
        if (!(f->pts[i].lon >= -180 && f->pts[i].lon <= 180))
            return fail(err, errlen, "%s: longitude %g is outside -180..180", where, f->pts[i].lon);
    }
    for (size_t i = 1; i < f->n; i++)
        if (f->pts[i].lat == f->pts[i - 1].lat && f->pts[i].lon == f->pts[i - 1].lon)
            return fail(err, errlen, "points %zu and %zu are the same", i - 1, i);
    if (f->shape == GEO_POLYGON && f->pts[f->n - 1].lat == f->pts[0].lat &&
        f->pts[f->n - 1].lon == f->pts[0].lon)
        return fail(err, errlen,
                    "points %zu and 0 are the same (a polygon closes by itself: do not repeat "
                    "the first point)",
                    f->n - 1);
    if (f->shape != GEO_POLYGON) {
        const char *what = f->shape == GEO_CIRCLE ? "radius" : "width";
        if (!(f->radius_m > 0))
            return fail(err, errlen, "%s must be > 0", what);
        if (f->radius_m > GEO_RADIUS_MAX_M)
            return fail(err, errlen, "%s must be at most %.0f m", what, GEO_RADIUS_MAX_M);
    }
    struct geo_point min, max;
    bbox_raw(f, &min, &max);
    if (min.lat < -90 || max.lat > 90)
        return fail(err, errlen, "%s reaches over a pole", name);
    if (max.lat - min.lat > GEO_EXTENT_MAX_DEG)
        return fail(err, errlen, "%s spans %.1f° of latitude; at most %g", name, max.lat - min.lat,
                    GEO_EXTENT_MAX_DEG);
    if (max.lon - min.lon > GEO_EXTENT_MAX_DEG)
        return fail(err, errlen, "%s spans %.1f° of longitude; at most %g", name, max.lon - min.lon,
                    GEO_EXTENT_MAX_DEG);
    if (min.lon < -180 || max.lon > 180)
        return fail(err, errlen, "%s crosses longitude ±180", name);
    if (f->shape != GEO_POLYGON)
        return 0;
    if (collinear(f->pts, f->n))
        return fail(err, errlen, "polygon has zero area (its points are on one line)");
    size_t e1, e2;
    if (polygon_crossing(f->pts, f->n, &e1, &e2))
        return fail(err, errlen, "polygon edges %zu-%zu and %zu-%zu cross", e1, (e1 + 1) % f->n, e2,
                    (e2 + 1) % f->n);
    return 0;
}

/* ---- the index ---------------------------------------------------------- */

#define FANOUT 16
/* A walk keeps at most FANOUT pending nodes per level; fewer than 2^32 fences make at most
 * 8 levels of nodes (16^8 = 2^32). */
#define STACK_MAX (FANOUT * 8)

struct box {
    double lat0, lon0, lat1, lon1;
};

struct node {
    struct box b;
    uint32_t first; /* first child: an entry (leaf) or a node */
    uint16_t count;
    bool leaf;
};

struct geo_index {
    struct geo_fence *fences; /* as given, pts pointing into pts */
    struct geo_point *pts;
    size_t n;
    struct box *entry_box; /* the fences' boxes in STR order ... */
    uint32_t *entry_pos;   /* ... and their positions in fences */
    struct node *nodes;    /* leaves first, each level after the one it packs; root last */
    size_t n_nodes;
};

struct str_key {
    double key;
    uint32_t i;
};

static int key_cmp(const void *x, const void *y)
{
    const struct str_key *a = x, *b = y;
    if (a->key != b->key)
        return a->key < b->key ? -1 : 1;
    return a->i < b->i ? -1 : a->i > b->i;
}

/* Sort-tile-recursive order of boxes b[0..m): slices of about sqrt(m / FANOUT) tiles by
 * centre longitude, each slice by centre latitude, so that each run of FANOUT in the order
 * is a compact tile. keys: scratch of m. */
static void str_order(const struct box *b, size_t m, struct str_key *keys, uint32_t *order)
{
    for (size_t i = 0; i < m; i++)
        keys[i] = (struct str_key){(b[i].lon0 + b[i].lon1) / 2, (uint32_t)i};
    qsort(keys, m, sizeof *keys, key_cmp);
    size_t tiles = (m + FANOUT - 1) / FANOUT;
    size_t slices = (size_t)ceil(sqrt((double)tiles));
    size_t per_slice = (tiles + slices - 1) / slices * FANOUT;
    for (size_t s = 0; s < m; s += per_slice) {
        size_t e = s + per_slice < m ? s + per_slice : m;
        for (size_t i = s; i < e; i++)
            keys[i].key = (b[keys[i].i].lat0 + b[keys[i].i].lat1) / 2;
        qsort(keys + s, e - s, sizeof *keys, key_cmp);
    }
    for (size_t i = 0; i < m; i++)
        order[i] = keys[i].i;
}

static void box_grow(struct box *into, const struct box *b)
{
    into->lat0 = fmin(into->lat0, b->lat0);
    into->lon0 = fmin(into->lon0, b->lon0);
    into->lat1 = fmax(into->lat1, b->lat1);
    into->lon1 = fmax(into->lon1, b->lon1);
}

static bool box_has(const struct box *b, struct geo_point p)
{
    return p.lat >= b->lat0 && p.lat <= b->lat1 && p.lon >= b->lon0 && p.lon <= b->lon1;
}

/* Append the nodes packing m children from first on (entries when leaf, else nodes), by
 * runs of FANOUT. */
static void pack(struct geo_index *ix, size_t first, size_t m, bool leaf)
{
    for (size_t c = 0; c < m; c += FANOUT) {
        struct node *nd = &ix->nodes[ix->n_nodes++];
        nd->first = (uint32_t)(first + c);
        nd->count = (uint16_t)(m - c < FANOUT ? m - c : FANOUT);
        nd->leaf = leaf;
        nd->b = leaf ? ix->entry_box[nd->first] : ix->nodes[nd->first].b;
        for (size_t k = 1; k < nd->count; k++)
            box_grow(&nd->b, leaf ? &ix->entry_box[nd->first + k] : &ix->nodes[nd->first + k].b);
    }
}

struct geo_index *geo_index_build(const struct geo_fence *fences, size_t n)
{
    struct geo_index *ix = st_calloc(1, sizeof *ix);
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += fences[i].n;
    ix->n = n;
    ix->fences = st_malloc(n * sizeof *ix->fences);
    ix->pts = st_malloc(total * sizeof *ix->pts);
    for (size_t i = 0, used = 0; i < n; i++) {
        ix->fences[i] = fences[i];
        memcpy(ix->pts + used, fences[i].pts, fences[i].n * sizeof *ix->pts);
        ix->fences[i].pts = ix->pts + used;
        used += fences[i].n;
    }
    if (n == 0)
        return ix;

    size_t n_nodes = 0;
    for (size_t m = n; m > 1 || n_nodes == 0;) {
        m = (m + FANOUT - 1) / FANOUT;
        n_nodes += m;
    }
    ix->nodes = st_malloc(n_nodes * sizeof *ix->nodes);
    ix->entry_box = st_malloc(n * sizeof *ix->entry_box);
    ix->entry_pos = st_malloc(n * sizeof *ix->entry_pos);
    struct box *boxes = st_malloc(n * sizeof *boxes);
    struct str_key *keys = st_malloc(n * sizeof *keys);
    uint32_t *order = st_malloc(n * sizeof *order);
    struct node *level = st_malloc((n + FANOUT - 1) / FANOUT * sizeof *level);

    for (size_t i = 0; i < n; i++) {
        struct geo_point min, max;
        geo_bbox(&fences[i], &min, &max);
        boxes[i] = (struct box){min.lat, min.lon, max.lat, max.lon};
    }
    str_order(boxes, n, keys, order);
    for (size_t k = 0; k < n; k++) {
        ix->entry_pos[k] = order[k];
        ix->entry_box[k] = boxes[order[k]];
    }
    pack(ix, 0, n, true);
    /* Each level of nodes is itself put in STR order (its children stay where they are)
     * before the next level packs it. */
    for (size_t lo = 0, hi = ix->n_nodes; hi - lo > 1; lo = hi, hi = ix->n_nodes) {
        size_t m = hi - lo;
        for (size_t k = 0; k < m; k++)
            boxes[k] = ix->nodes[lo + k].b;
        str_order(boxes, m, keys, order);
        for (size_t k = 0; k < m; k++)
            level[k] = ix->nodes[lo + order[k]];
        memcpy(ix->nodes + lo, level, m * sizeof *level);
        pack(ix, lo, m, false);
    }
    st_free(boxes);
    st_free(keys);
    st_free(order);
    st_free(level);
    return ix;
}

void geo_index_free(struct geo_index *ix)
{
    if (!ix)
        return;
    st_free(ix->fences);
    st_free(ix->pts);
    st_free(ix->entry_box);
    st_free(ix->entry_pos);
    st_free(ix->nodes);
    st_free(ix);
}

size_t geo_index_size(const struct geo_index *ix)
{
    return ix ? ix->n : 0;
}

/* Keep out[0..min(hits, cap)) the smallest positions found so far, in increasing order. */
static void add_hit(uint32_t *out, size_t cap, size_t hits, uint32_t pos)
{
    size_t k = hits < cap ? hits : cap;
    if (k == cap && (cap == 0 || pos > out[cap - 1]))
        return;
    if (k == cap)
        k--;
    while (k > 0 && out[k - 1] > pos) {
        out[k] = out[k - 1];
        k--;
    }
    out[k] = pos;
}

size_t geo_index_query(const struct geo_index *ix, struct geo_point p, uint32_t *out, size_t cap)
{
    if (!ix || ix->n_nodes == 0)
        return 0;
    uint32_t stack[STACK_MAX];
    size_t top = 0, hits = 0;
    stack[top++] = (uint32_t)(ix->n_nodes - 1);
    while (top) {
        const struct node *nd = &ix->nodes[stack[--top]];
        for (uint32_t c = nd->first; c < nd->first + nd->count; c++) {
            if (!nd->leaf) {
                if (box_has(&ix->nodes[c].b, p))
                    stack[top++] = c;
            } else if (box_has(&ix->entry_box[c], p) &&
                       geo_contains(&ix->fences[ix->entry_pos[c]], p))
                add_hit(out, cap, hits++, ix->entry_pos[c]);
        }
    }
    return hits;
}
