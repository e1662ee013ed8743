// Compiler and engine: parameters, verdicts and rule ids per category, presence semantics, limits,
// kernel tables, Explain, and that Evaluate allocates nothing.
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <vector>

#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "intent_test_util.h"
#include "testlib/alloc_counter.h"

namespace writ::intent {
namespace {

using testing::Ctx;
using testing::EventBuilder;
using ::testing::HasSubstr;
using testing::MustCompile;
using testing::MustParse;
using testing::RuleOf;

const char* kCoding = R"(apiVersion: writ.dev/v1
kind: Intent
name: coding-agent
frameworks: [OWASP-ASI02, MAESTRO-L4]
params:
  repo: {type: path, required: true}
  cache: {type: path}
exec:
  allow: [/usr/bin/git, /usr/bin/make, "/usr/lib/git-core/**"]
  deny: [/usr/bin/sudo]
files:
  read: ["${repo}/**", "/usr/**", "/lib/**", "/etc/ld.so.cache", "${cache}/**"]
  write: ["${repo}/**", "/tmp/**"]
  deny: [/etc/shadow, "**/.ssh/**", "**/.env"]
network:
  connect:
    allow: [{cidr: 127.0.0.1/32, ports: [8080]}, {host: localhost, ports: ["9000-9100"]}, {cidr: "fd00::/8"}]
    deny: [{cidr: 127.0.0.1/32, ports: [9050]}]
limits: {ttl: 30m, hours: "00:00-24:00 UTC", max_processes: 64}
approval:
  - {exec: /usr/bin/git, args: [push, "**"], timeout: 2m}
on_violation: [alert, kill, revoke]
)";

class EngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ci_ = MustCompile(kCoding, {{"repo", "/src/proj"}});
    ASSERT_NE(ci_, nullptr);
  }
  Verdict Eval(const writ::v1::Event& ev, int live = 1) { return Evaluate(*ci_, ev, Ctx(live)); }
  std::shared_ptr<const CompiledIntent> ci_;
};

TEST_F(EngineTest, Exec) {
  Verdict v = Eval(EventBuilder::Exec("/usr/bin/git", {"git", "status"}));
  EXPECT_EQ(v.kind, Verdict::kAllow);
  EXPECT_EQ(RuleOf(v), "coding-agent/exec.allow[0]");
  v = Eval(EventBuilder::Exec("/usr/bin/sudo", {"sudo", "-i"}));
  EXPECT_EQ(v.kind, Verdict::kViolation);
  EXPECT_EQ(RuleOf(v), "coding-agent/exec.deny[0]");
  EXPECT_EQ(v.rule->category, Category::kExec);
  EXPECT_EQ(v.rule->severity, "high");
  EXPECT_THAT(v.rule->responses, ::testing::ElementsAre("alert", "kill", "revoke"));
  EXPECT_THAT(v.rule->frameworks, ::testing::ElementsAre("OWASP-ASI02", "MAESTRO-L4"));
  EXPECT_EQ(v.rule->reason, "exec of a program denied by exec.deny[0] (/usr/bin/sudo)");
  v = Eval(EventBuilder::Exec("/usr/bin/curl"));
  EXPECT_EQ(v.kind, Verdict::kViolation);
  EXPECT_EQ(RuleOf(v), "coding-agent/exec.default");
  EXPECT_EQ(Eval(EventBuilder::Exec("/usr/lib/git-core/git-remote-https")).kind, Verdict::kAllow);
  EXPECT_EQ(Eval(EventBuilder::Exec("/usr/lib/git-core")).kind, Verdict::kAllow);
  EXPECT_EQ(Eval(EventBuilder::Exec("/usr/lib/git-corex/x")).kind, Verdict::kViolation);
}

TEST_F(EngineTest, Approval) {
  Verdict v = Eval(EventBuilder::Exec("/usr/bin/git", {"git", "push", "origin", "main"}));
  EXPECT_EQ(v.kind, Verdict::kNeedsApproval);
  EXPECT_EQ(RuleOf(v), "coding-agent/approval[0]");
  EXPECT_EQ(v.rule->category, Category::kApproval);
  EXPECT_EQ(ci_->approval_timeout(v.rule), absl::Minutes(2));
  EXPECT_EQ(Eval(EventBuilder::Exec("/usr/bin/git", {"git", "push"})).kind,
            Verdict::kNeedsApproval);
  EXPECT_EQ(Eval(EventBuilder::Exec("/usr/bin/git", {"git", "pull", "push"})).kind,
            Verdict::kAllow);
}

// An approval rule without `args:` asks for every invocation: `sudo id` cannot run unasked under
// {exec: sudo} (it used to match only `sudo` with no arguments). `args: []` says "no arguments"
// only.
TEST(ApprovalTest, WithoutArgsEveryInvocationIsAsked) {
  auto ci =
      MustCompile(std::string(testing::kHeader) +
                  "exec: {allow: [/usr/bin/sudo, /usr/bin/top]}\n"
                  "approval:\n  - {exec: /usr/bin/sudo}\n  - {exec: /usr/bin/top, args: []}\n");
  ASSERT_NE(ci, nullptr);
  for (auto argv : {std::initializer_list<const char*>{"sudo"},
                    {"sudo", "id"},
                    {"sudo", "-u", "root", "id"},
                    {"sudo", "--", "sh", "-c", "id"},
                    {}}) {
    Verdict v = Evaluate(*ci, EventBuilder::Exec("/usr/bin/sudo", argv), Ctx());
    EXPECT_EQ(v.kind, Verdict::kNeedsApproval)
        << (argv.size() ? argv.begin()[argv.size() - 1] : "(no argv)");
    EXPECT_EQ(RuleOf(v), "t/approval[0]");
  }
  EXPECT_EQ(ci->FindRule("t/approval[0]")->reason,
            "exec requires approval by approval[0] (/usr/bin/sudo, any arguments)");
  EXPECT_EQ(Evaluate(*ci, EventBuilder::Exec("/usr/bin/top", {"top"}), Ctx()).kind,
            Verdict::kNeedsApproval);
  EXPECT_EQ(Evaluate(*ci, EventBuilder::Exec("/usr/bin/top", {"top", "-b"}), Ctx()).kind,
            Verdict::kAllow);
  EXPECT_EQ(ci->FindRule("t/approval[1]")->pattern, "/usr/bin/top, no arguments");
  // The kernel decides alone that every exec of sudo stops for userspace (APPROVAL in its table);
  // no other exec needs to stop for these rules.
  KernelTables t = ci->kernel_tables();
  EXPECT_THAT(t.exec_approval_exact, ::testing::ElementsAre("/usr/bin/sudo", "/usr/bin/top"));
  EXPECT_TRUE(t.exec_has_globs);  // top's `args: []` is an argument pattern
  auto only_sudo =
      MustCompile(std::string(testing::kHeader) + "approval:\n  - {exec: /usr/bin/sudo}\n");
  EXPECT_FALSE(only_sudo->kernel_tables().exec_has_globs);
  EXPECT_THAT(only_sudo->kernel_tables().exec_approval_exact,
              ::testing::ElementsAre("/usr/bin/sudo"));
}

