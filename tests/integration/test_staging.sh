# Reads trigger staging, through a real mount: an open of an offline file
# recalls it into the cache and waits; concurrent opens share one recall;
# O_NONBLOCK, signals, failures and timeouts; kill -9 and restart; the cache
# limit; indexers that must not recall; the stage/release xattrs and hsmctl
# stage, jobs, cancel and retry. Each part has its own config, catalog, cache
# and backend root under $WORK/PART, mounted on $WORK/PART/mnt.
source "$(dirname "$0")/lib.sh"

# new_part NAME CACHE_LINES STAGE_LINES BACKEND_LINES: writes the config of one
# part; sets P, CONF, ROOT (the backend "vault"), MNT, CACHE. The log of the
# current part is linked to $WORK/hsmfs.log, which fail() shows.
new_part() {
  P=$WORK/$1 CONF=$WORK/$1/hsmfs.toml ROOT=$WORK/$1/vault MNT=$WORK/$1/mnt CACHE=$WORK/$1/cache
  mkdir -p "$ROOT" "$MNT"
  cat >"$CONF" <<TOML
[catalog]
path = "$P/catalog.db"
[cache]
dir = "$CACHE"
$2
[stage]
$3
[log]
file = "$P/hsmfs.log"
[[backend]]
name = "vault"
type = "posix"
root = "$ROOT"
$4
TOML
  ln -sfn "$P/hsmfs.log" "$WORK/hsmfs.log"
}

# unmount_part: fusermount3 -u, then the daemon must exit.
unmount_part() {
  local i
  fusermount3 -u "$MNT" || fail "fusermount3 -u $MNT"
  wait_unmounted "$MNT"
  for i in $(seq 1 300); do
    pgrep -f "hsmfs -c $CONF" >/dev/null || return 0
    sleep 0.05
  done
  fail "hsmfs for $CONF did not exit within 15s of fusermount3 -u"
}

hsmctl() { "$BIN/hsmctl" -c "$CONF" "$@"; }
state() { getfattr --absolute-names --only-values -n user.hsm.state "$1" 2>/dev/null || echo "?"; }
md5() { md5sum "$1" | cut -c1-32; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# wait_state FILE STATE SECONDS
wait_state() {
  local i
  for i in $(seq 1 $(($3 * 20))); do
    [ "$(state "$1")" == "$2" ] && return 0
    sleep 0.05
  done
  fail "$1 did not become $2 within $3s (state: $(state "$1"))"
}

# recalls_logged CATALOG_PATH: "recalled PATH (...)" lines in the part's log.
recalls_logged() { grep -c "recalled $1 (" "$P/hsmfs.log" || true; }

# count_jobs CATALOG_PATH [STATE...]: jobs for one file (in any of the states).
count_jobs() {
  hsmctl jobs --all --json | /usr/bin/python3 -c '
import json, sys
path, states = sys.argv[1], sys.argv[2:]
print(sum(1 for j in json.load(sys.stdin) if j["path"] == path and (not states or j["state"] in states)))
' "$@"
}

# job_field CATALOG_PATH FIELD: FIELD of the newest job for the file.
job_field() {
  hsmctl jobs --all --json | /usr/bin/python3 -c '
import json, sys
jobs = [j for j in json.load(sys.stdin) if j["path"] == sys.argv[1]]
print(max(jobs, key=lambda j: j["id"]).get(sys.argv[2]) if jobs else "no job")
' "$@"
}

# open.py PATH [nonblock|sigdfl|sighandler]: opens PATH read-only and reads
# it; prints "ok MD5 SECONDS" or "ERRNO_NAME SECONDS" (seconds of the open).
# sigdfl: SIGINT kills; sighandler: SIGINT runs a handler that aborts the open.
cat >"$WORK/open.py" <<'PY'
import errno, hashlib, os, signal, sys, time
class Interrupted(Exception):
    pass
def on_sigint(sig, frame):
    raise Interrupted()
path, mode = sys.argv[1], (sys.argv[2] if len(sys.argv) > 2 else "")
if mode == "sigdfl":
    signal.signal(signal.SIGINT, signal.SIG_DFL)
elif mode == "sighandler":
    signal.signal(signal.SIGINT, on_sigint)
print("ready", flush=True, file=sys.stderr)
t = time.perf_counter()
try:
    fd = os.open(path, os.O_RDONLY | (os.O_NONBLOCK if mode == "nonblock" else 0))
except Interrupted:
    print("EINTR %.3f" % (time.perf_counter() - t)); sys.exit(0)
except OSError as e:
    print("%s %.3f" % (errno.errorcode.get(e.errno, e.errno), time.perf_counter() - t)); sys.exit(0)
elapsed = time.perf_counter() - t
h = hashlib.md5()
while True:
    b = os.read(fd, 1 << 20)
    if not b:
        break
    h.update(b)
print("ok %s %.3f" % (h.hexdigest(), elapsed))
PY
open_py() { /usr/bin/python3 "$WORK/open.py" "$@" 2>/dev/null; }
# slower_than SECONDS LIMIT: true when SECONDS > LIMIT (decimals).
slower_than() { /usr/bin/python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) > float(sys.argv[2]) else 1)' "$1" "$2"; }

