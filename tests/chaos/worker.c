/* zkc-chaos worker: one client process of the workload (see chaos.h).
 *
 * Threads: lock threads (mutexes; read/write locks), counter threads (async
 * adds, many outstanding, some keyed, some deliberate replays), stock threads
 * (bounded adds with floor 0, multi-counter takes), inventory threads, order
 * numbers, an election, a hard rate limiter. Every
 * call is logged before it is made (INV) and when it returns (RET); async
 * completions are logged from the callback (cb=1). Critical sections write
 * (lock path, token) to the fenced resource in shared memory.
 *
 * A hold is "in doubt" from any SUSPENDED/LOST the process heard since the
 * acquire was invoked, any lock event for it, or zkc_lock_is_held() == 0: the
 * holder then stops writing and releases.
 *
 * Stops on SIGTERM: finishes what is in flight (bounded), releases, destroys
 * everything, logs END.
 */
#include "chaos.h"

#include <errno.h>
#include <execinfo.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

extern __typeof__(zkc_inventory_create) zkc_inventory_create __attribute__((weak));
extern __typeof__(zkc_inventory_destroy) zkc_inventory_destroy __attribute__((weak));
extern __typeof__(zkc_inventory_restock) zkc_inventory_restock __attribute__((weak));
extern __typeof__(zkc_inventory_reserve) zkc_inventory_reserve __attribute__((weak));
extern __typeof__(zkc_inventory_confirm) zkc_inventory_confirm __attribute__((weak));
extern __typeof__(zkc_inventory_return) zkc_inventory_return __attribute__((weak));
extern __typeof__(zkc_inventory_lookup) zkc_inventory_lookup __attribute__((weak));
extern __typeof__(zkc_inventory_reap) zkc_inventory_reap __attribute__((weak));

typedef struct wstate {
    ch_shape sh;
    int wid;
    const char *dir;
    const char *hosts;
    uint64_t seed;
    ch_hist *h;
    ch_shm *m;
    ch_wslot *slot;
    zkc_client *c;
    zkc_counter *ctr[CH_MAX_COUNTERS];
    int stop;          /* atomic */
    uint64_t opseq;    /* atomic */
    int doubt_epoch;   /* atomic: SUSPENDED/LOST heard so far */
    int op_timeout_ms;
} wstate;

static wstate W;

static uint64_t next_id(void)
{
    return __atomic_add_fetch(&W.opseq, 1, __ATOMIC_RELAXED);
}

static int stopping(void)
{
    return __atomic_load_n(&W.stop, __ATOMIC_ACQUIRE);
}

