/* geo_test.c — geofence geometry: distances, containment of each shape (boundaries, concave
 * polygons, corridor ends and elbows, wide corridors against a sampled reference), every
 * validation message, bounding boxes, and the R-tree against a brute-force scan. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../../bench/geo_gen.h"
#include "../../../src/core/err.h"
#include "../../../src/domain/geo.h"

#define DEG (M_PI / 180)

/* The point d metres from p along the great circle of initial bearing b (degrees). */
static struct geo_point destination(struct geo_point p, double b, double d)
{
    double phi = p.lat * DEG, lam = p.lon * DEG, delta = d / GEO_EARTH_RADIUS_M, th = b * DEG;
    double phi2 = asin(sin(phi) * cos(delta) + cos(phi) * sin(delta) * cos(th));
    double lam2 = lam + atan2(sin(th) * sin(delta) * cos(phi), cos(delta) - sin(phi) * sin(phi2));
    return (struct geo_point){phi2 / DEG, lam2 / DEG};
}

static struct geo_fence fence(int shape, const struct geo_point *pts, size_t n, double r)
{
    return (struct geo_fence){.id = 1, .shape = (uint8_t)shape, .radius_m = r, .pts = pts, .n = n};
}

static void test_distance(void **state)
{
    (void)state;
    struct geo_point paris = {48.8566, 2.3522}, london = {51.5074, -0.1278};
    double d = geo_distance_m(paris, london);
    assert_true(fabs(d - 343500) < 343500 * 0.005);
    assert_true(fabs(geo_distance_m(london, paris) - d) < 1e-6);
    /* a degree of latitude: R * pi / 180 = 111,195.08 m */
    assert_true(fabs(geo_distance_m((struct geo_point){10, 20}, (struct geo_point){11, 20}) -
                     111195.08) < 0.01);
    assert_true(geo_distance_m(paris, paris) == 0);
    /* antipodes: half the circumference */
    assert_true(fabs(geo_distance_m((struct geo_point){0, 0}, (struct geo_point){0, 180}) -
                     M_PI * GEO_EARTH_RADIUS_M) < 0.01);
    /* the destination helper the other tests use agrees with the distance */
    for (int b = 0; b < 360; b += 15)
        assert_true(fabs(geo_distance_m(paris, destination(paris, b, 12345)) - 12345) < 1e-4);
}

static void test_shape_names(void **state)
{
    (void)state;
    assert_int_equal(geo_shape_by_name("circle"), GEO_CIRCLE);
    assert_int_equal(geo_shape_by_name("polygon"), GEO_POLYGON);
    assert_int_equal(geo_shape_by_name("corridor"), GEO_CORRIDOR);
    assert_int_equal(geo_shape_by_name("square"), 0);
    assert_int_equal(geo_shape_by_name(""), 0);
    assert_int_equal(geo_shape_by_name(NULL), 0);
    assert_string_equal(geo_shape_name(GEO_CORRIDOR), "corridor");
    assert_null(geo_shape_name(0));
    assert_null(geo_shape_name(4));
}

static void test_circle(void **state)
{
    (void)state;
    struct geo_point c = {45, 7};
    struct geo_fence f = fence(GEO_CIRCLE, &c, 1, 1000);
    assert_true(geo_contains(&f, c));
    for (int b = 0; b < 360; b += 30) {
        assert_true(geo_contains(&f, destination(c, b, 999.99)));
        assert_false(geo_contains(&f, destination(c, b, 1000.01)));
    }
    /* 500 km at 60° north: still exact to the centimetre */
    struct geo_point n = {60, 20};
    f = fence(GEO_CIRCLE, &n, 1, 500000);
    for (int b = 0; b < 360; b += 45) {
        assert_true(geo_contains(&f, destination(n, b, 499999.99)));
        assert_false(geo_contains(&f, destination(n, b, 500000.01)));
    }
}

