# The hsmctl and hsmfs command-line paths that used to lose data or mislead
# (issues 14 and 15): `put dir/` with a trailing slash, names that can never be
# listed (and fsck repairing them), --wait watching only its own jobs, `-o`
# before the mountpoint, SIGHUP reopening the log, non-UTF-8 and control
# characters in names, and puts that fail, are interrupted or are killed
# never archiving a partial file.
source "$(dirname "$0")/lib.sh"

ROOT=$WORK/vault
mkdir -p "$ROOT/incoming"
CONF=$WORK/hsmfs.toml
config_head "$CONF"
cat >>"$CONF" <<TOML
[archive]
settle = "1s"
max_attempts = 1
[[backend]]
name = "vault"
type = "posix"
root = "$ROOT"
writable = ["incoming"]
TOML
HSMCTL="$BIN/hsmctl -c $CONF"

# state PATH: the DMF code hsmctl ls shows for one file ("" if none).
state() { $HSMCTL ls "$1" 2>/dev/null | awk 'NR == 2 { print $1 }'; }

# --- put of "dir/" (the README's own form) -------------------------------
mkdir -p "$WORK/run42/sub"
echo a >"$WORK/run42/a"
echo b >"$WORK/run42/sub/b"
(cd "$WORK" && $HSMCTL put --wait run42/ vault//incoming/./) >"$WORK/out" 2>&1 ||
  fail "put --wait run42/: $(cat "$WORK/out")"
[ "$(cat "$ROOT/incoming/run42/a")" == a ] && [ "$(cat "$ROOT/incoming/run42/sub/b")" == b ] ||
  fail "run42/ did not land as incoming/run42 on the backend: $(find "$ROOT")"
assert_eq "$(state vault/incoming/run42/a) $(state vault/incoming/run42/sub/b)" "DUL DUL" \
  "put run42/ makes incoming/run42/{a,sub/b}, both dual"
mkdir -p "$WORK/run43"
echo c >"$WORK/run43/c"
(cd "$WORK/run43" && $HSMCTL put --wait . vault/incoming) >"$WORK/out" 2>&1 ||
  fail "put . : $(cat "$WORK/out")"
assert_eq "$(state vault/incoming/run43/c)" DUL "put . names the directory after itself"
rc=0
$HSMCTL put / vault/incoming >"$WORK/out" 2>&1 || rc=$?
assert_eq "$rc" 2 "put / is refused as usage (no empty name): $(cat "$WORK/out")"
[ -z "$($HSMCTL fsck 2>/dev/null | grep -v '^fsck:')" ] || fail "fsck after the puts: $($HSMCTL fsck)"

# --- stage --wait / put --wait watch their own jobs only -----------------
echo broken >"$ROOT/broken.dat"
$HSMCTL sync vault >/dev/null 2>&1
rm "$ROOT/broken.dat"
rc=0
$HSMCTL stage --wait vault/broken.dat >/dev/null 2>&1 || rc=$?
assert_eq "$rc" 1 "an unrelated recall failed (set-up)"
rc=0
$HSMCTL stage --wait vault/incoming/run42 >"$WORK/out" 2>"$WORK/err" || rc=$?
assert_eq "$rc" 0 "stage --wait of online files ignores the unrelated failed recall ($(cat "$WORK/err"))"
grep -q "did not complete" "$WORK/err" && fail "stage --wait reported others' recalls: $(cat "$WORK/err")"
grep -q "2 files already online" "$WORK/out" || fail "stage counts: $(cat "$WORK/out")"
pass "stage --wait counts only its own files: $(head -1 "$WORK/out")"
# An archive job no engine of CONF can run (its backend is only in OTHER):
# put --wait used to wait for it for ever.
OTHER=$WORK/other.toml
cp "$CONF" "$OTHER"
mkdir -p "$WORK/lab/incoming"
printf '[[backend]]\nname = "lab"\ntype = "posix"\nroot = "%s"\nwritable = ["incoming"]\n' \
  "$WORK/lab" >>"$OTHER"
echo stuck >"$WORK/stuck.dat"
"$BIN/hsmctl" -c "$OTHER" put "$WORK/stuck.dat" lab/incoming >/dev/null 2>&1 || fail "put to lab"
mkdir -p "$WORK/run44"
echo d >"$WORK/run44/d"
echo e >"$WORK/run44/e"
rc=0
timeout 60 $HSMCTL put --wait "$WORK/run44" vault/incoming >"$WORK/out" 2>&1 || rc=$?
assert_eq "$rc" 0 "put --wait ignores others' archive jobs ($(tail -1 "$WORK/out"))"
grep -q "archived 2 files" "$WORK/out" || fail "put --wait counts: $(cat "$WORK/out")"

# --- a catalog with an empty-name row (made by old puts of "dir/") -------
mkdir -p "$WORK/run45"
echo x >"$WORK/run45/x"
$HSMCTL put "$WORK/run45" vault/incoming >/dev/null 2>&1 || fail "put run45"
sqlite3 "$WORK/catalog.db" "UPDATE entries SET backend_path = 'incoming//x' WHERE \
  backend_path = 'incoming/run45/x'; UPDATE entries SET name = '', backend_path = 'incoming/' \
  WHERE backend_path = 'incoming/run45';"
MNT=$WORK/mnt
mount_bg "$CONF" "$MNT" -o ro
listing=$(ls "$MNT/vault/incoming") || fail "ls of a directory with an empty-name row failed"
assert_eq "$(echo $listing)" "run42 run43 run44" "a listing with one bad row lists the others"
grep -q "E-NAME-01" "$WORK/hsmfs.log" || fail "the skipped row is not in the log"
pass "the skipped row is logged: $(grep -m1 E-NAME-01 "$WORK/hsmfs.log" | cut -c 25-)"
touch "$MNT/vault/incoming/new" 2>/dev/null && fail "-o ro before the mountpoint was ignored"
pass "hsmfs -c CONF MNT -o ro mounts read-only"
rc=0
$HSMCTL fsck >"$WORK/out" 2>&1 || rc=$?
assert_eq "$rc" 1 "fsck finds the empty-name row"
grep -q 'with the name ""' "$WORK/out" || fail "fsck output: $(cat "$WORK/out")"
$HSMCTL fsck --repair >"$WORK/out" 2>&1 || true
grep -q "repaired: renamed unnamed-" "$WORK/out" || fail "fsck --repair: $(cat "$WORK/out")"
fixed=$(sed -n 's/.*repaired: renamed \(unnamed-[0-9]*\).*/\1/p' "$WORK/out")
pass "fsck --repair renamed it $fixed"
fusermount3 -u "$MNT"
wait_unmounted "$MNT"

# --- -o before the mountpoint, mount(8) style, a bad -o, SIGHUP ----------
"$BIN/hsmfs" -c "$CONF" -o ro "$MNT" || fail "hsmfs -c CONF -o ro MNT"
wait_mounted "$MNT"
touch "$MNT/vault/incoming/new" 2>/dev/null && fail "-o ro (before MNT) was ignored"
pass "hsmfs -c CONF -o ro MNT mounts read-only"
fusermount3 -u "$MNT"
wait_unmounted "$MNT"
if [ -x /sbin/mount.fuse3 ] && [ "$(id -u)" == 0 ]; then
  # As fstab's "hsmfs#CONF MNT fuse ro" line: mount.fuse3 runs "hsmfs CONF MNT -o ro,dev,suid".
  mount -t fuse "$BIN/hsmfs#$CONF" "$MNT" -o ro || fail "mount -t fuse hsmfs#CONF"
  wait_mounted "$MNT"
  touch "$MNT/vault/incoming/new" 2>/dev/null && fail "mount -t fuse -o ro was ignored"
  [ -d "$MNT/vault/incoming/run42" ] || fail "mount -t fuse shows nothing"
  pass "mount -t fuse hsmfs#CONF MNT -o ro (mount.fuse3 passes CONF MNT -o ro,dev,suid)"
  fusermount3 -u "$MNT"
  wait_unmounted "$MNT"
fi
rc=0
"$BIN/hsmfs" -c "$CONF" "$MNT" -o bogusopt >"$WORK/out" 2>"$WORK/err" || rc=$?
assert_eq "$rc" 2 "-o bogusopt exits 2"
assert_eq "$(wc -l <"$WORK/err")" 1 "-o bogusopt gives one line: $(cat "$WORK/err")"
grep -q "bogusopt" "$WORK/err" || fail "the line does not name the option"
mountpoint -q "$MNT" && fail "-o bogusopt mounted"

mount_bg "$CONF" "$MNT"
pid=$($HSMCTL daemon status | sed -n 's/^running: .*pid \([0-9]*\).*/\1/p')
[ -n "$pid" ] || fail "no pid in hsmctl daemon status"
mv "$WORK/hsmfs.log" "$WORK/hsmfs.log.1"
kill -HUP "$pid"
for i in $(seq 1 200); do
  grep -qs "reopened the log" "$WORK/hsmfs.log" && break
  sleep 0.05
done
grep -qs "reopened the log" "$WORK/hsmfs.log" || fail "no new log file after SIGHUP"
mountpoint -q "$MNT" || fail "SIGHUP unmounted the archive"
kill -0 "$pid" || fail "SIGHUP stopped hsmfs"
echo after-hup >"$MNT/vault/incoming/after-hup" || fail "the mount does not work after SIGHUP"
[ "$(cat "$MNT/vault/incoming/after-hup")" == after-hup ] || fail "read after SIGHUP"
[ -d "$MNT/vault/incoming/$fixed" ] || fail "the repaired directory is not listed"
pass "SIGHUP reopens the log (new file: $(wc -l <"$WORK/hsmfs.log") lines) and keeps the mount"
for i in $(seq 1 400); do
  [ "$(state "vault/incoming/$fixed/x")" == DUL ] && break
  sleep 0.05
done
assert_eq "$(state "vault/incoming/$fixed/x") $(cat "$ROOT/incoming/$fixed/x")" "DUL x" \
  "the repaired file is archived under its new name"
fusermount3 -u "$MNT"
wait_unmounted "$MNT"

# hsmctl daemon too: SIGHUP reopens its log and it goes on.
$HSMCTL daemon start >/dev/null || fail "hsmctl daemon start"
pid=$($HSMCTL daemon status | sed -n 's/^running: .*pid \([0-9]*\).*/\1/p')
[ -n "$pid" ] || fail "no pid for the daemon"
mv "$WORK/hsmfs.log" "$WORK/hsmfs.log.2"
kill -HUP "$pid"
for i in $(seq 1 200); do
  grep -qs "reopened the log" "$WORK/hsmfs.log" && break
  sleep 0.05
done
grep -qs "reopened the log" "$WORK/hsmfs.log" || fail "no new daemon log after SIGHUP"
$HSMCTL daemon status >/dev/null || fail "SIGHUP stopped the daemon"
$HSMCTL daemon stop >/dev/null || fail "hsmctl daemon stop"
pass "SIGHUP reopens hsmctl daemon's log and it keeps running"

# --- names: Latin-1 through --json, control characters in ls ------------
latin1=$'caf\xe9.dat'
echo l >"$ROOT/incoming/$latin1"
echo n >"$ROOT/incoming/"$'new\nline'
echo e >"$ROOT/incoming/"$'esc\e[31mred'
$HSMCTL sync vault >/dev/null 2>&1
$HSMCTL ls --json vault/incoming >"$WORK/ls.json" || fail "ls --json with a Latin-1 name"
$HSMCTL stage vault/incoming/"$latin1" >/dev/null 2>&1 || fail "stage of the Latin-1 name"
$HSMCTL jobs --json >"$WORK/jobs.json" || fail "jobs --json with a Latin-1 name"
/usr/bin/python3 - "$WORK/ls.json" "$WORK/jobs.json" <<'PY' || fail "the --json output"
import json, os, sys
want = b"vault/incoming/caf\xe9.dat"
for f in sys.argv[1:]:
    with open(f, encoding="utf-8") as fh:
        rows = json.load(fh)
    paths = [os.fsencode(r["path"]) for r in rows]
    assert want in paths, (f, paths)
    assert b"vault/incoming/new\nline" in paths or f.endswith("jobs.json"), paths
print("  both --json outputs parse; os.fsencode gives back", want)
PY
pass "a Latin-1 name through ls --json and jobs --json (surrogate escapes)"
$HSMCTL ls vault/incoming >"$WORK/ls.txt" || fail "hsmctl ls"
grep -qF 'vault/incoming/new\nline' "$WORK/ls.txt" || fail "newline not escaped: $(cat "$WORK/ls.txt")"
grep -qF 'vault/incoming/esc\e[31mred' "$WORK/ls.txt" || fail "ESC not escaped"
grep -qF 'vault/incoming/caf\351.dat' "$WORK/ls.txt" || fail "Latin-1 byte not escaped"
LC_ALL=C grep -q $'\e' "$WORK/ls.txt" && fail "hsmctl ls printed a raw escape character"
pass "hsmctl ls escapes control characters like ls -b"

# --- partial puts are never archived -------------------------------------
TINY=$WORK/tiny.toml
cat >"$TINY" <<TOML
[catalog]
path = "$WORK/tiny.db"
[cache]
dir = "$WORK/tiny-cache"
size = "1MiB"
write_wait = "1s"
[log]
file = "$WORK/tiny.log"
[archive]
settle = "1s"
[[backend]]
name = "vault"
type = "posix"
root = "$ROOT"
writable = ["incoming"]
TOML
head -c 3145728 /dev/urandom >"$WORK/big.bin"
rc=0
"$BIN/hsmctl" -c "$TINY" put --wait "$WORK/big.bin" vault/incoming >"$WORK/out" 2>&1 || rc=$?
assert_eq "$rc" 1 "put into a full cache fails ($(grep -m1 -v '^put' "$WORK/out"))"
echo small >"$WORK/small.txt"  # the next put's engine would archive any leftover
"$BIN/hsmctl" -c "$TINY" put --wait "$WORK/small.txt" vault/incoming >/dev/null 2>&1 ||
  fail "a put after the failed one"
[ -e "$ROOT/incoming/big.bin" ] && fail "the truncated big.bin was archived"
"$BIN/hsmctl" -c "$TINY" ls vault/incoming/big.bin >/dev/null 2>&1 && fail "big.bin left in the catalog"
pass "a put that fills the cache leaves nothing, and nothing is archived"
mkdir -p "$WORK/v1" "$WORK/v2"
echo "version 1" >"$WORK/v1/data.bin"
"$BIN/hsmctl" -c "$TINY" put --wait "$WORK/v1/data.bin" vault/incoming >/dev/null 2>&1 || fail "put v1"
head -c 3145728 /dev/urandom >"$WORK/v2/data.bin"
rc=0
"$BIN/hsmctl" -c "$TINY" put --force "$WORK/v2/data.bin" vault/incoming >/dev/null 2>&1 || rc=$?
assert_eq "$rc" 1 "put --force of a version too big for the cache fails"
assert_eq "$("$BIN/hsmctl" -c "$TINY" ls vault/incoming/data.bin | awk 'NR == 2 { print $1, $2 }') $(cat "$ROOT/incoming/data.bin")" \
  "OFL 10 version 1" "a failed put --force leaves the archived version, offline"

# stream PATH: a FIFO that yields 1 MiB, then stays open (a put mid-file).
stream() {
  mkfifo "$1"
  (head -c 1048576 /dev/zero; exec sleep 60) >"$1" &
  PIDS+=($!)
  WRITER=$!
}
# wait_entry PATH: until the catalog has it.
wait_entry() {
  for i in $(seq 1 400); do
    [ -n "$(state "$1")" ] && return 0
    sleep 0.05
  done
  fail "$1 never appeared"
}
stream "$WORK/sig.bin"
$HSMCTL put "$WORK/sig.bin" vault/incoming >"$WORK/out" 2>&1 &
PUT=$!
wait_entry vault/incoming/sig.bin
assert_eq "$(state vault/incoming/sig.bin)" ERR "a file being put is marked incomplete"
kill -INT "$PUT"
wait_exit "$PUT" 30
assert_eq "$RC" 130 "put exits 130 on Ctrl-C"
kill "$WRITER" 2>/dev/null || true
$HSMCTL put --wait "$WORK/small.txt" vault/incoming >/dev/null 2>&1 || fail "put after Ctrl-C"
[ -e "$ROOT/incoming/sig.bin" ] && fail "the interrupted sig.bin was archived"
[ -n "$(state vault/incoming/sig.bin)" ] && fail "the interrupted sig.bin is still listed"
pass "an interrupted put leaves nothing and archives nothing"

stream "$WORK/kill.bin"
$HSMCTL put "$WORK/kill.bin" vault/incoming >/dev/null 2>&1 &
PUT=$!
wait_entry vault/incoming/kill.bin
kill -9 "$PUT"
wait_exit "$PUT" 30
kill "$WRITER" 2>/dev/null || true
echo again >"$WORK/again.txt"
$HSMCTL put --wait "$WORK/again.txt" vault/incoming >/dev/null 2>&1 || fail "put after kill -9"
[ -e "$ROOT/incoming/kill.bin" ] && fail "the killed put's kill.bin was archived"
assert_eq "$(state vault/incoming/kill.bin)" ERR "a killed put's file stays marked incomplete"
rc=0
$HSMCTL fsck >"$WORK/out" 2>&1 || rc=$?
grep -q "kill.bin: half copied in by an hsmctl put that did not finish" "$WORK/out" ||
  fail "fsck after kill -9: $(cat "$WORK/out")"
$HSMCTL fsck --repair >"$WORK/out" 2>&1 || true
grep -q "repaired: removed" "$WORK/out" || fail "fsck --repair after kill -9: $(cat "$WORK/out")"
[ -n "$(state vault/incoming/kill.bin)" ] && fail "fsck --repair left kill.bin"
pass "a killed put's file is never archived; fsck finds it and --repair removes it"
# The next put of the same name clears a leftover by itself (no --force).
stream "$WORK/kill2.bin"
$HSMCTL put "$WORK/kill2.bin" vault/incoming >/dev/null 2>&1 &
PUT=$!
wait_entry vault/incoming/kill2.bin
kill -9 "$PUT"
wait_exit "$PUT" 30
kill "$WRITER" 2>/dev/null || true
rm "$WORK/kill2.bin"
echo whole >"$WORK/kill2.bin"
$HSMCTL put --wait "$WORK/kill2.bin" vault/incoming >"$WORK/out" 2>&1 ||
  fail "the next put of kill2.bin: $(cat "$WORK/out")"
assert_eq "$(state vault/incoming/kill2.bin) $(cat "$ROOT/incoming/kill2.bin")" "DUL whole" \
  "the next put of the name replaces a killed put's leftover"