static void deadline_in(struct timespec *ts, int ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static void cond_init_mono(pthread_cond_t *cv)
{
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(cv, &a);
    pthread_condattr_destroy(&a);
}

/* ---------------------------------------------------------------- session */

static const char *state_name(zkc_state s)
{
    switch (s) {
    case ZKC_STATE_CONNECTED: return "CONNECTED";
    case ZKC_STATE_SUSPENDED: return "SUSPENDED";
    case ZKC_STATE_RECONNECTED: return "RECONNECTED";
    case ZKC_STATE_LOST: return "LOST";
    }
    return "?";
}

static void publish_session(void)
{
    int64_t sid = 0;
    char pw[16];
    int pl = 0;
    if (zkc_client_session(W.c, &sid, pw, &pl) != 0)
        return;
    ch_robust_lock(&W.slot->mu);
    W.slot->session_id = sid;
    memcpy(W.slot->passwd, pw, sizeof pw);
    W.slot->passwd_len = pl;
    pthread_mutex_unlock(&W.slot->mu);
}

static void on_state(zkc_client *c, zkc_state st, void *ud)
{
    (void)c;
    (void)ud;
    if (st == ZKC_STATE_SUSPENDED || st == ZKC_STATE_LOST)
        __atomic_add_fetch(&W.doubt_epoch, 1, __ATOMIC_ACQ_REL);
    if (st == ZKC_STATE_LOST)
        __atomic_add_fetch(&W.slot->sessions_lost, 1, __ATOMIC_RELAXED);
    int64_t sid = 0;
    zkc_client_session(W.c, &sid, NULL, NULL);
    ch_log(W.h, "STATE st=%s sid=%" PRIx64, state_name(st), (uint64_t)sid);
    if (st == ZKC_STATE_CONNECTED || st == ZKC_STATE_RECONNECTED)
        publish_session();
}

static void on_log(zkc_log_level lvl, const char *msg, void *ud)
{
    (void)ud;
    static const char *names[] = {"ERROR", "WARN", "INFO", "DEBUG"};
    fprintf(stderr, "%.3f w%d %s %s\n", ch_now_ns() / 1e9, W.wid, names[lvl & 3], msg);
}

/* Results whose message is worth keeping in the history (the rest are routine). */
static int odd(int rc)
{
    return rc != 0 && rc != ZKC_ETIMEDOUT && rc != ZKC_ECANCELED && rc != ZKC_EBOUND;
}

/* ---------------------------------------------------------------- fenced resource */

static int fence_write(int pidx, char kind, int64_t token, uint64_t hold)
{
    ch_fence *f = &W.m->fence[pidx];
    int64_t hid = ((int64_t)W.wid << 32) | (int64_t)(hold & 0xffffffffu);
    ch_robust_lock(&f->mu);
    int64_t ma = f->max_all, me = f->max_excl;
    int ok;
    if (kind == 'R')
        ok = token > f->max_excl;
    else
        ok = token >= f->max_all && (token > f->max_excl || f->excl_hold == hid);
    if (ok) {
        if (token > f->max_all)
            f->max_all = token;
        if (kind != 'R') {
            f->max_excl = token;
            f->excl_hold = hid;
        }
        f->accepted++;
    } else {
        f->rejected++;
    }
    /* Logged inside the resource's mutex: the log order is its order. */
    ch_log(W.h, "FENCE id=%" PRIu64 " path=%d kind=%c token=%" PRId64 " ok=%d max_all=%" PRId64 " max_excl=%" PRId64,
           hold, pidx, kind, token, ok, ma, me);
    pthread_mutex_unlock(&f->mu);
    return ok;
}

/* ---------------------------------------------------------------- lock threads */

typedef struct lthread {
    int idx;
    int rw; /* 0 mutex thread, 1 read/write thread */
    uint64_t rng;
    zkc_lock *locks[CH_MAX_LOCKS];
    zkc_rwlock *rws[CH_MAX_LOCKS];
    pthread_mutex_t mu; /* guards cur, cur_id */
    zkc_lock *cur;
    uint64_t cur_id;
    int doubt; /* atomic */
    int broken[CH_MAX_LOCKS];
} lthread;

typedef struct acq_wait {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
    int rc;
    int64_t token;
    uint64_t id;
} acq_wait;

static void lock_event(zkc_lock *l, zkc_lock_event ev, void *ud)
{
    lthread *t = ud;
    pthread_mutex_lock(&t->mu);
    uint64_t id = t->cur == l ? t->cur_id : 0;
    if (id && ev != ZKC_LOCK_EVENT_RECONNECTED)
        __atomic_store_n(&t->doubt, 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&t->mu);
    if (id && ev == ZKC_LOCK_EVENT_LOST) /* the soak asserts these fire while a lock is held */
        __atomic_add_fetch(&W.slot->locks_lost, 1, __ATOMIC_RELAXED);
    ch_log(W.h, "LEV id=%" PRIu64 " ev=%s", id,
           ev == ZKC_LOCK_EVENT_SUSPENDED ? "SUSPENDED" : ev == ZKC_LOCK_EVENT_LOST ? "LOST" : "RECONNECTED");
}

static void acq_cb(zkc_lock *l, int status, int64_t token, void *ud)
{
    (void)l;
    acq_wait *a = ud;
    ch_log(W.h, "LRET id=%" PRIu64 " rc=%d token=%" PRId64 " cb=1%s%s", a->id, status, token,
           odd(status) ? " msg=" : "", odd(status) ? zkc_errmsg() : "");
    pthread_mutex_lock(&a->mu);
    a->done++;
    a->rc = status;
    a->token = token;
    pthread_cond_broadcast(&a->cv);
    pthread_mutex_unlock(&a->mu);
}

/* One add of 1 to /chaos/guarded per hold, guarded by it (in doubt too: the
 * server decides, ZKC_EFENCED once the hold's node is gone). Logged as an
 * ordinary unkeyed counter add (guard=1, hold=<lock op id>), so check.c's
 * counter_sum and counter_chain judge the counter: its final value is its
 * start plus the adds reported applied, ZKC_EFENCED counting as not applied
 * (header: nothing written). */
static void guarded_add(zkc_lock *l, uint64_t hold)
{
    zkc_guard g;
    if (zkc_lock_guard(l, &g) != 0) {
        ch_log(W.h, "GUARDERR hold=%" PRIu64 " msg=%s", hold, zkc_errmsg());
        return;
    }
    int ctr = W.sh.counters + W.sh.stocks;
    uint64_t id = next_id();
    zkc_update u;
    memset(&u, 0, sizeof u);
    u.guard = &g;
    ch_log(W.h, "CINV id=%" PRIu64 " ctr=%d delta=1 key=- floor=0 async=0 rep=0 guard=1 hold=%" PRIu64, id, ctr,
           hold);
    zkc_counter_result r = {0, 0, 0};
    int rc = zkc_counter_add(W.ctr[ctr], 1, &u, &r);
    ch_log(W.h, "CRET id=%" PRIu64 " rc=%d before=%" PRId64 " after=%" PRId64 " rep=%d%s%s", id, rc, r.before,
           r.after, r.replayed, odd(rc) ? " msg=" : "", odd(rc) ? zkc_errmsg() : "");
    if (rc == 0)
        __atomic_add_fetch(&W.slot->updates, 1, __ATOMIC_RELAXED);
}

static void critical(lthread *t, zkc_lock *l, uint64_t id, int pidx, char kind, int64_t token, int epoch0)
{
    pthread_mutex_lock(&t->mu);
    t->cur = l;
    t->cur_id = id;
    __atomic_store_n(&t->doubt, 0, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&t->mu);
    __atomic_add_fetch(&W.slot->held, 1, __ATOMIC_ACQ_REL);
    __atomic_add_fetch(&W.slot->acquisitions, 1, __ATOMIC_RELAXED);
    int n = ch_randint(&t->rng, 1, 3);
    for (int k = 0; k < n; k++) {
        if (__atomic_load_n(&t->doubt, __ATOMIC_ACQUIRE) ||
            __atomic_load_n(&W.doubt_epoch, __ATOMIC_ACQUIRE) != epoch0) {
            ch_log(W.h, "DOUBT id=%" PRIu64 " why=event", id);
            break;
        }
        if (!zkc_lock_is_held(l)) {
            ch_log(W.h, "DOUBT id=%" PRIu64 " why=is_held", id);
            break;
        }
        int64_t tk = 0;
        int rc = zkc_lock_token(l, &tk);
        if (rc != 0 || tk != token) {
            ch_log(W.h, "DOUBT id=%" PRIu64 " why=token rc=%d token=%" PRId64, id, rc, tk);
            break;
        }
        fence_write(pidx, kind, token, id);
        if (k + 1 < n)
            ch_nap_ms(ch_randint(&t->rng, 0, 3)); /* hold it a little: overlaps become visible */
    }
    guarded_add(l, id);
    __atomic_sub_fetch(&W.slot->held, 1, __ATOMIC_ACQ_REL);
    ch_log(W.h, "EXIT id=%" PRIu64, id);
    int rc = zkc_lock_release(l);
    ch_log(W.h, "REL id=%" PRIu64 " rc=%d", id, rc);
    pthread_mutex_lock(&t->mu);
    t->cur = NULL;
    t->cur_id = 0;
    pthread_mutex_unlock(&t->mu);
}

static void lock_round(lthread *t)
{
    int nm = W.sh.mutex_paths, nr = W.sh.rw_paths;
    int pidx;
    zkc_lock *l;
    char kind;
    if (!t->rw) {
        int i = ch_randint(&t->rng, 0, nm - 1);
        pidx = i;
        l = t->locks[i];
        kind = 'M';
    } else {
        int i = ch_randint(&t->rng, 0, nr - 1);
        pidx = nm + i;
        int rd = ch_randint(&t->rng, 0, 99) < 70;
        l = rd ? zkc_rwlock_read(t->rws[i]) : zkc_rwlock_write(t->rws[i]);
        kind = rd ? 'R' : 'W';
    }
    if (!l || t->broken[pidx])
        return;
    int to = ch_randint(&t->rng, 500, 6000);
    int async = ch_randint(&t->rng, 0, 99) < 30;
    uint64_t id = next_id();
    int epoch0 = __atomic_load_n(&W.doubt_epoch, __ATOMIC_ACQUIRE);
    ch_log(W.h, "LINV id=%" PRIu64 " path=%d kind=%c async=%d to=%d", id, pidx, kind, async, to);
    if (!async) {
        int64_t token = 0;
        int rc = zkc_lock_acquire(l, to, &token);
        ch_log(W.h, "LRET id=%" PRIu64 " rc=%d token=%" PRId64 "%s%s", id, rc, token, odd(rc) ? " msg=" : "",
               odd(rc) ? zkc_errmsg() : "");
        if (rc == 0)
            critical(t, l, id, pidx, kind, token, epoch0);
        return;
    }
    acq_wait *a = calloc(1, sizeof *a);
    if (!a)
        abort();
    pthread_mutex_init(&a->mu, NULL);
    cond_init_mono(&a->cv);
    a->id = id;
    int rc = zkc_lock_acquire_async(l, to, acq_cb, a);
    if (rc != 0) {
        ch_log(W.h, "REJ id=%" PRIu64 " rc=%d", id, rc);
        free(a);
        return;
    }
    if (ch_randint(&t->rng, 0, 99) < 20) {
        /* Cancel racing the grant: either it holds (and we release) or
         * ECANCELED (and no node is left). */
        ch_nap_ms(ch_randint(&t->rng, 0, 30));
        int crc = zkc_lock_cancel(l);
        ch_log(W.h, "LCANCEL id=%" PRIu64 " rc=%d", id, crc);
    }
    /* Bounded: the acquire's own timeout, then every round trip it may still
     * make (operation timeout each), plus slack for a loaded machine. */
    struct timespec dl;
    deadline_in(&dl, to + 3 * W.op_timeout_ms + 10000);
    pthread_mutex_lock(&a->mu);
    while (!a->done)
        if (pthread_cond_timedwait(&a->cv, &a->mu, &dl) == ETIMEDOUT)
            break;
    int done = a->done, arc = a->rc;
    int64_t token = a->token;
    pthread_mutex_unlock(&a->mu);
    if (!done) {
        /* The callback never came: a violation; this object is unusable now
         * (its acquire is still pending), and `a` must stay allocated. */
        ch_log(W.h, "HANG id=%" PRIu64 " what=lock_acquire_async", id);
        t->broken[pidx] = 1;
        return;
    }
    if (arc == 0)
        critical(t, l, id, pidx, kind, token, epoch0);
    pthread_mutex_destroy(&a->mu);
    pthread_cond_destroy(&a->cv);
    free(a);
}

static void *lock_thread(void *arg)
{
    lthread *t = arg;
    char p[256];
    int nm = W.sh.mutex_paths;
    if (!t->rw) {
        for (int i = 0; i < nm; i++) {
            ch_lock_path(&W.sh, i, p, sizeof p);
            if (zkc_lock_create(W.c, p, &t->locks[i]) != 0) {
                ch_log(W.h, "ERROR what=lock_create path=%s msg=%s", p, zkc_errmsg());
                continue;
            }
            zkc_lock_set_listener(t->locks[i], lock_event, t);
        }
    } else {
        for (int i = 0; i < W.sh.rw_paths; i++) {
            ch_lock_path(&W.sh, nm + i, p, sizeof p);
            if (zkc_rwlock_create(W.c, p, &t->rws[i]) != 0) {
                ch_log(W.h, "ERROR what=rwlock_create path=%s msg=%s", p, zkc_errmsg());
                continue;
            }
            zkc_lock_set_listener(zkc_rwlock_read(t->rws[i]), lock_event, t);
            zkc_lock_set_listener(zkc_rwlock_write(t->rws[i]), lock_event, t);
        }
    }
    while (!stopping()) {
        lock_round(t);
        if (W.sh.lock_think_ms > 0)
            ch_nap_ms(ch_randint(&t->rng, 0, W.sh.lock_think_ms)); /* think time (pacing) */
    }
    for (int i = 0; i < CH_MAX_LOCKS; i++) {
        if (t->locks[i] && !t->broken[i])
            zkc_lock_destroy(t->locks[i]);
        if (t->rws[i] && !t->broken[nm + i])
            zkc_rwlock_destroy(t->rws[i]);
    }
    return NULL;
}

/* ---------------------------------------------------------------- counter threads */

#define RING 256

typedef struct ring_ent {
    char key[48];
    int ctr;
    int64_t delta;
    int floor;
} ring_ent;

typedef struct cthread {
    int idx;
    int stock; /* 0: plain counters, async window; 1: stock counters */
    uint64_t rng;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int outstanding;
    ring_ent ring[RING];
    int nring;
    char (*lookups)[48];
    int nlookups, caplookups;
} cthread;

typedef struct cop {
    cthread *t;
    uint64_t id;
    int ctr;
    int64_t delta;
    int replay;
    int floor;
    char key[48];
} cop;

static void remember(cthread *t, const char *key, int ctr, int64_t delta, int floor)
{
    ring_ent *e = &t->ring[t->nring < RING ? t->nring++ : (int)(ch_rand(&t->rng) % RING)];
    snprintf(e->key, sizeof e->key, "%s", key);
    e->ctr = ctr;
    e->delta = delta;
    e->floor = floor;
}

static void want_lookup(cthread *t, const char *key)
{
    if (t->nlookups == t->caplookups) {
        int nc = t->caplookups ? t->caplookups * 2 : 64;
        void *p = realloc(t->lookups, (size_t)nc * sizeof *t->lookups);
        if (!p)
            return;
        t->lookups = p;
        t->caplookups = nc;
    }
    snprintf(t->lookups[t->nlookups++], 48, "%s", key);
}

static void add_cb(zkc_counter *ctr, int status, const zkc_counter_result *r, void *ud)
{
    (void)ctr;
    cop *o = ud;
    cthread *t = o->t;
    zkc_counter_result z = {0, 0, 0};
    if (!r)
        r = &z;
    ch_log(W.h, "CRET id=%" PRIu64 " rc=%d before=%" PRId64 " after=%" PRId64 " rep=%d cb=1%s%s", o->id, status,
           r->before, r->after, r->replayed, odd(status) ? " msg=" : "", odd(status) ? zkc_errmsg() : "");
    if (status == 0)
        __atomic_add_fetch(&W.slot->updates, 1, __ATOMIC_RELAXED);
    pthread_mutex_lock(&t->mu);
    if (status == 0 && o->key[0] && !o->replay)
        remember(t, o->key, o->ctr, o->delta, o->floor);
    if (status == ZKC_EUNKNOWN && o->key[0])
        want_lookup(t, o->key);
    t->outstanding--;
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
    free(o);
}

static void do_lookups(cthread *t)
{
    for (;;) {
        char key[48];
        pthread_mutex_lock(&t->mu);
        if (t->nlookups == 0) {
            pthread_mutex_unlock(&t->mu);
            return;
        }
        snprintf(key, sizeof key, "%s", t->lookups[--t->nlookups]);
        pthread_mutex_unlock(&t->mu);
        zkc_counter_result r = {0, 0, 0};
        int rc = zkc_counter_lookup(W.c, key, &r);
        ch_log(W.h, "LOOKUP key=%s rc=%d before=%" PRId64 " after=%" PRId64, key, rc, r.before, r.after);
        if (rc != 0 && rc != ZKC_ENONODE) {
            pthread_mutex_lock(&t->mu);
            want_lookup(t, key); /* again later; the driver looks it up at the end anyway */
            pthread_mutex_unlock(&t->mu);
            return;
        }
    }
}

/* Submit one async add; the window is t->outstanding. */
static void submit_add(cthread *t, int ctr, int64_t delta, const char *key, int keyed, int floor, int replay)
{
    cop *o = calloc(1, sizeof *o);
    if (!o)
        abort();
    o->t = t;
    o->id = next_id();
    char kbuf[48];
    if (!key && keyed) {
        snprintf(kbuf, sizeof kbuf, "%c%d-%" PRIu64, t->stock ? 's' : 'k', W.wid, o->id);
        key = kbuf;
    }
    o->ctr = ctr;
    o->delta = delta;
    o->floor = floor;
    o->replay = replay;
    if (key)
        snprintf(o->key, sizeof o->key, "%s", key);
    zkc_update u;
    memset(&u, 0, sizeof u);
    u.key = key;
    if (floor) {
        u.bounds.has_floor = 1;
        u.bounds.floor = 0;
    }
    ch_log(W.h, "CINV id=%" PRIu64 " ctr=%d delta=%" PRId64 " key=%s floor=%d async=1 rep=%d", o->id, ctr, delta,
           key ? key : "-", floor, replay);
    pthread_mutex_lock(&t->mu);
    t->outstanding++;
    pthread_mutex_unlock(&t->mu);
    uint64_t id = o->id;
    int rc = zkc_counter_add_async(W.ctr[ctr], delta, (key || floor) ? &u : NULL, add_cb, o);
    if (rc != 0) {
        ch_log(W.h, "REJ id=%" PRIu64 " rc=%d", id, rc);
        pthread_mutex_lock(&t->mu);
        t->outstanding--;
        pthread_mutex_unlock(&t->mu);
        free(o);
    }
}

static void sync_add(cthread *t, int ctr, int64_t delta, int keyed, int floor)
{
    uint64_t id = next_id();
    char kbuf[48];
    const char *key = NULL;
    if (keyed) {
        snprintf(kbuf, sizeof kbuf, "s%d-%" PRIu64, W.wid, id);
        key = kbuf;
    }
    zkc_update u;
    memset(&u, 0, sizeof u);
    u.key = key;
    if (floor) {
        u.bounds.has_floor = 1;
        u.bounds.floor = 0;
    }
    ch_log(W.h, "CINV id=%" PRIu64 " ctr=%d delta=%" PRId64 " key=%s floor=%d async=0 rep=0", id, ctr, delta,
           key ? key : "-", floor);
    zkc_counter_result r = {0, 0, 0};
    int rc = zkc_counter_add(W.ctr[ctr], delta, (key || floor) ? &u : NULL, &r);
    ch_log(W.h, "CRET id=%" PRIu64 " rc=%d before=%" PRId64 " after=%" PRId64 " rep=%d%s%s", id, rc, r.before,
           r.after, r.replayed, odd(rc) ? " msg=" : "", odd(rc) ? zkc_errmsg() : "");
    if (rc == 0)
        __atomic_add_fetch(&W.slot->updates, 1, __ATOMIC_RELAXED);
    pthread_mutex_lock(&t->mu);
    if (rc == 0 && key)
        remember(t, key, ctr, delta, floor);
    if (rc == ZKC_EUNKNOWN && key)
        want_lookup(t, key);
    pthread_mutex_unlock(&t->mu);
}

static void multi_take(cthread *t)
{
    int ns = W.sh.stocks;
    if (ns < 2)
        return;
    int a = ch_randint(&t->rng, 0, ns - 1);
    int b = (a + ch_randint(&t->rng, 1, ns - 1)) % ns;
    int ca = W.sh.counters + a, cb = W.sh.counters + b;
    int64_t da = -ch_randint(&t->rng, 1, 3), db = -ch_randint(&t->rng, 1, 3);
    uint64_t id = next_id();
    char key[48];
    snprintf(key, sizeof key, "m%d-%" PRIu64, W.wid, id);
    zkc_counter_op ops[2];
    memset(ops, 0, sizeof ops);
    ops[0].counter = W.ctr[ca];
    ops[0].delta = da;
    ops[0].bounds.has_floor = 1;
    ops[1].counter = W.ctr[cb];
    ops[1].delta = db;
    ops[1].bounds.has_floor = 1;
    zkc_counter_result res[2];
    memset(res, 0, sizeof res);
    int fi = -1;
    ch_log(W.h, "MINV id=%" PRIu64 " key=%s c0=%d d0=%" PRId64 " c1=%d d1=%" PRId64, id, key, ca, da, cb, db);
    int rc = zkc_counter_multi_add(W.c, ops, 2, key, res, &fi);
    ch_log(W.h,
           "MRET id=%" PRIu64 " rc=%d fi=%d b0=%" PRId64 " a0=%" PRId64 " b1=%" PRId64 " a1=%" PRId64 " rep=%d", id,
           rc, fi, res[0].before, res[0].after, res[1].before, res[1].after, res[0].replayed);
    if (rc == 0)
        __atomic_add_fetch(&W.slot->updates, 2, __ATOMIC_RELAXED);
    if (rc == ZKC_EUNKNOWN) {
        pthread_mutex_lock(&t->mu);
        want_lookup(t, key);
        pthread_mutex_unlock(&t->mu);
    }
}

static int wait_window(cthread *t, int limit, int ms)
{
    struct timespec dl;
    deadline_in(&dl, ms);
    pthread_mutex_lock(&t->mu);
    while (t->outstanding > limit)
        if (pthread_cond_timedwait(&t->cv, &t->mu, &dl) == ETIMEDOUT)
            break;
    int ok = t->outstanding <= limit;
    pthread_mutex_unlock(&t->mu);
    return ok;
}

static void *counter_thread(void *arg)
{
    cthread *t = arg;
    int window = t->stock ? 4 : W.sh.window;
    /* A window that never drains means lost callbacks: the bound is generous
     * (every add may retry through a whole outage) but finite. */
    int drain_ms = 6 * W.op_timeout_ms + 30000;
    int rate = t->stock ? W.sh.stock_rate : W.sh.counter_rate;
    int64_t next_ns = ch_now_ns();
    while (!stopping()) {
        if (rate > 0) {
            /* Pacing: one operation per 1/rate s on average (bounded history size). */
            next_ns += 1000000000LL / rate;
            int64_t ahead = next_ns - ch_now_ns();
            if (ahead > 0)
                ch_nap_ms((int)(ahead / 1000000));
            else if (ahead < -1000000000LL)
                next_ns = ch_now_ns(); /* fell behind (a fault): do not burst */
        }
        if (!wait_window(t, window - 1, drain_ms)) {
            ch_log(W.h, "HANG what=counter_window outstanding=%d", t->outstanding);
            break;
        }
        if (stopping())
            break;
        do_lookups(t);
        uint64_t r = ch_rand(&t->rng) % 100;
        if (!t->stock) {
            int ctr = ch_randint(&t->rng, 0, W.sh.counters - 1);
            int64_t delta = ch_randint(&t->rng, -3, 7);
            pthread_mutex_lock(&t->mu);
            int replay = t->nring > 0 && r < 2;
            ring_ent e;
            if (replay)
                e = t->ring[ch_rand(&t->rng) % (uint64_t)t->nring];
            pthread_mutex_unlock(&t->mu);
            if (replay)
                submit_add(t, e.ctr, e.delta, e.key, 1, e.floor, 1);
            else
                submit_add(t, ctr, delta, NULL, (int)(ch_rand(&t->rng) % 100) < W.sh.keyed_pct, 0, 0);
            continue;
        }
        /* Stock: takes refused below 0, restocks, all-or-nothing multi takes. */
        int s = W.sh.counters + ch_randint(&t->rng, 0, W.sh.stocks - 1);
        int keyed = ch_randint(&t->rng, 0, 1);
        if (r < 40)
            sync_add(t, s, -ch_randint(&t->rng, 1, 3), keyed, 1);
        else if (r < 60)
            sync_add(t, s, ch_randint(&t->rng, 2, 6), keyed, 0);
        else if (r < 80)
            multi_take(t);
        else
            submit_add(t, s, -ch_randint(&t->rng, 1, 3), NULL, keyed, 1, 0);
    }
    if (!wait_window(t, 0, drain_ms))
        ch_log(W.h, "HANG what=counter_drain outstanding=%d", t->outstanding);
    do_lookups(t);
    return NULL;
}

/* ---------------------------------------------------------------- order numbers */

/* One thread, two generators on shared paths: blocks (4..16, growing) and
 * gap-free. GRET gen=<0 blocks|1 gap-free> rc id: check.c wants no id twice
 * per path across every worker and fault, and ids increasing within a
 * generator (gap-free: except the one id a re-sent key hands out after
 * ZKC_EUNKNOWN). Paced at 20 calls/s. */
static void *idgen_thread(void *arg)
{
    uint64_t rng = *(uint64_t *)arg;
    zkc_idgen *g[2] = {NULL, NULL};
    for (int k = 0; k < 2; k++) {
        zkc_idgen_options o;
        zkc_idgen_options_init(&o);
        o.block = 4;
        o.max_block = 16;
        o.grow_ms = 200;
        o.gap_free = k;
        if (zkc_idgen_create(W.c, k ? CH_ROOT "/ids-gf" : CH_ROOT "/ids", &o, &g[k]) != 0) {
            ch_log(W.h, "ERROR what=idgen_create msg=%s", zkc_errmsg());
            return NULL;
        }
    }
    while (!stopping()) {
        int k = (int)(ch_rand(&rng) % 2);
        int64_t id = 0;
        int rc = zkc_idgen_next(g[k], 5000, &id);
        ch_log(W.h, "GRET gen=%d rc=%d id=%" PRId64, k, rc, rc == 0 ? id : 0);
        ch_nap_ms(50);
    }
    zkc_idgen_destroy(g[0]);
    zkc_idgen_destroy(g[1]);
    return NULL;
}

/* ---------------------------------------------------------------- hard rate limit */

/* One thread takes permits from the hard limiter at CH_RL_PATH (every worker
 * the same configuration, its own batch: 1..3 by worker id), flat out, 1..burst
 * at a time, 30 % through the async twin; with the 4 workers the demand is far
 * above the limit, so the limiter is saturated and the bound is tested where
 * it binds. Each call: RINV id n async real (CLOCK_REALTIME us before), then
 * RRET id rc at real [cb=1]: `at` is the servers' instant the grant counted
 * at (zkc_ratelimit_acquire_at), `real` our real clock after it. check.c
 * (check_ratelimit) wants at most CH_RL_PERMITS slot starts in any
 * CH_RL_WINDOW_MS over every worker's grants. */
static int64_t real_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done, status;
} rl_async;

