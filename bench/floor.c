/* The raw ZooKeeper client (plain libzookeeper_mt sync calls, no zkcoord
 * code): sessions, path helpers, and the floor operations, each the minimum
 * ZooKeeper work of a scenario. Floors count their own requests into w->req. */
#include "bench.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void raw_log(const char *msg)
{
    if (opt.verbose > 1)
        fprintf(stderr, "zookeeper: %s\n", msg);
}

static void raw_session_watcher(zhandle_t *zh, int type, int state, const char *path, void *ctx)
{
    (void)zh;
    (void)path;
    raw_conn *rc = ctx;
    if (type != ZOO_SESSION_EVENT || !rc)
        return;
    pthread_mutex_lock(&rc->mu);
    rc->state = state;
    pthread_cond_broadcast(&rc->cv);
    pthread_mutex_unlock(&rc->mu);
}

raw_conn *raw_open(char *err, size_t errlen)
{
    raw_conn *rc = calloc(1, sizeof *rc);
    if (!rc) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&rc->mu, NULL);
    pthread_cond_init(&rc->cv, NULL);
    rc->zh = zookeeper_init2(g_hosts, raw_session_watcher, 10000, NULL, rc, 0, raw_log);
    if (!rc->zh) {
        snprintf(err, errlen, "zookeeper_init2(%s): %s", g_hosts, strerror(errno));
        free(rc);
        return NULL;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 20;
    pthread_mutex_lock(&rc->mu);
    while (rc->state != ZOO_CONNECTED_STATE)
        if (pthread_cond_timedwait(&rc->cv, &rc->mu, &ts) == ETIMEDOUT)
            break;
    int ok = rc->state == ZOO_CONNECTED_STATE;
    pthread_mutex_unlock(&rc->mu);
    if (!ok) {
        snprintf(err, errlen, "raw session to %s not connected within 20 s", g_hosts);
        zookeeper_close(rc->zh);
        free(rc);
        return NULL;
    }
    return rc;
}

void raw_close(raw_conn *rc)
{
    if (!rc)
        return;
    zookeeper_close(rc->zh);
    pthread_mutex_destroy(&rc->mu);
    pthread_cond_destroy(&rc->cv);
    free(rc);
}

/* Create every missing node of path (persistent, empty). */
int raw_mkpath(zhandle_t *zh, const char *path)
{
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || *p == 0) {
            char save = *p;
            *p = 0;
            int z = zoo_create(zh, buf, NULL, -1, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0);
            if (z != ZOK && z != ZNODEEXISTS)
                return z;
            *p = save;
            if (!save)
                break;
        }
    }
    return ZOK;
}

int raw_create_data(zhandle_t *zh, const char *path, const char *data, int len)
{
    int z = zoo_create(zh, path, data, len, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0);
    return z == ZNODEEXISTS ? ZOK : z;
}

int raw_rmr(zhandle_t *zh, const char *path)
{
    struct String_vector sv = {0, NULL};
    int z = zoo_get_children(zh, path, 0, &sv);
    if (z == ZNONODE)
        return ZOK;
    if (z != ZOK)
        return z;
    for (int i = 0; i < sv.count; i++) {
        char child[1024];
        snprintf(child, sizeof child, "%s/%s", strcmp(path, "/") ? path : "", sv.data[i]);
        raw_rmr(zh, child);
    }
    deallocate_String_vector(&sv);
    z = zoo_delete(zh, path, -1);
    return z == ZNONODE ? ZOK : z;
}

typedef struct bulk {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int pending;
    int err;
} bulk;

static void bulk_done(int rc, const char *value, const void *data)
{
    (void)value;
    bulk *b = (bulk *)data;
    pthread_mutex_lock(&b->mu);
    if (rc != ZOK && rc != ZNODEEXISTS && !b->err)
        b->err = rc;
    b->pending--;
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
}

/* Create n persistent nodes, pipelined. */
int raw_create_bulk(zhandle_t *zh, char **paths, int n)
{
    bulk b;
    memset(&b, 0, sizeof b);
    pthread_mutex_init(&b.mu, NULL);
    pthread_cond_init(&b.cv, NULL);
    for (int i = 0; i < n; i++) {
        pthread_mutex_lock(&b.mu);
        b.pending++;
        pthread_mutex_unlock(&b.mu);
        int z = zoo_acreate(zh, paths[i], NULL, -1, &ZOO_OPEN_ACL_UNSAFE, 0, bulk_done, &b);
        if (z != ZOK) {
            pthread_mutex_lock(&b.mu);
            b.pending--;
            if (!b.err)
                b.err = z;
            pthread_mutex_unlock(&b.mu);
            break;
        }
    }
    pthread_mutex_lock(&b.mu);
    while (b.pending > 0)
        pthread_cond_wait(&b.cv, &b.mu);
    pthread_mutex_unlock(&b.mu);
    pthread_mutex_destroy(&b.mu);
    pthread_cond_destroy(&b.cv);
    return b.err;
}

