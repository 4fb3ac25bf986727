#include "config.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

void st_config_defaults(struct st_config *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->listen, sizeof c->listen, "0.0.0.0");
    c->port = 8888;
    snprintf(c->db, sizeof c->db, "sealtrack.db");
    c->register_mode = ST_REGISTER_AUTO;
    c->idle_timeout_s = 600;
    c->max_conn_per_ip = 1000; /* carrier NAT puts many devices behind one address */
    c->max_connections = 19000;
    c->raw_frames_max = 1000000;
    c->sync_full = true;
    c->batch_max = 5000;
    c->queue_max = 100000; /* ~1.5 KiB each while waiting (used part only): ~200 MiB at most */
    c->default_tz_min = 0;
    snprintf(c->log_level, sizeof c->log_level, "info");
    snprintf(c->http_listen, sizeof c->http_listen, "0.0.0.0");
    c->http_port = 8080;
    c->http_max_body = 1 << 20;
    c->http_max_connections = 1000;
    c->http_session_hours = 12;
    c->retention_interval_s = 60;
}

static int parse_int(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return ST_ECONFIG;
    *out = v;
    return 0;
}

struct int_key {
    const char *name;
    size_t offset;
    long lo, hi;
};

static const struct int_key int_keys[] = {
    {"port", offsetof(struct st_config, port), 1, 65535},
    {"idle_timeout", offsetof(struct st_config, idle_timeout_s), 1, 86400},
    {"max_conn_per_ip", offsetof(struct st_config, max_conn_per_ip), 1, 1000000},
    {"max_connections", offsetof(struct st_config, max_connections), 1, 10000000},
    {"batch_max", offsetof(struct st_config, batch_max), 1, 1000000},
    {"queue_max", offsetof(struct st_config, queue_max), 100, 100000000},
    {"default_tz", offsetof(struct st_config, default_tz_min), -720, 840},
    {"http_port", offsetof(struct st_config, http_port), 0, 65535},
    {"http_max_body", offsetof(struct st_config, http_max_body), 1024, 64 << 20},
    {"http_max_connections", offsetof(struct st_config, http_max_connections), 1, 1000000},
    {"http_session_hours", offsetof(struct st_config, http_session_hours), 1, 24 * 365},
    {"retention_interval_s", offsetof(struct st_config, retention_interval_s), 1, 86400},
};

static int set_text(char *dst, size_t cap, const char *key, const char *value, char *errbuf,
                    size_t errlen)
{
    if (strlen(value) >= cap || !*value) {
        snprintf(errbuf, errlen, "%s: empty or longer than %zu characters", key, cap - 1);
        return ST_ECONFIG;
    }
    memcpy(dst, value, strlen(value) + 1);
    return 0;
}

/* "MODEL:MINUTES[,MODEL:MINUTES…]", e.g. "JT709A:0,GT808:480". */
static int parse_model_tz(struct st_config *c, const char *value, char *errbuf, size_t errlen)
{
    c->n_model_tz = 0;
    const char *p = value;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *colon = memchr(p, ':', len);
        char num[16];
        size_t mlen = colon ? (size_t)(colon - p) : 0, nlen = colon ? len - mlen - 1 : 0;
        long v;
        if (!colon || mlen == 0 || mlen >= sizeof c->model_tz[0].model || nlen == 0 ||
            nlen >= sizeof num || c->n_model_tz >= ST_MODEL_TZ_MAX) {
            snprintf(errbuf, errlen, "model_tz: '%.*s' is not MODEL:MINUTES (at most %d models)",
                     (int)len, p, ST_MODEL_TZ_MAX);
            return ST_ECONFIG;
        }
        memcpy(num, colon + 1, nlen);
        num[nlen] = '\0';
        if (parse_int(num, -720, 840, &v)) {
            snprintf(errbuf, errlen, "model_tz: '%s' is not minutes in -720..840", num);
            return ST_ECONFIG;
        }
        struct st_model_tz *m = &c->model_tz[c->n_model_tz++];
        memcpy(m->model, p, mlen);
        m->model[mlen] = '\0';
        m->tz_min = (int)v;
        p += len;
        if (*p == ',')
            p++;
    }
    return 0;
}

