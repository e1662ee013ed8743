// Fuzzes the policy loader and compiler: arbitrary text as a policy file, then every intent it
// yields compiled with placeholder parameters (the same ones `writ policy test` uses for required
// params). The loader must answer every input with a status (yaml-cpp exceptions caught at the
// edge), never a crash, hang or leak; a loaded intent must either compile or fail with a message
// naming a field, and loaded workloads must build a matcher.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "fuzz/fuzz_common.h"
#include "intent/intent.h"
#include "intent/workload.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  writ::fuzz::QuietLogs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto set = writ::intent::LoadPolicyText(text, "fuzz.yaml");
  if (!set.ok()) {
    // Every error line is "FILE:LINE: field: message" (intent.h): the file name must be there.
    if (set.status().message().find("fuzz.yaml") == std::string::npos) abort();
    return 0;
  }
  for (const auto& in : set->intents()) {
    absl::flat_hash_map<std::string, std::string> params;
    for (const auto& [name, spec] : in.params()) {
      if (spec.type() == "path") {
        params[name] = absl::StrCat("/tmp/writ-fuzz-", name);
      } else if (spec.type() == "int") {
        params[name] = "1";
      } else if (spec.type() == "bool") {
        params[name] = "true";
      } else {
        params[name] = absl::StrCat("fuzz-", name);
      }
    }
    auto ci = writ::intent::Compile(in, params, {.bind_file_ids = false});
    if (!ci.ok() && ci.status().message().empty()) abort();  // an error must say what is wrong
  }
  // writd builds the adoption matcher from whatever loaded and treats a failure as a broken
  // invariant (adoption off): every selector of a loaded `Workloads` entry must already be valid.
  if (!writ::intent::WorkloadMatcher::Build(set->workloads()).ok()) abort();
  return 0;
}
