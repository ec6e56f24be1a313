/* The one intrusive doubly-linked list of lib/ (in the spirit of libuv's queue
 * and nng's nni_list): a node embedded in each element, a circular list with
 * its head as sentinel, so insertion and removal need no allocation, no search
 * and no knowledge of which list holds the node. Not thread-safe: each list
 * belongs to one thread (the engine, for every list of the client).
 *
 * A list head must be initialised (zkc__list_init) before use; a node need not
 * be until it is inserted. A removed node reads as unlinked, so removing twice
 * is harmless. */
#ifndef ZKC_LIST_H
#define ZKC_LIST_H

#include <stddef.h>

typedef struct zkc__list_node zkc__list_node;
struct zkc__list_node {
    zkc__list_node *next, *prev; /* NULL while not in a list */
};

typedef struct zkc__list {
    zkc__list_node head;
} zkc__list;

static inline void zkc__list_init(zkc__list *l)
{
    l->head.next = l->head.prev = &l->head;
}

static inline int zkc__list_empty(const zkc__list *l)
{
    return l->head.next == &l->head;
}

static inline int zkc__list_linked(const zkc__list_node *n)
{
    return n->next != NULL;
}

static inline void zkc__list_insert_after(zkc__list_node *at, zkc__list_node *n)
{
    n->prev = at;
    n->next = at->next;
    at->next->prev = n;
    at->next = n;
}

static inline void zkc__list_push_front(zkc__list *l, zkc__list_node *n)
{
    zkc__list_insert_after(&l->head, n);
}

static inline void zkc__list_push_back(zkc__list *l, zkc__list_node *n)
{
    zkc__list_insert_after(l->head.prev, n);
}

static inline void zkc__list_remove(zkc__list_node *n)
{
    if (!n->next)
        return;
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->next = n->prev = NULL;
}

/* Move every node of src, in order, to dst (whose nodes are forgotten); src
 * is left empty. */
static inline void zkc__list_take(zkc__list *dst, zkc__list *src)
{
    if (zkc__list_empty(src)) {
        zkc__list_init(dst);
        return;
    }
    dst->head.next = src->head.next;
    dst->head.prev = src->head.prev;
    dst->head.next->prev = &dst->head;
    dst->head.prev->next = &dst->head;
    zkc__list_init(src);
}

/* First node, or NULL when empty. */
static inline zkc__list_node *zkc__list_first(const zkc__list *l)
{
    return zkc__list_empty(l) ? NULL : l->head.next;
}

/* The node after n in l, or NULL at the end. */
static inline zkc__list_node *zkc__list_next(const zkc__list *l, const zkc__list_node *n)
{
    return n->next == &l->head ? NULL : n->next;
}

/* Visit every node; the body may remove (or free) the current node, not others. */
#define ZKC__LIST_FOREACH_SAFE(n, tmp, l) \
    for ((n) = (l)->head.next, (tmp) = (n)->next; (n) != &(l)->head; (n) = (tmp), (tmp) = (n)->next)

#endif
