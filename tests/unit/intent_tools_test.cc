// An intent's `tools:` (intent/tools.h): loading and its errors, judging calls by name, by argument
// (JSON pointer + path glob, argument glob, enum) and approval, tools/list filtering, and the
// sub-agent subset rule.
#include "gtest/gtest.h"
#include "intent/intent.h"
#include "intent/tools.h"

namespace writ::intent {
namespace {

using json = nlohmann::json;

constexpr const char* kIntent = R"(
apiVersion: writ.dev/v1
kind: Intent
name: fs
params:
  root: {type: path, required: true}
  extra: {type: string}
tools:
  allow: ["read_*", list_directory, write_file, edit_file, search]
  deny: [read_secret]
  arguments:
    - {tool: "read_*", pointer: /path, path: "${root}/**"}
    - {tool: write_file, pointer: /path, path: "${root}/**"}
    - {tool: search, pointer: /mode, enum: [fast, "1", "true"]}
    - {tool: search, pointer: /opts/pattern, glob: "*.md", optional: true}
    - {tool: list_directory, pointer: /path, glob: "${extra}"}
  approval:
    - {tool: edit_file, timeout: 30s}
)";

std::shared_ptr<const CompiledIntent> Compiled(const char* text, const std::string& root = "/srv") {
  auto set = LoadPolicyText(text, "t.yaml");
  EXPECT_TRUE(set.ok()) << set.status();
  absl::flat_hash_map<std::string, std::string> params;
  if (set->intents()[0].params().contains("root")) params["root"] = root;
  auto ci = Compile(set->intents()[0], params);
  EXPECT_TRUE(ci.ok()) << ci.status();
  return *ci;
}

ToolDecision J(const ToolPolicy& p, const std::string& name, const char* args) {
  json a = json::parse(args);
  return p.Judge(name, &a);
}

TEST(ToolsTest, JudgesByNameArgumentsAndApproval) {
  auto ci = Compiled(kIntent);
  ASSERT_NE(ci->tools(), nullptr);
  const ToolPolicy& p = *ci->tools();
  EXPECT_EQ(J(p, "read_file", R"({"path":"/srv/a"})").kind, ToolDecision::kAllow);
  auto d = J(p, "read_secret", R"({"path":"/srv/a"})");
  EXPECT_EQ(d.kind, ToolDecision::kDeny);
  EXPECT_EQ(d.rule, "fs/tools.deny[0]");
  d = J(p, "move_file", "{}");
  EXPECT_EQ(d.rule, "fs/tools.default");
  // Path constraints: outside, "..", relative, not a string, missing.
  for (const char* bad : {R"({"path":"/etc/passwd"})", R"({"path":"/srv/../etc/passwd"})",
                          R"({"path":"srv/a"})", R"({"path":7})", R"({})"}) {
    d = J(p, "read_text_file", bad);
    EXPECT_EQ(d.kind, ToolDecision::kDeny) << bad;
    EXPECT_EQ(d.rule, "fs/tools.arguments[0]") << bad;
  }
  EXPECT_EQ(J(p, "read_text_file", R"({"path":"/srv/./x/../a"})").kind, ToolDecision::kAllow);
  // Enum over strings, numbers and bools as written; an optional glob.
  EXPECT_EQ(J(p, "search", R"({"mode":"fast"})").kind, ToolDecision::kAllow);
  EXPECT_EQ(J(p, "search", R"({"mode":1})").kind, ToolDecision::kAllow);
  EXPECT_EQ(J(p, "search", R"({"mode":true})").kind, ToolDecision::kAllow);
  EXPECT_EQ(J(p, "search", R"({"mode":"slow"})").kind, ToolDecision::kDeny);
  EXPECT_EQ(J(p, "search", R"({"mode":["fast"]})").kind, ToolDecision::kDeny);
  EXPECT_EQ(J(p, "search", R"({"mode":"fast","opts":{"pattern":"a.md"}})").kind,
            ToolDecision::kAllow);
  d = J(p, "search", R"({"mode":"fast","opts":{"pattern":"a.txt"}})");
  EXPECT_EQ(d.rule, "fs/tools.arguments[3]");
  // A rule naming an unset optional parameter is dropped, as everywhere in intents.
  EXPECT_EQ(J(p, "list_directory", R"({"path":"/anything"})").kind, ToolDecision::kAllow);
  d = J(p, "edit_file", "{}");
  EXPECT_EQ(d.kind, ToolDecision::kNeedsApproval);
  EXPECT_EQ(d.timeout, absl::Seconds(30));
  // Arguments too large to send: a tool with argument rules is denied, one without is judged.
  EXPECT_EQ(p.Judge("read_file", nullptr).kind, ToolDecision::kDeny);
  EXPECT_EQ(p.Judge("edit_file", nullptr).kind, ToolDecision::kNeedsApproval);
}

TEST(ToolsTest, ListShowsWhatMayBeCalled) {
  auto ci = Compiled(kIntent);
  const ToolPolicy& p = *ci->tools();
  EXPECT_TRUE(p.Shown("read_file"));
  EXPECT_TRUE(p.Shown("edit_file"));  // judged per call
  EXPECT_FALSE(p.Shown("read_secret"));
  EXPECT_FALSE(p.Shown("move_file"));
}

TEST(ToolsTest, NoToolsMeansNotJudged) {
  auto ci = Compiled("apiVersion: writ.dev/v1\nkind: Intent\nname: x\n");
  EXPECT_EQ(ci->tools(), nullptr);
}

TEST(ToolsTest, LoaderErrorsNameTheField) {
  auto set = LoadPolicyText(R"(
apiVersion: writ.dev/v1
kind: Intent
name: bad
tools:
  deny: [""]
  arguments:
    - {tool: x, pointer: path, enum: [a]}
    - {tool: x, pointer: /a}
    - {pointer: "/a~2", glob: "*"}
    - {tool: y, pointer: /p, path: relative/**}
  approval:
    - {tool: z, timeout: soon}
    - {timeout: 1m}
  unknown: 1
)",
                            "bad.yaml");
  ASSERT_FALSE(set.ok());
  const std::string m(set.status().message());
  for (const char* want :
       {"bad.yaml:", "tools.deny[0]: empty tool name pattern",
        "tools.arguments[0].pointer: a JSON pointer starts with '/'",
        "tools.arguments[1]: checks nothing", "tools.arguments[2].tool: missing",
        "tools.arguments[2].pointer:", "tools.arguments[3].path:", "tools.approval[0].timeout:",
        "tools.approval[1].tool: missing", "tools.unknown"}) {
    EXPECT_NE(m.find(want), std::string::npos) << want << " not in:\n" << m;
  }
}

TEST(ToolsTest, SubAgentToolsAreASubset) {
  auto parent = Compiled(kIntent);
  auto same = Compiled(kIntent);
  EXPECT_TRUE(CheckSubset(*same, *parent).ok());
  const std::string narrower = std::string(kIntent).replace(
      std::string(kIntent).find(
          "allow: [\"read_*\", list_directory, write_file, edit_file, search]"),
      std::string("allow: [\"read_*\", list_directory, write_file, edit_file, search]").size(),
      "allow: [read_file, edit_file]");
  EXPECT_TRUE(CheckSubset(*Compiled(narrower.c_str()), *parent).ok());
  // Wider: every tool, another tool, a deny dropped, an argument rule dropped, approval dropped.
  auto none = Compiled("apiVersion: writ.dev/v1\nkind: Intent\nname: c\n");
  EXPECT_FALSE(CheckSubset(*none, *parent).ok());
  for (auto [from, to] : std::vector<std::pair<std::string, std::string>>{
           {"search]", "search, move_file]"},
           {"deny: [read_secret]", "deny: []"},
           {"    - {tool: write_file, pointer: /path, path: \"${root}/**\"}\n", ""},
           {"    - {tool: edit_file, timeout: 30s}\n", ""}}) {
    std::string wider = kIntent;
    wider.replace(wider.find(from), from.size(), to);
    absl::Status st = CheckSubset(*Compiled(wider.c_str()), *parent);
    EXPECT_TRUE(absl::IsPermissionDenied(st)) << from << " -> " << to << ": " << st;
  }
  // A different root is a different argument rule: refused (the subset check does not prove
  // path-glob inclusion).
  EXPECT_FALSE(CheckSubset(*Compiled(kIntent, "/srv/sub"), *parent).ok());
  // A parent without tools: allows every tool.
  EXPECT_TRUE(CheckSubset(*parent, *none).ok());
}

TEST(ToolsTest, NormalizeAbsolutePath) {
  EXPECT_EQ(NormalizeAbsolutePath("/a/./b/../c//d/"), "/a/c/d");
  EXPECT_EQ(NormalizeAbsolutePath("/../.."), "/");
  EXPECT_EQ(NormalizeAbsolutePath("a/b"), "");
  EXPECT_EQ(NormalizeAbsolutePath(""), "");
}

// `writ policy suggest` from a recording through the gateway: the tools called are allowed, the
// ones offered and never called denied, and the suggestion loads back and judges so.
TEST(ToolsTest, SuggestProposesToolsFromARecording) {
  std::vector<writ::v1::Event> evs(4);
  evs[0].set_kind("tool_list");
  for (const char* t : {"read_text_file", "write_file", "move_file"})
    evs[0].mutable_tool()->add_offered(t);
  evs[1].set_kind("tool_call");
  evs[1].mutable_tool()->set_name("read_text_file");
  evs[1].mutable_tool()->set_status("ok");
  evs[2].set_kind("tool_call");
  evs[2].mutable_tool()->set_name("write_file");
  evs[2].mutable_tool()->set_status("error");
  evs[3].set_kind("tool_call");
  evs[3].mutable_tool()->set_name("move_file");
  evs[3].mutable_tool()->set_status("denied");  // refused: not evidence it is needed
  const std::string yaml = Suggest("suggested", evs, "t-1").yaml;
  auto set = LoadPolicyText(yaml, "suggested.yaml");
  ASSERT_TRUE(set.ok()) << set.status() << "\n" << yaml;
  auto ci = Compile(set->intents()[0], {});
  ASSERT_TRUE(ci.ok()) << ci.status();
  ASSERT_NE((*ci)->tools(), nullptr) << yaml;
  EXPECT_TRUE((*ci)->tools()->Shown("read_text_file"));
  EXPECT_TRUE((*ci)->tools()->Shown("write_file"));
  EXPECT_FALSE((*ci)->tools()->Shown("move_file"));
  EXPECT_FALSE((*ci)->tools()->Shown("anything_else"));
}

// tools.during: while one call of a matching tool is in flight, its own exec/files/network rules.
TEST(ToolsTest, DuringRulesCompileAsAnIntentOfTheirOwn) {
  constexpr const char* kDuring = R"(
apiVersion: writ.dev/v1
kind: Intent
name: cmd
params:
  repo: {type: path, required: true}
on_violation: [alert, kill]
tools:
  during:
    - tool: "read_*"
      files: {write: [/dev/null]}
      exec: {allow: []}
)";
  auto set = LoadPolicyText(kDuring, "d.yaml");
  ASSERT_TRUE(set.ok()) << set.status();
  auto c = Compile(set->intents()[0], {{"repo", "/srv"}});
  ASSERT_TRUE(c.ok()) << c.status();
  const ToolPolicy* p = (*c)->tools();
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->During("write_file"), nullptr);
  auto d = p->During("read_text_file");
  ASSERT_NE(d, nullptr);
  writ::v1::Event w;
  w.set_kind("open");
  w.mutable_file()->set_path("/srv/out.txt");
  w.mutable_file()->add_flags("write");
  Verdict v = Evaluate(*d, w, EvalContext{absl::Now(), 1});
  ASSERT_EQ(v.kind, Verdict::kViolation);
  EXPECT_EQ(v.rule->id, "cmd/tools.during[0]/files.write.default");
  EXPECT_EQ(v.rule->responses, (std::vector<std::string>{"alert", "kill"}));
  w.mutable_file()->clear_flags();
  w.mutable_file()->add_flags("read");
  EXPECT_NE(Evaluate(*d, w, EvalContext{absl::Now(), 1}).kind, Verdict::kViolation);
  // A sub-agent keeps the narrowing.
  auto none = Compiled("apiVersion: writ.dev/v1\nkind: Intent\nname: c\ntools: {allow: [\"*\"]}\n");
  EXPECT_FALSE(CheckSubset(*none, **c).ok());
  EXPECT_TRUE(CheckSubset(**c, **c).ok());
  auto bad = LoadPolicyText(
      "apiVersion: writ.dev/v1\nkind: Intent\nname: b\ntools:\n  during:\n    - {tool: x}\n"
      "    - {files: {read: [relative]}}\n",
      "b.yaml");
  ASSERT_FALSE(bad.ok());
  const std::string m(bad.status().message());
  EXPECT_NE(m.find("tools.during[0]: narrows nothing"), std::string::npos) << m;
  EXPECT_NE(m.find("tools.during[1].tool: missing"), std::string::npos) << m;
  EXPECT_NE(m.find("tools.during[1].files.read[0]"), std::string::npos) << m;
}

}  // namespace
}  // namespace writ::intent
