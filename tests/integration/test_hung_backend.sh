# A backend that hangs (issue 15, item 7): the backend root is a bindfs
# passthrough that the test freezes with SIGSTOP, as a hung NFS export or FUSE
# file system would be. Then:
#  - first listings say "incomplete" (EIO and user.hsm.error), and `ls -lR`
#    over several never-listed directories pays about one list_timeout, not
#    one per directory;
#  - hsmctl sync and fsck give up after --timeout with one line and exit 1;
#  - SIGTERM unmounts and exits within 10 s although archive workers are stuck
#    in the backend, and releases the engine lock;
#  - with the backend back, a remount archives the interrupted files;
#  - hsmctl daemon stops the same way.
# Every command that could hang runs under `timeout`.
source "$(dirname "$0")/lib.sh"

command -v bindfs >/dev/null || {
  echo "SKIP: bindfs is missing (make deps)"
  exit 77
}

REAL=$WORK/real   # where the data really is
ROOT=$WORK/vault  # the backend root: bindfs over $REAL
MNT=$WORK/mnt
mkdir -p "$REAL/incoming" "$REAL/old" "$ROOT"
for d in d1 d2 d3 d4 d5; do
  mkdir -p "$REAL/old/$d"
  echo "$d" >"$REAL/old/$d/f"
done
echo "archived long ago" >"$REAL/old/x.dat"

# No attribute caching: every stat of the root reaches bindfs, so that once it
# is frozen each one hangs, as on an NFS server gone away.
bindfs -f -o attr_timeout=0,entry_timeout=0 "$REAL" "$ROOT" 2>"$WORK/bindfs.log" &
BINDFS_PID=$!
# The backend first: a frozen bindfs must be continued before anything can
# unmount it.
trap 'rc=$?; set +e; kill -CONT "$BINDFS_PID" 2>/dev/null; timeout 40 $HSMCTL daemon stop >/dev/null 2>&1;
      fusermount3 -u -z "$ROOT" 2>/dev/null; kill "$BINDFS_PID" 2>/dev/null; (exit $rc); cleanup' EXIT
wait_mounted "$ROOT"

CONF=$WORK/hsmfs.toml
HSMCTL="$BIN/hsmctl -c $CONF"
config_head "$CONF" '[mount]' 'list_timeout = "3s"' '[archive]' 'settle = "2s"'
cat >>"$CONF" <<TOML
[[backend]]
name = "vault"
type = "posix"
root = "$ROOT"
writable = ["incoming"]
TOML

mount_fg "$CONF" "$MNT"
timeout 20 ls "$MNT/vault" "$MNT/vault/old" "$MNT/vault/incoming" >/dev/null ||
  fail "listing the backend while it answers"
declare -A SUMS
for i in 1 2 3; do
  head -c $((i * 50000)) /dev/urandom >"$MNT/vault/incoming/f$i"
  SUMS[f$i]=$(md5sum <"$MNT/vault/incoming/f$i" | cut -d' ' -f1)
done
kill -STOP "$BINDFS_PID"  # before the files settle: their archives will hang
pass "backend frozen (bindfs pid $BINDFS_PID stopped)"

# Reading the config stats the backend root (overlap and type checks): a
# hung root must not hang every hsmctl command, nor a (re)start of the mount.
start=$(date +%s%N)
timeout 30 $HSMCTL jobs >/dev/null 2>"$WORK/jobs.err" ||
  fail "hsmctl jobs with the backend root frozen: $(cat "$WORK/jobs.err")"
ms=$((($(date +%s%N) - start) / 1000000))
[ "$ms" -lt 10000 ] || fail "hsmctl jobs with the backend root frozen took ${ms} ms"
pass "hsmctl jobs with the backend root frozen answered in ${ms} ms"

# First listings while the backend hangs.
start=$(date +%s%N)
out=$(timeout 60 ls -lR "$MNT/vault/old" 2>&1) && fail "ls -lR of never-listed directories succeeded: $out"
ms=$((($(date +%s%N) - start) / 1000000))
n=$(grep -c "reading directory.*Input/output error" <<<"$out" || true)
assert_eq "$n" "5" "each never-listed directory reads as EIO, not as empty"
[ "$ms" -lt 7000 ] || fail "ls -lR of 5 never-listed directories took ${ms} ms (list_timeout 3s)"
pass "ls -lR of 5 never-listed directories took ${ms} ms (about one list_timeout)"
why=$(timeout 10 getfattr --only-values -n user.hsm.error "$MNT/vault/old/d4" 2>"$WORK/getfattr.err") ||
  fail "user.hsm.error of an incomplete directory: $why"
grep -q "incomplete" <<<"$why" || fail "user.hsm.error says: $why"
pass "user.hsm.error on the directory: $why"
timeout 10 stat "$MNT/vault/old/x.dat" >/dev/null || fail "stat of a listed file while frozen"
pass "listed files still answer from the catalog"

# The tools give up instead of hanging.
start=$(date +%s%N)
rc=0
timeout 60 $HSMCTL sync --timeout 2s vault >/dev/null 2>"$WORK/sync.err" || rc=$?
ms=$((($(date +%s%N) - start) / 1000000))
assert_eq "$rc" "1" "hsmctl sync --timeout 2s on a hung backend exits 1"
assert_eq "$(wc -l <"$WORK/sync.err")" "1" "with one line"
grep -q "sync.*: no answer from the backend for 2.0s" "$WORK/sync.err" ||
  fail "sync message: $(cat "$WORK/sync.err")"
