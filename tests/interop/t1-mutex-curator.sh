#!/bin/bash
# 1. Mutex: zkcoord and Curator InterProcessMutex contend on one path. The
# external checker (check_log.py) proves mutual exclusion, FIFO grant order by
# node sequence, and increasing fencing tokens across the two libraries; the
# workers' O_EXCL markers catch overlap inside the critical section.
TEST_NAME=t1-mutex-curator
. "$INTEROP_SRC/lib.sh"
need java
ens_start

P=/interop/mutex
D=$(phase mutex)
bg zkc "$ZKC_INTEROP" mutex --hosts "$HOSTS" --path $P --dir "$D" --name zkc --threads 4 --iters 40 --hold-ms 3
bg cur java_run mutex "$HOSTS" $P "$D" cur 4 40 3
go "$D" zkc cur
wait_bg
check_log mutex "$D/log" --min-impls 2 --min-handovers 10 || fail "checker rejected the log $D/log"
[ "$(grep -c '^ENTER' "$D/log")" -eq 320 ] || fail "expected 320 holds, log has $(grep -c '^ENTER' "$D/log")"
# zkcoord names its nodes exactly as Curator does; no mixed-queue warning here.
refute_grep "$WORK/zkc.out" 'ZKCLOG (WARN|ERROR)' "zkcoord logged no warning next to Curator"
finish
