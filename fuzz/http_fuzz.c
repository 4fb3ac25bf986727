/* http_fuzz.c — libFuzzer target for src/api/http.c: the input is a client's byte
 * stream, read by a real connection (http_server_adopt over a socketpair, so the
 * libuv read and write paths are the server's own) in chunks the input chooses.
 *
 * Input: byte 0 = flags (below), byte 1 = chunk size (0: everything in one read),
 * the rest = the stream. The handler answers each request at once, later (after the
 * next chunk arrived), with an error, or as a stream, by its sequence number.
 *
 * Checks: a request reaches the handler only well-formed and only when no other is
 * in flight; every byte written is a well-formed HTTP/1.1 response (interim 100s,
 * Content-Length bodies, streams until the end); the handler's answers leave in
 * request order, none after a Connection: close; the server's own refusals are
 * JSON 4xx that close; everything is freed when the server closes. */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>
#include <uv.h>

#include "src/api/http.h"
#include "src/api/http_internal.h"
#include "src/core/buf.h"
#include "src/core/err.h"
#include "src/core/log.h"

#define MAX_BODY 256
#define MAX_HEADER 512
#define MAX_PENDING 64

enum {
    F_HALF_CLOSE = 1,    /* the client shuts down its sending side after its bytes */
    F_CLOSE_FIRST = 2,   /* the server closes before the late answers are given */
    F_STREAMS = 4,       /* the handler may turn an exchange into a stream */
    F_ERRORS = 8,        /* the handler may answer with http_respond_error */
};                       /* bits 4-7 rotate the handler's choice per request */

struct pending {
    struct http_exchange *ex; /* NULL: answered, or (streams) ended by the server */
    bool stream;
    unsigned seq;
};

static uv_loop_t loop;
static unsigned flags, seq, in_flight;
static struct pending pending[MAX_PENDING];
static size_t n_pending;
static unsigned progress; /* handler calls, answers and bytes read: the pump's quiet test */
static struct buf out;

static void fail(const char *what)
{
    fprintf(stderr, "http_fuzz: %s; output:\n%.*s\n", what, (int)out.len,
            out.len ? (const char *)out.data : "");
    abort();
}

/* ---- the handler ------------------------------------------------------------ */

