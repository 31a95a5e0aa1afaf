#!/bin/bash
# The tape backend in a real mount: hsmtape archives 30 target directories
# over 3 tapes of a virtual library (3 drives), the drives are emptied, and
# hsmfs mounts the tape tables with type = "tape": the targets show under
# their source paths (minus strip_prefix) and under .by-tape; `cat` of one
# file returns its bytes and the library's persisted counters show that only
# about that file's bytes were read; then 500 recalls of random files over
# the 3 tapes, in random order by 16 parallel readers, are all correct (md5)
# with at most one load per tape. Config errors exit 2 naming the key.
source "$(dirname "$0")/lib.sh"
command -v sqlite3 >/dev/null || { echo "SKIP: sqlite3 is missing"; exit 77; }
cd "$WORK"
T() { "$BIN/hsmtape" -c "$WORK/tape.conf" "$@" </dev/null; }
counter() {  # NAME: a counter of the library, as persisted in library.json
  /usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["counters"][sys.argv[2]])' \
    "$WORK/library/library.json" "$1"
}

# --- 30 targets of 20 files (1 KiB - 96 KiB), one 3 MiB file in run07
mkdir -p data
/usr/bin/python3 - data <<'PY'
import os, random, sys
random.seed(11)
for t in range(30):
    d = os.path.join(sys.argv[1], f"run{t:02d}")
    os.makedirs(os.path.join(d, "sub"))
    for i in range(20):
        p = os.path.join(d, "sub" if i % 5 == 0 else "", f"f{i:02d}.dat")
        with open(p, "wb") as f:
            f.write(os.urandom(random.randint(1024, 96 * 1024)))
with open(os.path.join(sys.argv[1], "run07", "big.bin"), "wb") as f:
    f.write(os.urandom(3 << 20))
PY
cat >tape.conf <<EOF
[default]
database_file = catalog.db
tape_device = vtl:library
block_size = 64KiB
EOF
T vtl_create --slots 4 --drives 3 --capacity 256MiB >/dev/null
for n in 1 2 3; do
  for t in $(seq $(((n - 1) * 10)) $((n * 10 - 1))); do printf '%s/data/run%02d\n' "$WORK" "$t"; done >list$n.txt
  T open_tape T0000$n --activate >/dev/null
  T import list$n.txt >/dev/null 2>&1
  T assign >/dev/null
  T archive --all >archive$n.log 2>&1 || { cat archive$n.log; fail "archive to T0000$n"; }
  T confirm --all >/dev/null 2>&1 || fail "confirm T0000$n"
  T close_tape --yes >/dev/null
done
[ "$(sqlite3 catalog.db "SELECT count(*) FROM targets WHERE state = 'confirmed'")" == 30 ] ||
  fail "not every target is confirmed"
pass "hsmtape archived and confirmed 30 targets on 3 tapes"

# The robot puts every tape back in its slot: each recall must load its tape.
/usr/bin/python3 - library/library.json <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
for d in j["drives"]:
    d.update(tape=None, block=0, head_bytes=0)
json.dump(j, open(sys.argv[1], "w"), indent=2)
PY

# --- config: the keys, their defaults, and errors
write_config hsmfs.toml /unused
sed -i -e '/^name = "vault"/,$d' hsmfs.toml
cat >>hsmfs.toml <<EOF
name = "tape"
type = "tape"
library = "vtl:library"
strip_prefix = "$WORK/data/"
EOF
"$BIN/hsmfs" -c hsmfs.toml --print-config >printed.toml
grep -q "library = \"vtl:$WORK/library\"" printed.toml &&
  grep -q "strip_prefix = \"$WORK/data\"" printed.toml &&
  grep -q "tape_catalog = \"$WORK/catalog.db\"" printed.toml &&
  grep -q "stage_workers = 3" printed.toml || fail "print-config: $(grep -A12 'type = "tape"' printed.toml)"
pass "--print-config: library, tape_catalog from [catalog], strip_prefix, stage_workers = 3 drives"
for bad in 'colour = "blue"|colour' 'library = "/dev/st0"|library' 'strip_prefix = "rel"|strip_prefix' \
  'drives = ["/dev/nst0"]|drives' 'tape_catalog = 7|tape_catalog' 'unit_size = 0|unit_size' 'unit_quiet = "soon"|unit_quiet'; do
  cp hsmfs.toml bad.toml
  echo "${bad%|*}" >>bad.toml
  rc=0; out=$("$BIN/hsmfs" -c bad.toml --print-config 2>&1) || rc=$?
  [ $rc -eq 2 ] && [ "$(echo "$out" | wc -l)" -eq 1 ] && echo "$out" | grep -q "${bad#*|}" ||
    fail "bad config '${bad%|*}': exit $rc, '$out'"
