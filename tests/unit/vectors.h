/* vectors.h — reads the shared test-vector files (tests/vectors/NAME.tsv, columns in
 * tests/vectors/README.md) and compares decoded reports with their `expected` column.
 * A new row is tested without code changes. */
#ifndef ST_TEST_VECTORS_H
#define ST_TEST_VECTORS_H

#include <stddef.h>
#include <stdint.h>

#include "../../src/model/report.h"

struct vec_row {
    const char *id, *source, *layer, *format, *message, *expected, *traccar, *notes;
};

struct vec_file {
    size_t n;
    struct vec_row rows[512];
    char *text; /* owned: the file's bytes, split in place */
};

struct vec_kv {
    char key[64];
    char val[4096];
};

/** Names of the vector files (`*.tsv`) in the vectors directory; returns how many (≤ max). */
int vec_list(char names[][64], int max);

/** Load `name` (e.g. "jt600.tsv") from $ST_VECTORS_DIR or tests/vectors; aborts on failure. */
void vec_load(const char *name, struct vec_file *f);
void vec_free(struct vec_file *f);

/** The row's message bytes (hex decoded, or the ASCII text); returns the length. */
size_t vec_message(const struct vec_row *row, uint8_t *out, size_t cap);

/** Hex text → bytes; returns the length or (size_t)-1 on a bad digit/overflow. */
size_t vec_unhex(const char *hex, size_t hexlen, uint8_t *out, size_t cap);

/** Split `expected` into key/value pairs (returns how many; aborts over `max`). */
size_t vec_expected(const struct vec_row *row, struct vec_kv *kv, size_t max);

/** Value of `key` in kv, or NULL. */
const char *vec_get(const struct vec_kv *kv, size_t n, const char *key);

/** Compare report r with every expected key that starts with `prefix` ("" = keys
 *  without an rN. prefix), skipping keys in the NULL-terminated `ignore` list.
 *  Normalised keys (time, lat, lon, valid, speed_kmh, course, battery_pct,
 *  satellites, altitude_m, odometer_km, charging, device_id) are checked
 *  against the report's fields; every other key must be an attribute with the
 *  same value (numbers compared with a 1e-6 tolerance; `none` = absent).
 *  Prints each mismatch with the vector id; returns the number of mismatches. */
int vec_check_report(const char *vec_id, const struct report *r, const struct vec_kv *kv, size_t n,
                     const char *prefix, const char *const *ignore);

#endif
