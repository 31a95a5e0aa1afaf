# Read benchmark (not a test): a cached file read through the mount vs the
# cache file itself (sequential dd, page cache dropped and warm; random 4 KiB
# preads at the same offsets), and recall throughput with 1 and 8 stage workers
# on a posix backend with a simulated per-file latency. Ratios come from one
# run, side by side. Needs root for the cold runs (/proc/sys/vm/drop_caches).
#
#   make bench            or   HSMFS_BIN=build/release bash tests/bench/bench_read.sh
set -euo pipefail
BIN=${HSMFS_BIN:?set HSMFS_BIN to a build directory}/bin
SIZE_MB=${BENCH_READ_MB:-1024}          # the sequentially read file, MiB
READS=${BENCH_RANDOM_READS:-20000}      # random 4 KiB preads, warm
COLD_READS=${BENCH_COLD_READS:-2000}    # random 4 KiB preads, page cache dropped
RECALL_FILES=${BENCH_RECALL_FILES:-200} # 1 MiB files recalled per worker setting
RECALL_DELAY=${BENCH_STAGE_DELAY:-50ms}
WORK=$(mktemp -d /tmp/hsmfs-bench.XXXXXX)
MNT=$WORK/mnt
trap 'fusermount3 -uz "$MNT" 2>/dev/null || true; rm -rf "$WORK"' EXIT

now() { date +%s%N; }
ratio() { python3 -c "print(f'{$1 / max($2, 1e-9):.2f}')"; }
mbps() { python3 -c "print(f'{$1 / max($2, 1) * 1000:.0f}')"; }  # BYTES NANOSECONDS -> MB/s
drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null; }
COLD=yes
drop_caches || COLD="no (not root: 'cold' reads are first reads)"

# write_conf NAME WORKERS STAGE_DELAY: a config with its own catalog and cache.
write_conf() {
  cat >"$WORK/$1.toml" <<TOML
[catalog]
path = "$WORK/$1/catalog.db"
[cache]
dir = "$WORK/$1/cache"
[stage]
workers = $2
[log]
file = "$WORK/$1/hsmfs.log"
[[backend]]
name = "vault"
type = "posix"
root = "$WORK/vault"
stage_delay = "$3"
TOML
  mkdir -p "$WORK/$1"
}

# mount_wait CONFIG: mounts on $MNT and waits for it.
mount_wait() {
  "$BIN/hsmfs" -c "$1" "$MNT"
  for _ in $(seq 1 200); do mountpoint -q "$MNT" && return 0; sleep 0.05; done
  echo "bench_read: $MNT did not get mounted" >&2
  exit 1
}

unmount_wait() {
  fusermount3 -u "$MNT"
  for _ in $(seq 1 200); do pgrep -f "hsmfs -c $1 " >/dev/null || return 0; sleep 0.05; done
}

# dd_ns FILE: nanoseconds of dd bs=1M of the whole file to /dev/null.
dd_ns() {
  local t
  t=$(now)
  dd if="$1" of=/dev/null bs=1M status=none
  echo $(($(now) - t))
}

mkdir -p "$WORK/vault/recall" "$MNT"
dd if=/dev/urandom of="$WORK/vault/big.dat" bs=1M count="$SIZE_MB" status=none
python3 - "$WORK/vault/recall" "$RECALL_FILES" <<'PY'
import os, sys
block = os.urandom(1 << 20)
for i in range(int(sys.argv[2])):
    with open(os.path.join(sys.argv[1], "f%04d.dat" % i), "wb") as f:
        f.write(block[i:] + block[:i])
PY
BYTES=$((SIZE_MB << 20))

# --- a cached file: through the mount vs the cache file
write_conf read 4 0s
mount_wait "$WORK/read.toml"
drop_caches || true
t=$(now)
"$BIN/hsmctl" -c "$WORK/read.toml" stage --wait "$MNT/vault/big.dat" >/dev/null 2>&1
recall_big_ns=$(($(now) - t))
CACHED=$(find "$WORK/read/cache/data" -type f)
[ "$(echo "$CACHED" | wc -l)" == 1 ] || { echo "bench_read: expected one cache file, got: $CACHED" >&2; exit 1; }
[ "$(stat -c %s "$CACHED")" == "$BYTES" ] || { echo "bench_read: $CACHED is not complete" >&2; exit 1; }

drop_caches || true
cold_direct=$(dd_ns "$CACHED")
drop_caches || true
cold_mount=$(dd_ns "$MNT/vault/big.dat")
dd_ns "$CACHED" >/dev/null
warm_direct=$(dd_ns "$CACHED")
dd_ns "$MNT/vault/big.dat" >/dev/null
warm_mount=$(dd_ns "$MNT/vault/big.dat")

