# HPSS bundled writes through a real mount, over the hsi/htar EMULATOR
# (tests/emulators/hpss): files copied into a writable directory that an
# HPSSPy rules file describes are archived into htar bundles (one htar run
# per bundle, a size cap, X.1.tar for a later bundle), stay where they were
# written, read back member by member after their cached copies are dropped,
# and survive mv, rm, a catalog refresh and a remount with an empty cache.
source "$(dirname "$0")/lib.sh"

EMU=${HSMFS_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/emulators/hpss
[ -x "$EMU/hsi" ] || fail "the hpss emulator is missing ($EMU/hsi)"
PY=/usr/bin/python3
source "$EMU/fixture.sh"

export HPSS_EMU_ROOT=$WORK/hpss HPSS_EMU_STATE=$WORK/emu
HOME_DIR=$HPSS_EMU_ROOT/home/elvis
mkdir -p "$HOME_DIR/incoming" "$HPSS_EMU_STATE"

# The HPSSPy rules of section "incoming" (hpss_root = the backend root).
cat >"$WORK/rules.json" <<'JSON'
{"__config__": {"root": "/data", "hpss_root": "/home/elvis", "physical_disks": false},
 "incoming": {"__exclude__": ["run1/private.key"],
              "run1": {"(run[0-9]+)/.*$": "\\1.tar"},
              "run2": {"(run[0-9]+)/.*$": "\\1.tar"},
              "logs": {"logs/[^/]+$": "logs/logs_files.tar"},
              "raw": {"raw/.*$": "AUTOMATED"}}}
JSON

# The tree to copy: run1 (30 small files, nested), run2 (5 x 300 KiB against
# a 1 MiB cap), logs (a _files.tar list archive), raw (AUTOMATED: put per file).
SRC=$WORK/src
mkdir -p "$SRC/run1/sub/deeper" "$SRC/run2" "$SRC/logs" "$SRC/raw"
for i in $(seq 1 10); do
  head -c $((i * 1000)) /dev/urandom >"$SRC/run1/a$i.dat"
  head -c $((i * 700)) /dev/urandom >"$SRC/run1/sub/b$i.dat"
  head -c $((i * 300)) /dev/urandom >"$SRC/run1/sub/deeper/c$i.dat"
done
echo "do not bundle" >"$SRC/run1/private.key"
for i in 1 2 3 4 5; do head -c 307200 /dev/urandom >"$SRC/run2/frame$i.raw"; done
for i in 1 2 3; do echo "log line $i" >"$SRC/logs/night$i.log"; done
echo raw1 >"$SRC/raw/x.dat"
echo raw2 >"$SRC/raw/y.dat"
NFILES=$(find "$SRC" -type f | wc -l)

CONF=$WORK/hsmfs.toml
config_head "$CONF"
cat >>"$CONF" <<TOML
[archive]
settle = "1s"
TOML
hpss_backend_head "$CONF"
cat >>"$CONF" <<TOML
writable = ["incoming"]
allow_delete = true
bundle_rules = "$WORK/rules.json"
bundle_section = "incoming"
bundle_max_size = "1MiB"
bundle_quiet = "2s"
TOML
"$BIN/hsmfs" -c "$CONF" --print-config | grep -q 'bundle_section = "incoming"' ||
  fail "--print-config does not show the bundle keys"

# A bad rules file stops the mount with one line naming it, exit 2.
sed 's/"\\\\1.tar"/"\\\\1.tar", "(": "x"/' "$WORK/rules.json" >"$WORK/bad.json"
sed "s#$WORK/rules.json#$WORK/bad.json#" "$CONF" >"$WORK/bad.toml"
set +e
mkdir -p "$WORK/nomnt"
err=$(timeout 20 "$BIN/hsmfs" -c "$WORK/bad.toml" "$WORK/nomnt" 2>&1)
rc=$?
set -e
[ "$rc" = 2 ] || fail "a bad bundle_rules regex: exit $rc, expected 2 ($err)"
[ "$(echo "$err" | wc -l)" = 1 ] || fail "a bad bundle_rules regex: more than one line: $err"
[[ $err == *bundle_rules* ]] || fail "the error does not name bundle_rules: $err"
pass "a bad bundle_rules file: exit 2, one line ($err)"

MNT=$WORK/mnt
mount_bg "$CONF" "$MNT"

state() { getfattr --absolute-names --only-values -n user.hsm.state "$1" 2>/dev/null; }
wait_all_dual() {  # DIR: every file below it dual
  local f left
  for _ in $(seq 1 300); do
    left=()
    while IFS= read -r f; do
      [ "$(state "$f")" == dual ] || left+=("${f#"$1"/}: $(state "$f")")
    done < <(find "$1" -type f -not -path '*.tar/*')
    [ ${#left[@]} = 0 ] && return 0
    sleep 0.2
  done
  fail "${#left[@]} files below $1 were not archived: ${left[*]}"
}

start=$(date +%s.%N)
cp -r "$SRC/." "$MNT/hpss/incoming/"
wait_all_dual "$MNT/hpss/incoming"
end=$(date +%s.%N)
pass "cp -r of $NFILES files: all dual after $(echo "$end - $start" | bc) s"

# On HPSS: the archives with their indexes, and no plain copy of a bundled file.
for a in run1.tar run2.tar run2.1.tar logs/logs_files.tar; do
  [ -f "$HOME_DIR/incoming/$a" ] && [ -f "$HOME_DIR/incoming/$a.idx" ] ||
    fail "no archive incoming/$a (with its index) on HPSS"
done
[ -e "$HOME_DIR/incoming/run1/a1.dat" ] && fail "a bundled file was also put by itself"
for f in raw/x.dat raw/y.dat run1/private.key; do
  cmp -s "$SRC/$f" "$HOME_DIR/incoming/$f" || fail "incoming/$f was not put by itself"
done
pass "4 htar archives on HPSS; AUTOMATED and __exclude__ files put by themselves"

$PY - "$HPSS_EMU_STATE/calls.log" <<'PYEOF' || fail "the call log does not show one htar run per bundle"
import json, sys
calls = [json.loads(l) for l in open(sys.argv[1])]
creates = [c for c in calls if c.get("event") == "cmd" and c.get("cmd") == "create"]
names = sorted(c["archive"].split("/home/elvis/incoming/")[1] for c in creates)
assert names == ["logs/logs_files.tar", "run1.tar", "run2.1.tar", "run2.tar"], names
members = {c["archive"].split("/incoming/")[1]:
           [f["name"] for f in c["files"] if not f["name"].startswith("/tmp/HTAR_CF_")]
           for c in creates}
assert len(members["run1.tar"]) == 30, members["run1.tar"]
assert "run1/sub/deeper/c7.dat" in members["run1.tar"]
assert sorted(members["logs/logs_files.tar"]) == ["night1.log", "night2.log", "night3.log"]
# The 1 MiB cap: a bundle closes with the file that reaches it (4 x 300 KiB).
assert sorted([len(members["run2.tar"]), len(members["run2.1.tar"])]) == [1, 4], members
puts = [f["hpss"] for c in calls if c.get("event") == "cmd" and c.get("cmd") == "put"
        for f in c["files"]]
assert sorted(p.split("/incoming/")[1] for p in puts) == \
    ["raw/x.dat", "raw/y.dat", "run1/private.key"], puts
# Each bundle was read back whole once (the archiver trusts that: no
# per-member read-back).
extracts = [c for c in calls if c.get("event") == "cmd" and c.get("cmd") == "extract"]
assert len(extracts) == len(creates), f"{len(extracts)} htar extracts for {len(creates)} bundles"
print(f"{len(creates)} htar runs for {sum(len(m) for m in members.values())} files, "
      f"{len(puts)} hsi puts, {len(extracts)} read-backs")
PYEOF
pass "one htar run per bundle, the size cap kept, puts only for unbundled files"

# Through the mount: files where they were written, archives as directories
# (they show once the directory is listed again: hsmctl sync, or list_ttl).
"$BIN/hsmctl" -c "$CONF" sync hpss/incoming >/dev/null || fail "hsmctl sync"
assert_eq "$(ls "$MNT/hpss/incoming" | tr '\n' ' ')" "logs raw run1 run1.tar run2 run2.1.tar run2.tar " \
  "incoming/ lists the written directories and the archives"
assert_eq "$(ls "$MNT/hpss/incoming/run1/sub/deeper" | wc -l)" "10" "a nested bundled directory"
loc=$(getfattr --absolute-names --only-values -n user.hsm.location "$MNT/hpss/incoming/run1/sub/b3.dat")
assert_eq "$loc" "htar /home/elvis/incoming/run1.tar member run1/sub/b3.dat" "user.hsm.location"

# Drop the cached copies; every file reads back from its archive member.
"$BIN/hsmctl" -c "$CONF" release "$MNT/hpss/incoming" >/dev/null || fail "hsmctl release"
assert_eq "$(state "$MNT/hpss/incoming/run1/a5.dat")" "offline" "released"
# Parallel readers of one archive's files: the recall batch reaches the
# backend at once (StageMany), and one htar run extracts the members together.
before=$(grep -c '"cmd": "extract"' "$HPSS_EMU_STATE/calls.log")
find "$MNT/hpss/incoming/run1" -type f -print0 | xargs -0 -P 32 -n 1 cat >/dev/null
after=$(grep -c '"cmd": "extract"' "$HPSS_EMU_STATE/calls.log")
[ $((after - before)) -le 5 ] || fail "31 parallel reads of run1/ took $((after - before)) htar runs"
pass "31 parallel reads of run1/ took $((after - before)) htar run(s)"
"$BIN/hsmctl" -c "$CONF" release "$MNT/hpss/incoming" >/dev/null || fail "hsmctl release"
before=$(grep -c '"cmd": "extract"' "$HPSS_EMU_STATE/calls.log")
(cd "$SRC" && find . -type f -exec md5sum {} + | sort -k2) >"$WORK/src.md5"
(cd "$MNT/hpss/incoming" && find . -type f -not -path './*.tar/*' -not -path './logs/*.tar/*' \
  -exec md5sum {} + | sort -k2) >"$WORK/mnt.md5"
diff "$WORK/src.md5" "$WORK/mnt.md5" >&2 || fail "md5 through the mount differs from the source"
after=$(grep -c '"cmd": "extract"' "$HPSS_EMU_STATE/calls.log")
pass "all $NFILES files read back with the right md5 ($((after - before)) htar extracts)"
a=run2.tar
[ -e "$MNT/hpss/incoming/$a/run2/frame3.raw" ] || a=run2.1.tar
cmp -s "$SRC/run2/frame3.raw" "$MNT/hpss/incoming/$a/run2/frame3.raw" ||
  fail "run2/frame3.raw inside $a differs"
pass "the same data inside the archive directory ($a)"

# mv and rm change where the files are shown, never the archives.
mv "$MNT/hpss/incoming/run1/sub" "$MNT/hpss/incoming/run1/moved"
rm "$MNT/hpss/incoming/run1/a1.dat"
"$BIN/hsmctl" -c "$CONF" sync hpss/incoming >/dev/null || fail "hsmctl sync"
[ -e "$MNT/hpss/incoming/run1/a1.dat" ] && fail "rm of a bundled file came back after a sync"
cmp -s "$SRC/run1/sub/b4.dat" "$MNT/hpss/incoming/run1/moved/b4.dat" || fail "moved file content"
[ -e "$MNT/hpss/incoming/run1/sub" ] && fail "the old directory name is back after a sync"
[ -f "$HOME_DIR/incoming/run1.tar" ] || fail "the archive went away"
pass "mv and rm of bundled files survive a catalog refresh; the archive stays"

# A rewrite lands in a new bundle; the old archive keeps the old data.
echo "rewritten" >"$MNT/hpss/incoming/run1/a2.dat"
wait_all_dual "$MNT/hpss/incoming/run1"
[ -f "$HOME_DIR/incoming/run1.1.tar" ] || fail "the rewrite did not make run1.1.tar"
assert_eq "$(getfattr --absolute-names --only-values -n user.hsm.location "$MNT/hpss/incoming/run1/a2.dat")" \
  "htar /home/elvis/incoming/run1.1.tar member run1/a2.dat" "a rewrite goes to run1.1.tar"
cmp -s "$SRC/run1/a2.dat" "$MNT/hpss/incoming/run1.tar/run1/a2.dat" || fail "the old member changed"

# Remount with an empty cache: everything is still where it was written.
fusermount3 -u "$MNT"
wait_unmounted "$MNT"
rm -rf "$WORK/cache"
mount_bg "$CONF" "$MNT"
"$BIN/hsmctl" -c "$CONF" sync hpss/incoming >/dev/null || fail "hsmctl sync after the remount"
assert_eq "$(cat "$MNT/hpss/incoming/run1/a2.dat")" "rewritten" "the rewrite after a remount"
cmp -s "$SRC/run1/sub/deeper/c9.dat" "$MNT/hpss/incoming/run1/moved/deeper/c9.dat" ||
  fail "a moved file after a remount"
assert_eq "$(find "$MNT/hpss/incoming/run1" -type f | wc -l)" "30" "run1's 31 files but the removed one, after the remount"

[ -c /dev/null ] || fail "/dev/null is no longer a character device"
pass "/dev/null is still a device after read-back checks"
fusermount3 -u "$MNT"
wait_unmounted "$MNT"
pass "unmounted"