static void test_polygon(void **state)
{
    (void)state;
    const struct geo_point square[] = {{0, 0}, {0, 1}, {1, 1}, {1, 0}};
    struct geo_fence f = fence(GEO_POLYGON, square, 4, 0);
    assert_true(geo_contains(&f, (struct geo_point){0.5, 0.5}));
    assert_false(geo_contains(&f, (struct geo_point){1.5, 0.5}));
    assert_false(geo_contains(&f, (struct geo_point){0.5, -0.5}));
    /* the boundary is inside: vertices and every edge */
    for (int i = 0; i < 4; i++)
        assert_true(geo_contains(&f, square[i]));
    assert_true(geo_contains(&f, (struct geo_point){0, 0.5}));
    assert_true(geo_contains(&f, (struct geo_point){1, 0.5}));
    assert_true(geo_contains(&f, (struct geo_point){0.5, 0}));
    assert_true(geo_contains(&f, (struct geo_point){0.5, 1}));
    assert_false(geo_contains(&f, (struct geo_point){-1e-9, 0.5}));
    assert_false(geo_contains(&f, (struct geo_point){0.5, 1 + 1e-9}));

    /* a U opening east (lat up, lon right): the notch is outside */
    const struct geo_point u[] = {{0, 0}, {3, 0}, {3, 3}, {2, 3}, {2, 1}, {1, 1}, {1, 3}, {0, 3}};
    f = fence(GEO_POLYGON, u, 8, 0);
    assert_true(geo_contains(&f, (struct geo_point){2.5, 2}));   /* upper arm */
    assert_true(geo_contains(&f, (struct geo_point){0.5, 2}));   /* lower arm */
    assert_true(geo_contains(&f, (struct geo_point){1.5, 0.5})); /* base */
    assert_false(geo_contains(&f, (struct geo_point){1.5, 2}));  /* notch */
    assert_false(geo_contains(&f, (struct geo_point){1.5, 3}));  /* notch mouth: no edge */
    assert_true(geo_contains(&f, (struct geo_point){2, 2}));     /* notch's edge */
    assert_true(geo_contains(&f, (struct geo_point){1.5, 1}));   /* notch's end */
    /* rays through vertices (same latitude as the notch's corners) */
    assert_true(geo_contains(&f, (struct geo_point){2, 0.5}));
    assert_true(geo_contains(&f, (struct geo_point){1, 0.5}));
    assert_false(geo_contains(&f, (struct geo_point){2, -1}));
    assert_false(geo_contains(&f, (struct geo_point){1, 4}));
    assert_false(geo_contains(&f, (struct geo_point){3, -0.5}));

    /* a slanted edge's midpoint is on the boundary */
    const struct geo_point tri[] = {{0, 0}, {1, 3}, {2, 0}};
    f = fence(GEO_POLYGON, tri, 3, 0);
    assert_true(geo_contains(&f, (struct geo_point){0.5, 1.5}));
    assert_true(geo_contains(&f, (struct geo_point){1, 1}));
    assert_false(geo_contains(&f, (struct geo_point){0.5, 1.6}));
}

static void test_corridor(void **state)
{
    (void)state;
    /* an L: north along 7°E, then east along 45.1°N; 1 km either side */
    const struct geo_point l[] = {{45.0, 7.0}, {45.1, 7.0}, {45.1, 7.1}};
    struct geo_fence f = fence(GEO_CORRIDOR, l, 3, 1000);
    struct {
        struct geo_point from;
        double bearing;
    } probes[] = {
        {{45.05, 7.0}, 90}, {{45.05, 7.0}, 270}, /* beside the first leg */
        {{45.1, 7.05}, 0},  {{45.1, 7.05}, 180}, /* beside the second */
        {{45.0, 7.0}, 180}, {{45.0, 7.0}, 225},  /* round cap at the start */
        {{45.1, 7.1}, 90},  {{45.1, 7.1}, 45},   /* round cap at the end */
        {{45.1, 7.0}, 315},                      /* the elbow's outer corner: round */
    };
    for (size_t i = 0; i < sizeof probes / sizeof probes[0]; i++) {
        assert_true(geo_contains(&f, destination(probes[i].from, probes[i].bearing, 999)));
        assert_false(geo_contains(&f, destination(probes[i].from, probes[i].bearing, 1001)));
    }
    assert_true(geo_contains(&f, (struct geo_point){45.095, 7.005})); /* inner elbow */
    assert_false(geo_contains(&f, (struct geo_point){45.05, 7.05}));  /* inside the L's angle */

    /* wide corridors: 200 km beside a meridian segment, at 42° and 60° */
    for (double lat = 42; lat <= 60; lat += 18) {
        const struct geo_point m[] = {{lat - 2, 10}, {lat + 2, 10}};
        f = fence(GEO_CORRIDOR, m, 2, 200000);
        struct geo_point mid = {lat, 10};
        for (int b = 90; b <= 270; b += 180) {
            assert_true(geo_contains(&f, destination(mid, b, 199800)));
            assert_false(geo_contains(&f, destination(mid, b, 200200)));
        }
    }
}

