# Writing through a real mount: cp -r of a 1,000-file tree is archived with
# the right checksums, writes outside writable directories are EROFS, deleting
# archived data needs allow_delete, a mix of everyday commands leaves the same
# tree as on a local disk (and on the backend once archived), written files
# read back at once, and hsmctl fsck agrees at the end.
source "$(dirname "$0")/lib.sh"

ROOT=$WORK/vault   # writable = ["incoming"], allow_delete = false
LAB=$WORK/lab      # writable = ["work"], allow_delete = true (part c)
mkdir -p "$ROOT/readonly" "$ROOT/incoming_old" "$LAB"
echo "archived long ago" >"$ROOT/readonly/old.txt"
CONF=$WORK/hsmfs.toml
config_head "$CONF"
cat >>"$CONF" <<TOML
[archive]
settle = "1s"
checksum = "md5"
verify = "readback"
[[backend]]
name = "vault"
type = "posix"
root = "$ROOT"
writable = ["incoming"]
[[backend]]
name = "lab"
type = "posix"
root = "$LAB"
writable = ["work"]
allow_delete = true
TOML
HSMCTL="$BIN/hsmctl -c $CONF"
MNT=$WORK/mnt
mount_bg "$CONF" "$MNT"

xattr() { getfattr --absolute-names --only-values -n "user.hsm.$1" "$2" 2>/dev/null || true; }

# wait_all_dual DIR SECONDS: until every file below DIR (on the mount) is dual.
wait_all_dual() {
  /usr/bin/python3 - "$1" "$2" <<'PY' || fail "files below $1 did not all become dual within $2 s"
import os, sys, time
root, limit = sys.argv[1], float(sys.argv[2])
deadline = time.monotonic() + limit
while True:
    states = {}
    walk = os.walk(root) if os.path.isdir(root) else [(root, [], [""])]
    for dp, dns, fns in walk:
        for f in fns:
            p = os.path.join(dp, f) if f else dp
            try:
                states[p] = os.getxattr(p, "user.hsm.state").decode()
            except OSError as e:
                states[p] = "error " + e.strerror
    bad = {p: s for p, s in states.items() if s != "dual"}
    if not bad:
        print(f"  {len(states)} files dual below {root}")
        sys.exit(0)
    if time.monotonic() > deadline:
        for p, s in sorted(bad.items())[:20]:
            print(f"  not dual: {p}: {s}", file=sys.stderr)
        print(f"  {len(bad)} of {len(states)} files not dual", file=sys.stderr)
        sys.exit(1)
    time.sleep(1)
PY
}

# md5_listing DIR: "relative path  md5" of every file, sorted.
md5_listing() {
  (cd "$1" && find . -type f -printf '%P\0' | LC_ALL=C sort -z | xargs -0r md5sum --)
}

# snapshot DIR: path|type|size|mode|mtime|md5 for everything below DIR. An
# mtime within the last hour shows as "recent" (the two runs of the same
# commands happen seconds apart); older ones (tar, cp -p, touch -d) exactly.
# Directories show only their mode: their size and mtime are the file system's.
snapshot() {
  /usr/bin/python3 - "$1" <<'PY'
import hashlib, os, stat, sys, time
root = sys.argv[1]
now = time.time()
rows = []
for dp, dns, fns in os.walk(root):
    for n in dns + fns:
        p = os.path.join(dp, n)
        st = os.lstat(p)
        rel = os.path.relpath(p, root)
        mode = "%04o" % stat.S_IMODE(st.st_mode)
        if stat.S_ISDIR(st.st_mode):
            rows.append(f"{rel}|d|-|{mode}|-|-")
            continue
        with open(p, "rb") as fh:
            md5 = hashlib.md5(fh.read()).hexdigest()
        mtime = "recent" if abs(now - st.st_mtime) < 3600 else str(int(st.st_mtime))
        rows.append(f"{rel}|f|{st.st_size}|{mode}|{mtime}|{md5}")
print("\n".join(sorted(rows)))
PY
}

