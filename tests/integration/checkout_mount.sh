#!/usr/bin/env bash
# hg update in a real mount through the daemon's native checkout: kernel
# caches, held files, the cwd, and SIGKILL during the update. See
# checkout_mount.py.
#
# Usage: bash tests/integration/checkout_mount.sh /path/to/hgvfs
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 /path/to/hgvfs" >&2; exit 2; }
HGVFS=$(realpath "$1")

WORK=$(mktemp -d "${TMPDIR:-/tmp}/hgvfs-checkout.XXXXXX")
mnt=$WORK/mnt
# checkout_mount.py unmounts when it ends; this is for when it could not.
cleanup() {
  if grep -q " $mnt fuse" /proc/mounts; then
    HGVFS_HOME=$WORK/home "$HGVFS" unmount "$mnt" >/dev/null 2>&1 || umount -l "$mnt" || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

/usr/bin/python3 "$(dirname "$0")/checkout_mount.py" "$HGVFS" "$WORK"
