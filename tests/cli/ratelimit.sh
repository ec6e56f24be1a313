#!/bin/sh
# zkcoord ratelimit: the hard limit holds across processes (10 takes at
# 5/1 with burst 1 cannot finish in under ~1.8 s), -- COMMAND passes the
# command's status through, timeouts exit 3, usage errors exit 2.
. "$(dirname "$0")/common.sh"
start_zk
C="timeout -s KILL 60 $ZKCOORD"

ms() { echo $(($(date +%s%N) / 1000000)); }

# Every take after the first waits for its 200 ms slot: 9 gaps, 1.8 s on the
# servers' clock. The lower bound (1.6 s) leaves room for the processes'
# clock estimates (half a round trip each); the upper bound only catches a
# hang, generous for a loaded machine. The same 10 takes on a limit they do
# not reach are timed too, to show in the log what the processes alone cost
# (about 0.5 s when the machine is idle).
start=$(ms)
i=0
while [ $i -lt 10 ]; do
    run 0 $C ratelimit /cli/rl-control --rate 1000/1 --burst 1000 take
    i=$((i + 1))
done
control=$(($(ms) - start))
start=$(ms)
i=0
while [ $i -lt 10 ]; do
    run 0 $C ratelimit /cli/rl --rate 5/1 --burst 1 take
    [ -s "$T/out" ] && fail "take printed something: $(cat "$T/out")"
    i=$((i + 1))
done
elapsed=$(($(ms) - start))
[ "$elapsed" -ge 1600 ] || fail "10 takes at 5/1 took $elapsed ms: the limit was not enforced"
[ "$elapsed" -le 45000 ] || fail "10 takes at 5/1 took $elapsed ms"
ok "10 takes at --rate 5/1 --burst 1 took $elapsed ms (>= 1600; $control ms without the limit)"

run 0 $C ratelimit /cli/rl2 --rate 100/1 -- true
run 1 $C ratelimit /cli/rl2 --rate 100/1 -- false
run 0 $C ratelimit /cli/rl2 --rate 100/1 -- sh -c 'echo "$0 $1"' a b
[ "$(cat "$T/out")" = "a b" ] || fail "the command's arguments: $(cat "$T/out")"
run 3 $C ratelimit /cli/rl2 --rate 100/1 -- sh -c 'exit 3'
run 127 $C ratelimit /cli/rl2 --rate 100/1 -- /nonexistent/zkcoord-test-cmd
ok "-- COMMAND runs the command and passes its status through (127: not found)"

# One permit a minute: the second take cannot be granted in time.
run 0 $C ratelimit /cli/rl3 --rate 1/60 take
run 3 $C ratelimit /cli/rl3 --rate 1/60 --timeout 0 take
grep -q "not granted" "$T/err" || fail "timeout: no message"
run 3 $C ratelimit /cli/rl3 --rate 1/60 --timeout 0.3 -- true
ok "--timeout: not granted in time exits 3 (take and -- COMMAND)"

run 0 $C ratelimit /cli/rl4 --rate 3/60 --fixed-window -n 3 take
run 3 $C ratelimit /cli/rl4 --rate 3/60 --fixed-window --timeout 0 take
run 0 $C ratelimit /cli/rl5 --rate 3/60 -n 3 take
run 3 $C ratelimit /cli/rl5 --rate 3/60 --timeout 0 take
ok "-n N takes N permits (hard and --fixed-window)"

for r in 5 0/1 x/1 5/0 5/x -1/1 5/0.001 ''; do
    run 2 $C ratelimit /cli/rl --rate "$r" take
    grep -q -- "--rate" "$T/err" || fail "bad --rate '$r': no clear message"
done
run 2 $C ratelimit /cli/rl take
grep -q "missing --rate" "$T/err" || fail "missing --rate: no message"
run 2 $C ratelimit /cli/rl --rate 5/1 -n 6 take
run 2 $C ratelimit /cli/rl --rate 5/1 --burst 6 take
run 2 $C ratelimit /cli/rl --rate 5/1 --fixed-window --burst 2 take
run 2 $C ratelimit /cli/rl --rate 5/1
run 2 $C ratelimit /cli/rl --rate 5/1 take -- true
run 2 $C ratelimit /cli/rl --rate 5/1 grab
run 2 $C ratelimit rl --rate 5/1 take
ok "bad --rate, -n, --burst, operation or path exit 2"
exit 0
