#!/bin/bash
# Symlinks into a tape backend through a real mount: `cp -a` of a small tree
# with relative, dangling and absolute symlinks is archived as one batch unit
# (tar symlink members); the tree stays identical after hsmctl release, after
# a remount with an empty cache, and on a mount of a catalog rebuilt from the
# tape alone (hsmtape rebuild_catalog). dump_manifest leaves the links out.
source "$(dirname "$0")/lib.sh"
cd "$WORK"
T() { "$BIN/hsmtape" -c "$WORK/tape.conf" "$@" </dev/null; }

mkdir -p src/sub
echo "alpha" >src/a.txt
head -c 200000 /dev/urandom >src/sub/b.dat
ln -s a.txt src/to_file
ln -s sub src/to_dir
ln -s ../a.txt src/sub/up
ln -s nowhere/missing src/dangling
ln -s /etc/hostname src/absolute
touch -h -d '2021-03-04 05:06:07' src/to_file src/dangling

cat >tape.conf <<EOF
[default]
database_file = catalog.db
tape_device = vtl:library
block_size = 64KiB
EOF
T vtl_create --slots 4 --drives 2 --capacity 1GiB >/dev/null
T open_tape T00001 --activate >/dev/null || fail "open_tape T00001"

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
[[backend]]
name = "tape"
type = "tape"
library = "vtl:library"
writable = ["incoming"]
unit_quiet = "1s"
TOML
}
CONF=$WORK/hsmfs.toml
write_conf "$CONF" "$WORK/catalog.db" "$WORK/cache"
MNT=$WORK/mnt
mount_bg "$CONF" "$MNT"
IN=$MNT/tape/incoming

mkdir "$IN" || fail "mkdir incoming"
cp -a src "$IN/run" || fail "cp -a of a tree with symlinks into a tape backend"
same_tree src "$IN/run" "cp -a gives an identical tree"
# Archived: the files dual, and one unit on T00001 whose members include the links.
for i in $(seq 1 400); do
  [ "$(getfattr --only-values -n user.hsm.state "$IN/run/sub/b.dat" 2>/dev/null)" == "dual" ] &&
    [ "$(getfattr --only-values -n user.hsm.state "$IN/run/a.txt" 2>/dev/null)" == "dual" ] &&
    [ "$(sqlite3 catalog.db "SELECT count(*) FROM target_files WHERE link_target IS NOT NULL")" == "5" ] &&
    break
  sleep 0.1
done
assert_eq "$(sqlite3 catalog.db "SELECT link_target FROM target_files WHERE rel_path LIKE '%sub/up'")" \
  "../a.txt" "the tape catalog records the symlink's target"
assert_eq "$("$BIN/hsmctl" -c "$CONF" ls tape/incoming/run/dangling | tail -1 | sed 's/.* -> //')" \
  "nowhere/missing" "hsmctl ls shows a symlink archived to tape"

"$BIN/hsmctl" -c "$CONF" release tape/incoming/run || fail "hsmctl release"
same_tree src "$IN/run" "identical after hsmctl release (files recalled from tape)"

fusermount3 -u "$MNT" || fail "unmount"
wait_unmounted "$MNT"
write_conf "$WORK/hsmfs2.toml" "$WORK/catalog.db" "$WORK/cache2"
mount_bg "$WORK/hsmfs2.toml" "$MNT"
same_tree src "$IN/run" "identical after a remount with an empty cache"
fusermount3 -u "$MNT" || fail "unmount"
wait_unmounted "$MNT"

# The tape alone: a catalog rebuilt from its manifests.
T dump_manifest manifests >/dev/null || fail "dump_manifest"
if grep -h -e 'to_file' -e 'dangling' manifests/*.md5; then fail "dump_manifest lists symlinks"; fi
pass "dump_manifest leaves symlink members out"
sed 's/^database_file = .*/database_file = rebuilt.db/' tape.conf >rebuilt.conf
"$BIN/hsmtape" -c rebuilt.conf rebuild_catalog T00001 >/dev/null || fail "rebuild_catalog"
write_conf "$WORK/hsmfs3.toml" "$WORK/rebuilt.db" "$WORK/cache3"
mount_bg "$WORK/hsmfs3.toml" "$MNT"
same_tree src "$IN/run" "identical on a catalog rebuilt from the tape"
