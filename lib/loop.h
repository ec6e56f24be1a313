/* The engine and dispatch threads (loop.c): tasks and timers for the engine,
 * jobs for the dispatch thread. */
#ifndef ZKC_LOOP_H
#define ZKC_LOOP_H

#include "list.h"
#include "zkcoord.h"

#include <stdint.h>

int64_t zkc__now_ms(void); /* monotonic */

typedef struct zkc__task zkc__task;
struct zkc__task {
    void (*fn)(zkc__task *t); /* runs on the engine (see loop.c) */
    zkc__list_node node;      /* in the engine's queue while posted */
};

typedef struct zkc__timer zkc__timer;
struct zkc__timer {
    void (*fn)(zkc__timer *t); /* engine */
    int64_t due;
    int index;                 /* heap slot, -1 when not armed */
};

typedef struct zkc__job zkc__job;
struct zkc__job {
    void (*fn)(zkc__job *j);   /* runs on the dispatch thread */
    zkc__list_node node;       /* in the dispatch queue while queued */
};

/* Any thread: queue t for the engine. */
void zkc__post(zkc_client *c, zkc__task *t);
/* Any thread but the engine: take the engine role to run one event in place
 * (1), when the engine is idle: nothing queued, no batch running, not
 * stopping; else 0 (then post it). Never with a user callback to run. Between
 * enter and leave the thread IS the engine (zkc__on_engine). *saved keeps
 * the role this thread held for another client, restored by leave. */
int zkc__engine_enter(zkc_client *c, zkc_client **saved);
void zkc__engine_leave(zkc_client *c, zkc_client *saved);
/* Engine: run l->fn(l) on this thread just after it gives up an engine role
 * held in place (returns 1), so that a caller woken by it finds the engine
 * idle and runs its next call in place too; on the engine thread returns 0
 * (do it now: the engine thread looks at its queue before it sleeps). */
typedef struct zkc__later zkc__later;
struct zkc__later {
    void (*fn)(zkc__later *l);
    zkc__later *next;
};
int zkc__engine_later(zkc__later *l);
/* Any thread: allocate a task that calls fn(arg) on the engine. ZKC_ENOMEM/ZKC_ECLOSED. */
int zkc__post_call(zkc_client *c, void (*fn)(void *arg), void *arg);
/* Engine: arm/disarm timers (re-arming moves it). */
void zkc__timer_init(zkc__timer *t, void (*fn)(zkc__timer *t));
void zkc__timer_arm(zkc_client *c, zkc__timer *t, int64_t due_ms);
void zkc__timer_disarm(zkc_client *c, zkc__timer *t);
/* Engine: queue a job for the dispatch thread. */
void zkc__dispatch(zkc_client *c, zkc__job *j);
int zkc__on_engine(zkc_client *c);
int zkc__on_dispatch(zkc_client *c);
/* Threads: start both, stop both (after the engine drained its shutdown). */
int zkc__loop_start(zkc_client *c);
void zkc__loop_stop(zkc_client *c);

#endif
