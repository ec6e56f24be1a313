/* Queue member names (lib/seqname.c). Included by member.c, the lock recipes and tests. */
#ifndef ZKC_SEQNAME_H
#define ZKC_SEQNAME_H

#include <stdint.h>

#define ZKC__STYLE_CURATOR 1
#define ZKC__STYLE_KAZOO 2
#define ZKC__STYLE_ZKCOORD 4
#define ZKC__STYLE_OTHER 8

typedef struct zkc__member {
    const char *name;
    int32_t seq;
    int kind; /* zkc_lock_kind, or -1 when the name is not one we know */
} zkc__member;

/* 1 and the child's sequence number, kind and naming style; 0 if the name
 * carries no ZooKeeper sequence suffix (junk: ignored by every recipe). */
int zkc__seq_parse(const char *name, int32_t *seq, int *kind, int *style);
/* Serial-number order (RFC 1982) on the signed 32-bit suffix. */
int zkc__seq_cmp(int32_t a, int32_t b);
/* Parse and sort names into out (room for n); returns the member count;
 * *junk counts names without a suffix, *styles ORs the naming styles seen. */
int zkc__members_parse(char **names, int n, zkc__member *out, int *junk, int *styles);
int zkc__member_find(const zkc__member *m, int n, const char *name);

#endif
