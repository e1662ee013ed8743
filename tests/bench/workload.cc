// Workload driver for scripts/bench/side_by_side.sh: one syscall pattern in a tight, bounded loop,
// timed with CLOCK_MONOTONIC. A monitor's overhead is the ratio of this program's ops/s with and
// without the monitor, so the loop does nothing but the syscalls being judged.
//
//   workload open N [--file PATH]          open(O_RDONLY)+close of an existing file
//   workload exec N [--exe PATH]           fork + execve(/bin/true) + waitpid
//   workload connect N [--port P]          TCP connect to a loopback listener (own thread),
//   SO_LINGER 0 workload getppid N                     getppid(2): the cheapest syscall, for what a
//   monitor costs
//                                          syscalls it does not watch (scripts/bench/dispatch.sh)
//   workload fcntl N                       fcntl(F_GETFL) of a pipe
//   workload ioctl N                       ioctl(FIONREAD) of a pipe
//   workload rename N [--file PATH]        rename(2) of PATH to PATH.r and back (two renames per
//   op)
//                                          (fcntl, ioctl, rename: what writd's self-protection and
//                                          link hooks cost the host, scripts/bench/hooks.sh)
//   workload dnsq N --server IP:PORT --name NAME
//                                          N DNS A queries over one connected UDP socket, one at a
//                                          time (reply awaited, 2 s bound): adds p50_us and p99_us
//                                          of the round trips (scripts/bench/dns.sh: through
//                                          writd's stub vs straight to the upstream)
//   common: [--max-seconds S]              stop early (and say so) when the loop takes longer
//           [--procs P]                    open only: P producer processes (forked, each pinned to
//                                          CPU i mod ncpus), N opens in total; the load test's mode
//           [--rate R]                     open only: paced at R opens/s on an absolute schedule
//           (op i
//                                          at start + i/R: sleeps while the next op is >= 30 us
//                                          away, spins the last 15 us); the verdict-latency bench's
//                                          mode
//
// Output, one line on stdout: "workload=open ops=N seconds=S ops_per_sec=R complete=1 user_s=U
// sys_s=K syscalls=M" (user/sys: CPU time of this process and its reaped children: where a
// monitor's cost lands; syscalls: every open the workload made after main() started, the pre-flight
// check included, so a load test can reconcile a monitor's event count exactly).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr int kMaxOutstandingConnects = 256;  // keeps the accept queue far below somaxconn

double Now() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

int Usage() {
  fprintf(stderr,
          "usage: workload open|exec|connect|getppid|fcntl|ioctl|rename|dnsq N [--file PATH] "
          "[--exe PATH] [--port P] [--server IP:PORT] [--name NAME] "
          "[--max-seconds S] [--procs P] [--rate R]\n");
  return 2;
}

struct Options {
  std::string server;  // dnsq: IP:PORT (IPv4)
  std::string name;    // dnsq: the name asked
  std::string file = "/etc/hostname";
  std::string exe = "/bin/true";
  int port = 0;  // 0 = ephemeral
  double max_seconds = 300;
  int procs = 1;
  double rate = 0;  // open: ops per second, 0 = as fast as possible
};

// Waits until CLOCK_MONOTONIC reaches t (seconds): sleeps (timer slack set to 1 ns in main) until
// 15 us before t when at least 30 us are left, spins the rest, so a paced run neither drifts nor
// burns a CPU at low rates.
void WaitUntil(double t) {
  for (;;) {
    const double left = t - Now();
    if (left <= 0) return;
    if (left >= 30e-6) {
      struct timespec ts;
      const double wake = t - 15e-6;
      ts.tv_sec = static_cast<time_t>(wake);
      ts.tv_nsec = static_cast<long>((wake - ts.tv_sec) * 1e9);
      clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr);
    }
  }
}

// Every loop checks the clock every `stride` iterations: bounded in count and in time.
template <typename Op>
long RunLoop(long n, double deadline, long stride, Op op, bool *complete) {
  long i = 0;
  for (; i < n; i++) {
    if (i % stride == 0 && Now() > deadline) break;
    if (!op(i)) return -1;
  }
  *complete = i == n;
  return i;
}

long OpenLoop(long n, const Options &o, double deadline, bool *complete) {
  // Fail before timing if the file cannot be opened at all (counted in the extra syscalls).
  int fd = open(o.file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    fprintf(stderr, "workload: open %s: %s\n", o.file.c_str(), strerror(errno));
    return -1;
  }
  close(fd);
  const double start = Now();
  return RunLoop(
      n, deadline, o.rate > 0 ? 1 : 1024,
      [&](long i) {
        if (o.rate > 0) WaitUntil(start + static_cast<double>(i) / o.rate);
        int f = open(o.file.c_str(), O_RDONLY | O_CLOEXEC);
        if (f < 0) {
          fprintf(stderr, "workload: open %s: %s\n", o.file.c_str(), strerror(errno));
          return false;
        }
        close(f);
        return true;
      },
      complete);
}

