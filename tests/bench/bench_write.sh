# Writing benchmark (not a test): sequential write of 1 GiB through the mount
# vs the same bytes to a local file (dd bs=1M conv=fsync for both, so both
# numbers include getting the data to disk), small-file creation (2,000 files
# of 4 KiB, each opened, written and closed) via the mount vs the local disk,
# and archive throughput: from the last close of 1 GiB in 50 files until all
# are dual (md5 checksum, verify = readback, settle = 0s), against a local
# baseline that does the same work (md5 of the data, copy, fsync, md5 of the
# copy). Local files live on the file system that holds the cache.
#
#   make bench            or   HSMFS_BIN=build/release bash tests/bench/bench_write.sh
set -euo pipefail
BIN=${HSMFS_BIN:?set HSMFS_BIN to a build directory}/bin
SEQ_MIB=${BENCH_SEQ_MIB:-1024}
SMALL=${BENCH_SMALL_FILES:-2000}
ARCH_FILES=${BENCH_ARCHIVE_FILES:-50}
ARCH_MIB=${BENCH_ARCHIVE_MIB:-1024}
WORK=$(mktemp -d /tmp/hsmfs-bench.XXXXXX)
MNT=$WORK/mnt
trap 'fusermount3 -uz "$MNT" 2>/dev/null || true; rm -rf "$WORK"' EXIT

mkdir -p "$WORK/vault" "$WORK/local" "$MNT"
write_conf() {  # SETTLE
  cat >"$WORK/hsmfs.toml" <<TOML
[catalog]
path = "$WORK/catalog.db"
[cache]
dir = "$WORK/cache"
size = "20GiB"
[log]
file = "$WORK/hsmfs.log"
[archive]
settle = "$1"
checksum = "md5"
verify = "readback"
[[backend]]
name = "vault"
type = "posix"
root = "$WORK/vault"
writable = ["incoming"]
allow_delete = true
TOML
}
now() { date +%s%N; }
ms_since() { echo $(( ($(now) - $1) / 1000000 )); }
ratio() { /usr/bin/python3 -c "print(f'{$1 / max($2, 1):.2f}')"; }
mbs() { /usr/bin/python3 -c "print(f'{$1 * 1.048576 / max($2, 1) * 1000:.0f}')"; }  # MiB, ms -> MB/s
HSMCTL() { "$BIN/hsmctl" -c "$WORK/hsmfs.toml" "$@"; }

# 1 and 2: no archiving meanwhile (settle = 1h; the files are removed before
# the unmount, so nothing is left to archive).
write_conf 1h
"$BIN/hsmfs" -c "$WORK/hsmfs.toml" "$MNT"
mkdir "$MNT/vault/incoming"
head -c $((SEQ_MIB << 20)) /dev/urandom >"$WORK/src.bin"
cat "$WORK/src.bin" >/dev/null
dd_ms() {  # OUTPUT
  sync
  local t
  t=$(now)
  dd if="$WORK/src.bin" of="$1" bs=1M conv=fsync status=none
  ms_since "$t"
}
local_seq=$(dd_ms "$WORK/local/seq.bin")
mount_seq=$(dd_ms "$MNT/vault/incoming/seq.bin")
cmp "$WORK/src.bin" "$MNT/vault/incoming/seq.bin"
rm -f "$WORK/local/seq.bin" "$MNT/vault/incoming/seq.bin"

