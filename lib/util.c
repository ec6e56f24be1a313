/* Small helpers every layer uses: allocation, randomness, uuids, the log. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

char *zkc__strdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

void *zkc__calloc(size_t n, size_t sz)
{
    return calloc(n, sz);
}

uint64_t zkc__random64(void)
{
    uint64_t v;
    if (getrandom(&v, sizeof v, 0) == (ssize_t)sizeof v)
        return v;
    /* getrandom cannot fail for 8 bytes on Linux >= 3.17 once the pool is up;
     * fall back to something that still differs per call and process. */
    static __thread uint64_t x;
    x += 0x9e3779b97f4a7c15ULL ^ (uint64_t)getpid() ^ (uint64_t)zkc__now_ms();
    uint64_t z = x;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void zkc__uuid(char out[37])
{
    unsigned char b[16];
    uint64_t r1 = zkc__random64(), r2 = zkc__random64();
    memcpy(b, &r1, 8);
    memcpy(b + 8, &r2, 8);
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2],
             b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

void zkc__log(zkc_client *c, zkc_log_level lvl, const char *fmt, ...)
{
    if (!c->opt.log_fn || lvl > c->opt.log_level)
        return;
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    c->opt.log_fn(lvl, buf, c->opt.log_ud);
}

uint64_t zkc__hash64(const void *p, size_t len)
{
    const unsigned char *b = p;
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < len; i++)
        h = (h ^ b[i]) * 1099511628211ull;
    return h;
}
