/* The public client object: options, create (start the threads and the first
 * session, wait for it), destroy (cancel the recipe objects, let the session
 * drain and close, stop the threads), the read-from-any-thread accessors and
 * the stats. The session itself is session.c. */
#include "internal.h"
#include "metrics.h"
#include "opwatch.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void zkc_client_options_init(zkc_client_options *o)
{
    if (!o)
        return;
    memset(o, 0, sizeof *o);
    o->session_timeout_ms = 10000;
    o->connect_timeout_ms = 15000;
    o->acl = ZKC_ACL_OPEN;
    o->retry_max = 10;
    o->retry_base_ms = 50;
    o->retry_cap_ms = 2000;
    o->marker_retention_s = 86400;
    o->log_level = ZKC_LOG_WARN;
}

/* "h:p,h:p[/chroot]": check the shape here so a typo fails at construction
 * with a message, not later as an endless connection loop. */
static int check_hosts(const char *hosts, int allow_chroot)
{
    if (!hosts || !*hosts)
        return zkc__err(ZKC_EINVAL, "hosts is empty or NULL; expected \"host:port[,host:port...]\"");
    if (strstr(hosts, ",,"))
        return zkc__err(ZKC_EINVAL, "hosts \"%s\": empty server entry", hosts);
    const char *slash = strchr(hosts, '/');
    if (slash && !allow_chroot)
        return zkc__err(ZKC_EINVAL, "hosts \"%s\": a chroot suffix is not allowed here", hosts);
    size_t n = slash ? (size_t)(slash - hosts) : strlen(hosts);
    if (n == 0)
        return zkc__err(ZKC_EINVAL, "hosts \"%s\" names no server", hosts);
    char *list = strndup(hosts, n);
    if (!list)
        return zkc__err(ZKC_ENOMEM, "out of memory");
    int rc = 0;
    char *save = NULL;
    for (char *h = strtok_r(list, ",", &save); h; h = strtok_r(NULL, ",", &save)) {
        char *colon = strrchr(h, ':');
        if (!colon || colon == h) {
            rc = zkc__err(ZKC_EINVAL, "hosts \"%s\": \"%s\" is not host:port", hosts, h);
            break;
        }
        char *end;
        errno = 0;
        long port = strtol(colon + 1, &end, 10);
        if (errno || *end || port <= 0 || port > 65535) {
            rc = zkc__err(ZKC_EINVAL, "hosts \"%s\": bad port in \"%s\"", hosts, h);
            break;
        }
    }
    if (!rc && (hosts[n - 1] == ',' || hosts[0] == ','))
        rc = zkc__err(ZKC_EINVAL, "hosts \"%s\": empty server entry", hosts);
    free(list);
    if (!rc && slash && strcmp(slash, "/") != 0)
        rc = zkc__path_check(slash, "chroot in hosts");
    return rc;
}

/* ---------------------------------------------------------------- public */

static void client_free(zkc_client *c)
{
    zkc__opwatch_client_freed(c);
    zkc__singletons_free(c);
    zkc__watches_free_all(c);
    zkc__pathcache_free(c);
    free(c->hosts);
    free(c->auth_scheme);
    free(c->auth_cred);
    free(c->meta_root);
    zkc__metrics_free(c->mx);
    pthread_mutex_destroy(&c->smu);
    pthread_cond_destroy(&c->scv);
    free(c);
}

void zkc__client_ref(zkc_client *c)
{
    zkc__ref_get(&c->refs);
}

void zkc__client_unref(zkc_client *c)
{
    if (zkc__ref_put(&c->refs))
        client_free(c);
}

static void shutdown_task(void *arg)
{
    zkc_client *c = arg;
    c->closing = 1;
    /* Objects first: work not yet sent finishes ECANCELED. */
    zkc__objects_shutdown(c);
    zkc__session_close(c);
}

