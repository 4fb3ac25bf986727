/* http.h — a small HTTP/1.1 server on the device server's libuv loop (llhttp
 * parses; Debian ships its C sources in node-llhttp).
 *
 * One request per connection is in flight at a time (pipelined requests wait
 * in the read buffer); the handler may answer at once or later — e.g. after
 * uv_queue_work — by calling http_respond*() exactly once, or by turning the
 * exchange into a stream (Server-Sent Events). Everything here runs on the loop
 * thread. Bad requests (malformed, headers or body over the limits) are
 * answered here with a 4xx JSON error and logged; the handler never sees them.
 */
#ifndef ST_HTTP_H
#define ST_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "../core/buf.h"

#define HTTP_MAX_HEADERS 32

struct http_server;
/** One request and its response; lives until its response has been handed to
 *  the socket (or the stream ended), even when the client disconnects first. */
struct http_exchange;

struct http_header {
    const char *name;  /* lower-cased */
    const char *value; /* surrounding blanks trimmed */
};

/** A parsed request. Owned by its exchange; valid until the response call. */
struct http_request {
    const char *method;   /* "GET", "POST", "PATCH", "PUT", "DELETE", ... */
    const char *path;     /* percent-decoded path without the query ("/api/devices/3") */
    const char *query;    /* raw query string without '?', "" when none */
    const char *body;     /* NUL-terminated; "" when none */
    size_t body_len;
    const char *peer;     /* client address, printable ("127.0.0.1") */
    size_t n_headers;
    struct http_header headers[HTTP_MAX_HEADERS];
};

/** The value of header `lname` (lower case), NULL when absent. */
const char *http_request_header(const struct http_request *r, const char *lname);

/** Percent-decode query parameter `name` of `query` into out (NUL-terminated).
 *  Returns 1 when present, 0 when absent, ST_ERANGE when longer than cap-1,
 *  ST_EMALFORMED for a bad %-escape. '+' decodes to a space. */
int http_query_get(const char *query, const char *name, char *out, size_t cap);

typedef void http_handler_fn(void *arg, struct http_exchange *ex, const struct http_request *req);

struct http_server_opts {
    const char *listen;   /* address, e.g. "0.0.0.0" or "127.0.0.1" */
    int port;             /* 0 = pick a free one (see http_server_port) */
    size_t max_body;      /* bytes; a larger body gets 413 */
    size_t max_header;    /* bytes of request line + headers; more gets 431 */
    int idle_timeout_s;   /* close keep-alive connections idle this long */
    int max_connections;  /* beyond it new connections are closed at once */
    http_handler_fn *handler;
    void *arg;
};

/** Listen on the loop. Returns 0 or ST_EIO (logged with the reason). */
int http_server_start(uv_loop_t *loop, const struct http_server_opts *o, struct http_server **out);
/** The bound port. */
int http_server_port(const struct http_server *s);
/** Stop listening, close every connection (streams get their on_close), free s
 *  once libuv has released the handles. Exchanges still waiting for a handler
 *  stay valid until it responds. */
void http_server_close(struct http_server *s);

/** Answer with a complete body. extra_headers: "Name: value\r\n" lines or NULL.
 *  Adds Content-Length, Connection, Cache-Control: no-store and
 *  X-Content-Type-Options: nosniff. Frees the exchange once written. */
void http_respond(struct http_exchange *ex, int status, const char *content_type,
                  const char *extra_headers, const void *body, size_t len);
/** Append the error body {"error":"<message>","field":"<field>"} (field omitted when
 *  NULL): the one shape of every 4xx/5xx answer, here and in the API's handlers. */
void http_error_json(struct buf *b, const char *field, const char *message);
/** Answer with http_error_json's body. */
void http_respond_error(struct http_exchange *ex, int status, const char *field,
                        const char *message);
/** True when the client has gone (the response will be dropped). */
bool http_exchange_closed(const struct http_exchange *ex);

/** Start a streamed response (no Content-Length; the connection closes at the
 *  end). on_close runs once when the stream ends for any reason (client gone,
 *  http_stream_end, server close); the exchange is freed right after it. When the
 *  client is already gone, on_close runs inside this call: check
 *  http_exchange_closed() first if the caller keeps state for the stream. */
void http_stream_begin(struct http_exchange *ex, int status, const char *content_type,
                       const char *extra_headers, void (*on_close)(void *arg), void *arg);
/** Queue bytes on a stream. Returns 0; ST_EFULL when more than 1 MiB is
 *  already waiting for a slow client (the caller should end the stream); ST_EIO
 *  when the connection is closing or the write failed (the stream then ends by
 *  itself within a second). on_close never runs inside this call. */
int http_stream_write(struct http_exchange *ex, const void *data, size_t len);
/** End a stream (on_close runs). */
void http_stream_end(struct http_exchange *ex);

/** Reason phrase of a status code ("Not Found"). */
const char *http_status_text(int status);

#endif
