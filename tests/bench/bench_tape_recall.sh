#!/bin/bash
# Benchmark (not a test): tape recalls through the mount and archive throughput.
#
#  1. The 500-recall workload of tests/integration/test_tape_mount.sh (30
#     targets over 3 tapes, 500 random files, 16 parallel readers, random
#     order), on a library with DRIVES drives (default 2: fewer than tapes).
#     Reports the library's simulated seconds (CostModel) for hsmfs's schedule,
#     for FIFO order (the same requests in the order issued, one at a time) and
#     for the lower bound (one load per tape, each tape read in one forward
#     pass); the last two are replayed by tape_backend_test's TapeRecallReplay
#     on copies of the library in its pre-recall state.
#  2. Archive throughput to a virtual tape: hsmtape archive (tar + inline md5)
#     vs tar -cf - DIR | dd of=IMAGE bs=256k, on the same ARCHIVE_MB of data.
#
# Usage: HSMFS_BIN=build/DIR tests/bench/bench_tape_recall.sh
set -euo pipefail
BIN=${HSMFS_BIN:?set HSMFS_BIN to the build directory}/bin
DRIVES=${DRIVES:-2}
ARCHIVE_MB=${ARCHIVE_MB:-512}
WORK=$(mktemp -d /tmp/hsmfs-bench-tape.XXXXXX)
cleanup() {
  fusermount3 -uz "$WORK/mnt" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
cd "$WORK"
T() { "$BIN/hsmtape" -c "$WORK/tape.conf" "$@" </dev/null; }
counter() {
  /usr/bin/python3 -c 'import json,sys; c=json.load(open(sys.argv[1]))["counters"]; print(c[sys.argv[2]])' \
    "$1/library.json" "$2"
}

# --- 1. recalls
mkdir -p data
/usr/bin/python3 - data <<'PY'
import os, random, sys
random.seed(11)
for t in range(30):
    d = os.path.join(sys.argv[1], f"run{t:02d}")
    os.makedirs(d)
    for i in range(20):
        with open(os.path.join(d, f"f{i:02d}.dat"), "wb") as f:
            f.write(os.urandom(random.randint(1024, 96 * 1024)))
PY
printf '[default]\ndatabase_file = catalog.db\ntape_device = vtl:library\nblock_size = 64KiB\n' >tape.conf
T vtl_create --slots 4 --drives "$DRIVES" --capacity 256MiB >/dev/null
for n in 1 2 3; do
  for t in $(seq $(((n - 1) * 10)) $((n * 10 - 1))); do printf '%s/data/run%02d\n' "$WORK" "$t"; done >list$n.txt
  T open_tape T0000$n --activate >/dev/null
  T import list$n.txt >/dev/null 2>&1
  T assign >/dev/null
  T archive --all >/dev/null 2>&1
  T close_tape --yes >/dev/null
done
# Every tape back in its slot, heads at BOT: each schedule starts from the same state.
/usr/bin/python3 - library/library.json <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
for d in j["drives"]:
    d.update(tape=None, block=0, head_bytes=0)
json.dump(j, open(sys.argv[1], "w"), indent=2)
PY
cp -a library lib-fifo
cp -a library lib-sorted
(cd data && find . -type f -printf '%P\n') | shuf -n 500 --random-source=<(yes) >picks.txt

cat >hsmfs.toml <<EOF
[catalog]
path = "$WORK/catalog.db"
[cache]
dir = "$WORK/cache"
[log]
file = "$WORK/hsmfs.log"
[[backend]]
name = "tape"
type = "tape"
library = "vtl:library"
strip_prefix = "$WORK/data"
EOF
mkdir -p mnt
"$BIN/hsmfs" -c hsmfs.toml mnt
for i in $(seq 1 100); do mountpoint -q mnt && break; sleep 0.05; done
ls mnt/tape >/dev/null
sim0=$(counter library simulated_ns)
loads0=$(counter library loads)
start=$(date +%s.%N)
(cd mnt/tape && xargs -a ../../picks.txt -P 16 -n 4 md5sum) >/dev/null
end=$(date +%s.%N)
sleep 3
fusermount3 -u mnt
sleep 1
sim=$(($(counter library simulated_ns) - sim0))
loads=$(($(counter library loads) - loads0))
replay() {  # LIBRARY ORDER
  HSMFS_REPLAY_LIBRARY=$WORK/$1 HSMFS_REPLAY_ORDER=$2 HSMFS_REPLAY_CATALOG=$WORK/catalog.db \
    HSMFS_REPLAY_STRIP=$WORK/data HSMFS_REPLAY_LIST=$WORK/picks.txt \
    "$BIN/tape_backend_test" --gtest_filter=TapeRecallReplay.* | grep '^replay'
}
echo "== 500 recalls over 3 tapes, $DRIVES drives, 16 parallel readers"
printf 'hsmfs schedule: simulated_seconds=%.1f loads=%d (wall %.1f s)\n' \
  "$(echo "$sim / 1000000000" | bc -l)" "$loads" "$(echo "$end - $start" | bc -l)"
replay lib-fifo fifo
replay lib-sorted sorted

# --- 2. archive throughput
echo "== archive of $ARCHIVE_MB MiB to a virtual tape"
mkdir -p big/dir
for i in $(seq 1 $((ARCHIVE_MB / 64))); do head -c $((64 << 20)) /dev/urandom >big/dir/f$i.bin; done
printf '[default]\ndatabase_file = arch.db\ntape_device = vtl:archlib\nblock_size = 256KiB\n' >arch.conf
A() { "$BIN/hsmtape" -c "$WORK/arch.conf" "$@" </dev/null; }
A vtl_create --slots 2 --drives 1 --capacity 4GiB >/dev/null
A open_tape A00001 --activate >/dev/null
echo "$WORK/big/dir" >big.txt
A import big.txt >/dev/null 2>&1  # reads and checksums the files once (not timed)
A assign >/dev/null
sync
start=$(date +%s.%N)
A archive --all >/dev/null 2>&1
end=$(date +%s.%N)
printf 'hsmtape archive (tar + md5 + tape format): %.0f MB/s\n' \
  "$(echo "$ARCHIVE_MB * 1.048576 / ($end - $start)" | bc -l)"
start=$(date +%s.%N)
tar -cf - -C big dir 2>/dev/null | dd of=image.tar bs=256k status=none
sync image.tar
end=$(date +%s.%N)
printf 'tar -cf - DIR | dd of=IMAGE bs=256k:     %.0f MB/s\n' \
  "$(echo "$ARCHIVE_MB * 1.048576 / ($end - $start)" | bc -l)"