# --- a) cp -r of a 1,000-file tree; everything ends dual with the right md5.
SRC=$WORK/src
/usr/bin/python3 - "$SRC" <<'PY'
import os, random, sys
root = sys.argv[1]
rnd = random.Random(4242)
MiB = 1 << 20
sizes = [200 * MiB, 48 * MiB, 24 * MiB]            # the big ones
sizes += [0] * 12 + [1, 4095, 4096, 4097, MiB, MiB + 1]
while len(sizes) < 1000:
    r = rnd.random()
    if r < 0.35:
        sizes.append(rnd.randint(0, 4096))
    elif r < 0.85:
        sizes.append(rnd.randint(4096, 256 * 1024))
    else:
        sizes.append(rnd.randint(256 * 1024, 3 * MiB))
names = ["big/f200m.bin", "big/f48m.bin", "big/f24m.bin"]
for i in range(3, len(sizes)):
    d = "d%02d/s%d" % (i % 25, i % 4)
    name = "file %04d.dat" % i if i % 97 else "fïlé-%04d.dat" % i
    names.append(d + "/" + name)
pool = os.urandom(8 * MiB)
for name, size in zip(names, sizes):
    p = os.path.join(root, name)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "wb") as fh:
        left = size
        while left:
            # Random data, cheap to make: an 8 MiB pool at random offsets, plus
            # a unique prefix so that no two blocks are alike.
            n = min(left, 4 * MiB)
            off = rnd.randint(0, len(pool) - n)
            block = (b"%s %d " % (name.encode(), left) + pool[off:off + n])[:n]
            fh.write(block)
            left -= n
total = sum(sizes)
print(f"  source tree: {len(sizes)} files, {total / MiB:.0f} MiB")
PY
assert_eq "$(find "$SRC" -type f | wc -l)" "1000" "the source tree has 1,000 files"

mkdir "$MNT/vault/incoming" || fail "mkdir of the writable directory itself"
t0=$(date +%s)
cp -r "$SRC" "$MNT/vault/incoming/tree" || fail "cp -r into the writable directory"
t_cp=$(date +%s)
pass "cp -r of 1,000 files into vault/incoming ($((t_cp - t0)) s)"
assert_eq "$(md5_listing "$MNT/vault/incoming/tree")" "$(md5_listing "$SRC")" \
  "the mount reads back what was written, before archiving"
