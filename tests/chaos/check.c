/* zkc-chaos checker: reads every history of an epoch after the run settled
 * (faults healed, workers exited, the lock-queue nodes of killed workers gone
 * with their sessions) and checks the invariants; see the V_* kinds in
 * chaos.h.
 *
 * Timing rules (all times CLOCK_MONOTONIC, comparable across processes):
 *   a hold starts when its grant was logged (after the grant: late), ends when
 *   EXIT was logged (before the release: early), so a real overlap cannot hide
 *   in logging delays. Its TRUSTED part ends earlier at the first of: a lock
 *   event (SUSPENDED/LOST) for it, a SUSPENDED/LOST of its process since the
 *   acquire was invoked, a DOUBT, a session expiry injected into its process,
 *   a kill -9 of its process. Overlaps and fence rejections count only inside
 *   trusted parts: a holder may lose its lock, but must be told before anyone
 *   else is admitted (a forced expiry is an outside event no client can see
 *   coming, and a killed process writes nothing).
 */
#include "chaos.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

extern __typeof__(zkc_inventory_create) zkc_inventory_create __attribute__((weak));
extern __typeof__(zkc_inventory_destroy) zkc_inventory_destroy __attribute__((weak));
extern __typeof__(zkc_inventory_stock) zkc_inventory_stock __attribute__((weak));
extern __typeof__(zkc_inventory_lookup) zkc_inventory_lookup __attribute__((weak));
extern __typeof__(zkc_inventory_return) zkc_inventory_return __attribute__((weak));

#define T_NONE INT64_MAX
#define MAX_REPORT 8

typedef struct op {
    char type;   /* L lock acquire, C counter add, M multi add, I inventory */
    char kind;   /* L: M/R/W; I: r(eserve) p(repeat) s(restock) c(onfirm) x(cancel) a(reap) */
    uint8_t async, rej, canceled, inv_rep, res_rep, floor, guarded;
    uint64_t hold; /* C guarded: the lock op whose hold guards it */
    int nret;
    int path;    /* lock path index / counter index / restock sku */
    int rc;
    int64_t t_inv, t_ret;
    int64_t token;
    int64_t t_exit, t_doubt;
    int64_t delta, before, after;
    char *key;   /* counter key, or inventory request id */
    int mc[2];
    int64_t md[2], mb[2], ma[2];
    int n;
    int sku[2];
    int64_t qty[2];
    int state;
    char *msg;   /* the library's message, kept for undecided counter results */
    int64_t at_us, real_inv, real_ret; /* R: the grant's servers' instant; real clock (us) around it */
} op;

typedef struct sev {
    int64_t t;
    int down; /* 1 SUSPENDED/LOST, 0 CONNECTED/RECONNECTED/INIT */
} sev;

typedef struct wk {
    int wid;
    op *ops;
    uint64_t cap, maxid;
    int started, ended, killed, inv_on, inv_off;
    int64_t t_kill, t_end, t_last;
    sev *st;
    int nst, capst;
    int64_t *exp;
    int nexp, capexp;
} wk;

typedef struct fev {
    int64_t t;
    int path, wid, ok;
    uint64_t id;
    char kind;
    int64_t token;
    long seq;
} fev;

typedef struct ctx {
    const ch_check_in *in;
    ch_check_out *out;
    wk *w;
    int nw;
    fev *f;
    long nf, capf;
    long reported[V_NKINDS];
    long hangs;
} ctx;

