# fsx-style random operations: a file in the mount and a file on the local
# disk get the same seeded sequence of writes (at random offsets, past EOF
# too), truncates (grow and shrink), reads, close/reopen (O_APPEND, O_TRUNC),
# renames away and back, fsyncs and pauses long enough for archiving to
# start; after every operation both must hold the same bytes. Between phases
# the file is archived (dual, checksum, backend copy checked) and then
# modified further.
#   SEED=N to repeat a run; OPS=N operations per phase (default 1000).
source "$(dirname "$0")/lib.sh"

SEED=${SEED:-$RANDOM}
OPS=${OPS:-1000}
echo "seed $SEED, $OPS operations per phase"
ROOT=$WORK/vault
mkdir -p "$ROOT" "$WORK/local"
CONF=$WORK/hsmfs.toml
config_head "$CONF"
cat >>"$CONF" <<TOML
[archive]
settle = "200ms"
checksum = "md5"
[[backend]]
name = "vault"
type = "posix"
root = "$ROOT"
writable = ["incoming"]
TOML
MNT=$WORK/mnt
mount_bg "$CONF" "$MNT"
mkdir -p "$MNT/vault/incoming/fsx" || fail "mkdir in the writable directory"

cat >"$WORK/fsx.py" <<'PY'
import collections, hashlib, os, random, sys, time

mnt_dir, local_dir, backend_dir, name, seed, ops, phases, max_size, max_write = sys.argv[1:10]
seed, ops, phases, max_size, max_write = map(int, (seed, ops, phases, max_size, max_write))
rnd = random.Random(seed)
alt = name + ".moved"
history = collections.deque(maxlen=12)


def die(msg):
    print(f"FSX FAILURE ({name}, seed {seed}): {msg}", file=sys.stderr)
    for h in history:
        print(f"  op {h}", file=sys.stderr)
    sys.exit(1)


class Pair:
    """The same file twice: [0] on the mount, [1] on the local disk."""

    def __init__(self):
        self.cur = name
        self.fds = None
        self.append = False

    def path(self, i, n=None):
        return os.path.join((mnt_dir, local_dir)[i], n or self.cur)

    def open(self, flags):
        self.append = bool(flags & os.O_APPEND)
        self.fds = [os.open(self.path(i), os.O_RDWR | os.O_CREAT | flags, 0o644) for i in (0, 1)]

    def close(self):
        if self.fds:
            for fd in self.fds:
                os.close(fd)
        self.fds = None

    def both(self, fn, what):
        out = []
        for i in (0, 1):
            try:
                out.append(("ok", fn(i)))
            except OSError as e:
                out.append(("error", e.errno))
        if out[0] != out[1]:
            die(f"{what}: mount gave {out[0]!r:.200}, local disk {out[1]!r:.200}")
        if out[0][0] == "error":
            die(f"{what} failed on both: {os.strerror(out[0][1])}")
        return out[0][1]

    def contents(self, i):
        size = os.fstat(self.fds[i]).st_size
        return size, os.pread(self.fds[i], size + 1, 0)


def check(p, drop_cache):
    if drop_cache:  # read through hsmfs, not the page cache
        os.posix_fadvise(p.fds[0], 0, 0, os.POSIX_FADV_DONTNEED)
    (sm, dm), (sl, dl) = p.contents(0), p.contents(1)
    if sm != sl:
        die(f"sizes differ: mount {sm}, local {sl}")
    if dm != dl:
        first = next((i for i in range(min(len(dm), len(dl))) if dm[i] != dl[i]), min(len(dm), len(dl)))
        die(f"contents differ at byte {first} (mount read {len(dm)} bytes, local {len(dl)})")
    st = [os.stat(p.path(i)).st_size for i in (0, 1)]
    if st[0] != st[1]:
        die(f"stat by path: mount {st[0]}, local {st[1]}")
    return sl


def wait_dual(p, limit=120):
    deadline = time.monotonic() + limit
    while True:
        state = os.getxattr(p.path(0), "user.hsm.state").decode()
        if state == "dual":
            return
        if time.monotonic() > deadline:
            die(f"not dual {limit} s after the last close: {state}")
        time.sleep(0.2)


