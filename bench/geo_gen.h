/* geo_gen.h — seeded random geofences for geo's unit test (tests/unit/domain/geo_test.c)
 * and benchmark (bench/geofence_bench.c): the same seed gives the same fences. Every fence
 * made passes geo_validate (the unit test checks it). Header-only. */
#ifndef ST_GEO_GEN_H
#define ST_GEO_GEN_H

#include <math.h>
#include <stdint.h>

#include "../src/domain/geo.h"

#define GEN_POINTS_MAX 64

struct geo_gen {
    uint64_t s;
};

/* splitmix64: small, fast, and good enough for test data. */
static inline uint64_t gen_next(struct geo_gen *g)
{
    uint64_t z = (g->s += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

/* Uniform in [lo, hi). */
static inline double gen_range(struct geo_gen *g, double lo, double hi)
{
    return lo + (hi - lo) * (double)(gen_next(g) >> 11) * 0x1p-53;
}

static inline struct geo_point gen_point(struct geo_gen *g, struct geo_point min,
                                         struct geo_point max)
{
    return (struct geo_point){gen_range(g, min.lat, max.lat), gen_range(g, min.lon, max.lon)};
}

/* p moved by north_m and east_m in its local plane (an affine map: shapes keep their
 * simplicity in the lat/lon plane). */
static inline struct geo_point gen_offset(struct geo_point p, double north_m, double east_m)
{
    double m_per_deg = GEO_EARTH_RADIUS_M * M_PI / 180;
    return (struct geo_point){p.lat + north_m / m_per_deg,
                              p.lon + east_m / (m_per_deg * cos(p.lat * M_PI / 180))};
}

/* A fence around a uniform point of [min, max], sizes times scale: circles of radius
 * 50 m..5 km; star-shaped polygons (simple, concave more often than not) of 4..64 vertices
 * 100 m..5 km from their centre; corridors of 2..50 points by steps of 100 m..3 km, 20 m..1 km
 * either side. shape: GEO_CIRCLE, GEO_POLYGON, GEO_CORRIDOR or 0 for a third of each.
 * pts: room for GEN_POINTS_MAX; f->pts points into it. */
static inline void gen_fence(struct geo_gen *g, int shape, struct geo_point min,
                             struct geo_point max, double scale, struct geo_fence *f,
                             struct geo_point *pts)
{
    struct geo_point c = gen_point(g, min, max);
    *f = (struct geo_fence){.shape = (uint8_t)(shape ? shape : 1 + (int)(gen_next(g) % 3)),
                            .pts = pts};
    if (f->shape == GEO_CIRCLE) {
        pts[0] = c;
        f->n = 1;
        f->radius_m = scale * gen_range(g, 50, 5000);
    } else if (f->shape == GEO_POLYGON) {
        /* Increasing angles around c make a star-shaped, hence simple, polygon. */
        f->n = 4 + (size_t)(gen_next(g) % 61);
        double outer = scale * gen_range(g, 100, 5000);
        for (size_t k = 0; k < f->n; k++) {
            double a = 2 * M_PI * ((double)k + gen_range(g, 0, 0.8)) / (double)f->n;
            double r = outer * gen_range(g, 0.3, 1);
            pts[k] = gen_offset(c, r * cos(a), r * sin(a));
        }
    } else {
        f->n = 2 + (size_t)(gen_next(g) % 49);
        f->radius_m = scale * gen_range(g, 20, 1000);
        double heading = gen_range(g, 0, 2 * M_PI);
        pts[0] = c;
        for (size_t k = 1; k < f->n; k++) {
            double step = scale * gen_range(g, 100, 3000);
            heading += gen_range(g, -1, 1);
            pts[k] = gen_offset(pts[k - 1], step * cos(heading), step * sin(heading));
        }
    }
}

#endif
