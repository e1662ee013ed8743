#!/usr/bin/env bash
# HTTP server libraries side by side (issue 24; docs/performance.md, "HTTP server"): writd's
# http::Server (Boost.Beast), libmicrohttpd and cpp-httplib (its default pool of 8 threads, and 512
# threads: one per connection) serve the same /introspect (tests/bench/http_server_bench.cc), one
# after another in one run. For each:
#   rps        wrk, 2 threads, 16 keep-alive connections, --seconds (10) of POST /introspect
#   cpu us     the server's CPU time (user + system) per request during that run: on a shared,
#              noisy machine a steadier measure of the library's cost than requests/s
#   p50/p99    tests/bench/http_load: 200 sequential requests, each on a new connection, with
#              nothing else open / 200 idle connections open / 200 slowloris connections open
#   KiB/conn   server RSS growth while 250 connections that completed one keep-alive request stay open
#              (held: how many of the 250 got their answer); RSS MiB: the server's RSS before that
# Each server runs --rounds (3) times, the rounds interleaved; the table gives medians.
#
#   scripts/bench/http.sh [--seconds N] [--rounds N] [--no-build] [--build-dir DIR] [--only writ,mhd,...]
#                         [--also NAME=BINARY]...
# --also adds a server binary that speaks http_server_bench's protocol (prints "port P" and
# "token JWT", serves /introspect until stdin closes), e.g. a build of another commit's server.
#
# Needs wrk, libmicrohttpd-dev and libcpp-httplib-dev (scripts/setup.sh). Loopback only. Exit 77 =
# cannot run here.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
root="$bench_root"
build_dir="${WRIT_BUILD_DIR:-$root/build}"
seconds=10 rounds=3 do_build=1 only="writ,mhd,httplib,httplib-512"
declare -A also=()
while (($#)); do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --no-build) do_build=0; shift ;;
    --build-dir) build_dir="$2"; shift 2 ;;
    --only) only="$2"; shift 2 ;;
    --also) also[${2%%=*}]="${2#*=}"; only+=",${2%%=*}"; shift 2 ;;
    *) echo "bench/http.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
[[ "$seconds" =~ ^[1-9][0-9]*$ ]] || { echo "bench/http.sh: --seconds must be a positive integer" >&2; exit 2; }
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || { echo "bench/http.sh: --rounds must be a positive integer" >&2; exit 2; }
command -v wrk >/dev/null || { echo "bench/http.sh: skipped: wrk is not installed (scripts/setup.sh)" >&2; exit 77; }
bin="$build_dir/bin"
if ((do_build)); then
  nice -n 10 cmake --build "$build_dir" --target http_server_bench http_load -j2 >/dev/null \
    || { echo "bench/http.sh: build failed in $build_dir" >&2; exit 1; }
fi
for b in http_server_bench http_load; do
  [[ -x "$bin/$b" ]] || { echo "bench/http.sh: $bin/$b is missing" >&2; exit 1; }
done
lua="$(mktemp /tmp/writ-bench-http-XXXXXX.lua)"
cat >"$lua" <<'LUA'
wrk.method = "POST"
wrk.body = "token=" .. os.getenv("WRIT_BENCH_TOKEN")
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
LUA

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }  # utime + stime, in clock ticks
field() { sed -n "s/.*[[:space:]]$1=\([0-9]*\).*/\1/p" <<<" $2"; }
hz=$(getconf CLK_TCK)
results="$(mktemp /tmp/writ-bench-http-XXXXXX.tsv)"
trap 'rm -f "$lua" "$results" "$results.load"' EXIT

