/* The session: connect, the CONNECTED/SUSPENDED/RECONNECTED/LOST state machine
 * with our own expiry presumption, re-creation after LOST, listeners (recipes
 * first, then the user's), the heartbeat, and closing at shutdown. It tells the
 * layers above nothing except through the listeners they register; the request
 * layer below reports to it through the hooks it sets (zkc__req_hooks). */
#include "internal.h"
#include "zk.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* libzookeeper's own log lines carry no context; they are noise for users of
 * this library unless asked for. */
static void zk_log_sink(const char *msg)
{
    static int enabled = -1;
    if (enabled < 0) {
        const char *e = getenv("ZKC_ZK_LOG");
        enabled = e && *e && strcmp(e, "0") != 0;
    }
    if (enabled)
        fprintf(stderr, "zookeeper: %s\n", msg);
}

/* ---------------------------------------------------------------- listeners */

typedef struct state_job {
    zkc__job j;
    zkc_client *c;
    zkc_state st;
} state_job;

static void state_job_run(zkc__job *j)
{
    state_job *sj = ZKC__CONTAINER_OF(j, state_job, j);
    zkc_client *c = sj->c;
    pthread_mutex_lock(&c->smu);
    zkc_state_fn fn = c->state_fn;
    void *ud = c->state_ud;
    pthread_mutex_unlock(&c->smu);
    if (fn)
        fn(c, sj->st, ud);
    free(sj);
}

static void emit(zkc_client *c, zkc_state st, uint64_t gen)
{
    /* Recipes first: a lock must count itself lost before the user hears LOST. */
    zkc__list_node *n, *tmp;
    ZKC__LIST_FOREACH_SAFE(n, tmp, &c->listeners)
    {
        zkc__sess_listener *l = ZKC__CONTAINER_OF(n, zkc__sess_listener, node);
        l->fn(l, st, gen);
    }
    if ((int)st == ZKC__CLOSING_STATE)
        return;
    state_job *sj = malloc(sizeof *sj);
    if (sj) {
        sj->j.fn = state_job_run;
        sj->c = c;
        sj->st = st;
        zkc__dispatch(c, &sj->j);
    }
}

void zkc__sess_listen(zkc_client *c, zkc__sess_listener *l)
{
    zkc__list_push_front(&c->listeners, &l->node);
}

void zkc__sess_unlisten(zkc_client *c, zkc__sess_listener *l)
{
    ZKC__UNUSED(c);
    zkc__list_remove(&l->node);
}

/* ---------------------------------------------------------------- session */

typedef struct sess_ctx {
    zkc_client *c;
    uint64_t gen;
} sess_ctx;

typedef struct sess_event {
    zkc__task t;
    zkc_client *c;
    uint64_t gen;
    int zstate;
    int auth_rc;
} sess_event;

static void publish(zkc_client *c)
{
    pthread_mutex_lock(&c->smu);
    c->pub_connected = c->state == ZKC__S_CONNECTED;
    c->pub_last_heard = c->last_heard;
    c->pub_timeout_ms = c->timeout_ms;
    pthread_mutex_unlock(&c->smu);
}

static void set_first_result(zkc_client *c, int rc)
{
    pthread_mutex_lock(&c->smu);
    if (c->first_result == 0 && rc < 0)
        snprintf(c->first_msg, sizeof c->first_msg, "%s", zkc_errmsg()); /* this thread's: carry it over */
    if (c->first_result == 0)
        c->first_result = rc;
    pthread_cond_broadcast(&c->scv);
    pthread_mutex_unlock(&c->smu);
}

static int lost_margin(zkc_client *c)
{
    if (c->opt.lost_margin_ms > 0)
        return c->opt.lost_margin_ms;
    int m = c->timeout_ms / 10;
    return m < 100 ? 100 : m;
}

static void arm_tick(zkc_client *c)
{
    if (c->closing)
        return;
    int64_t now = zkc__now_ms();
    int64_t step = c->timeout_ms > 0 ? c->timeout_ms / 6 : 200;
    if (step < 20)
        step = 20;
    if (step > 500)
        step = 500;
    int64_t due = now + step;
    if (c->ever_connected && c->timeout_ms > 0 && c->zh && c->state != ZKC__S_CONNECTING) {
        int64_t lost_at = c->last_heard + c->timeout_ms - lost_margin(c);
        if (lost_at < due)
            due = lost_at;
    }
    zkc__timer_arm(c, &c->tick, due);
}