void be64(char *out, int64_t v)
{
    for (int i = 7; i >= 0; i--) {
        out[i] = (char)(v & 0xff);
        v >>= 8;
    }
}

int64_t unbe64(const char *in, int len)
{
    if (len != 8)
        return 0;
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | (unsigned char)in[i];
    return (int64_t)v;
}

static int raw_lost(int z)
{
    return z == ZOPERATIONTIMEOUT || z == ZCONNECTIONLOSS;
}

/* Wait (at most ms) until the raw session is connected again: a request
 * made before the C client has reconnected fails at once. The session
 * watcher broadcasts rc->cv on every session event; zoo_state is the
 * handle's own state, set before that event is delivered. 1 connected. */
static int raw_wait_connected(raw_conn *rc, int ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&rc->mu);
    int st;
    while ((st = zoo_state(rc->zh)) != ZOO_CONNECTED_STATE && st != ZOO_EXPIRED_SESSION_STATE &&
           st != ZOO_AUTH_FAILED_STATE)
        if (pthread_cond_timedwait(&rc->cv, &rc->mu, &ts) == ETIMEDOUT)
            break;
    pthread_mutex_unlock(&rc->mu);
    return zoo_state(rc->zh) == ZOO_CONNECTED_STATE;
}

/* A request the C client gave up on: worth repeating (after waiting for the
 * reconnect) if this is at most the third such loss of the caller. */
static int raw_retry(raw_conn *rc, int z, int *lost)
{
    return raw_lost(z) && ++*lost <= 3 && raw_wait_connected(rc, 20000);
}

/* A read is safe to repeat: on a loaded machine the raw session's request can
 * time out or lose its connection; ask again once reconnected, at most three
 * times in all (a write is not repeated here: its outcome would be unknown). */
static int raw_children(worker *w, raw_conn *rc, const char *path, struct String_vector *sv)
{
    int z, lost = 0;
    do {
        z = zoo_get_children(rc->zh, path, 0, sv);
        w->req[ZKC_REQ_CHILDREN]++;
    } while (raw_retry(rc, z, &lost) && lost < 3);
    w->raw_lost += lost;
    return z;
}

static const char *raw_parent(worker *w)
{
    const char *p = worker_next_obj(w);
    return p ? p : w->path;
}

/* Floor of an uncontended lock cycle: create ephemeral-sequential, list, delete. */
int op_raw_lock_cycle(worker *w)
{
    raw_conn *rc = w->obj;
    const char *parent = raw_parent(w);
    char prefix[300], node[400];
    snprintf(prefix, sizeof prefix, "%s/lock-", parent);
    int lost0 = w->raw_lost;
    int z = zoo_create(rc->zh, prefix, NULL, -1, &ZOO_OPEN_ACL_UNSAFE, ZOO_EPHEMERAL_SEQUENTIAL, node, sizeof node);
    w->req[ZKC_REQ_CREATE]++;
    /* A write with no answer (a loaded machine) is a failed cycle, not a
     * failed scenario: any node it left is this session's and ephemeral, and
     * nobody waits behind it in an uncontended floor. The next cycle waits
     * for the reconnect rather than fail at once. */
    if (raw_lost(z)) {
        w->raw_lost++;
        raw_wait_connected(rc, 20000);
        return OP_FAIL;
    }
    if (z != ZOK)
        return raw_err(w, z, "create");
    struct String_vector sv = {0, NULL};
    z = raw_children(w, rc, parent, &sv);
    if (z != ZOK)
        return raw_err(w, z, "getChildren");
    deallocate_String_vector(&sv);
    z = zoo_delete(rc->zh, node, -1);
    w->req[ZKC_REQ_DELETE]++;
    if (raw_lost(z)) {
        w->raw_lost++;
        raw_wait_connected(rc, 20000);
        return OP_FAIL;
    }
    if (z != ZOK)
        return raw_err(w, z, "delete");
    return w->raw_lost == lost0 ? OP_OK : OP_FAIL; /* a repeated listing: its time includes the stall */
}

