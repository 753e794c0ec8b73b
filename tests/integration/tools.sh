#!/usr/bin/env bash
# Everyday tools writing through the mount, against a normal `hg clone`.
#
# Usage: bash tests/integration/tools.sh /path/to/hgvfs   (exit 0 = all passed)
#
# Makes a small repository with the real hg (directories, a C program with a
# Makefile, text files, symlinks, an executable script), mounts its tip
# ("A") and makes a normal checkout with `hg clone` ("B"). Then applies the
# same operations to both, each run from the tree's root, and after each one
# compares: exit codes, output (tree paths replaced by TREE), and the trees
# (diff -r --no-dereference, then every name with its kind, mode, size and
# symlink target; .hg excluded on both sides; timestamps only where a step
# prints them). Steps: git apply, tar x, rsync -a in and out, cp -a,
# overwriting in place (>, >>, cp, dd conv=notrunc, truncate), an
# editor-style save (temp file, fsync, rename), vim -Es, sed -i, make (build,
# up to date, rebuild after touch), touch, chmod, ln -s, mkdir -p, rm -rf,
# find -newer, mv of directories, make clean; then extended attributes
# (setfattr, cp --preserve=xattr, rsync -aX, tar --xattrs; compared as
# getfattr prints them), device nodes and FIFOs (mknod, mkfifo), and hard
# links (ln, cp -al, rsync -aH, tar, a make rule that links its output;
# link counts compared as stat prints them).
#
# Environment:
#   HGVFS_TOOLS_NO_MOUNT=1      A is a second `hg clone` instead of the mount
#                               (to develop the script without a writable mount)
#   HGVFS_TOOLS_PERTURB=STEP    after STEP, change one file of B behind the
#                               script's back: the comparison must then fail
#   HGVFS_TOOLS_KEEP=1          keep the temporary directory (after unmounting)
#   HGVFS_TOOLS_VERBOSE=1       print each step's output (B's)
#
# Prints every failure and a last line "N passed, M failed".

set -u
set -o pipefail

