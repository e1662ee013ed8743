// Syslog sink against a real rsyslogd on 127.0.0.1 (imtcp, octet-counted RFC 5424 frames, omfile):
// events arrive intact; rsyslogd stopped for a few seconds under load then restarted loses nothing
// (spool replay plus re-send of the unacknowledged tail; duplicates carry the same id).
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "sinks/sink.h"
#include "../unit/sinks_test_receiver.h"

namespace writ::sinks {
namespace {

namespace fs = std::filesystem;
constexpr char kRsyslogd[] = "/usr/sbin/rsyslogd";

class Rsyslog {
 public:
  Rsyslog(const fs::path& dir, int port) : dir_(dir), port_(port) {
    fs::create_directories(dir / "work");
    std::ofstream conf(dir / "rsyslog.conf");
    conf << "global(workDirectory=\"" << (dir / "work").string() << "\" maxMessageSize=\"64k\")\n"
         << "main_queue(queue.type=\"Direct\")\n"  // no in-memory queue to lose on shutdown
         << "module(load=\"imtcp\")\n"
         << "input(type=\"imtcp\" address=\"127.0.0.1\" port=\"" << port << "\")\n"
         << "template(name=\"msgonly\" type=\"string\" string=\"%msg%\\n\")\n"
         << "action(type=\"omfile\" file=\"" << out().string()
         << "\" template=\"msgonly\" flushOnTXEnd=\"on\" asyncWriting=\"off\")\n";
  }
  ~Rsyslog() { Stop(); }
  fs::path out() const { return dir_ / "out.log"; }

  bool Start() {
    const std::string conf = (dir_ / "rsyslog.conf").string();
    const std::string pid = (dir_ / "rsyslogd.pid").string();
    pid_ = ::fork();
    if (pid_ == 0) {
      ::execl(kRsyslogd, kRsyslogd, "-n", "-f", conf.c_str(), "-i", pid.c_str(), nullptr);
      ::_exit(127);
    }
    // Ready when the port accepts (bounded).
    for (int i = 0; i < 200; ++i) {
      if (Accepts()) return true;
      int st;
      if (::waitpid(pid_, &st, WNOHANG) == pid_) {
        pid_ = -1;
        return false;
      }
      absl::SleepFor(absl::Milliseconds(25));
    }
    return false;
  }
  void Stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    int st;
    for (int i = 0; i < 200 && ::waitpid(pid_, &st, WNOHANG) == 0; ++i) {
      absl::SleepFor(absl::Milliseconds(25));
    }
    if (::waitpid(pid_, &st, WNOHANG) == 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &st, 0);
    }
    pid_ = -1;
  }

 private:
  bool Accepts() const {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(port_));
    const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
    ::close(fd);
    return ok;
  }

  fs::path dir_;
  int port_;
  pid_t pid_ = -1;
};

std::string Line(int i) {
  return absl::StrCat(R"({"id":"e2e-)", i,
                      R"(","kind":"open","file":{"path":"/tmp/caf\u00e9 \"q\"\\x","result":-13}})");
}

// id -> count, and every line must be one of the submitted lines, byte for byte.
std::map<std::string, int> ReadIds(const fs::path& out, int* bad_lines) {
  std::map<std::string, int> ids;
  *bad_lines = 0;
  std::ifstream in(out);
  std::string l;
  while (std::getline(in, l)) {
    try {
      const auto j = nlohmann::json::parse(l);
      const std::string id = j.at("id").get<std::string>();
      const int n = std::stoi(id.substr(4));
      if (l != Line(n)) ++*bad_lines;
      ++ids[id];
    } catch (const std::exception&) {
      ++*bad_lines;
    }
  }
  return ids;
}

