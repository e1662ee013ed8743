// `writ policy explain` and `writ policy suggest`. Suggest reads one task's events from a JSONL
// file, prints the suggested intent (writ::intent::Suggest), and with --check replays the whole
// recording against it; with --diff INTENT it prints what that intent lacks or allows beyond the
// recording.
#include "cli/policy_offline.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/util/json_util.h"
#include "intent/bundle.h"
#include "intent/intent.h"
#include "util/util.h"

namespace writ::cli {
namespace {

int Fail(int code, const std::string& msg) {
  fprintf(stderr, "writ: %s\n", msg.c_str());
  return code;
}

// K=V arguments of --param.
bool ParseParams(const std::vector<std::string>& kvs,
                 absl::flat_hash_map<std::string, std::string>* out) {
  for (const std::string& kv : kvs) {
    size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) return false;
    (*out)[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  return true;
}

}  // namespace

int PolicyExplain(const ExplainArgs& a) {
  if (a.intent.empty() || a.event.empty()) {
    return Fail(2, "policy explain needs --intent NAME and --event JSON");
  }
  auto set = intent::LoadPolicyDir(a.policies);
  if (!set.ok()) return Fail(1, std::string(set.status().message()));
  const writ::v1::Intent* in = set->Find(a.intent);
  if (!in) return Fail(2, absl::StrCat("unknown intent ", a.intent));
  absl::flat_hash_map<std::string, std::string> params;
  if (!ParseParams(a.params, &params)) return Fail(2, "--param expects KEY=VALUE");
  auto ci = intent::Compile(*in, params);
  if (!ci.ok()) return Fail(2, std::string(ci.status().message()));
  writ::v1::Event ev;
  google::protobuf::util::JsonParseOptions jo;
  jo.ignore_unknown_fields = false;
  auto st = google::protobuf::util::JsonStringToMessage(a.event, &ev, jo);
  if (!st.ok()) return Fail(2, absl::StrCat("--event: ", st.ToString()));
  intent::EvalContext ctx;
  ctx.now = absl::Now();
  ctx.live_processes = 1;
  printf("%s\n", intent::Explain(**ci, ev, ctx).c_str());
  return 0;
}

int PolicySuggest(const SuggestArgs& a) {
  if (a.from.empty() || a.task.empty()) {
    return Fail(2, "policy suggest needs --from EVENTS.jsonl and --task ID");
  }
  std::ifstream in(a.from);
  if (!in) return Fail(1, absl::StrCat("cannot read ", a.from));
  std::vector<writ::v1::Event> events;
  google::protobuf::util::JsonParseOptions jo;
  jo.ignore_unknown_fields = true;
  int lineno = 0;
  for (std::string line; std::getline(in, line);) {
    lineno++;
    if (line.empty()) continue;
    writ::v1::Event ev;
    auto st = google::protobuf::util::JsonStringToMessage(line, &ev, jo);
    if (!st.ok()) return Fail(1, absl::StrCat(a.from, ":", lineno, ": ", st.ToString()));
    if (ev.agent().task_id() == a.task) events.push_back(std::move(ev));
  }
  if (events.empty()) return Fail(1, absl::StrCat("no events of task ", a.task, " in ", a.from));

  intent::Suggestion s = intent::Suggest(a.name, events, a.task);
  auto loaded = intent::LoadPolicyText(s.yaml, "suggested.yaml");
  if (!loaded.ok()) {  // a bug, never the user's input: say so with the text
    return Fail(1, absl::StrCat("the suggestion does not load back: ", loaded.status().message(),
                                "\n", s.yaml));
  }
  auto mine = intent::Compile(loaded->intents()[0], s.params, {.bind_file_ids = false});
  if (!mine.ok()) {
    return Fail(1, absl::StrCat("the suggestion does not compile: ", mine.status().message()));
  }

  if (!a.diff.empty() && a.check) {
    return Fail(2, "--check replays the suggestion, --diff compares it with an intent: give one");
  }
  if (!a.diff.empty()) {
    auto set = intent::LoadPolicyDir(a.policies);
    if (!set.ok()) return Fail(1, std::string(set.status().message()));
    const writ::v1::Intent* theirs = set->Find(a.diff);
    if (!theirs) return Fail(2, absl::StrCat("--diff: no intent ", a.diff, " in ", a.policies));
    // Its parameters: --param, else the recorded task's own (when it ran under that intent), else
    // a suggestion parameter of the same name.
    absl::flat_hash_map<std::string, std::string> params;
    if (!ParseParams(a.params, &params)) return Fail(2, "--param expects KEY=VALUE");
    for (const auto& ev : events) {
      if (ev.kind() != "task_start" || ev.agent().intent() != a.diff) continue;
      for (const auto& [k, v] : ev.task().params()) params.emplace(k, v);
    }
    for (const auto& [k, spec] : theirs->params()) {
      if (auto it = s.params.find(k); it != s.params.end()) params.emplace(k, it->second);
    }
    auto ci = intent::Compile(*theirs, params, {.bind_file_ids = false});
    if (!ci.ok()) {
      return Fail(2, absl::StrCat("--diff: intent ", a.diff, ": ", ci.status().message(),
                                  " (give its parameters with --param K=V)"));
    }
    // The suggestion records no limits, mode or responses: compare permissions only, with those of
    // the intent it is compared with.
    writ::v1::Intent as_theirs = loaded->intents()[0];
    *as_theirs.mutable_limits() = theirs->limits();
    *as_theirs.mutable_on_violation() = theirs->on_violation();
    as_theirs.set_mode(theirs->mode());
    auto mine_as = intent::Compile(as_theirs, s.params, {.bind_file_ids = false});
    if (!mine_as.ok()) return Fail(1, std::string(mine_as.status().message()));
    bool subset = false;
    std::string text = intent::DiffIntent(**mine_as, **ci, events, &subset);
    printf("%s", text.c_str());
    return intent::ReplayEvents(**ci, events).violations == 0 ? 0 : 1;
  }

  printf("%s", s.yaml.c_str());
  // Reported whether or not --check was asked for: the suggestion denies what the task did.
  for (const auto& sec : s.secrets) {
    fprintf(stderr, "writ: the recording touched a secret location: %s: denied, never allowed\n",
            sec.c_str());
  }
  if (!a.check) return 0;
  intent::Replay r = intent::ReplayEvents(**mine, events);
  fprintf(stderr, "check: %d lines of rules; %d events of task %s replayed: %d violations\n",
          s.rule_lines, r.judged, a.task.c_str(), r.violations);
  for (const auto& l : r.lines) fprintf(stderr, "check: would break: %s\n", l.c_str());
  return r.violations == 0 ? 0 : 1;
}

int PolicyBundle(const BundleArgs& a) {
  uint64_t version = 0;
  if (a.key.empty() || a.version.empty() || a.paths.empty()) {
    fprintf(stderr, "writ: policy bundle needs --key FILE, --version N and a directory or files\n");
    return 2;
  }
  if (!absl::SimpleAtoi(a.version, &version) || version == 0) {
    fprintf(stderr, "writ: --version %s: must be a whole number of 1 or more\n", a.version.c_str());
    return 2;
  }
  // The files writd would read, in its order; the whole set must load before it is signed.
  std::vector<std::string> files;
  for (const std::string& p : a.paths) {
    struct stat st;
    if (stat(p.c_str(), &st) != 0) {
      fprintf(stderr, "writ: %s: %s\n", p.c_str(), strerror(errno));
      return 1;
    }
    if (!S_ISDIR(st.st_mode)) {
      files.push_back(p);
      continue;
    }
    std::vector<std::string> in_dir;
    for (const auto& e : std::filesystem::directory_iterator(p)) {
      const std::string n = e.path().filename().string();
      if (n.empty() || n[0] == '.' || n == "writd.yaml") continue;
      if (absl::EndsWith(n, ".yaml") || absl::EndsWith(n, ".yml") || absl::EndsWith(n, ".json")) {
        in_dir.push_back(e.path().string());
      }
    }
    std::sort(in_dir.begin(), in_dir.end());
    files.insert(files.end(), in_dir.begin(), in_dir.end());
  }
  absl::StatusOr<intent::PolicySet> set = intent::LoadPolicyFiles(files);
  if (!set.ok()) {
    fprintf(stderr, "%s\nwrit: not signed: the set does not load\n",
            std::string(set.status().message()).c_str());
    return 1;
  }
  std::vector<intent::BundleFile> bf;
  for (const std::string& f : files) {
    absl::StatusOr<std::string> text = ReadFile(f);
    if (!text.ok()) {
      fprintf(stderr, "writ: %s\n", std::string(text.status().message()).c_str());
      return 1;
    }
    bf.push_back({std::filesystem::path(f).filename().string(), *std::move(text)});
  }
  absl::StatusOr<std::string> key = ReadFile(a.key);
  if (!key.ok()) {
    fprintf(stderr, "writ: --key: %s\n", std::string(key.status().message()).c_str());
    return 1;
  }
  absl::StatusOr<std::string> env = intent::SignBundle(bf, version, a.signer, *key);
  if (!env.ok()) {
    fprintf(stderr, "writ: %s\n", std::string(env.status().message()).c_str());
    return 1;
  }
  if (a.out.empty() || a.out == "-") {
    fwrite(env->data(), 1, env->size(), stdout);
  } else if (absl::Status st = WriteFileCreate(a.out, *env); !st.ok()) {
    fprintf(stderr, "writ: %s\n", std::string(st.message()).c_str());
    return 1;
  }
  fprintf(stderr, "writ: bundle version %lu: %zu files, %zu intents\n",
          static_cast<unsigned long>(version), bf.size(), set->intents().size());
  return 0;
}

}  // namespace writ::cli