static void rl_cb(zkc_ratelimit *rl, int status, int64_t at_us, void *ud)
{
    (void)rl;
    uint64_t id = (uint64_t)(uintptr_t)ud;
    ch_log(W.h, "RRET id=%" PRIu64 " rc=%d at=%" PRId64 " real=%" PRId64 " cb=1", id, status, at_us, real_us());
    pthread_mutex_lock(&rl_async.mu);
    rl_async.done = 1;
    rl_async.status = status;
    pthread_cond_signal(&rl_async.cv);
    pthread_mutex_unlock(&rl_async.mu);
}

static void *ratelimit_thread(void *arg)
{
    uint64_t rng = *(uint64_t *)arg;
    pthread_mutex_init(&rl_async.mu, NULL);
    cond_init_mono(&rl_async.cv);
    zkc_ratelimit_options o;
    zkc_ratelimit_options_init(&o);
    o.mode = ZKC_RL_HARD;
    o.permits = CH_RL_PERMITS;
    o.window_ms = CH_RL_WINDOW_MS;
    o.burst = CH_RL_BURST;
    o.batch = 1 + W.wid % 3;
    zkc_ratelimit *rl = NULL;
    if (zkc_ratelimit_create_opts(W.c, CH_RL_PATH, &o, &rl) != 0) {
        ch_log(W.h, "ERROR what=ratelimit_create msg=%s", zkc_errmsg());
        return NULL;
    }
    while (!stopping()) {
        uint64_t id = next_id();
        int n = ch_randint(&rng, 1, CH_RL_BURST);
        int async = ch_randint(&rng, 1, 100) <= 30;
        ch_log(W.h, "RINV id=%" PRIu64 " n=%d async=%d real=%" PRId64, id, n, async, real_us());
        int64_t t0 = ch_now_ns();
        if (!async) {
            int64_t at = 0;
            int rc = zkc_ratelimit_acquire_at(rl, n, 2000, &at);
            ch_log(W.h, "RRET id=%" PRIu64 " rc=%d at=%" PRId64 " real=%" PRId64, id, rc, at, real_us());
            /* A refusal at once (the reserved slots lie beyond the timeout, as
             * after a leader stall inflates the lead) would spin: pace it. */
            if (rc != 0 && (rc != ZKC_ETIMEDOUT || ch_now_ns() - t0 < 100000000))
                ch_nap_ms(50);
            continue;
        }
        pthread_mutex_lock(&rl_async.mu);
        rl_async.done = 0;
        pthread_mutex_unlock(&rl_async.mu);
        int rc = zkc_ratelimit_acquire_at_async(rl, n, 2000, rl_cb, (void *)(uintptr_t)id);
        if (rc != 0) {
            ch_log(W.h, "REJ id=%" PRIu64 " rc=%d", id, rc);
            ch_nap_ms(50);
            continue;
        }
        /* The acquire's own timeout ends it; the bound is the watchdog's. */
        struct timespec dl;
        deadline_in(&dl, 2000 + 6 * W.op_timeout_ms + 30000);
        int hung = 0;
        pthread_mutex_lock(&rl_async.mu);
        while (!rl_async.done && !hung)
            hung = pthread_cond_timedwait(&rl_async.cv, &rl_async.mu, &dl) == ETIMEDOUT;
        rc = rl_async.status;
        pthread_mutex_unlock(&rl_async.mu);
        if (hung) {
            ch_log(W.h, "HANG id=%" PRIu64 " what=ratelimit_acquire_at_async", id);
            break;
        }
        if (rc != 0 && (rc != ZKC_ETIMEDOUT || ch_now_ns() - t0 < 100000000))
            ch_nap_ms(50); /* as above */
    }
    /* A hung call ends now (ZKC_ECANCELED through rl_cb, whose state is static). */
    zkc_ratelimit_destroy(rl);
    return NULL;
}

