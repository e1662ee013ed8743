// The `writ policy` commands that need no writd: `explain` (one event against an intent) and
// `suggest` (a recorded task's events → a suggested intent, its replay check and its comparison
// with an intent already written; docs/policy.md, "Suggesting an intent").
#pragma once

#include <string>
#include <vector>

namespace writ::cli {

struct ExplainArgs {
  std::string intent;
  std::string policies;
  std::vector<std::string> params;  // K=V
  std::string event;                // a writ.v1.Event as JSON
};
int PolicyExplain(const ExplainArgs& a);

struct SuggestArgs {
  std::string from;  // JSONL events (writd's events file or `writ tail --format json` output)
  std::string task;
  std::string name = "suggested";
  bool check = false;    // replay the recording against the suggestion
  std::string diff;      // compare with this intent of `policies` instead of printing YAML
  std::string policies;  // policy directory for --diff
  std::vector<std::string> params;  // K=V for the --diff intent's parameters
};

// Exit status: 0, 1 (a failed check, an intent that lacks what was recorded, unreadable input),
// 2 (usage). Messages go to stderr as "writ: ...".
int PolicySuggest(const SuggestArgs& a);

// `writ policy bundle`: the intent files of `paths` (directories: their *.yaml, *.yml, *.json, as
// writd reads them), checked as one set, signed with the Ed25519 key into a bundle for `writ policy
// apply` (docs/policy.md, "Signed policy bundles"). Exit 0, 1 (a set that does not load, an
// unreadable key), 2 (usage).
struct BundleArgs {
  std::vector<std::string> paths;
  std::string key;  // PEM private key
  std::string version;
  std::string signer;
  std::string out;  // "" or "-": stdout
};
int PolicyBundle(const BundleArgs& a);

}  // namespace writ::cli
