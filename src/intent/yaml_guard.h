// A cheap pass over policy text before yaml-cpp parses it. yaml-cpp 0.7 recurses once per nesting
// level and walks aliases without bound, so a few kilobytes of hostile YAML ("[[[[...", "- - - -
// ...", a billion-laughs alias chain) can exhaust the stack, the CPU or the memory of `writ policy
// check` or a writd reload (found by tests/fuzz/policy_fuzz.cc). Real policies are shallow, so the
// bounds below are far above anything legitimate and far below what hurts; a refusal names
// FILE:LINE like every other policy error.
#pragma once

#include <optional>
#include <string>

#include "absl/strings/string_view.h"

namespace writ::intent {

struct YamlGuardLimits {
  size_t max_bytes = 1 << 20;  // the same 1 MiB as a policy file
  int max_flow_depth = 32;     // nested [ ] / { }
  int max_block_depth = 64;    // indentation plus "- " / "? " indicators at the start of a line
  int max_anchors = 64;        // &name
  int max_aliases = 16;        // *name: each may repeat a whole subtree
  int max_documents = 1024;    // "---"
  int max_events = 200000;     // nodes in all documents (a dry run of yaml-cpp's parser)
};

// nullopt when the text is within bounds, else "FILE:LINE: yaml: what is wrong". A cheap lexical
// pass (depths, anchors, aliases, a few token sequences yaml-cpp loops on), then a bounded dry run
// of yaml-cpp's event parser (documents, nodes) that catches a parser making no progress.
std::optional<std::string> CheckYamlBounds(absl::string_view text, const std::string& file,
                                           const YamlGuardLimits& limits = {});

}  // namespace writ::intent
