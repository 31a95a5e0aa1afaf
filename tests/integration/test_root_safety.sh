# Issue 15 items 1, 2, 5 and 6 (posix side): a backend root that is briefly an
# empty directory costs no data; a listing that would remove most of a
# directory waits for confirmation; the cache keeps files no entry owns in
# lost+found; symlinks in the backend are never followed; long and
# temporary-looking names are archived; fsck removes a killed Put's temporary;
# a missing root is warned about at mount time while the other backend works.
source "$(dirname "$0")/lib.sh"

ROOT=$WORK/vault
mkdir -p "$ROOT/incoming/sub" "$ROOT/esc"
for i in $(seq -w 1 12); do echo "old $i" >"$ROOT/incoming/old$i"; done
head -c 4096 /dev/zero >"$ROOT/esc/f"
head -c 4096 /dev/urandom >"$WORK/secret"
mkdir -p "$WORK/elsewhere"
CONF=$WORK/hsmfs.toml
config_head "$CONF" '[archive]' 'settle = "200ms"' 'retry_delay = "200ms"' 'max_attempts = 2'
cat >>"$CONF" <<TOML
[[backend]]
name = "vault"
type = "posix"
root = "$ROOT"
writable = ["incoming"]
list_ttl = "1h"
[[backend]]
name = "ghost"
type = "posix"
root = "$WORK/nope"
TOML
HSMCTL="$BIN/hsmctl -c $CONF"
MNT=$WORK/mnt

state() { getfattr --only-values -n user.hsm.state "$1" 2>/dev/null || true; }
error_of() { getfattr --only-values -n user.hsm.error "$1" 2>/dev/null || true; }
wait_state() {  # FILE STATE SECONDS
  local i
  for i in $(seq 1 $(($3 * 10))); do
    [ "$(state "$1")" == "$2" ] && return 0
    sleep 0.1
  done
  fail "$1: state '$(state "$1")', expected $2 within $3 s"
}

# --- a missing root: warned at mount time, the other backend mounts.
mkdir -p "$MNT"
"$BIN/hsmfs" -c "$CONF" "$MNT" 2>"$WORK/mount.err" || fail "hsmfs: $(cat "$WORK/mount.err")"
MOUNTS+=("$MNT")
wait_mounted "$MNT"
grep -q "warning: backend ghost: root $WORK/nope: No such file or directory" "$WORK/mount.err" ||
  fail "mount-time warning: $(cat "$WORK/mount.err")"
pass "a missing backend root is warned about at mount time"
for i in $(seq 1 100); do [ -n "$(error_of "$MNT/ghost")" ] && break; sleep 0.1; done
case "$(error_of "$MNT/ghost")" in
  *E-ROOT-02*"not reachable"*) pass "user.hsm.error of the missing backend says why" ;;
  *) fail "user.hsm.error of ghost: '$(error_of "$MNT/ghost")'" ;;
esac
ls -lR "$MNT/vault" >/dev/null || fail "ls -lR of the working backend"
[ -f "$ROOT/.hsmfs-root" ] || fail "first use writes $ROOT/.hsmfs-root"
[ "$(ls "$MNT/vault")" == "$(printf 'esc\nincoming')" ] || fail "the marker is not listed: $(ls -a "$MNT/vault")"
pass "first use marks the root; the marker is not listed"

# --- long and temporary-looking names are archived and stay.
long=$(printf 'n%.0s' $(seq 1 250))
echo long >"$MNT/vault/incoming/$long"
echo tmp >"$MNT/vault/incoming/.x.hsmfs-put-abc"
wait_state "$MNT/vault/incoming/$long" dual 30
[ "$(cat "$ROOT/incoming/$long")" == long ] || fail "the 250-byte name on the backend"
pass "a 250-byte name is archived"
wait_state "$MNT/vault/incoming/.x.hsmfs-put-abc" dual 30
$HSMCTL sync vault/incoming 2>"$WORK/sync.err" || fail "sync: $(cat "$WORK/sync.err")"
[ "$(cat "$MNT/vault/incoming/.x.hsmfs-put-abc")" == tmp ] || fail "the temporary-looking name vanished"
pass "a file named like an old temporary survives archiving and a sync"