static void session_lost(zkc_client *c, const char *why);
static void reopen(zkc_client *c);

static void watcher_global(zhandle_t *zh, int type, int state, const char *path, void *ctx);

static void auth_done(int rc, const void *data);
static int add_auth(zkc_client *c);

static int session_open(zkc_client *c)
{
    sess_ctx *sc = malloc(sizeof *sc);
    if (!sc)
        return ZKC_ENOMEM;
    c->gen++;
    sc->c = c;
    sc->gen = c->gen;
    c->state = ZKC__S_CONNECTING;
    c->timeout_ms = 0;
    c->ever_connected = 0;
    errno = 0;
    zhandle_t *zh = zookeeper_init2(c->hosts, watcher_global, c->opt.session_timeout_ms, NULL, sc, 0, zk_log_sink);
    if (!zh) {
        int e = errno;
        free(sc);
        /* libzookeeper resolves every host at init and reports a name that does
         * not resolve (EAI_NONAME/EAI_NODATA) as ENOENT, a temporary resolver
         * failure as EAGAIN: the servers are out of reach, not the string wrong. */
        if (e == ENOENT)
            return zkc__err(ZKC_ECONNLOSS, "cannot start a ZooKeeper session for \"%s\": a host name does not "
                                           "resolve", c->hosts);
        if (e == EAGAIN)
            return zkc__err(ZKC_ECONNLOSS, "cannot start a ZooKeeper session for \"%s\": host name resolution "
                                           "failed for now (try again)", c->hosts);
        return zkc__err(ZKC_EINVAL, "cannot start a ZooKeeper session for \"%s\": %s", c->hosts,
                        e ? strerror(e) : "invalid connect string");
    }
    c->zh = zh;
    /* By default the C client re-resolves every host name each time it polls
     * its socket: about half its CPU under load. Host names still get
     * re-resolved on every connection loss, and at least every 30 s. */
    zoo_set_servers_resolution_delay(zh, 30000);
    c->auth_pending = c->auth_scheme != NULL;
    c->auth_on_handle = 0;
    add_auth(c);
    arm_tick(c);
    return 0;
}

int zkc__refuse_auth_for_test;

/* Give the handle our credentials; 1 when it holds them (or none are set).
 * libzookeeper refuses (ZINVALIDSTATE) while its state is 0, which it is from
 * a failed connection attempt until the next one starts: a new handle whose
 * first attempt failed before this call (a server down, a cut link) takes no
 * credentials, and a session without them is refused every write to our
 * nodes (ZNOAUTH, ZINVALIDACL on a create). An hour-long soak hit exactly
 * that. So on_connected tries again before anything is sent. */
static int add_auth(zkc_client *c)
{
    if (!c->auth_scheme || c->auth_on_handle)
        return 1;
    sess_event *ev = calloc(1, sizeof *ev);
    if (!ev)
        return 0;
    ev->c = c;
    ev->gen = c->gen;
    int rc;
    if (zkc__refuse_auth_for_test > 0) {
        zkc__refuse_auth_for_test--;
        rc = ZINVALIDSTATE;
    } else {
        rc = zoo_add_auth((zhandle_t *)c->zh, c->auth_scheme, c->auth_cred, (int)strlen(c->auth_cred), auth_done,
                          ev);
    }
    if (rc != ZOK) {
        free(ev); /* refused: its completion never runs */
        zkc__log(c, ZKC_LOG_DEBUG, "credentials not taken by the ZooKeeper handle yet (%s): given again at connect",
                 zkc__zrc_name(rc));
        return 0;
    }
    c->auth_on_handle = 1;
    return 1;
}

static void close_handle(zkc_client *c)
{
    zhandle_t *zh = (zhandle_t *)c->zh;
    if (!zh)
        return;
    sess_ctx *sc = (sess_ctx *)zoo_get_context(zh);
    uint64_t gen = c->gen;
    c->zh = NULL;
    /* Completions of this handle still run (with ZCLOSING) and post to us; the
     * gen tells them apart from the next session's. Not all of them: see
     * zkc__reqs_orphaned. */
    zookeeper_close(zh);
    free(sc);
    zkc__reqs_orphaned(c, gen);
    zkc__watches_close_gen(c, gen);
}