fs::path TempDir(const std::string& name) {
  fs::path p = fs::temp_directory_path() / absl::StrCat("writ-e2e-", name, "-", ::getpid());
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

SinkConfig SyslogConfig(int port, const fs::path& spool) {
  SinkConfig c;
  c.type = "syslog";
  c.name = "syslog";
  c.address = absl::StrCat("127.0.0.1:", port);
  c.spool_dir = spool.string();
  c.backoff_min = absl::Milliseconds(50);
  c.backoff_max = absl::Milliseconds(500);
  c.timeout = absl::Seconds(2);
  return c;
}

bool WaitForIds(const fs::path& out, int n, absl::Duration max) {
  const absl::Time end = absl::Now() + max;
  int bad;
  while (absl::Now() < end) {
    if (static_cast<int>(ReadIds(out, &bad).size()) >= n) return true;
    absl::SleepFor(absl::Milliseconds(100));
  }
  return static_cast<int>(ReadIds(out, &bad).size()) >= n;
}

TEST(SinksSyslogE2E, EventsArriveIntact) {
  if (::access(kRsyslogd, X_OK) != 0) GTEST_SKIP() << "rsyslogd not installed (apt-get install rsyslog)";
  const fs::path dir = TempDir("intact");
  const int port = testing::FreePort();
  Rsyslog rs(dir, port);
  ASSERT_TRUE(rs.Start()) << "rsyslogd did not start; see " << dir;
  auto sink = MakeSink(SyslogConfig(port, dir / "spool"));
  ASSERT_TRUE(sink.ok()) << sink.status();
  const int n = 500;
  for (int i = 0; i < n; ++i) (*sink)->Submit(Line(i));
  (*sink)->Flush(absl::Seconds(10));
  ASSERT_TRUE(WaitForIds(rs.out(), n, absl::Seconds(15)));
  int bad = 0;
  const auto ids = ReadIds(rs.out(), &bad);
  EXPECT_EQ(bad, 0);
  EXPECT_EQ(ids.size(), static_cast<size_t>(n));
  for (const auto& [id, count] : ids) EXPECT_EQ(count, 1) << id;  // healthy path: no duplicates
  EXPECT_EQ((*sink)->stats().dropped(), 0u);
}

TEST(SinksSyslogE2E, RestartUnderLoadLosesNothing) {
  if (::access(kRsyslogd, X_OK) != 0) GTEST_SKIP() << "rsyslogd not installed (apt-get install rsyslog)";
  const fs::path dir = TempDir("restart");
  const int port = testing::FreePort();
  Rsyslog rs(dir, port);
  ASSERT_TRUE(rs.Start());
  auto sink = MakeSink(SyslogConfig(port, dir / "spool"));
  ASSERT_TRUE(sink.ok());
  const int n = 4000;
  std::atomic<int> submitted{0};
  std::thread producer([&] {
    for (int i = 0; i < n; ++i) {
      (*sink)->Submit(Line(i));
      submitted = i + 1;
      if (i % 4 == 0) absl::SleepFor(absl::Milliseconds(1));
    }
  });
  while (submitted < 800) absl::SleepFor(absl::Milliseconds(5));
  rs.Stop();
  absl::SleepFor(absl::Seconds(3));
  const SinkStats down = (*sink)->stats();
  ASSERT_TRUE(rs.Start());
  producer.join();
  (*sink)->Flush(absl::Seconds(30));
  ASSERT_TRUE(WaitForIds(rs.out(), n, absl::Seconds(30)));
  int bad = 0;
  const auto ids = ReadIds(rs.out(), &bad);
  EXPECT_EQ(bad, 0);
  ASSERT_EQ(ids.size(), static_cast<size_t>(n));
  int dups = 0;
  for (const auto& [id, count] : ids) dups += count - 1;
  const SinkStats st = (*sink)->stats();
  EXPECT_GT(down.spooled, 0u) << "the outage did not reach the spool";
  EXPECT_GT(st.replayed, 0u);
  EXPECT_EQ(st.dropped(), 0u);
  EXPECT_EQ(st.spool_bytes, 0u);
  // Duplicates can only come from the bounded re-send of the tail written before the break.
  EXPECT_LE(static_cast<uint64_t>(dups), st.resent);
  std::printf("restart: %d events, spooled %lu, replayed %lu, resent %lu, duplicates %d\n", n,
              static_cast<unsigned long>(st.spooled), static_cast<unsigned long>(st.replayed),
              static_cast<unsigned long>(st.resent), dups);
}

}  // namespace
}  // namespace writ::sinks
