#!/bin/sh
# zkcoord counter get|set|add|cas: values, bounds (exit 7), compare-and-set
# mismatch (exit 8), idempotency keys, formats, --json, guarded adds (exit 11).
. "$(dirname "$0")/common.sh"
start_zk
C="timeout -s KILL 30 $ZKCOORD"

expect_out() {
    [ "$(cat "$T/out")" = "$1" ] || fail "expected output '$1', got '$(cat "$T/out")'"
}

run 0 $C counter get /cli/c
expect_out 0
run 0 $C counter get /cli/c --initial 5
expect_out 5
run 0 $C counter set /cli/c 10
expect_out 10
run 0 $C counter get /cli/c
expect_out 10
run 0 $C counter add /cli/c 5
expect_out "10 15"
run 0 $C counter add /cli/c -3
expect_out "15 12"
run 0 $C counter cas /cli/c 12 20
expect_out "12 20"
ok "set, get, add (also negative), cas round trip"

run 8 $C counter cas /cli/c 12 30
expect_out "20 20"
grep -q "is 20, not the expected 12" "$T/err" || fail "cas mismatch message"
run 8 $C --json counter cas /cli/c 12 30
grep -q '"applied":false' "$T/out" || fail "cas mismatch --json"
run 0 $C counter get /cli/c
expect_out 20
ok "cas mismatch exits 8, prints the current value, writes nothing"

run 7 $C counter add /cli/c -100 --floor 0
grep -q "refused" "$T/err" || fail "floor refusal message"
run 7 $C counter add /cli/c 100 --ceiling 50
run 0 $C counter add /cli/c -20 --floor 0
expect_out "20 0"
run 7 $C counter add /cli/c -1 --floor 0
run 0 $C counter get /cli/c
expect_out 0
ok "--floor/--ceiling refusals exit 7 and write nothing"

run 0 $C counter add /cli/c 7 --key order-1
expect_out "0 7"
run 0 $C counter add /cli/c 7 --key order-1
expect_out "0 7"
grep -q "applied before" "$T/err" || fail "replayed key: no note"
run 0 $C --json counter add /cli/c 7 --key order-1
grep -q '"replayed":true' "$T/out" || fail "replayed key: --json"
run 0 $C counter get /cli/c
expect_out 7
run 0 $C counter add /cli/c 1 --key order-2
expect_out "7 8"
ok "--key: a repeated add is applied once"

run 0 $C --json counter get /cli/c
expect_out '{"path":"/cli/c","value":8}'
run 0 $C counter add /cli/c 2 --json
expect_out '{"path":"/cli/c","before":8,"after":10,"applied":true,"replayed":false}'
ok "--json"

run 0 $C counter set /cli/d 42 --format decimal
run 0 $C counter add /cli/d 1 --format decimal
expect_out "42 43"
run 1 $C counter get /cli/d
grep -q "get /cli/d (is --format right" "$T/err" || fail "bad data message"
run 0 $C counter set /cli/i32 2147483647 --format int32
run 1 $C counter add /cli/i32 1 --format int32
run 0 $C counter get /cli/i32 --format int32
expect_out 2147483647
ok "--format decimal/int32; malformed data and overflow exit 1"
# --guard: under 'zkcoord lock' the command's adds name the hold's node; once
# the hold has ended the same add is refused (exit 11) and writes nothing.
run 0 $C counter set /cli/g 0
run 0 $C lock /cli/glock -- sh -c '$0 counter add /cli/g 5 --guard "$ZKC_GUARD_NODE" && echo "$ZKC_GUARD_NODE" > "$1"' "$C" "$T/node"
node=$(cat "$T/node")
case "$node" in /cli/glock/*) ;; *) fail "ZKC_GUARD_NODE was '$node', not a node under /cli/glock" ;; esac
run 0 $C counter get /cli/g
expect_out 5
run 11 $C counter add /cli/g 5 --guard "$node"
grep -q "is gone (its hold ended); nothing written" "$T/err" || fail "fenced add: message"
run 0 $C counter get /cli/g
expect_out 5
run 2 $C counter add /cli/g 5 --guard relative/path
run 2 $C counter get /cli/g --guard "$node"
run 0 $C elect /cli/gel -- sh -c '$0 counter add /cli/g 1 --guard "$ZKC_GUARD_NODE"' "$C"
run 0 $C counter get /cli/g
expect_out 6
ok "--guard: adds under a hold (lock, elect) land, after it exit 11 and write nothing"
exit 0
