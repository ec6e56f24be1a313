/* Requests to ZooKeeper: build, send (or park while there is no usable
 * session), retry the safe ones after a connection loss, and map what came
 * back. Besides the session and watch.c, the only file that talks to
 * libzookeeper_mt; its completions copy, then deliver on the engine: in place
 * on the completion thread when the engine is idle and the reply is a plain
 * server answer on an open client (loop.c), otherwise posted. Only those
 * replies run in place because only the others can lead to closing the
 * handle (session expired: session_lost; the last reply at shutdown), and a
 * handle's close joins its completion thread: from that thread, a deadlock. */
#include "internal.h"
#include "zk.h"

#include <stdlib.h>
#include <string.h>

void zkc__req_set_hooks(zkc_client *c, const zkc__req_hooks *h)
{
    c->req_hooks = h;
}

/* The ACL a create carries: the client's choice (zkc_client_options.acl). */
static struct ACL creator_read_acl[] = {{0x1f, {"auth", ""}}, {0x01, {"world", "anyone"}}};
static struct ACL_vector creator_read = {2, creator_read_acl};

static struct ACL_vector *create_acl(zkc_client *c)
{
    switch (c->opt.acl) {
    case ZKC_ACL_CREATOR: return &ZOO_CREATOR_ALL_ACL;
    case ZKC_ACL_CREATOR_READ: return &creator_read;
    default: return &ZOO_OPEN_ACL_UNSAFE;
    }
}

static void req_free(zkc__req *r)
{
    free(r->path);
    free(r->data);
    free(r->value);
    free(r->created);
    if (r->children) {
        for (int i = 0; i < r->nchildren; i++)
            free(r->children[i]);
        free(r->children);
    }
    if (r->ops) {
        for (int i = 0; i < r->nops; i++) {
            free((char *)r->ops[i].path);
            free((char *)r->ops[i].data);
            free(r->ops[i].created);
        }
        free(r->ops);
    }
    free(r->zops);
    free(r->zres);
    free(r);
}

static void copy_stat(zkc__stat *d, const struct Stat *s)
{
    if (!s)
        return;
    d->czxid = s->czxid;
    d->mzxid = s->mzxid;
    d->ctime = s->ctime;
    d->mtime = s->mtime;
    d->ephemeral_owner = s->ephemeralOwner;
    d->pzxid = s->pzxid;
    d->version = s->version;
    d->cversion = s->cversion;
    d->data_length = s->dataLength;
    d->num_children = s->numChildren;
}

static void req_submit(zkc__req *r);
static void req_deliver(zkc__task *t);
static int is_reply(int rc);

static void req_post(zkc__req *r, int rc)
{
    zkc_client *c = r->c;
    zkc_client *saved;
    r->completed = 1;
    r->rc = rc;
    r->task.fn = req_deliver;
    if (is_reply(rc) && rc != ZR_SESSIONEXPIRED && rc != ZR_SESSIONMOVED && rc != ZR_RUNTIMEINCONSISTENCY &&
        zkc__engine_enter(c, &saved)) {
        int run = !c->closing; /* engine state: read holding the role */
        if (run)
            req_deliver(&r->task);
        zkc__engine_leave(c, saved);
        if (run)
            return;
    }
    zkc__post(c, &r->task);
}

/* ---- ZooKeeper completion thread: copy, post ---- */

static void c_void(int rc, const void *data)
{
    req_post((zkc__req *)data, rc);
}

static void c_stat(int rc, const struct Stat *stat, const void *data)
{
    zkc__req *r = (zkc__req *)data;
    if (rc == ZOK)
        copy_stat(&r->stat, stat);
    req_post(r, rc);
}

