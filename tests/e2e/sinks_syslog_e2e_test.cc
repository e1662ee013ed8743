// Syslog sink against a real rsyslogd on 127.0.0.1 (imtcp, octet-counted RFC 5424 frames, omfile):
// events arrive intact; rsyslogd stopped for a few seconds under load then restarted loses nothing
// (spool replay plus re-send of the unacknowledged tail; duplicates carry the same id).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "../testlib/rsyslog.h"
#include "../unit/sinks_log_capture.h"
#include "../unit/sinks_test_receiver.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "sinks/sink.h"

namespace writ::sinks {
namespace {

namespace fs = std::filesystem;
using testlib::HaveTlsTools;
using testlib::kNoTls;
using testlib::kRsyslogd;
using testlib::OpensslPki;
using testlib::Rsyslog;
using testlib::ServerTls;

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
  if (::access(kRsyslogd, X_OK) != 0)
    GTEST_SKIP() << "rsyslogd not installed (apt-get install rsyslog)";
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
  if (::access(kRsyslogd, X_OK) != 0)
    GTEST_SKIP() << "rsyslogd not installed (apt-get install rsyslog)";
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

// ---- TLS (RFC 5425) against rsyslog's OpenSSL stream driver
// --------------------------------------

SinkConfig TlsConfig(int port, const fs::path& spool, const std::string& ca) {
  SinkConfig c = SyslogConfig(port, spool);
  c.tls.enabled = true;
  c.tls.ca = ca;
  c.tls.verify = true;
  return c;
}

uint64_t Errors(const SinkStats& s, SinkError e) { return s.errors[static_cast<size_t>(e)]; }

TEST(SinksSyslogTlsE2E, EventsArriveIntactOverTls) {
  if (!HaveTlsTools()) GTEST_SKIP() << kNoTls;
  const fs::path dir = TempDir("tls");
  OpensslPki pki(dir / "pki");
  ServerTls tls;
  ASSERT_TRUE(pki.MakeCa("siem") &&
              pki.Issue("siem", "rsyslog", "IP:127.0.0.1,DNS:localhost", &tls))
      << "openssl failed; see " << pki.log();
  const int port = testing::FreePort();
  Rsyslog rs(dir, port, &tls);
  ASSERT_TRUE(rs.Start()) << "rsyslogd did not start; see " << dir / "rsyslogd.log";
  auto sink = MakeSink(TlsConfig(port, dir / "spool", tls.ca));
  ASSERT_TRUE(sink.ok()) << sink.status();
  const int n = 500;
  for (int i = 0; i < n; ++i) (*sink)->Submit(Line(i));
  (*sink)->Flush(absl::Seconds(10));
  ASSERT_TRUE(WaitForIds(rs.out(), n, absl::Seconds(15))) << (*sink)->stats().last_error;
  int bad = 0;
  const auto ids = ReadIds(rs.out(), &bad);
  EXPECT_EQ(bad, 0);  // framing intact: every line is a submitted event, byte for byte
  EXPECT_EQ(ids.size(), static_cast<size_t>(n));
  for (const auto& [id, count] : ids) EXPECT_EQ(count, 1) << id;
  const SinkStats st = (*sink)->stats();
  EXPECT_EQ(st.dropped(), 0u);
  EXPECT_EQ(st.retries, 0u) << st.last_error;
  (*sink)->Stop();
  rs.Stop();
  EXPECT_FALSE(rs.running());
  if (!HasFailure()) fs::remove_all(dir);
}

// rsyslog first presents a certificate for another host name, then one from a CA writd does not
// trust: writd sends nothing, counts each refusal as tls_verify, keeps every event in the spool.
// Then rsyslog presents a valid certificate: the events arrive, in order, exactly once.
TEST(SinksSyslogTlsE2E, UnverifiableCertificateThenValid) {
  if (!HaveTlsTools()) GTEST_SKIP() << kNoTls;
  const fs::path dir = TempDir("tlsbad");
  OpensslPki pki(dir / "pki");
  ServerTls good, wrong_name, wrong_ca;
  ASSERT_TRUE(pki.MakeCa("siem") && pki.MakeCa("rogue") &&
              pki.Issue("siem", "good", "IP:127.0.0.1", &good) &&
              pki.Issue("siem", "wrongname", "DNS:siem.example,IP:10.9.9.9", &wrong_name) &&
              pki.Issue("rogue", "wrongca", "IP:127.0.0.1", &wrong_ca))
      << "openssl failed; see " << pki.log();
  const int port = testing::FreePort();
  Rsyslog rs(dir, port, &wrong_name);
  ASSERT_TRUE(rs.Start()) << "see " << dir / "rsyslogd.log";
  testing::LogCapture log;
  auto sink = MakeSink(TlsConfig(port, dir / "spool", good.ca));
  ASSERT_TRUE(sink.ok()) << sink.status();
  const int n = 300;
  for (int i = 0; i < n / 2; ++i) (*sink)->Submit(Line(i));
  auto refused = [&](uint64_t at_least) {
    const absl::Time end = absl::Now() + absl::Seconds(10);
    while (absl::Now() < end) {
      if (Errors((*sink)->stats(), SinkError::kTlsVerify) >= at_least) return true;
      absl::SleepFor(absl::Milliseconds(20));
    }
    return false;
  };
  ASSERT_TRUE(refused(2)) << (*sink)->stats().last_error;
  EXPECT_EQ((*sink)->stats().last_error,
            "TLS handshake with 127.0.0.1: certificate verify failed: IP address mismatch");
  EXPECT_GE(log.Count("certificate verify failed: IP address mismatch"), 1) << log.text();

  rs.Stop();
  rs.Configure(&wrong_ca);
  ASSERT_TRUE(rs.Start());
  for (int i = n / 2; i < n; ++i) (*sink)->Submit(Line(i));
  const uint64_t before = Errors((*sink)->stats(), SinkError::kTlsVerify);
  ASSERT_TRUE(refused(before + 2));
  SinkStats st = (*sink)->stats();
  // rsyslog sends its CA along with its certificate, so OpenSSL names the untrusted self-signed
  // root.
  EXPECT_EQ(st.last_error,
            "TLS handshake with 127.0.0.1: certificate verify failed: self-signed certificate in "
            "certificate chain");
  EXPECT_GE(log.Count("certificate verify failed: self-signed certificate in certificate chain"),
            1);
  EXPECT_EQ(st.delivered, 0u);
  // Every failure was a refused certificate, or a refused connection while rsyslog restarted.
  EXPECT_EQ(Errors(st, SinkError::kTlsVerify) + Errors(st, SinkError::kConnect), st.retries);
  int bad = 0;
  EXPECT_TRUE(ReadIds(rs.out(), &bad).empty()) << "an event went to a receiver that did not verify";
  ASSERT_TRUE([&] {
    for (int i = 0; i < 500 && (*sink)->stats().spooled < static_cast<uint64_t>(n); ++i) {
      absl::SleepFor(absl::Milliseconds(20));
    }
    return (*sink)->stats().spooled == static_cast<uint64_t>(n);
  }()) << (*sink)->stats().spooled;

  rs.Stop();
  rs.Configure(&good);
  ASSERT_TRUE(rs.Start());
  ASSERT_TRUE(WaitForIds(rs.out(), n, absl::Seconds(20))) << (*sink)->stats().last_error;
  (*sink)->Flush(absl::Seconds(10));
  std::ifstream in(rs.out());
  std::string l;
  int next = 0;
  while (std::getline(in, l)) {
    EXPECT_EQ(l, Line(next)) << "out of order or altered at " << next;
    ++next;
  }
  EXPECT_EQ(next, n);  // exactly once: nothing had been sent before the certificate verified
  st = (*sink)->stats();
  EXPECT_EQ(st.replayed, static_cast<uint64_t>(n));
  EXPECT_EQ(st.dropped(), 0u);
  EXPECT_EQ(st.spool_bytes, 0u);
  (*sink)->Stop();
  rs.Stop();
  if (!HasFailure()) fs::remove_all(dir);
}

// ---- a full disk under the spool
// -------------------------------------------------------------------

// The spool lives on a 1 MiB tmpfs the test mounts; the receiver is down. Events beyond what fits
// are dropped and counted exactly (dropped_spool_full), the drop is logged once, the sink stays up,
// and when rsyslog comes back the kept events arrive in order, followed by new ones.
TEST(SinksSpoolE2E, FullDiskDropsCountedAndReplaysInOrder) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to mount a tmpfs";
  if (::access(kRsyslogd, X_OK) != 0)
    GTEST_SKIP() << "rsyslogd not installed (apt-get install rsyslog)";
  const fs::path dir = TempDir("fulldisk");
  const fs::path spool = dir / "spool";
  fs::create_directories(spool);
  if (::mount("writ-e2e-spool", spool.c_str(), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
              "size=1m,mode=0700") != 0) {
    GTEST_SKIP() << "cannot mount tmpfs: " << std::strerror(errno);
  }
  struct Unmount {
    fs::path p;
    ~Unmount() { ::umount2(p.c_str(), MNT_DETACH); }
  } unmount{spool};

