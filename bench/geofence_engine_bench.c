/* geofence_engine_bench.c — what geofence evaluation costs the writer per report with
 * 10,000 fences: the engine (geofence.h) on a real SQLite file, in batches as the writer
 * commits them. Devices drive random walks (about 400 m per report) through 10,000 fences
 * spread on a 1,000 km square, then packed in one 20 km city; a third run sends every
 * fifth batch of each device late (blind-area history), which replays stored fixes.
 * Reported: µs per report for note + evaluation + state writes (the positions insert, which
 * the writer does anyway, is timed apart), and events per report. Prints; asserts nothing.
 * usage: geofence_engine_bench [devices] [reports per device] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../src/core/buf.h"
#include "../src/core/log.h"
#include "../src/domain/geofence.h"
#include "../src/store/schema.h"
#include "geo_gen.h"

#define N_FENCES 10000
#define BATCH 1000 /* reports per transaction, the writer's batch_max */

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void exec(sqlite3 *db, const char *sql)
{
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
        fprintf(stderr, "%s: %s\n", sql, err);
        exit(1);
    }
}

static void add_fences(sqlite3 *db, struct geo_point min, struct geo_point max, double scale)
{
    struct geo_gen g = {20261125};
    sqlite3_stmt *st;
    sqlite3_prepare_v2(db,
                       "INSERT INTO geofences(org_id, name, kind, shape, points, radius_m,"
                       " created_at, updated_at) VALUES(1, 'f', 'allowed', ?1, ?2, ?3, 0, 0)",
                       -1, &st, NULL);
    struct geo_fence f;
    struct geo_point pts[GEN_POINTS_MAX];
    struct buf text = {0};
    exec(db, "BEGIN");
    for (int i = 0; i < N_FENCES; i++) {
        gen_fence(&g, 0, min, max, scale, &f, pts);
        text.len = 0;
        buf_append_str(&text, "[");
        for (size_t k = 0; k < f.n; k++)
            buf_printf(&text, "%s[%.9f,%.9f]", k ? "," : "", pts[k].lat, pts[k].lon);
        buf_append_str(&text, "]");
        sqlite3_bind_text(st, 1, geo_shape_name(f.shape), -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, (const char *)text.data, (int)text.len, SQLITE_STATIC);
        sqlite3_bind_double(st, 3, f.radius_m);
        sqlite3_step(st);
        sqlite3_reset(st);
    }
    exec(db, "COMMIT");
    sqlite3_finalize(st);
    buf_free(&text);
}

struct walker {
    struct geo_point p;
    double heading;
};

struct fix {
    int64_t device, time;
    struct geo_point p;
};

static int collect(void *arg, const struct domain_event *e)
{
    (void)e;
    (*(long *)arg)++;
    return 0;
}

