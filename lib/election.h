/* Leader election (lib/election.c), as other recipes of the library see it. */
#ifndef ZKC_ELECTION_H
#define ZKC_ELECTION_H

#include "internal.h"

/* Engine: the current term, for writes fenced by it (a check of the node in a
 * multi, or the czxid as a token): 0 with our node's path (valid until the
 * calling engine task returns) and its czxid while leading and not LOST;
 * ZKC_ENOTHELD otherwise. */
int zkc__election_term(zkc_election *e, const char **node, int64_t *czxid);

#endif
