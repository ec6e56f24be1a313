/* Transitional: the queue engine became lib/member.c (our node in a queue),
 * lib/janitor.c (deferred deletes) and lib/lock.c (the lock object). Files
 * that included this for the janitor and queue names include janitor.h and
 * seqname.h instead; this header goes once none does. */
#ifndef ZKC_QUEUE_H
#define ZKC_QUEUE_H

#include "janitor.h"
#include "seqname.h"

#endif
