#!/bin/bash
# The iRODS backend through a real mount, against the iRODS EMULATOR
# (tests/emulators/irods), plain and TLS. What another client sees is read
# with Debian's python3-irodsclient (irods_pyclient.py), not with our client.
#  - config errors exit 2, a wrong password exits 1, with one line that never
#    holds the password (nor does the log);
#  - ls -lR of a zone with 10,000 objects equals the zone's catalog;
#  - hsmctl ls prints DMF codes like dm_ilist; cat of an OFL object recalls it
#    (user.hsm.dmf OFL -> UNM -> DUL) and returns its bytes;
#  - a connection dropped mid-transfer is retried transparently;
#  - hsmctl stage --wait of 200 OFL objects with realistic path lengths (the
#    emulator refuses a rule string token over 1,023 characters and then
#    runs the rule without *paths, like a real server) makes at most
#    200 x (average path length) / 1,000 + 1 stage rule calls, each with
#    all its paths, and no single-path fallback;
#  - cp of 100 files into a writable collection: DUL objects whose iRODS
#    checksums are the files' sha256; mv and rm reach the zone.
source "$(dirname "$0")/lib.sh"

SRC=${HSMFS_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
PY=/usr/bin/python3
PYC=("$PY" "$SRC/tests/integration/irods_pyclient.py")
ZHOME=/tempZone/home/rods
if ! $PY -c 'import irods.session' 2>/dev/null; then
  echo "SKIP: python3-irodsclient is not installed (apt-get install python3-irodsclient)"
  exit 77
fi

source "$SRC/tests/emulators/irods/fixture.sh"

# The zone: big/ 10,000 small DUL objects; tape/ one 3 MiB OFL object and
# batch/ 200 OFL objects; disk/ a 6 MiB DUL object; a/b/c nested.
$PY - "$WORK/seed.json" <<'PY'
import json, sys
H = "/tempZone/home/rods"
objs = [{"path": H + "/tape/one.dat", "size": 3 << 20, "avus": [["SURF-DMF", "OFL", ""]]},
        {"path": H + "/disk/big.dat", "size": 6 << 20, "checksum": True},
        {"path": H + "/a/b/c/deep.txt", "data": "deep\n", "checksum": True}]
# Names as long as a project's real ones: paths of about 100 characters.
for i in range(200):
    objs.append({"path": "%s/tape/batch/f%03d_ensemble-run-2026_station-utrecht_temperature-humidity.nc"
                         % (H, i), "data": "batch object %d\n" % i * 50,
                 "avus": [["SURF-DMF", "OFL", ""]]})
json.dump({"collections": [H + "/incoming"], "objects": objs,
           "bulk": {"collection": H + "/big", "count": 10000, "prefix": "obj"}},
          open(sys.argv[1], "w"))
PY
# The bytes the emulator makes for an object seeded by size: its path and a
# newline, repeated and cut at the size.
expected() {  # PATH SIZE
  $PY -c 'import sys; p = sys.argv[1].encode() + b"\n"; n = int(sys.argv[2]); sys.stdout.buffer.write((p * (n // len(p) + 1))[:n])' "$1" "$2"
}

echo '{}' >"$WORK/control.json"
start_emu plain --seed-json "$WORK/seed.json" --stage-delay 1.5 --mig-delay 0.2 --dul-delay 0.2 \
  --control "$WORK/control.json"
PLAIN_PORT=$PORT
$PY -c 'from irods.password_obfuscation import encode; import os; print(encode("rods", os.getuid()))' \
  >"$WORK/irodsA"

# irods_config FILE PORT [extra backend lines]
irods_config() {
  local file=$1 port=$2
  shift 2
  config_head "$file"
  cat >>"$file" <<TOML
[archive]
settle = "1s"
checksum = "sha256"
verify = "backend"
[stage]
coalesce = "500ms"
[mount]
list_timeout = "60s"
[[backend]]
name = "irods"
type = "irods"
host = "127.0.0.1"
port = $port
zone = "tempZone"
user = "rods"
stage_poll = "200ms"
TOML
  local line
  for line in "$@"; do echo "$line" >>"$file"; done
}

# --- config and authentication errors
irods_config "$WORK/nozone.toml" "$PLAIN_PORT" 'password = "rods"'
sed -i '/^zone = /d' "$WORK/nozone.toml"
rc=0; out=$("$BIN/hsmfs" -c "$WORK/nozone.toml" "$WORK/m0" -f 2>&1) || rc=$?
[ $rc -eq 2 ] && [ "$(echo "$out" | wc -l)" -eq 1 ] && echo "$out" | grep -q "zone" ||
  fail "config without zone: exit $rc, '$out'"
pass "a config without zone exits 2 with one line naming zone"
irods_config "$WORK/wrongpw.toml" "$PLAIN_PORT" 'password = "Wr0ng-s3cret"'
mkdir -p "$WORK/m0"
rc=0; out=$(timeout 60 "$BIN/hsmfs" -c "$WORK/wrongpw.toml" "$WORK/m0" 2>&1) || rc=$?
[ $rc -eq 1 ] && [ "$(echo "$out" | wc -l)" -eq 1 ] || fail "wrong password: exit $rc, '$out'"
echo "$out" | grep -qi "auth\|password\|denied" || fail "wrong password: the line does not say why: '$out'"
! grep -rq "Wr0ng-s3cret" <(echo "$out") "$WORK"/*.log 2>/dev/null || fail "the password shows in output or a log"
mountpoint -q "$WORK/m0" 2>/dev/null && fail "mounted with a wrong password"
pass "a wrong password exits 1 at mount time with one line ($out), never showing the password"

# --- mount, browse 10,000 objects
CONF=$WORK/hsmfs.toml
irods_config "$CONF" "$PLAIN_PORT" "password_file = \"$WORK/irodsA\"" 'writable = ["incoming"]' \
  'allow_delete = true'
MNT=$WORK/mnt
mount_bg "$CONF" "$MNT"
t0=$(date +%s.%N)
ls -lR "$MNT/irods/big" >/dev/null || fail "ls -lR big"
t1=$(date +%s.%N)
"${PYC[@]}" "$PLAIN_PORT" list "$ZHOME/big" >"$WORK/want.big"
(cd "$MNT/irods/big" && find . -type f -printf '%P|%s\n' | LC_ALL=C sort) >"$WORK/got.big"
[ "$(wc -l <"$WORK/want.big")" -eq 10000 ] || fail "the emulator lists $(wc -l <"$WORK/want.big") objects"
diff -q "$WORK/want.big" "$WORK/got.big" >/dev/null ||
  fail "mount and zone differ: $(diff "$WORK/want.big" "$WORK/got.big" | head -5)"
pass "ls -lR of 10,000 objects equals the zone's catalog ($(printf '%.2f' "$(echo "$t1 - $t0" | bc)") s cold)"
"${PYC[@]}" "$PLAIN_PORT" list "$ZHOME" | grep -v '^big/' >"$WORK/want.rest"
(cd "$MNT/irods" && find . -type f -not -path './big/*' -printf '%P|%s\n' | LC_ALL=C sort) >"$WORK/got.rest"
diff -q "$WORK/want.rest" "$WORK/got.rest" >/dev/null ||
  fail "the rest of the zone differs: $(diff "$WORK/want.rest" "$WORK/got.rest" | head -5)"
[ "$(cat "$MNT/irods/a/b/c/deep.txt")" == "deep" ] || fail "cat a/b/c/deep.txt"
pass "nested collections and the other objects match; a small DUL object reads back"

# --- DMF codes
out=$("$BIN/hsmctl" -c "$CONF" ls "$MNT/irods/tape")
echo "$out" | grep -q '^OFL  *3145728 .*irods/tape/one.dat$' || fail "hsmctl ls tape: $out"
out=$("$BIN/hsmctl" -c "$CONF" ls "$MNT/irods/disk")
echo "$out" | grep -q '^DUL  *6291456 .*irods/disk/big.dat$' || fail "hsmctl ls disk: $out"
assert_eq "$(getfattr --absolute-names -n user.hsm.dmf --only-values "$MNT/irods/tape/one.dat")" "OFL" \
  "hsmctl ls and user.hsm.dmf show OFL on tape, DUL on disk"

# --- cat of an OFL object: OFL -> UNM -> DUL
expected "$ZHOME/tape/one.dat" $((3 << 20)) >"$WORK/one.want"
cat "$MNT/irods/tape/one.dat" >"$WORK/one.got" &
CAT=$!
seen=""
for i in $(seq 1 200); do
  s=$(getfattr --absolute-names -n user.hsm.dmf --only-values "$MNT/irods/tape/one.dat" 2>/dev/null || true)
  case " $seen " in *" $s "*) ;; *) seen="$seen $s" ;; esac
  kill -0 $CAT 2>/dev/null || break
  sleep 0.05
done
wait $CAT || fail "cat of the OFL object failed"
cmp -s "$WORK/one.want" "$WORK/one.got" || fail "cat of the OFL object returned other bytes"
echo "$seen" | grep -q UNM || fail "user.hsm.dmf never showed UNM during the recall (saw:$seen)"
assert_eq "$(getfattr --absolute-names -n user.hsm.dmf --only-values "$MNT/irods/tape/one.dat")" "DUL" \
  "cat of an OFL object recalls it (dmf seen:$seen, then DUL) with the right bytes"
grep -q "rule msiDmfStage" "$WORK/plain.log" || fail "no stage rule was called for the OFL object"
"${PYC[@]}" "$PLAIN_PORT" states "$ZHOME/tape" SURF-DMF | grep -q '^one.dat||DUL$' ||
  fail "the zone does not say DUL for one.dat: $("${PYC[@]}" "$PLAIN_PORT" states "$ZHOME/tape" SURF-DMF | head -3)"
pass "the zone itself now holds one.dat as DUL"

# --- a connection dropped mid-transfer
echo '{"drop_mid_read": true}' >"$WORK/control.json"
expected "$ZHOME/disk/big.dat" $((6 << 20)) >"$WORK/big.want"
cat "$MNT/irods/disk/big.dat" >"$WORK/big.got" || fail "cat disk/big.dat after a dropped connection"
cmp -s "$WORK/big.want" "$WORK/big.got" || fail "disk/big.dat: other bytes after a dropped connection"
grep -q "fault: drop mid-read" "$WORK/plain.log" || fail "the emulator never dropped the read"
pass "a connection dropped mid-read is retried transparently (right bytes)"

# --- hsmctl stage of 200 OFL objects: batched stage rules
before=$(grep -c "rule msiDmfStage" "$WORK/plain.log")
lines_before=$(wc -l <"$WORK/plain.log")
ls "$MNT/irods/tape/batch" >/dev/null
"$BIN/hsmctl" -c "$CONF" stage --wait "$MNT"/irods/tape/batch/*.nc >"$WORK/stage.out" 2>&1 ||
  fail "hsmctl stage --wait: $(tail -3 "$WORK/stage.out")"
calls=$(($(grep -c "rule msiDmfStage" "$WORK/plain.log") - before))
tail -n +$((lines_before + 1)) "$WORK/plain.log" >"$WORK/stage.log"
# The bound of issue 19: 200 x (average path length) / 1,000 + 1.
avg=$(cd "$MNT/irods/tape/batch" && ls | awk -v d="$ZHOME/tape/batch/" '{n += length(d $0)} END {print int(n / NR)}')
bound=$((200 * avg / 1000 + 1))
[ "$calls" -ge 1 ] && [ "$calls" -le 4 ] && [ "$calls" -le "$bound" ] ||
  fail "200 stages took $calls stage rule calls (bound $bound): $(grep -c 'paths=1$' "$WORK/stage.log") of one path"
! grep -q "rule msiDmfStage paths=1$" "$WORK/stage.log" || fail "single-path stage rules: $(grep -c 'paths=1$' "$WORK/stage.log")"
! grep -q "rule msiDmfStage paths=0$" "$WORK/stage.log" || fail "a stage rule ran without its paths"
! grep -q "syntax error" "$WORK/stage.log" || fail "the emulator saw a rule syntax error: $(grep -m1 'syntax error' "$WORK/stage.log")"
[ "$(grep -o 'rule msiDmfStage paths=[0-9]*' "$WORK/stage.log" | awk -F= '{n += $2} END {print n}')" -ge 200 ] ||
  fail "the stage rules carried fewer than 200 paths: $(grep 'rule msiDmfStage' "$WORK/stage.log")"
for i in 0 57 123 199; do
  f=$(printf 'f%03d_ensemble-run-2026_station-utrecht_temperature-humidity.nc' $i)
  [ "$(getfattr --absolute-names -n user.hsm.state --only-values "$MNT/irods/tape/batch/$f")" == dual ] || fail "$f not dual"
  [ "$(head -1 "$MNT/irods/tape/batch/$f")" == "batch object $i" ] || fail "$f content"
done
pass "hsmctl stage of 200 OFL objects (paths of $avg characters): $calls stage rule call(s) (at most $bound), none of one path, all dual and right"

# --- cp of 100 files into a writable collection
mkdir -p "$WORK/src/sub"
for i in $(seq 1 100); do
  d=$WORK/src
  [ $((i % 4)) -eq 0 ] && d=$WORK/src/sub
  head -c $(((i * 7919) % 300000)) /dev/urandom >"$d/file$i.bin"
done
cp -r "$WORK/src/." "$MNT/irods/incoming/run1/" || fail "cp -r into incoming"
# Files below run1 that are not dual yet (one getfattr for the whole tree).
not_dual() {
  echo $((100 - $(getfattr -R --absolute-names -n user.hsm.state "$MNT/irods/incoming/run1" 2>/dev/null |
    grep -c '^user.hsm.state="dual"$')))
}
for i in $(seq 1 600); do
  left=$(not_dual)
  [ "$left" -eq 0 ] && break
  sleep 0.5
done
[ "$left" -eq 0 ] || fail "$left files not dual after 300 s: $(tail -5 "$WORK/hsmfs.log")"
(cd "$WORK/src" && find . -type f -printf '%P\n' | LC_ALL=C sort | while read -r f; do
  echo "$f|sha2:$(openssl dgst -sha256 -binary "$f" | base64)"
done) >"$WORK/want.sums"
for i in $(seq 1 150); do
  "${PYC[@]}" "$PLAIN_PORT" states "$ZHOME/incoming/run1" SURF-DMF >"$WORK/got.states"
  grep -vq '|DUL$' "$WORK/got.states" || break
  sleep 0.2
done
cut -d'|' -f1,2 "$WORK/got.states" >"$WORK/got.sums"
diff -q "$WORK/want.sums" "$WORK/got.sums" >/dev/null ||
  fail "iRODS checksums differ from the files': $(diff "$WORK/want.sums" "$WORK/got.sums" | head -4)"
[ "$(grep -c '|DUL$' "$WORK/got.states")" -eq 100 ] || fail "not all DUL: $(grep -v '|DUL$' "$WORK/got.states" | head -3)"
pass "cp of 100 files: all dual here, DUL in the zone, iRODS sha2 checksums = the files' sha256"
# A fresh listing of what was written keeps it as it is (sizes, mtimes, cached).
stat_list() { (cd "$MNT/irods/incoming/run1" && find . -type f -printf '%P|%s|%T@\n' | LC_ALL=C sort); }
stat_list >"$WORK/before.sync"
"$BIN/hsmctl" -c "$CONF" sync irods/incoming >/dev/null 2>&1 || fail "hsmctl sync irods/incoming"
stat_list >"$WORK/after.sync"
diff -q "$WORK/before.sync" "$WORK/after.sync" >/dev/null || fail "a listing changed what was written: $(diff "$WORK/before.sync" "$WORK/after.sync" | head -4)"
left=$(not_dual)
[ "$left" -eq 0 ] || fail "$left written files are no longer dual after a listing"
pass "a fresh listing of the written files keeps their sizes, mtimes and cached copies"

# --- mv and rm reach the zone; writes elsewhere are refused
mv "$MNT/irods/incoming/run1/file1.bin" "$MNT/irods/incoming/run1/renamed.bin" || fail "mv"
rm "$MNT/irods/incoming/run1/file2.bin" || fail "rm"
"${PYC[@]}" "$PLAIN_PORT" list "$ZHOME/incoming/run1" >"$WORK/after"
grep -q '^renamed.bin|' "$WORK/after" && ! grep -q '^file1.bin|' "$WORK/after" &&
  ! grep -q '^file2.bin|' "$WORK/after" || fail "mv/rm did not reach the zone: $(head -3 "$WORK/after")"
cmp -s "$WORK/src/file1.bin" "$MNT/irods/incoming/run1/renamed.bin" || fail "renamed file content"
rc=0; echo x 2>/dev/null >"$MNT/irods/big/new.txt" || rc=$?
[ $rc -ne 0 ] || fail "a write outside the writable collection succeeded"
pass "mv and rm reach the zone; writes outside incoming are refused"
fusermount3 -u "$MNT"
wait_unmounted "$MNT"

# --- TLS
start_emu tls --tls require --cert-out "$WORK/cert.pem" --seed-json "$WORK/seed.json" --stage-delay 0.5
TLS_PORT=$PORT
for i in $(seq 1 50); do [ -s "$WORK/cert.pem" ] && break; sleep 0.1; done
rm -rf "$WORK/catalog.db"* "$WORK/cache"
irods_config "$WORK/tls.toml" "$TLS_PORT" 'password = "rods"' 'tls = "require"' \
  "ca_file = \"$WORK/cert.pem\""
MNT2=$WORK/mnt-tls
mount_bg "$WORK/tls.toml" "$MNT2"
[ "$(find "$MNT2/irods/big" -type f | wc -l)" -eq 10000 ] || fail "TLS: big has $(find "$MNT2/irods/big" -type f | wc -l) files"
cat "$MNT2/irods/tape/one.dat" >"$WORK/one.tls" || fail "TLS: cat of the OFL object"
cmp -s "$WORK/one.want" "$WORK/one.tls" || fail "TLS: other bytes"
grep -q "auth ok" "$WORK/tls.log" || fail "TLS: the emulator saw no authentication"
pass "TLS (server requires it): 10,000 objects listed, an OFL object recalled with the right bytes"
irods_config "$WORK/notls.toml" "$TLS_PORT" 'password = "rods"' 'tls = "refuse"'
sed -i -e "s|$WORK/catalog.db|$WORK/notls.db|" -e "s|$WORK/cache|$WORK/notls-cache|" "$WORK/notls.toml"
rc=0; out=$(timeout 60 "$BIN/hsmfs" -c "$WORK/notls.toml" "$WORK/m0" 2>&1) || rc=$?
[ $rc -ne 0 ] && [ "$(echo "$out" | wc -l)" -eq 1 ] || fail "tls=refuse against require: exit $rc, '$out'"
pass "tls = refuse against a server that requires TLS fails at mount time: $out"