static void viol(ctx *x, int kind, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void viol(ctx *x, int kind, const char *fmt, ...)
{
    x->out->violations[kind]++;
    if (x->in->quiet || (x->reported[kind]++ >= MAX_REPORT && !x->in->verbose))
        return;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    printf("VIOLATION %s: %s\n", ch_vnames[kind], buf);
}

/* ---------------------------------------------------------------- parsing */

static const char *kv(const char *line, const char *key)
{
    size_t kl = strlen(key);
    for (const char *p = line; (p = strstr(p, key)) != NULL; p += kl) {
        if ((p == line || p[-1] == ' ') && p[kl] == '=')
            return p + kl + 1;
    }
    return NULL;
}

static int64_t kvi(const char *line, const char *key, int64_t dflt)
{
    const char *v = kv(line, key);
    return v ? strtoll(v, NULL, 10) : dflt;
}

static uint64_t kvu(const char *line, const char *key)
{
    const char *v = kv(line, key);
    return v ? strtoull(v, NULL, 10) : 0;
}

static char *kvs(const char *line, const char *key)
{
    const char *v = kv(line, key);
    if (!v)
        return NULL;
    size_t n = strcspn(v, " \n");
    if (n == 1 && v[0] == '-')
        return NULL;
    return strndup(v, n);
}

static op *get_op(wk *w, uint64_t id)
{
    if (id == 0 || id > 100000000ULL)
        return NULL;
    if (id >= w->cap) {
        uint64_t nc = w->cap ? w->cap : 4096;
        while (nc <= id)
            nc *= 2;
        op *p = realloc(w->ops, nc * sizeof *p);
        if (!p)
            return NULL;
        memset(p + w->cap, 0, (nc - w->cap) * sizeof *p);
        w->ops = p;
        w->cap = nc;
    }
    if (id > w->maxid)
        w->maxid = id;
    return &w->ops[id];
}

static void add_state(wk *w, int64_t t, int down)
{
    if (w->nst == w->capst) {
        w->capst = w->capst ? w->capst * 2 : 64;
        w->st = realloc(w->st, (size_t)w->capst * sizeof *w->st);
    }
    w->st[w->nst].t = t;
    w->st[w->nst].down = down;
    w->nst++;
}

static void add_exp(wk *w, int64_t t)
{
    if (w->nexp == w->capexp) {
        w->capexp = w->capexp ? w->capexp * 2 : 8;
        w->exp = realloc(w->exp, (size_t)w->capexp * sizeof *w->exp);
    }
    w->exp[w->nexp++] = t;
}

static void add_fence(ctx *x, const fev *e)
{
    if (x->nf == x->capf) {
        x->capf = x->capf ? x->capf * 2 : 4096;
        x->f = realloc(x->f, (size_t)x->capf * sizeof *x->f);
    }
    x->f[x->nf] = *e;
    x->f[x->nf].seq = x->nf;
    x->nf++;
}

static wk *worker(ctx *x, int wid)
{
    if (wid < x->in->first_wid || wid > x->in->last_wid)
        return NULL;
    return &x->w[wid - x->in->first_wid];
}

/* A worker's file in the run directory: <prefix>-<wid>.log, or NULL. */
static FILE *worker_file(ctx *x, const char *prefix, int wid)
{
    char p[4200];
    snprintf(p, sizeof p, "%s/%s-%d.log", x->in->dir, prefix, wid);
    return fopen(p, "r");
}

/* One worker's history, event by event (every checker that reads it). */
typedef struct hreader {
    FILE *fp;
    char *line;
    size_t cap;
} hreader;

static int hist_open(ctx *x, int wid, hreader *h)
{
    memset(h, 0, sizeof *h);
    h->fp = worker_file(x, "hist", wid);
    return h->fp != NULL;
}

/* The next complete event line: its time, event name and the rest (from the
 * space before its first key). 0 at the end, or at a torn last line of a
 * killed process. */
static int hist_next(hreader *h, int64_t *t, char ev[16], const char **rest)
{
    ssize_t len;
    while ((len = getline(&h->line, &h->cap, h->fp)) > 0) {
        if (h->line[len - 1] != '\n')
            return 0;
        long long tt = 0;
        int wid = 0, n = 0;
        if (sscanf(h->line, "%lld %d %15s %n", &tt, &wid, ev, &n) < 3)
            continue;
        *t = tt;
        *rest = h->line + n - 1;
        return 1;
    }
    return 0;
}

static void hist_close(hreader *h)
{
    free(h->line);
    fclose(h->fp);
}

/* The library's message after " msg=" on a result line, kept with the first result. */
static void keep_msg(op *o, const char *r)
{
    const char *mm = strstr(r, " msg=");
    if (mm && !o->msg)
        o->msg = strndup(mm + 5, strcspn(mm + 5, "\n"));
}

static void parse_worker(ctx *x, wk *w)
{
    hreader hr;
    if (!hist_open(x, w->wid, &hr))
        return;
    int64_t t;
    char ev[16];
    const char *r;
    while (hist_next(&hr, &t, ev, &r)) {
        w->t_last = t;
        uint64_t id = kvu(r, "id");
        op *o;
        if (!strcmp(ev, "START")) {
            w->started = 1;
        } else if (!strcmp(ev, "STATE")) {
            const char *s = kv(r, "st");
            if (s && (!strncmp(s, "SUSPENDED", 9) || !strncmp(s, "LOST", 4)))
                add_state(w, t, 1);
            else
                add_state(w, t, 0);
        } else if (!strcmp(ev, "LINV") && (o = get_op(w, id))) {
            o->type = 'L';
            o->path = (int)kvi(r, "path", -1);
            const char *k = kv(r, "kind");
            o->kind = k ? k[0] : '?';
            o->async = (uint8_t)kvi(r, "async", 0);
            o->t_inv = t;
        } else if (!strcmp(ev, "LRET") && (o = get_op(w, id))) {
            if (o->nret++ == 0) {
                o->rc = (int)kvi(r, "rc", -999);
                o->token = kvi(r, "token", 0);
                keep_msg(o, r);
                o->t_ret = t;
            }
        } else if (!strcmp(ev, "LCANCEL") && (o = get_op(w, id))) {
            o->canceled = 1;
        } else if (!strcmp(ev, "LEV")) {
            const char *s = kv(r, "ev");
            if (id && s && strncmp(s, "RECONNECTED", 11) && (o = get_op(w, id)))
                if (!o->t_doubt || t < o->t_doubt)
                    o->t_doubt = t;
        } else if (!strcmp(ev, "DOUBT") && (o = get_op(w, id))) {
            x->out->doubts++;
            if (!o->t_doubt || t < o->t_doubt)
                o->t_doubt = t;
        } else if (!strcmp(ev, "FENCE")) {
            fev e;
            memset(&e, 0, sizeof e);
            e.t = t;
            e.path = (int)kvi(r, "path", -1);
            e.wid = w->wid;
            e.id = id;
            const char *k = kv(r, "kind");
            e.kind = k ? k[0] : '?';
            e.token = kvi(r, "token", 0);
            e.ok = (int)kvi(r, "ok", 0);
            add_fence(x, &e);
        } else if (!strcmp(ev, "EXIT") && (o = get_op(w, id))) {
            o->t_exit = t;
        } else if (!strcmp(ev, "CINV") && (o = get_op(w, id))) {
            o->type = 'C';
            o->path = (int)kvi(r, "ctr", -1);
            o->delta = kvi(r, "delta", 0);
            o->key = kvs(r, "key");
            o->floor = (uint8_t)kvi(r, "floor", 0);
            o->async = (uint8_t)kvi(r, "async", 0);
            o->inv_rep = (uint8_t)kvi(r, "rep", 0);
            o->guarded = (uint8_t)kvi(r, "guard", 0);
            o->hold = (uint64_t)kvi(r, "hold", 0);
            o->t_inv = t;
        } else if (!strcmp(ev, "CRET") && (o = get_op(w, id))) {
            if (o->nret++ == 0) {
                o->rc = (int)kvi(r, "rc", -999);
                keep_msg(o, r);
                o->before = kvi(r, "before", 0);
                o->after = kvi(r, "after", 0);
                o->res_rep = (uint8_t)kvi(r, "rep", 0);
                o->t_ret = t;
            }
        } else if (!strcmp(ev, "MINV") && (o = get_op(w, id))) {
            o->type = 'M';
            o->key = kvs(r, "key");
            o->mc[0] = (int)kvi(r, "c0", -1);
            o->mc[1] = (int)kvi(r, "c1", -1);
            o->md[0] = kvi(r, "d0", 0);
            o->md[1] = kvi(r, "d1", 0);
            o->floor = 1;
            o->t_inv = t;
        } else if (!strcmp(ev, "MRET") && (o = get_op(w, id))) {
            if (o->nret++ == 0) {
                o->rc = (int)kvi(r, "rc", -999);
                keep_msg(o, r);
                o->mb[0] = kvi(r, "b0", 0);
                o->ma[0] = kvi(r, "a0", 0);
                o->mb[1] = kvi(r, "b1", 0);
                o->ma[1] = kvi(r, "a1", 0);
                o->res_rep = (uint8_t)kvi(r, "rep", 0);
                o->t_ret = t;
            }
        } else if (!strcmp(ev, "LOOKUP")) {
            x->out->lookups++;
        } else if (!strcmp(ev, "REJ") && (o = get_op(w, id))) {
            o->rej = 1;
        } else if (!strcmp(ev, "ERROR")) {
            /* A lock or recipe object the worker could not create (local calls no
             * fault explains; the worker ran without it). A client create that
             * timed out under a fault is retried: not judged here. */
            const char *what = kv(r, "what");
            if (!what || strncmp(what, "client_create", 13))
                viol(x, V_UNEXPECTED, "worker %d: %s", w->wid, r + 1);
        } else if (!strcmp(ev, "HANG")) {
            x->hangs++;
            viol(x, V_INCOMPLETE, "worker %d: %s", w->wid, r + 1);
        } else if (!strcmp(ev, "IINV") && (o = get_op(w, id))) {
            o->type = 'I';
            const char *k = kv(r, "op");
            o->kind = !k ? '?' : !strncmp(k, "reserve", 7) ? 'r' : !strncmp(k, "repeat", 6) ? 'p'
                      : !strncmp(k, "restock", 7) ? 's' : !strncmp(k, "confirm", 7) ? 'c'
                      : !strncmp(k, "cancel", 6) ? 'x' : 'a';
            o->key = kvs(r, "rid");
            o->path = (int)kvi(r, "sku", -1);
            o->delta = kvi(r, "qty", 0);
            o->n = (int)kvi(r, "n", 0);
            o->sku[0] = (int)kvi(r, "s0", -1);
            o->sku[1] = (int)kvi(r, "s1", -1);
            o->qty[0] = kvi(r, "q0", 0);
            o->qty[1] = kvi(r, "q1", 0);
            o->t_inv = t;
        } else if (!strcmp(ev, "IRET") && (o = get_op(w, id))) {
            if (o->nret++ == 0) {
                o->rc = (int)kvi(r, "rc", -999);
                o->state = (int)kvi(r, "state", -1);
                keep_msg(o, r);
                o->t_ret = t;
            }
        } else if (!strcmp(ev, "RINV") && (o = get_op(w, id))) {
            o->type = 'R';
            o->n = (int)kvi(r, "n", 0);
            o->async = (uint8_t)kvi(r, "async", 0);
            o->real_inv = kvi(r, "real", 0);
            o->t_inv = t;
        } else if (!strcmp(ev, "RRET") && (o = get_op(w, id))) {
            if (o->nret++ == 0) {
                o->rc = (int)kvi(r, "rc", -999);
                o->at_us = kvi(r, "at", 0);
                o->real_ret = kvi(r, "real", 0);
                o->t_ret = t;
            }
        } else if (!strcmp(ev, "INVON")) {
            w->inv_on = 1;
        } else if (!strcmp(ev, "INVOFF")) {
            w->inv_off = 1;
        } else if (!strcmp(ev, "END")) {
            w->ended = 1;
            w->t_end = t;
        }
    }
    hist_close(&hr);
}

static void parse_driver(ctx *x)
{
    char p[4200];
    snprintf(p, sizeof p, "%s/hist-0.log", x->in->dir);
    FILE *fp = fopen(p, "r");
    if (!fp)
        return;
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, fp) > 0) {
        long long t = 0;
        int wid0 = 0, n = 0;
        char ev[16];
        if (sscanf(line, "%lld %d %15s %n", &t, &wid0, ev, &n) < 3 || t < x->in->t_start)
            continue;
        const char *r = line + n - 1;
        wk *w = worker(x, (int)kvi(r, "wid", -1));
        if (!w)
            continue;
        if (!strcmp(ev, "KILL") || !strcmp(ev, "HUNG")) {
            w->killed = 1;
            if (!w->t_kill)
                w->t_kill = t;
        } else if (!strcmp(ev, "EXPIRE")) {
            add_exp(w, t);
        }
    }
    free(line);
    fclose(fp);
}

/* ---------------------------------------------------------------- helpers */

/* First SUSPENDED/LOST of w at or after t, or T_NONE. */
static int64_t first_down_after(const wk *w, int64_t t)
{
    for (int i = 0; i < w->nst; i++)
        if (w->st[i].down && w->st[i].t >= t)
            return w->st[i].t;
    return T_NONE;
}

/* Was w disconnected at some moment of [a, b]? */
static int down_during(const wk *w, int64_t a, int64_t b)
{
    int down = 0;
    for (int i = 0; i < w->nst; i++) {
        if (w->st[i].t > b)
            break;
        if (w->st[i].t <= a)
            down = w->st[i].down;
        else if (w->st[i].down)
            return 1;
    }
    return down;
}

/* A LOST of w in [a, b] (state events carry no kind here: LOST and SUSPENDED
 * are both "down"; a session end is always preceded by one). */
static int down_in(const wk *w, int64_t a, int64_t b)
{
    for (int i = 0; i < w->nst; i++)
        if (w->st[i].down && w->st[i].t >= a && w->st[i].t <= b)
            return 1;
    return 0;
}

static int64_t first_exp_after(const wk *w, int64_t t)
{
    int64_t best = T_NONE;
    for (int i = 0; i < w->nexp; i++)
        if (w->exp[i] >= t && w->exp[i] < best)
            best = w->exp[i];
    return best;
}

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

/* End of a hold (EXIT logged, else the process's end) and end of its trusted part. */
static void hold_ends(const wk *w, const op *o, int64_t *end, int64_t *trusted)
{
    int64_t e = o->t_exit ? o->t_exit : w->killed ? w->t_kill : w->ended ? w->t_end : w->t_last;
    if (w->killed && w->t_kill)
        e = min64(e, w->t_kill);
    int64_t tr = e;
    if (o->t_doubt)
        tr = min64(tr, o->t_doubt);
    tr = min64(tr, first_down_after(w, o->t_inv));
    tr = min64(tr, first_exp_after(w, o->t_inv));
    *end = e;
    *trusted = tr;
}

static int not_applied(int rc)
{
    return rc == ZKC_EBOUND || rc == ZKC_ECONNLOSS || rc == ZKC_ECONTENDED || rc == ZKC_EOVERFLOW ||
           rc == ZKC_EBADDATA || rc == ZKC_EINVAL || rc == ZKC_EVERSIONWRAP || rc == ZKC_ENOAUTH ||
           rc == ZKC_ECLOSED || rc == ZKC_EFENCED; /* EFENCED: a guarded write refused, nothing written */
}

