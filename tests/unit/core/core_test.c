/* core_test.c — time, JSON writer, string map, config, buffers, report attributes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../../src/core/buf.h"
#include "../../../src/core/config.h"
#include "../../../src/core/err.h"
#include "../../../src/core/hex.h"
#include "../../../src/core/jsonw.h"
#include "../../../src/core/strmap.h"
#include "../../../src/core/timeutil.h"
#include "../../../src/model/report.h"
#include "../../../src/model/report_json.h"

static void test_time_roundtrip(void **state)
{
    (void)state;
    char iso[ST_ISO_LEN];
    assert_int_equal(st_time_from_utc(1970, 1, 1, 0, 0, 0), 0);
    assert_int_equal(st_time_from_utc(2011, 2, 16, 5, 59, 10), 1297835950);
    st_time_iso(1297835950, iso);
    assert_string_equal(iso, "2011-02-16T05:59:10Z");
    assert_int_equal(st_time_from_utc(2024, 2, 29, 0, 0, 0), 1709164800);
    assert_int_equal(st_time_from_utc(2023, 2, 29, 0, 0, 0), -1);
    assert_int_equal(st_time_from_utc(2023, 13, 1, 0, 0, 0), -1);
    /* every day of 1999..2101 survives the round trip */
    for (int64_t t = st_time_from_utc(1999, 1, 1, 12, 0, 0); t < 4134556800; t += 86400) {
        int y, mo, d, h, mi, s;
        st_time_to_utc(t, &y, &mo, &d, &h, &mi, &s);
        assert_int_equal(st_time_from_utc(y, mo, d, h, mi, s), t);
    }
    int64_t t;
    assert_int_equal(st_time_parse("2025-11-18T11:26:11Z", &t), 0);
    assert_int_equal(t, st_time_from_utc(2025, 11, 18, 11, 26, 11));
    assert_int_equal(st_time_parse("2025-11-18", &t), 0);
    assert_int_equal(t, st_time_from_utc(2025, 11, 18, 0, 0, 0));
    assert_int_equal(st_time_parse("1700000000", &t), 0);
    assert_int_equal(t, 1700000000);
    assert_int_equal(st_time_parse("2025-11-18T11:26", &t), ST_EMALFORMED);
    assert_int_equal(st_time_parse("yesterday", &t), ST_EMALFORMED);
}

static void test_jsonw(void **state)
{
    (void)state;
    struct buf b = {0};
    struct jsonw w;
    jsonw_init(&w, &b);
    jsonw_obj_begin(&w);
    jsonw_key(&w, "s");
    jsonw_str(&w, "a\"b\\c\n\x01");
    jsonw_key(&w, "n");
    jsonw_num(&w, 9.26, 6);
    jsonw_key(&w, "z");
    jsonw_num(&w, -0.0000001, 6);
    jsonw_key(&w, "i");
    jsonw_int(&w, -42);
    jsonw_key(&w, "a");
    jsonw_arr_begin(&w);
    jsonw_bool(&w, true);
    jsonw_null(&w);
    jsonw_obj_begin(&w);
    jsonw_obj_end(&w);
    jsonw_arr_end(&w);
    jsonw_obj_end(&w);
    buf_append(&b, "", 1);
    assert_string_equal((char *)b.data,
                        "{\"s\":\"a\\\"b\\\\c\\n\\u0001\",\"n\":9.26,\"z\":0,\"i\":-42,"
                        "\"a\":[true,null,{}]}");
    /* huge values (a device's garbage) in exponent form: fits, and parsers take it */
    b.len = 0;
    jsonw_init(&w, &b);
    jsonw_arr_begin(&w);
    jsonw_num(&w, 6.8888888888888889e25, 1);
    jsonw_num(&w, -1e300, 6);
    jsonw_num(&w, 123456789012345.5, 1);
    jsonw_arr_end(&w);
    buf_append(&b, "", 1);
    assert_string_equal((char *)b.data, "[6.888888888888889e+25,-1.0000000000000001e+300,123456789012345.5]");
    /* bytes that are not UTF-8 become U+FFFD; well-formed sequences pass unchanged */
    b.len = 0;
    jsonw_init(&w, &b);
    jsonw_str(&w, "\xb3x\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xc0\xaf\xed\xa0\x80\xe2\x82");
    buf_append(&b, "", 1);
    assert_string_equal((char *)b.data, "\"\\ufffdx\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"
                                        "\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\"");
    buf_free(&b);
}

static void test_hex_encode(void **state)
{
    (void)state;
    const uint8_t b[] = {0x00, 0x7e, 0xab, 0xff};
    char out[9];
    assert_int_equal(st_hex_encode(b, sizeof b, out, sizeof out), 8);
    assert_string_equal(out, "007eabff");
    assert_int_equal(st_hex_encode(b, sizeof b, out, 6), 4); /* whole bytes that fit */
    assert_string_equal(out, "007e");
    assert_int_equal(st_hex_encode(b, 0, out, sizeof out), 0);
    assert_string_equal(out, "");
}

