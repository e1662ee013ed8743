#!/.bb/sh
# /init of the VM tier's initramfs (scripts/vm-test.sh builds it; this file runs inside the guest as
# PID 1 under busybox). Mounts what writd needs, the host's /usr, /etc and checkout over virtio-9p, runs
# each test binary of /.tests with its gtest filter, writes the logs to the results share, powers off.
# "writ-vm:" lines on the console say where it is (vm-test.sh prints the last one on a timeout).
export PATH=/.bb
say() { echo "writ-vm: $*" >/dev/console; }
die() { say "FAILED: $*"; echo "writ-vm: FAILED: $*" >/results/guest.status 2>/dev/null; sync; poweroff -f; }

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs -o mode=755 tmpfs /run
mount -t securityfs securityfs /sys/kernel/security
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mount -t bpf bpf /sys/fs/bpf
mount -t tracefs tracefs /sys/kernel/tracing
mount -t debugfs debugfs /sys/kernel/debug
say "kernel $(cat /proc/sys/kernel/osrelease), $(grep -c ^processor /proc/cpuinfo) CPUs"
say "lsm $(cat /sys/kernel/security/lsm)"

for m in $(cat /.mods/order); do
  insmod "/.mods/$m" || die "insmod $m"
done
root=$(cat /.root)
build=$(cat /.build)
o=trans=virtio,version=9p2000.L,msize=262144
mount -t 9p -o "$o,ro,cache=loose" usr /usr || die "mount the host's /usr"
mount -t 9p -o "$o,ro,cache=loose" etc /etc || die "mount the host's /etc"
mkdir -p "$root"
mount -t 9p -o "$o,ro,cache=loose" src "$root" || die "mount $root"
mount -t 9p -o "$o,cache=none" results /results || die "mount the results share"
ip link set lo up
hostname writ-vm
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 WRIT_TEST_START_SECONDS=90
cd /tmp

if [ "$(cat /.shell)" = 1 ]; then
  say "shell (exit to power off)"
  setsid sh -c 'exec sh </dev/ttyS0 >/dev/ttyS0 2>&1'
  poweroff -f
fi

if [ -n "$(cat /.bench)" ]; then
  say "bench $(cat /.bench)"
  # shellcheck disable=SC2046
  "$root/scripts/bench/rungs.sh" $(cat /.bench) >/results/bench.log 2>&1
  r=$?
  say "done bench rc=$r"
  echo "rc=$r" >/results/guest.status
  sync
  poweroff -f
fi

rc=0
while read -r bin filter; do
  [ -z "$bin" ] && continue
  name=${bin##*/}
  say "run $name $filter"
  "$build/$bin" --gtest_filter="$filter" --gtest_color=no --gtest_output="xml:/results/$name.xml" \
    >"/results/$name.log" 2>&1
  r=$?
  say "done $name rc=$r: $(grep -a '^\[  PASSED  \]\|^\[  FAILED  \] [0-9]\|^\[  SKIPPED \] [0-9]' "/results/$name.log" | tr '\n' ' ')"
  [ $r = 0 ] || rc=1
done </.tests
echo "rc=$rc" >/results/guest.status
sync
say "all done rc=$rc"
poweroff -f
