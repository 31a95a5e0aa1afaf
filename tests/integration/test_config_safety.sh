# Destructive or absurd configs are refused before anything is touched: one
# line naming the key, exit 2, never a signal, and no file lost (issue 15,
# items 3 and 4).
source "$(dirname "$0")/lib.sh"

ROOT=$WORK/vault
mkdir -p "$WORK/mnt"
MOUNTS+=("$WORK/mnt") # in case a refused config were mounted after all

# expect_refused PATTERN CMD...: exit 2 and one stderr line matching PATTERN.
expect_refused() {
  local pattern=$1
  shift
  local rc=0
  timeout 60 "$@" >"$WORK/out" 2>"$WORK/err" || rc=$?
  [ "$rc" == 2 ] || fail "$*: exit $rc, expected 2 (stderr: $(head -c 600 "$WORK/err"))"
  [ "$(wc -l <"$WORK/err")" == 1 ] || fail "$*: expected one line, got: $(head -c 600 "$WORK/err")"
  grep -q -- "$pattern" "$WORK/err" || fail "$*: '$(cat "$WORK/err")' does not match '$pattern'"
  pass "$(head -c 200 "$WORK/err")"
}

# An archive whose directories are named like the cache's own (data/, tmp/):
# with [cache] dir = the root, start-up recovery deleted every one of them.
mkdir -p "$ROOT/data/run1" "$ROOT/tmp" "$ROOT/incoming"
for i in $(seq 1 20); do head -c $((i * 100)) /dev/urandom >"$ROOT/data/run1/f$i.dat"; done
echo keep >"$ROOT/tmp/notes.txt"
echo keep >"$ROOT/incoming/a.txt"
echo keep >"$ROOT/1.2"
(cd "$ROOT" && find . -type f -exec md5sum {} + | LC_ALL=C sort) >"$WORK/root.md5"
[ "$(wc -l <"$WORK/root.md5")" == 23 ] || fail "fixture: 23 files"
root_intact() {
  local now
  now=$(cd "$ROOT" && find . -type f -exec md5sum {} + | LC_ALL=C sort)
  [ "$now" == "$(cat "$WORK/root.md5")" ] ||
    fail "$1: the backend root changed: $(diff <(echo "$now") "$WORK/root.md5" | head -5)"
  pass "$1: all 23 files of the root are still there, unchanged"
}

# --- [cache] dir equal to the backend root
cat >"$WORK/same.toml" <<TOML
[catalog]
path = "$WORK/catalog.db"
[cache]
dir = "$ROOT"
[log]
file = "$WORK/hsmfs.log"
[[backend]]
name = "vault"
type = "posix"
root = "$ROOT"
writable = ["incoming"]
TOML
rc=0
timeout 60 "$BIN/hsmfs" -c "$WORK/same.toml" "$WORK/mnt" >"$WORK/out" 2>"$WORK/err" || rc=$?
mountpoint -q "$WORK/mnt" && { fusermount3 -u "$WORK/mnt" || fusermount3 -uz "$WORK/mnt"; }
root_intact "[cache] dir = the root"
[ $rc == 2 ] || fail "[cache] dir = root: exit $rc, expected 2 ($(cat "$WORK/err"))"
grep -q "same.toml:10: \[\[backend\]\] \"vault\" root: $ROOT is also \[cache\] dir" "$WORK/err" ||
  fail "[cache] dir = root: $(cat "$WORK/err")"
pass "hsmfs: $(cat "$WORK/err")"
expect_refused "is also \[cache\] dir" "$BIN/hsmctl" -c "$WORK/same.toml" jobs
expect_refused "is also \[cache\] dir" "$BIN/hsmctl" -c "$WORK/same.toml" fsck
root_intact "hsmctl with [cache] dir = the root"

# The same through a symbolic link, and the other overlaps.
ln -s "$ROOT" "$WORK/cachelink"
sed "s|^dir = .*|dir = \"$WORK/cachelink\"|" "$WORK/same.toml" >"$WORK/link.toml"
expect_refused "root: $ROOT is also \[cache\] dir ($WORK/cachelink)" \
  "$BIN/hsmfs" -c "$WORK/link.toml" "$WORK/mnt"
sed "s|^dir = .*|dir = \"$WORK\"|" "$WORK/same.toml" >"$WORK/outer.toml"
expect_refused "\[cache\] dir: $WORK contains \[catalog\] path" \
  "$BIN/hsmfs" -c "$WORK/outer.toml" "$WORK/mnt"
