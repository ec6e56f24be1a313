#!/bin/bash
# 4. Semaphore: zkcoord's semaphore and Curator's InterProcessSemaphoreV2 speak
# different protocols and do NOT interoperate (README.md). zkcoord queues
# "_c_<uuid>-lease-<seq>" directly under the path and keeps the lease count in
# the path's data; Curator takes a mutex under PATH/locks, creates its lease
# under PATH/leases and counts only that directory's children. Neither sees the
# other's leases. This test pins down what a user mixing them would see:
#  a. Curator holds the only lease; zkcoord must WARN about the foreign
#     children ("locks", "leases": no sequence suffix) of its semaphore path.
#     (That zkcoord is still granted a lease is printed, not asserted.)
#  b. zkcoord holds the only lease; Curator is granted one too: printed, and
#     the README documents it. Nothing warns on Curator's side.
TEST_NAME=t4-semaphore-curator
. "$INTEROP_SRC/lib.sh"
need java
ens_start

P=/interop/semaphore
say "a. Curator holds the only lease of $P, then zkcoord asks for one"
bg curhold java_run hold-semaphore "$HOSTS" $P 1 "$WORK/cur.ready" "$WORK/cur.release"
wait_file "$WORK/cur.ready" 60 || { fail "Curator never got its lease"; cat "$WORK/curhold.out"; finish; }
"$ZKC_INTEROP" probe --hosts "$HOSTS" --path $P --kind semaphore --leases 1 --timeout-ms 2000 >"$WORK/probe-a.out" 2>&1 ||
    fail "zkcoord probe failed: $(cat "$WORK/probe-a.out")"
sed 's/^/    zkcoord: /' "$WORK/probe-a.out"
assert_grep "$WORK/probe-a.out" "ZKCLOG WARN lock $P: ignoring [0-9]+ child node\\(s\\) without a sequence suffix" \
    "zkcoord warned about Curator's locks/leases children"
if grep -q '^acquire: ok' "$WORK/probe-a.out"; then
    say "documented: zkcoord was granted a lease while Curator held the only one (protocols are disjoint)"
fi
: >"$WORK/cur.release"
wait_bg

say "b. zkcoord holds the only lease of $P-b, then Curator asks for one"
bg zkchold "$ZKC_INTEROP" probe --hosts "$HOSTS" --path $P-b --kind semaphore --leases 1 --timeout-ms 10000 \
    --ready "$WORK/zkc.ready" --hold-until "$WORK/zkc.release"
wait_file "$WORK/zkc.ready" 60 || { fail "zkcoord never got its lease"; cat "$WORK/zkchold.out"; finish; }
java_run try-semaphore "$HOSTS" $P-b 1 2000 >"$WORK/try-b.out" 2>&1 || fail "Curator try-semaphore failed: $(cat "$WORK/try-b.out")"
sed 's/^/    curator: /' "$WORK/try-b.out"
if grep -q '^acquired' "$WORK/try-b.out"; then
    say "documented: Curator was granted a lease while zkcoord held the only one (protocols are disjoint)"
fi
: >"$WORK/zkc.release"
wait_bg
finish