static void c_data(int rc, const char *value, int len, const struct Stat *stat, const void *data)
{
    zkc__req *r = (zkc__req *)data;
    if (rc == ZOK) {
        copy_stat(&r->stat, stat);
        if (len < 0)
            len = 0;
        r->value = malloc((size_t)len + 1);
        if (r->value) {
            if (len)
                memcpy(r->value, value, (size_t)len);
            r->value[len] = 0;
            r->valuelen = len;
        } else {
            rc = ZSYSTEMERROR;
        }
    }
    req_post(r, rc);
}

static void c_strings(int rc, const struct String_vector *sv, const void *data)
{
    zkc__req *r = (zkc__req *)data;
    if (rc == ZOK && sv) {
        r->children = calloc((size_t)sv->count + 1, sizeof(char *));
        if (!r->children) {
            rc = ZSYSTEMERROR;
        } else {
            for (int i = 0; i < sv->count; i++) {
                r->children[i] = strdup(sv->data[i]);
                if (!r->children[i]) {
                    rc = ZSYSTEMERROR;
                    break;
                }
                r->nchildren = i + 1;
            }
        }
    }
    req_post(r, rc);
}

static void c_string_stat(int rc, const char *value, const struct Stat *stat, const void *data)
{
    zkc__req *r = (zkc__req *)data;
    if (rc == ZOK) {
        r->created = value ? strdup(value) : NULL;
        copy_stat(&r->stat, stat);
    }
    req_post(r, rc);
}

static void c_string(int rc, const char *value, const void *data)
{
    ZKC__UNUSED(value);
    req_post((zkc__req *)data, rc);
}

static void c_multi(int rc, const void *data)
{
    zkc__req *r = (zkc__req *)data;
    zoo_op_result_t *res = r->zres;
    zoo_op_t *zo = r->zops;
    for (int i = 0; i < r->nops; i++) {
        r->ops[i].rc = res[i].err;
        if (r->ops[i].type == ZKC_REQ_SET && res[i].err == ZOK && zo[i].set_op.stat)
            copy_stat(&r->ops[i].stat, zo[i].set_op.stat);
    }
    req_post(r, rc);
}

/* ---- engine ---- */

