/* Latency samples and medians, the JSON string builder, and the per-operation
 * figures of one side (requests, writes) in JSON and in words. */
#include "bench.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- latency samples ---- */

void lat_push(lat_t *l, double x)
{
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 1024;
        double *nv = realloc(l->v, nc * sizeof *nv);
        if (!nv)
            return;
        l->v = nv;
        l->cap = nc;
    }
    l->v[l->n++] = x;
}

void lat_append(lat_t *dst, const lat_t *src)
{
    for (size_t i = 0; i < src->n; i++)
        lat_push(dst, src->v[i]);
}

static int dcmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double lat_pct(lat_t *l, double p)
{
    if (!l->n)
        return NAN;
    qsort(l->v, l->n, sizeof *l->v, dcmp);
    size_t idx = (size_t)ceil(p / 100.0 * (double)l->n);
    if (idx < 1)
        idx = 1;
    if (idx > l->n)
        idx = l->n;
    return l->v[idx - 1];
}

double lat_mean(const lat_t *l)
{
    double t = 0;
    for (size_t i = 0; i < l->n; i++)
        t += l->v[i];
    return l->n ? t / (double)l->n : NAN;
}

void lat_free(lat_t *l)
{
    free(l->v);
    memset(l, 0, sizeof *l);
}

double median(const double *v, int n)
{
    if (n <= 0)
        return NAN;
    double t[MAXR];
    memcpy(t, v, (size_t)n * sizeof *t);
    qsort(t, (size_t)n, sizeof *t, dcmp);
    return n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
}

/* ---- string builder / JSON ---- */

void sb_vprintf(sb *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int need = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (need < 0)
        return;
    if (b->n + (size_t)need + 1 > b->cap) {
        size_t nc = (b->n + (size_t)need + 1) * 2;
        char *ns = realloc(b->s, nc);
        if (!ns)
            return;
        b->s = ns;
        b->cap = nc;
    }
    vsnprintf(b->s + b->n, b->cap - b->n, fmt, ap);
    b->n += (size_t)need;
}

void sb_printf(sb *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sb_vprintf(b, fmt, ap);
    va_end(ap);
}

const char *sb_str(const sb *b)
{
    return b->s ? b->s : "";
}

void sb_reset(sb *b)
{
    b->n = 0;
    if (b->s)
        b->s[0] = 0;
}

void sb_free(sb *b)
{
    free(b->s);
    memset(b, 0, sizeof *b);
}

void sb_jstr(sb *b, const char *s)
{
    sb_printf(b, "\"");
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        if (*p == '"' || *p == '\\')
            sb_printf(b, "\\%c", *p);
        else if (*p == '\n')
            sb_printf(b, "\\n");
        else if (*p < 0x20)
            sb_printf(b, "\\u%04x", *p);
        else
            sb_printf(b, "%c", *p);
    }
    sb_printf(b, "\"");
}

void sb_jnum(sb *b, double x)
{
    if (!isfinite(x))
        sb_printf(b, "null");
    else if (fabs(x) >= 1e15 || x == floor(x))
        sb_printf(b, "%.0f", x);
    else
        sb_printf(b, "%.6g", x);
}

/* [x, y, ...] */
void sb_jnums(sb *b, const double *v, int n)
{
    sb_printf(b, "[");
    for (int i = 0; i < n; i++) {
        sb_printf(b, "%s", i ? ", " : "");
        sb_jnum(b, v[i]);
    }
    sb_printf(b, "]");
}

/* "key": number, */
void kv_num(sb *b, const char *k, double x)
{
    sb_printf(b, "%s\"%s\": ", b->n ? ", " : "", k);
    sb_jnum(b, x);
}

void kv_str(sb *b, const char *k, const char *s)
{
    sb_printf(b, "%s\"%s\": ", b->n ? ", " : "", k);
    sb_jstr(b, s);
}

void kv_raw(sb *b, const char *k, const char *raw)
{
    sb_printf(b, "%s\"%s\": %s", b->n ? ", " : "", k, raw);
}

/* "key": {members} */
void kv_obj(sb *b, const char *k, const sb *members)
{
    sb_printf(b, "%s\"%s\": {%s}", b->n ? ", " : "", k, sb_str(members));
}

const char *req_names[10] = {"create", "delete", "exists", "get", "set",
                                    "children", "sync", "multi", "remove_watch", "other"};
double side_median(const side *s)
{
    return median(s->ops, s->n);
}

/* x per completed operation of the side, or NAN. */
double side_per_op(const side *s, double x)
{
    return s->ops_all ? x / (double)s->ops_all : NAN;
}

double per_op(const side *s, int k)
{
    return s->ops_all ? (double)s->req[k] / (double)s->ops_all : NAN;
}

double total_per_op(const side *s)
{
    uint64_t t = 0;
    for (int k = 0; k < 16; k++)
        t += s->req[k];
    return s->ops_all ? (double)t / (double)s->ops_all : NAN;
}

double writes_per_op(const side *s)
{
    return s->ops_all ? (double)(s->req[ZKC_REQ_CREATE] + s->req[ZKC_REQ_DELETE] + s->req[ZKC_REQ_SET] +
                                 s->req[ZKC_REQ_MULTI]) /
                            (double)s->ops_all
                      : NAN;
}

void req_json(sb *b, const side *s)
{
    sb o = {0};
    kv_num(&o, "total", total_per_op(s));
    kv_num(&o, "writes", writes_per_op(s));
    for (int k = 0; k < 10; k++)
        if (s->req[k])
            kv_num(&o, req_names[k], per_op(s, k));
    sb_printf(b, "{%s}", sb_str(&o));
    sb_free(&o);
}

void req_text(sb *b, const side *s)
{
    int first = 1;
    for (int k = 0; k < 10; k++)
        if (s->req[k] && per_op(s, k) >= 0.005) {
            sb_printf(b, "%s%.2f %s", first ? "" : " + ", per_op(s, k), req_names[k]);
            first = 0;
        }
    if (first)
        sb_printf(b, "none");
}
