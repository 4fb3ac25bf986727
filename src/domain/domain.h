/* domain.h — the seal-operations layer (docs/seals.md): geofences, seal state,
 * shipments and their custody chain, alert rules and remote commands. This header
 * is the one fact its parts hand each other: something happened to a device.
 *
 * Derived facts are written in the same transaction as the frame that caused
 * them (the writer thread's batch, or an API call's), so a crash never leaves an
 * event without its custody entry, geofence state or alert. */
#ifndef ST_DOMAIN_H
#define ST_DOMAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Alert / event types a rule can match (alert_rules.types). Device events keep the
 * names of report_event_name(); the server adds the rest. */
#define DOMAIN_TYPES                                                                          \
    "tamper", "unlock", "lock", "unlock_outside_zone", "unlock_refused", "wrong_password",  \
        "unknown_card", "low_battery", "geofence_enter", "geofence_exit", "device_offline", \
        "overspeed", "command_failed"

#define DOMAIN_GROUP_MAX 257 /* device group names (the API allows 256 bytes) */

struct domain_event {
    const char *type;        /* one of DOMAIN_TYPES (or another events.type name) */
    int64_t org_id, device_id;
    const char *device_uid;
    const char *group_name;  /* the device's group; NULL none */
    int64_t shipment_id;     /* the device's open shipment; 0 none */
    int64_t time;            /* when it happened (the fix time), UTC seconds */
    int64_t event_id;        /* the events row; 0 none */
    int64_t fence_id;        /* the geofences row; 0 none */
    bool has_pos;
    double lat, lon;
    double speed_kmh;        /* < 0 unknown */
    int battery_pct;         /* -1 unknown */
    const char *source, *card, *reason; /* NULL none */
    int granted;             /* access events: 1 granted, 0 refused; -1 not applicable */
    const char *detail;      /* JSON object text; NULL none */
    bool late;               /* derived from history that arrived out of order */
};

/** Live-stream text of an alert that belongs to no one frame (geofence and offline alerts):
 *  org and device choose its subscribers. */
typedef void domain_live_fn(void *arg, int64_t org_id, int64_t device_id, const char *text,
                            size_t len);

/** Somebody hears of a fact (the alert rules, the custody log); 0 or ST_EIO. */
typedef int domain_event_fn(void *arg, const struct domain_event *e);

#endif
