// Loader: every kind of bad input gives "FILE:LINE: field.path: message", all errors are reported,
// and any error means nothing loads.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "intent_test_util.h"

namespace writ::intent {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

// Status message of loading `yaml` (which must fail).
std::string Errors(const std::string& yaml) {
  auto set = LoadPolicyText(yaml, "p.yaml");
  EXPECT_FALSE(set.ok()) << "loaded: " << yaml;
  return set.ok() ? "" : std::string(set.status().message());
}

constexpr const char* kHead = "apiVersion: writ.dev/v1\nkind: Intent\nname: t\n";  // lines 1-3

TEST(LoaderTest, LoadsTheSpecExampleWithPresence) {
  auto set = LoadPolicyText(std::string(kHead) +
                                "params:\n  repo: {type: path, required: true}\n"
                                "exec: {deny: [/usr/bin/sudo]}\n"
                                "files:\n  read: []\n  write: [\"${repo}/**\"]\n"
                                "network: {connect: {deny: [{cidr: 10.0.0.0/8}]}}\n",
                            "p.yaml");
  ASSERT_TRUE(set.ok()) << set.status();
  const auto& in = set->intents()[0];
  EXPECT_EQ(in.name(), "t");
  EXPECT_FALSE(in.exec().allow_present());
  EXPECT_TRUE(in.files().read_present());
  EXPECT_TRUE(in.files().write_present());
  EXPECT_FALSE(in.network().connect().allow_present());
  EXPECT_EQ(in.source().file(), "p.yaml");
  EXPECT_EQ(set->LineOf("t", "files.write[0]"), 9);
  EXPECT_EQ(set->LineOf("t", "files.read"), 8);
}

TEST(LoaderTest, MalformedYaml) {
  EXPECT_THAT(Errors(std::string(kHead) + "exec: {allow: [/a\n"), StartsWith("p.yaml:"));
  EXPECT_THAT(Errors(std::string(kHead) + "exec: {allow: [/a\n"), HasSubstr(": yaml: "));
}

TEST(LoaderTest, UnknownKeysAtEveryLevel) {
  EXPECT_THAT(
      Errors(std::string(kHead) + "exce: {}\n"),
      HasSubstr("p.yaml:4: exce: unknown key \"exce\" (expected one of: api_version, kind, name"));
  EXPECT_THAT(
      Errors(std::string(kHead) + "files:\n  reed: [/a]\n"),
      HasSubstr("p.yaml:5: files.reed: unknown key \"reed\" (expected one of: read, write, deny)"));
  EXPECT_THAT(Errors(std::string(kHead) +
                     "network:\n  connect:\n    allow: [{cidr: 1.2.3.4/32, port: 80}]\n"),
              HasSubstr("p.yaml:6: network.connect.allow[0].port: unknown key \"port\""));
  EXPECT_THAT(
      Errors(std::string(kHead) + "tests:\n  - {event: {kind: open, fiel: {}}, expect: allow}\n"),
      HasSubstr("p.yaml:5: tests[0].event.fiel: unknown key"));
  // Loader-set flags are not user keys.
  EXPECT_THAT(Errors(std::string(kHead) + "exec: {allow_present: true}\n"),
              HasSubstr("p.yaml:4: exec.allow_present: unknown key"));
  EXPECT_THAT(Errors(std::string(kHead) + "name: again\n"),
              HasSubstr("p.yaml:4: name: duplicate key (first at line 3)"));
}

TEST(LoaderTest, WrongTypes) {
  EXPECT_THAT(Errors(std::string(kHead) + "exec: {allow: /usr/bin/git}\n"),
              HasSubstr("p.yaml:4: exec.allow: expected a list, got a scalar"));
  EXPECT_THAT(Errors(std::string(kHead) + "limits: {max_processes: many}\n"),
              HasSubstr("p.yaml:4: limits.max_processes: expected an integer, got \"many\""));
  EXPECT_THAT(Errors(std::string(kHead) + "files: [/a]\n"),
              HasSubstr("p.yaml:4: files: expected a mapping, got a list"));
  EXPECT_THAT(Errors(std::string(kHead) + "params:\n  x: {type: bool, required: maybe}\n"),
              HasSubstr("p.yaml:5: params.x.required: expected true or false, got \"maybe\""));
  EXPECT_THAT(Errors(std::string(kHead) + "limits: {max_processes: 99999999999}\n"),
              HasSubstr("p.yaml:4: limits.max_processes: integer 99999999999 out of range"));
}

TEST(LoaderTest, HeaderFields) {
  EXPECT_THAT(
      Errors("apiVersion: writ.dev/v2\nkind: Intent\nname: t\n"),
      HasSubstr("p.yaml:1: apiVersion: unsupported \"writ.dev/v2\" (expected writ.dev/v1)"));
  EXPECT_THAT(
      Errors("apiVersion: writ.dev/v1\nkind: Workload\nname: t\n"),
      HasSubstr("p.yaml:2: kind: unknown kind \"Workload\" (expected Intent or Workloads)"));
  EXPECT_THAT(Errors("apiVersion: writ.dev/v1\nname: t\n"),
              HasSubstr("p.yaml:1: kind: missing (expected Intent)"));
  EXPECT_THAT(Errors("apiVersion: writ.dev/v1\nkind: Intent\nname: Bad_Name\n"),
              HasSubstr("p.yaml:3: name: bad name \"Bad_Name\""));
  EXPECT_THAT(
      Errors(std::string(kHead) + "mode: learn\nseverity: urgent\non_violation: [alert, nuke]\n"),
      ::testing::AllOf(HasSubstr("p.yaml:4: mode: unknown mode \"learn\""),
                       HasSubstr("p.yaml:5: severity: unknown severity \"urgent\""),
                       HasSubstr("p.yaml:6: on_violation[1]: unknown response \"nuke\"")));
}

TEST(LoaderTest, BadGlobs) {
  const std::string e = Errors(std::string(kHead) +
                               "files:\n"
                               "  read: [\"/a/***\", \"\", relative/x, \"/a/\"]\n"
                               "  deny:\n"
                               "    - /ok\n"
                               "    - \"/x//y\"\n");
  EXPECT_THAT(
      e, HasSubstr("p.yaml:5: files.read[0]: '**' must be a whole path segment in \"/a/***\""));
  EXPECT_THAT(e, HasSubstr("p.yaml:5: files.read[1]: empty pattern"));
  EXPECT_THAT(
      e, HasSubstr(
             "p.yaml:5: files.read[2]: relative path \"relative/x\": patterns must be absolute"));
  EXPECT_THAT(e, HasSubstr("p.yaml:5: files.read[3]: trailing '/'"));
  EXPECT_THAT(e, HasSubstr("p.yaml:8: files.deny[1]: empty path segment"));
  EXPECT_EQ(std::count(e.begin(), e.end(), '\n'), 4)
      << e;  // all five, one per line, not just the first
}

TEST(LoaderTest, NetworkErrors) {
  const std::string e = Errors(std::string(kHead) +
                               "network:\n  connect:\n    allow:\n"
                               "      - {cidr: 10.0.0.1/8}\n"                                   // 7
                               "      - {cidr: 1.2.3.4/32, ports: [0, \"9100-9000\", http]}\n"  // 8
                               "      - {cidr: 1.2.3.4/32, host: example.org}\n"                // 9
                               "      - {ports: [80]}\n"            // 10
                               "      - {host: \"bad host!\"}\n");  // 11
  EXPECT_THAT(
      e,
      HasSubstr("p.yaml:7: network.connect.allow[0].cidr: bad CIDR \"10.0.0.1/8\": host bits set"));
  EXPECT_THAT(
      e,
      HasSubstr("p.yaml:8: network.connect.allow[1].ports[0]: bad port \"0\": ports are 1..65535"));
  EXPECT_THAT(
      e, HasSubstr(
             "p.yaml:8: network.connect.allow[1].ports[1]: bad port \"9100-9000\": range start"));
  EXPECT_THAT(
      e, HasSubstr("p.yaml:8: network.connect.allow[1].ports[2]: bad port \"http\": not a number"));
  EXPECT_THAT(
      e, HasSubstr("p.yaml:9: network.connect.allow[2]: exactly one of cidr or host is required"));
  EXPECT_THAT(
      e, HasSubstr("p.yaml:10: network.connect.allow[3]: exactly one of cidr or host is required"));
  EXPECT_THAT(e,
              HasSubstr("p.yaml:11: network.connect.allow[4].host: bad host name \"bad host!\""));
}

TEST(LoaderTest, ParamsErrors) {
  const std::string e =
      Errors(std::string(kHead) +
             "params:\n"
             "  repo: {type: path, required: true}\n"                           // 5
             "  n: {type: number}\n"                                            // 6
             "  b: {type: bool, default: maybe}\n"                              // 7
             "files:\n  read: [\"${repo}/**\", \"${nope}/x\", \"${repo\"]\n");  // 9
  EXPECT_THAT(e, HasSubstr("p.yaml:6: params.n.type: unknown type \"number\""));
  EXPECT_THAT(e,
              HasSubstr("p.yaml:7: params.b.default: expected bool (true|false), got \"maybe\""));
  EXPECT_THAT(
      e, HasSubstr("p.yaml:9: files.read[1]: unknown parameter ${nope} (declared: b, n, repo)"));
  EXPECT_THAT(e, HasSubstr("p.yaml:9: files.read[2]: unterminated \"${\""));
  EXPECT_THAT(e, ::testing::Not(HasSubstr("files.read[0]")));
}

TEST(LoaderTest, LimitsAndApprovalErrors) {
  const std::string e =
      Errors(std::string(kHead) +
             "limits:\n  ttl: 30 minutes\n  hours: 9-17\n  max_processes: -1\n"            // 5,6,7
             "approval:\n  - {args: [push]}\n  - {exec: /usr/bin/git, timeout: soon}\n");  // 9,10
  EXPECT_THAT(e, HasSubstr("p.yaml:5: limits.ttl: bad duration \"30 minutes\""));
  EXPECT_THAT(e, HasSubstr("p.yaml:6: limits.hours: bad hours window \"9-17\""));
  EXPECT_THAT(e, HasSubstr("p.yaml:7: limits.max_processes: must be >= 0"));
  EXPECT_THAT(e, HasSubstr("p.yaml:9: approval[0].exec: missing"));
  EXPECT_THAT(e, HasSubstr("p.yaml:10: approval[1].timeout: bad duration \"soon\""));
}

TEST(LoaderTest, ApprovalSubcommandErrors) {
  const std::string e = Errors(std::string(kHead) +
                               "approval:\n"                                             // 4
                               "  - {exec: /usr/bin/git, subcommand: \"**\"}\n"          // 5
                               "  - {exec: /usr/bin/git, subcommand: --force}\n"         // 6
                               "  - {exec: /usr/bin/git, subcommand: \"${nope}\"}\n"     // 7
                               "  - {exec: /usr/bin/git, subcommand: push, args: []}\n"  // 8
                               "  - {exec: /usr/bin/git, subcomand: push}\n");           // 9
  EXPECT_THAT(e, HasSubstr("p.yaml:5: approval[0].subcommand: \"**\" is not a subcommand"));
  EXPECT_THAT(e, HasSubstr("p.yaml:6: approval[1].subcommand: \"--force\" starts with '-'"));
  EXPECT_THAT(e, HasSubstr("p.yaml:7: approval[2].subcommand: unknown parameter ${nope}"));
  EXPECT_THAT(e, ::testing::Not(HasSubstr("approval[3]")));
  EXPECT_THAT(e, HasSubstr("p.yaml:9: approval[4].subcomand: unknown key \"subcomand\""));
}

TEST(LoaderTest, CredentialsShapeErrors) {
  const std::string e = Errors(std::string(kHead) +
                               "credentials:\n"                              // 4
                               "  - {required: true}\n"                      // 5
                               "  - {provider: \"Bad Name\"}\n"              // 6
                               "  - {provider: pg, grants: [\"\"]}\n"        // 7
                               "  - {provider: pg}\n"                        // 8
                               "  - {provider: vault, required: maybe}\n");  // 9
  EXPECT_THAT(e, HasSubstr("p.yaml:5: credentials[0].provider: missing"));
  EXPECT_THAT(e, HasSubstr("p.yaml:6: credentials[1].provider: bad provider name \"Bad Name\""));
  EXPECT_THAT(e, HasSubstr("p.yaml:7: credentials[2].grants[0]: empty grant"));
  EXPECT_THAT(e, HasSubstr("p.yaml:8: credentials[3].provider: provider \"pg\" is already "
                           "requested by credentials[2]"));
  EXPECT_THAT(e, HasSubstr("p.yaml:9: credentials[4].required:"));
}

TEST(LoaderTest, CredentialsRequiredDefaultsToTrueAndReachTheCompiledIntent) {
  auto set =
      LoadPolicyText(std::string(kHead) +
                         "credentials:\n  - provider: pg\n    grants: [\"SELECT ON TABLE t\"]\n"
                         "  - {provider: hook, required: false}\n",
                     "p.yaml");
  ASSERT_TRUE(set.ok()) << set.status();
  const auto& in = set->intents()[0];
  ASSERT_EQ(in.credentials_size(), 2);
  EXPECT_FALSE(in.credentials(0).has_required());  // absent = required (docs/credentials.md)
  EXPECT_TRUE(in.credentials(1).has_required());
  EXPECT_FALSE(in.credentials(1).required());
  auto ci = Compile(in, {});
  ASSERT_TRUE(ci.ok()) << ci.status();
  ASSERT_EQ((*ci)->credentials().size(), 2u);
  EXPECT_EQ((*ci)->credentials()[0].grants(0), "SELECT ON TABLE t");
}

TEST(LoaderTest, CredentialProvidersMustBeConfigured) {
  auto set = LoadPolicyText(std::string(kHead) +
                                "credentials:\n"                                                // 4
                                "  - provider: pg\n"                                            // 5
                                "    grants: [\"SELECT ON TABLE t\", \"ALL; DROP TABLE t\"]\n"  // 6
                                "  - {provider: nosuch}\n"                                      // 7
                                "  - {provider: hook, grants: [\"SELECT ON TABLE t\"]}\n",      // 8
                            "p.yaml");
  ASSERT_TRUE(set.ok()) << set.status();
  absl::flat_hash_map<std::string, std::string> providers = {{"pg", "postgres"},
                                                             {"hook", "webhook"}};
  auto check = [](const std::string&, const std::string& g) {
    return g.find(';') == std::string::npos ? absl::OkStatus()
                                            : absl::InvalidArgumentError("grant has ;");
  };
  absl::Status st = CheckCredentialProviders(*set, providers, check);
  ASSERT_FALSE(st.ok());
  const std::string e(st.message());
  EXPECT_THAT(e, HasSubstr("p.yaml:6: credentials[0].grants[1]: grant has ;"));
  EXPECT_THAT(
      e, HasSubstr("p.yaml:7: credentials[1].provider: unknown provider \"nosuch\" (configured in "
                   "writd's credentials.providers: hook, pg)"));
  EXPECT_THAT(e, HasSubstr("p.yaml:8: credentials[2].grants[0]: grants apply to postgres "
                           "providers; \"hook\" is webhook"));
  EXPECT_EQ(std::count(e.begin(), e.end(), '\n'), 2);  // exactly three errors, one per line
  EXPECT_TRUE(CheckCredentialProviders(*set, {}, nullptr)
                  .message()
                  .find("configured in writd's "
                        "credentials.providers: none") != absl::string_view::npos);
  // Without credentials an intent passes whatever is configured.
  auto plain = LoadPolicyText(kHead, "q.yaml");
  ASSERT_TRUE(plain.ok());
  EXPECT_TRUE(CheckCredentialProviders(*plain, {}, nullptr).ok());
}

TEST(LoaderTest, TestEntriesAreValidated) {
  const std::string e = Errors(std::string(kHead) +
                               "tests:\n"
                               "  - {event: {kind: opn}, expect: allow}\n"                      // 5
                               "  - {event: {kind: open}, expect: maybe}\n"                     // 6
                               "  - {event: {kind: open}, expect: allow, params: {x: 1}}\n"     // 7
                               "  - {expect: allow}\n"                                          // 8
                               "  - {event: {kind: open, time: yesterday}, expect: allow}\n");  // 9
  EXPECT_THAT(e, HasSubstr("p.yaml:5: tests[0].event.kind: unknown event kind \"opn\""));
  EXPECT_THAT(e, HasSubstr("p.yaml:6: tests[1].expect: unknown verdict \"maybe\""));
  EXPECT_THAT(e, HasSubstr("p.yaml:7: tests[2].params.x: unknown parameter \"x\""));
  EXPECT_THAT(e, HasSubstr("p.yaml:8: tests[3].event: missing"));
  EXPECT_THAT(e, HasSubstr("p.yaml:9: tests[4].event.time: bad RFC 3339 time \"yesterday\""));
}

TEST(LoaderTest, MultipleDocumentsAndJson) {
  auto set = LoadPolicyText(
      std::string(kHead) + "---\napiVersion: writ.dev/v1\nkind: Intent\nname: u\n---\n",
      "multi.yaml");
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(set->intents().size(), 2u);
  EXPECT_NE(set->Find("u"), nullptr);
  EXPECT_EQ(set->Find("u")->source().line(), 5);
  auto json = LoadPolicyText(R"({"apiVersion": "writ.dev/v1", "kind": "Intent", "name": "j",
  "exec": {"allow": ["/usr/bin/git"]},
  "network": {"connect": {"allow": [{"cidr": "127.0.0.1/32", "ports": [8080, "9000-9100"]}]}}})",
                             "j.json");
  ASSERT_TRUE(json.ok()) << json.status();
  EXPECT_EQ(json->intents()[0].network().connect().allow(0).ports(1), "9000-9100");
  EXPECT_THAT(std::string(LoadPolicyText("{\"apiVersion\": \"writ.dev/v1\", \"kind\": \"Intent\",\n"
                                         " \"name\": \"j\", \"exec\": {\"alow\": []}}",
                                         "j.json")
                              .status()
                              .message()),
              HasSubstr("j.json:2: exec.alow: unknown key"));
}

class DirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("writ-intent-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void Write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name) << text;
  }
  std::filesystem::path dir_;
};

TEST_F(DirTest, DuplicateNamesAcrossFilesAndAllOrNothing) {
  Write("a.yaml", std::string(kHead));
  Write("b.yml", std::string("# comment\n") + kHead);
  Write("c.yaml", "apiVersion: writ.dev/v1\nkind: Intent\nname: fine\n");
  Write("notes.txt", "not a policy");
  Write("writd.yaml", "listen: /run/writ.sock\n");  // the daemon's config, not ours
  auto set = LoadPolicyDir(dir_.string());
  ASSERT_FALSE(set.ok());
  const std::string a = (dir_ / "a.yaml").string(), b = (dir_ / "b.yml").string();
  EXPECT_EQ(std::string(set.status().message()),
            b + ":4: name: duplicate intent name \"t\" (first defined at " + a + ":3)");
  std::filesystem::remove(dir_ / "b.yml");
  set = LoadPolicyDir(dir_.string());
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(set->intents().size(), 2u);
}

TEST_F(DirTest, MissingDirIsAnError) { EXPECT_FALSE(LoadPolicyDir((dir_ / "nope").string()).ok()); }

TEST(PolicyFileSize, AFileOverOneMiBIsRefusedBeforeParsing) {
  auto dir = std::filesystem::temp_directory_path() / ("writ-big-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "big.yaml") << std::string((1 << 20) + 1, '#');
  auto set = LoadPolicyDir(dir.string());
  std::filesystem::remove_all(dir);
  ASSERT_FALSE(set.ok());
  EXPECT_THAT(std::string(set.status().message()), HasSubstr("big.yaml:1: (file): 1048577 bytes"));
  EXPECT_THAT(std::string(set.status().message()), HasSubstr("limited to 1 MiB"));
}

}  // namespace
}  // namespace writ::intent
