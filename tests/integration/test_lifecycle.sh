# Starting and stopping: foreground SIGTERM, fusermount3 -u, and mount(8) with
# the fuse.hsmfs type from an fstab line.
source "$(dirname "$0")/lib.sh"

ROOT=$WORK/vault
mkdir -p "$ROOT/dir"
echo data >"$ROOT/dir/file"
write_config "$WORK/hsmfs.toml" "$ROOT"
MNT=$WORK/mnt

mount_fg "$WORK/hsmfs.toml" "$MNT"
assert_eq "$(ls "$MNT/vault/dir")" "file" "foreground mount serves"
kill -TERM "$FG_PID"
wait_exit "$FG_PID"
assert_eq "$RC" "0" "SIGTERM: exit status"
mountpoint -q "$MNT" && fail "SIGTERM leaves the mountpoint unmounted"
pass "SIGTERM unmounts"

mount_fg "$WORK/hsmfs.toml" "$MNT"
fusermount3 -u "$MNT"
wait_exit "$FG_PID"
assert_eq "$RC" "0" "fusermount3 -u: exit status"

# A non-interactive shell starts background jobs with SIGINT ignored; a user's
# terminal does not, so undo that here.
MOUNT_FG_PREFIX="env --default-signal=INT" mount_fg "$WORK/hsmfs.toml" "$MNT"
kill -INT "$FG_PID"
wait_exit "$FG_PID"
assert_eq "$RC" "0" "SIGINT: exit status"
wait_unmounted "$MNT"

# fstab: mount(8) runs mount.fuse3, which runs `hsmfs SOURCE MOUNTPOINT -o ...`
# with a fixed PATH (/usr/local/sbin:...:/bin). Installed hsmfs is found as type
# fuse.hsmfs; an uninstalled build is named in the source as PROGRAM#CONFIG.
cat >"$WORK/fstab" <<FSTAB
$BIN/hsmfs#$WORK/hsmfs.toml  $MNT  fuse  defaults,_netdev,nofail,allow_other,entry_timeout=5s,log_level=debug  0  0
FSTAB
mount -T "$WORK/fstab" "$MNT" 2>"$WORK/mount.err" || fail "mount from fstab: $(cat "$WORK/mount.err")"
MOUNTS+=("$MNT")
wait_mounted "$MNT"
assert_eq "$(ls "$MNT/vault/dir")" "file" "mount -T fstab"
grep " $MNT " /proc/self/mountinfo | grep -q "fuse.hsmfs .*allow_other" ||
  fail "allow_other reached the kernel: $(grep " $MNT " /proc/self/mountinfo)"
pass "fstab options reach FUSE"
ls "$MNT/vault/no-such-file" 2>/dev/null || true  # a failed lookup is logged at debug
for i in $(seq 1 60); do grep -q " debug " "$WORK/hsmfs.log" && break; sleep 0.1; done
grep -q " debug " "$WORK/hsmfs.log" || fail "log_level=debug from fstab takes effect"
pass "hsmfs options in fstab take effect"
umount "$MNT"
wait_unmounted "$MNT"

mount -t fuse "$BIN/hsmfs#$WORK/hsmfs.toml" "$MNT" -o ro || fail "mount -t fuse PROGRAM#CONFIG"
wait_mounted "$MNT"
assert_eq "$(ls "$MNT/vault")" "dir" "mount -t fuse PROGRAM#CONFIG MOUNTPOINT"
umount "$MNT"
wait_unmounted "$MNT"

if command -v hsmfs >/dev/null && [ "$(command -v hsmfs)" == /usr/local/bin/hsmfs ]; then
  mount -t fuse.hsmfs "$WORK/hsmfs.toml" "$MNT" || fail "mount -t fuse.hsmfs (installed hsmfs)"
  wait_mounted "$MNT"
  umount "$MNT"
  pass "mount -t fuse.hsmfs with the installed hsmfs"
fi
