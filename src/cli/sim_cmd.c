/* sim.c (cli) — `sealtrack sim` options. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/timeutil.h"
#include "../sim/sim.h"
#include "cli.h"

static const char usage[] =
    "usage: sealtrack sim [--host ADDR] [--port N] [--udp] [--protocol jt808|jt600|mixed]\n"
    "                     [--devices N] [--reports N] [--window N] [--interval-ms MS]\n"
    "                     [--timeout-ms MS] [--id-base N] [--start ISO] [--record FILE]\n"
    "Simulates JT709A (jt808: JT/T 808 + Jointech items) or JT701D (jt600) e-seals driving\n"
    "a route: registration and authentication (jt808), a time request, position reports\n"
    "with an RFID unlock and an auto-lock every ten reports, a rope cut half way, low\n"
    "battery at the end, and a heartbeat. Every reply the server owes is checked byte for\n"
    "byte; the run fails (exit 1), naming the device and the frame, when one is missing\n"
    "or wrong. Prints a JSON summary (rates, latency percentiles).\n"
    "  --host ADDR       server address (default 127.0.0.1)\n"
    "  --port N          server port (default 8888)\n"
    "  --udp             send over UDP instead of TCP\n"
    "  --protocol P      jt808 (JT709A, default), jt600 (JT701D), or mixed (every other\n"
    "                    device a JT701D; ids from both default bases, no --id-base)\n"
    "  --devices N       simulated devices (default 1)\n"
    "  --reports N       position reports per device (default 20)\n"
    "  --window N        frames in flight per device, 1..64 (default 1)\n"
    "  --interval-ms MS  pause after each reply (default 0)\n"
    "  --timeout-ms MS   a reply later than this is missing (default 5000)\n"
    "  --id-base N       first device id (default 794300000001 / 8000000001)\n"
    "  --start ISO       fix time of the first report (default: now - reports x 30 s)\n"
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

int cli_sim(int argc, char **argv)
{
    static const struct option opts[] = {
        {"host", required_argument, 0, 'H'},       {"port", required_argument, 0, 'p'},
        {"udp", no_argument, 0, 'u'},              {"protocol", required_argument, 0, 'P'},
        {"devices", required_argument, 0, 'd'},    {"reports", required_argument, 0, 'r'},
        {"window", required_argument, 0, 'w'},     {"interval-ms", required_argument, 0, 'i'},
        {"timeout-ms", required_argument, 0, 't'}, {"id-base", required_argument, 0, 'b'},
        {"start", required_argument, 0, 's'},      {"record", required_argument, 0, 'R'},
        {"help", no_argument, 0, 'h'},             {0, 0, 0, 0},
    };
    struct sim_opts o = {
        .host = "127.0.0.1", .port = 8888, .protocol = "jt808", .devices = 1, .reports = 20,
        .window = 1, .timeout_ms = 5000, .id_base = -1, .start_time = -1,
    };
    int c;
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
                return 2;
            }
            o.protocol = optarg;
            break;
        case 'p': if (number("port", optarg, 1, 65535, &v)) return 2; o.port = (int)v; break;
        case 'd': if (number("devices", optarg, 1, 100000, &v)) return 2; o.devices = (int)v; break;
        case 'r': if (number("reports", optarg, 0, 10000000, &v)) return 2; o.reports = (int)v; break;
        case 'w': if (number("window", optarg, 1, 64, &v)) return 2; o.window = (int)v; break;
        case 'i': if (number("interval-ms", optarg, 0, 3600000, &v)) return 2; o.interval_ms = (int)v; break;
        case 't': if (number("timeout-ms", optarg, 1, 3600000, &v)) return 2; o.timeout_ms = (int)v; break;
        case 'b': if (number("id-base", optarg, 1, 999999999999LL, &v)) return 2; o.id_base = v; break;
        case 's':
            if (st_time_parse(optarg, &o.start_time)) {
                fprintf(stderr, "sealtrack sim: --start: '%s' is not an ISO 8601 time\n", optarg);
                return 2;
            }
            break;
        case 'h': fputs(usage, stdout); return 0;
        default: fputs(usage, stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "sealtrack sim: unexpected argument '%s'\n%s", argv[optind], usage);
        return 2;
    }
    int jt808 = strcmp(o.protocol, "jt808") == 0;
    if (strcmp(o.protocol, "mixed") == 0 && o.id_base >= 0) {
        fprintf(stderr, "sealtrack sim: --id-base does not go with --protocol mixed\n");
        return 2;
    }
    if (o.id_base < 0)
        o.id_base = jt808 ? SIM_JT808_ID_BASE : SIM_JT600_ID_BASE;
    if (!jt808 && o.id_base + o.devices > 9999999999LL) {
        fprintf(stderr, "sealtrack sim: jt600 device ids have 10 digits\n");
        return 2;
    }
    if (o.start_time < 0)
        o.start_time = st_now() - (int64_t)o.reports * 30;
    return sim_run(&o);
}
