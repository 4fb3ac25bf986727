/* api.h — the HTTP API (docs/api.md) as the device server sees it: started on
 * the server's loop, fed with committed frames and device connection changes
 * for the live stream, and the server's counters for /metrics. Requests run on
 * libuv's thread pool with pooled SQLite connections; the loop only parses,
 * routes and writes. Every function here but api_user_add is for the loop thread. */
#ifndef ST_API_H
#define ST_API_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "../core/config.h"
#include "../store/store.h"

#define API_PROTOCOLS_MAX 32

/** Counters the device server keeps for /metrics (loop thread writes and reads). */
struct api_counters {
    uint64_t connections;                      /* open TCP device connections */
    uint64_t frames[API_PROTOCOLS_MAX][2];     /* per proto_registry index; [0] tcp, [1] udp */
    uint64_t decode_errors[API_PROTOCOLS_MAX]; /* malformed frames per protocol */
    uint64_t frames_refused;                   /* storage queue full */
};

struct api;

/** Start the API when cfg->http_port > 0 (*out stays NULL otherwise). The store
 *  and counters must outlive the API. 0 or ST_EIO (logged). */
int api_start(uv_loop_t *loop, const struct st_config *cfg, struct store *store,
              const struct api_counters *counters, struct api **out);

/** A frame committed to the database (store_drain): live subscribers get its reports. */
void api_publish(struct api *a, const struct store_done *d);

/** A device's TCP connection opened (connected) or closed; the API counts them and tells
 *  the live stream when a device's first opens or its last closes. */
void api_device_status(struct api *a, int64_t org_id, int64_t device_row, const char *uid,
                       bool connected);

/** A command was queued for a device (row id): the server delivers it when the device is
 *  connected. Loop thread. */
typedef void api_command_hook_fn(void *arg, int64_t device_row);
void api_set_command_hook(struct api *a, api_command_hook_fn *fn, void *arg);

/** Stop listening and end every stream; requests on the thread pool still finish.
 *  Call before closing the loop's other handles. Accepts NULL. */
void api_close(struct api *a);
/** Free everything once the loop has run dry after api_close. Accepts NULL. */
void api_free(struct api *a);

/** Create a user (the first admin; `sealtrack user add`). org: organisation name,
 *  created when absent. 0, ST_ECONFIG (bad role, name or password), ST_EEXIST (the
 *  name is taken; nothing hashed) or ST_EIO; the message is in err. Any thread. */
int api_user_add(const char *db, const char *org, const char *name, const char *role,
                 const char *password, char *err, size_t errlen);

#endif
