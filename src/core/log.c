#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "hex.h"
#include "timeutil.h"

static enum st_log_level min_level = ST_LOG_INFO;

void st_log_set_level(enum st_log_level level)
{
    min_level = level;
}

int st_log_parse_level(const char *s, enum st_log_level *out)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    for (int i = 0; i < 4; i++)
        if (strcmp(s, names[i]) == 0) {
            *out = (enum st_log_level)i;
            return 0;
        }
    return ST_ECONFIG;
}

void st_log(enum st_log_level level, const char *fmt, ...)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    if (level < min_level)
        return;
    char line[2048];
    int64_t ms = st_now_ms();
    char iso[ST_ISO_LEN];
    st_time_iso(ms / 1000, iso);
    /* "…:SSZ" → "…:SS.mmmZ" */
    int n = snprintf(line, sizeof line, "%.19s.%03dZ level=%s ", iso, (int)(ms % 1000),
                     names[level]);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof line - 2)
        len = sizeof line - 2;
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w; /* nowhere left to report a failing stderr */
}

void st_log_hex(const void *b, unsigned long len, unsigned long max, char *out)
{
    st_hex_encode(b, len < max ? len : max, out, 2 * (size_t)max + 1);
}

const char *st_log_text(const char *s, char out[ST_LOG_TEXT_MAX])
{
    size_t i = 0;
    for (; s[i] && i < ST_LOG_TEXT_MAX - 1; i++)
        out[i] = s[i] > 0x20 && s[i] < 0x7f && s[i] != '"' && s[i] != '\\' ? s[i] : '?';
    out[i] = '\0';
    return i ? out : "-";
}
