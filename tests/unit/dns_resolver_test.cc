// The stub's per-task verdicts against a scripted upstream: what is pinned, what the task is told,
// and that every bad answer is a counted refusal with no pin.
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <functional>

#include "dns/resolver.h"

namespace writ::dns {
namespace {

using Script = std::function<absl::StatusOr<std::vector<uint8_t>>(const Message& q)>;

class FakeUpstream : public Upstream {
 public:
  explicit FakeUpstream(Script s) : s_(std::move(s)) {}
  absl::StatusOr<std::vector<uint8_t>> Exchange(absl::Span<const uint8_t> query) override {
    ++calls;
    auto q = Parse(query);
    if (!q.ok()) return absl::InternalError("resolver sent a bad query");
    return s_(*q);
  }
  int calls = 0;

 private:
  Script s_;
};

Record A(const std::string& name, uint8_t last, uint32_t ttl) {
  Record r;
  r.name = name;
  r.type = kTypeA;
  r.ttl = ttl;
  r.addr = {127, 0, 0, last};
  return r;
}
Record Cname(const std::string& name, const std::string& target, uint32_t ttl = 300) {
  Record r;
  r.name = name;
  r.type = kTypeCname;
  r.ttl = ttl;
  r.target = target;
  return r;
}

NamePolicy Policy() {
  NamePolicy p;
  p.Allow(*NamePattern::Parse("api.example.com"));
  p.Allow(*NamePattern::Parse("*.cdn.example"));
  return p;
}

struct Fixture {
  explicit Fixture(Script s) : up(std::move(s)), res(config, Policy(), &up) {}
  Outcome Ask(const std::string& name, uint16_t type = kTypeA) {
    return res.Handle(*BuildQuery(42, name, type), kMaxMessage, now);
  }
  ResolverConfig config{{}, absl::Seconds(1), 5, 600, 8};
  FakeUpstream up;
  TaskResolver res;
  absl::Time now = absl::FromUnixSeconds(100000);
};

TEST(DnsResolver, AllowedNamePinnedAndAnswered) {
  Fixture f(
      [](const Message& q) { return BuildResponse(q, kNoError, {A(q.questions[0].name, 7, 60)}); });
  Outcome o = f.Ask("API.example.com");
  EXPECT_EQ(o.event.verdict, "allowed");
  EXPECT_EQ(o.event.rule, "api.example.com");
  ASSERT_EQ(o.pins.size(), 1u);
  EXPECT_EQ(PinAddrText(o.pins[0]), "127.0.0.7");
  EXPECT_EQ(o.pins[0].expires, f.now + absl::Seconds(60));
  EXPECT_EQ(o.event.answers, std::vector<std::string>{"127.0.0.7"});
  auto reply = Parse(o.reply);
  ASSERT_TRUE(reply.ok());
  EXPECT_EQ(reply->header.id, 42);
  EXPECT_EQ(reply->header.rcode, kNoError);
  ASSERT_EQ(reply->answers.size(), 1u);
  EXPECT_EQ(f.res.pins().size(), 1u);
}

TEST(DnsResolver, NotAllowedRefusedWithoutAskingUpstream) {
  Fixture f(
      [](const Message& q) { return BuildResponse(q, kNoError, {A(q.questions[0].name, 7, 60)}); });
  Outcome o = f.Ask("evil.org");
  EXPECT_EQ(o.event.verdict, "refused");
  EXPECT_EQ(Parse(o.reply)->header.rcode, kRefused);
  EXPECT_EQ(f.up.calls, 0);
  EXPECT_TRUE(o.pins.empty());
  EXPECT_EQ(f.res.counters().at("not allowed"), 1u);
  EXPECT_EQ(f.Ask("cdn.example").event.verdict, "refused");  // the wildcard needs a label
  EXPECT_EQ(f.Ask("x.y.cdn.example").event.verdict, "allowed");
}

TEST(DnsResolver, TtlClampedBothWays) {
  uint32_t ttl = 1;
  Fixture f([&](const Message& q) {
    return BuildResponse(q, kNoError, {A(q.questions[0].name, 1, ttl)});
  });
  Outcome lo = f.Ask("api.example.com");
  EXPECT_EQ(lo.event.ttl, 5u);
  EXPECT_EQ(lo.pins[0].expires, f.now + absl::Seconds(5));
  EXPECT_EQ(Parse(lo.reply)->answers[0].ttl, 1u);  // the task is told the record's own TTL
  ttl = 86400;
  f.now += absl::Seconds(10);  // the first pin has expired
  Outcome hi = f.Ask("api.example.com");
  EXPECT_EQ(hi.event.ttl, 600u);
  EXPECT_EQ(hi.pins[0].expires, f.now + absl::Seconds(600));
  EXPECT_EQ(Parse(hi.reply)->answers[0].ttl, 600u);  // and never longer than the pin lives
  EXPECT_EQ(f.res.pins().Expire(f.now + absl::Seconds(599)).size(), 0u);
  EXPECT_EQ(f.res.pins().Expire(f.now + absl::Seconds(600)).size(), 1u);
  EXPECT_EQ(f.res.pins().size(), 0u);
}

TEST(DnsResolver, CnameChainInOneAnswerAndStrayRecordsIgnored) {
  Fixture f([](const Message& q) {
    return BuildResponse(
        q, kNoError,
        {Cname("api.example.com", "edge.cdn.net", 30), Cname("edge.cdn.net", "e1.cdn.net"),
         A("e1.cdn.net", 9, 120), A("bank.example", 66, 120)});
  });
  Outcome o = f.Ask("api.example.com");
  EXPECT_EQ(o.event.verdict, "allowed");
  EXPECT_EQ(o.event.cnames, (std::vector<std::string>{"edge.cdn.net", "e1.cdn.net"}));
  ASSERT_EQ(o.pins.size(), 1u);  // bank.example's address was not on the chain
  EXPECT_EQ(PinAddrText(o.pins[0]), "127.0.0.9");
  EXPECT_EQ(o.pins[0].name, "api.example.com");
  EXPECT_EQ(o.event.ttl, 30u);  // the chain's shortest TTL
  EXPECT_EQ(Parse(o.reply)->answers.size(), 3u);
}

TEST(DnsResolver, CnameTargetAskedAgain) {
  Fixture f([](const Message& q) {
    if (q.questions[0].name == "api.example.com")
      return BuildResponse(q, kNoError, {Cname("api.example.com", "t.net")});
    return BuildResponse(q, kNoError, {A("t.net", 3, 60)});
  });
  Outcome o = f.Ask("api.example.com");
  EXPECT_EQ(f.up.calls, 2);
  ASSERT_EQ(o.pins.size(), 1u);
  EXPECT_EQ(PinAddrText(o.pins[0]), "127.0.0.3");
}

TEST(DnsResolver, CnameTargetWithNoDataIsAskedOnce) {
  Fixture f([](const Message& q) {
    if (q.questions[0].name == "api.example.com") {
      return BuildResponse(q, kNoError, {Cname("api.example.com", "t.net")});
    }
    return BuildResponse(q, kNoError, {});
  });
  Outcome o = f.Ask("api.example.com");
  EXPECT_EQ(f.up.calls, 2);
  EXPECT_EQ(o.event.verdict, "allowed");
  EXPECT_TRUE(o.pins.empty());
  EXPECT_EQ(Parse(o.reply)->answers.size(), 1u);  // the CNAME, no address
}

TEST(DnsResolver, CnameLoopAndLongChainRefused) {
  Fixture loop([](const Message& q) {
    return BuildResponse(q, kNoError,
                         {Cname("api.example.com", "b.net"), Cname("b.net", "api.example.com")});
  });
  Outcome o = loop.Ask("api.example.com");
  EXPECT_EQ(o.event.verdict, "failed");
  EXPECT_EQ(o.event.reason, "CNAME loop");
  EXPECT_EQ(Parse(o.reply)->header.rcode, kServFail);
  EXPECT_EQ(loop.res.pins().size(), 0u);
  // Each answer points one step further: the re-query budget ends it.
  Fixture chain([](const Message& q) {
    return BuildResponse(q, kNoError, {Cname(q.questions[0].name, "x" + q.questions[0].name)});
  });
  Outcome c = chain.Ask("api.example.com");
  EXPECT_EQ(c.event.verdict, "failed");
  EXPECT_EQ(c.event.reason, "CNAME chain too long");
  EXPECT_LE(chain.up.calls, 9);
}

TEST(DnsResolver, BadUpstreamAnswersAreCountedRefusals) {
  int mode = 0;
  Fixture f([&](const Message& q) -> absl::StatusOr<std::vector<uint8_t>> {
    std::vector<uint8_t> good = BuildResponse(q, kNoError, {A(q.questions[0].name, 5, 60)});
    switch (mode) {
      case 0:
        good.resize(good.size() - 2);
        return good;  // cut inside the A record
      case 1:
        good[2] |= 0x02;
        return good;  // TC set (even over TCP)
      case 2:
        good[1] ^= 1;
        return good;  // another id
      case 3:
        return absl::UnavailableError("connection refused");
      case 4:
        return absl::DeadlineExceededError("timeout");
      default: {
        std::vector<Record> huge;
        for (int i = 0; i < 65; ++i) huge.push_back(A(q.questions[0].name, i, 60));
        return BuildResponse(q, kNoError, huge);
      }
    }
  });
  const char* reasons[] = {"malformed upstream answer",
                           "truncated upstream answer",
                           "upstream answer does not match the query",
                           "upstream unreachable",
                           "upstream timed out",
                           "malformed upstream answer"};
  for (mode = 0; mode < 6; ++mode) {
    Outcome o = f.Ask("api.example.com");
    EXPECT_EQ(o.event.verdict, "failed") << mode;
    EXPECT_EQ(o.event.reason.rfind(reasons[mode], 0), 0u) << mode << ": " << o.event.reason;
    EXPECT_TRUE(o.pins.empty());
    EXPECT_EQ(Parse(o.reply)->header.rcode, kServFail);
  }
  EXPECT_EQ(f.res.pins().size(), 0u);
}

TEST(DnsResolver, MalformedQueriesFromTheTask) {
  Fixture f([](const Message& q) { return BuildResponse(q, kNoError, {}); });
  Outcome tiny = f.res.Handle(std::vector<uint8_t>{1, 2, 3}, kMaxUdpReply, f.now);
  EXPECT_EQ(tiny.event.verdict, "malformed");
  EXPECT_TRUE(tiny.reply.empty());
  auto q = *BuildQuery(9, "api.example.com", kTypeA);
  q.push_back(0);
  q[13] = 0xC0;  // first label length becomes a pointer to itself
  q[14] = 12;
  Outcome loop = f.res.Handle(q, kMaxUdpReply, f.now);
  EXPECT_EQ(loop.event.verdict, "malformed");
  EXPECT_EQ(Parse(loop.reply)->header.rcode, kFormErr);
  EXPECT_EQ(Parse(loop.reply)->header.id, 9);
  EXPECT_EQ(f.up.calls, 0);
}

TEST(DnsResolver, NxdomainPassesThroughUnpinned) {
  Fixture f([](const Message& q) { return BuildResponse(q, kNxDomain, {}); });
  Outcome o = f.Ask("api.example.com");
  EXPECT_EQ(o.event.verdict, "allowed");
  EXPECT_EQ(o.event.rcode, kNxDomain);
  EXPECT_EQ(Parse(o.reply)->header.rcode, kNxDomain);
  EXPECT_TRUE(o.pins.empty());
}

TEST(DnsResolver, PinTableBounded) {
  uint8_t next = 0;
  Fixture f([&](const Message& q) {
    return BuildResponse(q, kNoError, {A(q.questions[0].name, ++next, 60)});
  });
  f.config.max_pins = 3;
  TaskResolver res(f.config, Policy(), &f.up);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(res.Handle(*BuildQuery(1, "a" + std::to_string(i) + ".cdn.example", kTypeA),
                         kMaxMessage, f.now)
                  .event.verdict,
              "allowed");
  }
  Outcome full = res.Handle(*BuildQuery(1, "z.cdn.example", kTypeA), kMaxMessage, f.now);
  EXPECT_EQ(full.event.verdict, "failed");
  EXPECT_EQ(full.event.reason, "pin table full");
  EXPECT_EQ(res.pins().size(), 3u);
  Outcome later =
      res.Handle(*BuildQuery(1, "z.cdn.example", kTypeA), kMaxMessage, f.now + absl::Seconds(61));
  EXPECT_EQ(later.event.verdict, "allowed");  // expired pins made room
  EXPECT_EQ(res.pins().size(), 1u);
}

TEST(DnsResolver, ExfilFindingOnAllowedAndRefusedNames) {
  Fixture f([](const Message& q) { return BuildResponse(q, kNoError, {}); });
  Outcome o = f.Ask("q8zk3jx0vtm2a9wplr4ye7bn.evil.org");
  EXPECT_EQ(o.event.verdict, "refused");
  ASSERT_EQ(o.findings.size(), 1u);
  EXPECT_EQ(o.findings[0].kind, "high_entropy_label");
}

TEST(DnsResolver, ResolvConfAndServers) {
  EXPECT_TRUE(ParseServer("127.0.0.1").ok());
  EXPECT_TRUE(ParseServer("127.0.0.1:5353").ok());
  EXPECT_TRUE(ParseServer("::1").ok());
  EXPECT_TRUE(ParseServer("[::1]:5353").ok());
  EXPECT_FALSE(ParseServer("dns.google").ok());
  EXPECT_FALSE(ParseServer("127.0.0.1:0").ok());
  EXPECT_FALSE(UpstreamsFromResolvConf("/nonexistent/resolv.conf").ok());
}

}  // namespace
}  // namespace writ::dns
