/* http.c — HTTP/1.1 on the device server's loop (see http.h).
 *
 * A connection parses with llhttp straight from the shared read buffer. When a
 * request is complete the parser pauses: the request goes to the handler and
 * later bytes (pipelined requests) wait in conn->in until its response has been
 * written; then parsing resumes, so responses leave in request order and one
 * client cannot queue unbounded output. Requests refused here (limits, bad
 * syntax) get a JSON 4xx with Connection: close, and so does the end of every
 * non-keep-alive exchange: the connection then drains — it shuts down its
 * sending side and discards input until the client closes — so the client
 * reads the answer instead of a reset caused by unread bytes.
 *
 * Lifetimes: a connection is freed once libuv has released its handle and its
 * writes and shutdown completed; an exchange with the handler outlives its
 * connection (conn NULL) until the handler responds; the server is freed once
 * its last handle (listener, sweep timer, connections) is released.
 */
#include "http.h"
#include "http_internal.h"

#include <arpa/inet.h>
#include <llhttp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "../core/buf.h"
#include "../core/err.h"
#include "../core/jsonw.h"
#include "../core/log.h"
#include "../core/mem.h"

#define READ_BUF_SIZE 65536
#define STREAM_PENDING_MAX (1024 * 1024)
/* Bytes of later (pipelined) requests kept while one is with the handler before reading
 * pauses (TCP flow control then holds the client back). */
#define PIPELINE_BUF_MAX 65536
/* How long a closing connection waits for the client to read its last answer and close. */
#define LINGER_MS 2000
#define SWEEP_MS 1000
/* ": " and CRLF of each header line, counted toward max_header. */
#define HEADER_LINE_OVERHEAD 4
/* Method, spaces, version and CRLF of the request line, counted toward max_header. */
#define REQUEST_LINE_OVERHEAD 20

enum conn_mode {
    CONN_READING, /* parsing a request */
    CONN_WAITING, /* a request is with the handler, or its response is being written */
    CONN_STREAM,  /* a streamed response: input is discarded */
    CONN_DRAIN,   /* the last response is queued: input is discarded, closing follows */
};

enum ex_state { EX_HEAD, EX_BODY, EX_HANDLER, EX_STREAM };

struct http_exchange {
    struct http_conn *conn; /* NULL once the client has gone */
    enum ex_state state;
    struct http_request req;
    struct buf url;
    struct buf head; /* "name\0value\0" per header */
    size_t name_off[HTTP_MAX_HEADERS], value_off[HTTP_MAX_HEADERS];
    size_t n_headers;
    bool field_open, value_open;
    size_t head_bytes; /* request line and headers seen through callbacks */
    size_t raw_head;   /* bytes of reads that ended inside the head */
    struct buf body;
    char *path;
    bool keep_alive;
    void (*on_close)(void *arg);
    void *close_arg;
    char peer[48];
};

struct http_conn {
    uv_tcp_t tcp;
    uv_shutdown_t shutdown_req;
    struct http_server *srv;
    llhttp_t parser;
    enum conn_mode mode;
    struct http_exchange *ex; /* being parsed, with the handler, or streaming */
    struct buf in;            /* unparsed bytes while the parser is paused */
    size_t writing;           /* bytes handed to uv_write, not yet completed */
    uint64_t deadline_ms;     /* 0: none */
    bool reading, closing, closed, shutdown_started, shutdown_pending, peer_eof;
    int reject_status; /* set by a parser callback that refuses the request */
    const char *reject_field, *reject_msg;
    char ip[48];
    char peer[64];
    struct http_conn *prev, *next;
};

struct http_server {
    uv_loop_t *loop;
    uv_tcp_t listener;
    uv_timer_t sweep;
    struct http_server_opts opts;
    llhttp_settings_t settings;
    struct http_conn *conns; /* open (not closing) connections */
    size_t n_conns;
    size_t handles; /* libuv handles not yet released, connections included */
    int port;
    bool closing;
    char read_buf[READ_BUF_SIZE];
};

struct write_req {
    uv_write_t req;
    struct http_conn *conn;
    size_t len;
    uint8_t *data;
};

static void conn_close(struct http_conn *c, const char *reason);
static void conn_parse(struct http_conn *c, const char *data, size_t len, bool from_in);

