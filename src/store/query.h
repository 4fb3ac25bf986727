/* query.h — read side of the database for the command line (and later the API):
 * each function opens its own connection, so it never contends with the writer
 * thread beyond SQLite's WAL rules. */
#ifndef ST_QUERY_H
#define ST_QUERY_H

#include <stdint.h>
#include <stdio.h>

struct query_range {
    const char *device;  /* device uid, NULL = all devices */
    int64_t since, until; /* fix time bounds, seconds UTC (inclusive); until 0 = no bound */
    int64_t limit;       /* rows at most; 0 = no limit */
    const char *type;    /* events: one type, NULL = all */
};

/** Print positions as JSON lines, oldest first. Returns 0 or ST_EIO. */
int query_positions(const char *db, const struct query_range *q, FILE *out);
/** Print events as JSON lines, oldest first. */
int query_events(const char *db, const struct query_range *q, FILE *out);
/** Print devices with their latest state as JSON lines. */
int query_devices(const char *db, FILE *out);
/** Print raw frames (hex, status, decoded) of one device or all, newest last. */
int query_raw(const char *db, const struct query_range *q, FILE *out);
/** Add a device (or update name/model/tz/dialect of an existing one); NULL / tz_min
 *  INT32_MIN = leave unset. */
int query_device_add(const char *db, const char *uid, const char *name, const char *model,
                     int tz_min, const char *dialect);

/** Call fn(arg, uid, dialect) for every device with a dialect set. */
int query_device_dialects(const char *db, void (*fn)(void *arg, const char *uid, const char *dialect),
                          void *arg);

#endif
