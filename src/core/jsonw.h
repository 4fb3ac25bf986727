/* jsonw.h — a small streaming JSON writer into a struct buf (output only; input
 * is parsed by jansson). Commas are tracked per nesting level, strings escaped. */
#ifndef ST_JSONW_H
#define ST_JSONW_H

#include <stdbool.h>
#include <stdint.h>

#include "buf.h"

#define JSONW_MAX_DEPTH 16

struct jsonw {
    struct buf *out;
    int depth;
    bool first[JSONW_MAX_DEPTH];
    bool after_key;
};

void jsonw_init(struct jsonw *w, struct buf *out);
void jsonw_obj_begin(struct jsonw *w);
void jsonw_obj_end(struct jsonw *w);
void jsonw_arr_begin(struct jsonw *w);
void jsonw_arr_end(struct jsonw *w);
void jsonw_key(struct jsonw *w, const char *key);
void jsonw_str(struct jsonw *w, const char *s);
void jsonw_strn(struct jsonw *w, const char *s, size_t n);
void jsonw_int(struct jsonw *w, int64_t v);
/** v as JSON number text into text[cap ≥ 32]: at most `decimals` places (≤ 12), trailing
 *  zeros trimmed ("9.26", "18"), exponent form from 1e15 up. Returns the length; 0 for
 *  NaN/inf (and a cap under 32). CSV and GPX writers share it. */
size_t jsonw_format_num(double v, int decimals, char *text, size_t cap);
/** Shortest round-trip form with at most `decimals` places; NaN/inf → null. */
void jsonw_num(struct jsonw *w, double v, int decimals);
void jsonw_bool(struct jsonw *w, bool v);
void jsonw_null(struct jsonw *w);
/** "key": the ISO 8601 UTC text of t (epoch seconds). */
void jsonw_key_time(struct jsonw *w, const char *key, int64_t t);
/** Splice already-valid JSON text as one value. */
void jsonw_raw(struct jsonw *w, const char *json);

#endif
