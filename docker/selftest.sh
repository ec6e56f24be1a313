#!/usr/bin/env bash
# selftest.sh: exercise docker/ensemble.sh against a real 3-node ensemble.
#
#   docker/selftest.sh
#
# Makes an image available (ensemble.sh ensure-image: the official image, or
# zkcoord/zookeeper-local:3.8 built from Debian packages), starts a fresh
# ensemble, and checks: srvr on every node, one leader, a client write and
# reads from every node, leader kill and re-election, follower and leader
# pause, follower and leader disconnect (minority side), stop/start; then
# removes the ensemble. Ends with the line "N passed, M failed"; exits 1 if any
# check failed. Takes about 1-2 minutes once the image exists.
#
# Uses the project's environment (ZKC_COMPOSE_PROJECT, ZKC_DOCKER_PORT1..3, ...);
# the ensemble of that project is removed at the start and at the end.
# ZKC_SELFTEST_KEEP=1 leaves it running at the end.
# Clients: zkCli.sh run from the ZooKeeper image itself (docker run --network
# host), so nothing needs to be installed on the host.
set -euo pipefail

dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
E="$dir/ensemble.sh"
passed=0 failed=0

say() { printf 'selftest: %s\n' "$*" >&2; }
ok() { passed=$((passed + 1)); say "ok   - $*"; }
bad() { failed=$((failed + 1)); say "FAIL - $*"; }
check() { local what=$1; shift; if "$@" >/dev/null 2>&1; then ok "$what"; else bad "$what"; fi; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

finish() {
    local rc=$?
    if [[ ${ZKC_SELFTEST_KEEP:-0} != 1 ]]; then "$E" down >/dev/null 2>&1 || true; fi
    printf '%d passed, %d failed\n' "$passed" "$failed"
    if [[ $failed -gt 0 || $rc -ne 0 ]]; then exit 1; fi
}
trap finish EXIT

line=$("$E" ensure-image)
export "${line?}"
say "image: $ZKC_ZK_IMAGE"

# zk ARGS...: run zkCli.sh from the image against the host's published ports.
# zkCli.sh gives up with ConnectionLoss when the server it picks first is down
# (it does not wait for the next one), so retry a few times.
zk() {
    local i out
    for i in 1 2 3 4 5; do
        if out=$(timeout 60 docker run --rm --network host --entrypoint /bin/bash "$ZKC_ZK_IMAGE" \
                -c 'exec zkCli.sh "$@" 2>&1' zkcli "$@") && ! grep -q ConnectionLoss <<< "$out"; then
            printf '%s\n' "$out"
            return 0
        fi
        sleep 0.5
    done
    printf '%s\n' "$out"
    return 1
}
# zkget SERVER PATH: print the data of PATH as read from SERVER.
zkget() {
    zk -server "$1" get "$2" |
        grep -v -E '^(WATCHER::|WatchedEvent |[0-9]{4}-[0-9]{2}-[0-9]{2}[ T]|SLF4J|log4j:|\s*$)' | tail -n 1
}
follower_of() { local l=$1; echo $(( l % 3 + 1 )); }
leader_is_not() { local l; l=$("$E" leader) && [[ $l != "$1" ]]; }

"$E" down >/dev/null 2>&1 || true
t=$(now)
if hosts=$("$E" up); then ok "up in $(since "$t")s: $hosts"; else bad "up"; exit 1; fi
check "hosts prints the connect string" test "$("$E" hosts)" == "$hosts"
for n in 1 2 3; do
    check "srvr answers on node $n ($("$E" hostport "$n"))" "$E" srvr "$n"
done
leaders=0
for n in 1 2 3; do "$E" srvr "$n" | grep -q '^Mode: leader' && leaders=$((leaders + 1)); done
check "exactly one leader" test "$leaders" -eq 1
check "4lw mntr works (whitelist *)" bash -c "'$E' 4lw 1 mntr | grep -q zk_server_state"

path=/zkcoord-selftest
if zk -server "$hosts" create "$path" v0 | grep -q "Created $path"; then ok "client created $path"; else bad "client create $path"; fi
for n in 1 2 3; do
    check "node $n serves $path" test "$(zkget "$("$E" hostport "$n")" "$path")" == v0
done

# Leader kill.
L=$("$E" leader)
t=$(now); "$E" kill "$L"
if "$E" wait-quorum 30 && leader_is_not "$L"; then ok "kill leader $L: new leader $("$E" leader) after $(since "$t")s"; else bad "kill leader $L: no new leader"; fi
if zk -server "$hosts" set "$path" v1 >/dev/null && [[ $(zkget "$hosts" "$path") == v1 ]]; then ok "write with leader $L dead"; else bad "write with leader $L dead"; fi
t=$(now); "$E" start "$L"
if "$E" wait-all 60; then ok "node $L restarted and rejoined after $(since "$t")s"; else bad "node $L did not rejoin"; fi
check "restarted node $L has the write" test "$(zkget "$("$E" hostport "$L")" "$path")" == v1

# Follower pause: the quorum stays.
L=$("$E" leader); F=$(follower_of "$L")
"$E" pause "$F"
check "pause follower $F: quorum stays" "$E" wait-quorum 10
check "paused follower $F does not answer srvr" bash -c "! '$E' srvr $F"
"$E" unpause "$F"
check "unpause follower $F: rejoined" "$E" wait-all 60

# Leader pause: the others elect a new leader; the old one rejoins as follower.
L=$("$E" leader)
t=$(now); "$E" pause "$L"
if "$E" wait-quorum 30 && leader_is_not "$L"; then ok "pause leader $L: new leader after $(since "$t")s"; else bad "pause leader $L: no new leader"; fi
t=$(now); "$E" unpause "$L"
if "$E" wait-all 60; then ok "unpause old leader $L: rejoined after $(since "$t")s"; else bad "unpause old leader $L"; fi

# Follower disconnect: a minority of one; its client port is cut too.
L=$("$E" leader); F=$(follower_of "$L")
"$E" disconnect "$F"
check "disconnect follower $F: quorum stays" "$E" wait-quorum 10
check "disconnected follower $F: published port cut" bash -c "! '$E' srvr $F"
if zk -server "$hosts" set "$path" v2 >/dev/null; then ok "write while follower $F is cut off"; else bad "write while follower $F is cut off"; fi
t=$(now); "$E" connect "$F"
if "$E" wait-all 60; then ok "connect follower $F: rejoined after $(since "$t")s"; else bad "connect follower $F"; fi
check "reconnected follower $F has the write" test "$(zkget "$("$E" hostport "$F")" "$path")" == v2

# Leader disconnect: the majority side elects a new leader.
L=$("$E" leader)
t=$(now); "$E" disconnect "$L"
if "$E" wait-quorum 30 && leader_is_not "$L"; then ok "disconnect leader $L: new leader $("$E" leader) after $(since "$t")s"; else bad "disconnect leader $L"; fi
sleep 15
t=$(now); "$E" connect "$L"
if "$E" wait-all 60; then ok "connect old leader $L after 15s apart: rejoined after $(since "$t")s"; else bad "connect old leader $L"; fi

# Stop/start (SIGTERM).
t=$(now); "$E" stop 1
check "stop 1 took under 10 s" awk -v s="$(since "$t")" 'BEGIN { exit !(s < 10) }'
check "stop 1: quorum stays" "$E" wait-quorum 30
"$E" start 1
check "start 1: rejoined" "$E" wait-all 60

check "status lists 3 nodes" test "$("$E" status | wc -l)" -eq 3
check "down" "$E" down
left=$(docker ps -aq --filter "label=com.docker.compose.project=${ZKC_COMPOSE_PROJECT:-zkcoord}")
check "no containers left after down" test -z "$left"
