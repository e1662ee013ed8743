// Path helpers shared by the privileged tests.
#pragma once

#include <climits>
#include <cstdlib>
#include <string>

namespace writ::testlib {

// The canonical path (symlinks resolved: /bin -> /usr/bin on merged-/usr hosts), or `p` itself when
// it cannot be resolved. The kernel reports resolved paths, so expectations are written with this.
inline std::string RealPath(const std::string& p) {
  char buf[PATH_MAX];
  return realpath(p.c_str(), buf) ? std::string(buf) : p;
}

}  // namespace writ::testlib