static void issue(zkc__req *r)
{
    zkc_client *c = r->c;
    zhandle_t *zh = (zhandle_t *)c->zh;
    int rc;
    r->gen = c->gen;
    r->sent = 1;
    r->inflight = 1;
    r->seq = ++c->req_seq;
    r->completed = 0;
    zkc__list_push_back(&c->issued, &r->issued);
    c->inflight++;
    ZKC__STAT_INC(c, requests[r->kind]);
    zkc__metrics_sent(c, r->kind, 0);
    struct ACL_vector *acl = create_acl(c);
    zkc__watch *w = r->watch;
    if (w)
        zkc__watch_sending(w, r->path, r->kind == ZKC_REQ_CHILDREN);
    switch (r->kind) {
    case ZKC_REQ_GET:
        rc = w ? zoo_awget(zh, r->path, zkc__watch_zk_cb, w, c_data, r) : zoo_aget(zh, r->path, 0, c_data, r);
        break;
    case ZKC_REQ_EXISTS:
        rc = w ? zoo_awexists(zh, r->path, zkc__watch_zk_cb, w, c_stat, r) : zoo_aexists(zh, r->path, 0, c_stat, r);
        break;
    case ZKC_REQ_CHILDREN:
        rc = w ? zoo_awget_children(zh, r->path, zkc__watch_zk_cb, w, c_strings, r)
               : zoo_aget_children(zh, r->path, 0, c_strings, r);
        break;
    case ZKC_REQ_CREATE: {
        int mode = 0;
        if (r->flags & ZC_CONTAINER)
            mode = ZOO_CONTAINER;
        else if ((r->flags & ZC_EPHEMERAL) && (r->flags & ZC_SEQUENTIAL))
            mode = ZOO_EPHEMERAL_SEQUENTIAL;
        else if (r->flags & ZC_EPHEMERAL)
            mode = ZOO_EPHEMERAL;
        else if (r->flags & ZC_SEQUENTIAL)
            mode = ZOO_PERSISTENT_SEQUENTIAL;
        rc = zoo_acreate2(zh, r->path, r->data, r->data ? r->len : -1, acl, mode, c_string_stat, r);
        break;
    }
    case ZKC_REQ_DELETE:
        rc = zoo_adelete(zh, r->path, r->version, c_void, r);
        break;
    case ZKC_REQ_SET:
        rc = zoo_aset(zh, r->path, r->data, r->len, r->version, c_stat, r);
        break;
    case ZKC_REQ_SYNC:
        rc = zoo_async(zh, r->path, c_string, r);
        break;
    case ZKC_REQ_MULTI: {
        zoo_op_t *zo = r->zops;
        zoo_op_result_t *res = r->zres;
        memset(zo, 0, sizeof(zoo_op_t) * (size_t)r->nops);
        memset(res, 0, sizeof(zoo_op_result_t) * (size_t)r->nops);
        struct Stat *stats = (struct Stat *)(res + r->nops);
        for (int i = 0; i < r->nops; i++) {
            zkc__mop *m = &r->ops[i];
            zkc__metrics_sent(c, m->type, 1);
            switch (m->type) {
            case ZKC_REQ_CREATE: {
                int mode = (m->flags & ZC_CONTAINER) ? ZOO_CONTAINER
                           : ((m->flags & ZC_EPHEMERAL) ? ZOO_EPHEMERAL : 0) |
                                 ((m->flags & ZC_SEQUENTIAL) ? ZOO_SEQUENCE : 0);
                free(m->created);
                m->created = calloc(1, ZKC__PATH_MAX + 32);
                zoo_create_op_init(&zo[i], m->path, m->data, m->data ? m->len : -1, acl, mode, m->created,
                                   ZKC__PATH_MAX + 32);
                break;
            }
            case ZKC_REQ_DELETE:
                zoo_delete_op_init(&zo[i], m->path, m->version);
                break;
            case ZKC_REQ_SET:
                zoo_set_op_init(&zo[i], m->path, m->data, m->len, m->version, &stats[i]);
                break;
            default:
                zoo_check_op_init(&zo[i], m->path, m->version);
                break;
            }
        }
        rc = zoo_amulti(zh, r->nops, zo, res, c_multi, r);
        break;
    }
    default:
        rc = ZBADARGUMENTS;
    }
    if (rc != ZOK)
        req_post(r, rc == ZINVALIDSTATE ? ZR_CONNLOSS : rc);
}

static void park(zkc__req *r)
{
    zkc__list_push_back(&r->c->parked, &r->parked);
}

#define REQ_OF(n) ZKC__CONTAINER_OF(n, zkc__req, parked)

static void req_submit(zkc__req *r)
{
    zkc_client *c = r->c;
    if (c->closing) {
        req_post(r, ZR_CLOSING);
        return;
    }
    if (c->auth_failed) {
        req_post(r, ZR_AUTHFAILED);
        return;
    }
    if (c->state != ZKC__S_CONNECTED || !c->zh) {
        park(r);
        return;
    }
    issue(r);
}

void zkc__reqs_flush_parked(zkc_client *c)
{
    zkc__list all;
    zkc__list_take(&all, &c->parked);
    zkc__list_node *n;
    while ((n = zkc__list_first(&all)) != NULL) {
        zkc__list_remove(n);
        req_submit(REQ_OF(n));
    }
}

/* rc == 0: only the requests past their deadline (called by the client tick);
 * otherwise every unsafe request (session lost) or every request (closing). */
void zkc__reqs_fail_parked(zkc_client *c, int rc)
{
    int64_t now = zkc__now_ms();
    zkc__list all;
    zkc__list_take(&all, &c->parked);
    zkc__list_node *n;
    while ((n = zkc__list_first(&all)) != NULL) {
        zkc__req *r = REQ_OF(n);
        zkc__list_remove(n);
        int fail;
        int why = rc;
        if (rc == 0) {
            fail = now >= r->deadline;
            why = ZR_NOTSENT;
        } else if (rc == ZR_SESSIONLOST) {
            fail = !r->safe;
        } else {
            fail = 1;
        }
        if (fail)
            req_post(r, why);
        else
            park(r);
    }
}

