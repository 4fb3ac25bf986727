/* geofence_bench.c — the geofence index on one core: build time, ns per point query (average,
 * and p99 from per-query timings that include ~20 ns of clock reads), hits per point, and a
 * brute-force scan for comparison; over 10,000 mixed fences spread on a 1,000 km square and
 * packed in one city; and geo_validate on 2,000-vertex polygons. Prints; asserts nothing.
 * usage: geofence_bench [queries] */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "../src/domain/geo.h"
#include "geo_gen.h"

#define N_FENCES 10000
#define SCAN_POINTS 2000

static double now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

static struct geo_fence fences[N_FENCES];
static struct geo_point fence_pts[N_FENCES][GEN_POINTS_MAX];

/* One layout: fences around uniform points of [min, max] (times scale), queries uniform in
 * the same box. */
static void run(const char *label, struct geo_point min, struct geo_point max, double scale,
                long queries)
{
    struct geo_gen g = {20260101};
    size_t n_pts = 0;
    for (size_t i = 0; i < N_FENCES; i++) {
        gen_fence(&g, 0, min, max, scale, &fences[i], fence_pts[i]);
        fences[i].id = (int64_t)i + 1;
        n_pts += fences[i].n;
    }
    double t0 = now_ns();
    struct geo_index *ix = geo_index_build(fences, N_FENCES);
    double build_ms = (now_ns() - t0) / 1e6;

    struct geo_point *q = malloc((size_t)queries * sizeof *q);
    double *lat = malloc((size_t)queries * sizeof *lat);
    if (!q || !lat) {
        fprintf(stderr, "geofence_bench: out of memory\n");
        exit(1);
    }
    for (long i = 0; i < queries; i++)
        q[i] = gen_point(&g, min, max);
    uint32_t out[512];
    size_t hits = 0;
    t0 = now_ns();
    for (long i = 0; i < queries; i++)
        hits += geo_index_query(ix, q[i], out, 512);
    double avg_ns = (now_ns() - t0) / (double)queries;
    for (long i = 0; i < queries; i++) {
        double s = now_ns();
        geo_index_query(ix, q[i], out, 512);
        lat[i] = now_ns() - s;
    }
    qsort(lat, (size_t)queries, sizeof *lat, cmp_double);

    size_t scan_hits = 0, in_box = 0;
    t0 = now_ns();
    for (long i = 0; i < SCAN_POINTS; i++)
        for (size_t k = 0; k < N_FENCES; k++)
            scan_hits += geo_contains(&fences[k], q[i]);
    double scan_ns = (now_ns() - t0) / SCAN_POINTS;
    /* what the exact tests cost the index: fences whose box holds the point */
    static struct geo_point lo[N_FENCES], hi[N_FENCES];
    for (size_t k = 0; k < N_FENCES; k++)
        geo_bbox(&fences[k], &lo[k], &hi[k]);
    for (long i = 0; i < SCAN_POINTS; i++)
        for (size_t k = 0; k < N_FENCES; k++)
            in_box += q[i].lat >= lo[k].lat && q[i].lat <= hi[k].lat && q[i].lon >= lo[k].lon &&
                      q[i].lon <= hi[k].lon;

    printf("geofence index, %s: %d fences (%zu vertices), build %.1f ms; query %.0f ns average, "
           "%.0f ns p99 (%ld points), %.2f fences per point (%.2f boxes); brute-force scan %.0f "
           "ns per point (%.2f fences per point, %d points)\n",
           label, N_FENCES, n_pts, build_ms, avg_ns, lat[(size_t)queries * 99 / 100], queries,
           (double)hits / (double)queries, (double)in_box / SCAN_POINTS, scan_ns,
           (double)scan_hits / SCAN_POINTS, SCAN_POINTS);
    geo_index_free(ix);
    free(q);
    free(lat);
}

