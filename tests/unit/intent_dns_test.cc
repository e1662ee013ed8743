// Names in intents (#17): `host:` as an exact name or a "*.example.com" wildcard,
// `network.dns.allow` and its default, loader errors naming file, line and field, and the sub-agent
// subset rules by name.
#include <sys/socket.h>

#include <memory>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "intent/intent.h"
#include "intent_test_util.h"

namespace writ::intent {
namespace {

using ::testing::HasSubstr;

constexpr char kHead[] = "apiVersion: writ.dev/v1\nkind: Intent\nname: t\n";  // lines 1-3

std::string Errors(const std::string& yaml) {
  auto set = LoadPolicyText(yaml, "p.yaml");
  return set.ok() ? "" : std::string(set.status().message());
}

std::shared_ptr<const CompiledIntent> Compiled(const std::string& body,
                                               const std::string& name = "t") {
  auto set = LoadPolicyText(
      absl::StrCat("apiVersion: writ.dev/v1\nkind: Intent\nname: ", name, "\n", body),
      name + ".yaml");
  EXPECT_TRUE(set.ok()) << set.status();
  if (!set.ok()) return nullptr;
  auto ci = Compile(*set->Find(name), {});
  EXPECT_TRUE(ci.ok()) << ci.status();
  return ci.ok() ? *ci : nullptr;
}

TEST(IntentDns, LoaderErrorsNameFileLineField) {
  const std::string e = Errors(std::string(kHead) +
                               "network:\n  connect:\n    allow:\n"
                               "      - {host: \"*\"}\n"                // 7
                               "      - {host: \"a*.example.com\"}\n"   // 8
                               "      - {host: \"*.*.example.com\"}\n"  // 9
                               "      - {host: \"a..example.com\"}\n"   // 10
                               "  dns:\n    allow:\n"
                               "      - \"*.ok.example\"\n"  // 13
                               "      - \"x.*.example\"\n"   // 14
                               "      - \"bad name\"\n");    // 15
  EXPECT_THAT(e, HasSubstr("p.yaml:7: network.connect.allow[0].host: bad name pattern \"*\""));
  EXPECT_THAT(
      e, HasSubstr("p.yaml:8: network.connect.allow[1].host: bad name pattern \"a*.example.com\""));
  EXPECT_THAT(e,
              HasSubstr("p.yaml:9: network.connect.allow[2].host: bad name \"*.*.example.com\""));
  EXPECT_THAT(
      e, HasSubstr(
             "p.yaml:10: network.connect.allow[3].host: bad name \"a..example.com\": empty label"));
  EXPECT_THAT(e, HasSubstr("p.yaml:14: network.dns.allow[1]: bad name pattern \"x.*.example\""));
  EXPECT_THAT(e, HasSubstr("p.yaml:15: network.dns.allow[2]: bad name \"bad name\""));
  EXPECT_THAT(e, ::testing::Not(HasSubstr("p.yaml:13")));
}

TEST(IntentDns, WildcardHostCompilesByNameOnly) {
  auto ci = Compiled(
      "network:\n  connect:\n    allow:\n"
      "      - {host: \"*.githubusercontent.com\", ports: [443]}\n"
      "      - {host: localhost, ports: [8080]}\n"
      "      - {host: 127.0.0.9}\n"
      "      - {cidr: 10.0.0.0/8}\n"
      "    deny:\n      - {host: \"evil.githubusercontent.com\"}\n");
  ASSERT_NE(ci, nullptr);
  ASSERT_EQ(ci->host_allow().size(), 2u);  // the literal IP is not a name
  EXPECT_EQ(ci->host_allow()[0].pattern.text(), "*.githubusercontent.com");
  EXPECT_EQ(ci->host_allow()[0].ports, (std::vector<std::pair<uint16_t, uint16_t>>{{443, 443}}));
  EXPECT_EQ(ci->rules()[ci->host_allow()[0].rule].pattern, "*.githubusercontent.com ports 443");
  EXPECT_TRUE(ci->dns_judged());
  // Default DNS policy: the connect rules' names; connect.deny names are denied.
  EXPECT_NE(ci->dns_policy().Match("raw.githubusercontent.com"), nullptr);
  EXPECT_NE(ci->dns_policy().Match("localhost"), nullptr);
  EXPECT_EQ(ci->dns_policy().Match("evil.githubusercontent.com"), nullptr);
  EXPECT_EQ(ci->dns_policy().Match("example.org"), nullptr);
  // Kernel table: localhost's addresses, the literal and the CIDR; the wildcard has none yet.
  bool has_literal = false;
  for (const KernelNetRule& r : ci->kernel_tables().net_rules) {
    EXPECT_FALSE(r.port_lo == 443 && r.port_hi == 443) << "a wildcard got an address";
    has_literal |= r.family == AF_INET && r.addr[3] == 9 && r.prefix_len == 32;
  }
  EXPECT_TRUE(has_literal);
  // Engine: a connect to an address not obtained by name is refused (no pins in phase 1).
  EvalContext ctx{absl::Now(), 1};
  EXPECT_EQ(Evaluate(*ci, testing::EventBuilder::Connect("185.199.108.133", 443), ctx).kind,
            Verdict::kViolation);
  EXPECT_EQ(Evaluate(*ci, testing::EventBuilder::Connect("127.0.0.9", 22), ctx).kind,
            Verdict::kAllow);
  // With the name whose DNS answer pinned the address (network.host, set by writd when the pin was
  // live at the connect): the host rule's ports decide; a denied name or another port does not
  // pass.
  auto by_name = [&](const char* host, uint32_t port) {
    v1::Event ev = testing::EventBuilder::Connect("185.199.108.133", port);
    ev.mutable_network()->set_host(host);
    return Evaluate(*ci, ev, ctx);
  };
  Verdict v = by_name("raw.githubusercontent.com", 443);
  EXPECT_EQ(v.kind, Verdict::kAllow);
  ASSERT_NE(v.rule, nullptr);
  EXPECT_EQ(v.rule->pattern, "*.githubusercontent.com ports 443");
  EXPECT_EQ(by_name("raw.githubusercontent.com", 80).kind, Verdict::kViolation);
  EXPECT_EQ(by_name("example.org", 443).kind, Verdict::kViolation);
  EXPECT_EQ(by_name("evil.githubusercontent.com", 443).kind, Verdict::kViolation);
}

TEST(IntentDns, ExplicitDnsListAndNoListMeansAnyName) {
  auto ci = Compiled(
      "network:\n  connect:\n    allow: [{cidr: 10.0.0.0/8}]\n"
      "  dns:\n    allow: [\"*.pypi.org\", files.pythonhosted.org]\n");
  ASSERT_NE(ci, nullptr);
  EXPECT_TRUE(ci->dns_judged());
  EXPECT_NE(ci->dns_policy().Match("upload.pypi.org"), nullptr);
  EXPECT_NE(ci->dns_policy().Match("files.pythonhosted.org"), nullptr);
  EXPECT_EQ(ci->dns_policy().Match("pypi.org"), nullptr);
  auto open = Compiled("network:\n  connect:\n    deny: [{cidr: 10.0.0.0/8}]\n");
  ASSERT_NE(open, nullptr);
  EXPECT_FALSE(open->dns_judged());  // no allow list, no dns list: names are not judged
}

absl::Status Subset(const std::string& child, const std::string& parent) {
  auto c = Compiled(child, "c");
  auto p = Compiled(parent, "p");
  if (!c || !p) return absl::InternalError("compile failed");
  return CheckSubset(*c, *p);
}

TEST(IntentDns, SubAgentNamesAreASubsetOfTheParents) {
  const std::string parent =
      "network:\n  connect:\n    allow: [{host: \"*.example.com\", ports: [443]}]\n"
      "    deny: [{host: admin.example.com}]\n";
  auto child = [](const std::string& allow, const std::string& extra = "") {
    return "network:\n  connect:\n    allow: [" + allow + "]\n" + extra;
  };
  EXPECT_TRUE(Subset(child("{host: \"*.api.example.com\", ports: [443]}",
                           "    deny: [{host: admin.example.com}]\n"),
                     parent)
                  .ok());
  // A narrower wildcard must still deny what the parent denies when it overlaps.
  EXPECT_TRUE(Subset(child("{host: \"*.api.example.com\", ports: [443]}"), parent).ok());
  EXPECT_THAT(Subset(child("{host: \"*.example.com\", ports: [443]}"), parent).message(),
              HasSubstr("admin.example.com (parent network.connect.deny)"));
  EXPECT_THAT(Subset(child("{host: \"*.example.org\", ports: [443]}"), parent).message(),
              HasSubstr("network.connect.allow host *.example.org"));
  EXPECT_THAT(Subset(child("{host: \"*.api.example.com\", ports: [80]}"), parent).message(),
              HasSubstr("network.connect.allow host *.api.example.com"));
  EXPECT_THAT(
      Subset(child("{cidr: 127.0.0.1/32}", "  dns:\n    allow: [\"*.org\"]\n"), parent).message(),
      HasSubstr("network.connect.allow 127.0.0.1/32"));
  EXPECT_THAT(
      Subset("network:\n  connect:\n    allow: []\n  dns:\n    allow: [\"*.org\"]\n", parent)
          .message(),
      HasSubstr("network.dns.allow *.org"));
  EXPECT_THAT(Subset("network:\n  connect:\n    deny: [{cidr: 10.0.0.0/8}]\n", parent).message(),
              HasSubstr("network.connect (any destination: no allow list)"));
}

}  // namespace
}  // namespace writ::intent