/* libzookeeper_mt does not call every completion of a handle it closes:
 * zookeeper_close queues a ZCLOSING completion per pending request for its
 * completion thread, which stops as soon as it sees the close requested, and
 * what it had not dequeued by then is never called (process_async() is 0 in
 * the mt adaptor, so destroy() does not run them either). Its threads are
 * joined when zookeeper_close returns: a request of that handle whose
 * completion never ran is settled here as the lost completion would have
 * settled it (sent, outcome unknown). */
void zkc__reqs_orphaned(zkc_client *c, uint64_t gen)
{
    zkc__list_node *n, *tmp;
    ZKC__LIST_FOREACH_SAFE(n, tmp, &c->issued) {
        zkc__req *r = ZKC__CONTAINER_OF(n, zkc__req, issued);
        if (r->gen == gen && !r->completed)
            req_post(r, ZR_CLOSING);
    }
}

static void backoff_fire(zkc__timer *t)
{
    zkc__req *r = ZKC__CONTAINER_OF(t, zkc__req, backoff);
    req_submit(r);
}

static int is_reply(int rc)
{
    return rc != ZR_CONNLOSS && rc != ZR_OPTIMEOUT && rc != ZR_CLOSING && rc != ZR_INVALIDSTATE &&
           rc != ZR_SESSIONLOST && rc != ZR_NOTSENT && rc != ZSYSTEMERROR && rc != ZMARSHALLINGERROR;
}

static void req_deliver(zkc__task *t)
{
    zkc__req *r = ZKC__CONTAINER_OF(t, zkc__req, task);
    zkc_client *c = r->c;
    int rc = r->rc;
    if (r->inflight) {
        r->inflight = 0;
        zkc__list_remove(&r->issued);
        if (--c->inflight == 0 && c->req_hooks)
            c->req_hooks->drained(c);
    }
    if (rc == ZR_RUNTIMEINCONSISTENCY && r->sent) {
        /* The C client completes every pending request with this when it sees
         * an out-of-order reply (a session taken over): nothing is known about
         * them, as after a connection loss. For a multi, only when no sub-op
         * carries a server result. */
        int server_said = 0;
        for (int i = 0; r->kind == ZKC_REQ_MULTI && i < r->nops; i++)
            server_said |= r->ops[i].rc != ZR_OK && r->ops[i].rc != ZR_RUNTIMEINCONSISTENCY;
        if (!server_said)
            rc = ZR_CONNLOSS;
    }
    if (rc == ZR_SESSIONEXPIRED || rc == ZR_SESSIONMOVED) {
        /* The server refused it: not applied. And the session is over. */
        if (c->req_hooks)
            c->req_hooks->session_expired(c, r->gen);
        rc = ZR_SESSIONLOST;
    } else if (r->sent && is_reply(rc)) {
        c->last_heard = zkc__now_ms();
    }
    if (c->closing) {
        /* Shutting down: what was never sent is simply cancelled; what was sent
         * and lost its reply stays "unknown" (ZR_CONNLOSS) for its owner to say so. */
        if (rc == ZR_SESSIONLOST || rc == ZR_NOTSENT || (rc == ZR_CONNLOSS && !r->sent))
            rc = ZR_CLOSING;
        else if (rc == ZR_CLOSING && r->sent)
            rc = ZR_CONNLOSS;
    } else if (rc == ZR_CLOSING) {
        /* We closed its handle after presuming the session lost: its fate is as
         * unknown as after a connection loss. */
        rc = ZR_CONNLOSS;
    }
    if (r->safe && !c->closing && (rc == ZR_CONNLOSS || rc == ZR_SESSIONLOST || rc == ZR_OPTIMEOUT) &&
        r->attempts < c->opt.retry_max && zkc__now_ms() < r->deadline) {
        int64_t delay = (int64_t)c->opt.retry_base_ms << (r->attempts < 16 ? r->attempts : 16);
        if (delay > c->opt.retry_cap_ms)
            delay = c->opt.retry_cap_ms;
        delay = delay / 2 + (int64_t)(zkc__random64() % (uint64_t)(delay / 2 + 1));
        r->attempts++;
        ZKC__STAT_INC(c, retries);
        free(r->value);
        r->value = NULL;
        zkc__timer_init(&r->backoff, backoff_fire);
        zkc__timer_arm(c, &r->backoff, zkc__now_ms() + delay);
        return;
    }
    /* Settled now (not before a retry, which still carries the watch).
     * A watch is registered by a successful read (and by exists on a missing node). */
    if (r->watch)
        r->watch = zkc__watch_settle(r->watch, rc == ZOK || (r->kind == ZKC_REQ_EXISTS && rc == ZNONODE), r->gen);
    r->rc = rc;
    r->done(r);
    req_free(r);
}

