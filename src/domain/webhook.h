/* webhook.h — delivery of alerts to webhooks: a thread with its own SQLite
 * connection and a libcurl multi handle sends the pending webhook_deliveries rows,
 * oldest first, several at once, each signed:
 *   X-Sealtrack-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>
 *   X-Sealtrack-Timestamp: <unix seconds>   X-Sealtrack-Delivery: <delivery id>
 * A 2xx answer marks the delivery delivered; anything else (status, timeout, refused
 * connection) is retried with exponential back-off until max_attempts, then failed.
 * Every attempt's outcome is kept (attempts, last_status, last_error). A slow or dead
 * webhook only delays its own deliveries: requests run concurrently, each with a
 * timeout.
 */
#ifndef ST_WEBHOOK_H
#define ST_WEBHOOK_H

#include <stddef.h>
#include <stdint.h>

struct webhook_opts {
    const char *db_path;
    int max_attempts;        /* then the delivery is failed (default 10) */
    int timeout_ms;          /* per request (default 10000) */
    int backoff_ms;          /* first retry after this, doubling (default 1000) */
    int backoff_max_ms;      /* cap of the doubling (default 3600000) */
    int concurrency;         /* requests in flight at most (default 16) */
};

struct webhook_sender;

/** Start the delivery thread. 0 or ST_EIO (logged). */
int webhook_start(const struct webhook_opts *o, struct webhook_sender **out);

/** New deliveries were committed: look now rather than at the next poll. Any thread. */
void webhook_wake(struct webhook_sender *w);

/** Stop the thread (requests in flight are abandoned and stay pending) and free w.
 *  Accepts NULL. */
void webhook_stop(struct webhook_sender *w);

/** The signature header's value for body at timestamp ts, into out (>= 72 bytes). */
void webhook_sign(const char *secret, int64_t ts, const char *body, size_t body_len,
                  char *out, size_t cap);

#endif
