/* query.c — `sealtrack positions|events|devices|raw` and `sealtrack device add`:
 * read what is stored, as JSON lines, before the HTTP API exists. */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/config.h"
#include "../core/err.h"
#include "../core/timeutil.h"
#include "../proto/proto.h"
#include "../store/query.h"
#include "cli.h"

static const char query_usage[] =
    "usage: sealtrack positions|events|raw [--db FILE] [--device ID] [--since ISO] [--until ISO]\n"
    "                                  [--limit N] [--type TYPE]   (events only)\n"
    "       sealtrack devices [--db FILE]\n"
    "Prints stored rows as JSON lines, oldest first. Times are ISO 8601 UTC\n"
    "(2025-11-18T11:26:11Z), a date (2025-11-18) or epoch seconds.\n"
    "  --db FILE     SQLite database (default sealtrack.db, or the config file's db)\n"
    "  --config FILE read db from this config file\n";

static int load_db(const char *config, char *db, size_t cap)
{
    struct st_config c;
    st_config_defaults(&c);
    char err[512];
    if (config && st_config_load(&c, config, err, sizeof err)) {
        fprintf(stderr, "sealtrack: %s\n", err);
        return ST_ECONFIG;
    }
    snprintf(db, cap, "%s", c.db);
    return 0;
}

int cli_query(int argc, char **argv)
{
    const char *what = argv[0];
    static const struct option opts[] = {
        {"db", required_argument, 0, 'd'},     {"config", required_argument, 0, 'c'},
        {"device", required_argument, 0, 'i'}, {"since", required_argument, 0, 's'},
        {"until", required_argument, 0, 'u'},  {"limit", required_argument, 0, 'l'},
        {"type", required_argument, 0, 't'},   {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    struct query_range q = {0};
    const char *db_flag = NULL, *config = NULL;
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'd': db_flag = optarg; break;
        case 'c': config = optarg; break;
        case 'i': q.device = optarg; break;
        case 't': q.type = optarg; break;
        case 's':
        case 'u':
            if (st_time_parse(optarg, o == 's' ? &q.since : &q.until)) {
                fprintf(stderr, "sealtrack %s: --%s: '%s' is not an ISO 8601 time\n", what,
                        o == 's' ? "since" : "until", optarg);
                return 2;
            }
            break;
        case 'l': {
            char *end;
            q.limit = strtoll(optarg, &end, 10);
            if (*end || q.limit <= 0) {
                fprintf(stderr, "sealtrack %s: --limit: '%s' is not a positive number\n", what,
                        optarg);
                return 2;
            }
            break;
        }
        case 'h': fputs(query_usage, stdout); return 0;
        default: fputs(query_usage, stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "sealtrack %s: unexpected argument '%s'\n%s", what, argv[optind],
                query_usage);
        return 2;
    }
    char db[512];
    if (db_flag)
        snprintf(db, sizeof db, "%s", db_flag);
    else if (load_db(config, db, sizeof db))
        return 2;
    int rc;
    if (strcmp(what, "positions") == 0)
        rc = query_positions(db, &q, stdout);
    else if (strcmp(what, "events") == 0)
        rc = query_events(db, &q, stdout);
    else if (strcmp(what, "raw") == 0)
        rc = query_raw(db, &q, stdout);
    else
        rc = query_devices(db, stdout);
    return rc ? 1 : 0;
}

static const char device_usage[] =
    "usage: sealtrack device add ID [--name NAME] [--model MODEL] [--tz MINUTES]\n"
    "                               [--dialect NAME] [--db FILE]\n"
    "Adds a device (needed with register=known) or updates its name, model, time zone or\n"
    "protocol dialect.\n"
    "  --dialect NAME   vendor variant of the device's protocol: JT/T 808 devices are read with\n"
    "                   Jointech meanings (jointech, the default) or the standard's (standard)\n"
    "  --tz MINUTES  zone of the device's local times, minutes east of UTC (JT/T 808\n"
    "                devices: Jointech sends UTC = 0, standard firmware GMT+8 = 480)\n";

int cli_device(int argc, char **argv)
{
    static const struct option opts[] = {
        {"db", required_argument, 0, 'd'},    {"config", required_argument, 0, 'c'},
        {"name", required_argument, 0, 'n'},  {"model", required_argument, 0, 'm'},
        {"tz", required_argument, 0, 'z'},    {"dialect", required_argument, 0, 'D'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    if (argc >= 2 && strcmp(argv[1], "--help") == 0) {
        fputs(device_usage, stdout);
        return 0;
    }
    if (argc < 2 || strcmp(argv[1], "add") != 0) {
        fputs(device_usage, stderr);
        return 2;
    }
    const char *db_flag = NULL, *config = NULL, *name = NULL, *model = NULL, *dialect = NULL;
    int tz = INT32_MIN;
    int o;
    optind = 2;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'd': db_flag = optarg; break;
        case 'c': config = optarg; break;
        case 'n': name = optarg; break;
        case 'm': model = optarg; break;
        case 'D': dialect = optarg; break;
        case 'z': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end || v < -720 || v > 840) {
                fprintf(stderr, "sealtrack device: --tz: '%s' is not minutes in -720..840\n",
                        optarg);
                return 2;
            }
            tz = (int)v;
            break;
        }
        case 'h': fputs(device_usage, stdout); return 0;
        default: fputs(device_usage, stderr); return 2;
        }
    }
    if (optind != argc - 1) {
        fputs(device_usage, stderr);
        return 2;
    }
    const char *uid = argv[optind];
    if (!*uid || strlen(uid) >= 24) {
        fprintf(stderr, "sealtrack device: ID must be 1..23 characters\n");
        return 2;
    }
    char db[512];
    if (db_flag)
        snprintf(db, sizeof db, "%s", db_flag);
    else if (load_db(config, db, sizeof db))
        return 2;
    if (dialect && !proto_dialect_known(dialect)) {
        fprintf(stderr, "sealtrack device: --dialect: no protocol has a variant '%s'\n", dialect);
        return 2;
    }
    return query_device_add(db, uid, name, model, tz, dialect) ? 1 : 0;
}
