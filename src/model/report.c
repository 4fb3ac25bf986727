/* report.c — attribute bag and names for struct report. */
#include "report.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "../core/err.h"

void report_init(struct report *r, const char *protocol)
{
    /* Only the header fields are cleared: the attribute text is reached through
     * n_attrs, so clearing 2.5 KiB per record on the hot path is not needed. */
    memset(r, 0, offsetof(struct report, attr_text));
    r->protocol = protocol;
    r->satellites = -1;
    r->battery_pct = -1;
    r->battery_v = -1;
    r->charging = -1;
    r->gsm_signal = -1;
    r->odometer_km = -1;
}

static uint16_t key_hash(const char *key, size_t *len)
{
    uint32_t h = 2166136261u; /* FNV-1a, folded */
    size_t n = 0;
    for (; key[n]; n++)
        h = (h ^ (uint8_t)key[n]) * 16777619u;
    *len = n;
    return (uint16_t)(h ^ (h >> 16));
}

static int attr_find(const struct report *r, const char *key, uint16_t hash)
{
    if (!(r->attr_bloom & (1ull << (hash & 63))))
        return -1;
    for (int i = 0; i < r->n_attrs; i++)
        if (r->attr_hash[i] == hash && strcmp(r->attr_text + r->attr_key[i], key) == 0)
            return i;
    return -1;
}

static int attr_put(struct report *r, const char *key, const char *val, size_t vlen)
{
    size_t klen;
    uint16_t hash = key_hash(key, &klen);
    size_t need = klen + 1 + vlen + 1;
    int i = attr_find(r, key, hash);
    if (need > sizeof r->attr_text - r->attr_used)
        return ST_EFULL;
    if (i < 0) {
        if (r->n_attrs >= REPORT_MAX_ATTRS)
            return ST_EFULL;
        i = r->n_attrs++;
    }
    /* A replaced value leaves its old text unused: replacing is rare. */
    char *p = r->attr_text + r->attr_used;
    memcpy(p, key, klen + 1);
    memcpy(p + klen + 1, val, vlen);
    p[klen + 1 + vlen] = '\0';
    r->attr_key[i] = r->attr_used;
    r->attr_val[i] = (uint16_t)(r->attr_used + klen + 1);
    r->attr_hash[i] = hash;
    r->attr_bloom |= 1ull << (hash & 63);
    r->attr_used = (uint16_t)(r->attr_used + need);
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

/* The formats decoders use for nearly every attribute, without vsnprintf: it was most
 * of a decode's cost (callgrind). Returns the length, or -1 for any other format. */
static int format_fast(char *val, size_t cap, const char *fmt, va_list ap)
{
    static const char hex[] = "0123456789abcdef";
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
        unsigned v = va_arg(ap, unsigned);
        p = end;
        for (int i = 0; i < width || v; i++, v >>= 4)
            *--p = hex[v & 15];
        *--p = 'x';
        *--p = '0';
    } else {
        return -1;
    }
    size_t n = (size_t)(end - p);
    memcpy(val, p, n);
    return (int)n;
}

int report_attr_set(struct report *r, const char *key, const char *fmt, ...)
{
    char val[1024];
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
    return attr_put(r, key, val, (size_t)n);
}

int report_attr_hex(struct report *r, const char *key, const uint8_t *b, size_t len)
{
    static const char digits[] = "0123456789abcdef";
    char val[1024];
    if (len * 2 >= sizeof val)
        len = sizeof val / 2 - 1;
    for (size_t i = 0; i < len; i++) {
        val[2 * i] = digits[b[i] >> 4];
        val[2 * i + 1] = digits[b[i] & 15];
    }
    return attr_put(r, key, val, len * 2);
}

const char *report_attr_get(const struct report *r, const char *key)
{
    size_t klen;
    int i = attr_find(r, key, key_hash(key, &klen));
    return i < 0 ? NULL : r->attr_text + r->attr_val[i];
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
