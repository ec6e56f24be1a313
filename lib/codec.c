/* Counter formats (Curator's 8- and 4-byte big-endian longs/ints, kazoo's
 * decimal text) and the update records the exactly-once machinery stores. */
#include "internal.h"
#include "codec.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

int zkc__value_decode(int fmt, const char *data, int len, int64_t initial, int64_t *out, const char **why)
{
    const unsigned char *d = (const unsigned char *)data;
    if (len <= 0 || !data) {
        /* Curator and kazoo both read an empty node as the initial value. */
        *out = initial;
        return 0;
    }
    switch (fmt) {
    case ZKC_FMT_INT64: {
        if (len != 8) {
            *why = "expected 8 bytes (big-endian int64)";
            return ZKC_EBADDATA;
        }
        uint64_t v = 0;
        for (int i = 0; i < 8; i++)
            v = (v << 8) | d[i];
        *out = (int64_t)v;
        return 0;
    }
    case ZKC_FMT_INT32: {
        if (len != 4) {
            *why = "expected 4 bytes (big-endian int32)";
            return ZKC_EBADDATA;
        }
        uint32_t v = ((uint32_t)d[0] << 24) | ((uint32_t)d[1] << 16) | ((uint32_t)d[2] << 8) | d[3];
        *out = (int32_t)v;
        return 0;
    }
    case ZKC_FMT_DECIMAL: {
        int i = 0, neg = 0;
        if (len > 20) {
            *why = "decimal text longer than any 64-bit integer";
            return ZKC_EBADDATA;
        }
        if (d[0] == '-' || d[0] == '+') {
            neg = d[0] == '-';
            i = 1;
        }
        if (i >= len) {
            *why = "decimal text has a sign but no digits";
            return ZKC_EBADDATA;
        }
        uint64_t v = 0;
        for (; i < len; i++) {
            if (d[i] == '.') {
                *why = "decimal text is not an integer (a kazoo float counter?)";
                return ZKC_EBADDATA;
            }
            if (d[i] < '0' || d[i] > '9') {
                *why = "decimal text contains a non-digit";
                return ZKC_EBADDATA;
            }
            uint64_t nv = v * 10 + (uint64_t)(d[i] - '0');
            if (nv / 10 != v || nv > (uint64_t)INT64_MAX + (uint64_t)neg) {
                *why = "decimal value does not fit 64 bits";
                return ZKC_EBADDATA;
            }
            v = nv;
        }
        *out = neg ? (int64_t)(0 - v) : (int64_t)v;
        return 0;
    }
    default:
        *why = "unknown format";
        return ZKC_EBADDATA;
    }
}

int zkc__value_encode(int fmt, int64_t v, char *buf)
{
    switch (fmt) {
    case ZKC_FMT_INT64:
        for (int i = 0; i < 8; i++)
            buf[i] = (char)(((uint64_t)v >> (56 - 8 * i)) & 0xff);
        return 8;
    case ZKC_FMT_INT32:
        if (v < INT32_MIN || v > INT32_MAX)
            return ZKC_EOVERFLOW;
        for (int i = 0; i < 4; i++)
            buf[i] = (char)(((uint32_t)(int32_t)v >> (24 - 8 * i)) & 0xff);
        return 4;
    default:
        return snprintf(buf, 24, "%" PRId64, v);
    }
}

int zkc__version_usable(int32_t version)
{
    return version != -1;
}

int zkc__record_encode(const zkc__record *r, char *buf, size_t len)
{
    size_t off = 0;
    int w = snprintf(buf, len, "zkc1 %s %d\n", r->id, r->n);
    if (w < 0 || (size_t)w >= len)
        return -1;
    off = (size_t)w;
    for (int i = 0; i < r->n; i++) {
        w = snprintf(buf + off, len - off, "%" PRId64 " %" PRId64 "\n", r->before[i], r->after[i]);
        if (w < 0 || (size_t)w >= len - off)
            return -1;
        off += (size_t)w;
    }
    return (int)off;
}

/* Parses with explicit bounds: node data is not NUL-terminated and may come
 * from anyone with write access. */
static int next_token(const char *d, int len, int *pos, char *out, size_t outlen)
{
    int p = *pos;
    while (p < len && (d[p] == ' ' || d[p] == '\n'))
        p++;
    size_t n = 0;
    while (p < len && d[p] != ' ' && d[p] != '\n') {
        if (n + 1 >= outlen)
            return -1;
        out[n++] = d[p++];
    }
    out[n] = 0;
    *pos = p;
    return n > 0 ? 0 : -1;
}

static int parse_i64(const char *s, int64_t *v)
{
    const char *why;
    return zkc__value_decode(ZKC_FMT_DECIMAL, s, (int)strlen(s), 0, v, &why);
}

int zkc__record_decode(const char *data, int len, zkc__record *r)
{
    char tok[128];
    int pos = 0;
    if (!data || len <= 0 || len > 64 * 1024)
        return ZKC_EBADDATA;
    if (next_token(data, len, &pos, tok, sizeof tok) || strcmp(tok, "zkc1") != 0)
        return ZKC_EBADDATA;
    if (next_token(data, len, &pos, r->id, sizeof r->id))
        return ZKC_EBADDATA;
    int64_t n;
    if (next_token(data, len, &pos, tok, sizeof tok) || parse_i64(tok, &n) || n < 0 || n > ZKC__REC_MAX_ENTRIES)
        return ZKC_EBADDATA;
    r->n = (int)n;
    for (int i = 0; i < r->n; i++) {
        if (next_token(data, len, &pos, tok, sizeof tok) || parse_i64(tok, &r->before[i]))
            return ZKC_EBADDATA;
        if (next_token(data, len, &pos, tok, sizeof tok) || parse_i64(tok, &r->after[i]))
            return ZKC_EBADDATA;
    }
    return 0;
}
