#include "daemon/guardian.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "daemon/seams.h"
#include "util/fd.h"
#include "util/util.h"

namespace writ::daemon {

namespace {

std::shared_ptr<spdlog::logger> Log() {
  static auto l = Logger("writd");
  return l;
}

}  // namespace

// A fork of this multithreaded process could only call async-signal-safe functions: the guardian is
// writd's own binary re-executed, in no task cgroup, inheriting the link fds.
void Guardian::Start(const bpf::Loader& loader, const identity::CgroupManager& cgroups) {
  const std::string pidfile = opts_.run_dir + "/guardian.pid";
  if (auto old = ReadFile(pidfile); old.ok()) {
    int pid = 0;
    if (absl::SimpleAtoi(absl::StripAsciiWhitespace(*old), &pid) && pid > 1) {
      // Only if it really is a writd guardian (pid files outlive processes).
      auto cmd = ReadFile(absl::StrCat("/proc/", pid, "/cmdline"));
      if (cmd.ok() && cmd->find("--guardian") != std::string::npos) {
        kill(pid, SIGTERM);
        Log()->info("previous guardian {} released its links", pid);
      }
    }
  }
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n <= 0) {
    Log()->error("guardian: cannot find my own binary; enforcement ends if writd dies");
    return;
  }
  self[n] = '\0';
  std::string parent = std::to_string(getpid());
  std::string root = cgroups.root();
  std::string marker = Marker();
  std::string policy = opts_.on_daemon_loss;
  std::vector<int> fds = loader.LinkFds();
  pid_t pid = fork();
  if (pid == 0) {
    setsid();
    for (int fd : fds) fcntl(fd, F_SETFD, 0);  // async-signal-safe: the guardian inherits the links
    execl(self, self, "--guardian", parent.c_str(), root.c_str(), marker.c_str(), policy.c_str(),
          static_cast<char*>(nullptr));
    _exit(127);
  }
  if (pid < 0) {
    Log()->error("guardian: fork: {}", strerror(errno));
    return;
  }
  pid_ = pid;
  (void)WriteFileCreate(pidfile, std::to_string(pid));
  Log()->info("guardian {} holds {} links (on_daemon_loss: {})", pid, fds.size(), policy);
}

void Guardian::ThawAfterDaemonLoss(identity::TaskRegistry& registry, TaskControl& tasks) {
  auto marker = ReadFile(Marker());
  if (!marker.ok()) return;
  for (absl::string_view id : absl::StrSplit(*marker, '\n', absl::SkipEmpty())) {
    std::shared_ptr<identity::Task> t = registry.Find(std::string(id));
    if (!t) continue;
    tasks.Freeze(*t, false, nullptr, "writd is back (on_daemon_loss: freeze)");
  }
  unlink(Marker().c_str());
}

void Guardian::ArmSelfProtection(bpf::Loader& loader) const {
  absl::Status st = loader.SetProtectedPids(static_cast<uint32_t>(getpid()),
                                            static_cast<uint32_t>(std::max(0, pid_)),
                                            static_cast<uint32_t>(getpgrp()));
  if (!st.ok()) {
    Log()->error("self-protection: {}; tasks without the seccomp filter can signal writd",
                 std::string(st.message()));
  }
}

void Guardian::Protected(v1::PlacedResponse* p) const {
  // Every thread of writd: kill(2) of any thread id signals the whole process. Threads started
  // later (control connections) are covered by the BPF fallback only (docs/threat-model.md).
  if (DIR* d = opendir("/proc/self/task")) {
    while (struct dirent* e = readdir(d)) {
      uint32_t tid = static_cast<uint32_t>(strtoul(e->d_name, nullptr, 10));
      if (tid > 0) p->add_protected_pids(tid);
    }
    closedir(d);
  }
  if (pid_ > 0) p->add_protected_pids(static_cast<uint32_t>(pid_));
  p->add_protected_groups(static_cast<uint32_t>(getpid()));
  p->add_protected_groups(static_cast<uint32_t>(getpgrp()));
  if (pid_ > 0) p->add_protected_groups(static_cast<uint32_t>(pid_));  // setsid: pgid = pid
}

