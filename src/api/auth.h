/* auth.h — credentials: argon2id password hashes, random bearer secrets (API
 * tokens, session ids) stored only as SHA-256 digests, and the failed-login
 * limiter. libsodium does the cryptography; every function is thread-safe
 * (password hashing is slow on purpose: call it from the thread pool). */
#ifndef ST_AUTH_H
#define ST_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AUTH_HASH_MAX 128     /* crypto_pwhash_STRBYTES */
#define AUTH_SECRET_LEN 46    /* "st_" + 43 base64url characters (32 random bytes) */
#define AUTH_DIGEST_LEN 32    /* SHA-256 */
#define AUTH_PREFIX_LEN 8     /* shown in token lists: "st_AbCdE" */

/** Initialise libsodium once (any thread, idempotent). 0 or ST_EIO. */
int auth_init(void);

/** argon2id hash of password into out[AUTH_HASH_MAX]. 0 or ST_ENOMEM. */
int auth_password_hash(const char *password, char out[AUTH_HASH_MAX]);
/** True when password matches the stored hash. */
bool auth_password_verify(const char *stored_hash, const char *password);

/** A fresh random secret ("st_…", NUL-terminated) and its digest. */
void auth_secret_new(char secret[AUTH_SECRET_LEN + 1], uint8_t digest[AUTH_DIGEST_LEN]);
/** Digest of a secret presented by a client. */
void auth_secret_digest(const char *secret, size_t len, uint8_t digest[AUTH_DIGEST_LEN]);

/* Failed logins: at most AUTH_FAIL_MAX per key (an address, a user name) in
 * AUTH_FAIL_WINDOW_S; beyond that, attempts are refused until the window passes. */
#define AUTH_FAIL_MAX 5
#define AUTH_FAIL_WINDOW_S 900

/** Seconds the caller must wait before trying key again (0 = may try). */
int64_t auth_limit_wait(const char *key, int64_t now);
/** Count a failed attempt for key. */
void auth_limit_fail(const char *key, int64_t now);
/** Forget key's failures (a user name after a successful login). */
void auth_limit_reset(const char *key);
/** Free the limiter's memory (at exit). */
void auth_limit_free(void);

#endif
