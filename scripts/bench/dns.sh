#!/usr/bin/env bash
# DNS egress (#17): what writd's stub adds to a lookup, and what a host rule's kernel pins cost a
# connect next to a CIDR rule (docs/performance.md, "DNS egress").
#
#   sudo scripts/bench/dns.sh [--build-dir DIR] [--rounds N] [--queries N] [--connects N]
#
# dnsmasq on loopback is the upstream (bench.api.writ.test -> 127.0.0.1, TTL 300). One writd (enforce,
# `dns:` on) with two intents allowing the same listener port: bench-host by name (*.api.writ.test),
# bench-cidr by address (127.0.0.1/32). Alternating rounds of:
#   lookup: tests/bench/workload dnsq, N A queries one at a time, p50/p99 round trip,
#     direct   -- outside every task, straight to dnsmasq;
#     stub     -- in a bench-host task, to 192.0.2.1:53, which the kernel sends to writd's stub;
#   connect: workload connect, N TCP connects to a loopback listener, ns of CPU per connect,
#     none     -- outside every task,
#     cidr     -- in a bench-cidr task (LPM hit),
#     host     -- in a bench-host task that resolved the name first (LPM miss, then the pin).
# Prints the medians and the ratios; the machine is noisy (+-15%): read the ratios of one run.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
root="$bench_root"
build_dir="$root/build" rounds=5 queries=2000 connects=20000
while (($#)); do
  case "$1" in
    --build-dir) build_dir="${2:?}"; shift 2 ;;
    --rounds) rounds="${2:?}"; shift 2 ;;
    --queries) queries="${2:?}"; shift 2 ;;
    --connects) connects="${2:?}"; shift 2 ;;
    *) echo "bench/dns.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
bench_positive bench/dns.sh "$rounds" "$queries" "$connects"
bench_require_root bench/dns.sh
command -v dnsmasq >/dev/null || { echo "bench/dns.sh: dnsmasq not installed (scripts/setup.sh)" >&2; exit 1; }
bin="$build_dir/bin"
for b in writd writ workload; do [[ -x "$bin/$b" ]] || { echo "bench/dns.sh: $bin/$b is missing" >&2; exit 1; }; done
out="$(mktemp -d /tmp/writ-bench-dns.XXXXXX)"
chmod 755 "$out"
subtree="writ-bench-dns-$$"
dnsmasq_pid=""
cleanup() {
  bench_writd_stop
  [[ -n $dnsmasq_pid ]] && kill "$dnsmasq_pid" 2>/dev/null
  rm -rf "$out"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null ||
  shuf -i 20000-60000 -n 1; }
up_port=$(free_port)
dnsmasq --keep-in-foreground --no-resolv --no-hosts --bind-interfaces --listen-address=127.0.0.1 \
  --port="$up_port" --pid-file= --local-ttl=300 --host-record=bench.api.writ.test,127.0.0.1 \
  --log-facility=/dev/null --user=root &
dnsmasq_pid=$!
listen_port=$(free_port)
mkdir -p "$out/policies"
cat >"$out/policies/dns.yaml" <<EOF
apiVersion: writ.dev/v1
kind: Intent
name: bench-host
run_as_root: true
network:
  connect:
    allow: [{host: "*.api.writ.test", ports: [$listen_port]}]
mode: enforce
---
apiVersion: writ.dev/v1
kind: Intent
name: bench-cidr
run_as_root: true
network:
  connect:
    allow: [{cidr: 127.0.0.1/32, ports: [$listen_port]}]
  dns:
    allow: ["*.api.writ.test"]
mode: enforce
EOF
bench_writd_yaml "$out" "$subtree" enforce "dns: {listen: 127.0.0.1:0, upstreams: [\"127.0.0.1:$up_port\"], max_ttl: 300}"
bench_writd_start "$bin" "$out"
writ() { WRIT_SOCKET="$out/run/writd.sock" "$bin/writ" "$@"; }
in_task() {  # INTENT CMD...: runs CMD in a task of INTENT (as root: the workload's listener, no files)
  local intent=$1
  shift
  writ run --agent spiffe://example.org/bench/dns --intent "$intent" --allow-root -- "$@"
}
field() { tr ' ' '\n' | awk -F= -v k="$1" '$1 == k { print $2 }'; }
cpu_ns() { awk '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
  printf "%.1f\n", (v["user_s"] + v["sys_s"]) * 1e9 / v["ops"] }'; }

: >"$out/results.tsv"
for ((r = 1; r <= rounds; r++)); do
  d=$("$bin/workload" dnsq "$queries" --server "127.0.0.1:$up_port" --name bench.api.writ.test --max-seconds 120 | tail -1)
  s=$(in_task bench-host "$bin/workload" dnsq "$queries" --server 192.0.2.1:53 --name bench.api.writ.test --max-seconds 120 | tail -1)
  cn=$("$bin/workload" connect "$connects" --port "$listen_port" --max-seconds 120 | cpu_ns)
  cc=$(in_task bench-cidr "$bin/workload" connect "$connects" --port "$listen_port" --max-seconds 120 | cpu_ns)
  ch=$(in_task bench-host sh -c "getent hosts bench.api.writ.test >/dev/null && exec $bin/workload connect $connects --port $listen_port --max-seconds 120" | cpu_ns)
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$(field p50_us <<<"$d")" "$(field p99_us <<<"$d")" \
    "$(field p50_us <<<"$s")" "$(field p99_us <<<"$s")" "$cn" "$cc" "$ch" >>"$out/results.tsv"
  echo "round $r: lookup direct p50 $(field p50_us <<<"$d") us p99 $(field p99_us <<<"$d") us, stub p50 $(field p50_us <<<"$s") us p99 $(field p99_us <<<"$s") us; connect none $cn ns, cidr $cc ns, host $ch ns" >&2
done
col() { bench_median $(cut -f"$1" "$out/results.tsv"); }
dp50=$(col 2) dp99=$(col 3) sp50=$(col 4) sp99=$(col 5) cn=$(col 6) cc=$(col 7) ch=$(col 8)
echo "lookup (median of $rounds rounds x $queries queries): direct p50 ${dp50} us p99 ${dp99} us; through the stub p50 ${sp50} us p99 ${sp99} us (added p50 $(awk -v a="$sp50" -v b="$dp50" 'BEGIN{printf "%.1f", a-b}') us)"
echo "connect (median CPU ns per connect, $connects per round): none ${cn}, cidr rule ${cc} ($(awk -v a="$cc" -v b="$cn" 'BEGIN{printf "%.2f", a/b}')x), host rule via pin ${ch} ($(awk -v a="$ch" -v b="$cn" 'BEGIN{printf "%.2f", a/b}')x); host/cidr $(awk -v a="$ch" -v b="$cc" 'BEGIN{printf "%.2f", a/b}')"
