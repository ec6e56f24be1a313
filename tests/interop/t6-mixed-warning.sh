#!/bin/bash
# 6. Curator and kazoo on one lock path are not safe together (each misreads
# the other's node names; README.md). zkcoord reads both naming schemes and
# must say so at WARN level when it finds both kinds queued on a path it locks.
#  a. control: only Curator's node queued -> zkcoord waits, no such warning;
#  b. Curator holds, a kazoo Lock (extra_lock_patterns) waits behind it ->
#     zkcoord waits too and warns "both Curator (-lock-) and kazoo (__lock__)".
#  c. kazoo holds: zkcoord waits (asserted); zkcoord's warning there is a known
#     false positive (see t2); Curator's InterProcessMutex takes the same lock
#     at once (it sorts kazoo's "__lock__" names wrongly): printed, documented.
TEST_NAME=t6-mixed-warning
. "$INTEROP_SRC/lib.sh"
need java
need kazoo
ens_start

P=/interop/mixed
MIXED='ZKCLOG WARN lock /interop/mixed: both Curator \(-lock-\) and kazoo \(__lock__\) nodes are queued'
probe() { "$ZKC_INTEROP" probe --hosts "$HOSTS" --path $P --kind mutex --timeout-ms 1500 >"$WORK/$1.out" 2>&1; }

bg curhold java_run hold-mutex "$HOSTS" $P "$WORK/cur.ready" "$WORK/release"
wait_file "$WORK/cur.ready" 60 || { fail "Curator never got the lock"; cat "$WORK/curhold.out"; finish; }

say "a. only Curator's node is queued"
probe probe-a || fail "zkcoord probe failed: $(cat "$WORK/probe-a.out")"
sed 's/^/    zkcoord: /' "$WORK/probe-a.out"
assert_grep "$WORK/probe-a.out" '^acquire: timed out' "zkcoord waited behind Curator's holder"
refute_grep "$WORK/probe-a.out" "$MIXED" "no mixed-queue warning with Curator alone"

say "b. a kazoo Lock queues behind Curator's holder"
bg kazwait py_run wait "$HOSTS" $P "$WORK/release"
n=0
until "$ZKC_INTEROP" queue --hosts "$HOSTS" --path $P 2>/dev/null | grep -q '__lock__'; do
    n=$((n + 1))
    [ $n -lt 300 ] || { fail "kazoo's node never appeared in $P"; cat "$WORK/kazwait.out"; finish; }
    sleep 0.05
done
"$ZKC_INTEROP" queue --hosts "$HOSTS" --path $P | sed 's/^/    queue: /'
probe probe-b || fail "zkcoord probe failed: $(cat "$WORK/probe-b.out")"
sed 's/^/    zkcoord: /' "$WORK/probe-b.out"
assert_grep "$WORK/probe-b.out" '^acquire: timed out' "zkcoord waited behind Curator's holder"
assert_grep "$WORK/probe-b.out" "$MIXED" "zkcoord warned that Curator and kazoo nodes share the queue"
: >"$WORK/release"
wait_bg
grep -q '^acquired' "$WORK/kazwait.out" || fail "kazoo never got the lock after Curator released it"

say "c. kazoo holds $P-c; zkcoord, then Curator try to lock it"
bg kazhold py_run hold "$HOSTS" $P-c "$WORK/kaz.ready" "$WORK/release-c"
wait_file "$WORK/kaz.ready" 60 || { fail "kazoo never got the lock"; cat "$WORK/kazhold.out"; finish; }
"$ZKC_INTEROP" probe --hosts "$HOSTS" --path $P-c --kind mutex --timeout-ms 1500 >"$WORK/probe-c.out" 2>&1 ||
    fail "zkcoord probe failed: $(cat "$WORK/probe-c.out")"
sed 's/^/    zkcoord: /' "$WORK/probe-c.out"
assert_grep "$WORK/probe-c.out" '^acquire: timed out' "zkcoord waited behind kazoo's holder"
# Only zkcoord's own node and kazoo's are queued: no Curator client is here.
refute_grep "$WORK/probe-c.out" 'ZKCLOG WARN .*both Curator' "zkcoord does not count its own -lock- node as Curator's"
java_run try-mutex "$HOSTS" $P-c 1500 >"$WORK/try-c.out" 2>&1 || fail "Curator try-mutex failed: $(cat "$WORK/try-c.out")"
sed 's/^/    curator: /' "$WORK/try-c.out"
if grep -q '^acquired' "$WORK/try-c.out"; then
    say "documented: Curator acquired the lock while kazoo held it (unsafe together)"
else
    say "note: Curator waited for kazoo this time"
fi
: >"$WORK/release-c"
wait_bg

say "d. the same zkcoord lock object first meets a foreign child, later Curator + kazoo"
Pd=$P-d
"$ZKC_INTEROP" counter-set --hosts "$HOSTS" --path $Pd/junk 1 >/dev/null || fail "cannot create $Pd/junk"
bg probed "$ZKC_INTEROP" probe --hosts "$HOSTS" --path $Pd --kind mutex --timeout-ms 1500 --again-after "$WORK/again"
n=0
until grep -q '^acquire:' "$WORK/probed.out" 2>/dev/null; do
    n=$((n + 1)); [ $n -lt 600 ] || { fail "first probe never finished"; finish; }; sleep 0.05
done
bg curhold2 java_run hold-mutex "$HOSTS" $Pd "$WORK/cur2.ready" "$WORK/release-d"
wait_file "$WORK/cur2.ready" 60 || { fail "Curator never got $Pd"; cat "$WORK/curhold2.out"; finish; }
bg kazwait2 py_run wait "$HOSTS" $Pd "$WORK/release-d"
n=0
until "$ZKC_INTEROP" queue --hosts "$HOSTS" --path $Pd 2>/dev/null | grep -q '__lock__'; do
    n=$((n + 1)); [ $n -lt 300 ] || { fail "kazoo's node never appeared in $Pd"; finish; }; sleep 0.05
done
: >"$WORK/again"
n=0
until grep -q '^acquire2:' "$WORK/probed.out" 2>/dev/null; do
    n=$((n + 1)); [ $n -lt 600 ] || { fail "second probe never finished"; finish; }; sleep 0.05
done
sed 's/^/    zkcoord: /' "$WORK/probed.out"
assert_grep "$WORK/probed.out" '^acquire: ok' "zkcoord took the free lock (first attempt)"
assert_grep "$WORK/probed.out" "ZKCLOG WARN lock $Pd: ignoring 1 child" "zkcoord warned about the foreign child"
assert_grep "$WORK/probed.out" '^acquire2: timed out' "zkcoord waited behind Curator (second attempt)"
# A lock object that earlier warned about a foreign child still warns about
# Curator + kazoo (each warning has its own flag).
assert_grep "$WORK/probed.out" "ZKCLOG WARN lock $Pd: both Curator" "mixed-queue warning after an earlier foreign-child warning"
: >"$WORK/release-d"
wait_bg
finish