# Random 4 KiB preads, the same offsets in both files: cold (page cache
# dropped before each run, fewer reads) and warm.
cat >"$WORK/pread.py" <<'PY'
import os, random, sys, time
path, n, warm = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "warm"
size = os.path.getsize(path)
rnd = random.Random(42)
offsets = [rnd.randrange(0, size // 4096) * 4096 for _ in range(n)]
fd = os.open(path, os.O_RDONLY)
if warm:
    for off in offsets:
        os.pread(fd, 4096, off)
t = time.perf_counter()
for off in offsets:
    if len(os.pread(fd, 4096, off)) != 4096:
        raise SystemExit("short read in " + path)
print(int(n / (time.perf_counter() - t)))
PY
drop_caches || true
cold_iops_mount=$(python3 "$WORK/pread.py" "$MNT/vault/big.dat" "$COLD_READS" cold)
drop_caches || true
cold_iops_direct=$(python3 "$WORK/pread.py" "$CACHED" "$COLD_READS" cold)
iops_mount=$(python3 "$WORK/pread.py" "$MNT/vault/big.dat" "$READS" warm)
iops_direct=$(python3 "$WORK/pread.py" "$CACHED" "$READS" warm)
unmount_wait "$WORK/read.toml"
rm -rf "$WORK/read"  # frees the cached copy

# --- recall throughput with 1 and 8 workers
recall_run() {  # WORKERS: prints nanoseconds of hsmctl stage --wait of the recall directory
  local name=recall$1 t
  write_conf "$name" "$1" "$RECALL_DELAY"
  mount_wait "$WORK/$name.toml"
  ls "$MNT/vault/recall" >/dev/null  # listed before the clock starts
  t=$(now)
  "$BIN/hsmctl" -c "$WORK/$name.toml" stage --wait "$MNT/vault/recall" >/dev/null 2>&1
  echo $(($(now) - t))
  unmount_wait "$WORK/$name.toml"
  rm -rf "${WORK:?}/$name"
}
recall1=$(recall_run 1)
recall8=$(recall_run 8)
files_per_s() { python3 -c "print(f'{$RECALL_FILES / ($1 / 1e9):.1f}')"; }
recall_mb=$((RECALL_FILES << 20))

echo "hsmfs read benchmark ($(nproc) cores; page cache dropped for cold runs: $COLD)"
printf '  %-50s %10s %12s %8s\n' "" "mount" "cache file" "ratio"
printf '  %-50s %6s MB/s %7s MB/s %8s\n' "sequential read ${SIZE_MB} MiB, dd bs=1M, cold" \
  "$(mbps $BYTES "$cold_mount")" "$(mbps $BYTES "$cold_direct")" "$(ratio "$cold_direct" "$cold_mount")"
printf '  %-50s %6s MB/s %7s MB/s %8s\n' "sequential read ${SIZE_MB} MiB, dd bs=1M, warm" \
  "$(mbps $BYTES "$warm_mount")" "$(mbps $BYTES "$warm_direct")" "$(ratio "$warm_direct" "$warm_mount")"
printf '  %-50s %8s /s %9s /s %8s\n' "random 4 KiB pread x $COLD_READS, cold" \
  "$cold_iops_mount" "$cold_iops_direct" "$(ratio "$cold_iops_mount" "$cold_iops_direct")"
printf '  %-50s %8s /s %9s /s %8s\n' "random 4 KiB pread x $READS, warm" \
  "$iops_mount" "$iops_direct" "$(ratio "$iops_mount" "$iops_direct")"
printf '  %-50s %6s MB/s\n' "recall of the ${SIZE_MB} MiB file (stage_delay 0)" "$(mbps $BYTES "$recall_big_ns")"
printf '  %-50s %8s files/s %6s MB/s\n' "recall $RECALL_FILES x 1 MiB, stage_delay $RECALL_DELAY, 1 worker" \
  "$(files_per_s "$recall1")" "$(mbps $recall_mb "$recall1")"
printf '  %-50s %8s files/s %6s MB/s   speed-up %s\n' "recall $RECALL_FILES x 1 MiB, stage_delay $RECALL_DELAY, 8 workers" \
  "$(files_per_s "$recall8")" "$(mbps $recall_mb "$recall8")" "$(ratio "$recall1" "$recall8")"
echo "  (ratio = mount speed / cache-file speed; 1.00 means no overhead. hsmctl stage --wait"
echo "   polls every 250 ms, so short recall runs are rounded up by up to that much.)"
