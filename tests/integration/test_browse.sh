# Browsing a posix backend through a real mount: the tree, sizes, mtimes,
# xattrs, du, and hsmctl ls all agree with the backend.
source "$(dirname "$0")/lib.sh"

ROOT=$WORK/vault
mkdir -p "$ROOT/act6/season4/maps" "$ROOT/empty dir" "$ROOT/ünïcode"
head -c 123457 /dev/urandom >"$ROOT/act6/season4/tod_001.dat"
head -c 1 /dev/urandom >"$ROOT/act6/season4/tod_002.dat"
: >"$ROOT/act6/season4/empty.dat"
head -c 3000000 /dev/urandom >"$ROOT/act6/season4/maps/map f090.fits"
echo "read me" >"$ROOT/ünïcode/naïve.txt"
touch -d '2019-03-04 05:06:07' "$ROOT/act6/season4/tod_001.dat"
touch -d '2001-01-01 00:00:00' "$ROOT/act6"
ln -s tod_001.dat "$ROOT/act6/season4/link"  # listed as a symlink, never followed
write_config "$WORK/hsmfs.toml" "$ROOT"

MNT=$WORK/mnt
mount_bg "$WORK/hsmfs.toml" "$MNT"

assert_eq "$(ls "$MNT")" "vault" "the root shows one directory per backend"
assert_eq "$(file_listing "$MNT/vault")" "$(file_listing "$ROOT")" \
  "names, types, sizes and mtimes match the backend (symlinks too)"
assert_eq "$(readlink "$MNT/vault/act6/season4/link")" "tod_001.dat" "a backend symlink's target"

ls -lR "$MNT" >/dev/null || fail "ls -lR"
pass "ls -lR works"

assert_eq "$(getfattr --absolute-names --only-values -n user.hsm.state "$MNT/vault/act6/season4/tod_001.dat")" \
  "offline" "user.hsm.state"
assert_eq "$(getfattr --absolute-names --only-values -n user.hsm.backend "$MNT/vault/act6/season4/tod_001.dat")" \
  "vault" "user.hsm.backend"
assert_eq "$(getfattr --absolute-names --only-values -n user.hsm.location "$MNT/vault/ünïcode/naïve.txt")" \
  "$ROOT/ünïcode/naïve.txt" "user.hsm.location is the backend path"
getfattr --absolute-names -d -m - "$MNT/vault/act6/season4/tod_001.dat" | grep -q 'user.hsm.state="offline"' ||
  fail "getfattr --absolute-names -d lists user.hsm.state"
pass "listxattr"
if getfattr --absolute-names -n user.hsm.nosuch "$MNT/vault/act6/season4/tod_001.dat" 2>"$WORK/err"; then
  fail "an unknown xattr must not exist"
fi
grep -q "No such attribute" "$WORK/err" || fail "unknown xattr gives ENODATA: $(cat "$WORK/err")"
pass "unknown xattr is ENODATA"

assert_eq "$(stat -c %b "$MNT/vault/act6/season4/maps/map f090.fits")" "0" "st_blocks of offline file"
assert_eq "$(du -s "$MNT/vault" | cut -f1)" "0" "du of an offline tree"
assert_eq "$(stat -c %s "$MNT/vault/act6/season4/maps/map f090.fits")" "3000000" "st_size is real"
assert_eq "$(stat -c %i "$MNT/vault/act6")" "$(ls -id "$MNT/vault/act6" | cut -d' ' -f1)" \
  "stable inode numbers"

HSMCTL="$BIN/hsmctl -c $WORK/hsmfs.toml"
out=$($HSMCTL ls "$MNT/vault/act6/season4")
echo "$out" | grep -q '^OFL  *123457 .*vault/act6/season4/tod_001.dat$' || fail "hsmctl ls: $out"
echo "$out" | grep -q '^DIR .*vault/act6/season4/maps/$' || fail "hsmctl ls shows dirs: $out"
pass "hsmctl ls with a path inside the mount"
out=$($HSMCTL ls -R vault)
assert_eq "$(echo "$out" | grep -c '^OFL')" "5" "hsmctl ls -R counts every file"
$HSMCTL ls --json vault/act6/season4/tod_001.dat >"$WORK/ls.json"
/usr/bin/python3 - "$WORK/ls.json" <<'PY' || fail "hsmctl ls --json"
import json, sys
rows = json.load(open(sys.argv[1]))
assert len(rows) == 1, rows
r = rows[0]
assert r["path"] == "vault/act6/season4/tod_001.dat", r
assert r["state"] == "offline" and r["dmf"] == "OFL" and r["size"] == 123457, r
assert r["mtime"] == "2019-03-04T05:06:07Z", r
PY
pass "hsmctl ls --json"
if $HSMCTL ls vault/nope 2>"$WORK/err"; then fail "ls of a missing path must fail"; fi
grep -q "vault/nope" "$WORK/err" || fail "missing path named: $(cat "$WORK/err")"
pass "hsmctl ls of a missing path fails naming it"

df -h "$MNT" | grep -q hsmfs || fail "df shows the mount"
pass "statfs"

fusermount3 -u "$MNT"
wait_unmounted "$MNT"
for i in $(seq 1 100); do pgrep -f "hsmfs -c $WORK/hsmfs.toml" >/dev/null || break; sleep 0.05; done
pgrep -f "hsmfs -c $WORK/hsmfs.toml" >/dev/null && fail "the daemon did not exit after fusermount3 -u"
grep -q "unmounted" "$WORK/hsmfs.log" || fail "log records the clean unmount"
pass "fusermount3 -u stops the daemon cleanly"