long GetppidLoop(long n, double deadline, bool *complete) {
  return RunLoop(
      n, deadline, 4096,
      [](long) {
        syscall(SYS_getppid);
        return true;
      },
      complete);
}

long PipeLoop(long n, double deadline, bool *complete, bool use_ioctl) {
  int p[2];
  if (pipe(p) != 0) {
    fprintf(stderr, "workload: pipe: %s\n", strerror(errno));
    return -1;
  }
  return RunLoop(
      n, deadline, 4096,
      [&](long) {
        int avail = 0;
        if (use_ioctl) return ioctl(p[0], FIONREAD, &avail) == 0;
        return fcntl(p[0], F_GETFL) >= 0;
      },
      complete);
}

long RenameLoop(long n, const Options &o, double deadline, bool *complete) {
  const std::string other = o.file + ".r";
  return RunLoop(
      n, deadline, 1024,
      [&](long) {
        if (rename(o.file.c_str(), other.c_str()) != 0 ||
            rename(other.c_str(), o.file.c_str()) != 0) {
          fprintf(stderr, "workload: rename %s: %s\n", o.file.c_str(), strerror(errno));
          return false;
        }
        return true;
      },
      complete);
}

long ExecLoop(long n, const Options &o, double deadline, bool *complete) {
  char *const argv[] = {const_cast<char *>(o.exe.c_str()), nullptr};
  char *const envp[] = {nullptr};
  return RunLoop(
      n, deadline, 1,
      [&](long) {
        pid_t pid = fork();
        if (pid < 0) {
          fprintf(stderr, "workload: fork: %s\n", strerror(errno));
          return false;
        }
        if (pid == 0) {
          execve(argv[0], argv, envp);
          _exit(127);
        }
        int status = 0;
        while (waitpid(pid, &status, 0) < 0) {
          if (errno != EINTR) return false;
        }
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
          fprintf(stderr, "workload: %s exited with status 0x%x\n", argv[0], status);
          return false;
        }
        return true;
      },
      complete);
}

long ConnectLoop(long n, const Options &o, double deadline, bool *complete) {
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  struct sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(o.port));
  if (bind(lfd, reinterpret_cast<sockaddr *>(&addr), sizeof(addr)) != 0 || listen(lfd, 4096) != 0) {
    fprintf(stderr, "workload: listen on 127.0.0.1:%d: %s\n", o.port, strerror(errno));
    return -1;
  }
  socklen_t alen = sizeof(addr);
  getsockname(lfd, reinterpret_cast<sockaddr *>(&addr), &alen);

  // The listener accepts and closes; the client waits when it is too far ahead so the accept queue
  // never overflows (an overflow would turn into a 1 s SYN retransmit and wreck the measurement).
  std::atomic<long> accepted{0};
  std::atomic<bool> stop{false};
  std::thread acceptor([&] {
    while (!stop.load(std::memory_order_relaxed)) {
      int c = accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
      if (c >= 0) {
        close(c);
        accepted.fetch_add(1, std::memory_order_release);
      } else if (errno != EINTR && errno != ECONNABORTED) {
        break;  // listener shut down
      }
    }
  });
  const struct linger lg = {1, 0};  // RST on close: no TIME_WAIT pile-up over 80k connections
  long done = RunLoop(
      n, deadline, 256,
      [&](long i) {
        while (i - accepted.load(std::memory_order_acquire) > kMaxOutstandingConnects) {
          if (Now() > deadline) return false;
          std::this_thread::yield();
        }
        int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (c < 0) return false;
        setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        if (connect(c, reinterpret_cast<sockaddr *>(&addr), sizeof(addr)) != 0) {
          fprintf(stderr, "workload: connect 127.0.0.1:%d: %s\n", ntohs(addr.sin_port),
                  strerror(errno));
          close(c);
          return false;
        }
        close(c);
        return true;
      },
      complete);
  stop.store(true);
  shutdown(lfd, SHUT_RDWR);  // wakes accept()
  acceptor.join();
  close(lfd);
  return done;
}

