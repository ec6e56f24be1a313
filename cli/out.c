/* Output helpers: JSON strings, times (ISO 8601, human ages) and the names
 * the tool prints for library enums. */
#include "cli.h"

#include <time.h>

void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        default:
            if (*p < 0x20 || *p == 0x7f)
                fprintf(f, "\\u%04x", *p);
            else
                fputc(*p, f);
        }
    }
    fputc('"', f);
}

int64_t now_ms(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void iso8601(int64_t ms, char *buf, size_t len)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (!gmtime_r(&t, &tm)) {
        snprintf(buf, len, "?");
        return;
    }
    char tmp[32];
    strftime(tmp, sizeof tmp, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, len, "%s.%03dZ", tmp, (int)(ms % 1000));
}

void human_age(int64_t ms, char *buf, size_t len)
{
    if (ms < 0)
        ms = 0;
    int64_t s = ms / 1000;
    if (s < 60)
        snprintf(buf, len, "%" PRId64 ".%01ds", s, (int)(ms % 1000) / 100);
    else if (s < 3600)
        snprintf(buf, len, "%" PRId64 "m%02ds", s / 60, (int)(s % 60));
    else if (s < 86400)
        snprintf(buf, len, "%" PRId64 "h%02dm", s / 3600, (int)(s / 60 % 60));
    else
        snprintf(buf, len, "%" PRId64 "d%02dh", s / 86400, (int)(s / 3600 % 24));
}

const char *kind_name(int kind)
{
    switch (kind) {
    case ZKC_LOCK_MUTEX: return "mutex";
    case ZKC_LOCK_READ: return "read";
    case ZKC_LOCK_WRITE: return "write";
    case ZKC_LOCK_SEMAPHORE: return "semaphore";
    default: return "unknown";
    }
}
