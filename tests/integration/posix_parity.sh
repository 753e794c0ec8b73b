#!/usr/bin/env bash
# The POSIX parity tool (tests/tools/posix_parity.cpp) on a real mount: the
# same system calls in the mount and in a plain temporary directory must give
# the same results, errnos and trees. Random sequences run with several seeds.
#
# Usage: bash tests/integration/posix_parity.sh /path/to/hgvfs
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 /path/to/hgvfs" >&2; exit 2; }
HGVFS=$(realpath "$1")
PARITY=$(dirname "$HGVFS")/../tests/tools/posix_parity
[ -x "$PARITY" ] || { echo "posix_parity.sh: $PARITY not built" >&2; exit 1; }
export HGPLAIN=1 HGRCPATH= HGUSER='test <test@example.com>' LC_ALL=C

WORK=$(mktemp -d "${TMPDIR:-/tmp}/hgvfs-parity.XXXXXX")
export HGVFS_HOME=$WORK/home
mnt=$WORK/mnt
cleanup() {
  if grep -q " $mnt fuse" /proc/mounts; then
    "$HGVFS" unmount "$mnt" >/dev/null 2>&1 || umount -l "$mnt" || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

/usr/bin/hg init -q "$WORK/repo"
mkdir -p "$WORK/repo/dir/sub" "$mnt" "$WORK/plain"
echo hello >"$WORK/repo/README"
echo deep >"$WORK/repo/dir/sub/file"
/usr/bin/hg -R "$WORK/repo" commit -q -A -m init
"$HGVFS" mount "$WORK/repo" "$mnt" >/dev/null

# The scenarios run inside a directory of the revision, so materialization
# of tracked directories is on every path.
mkdir -p "$mnt/dir/parity" "$WORK/plain/parity"
status=0
"$PARITY" "$mnt/dir/parity" "$WORK/plain/parity" || status=1
for seed in 2 3 4 5; do
  "$PARITY" "$mnt/dir/parity" "$WORK/plain/parity" --scenario random --seed "$seed" || status=1
done
# Nothing the tool did may have broken the mount or its overlay.
"$HGVFS" unmount "$mnt" >/dev/null
"$HGVFS" mount "$WORK/repo" "$mnt" >/dev/null
[ "$(cat "$mnt/README")" = hello ] || { echo "README changed" >&2; status=1; }
# --no-xattrs: every xattr call is EOPNOTSUPP; those set before come back
# with the next mount that has them.
python3 -c 'import os,sys; os.setxattr(sys.argv[1], "user.kept", b"yes")' "$mnt/README"
"$HGVFS" unmount "$mnt" >/dev/null
"$HGVFS" mount --no-xattrs "$WORK/repo" "$mnt" >/dev/null
got=$(python3 -c '
import errno, os, sys
for call in (lambda: os.getxattr(sys.argv[1], "user.kept"),
             lambda: os.setxattr(sys.argv[1], "user.new", b"v")):
    try:
        call(); print("ok")
    except OSError as e:
        print("EOPNOTSUPP" if e.errno == errno.EOPNOTSUPP else errno.errorcode[e.errno])' "$mnt/README")
[ "$got" = "$(printf 'EOPNOTSUPP\nEOPNOTSUPP')" ] || { echo "--no-xattrs: got $got" >&2; status=1; }
"$HGVFS" unmount "$mnt" >/dev/null
"$HGVFS" mount "$WORK/repo" "$mnt" >/dev/null
got=$(python3 -c 'import os,sys; print(os.getxattr(sys.argv[1], "user.kept").decode())' "$mnt/README")
[ "$got" = yes ] || { echo "xattr lost over a --no-xattrs mount: $got" >&2; status=1; }
exit $status
