// intent::Compile resolves network.connect hosts with getaddrinfo. Fuzzed hostnames must never
// become DNS queries (the host's resolver is not ours to load, and the answers would make runs
// non-reproducible), so the fuzz binaries interpose getaddrinfo: numeric addresses are parsed as
// usual, every name fails with EAI_NONAME. Defining the symbol in the executable wins over libc's
// (and over the sanitizer runtime's weak interceptor).
#include "fuzz/fuzz_common.h"

#include <dlfcn.h>
#include <netdb.h>

#include "spdlog/spdlog.h"

extern "C" int getaddrinfo(const char* node, const char* service, const struct addrinfo* hints,
                           struct addrinfo** res) {
  using Fn = int (*)(const char*, const char*, const struct addrinfo*, struct addrinfo**);
  static Fn real = reinterpret_cast<Fn>(dlsym(RTLD_NEXT, "getaddrinfo"));
  if (real == nullptr) return EAI_FAIL;
  struct addrinfo h {};
  if (hints != nullptr) h = *hints;
  h.ai_flags |= AI_NUMERICHOST;
  return real(node, service, &h, res);
}

namespace writ::fuzz {

void QuietLogs() { spdlog::set_level(spdlog::level::off); }

}  // namespace writ::fuzz
