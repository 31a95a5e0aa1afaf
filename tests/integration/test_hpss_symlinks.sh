# Symlinks into an HPSS backend through a real mount, over the hsi/htar
# EMULATOR: `cp -a` of a tree with relative, dangling and absolute symlinks
# makes them with `hsi ln -s` (HPSS holds real symlinks with the same
# targets), and a mount with a fresh catalog and cache lists them again from
# `hsi ls` with their targets, never following them.
source "$(dirname "$0")/lib.sh"

EMU=${HSMFS_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/emulators/hpss
[ -x "$EMU/hsi" ] || fail "the hpss emulator is missing ($EMU/hsi)"
export HPSS_EMU_ROOT=$WORK/hpss HPSS_EMU_STATE=$WORK/emu
HOME_DIR=$HPSS_EMU_ROOT/home/elvis
mkdir -p "$HOME_DIR/incoming" "$HPSS_EMU_STATE"
source "$EMU/fixture.sh"

mkdir -p "$WORK/src/sub"
echo "alpha" >"$WORK/src/a.txt"
echo "beta" >"$WORK/src/sub/b.txt"
ln -s a.txt "$WORK/src/to_file"
ln -s sub "$WORK/src/to_dir"
ln -s ../a.txt "$WORK/src/sub/up"
ln -s nowhere/missing "$WORK/src/dangling"
ln -s /etc "$WORK/src/absolute"

# write_conf FILE CATALOG CACHE
write_conf() {
  cat >"$1" <<TOML
[catalog]
path = "$2"
[cache]
dir = "$3"
[log]
file = "$WORK/hsmfs.log"
[archive]
settle = "500ms"
TOML
  hpss_backend_head "$1"
  echo 'writable = ["incoming"]' >>"$1"
}
write_conf "$WORK/hsmfs.toml" "$WORK/catalog.db" "$WORK/cache"
MNT=$WORK/mnt
mount_bg "$WORK/hsmfs.toml" "$MNT"
IN=$MNT/hpss/incoming

# links DIR: path, type and target of everything below DIR.
links() { (cd "$1" && find . -mindepth 1 -printf '%P|%y|%l\n' | LC_ALL=C sort); }

cp -a "$WORK/src" "$IN/run" || fail "cp -a of a tree with symlinks into an HPSS backend"
assert_eq "$(links "$IN/run")" "$(links "$WORK/src")" "cp -a gives an identical tree"
want=$(links "$WORK/src")
for i in $(seq 1 300); do
  [ "$(links "$HOME_DIR/incoming/run" 2>/dev/null)" == "$want" ] && break
  sleep 0.1
done
assert_eq "$(links "$HOME_DIR/incoming/run")" "$want" "HPSS holds the symlinks with their targets"
grep -q '"cmd": "ln"' "$HPSS_EMU_STATE/calls.log" || fail "no hsi ln in the emulator's call log"
pass "made with hsi ln -s"

fusermount3 -u "$MNT" || fail "unmount"
wait_unmounted "$MNT"
write_conf "$WORK/hsmfs2.toml" "$WORK/catalog2.db" "$WORK/cache2"
mount_bg "$WORK/hsmfs2.toml" "$MNT"
assert_eq "$(links "$IN/run")" "$want" "a fresh catalog lists them again from hsi ls"
assert_eq "$(stat -c %F "$IN/run/absolute")" "symbolic link" "a symlink out of the tree stays a symlink"
diff -r --no-dereference "$WORK/src" "$IN/run" >/dev/null ||
  fail "file contents: $(diff -r --no-dereference "$WORK/src" "$IN/run" 2>&1 | head -3)"
pass "files read back identical"
