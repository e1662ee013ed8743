#!/usr/bin/env bash
# The VM tier: writ's bpf and evasion tests on Debian 12's own kernel (linux-image-amd64, 6.1: BPF-LSM
# built in and in the default lsm= list), booted under QEMU with KVM when /dev/kvm exists and software
# emulation (TCG) otherwise. Nothing is installed on the host: the kernel package is fetched with
# `apt-get download` into $build/vm/cache and unpacked there with dpkg-deb.
#
# The guest boots a small initramfs (busybox-static, the kernel modules virtio-9p needs, an /init
# script) and mounts the host's /usr and /etc and this checkout read-only over virtio-9p at the same
# paths, so the test binaries, writd, writ, /bin/sh and every shared library are the very files the host
# tiers run (paths compiled into the tests stay valid); /tmp, /run, cgroup2, bpffs, tracefs and
# securityfs are the guest's own. Results come back through a fourth, writable share
# ($build/vm/results): one gtest log and XML per test binary, and the guest's status line. The serial
# console is kept in $build/vm/console.log; its "writ-vm:" lines say where the guest is.
#
# Usage: scripts/vm-test.sh [--timeout SECS] [--memory MB] [--shell] [--bench ARGS]
#   --timeout  hard bound on the whole boot + tests (default 1500 s); on expiry the VM is killed and the
#              last stage it reached is printed
#   --shell    boot to a busybox shell on the console instead of running the tests (debugging)
#   --bench    run scripts/bench/rungs.sh ARGS in the guest instead of the tests (no monitor, the
#              tracepoint rung and the BPF-LSM rung side by side on Debian's kernel) and print its
#              table; ARGS is one word list, "" for the defaults, e.g. --bench "--rounds 5"
# Environment: WRIT_BUILD_DIR (default build/), WRIT_VM_KERNEL_PKG (default: the package
# linux-image-amd64 depends on), WRIT_VM_TESTS (override the test list, see below), WRIT_VM_CMDLINE
# (appended to the guest kernel's command line, e.g. "loglevel=7" to see a soft lockup's stacks),
# WRIT_VM_ACCEL (QEMU's -accel, e.g. "tcg,thread=multi"; default kvm where /dev/kvm is usable, else
# single-threaded TCG, see below).
# Exit status: 0 when every test passed (skips allowed), 1 on a failure, 2 when the VM could not run.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${WRIT_BUILD_DIR:-$root/build}"
build="$(cd "$build" && pwd)"
timeout_s=1500
mem_mb=2048
shell=0
bench=""
while (($#)); do
  case $1 in
    --bench) bench="--build-dir $build ${2?--bench needs its arguments (\"\" for none)}"; shift 2 ;;
    --timeout) timeout_s=$2; shift 2 ;;
    --memory) mem_mb=$2; shift 2 ;;
    --shell) shell=1; shift ;;
    *) echo "vm-test.sh: unknown argument '$1' (see the usage at the top of the script)" >&2; exit 2 ;;
  esac
done

# What runs inside: "BINARY GTEST_FILTER" per line, binaries relative to $build. The bpf tier (it loads
# the programs, probes the LSM rung and drives each hook: the kernel-compatibility check), the whole
# evasion suite (the agent as attacker against the real writd: every outcome that differs by rung or
# kernel) and writd's own end-to-end suite (the event contract, restart with the rung's links held,
# program stats). Measured under software emulation on this 2-vCPU host: boot ~5 s, bpf_test ~150 s
# (each test loads the programs, ~3.5 s of verifier under TCG), evasion ~90 s, EvasionStandalone ~90 s
# (it starts a writd per test), writd_e2e ~140 s: ~9 min. The e2e tiers whose outcome does not depend
# on the kernel's rungs (control-plane authorization, approvals, sinks, credentials, adoption, load)
# stay on the host.
tests="${WRIT_VM_TESTS:-bin/bpf_test *
bin/evasion_e2e_test *
bin/writd_e2e_test *
bin/dns_e2e_test *}"

vm="$build/vm"
cache="$vm/cache"
results="$vm/results"
mkdir -p "$cache"

