# Crash safety of writes: hsmfs is killed with SIGKILL at random moments while
# a writer copies files in and archiving runs; after each kill the mount is
# cleaned up and started again. In the end every file that was closed before
# its kill is dual, with the right data on the mount and on the backend, and
# hsmctl fsck --checksums agrees.
#   SEED=N to repeat a run; KILLS=N (default 24; 40 under make check-full,
#   HSMFS_FULL=1). The loss count is printed either way.
source "$(dirname "$0")/lib.sh"

SEED=${SEED:-$RANDOM}
KILLS=${KILLS:-$([ -n "${HSMFS_FULL:-}" ] && echo 40 || echo 24)}
echo "seed $SEED, $KILLS kills"
ROOT=$WORK/vault
mkdir -p "$ROOT"
CONF=$WORK/hsmfs.toml
config_head "$CONF"
cat >>"$CONF" <<TOML
[archive]
settle = "200ms"
checksum = "md5"
verify = "readback"
retry_delay = "200ms"
[[backend]]
name = "vault"
type = "posix"
root = "$ROOT"
writable = ["incoming"]
TOML
HSMCTL="$BIN/hsmctl -c $CONF"
MNT=$WORK/mnt
mount_fg "$CONF" "$MNT"
mkdir -p "$MNT/vault/incoming/crash" || fail "mkdir in the writable directory"

