// `writ policy suggest` on recordings of real agents (issue 21, docs/policy.md "Suggesting an
// intent"): @modelcontextprotocol/server-filesystem and mcp-server-commands from npm (driven by the
// MCP SDK's stdio client, tests/e2e/agents/agent.mjs) and a git + make coding session, each
// recorded live under a writd in record mode. For each: the suggestion has at most 60 lines of
// rules, `--check` replays its recording with 0 violations, it holds no per-process or per-boot
// path, allows no secret location, and, enforced, lets the same work run and kills a read of a key
// and an exec of a program the recording never ran. Needs root (BPF) and the pinned servers (npm
// ci); skips otherwise.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "intent/intent.h"
#include "testlib/writd_fixture.h"

#ifndef WRIT_SOURCE_DIR
#error "WRIT_SOURCE_DIR must be defined"
#endif

namespace writ::testlib {
namespace {

using json = nlohmann::json;
using ::testing::HasSubstr;

const std::string kAgentsDir = std::string(WRIT_SOURCE_DIR) + "/tests/e2e/agents";
const std::string kNodeModules = kAgentsDir + "/node_modules";
constexpr char kAgent[] = "spiffe://example.org/agent/suggest";

// The pinned MCP servers, installed as agents_e2e installs them; "" when ready, else why not.
std::string EnsureNodeModules() {
  if (std::filesystem::exists(kNodeModules + "/.package-lock.json")) return "";
  CmdResult r = RunCommand(
      {"/bin/sh", "-c", absl::StrCat("cd '", kAgentsDir, "' && npm ci --no-audit --no-fund")},
      std::chrono::seconds(240));
  if (r.exit_code == 0) return "";
  return absl::StrCat("npm ci failed (registry unreachable?): ", r.err);
}

class SuggestE2e : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (writd loads BPF programs, creates cgroups)";
    if (std::string why = EnsureNodeModules(); !why.empty()) GTEST_SKIP() << why;
    WritdInstance::Options o;
    o.mode = "record";
    ASSERT_TRUE(w_.Start(o).ok()) << w_.log();
    base_ = MakeAgentDir("writ-suggest");
    ASSERT_FALSE(base_.empty());
  }

  // Writes a file owned by the agent user (its data, as a user's files are).
  void Put(const std::string& path, const std::string& text) {
    std::filesystem::create_directories(std::filesystem::path(path).parent_path());
    std::ofstream(path) << text;
    RunCommand({"/usr/bin/chown", "-R", WRIT_TEST_AGENT_USER ":", base_});
  }

  struct AgentRun {
    std::string task;
    int exit = -1;  // writ run's status: 137 when writd killed the server
    std::vector<json> steps;
    std::string err;
  };
  // agent.mjs: STEPS against `writ run [--intent I --param ...] -- SERVER...`.
  AgentRun RunAgent(const json& steps, const std::vector<std::string>& server,
                    const std::vector<std::string>& intent_args = {}) {
    std::vector<std::string> argv = {"/usr/bin/node", kAgentsDir + "/agent.mjs",
                                     steps.dump(),    "--",
                                     WRIT_BIN,        "--socket",
                                     w_.socket(),     "run",
                                     "--user",        WRIT_TEST_AGENT_USER,
                                     "--agent",       kAgent};
    argv.insert(argv.end(), intent_args.begin(), intent_args.end());
    argv.push_back("--");
    argv.insert(argv.end(), server.begin(), server.end());
    CmdResult r = RunCommand(argv, std::chrono::seconds(90));
    AgentRun out;
    out.err = r.err;
    for (absl::string_view line : absl::StrSplit(r.out, '\n', absl::SkipEmpty())) {
      json j = json::parse(line, nullptr, false);
      if (j.is_discarded()) continue;
      if (j.contains("step")) out.steps.push_back(j);
      if (j.contains("task") && j["task"].is_string()) out.task = j["task"];
      if (j.contains("exit") && j["exit"].is_number()) out.exit = j["exit"];
      if (j.contains("exit") && j["signal"] == "SIGKILL") out.exit = 137;
    }
    EXPECT_FALSE(out.task.empty()) << r.out << r.err;
    WaitEnd(out.task);
    return out;
  }
  AgentRun RunTask(const std::vector<std::string>& cmd,
                   const std::vector<std::string>& intent_args) {
    std::vector<std::string> args = {"run", "--agent", kAgent};
    args.insert(args.end(), intent_args.begin(), intent_args.end());
    args.push_back("--");
    args.insert(args.end(), cmd.begin(), cmd.end());
    CmdResult r = w_.Writ(args, std::chrono::seconds(60));
    AgentRun out{TaskIdFrom(r.err), r.exit_code, {}, r.err + r.out};
    EXPECT_FALSE(out.task.empty()) << r.err;
    WaitEnd(out.task);
    return out;
  }
  void WaitEnd(const std::string& task) {
    EXPECT_FALSE(w_.WaitForEvent(
                       [&](const json& e) {
                         return e["kind"] == "task_end" && e["agent"]["task_id"] == task;
                       },
                       std::chrono::seconds(15))
                     .is_null())
        << "no task_end for " << task;
  }

