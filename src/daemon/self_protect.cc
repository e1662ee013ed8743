// Self-protection findings: a task's process aimed a syscall at writd, its guardian or another process
// (kill family, ptrace attach, process_vm_*, pidfd_getfd), or at writ's enforcement itself (bpf,
// io_uring). The kernel side (bpf/writ_self.bpf.h) reports each attempt; the launcher's seccomp filter
// (src/cli/self_filter.cc) has usually refused it already. These are judged by writ, not by the intent:
// every one is a violation tagged OWASP-ASI10 (rogue agent), in every mode, and in enforce mode the
// task's on_violation responses run (kill when the task has no intent).
#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "daemon/daemon.h"
#include "util/util.h"

namespace writ::daemon {

namespace {

std::string SelfReason(const v1::Syscall& sc) {
  const std::string& n = sc.name();
  if (n == "bpf") return "a task may not use bpf(): it could detach or override writ's programs";
  if (n.rfind("io_uring", 0) == 0) {
    return "a task may not use io_uring: its operations bypass the syscall tracepoints writ judges";
  }
  if (sc.target() == "writd" || sc.target() == "guardian") {
    return absl::StrCat(n, " aimed at ", sc.target(), " (pid ", sc.target_pid(),
                        "): a task may not signal, trace or open writ's own processes");
  }
  if (sc.target() == "all") return absl::StrCat(n, "(-1): a task may not signal every process");
  return absl::StrCat(n, " of another process", sc.target_pid() ? absl::StrCat(" (pid ", sc.target_pid(), ")") : "",
                      ": a task may not trace or reach into other processes' memory or files");
}

}  // namespace

void Daemon::JudgeSelf(identity::Task& task, v1::Event& ev, const decode::RecordInfo& info) {
  const v1::Syscall& sc = ev.syscall();
  ev.set_verdict("violation");
  if (info.flags & WRIT_F_SECCOMP) {
    ev.set_outcome("prevented");  // refused before it ran; the caller got EPERM
    ev.set_enforcement("seccomp");
  } else if (info.flags & WRIT_F_KERNEL_DENY) {
    ev.set_outcome("killed_after");  // it ran; the caller was SIGKILLed at syscall entry
    ev.set_enforcement("kernel-signal");
  } else {
    ev.set_outcome("would_deny");  // no filter and not in enforce mode
  }
  v1::Finding* f = ev.mutable_finding();
  f->set_rule(absl::StrCat("writ/self.", sc.name()));
  f->set_category("self");
  f->set_reason(SelfReason(sc));
  f->add_frameworks("OWASP-ASI10");
  f->add_frameworks("MAESTRO-L4");
  std::vector<std::string> responses = {"alert", "kill"};
  if (task.compiled && !task.compiled->responses().empty()) responses = task.compiled->responses();
  for (const auto& r : responses) f->add_responses(r);
  f->set_severity("critical");
  violations_++;
  verdicts_[intent::Verdict::kViolation & 3]++;
  if (task.mode == "enforce") {
    task.violated = true;
    // As Enforce: a revocation takes effect now, in memory; RunResponses records it after the emission.
    if (cred_service_ && std::find(responses.begin(), responses.end(), "revoke") != responses.end()) {
      cred_service_->MarkRevoked(task.id);
    }
    deferred_self_responses_ = std::move(responses);
  }
}

std::vector<uint32_t> Daemon::ProtectedPids() const {
  std::vector<uint32_t> pids;
  // Every thread of writd: kill(2) of any thread id signals the whole process. Threads started later
  // (control connections) are covered by the BPF fallback only (docs/threat-model.md).
  if (DIR* d = opendir("/proc/self/task")) {
    while (struct dirent* e = readdir(d)) {
      uint32_t tid = static_cast<uint32_t>(strtoul(e->d_name, nullptr, 10));
      if (tid > 0) pids.push_back(tid);
    }
    closedir(d);
  }
  if (guardian_pid_ > 0) pids.push_back(static_cast<uint32_t>(guardian_pid_));
  return pids;
}

std::vector<uint32_t> Daemon::ProtectedGroups() const {
  std::vector<uint32_t> groups = {static_cast<uint32_t>(getpid()),
                                  static_cast<uint32_t>(getpgrp())};
  if (guardian_pid_ > 0) groups.push_back(static_cast<uint32_t>(guardian_pid_));  // setsid: pgid = pid
  return groups;
}

void Daemon::ArmSelfProtection() {
  absl::Status st = loader_->SetProtectedPids(static_cast<uint32_t>(getpid()),
                                              static_cast<uint32_t>(std::max(0, guardian_pid_)),
                                              static_cast<uint32_t>(getpgrp()));
  if (!st.ok()) {
    Logger("writd")->error("self-protection: {}; tasks without the seccomp filter can signal writd",
                           std::string(st.message()));
  }
}

}  // namespace writ::daemon