sed "s|^dir = .*|dir = \"$ROOT/data\"|" "$WORK/same.toml" >"$WORK/inner.toml"
expect_refused "root: $ROOT contains \[cache\] dir ($ROOT/data)" \
  "$BIN/hsmfs" -c "$WORK/inner.toml" "$WORK/mnt"
sed "s|^path = .*|path = \"$ROOT/catalog.db\"|; s|^dir = .*|dir = \"$WORK/cache\"|" \
  "$WORK/same.toml" >"$WORK/catalog_in_root.toml"
expect_refused "root: $ROOT contains \[catalog\] path" \
  "$BIN/hsmfs" -c "$WORK/catalog_in_root.toml" "$WORK/mnt"
sed "s|^file = .*|file = \"$WORK/cache/hsmfs.log\"|; s|^dir = .*|dir = \"$WORK/cache\"|" \
  "$WORK/same.toml" >"$WORK/log_in_cache.toml"
expect_refused "\[log\] file: $WORK/cache/hsmfs.log lies inside \[cache\] dir" \
  "$BIN/hsmfs" -c "$WORK/log_in_cache.toml" "$WORK/mnt"
sed "s|^path = .*|path = \"/dev/null\"|; s|^dir = .*|dir = \"$WORK/cache\"|" \
  "$WORK/same.toml" >"$WORK/devnull.toml"
expect_refused "devnull.toml:2: \[catalog\] path: /dev/null is not a regular file" \
  "$BIN/hsmfs" -c "$WORK/devnull.toml" "$WORK/mnt"
sed "s|^dir = .*|dir = \"$WORK/cache\"|" "$WORK/same.toml" >"$WORK/good.toml"
expect_refused "-o log_file: .*root: $ROOT contains \[log\] file ($ROOT/x.log)" \
  "$BIN/hsmfs" -c "$WORK/good.toml" "$WORK/mnt" -o "log_file=$ROOT/x.log"
MOUNTS+=("$ROOT" "$ROOT/data") # unmounted by the cleanup, should one be made
expect_refused "mountpoint $ROOT is \[\[backend\]\] \"vault\" root" \
  "$BIN/hsmfs" -c "$WORK/good.toml" "$ROOT"
expect_refused "mountpoint $ROOT/data lies inside \[\[backend\]\] \"vault\" root" \
  "$BIN/hsmfs" -c "$WORK/good.toml" "$ROOT/data"
mountpoint -q "$ROOT" || mountpoint -q "$ROOT/data" && fail "a mount over the root was made"
for w in '"/"' '""' '"."' '".."' '"a/../b"'; do
  sed "s|^writable = .*|writable = [$w]|" "$WORK/good.toml" >"$WORK/writable.toml"
  expect_refused "writable.toml:11: \[\[backend\]\] \"vault\" writable: $w" \
    "$BIN/hsmfs" -c "$WORK/writable.toml" --print-config
done
root_intact "overlapping configs"

# --- a NUL byte: "conf/\0" was "conf/" to remove_all, which emptied the
# directory holding the config
mkdir -p "$WORK/conf"
echo precious >"$WORK/conf/precious.txt"
for key in 'dir' 'path'; do
  table=cache
  [ $key == path ] && table=catalog
  printf '[%s]\n%s = "\\u0000"\n[[backend]]\nname = "vault"\ntype = "posix"\nroot = "%s"\n' \
    "$table" "$key" "$ROOT" >"$WORK/conf/nul.toml"
  for prog in "$BIN/hsmfs -c $WORK/conf/nul.toml $WORK/mnt" "$BIN/hsmctl -c $WORK/conf/nul.toml jobs" \
    "$BIN/hsmtape -c $WORK/conf/nul.toml tapes"; do
    # shellcheck disable=SC2086
    expect_refused "nul.toml:2: \[$table\] $key: must not contain a NUL byte" $prog
  done
done
[ -f "$WORK/conf/precious.txt" ] && [ -f "$WORK/conf/nul.toml" ] || fail "the config's directory lost files"
[ ! -e "$WORK/conf/data" ] && [ ! -e "$WORK/conf/tmp" ] || fail "a refused config created a cache"
root_intact "NUL configs"
pass "NUL configs: the config's directory is untouched"

