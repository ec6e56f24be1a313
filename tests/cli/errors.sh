#!/bin/sh
# zkcoord: every usage and connection error gives its documented exit status
# and a message saying what failed. Needs no ZooKeeper server.
. "$(dirname "$0")/common.sh"
unset ZKC_HOSTS ZKC_AUTH

# --help and --version: exit 0, on stdout, without --hosts
run 0 "$ZKCOORD" --help
grep -q "^usage: zkcoord" "$T/out" || fail "--help prints no usage"
grep -q "Exit status" "$T/out" || fail "--help documents no exit codes"
for cmd in lock counter queue session; do
    run 0 "$ZKCOORD" "$cmd" --help
    grep -q "^usage: zkcoord $cmd" "$T/out" || fail "$cmd --help prints no usage"
    run 0 "$ZKCOORD" "$cmd" -h
    run 0 "$ZKCOORD" help "$cmd"
    grep -q "^usage: zkcoord $cmd" "$T/out" || fail "help $cmd prints no usage"
done
run 0 "$ZKCOORD" counter add --help
run 0 "$ZKCOORD" --version
grep -q "^zkcoord [0-9]" "$T/out" || fail "--version"
ok "help and version"

# no server given
run 2 "$ZKCOORD" session
grep -q -- "--hosts" "$T/err" || fail "missing --hosts: message does not say how to give it"
run 2 "$ZKCOORD" counter get /cli/x
run 2 "$ZKCOORD" lock /cli/x -- true
ok "missing --hosts/ZKC_HOSTS exits 2"

# usage errors (a dead address: none of these may get as far as connecting)
H="--hosts 127.0.0.1:1"
run 2 "$ZKCOORD"
run 2 "$ZKCOORD" $H frobnicate
grep -q "unknown command 'frobnicate'" "$T/err" || fail "unknown command message"
run 2 "$ZKCOORD" $H session --frob
grep -q "unknown option '--frob'" "$T/err" || fail "unknown option message"
run 2 "$ZKCOORD" $H counter get relative/path
grep -q "not absolute" "$T/err" || fail "relative path message"
run 2 "$ZKCOORD" $H counter get /trailing/
grep -q "empty component" "$T/err" || fail "trailing slash message"
run 2 "$ZKCOORD" $H lock cli/x -- true
run 2 "$ZKCOORD" $H lock /cli//x -- true
run 2 "$ZKCOORD" $H queue /cli/x/
run 2 "$ZKCOORD" $H queue /
run 2 "$ZKCOORD" $H counter get /zookeeper/quota
run 2 "$ZKCOORD" $H counter get /a/../b
run 2 "$ZKCOORD" $H lock /cli/x
grep -q "missing COMMAND" "$T/err" || fail "lock without a command"
run 2 "$ZKCOORD" $H lock
run 2 "$ZKCOORD" $H lock --timeout -1 /cli/x -- true
run 2 "$ZKCOORD" $H lock --timeout soon /cli/x -- true
run 2 "$ZKCOORD" $H lock --read --write /cli/x -- true
run 2 "$ZKCOORD" $H counter
run 2 "$ZKCOORD" $H counter frob /cli/c
run 2 "$ZKCOORD" $H counter get
run 2 "$ZKCOORD" $H counter set /cli/c
run 2 "$ZKCOORD" $H counter add /cli/c 12abc
grep -q "not a 64-bit integer" "$T/err" || fail "bad number message"
run 2 "$ZKCOORD" $H counter add /cli/c 99999999999999999999
run 2 "$ZKCOORD" $H counter cas /cli/c 1
run 2 "$ZKCOORD" $H counter get /cli/c --floor 0
run 2 "$ZKCOORD" $H counter add /cli/c 1 --format int16
run 2 "$ZKCOORD" $H counter add /cli/c 1 --floor 5 --ceiling 4
run 2 "$ZKCOORD" $H --session-timeout 0 session
run 2 "$ZKCOORD" $H --auth nocolon session
run 2 "$ZKCOORD" --hosts "" session
run 2 "$ZKCOORD" $H --auth "" session
grep -q -- "--auth '' gives no credentials" "$T/err" || fail "--auth '' message"
run 2 "$ZKCOORD" $H --acl everyone session
grep -q -- "--acl must be open, creator or creator-read" "$T/err" || fail "--acl value message"
run 2 "$ZKCOORD" $H --acl creator counter get /cli/c
grep -q -- "need credentials" "$T/err" || fail "--acl creator without --auth message"
# Paths longer than the library's limit (1024 bytes) are usage errors found
# before connecting; 1024 bytes pass the check (and then find no server here).
long1024=/$(printf 'p%.0s' $(seq 1023))
run 2 "$ZKCOORD" $H counter get "${long1024}q"
grep -q "path is 1025 bytes long; the limit is 1024" "$T/err" || fail "long path message"
run 4 "$ZKCOORD" $H --connect-timeout 500 counter get "$long1024"
ok "usage errors exit 2 with a message"

# no server reachable: exit 4 within the connect timeout
for args in "session" "counter get /cli/c" "queue /cli/l" "lock /cli/l -- true"; do
    start=$(date +%s)
    # shellcheck disable=SC2086
    run 4 timeout -s KILL 20 "$ZKCOORD" --hosts 127.0.0.1:1 --connect-timeout 1000 $args
    grep -q "cannot connect to ZooKeeper at 127.0.0.1:1" "$T/err" || fail "no-server message ($args)"
    [ $(($(date +%s) - start)) -le 6 ] || fail "no-server took more than 6 s ($args)"
done
ZKC_HOSTS=127.0.0.1:1 run 4 timeout -s KILL 20 "$ZKCOORD" --connect-timeout 500 session
ok "unreachable server exits 4 within its connect timeout"

# A host name that does not resolve (.invalid never does, RFC 2606) is an
# unreachable server too: exit 4, naming the host, not a usage error.
run 4 timeout -s KILL 20 "$ZKCOORD" --hosts no-such-host.invalid:2181 --connect-timeout 1000 session
grep -q "host name 'no-such-host.invalid' does not resolve" "$T/err" || fail "unresolvable host message"
run 4 timeout -s KILL 20 "$ZKCOORD" --hosts no-such-host.invalid:2181 --connect-timeout 1000 lock /cli/l -- true
grep -q "host name 'no-such-host.invalid' does not resolve" "$T/err" || fail "unresolvable host message (lock)"
# One good-looking address among them: the connect times out, and says why.
run 4 timeout -s KILL 20 "$ZKCOORD" --hosts no-such-host.invalid:2181,127.0.0.1:1 --connect-timeout 500 session
grep -q "host name 'no-such-host.invalid' does not resolve" "$T/err" || fail "unresolvable host note"
ok "unresolvable host name exits 4 and says so"
exit 0