// A subcommand rule finds the subcommand after the program's options, however they are spelled,
// and under git's dashed name; it does not look past the first operand no option can claim.
TEST(ApprovalTest, SubcommandIsFoundAfterOptionsAndUnderTheDashedName) {
  auto ci = MustCompile(
      std::string(testing::kHeader) +
      "approval:\n"
      "  - {exec: /usr/bin/git, subcommand: push}\n"
      "  - {exec: /usr/lib/git-core/git, subcommand: push}\n"
      "  - {exec: /usr/bin/kubectl, subcommand: delete, args: [\"**\", \"--all*\", \"**\"]}\n");
  ASSERT_NE(ci, nullptr);
  auto git = [&](std::initializer_list<const char*> argv, const char* exe = "/usr/bin/git") {
    return Evaluate(*ci, EventBuilder::Exec(exe, argv), Ctx()).kind;
  };
  for (auto argv : {std::initializer_list<const char*>{"git", "push"},
                    {"git", "push", "origin", "main"},
                    {"git", "-C", "/src/repo", "push"},
                    {"git", "-c", "k=v", "push", "--force"},
                    {"git", "--git-dir=/src/repo/.git", "push"},
                    {"git", "--git-dir", "/src/repo/.git", "--work-tree", "/src/repo", "push"},
                    {"git", "-C", "d", "-c", "a=b", "--no-pager", "-p", "push", "origin"},
                    {"git", "--", "push"},
                    {"git", "-C", "push", "status"}}) {  // push as -C's value: errs on asking
    EXPECT_EQ(git(argv), Verdict::kNeedsApproval) << absl::StrJoin(argv, " ");
  }
  for (auto argv : {std::initializer_list<const char*>{"git", "status"},
                    {"git", "log", "push"},
                    {"git", "commit", "-m", "push"},
                    {"git", "-C", "/src/repo", "status", "push"},
                    {"git", "--version"},
                    {"git"},
                    {"git", "pushx"}}) {
    EXPECT_EQ(git(argv), Verdict::kAllow) << absl::StrJoin(argv, " ");
  }
  EXPECT_EQ(ci->FindRule("t/approval[0]")->pattern, "/usr/bin/git [options] push");
  // git runs the command its name says: /usr/lib/git-core/git-push (a symlink to git-core's git),
  // or any symlink named git-push, is `git push` (the exe is the resolved path, argv[0] the name).
  const char* core = "/usr/lib/git-core/git";
  EXPECT_EQ(git({"/usr/lib/git-core/git-push", "origin", "main"}, core), Verdict::kNeedsApproval);
  EXPECT_EQ(git({"git-push"}, core), Verdict::kNeedsApproval);
  EXPECT_EQ(git({"/tmp/x/git-push", "origin"}, "/usr/bin/git"), Verdict::kNeedsApproval);
  EXPECT_EQ(git({"/usr/lib/git-core/git", "push"}, core), Verdict::kNeedsApproval);
  EXPECT_EQ(git({"git-receive-pack", "/srv/r.git"}, core), Verdict::kAllow);
  EXPECT_EQ(git({"/usr/lib/git-core/git", "pack-objects", "--revs"}, core), Verdict::kAllow);
  // With args: they judge what follows the subcommand, at whichever place it was found.
  auto kubectl = [&](std::initializer_list<const char*> argv) {
    return Evaluate(*ci, EventBuilder::Exec("/usr/bin/kubectl", argv), Ctx()).kind;
  };
  EXPECT_EQ(kubectl({"kubectl", "-n", "prod", "delete", "pods", "--all"}), Verdict::kNeedsApproval);
  EXPECT_EQ(kubectl({"kubectl", "--context=x", "delete", "--all-namespaces", "pods"}),
            Verdict::kNeedsApproval);
  EXPECT_EQ(kubectl({"kubectl", "-n", "prod", "delete", "pod", "web-1"}), Verdict::kAllow);
  EXPECT_EQ(kubectl({"kubectl", "get", "pods", "--all"}), Verdict::kAllow);
}

// writd sees at most 16 arguments (4 KiB, 256 bytes each): a subcommand pushed out of sight by
// padding options, or an argument cut short, is asked for rather than skipped.
TEST(ApprovalTest, ArgvWritdCouldNotSeeWholeIsAsked) {
  auto ci = MustCompile(std::string(testing::kHeader) +
                        "approval:\n"
                        "  - {exec: /usr/bin/git, subcommand: push}\n"
                        "  - {exec: /usr/bin/curl, args: [\"**\", \"--upload-file\", \"**\"]}\n"
                        "  - {exec: /srv/deploy, args: [\"prod-*\"]}\n");
  ASSERT_NE(ci, nullptr);
  auto padded = [](const char* exe, bool truncated) {
    writ::v1::Event ev = EventBuilder::Exec(exe, {"x"});
    for (int i = 0; i < 7; ++i) {
      ev.mutable_process()->add_args("-c");
      ev.mutable_process()->add_args("k=v");
    }
    ev.mutable_process()->add_args("-c");  // 16 arguments seen: `... -c k=v push` was cut
    ev.mutable_process()->set_args_truncated(truncated);
    return ev;
  };
  EXPECT_EQ(Evaluate(*ci, padded("/usr/bin/git", true), Ctx()).kind, Verdict::kNeedsApproval);
  EXPECT_EQ(Evaluate(*ci, padded("/usr/bin/git", false), Ctx()).kind, Verdict::kAllow);
  EXPECT_EQ(Evaluate(*ci, padded("/usr/bin/curl", true), Ctx()).kind, Verdict::kNeedsApproval);
  EXPECT_EQ(Evaluate(*ci, padded("/usr/bin/curl", false), Ctx()).kind, Verdict::kAllow);
  // A decided subcommand stays decided: the unseen rest cannot change it.
  writ::v1::Event status = EventBuilder::Exec("/usr/bin/git", {"git", "status"});
  status.mutable_process()->set_args_truncated(true);
  status.mutable_process()->add_args(std::string(kArgCutBytes, 'a'));
  EXPECT_EQ(Evaluate(*ci, status, Ctx()).kind, Verdict::kAllow);
  // The last argument seen, or one of 256 bytes, may be the beginning of a longer one.
  writ::v1::Event cut = EventBuilder::Exec("/srv/deploy", {"deploy", "pr"});
  EXPECT_EQ(Evaluate(*ci, cut, Ctx()).kind, Verdict::kAllow);
  cut.mutable_process()->set_args_truncated(true);
  EXPECT_EQ(Evaluate(*ci, cut, Ctx()).kind, Verdict::kNeedsApproval);
  writ::v1::Event two = EventBuilder::Exec("/srv/deploy", {"deploy", "staging", "x"});
  two.mutable_process()->set_args_truncated(true);
  EXPECT_EQ(Evaluate(*ci, two, Ctx()).kind, Verdict::kAllow);  // more arguments than the rule has
}

// Known limit (docs/threat-model.md): an alias is git's own indirection; argv shows no push.
TEST(ApprovalTest, GitAliasRunsPushUnaskedKnownLimit) {
  auto ci = MustCompile(std::string(testing::kHeader) +
                        "approval:\n  - {exec: /usr/bin/git, subcommand: push}\n");
  ASSERT_NE(ci, nullptr);
  EXPECT_EQ(
      Evaluate(*ci,
               EventBuilder::Exec("/usr/bin/git", {"git", "-c", "alias.p=push", "p", "origin"}),
               Ctx())
          .kind,
      Verdict::kAllow);
}

