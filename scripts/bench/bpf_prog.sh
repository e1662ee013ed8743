#!/usr/bin/env bash
# Per-run cost of writd's open program (exit_openat) in ns, inside a task and outside any task.
#
#   sudo scripts/bench/bpf_prog.sh [--build-dir DIR] [--runs N] [--count N] [--mode monitor|enforce]
#                                  [--intent NAME] [--intent-file FILE] [--out DIR]
#
# Starts a writd of its own (cgroup_subtree writ-bench-prog-PID, no pinning, journal off) from DIR/bin, then
# runs `workload open COUNT` RUNS times inside a task (`writ run --intent INTENT`, default coding-agent,
# whose exec rules must allow DIR/bin/workload in enforce mode: --intent-file adds an intent file of your
# own to the policies; for enforce mode use `--intent bench-enforce --intent-file
# tests/bench/policies/bench-enforce.yaml`, the coding-agent's file denies with any exec allowed) and
# RUNS times in a cgroup outside any
# task, reading run_time_ns / run_cnt of writd's exit_openat before and after each run. The kernel's
# accounting (kernel.bpf_stats_enabled) is on only while this script runs and restored at exit.
# Other processes' opens land in the same counter: their count (runs - COUNT) is charged at the outside
# cost measured in the same round. Prints one line per run and the medians. Needs root, BTF and bpftool.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
root="$bench_root"
build_dir="$root/build" runs=5 count=200000 mode=monitor intent=coding-agent intent_file="" out=""
while (($#)); do
  case "$1" in
    --build-dir) build_dir="${2:?}"; shift 2 ;;
    --runs) runs="${2:?}"; shift 2 ;;
    --count) count="${2:?}"; shift 2 ;;
    --mode) mode="${2:?}"; shift 2 ;;
    --intent) intent="${2:?}"; shift 2 ;;
    --intent-file) intent_file="${2:?}"; shift 2 ;;
    --out) out="${2:?}"; shift 2 ;;
    *) echo "bench/bpf_prog.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
[[ "$runs" =~ ^[1-9][0-9]*$ && "$count" =~ ^[1-9][0-9]*$ ]] || { echo "bench/bpf_prog.sh: --runs and --count must be positive integers" >&2; exit 2; }
[[ "$mode" == monitor || "$mode" == enforce ]] || { echo "bench/bpf_prog.sh: --mode must be monitor or enforce" >&2; exit 2; }
if [[ $(id -u) -ne 0 ]]; then echo "bench/bpf_prog.sh: skipped: must run as root" >&2; exit 77; fi
command -v bpftool >/dev/null || { echo "bench/bpf_prog.sh: skipped: bpftool not found" >&2; exit 77; }
cg2="$(awk '$3 == "cgroup2" {print $2; exit}' /proc/mounts)"
[[ -n "$cg2" ]] || { echo "bench/bpf_prog.sh: skipped: no cgroup2 mount" >&2; exit 77; }
bin="$build_dir/bin"
for b in writd writ workload; do [[ -x "$bin/$b" ]] || { echo "bench/bpf_prog.sh: $bin/$b is missing" >&2; exit 1; }; done

[[ -n "$out" ]] || out="$(mktemp -d /tmp/writ-bench-prog.XXXXXX)"
mkdir -p "$out/run" "$out/state" "$out/repo" "$out/pol"
echo hello >"$out/repo/file"
bench_root_intents "$root"/policies/*.yaml "$out/pol"
rm -f "$out/pol/writd.yaml"
if [[ -n "$intent_file" ]]; then
  [[ -r "$intent_file" ]] || { echo "bench/bpf_prog.sh: --intent-file $intent_file is not readable" >&2; exit 2; }
  bench_root_intents "$intent_file" "$out/pol"
fi
cat >"$out/writd.yaml" <<EOF
mode: $mode
policies: $out/pol
state_dir: $out/state
run_dir: $out/run
cgroup_subtree: writ-bench-prog-$$
bpf_pin_dir: none
journal: "off"
sinks: []
EOF
outside_cg="$cg2/writ-bench-prog-$$-outside"
stats_before="$(sysctl -n kernel.bpf_stats_enabled)"
writd_pid=""
cleanup() {
  set +e
  if [[ -n "$writd_pid" ]]; then kill -TERM "$writd_pid" 2>/dev/null; wait "$writd_pid" 2>/dev/null; fi
  sysctl -q kernel.bpf_stats_enabled="$stats_before"
  rmdir "$outside_cg" 2>/dev/null
  return 0  # an EXIT trap's last status becomes the script's
}
trap cleanup EXIT

prog_ids() {
  bpftool prog show -j | python3 -c '
import json, sys
print(" ".join(str(p["id"]) for p in json.load(sys.stdin) if p.get("name") == "exit_openat"))'
}
ids_before="$(prog_ids)"
"$bin/writd" --config "$out/writd.yaml" --events "$out/events.jsonl" >"$out/writd.log" 2>&1 &
writd_pid=$!
W() { WRIT_SOCKET="$out/run/writd.sock" "$bin/writ" "$@"; }
for ((i = 0; i < 300; i++)); do W status >/dev/null 2>&1 && break; sleep 0.1; done
W status >/dev/null 2>&1 || { echo "bench/bpf_prog.sh: writd did not start; see $out/writd.log" >&2; exit 1; }
id="$(python3 -c 'import sys; a = set(sys.argv[1].split()); n = set(sys.argv[2].split()) - a; print(max(n, key=int) if n else "")' \
  "$ids_before" "$(prog_ids)")"
[[ -n "$id" ]] || { echo "bench/bpf_prog.sh: cannot find writd's exit_openat program" >&2; exit 1; }
sleep 1
counters() {
  bpftool prog show id "$id" -j | python3 -c '
import json, sys
p = json.load(sys.stdin)
print(p.get("run_time_ns", 0), p.get("run_cnt", 0))'
}
mkdir -p "$outside_cg"
sysctl -q kernel.bpf_stats_enabled=1
task_ns=() outside_ns=()
for ((r = 1; r <= runs; r++)); do
  read -r t0 c0 < <(counters)
  W run --allow-root --agent spiffe://example.org/bench --intent "$intent" --param repo="$out/repo" -- \
    "$bin/workload" open "$count" --file "$out/repo/file" >/dev/null 2>>"$out/run.log" \
    || { echo "bench/bpf_prog.sh: writ run failed; see $out/run.log" >&2; exit 1; }
  read -r t1 c1 < <(counters)
  read -r u0 d0 < <(counters)
  bash -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$outside_cg" "$bin/workload" open "$count" \
    --file "$out/repo/file" >/dev/null
  read -r u1 d1 < <(counters)
  on=$(((u1 - u0) / (d1 - d0)))
  others=$((c1 - c0 - count))
  ((others < 0)) && others=0
  tn=$(((t1 - t0 - others * on) / count))
  task_ns+=("$tn") outside_ns+=("$on")
  echo "run $r: in task $tn ns/run (other processes' runs in the window: $others), outside $on ns/run"
done
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : int((v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
echo "exit_openat ns/run, median of $runs (mode $mode, intent $intent): in task $(median "${task_ns[@]}"), outside $(median "${outside_ns[@]}")"
W status | grep '^drops by kind' || true
