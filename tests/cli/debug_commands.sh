#!/usr/bin/env bash
# `hgvfs debug manifest|cat|archive|verify` against the real hg, byte for byte.
#
# Usage: bash tests/cli/debug_commands.sh /path/to/hgvfs   (exit 0 = all passed)
#
# Makes the quick fixture set (tests/fixtures/make_repos.py --quick) in a
# temporary directory, then for each repository:
#   - every revision (and tip, a hex prefix, null): `hgvfs debug manifest`
#     against `hg manifest --debug -r REV` (stdout bytes and exit code);
#   - first and last revision: `hgvfs debug cat` against `hg cat -r REV` with
#     every file at once; at the last also one directory, each non-UTF-8
#     name, a missing path and a single file (stdout bytes and exit code),
#     both run in the repository;
#   - two revisions: `hgvfs debug archive` against `hg archive -t files`
#     (diff -r without following symlinks, then file kinds, modes, targets);
#   - `hgvfs debug verify` exits 0;
# and on damaged copies `hgvfs debug verify` exits 1 naming the revlog.
# Prints every failure and a last line "N passed, M failed".

set -u
set -o pipefail

if [ $# -ne 1 ]; then
  echo "usage: $0 /path/to/hgvfs" >&2
  exit 2
fi
HGVFS=$(realpath "$1")
SRC=$(cd "$(dirname "$0")/../.." && pwd)
PY=/usr/bin/python3  # the interpreter that has Mercurial's modules
JOBS=$(nproc 2>/dev/null || echo 2)

export HGPLAIN=1 HGRCPATH= HGUSER='test <test@example.com>' HGENCODING=utf-8 LC_ALL=C TZ=UTC
unset HGRCSKIPREPO HGPROF HGEDITOR

WORK=$(mktemp -d "${TMPDIR:-/tmp}/hgvfs-cli-test.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

passed=0
failed=0
pass() { passed=$((passed + 1)); }
fail() {
  failed=$((failed + 1))
  echo "FAIL: $*"
}

# Compares two captured runs: stdout files and exit codes.
# compare_runs LABEL WANT_PREFIX GOT_PREFIX
compare_runs() {
  local label=$1 want=$2 got=$3
  local wrc grc
  wrc=$(cat "$want.rc")
  grc=$(cat "$got.rc")
  if [ "$wrc" != "$grc" ]; then
    fail "$label: exit code hg=$wrc hgvfs=$grc"
    sed 's/^/    hg: /' "$want.err" | head -3
    sed 's/^/    hgvfs: /' "$got.err" | head -3
    return
  fi
  if ! cmp -s "$want.out" "$got.out"; then
    fail "$label: output differs ($(cmp "$want.out" "$got.out" 2>&1 | head -1))"
    diff <(head -c 4000 "$want.out" | cat -v) <(head -c 4000 "$got.out" | cat -v) | head -8 |
      sed 's/^/    /'
    return
  fi
  pass
}

# Runs a command in a directory, capturing stdout, stderr and exit code.
# capture PREFIX DIR CMD...
capture() {
  local prefix=$1 dir=$2
  shift 2
  (cd "$dir" && "$@" >"$prefix.out" 2>"$prefix.err")
  echo $? >"$prefix.rc"
}

# One manifest comparison's two runs; used in parallel through xargs.
manifest_job() {
  local repo=$1 rev=$2 out=$3
  capture "$out.want" "$repo" hg manifest --debug -r "$rev"
  capture "$out.got" "$repo" "$HGVFS" debug manifest "$repo" "$rev"
}
export -f manifest_job capture
export HGVFS

echo "making fixtures..."
if ! "$PY" "$SRC/tests/fixtures/make_repos.py" "$WORK/repos" --quick; then
  echo "FAIL: make_repos.py failed"
  echo "0 passed, 1 failed"
  exit 1
fi
mapfile -t REPOS <"$WORK/repos/repos.txt"
declare -A COUNT  # changesets per repository
for name in "${REPOS[@]}"; do
  tip=$(cd "$WORK/repos/$name" && hg log -r tip -T '{rev}') || tip=-1
  COUNT[$name]=$((tip + 1))
done

# ---- manifests: every revision of every repository, in parallel ------------
mkdir -p "$WORK/m"
jobs_file="$WORK/m/jobs"
: >"$jobs_file"
labels=()
n=0
for name in "${REPOS[@]}"; do
  repo="$WORK/repos/$name"
  count=${COUNT[$name]}
  specs=(tip)
  if [ "$name" = basic ] || [ "$count" -eq 0 ]; then specs+=(null); fi
  for ((r = 0; r < count; r++)); do specs+=("$r"); done
  if [ "$count" -gt 0 ]; then specs+=("$(cd "$repo" && hg log -r 0 -T '{node|short}')"); fi
  for spec in "${specs[@]}"; do
    printf '%s\0%s\0%s\0' "$repo" "$spec" "$WORK/m/$n" >>"$jobs_file"
    labels+=("manifest $name -r $spec")
    n=$((n + 1))
  done
done
xargs -0 -n 3 -P "$JOBS" bash -c 'manifest_job "$@"' _ <"$jobs_file"
for ((i = 0; i < n; i++)); do
  compare_runs "${labels[$i]}" "$WORK/m/$i.want" "$WORK/m/$i.got"
done

# ---- cat --------------------------------------------------------------------
cat_case() {
  local label=$1 repo=$2 rev=$3
  shift 3
  local p="$WORK/c/$((++cat_n))"
  capture "$p.want" "$repo" hg cat -r "$rev" "$@"
  capture "$p.got" "$repo" "$HGVFS" debug cat "$repo" "$rev" "$@"
  compare_runs "$label" "$p.want" "$p.got"
}
mkdir -p "$WORK/c"
cat_n=0
for name in "${REPOS[@]}"; do
  repo="$WORK/repos/$name"
  count=${COUNT[$name]}
  [ "$count" -gt 0 ] || continue
  for rev in 0 $((count - 1)); do
    mapfile -d '' files < <(cd "$repo" && hg files -r "$rev" -0)
    [ "${#files[@]}" -gt 0 ] || continue
    cat_case "cat $name -r $rev (all ${#files[@]} files)" "$repo" "$rev" "${files[@]}"
    [ "$rev" -eq $((count - 1)) ] || continue
    # The first directory in the manifest, whole.
    for f in "${files[@]}"; do
      if [[ "$f" == */* ]]; then
        cat_case "cat $name -r $rev directory '${f%%/*}'" "$repo" "$rev" "${f%%/*}"
        break
      fi
    done
    # Names that are not UTF-8.
    for f in "${files[@]}"; do
      if ! printf '%s' "$f" | iconv -f UTF-8 -t UTF-8 >/dev/null 2>&1; then
        cat_case "cat $name -r $rev non-UTF-8 $(printf '%q' "$f")" "$repo" "$rev" "$f"
      fi
    done
    cat_case "cat $name -r $rev missing path" "$repo" "$rev" "no/such/file"
    cat_case "cat $name -r $rev one file" "$repo" "$rev" "${files[-1]}"
  done
done

# A censored file revision: hg aborts (255) and so must hgvfs, with nothing
# on stdout.
if [ -d "$WORK/repos/censored" ]; then
  cat_case "cat censored -r 1 secret.txt (censored)" "$WORK/repos/censored" 1 secret.txt
fi

# ---- archive --------------------------------------------------------------------
# Kinds, modes and targets of everything under a directory (not dir modes:
# those follow the umask).
describe_tree() {
  (cd "$1" && find . -mindepth 1 \( -type d -printf '%P d\n' \) -o \
    \( -type f -printf '%P f %m\n' \) -o \( -type l -printf '%P l -> %l\n' \) | LC_ALL=C sort)
}
mkdir -p "$WORK/a"
a_n=0
for name in "${REPOS[@]}"; do
  repo="$WORK/repos/$name"
  count=${COUNT[$name]}
  [ "$count" -gt 0 ] || continue
  revs=(0 $((count - 1)))
  if [ "$name" = censored ]; then revs+=(1); fi  # holds a censored file
  for rev in "${revs[@]}"; do
    p="$WORK/a/$((++a_n))"
    capture "$p.want" "$repo" hg archive -t files -r "$rev" "$p.want.d"
    capture "$p.got" "$repo" "$HGVFS" debug archive "$repo" "$rev" "$p.got.d"
    label="archive $name -r $rev"
    if [ "$(cat "$p.want.rc")" != "$(cat "$p.got.rc")" ]; then
      fail "$label: exit code hg=$(cat "$p.want.rc") hgvfs=$(cat "$p.got.rc")"
      head -3 "$p.got.err" | sed 's/^/    hgvfs: /'
      continue
    fi
    if [ "$(cat "$p.want.rc")" != 0 ]; then
      pass  # both refused (a censored file): nothing to compare
      continue
    fi
    rm -f "$p.want.d/.hg_archival.txt"
    if ! diff -r --no-dereference "$p.want.d" "$p.got.d" >"$p.diff" 2>&1; then
      fail "$label: trees differ"
      head -5 "$p.diff" | sed 's/^/    /'
      continue
    fi
    if ! diff <(describe_tree "$p.want.d") <(describe_tree "$p.got.d") >"$p.kinds"; then
      fail "$label: kinds, modes or link targets differ"
      head -6 "$p.kinds" | sed 's/^/    /'
      continue
    fi
    pass
  done
done

# ---- verify -------------------------------------------------------------------------
for name in "${REPOS[@]}"; do
  repo="$WORK/repos/$name"
  out=$("$HGVFS" debug verify "$repo" 2>&1)
  rc=$?
  if [ "$rc" -eq 0 ]; then pass; else fail "verify $name: exit $rc: $(echo "$out" | head -2)"; fi
done

flip_byte() {  # FILE OFFSET
  "$PY" -c 'import sys
p, o = sys.argv[1], int(sys.argv[2])
b = bytearray(open(p, "rb").read())
b[o] ^= 0x5a
open(p, "wb").write(b)' "$1" "$2"
}

# verify_damaged LABEL REPO_COPY EXPECTED_TEXT
verify_damaged() {
  local label=$1 repo=$2 want=$3 out rc
  out=$("$HGVFS" debug verify "$repo" 2>&1)
  rc=$?
  if [ "$rc" -ne 1 ]; then
    fail "verify $label: exit $rc, expected 1: $(echo "$out" | head -2)"
  elif ! grep -qF -- "$want" <<<"$out"; then
    fail "verify $label: message does not name '$want': $(echo "$out" | head -2)"
  else
    pass
  fi
}

mkdir -p "$WORK/d"
# An inline filelog whose last revision's data is cut short.
cp -a "$WORK/repos/basic" "$WORK/d/cut-inline"
f="$WORK/d/cut-inline/.hg/store/data/src/main.c.i"
truncate -s $(($(stat -c %s "$f") - 10)) "$f"
verify_damaged "inline filelog cut" "$WORK/d/cut-inline" "data/src/main.c.i"

# A byte flipped inside a split filelog's data file.
cp -a "$WORK/repos/big" "$WORK/d/flip-split"
f="$WORK/d/flip-split/.hg/store/data/big.bin.d"
flip_byte "$f" $(($(stat -c %s "$f") / 2))
verify_damaged "split filelog byte flipped" "$WORK/d/flip-split" "data/big.bin.i"

# A byte flipped in the manifest's last revision.
cp -a "$WORK/repos/copies" "$WORK/d/flip-manifest"
f="$WORK/d/flip-manifest/.hg/store/00manifest.i"
flip_byte "$f" $(($(stat -c %s "$f") - 5))
verify_damaged "manifest byte flipped" "$WORK/d/flip-manifest" "00manifest.i"

# A changelog cut in the middle of an index entry.
cp -a "$WORK/repos/zlib" "$WORK/d/cut-changelog"
f="$WORK/d/cut-changelog/.hg/store/00changelog.i"
truncate -s $(($(stat -c %s "$f") - 20)) "$f"
verify_damaged "changelog cut" "$WORK/d/cut-changelog" "00changelog.i"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
