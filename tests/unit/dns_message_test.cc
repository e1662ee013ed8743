// DNS wire format: queries and answers round-trip, compression is followed and its loops refused,
// every bound (header, labels, names, counts, record lengths) is an error, not a crash.
#include <gtest/gtest.h>

#include "dns/exfil.h"
#include "dns/message.h"
#include "dns/name_policy.h"

namespace writ::dns {
namespace {

std::vector<uint8_t> Hdr(uint16_t id, uint16_t flags, uint16_t qd, uint16_t an) {
  return {static_cast<uint8_t>(id >> 8),
          static_cast<uint8_t>(id),
          static_cast<uint8_t>(flags >> 8),
          static_cast<uint8_t>(flags),
          0,
          static_cast<uint8_t>(qd),
          0,
          static_cast<uint8_t>(an),
          0,
          0,
          0,
          0};
}

TEST(DnsMessage, QueryRoundTrip) {
  auto q = BuildQuery(0x1234, "API.Example.COM.", kTypeAaaa);
  ASSERT_TRUE(q.ok());
  auto m = Parse(*q);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->header.id, 0x1234);
  EXPECT_TRUE(m->header.rd);
  EXPECT_FALSE(m->header.qr);
  ASSERT_EQ(m->questions.size(), 1u);
  EXPECT_EQ(m->questions[0].name, "api.example.com");
  EXPECT_EQ(m->questions[0].type, kTypeAaaa);
}

TEST(DnsMessage, ResponseRoundTripAndTruncation) {
  auto q = Parse(*BuildQuery(7, "a.example.com", kTypeA));
  ASSERT_TRUE(q.ok());
  std::vector<Record> ans;
  Record c;
  c.name = "a.example.com";
  c.type = kTypeCname;
  c.ttl = 30;
  c.target = "b.cdn.net";
  ans.push_back(c);
  for (int i = 0; i < 40; ++i) {
    Record r;
    r.name = "b.cdn.net";
    r.type = kTypeA;
    r.ttl = 60;
    r.addr = {10, 0, 0, static_cast<uint8_t>(i)};
    ans.push_back(r);
  }
  auto full = Parse(BuildResponse(*q, kNoError, ans), {1, 64});
  ASSERT_TRUE(full.ok()) << full.status();
  EXPECT_TRUE(full->header.qr);
  EXPECT_FALSE(full->header.tc);
  ASSERT_EQ(full->answers.size(), 41u);
  EXPECT_EQ(full->answers[0].target, "b.cdn.net");
  EXPECT_EQ(AddrText(full->answers[40]), "10.0.0.39");
  auto small = BuildResponse(*q, kNoError, ans, kMaxUdpReply);
  EXPECT_LE(small.size(), kMaxUdpReply);
  auto cut = Parse(small, {1, 64});
  ASSERT_TRUE(cut.ok());
  EXPECT_TRUE(cut->header.tc);
  EXPECT_LT(cut->answers.size(), 41u);
}

TEST(DnsMessage, CompressionFollowedBackwards) {
  auto w = Hdr(1, 0x8180, 1, 1);
  // question: a.example.com A IN at offset 12
  for (uint8_t b : std::initializer_list<uint8_t>{1, 'a', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 3,
                                                  'c', 'o', 'm', 0})
    w.push_back(b);
  for (uint8_t b : std::initializer_list<uint8_t>{0, 1, 0, 1}) w.push_back(b);
  // answer: name = pointer to 12, A, IN, ttl 5, rdlen 4
  for (uint8_t b :
       std::initializer_list<uint8_t>{0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 5, 0, 4, 127, 0, 0, 9})
    w.push_back(b);
  auto m = Parse(w);
  ASSERT_TRUE(m.ok()) << m.status();
  ASSERT_EQ(m->answers.size(), 1u);
  EXPECT_EQ(m->answers[0].name, "a.example.com");
  EXPECT_EQ(m->answers[0].ttl, 5u);
  EXPECT_EQ(AddrText(m->answers[0]), "127.0.0.9");
}

TEST(DnsMessage, CompressionLoopsAndForwardPointersRefused) {
  auto self = Hdr(1, 0, 1, 0);
  for (uint8_t b : std::initializer_list<uint8_t>{0xC0, 12, 0, 1, 0, 1})
    self.push_back(b);  // points at itself
  EXPECT_FALSE(Parse(self).ok());
  auto fwd = Hdr(1, 0, 1, 0);
  for (uint8_t b : std::initializer_list<uint8_t>{0xC0, 14, 0, 0, 1, 'a', 0, 0, 1, 0, 1})
    fwd.push_back(b);
  EXPECT_FALSE(Parse(fwd).ok());
  auto two = Hdr(1, 0, 1, 0);  // label then pointer back to the label's own start
  for (uint8_t b : std::initializer_list<uint8_t>{1, 'a', 0xC0, 12, 0, 1, 0, 1}) two.push_back(b);
  auto r = Parse(two);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("pointer"), std::string::npos) << r.status();
}

