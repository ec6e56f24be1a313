/* A first look at zkcoord: take a lock, bump a counter, print what happened.
 * Uses only the public API. ZKC_HOSTS names the ensemble (run-demo starts a
 * local one when it is unset). */
#include <zkcoord.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

static void on_state(zkc_client *c, zkc_state st, void *ud)
{
    (void)c;
    (void)ud;
    static const char *names[] = {"", "CONNECTED", "SUSPENDED", "RECONNECTED", "LOST"};
    printf("  [session] %s\n", names[st]);
}

int main(void)
{
    const char *hosts = getenv("ZKC_HOSTS");
    if (!hosts) {
        fprintf(stderr, "demo: set ZKC_HOSTS (host:port,...)\n");
        return 2;
    }
    zkc_client_options o;
    zkc_client_options_init(&o);
    o.hosts = hosts;
    zkc_client *c;
    int rc = zkc_client_create(&c, &o);
    if (rc) {
        fprintf(stderr, "demo: cannot connect: %s (%s)\n", zkc_strerror(rc), zkc_errmsg());
        return 1;
    }
    zkc_client_set_listener(c, on_state, NULL);
    printf("connected to %s (session timeout %d ms)\n", hosts, zkc_client_session_timeout(c));

    zkc_lock *lock;
    int64_t token;
    if ((rc = zkc_lock_create(c, "/demo/locks/sku-42", &lock)) != 0 ||
        (rc = zkc_lock_acquire(lock, 5000, &token)) != 0) {
        fprintf(stderr, "demo: lock: %s\n", zkc_errmsg());
        return 1;
    }
    printf("took lock /demo/locks/sku-42, fencing token %" PRId64 "\n", token);

    zkc_counter *stock;
    zkc_counter_result r;
    zkc_update u = {0};
    u.bounds.has_floor = 1; /* stock never below zero */
    u.bounds.floor = 0;
    if ((rc = zkc_counter_create(c, "/demo/stock/sku-42", NULL, &stock)) != 0 ||
        (rc = zkc_counter_add(stock, 10, NULL, &r)) != 0) {
        fprintf(stderr, "demo: counter: %s\n", zkc_errmsg());
        return 1;
    }
    printf("restocked sku-42: %" PRId64 " -> %" PRId64 "\n", r.before, r.after);
    rc = zkc_counter_add(stock, -3, &u, &r);
    printf("sold 3 units: %s, %" PRId64 " -> %" PRId64 "\n", zkc_strerror(rc), r.before, r.after);
    rc = zkc_counter_add(stock, -1000, &u, &r);
    printf("tried to sell 1000: %s (%s)\n", zkc_strerror(rc), zkc_errmsg());

    zkc_lock_release(lock);
    printf("released the lock\n");
    zkc_counter_destroy(stock);
    zkc_lock_destroy(lock);
    zkc_client_destroy(c);
    return 0;
}
