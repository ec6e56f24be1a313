/* The records the inventory reservation recipe stores in nodes
 * (lib/inventory_codec.c): pure encode/decode functions, unit-tested and
 * fuzzed without a server. Anyone with write
 * access to a node can put anything in it, so decoders never trust lengths or
 * counts in the data, never read past `len`, and accept only the canonical
 * encoding (no leading zeros, single spaces, lowercase hex): whatever they
 * accept re-encodes to the very same bytes.
 *
 * A fuzz target needs only lib/inventory_codec.c (plus lib/error.c, lib/path.c
 * and lib/loop.c, which path.c calls into).
 *
 * Formats, version 1 (the magic carries the version; a later release keeps
 * reading these and refuses unknown versions with a message):
 *   SKU node       "zkcs1 <available> <reserved> <sold> <total>"
 *                  all >= 0 and available + reserved + sold == total
 *   request record "zkcr1 <STATE> <hold_ms> <flags> <nonce> <owner> <n>\n"
 *                  then n lines "<qty> <sku>\n" (distinct SKUs)
 *                  STATE: PENDING RESERVED SOLD RETURNED OUT_OF_STOCK
 *                  TIMED_OUT EXPIRED; owner: 16 hex digits (session id)
 *   queue entry    "zkcq1 <qty> <flags> <nlines> <hold_ms> <nonce> <id>"
 *                  (the id runs to the end of the data)
 *   queue node     name "_c_<nonce>-r-<ZooKeeper sequence suffix>": a member
 *                  of the member core (lib/member.c) whose attempt tag is
 *                  the nonce and whose recipe tag is "r-" (before 0.1.0 it
 *                  was "r-<nonce>-<suffix>"; nothing released used that)
 * nonce: 12 lowercase hex digits, one per enqueue attempt; flags: bit 0 =
 * wait for restock. */
#ifndef ZKC_INVENTORY_CODEC_H
#define ZKC_INVENTORY_CODEC_H

#include <stddef.h>
#include <stdint.h>

#define ZKC__RES_MAX_LINES 32
#define ZKC__RES_NAME_MAX 200           /* SKU names and request ids, as zkc__name_check */
#define ZKC__RES_NONCE_LEN 12
#define ZKC__RES_QTY_MAX (INT64_C(1) << 50) /* per line; sums over a queue cannot overflow */
#define ZKC__RES_HOLD_MAX INT64_C(2147483647)
#define ZKC__RES_QUEUE_MAX 10000        /* waiting requests per SKU queue */
#define ZKC__RES_BATCH 64               /* decisions per grant transaction */
#define ZKC__RES_F_WAIT 1               /* wait for restock instead of failing fast */

typedef struct zkc__sku_rec {
    int64_t available, reserved, sold, total;
} zkc__sku_rec;

typedef struct zkc__res_line {
    int64_t qty;
    char sku[ZKC__RES_NAME_MAX + 1];
} zkc__res_line;

typedef struct zkc__res_rec {
    int state;        /* zkc_inventory_state; ABANDONED is never stored */
    int flags;
    int64_t hold_ms;
    char nonce[ZKC__RES_NONCE_LEN + 1];
    uint64_t owner;   /* session that queued it (diagnostics) */
    int n;
    zkc__res_line line[ZKC__RES_MAX_LINES];
} zkc__res_rec;

typedef struct zkc__res_qent {
    int64_t qty;
    int flags;
    int nlines;
    int64_t hold_ms;
    char nonce[ZKC__RES_NONCE_LEN + 1];
    char id[ZKC__RES_NAME_MAX + 1];
} zkc__res_qent;

/* Decoders: 0, or ZKC_EBADDATA with *why (may be NULL) set to a static reason.
 * Encoders: the length written (NUL-terminated), or -1 if buf is too small or
 * the value is not encodable (what the decoder would refuse). */
int zkc__sku_decode(const char *data, int len, zkc__sku_rec *out, const char **why);
int zkc__sku_encode(const zkc__sku_rec *r, char *buf, size_t len);
int zkc__resrec_decode(const char *data, int len, zkc__res_rec *out, const char **why);
int zkc__resrec_encode(const zkc__res_rec *r, char *buf, size_t len);
int zkc__qent_decode(const char *data, int len, zkc__res_qent *out, const char **why);
int zkc__qent_encode(const zkc__res_qent *e, char *buf, size_t len);
#define ZKC__RES_NODE_TAG "r-"           /* the member core's tag of queue nodes */

/* Queue node name: 1 with the nonce (13 bytes) and sequence, or 0. */
int zkc__resname_parse(const char *name, char *nonce, int32_t *seq);
/* 1 if name is a queue node name (the member core's filter, ops->accept). */
int zkc__resname_ok(const char *name);
/* Index of the queue node carrying `nonce` among names, or -1. */
int zkc__resname_find(char **names, int n, const char *nonce);
const char *zkc__res_state_name(int state); /* "PENDING", ...; "?" if unknown */

/* Fuzz entry: decode data as whichever record its magic names and check that
 * what is accepted re-encodes to the same bytes. 0 accepted, ZKC_EBADDATA
 * refused (with *why), -100 on a round-trip mismatch (a bug). */
int zkc__res_parse(const char *data, int len, const char **why);

#endif
