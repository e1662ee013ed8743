#!/usr/bin/env bash
# What a BPF program on a syscall costs the processes it does not watch, before it does anything:
# the kernel's share of "outside any task" (docs/performance.md, "The physical floor").
#
#   sudo scripts/bench/dispatch.sh [--build-dir DIR] [--rounds N] [--open N] [--getppid N]
#
# Configurations, one program attached at a time (tests/bench/dispatch.bpf.c), alternating by round:
#   none        nothing attached
#   tp_empty    syscalls/sys_exit_openat returning at once
#   tp_filter   the same with writd's task filter (ancestor cgroup id + one hash lookup)
#   raw_empty   tp_btf/sys_exit (every syscall) returning at once
#   raw_filter  the same, returning unless openat, then the filter
# Workloads (tests/bench/workload, in this shell's cgroup): open+close of a file and getppid(2), the
# cheapest syscall. Prints the median CPU ns per op (user + sys of the workload) of each and its cost
# over none. Needs root, BTF and the build's dispatch and workload binaries.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
root="$bench_root"
build_dir="$root/build" rounds=5 n_open=1000000 n_getppid=5000000
while (($#)); do
  case "$1" in
    --build-dir) build_dir="${2:?}"; shift 2 ;;
    --rounds) rounds="${2:?}"; shift 2 ;;
    --open) n_open="${2:?}"; shift 2 ;;
    --getppid) n_getppid="${2:?}"; shift 2 ;;
    *) echo "bench/dispatch.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
for v in "$rounds" "$n_open" "$n_getppid"; do
  [[ "$v" =~ ^[1-9][0-9]*$ ]] || { echo "bench/dispatch.sh: counts must be positive integers" >&2; exit 2; }
done
if [[ $(id -u) -ne 0 ]]; then echo "bench/dispatch.sh: skipped: must run as root" >&2; exit 77; fi
bin="$build_dir/bin"
for b in dispatch workload; do [[ -x "$bin/$b" ]] || { echo "bench/dispatch.sh: $bin/$b is missing" >&2; exit 1; }; done
out="$(mktemp -d /tmp/writ-bench-dispatch.XXXXXX)"
echo "dispatch file" >"$out/file"
prog_pid=""
cleanup() { [[ -n "$prog_pid" ]] && kill "$prog_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$out"; }
trap cleanup EXIT

cpu_ns() {  # workload args...: CPU ns per op
  "$bin/workload" "$@" --max-seconds 120 |
    awk '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
           printf "%.1f\n", (v["user_s"] + v["sys_s"]) * 1e9 / v["ops"] }'
}
configs=(none tp_empty tp_filter raw_empty raw_filter)
: >"$out/results.tsv"
for ((r = 1; r <= rounds; r++)); do
  for c in "${configs[@]}"; do
    if [[ $c != none ]]; then
      "$bin/dispatch" "$c" --max-seconds 300 >"$out/dispatch.out" 2>&1 &
      prog_pid=$!
      for ((i = 0; i < 100; i++)); do grep -q ready "$out/dispatch.out" && break; sleep 0.05; done
      grep -q ready "$out/dispatch.out" || { cat "$out/dispatch.out" >&2; exit 1; }
    fi
    o="$(cpu_ns open "$n_open" --file "$out/file")"
    g="$(cpu_ns getppid "$n_getppid")"
    if [[ -n "$prog_pid" ]]; then kill "$prog_pid"; wait "$prog_pid" 2>/dev/null || true; prog_pid=""; fi
    printf '%s\t%s\t%s\t%s\n' "$r" "$c" "$o" "$g" >>"$out/results.tsv"
    echo "round $r $c: open+close ${o} ns, getppid ${g} ns" >&2
  done
done
python3 - "$out/results.tsv" <<'EOF'
import statistics, sys
rows = [l.split("\t") for l in open(sys.argv[1]).read().split("\n") if l]
conf = []
o, g = {}, {}
for r, c, ov, gv in rows:
    if c not in conf: conf.append(c)
    o.setdefault(c, []).append(float(ov)); g.setdefault(c, []).append(float(gv))
mo = {c: statistics.median(v) for c, v in o.items()}
mg = {c: statistics.median(v) for c, v in g.items()}
print("| config | open+close CPU ns/op | over none | ratio | getppid CPU ns/op | over none |")
print("|---|---:|---:|---:|---:|---:|")
for c in conf:
    print(f"| {c} | {mo[c]:.0f} | {mo[c] - mo['none']:+.0f} | {mo[c] / mo['none']:.3f} | {mg[c]:.1f} | {mg[c] - mg['none']:+.1f} |")
EOF
