# `hsmfs --demo` builds the demo once, mounts it, and is harmless to repeat.
source "$(dirname "$0")/lib.sh"

export HOME=$WORK/home XDG_DATA_HOME=
MNT=$WORK/demo-mnt
mkdir -p "$MNT"
"$BIN/hsmfs" --demo "$MNT" >"$WORK/out" || fail "hsmfs --demo: $(cat "$WORK/out")"
MOUNTS+=("$MNT")
wait_mounted "$MNT"
grep -q "Try:" "$WORK/out" || fail "the demo says what to try"
grep -q "fusermount3 -u $MNT" "$WORK/out" || fail "the demo says how to unmount"
pass "hsmfs --demo mounts and prints hints"

ls -lR "$MNT" >"$WORK/lsR" || fail "ls -lR of the demo"
files=$(find "$MNT" -type f | wc -l)
[ "$files" -ge 200 ] || fail "the demo has a few hundred files (has $files)"
pass "ls -lR works; $files files"
assert_eq "$(getfattr --absolute-names --only-values -n user.hsm.state "$MNT/vault/act6/season4/tod_001.dat")" \
  "offline" "demo files are offline"
bytes=$(du -sb "$HOME/.local/share/hsmfs/demo/archive" | cut -f1)
[ "$bytes" -gt 10000000 ] && [ "$bytes" -lt 100000000 ] || fail "the demo holds some MB of data (has $bytes bytes)"
pass "demo archive holds $((bytes / 1048576)) MiB"

hint_cmd=$(grep -o "[^ ]*hsmctl -c [^ ]* ls -R vault/lsst" "$WORK/out")
$hint_cmd >"$WORK/hint.out" || fail "the hinted hsmctl command works: $hint_cmd"
[ "$(grep -c '^OFL' "$WORK/hint.out")" == 60 ] || fail "hsmctl ls -R vault/lsst: $(head "$WORK/hint.out")"
pass "the hinted hsmctl command works"

"$BIN/hsmfs" --demo "$MNT" >"$WORK/out2" || fail "a second hsmfs --demo"
grep -q "already mounted" "$WORK/out2" || fail "a second run says the demo is mounted"
assert_eq "$(grep " $MNT " /proc/self/mountinfo | grep -c " fuse.hsmfs ")" "1" \
  "a second run does not stack a mount"
fusermount3 -u "$MNT"
wait_unmounted "$MNT"
"$BIN/hsmfs" --demo "$MNT" >/dev/null || fail "remount of an existing demo"
wait_mounted "$MNT"
pass "the demo remounts from its existing data"
