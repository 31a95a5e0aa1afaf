#!/bin/bash
# hsmscan against the reference oracle (tests/testdata/hsmscan/oracle.py, HPSSPy's
# algorithm with Python's own re/csv/json): the disk cache CSV, the
# missing_files JSON byte for byte, bad-config exit codes, HPSS cache use and
# "newer" detection. No mount needed. 200,000 files under make check-full
# (HSMFS_FULL=1), or HSMSCAN_IT_FILES=N.
set -euo pipefail

BIN=${HSMFS_BIN:?set HSMFS_BIN to the build directory}/bin
SRC=${HSMFS_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
DATA=$SRC/tests/testdata/hsmscan
PY=/usr/bin/python3
N=${HSMSCAN_IT_FILES:-$([ -n "${HSMFS_FULL:-}" ] && echo 200000 || echo 20000)}
WORK=$(mktemp -d /tmp/hsmscan-it.XXXXXX)
trap 'if [ -n "${KEEP_WORK:-}" ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi' EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { echo "ok: $*"; }

ROOT=$WORK/root
mkdir -p "$ROOT" "$WORK/cache"
$PY "$DATA/gen_tree.py" "$ROOT" "$N"
sed -e "s#@ROOT@#$ROOT#" -e "s#@BASE@#root#" "$DATA/config.json" >"$WORK/config.json"
C=$WORK/cache

# 1. Test mode on a fresh tree: no problems, even with -E.
rc=0
"$BIN/hsmscan" -t -E -c "$C" "$WORK/config.json" data 2>"$WORK/t.log" || rc=$?
[ $rc -eq 0 ] || { tail -20 "$WORK/t.log"; fail "hsmscan -t -E exited $rc"; }
pass "hsmscan -t -E on $N files exits 0"
grep -q "Test mode: cd $ROOT/data/d3 && htar -cvf /hpss/test/data/d3/d3_1XX.tar -H crc:verify=all 100 101" \
  "$WORK/t.log" || fail "X wildcard plan for d3_1XX.tar missing"
grep -q "Test mode: cd $ROOT/data/d5 && htar -cvf /hpss/test/data/d5/data_d5_my_dir.tar -H crc:verify=all my_dir" \
  "$WORK/t.log" || fail "directory-name extraction for data_d5_my_dir.tar"
pass "plans: X wildcard and prefix stripping"
rc=0
"$BIN/hsmscan" -t -c "$WORK/cache_l" -l 0.00000001 "$WORK/config.json" data 2>/dev/null || rc=$?
[ $rc -eq 0 ] || fail "too-large archives without -E: exit $rc, HPSSPy exits 0"
"$BIN/hsmscan" -t -E -c "$WORK/cache_l" -l 0.00000001 "$WORK/config.json" data 2>/dev/null && fail "-E ignored too-large archives"
pass "-l limit: exit 0 as HPSSPy, exit 1 with -E"

# 2. The disk cache: HPSSPy's header and CRLF rows, the same rows as os.walk.
printf 'Name,Size,Mtime\r\n' | cmp -s - <(head -c 17 "$C/disk_files_data.csv") ||
  fail "disk CSV header is not 'Name,Size,Mtime\\r\\n'"
$PY "$DATA/oracle.py" walk "$ROOT/data" "$WORK/oracle_disk.csv"
cmp -s <(tail -n +2 "$C/disk_files_data.csv" | LC_ALL=C sort) \
  <(tail -n +2 "$WORK/oracle_disk.csv" | LC_ALL=C sort) || fail "disk CSV rows differ from os.walk"
cmp -s "$C/disk_files_data.csv" "$WORK/oracle_disk.csv" || fail "disk CSV order differs from os.walk"
pass "disk_files_data.csv equals HPSSPy's scan_disk output, order included"

# 3. The missing-files JSON, byte for byte.
$PY "$DATA/oracle.py" missing "$WORK/config.json" data "$C/disk_files_data.csv" - "$WORK/oracle.json"
cmp "$C/missing_files_data.json" "$WORK/oracle.json" || fail "missing_files_data.json differs from the oracle"
narch=$($PY -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$WORK/oracle.json")
[ "$narch" -gt 20 ] || fail "only $narch archives"
pass "missing_files_data.json identical to the oracle ($narch archives)"

# 4. Bad configs exit 2 with one line naming the problem.
expect_bad() {  # CONFIG SECTION WORD what
  local rc=0
  "$BIN/hsmscan" -t -c "$C" "$1" "$2" 2>"$WORK/err" || rc=$?
  [ $rc -eq 2 ] || fail "$4: exit $rc, expected 2"
  [ "$(wc -l <"$WORK/err")" -eq 1 ] || fail "$4: more than one line: $(cat "$WORK/err")"
  grep -qF -- "$3" "$WORK/err" || fail "$4: '$3' not in: $(cat "$WORK/err")"
  pass "$4 -> exit 2: $(cat "$WORK/err")"
}
echo '{"__config__": {' >"$WORK/invalid.json"
expect_bad "$WORK/invalid.json" data "not valid JSON" "invalid JSON"
sed 's#"x/(a|b)\\\\d{,2}\$"#"x/(a|b"#' "$WORK/config.json" >"$WORK/badre.json"
expect_bad "$WORK/badre.json" data "section 'other'" "bad regex in another section"
grep -q "x/(a|b" "$WORK/err" || fail "the bad regex is not named"
$PY -c 'import json,sys; d=json.load(open(sys.argv[1])); del d["__config__"]; json.dump(d, open(sys.argv[2],"w"))' \
  "$WORK/config.json" "$WORK/noconfig.json"
expect_bad "$WORK/noconfig.json" data "__config__" "missing __config__"
expect_bad "$WORK/config.json" nosuch "nosuch" "unknown section"
expect_bad "$WORK/nonexistent.json" data "nonexistent.json" "missing config file"
rc=0
HPSS_DIR= PATH=/usr/bin:/bin "$BIN/hsmscan" -p -H -c "$WORK/cache_p" "$WORK/config.json" data 2>"$WORK/err" || rc=$?
[ $rc -ne 0 ] && grep -q 'cannot start hsi: program "hsi" not found' "$WORK/err" || fail "-p without hsi: exit $rc"
pass "-p without hsi fails: $(cat "$WORK/err")"

# 5. With an HPSS cache listing archives, those are not missing.
$PY - "$C/missing_files_data.json" "$C/hpss_files_data.csv" <<'PY'
import csv, json, sys
m = json.load(open(sys.argv[1]))
names = [k for k in m][::3]
with open(sys.argv[2], 'w', newline='') as f:
    w = csv.writer(f)
    w.writerow(['Name', 'Size', 'Mtime'])
    for k in names:
        w.writerow([k, m[k]['size'], 2000000000])
    w.writerow([names[0] + '.idx', 1, 2000000000])
PY
present=$(($(wc -l <"$C/hpss_files_data.csv") - 2))
"$BIN/hsmscan" -c "$C" "$WORK/config.json" data 2>"$WORK/h.log" || fail "scan with HPSS cache failed"
$PY "$DATA/oracle.py" missing "$WORK/config.json" data "$C/disk_files_data.csv" "$C/hpss_files_data.csv" "$WORK/oracle2.json"
cmp "$C/missing_files_data.json" "$WORK/oracle2.json" || fail "JSON with HPSS cache differs from the oracle"
left=$($PY -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$C/missing_files_data.json")
[ "$left" -eq $((narch - present)) ] || fail "expected $((narch - present)) missing archives, got $left"
pass "$present archives on HPSS are not missing ($left left)"

# 6. A newer file makes exactly its archive missing again.
target=$(sed -n 2p "$C/hpss_files_data.csv" | cut -d, -f1)
member=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]]["files"][0])' "$WORK/oracle.json" "$target")
touch -d @2000000100 "$ROOT/data/$member"
"$BIN/hsmscan" -D -c "$C" "$WORK/config.json" data 2>"$WORK/n.log" || fail "rescan failed"
$PY "$DATA/oracle.py" missing "$WORK/config.json" data "$C/disk_files_data.csv" "$C/hpss_files_data.csv" "$WORK/oracle3.json"
cmp "$C/missing_files_data.json" "$WORK/oracle3.json" || fail "JSON after touch differs from the oracle"
$PY - "$WORK/oracle2.json" "$C/missing_files_data.json" "$target" <<'PY' || fail "newer detection"
import json, sys
before, after, target = json.load(open(sys.argv[1])), json.load(open(sys.argv[2])), sys.argv[3]
assert set(after) - set(before) == {target}, set(after) ^ set(before)
assert after[target]['newer'] is True and after[target]['exists'] is True
PY
grep -q "is newer than $target" "$WORK/n.log" || fail "no 'newer' warning"
pass "touching $member makes exactly $target missing again (newer)"
echo "PASS test_hsmscan"
