# Symbolic links on a posix backend through a real mount: `cp -a` and
# `tar -x` of a tree with relative symlinks (to files, to directories,
# dangling, absolute, climbing out of the tree) give the same tree, which
# the backend then holds as real symlinks; it stays identical after
# `hsmctl release`, after a remount with an empty cache and after a remount
# with a fresh catalog that lists the backend again. Symlinks on the backend
# are listed, never followed; hard links are EPERM; fallocate is EOPNOTSUPP.
source "$(dirname "$0")/lib.sh"

ROOT=$WORK/vault
mkdir -p "$ROOT/incoming"
# One the backend already holds, pointing out of the backend root.
ln -s /etc "$ROOT/incoming/outside"

# The source tree: files, a directory, and every kind of symlink.
SRC=$WORK/src
mkdir -p "$SRC/sub/deeper"
echo "alpha" >"$SRC/a.txt"
head -c 100000 /dev/urandom >"$SRC/sub/b.dat"
echo "gamma" >"$SRC/sub/deeper/c.txt"
ln -s a.txt "$SRC/to_file"
ln -s sub "$SRC/to_dir"
ln -s ../a.txt "$SRC/sub/up"
ln -s deeper/c.txt "$SRC/sub/down"
ln -s nowhere/missing "$SRC/dangling"
ln -s /etc/hostname "$SRC/absolute"
ln -s ../../../../../../etc "$SRC/sub/climb"
ln -s "name with spaces -> arrow" "$SRC/odd"
touch -h -d '2021-03-04 05:06:07' "$SRC/to_file" "$SRC/sub/up" "$SRC/dangling"
touch -d '2020-01-02 03:04:05' "$SRC/a.txt"
(cd "$WORK" && tar -cf src.tar src)

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
settle = "1s"
[[backend]]
name = "vault"
type = "posix"
root = "$ROOT"
writable = ["incoming"]
TOML
}
CONF=$WORK/hsmfs.toml
write_conf "$CONF" "$WORK/catalog.db" "$WORK/cache"
MNT=$WORK/mnt
mount_bg "$CONF" "$MNT"
IN=$MNT/vault/incoming

# wait_backend DIR SECONDS: until the backend holds DIR as in $SRC (the
# archive jobs of every file and symlink have run).
wait_backend() {
  local i want
  want=$(link_listing "$SRC")
  for i in $(seq 1 $(($2 * 10))); do
    [ -d "$ROOT/incoming/$1" ] && [ "$(link_listing "$ROOT/incoming/$1")" == "$want" ] && return 0
    sleep 0.1
  done
  fail "the backend does not hold incoming/$1 as the source within $2 s:$(diff <(echo "$want") <(link_listing "$ROOT/incoming/$1" 2>&1))"
}

# a) cp -a: the same tree at once, and on the backend as real symlinks.
cp -a "$SRC" "$IN/tree" || fail "cp -a of a tree with symlinks"
same_tree "$SRC" "$IN/tree" "cp -a gives an identical tree"
assert_eq "$(readlink "$IN/tree/sub/up")" "../a.txt" "readlink of a relative symlink"
assert_eq "$(stat -c '%F %s %a' "$IN/tree/dangling")" "symbolic link 15 777" \
  "lstat: a symlink, size = target length, mode 777"
assert_eq "$(cat "$IN/tree/to_dir/deeper/c.txt")" "gamma" "the kernel follows a symlink to a directory"
[ -L "$IN/tree/dangling" ] && [ ! -e "$IN/tree/dangling" ] || fail "a dangling symlink stays dangling"
wait_backend tree 60
[ "$(readlink "$ROOT/incoming/tree/sub/climb")" == "../../../../../../etc" ] ||
  fail "the backend holds the symlink's target verbatim"
pass "the backend holds real symlinks with the same targets and mtimes"

out=$("$BIN/hsmctl" -c "$CONF" ls vault/incoming/tree/sub/up) || fail "hsmctl ls of a symlink"
case $out in *"vault/incoming/tree/sub/up -> ../a.txt"*) pass "hsmctl ls shows the target" ;;
  *) fail "hsmctl ls: $out" ;; esac

# b) tar -x.
(cd "$IN" && tar -xf "$WORK/src.tar" && mv src untar) || fail "tar -x of a tarball with symlinks"
same_tree "$SRC" "$IN/untar" "tar -x gives an identical tree"
wait_backend untar 60

# b2) rsync -a; a second run finds every symlink up to date (target and time).
rsync -a "$SRC/" "$IN/rsynced/" || fail "rsync -a of a tree with symlinks"
same_tree "$SRC" "$IN/rsynced" "rsync -a gives an identical tree"
again=$(rsync -ai "$SRC/" "$IN/rsynced/") || fail "second rsync -a"
if grep -e ' -> ' <<<"$again"; then fail "a second rsync -a changed symlinks"; fi
pass "a second rsync -a changes no symlink"

# c) A symlink the backend held before: listed as one, never followed.
assert_eq "$(stat -c %F "$IN/outside")" "symbolic link" "a backend symlink is listed as a symlink"
assert_eq "$(readlink "$IN/outside")" "/etc" "with its target"
[ -z "$(find "$MNT/vault" -name passwd)" ] || fail "hsmfs followed a symlink out of the backend"
pass "nothing below a symlink out of the backend root is in the mount"

# d) Hard links are EPERM; fallocate is not supported.
out=$(ln "$IN/tree/a.txt" "$IN/tree/hard" 2>&1) && fail "ln (hard link) succeeded"
case $out in *"Operation not permitted"*) pass "a hard link is EPERM" ;; *) fail "ln: $out" ;; esac
out=$(fallocate -l 4096 "$IN/tree/a.txt" 2>&1) && fail "fallocate succeeded"
case $out in *"Operation not supported"*) pass "fallocate is EOPNOTSUPP" ;; *) fail "fallocate: $out" ;; esac

# e) After hsmctl release (every archived file leaves the cache).
"$BIN/hsmctl" -c "$CONF" release "vault/incoming/tree" || fail "hsmctl release"
assert_eq "$(getfattr --only-values -n user.hsm.state "$IN/tree/a.txt" 2>/dev/null)" "offline" \
  "released files are offline"
same_tree "$SRC" "$IN/tree" "identical after hsmctl release"

# f) A remount with an empty cache (same catalog).
fusermount3 -u "$MNT" || fail "unmount"
wait_unmounted "$MNT"
CONF2=$WORK/hsmfs2.toml
write_conf "$CONF2" "$WORK/catalog.db" "$WORK/cache2"
mount_bg "$CONF2" "$MNT"
same_tree "$SRC" "$IN/tree" "identical after a remount with an empty cache"

# g) A fresh catalog and cache: everything comes from listing the backend.
fusermount3 -u "$MNT" || fail "unmount"
wait_unmounted "$MNT"
CONF3=$WORK/hsmfs3.toml
write_conf "$CONF3" "$WORK/catalog3.db" "$WORK/cache3"
mount_bg "$CONF3" "$MNT"
same_tree "$SRC" "$IN/tree" "identical with a fresh catalog that lists the backend"
same_tree "$SRC" "$IN/untar" "the untarred tree too"
assert_eq "$(readlink "$IN/outside")" "/etc" "the backend's own symlink after relisting"