need() {  # TOOL PACKAGE
  command -v "$1" >/dev/null || { echo "vm-test.sh: $1 not found (Debian package $2; scripts/setup.sh installs it)" >&2; exit 2; }
}
need qemu-system-x86_64 qemu-system-x86
need busybox busybox-static
need dpkg-deb dpkg
busybox_bin=$(command -v busybox)
# busybox (dynamic) and busybox-static conflict; only the static one runs in an initramfs without libc.
if ldd "$busybox_bin" >/dev/null 2>&1; then
  echo "vm-test.sh: $busybox_bin is dynamically linked (install busybox-static)" >&2
  exit 2
fi
[[ -n $bench ]] && tests=""  # the bench runs instead of the tests
for b in $(awk '{print $1}' <<<"$tests"); do
  [[ -x $build/$b ]] || { echo "vm-test.sh: $build/$b is not built (scripts/build.sh)" >&2; exit 2; }
done
# The guest mounts the host's /etc read-only: the users the evasion suite runs agents as (its
# unprivileged model, and one outside the writ group: tests/testlib EnsureTestUsers makes the same on
# the host, and fails the start when it cannot) must exist before.
getent group writ >/dev/null || groupadd --system writ
getent passwd writ-agent >/dev/null || useradd --system --no-create-home --home-dir /nonexistent \
  --shell /usr/sbin/nologin --groups writ writ-agent
getent passwd writ-other >/dev/null || useradd --system --no-create-home --home-dir /nonexistent \
  --shell /usr/sbin/nologin writ-other
for b in writd writ evasion_helper; do
  [[ -x $build/bin/$b ]] || { echo "vm-test.sh: $build/bin/$b is not built (scripts/build.sh)" >&2; exit 2; }
done

# ---- the kernel: Debian's package, fetched with apt, unpacked under the build dir ---------------------
kernel_pkg() { apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}'; }
pkg="${WRIT_VM_KERNEL_PKG:-$(kernel_pkg)}"
if [[ -z $pkg ]]; then
  apt-get update -qq >/dev/null 2>&1 || true  # a fresh machine whose setup installed nothing has no lists
  pkg=$(kernel_pkg)
fi
if [[ -z $pkg ]]; then
  echo "vm-test.sh: apt knows no linux-image-amd64 (run apt-get update)" >&2
  exit 2
fi
kdir="$cache/$pkg"
if [[ ! -e $kdir/.unpacked ]]; then
  rm -rf "$kdir"; mkdir -p "$kdir"
  # apt's _apt sandbox user cannot write into a root-owned build dir: download in a scratch dir it can.
  dl=$(mktemp -d); chmod 755 "$dl"
  (cd "$dl" && apt-get download -qq "$pkg" 2>&1 | grep -v "^W: Download is performed unsandboxed" >&2 || true)
  deb=$(ls "$dl"/"$pkg"_*.deb 2>/dev/null | head -1)
  [[ -n $deb ]] || { echo "vm-test.sh: apt-get download $pkg failed" >&2; rm -rf "$dl"; exit 2; }
  dpkg-deb -x "$deb" "$kdir"
  basename "$deb" >"$kdir/.deb"
  rm -rf "$dl"
  touch "$kdir/.unpacked"
fi
kver=$(ls "$kdir/lib/modules" | head -1)
vmlinuz="$kdir/boot/vmlinuz-$kver"
[[ -r $vmlinuz ]] || { echo "vm-test.sh: no kernel image in $kdir" >&2; exit 2; }

# ---- the initramfs ---------------------------------------------------------------------------------
stage="$vm/initramfs"
rm -rf "$stage"
mkdir -p "$stage"/{.bb,dev,proc,sys,tmp,run,usr,etc,results,mnt,root,var/tmp}
cp "$busybox_bin" "$stage/.bb/busybox"
for a in sh mount umount mkdir insmod ip cat echo sleep poweroff sync ln tail grep hostname dmesg; do
  ln -s busybox "$stage/.bb/$a"
