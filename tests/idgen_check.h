/* Shared by the id generator suites (test_idgen.c, test_idgen_faults.c):
 * making a generator, reading the leased top, and the one property check
 * every id test ends with. Header-only: each suite is one translation unit. */
#ifndef ZKC_IDGEN_CHECK_H
#define ZKC_IDGEN_CHECK_H

#include "testutil.h"

#include <stdlib.h>
#include <string.h>

static inline zkc_idgen *idg_make(zkc_client *c, const char *path, int64_t block, int64_t max_block, int grow_ms)
{
    zkc_idgen_options o;
    zkc_idgen_options_init(&o);
    o.block = block;
    o.max_block = max_block;
    o.grow_ms = grow_ms;
    zkc_idgen *g = NULL;
    int rc = zkc_idgen_create(c, path, &o, &g);
    ck_assert_msg(rc == 0, "zkc_idgen_create(%s): %s", path, zkc_errmsg());
    return g;
}

/* The highest id leased at `path` (the counter's value). A fresh read: the
 * last leases may be other clients' writes that c's server has not applied
 * yet (a plain read could report a top below ids already handed out). */
static inline int64_t idg_top(zkc_client *c, const char *path)
{
    zkc_counter *ctr = NULL;
    ck_assert_int_eq(zkc_counter_create(c, path, NULL, &ctr), 0);
    int64_t v = 0;
    ck_assert_msg(zkc_counter_get_fresh(ctr, &v) == 0, "get %s: %s", path, zkc_errmsg());
    zkc_counter_destroy(ctr);
    return v;
}

static int idg_cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* A generator in gap-free mode (one exactly-once write per id). */
static inline zkc_idgen *idg_make_gapfree(zkc_client *c, const char *path)
{
    zkc_idgen_options o;
    zkc_idgen_options_init(&o);
    o.gap_free = 1;
    zkc_idgen *g = NULL;
    int rc = zkc_idgen_create(c, path, &o, &g);
    ck_assert_msg(rc == 0, "zkc_idgen_create(%s, gap_free): %s", path, zkc_errmsg());
    return g;
}

/* seqs[i] holds lens[i] ids in the order one caller got them from one
 * generator: each strictly increasing (if `increasing`), none twice across
 * all, all in 1..top. Returns how many ids there were. */
static inline int idg_check_seqs(int64_t *const *seqs, const int *lens, int nseq, int64_t top, int increasing)
{
    int total = 0;
    for (int i = 0; i < nseq; i++) {
        for (int k = 1; increasing && k < lens[i]; k++)
            ck_assert_msg(seqs[i][k] > seqs[i][k - 1], "sequence %d: id %lld after %lld", i,
                          (long long)seqs[i][k], (long long)seqs[i][k - 1]);
        total += lens[i];
    }
    int64_t *all = malloc((size_t)(total ? total : 1) * sizeof *all);
    ck_assert_ptr_nonnull(all);
    for (int i = 0, at = 0; i < nseq; i++) {
        memcpy(all + at, seqs[i], (size_t)lens[i] * sizeof *all);
        at += lens[i];
    }
    qsort(all, (size_t)total, sizeof *all, idg_cmp);
    for (int k = 1; k < total; k++)
        ck_assert_msg(all[k] != all[k - 1], "id %lld handed out twice", (long long)all[k]);
    if (total) {
        ck_assert_msg(all[0] >= 1, "ids start at 1, got %lld", (long long)all[0]);
        ck_assert_msg(all[total - 1] <= top, "id %lld above the leased top %lld", (long long)all[total - 1],
                      (long long)top);
    }
    free(all);
    return total;
}

static inline int idg_check(int64_t *const *seqs, const int *lens, int nseq, int64_t top)
{
    return idg_check_seqs(seqs, lens, nseq, top, 1);
}

/* Gap-free: as idg_check_seqs, and the ids plus the `voided` ones are exactly
 * 1..top (n distinct ids in 1..top with n == top: no hole). */
static inline void idg_check_gapless(int64_t *const *seqs, const int *lens, int nseq, int64_t top, int voided,
                                     int increasing)
{
    int total = idg_check_seqs(seqs, lens, nseq, top, increasing);
    ck_assert_msg(total + voided == top, "%d ids handed out and %d voided, but %lld taken: %lld unaccounted for",
                  total, voided, (long long)top, (long long)(top - total - voided));
}

#endif
