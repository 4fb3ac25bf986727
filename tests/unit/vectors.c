#include "vectors.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/core/timeutil.h"

int vec_list(char names[][64], int max)
{
    const char *dir = getenv("ST_VECTORS_DIR");
    DIR *d = opendir(dir ? dir : "tests/vectors");
    int n = 0;
    struct dirent *e;
    if (!d)
        abort();
    while ((e = readdir(d)) && n < max) {
        size_t len = strlen(e->d_name);
        if (len > 4 && len < 60 && strcmp(e->d_name + len - 4, ".tsv") == 0)
            memcpy(names[n++], e->d_name, len + 1);
    }
    closedir(d);
    return n;
}

void vec_load(const char *name, struct vec_file *f)
{
    const char *dir = getenv("ST_VECTORS_DIR");
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir ? dir : "tests/vectors", name);
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        fprintf(stderr, "cannot open %s (set ST_VECTORS_DIR)\n", path);
        abort();
    }
    fseek(fp, 0, SEEK_END);
    long size = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    f->text = malloc((size_t)size + 1);
    if (!f->text || fread(f->text, 1, (size_t)size, fp) != (size_t)size)
        abort();
    fclose(fp);
    f->text[size] = '\0';
    f->n = 0;
    char *line = f->text;
    int header = 1;
    while (line && *line) {
        char *next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        if (header) {
            header = 0;
        } else if (*line) {
            const char *cols[8] = {0};
            char *p = line;
            for (int c = 0; c < 8; c++) {
                cols[c] = p ? p : "";
                char *tab = p ? strchr(p, '\t') : NULL;
                if (tab)
                    *tab = '\0';
                p = tab ? tab + 1 : NULL;
            }
            if (f->n >= sizeof f->rows / sizeof f->rows[0])
                abort();
            f->rows[f->n++] = (struct vec_row){cols[0], cols[1], cols[2], cols[3],
                                               cols[4], cols[5], cols[6], cols[7]};
        }
        line = next;
    }
}

void vec_free(struct vec_file *f)
{
    free(f->text);
    f->text = NULL;
    f->n = 0;
}

size_t vec_unhex(const char *hex, size_t hexlen, uint8_t *out, size_t cap)
{
    if (hexlen % 2 || hexlen / 2 > cap)
        return (size_t)-1;
    for (size_t i = 0; i < hexlen / 2; i++) {
        int v = 0;
        for (int k = 0; k < 2; k++) {
            char c = hex[2 * i + (size_t)k];
            int d = c >= '0' && c <= '9' ? c - '0'
                    : c >= 'a' && c <= 'f' ? c - 'a' + 10
                    : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                           : -1;
            if (d < 0)
                return (size_t)-1;
            v = v * 16 + d;
        }
        out[i] = (uint8_t)v;
    }
    return hexlen / 2;
}

size_t vec_message(const struct vec_row *row, uint8_t *out, size_t cap)
{
    size_t len = strlen(row->message);
    if (strcmp(row->format, "hex") == 0) {
        size_t n = vec_unhex(row->message, len, out, cap);
        if (n == (size_t)-1) {
            fprintf(stderr, "%s: bad hex message\n", row->id);
            abort();
        }
        return n;
    }
    if (len > cap)
        abort();
    memcpy(out, row->message, len);
    return len;
}

size_t vec_expected(const struct vec_row *row, struct vec_kv *kv, size_t max)
{
    size_t n = 0;
    const char *p = row->expected;
    while (*p) {
        const char *end = strstr(p, "; ");
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        if (eq) {
            if (n >= max)
                abort();
            size_t kl = (size_t)(eq - p), vl = len - kl - 1;
            if (kl >= sizeof kv[n].key || vl >= sizeof kv[n].val)
                abort();
            memcpy(kv[n].key, p, kl);
            kv[n].key[kl] = '\0';
            memcpy(kv[n].val, eq + 1, vl);
            kv[n].val[vl] = '\0';
            n++;
        }
        p += len;
        if (end)
            p += 2;
    }
    return n;
}

const char *vec_get(const struct vec_kv *kv, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(kv[i].key, key) == 0)
            return kv[i].val;
    return NULL;
}

static int is_number(const char *s, double *v)
{
    char *end;
    if (!*s)
        return 0;
    *v = strtod(s, &end);
    return *end == '\0';
}

/* Compare text forms: numbers within tol, "true"/"false", otherwise exact. */
static int same(const char *want, const char *got, double tol)
{
    double a, b;
    if (is_number(want, &a) && is_number(got, &b))
        return fabs(a - b) <= tol;
    return strcmp(want, got) == 0;
}

static int check_one(const char *vec_id, const struct report *r, const char *key, const char *want)
{
    char got[64];
    const char *g = got;
    double tol = 1e-6;
    if (strcmp(key, "time") == 0) {
        st_time_iso(r->fix_time, got);
    } else if (strcmp(key, "lat") == 0 || strcmp(key, "lon") == 0) {
        snprintf(got, sizeof got, "%.7f", strcmp(key, "lat") == 0 ? r->lat : r->lon);
        tol = 1.1e-6;
    } else if (strcmp(key, "valid") == 0) {
        g = r->valid ? "true" : "false";
    } else if (strcmp(key, "speed_kmh") == 0) {
        snprintf(got, sizeof got, "%.4f", r->speed_kmh);
        tol = 0.0011;
    } else if (strcmp(key, "course") == 0) {
        snprintf(got, sizeof got, "%.3f", r->course);
        tol = 0.01;
    } else if (strcmp(key, "battery_pct") == 0) {
        if (r->battery_pct < 0)
            g = "none";
        else
            snprintf(got, sizeof got, "%d", r->battery_pct);
    } else if (strcmp(key, "satellites") == 0) {
        snprintf(got, sizeof got, "%d", r->satellites);
    } else if (strcmp(key, "altitude_m") == 0) {
        snprintf(got, sizeof got, "%.1f", r->altitude_m);
        tol = 0.01;
    } else if (strcmp(key, "odometer_km") == 0) {
        snprintf(got, sizeof got, "%.3f", r->odometer_km);
        tol = 0.001;
    } else if (strcmp(key, "charging") == 0) {
        g = r->charging == 1 ? "true" : "false";
    } else if (strcmp(key, "device_id") == 0) {
        g = r->device_id;
    } else {
        g = report_attr_get(r, key);
        if (!g) {
            if (strcmp(want, "none") == 0)
                return 0;
            fprintf(stderr, "%s: %s: expected %s, attribute missing\n", vec_id, key, want);
            return 1;
        }
    }
    if (same(want, g, tol))
        return 0;
    fprintf(stderr, "%s: %s: expected %s, got %s\n", vec_id, key, want, g);
    return 1;
}

int vec_check_report(const char *vec_id, const struct report *r, const struct vec_kv *kv, size_t n,
                     const char *prefix, const char *const *ignore)
{
    int bad = 0;
    size_t plen = strlen(prefix);
    for (size_t i = 0; i < n; i++) {
        const char *key = kv[i].key;
        if (plen) {
            if (strncmp(key, prefix, plen) != 0)
                continue;
            key += plen;
        } else if (key[0] == 'r' && key[1] >= '0' && key[1] <= '9' && strchr(key, '.')) {
            continue; /* a record-prefixed key: checked with its own prefix */
        }
        int skip = 0;
        for (size_t k = 0; ignore && ignore[k]; k++)
            if (strcmp(ignore[k], key) == 0)
                skip = 1;
        if (!skip)
            bad += check_one(vec_id, r, key, kv[i].val);
    }
    return bad;
}
