/* The queued counter mode's records (lib/counter_queue_codec.h): pure
 * functions, no server, so they can be fuzzed (tests/fuzz/fuzz_cqueue.c)
 * with this file alone. */
#include "counter_queue_codec.h"

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

int zkc__cq_decode_batch(const char *data, int len, const char *path, zkc__cq_add *out)
{
    if (!data || len <= 6 || strncmp(data, "zkcq1 ", 6) != 0)
        return -1;
    const char *p = data + 6;
    const char *nl = memchr(p, '\n', (size_t)(data + len - p));
    if (!nl || (size_t)(nl - p) != strlen(path) || strncmp(p, path, (size_t)(nl - p)) != 0)
        return -1;
    p = nl + 1;
    char *end;
    long n = strtol(p, &end, 10);
    if (end == p || *end != '\n' || n < 1 || n > ZKC__CQ_ADDS_MAX)
        return -1;
    p = end + 1;
    for (long i = 0; i < n; i++) {
        long long d, fl, ce;
        int flags, used = 0;
        if (sscanf(p, "%lld %d %lld %lld\n%n", &d, &flags, &fl, &ce, &used) != 4 || used == 0)
            return -1;
        out[i].delta = d;
        out[i].bounds.has_floor = flags & 1;
        out[i].bounds.has_ceiling = (flags & 2) != 0;
        out[i].bounds.floor = fl;
        out[i].bounds.ceiling = ce;
        p += used;
    }
    return (int)n;
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
    char *end;
    long got = strtol(data + 6, &end, 10);
    if (got != n || *end != '\n')
        return -1;
    const char *p = end + 1;
    for (int i = 0; i < n; i++) {
        long long bf, af;
        int v, used = 0;
        if (sscanf(p, "%d %lld %lld\n%n", &v, &bf, &af, &used) != 3 || used == 0)
            return -1;
        verdict[i] = v;
        res[i].before = bf;
        res[i].after = af;
        res[i].replayed = 0;
        p += used;
    }
    return 0;
}
