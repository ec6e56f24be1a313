/* libFuzzer: the records the reservation queue stores in nodes (SKU record,
 * request record, queue entry; anyone with write access can write anything
 * there): decoding never crashes or overreads, and what is accepted re-encodes
 * to the very same bytes (zkc__res_parse checks that and aborts otherwise). */
#include "internal.h"
#include "inventory_codec.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *d = malloc(size ? size : 1);
    if (!d)
        return 0;
    memcpy(d, data, size);
    const char *why = NULL;
    zkc__res_parse(d, (int)size, &why);
    char nonce[16];
    int32_t seq;
    char *name = malloc(size + 1);
    if (name) {
        memcpy(name, data, size);
        name[size] = 0;
        zkc__resname_parse(name, nonce, &seq);
        free(name);
    }
    free(d);
    return 0;
}
