/* user.c — `sealtrack user add`: create an API user (the first admin) from the command line. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "../api/api.h"
#include "../core/err.h"
#include "cli.h"

static const char usage[] =
    "usage: sealtrack user add --name NAME [--role admin|operator|viewer] [--org NAME]\n"
    "                          [--db FILE] < password\n"
    "Creates an API user; the password is the first line of standard input (8..256\n"
    "characters). --org names the organisation (created when absent; default \"default\",\n"
    "organisation 1, whose admins administer every organisation). Default role: admin.\n";

int cli_user(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "add") != 0) {
        fputs(usage, argc >= 2 && strcmp(argv[1], "--help") == 0 ? stdout : stderr);
        return argc >= 2 && strcmp(argv[1], "--help") == 0 ? 0 : 2;
    }
    argc--;
    argv++;
    static const struct option opts[] = {
        {"db", required_argument, 0, 'd'},   {"name", required_argument, 0, 'n'},
        {"role", required_argument, 0, 'r'}, {"org", required_argument, 0, 'o'},
        {"help", no_argument, 0, 'h'},       {0, 0, 0, 0},
    };
    const char *db = "sealtrack.db", *name = NULL, *role = "admin", *org = "default";
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'd': db = optarg; break;
        case 'n': name = optarg; break;
        case 'r': role = optarg; break;
        case 'o': org = optarg; break;
        case 'h': fputs(usage, stdout); return 0;
        default: fputs(usage, stderr); return 2;
        }
    }
    if (!name || optind < argc) {
        fputs(usage, stderr);
        return 2;
    }
    char password[300];
    if (!fgets(password, sizeof password, stdin)) {
        fprintf(stderr, "sealtrack user add: no password on standard input\n");
        return 2;
    }
    password[strcspn(password, "\r\n")] = '\0';
    char err[256];
    int rc = api_user_add(db, org, name, role, password, err, sizeof err);
    memset(password, 0, sizeof password);
    if (rc) {
        fprintf(stderr, "sealtrack user add: %s\n", err);
        return rc == ST_ECONFIG || rc == ST_EEXIST ? 2 : 1;
    }
    printf("user %s (%s) added to organisation %s\n", name, role, org);
    return 0;
}