if [ $# -ne 1 ]; then
  echo "usage: $0 /path/to/hgvfs" >&2
  exit 2
fi
HGVFS=$(realpath "$1")
HG=/usr/bin/hg
NO_MOUNT=${HGVFS_TOOLS_NO_MOUNT:-0}
PERTURB=${HGVFS_TOOLS_PERTURB:-}

export HGPLAIN=1 HGRCPATH= HGUSER='test <test@example.com>' HGENCODING=utf-8 LC_ALL=C TZ=UTC
unset HGRCSKIPREPO HGPROF HGEDITOR CC CFLAGS MAKEFLAGS

missing=()
for tool in "$HG" git rsync make gcc tar sed diff find cmp sync setfattr getfattr; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "tools.sh: missing tools: ${missing[*]} (add them to scripts/setup)" >&2
  exit 1
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/hgvfs-tools.XXXXXX")
repo=$WORK/repo
A=$WORK/mnt
B=$WORK/checkout
stage=$WORK/stage
export HGVFS_HOME=$WORK/home
export HOME=$WORK/userhome  # git, vim and hg read nothing of the real user's
mkdir -p "$HGVFS_HOME" "$HOME" "$stage" "$A"
mounted=0

is_mounted() { awk -v m="$1" '$2 == m { found = 1 } END { exit !found }' /proc/self/mounts; }

cleanup() {
  local rc=$?
  if [ "$mounted" = 1 ]; then
    "$HGVFS" unmount "$A" >/dev/null 2>&1
    if is_mounted "$A"; then
      echo "tools.sh: hgvfs unmount left $A mounted; lazy unmount" >&2
      fusermount3 -u -z "$A" 2>/dev/null || umount -l "$A" 2>/dev/null
    fi
  fi
  if is_mounted "$A"; then
    echo "tools.sh: $A is still mounted; leaving $WORK" >&2
  elif [ "${HGVFS_TOOLS_KEEP:-0}" = 1 ]; then
    echo "tools.sh: kept $WORK" >&2
  else
    rm -rf "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------------------
# The repository

make_repo() {
  "$HG" init "$repo" || return 1
  (
    cd "$repo" || exit 1
    mkdir -p src docs/notes data scripts
    cat >src/main.c <<'EOF'
#include <stdio.h>
#include "util.h"

int main(void) {
  printf("foo says %d\n", twice(21));
  return 0;
}
EOF
    cat >src/util.c <<'EOF'
#include "util.h"

int twice(int x) { return 2 * x; }
EOF
    cat >src/util.h <<'EOF'
#pragma once
int twice(int x);
EOF
    cat >Makefile <<'EOF'
CC = gcc
CFLAGS = -O2 -Wall
OBJS = build/main.o build/util.o

all: hello

hello: $(OBJS)
	$(CC) -o $@ $(OBJS)

build/%.o: src/%.c src/util.h | build
	$(CC) $(CFLAGS) -c -o $@ $<

build:
	mkdir -p build

clean:
	rm -rf build hello

.PHONY: all clean
EOF
    printf 'A small project.\nfoo and more foo.\n' >README.txt
    printf 'The guide.\nfoo: a word.\n' >docs/guide.txt
    printf 'first note\n' >docs/notes/a.txt
    printf 'second note about foo\n' >docs/notes/b.txt
    for i in $(seq -w 1 40); do
      printf 'line 1 of %s\nfoo %s\nline 3\n' "$i" "$i" >"data/f$i.txt"
    done
    printf '#!/bin/sh\necho tool ran\n' >scripts/tool.sh
    chmod +x scripts/tool.sh
    ln -s docs/guide.txt latest
    ln -s src srclink
    "$HG" add -q . &&
      "$HG" commit -q -d '1700000000 0' -m 'first' &&
      printf 'third note\n' >docs/notes/c.txt &&
      "$HG" add -q docs/notes/c.txt &&
      "$HG" commit -q -d '1700000100 0' -m 'second'
  )
}

# Inputs of the steps, made once from the initial checkout: a git-format
# patch, a tar archive, rsync sources.
make_stage() {
  mkdir -p "$stage/xattr-src/sub" && printf 'x\n' >"$stage/xattr-src/f" &&
    setfattr -n user.a -v 1 "$stage/xattr-src/f" &&
    setfattr -n user.b -v "$(head -c 3000 /dev/zero | tr '\0' b)" "$stage/xattr-src/sub" || return 1
  mkdir -p "$stage/pat" && rsync -a --exclude=/.hg "$B/" "$stage/pat/old/" || return 1
  cp -a "$stage/pat/old" "$stage/pat/new" || return 1
  (
    cd "$stage/pat/new" || exit 1
    sed -i 's/return 0;/puts("patched");\n  return 0;/' src/main.c
    printf 'added by the patch\n' >docs/added.txt
    mkdir -p newdir/inner && printf 'new dir\n' >newdir/inner/file.txt
    rm docs/notes/a.txt
    chmod +x data/f02.txt
    ln -s README.txt newlink
    printf 'changed line\n' >>data/f03.txt
  )
  # git diff exits 1 when there are differences.
  (cd "$stage/pat" && git diff --no-index --binary old new >"$stage/change.patch")
  [ $? -eq 1 ] || return 1

  mkdir -p "$stage/overlay/src" "$stage/overlay/vendor/lib/deep" "$stage/overlay/vendor/bin"
  (
    cd "$stage/overlay" || exit 1
    printf 'A README from a tarball.\nfoo\n' >README.txt
    printf '#include "util.h"\n\nint twice(int x) { return x + x; }\n' >src/util.c
    printf 'int x;\n' >vendor/lib/x.c
    printf '#define Y 1\n' >vendor/lib/deep/y.h
    printf '#!/bin/sh\necho vendor\n' >vendor/bin/run
    chmod 755 vendor/bin/run
    chmod 640 vendor/lib/x.c
    ln -s lib/x.c vendor/link
    touch -d '2020-05-06 07:08:09' README.txt vendor/lib/x.c
  )
  tar -C "$stage/overlay" --owner=0 --group=0 -cf "$stage/overlay.tar" README.txt src vendor ||
    return 1

  mkdir -p "$stage/rsync-src/sub" "$stage/rsync-over/docs" "$stage/rsync-over/data"
  printf 'incoming one\n' >"$stage/rsync-src/one.txt"
  printf 'incoming two\n' >"$stage/rsync-src/sub/two.txt"
  chmod 600 "$stage/rsync-src/sub/two.txt"
  ln -s one.txt "$stage/rsync-src/link"
  printf 'guide replaced by rsync, foo\n' >"$stage/rsync-over/docs/guide.txt"
  printf 'data f05 replaced\n' >"$stage/rsync-over/data/f05.txt"
  touch -d '2019-01-02 03:04:05' "$stage/rsync-over/docs/guide.txt"
}

# ---------------------------------------------------------------------------
# Comparing

passed=0
failed=0
fail() {
  failed=$((failed + 1))
  echo "FAIL: $*"
}

# Names, kinds, modes, sizes (not of directories) and symlink targets.
listing() {
  (cd "$1" && find . -path ./.hg -prune -o -type d -printf '%P %y %m\n' -o \
    -printf '%P %y %m %s %l\n') | sort
}

# compare_trees LABEL DIR_A DIR_B [KEY]: 0 when equal, else prints the
# differences. With KEY, differences identical to the last ones seen under
# KEY are summed up in one line (the trees diverged earlier, nothing new).
last_label=
compare_trees() {
  local label=$1 a=$2 b=$3 key=${4:-}
  diff -r --no-dereference -x .hg "$a" "$b" 2>&1 | sed "s|$a|A|g; s|$b|B|g" >"$WORK/diff.out"
  listing "$a" >"$WORK/list.A"
  listing "$b" >"$WORK/list.B"
  diff "$WORK/list.A" "$WORK/list.B" | grep '^[<>]' >"$WORK/listdiff.out"
  if [ ! -s "$WORK/diff.out" ] && [ ! -s "$WORK/listdiff.out" ]; then
    [ -n "$key" ] && rm -f "$WORK/seen.$key"
    return 0
  fi
  cat "$WORK/diff.out" "$WORK/listdiff.out" >"$WORK/now.out"
  if [ -n "$key" ] && [ -f "$WORK/seen.$key" ] && cmp -s "$WORK/now.out" "$WORK/seen.$key"; then
    fail "$label: trees still differ as after $last_label (nothing new)"
    return 1
  fi
  [ -n "$key" ] && cp "$WORK/now.out" "$WORK/seen.$key" && last_label=$label
  if [ -s "$WORK/diff.out" ]; then
    fail "$label: contents differ (diff -r, A=${a#"$WORK"/} B=${b#"$WORK"/}):"
    head -n 20 "$WORK/diff.out" | sed 's/^/    /'
  fi
  if [ -s "$WORK/listdiff.out" ]; then
    fail "$label: names/kinds/modes/sizes/targets differ (name kind mode size target; < A, > B):"
    head -n 20 "$WORK/listdiff.out" | sed 's/^/    /'
  fi
  return 1
}

# A change to B that the comparison must catch (HGVFS_TOOLS_PERTURB).
perturb() {
  echo "tools.sh: perturbing B after step $1 (HGVFS_TOOLS_PERTURB)"
  printf 'perturbed\n' >>"$B/README.txt"
}

# step NAME FUNCTION: runs FUNCTION from the root of A, then of B (with the
# side's letter as $1), and compares exit codes, outputs and trees.
step() {
  local name=$1 fn=$2 side root before=$failed
  for side in A B; do
    if [ "$side" = A ]; then root=$A; else root=$B; fi
    (cd "$root" && "$fn" "$side") >"$WORK/out.$side" 2>&1
    echo $? >"$WORK/rc.$side"
    sed -i "s|$root|TREE|g; s|$WORK|WORK|g" "$WORK/out.$side"
  done
  [ "$PERTURB" = "$name" ] && perturb "$name"
  if ! cmp -s "$WORK/rc.A" "$WORK/rc.B"; then
    fail "$name: exit status $(cat "$WORK/rc.A") in A, $(cat "$WORK/rc.B") in B"
  elif [ "$(cat "$WORK/rc.B")" != 0 ]; then
    fail "$name: failed in B too (exit $(cat "$WORK/rc.B")): the step itself is broken"
  fi
  if ! cmp -s "$WORK/out.A" "$WORK/out.B"; then
    fail "$name: output differs (< A, > B):"
    diff "$WORK/out.A" "$WORK/out.B" | grep '^[<>]' | head -n 20 | sed 's/^/    /'
  fi
  compare_trees "$name" "$A" "$B" trees
  if [ "${HGVFS_TOOLS_VERBOSE:-0}" = 1 ]; then sed 's/^/    | /' "$WORK/out.B"; fi
  if [ "$failed" = "$before" ]; then
    passed=$((passed + 1))
    echo "ok: $name"
  fi
}

# ---------------------------------------------------------------------------
# Steps: each runs in the tree's root, $1 = A or B

s_initial() { :; }

s_git_apply() { git apply -p2 "$stage/change.patch"; }

s_tar_x() { tar -xf "$stage/overlay.tar"; }

s_rsync_in() { rsync -a "$stage/rsync-src/" incoming/ && rsync -a "$stage/rsync-over/" ./; }

s_rsync_out() { rsync -a --exclude=/.hg ./ "$WORK/rsync-out-$1/"; }

s_cp_a() { cp -a src src-copy && mkdir docs-copy && cp -a docs/. docs-copy/; }

# Writes into existing files: shell redirections (O_TRUNC, O_APPEND), cp over
# a file, dd without truncation, truncate.
s_overwrite() {
  printf 'short\n' >README.txt && echo appended >>docs/guide.txt && : >data/f07.txt &&
    cp scripts/tool.sh data/f08.txt &&
    dd if=/dev/zero of=data/f09.txt bs=1 count=3 seek=2 conv=notrunc status=none &&
    truncate -s 100 data/f11.txt && truncate -s 2 data/f12.txt && cat README.txt data/f08.txt
}

# What editors do: write a temporary file beside the original, fsync it,
# rename it over the original.
s_editor_save() {
  local f=docs/guide.txt tmp=docs/.guide.txt.new
  sed 's/foo/bar/g' "$f" >"$tmp" && chmod --reference="$f" "$tmp" && sync "$tmp" &&
    mv -f "$tmp" "$f" && sync docs && cat "$f"
}

s_vim() {
  vim -Es -u NONE -i NONE -N -c '%s/foo/bar/ge' -c 'wq' docs/notes/b.txt && cat docs/notes/b.txt
}

s_sed_i() { sed -i 's/foo/baz/g; s/^line 3$/LINE THREE/' data/*.txt docs/notes/*.txt; }

s_make() { make && ./hello; }

s_make_up_to_date() { make; }

s_make_after_touch() { sleep 0.1 && touch src/util.h && make && ./hello; }

s_touch() {
  touch newfile && touch -d '2001-02-03 04:05:06' README.txt && touch -c not-created &&
    touch -r README.txt docs/guide.txt && touch -m -d '@1234567890.5' data/f01.txt &&
    stat -c '%n %y' README.txt docs/guide.txt data/f01.txt
}

s_chmod() {
  chmod +x scripts/tool.sh data/f10.txt && chmod -R go-w docs && chmod 600 README.txt &&
    chmod u+s,g+s scripts/tool.sh && chmod 1777 data && ./scripts/tool.sh
}

s_ln_s() {
  ln -s ../src/main.c docs/main-link.c && ln -sfn src latest-src && ln -s nowhere dangling &&
    ln -sf docs/notes/b.txt latest && readlink latest docs/main-link.c && cat latest-src/util.h
}

s_mkdir_p() { mkdir -p deep/a/b/c/d && mkdir -p deep/a/b && mkdir -p -m 700 private/x; }

s_rm_rf() { rm -rf vendor deep/a/b src-copy/util.c && rm -rf not-there; }

# Everything old, then a reference time, then two fresh files.
s_find_newer() {
  find . -path ./.hg -prune -o -exec touch -h -d '2010-01-01 00:00:00' {} + &&
    touch ref && touch -d '2015-01-01 00:00:00' ref && touch README.txt src/main.c &&
    find . -path ./.hg -prune -o -newer ref -print | sort
}

s_mv_dirs() {
  mv docs documentation && mv src-copy documentation/ && mv documentation/notes notes-top &&
    mv data incoming/ && ls -R documentation notes-top
}

s_make_clean() { make clean && ls; }

# Extended attributes (user.*; listed with getfattr, relative paths) and
# special files.
# (Sorted by name, symlinks not followed: listing orders differ.)
xattrs_of() {
  find "$@" -path ./.hg -prune -o -print | sort | while read -r f; do
    getfattr -h -d -m '^user\.' "$f" 2>&1
  done
}
s_setfattr() {
  setfattr -n user.note -v "from tools.sh" README.txt &&
    setfattr -n user.dir -v 0x00ff41 src &&
    setfattr -n user.gone -v x README.txt && setfattr -x user.gone README.txt &&
    { setfattr -x user.gone README.txt; echo "second remove: $?"; } &&
    { getfattr -n user.none README.txt; echo "missing: $?"; } &&
    xattrs_of README.txt src
}
s_cp_preserve_xattr() { cp --preserve=xattr README.txt readme-x && cp -a src src-x && xattrs_of readme-x src-x; }
s_rsync_x() {
  rsync -aX --exclude=/.hg ./ "$WORK/rsync-x-$1/" && (cd "$WORK/rsync-x-$1" && xattrs_of .) &&
    rsync -aX "$stage/xattr-src/" xin/ && xattrs_of xin
}
s_tar_xattrs() {
  tar --xattrs -cf "$WORK/x-$1.tar" README.txt src-x && mkdir tarx &&
    tar --xattrs --xattrs-include='user.*' -xf "$WORK/x-$1.tar" -C tarx && xattrs_of tarx
}
s_mknod() {
  mknod dev-null c 1 3 && mknod dev-loop b 7 0 && mkfifo pipe &&
    stat -c '%n %F %a %t:%T' dev-null dev-loop pipe && rm dev-loop &&
    mv dev-null dev-null2 && stat -c '%n %F %a %t:%T' dev-null2 &&
    rm dev-null2 pipe  # (diff -r cannot compare them)
}

# Hard links: counts as stat prints them; a write through one name is
# read through the other.
links_of() { find "$@" -path ./.hg -prune -o ! -type d -printf '%p %n\n' | sort; }
s_ln() {
  ln README.txt readme-hard && ln src/main.c main-hard.c && mkdir -p hl && ln readme-hard hl/third &&
    printf 'through a link\n' >>hl/third && tail -n 1 README.txt && links_of README.txt readme-hard hl &&
    { ln src hl/dir-link; echo "a directory: $?"; } && { ln README.txt hl/third; echo "exists: $?"; } &&
    rm readme-hard && links_of README.txt hl && mv hl/third hl/moved && links_of README.txt hl
}
s_cp_al() { cp -al src src-linked && links_of src src-linked && rm src-linked/util.c && links_of src/util.c; }
s_rsync_h() {
  rsync -aH --exclude=/.hg ./ "$WORK/rsync-h-$1/" && (cd "$WORK/rsync-h-$1" && links_of README.txt hl src src-linked) &&
    rsync -aH "$WORK/rsync-h-$1/src-linked/" src-again/ && links_of src-again
}
s_tar_links() {
  tar -cf "$WORK/h-$1.tar" README.txt hl src src-linked && mkdir tarh && tar -xf "$WORK/h-$1.tar" -C tarh &&
    (cd tarh && links_of .)
}
s_make_links() {
  printf 'hello-linked: hello\n\tln -f hello hello-linked\n' >links.mk &&
    make && make -f links.mk && ./hello-linked && links_of hello hello-linked &&
    sleep 0.1 && touch src/util.h && make && make -f links.mk && links_of hello hello-linked
}

# ---------------------------------------------------------------------------

make_repo >"$WORK/setup.log" 2>&1 || {
  cat "$WORK/setup.log"
  echo "tools.sh: could not make the repository" >&2
  exit 1
}
"$HG" clone -q "$repo" "$B" || exit 1
if [ "$NO_MOUNT" = 1 ]; then
  echo "tools.sh: HGVFS_TOOLS_NO_MOUNT=1: A is a second hg clone, not the mount"
  rmdir "$A" && "$HG" clone -q "$repo" "$A" || exit 1
else
  if ! "$HGVFS" mount "$repo" "$A"; then
    echo "tools.sh: hgvfs mount failed" >&2
    exit 1
  fi
  mounted=1
fi
make_stage >"$WORK/stage.log" 2>&1 || {
  cat "$WORK/stage.log"
  echo "tools.sh: could not make the step inputs" >&2
  exit 1
}

step initial s_initial
step git-apply s_git_apply
step tar-x s_tar_x
step rsync-in s_rsync_in
step rsync-out s_rsync_out
compare_trees "rsync-out (copies made out of A and B)" "$WORK/rsync-out-A" "$WORK/rsync-out-B"
step cp-a s_cp_a
step overwrite s_overwrite
step editor-save s_editor_save
if command -v vim >/dev/null; then
  step vim s_vim
else
  echo "note: vim not installed, vim step skipped (add vim to scripts/setup)"
fi
step sed-i s_sed_i
step make s_make
step make-up-to-date s_make_up_to_date
step make-after-touch s_make_after_touch
step touch s_touch
step chmod s_chmod
step ln-s s_ln_s
step mkdir-p s_mkdir_p
step rm-rf s_rm_rf
step find-newer s_find_newer
step mv-dirs s_mv_dirs
step make-clean s_make_clean
step setfattr s_setfattr
step cp-preserve-xattr s_cp_preserve_xattr
step rsync-aX s_rsync_x
compare_trees "rsync-aX (copies made out of A and B)" "$WORK/rsync-x-A" "$WORK/rsync-x-B"
step tar-xattrs s_tar_xattrs
step mknod s_mknod
step ln s_ln
step cp-al s_cp_al
step rsync-aH s_rsync_h
compare_trees "rsync-aH (copies made out of A and B)" "$WORK/rsync-h-A" "$WORK/rsync-h-B"
step tar-links s_tar_links
step make-links s_make_links

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
