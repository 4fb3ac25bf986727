/* report.c — attribute bag and names for struct report. */
#include "report.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "../core/err.h"
#include "../core/hex.h"

void report_init(struct report *r, const char *protocol)
{
    /* Only the fields are cleared: events and attribute records are reached through
     * n_events and attr_used, so clearing 3 KiB per record on the hot path is not needed. */
    memset(r, 0, offsetof(struct report, events));
    r->attr_used = 0;
    r->protocol = protocol;
    r->satellites = -1;
    r->battery_pct = -1;
    r->battery_v = -1;
    r->charging = -1;
    r->gsm_signal = -1;
    r->odometer_km = -1;
}

/* The record after a, in attr_text. */
static const struct report_attr *attr_next(const struct report_attr *a)
{
    return (const struct report_attr *)(const void *)((const char *)(a + 1) +
                                                      ((a->len + 7u) & ~7u));
}

static const char *attr_key(const struct report_attr *a)
{
    return a->key ? a->key : (const char *)(a + 1);
}

/* The value's payload: after the copied key, if any. */
static const char *attr_payload(const struct report_attr *a, size_t *len)
{
    const char *p = (const char *)(a + 1);
    size_t skip = a->key ? 0 : strlen(p) + 1;
    *len = a->len - skip;
    return p + skip;
}

/* A record for `key` (copied when copy_key) followed by data[0..len) (after `head`
 * bytes of head_data), NUL-terminated when nul. */
static int attr_put(struct report *r, const char *key, bool copy_key, uint8_t kind,
                    const void *head_data, size_t head, const void *data, size_t len, bool nul)
{
    size_t klen = copy_key ? strlen(key) + 1 : 0;
    size_t payload = klen + head + len + nul;
    if (payload > sizeof r->attr_text)
        return ST_EFULL;
    struct report_attr *a = report_attr_add(r, copy_key ? NULL : key, kind, payload);
    if (!a)
        return ST_EFULL;
    char *p = (char *)(a + 1);
    if (klen) {
        memcpy(p, key, klen);
        p += klen;
    }
    if (head) {
        memcpy(p, head_data, head);
        p += head;
    }
    memcpy(p, data, len);
    if (nul)
        p[len] = '\0';
    return 0;
}

