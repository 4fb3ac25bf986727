/* server.h — the device listener: TCP and UDP on one port, protocol detection
 * per connection (per datagram for UDP), framing, decoding, hand-off to the
 * store, and replies once the store has committed. libuv is used only here. */
#ifndef ST_SERVER_H
#define ST_SERVER_H

#include "../core/config.h"

/** Run the server until SIGINT/SIGTERM; returns 0 or a negative ST_E*. */
int server_run(const struct st_config *cfg);

#endif
