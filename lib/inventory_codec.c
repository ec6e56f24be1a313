/* The inventory records' text formats (lib/inventory_codec.h): decode and
 * encode the SKU record, the request record, the queue entry and queue node
 * names. Pure functions, no server: fuzzed (tests/fuzz/fuzz_reserve.c) and
 * unit-tested (tests/test_reserve.c). Decoders trust nothing in the data and
 * accept only the canonical encoding. */
#include "internal.h"
#include "inventory_codec.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ================================================================ records (pure) */

#define RES_PARSE_BUF 16384

static const char *const state_names[] = {"PENDING",      "RESERVED",  "SOLD",    "RETURNED",
                                          "OUT_OF_STOCK", "TIMED_OUT", "EXPIRED", "ABANDONED"};

const char *zkc__res_state_name(int state)
{
    if (state < 0 || state >= (int)(sizeof state_names / sizeof state_names[0]))
        return "?";
    return state_names[state];
}

const char *zkc_inventory_state_name(zkc_inventory_state state)
{
    return zkc__res_state_name((int)state);
}

typedef struct cur {
    const char *p, *e;
    const char *why;
} cur;

static int bad(cur *c, const char *why)
{
    if (!c->why)
        c->why = why;
    return -1;
}

static int lit(cur *c, const char *s, const char *why)
{
    size_t n = strlen(s);
    if ((size_t)(c->e - c->p) < n || memcmp(c->p, s, n) != 0)
        return bad(c, why);
    c->p += n;
    return 0;
}

/* Canonical non-negative decimal: "0" or no leading zero, <= max. */
static int dec(cur *c, int64_t min, int64_t max, int64_t *out, const char *why)
{
    const char *s = c->p;
    int64_t v = 0;
    int n = 0;
    while (s < c->e && *s >= '0' && *s <= '9') {
        if (n == 19)
            return bad(c, why);
        if (n > 0 && v == 0)
            return bad(c, why); /* leading zero */
        int d = *s - '0';
        if (v > (INT64_MAX - d) / 10)
            return bad(c, why);
        v = v * 10 + d;
        n++;
        s++;
    }
    if (n == 0 || v < min || v > max)
        return bad(c, why);
    c->p = s;
    *out = v;
    return 0;
}

static int is_lhex(char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f');
}

static int hexn(cur *c, int n, char *out, const char *why)
{
    if (c->e - c->p < n)
        return bad(c, why);
    for (int i = 0; i < n; i++)
        if (!is_lhex(c->p[i]))
            return bad(c, why);
    memcpy(out, c->p, (size_t)n);
    out[n] = 0;
    c->p += n;
    return 0;
}

/* A node name as zkc__name_check accepts it: 1..200 bytes, no '/', no control
 * characters, not "." or "..". */
static int name_ok(const char *s, size_t n)
{
    if (n == 0 || n > ZKC__RES_NAME_MAX)
        return 0;
    if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x20 || ch == 0x7f || ch == '/')
            return 0;
    }
    return 1;
}

static int name_to(cur *c, char stop, char *out, const char *why)
{
    const char *s = c->p;
    while (s < c->e && *s != stop && *s != '\n')
        s++;
    size_t n = (size_t)(s - c->p);
    if (!name_ok(c->p, n))
        return bad(c, why);
    memcpy(out, c->p, n);
    out[n] = 0;
    c->p = s;
    return 0;
}

static int at_end(cur *c, const char *why)
{
    return c->p == c->e ? 0 : bad(c, why);
}

static int sku_valid(const zkc__sku_rec *r, const char **why)
{
    int64_t s;
    if (r->available < 0 || r->reserved < 0 || r->sold < 0 || r->total < 0) {
        *why = "a unit count is negative";
        return 0;
    }
    if (__builtin_add_overflow(r->available, r->reserved, &s) || __builtin_add_overflow(s, r->sold, &s) ||
        s != r->total) {
        *why = "available + reserved + sold != total (units were written around the queue)";
        return 0;
    }
    return 1;
}

