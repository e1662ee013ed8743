// Workloads (`kind: Workloads`): loader errors name FILE:LINE: field for every bad selector,
// identity, intent reference and parameter; the matcher applies every selector (AND), first
// workload wins; the kernel pre-filter keys over-approximate the matches (exe path, else uid, else
// every exec).
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "intent/intent.h"
#include "intent/workload.h"

namespace writ::intent {
namespace {

using ::testing::HasSubstr;

constexpr char kIntent[] = R"(apiVersion: writ.dev/v1
kind: Intent
name: coder
params:
  repo: {type: path, required: true}
  depth: {type: int, default: "1"}
exec: {allow: [/usr/bin/git]}
---
)";

std::string Errors(const std::string& workloads) {
  auto set = LoadPolicyText(std::string(kIntent) + workloads, "p.yaml");
  EXPECT_FALSE(set.ok()) << "loaded: " << workloads;
  return set.ok() ? "" : std::string(set.status().message());
}

// Lines: kIntent is 8 lines (the "---" is line 8), so the workloads document starts at line 9.
constexpr char kHead[] = "apiVersion: writ.dev/v1\nkind: Workloads\nworkloads:\n";  // lines 9-11

TEST(WorkloadLoaderTest, LoadsAValidEntry) {
  auto set = LoadPolicyText(
      std::string(kIntent) + kHead +
          "  - name: claude\n"
          "    spiffe_id: spiffe://example.org/agent/claude\n"
          "    intent: coder\n"
          "    principal: user:alice@example.org\n"
          "    params: {repo: /home/alice/proj}\n"
          "    selectors: [\"unix:path:/usr/local/bin/claude\", \"unix:uid:1000\",\n"
          "                \"cgroup:path:/user.slice/**\", \"systemd:id:claude.service\",\n"
          "                \"unix:sha256:" +
          std::string(64, 'A') + "\"]\n",
      "p.yaml");
  ASSERT_TRUE(set.ok()) << set.status();
  ASSERT_EQ(set->workloads().size(), 1u);
  const auto& w = set->workloads()[0];
  EXPECT_EQ(w.name(), "claude");
  EXPECT_EQ(w.intent(), "coder");
  EXPECT_EQ(w.source().file(), "p.yaml");
  EXPECT_EQ(w.source().line(), 12);
  EXPECT_EQ(w.selectors_size(), 5);
  EXPECT_EQ(set->intents().size(), 1u);  // the Workloads document is not an intent
}

TEST(WorkloadLoaderTest, EveryBadFieldIsNamedWithItsLine) {
  std::string e = Errors(std::string(kHead) +
                         "  - name: a\n"                          // 12
                         "    spiffe_id: http://example.org/x\n"  // 13
                         "    intent: nope\n"                     // 14
                         "    selectors:\n"                       // 15
                         "      - unix:pid:12\n"                  // 16
                         "      - unix:sha256:abc\n"              // 17
                         "      - unix:uid:alice\n"               // 18
                         "      - unix:path:relative/x\n"         // 19
                         "      - cgroup:path:/a/***\n"           // 20
                         "      - systemd:id:foo\n"               // 21
                         "      - nocolon\n");                    // 22
  EXPECT_THAT(e, HasSubstr("p.yaml:13: workloads[0].spiffe_id: "));
  EXPECT_THAT(e,
              HasSubstr("p.yaml:14: workloads[0].intent: unknown intent \"nope\" (loaded: coder)"));
  EXPECT_THAT(e, HasSubstr("p.yaml:16: workloads[0].selectors[0]: unknown selector \"unix:pid\""));
  EXPECT_THAT(e,
              HasSubstr("p.yaml:17: workloads[0].selectors[1]: unix:sha256 needs 64 hex digits"));
  EXPECT_THAT(e, HasSubstr("p.yaml:18: workloads[0].selectors[2]: unix:uid needs a numeric uid"));
  EXPECT_THAT(e, HasSubstr("p.yaml:19: workloads[0].selectors[3]: unix:path needs an absolute"));
  EXPECT_THAT(e, HasSubstr("p.yaml:20: workloads[0].selectors[4]: cgroup:path \"/a/***\""));
  EXPECT_THAT(e, HasSubstr("p.yaml:21: workloads[0].selectors[5]: systemd:id needs a unit name"));
  EXPECT_THAT(e, HasSubstr("p.yaml:22: workloads[0].selectors[6]: bad selector \"nocolon\""));
}

TEST(WorkloadLoaderTest, MissingFieldsParamsAndDuplicates) {
  std::string e = Errors(std::string(kHead) +
                         "  - name: a\n"                            // 12
                         "    spiffe_id: spiffe://example.org/a\n"  // 13
                         "    intent: coder\n"                      // 14
                         "    params: {depth: x, colour: red}\n"    // 15
                         "    selectors: [\"unix:uid:-1\"]\n"       // 16
                         "  - name: a\n"                            // 17
                         "    unknown_key: 1\n");                   // 18
  EXPECT_THAT(e, HasSubstr("p.yaml:15: workloads[0].params: missing required parameter \"repo\""));
  EXPECT_THAT(e, HasSubstr("p.yaml:15: workloads[0].params.colour: intent coder has no parameter"));
  EXPECT_THAT(e, HasSubstr("p.yaml:15: workloads[0].params.depth: "));
  EXPECT_THAT(e, HasSubstr("p.yaml:16: workloads[0].selectors[0]: unix:uid needs a numeric uid"));
  EXPECT_THAT(e, HasSubstr("p.yaml:17: workloads[1].name: duplicate workload name \"a\""));
  EXPECT_THAT(e, HasSubstr("p.yaml:18: workloads[1].unknown_key: unknown key"));
  EXPECT_THAT(e, HasSubstr("workloads[1].spiffe_id: missing"));
  EXPECT_THAT(e, HasSubstr("workloads[1].intent: missing"));
  EXPECT_THAT(e, HasSubstr("workloads[1].selectors: missing or empty"));
}

TEST(WorkloadLoaderTest, WrongKindIsNamed) {
  std::string e = Errors("apiVersion: writ.dev/v1\nkind: Workload\nname: x\n");
  EXPECT_THAT(
      e, HasSubstr("p.yaml:10: kind: unknown kind \"Workload\" (expected Intent or Workloads)"));
}

Selector Sel(const std::string& s) {
  auto r = ParseSelector(s);
  EXPECT_TRUE(r.ok()) << s << ": " << r.status();
  return r.ok() ? *r : Selector{};
}

writ::v1::Workload W(const std::string& name, std::vector<std::string> selectors) {
  writ::v1::Workload w;
  w.set_name(name);
  for (auto& s : selectors) w.add_selectors(s);
  return w;
}

TEST(WorkloadMatcherTest, AllSelectorsMustMatchFirstEntryWins) {
  const std::string sha(64, 'a');
  auto m = WorkloadMatcher::Build({
      W("exact", {"unix:path:/opt/agent", "unix:uid:1000", "unix:sha256:" + sha}),
      W("by-unit", {"systemd:id:claude.service", "cgroup:path:/system.slice/**"}),
      W("by-uid", {"unix:uid:1000"}),
  });
  ASSERT_TRUE(m.ok()) << m.status();
  int hashed = 0;
  ProcessFacts f;
  f.exe = "/opt/agent";
  f.uid = 1000;
  f.cgroup_path = "/user.slice/user-1000.slice/session-2.scope";
  f.systemd_unit = SystemdUnitOf(f.cgroup_path);
  f.sha256 = [&] {
    hashed++;
    return sha;
  };
  ASSERT_NE(m->Match(f), nullptr);
  EXPECT_EQ(m->Match(f)->name(), "exact");
  f.sha256 = [&] {
    hashed++;
    return std::string(64, 'b');  // another binary at the same path
  };
  ASSERT_NE(m->Match(f), nullptr);
  EXPECT_EQ(m->Match(f)->name(), "by-uid");
  f.uid = 0;
  EXPECT_EQ(m->Match(f), nullptr);
  f.exe = "/usr/bin/other";
  f.cgroup_path = "/system.slice/claude.service";
  f.systemd_unit = SystemdUnitOf(f.cgroup_path);
  ASSERT_NE(m->Match(f), nullptr);
  EXPECT_EQ(m->Match(f)->name(), "by-unit");
  f.cgroup_path = "/user.slice/claude.service";  // the unit, but not under system.slice
  f.systemd_unit = SystemdUnitOf(f.cgroup_path);
  EXPECT_EQ(m->Match(f), nullptr);
  // The exe is hashed only where a workload's cheaper selectors matched (the four calls above with
  // the right path and uid), at most once per Match even though two workloads were tried in the
  // last two.
  EXPECT_EQ(hashed, 4);
}

TEST(WorkloadMatcherTest, SystemdUnitIsTheDeepestServiceOrScope) {
  EXPECT_EQ(SystemdUnitOf("/system.slice/claude.service"), "claude.service");
  EXPECT_EQ(SystemdUnitOf("/user.slice/user-1000.slice/user@1000.service/app.slice/x.service"),
            "x.service");
  EXPECT_EQ(SystemdUnitOf("/user.slice/user-1000.slice/session-3.scope"), "session-3.scope");
  EXPECT_EQ(SystemdUnitOf("/"), "");
  EXPECT_EQ(SystemdUnitOf("/writ/t-1"), "");
}

TEST(WorkloadMatcherTest, KernelKeysCoverEveryWorkload) {
  auto m = WorkloadMatcher::Build({
      W("a", {"unix:path:/opt/a", "unix:uid:5"}),
      W("b", {"unix:uid:7", "cgroup:path:/x/**"}),
      W("c", {"unix:path:/opt/a"}),
  });
  ASSERT_TRUE(m.ok());
  AdoptKernelKeys k = m->kernel_keys();
  EXPECT_EQ(k.exe_paths, std::vector<std::string>{"/opt/a"});  // exe beats uid; deduplicated
  EXPECT_EQ(k.uids, std::vector<uint32_t>{7});
  EXPECT_FALSE(k.any);
  auto any = WorkloadMatcher::Build({W("d", {"systemd:id:claude.service"})});
  ASSERT_TRUE(any.ok());
  EXPECT_TRUE(any->kernel_keys().any);  // nothing the kernel can check: every exec is a candidate
  EXPECT_TRUE(WorkloadMatcher::Build({}).value().kernel_keys().empty());
}

TEST(WorkloadMatcherTest, SelectorSyntax) {
  EXPECT_EQ(Sel("unix:uid:0").uid, 0u);
  EXPECT_EQ(Sel("unix:sha256:" + std::string(64, 'F')).value, std::string(64, 'f'));
  EXPECT_TRUE(Sel("cgroup:path:/a/b:c/**").glob->Match("/a/b:c/d"));  // ':' in the value is kept
  EXPECT_FALSE(ParseSelector("unix:uid:").ok());
  EXPECT_FALSE(ParseSelector("unix:uid:4294967296").ok());
  EXPECT_FALSE(
      ParseSelector("unix:path:/opt/*").ok());  // exact paths only: the kernel keys on them
  EXPECT_FALSE(ParseSelector("k8s:ns:default").ok());
}

}  // namespace
}  // namespace writ::intent