// An intent with approval rules but no exec: category still has its execs judged, so the kernel
// stops those its table cannot decide (a program glob): WRIT_TASK_EXEC_USER comes from exec_judged.
TEST(ApprovalTest, GlobApprovalWithoutAnExecCategoryIsStoppedByTheKernel) {
  auto ci =
      MustCompile(std::string(testing::kHeader) + "approval:\n  - {exec: \"/opt/tools/**\"}\n");
  ASSERT_NE(ci, nullptr);
  KernelTables t = ci->kernel_tables();
  EXPECT_TRUE(t.exec_judged);
  EXPECT_TRUE(t.exec_has_globs);
  EXPECT_FALSE(t.exec_default_deny);
  EXPECT_TRUE(t.exec_allow_exact.empty());
  EXPECT_EQ(Evaluate(*ci, EventBuilder::Exec("/opt/tools/bin/deploy", {"deploy", "x"}), Ctx()).kind,
            Verdict::kNeedsApproval);
  EXPECT_EQ(Evaluate(*ci, EventBuilder::Exec("/usr/bin/ls"), Ctx()).kind, Verdict::kAllow);
  auto none = MustCompile(std::string(testing::kHeader) + "files: {deny: [/etc/shadow]}\n");
  EXPECT_FALSE(none->kernel_tables().exec_judged);
}

// An exact exec.allow path that a program-glob approval covers is an approval path in the kernel's
// table (APPROVAL, stopped for userspace), not ALLOW: the shipped "/usr/**/git" rules and
// exec.allow /usr/bin/git would otherwise let git run before writd looked at its argv.
TEST(ApprovalTest, AllowedProgramAGlobApprovalCoversIsStoppedByTheKernel) {
  auto ci = MustCompile(std::string(testing::kHeader) +
                        "exec: {allow: [/usr/bin/git, /usr/bin/make]}\n"
                        "approval:\n  - {exec: \"/usr/**/git\", subcommand: push}\n");
  ASSERT_NE(ci, nullptr);
  KernelTables t = ci->kernel_tables();
  EXPECT_THAT(t.exec_allow_exact, ::testing::ElementsAre("/usr/bin/git", "/usr/bin/make"));
  EXPECT_THAT(t.exec_approval_exact, ::testing::ElementsAre("/usr/bin/git"));
  EXPECT_TRUE(t.exec_has_globs);
}

// A shebang exec (process.script set): deny and approval rules judge the script as well as the
// interpreter; the allow list judges the interpreter, the image that runs.
TEST_F(EngineTest, ScriptOfAShebangExec) {
  auto script_exec = [](const char* exe, const char* script) -> writ::v1::Event {
    return EventBuilder::Exec(exe).Script(script).event();
  };
  auto ci = MustCompile(
      std::string(testing::kHeader) +
      "exec:\n  allow: [/usr/bin/git, /bin/sh]\n  deny: [/usr/bin/sudo, \"/opt/bad/**\"]\n"
      "approval:\n  - {exec: /srv/deploy.sh}\n");
  ASSERT_NE(ci, nullptr);
  Verdict v = Evaluate(*ci, script_exec("/bin/sh", "/opt/bad/x.sh"), Ctx(1));
  EXPECT_EQ(v.kind, Verdict::kViolation);
  EXPECT_TRUE(v.by_script);
  EXPECT_EQ(RuleOf(v), "t/exec.deny[1]");
  v = Evaluate(*ci, script_exec("/bin/sh", "/srv/deploy.sh"), Ctx(1));
  EXPECT_EQ(v.kind, Verdict::kNeedsApproval);
  EXPECT_TRUE(v.by_script);
  // An approval's args are the script's own: what follows the script's name in the interpreter's
  // argv
  // ([interpreter, its optional argument, the name passed to execve, the script's arguments]).
  auto gated = MustCompile(std::string(testing::kHeader) +
                           "approval:\n  - {exec: /srv/deploy.sh, args: [prod, \"**\"]}\n");
  ASSERT_NE(gated, nullptr);
  auto deploy = [](std::initializer_list<const char*> argv,
                   const char* filename) -> writ::v1::Event {
    writ::v1::Event ev = EventBuilder::Exec("/usr/bin/bash", argv).Script("/srv/deploy.sh").event();
    ev.mutable_process()->set_filename(filename);
    return ev;
  };
  EXPECT_EQ(
      Evaluate(*gated, deploy({"/bin/bash", "./deploy.sh", "prod", "-v"}, "./deploy.sh"), Ctx(1))
          .kind,
      Verdict::kNeedsApproval);
  EXPECT_EQ(
      Evaluate(*gated, deploy({"/bin/bash", "-e", "./deploy.sh", "prod"}, "./deploy.sh"), Ctx(1))
          .kind,
      Verdict::kNeedsApproval);  // the shebang line's optional argument comes first
  EXPECT_EQ(
      Evaluate(*gated, deploy({"/bin/bash", "./deploy.sh", "staging"}, "./deploy.sh"), Ctx(1)).kind,
      Verdict::kAllow);
  // The kernel's copy of a long name is cut: the argument beginning with it is the script's name.
  EXPECT_EQ(
      Evaluate(*gated, deploy({"/bin/bash", "/long/deploy.sh", "prod"}, "/long/dep"), Ctx(1)).kind,
      Verdict::kNeedsApproval);
  // An allowed interpreter runs any other script; the script is not held to the allow list.
  v = Evaluate(*ci, script_exec("/bin/sh", "/src/proj/build.sh"), Ctx(1));
  EXPECT_EQ(v.kind, Verdict::kAllow);
  EXPECT_FALSE(v.by_script);
  // The interpreter itself is still judged first.
  v = Evaluate(*ci, script_exec("/usr/bin/python3", "/src/proj/build.py"), Ctx(1));
  EXPECT_EQ(v.kind, Verdict::kViolation);
  EXPECT_FALSE(v.by_script);
  EXPECT_TRUE(ci->kernel_tables().exec_script_judged);
  EXPECT_TRUE(ci_->kernel_tables().exec_script_judged);
  auto allow_only = MustCompile(std::string(testing::kHeader) + "exec: {allow: [/usr/bin/true]}\n");
  EXPECT_FALSE(allow_only->kernel_tables().exec_script_judged);  // nothing could name a script
}

TEST_F(EngineTest, Files) {
  auto check = [&](const char* path, std::initializer_list<const char*> flags, Verdict::Kind k,
                   const std::string& rule) {
    Verdict v = Eval(EventBuilder::Open(path, flags));
    EXPECT_EQ(v.kind, k) << path;
    EXPECT_EQ(RuleOf(v), rule) << path;
  };
  check("/etc/shadow", {"read"}, Verdict::kViolation, "coding-agent/files.deny[0]");
  check("/src/proj/.ssh/config", {"read"}, Verdict::kViolation, "coding-agent/files.deny[1]");
  check("/src/proj/app/.env", {"read"}, Verdict::kViolation, "coding-agent/files.deny[2]");
  check("/src/proj/main.cc", {"read"}, Verdict::kAllow, "coding-agent/files.read[0]");
  check("/src/proj/main.cc", {"write", "truncate"}, Verdict::kAllow, "coding-agent/files.write[0]");
  check("/src/proj/new.cc", {"write", "create"}, Verdict::kAllow, "coding-agent/files.write[0]");
  check("/usr/lib/libc.so.6", {}, Verdict::kAllow, "coding-agent/files.read[1]");
  check("/etc/ld.so.cache", {"read"}, Verdict::kAllow, "coding-agent/files.read[3]");
  check("/usr/lib/libc.so.6", {"read", "write"}, Verdict::kViolation,
        "coding-agent/files.write.default");
  check("/etc/passwd", {"read"}, Verdict::kViolation, "coding-agent/files.read.default");
  check("/tmp/x", {"read"}, Verdict::kAllow, "coding-agent/files.write[1]");  // write grants read
  check("/src/projx/a", {"read"}, Verdict::kViolation, "coding-agent/files.read.default");
  // ${cache} was not given: rules using it are omitted, not widened to "/**".
  check("/anything", {"read"}, Verdict::kViolation, "coding-agent/files.read.default");
  EXPECT_EQ(ci_->FindRule("coding-agent/files.read[4]"), nullptr);
}