  const int port = testing::FreePort();
  testing::LogCapture log;
  SinkConfig c = SyslogConfig(port, spool);  // spool_max_bytes stays 64 MiB: the disk is the limit
  auto sink = MakeSink(c);
  ASSERT_TRUE(sink.ok()) << sink.status();
  const int n = 3000;  // ~3 MB of ~1 KB lines: well past 1 MiB
  auto big = [](int i) {
    return absl::StrCat(R"({"id":"e2e-)", i, R"(","kind":"open","file":{"path":"/)",
                        std::string(900, 'p'), R"("}})");
  };
  for (int i = 0; i < n; ++i) (*sink)->Submit(big(i));
  const absl::Time end = absl::Now() + absl::Seconds(30);
  SinkStats st;
  while (absl::Now() < end) {
    st = (*sink)->stats();
    if (st.spooled + st.dropped_spool_full == static_cast<uint64_t>(n)) break;
    absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_EQ(st.spooled + st.dropped_spool_full, static_cast<uint64_t>(n));
  EXPECT_GT(st.spooled, 500u);
  EXPECT_GT(st.dropped_spool_full, 1000u);
  EXPECT_EQ(st.dropped(), st.dropped_spool_full);
  EXPECT_EQ(log.Count("sink syslog: spool full, dropping events"), 1) << log.text();
  EXPECT_GE(log.Count("No space left on device"), 1) << log.text();
  // The spool holds whole lines only (a write cut short by ENOSPC was cut back).
  {
    std::ifstream in(spool / "syslog.spool");
    std::string l;
    uint64_t lines = 0;
    while (std::getline(in, l)) {
      ASSERT_EQ(l, big(static_cast<int>(lines))) << "spool line " << lines;
      ++lines;
    }
    EXPECT_EQ(lines, st.spooled);
  }
  // Still up and accounting while the disk is full.
  (*sink)->Submit(big(n));
  const uint64_t kept = st.spooled;

  Rsyslog rs(dir, port);
  ASSERT_TRUE(rs.Start());
  (*sink)->Flush(absl::Seconds(30));
  for (int i = n + 1; i < n + 11; ++i) (*sink)->Submit(big(i));
  (*sink)->Flush(absl::Seconds(30));
  st = (*sink)->stats();
  EXPECT_EQ(st.spool_bytes, 0u);
  EXPECT_EQ(st.replayed, kept);
  EXPECT_EQ(st.submitted, st.delivered + st.dropped()) << "every event delivered or counted";
  // In order: the kept prefix 0..kept-1 (the spool filled from the front), then what came later.
  std::vector<std::string> got;
  for (int i = 0; i < 300 && got.size() < kept + 10; ++i) {
    got.clear();
    std::ifstream in(rs.out());
    for (std::string l; std::getline(in, l);) got.push_back(l);
    absl::SleepFor(absl::Milliseconds(50));
  }
  ASSERT_GE(got.size(), kept + 10);
  for (uint64_t i = 0; i < kept; ++i) ASSERT_EQ(got[i], big(static_cast<int>(i))) << i;
  EXPECT_EQ(got.back(), big(n + 10));
  std::printf(
      "full disk: %d events, kept %lu on a 1 MiB tmpfs, dropped %lu (counted), replayed %lu\n", n,
      static_cast<unsigned long>(kept), static_cast<unsigned long>(st.dropped_spool_full),
      static_cast<unsigned long>(st.replayed));
  (*sink)->Stop();
  rs.Stop();
  if (::umount2(spool.c_str(), MNT_DETACH) == 0 && !HasFailure()) {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
}

}  // namespace
}  // namespace writ::sinks
