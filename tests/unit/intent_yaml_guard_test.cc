// The pre-scan that refuses hostile YAML before yaml-cpp recurses into it
// (src/intent/yaml_guard.h), alone and through the loader (the error must name FILE:LINE like every
// policy error).
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "intent/intent.h"
#include "intent/yaml_guard.h"

namespace writ::intent {
namespace {

using ::testing::HasSubstr;

std::string Repeat(const std::string& s, int n) {
  std::string out;
  for (int i = 0; i < n; i++) out += s;
  return out;
}

TEST(YamlGuard, RealisticPoliciesPass) {
  const std::string text = R"(apiVersion: writ.dev/v1
kind: Intent
name: ok   # a comment with [ { & * inside
defaults: &d {kill: true}
files:
  deny: ["${secret}/**", '/etc/[a-z]*', /usr/bin/*, "it's \"quoted\" [", 'don''t [']
  allow:
    - /home/*/src/**
    - - nested
      - [a, [b, {c: d}]]
merged: *d
)";
  EXPECT_EQ(CheckYamlBounds(text, "p.yaml"), std::nullopt);
}

TEST(YamlGuard, DeepFlowNestingIsRefusedWithItsLine) {
  auto bad = CheckYamlBounds("a: 1\nb: " + Repeat("[", 40), "p.yaml");
  ASSERT_TRUE(bad.has_value());
  EXPECT_THAT(*bad, HasSubstr("p.yaml:2: yaml: flow collections"));
  EXPECT_EQ(CheckYamlBounds("b: " + Repeat("[", 30) + Repeat("]", 30), "p.yaml"), std::nullopt);
}

TEST(YamlGuard, DeepBlockNestingIsRefused) {
  auto bad = CheckYamlBounds(Repeat("- ", 70) + "x\n", "p.yaml");
  ASSERT_TRUE(bad.has_value());
  EXPECT_THAT(*bad, HasSubstr("p.yaml:1: yaml: nested deeper than 64"));
  std::string stairs;
  for (int i = 0; i < 70; i++) stairs += std::string(i, ' ') + "k:\n";
  bad = CheckYamlBounds(stairs, "p.yaml");
  ASSERT_TRUE(bad.has_value());
  EXPECT_THAT(*bad, HasSubstr("p.yaml:66:"));
}

TEST(YamlGuard, AliasChainsAreRefused) {
  // A billion-laughs chain: each level doubles the tree the walker would see.
  std::string text = "a0: &a0 [x, x]\n";
  for (int i = 1; i < 20; i++) {
    text += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " [*a" + std::to_string(i - 1) +
            ", *a" + std::to_string(i - 1) + "]\n";
  }
  auto bad = CheckYamlBounds(text, "p.yaml");
  ASSERT_TRUE(bad.has_value());
  EXPECT_THAT(*bad, HasSubstr("p.yaml:10: yaml: more than 16 aliases"));
}

TEST(YamlGuard, QuotesAndCommentsHideStructure) {
  EXPECT_EQ(CheckYamlBounds("a: \"" + Repeat("[", 100) + "\"\nb: '" + Repeat("*x ", 50) + "'\n# " +
                                Repeat("{", 100) + "\n",
                            "p.yaml"),
            std::nullopt);
}

// yaml-cpp 0.7's LoadAll never returns (allocating) on a complete root value followed by ','
// (found by fuzz_policy); a ',' there is invalid YAML anyway. Inside flow collections it is fine.
TEST(YamlGuard, CommaAfterARootValueIsRefused) {
  for (const char* bad :
       {"\"a\",\n", "  \"/proc/*/stat\", \"/x\",\n", "[a],\n", "{\"a\": 1} ,\n", "'a',\n"}) {
    auto r = CheckYamlBounds(std::string("k: 1\n") + bad, "p.yaml");
    ASSERT_TRUE(r.has_value()) << bad;
    EXPECT_THAT(*r, HasSubstr("p.yaml:2: yaml: ',' after a complete value")) << bad;
  }
  for (const char* bad : {",\n", "   , x\n"}) {
    auto r = CheckYamlBounds(std::string("k: 1\n") + bad, "p.yaml");
    ASSERT_TRUE(r.has_value()) << bad;
    EXPECT_THAT(*r, HasSubstr("p.yaml:2: yaml: ',' outside [ ] / { } cannot start a value")) << bad;
  }
  EXPECT_EQ(CheckYamlBounds("k: a, b ,c\nl: [\n  a,\n  b\n]\n", "p.yaml"), std::nullopt);
  EXPECT_EQ(CheckYamlBounds("k: [\"a\", 'b', [c], {d: e}]\nl: {\"x\": [1, 2], y: 'z'}\n", "p.yaml"),
            std::nullopt);
}

TEST(YamlGuard, BlockScalarTextIsNotStructure) {
  const std::string text =
      "description: |\n"
      "  He said \"stop\", then [[[[ left & came back *later*,\n"
      "\n"
      "  'quoted', again\n"
      "name: after   # structure again\n"
      "notes: >-\n"
      "    \"folded\", text\n";
  EXPECT_EQ(CheckYamlBounds(text, "p.yaml"), std::nullopt);
  // After the block scalar ends, structure is checked again (with the right line number).
  auto r = CheckYamlBounds(text + "\"late\",\n", "p.yaml");
  ASSERT_TRUE(r.has_value());
  EXPECT_THAT(*r, HasSubstr("p.yaml:8:"));
}

// The dry run bounds what the lexical pass lets through: documents and nodes.
TEST(YamlGuard, DryRunBoundsDocumentsAndNodes) {
  YamlGuardLimits lim;
  lim.max_documents = 3;
  auto r = CheckYamlBounds("a: 1\n---\nb: 2\n---\nc: 3\n---\nd: 4\n", "p.yaml", lim);
  ASSERT_TRUE(r.has_value());
  EXPECT_THAT(*r, HasSubstr("p.yaml:7: yaml: more than 3 documents"));
  lim = YamlGuardLimits();
  lim.max_events = 10;
  r = CheckYamlBounds("k: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]\n", "p.yaml", lim);
  ASSERT_TRUE(r.has_value());
  EXPECT_THAT(*r, HasSubstr("p.yaml:1: yaml: more than 10 nodes"));
  // A syntax error is not the guard's to report: the loader names it.
  EXPECT_EQ(CheckYamlBounds("k: [1, 2\n", "p.yaml"), std::nullopt);
}

TEST(YamlGuard, TheLoaderRefusesBeforeYamlCpp) {
  // The guard's own message: yaml-cpp never saw the text (its recursion, 100000 deep, would have
  // overflowed the stack and killed this test).
  auto set = LoadPolicyText(Repeat("[", 100000), "hostile.yaml");
  ASSERT_FALSE(set.ok());
  EXPECT_THAT(set.status().message(), HasSubstr("hostile.yaml:1: yaml: flow collections"));
  auto big = LoadPolicyText(std::string((1 << 20) + 1, '#'), "big.yaml");
  ASSERT_FALSE(big.ok());
  EXPECT_THAT(big.status().message(), HasSubstr("big.yaml:1: yaml:"));
}

}  // namespace
}  // namespace writ::intent