// A DNS query for `name` (A, IN, recursion desired) with id `id`.
std::vector<unsigned char> DnsQuery(const std::string &name, unsigned id) {
  std::vector<unsigned char> q = {static_cast<unsigned char>(id >> 8),
                                  static_cast<unsigned char>(id),
                                  0x01,
                                  0x00,
                                  0,
                                  1,
                                  0,
                                  0,
                                  0,
                                  0,
                                  0,
                                  0};
  size_t start = 0;
  while (start <= name.size()) {
    size_t dot = name.find('.', start);
    if (dot == std::string::npos) dot = name.size();
    q.push_back(static_cast<unsigned char>(dot - start));
    q.insert(q.end(), name.begin() + start, name.begin() + dot);
    start = dot + 1;
  }
  q.insert(q.end(), {0, 0, 1, 0, 1});
  return q;
}

long DnsLoop(long n, const Options &o, double deadline, bool *complete, std::vector<double> *lat) {
  const size_t colon = o.server.rfind(':');
  struct sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  if (colon == std::string::npos || o.name.empty() ||
      inet_pton(AF_INET, o.server.substr(0, colon).c_str(), &addr.sin_addr) != 1) {
    fprintf(stderr, "workload: dnsq needs --server IPV4:PORT and --name NAME\n");
    return -1;
  }
  addr.sin_port = htons(static_cast<uint16_t>(atoi(o.server.c_str() + colon + 1)));
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  struct timeval tv = {2, 0};
  setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  if (connect(s, reinterpret_cast<sockaddr *>(&addr), sizeof(addr)) != 0) {
    fprintf(stderr, "workload: connect %s: %s\n", o.server.c_str(), strerror(errno));
    close(s);
    return -1;
  }
  unsigned char buf[1500];
  long done = RunLoop(
      n, deadline, 1,
      [&](long i) {
        const auto q = DnsQuery(o.name, static_cast<unsigned>(i));
        const double t0 = Now();
        if (send(s, q.data(), q.size(), 0) < 0) return false;
        for (;;) {  // a late reply to an earlier query is skipped by its id
          ssize_t k = recv(s, buf, sizeof(buf), 0);
          if (k < 0) {
            fprintf(stderr, "workload: dnsq %s: no reply: %s\n", o.server.c_str(), strerror(errno));
            return false;
          }
          if (k >= 2 && buf[0] == q[0] && buf[1] == q[1]) break;
        }
        lat->push_back((Now() - t0) * 1e6);
        return true;
      },
      complete);
  close(s);
  return done;
}

// P forked producers, each pinned to one CPU, N opens in total. Each child reports its count
// through a pipe; the parent sums them (children's CPU time lands in RUSAGE_CHILDREN).
long MultiOpenLoop(long n, const Options &o, double deadline, bool *complete, long *extra) {
  const long ncpu = std::max(1L, sysconf(_SC_NPROCESSORS_ONLN));
  int fds[2];
  if (pipe(fds) != 0) return -1;
  std::vector<pid_t> kids;
  for (int i = 0; i < o.procs; i++) {
    const long share = n / o.procs + (i < n % o.procs ? 1 : 0);
    pid_t pid = fork();
    if (pid < 0) {
      fprintf(stderr, "workload: fork: %s\n", strerror(errno));
      break;
    }
    if (pid == 0) {
      close(fds[0]);
      cpu_set_t set;
      CPU_ZERO(&set);
      CPU_SET(i % ncpu, &set);
      sched_setaffinity(0, sizeof(set), &set);  // best effort: a cpuset may forbid it
      bool c = false;
      long d = share > 0 ? OpenLoop(share, o, deadline, &c) : 0;
      if (share == 0) c = true;
      long msg[2] = {d, c ? 1 : 0};
      _exit(write(fds[1], msg, sizeof(msg)) == sizeof(msg) && d >= 0 ? 0 : 1);
    }
    kids.push_back(pid);
  }
  close(fds[1]);
  long total = 0;
  bool all = static_cast<int>(kids.size()) == o.procs;
  for (size_t i = 0; i < kids.size(); i++) {
    long msg[2];
    if (read(fds[0], msg, sizeof(msg)) != sizeof(msg) || msg[0] < 0) {
      all = false;
      continue;
    }
    total += msg[0];
    all = all && msg[1] == 1;
    if (msg[0] > 0) (*extra)++;  // that child's pre-flight open
  }
  close(fds[0]);
  bool failed = false;
  for (pid_t k : kids) {
    int st = 0;
    while (waitpid(k, &st, 0) < 0 && errno == EINTR) {
    }
    failed = failed || !WIFEXITED(st) || WEXITSTATUS(st) != 0;
  }
  *complete = all && !failed;
  return failed && total == 0 ? -1 : total;
}

}  // namespace

