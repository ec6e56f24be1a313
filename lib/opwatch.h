/*
 * Operation watchdog, for test builds (./configure --enable-opwatch defines
 * ZKC_OPWATCH; without it every hook below compiles to nothing).
 *
 * An async call whose submission succeeded must call back exactly once. A
 * request that libzookeeper never completes, or a recipe path that forgets an
 * operation, breaks that silently: nothing fails, a callback just never comes
 * (issue 21.3: a chaos run lost 64 counter adds that way). So in test builds
 * every operation registers when zkc__op_run submits it and leaves when
 * zkc__op_finish completes it, and
 *   - a watchdog thread reports (kind, path, state, age) every operation still
 *     open past its bound, on stderr and appended to $ZKC_OPWATCH_FILE;
 *   - freeing a client with an operation of its own still open aborts.
 * A recipe labels the next operation it submits on this thread (kind, path and
 * bound; unlabelled ones have no time bound, only the destroy check), and
 * says where an operation is as it moves (a static string). The bound of a
 * labelled operation can be overridden with $ZKC_OPWATCH_BOUND_MS.
 */
#ifndef ZKC_OPWATCH_H
#define ZKC_OPWATCH_H

#include "internal.h"

#ifdef ZKC_OPWATCH
/* Any thread: label the next operation this thread submits. */
void zkc__opwatch_next(const char *kind, const char *path, int64_t bound_ms);
/* op.c, zkc__op_run: the operation is submitted (after any refusal). */
void zkc__opwatch_submit(zkc__op *op);
/* op.c, zkc__op_vfinish: completed (once). */
void zkc__opwatch_finish(zkc__op *op);
/* Engine: where the operation is now (a string with static storage). */
void zkc__opwatch_state(zkc__op *op, const char *state);
/* client.c: a client was made. The watchdog thread runs while any client
 * lives, so a process with none has no thread of ours left (tests count them). */
void zkc__opwatch_client_made(zkc_client *c);
/* client.c, client_free: every operation of c must be complete; aborts if not.
 * The last client's free stops and joins the watchdog. */
void zkc__opwatch_client_freed(zkc_client *c);
/* Reports made so far (tests). */
long zkc__opwatch_overdue(void);
#else
#define zkc__opwatch_next(kind, path, bound_ms) ((void)0)
#define zkc__opwatch_submit(op) ((void)0)
#define zkc__opwatch_finish(op) ((void)0)
#define zkc__opwatch_state(op, state) ((void)0)
#define zkc__opwatch_client_made(c) ((void)0)
#define zkc__opwatch_client_freed(c) ((void)0)
#endif

#endif