TEST_F(EngineTest, Network) {
  auto check = [&](const char* ip, uint32_t port, Verdict::Kind k, const std::string& rule) {
    Verdict v = Eval(EventBuilder::Connect(ip, port));
    EXPECT_EQ(v.kind, k) << ip << ":" << port;
    EXPECT_EQ(RuleOf(v), rule) << ip << ":" << port;
  };
  check("127.0.0.1", 8080, Verdict::kAllow, "coding-agent/network.connect.allow[0]");
  check("127.0.0.1", 8081, Verdict::kViolation, "coding-agent/network.connect.default");
  check("127.0.0.1", 9000, Verdict::kAllow, "coding-agent/network.connect.allow[1]");
  check("127.0.0.1", 9100, Verdict::kAllow, "coding-agent/network.connect.allow[1]");
  check("127.0.0.1", 9101, Verdict::kViolation, "coding-agent/network.connect.default");
  check("127.0.0.1", 9050, Verdict::kViolation,
        "coding-agent/network.connect.deny[0]");  // deny beats allow
  check("::ffff:127.0.0.1", 8080, Verdict::kAllow, "coding-agent/network.connect.allow[0]");
  check("fd12:3456::1", 443, Verdict::kAllow,
        "coding-agent/network.connect.allow[2]");  // no ports = all
  check("fe80::1", 443, Verdict::kViolation, "coding-agent/network.connect.default");
  check("140.82.112.3", 443, Verdict::kViolation, "coding-agent/network.connect.default");
  check("not-an-ip", 443, Verdict::kViolation, "coding-agent/network.connect.default");
}

TEST_F(EngineTest, LimitsAndOtherKinds) {
  EXPECT_EQ(ci_->ttl(), absl::Minutes(30));
  EXPECT_EQ(ci_->max_processes(), 64);
  EXPECT_EQ(Eval(EventBuilder::Kind("fork"), 64).kind, Verdict::kAllow);
  Verdict v = Eval(EventBuilder::Kind("fork"), 65);
  EXPECT_EQ(v.kind, Verdict::kViolation);
  EXPECT_EQ(RuleOf(v), "coding-agent/limits.max_processes");
  EXPECT_EQ(Eval(EventBuilder::Exec("/usr/bin/git"), 65).kind, Verdict::kViolation);
  EXPECT_EQ(Eval(EventBuilder::Kind("exit")).kind, Verdict::kNotJudged);
  EXPECT_EQ(Eval(EventBuilder::Kind("task_start")).rule, nullptr);
}

TEST(CompileTest, Params) {
  auto in = MustParse(kCoding);
  EXPECT_EQ(Compile(in, {}).status().message(),
            "intent coding-agent: params.repo: missing required parameter");
  EXPECT_EQ(Compile(in, {{"repo", "/a"}, {"nope", "1"}}).status().message(),
            "intent coding-agent: params.nope: unknown parameter (not declared by the intent)");
  EXPECT_EQ(Compile(in, {{"repo", "relative"}}).status().message(),
            "intent coding-agent: params.repo: expected an absolute path, got \"relative\"");
  EXPECT_FALSE(Compile(in, {{"repo", "/a/*"}}).ok());
  auto ci = Compile(in, {{"repo", "/a"}, {"cache", "/var/cache/x"}});
  ASSERT_TRUE(ci.ok()) << ci.status();
  EXPECT_EQ((*ci)->params().at("cache"), "/var/cache/x");
  EXPECT_EQ(Evaluate(**ci, EventBuilder::Open("/var/cache/x/y"), Ctx()).kind, Verdict::kAllow);
  auto typed =
      MustParse(std::string(testing::kHeader) +
                "params:\n  n: {type: int, required: true}\n  b: {type: bool, default: \"false\"}\n"
                "network: {connect: {allow: [{cidr: 127.0.0.1/32, ports: [\"${n}\"]}]}}\n");
  EXPECT_EQ(Compile(typed, {{"n", "x"}}).status().message(),
            "intent t: params.n: expected int, got \"x\"");
  EXPECT_EQ(Compile(typed, {{"n", "5"}, {"b", "1"}}).status().message(),
            "intent t: params.b: expected bool (true|false), got \"1\"");
  EXPECT_EQ(Compile(typed, {{"n", "70000"}}).status().message(),
            "intent t: network.connect.allow[0].ports[0]: bad port \"70000\": ports are 1..65535");
  auto ok = Compile(typed, {{"n", "5432"}});
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(Evaluate(**ok, EventBuilder::Connect("127.0.0.1", 5432), Ctx()).kind, Verdict::kAllow);
  EXPECT_EQ(Evaluate(**ok, EventBuilder::Connect("127.0.0.1", 5433), Ctx()).kind,
            Verdict::kViolation);
}

TEST(CompileTest, AbsentCategoriesAreNotJudgedEmptyListsDenyAll) {
  auto none = MustCompile(testing::kHeader);
  EXPECT_EQ(Evaluate(*none, EventBuilder::Exec("/bin/x"), Ctx()).kind, Verdict::kNotJudged);
  EXPECT_EQ(Evaluate(*none, EventBuilder::Open("/etc/shadow"), Ctx()).kind, Verdict::kNotJudged);
  EXPECT_EQ(Evaluate(*none, EventBuilder::Connect("1.1.1.1", 53), Ctx()).kind, Verdict::kNotJudged);
  EXPECT_EQ(Evaluate(*none, EventBuilder::Kind("fork"), Ctx(1000)).kind, Verdict::kNotJudged);
  auto empty =
      MustCompile(std::string(testing::kHeader) +
                  "exec: {allow: []}\nfiles: {read: []}\nnetwork: {connect: {allow: []}}\n");
  EXPECT_EQ(Evaluate(*empty, EventBuilder::Exec("/bin/x"), Ctx()).kind, Verdict::kViolation);
  EXPECT_EQ(Evaluate(*empty, EventBuilder::Open("/a"), Ctx()).kind, Verdict::kViolation);
  EXPECT_EQ(Evaluate(*empty, EventBuilder::Open("/a", {"write"}), Ctx()).kind,
            Verdict::kAllow);  // no write list
  EXPECT_EQ(Evaluate(*empty, EventBuilder::Connect("127.0.0.1", 80), Ctx()).kind,
            Verdict::kViolation);
  auto deny_only = MustCompile(
      std::string(testing::kHeader) +
      "exec: {deny: [/usr/bin/sudo]}\nnetwork: {connect: {deny: [{cidr: 10.0.0.0/8}]}}\n");
  EXPECT_EQ(Evaluate(*deny_only, EventBuilder::Exec("/bin/x"), Ctx()).kind, Verdict::kAllow);
  EXPECT_EQ(Evaluate(*deny_only, EventBuilder::Exec("/usr/bin/sudo"), Ctx()).kind,
            Verdict::kViolation);
  EXPECT_EQ(Evaluate(*deny_only, EventBuilder::Connect("10.1.2.3", 22), Ctx()).kind,
            Verdict::kViolation);
  EXPECT_EQ(Evaluate(*deny_only, EventBuilder::Connect("11.1.2.3", 22), Ctx()).kind,
            Verdict::kAllow);
}