/* Distance from p to the lat/lon-straight segment a→b, sampled every 1/20000 of it. */
static double sampled_distance(struct geo_point p, struct geo_point a, struct geo_point b)
{
    double best = INFINITY;
    for (int k = 0; k <= 20000; k++) {
        double t = k / 20000.0;
        struct geo_point q = {a.lat + t * (b.lat - a.lat), a.lon + t * (b.lon - a.lon)};
        best = fmin(best, geo_distance_m(p, q));
    }
    return best;
}

/* Wide corridors (150 km along a diagonal at 50-52°N; 80 km along a three-leg route at 70°N,
 * where a degree of longitude is a third of one of latitude): geo_contains agrees with a
 * sampled haversine reference for every point not within 0.1% of the edge. */
static void test_corridor_wide_reference(void **state)
{
    (void)state;
    const struct geo_point diag[] = {{50, 0}, {52, 4}},
                           north[] = {{69, 10}, {70, 14}, {69.5, 16}, {71, 17}};
    const struct geo_fence fences[] = {fence(GEO_CORRIDOR, diag, 2, 150000),
                                       fence(GEO_CORRIDOR, north, 4, 80000)};
    struct geo_gen g = {42};
    for (size_t k = 0; k < 2; k++) {
        const struct geo_fence *f = &fences[k];
        struct geo_point min, max;
        geo_bbox(f, &min, &max);
        int checked = 0, inside = 0;
        for (int i = 0; i < 300; i++) {
            struct geo_point p = gen_point(&g, min, max);
            double ref = INFINITY;
            for (size_t s = 1; s < f->n; s++)
                ref = fmin(ref, sampled_distance(p, f->pts[s - 1], f->pts[s]));
            if (fabs(ref - f->radius_m) < f->radius_m * 0.001)
                continue;
            assert_int_equal(geo_contains(f, p), ref <= f->radius_m);
            checked++;
            inside += ref <= f->radius_m;
        }
        assert_true(checked > 250 && inside > 50 && inside < checked - 50);
    }
}

static void expect_invalid(const struct geo_fence *f, const char *msg)
{
    char err[160] = "";
    assert_int_equal(geo_validate(f, err, sizeof err), ST_EMALFORMED);
    assert_string_equal(err, msg);
}