int zkc__sku_decode(const char *data, int len, zkc__sku_rec *out, const char **why)
{
    cur c = {data, data + (len > 0 ? len : 0), NULL};
    zkc__sku_rec r;
    const char *w = "not a SKU record (\"zkcs1 <available> <reserved> <sold> <total>\")";
    if (!data || len <= 0) {
        c.why = "empty data where a SKU record was expected";
    } else if (len >= 5 && memcmp(data, "zkcs", 4) == 0 && data[4] != '1') {
        c.why = "SKU record of an unknown format version (written by a newer release?)";
    } else if (lit(&c, "zkcs1 ", w) == 0 && dec(&c, 0, INT64_MAX, &r.available, w) == 0 && lit(&c, " ", w) == 0 &&
               dec(&c, 0, INT64_MAX, &r.reserved, w) == 0 && lit(&c, " ", w) == 0 &&
               dec(&c, 0, INT64_MAX, &r.sold, w) == 0 && lit(&c, " ", w) == 0 &&
               dec(&c, 0, INT64_MAX, &r.total, w) == 0 && at_end(&c, w) == 0) {
        const char *v = NULL;
        if (sku_valid(&r, &v)) {
            if (out)
                *out = r;
            return 0;
        }
        c.why = v;
    }
    if (why)
        *why = c.why ? c.why : w;
    return ZKC_EBADDATA;
}

int zkc__sku_encode(const zkc__sku_rec *r, char *buf, size_t len)
{
    const char *why;
    if (!sku_valid(r, &why))
        return -1;
    int n = snprintf(buf, len, "zkcs1 %" PRId64 " %" PRId64 " %" PRId64 " %" PRId64, r->available, r->reserved,
                     r->sold, r->total);
    return n < 0 || (size_t)n >= len ? -1 : n;
}

static int state_word(cur *c, int *state)
{
    for (int i = 0; i < ZKC_INVENTORY_ABANDONED; i++) {
        size_t n = strlen(state_names[i]);
        if ((size_t)(c->e - c->p) > n && memcmp(c->p, state_names[i], n) == 0 && c->p[n] == ' ') {
            c->p += n;
            *state = i;
            return 0;
        }
    }
    return bad(c, "unknown request state");
}

static uint64_t owner_parse(const char *hex)
{
    uint64_t v = 0;
    for (int i = 0; hex[i]; i++)
        v = (v << 4) | (uint64_t)(hex[i] <= '9' ? hex[i] - '0' : hex[i] - 'a' + 10);
    return v;
}

int zkc__resrec_decode(const char *data, int len, zkc__res_rec *out, const char **why)
{
    cur c = {data, data + (len > 0 ? len : 0), NULL};
    const char *w = "not a request record (\"zkcr1 <STATE> <hold_ms> <flags> <nonce> <owner> <n>\")";
    zkc__res_rec *r = out;
    int64_t v;
    char hex[17];
    if (!data || len <= 0) {
        c.why = "empty data where a request record was expected";
        goto fail;
    }
    if (len >= 5 && memcmp(data, "zkcr", 4) == 0 && data[4] != '1') {
        c.why = "request record of an unknown format version (written by a newer release?)";
        goto fail;
    }
    if (lit(&c, "zkcr1 ", w) || state_word(&c, &r->state) || lit(&c, " ", w) ||
        dec(&c, 1, ZKC__RES_HOLD_MAX, &r->hold_ms, "bad hold time") || lit(&c, " ", w) ||
        dec(&c, 0, ZKC__RES_F_WAIT, &v, "unknown flags") || lit(&c, " ", w))
        goto fail;
    r->flags = (int)v;
    if (hexn(&c, ZKC__RES_NONCE_LEN, r->nonce, "bad nonce") || lit(&c, " ", w) ||
        hexn(&c, 16, hex, "bad owner session") || lit(&c, " ", w) ||
        dec(&c, 1, ZKC__RES_MAX_LINES, &v, "bad line count") || lit(&c, "\n", w))
        goto fail;
    r->owner = owner_parse(hex);
    r->n = (int)v;
    for (int i = 0; i < r->n; i++) {
        if (dec(&c, 1, ZKC__RES_QTY_MAX, &r->line[i].qty, "bad quantity") || lit(&c, " ", w) ||
            name_to(&c, '\n', r->line[i].sku, "bad SKU name") || lit(&c, "\n", "line not terminated"))
            goto fail;
        for (int j = 0; j < i; j++)
            if (strcmp(r->line[j].sku, r->line[i].sku) == 0) {
                bad(&c, "a SKU appears twice");
                goto fail;
            }
    }
    if (at_end(&c, "trailing data after the last line"))
        goto fail;
    return 0;
fail:
    if (why)
        *why = c.why ? c.why : w;
    return ZKC_EBADDATA;
}