small_ms() {  # DIR
  sync
  python3 - "$1" "$SMALL" <<'PY'
import os, sys, time
d, n = sys.argv[1], int(sys.argv[2])
os.makedirs(d)
data = os.urandom(4096)
t = time.perf_counter()
for i in range(n):
    fd = os.open(os.path.join(d, "f%05d" % i), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.write(fd, data)
    os.close(fd)
print(int((time.perf_counter() - t) * 1000))
PY
}
local_small=$(small_ms "$WORK/local/small")
mount_small=$(small_ms "$MNT/vault/incoming/small")
rm -rf "$WORK/local/small" "$MNT/vault/incoming/small"
fusermount3 -u "$MNT"
for i in $(seq 1 100); do pgrep -f "hsmfs -c $WORK/hsmfs.toml" >/dev/null || break; sleep 0.1; done

# 3: archive throughput with settle = 0s: archiving starts while cp -r still
# copies the later files; the clock runs from the last close (cp returns)
# until every file is dual, and the whole pipeline is reported too.
python3 - "$WORK/arch-src" "$ARCH_FILES" "$ARCH_MIB" <<'PY'
import os, sys
d, n, mib = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
os.makedirs(d)
per = (mib << 20) // n
for i in range(n):
    with open(os.path.join(d, "part%03d.bin" % i), "wb") as fh:
        fh.write(os.urandom(per))
PY
write_conf 0s
"$BIN/hsmfs" -c "$WORK/hsmfs.toml" "$MNT"
sync
t=$(now)
cp -r "$WORK/arch-src" "$MNT/vault/incoming/arch"
copy_ms=$(ms_since "$t")
t=$(now)
for i in $(seq 1 6000); do
  left=$(HSMCTL jobs --json | /usr/bin/python3 -c '
import json, sys
print(sum(1 for j in json.load(sys.stdin) if j["state"] in ("queued", "running")))')
  # One value per file (--only-values would run them together).
  states=$(getfattr --absolute-names -n user.hsm.state "$MNT/vault/incoming/arch"/* |
    sed -n 's/^user.hsm.state="\(.*\)"$/\1/p' | sort -u)
  [ "$left" == 0 ] && [ "$states" == dual ] && break
  sleep 0.1
done
arch_ms=$(ms_since "$t")
[ "$states" == dual ] || { echo "archiving did not finish" >&2; exit 1; }
fusermount3 -u "$MNT"

# The same work done locally: checksum, copy with fsync, read back.
sync
t=$(now)
mkdir "$WORK/local/arch"
for f in "$WORK/arch-src"/*; do
  md5sum "$f" >/dev/null
  dd if="$f" of="$WORK/local/arch/${f##*/}" bs=1M conv=fsync status=none
  md5sum "$WORK/local/arch/${f##*/}" >/dev/null
done
base_ms=$(ms_since "$t")

echo "hsmfs write benchmark ($(nproc) cores, release build; dd bs=1M conv=fsync on both sides)"
printf '  %-58s %8s ms  %6s MB/s\n' "sequential write ${SEQ_MIB} MiB, local disk" "$local_seq" "$(mbs "$SEQ_MIB" "$local_seq")"
printf '  %-58s %8s ms  %6s MB/s   time ratio %s\n' "sequential write ${SEQ_MIB} MiB, mount" "$mount_seq" \
  "$(mbs "$SEQ_MIB" "$mount_seq")" "$(ratio "$mount_seq" "$local_seq")"
printf '  %-58s %8s ms  %6s files/s\n' "create+write+close $SMALL x 4 KiB, local disk" "$local_small" \
  "$(python3 -c "print(int($SMALL * 1000 / max($local_small, 1)))")"
printf '  %-58s %8s ms  %6s files/s   time ratio %s\n' "create+write+close $SMALL x 4 KiB, mount" "$mount_small" \
  "$(python3 -c "print(int($SMALL * 1000 / max($mount_small, 1)))")" "$(ratio "$mount_small" "$local_small")"
printf '  %-58s %8s ms  %6s MB/s\n' "cp -r $ARCH_MIB MiB in $ARCH_FILES files into the mount" "$copy_ms" "$(mbs "$ARCH_MIB" "$copy_ms")"
printf '  %-58s %8s ms  %6s MB/s\n' "archive: last close until all dual (md5, readback)" "$arch_ms" "$(mbs "$ARCH_MIB" "$arch_ms")"
printf '  %-58s %8s ms  %6s MB/s\n' "archive: cp start until all dual (whole pipeline)" "$((copy_ms + arch_ms))" \
  "$(mbs "$ARCH_MIB" "$((copy_ms + arch_ms))")"
printf '  %-58s %8s ms  %6s MB/s   time ratio %s\n' "local baseline: md5, copy+fsync, md5 of the copy" "$base_ms" \
  "$(mbs "$ARCH_MIB" "$base_ms")" "$(ratio "$arch_ms" "$base_ms")"
