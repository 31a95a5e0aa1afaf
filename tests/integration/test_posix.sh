# POSIX behaviour of the writable part of a real mount, as on a local disk
# (issue 14 items 2-6): a file created O_CREAT|O_RDONLY is archived; an open
# file that was unlinked stays usable until its last close; names over
# NAME_MAX give ENAMETOOLONG; directory times follow changes inside them,
# survive a relisting, and rsync -a converges; truncating past the cache
# fails at once with EFBIG and leaves the file to be archived.
source "$(dirname "$0")/lib.sh"

ROOT=$WORK/vault
mkdir -p "$ROOT/incoming"
CONF=$WORK/hsmfs.toml
cat >"$CONF" <<TOML
[catalog]
path = "$WORK/catalog.db"
[cache]
dir = "$WORK/cache"
size = "64MiB"
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
HSMCTL="$BIN/hsmctl -c $CONF"
MNT=$WORK/mnt
mount_bg "$CONF" "$MNT"
IN=$MNT/vault/incoming

# wait_dual PATH...: until every PATH (on the mount) is dual, at most 60 s.
wait_dual() {
  /usr/bin/python3 - "$@" <<'PY' || fail "not dual within 60 s: $*"
import os, sys, time
deadline = time.monotonic() + 60
while True:
    bad = {}
    for p in sys.argv[1:]:
        try:
            s = os.getxattr(p, "user.hsm.state").decode()
        except OSError as e:
            s = "error " + e.strerror
        if s != "dual":
            bad[p] = s
    if not bad:
        sys.exit(0)
    if time.monotonic() > deadline:
        for p, s in bad.items():
            print(f"  {p}: {s}", file=sys.stderr)
        sys.exit(1)
    time.sleep(0.2)
PY
}

# --- item 2: O_CREAT|O_RDONLY (pjdfstest's create, flock(1) lock files).
/usr/bin/python3 -c 'import os, sys; os.close(os.open(sys.argv[1], os.O_CREAT | os.O_RDONLY, 0o644))' \
  "$IN/rdonly_created"
flock "$IN/lockfile" true
wait_dual "$IN/rdonly_created" "$IN/lockfile"
[ -f "$ROOT/incoming/rdonly_created" ] && [ -f "$ROOT/incoming/lockfile" ] ||
  fail "files created O_RDONLY are not on the backend"
pass "files created with O_CREAT|O_RDONLY (and flock lock files) are archived"

# --- item 3: open, unlink, keep using, close (pjdfstest unlink/14.t).
/usr/bin/python3 - "$IN" <<'PY' || fail "an open, unlinked file did not behave as on a local disk"
import errno, os, sys
d = sys.argv[1]
p = os.path.join(d, "tmpfile")
fd = os.open(p, os.O_CREAT | os.O_RDWR, 0o600)
os.write(fd, b"hello world")
os.unlink(p)
assert not os.path.exists(p), "the name is still there"
assert "tmpfile" not in os.listdir(d), "readdir still shows it"
st = os.fstat(fd)
assert st.st_size == 11 and st.st_nlink == 0, (st.st_size, st.st_nlink)
assert os.pread(fd, 5, 6) == b"world"
assert os.pwrite(fd, b"WORLD!", 6) == 6
os.ftruncate(fd, 20)
assert os.fstat(fd).st_size == 20
assert os.pread(fd, 100, 0) == b"hello WORLD!" + b"\0" * 8
fd2 = os.open(p, os.O_CREAT | os.O_RDWR, 0o600)  # a new file of the same name
os.write(fd2, b"new")
os.close(fd2)
os.close(fd)
with open(p, "rb") as f:
    assert f.read() == b"new", "the new file of that name changed"
# Renamed over while open: the same.
v = os.path.join(d, "victim")
fd = os.open(v, os.O_CREAT | os.O_RDWR, 0o600)
os.write(fd, b"old")
with open(os.path.join(d, "replacement"), "wb") as f:
    f.write(b"replacement")