int st_config_set(struct st_config *c, const char *key, const char *value, char *errbuf,
                  size_t errlen)
{
    for (size_t i = 0; i < sizeof int_keys / sizeof int_keys[0]; i++) {
        if (strcmp(key, int_keys[i].name) != 0)
            continue;
        long v;
        if (parse_int(value, int_keys[i].lo, int_keys[i].hi, &v)) {
            snprintf(errbuf, errlen, "%s: '%s' is not an integer in %ld..%ld", key, value,
                     int_keys[i].lo, int_keys[i].hi);
            return ST_ECONFIG;
        }
        *(int *)((char *)c + int_keys[i].offset) = (int)v;
        return 0;
    }
    if (strcmp(key, "listen") == 0)
        return set_text(c->listen, sizeof c->listen, key, value, errbuf, errlen);
    if (strcmp(key, "db") == 0)
        return set_text(c->db, sizeof c->db, key, value, errbuf, errlen);
    if (strcmp(key, "http_listen") == 0)
        return set_text(c->http_listen, sizeof c->http_listen, key, value, errbuf, errlen);
    if (strcmp(key, "admin_user") == 0)
        return set_text(c->admin_user, sizeof c->admin_user, key, value, errbuf, errlen);
    if (strcmp(key, "admin_password_file") == 0)
        return set_text(c->admin_password_file, sizeof c->admin_password_file, key, value, errbuf,
                        errlen);
    if (strcmp(key, "http_secure_cookie") == 0) {
        if (strcmp(value, "true") && strcmp(value, "false")) {
            snprintf(errbuf, errlen, "http_secure_cookie: '%s' is not true or false", value);
            return ST_ECONFIG;
        }
        c->http_secure_cookie = value[0] == 't';
        return 0;
    }
    if (strcmp(key, "raw_frames_max") == 0) {
        long v;
        if (parse_int(value, 0, 1000000000L, &v)) {
            snprintf(errbuf, errlen, "raw_frames_max: '%s' is not an integer >= 0", value);
            return ST_ECONFIG;
        }
        c->raw_frames_max = v;
        return 0;
    }
    if (strcmp(key, "model_tz") == 0)
        return parse_model_tz(c, value, errbuf, errlen);
    if (strcmp(key, "register") == 0) {
        if (strcmp(value, "auto") == 0)
            c->register_mode = ST_REGISTER_AUTO;
        else if (strcmp(value, "known") == 0)
            c->register_mode = ST_REGISTER_KNOWN;
        else {
            snprintf(errbuf, errlen, "register: '%s' is not auto or known", value);
            return ST_ECONFIG;
        }
        return 0;
    }
    if (strcmp(key, "store") == 0) {
        if (strcmp(value, "sqlite") == 0)
            c->store_none = false;
        else if (strcmp(value, "none") == 0)
            c->store_none = true;
        else {
            snprintf(errbuf, errlen, "store: '%s' is not sqlite or none", value);
            return ST_ECONFIG;
        }
        return 0;
    }
    if (strcmp(key, "sync") == 0) {
        if (strcmp(value, "full") == 0)
            c->sync_full = true;
        else if (strcmp(value, "normal") == 0)
            c->sync_full = false;
        else {
            snprintf(errbuf, errlen, "sync: '%s' is not full or normal", value);
            return ST_ECONFIG;
        }
        return 0;
    }
    if (strcmp(key, "log_level") == 0) {
        if (strcmp(value, "debug") && strcmp(value, "info") && strcmp(value, "warn") &&
            strcmp(value, "error")) {
            snprintf(errbuf, errlen, "log_level: '%s' is not debug, info, warn or error", value);
            return ST_ECONFIG;
        }
        return set_text(c->log_level, sizeof c->log_level, key, value, errbuf, errlen);
    }
    snprintf(errbuf, errlen, "unknown setting '%s'", key);
    return ST_ECONFIG;
}

int st_config_load(struct st_config *c, const char *path, char *errbuf, size_t errlen)
{
    json_error_t jerr;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        snprintf(errbuf, errlen, "%s:%d:%d: %s", path, jerr.line, jerr.column, jerr.text);
        return ST_ECONFIG;
    }
    int rc = 0;
    if (!json_is_object(root)) {
        snprintf(errbuf, errlen, "%s: the top level must be an object", path);
        rc = ST_ECONFIG;
        goto done;
    }
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val)
    {
        char text[2048];
        if (json_is_object(val) && strcmp(key, "model_tz") == 0) {
            /* {"JT709A": 0, "GT808": 480} → "JT709A:0,GT808:480" */
            size_t used = 0;
            const char *model;
            json_t *tz;
            text[0] = '\0';
            json_object_foreach(val, model, tz)
            {
                if (!json_is_integer(tz)) {
                    snprintf(errbuf, errlen, "%s: model_tz.%s: must be an integer", path, model);
                    rc = ST_ECONFIG;
                    goto done;
                }
                int n = snprintf(text + used, sizeof text - used, "%s%s:%lld", used ? "," : "",
                                 model, (long long)json_integer_value(tz));
                if (n < 0 || (size_t)n >= sizeof text - used) {
                    snprintf(errbuf, errlen, "%s: model_tz: too long", path);
                    rc = ST_ECONFIG;
                    goto done;
                }
                used += (size_t)n;
            }
        } else if (json_is_string(val))
            snprintf(text, sizeof text, "%s", json_string_value(val));
        else if (json_is_integer(val))
            snprintf(text, sizeof text, "%lld", (long long)json_integer_value(val));
        else if (json_is_boolean(val))
            snprintf(text, sizeof text, "%s", json_is_true(val) ? "true" : "false");
        else {
            snprintf(errbuf, errlen, "%s: %s: must be a string, an integer or a boolean", path, key);
            rc = ST_ECONFIG;
            goto done;
        }
        char inner[256];
        if (st_config_set(c, key, text, inner, sizeof inner)) {
            snprintf(errbuf, errlen, "%s: %s", path, inner);
            rc = ST_ECONFIG;
            goto done;
        }
    }
done:
    json_decref(root);
    return rc;
}