/* ---- small helpers --------------------------------------------------------- */

const char *http_status_text(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Unknown";
    }
}

static int hex_digit(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Percent-decode s[0..n) into out (cap bytes, NUL-terminated); '+' is a space when plus_space.
 * %00 is refused: the result is a C string. */
static int percent_decode(const char *s, size_t n, bool plus_space, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (ch == '%') {
            if (n - i < 3)
                return ST_EMALFORMED;
            int hi = hex_digit(s[i + 1]), lo = hex_digit(s[i + 2]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                return ST_EMALFORMED;
            ch = (char)(hi * 16 + lo);
            i += 2;
        } else if (ch == '+' && plus_space) {
            ch = ' ';
        }
        if (o + 1 >= cap)
            return ST_ERANGE;
        out[o++] = ch;
    }
    if (cap == 0)
        return ST_ERANGE;
    out[o] = '\0';
    return 0;
}

int http_query_get(const char *query, const char *name, char *out, size_t cap)
{
    size_t name_len = strlen(name);
    const char *p = query;
    while (*p) {
        size_t pair_len = strcspn(p, "&");
        size_t key_len = strcspn(p, "=&");
        if (key_len == name_len && memcmp(p, name, name_len) == 0) {
            const char *value = p + key_len < p + pair_len ? p + key_len + 1 : p + pair_len;
            int rc = percent_decode(value, (size_t)(p + pair_len - value), true, out, cap);
            if (rc < 0 && cap > 0)
                out[0] = '\0';
            return rc < 0 ? rc : 1;
        }
        p += pair_len;
        if (*p == '&')
            p++;
    }
    if (cap > 0)
        out[0] = '\0';
    return 0;
}

const char *http_request_header(const struct http_request *r, const char *lname)
{
    for (size_t i = 0; i < r->n_headers; i++)
        if (strcmp(r->headers[i].name, lname) == 0)
            return r->headers[i].value;
    return NULL;
}

bool http_exchange_closed(const struct http_exchange *ex)
{
    return ex->conn == NULL;
}

static uint64_t loop_now(const struct http_server *s)
{
    return uv_now(s->loop);
}

static uint64_t idle_deadline(const struct http_server *s)
{
    return s->opts.idle_timeout_s > 0 ? loop_now(s) + (uint64_t)s->opts.idle_timeout_s * 1000 : 0;
}

/* ---- lifetimes ------------------------------------------------------------- */

static void server_release(struct http_server *s)
{
    if (--s->handles == 0 && s->closing)
        st_free(s);
}

static void on_server_handle_closed(uv_handle_t *h)
{
    server_release(h->data);
}

static void exchange_free(struct http_exchange *ex)
{
    buf_free(&ex->url);
    buf_free(&ex->head);
    buf_free(&ex->body);
    st_free(ex->path);
    st_free(ex);
}

/* The end of a stream for any reason: on_close once, then the exchange goes. */
static void stream_finish(struct http_exchange *ex)
{
    void (*on_close)(void *) = ex->on_close;
    ex->on_close = NULL;
    ex->conn = NULL;
    if (on_close)
        on_close(ex->close_arg);
    exchange_free(ex);
}

static void conn_free_if_done(struct http_conn *c)
{
    if (!c->closed || c->writing || c->shutdown_pending)
        return;
    struct http_server *s = c->srv;
    buf_free(&c->in);
    st_free(c);
    server_release(s);
}

static void on_conn_closed(uv_handle_t *h)
{
    struct http_conn *c = h->data;
    c->closed = true;
    conn_free_if_done(c);
}

static void conn_unlink(struct http_server *s, struct http_conn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
}

/* reason: a leading '-' marks a normal end (logged at debug level only). */
static void conn_close(struct http_conn *c, const char *reason)
{
    if (c->closing)
        return;
    struct http_server *s = c->srv;
    c->closing = true;
    conn_unlink(s, c);
    s->n_conns--;
    struct http_exchange *ex = c->ex;
    c->ex = NULL;
    if (ex && ex->state == EX_HANDLER)
        ex->conn = NULL; /* the handler still owns it: http_respond frees it */
    else if (ex && ex->state == EX_STREAM)
        stream_finish(ex);
    else if (ex)
        exchange_free(ex);
    st_log(reason[0] == '-' ? ST_LOG_DEBUG : ST_LOG_INFO,
           "event=http_conn_closed peer=%s reason=\"%s\"", c->peer,
           reason[0] == '-' ? reason + 1 : reason);
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

/* ---- output ------------------------------------------------------------------ */

static void conn_writes_done(struct http_conn *c);

static void on_written(uv_write_t *req, int status)
{
    struct write_req *w = (struct write_req *)req;
    struct http_conn *c = w->conn;
    c->writing -= w->len;
    st_free(w->data);
    st_free(w);
    if (c->closing) {
        conn_free_if_done(c);
        return;
    }
    if (status < 0)
        conn_close(c, uv_strerror(status));
    else if (c->writing == 0)
        conn_writes_done(c);
}

/* Queue b's bytes on the socket; takes b's memory. Returns 0 or ST_EIO. */
static int conn_write_buf(struct http_conn *c, struct buf *b)
{
    struct write_req *w = st_malloc(sizeof *w);
    w->conn = c;
    w->len = b->len;
    w->data = b->data;
    *b = (struct buf){0};
    uv_buf_t ub = uv_buf_init((char *)w->data, (unsigned)w->len);
    c->writing += w->len;
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &ub, 1, on_written) < 0) {
        c->writing -= w->len;
        st_free(w->data);
        st_free(w);
        return ST_EIO;
    }
    return 0;
}

