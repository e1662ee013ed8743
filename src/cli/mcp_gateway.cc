#include "cli/mcp_gateway.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "api/client.h"
#include "util/util.h"

namespace writ::cli {
namespace {

using json = nlohmann::json;

bool ValidId(const json& id) { return id.is_string() || id.is_number_integer() || id.is_number(); }

// The text of a tool result with isError, for the tool_call event (short).
std::string ResultError(const json& result) {
  if (!result.is_object()) return "";
  auto c = result.find("content");
  if (c == result.end() || !c->is_array()) return "";
  for (const json& item : *c) {
    if (item.is_object() && item.value("type", "") == "text" && item.contains("text") &&
        item["text"].is_string()) {
      std::string t = item["text"].get<std::string>();
      return t.size() > 200 ? t.substr(0, 197) + "..." : t;
    }
  }
  return "";
}

}  // namespace

json McpGateway::Parse(absl::string_view line, int max_depth, std::string* why) {
  // Nesting first: the parser recurses, and nothing deeper than max_depth is worth judging.
  int depth = 0;
  bool in_string = false, escape = false;
  for (char ch : line) {
    if (in_string) {
      if (escape) {
        escape = false;
      } else if (ch == '\\') {
        escape = true;
      } else if (ch == '"') {
        in_string = false;
      }
      continue;
    }
    if (ch == '"') {
      in_string = true;
    } else if (ch == '{' || ch == '[') {
      if (++depth > max_depth) {
        *why = "depth";
        return json(json::value_t::discarded);
      }
    } else if (ch == '}' || ch == ']') {
      --depth;
    }
  }
  // Strict: invalid UTF-8 inside strings, trailing bytes and bare values are parse errors.
  json m = json::parse(line.begin(), line.end(), nullptr, /*allow_exceptions=*/false);
  if (m.is_discarded()) *why = "parse";
  return m;
}

json McpGateway::Error(const json& id, int code, const std::string& message) {
  return json{{"jsonrpc", "2.0"}, {"id", id}, {"error", {{"code", code}, {"message", message}}}};
}

void McpGateway::Send(std::string* out, const json& m) {
  out->append(m.dump(-1, ' ', false, json::error_handler_t::replace));
  out->push_back('\n');
}

void McpGateway::OnClientOversize(size_t bytes) {
  counters_.client_messages++;
  counters_.oversize++;
  // Its id is in the bytes that were not kept: the protocol's answer is an error with a null id.
  Send(&to_client_, Error(nullptr, -32600,
                          absl::StrCat("writ: message of ", bytes, " bytes or more is larger than ",
                                       opts_.max_message, " (not forwarded)")));
}

void McpGateway::OnServerOversize(size_t) {
  counters_.server_messages++;
  counters_.server_dropped++;
}

void McpGateway::OnClientLine(absl::string_view line) {
  if (line.find_first_not_of(" \t\r") == absl::string_view::npos) return;  // blank line
  counters_.client_messages++;
  std::string why;
  json m = Parse(line, opts_.max_depth, &why);
  if (m.is_discarded()) {
    if (why == "depth") {
      counters_.too_deep++;
      Send(&to_client_, Error(nullptr, -32600,
                              absl::StrCat("writ: nested deeper than ", opts_.max_depth,
                                           " levels (not forwarded)")));
    } else {
      counters_.parse_errors++;
      Send(&to_client_, Error(nullptr, -32700, "Parse error (writ: not forwarded)"));
    }
    return;
  }
  if (m.is_array()) {
    if (m.empty()) {
      counters_.invalid++;
      Send(&to_client_, Error(nullptr, -32600, "Invalid Request: empty batch"));
      return;
    }
    std::vector<json> answers(m.size());
    std::vector<Fate> fates(m.size());
    bool all = true;
    for (size_t i = 0; i < m.size(); ++i) {
      fates[i] = ClientMessage(m[i], "", /*in_batch=*/true, &answers[i]);
      all = all && fates[i] == Fate::kForward;
    }
    if (all) {
      Send(&to_server_, m);
      return;
    }
    // Not forwarded: the requests it registered are answered instead.
    json out = json::array();
    for (size_t i = 0; i < m.size(); ++i) {
      if (fates[i] != Fate::kForward) {
        if (!answers[i].is_null()) out.push_back(answers[i]);
        continue;
      }
      if (!m[i].contains("id") || !m[i].contains("method")) continue;
      const std::string key = Key(m[i]["id"]);
      auto it = pending_.find(key);
      if (it != pending_.end()) {
        if (it->second.method == "tools/call")
          EndCall(key, it->second, "cancelled", "batch refused");
        pending_.erase(it);
      }
      out.push_back(Error(m[i]["id"], kErrDenied,
                          "writ: not forwarded: another call in its batch was refused"));
    }
    if (!out.empty()) Send(&to_client_, out);
    return;
  }
  json answer;
  switch (ClientMessage(m, line, /*in_batch=*/false, &answer)) {
    case Fate::kForward:
      Send(&to_server_, m);
      break;
    case Fate::kAnswered:
      if (!answer.is_null()) Send(&to_client_, answer);
      break;
    case Fate::kHeld:
      break;
  }
}

McpGateway::Fate McpGateway::ClientMessage(const json& m, absl::string_view, bool in_batch,
                                           json* answer) {
  auto invalid = [&](const json& id, const std::string& why) {
    counters_.invalid++;
    *answer = Error(id, -32600, absl::StrCat("Invalid Request: ", why, " (writ: not forwarded)"));
    return Fate::kAnswered;
  };
  if (!m.is_object()) return invalid(nullptr, "not an object");
  const json id = m.contains("id") && ValidId(m["id"]) ? m["id"] : json(nullptr);
  if (!m.contains("jsonrpc") || m["jsonrpc"] != "2.0") return invalid(id, "jsonrpc is not \"2.0\"");
  if (m.contains("id") && !ValidId(m["id"]))
    return invalid(nullptr, "id is not a string or number");
  if (!m.contains("method")) {
    // The client's answer to a request of the server (sampling, roots, elicitation, ping).
    if (!m.contains("id") || (!m.contains("result") && !m.contains("error"))) {
      return invalid(id, "neither a request, a notification nor a response");
    }
    return Fate::kForward;
  }
  if (!m["method"].is_string()) return invalid(id, "method is not a string");
  const std::string method = m["method"].get<std::string>();
  if (!m.contains("id")) {
    // A notification. Cancelling a held call ends it here: the server never saw it.
    if (method == "notifications/cancelled" && m.contains("params") && m["params"].is_object() &&
        m["params"].contains("requestId")) {
      const std::string key = Key(m["params"]["requestId"]);
      for (auto h = held_.begin(); h != held_.end(); ++h) {
        if (h->key != key) continue;
        held_.erase(h);
        *answer = nullptr;
        return Fate::kAnswered;
      }
      auto it = pending_.find(key);
      if (it != pending_.end() && it->second.method == "tools/call") {
        EndCall(key, it->second, "cancelled", "cancelled by the client");
        pending_.erase(it);
      }
    }
    return Fate::kForward;
  }
  const std::string key = Key(id);
  const bool dup =
      pending_.count(key) > 0 ||
      std::any_of(held_.begin(), held_.end(), [&](const Held& h) { return h.key == key; });
  if (dup) {
    counters_.duplicate_ids++;
    *answer = Error(id, -32600,
                    absl::StrCat("Invalid Request: id ", key,
                                 " is already in flight (writ: not "
                                 "forwarded)"));
    return Fate::kAnswered;
  }
  if (method == "tools/call") {
    Fate fate = Fate::kForward;
    StartCall(m, key, &fate, answer, "", in_batch);
    return fate;
  }
  pending_[key] = Pending{method, "", absl::Now()};
  return Fate::kForward;
}

void McpGateway::StartCall(const json& m, const std::string& key, Fate* fate, json* answer,
                           absl::string_view, bool in_batch) {
  const json& id = m["id"];
  const json* params = m.contains("params") && m["params"].is_object() ? &m["params"] : nullptr;
  if (!params || !params->contains("name") || !(*params)["name"].is_string() ||
      (params->contains("arguments") && !(*params)["arguments"].is_object())) {
    counters_.invalid++;
    *answer = Error(id, -32602,
                    "Invalid params: tools/call needs params.name (a string) and params.arguments "
                    "(an object, optional) (writ: not forwarded)");
    *fate = Fate::kAnswered;
    return;
  }
  const std::string name = (*params)["name"].get<std::string>();
  const std::string args =
      params->contains("arguments") ? (*params)["arguments"].dump() : std::string("{}");
  v1::ToolCallReport r;
  r.set_task_id(opts_.task_id);
  r.set_phase("start");
  r.set_call_id(key);
  r.set_name(name);
  r.set_arguments_bytes(args.size());
  r.set_arguments_sha256(Sha256Hex(args));
  if (args.size() > opts_.max_report_args) {
    r.set_arguments_truncated(true);
  } else {
    r.set_arguments(args);
  }
  v1::ToolVerdict v = judge_.Ask(r);
  if (v.verdict() == "allow") {
    counters_.calls++;
    pending_[key] = Pending{"tools/call", name, absl::Now()};
    *fate = Fate::kForward;
    return;
  }
  if (v.verdict() == "needs_approval" && !in_batch && !v.approval_id().empty()) {
    counters_.held++;
    held_.push_back(Held{v.approval_id(), m.dump(), id, key, absl::Now() + opts_.poll_interval});
    fprintf(stderr, "writ: tool call %s %s is held for approval %s (writ approve %s)\n",
            key.c_str(), name.c_str(), v.approval_id().c_str(), v.approval_id().c_str());
    *fate = Fate::kHeld;
    return;
  }
  counters_.denied++;
  std::string reason = v.reason().empty() ? v.verdict() : v.reason();
  if (v.verdict() == "needs_approval") reason += " (a call held for approval cannot be batched)";
  json err = Error(id, kErrDenied, "writ: denied: " + reason);
  if (!v.rule().empty()) err["error"]["data"] = {{"rule", v.rule()}};
  *answer = err;
  *fate = Fate::kAnswered;
}

void McpGateway::EndCall(const std::string& key, const Pending& p, const char* status,
                         const std::string& error) {
  v1::ToolCallReport r;
  r.set_task_id(opts_.task_id);
  r.set_phase("end");
  r.set_call_id(key);
  r.set_name(p.name);
  r.set_status(status);
  r.set_error(error);
  r.set_duration_us(static_cast<uint64_t>(absl::ToInt64Microseconds(absl::Now() - p.start)));
  (void)judge_.Ask(r);
}

void McpGateway::OnServerLine(absl::string_view line) {
  if (line.find_first_not_of(" \t\r") == absl::string_view::npos) return;
  counters_.server_messages++;
  std::string why;
  json m = Parse(line, opts_.max_depth, &why);
  if (m.is_discarded()) {
    counters_.server_dropped++;
    return;
  }
  bool changed = false;
  if (m.is_array()) {
    json kept = json::array();
    for (json& e : m) {
      if (ServerMessage(e, &changed)) kept.push_back(std::move(e));
    }
    if (!kept.empty()) Send(&to_client_, kept);
    return;
  }
  if (ServerMessage(m, &changed)) Send(&to_client_, m);
}

bool McpGateway::ServerMessage(json& m, bool* changed) {
  if (!m.is_object() || !m.contains("jsonrpc") || m["jsonrpc"] != "2.0") {
    counters_.server_dropped++;
    return false;
  }
  if (m.contains("method")) return true;  // the server's request or notification
  if (!m.contains("id") || (!m.contains("result") && !m.contains("error"))) {
    counters_.server_dropped++;
    return false;
  }
  const std::string key = Key(m["id"]);
  auto it = pending_.find(key);
  if (it == pending_.end()) {
    counters_.server_dropped++;  // an answer to nothing the client asked (or asked and cancelled)
    return false;
  }
  Pending p = std::move(it->second);
  pending_.erase(it);
  if (p.method == "tools/call") {
    if (m.contains("error")) {
      const json& e = m["error"];
      EndCall(key, p, "error",
              e.is_object() && e.contains("message") && e["message"].is_string()
                  ? e["message"].get<std::string>()
                  : std::string("error"));
    } else {
      const json& res = m["result"];
      const bool is_error = res.is_object() && res.value("isError", false);
      EndCall(key, p, is_error ? "error" : "ok", is_error ? ResultError(res) : "");
    }
  } else if (p.method == "tools/list" && m.contains("result") && m["result"].is_object() &&
             m["result"].contains("tools") && m["result"]["tools"].is_array()) {
    json& tools = m["result"]["tools"];
    v1::ToolCallReport r;
    r.set_task_id(opts_.task_id);
    r.set_phase("list");
    for (const json& t : tools) {
      if (t.is_object() && t.contains("name") && t["name"].is_string()) {
        r.add_tools(t["name"].get<std::string>());
      }
    }
    v1::ToolVerdict v = judge_.Ask(r);
    // Shown: what writd listed back; an error shows nothing (the model never sees what was not
    // judged).
    json out = json::array();
    for (json& t : tools) {
      if (!t.is_object() || !t.contains("name") || !t["name"].is_string()) continue;
      const std::string name = t["name"].get<std::string>();
      if (std::find(v.tools().begin(), v.tools().end(), name) != v.tools().end()) {
        out.push_back(std::move(t));
      }
    }
    if (out.size() != tools.size()) {
      counters_.lists_filtered++;
      *changed = true;
    }
    tools = std::move(out);
  }
  return true;
}

void McpGateway::Tick(absl::Time now) {
  for (auto h = held_.begin(); h != held_.end();) {
    if (h->next_poll > now) {
      ++h;
      continue;
    }
    v1::ToolCallReport r;
    r.set_task_id(opts_.task_id);
    r.set_phase("poll");
    r.set_call_id(h->key);
    r.set_approval_id(h->approval_id);
    v1::ToolVerdict v = judge_.Ask(r);
    if (v.verdict() == "pending") {
      h->next_poll = now + opts_.poll_interval;
      ++h;
      continue;
    }
    json m = json::parse(h->line, nullptr, false);
    if (v.verdict() == "allow" && !m.is_discarded()) {
      counters_.calls++;
      pending_[h->key] = Pending{"tools/call", m["params"]["name"].get<std::string>(), absl::Now()};
      Send(&to_server_, m);
    } else {
      counters_.denied++;
      json err = Error(h->id, kErrDenied, "writ: denied: " + v.reason());
      if (!v.rule().empty()) err["error"]["data"] = {{"rule", v.rule()}};
      Send(&to_client_, err);
    }
    h = held_.erase(h);
  }
}

absl::Time McpGateway::NextTick() const {
  absl::Time t = absl::InfiniteFuture();
  for (const Held& h : held_) t = std::min(t, h.next_poll);
  return t;
}

void McpGateway::OnServerExit(const std::string& why) {
  for (auto& [key, p] : pending_) {
    if (p.method == "tools/call") EndCall(key, p, "server_exited", why);
    Send(&to_client_, Error(json::parse(key, nullptr, false), kErrServerExited,
                            "writ: the tool server ended before answering: " + why));
  }
  pending_.clear();
  for (const Held& h : held_) {
    Send(&to_client_, Error(h.id, kErrServerExited,
                            "writ: the tool server ended while the call was held: " + why));
  }
  held_.clear();
}

v1::ToolVerdict ControlJudge::Ask(const v1::ToolCallReport& r) {
  v1::Request req;
  *req.mutable_tool_call() = r;
  auto resp = api::Call(fd_, req);
  if (!resp.ok()) {
    v1::ToolVerdict v;
    v.set_verdict("deny");
    v.set_reason(absl::StrCat("writd could not judge the call: ", resp.status().message()));
    return v;
  }
  return resp->tool();
}

namespace {

// Line splitting with a bound: bytes of a line past `max` are discarded up to its '\n' and the line
// is reported as oversize (once, with how many bytes it had).
class LineBuffer {
 public:
  explicit LineBuffer(size_t max) : max_(max) {}
  template <typename OnLine, typename OnOversize>
  void Feed(const char* p, size_t n, OnLine on_line, OnOversize on_oversize) {
    while (n > 0) {
      const char* nl = static_cast<const char*>(memchr(p, '\n', n));
      const size_t take = nl ? static_cast<size_t>(nl - p) : n;
      if (discarding_) {
        discarded_ += take;
      } else if (buf_.size() + take > max_) {
        discarding_ = true;
        discarded_ = buf_.size() + take;
        buf_.clear();
        buf_.shrink_to_fit();
      } else {
        buf_.append(p, take);
      }
      if (!nl) return;
      if (discarding_) {
        on_oversize(discarded_);
        discarding_ = false;
      } else {
        on_line(absl::string_view(buf_));
        buf_.clear();
      }
      p += take + 1;
      n -= take + 1;
    }
  }
  // At EOF: a half message (no '\n') is not a message.
  bool partial() const { return discarding_ || !buf_.empty(); }

