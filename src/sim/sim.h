/* sim.h — the device simulator: scripted JT709A (JT/T 808) and JT701D (JT600)
 * devices that register, report positions along a route, lock and unlock with
 * RFID cards, report rope cuts and low battery, and check every reply they are
 * owed byte for byte. Also the load generator of the benchmarks. */
#ifndef ST_SIM_H
#define ST_SIM_H

#include <stdint.h>

/* First device ids by default (and of each kind in the mixed mode). */
#define SIM_JT808_ID_BASE 794300000001LL
#define SIM_JT600_ID_BASE 8000000001LL

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
    const char *record;   /* file: one line per acknowledged report */
    int quiet;
};

/** Run the simulation; prints a JSON summary on stdout. Returns 0 when every reply came and matched. */
int sim_run(const struct sim_opts *o);

#endif
