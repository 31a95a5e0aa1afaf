# 100,000 files in 1,000 directories: find sees every one, with the backend's
# sizes and mtimes, all offline, using no local disk.
source "$(dirname "$0")/lib.sh"

DIRS=${HSMFS_SCALE_DIRS:-1000}
PER_DIR=${HSMFS_SCALE_FILES:-100}
TOTAL=$((DIRS * PER_DIR))
ROOT=$WORK/vault
/usr/bin/python3 - "$ROOT" "$DIRS" "$PER_DIR" <<'PY'
import os, sys
root, dirs, per = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for d in range(dirs):
    path = os.path.join(root, "run%02d" % (d // 100), "obs%05d" % d)
    os.makedirs(path)
    for f in range(per):
        name = os.path.join(path, "frame_%04d.fits" % f)
        with open(name, "wb") as fh:
            fh.truncate((d * 7919 + f * 104729) % 65536)  # sparse: sizes without disk
        os.utime(name, ns=(1_600_000_000_000_000_000 + d * 1_000_003 + f * 999_983,) * 2)
PY
write_config "$WORK/hsmfs.toml" "$ROOT"
MNT=$WORK/mnt
mount_bg "$WORK/hsmfs.toml" "$MNT"

start=$(date +%s%N)
count=$(find "$MNT" -type f | wc -l)
assert_eq "$count" "$TOTAL" "find -type f counts every file"
echo "first find (lists $DIRS directories from the backend): $(( ($(date +%s%N) - start) / 1000000 )) ms"

start=$(date +%s%N)
assert_eq "$(file_listing "$MNT/vault")" "$(file_listing "$ROOT" | grep -v '^\.hsmfs-root|')" \
  "sizes and mtimes of all $TOTAL files equal the backend's"
echo "find -printf over mount and backend: $(( ($(date +%s%N) - start) / 1000000 )) ms"

assert_eq "$(getfattr --absolute-names --only-values -n user.hsm.state \
  "$MNT/vault/run03/obs00345/frame_0042.fits")" "offline" "user.hsm.state is offline"
assert_eq "$(du -s "$MNT" | cut -f1)" "0" "du -s of the offline tree"
