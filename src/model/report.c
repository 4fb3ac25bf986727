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

static int attr_find(const struct report *r, const char *key)
{
    for (int i = 0; i < r->n_attrs; i++)
        if (strcmp(r->attr_text + r->attr_key[i], key) == 0)
            return i;
    return -1;
}

static int attr_put(struct report *r, const char *key, const char *val, size_t vlen)
{
    size_t klen = strlen(key);
    size_t need = klen + 1 + vlen + 1;
    int i = attr_find(r, key);
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
    r->attr_used = (uint16_t)(r->attr_used + need);
    return 0;
}

int report_attr_set(struct report *r, const char *key, const char *fmt, ...)
{
    char val[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(val, sizeof val, fmt, ap);
    va_end(ap);
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
    int i = attr_find(r, key);
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