static zkc__req *req_new(zkc_client *c, int kind, const char *path, zkc__req_done done, void *ctx)
{
    zkc__req *r = calloc(1, sizeof *r);
    if (!r)
        abort(); /* a lost request would strand its operation forever */
    r->c = c;
    r->kind = kind;
    r->done = done;
    r->ctx = ctx;
    r->path = path ? strdup(path) : NULL;
    r->deadline = zkc__now_ms() + c->opt.operation_timeout_ms;
    return r;
}

/* The reads that may carry a watch; they are safe to retry. */
static zkc__req *read_submit(zkc_client *c, int kind, const char *path, zkc__watch *w, zkc__req_done done,
                             void *ctx)
{
    zkc__req *r = req_new(c, kind, path, done, ctx);
    r->watch = w;
    if (w)
        zkc__watch_pending(w); /* from now: a parked request refers to it too */
    r->safe = 1;
    req_submit(r);
    return r;
}

zkc__req *zkc__get(zkc_client *c, const char *path, zkc__watch *w, zkc__req_done done, void *ctx)
{
    return read_submit(c, ZKC_REQ_GET, path, w, done, ctx);
}

zkc__req *zkc__exists(zkc_client *c, const char *path, zkc__watch *w, zkc__req_done done, void *ctx)
{
    return read_submit(c, ZKC_REQ_EXISTS, path, w, done, ctx);
}

zkc__req *zkc__children(zkc_client *c, const char *path, zkc__watch *w, zkc__req_done done, void *ctx)
{
    return read_submit(c, ZKC_REQ_CHILDREN, path, w, done, ctx);
}

zkc__req *zkc__ping(zkc_client *c, zkc__req_done done, void *ctx)
{
    zkc__req *r = req_new(c, ZKC_REQ_EXISTS, "/", done, ctx);
    req_submit(r);
    return r;
}

typedef struct sync_get {
    char *path;
    zkc__req_done done;
    void *ctx;
    int children; /* the read is a listing, not a get */
} sync_get;

static void sync_get_synced(zkc__req *r)
{
    sync_get *sg = r->ctx;
    /* Whatever the sync said, the read decides (and reports any failure). */
    if (sg->children)
        zkc__children(r->c, sg->path, NULL, sg->done, sg->ctx);
    else
        zkc__get(r->c, sg->path, NULL, sg->done, sg->ctx);
    free(sg->path);
    free(sg);
}

static sync_get *sync_get_new(const char *path, zkc__req_done done, void *ctx)
{
    sync_get *sg = malloc(sizeof *sg);
    if (!sg || !(sg->path = strdup(path)))
        abort(); /* as req_new: a lost request would strand its operation */
    sg->done = done;
    sg->ctx = ctx;
    sg->children = 0;
    return sg;
}

