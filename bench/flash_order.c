/* The flash sale's order book (issue 19), shared by the scenario, its worker
 * processes and, line for line, CuratorPeer.java's "flash" workload: order i
 * is a pure function of i, so every process knows every order and the stock
 * can be set from the exact demand without a shared list.
 *
 * An order has 1-3 lines of 1 or 2 units on distinct SKUs; with probability
 * FLASH_HOT_PCT % its first line is the hot SKU, the others are drawn from the
 * FLASH_COLD cold SKUs. The hot SKU is stocked with half its demand; each cold
 * SKU with its whole demand, so every refusal is the hot SKU's. */
#include "bench.h"

#include <string.h>

static uint64_t splitmix64(uint64_t x)
{
    uint64_t z = x + 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

int flash_order(int i, flash_line out[3])
{
    uint64_t z = splitmix64((uint64_t)i), y = splitmix64((uint64_t)i ^ 0x5DEECE66DULL);
    int n = 1 + (int)((z & 0xffff) % 3);
    int hot = (int)(((z >> 16) & 0xffff) % 100) < FLASH_HOT_PCT;
    int used[3], nu = 0;
    for (int k = 0; k < n; k++) {
        out[k].qty = 1 + (int64_t)((z >> (32 + k)) & 1);
        if (k == 0 && hot) {
            out[k].sku = -1;
            continue;
        }
        int c = (int)(((y >> (16 * k)) & 0xffff) % FLASH_COLD);
        for (int again = 1; again;) {
            again = 0;
            for (int u = 0; u < nu; u++)
                if (used[u] == c) {
                    c = (c + 1) % FLASH_COLD;
                    again = 1;
                }
        }
        used[nu++] = c;
        out[k].sku = c;
    }
    return n;
}

void flash_sku_name(int sku, char *out, size_t len)
{
    if (sku < 0)
        snprintf(out, len, "hot");
    else
        snprintf(out, len, "c%02d", sku);
}

void flash_stock(int orders, int64_t *hot, int64_t cold[FLASH_COLD])
{
    int64_t hot_demand = 0;
    memset(cold, 0, sizeof(int64_t) * FLASH_COLD);
    for (int i = 0; i < orders; i++) {
        flash_line l[3];
        int n = flash_order(i, l);
        for (int k = 0; k < n; k++) {
            if (l[k].sku < 0)
                hot_demand += l[k].qty;
            else
                cold[l[k].sku] += l[k].qty;
        }
    }
    *hot = hot_demand / 2;
    for (int c = 0; c < FLASH_COLD; c++)
        if (!cold[c])
            cold[c] = 1; /* restock wants qty > 0 */
}