TEST(CompileTest, HoursWindow) {
  auto ci = MustCompile(std::string(testing::kHeader) + "limits: {hours: \"22:00-06:00 UTC\"}\n");
  auto at = [](int h, int m) { return absl::FromUnixSeconds(1767225600 + h * 3600 + m * 60); };
  EXPECT_EQ(Evaluate(*ci, EventBuilder::Open("/a"), Ctx(1, at(23, 0))).kind, Verdict::kAllow);
  EXPECT_EQ(Evaluate(*ci, EventBuilder::Open("/a"), Ctx(1, at(5, 59))).kind, Verdict::kAllow);
  Verdict v = Evaluate(*ci, EventBuilder::Open("/a"), Ctx(1, at(6, 0)));
  EXPECT_EQ(v.kind, Verdict::kViolation);
  EXPECT_EQ(RuleOf(v), "t/limits.hours");
  EXPECT_EQ(Evaluate(*ci, EventBuilder::Connect("1.1.1.1", 1), Ctx(1, at(12, 0))).kind,
            Verdict::kViolation);
  EXPECT_EQ(Evaluate(*ci, EventBuilder::Kind("exit"), Ctx(1, at(12, 0))).kind, Verdict::kNotJudged);
  auto berlin = MustCompile(std::string(testing::kHeader) +
                            "limits: {hours: \"09:00-17:00 Europe/Berlin\"}\n");
  // 08:30 UTC in January is 09:30 in Berlin.
  EXPECT_EQ(Evaluate(*berlin, EventBuilder::Open("/a"), Ctx(1, at(8, 30))).kind, Verdict::kAllow);
  EXPECT_EQ(Evaluate(*berlin, EventBuilder::Open("/a"), Ctx(1, at(16, 30))).kind,
            Verdict::kViolation);
}

TEST(CompileTest, UnresolvableHostIsACompileError) {
  auto in = MustParse(std::string(testing::kHeader) +
                      "network: {connect: {allow: [{host: no-such-host.invalid}]}}\n");
  auto ci = Compile(in, {});
  ASSERT_FALSE(ci.ok());
  EXPECT_THAT(
      std::string(ci.status().message()),
      HasSubstr(
          "intent t: network.connect.allow[0].host: cannot resolve \"no-such-host.invalid\""));
}

TEST_F(EngineTest, KernelTables) {
  KernelTables t = ci_->kernel_tables();
  EXPECT_THAT(t.exec_allow_exact, ::testing::ElementsAre("/usr/bin/git", "/usr/bin/make"));
  EXPECT_THAT(t.exec_deny_exact, ::testing::ElementsAre("/usr/bin/sudo"));
  EXPECT_THAT(t.exec_approval_exact, ::testing::ElementsAre("/usr/bin/git"));
  EXPECT_TRUE(t.exec_has_globs);
  EXPECT_TRUE(t.exec_default_deny);
  EXPECT_TRUE(t.net_judged);
  EXPECT_TRUE(t.net_default_deny);
  ASSERT_GE(t.net_rules.size(), 4u);
  EXPECT_TRUE(t.net_rules[0].deny);
  EXPECT_EQ(t.net_rules[0].family, AF_INET);
  EXPECT_EQ(t.net_rules[0].prefix_len, 32);
  EXPECT_EQ(t.net_rules[0].addr[0], 127);
  EXPECT_EQ(t.net_rules[0].port_lo, 9050);
  EXPECT_EQ(t.net_rules[0].port_hi, 9050);
  EXPECT_THAT(t.file_deny_exact, ::testing::ElementsAre("/etc/shadow"));
  EXPECT_TRUE(t.file_deny_prefix.empty());
  EXPECT_THAT(t.file_deny_leaf, ::testing::ElementsAre(".env"));
  EXPECT_THAT(t.file_deny_any_component, ::testing::ElementsAre(".ssh"));
  EXPECT_FALSE(t.file_deny_has_globs);  // both deny globs are component rules
  auto simple = MustCompile(std::string(testing::kHeader) +
                            "exec: {allow: [/usr/bin/true]}\nfiles: {deny: [\"/root/**\"]}\n");
  KernelTables s = simple->kernel_tables();
  EXPECT_FALSE(s.exec_has_globs);
  EXPECT_FALSE(s.net_judged);
  EXPECT_THAT(s.file_deny_prefix, ::testing::ElementsAre("/root/"));
}

// Which deny globs become kernel component entries: exactly "**/NAME" and "**/NAME/**" with a
// literal NAME, from files.deny only (an allow glob never becomes a kernel deny); everything else
// stays in userspace and keeps file_deny_has_globs set.
TEST(CompileTest, FileDenyComponentEntries) {
  auto ci = MustCompile(std::string(testing::kHeader) + R"(files:
  read: ["**/.npmrc", "/src/**"]
  write: ["**/.cache/**"]
  deny: ["**/.env", "**/.ssh/**", "**/.aws/**", "**/.env", "**/id_*", "**/.git/config", "/home/**/.kube/**",
         "**/.gnupg/*", "/etc/shadow", "/root/**"]
)");
  KernelTables t = ci->kernel_tables();
  EXPECT_THAT(t.file_deny_leaf, ::testing::ElementsAre(".env"));
  EXPECT_THAT(t.file_deny_any_component, ::testing::ElementsAre(".aws", ".ssh"));
  EXPECT_TRUE(
      t.file_deny_has_globs);  // "**/id_*", "**/.git/config", "/home/**/.kube/**", "**/.gnupg/*"
  EXPECT_THAT(t.file_deny_exact, ::testing::ElementsAre("/etc/shadow"));
  EXPECT_THAT(t.file_deny_prefix, ::testing::ElementsAre("/root/"));

  auto none =
      MustCompile(std::string(testing::kHeader) + R"(files: {read: ["**/.env"], deny: ["**/x*"]}
)");
  KernelTables n = none->kernel_tables();
  EXPECT_TRUE(n.file_deny_leaf.empty());
  EXPECT_TRUE(n.file_deny_any_component.empty());
  EXPECT_TRUE(n.file_deny_has_globs);
}

// The kernel's component verdict must be a subset of the engine's: every path the kernel would kill
// for (modelled here from the compiled tables the way hash_step walks components) is a violation in
// userspace, even where files.read/files.write allow it (a deny is final), and for these rule
// shapes the two agree exactly.
TEST(CompileTest, KernelComponentDenyIsAUserspaceDeny) {
  auto ci = MustCompile(std::string(testing::kHeader) + R"(files:
  read: ["/**"]
  write: ["/work/**"]
  deny: ["**/.env", "**/.ssh/**"]
)");
  KernelTables t = ci->kernel_tables();
  auto in = [](const std::vector<std::string>& v, absl::string_view s) {
    return std::find(v.begin(), v.end(), s) != v.end();
  };
  auto kernel_kills = [&](const std::string& path) {
    std::vector<std::string> comps = absl::StrSplit(path.substr(1), '/');
    for (size_t i = 0; i < comps.size(); i++) {
      const bool leaf = i + 1 == comps.size();
      if (in(t.file_deny_any_component, comps[i]))
        return true;  // installed as DIR and LEAF entries
      if (leaf && in(t.file_deny_leaf, comps[i])) return true;
    }
    return false;
  };
  struct Case {
    const char* path;
    bool denied;
  };
  for (const Case& c : {Case{"/home/u/.ssh/id_ed25519", true}, Case{"/home/u/.ssh", true},
                        Case{"/.ssh/a/b/c", true}, Case{"/work/a/.env", true}, Case{"/.env", true},
                        Case{"/home/u/.sshx/id", false}, Case{"/home/u/ssh", false},
                        Case{"/work/.env.example", false}, Case{"/work/.env/inner", false},
                        Case{"/work/x.env", false}}) {
    Verdict r = Evaluate(*ci, EventBuilder::Open(c.path, {"read"}), Ctx());
    EXPECT_EQ(r.kind == Verdict::kViolation, c.denied) << c.path;
    if (c.denied) {  // a write the write list allows ("/work/**") is still denied
      Verdict w = Evaluate(*ci, EventBuilder::Open(c.path, {"write", "create"}), Ctx());
      ASSERT_EQ(w.kind, Verdict::kViolation) << c.path;
      ASSERT_NE(w.rule, nullptr);
      EXPECT_THAT(w.rule->id, HasSubstr("files.deny")) << c.path;
    }
    EXPECT_EQ(kernel_kills(c.path), c.denied) << c.path;
  }
}

