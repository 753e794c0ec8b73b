#!/usr/bin/env bash
# hgvfs prefetch, gc and du on a real mount, checked against the real hg.
#
# Usage: bash tests/integration/cache_commands.sh /path/to/hgvfs   (exit 0 = all passed)
#
# Makes a repository with hg (files of distinct contents in two
# directories, a content starting with "\1\n", an empty file, a copy),
# mounts its tip and checks: prefetch of a pattern fetches exactly the
# matching files, a second prefetch of everything fetches the rest and
# finds those cached; du names the repository and the mount and counts
# the blobs; gc --to 0 drops every blob; after gc every file of the mount
# is byte-identical to `hg cat`, before and after a remount; [cache]
# max-size bounds what prefetch leaves; bad input is a one-line error with
# a nonzero exit. Then, with $HGVFS_HOME on a 4 MiB tmpfs, reading 12 MB
# of files through a mount still gives hg's bytes (the cache writes fail).
set -u
set -o pipefail
[ $# -eq 1 ] || { echo "usage: $0 /path/to/hgvfs" >&2; exit 2; }
HGVFS=$(realpath "$1")
HG=/usr/bin/hg
export HGPLAIN=1 HGRCPATH= HGUSER='test <test@example.com>' LC_ALL=C TZ=UTC

WORK=$(mktemp -d "${TMPDIR:-/tmp}/hgvfs-cache.XXXXXX")
repo=$WORK/repo
mnt=$WORK/mnt
small=$WORK/small
smallmnt=$WORK/smallmnt
export HGVFS_HOME=$WORK/home
mkdir -p "$HGVFS_HOME" "$mnt" "$small" "$smallmnt"

is_mounted() { awk -v m="$1" '$2 == m { found = 1 } END { exit !found }' /proc/self/mounts; }
cleanup() {
  for m in "$mnt" "$smallmnt"; do
    if is_mounted "$m"; then
      HGVFS_HOME=$( [ "$m" = "$smallmnt" ] && echo "$small/home" || echo "$WORK/home" ) \
        "$HGVFS" unmount "$m" >/dev/null 2>&1 || umount -l "$m" 2>/dev/null
    fi
  done
  if is_mounted "$small"; then umount "$small" 2>/dev/null || umount -l "$small"; fi
  if is_mounted "$mnt" || is_mounted "$smallmnt"; then
    echo "cache_commands.sh: a mount is left; leaving $WORK" >&2
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

passed=0
failed=0
ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL: $*" >&2; }
expect() {  # expect DESCRIPTION ACTUAL EXPECTED
  if [ "$2" = "$3" ]; then ok; else bad "$1: got '$2', expected '$3'"; fi
}

# The repository: 20 files under a/, 20 under b/, 10,000-ish bytes each.
$HG init -q "$repo"
mkdir -p "$repo/a/deep" "$repo/b"
for i in $(seq 1 10); do
  head -c $((9000 + i)) /dev/urandom >"$repo/a/f$i"
  head -c $((9100 + i)) /dev/urandom >"$repo/a/deep/g$i"
  head -c $((9200 + i)) /dev/urandom >"$repo/b/h$i"
  head -c $((9300 + i)) /dev/urandom >"$repo/b/k$i"
done
printf '\1\nlooks like metadata\1\nbody\n' >"$repo/meta"
: >"$repo/empty"
(cd "$repo" && $HG add -q && $HG commit -qm zero && $HG cp a/f1 copied && $HG commit -qm one) ||
  { echo "cannot make the repository" >&2; exit 1; }
total=$(cd "$repo" && $HG files -r tip | wc -l)
in_a=$(cd "$repo" && $HG files -r tip 'glob:a/**' | wc -l)

# Every file of the mount against hg's bytes (`hg archive` of tip, which
# writes what `hg cat` prints); prints the first that differs.
same_as_hg() {
  local f expected=$WORK/expected-$($HG -R "$repo" log -r tip -T '{rev}')
  [ -d "$expected" ] || $HG -R "$repo" archive -q -r tip "$expected" || return 1
  while IFS= read -r f; do
    if ! cmp -s "$expected/$f" "$1/$f"; then echo "$f"; return 1; fi
  done < <(cd "$repo" && $HG files -r tip)
  return 0
}

"$HGVFS" mount "$repo" "$mnt" >/dev/null || { echo "mount failed" >&2; exit 1; }

# prefetch: a pattern, relative to the current directory, then everything.
out=$(cd "$mnt/a" && "$HGVFS" prefetch 'glob:**' 2>&1)
expect "prefetch a/** fetched" "$(sed -n 's/^fetched \([0-9]*\) files.*/\1/p' <<<"$out")" "$in_a"
expect "prefetch a/** cached" "$(sed -n 's/.*; \([0-9]*\) already cached$/\1/p' <<<"$out")" 0
out=$(cd "$mnt" && "$HGVFS" prefetch 2>&1)
# copied has a/f1's content but its own node (copy metadata): fetched too.
expect "prefetch all fetched" "$(sed -n 's/^fetched \([0-9]*\) files.*/\1/p' <<<"$out")" \
  $((total - in_a))
expect "prefetch all cached" "$(sed -n 's/.*; \([0-9]*\) already cached$/\1/p' <<<"$out")" "$in_a"

# du: the repository's cache with every blob, and the mount.
out=$("$HGVFS" du 2>&1)
grep -qxF "  $repo" <<<"$out" && ok || bad "du does not name $repo: $out"
grep -qxF "  $mnt" <<<"$out" && ok || bad "du does not name $mnt: $out"
expect "du blob count" "$(sed -n 's/^    blobs .* (\([0-9]*\)), trees.*/\1/p' <<<"$out")" "$total"

# The files, read through the mount once (the daemon's memory holds them).
bad_file=$(same_as_hg "$mnt") && ok || bad "before gc: $bad_file differs from hg cat"

# gc --to 0: every blob goes; reads still give hg's bytes, before and after
# a remount (which empties the daemon's memory).
out=$("$HGVFS" gc --to 0 2>&1)
expect "gc --to 0" "$(sed -n "s|^$repo: dropped \([0-9]*\) blobs.*kept \([0-9]*\).*|\1 \2|p" <<<"$out")" \
  "$total 0"
expect "du after gc" "$("$HGVFS" du | sed -n 's/^    blobs \(.*\), trees.*/\1/p')" "0 B (0)"
bad_file=$(same_as_hg "$mnt") && ok || bad "after gc: $bad_file differs from hg cat"
"$HGVFS" unmount "$mnt" >/dev/null || bad "unmount"
"$HGVFS" mount "$repo" "$mnt" >/dev/null || { bad "remount"; exit 1; }
bad_file=$(same_as_hg "$mnt") && ok || bad "after gc and remount: $bad_file differs from hg cat"

# [cache] max-size bounds the blobs prefetch leaves: 50K holds 5 files of
# 9,000+ bytes at most, beside the empty file and the small "meta".
printf '[cache]\nmax-size = 50K\n' >"$HGVFS_HOME/config"
(cd "$mnt" && "$HGVFS" prefetch >/dev/null 2>&1) || bad "prefetch under max-size"
kept=$("$HGVFS" gc --to 1G | sed -n 's/.*kept \([0-9]*\) (.*/\1/p')
if [ -n "$kept" ] && [ "$kept" -le 7 ] && [ "$kept" -gt 0 ]; then ok; else
  bad "max-size 50K left '$kept' blobs"; fi
printf '[cache]\nmax-size = lots\n' >"$HGVFS_HOME/config"
out=$("$HGVFS" gc 2>&1); rc=$?
[ $rc -ne 0 ] && [ "$(wc -l <<<"$out")" = 1 ] && grep -q "max-size" <<<"$out" && ok ||
  bad "bad max-size: rc $rc, '$out'"
rm "$HGVFS_HOME/config"

# Bad input: one line, nonzero.
for cmd in "gc --to banana" "prefetch --rev nosuchrev" "prefetch"; do
  dir=$mnt
  [ "$cmd" = prefetch ] && dir=$WORK
  out=$(cd "$dir" && "$HGVFS" $cmd 2>&1); rc=$?
  [ $rc -ne 0 ] && [ "$(wc -l <<<"$out")" = 1 ] && ok || bad "hgvfs $cmd: rc $rc, '$out'"
done
"$HGVFS" unmount "$mnt" >/dev/null || bad "unmount"

# A full disk under the cache: 12 MB of files through a 4 MiB $HGVFS_HOME.
if mount -t tmpfs -o size=4m tmpfs "$small" 2>/dev/null; then
  for i in $(seq 1 12); do head -c 1000000 /dev/urandom >"$repo/b/big$i"; done
  (cd "$repo" && $HG add -q && $HG commit -qm big) || bad "commit big files"
  export HGVFS_HOME=$small/home
  mkdir -p "$HGVFS_HOME"
  if "$HGVFS" mount "$repo" "$smallmnt" >/dev/null; then
    bad_file=$(same_as_hg "$smallmnt") && ok || bad "full disk: $bad_file differs from hg cat"
    "$HGVFS" unmount "$smallmnt" >/dev/null || bad "unmount of the full-disk mount"
  else
    bad "mount with HGVFS_HOME on a 4 MiB tmpfs"
  fi
else
  bad "cannot mount a tmpfs (run as root)"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
