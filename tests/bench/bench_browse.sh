# Browsing benchmark (not a test): find -ls over a 100,000-file tree through
# the mount vs the same tree on the local disk, plus getattr/s and readdir
# entries/s with kernel caching off. Ratios come from one run, side by side.
#
#   make bench            or   HSMFS_BIN=build/release bash tests/bench/bench_browse.sh
set -euo pipefail
BIN=${HSMFS_BIN:?set HSMFS_BIN to a build directory}/bin
DIRS=${BENCH_DIRS:-1000}
PER_DIR=${BENCH_FILES:-100}
WORK=$(mktemp -d /tmp/hsmfs-bench.XXXXXX)
MNT=$WORK/mnt
trap 'fusermount3 -uz "$MNT" 2>/dev/null || true; rm -rf "$WORK"' EXIT

python3 - "$WORK/vault" "$DIRS" "$PER_DIR" <<'PY'
import os, sys
root, dirs, per = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for d in range(dirs):
    path = os.path.join(root, "run%02d" % (d // 100), "obs%05d" % d)
    os.makedirs(path)
    for f in range(per):
        with open(os.path.join(path, "frame_%04d.fits" % f), "wb") as fh:
            fh.truncate((d * 7919 + f * 104729) % 65536)
PY
cat >"$WORK/hsmfs.toml" <<TOML
[catalog]
path = "$WORK/catalog.db"
[cache]
dir = "$WORK/cache"
[[backend]]
name = "vault"
type = "posix"
root = "$WORK/vault"
TOML
mkdir -p "$MNT"
now() { date +%s%N; }
ms_since() { echo $(( ($(now) - $1) / 1000000 )); }
ratio() { python3 -c "print(f'{$1 / max($2, 1):.2f}')"; }

t=$(now); "$BIN/hsmctl" -c "$WORK/hsmfs.toml" sync vault 2>/dev/null; sync_ms=$(ms_since "$t")

find "$WORK/vault" -ls >/dev/null  # warm the local dentry and inode caches
t=$(now); find "$WORK/vault" -ls >/dev/null; local_ms=$(ms_since "$t")

"$BIN/hsmfs" -c "$WORK/hsmfs.toml" "$MNT"
t=$(now); find "$MNT/vault" -ls >/dev/null; cold_ms=$(ms_since "$t")
t=$(now); find "$MNT/vault" -ls >/dev/null; warm_ms=$(ms_since "$t")
fusermount3 -u "$MNT"; sleep 0.5

# With kernel caching off every stat and every readdir reaches hsmfs.
"$BIN/hsmfs" -c "$WORK/hsmfs.toml" "$MNT" -o entry_timeout=0,attr_timeout=0
read -r m_stat m_readdir < <(python3 - "$MNT/vault" <<'PY'
import os, sys, time
root = sys.argv[1]
t = time.perf_counter(); n = 0
for dirpath, dirnames, filenames in os.walk(root):
    n += len(dirnames) + len(filenames)
readdir = n / (time.perf_counter() - t)
paths = [os.path.join(dp, f) for dp, _, fs in os.walk(root) for f in fs]
t = time.perf_counter()
for p in paths: os.lstat(p)
print(int(len(paths) / (time.perf_counter() - t)), int(readdir))
PY
)
fusermount3 -u "$MNT"
read -r l_stat l_readdir < <(python3 - "$WORK/vault" <<'PY'
import os, sys, time
root = sys.argv[1]
t = time.perf_counter(); n = 0
for dirpath, dirnames, filenames in os.walk(root):
    n += len(dirnames) + len(filenames)
readdir = n / (time.perf_counter() - t)
paths = [os.path.join(dp, f) for dp, _, fs in os.walk(root) for f in fs]
t = time.perf_counter()
for p in paths: os.lstat(p)
print(int(len(paths) / (time.perf_counter() - t)), int(readdir))
PY
)

files=$((DIRS * PER_DIR))
echo "hsmfs browse benchmark: $files files in $DIRS directories ($(nproc) cores)"
printf '  %-52s %8s ms\n' "hsmctl sync (list backend into the catalog)" "$sync_ms"
printf '  %-52s %8s ms\n' "find -ls, local disk (warm)" "$local_ms"
printf '  %-52s %8s ms   ratio %s\n' "find -ls, mount, kernel caches cold" "$cold_ms" "$(ratio "$cold_ms" "$local_ms")"
printf '  %-52s %8s ms   ratio %s\n' "find -ls, mount, kernel caches warm" "$warm_ms" "$(ratio "$warm_ms" "$local_ms")"
printf '  %-52s %8s /s   (local %s /s, ratio %s)\n' "getattr, mount, no kernel cache" "$m_stat" "$l_stat" "$(ratio "$m_stat" "$l_stat")"
printf '  %-52s %8s /s   (local %s /s, ratio %s)\n' "readdir entries, mount, no kernel cache" "$m_readdir" "$l_readdir" "$(ratio "$m_readdir" "$l_readdir")"
