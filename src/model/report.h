/* report.h — the normalised result of decoding one device record.
 *
 * Decoders fill caller-owned `struct report`s (no allocation). Everything a
 * decoder knows but the model has no column for goes into the attribute bag,
 * named as in docs/protocols.md, so nothing is dropped. Attributes are kept
 * typed and formatted only when read (report_attr_get, report_json_attrs):
 * formatting ~40 values per frame was nearly all of a decode's cost.
 * Invariant: attr_used <= sizeof attr_text; attr_text[0..attr_used) is a run
 * of records (struct report_attr, each followed by its payload, 8-aligned)
 * holding no pointer into the report or the frame, so a report stays valid
 * when its first offsetof(attr_text) + attr_used bytes are copied elsewhere.
 */
#ifndef ST_REPORT_H
#define ST_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/err.h"

#define REPORT_MAX_EVENTS 8
#define REPORT_ATTR_TEXT 2560
#define REPORT_VALUE_MAX 1024 /* longest attribute value read back, NUL included */
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
    struct report_event events[REPORT_MAX_EVENTS]; /* the first n_events are set */

    uint16_t attr_used;
    _Alignas(8) char attr_text[REPORT_ATTR_TEXT]; /* attribute records */
};

enum report_attr_kind {
    REPORT_ATTR_STR = 1, /* payload: NUL-terminated text */
    REPORT_ATTR_STATIC,  /* payload: pointer to a string with static storage */
    REPORT_ATTR_INT,     /* num as int32_t, decimal */
    REPORT_ATTR_UINT,    /* num, decimal */
    REPORT_ATTR_HEXNUM,  /* num as 0x + `digits` lower-case hex digits (more if needed) */
    REPORT_ATTR_FIXED,   /* num with `digits` decimals: 418, 2 → 4.18 */
    REPORT_ATTR_BOOL,    /* num: true / false */
    REPORT_ATTR_BYTES,   /* payload bytes as lower-case hex */
    REPORT_ATTR_FORMAT,  /* payload: a report_attr_formatter, then the bytes it reads */
};

/* One attribute record in attr_text; `len` payload bytes follow it. A key that is not
 * kept by address (NULL here) is copied, NUL-terminated, at the payload's start. */
struct report_attr {
    const char *key; /* static storage (a string literal), or NULL */
    uint32_t num;
    uint16_t len;
    uint8_t kind;   /* enum report_attr_kind */
    uint8_t digits; /* REPORT_ATTR_HEXNUM, REPORT_ATTR_FIXED */
};

/** Writes the text of `data[0..len)` to out (at most cap - 1 bytes, NUL-terminated);
 *  returns the text length. Runs when the attribute is read, not when it is set. */
typedef size_t (*report_attr_formatter)(const uint8_t *data, size_t len, char *out, size_t cap);

/** Reset a report to "nothing known" (all -1/unknown markers set). */
void report_init(struct report *r, const char *protocol);

/* Setting an attribute appends it. A key set again keeps its first place and takes
 * the last value: readers resolve that, so setting never searches the bag. Every
 * setter returns 0, or ST_EFULL when the bag is full (the attribute is dropped).
 * Typed setters keep `key` by address: it must have static storage (a literal). */

/** Value printf-formatted now (cut at REPORT_VALUE_MAX - 1); any key (copied). */
int report_attr_set(struct report *r, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/** Record with `payload` bytes after it, or NULL when the bag is full. */
static inline struct report_attr *report_attr_add(struct report *r, const char *key, uint8_t kind,
                                                  size_t payload)
{
    size_t need = sizeof(struct report_attr) + ((payload + 7) & ~(size_t)7);
    if (need > sizeof r->attr_text - r->attr_used)
        return NULL;
    struct report_attr *a = (struct report_attr *)(void *)(r->attr_text + r->attr_used);
    r->attr_used = (uint16_t)(r->attr_used + need);
    a->key = key;
    a->len = (uint16_t)payload;
    a->kind = kind;
    a->digits = 0;
    return a;
}

/* The number kinds share one record shape. */
static inline int report_attr_num(struct report *r, const char *key, uint8_t kind, uint32_t num,
                                  uint8_t digits)
{
    struct report_attr *a = report_attr_add(r, key, kind, 0);
    if (!a)
        return ST_EFULL;
    a->num = num;
    a->digits = digits;
    return 0;
}

/** Decimal integer ("%d"). */
static inline int report_attr_int(struct report *r, const char *key, int32_t v)
{
    return report_attr_num(r, key, REPORT_ATTR_INT, (uint32_t)v, 0);
}

/** Decimal unsigned ("%u"). */
static inline int report_attr_uint(struct report *r, const char *key, uint32_t v)
{
    return report_attr_num(r, key, REPORT_ATTR_UINT, v, 0);
}

/** "0x" and at least `digits` lower-case hex digits ("0x%04x" is digits 4). */
static inline int report_attr_uint_hex(struct report *r, const char *key, uint32_t v,
                                       uint8_t digits)
{
    return report_attr_num(r, key, REPORT_ATTR_HEXNUM, v, digits);
}

/** v / 10^decimals with exactly `decimals` places ("%.2f" of a count of hundredths). */
static inline int report_attr_fixed(struct report *r, const char *key, uint32_t v,
                                    uint8_t decimals)
{
    return report_attr_num(r, key, REPORT_ATTR_FIXED, v, decimals);
}

/** "true" or "false". */
static inline int report_attr_bool(struct report *r, const char *key, bool v)
{
    return report_attr_num(r, key, REPORT_ATTR_BOOL, v, 0);
}

/** A string with static storage, kept by address. */
int report_attr_static(struct report *r, const char *key, const char *value);

/** Text s[0..n) (cut at REPORT_VALUE_MAX - 1), copied. */
int report_attr_strn(struct report *r, const char *key, const char *s, size_t n);

/** Lower-case hex of b[0..len) (cut at REPORT_VALUE_MAX / 2 - 1 bytes), copied. */
int report_attr_bytes_hex(struct report *r, const char *key, const uint8_t *b, size_t len);

/** report_attr_bytes_hex for a key without static storage (copied, as report_attr_set). */
int report_attr_hex(struct report *r, const char *key, const uint8_t *b, size_t len);

/** A value `fmt` writes from a copy of data[0..len) when the attribute is read. */
int report_attr_format(struct report *r, const char *key, report_attr_formatter fmt,
                       const uint8_t *data, size_t len);

/** Value of attribute `key`, or NULL. Typed values are formatted into a per-thread
 *  ring of four buffers: such a pointer lasts until four more are formatted. */
const char *report_attr_get(const struct report *r, const char *key);

/** The attributes in order, each key once with its last value: calls fn(ctx, key,
 *  value, value_len) per attribute (value NUL-terminated). Returns the count. */
size_t report_attr_each(const struct report *r,
                        void (*fn)(void *ctx, const char *key, const char *value, size_t len),
                        void *ctx);

/** Append an event; returns a pointer to it (fields preset to "none"), or NULL when full. */
struct report_event *report_add_event(struct report *r, enum report_event_type type);

/** Text names used in JSON and the database. */
const char *report_event_name(uint8_t type);
const char *report_source_name(uint8_t source);
const char *report_fix_name(uint8_t fix);
const char *report_lock_name(uint8_t lock);

#endif
