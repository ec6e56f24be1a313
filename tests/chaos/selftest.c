/* zkc-chaos --self-test: proves that every checker can fail. After a real run
 * whose history passed, each mutation copies the histories, plants exactly
 * one inconsistency of one kind (a stale token accepted, an overlap, a lost
 * update, a duplicated callback, ...) and runs the checker on the copy, which
 * must report that kind. */
#include "chaos.h"

#include <dirent.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct lines {
    char **l;
    int n, cap;
} lines;

static void lines_free(lines *f)
{
    for (int i = 0; i < f->n; i++)
        free(f->l[i]);
    free(f->l);
    f->l = NULL;
    f->n = f->cap = 0;
}

static int lines_load(lines *f, const char *path)
{
    memset(f, 0, sizeof *f);
    FILE *fp = fopen(path, "r");
    if (!fp)
        return -1;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, fp)) > 0) {
        if (f->n == f->cap) {
            f->cap = f->cap ? f->cap * 2 : 1024;
            f->l = realloc(f->l, (size_t)f->cap * sizeof *f->l);
        }
        f->l[f->n++] = strdup(line);
    }
    free(line);
    fclose(fp);
    return 0;
}

static int lines_save(const lines *f, const char *path)
{
    FILE *fp = fopen(path, "w");
    if (!fp)
        return -1;
    for (int i = 0; i < f->n; i++)
        if (f->l[i])
            fputs(f->l[i], fp);
    return fclose(fp);
}

static const char *kv(const char *line, const char *key)
{
    size_t kl = strlen(key);
    for (const char *p = line; (p = strstr(p, key)) != NULL; p += kl)
        if ((p == line || p[-1] == ' ') && p[kl] == '=')
            return p + kl + 1;
    return NULL;
}

static int64_t kvi(const char *line, const char *key, int64_t dflt)
{
    const char *v = kv(line, key);
    return v ? strtoll(v, NULL, 10) : dflt;
}

static int is_ev(const char *line, const char *ev)
{
    const char *p = strchr(line, ' ');
    p = p ? strchr(p + 1, ' ') : NULL;
    return p && !strncmp(p + 1, ev, strlen(ev)) && p[1 + strlen(ev)] == ' ';
}

static int64_t line_t(const char *line)
{
    return strtoll(line, NULL, 10);
}

/* Replace the value of key in *line (the line is reallocated). */
static void set_kv(char **line, const char *key, const char *val)
{
    const char *v = kv(*line, key);
    if (!v)
        return;
    size_t pre = (size_t)(v - *line);
    size_t vl = strcspn(v, " \n");
    size_t n = strlen(*line) - vl + strlen(val) + 1;
    char *s = malloc(n);
    memcpy(s, *line, pre);
    strcpy(s + pre, val);
    strcat(s, v + vl);
    free(*line);
    *line = s;
}

static void set_kvi(char **line, const char *key, int64_t val)
{
    char b[32];
    snprintf(b, sizeof b, "%" PRId64, val);
    set_kv(line, key, b);
}

static void set_time(char **line, int64_t t)
{
    const char *sp = strchr(*line, ' ');
    if (!sp)
        return;
    char *s = NULL;
    if (asprintf(&s, "%" PRId64 "%s", t, sp) < 0)
        return;
    free(*line);
    *line = s;
}

/* Index of the first line of event ev with id == id, from `from`. */
static int find_id(const lines *f, const char *ev, int64_t id, int from)
{
    for (int i = from; i < f->n; i++)
        if (f->l[i] && is_ev(f->l[i], ev) && kvi(f->l[i], "id", -1) == id)
            return i;
    return -1;
}

static int has_doubt(const lines *f, int64_t id)
{
    for (int i = 0; i < f->n; i++)
        if (f->l[i] && (is_ev(f->l[i], "DOUBT") || is_ev(f->l[i], "LEV")) && kvi(f->l[i], "id", -1) == id)
            return 1;
    return 0;
}

/* The first STATE SUSPENDED/LOST of the file, or INT64_MAX: mutations stay
 * before it, where no hold is in doubt. */
