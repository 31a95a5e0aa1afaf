# Bad input gets one clear line naming what is wrong, and exit code 2.
source "$(dirname "$0")/lib.sh"

ROOT=$WORK/vault
mkdir -p "$ROOT" "$WORK/mnt"

# expect_usage_error EXPECTED_CODE PATTERN CMD...: one stderr line matching PATTERN.
expect_error() {
  local code=$1 pattern=$2
  shift 2
  local rc=0
  "$@" >"$WORK/out" 2>"$WORK/err" || rc=$?
  [ "$rc" == "$code" ] || fail "$*: exit $rc, expected $code (stderr: $(cat "$WORK/err"))"
  [ "$(wc -l <"$WORK/err")" == "1" ] || fail "$*: expected one line, got: $(cat "$WORK/err")"
  grep -q -- "$pattern" "$WORK/err" || fail "$*: '$(cat "$WORK/err")' does not match '$pattern'"
  pass "$(cat "$WORK/err")"
}

write_config "$WORK/unknown.toml" "$ROOT" 'stage_dleay = "1s"'
expect_error 2 "unknown.toml:.*stage_dleay: unknown key" "$BIN/hsmfs" -c "$WORK/unknown.toml" "$WORK/mnt"
printf '[cache]\nsize = "lots"\n' >"$WORK/type.toml"
cat >>"$WORK/type.toml" <<TOML
[[backend]]
name = "vault"
type = "posix"
root = "$ROOT"
TOML
expect_error 2 "type.toml:2: \[cache\] size: \"lots\" is not a size" "$BIN/hsmfs" -c "$WORK/type.toml" "$WORK/mnt"
printf '[[backend]]\nname = "vault"\ntype = "posix"\n' >"$WORK/noroot.toml"
expect_error 2 "noroot.toml.*\"vault\" root: missing required key" "$BIN/hsmfs" -c "$WORK/noroot.toml" "$WORK/mnt"
printf '[mount]\nlist_ttl = true\n[[backend]]\nname = "v"\ntype = "posix"\nroot = "/x"\n' >"$WORK/bool.toml"
expect_error 2 "bool.toml:2: \[mount\] list_ttl: expected a duration" "$BIN/hsmfs" -c "$WORK/bool.toml" "$WORK/mnt"
printf '[[backend]\n' >"$WORK/syntax.toml"
expect_error 2 "syntax.toml:1:" "$BIN/hsmfs" -c "$WORK/syntax.toml" "$WORK/mnt"
expect_error 2 "$WORK/absent.toml: cannot read config: No such file" "$BIN/hsmfs" -c "$WORK/absent.toml" "$WORK/mnt"

write_config "$WORK/good.toml" "$ROOT"
chmod 600 "$WORK/good.toml"
chmod 755 "$WORK"
if command -v runuser >/dev/null && [ "$(id -u)" == 0 ]; then
  expect_error 2 "good.toml: cannot read config: Permission denied" \
    runuser -u nobody -- "$BIN/hsmfs" -c "$WORK/good.toml" --print-config
fi
chmod 644 "$WORK/good.toml"

expect_error 2 "mountpoint $WORK/nowhere: No such file or directory" "$BIN/hsmfs" -c "$WORK/good.toml" "$WORK/nowhere"
touch "$WORK/afile"
expect_error 2 "mountpoint $WORK/afile: not a directory" "$BIN/hsmfs" -c "$WORK/good.toml" "$WORK/afile"
expect_error 2 "missing MOUNTPOINT" "$BIN/hsmfs" -c "$WORK/good.toml"
expect_error 2 "" "$BIN/hsmfs" --no-such-flag
expect_error 2 "-o entry_timeout: \"x\" is not a duration" "$BIN/hsmfs" -c "$WORK/good.toml" "$WORK/mnt" -o entry_timeout=x
expect_error 2 "unknown.toml:.*stage_dleay: unknown key" "$BIN/hsmctl" -c "$WORK/unknown.toml" ls vault
expect_error 2 "" "$BIN/hsmctl" -c "$WORK/good.toml" frobnicate
expect_error 2 "/tmp is not inside an hsmfs mount" "$BIN/hsmctl" -c "$WORK/good.toml" ls /tmp

"$BIN/hsmfs" --version | grep -q "^hsmfs [0-9]" || fail "hsmfs --version"
"$BIN/hsmctl" --version | grep -q "^hsmctl [0-9]" || fail "hsmctl --version"
"$BIN/hsmfs" --help | grep -q -- "--print-config" || fail "hsmfs --help"
pass "--version and --help"

"$BIN/hsmfs" -c "$WORK/good.toml" --print-config >"$WORK/effective.toml" || fail "--print-config"
grep -q 'size = "50GiB"' "$WORK/effective.toml" || fail "--print-config fills in defaults"
grep -q 'list_timeout = "10s"' "$WORK/effective.toml" || fail "--print-config shows list_timeout"
"$BIN/hsmfs" -c "$WORK/effective.toml" --print-config >"$WORK/again.toml" || fail "printed config reads back"
diff <(tail -n +2 "$WORK/effective.toml") <(tail -n +2 "$WORK/again.toml") || fail "print-config round trip"
pass "--print-config shows defaults and reads back"
"$BIN/hsmfs" -c "$WORK/good.toml" --print-config -o list_ttl=2m | grep -q 'list_ttl = "2m"' ||
  fail "-o overrides show in --print-config"
pass "-o list_ttl= overrides the config"
