// The kinds of kernel events writ judges, as an enum for the hot path (the pipeline, the engine).
// Values are the ABI's record kinds (include/writ/abi/events.h, WRIT_EV_*; decoder.cc pins them),
// and the names are what events carry in `kind` (docs/events.md).
#pragma once

#include <cstdint>
#include <string_view>

namespace writ {

enum class EventKind : uint8_t {
  kNone = 0,
  kExec = 1,
  kFork = 2,
  kExit = 3,
  kOpen = 4,
  kConnect = 5,
  kAdopt = 6,  // an exec outside every task that may belong to a `Workloads` entry (not an Event)
  kSelf = 7,   // self-protection: a syscall aimed at writd, BPF, io_uring, ptrace
  kLink = 8,   // a file given another name: rename, hard link, symlink
};
inline constexpr int kEventKinds = 9;  // size of per-kind arrays, indexed by the enum's value

constexpr const char* EventKindName(EventKind k) {
  switch (k) {
    case EventKind::kExec:
      return "exec";
    case EventKind::kFork:
      return "fork";
    case EventKind::kExit:
      return "exit";
    case EventKind::kOpen:
      return "open";
    case EventKind::kConnect:
      return "connect";
    case EventKind::kAdopt:
      return "adopt";
    case EventKind::kSelf:
      return "self";
    case EventKind::kLink:
      return "link";
    case EventKind::kNone:
      break;
  }
  return "unknown";
}

// The kind an event's `kind` string names; kNone for anything else (task_start, action, ...).
constexpr EventKind EventKindFromName(std::string_view name) {
  for (int i = 1; i < kEventKinds; i++) {
    auto k = static_cast<EventKind>(i);
    if (name == EventKindName(k)) return k;
  }
  return EventKind::kNone;
}

}  // namespace writ
