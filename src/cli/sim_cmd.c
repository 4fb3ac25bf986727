/* sim.c (cli) — `sealtrack sim` options. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/mem.h"
#include "../core/timeutil.h"
#include "../sim/sim.h"
#include "cli.h"

static const char usage[] =
    "usage: sealtrack sim [--host ADDR] [--port N] [--udp] [--protocol jt808|jt600|mixed]\n"
    "                     [--devices N] [--reports N] [--window N] [--interval-ms MS]\n"
    "                     [--timeout-ms MS] [--id-base N] [--start ISO] [--step-s S]\n"
    "                     [--route POINTS|@FILE] [--events LIST] [--late A-B]\n"
    "                     [--lock-password P] [--hold-ms MS] [--record FILE]\n"
    "Simulates JT709A (jt808: JT/T 808 + Jointech items) or JT701D (jt600) e-seals driving\n"
    "a route: registration and authentication (jt808), a time request, position reports\n"
    "with an RFID unlock and an auto-lock every ten reports, a rope cut half way, low\n"
    "battery at the end, and a heartbeat. Every reply the server owes is checked byte for\n"
    "byte; the run fails (exit 1), naming the device and the frame, when one is missing\n"
    "or wrong. Commands the server sends are answered as the device's manual says\n"
    "(JT701D: P43 static-password unlock, P52,3 dynamic unlock, P44 password change; JT709A:\n"
    "0x8103/0x8105/0x8201/0x8300 with a 0x0001 general response), an unlock is reported in\n"
    "the next frame; others are logged. Prints a JSON summary (rates, latency percentiles,\n"
    "\"commands\": what each device received and answered).\n"
    "  --host ADDR       server address (default 127.0.0.1)\n"
    "  --port N          server port (default 8888)\n"
    "  --udp             send over UDP instead of TCP\n"
    "  --protocol P      jt808 (JT709A, default), jt600 (JT701D), or mixed (every other\n"
    "                    device a JT701D; ids from both default bases, no --id-base)\n"
    "  --devices N       simulated devices (default 1)\n"
    "  --reports N       position reports per device (default 20; with --route, its length)\n"
    "  --window N        frames in flight per device, 1..64 (default 1)\n"
    "  --interval-ms MS  pause after each reply (default 0)\n"
    "  --timeout-ms MS   a reply later than this is missing (default 5000)\n"
    "  --id-base N       first device id (default 794300000001 / 8000000001)\n"
    "  --start ISO       fix time of the first report (default: now - reports x step)\n"
    "  --step-s S        seconds between two reports' fix times (default 30)\n"
    "  --route R         the points to report, one report each: 'lat,lon;lat,lon;...' or\n"
    "                    @FILE with one 'lat,lon' per line. With --route or --events only\n"
    "                    the listed events happen and the lock starts open\n"
    "  --events LIST     'i:kind[:arg],...': at report i (from 0) also report kind: lock\n"
    "                    (auto-lock, locked from then on), unlock_rfid:<card digits>,\n"
    "                    unlock_remote, unlock_dynamic (unlocked from then on), tamper (rope\n"
    "                    cut), wrong_password, low_battery; one event per report\n"
    "  --late A-B        hold reports A..B-1 back and send them after the last one (JT709A:\n"
    "                    0x0704 blind-area batches; JT701D: their own frames)\n"
    "  --lock-password P the JT701D static password P43 must give (default 888888)\n"
    "  --hold-ms MS      stay connected MS ms after the last reply, answering commands\n"
    "  --record FILE     write '<device> <fix time> <kind>' per acknowledged report\n";

static int number(const char *flag, const char *v, long long lo, long long hi, long long *out)
{
    char *end;
    long long n = strtoll(v, &end, 10);
    if (*end || end == v || n < lo || n > hi) {
        fprintf(stderr, "sealtrack sim: --%s: '%s' is not a number in %lld..%lld\n", flag, v, lo,
                hi);
        return -1;
    }
    *out = n;
    return 0;
}

/* `A-B` with 0 <= A < B. */
static int late_range(const char *v, int *from, int *to)
{
    char *end;
    long a = strtol(v, &end, 10), b = -1;
    if (end != v && *end == '-') {
        const char *s = end + 1;
        b = strtol(s, &end, 10);
        if (end == s || *end)
            b = -1;
    }
    if (a < 0 || b <= a || b > 100000000) {
        fprintf(stderr, "sealtrack sim: --late: '%s' is not A-B with 0 <= A < B\n", v);
        return -1;
    }
    *from = (int)a;
    *to = (int)b;
    return 0;
}

