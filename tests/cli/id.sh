#!/bin/sh
# zkcoord id next: ids increase across runs and are never repeated, -n N
# prints N consecutive ids (one lease of exactly N), --json, usage errors.
. "$(dirname "$0")/common.sh"
start_zk
C="timeout -s KILL 30 $ZKCOORD"

run 0 $C id next /cli/ids
a=$(cat "$T/out")
run 0 $C id next /cli/ids
b=$(cat "$T/out")
case "$a$b" in *[!0-9]* | '') fail "ids are not numbers: '$a' '$b'" ;; esac
[ "$b" -gt "$a" ] || fail "second id $b is not above the first $a"
ok "two runs print increasing, distinct ids ($a, $b)"

run 0 $C id next /cli/ids -n 5
[ "$(wc -l < "$T/out")" = 5 ] || fail "-n 5 printed $(wc -l < "$T/out") lines"
first=$(head -n 1 "$T/out")
[ "$first" -gt "$b" ] || fail "-n 5 starts at $first, not above $b"
seq "$first" $((first + 4)) > "$T/want"
diff -u "$T/want" "$T/out" >&2 || fail "-n 5 ids are not consecutive"
run 0 $C id next /cli/ids
[ "$(cat "$T/out")" -eq $((first + 5)) ] || fail "a run after -n 5 printed $(cat "$T/out"), not $((first + 5)): the lease was not exactly 5 ids"
ok "-n 5 prints 5 consecutive ids and leases no more"

run 0 $C --json id next /cli/ids -n 2
n=$((first + 6))
[ "$(cat "$T/out")" = "{\"path\":\"/cli/ids\",\"ids\":[$n,$((n + 1))]}" ] || fail "--json output: $(cat "$T/out")"
ok "--json"

run 2 $C id next cli/ids
grep -q "not absolute" "$T/err" || fail "relative path: no clear message"
run 2 $C id next /cli//ids
run 2 $C id next /cli/ids -n 0
grep -q "1\.\." "$T/err" || fail "-n 0: no clear message"
run 2 $C id next /cli/ids -n x
run 2 $C id next
grep -q "expected PATH" "$T/err" || fail "missing path: no clear message"
run 2 $C id take /cli/ids
grep -q "unknown operation" "$T/err" || fail "unknown operation: no clear message"
ok "bad path, -n 0, missing path or operation exit 2 with a message"

# --gap-free: one write per id, consecutive across runs; --key repeats; void.
run 0 $C id next /cli/invoices --gap-free -n 3
seq 1 3 > "$T/want"
diff -u "$T/want" "$T/out" >&2 || fail "--gap-free -n 3: $(cat "$T/out")"
run 0 $C id next /cli/invoices --key order-17
[ "$(cat "$T/out")" = 4 ] || fail "--key order-17 printed $(cat "$T/out"), not 4"
run 0 $C id next /cli/invoices --key order-17
[ "$(cat "$T/out")" = 4 ] || fail "a repeat of --key order-17 printed $(cat "$T/out"), not 4"
run 0 $C id next /cli/invoices --gap-free
[ "$(cat "$T/out")" = 5 ] || fail "--gap-free after the keyed take printed $(cat "$T/out"), not 5"
ok "--gap-free prints 1..5 with no hole; --key repeats its id"
run 0 $C id void /cli/invoices 2
run 0 $C id void /cli/invoices 2
run 0 $C --json id void /cli/invoices 3
[ "$(cat "$T/out")" = '{"path":"/cli/invoices","voided":3}' ] || fail "void --json: $(cat "$T/out")"
run 2 $C id void /cli/invoices 6
grep -q "not taken" "$T/err" || fail "void of an id not taken: no clear message"
run 2 $C id void /cli/invoices
run 2 $C id next /cli/invoices --key k -n 2
ok "void records a taken id (twice is fine), refuses one not taken"

# No server: nothing leased, exit 4.
run 4 timeout -s KILL 30 "$ZKCOORD" --hosts 127.0.0.1:1 --connect-timeout 1000 id next /cli/ids
ok "no server exits 4"
exit 0
