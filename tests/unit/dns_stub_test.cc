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
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "dns/stub_server.h"
#include "testlib/dnsmasq.h"

namespace writ::dns {
namespace {

using ::writ::testlib::Dnsmasq;
using ::writ::testlib::OnPath;

std::vector<uint8_t> Ask(uint16_t port, const std::vector<uint8_t>& q, bool tcp) {
  return testlib::AskDns(port, q, tcp);
}

class DnsStub : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!OnPath("dnsmasq"))
      GTEST_SKIP() << "dnsmasq not installed (scripts/setup.sh installs dnsmasq-base)";
    ASSERT_TRUE(dnsmasq_.Start(
        {"--host-record=api.example.com,127.0.0.7", "--host-record=v6.example.com,::1",
         "--host-record=a.cdn.example,127.0.0.8", "--host-record=evil.org,127.0.0.66",
         "--cname=alias.example.com,a.cdn.example"},
        "api.example.com"))
        << "dnsmasq did not answer";
    upstream_port_ = dnsmasq_.port();

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
    dnsmasq_.Stop();
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

  Dnsmasq dnsmasq_;
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
  dnsmasq_.Stop();
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

// ---- one task cannot hold up another's queries
// -----------------------------------------------------

// An upstream that answers every A query with 127.0.0.9, and takes 3 s for names under slow.test.
class SlowUpstream : public Upstream {
 public:
  absl::StatusOr<std::vector<uint8_t>> Exchange(absl::Span<const uint8_t> query) override {
    auto q = Parse(query);
    if (!q.ok()) return q.status();
    if (absl::EndsWith(q->questions[0].name, ".slow.test")) absl::SleepFor(absl::Seconds(3));
    Record r;
    r.name = q->questions[0].name;
    r.type = kTypeA;
    r.ttl = 30;
    r.addr[0] = 127;
    r.addr[3] = 9;
    return BuildResponse(*q, kNoError, {r});
  }
};

class DnsStubConcurrency : public ::testing::Test {
 protected:
  void SetUp() override {
    ResolverConfig c;
    StubCallbacks cb;
    // The task is named by the client's source port, which the test registers.
    cb.task_of = [this](const QuerySource& src) -> std::optional<std::string> {
      const uint16_t port = ntohs(reinterpret_cast<const sockaddr_in*>(&src.peer)->sin_port);
      absl::MutexLock l(&mu_);
      auto it = owner_.find(port);
      if (it == owner_.end()) return std::nullopt;
      return it->second;
    };
    stub_ = std::make_unique<StubServer>(c, std::make_unique<SlowUpstream>(), cb);
    for (const char* t : {"task-a", "task-b"}) {
      NamePolicy p;
      p.Allow(NamePattern::Any());
      stub_->AddTask(t, std::move(p));
    }
    ASSERT_TRUE(stub_->Start("127.0.0.1:0").ok());
  }
  // A client socket of `task` (UDP or TCP), connected to the stub.
  int Client(const std::string& task, bool tcp) {
    int fd = socket(AF_INET, tcp ? SOCK_STREAM : SOCK_DGRAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    socklen_t l = sizeof(a);
    getsockname(fd, reinterpret_cast<sockaddr*>(&a), &l);
    {
      absl::MutexLock lock(&mu_);
      owner_[ntohs(a.sin_port)] = task;
    }
    a.sin_port = htons(stub_->port());
    EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    timeval tv{3, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return fd;
  }
  // Asks over a UDP client of `task`, as a resolver library does: three tries, 1 s each; the
  // rcode, or -1 when none was answered.
  int AskUdp(const std::string& task, const std::string& name) {
    int fd = Client(task, false);
    timeval tv{1, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    auto q = *BuildQuery(9, name, kTypeA);
    std::vector<uint8_t> buf(kMaxMessage);
    ssize_t n = -1;
    for (int attempt = 0; attempt < 3 && n <= 0; ++attempt) {
      send(fd, q.data(), q.size(), 0);
      n = recv(fd, buf.data(), buf.size(), 0);
    }
    close(fd);
    if (n <= 0) return -1;
    buf.resize(n);
    auto m = Parse(buf);
    return m.ok() ? m->header.rcode : -2;
  }

  absl::Mutex mu_;
  absl::flat_hash_map<uint16_t, std::string> owner_;
  std::unique_ptr<StubServer> stub_;
};

TEST_F(DnsStubConcurrency, AConnectionThatSendsNothingDelaysNoQuery) {
  // Task A opens TCP connections to the stub and sends nothing (the stub gives each 2 s).
  std::vector<int> idle;
  for (int i = 0; i < 8; ++i) idle.push_back(Client("task-a", true));
  const absl::Time t0 = absl::Now();
  EXPECT_EQ(AskUdp("task-b", "api.example.com"), kNoError);
  // Not a latency claim: served while the idle connections are all still open.
  EXPECT_LT(absl::Now() - t0, absl::Seconds(1));
  for (int fd : idle) close(fd);
}

TEST_F(DnsStubConcurrency, ASlowUpstreamAnswerForOneTaskDelaysNoOtherTask) {
  std::thread slow([&] { AskUdp("task-a", "x.slow.test"); });  // gives up after 3 x 1 s
  // Task A's query is with the upstream (3 s) and the pin-expiry tick (every second) has come
  // round while it is: neither a worker nor the loop thread may be waiting on task A now. Waiting
  // on it would answer task B only when A's upstream does, about 1.9 s from now.
  absl::SleepFor(absl::Milliseconds(1100));
  const absl::Time t0 = absl::Now();
  EXPECT_EQ(AskUdp("task-b", "api.example.com"), kNoError);
  EXPECT_LT(absl::Now() - t0, absl::Seconds(1)) << "answered after task A's slow one";
  slow.join();
}

TEST_F(DnsStubConcurrency, AFloodFromOneTaskIsBoundedAndCounted) {
  // 200 queries at once from task A's one socket: at most the per-task share is queued, the rest
  // dropped and counted, and task B is still answered.
  int fd = Client("task-a", false);
  auto q = *BuildQuery(1, "y.slow.test", kTypeA);
  for (int i = 0; i < 200; ++i) send(fd, q.data(), q.size(), 0);
  EXPECT_EQ(AskUdp("task-b", "api.example.com"), kNoError);
  close(fd);
  // Dropped queries are counted, not lost silently (the loop reads them all within a moment).
  for (int i = 0; i < 50 && stub_->counters().dropped == 0; ++i)
    absl::SleepFor(absl::Milliseconds(20));
  EXPECT_GT(stub_->counters().dropped, 0u);
}

TEST_F(DnsStubConcurrency, RemovingATaskWhileItsQueryIsUpstreamDoesNotWait) {
  std::thread slow([&] { AskUdp("task-a", "z.slow.test"); });
  absl::SleepFor(absl::Milliseconds(200));
  const absl::Time t0 = absl::Now();
  stub_->RemoveTask("task-a");  // writd's pipeline thread calls this at task end
  EXPECT_LT(absl::Now() - t0, absl::Milliseconds(500));
  slow.join();
  EXPECT_EQ(stub_->PinCount("task-a"), 0u);
}

}  // namespace
}  // namespace writ::dns
