#!/usr/bin/env bash
# Living with a mount, on a real mount: `hgvfs mount --rev NAME` mounts the
# changeset `hg log -r NAME` names (a bookmark, a tag, a branch, ".", a
# revset); `hgvfs stats` (human and -T json) reports the reads just made;
# usage errors and help read like hg's.
#
# Usage: bash tests/integration/ops_commands.sh /path/to/hgvfs  (exit 0 = all passed)
set -u
set -o pipefail
[ $# -eq 1 ] || { echo "usage: $0 /path/to/hgvfs" >&2; exit 2; }
HGVFS=$(realpath "$1")
export HGPLAIN=1 HGRCPATH= HGUSER='test <test@example.com>' LC_ALL=C TZ=UTC

WORK=$(mktemp -d "${TMPDIR:-/tmp}/hgvfs-ops.XXXXXX")
export HGVFS_HOME=$WORK/home
mnt=$WORK/mnt
cleanup() {
  if grep -q " $mnt fuse" /proc/mounts; then
    "$HGVFS" unmount "$mnt" >/dev/null 2>&1 || umount -l "$mnt" || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

passed=0
failed=0
pass() { passed=$((passed + 1)); }
fail() { failed=$((failed + 1)); echo "FAIL: $*"; }
check() {  # check DESCRIPTION COMMAND...
  local what=$1; shift
  if "$@"; then pass; else fail "$what"; fi
}

# A repository with a bookmark (@), tags, a second branch and a revset target.
repo=$WORK/repo
hg init -q "$repo"
cd "$repo"
mkdir -p src/deep
for i in 1 2 3; do echo "file $i" > src/f$i; done
echo deep > src/deep/d
hg commit -qAm base
hg tag -q v1
hg branch -q stable
echo stable > s
hg commit -qAm stable
hg bookmark -q -r 0 @
hg update -q default
echo more >> src/f1
hg commit -qm more
hg tag -q -l local-tag -r 1
hg update -q 1   # "." is the stable head
cd "$WORK"
mkdir -p "$mnt"

# mount --rev NAME: the mount's revision is hg's answer.
for spec in . @ v1 local-tag stable default tip 'max(branch(default))' 'v1~1'; do
  want=$(hg log -R "$repo" -r "$spec" -T '{node}')
  if ! out=$("$HGVFS" mount --rev "$spec" "$repo" "$mnt" 2>&1); then
    fail "mount --rev $spec: $out"
    continue
  fi
  got=$(hg log -R "$mnt" -r . -T '{node}' 2>&1)
  check "mount --rev $spec mounts $want (got $got)" [ "$got" = "$want" ]
  "$HGVFS" unmount "$mnt" >/dev/null 2>&1 || fail "unmount after --rev $spec"
  # A client keeps its revision; a fresh one per name.
  rm -rf "$HGVFS_HOME/clients"
done
err=$("$HGVFS" mount --rev nosuchthing "$repo" "$mnt" 2>&1)
rc=$?
check "an unknown revision fails" [ $rc -ne 0 ]
check "an unknown revision is one line naming it ($err)" \
  [ "$(printf '%s\n' "$err" | wc -l)" -eq 1 -a -n "$(printf '%s' "$err" | grep -F "nosuchthing")" ]

# stats on a real mount.
"$HGVFS" mount --rev default "$repo" "$mnt" >/dev/null || { fail "mount default"; exit 1; }
cat "$mnt"/src/f1 "$mnt"/src/f2 "$mnt"/src/deep/d >/dev/null
ls -lR "$mnt" >/dev/null
(cd "$mnt" && hg status >/dev/null)
json=$("$HGVFS" stats "$mnt" -T json)
check "stats -T json exits 0" [ $? -eq 0 ]
check "stats -T json parses, lookups, reads and a status were counted" \
  python3 -c '
import json, sys
s = json.loads(sys.argv[1])
fuse = s["fuse"]
assert fuse["lookup"]["count"] > 0, fuse
assert fuse["read"]["count"] > 0, fuse
assert fuse["read"]["p99_us"] >= fuse["read"]["p50_us"], fuse["read"]
assert s["inodes"]["files"] >= 4 and s["inodes"]["directories"] >= 2, s["inodes"]
assert s["calls"]["status"]["count"] >= 1, s["calls"]
c = s["cache"]
assert c["repository"]["blob_reads"] + c["lmdb"]["blob_hits"] + c["memory"]["blob_hits"] > 0, c
assert s["mount"] == sys.argv[2], s["mount"]
' "$json" "$mnt"
before=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["fuse"]["lookup"]["count"])' "$json")
ls "$mnt"/src/nonexistent-$RANDOM >/dev/null 2>&1
cat "$mnt"/src/f3 >/dev/null
after=$("$HGVFS" stats "$mnt" -T json | python3 -c 'import json,sys; print(json.load(sys.stdin)["fuse"]["lookup"]["count"])')
check "lookups grew ($before -> $after)" [ "$after" -gt "$before" ]
# The materialized count follows a write.
echo changed >> "$mnt"/src/f2
mat=$("$HGVFS" stats "$mnt" -T json | python3 -c 'import json,sys; s=json.load(sys.stdin); print(s["overlay"]["files"], s["inodes"]["materialized_files"])')
check "a write shows in overlay and materialized counts ($mat)" [ "$mat" = "1 1" ]
human=$(cd "$mnt/src" && "$HGVFS" stats)
for section in "inodes loaded:" "overlay:" "cache:" "fuse requests since mount:" "calls:" "lookup" "status"; do
  check "human stats has '$section'" grep -qF -- "$section" <<<"$human"
done
err=$("$HGVFS" stats "$WORK" 2>&1)
rc=$?
check "stats on a non-mount fails ($rc)" [ $rc -ne 0 ]
check "stats on a non-mount says so in one line ($err)" \
  [ "$err" = "hgvfs: $WORK is not an hgvfs mount" ]
err=$("$HGVFS" stats "$mnt" -T xml 2>&1)
check "stats -T xml is refused" [ $? -ne 0 -a -n "$err" ]
"$HGVFS" unmount "$mnt" >/dev/null || fail "unmount"

# The command line: the program's name in help, usage errors in one line.
help=$("$HGVFS" --help)
check "hgvfs --help exits 0" [ $? -eq 0 ]
check "hgvfs --help starts with the program's name" grep -q '^hgvfs ' <<<"$(head -1 <<<"$help")"
check "hgvfs --help has one line per option" grep -qE '^ -h --help +display help and exit$' <<<"$help"
for sub in mount stats unmount list status doctor; do
  check "--help lists $sub" grep -qE "^ +$sub[ ,]" <<<"$help"
  sh=$("$HGVFS" $sub --help 2>&1)
  check "hgvfs $sub --help exits 0" [ $? -eq 0 ]
  check "hgvfs $sub --help names the program and command" grep -q "^hgvfs $sub" <<<"$sh"
done
check "hgvfs mount --help has examples" grep -q "^examples:" <<<"$("$HGVFS" mount --help)"
out=$("$HGVFS" 2>&1)
rc=$?
check "hgvfs with no command shows the help and exits 0, as hg does ($rc)" [ $rc -eq 0 ]
check "hgvfs with no command shows the program's synopsis" [ "$(head -1 <<<"$out")" = "hgvfs COMMAND [OPTION]..." ]
check "hgvfs with no command lists the commands" grep -q "^commands:" <<<"$out"
err=$("$HGVFS" debug 2>&1)
rc=$?
check "hgvfs debug without its command exits 255 ($rc)" [ $rc -eq 255 ]
check "hgvfs debug without its command is one line ($err)" \
  [ "$err" = "hgvfs debug: a command is required (see 'hgvfs debug --help')" ]
err=$("$HGVFS" mount --no-such-option 2>&1)
rc=$?
check "an unknown option exits 255 ($rc)" [ $rc -eq 255 ]
check "an unknown option is one line naming it ($err)" \
  [ "$(printf '%s\n' "$err" | wc -l)" -eq 1 -a -n "$(grep -F -- '--no-such-option' <<<"$err")" ]
err=$("$HGVFS" no-such-command 2>&1)
rc=$?
check "an unknown command exits 255 ($rc)" [ $rc -eq 255 ]
check "an unknown command is one line naming it ($err)" \
  [ "$(printf '%s\n' "$err" | wc -l)" -eq 1 -a -n "$(grep -F -- 'no-such-command' <<<"$err")" ]
err=$("$HGVFS" mount 2>&1)
rc=$?
check "mount without arguments exits 255 ($rc)" [ $rc -eq 255 ]
check "mount without arguments is one line ($err)" [ "$(printf '%s\n' "$err" | wc -l)" -eq 1 ]

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
