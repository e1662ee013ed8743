// Userspace twin of the BPF path hash (include/writ/abi/events.h): FNV-1a 64 over the leaf-first
// component encoding read backwards, i.e. for each component from the root: a NUL, then the
// component's bytes reversed. "/" hashes to the offset basis.
#pragma once

#include <cstdint>
#include <string_view>

#include "writ/abi/events.h"

namespace writ::bpf {

inline uint64_t PathHash(std::string_view abs_path) {
  uint64_t h = WRIT_FNV_OFFSET;
  auto mix = [&h](unsigned char c) {
    h ^= c;
    h *= WRIT_FNV_PRIME;
  };
  size_t i = 0;
  while (i < abs_path.size()) {
    while (i < abs_path.size() && abs_path[i] == '/') i++;
    if (i >= abs_path.size()) break;
    size_t end = abs_path.find('/', i);
    if (end == std::string_view::npos) end = abs_path.size();
    mix(0);
    for (size_t j = end; j > i; j--) mix(static_cast<unsigned char>(abs_path[j - 1]));
    i = end;
  }
  return h;
}

// Component hash (file_map keys of kind WRIT_PK_LEAF / WRIT_PK_DIR): the hash the kernel restarts
// at each component of the same backwards pass, a NUL then the name's bytes reversed, i.e.
// PathHash("/" + name).
inline uint64_t ComponentHash(std::string_view name) {
  uint64_t h = WRIT_FNV_OFFSET;
  auto mix = [&h](unsigned char c) {
    h ^= c;
    h *= WRIT_FNV_PRIME;
  };
  mix(0);
  for (size_t j = name.size(); j > 0; j--) mix(static_cast<unsigned char>(name[j - 1]));
  return h;
}

// Unix-socket name hash (unix_map keys, bpf/writ_net.bpf.h): FNV-1a 64 over the name as written,
// forward:
// "/run/x.sock", or "@" and an abstract name's bytes. A WRIT_UK_PREFIX entry hashes a directory
// without its trailing '/' ("/run/user" for "/run/user/**").
inline uint64_t UnixNameHash(std::string_view name) {
  uint64_t h = WRIT_FNV_OFFSET;
  for (unsigned char c : name) {
    h ^= c;
    h *= WRIT_FNV_PRIME;
  }
  return h;
}

}  // namespace writ::bpf
