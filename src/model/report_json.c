#include "report_json.h"

#include "../core/timeutil.h"

void report_json_event(struct jsonw *w, const struct report_event *e)
{
    jsonw_obj_begin(w);
    jsonw_key(w, "type");
    jsonw_str(w, report_event_name(e->type));
    if (e->source) {
        jsonw_key(w, "source");
        jsonw_str(w, report_source_name(e->source));
    }
    if (e->card[0]) {
        jsonw_key(w, "card");
        jsonw_str(w, e->card);
    }
    if (e->granted >= 0) {
        jsonw_key(w, "granted");
        jsonw_bool(w, e->granted);
    }
    if (e->fence_id >= 0) {
        jsonw_key(w, "fence_id");
        jsonw_int(w, e->fence_id);
    }
    if (e->reason[0]) {
        jsonw_key(w, "reason");
        jsonw_str(w, e->reason);
    }
    jsonw_obj_end(w);
}

static void attr_member(void *ctx, const char *key, const char *value, size_t len)
{
    struct jsonw *w = ctx;
    jsonw_key(w, key);
    jsonw_strn(w, value, len);
}

void report_json_attrs(struct jsonw *w, const struct report *r)
{
    jsonw_obj_begin(w);
    report_attr_each(r, attr_member, w);
    jsonw_obj_end(w);
}

void report_json_write(struct jsonw *w, const struct report *r)
{
    char iso[ST_ISO_LEN];
    jsonw_obj_begin(w);
    jsonw_key(w, "protocol");
    jsonw_str(w, r->protocol ? r->protocol : "");
    jsonw_key(w, "device_id");
    jsonw_str(w, r->device_id);
    jsonw_key(w, "msg_type");
    jsonw_str(w, r->msg_type);
    jsonw_key(w, "time");
    if (r->fix_time) {
        st_time_iso(r->fix_time, iso);
        jsonw_str(w, iso);
    } else {
        jsonw_null(w);
    }
    if (r->has_position) {
        jsonw_key(w, "lat");
        jsonw_num(w, r->lat, 6);
        jsonw_key(w, "lon");
        jsonw_num(w, r->lon, 6);
        jsonw_key(w, "speed_kmh");
        jsonw_num(w, r->speed_kmh, 3);
        jsonw_key(w, "course");
        jsonw_num(w, r->course, 1);
        if (r->has_altitude) {
            jsonw_key(w, "altitude_m");
            jsonw_num(w, r->altitude_m, 1);
        }
    } else {
        jsonw_key(w, "lat");
        jsonw_null(w);
        jsonw_key(w, "lon");
        jsonw_null(w);
        jsonw_key(w, "speed_kmh");
        jsonw_null(w);
        jsonw_key(w, "course");
        jsonw_null(w);
    }
    jsonw_key(w, "valid");
    jsonw_bool(w, r->has_position && r->valid);
    jsonw_key(w, "fix");
    jsonw_str(w, report_fix_name(r->fix));
    if (r->satellites >= 0) {
        jsonw_key(w, "satellites");
        jsonw_int(w, r->satellites);
    }
    jsonw_key(w, "battery_pct");
    if (r->battery_pct >= 0)
        jsonw_int(w, r->battery_pct);
    else
        jsonw_null(w);
    if (r->battery_v >= 0) {
        jsonw_key(w, "battery_v");
        jsonw_num(w, r->battery_v, 2);
    }
    if (r->charging >= 0) {
        jsonw_key(w, "charging");
        jsonw_bool(w, r->charging);
    }
    if (r->gsm_signal >= 0) {
        jsonw_key(w, "gsm_signal");
        jsonw_int(w, r->gsm_signal);
    }
    if (r->odometer_km >= 0) {
        jsonw_key(w, "odometer_km");
        jsonw_num(w, r->odometer_km, 3);
    }
    jsonw_key(w, "lock");
    jsonw_str(w, report_lock_name(r->lock));
    if (r->has_cell) {
        jsonw_key(w, "cell");
        jsonw_obj_begin(w);
        jsonw_key(w, "mcc");
        jsonw_int(w, r->cell.mcc);
        jsonw_key(w, "mnc");
        jsonw_int(w, r->cell.mnc);
        jsonw_key(w, "lac");
        jsonw_int(w, r->cell.lac);
        jsonw_key(w, "cid");
        jsonw_int(w, r->cell.cid);
        jsonw_obj_end(w);
    }
    jsonw_key(w, "events");
    jsonw_arr_begin(w);
    for (int i = 0; i < r->n_events; i++)
        report_json_event(w, &r->events[i]);
    jsonw_arr_end(w);
    jsonw_key(w, "attrs");
    report_json_attrs(w, r);
    jsonw_obj_end(w);
}