static void check_request(const struct http_request *r)
{
    if (!r->method || !r->method[0] || !r->path || r->path[0] != '/' || !r->query || !r->body ||
        !r->peer)
        fail("request without method, absolute path, query, body or peer");
    for (const char *m = r->method; *m; m++)
        if ((*m < 'A' || *m > 'Z') && *m != '-')
            fail("method is not a token");
    if (r->body_len > MAX_BODY || r->body[r->body_len] != '\0' ||
        (r->body_len == 0 && r->body[0] != '\0'))
        fail("body over the limit or not NUL-terminated");
    if (r->n_headers > HTTP_MAX_HEADERS)
        fail("more headers than HTTP_MAX_HEADERS");
    for (size_t i = 0; i < r->n_headers; i++) {
        const char *name = r->headers[i].name, *value = r->headers[i].value;
        size_t n = strlen(value);
        if (!name[0] || strpbrk(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") ||
            (n && (value[0] == ' ' || value[0] == '\t' || value[n - 1] == ' ' || value[n - 1] == '\t')))
            fail("header name empty or not lower case, or value not trimmed");
        if (!http_request_header(r, name))
            fail("http_request_header misses a header");
    }
    static const char *const names[] = {"a", "b", "", "device"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char v[8];
        int rc = http_query_get(r->query, names[i], v, sizeof v);
        if ((rc != 0 && rc != 1 && rc != ST_ERANGE && rc != ST_EMALFORMED) || strlen(v) >= sizeof v)
            fail("http_query_get result out of contract");
    }
}

static void on_stream_closed(void *arg)
{
    struct pending *p = arg;
    p->ex = NULL; /* freed right after this */
    progress++;
}

/* The header that tells the client which request an answer is for. */
static void seq_header(char head[32], unsigned n)
{
    snprintf(head, 32, "X-Seq: %u\r\n", n);
}

static void respond(struct http_exchange *ex, unsigned n)
{
    char head[32], body[64];
    seq_header(head, n);
    int len = snprintf(body, sizeof body, "answer %u", n);
    in_flight--;
    progress++;
    if (n % 5 == 4)
        http_respond(ex, 204, NULL, head, NULL, 0);
    else
        http_respond(ex, 200, "text/plain", head, body, (size_t)len);
}

static void handler(void *arg, struct http_exchange *ex, const struct http_request *req)
{
    (void)arg;
    check_request(req);
    if (in_flight)
        fail("a second request reached the handler before the first was answered");
    in_flight++;
    progress++;
    unsigned n = seq++;
    switch (((flags >> 4) + n) % 4) {
    case 0:
        respond(ex, n);
        return;
    case 1:
        if (flags & F_ERRORS) {
            in_flight--;
            http_respond_error(ex, 422, "x", "refused \"here\"");
            return;
        }
        break;
    case 2:
        if (flags & F_STREAMS && n_pending < MAX_PENDING) {
            char head[32];
            seq_header(head, n);
            struct pending *p = &pending[n_pending++];
            *p = (struct pending){.ex = ex, .stream = true, .seq = n};
            in_flight--;
            http_stream_begin(ex, 200, "text/event-stream", head, on_stream_closed, p);
            return;
        }
        break;
    default:
        break;
    }
    if (n_pending == MAX_PENDING) {
        respond(ex, n);
        return;
    }
    pending[n_pending++] = (struct pending){.ex = ex, .seq = n};
}

/* Give the late answers: responses, or a stream's event and its end. */
static void answer_pending(void)
{
    for (size_t i = 0; i < n_pending; i++) {
        struct pending *p = &pending[i];
        if (!p->ex)
            continue;
        if (!p->stream) {
            struct http_exchange *ex = p->ex;
            p->ex = NULL;
            respond(ex, p->seq);
        } else {
            (void)http_stream_write(p->ex, "data: x\n\n", 9);
            if (p->ex) /* a failed write may have ended it */
                http_stream_end(p->ex);
        }
    }
    n_pending = 0;
}

/* ---- the client side --------------------------------------------------------- */

static void read_output(int fd)
{
    char b[4096];
    ssize_t n;
    while ((n = read(fd, b, sizeof b)) > 0) {
        buf_append(&out, b, (size_t)n);
        progress++;
    }
}

/* Run the loop until two turns in a row change nothing (a write's completion shows
 * only one turn after the write). */
static void pump(int fd)
{
    for (int quiet = 0; quiet < 2;) {
        unsigned before = progress;
        uv_run(&loop, UV_RUN_NOWAIT);
        read_output(fd);
        quiet = progress == before ? quiet + 1 : 0;
    }
}

static void send_all(int fd, const uint8_t *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno != EAGAIN)
            return; /* the server has gone: the rest is not read */
        if (w > 0) {
            p += w;
            n -= (size_t)w;
        } else { /* full: the server may wait on the handler to read on */
            pump(fd);
            answer_pending();
        }
    }
}

/* ---- the output check ---------------------------------------------------------- */

static const char *find_crlf(const char *p, const char *end)
{
    for (; p + 1 < end; p++)
        if (p[0] == '\r' && p[1] == '\n')
            return p;
    return NULL;
}

static bool is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

/* Every response well-formed, the handler's in order, nothing after a close; all of
 * the handler's answers arrived when exact. */
