#!/bin/sh
# zkcoord --auth and --acl: nodes a command creates with --acl creator are
# usable only with the same credentials (exit 5 otherwise); creator-read lets
# anyone read.
. "$(dirname "$0")/common.sh"
unset ZKC_AUTH
start_zk

run 0 "$ZKCOORD" --auth alice:secret --acl creator counter add /cli/acl/private 3
run 5 "$ZKCOORD" counter get /cli/acl/private
run 5 "$ZKCOORD" --auth bob:other counter get /cli/acl/private
run 0 "$ZKCOORD" --auth alice:secret counter get /cli/acl/private
[ "$(cat "$T/out")" = 3 ] || fail "creator reads back 3 (got '$(cat "$T/out")')"
ZKC_AUTH=alice:secret run 0 "$ZKCOORD" counter add /cli/acl/private 1
# An empty ZKC_AUTH is no credentials (an empty --auth is refused, see errors.sh).
ZKC_AUTH= run 5 "$ZKCOORD" counter get /cli/acl/private
ok "--acl creator: only the creator's credentials may use the node"

run 0 "$ZKCOORD" --auth alice:secret --acl creator-read counter add /cli/acl/public 7
run 0 "$ZKCOORD" counter get /cli/acl/public
[ "$(cat "$T/out")" = 7 ] || fail "anyone reads 7 (got '$(cat "$T/out")')"
run 5 "$ZKCOORD" counter add /cli/acl/public 1
run 0 "$ZKCOORD" --auth alice:secret counter add /cli/acl/public 1
ok "--acl creator-read: anyone reads, only the creator writes"
exit 0
