// Fuzzes secret redaction, which runs on every string a task can put into an event: arbitrary bytes
// as one text, as an argument vector (split at NUL, the kernel's separator), and as a rules file.
// Checked besides crashes, hangs and leaks: redaction is idempotent (a second pass changes
// nothing), a redacted string is never longer than the input plus its marks, and a rules-file error
// names the file.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "creds/redact.h"
#include "creds/redact_rules.h"
#include "fuzz/fuzz_common.h"

namespace {
const writ::creds::Redactor* R() {
  static const auto* r =
      writ::creds::Redactor::Create(writ::creds::BuiltinRedactionRules(), std::string(32, 'k'))
          ->release();
  return r;
}
}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  writ::fuzz::QuietLogs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string in(reinterpret_cast<const char*>(data), size);

  std::string s = in;
  const uint32_t marks = R()->RedactText(&s);
  if (s.size() > in.size() + marks * 80) abort();  // a mark is at most 10 + 48 + 1 + 12 + 1 bytes
  std::string again = s;
  if (R()->RedactText(&again) != 0 || again != s) abort();

  std::vector<std::string> argv;
  size_t b = 0;
  for (size_t i = 0; i <= in.size() && argv.size() < 16; ++i) {
    if (i == in.size() || in[i] == '\0') {
      argv.push_back(in.substr(b, i - b));
      b = i + 1;
    }
  }
  (void)R()->RedactArgv(&argv, argv.empty() ? "" : argv[0]);
  std::vector<std::string> twice = argv;
  if (R()->RedactArgv(&twice, twice.empty() ? "" : twice[0]).marks != 0 || twice != argv) abort();

  auto rules =
      writ::creds::ParseRedactionRules(in, "fuzz.yaml", &writ::creds::BuiltinRedactionRules());
  if (!rules.ok()) {
    if (rules.status().message().find("fuzz.yaml") == std::string_view::npos) abort();
  } else if (!writ::creds::Redactor::Create(*rules, "k").ok()) {
    abort();  // a set the parser accepted must build
  }
  return 0;
}
