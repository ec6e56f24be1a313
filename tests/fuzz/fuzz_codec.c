/* libFuzzer: counter data in every format and the records zkcoord stores in
 * nodes (anyone with write access can put anything there): decode never
 * crashes, never reads past the data, and what it accepts re-encodes to an
 * equivalent value. */
#include "internal.h"
#include "codec.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact-size copy so ASan sees any overread. */
    char *d = malloc(size ? size : 1);
    if (!d)
        return 0;
    memcpy(d, data, size);
    for (int fmt = 0; fmt <= 2; fmt++) {
        int64_t v;
        const char *why = NULL;
        if (zkc__value_decode(fmt, d, (int)size, 7, &v, &why) == 0) {
            char enc[24];
            int len = zkc__value_encode(fmt, v, enc);
            if (len < 0)
                abort(); /* a decoded value always fits its own format */
            int64_t back;
            if (zkc__value_decode(fmt, enc, len, 7, &back, &why) != 0 || back != v)
                abort();
        } else if (!why) {
            abort(); /* every refusal says why */
        }
    }
    zkc__record *r = malloc(sizeof *r);
    if (r && zkc__record_decode(d, (int)size, r) == 0) {
        if (r->n < 0 || r->n > ZKC__REC_MAX_ENTRIES)
            abort();
        char *out = malloc(65536);
        if (out && zkc__record_encode(r, out, 65536) < 0)
            abort();
        free(out);
    }
    free(r);
    free(d);
    return 0;
}
