#!/usr/bin/env bash
# Permissions on a real mount with allow_other (docs/SEMANTICS.md
# "Permissions"): a second, unprivileged user is held to the owners and modes
# of what it finds, may do everything with its own files, and cannot read the
# catalog, the cache or the log.
source "$(dirname "$0")/lib.sh"

OTHER=hsmfs-test  # used by no other test
if ! id "$OTHER" >/dev/null 2>&1; then
  useradd --system --no-create-home --shell /usr/sbin/nologin "$OTHER" 2>/dev/null ||
    id "$OTHER" >/dev/null 2>&1 || { echo "SKIP: cannot create user $OTHER"; exit 77; }
fi
OTHER_UID=$(id -u "$OTHER")

# The temp dir is 0700: let the other user reach the mount, so that the state
# files in it have to protect themselves.
chmod 0755 "$WORK"
ARCHIVE=$WORK/archive
MNT=$WORK/mnt
IN=$MNT/vault/incoming
mkdir -p "$ARCHIVE/incoming/tmp"
chmod 0755 "$ARCHIVE/incoming"
chmod 1777 "$ARCHIVE/incoming/tmp"
echo "root's secret" >"$ARCHIVE/incoming/secret"
chmod 0600 "$ARCHIVE/incoming/secret"
echo "root's notes" >"$ARCHIVE/incoming/tmp/notes"
chmod 0644 "$ARCHIVE/incoming/tmp/notes"
echo "hers on disk" >"$ARCHIVE/incoming/tmp/hers"
chown "$OTHER" "$ARCHIVE/incoming/tmp/hers"
chmod 0644 "$ARCHIVE/incoming/tmp/hers"

CONF=$WORK/hsmfs.toml
write_config "$CONF" "$ARCHIVE" 'writable = ["incoming"]' 'allow_delete = true'
# As an older version left them: readable by all. The mount tightens them.
mkdir -m 0755 "$WORK/cache"
touch "$WORK/hsmfs.log" "$WORK/catalog.db"
chmod 0644 "$WORK/hsmfs.log" "$WORK/catalog.db"
mount_bg "$CONF" "$MNT" -o allow_other

as_other() { runuser -u "$OTHER" -- "$@"; }

# denied WHAT CMD...: CMD, run by the other user, fails with EACCES or EPERM.
denied() {
  local what=$1 out
  shift
  if out=$(as_other "$@" 2>&1); then fail "$what: the other user could ($*)"; fi
  case "$out" in
    *"Permission denied"* | *"Operation not permitted"*) pass "$what: refused ($out)" ;;
    *) fail "$what: failed for another reason: $out" ;;
  esac
}

allowed() {
  local what=$1 out
  shift
  out=$(as_other "$@" 2>&1) || fail "$what: the other user could not ($*): $out"
  pass "$what"
}

# Owners and modes come from the posix backend's disk.
assert_eq "$(stat -c '%u %a' "$IN/secret")" "0 600" "a backend file shows its owner and mode"
assert_eq "$(stat -c '%u' "$IN/tmp/hers")" "$OTHER_UID" "a file the user owns on disk is its own"

# Root's files.
denied "read a 0600 file of root's" cat "$IN/secret"
assert_eq "$(as_other cat "$IN/tmp/notes")" "root's notes" "a 0644 file of root's is readable"
denied "write another user's file" sh -c "echo x >>'$IN/tmp/notes'"
denied "truncate another user's file" truncate -s 0 "$IN/tmp/notes"
denied "chmod another user's file" chmod 0666 "$IN/tmp/notes"
denied "chown a file to itself" chown "$OTHER" "$IN/tmp/notes"
denied "unlink another user's file (sticky directory)" rm -f "$IN/tmp/notes"
denied "rename another user's file (sticky directory)" mv "$IN/tmp/notes" "$IN/tmp/notes2"
denied "unlink in a 0755 root directory" rm -f "$IN/secret"
denied "rename in a 0755 root directory" mv "$IN/secret" "$IN/secret2"
denied "create in a 0755 root directory" touch "$IN/new"
denied "mkdir in a 0755 root directory" mkdir "$IN/newdir"
assert_eq "$(cat "$IN/tmp/notes")" "root's notes" "root's file is unchanged"
assert_eq "$(stat -c '%a' "$IN/tmp/notes")" "644" "root's file keeps its mode"