# --- hsmfs --demo replaces an old demo, never a directory it did not make
demo=$WORK/home/.local/share/hsmfs/demo
mkdir -p "$demo/mine"
echo precious >"$demo/mine/thesis.tex"
rc=0
HOME=$WORK/home XDG_DATA_HOME='' timeout 60 "$BIN/hsmfs" --demo "$WORK/mnt" >"$WORK/out" 2>"$WORK/err" || rc=$?
mountpoint -q "$WORK/mnt" && { fusermount3 -u "$WORK/mnt" || fusermount3 -uz "$WORK/mnt"; }
[ -f "$demo/mine/thesis.tex" ] || fail "hsmfs --demo deleted a directory it did not make"
[ $rc == 1 ] && grep -q "$demo exists but is not an hsmfs demo" "$WORK/err" ||
  fail "hsmfs --demo over a foreign directory: exit $rc, $(cat "$WORK/err")"
pass "hsmfs --demo: $(cat "$WORK/err")"

# --- numbers: no SIGABRT, no wrap-around
digits=$(printf '9%.0s' $(seq 1 400))
printf '[cache]\nsize = "%s"\n' "$digits" >"$WORK/big_size.toml"
printf '[cache]\nstage_timeout = "%sms"\n' "$digits" >"$WORK/big_duration.toml"
printf '[cache]\nstage_timeout = 10000000000\n' >"$WORK/wrap.toml"
printf '[mount]\nlist_ttl = 9223372036854775807\n' >"$WORK/max.toml"
printf '[cache]\nsize = 9223372036854775807\n' >"$WORK/max_size.toml"
for f in big_size big_duration wrap max max_size; do
  printf '[[backend]]\nname = "vault"\ntype = "posix"\nroot = "%s"\n' "$ROOT" >>"$WORK/$f.toml"
done
expect_refused 'big_size.toml:2: \[cache\] size: size "9999.*\.\.\." is too large (at most 1024PiB)' \
  "$BIN/hsmfs" -c "$WORK/big_size.toml" --print-config
[ "$(wc -c <"$WORK/err")" -lt 200 ] || fail "the 400 digits are echoed in full"
expect_refused "big_size.toml:2: \[cache\] size: .* is too large" "$BIN/hsmctl" -c "$WORK/big_size.toml" jobs
expect_refused "big_duration.toml:2: \[cache\] stage_timeout: duration .* is too long (at most 3650d)" \
  "$BIN/hsmfs" -c "$WORK/big_duration.toml" --print-config
expect_refused "big_duration.toml:2: \[cache\] stage_timeout: duration .* is too long" \
  "$BIN/hsmtape" -c "$WORK/big_duration.toml" tapes
expect_refused "wrap.toml:2: \[cache\] stage_timeout: is too long (at most 3650d)" \
  "$BIN/hsmfs" -c "$WORK/wrap.toml" --print-config
expect_refused "max.toml:2: \[mount\] list_ttl: is too long (at most 3650d)" \
  "$BIN/hsmfs" -c "$WORK/max.toml" --print-config
expect_refused "max_size.toml:2: \[cache\] size: is too large (at most 1024PiB)" \
  "$BIN/hsmfs" -c "$WORK/max_size.toml" --print-config
expect_refused '-o list_ttl: duration "1d9999' "$BIN/hsmfs" -c "$WORK/good.toml" --print-config \
  -o "list_ttl=1d${digits}s"
printf '[cache]\nstage_timeout = "3650d"\nsize = "1024PiB"\n[[backend]]\nname = "vault"\ntype = "posix"\nroot = "%s"\n' \
  "$ROOT" >"$WORK/limits.toml"
"$BIN/hsmfs" -c "$WORK/limits.toml" --print-config >"$WORK/limits.out" || fail "the largest values are refused"
grep -q 'stage_timeout = "3650d"' "$WORK/limits.out" || fail "3650d does not print as itself"
! grep -q '= ""' "$WORK/limits.out" || fail "--print-config printed an empty value"
pass "the largest size and duration are accepted and print as themselves"

# --- hsmtape: a FIFO, duplicate keys, negative counts
mkfifo "$WORK/tape.fifo"
rc=0
timeout 10 "$BIN/hsmtape" -c "$WORK/tape.fifo" tapes >"$WORK/out" 2>"$WORK/err" || rc=$?
[ $rc == 2 ] || fail "hsmtape -c FIFO: exit $rc (124: it hung), expected 2"
grep -q "tape.fifo: is not a regular file" "$WORK/err" || fail "hsmtape -c FIFO: $(cat "$WORK/err")"
pass "hsmtape -c FIFO: $(cat "$WORK/err")"
rc=0
timeout 10 "$BIN/hsmfs" -c "$WORK/tape.fifo" --print-config >"$WORK/out" 2>"$WORK/err" || rc=$?
[ $rc == 2 ] || fail "hsmfs -c FIFO: exit $rc (124: it hung), expected 2"
pass "hsmfs -c FIFO: $(cat "$WORK/err")"
printf '[default]\ndatabase_file = %s/tape.db\ntape_device = vtl:%s/lib\ndatabase_file = other.db\n' \
  "$WORK" "$WORK" >"$WORK/dup.conf"
