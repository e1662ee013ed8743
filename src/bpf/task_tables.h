// A task's kernel side: its intent's kernel tables (intent::KernelTables) written into the per-slot
// decision maps, and its task_map entry with the WRIT_TASK_* flags that say what the BPF programs
// decide in the kernel for it. Next to the loader because it is the loader's maps it fills; the
// daemon calls ArmTask when a task is installed or restored.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "bpf/loader.h"
#include "identity/task.h"
#include "intent/intent.h"
#include "writ/abi/events.h"

namespace writ::bpf {

// The task_map value of `task` (pure: unit-tested). `kt` is its intent's kernel tables, null when
// the task has no intent or is in record mode.
writ_task_info TaskInfoFor(const identity::Task& task, const intent::KernelTables* kt);

// Writes the task's tables, then its task_map entry (idempotent: a restart re-arms pinned maps).
absl::Status ArmTask(Loader& loader, const identity::Task& task);

// A dynamic loader on this host (ld-linux-x86-64.so.2, ld-musl-*.so.1, ...): its real path and
// identity in the kernel's encoding (major << 20 | minor, inode), what Loader::SetDynamicLoaders
// takes.
struct DynamicLoader {
  std::string path;
  uint32_t dev = 0;
  uint64_t ino = 0;
};
// The loaders under `root` ("" = this host: the usual directories, and the interpreter of writd's
// own binary). Each file once, whatever names reach it.
std::vector<DynamicLoader> HostDynamicLoaders(const std::string& root = "");
// PT_INTERP of an ELF file, "" when it has none or is not a 64-bit ELF.
std::string ElfInterpreter(const std::string& path);

}  // namespace writ::bpf
