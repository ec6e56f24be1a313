#!/bin/bash
# 7. Leader election: zkcoord (zkcoord elect) and Curator's LeaderLatch stand
# in one election at one path. Each waits while the other leads, each reads the
# other's participant id as the leader's, and leadership passes both ways
# when the leader resigns.
TEST_NAME=t7-election-curator
. "$INTEROP_SRC/lib.sh"
need java
ens_start
ZKCOORD="${top_builddir:-.}/cli/zkcoord"
JAVA="java -Xms16m -Xmx192m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Dorg.slf4j.simpleLogger.defaultLogLevel=warn -cp $JAVA_CP Interop"
P=/interop/election

# 1. Curator leads: zkcoord is not elected at once and names Curator's id.
bg cur1 java_run hold-latch "$HOSTS" $P cur-1 "$WORK/cur1.ready" "$WORK/cur1.release"
wait_file "$WORK/cur1.ready" 90 || { fail "the Curator latch did not lead"; exit 1; }
grep -q "^leader cur-1$" "$WORK/cur1.ready" || fail "Curator reads another leader: $(cat "$WORK/cur1.ready")"
rc=0
"$ZKCOORD" --hosts "$HOSTS" elect --timeout 0 --id zkc-1 $P -- touch "$WORK/zkc1.ran" 2>"$WORK/zkc1.err" || rc=$?
[ $rc = 3 ] || fail "zkcoord elect beside a Curator leader: exit $rc, expected 3"
[ ! -e "$WORK/zkc1.ran" ] || fail "zkcoord ran its command while Curator led"
grep -q "led by 'cur-1'" "$WORK/zkc1.err" || fail "zkcoord does not name Curator's participant: $(cat "$WORK/zkc1.err")"
say "Curator leads; zkcoord --timeout 0 exits 3 naming cur-1"

# 2. zkcoord waits its turn; once leader, Curator reads it as the leader.
bg zkc2 "$ZKCOORD" --hosts "$HOSTS" elect --timeout 90 --id zkc-2 $P -- sh -c "$JAVA latch-leader '$HOSTS' $P >'$WORK/zkc2.leader'"
n=0
for _ in $(seq 300); do
    n=$("$ZKCOORD" --hosts "$HOSTS" --json queue $P | grep -o '"name"' | wc -l)
    [ "$n" -ge 2 ] && break
    sleep 0.1
done
[ "$n" -ge 2 ] || fail "zkc-2 did not queue behind cur-1 within 30 s"
[ ! -e "$WORK/zkc2.leader" ] || fail "zkcoord led while Curator still led"
: >"$WORK/cur1.release"
wait_bg
[ "$(cat "$WORK/zkc2.leader" 2>/dev/null)" = zkc-2 ] ||
    fail "while zkcoord led, Curator read the leader as '$(cat "$WORK/zkc2.leader" 2>/dev/null)'"
say "Curator resigned; zkcoord led next and Curator read zkc-2 as the leader"

# 3. zkcoord leads: a Curator latch is not elected within 1.5 s; a waiting
# Curator latch leads once zkcoord resigns.
bg zkc3 "$ZKCOORD" --hosts "$HOSTS" elect --id zkc-3 $P -- sh -c "touch '$WORK/zkc3.ready'; while [ ! -e '$WORK/zkc3.release' ]; do sleep 0.05; done"
wait_file "$WORK/zkc3.ready" 60 || { fail "zkcoord did not lead"; exit 1; }
bg cur2 java_run hold-latch "$HOSTS" $P cur-2 "$WORK/cur2.ready" "$WORK/cur2.release"
out=$(java_run try-latch "$HOSTS" $P cur-3 1500)
[ "$out" = timeout ] || fail "a Curator latch beside a zkcoord leader: '$out', expected timeout"
out=$(java_run latch-leader "$HOSTS" $P)
[ "$out" = zkc-3 ] || fail "Curator reads the leader as '$out', expected zkc-3"
[ ! -e "$WORK/cur2.ready" ] || fail "Curator led while zkcoord led"
: >"$WORK/zkc3.release"
wait_file "$WORK/cur2.ready" 60 || fail "the waiting Curator latch did not lead after zkcoord resigned"
grep -q "^leader cur-2$" "$WORK/cur2.ready" || fail "Curator reads another leader: $(cat "$WORK/cur2.ready")"
: >"$WORK/cur2.release"
wait_bg
say "zkcoord led; Curator waited (try-latch timed out), read zkc-3 as leader, and led after zkcoord resigned"
finish
