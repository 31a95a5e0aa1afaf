# The tapeop workflow with hsmtape on a virtual tape library, from the command
# line: open_tape, import 20 directories (10 local, 10 over ssh to a real
# sshd on 127.0.0.1), assign, archive --all until the tape fills, confirm
# --all, close_tape, a second tape for the rest; where_is and dump_manifest
# agree with md5sum; rebuild_catalog from the tapes alone gives the same
# catalog; a byte flipped in a tape image is found by confirm (exactly that
# file, exit 1); kill -9 in the middle of an archive, then a rerun, leaves
# tape and catalog in agreement; bad input is refused with one line.
# Needs no FUSE mount.
set -euo pipefail
BIN=${HSMFS_BIN:?set HSMFS_BIN to the build directory}/bin
WORK=$(mktemp -d /tmp/hsmfs-tape-it.XXXXXX)
SSHD_PID=
cleanup() {
  local rc=$?
  [ -n "$SSHD_PID" ] && kill "$SSHD_PID" 2>/dev/null || true
  if [ -n "${KEEP_WORK:-}" ]; then echo "kept $WORK"; else rm -rf "$WORK" || true; fi
  exit "$rc"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { echo "ok: $*"; }
T() { "$BIN/hsmtape" -c "$WORK/tape.conf" "$@" </dev/null; }
cd "$WORK"

# --- a real sshd on a free port, with throwaway keys
[ -x /usr/sbin/sshd ] || { echo "SKIP: /usr/sbin/sshd is missing"; exit 77; }
mkdir -p /run/sshd ssh
ssh-keygen -q -t ed25519 -N '' -f ssh/host_key
ssh-keygen -q -t ed25519 -N '' -f ssh/user_key
cp ssh/user_key.pub ssh/authorized_keys
PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >ssh/sshd_config <<EOF
Port $PORT
ListenAddress 127.0.0.1
HostKey $WORK/ssh/host_key
AuthorizedKeysFile $WORK/ssh/authorized_keys
PidFile $WORK/ssh/sshd.pid
StrictModes no
UsePAM no
PermitRootLogin prohibit-password
Subsystem sftp internal-sftp
EOF
/usr/sbin/sshd -D -e -f ssh/sshd_config 2>ssh/sshd.log &
SSHD_PID=$!
for i in $(seq 1 100); do
  (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break
  sleep 0.05
done
echo "[127.0.0.1]:$PORT $(cut -d' ' -f1,2 ssh/host_key.pub)" >ssh/known_hosts

# --- 20 target directories of 0.5-2.5 MiB, small and large files
mkdir -p data
/usr/bin/python3 - data <<'PY'
import os, random, sys
random.seed(7)
for t in range(20):
    d = os.path.join(sys.argv[1], f"run{t:02d}")
    os.makedirs(os.path.join(d, "sub"))
    for i in range(4):
        with open(os.path.join(d, f"f{i}.dat"), "wb") as f:
            f.write(os.urandom(random.randint(1, 600_000)))
    with open(os.path.join(d, "sub", "notes with space.txt"), "w") as f:
        f.write(f"target {t}\n")
    open(os.path.join(d, "sub", "empty"), "w").close()
PY
for t in $(seq -w 0 19); do
  if [ $((10#$t % 2)) -eq 0 ]; then echo "local:$WORK/data/run$t"; else echo "$WORK/data/run$t"; fi
done >targets.txt
cat >tape.conf <<EOF
[default]
database_file = catalog.db
tape_device = vtl:library
ssh_command = ssh root@127.0.0.1 -i $WORK/ssh/user_key -p $PORT
known_hosts = ssh/known_hosts
block_size = 64KiB
EOF

# --- bad input first: one line, exit 2
rc=0; out=$("$BIN/hsmtape" -c nope.conf tapes 2>&1) || rc=$?
[ $rc -eq 2 ] && [ "$(echo "$out" | wc -l)" -eq 1 ] && echo "$out" | grep -q nope.conf ||
  fail "missing tape.conf: exit $rc, '$out'"
printf '[default]\ndatabase_file = x.db\ntape_device = vtl:library\ncolour = blue\n' >bad.conf
rc=0; out=$("$BIN/hsmtape" -c bad.conf tapes 2>&1) || rc=$?
[ $rc -eq 2 ] && echo "$out" | grep -q "bad.conf:4: unknown key 'colour'" ||
  fail "unknown key: exit $rc, '$out'"
printf '[default]\ndatabase_file = x.db\ntape_device = /dev/st0\n' >bad.conf
rc=0; out=$("$BIN/hsmtape" -c bad.conf tapes 2>&1) || rc=$?
[ $rc -eq 2 ] && echo "$out" | grep -q "tape_device" || fail "rewinding device: exit $rc, '$out'"
pass "bad tape.conf files exit 2 with one line naming file, line and key"

T vtl_create --slots 4 --drives 2 --capacity 22MiB >/dev/null
rc=0; out=$(T archive 2>&1) || rc=$?
[ $rc -eq 1 ] && echo "$out" | grep -q "no active tape" || fail "archive without a tape: $out"
pass "archive without an active tape says what to do"

# --- first tape
T open_tape T00001 --serial SN-1 --activate | grep -q "T00001 labelled" || fail "open_tape"
T import targets.txt >import.log 2>&1 || { cat import.log; fail "import"; }
grep -q "20 of 20 targets imported" import.log || fail "import count: $(tail -1 import.log)"
grep -q "imported target 2: root@127.0.0.1:$PORT:$WORK/data/run01 (6 files" import.log ||
  fail "remote target not imported over ssh: $(grep run01 import.log)"
pass "20 targets imported (10 local, 10 over ssh), every file checksummed"
rc=0; out=$(T import targets.txt 2>&1) || rc=$?
echo "$out" | grep -q "0 of 20 targets imported" || fail "a second import added targets again"
pass "a second import of the same targets adds nothing"
T assign | grep -q "20 targets assigned to tape T00001" || fail "assign"
T archive --all >archive1.log 2>&1 || { cat archive1.log; fail "archive --all on T00001"; }
grep -q "tape T00001 is full" archive1.log || fail "tape 1 did not fill: $(tail -2 archive1.log)"
on1=$(grep -c "^archived target" archive1.log)
[ "$on1" -ge 5 ] && [ "$on1" -lt 20 ] || fail "$on1 targets on tape 1"
pass "archive --all wrote $on1 targets and stopped cleanly at the end of the tape"
T confirm --all >confirm1.log || { cat confirm1.log; fail "confirm --all on T00001"; }
[ "$(grep -c ': OK,' confirm1.log)" -eq "$on1" ] || fail "confirm: $(cat confirm1.log)"
pass "confirm --all: every file on tape 1 matches its md5"
T close_tape --yes | grep -q "unassigned again" || fail "close_tape did not free the unwritten targets"

# --- second tape
T open_tape T00002 --activate >/dev/null
T assign | grep -q "$((20 - on1)) targets assigned to tape T00002" || fail "assign to tape 2"
T archive --all >archive2.log 2>&1 || { cat archive2.log; fail "archive --all on T00002"; }
[ "$(grep -c "^archived target" archive2.log)" -eq $((20 - on1)) ] || fail "tape 2: $(cat archive2.log)"
T confirm --all >confirm2.log || { cat confirm2.log; fail "confirm --all on T00002"; }
[ "$(grep -c ': OK,' confirm2.log)" -eq $((20 - on1)) ] || fail "confirm 2: $(cat confirm2.log)"
pass "the other $((20 - on1)) targets are on tape 2, confirmed"
T status | grep -q "confirmed .* $((20 - on1)) targets" || fail "status: $(T status)"

# --- queries
line=$(T where_is run07/f2.dat)
md5=$(md5sum data/run07/f2.dat | cut -d' ' -f1)
echo "$line" | grep -q "tape T0000[12] file [0-9]* block [0-9]*" && echo "$line" | grep -q "$md5" ||
  fail "where_is: $line"
pass "where_is names the tape, file, block and md5 ($line)"
T dump_manifest manifests >/dev/null
[ "$(ls manifests | wc -l)" -eq 20 ] || fail "dump_manifest wrote $(ls manifests | wc -l) files"
(cd / && cat "$WORK"/manifests/*.md5 | md5sum -c --quiet) || fail "md5sum -c of the manifests"
[ "$(cat manifests/*.md5 | wc -l)" -eq 120 ] || fail "manifest lines"
pass "dump_manifest: 120 files, md5sum -c agrees with the sources"

# --- the catalog rebuilt from the tapes alone
sed 's/^database_file = .*/database_file = rebuilt.db/' tape.conf >rebuilt.conf
"$BIN/hsmtape" -c rebuilt.conf rebuild_catalog T00001 >/dev/null
"$BIN/hsmtape" -c rebuilt.conf rebuild_catalog T00002 >/dev/null
"$BIN/hsmtape" -c rebuilt.conf dump_manifest rebuilt >/dev/null
diff -r manifests rebuilt >/dev/null || fail "the rebuilt catalog differs: $(diff -r manifests rebuilt | head)"
q="SELECT t.tape, t.file_number, t.start_block, f.rel_path, f.size, f.md5, f.data_offset
   FROM target_files f JOIN targets t ON t.id = f.target_id ORDER BY 1, 2, 4"
[ "$(sqlite3 catalog.db "$q")" == "$(sqlite3 rebuilt.db "$q")" ] ||
  fail "rebuilt catalog: positions or checksums differ"
pass "rebuild_catalog from the two tapes reproduces every file, position and md5"

# --- a flipped byte: confirm finds exactly that file
victim=$(grep -l "run03/f1.dat" manifests/*.md5 | head -1)
tape=$(basename "$victim" | cut -d_ -f1)
/usr/bin/python3 - "library/tapes/$tape.vtape" data/run03/f1.dat <<'PY'
import sys
img = bytearray(open(sys.argv[1], "rb").read())
data = open(sys.argv[2], "rb").read()
probe = data[len(data) // 2:len(data) // 2 + 64]
i = img.find(probe)
assert i > 0 and img.find(probe, i + 1) < 0, "probe not unique"
img[i + 10] ^= 0x01
open(sys.argv[1], "wb").write(img)
PY
rc=0; T confirm --all --retry --tape "$tape" >flip.log 2>&1 || rc=$?
[ $rc -eq 1 ] || fail "confirm of a damaged tape exited $rc"
[ "$(grep -c DAMAGED flip.log)" -eq 1 ] && [ "$(grep -c '^  /' flip.log)" -eq 1 ] &&
  grep -q "^  $WORK/data/run03/f1.dat$" flip.log || fail "damage report: $(cat flip.log)"
pass "a flipped byte in $tape: confirm names exactly run03/f1.dat and exits 1"

# --- kill -9 in the middle of an archive, then a rerun
mkdir -p data/big
head -c $((12 << 20)) /dev/urandom >data/big/one.bin
head -c $((3 << 20)) /dev/urandom >data/big/two.bin
echo "local:$WORK/data/big" >big.txt
T open_tape T00003 --activate >/dev/null
T import big.txt >/dev/null 2>&1
T assign >/dev/null
"$BIN/hsmtape" -c tape.conf archive </dev/null >/dev/null 2>&1 &
pid=$!
for i in $(seq 1 400); do
  [ "$(sqlite3 catalog.db "SELECT state FROM targets WHERE path = '$WORK/data/big'")" == writing ] && break
  sleep 0.01
done
sleep 0.05
kill -9 $pid 2>/dev/null || true
wait $pid 2>/dev/null || true
state=$(sqlite3 catalog.db "SELECT state FROM targets WHERE path = '$WORK/data/big'")
[ "$state" == writing ] || echo "note: the archive finished before the kill (state $state)"
T archive >rerun.log 2>&1 || { cat rerun.log; fail "archive after kill -9"; }
T confirm --all --tape T00003 | grep -q ": OK," || fail "confirm after the rerun"
"$BIN/hsmtape" -c rebuilt.conf rebuild_catalog T00003 >rebuild3.log
grep -q "T00003: 1 units on tape" rebuild3.log || fail "tape 3 holds: $(cat rebuild3.log)"
[ "$(sqlite3 catalog.db "SELECT next_block FROM tapes WHERE name = 'T00003'")" == \
  "$(sqlite3 rebuilt.db "SELECT next_block FROM tapes WHERE name = 'T00003'")" ] ||
  fail "tape 3: the catalog's end of data differs from the tape's"
pass "kill -9 during archive ($state), rerun: one unit on tape, confirmed, catalog and tape agree"
echo "PASS"