int zkc_client_create(zkc_client **out, const zkc_client_options *o)
{
    if (!out)
        return zkc__err(ZKC_EINVAL, "zkc_client_create: out is NULL");
    *out = NULL;
    if (!o)
        return zkc__err(ZKC_EINVAL, "zkc_client_create: options are NULL (use zkc_client_options_init)");
    int rc = check_hosts(o->hosts, 1);
    if (rc)
        return rc;
    if (o->chroot && (rc = zkc__path_check(o->chroot, "chroot")) != 0)
        return rc;
    if (o->chroot && strchr(o->hosts, '/'))
        return zkc__err(ZKC_EINVAL, "chroot given both in hosts (\"%s\") and in options", o->hosts);
    if (o->session_timeout_ms < 0 || o->connect_timeout_ms < 0 || o->operation_timeout_ms < 0 ||
        o->retry_max < 0 || o->retry_base_ms < 0 || o->retry_cap_ms < 0 || o->marker_retention_s < 0)
        return zkc__err(ZKC_EINVAL, "negative timeout or retry option");
    if ((o->auth_scheme == NULL) != (o->auth_credential == NULL))
        return zkc__err(ZKC_EINVAL, "auth_scheme and auth_credential go together");
    if (o->auth_scheme && strcmp(o->auth_scheme, "digest") == 0 && !strchr(o->auth_credential, ':'))
        return zkc__err(ZKC_EINVAL, "digest credential must be \"user:password\"");
    if (o->acl != ZKC_ACL_OPEN && !o->auth_scheme)
        return zkc__err(ZKC_EINVAL, "a creator ACL needs credentials (auth_scheme, auth_credential)");
    if ((unsigned)o->acl > ZKC_ACL_CREATOR_READ)
        return zkc__err(ZKC_EINVAL, "unknown acl %d", (int)o->acl);
    const char *root = o->meta_root ? o->meta_root : "/zkcoord";
    if ((rc = zkc__path_check(root, "meta_root")) != 0)
        return rc;

    zkc_client *c = calloc(1, sizeof *c);
    if (!c)
        return zkc__err(ZKC_ENOMEM, "out of memory");
    zkc__list_init(&c->watches);
    zkc__list_init(&c->listeners);
    zkc__list_init(&c->objects);
    zkc__list_init(&c->singletons);
    zkc__list_init(&c->listers);
    zkc__list_init(&c->parked);
    zkc__list_init(&c->issued);
    c->opt = *o;
    if (c->opt.session_timeout_ms == 0)
        c->opt.session_timeout_ms = 10000;
    if (c->opt.connect_timeout_ms == 0)
        c->opt.connect_timeout_ms = 15000;
    if (c->opt.operation_timeout_ms == 0)
        c->opt.operation_timeout_ms = 2 * c->opt.session_timeout_ms;
    if (c->opt.retry_base_ms == 0)
        c->opt.retry_base_ms = 50;
    if (c->opt.retry_cap_ms == 0)
        c->opt.retry_cap_ms = 2000;
    if (c->opt.marker_retention_s == 0)
        c->opt.marker_retention_s = 86400;
    size_t hl = strlen(o->hosts) + (o->chroot ? strlen(o->chroot) : 0) + 1;
    c->hosts = malloc(hl);
    if (c->hosts)
        snprintf(c->hosts, hl, "%s%s", o->hosts, o->chroot ? o->chroot : "");
    c->auth_scheme = zkc__strdup(o->auth_scheme);
    c->auth_cred = zkc__strdup(o->auth_credential);
    c->meta_root = zkc__strdup(root);
    c->mx = zkc__metrics_new();
    c->opt.hosts = c->hosts;
    c->opt.chroot = NULL;
    c->opt.auth_scheme = c->auth_scheme;
    c->opt.auth_credential = c->auth_cred;
    c->opt.meta_root = c->meta_root;
    c->refs = 1;
    zkc__opwatch_client_made(c);
    zkc__uuid(c->uuid);
    zkc__session_init(c);
    pthread_mutex_init(&c->smu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c->scv, &ca);
    pthread_condattr_destroy(&ca);
    if (!c->hosts || !c->meta_root || !c->mx || (o->auth_scheme && (!c->auth_scheme || !c->auth_cred))) {
        client_free(c);
        return zkc__err(ZKC_ENOMEM, "out of memory");
    }
    if ((rc = zkc__loop_start(c)) != 0) {
        client_free(c);
        return rc;
    }
    if ((rc = zkc__session_start(c)) != 0) {
        zkc__loop_stop(c);
        client_free(c);
        return rc;
    }
    int64_t deadline = zkc__now_ms() + c->opt.connect_timeout_ms;
    struct timespec ts = {.tv_sec = deadline / 1000, .tv_nsec = (deadline % 1000) * 1000000};
    pthread_mutex_lock(&c->smu);
    while (c->first_result == 0) {
        if (pthread_cond_timedwait(&c->scv, &c->smu, &ts) == ETIMEDOUT)
            break;
    }
    int first = c->first_result;
    pthread_mutex_unlock(&c->smu);
    if (first == 1) {
        *out = c;
        zkc__set_errmsg("");
        return 0;
    }
    char msg[512];
    if (first == 0)
        snprintf(msg, sizeof msg, "no ZooKeeper server at \"%s\" answered within %d ms", c->hosts,
                 c->opt.connect_timeout_ms);
    else
        snprintf(msg, sizeof msg, "%s", c->first_msg);
    zkc_client_destroy(c);
    zkc__set_errmsg(msg);
    return first == 0 ? ZKC_ECONNLOSS : first;
}

