#!/bin/bash
# Benchmark (not a test): hsmscan -t -D vs find -printf on the same tree, warm,
# printed as a ratio from one run; max RSS at 200k files, and at 2M files with
# HSMSCAN_BENCH_2M=1. HSMFS_BIN: a release build directory.
set -euo pipefail
BIN=${HSMFS_BIN:?set HSMFS_BIN to a release build directory}/bin
SRC=${HSMFS_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
DATA=$SRC/tests/testdata/hsmscan
WORK=$(mktemp -d /tmp/hsmscan-bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

now() { date +%s.%N; }
bench() {  # NFILES
  local n=$1 root=$WORK/root$1
  mkdir -p "$root"
  /usr/bin/python3 "$DATA/gen_tree.py" "$root" "$n"
  sed -e "s#@ROOT@#$root#" -e "s#@BASE@#root$n#" "$DATA/config.json" >"$WORK/config$n.json"
  find "$root" -printf '%P,%s,%T@\n' >/dev/null  # warm the caches
  "$BIN/hsmscan" -t -D -c "$WORK/c$n" "$WORK/config$n.json" data 2>/dev/null
  local t0 t1 t2
  t0=$(now)
  find "$root/data" -printf '%P,%s,%T@\n' >"$WORK/find.out"
  t1=$(now)
  "$BIN/hsmscan" -t -D -c "$WORK/c$n" "$WORK/config$n.json" data 2>/dev/null
  t2=$(now)
  /usr/bin/time -v "$BIN/hsmscan" -t -D -c "$WORK/c$n" "$WORK/config$n.json" data 2>"$WORK/time$n" >/dev/null || true
  local rss
  rss=$(awk -F: '/Maximum resident/ {gsub(/ /, "", $2); print $2}' "$WORK/time$n")
  awk -v n="$n" -v f="$(echo "$t1 - $t0" | bc)" -v h="$(echo "$t2 - $t1" | bc)" -v rss="$rss" \
    'BEGIN { printf "%d files: find %.3fs  hsmscan -t -D %.3fs  ratio hsmscan/find %.2f  max RSS %d MiB\n", n, f, h, h / f, rss / 1024 }'
  rm -rf "$root"
}
bench 200000
if [ -n "${HSMSCAN_BENCH_2M:-}" ]; then bench 2000000; fi