done
pass "bad tape keys exit 2 with one line naming the key"
# hsmtape reads the mount's config too: same catalog, same library.
[ "$("$BIN/hsmtape" -c hsmfs.toml tapes </dev/null | grep -c '^T0000[123] ')" -eq 3 ] ||
  fail "hsmtape -c hsmfs.toml tapes: $("$BIN/hsmtape" -c hsmfs.toml tapes 2>&1 </dev/null)"
"$BIN/hsmtape" -c hsmfs.toml where_is run13/sub </dev/null | grep -q "tape T0000[123] file" ||
  fail "hsmtape -c hsmfs.toml where_is"
rc=0; out=$("$BIN/hsmtape" -c hsmfs.toml --backend nope tapes 2>&1 </dev/null) || rc=$?
[ $rc -eq 2 ] && echo "$out" | grep -q "no \[\[backend\]\] with type = \"tape\" named nope" ||
  fail "hsmtape --backend nope: exit $rc, '$out'"
pass "hsmtape -c hsmfs.toml uses the mount's catalog and library"

# --- browse
mount_bg hsmfs.toml mnt
[ "$(ls mnt/tape | tr '\n' ' ')" == "$(ls data | tr '\n' ' ')" ] || fail "mnt/tape: $(ls mnt/tape)"
[ "$(ls mnt/tape/run13/sub | wc -l)" -eq 4 ] || fail "run13/sub: $(ls mnt/tape/run13/sub)"
(cd data && find . -type f -printf '%P %s\n' | LC_ALL=C sort) >src.list
(cd mnt/tape && find . -path ./.by-tape -prune -o -type f -printf '%P %s\n' | LC_ALL=C sort) >mnt.list
diff src.list mnt.list >/dev/null || fail "the tree differs: $(diff src.list mnt.list | head -5)"
pass "all 601 files show under their source paths, with their sizes"
[ "$(ls mnt/tape/.by-tape | tr '\n' ' ')" == "T00001 T00002 T00003 " ] || fail ".by-tape: $(ls mnt/tape/.by-tape)"
[ "$(ls mnt/tape/.by-tape/T00002 | wc -l)" -eq 10 ] || fail ".by-tape/T00002: $(ls mnt/tape/.by-tape/T00002)"
[ "$(find mnt/tape/.by-tape/T00003 -type f | wc -l)" -eq 200 ] || fail ".by-tape/T00003 file count"
pass ".by-tape shows the 3 tapes and 10 units on each"
loc=$(getfattr --only-values -n user.hsm.location mnt/tape/run07/big.bin 2>/dev/null) || loc=
echo "$loc" | grep -Eq "^tape T00001 file [0-9]+ block [0-9]+$" || fail "user.hsm.location: '$loc'"
pass "user.hsm.location: $loc"

# --- one cat reads only that file's blocks
read0=$(counter bytes_read)
cmp <(cat mnt/tape/run07/big.bin) data/run07/big.bin || fail "cat of run07/big.bin differs"
sleep 3  # the drive handle closes after 2 s idle and adds its counters to library.json
read1=$(counter bytes_read)
delta=$((read1 - read0))
size=$((3 << 20))
[ $delta -ge $size ] && [ $delta -le $((size + 2 * 65536)) ] ||
  fail "cat of a 3 MiB file read $delta bytes from tape"
pass "cat returns the right bytes and reads $delta bytes from tape for a $size-byte file"

# --- 500 recalls in random order by 16 parallel readers
loads0=$(counter loads)
(cd data && find . -type f ! -name big.bin -printf '%P\n') | shuf -n 500 --random-source=<(yes) >picks.txt
[ "$(cut -d/ -f1 picks.txt | sort -u | wc -l)" -eq 30 ] || fail "the picks do not cover the 30 targets"
(cd data && xargs -a ../picks.txt md5sum) | sort -k2 >want.md5
(cd mnt/tape && xargs -a ../../picks.txt -P 16 -n 4 md5sum) | sort -k2 >got.md5
diff want.md5 got.md5 >/dev/null || fail "recalled data differs: $(diff want.md5 got.md5 | head -3)"
pass "500 recalls by 16 parallel readers: every md5 matches"
sleep 3
loads=$(($(counter loads) - loads0))
[ $loads -le 3 ] || fail "$loads tape loads for 500 recalls over 3 tapes"
pass "$loads loads for 500 recalls over 3 tapes (at most one per tape)"
fusermount3 -u mnt
wait_unmounted mnt
echo "PASS"