/* ---------------------------------------------------------------- election */

/* One thread stands at /chaos/elect, leads for 20..300 ms, resigns, pauses
 * 0..100 ms, stands again. Terms are numbered per process (term=K) so that
 * listener events, which run on the engine thread and may be logged before
 * the grant line, belong to their term without timing guesses:
 *   ESTAND term            before zkc_election_lead
 *   ELEAD term rc token    after it returned (0: granted, with its token)
 *   EEV term ev            listener: SUSPENDED / RECONNECTED / LOST
 *   ERESIGN term           before zkc_election_resign (the term ends here)
 *   ERESIGNED term rc      after it
 * check.c (check_election) wants no two terms un-notified at once, and
 * tokens strictly increasing in grant order across every worker. */
static int el_term; /* atomic: the term the listener's events belong to */

static void el_event(zkc_election *e, zkc_election_event ev, void *ud)
{
    (void)e;
    (void)ud;
    const char *n = ev == ZKC_ELECTION_EVENT_SUSPENDED     ? "SUSPENDED"
                    : ev == ZKC_ELECTION_EVENT_RECONNECTED ? "RECONNECTED"
                    : ev == ZKC_ELECTION_EVENT_LOST        ? "LOST"
                                                           : "?";
    ch_log(W.h, "EEV term=%d ev=%s", __atomic_load_n(&el_term, __ATOMIC_ACQUIRE), n);
}

