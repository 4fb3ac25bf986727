/* log.h — structured one-line logs: `<ISO time> level=<lvl> <key=value …>` on
 * stderr, one write() per line so threads never interleave. Callers pass the
 * key=value body (logfmt); values with spaces are quoted by the caller. */
#ifndef ST_LOG_H
#define ST_LOG_H

enum st_log_level { ST_LOG_DEBUG, ST_LOG_INFO, ST_LOG_WARN, ST_LOG_ERROR };

/** Set the lowest level printed (default info). */
void st_log_set_level(enum st_log_level level);
/** Parse "debug|info|warn|error"; returns 0 or ST_ECONFIG. */
int st_log_parse_level(const char *s, enum st_log_level *out);
void st_log(enum st_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define ST_LOG_TEXT_MAX 64

/** A device-supplied string made safe for a log line: printable ASCII only (anything else,
 *  `"` and `\` become `?`), cut at ST_LOG_TEXT_MAX - 1; "-" when empty. Returns out or "-". */
const char *st_log_text(const char *s, char out[ST_LOG_TEXT_MAX]);

/** Hex of up to `max` bytes of b into out (NUL-terminated, out has 2*max+1 bytes). */
void st_log_hex(const void *b, unsigned long len, unsigned long max, char *out);

#endif