static void head_begin(struct buf *b, int status, const char *content_type)
{
    buf_printf(b, "HTTP/1.1 %d %s\r\n", status, http_status_text(status));
    if (content_type)
        buf_printf(b, "Content-Type: %s\r\n", content_type);
}

static void head_end(struct buf *b, bool keep_alive, const char *extra_headers)
{
    buf_printf(b, "Connection: %s\r\n", keep_alive ? "keep-alive" : "close");
    buf_append_str(b, "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n");
    if (extra_headers)
        buf_append_str(b, extra_headers);
    buf_append(b, "\r\n", 2);
}

/* Queue a complete response; returns 0 or ST_EIO. */
static int conn_send_response(struct http_conn *c, int status, const char *content_type,
                              const char *extra_headers, const void *body, size_t len,
                              bool keep_alive)
{
    struct buf b = {0};
    bool has_body = status != 204 && status != 304; /* these carry no body nor length */
    head_begin(&b, status, content_type);
    if (has_body)
        buf_printf(&b, "Content-Length: %zu\r\n", len);
    head_end(&b, keep_alive, extra_headers);
    if (has_body)
        buf_append(&b, body, len);
    return conn_write_buf(c, &b);
}

void http_error_json(struct buf *b, const char *field, const char *message)
{
    struct jsonw w;
    jsonw_init(&w, b);
    jsonw_obj_begin(&w);
    jsonw_key(&w, "error");
    jsonw_str(&w, message);
    if (field) {
        jsonw_key(&w, "field");
        jsonw_str(&w, field);
    }
    jsonw_obj_end(&w);
}

static void conn_read_more(struct http_conn *c);

/* No more requests on c: once its output is written it shuts down and drains. */
static void conn_drain(struct http_conn *c)
{
    c->mode = CONN_DRAIN;
    c->deadline_ms = loop_now(c->srv) + LINGER_MS;
    buf_free(&c->in);
    if (c->writing == 0)
        conn_writes_done(c);
    else
        conn_read_more(c);
}

/* A request refused here: JSON error, logged, connection closes after it. */
static void conn_reject(struct http_conn *c, int status, const char *field, const char *message)
{
    /* message is one of ours or llhttp's fixed reasons: no client text to sanitise */
    st_log(ST_LOG_WARN, "event=http_bad_request peer=%s status=%d reason=\"%s\"", c->peer, status,
           message);
    if (c->ex) {
        exchange_free(c->ex);
        c->ex = NULL;
    }
    struct buf body = {0};
    http_error_json(&body, field, message);
    int rc = conn_send_response(c, status, "application/json", NULL, body.data, body.len, false);
    buf_free(&body);
    if (rc < 0)
        conn_close(c, "write failed");
    else
        conn_drain(c);
}

