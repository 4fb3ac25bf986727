/* http_test.c — the HTTP server over real sockets on 127.0.0.1.
 *
 * The loop runs in its own thread (handlers, timers and the server live there);
 * the test functions are blocking clients with receive timeouts. Counters the
 * loop thread updates are atomics. The last test closes both servers and
 * checks that the loop ends with nothing left (uv_loop_close == 0). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "../../../src/api/http.h"
#include "../../../src/core/buf.h"
#include "../../../src/core/err.h"
#include "../../../src/core/jsonw.h"
#include "../../../src/core/mem.h"

#define MAX_BODY 1024
#define MAX_HEADER 1024

static uv_loop_t loop;
static uv_async_t stop_async;
static pthread_t loop_thread;
static struct http_server *srv_main, *srv_small;
static int port_main, port_small;

static atomic_int async_dispatched, async_done, async_saw_closed, streams_closed;

/* ---- loop side -------------------------------------------------------------- */

struct async_job {
    uv_timer_t timer;
    struct http_exchange *ex;
};

static void on_handle_freed(uv_handle_t *h)
{
    st_free(h->data);
}

static void on_async_timer(uv_timer_t *t)
{
    struct async_job *job = t->data;
    if (http_exchange_closed(job->ex))
        atomic_fetch_add(&async_saw_closed, 1);
    atomic_fetch_add(&async_done, 1); /* before the client can see the answer */
    http_respond(job->ex, 200, "text/plain", "X-Job: done\r\n", "async ok", 8);
    uv_close((uv_handle_t *)t, on_handle_freed);
}

struct stream_job {
    uv_timer_t timer;
    struct http_exchange *ex;
    int sent, limit; /* limit 0: until the client goes */
};

static void on_stream_closed(void *arg)
{
    struct stream_job *job = arg;
    job->ex = NULL;
    atomic_fetch_add(&streams_closed, 1);
    uv_timer_stop(&job->timer);
    uv_close((uv_handle_t *)&job->timer, on_handle_freed);
}

static void on_stream_timer(uv_timer_t *t)
{
    struct stream_job *job = t->data;
    char ev[32];
    int n = snprintf(ev, sizeof ev, "data: %d\n\n", ++job->sent);
    if (http_stream_write(job->ex, ev, (size_t)n) < 0 ||
        (job->limit && job->sent == job->limit))
        http_stream_end(job->ex); /* on_stream_closed frees job */
}

static void start_stream(struct http_exchange *ex, int limit)
{
    struct stream_job *job = st_calloc(1, sizeof *job);
    job->ex = ex;
    job->limit = limit;
    uv_timer_init(&loop, &job->timer);
    job->timer.data = job;
    http_stream_begin(ex, 200, "text/event-stream", NULL, on_stream_closed, job);
    uv_timer_start(&job->timer, on_stream_timer, 10, 20);
}

static void echo(struct http_exchange *ex, const struct http_request *req)
{
    struct buf out = {0};
    struct jsonw w;
    char a[16];
    int qa = http_query_get(req->query, "a", a, sizeof a);
    const char *xt = http_request_header(req, "x-test");
    jsonw_init(&w, &out);
    jsonw_obj_begin(&w);
    jsonw_key(&w, "method");
    jsonw_str(&w, req->method);
    jsonw_key(&w, "path");
    jsonw_str(&w, req->path);
    jsonw_key(&w, "query");
    jsonw_str(&w, req->query);
    jsonw_key(&w, "a");
    jsonw_str(&w, qa == 1 ? a : "-");
    jsonw_key(&w, "body");
    jsonw_strn(&w, req->body, req->body_len);
    jsonw_key(&w, "x_test");
    jsonw_str(&w, xt ? xt : "-");
    jsonw_obj_end(&w);
    http_respond(ex, 200, "application/json", NULL, out.data, out.len);
    buf_free(&out);
}

