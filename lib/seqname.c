/* Names of queue members: which sequence number a child carries, what kind of
 * contender it is, and their order. Pure functions: unit-tested and fuzzed. */
#include "internal.h"
#include "seqname.h"

#include <stdlib.h>
#include <string.h>

/* Tags written by zkcoord, Curator and kazoo right before ZooKeeper's suffix. */
static const struct {
    const char *tag;
    int kind;
    int style;
} tags[] = {
    {"-lock-", ZKC_LOCK_MUTEX, ZKC__STYLE_CURATOR},
    {"__WRIT__", ZKC_LOCK_WRITE, ZKC__STYLE_CURATOR},
    {"__READ__", ZKC_LOCK_READ, ZKC__STYLE_CURATOR},
    {"-lease-", ZKC_LOCK_SEMAPHORE, ZKC__STYLE_ZKCOORD},
    {"__lock__", ZKC_LOCK_MUTEX, ZKC__STYLE_KAZOO},
    {"__rlock__", ZKC_LOCK_READ, ZKC__STYLE_KAZOO},
};

static int all_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

/* ZooKeeper appends printf("%010d", cversion): ten digits, or for a wrapped
 * (negative) counter a '-' and nine or ten digits. */
static int parse_suffix(const char *s, int32_t *out)
{
    size_t n = strlen(s);
    int neg = 0;
    if (n == 10 && all_digits(s, 10)) {
        /* positive */
    } else if ((n == 10 || n == 11) && s[0] == '-' && all_digits(s + 1, n - 1)) {
        neg = 1;
        s++;
        n--;
    } else {
        return 0;
    }
    int64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = v * 10 + (s[i] - '0');
    if (neg)
        v = -v;
    if (v > INT32_MAX || v < INT32_MIN)
        return 0;
    *out = (int32_t)v;
    return 1;
}

int zkc__seq_parse(const char *name, int32_t *seq, int *kind, int *style)
{
    if (!name)
        return 0;
    for (size_t i = 0; i < sizeof tags / sizeof tags[0]; i++) {
        const char *p = NULL, *q = name;
        size_t tl = strlen(tags[i].tag);
        while ((q = strstr(q, tags[i].tag)) != NULL) {
            p = q;
            q++;
        }
        if (p && parse_suffix(p + tl, seq)) {
            if (kind)
                *kind = tags[i].kind;
            if (style)
                *style = tags[i].style;
            return 1;
        }
    }
    /* Unknown naming: ZooKeeper's suffix is still the trailing digits. */
    size_t n = strlen(name), d = 0;
    while (d < n && name[n - 1 - d] >= '0' && name[n - 1 - d] <= '9')
        d++;
    if (d < 9)
        return 0;
    const char *digits = name + n - d;
    if (d >= 10)
        digits = name + n - 10;
    size_t start = (size_t)(digits - name);
    int neg = start > 0 && name[start - 1] == '-' && (d == 9 || (start > 1 && name[start - 2] == '-'));
    if (!neg && d < 10)
        return 0;
    char buf[12];
    if (neg) {
        buf[0] = '-';
        memcpy(buf + 1, name + start, n - start + 1);
    } else {
        memcpy(buf, digits, 11);
    }
    if (!parse_suffix(buf, seq))
        return 0;
    if (kind)
        *kind = -1;
    if (style)
        *style = ZKC__STYLE_OTHER;
    return 1;
}

int zkc__seq_cmp(int32_t a, int32_t b)
{
    /* RFC 1982 serial-number order on 32 bits: correct across the wrap as long
     * as live members span less than 2^31 sequence numbers. */
    int32_t d = (int32_t)((uint32_t)a - (uint32_t)b);
    return d < 0 ? -1 : d > 0 ? 1 : 0;
}

static int member_cmp(const void *a, const void *b)
{
    const zkc__member *x = a, *y = b;
    int c = zkc__seq_cmp(x->seq, y->seq);
    return c ? c : strcmp(x->name, y->name);
}

int zkc__members_parse(char **names, int n, zkc__member *out, int *junk, int *styles)
{
    int m = 0, bad = 0, st = 0;
    for (int i = 0; i < n; i++) {
        int32_t seq;
        int kind, style;
        if (!zkc__seq_parse(names[i], &seq, &kind, &style)) {
            bad++;
            continue;
        }
        out[m].name = names[i];
        out[m].seq = seq;
        out[m].kind = kind;
        st |= style;
        m++;
    }
    qsort(out, (size_t)m, sizeof *out, member_cmp);
    if (junk)
        *junk = bad;
    if (styles)
        *styles = st;
    return m;
}

int zkc__member_find(const zkc__member *m, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(m[i].name, name) == 0)
            return i;
    return -1;
}