int zkc__resrec_encode(const zkc__res_rec *r, char *buf, size_t len)
{
    if (r->state < 0 || r->state >= ZKC_INVENTORY_ABANDONED || r->n < 1 || r->n > ZKC__RES_MAX_LINES ||
        r->hold_ms < 1 || r->hold_ms > ZKC__RES_HOLD_MAX || (r->flags & ~ZKC__RES_F_WAIT) ||
        strlen(r->nonce) != ZKC__RES_NONCE_LEN)
        return -1;
    for (int i = 0; i < ZKC__RES_NONCE_LEN; i++)
        if (!is_lhex(r->nonce[i]))
            return -1;
    int n = snprintf(buf, len, "zkcr1 %s %" PRId64 " %d %s %016" PRIx64 " %d\n", state_names[r->state], r->hold_ms,
                     r->flags, r->nonce, r->owner, r->n);
    if (n < 0 || (size_t)n >= len)
        return -1;
    size_t pos = (size_t)n;
    for (int i = 0; i < r->n; i++) {
        const zkc__res_line *l = &r->line[i];
        if (l->qty < 1 || l->qty > ZKC__RES_QTY_MAX || !name_ok(l->sku, strlen(l->sku)))
            return -1;
        for (int j = 0; j < i; j++)
            if (strcmp(r->line[j].sku, l->sku) == 0)
                return -1;
        n = snprintf(buf + pos, len - pos, "%" PRId64 " %s\n", l->qty, l->sku);
        if (n < 0 || (size_t)n >= len - pos)
            return -1;
        pos += (size_t)n;
    }
    return (int)pos;
}

int zkc__qent_decode(const char *data, int len, zkc__res_qent *out, const char **why)
{
    cur c = {data, data + (len > 0 ? len : 0), NULL};
    const char *w = "not a queue entry (\"zkcq1 <qty> <flags> <nlines> <hold_ms> <nonce> <id>\")";
    zkc__res_qent e;
    int64_t v;
    if (!data || len <= 0) {
        c.why = "empty data where a queue entry was expected";
        goto fail;
    }
    if (len >= 5 && memcmp(data, "zkcq", 4) == 0 && data[4] != '1') {
        c.why = "queue entry of an unknown format version (written by a newer release?)";
        goto fail;
    }
    if (lit(&c, "zkcq1 ", w) || dec(&c, 1, ZKC__RES_QTY_MAX, &e.qty, "bad quantity") || lit(&c, " ", w) ||
        dec(&c, 0, ZKC__RES_F_WAIT, &v, "unknown flags") || lit(&c, " ", w))
        goto fail;
    e.flags = (int)v;
    if (dec(&c, 1, ZKC__RES_MAX_LINES, &v, "bad line count") || lit(&c, " ", w))
        goto fail;
    e.nlines = (int)v;
    if (dec(&c, 1, ZKC__RES_HOLD_MAX, &e.hold_ms, "bad hold time") || lit(&c, " ", w) ||
        hexn(&c, ZKC__RES_NONCE_LEN, e.nonce, "bad nonce") || lit(&c, " ", w) ||
        name_to(&c, '\0', e.id, "bad request id") || at_end(&c, "bad request id"))
        goto fail;
    if (out)
        *out = e;
    return 0;
fail:
    if (why)
        *why = c.why ? c.why : w;
    return ZKC_EBADDATA;
}

