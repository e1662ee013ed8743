// The stub's sockets against a real upstream: Debian's dnsmasq on a free loopback port, serving
// names that point at loopback with short TTLs, asked through the stub over UDP and TCP by our own
// client and by dig. Skips (with the reason) when dnsmasq is not installed (scripts/setup.sh
// installs it).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "dns/stub_server.h"

namespace writ::dns {
namespace {

bool OnPath(const char* prog) {
  return system(absl::StrCat("command -v ", prog, " >/dev/null 2>&1").c_str()) == 0;
}

uint16_t FreePort() {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  socklen_t l = sizeof(a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &l);
  close(fd);
  return ntohs(a.sin_port);
}

// One UDP or TCP exchange with 127.0.0.1:port; empty on timeout.
std::vector<uint8_t> Ask(uint16_t port, const std::vector<uint8_t>& q, bool tcp) {
  int fd = socket(AF_INET, tcp ? SOCK_STREAM : SOCK_DGRAM, 0);
  timeval tv{2, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::vector<uint8_t> out;
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0) {
    if (tcp) {
      std::vector<uint8_t> framed{static_cast<uint8_t>(q.size() >> 8),
                                  static_cast<uint8_t>(q.size())};
      framed.insert(framed.end(), q.begin(), q.end());
      send(fd, framed.data(), framed.size(), MSG_NOSIGNAL);
      uint8_t len[2];
      if (recv(fd, len, 2, MSG_WAITALL) == 2) {
        out.resize(len[0] << 8 | len[1]);
        if (recv(fd, out.data(), out.size(), MSG_WAITALL) != static_cast<ssize_t>(out.size()))
          out.clear();
      }
    } else {
      send(fd, q.data(), q.size(), 0);
      out.resize(kMaxMessage);
      ssize_t n = recv(fd, out.data(), out.size(), 0);
      out.resize(n > 0 ? n : 0);
    }
  }
  close(fd);
  return out;
}

class DnsStub : public ::testing::Test {
 protected:
  // Starts dnsmasq on a fresh free port; true once it answers (bounded: about 5 s), false (and
  // reaped) when it exited or never answered.
  bool StartDnsmasq() {
    upstream_port_ = FreePort();
    std::vector<std::string> args = {"dnsmasq",
                                     "--keep-in-foreground",
                                     "--no-resolv",
                                     "--no-hosts",
                                     "--bind-interfaces",
                                     "--listen-address=127.0.0.1",
                                     absl::StrCat("--port=", upstream_port_),
                                     "--pid-file=",
                                     "--local-ttl=2",
                                     "--host-record=api.example.com,127.0.0.7",
                                     "--host-record=v6.example.com,::1",
                                     "--host-record=a.cdn.example,127.0.0.8",
                                     "--host-record=evil.org,127.0.0.66",
                                     "--cname=alias.example.com,a.cdn.example",
                                     "--log-facility=/dev/null"};
    if (geteuid() == 0) args.push_back("--user=root");
    pid_ = fork();
    if (pid_ == 0) {
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execvp("dnsmasq", argv.data());
      _exit(127);
    }
    // Ready when it answers (bounded: 50 tries over about 5 s).
    auto probe = *BuildQuery(1, "api.example.com", kTypeA);
    for (int i = 0; i < 50; ++i) {
      if (!Ask(upstream_port_, probe, false).empty()) return true;
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) {  // exited: its port was taken
        pid_ = -1;
        return false;
      }
      usleep(100 * 1000);
    }
    kill(pid_, SIGTERM);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
    return false;
  }

  void SetUp() override {
    if (!OnPath("dnsmasq"))
      GTEST_SKIP() << "dnsmasq not installed (scripts/setup.sh installs dnsmasq-base)";
    // A free port can be taken between FreePort and dnsmasq's bind (ctest runs tests in parallel):
    // dnsmasq then exits at once. Another port, at most three times.
    bool up = false;
    for (int attempt = 0; attempt < 3 && !up; ++attempt) {
      up = StartDnsmasq();
    }
    ASSERT_TRUE(up) << "dnsmasq did not answer on 127.0.0.1:" << upstream_port_;

    ResolverConfig c;
    c.upstreams = {absl::StrCat("127.0.0.1:", upstream_port_)};
    c.min_ttl = 1;
    c.max_ttl = 60;
    c.upstream_timeout = absl::Milliseconds(500);
    std::vector<sockaddr_storage> servers{*ParseServer(c.upstreams[0])};
    StubCallbacks cb;
    cb.task_of = [](const QuerySource&) { return std::optional<std::string>("task-1"); };
    cb.on_query = [this](const std::string& task, const Outcome& o, const QuerySource&) {
      absl::MutexLock l(&mu_);
      events_.push_back(o.event);
    };
    cb.on_expired = [this](const std::string&, const std::vector<Pin>& pins) {
      absl::MutexLock l(&mu_);
      expired_ += pins.size();
    };
    stub_ = std::make_unique<StubServer>(c, MakeUpstream(servers, c.upstream_timeout), cb);
    NamePolicy p;
    p.Allow(*NamePattern::Parse("api.example.com"));
    p.Allow(*NamePattern::Parse("v6.example.com"));
    p.Allow(*NamePattern::Parse("*.example.com"));
    stub_->AddTask("task-1", std::move(p));
    absl::Status st = stub_->Start("127.0.0.1:0");
    ASSERT_TRUE(st.ok()) << st;
  }
  void TearDown() override {
    stub_.reset();
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      waitpid(pid_, nullptr, 0);
    }
  }
  Message AskStub(const std::string& name, uint16_t type, bool tcp = false) {
    auto r = Parse(Ask(stub_->port(), *BuildQuery(77, name, type), tcp), {1, 64});
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : Message{};
  }
  DnsEvent LastEvent() {
    absl::MutexLock l(&mu_);
    return events_.empty() ? DnsEvent{} : events_.back();
  }

