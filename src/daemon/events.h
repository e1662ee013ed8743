// The synthetic events every part of writd builds the same way: the agent identity of a task, its
// task_start, and `action` events.
#pragma once

#include <cstdint>
#include <string>

#include "daemon/seams.h"
#include "identity/task.h"
#include "writ/v1/event.pb.h"

namespace writ::daemon {

// The task's identity on an event: SPIFFE ID, task id, principal, intent, parent and chain.
void FillAgent(const identity::Task& task, v1::Event* ev);

// task_start of a task (agent, cgroup, deadline, params, command); the caller adds the process.
v1::Event TaskStartEvent(EventOutput& out, const identity::Task& task);

// An `action` event: what writd did to `target` (kill, freeze, thaw, revoke, approve, deny), its
// result
// ("ok" or the error) and, with a cause, the latency from the cause's kernel time.
v1::Event ActionEvent(EventOutput& out, const identity::Task& task, const std::string& type,
                      const std::string& result, uint64_t cause_ktime_ns, const std::string& target,
                      const std::string& reason);

}  // namespace writ::daemon
