/* auth_test.c — password hashes, bearer secrets and the failed-login limiter. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "../../../src/api/auth.h"

static void test_password_hash_verifies_only_the_password(void **state)
{
    (void)state;
    char hash[AUTH_HASH_MAX];
    assert_int_equal(auth_password_hash("correct horse", hash), 0);
    assert_non_null(strstr(hash, "$argon2id$"));
    assert_true(auth_password_verify(hash, "correct horse"));
    assert_false(auth_password_verify(hash, "correct hors"));
    assert_false(auth_password_verify(hash, ""));
    char again[AUTH_HASH_MAX];
    assert_int_equal(auth_password_hash("correct horse", again), 0);
    assert_string_not_equal(hash, again); /* salted */
    assert_false(auth_password_verify("not a hash", "correct horse"));
}

static void test_secrets_are_random_and_digested(void **state)
{
    (void)state;
    char a[AUTH_SECRET_LEN + 1], b[AUTH_SECRET_LEN + 1];
    uint8_t da[AUTH_DIGEST_LEN], db[AUTH_DIGEST_LEN], check[AUTH_DIGEST_LEN];
    auth_secret_new(a, da);
    auth_secret_new(b, db);
    assert_int_equal(strlen(a), AUTH_SECRET_LEN);
    assert_memory_equal(a, "st_", 3);
    assert_string_not_equal(a, b);
    for (size_t i = 3; i < AUTH_SECRET_LEN; i++) /* base64url: safe in headers and cookies */
        assert_non_null(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", a[i]));
    auth_secret_digest(a, strlen(a), check);
    assert_memory_equal(check, da, AUTH_DIGEST_LEN);
    assert_memory_not_equal(da, db, AUTH_DIGEST_LEN);
    /* SHA-256("abc") */
    static const uint8_t abc[AUTH_DIGEST_LEN] = {
        0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
        0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
    auth_secret_digest("abc", 3, check);
    assert_memory_equal(check, abc, AUTH_DIGEST_LEN);
}

static void test_limiter_blocks_after_max_failures_for_the_window(void **state)
{
    (void)state;
    int64_t t = 1000000;
    for (int i = 0; i < AUTH_FAIL_MAX - 1; i++) {
        auth_limit_fail("addr:10.0.0.1", t + i);
        assert_int_equal(auth_limit_wait("addr:10.0.0.1", t + i), 0);
    }
    auth_limit_fail("addr:10.0.0.1", t + 10);
    assert_int_equal(auth_limit_wait("addr:10.0.0.1", t + 10), AUTH_FAIL_WINDOW_S - 10); /* from the first */
    assert_int_equal(auth_limit_wait("addr:10.0.0.1", t + 100), AUTH_FAIL_WINDOW_S - 100);
    assert_int_equal(auth_limit_wait("addr:10.0.0.2", t + 100), 0); /* other keys unaffected */
    assert_int_equal(auth_limit_wait("addr:10.0.0.1", t + AUTH_FAIL_WINDOW_S), 0);
    /* a failure after the window starts a new one */
    auth_limit_fail("addr:10.0.0.1", t + AUTH_FAIL_WINDOW_S + 1);
    assert_int_equal(auth_limit_wait("addr:10.0.0.1", t + AUTH_FAIL_WINDOW_S + 1), 0);
    for (int i = 0; i < AUTH_FAIL_MAX; i++)
        auth_limit_fail("user:x", t);
    assert_true(auth_limit_wait("user:x", t) > 0);
    auth_limit_reset("user:x");
    assert_int_equal(auth_limit_wait("user:x", t), 0);
    auth_limit_free();
}

int main(void)
{
    if (auth_init())
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_password_hash_verifies_only_the_password),
        cmocka_unit_test(test_secrets_are_random_and_digested),
        cmocka_unit_test(test_limiter_blocks_after_max_failures_for_the_window),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