static void *election_thread(void *arg)
{
    uint64_t rng = *(uint64_t *)arg;
    char id[32];
    snprintf(id, sizeof id, "w%d", W.wid);
    zkc_election *e = NULL;
    if (zkc_election_create(W.c, CH_ROOT "/elect", id, NULL, 0, &e) != 0) {
        ch_log(W.h, "ERROR what=election_create msg=%s", zkc_errmsg());
        return NULL;
    }
    zkc_election_set_listener(e, el_event, NULL);
    int term = 0;
    while (!stopping()) {
        __atomic_store_n(&el_term, ++term, __ATOMIC_RELEASE);
        ch_log(W.h, "ESTAND term=%d", term);
        int64_t token = 0;
        /* Bounded so that a stop is noticed; a timeout just stands again. */
        int rc = zkc_election_lead(e, 2000, &token);
        ch_log(W.h, "ELEAD term=%d rc=%d token=%" PRId64, term, rc, rc == 0 ? token : 0);
        if (rc != 0) {
            if (rc != ZKC_ETIMEDOUT)
                ch_nap_ms(50);
            continue;
        }
        ch_nap_ms(ch_randint(&rng, 20, 300));
        ch_log(W.h, "ERESIGN term=%d", term);
        rc = zkc_election_resign(e);
        ch_log(W.h, "ERESIGNED term=%d rc=%d", term, rc);
        ch_nap_ms(ch_randint(&rng, 0, 100));
    }
    zkc_election_destroy(e);
    return NULL;
}