/* ---- input ------------------------------------------------------------------- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    (void)suggested;
    struct http_conn *c = h->data;
    b->base = c->srv->read_buf;
    b->len = READ_BUF_SIZE;
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *b);

static void conn_read_more(struct http_conn *c)
{
    if (c->reading || c->closing || c->peer_eof ||
        (c->mode == CONN_WAITING && c->in.len > PIPELINE_BUF_MAX))
        return;
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0)
        conn_close(c, "read failed");
    else
        c->reading = true;
}

static void conn_read_stop(struct http_conn *c)
{
    if (c->reading)
        uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = false;
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    struct http_conn *c = req->data;
    c->shutdown_pending = false;
    if (c->closing)
        conn_free_if_done(c);
    else if (status < 0)
        conn_close(c, uv_strerror(status));
}

/* All queued output is written. */
static void conn_writes_done(struct http_conn *c)
{
    if (c->mode == CONN_WAITING && !c->ex) {
        /* The response has left: parse what the client pipelined meanwhile. */
        c->mode = CONN_READING;
        c->deadline_ms = idle_deadline(c->srv);
        llhttp_resume(&c->parser);
        if (c->in.len)
            conn_parse(c, (const char *)c->in.data, c->in.len, true);
        if (c->in.len == 0)
            buf_free(&c->in); /* idle connections hold no buffer */
        conn_read_more(c);
        return;
    }
    if (c->mode != CONN_DRAIN || c->shutdown_started)
        return;
    if (c->peer_eof) {
        conn_close(c, "-done");
        return;
    }
    c->shutdown_started = true;
    c->shutdown_req.data = c;
    if (uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, on_shutdown) < 0) {
        conn_close(c, "shutdown failed");
        return;
    }
    c->shutdown_pending = true;
    conn_read_more(c); /* discard until the client closes (or the linger deadline) */
}

static void conn_dispatch(struct http_conn *c)
{
    struct http_exchange *ex = c->ex;
    ex->state = EX_HANDLER;
    c->mode = CONN_WAITING;
    c->deadline_ms = 0; /* the handler takes its time; the client may wait */
    if (c->in.len > PIPELINE_BUF_MAX)
        conn_read_stop(c);
    c->srv->opts.handler(c->srv->opts.arg, ex, &ex->req);
}

/* Feed bytes to the parser. from_in: data is c->in (bytes kept while paused). */
static void conn_parse(struct http_conn *c, const char *data, size_t len, bool from_in)
{
    bool in_head = !c->ex || c->ex->state == EX_HEAD;
    llhttp_errno_t e = llhttp_execute(&c->parser, data, len);
    if (e == HPE_OK) {
        if (from_in)
            c->in.len = 0;
        /* These bytes were all request line or headers: bound them even when no callback
         * counts them (blanks between tokens). */
        if (in_head && c->ex && c->ex->state == EX_HEAD) {
            c->ex->raw_head += len;
            if (c->ex->raw_head > c->srv->opts.max_header)
                conn_reject(c, 431, NULL, "request line and headers too large");
        }
        return;
    }
    if (e == HPE_PAUSED) {
        size_t used = (size_t)(llhttp_get_error_pos(&c->parser) - data);
        if (from_in)
            buf_consume(&c->in, used);
        else
            buf_append(&c->in, data + used, len - used);
        conn_dispatch(c);
        return;
    }
    if (c->reject_status) {
        conn_reject(c, c->reject_status, c->reject_field, c->reject_msg);
        return;
    }
    const char *reason = llhttp_get_error_reason(&c->parser);
    conn_reject(c, 400, NULL, reason && reason[0] ? reason : llhttp_errno_name(e));
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *b)
{
    struct http_conn *c = st->data;
    if (nread < 0) {
        if (nread == UV_EOF && c->writing &&
            (c->mode == CONN_DRAIN || (c->mode == CONN_WAITING && !c->ex))) {
            /* A client that only half-closed still gets the response being written. */
            c->peer_eof = true;
            conn_read_stop(c);
            if (c->mode == CONN_WAITING)
                conn_drain(c);
            return;
        }
        conn_close(c, nread == UV_EOF ? "-peer closed" : uv_strerror((int)nread));
        return;
    }
    size_t len = (size_t)nread;
    switch (c->mode) {
    case CONN_READING:
        c->deadline_ms = idle_deadline(c->srv);
        conn_parse(c, b->base, len, false);
        break;
    case CONN_WAITING:
        buf_append(&c->in, b->base, len);
        if (c->in.len > PIPELINE_BUF_MAX)
            conn_read_stop(c);
        break;
    case CONN_STREAM:
    case CONN_DRAIN:
        break; /* no more requests on this connection */
    }
}

