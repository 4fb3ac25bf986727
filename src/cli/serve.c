/* serve.c — `sealtrack serve`: settings from defaults, the config file, then flags. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "../api/api.h"
#include "../core/config.h"
#include "../core/err.h"
#include "../core/log.h"
#include "../net/server.h"
#include "cli.h"

static const char usage[] =
    "usage: sealtrack serve [--config FILE] [--port N] [--listen ADDR] [--db FILE]\n"
    "                       [--register auto|known] [--http-port N] [--http-listen ADDR]\n"
    "                       [--set KEY=VALUE]...\n"
    "Listens for devices on one port over TCP and UDP, detects each device's protocol,\n"
    "stores every report in SQLite and acknowledges it only once it is committed.\n"
    "  --config FILE        JSON object of settings (keys as for --set)\n"
    "  --port N             device port, TCP and UDP (default 8888)\n"
    "  --listen ADDR        address to bind (default 0.0.0.0)\n"
    "  --db FILE            SQLite database file (default sealtrack.db)\n"
    "  --register MODE      auto: create unknown devices (default); known: refuse them\n"
    "  --http-port N        HTTP API port (default 8080; 0 = no API; docs/api.md)\n"
    "  --http-listen ADDR   address of the HTTP API (default 0.0.0.0)\n"
    "  --set KEY=VALUE      any setting: idle_timeout, max_conn_per_ip, max_connections,\n"
    "                       raw_frames_max, sync (full|normal), batch_max, queue_max,\n"
    "                       store (sqlite|none: benchmarks only, stores nothing),\n"
    "                       default_tz (minutes), model_tz (MODEL:MINUTES,...),\n"
    "                       log_level (debug|info|warn|error), http_max_body,\n"
    "                       http_max_connections, http_session_hours, http_secure_cookie,\n"
    "                       retention_interval_s, admin_user, admin_password_file\n"
    "Settings are documented in docs/operations.md.\n";

/* admin_user + admin_password_file: create that admin in the organisation named
 * "default" (organisation 1 unless renamed) unless the
 * user exists already (so a restart with the same config changes nothing). */
static int bootstrap_admin(const struct st_config *cfg)
{
    char password[300] = "";
    FILE *f = cfg->admin_password_file[0] ? fopen(cfg->admin_password_file, "r") : NULL;
    if (!f || !fgets(password, sizeof password, f)) {
        fprintf(stderr, "sealtrack serve: admin_user needs a readable admin_password_file\n");
        if (f)
            fclose(f);
        return -1;
    }
    fclose(f);
    password[strcspn(password, "\r\n")] = '\0';
    char err[256];
    int rc = api_user_add(cfg->db, "default", cfg->admin_user, "admin", password, err, sizeof err);
    memset(password, 0, sizeof password);
    if (rc == 0)
        st_log(ST_LOG_INFO, "event=admin_created user=%s", cfg->admin_user);
    else if (rc != ST_EEXIST) {
        fprintf(stderr, "sealtrack serve: admin_user: %s\n", err);
        return -1;
    }
    return 0;
}

int cli_serve(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, 0, 'c'}, {"port", required_argument, 0, 'p'},
        {"listen", required_argument, 0, 'l'}, {"db", required_argument, 0, 'd'},
        {"register", required_argument, 0, 'r'}, {"set", required_argument, 0, 's'},
        {"http-port", required_argument, 0, 'H'}, {"http-listen", required_argument, 0, 'L'},
        {"help", no_argument, 0, 'h'},         {0, 0, 0, 0},
    };
    struct st_config cfg;
    st_config_defaults(&cfg);
    char err[512];
    /* The config file first, whatever its position, so flags override it. */
    for (int i = 1; i < argc - 1; i++)
        if (strcmp(argv[i], "--config") == 0 && st_config_load(&cfg, argv[i + 1], err, sizeof err)) {
            fprintf(stderr, "sealtrack serve: %s\n", err);
            return 2;
        }
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        const char *key = NULL, *value = optarg;
        char kv[512];
        switch (o) {
        case 'c': continue;
        case 'p': key = "port"; break;
        case 'l': key = "listen"; break;
        case 'd': key = "db"; break;
        case 'r': key = "register"; break;
        case 'H': key = "http_port"; break;
        case 'L': key = "http_listen"; break;
        case 's': {
            snprintf(kv, sizeof kv, "%s", optarg);
            char *eq = strchr(kv, '=');
            if (!eq) {
                fprintf(stderr, "sealtrack serve: --set wants KEY=VALUE, got '%s'\n", optarg);
                return 2;
            }
            *eq = '\0';
            key = kv;
            value = eq + 1;
            break;
        }
        case 'h': fputs(usage, stdout); return 0;
        default: fputs(usage, stderr); return 2;
        }
        if (st_config_set(&cfg, key, value, err, sizeof err)) {
            fprintf(stderr, "sealtrack serve: %s\n", err);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "sealtrack serve: unexpected argument '%s'\n%s", argv[optind], usage);
        return 2;
    }
    enum st_log_level level;
    st_log_parse_level(cfg.log_level, &level);
    st_log_set_level(level);
    if (cfg.admin_user[0] && bootstrap_admin(&cfg))
        return 2;
    return server_run(&cfg) ? 1 : 0;
}