p = Pair()
p.open(os.O_TRUNC)
size = 0
n = 0
for phase in range(phases):
    if phase > 0:
        p.open(0)
    counts = collections.Counter()
    for _ in range(ops):
        n += 1
        r = rnd.random()
        drop = rnd.random() < 0.1
        if r < 0.30:
            off = rnd.randint(0, min(size + max_write, max_size))
            length = rnd.randint(0, min(max_write, max_size - off))
            data = rnd.randbytes(length)
            if p.append:
                what = f"{n}: write {length} bytes (O_APPEND)"
                history.append(what)
                got = p.both(lambda i: os.write(p.fds[i], data), what)
            else:
                what = f"{n}: pwrite {length} bytes at {off} (size {size})"
                history.append(what)
                got = p.both(lambda i: os.pwrite(p.fds[i], data, off), what)
            if got != length:
                die(f"{what}: short write {got}")
            counts["write"] += 1
        elif r < 0.45:
            off = rnd.randint(0, size + 100)
            length = rnd.randint(0, max_write)
            what = f"{n}: pread {length} at {off} (size {size})"
            history.append(what)
            p.both(lambda i: os.pread(p.fds[i], length, off), what)
            counts["read"] += 1
        elif r < 0.58:
            new = rnd.randint(0, max_size) if rnd.random() < 0.8 else rnd.randint(0, 16)
            by_path = rnd.random() < 0.4
            what = f"{n}: {'truncate' if by_path else 'ftruncate'} {size} -> {new}"
            history.append(what)
            if by_path:
                p.both(lambda i: os.truncate(p.path(i), new), what)
            else:
                p.both(lambda i: os.ftruncate(p.fds[i], new), what)
            counts["truncate grow" if new > size else "truncate shrink"] += 1
        elif r < 0.70:
            x = rnd.random()
            flags = 0 if x < 0.6 else os.O_APPEND if x < 0.8 else os.O_TRUNC
            what = f"{n}: close and reopen with {['', 'O_APPEND', 'O_TRUNC'][(x >= 0.6) + (x >= 0.8)]}"
            history.append(what)
            p.close()
            if drop:
                fd = os.open(p.path(0), os.O_RDONLY)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                os.close(fd)
            p.open(flags)
            counts["reopen"] += 1
        elif r < 0.78:
            keep_open = rnd.random() < 0.5
            what = f"{n}: rename away and back ({'open' if keep_open else 'closed'})"
            history.append(what)
            if not keep_open:
                p.close()
            p.both(lambda i: os.rename(p.path(i, name), p.path(i, alt)), what)
            p.cur = alt
            if os.path.exists(p.path(0, name)):
                die(f"{what}: the old name still exists on the mount")
            if keep_open and rnd.random() < 0.5:
                data = rnd.randbytes(rnd.randint(1, max_write))
                off = rnd.randint(0, min(size, max_size - len(data)))
                history.append(f"{n}: pwrite {len(data)} at {off} while renamed")
                p.both(lambda i: (os.write if p.append else lambda fd, d: os.pwrite(fd, d, off))(p.fds[i], data), what)
            if not keep_open:
                p.open(0)
            size = check(p, drop)
            p.both(lambda i: os.rename(p.path(i, alt), p.path(i, name)), what)
            p.cur = name
            counts["rename"] += 1
        elif r < 0.86:
            what = f"{n}: fsync"
            history.append(what)
            p.both(lambda i: os.fsync(p.fds[i]), what)
            counts["fsync"] += 1
        elif r < 0.95:
            what = f"{n}: read all through another descriptor"
            history.append(what)
            def whole(i):
                fd = os.open(p.path(i), os.O_RDONLY)
                try:
                    out = b""
                    while chunk := os.read(fd, 1 << 16):
                        out += chunk
                    return out
                finally:
                    os.close(fd)
            p.both(whole, what)
            counts["read other fd"] += 1
        elif r < 0.99:
            what = f"{n}: stat by path"
            history.append(what)
            p.both(lambda i: os.stat(p.path(i)).st_size, what)
            counts["stat"] += 1
        else:
            # Closed long enough for the settle time to pass: archiving
            # starts (and may finish) before the file is opened again.
            pause = rnd.uniform(0.25, 0.8)
            what = f"{n}: close, pause {pause:.2f} s, reopen"
            history.append(what)
            p.close()
            time.sleep(pause)
            p.open(0)
            counts["pause"] += 1
        size = check(p, drop)
    p.close()
    with open(p.path(1), "rb") as fh:
        want = fh.read()
    wait_dual(p)
    md5 = hashlib.md5(want).hexdigest()
    x = os.getxattr(p.path(0), "user.hsm.checksum").decode()
    if x != "md5:" + md5:
        die(f"after phase {phase + 1}: user.hsm.checksum {x}, expected md5:{md5}")
    with open(os.path.join(backend_dir, name), "rb") as fh:
        if fh.read() != want:
            die(f"after phase {phase + 1}: the backend copy differs from the local file")
    with open(p.path(0), "rb") as fh:
        if fh.read() != want:
            die(f"after phase {phase + 1}: the archived file reads back differently")
    print(f"  {name} phase {phase + 1}: {ops} ops, {len(want)} bytes, dual, md5 {md5}; "
          + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
PY

PY_FSX() {  # NAME MAX_SIZE MAX_WRITE SEED
  /usr/bin/python3 "$WORK/fsx.py" "$MNT/vault/incoming/fsx" "$WORK/local" "$ROOT/incoming/fsx" \
    "$1" "$4" "$OPS" 3 "$2" "$3"
}
t0=$(date +%s)
PY_FSX big.dat $((1 << 20)) $((128 << 10)) "$SEED" || fail "fsx on big.dat (seed $SEED)"
pass "big.dat (up to 1 MiB): $((3 * OPS)) random operations in 3 phases, archived between them ($(($(date +%s) - t0)) s)"
t0=$(date +%s)
PY_FSX small.dat 20000 5000 $((SEED + 1)) || fail "fsx on small.dat (seed $((SEED + 1)))"
pass "small.dat (up to 20 kB): $((3 * OPS)) random operations in 3 phases, archived between them ($(($(date +%s) - t0)) s)"

"$BIN/hsmctl" -c "$CONF" fsck --checksums >"$WORK/fsck.out" 2>&1 ||
  fail "hsmctl fsck --checksums: $(cat "$WORK/fsck.out")"
grep -q "no problems" "$WORK/fsck.out" || fail "hsmctl fsck: $(cat "$WORK/fsck.out")"
pass "hsmctl fsck --checksums finds no problems"
fusermount3 -u "$MNT"
wait_unmounted "$MNT"
