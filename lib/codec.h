/* Counter value formats and the records stored in marker and key nodes
 * (lib/codec.c). Pure functions: unit-tested and fuzzed. */
#ifndef ZKC_CODEC_H
#define ZKC_CODEC_H

#include <stddef.h>
#include <stdint.h>

/* Decode node data of the given zkc_format. Empty data is `initial`.
 * 0, or ZKC_EBADDATA with *why set to a static reason. */
int zkc__value_decode(int fmt, const char *data, int len, int64_t initial, int64_t *out, const char **why);
/* Encode into buf (>= 24 bytes); returns the length, or ZKC_EOVERFLOW when the
 * value does not fit the format. */
int zkc__value_encode(int fmt, int64_t v, char *buf);
/* 1 if a node at this version can still take a conditional write: -1 means
 * "any version" to ZooKeeper, so a node that reached it cannot. */
int zkc__version_usable(int32_t version);

/* A decided update, as stored in a slot marker or a key node:
 *   "zkc1 <id> <n>\n" then n lines "<before> <after>\n". */
#define ZKC__REC_MAX_ENTRIES 256
typedef struct zkc__record {
    char id[96];
    int n;
    int64_t before[ZKC__REC_MAX_ENTRIES];
    int64_t after[ZKC__REC_MAX_ENTRIES];
} zkc__record;

/* Returns the length written, or -1 if buf is too small. */
int zkc__record_encode(const zkc__record *r, char *buf, size_t len);
/* 0 or ZKC_EBADDATA. Never trusts lengths or counts in the data. */
int zkc__record_decode(const char *data, int len, zkc__record *r);

#endif
