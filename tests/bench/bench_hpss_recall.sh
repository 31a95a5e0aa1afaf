#!/bin/bash
# Benchmark (not a test): recall of 300 tape-resident files spread over 3 tapes
# through a real hsmfs mount over the HPSS EMULATOR (tests/emulators/hpss), read
# by parallel readers, vs the same files recalled in request order.
#
#  - hsmfs: 300 `cat`s started at once in request order (f000, f001, ...);
#    the stager coalesces them and sends the gets in tape order.
#  - request order: the same 300 files purged again and fetched with one
#    `hsi get` per file in request order, in one hsi session (the best a
#    client without tape ordering can do).
# Both are measured by the emulator's delay model (its README): per recall
# RECALL, + MOUNT when the volume differs from the mounted one, + SEEK when
# going backwards on the same volume. The figures: the delays the emulator
# logged (it sleeps them), and the same sequences re-costed with tape-like
# parameters (BENCH_MODEL="recall mount seek" seconds, default "1 60 20").
# Layout: file i on volume VOL(i % 3) at section (i * 7) % 300 + 1, so that
# request order alternates tapes and jumps back and forth on each.
# HSMFS_BIN: a build directory with hsmfs. Needs /dev/fuse.
source "$(dirname "$0")/../integration/lib.sh"

EMU=${HSMFS_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/emulators/hpss
PY=/usr/bin/python3
export HPSS_EMU_ROOT=$WORK/hpss HPSS_EMU_STATE=$WORK/emu
export HPSS_EMU_RECALL_DELAY=${BENCH_RECALL:-0.002} HPSS_EMU_MOUNT_DELAY=${BENCH_MOUNT:-0.05}
export HPSS_EMU_SEEK_DELAY=${BENCH_SEEK:-0.02} HPSS_EMU_DEFAULT_STAGED=0
unset HPSS_EMU_FAULTS
HOME_DIR=$HPSS_EMU_ROOT/home/elvis
mkdir -p "$HOME_DIR/data" "$HPSS_EMU_STATE"
N=300
source "$EMU/fixture.sh"
hpss_tape_files /home/elvis/data $N

CONF=$WORK/hsmfs.toml
config_head "$CONF"
cat >>"$CONF" <<TOML
[stage]
coalesce = "2s"
TOML
hpss_backend_head "$CONF"
cat >>"$CONF" <<TOML
stage_workers = 1
TOML
MNT=$WORK/mnt
mount_bg "$CONF" "$MNT"
ls "$MNT/hpss/data" >/dev/null
: >"$HPSS_EMU_STATE/calls.log"

# 1. hsmfs: parallel readers, started in request order.
mkdir -p "$WORK/out"
t0=$(date +%s.%N)
for i in $(seq 0 $((N - 1))); do
  f=$(printf 'f%03d.dat' "$i")
  cat "$MNT/hpss/data/$f" >"$WORK/out/$f" &
done
wait
t1=$(date +%s.%N)
for i in $(seq 0 $((N - 1))); do
  f=$(printf 'f%03d.dat' "$i")
  cmp -s "$WORK/out/$f" "$HOME_DIR/data/$f" || fail "content of $f"
done
fusermount3 -u "$MNT"
wait_unmounted "$MNT"
mv "$HPSS_EMU_STATE/calls.log" "$WORK/calls_hsmfs.log"

# 2. The same files in request order, one get each, one hsi session.
for i in $(seq 0 $((N - 1))); do printf 'purge /home/elvis/data/f%03d.dat\n' "$i"; done |
  "$EMU/hsi" -q >/dev/null 2>&1
: >"$HPSS_EMU_STATE/calls.log"
mkdir -p "$WORK/req"
t2=$(date +%s.%N)
for i in $(seq 0 $((N - 1))); do
  printf 'get %s/req/f%03d.dat : /home/elvis/data/f%03d.dat\n' "$WORK" "$i" "$i"
done | "$EMU/hsi" -q >/dev/null 2>&1
t3=$(date +%s.%N)
mv "$HPSS_EMU_STATE/calls.log" "$WORK/calls_request.log"

$PY - "$WORK/calls_hsmfs.log" "$WORK/calls_request.log" "$(echo "$t1 - $t0" | bc)" \
  "$(echo "$t3 - $t2" | bc)" "${BENCH_MODEL:-1 60 20}" <<'PY'
import json, sys
def recalls(path):
    out = []
    for line in open(path):
        e = json.loads(line)
        if e.get("event") == "cmd" and e.get("cmd") in ("get", "stage"):
            for f in e.get("files", []):
                if not f.get("staged_before", True):
                    out.append((e["session"], f["volume"], int(f["position"].split("+")[0]),
                                float(f.get("delay", 0))))
    return out
def model(seq, recall, mount, seek):
    t, vol, pos, mounts, back = 0.0, None, -1, 0, 0
    for _, v, p, _ in seq:
        t += recall
        if v != vol:
            t += mount; mounts += 1
        elif p < pos:
            t += seek; back += 1
        vol, pos = v, p
    return t, mounts, back
h, r = recalls(sys.argv[1]), recalls(sys.argv[2])
assert len(h) == 300 and len(r) == 300, (len(h), len(r))
rc, mo, se = (float(x) for x in sys.argv[5].split())
hs, rs = sum(x[3] for x in h), sum(x[3] for x in r)
hm, rm = model(h, rc, mo, se), model(r, rc, mo, se)
print(f"300 recalls, 3 tapes; hsmfs: {len({x[0] for x in h})} hsi session(s), {hm[1]} mounts, "
      f"{hm[2]} backward seeks; request order: {rm[1]} mounts, {rm[2]} backward seeks")
print(f"emulator delays logged: hsmfs tape order {hs:.2f} s, request order {rs:.2f} s, "
      f"ratio request/tape {rs / hs:.1f}  (wall: hsmfs {float(sys.argv[3]):.2f} s incl. "
      f"coalesce window, hsi {float(sys.argv[4]):.2f} s)")
print(f"model recall={rc:g}s mount={mo:g}s seek={se:g}s: hsmfs {hm[0]:.0f} s, request order "
      f"{rm[0]:.0f} s, ratio {rm[0] / hm[0]:.1f}")
PY