int cli_sim(int argc, char **argv)
{
    static const struct option opts[] = {
        {"host", required_argument, 0, 'H'},       {"port", required_argument, 0, 'p'},
        {"udp", no_argument, 0, 'u'},              {"protocol", required_argument, 0, 'P'},
        {"devices", required_argument, 0, 'd'},    {"reports", required_argument, 0, 'r'},
        {"window", required_argument, 0, 'w'},     {"interval-ms", required_argument, 0, 'i'},
        {"timeout-ms", required_argument, 0, 't'}, {"id-base", required_argument, 0, 'b'},
        {"start", required_argument, 0, 's'},      {"record", required_argument, 0, 'R'},
        {"step-s", required_argument, 0, 'S'},     {"route", required_argument, 0, 'o'},
        {"events", required_argument, 0, 'e'},     {"late", required_argument, 0, 'L'},
        {"lock-password", required_argument, 0, 'k'}, {"hold-ms", required_argument, 0, 'O'},
        {"help", no_argument, 0, 'h'},             {0, 0, 0, 0},
    };
    struct sim_opts o = {
        .host = "127.0.0.1", .port = 8888, .protocol = "jt808", .devices = 1, .reports = 20,
        .window = 1, .timeout_ms = 5000, .id_base = -1, .start_time = -1, .step_s = 30,
        .lock_password = "888888",
    };
    struct sim_point *route = NULL;
    struct sim_event *events = NULL;
    int c, rc = 2, reports_given = 0, events_given = 0;
    long long v;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'H': o.host = optarg; break;
        case 'u': o.udp = 1; break;
        case 'R': o.record = optarg; break;
        case 'P':
            if (strcmp(optarg, "jt808") && strcmp(optarg, "jt600") && strcmp(optarg, "mixed")) {
                fprintf(stderr, "sealtrack sim: --protocol: '%s' is not jt808, jt600 or mixed\n",
                        optarg);
                goto out;
            }
            o.protocol = optarg;
            break;
        case 'p': if (number("port", optarg, 1, 65535, &v)) goto out; o.port = (int)v; break;
        case 'd': if (number("devices", optarg, 1, 100000, &v)) goto out; o.devices = (int)v; break;
        case 'r':
            if (number("reports", optarg, 0, 10000000, &v)) goto out;
            o.reports = (int)v;
            reports_given = 1;
            break;
        case 'w': if (number("window", optarg, 1, 64, &v)) goto out; o.window = (int)v; break;
        case 'i': if (number("interval-ms", optarg, 0, 3600000, &v)) goto out; o.interval_ms = (int)v; break;
        case 't': if (number("timeout-ms", optarg, 1, 3600000, &v)) goto out; o.timeout_ms = (int)v; break;
        case 'b': if (number("id-base", optarg, 1, 999999999999LL, &v)) goto out; o.id_base = v; break;
        case 'S': if (number("step-s", optarg, 1, 86400, &v)) goto out; o.step_s = (int)v; break;
        case 'O':
            if (number("hold-ms", optarg, 0, 3600000, &v))
                goto out;
            o.hold_ms = (int)v;
            break;
        case 's':
            if (st_time_parse(optarg, &o.start_time)) {
                fprintf(stderr, "sealtrack sim: --start: '%s' is not an ISO 8601 time\n", optarg);
                goto out;
            }
            break;
        case 'o':
            st_free(route);
            route = NULL;
            if (sim_parse_route(optarg, &route, &o.n_route))
                goto out;
            break;
        case 'e':
            st_free(events);
            events = NULL;
            if (sim_parse_events(optarg, &events, &o.n_events))
                goto out;
            events_given = 1;
            break;
        case 'L': if (late_range(optarg, &o.late_from, &o.late_to)) goto out; break;
        case 'k':
            /* JT600 texts cannot carry the separators; the device keeps 15 characters */
            if (!optarg[0] || strlen(optarg) > 15 || strpbrk(optarg, "(),")) {
                fprintf(stderr, "sealtrack sim: --lock-password: 1 to 15 characters, no ( ) ,\n");
                goto out;
            }
            o.lock_password = optarg;
            break;
        case 'h': fputs(usage, stdout); rc = 0; goto out;
        default: fputs(usage, stderr); goto out;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "sealtrack sim: unexpected argument '%s'\n%s", argv[optind], usage);
        goto out;
    }
    int jt808 = strcmp(o.protocol, "jt808") == 0;
    if (strcmp(o.protocol, "mixed") == 0 && o.id_base >= 0) {
        fprintf(stderr, "sealtrack sim: --id-base does not go with --protocol mixed\n");
        goto out;
    }
    if (o.id_base < 0)
        o.id_base = jt808 ? SIM_JT808_ID_BASE : SIM_JT600_ID_BASE;
    if (!jt808 && o.id_base + o.devices > 9999999999LL) {
        fprintf(stderr, "sealtrack sim: jt600 device ids have 10 digits\n");
        goto out;
    }
    if (route) {
        if (reports_given && o.reports != o.n_route) {
            fprintf(stderr, "sealtrack sim: --reports %d but the route has %d points\n", o.reports,
                    o.n_route);
            goto out;
        }
        o.reports = o.n_route;
        o.route = route;
    }
    o.events = events;
    o.scripted = route || events_given;
    if (o.n_events && events[o.n_events - 1].index >= o.reports) {
        fprintf(stderr, "sealtrack sim: --events: report %d does not exist (reports 0..%d)\n",
                events[o.n_events - 1].index, o.reports - 1);
        goto out;
    }
    if (o.late_to > o.reports) {
        fprintf(stderr, "sealtrack sim: --late: %d-%d goes past the last report (%d)\n",
                o.late_from, o.late_to, o.reports - 1);
        goto out;
    }
    if (o.start_time < 0)
        o.start_time = st_now() - (int64_t)o.reports * o.step_s;
    rc = sim_run(&o);
out:
    st_free(route);
    st_free(events);
    return rc;
}
