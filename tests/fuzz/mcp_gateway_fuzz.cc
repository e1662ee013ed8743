// Fuzzes the launcher's MCP gateway (cli/mcp_gateway.h), which reads whatever the MCP client and
// the tool server (the task: the adversary) write: the input is split at '\n' into lines,
// alternately from the client and the server (a leading byte picks who starts), with a fake writd
// that allows, denies or holds by the tool name's first letter. Checked besides crashes, hangs and
// leaks: every line the gateway writes either way is one JSON value (what it forwards was judged
// and re-encoded), nothing it forwards to the server exceeds the line cap, and a server exit
// answers everything.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "cli/mcp_gateway.h"
#include "fuzz/fuzz_common.h"
#include "nlohmann/json.hpp"

namespace {

class Judge : public writ::cli::ToolJudge {
 public:
  writ::v1::ToolVerdict Ask(const writ::v1::ToolCallReport& r) override {
    writ::v1::ToolVerdict v;
    const char c = r.name().empty() ? 'a' : r.name()[0];
    if (r.phase() == "start") {
      v.set_verdict(c == 'd' ? "deny" : c == 'h' ? "needs_approval" : "allow");
      if (c == 'h') v.set_approval_id("a-1");
    } else if (r.phase() == "poll") {
      v.set_verdict((++polls_ & 1) ? "pending" : "allow");
    } else {
      v.set_verdict("allow");
      for (const auto& t : r.tools()) {
        if (t.empty() || t[0] != 'd') v.add_tools(t);
      }
    }
    return v;
  }

 private:
  int polls_ = 0;
};

void CheckLines(std::string& out, size_t cap) {
  size_t start = 0;
  for (size_t nl; (nl = out.find('\n', start)) != std::string::npos; start = nl + 1) {
    const std::string_view line(out.data() + start, nl - start);
    if (line.size() > cap * 2 + 64) abort();
    if (nlohmann::json::parse(line, nullptr, false).is_discarded()) abort();
  }
  out.clear();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  writ::fuzz::QuietLogs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  Judge judge;
  writ::cli::GatewayOptions o;
  o.task_id = "t-fuzz";
  o.max_message = 4096;
  o.max_depth = 16;
  o.max_report_args = 256;
  o.poll_interval = absl::ZeroDuration();
  writ::cli::McpGateway gw(o, judge);
  bool client = data[0] & 1;
  const absl::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
  size_t start = 0;
  while (start <= in.size()) {
    size_t nl = in.find('\n', start);
    if (nl == absl::string_view::npos) nl = in.size();
    const absl::string_view line = in.substr(start, nl - start);
    if (line.size() > o.max_message) {
      client ? gw.OnClientOversize(line.size()) : gw.OnServerOversize(line.size());
    } else {
      client ? gw.OnClientLine(line) : gw.OnServerLine(line);
    }
    gw.Tick(absl::Now());
    CheckLines(gw.to_server(), o.max_message);
    CheckLines(gw.to_client(), o.max_message);
    client = !client;
    start = nl + 1;
  }
  gw.OnServerExit("fuzz");
  if (gw.in_flight() != 0 || gw.held() != 0) abort();
  CheckLines(gw.to_client(), o.max_message);
  return 0;
}