int zkc_client_destroy(zkc_client *c)
{
    if (!c)
        return 0;
    if (zkc__on_dispatch(c) || zkc__on_engine(c))
        return zkc__err(ZKC_EDEADLK, "zkc_client_destroy called from one of the client's own callbacks");
    if (__atomic_exchange_n(&c->destroyed, 1, __ATOMIC_ACQ_REL))
        return zkc__err(ZKC_EINVAL, "zkc_client_destroy called twice");
    __atomic_store_n(&c->api_closing, 1, __ATOMIC_RELEASE);
    if (zkc__post_call(c, shutdown_task, c) == 0) {
        /* Wait for the engine to drain what was sent and close the session;
         * the engine keeps its clock meanwhile (loop_stop would fire every
         * timer at once). */
        pthread_mutex_lock(&c->smu);
        while (!c->shutdown_done)
            pthread_cond_wait(&c->scv, &c->smu);
        pthread_mutex_unlock(&c->smu);
    } else {
        zkc__log(c, ZKC_LOG_ERROR, "out of memory during shutdown");
    }
    zkc__loop_stop(c);
    zkc__session_abandon(c);
    zkc__client_unref(c);
    return 0;
}

void zkc_client_set_listener(zkc_client *c, zkc_state_fn fn, void *ud)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->smu);
    c->state_fn = fn;
    c->state_ud = ud;
    pthread_mutex_unlock(&c->smu);
}

int zkc_client_connected(zkc_client *c)
{
    if (!c)
        return 0;
    pthread_mutex_lock(&c->smu);
    int ok = c->pub_connected && (c->pub_timeout_ms == 0 || zkc__now_ms() - c->pub_last_heard < c->pub_timeout_ms / 2);
    pthread_mutex_unlock(&c->smu);
    return ok;
}

int zkc_client_set_hosts(zkc_client *c, const char *hosts)
{
    if (!c)
        return zkc__err(ZKC_EINVAL, "client is NULL");
    int rc = check_hosts(hosts, 0);
    if (rc)
        return rc;
    return zkc__session_set_hosts(c, hosts);
}

int zkc_client_session(zkc_client *c, int64_t *session_id, char *passwd, int *passwd_len)
{
    if (!c || !session_id)
        return zkc__err(ZKC_EINVAL, "zkc_client_session: NULL argument");
    pthread_mutex_lock(&c->smu);
    *session_id = c->pub_session_id;
    if (passwd)
        memcpy(passwd, c->pub_passwd, sizeof c->pub_passwd);
    if (passwd_len)
        *passwd_len = c->pub_passwd_len;
    pthread_mutex_unlock(&c->smu);
    return 0;
}

int zkc_client_session_timeout(zkc_client *c)
{
    if (!c)
        return 0;
    pthread_mutex_lock(&c->smu);
    int t = c->pub_timeout_ms;
    pthread_mutex_unlock(&c->smu);
    return t;
}

void zkc_client_stats(zkc_client *c, zkc_stats *out)
{
    if (!c || !out)
        return;
    memset(out, 0, sizeof *out);
    for (int i = 0; i < ZKC_REQ_KINDS_MAX; i++) {
        out->requests[i] = __atomic_load_n(&c->st.requests[i], __ATOMIC_RELAXED);
    }
    out->requests_total = 0;
    for (int i = 0; i < ZKC_REQ_KINDS_MAX; i++)
        out->requests_total += out->requests[i];
    out->retries = __atomic_load_n(&c->st.retries, __ATOMIC_RELAXED);
    out->conflicts = __atomic_load_n(&c->st.conflicts, __ATOMIC_RELAXED);
    out->sessions = __atomic_load_n(&c->st.sessions, __ATOMIC_RELAXED);
    out->suspended = __atomic_load_n(&c->st.suspended, __ATOMIC_RELAXED);
    out->reconnected = __atomic_load_n(&c->st.reconnected, __ATOMIC_RELAXED);
    out->lost = __atomic_load_n(&c->st.lost, __ATOMIC_RELAXED);
    out->disconnected_ms = __atomic_load_n(&c->st.disconnected_ms, __ATOMIC_RELAXED);
    out->callbacks = __atomic_load_n(&c->st.callbacks, __ATOMIC_RELAXED);
}
