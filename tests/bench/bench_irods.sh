#!/bin/bash
# Benchmark (not a test): the iRODS backend through a real hsmfs mount vs
# Debian's python3-irodsclient, both against the same iRODS EMULATOR
# (tests/emulators/irods) on loopback, in the same run:
#  - listing: `ls -l` of a collection of N objects (BENCH_OBJECTS, default
#    20,000) on a fresh mount (cold: the first listing goes to iRODS) and again
#    (warm: from the catalog), vs one GenQuery listing by python3-irodsclient;
#  - sequential read: K objects of M MiB (BENCH_FILES, BENCH_MIB; default 4 x
#    64 MiB) read with cat through the mount (a recall each: iRODS -> cache ->
#    reader) vs python3-irodsclient's get of the same objects;
#  - sequential write: the same files copied into a writable collection and
#    archived (until every file is dual) vs python3-irodsclient's put.
# The emulator is Python: both clients share its cost, so read the ratios.
# HSMFS_BIN: a build directory with hsmfs (release). Needs /dev/fuse.
source "$(dirname "$0")/../integration/lib.sh"

SRC=${HSMFS_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
source "$SRC/tests/emulators/irods/fixture.sh"
PY=/usr/bin/python3
PYC=("$PY" "$SRC/tests/integration/irods_pyclient.py")
ZHOME=/tempZone/home/rods
N=${BENCH_OBJECTS:-20000}
K=${BENCH_FILES:-4}
M=${BENCH_MIB:-64}
$PY -c 'import irods.session' 2>/dev/null || { echo "SKIP: python3-irodsclient is missing"; exit 77; }

$PY - "$WORK/seed.json" "$N" "$K" "$M" <<'PY'
import json, sys
H = "/tempZone/home/rods"
n, k, m = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
objs = [{"path": "%s/data/d%02d.bin" % (H, i), "size": m << 20} for i in range(k)]
json.dump({"collections": [H + "/in-hsmfs", H + "/in-py"], "objects": objs,
           "bulk": {"collection": H + "/many", "count": n, "prefix": "obj"}}, open(sys.argv[1], "w"))
PY
start_emu bench --seed-json "$WORK/seed.json" --dmf-root none
cat >"$WORK/hsmfs.toml" <<TOML
[catalog]
path = "$WORK/catalog.db"
[cache]
dir = "$WORK/cache"
size = "20GiB"
[log]
file = "$WORK/hsmfs.log"
[archive]
settle = "1s"
checksum = "sha256"
verify = "backend"
[mount]
list_timeout = "10m"
[[backend]]
name = "irods"
type = "irods"
host = "127.0.0.1"
port = $PORT
zone = "tempZone"
user = "rods"
password = "rods"
writable = ["in-hsmfs"]
TOML
MNT=$WORK/mnt
secs() { echo "$2 - $1" | bc; }
now() { date +%s.%N; }

# Listing.
read -r py_list py_n < <("${PYC[@]}" "$PORT" bench-list "$ZHOME/many")
mount_bg "$WORK/hsmfs.toml" "$MNT"
t0=$(now); n1=$(ls -l "$MNT/irods/many" | grep -c '^-'); t1=$(now)
n2=$(ls -l "$MNT/irods/many" | grep -c '^-'); t2=$(now)
[ "$n1" -eq "$N" ] && [ "$py_n" -eq "$N" ] || fail "listed $n1 (mount) and $py_n (python) of $N"
cold=$(secs "$t0" "$t1"); warm=$(secs "$t1" "$t2")
printf 'listing %d objects: python3-irodsclient %.3f s (%.0f objects/s); hsmfs cold %.3f s (%.0f objects/s, ratio %.2f), warm %.3f s (%.0f objects/s)\n' \
  "$N" "$py_list" "$(echo "$N / $py_list" | bc -l)" "$cold" "$(echo "$N / $cold" | bc -l)" \
  "$(echo "$cold / $py_list" | bc -l)" "$warm" "$(echo "$N / $warm" | bc -l)"

# Sequential read.
MB=$((K * M * 1048576 / 1000000))
mkdir -p "$WORK/py-get"
py_get=$("${PYC[@]}" "$PORT" bench-get "$ZHOME/data" "$WORK/py-get")
t0=$(now)
for f in "$MNT"/irods/data/*.bin; do cat "$f" >/dev/null; done
t1=$(now)
hs_get=$(secs "$t0" "$t1")
cmp -s "$WORK/py-get/d00.bin" "$MNT/irods/data/d00.bin" || fail "read: the two clients got other bytes"
printf 'sequential read %d x %d MiB: python3-irodsclient %.2f s (%.0f MB/s); hsmfs cat (recall) %.2f s (%.0f MB/s, ratio of times %.2f)\n' \
  "$K" "$M" "$py_get" "$(echo "$MB / $py_get" | bc -l)" "$hs_get" "$(echo "$MB / $hs_get" | bc -l)" \
  "$(echo "$hs_get / $py_get" | bc -l)"

# Sequential write.
py_put=$("${PYC[@]}" "$PORT" bench-put "$WORK/py-get" "$ZHOME/in-py")
t0=$(now)
cp "$WORK"/py-get/*.bin "$MNT/irods/in-hsmfs/"
t1=$(now)
for i in $(seq 1 3000); do
  left=0
  for f in "$MNT"/irods/in-hsmfs/*.bin; do
    [ "$(getfattr --absolute-names -n user.hsm.state --only-values "$f")" == dual ] || left=$((left + 1))
  done
  [ $left -eq 0 ] && break
  sleep 0.1
done
t2=$(now)
[ $left -eq 0 ] || fail "write: $left files never became dual"
cp_s=$(secs "$t0" "$t1"); dual_s=$(secs "$t0" "$t2")
printf 'sequential write %d x %d MiB: python3-irodsclient put %.2f s (%.0f MB/s); hsmfs cp %.2f s, archived (dual, settle 1 s, sha256 checked by iRODS) after %.2f s (%.0f MB/s, ratio of times %.2f)\n' \
  "$K" "$M" "$py_put" "$(echo "$MB / $py_put" | bc -l)" "$cp_s" "$dual_s" "$(echo "$MB / $dual_s" | bc -l)" \
  "$(echo "$dual_s / $py_put" | bc -l)"
