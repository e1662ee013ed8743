// CheckSubset: a sub-agent's intent may allow nothing its parent's does not; refusals name the
// permission. Intents are written as YAML (as users write them) and compiled with real parameters.
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "intent/intent.h"

namespace writ::intent {
namespace {

using ::testing::HasSubstr;

constexpr char kParent[] = R"(
apiVersion: writ.dev/v1
kind: Intent
name: parent
params:
  repo: {type: path, required: true}
exec:
  allow: [/usr/bin/git, /usr/bin/cat, "/usr/lib/git-core/**"]
  deny: [/usr/bin/sudo]
files:
  read: ["${repo}/**", "/usr/**"]
  write: ["${repo}/**"]
  deny: [/etc/shadow, "**/.ssh/**"]
network:
  connect:
    allow: [{cidr: 127.0.0.0/8, ports: ["8000-8100"]}]
    deny: [{cidr: 127.0.0.53/32}]
limits: {max_processes: 32}
approval:
  - {exec: /usr/bin/git, args: [push, "**"]}
on_violation: [alert, kill, revoke]
)";

// A child intent with `body` spliced after the header; `body` holds whole top-level sections.
std::string Child(const std::string& body) {
  return absl::StrCat("apiVersion: writ.dev/v1\nkind: Intent\nname: child\n",
                      "params:\n  repo: {type: path, required: true}\n", body);
}

// The narrowest child that satisfies every rule of kParent; tests replace one section at a time.
constexpr char kExec[] = "exec:\n  allow: [/usr/bin/cat]\n  deny: [/usr/bin/sudo]\n";
constexpr char kFiles[] =
    "files:\n  read: [\"${repo}/src/**\", /usr/lib/x.so]\n  write: [\"${repo}/out/**\"]\n"
    "  deny: [/etc/shadow, \"**/.ssh/**\"]\n";
constexpr char kNet[] = "network:\n  connect:\n    allow: [{cidr: 127.0.0.1/32, ports: [8080]}]\n";
constexpr char kLimits[] = "limits: {max_processes: 8}\n";
constexpr char kResponses[] = "on_violation: [alert, kill, revoke]\n";

std::shared_ptr<const CompiledIntent> CompileText(const std::string& text,
                                                  const std::string& name) {
  auto set = LoadPolicyText(text, name + ".yaml");
  EXPECT_TRUE(set.ok()) << set.status();
  if (!set.ok()) return nullptr;
  const writ::v1::Intent* in = set->Find(name);
  EXPECT_NE(in, nullptr);
  auto ci = Compile(*in, {{"repo", "/work/repo"}});
  EXPECT_TRUE(ci.ok()) << ci.status();
  return ci.ok() ? *ci : nullptr;
}

absl::Status Check(const std::string& exec, const std::string& files = kFiles,
                   const std::string& net = kNet, const std::string& limits = kLimits,
                   const std::string& responses = kResponses) {
  auto parent = CompileText(kParent, "parent");
  auto child = CompileText(Child(exec + files + net + limits + responses), "child");
  if (!parent || !child) return absl::InternalError("compile failed");
  return CheckSubset(*child, *parent);
}

TEST(SubsetTest, NarrowerChildIsAccepted) { EXPECT_TRUE(Check(kExec).ok()) << Check(kExec); }

TEST(SubsetTest, IdenticalIntentIsASubsetOfItself) {
  auto p = CompileText(kParent, "parent");
  ASSERT_NE(p, nullptr);
  EXPECT_TRUE(CheckSubset(*p, *p).ok()) << CheckSubset(*p, *p);
}

TEST(SubsetTest, ExtraProgramIsNamed) {
  absl::Status st =
      Check("exec:\n  allow: [/usr/bin/cat, /usr/bin/curl]\n  deny: [/usr/bin/sudo]\n");
  EXPECT_EQ(st.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(st.message(), "exec.allow /usr/bin/curl is not allowed by parent intent parent");
}

TEST(SubsetTest, WiderGlobIsRefusedNarrowerGlobAccepted) {
  EXPECT_THAT(Check("exec:\n  allow: [\"/usr/lib/**\"]\n  deny: [/usr/bin/sudo]\n").message(),
              HasSubstr("exec.allow /usr/lib/** is not allowed"));
  EXPECT_TRUE(
      Check("exec:\n  allow: [\"/usr/lib/git-core/git-*\"]\n  deny: [/usr/bin/sudo]\n").ok());
}

TEST(SubsetTest, MissingAllowListIsRefused) {
  EXPECT_THAT(Check("exec:\n  deny: [/usr/bin/sudo]\n").message(), HasSubstr("no exec.allow list"));
  EXPECT_THAT(Check("").message(), HasSubstr("no exec section"));
}

TEST(SubsetTest, CredentialsOnlyFromTheParentsProvidersAndGrants) {
  const std::string parent =
      std::string(kParent) +
      "credentials:\n  - {provider: pg, grants: [\"SELECT ON TABLE a\", \"SELECT ON TABLE b\"]}\n"
      "  - {provider: hook}\n";
  auto p = CompileText(parent, "parent");
  auto check = [&](const std::string& creds) {
    auto c = CompileText(Child(std::string(kExec) + kFiles + kNet + kLimits + kResponses + creds),
                         "child");
    return c && p ? CheckSubset(*c, *p) : absl::InternalError("compile failed");
  };
  EXPECT_TRUE(check("").ok());
  EXPECT_TRUE(check("credentials:\n  - {provider: pg, grants: [\"SELECT ON TABLE b\"]}\n  - "
                    "{provider: hook}\n")
                  .ok());
  EXPECT_EQ(check("credentials:\n  - {provider: vault}\n").message(),
            "credentials from provider \"vault\" is not allowed by parent intent parent");
  EXPECT_THAT(check("credentials:\n  - {provider: pg, grants: [\"ALL ON TABLE a\"]}\n").message(),
              HasSubstr("grant \"ALL ON TABLE a\" is not allowed by parent intent parent"));
  // The parent pinned its grants: the provider's (wider, unknown here) defaults are not a subset.
  EXPECT_THAT(check("credentials:\n  - {provider: pg}\n").message(), HasSubstr("default grants"));
  // A parent without credentials delegates none.
  auto bare = CompileText(kParent, "parent");
  auto c = CompileText(Child(std::string(kExec) + kFiles + kNet + kLimits + kResponses +
                             "credentials:\n  - {provider: hook}\n"),
                       "child");
  ASSERT_TRUE(bare && c);
  EXPECT_EQ(CheckSubset(*c, *bare).code(), absl::StatusCode::kPermissionDenied);
}

TEST(SubsetTest, ParentApprovalMustSurvive) {
  // git allowed without the parent's push approval: escalation.
  EXPECT_THAT(Check("exec:\n  allow: [/usr/bin/git]\n  deny: [/usr/bin/sudo]\n").message(),
              HasSubstr("exec of /usr/bin/git push ** without approval"));
  EXPECT_TRUE(Check("exec:\n  allow: [/usr/bin/git]\n  deny: [/usr/bin/sudo]\n"
                    "approval:\n  - {exec: /usr/bin/git, args: [push, \"**\"]}\n")
                  .ok());
}

// Repeating a parent's approval means the same rule (program, subcommand, argument patterns), not
// the same text; asking for every invocation of the program is stricter and also keeps it.
TEST(SubsetTest, ParentApprovalIsKeptBySameRuleOrByAskingForEveryInvocation) {
  const std::string exec = "exec:\n  allow: [/usr/bin/git]\n  deny: [/usr/bin/sudo]\n";
  EXPECT_TRUE(Check(exec + "approval:\n  - {exec: /usr/bin/git}\n").ok());
  // A subcommand rule asks for every push argv[1] names, and for more (`git -C d push`).
  EXPECT_TRUE(Check(exec + "approval:\n  - {exec: /usr/bin/git, subcommand: push}\n").ok());
  EXPECT_THAT(Check(exec + "approval:\n  - {exec: /usr/bin/git, subcommand: pull}\n").message(),
              HasSubstr("exec of /usr/bin/git push ** without approval"));
  EXPECT_THAT(
      Check(exec + "approval:\n  - {exec: /usr/bin/git, subcommand: push, args: [origin]}\n")
          .message(),
      HasSubstr("without approval"));
  EXPECT_THAT(Check(exec + "approval:\n  - {exec: /usr/bin/git, args: [push]}\n").message(),
              HasSubstr("without approval"));
  EXPECT_THAT(Check(exec + "approval:\n  - {exec: /usr/bin/git, args: []}\n").message(),
              HasSubstr("without approval"));
}

TEST(SubsetTest, ParentDenyNeedNotBeRepeatedWhenUnreachable) {
  // The child's allow list (cat only) can never exec sudo: the parent's deny holds anyway.
  EXPECT_TRUE(Check("exec:\n  allow: [/usr/bin/cat]\n").ok());
}

TEST(SubsetTest, FilePermissions) {
  EXPECT_THAT(
      Check(kExec,
            "files:\n  read: [\"/etc/**\"]\n  write: []\n  deny: [/etc/shadow, \"**/.ssh/**\"]\n")
          .message(),
      HasSubstr("files.read /etc/** is not allowed"));
  EXPECT_THAT(
      Check(kExec,
            "files:\n  read: []\n  write: [\"/usr/**\"]\n  deny: [/etc/shadow, \"**/.ssh/**\"]\n")
          .message(),
      HasSubstr("files.write /usr/** is not allowed"));
  // A glob deny cannot be proven disjoint from a prefix allow: the child must repeat it.
  EXPECT_THAT(Check(kExec, "files:\n  read: [\"${repo}/**\"]\n  write: []\n  deny: [/etc/shadow]\n")
                  .message(),
              HasSubstr("open of **/.ssh/** (parent files.deny)"));
  EXPECT_THAT(
      Check(kExec, "files:\n  write: []\n  deny: [/etc/shadow, \"**/.ssh/**\"]\n").message(),
      HasSubstr("no files.read list"));
}

TEST(SubsetTest, NetworkPermissions) {
  EXPECT_THAT(Check(kExec, kFiles,
                    "network:\n  connect:\n    allow: [{cidr: 127.0.0.1/32, ports: [9000]}]\n")
                  .message(),
              HasSubstr("network.connect.allow 127.0.0.1/32 ports 9000 is not allowed"));
  EXPECT_THAT(
      Check(kExec, kFiles, "network:\n  connect:\n    allow: [{cidr: 10.0.0.0/8, ports: [8080]}]\n")
          .message(),
      HasSubstr("network.connect.allow 10.0.0.0/8"));
  // The parent denies 127.0.0.53 inside its allowed /8: a child allowing all of 127/8 must deny it
  // too.
  EXPECT_THAT(Check(kExec, kFiles,
                    "network:\n  connect:\n    allow: [{cidr: 127.0.0.0/8, ports: [8080]}]\n")
                  .message(),
              HasSubstr("connect to 127.0.0.53/32 (parent network.connect.deny)"));
  EXPECT_TRUE(Check(kExec, kFiles,
                    "network:\n  connect:\n    allow: [{cidr: 127.0.0.0/8, ports: [8080]}]\n"
                    "    deny: [{cidr: 127.0.0.53/32}]\n")
                  .ok());
  EXPECT_THAT(Check(kExec, kFiles, "").message(), HasSubstr("no network section"));
}

TEST(SubsetTest, LimitsModeAndResponses) {
  EXPECT_THAT(Check(kExec, kFiles, kNet, "limits: {max_processes: 64}\n").message(),
              HasSubstr("limits.max_processes 64"));
  EXPECT_THAT(Check(kExec, kFiles, kNet, "").message(),
              HasSubstr("limits.max_processes unlimited"));
  EXPECT_THAT(Check(kExec, kFiles, kNet, kLimits, "on_violation: [alert]\n").message(),
              HasSubstr("on_violation without kill"));
  EXPECT_THAT(
      Check(kExec, kFiles, kNet, kLimits, "mode: monitor\non_violation: [alert, kill, revoke]\n")
          .message(),
      HasSubstr("mode monitor"));
}

// Unix sockets: the parent's connect allow list denies every unix socket it does not list, so a
// child may list none; a parent's network.unix allow list bounds the child's, its deny list must
// stay.
TEST(SubsetTest, UnixSocketsNarrowLikePaths) {
  // kParent has connect.allow and no network.unix: a child listing a socket escalates.
  EXPECT_THAT(Check(kExec, kFiles,
                    std::string(kNet) + "  unix:\n    allow: [/run/dbus/system_bus_socket]\n")
                  .message(),
              HasSubstr("network.unix.allow /run/dbus/system_bus_socket is not allowed"));
  EXPECT_THAT(Check(kExec, kFiles, std::string(kNet) + "  unix:\n    deny: []\n").message(),
              HasSubstr("network.unix (any socket not denied: no allow list)"));
  std::string parent = kParent;
  const std::string after = "    deny: [{cidr: 127.0.0.53/32}]\n";
  parent.insert(
      parent.find(after) + after.size(),
      "  unix:\n    allow: [\"/run/app/**\", \"@svc-*\"]\n    deny: [/run/app/admin.sock]\n");
  auto p = CompileText(parent, "parent");
  ASSERT_NE(p, nullptr);
  auto check = [&](const std::string& unix_section) {
    auto c = CompileText(
        Child(std::string(kExec) + kFiles + kNet + unix_section + kLimits + kResponses), "child");
    return c ? CheckSubset(*c, *p) : absl::InternalError("compile failed");
  };
  EXPECT_TRUE(check("  unix:\n    allow: [/run/app/x.sock, \"@svc-1\"]\n").ok())
      << check("  unix:\n    allow: [/run/app/x.sock, \"@svc-1\"]\n");
  EXPECT_THAT(check("  unix:\n    allow: [\"/run/**\"]\n").message(),
              HasSubstr("network.unix.allow /run/** is not allowed"));
  EXPECT_THAT(check("  unix:\n    allow: [\"@svc*\"]\n").message(),
              HasSubstr("network.unix.allow @svc* is not allowed"));
  // The parent's denied socket is below an allowed child directory: the child must deny it too.
  EXPECT_THAT(check("  unix:\n    allow: [\"/run/app/**\"]\n").message(),
              HasSubstr("unix connect to /run/app/admin.sock (parent network.unix.deny)"));
  EXPECT_TRUE(
      check("  unix:\n    allow: [\"/run/app/**\"]\n    deny: [/run/app/admin.sock]\n").ok());
}

}  // namespace
}  // namespace writ::intent