T_START=$(now_ms)

# --- a) cat recalls a file: offline -> staging -> dual, exact bytes, one recall
new_part a "" "" 'stage_delay = "2s"'
head -c 1048577 /dev/urandom >"$ROOT/a.dat"
mount_bg "$CONF" "$MNT"
F=$MNT/vault/a.dat
assert_eq "$(state "$F")" "offline" "a: a file only on the backend is offline"
assert_eq "$(stat -c %b "$F")" "0" "a: an offline file has no blocks"
cat "$F" >"$P/out" &
reader=$!
wait_state "$F" staging 5
pass "a: state is staging while the recall runs"
qpos=$(getfattr --absolute-names --only-values -n user.hsm.queue_position "$F" 2>/dev/null) ||
  fail "a: user.hsm.queue_position is readable while staging"
eta=$(getfattr --absolute-names --only-values -n user.hsm.eta "$F" 2>/dev/null) ||
  fail "a: user.hsm.eta is readable while staging"
[[ "$qpos" =~ ^[0-9]+$ ]] || fail "a: queue_position is a number: '$qpos'"
[ -n "$eta" ] || fail "a: eta is not empty"
pass "a: user.hsm.queue_position ($qpos) and user.hsm.eta ($eta) while staging"
kill -0 "$reader" 2>/dev/null || fail "a: cat returned before the 2s recall was done"
pass "a: cat waits for the recall"
wait_exit "$reader" 30
assert_eq "$RC" "0" "a: cat of an offline file succeeds"
assert_eq "$(md5 "$P/out")" "$(md5 "$ROOT/a.dat")" "a: cat returns the exact bytes of the backend file"
assert_eq "$(state "$F")" "dual" "a: after the recall the state is dual"
[ "$(stat -c %b "$F")" -gt 0 ] || fail "a: a dual file has blocks (st_blocks $(stat -c %b "$F"))"
pass "a: a dual file has st_blocks > 0"
t=$(now_ms)
cat "$F" >"$P/out2" || fail "a: the second cat"
assert_eq "$(md5 "$P/out2")" "$(md5 "$ROOT/a.dat")" "a: a second cat returns the same bytes"
[ $(($(now_ms) - t)) -lt 1500 ] || fail "a: the second cat took $(($(now_ms) - t)) ms (stage_delay is 2s)"
assert_eq "$(recalls_logged vault/a.dat)" "1" "a: the second cat does not recall again (one 'recalled' log line)"
assert_eq "$(count_jobs vault/a.dat)" "1" "a: one recall job in hsmctl jobs"
unmount_part

# --- b) 20 concurrent readers of one offline file share one recall
new_part b "" "" 'stage_delay = "1s"'
head -c 2000000 /dev/urandom >"$ROOT/b.dat"
mount_bg "$CONF" "$MNT"
F=$MNT/vault/b.dat
stat "$F" >/dev/null
readers=()
for i in $(seq 1 20); do
  md5sum "$F" >"$P/md5.$i" 2>"$P/err.$i" &
  readers+=($!)
done
for r in "${readers[@]}"; do
  wait_exit "$r" 30
  [ "$RC" == 0 ] || fail "b: a reader failed: $(cat "$P"/err.*)"
done
assert_eq "$(cat "$P"/md5.* | cut -c1-32 | sort | uniq -c | sed 's/^ *//')" "20 $(md5 "$ROOT/b.dat")" \
  "b: all 20 concurrent readers get the exact bytes"
