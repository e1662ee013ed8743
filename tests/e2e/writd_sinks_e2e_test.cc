// The real writd's syslog sinks: over TLS to a real rsyslogd (every event arrives once, as OCSF),
// and two failing ones watched through GET /metrics and the log: one talks TLS to a receiver
// (openssl s_server) whose certificate does not verify, one has a spool too small for the events.
// writd stays up, logs the certificate error and the spool drop (once), and the writ_sink_*
// counters say exactly what happened.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testlib/listener.h"
#include "testlib/rsyslog.h"
#include "testlib/writd_fixture.h"

namespace writ::testlib {
namespace {

using ::testing::HasSubstr;

constexpr char kOne[] = R"(apiVersion: writ.dev/v1
kind: Intent
name: t-one
exec: {deny: [/usr/bin/sudo]}
)";

uint16_t FreePort() {
  Listener l(AF_INET);
  const uint16_t p = l.port;
  close(l.fd);
  return p;
}

// The value of one exposition line, e.g. Metric(m, R"(writ_sink_spooled_total{sink="a"})"); -1 if
// absent.
double Metric(const std::string& exposition, const std::string& series) {
  std::istringstream in(exposition);
  for (std::string l; std::getline(in, l);) {
    if (l.rfind(series + " ", 0) == 0) return std::stod(l.substr(series.size() + 1));
  }
  return -1;
}

int CountOf(const std::string& text, const std::string& needle) {
  int n = 0;
  for (size_t p = text.find(needle); p != std::string::npos; p = text.find(needle, p + 1)) n++;
  return n;
}

TEST(WritdSinks, BadCertificateAndFullSpoolShowInMetrics) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (BPF, cgroups)";
  if (access(kOpenssl, X_OK) != 0)
    GTEST_SKIP() << "openssl not installed (apt-get install openssl)";
  char tmpl[] = "/tmp/writ-sinks-pki-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string pki = tmpl;
  // The receiver's certificate is self-signed; writd trusts another CA.
  auto sh = [&](const std::string& cmd) {
    return std::system(absl::StrCat("timeout 60 ", cmd, " >>", pki, "/openssl.log 2>&1").c_str()) ==
           0;
  };
  ASSERT_TRUE(sh(absl::StrCat(kOpenssl,
                              " req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
                              "-keyout ",
                              pki, "/rx.key -out ", pki,
                              "/rx.crt -days 1 -subj /CN=rx "
                              "-addext subjectAltName=IP:127.0.0.1")) &&
              sh(absl::StrCat(kOpenssl,
                              " req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
                              "-keyout ",
                              pki, "/ca.key -out ", pki, "/ca.crt -days 1 -subj /CN=ca")))
      << Slurp(pki + "/openssl.log");
  const uint16_t tls_port = FreePort();
  pid_t rx = fork();
  if (rx == 0) {
    const std::string accept = absl::StrCat("127.0.0.1:", tls_port);
    const std::string cert = pki + "/rx.crt", key = pki + "/rx.key";
    freopen("/dev/null", "r", stdin);
    freopen((pki + "/s_server.log").c_str(), "w", stdout);
    execl(kOpenssl, kOpenssl, "s_server", "-quiet", "-accept", accept.c_str(), "-cert",
          cert.c_str(), "-key", key.c_str(), nullptr);
    _exit(127);
  }
  struct Reap {
    pid_t pid;
    std::string dir;
    ~Reap() {
      kill(pid, SIGTERM);
      waitpid(pid, nullptr, 0);
      std::filesystem::remove_all(dir);
    }
  } reap{rx, pki};

  const int http_port = FreePort();
  WritdInstance w;
  WritdInstance::Options o;
  o.mode = "record";
  o.policies = {{"one.yaml", kOne}};
  o.extra_args = {"--http", absl::StrCat("127.0.0.1:", http_port)};
  o.extra_config = absl::StrCat(
      "sinks:\n"
      "  - {type: syslog, name: siem-tls, address: '127.0.0.1:",
      tls_port, "', tls: {ca: ", pki, "/ca.crt}, spool_dir: ", pki,
      "/spool}\n"
      "  - {type: syslog, name: siem-full, address: '127.0.0.1:",
      FreePort(), "', spool_dir: ", pki, "/spool, spool_max_bytes: 2048}\n");
  ASSERT_TRUE(w.Start(o).ok()) << w.log();
  CmdResult r = w.Writ({"run", "--agent", "spiffe://example.org/a", "--", "/bin/sh", "-c",
                        "for i in 1 2 3 4 5 6 7 8; do cat /etc/hostname > /dev/null; done"});
  ASSERT_EQ(r.exit_code, 0) << r.err;

