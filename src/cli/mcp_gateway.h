// The launcher's MCP gateway (`writ run --mcp`): the MCP client speaks to `writ run` on its stdio
// as it would to the server; `writ run` relays line-delimited JSON-RPC 2.0 both ways to the server
// it runs as the task, and judges what passes (docs/architecture.md, "MCP gateway").
//
//   client -> server   every line is parsed (bounded size, bounded nesting, UTF-8) before it is
//                      forwarded; what cannot be judged is answered with a JSON-RPC error and
//                      counted, never forwarded. tools/call is judged by writd (allow, deny, held
//                      for an approval); an id reused while in flight is refused;
//                      notifications/cancelled of a held call ends it here.
//   server -> client   answers are matched to the client's requests (an answer to no request is
//                      dropped); a tools/call answer ends the call; a tools/list answer loses the
//                      tools the intent denies. Server requests and notifications pass unchanged.
//   batches            judged element by element; a batch with a call that is not allowed at once
//   is
//                      answered whole with errors and not forwarded.
//
// McpGateway is the state machine, without I/O (unit-tested with a fake judge); RunMcpGateway runs
// it on the launcher's stdio and the server's pipes.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "writ/v1/api.pb.h"

namespace writ::cli {

// What the gateway asks writd (over the launcher's control connection, api.proto ToolCallReport).
class ToolJudge {
 public:
  virtual ~ToolJudge() = default;
  // An error: writd could not be asked (the call is refused: nothing unjudged passes).
  virtual v1::ToolVerdict Ask(const v1::ToolCallReport& r) = 0;
};

struct GatewayOptions {
  size_t max_message = 4 << 20;        // bytes of one line, either way
  int max_depth = 64;                  // JSON nesting
  size_t max_report_args = 256 << 10;  // arguments larger than this reach writd as a digest only
  absl::Duration poll_interval = absl::Milliseconds(200);  // held calls
  std::string task_id;
};

// JSON-RPC error codes the gateway answers with (besides the standard -32700, -32600, -32602).
inline constexpr int kErrDenied = -32001;        // writ denied the tool call
inline constexpr int kErrServerExited = -32002;  // the server ended before answering

struct GatewayCounters {
  uint64_t client_messages = 0, server_messages = 0;
  uint64_t parse_errors = 0, oversize = 0, invalid = 0, too_deep = 0, duplicate_ids = 0;
  uint64_t server_dropped = 0;  // unparseable, oversize or unsolicited server messages
  uint64_t calls = 0, denied = 0, held = 0, lists_filtered = 0;
};

class McpGateway {
 public:
  McpGateway(GatewayOptions opts, ToolJudge& judge) : opts_(std::move(opts)), judge_(judge) {}

  // One complete line (without its '\n') from the client / the server. Output is appended to
  // to_server() / to_client(), each message one line.
  void OnClientLine(absl::string_view line);
  void OnServerLine(absl::string_view line);
  // A line longer than max_message was cut off (its bytes discarded up to the next '\n').
  void OnClientOversize(size_t bytes);
  void OnServerOversize(size_t bytes);
  // Held calls: asks writd about the decisions due by `now`.
  void Tick(absl::Time now);
  absl::Time NextTick() const;
  // The server's stdout closed: every request still unanswered gets an error.
  void OnServerExit(const std::string& why);

  std::string& to_server() { return to_server_; }
  std::string& to_client() { return to_client_; }
  const GatewayCounters& counters() const { return counters_; }
  size_t in_flight() const { return pending_.size(); }
  size_t held() const { return held_.size(); }
  size_t opts_max_message() const { return opts_.max_message; }

  // Parses one message under the gateway's bounds: nullopt-like (discarded json) with *why set
  // ("parse", "depth") when it cannot be judged.
  static nlohmann::json Parse(absl::string_view line, int max_depth, std::string* why);

 private:
  struct Pending {
    std::string method;
    std::string name;  // tools/call
    absl::Time start;
  };
  struct Held {
    std::string approval_id;
    std::string line;  // forwarded as it came once approved
    nlohmann::json id;
    std::string key;
    absl::Time next_poll;
  };
  // One client message (a batch element or a whole message). Returns the error answer when it is
  // not forwarded (null json when it is, or when it needs no answer).
  enum class Fate { kForward, kAnswered, kHeld };
  Fate ClientMessage(const nlohmann::json& m, absl::string_view line, bool in_batch,
                     nlohmann::json* answer);
  // One server message; false when it is dropped.
  bool ServerMessage(nlohmann::json& m, bool* changed);
  void StartCall(const nlohmann::json& m, const std::string& key, Fate* fate,
                 nlohmann::json* answer, absl::string_view line, bool in_batch);
  void EndCall(const std::string& key, const Pending& p, const char* status,
               const std::string& error);
  void Send(std::string* out, const nlohmann::json& m);
  static nlohmann::json Error(const nlohmann::json& id, int code, const std::string& message);
  static std::string Key(const nlohmann::json& id) { return id.dump(); }

  GatewayOptions opts_;
  ToolJudge& judge_;
  GatewayCounters counters_;
  std::string to_server_, to_client_;
  std::map<std::string, Pending> pending_;  // client requests in flight, by id (JSON text)
  std::vector<Held> held_;
};

// Runs the gateway until the server's stdout closes and the server exits: the client on fds 0/1,
// the server on `server_in` (its stdin) and `server_out` (its stdout), `server_pid` its pid.
// Returns the server's wait status. Prints the counters on stderr when anything was refused.
int RunMcpGateway(McpGateway& gw, int server_in, int server_out, pid_t server_pid);

// The judge of a real launcher: ToolCallReports over the control connection `fd`.
class ControlJudge : public ToolJudge {
 public:
  explicit ControlJudge(int fd) : fd_(fd) {}
  v1::ToolVerdict Ask(const v1::ToolCallReport& r) override;

 private:
  int fd_;
};

}  // namespace writ::cli
