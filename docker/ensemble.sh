#!/usr/bin/env bash
# ensemble.sh: control the 3-node ZooKeeper test ensemble of docker/compose.yml.
#
# Usage: docker/ensemble.sh COMMAND [ARGS]      (nodes N are 1, 2 or 3)
#
#   up                 start the ensemble (compose up -d), wait until all three
#                      nodes answer `srvr` on their published ports and exactly
#                      one is leader (at most ZKC_UP_TIMEOUT s, default 120), then
#                      print the connect string on stdout. Idempotent: also
#                      unpauses and reconnects nodes a test left paused or
#                      disconnected. Data survive until `down`.
#   down               remove containers, network and volumes
#   hosts              print the connect string 127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3
#   hostport N         print 127.0.0.1:PN, the client address of node N
#   stop N             docker stop (SIGTERM, then SIGKILL after ZKC_STOP_TIMEOUT s, default 10)
#   start N            docker start (does not wait for the node to rejoin)
#   kill N             docker kill -s KILL
#   pause N / unpause N        freeze / thaw every process of node N
#   disconnect N / connect N   detach node N from / re-attach it to the ensemble
#                      network: it becomes a minority side of one. This also cuts
#                      its published client port (clients see connection loss).
#                      connect gives it back its address and DNS name; it
#                      rejoins within seconds (wait-all).
#   leader             print the number of the node that says `Mode: leader`
#                      (the lowest if several do); nothing and exit 1 if none
#   srvr N             print node N's answer to `srvr`; exit 1 if it gives none
#   4lw N WORD         send any four-letter word (mntr, cons, wchc, ...) to node N
#   status             one line per node: N, container state, network, mode
#   wait-quorum [S]    wait (default 60 s) until one node is leader and a
#                      majority (2 of 3) of the reachable nodes serve
#   wait-all [S]       wait (default 120 s) until all 3 serve with one leader
#   logs N [ARGS]      docker logs of node N (ARGS such as --tail 50 are passed on)
#   image              print the image in use
#   ensure-image       make an image available, print ZKC_ZK_IMAGE=IMAGE (below)
#
# Standard output carries only results (connect string, numbers, srvr output,
# the ZKC_ZK_IMAGE= line); progress and errors go to stderr. Every wait is
# bounded; a failing command exits non-zero with a message on stderr.
#
# Environment:
#   ZKC_ZK_IMAGE          image (default zookeeper:3.8, the official image)
#   ZKC_COMPOSE_PROJECT   compose project name (default zkcoord): separate names
#                         give separate ensembles (use separate ports too)
#   ZKC_DOCKER_PORT1..3   published client ports on 127.0.0.1 (22181, 22182, 22183)
#   ZKC_DOCKER_NET_PREFIX the ensemble network is PREFIX.0/24, nodes PREFIX.11-13
#                         (default 172.16.218 for project zkcoord, else
#                         172.16.X with X from a checksum of the project name)
#   ZKC_DOCKER_OFFLINE=1  never try to pull an image
#   ZKC_SRVR_TIMEOUT      seconds allowed for one four-letter word (default 2)
#   ZKC_UP_TIMEOUT        seconds `up` waits for the ensemble (default 120)
#   ZKC_ZK_TICK_TIME, ZKC_ZK_INIT_LIMIT, ZKC_ZK_SYNC_LIMIT, ZKC_ZK_MAX_CLIENT_CNXNS,
#   ZKC_ZK_CFG_EXTRA, ZKC_ZK_JVMFLAGS, ZKC_ZK_MAX_NOTIFICATION_MS, ZKC_ZK_TCP_RETRIES2
#                         read by compose.yml at `up` (see there)
#   ZKC_ZK_FORCE_SNAP_SYNC  read by compose.yml at `up`; when unset, `up` sets it
#                         to true for zkcoord/zookeeper-local:3.8 (Debian's
#                         ZooKeeper 3.8.0 loses transactions from a follower's
#                         log after an interrupted DIFF sync; docker/README.md)
#   ZKC_COMPOSE           compose command to use (default: `docker compose` if
#                         available, else `docker-compose`)
#
# ensure-image logic (prints exactly one line, ZKC_ZK_IMAGE=IMAGE, on success):
#   - ZKC_ZK_IMAGE set to zkcoord/zookeeper-local:3.8: run
#     zookeeper-local/build.sh, which does nothing when the image exists and was
#     built from the current build.sh and docker-entrypoint.sh (hash label).
#   - ZKC_ZK_IMAGE set to anything else: use it if present locally; otherwise
#     pull it (unless offline); fail if that does not work.
#   - ZKC_ZK_IMAGE unset: use zookeeper:3.8 if present locally (docker image
#     inspect); else, unless offline, try `docker pull zookeeper:3.8` for at most
#     20 s; if we are offline (ZKC_DOCKER_OFFLINE=1) or the pull fails, build
#     zkcoord/zookeeper-local:3.8 from Debian packages (build.sh, root: from
#     this machine's installed packages in ~10 s, else with debootstrap and the
#     machine's Debian mirror in ~10 min; see docker/README.md).
#   Use it as:  line=$(docker/ensemble.sh ensure-image) && export "$line"
#
# Four-letter words are sent from the host with bash's /dev/tcp: no nc needed.
# Needs: bash, docker, Compose (v2 plugin or docker-compose 1.29), coreutils.
set -euo pipefail
shopt -s inherit_errexit