/* ---------------------------------------------------------------- inventory */

typedef struct held_res {
    char rid[64];
    int n;
    int sku[2];
    int64_t qty[2];
} held_res;

typedef struct ithread {
    int idx;
    uint64_t rng;
    zkc_inventory *inv;
    held_res held[64]; /* reserved ids, to confirm / cancel / repeat */
    int nheld;
} ithread;

static void inv_lookup(ithread *t, const char *rid)
{
    zkc_inventory_state st = ZKC_INVENTORY_PENDING;
    int rc = zkc_inventory_lookup(t->inv, rid, &st);
    ch_log(W.h, "ILOOK rid=%s rc=%d state=%d", rid, rc, (int)st);
}

static int inv_reserve(ithread *t, uint64_t id, const char *rid, const held_res *hr, int repeat)
{
    zkc_inventory_line lines[2];
    char skus[2][32];
    for (int i = 0; i < hr->n; i++) {
        ch_sku_name(hr->sku[i], skus[i], sizeof skus[i]);
        lines[i].sku = skus[i];
        lines[i].qty = hr->qty[i];
    }
    zkc_inventory_reserve_options o;
    memset(&o, 0, sizeof o);
    o.wait_for_restock = !repeat && ch_randint(&t->rng, 0, 99) < 20;
    o.hold_ms = 20000;
    int to = o.wait_for_restock ? ch_randint(&t->rng, 200, 1500) : 5000;
    ch_log(W.h, "IINV id=%" PRIu64 " op=%s rid=%s n=%d s0=%d q0=%" PRId64 " s1=%d q1=%" PRId64 " wait=%d", id,
           repeat ? "repeat" : "reserve", rid, hr->n, hr->sku[0], hr->qty[0], hr->n > 1 ? hr->sku[1] : -1,
           hr->n > 1 ? hr->qty[1] : 0, o.wait_for_restock);
    zkc_inventory_state st = ZKC_INVENTORY_PENDING;
    int rc = zkc_inventory_reserve(t->inv, rid, lines, hr->n, &o, to, NULL, &st);
    ch_log(W.h, "IRET id=%" PRIu64 " rc=%d state=%d%s%s", id, rc, (int)st, rc ? " msg=" : "", rc ? zkc_errmsg() : "");
    if (rc != 0 && rc != ZKC_EOUTOFSTOCK && rc != ZKC_ETIMEDOUT && rc != ZKC_EINVAL)
        inv_lookup(t, rid); /* session lost, connection lost, ...: what became of it? */
    return rc == 0 && st == ZKC_INVENTORY_RESERVED;
}

