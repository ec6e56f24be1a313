#!/bin/sh
# Issue 18: "blocking call = callback call + wait" for every call. Walks the
# public header and fails if a call that can fail (returns int) has no
# <name>_async twin, unless it is listed below with its reason. Calls that
# return void or a pointer only read or free local state.
hdr="${top_srcdir:-.}/include/zkcoord.h"
[ -f "$hdr" ] || { echo "check-async-twins: $hdr not found" >&2; exit 1; }

# Exceptions: name and why (one per line). Keep it short.
exceptions='
zkc_client_create        constructor: there is no client to call back on yet
zkc_client_destroy       local: cancels and joins; never waits for a server
zkc_client_connected     local accessor
zkc_client_set_hosts     local: the next connection uses the new list
zkc_client_session       local accessor
zkc_client_session_timeout local accessor
zkc_lock_token           local accessor
zkc_lock_is_held         local accessor
zkc_lock_guard           local accessor (the guard is checked by the server at write time)
zkc_election_guard       local accessor (the guard is checked by the server at write time)
zkc_inventory_set_guard  local setter: the guard is copied, later calls carry it
zkc_lock_cancel          local: waits for the engine only, never for a server
zkc_idgen_cancel         local: waits for the engine only, never for a server
zkc_election_cancel      local: waits for the engine only, never for a server
zkc_election_token       local accessor
zkc_election_is_leader   local accessor
zkc_client_metrics       local: reads in-memory counters, no server
zkc_client_metrics_label_prefix local: registers a label
zkc_client_metrics_const_label local: registers a label
zkc_client_metrics_write local: writes to a descriptor given, no server
zkc_lock_contenders_watch already a callback form: starts a watch, never waits for a server
zkc_inventory_stock_watch already a callback form: starts a watch, never waits for a server
'
# Constructors (zkc_*_create, zkc_*_create_opts) hand back the object the
# async calls need; those that talk to the server are bounded by the
# connect/operation timeout and are called once per object.

decls=$(awk '/^ZKC_EXTERN/ {d = $0; while (d !~ /;/ && (getline line) > 0) d = d " " line; print d}' "$hdr")
names=$(printf '%s\n' "$decls" | sed -n 's/^ZKC_EXTERN int \(zkc_[a-z0-9_]*\)(.*/\1/p')
all=$(printf '%s\n' "$decls" | sed -n 's/^ZKC_EXTERN [^(]*[ *]\(zkc_[a-z0-9_]*\)(.*/\1/p')
[ -n "$names" ] || { echo "check-async-twins: no int-returning calls found in $hdr" >&2; exit 1; }

missing=
checked=0
for n in $names; do
    case $n in
    *_async) continue ;;
    *_create | *_create_opts) continue ;;
    esac
    checked=$((checked + 1))
    if printf '%s\n' "$all" | grep -qx "${n}_async"; then
        continue
    fi
    if printf '%s\n' "$exceptions" | awk '{print $1}' | grep -qx "$n"; then
        continue
    fi
    missing="$missing $n"
done
# An exception that no longer names a call (renamed, or given a twin) is stale.
for n in $(printf '%s\n' "$exceptions" | awk 'NF {print $1}'); do
    if ! printf '%s\n' "$names" | grep -qx "$n"; then
        echo "check-async-twins: exception $n is not an int-returning call of the header" >&2
        exit 1
    fi
    if printf '%s\n' "$all" | grep -qx "${n}_async"; then
        echo "check-async-twins: exception $n has an _async twin now: remove it from the list" >&2
        exit 1
    fi
done
if [ -n "$missing" ]; then
    echo "check-async-twins: blocking calls without an _async twin (add one, or an exception with its reason):" >&2
    for n in $missing; do echo "  $n" >&2; done
    exit 1
fi
echo "check-async-twins: $checked blocking calls, each with an _async twin or a listed reason"
