/* auth.c — see auth.h. */
#include "auth.h"

#include <pthread.h>
#include <sodium.h>
#include <string.h>

#include "../core/err.h"
#include "../core/log.h"
#include "../core/strmap.h"

/* Beyond this many tracked keys the limiter starts afresh: a flood of distinct
 * names or addresses must not grow memory without bound. */
#define AUTH_LIMIT_KEYS_MAX 100000

static pthread_once_t sodium_once = PTHREAD_ONCE_INIT;
static int sodium_rc;

static void sodium_start(void)
{
    sodium_rc = sodium_init() < 0 ? ST_EIO : 0;
}

int auth_init(void)
{
    pthread_once(&sodium_once, sodium_start);
    if (sodium_rc)
        st_log(ST_LOG_ERROR, "event=crypto_init_failed what=libsodium");
    return sodium_rc;
}

int auth_password_hash(const char *password, char out[AUTH_HASH_MAX])
{
    _Static_assert(AUTH_HASH_MAX == crypto_pwhash_STRBYTES, "hash buffer size");
    if (crypto_pwhash_str_alg(out, password, strlen(password), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                              crypto_pwhash_MEMLIMIT_INTERACTIVE, crypto_pwhash_ALG_ARGON2ID13))
        return ST_ENOMEM;
    return 0;
}

bool auth_password_verify(const char *stored_hash, const char *password)
{
    return crypto_pwhash_str_verify(stored_hash, password, strlen(password)) == 0;
}

void auth_secret_digest(const char *secret, size_t len, uint8_t digest[AUTH_DIGEST_LEN])
{
    crypto_hash_sha256(digest, (const unsigned char *)secret, len);
}

void auth_secret_new(char secret[AUTH_SECRET_LEN + 1], uint8_t digest[AUTH_DIGEST_LEN])
{
    unsigned char bytes[32];
    randombytes_buf(bytes, sizeof bytes);
    memcpy(secret, "st_", 3);
    sodium_bin2base64(secret + 3, AUTH_SECRET_LEN + 1 - 3, bytes, sizeof bytes,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(bytes, sizeof bytes);
    auth_secret_digest(secret, AUTH_SECRET_LEN, digest);
}

/* ---- failed-login limiter: key → (window start << 8 | failures) ---------- */

static pthread_mutex_t limit_lock = PTHREAD_MUTEX_INITIALIZER;
static struct strmap limits;
static bool limits_ready;

static struct strmap *limit_map(void)
{
    if (!limits_ready) {
        strmap_init(&limits);
        limits_ready = true;
    }
    return &limits;
}

int64_t auth_limit_wait(const char *key, int64_t now)
{
    pthread_mutex_lock(&limit_lock);
    int64_t *v = strmap_get(limit_map(), key);
    int64_t wait = 0;
    if (v && (*v & 0xff) >= AUTH_FAIL_MAX) {
        int64_t end = (*v >> 8) + AUTH_FAIL_WINDOW_S;
        wait = end > now ? end - now : 0;
    }
    pthread_mutex_unlock(&limit_lock);
    return wait;
}

void auth_limit_fail(const char *key, int64_t now)
{
    pthread_mutex_lock(&limit_lock);
    struct strmap *m = limit_map();
    if (m->count >= AUTH_LIMIT_KEYS_MAX && !strmap_get(m, key)) {
        st_log(ST_LOG_WARN, "event=login_limiter_reset keys=%zu", m->count);
        strmap_deinit(m);
        strmap_init(m);
    }
    int64_t *v = strmap_put(m, key, now << 8);
    if (now - (*v >> 8) >= AUTH_FAIL_WINDOW_S)
        *v = now << 8;
    if ((*v & 0xff) < 0xff)
        (*v)++;
    pthread_mutex_unlock(&limit_lock);
}

void auth_limit_reset(const char *key)
{
    pthread_mutex_lock(&limit_lock);
    strmap_del(limit_map(), key);
    pthread_mutex_unlock(&limit_lock);
}

void auth_limit_free(void)
{
    pthread_mutex_lock(&limit_lock);
    if (limits_ready)
        strmap_deinit(&limits);
    limits_ready = false;
    pthread_mutex_unlock(&limit_lock);
}