assert_eq "$(count_jobs vault/b.dat)" "1" "b: 20 concurrent readers cause exactly one recall job"
assert_eq "$(recalls_logged vault/b.dat)" "1" "b: and one recall in the log"
unmount_part

# --- c) 200 distinct offline files read by 8 parallel processes
new_part c "" "workers = 4" 'stage_delay = "0s"'
/usr/bin/python3 - "$ROOT" <<'PY'
import os, random, sys
rnd = random.Random(3)
for i in range(200):
    d = os.path.join(sys.argv[1], "c", "run%02d" % (i // 20))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%03d.dat" % i), "wb") as f:
        f.write(os.urandom(0 if i == 0 else rnd.randrange(1, 150000)))
PY
mount_bg "$CONF" "$MNT"
(cd "$ROOT" && find c -type f -print0 | xargs -0 md5sum | LC_ALL=C sort -k2) >"$P/want"
(cd "$MNT/vault" && find c -type f -print0 | xargs -0 -P8 -n5 md5sum | LC_ALL=C sort -k2) >"$P/got" ||
  fail "c: a parallel reader failed"
assert_eq "$(wc -l <"$P/got")" "200" "c: 200 files were read through the mount"
assert_eq "$(cat "$P/got")" "$(cat "$P/want")" "c: 200 files read by xargs -P8 all have the backend's md5"
assert_eq "$(hsmctl ls -R vault/c | grep -c '^DUL')" "200" "c: all 200 are dual afterwards"
unmount_part

# --- d) O_NONBLOCK: EAGAIN at once, the recall stays queued
new_part d "" "" 'stage_delay = "5s"'
head -c 300000 /dev/urandom >"$ROOT/d.dat"
mount_bg "$CONF" "$MNT"
F=$MNT/vault/d.dat
stat "$F" >/dev/null
read -r err secs <<<"$(open_py "$F" nonblock)"
assert_eq "$err" "EAGAIN" "d: O_NONBLOCK open of an offline file fails with EAGAIN"
slower_than "$secs" 0.1 && fail "d: the O_NONBLOCK open took ${secs}s"
pass "d: ... within 100 ms (${secs}s)"
assert_eq "$(count_jobs vault/d.dat queued running)" "1" "d: the recall stays queued"
wait_state "$F" dual 15
pass "d: the file becomes dual later"
read -r ok sum secs <<<"$(open_py "$F" nonblock)"
assert_eq "$ok $sum" "ok $(md5 "$ROOT/d.dat")" "d: O_NONBLOCK open of the dual file reads the exact bytes"
unmount_part

# --- e) SIGINT interrupts a waiting open; the recall completes anyway
new_part e "" "" 'stage_delay = "3s"'
head -c 300000 /dev/urandom >"$ROOT/killed.dat"
head -c 300000 /dev/urandom >"$ROOT/handled.dat"
mount_bg "$CONF" "$MNT"
for mode in sigdfl sighandler; do
  name=$([ $mode == sigdfl ] && echo killed.dat || echo handled.dat)
  F=$MNT/vault/$name
  /usr/bin/python3 "$WORK/open.py" "$F" "$mode" >"$P/$mode.out" 2>/dev/null &
  reader=$!
  wait_state "$F" staging 5
  sleep 0.3  # the reader is in open(), waiting for the recall
  kill -0 "$reader" 2>/dev/null || fail "e: the $mode reader is not waiting: $(cat "$P/$mode.out")"
  t=$(now_ms)
  kill -INT "$reader"
  wait_exit "$reader" 10
  ms=$(($(now_ms) - t))
  [ "$ms" -lt 1000 ] || fail "e: the $mode reader took ${ms} ms to exit after SIGINT"
  if [ $mode == sigdfl ]; then
    assert_eq "$RC" "130" "e: a reader killed by SIGINT exits within ${ms} ms (status 130)"
  else
    assert_eq "$(cut -d' ' -f1 "$P/$mode.out")" "EINTR" \
      "e: a reader with a SIGINT handler gets EINTR within ${ms} ms"
  fi
done
for name in killed.dat handled.dat; do
  wait_state "$MNT/vault/$name" dual 15
  assert_eq "$(md5 "$MNT/vault/$name")" "$(md5 "$ROOT/$name")" "e: the interrupted recall of $name completes (dual, right bytes)"
  assert_eq "$(count_jobs "vault/$name")" "1" "e: $name was recalled by its first job, not cancelled and queued again"
done
unmount_part

# --- f) failures: permanent (EIO + why), transient (retried, then EIO), hung (ETIMEDOUT)
new_part f 'stage_timeout = "2s"' $'max_attempts = 3\nretry_delay = "200ms"' "$(
  cat <<TOML
stage_delay = "0s"
[[backend]]
name = "away"
type = "posix"
root = "$WORK/f/away"
[[backend]]
name = "hung"
type = "posix"
root = "$WORK/f/hung"
stage_delay = "1h"
TOML
)"
mkdir -p "$P/away" "$P/hung"
head -c 1000 /dev/urandom >"$ROOT/gone.dat"
head -c 1000 /dev/urandom >"$P/away/t.dat"
head -c 1000 /dev/urandom >"$P/hung/h.dat"
mount_bg "$CONF" "$MNT"
stat "$MNT/vault/gone.dat" "$MNT/away/t.dat" "$MNT/hung/h.dat" >/dev/null  # listed
rm "$ROOT/gone.dat"
read -r err secs <<<"$(open_py "$MNT/vault/gone.dat")"
assert_eq "$err" "EIO" "f: a recall of a file deleted from the backend fails with EIO"
assert_eq "$(state "$MNT/vault/gone.dat")" "failed" "f: its state is failed"
why=$(getfattr --absolute-names --only-values -n user.hsm.error "$MNT/vault/gone.dat" 2>/dev/null) ||
  fail "f: user.hsm.error is set on a failed file"
echo "$why" | grep -qi "no such file" || fail "f: user.hsm.error says why: '$why'"
pass "f: user.hsm.error says why: $why"
grep -q "vault/gone.dat.*No such file" "$P/hsmfs.log" || fail "f: the log names the failed recall"
pass "f: the log names the failed recall and why"
assert_eq "$(job_field vault/gone.dat attempts)" "1" "f: a permanent failure is not retried"

mv "$P/away" "$P/away.moved"
read -r err secs <<<"$(open_py "$MNT/away/t.dat")"
assert_eq "$err" "EIO" "f: an unreachable backend gives EIO after the retries"
assert_eq "$(job_field away/t.dat attempts)" "3" "f: the transient failure was tried max_attempts (3) times"
slower_than "$secs" 0.55 || fail "f: retries back off (200ms, 400ms), but EIO came after ${secs}s"
pass "f: retries back off exponentially (EIO after ${secs}s)"
getfattr --absolute-names --only-values -n user.hsm.error "$MNT/away/t.dat" | grep -q "not reachable" ||
  fail "f: user.hsm.error of the transient failure: $(getfattr --absolute-names -d -m - "$MNT/away/t.dat")"
pass "f: user.hsm.error says the backend is not reachable"

read -r err secs <<<"$(open_py "$MNT/hung/h.dat")"
assert_eq "$err" "ETIMEDOUT" "f: a hung recall fails the open with ETIMEDOUT"
slower_than "$secs" 1.8 || fail "f: ETIMEDOUT came after ${secs}s, before stage_timeout (2s)"
slower_than "$secs" 3.5 && fail "f: ETIMEDOUT came after ${secs}s, long after stage_timeout (2s)"
pass "f: ... after stage_timeout (${secs}s for 2s)"
assert_eq "$(state "$MNT/hung/h.dat")" "staging" "f: the timed-out recall goes on in the background"
unmount_part
pass "f: the mount stops cleanly with a hung recall running"

# --- g) kill -9 in the middle of a batch; a new mount resumes every job
new_part g "" "workers = 2" 'stage_delay = "500ms"'
mkdir -p "$ROOT/g"
for i in $(seq -w 1 30); do head -c $((200000 + 1000 * 10#$i)) /dev/urandom >"$ROOT/g/f$i.dat"; done
mount_bg "$CONF" "$MNT"
out=$(hsmctl stage "$MNT/vault/g") || fail "g: hsmctl stage: $out"
assert_eq "$out" "queued 30 recalls" "g: hsmctl stage of a directory queues its 30 files"
for i in $(seq 1 300); do
  done_jobs=$(hsmctl jobs --all --json | /usr/bin/python3 -c 'import json,sys; print(sum(j["state"] == "done" for j in json.load(sys.stdin)))')
  [ "$done_jobs" -ge 3 ] && break
  sleep 0.05
done
[ "$done_jobs" -ge 3 ] && [ "$done_jobs" -lt 26 ] || fail "g: $done_jobs of 30 recalls done when hsmfs was to be killed"
pid=$(pgrep -f "hsmfs -c $CONF") || fail "g: no hsmfs process"
kill -9 "$pid"
for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
pass "g: hsmfs killed with -9 after $done_jobs of 30 recalls"
fusermount3 -uz "$MNT"
wait_unmounted "$MNT"
mount_bg "$CONF" "$MNT"
for i in $(seq 1 600); do
  dul=$(hsmctl ls -R vault/g | grep -c '^DUL' || true)
  [ "$dul" == 30 ] && break
  sleep 0.1
done
assert_eq "$dul" "30" "g: after remounting, every queued and running recall resumed: 30 files dual"
assert_eq "$(hsmctl jobs --all --json | /usr/bin/python3 -c 'import json,sys; print(sum(j["state"] != "done" for j in json.load(sys.stdin)))')" \
  "0" "g: no job is left queued, running, failed or cancelled"
(cd "$MNT/vault" && md5sum g/*) >"$P/got"
(cd "$ROOT" && md5sum g/*) >"$P/want"
assert_eq "$(cat "$P/got")" "$(cat "$P/want")" "g: all 30 files have the right bytes (no half-written cache file served)"
unmount_part

# --- h) the cache limit: LRU eviction of dual copies, never of an open file
new_part h 'size = "1MiB"' "" ""
for i in $(seq -w 0 9); do head -c 204800 /dev/urandom >"$ROOT/h$i.dat"; done
mount_bg "$CONF" "$MNT"
cache_usage() { find "$CACHE/data" -type f -printf '%s\n' 2>/dev/null | awk '{ s += $1 } END { print s + 0 }'; }
exec 3<"$MNT/vault/h0.dat"  # recalled first, the least recently used, but open
max=0
for i in $(seq 1 9); do
  assert_eq "$(md5 "$MNT/vault/h$i.dat")" "$(md5 "$ROOT/h$i.dat")" "h: h$i.dat read through a 1 MiB cache" >/dev/null
  u=$(cache_usage)
  [ "$u" -gt "$max" ] && max=$u
  [ "$u" -le 1048576 ] || fail "h: cache usage $u bytes after reading h$i.dat exceeds size 1MiB"
done
pass "h: 1.95 MiB read through a 1 MiB cache, right bytes, cache data at most $max bytes"
[ "$max" -gt 600000 ] || fail "h: the cache holds files (max usage $max)"
assert_eq "$(state "$MNT/vault/h1.dat")" "offline" "h: the least recently used dual copy (h1) was evicted"
assert_eq "$(stat -c %b "$MNT/vault/h1.dat")" "0" "h: an evicted file has no blocks"
assert_eq "$(state "$MNT/vault/h9.dat")" "dual" "h: the most recently read file (h9) is still cached"
assert_eq "$(state "$MNT/vault/h0.dat")" "dual" "h: the oldest file, held open, was not evicted"
assert_eq "$(md5sum <&3 | cut -c1-32)" "$(md5 "$ROOT/h0.dat")" "h: the open file still reads the exact bytes"
exec 3<&-
assert_eq "$(md5 "$MNT/vault/h1.dat")" "$(md5 "$ROOT/h1.dat")" "h: an evicted file is recalled again when read"
unmount_part

# --- i) indexers (deny_recall_from) get EACCES on offline files, no recall
new_part i "" "" ""
head -c 5000 /dev/urandom >"$ROOT/offline.dat"
head -c 5000 /dev/urandom >"$ROOT/online.dat"
mkdir -p "$P/bin1" "$P/bin2"
cp "$(command -v cat)" "$P/bin1/updatedb"
cp "$(command -v ls)" "$P/bin2/plocate"
cp "$(command -v stat)" "$P/bin2/mlocate"
mount_bg "$CONF" "$MNT"
cat "$MNT/vault/online.dat" >/dev/null
assert_eq "$(state "$MNT/vault/online.dat")" "dual" "i: online.dat was recalled by cat"
if (cd "$P/bin1" && ./updatedb "$MNT/vault/offline.dat" >/dev/null 2>"$P/err"); then
  fail "i: updatedb must not read an offline file"
fi
grep -q "Permission denied" "$P/err" || fail "i: updatedb gets EACCES: $(cat "$P/err")"
pass "i: a process named updatedb gets EACCES on an offline file"
assert_eq "$(count_jobs vault/offline.dat)" "0" "i: no recall job is queued for it"
assert_eq "$(state "$MNT/vault/offline.dat")" "offline" "i: the file stays offline"
assert_eq "$(cd "$P/bin1" && ./updatedb "$MNT/vault/online.dat" | md5sum | cut -c1-32)" "$(md5 "$ROOT/online.dat")" \
  "i: updatedb reads an online file"
assert_eq "$(cd "$P/bin2" && ./plocate "$MNT/vault")" "$(printf 'offline.dat\nonline.dat')" \
  "i: a process named plocate lists the directory"
assert_eq "$(cd "$P/bin2" && ./mlocate -c '%s %b' "$MNT/vault/offline.dat")" "5000 0" \
  "i: a process named mlocate stats an offline file"
assert_eq "$(count_jobs vault/offline.dat)" "0" "i: still no recall job for the offline file"
unmount_part

# --- j) xattrs user.hsm.stage / user.hsm.release; hsmctl stage, jobs, cancel, retry
new_part j "" "workers = 1" 'stage_delay = "500ms"'
mkdir -p "$ROOT/batch"
for n in x c1 c2 c3 in1 in2 r; do head -c 65536 /dev/urandom >"$ROOT/$n.dat"; done
for n in 1 2 3 4; do head -c $((100000 * n)) /dev/urandom >"$ROOT/batch/b$n.dat"; done
mount_bg "$CONF" "$MNT"
F=$MNT/vault/x.dat
t=$(now_ms)
setfattr -n user.hsm.stage -v 1 "$F" || fail "j: setfattr user.hsm.stage"
ms=$(($(now_ms) - t))
[ "$ms" -lt 400 ] || fail "j: setfattr user.hsm.stage took ${ms} ms (stage_delay 500ms)"
pass "j: setfattr user.hsm.stage returns at once (${ms} ms)"
assert_eq "$(state "$F")" "staging" "j: ... and queues a recall"
wait_state "$F" dual 10
pass "j: the staged file becomes dual"
assert_eq "$(md5 "$F")" "$(md5 "$ROOT/x.dat")" "j: staged file reads the exact bytes"
assert_eq "$(count_jobs vault/x.dat)" "1" "j: reading a staged file does not recall again"
setfattr -n user.hsm.release -v 1 "$F" || fail "j: setfattr user.hsm.release"
assert_eq "$(state "$F")" "offline" "j: setfattr user.hsm.release drops the cached copy"
assert_eq "$(stat -c %b "$F")" "0" "j: a released file has st_blocks 0"
assert_eq "$(md5 "$F")" "$(md5 "$ROOT/x.dat")" "j: a released file is recalled again when read"
assert_eq "$(count_jobs vault/x.dat)" "2" "j: ... by a second job"

before=$(hsmctl jobs --all --json | /usr/bin/python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
hsmctl stage --preview "$MNT/vault/batch" >"$P/preview" || fail "j: hsmctl stage --preview"
grep -q "4 files" "$P/preview" && grep -q "estimated time" "$P/preview" && grep -q "volumes" "$P/preview" ||
  fail "j: hsmctl stage --preview: $(cat "$P/preview")"
pass "j: hsmctl stage --preview prints files, volumes and an estimated time"
assert_eq "$(hsmctl stage --preview --json "$MNT/vault/batch" |
  /usr/bin/python3 -c 'import json,sys; b = json.load(sys.stdin)["backends"][0]; print(b["files"], b["bytes"])')" \
  "4 1000000" "j: hsmctl stage --preview --json counts files and bytes"
after=$(hsmctl jobs --all --json | /usr/bin/python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
assert_eq "$after" "$before" "j: --preview queues nothing"
assert_eq "$(state "$MNT/vault/batch/b1.dat")" "offline" "j: --preview leaves the files offline"
timeout 60 "$BIN/hsmctl" -c "$CONF" stage --wait "$MNT/vault/batch" >"$P/wait.out" 2>&1 ||
  fail "j: hsmctl stage --wait: $(cat "$P/wait.out")"
assert_eq "$(hsmctl ls -R vault/batch | grep -c '^DUL')" "4" "j: hsmctl stage --wait returns 0 when all 4 are dual"
assert_eq "$(hsmctl stage "$MNT/vault/batch")" "queued 0 recalls; 4 files already online" \
  "j: hsmctl stage of online files queues nothing"

out=$(printf 'vault/c1.dat\nvault/c2.dat\nvault/c3.dat\n' | hsmctl stage -) || fail "j: hsmctl stage -: $out"
assert_eq "$out" "queued 3 recalls" "j: hsmctl stage - reads paths from stdin"
hsmctl jobs --json >"$P/jobs.json"
# The last queued of the three (one runs, one more waits before it) is cancelled.
last=$(/usr/bin/python3 - "$P/jobs.json" <<'PY'
import json, sys
jobs = [j for j in json.load(open(sys.argv[1])) if j["path"] in ("vault/c1.dat", "vault/c2.dat", "vault/c3.dat")]
assert len(jobs) == 3, jobs
queued = [j for j in jobs if j["state"] == "queued"]
assert len(queued) >= 2, jobs
for j in queued:
    assert j["kind"] == "stage" and j["file_state"] == "staging" and j["dmf"] == "UNM", j
    assert j["bytes_total"] == 65536 and j["bytes_done"] == 0 and j["attempts"] == 0, j
    assert isinstance(j["queue_position"], int) and isinstance(j["id"], int), j
last = max(queued, key=lambda j: j["queue_position"])
assert last["queue_position"] >= 2, queued
print(last["path"])
PY
) || fail "j: hsmctl jobs --json: $(cat "$P/jobs.json")"
pass "j: hsmctl jobs --json shows the queued recalls with kind, state, dmf, bytes and position"
id=$(job_field "$last" id)
assert_eq "$(hsmctl cancel "$id")" "cancelled job $id" "j: hsmctl cancel of a queued job ($last)"
assert_eq "$(job_field "$last" state)" "cancelled" "j: the job is cancelled"
for n in c1 c2 c3; do
  [ "vault/$n.dat" == "$last" ] || wait_state "$MNT/vault/$n.dat" dual 10
done
sleep 0.6  # a cancelled job that still ran would be done by now
assert_eq "$(state "$MNT/$last")" "offline" "j: the cancelled file stays offline"
assert_eq "$(recalls_logged "$last")" "0" "j: the cancelled recall never ran"
done_id=$(job_field vault/x.dat id)
[ "$(job_field vault/x.dat state)" == "done" ] || fail "j: the last job of x.dat is done"
if hsmctl cancel "$done_id" >/dev/null 2>"$P/err"; then fail "j: cancel of a done job must fail"; fi
grep -q "job $done_id is not queued or running" "$P/err" || fail "j: cancel of a done job says why: $(cat "$P/err")"
pass "j: hsmctl cancel of a finished job fails"

stat "$MNT/vault/r.dat" >/dev/null
mv "$ROOT/r.dat" "$P/r.dat.saved"
if timeout 60 "$BIN/hsmctl" -c "$CONF" stage --wait vault/r.dat vault/in1.dat >"$P/wait.out" 2>&1; then
  fail "j: hsmctl stage --wait must fail when a recall fails"
fi
grep -q "FAILED vault/r.dat" "$P/wait.out" || fail "j: stage --wait lists the failure: $(cat "$P/wait.out")"
pass "j: hsmctl stage --wait exits 1 and lists the failed recall"
assert_eq "$(state "$MNT/vault/in1.dat")" "dual" "j: the other file of that batch is dual"
assert_eq "$(state "$MNT/vault/r.dat")" "failed" "j: the failed file is failed"
mv "$P/r.dat.saved" "$ROOT/r.dat"
assert_eq "$(hsmctl retry --failed)" "queued 1 job(s) again" "j: hsmctl retry --failed queues the failed job"
wait_state "$MNT/vault/r.dat" dual 10
assert_eq "$(md5 "$MNT/vault/r.dat")" "$(md5 "$ROOT/r.dat")" "j: the retried recall completes with the right bytes"
hsmctl release "$MNT/vault/batch" || fail "j: hsmctl release"
assert_eq "$(hsmctl ls -R vault/batch | grep -c '^OFL')" "4" "j: hsmctl release of a directory makes its files offline"
assert_eq "$(du -s "$MNT/vault/batch" | cut -f1)" "0" "j: du of the released directory is 0"
unmount_part

pass "test_staging took $((($(now_ms) - T_START) / 1000))s"
