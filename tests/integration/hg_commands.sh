#!/usr/bin/env bash
# Stock hg commands (status, diff, add, remove, forget, addremove, files,
# annotate, grep, commit, revert, purge, update, debugrebuilddirstate) in a
# mount against a normal `hg clone`: same exit code, stdout and stderr. See
# hg_commands.py (HGVFS_HGCMD_PERTURB=1 must make it fail).
#
# Usage: bash tests/integration/hg_commands.sh /path/to/hgvfs
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 /path/to/hgvfs" >&2; exit 2; }
HGVFS=$(realpath "$1")

WORK=$(mktemp -d "${TMPDIR:-/tmp}/hgvfs-hgcmd.XXXXXX")
mnt=$WORK/mnt
# hg_commands.py unmounts when it ends; this is for when it could not.
cleanup() {
  if grep -q " $mnt fuse" /proc/mounts; then
    HGVFS_HOME=$WORK/home "$HGVFS" unmount "$mnt" >/dev/null 2>&1 || umount -l "$mnt" || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

/usr/bin/python3 "$(dirname "$0")/hg_commands.py" "$HGVFS" "$WORK"
