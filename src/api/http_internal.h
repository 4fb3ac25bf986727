/* http_internal.h — for tests and fuzzers only (the server never calls it): serve
 * a connection over a socket that is already connected, e.g. one end of a
 * socketpair, so input can be fed and output read without TCP. */
#ifndef ST_HTTP_INTERNAL_H
#define ST_HTTP_INTERNAL_H

#include "http.h"

/** Serve connected stream socket fd exactly as an accepted connection (without the
 *  max_connections check). 0: the connection owns fd; else a libuv error and fd
 *  stays the caller's. */
int http_server_adopt(struct http_server *s, int fd);
/** Connections (refused ones included) not yet freed; for an open server only. */
size_t http_server_conns_held(const struct http_server *s);

#endif