/* ---- llhttp callbacks -------------------------------------------------------- */

static int refuse(llhttp_t *p, int status, const char *field, const char *message)
{
    struct http_conn *c = p->data;
    c->reject_status = status;
    c->reject_field = field;
    c->reject_msg = message;
    return -1;
}

static int head_grow(llhttp_t *p, size_t n)
{
    struct http_conn *c = p->data;
    c->ex->head_bytes += n;
    if (c->ex->head_bytes > c->srv->opts.max_header)
        return refuse(p, 431, NULL, "request line and headers too large");
    return 0;
}

static int on_message_begin(llhttp_t *p)
{
    struct http_conn *c = p->data;
    struct http_exchange *ex = st_calloc(1, sizeof *ex);
    ex->conn = c;
    ex->state = EX_HEAD;
    memcpy(ex->peer, c->ip, sizeof ex->peer);
    c->ex = ex;
    return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t len)
{
    struct http_conn *c = p->data;
    if (head_grow(p, len))
        return -1;
    buf_append(&c->ex->url, at, len);
    return 0;
}

/* A new header line starts (its name may come in several pieces). */
static int header_begin(llhttp_t *p)
{
    struct http_exchange *ex = ((struct http_conn *)p->data)->ex;
    if (ex->n_headers == HTTP_MAX_HEADERS)
        return refuse(p, 431, NULL, "too many header fields");
    if (head_grow(p, HEADER_LINE_OVERHEAD))
        return -1;
    ex->name_off[ex->n_headers++] = ex->head.len;
    ex->field_open = true;
    return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
    struct http_exchange *ex = ((struct http_conn *)p->data)->ex;
    if (head_grow(p, len))
        return -1;
    if (ex->state != EX_HEAD)
        return 0; /* trailers: counted, not kept */
    if (!ex->field_open && header_begin(p))
        return -1;
    buf_reserve(&ex->head, len);
    for (size_t i = 0; i < len; i++) {
        char ch = at[i];
        ex->head.data[ex->head.len++] = (uint8_t)(ch >= 'A' && ch <= 'Z' ? ch + ('a' - 'A') : ch);
    }
    return 0;
}

static int on_header_field_complete(llhttp_t *p)
{
    struct http_exchange *ex = ((struct http_conn *)p->data)->ex;
    if (ex->state != EX_HEAD)
        return 0;
    if (!ex->field_open && header_begin(p))
        return -1;
    if (ex->head.len == ex->name_off[ex->n_headers - 1]) /* llhttp lets ": value" through */
        return refuse(p, 400, NULL, "empty header name");
    buf_append(&ex->head, "", 1);
    ex->field_open = false;
    ex->value_off[ex->n_headers - 1] = ex->head.len;
    ex->value_open = true;
    return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
    struct http_exchange *ex = ((struct http_conn *)p->data)->ex;
    if (head_grow(p, len))
        return -1;
    if (ex->state == EX_HEAD && ex->value_open)
        buf_append(&ex->head, at, len);
    return 0;
}

static int on_header_value_complete(llhttp_t *p)
{
    struct http_exchange *ex = ((struct http_conn *)p->data)->ex;
    if (ex->state == EX_HEAD && ex->value_open) {
        buf_append(&ex->head, "", 1);
        ex->value_open = false;
    }
    return 0;
}

static bool is_blank(char ch)
{
    return ch == ' ' || ch == '\t';
}