int main(int argc, char **argv) {
  if (argc < 3) return Usage();
  std::string kind = argv[1];
  char *end = nullptr;
  long n = strtol(argv[2], &end, 10);
  if (!end || *end || n <= 0) {
    fprintf(stderr, "workload: N must be a positive integer, got '%s'\n", argv[2]);
    return 2;
  }
  Options o;
  for (int i = 3; i < argc; i++) {
    std::string a = argv[i];
    if (i + 1 >= argc) {
      fprintf(stderr, "workload: %s needs a value\n", a.c_str());
      return 2;
    }
    const char *v = argv[++i];
    if (a == "--file") {
      o.file = v;
    } else if (a == "--exe") {
      o.exe = v;
    } else if (a == "--port") {
      o.port = atoi(v);
    } else if (a == "--server") {
      o.server = v;
    } else if (a == "--name") {
      o.name = v;
    } else if (a == "--max-seconds") {
      o.max_seconds = atof(v);
    } else if (a == "--rate") {
      o.rate = atof(v);
      if (o.rate <= 0) {
        fprintf(stderr,
                "workload: --rate must be a positive number of ops per second, got "
                "'%s'\n",
                v);
        return 2;
      }
    } else if (a == "--procs") {
      o.procs = atoi(v);
      if (o.procs < 1 || o.procs > 64) {
        fprintf(stderr, "workload: --procs must be 1..64, got '%s'\n", v);
        return 2;
      }
    } else {
      fprintf(stderr, "workload: unknown option %s\n", a.c_str());
      return Usage();
    }
  }
  if (o.rate > 0 && (kind != "open" || o.procs > 1)) {
    fprintf(stderr, "workload: --rate is for the single-process open workload only\n");
    return 2;
  }
  if (o.rate > 0) prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
  const double start = Now();
  const double deadline = start + o.max_seconds;
  bool complete = false;
  long done;
  long extra = 0;                 // opens beyond the N timed ones (pre-flight checks)
  std::vector<double> latencies;  // dnsq: microseconds per round trip
  if (kind == "open" && o.procs > 1) {
    done = MultiOpenLoop(n, o, deadline, &complete, &extra);
  } else if (o.procs > 1) {
    fprintf(stderr, "workload: --procs is for the open workload only\n");
    return 2;

  } else if (kind == "open") {
    done = OpenLoop(n, o, deadline, &complete);
    extra = 1;
  } else if (kind == "exec") {
    done = ExecLoop(n, o, deadline, &complete);
  } else if (kind == "connect") {
    done = ConnectLoop(n, o, deadline, &complete);
  } else if (kind == "getppid") {
    done = GetppidLoop(n, deadline, &complete);
  } else if (kind == "fcntl" || kind == "ioctl") {
    done = PipeLoop(n, deadline, &complete, kind == "ioctl");
  } else if (kind == "rename") {
    done = RenameLoop(n, o, deadline, &complete);
  } else if (kind == "dnsq") {
    done = DnsLoop(n, o, deadline, &complete, &latencies);
  } else {
    fprintf(stderr, "workload: unknown workload '%s'\n", kind.c_str());
    return Usage();
  }
  const double secs = Now() - start;
  if (done < 0) return 1;
  if (!complete) {
    fprintf(stderr, "workload: %s stopped after %.1f s (--max-seconds) at %ld of %ld ops\n",
            kind.c_str(), secs, done, n);
  }
  struct rusage self = {}, children = {};
  getrusage(RUSAGE_SELF, &self);
  getrusage(RUSAGE_CHILDREN, &children);
  auto seconds = [](const timeval &a, const timeval &b) {
    return a.tv_sec + b.tv_sec + (a.tv_usec + b.tv_usec) / 1e6;
  };
  printf(
      "workload=%s ops=%ld seconds=%.6f ops_per_sec=%.1f complete=%d user_s=%.3f sys_s=%.3f "
      "syscalls=%ld\n",
      kind.c_str(), done, secs, secs > 0 ? done / secs : 0.0, complete ? 1 : 0,
      seconds(self.ru_utime, children.ru_utime), seconds(self.ru_stime, children.ru_stime),
      done + extra);
  if (!latencies.empty()) {
    std::sort(latencies.begin(), latencies.end());
    auto pct = [&](double p) {
      return latencies[std::min(latencies.size() - 1, static_cast<size_t>(p * latencies.size()))];
    };
    printf("latency p50_us=%.1f p99_us=%.1f\n", pct(0.50), pct(0.99));
  }
  return 0;
}