 private:
  size_t max_;
  std::string buf_;
  bool discarding_ = false;
  size_t discarded_ = 0;
};

void SetNonBlocking(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

// Writes what it can; false when the reader is gone.
bool Flush(int fd, std::string* out, size_t* off) {
  while (*off < out->size()) {
    ssize_t w = write(fd, out->data() + *off, out->size() - *off);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (w <= 0) return false;
    *off += static_cast<size_t>(w);
  }
  if (*off == out->size() || *off > (1 << 20)) {
    out->erase(0, *off);
    *off = 0;
  }
  return true;
}

}  // namespace

int RunMcpGateway(McpGateway& gw, int server_in, int server_out, pid_t server_pid) {
  const size_t max = gw.opts_max_message();
  SetNonBlocking(STDIN_FILENO);
  SetNonBlocking(STDOUT_FILENO);
  SetNonBlocking(server_in);
  SetNonBlocking(server_out);
  LineBuffer from_client(max), from_server(max);
  size_t off_server = 0, off_client = 0;
  bool client_open = true, server_out_open = true, client_writable = true;
  int server_stdin = server_in;
  std::vector<char> buf(1 << 16);
  auto on_client = [&](absl::string_view l) { gw.OnClientLine(l); };
  auto on_client_big = [&](size_t n) { gw.OnClientOversize(n); };
  auto on_server = [&](absl::string_view l) { gw.OnServerLine(l); };
  auto on_server_big = [&](size_t n) { gw.OnServerOversize(n); };
  while (server_out_open || (client_writable && !gw.to_client().empty())) {
    // Back-pressure: a side whose output is backed up is not read.
    const bool read_client = client_open && gw.to_server().size() - off_server < 2 * max;
    const bool read_server = server_out_open && gw.to_client().size() - off_client < 2 * max;
    pollfd fds[4];
    int n = 0, i_cin = -1, i_sout = -1, i_sin = -1, i_cout = -1;
    if (read_client) fds[i_cin = n++] = {STDIN_FILENO, POLLIN, 0};
    if (read_server) fds[i_sout = n++] = {server_out, POLLIN, 0};
    if (server_stdin >= 0 && off_server < gw.to_server().size()) {
      fds[i_sin = n++] = {server_stdin, POLLOUT, 0};
    }
    if (client_writable && off_client < gw.to_client().size()) {
      fds[i_cout = n++] = {STDOUT_FILENO, POLLOUT, 0};
    }
    int timeout = -1;
    if (absl::Time t = gw.NextTick(); t != absl::InfiniteFuture()) {
      timeout =
          static_cast<int>(std::max<int64_t>(0, absl::ToInt64Milliseconds(t - absl::Now()) + 1));
    }
    if (n == 0 && timeout < 0) break;  // nothing can happen any more
    int r = poll(fds, n, timeout);
    if (r < 0 && errno != EINTR) break;
    gw.Tick(absl::Now());
    if (r <= 0) continue;
    if (i_cin >= 0 && fds[i_cin].revents) {
      ssize_t got = read(STDIN_FILENO, buf.data(), buf.size());
      if (got > 0) {
        from_client.Feed(buf.data(), static_cast<size_t>(got), on_client, on_client_big);
      } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
        if (from_client.partial()) gw.OnClientLine("\x01");  // a half message: a parse error
        client_open = false;
      }
    }
    if (i_sout >= 0 && fds[i_sout].revents) {
      ssize_t got = read(server_out, buf.data(), buf.size());
      if (got > 0) {
        from_server.Feed(buf.data(), static_cast<size_t>(got), on_server, on_server_big);
      } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
        server_out_open = false;
        gw.OnServerExit("it closed its stdout");
      }
    }
    if (i_sin >= 0 && fds[i_sin].revents && !Flush(server_stdin, &gw.to_server(), &off_server)) {
      close(server_stdin);  // the server is gone; what it did not read is lost with it
      server_stdin = -1;
      gw.to_server().clear();
      off_server = 0;
    }
    if (i_cout >= 0 && fds[i_cout].revents && !Flush(STDOUT_FILENO, &gw.to_client(), &off_client)) {
      client_writable = false;  // the client is gone: the server still gets its stdin closed
      client_open = false;
    }
    if (!client_writable) {
      gw.to_client().clear();
      off_client = 0;
    }
    if (server_stdin < 0) {
      gw.to_server().clear();
      off_server = 0;
    }
    // The client is done and everything it sent reached the server: the server sees EOF.
    if (!client_open && server_stdin >= 0 && off_server >= gw.to_server().size() &&
        gw.held() == 0) {
      close(server_stdin);
      server_stdin = -1;
    }
  }
  if (server_stdin >= 0) close(server_stdin);
  close(server_out);
  int status = 0;
  while (waitpid(server_pid, &status, 0) < 0 && errno == EINTR) {
  }
  const GatewayCounters& c = gw.counters();
  if (c.parse_errors + c.oversize + c.invalid + c.too_deep + c.duplicate_ids + c.server_dropped +
          c.denied >
      0) {
    fprintf(stderr,
            "writ: mcp gateway: %lu calls, %lu denied, %lu held; refused from the client: %lu "
            "parse errors, %lu oversize, %lu invalid, %lu too deep, %lu duplicate ids; %lu server "
            "messages dropped\n",
            (unsigned long)c.calls, (unsigned long)c.denied, (unsigned long)c.held,
            (unsigned long)c.parse_errors, (unsigned long)c.oversize, (unsigned long)c.invalid,
            (unsigned long)c.too_deep, (unsigned long)c.duplicate_ids,
            (unsigned long)c.server_dropped);
  }
  return status;
}

}  // namespace writ::cli
