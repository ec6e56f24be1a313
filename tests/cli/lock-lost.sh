#!/bin/sh
# zkcoord lock: when the hold is lost while the command runs, the command's
# process group gets SIGTERM (SIGKILL after --grace) and zkcoord exits 6.
. "$(dirname "$0")/common.sh"
start_zk
L="timeout -s KILL 40 $ZKCOORD lock"

# 1. The lock node is deleted by someone else: LOST at once.
spawn $L --grace 2 /cli/lost -- sh -c "echo \$\$ >'$T/pid1'; exec sleep 60" 2>"$T/err1"
wait_for 15 test -s "$T/pid1" || fail "holder did not start"
delete_holder /cli/lost
wait_exit $SPAWNED
cat "$T/err1"
[ $rc = 6 ] || fail "lost lock: exit $rc, expected 6"
[ $took -le 5 ] || fail "lost lock: took more than 5 s"
grep -q "LOST" "$T/err1" || fail "lost lock: no message"
is_alive "$(cat "$T/pid1")" && fail "lost lock: the command is still running"
ok "deleted lock node: SIGTERM to the command, exit 6"

# 2. A command that ignores SIGTERM (and a child of it) is killed after --grace.
spawn $L --grace 1 /cli/lost2 -- sh -c "trap '' TERM; echo \$\$ >'$T/pid2'; sleep 60 & echo \$! >'$T/pid2c'; wait" \
    2>"$T/err2"
wait_for 15 test -s "$T/pid2c" || fail "holder 2 did not start"
delete_holder /cli/lost2
wait_exit $SPAWNED
cat "$T/err2"
[ $rc = 6 ] || fail "grace: exit $rc, expected 6"
grep -q "SIGKILL" "$T/err2" || fail "grace: no SIGKILL message"
[ $took -le 6 ] || fail "grace: took more than 6 s"
is_alive "$(cat "$T/pid2")" && fail "grace: the command survived"
is_alive "$(cat "$T/pid2c")" && fail "grace: the command's child survived"
ok "SIGTERM ignored: SIGKILL to the process group after --grace 1, exit 6"

# 3. The server stops answering (paused): --kill-on-suspend stops the command
# at SUSPENDED, before the session can have expired.
spawn $L --session-timeout 2000 --kill-on-suspend --grace 1 /cli/susp -- sh -c "echo \$\$ >'$T/pid3'; exec sleep 60" \
    2>"$T/err3"
wait_for 15 test -s "$T/pid3" || fail "holder 3 did not start"
pause_until_exit $SPAWNED
cat "$T/err3"
[ $rc = 6 ] || fail "--kill-on-suspend: exit $rc, expected 6"
grep -q "SUSPENDED" "$T/err3" || fail "--kill-on-suspend: no SUSPENDED message"
[ $took -le 6 ] || fail "--kill-on-suspend: took $took s"
is_alive "$(cat "$T/pid3")" && fail "--kill-on-suspend: the command survived"
ok "paused server: --kill-on-suspend exits 6 after ${took} s"
exit 0
