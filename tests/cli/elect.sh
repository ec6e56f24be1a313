#!/bin/sh
# zkcoord elect: runs the command while leader, passes its exit status
# through, gives it the term token; a second participant waits its turn (or
# exits 3 with --timeout 0, naming the leader); the participants take turns in
# order with increasing tokens; when leadership is lost (our node deleted) the
# command's process group is terminated and zkcoord exits 6.
. "$(dirname "$0")/common.sh"
start_zk
E="timeout -s KILL 40 $ZKCOORD elect"

run 42 $E /cli/e1 -- sh -c 'exit 42'
run 0 $E --id solo /cli/e1 -- sh -c 'echo "$ZKC_FENCING_TOKEN $ZKC_ELECTION_PATH"'
set -- $(cat "$T/out")
case "$1" in '' | *[!0-9]*) fail "ZKC_FENCING_TOKEN '$1' is not a positive integer" ;; esac
[ "$2" = /cli/e1 ] || fail "ZKC_ELECTION_PATH is '$2'"
run 127 $E /cli/e1 -- /nonexistent/command
ok "exit status, 127 and ZKC_FENCING_TOKEN/ZKC_ELECTION_PATH pass through"

# A leader, a participant that will not wait (3) and one that waits its turn.
spawn $E --id first --data 10.0.0.1 /cli/e2 -- sh -c "echo \$ZKC_FENCING_TOKEN >'$T/t1'; sleep 1.5; touch '$T/done1'"
h1=$SPAWNED
wait_for 15 test -s "$T/t1" || fail "first leader did not start"
run 3 $E --timeout 0 --id second /cli/e2 -- sh -c "touch '$T/ran'"
[ ! -e "$T/ran" ] || fail "a participant that is not leader ran the command"
grep -q "led by 'first'" "$T/err" || fail "not-elected message does not name the leader"
run 0 $E --timeout 10 --id third /cli/e2 -- sh -c "test -e '$T/done1' && echo \$ZKC_FENCING_TOKEN >'$T/t2'"
[ -s "$T/t2" ] || fail "the second leader ran before the first one finished"
wait $h1 || fail "first leader failed"
t1=$(cat "$T/t1") t2=$(cat "$T/t2")
[ "$t1" -lt "$t2" ] || fail "term tokens do not increase: $t1 $t2"
ok "one leader at a time: --timeout 0 exits 3 naming the leader, the next one leads after ($t1 < $t2)"

# Leadership lost: our node deleted by someone else.
hold_then_delete /cli/e3 "$T/pid3" "$T/err3" $E --grace 2 /cli/e3 -- sh -c "echo \$\$ >'$T/pid3'; exec sleep 60"
cat "$T/err3"
expect_stopped "lost leadership" 5 "$T/pid3"
grep -q "leadership of /cli/e3 was LOST" "$T/err3" || fail "lost leadership: no message"
ok "deleted leader node: SIGTERM to the command, exit 6"
exit 0