# One round of every server; rounds interleave so a noisy neighbour hits each alike.
for round in $(seq "$rounds"); do
  for name in ${only//,/ }; do
    case "$name" in
      writ) args=(--server writ) ;;
      mhd) args=(--server mhd) ;;
      httplib) args=(--server httplib) ;;
      httplib-512) args=(--server httplib --threads 512) ;;
      *)
        [[ -n "${also[$name]:-}" ]] || { echo "bench/http.sh: unknown server $name" >&2; exit 2; }
        args=(--also) ;;
    esac
    if [[ "${args[0]}" == --also ]]; then
      coproc SRV { exec "${also[$name]}" 2>/dev/null; }
    else
      coproc SRV { exec "$bin/http_server_bench" "${args[@]}" 2>/dev/null; }
    fi
    srv_pid=$SRV_PID
    read -r -t 20 -u "${SRV[0]}" l1 && read -r -t 5 -u "${SRV[0]}" l2 \
      || { echo "bench/http.sh: $name did not start" >&2; exit 1; }
    port=${l1#port } token=${l2#token }
    # Memory first, on the fresh server: later phases leave freed memory in the allocator.
    rss0=$(rss_kib "$srv_pid")
    "$bin/http_load" --port "$port" --token "$token" --held 250 --hold-seconds 5 >"$results.load" &
    load_pid=$!
    for _ in $(seq 1200); do grep -q ready "$results.load" && break; sleep 0.1; done
    sleep 1
    rss1=$(rss_kib "$srv_pid")
    held_ok=$(field held_ok "$(grep ready "$results.load" || true)")
    wait "$load_pid" || true
    mem="$(( (rss1 - rss0) * 10 / 250 ))	${held_ok:-0}	$rss0"
    c0=$(cpu_ticks "$srv_pid")
    out=$(WRIT_BENCH_TOKEN="$token" wrk -t2 -c16 -d"${seconds}s" --latency -s "$lua" \
      "http://127.0.0.1:$port/introspect")
    c1=$(cpu_ticks "$srv_pid")
    total=$(awk '/requests in/ {print $1}' <<<"$out")
    rps=$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' <<<"$out")
    cpu_us=$(awk -v t=$((c1 - c0)) -v n="$total" -v hz="$hz" 'BEGIN { printf "%.0f", t * 1e6 / hz / n }')
    bad=$(grep -cE "Non-2xx|Socket errors" <<<"$out" || true)
    line="$name	$rps	$cpu_us	$bad"
    for load in "" "--idle 200" "--slow 200"; do
      r=$("$bin/http_load" --port "$port" --token "$token" --requests 200 $load | tail -1)
      line+="	$(field p50_us "$r")	$(field p99_us "$r")	$((200 - $(field ok "$r")))"
    done
    echo "$line	$mem" >>"$results"
    exec {SRV[1]}>&-
    wait "$srv_pid" || true
  done
done

# Medians over the rounds. Latencies in ms; "fail" counts the requests (of 200, per round) that got
# no 200 within 10 s or were never run; KiB/conn from RSS (page granularity: 0.x means "< 1").
awk -F'\t' -v rounds="$rounds" '
function med(k,   n, i, j, t, a) {
  n = split(vals[k], a, " ")
  for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
  return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
{
  if (!($1 in seen)) { seen[$1] = 1; order[++ns] = $1 }
  for (c = 2; c <= NF; c++) vals[$1, c] = vals[$1, c] " " $c
}
END {
  printf "medians of %d round(s)\n", rounds
  printf "%-12s %7s %7s | %-20s | %-20s | %-20s | %8s %5s %8s\n", "server", "rps", "cpu us", "alone p50/p99 ms",
         "200 idle p50/p99 ms", "200 slow p50/p99 ms", "KiB/conn", "held", "RSS MiB"
  for (s = 1; s <= ns; s++) {
    n = order[s]
    printf "%-12s %7d %7d", n, med(n SUBSEP 2), med(n SUBSEP 3)
    for (c = 5; c <= 13; c += 3) {
      cell = sprintf("%.2f/%.2f", med(n SUBSEP c) / 1000, med(n SUBSEP (c + 1)) / 1000)
      if (med(n SUBSEP (c + 2)) > 0) cell = cell sprintf(" (%d fail)", med(n SUBSEP (c + 2)))
      printf " | %-20s", cell
    }
    printf " | %8.1f %5d %8.1f%s\n", med(n SUBSEP 14) / 10, med(n SUBSEP 15), med(n SUBSEP 16) / 1024,
           (med(n SUBSEP 4) > 0 ? "  (wrk saw errors)" : "")
  }
}' "$results"