/* geo_validate on a 2,000-vertex polygon: the best of 20 runs, in ms. */
static double validate_ms(const struct geo_point *p, size_t n)
{
    struct geo_fence f = {.id = 1, .shape = GEO_POLYGON, .pts = p, .n = n};
    char err[160];
    double best = 1e30;
    for (int r = 0; r < 20; r++) {
        double t0 = now_ns();
        if (geo_validate(&f, err, sizeof err)) {
            fprintf(stderr, "geofence_bench: polygon refused: %s\n", err);
            exit(1);
        }
        double ms = (now_ns() - t0) / 1e6;
        best = ms < best ? ms : best;
    }
    return best;
}

int main(int argc, char **argv)
{
    long queries = argc > 1 ? strtol(argv[1], NULL, 10) : 1000000;
    if (queries < 100) {
        fprintf(stderr, "usage: geofence_bench [queries >= 100]\n");
        return 2;
    }
    /* 1,000 km square around 48°N 10°E (9° of latitude, 13.4° of longitude) */
    run("regional (1,000 km square)", (struct geo_point){43.5, 3.3}, (struct geo_point){52.5, 16.7},
        1, queries);
    /* one city: 20 km square, fences a tenth of the size (circles 5 m..500 m and so on) */
    run("dense (one 20 km city)", (struct geo_point){48.76, 2.2}, (struct geo_point){48.94, 2.47},
        0.1, queries);

    /* 2,000 vertices: a jagged ring (short edges, like a traced boundary), a star (edges
     * long across the sweep: a third of them overlap any one) and a square spiral strip
     * (long edges along both axes) */
    static struct geo_point ring[GEO_POINTS_MAX], star[GEO_POINTS_MAX], spiral[GEO_POINTS_MAX];
    struct geo_gen g = {99};
    for (size_t i = 0; i < GEO_POINTS_MAX; i++) {
        double a = 2 * M_PI * ((double)i + gen_range(&g, 0, 0.8)) / GEO_POINTS_MAX;
        double r = gen_range(&g, 0.3, 1);
        star[i] = (struct geo_point){45 + r * sin(a), 7 + r * cos(a)};
        r = gen_range(&g, 0.99, 1);
        ring[i] = (struct geo_point){45 + r * sin(a), 7 + r * cos(a)};
    }
    /* The spiral's centre line turns left at each of its m corners, legs 1, 1, 2, 2, 3, ...
     * steps long (rings a step apart); the polygon is the strip 0.3 step either side: the
     * left side out, the right side back. */
    const size_t m = GEO_POINTS_MAX / 2;
    const double step = 0.01, w = 0.3 * step;
    static const double dir[4][2] = {{1, 0}, {0, 1}, {-1, 0}, {0, -1}}; /* (lon, lat): E N W S */
    double x = 0, y = 0;
    for (size_t k = 0; k < m; k++) {
        const double *in = dir[(k + 3) % 4], *out = dir[k % 4];
        /* left normal of (dx, dy) is (-dy, dx); at a corner, the sum of both legs' normals */
        double nx = (k < m - 1 ? -out[1] : 0) + (k > 0 ? -in[1] : 0);
        double ny = (k < m - 1 ? out[0] : 0) + (k > 0 ? in[0] : 0);
        spiral[k] = (struct geo_point){45 + y + w * ny, 7 + x + w * nx};
        spiral[GEO_POINTS_MAX - 1 - k] = (struct geo_point){45 + y - w * ny, 7 + x - w * nx};
        double len = step * (double)(k / 2 + 1);
        x += out[0] * len;
        y += out[1] * len;
    }
    printf("geo_validate, 2,000-vertex polygon (best of 20): ring %.2f ms, star %.2f ms, square "
           "spiral %.2f ms\n",
           validate_ms(ring, GEO_POINTS_MAX), validate_ms(star, GEO_POINTS_MAX),
           validate_ms(spiral, GEO_POINTS_MAX));
    return 0;
}