// files.deny also denies a denied file's other names: its identity (kernel device, inode) is taken
// at compile time -- the exact path stat()ed, a denied directory's files listed -- and an open of
// the same file through a hard link is a violation of the same rule, flagged by_file_id.
TEST_F(EngineTest, DeniedFilesAreDeniedByIdentityUnderAnyName) {
  char tmpl[] = "/tmp/writ-engine-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  std::filesystem::create_directories(dir + "/secrets/sub");
  std::ofstream(dir + "/exact.key") << "k";
  std::ofstream(dir + "/secrets/sub/deep.key") << "k";
  std::ofstream(dir + "/other") << "o";
  auto id = [](const std::string& p) {
    struct stat st;
    EXPECT_EQ(stat(p.c_str(), &st), 0) << p;
    return std::make_pair(static_cast<uint32_t>((major(st.st_dev) << 20) | minor(st.st_dev)),
                          static_cast<uint64_t>(st.st_ino));
  };
  auto ci = MustCompile(std::string(testing::kHeader) + "files:\n  deny: [\"" + dir +
                        "/exact.key\", \"" + dir + "/secrets/**\", \"" + dir + "/missing\"]\n");
  ASSERT_NE(ci, nullptr);
  EXPECT_EQ(ci->file_deny_id_count(),
            2u);  // the exact file and the one regular file below secrets/
  EXPECT_FALSE(ci->file_deny_ids_truncated());
  auto [edev, eino] = id(dir + "/exact.key");
  auto [ddev, dino] = id(dir + "/secrets/sub/deep.key");
  auto [odev, oino] = id(dir + "/other");
  Verdict v = Evaluate(*ci, EventBuilder::Open("/tmp/innocent-link").FileId(edev, eino), Ctx());
  EXPECT_EQ(v.kind, Verdict::kViolation);
  EXPECT_EQ(RuleOf(v), "t/files.deny[0]");
  EXPECT_TRUE(v.by_file_id);
  v = Evaluate(*ci, EventBuilder::Open("/tmp/another-link").FileId(ddev, dino), Ctx());
  EXPECT_EQ(RuleOf(v), "t/files.deny[1]");
  EXPECT_TRUE(v.by_file_id);
  // The path rule decides first (not by identity), other files are not affected, and an event
  // without an identity (a failed open) is judged by its path alone.
  v = Evaluate(*ci, EventBuilder::Open(dir + "/exact.key").FileId(edev, eino), Ctx());
  EXPECT_EQ(v.kind, Verdict::kViolation);
  EXPECT_FALSE(v.by_file_id);
  EXPECT_NE(Evaluate(*ci, EventBuilder::Open("/tmp/x").FileId(odev, oino), Ctx()).kind,
            Verdict::kViolation);
  EXPECT_NE(Evaluate(*ci, EventBuilder::Open("/tmp/x"), Ctx()).kind, Verdict::kViolation);
  // The kernel gets the same identities.
  auto ids = ci->kernel_tables().file_deny_ids;
  EXPECT_EQ(ids.size(), 2u);
  EXPECT_NE(std::find(ids.begin(), ids.end(), std::make_pair(edev, eino)), ids.end());
  EXPECT_NE(std::find(ids.begin(), ids.end(), std::make_pair(ddev, dino)), ids.end());
  std::filesystem::remove_all(dir);
}

TEST_F(EngineTest, Explain) {
  std::string e = Explain(*ci_, EventBuilder::Open("/home/a/.ssh/id_rsa"), Ctx());
  EXPECT_THAT(e, HasSubstr("intent coding-agent: open /home/a/.ssh/id_rsa (read) -> violation"));
  EXPECT_THAT(e, HasSubstr("rule: coding-agent/files.deny[1] (file)"));
  EXPECT_THAT(e, HasSubstr("why: open of a path denied by files.deny[1] (**/.ssh/**)"));
  EXPECT_THAT(e, HasSubstr("responses: alert, kill, revoke"));
  e = Explain(*ci_, EventBuilder::Exec("/usr/bin/git", {"git", "push"}), Ctx());
  EXPECT_THAT(e, HasSubstr("-> needs_approval"));
  EXPECT_THAT(e, HasSubstr("approval timeout: 2m"));
}

TEST_F(EngineTest, EvaluateAllocatesNothing) {
  std::vector<writ::v1::Event> evs = {
      EventBuilder::Open("/usr/lib/x86_64-linux-gnu/libc.so.6"),
      EventBuilder::Open("/src/proj/deep/dir/file.cc", {"write", "create"}),
      EventBuilder::Open("/home/a/.ssh/id_rsa"),
      EventBuilder::Open("/etc/passwd"),
      EventBuilder::Exec("/usr/bin/git", {"git", "push", "origin"}),
      EventBuilder::Exec("/usr/lib/git-core/git-gc"),
      EventBuilder::Exec("/usr/bin/nc"),
      EventBuilder::Connect("127.0.0.1", 9050),
      EventBuilder::Connect("::ffff:127.0.0.1", 8080),
      EventBuilder::Connect("fd00::1", 1),
      EventBuilder::Kind("fork"),
      EventBuilder::Kind("exit"),
  };
  auto berlin = MustCompile(std::string(testing::kHeader) +
                            "limits: {hours: \"09:00-17:00 Europe/Berlin\"}\n");
  auto gated =
      MustCompile(std::string(testing::kHeader) +
                  "approval:\n  - {exec: /usr/bin/git, subcommand: push, args: [\"**\", \"-f\"]}\n"
                  "  - {exec: /usr/bin/sudo}\n");
  evs.push_back(
      EventBuilder::Exec("/usr/bin/git", {"git", "-C", "/src/proj", "-c", "k=v", "push", "-f"}));
  evs.push_back(EventBuilder::Exec("/usr/bin/git", {"git", "--git-dir", "/x", "status", "push"}));
  evs.push_back(EventBuilder::Exec("/usr/bin/sudo", {"sudo", "id"}));
  writ::v1::Event cut = EventBuilder::Exec("/usr/bin/git", {"git", "-c", "k=v", "-c"});
  cut.mutable_process()->set_args_truncated(true);
  evs.push_back(cut);
  EvalContext ctx = Ctx(3);
  int violations = 0, approvals = 0;
  testlib::AllocCounter::Start();
  for (int i = 0; i < 100000; ++i) {
    const auto& ev = evs[i % evs.size()];
    violations += Evaluate(*ci_, ev, ctx).kind == Verdict::kViolation;
    violations += Evaluate(*berlin, ev, ctx).kind == Verdict::kViolation;
    approvals += Evaluate(*gated, ev, ctx).kind == Verdict::kNeedsApproval;
  }
  EXPECT_EQ(testlib::AllocCounter::Stop(), 0);
  EXPECT_GT(violations, 0);  // the loop really judged something
  EXPECT_GT(approvals, 0);
  // And the counter works: a std::string that escapes SSO is counted.
  testlib::AllocCounter::Start();
  std::string* s = new std::string(100, 'x');
  EXPECT_GE(testlib::AllocCounter::Stop(), 1);
  delete s;
}

}  // namespace
}  // namespace writ::intent