static void handler(void *arg, struct http_exchange *ex, const struct http_request *req)
{
    (void)arg;
    if (strcmp(req->path, "/async") == 0) {
        struct async_job *job = st_calloc(1, sizeof *job);
        job->ex = ex;
        uv_timer_init(&loop, &job->timer);
        job->timer.data = job;
        char ms[8];
        /* ?ms= lets the disconnect test leave the loop ample time to notice the client going */
        uint64_t delay = 150;
        if (http_query_get(req->query, "ms", ms, sizeof ms) == 1)
            delay = strtoull(ms, NULL, 10);
        uv_timer_start(&job->timer, on_async_timer, delay, 0);
        atomic_fetch_add(&async_dispatched, 1);
    } else if (strcmp(req->path, "/stream") == 0) {
        start_stream(ex, 3);
    } else if (strcmp(req->path, "/forever") == 0) {
        start_stream(ex, 0);
    } else if (strcmp(req->path, "/error") == 0) {
        http_respond_error(ex, 422, "name", "bad \"name\"");
    } else {
        echo(ex, req);
    }
}

static void on_stop(uv_async_t *a)
{
    http_server_close(srv_main);
    http_server_close(srv_small);
    uv_close((uv_handle_t *)a, NULL);
}

static void *run_loop(void *arg)
{
    (void)arg;
    uv_run(&loop, UV_RUN_DEFAULT);
    return NULL;
}

static int setup(void **state)
{
    (void)state;
    if (uv_loop_init(&loop))
        return -1;
    struct http_server_opts o = {
        .listen = "127.0.0.1",
        .port = 0,
        .max_body = MAX_BODY,
        .max_header = MAX_HEADER,
        .idle_timeout_s = 30,
        .max_connections = 64,
        .handler = handler,
    };
    if (http_server_start(&loop, &o, &srv_main))
        return -1;
    o.idle_timeout_s = 1;
    o.max_connections = 2;
    if (http_server_start(&loop, &o, &srv_small))
        return -1;
    port_main = http_server_port(srv_main);
    port_small = http_server_port(srv_small);
    if (port_main <= 0 || port_small <= 0)
        return -1;
    uv_async_init(&loop, &stop_async, on_stop);
    return pthread_create(&loop_thread, NULL, run_loop, NULL) ? -1 : 0;
}

/* ---- client side -------------------------------------------------------------- */

struct client {
    int fd;
    char buf[65536];
    size_t len;
};

struct response {
    int status;
    char head[2048];
    char body[8192];
    size_t body_len;
};

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void client_open(struct client *c, int port)
{
    c->len = 0;
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(c->fd >= 0);
    struct timeval tv = {5, 0};
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(c->fd, (struct sockaddr *)&sa, sizeof sa), 0);
}

static void client_close(struct client *c)
{
    close(c->fd);
    c->fd = -1;
}

static void send_bytes(struct client *c, const void *p, size_t n)
{
    assert_int_equal(send(c->fd, p, n, MSG_NOSIGNAL), (ssize_t)n);
}

static void send_str(struct client *c, const char *s)
{
    send_bytes(c, s, strlen(s));
}

/* Read more into c->buf; returns bytes read, 0 at EOF, -1 on error or timeout. */
static ssize_t client_fill(struct client *c)
{
    if (c->len == sizeof c->buf)
        return -1;
    ssize_t n = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
    if (n > 0)
        c->len += (size_t)n;
    return n;
}

static void client_consume(struct client *c, size_t n)
{
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
}

/* One response: 0, or -1 when the connection ends (or times out) before one. Without a
 * Content-Length the body runs to the end of the connection. */