/* Decimal digits of v, right-aligned before `end`; returns the first digit. */
static char *put_decimal(uint64_t v, char *end)
{
    do {
        *--end = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return end;
}

static const char hex_digits[] = "0123456789abcdef";

/* "0x" and at least `width` hex digits of v, right-aligned before `end`. */
static char *put_hexnum(uint32_t v, int width, char *end)
{
    for (int i = 0; i < width || v; i++, v >>= 4)
        *--end = hex_digits[v & 15];
    *--end = 'x';
    *--end = '0';
    return end;
}

/* The formats decoders use for nearly every attribute, without vsnprintf: it was most
 * of a decode's cost (callgrind). Returns the length, or -1 for any other format. */
static int format_fast(char *val, size_t cap, const char *fmt, va_list ap)
{
    char tmp[24], *end = tmp + sizeof tmp, *p;
    int width = 0;
    if (strcmp(fmt, "%u") == 0) {
        p = put_decimal(va_arg(ap, unsigned), end);
    } else if (strcmp(fmt, "%zu") == 0) {
        p = put_decimal(va_arg(ap, size_t), end);
    } else if (strcmp(fmt, "%d") == 0) {
        int v = va_arg(ap, int);
        p = put_decimal(v < 0 ? (uint64_t)(-(int64_t)v) : (uint64_t)v, end);
        if (v < 0)
            *--p = '-';
    } else if (strcmp(fmt, "%s") == 0) {
        const char *s = va_arg(ap, const char *);
        size_t n = strnlen(s, cap - 1);
        memcpy(val, s, n);
        return (int)n;
    } else if ((width = strcmp(fmt, "0x%02x") == 0 ? 2
                        : strcmp(fmt, "0x%04x") == 0 ? 4
                        : strcmp(fmt, "0x%08x") == 0 ? 8
                                                     : 0)) {
        p = put_hexnum(va_arg(ap, unsigned), width, end);
    } else {
        return -1;
    }
    size_t n = (size_t)(end - p);
    memcpy(val, p, n);
    return (int)n;
}

int report_attr_set(struct report *r, const char *key, const char *fmt, ...)
{
    char val[REPORT_VALUE_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = format_fast(val, sizeof val, fmt, ap);
    va_end(ap);
    if (n < 0) {
        va_start(ap, fmt);
        n = vsnprintf(val, sizeof val, fmt, ap);
        va_end(ap);
    }
    if (n < 0)
        return ST_EMALFORMED;
    if ((size_t)n >= sizeof val)
        n = (int)sizeof val - 1;
    return attr_put(r, key, true, REPORT_ATTR_STR, NULL, 0, val, (size_t)n, true);
}

int report_attr_static(struct report *r, const char *key, const char *value)
{
    return attr_put(r, key, false, REPORT_ATTR_STATIC, NULL, 0, &value, sizeof value, false);
}

int report_attr_strn(struct report *r, const char *key, const char *s, size_t n)
{
    if (n >= REPORT_VALUE_MAX)
        n = REPORT_VALUE_MAX - 1;
    return attr_put(r, key, false, REPORT_ATTR_STR, NULL, 0, s, n, true);
}

static int put_bytes(struct report *r, const char *key, bool copy_key, const uint8_t *b,
                     size_t len)
{
    if (len * 2 >= REPORT_VALUE_MAX)
        len = REPORT_VALUE_MAX / 2 - 1;
    return attr_put(r, key, copy_key, REPORT_ATTR_BYTES, NULL, 0, b, len, false);
}

int report_attr_bytes_hex(struct report *r, const char *key, const uint8_t *b, size_t len)
{
    return put_bytes(r, key, false, b, len);
}

int report_attr_hex(struct report *r, const char *key, const uint8_t *b, size_t len)
{
    return put_bytes(r, key, true, b, len);
}

int report_attr_format(struct report *r, const char *key, report_attr_formatter fmt,
                       const uint8_t *data, size_t len)
{
    return attr_put(r, key, false, REPORT_ATTR_FORMAT, &fmt, sizeof fmt, data, len, false);
}

/* The value of a as text: in the report itself, or formatted into buf[REPORT_VALUE_MAX]. */
static const char *attr_value(const struct report_attr *a, char *buf, size_t *vlen)
{
    size_t plen;
    const char *p = attr_payload(a, &plen);
    char *end = buf + REPORT_VALUE_MAX - 1, *s = end;
    *end = '\0';
    switch (a->kind) {
    case REPORT_ATTR_STR:
        *vlen = plen - 1;
        return p;
    case REPORT_ATTR_STATIC: {
        const char *v;
        memcpy(&v, p, sizeof v);
        *vlen = strlen(v);
        return v;
    }
    case REPORT_ATTR_INT: {
        int32_t v = (int32_t)a->num;
        s = put_decimal(v < 0 ? 0u - (uint32_t)v : (uint32_t)v, end);
        if (v < 0)
            *--s = '-';
        break;
    }
    case REPORT_ATTR_UINT:
        s = put_decimal(a->num, end);
        break;
    case REPORT_ATTR_FIXED: {
        uint32_t v = a->num;
        for (int i = 0; i < a->digits; i++, v /= 10) /* the decimals, zero-padded */
            *--s = (char)('0' + v % 10);
        if (a->digits)
            *--s = '.';
        s = put_decimal(v, s);
        break;
    }
    case REPORT_ATTR_HEXNUM:
        s = put_hexnum(a->num, a->digits, end);
        break;
    case REPORT_ATTR_BOOL:
        *vlen = a->num ? 4 : 5;
        return a->num ? "true" : "false";
    case REPORT_ATTR_BYTES:
        *vlen = st_hex_encode((const uint8_t *)p, plen, buf, 2 * plen + 1);
        return buf;
    case REPORT_ATTR_FORMAT: {
        report_attr_formatter fmt;
        memcpy(&fmt, p, sizeof fmt);
        *vlen = fmt((const uint8_t *)p + sizeof fmt, plen - sizeof fmt, buf, REPORT_VALUE_MAX);
        return buf;
    }
    default:
        buf[0] = '\0';
        *vlen = 0;
        return buf;
    }
    *vlen = (size_t)(end - s);
    return s;
}

#define ATTRS_MAX (REPORT_ATTR_TEXT / sizeof(struct report_attr))

const char *report_attr_get(const struct report *r, const char *key)
{
    static _Thread_local char ring[4][REPORT_VALUE_MAX];
    static _Thread_local unsigned next;
    const struct report_attr *found = NULL;
    const struct report_attr *a = (const struct report_attr *)(const void *)r->attr_text;
    const struct report_attr *end =
        (const struct report_attr *)(const void *)(r->attr_text + r->attr_used);
    for (; a < end; a = attr_next(a))
        if (strcmp(attr_key(a), key) == 0)
            found = a; /* the last value set wins */
    if (!found)
        return NULL;
    size_t vlen;
    return attr_value(found, ring[next++ % 4], &vlen);
}

/* A cheap fingerprint of a key's text: equal keys, equal fingerprints. */
static unsigned key_print(const char *key)
{
    size_t n = strlen(key);
    return n ? (unsigned)(n * 7 + (uint8_t)key[0] * 3 + (uint8_t)key[n - 1]) & 255 : 0;
}

size_t report_attr_each(const struct report *r,
                        void (*fn)(void *ctx, const char *key, const char *value, size_t len),
                        void *ctx)
{
    /* first[i]: the record naming attribute i (its first place); last[i]: its value */
    const struct report_attr *first[ATTRS_MAX], *last[ATTRS_MAX];
    uint64_t seen[4] = {0};
    size_t n = 0;
    const struct report_attr *a = (const struct report_attr *)(const void *)r->attr_text;
    const struct report_attr *end =
        (const struct report_attr *)(const void *)(r->attr_text + r->attr_used);
    for (; a < end; a = attr_next(a)) {
        const char *key = attr_key(a);
        unsigned fp = key_print(key);
        size_t i = n;
        if (seen[fp / 64] & (1ull << (fp % 64)))
            for (i = 0; i < n && strcmp(attr_key(first[i]), key) != 0; i++)
                ;
        seen[fp / 64] |= 1ull << (fp % 64);
        if (i == n)
            first[n++] = a;
        last[i] = a;
    }
    char buf[REPORT_VALUE_MAX];
    for (size_t i = 0; i < n; i++) {
        size_t vlen;
        const char *v = attr_value(last[i], buf, &vlen);
        fn(ctx, attr_key(first[i]), v, vlen);
    }
    return n;
}

struct report_event *report_add_event(struct report *r, enum report_event_type type)
{
    if (r->n_events >= REPORT_MAX_EVENTS)
        return NULL;
    struct report_event *e = &r->events[r->n_events++];
    memset(e, 0, sizeof *e);
    e->type = (uint8_t)type;
    e->granted = -1;
    e->fence_id = -1;
    return e;
}

const char *report_event_name(uint8_t type)
{
    switch (type) {
    case REPORT_EV_UNLOCK: return "unlock";
    case REPORT_EV_LOCK: return "lock";
    case REPORT_EV_TAMPER: return "tamper";
    case REPORT_EV_RFID_ACCESS: return "rfid_access";
    case REPORT_EV_BT_ACCESS: return "bt_access";
    case REPORT_EV_WRONG_PASSWORD: return "wrong_password";
    case REPORT_EV_UNLOCK_REFUSED: return "unlock_refused";
    case REPORT_EV_LOW_BATTERY: return "low_battery";
    case REPORT_EV_MOTOR_FAULT: return "motor_fault";
    case REPORT_EV_LONG_UNLOCKED: return "long_unlocked";
    case REPORT_EV_GEOFENCE_ENTER: return "geofence_enter";
    case REPORT_EV_GEOFENCE_EXIT: return "geofence_exit";
    case REPORT_EV_OVERSPEED: return "overspeed";
    case REPORT_EV_SOS: return "sos";
    case REPORT_EV_VIBRATION: return "vibration";
    case REPORT_EV_POWER_CUT: return "power_cut";
    case REPORT_EV_ALARM: return "alarm";
    default: return "unknown";
    }
}

const char *report_source_name(uint8_t source)
{
    switch (source) {
    case REPORT_SRC_RFID: return "rfid";
    case REPORT_SRC_REMOTE_STATIC: return "remote_static_password";
    case REPORT_SRC_REMOTE_DYNAMIC: return "remote_dynamic_password";
    case REPORT_SRC_APP_STATIC: return "app_static_password";
    case REPORT_SRC_APP_DYNAMIC: return "app_dynamic_password";
    case REPORT_SRC_SMS_STATIC: return "sms_static_password";
    case REPORT_SRC_SMS_DYNAMIC: return "sms_dynamic_password";
    case REPORT_SRC_BLUETOOTH: return "bluetooth";
    case REPORT_SRC_AUTO: return "auto";
    case REPORT_SRC_ROPE: return "rope";
    case REPORT_SRC_BACK_COVER: return "back_cover";
    case REPORT_SRC_LORA: return "lora";
    default: return "none";
    }
}

const char *report_fix_name(uint8_t fix)
{
    switch (fix) {
    case REPORT_FIX_GNSS: return "gnss";
    case REPORT_FIX_GPS: return "gps";
    case REPORT_FIX_BEIDOU: return "beidou";
    case REPORT_FIX_LBS: return "lbs";
    case REPORT_FIX_WIFI: return "wifi";
    default: return "none";
    }
}

const char *report_lock_name(uint8_t lock)
{
    switch (lock) {
    case REPORT_LOCK_LOCKED: return "locked";
    case REPORT_LOCK_UNLOCKED: return "unlocked";
    default: return "unknown";
    }
}
