// The seccomp filter `writ run` installs in a task's first process, just before exec
// (self-protection). Inherited by every descendant and impossible to remove, it refuses with EPERM
// what a task could use against writd or writ's enforcement, before the syscall runs:
//   bpf, io_uring_setup/enter/register, process_vm_readv/writev, pidfd_getfd   always
//   init_module, finit_module, kexec_load, kexec_file_load                    always
//   ptrace                        PTRACE_ATTACH / PTRACE_SEIZE of anyone, any request aimed at
//   writd kill, tkill, tgkill, rt_sigqueueinfo, rt_tgsigqueueinfo, pidfd_open   aimed at a
//   protected pid kill(-1, ...), kill(-pgid, ...) of a protected group, kill(0, ...) from inside
//   one setpgid                       into a protected group fcntl F_SETOWN                a
//   protected pid or minus a protected group (signal ownership) fcntl F_SETOWN_EX, ioctl FIOSETOWN
//   / SIOCSPGRP   always (the owner is behind a pointer) syscalls of another ABI (int 0x80 i386,
//   x32)     always (they would bypass it)
// and pidfd_send_signal with ENOSYS (a pidfd may come from /proc/<writd>; callers fall back to
// kill(2), which is checked). Pid arguments are compared on their low 32 bits, as the kernel reads
// them. Each refusal is reported by the kernel side (bpf/writ_self.bpf.h) and becomes an
// OWASP-ASI10 finding.
#pragma once

#include <linux/filter.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace writ::actions {

struct SelfFilterSpec {
  std::vector<uint32_t> pids;    // writd's threads, the guardian: no signal, pidfd or trace
  std::vector<uint32_t> groups;  // process groups holding them: no kill(-pgid)
};

// The classic-BPF program (every jump is local or a 32-bit JA, so any number of pids fits).
// own_group_protected: the process installing it is in one of spec.groups (kill(0) refused too).
std::vector<sock_filter> BuildSelfFilter(const SelfFilterSpec& spec);
std::vector<sock_filter> BuildSelfFilter(const SelfFilterSpec& spec, bool own_group_protected);

// Installs it on the calling thread (before exec). Root installs it directly; anyone else first
// sets no_new_privs, as the kernel requires. Async-signal-safe apart from building the program:
// call it in a single-threaded child.
absl::Status InstallSelfFilter(const SelfFilterSpec& spec);

// How `writ run` hands the spec to its child over a pipe ("go" once writd has placed it): counts of
// pids and groups (uint32 each), then the pids and the groups (uint32 each), host byte order.
std::string EncodeSelfFilterSpec(const SelfFilterSpec& spec);
// False unless `bytes` is exactly one encoded spec: a filter built from part of the pid list would
// leave some of writd's threads unprotected without anyone noticing.
bool DecodeSelfFilterSpec(absl::string_view bytes, SelfFilterSpec* spec);

}  // namespace writ::actions