  // Suggests from a recorded task, checks the suggestion's shape, and loads it (enforce mode) as
  // intent `name` into writd. Returns the YAML.
  std::string SuggestAndLoad(const std::string& task, const std::string& name) {
    CmdResult s = w_.Writ({"policy", "suggest", "--from", w_.events_path(), "--task", task,
                           "--name", name, "--check"});
    std::cout << "---- suggestion " << name << " (" << task << ")\n" << s.out << s.err;
    EXPECT_EQ(s.exit_code, 0) << s.err;
    std::smatch m;
    EXPECT_TRUE(std::regex_search(
        s.err, m,
        std::regex(R"(check: (\d+) lines of rules; (\d+) events .* replayed: 0 violations)")))
        << s.err;
    int lines = 0;
    for (absl::string_view l : absl::StrSplit(s.out, '\n')) {
      if (absl::StartsWith(l, "tests:")) break;
      if (!absl::StartsWith(l, "#") && !l.empty()) ++lines;
    }
    std::cout << "measured: " << name << ": " << lines << " lines of rules, replay 0 violations of "
              << (m.size() > 2 ? m[2].str() : "?") << " events\n";
    EXPECT_LE(lines, 60) << s.out;
    const std::string rules =
        s.out.substr(s.out.find("\nexec:"), s.out.find("\non_violation:") - s.out.find("\nexec:"));
    // No per-process or per-boot name: pids, the task's id, its cgroup, a terminal number.
    // Nor in the tests drawn from the recording (a hash: a cgroup's name, a mktemp suffix).
    EXPECT_FALSE(std::regex_search(s.out, std::regex(R"(/proc/[0-9]+)"))) << s.out;
    EXPECT_FALSE(std::regex_search(s.out, std::regex(R"(/dev/pts/[0-9])"))) << s.out;
    EXPECT_FALSE(std::regex_search(s.out, std::regex(R"([0-9a-f]{16})"))) << s.out;
    EXPECT_THAT(rules, ::testing::Not(HasSubstr(task)));
    EXPECT_THAT(rules, ::testing::Not(HasSubstr(w_.cgroup_root())));
    // Its own tests pass.
    const std::string dir = absl::StrCat(w_.dir(), "/suggested-", name);
    std::filesystem::create_directories(dir);
    std::ofstream(dir + "/s.yaml") << s.out;
    // It loads without a warning (no rule a deny always beats, no duplicate, no symlinked program).
    CmdResult c = w_.Writ({"policy", "check", dir});
    EXPECT_EQ(c.exit_code, 0) << c.err;
    EXPECT_THAT(c.out + c.err, ::testing::Not(HasSubstr("warning")));
    CmdResult t = w_.Writ({"policy", "test", dir});
    EXPECT_EQ(t.exit_code, 0) << t.out << t.err;
    EXPECT_THAT(t.out, HasSubstr(" passed, 0 failed"));
    // No secret location is allowed, whatever the parameters.
    auto set = intent::LoadPolicyText(s.out, "s.yaml");
    EXPECT_TRUE(set.ok()) << set.status();
    if (set.ok()) {
      absl::flat_hash_map<std::string, std::string> params;
      for (const auto& [k, spec] : set->intents()[0].params()) params[k] = base_;
      auto ci = intent::Compile(set->intents()[0], params, {.bind_file_ids = false});
      EXPECT_TRUE(ci.ok()) << ci.status();
      for (const std::string& p :
           {std::string("/etc/shadow"), base_ + "/.ssh/id_ed25519", base_ + "/docs/.env",
            base_ + "/home/.aws/credentials", base_ + "/repo/.git-credentials"}) {
        writ::v1::Event ev;
        ev.set_kind("open");
        ev.mutable_file()->set_path(p);
        ev.mutable_file()->add_flags("read");
        if (ci.ok()) {
          EXPECT_EQ(intent::Evaluate(**ci, ev, {absl::Now(), 1}).kind, intent::Verdict::kViolation)
              << p;
        }
      }
    }
    std::ofstream(w_.policies_dir() + "/" + name + ".yaml") << s.out << "mode: enforce\n";
    CmdResult rl = w_.Writ({"policy", "reload"});
    EXPECT_EQ(rl.exit_code, 0) << rl.err;
    return s.out;
  }