static int64_t first_trouble(const lines *f)
{
    for (int i = 0; i < f->n; i++)
        if (is_ev(f->l[i], "STATE") && (strstr(f->l[i], "st=SUSPENDED") || strstr(f->l[i], "st=LOST")))
            return line_t(f->l[i]);
    return INT64_MAX;
}

enum {
    M_FENCE_STALE, M_FENCE_REJECT, M_TOKEN_ORDER, M_OVERLAP, M_SUM, M_CHAIN, M_BOUND, M_REPLAY, M_UNKNOWN,
    M_CALLBACK, M_INCOMPLETE, M_WORKER, M_INV_UNITS, M_INV_DOUBLE, M_IDGEN, M_ELECT_DOUBLE, M_ELECT_TOKEN, M_GUARD,
    M_RL_BOUND, M_RL_INSTANT, M_UNEXPECTED, M_N
};

static const struct {
    int kind;
    const char *what;
} muts[M_N] = {
    {V_FENCE_STALE, "a fenced write below the resource's largest token, accepted"},
    {V_FENCE_REJECT, "a write of an undoubted holder, rejected"},
    {V_TOKEN_ORDER, "a later exclusive hold granted a smaller token"},
    {V_OVERLAP, "a hold's critical section extended into the next holder's"},
    {V_COUNTER_SUM, "an applied counter update reported as not applied"},
    {V_COUNTER_CHAIN, "an update's before/after shifted off the chain"},
    {V_COUNTER_BOUND, "a bounded take landing below 0"},
    {V_REPLAY, "a replayed key reporting another outcome than its first"},
    {V_UNKNOWN, "ZKC_EUNKNOWN while connected"},
    {V_CALLBACK, "a callback delivered twice"},
    {V_INCOMPLETE, "a blocking call that never returned"},
    {V_WORKER, "a worker that never started"},
    {V_INV_UNITS, "a restock reported failed although the units arrived"},
    {V_INV_DOUBLE, "units held beyond what the granted requests asked"},
    {V_IDGEN, "an order number handed out a second time"},
    {V_ELECT_DOUBLE, "a leader that never resigned nor was told, while the next term led"},
    {V_ELECT_TOKEN, "a later term granted the token of an earlier one"},
    {V_GUARD_REFUSED, "a guarded add of an undoubted hold refused as fenced"},
    {V_RL_BOUND, "rate-limit grants counted at slots of the busiest window, past its limit"},
    {V_RL_INSTANT, "a rate-limit grant counted a minute away from the real clock"},
    {V_UNEXPECTED, "a failed lock acquire answered with a server error"},
};

/* Apply mutation m to f (one worker's history). 1 if applied. */
static int ended(const lines *f)
{
    for (int i = f->n - 1; i >= 0; i--)
        if (f->l[i] && is_ev(f->l[i], "END"))
            return 1;
    return 0;
}

/* variant (M_SUM, M_CHAIN, M_BOUND): 0 plants on a direct add, 1 on one that
 * went through a counter queue (unkeyed, on a queued counter); *ctr gets the
 * counter planted on. */
