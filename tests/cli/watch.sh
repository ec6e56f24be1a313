#!/bin/sh
# The live views: 'zkcoord queue --watch PATH' and 'zkcoord stock ROOT SKU
# --watch'. On a terminal (a detached tmux session: its pane is a real tty) the
# view must show each change of the queue or the stock within a bounded wait,
# captured with 'tmux capture-pane -p' and polled against a deadline; without
# a terminal, one snapshot per change as plain lines or --json lines. SIGINT
# (Ctrl-C in the pane) and SIGTERM end a view with exit status 0.
. "$(dirname "$0")/common.sh"

if ! command -v tmux >/dev/null 2>&1; then
    echo "tmux is not installed (scripts/bootstrap.sh --with-test-deps installs it)" >&2
    [ "${CI:-}" = true ] && exit 99
    exit 77
fi
TMUX_SOCK="zkcoord-test-$$"
tm() { tmux -L "$TMUX_SOCK" "$@"; }
trap 'tm kill-server >/dev/null 2>&1; cleanup' EXIT
unset TMUX

start_zk
C="timeout -s KILL 30 $ZKCOORD"
DEADLINE=20 # seconds for a view to show a change (a watch fires in milliseconds)

# bg_lock NAME PATH [OPTS...]: hold the lock at PATH in the background (running
# 'sleep 1000') until stop_bg NAME; its pid in $T/NAME.pid.
bg_lock() {
    name=$1
    shift
    spawn timeout -s KILL 120 "$ZKCOORD" lock "$@" -- sleep 1000 >"$T/$name.out" 2>&1
    echo $SPAWNED >"$T/$name.pid"
}
stop_bg() {
    p=$(cat "$T/$1.pid")
    kill -TERM "$p" 2>/dev/null
    wait "$p" 2>/dev/null
}
queue_len_is() { # PATH N: PATH has N contenders, as `zkcoord queue --json` sees them
    [ "$("$ZKCOORD" --json queue "$1" | grep -o '"position"' | wc -l)" = "$2" ]
}
# the czxid (fencing token) of position 1 in `zkcoord queue --json PATH`
first_token() {
    "$ZKCOORD" --json queue "$1" | grep -o '"czxid":[0-9]*' | head -n 1 | cut -d: -f2
}

# pane_has NAME REGEX: the pane of tmux session NAME shows a line matching REGEX.
pane_has() {
    tm capture-pane -p -t "$1" 2>/dev/null | grep -Eq "$2"
}
pane_wait() { # NAME REGEX WHAT
    if ! wait_for $DEADLINE pane_has "$1" "$2"; then
        tm capture-pane -p -t "$1" | sed 's/^/  | /' >&2
        fail "$3: the view did not show /$2/ within ${DEADLINE}s"
    fi
}
pane_lacks_wait() { # NAME REGEX WHAT: until the pane no longer shows REGEX
    if ! wait_for $DEADLINE sh -c "! tmux -L '$TMUX_SOCK' capture-pane -p -t '$1' | grep -Eq '$2'"; then
        tm capture-pane -p -t "$1" | sed 's/^/  | /' >&2
        fail "$3: the view still shows /$2/ after ${DEADLINE}s"
    fi
}
# start_view NAME ARGS...: zkcoord ARGS in a detached tmux session NAME; its
# exit status goes to $T/NAME.rc when it ends.
start_view() {
    name=$1
    shift
    tm new-session -d -s "$name" -x 160 -y 40 \
        "env ZKC_HOSTS='$ZKC_HOSTS' $ZKCOORD $*; echo \$? >'$T/$name.rc'; sleep 600" ||
        fail "tmux new-session"
}
view_exit() { # NAME: wait for the view's exit status, print it
    wait_for $DEADLINE test -s "$T/$1.rc" || fail "view $1 did not exit within ${DEADLINE}s"
    cat "$T/$1.rc"
}

# ---------------------------------------------------------------- queue, tty
start_view q queue --watch /locks/a
pane_wait q 'zkcoord queue /locks/a' "queue view: header"
pane_wait q '/locks/a: no holders, no waiters' "queue view: the empty queue"
bg_lock h1 /locks/a
wait_for 20 queue_len_is /locks/a 1 || { cat "$T/h1.out" >&2; fail "holder h1 did not queue"; }
tok=$(first_token /locks/a)
pane_wait q "^1 .* yes +mutex +0x[0-9a-f]+ +$tok " "queue view: the holder with its token $tok"
bg_lock w1 /locks/a
wait_for 20 queue_len_is /locks/a 2 || fail "waiter w1 did not queue"
pane_wait q '^2 .* no +mutex +0x[0-9a-f]+ +[0-9]+ ' "queue view: the waiter in position 2"
stop_bg h1
# w1 now holds, alone, with a larger token
pane_lacks_wait q '^2 ' "queue view: the holder left"
tok2=$(first_token /locks/a)
[ "$tok2" -gt "$tok" ] || fail "the next holder's token $tok2 is not larger than $tok"
pane_wait q "^1 .* yes +mutex +0x[0-9a-f]+ +$tok2 " "queue view: the waiter now holds (token $tok2)"
stop_bg w1
pane_wait q '/locks/a: no holders, no waiters' "queue view: empty again"
tm send-keys -t q C-c
[ "$(view_exit q)" = 0 ] || fail "queue view: Ctrl-C exit status $(cat "$T/q.rc"), not 0"
ok "queue --watch on a terminal: holder, waiter, hand-over with tokens, empty; Ctrl-C exits 0"