static void session_lost(zkc_client *c, const char *why)
{
    if (!c->zh)
        return;
    uint64_t gen = c->gen;
    int64_t now = zkc__now_ms();
    zkc__log(c, ZKC_LOG_WARN, "session 0x%llx lost: %s", (unsigned long long)c->pub_session_id, why);
    if (c->state != ZKC__S_SUSPENDED && c->state == ZKC__S_CONNECTED)
        c->disconnected_at = now;
    c->state = ZKC__S_CONNECTING;
    ZKC__STAT_INC(c, lost);
    publish(c);
    emit(c, ZKC_STATE_LOST, gen);
    close_handle(c);
    zkc__reqs_fail_parked(c, c->auth_failed ? ZR_AUTHFAILED : ZR_SESSIONLOST);
    if (c->closing || c->auth_failed)
        return; /* refused credentials stay refused: no session loop */
    reopen(c);
}

/* Open the session that replaces a lost one. A failure to start one (a host
 * name that stopped resolving, out of memory) must not leave the client
 * without a session for good: the tick tries again every second. */
static void reopen(zkc_client *c)
{
    c->reopen_at = 0;
    if (session_open(c) != 0) {
        zkc__log(c, ZKC_LOG_ERROR, "cannot open a new session (trying again in 1 s): %s", zkc_errmsg());
        c->reopen_at = zkc__now_ms() + 1000;
    }
}

static void on_connected(zkc_client *c)
{
    zhandle_t *zh = (zhandle_t *)c->zh;
    if (!add_auth(c)) {
        /* Connected now, so it can only fail if the connection is gone again
         * (or memory is): nothing may be sent without credentials, so stay
         * as we are; the handle's next CONNECTED comes back here. */
        zkc__log(c, ZKC_LOG_WARN, "connected, but the ZooKeeper handle did not take our credentials: "
                                  "waiting for its next connection");
        return;
    }
    int64_t now = zkc__now_ms();
    int prev = c->state;
    int fresh = !c->ever_connected;
    c->last_heard = now;
    c->timeout_ms = zoo_recv_timeout(zh);
    c->state = ZKC__S_CONNECTED;
    c->ever_connected = 1;
    if (c->disconnected_at) {
        ZKC__STAT_ADD(c, disconnected_ms, (uint64_t)(now - c->disconnected_at));
        c->disconnected_at = 0;
    }
    const clientid_t *id = zoo_client_id(zh);
    c->session_id = id->client_id;
    pthread_mutex_lock(&c->smu);
    c->pub_session_id = id->client_id;
    memcpy(c->pub_passwd, id->passwd, sizeof c->pub_passwd);
    c->pub_passwd_len = (int)sizeof id->passwd;
    pthread_mutex_unlock(&c->smu);
    publish(c);
    zkc__log(c, ZKC_LOG_INFO, "session 0x%llx %s, timeout %d ms", (unsigned long long)id->client_id,
             fresh ? "established" : "reconnected", c->timeout_ms);
    if (fresh) {
        ZKC__STAT_INC(c, sessions);
        emit(c, ZKC_STATE_CONNECTED, c->gen);
    } else if (prev == ZKC__S_SUSPENDED) {
        ZKC__STAT_INC(c, reconnected);
        emit(c, ZKC_STATE_RECONNECTED, c->gen);
    }
    if (!c->auth_pending)
        set_first_result(c, 1);
    zkc__watches_resume(c);
    zkc__reqs_flush_parked(c);
    arm_tick(c);
}

