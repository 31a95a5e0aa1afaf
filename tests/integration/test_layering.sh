# The layers of issue 13 stay apart (docs/ARCHITECTURE.md): no SQL outside
# catalog/, no catalog/ header under backends/, no fuse/ header under tools/,
# and hsmctl runs without libfuse. Needs no mount.
set -uo pipefail
SRC=${HSMFS_SRC:?set HSMFS_SRC to the source tree}
BIN=${HSMFS_BIN:?set HSMFS_BIN to the build directory}/bin
rc=0
fail() { echo "FAIL: $*"; rc=1; }
cd "$SRC" || exit 1
found=$(grep -rln 'Prepare(\|sqlite3' --include=*.cc --include=*.h \
  backends cli common engine fuse sources tools)
[ -z "$found" ] && echo "ok: no SQL outside catalog/" || fail "SQL outside catalog/: $found"
found=$(grep -rln '#include "catalog/' --include=*.cc --include=*.h backends)
[ -z "$found" ] && echo "ok: no catalog/ header under backends/" || fail "catalog/ headers under backends/: $found"
found=$(grep -rln '#include "fuse/' --include=*.cc --include=*.h tools)
[ -z "$found" ] && echo "ok: no fuse/ header under tools/" || fail "fuse/ headers under tools/: $found"
libs=$(ldd "$BIN/hsmctl") || fail "ldd $BIN/hsmctl"
if grep -qi fuse <<<"$libs"; then fail "hsmctl links libfuse: $(grep -i fuse <<<"$libs")"; else echo "ok: hsmctl links without libfuse"; fi
grep -qi fuse <<<"$(ldd "$BIN/hsmfs")" || fail "the check cannot see libfuse: hsmfs does not link it either"
exit $rc