  pid_t pid_ = -1;
  uint16_t upstream_port_ = 0;
  std::unique_ptr<StubServer> stub_;
  absl::Mutex mu_;
  std::vector<DnsEvent> events_;
  size_t expired_ = 0;
};

TEST_F(DnsStub, AllowedNameOverUdpAndTcp) {
  Message m = AskStub("api.example.com", kTypeA);
  EXPECT_EQ(m.header.id, 77);
  EXPECT_EQ(m.header.rcode, kNoError);
  ASSERT_EQ(m.answers.size(), 1u);
  EXPECT_EQ(AddrText(m.answers[0]), "127.0.0.7");
  EXPECT_EQ(LastEvent().verdict, "allowed");
  Message t = AskStub("v6.example.com", kTypeAaaa, /*tcp=*/true);
  ASSERT_EQ(t.answers.size(), 1u);
  EXPECT_EQ(AddrText(t.answers[0]), "::1");
  EXPECT_EQ(stub_->PinCount("task-1"), 2u);
}

TEST_F(DnsStub, NotAllowedIsRefused) {
  Message m = AskStub("evil.org", kTypeA);
  EXPECT_EQ(m.header.rcode, kRefused);
  EXPECT_TRUE(m.answers.empty());
  EXPECT_EQ(LastEvent().verdict, "refused");
  EXPECT_EQ(stub_->PinCount("task-1"), 0u);
  EXPECT_EQ(stub_->counters().refused, 1u);
}

TEST_F(DnsStub, WildcardAndCnameFromDnsmasq) {
  Message m = AskStub("alias.example.com", kTypeA);
  ASSERT_EQ(m.answers.size(), 2u);
  EXPECT_EQ(m.answers[0].type, kTypeCname);
  EXPECT_EQ(AddrText(m.answers[1]), "127.0.0.8");
  DnsEvent e = LastEvent();
  EXPECT_EQ(e.rule, "*.example.com");
  EXPECT_EQ(e.cnames, std::vector<std::string>{"a.cdn.example"});
}

TEST_F(DnsStub, PinsExpireAfterTheClampedTtl) {
  ASSERT_EQ(AskStub("api.example.com", kTypeA).answers.size(), 1u);
  EXPECT_EQ(LastEvent().ttl, 2u);  // dnsmasq --local-ttl=2, within [1, 60]
  EXPECT_EQ(stub_->PinCount("task-1"), 1u);
  // Expiry runs on the stub's thread at least once a second: bounded wait of 5 s.
  for (int i = 0; i < 50 && stub_->PinCount("task-1") != 0; ++i) usleep(100 * 1000);
  EXPECT_EQ(stub_->PinCount("task-1"), 0u);
  absl::MutexLock l(&mu_);
  EXPECT_EQ(expired_, 1u);
}

TEST_F(DnsStub, GarbageGetsNoPinAndTheStubKeepsServing) {
  std::vector<uint8_t> junk(40, 0xC0);
  junk[2] = 0x01;
  Ask(stub_->port(), junk, false);
  Ask(stub_->port(), {1, 2, 3}, false);  // too short to answer: dropped (the client times out)
  Ask(stub_->port(), junk, true);
  EXPECT_EQ(stub_->PinCount("task-1"), 0u);
  EXPECT_GE(stub_->counters().malformed, 2u);
  EXPECT_EQ(AskStub("api.example.com", kTypeA).answers.size(), 1u);
}

TEST_F(DnsStub, UnreachableUpstreamIsServfail) {
  kill(pid_, SIGTERM);
  waitpid(pid_, nullptr, 0);
  pid_ = -1;
  Message m = AskStub("api.example.com", kTypeA);
  EXPECT_EQ(m.header.rcode, kServFail);
  EXPECT_EQ(LastEvent().verdict, "failed");
  EXPECT_EQ(stub_->PinCount("task-1"), 0u);
}

TEST_F(DnsStub, DigThroughTheStub) {
  if (!OnPath("dig")) GTEST_SKIP() << "dig not installed (bind9-dnsutils)";
  auto dig = [&](const std::string& args) {
    std::string cmd =
        absl::StrCat("dig +time=2 +tries=1 -p ", stub_->port(), " @127.0.0.1 ", args, " 2>&1");
    std::string out;
    FILE* f = popen(cmd.c_str(), "r");
    char buf[512];
    while (f && fgets(buf, sizeof(buf), f)) out += buf;
    if (f) pclose(f);
    return out;
  };
  std::string ok = dig("+short api.example.com A");
  EXPECT_EQ(ok, "127.0.0.7\n");
  std::string tcp = dig("+tcp +short v6.example.com AAAA");
  EXPECT_EQ(tcp, "::1\n");
  std::string refused = dig("evil.org A");
  EXPECT_NE(refused.find("status: REFUSED"), std::string::npos) << refused;
}

}  // namespace
}  // namespace writ::dns
