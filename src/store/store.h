/* store.h — durable storage of decoded frames.
 *
 * The event loop hands each frame (its reports, raw bytes and the reply the
 * device is owed) to store_submit(); one writer thread commits queued frames in
 * one transaction per batch (group commit: whatever queued while the previous
 * commit was syncing goes into the next one), then hands the committed frames
 * back through store_drain() so the loop can send their replies. A reply is
 * therefore never sent before its reports are on disk.
 *
 * Threads: store_submit/store_drain/store_close on the loop thread only; the
 * notify callback runs on the writer thread (use it to wake the loop).
 */
#ifndef ST_STORE_H
#define ST_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "../core/config.h"
#include "../model/report.h"

struct store;

struct store_opts {
    const char *path;        /* SQLite file (created and migrated when needed) */
    bool sync_full;          /* synchronous=FULL: fsync every commit */
    bool register_known;     /* refuse frames of devices not in the devices table */
    bool discard;            /* benchmarks: commit nothing, complete every frame at once */
    int batch_max;           /* reports per transaction at most */
    int queue_max;           /* reports waiting at most; store_submit says ST_EFULL beyond */
    int64_t raw_frames_max;  /* raw frames kept */
    int default_tz_min;      /* zone for device-local times when neither device nor model has one */
    const struct st_model_tz *model_tz; /* zone per device model (copied) */
    int n_model_tz;
    int retention_interval_s; /* between retention passes (organisations' retention days) */
    bool domain;             /* seal operations: geofences, seals, custody, alerts, commands */
    void (*alerted)(void *arg); /* writer thread: alerts were committed (webhooks may be due) */
    void *alerted_arg;
    void (*notify)(void *arg); /* writer thread: committed frames are ready to drain */
    void *notify_arg;
};

/** One received frame. Everything is copied by store_submit. */
struct store_frame {
    void *owner;             /* the TCP connection owed the reply, NULL for UDP */
    const struct sockaddr *udp_peer; /* UDP: where the reply goes */
    const char *protocol;    /* static name */
    const char *transport;   /* "tcp" / "udp" */
    const char *peer;        /* printable remote address */
    const char *device_id;   /* "" when unknown */
    const char *status;      /* "ok", "unsupported", "malformed: …" — kept with the raw frame */
    const uint8_t *raw;
    size_t raw_len;
    const struct report *reports;
    size_t n_reports;
    const uint8_t *reply;
    size_t reply_len;
    int64_t recv_ms;
};

enum store_result {
    STORE_COMMITTED = 0,     /* on disk: send the reply */
    STORE_REJECTED,          /* unknown device with register=known: raw kept, no reply */
    STORE_FAILED,            /* the transaction failed: nothing stored, no reply */
};

/** A frame whose transaction finished, as seen by store_drain's callback. */
struct store_done {
    void *owner;
    const struct sockaddr *udp_peer; /* NULL for TCP */
    int result;                      /* enum store_result */
    const char *device_id;
    int64_t device_row, org_id;      /* devices.id and its organisation; 0 when unknown */
    const uint8_t *reply;
    size_t reply_len;
    const char *live;                /* Server-Sent Events text of the frame's reports, when */
    size_t live_len;                 /* store_set_live(true); else live_len is 0 */
};

/** Commit timing for metrics: counts per upper bound of STORE_COMMIT_BUCKETS. */
#define STORE_COMMIT_BUCKETS 9
extern const double store_commit_bucket_s[STORE_COMMIT_BUCKETS];
struct store_stats {
    uint64_t commits, commit_failures;
    uint64_t bucket[STORE_COMMIT_BUCKETS]; /* commits that took at most store_commit_bucket_s[i] */
    double commit_seconds_sum;
    uint64_t retention_positions, retention_raw; /* rows deleted by retention */
};

typedef void store_done_fn(void *arg, const struct store_done *done);

/** Open (create, migrate) the database and start the writer thread. */
int store_open(const struct store_opts *opts, struct store **out);

/** Queue a frame; ST_EFULL when queue_max reports are already waiting. */
int store_submit(struct store *s, const struct store_frame *f);

/** Call fn for every committed frame, in submission order. */
void store_drain(struct store *s, store_done_fn *fn, void *arg);

/** Reports waiting for the writer (for logs and metrics). */
size_t store_queue_depth(struct store *s);

/** Copy the commit statistics (any thread). */
void store_get_stats(struct store *s, struct store_stats *out);

/** Have the writer render each committed frame's reports as live-stream text
 *  (only worth it while somebody listens). Any thread. */
void store_set_live(struct store *s, bool on);

/** Devices were edited or deleted elsewhere (the API): the writer re-reads them
 *  before its next transaction. Any thread. */
void store_devices_changed(struct store *s);

/** Geofences, shipments or alert rules were edited elsewhere (the API): the writer
 *  re-reads them before its next transaction. Any thread. */
void store_domain_changed(struct store *s);

/** Commit what is queued and stop the writer; store_drain still delivers the
 *  committed frames afterwards. */
void store_stop(struct store *s);

/** Stop if needed, close the database and free s (accepts NULL). */
void store_close(struct store *s);

#endif