done
ln -s usr/bin "$stage/bin"; ln -s usr/sbin "$stage/sbin"; ln -s usr/lib "$stage/lib"
ln -s usr/lib64 "$stage/lib64"
# The modules 9p over virtio-pci needs, with their dependencies first. The package carries no
# modules.dep (depmod writes it at install): each module's own .modinfo section names its dependencies.
mods_dir="$kdir/lib/modules/$kver"
declare -A seen=()
order=()
add_mod() {  # NAME: appends NAME's dependencies, then NAME
  local path deps d
  path=$(find "$mods_dir/kernel" -name "$1.ko*" -o -name "${1//_/-}.ko*" | head -1)
  [[ -n $path ]] || { echo "vm-test.sh: module $1 not in $pkg" >&2; exit 2; }
  [[ -n ${seen[$path]:-} ]] && return 0
  seen[$path]=1
  deps=$(objcopy -O binary --only-section=.modinfo "$path" /dev/stdout | tr '\0' '\n' |
    sed -n 's/^depends=//p' | tr ',' ' ')
  for d in $deps; do add_mod "$d"; done
  order+=("$path")
}
for m in virtio_pci 9pnet_virtio 9p; do add_mod "$m"; done
mkdir -p "$stage/.mods"
: >"$stage/.mods/order"
for p in "${order[@]}"; do
  f="$stage/.mods/$(basename "$p")"
  case $p in
    *.xz) xz -dc "$p" >"${f%.xz}"; f=${f%.xz} ;;
    *.zst) zstd -qdc "$p" >"${f%.zst}"; f=${f%.zst} ;;
    *) cp "$p" "$f" ;;
  esac
  basename "$f" >>"$stage/.mods/order"
done
# The test list and the checkout's path travel in the initramfs.
printf '%s\n' "$tests" >"$stage/.tests"
echo "$root" >"$stage/.root"
echo "$build" >"$stage/.build"
echo "$shell" >"$stage/.shell"
printf '%s\n' "$bench" >"$stage/.bench"
cp "$root/scripts/vm-init.sh" "$stage/init"
chmod 755 "$stage/init"
(cd "$stage" && find . | "$busybox_bin" cpio -o -H newc 2>/dev/null) >"$vm/initramfs.cpio"

# ---- boot -------------------------------------------------------------------------------------------
rm -rf "$results"; mkdir -p "$results"
# Software emulation runs both vCPUs on one host thread (thread=single). With a thread per vCPU
# (thread=multi) the guest livelocked in 2 of 7 bench runs here (0 of 3 with one thread): both CPUs
# stuck for good at a jump label being re-patched in syscall_trace_enter, one in the int3 handler,
# the other in the bpf() that attached a syscall tracepoint. We read it as cross-modifying code under
# QEMU 7.2's multi-threaded TCG (it has not been tried under KVM). WRIT_VM_ACCEL overrides the choice.
accel="tcg,thread=single"; cpu="max"
if [[ -r /dev/kvm && -w /dev/kvm ]]; then
  # A /dev/kvm that opens is not one that runs a guest: under nested virtualization QEMU 7.2 has been
  # seen to abort setting the host CPU's MSRs ("failed to set MSR 0x10a", kvm_buf_set_msrs) before the
  # guest's first instruction. A paused machine creates and resets the vCPUs and quits: seconds.
  if (echo quit | timeout 20 qemu-system-x86_64 -machine q35 -accel kvm -cpu host -S -display none \
       -nodefaults -monitor stdio) >/dev/null 2>&1; then
    accel=kvm; cpu=host
  else
    echo "vm: /dev/kvm is present but KVM cannot run a vCPU here; software emulation (TCG) instead"
  fi
fi
accel="${WRIT_VM_ACCEL:-$accel}"
console="$vm/console.log"
share() {  # TAG PATH [ro]
  echo "-fsdev local,id=$1,path=$2,security_model=none${3:+,readonly=on} -device virtio-9p-pci,fsdev=$1,mount_tag=$1"
}
qemu_args=(-machine q35 -accel "$accel" -cpu "$cpu" -smp 2 -m "$mem_mb" -nographic -no-reboot -nic none
  -kernel "$vmlinuz" -initrd "$vm/initramfs.cpio"
  -append "console=ttyS0 panic=-1 quiet loglevel=4 rdinit=/init ${WRIT_VM_CMDLINE:-}"
  $(share usr /usr ro) $(share etc /etc ro) $(share src "$root" ro) $(share results "$results"))
