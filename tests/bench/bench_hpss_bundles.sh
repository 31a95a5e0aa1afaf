#!/bin/bash
# Benchmark (not a test): N small files copied into a writable HPSS directory
# through a real hsmfs mount over the HPSS EMULATOR (tests/emulators/hpss),
# archived per file (`hsi put`, the baseline) and then, in the same run, in
# htar bundles by HPSSPy rules (docs/HPSS.md "Bundled writes"). For each:
# wall time until every file is dual, HPSS files created (each a tape file on
# a real system), hsi/htar commands; then the cached copies are dropped and
# every file is read back through the mount (16 readers), with the emulator's
# recall delay per unstaged file (BENCH_RECALL seconds, default 0.01).
# BENCH_FILES (default 500) files of BENCH_SIZE bytes (default 4096) in 5
# directories. HSMFS_BIN: a build directory with hsmfs. Needs /dev/fuse.
source "$(dirname "$0")/../integration/lib.sh"

EMU=${HSMFS_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/emulators/hpss
PY=/usr/bin/python3
source "$EMU/fixture.sh"
N=${BENCH_FILES:-500}
SIZE=${BENCH_SIZE:-4096}
export HPSS_EMU_RECALL_DELAY=${BENCH_RECALL:-0.01} HPSS_EMU_DEFAULT_STAGED=0
unset HPSS_EMU_FAULTS

SRC=$WORK/src
for d in 1 2 3 4 5; do mkdir -p "$SRC/run$d"; done
for i in $(seq 1 "$N"); do head -c "$SIZE" /dev/urandom >"$SRC/run$((i % 5 + 1))/f$i.dat"; done
cat >"$WORK/rules.json" <<'JSON'
{"__config__": {"root": "/data", "hpss_root": "/home/elvis", "physical_disks": false},
 "incoming": {"run1": {"(run[0-9]+)/.*$": "\\1.tar"}, "run2": {"(run[0-9]+)/.*$": "\\1.tar"},
              "run3": {"(run[0-9]+)/.*$": "\\1.tar"}, "run4": {"(run[0-9]+)/.*$": "\\1.tar"},
              "run5": {"(run[0-9]+)/.*$": "\\1.tar"}}}
JSON

run() {  # MODE (put|bundle): sets RES="archive_s hpss_files commands read_s recalls"
  local mode=$1 dir=$WORK/$1
  export HPSS_EMU_ROOT=$dir/hpss HPSS_EMU_STATE=$dir/emu
  mkdir -p "$HPSS_EMU_ROOT/home/elvis/incoming" "$HPSS_EMU_STATE"
  local saved=$WORK
  WORK=$dir
  config_head "$dir/hsmfs.toml" 'level = "warn"'
  WORK=$saved
  cat >>"$dir/hsmfs.toml" <<TOML
[archive]
settle = "1s"
TOML
  hpss_backend_head "$dir/hsmfs.toml"
  cat >>"$dir/hsmfs.toml" <<TOML
writable = ["incoming"]
stage_workers = 4
TOML
  if [ "$mode" = bundle ]; then
    printf 'bundle_rules = "%s"\nbundle_section = "incoming"\nbundle_quiet = "2s"\n' \
      "$WORK/rules.json" >>"$dir/hsmfs.toml"
  fi
  mount_bg "$dir/hsmfs.toml" "$dir/mnt"
  local t0 t1 t2 t3
  t0=$(date +%s.%N)
  cp -r "$SRC/." "$dir/mnt/hpss/incoming/"
  while [ "$(find "$dir/mnt/hpss/incoming" -type f -path '*/run?/*' -print0 |
    xargs -0 getfattr -n user.hsm.state 2>/dev/null | grep -c 'user.hsm.state="dual"')" != "$N" ]; do
    sleep 0.5
  done
  t1=$(date +%s.%N)
  local files
  files=$(find "$HPSS_EMU_ROOT/home/elvis/incoming" -type f | wc -l)
  "$BIN/hsmctl" -c "$dir/hsmfs.toml" release "$dir/mnt/hpss/incoming" >/dev/null
  # Everything back to tape only, as it would be some days later.
  (cd "$HPSS_EMU_ROOT" && find home/elvis/incoming -type f -printf 'purge /%p\n') |
    "$EMU/hsi" -q >/dev/null 2>&1
  local before
  before=$(wc -l <"$HPSS_EMU_STATE/calls.log")
  t2=$(date +%s.%N)
  (cd "$dir/mnt/hpss/incoming" && find run* -type f -print0 | xargs -0 -P 16 -n 8 cat >/dev/null)
  t3=$(date +%s.%N)
  (cd "$SRC" && find . -type f -exec md5sum {} + | sort -k2) >"$dir/src.md5"
  (cd "$dir/mnt/hpss/incoming" && find ./run? -type f -exec md5sum {} + | sort -k2) >"$dir/mnt.md5"
  diff -q "$dir/src.md5" "$dir/mnt.md5" >/dev/null || fail "$mode: md5 through the mount differs"
  local cmds recalls
  cmds=$(grep -c '"event": "cmd"' "$HPSS_EMU_STATE/calls.log")
  recalls=$(tail -n +"$((before + 1))" "$HPSS_EMU_STATE/calls.log" | { grep -o '"staged_before": false' || true; } | wc -l)
  fusermount3 -u "$dir/mnt"
  wait_unmounted "$dir/mnt"
  RES="$(echo "$t1 - $t0" | bc) $files $cmds $(echo "$t3 - $t2" | bc) $recalls"
}

run put
read -r pa pf pc pr prc <<<"$RES"
run bundle
read -r ba bf bc br brc <<<"$RES"
$PY - "$N" "$SIZE" "$pa" "$pf" "$pc" "$pr" "$prc" "$ba" "$bf" "$bc" "$br" "$brc" <<'PY'
import sys
n, size = int(sys.argv[1]), int(sys.argv[2])
pa, pf, pc, pr, prc, ba, bf, bc, br, brc = (float(x) for x in sys.argv[3:])
print(f"{n} files of {size} B in 5 directories (HPSSPy rules: one archive per directory)")
print(f"{'':14}{'archive s':>10}{'HPSS files':>12}{'commands':>10}{'read s':>8}{'recalls':>9}")
print(f"{'hsi put':14}{pa:10.2f}{pf:12.0f}{pc:10.0f}{pr:8.2f}{prc:9.0f}")
print(f"{'htar bundles':14}{ba:10.2f}{bf:12.0f}{bc:10.0f}{br:8.2f}{brc:9.0f}")
print(f"ratios put/bundles: archive time {pa / ba:.2f}, HPSS files {pf / bf:.1f}, "
      f"read time {pr / br:.2f}, tape recalls {prc / max(brc, 1):.1f}")
PY
