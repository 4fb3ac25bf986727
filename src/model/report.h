/* report.h — the normalised result of decoding one device record.
 *
 * Decoders fill caller-owned `struct report`s (no allocation). Everything a
 * decoder knows but the model has no column for goes into the attribute bag
 * (`report_attr_set`), named as in docs/protocols.md, so nothing is dropped.
 * Invariant: attr_used <= sizeof attr_text; every key/value is NUL-terminated
 * inside attr_text.
 */
#ifndef ST_REPORT_H
#define ST_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define REPORT_MAX_EVENTS 8
#define REPORT_MAX_ATTRS 64
#define REPORT_ATTR_TEXT 2560
#define REPORT_ID_LEN 24

enum report_fix {
    REPORT_FIX_NONE = 0, /* no position */
    REPORT_FIX_GNSS,     /* satellite fix, system not stated */
    REPORT_FIX_GPS,
    REPORT_FIX_BEIDOU,   /* BeiDou used (alone or with GPS) */
    REPORT_FIX_LBS,      /* cell-tower (base station) position */
    REPORT_FIX_WIFI,
};

enum report_lock {
    REPORT_LOCK_UNKNOWN = 0,
    REPORT_LOCK_LOCKED,
    REPORT_LOCK_UNLOCKED,
};

enum report_event_type {
    REPORT_EV_UNLOCK = 1,     /* the lock opened (detail: source, card, fence) */
    REPORT_EV_LOCK,           /* the lock closed (Jointech: automatically, rope inserted) */
    REPORT_EV_TAMPER,         /* rope cut, back cover opened (detail: reason) */
    REPORT_EV_RFID_ACCESS,    /* an RFID card was swiped (detail: card, granted) */
    REPORT_EV_BT_ACCESS,      /* Bluetooth / app unlock attempt */
    REPORT_EV_WRONG_PASSWORD, /* an unlock password was wrong (detail: source) */
    REPORT_EV_UNLOCK_REFUSED, /* unlock refused by policy (detail: reason, source) */
    REPORT_EV_LOW_BATTERY,
    REPORT_EV_MOTOR_FAULT,
    REPORT_EV_LONG_UNLOCKED,  /* unlocked for longer than the configured time */
    REPORT_EV_GEOFENCE_ENTER, /* reported by the device (detail: fence) */
    REPORT_EV_GEOFENCE_EXIT,
    REPORT_EV_OVERSPEED,
    REPORT_EV_SOS,
    REPORT_EV_VIBRATION,
    REPORT_EV_POWER_CUT,
    REPORT_EV_ALARM,          /* a device alarm without a finer type (detail: code) */
};

/* How an unlock/access was made; stored as text (report_source_name). */
enum report_source {
    REPORT_SRC_NONE = 0,
    REPORT_SRC_RFID,
    REPORT_SRC_REMOTE_STATIC,  /* platform, static password */
    REPORT_SRC_REMOTE_DYNAMIC, /* platform, dynamic password */
    REPORT_SRC_APP_STATIC,     /* on-site app over Bluetooth/Wi-Fi, static password */
    REPORT_SRC_APP_DYNAMIC,
    REPORT_SRC_SMS_STATIC,
    REPORT_SRC_SMS_DYNAMIC,
    REPORT_SRC_BLUETOOTH,
    REPORT_SRC_AUTO,           /* the device itself (auto-lock) */
    REPORT_SRC_ROPE,           /* rope / shackle */
    REPORT_SRC_BACK_COVER,
    REPORT_SRC_LORA,
};

struct report_event {
    uint8_t type;        /* enum report_event_type */
    uint8_t source;      /* enum report_source */
    int8_t granted;      /* 1 granted, 0 refused, -1 not applicable */
    int16_t fence_id;    /* -1 none */
    char card[16];       /* RFID card number as printed on the card, "" none */
    char reason[24];     /* short machine word: "rope_cut", "outside_fence", ... */
};

struct report_cell {
    uint16_t mcc, mnc;
    uint32_t lac, cid;
};

struct report {
    char device_id[REPORT_ID_LEN]; /* as the device names itself, "" unknown */
    const char *protocol;          /* static name set by the decoder */
    char msg_type[16];             /* protocol message: "0x0200", "P45", "long", ... */

    int64_t fix_time;      /* seconds since epoch, UTC; 0 = unknown */
    bool time_is_local;    /* fix_time was read in the device's own zone (apply its tz) */
    bool has_position;     /* lat/lon/speed/course/valid are meaningful */
    bool valid;            /* the device says the fix is valid */
    uint8_t fix;           /* enum report_fix */
    double lat, lon;       /* WGS84 degrees, signed */
    double speed_kmh;
    double course;         /* degrees 0..359 */
    bool has_altitude;
    double altitude_m;
    int16_t satellites;    /* -1 unknown */
    int16_t battery_pct;   /* -1 unknown */
    double battery_v;      /* < 0 unknown */
    int8_t charging;       /* -1 unknown */
    int16_t gsm_signal;    /* -1 unknown; CSQ 0..31 or protocol's own scale */
    double odometer_km;    /* < 0 unknown */
    uint8_t lock;          /* enum report_lock */
    bool has_cell;
    struct report_cell cell;

    uint8_t n_events;
    struct report_event events[REPORT_MAX_EVENTS];

    uint8_t n_attrs;
    uint16_t attr_key[REPORT_MAX_ATTRS]; /* offsets into attr_text */
    uint16_t attr_val[REPORT_MAX_ATTRS];
    uint16_t attr_hash[REPORT_MAX_ATTRS]; /* of the key: most lookups end without a strcmp */
    uint64_t attr_bloom;                  /* bit (hash & 63) per key: most new keys skip the search */
    uint16_t attr_used;
    char attr_text[REPORT_ATTR_TEXT];
};

/** Reset a report to "nothing known" (all -1/unknown markers set). */
void report_init(struct report *r, const char *protocol);

/** Add (or, if the key exists, replace) an attribute; value printf-formatted.
 *  Returns 0, or ST_EFULL when the bag is full (the attribute is dropped). */
int report_attr_set(struct report *r, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/** Attribute value as hex of `len` bytes. */
int report_attr_hex(struct report *r, const char *key, const uint8_t *b, size_t len);

/** Value of attribute `key`, or NULL. */
const char *report_attr_get(const struct report *r, const char *key);

/** Append an event; returns a pointer to it (fields preset to "none"), or NULL when full. */
struct report_event *report_add_event(struct report *r, enum report_event_type type);

/** Text names used in JSON and the database. */
const char *report_event_name(uint8_t type);
const char *report_source_name(uint8_t source);
const char *report_fix_name(uint8_t fix);
const char *report_lock_name(uint8_t lock);

#endif
