// writd: the writ host daemon. See docs/operations.md.
#include <dirent.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <signal.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "absl/synchronization/mutex.h"
#include "daemon/config.h"
#include "daemon/daemon.h"
#include "util/util.h"

namespace {

writ::daemon::Daemon* g_daemon = nullptr;

void OnSignal(int sig) {
  if (!g_daemon) return;
  if (sig == SIGHUP) {
    g_daemon->RequestReload();
  } else {
    g_daemon->RequestStop();
  }
}

void Usage(FILE* f) {
  fprintf(f,
          "usage: writd [--config FILE] [--policies DIR] [--mode record|monitor|enforce]\n"
          "             [--events FILE|-] [--state-dir DIR] [--run-dir DIR] [--http ADDR:PORT]\n"
          "             [--ring-bytes N] [-v]\n");
}

// The guardian: a separate process (writd's own binary re-executed) that outlives a crashed or killed
// writd. It inherits writd's BPF link fds, so the programs stay attached and in-kernel enforcement goes
// on while writd is down, even where the kernel refuses to pin links. When writd dies it freezes every
// task cgroup if the policy is `freeze` (leaving a marker naming them, for the next writd to thaw).
// The next writd attaches its own links, then sends SIGTERM: the old links are released. With no task
// left it exits by itself. Only raw syscalls and stack buffers: nothing here allocates.
// Whether a cgroup.events file says "populated 1". Unreadable counts as populated (fail safe: the
// guardian keeps enforcing).
bool Populated(const char* events_path) {
  int fd = open(events_path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno != ENOENT;
  char buf[256];
  ssize_t n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  if (n <= 0) return true;
  buf[n] = '\0';
  return strstr(buf, "populated 0") == nullptr;
}

int Guardian(pid_t parent, const char* cgroup_root, const char* marker, bool freeze) {
  signal(SIGTERM, SIG_DFL);
  signal(SIGINT, SIG_IGN);
  signal(SIGHUP, SIG_IGN);
  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, parent, 0));
  if (pidfd < 0) return 1;
  struct pollfd pfd = {pidfd, POLLIN, 0};
  while (poll(&pfd, 1, -1) < 0 && errno == EINTR) {
  }
  int mfd = freeze ? open(marker, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600) : -1;
  for (;;) {
    DIR* d = opendir(cgroup_root);
    if (!d) return 0;
    int tasks = 0;
    while (struct dirent* e = readdir(d)) {
      if (e->d_type != DT_DIR || e->d_name[0] == '.') continue;
      char path[4096];
      // With writd gone nobody removes a task cgroup: one whose processes are all gone is a task that
      // ended, and must not keep the guardian (and the programs it holds attached) alive forever.
      snprintf(path, sizeof(path), "%s/%s/cgroup.events", cgroup_root, e->d_name);
      if (!Populated(path)) continue;
      tasks++;
      if (mfd < 0) continue;
      snprintf(path, sizeof(path), "%s/%s/cgroup.freeze", cgroup_root, e->d_name);
      int fd = open(path, O_WRONLY | O_CLOEXEC);
      if (fd < 0) continue;
      if (write(fd, "1", 1) == 1) {
        (void)!write(mfd, e->d_name, strlen(e->d_name));
        (void)!write(mfd, "\n", 1);
      }
      close(fd);
    }
    closedir(d);
    if (mfd >= 0) {
      fsync(mfd);
      close(mfd);
      mfd = -1;
    }
    if (tasks == 0) return 0;  // no task left to enforce on: the links go with this process
    sleep(2);
  }
}

}  // namespace

int main(int argc, char** argv) {
  // Debian builds Abseil without NDEBUG, which leaves Mutex deadlock detection on: every Lock and
  // Unlock then updates a global lock graph (~350 instructions per event on the pipeline). It is a
  // debugging aid, not a safety net (it aborts on a potential cycle); the tests and TSan builds keep it.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  if (argc == 6 && strcmp(argv[1], "--guardian") == 0) {
    return Guardian(static_cast<pid_t>(atoi(argv[2])), argv[3], argv[4],
                    strcmp(argv[5], "freeze") == 0);
  }
  static const struct option opts[] = {
      {"config", required_argument, nullptr, 'c'},   {"policies", required_argument, nullptr, 'p'},
      {"mode", required_argument, nullptr, 'm'},     {"events", required_argument, nullptr, 'e'},
      {"state-dir", required_argument, nullptr, 's'}, {"run-dir", required_argument, nullptr, 'r'},
      {"http", required_argument, nullptr, 'H'},     {"ring-bytes", required_argument, nullptr, 'R'},
      {"verbose", no_argument, nullptr, 'v'},        {"help", no_argument, nullptr, 'h'},
      {nullptr, 0, nullptr, 0}};
  std::string config_path, policies, mode, events, state_dir, run_dir, http, ring;
  bool verbose = false;
  opterr = 0;
  int c;
  while ((c = getopt_long(argc, argv, "c:p:m:e:s:r:H:R:vh", opts, nullptr)) != -1) {
    switch (c) {
      case 'c': config_path = optarg; break;
      case 'p': policies = optarg; break;
      case 'm': mode = optarg; break;
      case 'e': events = optarg; break;
      case 's': state_dir = optarg; break;
      case 'r': run_dir = optarg; break;
      case 'H': http = optarg; break;
      case 'R': ring = optarg; break;
      case 'v': verbose = true; break;
      case 'h': Usage(stdout); return 0;
      default:
        fprintf(stderr, "writd: unknown or incomplete option '%s'\n", argv[optind - 1]);
        Usage(stderr);
        return 2;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "writd: unexpected argument '%s'\n", argv[optind]);
    Usage(stderr);
    return 2;
  }
  auto log = writ::Logger("writd");
  if (verbose) spdlog::set_level(spdlog::level::debug);

  writ::daemon::Config cfg;
  if (!config_path.empty()) {
    auto loaded = writ::daemon::LoadConfig(config_path);
    if (!loaded.ok()) {
      fprintf(stderr, "writd: %s\n", std::string(loaded.status().message()).c_str());
      return 2;
    }
    cfg = *loaded;
  }
  if (!policies.empty()) cfg.policies_dir = policies;
  if (!mode.empty()) {
    if (auto st = writ::daemon::ValidateMode(mode); !st.ok()) {
      fprintf(stderr, "writd: --mode: %s\n", std::string(st.message()).c_str());
      return 2;
    }
    cfg.mode = mode;
  }
  if (!events.empty()) cfg.events = events;
  if (!state_dir.empty()) cfg.state_dir = state_dir;
  if (!run_dir.empty()) cfg.run_dir = run_dir;
  if (!http.empty()) cfg.http = http;
  if (!ring.empty()) {
    char* end = nullptr;
    unsigned long n = strtoul(ring.c_str(), &end, 10);
    if (!end || *end || n < 4096 || (n & (n - 1))) {
      fprintf(stderr, "writd: --ring-bytes must be a power of two >= 4096\n");
      return 2;
    }
    cfg.ring_buffer_bytes = static_cast<uint32_t>(n);
  }

  writ::daemon::Daemon d(cfg);
  g_daemon = &d;
  struct sigaction sa = {};
  sa.sa_handler = OnSignal;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGHUP, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);

  if (auto st = d.Start(); !st.ok()) {
    fprintf(stderr, "writd: %s\n", std::string(st.message()).c_str());
    return 1;
  }
  d.Run();
  log->info("writd stopped");
  g_daemon = nullptr;
  return 0;
}
