# After a sync, the backend root disappears (renamed away, as when an export is
# unmounted): the mount keeps answering from the catalog, quickly, and refresh
# attempts never empty the tree.
source "$(dirname "$0")/lib.sh"

ROOT=$WORK/vault
for d in a b c; do
  mkdir -p "$ROOT/$d/sub"
  for f in 1 2 3; do head -c $((f * 1000)) /dev/urandom >"$ROOT/$d/sub/f$f"; done
done
write_config "$WORK/hsmfs.toml" "$ROOT" 'list_ttl = "1s"'
HSMCTL="$BIN/hsmctl -c $WORK/hsmfs.toml"

$HSMCTL sync vault 2>"$WORK/sync.err" || fail "hsmctl sync: $(cat "$WORK/sync.err")"
grep -q "sync vault: 1[0-9] entries, 7 dirs" "$WORK/sync.err" || fail "sync progress line: $(cat "$WORK/sync.err")"
pass "hsmctl sync reports progress"

MNT=$WORK/mnt
mount_bg "$WORK/hsmfs.toml" "$MNT"
before=$(ls -lR "$MNT")
mv "$ROOT" "$ROOT.away"

sleep 1.5  # past list_ttl: every directory is due for a refresh
start=$(date +%s%N)
after=$(timeout 20 ls -lR "$MNT") || fail "ls -lR with the backend gone"
ms=$(( ($(date +%s%N) - start) / 1000000 ))
[ "$ms" -lt 3000 ] || fail "ls -lR took ${ms} ms with the backend gone"
assert_eq "$after" "$before" "ls -lR answers from the catalog (in ${ms} ms)"

sleep 1  # let the failed background refreshes finish
assert_eq "$(ls -lR "$MNT")" "$before" "failed refreshes keep the tree"
grep -q "not reachable" "$WORK/hsmfs.log" || fail "the log says why refreshes fail"
pass "the log names the unreachable root"

if $HSMCTL sync vault 2>"$WORK/sync.err"; then fail "sync of an unreachable backend must fail"; fi
grep -q "not reachable" "$WORK/sync.err" || fail "sync error: $(cat "$WORK/sync.err")"
pass "hsmctl sync of an unreachable backend fails with the reason"

mv "$ROOT.away" "$ROOT"
rm "$ROOT/a/sub/f1"
sleep 1.2
ls -lR "$MNT" >/dev/null
for i in $(seq 1 100); do [ -e "$MNT/vault/a/sub/f1" ] || break; sleep 0.05; ls "$MNT/vault/a/sub" >/dev/null; done
[ -e "$MNT/vault/a/sub/f1" ] && fail "a file deleted on the backend disappears after a refresh"
pass "refresh picks up deletions once the backend is back"
