#!/usr/bin/env bash
# Idempotent host setup for building and running writ: Debian packages, bpffs, tracefs.
# Every dependency the build or the tests need is installed here; CI starts from a fresh clone.
# (The VM tier's guest kernel is not installed: scripts/vm-test.sh fetches it with apt-get download.)
set -euo pipefail

PKGS=(
  build-essential cmake pkg-config git
  clang clang-format llvm libbpf-dev bpftool libelf-dev zlib1g-dev
  libabsl-dev libspdlog-dev libfmt-dev
  libprotobuf-dev protobuf-compiler
  libgrpc++-dev protobuf-compiler-grpc
  libyaml-cpp-dev libssl-dev libsqlite3-dev libpq-dev libre2-dev
  libboost-dev libcurl4-openssl-dev
  libmicrohttpd-dev libcpp-httplib-dev wrk
  libgtest-dev libgmock-dev libbenchmark-dev
  nlohmann-json3-dev postgresql
  rsyslog rsyslog-openssl openssl
  iproute2 procps util-linux jq curl python3
  qemu-system-x86 busybox-static
  dnsmasq-base bind9-dnsutils
  nats-server libnats-dev  # fleet: NATS JetStream (docs/fleet.md); tests start a loopback cluster
  chromium  # the approvals console's browser test (tests/e2e/console), driven headless
)

if [[ $(id -u) -ne 0 ]]; then
  echo "setup.sh: must run as root (apt-get, mounts)" >&2
  exit 1
fi

# Node.js + npm (MCP and Workload API interop tests): the machine image may already carry a Node.js
# build that bundles npm and conflicts with Debian's npm package; install Debian's only when absent.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  PKGS+=(nodejs npm)
fi

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup.sh: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The control socket's group (policies/writd.yaml control.group): its members launch agents without root.
getent group writ >/dev/null || groupadd --system writ

# bpffs and tracefs: writd pins under /sys/fs/bpf/writ and attaches tracepoints.
if ! grep -qs ' /sys/fs/bpf bpf ' /proc/mounts; then
  mount -t bpf bpf /sys/fs/bpf
fi
if ! grep -qs ' tracefs ' /proc/mounts; then
  mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null || mount -t tracefs nodev /sys/kernel/debug/tracing
fi
exit 0