static void run(const char *label, struct geo_point min, struct geo_point max, double scale,
                int devices, int reports, bool late)
{
    char path[] = "/tmp/st-geobench-XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    unlink(path);
    sqlite3 *db;
    if (schema_open(path, 0, &db))
        exit(1);
    exec(db, "PRAGMA synchronous=OFF");
    add_fences(db, min, max, scale);
    exec(db, "BEGIN");
    for (int d = 1; d <= devices; d++) {
        char sql[128];
        snprintf(sql, sizeof sql, "INSERT INTO devices(id, uid, created_at) VALUES(%d, 'd%d', 0)", d, d);
        exec(db, sql);
    }
    exec(db, "COMMIT");
    struct geofence_engine *g;
    if (geofence_engine_open(db, &g))
        exit(1);
    struct geo_gen rnd = {7};
    struct walker *w = calloc((size_t)(unsigned)devices, sizeof *w);
    for (int d = 0; d < devices; d++)
        w[d] = (struct walker){gen_point(&rnd, min, max), gen_range(&rnd, 0, 2 * M_PI)};
    /* the whole schedule: report r of every device in turn; late runs swap each device's
     * every fifth group of reports with the next group (history arriving after newer) */
    long total = (long)devices * reports;
    struct fix *fixes = malloc((size_t)total * sizeof *fixes);
    long n = 0;
    for (int r = 0; r < reports; r++)
        for (int d = 0; d < devices; d++) {
            w[d].heading += gen_range(&rnd, -0.5, 0.5);
            struct geo_point q = gen_offset(w[d].p, 400 * cos(w[d].heading), 400 * sin(w[d].heading));
            if (q.lat < min.lat || q.lat > max.lat || q.lon < min.lon || q.lon > max.lon)
                w[d].heading += M_PI; /* turn back at the edge */
            else
                w[d].p = q;
            int slot = r;
            if (late && (r / 5) % 5 == 1)
                slot = r + 5; /* five reports held back behind the next five */
            else if (late && (r / 5) % 5 == 2)
                slot = r - 5;
            fixes[(long)slot * devices + d] = (struct fix){d + 1, 1700000000 + (int64_t)r * 30, w[d].p};
            n++;
        }
    sqlite3_stmt *ins;
    sqlite3_prepare_v2(db,
                       "INSERT INTO positions(device_id, fix_time, recv_time, protocol, valid,"
                       " lat, lon) VALUES(?1, ?2, 0, 'bench', 1, ?3, ?4)",
                       -1, &ins, NULL);
    double t_insert = 0, t_eval = 0;
    long events = 0;
    int64_t *pos_ids = malloc(BATCH * sizeof *pos_ids);
    for (long i = 0; i < n; i += BATCH) {
        long m = n - i < BATCH ? n - i : BATCH;
        double t0 = now_s();
        exec(db, "BEGIN");
        for (long k = 0; k < m; k++) {
            const struct fix *x = &fixes[i + k];
            sqlite3_bind_int64(ins, 1, x->device);
            sqlite3_bind_int64(ins, 2, x->time);
            sqlite3_bind_double(ins, 3, x->p.lat);
            sqlite3_bind_double(ins, 4, x->p.lon);
            sqlite3_step(ins);
            sqlite3_reset(ins);
            pos_ids[k] = sqlite3_last_insert_rowid(db);
        }
        double t1 = now_s();
        if (geofence_batch_begin(g))
            exit(1);
        for (long k = 0; k < m; k++) {
            const struct fix *x = &fixes[i + k];
            geofence_note_fix(g, 1, x->device, "d", NULL, x->time, pos_ids[k], x->p.lat, x->p.lon);
        }
        if (geofence_batch_end(g, collect, &events))
            exit(1);
        double t2 = now_s();
        exec(db, "COMMIT");
        t_insert += t1 - t0;
        t_eval += t2 - t1;
    }
    printf("geofence engine, %s: %d fences, %d devices x %d reports%s: %.2f us per report "
           "(positions insert %.2f us), %.3f events per report\n",
           label, (int)geofence_engine_size(g), devices, reports,
           late ? ", 2 of 5 report groups out of order" : "", t_eval / (double)n * 1e6,
           t_insert / (double)n * 1e6, (double)events / (double)n);
    sqlite3_finalize(ins);
    geofence_engine_free(g);
    sqlite3_close(db);
    char p[64];
    unlink(path);
    snprintf(p, sizeof p, "%s-wal", path);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", path);
    unlink(p);
    free(fixes);
    free(pos_ids);
    free(w);
}

int main(int argc, char **argv)
{
    int devices = argc > 1 ? atoi(argv[1]) : 1000;
    int reports = (argc > 2 ? atoi(argv[2]) : 100) / 25 * 25; /* whole cycles of the late swap */
    if (devices < 1 || devices > 100000 || reports < 25) {
        fprintf(stderr, "usage: geofence_engine_bench [devices 1..100000] [reports >= 25]\n");
        return 2;
    }
    st_log_set_level(ST_LOG_ERROR);
    /* ~1,000 km square at 50°N, and a 20 km city with the fences shrunk 10× */
    struct geo_point rmin = {45.5, 3.0}, rmax = {54.5, 17.0};
    struct geo_point cmin = {50.0, 8.0}, cmax = {50.18, 8.28};
    run("regional", rmin, rmax, 1.0, devices, reports, false);
    run("city (dense)", cmin, cmax, 0.1, devices, reports, false);
    run("regional, late history", rmin, rmax, 1.0, devices, reports, true);
    return 0;
}
