// The shipped policy library: loads cleanly and every embedded test passes. Also the policy test
// runner's own behaviour, and that suggestions load back.
#include <sstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "intent_test_util.h"

#ifndef WRIT_POLICIES_DIR
#error "WRIT_POLICIES_DIR must point at the repository's policies/ directory"
#endif

namespace writ::intent {
namespace {

using testing::EventBuilder;
using ::testing::HasSubstr;

TEST(PoliciesTest, LibraryLoadsAndAllTestsPass) {
  auto set = LoadPolicyDir(WRIT_POLICIES_DIR);
  ASSERT_TRUE(set.ok()) << set.status();
  for (const char* name : {"coding-agent", "support-agent", "data-analyst", "locked-down"}) {
    ASSERT_NE(set->Find(name), nullptr) << name;
    EXPECT_GE(set->Find(name)->tests_size(), 5) << name;
  }
  // policies/workloads.yaml: the example `Workloads` entry loads and names a shipped intent.
  ASSERT_EQ(set->workloads().size(), 1u);
  EXPECT_EQ(set->workloads()[0].name(), "ticket-triage");
  EXPECT_NE(set->Find(set->workloads()[0].intent()), nullptr);
  std::ostringstream out;
  TestSummary sum = RunPolicyTests(*set, out);
  EXPECT_EQ(sum.failed, 0) << out.str();
  EXPECT_GE(sum.passed, 40);
  EXPECT_THAT(out.str(), ::testing::EndsWith(absl::StrCat(sum.passed, " passed, 0 failed\n")));
}

TEST(PoliciesTest, RunnerReportsFailuresWithLocation) {
  auto set = LoadPolicyText(std::string(testing::kHeader) +
                                "params:\n  repo: {type: path, required: true}\n"  // 4-5
                                "files: {read: [\"${repo}/**\"]}\n"                  // 6
                                "tests:\n"                                          // 7
                                "  - {event: {kind: open, file: {path: /tmp/writ-test-repo/a}}, expect: allow}\n"
                                "  - {event: {kind: open, file: {path: /etc/passwd}}, expect: allow}\n"  // 9
                                "  - name: wrong rule\n"                            // 10
                                "    event: {kind: open, file: {path: /etc/passwd}}\n"
                                "    expect: violation\n    rule: files.deny[0]\n",
                            "r.yaml");
  ASSERT_TRUE(set.ok()) << set.status();
  std::ostringstream out;
  TestSummary sum = RunPolicyTests(*set, out);
  EXPECT_EQ(sum.passed, 1);
  EXPECT_EQ(sum.failed, 2);
  EXPECT_EQ(out.str(),
            "r.yaml:9: t/tests[1]: expected allow, got violation by t/files.read.default (read of a path not in "
            "files.read or files.write)\n"
            "r.yaml:10: t/tests[2] (wrong rule): expected violation by files.deny[0], got violation by "
            "t/files.read.default (read of a path not in files.read or files.write)\n"
            "1 passed, 2 failed\n");
}

TEST(SuggestTest, SuggestionLoadsBackAndAllowsWhatHappened) {
  std::vector<writ::v1::Event> evs;
  auto add = [&](const writ::v1::Event& e) { evs.push_back(e); };
  add(EventBuilder::Exec("/usr/bin/git", {"git", "status"}));
  add(EventBuilder::Exec("/usr/bin/make"));
  for (const char* lib : {"/usr/lib/x86_64-linux-gnu/libc.so.6", "/lib/x86_64-linux-gnu/libz.so.1",
                          "/opt/tool/lib/libtool.so.2", "/etc/ld.so.cache"}) {
    add(EventBuilder::Open(lib));
  }
  for (const char* f : {"/home/alice/proj/Makefile", "/home/alice/proj/src/a.cc", "/home/alice/proj/src/b.cc",
                        "/home/alice/proj/.git/HEAD", "/home/alice/proj/include/a.h"}) {
    add(EventBuilder::Open(f));
  }
  add(EventBuilder::Open("/home/alice/proj/build/a.o", {"write", "create", "truncate"}));
  add(EventBuilder::Open("/tmp/cc1.s", {"write", "create"}));
  add(EventBuilder::Open("/proc/4242/status"));
  add(EventBuilder::Connect("127.0.0.1", 8080));
  add(EventBuilder::Connect("127.0.0.1", 9001));
  add(EventBuilder::Unix("/var/run/nscd/socket", "/run/nscd/socket"));  // reached through /var/run
  const std::string yaml = SuggestIntent("Alice's Task!", evs, "task-1");
  auto set = LoadPolicyText(yaml, "suggested.yaml");
  ASSERT_TRUE(set.ok()) << set.status() << "\n" << yaml;
  const auto& in = set->intents()[0];
  EXPECT_EQ(in.name(), "alice-s-task");
  EXPECT_EQ(in.params().at("repo").default_(), "/home/alice/proj");
  EXPECT_THAT(in.files().write(), ::testing::Contains("${repo}/**"));
  EXPECT_THAT(in.files().read(), ::testing::Contains("/usr/lib/**"));
  EXPECT_THAT(in.files().read(), ::testing::Contains("/lib/**"));
  EXPECT_THAT(in.files().read(), ::testing::Contains("/opt/tool/lib/**"));
  EXPECT_THAT(in.files().read(), ::testing::Contains("/proc/*/status"));
  EXPECT_THAT(in.files().deny(), ::testing::Contains("/etc/shadow"));
  // Its own tests pass, and every observed event is allowed.
  std::ostringstream out;
  EXPECT_EQ(RunPolicyTests(*set, out).failed, 0) << out.str() << yaml;
  auto ci = Compile(in, {});
  ASSERT_TRUE(ci.ok()) << ci.status();
  for (const auto& ev : evs) {
    Verdict v = Evaluate(**ci, ev, testing::Ctx());
    EXPECT_EQ(v.kind, Verdict::kAllow) << Explain(**ci, ev, testing::Ctx()) << yaml;
  }
  // ... and not more than that.
  EXPECT_EQ(Evaluate(**ci, EventBuilder::Exec("/usr/bin/curl"), testing::Ctx()).kind, Verdict::kViolation);
  EXPECT_EQ(Evaluate(**ci, EventBuilder::Unix("/run/dbus/system_bus_socket"), testing::Ctx()).kind,
            Verdict::kViolation);
  EXPECT_EQ(Evaluate(**ci, EventBuilder::Open("/etc/passwd"), testing::Ctx()).kind, Verdict::kViolation);
  EXPECT_EQ(Evaluate(**ci, EventBuilder::Open("/usr/lib/x", {"write"}), testing::Ctx()).kind, Verdict::kViolation);
  EXPECT_EQ(Evaluate(**ci, EventBuilder::Connect("127.0.0.1", 22), testing::Ctx()).kind, Verdict::kViolation);
}

TEST(SuggestTest, EmptyRecordingIsLockedDown) {
  const std::string yaml = SuggestIntent("", {}, "");
  auto set = LoadPolicyText(yaml, "s.yaml");
  ASSERT_TRUE(set.ok()) << set.status() << yaml;
  auto ci = Compile(set->intents()[0], {});
  ASSERT_TRUE(ci.ok());
  EXPECT_EQ(Evaluate(**ci, EventBuilder::Exec("/usr/bin/true"), testing::Ctx()).kind, Verdict::kViolation);
  EXPECT_EQ(Evaluate(**ci, EventBuilder::Connect("127.0.0.1", 80), testing::Ctx()).kind, Verdict::kViolation);
}

}  // namespace
}  // namespace writ::intent
