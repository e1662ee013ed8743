// Userspace twin of the BPF path hash (include/writ/abi/events.h): FNV-1a 64 over the leaf-first
// component encoding read backwards, i.e. for each component from the root: a NUL, then the component's
// bytes reversed. "/" hashes to the offset basis.
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

}  // namespace writ::bpf
