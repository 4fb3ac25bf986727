/* config.h — server settings: defaults, then the JSON config file, then flags.
 * Every key is documented in docs/operations.md. */
#ifndef ST_CONFIG_H
#define ST_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum st_register_mode { ST_REGISTER_AUTO, ST_REGISTER_KNOWN };

#define ST_MODEL_TZ_MAX 32

/** Time zone of a device model whose times are local (JT/T 808 firmware differs). */
struct st_model_tz {
    char model[32];
    int tz_min; /* minutes east of UTC */
};

struct st_config {
    char listen[64];          /* address for TCP and UDP device traffic */
    int port;                 /* one port, both transports */
    char db[512];             /* SQLite file */
    int register_mode;        /* enum st_register_mode */
    int idle_timeout_s;       /* close a TCP connection silent this long */
    int max_conn_per_ip;      /* concurrent TCP connections from one address */
    int max_connections;      /* concurrent TCP connections in all */
    int64_t raw_frames_max;   /* raw frames kept (oldest deleted first); 0 = keep none */
    bool sync_full;           /* SQLite synchronous=FULL (fsync each commit) vs NORMAL */
    bool store_none;          /* benchmarks only: store nothing, reply at once (store=none) */
    int batch_max;            /* reports per transaction at most */
    int queue_max;            /* reports waiting for the writer before frames are refused */
    int default_tz_min;       /* zone of devices whose times are local (JT/T 808), minutes east of UTC */
    struct st_model_tz model_tz[ST_MODEL_TZ_MAX]; /* per model, before default_tz */
    int n_model_tz;
    char log_level[8];
    /* HTTP API (docs/api.md) */
    char http_listen[64];
    int http_port;            /* 0 = no API */
    int http_max_body;        /* bytes */
    int http_max_connections;
    int http_session_hours;
    bool http_secure_cookie;  /* add Secure to the session cookie (behind TLS) */
    int retention_interval_s; /* between retention passes */
    char admin_user[64];      /* admin created at start unless a user of that name exists */
    char admin_password_file[512];
};

/** Fill with the documented defaults. */
void st_config_defaults(struct st_config *c);

/** Apply a JSON config file (unknown keys and wrong types are errors, reported
 *  with file:line in errbuf). Returns 0 or ST_ECONFIG. */
int st_config_load(struct st_config *c, const char *path, char *errbuf, size_t errlen);

/** Apply one setting by name from text (the flag and the file share this). */
int st_config_set(struct st_config *c, const char *key, const char *value, char *errbuf,
                  size_t errlen);

#endif