static void sess_event_task(zkc__task *t)
{
    sess_event *ev = ZKC__CONTAINER_OF(t, sess_event, t);
    zkc_client *c = ev->c;
    uint64_t gen = ev->gen;
    int zstate = ev->zstate;
    free(ev);
    if (gen != c->gen || !c->zh || c->closing)
        return;
    if (zstate == ZOO_CONNECTED_STATE) {
        on_connected(c);
    } else if (zstate == ZOO_CONNECTING_STATE || zstate == ZOO_ASSOCIATING_STATE) {
        if (c->state == ZKC__S_CONNECTED) {
            int64_t now = zkc__now_ms();
            /* It gave up after at most 2/3 of the timeout of silence (sooner on
             * a reset): the last packet came no earlier than that. */
            if (now - (int64_t)c->timeout_ms * 2 / 3 > c->last_heard)
                c->last_heard = now - (int64_t)c->timeout_ms * 2 / 3;
            c->state = ZKC__S_SUSPENDED;
            c->disconnected_at = now;
            ZKC__STAT_INC(c, suspended);
            publish(c);
            zkc__log(c, ZKC_LOG_WARN, "connection lost; session may still be alive (SUSPENDED)");
            emit(c, ZKC_STATE_SUSPENDED, c->gen);
            arm_tick(c);
        }
    } else if (zstate == ZOO_EXPIRED_SESSION_STATE) {
        session_lost(c, "the servers expired it");
    } else if (zstate == ZOO_AUTH_FAILED_STATE) {
        c->auth_failed = 1;
        set_first_result(c, zkc__err(ZKC_EAUTH, "the servers refused the %s credentials", c->auth_scheme));
        session_lost(c, "authentication failed");
    }
}

static void watcher_global(zhandle_t *zh, int type, int state, const char *path, void *ctx)
{
    ZKC__UNUSED(zh);
    ZKC__UNUSED(path);
    if (type != ZOO_SESSION_EVENT)
        return;
    sess_ctx *sc = ctx;
    sess_event *ev = calloc(1, sizeof *ev);
    if (!ev)
        return;
    ev->t.fn = sess_event_task;
    ev->c = sc->c;
    ev->gen = sc->gen;
    ev->zstate = state;
    zkc__post(sc->c, &ev->t);
}

static void auth_task(zkc__task *t)
{
    sess_event *ev = ZKC__CONTAINER_OF(t, sess_event, t);
    zkc_client *c = ev->c;
    int rc = ev->auth_rc;
    uint64_t gen = ev->gen;
    free(ev);
    if (gen != c->gen || c->closing || rc == ZCLOSING)
        return;
    if (rc == ZOK) {
        c->auth_pending = 0;
        if (c->state == ZKC__S_CONNECTED)
            set_first_result(c, 1); /* credentials accepted: now the client is usable */
        return;
    }
    if (rc == ZAUTHFAILED) {
        c->auth_failed = 1;
        set_first_result(c, zkc__err(ZKC_EAUTH, "the servers refused the %s credentials", c->auth_scheme));
        session_lost(c, "authentication failed");
    }
}

static void auth_done(int rc, const void *data)
{
    sess_event *ev = (sess_event *)data;
    ev->auth_rc = rc;
    ev->t.fn = auth_task;
    zkc__post(ev->c, &ev->t);
}

static void heartbeat_done(zkc__req *r)
{
    r->c->heartbeat_out = 0;
}

static void tick_fire(zkc__timer *t)
{
    zkc_client *c = ZKC__CONTAINER_OF(t, zkc_client, tick);
    if (c->closing)
        return;
    int64_t now = zkc__now_ms();
    zkc__reqs_fail_parked(c, 0);
    if (!c->zh && c->reopen_at && now >= c->reopen_at)
        reopen(c);
    if (c->zh && c->ever_connected && c->timeout_ms > 0 && c->state == ZKC__S_CONNECTED &&
        zoo_state((zhandle_t *)c->zh) == ZOO_CONNECTED_STATE) {
        /* The C client drops a connection that has been silent for 2/3 of the
         * timeout, so while it says CONNECTED it has heard from the server
         * within that span: a lower bound on the last packet, like ours, and
         * one that does not depend on our heartbeat's reply being prompt. */
        int64_t floor_heard = now - (int64_t)c->timeout_ms * 2 / 3;
        if (floor_heard > c->last_heard)
            c->last_heard = floor_heard;
    }
    if (c->zh && c->ever_connected && c->timeout_ms > 0) {
        if (now >= c->last_heard + c->timeout_ms - lost_margin(c)) {
            char why[128];
            snprintf(why, sizeof why, "no reply from any server for %lld ms (timeout %d ms, margin %d ms)",
                     (long long)(now - c->last_heard), c->timeout_ms, lost_margin(c));
            session_lost(c, why);
        } else if (c->state == ZKC__S_CONNECTED && !c->heartbeat_out &&
                   now - c->last_heard >= c->timeout_ms / 5) {
            /* Our own ping: its reply is the "last packet received" we time
             * LOST from; the client library's pings are invisible to us. */
            c->heartbeat_out = 1;
            zkc__ping(c, heartbeat_done, NULL);
        }
    }
    publish(c);
    arm_tick(c);
}

