#!/bin/bash
# 3. Read/write lock: zkcoord (zkc_rwlock_create) and Curator
# InterProcessReadWriteLock on one path. Every worker alternates reads and
# writes (one hold in three is a write). The checker requires: a writer is
# alone, readers share only with readers, readers of both libraries were
# inside together at least once, writers go in node-sequence order with
# increasing tokens, and no writer starves (a writer enters only once every
# node queued before it has left, and no reader queued after a writer enters
# before that writer has left).
TEST_NAME=t3-rwlock-curator
. "$INTEROP_SRC/lib.sh"
need java
ens_start

P=/interop/rwlock
D=$(phase rw)
bg zkc "$ZKC_INTEROP" rw --hosts "$HOSTS" --path $P --dir "$D" --name zkc --threads 4 --iters 30 --hold-ms 8
bg cur java_run rw "$HOSTS" $P "$D" cur 4 30 8
go "$D" zkc cur
wait_bg
check_log rw "$D/log" --min-impls 2 --min-handovers 10 || fail "checker rejected the log $D/log"
n=$(grep -c '^ENTER' "$D/log")
[ "$n" -eq 240 ] || fail "expected 240 holds, log has $n"
refute_grep "$WORK/zkc.out" 'ZKCLOG (WARN|ERROR)' "zkcoord logged no warning next to Curator"
finish