static void test_validate(void **state)
{
    (void)state;
    static struct geo_point many[GEO_POINTS_MAX + 1];
    for (size_t i = 0; i < GEO_POINTS_MAX + 1; i++) /* a valid star, 2001 vertices */
        many[i] = (struct geo_point){
            sin(2 * M_PI * (double)i / (GEO_POINTS_MAX + 1)) * (i % 2 ? 1 : 0.5),
            cos(2 * M_PI * (double)i / (GEO_POINTS_MAX + 1)) * (i % 2 ? 1 : 0.5)};
    char err[160];
    struct geo_fence ok = fence(GEO_POLYGON, many, GEO_POINTS_MAX, 0);
    assert_int_equal(geo_validate(&ok, err, sizeof err), 0);

    const struct geo_point c0 = {45, 7}, two[] = {{45, 7}, {45.1, 7}};
    struct geo_fence f = fence(0, &c0, 1, 10);
    expect_invalid(&f, "unknown shape");
    f = fence(GEO_CIRCLE, two, 2, 10);
    expect_invalid(&f, "a circle has exactly one point, its centre");
    f = fence(GEO_POLYGON, two, 2, 0);
    expect_invalid(&f, "a polygon needs at least 3 points");
    f = fence(GEO_CORRIDOR, two, 1, 10);
    expect_invalid(&f, "a corridor needs at least 2 points");
    f = fence(GEO_POLYGON, many, GEO_POINTS_MAX + 1, 0);
    expect_invalid(&f, "a polygon has at most 2000 points");
    f = fence(GEO_CORRIDOR, many, GEO_POINTS_MAX + 1, 10);
    expect_invalid(&f, "a corridor has at most 2000 points");

    const struct geo_point north = {91, 7}, nan_lat = {NAN, 7};
    f = fence(GEO_CIRCLE, &north, 1, 10);
    expect_invalid(&f, "centre: latitude 91 is outside -90..90");
    f = fence(GEO_CIRCLE, &nan_lat, 1, 10);
    expect_invalid(&f, "centre: latitude nan is outside -90..90");
    const struct geo_point west[] = {{45, 7}, {45, -181}};
    f = fence(GEO_CORRIDOR, west, 2, 10);
    expect_invalid(&f, "point 1: longitude -181 is outside -180..180");

    const struct geo_point rep[] = {{0, 0}, {0, 1}, {0, 1}, {1, 1}};
    f = fence(GEO_POLYGON, rep, 4, 0);
    expect_invalid(&f, "points 1 and 2 are the same");
    f = fence(GEO_CORRIDOR, rep, 4, 10);
    expect_invalid(&f, "points 1 and 2 are the same");
    const struct geo_point closed[] = {{0, 0}, {0, 1}, {1, 1}, {0, 0}};
    f = fence(GEO_POLYGON, closed, 4, 0);
    expect_invalid(&f, "points 3 and 0 are the same (a polygon closes by itself: do not repeat "
                       "the first point)");
    f = fence(GEO_CORRIDOR, closed, 4, 10); /* a corridor may end where it started */
    assert_int_equal(geo_validate(&f, err, sizeof err), 0);

    f = fence(GEO_CIRCLE, &c0, 1, 0);
    expect_invalid(&f, "radius must be > 0");
    f = fence(GEO_CIRCLE, &c0, 1, NAN);
    expect_invalid(&f, "radius must be > 0");
    f = fence(GEO_CIRCLE, &c0, 1, GEO_RADIUS_MAX_M + 1);
    expect_invalid(&f, "radius must be at most 500000 m");
    f = fence(GEO_CIRCLE, &c0, 1, GEO_RADIUS_MAX_M);
    assert_int_equal(geo_validate(&f, err, sizeof err), 0);
    f = fence(GEO_CORRIDOR, two, 2, -5);
    expect_invalid(&f, "width must be > 0");
    f = fence(GEO_CORRIDOR, two, 2, 600000);
    expect_invalid(&f, "width must be at most 500000 m");

    const struct geo_point polar = {89.9, 0};
    f = fence(GEO_CIRCLE, &polar, 1, 50000);
    expect_invalid(&f, "circle reaches over a pole");
    const struct geo_point wide[] = {{40, 0}, {40, 35.2}, {41, 10}};
    f = fence(GEO_POLYGON, wide, 3, 0);
    expect_invalid(&f, "polygon spans 35.2° of longitude; at most 20");
    const struct geo_point tall[] = {{20, 0}, {45, 1}, {30, 2}};
    f = fence(GEO_POLYGON, tall, 3, 0);
    expect_invalid(&f, "polygon spans 25.0° of latitude; at most 20");
    /* widening counts: 19.9° of points plus 2 × 100 km */
    const struct geo_point route[] = {{10, 0}, {10, 19.9}};
    f = fence(GEO_CORRIDOR, route, 2, 100000);
    expect_invalid(&f, "corridor spans 21.7° of longitude; at most 20");
    const struct geo_point dateline = {0, 179.99};
    f = fence(GEO_CIRCLE, &dateline, 1, 5000);
    expect_invalid(&f, "circle crosses longitude ±180");

    const struct geo_point line[] = {{0, 0}, {1, 1}, {3, 3}, {2, 2}};
    f = fence(GEO_POLYGON, line, 4, 0);
    expect_invalid(&f, "polygon has zero area (its points are on one line)");
    const struct geo_point bowtie[] = {{0, 0}, {1, 1}, {1, 0}, {0, 1}};
    f = fence(GEO_POLYGON, bowtie, 4, 0);
    expect_invalid(&f, "polygon edges 0-1 and 2-3 cross");
    /* the same bow tie stretched along each axis (the sweep runs along the other one) */
    const struct geo_point bow_lat[] = {{0, 0}, {10, 1}, {10, 0}, {0, 1}},
                           bow_lon[] = {{0, 0}, {1, 10}, {1, 0}, {0, 10}};
    f = fence(GEO_POLYGON, bow_lat, 4, 0);
    expect_invalid(&f, "polygon edges 0-1 and 2-3 cross");
    f = fence(GEO_POLYGON, bow_lon, 4, 0);
    expect_invalid(&f, "polygon edges 0-1 and 2-3 cross");
    /* touching counts: vertex 4 lies on edge 0-1 */
    const struct geo_point touch[] = {{0, 0}, {0, 4}, {2, 4}, {2, 2}, {0, 2}, {-2, 2}, {-2, 0}};
    f = fence(GEO_POLYGON, touch, 7, 0);
    expect_invalid(&f, "polygon edges 0-1 and 3-4 cross");
    /* an edge folding back over the one before it */
    const struct geo_point fold[] = {{0, 0}, {0, 4}, {0, 2}, {3, 3}};
    f = fence(GEO_POLYGON, fold, 4, 0);
    expect_invalid(&f, "polygon edges 0-1 and 1-2 cross");

    /* 2000 vertices, two inner ones (1000 and 1002) swapped: the edge now leaving 1000
     * backwards crosses the one arriving at 1003 forwards */
    struct geo_point t = many[1000];
    many[1000] = many[1002];
    many[1002] = t;
    f = fence(GEO_POLYGON, many, GEO_POINTS_MAX, 0);
    expect_invalid(&f, "polygon edges 1000-1001 and 1002-1003 cross");

    /* every generated fence is valid */
    struct geo_gen g = {7};
    struct geo_point pts[GEN_POINTS_MAX];
    for (int i = 0; i < 3000; i++) {
        gen_fence(&g, 0, (struct geo_point){-60, -170}, (struct geo_point){60, 170}, 1, &f, pts);
        assert_int_equal(geo_validate(&f, err, sizeof err), 0);
    }
}

