#!/bin/sh
# zkcoord lock: when the hold is lost while the command runs, the command's
# process group gets SIGTERM (SIGKILL after --grace) and zkcoord exits 6.
. "$(dirname "$0")/common.sh"
start_zk
L="timeout -s KILL 40 $ZKCOORD lock"

# 1. The lock node is deleted by someone else: LOST at once.
hold_then_delete /cli/lost "$T/pid1" "$T/err1" $L --grace 2 /cli/lost -- sh -c "echo \$\$ >'$T/pid1'; exec sleep 60"
cat "$T/err1"
expect_stopped "lost lock" 5 "$T/pid1"
grep -q "LOST" "$T/err1" || fail "lost lock: no message"
ok "deleted lock node: SIGTERM to the command, exit 6"

# 2. A command that ignores SIGTERM (and a child of it) is killed after --grace.
hold_then_delete /cli/lost2 "$T/pid2c" "$T/err2" \
    $L --grace 1 /cli/lost2 -- sh -c "trap '' TERM; echo \$\$ >'$T/pid2'; sleep 60 & echo \$! >'$T/pid2c'; wait"
cat "$T/err2"
expect_stopped "grace" 6 "$T/pid2"
grep -q "SIGKILL" "$T/err2" || fail "grace: no SIGKILL message"
is_alive "$(cat "$T/pid2c")" && fail "grace: the command's child survived"
ok "SIGTERM ignored: SIGKILL to the process group after --grace 1, exit 6"

# 3. The server stops answering (paused): --kill-on-suspend stops the command
# at SUSPENDED, before the session can have expired.
spawn $L --session-timeout 2000 --kill-on-suspend --grace 1 /cli/susp -- sh -c "echo \$\$ >'$T/pid3'; exec sleep 60" \
    2>"$T/err3"
wait_for 15 test -s "$T/pid3" || fail "holder 3 did not start"
pause_until_exit $SPAWNED
cat "$T/err3"
expect_stopped "--kill-on-suspend" 6 "$T/pid3"
grep -q "SUSPENDED" "$T/err3" || fail "--kill-on-suspend: no SUSPENDED message"
ok "paused server: --kill-on-suspend exits 6 after ${took} s"
exit 0
