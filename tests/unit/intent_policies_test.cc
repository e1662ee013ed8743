// The shipped policy library: loads cleanly and every embedded test passes. Also the policy test
// runner's own behaviour.
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
  auto set = LoadPolicyText(
      std::string(testing::kHeader) +
          "params:\n  repo: {type: path, required: true}\n"  // 4-5
          "files: {read: [\"${repo}/**\"]}\n"                // 6
          "tests:\n"                                         // 7
          "  - {event: {kind: open, file: {path: /tmp/writ-test-repo/a}}, expect: allow}\n"
          "  - {event: {kind: open, file: {path: /etc/passwd}}, expect: allow}\n"  // 9
          "  - name: wrong rule\n"                                                 // 10
          "    event: {kind: open, file: {path: /etc/passwd}}\n"
          "    expect: violation\n    rule: files.deny[0]\n",
      "r.yaml");
  ASSERT_TRUE(set.ok()) << set.status();
  std::ostringstream out;
  TestSummary sum = RunPolicyTests(*set, out);
  EXPECT_EQ(sum.passed, 1);
  EXPECT_EQ(sum.failed, 2);
  EXPECT_EQ(
      out.str(),
      "r.yaml:9: t/tests[1]: expected allow, got violation by t/files.read.default (read of a path "
      "not in "
      "files.read or files.write)\n"
      "r.yaml:10: t/tests[2] (wrong rule): expected violation by files.deny[0], got violation by "
      "t/files.read.default (read of a path not in files.read or files.write)\n"
      "1 passed, 2 failed\n");
}

}  // namespace
}  // namespace writ::intent
