#!/bin/bash
# hsmscan -p against the HPSS emulator (tests/emulators/hpss): every missing
# archive is created (checked in the emulator's namespace and with htar -t),
# a second run finds nothing missing, touching one file makes exactly its
# archive missing again (newer) and -p recreates only that one, and an htar
# that reports success with fewer members is reported as a failure.
# Standalone: no FUSE, its own temporary directory. HSMFS_BIN: the build dir.
set -euo pipefail

BIN=${HSMFS_BIN:?set HSMFS_BIN to the build directory}/bin
SRC=${HSMFS_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
DATA=$SRC/tests/testdata/hsmscan
PY=/usr/bin/python3
N=${HSMSCAN_IT_FILES:-3000}
WORK=$(mktemp -d /tmp/hsmscan-p.XXXXXX)
trap 'if [ -n "${KEEP_WORK:-}" ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi' EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { echo "ok: $*"; }

export PATH=$SRC/tests/emulators/hpss:$PATH
export HPSS_EMU_ROOT=$WORK/hpss HPSS_EMU_STATE=$WORK/state
unset HPSS_DIR HPSS_EMU_FAULTS
mkdir -p "$WORK/root" "$HPSS_EMU_ROOT"
$PY "$DATA/gen_tree.py" "$WORK/root" "$N"
sed -e "s#@ROOT@#$WORK/root#" -e "s#@BASE@#root#" "$DATA/config.json" >"$WORK/config.json"
C=$WORK/cache
HROOT=/hpss/test/data

# The expected archives: the test-mode plan.
"$BIN/hsmscan" -t -c "$WORK/tcache" "$WORK/config.json" data 2>/dev/null ||
  fail "hsmscan -t failed"
cp "$WORK/tcache/missing_files_data.json" "$WORK/plan.json"

# Checks every archive of plan.json on the emulator: the file exists (with its
# .idx for htar), and htar -t lists the planned members: exactly the basenames
# for _files.tar, every planned file (and nothing but files below the
# archived directories) for directory archives.
check_archives() {
  $PY - "$WORK/plan.json" "$HPSS_EMU_ROOT" "$HROOT" "$WORK/root/data" <<'PY'
import json, os, subprocess, sys
plan, emu, hroot, disk = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3], sys.argv[4]
bad = []
kinds = {'dir': 0, 'files': 0, 'put': 0}
for key, a in plan.items():
    local = emu + hroot + '/' + key
    if not os.path.isfile(local):
        bad.append('%s: not on HPSS' % key); continue
    if not key.endswith('.tar'):
        kinds['put'] += 1
        if os.path.getsize(local) != a['size']:
            bad.append('%s: %d bytes, planned %d' % (key, os.path.getsize(local), a['size']))
        continue
    if not os.path.isfile(local + '.idx'):
        bad.append('%s: no .idx' % key); continue
    out = subprocess.run(['htar', '-t', '-f', hroot + '/' + key], capture_output=True, text=True)
    if out.returncode != 0 or 'HTAR SUCCESSFUL' not in out.stdout:
        bad.append('%s: htar -t failed' % key); continue
    names = set()
    for line in out.stdout.splitlines():
        if not line.startswith('HTAR: ') or line.startswith(('HTAR: Listing', 'HTAR: HTAR')):
            continue
        name = line.split('  ')[-1].strip()
        if line[6] != 'd' and not name.startswith('/tmp/HTAR_CF_CHK_'):
            names.add(name)
    d = os.path.dirname(key)
    rel = [f[len(d) + 1:] if d else f for f in a['files']]
    if key.endswith('_files.tar'):
        kinds['files'] += 1
        want = {os.path.basename(f) for f in a['files']}
        if names != want:
            bad.append('%s: members %s, planned %s' % (key, sorted(names ^ want)[:3], len(want)))
    else:
        kinds['dir'] += 1
        tops = {r.split('/')[0] for r in rel}
        on_disk = set()
        for t in tops:
            for r, ds, fs in os.walk(os.path.join(disk, d, t)):
                for f in fs:
                    on_disk.add(os.path.relpath(os.path.join(r, f), os.path.join(disk, d)))
        if not set(rel) <= names or names != on_disk:
            bad.append('%s: %d members, %d planned files, %d on disk' % (key, len(names), len(rel), len(on_disk)))
if bad:
    print('\n'.join(bad[:10])); sys.exit(1)
print('%d archives: %d directory, %d _files.tar, %d put' % (len(plan), kinds['dir'], kinds['files'], kinds['put']))
PY
}

count_creates() { grep -c '"cmd": "create"' "$HPSS_EMU_STATE/calls.log" || true; }

# 1. -p creates every archive (and records them in an hsmfs catalog).
cat >"$WORK/hsmfs.toml" <<EOF
[catalog]
path = "$WORK/catalog.db"
[cache]
dir = "$WORK/cache"
[[backend]]
name = "hpss"
type = "hpss"
root = "/hpss/test"
hsi = "$SRC/tests/emulators/hpss/hsi"
htar = "$SRC/tests/emulators/hpss/htar"
EOF
rc=0; out=$("$BIN/hsmscan" -t --hsmfs-config "$WORK/hsmfs.toml" --backend nope \
  "$WORK/config.json" data 2>&1) || rc=$?
[ $rc -eq 2 ] && echo "$out" | grep -q "no hpss backend named nope" ||
  fail "--backend nope: exit $rc, $out"