os.rename(os.path.join(d, "replacement"), v)
st = os.fstat(fd)
assert st.st_size == 3 and st.st_nlink == 0, (st.st_size, st.st_nlink)
assert os.pread(fd, 10, 0) == b"old"
os.close(fd)
PY
wait_dual "$IN/tmpfile" "$IN/victim"
assert_eq "$(cat "$ROOT/incoming/tmpfile")" "new" "the new file of that name is archived, not the unlinked one"
assert_eq "$(cat "$ROOT/incoming/victim")" "replacement" "the file renamed over an open one is archived"
pass "an open, unlinked file: fstat, pread, pwrite, ftruncate work until the last close"

# --- item 4: NAME_MAX.
long255=$(printf 'a%.0s' $(seq 1 255))
long256=${long255}b
expect_errno() {  # ERRNO_NAME WHAT python-statement (p = the 256-byte path)
  /usr/bin/python3 - "$IN" "$long256" "$1" "$3" <<'PY' || fail "$2: expected $1"
import errno, os, sys
d, name, want, stmt = sys.argv[1:]
p = os.path.join(d, name)
try:
    exec(stmt)
except OSError as e:
    if e.errno != getattr(errno, want):
        print(f"  got {errno.errorcode.get(e.errno)}", file=sys.stderr)
        sys.exit(1)
    sys.exit(0)
print("  no error", file=sys.stderr)
sys.exit(1)
PY
  pass "$2: $1"
}
expect_errno ENAMETOOLONG "create of a 256-byte name" 'os.close(os.open(p, os.O_CREAT | os.O_WRONLY))'
expect_errno ENAMETOOLONG "mkdir of a 256-byte name" 'os.mkdir(p)'
expect_errno ENAMETOOLONG "mknod of a 256-byte name" 'os.mknod(p, 0o100644)'
expect_errno ENAMETOOLONG "stat of a 256-byte name" 'os.stat(p)'
echo x >"$IN/short"
expect_errno ENAMETOOLONG "rename to a 256-byte name" 'os.rename(os.path.join(d, "short"), p)'
# 255 bytes is fine. (Not waited for on the backend here: the posix
# backend's temporary put name is longer than the name itself.)
echo data >"$IN/$long255"
mkdir "$IN/d${long255:1}"
assert_eq "$(cat "$IN/$long255")" "data" "a file with a 255-byte name"
[ -d "$IN/d${long255:1}" ] || fail "mkdir of a 255-byte name"
ls "$IN" | grep -x "$long255" >/dev/null || fail "readdir does not show the 255-byte name"
pass "255-byte names are created, listed and read"

# --- item 5: directory times.
# mtime_of PATH: seconds since the epoch.
mtime_of() { stat -c %Y "$1"; }
ctime_of() { stat -c %Z "$1"; }
mkdir "$IN/times"
old=$(date -d 2001-02-03T04:05:06Z +%s)
for op in create unlink rename; do
  touch -d @"$old" "$IN/times"
  assert_eq "$(mtime_of "$IN/times")" "$old" "utimens of a directory"
  before_ctime=$(ctime_of "$IN/times")
  case $op in
    create) echo a >"$IN/times/f" ;;
    unlink) rm "$IN/times/f" ;;
    rename) echo b >"$IN/times/g" && touch -d @"$old" "$IN/times" && mv "$IN/times/g" "$IN/times/h" ;;
  esac
  now=$(date +%s)
  m=$(mtime_of "$IN/times")
  [ "$m" -ge $((now - 60)) ] || fail "$op inside a directory left its mtime at $m"
  [ "$(ctime_of "$IN/times")" -ge "$m" ] || fail "$op inside a directory: ctime older than mtime"
  pass "$op inside a directory changes its mtime and ctime"