static void check_output(bool exact)
{
    const char *p = out.len ? (const char *)out.data : "", *end = p + out.len;
    unsigned next_seq = 0;
    while (p < end) {
        const char *eol = find_crlf(p, end);
        int status;
        char reason[64], text[80];
        if (!eol || eol - p < 13 || memcmp(p, "HTTP/1.1 ", 9) != 0 || !is_digit(p[9]) ||
            !is_digit(p[10]) || !is_digit(p[11]) || p[12] != ' ' || p[9] == '0')
            fail("bad status line");
        status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
        snprintf(reason, sizeof reason, "%.*s", (int)(eol - p - 13), p + 13);
        if (strcmp(reason, http_status_text(status)) != 0)
            fail("reason phrase does not match the status");
        p = eol + 2;
        long length = -1, seq_hdr = -1;
        bool close = false, has_connection = false;
        for (;;) {
            eol = find_crlf(p, end);
            if (!eol)
                fail("head without its end");
            if (eol == p)
                break;
            const char *colon = memchr(p, ':', (size_t)(eol - p));
            if (!colon || colon == p || colon[1] != ' ' || memchr(p, '\n', (size_t)(eol - p)))
                fail("bad header line");
            snprintf(text, sizeof text, "%.*s", (int)(eol - colon - 2), colon + 2);
            size_t nlen = (size_t)(colon - p);
            if (nlen == 14 && strncmp(p, "Content-Length", nlen) == 0)
                length = strtol(text, NULL, 10);
            else if (nlen == 10 && strncmp(p, "Connection", nlen) == 0) {
                has_connection = true;
                close = strcmp(text, "close") == 0;
                if (!close && strcmp(text, "keep-alive") != 0)
                    fail("Connection neither close nor keep-alive");
            } else if (nlen == 5 && strncmp(p, "X-Seq", nlen) == 0)
                seq_hdr = strtol(text, NULL, 10);
            p = eol + 2;
        }
        p = eol + 2;
        if (status == 100) {
            if (has_connection || length >= 0)
                fail("100 Continue with headers");
            continue;
        }
        if (!has_connection)
            fail("response without Connection");
        const char *body = p;
        if (status == 204) {
            if (length >= 0)
                fail("204 with a length");
        } else if (length >= 0) {
            if (end - p < length)
                fail("body shorter than its Content-Length");
            p += length;
        } else {
            if (!close || seq_hdr < 0)
                fail("a body without length that is not the handler's stream");
            p = end; /* a stream runs to the end of the connection */
        }
        if (seq_hdr >= 0 || status == 422) { /* the handler's answer */
            if (seq_hdr >= 0 && seq_hdr != next_seq)
                fail("answers out of request order");
            next_seq++;
        } else { /* refused by http.c: a JSON error, then the connection closes */
            if (length < 0)
                fail("a refusal without Content-Length");
            json_error_t err;
            json_t *j = json_loadb(body, (size_t)length, 0, &err);
            if ((status != 400 && status != 413 && status != 431) || !close || !j ||
                !json_is_string(json_object_get(j, "error")))
                fail("a refusal that is not a closing JSON 400/413/431");
            json_decref(j);
        }
        if (close && p < end)
            fail("bytes after a Connection: close response");
    }
    if (next_seq > seq || (exact && next_seq != seq))
        fail(exact ? "an answer of the handler is missing" : "more answers than the handler gave");
}

/* ---- the target --------------------------------------------------------------- */

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    signal(SIGPIPE, SIG_IGN);
    st_log_set_level(ST_LOG_ERROR); /* every refusal logs a warning */
    uv_loop_init(&loop);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* One server for many inputs (starting one costs more than an input); an input
     * that closes it gets the next one a new server. */
    static struct http_server *srv;
    if (size < 2 || size > 32768)
        return 0;
    flags = data[0];
    size_t chunk = data[1] ? data[1] : size;
    data += 2;
    size -= 2;
    struct http_server_opts o = {.listen = "127.0.0.1", .max_body = MAX_BODY,
                                 .max_header = MAX_HEADER, .idle_timeout_s = 60,
                                 .max_connections = 4, .handler = handler};
    int sv[2];
    if ((!srv && http_server_start(&loop, &o, &srv)) ||
        socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) ||
        http_server_adopt(srv, sv[0]))
        fail("setup");
    seq = in_flight = 0;
    for (size_t pos = 0; pos < size; pos += chunk) {
        send_all(sv[1], data + pos, size - pos < chunk ? size - pos : chunk);
        answer_pending(); /* late: after the next bytes arrived */
        pump(sv[1]);
    }
    if (flags & F_HALF_CLOSE) {
        shutdown(sv[1], SHUT_WR);
        pump(sv[1]);
    }
    if (flags & F_CLOSE_FIRST) {
        http_server_close(srv);
        srv = NULL;
        answer_pending(); /* to exchanges whose client has gone: freed, not written */
        uv_run(&loop, UV_RUN_DEFAULT);
        if (uv_loop_alive(&loop))
            fail("handles left after the server closed");
        read_output(sv[1]);
    } else {
        while (n_pending) { /* each answer lets the next pipelined request through */
            answer_pending();
            pump(sv[1]);
        }
    }
    close(sv[1]);
    /* A client that neither half-closed nor saw the server close first gets every answer. */
    check_output(!(flags & (F_HALF_CLOSE | F_CLOSE_FIRST)));
    out.len = 0;
    /* The client has gone: its connection must go too, whatever state it was in. */
    for (int turns = 0; srv && http_server_conns_held(srv); turns++) {
        if (turns == 8)
            fail("connection not freed after its client closed");
        uv_run(&loop, UV_RUN_NOWAIT);
    }
    return 0;
}
