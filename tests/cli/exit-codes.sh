#!/bin/sh
# The exit codes have one source, the "Exit status" text of `zkcoord --help`
# (EXIT_CODES_HELP in the CLI's sources). README.md quotes it verbatim and the
# man page's EXIT STATUS section must list the same codes: this test fails
# when either drifts (the README once omitted 1 and 10). Needs no server.
. "$(dirname "$0")/common.sh"
: "${top_srcdir:=.}"

run 0 "$ZKCOORD" --help
sed -n '/^Exit status:/,/^$/p' "$T/out" | sed '/^$/d' > "$T/help"
[ -s "$T/help" ] || fail "zkcoord --help has no 'Exit status:' block"
# The README's copy: the fenced block that starts with "Exit status:".
awk '/^```/ { if (inblk) exit; next } /^Exit status:$/ { inblk = 1 } inblk' "$top_srcdir/README.md" > "$T/readme"
[ -s "$T/readme" ] || fail "README.md has no fenced 'Exit status:' block"
if ! diff -u "$T/help" "$T/readme" >&2; then
    fail "README.md's exit codes differ from zkcoord --help (copy the block from 'zkcoord --help')"
fi
ok "README.md quotes the exit codes of zkcoord --help"

# Codes as numbers: "  0  ...", "  126/127 ...", "  128+N ...".
sed -n 's/^  \([0-9][0-9+N/]*\) .*/\1/p' "$T/help" | tr '/' '\n' > "$T/help-codes"
# Man page: the .B line after each .TP of the EXIT STATUS section
# (".B 126, 127", ".B 128+\fIN\fR").
sed -n '/^\.SH EXIT STATUS/,/^\.SH /p' "$top_srcdir/cli/zkcoord.1" |
    awk 'prev == ".TP" && /^\.B / { sub(/^\.B /, ""); print } { prev = $0 }' |
    sed -e 's/\\fI//g' -e 's/\\fR//g' -e 's/, /\n/g' > "$T/man-codes"
if ! diff -u "$T/help-codes" "$T/man-codes" >&2; then
    fail "zkcoord.1's EXIT STATUS lists other codes than zkcoord --help"
fi
ok "zkcoord.1 lists the same exit codes"
exit 0