done
touch -d @"$old" "$IN/times"
wait_dual "$IN/times/h"
$HSMCTL sync vault/incoming >/dev/null || fail "hsmctl sync vault/incoming failed"
$HSMCTL sync vault/incoming/times >/dev/null || fail "hsmctl sync vault/incoming/times failed"
assert_eq "$(mtime_of "$IN/times")" "$old" "a directory's mtime set by touch -d survives hsmctl sync"
# wait_backend_mtime DIR SECONDS: until the posix backend's DIR has that mtime.
wait_backend_mtime() {
  local i
  for i in $(seq 1 300); do
    [ "$(mtime_of "$1")" = "$2" ] && return 0
    sleep 0.2
  done
  fail "$1 has mtime $(mtime_of "$1") on the backend, not $2"
}
wait_backend_mtime "$ROOT/incoming/times" "$old"
pass "the directory's mtime reached the posix backend"

# ctime of a file follows chmod, as on a local disk.
echo c >"$IN/ctime"
touch -d @"$old" "$IN/ctime"
c0=$(ctime_of "$IN/ctime")
[ "$c0" -gt "$old" ] || fail "utimens of a file set ctime to its mtime ($c0)"
pass "a file's ctime is not its mtime"

# rsync -a twice: the second run has nothing to do.
SRC=$WORK/src
mkdir -p "$SRC/a/b/c" "$SRC/empty" "$SRC/x"
for f in one a/two a/b/three a/b/c/four x/five; do head -c $((RANDOM % 5000 + 1)) /dev/urandom >"$SRC/$f"; done
chmod 0750 "$SRC/a/b"
touch -d 2010-01-01 "$SRC/a/b/c" "$SRC/a/b" "$SRC/a" "$SRC/empty" "$SRC/x" "$SRC"
rsync -a "$SRC/" "$IN/r/" || fail "rsync -a into the mount failed"
wait_dual "$IN/r/one" "$IN/r/a/two" "$IN/r/a/b/three" "$IN/r/a/b/c/four" "$IN/r/x/five"
$HSMCTL sync vault/incoming/r >/dev/null || fail "hsmctl sync failed"
$HSMCTL sync vault/incoming/r/a >/dev/null || fail "hsmctl sync failed"
changes=$(rsync -ai "$SRC/" "$IN/r/") || fail "the second rsync failed"
[ -z "$changes" ] || fail "the second rsync -ai changed things:
$changes"
pass "rsync -a twice: the second run changes nothing"
for d in a a/b a/b/c empty x; do wait_backend_mtime "$ROOT/incoming/r/$d" "$(mtime_of "$SRC/$d")"; done
pass "rsync's directory times reached the posix backend"

# --- item 6: truncate past the cache size fails at once, the file archives.
echo "some data" >"$IN/big"
start=$(date +%s.%N)
if out=$(truncate -s 1T "$IN/big" 2>&1); then fail "truncate to 1 TiB succeeded"; fi
took=$(echo "$(date +%s.%N) - $start" | bc)
case $out in *"File too large"*) ;; *) fail "truncate to 1 TiB: expected EFBIG, got: $out" ;; esac
[ "$(echo "$took < 5" | bc)" = 1 ] || fail "truncate to 1 TiB took ${took}s"
pass "truncate to 1 TiB fails at once (${took}s) with EFBIG"
/usr/bin/python3 -c '
import errno, os, sys
fd = os.open(sys.argv[1], os.O_WRONLY)
try:
    os.ftruncate(fd, 1 << 40)
    sys.exit("ftruncate to 1 TiB succeeded")
except OSError as e:
    if e.errno != errno.EFBIG: sys.exit("ftruncate: " + e.strerror)
os.close(fd)' "$IN/big" || fail "ftruncate to 1 TiB"
pass "ftruncate to 1 TiB: EFBIG"
grep -q "inode 0)" "$WORK/hsmfs.log" && fail "a failed request was logged with inode 0"
wait_dual "$IN/big"
assert_eq "$(cat "$ROOT/incoming/big")" "some data" "the file whose truncate failed is archived"
assert_eq "$(stat -c %s "$IN/big")" "10" "its size is unchanged"

echo "all POSIX checks passed"