# The writer: files of 0-2 MiB with content known from their number, written
# in pieces; a file's name, size and md5 go to the log (outside the mount)
# only once close() returned. Errors while the mount is down are counted and
# the writer goes on with the next file. It never creates directories, so
# nothing lands in the bare mount point while hsmfs is down.
cat >"$WORK/writer.py" <<'PY'
import hashlib, os, random, sys, time
dest, log, stop, seed = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
closed = errors = 0
i = 0
with open(log, "a") as out:
    while not os.path.exists(stop):
        i += 1
        rnd = random.Random(seed * 1_000_003 + i)
        size = 0 if rnd.random() < 0.05 else rnd.randint(0, 2 << 20)
        data = rnd.randbytes(size)
        name = "f%05d.bin" % i
        try:
            fd = os.open(os.path.join(dest, name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        except OSError:
            errors += 1
            time.sleep(0.05)
            continue
        try:
            off = 0
            while off < size:
                n = min(size - off, rnd.randint(4096, 256 << 10))
                off += os.write(fd, data[off:off + n])
        except OSError:
            errors += 1
            try:
                os.close(fd)
            except OSError:
                pass
            continue
        try:
            os.close(fd)
        except OSError:
            errors += 1
            continue
        closed += 1
        out.write("%s %d %s\n" % (name, size, hashlib.md5(data).hexdigest()))
        out.flush()
        os.fsync(out.fileno())
print("writer: %d files closed, %d errors, %d started" % (closed, errors, i))
PY
/usr/bin/python3 "$WORK/writer.py" "$MNT/vault/incoming/crash" "$WORK/closed.log" "$WORK/stop" "$SEED" \
  >"$WORK/writer.out" 2>&1 &
WRITER=$!
PIDS+=("$WRITER")

t0=$(date +%s)
for k in $(seq 1 "$KILLS"); do
  pause=$(awk -v s="$SEED" -v k="$k" 'BEGIN { srand(s * 100 + k); printf "%.2f", 0.2 + rand() * 1.3 }')
  sleep "$pause"
  kill -0 "$WRITER" 2>/dev/null || fail "the writer died: $(cat "$WORK/writer.out")"
  kill -9 "$FG_PID" || fail "hsmfs (pid $FG_PID) exited by itself before kill $k: $(tail -20 "$WORK/fg.log")"
  wait_exit "$FG_PID" 20
  fusermount3 -uz "$MNT" || fail "fusermount3 -uz after kill $k"
  wait_unmounted "$MNT"
  mount_fg "$CONF" "$MNT"
done
pass "$KILLS kills (SIGKILL after 0.2-1.5 s) and remounts in $(($(date +%s) - t0)) s"

touch "$WORK/stop"
wait_exit "$WRITER" 30
[ "$RC" == 0 ] || fail "the writer failed: $(cat "$WORK/writer.out")"
cat "$WORK/writer.out"
closed=$(wc -l <"$WORK/closed.log")
[ "$closed" -ge 20 ] || fail "only $closed files were closed: the test proves little"
pass "the writer closed $closed files across the kills"

# Every closed file must become dual; then no job may be left active.
/usr/bin/python3 - "$MNT/vault/incoming/crash" "$WORK/closed.log" 240 <<'PY' ||
import os, sys, time
dest, log, limit = sys.argv[1], sys.argv[2], float(sys.argv[3])
names = [l.split()[0] for l in open(log)]
deadline = time.monotonic() + limit
while True:
    bad = {}
    for n in names:
        try:
            s = os.getxattr(os.path.join(dest, n), "user.hsm.state").decode()
        except OSError as e:
            s = "error: " + e.strerror
        if s != "dual":
            bad[n] = s
    if not bad:
        sys.exit(0)
    if time.monotonic() > deadline:
        for n, s in sorted(bad.items())[:20]:
            print(f"  not dual: {n}: {s}", file=sys.stderr)
        print(f"  {len(bad)} of {len(names)} closed files not dual", file=sys.stderr)
        sys.exit(1)
    time.sleep(1)
PY
  fail "closed files did not all become dual"
pass "every file closed before a kill is dual"

for i in $(seq 1 120); do
  active=$($HSMCTL jobs --json | /usr/bin/python3 -c '
import json, sys
print(sum(1 for j in json.load(sys.stdin) if j["state"] in ("queued", "running")))')
  [ "$active" == 0 ] && break
  sleep 1
done
assert_eq "$active" "0" "no job is left active"

/usr/bin/python3 - "$MNT/vault/incoming/crash" "$ROOT/incoming/crash" "$WORK/closed.log" <<'PY' ||
import hashlib, os, sys
mnt, backend, log = sys.argv[1:4]
bad = before = lost = closed = 0
for line in open(log):
    name, size, md5 = line.split()
    for where in (mnt, backend):
        p = os.path.join(where, name)
        try:
            with open(p, "rb") as fh:
                data = fh.read()
        except OSError as e:
            print(f"  {p}: {e.strerror}", file=sys.stderr)
            bad += 1
            continue
        if len(data) != int(size) or hashlib.md5(data).hexdigest() != md5:
            print(f"  {p}: {len(data)} bytes, md5 {hashlib.md5(data).hexdigest()}; "
                  f"expected {size} bytes, md5 {md5}", file=sys.stderr)
            bad += 1
    x = os.getxattr(os.path.join(mnt, name), "user.hsm.checksum").decode()
    if x != "md5:" + md5:
        print(f"  {name}: user.hsm.checksum {x}, expected md5:{md5}", file=sys.stderr)
        bad += 1
    lost += bad > before
    before = bad
    closed += 1
print(f"lost or corrupt: {lost} of {closed} closed files")
sys.exit(1 if bad else 0)
PY
  fail "closed files have wrong data"
pass "every closed file has the right size and md5 on the mount, on the backend and in user.hsm.checksum"

archived=$(cat "$WORK/fg.log" "$WORK/hsmfs.log" 2>/dev/null | grep -c 'archived vault/incoming/crash/f.* md5:' || true)
[ "$archived" -ge "$closed" ] || fail "the log has $archived 'archived' lines for $closed closed files"
pass "the log has an 'archived' line for every closed file"

$HSMCTL fsck --checksums >"$WORK/fsck.out" 2>&1 || fail "hsmctl fsck --checksums: $(cat "$WORK/fsck.out")"
grep -q "no problems" "$WORK/fsck.out" || fail "hsmctl fsck --checksums: $(cat "$WORK/fsck.out")"
pass "hsmctl fsck --checksums finds no problems"

fusermount3 -u "$MNT"
wait_unmounted "$MNT"
wait_exit "$FG_PID" 30
assert_eq "$RC" "0" "the last mount stops cleanly"
