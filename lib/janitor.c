/*
 * The janitor: nodes we stopped wanting, deleted once a server is reachable.
 *
 * A recipe that gives up on a node (an abandoned acquire, a hold whose session
 * was presumed lost, a release whose reply never came) or on a create whose
 * outcome is unknown hands it here instead of reporting it left behind. Items
 * stay listed until a server has answered for them; each (re)connection runs
 * the list again, so neither a timeout during a disconnection nor a lost reply
 * leaves an orphan in a session that lives on. One janitor per client, created
 * on first use and ended with the client (the session's end removes our
 * ephemeral nodes anyway).
 */
#include "janitor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


typedef struct jan_item {
    zkc__list_node node; /* in the janitor's items, until done */
    char *path; /* node to delete, or the dir to search */
    char uuid[37];
    int find;
    int busy;
} jan_item;

typedef struct janitor {
    zkc__object obj;
    zkc__singleton single; /* the client's one janitor, until its shutdown */
    zkc__sess_listener sl;
    zkc_client *c;
    zkc__list items;
} janitor;

static void jan_run(janitor *j);

static const int jan_key; /* the registry key: this file's own address */

/* Engine: the client's janitor, or NULL when it has none (never made, or shut down). */
static janitor *jan_of(zkc_client *c)
{
    zkc__singleton *s = zkc__singleton_get(c, &jan_key);
    return s ? ZKC__CONTAINER_OF(s, janitor, single) : NULL;
}

static void jan_unlink(jan_item *it)
{
    zkc__list_remove(&it->node);
    free(it->path);
    free(it);
}

static int jan_retryable(int rc)
{
    return zkc__zrc_indeterminate(rc) || rc == ZR_NOTSENT || rc == ZR_SESSIONLOST;
}

static void jan_delete_done(zkc__req *r)
{
    jan_item *it = r->ctx;
    janitor *j = jan_of(r->c);
    it->busy = 0;
    if (!j) {
        free(it->path);
        free(it);
        return;
    }
    if (jan_retryable(r->rc) && !r->c->closing)
        return; /* stays listed: retried on the next (re)connection */
    if (r->rc != ZR_OK && r->rc != ZR_NONODE)
        zkc__log(r->c, ZKC_LOG_WARN, "cannot delete %s: %s", it->path, zkc__zrc_name(r->rc));
    jan_unlink(it);
}

static void jan_list_done(zkc__req *r)
{
    jan_item *it = r->ctx;
    janitor *j = jan_of(r->c);
    if (!j) {
        free(it->path);
        free(it);
        return;
    }
    if (jan_retryable(r->rc) && !r->c->closing) {
        it->busy = 0;
        return;
    }
    /* Stays busy until unlinked: the deletes queued below run the janitor,
     * which must not send this item again. */
    if (r->rc == ZR_OK) {
        for (int i = 0; i < r->nchildren; i++) {
            if (strstr(r->children[i], it->uuid)) {
                char *p = zkc__path_join(it->path, r->children[i]);
                if (p) {
                    zkc__janitor_delete(r->c, p);
                    free(p);
                }
            }
        }
    }
    jan_unlink(it);
}

static void jan_sync_done(zkc__req *r)
{
    jan_item *it = r->ctx;
    janitor *j = jan_of(r->c);
    if (!j || (jan_retryable(r->rc) && !r->c->closing)) {
        it->busy = 0;
        if (!j) {
            free(it->path);
            free(it);
        }
        return;
    }
    /* Synced: the server we ask has seen our create if it was applied. */
    zkc__children(r->c, it->path, NULL, jan_list_done, it);
}

static void jan_run(janitor *j)
{
    zkc_client *c = j->c;
    if (c->state != ZKC__S_CONNECTED || c->closing)
        return;
    zkc__list_node *n, *tmp;
    ZKC__LIST_FOREACH_SAFE(n, tmp, &j->items) {
        jan_item *it = ZKC__CONTAINER_OF(n, jan_item, node);
        if (it->busy)
            continue;
        it->busy = 1;
        if (it->find)
            zkc__sync(c, it->path, jan_sync_done, it);
        else
            zkc__delete(c, it->path, -1, jan_delete_done, it);
    }
}

static void jan_session(zkc__sess_listener *sl, zkc_state st, uint64_t gen)
{
    janitor *j = ZKC__CONTAINER_OF(sl, janitor, sl);
    ZKC__UNUSED(gen);
    if (st == ZKC_STATE_CONNECTED || st == ZKC_STATE_RECONNECTED)
        jan_run(j);
}

static void jan_shutdown(zkc__object *o)
{
    janitor *j = ZKC__CONTAINER_OF(o, janitor, obj);
    zkc_client *c = j->c;
    /* Items with a request in flight are freed by its completion (ZR_CLOSING). */
    zkc__list_node *n, *tmp;
    ZKC__LIST_FOREACH_SAFE(n, tmp, &j->items) {
        jan_item *it = ZKC__CONTAINER_OF(n, jan_item, node);
        zkc__list_remove(n);
        if (!it->busy) {
            free(it->path);
            free(it);
        }
    }
    zkc__sess_unlisten(c, &j->sl);
    zkc__object_unlink(c, &j->obj);
    zkc__singleton_remove(c, &j->single);
    free(j);
}

/* Client free without a shutdown first cannot happen (shutdown unregisters
 * the janitor); the hook is there for the registry's contract. */
static void jan_free(zkc__singleton *s)
{
    free(ZKC__CONTAINER_OF(s, janitor, single));
}

static int jan_make(void *state, zkc_client *c)
{
    janitor *j = state;
    j->c = c;
    zkc__list_init(&j->items);
    j->obj.shutdown = jan_shutdown;
    j->sl.fn = jan_session;
    zkc__object_link(c, &j->obj);
    zkc__sess_listen(c, &j->sl);
    return 0;
}

static janitor *jan_get(zkc_client *c)
{
    return ZKC__SINGLETON(c, &jan_key, janitor, single, jan_make, jan_free);
}

static void jan_add(zkc_client *c, const char *path, const char *uuid)
{
    janitor *j = c->closing ? NULL : jan_get(c);
    if (!j)
        return; /* closing: the session's end removes our ephemeral nodes */
    jan_item *it = calloc(1, sizeof *it);
    if (!it || !(it->path = strdup(path))) {
        free(it);
        return;
    }
    if (uuid) {
        it->find = 1;
        snprintf(it->uuid, sizeof it->uuid, "%s", uuid);
    }
    zkc__list_push_front(&j->items, &it->node);
    jan_run(j);
}

void zkc__janitor_delete(zkc_client *c, const char *node)
{
    jan_add(c, node, NULL);
}

void zkc__janitor_find(zkc_client *c, const char *dir, const char *uuid)
{
    jan_add(c, dir, uuid);
}
