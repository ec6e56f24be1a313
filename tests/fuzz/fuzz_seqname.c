/* libFuzzer: queue member names from other clients (any bytes) never crash the
 * parser, and the order is a consistent serial-number order. */
#include "internal.h"
#include "seqname.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Split the input into up to 64 names at NUL or newline bytes. */
    char *buf = malloc(size + 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    buf[size] = 0;
    char *names[64];
    int n = 0;
    char *p = buf;
    for (size_t i = 0; i <= size && n < 64; i++) {
        if (buf[i] == '\n' || buf[i] == 0) {
            buf[i] = 0;
            names[n++] = p;
            p = buf + i + 1;
            if (i == size)
                break;
        }
    }
    zkc__member m[64];
    int junk = 0, styles = 0;
    int k = zkc__members_parse(names, n, m, &junk, &styles);
    if (k + junk != n)
        abort();
    /* Serial-number order is only a total order within a window of 2^31; when
     * every sequence lies in [0, 2^30) the sort must be plainly ascending. */
    int in_window = 1;
    for (int i = 0; i < k; i++)
        if (m[i].seq < 0 || m[i].seq >= (1 << 30))
            in_window = 0;
    for (int i = 1; in_window && i < k; i++)
        if (m[i - 1].seq > m[i].seq)
            abort();
    for (int i = 0; i < k; i++)
        if (zkc__member_find(m, k, m[i].name) < 0)
            abort();
    free(buf);
    return 0;
}
