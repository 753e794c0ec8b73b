#!/usr/bin/env bash
# `hgvfs doctor [MOUNT] [--fix]` on a real mount: each problem made on
# purpose is found (one line, exit 1), repaired by --fix where it can be
# (exit 0), and nothing written in the mount is lost.
#
# Usage: bash tests/integration/doctor.sh /path/to/hgvfs   (exit 0 = all passed)
#
# Steps: a clean mount (exit 0, "no problems"); the daemon killed with
# SIGKILL (the dead mount found; --fix mounts it again and the files written
# before the kill read back); the extension line removed from the mount's
# .hg/hgrc, then disabled (found; --fix enables it again and hg status goes
# through the daemon); the object cache overwritten with garbage (found;
# --fix moves it aside and the mount works after a remount); a file without
# a record left in the overlay of an unmounted client (found; --fix puts its
# bytes in lost+found); an interrupted update (.hg/updatestate: found, --fix
# runs hg update); the dirstate's parent moved with `hg debugsetparents` in
# an unchanged mount (found, exit 1 even with --fix); the repository moved
# away (found); a dead mount whose client directory was removed (found,
# --fix unmounts it).

set -u
set -o pipefail

if [ $# -ne 1 ]; then
  echo "usage: $0 /path/to/hgvfs" >&2
  exit 2
fi
HGVFS=$(realpath "$1")
HG=/usr/bin/hg
export HGPLAIN=1 HGRCPATH= HGUSER='test <test@example.com>' HGENCODING=utf-8 LC_ALL=C TZ=UTC

WORK=$(mktemp -d "${TMPDIR:-/tmp}/hgvfs-doctor.XXXXXX")
export HGVFS_HOME=$WORK/home
repo=$WORK/repo
M=$WORK/mnt
M2=$WORK/mnt2
mkdir -p "$HGVFS_HOME" "$M" "$M2"

is_mounted() { awk -v m="$1" '$2 == m { found = 1 } END { exit !found }' /proc/self/mounts; }

cleanup() {
  for m in "$M" "$M2"; do
    if is_mounted "$m"; then
      "$HGVFS" unmount "$m" >/dev/null 2>&1
      is_mounted "$m" && { fusermount3 -u -z "$m" 2>/dev/null || umount -l "$m" 2>/dev/null; }
    fi
  done
  # Daemons of clients left without a mount.
  for pidfile in "$HGVFS_HOME"/clients/*/daemon.pid; do
    [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null
  done
  if is_mounted "$M" || is_mounted "$M2"; then
    echo "doctor.sh: a mount is left; leaving $WORK" >&2
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT

passed=0
failed=0
ok() { passed=$((passed + 1)); }
fail() {
  echo "FAIL: $*" >&2
  failed=$((failed + 1))
}

# Runs doctor; sets $out and $rc.
doctor() {
  out=$("$HGVFS" doctor "$@" 2>&1)
  rc=$?
}
expect_rc() {  # WANT STEP
  if [ "$rc" = "$1" ]; then ok; else fail "$2: exit $rc, expected $1; output:"$'\n'"$out"; fi
}
expect_out() {  # REGEX STEP
  if grep -Eq -- "$1" <<<"$out"; then ok; else fail "$2: no line matching '$1' in:"$'\n'"$out"; fi
}

client_dir() { ls -d "$HGVFS_HOME"/clients/"$(basename "$1")"-*; }

$HG init -q "$repo"
mkdir -p "$repo/src/lib" "$repo/doc"
echo 'int main(void) { return 0; }' >"$repo/src/main.c"
echo 'lib' >"$repo/src/lib/a.c"
echo 'readme' >"$repo/doc/README"
$HG -R "$repo" commit -qAm one
echo 'more' >>"$repo/doc/README"
$HG -R "$repo" commit -qm two

"$HGVFS" mount "$repo" "$M" >/dev/null || { echo "doctor.sh: mount failed" >&2; exit 1; }
C=$(client_dir "$M")

# 1. A clean mount.
doctor "$M"
expect_rc 0 "clean mount"
expect_out "^no problems found" "clean mount"
doctor
expect_rc 0 "clean mount, every client"

# 2. The daemon killed: a dead mount. What was written before stays.
printf 'written before the kill\n' >"$M/new-file"
echo 'changed' >>"$M/src/main.c"
mkdir "$M/newdir" && printf 'deep\n' >"$M/newdir/f"
sync
kill -9 "$(cat "$C/daemon.pid")"
for _ in $(seq 100); do stat -f "$M" >/dev/null 2>&1 || break; sleep 0.05; done
doctor "$M"
expect_rc 1 "dead mount"
expect_out "^$M: dead mount: .*; --fix: unmount it" "dead mount"
doctor --fix "$M"
expect_rc 0 "dead mount --fix"
expect_out "dead mount: .*; fixed:" "dead mount --fix"
if [ "$(cat "$M/new-file" 2>&1)" = "written before the kill" ] &&
  [ "$(cat "$M/newdir/f" 2>&1)" = "deep" ] && [ "$(tail -1 "$M/src/main.c" 2>&1)" = changed ]; then
  ok
else
  fail "files written before the kill are not all back after --fix"
fi
doctor "$M"
expect_rc 0 "after the dead mount's fix"

# 3. The extension line removed, then disabled.
hgrc=$C/dot-hg/hgrc
cp "$hgrc" "$WORK/hgrc.orig"
grep -v '^hgvfs = ' "$WORK/hgrc.orig" >"$hgrc"
doctor "$M"
expect_rc 1 "extension removed"
expect_out "\.hg/hgrc does not enable the hgvfs extension; --fix: append" "extension removed"
doctor --fix "$M"
expect_rc 0 "extension removed --fix"
doctor "$M"
expect_rc 0 "after the extension's fix"
out=$(cd "$M" && $HG status --debug 2>&1)
if grep -q 'hgvfs: status from the daemon' <<<"$out"; then ok; else
  fail "hg status does not go through the daemon after the extension's fix:"$'\n'"$out"
fi
printf '[extensions]\nhgvfs = !\n' >>"$hgrc"
doctor "$M"
expect_rc 1 "extension disabled"
expect_out "disables the hgvfs extension" "extension disabled"
doctor --fix "$M"
expect_rc 0 "extension disabled --fix"
doctor "$M"
expect_rc 0 "after the disabled extension's fix"

# 4. An object cache that cannot be opened (overwritten with garbage).
cache=$(ls -d "$HGVFS_HOME"/repos/*/cache)
"$HGVFS" unmount "$M" >/dev/null
for f in "$cache"/*; do head -c 65536 /dev/urandom >"$f"; done
doctor "$M"
expect_rc 1 "broken cache"
expect_out "the object cache .* cannot be opened: .*; --fix: move it aside" "broken cache"
doctor --fix "$M"
expect_rc 0 "broken cache --fix"
expect_out "fixed: moved aside to .*\.broken-" "broken cache --fix"
doctor "$M"
expect_rc 0 "after the cache's fix"
if "$HGVFS" mount "$repo" "$M" >/dev/null && [ "$(cat "$M/new-file")" = "written before the kill" ] &&
  [ "$(cat "$M/doc/README" | tail -1)" = more ]; then
  ok
else
  fail "the mount does not work after the cache's fix"
fi

# 5. An overlay file no record names, in an unmounted client.
"$HGVFS" unmount "$M" >/dev/null
mkdir -p "$C/overlay/files/ff"
printf 'bytes nobody names\n' >"$C/overlay/files/ff/00000000000fffff"
doctor "$M"
expect_rc 1 "orphan overlay file"
expect_out "overlay file without a record: .*00000000000fffff is named by no entry; --fix: move it" \
  "orphan overlay file"
expect_out "overlay inode mark too low" "orphan overlay file (its number above the mark)"
doctor --fix "$M"
expect_rc 0 "orphan overlay file --fix"
if [ "$(cat "$C/lost+found/00000000000fffff" 2>&1)" = "bytes nobody names" ]; then ok; else
  fail "the orphan's bytes are not in $C/lost+found"
fi
doctor "$M"
expect_rc 0 "after the overlay's fix"
"$HGVFS" mount "$repo" "$M" >/dev/null || fail "mount after the overlay's fix"
if [ "$(cat "$M/new-file" 2>&1)" = "written before the kill" ]; then ok; else
  fail "changes lost after the overlay's fix"
fi

# 6. An interrupted update: hg leaves .hg/updatestate.
p1=$(cd "$M" && $HG log -r . -T '{node}')
echo "$p1" >"$C/dot-hg/updatestate"
doctor "$M"
expect_rc 1 "interrupted update"
expect_out "an update to ${p1:0:12} was interrupted \(\.hg/updatestate\); --fix: hg update" \
  "interrupted update"
doctor --fix "$M"
expect_rc 0 "interrupted update --fix"
if [ ! -e "$C/dot-hg/updatestate" ] && [ "$(cat "$M/new-file")" = "written before the kill" ]; then ok
else fail "after the update's fix: updatestate left or changes lost"; fi

# 7. The dirstate's parent moved in an unchanged mount.
"$HGVFS" mount "$repo" "$M2" >/dev/null || fail "second mount"
doctor "$M2"
expect_rc 0 "second mount, clean"
(cd "$M2" && $HG -q debugsetparents 0)
doctor "$M2"
expect_rc 1 "debugsetparents"
expect_out "names parent .* but the mount holds revision .*; --fix: nothing \(.*hg debugsetparents" \
  "debugsetparents"
doctor --fix "$M2"
expect_rc 1 "debugsetparents --fix (nothing to do automatically)"
(cd "$M2" && $HG -q debugsetparents 1)
doctor "$M2"
expect_rc 0 "parents set back"

# 7b. A dead mount is mounted again with the options it had (--no-xattrs:
# extended attributes refused, EOPNOTSUPP).
"$HGVFS" unmount "$M2" >/dev/null
"$HGVFS" mount --no-xattrs "$repo" "$M2" >/dev/null || fail "mount --no-xattrs"
C2=$(client_dir "$M2")
kill -9 "$(cat "$C2/daemon.pid")"
for _ in $(seq 100); do stat -f "$M2" >/dev/null 2>&1 || break; sleep 0.05; done
doctor --fix "$M2"
expect_rc 0 "dead --no-xattrs mount --fix"
xattr=$(python3 -c 'import errno, os, sys
try:
    os.setxattr(sys.argv[1], "user.k", b"v")
    print("set")
except OSError as e:
    print("EOPNOTSUPP" if e.errno == errno.EOPNOTSUPP else errno.errorcode[e.errno])' "$M2/doc/README" 2>&1)
if [ "$xattr" = EOPNOTSUPP ]; then ok; else
  fail "the remounted mount lost --no-xattrs: setxattr gave $xattr"
fi

# 8. The repository moved away.
"$HGVFS" unmount "$M2" >/dev/null
mv "$repo" "$WORK/moved"
doctor "$M2"
expect_rc 1 "repository moved"
expect_out "the repository cannot be opened" "repository moved"
mv "$WORK/moved" "$repo"
doctor "$M2"
expect_rc 0 "repository back"

# 9. A dead mount whose client directory is gone: only unmounted.
"$HGVFS" mount "$repo" "$M2" >/dev/null || fail "mount for the clientless dead mount"
C2=$(client_dir "$M2")
kill -9 "$(cat "$C2/daemon.pid")"
for _ in $(seq 100); do stat -f "$M2" >/dev/null 2>&1 || break; sleep 0.05; done
rm -rf "$C2"
# Another home's doctor leaves it alone: it is that home's mount.
out=$(HGVFS_HOME=$WORK/otherhome "$HGVFS" doctor 2>&1)
rc=$?
if [ $rc = 0 ] && ! grep -qF "$M2" <<<"$out"; then ok; else
  fail "another home's doctor reported the mount (exit $rc): $out"
fi
doctor
expect_rc 1 "dead mount without a client"
expect_out "^$M2: dead mount with no client in .*; --fix: unmount it" "dead mount without a client"
doctor --fix
expect_rc 0 "dead mount without a client --fix"
if is_mounted "$M2"; then fail "the clientless dead mount is still mounted"; else ok; fi

# A mount point that is no client is an error, one line.
doctor "$WORK"
expect_rc 1 "not a client"
if [ "$(wc -l <<<"$out")" = 1 ] && grep -q "no hgvfs client for" <<<"$out"; then ok; else
  fail "not a client: $out"
fi

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