static void inv_round(ithread *t)
{
    int r = ch_randint(&t->rng, 0, 99);
    uint64_t id = next_id();
    char sku[32];
    if (r < 12) {
        int s = ch_randint(&t->rng, 0, W.sh.skus - 1);
        int64_t q = ch_randint(&t->rng, 5, 20);
        ch_sku_name(s, sku, sizeof sku);
        ch_log(W.h, "IINV id=%" PRIu64 " op=restock sku=%d qty=%" PRId64, id, s, q);
        int rc = zkc_inventory_restock(t->inv, sku, q);
        ch_log(W.h, "IRET id=%" PRIu64 " rc=%d state=-1%s%s", id, rc, rc ? " msg=" : "", rc ? zkc_errmsg() : "");
        return;
    }
    if (r < 75 || t->nheld == 0) {
        held_res hr;
        memset(&hr, 0, sizeof hr);
        hr.n = W.sh.skus > 1 ? ch_randint(&t->rng, 1, 2) : 1;
        hr.sku[0] = ch_randint(&t->rng, 0, W.sh.skus - 1);
        hr.sku[1] = W.sh.skus > 1 ? (hr.sku[0] + ch_randint(&t->rng, 1, W.sh.skus - 1)) % W.sh.skus : 0;
        hr.qty[0] = ch_randint(&t->rng, 1, 3);
        hr.qty[1] = ch_randint(&t->rng, 1, 3);
        snprintf(hr.rid, sizeof hr.rid, "r%d-%" PRIu64, W.wid, id);
        if (inv_reserve(t, id, hr.rid, &hr, 0) && t->nheld < 64)
            t->held[t->nheld++] = hr;
        return;
    }
    int k = ch_randint(&t->rng, 0, t->nheld - 1);
    held_res hr = t->held[k];
    if (r < 95) /* confirm and return end the reservation: forget it */
        t->held[k] = t->held[--t->nheld];
    if (r < 88) {
        ch_log(W.h, "IINV id=%" PRIu64 " op=confirm rid=%s", id, hr.rid);
        int rc = zkc_inventory_confirm(t->inv, hr.rid);
        ch_log(W.h, "IRET id=%" PRIu64 " rc=%d state=-1%s%s", id, rc, rc ? " msg=" : "", rc ? zkc_errmsg() : "");
    } else if (r < 95) {
        ch_log(W.h, "IINV id=%" PRIu64 " op=cancel rid=%s", id, hr.rid);
        int rc = zkc_inventory_return(t->inv, hr.rid);
        ch_log(W.h, "IRET id=%" PRIu64 " rc=%d state=-1%s%s", id, rc, rc ? " msg=" : "", rc ? zkc_errmsg() : "");
    } else if (r < 98) {
        inv_reserve(t, id, hr.rid, &hr, 1); /* the same id again: must not reserve twice */
    } else {
        int64_t ret = 0;
        ch_log(W.h, "IINV id=%" PRIu64 " op=reap", id);
        int rc = zkc_inventory_reap(t->inv, &ret);
        ch_log(W.h, "IRET id=%" PRIu64 " rc=%d state=-1 returned=%" PRId64, id, rc, ret);
    }
}

/* The inventory threads of a worker share one object, as a process's order
 * threads would: its requests then meet in one queue, where the granter
 * among them takes their entries from memory and tells them their outcome,
 * and their queue-length checks share stats (lib/inventory_grant.c, "our
 * own members"). */
static pthread_mutex_t inv_mu = PTHREAD_MUTEX_INITIALIZER;
static zkc_inventory *inv_shared;
static int inv_users, inv_create_rc;

static void *inv_thread(void *arg)
{
    ithread *t = arg;
    if (!ch_inventory_linked() || !zkc_inventory_reserve || !zkc_inventory_lookup) {
        ch_log(W.h, "INVOFF why=not_linked");
        if (t->idx == 0 && W.wid == 1)
            fprintf(stderr, "zkc-chaos: NOTICE: inventory workload off: zkc_inventory_* is not in this library yet\n");
        return NULL;
    }
    pthread_mutex_lock(&inv_mu);
    if (inv_users++ == 0)
        inv_create_rc = zkc_inventory_create(W.c, CH_INV_ROOT, &inv_shared);
    int rc = inv_create_rc;
    t->inv = inv_shared;
    pthread_mutex_unlock(&inv_mu);
    if (rc != 0) {
        ch_log(W.h, "INVOFF why=create rc=%d", rc);
        fprintf(stderr, "zkc-chaos: NOTICE: inventory workload off: zkc_inventory_create: %s: %s\n",
                zkc_strerror(rc), zkc_errmsg());
        return NULL;
    }
    ch_log(W.h, "INVON");
    while (!stopping())
        inv_round(t);
    pthread_mutex_lock(&inv_mu);
    if (--inv_users == 0) {
        zkc_inventory_destroy(inv_shared);
        inv_shared = NULL;
    }
    pthread_mutex_unlock(&inv_mu);
    return NULL;
}

/* ---------------------------------------------------------------- main */

/* A crash prints its stack (addresses: `addr2line -e zkc-chaos`) to the
 * worker's output file, which the driver shows. */
static void crash_handler(int sig)
{
    void *bt[64];
    int n = backtrace(bt, 64);
    char msg[64];
    int m = snprintf(msg, sizeof msg, "zkc-chaos worker %d: signal %d, stack:\n", W.wid, sig);
    if (write(2, msg, (size_t)m) < 0)
        _exit(3);
    backtrace_symbols_fd(bt, n, 2);
    signal(sig, SIG_DFL);
    raise(sig);
}

static void install_crash_handler(void)
{
    void *bt[1];
    backtrace(bt, 1); /* load libgcc now, not inside the handler */
    int sigs[] = {SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = crash_handler;
        sa.sa_flags = SA_RESETHAND;
        sigaction(sigs[i], &sa, NULL);
    }
}

static int parse_shape(const char *s, ch_shape *sh)
{
    return sscanf(s, "%d,%d,%d,%d,%d,%d,%d,%d,%d,%d,%d,%d,%d,%d,%d,%d,%d", &sh->mutex_paths, &sh->rw_paths,
                  &sh->counters, &sh->stocks, &sh->skus, &sh->mutex_threads, &sh->rw_threads, &sh->counter_threads,
                  &sh->stock_threads, &sh->inv_threads, &sh->window, &sh->session_ms, &sh->keyed_pct,
                  &sh->counter_rate, &sh->stock_rate, &sh->lock_think_ms, &sh->queued) == 17
               ? 0
               : -1;
}