static int read_response(struct client *c, struct response *r)
{
    char *end;
    while (!(end = memmem(c->buf, c->len, "\r\n\r\n", 4)))
        if (client_fill(c) <= 0)
            return -1;
    size_t head_len = (size_t)(end - c->buf) + 4;
    if (head_len >= sizeof r->head)
        return -1;
    memcpy(r->head, c->buf, head_len);
    r->head[head_len] = '\0';
    client_consume(c, head_len);
    if (sscanf(r->head, "HTTP/1.1 %d", &r->status) != 1)
        return -1;
    const char *cl = strcasestr(r->head, "\r\ncontent-length:");
    if (cl) {
        r->body_len = strtoul(cl + 17, NULL, 10);
        if (r->body_len >= sizeof r->body)
            return -1;
        while (c->len < r->body_len)
            if (client_fill(c) <= 0)
                return -1;
    } else {
        ssize_t n;
        while ((n = client_fill(c)) > 0)
            ;
        if (n < 0 || c->len >= sizeof r->body)
            return -1;
        r->body_len = c->len;
    }
    memcpy(r->body, c->buf, r->body_len);
    r->body[r->body_len] = '\0';
    client_consume(c, r->body_len);
    return 0;
}

/* True when the server has closed the connection (EOF or reset, nothing else arriving). */
static bool server_closed(struct client *c)
{
    if (c->len)
        return false;
    ssize_t n = client_fill(c);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

static void wait_for(atomic_int *v, int target)
{
    for (int i = 0; i < 500 && atomic_load(v) < target; i++)
        sleep_ms(10);
}

/* ---- tests ------------------------------------------------------------------------ */

static void test_keepalive_two_requests(void **state)
{
    (void)state;
    struct client c;
    struct response r;
    client_open(&c, port_main);
    send_str(&c, "GET /echo?a=x%20y+z&b=2 HTTP/1.1\r\nHost: t\r\nX-Test:  hi there \r\n\r\n");
    assert_int_equal(read_response(&c, &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.head, "Connection: keep-alive\r\n"));
    assert_non_null(strstr(r.head, "Content-Type: application/json\r\n"));
    assert_non_null(strstr(r.head, "Cache-Control: no-store\r\n"));
    assert_non_null(strstr(r.head, "X-Content-Type-Options: nosniff\r\n"));
    assert_non_null(strstr(r.body, "\"method\":\"GET\""));
    assert_non_null(strstr(r.body, "\"path\":\"/echo\""));
    assert_non_null(strstr(r.body, "\"query\":\"a=x%20y+z&b=2\""));
    assert_non_null(strstr(r.body, "\"a\":\"x y z\""));
    assert_non_null(strstr(r.body, "\"x_test\":\"hi there\""));
    send_str(&c, "DELETE /dir%2Fa%20b HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_int_equal(read_response(&c, &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"method\":\"DELETE\""));
    assert_non_null(strstr(r.body, "\"path\":\"/dir/a b\""));
    assert_non_null(strstr(r.body, "\"query\":\"\""));
    client_close(&c);
}