# ---------------------------------------------------------------- stock, tty
start_view s stock /shop a --watch
pane_wait s 'zkcoord stock /shop a' "stock view: header"
pane_wait s 'does not exist' "stock view: a SKU not restocked yet"
run 0 $C stock restock /shop a 10
pane_wait s 'available +10$' "stock view: restocked"
run 0 $C stock reserve /shop --id o1 a:3
pane_wait s 'available +7$' "stock view: reserved (available)"
pane_wait s 'reserved +3$' "stock view: reserved"
run 0 $C stock confirm /shop o1
pane_wait s 'sold +3$' "stock view: sold"
# A request that waits for restock stays queued: the queue length shows it.
spawn timeout -s KILL 120 "$ZKCOORD" stock reserve /shop --id o2 --wait --timeout 60 a:100 >"$T/o2.out" 2>&1
o2=$SPAWNED
pane_wait s 'queue length +1$' "stock view: a waiting request"
kill -TERM $o2 2>/dev/null
wait $o2 2>/dev/null
pane_wait s 'queue length +0$' "stock view: the waiting request left"
tm send-keys -t s C-c
[ "$(view_exit s)" = 0 ] || fail "stock view: Ctrl-C exit status $(cat "$T/s.rc"), not 0"
ok "stock --watch on a terminal: missing SKU, restock, reserve, confirm, queue length; Ctrl-C exits 0"

# ------------------------------------------------------- not a terminal: lines
# file_has FILE REGEX
file_has() { grep -Eq "$2" "$1"; }
file_wait() { # FILE REGEX WHAT
    if ! wait_for $DEADLINE file_has "$1" "$2"; then
        sed 's/^/  | /' "$1" >&2
        fail "$3: no line /$2/ within ${DEADLINE}s"
    fi
}
start_bg_view() { # NAME ARGS...: output to $T/NAME.log
    name=$1
    shift
    spawn timeout -s KILL 120 "$ZKCOORD" "$@" >"$T/$name.log" 2>"$T/$name.err"
    echo $SPAWNED >"$T/$name.pid"
}
stop_view() { # NAME: SIGTERM; fails unless it exits 0 (in this shell: wait needs its parent)
    p=$(cat "$T/$1.pid")
    kill -TERM "$p"
    wait "$p"
    rc=$?
    [ "$rc" = 0 ] || { sed 's/^/  | /' "$T/$1.log" "$T/$1.err" >&2; fail "view $1: SIGTERM exit status $rc, not 0"; }
}

start_bg_view ql queue --watch /locks/b
start_bg_view qj --json queue --watch /locks/b
file_wait "$T/ql.log" '^# .* /locks/b: 0 contenders$' "queue lines: first snapshot"
file_wait "$T/qj.log" '"entries":\[\]' "queue json: first snapshot"
bg_lock h2 /locks/b
file_wait "$T/ql.log" '^# .* /locks/b: 1 contender$' "queue lines: the holder"
file_wait "$T/ql.log" '^1 .* yes +mutex ' "queue lines: the holder's row"
file_wait "$T/qj.log" '"position":1,[^}]*"holds":true' "queue json: the holder"
stop_bg h2
count_ge() { [ "$(grep -c "$2" "$1")" -ge "$3" ]; } # FILE REGEX N
wait_for $DEADLINE count_ge "$T/ql.log" ' 0 contenders$' 2 ||
    fail "queue lines: no second empty snapshot"
wait_for $DEADLINE count_ge "$T/qj.log" '"entries":\[\]' 2 ||
    fail "queue json: no second empty snapshot"
stop_view ql
stop_view qj
grep -q "$(printf '\033')" "$T/ql.log" && fail "queue lines: ANSI escapes without a terminal"
# Every --json line is one object with a time, and they parse.
if command -v python3 >/dev/null 2>&1; then
    python3 -c '
import json, sys
n = 0
for line in open(sys.argv[1]):
    o = json.loads(line)
    assert "time" in o and o["path"] == "/locks/b", line
    n += 1
assert n >= 3, n
' "$T/qj.log" || fail "queue json: lines are not one object each"
fi
ok "queue --watch without a terminal: a snapshot per change, plain and --json; SIGTERM exits 0"

start_bg_view sl stock /shop b --watch
start_bg_view sj --json stock /shop b --watch
run 0 $C stock restock /shop b 5
file_wait "$T/sl.log" '^[0-9TZ:.-]+ available 5 reserved 0 sold 0 total 5 queue_length 0$' "stock lines: restock"
file_wait "$T/sj.log" '"sku":"b","available":5,"reserved":0,"sold":0,"total":5,"queue_length":0}$' \
    "stock json: restock"
run 0 $C stock reserve /shop --id o3 b:2
file_wait "$T/sl.log" ' available 3 reserved 2 sold 0 total 5 queue_length 0$' "stock lines: reserve"
file_wait "$T/sj.log" '"available":3,"reserved":2,' "stock json: reserve"
stop_view sl
stop_view sj
ok "stock --watch without a terminal: a line per change, plain and --json; SIGTERM exits 0"

run 2 $C stock restock /shop a 1 --watch
grep -q 'applies to' "$T/err" || fail "--watch with restock: no usage message"
ok "--watch with another stock operation is a usage error"
