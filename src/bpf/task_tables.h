// A task's kernel side: its intent's kernel tables (intent::KernelTables) written into the per-slot
// decision maps, and its task_map entry with the WRIT_TASK_* flags that say what the BPF programs
// decide in the kernel for it. Next to the loader because it is the loader's maps it fills; the
// daemon calls ArmTask when a task is installed or restored.
#pragma once

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

}  // namespace writ::bpf