void Guardian::OnStop(const identity::TaskRegistry& registry,
                      const identity::CgroupManager& cgroups) {
  if (pid_ <= 0) return;
  if (registry.size() == 0) {
    // Nothing left to protect: the guardian releases its links.
    kill(pid_, SIGTERM);
    waitpid(pid_, nullptr, 0);
    unlink((opts_.run_dir + "/guardian.pid").c_str());
  } else if (opts_.on_daemon_loss == "freeze") {
    // A clean stop with tasks left: freeze them here (the guardian keeps the programs attached).
    std::string marker;
    for (const auto& t : registry.All()) {
      if (cgroups.Freeze(t->id, true).ok()) absl::StrAppend(&marker, t->id, "\n");
    }
    (void)WriteFileCreate(Marker(), marker);
    Log()->warn("on_daemon_loss freeze: {} tasks frozen until writd returns", registry.size());
  }
}

// ---- the guardian process ----------------------------------------------------------------------

namespace {

// Whether a cgroup.events file says "populated 1". Unreadable counts as populated (fail safe: the
// guardian keeps enforcing).
bool Populated(const char* events_path) {
  Fd fd(open(events_path, O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return errno != ENOENT;
  char buf[256];
  ssize_t n = read(fd.get(), buf, sizeof(buf) - 1);
  if (n <= 0) return true;
  buf[n] = '\0';
  return strstr(buf, "populated 0") == nullptr;
}

}  // namespace

// The guardian outlives a crashed or killed writd. It inherited writd's BPF link fds, so the
// programs stay attached and in-kernel enforcement goes on while writd is down, even where the
// kernel refuses to pin links. When writd dies it freezes every task cgroup if the policy is
// `freeze` (leaving a marker naming them, for the next writd to thaw). The next writd attaches its
// own links, then sends SIGTERM: the old links are released. With no task left it exits by itself.
// Raw syscalls and stack buffers only: nothing here allocates.
int RunGuardianProcess(pid_t parent, const char* cgroup_root, const char* marker, bool freeze) {
  signal(SIGTERM, SIG_DFL);
  signal(SIGINT, SIG_IGN);
  signal(SIGHUP, SIG_IGN);
  signal(SIGIO, SIG_IGN);  // as writd: a file's signal owner gets SIGIO, which would terminate
  Fd pidfd(static_cast<int>(syscall(SYS_pidfd_open, parent, 0)));
  if (!pidfd.valid()) return 1;
  struct pollfd pfd = {pidfd.get(), POLLIN, 0};
  while (poll(&pfd, 1, -1) < 0 && errno == EINTR) {
  }
  Fd mfd(freeze ? open(marker, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600) : -1);
  for (;;) {
    DIR* d = opendir(cgroup_root);
    if (!d) return 0;
    int tasks = 0;
    while (struct dirent* e = readdir(d)) {
      if (e->d_type != DT_DIR || e->d_name[0] == '.') continue;
      char path[4096];
      // With writd gone nobody removes a task cgroup: one whose processes are all gone is a task
      // that ended, and must not keep the guardian (and the programs it holds attached) alive
      // forever.
      snprintf(path, sizeof(path), "%s/%s/cgroup.events", cgroup_root, e->d_name);
      if (!Populated(path)) continue;
      tasks++;
      if (!mfd.valid()) continue;
      snprintf(path, sizeof(path), "%s/%s/cgroup.freeze", cgroup_root, e->d_name);
      Fd fd(open(path, O_WRONLY | O_CLOEXEC));
      if (fd.valid() && write(fd.get(), "1", 1) == 1) {
        (void)!write(mfd.get(), e->d_name, strlen(e->d_name));
        (void)!write(mfd.get(), "\n", 1);
      }
    }
    closedir(d);
    if (mfd.valid()) {
      fsync(mfd.get());
      mfd.Reset();
    }
    if (tasks == 0) return 0;  // no task left to enforce on: the links go with this process
    sleep(2);
  }
}

}  // namespace writ::daemon
