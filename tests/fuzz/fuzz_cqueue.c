/* libFuzzer: the records of the queued counter mode (a client's batch node and
 * an outcome node in the queue; anyone with write access can write anything
 * there): decoding never crashes or overreads, what is accepted re-encodes to
 * a record that decodes to the very same adds and outcomes, and an accepted
 * outcome is one an applier writes (its status reaches the caller as is); the
 * same for the inline form of a batch in its node's name. */
#include "counter_queue_codec.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The counter the seed batches are of (tests/fuzz/corpus/cqueue). */
#define PATH "/c"

/* A decoded batch and its re-encoding's decoding hold the same n adds. */
static void same_adds(const zkc__cq_add *a, const zkc__cq_add *b, int n)
{
    for (int i = 0; i < n; i++)
        if (b[i].delta != a[i].delta || b[i].bounds.has_floor != a[i].bounds.has_floor ||
            b[i].bounds.has_ceiling != a[i].bounds.has_ceiling || b[i].bounds.floor != a[i].bounds.floor ||
            b[i].bounds.ceiling != a[i].bounds.ceiling)
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > INT32_MAX - 1)
        return 0;
    /* What the request layer hands over (lib/req.h): the data and a NUL, in a
     * buffer of exactly that size so ASan sees any read past it. */
    char *d = malloc(size + 1);
    if (!d)
        return 0;
    memcpy(d, data, size);
    d[size] = 0;
    int len = (int)size;

    zkc__cq_add adds[ZKC__CQ_ADDS_MAX], back[ZKC__CQ_ADDS_MAX];
    int n = zkc__cq_decode_batch(d, len, PATH, adds);
    if (n > ZKC__CQ_ADDS_MAX || n == 0 || n < -1)
        abort();
    if (n > 0) {
        int el;
        char *e = zkc__cq_encode_batch(PATH, n, adds, &el);
        if (!e)
            abort();
        if (zkc__cq_decode_batch(e, el, PATH, back) != n)
            abort();
        same_adds(adds, back, n);
        free(e);
    }
    /* Another counter's batch (or a path that is a prefix of it) is refused. */
    if (zkc__cq_decode_batch(d, len, "/c/x", adds) > 0 && n > 0)
        abort();

    /* An outcome is read for the batch its reader queued: try every count. */
    for (int want = 1; want <= ZKC__CQ_ADDS_MAX; want++) {
        int verdict[ZKC__CQ_ADDS_MAX], vb[ZKC__CQ_ADDS_MAX];
        zkc_counter_result res[ZKC__CQ_ADDS_MAX], rb[ZKC__CQ_ADDS_MAX];
        if (zkc__cq_decode_result(d, len, want, verdict, res) != 0)
            continue;
        for (int i = 0; i < want; i++)
            if ((verdict[i] != 0 && verdict[i] != ZKC_EBOUND && verdict[i] != ZKC_EOVERFLOW) ||
                (verdict[i] != 0 && res[i].before != res[i].after))
                abort();
        int el;
        char *e = zkc__cq_encode_result(want, verdict, res, &el);
        if (!e)
            abort();
        if (zkc__cq_decode_result(e, el, want, vb, rb) != 0)
            abort();
        for (int i = 0; i < want; i++)
            if (vb[i] != verdict[i] || rb[i].before != res[i].before || rb[i].after != res[i].after ||
                rb[i].replayed != 0 || res[i].replayed != 0)
                abort();
        free(e);
    }

    /* The inline form a batch node's name carries: the input as a name's
     * middle part (not NUL-terminated there: decode it from a copy without
     * one, so ASan sees a read past it). What is accepted re-encodes to a
     * form that decodes to the very same adds. */
    if (size <= ZKC__CQ_INLINE_MAX) {
        char *nm = malloc(size ? size : 1);
        if (!nm)
            abort();
        memcpy(nm, data, size);
        int ni = zkc__cq_decode_inline(nm, size, adds);
        if (ni > ZKC__CQ_ADDS_MAX || ni == 0 || ni < -1)
            abort();
        if (ni > 0) {
            char ib[ZKC__CQ_INLINE_MAX + 1];
            int il = zkc__cq_encode_inline(ni, adds, ib);
            if (il < 0 || zkc__cq_decode_inline(ib, (size_t)il, back) != ni)
                abort(); /* what was accepted is no longer than its canonical form */
            same_adds(adds, back, ni);
        }
        free(nm);
    }
    free(d);
    return 0;
}
