#!/bin/bash
# Tests the HPSS emulator (tests/emulators/hpss/hsi and htar) itself: output
# formats, sessions, the call log, the tape delay model and every fault kind.
# Standalone (no FUSE mount, so it does not source lib.sh, which skips
# without /dev/fuse).
set -euo pipefail

SRC=${HSMFS_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
EMU=$SRC/tests/emulators/hpss
HSI=$EMU/hsi
HTAR=$EMU/htar
PY=/usr/bin/python3
WORK=$(mktemp -d /tmp/hpss-emu-test.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

fail() {
  echo "FAIL: $*" >&2
  exit 1
}
pass() { echo "ok: $*"; }
assert_eq() { [ "$1" == "$2" ] || fail "$3: expected '$2', got '$1'"; pass "$3"; }
assert_match() { grep -Eq -- "$2" <<<"$1" || fail "$3: '$1' does not match /$2/"; pass "$3"; }

export HPSS_EMU_ROOT=$WORK/root HPSS_EMU_STATE=$WORK/state
mkdir -p "$HPSS_EMU_ROOT" "$WORK/local"
cd "$WORK/local"
LOG=$HPSS_EMU_STATE/calls.log

# --- configuration errors and --help ---------------------------------------
rc=0
out=$(env -u HPSS_EMU_ROOT "$HSI" -q pwd 2>&1) || rc=$?
assert_eq "$rc" 2 "missing HPSS_EMU_ROOT exits 2"
assert_match "$out" "HPSS_EMU_ROOT" "the error names the variable"
assert_match "$("$HSI" -help)" "EMULATOR" "hsi --help says it is an emulator"
assert_match "$("$HTAR" "-?")" "EMULATOR" "htar --help says it is an emulator"

# --- put / get round trip with checksums, ls formats --------------------------
head -c 100000 /dev/urandom >data.bin
"$HSI" -q "mkdir -p /proj/run1; put -c on data.bin : /proj/run1/data.bin; put data.bin : /proj/other.bin" 2>err.txt
[ ! -s err.txt ] || fail "-q put printed: $(cat err.txt)"
"$HSI" -q "get back.bin : /proj/run1/data.bin"
assert_eq "$(md5sum <back.bin | cut -d' ' -f1)" "$(md5sum <data.bin | cut -d' ' -f1)" "put/get round trip keeps the bytes"
out=$("$HSI" -q "hashlist /proj/run1/data.bin" 2>&1)
assert_eq "$out" "$(md5sum <data.bin | cut -d' ' -f1) md5 /proj/run1/data.bin (hsi)" "hashlist shows the md5 recorded by put -c on"
out=$("$HSI" "put data.bin : /proj/x.bin" 2>&1)
assert_match "$out" "^Username: " "without -q the banner is printed"
assert_match "$out" "put  'data.bin' : '/proj/x.bin' \( 100000 bytes, [0-9.]+ KBS \(cos=5\)\)" "put reports its transfer"

out=$("$HSI" -q "ls -l /proj" 2>&1)
assert_match "$(sed -n 1p <<<"$out")" "^/proj:$" "ls of a directory starts with its header"
assert_match "$(grep other.bin <<<"$out")" "^-rw-r--r-- +1 [^ ]+ +[^ ]+ +100000 [A-Z][a-z]{2} [ 0-9]{2} [0-9]{2}:[0-9]{2} other.bin$" "ls -l entry"
out=$("$HSI" -q "ls -D /proj" 2>&1)
line=$(grep other.bin <<<"$out")
assert_match "$line" "^-rw-r--r-- +1 [^ ]+ +[^ ]+ +100000 [A-Z][a-z]{2} [A-Z][a-z]{2} [ 0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2} [0-9]{4} other.bin$" "ls -D entry has the full date"
assert_match "$(grep ' run1$' <<<"$out")" "^drwx" "ls -D shows directories"
# HPSSPy's own regular expression must accept every ls -D line.
$PY - "$out" <<'EOF' || fail "HPSSPy's ls -D regex rejects a line"
import re, sys
linere = re.compile(r"([dl-])([rwxsStT-]+)\s+(\d+)\s+(\S+)\s+(\S+)\s+(\d+)\s+([A-Za-z]+)\s+([A-Za-z]+)\s+(\d+)\s+([0-9:]+)\s([0-9]+)\s(.*)$")
for line in sys.argv[1].split("\n"):
    if line and not line.endswith(":") and not linere.match(line):
        sys.exit(1)
EOF
pass "HPSSPy's ls -D regex parses the listing"
out=$("$HSI" -q "ls -P /proj/run1/data.bin /proj" 2>&1)
line=$(grep -m1 data.bin <<<"$out")
assert_eq "$(awk -F'\t' '{print NF}' <<<"$line")" 13 "ls -P FILE line has 13 tab-separated fields"
assert_match "$line" "^FILE	/proj/run1/data.bin	100000	100000	[0-9]+\+0	EM[0-9]{6}	" "ls -P FILE line"
assert_match "$out" "DIRECTORY	/proj/run1" "ls -P DIRECTORY line"
out=$("$HSI" -q "ls -1R /proj" 2>&1)
assert_match "$out" "/proj/run1:" "ls -R descends"
"$HSI" -q -O listing.txt "ls -D /proj/run1" 2>err.txt
assert_match "$(cat listing.txt)" "data.bin$" "-O sends the listing to the file"
[ ! -s err.txt ] || fail "-O listing also went to stderr"
out=$("$HSI" -q -P "ls -1 /proj/other.bin" 2>/dev/null)
assert_eq "$out" "/proj/other.bin" "-P sends the listing to stdout"

# --- errors and exit status ----------------------------------------------------
rc=0
out=$("$HSI" -q "ls /nosuch; mkdir /proj/after" 2>&1) || rc=$?
assert_eq "$rc" 64 "ls of a missing path: exit 64"
assert_eq "$(sed -n 1p <<<"$out")" "*** hpss_Lstat: No such file or directory [-2: HPSS_ENOENT]" "*** error line"
assert_eq "$(sed -n 2p <<<"$out")" "    /nosuch" "the error names the path"
[ -d "$HPSS_EMU_ROOT/proj/after" ] || fail "the session stopped at the failed command"
pass "a session goes on after a failed command"
rc=0
"$HSI" -q -O errs.txt "get x : /nosuch" 2>/dev/null || rc=$?
assert_eq "$rc" 64 "get of a missing file: exit 64"
assert_match "$(head -1 errs.txt)" '^\*\*\*' "errors are copied into the -O file"
rc=0
out=$("$HSI" -q "mkdir /proj" 2>&1) || rc=$?
assert_match "$out" "HPSS_EEXIST" "mkdir of an existing directory"
rc=0
out=$("$HSI" -q "put nothere : /proj/n" 2>&1) || rc=$?
assert_eq "$rc" 66 "put of a missing local file: exit 66"
rc=0
"$HSI" -q "frobnicate" 2>/dev/null || rc=$?
assert_eq "$rc" 64 "unknown command: exit 64"
# A corrupted HPSS copy fails get -c on.
cp "$HPSS_EMU_ROOT/proj/run1/data.bin" saved.bin
echo garbage >>"$HPSS_EMU_ROOT/proj/run1/data.bin"
rc=0
out=$("$HSI" -q "get -c on bad.bin : /proj/run1/data.bin" 2>&1) || rc=$?
assert_eq "$rc" 74 "checksum mismatch on get -c on: exit 74"
assert_match "$out" "hash mismatch" "checksum mismatch is reported"
cp saved.bin "$HPSS_EMU_ROOT/proj/run1/data.bin"

# --- namespace commands ------------------------------------------------------------
"$HSI" -q "cd /proj; mv other.bin moved.bin; chmod 600 moved.bin; rm x.bin; mkdir d1; rmdir d1"
[ -f "$HPSS_EMU_ROOT/proj/moved.bin" ] && [ ! -e "$HPSS_EMU_ROOT/proj/x.bin" ] || fail "mv/rm"
assert_eq "$(stat -c %a "$HPSS_EMU_ROOT/proj/moved.bin")" 600 "cd, mv, chmod, rm, mkdir, rmdir"
out=$("$HSI" -q "cd /proj/run1; pwd; lcd /tmp; lpwd" 2>&1)
assert_eq "$out" "$(printf 'pwd0: /proj/run1\nlpwd0: /tmp')" "pwd and lcd/lpwd"
rc=0
"$HSI" -q "rmdir /proj" 2>/dev/null || rc=$?
assert_eq "$rc" 64 "rmdir of a non-empty directory fails"

# --- stdin sessions, in files, tape order and the delay model -----------------------
# 30 files on 3 tapes of 10, placed directly in the namespace (never seen: on tape).
# A fresh state directory, so that placement starts at the first slot.
export HPSS_EMU_STATE=$WORK/state2 HPSS_EMU_TAPE_CAPACITY=10
LOG=$HPSS_EMU_STATE/calls.log
mkdir -p "$HPSS_EMU_ROOT/tape"
for i in $(seq -w 1 30); do echo "file $i" >"$HPSS_EMU_ROOT/tape/f$i"; done
out=$("$HSI" -q "ls -P /tape" 2>&1)
export HPSS_EMU_RECALL_DELAY=0.01 HPSS_EMU_MOUNT_DELAY=0.15 HPSS_EMU_SEEK_DELAY=0.05
# Tape order from ls -P: volume, then section (as the manual's recipe).
grep '^FILE' <<<"$out" | awk -F'\t' '{split($5, p, "+"); print $6, p[1], $2}' | sort -k1,1 -k2,2n |
  awk '{print "get '"$WORK"'/local/got" NR " : " $3}' >ordered.cmds
assert_eq "$(wc -l <ordered.cmds)" 30 "ls -P lists the 30 files"
assert_eq "$(grep '^FILE' <<<"$out" | cut -f6 | sort -u | wc -l)" 3 "30 files fill 3 volumes of 10"
start=$(date +%s.%N)
"$HSI" -q <ordered.cmds
ordered_time=$($PY -c "import time; print(time.time() - $start)")
assert_eq "$(cat got1 got30 | tr '\n' ' ')" "file 01 file 30 " "stdin session retrieves the files"
# Prove it from the log: one session, 30 gets, non-decreasing (volume, section), 3 mounts.
$PY - "$LOG" <<'EOF' || fail "call log does not show one tape-ordered session"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
last = [r for r in recs if r["event"] == "start"][-1]["session"]
gets = [r for r in recs if r["session"] == last and r.get("cmd") == "get"]
assert len(gets) == 30, len(gets)
keys = [(f["volume"], int(f["position"].split("+")[0])) for g in gets for f in g["files"]]
assert keys == sorted(keys), keys
assert all(not f["staged_before"] for g in gets for f in g["files"])
assert sum(1 for g in gets for f in g["files"] if f.get("mount")) == 3
EOF
pass "calls.log: 30 recalls in one hsi session, in tape order, 3 mounts"
# Same files in reverse order, after purging them back to tape: slower.
"$HSI" -q "purge /tape/*"
tac ordered.cmds >reversed.cmds
start=$(date +%s.%N)
"$HSI" -q "in reversed.cmds"
reversed_time=$($PY -c "import time; print(time.time() - $start)")
$PY -c "import sys; sys.exit(0 if $reversed_time > $ordered_time + 0.8 else 1)" ||
  fail "reverse order ($reversed_time s) is not slower than tape order ($ordered_time s)"
pass "tape order ${ordered_time:0:4}s vs reverse order ${reversed_time:0:4}s (seek model)"
$PY - "$LOG" <<'EOF' || fail "in file session not logged"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
last = [r for r in recs if r["event"] == "start"][-1]["session"]
gets = [r for r in recs if r["session"] == last and r.get("cmd") == "get"]
assert len(gets) == 30 and sum(1 for g in gets for f in g["files"] if f.get("seek_back")) == 27
EOF
pass "in FILE runs every command in the session (27 backward seeks logged)"
# Staged files cost nothing; stage recalls.
out=$("$HSI" -q "get again : /tape/f01" 2>&1)
assert_eq "$(tail -1 "$LOG" | $PY -c 'import json,sys; print(json.load(sys.stdin)["event"])')" "end" "end record"
assert_eq "$(grep '"cmd": "get"' "$LOG" | tail -1 | $PY -c 'import json,sys; print(json.load(sys.stdin)["files"][0]["delay"])')" "0.0" "a recalled file is staged: no delay"
"$HSI" -q "purge /tape/f02; stage /tape/f02"
assert_eq "$(grep '"cmd": "stage"' "$LOG" | tail -1 | $PY -c 'import json,sys; f=json.load(sys.stdin)["files"][0]; print(f["staged_before"], f["delay"] > 0)')" "False True" "stage recalls a purged file"
unset HPSS_EMU_RECALL_DELAY HPSS_EMU_MOUNT_DELAY HPSS_EMU_SEEK_DELAY
# Layout override.
echo "/tape/f05 ZZ999900 42" >"$HPSS_EMU_STATE/layout"
out=$("$HSI" -q "ls -P /tape/f05" 2>&1)
assert_eq "$(cut -f5,6 <<<"$out")" "42+0	ZZ999900" "the layout file overrides the placement"
rm "$HPSS_EMU_STATE/layout"

# --- htar ----------------------------------------------------------------------------
mkdir -p nova/sub
echo alpha >nova/a
echo beta >nova/sub/b
head -c 5000 /dev/urandom >nova/big
printf 'nova/a\nnova/sub/b\n' >list.txt
out=$("$HTAR" -cvf /arch/nova.tar -P nova 2>&1)
assert_match "$out" "HTAR: a   nova/sub/b" "htar -cv lists members"
assert_match "$out" "HTAR Create complete for /arch/nova.tar\. [0-9,]+ bytes written for 3 member files" "htar create summary (files, not directories)"
assert_eq "$(tail -1 <<<"$out")" "HTAR: HTAR SUCCESSFUL" "htar create succeeds"
[ -f "$HPSS_EMU_ROOT/arch/nova.tar.idx" ] || fail "no index file"
# grep without -q reads to the end: with -q, tar could die of SIGPIPE and
# pipefail would call a good archive bad.
tar tf "$HPSS_EMU_ROOT/arch/nova.tar" 2>/dev/null | grep '^nova/sub/b$' >/dev/null || fail "not a real tar"
pass "the archive is a real tar with an .idx"
out=$("$HTAR" -tvf /arch/nova.tar)
assert_match "$out" "HTAR: -rw-r--r--  [^/ ]+/[^ ]+ +5000 [0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}  nova/big" "htar -t entry"
assert_match "$out" "HTAR: drwx.*  nova/sub/" "htar -t directory entry"
assert_match "$out" "HTAR_CF_CHK_" "htar -t shows the consistency file"
assert_match "$out" "HTAR: Listing complete for /arch/nova.tar, 4 files 6 total objects" "htar -t summary"
"$HTAR" -cf /arch/list.tar -L list.txt >/dev/null
assert_eq "$("$HTAR" -tf /arch/list.tar | grep -c ' nova/')" 2 "htar -L takes the members from a list file"
mkdir ex && cd ex
out=$("$HTAR" -xvf /arch/nova.tar nova/sub/b)
assert_eq "$(cat nova/sub/b)" "beta" "htar -x extracts one member"
[ ! -e nova/a ] && [ ! -e nova/big ] || fail "htar -x extracted more than asked"
assert_match "$out" "HTAR: x nova/sub/b, 5 bytes, 2 media blocks" "htar -xv line"
assert_eq "$(tail -1 "$LOG" | $PY -c 'import json,sys; print(json.load(sys.stdin)["event"])')" "end" "htar logs its end"
assert_eq "$(grep '"cmd": "extract"' "$LOG" | tail -1 | $PY -c 'import json,sys; r=json.load(sys.stdin); print(len(r["files"]), r["files"][0]["bytes"])')" "1 5" "extract reads only the member's bytes (call log)"
cd ..
rc=0
out=$("$HTAR" -xf /arch/nova.tar nova/none 2>&1) || rc=$?
assert_eq "$rc" 72 "htar -x of a missing member exits 72"
assert_eq "$(tail -1 <<<"$out")" "HTAR: HTAR FAILED" "htar failure line"
rc=0
out=$("$HTAR" -tf /arch/none.tar 2>&1) || rc=$?
assert_match "$out" "ERROR: No such file: /arch/none.tar.idx" "htar -t without index"
rc=0
"$HTAR" -cf /noparent/x.tar nova >/dev/null 2>&1 || rc=$?
assert_eq "$rc" 72 "htar -c without the parent and without -P fails"
rc=0
"$HTAR" -f /arch/x.tar >/dev/null 2>&1 || rc=$?
assert_eq "$rc" 64 "htar without an action: usage error"

# --- faults --------------------------------------------------------------------------
n=$(cat "$HPSS_EMU_STATE/cmd_counter")
echo "action=error nth=$((n + 2))" >"$HPSS_EMU_STATE/faults"
rc=0
out=$("$HSI" -q "pwd; pwd; pwd" 2>&1) || rc=$?
assert_eq "$rc" 74 "nth=N: the Nth command fails, exit 74"
assert_eq "$(grep -c '^pwd0' <<<"$out")" 2 "nth=N: only that command fails"
assert_match "$out" '^\*\*\* hpss_Open: Input/output error \[-5: HPSS_EIO\]' "injected *** line"
echo 'action=error-exit0 match=^get .*/tape/f07$' >"$HPSS_EMU_STATE/faults"
rc=0
out=$("$HSI" -q "get g6 : /tape/f06; get g7 : /tape/f07" 2>&1) || rc=$?
assert_eq "$rc" 0 "error-exit0: exit status 0"
assert_match "$out" '^\*\*\*' "error-exit0: the *** line is printed"
[ -f g6 ] && [ ! -f g7 ] || fail "error-exit0 affected the wrong command"
echo 'action=exit code=75 match=^stage' >"$HPSS_EMU_STATE/faults"
rc=0
"$HSI" -q "stage /tape/f03; mkdir /never" 2>/dev/null || rc=$?
assert_eq "$rc" 75 "exit fault: the process exits with the code"
[ ! -d "$HPSS_EMU_ROOT/never" ] || fail "commands ran after the exit fault"
echo 'action=error times=1 match=^mkdir' >"$HPSS_EMU_STATE/faults"
rc1=0 rc2=0
"$HSI" -q "mkdir /t1" 2>/dev/null || rc1=$?
"$HSI" -q "mkdir /t2" 2>/dev/null || rc2=$?
assert_eq "$rc1 $rc2" "74 0" "times=1 fires once"
echo 'action=hang match=^ls' >"$HPSS_EMU_STATE/faults"
rc=0
timeout 2 "$HSI" -q "ls /" 2>/dev/null || rc=$?
assert_eq "$rc" 124 "hang fault sleeps until killed"
echo 'action=hang tool=htar match=-t' >"$HPSS_EMU_STATE/faults"
rc=0
timeout 2 "$HTAR" -tf /arch/nova.tar >/dev/null || rc=$?
assert_eq "$rc" 124 "htar hang fault"
echo 'action=short tool=htar match=-c' >"$HPSS_EMU_STATE/faults"
out=$("$HTAR" -cvf /arch/short.tar nova 2>&1)
assert_eq "$(tail -1 <<<"$out")" "HTAR: HTAR SUCCESSFUL" "short fault: htar reports success"
assert_match "$out" "for 3 member files" "short fault: it claims every member"
assert_eq "$("$HTAR" -tf /arch/short.tar | grep -c ' nova')" 4 "short fault: the archive holds one member fewer"
echo 'action=error tool=htar' >"$HPSS_EMU_STATE/faults"
rc=0
out=$("$HTAR" -tf /arch/nova.tar 2>&1) || rc=$?
assert_eq "$rc:$(tail -1 <<<"$out")" "72:HTAR: HTAR FAILED" "htar error fault"
HPSS_EMU_FAULTS='action=error match=^pwd' "$HSI" -q pwd 2>/dev/null && fail "HPSS_EMU_FAULTS ignored"
pass "HPSS_EMU_FAULTS works like the faults file"
rm "$HPSS_EMU_STATE/faults"

echo "all HPSS emulator tests passed"