rc=0
"$BIN/hsmscan" -p -c "$C" --hsmfs-config "$WORK/hsmfs.toml" "$WORK/config.json" data \
  2>"$WORK/p1.log" || rc=$?
[ $rc -eq 0 ] || { tail -20 "$WORK/p1.log"; fail "hsmscan -p exited $rc"; }
summary=$(check_archives) || fail "after -p: $summary"
grep -q "d3/d3_1XX.tar" "$WORK/plan.json" || fail "the plan has no X wildcard archive"
[ -f "$HPSS_EMU_ROOT$HROOT/d3/d3_1XX.tar" ] || fail "X wildcard archive d3_1XX.tar not created"
pass "hsmscan -p created every archive: $summary"
# hsmscan ran `hsmctl sync` for the directories it filled (before anyone listed them).
synced=$(sqlite3 "$WORK/catalog.db" "SELECT COUNT(*) FROM dir_sync WHERE listed_by LIKE 'hsmctl%'")
[ "$synced" -ge 5 ] || fail "hsmscan --hsmfs-config synced $synced directories"
"$BIN/hsmctl" -c "$WORK/hsmfs.toml" ls hpss/data/d3 2>&1 | grep -q "d3_1XX.tar" ||
  fail "the new archive is not in the hsmfs catalog: $("$BIN/hsmctl" -c "$WORK/hsmfs.toml" ls hpss/data/d3 2>&1)"
pass "--hsmfs-config: the new archives are in the mount's catalog (hsmctl ls)"
creates=$(count_creates)
[ "$creates" -gt 20 ] || fail "only $creates htar creates in the call log"

# 2. A second run finds nothing missing and creates nothing.
rc=0
"$BIN/hsmscan" -p -c "$C" "$WORK/config.json" data 2>"$WORK/p2.log" || rc=$?
[ $rc -eq 0 ] || { tail -20 "$WORK/p2.log"; fail "second run exited $rc"; }
[ "$(cat "$C/missing_files_data.json")" = "{}" ] || fail "second run: missing = $(head -c 300 "$C/missing_files_data.json")"
[ "$(count_creates)" -eq "$creates" ] || fail "second run ran htar create"
[ "$(wc -l <"$C/hpss_files_data.csv")" -gt 10 ] || fail "hpss_files_data.csv from hsi ls -R -D is nearly empty"
grep -q '\.idx' "$C/hpss_files_data.csv" && fail "hpss_files_data.csv lists .idx files"
pass "second run: nothing missing (HPSS listed with hsi ls -R -D, $(($(wc -l <"$C/hpss_files_data.csv") - 1)) files)"

# 3. Touching one file makes exactly its archive missing (newer); -p redoes only it.
target=d5/data_d5_my_dir.tar
member=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]]["files"][0])' "$WORK/plan.json" "$target")
sleep 1.1  # HPSS mtimes have a resolution of one second
touch "$WORK/root/data/$member"
"$BIN/hsmscan" -D -c "$C" "$WORK/config.json" data 2>"$WORK/p3.log" || fail "rescan failed"
$PY - "$C/missing_files_data.json" "$target" <<'PY' || fail "newer detection"
import json, sys
m = json.load(open(sys.argv[1]))
assert list(m) == [sys.argv[2]], list(m)
assert m[sys.argv[2]]['newer'] is True and m[sys.argv[2]]['exists'] is True, m[sys.argv[2]]
PY
"$BIN/hsmscan" -p -c "$C" "$WORK/config.json" data 2>"$WORK/p4.log" || fail "-p after touch failed"
[ "$(count_creates)" -eq $((creates + 1)) ] || fail "-p after touch: $(($(count_creates) - creates)) htar creates, expected 1"
"$BIN/hsmscan" -c "$C" "$WORK/config.json" data 2>/dev/null || fail "run after re-archive failed"
[ "$(cat "$C/missing_files_data.json")" = "{}" ] || fail "still missing after re-archive"
pass "touching $member makes exactly $target missing (newer); -p recreates only it"

# 4. htar reporting success with fewer members than planned is a failure.
victim=d1/batch.tar
grep -q "\"$victim\"" "$WORK/plan.json" || fail "$victim is not in the plan"
# Removed behind hsmscan's back: -H lists HPSS again instead of trusting the cache.
rm -f "$HPSS_EMU_ROOT$HROOT/$victim" "$HPSS_EMU_ROOT$HROOT/$victim.idx"
rc=0
HPSS_EMU_FAULTS="action=short tool=htar match=-c" \
  "$BIN/hsmscan" -p -H -c "$C" "$WORK/config.json" data 2>"$WORK/p5.log" || rc=$?
[ $rc -eq 1 ] || { tail "$WORK/p5.log"; fail "short htar: exit $rc, expected 1"; }
grep -q "1 of 1 archive(s) failed" "$WORK/p5.log" || fail "no failure summary: $(tail -3 "$WORK/p5.log")"
grep -qE "^  $victim: htar reported success but .* lists [0-9]+ member\(s\), planned [0-9]+; missing: " \
  "$WORK/p5.log" || fail "failure line does not name $victim: $(tail -3 "$WORK/p5.log")"
pass "short htar -> exit 1: $(grep "^  $victim" "$WORK/p5.log" | cut -c1-140)"
echo "PASS test_hsmscan_process"
