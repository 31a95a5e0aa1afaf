# The HPSS backend through a real mount, over the hsi/htar EMULATOR
# (tests/emulators/hpss): browse; cat of tape-resident files, 300 of them read
# in parallel and recalled in tape order through ONE hsi session (proved from
# the emulator's call log); browse into an htar archive and read one member
# (only that member extracted); cp into a writable directory archives with put.
source "$(dirname "$0")/lib.sh"

EMU=${HSMFS_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/emulators/hpss
[ -x "$EMU/hsi" ] || fail "the hpss emulator is missing ($EMU/hsi)"
PY=/usr/bin/python3

export HPSS_EMU_ROOT=$WORK/hpss HPSS_EMU_STATE=$WORK/emu
export HPSS_EMU_RECALL_DELAY=0.005 HPSS_EMU_MOUNT_DELAY=0.2 HPSS_EMU_SEEK_DELAY=0.05
export HPSS_EMU_DEFAULT_STAGED=0
HOME_DIR=$HPSS_EMU_ROOT/home/elvis
mkdir -p "$HOME_DIR/data" "$HOME_DIR/incoming" "$HPSS_EMU_STATE" "$WORK/tree/nova"

# 300 files on 3 tapes, laid out so that name order is far from tape order.
source "$EMU/fixture.sh"
N=300
hpss_tape_files /home/elvis/data $N

# An htar archive with a few members.
echo "supernova" >"$WORK/tree/nova/sn1987a"
echo "crab pulsar" >"$WORK/tree/nova/crab"
echo "notes" >"$WORK/tree/readme"
(cd "$WORK/tree" && "$EMU/htar" -c -f /home/elvis/nova.tar nova readme >/dev/null) ||
  fail "htar -c of the test archive"

CONF=$WORK/hsmfs.toml
config_head "$CONF" 'level = "debug"'
cat >>"$CONF" <<TOML
[stage]
coalesce = "3s"
[archive]
settle = "1s"
TOML
hpss_backend_head "$CONF"
cat >>"$CONF" <<TOML
checksum = true
writable = ["incoming"]
stage_workers = 1
TOML
"$BIN/hsmfs" -c "$CONF" --print-config | grep -q "hsi = \"$EMU/hsi\"" ||
  fail "--print-config does not show the hpss keys"
pass "--print-config shows the hpss backend"

MNT=$WORK/mnt
mount_bg "$CONF" "$MNT"

# Browse.
assert_eq "$(ls "$MNT")" "hpss" "the backend directory"
assert_eq "$(ls "$MNT/hpss" | tr '\n' ' ')" "data incoming nova.tar " "the HPSS home (index hidden)"
assert_eq "$(ls "$MNT/hpss/data" | wc -l)" "$N" "300 files listed"
assert_eq "$(stat -c %s "$MNT/hpss/data/f007.dat")" "$(stat -c %s "$HOME_DIR/data/f007.dat")" "size"
assert_eq "$(stat -c %b "$MNT/hpss/data/f007.dat")" "0" "no blocks while on tape"
loc=$(getfattr --absolute-names --only-values -n user.hsm.location "$MNT/hpss/data/f007.dat")
[[ $loc == *"tape VOL0000100 position 50+0"* ]] || fail "location of f007.dat: $loc"
pass "user.hsm.location names the tape and position ($loc)"
assert_eq "$(getfattr --absolute-names --only-values -n user.hsm.state "$MNT/hpss/data/f007.dat")" "offline" "state"

# One file.
assert_eq "$(cat "$MNT/hpss/data/f001.dat")" "$(cat "$HOME_DIR/data/f001.dat")" "cat of a tape file"

# 300 files at once.
mkdir -p "$WORK/out"
start=$(date +%s.%N)
for i in $(seq 2 $((N - 1))) 0; do
  f=$(printf 'f%03d.dat' "$i")
  cat "$MNT/hpss/data/$f" >"$WORK/out/$f" &
done
wait
end=$(date +%s.%N)
for i in $(seq 0 $((N - 1))); do
  f=$(printf 'f%03d.dat' "$i")
  [ "$i" = 1 ] && continue
  cmp -s "$WORK/out/$f" "$HOME_DIR/data/$f" || fail "content of $f read through the mount"
done
pass "300 parallel reads returned the right bytes ($(echo "$end - $start" | bc) s)"

# The call log: every get of the batch ran in one hsi session, in tape order
# (volume by volume, positions ascending within a volume).
$PY - "$HPSS_EMU_STATE/calls.log" <<'PYEOF' || fail "recalls were not in tape order in one session"
import json, sys
gets = []
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e.get("event") == "cmd" and e.get("cmd") == "get":
        for f in e["files"]:
            if "/data/f001.dat" in f["hpss"]:
                continue  # the single read before the batch
            gets.append((e["session"], f["volume"], int(f["position"].split("+")[0]), f["hpss"]))
assert len(gets) == 299, f"{len(gets)} gets"
sessions = {g[0] for g in gets}
assert len(sessions) == 1, f"gets ran in {len(sessions)} hsi sessions"
switches = sum(1 for a, b in zip(gets, gets[1:]) if a[1] != b[1])
backward = sum(1 for a, b in zip(gets, gets[1:]) if a[1] == b[1] and b[2] < a[2])
print(f"299 gets in 1 session, {switches + 1} tape mounts, {backward} backward seeks")
assert switches == 2, f"{switches + 1} mounts for 3 volumes"
assert backward == 0, f"{backward} backward seeks"
# The emulator's delay model (README): recall + mount on a volume change +
# seek when going backwards; the same files in request (name) order would cost:
def cost(order, recall=0.005, mount=0.2, seek=0.05):
    t, vol, pos = 0.0, None, -1
    for v, p in order:
        t += recall + (mount if v != vol else 0) + (seek if v == vol and p < pos else 0)
        vol, pos = v, p
    return t
by_name = sorted(gets, key=lambda g: g[3])
print(f"emulated recall time: tape order {cost([(g[1], g[2]) for g in gets]):.2f} s, "
      f"name order {cost([(g[1], g[2]) for g in by_name]):.2f} s")
PYEOF
pass "299 recalls in one hsi session, in tape order"

# htar archive: a read-only directory of its members; one member extracted.
assert_eq "$(ls "$MNT/hpss/nova.tar" | tr '\n' ' ')" "nova readme " "archive members"
assert_eq "$(ls "$MNT/hpss/nova.tar/nova" | tr '\n' ' ')" "crab sn1987a " "archive subdirectory"
assert_eq "$(cat "$MNT/hpss/nova.tar/nova/crab")" "crab pulsar" "cat of one member"
$PY - "$HPSS_EMU_STATE/calls.log" <<'PYEOF' || fail "htar extracted more than the member read"
import json, sys
ex = [json.loads(l) for l in open(sys.argv[1])]
ex = [e for e in ex if e.get("event") == "cmd" and e.get("cmd") == "extract"]
assert len(ex) == 1, f"{len(ex)} htar extracts"
names = [f["name"] for f in ex[0]["files"]]
assert names == ["nova/crab"], names
PYEOF
pass "only nova/crab was extracted from nova.tar"
touch "$MNT/hpss/nova.tar/new" 2>/dev/null && fail "created a file inside an htar archive"
pass "an htar archive is read-only"

# cp into the writable directory archives it with put.
head -c 200000 /dev/urandom >"$WORK/results.h5"
cp "$WORK/results.h5" "$MNT/hpss/incoming/"
for i in $(seq 1 300); do
  [ "$(getfattr --absolute-names --only-values -n user.hsm.state "$MNT/hpss/incoming/results.h5")" == "dual" ] && break
  sleep 0.1
done
assert_eq "$(getfattr --absolute-names --only-values -n user.hsm.state "$MNT/hpss/incoming/results.h5")" "dual" "archived"
cmp -s "$WORK/results.h5" "$HOME_DIR/incoming/results.h5" || fail "the HPSS copy differs"
grep '"cmd": "put"' "$HPSS_EMU_STATE/calls.log" | grep -q '/home/elvis/incoming/results.h5' ||
  fail "no hsi put of results.h5 in the call log"
pass "cp into incoming/ archived the file with hsi put"
cp "$WORK/results.h5" "$MNT/hpss/data/" 2>/dev/null && fail "wrote outside the writable directory"
pass "writes elsewhere are refused"

fusermount3 -u "$MNT"
wait_unmounted "$MNT"
pass "unmounted"
