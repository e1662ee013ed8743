#!/usr/bin/env bash
# Regenerate vmlinux/<arch>/vmlinux.h from the running kernel's BTF. The result is checked in;
# CO-RE relocations make the compiled object portable across kernels that carry BTF.
set -euo pipefail
arch=$(uname -m)
out="$(cd "$(dirname "$0")/.." && pwd)/vmlinux/${arch}/vmlinux.h"
if [[ ! -r /sys/kernel/btf/vmlinux ]]; then
  echo "gen-vmlinux.sh: /sys/kernel/btf/vmlinux missing: this kernel was built without CONFIG_DEBUG_INFO_BTF" >&2
  exit 1
fi
mkdir -p "$(dirname "$out")"
bpftool btf dump file /sys/kernel/btf/vmlinux format c > "$out.tmp"
mv "$out.tmp" "$out"
echo "wrote $out ($(wc -l < "$out") lines)"