static void test_post_content_length(void **state)
{
    (void)state;
    struct client c;
    struct response r;
    client_open(&c, port_main);
    send_str(&c, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\nhello world");
    assert_int_equal(read_response(&c, &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"method\":\"POST\""));
    assert_non_null(strstr(r.body, "\"body\":\"hello world\""));
    client_close(&c);
}

static void test_chunked_body(void **state)
{
    (void)state;
    struct client c;
    struct response r;
    client_open(&c, port_main);
    send_str(&c, "PUT /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
    assert_int_equal(read_response(&c, &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"body\":\"hello world\""));
    /* The connection stays usable after a chunked request. */
    send_str(&c, "GET /again HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_int_equal(read_response(&c, &r), 0);
    assert_non_null(strstr(r.body, "\"path\":\"/again\""));
    client_close(&c);
}

static void test_pipelined(void **state)
{
    (void)state;
    struct client c;
    struct response r;
    client_open(&c, port_main);
    send_str(&c, "POST /one HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nfirst"
                 "GET /async HTTP/1.1\r\nHost: t\r\n\r\n"
                 "GET /three?a=3 HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_int_equal(read_response(&c, &r), 0);
    assert_non_null(strstr(r.body, "\"path\":\"/one\""));
    assert_non_null(strstr(r.body, "\"body\":\"first\""));
    /* The slow (asynchronous) second answer still comes before the third. */
    assert_int_equal(read_response(&c, &r), 0);
    assert_string_equal(r.body, "async ok");
    assert_non_null(strstr(r.head, "X-Job: done\r\n"));
    assert_int_equal(read_response(&c, &r), 0);
    assert_non_null(strstr(r.body, "\"path\":\"/three\""));
    assert_non_null(strstr(r.body, "\"a\":\"3\""));
    client_close(&c);
}

static void test_byte_by_byte(void **state)
{
    (void)state;
    struct client c;
    struct response r;
    const char *req = "POST /slow?a=1 HTTP/1.1\r\nHost: t\r\nX-Test: split\r\n"
                      "Content-Length: 4\r\n\r\nabcd";
    client_open(&c, port_main);
    for (size_t i = 0; req[i]; i++) {
        send_bytes(&c, req + i, 1);
        sleep_ms(1);
    }
    assert_int_equal(read_response(&c, &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"path\":\"/slow\""));
    assert_non_null(strstr(r.body, "\"x_test\":\"split\""));
    assert_non_null(strstr(r.body, "\"body\":\"abcd\""));
    client_close(&c);
}

static void expect_error_then_close(struct client *c, int status, const char *body_part)
{
    struct response r;
    assert_int_equal(read_response(c, &r), 0);
    assert_int_equal(r.status, status);
    assert_non_null(strstr(r.head, "Content-Type: application/json\r\n"));
    assert_non_null(strstr(r.head, "Connection: close\r\n"));
    assert_memory_equal(r.body, "{\"error\":\"", 10);
    assert_non_null(strstr(r.body, body_part));
    assert_true(server_closed(c));
    client_close(c);
}

static void test_body_too_large(void **state)
{
    (void)state;
    struct client c;
    char req[4096];
    client_open(&c, port_main);
    int n = snprintf(req, sizeof req, "POST /echo HTTP/1.1\r\nContent-Length: %d\r\n\r\n",
                     MAX_BODY + 1);
    memset(req + n, 'x', MAX_BODY + 1);
    send_bytes(&c, req, (size_t)n + MAX_BODY + 1);
    expect_error_then_close(&c, 413, "too large");

    /* Chunked: no total announced, the sum of the chunks counts. */
    client_open(&c, port_main);
    send_str(&c, "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
    n = snprintf(req, sizeof req, "%x\r\n", MAX_BODY / 2 + 1);
    memset(req + n, 'y', MAX_BODY / 2 + 1);
    memcpy(req + n + MAX_BODY / 2 + 1, "\r\n", 2);
    size_t chunk = (size_t)n + MAX_BODY / 2 + 3;
    send_bytes(&c, req, chunk);
    send_bytes(&c, req, chunk);
    expect_error_then_close(&c, 413, "too large");

    /* A body of exactly max_body passes. */
    client_open(&c, port_main);
    n = snprintf(req, sizeof req, "POST /echo HTTP/1.1\r\nContent-Length: %d\r\n\r\n", MAX_BODY);
    memset(req + n, 'z', MAX_BODY);
    send_bytes(&c, req, (size_t)n + MAX_BODY);
    struct response r;
    assert_int_equal(read_response(&c, &r), 0);
    assert_int_equal(r.status, 200);
    client_close(&c);
}

static void test_headers_too_large(void **state)
{
    (void)state;
    struct client c;
    char req[4096];
    client_open(&c, port_main);
    int n = snprintf(req, sizeof req, "GET / HTTP/1.1\r\nX-Big: ");
    memset(req + n, 'a', MAX_HEADER);
    memcpy(req + n + MAX_HEADER, "\r\n\r\n", 4);
    send_bytes(&c, req, (size_t)n + MAX_HEADER + 4);
    expect_error_then_close(&c, 431, "too large");

    /* Sent in pieces that never complete the headers. */
    client_open(&c, port_main);
    send_str(&c, "GET / HTTP/1.1\r\nX-Big: ");
    memset(req, 'b', 600);
    send_bytes(&c, req, 600);
    sleep_ms(20);
    send_bytes(&c, req, 600);
    expect_error_then_close(&c, 431, "too large");

    client_open(&c, port_main);
    struct buf b = {0};
    buf_append_str(&b, "GET / HTTP/1.1\r\n");
    for (int i = 0; i <= HTTP_MAX_HEADERS; i++)
        buf_printf(&b, "X-%d: 1\r\n", i);
    buf_append_str(&b, "\r\n");
    send_bytes(&c, b.data, b.len);
    buf_free(&b);
    expect_error_then_close(&c, 431, "too many header fields");
}

static void test_garbage(void **state)
{
    (void)state;
    struct client c;
    client_open(&c, port_main);
    send_str(&c, "HELLO WORLD\r\n\r\n");
    expect_error_then_close(&c, 400, "\"error\":\"");

    client_open(&c, port_main);
    send_str(&c, "GET / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n");
    expect_error_then_close(&c, 400, "ontent-");

    client_open(&c, port_main);
    send_str(&c, "GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n");
    expect_error_then_close(&c, 400, "upgrade not supported");

    client_open(&c, port_main);
    send_str(&c, "GET http://example.com/ HTTP/1.1\r\n\r\n");
    expect_error_then_close(&c, 400, "\"field\":\"path\"");
}

/* Found by fuzz/http_fuzz.c: llhttp passes a header line with an empty name (": x"). */
static void test_empty_header_name(void **state)
{
    (void)state;
    const char *reqs[] = {"GET / HTTP/1.1\r\n: x\r\n\r\n", "GET / HTTP/1.1\r\nA: 1\r\n:\r\n\r\n"};
    for (size_t i = 0; i < sizeof reqs / sizeof reqs[0]; i++) {
        struct client c;
        client_open(&c, port_main);
        send_str(&c, reqs[i]);
        expect_error_then_close(&c, 400, "\"error\":\"empty header name\"");
    }
}

static void test_bad_escape(void **state)
{
    (void)state;
    const char *paths[] = {"/a%zz", "/a%0", "/a%00b", "/a%"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        struct client c;
        char req[128];
        snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: t\r\n\r\n", paths[i]);
        client_open(&c, port_main);
        send_str(&c, req);
        expect_error_then_close(&c, 400,
                                "\"error\":\"bad percent-escape in path\",\"field\":\"path\"");
    }
}

static void test_respond_error(void **state)
{
    (void)state;
    struct client c;
    struct response r;
    client_open(&c, port_main);
    send_str(&c, "GET /error HTTP/1.1\r\n\r\n");
    assert_int_equal(read_response(&c, &r), 0);
    assert_int_equal(r.status, 422);
    assert_non_null(strstr(r.head, "HTTP/1.1 422 Unprocessable Content\r\n"));
    assert_string_equal(r.body, "{\"error\":\"bad \\\"name\\\"\",\"field\":\"name\"}");
    assert_non_null(strstr(r.head, "Connection: keep-alive\r\n"));
    client_close(&c);
}

static void test_connection_close_and_http10(void **state)
{
    (void)state;
    struct client c;
    struct response r;
    client_open(&c, port_main);
    send_str(&c, "GET /x HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert_int_equal(read_response(&c, &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.head, "Connection: close\r\n"));
    assert_true(server_closed(&c));
    client_close(&c);

    client_open(&c, port_main);
    send_str(&c, "GET /y HTTP/1.0\r\n\r\n");
    assert_int_equal(read_response(&c, &r), 0);
    assert_non_null(strstr(r.body, "\"path\":\"/y\""));
    assert_non_null(strstr(r.head, "Connection: close\r\n"));
    assert_true(server_closed(&c));
    client_close(&c);
}

static void test_expect_continue(void **state)
{
    (void)state;
    struct client c;
    struct response r;
    client_open(&c, port_main);
    send_str(&c, "POST /echo HTTP/1.1\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n");
    char *end;
    while (!(end = memmem(c.buf, c.len, "\r\n\r\n", 4)))
        assert_true(client_fill(&c) > 0);
    assert_memory_equal(c.buf, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    client_consume(&c, 25);
    send_str(&c, "abc");
    assert_int_equal(read_response(&c, &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"body\":\"abc\""));
    client_close(&c);
}

static void test_async_response(void **state)
{
    (void)state;
    struct client c;
    struct response r;
    client_open(&c, port_main);
    send_str(&c, "GET /async HTTP/1.1\r\n\r\n");
    assert_int_equal(read_response(&c, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "async ok");
    client_close(&c);
}

static void test_disconnect_while_async(void **state)
{
    (void)state;
    struct client c;
    int dispatched = atomic_load(&async_dispatched);
    int done = atomic_load(&async_done);
    int saw_closed = atomic_load(&async_saw_closed);
    client_open(&c, port_main);
    send_str(&c, "GET /async?ms=1000 HTTP/1.1\r\n\r\n");
    wait_for(&async_dispatched, dispatched + 1);
    assert_int_equal(atomic_load(&async_dispatched), dispatched + 1);
    client_close(&c);
    wait_for(&async_done, done + 1);
    assert_int_equal(atomic_load(&async_done), done + 1);
    assert_int_equal(atomic_load(&async_saw_closed), saw_closed + 1);
}

static void test_stream(void **state)
{
    (void)state;
    struct client c;
    struct response r;
    int closed = atomic_load(&streams_closed);
    client_open(&c, port_main);
    send_str(&c, "GET /stream HTTP/1.1\r\n\r\n");
    assert_int_equal(read_response(&c, &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.head, "Content-Type: text/event-stream\r\n"));
    assert_non_null(strstr(r.head, "Connection: close\r\n"));
    assert_null(strcasestr(r.head, "content-length"));
    assert_string_equal(r.body, "data: 1\n\ndata: 2\n\ndata: 3\n\n");
    client_close(&c);
    wait_for(&streams_closed, closed + 1);
    sleep_ms(50);
    assert_int_equal(atomic_load(&streams_closed), closed + 1);
}

static void test_stream_client_goes(void **state)
{
    (void)state;
    struct client c;
    int closed = atomic_load(&streams_closed);
    client_open(&c, port_main);
    send_str(&c, "GET /forever HTTP/1.1\r\n\r\n");
    while (!memmem(c.buf, c.len, "data: 2\n\n", 9))
        assert_true(client_fill(&c) > 0);
    assert_int_equal(atomic_load(&streams_closed), closed);
    client_close(&c);
    wait_for(&streams_closed, closed + 1);
    sleep_ms(50);
    assert_int_equal(atomic_load(&streams_closed), closed + 1);
}

static void test_idle_timeout(void **state)
{
    (void)state;
    struct client c;
    struct response r;
    client_open(&c, port_small);
    send_str(&c, "GET /idle HTTP/1.1\r\n\r\n");
    assert_int_equal(read_response(&c, &r), 0);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_true(server_closed(&c)); /* within the 5 s receive timeout */
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    assert_true(ms >= 500 && ms < 3000);
    client_close(&c);
}

static void test_max_connections(void **state)
{
    (void)state;
    struct client a, b, extra;
    struct response r;
    client_open(&a, port_small);
    client_open(&b, port_small);
    send_str(&a, "GET /a HTTP/1.1\r\n\r\n");
    send_str(&b, "GET /b HTTP/1.1\r\n\r\n");
    assert_int_equal(read_response(&a, &r), 0);
    assert_int_equal(read_response(&b, &r), 0);
    client_open(&extra, port_small);
    assert_true(server_closed(&extra));
    client_close(&extra);
    client_close(&a);
    sleep_ms(100); /* the server notices a's end */
    client_open(&extra, port_small);
    send_str(&extra, "GET /c HTTP/1.1\r\n\r\n");
    assert_int_equal(read_response(&extra, &r), 0);
    assert_int_equal(r.status, 200);
    client_close(&extra);
    client_close(&b);
}

static void test_query_get(void **state)
{
    (void)state;
    char out[8];
    assert_int_equal(http_query_get("a=1&b=x%20y&c=p+q", "b", out, sizeof out), 1);
    assert_string_equal(out, "x y");
    assert_int_equal(http_query_get("a=1&b=x%20y&c=p+q", "c", out, sizeof out), 1);
    assert_string_equal(out, "p q");
    assert_int_equal(http_query_get("a=1&b=2", "a", out, sizeof out), 1);
    assert_string_equal(out, "1");
    assert_int_equal(http_query_get("ab=1&b=2", "a", out, sizeof out), 0);
    assert_int_equal(http_query_get("a=1", "b", out, sizeof out), 0);
    assert_string_equal(out, "");
    assert_int_equal(http_query_get("", "a", out, sizeof out), 0);
    assert_int_equal(http_query_get("flag&x=1", "flag", out, sizeof out), 1);
    assert_string_equal(out, "");
    assert_int_equal(http_query_get("x=&y=2", "x", out, sizeof out), 1);
    assert_string_equal(out, "");
    assert_int_equal(http_query_get("a=1&a=2", "a", out, sizeof out), 1);
    assert_string_equal(out, "1");
    assert_int_equal(http_query_get("%41=1", "A", out, sizeof out), 0);
    assert_int_equal(http_query_get("a=1234567", "a", out, sizeof out), 1);
    assert_string_equal(out, "1234567");
    assert_int_equal(http_query_get("a=12345678", "a", out, sizeof out), ST_ERANGE);
    assert_int_equal(http_query_get("a=%zz", "a", out, sizeof out), ST_EMALFORMED);
    assert_int_equal(http_query_get("a=%4", "a", out, sizeof out), ST_EMALFORMED);
    assert_int_equal(http_query_get("a=x%00", "a", out, sizeof out), ST_EMALFORMED);
    assert_int_equal(http_query_get("a=%C3%A9&b", "a", out, sizeof out), 1);
    assert_string_equal(out, "\xc3\xa9");
}

static void test_status_text(void **state)
{
    (void)state;
    assert_string_equal(http_status_text(404), "Not Found");
    assert_string_equal(http_status_text(413), "Content Too Large");
    assert_string_equal(http_status_text(299), "Unknown");
}

/* Last: an open stream and a request with the handler when the servers close. */
static void test_close_servers(void **state)
{
    (void)state;
    struct client s, a;
    int closed = atomic_load(&streams_closed);
    int dispatched = atomic_load(&async_dispatched);
    int done = atomic_load(&async_done);
    client_open(&s, port_main);
    send_str(&s, "GET /forever HTTP/1.1\r\n\r\n");
    while (!memmem(s.buf, s.len, "data: 1\n\n", 9))
        assert_true(client_fill(&s) > 0);
    client_open(&a, port_main);
    send_str(&a, "GET /async HTTP/1.1\r\n\r\n");
    wait_for(&async_dispatched, dispatched + 1);
    assert_int_equal(atomic_load(&async_dispatched), dispatched + 1);

    uv_async_send(&stop_async);
    assert_int_equal(pthread_join(loop_thread, NULL), 0);
    assert_int_equal(atomic_load(&streams_closed), closed + 1);
    assert_int_equal(atomic_load(&async_done), done + 1); /* answered into the void */
    assert_int_equal(uv_loop_close(&loop), 0);
    client_close(&s);
    client_close(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_query_get),
        cmocka_unit_test(test_status_text),
        cmocka_unit_test(test_keepalive_two_requests),
        cmocka_unit_test(test_post_content_length),
        cmocka_unit_test(test_chunked_body),
        cmocka_unit_test(test_pipelined),
        cmocka_unit_test(test_byte_by_byte),
        cmocka_unit_test(test_body_too_large),
        cmocka_unit_test(test_headers_too_large),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_empty_header_name),
        cmocka_unit_test(test_bad_escape),
        cmocka_unit_test(test_respond_error),
        cmocka_unit_test(test_connection_close_and_http10),
        cmocka_unit_test(test_expect_continue),
        cmocka_unit_test(test_async_response),
        cmocka_unit_test(test_disconnect_while_async),
        cmocka_unit_test(test_stream),
        cmocka_unit_test(test_stream_client_goes),
        cmocka_unit_test(test_idle_timeout),
        cmocka_unit_test(test_max_connections),
        cmocka_unit_test(test_close_servers),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
