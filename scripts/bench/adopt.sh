#!/usr/bin/env bash
# Exec cost of adoption (docs/policy.md#workloads, docs/performance.md): per-exec wall time of a tiny
# program (a copy of /bin/true) started OUTSIDE tasks by a shell loop, under one writd (enforce mode), in
# alternating rounds of three configurations:
#   off        no Workloads entry: the exec hook does one task-map and one array lookup
#   prefilter  a Workloads entry naming ANOTHER exe (unix:path): every exec pays the resolved-path walk
#              and hash, and is no candidate
#   candidate  the entry names THIS exe, but its cgroup selector does not match: each exec is stopped in
#              the kernel, judged by writd (miss) and continued
# The policy is switched with `writ policy reload`. Prints the median per-exec microseconds of each, and
# writd's own measure of how long candidates stayed stopped (adopt_stopped_us_total / adopt_stops).
#
#   scripts/bench/adopt.sh [--execs N] [--rounds R] [--build-dir DIR]
# Needs root and a built tree; exit 77 = cannot run here.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
root="$bench_root"
build="${WRIT_BUILD_DIR:-$root/build}"
execs=500
rounds=5
while [ $# -gt 0 ]; do
  case "$1" in
    --execs) execs="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --build-dir) build="$2"; shift 2 ;;
    *) echo "usage: $0 [--execs N] [--rounds R] [--build-dir DIR]" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "bench-adopt: needs root" >&2; exit 77; }
[ -x "$build/bin/writd" ] || { echo "bench-adopt: no $build/bin/writd (build first)" >&2; exit 77; }

tmp="$(mktemp -d /tmp/writ-bench-adopt-XXXXXX)"
chmod 755 "$tmp"
subtree="writ-bench-adopt-$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')"
writd_pid=""
cleanup() {
  if [ -n "$writd_pid" ]; then kill "$writd_pid" 2>/dev/null || true; wait "$writd_pid" 2>/dev/null || true; fi
  rm -rf "$tmp" "/sys/fs/bpf/$subtree"
}
trap cleanup EXIT

cp "$(readlink -f /bin/true)" "$tmp/agent"
cp "$(readlink -f /bin/true)" "$tmp/other"
mkdir -p "$tmp/policies" "$tmp/parked"
cat > "$tmp/policies/intent.yaml" <<'YAML'
apiVersion: writ.dev/v1
kind: Intent
name: bench-adopted
exec: {deny: [/usr/bin/sudo]}
YAML
workloads() {  # $1 = the exe the entry names
  cat <<YAML
apiVersion: writ.dev/v1
kind: Workloads
workloads:
  - name: bench
    spiffe_id: spiffe://example.org/agent/bench
    intent: bench-adopted
    selectors: ["unix:path:$1", "cgroup:path:/writ-bench-adopt-nowhere/**"]
YAML
}
workloads "$tmp/other" > "$tmp/parked/prefilter.yaml"
workloads "$tmp/agent" > "$tmp/parked/candidate.yaml"
cat > "$tmp/writd.yaml" <<YAML
mode: enforce
policies: policies
state_dir: $tmp/state
run_dir: $tmp/run
events: events.jsonl
cgroup_subtree: $subtree
YAML
"$build/bin/writd" --config "$tmp/writd.yaml" > "$tmp/writd.out" 2> "$tmp/writd.err" &
writd_pid=$!
writ() { "$build/bin/writ" --socket "$tmp/run/writd.sock" "$@"; }
for _ in $(seq 100); do writ status > /dev/null 2>&1 && break; sleep 0.1; done
writ status > /dev/null || { cat "$tmp/writd.err" >&2; exit 1; }

use() {  # off | prefilter | candidate
  rm -f "$tmp/policies/workloads.yaml"
  [ "$1" = off ] || cp "$tmp/parked/$1.yaml" "$tmp/policies/workloads.yaml"
  writ policy reload > /dev/null
}
per_exec_us() {  # $1 = exe
  local t0 t1
  t0=$(date +%s%N)
  for ((i = 0; i < execs; i++)); do "$1"; done
  t1=$(date +%s%N)
  echo $(( (t1 - t0) / execs / 1000 ))
}
declare -A res
for ((r = 0; r < rounds; r++)); do
  for cfg in off prefilter candidate; do
    use "$cfg"
    res[$cfg]+="$(per_exec_us "$tmp/agent") "
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
counters="$(writ status | grep '^counters:')"
echo "per-exec microseconds, median of $rounds rounds x $execs execs of a /bin/true copy outside tasks:"
for cfg in off prefilter candidate; do
  echo "  $cfg: $(echo "${res[$cfg]}" | median)  (rounds: ${res[$cfg]})"
done
echo "$counters" | tr ' ' '\n' | grep '^adopt_' | tr '\n' ' '; echo
stops=$(echo "$counters" | tr ' ' '\n' | sed -n 's/^adopt_stops=//p')
total=$(echo "$counters" | tr ' ' '\n' | sed -n 's/^adopt_stopped_us_total=//p')
# The candidate rounds must have stopped execs; none means the pre-filter measured nothing (and the
# script used to end on a bare failed test, exit 1 without a word).
if [ "${stops:-0}" -eq 0 ]; then echo "bench-adopt: no candidate was stopped (adopt_stops=0)" >&2; exit 1; fi
echo "candidate stop (exec -> SIGCONT, writd's own measure): mean $((total / stops)) us over $stops stops"
