# Shared helpers for the integration tests: they really mount hsmfs (label
# "fuse" in ctest) and drive it with ordinary shell tools, as a user would.
# Each test sources this file; it skips (exit 77) without /dev/fuse.

set -euo pipefail

if [ ! -c /dev/fuse ] || ! command -v fusermount3 >/dev/null; then
  echo "SKIP: /dev/fuse or fusermount3 is missing"
  exit 77
fi

BIN=${HSMFS_BIN:?set HSMFS_BIN to the build directory}/bin
WORK=$(mktemp -d /tmp/hsmfs-it.XXXXXX)
MOUNTS=()
PIDS=()

# Keeps the test's own exit status: a hiccup while cleaning up (a daemon still
# writing its log as rm runs) must not turn a pass into a failure.
cleanup() {
  local rc=$? m p
  for m in "${MOUNTS[@]}"; do fusermount3 -uz "$m" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  if [ -n "${KEEP_WORK:-}" ]; then
    echo "kept $WORK"
  else
    rm -rf "$WORK" 2>/dev/null || { sleep 1; rm -rf "$WORK" || echo "note: could not remove $WORK"; }
  fi
  exit "$rc"
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*" >&2
  if [ -f "$WORK/hsmfs.log" ]; then echo "--- hsmfs.log" >&2; tail -30 "$WORK/hsmfs.log" >&2; fi
  exit 1
}

pass() { echo "ok: $*"; }

assert_eq() {  # actual expected what
  [ "$1" == "$2" ] || fail "$3: expected '$2', got '$1'"
  pass "$3"
}

# config_head FILE [extra [log] lines]: the [catalog], [cache] and [log]
# tables every test's config starts with, all in $WORK; callers append the rest.
config_head() {
  local file=$1 line
  shift
  cat >"$file" <<TOML
[catalog]
path = "$WORK/catalog.db"
[cache]
dir = "$WORK/cache"
[log]
file = "$WORK/hsmfs.log"
TOML
  for line in "$@"; do echo "$line" >>"$file"; done
}

# write_config FILE BACKEND_ROOT [extra toml lines for the backend]
write_config() {
  local file=$1 root=$2
  shift 2
  config_head "$file"
  cat >>"$file" <<TOML
[[backend]]
name = "vault"
type = "posix"
root = "$root"
TOML
  local line
  for line in "$@"; do echo "$line" >>"$file"; done
}

wait_mounted() {  # MOUNTPOINT
  local i
  for i in $(seq 1 200); do
    mountpoint -q "$1" && return 0
    sleep 0.05
  done
  fail "$1 did not get mounted"
}

wait_unmounted() {
  local i
  for i in $(seq 1 200); do
    mountpoint -q "$1" || return 0
    sleep 0.05
  done
  fail "$1 is still mounted"
}

# mount_bg CONFIG MOUNTPOINT [args]: the normal, daemonising way.
mount_bg() {
  local conf=$1 mnt=$2
  shift 2
  mkdir -p "$mnt"
  "$BIN/hsmfs" -c "$conf" "$mnt" "$@" || fail "hsmfs -c $conf $mnt failed"
  MOUNTS+=("$mnt")
  wait_mounted "$mnt"
}

# mount_fg CONFIG MOUNTPOINT: in the foreground; sets FG_PID.
mount_fg() {
  local conf=$1 mnt=$2
  shift 2
  mkdir -p "$mnt"
  ${MOUNT_FG_PREFIX:-} "$BIN/hsmfs" -c "$conf" "$mnt" -f "$@" 2>>"$WORK/fg.log" &
  FG_PID=$!
  PIDS+=("$FG_PID")
  MOUNTS+=("$mnt")
  wait_mounted "$mnt"
}

# A listing that compares two trees: relative path, type, size, mtime (seconds).
tree_listing() {
  (cd "$1" && find . -mindepth 1 -printf '%P|%y|%s|%T@\n' | sed 's/\.[0-9]*$//' | LC_ALL=C sort)
}

# tree_listing without directory sizes (they differ by file system).
file_listing() {
  (cd "$1" && find . -mindepth 1 -printf '%P|%y|%s|%T@\n' |
    awk -F'|' '{ if ($2 == "d") $3 = "-"; sub(/\.[0-9]*$/, "", $4); print $1 "|" $2 "|" $3 "|" $4 }' |
    LC_ALL=C sort)
}

# link_listing DIR: every entry's path, type and symlink target, then the
# symlinks' mtimes (cp -a and tar -x set them with lutimes).
link_listing() {
  (cd "$1" && find . -mindepth 1 -printf '%P|%y|%l\n' | LC_ALL=C sort
    find . -mindepth 1 -type l -printf '%P|%T@\n' | sed 's/\.[0-9]*$//' | LC_ALL=C sort)
}

# same_tree A B WHAT: identical link_listings and (without following
# symlinks) identical contents.
same_tree() {
  local a b
  a=$(link_listing "$1")
  b=$(link_listing "$2")
  [ "$a" == "$b" ] || fail "$3: listings differ:$(diff <(echo "$a") <(echo "$b"))"
  diff -r --no-dereference "$1" "$2" >/dev/null ||
    fail "$3: diff -r --no-dereference: $(diff -r --no-dereference "$1" "$2" 2>&1 | head -5)"
  pass "$3"
}

# wait_exit PID [SECONDS]: waits for a child to exit; sets RC to its status.
wait_exit() {
  local pid=$1 limit=${2:-20} i
  for i in $(seq 1 $((limit * 20))); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  kill -0 "$pid" 2>/dev/null && fail "process $pid did not exit within ${limit}s"
  RC=0
  wait "$pid" || RC=$?
}