// ---- containment: what the kernel could not name whole, loaders, unix sockets, renames
// ----------------

namespace writ::intent {
namespace {

constexpr const char* kLd = "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2";

// An exe path the kernel's walk could not finish is a tail: "/usr/bin/git" at the end of a chain of
// 60 directories must not be allowed by exec.allow's /usr/bin/git (nor /usr/lib/git-core/**).
TEST_F(EngineTest, UnresolvedExecIsNeverAllowed) {
  Verdict v = Eval(EventBuilder::Exec("/usr/bin/git", {"git", "status"}).Unresolved());
  EXPECT_EQ(v.kind, Verdict::kViolation);
  EXPECT_EQ(RuleOf(v), "coding-agent/exec.unresolved");
  EXPECT_THAT(v.rule->reason, HasSubstr("could not resolve whole"));
  // An intent with approval rules only judges exec too.
  auto appr = MustCompile(std::string(testing::kHeader) + "approval: [{exec: /usr/bin/sudo}]\n");
  EXPECT_EQ(RuleOf(Evaluate(*appr, EventBuilder::Exec("/usr/bin/ls").Unresolved(), Ctx())),
            "t/exec.unresolved");
  // No exec rules: nothing to judge, nothing to allow.
  auto none = MustCompile(std::string(testing::kHeader) + "files: {deny: [/x]}\n");
  EXPECT_EQ(Evaluate(*none, EventBuilder::Exec("/usr/bin/ls").Unresolved(), Ctx()).kind,
            Verdict::kNotJudged);
  EXPECT_EQ(none->FindRule("t/exec.unresolved"), nullptr);
}

// `ld.so PROGRAM` runs PROGRAM: the allow list judges it (not the loader), deny and approval rules
// both.
TEST_F(EngineTest, DynamicLoaderIsJudgedByTheProgramItLoads) {
  Verdict v = Eval(EventBuilder::Exec(kLd, {"ld.so", "/tmp/evil"}).Loaded("/tmp/evil"));
  EXPECT_EQ(v.kind, Verdict::kViolation);
  EXPECT_EQ(RuleOf(v), "coding-agent/exec.default");
  v = Eval(EventBuilder::Exec(kLd, {"ld.so", "/usr/bin/git", "status"}).Loaded("/usr/bin/git"));
  EXPECT_EQ(v.kind, Verdict::kAllow);
  EXPECT_EQ(RuleOf(v), "coding-agent/exec.allow[0]");
  v = Eval(EventBuilder::Exec(kLd, {"ld.so", "--argv0", "git", "/usr/bin/sudo"})
               .Loaded("/usr/bin/sudo"));
  EXPECT_EQ(RuleOf(v), "coding-agent/exec.deny[0]");
  EXPECT_TRUE(v.by_loaded);
  // The approval's arguments are the program's own, after its name.
  v = Eval(EventBuilder::Exec(kLd, {"ld.so", "--preload", "/x.so", "/usr/bin/git", "push", "o"})
               .Loaded("/usr/bin/git"));
  EXPECT_EQ(v.kind, Verdict::kNeedsApproval);
  EXPECT_TRUE(v.by_loaded);
  // A loader whose program could not be resolved (a bare name it looks up itself).
  v = Eval(EventBuilder::Exec(kLd, {"ld.so", "git"}).Loaded("git").Unresolved());
  EXPECT_EQ(RuleOf(v), "coding-agent/exec.unresolved");
}

TEST(DynamicLoaderProgram, FollowsTheLoadersOwnGrammar) {
  auto at = [](std::initializer_list<const char*> args, bool cut = false) {
    google::protobuf::RepeatedPtrField<std::string> argv;
    for (const char* a : args) argv.Add(a);
    LoadedProgram lp = DynamicLoaderProgram(argv, cut);
    return lp.index < 0    ? std::string("?")
           : lp.index == 0 ? std::string("none")
                           : argv.Get(lp.index) + (lp.bare ? " bare" : "");
  };
  EXPECT_EQ(at({"ld.so", "./a.out", "x"}), "./a.out");
  // Options that take an argument must not be mistaken for the program: the argument is skipped.
  EXPECT_EQ(at({"ld.so", "--preload", "/usr/bin/git", "./evil"}), "./evil");
  EXPECT_EQ(at({"ld.so", "--library-path", "/tmp", "--argv0", "/usr/bin/git", "./evil"}), "./evil");
  EXPECT_EQ(at({"ld.so", "--audit", "a.so", "--inhibit-rpath", "l", "--glibc-hwcaps-mask", "m",
                "--glibc-hwcaps-prepend", "p", "/bin/x"}),
            "/bin/x");
  EXPECT_EQ(at({"ld.so", "--list", "--verify", "--inhibit-cache", "/bin/ls"}), "/bin/ls");
  EXPECT_EQ(at({"ld.so", "--", "/bin/ls"}), "/bin/ls");
  EXPECT_EQ(at({"ld.so", "--library-path", "/tmp", "evil"}), "evil bare");
  EXPECT_EQ(at({"ld.so", "--frobnicate", "x", "/bin/ls"}), "?");  // unknown: may take an argument
  EXPECT_EQ(at({"ld.so", "--help"}), "none");
  EXPECT_EQ(at({"ld.so"}), "none");
  EXPECT_EQ(at({"ld.so", "--preload"}), "none");                  // usage error: runs nothing
  EXPECT_EQ(at({"ld.so", "--preload", "x"}, /*cut=*/true), "?");  // the program was past the cut
}

constexpr const char* kUnix = R"(apiVersion: writ.dev/v1
kind: Intent
name: u
network:
  unix:
    allow: [/run/nscd/socket, "/run/user/*/bus", "/run/app/**", "@/tmp/.X11-unix/X*", "@svc"]
    deny: [/run/app/admin.sock]
)";

TEST(UnixSockets, AllowListDenyListAndTheSocketReached) {
  auto ci = MustCompile(kUnix);
  ASSERT_NE(ci, nullptr);
  auto eval = [&](const EventBuilder& b) { return Evaluate(*ci, b, Ctx()); };
  EXPECT_EQ(RuleOf(eval(EventBuilder::Unix("/run/nscd/socket"))), "u/network.unix.allow[0]");
  EXPECT_EQ(RuleOf(eval(EventBuilder::Unix("/run/user/1000/bus"))), "u/network.unix.allow[1]");
  EXPECT_EQ(RuleOf(eval(EventBuilder::Unix("/run/app/x/y.sock"))), "u/network.unix.allow[2]");
  EXPECT_EQ(RuleOf(eval(EventBuilder::Unix("@/tmp/.X11-unix/X0"))), "u/network.unix.allow[3]");
  EXPECT_EQ(RuleOf(eval(EventBuilder::Unix("@svc"))), "u/network.unix.allow[4]");
  Verdict v = eval(EventBuilder::Unix("/run/dbus/system_bus_socket"));
  EXPECT_EQ(v.kind, Verdict::kViolation);
  EXPECT_EQ(RuleOf(v), "u/network.unix.default");
  EXPECT_EQ(v.rule->category, Category::kNetwork);
  EXPECT_EQ(RuleOf(eval(EventBuilder::Unix("/run/app/admin.sock"))), "u/network.unix.deny[0]");
  EXPECT_EQ(RuleOf(eval(EventBuilder::Unix("@svc2"))), "u/network.unix.default");
  // An allowed name pointed at another socket (a symlink): the socket reached must be allowed too.
  v = eval(EventBuilder::Unix("/run/app/x.sock", "/run/dbus/system_bus_socket"));
  EXPECT_EQ(RuleOf(v), "u/network.unix.default");
  EXPECT_TRUE(v.by_second);
  v = eval(EventBuilder::Unix("/run/app/x.sock", "/run/app/admin.sock"));
  EXPECT_EQ(RuleOf(v), "u/network.unix.deny[0]");
  EXPECT_EQ(eval(EventBuilder::Unix("/run/app/x.sock", "/run/app/real.sock")).kind,
            Verdict::kAllow);
  // A relative name writd could not make absolute matches no path pattern.
  EXPECT_EQ(RuleOf(eval(EventBuilder::Unix("socket"))), "u/network.unix.default");
  // Addresses: the network category is present, its connect lists are not: allowed.
  EXPECT_EQ(eval(EventBuilder::Connect("10.0.0.1", 443)).kind, Verdict::kAllow);
}

// An egress allow list without network.unix denies every unix socket; without an allow list (or
// with `unix` present and no `allow`) only what is denied is.
TEST(UnixSockets, DefaultFollowsTheConnectAllowList) {
  auto allow_list = MustCompile(std::string(testing::kHeader) +
                                "network: {connect: {allow: [{cidr: 10.0.0.0/8}]}}\n");
  Verdict v = Evaluate(*allow_list, EventBuilder::Unix("/run/dbus/system_bus_socket"), Ctx());
  EXPECT_EQ(RuleOf(v), "t/network.unix.default");
  EXPECT_THAT(v.rule->reason, HasSubstr("no network.unix"));
  auto deny_only = MustCompile(std::string(testing::kHeader) +
                               "network: {connect: {deny: [{cidr: 10.0.0.0/8}]}}\n");
  EXPECT_EQ(Evaluate(*deny_only, EventBuilder::Unix("/run/dbus/system_bus_socket"), Ctx()).kind,
            Verdict::kNotJudged);
  auto opt_out = MustCompile(std::string(testing::kHeader) +
                             "network: {connect: {allow: []}, unix: {deny: [/run/docker.sock]}}\n");
  EXPECT_EQ(Evaluate(*opt_out, EventBuilder::Unix("/run/dbus/system_bus_socket"), Ctx()).kind,
            Verdict::kAllow);
  EXPECT_EQ(RuleOf(Evaluate(*opt_out, EventBuilder::Unix("/run/docker.sock"), Ctx())),
            "t/network.unix.deny[0]");
}

TEST(UnixSockets, KernelTablesHoldExactNamesAndDirectories) {
  auto ci = MustCompile(kUnix);
  ASSERT_NE(ci, nullptr);
  KernelTables kt = ci->kernel_tables();
  EXPECT_TRUE(kt.unix_judged);
  EXPECT_TRUE(kt.unix_default_deny);
  EXPECT_TRUE(kt.unix_has_globs);  // /run/user/*/bus and @/tmp/.X11-unix/X* are userspace's
  EXPECT_THAT(kt.unix_allow_exact, ::testing::ElementsAre("/run/nscd/socket", "@svc"));
  EXPECT_THAT(kt.unix_allow_prefix, ::testing::ElementsAre("/run/app"));
  EXPECT_THAT(kt.unix_deny_exact, ::testing::ElementsAre("/run/app/admin.sock"));
  auto exact =
      MustCompile(std::string(testing::kHeader) + "network: {unix: {allow: [/run/a.sock]}}\n");
  EXPECT_FALSE(exact->kernel_tables().unix_has_globs);
}

TEST(UnixSockets, BadNamesAreLoadErrorsNamingTheField) {
  auto set = LoadPolicyText(std::string(testing::kHeader) +
                                "network:\n  unix:\n    allow: [run/x.sock, \"@\", \"/a//b\"]\n",
                            "u.yaml");
  ASSERT_FALSE(set.ok());
  const std::string msg(set.status().message());
  EXPECT_THAT(msg,
              HasSubstr("u.yaml:6: network.unix.allow[0]: \"run/x.sock\" is neither an absolute"));
  EXPECT_THAT(msg, HasSubstr("network.unix.allow[1]: empty abstract socket name"));
  EXPECT_THAT(msg, HasSubstr("network.unix.allow[2]: empty path segment"));
}

// A rename, link or symlink is judged by files.deny on both names; grants do not apply to it.
TEST_F(EngineTest, RenamesAndLinksAreJudgedByFilesDenyOnBothNames) {
  Verdict v = Eval(EventBuilder::Link("rename", "/src/proj/.env", "/src/proj/e.txt"));
  EXPECT_EQ(v.kind, Verdict::kViolation);
  EXPECT_EQ(RuleOf(v), "coding-agent/files.deny[2]");
  EXPECT_FALSE(v.by_second);
  v = Eval(EventBuilder::Link("link", "/home/a/.ssh/id_ed25519", "/src/proj/k"));
  EXPECT_EQ(RuleOf(v), "coding-agent/files.deny[1]");
  v = Eval(EventBuilder::Link("symlink", "/etc/shadow", "/src/proj/s"));
  EXPECT_EQ(RuleOf(v), "coding-agent/files.deny[0]");
  v = Eval(EventBuilder::Link("renameat2", "/tmp/x", "/home/a/.ssh/authorized_keys"));
  EXPECT_EQ(RuleOf(v), "coding-agent/files.deny[1]");
  EXPECT_TRUE(v.by_second);
  EXPECT_EQ(Eval(EventBuilder::Link("rename", "/src/proj/a", "/etc/b")).kind, Verdict::kAllow);
  ASSERT_NE(ci_->renamed_rule(), nullptr);
  EXPECT_EQ(ci_->renamed_rule()->id, "coding-agent/files.deny.renamed");
  auto no_deny = MustCompile(std::string(testing::kHeader) + "files: {read: [/x/**]}\n");
  EXPECT_EQ(Evaluate(*no_deny, EventBuilder::Link("rename", "/a", "/b"), Ctx()).kind,
            Verdict::kNotJudged);
  EXPECT_EQ(no_deny->renamed_rule(), nullptr);
}

TEST_F(EngineTest, ContainmentKernelFlags) {
  KernelTables kt = ci_->kernel_tables();
  EXPECT_TRUE(kt.exec_any_judged);
  EXPECT_TRUE(kt.file_deny_any);
  EXPECT_TRUE(kt.unix_judged);  // connect.allow without network.unix
  EXPECT_TRUE(kt.unix_default_deny);
  EXPECT_TRUE(kt.unix_allow_exact.empty());
}

TEST(UnixSockets, EvaluateAllocatesNothing) {
  auto ci = MustCompile(kUnix);
  ASSERT_NE(ci, nullptr);
  const writ::v1::Event a = EventBuilder::Unix("/run/app/x.sock", "/run/dbus/system_bus_socket");
  const writ::v1::Event b = EventBuilder::Link("rename", "/a/.env", "/a/e.txt");
  const writ::v1::Event c =
      EventBuilder::Exec(kLd, {"ld.so", "--preload", "x", "/bin/ls"}).Loaded("/bin/ls");
  const EvalContext ctx = Ctx();
  testlib::AllocCounter::Start();
  for (int i = 0; i < 1000; i++) {
    (void)Evaluate(*ci, a, ctx);
    (void)Evaluate(*ci, b, ctx);
    (void)Evaluate(*ci, c, ctx);
  }
  EXPECT_EQ(testlib::AllocCounter::Stop(), 0);
}

}  // namespace
}  // namespace writ::intent
