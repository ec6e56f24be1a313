#!/bin/sh
# Fails if the shared library exports any symbol without the zkc_ prefix:
# private helpers (zkc__*) and libzookeeper's symbols must never leak.
lib="${top_builddir:-.}/lib/.libs/libzkcoord.so"
if [ ! -f "$lib" ]; then
    echo "check-symbols: $lib not built" >&2
    exit 1
fi
syms=$(nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRVW]$/ {print $3}' | sed 's/@.*//')
bad=$(printf '%s\n' "$syms" | grep -v '^zkc_[a-z]' | grep -v '^$' || true)
priv=$(printf '%s\n' "$syms" | grep '^zkc__' || true)
n=$(printf '%s\n' "$syms" | grep -c '^zkc_' || true)
if [ -n "$bad$priv" ]; then
    echo "check-symbols: exported symbols outside the public zkc_ API:" >&2
    printf '%s\n' $bad $priv >&2
    exit 1
fi
if [ "$n" -lt 20 ]; then
    echo "check-symbols: only $n zkc_ symbols exported; the public API is missing" >&2
    exit 1
fi
echo "check-symbols: $n public symbols, none private"
