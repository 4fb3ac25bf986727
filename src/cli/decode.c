/* decode.c — `sealtrack decode`: frames on stdin (hex lines or raw bytes) → one
 * JSON object per decoded report on stdout. Uses the same detection and framing
 * loop as the server. */
#include <ctype.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/buf.h"
#include "../core/err.h"
#include "../core/jsonw.h"
#include "../core/log.h"
#include "../core/timeutil.h"
#include "../model/report_json.h"
#include "../proto/proto.h"
#include "cli.h"

static const char usage[] =
    "usage: sealtrack decode [--raw|--hex] [--tz MINUTES] [--now ISO]\n"
    "Reads device frames on stdin and prints each decoded report as one JSON line.\n"
    "Input is hex text (whitespace and newlines ignored) unless it contains other\n"
    "characters, or --raw is given, in which case the bytes are taken as they are.\n"
    "  --tz MINUTES  zone of device-local times (JT/T 808), minutes east of UTC (default 0)\n"
    "  --now ISO     the time used for time answers (default: now)\n"
    "  --reply       also print the reply each frame is owed (hex) as {\"reply\":…}\n";

struct decoder {
    struct proto_stream ps;
    struct proto_ctx ctx;
    struct buf pending;
    int tz_min;
    int show_reply;
    struct report reports[PROTO_MAX_REPORTS];
    struct proto_reply reply;
    struct buf line;
    int errors;
    char device_id[REPORT_ID_LEN]; /* the stream's last named device, as the server keeps per connection */
};

static void emit(struct decoder *d, const uint8_t *frame, size_t len)
{
    size_t n = 0;
    d->reply.len = 0;
    const struct proto_ops *proto = d->ps.proto;
    int rc = proto->decode(&d->ctx, frame, len, d->reports, PROTO_MAX_REPORTS, &n, &d->reply);
    if (rc < 0 && rc != ST_EUNSUPPORTED) {
        char hex[2 * 32 + 1];
        st_log_hex(frame, len, 32, hex);
        st_log(ST_LOG_WARN, "event=frame_malformed protocol=%s reason=\"%s\" first_bytes=%s",
               proto->name, st_strerror(rc), hex);
        d->errors++;
        return;
    }
    if (rc == ST_EUNSUPPORTED)
        st_log(ST_LOG_WARN, "event=frame_unsupported protocol=%s msg=%s", proto->name,
               n ? d->reports[0].msg_type : "-");
    for (size_t i = 0; i < n; i++) {
        struct report *r = &d->reports[i];
        r->protocol = proto->name;
        /* frames after a login often carry no id (GT06, Teltonika, Wialon): the login named it */
        if (r->device_id[0])
            memcpy(d->device_id, r->device_id, sizeof d->device_id);
        else
            memcpy(r->device_id, d->device_id, sizeof r->device_id);
        if (r->time_is_local && r->fix_time)
            r->fix_time -= (int64_t)d->tz_min * 60;
        struct jsonw w;
        d->line.len = 0;
        jsonw_init(&w, &d->line);
        report_json_write(&w, r);
        buf_append(&d->line, "\n", 1);
        fwrite(d->line.data, 1, d->line.len, stdout);
    }
    if (d->show_reply) {
        char hex[2 * PROTO_REPLY_MAX + 1];
        st_log_hex(d->reply.buf, d->reply.len, PROTO_REPLY_MAX, hex);
        printf("{\"reply\":\"%s\"}\n", hex);
    }
}

static void feed(struct decoder *d, const uint8_t *data, size_t len, int final)
{
    buf_append(&d->pending, data, len);
    size_t off = 0, flen = 0;
    int k;
    while ((k = proto_stream_next(&d->ps, d->pending.data, d->pending.len, &off, &flen)) ==
           PROTO_STREAM_FRAME) {
        emit(d, d->pending.data + off, flen);
        off += flen;
    }
    if (k == PROTO_STREAM_UNKNOWN) {
        char hex[2 * 16 + 1];
        st_log_hex(d->pending.data + off, d->pending.len - off, 16, hex);
        st_log(ST_LOG_WARN, "event=protocol_unknown first_bytes=%s action=\"skipped 1 byte\"", hex);
        d->errors++;
        off++; /* resynchronise: the next protocol may start one byte later */
        d->ps.proto = NULL;
    }
    if (d->ps.skipped) {
        st_log(ST_LOG_WARN, "event=garbage_skipped bytes=%zu", d->ps.skipped);
        d->ps.skipped = 0;
    }
    buf_consume(&d->pending, off);
    if (k == PROTO_STREAM_UNKNOWN && d->pending.len)
        feed(d, NULL, 0, final);
    else if (final && d->pending.len) {
        st_log(ST_LOG_WARN, "event=incomplete_frame bytes=%zu", d->pending.len);
        d->errors++;
    }
}

static int hex_value(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int cli_decode(int argc, char **argv)
{
    static struct decoder d; /* the report array is large */
    int mode = 0; /* 0 auto, 1 hex, 2 raw */
    static const struct option opts[] = {
        {"raw", no_argument, 0, 'r'}, {"hex", no_argument, 0, 'x'},
        {"tz", required_argument, 0, 'z'}, {"now", required_argument, 0, 'n'},
        {"reply", no_argument, 0, 'p'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0},
    };
    memset(&d, 0, sizeof d);
    d.ctx.now = st_now();
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'r': mode = 2; break;
        case 'x': mode = 1; break;
        case 'p': d.show_reply = 1; break;
        case 'z': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end || v < -720 || v > 840) {
                fprintf(stderr, "sealtrack decode: --tz: '%s' is not minutes in -720..840\n", optarg);
                return 2;
            }
            d.tz_min = (int)v;
            break;
        }
        case 'n':
            if (st_time_parse(optarg, &d.ctx.now)) {
                fprintf(stderr, "sealtrack decode: --now: '%s' is not an ISO time\n", optarg);
                return 2;
            }
            break;
        case 'h': fputs(usage, stdout); return 0;
        default: fputs(usage, stderr); return 2;
        }
    }
    /* Streamed in chunks: the input is never held whole. Auto mode decides from the first chunk. */
    uint8_t chunk[65536];
    struct buf bytes = {0};
    int hi = -1;
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, stdin)) > 0) {
        if (mode == 0) {
            mode = 1;
            for (size_t i = 0; i < got; i++)
                if (!isxdigit(chunk[i]) && !isspace(chunk[i]))
                    mode = 2;
        }
        if (mode == 2) {
            feed(&d, chunk, got, 0);
            continue;
        }
        for (size_t i = 0; i < got; i++) {
            int v = hex_value(chunk[i]);
            if (chunk[i] == '\n') { /* a line may hold part of a frame: feed as it comes */
                feed(&d, bytes.data, bytes.len, 0);
                bytes.len = 0;
                hi = -1;
            } else if (v >= 0 && hi < 0) {
                hi = v;
            } else if (v >= 0) {
                uint8_t b = (uint8_t)(hi << 4 | v);
                buf_append(&bytes, &b, 1);
                hi = -1;
            }
        }
    }
    feed(&d, bytes.data, bytes.len, 1);
    buf_free(&bytes);
    buf_free(&d.pending);
    buf_free(&d.line);
    return d.errors ? 1 : 0;
}