[ "$ms" -lt 10000 ] || fail "hsmctl sync --timeout 2s took ${ms} ms"
rc=0
timeout 60 $HSMCTL fsck --timeout 2s >/dev/null 2>"$WORK/fsck.err" || rc=$?
assert_eq "$rc" "1" "hsmctl fsck --timeout 2s on a hung backend exits 1"
grep -q "fsck: no answer from the backend for 2.0s" "$WORK/fsck.err" ||
  fail "fsck message: $(cat "$WORK/fsck.err")"

# Wait until an archive is stuck in the backend.
stuck=""
for _ in $(seq 1 200); do
  for f in f1 f2 f3; do
    state=$(timeout 10 getfattr --only-values -n user.hsm.state "$MNT/vault/incoming/$f" 2>/dev/null || true)
    [ "$state" == "archiving" ] && stuck=$f
  done
  [ -n "$stuck" ] && break
  sleep 0.1
done
[ -n "$stuck" ] || fail "no archive job got stuck in the frozen backend"
pass "the archive of $stuck is stuck in the frozen backend"

start=$(date +%s%N)
kill -TERM "$FG_PID"
wait_exit "$FG_PID" 10
ms=$((($(date +%s%N) - start) / 1000000))
pass "hsmfs exited ${ms} ms after SIGTERM (status $RC)"
grep -q "E-STOP-01" "$WORK/fg.log" || fail "the log does not say why the stop was forced"
if timeout 5 mountpoint -q "$MNT"; then fail "$MNT is still mounted"; fi
timeout 5 ls "$MNT" >/dev/null || fail "ls of the old mountpoint hangs or fails"
pass "the mountpoint is free"
timeout 5 flock -n "$WORK/catalog.db.engine" true || fail "the engine lock is still held"
pass "the engine lock is released while the backend is still frozen"

kill -CONT "$BINDFS_PID"
MOUNTS=()  # the old mount is gone; do not unmount the new one twice
mount_bg "$CONF" "$MNT"
for f in f1 f2 f3; do
  for _ in $(seq 1 300); do
    state=$(timeout 10 getfattr --only-values -n user.hsm.state "$MNT/vault/incoming/$f" 2>/dev/null || true)
    [ "$state" == "dual" ] && break
    sleep 0.1
  done
  assert_eq "$state" "dual" "$f archived after the remount"
  assert_eq "$(md5sum <"$REAL/incoming/$f" | cut -d' ' -f1)" "${SUMS[$f]}" "$f's backend copy"
done
grep -q "resuming .* jobs that were running" "$WORK/hsmfs.log" || fail "the remount did not requeue"
pass "the interrupted jobs were requeued"
timeout 20 fusermount3 -u "$MNT" || fail "unmount"
wait_unmounted "$MNT"

# The headless engine (hsmctl daemon) stops the same way. The catalog is read
# with sqlite3 while the backend is frozen: nothing there can hang.
running() { sqlite3 "$WORK/catalog.db" "SELECT COUNT(*) FROM jobs WHERE state = 'running'"; }
for _ in $(seq 1 200); do timeout 5 flock -n "$WORK/catalog.db.engine" true && break; sleep 0.1; done
head -c 30000 /dev/urandom >"$WORK/g1"
timeout 60 $HSMCTL put "$WORK/g1" vault/incoming/ >/dev/null 2>"$WORK/put.err" ||
  fail "hsmctl put: $(cat "$WORK/put.err")"
kill -STOP "$BINDFS_PID"
timeout 30 $HSMCTL daemon start >/dev/null 2>"$WORK/daemon.err" ||
  fail "hsmctl daemon start: $(cat "$WORK/daemon.err")"
for _ in $(seq 1 200); do
  [ "$(running)" == "1" ] && break
  sleep 0.1
done
assert_eq "$(running)" "1" "the daemon's archive job is stuck in the frozen backend"
start=$(date +%s%N)
timeout 30 $HSMCTL daemon stop >/dev/null 2>"$WORK/daemon.err" ||
  fail "hsmctl daemon stop: $(cat "$WORK/daemon.err")"
ms=$((($(date +%s%N) - start) / 1000000))
[ "$ms" -lt 10000 ] || fail "hsmctl daemon stop took ${ms} ms"
timeout 5 flock -n "$WORK/catalog.db.engine" true || fail "the daemon's engine lock is still held"
grep -q "E-STOP-01" "$WORK/hsmfs.log" || fail "the daemon's log does not say why the stop was forced"
pass "hsmctl daemon stop with a job stuck in the backend took ${ms} ms"
kill -CONT "$BINDFS_PID"
timeout 30 $HSMCTL daemon start >/dev/null 2>"$WORK/daemon.err" ||
  fail "hsmctl daemon start again: $(cat "$WORK/daemon.err")"
for _ in $(seq 1 300); do
  [ "$(sqlite3 "$WORK/catalog.db" "SELECT state FROM entries WHERE name = 'g1'")" == "dual" ] && break
  sleep 0.1
done
assert_eq "$(sqlite3 "$WORK/catalog.db" "SELECT state FROM entries WHERE name = 'g1'")" "dual" \
  "the daemon's interrupted archive completes after a restart"
assert_eq "$(md5sum <"$REAL/incoming/g1" | cut -d' ' -f1)" "$(md5sum <"$WORK/g1" | cut -d' ' -f1)" \
  "g1's backend copy"
timeout 40 $HSMCTL daemon stop >/dev/null 2>&1 || fail "hsmctl daemon stop"
