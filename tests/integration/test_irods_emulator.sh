#!/bin/bash
# Tests the iRODS emulator (tests/emulators/irods/irods_emu.py) itself:
#  1. conformance: Debian's python3-irodsclient drives it (auth, listing with
#     paging, collections, object I/O, seek, checksum, AVUs, rules, the DMF
#     state machine, every fault kind, TLS negotiation);
#  2. replay: the client side of each real-server recording in
#     shared/irods-recordings/ is sent to the emulator and every reply is
#     compared with the recorded one (see replay_check.py for what is
#     normalised).
# Standalone: no FUSE mount, so it does not source lib.sh.
set -euo pipefail

SRC=${HSMFS_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
EMU_DIR=$SRC/tests/emulators/irods
EMU=$EMU_DIR/irods_emu.py
PY=/usr/bin/python3
# The recordings: the in-repo copy when present, else the shared folder.
RECORDINGS=${IRODS_RECORDINGS:-$SRC/tests/testdata/irods}
[ -f "$RECORDINGS/real_prc081.jsonl" ] || RECORDINGS=$SRC/../shared/irods-recordings
SEED=$SRC/tests/testdata/irods/emulator/recording_seed.json
WORK=$(mktemp -d /tmp/irods-emu-test.XXXXXX)
PIDS=()
cleanup() {
  local rc=$? p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*" >&2
  for f in "$WORK"/*.log; do [ -f "$f" ] && { echo "--- $f" >&2; tail -20 "$f" >&2; }; done
  exit 1
}
pass() { echo "ok: $*"; }

if ! $PY -c 'import irods.session' 2>/dev/null; then
  echo "SKIP: python3-irodsclient is not installed (apt-get install python3-irodsclient)"
  exit 77
fi

source "$EMU_DIR/fixture.sh"

# --- command-line errors ------------------------------------------------------
rc=0
out=$("$EMU" --host 0.0.0.0 2>&1) || rc=$?
[ "$rc" = 2 ] && grep -q "loopback" <<<"$out" || fail "a non-loopback --host must exit 2 naming loopback (rc=$rc: $out)"
pass "a non-loopback --host is refused (exit 2)"
"$EMU" --help | grep -q EMULATOR || fail "--help does not say EMULATOR"
pass "--help says it is an emulator"

# --- conformance with python3-irodsclient --------------------------------------
cat >"$WORK/seed.json" <<JSON
{
  "collections": ["/tempZone/home/rods/sub"],
  "objects": [
    {"path": "/tempZone/home/rods/hello.txt", "data": "hello, irods\nhello, irods\nhello, irods\n", "checksum": true},
    {"path": "/tempZone/home/rods/put_single.bin", "data": "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}
  ],
  "bulk": {"collection": "/tempZone/home/rods/bulk", "count": 1234}
}
JSON
start_emu plain --seed-json "$WORK/seed.json" --control "$WORK/faults.json" \
  --mig-delay 0.2 --dul-delay 0.2 --stage-delay 0.5
PLAIN=$PORT
start_emu tls --seed-json "$WORK/seed.json" --tls require --cert-out "$WORK/cert.pem"
TLS=$PORT
grep -q "tls=CS_NEG_REQUIRE cert=" "$WORK/tls.out" || fail "the TLS emulator does not print its certificate"
timeout 60 $PY "$EMU_DIR/conformance_client.py" "$PLAIN" "$WORK/faults.json" "$TLS" "$WORK/cert.pem" \
  >"$WORK/conformance.txt" 2>"$WORK/conformance.err" || {
  cat "$WORK/conformance.txt"
  fail "conformance: $(grep FAIL "$WORK/conformance.err" || tail -5 "$WORK/conformance.err")"
}
grep '^ok:' "$WORK/conformance.txt"
grep -q "conformance: all checks passed" "$WORK/conformance.txt" || fail "conformance did not finish"
if grep -qE 'rods:rods|wrong' "$WORK/plain.log"; then fail "the emulator log holds a password (right or wrong)"; fi
pass "the emulator log never holds a password"

# --- replay of the real-server recordings ---------------------------------------
[ -d "$RECORDINGS" ] || fail "recordings not found at $RECORDINGS (set IRODS_RECORDINGS)"
for rec in real_prc081 real_raw_authplugin real_dmf_policy; do
  extra=()
  [ "$rec" = real_dmf_policy ] && extra=(--offline-error -1089000)
  start_emu "replay_$rec" --seed-json "$SEED" --dmf-root none "${extra[@]}"
  out=$(timeout 30 $PY "$EMU_DIR/replay_check.py" "$PORT" "$RECORDINGS/$rec.jsonl" 2>&1) ||
    fail "replay of $rec: $out"
  pass "$(tail -1 <<<"$out")"
done
echo "PASS"