static void test_strmap(void **state)
{
    (void)state;
    struct strmap m;
    strmap_init(&m);
    char key[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof key, "k%d", i);
        *strmap_put(&m, key, 0) = i;
    }
    assert_int_equal(m.count, 5000);
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof key, "k%d", i);
        assert_non_null(strmap_get(&m, key));
        assert_int_equal(*strmap_get(&m, key), i);
    }
    strmap_del(&m, "k42");
    assert_null(strmap_get(&m, "k42"));
    assert_int_equal(*strmap_put(&m, "k43", 7), 43); /* existing value kept */
    strmap_deinit(&m);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_config(void **state)
{
    (void)state;
    struct st_config c;
    char err[512];
    st_config_defaults(&c);
    assert_int_equal(c.port, 8888);
    assert_string_equal(c.db, "sealtrack.db");
    assert_int_equal(st_config_set(&c, "port", "9000", err, sizeof err), 0);
    assert_int_equal(c.port, 9000);
    assert_int_equal(st_config_set(&c, "port", "70000", err, sizeof err), ST_ECONFIG);
    assert_non_null(strstr(err, "port"));
    assert_int_equal(st_config_set(&c, "register", "maybe", err, sizeof err), ST_ECONFIG);
    assert_false(c.store_none);
    assert_int_equal(st_config_set(&c, "store", "none", err, sizeof err), 0);
    assert_true(c.store_none);
    assert_int_equal(st_config_set(&c, "store", "memory", err, sizeof err), ST_ECONFIG);
    assert_int_equal(st_config_set(&c, "colour", "red", err, sizeof err), ST_ECONFIG);
    assert_non_null(strstr(err, "unknown setting"));

    char path[] = "/tmp/sealtrack-config-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    write_file(path, "{\"port\": 7001, \"db\": \"/tmp/x.db\", \"register\": \"known\", \"sync\": \"normal\"}");
    assert_int_equal(st_config_load(&c, path, err, sizeof err), 0);
    assert_int_equal(c.port, 7001);
    assert_string_equal(c.db, "/tmp/x.db");
    assert_int_equal(c.register_mode, ST_REGISTER_KNOWN);
    assert_false(c.sync_full);
    write_file(path, "{\"model_tz\": {\"JT709A\": 0, \"GT808\": 480}}");
    assert_int_equal(st_config_load(&c, path, err, sizeof err), 0);
    assert_int_equal(c.n_model_tz, 2);
    assert_string_equal(c.model_tz[1].model, "GT808");
    assert_int_equal(c.model_tz[1].tz_min, 480);
    assert_int_equal(st_config_set(&c, "model_tz", "A:60,B:-120", err, sizeof err), 0);
    assert_int_equal(c.n_model_tz, 2);
    assert_int_equal(c.model_tz[1].tz_min, -120);
    assert_int_equal(st_config_set(&c, "model_tz", "A:999", err, sizeof err), ST_ECONFIG);
    assert_int_equal(st_config_set(&c, "model_tz", "A", err, sizeof err), ST_ECONFIG);
    write_file(path, "{\"model_tz\": {\"JT709A\": \"UTC\"}}");
    assert_int_equal(st_config_load(&c, path, err, sizeof err), ST_ECONFIG);
    write_file(path, "{\"port\": 1, \"port\": 2}");
    assert_int_equal(st_config_load(&c, path, err, sizeof err), ST_ECONFIG);
    write_file(path, "{\"port\": [1]}");
    assert_int_equal(st_config_load(&c, path, err, sizeof err), ST_ECONFIG);
    assert_non_null(strstr(err, "port"));
    write_file(path, "{\"port\": 1,\n \"bogus\": 2}");
    assert_int_equal(st_config_load(&c, path, err, sizeof err), ST_ECONFIG);
    assert_non_null(strstr(err, "bogus"));
    write_file(path, "{\"port\": ");
    assert_int_equal(st_config_load(&c, path, err, sizeof err), ST_ECONFIG);
    assert_non_null(strstr(err, path));
    unlink(path);
}

/* Formatter of a REPORT_ATTR_FORMAT attribute: the byte count and the first byte. */
static size_t format_first(const uint8_t *data, size_t len, char *out, size_t cap)
{
    return (size_t)snprintf(out, cap, "%zu:%u", len, len ? data[0] : 0u);
}

