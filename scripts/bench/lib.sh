# Shared by the benchmark and profiling scripts in scripts/bench/ (sourced, never run). Each script
# starts a writd of its own -- its own config, cgroup subtree, run and state dirs -- measures, and
# stops it; what they share is here: the writd they start, how they wait for it, how they stop it,
# and the kill-latency targets each mode of tests/bench/kill_latency opens.
#
#   source "$(dirname "$0")/lib.sh"      # sets bench_root (the checkout)
bench_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

# bench_require_root NAME: benchmarks load BPF; exit 77 (skipped) otherwise.
bench_require_root() {
  if [[ $(id -u) -ne 0 ]]; then
    echo "$1: skipped: must run as root" >&2
    exit 77
  fi
}

# bench_positive NAME VALUE...: every VALUE is a positive integer, or exit 2 naming it.
bench_positive() {
  local name=$1 v
  shift
  for v in "$@"; do
    [[ "$v" =~ ^[1-9][0-9]*$ ]] || { echo "$name: '$v' is not a positive integer" >&2; exit 2; }
  done
}

# bench_writd_yaml OUT SUBTREE MODE [EXTRA_LINES]: OUT/writd.yaml for a writd of the bench's own:
# policies from OUT/policies, run and state dirs under OUT, the cgroup subtree SUBTREE, no sinks;
# EXTRA_LINES (yaml, newline-separated) appended.
bench_writd_yaml() {
  local out=$1 subtree=$2 mode=$3 extra=${4:-}
  mkdir -p "$out/policies"
  {
    echo "mode: $mode"
    echo "policies: $out/policies"
    echo "state_dir: $out/state"
    echo "run_dir: $out/run"
    echo "trust_domain: example.org"
    echo "cgroup_subtree: $subtree"
    echo "sinks: []"
    [[ -n "$extra" ]] && printf '%s\n' "$extra"
  } >"$out/writd.yaml"
}

# bench_writd_start BIN OUT [WRITD_ARGS...]: starts BIN/writd with OUT/writd.yaml (output appended to
# OUT/writd.log), sets bench_writd_pid, and waits up to 30 s for `writ status` to answer on its
# socket. A writd that exits or does not answer ends the script with its log.
bench_writd_pid=""
bench_writd_start() {
  local bin=$1 out=$2 i
  shift 2
  "$bin/writd" --config "$out/writd.yaml" "$@" >>"$out/writd.log" 2>&1 &
  bench_writd_pid=$!
  for ((i = 0; i < 300; i++)); do
    WRIT_SOCKET="$out/run/writd.sock" "$bin/writ" status >/dev/null 2>&1 && return 0
    if ! kill -0 "$bench_writd_pid" 2>/dev/null; then
      echo "writd exited; $out/writd.log:" >&2
      tail -n 30 "$out/writd.log" >&2
      exit 1
    fi
    sleep 0.1
  done
  echo "writd did not answer in 30 s; $out/writd.log:" >&2
  tail -n 30 "$out/writd.log" >&2
  exit 1
}

# bench_writd_stop: SIGTERM (writd detaches and flushes) and wait. Safe to call twice and from an
# EXIT trap.
bench_writd_stop() {
  [[ -n "$bench_writd_pid" ]] || return 0
  kill -TERM "$bench_writd_pid" 2>/dev/null || true
  wait "$bench_writd_pid" 2>/dev/null || true
  bench_writd_pid=""
}

# bench_kill_targets DIR: the files tests/bench/kill_latency opens in each mode (the intent
# tests/bench/policies/bench-kill.yaml, param dir=DIR, denies all but `allowed`).
bench_kill_targets() {
  mkdir -p "$1"
  : >"$1/exact-target"
  : >"$1/glob-1.secret"
  : >"$1/component-target.key"
  : >"$1/allowed"
}

# bench_kill_path MODE DIR: the file kill_latency --mode MODE opens (self: an allowed file, the
# process kills itself -- the floor; exact, component, glob: the rule shape that denies it).
bench_kill_path() {
  case "$1" in
    self) echo "$2/allowed" ;;
    exact) echo "$2/exact-target" ;;
    component) echo "$2/component-target.key" ;;
    glob) echo "$2/glob-1.secret" ;;
    *) echo "unknown kill-latency mode '$1' (self, exact, component, glob)" >&2; return 2 ;;
  esac
}

# bench_median N...: the median of the numbers given.
bench_median() {
  printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) { print "nan"; exit }
    print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# Benchmark agents run as root, opted in twice as writ requires (docs/threat-model.md): `writ run
# --allow-root` and `run_as_root: true` in the intent. The hooks cost the same whatever the uid, and
# the workloads use files of the bench's own root-owned directories.
# bench_root_intents SRC... DIR: copies the intent files SRC into DIR with run_as_root: true in each.
bench_root_intents() {
  local dst="${!#}" f
  mkdir -p "$dst"
  for f in "${@:1:$#-1}"; do
    sed -e '/^kind: Intent$/a run_as_root: true' "$f" >"$dst/$(basename "$f")"
  done
}
