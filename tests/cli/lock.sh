#!/bin/sh
# zkcoord lock: runs the command under the lock, passes its exit status
# through, gives it the fencing token, excludes a second holder, forwards
# signals; zkcoord queue shows who holds.
. "$(dirname "$0")/common.sh"
start_zk
L="timeout -s KILL 30 $ZKCOORD lock"

# exit status and environment
run 42 $L /cli/l1 -- sh -c 'exit 42'
run 0 $L /cli/l1 -- sh -c 'echo "$ZKC_FENCING_TOKEN $ZKC_LOCK_PATH"'
set -- $(cat "$T/out")
case "$1" in '' | *[!0-9]*) fail "ZKC_FENCING_TOKEN '$1' is not a positive integer" ;; esac
[ "$1" -gt 0 ] || fail "fencing token $1 is not positive"
[ "$2" = /cli/l1 ] || fail "ZKC_LOCK_PATH is '$2'"
t0=$1
run 143 $L /cli/l1 -- sh -c 'kill -TERM $$'
run 127 $L /cli/l1 -- /nonexistent/command
grep -q "cannot run '/nonexistent/command'" "$T/err" || fail "command-not-found message"
run 0 $L /cli/l1 true # the lock was released each time
ok "exit status, 128+signal, 127 and ZKC_FENCING_TOKEN/ZKC_LOCK_PATH pass through"

# exclusion: a holder, a try-once contender (busy: 3) and a waiting one
spawn $L /cli/l2 -- sh -c "echo \$ZKC_FENCING_TOKEN >'$T/t1'; sleep 1.5; touch '$T/done1'"
h1=$SPAWNED
wait_for 15 test -s "$T/t1" || fail "first holder did not start"
run 3 $L --timeout 0 /cli/l2 -- sh -c "touch '$T/ran'"
[ ! -e "$T/ran" ] || fail "busy lock ran the command"
grep -q "busy" "$T/err" || fail "busy message"
grep -q "held by session 0x" "$T/err" || fail "busy message does not name the holder"
run 0 "$ZKCOORD" queue /cli/l2
grep -q " yes " "$T/out" || fail "queue shows no holder"
run 0 "$ZKCOORD" --json queue /cli/l2
grep -q '"holds":true' "$T/out" || fail "queue --json shows no holder"
grep -q '"session":"0x' "$T/out" || fail "queue --json shows no session"
run 0 $L --timeout 5 /cli/l2 -- sh -c "test -e '$T/done1' && echo \$ZKC_FENCING_TOKEN >'$T/t2'"
[ -s "$T/t2" ] || fail "the waiting contender ran before the first holder finished"
wait $h1 || fail "first holder failed"
run 0 $L --timeout 0 /cli/l2 -- sh -c "echo \$ZKC_FENCING_TOKEN >'$T/t3'"
t1=$(cat "$T/t1") t2=$(cat "$T/t2") t3=$(cat "$T/t3")
[ "$t1" -lt "$t2" ] && [ "$t2" -lt "$t3" ] || fail "fencing tokens do not increase: $t1 $t2 $t3"
ok "second holder: --timeout 0 exits 3, --timeout 5 waits; tokens increase ($t0 $t1 $t2 $t3)"

# a waiter that times out
spawn $L /cli/l3 -- sh -c "touch '$T/h3'; sleep 3"
wait_for 15 test -e "$T/h3" || fail "holder of /cli/l3 did not start"
start=$(date +%s)
run 3 $L --timeout 0.5 /cli/l3 -- true
grep -q "not acquired within 0.5 s" "$T/err" || fail "timeout message"
[ $(($(date +%s) - start)) -le 2 ] || fail "--timeout 0.5 waited too long"
ok "--timeout 0.5 on a held lock exits 3"

# read/write lock: readers share, a writer is excluded
spawn $L --read /cli/rw -- sh -c "touch '$T/r1'; sleep 3"
wait_for 15 test -e "$T/r1" || fail "reader did not start"
run 0 $L --read --timeout 0 /cli/rw -- true
run 3 $L --write --timeout 0 /cli/rw -- true
run 3 $L --timeout 0 /cli/l3 -- true # still held by the sleeper above
ok "--read shares, --write is excluded"

# signals sent to zkcoord reach the command; the lock is released
spawn $L /cli/l4 -- sh -c "echo \$\$ >'$T/pid4'; exec sleep 30"
z=$SPAWNED
wait_for 15 test -s "$T/pid4" || fail "holder of /cli/l4 did not start"
kill -TERM $z
wait $z
rc=$?
[ $rc = 143 ] || fail "SIGTERM to zkcoord: exit $rc, expected 143"
is_alive "$(cat "$T/pid4")" && fail "the command survived SIGTERM to zkcoord"
run 0 $L --timeout 0 /cli/l4 -- true
ok "SIGTERM is forwarded (exit 143) and the lock released"

# ^C while waiting for the lock: no node left behind
spawn $L /cli/l5 -- sh -c "touch '$T/h5'; sleep 3"
wait_for 15 test -e "$T/h5" || fail "holder of /cli/l5 did not start"
$L /cli/l5 -- true &
w=$!
wait_for 10 sh -c "[ \$('$ZKCOORD' --json queue /cli/l5 | grep -o '\"name\"' | wc -l) -eq 2 ]" ||
    fail "the waiter did not queue"
kill -INT $w
wait $w
rc=$?
[ $rc = 130 ] || fail "SIGINT while waiting: exit $rc, expected 130"
n=$("$ZKCOORD" --json queue /cli/l5 | grep -o '"name"' | wc -l)
[ "$n" -eq 1 ] || fail "the interrupted waiter left its node behind ($n entries)"
ok "SIGINT while waiting exits 130 and leaves no node"
exit 0