/* Fill ex->req's method, path, query and headers; 0 or -1 (request refused). */
static int request_head_finish(llhttp_t *p, struct http_exchange *ex)
{
    if (ex->value_open) /* a last value without its complete callback */
        buf_append(&ex->head, "", 1);
    ex->value_open = false;
    struct http_request *r = &ex->req;
    for (size_t i = 0; i < ex->n_headers; i++) {
        char *name = (char *)ex->head.data + ex->name_off[i];
        char *value = (char *)ex->head.data + ex->value_off[i];
        while (is_blank(*value))
            value++;
        size_t n = strlen(value);
        while (n && is_blank(value[n - 1]))
            value[--n] = '\0';
        r->headers[i] = (struct http_header){.name = name, .value = value};
    }
    r->n_headers = ex->n_headers;
    r->method = llhttp_method_name((llhttp_method_t)p->method);
    r->peer = ex->peer;
    buf_append(&ex->url, "", 1);
    char *url = (char *)ex->url.data;
    if (url[0] != '/')
        return refuse(p, 400, "path", "request target must be an absolute path");
    size_t path_len = strcspn(url, "?");
    r->query = url[path_len] ? url + path_len + 1 : "";
    ex->path = st_malloc(path_len + 1);
    if (percent_decode(url, path_len, false, ex->path, path_len + 1) < 0)
        return refuse(p, 400, "path", "bad percent-escape in path");
    r->path = ex->path;
    r->body = "";
    return 0;
}

static int on_headers_complete(llhttp_t *p)
{
    struct http_conn *c = p->data;
    struct http_exchange *ex = c->ex;
    if (head_grow(p, REQUEST_LINE_OVERHEAD))
        return -1;
    if (llhttp_get_upgrade(p))
        return refuse(p, 400, NULL, "protocol upgrade not supported");
    if (llhttp_get_http_major(p) != 1) /* llhttp lets HTTP/0.9 request lines through */
        return refuse(p, 400, NULL, "HTTP/1.0 or HTTP/1.1 request line required");
    if ((p->flags & F_CONTENT_LENGTH) && p->content_length > c->srv->opts.max_body)
        return refuse(p, 413, NULL, "request body too large");
    if (request_head_finish(p, ex))
        return -1;
    ex->state = EX_BODY;
    const char *expect = http_request_header(&ex->req, "expect");
    if (expect && strcasecmp(expect, "100-continue") == 0) {
        /* The client waits for this before sending its body (curl does for large ones). */
        struct buf b = {0};
        buf_append_str(&b, "HTTP/1.1 100 Continue\r\n\r\n");
        if (conn_write_buf(c, &b) < 0)
            return refuse(p, 500, NULL, "write failed");
    }
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    struct http_conn *c = p->data;
    struct buf *body = &c->ex->body;
    if (len > c->srv->opts.max_body - body->len) /* chunked bodies announce no total */
        return refuse(p, 413, NULL, "request body too large");
    buf_append(body, at, len);
    return 0;
}

static int on_message_complete(llhttp_t *p)
{
    struct http_conn *c = p->data;
    struct http_exchange *ex = c->ex;
    ex->keep_alive = llhttp_should_keep_alive(p) != 0;
    if (ex->body.len) {
        ex->req.body_len = ex->body.len;
        buf_append(&ex->body, "", 1);
        ex->req.body = (const char *)ex->body.data;
    }
    return HPE_PAUSED; /* one request at a time: the rest waits in c->in */
}

/* ---- accept, idle sweep --------------------------------------------------- */

static void peer_names(const struct sockaddr_storage *ss, char *ip, size_t iplen, char *peer,
                       size_t plen)
{
    snprintf(ip, iplen, "?");
    snprintf(peer, plen, "?");
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
        uv_ip4_name(in, ip, iplen);
        snprintf(peer, plen, "%s:%d", ip, ntohs(in->sin_port));
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
        uv_ip6_name(in6, ip, iplen);
        snprintf(peer, plen, "[%s]:%d", ip, ntohs(in6->sin6_port));
    }
}

static void on_refused_closed(uv_handle_t *h)
{
    struct http_server *s = h->data;
    st_free(h);
    server_release(s);
}

static void refuse_connection(struct http_server *s, uv_stream_t *listener)
{
    uv_tcp_t *t = st_malloc(sizeof *t);
    uv_tcp_init(s->loop, t);
    t->data = s;
    s->handles++;
    char ip[48], peer[64] = "?";
    if (uv_accept(listener, (uv_stream_t *)t) == 0) {
        struct sockaddr_storage ss;
        int sl = sizeof ss;
        if (uv_tcp_getpeername(t, (struct sockaddr *)&ss, &sl) == 0)
            peer_names(&ss, ip, sizeof ip, peer, sizeof peer);
    }
    st_log(ST_LOG_WARN, "event=http_conn_refused peer=%s reason=\"connection limit %d reached\"",
           peer, s->opts.max_connections);
    uv_close((uv_handle_t *)t, on_refused_closed);
}