void zkc__sync_get(zkc_client *c, const char *path, zkc__req_done done, void *ctx)
{
    zkc__sync(c, path, sync_get_synced, sync_get_new(path, done, ctx));
}

/* The fence: a multi of one version check (-1: any version) on the path. A
 * check is a transaction: the leader orders it after every write it had
 * committed, and the server answers it only once it has applied all of them,
 * its own data tree included. A sync gives no such promise when the session
 * is on the leader itself (seen under leader kills: a write a follower had
 * acknowledged was missing from the leader's tree after a sync there). It
 * changes nothing, so a lost reply is simply sent again. NONODE counts: the
 * failed multi was ordered all the same. */
static void fence_get_fenced(zkc__req *r)
{
    sync_get *sg = r->ctx;
    if (r->rc == ZR_OK || r->rc == ZR_NONODE) {
        sync_get_synced(r);
        return;
    }
    /* Unfenced, the read would not be fresh: the fence's failure is the answer. */
    zkc__req_done done = sg->done;
    r->ctx = sg->ctx;
    free(sg->path);
    free(sg);
    done(r);
}

static void fence_read(zkc_client *c, const char *path, int children, zkc__req_done done, void *ctx)
{
    sync_get *sg = sync_get_new(path, done, ctx);
    sg->children = children;
    zkc__mop check = {.type = ZKC_REQ_EXISTS, .path = path, .version = -1};
    zkc__req *r = zkc__multi(c, &check, 1, fence_get_fenced, sg);
    r->safe = 1; /* its reply cannot be on the engine before this task returns */
}

void zkc__fence_get(zkc_client *c, const char *path, zkc__req_done done, void *ctx)
{
    fence_read(c, path, 0, done, ctx);
}

void zkc__fence_children(zkc_client *c, const char *path, zkc__req_done done, void *ctx)
{
    fence_read(c, path, 1, done, ctx);
}

typedef struct mkpath {
    zkc_client *c;
    char **stack; /* paths still to create; the last is tried next */
    int n, cap;
    int tries;
    void (*done)(void *arg, int rc);
    void *arg;
} mkpath;

static void mkpath_reply(zkc__req *r);

static void mkpath_end(mkpath *m, int rc)
{
    for (int i = 0; i < m->n; i++)
        free(m->stack[i]);
    free(m->stack);
    m->done(m->arg, rc);
    free(m);
}

static void mkpath_send(mkpath *m)
{
    zkc__create(m->c, m->stack[m->n - 1], NULL, 0, 0, mkpath_reply, m);
}

/* The length of the parent of path's first len bytes (0: top level). */
static size_t up_len(const char *path, size_t len)
{
    while (len > 0 && path[--len] != '/')
        ;
    return len;
}

static void mkpath_reply(zkc__req *r)
{
    mkpath *m = r->ctx;
    int rc = r->rc;
    if ((zkc__zrc_indeterminate(rc) || rc == ZR_SESSIONLOST) && ++m->tries < 10) {
        mkpath_send(m);
        return;
    }
    if (rc == ZR_NONODE && m->n < m->cap) {
        char parent[ZKC__PATH_MAX + 1];
        zkc__path_parent(m->stack[m->n - 1], parent, sizeof parent);
        if (strcmp(parent, "/") != 0) {
            /* The parent is missing: push it, and every ancestor below the
             * deepest this client saw exist (pathcache.c), so the next create
             * is the highest one likely missing; having seen none, go up one
             * level at a time. */
            size_t len = strlen(parent);
            zkc__pathcache_forget(m->c, parent, len);
            size_t known = zkc__pathcache_deepest(m->c, parent, len);
            if (!known)
                known = up_len(parent, len);
            while (len > known && m->n < m->cap) {
                if (!(m->stack[m->n] = strndup(parent, len))) {
                    mkpath_end(m, ZR_APIERROR);
                    return;
                }
                m->n++;
                len = up_len(parent, len);
            }
            mkpath_send(m);
            return;
        }
    }
    if (rc != ZR_OK && rc != ZR_NODEEXISTS) {
        mkpath_end(m, rc);
        return;
    }
    if (m->n > 1) {
        zkc__pathcache_add(m->c, m->stack[m->n - 1], strlen(m->stack[m->n - 1]));
    } else {
        char parent[ZKC__PATH_MAX + 1];
        zkc__path_parent(m->stack[0], parent, sizeof parent);
        zkc__pathcache_add_tree(m->c, parent);
    }
    free(m->stack[--m->n]);
    if (m->n == 0)
        mkpath_end(m, ZR_OK);
    else
        mkpath_send(m);
}