  // The task was killed for `what` (an open of `path` or an exec of it), by the suggestion's rule.
  void ExpectKilledFor(const AgentRun& r, const std::string& kind, const std::string& path) {
    EXPECT_EQ(r.exit, 137) << r.err;
    bool found = false;
    for (const json& e : w_.TaskEvents(r.task)) {
      if (e.value("verdict", "") != "violation" || e["kind"] != kind) continue;
      const std::string p =
          kind == "open" ? e["file"].value("path", "") : e["process"].value("exe", "");
      if (p != path) continue;
      found = true;
      EXPECT_THAT(e.value("outcome", ""), ::testing::AnyOf("killed", "killed_after", "prevented"));
    }
    EXPECT_TRUE(found) << "no violation for " << kind << " " << path;
    json end = w_.WaitForEvent(
        [&](const json& e) { return e["kind"] == "task_end" && e["agent"]["task_id"] == r.task; });
    EXPECT_EQ(end["task"].value("reason", ""), "killed") << end.dump();
  }
  void ExpectClean(const AgentRun& r) {
    EXPECT_EQ(r.exit, 0) << r.err;
    for (const json& e : w_.TaskEvents(r.task)) {
      EXPECT_NE(e.value("verdict", ""), "violation") << e.dump();
    }
  }

  WritdInstance w_;
  std::string base_;
};

