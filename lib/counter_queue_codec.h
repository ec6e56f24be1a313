/* The records the queued counter mode (lib/counter_queue.c) stores in its
 * queue's nodes: pure encode/decode functions in lib/counter_queue_codec.c,
 * unit-tested (tests/test_counter.c) and fuzzed (tests/fuzz/fuzz_cqueue.c)
 * without a server. Anyone with write access to the queue can put anything
 * there, so the decoders trust no count in the data, read nothing past `len`
 * but its NUL, and accept only what the encoders write (decimal numbers
 * without '+' or blanks, single spaces, every line ended, nothing after the
 * last); anything else is refused (the caller answers ZKC_EBADDATA or skips
 * the batch).
 *
 * Data handed to a decoder is the request layer's copy (lib/req.h): `len`
 * bytes followed by a NUL that is not part of the data.
 *
 * Formats, version 1 (the magic carries the version):
 *   batch    "zkcq1 <counter path>\n<n>\n" then n lines
 *            "<delta> <flags> <floor> <ceiling>\n"   (flags: 1 floor, 2 ceiling)
 *   outcome  "zkcr1 <n>\n" then n lines "<status> <before> <after>\n"
 *   inline   the same adds in a batch node's name, so that an applier needs
 *            no read of it (lib/counter_queue.c, PIPELINE): per add
 *            "<delta>.<flags>.<floor>.<ceiling>_", at most ZKC__CQ_INLINE_MAX
 *            bytes in all (a longer batch is read from its data). */
#ifndef ZKC_COUNTER_QUEUE_CODEC_H
#define ZKC_COUNTER_QUEUE_CODEC_H

#include <stdint.h>
#include <zkcoord.h>

/* Adds per batch; lib/counter_queue.c checks it equals ZKC__CTR_BATCH_MAX. */
#define ZKC__CQ_ADDS_MAX 64

typedef struct zkc__cq_add {
    int64_t delta;
    zkc_bounds bounds;
} zkc__cq_add;

/* A malloc'd batch record of n adds (1..ZKC__CQ_ADDS_MAX) on path, its length
 * in *len; NULL when out of memory. */
char *zkc__cq_encode_batch(const char *path, int n, const zkc__cq_add *adds, int *len);
/* A queued batch's adds into out[ZKC__CQ_ADDS_MAX]: their number, or -1 when
 * malformed or of another counter than path (a hash collision of queue
 * directories). */
int zkc__cq_decode_batch(const char *data, int len, const char *path, zkc__cq_add *out);
/* A malloc'd outcome record of n adds, its length in *len; NULL when out of memory. */
char *zkc__cq_encode_result(int n, const int *verdict, const zkc_counter_result *res, int *len);
/* The outcome of a batch of exactly n adds (n <= ZKC__CQ_ADDS_MAX) into
 * verdict[n] and res[n]: 0, or -1 when malformed, of another count, or with an
 * outcome no applier writes (a status other than 0, ZKC_EBOUND and
 * ZKC_EOVERFLOW, or a refusal whose after is not its before). */
int zkc__cq_decode_result(const char *data, int len, int n, int *verdict, zkc_counter_result *res);

/* The inline form of n adds into buf (NUL-terminated): its length, or -1
 * when longer than ZKC__CQ_INLINE_MAX (then the name carries none). */
#define ZKC__CQ_INLINE_MAX 160
int zkc__cq_encode_inline(int n, const zkc__cq_add *adds, char buf[ZKC__CQ_INLINE_MAX + 1]);
/* The adds of an inline form of len bytes at s (not NUL-terminated) into
 * out[ZKC__CQ_ADDS_MAX]: their number, or -1 when it is not exactly what
 * zkc__cq_encode_inline writes. */
int zkc__cq_decode_inline(const char *s, size_t len, zkc__cq_add *out);

#endif