TEST(DnsMessage, BoundsAreErrors) {
  EXPECT_FALSE(Parse(std::vector<uint8_t>{1, 2, 3}).ok());  // short header
  auto two_q = Hdr(1, 0, 2, 0);
  EXPECT_FALSE(Parse(two_q).ok());  // more questions than allowed
  auto many = Hdr(1, 0x8000, 0, 65);
  EXPECT_FALSE(Parse(many, {1, 64}).ok());
  auto cut = *BuildQuery(1, "example.com", kTypeA);
  cut.pop_back();
  EXPECT_FALSE(Parse(cut).ok());  // truncated question
  auto bad = Hdr(1, 0, 1, 0);
  for (uint8_t b : std::initializer_list<uint8_t>{3, 'a', '.', 'b', 0, 0, 1, 0, 1})
    bad.push_back(b);  // a dot inside a label
  EXPECT_FALSE(Parse(bad).ok());
  auto long_name = Hdr(1, 0, 1, 0);
  for (int i = 0; i < 5; ++i) {
    long_name.push_back(63);
    long_name.insert(long_name.end(), 63, 'a');
  }
  long_name.insert(long_name.end(), {0, 0, 1, 0, 1});
  EXPECT_FALSE(Parse(long_name).ok());
  auto reserved = Hdr(1, 0, 1, 0);
  reserved.insert(reserved.end(), {0x80, 0, 0, 1, 0, 1});
  EXPECT_FALSE(Parse(reserved).ok());
  // A record with a 5-byte address; a record whose data runs past the end.
  auto q = *BuildQuery(1, "x.example", kTypeA);
  auto a5 = q;
  a5[2] = 0x81;
  a5[7] = 1;
  a5.insert(a5.end(), {0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 5, 0, 5, 1, 2, 3, 4, 5});
  EXPECT_FALSE(Parse(a5).ok());
  auto past = q;
  past[7] = 1;
  past.insert(past.end(), {0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 5, 0, 4, 1, 2});
  EXPECT_FALSE(Parse(past).ok());
}

TEST(DnsMessage, NormalizeName) {
  EXPECT_EQ(*NormalizeName("Example.COM."), "example.com");
  EXPECT_FALSE(NormalizeName("").ok());
  EXPECT_FALSE(NormalizeName("a..b").ok());
  EXPECT_FALSE(NormalizeName("a b.com").ok());
  EXPECT_FALSE(NormalizeName(std::string(64, 'a') + ".com").ok());
  EXPECT_FALSE(BuildQuery(1, "bad name", kTypeA).ok());
}

TEST(DnsNamePattern, ExactAndWildcard) {
  auto exact = *NamePattern::Parse("API.example.com");
  EXPECT_TRUE(exact.Matches("api.example.com"));
  EXPECT_FALSE(exact.Matches("x.api.example.com"));
  auto wild = *NamePattern::Parse("*.example.com");
  EXPECT_TRUE(wild.Matches("a.example.com"));
  EXPECT_TRUE(wild.Matches("a.b.example.com"));
  EXPECT_FALSE(wild.Matches("example.com"));
  EXPECT_FALSE(wild.Matches("badexample.com"));
  EXPECT_FALSE(NamePattern::Parse("*").ok());
  EXPECT_FALSE(NamePattern::Parse("a*.example.com").ok());
  EXPECT_FALSE(NamePattern::Parse("*.*.example.com").ok());
  EXPECT_FALSE(NamePattern::Parse("x.*.example.com").ok());
}

TEST(DnsNamePattern, Covers) {
  auto p = [](const char* s) { return *NamePattern::Parse(s); };
  EXPECT_TRUE(p("a.example.com").CoveredBy(p("*.example.com")));
  EXPECT_TRUE(p("*.a.example.com").CoveredBy(p("*.example.com")));
  EXPECT_TRUE(p("*.example.com").CoveredBy(p("*.example.com")));
  EXPECT_FALSE(p("example.com").CoveredBy(p("*.example.com")));
  EXPECT_FALSE(p("*.example.com").CoveredBy(p("*.a.example.com")));
  EXPECT_FALSE(p("*.example.com").CoveredBy(p("a.example.com")));
  EXPECT_TRUE(p("a.example.com").CoveredBy(p("a.example.com")));
}

TEST(DnsNamePolicy, DenyWins) {
  NamePolicy pol;
  pol.Allow(*NamePattern::Parse("*.example.com"));
  pol.Deny(*NamePattern::Parse("evil.example.com"));
  ASSERT_NE(pol.Match("a.example.com"), nullptr);
  EXPECT_EQ(pol.Match("a.example.com")->text(), "*.example.com");
  EXPECT_EQ(pol.Match("evil.example.com"), nullptr);
  EXPECT_EQ(pol.Match("other.org"), nullptr);
}

TEST(DnsExfil, LabelsAndBursts) {
  ExfilConfig c;
  c.unique_per_window = 5;
  ExfilDetector d(c);
  absl::Time t = absl::FromUnixSeconds(1000);
  EXPECT_TRUE(d.Observe("www.example.com", t).empty());
  auto f = d.Observe(std::string(50, 'a') + ".example.com", t);
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].kind, "long_label");
  f = d.Observe("q8zk3jx0vtm2a9wplr4ye7.example.com", t);
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].kind, "high_entropy_label");
  EXPECT_EQ(f[0].domain, "example.com");
  int bursts = 0;
  for (int i = 0; i < 10; ++i) {
    for (auto& x : d.Observe("n" + std::to_string(i) + ".tunnel.org", t))
      bursts += x.kind == "many_subdomains";
  }
  EXPECT_EQ(bursts, 1);  // reported once per window
  auto later = d.Observe("n99.tunnel.org", t + absl::Minutes(2));
  EXPECT_TRUE(later.empty());
  EXPECT_EQ(BaseDomain("a.b.example.com"), "example.com");
  EXPECT_EQ(BaseDomain("localhost"), "localhost");
}

}  // namespace
}  // namespace writ::dns