TEST_F(SuggestE2e, FilesystemServer) {
  const std::string docs = base_ + "/docs";
  Put(docs + "/a.txt", "hello\n");
  Put(docs + "/notes/b.md", "# b\n");
  const std::string server =
      kNodeModules + "/@modelcontextprotocol/server-filesystem/dist/index.js";
  const json steps = json::array({
      {{"call", "list_directory"}, {"args", {{"path", docs}}}},
      {{"call", "read_text_file"}, {"args", {{"path", docs + "/a.txt"}}}},
      {{"call", "write_file"}, {"args", {{"path", docs + "/c.txt"}, {"content", "written\n"}}}},
      {{"call", "search_files"}, {"args", {{"path", docs}, {"pattern", "*.md"}}}},
  });
  AgentRun rec = RunAgent(steps, {"node", server, docs});
  ASSERT_EQ(rec.exit, 0) << rec.err;
  ASSERT_EQ(rec.steps.size(), 4u);
  const std::string yaml = SuggestAndLoad(rec.task, "sug-fs");
  EXPECT_THAT(yaml, HasSubstr("node_modules/**"));
  EXPECT_THAT(yaml, HasSubstr("\"${docs}/**\""));
  // --diff against the shipped intent for this server: what it lacks, what it allows beyond, and
  // whether the suggestion is a subset of it.
  CmdResult d =
      w_.Writ({"policy", "suggest", "--from", w_.events_path(), "--task", rec.task, "--diff",
               "mcp-filesystem", "--policies", std::string(WRIT_SOURCE_DIR) + "/policies",
               "--param", "root=" + docs, "--param", "server=" + kNodeModules});
  std::cout << "---- diff against mcp-filesystem\n" << d.out << d.err;
  EXPECT_EQ(d.exit_code, absl::StrContains(d.out, "lacks: ") ? 1 : 0) << d.err;
  EXPECT_THAT(d.out, HasSubstr("# mcp-filesystem against the recording: "));
  EXPECT_THAT(d.out, ::testing::ContainsRegex("subset: (yes|no: )"));
  // /lib is a symlink to /usr/lib here: nothing opens a path under it.
  EXPECT_THAT(d.out,
              ::testing::ContainsRegex(R"(beyond: mcp-filesystem/files.read\[[0-9]+\] /lib/\*\*)"));
  // Bad input names the file and line.
  std::ofstream(w_.dir() + "/bad.jsonl") << "{\"kind\":\"exec\"}\n{not json\n";
  CmdResult bad = w_.Writ({"policy", "suggest", "--from", w_.dir() + "/bad.jsonl", "--task", "x"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_THAT(bad.err, HasSubstr(w_.dir() + "/bad.jsonl:2: "));

  // Enforced: the same work on another directory, given as the parameter.
  const std::string docs2 = base_ + "/docs2";
  Put(docs2 + "/a.txt", "hello again\n");
  AgentRun again = RunAgent(
      json::array(
          {{{"call", "read_text_file"}, {"args", {{"path", docs2 + "/a.txt"}}}},
           {{"call", "write_file"}, {"args", {{"path", docs2 + "/c.txt"}, {"content", "x"}}}}}),
      {"node", server, docs2}, {"--intent", "sug-fs", "--param", "docs=" + docs2});
  ExpectClean(again);
  ASSERT_EQ(again.steps.size(), 2u);
  EXPECT_EQ(again.steps[0].value("text", ""), "hello again\n");
  // A key inside the served directory: the server would read it; the suggestion kills it.
  Put(docs2 + "/.ssh/id_ed25519", "-----BEGIN OPENSSH PRIVATE KEY-----\nfake\n");
  AgentRun key = RunAgent(
      json::array({{{"call", "read_text_file"}, {"args", {{"path", docs2 + "/.ssh/id_ed25519"}}}}}),
      {"node", server, docs2}, {"--intent", "sug-fs", "--param", "docs=" + docs2});
  ExpectKilledFor(key, "open", docs2 + "/.ssh/id_ed25519");
  // A program the server never ran.
  AgentRun exec = RunTask({"/usr/bin/id"}, {"--intent", "sug-fs", "--param", "docs=" + docs2});
  ExpectKilledFor(exec, "exec", "/usr/bin/id");
}

TEST_F(SuggestE2e, CommandsServer) {
  const std::string docs = base_ + "/docs";
  Put(docs + "/a.txt", "one\ntwo\n");
  Put(base_ + "/home/.ssh/id_ed25519", "-----BEGIN OPENSSH PRIVATE KEY-----\nfake\n");
  const std::string server = kNodeModules + "/mcp-server-commands/build/index.js";
  auto cmd = [&](const std::string& c) {
    return json{{"call", "run_command"}, {"args", {{"command", c}, {"workdir", docs}}}};
  };
  const json steps = json::array({cmd("ls -la"), cmd("cat a.txt"), cmd("wc -l a.txt")});
  AgentRun rec = RunAgent(steps, {"node", server});
  ASSERT_EQ(rec.exit, 0) << rec.err;
  ASSERT_EQ(rec.steps.size(), 3u);
  EXPECT_THAT(rec.steps[1].value("text", ""), HasSubstr("two"));
  SuggestAndLoad(rec.task, "sug-cmd");

  AgentRun again = RunAgent(json::array({cmd("cat a.txt"), cmd("ls -la")}), {"node", server},
                            {"--intent", "sug-cmd"});
  ExpectClean(again);
  EXPECT_THAT(again.steps.at(0).value("text", ""), HasSubstr("two"));
  // cat ran in the recording; a key is never allowed.
  AgentRun key = RunAgent(json::array({cmd("cat " + base_ + "/home/.ssh/id_ed25519")}),
                          {"node", server}, {"--intent", "sug-cmd"});
  ExpectKilledFor(key, "open", base_ + "/home/.ssh/id_ed25519");
  // id never ran.
  AgentRun exec = RunAgent(json::array({cmd("id")}), {"node", server}, {"--intent", "sug-cmd"});
  ExpectKilledFor(exec, "exec", "/usr/bin/id");
}

TEST_F(SuggestE2e, GitMakeSession) {
  const std::string repo = base_ + "/repo";
  Put(repo + "/Makefile", "out.txt: in.txt\n\tcat in.txt > out.txt\n");
  Put(repo + "/in.txt", "data\n");
  Put(base_ + "/home/.ssh/id_ed25519", "-----BEGIN OPENSSH PRIVATE KEY-----\nfake\n");
  const std::string git = "git -c user.email=a@example.org -c user.name=a";
  auto session = [&](const std::string& dir) {
    return absl::StrCat("cd ", dir, " && git init -q -b main && ", git, " add -A && ", git,
                        " commit -qm init && echo more >> in.txt && git status --porcelain && make"
                        " && git diff --stat && ",
                        git, " commit -qam step && git log --oneline");
  };
  AgentRun rec = RunTask({"/bin/sh", "-c", session(repo)}, {});
  ASSERT_EQ(rec.exit, 0) << rec.err;
  const std::string yaml = SuggestAndLoad(rec.task, "sug-git");
  EXPECT_THAT(yaml, HasSubstr("\"${repo}/**\""));

  const std::string repo2 = base_ + "/work/repo";
  Put(repo2 + "/Makefile", "out.txt: in.txt\n\tcat in.txt > out.txt\n");
  Put(repo2 + "/in.txt", "data\n");
  const std::vector<std::string> as = {"--intent", "sug-git", "--param", "repo=" + repo2};
  ExpectClean(RunTask({"/bin/sh", "-c", session(repo2)}, as));
  AgentRun key = RunTask(
      {"/bin/sh", "-c", absl::StrCat("cd ", repo2, " && cat ", base_, "/home/.ssh/id_ed25519")},
      as);
  ExpectKilledFor(key, "open", base_ + "/home/.ssh/id_ed25519");
  AgentRun exec =
      RunTask({"/bin/sh", "-c", absl::StrCat("cd ", repo2, " && git status && id")}, as);
  ExpectKilledFor(exec, "exec", "/usr/bin/id");

  // A recording that read a key: reported, denied by the suggestion, and --check says what breaks.
  const std::string key_path = base_ + "/home/.ssh/id_ed25519";
  AgentRun peek = RunTask({"/bin/sh", "-c", absl::StrCat("cat ", repo, "/in.txt ", key_path)}, {});
  CmdResult s =
      w_.Writ({"policy", "suggest", "--from", w_.events_path(), "--task", peek.task, "--check"});
  EXPECT_EQ(s.exit_code, 1) << s.err;
  EXPECT_THAT(s.err, HasSubstr(absl::StrCat("the recording touched a secret location: ", key_path,
                                            " (**/.ssh/**): denied, never allowed")));
  EXPECT_THAT(s.err, HasSubstr(absl::StrCat("check: would break: open ", key_path,
                                            " (read): violation by suggested/files.deny[")));
  EXPECT_THAT(s.out, HasSubstr(absl::StrCat("# SECRET: the recording touched ", key_path)));
  EXPECT_THAT(s.out.substr(0, s.out.find("\ntests:")), ::testing::Not(HasSubstr("\"" + key_path)));
}

}  // namespace
}  // namespace writ::testlib