int ch_worker_main(int argc, char **argv)
{
    int ready_fd = -1;
    const char *shape = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : "";
        if (!strcmp(a, "--worker"))
            continue;
        else if (!strcmp(a, "--wid"))
            W.wid = atoi(v), i++;
        else if (!strcmp(a, "--dir"))
            W.dir = v, i++;
        else if (!strcmp(a, "--hosts"))
            W.hosts = v, i++;
        else if (!strcmp(a, "--seed"))
            W.seed = strtoull(v, NULL, 10), i++;
        else if (!strcmp(a, "--shape"))
            shape = v, i++;
        else if (!strcmp(a, "--ready-fd"))
            ready_fd = atoi(v), i++;
    }
    ch_shape_default(&W.sh);
    if (!W.dir || !W.hosts || W.wid <= 0 || W.wid >= CH_MAX_WORKERS || (shape && parse_shape(shape, &W.sh))) {
        fprintf(stderr, "zkc-chaos --worker: bad arguments\n");
        return 2;
    }
    /* SIGTERM is taken by sigwait below, on this thread only. */
    sigset_t ss;
    sigemptyset(&ss);
    sigaddset(&ss, SIGTERM);
    sigaddset(&ss, SIGINT);
    pthread_sigmask(SIG_BLOCK, &ss, NULL);

    install_crash_handler();
    W.h = ch_hist_open(W.dir, W.wid);
    W.m = ch_shm_attach(W.dir);
    if (!W.h || !W.m) {
        fprintf(stderr, "zkc-chaos worker %d: cannot open history/shm in %s\n", W.wid, W.dir);
        return 2;
    }
    W.slot = &W.m->w[W.wid];
    W.slot->pid = getpid();
    ch_log(W.h, "START pid=%d", (int)getpid());

    /* Test builds of the library (--enable-opwatch) report operations left
     * open past their bound here; the checker fails on every line. */
    char owf[4200];
    snprintf(owf, sizeof owf, "%s/opwatch-%d.log", W.dir, W.wid);
    setenv("ZKC_OPWATCH_FILE", owf, 1);
    zkc_client_options o;
    zkc_client_options_init(&o);
    o.hosts = W.hosts;
    o.session_timeout_ms = W.sh.session_ms;
    o.connect_timeout_ms = 30000;
    o.auth_scheme = "digest";
    o.auth_credential = CH_AUTH;
    o.acl = ZKC_ACL_CREATOR;
    o.log_fn = on_log;
    o.log_level = ZKC_LOG_WARN;
    int rc = -1;
    for (int attempt = 0; attempt < 4 && rc != 0; attempt++) {
        rc = zkc_client_create(&W.c, &o);
        if (rc != 0)
            ch_log(W.h, "ERROR what=client_create rc=%d", rc);
    }
    if (rc != 0) {
        fprintf(stderr, "zkc-chaos worker %d: no session: %s\n", W.wid, zkc_errmsg());
        ch_log(W.h, "FATAL what=client_create");
        return 3;
    }
    int st = zkc_client_session_timeout(W.c);
    W.op_timeout_ms = 2 * (st > 0 ? st : W.sh.session_ms);
    if (!getenv("ZKC_OPWATCH_BOUND_MS")) {
        /* The checker's bound for a call (as for the window's drain below);
         * set ZKC_OPWATCH_BOUND_MS to hold the library to a tighter one. */
        char b[32];
        snprintf(b, sizeof b, "%d", 6 * W.op_timeout_ms + 30000);
        setenv("ZKC_OPWATCH_BOUND_MS", b, 1);
    }
    publish_session();
    int64_t sid = 0;
    zkc_client_session(W.c, &sid, NULL, NULL);
    ch_log(W.h, "STATE st=INIT sid=%" PRIx64 " timeout=%d", (uint64_t)sid, st);
    zkc_client_set_listener(W.c, on_state, NULL);

    char p[256];
    for (int i = 0; i < ch_counter_count(&W.sh); i++) {
        ch_counter_path(&W.sh, i, p, sizeof p);
        /* Queued counters (ch_counter_mode): their plain adds are queued
         * (ALWAYS) or queued while contended (AUTO); their keyed adds and
         * multi takes still go direct, on the same counter, as the contract
         * allows. */
        zkc_counter_options co;
        zkc_counter_options_init(&co);
        co.queued = ch_counter_mode(&W.sh, i);
        if ((rc = zkc_counter_create(W.c, p, &co, &W.ctr[i])) != 0) {
            fprintf(stderr, "zkc-chaos worker %d: counter %s: %s\n", W.wid, p, zkc_errmsg());
            return 3;
        }
    }

    int nl = W.sh.mutex_threads + W.sh.rw_threads;
    int nc = W.sh.counter_threads + W.sh.stock_threads;
    int ni = W.sh.inv_threads;
    lthread *lt = calloc((size_t)nl + 1, sizeof *lt);
    cthread *ct = calloc((size_t)nc + 1, sizeof *ct);
    ithread *it = calloc((size_t)ni + 1, sizeof *it);
    pthread_t *th = calloc((size_t)(nl + nc + ni) + 4, sizeof *th);
    if (!lt || !ct || !it || !th)
        return 3;
    int nth = 0;
    for (int i = 0; i < nl; i++) {
        lt[i].idx = i;
        lt[i].rw = i >= W.sh.mutex_threads;
        lt[i].rng = ch_mix(W.seed, (uint64_t)W.wid * 1000 + (uint64_t)i);
        pthread_mutex_init(&lt[i].mu, NULL);
        pthread_create(&th[nth++], NULL, lock_thread, &lt[i]);
    }
    for (int i = 0; i < nc; i++) {
        ct[i].idx = i;
        ct[i].stock = i >= W.sh.counter_threads;
        ct[i].rng = ch_mix(W.seed, (uint64_t)W.wid * 1000 + 100 + (uint64_t)i);
        pthread_mutex_init(&ct[i].mu, NULL);
        cond_init_mono(&ct[i].cv);
        pthread_create(&th[nth++], NULL, counter_thread, &ct[i]);
    }
    for (int i = 0; i < ni; i++) {
        it[i].idx = i;
        it[i].rng = ch_mix(W.seed, (uint64_t)W.wid * 1000 + 200 + (uint64_t)i);
        pthread_create(&th[nth++], NULL, inv_thread, &it[i]);
    }
    static uint64_t idg_rng;
    idg_rng = ch_mix(W.seed, (uint64_t)W.wid * 1000 + 300);
    pthread_create(&th[nth++], NULL, idgen_thread, &idg_rng);
    static uint64_t el_rng;
    el_rng = ch_mix(W.seed, (uint64_t)W.wid * 1000 + 400);
    pthread_create(&th[nth++], NULL, election_thread, &el_rng);
    static uint64_t rl_rng;
    rl_rng = ch_mix(W.seed, (uint64_t)W.wid * 1000 + 500);
    pthread_create(&th[nth++], NULL, ratelimit_thread, &rl_rng);
    if (ready_fd >= 0) {
        char b = 'R';
        if (write(ready_fd, &b, 1) != 1)
            fprintf(stderr, "zkc-chaos worker %d: ready pipe: %s\n", W.wid, strerror(errno));
        close(ready_fd);
    }

    int sig = 0;
    sigwait(&ss, &sig);
    ch_log(W.h, "STOPPING sig=%d", sig);
    __atomic_store_n(&W.stop, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < nth; i++)
        pthread_join(th[i], NULL);

    zkc_stats s;
    zkc_client_stats(W.c, &s);
    ch_log(W.h,
           "STATS requests=%" PRIu64 " retries=%" PRIu64 " conflicts=%" PRIu64 " sessions=%" PRIu64
           " suspended=%" PRIu64 " reconnected=%" PRIu64 " lost=%" PRIu64 " callbacks=%" PRIu64,
           s.requests_total, s.retries, s.conflicts, s.sessions, s.suspended, s.reconnected, s.lost, s.callbacks);
    for (int i = 0; i < ch_counter_count(&W.sh); i++)
        zkc_counter_destroy(W.ctr[i]);
    rc = zkc_client_destroy(W.c);
    ch_log(W.h, "END rc=%d", rc);
    for (int i = 0; i < nc; i++)
        free(ct[i].lookups);
    free(lt);
    free(ct);
    free(it);
    free(th);
    ch_hist_close(W.h);
    ch_shm_detach(W.m);
    return 0;
}
