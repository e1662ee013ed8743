#!/usr/bin/env bash
# What writd's syscall hooks cost a process outside every task, per syscall they sit on: the price every
# process on the host pays for a hook, since a syscall tracepoint runs for everyone before the task
# filter returns (docs/performance.md, "Containment hooks").
#
#   sudo scripts/bench/hooks.sh [--build-dir DIR] [--rounds N] [--ops N]
#
# Alternating rounds of: no writd; writd running (enforce mode, no task). Workloads (tests/bench/workload,
# in this shell's cgroup): fcntl(F_GETFL) and ioctl(FIONREAD) of a pipe (the self-protection hooks on
# fcntl and ioctl: sys_enter + sys_exit), rename(2) of a file and back (the link hooks: sys_enter), and
# getppid(2), which no writd program watches (what attaching any syscall tracepoint costs every syscall).
# Prints the median CPU ns per syscall (user + sys of the workload) of each and writd's cost over none.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
root="$bench_root"
build_dir="$root/build" rounds=5 ops=2000000
while (($#)); do
  case "$1" in
    --build-dir) build_dir="${2:?}"; shift 2 ;;
    --rounds) rounds="${2:?}"; shift 2 ;;
    --ops) ops="${2:?}"; shift 2 ;;
    *) echo "bench/hooks.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
bench_positive bench/hooks.sh "$rounds" "$ops"
bench_require_root bench/hooks.sh
bin="$build_dir/bin"
for b in writd writ workload; do [[ -x "$bin/$b" ]] || { echo "bench/hooks.sh: $bin/$b is missing" >&2; exit 1; }; done
out="$(mktemp -d /tmp/writ-bench-hooks.XXXXXX)"
subtree="writ-bench-hooks-$$"
cleanup() {
  bench_writd_stop
  rm -rf "$out"
}
trap cleanup EXIT
bench_writd_yaml "$out" "$subtree" enforce "events: $out/events.jsonl"
start_writd() { bench_writd_start "$bin" "$out"; }
stop_writd() { bench_writd_stop; }
cpu_ns() {  # ops-per-op workload args...: CPU ns per syscall
  local per="$1"
  shift
  "$bin/workload" "$@" --max-seconds 120 |
    awk -v per="$per" '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
           printf "%.1f\n", (v["user_s"] + v["sys_s"]) * 1e9 / (v["ops"] * per) }'
}
echo x >"$out/file"
: >"$out/results.tsv"
for ((r = 1; r <= rounds; r++)); do
  for c in none writd; do
    [[ $c == writd ]] && start_writd
    f="$(cpu_ns 1 fcntl "$ops")"
    i="$(cpu_ns 1 ioctl "$ops")"
    n="$(cpu_ns 2 rename "$((ops / 10))" --file "$out/file")"
    g="$(cpu_ns 1 getppid "$ops")"
    [[ $c == writd ]] && stop_writd
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$c" "$f" "$i" "$n" "$g" >>"$out/results.tsv"
    echo "round $r $c: fcntl ${f} ns, ioctl ${i} ns, rename ${n} ns, getppid ${g} ns" >&2
  done
done
awk -F'\t' '
  function median(arr, n,   i, j, t) {
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (arr[j] < arr[i]) { t = arr[i]; arr[i] = arr[j]; arr[j] = t }
    return n % 2 ? arr[(n + 1) / 2] : (arr[n / 2] + arr[n / 2 + 1]) / 2
  }
  { k = $2; n[k]++; f[k, n[k]] = $3; io[k, n[k]] = $4; rn[k, n[k]] = $5; g[k, n[k]] = $6 }
  END {
    split("fcntl ioctl rename getppid", names, " ")
    for (c = 1; c <= 2; c++) {
      cfg = c == 1 ? "none" : "writd"
      for (w = 1; w <= 4; w++) {
        delete a
        for (i = 1; i <= n[cfg]; i++) a[i] = (w == 1 ? f[cfg, i] : w == 2 ? io[cfg, i] : w == 3 ? rn[cfg, i] : g[cfg, i])
        med[cfg, w] = median(a, n[cfg])
      }
    }
    printf "%-8s %10s %10s %8s %6s\n", "syscall", "none ns", "writd ns", "+ns", "ratio"
    for (w = 1; w <= 4; w++)
      printf "%-8s %10.1f %10.1f %8.1f %6.3f\n", names[w], med["none", w], med["writd", w],
             med["writd", w] - med["none", w], med["writd", w] / med["none", w]
  }' "$out/results.tsv"