# Users watch the tree while it is archived: walk it until no job is active
# (and the 1 s settle time of the last file has surely passed).
for i in $(seq 1 1200); do
  find "$MNT/vault/incoming/tree" >/dev/null || fail "find while archiving"
  active=$($HSMCTL jobs --json | /usr/bin/python3 -c '
import json, sys
print(sum(1 for j in json.load(sys.stdin) if j["state"] in ("queued", "running")))')
  [ "$active" == 0 ] && [ "$(date +%s)" -ge $((t_cp + 3)) ] && break
  sleep 0.3
done
assert_eq "$active" "0" "the archive jobs finish ($(($(date +%s) - t0)) s after cp started)"
(cd "$SRC" && find . | LC_ALL=C sort) >"$WORK/names.src"
(cd "$MNT/vault/incoming/tree" && find . | LC_ALL=C sort) >"$WORK/names.mnt"
extra=$(LC_ALL=C comm -13 "$WORK/names.src" "$WORK/names.mnt")
missing=$(LC_ALL=C comm -23 "$WORK/names.src" "$WORK/names.mnt")
[ -z "$extra$missing" ] || fail "names in the mount that were not copied: [$extra]; copied but missing: [$missing]"
pass "the names in the mount are those copied: nothing else appeared while archiving"
wait_all_dual "$MNT/vault/incoming/tree" 300
pass "every file of the tree is dual ($(($(date +%s) - t0)) s after cp started)"
assert_eq "$(md5_listing "$ROOT/incoming/tree")" "$(md5_listing "$SRC")" \
  "the backend copies have the md5 of the source files"
assert_eq "$(file_listing "$ROOT/incoming/tree" | grep '|f|')" \
  "$(file_listing "$MNT/vault/incoming/tree" | grep '|f|')" \
  "the backend copies have the sizes and mtimes the mount shows"
for f in big/f200m.bin big/f48m.bin "d00/s0/file 0100.dat" \
  "d22/s1/fïlé-0097.dat" "d00/s0/file 0500.dat" "$(cd "$SRC" && find . -type f -size 0 -printf '%P\n' | head -1)"; do
  want="md5:$(md5sum <"$SRC/$f" | cut -d' ' -f1)"
  [ "$(xattr checksum "$MNT/vault/incoming/tree/$f")" == "$want" ] ||
    fail "user.hsm.checksum of $f: expected $want, got '$(xattr checksum "$MNT/vault/incoming/tree/$f")'"
done
pass "user.hsm.checksum is the md5 of the data (200 MiB, 48 MiB, small, unicode and empty files)"
$HSMCTL ls -R --json vault/incoming/tree >"$WORK/ls.json"
/usr/bin/python3 - "$WORK/ls.json" "$SRC" <<'PY' || fail "hsmctl ls --json disagrees with the source tree"
import hashlib, json, os, sys
rows = [r for r in json.load(open(sys.argv[1])) if r["type"] == "file"]
assert len(rows) == 1000, len(rows)
for r in rows:
    rel = r["path"][len("vault/incoming/tree/"):]
    with open(os.path.join(sys.argv[2], rel), "rb") as fh:
        want = "md5:" + hashlib.md5(fh.read()).hexdigest()
    assert r["state"] == "dual" and r["dmf"] == "DUL", r
    assert r.get("checksum") == want, (r, want)
    assert r["size"] == os.path.getsize(os.path.join(sys.argv[2], rel)), r
PY
pass "hsmctl ls --json: all 1,000 files DUL with the source's md5 and size"
n=$(grep -c '^.*archived vault/incoming/tree/.* md5:' "$WORK/hsmfs.log" || true)
[ "$n" -ge 1000 ] || fail "the log has $n 'archived vault/incoming/tree/...' lines, expected 1000"
pass "the log records every archived file"

# --- b) EROFS outside writable directories; EPERM for archived data.
erofs() {  # WHAT COMMAND...: the command must fail with "Read-only file system"
  local what=$1
  shift
  if "$@" 2>"$WORK/err"; then fail "$what succeeded outside a writable directory"; fi
  grep -q "Read-only file system" "$WORK/err" || fail "$what: expected EROFS, got: $(cat "$WORK/err")"
}
erofs "touch at the backend root" touch "$MNT/vault/x"
erofs "mkdir at the backend root" mkdir "$MNT/vault/newdir"
erofs "cp into a read-only directory" cp "$SRC/d00/s1/file 0025.dat" "$MNT/vault/readonly/"
erofs "touch in a directory whose name only starts with incoming" touch "$MNT/vault/incoming_old/x"
erofs "mkdir at the mount root" mkdir "$MNT/newbackend"
erofs "writing an existing read-only file" sh -c "echo more >>'$MNT/vault/readonly/old.txt'"
erofs "truncating an existing read-only file" truncate -s 0 "$MNT/vault/readonly/old.txt"
erofs "chmod of a read-only file" chmod 600 "$MNT/vault/readonly/old.txt"
erofs "touch -d of a read-only file" touch -d '2001-01-01' "$MNT/vault/readonly/old.txt"
erofs "unlink of a read-only file" rm -f "$MNT/vault/readonly/old.txt"
erofs "mv of a written file into a read-only directory" \
  mv "$MNT/vault/incoming/tree/d01/s2/file 0026.dat" "$MNT/vault/readonly/"
erofs "mv of a read-only file into the writable directory" \
  mv "$MNT/vault/readonly/old.txt" "$MNT/vault/incoming/"
pass "EROFS for create, mkdir, write, truncate, chmod, utimens, unlink and mv outside writable directories"
assert_eq "$(cat "$ROOT/readonly/old.txt")" "archived long ago" "the read-only file is untouched"
assert_eq "$(ls "$ROOT/readonly")" "old.txt" "nothing was created in the read-only directory"
[ -f "$MNT/vault/incoming/tree/d01/s2/file 0026.dat" ] || fail "the file that failed to move is gone"
pass "a refused mv leaves the file where it was"

victim="$MNT/vault/incoming/tree/d02/s3/file 0027.dat"
if rm "$victim" 2>"$WORK/err"; then fail "rm of an archived file succeeded without allow_delete"; fi
grep -q "Operation not permitted" "$WORK/err" || fail "rm of an archived file: expected EPERM, got: $(cat "$WORK/err")"
pass "rm of a dual file without allow_delete is EPERM"
[ -f "$victim" ] || fail "the file is gone from the mount after a refused rm"
assert_eq "$(md5sum <"$ROOT/incoming/tree/d02/s3/file 0027.dat")" "$(md5sum <"$SRC/d02/s3/file 0027.dat")" \
  "after a refused rm the backend copy is still there, intact"
if rm -r "$MNT/vault/incoming/tree/d02" 2>/dev/null; then fail "rm -r of archived files succeeded"; fi
[ "$(find "$ROOT/incoming/tree/d02" -type f | wc -l)" == "$(find "$SRC/d02" -type f | wc -l)" ] ||
  fail "rm -r removed archived files from the backend"
pass "rm -r of an archived directory removes nothing from the backend"
echo scratch >"$MNT/vault/incoming/scratch.txt"
rm "$MNT/vault/incoming/scratch.txt" || fail "rm of a file that was never archived"
[ ! -e "$MNT/vault/incoming/scratch.txt" ] || fail "the removed file is still there"
mkdir "$MNT/vault/incoming/emptydir" && rmdir "$MNT/vault/incoming/emptydir" ||
  fail "mkdir and rmdir in a writable directory"
pass "files never archived can be deleted; empty directories removed"

# --- c) everyday commands on the mount (backend "lab", allow_delete = true)
# give the same tree as on a local disk. The first half runs, then everything
# is archived, then the second half moves, removes, chmods, overwrites and
# re-extracts archived files: rm needs allow_delete for that, hence "lab".
CSRC=$WORK/csrc
mkdir -p "$CSRC/pkg/sub/deeper" "$CSRC/pkg/empty"
head -c 70000 /dev/urandom >"$CSRC/pkg/a.bin"
head -c 1 /dev/urandom >"$CSRC/pkg/sub/b.bin"
: >"$CSRC/pkg/sub/empty.txt"
head -c 3000000 /dev/urandom >"$CSRC/pkg/sub/deeper/c.bin"
printf 'hello\n' >"$CSRC/pkg/sub/deeper/hello.txt"
chmod 640 "$CSRC/pkg/a.bin"
chmod 700 "$CSRC/pkg/sub/deeper"
touch -d '2018-06-01 10:00:00' "$CSRC/pkg/a.bin" "$CSRC/pkg/sub/b.bin" "$CSRC/pkg/sub/empty.txt"
touch -d '2017-01-02 03:04:05' "$CSRC/pkg/sub/deeper/c.bin" "$CSRC/pkg/sub/deeper/hello.txt"
tar -cf "$WORK/pkg.tar" -C "$CSRC" pkg
head -c 123456 /dev/urandom >"$CSRC/notes.txt"
touch -d '2015-05-05 05:05:05' "$CSRC/notes.txt"
chmod 604 "$CSRC/notes.txt"

ops_first() {  # DIR
  local d=$1
  mkdir -p "$d/proj/raw/2019/jan" "$d/proj/raw/2020" "$d/proj/tmp/x"
  tar -xf "$WORK/pkg.tar" -C "$d/proj"
  cp -p "$CSRC/notes.txt" "$d/proj/raw/2019/notes.txt"
  cp "$CSRC/notes.txt" "$d/proj/raw/2019/jan/notes-copy.txt"
  cp -p -r "$CSRC/pkg/sub" "$d/proj/raw/2020/sub-copy"
  printf 'line 1\n' >"$d/proj/log.txt"
  printf 'line 2\n' >>"$d/proj/log.txt"
  head -c 5000 "$CSRC/pkg/a.bin" >"$d/proj/tmp/x/part.bin"
  chmod 600 "$d/proj/raw/2019/jan/notes-copy.txt"
  touch -d '2011-11-11 11:11:11' "$d/proj/log.txt"
}
ops_second() {  # DIR: runs on archived files
  local d=$1
  mv "$d/proj/raw/2019/notes.txt" "$d/proj/raw/2020/notes-moved.txt"
  mv "$d/proj/raw/2019" "$d/proj/old-2019"
  mv "$d/proj/pkg/sub/deeper" "$d/proj/deeper-moved"
  mv "$d/proj/raw/2020/sub-copy/b.bin" "$d/proj/raw/2020/sub-copy/b-renamed.bin"
  rm "$d/proj/pkg/a.bin"
  rm -r "$d/proj/tmp"
  rm -r "$d/proj/raw/2020/sub-copy/deeper"
  tar -xf "$WORK/pkg.tar" -C "$d/proj/old-2019"
  tar -xf "$WORK/pkg.tar" -C "$d/proj"  # over what is left of the first one
  mkdir -p "$d/proj/new/a/b/c"
  cp -p "$CSRC/pkg/sub/deeper/c.bin" "$d/proj/new/a/b/c/"
  cp -p "$CSRC/notes.txt" "$d/proj/deeper-moved/hello.txt"  # overwrites an archived file
  printf 'line 3\n' >>"$d/proj/log.txt"
  chmod 751 "$d/proj/new/a"
  chmod 444 "$d/proj/old-2019/jan/notes-copy.txt"
  chmod 640 "$d/proj/raw/2020/notes-moved.txt"
  touch -d '2012-12-12 12:12:12' "$d/proj/log.txt" "$d/proj/new/a/b/c/c.bin"
  touch -d '2013-03-03 03:03:03' "$d/proj/raw/2020/notes-moved.txt"
  mv "$d/proj/new/a/b" "$d/proj/b-up"
  rmdir "$d/proj/new/a"
  chmod 750 "$d/proj/raw"  # an archived directory: the backend's follows
}
# run_ops FUNCTION DIR: in a shell of its own, so that set -e stops at the
# first failing command (it would not inside "... || fail").
run_ops() {
  CSRC=$CSRC WORK=$WORK bash -euo pipefail -c "$(declare -f "$1"); $1 \"\$1\"" run_ops "$2"
}
LOCAL=$WORK/local
mkdir -p "$LOCAL/work" "$MNT/lab/work" || fail "mkdir of the writable directory itself"
run_ops ops_first "$LOCAL/work" || fail "the first commands failed on the local disk"
run_ops ops_first "$MNT/lab/work" || fail "the first commands failed on the mount"
assert_eq "$(snapshot "$MNT/lab/work")" "$(snapshot "$LOCAL/work")" \
  "after mkdir -p, tar -x, cp, cp -p, cp -r, >>, chmod, touch -d: the mount matches a local disk"
wait_all_dual "$MNT/lab/work" 300
run_ops ops_second "$LOCAL/work" || fail "the second commands failed on the local disk"
run_ops ops_second "$MNT/lab/work" || fail "the second commands failed on the mount"
assert_eq "$(snapshot "$MNT/lab/work")" "$(snapshot "$LOCAL/work")" \
  "after mv, rm, rm -r, tar -x, cp -p over, chmod, touch -d on archived files: the mount matches"
wait_all_dual "$MNT/lab/work" 300
assert_eq "$(snapshot "$MNT/lab/work")" "$(snapshot "$LOCAL/work")" "the mount still matches once archived"
assert_eq "$(snapshot "$LAB/work" | grep '|f|')" "$(snapshot "$LOCAL/work" | grep '|f|')" \
  "the backend's files match the local disk (path, size, mode, mtime, md5)"
# Directories have no user.hsm.state to wait on: their jobs (a chmod is one)
# may still be settling when the files are dual.
for _ in $(seq 1 300); do
  [ "$(snapshot "$LAB/work" | grep '|d|')" == "$(snapshot "$LOCAL/work" | grep '|d|')" ] && break
  sleep 0.2
done
assert_eq "$(snapshot "$LAB/work" | grep '|d|')" \
  "$(snapshot "$LOCAL/work" | grep '|d|')" "the backend has every directory, with its mode"

# --- d) a file being written reads back at once; rewriting archives again.
LIVE=$MNT/vault/incoming/live.dat
/usr/bin/python3 - "$LIVE" "$WORK/live.v1" <<'PY' || fail "reading a file while it is written"
import os, sys, time
path, keep = sys.argv[1], sys.argv[2]
data = os.urandom(3 << 20)
w = open(path, "wb", buffering=0)
w.write(data[: 1 << 20])
assert os.getxattr(path, "user.hsm.state") == b"online", os.getxattr(path, "user.hsm.state")
with open(path, "rb") as r:
    assert r.read() == data[: 1 << 20], "first MiB not readable while open for writing"
w.write(data[1 << 20:])
time.sleep(2)  # longer than settle: an open file is not archived
assert os.getxattr(path, "user.hsm.state") == b"online", os.getxattr(path, "user.hsm.state")
with open(path, "rb") as r:
    assert r.read() == data, "the whole file not readable while open for writing"
w.close()
with open(path, "rb") as r:
    assert r.read() == data
open(keep, "wb").write(data)
PY
pass "a file being written is online and reads back at once"
wait_all_dual "$LIVE" 120
assert_eq "$(xattr checksum "$LIVE")" "md5:$(md5sum <"$WORK/live.v1" | cut -d' ' -f1)" "the first version is archived"
printf 'version 2' | dd of="$LIVE" bs=1 seek=1000 conv=notrunc status=none
assert_eq "$(xattr state "$LIVE")" "online" "rewriting an archived file makes it online"
cp "$WORK/live.v1" "$WORK/live.v2"
printf 'version 2' | dd of="$WORK/live.v2" bs=1 seek=1000 conv=notrunc status=none
cmp "$LIVE" "$WORK/live.v2" || fail "the rewritten file reads back"
wait_all_dual "$LIVE" 120
assert_eq "$(xattr checksum "$LIVE")" "md5:$(md5sum <"$WORK/live.v2" | cut -d' ' -f1)" \
  "the new version's checksum"
cmp "$ROOT/incoming/live.dat" "$WORK/live.v2" || fail "the backend holds the new version"
pass "the backend holds the new version"
$HSMCTL jobs --json --all >"$WORK/jobs.json"
assert_eq "$(/usr/bin/python3 -c '
import json, sys
print(sum(1 for j in json.load(open(sys.argv[1]))
          if j["path"] == "vault/incoming/live.dat" and j["kind"] == "archive" and j["state"] == "done"))' \
  "$WORK/jobs.json")" "2" "hsmctl jobs shows two finished archive jobs for the rewritten file"

/usr/bin/python3 - "$MNT/vault/incoming" <<'PY' || fail "O_EXCL"
import errno, os, sys
d = sys.argv[1]
fd = os.open(os.path.join(d, "excl.txt"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
os.write(fd, b"first")
os.close(fd)
try:
    os.open(os.path.join(d, "excl.txt"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    sys.exit("a second O_EXCL create succeeded")
except OSError as e:
    assert e.errno == errno.EEXIST, e
assert open(os.path.join(d, "excl.txt"), "rb").read() == b"first"
PY
pass "O_CREAT|O_EXCL creates once, then EEXIST"
chown 65534:65534 "$LIVE" || fail "chown in a writable directory"
assert_eq "$(stat -c %u:%g "$LIVE")" "65534:65534" "chown changes the owner (test_permissions.sh has the rest)"

$HSMCTL fsck >"$WORK/fsck.out" 2>&1 || fail "hsmctl fsck: $(cat "$WORK/fsck.out")"
grep -q "no problems" "$WORK/fsck.out" || fail "hsmctl fsck output: $(cat "$WORK/fsck.out")"
pass "hsmctl fsck finds no problems"

fusermount3 -u "$MNT"
wait_unmounted "$MNT"
