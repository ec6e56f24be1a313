#!/bin/sh
# zkcoord admin cleanup: --dry-run counts and deletes nothing; a real cleanup
# past a short retention deletes the markers and keys of `counter add --key`;
# --inventory reaps; usage errors exit 2.
. "$(dirname "$0")/common.sh"
start_zk
C="timeout -s KILL 30 $ZKCOORD"
# The library keeps markers and keys at least twice the (requested) session
# timeout, whatever --retention says: a short session makes --retention 1 real.
A="$C --session-timeout 500 admin cleanup --retention 1"

# json_num NAME: the number NAME in $T/out.
json_num() {
    grep -o "\"$1\":[0-9]*" "$T/out" | cut -d: -f2
}

run 0 $C counter add /cli/c 1 --key order-1
run 0 $C counter add /cli/c 1 --key order-2
run 0 $C --json admin cleanup --dry-run
[ "$(json_num keys)" = 0 ] || fail "default retention: fresh keys counted"
grep -q '"dry_run":true' "$T/out" || fail "--json dry_run"

# Wait just past the retention (server clock: mtime of a node written now).
sleep 1.2
end=$(($(date +%s) + 10))
until $A --dry-run --json >"$T/out" 2>"$T/err" && [ "$(json_num keys)" -ge 2 ]; do
    [ "$(date +%s)" -lt "$end" ] || fail "keys never old enough: $(cat "$T/out" "$T/err")"
    sleep 0.2
done
keys=$(json_num keys)
markers=$(json_num markers)
[ "$markers" -ge 1 ] || fail "dry run: no markers counted"
run 0 $A --dry-run
grep -qx "keys $keys" "$T/out" || fail "second dry run: keys changed (dry run deleted?)"
grep -qx "markers $markers" "$T/out" || fail "second dry run: markers changed"
run 0 $C counter add /cli/c 1 --key order-1
grep -q "applied before" "$T/err" || fail "dry run deleted the key"
ok "--dry-run counts $markers markers, $keys keys and deletes nothing"

run 0 $A --json
[ "$(json_num keys)" -ge 2 ] || fail "cleanup deleted $(json_num keys) keys"
[ "$(json_num markers)" -ge 1 ] || fail "cleanup deleted no marker"
grep -q '"dry_run":false' "$T/out" || fail "--json dry_run false"
run 0 $C counter add /cli/c 1 --key order-1
grep -q "applied before" "$T/err" && fail "key still there after cleanup"
run 0 $C counter get /cli/c
[ "$(cat "$T/out")" = 3 ] || fail "counter is $(cat "$T/out"), expected 3"
ok "cleanup with a short retention deletes the markers and keys"

run 0 $C stock restock /shop a 2
run 0 $C stock reserve /shop --id o1 --hold-ms 1 a:2
sleep 0.2
run 0 $C admin cleanup --inventory /shop --dry-run
grep -qx "units_returned -" "$T/out" || fail "dry run reaped"
run 0 $C --json admin cleanup --inventory /shop
[ "$(json_num units_returned)" = 2 ] || fail "units_returned: $(cat "$T/out")"
run 0 $C stock lookup /shop o1
[ "$(cat "$T/out")" = EXPIRED ] || fail "reservation not expired"
ok "--inventory reaps expired reservations"

run 2 $C admin
run 2 $C admin frob
run 2 $C admin cleanup extra
run 2 $C admin cleanup --retention 0
run 2 $C admin cleanup --retention x
run 2 $C admin cleanup --lock-root relative
run 2 $C admin cleanup --inventory
ok "usage errors exit 2"
exit 0