prog=ensemble.sh
dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
official_image=zookeeper:3.8
local_image=zkcoord/zookeeper-local:3.8
image=${ZKC_ZK_IMAGE:-$official_image}
project=${ZKC_COMPOSE_PROJECT:-zkcoord}
host=127.0.0.1
ports=("${ZKC_DOCKER_PORT1:-22181}" "${ZKC_DOCKER_PORT2:-22182}" "${ZKC_DOCKER_PORT3:-22183}")
nodes=(1 2 3)
srvr_timeout=${ZKC_SRVR_TIMEOUT:-2}

log() { printf '%s: %s\n' "$prog" "$*" >&2; }
die() { printf '%s: error: %s\n' "$prog" "$*" >&2; exit 1; }
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//' >&2; }

[[ $project =~ ^[a-z0-9][a-z0-9_-]*$ ]] ||
    die "ZKC_COMPOSE_PROJECT='$project': use lower-case letters, digits, '-' and '_'"
for p in "${ports[@]}"; do
    [[ $p =~ ^[0-9]+$ ]] || die "ZKC_DOCKER_PORT1..3 must be port numbers (got '$p')"
done
if [[ -z ${ZKC_DOCKER_NET_PREFIX:-} ]]; then
    if [[ $project == zkcoord ]]; then
        ZKC_DOCKER_NET_PREFIX=172.16.218
    else
        ZKC_DOCKER_NET_PREFIX=172.16.$(( $(printf '%s' "$project" | cksum | cut -d' ' -f1) % 200 + 1 ))
    fi