/* A connection's handle, counted by its server; not yet open. */
static struct http_conn *conn_new(struct http_server *s)
{
    struct http_conn *c = st_calloc(1, sizeof *c);
    uv_tcp_init(s->loop, &c->tcp);
    c->tcp.data = c;
    c->srv = s;
    s->handles++;
    return c;
}

/* c's socket is connected: name the peer, start parsing and reading. */
static void conn_start(struct http_conn *c)
{
    struct http_server *s = c->srv;
    struct sockaddr_storage ss;
    int sl = sizeof ss;
    memset(&ss, 0, sizeof ss);
    uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &sl);
    peer_names(&ss, c->ip, sizeof c->ip, c->peer, sizeof c->peer);
    llhttp_init(&c->parser, HTTP_REQUEST, &s->settings);
    c->parser.data = c;
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->n_conns++;
    c->mode = CONN_READING;
    c->deadline_ms = idle_deadline(s);
    uv_tcp_nodelay(&c->tcp, 1);
    conn_read_more(c);
}

static void on_connection(uv_stream_t *listener, int status)
{
    struct http_server *s = listener->data;
    if (status < 0) {
        st_log(ST_LOG_WARN, "event=http_accept_failed reason=\"%s\"", uv_strerror(status));
        return;
    }
    if (s->n_conns >= (size_t)s->opts.max_connections) {
        refuse_connection(s, listener);
        return;
    }
    struct http_conn *c = conn_new(s);
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) < 0) {
        c->closing = true;
        uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
        return;
    }
    conn_start(c);
}

static void on_sweep(uv_timer_t *t)
{
    struct http_server *s = t->data;
    uint64_t now = loop_now(s);
    struct http_conn *next;
    for (struct http_conn *c = s->conns; c; c = next) {
        next = c->next;
        if (!c->deadline_ms || now < c->deadline_ms)
            continue;
        switch (c->mode) {
        case CONN_READING: conn_close(c, "-idle timeout"); break;
        case CONN_WAITING: conn_close(c, "client does not read its response"); break;
        case CONN_STREAM: conn_close(c, "stream write failed"); break;
        case CONN_DRAIN: conn_close(c, "-linger time over"); break;
        }
    }
}

/* ---- public API ------------------------------------------------------------ */

int http_server_start(uv_loop_t *loop, const struct http_server_opts *o, struct http_server **out)
{
    struct sockaddr_storage addr;
    if (uv_ip4_addr(o->listen, o->port, (struct sockaddr_in *)&addr) &&
        uv_ip6_addr(o->listen, o->port, (struct sockaddr_in6 *)&addr)) {
        st_log(ST_LOG_ERROR, "event=http_listen_failed listen=\"%s\" reason=\"bad address\"",
               o->listen);
        return ST_EIO;
    }
    struct http_server *s = st_calloc(1, sizeof *s);
    s->loop = loop;
    s->opts = *o;
    s->opts.listen = NULL; /* the caller's string need not outlive the call */
    llhttp_settings_init(&s->settings);
    s->settings.on_message_begin = on_message_begin;
    s->settings.on_url = on_url;
    s->settings.on_header_field = on_header_field;
    s->settings.on_header_field_complete = on_header_field_complete;
    s->settings.on_header_value = on_header_value;
    s->settings.on_header_value_complete = on_header_value_complete;
    s->settings.on_headers_complete = on_headers_complete;
    s->settings.on_body = on_body;
    s->settings.on_message_complete = on_message_complete;
    uv_tcp_init(loop, &s->listener);
    s->listener.data = s;
    s->handles = 1;
    int err = uv_tcp_bind(&s->listener, (struct sockaddr *)&addr, 0);
    if (!err)
        err = uv_listen((uv_stream_t *)&s->listener, 512, on_connection);
    struct sockaddr_storage bound;
    int bl = sizeof bound;
    if (!err)
        err = uv_tcp_getsockname(&s->listener, (struct sockaddr *)&bound, &bl);
    if (err) {
        st_log(ST_LOG_ERROR, "event=http_listen_failed listen=%s port=%d reason=\"%s\"", o->listen,
               o->port, uv_strerror(err));
        s->closing = true; /* freed by the close callback when the loop runs */
        uv_close((uv_handle_t *)&s->listener, on_server_handle_closed);
        return ST_EIO;
    }
    s->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                : ((struct sockaddr_in *)&bound)->sin_port);
    uv_timer_init(loop, &s->sweep);
    s->sweep.data = s;
    s->handles++;
    uv_timer_start(&s->sweep, on_sweep, SWEEP_MS, SWEEP_MS);
    st_log(ST_LOG_INFO, "event=http_listening listen=%s port=%d", o->listen, s->port);
    *out = s;
    return 0;
}