static void test_report_attrs(void **state)
{
    (void)state;
    static struct report r;
    report_init(&r, "jt808");
    assert_int_equal(r.battery_pct, -1);
    assert_int_equal(report_attr_set(&r, "a", "%d", 1), 0);
    assert_int_equal(report_attr_set(&r, "a", "%s", "two"), 0);
    assert_string_equal(report_attr_get(&r, "a"), "two");
    uint8_t bytes[3] = {0x0b, 0xad, 0xff};
    char key[16];
    snprintf(key, sizeof key, "h");
    report_attr_hex(&r, key, bytes, 3);
    memset(key, 0, sizeof key); /* report_attr_hex keeps its own copy of the key */
    assert_string_equal(report_attr_get(&r, "h"), "0badff");
    assert_null(report_attr_get(&r, "missing"));

    /* typed values, formatted when read; equal to the printf forms they replace */
    report_attr_int(&r, "i", -42);
    report_attr_int(&r, "imin", INT32_MIN);
    report_attr_uint(&r, "u", 4294967295u);
    report_attr_uint_hex(&r, "x2", 0x5, 2);
    report_attr_uint_hex(&r, "x4", 0x12345, 4);
    report_attr_fixed(&r, "f2", 418, 2);
    report_attr_fixed(&r, "f3", 7, 3);
    report_attr_fixed(&r, "f0", 12, 0);
    report_attr_bool(&r, "b", true);
    report_attr_static(&r, "s", "static");
    report_attr_strn(&r, "n", "abcdef", 3);
    report_attr_bytes_hex(&r, "y", bytes, 2);
    report_attr_format(&r, "fmt", format_first, bytes + 1, 2);
    report_attr_bool(&r, "b", false); /* set again: first place, last value */
    assert_string_equal(report_attr_get(&r, "i"), "-42");
    assert_string_equal(report_attr_get(&r, "imin"), "-2147483648");
    assert_string_equal(report_attr_get(&r, "u"), "4294967295");
    assert_string_equal(report_attr_get(&r, "x2"), "0x05");
    assert_string_equal(report_attr_get(&r, "x4"), "0x12345");
    assert_string_equal(report_attr_get(&r, "f2"), "4.18");
    assert_string_equal(report_attr_get(&r, "f3"), "0.007");
    assert_string_equal(report_attr_get(&r, "f0"), "12");
    assert_string_equal(report_attr_get(&r, "s"), "static");
    assert_string_equal(report_attr_get(&r, "n"), "abc");
    assert_string_equal(report_attr_get(&r, "y"), "0bad");
    assert_string_equal(report_attr_get(&r, "fmt"), "2:173");
    assert_string_equal(report_attr_get(&r, "b"), "false");

    /* a copy of the used part is a whole report: nothing points into the original */
    static struct report copy;
    memcpy(&copy, &r, offsetof(struct report, attr_text) + r.attr_used);
    memset(&r, 0xA5, sizeof r);
    struct buf b = {0};
    struct jsonw w;
    jsonw_init(&w, &b);
    report_json_attrs(&w, &copy);
    buf_append(&b, "", 1);
    assert_string_equal((char *)b.data,
                        "{\"a\":\"two\",\"h\":\"0badff\",\"i\":\"-42\",\"imin\":\"-2147483648\","
                        "\"u\":\"4294967295\",\"x2\":\"0x05\",\"x4\":\"0x12345\",\"f2\":\"4.18\","
                        "\"f3\":\"0.007\",\"f0\":\"12\",\"b\":\"false\",\"s\":\"static\","
                        "\"n\":\"abc\",\"y\":\"0bad\",\"fmt\":\"2:173\"}");
    b.len = 0;

    /* the bag refuses, never overflows */
    report_init(&r, "jt808");
    int full = 0;
    for (int i = 0; i < 200; i++) {
        snprintf(key, sizeof key, "k%d", i);
        full |= report_attr_set(&r, key, "%0100d", i) == ST_EFULL;
        full |= report_attr_uint(&r, "t", (unsigned)i) == ST_EFULL;
    }
    assert_true(full);
    assert_true(r.attr_used <= sizeof r.attr_text);
    struct report_event *e = report_add_event(&r, REPORT_EV_UNLOCK);
    e->source = REPORT_SRC_RFID;
    snprintf(e->card, sizeof e->card, "0006437449");
    jsonw_init(&w, &b);
    report_json_event(&w, e);
    buf_append(&b, "", 1);
    assert_string_equal((char *)b.data, "{\"type\":\"unlock\",\"source\":\"rfid\",\"card\":\"0006437449\"}");
    buf_free(&b);
}

static void test_buf(void **state)
{
    (void)state;
    struct buf b = {0};
    for (int i = 0; i < 1000; i++)
        buf_printf(&b, "%d,", i);
    assert_int_equal(b.len, 3890);
    buf_consume(&b, 3880);
    assert_memory_equal(b.data, "7,998,999,", 10);
    buf_consume(&b, 100);
    assert_int_equal(b.len, 0);
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_time_roundtrip), cmocka_unit_test(test_jsonw),
        cmocka_unit_test(test_hex_encode),
        cmocka_unit_test(test_strmap),         cmocka_unit_test(test_config),
        cmocka_unit_test(test_report_attrs),   cmocka_unit_test(test_buf),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
