// PolicyWarnings (`writ policy check`): rules that load but never take effect, or that options
// skip, each named by file, line and field; and none for the shipped intents' approval rules.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "intent/intent.h"

namespace writ::intent {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

std::vector<std::string> Warnings(const std::string& yaml) {
  auto set = LoadPolicyText(yaml, "p.yaml");
  EXPECT_TRUE(set.ok()) << set.status();
  return set.ok() ? PolicyWarnings(*set) : std::vector<std::string>{};
}

constexpr char kHead[] = "apiVersion: writ.dev/v1\nkind: Intent\nname: t\n";  // lines 1-3

TEST(PolicyWarnings, ApprovalsNoExecCanReach) {
  auto w = Warnings(std::string(kHead) +
                    "exec:\n"                                           // 4
                    "  allow: [/opt/t/git, /opt/t/sudo, /opt/t/top]\n"  // 5
                    "  deny: [/opt/t/sudo, \"/opt/bad/**\"]\n"          // 6
                    "approval:\n"                                       // 7
                    "  - {exec: /opt/t/sudo}\n"                         // 8
                    "  - {exec: /opt/bad/tool, subcommand: run}\n"      // 9
                    "  - {exec: /opt/t/git}\n"                          // 10
                    "  - {exec: /opt/t/git, subcommand: push}\n"        // 11
                    "  - {exec: /opt/t/top, args: [-b]}\n"              // 12
                    "  - {exec: /opt/t/top, args: [-b]}\n");            // 13
  EXPECT_THAT(w, Contains("p.yaml:8: approval[0]: warning: never asked: exec.deny[0] (/opt/t/sudo) "
                          "denies /opt/t/sudo first (deny beats approval)"));
  EXPECT_THAT(w, Contains(HasSubstr(
                     "p.yaml:9: approval[1]: warning: never asked: exec.deny[1] (/opt/bad/**)")));
  EXPECT_THAT(
      w, Contains("p.yaml:11: approval[3]: warning: never reported: approval[2] asks for every "
                  "invocation of /opt/t/git first"));
  EXPECT_THAT(
      w, Contains("p.yaml:13: approval[5]: warning: duplicate of approval[4]: never reported"));
  EXPECT_THAT(w, Contains("p.yaml:5: exec.allow[1]: warning: never allows anything: exec.deny[0] "
                          "(/opt/t/sudo) denies /opt/t/sudo first (deny beats every other rule)"));
  EXPECT_THAT(w, Not(Contains(HasSubstr("p.yaml:10:"))));
  EXPECT_THAT(
      w, Not(Contains(HasSubstr("p.yaml:12:"))));  // an option as args[0] is positional on purpose
  EXPECT_EQ(w.size(), 5u) << ::testing::PrintToString(w);
}

TEST(PolicyWarnings, ApprovalsOptionsOrArgumentsStepAround) {
  auto w = Warnings(std::string(kHead) +
                    "approval:\n"                                                    // 4
                    "  - {exec: /opt/t/git, args: [push, \"**\"]}\n"                 // 5
                    "  - {exec: /opt/t/top, args: []}\n"                             // 6
                    "  - {exec: /opt/kube/kubectl, subcommand: delete, args: []}\n"  // 7
                    "  - {exec: /opt/make/make, args: [\"dep*\"]}\n"                 // 8
                    "  - {exec: /opt/helm/helm, subcommand: install}\n");            // 9
  EXPECT_THAT(
      w, Contains(HasSubstr("p.yaml:5: approval[0].args[0]: warning: \"push\" must be argv[1]: "
                            "options before it (`prog -C DIR push`, `prog -c k=v push`) skip this "
                            "rule; write subcommand: push")));
  EXPECT_THAT(w, Contains(HasSubstr("p.yaml:6: approval[1].args: warning: args: [] asks only when "
                                    "/opt/t/top runs with no arguments at all")));
  EXPECT_THAT(w, Contains(HasSubstr("p.yaml:7: approval[2].args: warning: args: [] asks only when "
                                    "nothing follows delete")));
  EXPECT_EQ(w.size(), 3u) << ::testing::PrintToString(
      w);  // a glob first argument, a subcommand: fine
}

TEST(PolicyWarnings, DuplicatesAndAllowsADenyAlwaysWins) {
  auto w = Warnings(std::string(kHead) +
                    "files:\n"                                               // 4
                    "  read: [\"/etc/**\", \"/etc/ssl/**\", /etc/shadow]\n"  // 5
                    "  write: [\"/tmp/**\", \"/tmp/**\"]\n"                  // 6
                    "  deny: [\"/etc/ssl/**\", \"**/.env\"]\n");             // 7
  EXPECT_THAT(w, Contains(HasSubstr(
                     "p.yaml:5: files.read[1]: warning: never allows anything: files.deny[0] "
                     "(/etc/ssl/**)")));
  EXPECT_THAT(w, Contains(HasSubstr(
                     "p.yaml:6: files.write[1]: warning: duplicate of files.write[0] (/tmp/**)")));
  EXPECT_EQ(w.size(), 2u) << ::testing::PrintToString(w);
}

// An exec.deny of a symlink's path denies nothing: the kernel reports the resolved program.
TEST(PolicyWarnings, ExecPathsThatAreSymlinksHere) {
  char tmpl[] = "/tmp/writ-lint-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  std::ofstream(dir + "/real") << "\x7f"
                                  "ELF";
  ASSERT_EQ(symlink((dir + "/real").c_str(), (dir + "/link").c_str()), 0);
  ASSERT_EQ(symlink(dir.c_str(), (dir + "/dirlink").c_str()), 0);
  auto w = Warnings(std::string(kHead) + "exec:\n  allow: [" + dir + "/real]\n  deny: [" + dir +
                    "/link, \"" + dir + "/dirlink/**\"]\napproval:\n  - {exec: " + dir +
                    "/dirlink/real}\n");
  EXPECT_THAT(w,
              Contains("p.yaml:6: exec.deny[0]: warning: " + dir + "/link is " + dir +
                       "/real on this host: exec rules match the resolved program, so this pattern "
                       "never matches an exec; write " +
                       dir + "/real"));
  EXPECT_THAT(w, Contains(HasSubstr("p.yaml:6: exec.deny[1]: warning: " + dir + "/dirlink is " +
                                    dir + " on this host")));
  EXPECT_THAT(w, Contains(HasSubstr("write " + dir + "/**")));
  EXPECT_THAT(w, Contains(HasSubstr("p.yaml:8: approval[0].exec: warning: " + dir +
                                    "/dirlink/real is " + dir + "/real on this host")));
  EXPECT_THAT(w, Not(Contains(HasSubstr("exec.allow"))));
  std::filesystem::remove_all(dir);
}

// The shipped intents' approval rules are neither dead nor skippable by options.
TEST(PolicyWarnings, ShippedApprovalRulesHaveNone) {
  auto set = LoadPolicyDir(WRIT_POLICIES_DIR);
  ASSERT_TRUE(set.ok()) << set.status();
  for (const std::string& w : PolicyWarnings(*set))
    EXPECT_THAT(w, Not(HasSubstr("approval["))) << w;
}

}  // namespace
}  // namespace writ::intent