/* A result no fault or race of the chaos run explains: the server's own
 * errors, credentials refused (every worker has the tree's credentials),
 * misuse and malformed data (the workers pass valid arguments and only they
 * write the tree). Such a result is always reported as "nothing written", so
 * the exactly-once checks would pass it silently; the hour-long soak's
 * session without credentials showed how much can hide there. Confirm and
 * return of a request that is no longer RESERVED answer ZKC_EINVAL by
 * contract (it expired or was reaped meanwhile). */
static int unexpected_rc(int rc, char type, char kind)
{
    switch (rc) {
    case ZKC_EINVAL:
        return !(type == 'I' && (kind == 'c' || kind == 'x'));
    case ZKC_ESERVER:
    case ZKC_EAUTH:
    case ZKC_ENOAUTH:
    case ZKC_ENOMEM:
    case ZKC_EBADDATA:
    case ZKC_EDEADLK:
    case ZKC_ECONFIG:
    case ZKC_EVERSIONWRAP:
    case ZKC_EBUSY:
    case ZKC_ELIMIT:
    case -999: /* no rc on the result line */
        return 1;
    default:
        return 0;
    }
}

/* ---------------------------------------------------------------- (a) (b) locks */

typedef struct hold {
    int wid;
    uint64_t id;
    char kind;
    int64_t token, start, end, trusted;
    int clean;
} hold;

static int hold_cmp(const void *a, const void *b)
{
    const hold *x = a, *y = b;
    return x->start < y->start ? -1 : x->start > y->start ? 1 : 0;
}

