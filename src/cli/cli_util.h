// Helpers shared by the writ CLI's commands (src/cli/main.cc, run.cc): the option scanner, error
// exit, and dialing writd.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "util/fd.h"

namespace writ::cli {

inline constexpr int kExitUsage = 2;

// Prints "writ: MSG" on stderr and returns `code`.
int Fail(int code, const std::string& msg);

// Minimal option scanner: --flag VALUE, --flag=VALUE, boolean --flag; stops at "--".
struct Args {
  std::map<std::string, std::vector<std::string>> opts;
  std::vector<std::string> positional;
  std::vector<std::string> rest;  // after "--"
  std::string error;

  std::string Get(const std::string& k, const std::string& def = "") const {
    auto it = opts.find(k);
    return it == opts.end() || it->second.empty() ? def : it->second.back();
  }
  bool Has(const std::string& k) const { return opts.count(k) > 0; }
};

Args Parse(int argc, char** argv, int start, const std::vector<std::string>& with_value,
           const std::vector<std::string>& booleans, bool stop_at_positional = false);

// The control socket: --socket, else $WRIT_SOCKET, else /run/writ/writd.sock.
absl::StatusOr<Fd> Dial(const std::string& socket);

}  // namespace writ::cli
