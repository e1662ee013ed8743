// writ policy suggest (issue 21): suggestions load back, allow what the recording did and no more,
// generalise as a person would (package trees, system locations, per-process names, parameters from
// the command line, never guessed), never allow a secret, replay and diff against other intents.
#include <sstream>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "intent_test_util.h"

namespace writ::intent {
namespace {

using ::testing::Contains;
using testing::EventBuilder;
using ::testing::HasSubstr;
using ::testing::Not;

// The rule sections of a suggestion (exec: .. network:), without its comments and description.
std::string RulesOf(const std::string& yaml) {
  size_t a = yaml.find("\nexec:");
  size_t b = yaml.find("\non_violation:");
  return a == std::string::npos || b == std::string::npos ? yaml : yaml.substr(a, b - a);
}

writ::v1::Event Start(std::initializer_list<const char*> command) {
  writ::v1::Event e;
  e.set_kind("task_start");
  for (const char* c : command) e.mutable_task()->add_command(c);
  return e;
}

std::shared_ptr<const CompiledIntent> LoadAndCompile(const Suggestion& s) {
  auto set = LoadPolicyText(s.yaml, "suggested.yaml");
  EXPECT_TRUE(set.ok()) << set.status() << "\n" << s.yaml;
  if (!set.ok()) return nullptr;
  std::ostringstream out;
  EXPECT_EQ(RunPolicyTests(*set, out).failed, 0) << out.str() << s.yaml;
  auto ci = Compile(set->intents()[0], s.params, {.bind_file_ids = false});
  EXPECT_TRUE(ci.ok()) << ci.status();
  return ci.ok() ? *ci : nullptr;
}

TEST(SuggestTest, SuggestionLoadsBackAndAllowsWhatHappened) {
  std::vector<writ::v1::Event> evs;
  auto add = [&](const writ::v1::Event& e) { evs.push_back(e); };
  add(Start({"/bin/sh", "-c", "make -C /home/alice/proj && git -C /home/alice/proj status"}));
  add(EventBuilder::Exec("/usr/bin/git", {"git", "status"}));
  add(EventBuilder::Exec("/usr/bin/make"));
  for (const char* lib : {"/usr/lib/x86_64-linux-gnu/libc.so.6", "/lib/x86_64-linux-gnu/libz.so.1",
                          "/opt/tool/lib/libtool.so.2", "/etc/ld.so.cache"}) {
    add(EventBuilder::Open(lib));
  }
  for (const char* f :
       {"/home/alice/proj/Makefile", "/home/alice/proj/src/a.cc", "/home/alice/proj/.git/HEAD"}) {
    add(EventBuilder::Open(f));
  }
  add(EventBuilder::Open("/home/alice/proj/build/a.o", {"write", "create", "truncate"}));
  add(EventBuilder::Open("/tmp/cc1.s", {"write", "create"}));
  add(EventBuilder::Open("/proc/4242/status"));
  add(EventBuilder::Connect("127.0.0.1", 8080));
  add(EventBuilder::Connect("127.0.0.1", 9001));
  add(EventBuilder::Unix("/var/run/nscd/socket", "/run/nscd/socket"));  // reached through /var/run
  writ::v1::Event probe = EventBuilder::Unix("/run/missing/socket");    // reached nothing
  probe.mutable_network()->set_result(-2);
  add(probe);
  Suggestion s = Suggest("Alice's Task!", evs, "task-1");
  auto set = LoadPolicyText(s.yaml, "suggested.yaml");
  ASSERT_TRUE(set.ok()) << set.status() << "\n" << s.yaml;
  const auto& in = set->intents()[0];
  EXPECT_EQ(in.name(), "alice-s-task");
  // The directory the command named is a required parameter; the rules use it.
  EXPECT_TRUE(in.params().at("proj").required());
  EXPECT_EQ(s.params.at("proj"), "/home/alice/proj");
  EXPECT_THAT(s.yaml,
              HasSubstr("${proj}: the directory /home/alice/proj the task's command named"));
  EXPECT_THAT(in.files().write(), Contains("${proj}/**"));
  EXPECT_THAT(in.files().read(), Not(Contains("${proj}/**")));  // the write grant covers reads
  EXPECT_THAT(in.files().read(), Contains("/usr/lib/**"));
  EXPECT_THAT(in.files().read(), Contains("/lib/**"));
  EXPECT_THAT(in.files().read(), Contains("/opt/tool/**"));
  EXPECT_THAT(in.files().read(), Contains("/proc/*/status"));
  EXPECT_THAT(in.files().write(), Contains("/tmp/cc1.s"));  // writes stay narrow
  EXPECT_THAT(in.files().deny(), Contains("/etc/shadow"));
  EXPECT_THAT(in.files().deny(), Contains("**/.ssh/**"));
  EXPECT_THAT(in.on_violation(), Contains("kill"));
  EXPECT_GT(s.rule_lines, 10);
  auto ci = LoadAndCompile(s);
  ASSERT_NE(ci, nullptr);
  EXPECT_EQ(ReplayEvents(*ci, evs).violations, 0);
  // ... and not more than that.
  EXPECT_EQ(Evaluate(*ci, EventBuilder::Unix("/run/dbus/system_bus_socket"), testing::Ctx()).kind,
            Verdict::kViolation);
  EXPECT_THAT(
      RulesOf(s.yaml),
      HasSubstr(
          "unix:\n    allow:\n      - \"/run/nscd/socket\"\n      - \"/var/run/nscd/socket\""));
  EXPECT_THAT(RulesOf(s.yaml), Not(HasSubstr("/run/missing")));
  EXPECT_EQ(Evaluate(*ci, EventBuilder::Exec("/usr/bin/curl"), testing::Ctx()).kind,
            Verdict::kViolation);
  EXPECT_EQ(Evaluate(*ci, EventBuilder::Open("/etc/passwd"), testing::Ctx()).kind,
            Verdict::kViolation);
  EXPECT_EQ(Evaluate(*ci, EventBuilder::Open("/usr/lib/x", {"write"}), testing::Ctx()).kind,
            Verdict::kViolation);
  EXPECT_EQ(Evaluate(*ci, EventBuilder::Open("/tmp/other", {"write"}), testing::Ctx()).kind,
            Verdict::kViolation);
  EXPECT_EQ(Evaluate(*ci, EventBuilder::Connect("127.0.0.1", 22), testing::Ctx()).kind,
            Verdict::kViolation);
  EXPECT_EQ(Evaluate(*ci, EventBuilder::Open("/home/alice/proj/.ssh/id_rsa"), testing::Ctx()).kind,
            Verdict::kViolation);
}

// The 639-line suggestion of issue 21: one line per package file, cgroup and mktemp names, a
// parameter guessed from a busy directory. Now: the package tree's root, stable globs, no guess.
TEST(SuggestTest, PackageTreesAndPerRunNamesAreGeneral) {
  std::vector<writ::v1::Event> evs;
  evs.push_back(Start({"node", "/srv/agents/node_modules/mcp-x/build/index.js"}));
  evs.push_back(EventBuilder::Exec("/usr/bin/node"));
  for (int i = 0; i < 200; ++i) {
    evs.push_back(
        EventBuilder::Open("/srv/agents/node_modules/pkg" + std::to_string(i) + "/lib/index.js"));
  }
  evs.push_back(EventBuilder::Open("/srv/agents/node_modules/mcp-x/node_modules/y/index.js"));
  evs.push_back(EventBuilder::Open("/sys/fs/cgroup/writ.slice/t-3f9a0c1d2e/memory.max"));
  evs.push_back(EventBuilder::Open("/sys/fs/cgroup/memory/9f2c1e7a44/memory.limit_in_bytes"));
  evs.push_back(EventBuilder::Open("/proc/self/maps"));
  evs.push_back(EventBuilder::Open("/proc/77/task/78/stat"));
  evs.push_back(EventBuilder::Open("/tmp/tmp.aB3dE9xYz1", {"write", "create"}));
  evs.push_back(EventBuilder::Open("/tmp/python3-cache/utf8.map", {"write", "create"}));
  evs.push_back(
      EventBuilder::Open("/tmp/node-compile-cache/5a1b2c3d4e/x.bin", {"write", "create"}));
  for (const char* f : {"/data/work/a", "/data/work/b", "/data/work/c", "/data/work/d"}) {
    evs.push_back(EventBuilder::Open(f));
  }
  Suggestion s = Suggest("n", evs, "t-3f9a0c1d2e");
  EXPECT_TRUE(s.params.empty()) << s.yaml;  // /data/work was never named: no guessed parameter
  EXPECT_LT(s.rule_lines, 45) << s.yaml;
  const std::string rules = RulesOf(s.yaml);
  EXPECT_THAT(rules, HasSubstr("\"/srv/agents/node_modules/**\""));
  EXPECT_THAT(rules, Not(HasSubstr("pkg1")));
  EXPECT_THAT(rules, HasSubstr("\"/sys/fs/cgroup/**/memory.max\""));
  EXPECT_THAT(rules, HasSubstr("\"/sys/fs/cgroup/**/memory.limit_in_bytes\""));
  EXPECT_THAT(rules, HasSubstr("\"/proc/*/maps\""));
  EXPECT_THAT(rules, HasSubstr("\"/proc/*/task/*/stat\""));
  EXPECT_THAT(rules, HasSubstr("\"/tmp/tmp.*\""));
  EXPECT_THAT(rules, HasSubstr("\"/tmp/python3-cache/utf8.map\""));  // names, not random
  EXPECT_THAT(rules, HasSubstr("\"/tmp/node-compile-cache/*/x.bin\""));
  EXPECT_THAT(rules, HasSubstr("\"/data/work/**\""));
  EXPECT_THAT(rules, Not(HasSubstr("t-3f9a0c1d2e")));
  EXPECT_THAT(s.yaml, HasSubstr("# Rewritten: /proc/<pid>/"));
  // The tests drawn from the recording use paths without the per-run names.
  EXPECT_THAT(s.yaml, HasSubstr("path: \"/proc/self/maps\""));
  EXPECT_THAT(s.yaml, HasSubstr("path: \"/sys/fs/cgroup/memory.max\""));
  EXPECT_THAT(s.yaml, HasSubstr("path: \"/tmp/tmp.example\""));
  EXPECT_THAT(s.yaml, Not(HasSubstr("/proc/77")));
  EXPECT_THAT(s.yaml, Not(HasSubstr("9f2c1e7a44")));
  auto ci = LoadAndCompile(s);
  ASSERT_NE(ci, nullptr);
  Replay r = ReplayEvents(*ci, evs);
  EXPECT_EQ(r.violations, 0) << absl::StrJoin(r.lines, "\n");
  EXPECT_GT(r.judged, 200);
}

// A directory of helpers becomes DIR/** (never /usr/bin); a path --param keeps its name; addresses
// the task connected to are allowed with their ports; a relative or system path is no parameter.
TEST(SuggestTest, HelpersTaskParamsAndNetwork) {
  std::vector<writ::v1::Event> evs;
  writ::v1::Event start = Start({"/usr/bin/git", "-C", "/usr/share/doc", "fetch"});
  (*start.mutable_task()->mutable_params())["checkout"] = "/srv/src/app/";
  (*start.mutable_task()->mutable_params())["label"] = "fast";
  evs.push_back(start);
  for (const char* exe : {"/usr/bin/git", "/usr/bin/ssh", "/usr/bin/cat", "/usr/bin/gzip",
                          "/usr/lib/git-core/git-remote-http", "/usr/lib/git-core/git-fetch-pack",
                          "/usr/lib/git-core/git-index-pack"}) {
    evs.push_back(EventBuilder::Exec(exe));
  }
  // ld.so PROGRAM: the program is what exec.allow judges (and its test names it), not the loader.
  writ::v1::Event ld = EventBuilder::Exec("/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2");
  ld.mutable_process()->set_loaded("/opt/tool/bin/tool");
  evs.push_back(ld);
  evs.push_back(EventBuilder::Open("/srv/src/app/.git/FETCH_HEAD", {"write", "create"}));
  evs.push_back(EventBuilder::Open("/srv/src/app/.git/config"));
  evs.push_back(EventBuilder::Connect("10.1.2.3", 443));
  evs.push_back(EventBuilder::Connect("10.1.2.3", 80));
  Suggestion s = Suggest("fetch", evs, "t-2");
  EXPECT_EQ(s.params.size(), 1u) << s.yaml;
  EXPECT_EQ(s.params.at("checkout"), "/srv/src/app");
  const std::string rules = RulesOf(s.yaml);
  EXPECT_THAT(rules, HasSubstr("\"/usr/lib/git-core/**\""));
  EXPECT_THAT(rules, HasSubstr("\"/usr/bin/cat\""));
  EXPECT_THAT(rules, HasSubstr("\"/opt/tool/bin/tool\""));
  EXPECT_THAT(rules, Not(HasSubstr("ld-linux")));
  EXPECT_THAT(rules, Not(HasSubstr("\"/usr/bin/**\"")));
  EXPECT_THAT(rules, HasSubstr("\"${checkout}/**\""));
  EXPECT_THAT(rules, HasSubstr("{cidr: \"10.1.2.3\", ports: [80, 443]}"));
  EXPECT_THAT(s.yaml, HasSubstr("# Network: addresses as connected to"));
  auto ci = LoadAndCompile(s);
  ASSERT_NE(ci, nullptr);
  EXPECT_EQ(ReplayEvents(*ci, evs).violations, 0);
  EXPECT_EQ(Evaluate(*ci, EventBuilder::Connect("10.1.2.3", 22), testing::Ctx()).kind,
            Verdict::kViolation);
  EXPECT_EQ(Evaluate(*ci, EventBuilder::Exec("/usr/bin/curl"), testing::Ctx()).kind,
            Verdict::kViolation);
}

// DNS egress (#17): a connect to an address the task's own DNS answer named (network.host) is
// suggested as a host rule, not the address; names resolved but not connected to by name are listed
// in network.dns (only connect rules' names may be resolved without it).
TEST(SuggestTest, NamesTheTaskResolvedBecomeHostRules) {
  std::vector<writ::v1::Event> evs{Start({"/usr/bin/python3", "fetch.py"})};
  writ::v1::Event c = EventBuilder::Connect("127.0.0.1", 443);
  c.mutable_network()->set_host("localhost");
  evs.push_back(c);
  for (const char* name : {"localhost", "files.example.org"}) {
    writ::v1::Event d;
    d.set_kind("dns");
    d.mutable_dns()->set_query(name);
    d.mutable_dns()->set_verdict("allowed");
    evs.push_back(d);
  }
  writ::v1::Event refused;  // a name the stub refused is not suggested
  refused.set_kind("dns");
  refused.mutable_dns()->set_query("evil.example.net");
  refused.mutable_dns()->set_verdict("refused");
  evs.push_back(refused);
  evs.push_back(EventBuilder::Connect("10.9.9.9", 5432));  // no name: an address rule
  Suggestion s = Suggest("fetch", evs, "t-dns");
  const std::string rules = RulesOf(s.yaml);
  EXPECT_THAT(rules, HasSubstr("{host: \"localhost\", ports: [443]}"));
  EXPECT_THAT(rules, Not(HasSubstr("127.0.0.1")));
  EXPECT_THAT(rules, HasSubstr("{cidr: \"10.9.9.9\", ports: [5432]}"));
  EXPECT_THAT(rules,
              HasSubstr("dns:\n    allow:\n      - \"files.example.org\"\n      - \"localhost\""));
  EXPECT_THAT(rules, Not(HasSubstr("evil.example.net")));
  EXPECT_THAT(s.yaml, HasSubstr("# Network: names the task resolved"));
  auto ci = LoadAndCompile(s);  // its tests replay the named connect: allowed by the host rule
  ASSERT_NE(ci, nullptr);
  EXPECT_EQ(ReplayEvents(*ci, evs).violations, 0);
  EXPECT_NE(ci->dns_policy().Match("files.example.org"), nullptr);
  EXPECT_EQ(ci->dns_policy().Match("evil.example.net"), nullptr);
}

// A recording that read a key and a .env: the suggestion says so, reports it, and denies both.
TEST(SuggestTest, SecretsAreReportedAndNeverAllowed) {
  std::vector<writ::v1::Event> evs;
  evs.push_back(Start({"/bin/sh", "-c", "cat /srv/app/config.yml"}));
  evs.push_back(EventBuilder::Exec("/usr/bin/cat"));
  evs.push_back(EventBuilder::Open("/srv/app/config.yml"));
  evs.push_back(EventBuilder::Open("/home/bob/.ssh/id_ed25519"));
  evs.push_back(EventBuilder::Open("/home/bob/.ssh/known_hosts"));
  evs.push_back(EventBuilder::Open("/home/bob/.ssh/config"));
  evs.push_back(EventBuilder::Open("/srv/app/.env"));
  Suggestion s = Suggest("s", evs, "t-1");
  EXPECT_EQ(s.params.at("config_yml"), "/srv/app/config.yml");  // a file the command named
  EXPECT_THAT(s.secrets, Contains("/home/bob/.ssh/id_ed25519 (**/.ssh/**)"));
  EXPECT_THAT(s.secrets, Contains("/srv/app/.env (**/.env)"));
  EXPECT_THAT(s.yaml, HasSubstr("# SECRET: the recording touched /srv/app/.env (**/.env): denied"));
  const std::string rules = RulesOf(s.yaml);
  EXPECT_THAT(rules, Not(HasSubstr("/home/bob")));
  EXPECT_THAT(rules, Not(HasSubstr("\"/srv/app/**\"")));
  auto ci = LoadAndCompile(s);  // its tests expect the recorded touches to be violations
  ASSERT_NE(ci, nullptr);
  Replay r = ReplayEvents(*ci, evs);
  EXPECT_EQ(r.violations, 4);
  EXPECT_THAT(r.lines,
              Contains(HasSubstr("open /srv/app/.env (read): violation by s/files.deny[")));
}

// The task chooses the names it touches: a newline in one must not become a YAML line of its own in
// the suggestion's comments (`mode: monitor` would turn enforcement off for whoever adopts it), and
// a name with glob or parameter syntax must not become a wildcard or a parameter.
TEST(SuggestTest, NamesTheTaskChoseCannotWriteTheSuggestion) {
  std::vector<writ::v1::Event> evs;
  evs.push_back(Start({"/bin/sh", "-c", "cat /srv/app/config.yml"}));
  evs.push_back(EventBuilder::Exec("/usr/bin/cat"));
  evs.push_back(EventBuilder::Open("/srv/app/config.yml"));
  evs.push_back(EventBuilder::Open("/srv/x\nmode: monitor\non_violation: []\n#/.env"));
  evs.push_back(EventBuilder::Open("/srv/data/a*b"));
  evs.push_back(EventBuilder::Open("/srv/data/${config_yml}"));
  Suggestion s = Suggest("s", evs, "t-\nmode: monitor");
  EXPECT_THAT(s.yaml, Not(HasSubstr("\nmode:")));
  EXPECT_THAT(s.yaml, Not(HasSubstr("\non_violation: []")));
  EXPECT_THAT(s.yaml, HasSubstr("# SECRET: the recording touched /srv/x\\nmode: monitor"));
  EXPECT_THAT(s.secrets, Contains(HasSubstr("/srv/x\\nmode: monitor")));  // escaped for stderr too
  const std::string rules = RulesOf(s.yaml);
  EXPECT_THAT(rules, Not(HasSubstr("a*b")));
  EXPECT_THAT(rules, Not(HasSubstr("/srv/data")));
  EXPECT_THAT(s.yaml, HasSubstr("left out, its name has glob or parameter syntax: /srv/data/a*b"));
  auto set = LoadPolicyText(s.yaml, "suggested.yaml");
  ASSERT_TRUE(set.ok()) << set.status() << "\n" << s.yaml;
  EXPECT_NE(set->intents()[0].mode(), "monitor");
  EXPECT_EQ(set->intents()[0].on_violation_size(), 2);
}

// --check judges as writd does: a failed open that only a default denies is allowed; repeated
// violations are one line with a count. --diff: what an intent lacks, allows beyond, and subset.
TEST(SuggestTest, ReplayAndDiff) {
  std::vector<writ::v1::Event> evs;
  evs.push_back(EventBuilder::Exec("/usr/bin/git"));
  evs.push_back(EventBuilder::Open("/usr/lib/libz.so.1"));
  writ::v1::Event missing = EventBuilder::Open("/nonexistent/.gitconfig");
  missing.mutable_file()->set_result(-2);
  evs.push_back(missing);
  Suggestion s = Suggest("mine", evs, "t-1");
  auto mine = LoadAndCompile(s);
  ASSERT_NE(mine, nullptr);
  EXPECT_EQ(ReplayEvents(*mine, evs).violations, 0);

  // An hours window that excludes the time the test runs and includes the recorded events' time.
  const int h = (absl::ToTimeT(absl::Now()) / 3600 + 2) % 24;
  auto theirs_set = LoadPolicyText(absl::StrFormat(R"(apiVersion: writ.dev/v1
kind: Intent
name: theirs
limits: {hours: "%02d:00-%02d:00 UTC"}
exec: {allow: [/usr/bin/make, /usr/bin/curl]}
files: {read: ["/usr/**"], deny: ["**/.ssh/**"]}
)",
                                                   h, (h + 2) % 24),
                                   "t.yaml");
  ASSERT_TRUE(theirs_set.ok()) << theirs_set.status();
  auto theirs = Compile(theirs_set->intents()[0], {}, {.bind_file_ids = false});
  ASSERT_TRUE(theirs.ok());
  evs.push_back(EventBuilder::Exec("/usr/bin/git"));
  // Judged at the time it was recorded (inside the hours window), not at the replay's.
  for (auto& ev : evs) ev.set_time(absl::StrFormat("2026-01-01T%02d:30:00Z", h));
  Replay r = ReplayEvents(**theirs, evs);
  EXPECT_EQ(r.violations, 2);
  ASSERT_EQ(r.lines.size(), 1u);
  EXPECT_THAT(r.lines[0], HasSubstr("exec /usr/bin/git: violation by theirs/exec.default"));
  EXPECT_THAT(r.lines[0], HasSubstr("(2 events)"));
  bool subset = true;
  std::string diff = DiffIntent(*mine, **theirs, evs, &subset);
  EXPECT_FALSE(subset);
  EXPECT_THAT(diff, HasSubstr("lacks: exec /usr/bin/git"));
  EXPECT_THAT(diff, HasSubstr("beyond: theirs/exec.allow[0] /usr/bin/make"));
  EXPECT_THAT(diff, HasSubstr("beyond: theirs/exec.allow[1] /usr/bin/curl"));
  EXPECT_THAT(diff, Not(HasSubstr("beyond: theirs/files.read[0]")));  // used by libz
  EXPECT_THAT(diff, HasSubstr("subset: no: "));
  // The suggestion against itself: nothing lacking, a subset; beyond the recording only the read
  // of the program it ran (every program the task may run may be read, below).
  diff = DiffIntent(*mine, *mine, evs, &subset);
  EXPECT_TRUE(subset) << diff;
  EXPECT_THAT(diff, Not(HasSubstr("lacks:")));
  EXPECT_THAT(diff,
              HasSubstr("beyond: mine/files.read[0] /usr/bin/git (no recorded event used it)"));
  EXPECT_EQ(std::vector<std::string>(absl::StrSplit(diff, "beyond:")).size(), 2u) << diff;
}

// A runtime reads its own program file on some runs only (node, when its code landed where it looks
// after reading /proc/self/maps): a recording without that read must not make the next run a
// violation. Each program the task ran may be read; nothing else is added.
TEST(SuggestTest, EveryProgramTheTaskRanMayBeReadItself) {
  std::vector<writ::v1::Event> evs = {Start({"node", "/srv/app/index.js"}),
                                      EventBuilder::Exec("/usr/bin/node"),
                                      EventBuilder::Open("/usr/lib/x86_64-linux-gnu/libc.so.6")};
  Suggestion s = Suggest("n", evs, "t-1");
  auto ci = LoadAndCompile(s);
  ASSERT_NE(ci, nullptr);
  EXPECT_EQ(Evaluate(*ci, EventBuilder::Open("/usr/bin/node"), testing::Ctx()).kind,
            Verdict::kAllow)
      << s.yaml;
  EXPECT_EQ(Evaluate(*ci, EventBuilder::Open("/usr/bin/python3"), testing::Ctx()).kind,
            Verdict::kViolation);
  // The program itself stays an exec rule; its read is not a write.
  EXPECT_THAT(RulesOf(s.yaml), HasSubstr("exec:\n  allow:\n    - \"/usr/bin/node\""));
  EXPECT_EQ(Evaluate(*ci, EventBuilder::Open("/usr/bin/node", {"write"}), testing::Ctx()).kind,
            Verdict::kViolation);
}

TEST(SuggestTest, EmptyRecordingIsLockedDown) {
  Suggestion s = Suggest("", {}, "");
  auto ci = LoadAndCompile(s);
  ASSERT_NE(ci, nullptr);
  EXPECT_EQ(Evaluate(*ci, EventBuilder::Exec("/usr/bin/true"), testing::Ctx()).kind,
            Verdict::kViolation);
  EXPECT_EQ(Evaluate(*ci, EventBuilder::Connect("127.0.0.1", 80), testing::Ctx()).kind,
            Verdict::kViolation);
  EXPECT_THAT(s.yaml, HasSubstr("all egress is denied"));
}

}  // namespace
}  // namespace writ::intent
