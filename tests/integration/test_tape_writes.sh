#!/bin/bash
# Writes into a tape backend through a real mount: a virtual library with one
# active tape, `writable = ["incoming"]`, small unit_quiet and settle. cp -r of
# 50 files (some empty, nested) into MOUNT/tape/incoming becomes batch
# unit(s) on the active tape: every file turns dual with a tape location,
# hsmtape shows the units, and after hsmctl release every file read back
# through the mount (from tape) has its source's md5, also after a remount.
# mkdir, mv and rm (allow_delete) change only the catalog, and survive
# listings and a remount; a write outside incoming is EROFS.
source "$(dirname "$0")/lib.sh"
cd "$WORK"
T() { "$BIN/hsmtape" -c "$WORK/tape.conf" "$@" </dev/null; }
hsmctl() { "$BIN/hsmctl" -c "$CONF" "$@"; }
xattr() { getfattr --absolute-names --only-values -n "user.hsm.$1" "$2" 2>/dev/null || true; }

# wait_all STATE DIR SECONDS: until every file below DIR is in STATE.
wait_all() {
  /usr/bin/python3 - "$@" <<'PY' || fail "files below $2 did not all become $1 within $3 s"
import os, sys, time
want, root, limit = sys.argv[1], sys.argv[2], float(sys.argv[3])
deadline = time.monotonic() + limit
while True:
    states = {}
    for dp, dns, fns in os.walk(root):
        for f in fns:
            p = os.path.join(dp, f)
            try:
                states[p] = os.getxattr(p, "user.hsm.state").decode()
            except OSError as e:
                states[p] = "error " + e.strerror
    bad = {p: s for p, s in states.items() if s != want}
    if not bad:
        sys.exit(0)
    if time.monotonic() > deadline:
        for p, s in sorted(bad.items())[:10]:
            print(f"  not {want}: {p}: {s}", file=sys.stderr)
        sys.exit(1)
    time.sleep(0.25)
PY
}
# md5_listing DIR: "md5  path" of every file below DIR, read by 16 parallel readers.
md5_listing() {
  (cd "$1" && find . -type f -printf '%P\0' | xargs -0r -P 16 -n 4 md5sum -- | LC_ALL=C sort -k2)
}

# --- 50 files, about 4 MiB, 5 of them empty, three levels deep
mkdir -p src
/usr/bin/python3 - src <<'PY'
import os, random, sys
random.seed(5)
for i in range(50):
    d = os.path.join(sys.argv[1], ["", "a", "a/b", "c", "a/b/d"][i % 5])
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"f{i:02d}.dat"), "wb") as f:
        f.write(b"" if i % 10 == 3 else os.urandom(random.randint(1, 160 * 1024)))
PY

# --- a library with one active tape, in the mount's catalog
CONF=$WORK/hsmfs.toml
cat >tape.conf <<EOF
[default]
database_file = catalog.db
tape_device = vtl:library
block_size = 64KiB
EOF
T vtl_create --slots 4 --drives 2 --capacity 1GiB >/dev/null
T open_tape T00001 --activate >/dev/null || fail "open_tape T00001"
config_head "$CONF"
cat >>"$CONF" <<TOML
[archive]
settle = "500ms"
verify = "readback"
[[backend]]
name = "tape"
type = "tape"
library = "vtl:library"
writable = ["incoming"]
allow_delete = true
unit_quiet = "1s"
list_ttl = "3s"
TOML
"$BIN/hsmfs" -c "$CONF" --print-config | grep -q 'archive_workers = 64' ||
  fail "a tape backend's archive_workers is not 64"
MNT=$WORK/mnt
mount_bg "$CONF" "$MNT"