  std::string m;
  auto scrape = [&] {
    m = RunCommand(
            {"/usr/bin/curl", "-sf", absl::StrCat("http://127.0.0.1:", http_port, "/metrics")})
            .out;
  };
  for (int i = 0; i < 100; i++) {
    scrape();
    if (Metric(m, R"(writ_sink_errors_total{sink="siem-tls",reason="tls_verify"})") >= 2 &&
        Metric(m, R"(writ_sink_dropped_total{sink="siem-full",reason="spool_full"})") > 0 &&
        Metric(m, R"(writ_sink_spooled_total{sink="siem-tls"})") > 0) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_GE(Metric(m, R"(writ_sink_errors_total{sink="siem-tls",reason="tls_verify"})"), 2) << m;
  EXPECT_EQ(Metric(m, R"(writ_sink_errors_total{sink="siem-tls",reason="tls_verify"})"),
            Metric(m, R"(writ_sink_retries_total{sink="siem-tls"})"));
  EXPECT_EQ(Metric(m, R"(writ_sink_delivered_total{sink="siem-tls"})"), 0);
  EXPECT_GT(Metric(m, R"(writ_sink_spooled_total{sink="siem-tls"})"), 0);
  EXPECT_GT(Metric(m, R"(writ_sink_spool_bytes{sink="siem-tls"})"), 0);
  EXPECT_EQ(Metric(m, R"(writ_sink_dropped_total{sink="siem-tls",reason="spool_full"})"), 0);
  EXPECT_GT(Metric(m, R"(writ_sink_errors_total{sink="siem-full",reason="connect"})"), 0);
  const double dropped =
      Metric(m, R"(writ_sink_dropped_total{sink="siem-full",reason="spool_full"})");
  EXPECT_GT(dropped, 0) << m;
  EXPECT_EQ(Metric(m, R"(writ_sink_dropped_total{sink="siem-full",reason="queue_full"})"), 0);
  EXPECT_THAT(m, HasSubstr("# TYPE writ_sink_errors_total counter"));
  EXPECT_THAT(m, HasSubstr("# TYPE writ_sink_replayed_total counter"));

  const std::string log = w.log();
  EXPECT_THAT(log,
              HasSubstr(absl::StrCat("sink siem-tls: TLS handshake with 127.0.0.1: certificate "
                                     "verify failed: self-signed certificate")));
  EXPECT_EQ(
      CountOf(log, "sink siem-full: spool full, dropping events (spool_max_bytes (2048) reached)"),
      1)
      << log;
  EXPECT_EQ(w.Writ({"status"}).exit_code, 0) << "writd must stay up";
  const int stop_rc = w.Stop();
  EXPECT_EQ(stop_rc, 0)
      << w.log();  // the log after the stop: it says how long each shutdown step took
}

// writd's own syslog sink, TLS with verification on, against a real rsyslogd whose certificate
// comes from a CA made with the openssl CLI: every event of the task, as OCSF, arrives once and
// intact.
TEST(WritdSinks, DeliversToRsyslogOverTls) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (BPF, cgroups)";
  if (!HaveTlsTools()) GTEST_SKIP() << kNoTls;
  char tmpl[] = "/tmp/writ-sinks-rsyslog-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  OpensslPki pki(dir + "/pki");
  ServerTls tls;
  ASSERT_TRUE(pki.MakeCa("siem") && pki.Issue("siem", "rsyslog", "IP:127.0.0.1", &tls))
      << Slurp(pki.log());
  const uint16_t port = FreePort();
  Rsyslog rs(dir, port, &tls);
  ASSERT_TRUE(rs.Start()) << Slurp(dir + "/rsyslogd.log");

  const int http_port = FreePort();
  WritdInstance w;
  WritdInstance::Options o;
  o.mode = "record";
  o.policies = {{"one.yaml", kOne}};
  o.extra_args = {"--http", absl::StrCat("127.0.0.1:", http_port)};
  o.extra_config = absl::StrCat(
      "sinks:\n  - {type: syslog, name: siem, format: ocsf, address: '127.0.0.1:", port,
      "', tls: {ca: ", tls.ca, "}, spool_dir: ", dir, "/spool}\n");
  ASSERT_TRUE(w.Start(o).ok()) << w.log();
  CmdResult r = w.Writ({"run", "--agent", "spiffe://example.org/a", "--", "/bin/sh", "-c",
                        "cat /etc/hostname > /dev/null; ls / > /dev/null"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string task = TaskIdFrom(r.err);
  ASSERT_FALSE(w.WaitForEvent([&](const nlohmann::json& e) {
                  return e["kind"] == "task_end" && e["agent"]["task_id"] == task;
                }).is_null());
  std::set<std::string> want;
  for (const auto& e : w.TaskEvents(task)) want.insert(e["id"].get<std::string>());
  ASSERT_GT(want.size(), 3u);

  std::map<std::string, int> got;
  for (int i = 0; i < 100; i++) {
    got.clear();
    std::ifstream in(rs.out());
    for (std::string l; std::getline(in, l);) {
      auto j = nlohmann::json::parse(l, nullptr, /*allow_exceptions=*/false);
      ASSERT_FALSE(j.is_discarded()) << "not one intact OCSF record per message: " << l;
      ASSERT_TRUE(j.contains("class_uid")) << l;
      got[j["metadata"]["uid"].get<std::string>()]++;
    }
    bool all = true;
    for (const auto& id : want) all = all && got.count(id);
    if (all) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  for (const auto& id : want) EXPECT_EQ(got[id], 1) << "event " << id;
  const std::string m =
      RunCommand({"/usr/bin/curl", "-sf", absl::StrCat("http://127.0.0.1:", http_port, "/metrics")})
          .out;
  EXPECT_GE(Metric(m, R"(writ_sink_delivered_total{sink="siem"})"),
            static_cast<double>(want.size()));
  EXPECT_EQ(Metric(m, R"(writ_sink_retries_total{sink="siem"})"), 0) << w.log();
  EXPECT_EQ(w.Stop(), 0);
  rs.Stop();
  if (!HasFailure()) std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace writ::testlib