int http_server_adopt(struct http_server *s, int fd)
{
    struct http_conn *c = conn_new(s);
    int err = uv_tcp_open(&c->tcp, fd);
    if (err < 0) {
        c->closing = true;
        uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
        return err;
    }
    conn_start(c);
    return 0;
}

size_t http_server_conns_held(const struct http_server *s)
{
    return s->handles - 2; /* the listener and the sweep timer */
}

int http_server_port(const struct http_server *s)
{
    return s->port;
}

void http_server_close(struct http_server *s)
{
    if (s->closing)
        return;
    s->closing = true;
    uv_close((uv_handle_t *)&s->listener, on_server_handle_closed);
    uv_close((uv_handle_t *)&s->sweep, on_server_handle_closed);
    while (s->conns)
        conn_close(s->conns, "-server closing");
}

void http_respond(struct http_exchange *ex, int status, const char *content_type,
                  const char *extra_headers, const void *body, size_t len)
{
    struct http_conn *c = ex->conn;
    if (!c) {
        exchange_free(ex);
        return;
    }
    bool keep_alive = ex->keep_alive && !c->srv->closing;
    int rc = conn_send_response(c, status, content_type, extra_headers, body, len, keep_alive);
    c->ex = NULL;
    exchange_free(ex); /* after the send: body may point into the request */
    if (rc < 0) {
        conn_close(c, "write failed");
    } else if (keep_alive) {
        c->deadline_ms = idle_deadline(c->srv); /* bounds a client that does not read it */
    } else {
        conn_drain(c);
    }
}

void http_respond_error(struct http_exchange *ex, int status, const char *field,
                        const char *message)
{
    struct buf b = {0};
    http_error_json(&b, field, message);
    http_respond(ex, status, "application/json", NULL, b.data, b.len);
    buf_free(&b);
}

void http_stream_begin(struct http_exchange *ex, int status, const char *content_type,
                       const char *extra_headers, void (*on_close)(void *arg), void *arg)
{
    struct http_conn *c = ex->conn;
    ex->on_close = on_close;
    ex->close_arg = arg;
    if (!c) {
        stream_finish(ex); /* the client has already gone */
        return;
    }
    ex->state = EX_STREAM;
    c->mode = CONN_STREAM;
    c->deadline_ms = 0;
    buf_free(&c->in); /* pipelined requests after a stream are never answered */
    struct buf b = {0};
    head_begin(&b, status, content_type);
    head_end(&b, false, extra_headers);
    if (conn_write_buf(c, &b) < 0)
        c->deadline_ms = loop_now(c->srv); /* the sweep ends it: on_close never runs in here */
    conn_read_more(c); /* notice the client closing */
}

int http_stream_write(struct http_exchange *ex, const void *data, size_t len)
{
    struct http_conn *c = ex->conn;
    if (!c || c->closing)
        return ST_EIO;
    if (c->writing + len > STREAM_PENDING_MAX)
        return ST_EFULL;
    struct buf b = {0};
    buf_append(&b, data, len);
    if (conn_write_buf(c, &b) < 0) {
        c->deadline_ms = loop_now(c->srv);
        return ST_EIO;
    }
    return 0;
}

void http_stream_end(struct http_exchange *ex)
{
    struct http_conn *c = ex->conn;
    stream_finish(ex);
    if (!c)
        return;
    c->ex = NULL;
    conn_drain(c);
}