static int fev_cmp(const void *a, const void *b)
{
    const fev *x = a, *y = b;
    if (x->path != y->path)
        return x->path - y->path;
    if (x->t != y->t)
        return x->t < y->t ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void check_locks(ctx *x)
{
    const ch_shape *sh = x->in->shape;
    int nl = ch_lock_count(sh);
    long nh = 0, caph = 1024;
    hold *h = malloc((size_t)caph * sizeof *h);
    for (int wi = 0; wi < x->nw; wi++) {
        wk *w = &x->w[wi];
        for (uint64_t id = 1; id <= w->maxid; id++) {
            op *o = &w->ops[id];
            if (o->type != 'L' || o->nret == 0 || o->rc != 0)
                continue;
            x->out->acquisitions++;
            if (nh == caph) {
                caph *= 2;
                h = realloc(h, (size_t)caph * sizeof *h);
            }
            hold *hd = &h[nh++];
            hd->wid = w->wid;
            hd->id = id;
            hd->kind = o->kind;
            hd->token = o->token;
            hd->start = o->t_ret;
            hold_ends(w, o, &hd->end, &hd->trusted);
            hd->clean = hd->trusted == hd->end && o->t_exit != 0;
            (void)hd;
        }
    }
    /* Per path: overlaps among trusted parts, token order among clean holds. */
    for (int p = 0; p < nl; p++) {
        long n = 0;
        hold *ph = malloc((size_t)(nh + 1) * sizeof *ph);
        for (long i = 0; i < nh; i++) {
            const op *o = &worker(x, h[i].wid)->ops[h[i].id];
            if (o->path == p)
                ph[n++] = h[i];
        }
        qsort(ph, (size_t)n, sizeof *ph, hold_cmp);
        long act[4096];
        int na = 0;
        for (long i = 0; i < n; i++) {
            hold *H = &ph[i];
            int k = 0;
            for (int j = 0; j < na; j++)
                if (ph[act[j]].trusted > H->start)
                    act[k++] = act[j];
            na = k;
            if (H->trusted > H->start) {
                for (int j = 0; j < na; j++) {
                    hold *A = &ph[act[j]];
                    if (A->kind == 'R' && H->kind == 'R')
                        continue;
                    viol(x, V_OVERLAP,
                         "lock path %d: hold w%d#%" PRIu64 " (%c, token %" PRId64 ", trusted until +%.3f ms) overlaps "
                         "w%d#%" PRIu64 " (%c, token %" PRId64 ") granted at +0: neither was told of doubt",
                         p, A->wid, A->id, A->kind, A->token, (A->trusted - H->start) / 1e6, H->wid, H->id, H->kind,
                         H->token);
                }
                if (na < (int)(sizeof act / sizeof act[0]))
                    act[na++] = i;
            }
        }
        int64_t last_excl = 0;
        uint64_t last_id = 0;
        int last_wid = 0;
        for (long i = 0; i < n; i++) {
            hold *H = &ph[i];
            if (!H->clean)
                continue;
            if (H->token <= last_excl)
                viol(x, V_TOKEN_ORDER,
                     "lock path %d: %s hold w%d#%" PRIu64 " got token %" PRId64 ", not above the earlier exclusive hold "
                     "w%d#%" PRIu64 "'s %" PRId64,
                     p, H->kind == 'R' ? "read" : "exclusive", H->wid, H->id, H->token, last_wid, last_id, last_excl);
            if (H->kind != 'R') {
                last_excl = H->token;
                last_id = H->id;
                last_wid = H->wid;
            }
        }
        free(ph);
    }
    /* The fenced resource, replayed in its own order. */
    qsort(x->f, (size_t)x->nf, sizeof *x->f, fev_cmp);
    int64_t max_all = 0, max_excl = 0, excl_hold = 0;
    int cur = -1;
    for (long i = 0; i < x->nf; i++) {
        fev *e = &x->f[i];
        if (e->path != cur) {
            cur = e->path;
            max_all = max_excl = excl_hold = 0;
        }
        int64_t hid = ((int64_t)e->wid << 32) | (int64_t)(e->id & 0xffffffffu);
        int ok = e->kind == 'R' ? e->token > max_excl
                                : e->token >= max_all && (e->token > max_excl || excl_hold == hid);
        wk *w = worker(x, e->wid);
        op *o = w && e->id <= w->maxid ? &w->ops[e->id] : NULL;
        if (e->ok) {
            x->out->fence_accepted++;
            if (!ok)
                viol(x, V_FENCE_STALE, "lock path %d: the resource accepted token %" PRId64 " from w%d#%" PRIu64
                                       " after seeing %" PRId64 " (exclusive %" PRId64 ")",
                     e->path, e->token, e->wid, e->id, max_all, max_excl);
            if (e->token > max_all)
                max_all = e->token;
            if (e->kind != 'R') {
                max_excl = e->token;
                excl_hold = hid;
            }
        } else {
            x->out->fence_rejected++;
            int64_t end = T_NONE, trusted = T_NONE;
            if (o && w)
                hold_ends(w, o, &end, &trusted);
            if (!o || trusted > e->t)
                viol(x, V_FENCE_REJECT,
                     "lock path %d: w%d#%" PRIu64 " wrote token %" PRId64 " (%c) while it had not been told of doubt, "
                     "and the resource had already seen %" PRId64 " (exclusive %" PRId64 ")",
                     e->path, e->wid, e->id, e->token, e->kind, max_all, max_excl);
        }
        if (o && o->token != e->token)
            viol(x, V_TOKEN_ORDER, "w%d#%" PRIu64 " fenced with token %" PRId64 " but was granted %" PRId64, e->wid,
                 e->id, e->token, o->token);
    }
    /* Cross-check the resource's own counts (a worker killed between its
     * decision and its log line makes them differ by one: reported only). */
    int64_t acc = 0, rej = 0;
    for (int p = 0; p < nl; p++) {
        acc += x->in->shm->fence[p].accepted;
        rej += x->in->shm->fence[p].rejected;
    }
    if (x->in->verbose && !x->in->quiet)
        printf("check: fence shm accepted %" PRId64 " rejected %" PRId64 " (all epochs), logged this epoch %" PRId64
               "/%" PRId64 "\n",
               acc, rej, x->out->fence_accepted, x->out->fence_rejected);
    free(h);
}

/* ---------------------------------------------------------------- (c) counters */

typedef struct unit {
    char *key;      /* NULL: unkeyed, one op */
    int n;          /* counters touched: 1, or 2 for a multi */
    int ctr[2];
    int64_t delta[2];
    int floor;
    int applied;    /* 1 yes, 0 no, -1 unknown */
    int unknown_rc; /* the first result that left it undecided (1: no answer) */
    int ok_fresh;   /* first-time successes reported */
    int have_ba[2];
    int64_t b[2], a[2];
    uint8_t multi;
    int wid;        /* the op whose outcome gave b/a (for reports) */
    uint64_t id;
    int64_t t;
} unit;

typedef struct kmap {
    unit **slot;
    size_t cap, n;
} kmap;

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static unit *kmap_get(kmap *m, const char *key, int create)
{
    if (m->n * 2 >= m->cap) {
        size_t nc = m->cap ? m->cap * 2 : 4096;
        unit **ns = calloc(nc, sizeof *ns);
        for (size_t i = 0; i < m->cap; i++) {
            unit *u = m->slot[i];
            if (!u)
                continue;
            size_t j = hash_str(u->key) & (nc - 1);
            while (ns[j])
                j = (j + 1) & (nc - 1);
            ns[j] = u;
        }
        free(m->slot);
        m->slot = ns;
        m->cap = nc;
    }
    size_t j = hash_str(key) & (m->cap - 1);
    while (m->slot[j]) {
        if (!strcmp(m->slot[j]->key, key))
            return m->slot[j];
        j = (j + 1) & (m->cap - 1);
    }
    if (!create)
        return NULL;
    unit *u = calloc(1, sizeof *u);
    u->key = strdup(key);
    u->applied = 0;
    m->slot[j] = u;
    m->n++;
    return u;
}

typedef struct vdelta {
    int64_t v;
    int d;
    const unit *u; /* NULL: the initial or final value */
    int k;         /* which of u's counters */
} vdelta;

static int vd_cmp(const void *a, const void *b)
{
    const vdelta *x = a, *y = b;
    return x->v < y->v ? -1 : x->v > y->v;
}

/* Fold one op's outcome into its unit. */
static void unit_add_result(ctx *x, unit *u, const wk *w, uint64_t id, const op *o)
{
    int ok = o->nret > 0 && o->rc == 0;
    if (ok) {
        int64_t b[2] = {o->type == 'M' ? o->mb[0] : o->before, o->mb[1]};
        int64_t a[2] = {o->type == 'M' ? o->ma[0] : o->after, o->ma[1]};
        if (!o->res_rep)
            u->ok_fresh++;
        if (o->inv_rep && !o->res_rep)
            viol(x, V_REPLAY, "key %s: the repeat w%d#%" PRIu64 " was applied again (not reported as a replay)", u->key,
                 w->wid, id);
        for (int i = 0; i < u->n; i++) {
            if (!u->have_ba[i]) {
                u->have_ba[i] = 1;
                u->b[i] = b[i];
                u->a[i] = a[i];
                u->wid = w->wid;
                u->id = id;
                u->t = o->t_ret;
            } else if (u->b[i] != b[i] || u->a[i] != a[i]) {
                viol(x, V_REPLAY,
                     "key %s (op %d): w%d#%" PRIu64 " reported %" PRId64 "->%" PRId64 ", an earlier outcome said %" PRId64
                     "->%" PRId64,
                     u->key ? u->key : "-", i, w->wid, id, b[i], a[i], u->b[i], u->a[i]);
            }
        }
        u->applied = 1;
        return;
    }
    if (u->applied == 1)
        return;
    int unknown = o->rej ? 0 : o->nret == 0 ? 1 : !not_applied(o->rc);
    if (unknown) {
        u->applied = -1;
        if (!u->unknown_rc)
            u->unknown_rc = o->nret ? o->rc : 1;
    }
}

/* After a counter_sum violation: where the chain of applied updates breaks,
 * so that the next occurrence names its updates in the log itself (the run
 * directory is usually gone). Each update is an edge before -> after; a value
 * entered more often than it is left (or the reverse) is a break. Updates of
 * unknown outcome have no edges and explain some breaks; a double application
 * shows as a value entered twice with no unknown update near it in time.
 * edges_vd holds the 2 * edges entries of the applied updates. */
static void print_chain_breaks(ctx *x, int c, const vdelta *edges_vd, long edges, int64_t init, int64_t fin)
{
    if (x->in->quiet)
        return;
    long m = edges * 2;
    vdelta *vd = malloc(sizeof *vd * (size_t)(m + 2));
    if (!vd)
        return;
    memcpy(vd, edges_vd, sizeof *vd * (size_t)m); /* the caller's chain check sorts its own */
    vd[m++] = (vdelta){fin, 1, NULL, 0};
    vd[m++] = (vdelta){init, -1, NULL, 0};
    qsort(vd, (size_t)m, sizeof *vd, vd_cmp);
    int shown = 0, breaks = 0;
    for (long i = 0; i < m;) {
        long j = i;
        int s = 0;
        while (j < m && vd[j].v == vd[i].v)
            s += vd[j++].d;
        if (s != 0 && breaks++ < 24) {
            /* s counts leavings (a before, the final value) minus entries (an after, the initial value) */
            printf("chain: counter %d: value %" PRId64 " %s %d more time(s) than %s; updates at it:", c, vd[i].v,
                   s > 0 ? "left" : "entered", s > 0 ? s : -s, s > 0 ? "entered" : "left");
            int k = 0;
            for (long e = i; e < j && k < 6; e++, k++) {
                const unit *u = vd[e].u;
                if (!u)
                    printf(" [%s]", vd[e].d > 0 ? "final" : "initial");
                else
                    printf(" w%d#%" PRIu64 "@%.3fs%s(%" PRId64 "->%" PRId64 ")", u->wid, u->id,
                           (double)(u->t - x->in->t_start) / 1e9, u->key ? "k" : "", u->b[vd[e].k], u->a[vd[e].k]);
            }
            printf("%s\n", j - i > 6 ? " ..." : "");
            shown++;
        }
        i = j;
    }
    if (breaks > shown)
        printf("chain: counter %d: %d more breaks not shown\n", c, breaks - shown);
    free(vd);
}

static void check_counters(ctx *x)
{
    const ch_shape *sh = x->in->shape;
    int nc = ch_counter_count(sh);
    kmap km = {0};
    unit **units = NULL;
    long nu = 0, capu = 0;
    /* ---- gather units ---- */
    for (int wi = 0; wi < x->nw; wi++) {
        wk *w = &x->w[wi];
        for (uint64_t id = 1; id <= w->maxid; id++) {
            op *o = &w->ops[id];
            if (o->type != 'C' && o->type != 'M')
                continue;
            if (o->rej)
                continue;
            x->out->counter_ops += o->type == 'M' ? 2 : 1;
            if (o->inv_rep)
                x->out->replays++;
            if (o->nret && o->rc == ZKC_EUNKNOWN) {
                x->out->unknown_outcomes++;
                if (!down_during(w, o->t_inv, o->t_ret))
                    viol(x, V_UNKNOWN,
                         "w%d#%" PRIu64 ": ZKC_EUNKNOWN although the process never lost its connection during the update",
                         w->wid, id);
            } else if (o->nret && o->rc == ZKC_ESESSIONLOST) {
                /* Allowed when the session did end: a LOST (after the SUSPENDED
                 * it implies) heard around the call; blocking returns may
                 * overtake the listener by a little. */
                if (!down_in(w, o->t_inv, o->t_ret + 2000000000LL))
                    viol(x, V_UNKNOWN, "w%d#%" PRIu64 ": ZKC_ESESSIONLOST while the session lived (%s)", w->wid, id,
                         o->msg ? o->msg : "");
            } else if (o->nret && o->rc != 0 && !not_applied(o->rc) && !unexpected_rc(o->rc, o->type, o->kind)) {
                /* (an unexpected code is judged once, by check_calls) */
                viol(x, V_UNKNOWN, "w%d#%" PRIu64 ": update left undecided with %s (%s)", w->wid, id,
                     zkc_strerror(o->rc), o->msg ? o->msg : "");
            }
            unit *u;
            if (o->key) {
                u = kmap_get(&km, o->key, 1);
            } else {
                u = calloc(1, sizeof *u);
            }
            if (u->n == 0) {
                u->multi = o->type == 'M';
                u->n = u->multi ? 2 : 1;
                u->ctr[0] = u->multi ? o->mc[0] : o->path;
                u->ctr[1] = o->mc[1];
                u->delta[0] = u->multi ? o->md[0] : o->delta;
                u->delta[1] = o->md[1];
                u->floor = o->floor;
                if (nu == capu) {
                    capu = capu ? capu * 2 : 4096;
                    units = realloc(units, (size_t)capu * sizeof *units);
                }
                units[nu++] = u;
            } else if (u->ctr[0] != (u->multi ? o->mc[0] : o->path) ||
                       u->delta[0] != (u->multi ? o->md[0] : o->delta)) {
                viol(x, V_REPLAY, "key %s reused for another update (test bug)", u->key);
            }
            unit_add_result(x, u, w, id, o);
        }
    }
    /* ---- every update reported applied once at most; unknown keyed ones looked up ---- */
    /* Undecided updates by the result that left them so: how the lookups resolved them. */
    int64_t tally[33][4]; /* [-rc or 32 for no answer][keyed applied, keyed not applied, keyed unresolved, unkeyed] */
    memset(tally, 0, sizeof tally);
    for (long i = 0; i < nu; i++) {
        unit *u = units[i];
        if (u->ok_fresh > 1)
            viol(x, V_REPLAY, "key %s: applied %d times (each reported as a first application)", u->key, u->ok_fresh);
        int ti = u->unknown_rc == 1 ? 32 : -u->unknown_rc;
        if (ti < 0 || ti > 32)
            ti = 32;
        if (u->applied == -1 && !u->key)
            tally[ti][3]++;
        if (u->applied != -1 || !u->key)
            continue;
        zkc_counter_result r = {0, 0, 0};
        int rc = zkc_counter_lookup(x->in->c, u->key, &r);
        tally[ti][rc == 0 ? 0 : rc == ZKC_ENONODE ? 1 : 2]++;
        if (rc == 0) {
            u->applied = 1;
            if (!u->have_ba[0]) {
                u->have_ba[0] = 1;
                u->b[0] = r.before;
                u->a[0] = r.after;
            }
            x->out->keyed_resolved++;
        } else if (rc == ZKC_ENONODE) {
            u->applied = 0;
            x->out->keyed_resolved++;
        } else if (x->in->verbose && !x->in->quiet) {
            printf("check: lookup of key %s: %s\n", u->key, zkc_errmsg());
        }
    }
    for (int t = 0; t <= 32 && !x->in->quiet; t++) {
        int64_t *c = tally[t];
        if (c[0] + c[1] + c[2] + c[3])
            printf("results: counter updates left undecided by %s: keyed %" PRId64 " (looked up: %" PRId64
                   " applied, %" PRId64 " not applied, %" PRId64 " unresolved), unkeyed %" PRId64 "\n",
                   t == 32 ? "no answer (process killed)" : zkc_strerror(-t), c[0] + c[1] + c[2], c[0], c[1], c[2],
                   c[3]);
    }
    /* ---- final values ---- */
    int64_t fin[CH_MAX_COUNTERS];
    int have_fin[CH_MAX_COUNTERS];
    for (int i = 0; i < nc; i++) {
        char p[256];
        ch_counter_path(sh, i, p, sizeof p);
        zkc_counter *ctr = NULL;
        have_fin[i] = zkc_counter_create(x->in->c, p, NULL, &ctr) == 0 && zkc_counter_get(ctr, &fin[i]) == 0;
        if (!have_fin[i])
            viol(x, V_COUNTER_SUM, "counter %s: final value unreadable: %s", p, zkc_errmsg());
        zkc_counter_destroy(ctr);
    }
    const int64_t *vs = x->out->violations;
    for (int c = 0; c < nc; c++) {
        int64_t v0 = vs[V_COUNTER_SUM] + vs[V_COUNTER_CHAIN] + vs[V_COUNTER_BOUND];
        int64_t applied = 0, lo = 0, hi = 0;
        long unknown = 0, edges = 0, missing_ba = 0;
        vdelta *vd = malloc(sizeof *vd * (size_t)(2 * nu + 4));
        for (long i = 0; i < nu; i++) {
            unit *u = units[i];
            for (int k = 0; k < u->n; k++) {
                if (u->ctr[k] != c)
                    continue;
                if (u->applied == 1) {
                    applied += u->delta[k];
                    x->out->counter_updates++;
                    if (!u->key && !u->multi && ch_counter_queued(sh, c))
                        x->out->queued_updates++;
                    if (!u->have_ba[k]) {
                        missing_ba++;
                        continue;
                    }
                    if (u->a[k] - u->b[k] != u->delta[k])
                        viol(x, V_COUNTER_CHAIN, "counter %d, key %s: %" PRId64 " -> %" PRId64 " is not a change of %" PRId64,
                             c, u->key ? u->key : "-", u->b[k], u->a[k], u->delta[k]);
                    if (u->floor && u->a[k] < 0)
                        viol(x, V_COUNTER_BOUND, "counter %d, key %s: bounded update landed at %" PRId64 " (floor 0)", c,
                             u->key ? u->key : "-", u->a[k]);
                    vd[edges * 2] = (vdelta){u->b[k], 1, u, k};
                    vd[edges * 2 + 1] = (vdelta){u->a[k], -1, u, k};
                    edges++;
                } else if (u->applied == -1) {
                    unknown++;
                    if (u->delta[k] < 0)
                        lo += u->delta[k];
                    else
                        hi += u->delta[k];
                }
            }
        }
        x->out->unknown_unresolved += unknown;
        if (unknown || missing_ba)
            x->out->inexact_counters |= 1ULL << c;
        int64_t init = x->in->initial[c];
        if (have_fin[c]) {
            int64_t want = init + applied;
            if (fin[c] < want + lo || fin[c] > want + hi) {
                viol(x, V_COUNTER_SUM,
                     "counter %d: final %" PRId64 ", but initial %" PRId64 " + applied %" PRId64 " = %" PRId64
                     " (%ld updates of unknown outcome allow [%+" PRId64 ", %+" PRId64 "])",
                     c, fin[c], init, applied, want, unknown, lo, hi);
                print_chain_breaks(x, c, vd, edges, init, fin[c]);
            }
            if (c >= sh->counters && c < sh->counters + sh->stocks && fin[c] < 0)
                viol(x, V_COUNTER_BOUND, "stock counter %d ended at %" PRId64 " (floor 0)", c, fin[c]);
        }
        /* The applied updates must chain from the initial value to the final
         * one: every value is left as often as it is reached, except the ends. */
        x->out->queued_counters += ch_counter_queued(sh, c);
        if (have_fin[c] && unknown == 0 && missing_ba == 0) {
            x->out->queued_chained += ch_counter_queued(sh, c);
            vd[edges * 2] = (vdelta){fin[c], 1, NULL, 0};
            vd[edges * 2 + 1] = (vdelta){init, -1, NULL, 0};
            long m = edges * 2 + 2;
            qsort(vd, (size_t)m, sizeof *vd, vd_cmp);
            long bad = 0;
            for (long i = 0; i < m;) {
                long j = i;
                int s = 0;
                while (j < m && vd[j].v == vd[i].v)
                    s += vd[j++].d;
                if (s != 0) {
                    if (bad++ < 3)
                        viol(x, V_COUNTER_CHAIN,
                             "counter %d: value %" PRId64 " is entered and left unevenly (%+d) by the %ld applied updates",
                             c, vd[i].v, s, edges);
                }
                i = j;
            }
        } else if (x->in->verbose && !x->in->quiet) {
            printf("check: counter %d: chain check skipped (%ld unknown, %ld without before/after)\n", c, unknown,
                   missing_ba);
        }
        free(vd);
        if (vs[V_COUNTER_SUM] + vs[V_COUNTER_CHAIN] + vs[V_COUNTER_BOUND] > v0 && c < 64)
            x->out->counter_viol |= 1ULL << c;
    }
    for (long i = 0; i < nu; i++) {
        free(units[i]->key);
        free(units[i]);
    }
    free(units);
    free(km.slot);
}

/* ---------------------------------------------------------------- (d) inventory
 *
 * Units: at quiescence every SKU record's reserved units are exactly those of
 * the requests whose records say RESERVED, and its units sold this epoch those
 * of the requests that say SOLD (checked apart, and their sum: more held than
 * asked is a double grant, less is units granted without being taken from the
 * record, an oversell). The two sides live in different nodes (the SKU record,
 * one record per request) and ZooKeeper has no multi-node read, so the check
 * needs a moment in which nothing changes them, and proves it had one:
 *
 *   - Nothing may change them by then: every worker has exited (stopped or
 *     killed: a killed worker's session may outlive it by a session timeout,
 *     but a session settles nothing: holds end by a confirm, a return or a
 *     reap, each a write of some live process, and the checker reaps nothing
 *     before its reads). An expired hold stays RESERVED, on both sides, until
 *     a reap settles it.
 *   - And it proves it: each SKU record is read (fresh: through the quorum,
 *     so a lagging server cannot answer) before and after all the lookups; the
 *     pass counts only if both reads agree. Otherwise it is read again, up to
 *     INV_SNAP_ATTEMPTS passes; a SKU that keeps changing is itself a
 *     violation (something still writes after every worker stopped), never a
 *     reason to pass. A real loss of units is as visible in a quiet pass as in
 *     any other, so the check stays as strong as before. */

extern __typeof__(zkc_inventory_stock_fresh) zkc_inventory_stock_fresh __attribute__((weak));

#define INV_SNAP_ATTEMPTS 5

typedef struct ireq {
    const op *o; /* the id's first reserve: its id and lines */
    int rc;      /* of its lookup */
    zkc_inventory_state st;
    char *msg;   /* the lookup's message when it failed */
} ireq;

typedef struct isnap {
    int rc;
    zkc_inventory_stock_info si;
} isnap;

static void inv_snap(zkc_inventory *inv, int nskus, isnap *out)
{
    for (int s = 0; s < nskus; s++) {
        char sku[32];
        ch_sku_name(s, sku, sizeof sku);
        memset(&out[s], 0, sizeof out[s]);
        out[s].rc = zkc_inventory_stock_fresh ? zkc_inventory_stock_fresh(inv, sku, &out[s].si)
                                              : zkc_inventory_stock(inv, sku, &out[s].si);
    }
}

static int snap_same(const isnap *a, const isnap *b)
{
    return a->rc == b->rc && a->si.available == b->si.available && a->si.reserved == b->si.reserved &&
           a->si.sold == b->si.sold && a->si.total == b->si.total && a->si.queue_length == b->si.queue_length;
}

static void check_inventory(ctx *x)
{
    const ch_shape *sh = x->in->shape;
    int on = 0;
    for (int wi = 0; wi < x->nw; wi++)
        on |= x->w[wi].inv_on;
    x->out->inventory_on = on;
    if (!on)
        return;
    zkc_inventory *inv = NULL;
    if (zkc_inventory_create(x->in->c, CH_INV_ROOT, &inv) != 0) {
        viol(x, V_INV_UNITS, "the checker cannot open the inventory: %s", zkc_errmsg());
        return;
    }
    int64_t restock_lo[CH_MAX_SKUS] = {0}, restock_hi[CH_MAX_SKUS] = {0};
    kmap seen = {0};
    ireq *rq = NULL;
    long nrq = 0, caprq = 0;
    for (int wi = 0; wi < x->nw; wi++) {
        wk *w = &x->w[wi];
        for (uint64_t id = 1; id <= w->maxid; id++) {
            op *o = &w->ops[id];
            if (o->type != 'I')
                continue;
            x->out->inv_ops++;
            if (o->kind == 's' && o->path >= 0 && o->path < CH_MAX_SKUS) {
                if (o->nret && o->rc == 0) {
                    restock_lo[o->path] += o->delta;
                    restock_hi[o->path] += o->delta;
                } else if (!o->nret || !not_applied(o->rc)) {
                    restock_hi[o->path] += o->delta;
                }
            }
            if (o->kind == 'r' && o->nret && o->rc == 0 && o->state == ZKC_INVENTORY_RESERVED)
                x->out->inv_reserved++;
            if (o->kind != 'r' || !o->key)
                continue;
            /* Each id once, with the lines of its first request. */
            unit *u = kmap_get(&seen, o->key, 1);
            if (u->n)
                continue;
            u->n = 1;
            if (nrq == caprq) {
                caprq = caprq ? caprq * 2 : 4096;
                rq = realloc(rq, (size_t)caprq * sizeof *rq);
            }
            rq[nrq].o = o;
            rq[nrq].rc = ZKC_ENONODE;
            rq[nrq].st = ZKC_INVENTORY_PENDING;
            rq[nrq].msg = NULL;
            nrq++;
        }
    }
    /* A quiet pass: stock, every request's state, stock again, the same. */
    int nskus = sh->skus < CH_MAX_SKUS ? sh->skus : CH_MAX_SKUS;
    isnap before[CH_MAX_SKUS], after[CH_MAX_SKUS];
    int quiet = 0, pass;
    for (pass = 1; pass <= INV_SNAP_ATTEMPTS && !quiet; pass++) {
        inv_snap(inv, nskus, before);
        for (long i = 0; i < nrq; i++) {
            rq[i].rc = zkc_inventory_lookup(inv, rq[i].o->key, &rq[i].st);
            free(rq[i].msg);
            rq[i].msg = rq[i].rc && rq[i].rc != ZKC_ENONODE ? strdup(zkc_errmsg()) : NULL;
        }
        inv_snap(inv, nskus, after);
        quiet = 1;
        for (int s = 0; s < nskus; s++) {
            if (snap_same(&before[s], &after[s]))
                continue;
            quiet = 0;
            char sku[32];
            ch_sku_name(s, sku, sizeof sku);
            if (pass == INV_SNAP_ATTEMPTS)
                viol(x, V_INV_UNITS,
                     "%s changed during each of %d passes of the check although every worker had stopped (last: "
                     "available/reserved/sold/total/queued %" PRId64 "/%" PRId64 "/%" PRId64 "/%" PRId64 "/%d -> "
                     "%" PRId64 "/%" PRId64 "/%" PRId64 "/%" PRId64 "/%d): something still writes",
                     sku, INV_SNAP_ATTEMPTS, before[s].si.available, before[s].si.reserved, before[s].si.sold,
                     before[s].si.total, before[s].si.queue_length, after[s].si.available, after[s].si.reserved,
                     after[s].si.sold, after[s].si.total, after[s].si.queue_length);
            else if (x->in->verbose && !x->in->quiet)
                printf("check: %s changed during inventory pass %d; reading again\n", sku, pass);
        }
        if (!quiet && pass < INV_SNAP_ATTEMPTS)
            ch_nap_ms(500); /* pacing between passes; the next pass proves quiet or not */
    }
    if (x->in->verbose && !x->in->quiet)
        printf("check: inventory: %ld request ids looked up, %s after %d pass(es)\n", nrq,
               quiet ? "quiet" : "never quiet", pass - 1);
    int64_t by_res[CH_MAX_SKUS] = {0}, by_sold[CH_MAX_SKUS] = {0};
    for (long i = 0; i < nrq; i++) {
        const op *o = rq[i].o;
        if (rq[i].rc == ZKC_ENONODE)
            continue;
        if (rq[i].rc != 0) {
            viol(x, V_INV_UNITS, "lookup of request %s: %s", o->key, rq[i].msg ? rq[i].msg : zkc_strerror(rq[i].rc));
            continue;
        }
        for (int k = 0; k < o->n && k < 2; k++) {
            int s = o->sku[k];
            if (s < 0 || s >= CH_MAX_SKUS)
                continue;
            if (rq[i].st == ZKC_INVENTORY_RESERVED)
                by_res[s] += o->qty[k];
            else if (rq[i].st == ZKC_INVENTORY_SOLD)
                by_sold[s] += o->qty[k];
        }
    }
    for (int s = 0; s < nskus; s++) {
        char sku[32];
        ch_sku_name(s, sku, sizeof sku);
        const zkc_inventory_stock_info *si = &after[s].si;
        int rc = after[s].rc;
        if (rc == ZKC_ENONODE)
            continue;
        if (rc != 0) {
            viol(x, V_INV_UNITS, "%s: stock unreadable: %s", sku, zkc_strerror(rc));
            continue;
        }
        if (si->available + si->reserved + si->sold != si->total)
            viol(x, V_INV_UNITS, "%s: available %" PRId64 " + reserved %" PRId64 " + sold %" PRId64 " != total %" PRId64,
                 sku, si->available, si->reserved, si->sold, si->total);
        if (si->available < 0 || si->reserved < 0)
            viol(x, V_INV_UNITS, "%s: negative units (available %" PRId64 ", reserved %" PRId64 ")", sku,
                 si->available, si->reserved);
        int64_t dt = si->total - x->in->inv_total0[s];
        if (restock_lo[s] != restock_hi[s])
            x->out->inexact_skus |= 1ULL << s;
        if (dt < restock_lo[s] || dt > restock_hi[s])
            viol(x, V_INV_UNITS, "%s: total grew by %" PRId64 ", restocks reported applied %" PRId64 " (up to %" PRId64
                                 " with unknown outcomes)",
                 sku, dt, restock_lo[s], restock_hi[s]);
        if (!snap_same(&before[s], &after[s]))
            continue; /* never quiet: reported above; no snapshot to judge units on */
        int64_t sold = si->sold - x->in->inv_sold0[s];
        int64_t held = si->reserved + sold;
        int64_t want = by_res[s] + by_sold[s];
        /* Both parts in every message: which side lost units says where to look. */
        char parts[192];
        snprintf(parts, sizeof parts,
                 "(record: reserved %" PRId64 ", sold %" PRId64 " this epoch; requests: RESERVED %" PRId64
                 ", SOLD %" PRId64 ")",
                 si->reserved, sold, by_res[s], by_sold[s]);
        if (held > want)
            viol(x, V_INV_DOUBLE, "%s: %" PRId64 " units reserved or sold, the requests in those states hold only %" PRId64
                                  " %s",
                 sku, held, want, parts);
        else if (held < want)
            viol(x, V_INV_UNITS, "%s: %" PRId64 " units reserved or sold, the requests in those states hold %" PRId64 " %s",
                 sku, held, want, parts);
        else if (si->reserved != by_res[s])
            viol(x, V_INV_UNITS, "%s: reserved and sold units add up, but not apart %s", sku, parts);
        if (si->queue_length != 0)
            viol(x, V_ORPHAN, "%s: %d requests still queued at quiescence", sku, si->queue_length);
    }
    /* Release what is still reserved, so the next epoch starts from none. */
    for (long i = 0; i < nrq; i++)
        if (rq[i].rc == 0 && rq[i].st == ZKC_INVENTORY_RESERVED && zkc_inventory_return && !x->in->no_side_effects)
            zkc_inventory_return(inv, rq[i].o->key);
    for (long i = 0; i < nrq; i++)
        free(rq[i].msg);
    for (size_t i = 0; i < seen.cap; i++) {
        unit *u = seen.slot[i];
        if (!u)
            continue;
        free(u->key);
        free(u);
    }
    free(seen.slot);
    free(rq);
    zkc_inventory_destroy(inv);
}

/* ---------------------------------------------------------------- (f) callbacks */

/* What the clients were told, by operation type: result code -> count. */
static void print_results(ctx *x)
{
    static const char types[] = "LCMIR";
    static const char *const names[] = {"lock acquire", "counter add", "multi add", "inventory", "rate limit"};
    int64_t h[5][32];
    memset(h, 0, sizeof h);
    for (int wi = 0; wi < x->nw; wi++) {
        wk *w = &x->w[wi];
        for (uint64_t id = 1; id <= w->maxid; id++) {
            op *o = &w->ops[id];
            const char *t = o->type ? strchr(types, o->type) : NULL;
            if (!t || o->rej)
                continue;
            int rc = o->nret ? -o->rc : 31; /* 31: no answer (process killed) */
            h[t - types][rc >= 0 && rc < 31 ? rc : 31]++;
        }
    }
    for (int t = 0; t < 5; t++) {
        char line[1024];
        int n = snprintf(line, sizeof line, "results: %-13s", names[t]);
        int any = 0;
        for (int rc = 0; rc < 32; rc++) {
            if (!h[t][rc])
                continue;
            any = 1;
            n += snprintf(line + n, sizeof line - (size_t)n, " %s %" PRId64 ",",
                          rc == 0 ? "ok" : rc == 31 ? "no-answer" : zkc_strerror(-rc), h[t][rc]);
            if (n >= (int)sizeof line - 64)
                break;
        }
        if (any) {
            line[n - 1] = 0;
            printf("%s\n", line);
        }
    }
}

static void check_calls(ctx *x)
{
    for (int wi = 0; wi < x->nw; wi++) {
        wk *w = &x->w[wi];
        for (uint64_t id = 1; id <= w->maxid; id++) {
            op *o = &w->ops[id];
            if (!o->type)
                continue;
            x->out->operations++;
            if (o->rej) {
                if (o->nret)
                    viol(x, V_CALLBACK, "w%d#%" PRIu64 ": a refused submission's callback ran %d time(s)", w->wid, id,
                         o->nret);
                continue;
            }
            if (o->nret && unexpected_rc(o->rc, o->type, o->kind))
                viol(x, V_UNEXPECTED, "w%d#%" PRIu64 " (%c%c%s): %s (%s)", w->wid, id, o->type, o->kind ? o->kind : '-',
                     o->async ? ", async" : "", zkc_strerror(o->rc), o->msg ? o->msg : "no message logged");
            if (o->nret > 1)
                viol(x, V_CALLBACK, "w%d#%" PRIu64 " (%c): completed %d times", w->wid, id, o->type, o->nret);
            else if (o->nret == 0 && w->ended)
                viol(x, o->async ? V_CALLBACK : V_INCOMPLETE,
                     "w%d#%" PRIu64 " (%c%s): never completed although its process ran to the end", w->wid, id,
                     o->type, o->async ? ", async" : "");
        }
    }
}

/* The library's own watchdog (test builds, lib/opwatch.h): an operation still
 * open past its bound, with its kind, path and state. Each line fails. */
static void check_opwatch(ctx *x)
{
    for (int wi = 0; wi < x->nw; wi++) {
        FILE *fp = worker_file(x, "opwatch", x->w[wi].wid);
        if (!fp)
            continue;
        char line[1024];
        while (fgets(line, sizeof line, fp)) {
            line[strcspn(line, "\n")] = 0;
            viol(x, V_INCOMPLETE, "w%d: library watchdog: %s", x->w[wi].wid, line);
        }
        fclose(fp);
    }
}

/* ---------------------------------------------------------------- entry */

/* Order numbers (worker.c's idgen_thread): per generator path, no id handed
 * out twice across every worker, replacement and fault; within one worker
 * process ids increase (blocks: always; gap-free: except the one id handed
 * out by a key re-sent after ZKC_EUNKNOWN, so the order check restarts
 * there). */
typedef struct idg_ent {
    int64_t id;
    int wid;
    int64_t t;
} idg_ent;

static int idg_ent_cmp(const void *a, const void *b)
{
    const idg_ent *x = a, *y = b;
    return x->id < y->id ? -1 : x->id > y->id;
}

static void check_idgen(ctx *x)
{
    idg_ent *all[2] = {NULL, NULL};
    size_t n[2] = {0, 0}, cap[2] = {0, 0};
    for (int i = 0; i < x->nw; i++) {
        hreader hr;
        if (!hist_open(x, x->w[i].wid, &hr))
            continue;
        int64_t last[2] = {0, 0}, t;
        char ev[16];
        const char *line;
        while (hist_next(&hr, &t, ev, &line)) {
            if (strcmp(ev, "GRET"))
                continue;
            int k = (int)kvi(line, "gen", 0) != 0;
            int rc = (int)kvi(line, "rc", 0);
            int64_t id = kvi(line, "id", 0);
            if (rc == ZKC_EUNKNOWN && k)
                last[k] = 0;
            if (unexpected_rc(rc, 'G', 0))
                viol(x, V_UNEXPECTED, "worker %d, %s generator: %s", x->w[i].wid, k ? "gap-free" : "block",
                     zkc_strerror(rc));
            if (rc != 0)
                continue;
            if (id <= last[k])
                viol(x, V_IDGEN, "worker %d, %s generator: id %" PRId64 " after %" PRId64 " (t=%" PRId64 ")",
                     x->w[i].wid, k ? "gap-free" : "block", id, last[k], t);
            last[k] = id;
            if (n[k] == cap[k]) {
                cap[k] = cap[k] ? cap[k] * 2 : 1024;
                all[k] = realloc(all[k], cap[k] * sizeof *all[k]);
            }
            all[k][n[k]++] = (idg_ent){id, x->w[i].wid, t};
        }
        hist_close(&hr);
    }
    for (int k = 0; k < 2; k++) {
        if (n[k])
            qsort(all[k], n[k], sizeof *all[k], idg_ent_cmp);
        for (size_t j = 1; j < n[k]; j++)
            if (all[k][j].id == all[k][j - 1].id)
                viol(x, V_IDGEN, "%s generator: id %" PRId64 " handed out twice (worker %d at t=%" PRId64
                     ", worker %d at t=%" PRId64 ")", k ? "gap-free" : "block", all[k][j].id, all[k][j - 1].wid,
                     all[k][j - 1].t, all[k][j].wid, all[k][j].t);
        if (!x->in->quiet)
            printf("idgen: %s generator: %zu ids handed out, distinct%s\n", k ? "gap-free" : "block", n[k],
                   n[k] ? "" : " (none: the workload did not run)");
        free(all[k]);
    }
}

/* Guarded adds (worker.c's guarded_add, one per lock hold, inside it):
 * ZKC_EFENCED says the hold's node was gone when the add reached the leader,
 * i.e. the hold had ended. Before the add returned, the holder must then have
 * been told (the same trusted part as `overlap` uses: a lock event, a
 * SUSPENDED/LOST of the process, a DOUBT, an injected expiry, a kill), since
 * LOST comes no later than the servers could expire the session. Nothing is
 * checked of a guarded add that succeeded after a LOST: the header allows it
 * (a presumed LOST while the servers still keep the node lets it through);
 * that it was counted exactly once is counter_sum's and counter_chain's job. */
static void check_guarded(ctx *x)
{
    int64_t adds = 0, ok = 0, fenced = 0;
    for (int i = 0; i < x->nw; i++) {
        wk *w = &x->w[i];
        for (uint64_t id = 1; id <= w->maxid; id++) {
            op *o = &w->ops[id];
            if (o->type != 'C' || !o->guarded)
                continue;
            adds++;
            ok += o->nret && o->rc == 0;
            if (!o->nret || o->rc != ZKC_EFENCED)
                continue;
            fenced++;
            if (o->hold == 0 || o->hold > w->maxid || w->ops[o->hold].type != 'L')
                continue;
            int64_t end = 0, trusted = 0;
            hold_ends(w, &w->ops[o->hold], &end, &trusted);
            if (trusted >= o->t_ret)
                viol(x, V_GUARD_REFUSED,
                     "w%d#%" PRIu64 ": guarded add refused (ZKC_EFENCED, t=%" PRId64 ") while hold w%d#%" PRIu64
                     " (token %" PRId64 ") was undoubted until t=%" PRId64,
                     w->wid, id, o->t_ret, w->wid, o->hold, w->ops[o->hold].token, trusted);
        }
    }
    if (!x->in->quiet)
        printf("guarded adds: %" PRId64 " invoked, %" PRId64 " applied, %" PRId64 " refused (ZKC_EFENCED)%s\n", adds, ok,
               fenced, adds ? "" : " (none: the workload did not run)");
}

/* Leader election (worker.c's election_thread), judged by what the header
 * promises (zkcoord.h, election and CONNECTED STATES):
 *   - Events go to the leader: SUSPENDED (MAY be lost), RECONNECTED (same
 *     session: still leader), LOST (IS lost). LOST is reported no later than
 *     the servers could expire the session, and another participant can lead
 *     only once the old leader's node is gone (its session expired or it
 *     resigned). So a term is un-notified from its grant (logged after it:
 *     late) until the first of: resign invoked (before the delete: early), a
 *     LOST, a SUSPENDED not followed by RECONNECTED in that term (a
 *     suspension the same session came back from kept the node, so nobody
 *     else could lead during it), a session expiry the driver injected into
 *     the process, its kill -9, its end. Two un-notified terms must not
 *     overlap at all (election_double_leader).
 *   - TERM TOKEN: the czxid of a new node per term, so tokens strictly
 *     increase in grant order across all workers (election_token_order).
 *     A grant line logged after an injected expiry already ended the term
 *     may land after the next leader's grant (logging delay): a decrease is
 *     excused there, an equal token never. */
typedef struct eterm {
    int64_t t_stand, t_grant, token, end;
    int64_t pend;  /* an unanswered SUSPENDED */
    int wid, term, cut;
} eterm;

static int eterm_cmp(const void *a, const void *b)
{
    const eterm *x = a, *y = b;
    return x->t_grant < y->t_grant ? -1 : x->t_grant > y->t_grant;
}

static void check_election(ctx *x)
{
    eterm *all = NULL;
    size_t n = 0, cap = 0;
    int64_t nsusp = 0, nrec = 0, nlost = 0, nresign = 0, nstand = 0;
    for (int i = 0; i < x->nw; i++) {
        wk *w = &x->w[i];
        hreader hr;
        if (!hist_open(x, w->wid, &hr))
            continue;
        eterm *tm = NULL;
        int ntm = 0;
        int64_t t;
        char ev[16];
        const char *line;
        while (hist_next(&hr, &t, ev, &line)) {
            if (ev[0] != 'E')
                continue;
            int k = (int)kvi(line, "term", 0);
            if (k <= 0 || k > 10000000)
                continue;
            if (k > ntm) {
                int nn = k + 64;
                tm = realloc(tm, (size_t)nn * sizeof *tm);
                memset(tm + ntm, 0, (size_t)(nn - ntm) * sizeof *tm);
                for (int j = ntm; j < nn; j++)
                    tm[j].end = T_NONE;
                ntm = nn;
            }
            eterm *e = &tm[k - 1];
            if (!strcmp(ev, "ESTAND")) {
                e->t_stand = t;
                nstand++;
            } else if (!strcmp(ev, "ELEAD")) {
                if (kvi(line, "rc", -1) == 0) {
                    e->t_grant = t;
                    e->token = kvi(line, "token", 0);
                }
            } else if (!strcmp(ev, "EEV")) {
                const char *v = kv(line, "ev");
                if (v && !strncmp(v, "SUSPENDED", 9)) {
                    nsusp++;
                    if (!e->pend)
                        e->pend = t;
                } else if (v && !strncmp(v, "RECONNECTED", 11)) {
                    nrec++;
                    e->pend = 0;
                } else if (v && !strncmp(v, "LOST", 4)) {
                    nlost++;
                    e->end = min64(e->end, e->pend ? e->pend : t);
                    e->pend = 0;
                }
            } else if (!strcmp(ev, "ERESIGN")) {
                nresign++;
                e->end = min64(e->end, e->pend ? e->pend : t);
                e->pend = 0;
            }
        }
        hist_close(&hr);
        int64_t pend_end = w->killed && w->t_kill ? w->t_kill : w->ended ? w->t_end : w->t_last;
        for (int j = 0; j < ntm; j++) {
            eterm *e = &tm[j];
            if (!e->t_grant)
                continue;
            if (e->pend)
                e->end = min64(e->end, e->pend);
            e->end = min64(e->end, pend_end);
            int64_t exp = first_exp_after(w, e->t_stand);
            e->end = min64(e->end, exp);
            e->cut = exp <= e->t_grant || (w->killed && w->t_kill && w->t_kill <= e->t_grant);
            e->wid = w->wid;
            e->term = j + 1;
            if (n == cap) {
                cap = cap ? cap * 2 : 1024;
                all = realloc(all, cap * sizeof *all);
            }
            all[n++] = *e;
        }
        free(tm);
    }
    if (n)
        qsort(all, n, sizeof *all, eterm_cmp);
    /* Sweep in grant order, keeping the un-notified term that reaches furthest. */
    size_t far = 0;
    int have = 0;
    for (size_t j = 0; j < n; j++) {
        const eterm *e = &all[j];
        if (have && e->t_grant < all[far].end && e->end > e->t_grant)
            viol(x, V_ELECT_DOUBLE,
                 "two leaders un-notified at once: worker %d term %d (token %" PRId64 ", granted t=%" PRId64
                 ", un-notified until t=%" PRId64 ") and worker %d term %d (token %" PRId64 ", granted t=%" PRId64
                 ", un-notified until t=%" PRId64 ")",
                 all[far].wid, all[far].term, all[far].token, all[far].t_grant, all[far].end, e->wid, e->term,
                 e->token, e->t_grant, e->end);
        if (e->end > e->t_grant && (!have || e->end > all[far].end)) {
            far = j;
            have = 1;
        }
        if (j > 0 && (e->token < all[j - 1].token ? !e->cut : e->token == all[j - 1].token))
            viol(x, V_ELECT_TOKEN,
                 "term tokens not increasing in grant order: worker %d term %d token %" PRId64 " (t=%" PRId64
                 ") after worker %d term %d token %" PRId64 " (t=%" PRId64 ")",
                 e->wid, e->term, e->token, e->t_grant, all[j - 1].wid, all[j - 1].term, all[j - 1].token,
                 all[j - 1].t_grant);
    }
    x->out->election_terms = (int64_t)n;
    if (!x->in->quiet)
        printf("election: %" PRId64 " stands, %zu terms granted, %" PRId64 " resigns, events: %" PRId64
               " SUSPENDED, %" PRId64 " RECONNECTED, %" PRId64 " LOST%s\n",
               nstand, n, nresign, nsusp, nrec, nlost, n ? "" : " (none: the workload did not run)");
    free(all);
}

/* Hard rate limit (worker.c's ratelimit_thread): every grant names the
 * servers' instant it counted at, the start of its first slot (zkcoord.h,
 * zkc_ratelimit_acquire_at); n permits own the n slots of T from there. The
 * header's bound in those coordinates is exact: slots are never shared, so
 * any CH_RL_WINDOW_MS holds at most CH_RL_PERMITS slot starts, over every
 * grant of every worker, replacement and fault (ratelimit_window_bound: every
 * window anchored at a slot start is counted). A grant that returned but was
 * not logged (its process killed) is missing: that can hide a violation,
 * never make one. So that the instants are the servers' clock at all, each
 * must lie where the header puts it, give or take the clock estimate's error
 * (half a sample's round trip, and a sample takes less than the operation
 * timeout of 2 session timeouts): from the real clock before the call to
 * (burst - n) slots after the real clock after it (ratelimit_instant_off;
 * the servers run on this machine, so their clock is ours). */
static int i64_cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void check_ratelimit(ctx *x)
{
    const int64_t slot = CH_RL_SLOT_US, win = (int64_t)CH_RL_WINDOW_MS * 1000;
    const int64_t slack = 2 * (int64_t)x->in->session_ms * 1000;
    int64_t *inst = NULL, grants = 0, lo = INT64_MAX, hi = INT64_MIN;
    int64_t first = INT64_MAX, last = INT64_MIN;
    size_t n = 0, cap = 0;
    for (int i = 0; i < x->nw; i++) {
        wk *w = &x->w[i];
        for (uint64_t id = 1; id <= w->maxid; id++) {
            op *o = &w->ops[id];
            if (o->type != 'R' || !o->nret || o->rc != 0)
                continue;
            grants++;
            int64_t late = (CH_RL_BURST - o->n) * slot;
            if (o->n < 1 || o->n > CH_RL_BURST || o->at_us < o->real_inv - slack ||
                o->at_us > o->real_ret + late + slack)
                viol(x, V_RL_INSTANT,
                     "w%d#%" PRIu64 ": %d permit(s) at servers' instant %" PRId64 " us, real clock %" PRId64
                     "..%" PRId64 " us around the call (allowed: %" PRId64 " s either side, + %" PRId64 " us)",
                     w->wid, id, o->n, o->at_us, o->real_inv, o->real_ret, slack / 1000000, late);
            if (o->at_us - o->real_ret < lo)
                lo = o->at_us - o->real_ret;
            if (o->at_us - o->real_ret > hi)
                hi = o->at_us - o->real_ret;
            for (int k = 0; k < o->n && k < CH_RL_BURST; k++) {
                if (n == cap) {
                    cap = cap ? cap * 2 : 4096;
                    inst = realloc(inst, cap * sizeof *inst);
                }
                inst[n++] = o->at_us + k * slot;
            }
        }
    }
    if (n)
        qsort(inst, n, sizeof *inst, i64_cmp);
    int64_t busiest = 0, busiest_at = 0;
    for (size_t a = 0, b = 0; a < n; a++) {
        while (b < n && inst[b] < inst[a] + win)
            b++;
        int64_t cnt = (int64_t)(b - a);
        if (cnt > busiest) {
            busiest = cnt;
            busiest_at = inst[a];
        }
        if (cnt > CH_RL_PERMITS)
            viol(x, V_RL_BOUND,
                 "%" PRId64 " permits have slots starting in [%" PRId64 ", +%d ms) of the servers' clock, limit %d",
                 cnt, inst[a], CH_RL_WINDOW_MS, CH_RL_PERMITS);
    }
    if (n) {
        first = inst[0];
        last = inst[n - 1];
    }
    x->out->rl_grants = grants;
    x->out->rl_permits = (int64_t)n;
    x->out->rl_busiest = busiest;
    x->out->rl_busiest_at = busiest_at;
    if (!x->in->quiet) {
        if (n)
            printf("ratelimit: %" PRId64 " grants, %zu permits over %.1f s of slots (limit %d per %d ms: %.0f%% of "
                   "capacity); busiest %d ms held %" PRId64 "; slot start - real clock after the grant: %.1f..%.1f ms\n",
                   grants, n, (double)(last - first) / 1e6, CH_RL_PERMITS, CH_RL_WINDOW_MS,
                   100.0 * (double)n / ((double)(last - first + slot) / (double)slot), CH_RL_WINDOW_MS, busiest,
                   (double)lo / 1e3, (double)hi / 1e3);
        else
            printf("ratelimit: no permits granted (none: the workload did not run)\n");
    }
    free(inst);
}

int ch_check(const ch_check_in *in, ch_check_out *out)
{
    ctx x;
    memset(&x, 0, sizeof x);
    x.in = in;
    x.out = out;
    x.nw = in->last_wid - in->first_wid + 1;
    if (x.nw < 0)
        x.nw = 0;
    x.w = calloc((size_t)x.nw + 1, sizeof *x.w);
    for (int i = 0; i < x.nw; i++)
        x.w[i].wid = in->first_wid + i;
    parse_driver(&x);
    for (int i = 0; i < x.nw; i++)
        parse_worker(&x, &x.w[i]);
    for (int i = 0; i < x.nw; i++) {
        wk *w = &x.w[i];
        if (!w->started && !w->killed)
            viol(&x, V_WORKER, "worker %d never started", w->wid);
    }
    check_locks(&x);
    check_counters(&x);
    check_inventory(&x);
    check_calls(&x);
    check_opwatch(&x);
    check_idgen(&x);
    check_election(&x);
    check_guarded(&x);
    check_ratelimit(&x);
    if (!in->quiet)
        print_results(&x);
    for (int i = 0; i < x.nw; i++) {
        wk *w = &x.w[i];
        for (uint64_t id = 1; id <= w->maxid; id++) {
            free(w->ops[id].key);
            free(w->ops[id].msg);
        }
        free(w->ops);
        free(w->st);
        free(w->exp);
    }
    free(x.w);
    free(x.f);
    return 0;
}