# What root makes through the mount is root's.
echo "made by root" >"$IN/rootmade"
chmod 0600 "$IN/rootmade"
assert_eq "$(stat -c '%u %g %a' "$IN/rootmade")" "0 0 600" "a file root creates is root's"
denied "read a 0600 file root created through the mount" cat "$IN/rootmade"

# Its own files: everything.
allowed "create its own file" sh -c "echo 'mine, all mine' >'$IN/tmp/mine'"
assert_eq "$(stat -c '%u' "$IN/tmp/mine")" "$OTHER_UID" "a created file is its creator's"
assert_eq "$(as_other cat "$IN/tmp/mine")" "mine, all mine" "read its own file"
allowed "write its own file" sh -c "echo more >>'$IN/tmp/mine'"
allowed "truncate its own file" truncate -s 4 "$IN/tmp/mine"
assert_eq "$(cat "$IN/tmp/mine")" "mine" "its writes and truncate happened"
allowed "chmod its own file" chmod 0600 "$IN/tmp/mine"
allowed "rename its own file" mv "$IN/tmp/mine" "$IN/tmp/mine2"
allowed "write a file it owns on the backend" sh -c "echo changed >'$IN/tmp/hers'"
allowed "make its own directory" mkdir -m 0700 "$IN/tmp/own"
allowed "create in its own directory" sh -c "echo deep >'$IN/tmp/own/f'"
allowed "rename in its own directory" mv "$IN/tmp/own/f" "$IN/tmp/own/g"
allowed "unlink in its own directory" rm "$IN/tmp/own/g"
allowed "unlink its own file" rm "$IN/tmp/mine2"
allowed "rmdir its own directory" rmdir "$IN/tmp/own"

# chown is root's (as on a local disk), and it is kept.
echo "a gift" >"$IN/tmp/gift"
chmod 0600 "$IN/tmp/gift"
denied "read root's 0600 file before the chown" cat "$IN/tmp/gift"
chown "$OTHER" "$IN/tmp/gift"
assert_eq "$(as_other cat "$IN/tmp/gift")" "a gift" "after chown the file is the user's"
# Setuid is cleared by a write from someone without CAP_FSETID, as on Linux.
echo "#!/bin/sh" >"$IN/tmp/setuid"
chmod 4777 "$IN/tmp/setuid"
allowed "write a 4777 file" sh -c "echo 'exit 0' >>'$IN/tmp/setuid'"
assert_eq "$(stat -c '%a' "$IN/tmp/setuid")" "777" "the user's write cleared setuid"

# The state files are the mount owner's only.
assert_eq "$(stat -c '%a' "$WORK/catalog.db")" "600" "the catalog is 0600 (it was 0644)"
assert_eq "$(stat -c '%a' "$WORK/catalog.db-wal")" "600" "the catalog's WAL is 0600"
assert_eq "$(stat -c '%a' "$WORK/cache")" "700" "the cache directory is 0700 (it was 0755)"
assert_eq "$(stat -c '%a' "$WORK/hsmfs.log")" "600" "the log is 0600 (it was 0644)"
denied "read the catalog" cat "$WORK/catalog.db"
denied "list the cache" ls "$WORK/cache"
denied "read the log" cat "$WORK/hsmfs.log"

# Owners and modes made through the mount survive a remount.
fusermount3 -u "$MNT"
wait_unmounted "$MNT"
mount_bg "$CONF" "$MNT" -o allow_other
assert_eq "$(stat -c '%u %a' "$IN/tmp/gift")" "$OTHER_UID 600" "a chown survives a remount"
assert_eq "$(stat -c '%u %a' "$IN/rootmade")" "0 600" "root's file is still root's"
denied "read root's 0600 file after a remount" cat "$IN/rootmade"
assert_eq "$(as_other cat "$IN/tmp/gift")" "a gift" "the user still reads its file"
