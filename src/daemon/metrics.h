// What `writ status` and `/metrics` (Prometheus text format) show: read-only views over every part
// of writd, from whatever thread asks. Enforcement rungs are derived from hooks by identity
// (HookId).
#pragma once

#include <string>
#include <vector>

#include "bpf/loader.h"
#include "writ/v1/api.pb.h"

namespace writ::api {
class Server;
}
namespace writ::creds {
class CredentialService;
class Redactor;
}  // namespace writ::creds
namespace writ::identity {
class TaskRegistry;
class ProcessTable;
}  // namespace writ::identity

namespace writ::fleet {
class Link;
}  // namespace writ::fleet

namespace writ::daemon {

class Adoption;
class ControlService;
class Approvals;
class Output;
class Pipeline;
class DnsEgress;
class Console;
class PolicyStore;
class PolicyBundles;
class TaskLifecycle;
class ToolCalls;

struct MetricsSources {
  const char* version = "";
  std::string mode;
  const bpf::Loader* loader = nullptr;
  const Pipeline* pipeline = nullptr;
  const Output* output = nullptr;
  const TaskLifecycle* lifecycle = nullptr;
  const identity::TaskRegistry* registry = nullptr;
  const identity::ProcessTable* procs = nullptr;
  const Approvals* approvals = nullptr;
  const Adoption* adoption = nullptr;
  const PolicyStore* policies = nullptr;
  const PolicyBundles* bundles = nullptr;
  creds::CredentialService* creds = nullptr;  // null: no credential service
  const creds::Redactor* redactor = nullptr;
  const ControlService* control = nullptr;
  const api::Server* server = nullptr;
  const ToolCalls* tool_calls = nullptr;  // MCP gateway reports
  DnsEgress* dns = nullptr;               // null: no DNS stub
  const Console* console = nullptr;       // null: no approvals console
  const fleet::Link* fleet = nullptr;     // null: no fleet: section
};

void FillStatus(const MetricsSources& m, v1::StatusResponse* s);
std::string RenderMetrics(const MetricsSources& m);

}  // namespace writ::daemon