fi
[[ $ZKC_DOCKER_NET_PREFIX =~ ^[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$ ]] ||
    die "ZKC_DOCKER_NET_PREFIX must be three octets such as 172.16.218 (got '$ZKC_DOCKER_NET_PREFIX')"
export ZKC_DOCKER_NET_PREFIX

# compose SECONDS ARGS...: run Compose on our project and file, bounded in time.
compose_cmd=()
compose() {
    local limit=$1; shift
    if [[ ${#compose_cmd[@]} -eq 0 ]]; then
        if [[ -n ${ZKC_COMPOSE:-} ]]; then
            read -r -a compose_cmd <<< "$ZKC_COMPOSE"
        elif docker compose version >/dev/null 2>&1; then
            compose_cmd=(docker compose)
        elif command -v docker-compose >/dev/null; then
            compose_cmd=(docker-compose)
        else
            die "neither 'docker compose' nor 'docker-compose' is installed"
        fi
    fi
    ZKC_ZK_IMAGE=$image timeout "$limit" "${compose_cmd[@]}" -p "$project" -f "$dir/compose.yml" "$@"
}

node_arg() {
    [[ ${1:-} =~ ^[123]$ ]] || die "node number must be 1, 2 or 3 (got '${1:-}')"
    printf '%s' "$1"
}

# Container id of node N (running or not).
cid() {
    local n id
    n=$(node_arg "${1:-}")
    id=$(docker ps -aq --filter "label=com.docker.compose.project=$project" \
        --filter "label=com.docker.compose.service=zoo$n") || die "docker ps failed"
    [[ -n $id ]] || die "node $n (service zoo$n) of project '$project' does not exist: run '$prog up' first"
    printf '%s\n' "$id" | head -n1
}

# Name of the ensemble network.
network() {
    local net
    net=$(docker network ls -q --filter "label=com.docker.compose.project=$project" \
        --filter "label=com.docker.compose.network=zk" | head -n1)
    if [[ -z $net ]] && docker network inspect "${project}_zk" >/dev/null 2>&1; then
        net=${project}_zk
    fi
    [[ -n $net ]] || die "network of project '$project' does not exist: run '$prog up' first"
    printf '%s\n' "$net"
}

# reattach NET N ID: connect node N to the ensemble network with its own
# address (PREFIX.1N of the network's actual subnet) and DNS name.
reattach() {
    local net=$1 n=$2 id=$3 subnet prefix
    subnet=$(docker network inspect -f '{{range .IPAM.Config}}{{.Subnet}} {{end}}' "$net")
    subnet=${subnet%% *}
    [[ $subnet =~ ^([0-9]+\.[0-9]+\.[0-9]+)\.0/24$ ]] ||
        die "network $net has subnet '$subnet', not PREFIX.0/24: recreate it with '$prog down; $prog up'"
    prefix=${BASH_REMATCH[1]}
    docker network connect --ip "$prefix.1$n" --alias "zoo$n" "$net" "$id"
}

# fourlw PORT WORD: send a four-letter word; print the answer; fail on no answer.
fourlw() {
    local out
    out=$(timeout "$srvr_timeout" bash -c '
        exec 3<>"/dev/tcp/$0/$1" || exit 1
        printf "%s" "$2" >&3
        cat <&3' "$host" "$1" "$2" 2>/dev/null) || true
    [[ -n $out ]] || return 1
    printf '%s\n' "$out"
}

# Fill modes[1..3] with each node's Mode (leader, follower, ...; "" if no answer),
# asking the three nodes in parallel so that paused nodes cost one timeout only.
declare -a modes
query_modes() {
    local tmp n
    tmp=$(mktemp -d)
    for n in "${nodes[@]}"; do
        (fourlw "${ports[n-1]}" srvr > "$tmp/$n" 2>/dev/null || true) &
    done
    wait
    for n in "${nodes[@]}"; do
        modes[n]=$(sed -n 's/^Mode: //p' "$tmp/$n" | head -n1)
    done
    rm -rf "$tmp"
}

describe_modes() {
    local n out=""
    for n in "${nodes[@]}"; do out+=" zoo$n=${modes[n]:-no-answer}"; done
    printf '%s' "${out# }"
}

# wait_for all|quorum SECONDS
wait_for() {
    local what=$1 limit=$2 start leaders serving n
    [[ $limit =~ ^[0-9]+$ ]] || die "timeout must be a number of seconds (got '$limit')"
    start=$SECONDS
    while :; do
        query_modes
        leaders=0 serving=0
        for n in "${nodes[@]}"; do
            case ${modes[n]} in
                leader) leaders=$((leaders + 1)); serving=$((serving + 1)) ;;
                follower) serving=$((serving + 1)) ;;
            esac
        done
        if [[ $leaders -eq 1 ]]; then
            if [[ $what == all && $serving -eq 3 ]] || [[ $what == quorum && $serving -ge 2 ]]; then
                return 0
            fi
        fi
        if (( SECONDS - start >= limit )); then
            log "no $( [[ $what == all ]] && echo 'full ensemble' || echo quorum ) after ${limit}s: $(describe_modes)"
            return 1
        fi
        sleep 0.5
    done
}

connect_string() {
    local n out=""
    for n in "${nodes[@]}"; do out+=",$host:${ports[n-1]}"; done
    printf '%s\n' "${out#,}"
}

# Undo what a test may have left: paused or disconnected nodes.
heal() {
    local n id state net attached
    net=$(docker network ls -q --filter "label=com.docker.compose.project=$project" \
        --filter "label=com.docker.compose.network=zk" | head -n1)
    for n in "${nodes[@]}"; do
        id=$(docker ps -aq --filter "label=com.docker.compose.project=$project" \
            --filter "label=com.docker.compose.service=zoo$n" | head -n1)
        [[ -n $id ]] || continue
        state=$(docker inspect -f '{{.State.Status}}' "$id")
        if [[ $state == paused ]]; then
            log "unpausing zoo$n"
            docker unpause "$id" >/dev/null
        fi
        if [[ -n $net ]]; then
            attached=$(docker inspect -f "{{with index .NetworkSettings.Networks \"$(docker network inspect -f '{{.Name}}' "$net")\"}}yes{{end}}" "$id")
            if [[ $attached != yes ]]; then
                log "reconnecting zoo$n to the ensemble network"
                reattach "$net" "$n" "$id"
            fi
        fi
    done
}

is_offline() { [[ ${ZKC_DOCKER_OFFLINE:-0} == 1 ]]; }

have_image() { docker image inspect "$1" >/dev/null 2>&1; }

try_pull() {
    is_offline && return 1
    log "trying docker pull $1 (at most 20 s)"
    timeout 20 docker pull "$1" >&2 2>/dev/null && return 0
    log "cannot pull $1: treating this machine as offline"
    return 1
}

build_local() {
    log "building $local_image with zookeeper-local/build.sh"
    "$dir/zookeeper-local/build.sh" >&2 || die "building $local_image failed (see above)"
}

cmd_ensure_image() {
    if [[ -n ${ZKC_ZK_IMAGE:-} ]]; then
        if [[ $ZKC_ZK_IMAGE == "$local_image" ]]; then
            build_local
        elif ! have_image "$ZKC_ZK_IMAGE" && ! try_pull "$ZKC_ZK_IMAGE"; then
            die "image $ZKC_ZK_IMAGE (ZKC_ZK_IMAGE) is not present and cannot be pulled"
        fi
        printf 'ZKC_ZK_IMAGE=%s\n' "$ZKC_ZK_IMAGE"
    elif have_image "$official_image" || try_pull "$official_image"; then
        printf 'ZKC_ZK_IMAGE=%s\n' "$official_image"
    else
        build_local
        printf 'ZKC_ZK_IMAGE=%s\n' "$local_image"
    fi
}

cmd_up() {
    local start=$SECONDS limit=${ZKC_UP_TIMEOUT:-120}
    if ! have_image "$image"; then
        if is_offline; then
            die "image $image is not present and ZKC_DOCKER_OFFLINE=1; run: line=\$($dir/ensemble.sh ensure-image) && export \"\$line\""
        fi
        try_pull "$image" ||
            die "image $image is not present and cannot be pulled; on a machine without a registry run: line=\$($dir/ensemble.sh ensure-image) && export \"\$line\""
    fi
    # Debian's 3.8.0 server drops transactions from a follower's log when a
    # DIFF sync is cut short; a full snapshot on every sync leaves no gap
    # (docker/README.md, "ZooKeeper 3.8.0": later releases fixed races of
    # this kind).
    if [[ -z ${ZKC_ZK_FORCE_SNAP_SYNC:-} && $image == "$local_image" ]]; then
        export ZKC_ZK_FORCE_SNAP_SYNC=true
    fi
    log "starting project '$project' with $image${ZKC_ZK_FORCE_SNAP_SYNC:+ (forceSnapshotSync=$ZKC_ZK_FORCE_SNAP_SYNC)}"
    heal
    compose 300 up -d >&2 ||
        die "compose up failed (or took over 300 s); if the network's address pool overlaps another network, set ZKC_DOCKER_NET_PREFIX (now $ZKC_DOCKER_NET_PREFIX)"
    if ! wait_for all "$limit"; then
        die "ensemble not ready within ${limit}s; see '$prog logs N' and '$prog status'"
    fi
    log "ensemble up in $((SECONDS - start))s; leader is zoo$(cmd_leader)"
    connect_string
}

cmd_down() {
    local ids id
    ids=$(docker ps -aq --filter "label=com.docker.compose.project=$project" --filter status=paused)
    for id in $ids; do docker unpause "$id" >/dev/null 2>&1 || true; done
    compose 180 down -v --remove-orphans -t 5 >&2 ||
        die "compose down failed (or took over 180 s)"
}

cmd_leader() {
    local n
    query_modes
    for n in "${nodes[@]}"; do
        if [[ ${modes[n]} == leader ]]; then printf '%s\n' "$n"; return 0; fi
    done
    return 1
}

cmd_status() {
    local n id state attached net netname
    net=$(docker network ls -q --filter "label=com.docker.compose.project=$project" \
        --filter "label=com.docker.compose.network=zk" | head -n1)
    netname=
    [[ -n $net ]] && netname=$(docker network inspect -f '{{.Name}}' "$net")
    query_modes
    for n in "${nodes[@]}"; do
        id=$(docker ps -aq --filter "label=com.docker.compose.project=$project" \
            --filter "label=com.docker.compose.service=zoo$n" | head -n1)
        if [[ -z $id ]]; then
            state=absent attached=-
        else
            state=$(docker inspect -f '{{.State.Status}}' "$id")
            attached=disconnected
            if [[ -n $netname ]]; then
                [[ $(docker inspect -f "{{with index .NetworkSettings.Networks \"$netname\"}}yes{{end}}" "$id") == yes ]] &&
                    attached=connected
            fi
        fi
        printf '%s zoo%s %s:%s %s %s %s\n' "$n" "$n" "$host" "${ports[n-1]}" "$state" "$attached" "${modes[n]:-no-answer}"
    done
}

cmd=${1:-}
[[ $# -gt 0 ]] && shift
case $cmd in
    up) cmd_up ;;
    down) cmd_down ;;
    hosts) connect_string ;;
    hostport) n=$(node_arg "${1:-}"); printf '%s:%s\n' "$host" "${ports[n-1]}" ;;
    stop) id=$(cid "${1:-}"); docker stop -t "${ZKC_STOP_TIMEOUT:-10}" "$id" >/dev/null ;;
    start) id=$(cid "${1:-}"); docker start "$id" >/dev/null ;;
    kill) id=$(cid "${1:-}"); docker kill -s KILL "$id" >/dev/null ;;
    pause) id=$(cid "${1:-}"); docker pause "$id" >/dev/null ;;
    unpause) id=$(cid "${1:-}"); docker unpause "$id" >/dev/null ;;
    disconnect) id=$(cid "${1:-}"); net=$(network); docker network disconnect "$net" "$id" ;;
    connect) n=$(node_arg "${1:-}"); id=$(cid "$n"); net=$(network); reattach "$net" "$n" "$id" ;;
    leader) cmd_leader ;;
    srvr) n=$(node_arg "${1:-}")
        fourlw "${ports[n-1]}" srvr || die "node $n ($host:${ports[n-1]}) gave no answer to srvr within ${srvr_timeout}s" ;;
    4lw) n=$(node_arg "${1:-}"); [[ ${2:-} =~ ^[a-z]{4}$ ]] || die "usage: $prog 4lw N WORD (four lower-case letters)"
        fourlw "${ports[n-1]}" "$2" || die "node $n ($host:${ports[n-1]}) gave no answer to $2 within ${srvr_timeout}s" ;;
    status) cmd_status ;;
    wait-quorum) wait_for quorum "${1:-60}" || die "no quorum within ${1:-60}s" ;;
    wait-all) wait_for all "${1:-120}" || die "ensemble not complete within ${1:-120}s" ;;
    logs) id=$(cid "${1:-}"); shift; docker logs "$@" "$id" ;;
    image) printf '%s\n' "$image" ;;
    ensure-image) cmd_ensure_image ;;
    -h|--help|help) usage ;;
    '') usage; exit 2 ;;
    *) usage; die "unknown command '$cmd'" ;;
esac
