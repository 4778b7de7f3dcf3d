#!/bin/bash
# make demo: checkpoint a running Python program, kill it, restore it, and
# show that it carries on counting from where it was, with the same pid.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."
STASIS=${STASIS:-$PWD/build/stasis}
dir=$(mktemp -d /tmp/stasis-demo.XXXXXX)
pid=
cleanup() {
	[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true
	rm -rf "$dir"
}
trap cleanup EXIT

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

# The program keeps its state in memory only: a counter and a list that
# grows. It closes inherited fds so nothing of make's leaks into it.
cat > "$dir/counter.py" <<'PY'
import os, time
os.closerange(3, 65536)
n, seen = 0, []
while True:
    n += 1
    seen.append(n * n)
    print(f"pid {os.getpid()}: count {n}, sum of squares {sum(seen)}", flush=True)
    time.sleep(0.5)
PY

say "start a Python program that counts in memory"
python3 -u "$dir/counter.py" > "$dir/out.log" 2>&1 < /dev/null &
pid=$!
sleep 2.2
tail -n 3 "$dir/out.log"

say "stasis dump --type process --pid $pid -D $dir/ckpt"
# bash reports the killed job on its stderr: keep that out of the demo.
exec 3>&2 2>/dev/null
"$STASIS" dump --type process --pid "$pid" -D "$dir/ckpt" 2>&3
wait "$pid" || true
exec 2>&3 3>&-
echo "process $pid is gone: $(kill -0 "$pid" 2>/dev/null && echo no || echo yes)"
last=$(tail -n 1 "$dir/out.log")

say "stasis inspect $dir/ckpt (first lines)"
"$STASIS" inspect "$dir/ckpt" > "$dir/inspect.txt"
head -n 8 "$dir/inspect.txt"

say "stasis restore -D $dir/ckpt --detach"
newpid=$("$STASIS" restore -D "$dir/ckpt" --detach)
echo "restored as pid $newpid"
sleep 2.2
say "it carries on (last line before the dump: '$last')"
tail -n 4 "$dir/out.log"
kill "$newpid"
pid=
echo
echo "demo done: same pid, counter continued from memory."