static int mutate(int m, lines *f, const ch_check_out *pristine, const ch_shape *sh, int variant, int *ctr_out)
{
    uint64_t inexact = pristine->inexact_counters, inexact_skus = pristine->inexact_skus;
    int64_t calm = first_trouble(f);
    if ((m == M_INCOMPLETE || m == M_CALLBACK || m == M_WORKER) && !ended(f))
        return 0; /* only a process that ran to its end owes every completion */
    switch (m) {
    case M_FENCE_STALE:
    case M_FENCE_REJECT: {
        uint64_t seen = 0; /* paths with an accepted write earlier in this file */
        for (int i = 0; i < f->n; i++) {
            char *l = f->l[i];
            if (!is_ev(l, "FENCE") || kvi(l, "ok", 0) != 1 || !strstr(l, "kind=M") || line_t(l) >= calm)
                continue;
            int64_t path = kvi(l, "path", 0);
            if (m == M_FENCE_REJECT && !has_doubt(f, kvi(l, "id", 0))) {
                set_kvi(&f->l[i], "ok", 0);
                return 1;
            }
            if (m == M_FENCE_STALE && path >= 0 && path < 64 && (seen >> path) & 1) {
                /* An earlier write on this path was accepted with a larger token. */
                set_kvi(&f->l[i], "token", 1);
                return 1;
            }
            if (path >= 0 && path < 64)
                seen |= 1ULL << path;
        }
        return 0;
    }
    case M_TOKEN_ORDER:
    case M_OVERLAP: {
        /* Two clean consecutive exclusive holds of this worker on one path. */
        for (int i = 0; i < f->n; i++) {
            char *a = f->l[i];
            if (!is_ev(a, "LINV") || !strstr(a, "kind=M") || line_t(a) >= calm)
                continue;
            int64_t ida = kvi(a, "id", 0), path = kvi(a, "path", -1);
            int ra = find_id(f, "LRET", ida, i);
            if (ra < 0 || kvi(f->l[ra], "rc", -1) != 0 || has_doubt(f, ida))
                continue;
            int ea = find_id(f, "EXIT", ida, ra);
            if (ea < 0)
                continue;
            for (int j = ea + 1; j < f->n; j++) {
                char *b = f->l[j];
                if (!is_ev(b, "LINV") || !strstr(b, "kind=M") || kvi(b, "path", -2) != path)
                    continue;
                int64_t idb = kvi(b, "id", 0);
                int rb = find_id(f, "LRET", idb, j);
                if (rb < 0 || kvi(f->l[rb], "rc", -1) != 0 || line_t(f->l[rb]) >= calm || has_doubt(f, idb))
                    break;
                if (m == M_TOKEN_ORDER) {
                    set_kvi(&f->l[rb], "token", kvi(f->l[ra], "token", 0) - 1);
                } else {
                    set_time(&f->l[ea], line_t(f->l[rb]) + 1000000); /* A leaves 1 ms after B entered */
                }
                return 1;
            }
        }
        return 0;
    }
    case M_SUM:
    case M_CHAIN:
    case M_BOUND:
    case M_REPLAY:
    case M_UNKNOWN:
    case M_CALLBACK:
    case M_INCOMPLETE: {
        for (int i = 0; i < f->n; i++) {
            char *inv = f->l[i];
            if (!is_ev(inv, "CINV") || line_t(inv) >= calm)
                continue;
            int64_t id = kvi(inv, "id", 0), delta = kvi(inv, "delta", 0);
            int64_t ctr = kvi(inv, "ctr", 0);
            int keyed = !strstr(inv, "key=-");
            if ((m == M_SUM || m == M_CHAIN || m == M_BOUND) &&
                (!keyed && ch_counter_queued(sh, (int)ctr)) != variant)
                continue; /* variant 1 takes a queued add, 0 a direct one */
            *ctr_out = (int)ctr;
            if ((m == M_SUM || m == M_CHAIN) && ctr >= 0 && ctr < 64 && (inexact >> ctr) & 1)
                continue; /* that counter's sum is a range in this history: pick an exact one */
            int r = find_id(f, "CRET", id, i);
            if (r < 0 || kvi(f->l[r], "rc", -1) != 0)
                continue;
            char **ret = &f->l[r];
            int64_t before = kvi(*ret, "before", 0), after = kvi(*ret, "after", 0);
            switch (m) {
            case M_SUM:
                if (keyed || delta == 0)
                    continue;
                set_kvi(ret, "rc", ZKC_ECONNLOSS);
                return 1;
            case M_CHAIN:
                if (keyed || delta == 0)
                    continue; /* shifting a 0 -> 0 edge enters and leaves its new value once: still a chain */
                set_kvi(ret, "before", before + 1000003);
                set_kvi(ret, "after", after + 1000003);
                return 1;
            case M_BOUND:
                if (kvi(inv, "floor", 0) != 1 || delta >= 0)
                    continue;
                set_kvi(ret, "after", -1);
                set_kvi(ret, "before", -1 - delta);
                return 1;
            case M_REPLAY:
                if (kvi(*ret, "rep", 0) != 1)
                    continue;
                set_kvi(ret, "before", before + 1);
                set_kvi(ret, "after", after + 1);
                return 1;
            case M_UNKNOWN:
                if (keyed)
                    continue;
                set_kvi(ret, "rc", ZKC_EUNKNOWN);
                return 1;
            case M_CALLBACK: {
                if (!strstr(*ret, "cb=1"))
                    continue;
                char *dup = strdup(*ret); /* before the array may move */
                if (f->n == f->cap) {
                    f->cap *= 2;
                    f->l = realloc(f->l, (size_t)f->cap * sizeof *f->l);
                }
                f->l[f->n++] = dup;
                return 1;
            }
            case M_INCOMPLETE:
                if (kvi(inv, "async", 1) != 0)
                    continue;
                free(*ret);
                *ret = NULL;
                return 1;
            }
        }
        return 0;
    }
    case M_WORKER:
        for (int i = 0; i < f->n; i++)
            if (is_ev(f->l[i], "START")) {
                free(f->l[i]);
                f->l[i] = NULL;
                return 1;
            }
        return 0;
    case M_INV_UNITS:
        for (int i = 0; i < f->n; i++) {
            if (!is_ev(f->l[i], "IINV") || !strstr(f->l[i], "op=restock"))
                continue;
            int64_t sku = kvi(f->l[i], "sku", 0);
            if (sku >= 0 && sku < 64 && (inexact_skus >> sku) & 1)
                continue; /* that SKU's total is a range in this history */
            int r = find_id(f, "IRET", kvi(f->l[i], "id", 0), i);
            if (r >= 0 && kvi(f->l[r], "rc", -1) == 0) {
                set_kvi(&f->l[r], "rc", ZKC_EINVAL);
                return 1;
            }
        }
        return 0;
    case M_IDGEN: {
        /* A later id of the block generator repeats an earlier one. */
        int first = -1;
        for (int i = 0; i < f->n; i++) {
            if (!f->l[i] || !is_ev(f->l[i], "GRET") || kvi(f->l[i], "gen", 0) != 0 || kvi(f->l[i], "rc", 1) != 0)
                continue;
            if (first < 0) {
                first = i;
                continue;
            }
            set_kvi(&f->l[i], "id", kvi(f->l[first], "id", 0));
            return 1;
        }
        return 0;
    }
    case M_GUARD:
        /* An applied guarded add of a hold never in doubt: report it fenced. */
        for (int i = 0; i < f->n; i++) {
            if (!f->l[i] || !is_ev(f->l[i], "CINV") || kvi(f->l[i], "guard", 0) != 1 || line_t(f->l[i]) >= calm ||
                has_doubt(f, kvi(f->l[i], "hold", 0)))
                continue;
            int r = find_id(f, "CRET", kvi(f->l[i], "id", 0), i);
            if (r < 0 || kvi(f->l[r], "rc", -1) != 0 || line_t(f->l[r]) >= calm)
                continue;
            set_kvi(&f->l[r], "rc", ZKC_EFENCED);
            return 1;
        }
        return 0;
    case M_ELECT_DOUBLE: {
        /* A term that resigned with no event (before any connection trouble),
         * followed by another granted term of this process: drop its ERESIGN,
         * so it leads on, un-notified, through the next term. */
        int64_t trouble = first_trouble(f);
        for (int i = 0; i < f->n; i++) {
            if (!f->l[i] || !is_ev(f->l[i], "ELEAD") || kvi(f->l[i], "rc", 1) != 0 || line_t(f->l[i]) >= trouble)
                continue;
            int64_t k = kvi(f->l[i], "term", 0);
            int res = -1, next = -1, evs = 0;
            for (int j = 0; j < f->n; j++) {
                if (!f->l[j])
                    continue;
                if (is_ev(f->l[j], "EEV") && kvi(f->l[j], "term", 0) == k)
                    evs = 1;
                else if (is_ev(f->l[j], "ERESIGN") && kvi(f->l[j], "term", 0) == k)
                    res = j;
                else if (j > i && next < 0 && is_ev(f->l[j], "ELEAD") && kvi(f->l[j], "rc", 1) == 0 &&
                         line_t(f->l[j]) < trouble)
                    next = j;
            }
            if (evs || res < 0 || next < 0)
                continue;
            free(f->l[res]);
            f->l[res] = NULL;
            return 1;
        }
        return 0;
    }
    case M_ELECT_TOKEN: {
        /* A later grant of this process reports the token of its first. */
        int first = -1;
        for (int i = 0; i < f->n; i++) {
            if (!f->l[i] || !is_ev(f->l[i], "ELEAD") || kvi(f->l[i], "rc", 1) != 0)
                continue;
            if (first < 0) {
                first = i;
                continue;
            }
            set_kvi(&f->l[i], "token", kvi(f->l[first], "token", 0));
            return 1;
        }
        return 0;
    }
    case M_RL_BOUND: {
        /* Grants from elsewhere in time moved to the start of the busiest
         * window (its slots used twice), until it holds one permit too many. */
        const int64_t win = (int64_t)CH_RL_WINDOW_MS * 1000, at0 = pristine->rl_busiest_at;
        int64_t need = CH_RL_PERMITS + 1 - pristine->rl_busiest;
        if (pristine->rl_permits == 0)
            return 0;
        int *moved = calloc((size_t)f->n + 1, sizeof *moved), nm = 0;
        for (int i = 0; i < f->n && need > 0; i++) {
            if (!f->l[i] || !is_ev(f->l[i], "RRET") || kvi(f->l[i], "rc", 1) != 0)
                continue;
            int inv = find_id(f, "RINV", kvi(f->l[i], "id", 0), 0);
            int64_t at = kvi(f->l[i], "at", 0), n = inv >= 0 ? kvi(f->l[inv], "n", 0) : 0;
            if (n < 1 || (at + (n - 1) * CH_RL_SLOT_US >= at0 && at < at0 + win))
                continue; /* already counted in that window */
            moved[nm++] = i;
            need -= n;
        }
        if (need > 0) {
            free(moved);
            return 0;
        }
        for (int k = 0; k < nm; k++)
            set_kvi(&f->l[moved[k]], "at", at0);
        free(moved);
        return 1;
    }
    case M_RL_INSTANT:
        for (int i = 0; i < f->n; i++)
            if (f->l[i] && is_ev(f->l[i], "RRET") && kvi(f->l[i], "rc", 1) == 0) {
                set_kvi(&f->l[i], "at", kvi(f->l[i], "at", 0) + INT64_C(60000000));
                return 1;
            }
        return 0;
    case M_UNEXPECTED:
        /* A lock acquire that failed (timed out, cancelled, session lost) now
         * says ZKC_ESERVER: no hold changes, only the code; the soak's refused
         * credentials showed as such codes on acquires, which no check read. */
        for (int i = 0; i < f->n; i++)
            if (f->l[i] && is_ev(f->l[i], "LRET") && kvi(f->l[i], "rc", 0) != 0) {
                set_kvi(&f->l[i], "rc", ZKC_ESERVER);
                return 1;
            }
        return 0;
    case M_INV_DOUBLE:
        /* A request confirmed (sold) at the end: claim it asked for nothing. */
        for (int i = 0; i < f->n; i++) {
            if (!is_ev(f->l[i], "IINV") || !strstr(f->l[i], "op=confirm"))
                continue;
            int r = find_id(f, "IRET", kvi(f->l[i], "id", 0), i);
            const char *rid = kv(f->l[i], "rid");
            if (r < 0 || kvi(f->l[r], "rc", -1) != 0 || !rid)
                continue;
            char pat[96];
            snprintf(pat, sizeof pat, "op=reserve rid=%.*s ", (int)strcspn(rid, " \n"), rid);
            for (int j = 0; j < i; j++)
                if (is_ev(f->l[j], "IINV") && strstr(f->l[j], pat)) {
                    set_kvi(&f->l[j], "q0", 0);
                    set_kvi(&f->l[j], "q1", 0);
                    return 1;
                }
        }
        return 0;
    }
    return 0;
}