static void test_bbox(void **state)
{
    (void)state;
    struct geo_point min, max;
    const struct geo_point square[] = {{0, 0}, {0, 1}, {1, 1}, {1, 0.5}};
    struct geo_fence f = fence(GEO_POLYGON, square, 4, 0);
    geo_bbox(&f, &min, &max);
    assert_true(min.lat == 0 && min.lon == 0 && max.lat == 1 && max.lon == 1);

    /* a 500 km circle at 60°N: every boundary point inside its box, the box tight */
    const struct geo_point c = {60, 20};
    f = fence(GEO_CIRCLE, &c, 1, 500000);
    geo_bbox(&f, &min, &max);
    double span_lat = 0, span_lon = 0;
    for (double b = 0; b < 360; b += 0.25) {
        struct geo_point p = destination(c, b, 500000);
        assert_true(p.lat >= min.lat && p.lat <= max.lat && p.lon >= min.lon && p.lon <= max.lon);
        span_lat = fmax(span_lat, fabs(p.lat - c.lat));
        span_lon = fmax(span_lon, fabs(p.lon - c.lon));
    }
    assert_true(fabs(max.lat - c.lat - span_lat) < 1e-3 && fabs(max.lon - c.lon - span_lon) < 1e-3);

    /* clamped at the pole and at ±180 */
    const struct geo_point polar = {89.9, 0};
    f = fence(GEO_CIRCLE, &polar, 1, 50000);
    geo_bbox(&f, &min, &max);
    assert_true(max.lat == 90 && min.lon == -180 && max.lon == 180);
}

#define N_FENCES 10000
#define N_POINTS 10000

/* The index finds exactly what a scan finds, in increasing position order, over 10,000
 * random fences and 10,000 random points; and no fence contains a point outside its box. */