void zkc__mkpath(zkc_client *c, const char *path, void (*done)(void *arg, int rc), void *arg)
{
    int depth = 0;
    for (const char *p = path; *p; p++)
        depth += *p == '/';
    mkpath *m = calloc(1, sizeof *m);
    if (m)
        m->stack = calloc((size_t)depth + 1, sizeof *m->stack);
    if (!m || !m->stack || !(m->stack[0] = strdup(path))) {
        if (m)
            free(m->stack);
        free(m);
        done(arg, ZR_APIERROR);
        return;
    }
    m->n = 1;
    m->cap = depth;
    m->c = c;
    m->done = done;
    m->arg = arg;
    mkpath_send(m);
}

zkc__req *zkc__sync(zkc_client *c, const char *path, zkc__req_done done, void *ctx)
{
    zkc__req *r = req_new(c, ZKC_REQ_SYNC, path, done, ctx);
    r->safe = 1;
    req_submit(r);
    return r;
}

static char *dupdata(const char *data, int len)
{
    if (!data)
        return NULL;
    char *d = malloc((size_t)len + 1);
    if (!d)
        abort();
    memcpy(d, data, (size_t)len);
    d[len] = 0;
    return d;
}

zkc__req *zkc__create(zkc_client *c, const char *path, const char *data, int len, int flags, zkc__req_done done,
                 void *ctx)
{
    zkc__req *r = req_new(c, ZKC_REQ_CREATE, path, done, ctx);
    r->data = dupdata(data, len);
    r->len = len;
    r->flags = flags;
    req_submit(r);
    return r;
}

zkc__req *zkc__delete(zkc_client *c, const char *path, int version, zkc__req_done done, void *ctx)
{
    zkc__req *r = req_new(c, ZKC_REQ_DELETE, path, done, ctx);
    r->version = version;
    req_submit(r);
    return r;
}

zkc__req *zkc__set(zkc_client *c, const char *path, const char *data, int len, int version, zkc__req_done done,
              void *ctx)
{
    zkc__req *r = req_new(c, ZKC_REQ_SET, path, done, ctx);
    r->data = dupdata(data ? data : "", data ? len : 0);
    r->len = data ? len : 0;
    r->version = version;
    req_submit(r);
    return r;
}

zkc__req *zkc__multi(zkc_client *c, const zkc__mop *ops, int n, zkc__req_done done, void *ctx)
{
    zkc__req *r = req_new(c, ZKC_REQ_MULTI, NULL, done, ctx);
    r->nops = n;
    r->ops = calloc((size_t)n, sizeof *r->ops);
    r->zops = calloc((size_t)n, sizeof(zoo_op_t));
    r->zres = calloc((size_t)n, sizeof(zoo_op_result_t) + sizeof(struct Stat));
    if (!r->ops || !r->zops || !r->zres)
        abort();
    for (int i = 0; i < n; i++) {
        r->ops[i] = ops[i];
        r->ops[i].path = strdup(ops[i].path);
        r->ops[i].data = dupdata(ops[i].data, ops[i].len);
        r->ops[i].created = NULL;
        r->ops[i].rc = 0;
    }
    req_submit(r);
    return r;
}