static int copy_file(const char *from, const char *to)
{
    lines f;
    if (lines_load(&f, from) != 0)
        return -1;
    int rc = lines_save(&f, to);
    lines_free(&f);
    return rc;
}

/* Runs every mutation on copies of in->dir's histories. Returns the number
 * of mutations the checker missed; *tested counts those that could be
 * planted in this run's history. */
int ch_selftest(const ch_check_in *in, const ch_check_out *pristine, int *tested, int *skipped)
{
    char mdir[4200];
    snprintf(mdir, sizeof mdir, "%s/mut", in->dir);
    mkdir(mdir, 0700);
    int missed = 0;
    *tested = *skipped = 0;
    for (int m = 0; m < M_N; m++) {
        /* Fresh copies, then plant the mutation in the first worker whose history allows it. */
        int applied = 0;
        /* The counter mutations are planted twice in one copy, on a direct add
         * and on a queued one (different counters), and each counter planted
         * on must fail: both modes are held to the checks for the cost of one. */
        int nvar = (m == M_SUM || m == M_CHAIN || m == M_BOUND) && in->shape->queued ? 2 : 1;
        int vctr[2] = {-1, -1};
        for (int wid = 0; wid <= in->last_wid; wid++) {
            char a[4300], b[4300];
            snprintf(a, sizeof a, "%s/hist-%d.log", in->dir, wid);
            snprintf(b, sizeof b, "%s/hist-%d.log", mdir, wid);
            if (access(a, R_OK) == 0)
                copy_file(a, b);
        }
        int vapplied[2] = {0, 0};
        for (int v = 0; v < nvar; v++)
            for (int wid = in->first_wid; wid <= in->last_wid && !vapplied[v]; wid++) {
                char b[4300];
                snprintf(b, sizeof b, "%s/hist-%d.log", mdir, wid);
                lines f;
                if (lines_load(&f, b) != 0)
                    continue;
                int ctr = -1;
                if (mutate(m, &f, pristine, in->shape, v, &ctr)) {
                    vapplied[v] = 1;
                    vctr[v] = ctr;
                    lines_save(&f, b);
                }
                lines_free(&f);
            }
        applied = vapplied[0] || vapplied[1];
        if (!applied) {
            printf("self-test: %-24s not testable in this history (%s)\n", ch_vnames[muts[m].kind], muts[m].what);
            (*skipped)++;
            continue;
        }
        ch_check_in mi = *in;
        mi.dir = mdir;
        mi.quiet = getenv("ZKC_CHAOS_MUT_LOUD") ? 0 : 1; /* loud: the checkers' reports on each mutation */
        mi.no_side_effects = 1;
        ch_check_out o;
        memset(&o, 0, sizeof o);
        ch_check(&mi, &o);
        int caught = o.violations[muts[m].kind] > 0;
        for (int v = 0; v < nvar && (m == M_SUM || m == M_CHAIN || m == M_BOUND); v++)
            if (vapplied[v] && vctr[v] >= 0 && vctr[v] < 64 && !((o.counter_viol >> vctr[v]) & 1))
                caught = 0; /* the planted counter itself must fail */
        if (getenv("ZKC_CHAOS_DEBUG_MUT") && !caught) {
            char cmd[9000];
            snprintf(cmd, sizeof cmd, "cp -r '%s' '%s/mut-%d'", mdir, in->dir, m);
            if (system(cmd) != 0)
                printf("self-test: cannot keep %s\n", mdir);
        }
        (*tested)++;
        if (!caught)
            missed++;
        printf("self-test: %-24s %s (%s%s)\n", ch_vnames[muts[m].kind], caught ? "caught" : "MISSED", muts[m].what,
               nvar < 2                    ? ""
               : vapplied[0] && vapplied[1] ? "; on a direct add and on a queued one"
               : vapplied[1]               ? "; on a queued add only: no direct one plantable"
                                           : "; on a direct add only: no queued one plantable");
    }
    /* Clean the copies. */
    DIR *d = opendir(mdir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.')
                continue;
            char p[4600];
            snprintf(p, sizeof p, "%s/%s", mdir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(mdir);
    return missed;
}