# --- EROFS outside incoming; cp -r into it
rc=0; out=$(echo x 2>&1 >"$MNT/tape/elsewhere.txt") || rc=$?
[ $rc -ne 0 ] && echo "$out" | grep -q "Read-only file system" || fail "a write outside incoming: '$out'"
pass "a write outside incoming is EROFS"
mkdir "$MNT/tape/incoming" || fail "mkdir of the writable directory"
start=$(date +%s%N)
cp -r src "$MNT/tape/incoming/run1" || fail "cp -r into incoming"
wait_all dual "$MNT/tape/incoming/run1" 40
ms=$((($(date +%s%N) - start) / 1000000))
pass "cp -r of 50 files: all dual after ${ms} ms"
loc=$(xattr location "$MNT/tape/incoming/run1/a/b/f02.dat")
echo "$loc" | grep -Eq "^tape T00001 file [0-9]+ block [0-9]+$" || fail "user.hsm.location: '$loc'"
[ "$(xattr checksum "$MNT/tape/incoming/run1/a/b/f02.dat")" == "md5:$(md5sum <src/a/b/f02.dat | cut -d' ' -f1)" ] ||
  fail "user.hsm.checksum"
pass "user.hsm.location: $loc"

# --- hsmtape sees the batch units
T tapes | grep -Eq '^T00001 .* yes +[1-9]' || fail "hsmtape tapes: $(T tapes)"
T tape_detail T00001 >detail.txt || fail "tape_detail"
units=$(grep -c '\[batch\]' detail.txt)
[ "$units" -ge 1 ] && ! grep -q writing detail.txt || fail "tape_detail: $(cat detail.txt)"
grep -q "confirmed .*/incoming/run1.* \[batch\]" detail.txt || fail "tape_detail: $(cat detail.txt)"
[ "$(T where_is run1/a/b/f02.dat | grep -c "tape T00001 file")" -eq 1 ] ||
  fail "where_is: $(T where_is run1/a/b/f02.dat)"
T dump_manifest manifests >/dev/null || fail "dump_manifest"
[ "$(cat manifests/T00001_file*.md5 | wc -l)" -eq 50 ] || fail "dump_manifest: $(ls manifests)"
pass "hsmtape: $units batch unit(s) of 50 files on T00001, confirmed; where_is and dump_manifest"

# --- recalls from tape after release
hsmctl release "$MNT/tape/incoming/run1" >/dev/null || fail "hsmctl release"
wait_all offline "$MNT/tape/incoming/run1" 10
md5_listing src >want.md5
md5_listing "$MNT/tape/incoming/run1" >got.md5
diff want.md5 got.md5 >/dev/null || fail "recalled data differs: $(diff want.md5 got.md5 | head -3)"
pass "after release, all 50 files read back from tape with their md5"

# --- mkdir, mv, rm
# Fresh listings first, so that none runs during the renames: a listing that
# races a rename is the fs layer's business (it settles at the next listing),
# not what this part checks.
ls -R "$MNT/tape/incoming" >/dev/null
sleep 0.5
mkdir "$MNT/tape/incoming/empty" || fail "mkdir"
mv "$MNT/tape/incoming/run1/c" "$MNT/tape/incoming/run1/c2" || fail "mv of a directory"
mv "$MNT/tape/incoming/run1/f00.dat" "$MNT/tape/incoming/run1/a/moved.dat" || fail "mv of a file"
rm "$MNT/tape/incoming/run1/f05.dat" || fail "rm with allow_delete"
for i in $(seq 1 100); do grep -q "archived tape/incoming/empty " hsmfs.log && break; sleep 0.1; done
grep -q "archived tape/incoming/empty " hsmfs.log || fail "the empty directory was not archived"
sleep 3.5  # then listings (list_ttl = 3s) of what is now on tape
ls -R "$MNT/tape/incoming" >/dev/null || fail "ls -R after mkdir, mv and rm"
sleep 0.5
ls -R "$MNT/tape/incoming" >/dev/null || fail "ls -R after mkdir, mv and rm"
sleep 0.5
[ -d "$MNT/tape/incoming/empty" ] || fail "the empty directory vanished"
[ ! -e "$MNT/tape/incoming/run1/c" ] && [ -d "$MNT/tape/incoming/run1/c2" ] || fail "mv of c"
[ ! -e "$MNT/tape/incoming/run1/f05.dat" ] || fail "rm f05.dat"
cmp "$MNT/tape/incoming/run1/a/moved.dat" src/f00.dat || fail "moved.dat"
pass "mkdir, mv and rm show and survive listings"

