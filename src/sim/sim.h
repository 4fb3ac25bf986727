/* sim.h — the device simulator: scripted JT709A (JT/T 808) and JT701D (JT600)
 * devices that register, report positions along a route, lock and unlock with
 * RFID cards, report rope cuts and low battery, send held-back reports late as
 * history, answer the server's commands, and check every reply they are owed
 * byte for byte. Also the load generator of the benchmarks. */
#ifndef ST_SIM_H
#define ST_SIM_H

#include <stdint.h>

/* First device ids by default (and of each kind in the mixed mode). */
#define SIM_JT808_ID_BASE 794300000001LL
#define SIM_JT600_ID_BASE 8000000001LL

/** One point of a scripted route, WGS84 degrees. */
struct sim_point {
    double lat, lon;
};

/** One scripted event: at report `index` the device also reports it. */
struct sim_event {
    int index;
    int kind;      /* the simulator's event kind (set by sim_parse_events) */
    char card[16]; /* unlock_rfid: the card number, up to 10 digits */
};

struct sim_opts {
    const char *host;
    int port;
    int udp;              /* 0 TCP, 1 UDP */
    const char *protocol; /* "jt808", "jt600" or "mixed" (every other device a JT701D) */
    int devices;
    int reports;          /* position reports per device (plus the protocol's handshake) */
    int window;           /* frames in flight per device */
    int interval_ms;      /* pause between a reply and the next frame; 0 = none */
    int timeout_ms;       /* a reply later than this counts as missing */
    int64_t id_base;      /* first device id (numeric); not used by "mixed" */
    int64_t start_time;   /* fix time of the first report, UTC seconds */
    int step_s;           /* seconds between the fix times of two reports */
    const char *record;   /* file: one line per acknowledged report */
    int quiet;
    /* A scripted run (route or events given) reports only the scripted events, and its
     * lock starts open and follows them; otherwise the built-in drive and events run. */
    const struct sim_point *route; /* n_route points, one report each; NULL = built-in */
    int n_route;
    const struct sim_event *events; /* sorted by index, at most one per report */
    int n_events;
    int scripted;
    int late_from, late_to;    /* reports [late_from, late_to) are sent last, as history */
    const char *lock_password; /* JT701D static password, checked by (P43,…) */
    int hold_ms;               /* stay connected this long after the script, answering */
};

/** Parse a route: `lat,lon;lat,lon;…`, or `@FILE` with one `lat,lon` per line (blank
 *  lines skipped). On success *out (st_malloc'd, the caller st_frees it) holds *n ≥ 1
 *  points. Prints what is wrong to stderr and returns ST_EMALFORMED or ST_EIO. */
int sim_parse_route(const char *spec, struct sim_point **out, int *n);

/** Parse `i:kind[:arg],…` (kinds: lock, unlock_rfid:<card>, unlock_remote, unlock_dynamic,
 *  tamper, wrong_password, low_battery; an empty spec is no event). On success *out
 *  (st_malloc'd, may be NULL when *n is 0; the caller st_frees it) is sorted by index.
 *  Prints what is wrong to stderr and returns ST_EMALFORMED. */
int sim_parse_events(const char *spec, struct sim_event **out, int *n);

/** Run the simulation; prints a JSON summary on stdout (with the commands the devices
 *  received). Returns 0 when every reply came and matched, 1 when not, 2 when the
 *  options cannot be run (e.g. an event a protocol cannot carry). */
int sim_run(const struct sim_opts *o);

#endif
