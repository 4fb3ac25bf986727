/* geo.h — geofence geometry: validation, containment, and a spatial index.
 *
 * Pure code (no I/O, no SQLite): shapes are circles, polygons and corridors
 * (a polyline ± a distance), in WGS84 degrees. Distances in metres on a sphere of
 * GEO_EARTH_RADIUS_M; polygons are tested in the lat/lon plane (fences do not
 * cross the antimeridian or a pole: geo_validate refuses them).
 *
 * The index answers "which fences contain this point" by an R-tree over the
 * fences' bounding boxes (bulk-loaded, rebuilt when fences change) followed by
 * the exact test, so a report costs O(log n + hits), not a scan of every fence.
 */
#ifndef ST_GEO_H
#define ST_GEO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GEO_EARTH_RADIUS_M 6371008.8
#define GEO_POINTS_MAX 2000          /* vertices of a polygon or corridor at most */
#define GEO_RADIUS_MAX_M 500000.0    /* a circle's radius / a corridor's half-width at most */
#define GEO_EXTENT_MAX_DEG 20.0      /* a fence's bounding box spans at most this (lat and lon) */

enum geo_shape { GEO_CIRCLE = 1, GEO_POLYGON, GEO_CORRIDOR };

struct geo_point {
    double lat, lon;
};

/** A fence as the index keeps it. pts is owned by whoever built the fence
 *  (geo_index_build copies it). */
struct geo_fence {
    int64_t id;
    uint8_t shape;           /* enum geo_shape */
    double radius_m;         /* circle radius; corridor distance either side of the line */
    const struct geo_point *pts; /* circle: 1 (centre); polygon: >= 3 (not closed: the last
                                    vertex joins the first); corridor: >= 2 */
    size_t n;
};

/** Shape name ("circle", "polygon", "corridor") ↔ enum; 0 when unknown. */
int geo_shape_by_name(const char *name);
const char *geo_shape_name(int shape);

/** Check a fence: coordinates in range, point counts, radius in (0, GEO_RADIUS_MAX_M],
 *  extent, no repeated consecutive vertex, a polygon not self-intersecting and of non-zero
 *  area. 0, or ST_EMALFORMED with a one-line reason in err naming the problem
 *  ("polygon edges 2 and 5 cross"). */
int geo_validate(const struct geo_fence *f, char *err, size_t errlen);

/** Great-circle distance in metres. */
double geo_distance_m(struct geo_point a, struct geo_point b);

/** Whether p lies inside f (on the boundary counts as inside). */
bool geo_contains(const struct geo_fence *f, struct geo_point p);

/** The fence's bounding box (corridors and circles widened by their radius). */
void geo_bbox(const struct geo_fence *f, struct geo_point *min, struct geo_point *max);

struct geo_index;

/** Build an index over fences[0..n) (copied: the caller may free them afterwards); n may
 *  be 0. Fences must have passed geo_validate. */
struct geo_index *geo_index_build(const struct geo_fence *fences, size_t n);
void geo_index_free(struct geo_index *ix);
size_t geo_index_size(const struct geo_index *ix);

/** Fences containing p: their positions in the array given to geo_index_build, written to
 *  out[0..cap) in increasing order; returns how many contain p (may exceed cap: then only
 *  cap are written). Allocates nothing. */
size_t geo_index_query(const struct geo_index *ix, struct geo_point p, uint32_t *out, size_t cap);

#endif
