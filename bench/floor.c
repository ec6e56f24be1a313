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

/* A read is safe to repeat: on a loaded machine the raw session's request can
 * time out or lose its connection; ask again, at most three times in all
 * (a write is not repeated: its outcome would be unknown). */
static int raw_children(worker *w, raw_conn *rc, const char *path, struct String_vector *sv)
{
    int z, tries = 0;
    do {
        z = zoo_get_children(rc->zh, path, 0, sv);
        w->req[ZKC_REQ_CHILDREN]++;
    } while ((z == ZOPERATIONTIMEOUT || z == ZCONNECTIONLOSS) && ++tries < 3);
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
    int z = zoo_create(rc->zh, prefix, NULL, -1, &ZOO_OPEN_ACL_UNSAFE, ZOO_EPHEMERAL_SEQUENTIAL, node, sizeof node);
    w->req[ZKC_REQ_CREATE]++;
    /* A write with no answer (a loaded machine) is a failed cycle, not a
     * failed scenario: any node it left is this session's and ephemeral, and
     * nobody waits behind it in an uncontended floor. */
    if (z == ZOPERATIONTIMEOUT || z == ZCONNECTIONLOSS)
        return OP_FAIL;
    if (z != ZOK)
        return raw_err(w, z, "create");
    struct String_vector sv = {0, NULL};
    z = raw_children(w, rc, parent, &sv);
    if (z != ZOK)
        return raw_err(w, z, "getChildren");
    deallocate_String_vector(&sv);
    z = zoo_delete(rc->zh, node, -1);
    w->req[ZKC_REQ_DELETE]++;
    if (z == ZOPERATIONTIMEOUT || z == ZCONNECTIONLOSS)
        return OP_FAIL;
    if (z != ZOK)
        return raw_err(w, z, "delete");
    return OP_OK;
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

/* Floor of a contended handoff: the predecessor-watch protocol. */
int op_raw_lock_handoff(worker *w)
{
    raw_conn *rc = w->obj;
    char prefix[300], node[400];
    snprintf(prefix, sizeof prefix, "%s/lock-", w->path);
    int z = zoo_create(rc->zh, prefix, NULL, -1, &ZOO_OPEN_ACL_UNSAFE, ZOO_EPHEMERAL_SEQUENTIAL, node, sizeof node);
    w->req[ZKC_REQ_CREATE]++;
    if (z != ZOK)
        return raw_err(w, z, "create");
    long long mine = seq_of(node);
    for (;;) {
        struct String_vector sv = {0, NULL};
        z = raw_children(w, rc, w->path, &sv);
        if (z != ZOK)
            return raw_err(w, z, "getChildren");
        long long best = -1;
        char pred[300] = "";
        for (int i = 0; i < sv.count; i++) {
            long long s = seq_of(sv.data[i]);
            if (s < mine && s > best) {
                best = s;
                snprintf(pred, sizeof pred, "%s/%s", w->path, sv.data[i]);
            }
        }
        deallocate_String_vector(&sv);
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
    z = zoo_delete(rc->zh, node, -1);
    w->req[ZKC_REQ_DELETE]++;
    if (z != ZOK)
        return raw_err(w, z, "delete");
    return OP_OK;
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