expect_refused "dup.conf:4: database_file: given twice (first on line 2)" \
  "$BIN/hsmtape" -c "$WORK/dup.conf" tapes
printf '[default]\ndatabase_file = %s/tape.db\ntape_device = vtl:%s/lib\n' "$WORK" "$WORK" >"$WORK/tape.conf"
expect_refused "archive -n: -5 is not a count >= 1" "$BIN/hsmtape" -c "$WORK/tape.conf" archive -n -5
expect_refused "archive -n: 0 is not a count >= 1" "$BIN/hsmtape" -c "$WORK/tape.conf" archive -n 0
[ ! -e "$WORK/tape.db" ] || fail "a refused archive -n opened the catalog"

# --- a few fuzzed configs through the real programs: exit 0 or 2, never a signal
python3 - "$WORK" "$ROOT" <<'PY'
import os, random, sys
work, root = sys.argv[1], sys.argv[2]
rng = random.Random(15)
seed = f'''[catalog]
path = "{work}/fz/catalog.db"
[cache]
dir = "{work}/fz/cache"
size = "1GiB"
stage_timeout = "1h"
[mount]
list_ttl = "10m"
[log]
file = "{work}/fz/hsmfs.log"
[[backend]]
name = "vault"
type = "posix"
root = "{root}"
writable = ["incoming"]
'''
values = ["9" * 400, '"' + "9" * 400 + '"', "9223372036854775807", "-1", "1e400", "nan",
          '"\\u0000"', '""', '"/"', '["/"]', "[1]", "{a=1}", "true", '"10000000000"']
os.makedirs(f"{work}/fz", exist_ok=True)
# The seeds themselves, which load (exit 0), then mutations of them.
with open(f"{work}/fz/ok.toml", "w") as f:
    f.write(seed)
with open(f"{work}/fz/ok.conf", "w") as f:
    f.write(f"[default]\ndatabase_file = {work}/fz/ok.db\ntape_device = vtl:{work}/fz/lib\n")
for i in range(16):
    lines = seed.splitlines()
    for _ in range(rng.randint(1, 3)):
        j = rng.randrange(len(lines))
        op = rng.randrange(4)
        if op == 0 and "=" in lines[j]:
            lines[j] = lines[j].split("=")[0] + "= " + rng.choice(values)
        elif op == 1:
            lines.insert(rng.randrange(len(lines) + 1), lines[j])
        elif op == 2:
            b = bytearray(lines[j].encode())
            if b:
                b[rng.randrange(len(b))] = rng.randrange(256)
            lines[j] = b.decode("latin-1")
        else:
            lines.insert(j, "x = " + "[" * 300 + "]" * 300)
    with open(f"{work}/fz/{i:02d}.toml", "w", encoding="latin-1") as f:
        f.write("\n".join(lines) + "\n")
    tape = f"[default]\ndatabase_file = {work}/fz/t{i}.db\ntape_device = vtl:{work}/fz/lib\n"
    tl = tape.splitlines()
    j = rng.randrange(1, len(tl))
    tl[j] = tl[j].split("=")[0] + "= " + rng.choice(values)
    tl.insert(rng.randrange(len(tl) + 1), rng.choice(tl))
    with open(f"{work}/fz/{i:02d}.conf", "w", encoding="latin-1") as f:
        f.write("\n".join(tl) + "\n")
PY
counts=""
for f in "$WORK"/fz/*.toml "$WORK"/fz/*.conf; do
  cmds=("$BIN/hsmtape -c $f tapes")
  [[ $f == *.toml ]] && cmds+=("$BIN/hsmfs -c $f --print-config" "$BIN/hsmctl -c $f jobs")
  for cmd in "${cmds[@]}"; do
    rc=0
    # shellcheck disable=SC2086
    timeout 60 $cmd >/dev/null 2>"$WORK/err" || rc=$?
    case $rc in
      0 | 2) counts="$counts $rc" ;;
      *) fail "$cmd: exit $rc, expected 0 or 2: $(head -c 300 "$WORK/err")" ;;
    esac
  done
done
echo "$counts" | grep -q 0 || fail "no fuzzed config loaded: the seeds are broken"
pass "fuzzed configs through hsmfs, hsmctl and hsmtape: exit codes (count code):$(echo $counts | tr ' ' '\n' | sort | uniq -c | tr -s ' \n' ' ')"
