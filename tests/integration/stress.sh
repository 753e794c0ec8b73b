#!/usr/bin/env bash
# Stress on a real mount: stress-ng's filesystem stressors (several workers
# each, at once; hard links among them) and a fio random read/write job that verifies every block
# it wrote; hg update back and forth under readers; then the mount must
# still answer, its overlay survive a remount,
# and the daemon's log hold no error. With a TSan build of hgvfs (see
# scripts/stress-tsan) any data race report fails the run.
#
# Usage: bash tests/integration/stress.sh /path/to/hgvfs [SECONDS]
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 /path/to/hgvfs [SECONDS]" >&2; exit 2; }
HGVFS=$(realpath "$1")
SECONDS_EACH=${2:-${HGVFS_STRESS_SECONDS:-10}}
for tool in stress-ng fio /usr/bin/hg; do
  command -v "$tool" >/dev/null || { echo "stress.sh: $tool missing (scripts/setup)" >&2; exit 1; }
done
export HGPLAIN=1 HGRCPATH= HGUSER='test <test@example.com>' LC_ALL=C
WORK=$(mktemp -d "${TMPDIR:-/tmp}/hgvfs-stress.XXXXXX")
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
mkdir -p "$WORK/repo/tree/a" "$mnt"
for i in $(seq 50); do echo "file $i" >"$WORK/repo/tree/a/f$i"; done
# Two revisions of up/ for updates under readers: 300 files, every other
# one changed, a directory removed, one added.
mkdir -p "$WORK/repo/up/gone"
for i in $(seq 300); do echo "r0 $i" >"$WORK/repo/up/f$i"; done
echo gone >"$WORK/repo/up/gone/x"
/usr/bin/hg -R "$WORK/repo" commit -q -A -m init
for i in $(seq 2 2 300); do echo "r1 $i" >"$WORK/repo/up/f$i"; done
rm -r "$WORK/repo/up/gone"
mkdir -p "$WORK/repo/up/new"
echo new >"$WORK/repo/up/new/y"
/usr/bin/hg -R "$WORK/repo" commit -q -A -m second
"$HGVFS" mount "$WORK/repo" "$mnt" >/dev/null
pid=$(cat "$HGVFS_HOME"/clients/*/daemon.pid)

status=0
mkdir -p "$mnt/stress" "$mnt/fio"
# Two workers of each stressor, all at once, inside the mount.
(cd "$mnt/stress" && stress-ng --temp-path "$mnt/stress" --timeout "${SECONDS_EACH}s" \
  --dir 2 --dentry 2 --rename 2 --link 2 --filename 2 --fstat 2 --chmod 2 --open 2 --hdd 2 \
  --hdd-bytes 4M --lockf 2 --flock 2 --mmap 2 --mmap-bytes 4M --seek 2 --fallocate 2 \
  --fallocate-bytes 4M --utime 2 --readahead 2 --dirdeep 1 --dirmany 1 --chdir 2 \
  --metrics-brief --verify) || { echo "stress.sh: stress-ng failed" >&2; status=1; }
# Random 4 KiB reads and writes from 4 jobs, every block verified.
fio --name=verify --directory="$mnt/fio" --rw=randrw --bs=4k --size=16m --numjobs=4 \
  --ioengine=psync --verify=crc32c --verify_fatal=1 --do_verify=1 --verify_state_save=0 \
  --runtime="$SECONDS_EACH" --time_based=0 --group_reporting --output-format=terse >/dev/null ||
  { echo "stress.sh: fio verify failed" >&2; status=1; }
# Also the tree and tracked files, while a reader walks.
(for i in $(seq 200); do
  mv "$mnt/tree/a" "$mnt/tree/b" && mv "$mnt/tree/b" "$mnt/tree/a"
  echo "$i" >>"$mnt/tree/a/f$((i % 50 + 1))"
done) &
writer=$!
for i in $(seq 50); do find "$mnt/tree" -type f >/dev/null 2>&1 || true; done
wait $writer || { echo "stress.sh: rename loop failed" >&2; status=1; }

# hg update back and forth (the daemon's native checkout) while readers
# read up/: every read gives one revision's whole content, never a mix.
(for i in $(seq 20); do
  (cd "$mnt" && /usr/bin/hg update -q -r 0 && /usr/bin/hg update -q -r 1) || exit 1
done) &
updater=$!
bad=0
for r in 1 2 3; do
  (while kill -0 $updater 2>/dev/null; do
    for i in $(seq 1 7 300); do
      c=$(cat "$mnt/up/f$i" 2>/dev/null) || continue
      case $c in "r0 $i"|"r1 $i") ;; *) echo "stress.sh: up/f$i read '$c'" >&2; exit 1 ;; esac
    done
    ls -R "$mnt/up" >/dev/null 2>&1 || true
  done) &
  readers="${readers:-} $!"
done
wait $updater || { echo "stress.sh: the update loop failed" >&2; status=1; }
for r in $readers; do wait "$r" || bad=1; done
[ $bad = 0 ] || { echo "stress.sh: a reader saw a torn file during updates" >&2; status=1; }
[ "$(cd "$mnt" && /usr/bin/hg status up | wc -l)" = 0 ] ||
  { echo "stress.sh: hg status of up/ is not empty after the updates" >&2; status=1; }

[ -d "/proc/$pid" ] || { echo "stress.sh: the daemon died" >&2; exit 1; }
ls "$mnt" >/dev/null || { echo "stress.sh: the mount stopped answering" >&2; exit 1; }
before=$(cd "$mnt/tree" && find . -type f -print0 | sort -z | xargs -0 cat | sha1sum)
"$HGVFS" unmount "$mnt" >/dev/null
"$HGVFS" mount "$WORK/repo" "$mnt" >/dev/null
after=$(cd "$mnt/tree" && find . -type f -print0 | sort -z | xargs -0 cat | sha1sum)
[ "$before" = "$after" ] || { echo "stress.sh: the tree changed across a remount" >&2; status=1; }
if grep -E "\] \[(error|critical)\]" "$HGVFS_HOME"/clients/*/hgvfs.log; then
  echo "stress.sh: the daemon logged errors" >&2
  status=1
fi
[ $status = 0 ] && echo "stress.sh: passed (${SECONDS_EACH}s of stress-ng, fio verify)"
exit $status