echo "vm: kernel $pkg ($(cat "$kdir/.deb")), accel $accel, ${mem_mb} MiB, 2 vCPUs, timeout ${timeout_s}s"
t0=$(date +%s)
set +e
if [[ $shell == 1 ]]; then
  qemu-system-x86_64 "${qemu_args[@]}"
  exit $?
fi
timeout -k 10 "$timeout_s" qemu-system-x86_64 "${qemu_args[@]}" </dev/null >"$console" 2>&1
qrc=$?
set -e
secs=$(( $(date +%s) - t0 ))
stage_line=$(grep -a "writ-vm:" "$console" | tail -1 || true)
if [[ $qrc == 124 || $qrc == 137 ]]; then
  echo "vm: TIMED OUT after ${secs}s; last stage: ${stage_line:-none (the kernel never reached /init)}"
  running=$(grep -ah "^\[ RUN      \]" "$results"/*.log 2>/dev/null | tail -1 || true)
  [[ -n $running ]] && echo "vm: last test started: ${running#*] }"
  echo "vm: console tail ($console):"; tail -25 "$console" | sed 's/^/  /'
  echo "0 passed, 1 failed"
  exit 1
fi

# ---- results ----------------------------------------------------------------------------------------
if [[ -n $bench ]]; then
  echo "vm: guest: $(grep -a "writ-vm: kernel" "$console" | tail -1 | sed 's/.*writ-vm: //')"
  echo "vm: guest: $(grep -a "writ-vm: lsm" "$console" | tail -1 | sed 's/.*writ-vm: //')"
  echo "vm: ${secs}s wall, accel $accel (under TCG only the ratios mean anything)"
  [[ -s $results/bench.log ]] || { echo "vm: the bench left no output; see $console"; exit 1; }
  cat "$results/bench.log"
  grep -q '^rc=0$' "$results/guest.status" 2>/dev/null
  exit $?
fi
passed=0; failed=0; skipped=0; bad=()
while read -r bin filter; do
  [[ -z $bin ]] && continue
  name=$(basename "$bin")
  log="$results/$name.log"
  if [[ ! -s $log ]] || ! grep -q "^\[==========\] .* ran\." "$log"; then
    bad+=("$name (no result: see $console)")
    continue
  fi
  p=$(grep -aoE "^\[  PASSED  \] [0-9]+" "$log" | grep -oE "[0-9]+$" || echo 0)
  f=$(grep -aoE "^\[  FAILED  \] [0-9]+ test" "$log" | grep -oE "[0-9]+" || echo 0)
  s=$(grep -aoE "^\[  SKIPPED \] [0-9]+ test" "$log" | grep -oE "[0-9]+" || echo 0)
  passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
  echo "vm: $name: $p passed, $f failed, $s skipped"
  # A filter that matches nothing is a mistake in the list, not a pass.
  ((p + f + s > 0)) || bad+=("$name (ran no test: filter \"${filter:-}\")")
  # gtest names each failed or skipped test twice: as it ends (with its time) and in the closing list.
  # A parameterized test's line goes on with ", where GetParam() = ...": the name is its first word.
  grep -aE "^\[  (FAILED|SKIPPED) \] [A-Za-z][^ ]*(,|$)" "$log" | sed 's/, where .*//; s/^/  /' || true
  # What each failure said (the first ones), so the tier's failure section has it without the guest.
  if ((f > 0)); then
    grep -aE -A7 ': Failure$' "$log" | cut -c1-300 | head -40 | sed 's/^/  /' || true
  fi
done <<<"$tests"
echo "vm: guest: $(grep -a "writ-vm: kernel" "$console" | tail -1 | sed 's/.*writ-vm: //')"
echo "vm: guest: $(grep -a "writ-vm: lsm" "$console" | tail -1 | sed 's/.*writ-vm: //')"
echo "vm: ${secs}s wall (boot, tests, power-off); console in $console, logs in $results"
if ((${#bad[@]})); then
  echo "vm: no result from: ${bad[*]}"
  failed=$((failed + ${#bad[@]}))
fi
echo "$passed passed, $failed failed, $skipped skipped"
((failed == 0))