# --- the root is briefly an empty directory (an export not mounted yet).
mv "$ROOT" "$ROOT.real"
mkdir "$ROOT"
head -c 1M /dev/urandom >"$WORK/important.bin"
cp "$WORK/important.bin" "$MNT/vault/incoming/important.bin"
for i in $(seq 1 100); do
  grep -q "E-ROOT-01" "$WORK/hsmfs.log" 2>/dev/null && break
  sleep 0.1
done
grep -q "E-ROOT-01: backend vault" "$WORK/hsmfs.log" || fail "the log names the wrong root"
pass "the log says the root is not the catalog's"
case "$(error_of "$MNT/vault")" in
  *E-ROOT-01*) pass "user.hsm.error on the backend directory while the root is wrong" ;;
  *) fail "user.hsm.error of vault: '$(error_of "$MNT/vault")'" ;;
esac
sleep 2  # settle (200 ms) and several retry rounds: nothing may be archived meanwhile
st=$(state "$MNT/vault/incoming/important.bin")
case "$st" in online | queued | archiving) ;; *) fail "important.bin is '$st' while the root is wrong" ;; esac
[ -z "$(ls -A "$ROOT")" ] || fail "something was written into the wrong root: $(ls -A "$ROOT")"
pass "nothing is archived into the empty directory (important.bin stays $st)"
if $HSMCTL sync vault 2>"$WORK/sync.err"; then fail "sync of the wrong root must fail"; fi
grep -q "E-ROOT-01" "$WORK/sync.err" || fail "sync error: $(cat "$WORK/sync.err")"
[ "$(ls "$MNT/vault/incoming" | wc -l)" -ge 14 ] || fail "the listing changed: $(ls "$MNT/vault/incoming")"
pass "hsmctl sync refuses the wrong root and the tree stays"
rmdir "$ROOT"
mv "$ROOT.real" "$ROOT"
wait_state "$MNT/vault/incoming/important.bin" dual 30
cmp "$ROOT/incoming/important.bin" "$WORK/important.bin" || fail "the archived copy differs"
[ -z "$(error_of "$MNT/vault")" ] || fail "user.hsm.error stays: $(error_of "$MNT/vault")"
pass "once the real root is back the file is archived there and the error clears"
$HSMCTL sync vault 2>"$WORK/sync.err" || fail "sync: $(cat "$WORK/sync.err")"
cmp "$MNT/vault/incoming/important.bin" "$WORK/important.bin" || fail "important.bin after sync"
pass "nothing lost"

# --- a listing that would remove most of a directory is suspect.
n_before=$(ls "$MNT/vault/incoming" | wc -l)
for i in $(seq -w 1 10); do rm "$ROOT/incoming/old$i"; done
if $HSMCTL sync vault/incoming 2>"$WORK/sync.err"; then fail "a suspect sync must fail"; fi
grep -q "E-LIST-03.*hsmctl sync --force vault/incoming" "$WORK/sync.err" ||
  fail "suspect sync error: $(cat "$WORK/sync.err")"
assert_eq "$(ls "$MNT/vault/incoming" | wc -l)" "$n_before" "a suspect listing removes nothing"
$HSMCTL sync --force vault/incoming 2>"$WORK/sync.err" || fail "sync --force: $(cat "$WORK/sync.err")"
assert_eq "$(ls "$MNT/vault/incoming" | wc -l)" "$((n_before - 10))" "sync --force confirms it"

# --- symlinks in the backend are never followed.
cat "$MNT/vault/esc/f" >/dev/null  # listed and known: 4096 bytes
$HSMCTL release "$MNT/vault/esc/f" >/dev/null 2>&1 || true
ln -sf "$WORK/secret" "$ROOT/esc/f"
if cat "$MNT/vault/esc/f" >"$WORK/got" 2>/dev/null && cmp -s "$WORK/got" "$WORK/secret"; then
  fail "a file swapped for a symlink serves what it points to"
