/* The queued counter mode's records (lib/counter_queue_codec.h): pure
 * functions, no server, so they can be fuzzed (tests/fuzz/fuzz_cqueue.c)
 * with this file alone. */
#include "counter_queue_codec.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *zkc__cq_encode_batch(const char *path, int n, const zkc__cq_add *adds, int *len)
{
    size_t cap = strlen(path) + 32 + (size_t)n * 80;
    char *s = malloc(cap);
    if (!s)
        return NULL;
    int k = snprintf(s, cap, "zkcq1 %s\n%d\n", path, n);
    for (int i = 0; i < n; i++) {
        const zkc_bounds *bd = &adds[i].bounds;
        int flags = (bd->has_floor ? 1 : 0) | (bd->has_ceiling ? 2 : 0);
        k += snprintf(s + k, cap - (size_t)k, "%" PRId64 " %d %" PRId64 " %" PRId64 "\n", adds[i].delta, flags,
                      bd->floor, bd->ceiling);
    }
    *len = k;
    return s;
}

/* One decimal number at p (an optional '-', then digits: no sign '+', no
 * blank), ending in `term` before `end`: the byte after it, or NULL. A number
 * cut short by the end of the data has no `term` after it, so a truncated
 * record never reads as a smaller number. The data ends in a NUL (the header),
 * so strtoll stops at `end` at the latest. */
static const char *num(const char *p, const char *end, char term, long long *v)
{
    if (p >= end || !(*p == '-' || (*p >= '0' && *p <= '9')))
        return NULL;
    char *q;
    errno = 0;
    *v = strtoll(p, &q, 10);
    if (errno || q == p || q >= end || *q != term)
        return NULL;
    return q + 1;
}

/* One add "<delta>S<flags>S<floor>S<ceiling>E" at p (S = sep, E = end_mark),
 * into *out: the byte after it, or NULL. */
static const char *one_add(const char *p, const char *end, char sep, char end_mark, zkc__cq_add *out)
{
    long long d, flags, fl, ce;
    if (!(p = num(p, end, sep, &d)) || !(p = num(p, end, sep, &flags)) || flags < 0 || flags > 3 ||
        !(p = num(p, end, sep, &fl)) || !(p = num(p, end, end_mark, &ce)))
        return NULL;
    out->delta = d;
    out->bounds.has_floor = (flags & 1) != 0;
    out->bounds.has_ceiling = (flags & 2) != 0;
    out->bounds.floor = fl;
    out->bounds.ceiling = ce;
    return p;
}

int zkc__cq_decode_batch(const char *data, int len, const char *path, zkc__cq_add *out)
{
    if (!data || len <= 6 || strncmp(data, "zkcq1 ", 6) != 0)
        return -1;
    const char *end = data + len;
    const char *p = data + 6;
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    if (!nl || (size_t)(nl - p) != strlen(path) || memcmp(p, path, (size_t)(nl - p)) != 0)
        return -1;
    long long n;
    if (!(p = num(nl + 1, end, '\n', &n)) || n < 1 || n > ZKC__CQ_ADDS_MAX)
        return -1;
    for (long long i = 0; i < n; i++)
        if (!(p = one_add(p, end, ' ', '\n', &out[i])))
            return -1;
    return p == end ? (int)n : -1; /* nothing after the last add */
}

char *zkc__cq_encode_result(int n, const int *verdict, const zkc_counter_result *res, int *len)
{
    size_t cap = 32 + (size_t)n * 72;
    char *s = malloc(cap);
    if (!s)
        return NULL;
    int k = snprintf(s, cap, "zkcr1 %d\n", n);
    for (int i = 0; i < n; i++)
        k += snprintf(s + k, cap - (size_t)k, "%d %" PRId64 " %" PRId64 "\n", verdict[i], res[i].before,
                      res[i].after);
    *len = k;
    return s;
}

int zkc__cq_decode_result(const char *data, int len, int n, int *verdict, zkc_counter_result *res)
{
    if (!data || len <= 6 || strncmp(data, "zkcr1 ", 6) != 0)
        return -1;
    const char *end = data + len;
    long long got;
    const char *p = num(data + 6, end, '\n', &got);
    if (!p || got != n)
        return -1;
    for (int i = 0; i < n; i++) {
        long long v, bf, af;
        if (!(p = num(p, end, ' ', &v)) || !(p = num(p, end, ' ', &bf)) || !(p = num(p, end, '\n', &af)))
            return -1;
        /* Only what an applier writes: the status reaches the caller as its
         * add's own, and a refusal wrote nothing. */
        if (v != 0 && ((v != ZKC_EBOUND && v != ZKC_EOVERFLOW) || bf != af))
            return -1;
        verdict[i] = (int)v;
        res[i].before = bf;
        res[i].after = af;
        res[i].replayed = 0;
    }
    return p == end ? 0 : -1;
}

int zkc__cq_encode_inline(int n, const zkc__cq_add *adds, char buf[ZKC__CQ_INLINE_MAX + 1])
{
    size_t k = 0;
    for (int i = 0; i < n; i++) {
        const zkc_bounds *bd = &adds[i].bounds;
        int flags = (bd->has_floor ? 1 : 0) | (bd->has_ceiling ? 2 : 0);
        int w = snprintf(buf + k, ZKC__CQ_INLINE_MAX + 1 - k, "%" PRId64 ".%d.%" PRId64 ".%" PRId64 "_", adds[i].delta,
                         flags, bd->floor, bd->ceiling);
        if (w < 0 || (size_t)w >= ZKC__CQ_INLINE_MAX + 1 - k)
            return -1;
        k += (size_t)w;
    }
    return n > 0 ? (int)k : -1;
}

int zkc__cq_decode_inline(const char *s, size_t len, zkc__cq_add *out)
{
    char buf[ZKC__CQ_INLINE_MAX + 1]; /* NUL-terminated, for num() */
    if (!s || len == 0 || len > ZKC__CQ_INLINE_MAX)
        return -1;
    memcpy(buf, s, len);
    buf[len] = 0;
    const char *p = buf, *end = buf + len;
    int n = 0;
    while (p < end)
        if (n == ZKC__CQ_ADDS_MAX || !(p = one_add(p, end, '.', '_', &out[n++])))
            return -1;
    return n;
}