# --- a second version of a file
head -c 70000 /dev/urandom >v2.dat
cp v2.dat "$MNT/tape/incoming/run1/a/f01.dat" || fail "rewrite f01.dat"
sleep 1
wait_all dual "$MNT/tape/incoming/run1" 30
loc2=$(xattr location "$MNT/tape/incoming/run1/a/f01.dat")
[ "$loc2" != "$(xattr location "$MNT/tape/incoming/run1/a/b/f02.dat")" ] || fail "a new version went nowhere new"
pass "a rewrite is archived as a new unit: $loc2"

# --- remount with an empty cache: everything from tape
hsmctl release "$MNT/tape/incoming" >/dev/null || fail "hsmctl release"
fusermount3 -u "$MNT"
wait_unmounted "$MNT"
rm -rf "$WORK/cache"
mount_bg "$CONF" "$MNT"
# What the tree should be: src with the same mv, rm and rewrite.
cp -r src expect
mv expect/c expect/c2
mv expect/f00.dat expect/a/moved.dat
rm expect/f05.dat
cp v2.dat expect/a/f01.dat
md5_listing expect >want2.md5
md5_listing "$MNT/tape/incoming/run1" >got2.md5
diff want2.md5 got2.md5 >/dev/null || fail "after remount: $(diff want2.md5 got2.md5 | head -5)"
# Listings of the tape tree must agree with what was done.
ls -R "$MNT/tape/incoming" >/dev/null || fail "ls -R after the remount"
sleep 3.5
ls -R "$MNT/tape/incoming" >/dev/null || fail "ls -R after the remount"
sleep 0.5
[ -d "$MNT/tape/incoming/empty" ] || fail "the empty directory is gone after a remount"
[ ! -e "$MNT/tape/incoming/run1/f05.dat" ] && [ ! -e "$MNT/tape/incoming/run1/c" ] &&
  [ ! -e "$MNT/tape/incoming/run1/f00.dat" ] || fail "a removed or renamed name came back: $(ls "$MNT/tape/incoming/run1")"
T where_is run1/f05.dat | grep -q "removed through the mount" || fail "where_is f05.dat: $(T where_is run1/f05.dat)"
[ -n "$(find "$MNT/tape/.by-tape/T00001" -name f05.dat)" ] || fail ".by-tape lost the removed file"
pass "after a remount with an empty cache: renames, removal, the new version and the empty directory hold; 49 files match"
fusermount3 -u "$MNT"
wait_unmounted "$MNT"

# --- rebuild_catalog restores the batch units from the tape alone
T tape_detail T00001 >final.txt || fail "tape_detail"
sed 's/^database_file = .*/database_file = rebuilt.db/' tape.conf >rebuilt.conf
"$BIN/hsmtape" -c rebuilt.conf rebuild_catalog T00001 </dev/null >/dev/null || fail "rebuild_catalog"
"$BIN/hsmtape" -c rebuilt.conf tape_detail T00001 </dev/null >rebuilt.txt || fail "tape_detail"
[ "$(grep -c 'archived .*/incoming/run1.* \[batch\]' rebuilt.txt)" -eq "$(grep -c '\[batch\]' final.txt)" ] ||
  fail "rebuilt: $(cat rebuilt.txt)"
"$BIN/hsmtape" -c rebuilt.conf where_is run1/a/b/f02.dat </dev/null | grep -q "tape T00001 file 1 block" ||
  fail "where_is in the rebuilt catalog"
pass "rebuild_catalog restores the batch units from their manifests"
echo "PASS"
