// writd: the writ host daemon. See docs/operations.md.
#include <getopt.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "absl/synchronization/mutex.h"
#include "daemon/config.h"
#include "daemon/daemon.h"
#include "daemon/guardian.h"
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
          "             [--console ADDR:PORT] [--ring-bytes N] [-v]\n");
}

}  // namespace

int main(int argc, char** argv) {
  // Debian builds Abseil without NDEBUG, which leaves Mutex deadlock detection on: every Lock and
  // Unlock then updates a global lock graph (~350 instructions per event on the pipeline). It is a
  // debugging aid, not a safety net (it aborts on a potential cycle); the tests and TSan builds
  // keep it.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  if (argc == 6 && strcmp(argv[1], "--guardian") == 0) {
    return writ::daemon::RunGuardianProcess(static_cast<pid_t>(atoi(argv[2])), argv[3], argv[4],
                                            strcmp(argv[5], "freeze") == 0);
  }
  static const struct option opts[] = {{"config", required_argument, nullptr, 'c'},
                                       {"policies", required_argument, nullptr, 'p'},
                                       {"mode", required_argument, nullptr, 'm'},
                                       {"events", required_argument, nullptr, 'e'},
                                       {"state-dir", required_argument, nullptr, 's'},
                                       {"run-dir", required_argument, nullptr, 'r'},
                                       {"http", required_argument, nullptr, 'H'},
                                       {"ring-bytes", required_argument, nullptr, 'R'},
                                       {"console", required_argument, nullptr, 'C'},
                                       {"verbose", no_argument, nullptr, 'v'},
                                       {"help", no_argument, nullptr, 'h'},
                                       {nullptr, 0, nullptr, 0}};
  std::string config_path, policies, mode, events, state_dir, run_dir, http, ring, console;
  bool verbose = false;
  opterr = 0;
  int c;
  while ((c = getopt_long(argc, argv, "c:p:m:e:s:r:H:R:C:vh", opts, nullptr)) != -1) {
    switch (c) {
      case 'c':
        config_path = optarg;
        break;
      case 'p':
        policies = optarg;
        break;
      case 'm':
        mode = optarg;
        break;
      case 'e':
        events = optarg;
        break;
      case 's':
        state_dir = optarg;
        break;
      case 'r':
        run_dir = optarg;
        break;
      case 'H':
        http = optarg;
        break;
      case 'R':
        ring = optarg;
        break;
      case 'C':
        console = optarg;
        break;
      case 'v':
        verbose = true;
        break;
      case 'h':
        Usage(stdout);
        return 0;
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
  if (!console.empty()) {
    if (auto st = writ::daemon::ValidateConsoleListen(console); !st.ok()) {
      fprintf(stderr, "writd: --console: %s\n", std::string(st.message()).c_str());
      return 2;
    }
    cfg.console = console;
  }
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
  // A file whose signal owner is writd (F_SETOWN, refused by the task filter; a task without it is
  // killed at the call) signals SIGIO when it becomes ready, whose default action terminates:
  // ignored, so that only an explicit F_SETSIG signal could still reach writd.
  signal(SIGIO, SIG_IGN);

  if (auto st = d.Start(); !st.ok()) {
    fprintf(stderr, "writd: %s\n", std::string(st.message()).c_str());
    return 1;
  }
  d.Run();
  log->info("writd stopped");
  g_daemon = nullptr;
  return 0;
}