int zkc__qent_encode(const zkc__res_qent *e, char *buf, size_t len)
{
    if (e->qty < 1 || e->qty > ZKC__RES_QTY_MAX || (e->flags & ~ZKC__RES_F_WAIT) || e->nlines < 1 ||
        e->nlines > ZKC__RES_MAX_LINES || e->hold_ms < 1 || e->hold_ms > ZKC__RES_HOLD_MAX ||
        strlen(e->nonce) != ZKC__RES_NONCE_LEN || !name_ok(e->id, strlen(e->id)))
        return -1;
    for (int i = 0; i < ZKC__RES_NONCE_LEN; i++)
        if (!is_lhex(e->nonce[i]))
            return -1;
    int n = snprintf(buf, len, "zkcq1 %" PRId64 " %d %d %" PRId64 " %s %s", e->qty, e->flags, e->nlines, e->hold_ms,
                     e->nonce, e->id);
    return n < 0 || (size_t)n >= len ? -1 : n;
}

int zkc__resname_parse(const char *name, char *nonce, int32_t *seq)
{
    /* The member core's name (member.c): "_c_" <tag of the attempt, here the
     * nonce> "-" <the recipe's tag> <ZooKeeper's suffix>. */
    static const size_t tl = sizeof ZKC__RES_NODE_TAG - 1;
    if (!name || strncmp(name, "_c_", 3) != 0)
        return 0;
    for (int i = 0; i < ZKC__RES_NONCE_LEN; i++)
        if (!is_lhex(name[3 + i]))
            return 0;
    const char *s = name + 3 + ZKC__RES_NONCE_LEN;
    if (*s != '-' || strncmp(s + 1, ZKC__RES_NODE_TAG, tl) != 0)
        return 0;
    s += 1 + tl;
    /* ZooKeeper's suffix: "%010d" of a signed 32-bit counter. */
    size_t n = strlen(s);
    int neg = s[0] == '-';
    if (!(n == 10 || (neg && n == 11)))
        return 0;
    int64_t v = 0;
    for (size_t i = neg ? 1 : 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        v = v * 10 + (s[i] - '0');
    }
    if (neg)
        v = -v;
    if (v > INT32_MAX || v < INT32_MIN || (neg && v == 0))
        return 0;
    if (nonce) {
        memcpy(nonce, name + 3, ZKC__RES_NONCE_LEN);
        nonce[ZKC__RES_NONCE_LEN] = 0;
    }
    if (seq)
        *seq = (int32_t)v;
    return 1;
}

int zkc__resname_ok(const char *name)
{
    return zkc__resname_parse(name, NULL, NULL);
}

int zkc__resname_find(char **names, int n, const char *nonce)
{
    for (int i = 0; i < n; i++) {
        char got[ZKC__RES_NONCE_LEN + 1];
        if (zkc__resname_parse(names[i], got, NULL) && strcmp(got, nonce) == 0)
            return i;
    }
    return -1;
}

int zkc__res_parse(const char *data, int len, const char **why)
{
    int n = -1, rc = 0;
    char *buf = malloc(RES_PARSE_BUF);
    zkc__res_rec *r = malloc(sizeof *r);
    if (!buf || !r) {
        free(buf);
        free(r);
        return ZKC_ENOMEM;
    }
    if (len >= 4 && memcmp(data, "zkcs", 4) == 0) {
        zkc__sku_rec s;
        if ((rc = zkc__sku_decode(data, len, &s, why)) == 0)
            n = zkc__sku_encode(&s, buf, RES_PARSE_BUF);
    } else if (len >= 4 && memcmp(data, "zkcr", 4) == 0) {
        if ((rc = zkc__resrec_decode(data, len, r, why)) == 0)
            n = zkc__resrec_encode(r, buf, RES_PARSE_BUF);
    } else if (len >= 4 && memcmp(data, "zkcq", 4) == 0) {
        zkc__res_qent e;
        if ((rc = zkc__qent_decode(data, len, &e, why)) == 0)
            n = zkc__qent_encode(&e, buf, RES_PARSE_BUF);
    } else {
        if (why)
            *why = "no zkcoord reservation record magic";
        rc = ZKC_EBADDATA;
    }
    if (rc == 0 && (n != len || memcmp(buf, data, (size_t)len) != 0))
        rc = -100;
    free(buf);
    free(r);
    return rc;
}