static void raw_pred_watcher(zhandle_t *zh, int type, int state, const char *path, void *ctx)
{
    (void)zh;
    (void)type;
    (void)state;
    (void)path;
    worker *w = ctx;
    pthread_mutex_lock(&w->mu);
    w->fired = 1;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static long long seq_of(const char *name)
{
    size_t n = strlen(name);
    return n >= 10 ? atoll(name + n - 10) : -1;
}

/* After a create whose answer was lost: this thread's node, if the create
 * took effect (its name carries the thread's tag, and the thread has no
 * other node then). 1 found (name in node), 0 none, <0 a ZooKeeper error. */
static int raw_find_mine(worker *w, raw_conn *rc, const char *tag, char *node, size_t len)
{
    struct String_vector sv = {0, NULL};
    int z = raw_children(w, rc, w->path, &sv);
    if (z != ZOK)
        return z < 0 ? z : -1;
    int found = 0;
    for (int i = 0; i < sv.count; i++)
        if (!strncmp(sv.data[i], tag, strlen(tag))) {
            snprintf(node, len, "%s/%s", w->path, sv.data[i]);
            found++;
        }
    deallocate_String_vector(&sv);
    return found;
}

/* Floor of a contended handoff: the predecessor-watch protocol.
 *
 * Every thread shares one raw session, so a request the C client gives up on
 * (ZOPERATIONTIMEOUT: nothing received for 2/3 of the session timeout while
 * the server was stalled, e.g. a long fsync on a loaded machine; or
 * ZCONNECTIONLOSS) fails every request then in flight, of all threads, while
 * the session and its ephemeral nodes live on. Failing the scenario then
 * would leave a node nobody deletes and its successors waiting; instead the
 * thread puts its own part of the chain right: a create whose answer was lost
 * is looked up by the thread's tag in the node name, a lost delete is
 * repeated, a lost get+watch or listing is asked again, each once the C
 * client has reconnected. The handoff then completes and is counted as a
 * failed operation (its time includes the stall), and w->raw_lost tells the
 * scenario to say so. At most 3 such losses per handoff (and 3 tries per
 * listing); a session expiry or any other error still fails the scenario. */
int op_raw_lock_handoff(worker *w)
{
    raw_conn *rc = w->obj;
    char tag[32], prefix[300], node[400];
    snprintf(tag, sizeof tag, "lock-w%d-", w->idx);
    snprintf(prefix, sizeof prefix, "%s/%s", w->path, tag);
    int lost = 0, lost0 = w->raw_lost, z;
    for (;;) {
        z = zoo_create(rc->zh, prefix, NULL, -1, &ZOO_OPEN_ACL_UNSAFE, ZOO_EPHEMERAL_SEQUENTIAL, node, sizeof node);
        w->req[ZKC_REQ_CREATE]++;
        if (!raw_lost(z))
            break;
        if (!raw_retry(rc, z, &lost))
            return raw_err(w, z, "create (lost, not reconnected or lost 3 times)");
        int f = raw_find_mine(w, rc, tag, node, sizeof node);
        if (f < 0)
            return raw_err(w, f, "getChildren after a lost create");
        if (f > 1) {
            snprintf(w->err, sizeof w->err, "raw handoff: %d nodes of thread %d after a lost create", f, w->idx);
            return -1;
        }
        if (f == 1) {
            z = ZOK;
            break;
        }
    }
    if (z != ZOK)
        return raw_err(w, z, "create");
    long long mine = seq_of(node);
    for (;;) {
        struct String_vector sv = {0, NULL};
        z = raw_children(w, rc, w->path, &sv);
        if (z != ZOK)
            return raw_err(w, z, "getChildren");
        long long best = -1;
        char pred[300] = "", orphan[300] = "";
        for (int i = 0; i < sv.count; i++) {
            long long s = seq_of(sv.data[i]);
            if (s != mine && !strncmp(sv.data[i], tag, strlen(tag)))
                snprintf(orphan, sizeof orphan, "%s/%s", w->path, sv.data[i]);
            else if (s < mine && s > best) {
                best = s;
                snprintf(pred, sizeof pred, "%s/%s", w->path, sv.data[i]);
            }
        }
        deallocate_String_vector(&sv);
        if (orphan[0]) {
            /* A lost create that took effect after all (it reached the server
             * after the lookup): ours, and someone may be waiting behind it. */
            z = zoo_delete(rc->zh, orphan, -1);
            w->req[ZKC_REQ_DELETE]++;
            if (z != ZOK && z != ZNONODE && !raw_retry(rc, z, &lost))
                return raw_err(w, z, "delete of this thread's orphaned node");
            continue;
        }
        if (best < 0)
            break; /* first: held */
        pthread_mutex_lock(&w->mu);
        w->fired = 0;
        pthread_mutex_unlock(&w->mu);
        char buf[64];
        int len = sizeof buf;
        z = zoo_wget(rc->zh, pred, raw_pred_watcher, w, buf, &len, NULL);
        w->req[ZKC_REQ_GET]++;
        if (z == ZNONODE)
            continue;
        if (raw_retry(rc, z, &lost))
            continue; /* list again: the predecessor may be gone by now */
        if (z != ZOK)
            return raw_err(w, z, "get+watch predecessor");
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += LOCK_TIMEOUT_MS / 1000;
        pthread_mutex_lock(&w->mu);
        int to = 0;
        while (!w->fired && !to)
            to = pthread_cond_timedwait(&w->cv, &w->mu, &ts) == ETIMEDOUT;
        pthread_mutex_unlock(&w->mu);
        if (to) {
            snprintf(w->err, sizeof w->err, "raw handoff: predecessor watch did not fire in %d s",
                     LOCK_TIMEOUT_MS / 1000);
            return -1;
        }
    }
    int del_lost = 0;
    for (;;) {
        z = zoo_delete(rc->zh, node, -1);
        w->req[ZKC_REQ_DELETE]++;
        if (del_lost && z == ZNONODE)
            z = ZOK; /* a lost delete that took effect */
        if (!raw_retry(rc, z, &lost))
            break;
        del_lost = 1;
    }
    if (z != ZOK)
        return raw_err(w, z, "delete");
    w->raw_lost += lost;
    if (w->raw_lost == lost0)
        return OP_OK;
    /* A create lost before the lookup may still land; leave none behind. */
    char late[400];
    if (raw_find_mine(w, rc, tag, late, sizeof late) == 1) {
        z = zoo_delete(rc->zh, late, -1);
        w->req[ZKC_REQ_DELETE]++;
        if (z != ZOK && z != ZNONODE)
            return raw_err(w, z, "delete of this thread's orphaned node");
    }
    return OP_FAIL;
}
/* Floor: versioned setData with a known version (one writer per node). */
int op_raw_set(worker *w)
{
    raw_conn *rc = w->obj;
    char buf[8];
    be64(buf, w->val + 1);
    struct Stat st;
    int z = zoo_set2(rc->zh, w->path, buf, 8, w->ver, &st);
    w->req[ZKC_REQ_SET]++;
    if (z != ZOK)
        return raw_err(w, z, "setData");
    w->ver = st.version;
    w->val++;
    return OP_OK;
}

/* Floor 2: multi {setData(counter, version), create(new marker), delete(old marker)}. */
int op_raw_multi(worker *w)
{
    raw_conn *rc = w->obj;
    char buf[8], newm[300], oldm[300], created[300];
    be64(buf, w->val + 1);
    snprintf(oldm, sizeof oldm, "%s-m/m%" PRId64, w->path, w->seq);
    snprintf(newm, sizeof newm, "%s-m/m%" PRId64, w->path, w->seq + 1);
    struct Stat st;
    zoo_op_t ops[3];
    zoo_op_result_t res[3];
    zoo_set_op_init(&ops[0], w->path, buf, 8, w->ver, &st);
    zoo_create_op_init(&ops[1], newm, "r", 1, &ZOO_OPEN_ACL_UNSAFE, 0, created, sizeof created);
    zoo_delete_op_init(&ops[2], oldm, -1);
    int z = zoo_multi(rc->zh, 3, ops, res);
    w->req[ZKC_REQ_MULTI]++;
    if (z != ZOK)
        return raw_err(w, z, "multi");
    w->ver = st.version;
    w->val++;
    w->seq++;
    return OP_OK;
}

/* Floor of hot sessions: get + versioned set, re-read on BadVersion. */
int op_raw_get_set(worker *w)
{
    raw_conn *rc = w->obj;
    for (;;) {
        char buf[16];
        int len = sizeof buf;
        struct Stat st;
        int z = zoo_get(rc->zh, w->path, 0, buf, &len, &st);
        w->req[ZKC_REQ_GET]++;
        if (z != ZOK)
            return raw_err(w, z, "get");
        char out[8];
        be64(out, unbe64(buf, len) + 1);
        z = zoo_set(rc->zh, w->path, out, 8, st.version);
        w->req[ZKC_REQ_SET]++;
        if (z == ZOK)
            return OP_OK;
        if (z != ZBADVERSION)
            return raw_err(w, z, "setData");
        w->conflicts++;
    }
}