fi
cmp -s "$WORK/got" "$WORK/secret" && fail "the symlink's target was read"
pass "a file swapped for a symlink is not served"
rm -r "$ROOT/incoming/sub"
ln -s "$WORK/elsewhere" "$ROOT/incoming/sub"
echo x >"$MNT/vault/incoming/sub/y"
wait_state "$MNT/vault/incoming/sub/y" failed 30
[ -z "$(ls -A "$WORK/elsewhere")" ] || fail "archived through a symlink into $WORK/elsewhere"
case "$(error_of "$MNT/vault/incoming/sub/y")" in
  *symlink*) pass "archiving through a symlinked directory fails, nothing written outside" ;;
  *) fail "error of sub/y: '$(error_of "$MNT/vault/incoming/sub/y")'" ;;
esac
rm "$ROOT/incoming/sub"

# --- a Put killed mid-copy: fsck finds and removes its temporary.
fusermount3 -u "$MNT"
wait_unmounted "$MNT"
for i in $(seq 1 100); do [ -z "$($BIN/hsmctl -c "$CONF" daemon status 2>/dev/null | grep -i running || true)" ] && break; sleep 0.1; done
mount_fg "$CONF" "$MNT"
head -c 200M /dev/zero >"$MNT/vault/incoming/big.bin"
killed=
for i in $(seq 1 3000); do
  if [ -n "$(ls -A "$ROOT/.hsmfs-tmp" 2>/dev/null)" ]; then
    kill -9 "$FG_PID"
    killed=1
    break
  fi
  sleep 0.01
done
[ -n "$killed" ] || fail "no temporary appeared in $ROOT/.hsmfs-tmp while big.bin was archived"
wait_exit "$FG_PID" 20
fusermount3 -uz "$MNT" 2>/dev/null || true
[ -n "$(ls -A "$ROOT/.hsmfs-tmp")" ] || fail "the killed Put left no temporary to find"
$HSMCTL fsck >"$WORK/fsck.out" 2>&1 || true
grep -q "temporary file of a killed archive copy.*removed" "$WORK/fsck.out" ||
  fail "fsck output: $(cat "$WORK/fsck.out")"
[ -z "$(ls -A "$ROOT/.hsmfs-tmp")" ] || fail "fsck left $(ls -A "$ROOT/.hsmfs-tmp")"
pass "fsck finds and removes a killed Put's temporary"

# --- a cache file no entry owns goes to lost+found at start-up, fsck shows it.
mkdir -p "$WORK/cache/data/3f"
echo "precious" >"$WORK/cache/data/3f/999999"
mount_bg "$CONF" "$MNT"
[ "$(cat "$WORK/cache/lost+found/999999" 2>/dev/null)" == precious ] ||
  fail "the unowned cache file is not in lost+found: $(ls -R "$WORK/cache" | head -20)"
$HSMCTL fsck >"$WORK/fsck.out" 2>&1 && fail "fsck must report lost+found"
grep -q "lost+found/999999: in the cache's lost+found" "$WORK/fsck.out" ||
  fail "fsck output: $(cat "$WORK/fsck.out")"
pass "an unowned cache file is kept in lost+found and reported by fsck"
cmp "$MNT/vault/incoming/important.bin" "$WORK/important.bin" || fail "important.bin after remount"
pass "important.bin survives a remount"

# --- a root restored without its marker is refused until the admin adopts it.
mv "$ROOT" "$ROOT.old"
mkdir "$ROOT"
cp -a "$ROOT.old/incoming" "$ROOT.old/esc" "$ROOT/"
mkdir "$ROOT/incoming/sub"  # where the failed y of the symlink check waits
if $HSMCTL sync vault 2>"$WORK/sync.err"; then fail "sync of an unmarked restored root must fail"; fi
grep -q "E-ROOT-01" "$WORK/sync.err" || fail "sync error: $(cat "$WORK/sync.err")"
$HSMCTL init-root vault >"$WORK/init.out" 2>&1 || fail "hsmctl init-root: $(cat "$WORK/init.out")"
cmp "$ROOT/.hsmfs-root" "$ROOT.old/.hsmfs-root" || fail "init-root writes the catalog's id"
$HSMCTL sync vault 2>"$WORK/sync.err" || fail "sync after init-root: $(cat "$WORK/sync.err")"
cmp "$MNT/vault/incoming/important.bin" "$WORK/important.bin" || fail "important.bin after init-root"
pass "hsmctl init-root adopts a restored root"
