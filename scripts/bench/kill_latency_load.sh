#!/usr/bin/env bash
# Violation -> process dead (tests/bench/kill_latency) while another task floods writd with events:
# the userspace-verdict kill waits for the pipeline, so its tail depends on what else the pipeline is
# doing. Starts a writd of its own (enforce mode, its own cgroup subtree, run and state dirs, JSONL
# events to a file), optionally a background task -- a monitor-mode copy of coding-agent whose
# `workload open` producers open+close a file as fast as they can -- and runs kill_latency in a
# bench-kill task for each mode. Prints one kill_latency line per mode, then the background rate.
#
#   scripts/bench/kill_latency_load.sh [--build-dir DIR] [--trials N] [--bg-procs P] [--modes "glob exact"]
#                                [--out DIR] [--config 'KEY: VALUE']
#     --bg-procs P   background producer processes (0: none, the quiet baseline); default 1
#     --config       extra writd.yaml lines (e.g. 'journal_fsync: never')
#
# Needs root, and the targets writd, writ, workload and kill_latency built in DIR (default build/).
# Everything it started is stopped and removed on exit.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
root="$bench_root"
build="$root/build"
trials=300
bg_procs=1
modes="self exact glob"
out=""
extra=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --build-dir) build="$2"; shift 2 ;;
    --trials) trials="$2"; shift 2 ;;
    --bg-procs) bg_procs="$2"; shift 2 ;;
    --modes) modes="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --config) extra="$2"; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "kill_latency_load: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
[[ $(id -u) == 0 ]] || { echo "kill_latency_load: needs root (writd loads BPF)" >&2; exit 1; }
for b in writd writ workload kill_latency; do
  [[ -x "$build/bin/$b" ]] || { echo "kill_latency_load: $build/bin/$b missing" >&2; exit 1; }
done
[[ "$bg_procs" =~ ^[0-9]+$ ]] && (( bg_procs <= 64 )) || { echo "--bg-procs: 0..64" >&2; exit 2; }
[[ -n "$out" ]] || out="$(mktemp -d /tmp/writ-killload-XXXXXX)"
mkdir -p "$out/policies" "$out/repo" "$out/kill" "$out/state" "$out/run"
chmod 0755 "$out"
cg2="$(awk '$3 == "cgroup2" {print $2; exit}' /proc/mounts)"
subtree="writ-killload-$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')"
writ() { "$build/bin/writ" --socket "$out/run/writd.sock" "$@"; }

bg_pid=""
cleanup() {
  # The background task's processes: every one is in a cgroup of this run's own subtree.
  for k in "$cg2/$subtree"/*/cgroup.kill; do [[ -e "$k" ]] && echo 1 >"$k" 2>/dev/null || true; done
  [[ -n "$bg_pid" ]] && wait "$bg_pid" 2>/dev/null || true
  bench_writd_stop
  for _ in $(seq 1 50); do
    rmdir "$cg2/$subtree"/* "$cg2/$subtree" 2>/dev/null && break
    sleep 0.1
  done
}
trap cleanup EXIT

bench_root_intents "$root/tests/bench/policies/bench-kill.yaml" "$out/policies"
sed -e 's/^name: coding-agent$/name: bench-bg/' -e '/^kind: Intent$/a run_as_root: true' "$root/policies/coding-agent.yaml" >"$out/policies/bench-bg.yaml"
echo "mode: monitor" >>"$out/policies/bench-bg.yaml"
echo "bench file" >"$out/repo/file"
bench_kill_targets "$out/kill"
bench_writd_yaml "$out" "$subtree" enforce "events: /dev/null
bpf_pin_dir: none
$extra"
bench_writd_start "$build/bin" "$out"

judged() { writ status | awk '/^events by kind:/ {for (i = 4; i <= NF; i++) {split($i, kv, "="); n += kv[2]}} END {print n + 0}'; }
kdrops() { writ status | awk '/^drops by kind:/ {for (i = 4; i <= NF; i++) {split($i, kv, "="); n += kv[2]}} END {print n + 0}'; }

if (( bg_procs > 0 )); then
  writ run --allow-root --agent spiffe://example.org/bg --intent bench-bg --param "repo=$out/repo" -- \
    "$build/bin/workload" open 1000000000000 --file "$out/repo/file" --procs "$bg_procs" \
    --max-seconds 900 >"$out/bg.out" 2>"$out/bg.err" &
  bg_pid=$!
  sleep 2  # let the storm reach its rate
fi
j0="$(judged)"; d0="$(kdrops)"; t0="$(date +%s.%N)"
for mode in $modes; do
  path="$(bench_kill_path "$mode" "$out/kill")" || exit 2
  writ run --allow-root --agent spiffe://example.org/bench --intent bench-kill --param "dir=$out/kill" -- \
    "$build/bin/kill_latency" --mode "$mode" --path "$path" --trials "$trials" 2>>"$out/kill.err"
done
j1="$(judged)"; d1="$(kdrops)"; t1="$(date +%s.%N)"
writ status >"$out/status.txt" 2>&1 || true
awk -v j="$((j1 - j0))" -v d="$((d1 - d0))" -v a="$t0" -v b="$t1" -v p="$bg_procs" -v l="$(cut -d' ' -f1-3 /proc/loadavg)" \
  'BEGIN {printf "background procs=%d events_judged_per_s=%.0f kernel_drops=%d seconds=%.1f loadavg=%s\n", p, j / (b - a), d, b - a, l}'