static void test_index_matches_scan(void **state)
{
    (void)state;
    static struct geo_fence fences[N_FENCES];
    static struct geo_point pts[N_FENCES][GEN_POINTS_MAX];
    static struct geo_point lo[N_FENCES], hi[N_FENCES];
    struct geo_point min = {44, 5}, max = {46, 8};
    struct geo_gen g = {2026};
    for (size_t i = 0; i < N_FENCES; i++) {
        gen_fence(&g, 0, min, max, 1 + (double)(i % 4), &fences[i], pts[i]);
        fences[i].id = (int64_t)i + 100;
        geo_bbox(&fences[i], &lo[i], &hi[i]);
    }
    struct geo_index *ix = geo_index_build(fences, N_FENCES);
    assert_int_equal(geo_index_size(ix), N_FENCES);
    /* the index copied the fences: scribbling over ours must not matter */
    static struct geo_fence copy[N_FENCES];
    memcpy(copy, fences, sizeof fences);
    memset(fences, 0, sizeof fences);

    size_t total = 0, max_hits = 0;
    uint32_t got[256], want[256];
    for (int k = 0; k < N_POINTS; k++) {
        struct geo_point p = gen_point(&g, min, max);
        size_t n = 0;
        for (uint32_t i = 0; i < N_FENCES; i++)
            if (p.lat >= lo[i].lat && p.lat <= hi[i].lat && p.lon >= lo[i].lon &&
                p.lon <= hi[i].lon && geo_contains(&copy[i], p))
                want[n++] = i;
        size_t m = geo_index_query(ix, p, got, 256);
        assert_int_equal(m, n);
        assert_memory_equal(got, want, n * sizeof *got);
        total += n;
        max_hits = n > max_hits ? n : max_hits;
    }
    assert_true(total > N_POINTS && max_hits < 256); /* the comparison had hits to compare */

    /* the boxes the scan above trusted: no fence contains a point outside its box */
    for (uint32_t i = 0; i < N_FENCES; i += 3) {
        double dlat = hi[i].lat - lo[i].lat, dlon = hi[i].lon - lo[i].lon;
        for (int k = 0; k < 100; k++) {
            struct geo_point p = {gen_range(&g, lo[i].lat - dlat, hi[i].lat + dlat),
                                  gen_range(&g, lo[i].lon - dlon, hi[i].lon + dlon)};
            if (p.lat < lo[i].lat || p.lat > hi[i].lat || p.lon < lo[i].lon || p.lon > hi[i].lon)
                assert_false(geo_contains(&copy[i], p));
        }
    }
    geo_index_free(ix);
}

/* More hits than room: the count is all of them, the written ones the smallest positions. */
static void test_index_cap(void **state)
{
    (void)state;
    struct geo_point c = {45, 7};
    struct geo_fence f[40];
    for (int i = 0; i < 40; i++) /* concentric, shuffled radii: all contain c */
        f[i] = fence(GEO_CIRCLE, &c, 1, 100 + (double)((i * 17) % 40) * 50);
    struct geo_index *ix = geo_index_build(f, 40);
    uint32_t out[5] = {0};
    assert_int_equal(geo_index_query(ix, c, out, 5), 40);
    for (uint32_t i = 0; i < 5; i++)
        assert_int_equal(out[i], i);
    assert_int_equal(geo_index_query(ix, c, NULL, 0), 40);
    /* 1,025 m east: only the circles of radius 1,050 m and more */
    struct geo_point e = destination(c, 90, 1025);
    uint32_t all[40];
    size_t n = geo_index_query(ix, e, all, 40), want = 0;
    for (uint32_t i = 0; i < 40; i++)
        if (f[i].radius_m > 1025)
            assert_int_equal(all[want++], i);
    assert_int_equal(n, want);
    assert_int_equal(geo_index_query(ix, (struct geo_point){-45, 7}, out, 5), 0);
    geo_index_free(ix);
}

static void test_index_empty(void **state)
{
    (void)state;
    struct geo_index *ix = geo_index_build(NULL, 0);
    assert_non_null(ix);
    assert_int_equal(geo_index_size(ix), 0);
    uint32_t out[4];
    assert_int_equal(geo_index_query(ix, (struct geo_point){45, 7}, out, 4), 0);
    geo_index_free(ix);
    geo_index_free(NULL);
    /* one fence: the root is a leaf */
    const struct geo_point c = {45, 7};
    struct geo_fence one = fence(GEO_CIRCLE, &c, 1, 100);
    ix = geo_index_build(&one, 1);
    assert_int_equal(geo_index_query(ix, c, out, 4), 1);
    assert_int_equal(out[0], 0);
    geo_index_free(ix);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_distance),
        cmocka_unit_test(test_shape_names),
        cmocka_unit_test(test_circle),
        cmocka_unit_test(test_polygon),
        cmocka_unit_test(test_corridor),
        cmocka_unit_test(test_corridor_wide_reference),
        cmocka_unit_test(test_validate),
        cmocka_unit_test(test_bbox),
        cmocka_unit_test(test_index_matches_scan),
        cmocka_unit_test(test_index_cap),
        cmocka_unit_test(test_index_empty),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