int zkc__session_fresh(zkc_client *c)
{
    return c->state == ZKC__S_CONNECTED && zkc__now_ms() - c->last_heard < c->timeout_ms / 2;
}

/* ---------------------------------------------------------------- life */

static void open_task(void *arg)
{
    zkc_client *c = arg;
    int rc = session_open(c);
    if (rc)
        set_first_result(c, rc);
}

int zkc__session_start(zkc_client *c)
{
    return zkc__post_call(c, open_task, c);
}
static void shutdown_finish(zkc_client *c)
{
    if (c->state == ZKC__S_CLOSED)
        return;
    zkc__timer_disarm(c, &c->drain);
    close_handle(c);
    c->state = ZKC__S_CLOSED;
    publish(c);
    pthread_mutex_lock(&c->smu);
    c->shutdown_done = 1;
    pthread_cond_broadcast(&c->scv);
    pthread_mutex_unlock(&c->smu);
}

static void drain_fire(zkc__timer *t)
{
    shutdown_finish(ZKC__CONTAINER_OF(t, zkc_client, drain));
}

/* The request layer says the last request in flight is back. */
static void req_drained(zkc_client *c)
{
    if (c->closing)
        shutdown_finish(c);
}

void zkc__session_close(zkc_client *c)
{
    emit(c, (zkc_state)ZKC__CLOSING_STATE, c->gen);
    zkc__timer_disarm(c, &c->tick);
    zkc__reqs_fail_parked(c, ZR_CLOSING);
    /* Requests already sent get their replies first (bounded), so an update
     * that was applied is reported applied, not "cancelled". Then the session
     * closes and the server drops our ephemeral nodes with it. */
    if (c->inflight > 0 && c->zh && c->state == ZKC__S_CONNECTED) {
        int64_t wait = c->opt.operation_timeout_ms < 2000 ? c->opt.operation_timeout_ms : 2000;
        zkc__timer_arm(c, &c->drain, zkc__now_ms() + wait);
        return;
    }
    shutdown_finish(c);
}

void zkc__session_abandon(zkc_client *c)
{
    if (c->zh) {
        zookeeper_close((zhandle_t *)c->zh);
        c->zh = NULL;
    }
}

/* A reply says the servers expired our session (they may say so without
 * closing the connection): that is LOST, whatever our timer says. */
static void req_session_expired(zkc_client *c, uint64_t gen)
{
    if (gen == c->gen && c->zh && !c->closing)
        session_lost(c, "a server answered \"session expired\"");
}

static const zkc__req_hooks session_req_hooks = {
    .drained = req_drained,
    .session_expired = req_session_expired,
};

void zkc__session_init(zkc_client *c)
{
    zkc__timer_init(&c->tick, tick_fire);
    zkc__timer_init(&c->drain, drain_fire);
    zkc__req_set_hooks(c, &session_req_hooks);
}

typedef struct hosts_change {
    zkc_client *c;
    char *hosts;
} hosts_change;

static void set_hosts_task(void *arg)
{
    hosts_change *h = arg;
    zkc_client *c = h->c;
    if (c->zh && zoo_set_servers((zhandle_t *)c->zh, h->hosts) != ZOK)
        zkc__log(c, ZKC_LOG_ERROR, "zoo_set_servers(\"%s\") refused", h->hosts);
    /* New sessions after LOST use the new list too (the chroot stays). */
    const char *slash = strchr(c->hosts, '/');
    size_t n = strlen(h->hosts) + (slash ? strlen(slash) : 0) + 1;
    char *nh = malloc(n);
    if (nh) {
        snprintf(nh, n, "%s%s", h->hosts, slash ? slash : "");
        free(c->hosts);
        c->hosts = nh;
        c->opt.hosts = nh;
    }
    free(h->hosts);
    free(h);
}

int zkc__session_set_hosts(zkc_client *c, const char *hosts)
{
    hosts_change *h = malloc(sizeof *h);
    if (!h || !(h->hosts = strdup(hosts))) {
        free(h);
        return zkc__err(ZKC_ENOMEM, "out of memory");
    }
    h->c = c;
    int rc = zkc__post_call(c, set_hosts_task, h);
    if (rc) {
        free(h->hosts);
        free(h);
    }
    return rc;
}
