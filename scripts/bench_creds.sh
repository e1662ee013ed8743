#!/usr/bin/env bash
# Credential latencies (docs/performance.md, "Credentials"): violation -> introspection `active: false`,
# and JWT-SVID fetch latency (Workload API FetchJWTSVID, `writ svid`). Starts its own writd (enforce mode,
# its own cgroup subtree, run and state dirs, HTTP on a loopback port) and runs tests/bench/creds_latency.
#
#   scripts/bench_creds.sh [--trials N] [--no-build] [--build-dir DIR] [--out DIR]
#
# Needs root (writd loads BPF). Exit 77 = cannot run here. Last lines: creds_latency's percentiles.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build_dir="${WRIT_BUILD_DIR:-$root/build}"
out="" trials=300 do_build=1
while (($#)); do
  case "$1" in
    --trials) trials="$2"; shift 2 ;;
    --no-build) do_build=0; shift ;;
    --build-dir) build_dir="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    *) echo "bench_creds.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
[[ "$trials" =~ ^[1-9][0-9]*$ ]] || { echo "bench_creds.sh: --trials must be a positive integer" >&2; exit 2; }
if [[ $EUID -ne 0 ]]; then echo "bench_creds.sh: skipped: must run as root" >&2; exit 77; fi
bin="$build_dir/bin"
if ((do_build)); then
  cmake --build "$build_dir" --target writd writ creds_latency -j1 >/dev/null \
    || { echo "bench_creds.sh: build failed in $build_dir" >&2; exit 1; }
fi
for b in writd writ creds_latency; do
  [[ -x "$bin/$b" ]] || { echo "bench_creds.sh: $bin/$b is missing" >&2; exit 1; }
done
[[ -n "$out" ]] || out="$(mktemp -d /tmp/writ-bench-creds-XXXXXX)"
mkdir -p "$out/policies" "$out/work"
cp "$root/tests/bench/policies/bench-revoke.yaml" "$out/policies/"
: >"$out/work/revoke-target"
# A free loopback port: bind to 0 and read it back.
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
subtree="writ-bench-creds-$$"
cat >"$out/writd.yaml" <<YAML
mode: enforce
policies: $out/policies
state_dir: $out/state
run_dir: $out/run
events: $out/events.jsonl
cgroup_subtree: $subtree
bpf_pin_dir: none
http: 127.0.0.1:$port
sinks: []
YAML
"$bin/writd" --config "$out/writd.yaml" >>"$out/writd.log" 2>&1 &
writd_pid=$!
cleanup() {
  kill -TERM "$writd_pid" 2>/dev/null || true
  for _ in $(seq 150); do kill -0 "$writd_pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$writd_pid" 2>/dev/null || true
  wait "$writd_pid" 2>/dev/null || true
  local cg
  cg="$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)/$subtree"
  [[ -d "$cg" ]] && { for d in "$cg"/*/; do [[ -d "$d" ]] && { echo 1 >"$d/cgroup.kill" || true; rmdir "$d" 2>/dev/null || true; }; done; rmdir "$cg" 2>/dev/null || true; }
  # Under set -e an EXIT trap's last status becomes the script's: a subtree writd already removed at its
  # clean stop must not turn a good run into a failure.
  return 0
}
trap cleanup EXIT
for _ in $(seq 300); do
  WRIT_SOCKET="$out/run/writd.sock" "$bin/writ" status >/dev/null 2>&1 && break
  kill -0 "$writd_pid" 2>/dev/null || { echo "bench_creds.sh: writd exited; see $out/writd.log" >&2; exit 1; }
  sleep 0.1
done
WRIT_SOCKET="$out/run/writd.sock" "$bin/creds_latency" --driver --writ "$bin/writ" --intent bench-revoke \
  --param "dir=$out/work" --path "$out/work/revoke-target" --http "127.0.0.1:$port" \
  --workload-socket "$out/run/workload.sock" --trials "$trials" 2>>"$out/writ-run.log" | tee "$out/creds_latency.txt"
