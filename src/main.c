/* main.c — `sealtrack <subcommand>`: dispatch only. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

#ifndef SEALTRACK_VERSION
#define SEALTRACK_VERSION "dev"
#endif

static const char usage[] =
    "usage: sealtrack <command> [options]   (sealtrack <command> --help for its options)\n"
    "commands:\n"
    "  serve       run the tracking server (devices on one port, TCP and UDP)\n"
    "  sim         simulate JT709A / JT701D devices against a server and check every reply\n"
    "  decode      decode frames from stdin (hex lines or raw bytes) to JSON lines\n"
    "  positions   print stored positions as JSON lines\n"
    "  events      print stored events (unlock, lock, tamper, ...) as JSON lines\n"
    "  raw         print stored raw frames (hex) as JSON lines\n"
    "  devices     print devices with their latest state\n"
    "  device add  add a device or set its name, model, time zone\n"
    "  user add    add an API user (the first admin: password on stdin)\n"
    "  version     print the version\n";

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *cmd = argv[1];
    argc--;
    argv++;
    if (strcmp(cmd, "serve") == 0)
        return cli_serve(argc, argv);
    if (strcmp(cmd, "sim") == 0)
        return cli_sim(argc, argv);
    if (strcmp(cmd, "decode") == 0)
        return cli_decode(argc, argv);
    if (strcmp(cmd, "positions") == 0 || strcmp(cmd, "events") == 0 || strcmp(cmd, "raw") == 0 ||
        strcmp(cmd, "devices") == 0)
        return cli_query(argc, argv);
    if (strcmp(cmd, "device") == 0)
        return cli_device(argc, argv);
    if (strcmp(cmd, "user") == 0)
        return cli_user(argc, argv);
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("sealtrack %s\n", SEALTRACK_VERSION);
        return 0;
    }
    fprintf(stderr, "sealtrack: unknown command '%s'\n%s", cmd, usage);
    return 2;
}
