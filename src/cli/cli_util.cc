#include "cli/cli_util.h"

#include <algorithm>
#include <cstdio>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "api/client.h"

namespace writ::cli {

int Fail(int code, const std::string& msg) {
  fprintf(stderr, "writ: %s\n", msg.c_str());
  return code;
}

Args Parse(int argc, char** argv, int start, const std::vector<std::string>& with_value,
           const std::vector<std::string>& booleans, bool stop_at_positional) {
  Args a;
  for (int i = start; i < argc; i++) {
    std::string s = argv[i];
    if (s == "--") {
      for (int j = i + 1; j < argc; j++) a.rest.push_back(argv[j]);
      break;
    }
    if (absl::StartsWith(s, "--")) {
      std::string name = s.substr(2), value;
      bool has_eq = false;
      if (size_t eq = name.find('='); eq != std::string::npos) {
        value = name.substr(eq + 1);
        name = name.substr(0, eq);
        has_eq = true;
      }
      if (std::find(booleans.begin(), booleans.end(), name) != booleans.end()) {
        a.opts[name].push_back("1");
        continue;
      }
      if (std::find(with_value.begin(), with_value.end(), name) == with_value.end()) {
        a.error = absl::StrCat("unknown flag --", name);
        return a;
      }
      if (!has_eq) {
        if (i + 1 >= argc) {
          a.error = absl::StrCat("--", name, " needs a value");
          return a;
        }
        value = argv[++i];
      }
      a.opts[name].push_back(value);
      continue;
    }
    if (stop_at_positional) {
      for (int j = i; j < argc; j++) a.rest.push_back(argv[j]);
      break;
    }
    a.positional.push_back(s);
  }
  return a;
}

absl::StatusOr<Fd> Dial(const std::string& socket) {
  return writ::api::Connect(writ::api::SocketPath(socket));
}

}  // namespace writ::cli
