// DNS egress (#17) end to end: a real writd with `dns:` on, Debian's dnsmasq as its upstream
// (loopback, names that point at loopback listeners, 2 s TTLs), and agents that resolve and connect
// the way programs do (glibc's getaddrinfo through getent and bash's /dev/tcp, dig for a resolver
// of the task's own choosing). `getent hosts`, not `ahostsv4`: glibc's AI_ADDRCONFIG, which ahosts
// uses, returns no IPv4 address without a non-loopback IPv4 interface (the VM has only lo), and
// asks nothing. The task's intent allows `*.api.writ.test` on one port and nothing else: what it
// reaches, it reaches by its own DNS answers, pinned in the kernel for their TTL.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testlib/dnsmasq.h"
#include "testlib/listener.h"
#include "testlib/writd_fixture.h"

namespace writ {
namespace {

using json = nlohmann::json;
using ::testing::HasSubstr;
using testlib::CmdResult;
using testlib::SuiteWritd;
using testlib::WritdInstance;

constexpr char kAgent[] = "spiffe://example.org/agent/dns";

using testlib::Listener;

std::string Intents(uint16_t port) {
  return absl::StrCat(R"(apiVersion: writ.dev/v1
kind: Intent
name: dns-agent
network:
  connect:
    allow: [{host: "*.api.writ.test", ports: [)",
                      port, R"(]}]
on_violation: [alert]
mode: enforce
---
apiVersion: writ.dev/v1
kind: Intent
name: dns-watch
network:
  connect:
    allow: [{host: "*.api.writ.test", ports: [)",
                      port, R"(]}]
on_violation: [alert]
mode: monitor
)");
}

class DnsE2e : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (geteuid() != 0) return;  // SuiteWritd skips each test with the reason
    if (!testlib::OnPath("dnsmasq")) {
      skip_ = "dnsmasq not installed (scripts/setup.sh installs dnsmasq-base)";
      return;
    }
    l4_ = new Listener(AF_INET, "127.0.0.7", 0);
    l4b_ = new Listener(AF_INET, "127.0.0.8", l4_->port);
    l6_ = new Listener(AF_INET6, "::1", l4_->port);
    dnsmasq_ = new testlib::Dnsmasq();
    if (!dnsmasq_->Start(
            {"--host-record=a.api.writ.test,127.0.0.7", "--host-record=v6.api.writ.test,::1",
             "--host-record=long.api.writ.test,127.0.0.7,60",
             "--host-record=a.cdn.writ.test,127.0.0.8",
             "--cname=alias.api.writ.test,a.cdn.writ.test",
             "--host-record=evil.writ.test,127.0.0.66"},
            "a.api.writ.test")) {
      skip_ = "dnsmasq did not answer";
      return;
    }
    WritdInstance::Options o;
    o.mode = "enforce";
    o.policies["dns.yaml"] = Intents(l4_->port);
    o.extra_config =
        absl::StrCat("dns:\n  listen: 127.0.0.1:0\n  upstreams: [\"127.0.0.1:", dnsmasq_->port(),
                     "\"]\n  min_ttl: 1\n  max_ttl: 60\n  upstream_timeout: 1s\n");
    writd_.Start(o);
  }
  static void TearDownTestSuite() {
    writd_.Stop();
    delete dnsmasq_;
    delete l4_;
    delete l4b_;
    delete l6_;
  }
  void SetUp() override {
    if (!skip_.empty()) GTEST_SKIP() << skip_;
    WRIT_SUITE_WRITD_READY(writd_);
    ASSERT_NE(l4_->port, 0);
    ASSERT_EQ(l4b_->port, l4_->port) << "127.0.0.8: the port is taken";
    ASSERT_EQ(l6_->port, l4_->port) << "::1: the port is taken";
    port_ = l4_->port;
  }

  // writ run --agent kAgent --intent INTENT -- /bin/sh -c SCRIPT; the task id.
  std::string Run(const std::string& script, CmdResult* out, const char* intent = "dns-agent") {
    *out =
        writd_->Writ({"run", "--agent", kAgent, "--intent", intent, "--", "/bin/sh", "-c", script},
                     std::chrono::seconds(30));
    std::string task = testlib::TaskIdFrom(out->err);
    EXPECT_FALSE(task.empty()) << out->err;
    EXPECT_FALSE(writd_
                     ->WaitForEvent([&](const json& e) {
                       return e.value("kind", "") == "task_end" &&
                              e["agent"].value("task_id", "") == task;
                     })
                     .is_null());
    return task;
  }
  // `bash -c 'exec 3<>/dev/tcp/HOST/PORT'`: prints "ok HOST" or "fail HOST <error>".
  std::string Connect(const std::string& host) const {
    return absl::StrCat("if /bin/bash -c 'exec 3<>/dev/tcp/", host, "/", port_,
                        "' 2>/tmp/.writ-dns-err.$$; then echo ok ", host, "; else echo fail ", host,
                        " $(cat /tmp/.writ-dns-err.$$); fi; rm -f /tmp/.writ-dns-err.$$; ");
  }
  json Find(const std::string& task, const std::function<bool(const json&)>& p) const {
    for (const json& e : writd_->TaskEvents(task)) {
      if (p(e)) return e;
    }
    return json();
  }
  // The dns event of the task's query for `name` (of type `qtype`; "": any).
  json Dns(const std::string& task, const std::string& name, const std::string& qtype = "A") const {
    return Find(task, [&](const json& e) {
      return e.value("kind", "") == "dns" && e["dns"].value("query", "") == name &&
             (qtype.empty() || e["dns"].value("qtype", "") == qtype);
    });
  }
  json ConnectTo(const std::string& task, const std::string& ip, int nth = 0) const {
    for (const json& e : writd_->TaskEvents(task)) {
      if (e.value("kind", "") == "connect" && e["network"].value("dst_ip", "") == ip &&
          e["network"].value("dst_port", 0) == port_ && nth-- == 0) {
        return e;
      }
    }
    return json();
  }

  static SuiteWritd writd_;
  static testlib::Dnsmasq* dnsmasq_;
  static Listener *l4_, *l4b_, *l6_;
  static std::string skip_;
  uint16_t port_ = 0;
};
SuiteWritd DnsE2e::writd_;
testlib::Dnsmasq* DnsE2e::dnsmasq_ = nullptr;
Listener* DnsE2e::l4_ = nullptr;
Listener* DnsE2e::l4b_ = nullptr;
Listener* DnsE2e::l6_ = nullptr;
std::string DnsE2e::skip_;

TEST_F(DnsE2e, AnAllowedNameResolvesAndConnectsByItsOwnAnswerV4V6AndThroughACname) {
  CmdResult r;
  const std::string task =
      Run(absl::StrCat("getent hosts a.api.writ.test | head -1; ", Connect("a.api.writ.test"),
                       Connect("v6.api.writ.test"), Connect("alias.api.writ.test")),
          &r);
  EXPECT_THAT(r.out, HasSubstr("127.0.0.7"));
  EXPECT_THAT(r.out, HasSubstr("ok a.api.writ.test"));
  EXPECT_THAT(r.out, HasSubstr("ok v6.api.writ.test"));
  EXPECT_THAT(r.out, HasSubstr("ok alias.api.writ.test"));
  json d = Dns(task, "a.api.writ.test");
  ASSERT_FALSE(d.is_null()) << "no dns event";
  EXPECT_EQ(d["dns"]["verdict"], "allowed");
  EXPECT_EQ(d["dns"]["rule"], "*.api.writ.test");
  EXPECT_EQ(d["dns"]["answers"], json::array({"127.0.0.7"}));
  EXPECT_THAT(d["dns"].value("server", ""), ::testing::EndsWith(":53"))
      << "the resolver the task addressed, not the stub";
  EXPECT_EQ(d["agent"]["task_id"], task);
  for (const auto& [ip, host] :
       std::vector<std::pair<std::string, std::string>>{{"127.0.0.7", "a.api.writ.test"},
                                                        {"::1", "v6.api.writ.test"},
                                                        {"127.0.0.8", "alias.api.writ.test"}}) {
    json c = ConnectTo(task, ip);
    ASSERT_FALSE(c.is_null()) << ip;
    EXPECT_EQ(c["network"].value("result", -99), 0) << ip;
    EXPECT_EQ(c["network"].value("host", ""), host) << ip;
    EXPECT_EQ(c.value("verdict", ""), "allow") << ip;
  }
  json cn = Dns(task, "alias.api.writ.test");
  ASSERT_FALSE(cn.is_null());
  EXPECT_THAT(cn["dns"]["cnames"].dump(), HasSubstr("a.cdn.writ.test"));
  // Counted: `writ status` (and /metrics, writ_dns_*).
  const std::string st = writd_->Writ({"status"}).out;
  EXPECT_THAT(st, ::testing::ContainsRegex("dns_allowed=[1-9]"));
  EXPECT_THAT(st, ::testing::ContainsRegex("dns_pins_written=[1-9]"));
  EXPECT_THAT(st, HasSubstr("dns_pin_errors=0"));
}

TEST_F(DnsE2e, ANameTheIntentDoesNotAllowIsRefusedAndSoIsItsAddress) {
  CmdResult r;
  const std::string task = Run(
      absl::StrCat("getent hosts evil.writ.test || echo resolve-refused; ", Connect("127.0.0.66")),
      &r);
  EXPECT_THAT(r.out, HasSubstr("resolve-refused"));
  EXPECT_THAT(r.out, HasSubstr("fail 127.0.0.66"));
  EXPECT_THAT(r.out, HasSubstr("Operation not permitted"));
  json d = Dns(task, "evil.writ.test");
  ASSERT_FALSE(d.is_null());
  EXPECT_EQ(d["dns"]["verdict"], "refused");
  EXPECT_EQ(d["dns"]["rcode"], "REFUSED");
  EXPECT_EQ(d["verdict"], "violation");
  EXPECT_EQ(d["outcome"], "prevented");
  EXPECT_EQ(d["finding"]["rule"], "dns-agent/network.dns");
  EXPECT_FALSE(d["dns"].contains("answers")) << "the upstream is never asked";
  json c = Find(task, [](const json& e) {
    return e.value("kind", "") == "connect" && e["network"].value("dst_ip", "") == "127.0.0.66";
  });
  ASSERT_FALSE(c.is_null());
  EXPECT_EQ(c["outcome"], "prevented");
  EXPECT_FALSE(c["network"].contains("host"));
}

TEST_F(DnsE2e, AnAddressTheTaskDidNotResolveIsRefusedEvenWhenAnAllowedNameHasIt) {
  CmdResult r;
  const std::string task = Run(Connect("127.0.0.7"), &r);
  EXPECT_THAT(r.out, HasSubstr("fail 127.0.0.7"));
  EXPECT_THAT(r.out, HasSubstr("Operation not permitted"));
  json c = ConnectTo(task, "127.0.0.7");
  ASSERT_FALSE(c.is_null());
  EXPECT_EQ(c["verdict"], "violation");
  EXPECT_EQ(c["outcome"], "prevented");
}

TEST_F(DnsE2e, AResolverOfTheTasksOwnChoosingOnPort53IsTheStubAnyway) {
  if (!testlib::OnPath("dig")) GTEST_SKIP() << "dig not installed (bind9-dnsutils)";
  CmdResult r;
  const std::string dig = "dig +time=3 +tries=1 ";
  const std::string task =
      Run(absl::StrCat(dig, "+short @192.0.2.1 a.api.writ.test; ", dig,
                       "+tcp +short @2001:db8::53 a.api.writ.test; ", dig,
                       "@198.51.100.9 evil.writ.test | grep -o 'status: [A-Z]*'; ",
                       Connect("127.0.0.7")),
          &r);
  // Both answers came from writd's stub (the documentation addresses reach nothing else), the
  // refusal too, and the pin dig's answer made lets the connect by address through.
  EXPECT_THAT(r.out, HasSubstr("127.0.0.7\n127.0.0.7\n"));
  EXPECT_THAT(r.out, HasSubstr("status: REFUSED"));
  EXPECT_THAT(r.out, HasSubstr("ok 127.0.0.7"));
  std::vector<json> q;
  for (const json& e : writd_->TaskEvents(task)) {
    if (e.value("kind", "") == "dns") q.push_back(e);
  }
  ASSERT_GE(q.size(), 3u);
  auto has = [&](const std::string& server, const std::string& transport) {
    return std::any_of(q.begin(), q.end(), [&](const json& e) {
      return e["dns"].value("server", "") == server && e["dns"].value("transport", "") == transport;
    });
  };
  EXPECT_TRUE(has("192.0.2.1:53", "udp")) << writd_->TaskEvents(task).size();
  EXPECT_TRUE(has("[2001:db8::53]:53", "tcp"));
  EXPECT_TRUE(has("198.51.100.9:53", "udp"));
  // No connect to port 53 is reported: each query is a dns event.
  EXPECT_TRUE(Find(task, [](const json& e) {
                return e.value("kind", "") == "connect" && e["network"].value("dst_port", 0) == 53;
              }).is_null());
}

TEST_F(DnsE2e, APinLivesForItsTtlAndNoLonger) {
  CmdResult r;
  // dnsmasq's records live 2 s; min_ttl 1 keeps that. Resolved, connected by address; 4 s later the
  // same address is refused until the name is resolved again.
  const std::string task =
      Run(absl::StrCat("getent hosts a.api.writ.test >/dev/null; ", Connect("127.0.0.7"),
                       "sleep 4; ", Connect("127.0.0.7"),
                       "getent hosts a.api.writ.test >/dev/null; ", Connect("127.0.0.7")),
          &r);
  EXPECT_THAT(r.out, HasSubstr("ok 127.0.0.7\nfail 127.0.0.7"));
  EXPECT_THAT(r.out, HasSubstr("Operation not permitted\nok 127.0.0.7"));
  json first = ConnectTo(task, "127.0.0.7", 0), late = ConnectTo(task, "127.0.0.7", 1),
       again = ConnectTo(task, "127.0.0.7", 2);
  ASSERT_FALSE(first.is_null() || late.is_null() || again.is_null());
  EXPECT_EQ(first["network"].value("host", ""), "a.api.writ.test");
  EXPECT_EQ(late["outcome"], "prevented");
  EXPECT_FALSE(late["network"].contains("host")) << "the pin had expired";
  EXPECT_EQ(again["network"].value("host", ""), "a.api.writ.test");
  json d = Dns(task, "a.api.writ.test");
  ASSERT_FALSE(d.is_null());
  EXPECT_EQ(d["dns"].value("ttl", 0), 2);
}

TEST_F(DnsE2e, NamesFromEtcHostsAskNoDnsAndGetNoPin) {
  CmdResult r;
  const std::string task = Run(Connect("localhost"), &r);
  EXPECT_THAT(r.out, HasSubstr("fail localhost"));
  EXPECT_TRUE(Dns(task, "localhost", "").is_null()) << "glibc answers localhost from /etc/hosts";
}

TEST_F(DnsE2e, AnExfiltrationShapedQueryIsAFinding) {
  const std::string label(60, 'q');  // one 60-character label: data in the name
  CmdResult r;
  const std::string name = label + ".api.writ.test";
  const std::string task = Run(absl::StrCat("getent hosts ", name, "; true"), &r);
  json d = Dns(task, name);
  ASSERT_FALSE(d.is_null());
  EXPECT_EQ(d["verdict"], "violation");
  EXPECT_EQ(d["finding"]["rule"], "dns-agent/network.dns.exfiltration");
  EXPECT_THAT(d["finding"].value("reason", ""), HasSubstr("long_label"));
}

TEST_F(DnsE2e, AMonitorModeTaskIsAnsweredAndTheNameReportedAsWouldDeny) {
  CmdResult r;
  const std::string task = Run("getent hosts evil.writ.test | head -1", &r, "dns-watch");
  EXPECT_THAT(r.out, HasSubstr("127.0.0.66"));
  json d = Dns(task, "evil.writ.test");
  ASSERT_FALSE(d.is_null());
  EXPECT_EQ(d["dns"]["verdict"], "allowed");
  EXPECT_EQ(d["verdict"], "violation");
  EXPECT_EQ(d["outcome"], "would_deny");
}

// Last: it restarts the suite's writd. A pin (of a name with a 60 s TTL: a restart takes seconds)
// outlives writd (the kernel holds it, with its name):
// a connect by address after `kill -9` and a restart is allowed and named, and DNS works again
// through the new writd's stub.
TEST_F(DnsE2e, PinsAndTheirNamesOutliveAWritdRestart) {
  const std::string d = writd_->dir();
  for (const char* f : {"/resolved", "/go"}) std::filesystem::remove(d + f);
  const std::string script = absl::StrCat(
      "getent hosts long.api.writ.test >/dev/null; echo > ", d, "/resolved; while [ ! -e ", d,
      "/go ]; do sleep 0.05; done; ", Connect("127.0.0.7"), "getent hosts evil.writ.test || echo ",
      "refused-again; ", Connect("a.api.writ.test"));
  pid_t run = writd_->WritAsync(
      {"run", "--agent", kAgent, "--intent", "dns-agent", "--", "/bin/sh", "-c", script}, "run");
  bool resolved = false;
  for (int i = 0; i < 200 && !resolved; ++i) {  // bounded: 10 s
    resolved = std::filesystem::exists(d + "/resolved");
    if (!resolved) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(resolved) << writd_->log();
  EXPECT_EQ(writd_->Kill9(), 128 + SIGKILL);
  ASSERT_TRUE(writd_->Restart().ok()) << writd_->log();
  std::ofstream(d + "/go") << "1";
  CmdResult r = writd_->WaitAsync(run, "run", std::chrono::seconds(30));
  EXPECT_THAT(r.out, HasSubstr("ok 127.0.0.7")) << writd_->log();
  EXPECT_THAT(r.out, HasSubstr("refused-again"));
  EXPECT_THAT(r.out, HasSubstr("ok a.api.writ.test")) << writd_->log();
  const std::string task = testlib::TaskIdFrom(r.err);
  ASSERT_FALSE(task.empty()) << r.err;
  json c = ConnectTo(task, "127.0.0.7");
  ASSERT_FALSE(c.is_null()) << writd_->log();
  EXPECT_EQ(c["network"].value("host", ""), "long.api.writ.test") << "named from the kernel's pin";
  EXPECT_EQ(c.value("verdict", ""), "allow");
  json refused = Dns(task, "evil.writ.test");
  ASSERT_FALSE(refused.is_null()) << "the restarted writd's stub answers the task";
  EXPECT_EQ(refused["dns"]["verdict"], "refused");
}

}  // namespace
}  // namespace writ
