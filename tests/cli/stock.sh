#!/bin/sh
# zkcoord stock: restock and read, reserve/lookup/confirm/return, a repeated
# --id reserves once, fail-fast out of stock (exit 10), usage errors (exit 2).
. "$(dirname "$0")/common.sh"
start_zk
C="timeout -s KILL 30 $ZKCOORD"

expect_out() {
    [ "$(cat "$T/out")" = "$1" ] || fail "expected output '$1', got '$(cat "$T/out")'"
}

# stock_is SKU AVAILABLE RESERVED SOLD TOTAL
stock_is() {
    run 0 $C --json stock /shop "$1"
    expect_out "{\"root\":\"/shop\",\"sku\":\"$1\",\"available\":$2,\"reserved\":$3,\"sold\":$4,\"total\":$5,\"queue_length\":0}"
}

run 0 $C stock restock /shop a 10
grep -qx "available 10" "$T/out" || fail "restock output"
run 0 $C stock restock /shop b 3
run 0 $C stock /shop a
grep -qx "total 10" "$T/out" || fail "read: total"
grep -qx "queue_length 0" "$T/out" || fail "read: queue_length"
stock_is a 10 0 0 10
ok "restock, then read (text and --json)"

run 0 $C stock reserve /shop --id o1 a:2 b:1
expect_out RESERVED
run 0 $C stock lookup /shop o1
expect_out RESERVED
stock_is a 8 2 0 10
stock_is b 2 1 0 3
run 0 $C stock reserve /shop --id o1 a:2 b:1
expect_out RESERVED
stock_is a 8 2 0 10
stock_is b 2 1 0 3
ok "reserve, lookup RESERVED; a repeated --id reserves once"

run 0 $C stock confirm /shop o1
expect_out SOLD
run 0 $C stock lookup /shop o1
expect_out SOLD
stock_is a 8 0 2 10
run 0 $C --json stock reserve /shop --id o2 a:3
expect_out '{"root":"/shop","id":"o2","state":"RESERVED"}'
stock_is a 5 3 2 10
run 0 $C stock return /shop o2
expect_out RETURNED
run 0 $C stock lookup /shop o2
expect_out RETURNED
stock_is a 8 0 2 10
run 1 $C stock confirm /shop o2
grep -q "is RETURNED, not RESERVED" "$T/err" || fail "confirm of a returned request: message"
ok "confirm -> SOLD (sold up); return of another -> units back"

run 10 $C stock reserve /shop --id o3 a:5 b:3
expect_out OUT_OF_STOCK
grep -q "not enough stock" "$T/err" || fail "out of stock message"
stock_is a 8 0 2 10
stock_is b 2 0 1 3
run 0 $C stock lookup /shop o3
expect_out OUT_OF_STOCK
run 3 $C stock reserve /shop --id o4 --wait --timeout 0.5 b:3
expect_out TIMED_OUT
stock_is b 2 0 1 3
ok "fail-fast out of stock exits 10 and reserves nothing; --wait --timeout exits 3"

run 0 $C stock reserve /shop --id o5 --hold-ms 1 a:1
sleep 0.2
run 0 $C stock reap /shop
expect_out 1
run 0 $C stock lookup /shop o5
expect_out EXPIRED
stock_is a 8 0 2 10
ok "reap returns the units of an unconfirmed reservation past --hold-ms"

run 2 $C stock reserve /shop --id x a
run 2 $C stock reserve /shop --id x a:0
run 2 $C stock reserve /shop --id x a/b:1
run 2 $C stock reserve /shop --id x :1
run 2 $C stock reserve /shop a:1
run 2 $C stock reserve /shop --id x
run 2 $C stock restock /shop a
run 2 $C stock restock /shop a -1
run 2 $C stock /shop
run 2 $C stock shop a
run 2 $C stock frob /shop
run 2 $C stock lookup /shop o1 --wait
run 2 $C stock
run 0 $C stock --help
grep -q "usage: zkcoord stock" "$T/out" || fail "stock --help"
ok "bad SKU syntax and missing arguments exit 2"
exit 0
