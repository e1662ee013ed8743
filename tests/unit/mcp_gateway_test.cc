// The MCP gateway's state machine (cli/mcp_gateway.h) with a fake writd: framing bounds, JSON-RPC
// validation, what is forwarded and what is answered, tools/call judging, held calls, tools/list
// filtering, batches, cancellation, a server that ends mid-call. The real relay with real servers
// is tests/e2e/agents/mcp_gateway_e2e.mjs.
#include "cli/mcp_gateway.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace writ::cli {
namespace {

using json = nlohmann::json;

class FakeJudge : public ToolJudge {
 public:
  v1::ToolVerdict Ask(const v1::ToolCallReport& r) override {
    reports.push_back(r);
    v1::ToolVerdict v;
    if (r.phase() == "start") {
      if (r.name() == "denied") {
        v.set_verdict("deny");
        v.set_reason("tool denied is denied");
        v.set_rule("i/tools.deny[0]");
      } else if (r.name() == "held") {
        v.set_verdict("needs_approval");
        v.set_approval_id("a-1");
      } else {
        v.set_verdict("allow");
      }
    } else if (r.phase() == "poll") {
      v.set_verdict(decision);
      v.set_reason("denied by alice");
    } else if (r.phase() == "list") {
      v.set_verdict("allow");
      for (const auto& t : r.tools()) {
        if (t != "denied") v.add_tools(t);
      }
    } else {
      v.set_verdict("allow");
    }
    return v;
  }
  std::vector<v1::ToolCallReport> reports;
  std::string decision = "pending";
};

class GatewayTest : public ::testing::Test {
 protected:
  GatewayTest() : gw_(Opts(), judge_) {}
  static GatewayOptions Opts() {
    GatewayOptions o;
    o.task_id = "t-1";
    o.max_message = 1024;
    o.max_depth = 8;
    o.max_report_args = 64;
    o.poll_interval = absl::ZeroDuration();
    return o;
  }
  // Lines written to one side since the last call, parsed.
  static std::vector<json> Take(std::string& out) {
    std::vector<json> v;
    size_t start = 0;
    for (size_t nl; (nl = out.find('\n', start)) != std::string::npos; start = nl + 1) {
      v.push_back(json::parse(out.substr(start, nl - start)));
    }
    out.clear();
    return v;
  }
  std::vector<json> ToServer() { return Take(gw_.to_server()); }
  std::vector<json> ToClient() { return Take(gw_.to_client()); }
  static std::string Call(int id, const std::string& name, const json& args = json::object()) {
    return json{{"jsonrpc", "2.0"},
                {"id", id},
                {"method", "tools/call"},
                {"params", {{"name", name}, {"arguments", args}}}}
        .dump();
  }

  FakeJudge judge_;
  McpGateway gw_;
};

TEST_F(GatewayTest, PassesRequestsNotificationsAndServerMessagesThrough) {
  gw_.OnClientLine(R"({"jsonrpc":"2.0","id":1,"method":"initialize","params":{}})");
  gw_.OnClientLine(R"({"jsonrpc":"2.0","method":"notifications/initialized"})");
  auto s = ToServer();
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0]["method"], "initialize");
  EXPECT_EQ(s[1]["method"], "notifications/initialized");
  gw_.OnServerLine(R"({"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-06-18"}})");
  gw_.OnServerLine(R"({"jsonrpc":"2.0","method":"notifications/message","params":{}})");
  gw_.OnServerLine(R"({"jsonrpc":"2.0","id":"s1","method":"roots/list"})");
  auto c = ToClient();
  ASSERT_EQ(c.size(), 3u);
  EXPECT_EQ(c[0]["id"], 1);
  // The client's answer to the server's request goes back unchanged.
  gw_.OnClientLine(R"({"jsonrpc":"2.0","id":"s1","result":{"roots":[]}})");
  EXPECT_EQ(ToServer().size(), 1u);
  EXPECT_TRUE(judge_.reports.empty());  // nothing about tools: writd is not asked
}

TEST_F(GatewayTest, AnswersWhatItCannotJudgeAndForwardsNothing) {
  gw_.OnClientLine("not json");
  gw_.OnClientLine("{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"ping\",\"params\":\"\xff\xfe\"}");
  gw_.OnClientLine(R"({"jsonrpc":"2.0","id":3,"method":"ping","params":[[[[[[[[[[1]]]]]]]]]]})");
  gw_.OnClientOversize(5000);
  gw_.OnClientLine(R"({"jsonrpc":"1.0","id":4,"method":"ping"})");
  gw_.OnClientLine(R"({"jsonrpc":"2.0","id":{"a":1},"method":"ping"})");
  gw_.OnClientLine(R"({"jsonrpc":"2.0","id":5,"method":7})");
  gw_.OnClientLine(R"([])");
  gw_.OnClientLine(R"(42)");
  gw_.OnClientLine("   ");  // a blank line is not a message
  EXPECT_TRUE(ToServer().empty());
  auto c = ToClient();
  ASSERT_EQ(c.size(), 9u);
  EXPECT_EQ(c[0]["error"]["code"], -32700);
  EXPECT_EQ(c[1]["error"]["code"], -32700);  // invalid UTF-8
  EXPECT_EQ(c[2]["error"]["code"], -32600);  // too deep
  EXPECT_EQ(c[3]["error"]["code"], -32600);  // oversize
  EXPECT_TRUE(c[3]["id"].is_null());
  EXPECT_EQ(c[4]["id"], 4);
  EXPECT_EQ(c[6]["id"], 5);
  const auto& n = gw_.counters();
  EXPECT_EQ(n.parse_errors, 2u);
  EXPECT_EQ(n.too_deep, 1u);
  EXPECT_EQ(n.oversize, 1u);
  EXPECT_EQ(n.invalid, 5u);
}

TEST_F(GatewayTest, ParseBoundsNestingBeforeParsing) {
  std::string why;
  std::string deep(100000, '[');
  EXPECT_TRUE(McpGateway::Parse(deep, 64, &why).is_discarded());
  EXPECT_EQ(why, "depth");
  why.clear();
  // Brackets inside strings are not nesting.
  EXPECT_FALSE(McpGateway::Parse(R"({"a":"[[[[[[[[[[[[[[[[[[[[\"[[["})", 4, &why).is_discarded());
}

TEST_F(GatewayTest, ReusedIdWhileInFlightIsRefused) {
  gw_.OnClientLine(R"({"jsonrpc":"2.0","id":5,"method":"tools/list"})");
  gw_.OnClientLine(R"({"jsonrpc":"2.0","id":5,"method":"tools/list"})");
  EXPECT_EQ(ToServer().size(), 1u);
  auto c = ToClient();
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0]["id"], 5);
  EXPECT_EQ(gw_.counters().duplicate_ids, 1u);
  // Answered: the id may be used again.
  gw_.OnServerLine(R"({"jsonrpc":"2.0","id":5,"result":{"tools":[]}})");
  gw_.OnClientLine(R"({"jsonrpc":"2.0","id":5,"method":"tools/list"})");
  EXPECT_EQ(ToServer().size(), 1u);
}

TEST_F(GatewayTest, ToolCallsAreJudgedReportedAndEnded) {
  gw_.OnClientLine(Call(7, "read_file", {{"path", "/a"}}));
  auto s = ToServer();
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0]["params"]["name"], "read_file");
  ASSERT_EQ(judge_.reports.size(), 1u);
  const auto& start = judge_.reports[0];
  EXPECT_EQ(start.phase(), "start");
  EXPECT_EQ(start.task_id(), "t-1");
  EXPECT_EQ(start.call_id(), "7");
  EXPECT_EQ(start.arguments(), R"({"path":"/a"})");
  EXPECT_EQ(start.arguments_sha256().size(), 64u);
  gw_.OnServerLine(R"({"jsonrpc":"2.0","id":7,"result":{"content":[],"isError":true}})");
  ASSERT_EQ(judge_.reports.size(), 2u);
  EXPECT_EQ(judge_.reports[1].phase(), "end");
  EXPECT_EQ(judge_.reports[1].status(), "error");
  EXPECT_EQ(ToClient().size(), 1u);
  EXPECT_EQ(gw_.in_flight(), 0u);
}

TEST_F(GatewayTest, LargeArgumentsReachWritdAsADigestOnly) {
  gw_.OnClientLine(Call(8, "write_file", {{"content", std::string(200, 'x')}}));
  ASSERT_EQ(judge_.reports.size(), 1u);
  EXPECT_TRUE(judge_.reports[0].arguments_truncated());
  EXPECT_TRUE(judge_.reports[0].arguments().empty());
  EXPECT_GT(judge_.reports[0].arguments_bytes(), 200u);
  EXPECT_EQ(judge_.reports[0].arguments_sha256().size(), 64u);
}

TEST_F(GatewayTest, DeniedCallIsAnsweredNotForwarded) {
  gw_.OnClientLine(Call(9, "denied"));
  EXPECT_TRUE(ToServer().empty());
  auto c = ToClient();
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0]["id"], 9);
  EXPECT_EQ(c[0]["error"]["code"], kErrDenied);
  EXPECT_EQ(c[0]["error"]["data"]["rule"], "i/tools.deny[0]");
  // Bad params are not even asked about.
  gw_.OnClientLine(R"({"jsonrpc":"2.0","id":10,"method":"tools/call","params":{"name":3}})");
  EXPECT_EQ(ToClient()[0]["error"]["code"], -32602);
  EXPECT_EQ(judge_.reports.size(), 1u);
}

TEST_F(GatewayTest, HeldCallWaitsForTheDecision) {
  gw_.OnClientLine(Call(11, "held"));
  EXPECT_TRUE(ToServer().empty());
  EXPECT_TRUE(ToClient().empty());
  EXPECT_EQ(gw_.held(), 1u);
  gw_.Tick(absl::Now());
  EXPECT_EQ(gw_.held(), 1u);
  EXPECT_EQ(judge_.reports.back().phase(), "poll");
  EXPECT_EQ(judge_.reports.back().approval_id(), "a-1");
  judge_.decision = "allow";
  gw_.Tick(absl::Now());
  auto s = ToServer();
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0]["id"], 11);
  EXPECT_EQ(gw_.in_flight(), 1u);
}

TEST_F(GatewayTest, HeldCallDeniedOrCancelled) {
  gw_.OnClientLine(Call(12, "held"));
  judge_.decision = "deny";
  gw_.Tick(absl::Now());
  auto c = ToClient();
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0]["error"]["code"], kErrDenied);
  // Cancelled while held: nothing reaches the server, not even the cancellation.
  gw_.OnClientLine(Call(13, "held"));
  gw_.OnClientLine(
      R"({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":13}})");
  EXPECT_EQ(gw_.held(), 0u);
  EXPECT_TRUE(ToServer().empty());
}

TEST_F(GatewayTest, CancellingACallInFlightEndsIt) {
  gw_.OnClientLine(Call(14, "slow"));
  gw_.OnClientLine(
      R"({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":14}})");
  EXPECT_EQ(ToServer().size(), 2u);
  EXPECT_EQ(judge_.reports.back().status(), "cancelled");
  // A late answer to it answers nothing the client still waits for: dropped.
  gw_.OnServerLine(R"({"jsonrpc":"2.0","id":14,"result":{}})");
  EXPECT_TRUE(ToClient().empty());
  EXPECT_EQ(gw_.counters().server_dropped, 1u);
}

TEST_F(GatewayTest, ToolsListLosesDeniedTools) {
  gw_.OnClientLine(R"({"jsonrpc":"2.0","id":"l","method":"tools/list"})");
  gw_.OnServerLine(
      R"({"jsonrpc":"2.0","id":"l","result":{"tools":[{"name":"read"},{"name":"denied"},{"name":"held"}]}})");
  auto c = ToClient();
  ASSERT_EQ(c.size(), 1u);
  ASSERT_EQ(c[0]["result"]["tools"].size(), 2u);
  EXPECT_EQ(c[0]["result"]["tools"][0]["name"], "read");
  EXPECT_EQ(c[0]["result"]["tools"][1]["name"], "held");
  EXPECT_EQ(judge_.reports.back().phase(), "list");
  EXPECT_EQ(judge_.reports.back().tools_size(), 3);
}

TEST_F(GatewayTest, ServerAnswersToNothingAndGarbageAreDropped) {
  gw_.OnServerLine(R"({"jsonrpc":"2.0","id":99,"result":{}})");
  gw_.OnServerLine("garbage");
  gw_.OnServerLine(R"({"id":1,"result":{}})");
  gw_.OnServerOversize(1 << 20);
  EXPECT_TRUE(ToClient().empty());
  EXPECT_EQ(gw_.counters().server_dropped, 4u);
}

TEST_F(GatewayTest, BatchesAreJudgedElementByElement) {
  json ok = json::array(
      {json::parse(Call(20, "read")), json{{"jsonrpc", "2.0"}, {"method", "notifications/x"}}});
  gw_.OnClientLine(ok.dump());
  auto s = ToServer();
  ASSERT_EQ(s.size(), 1u);
  EXPECT_TRUE(s[0].is_array());
  // One element refused: nothing of the batch is forwarded, every request in it is answered.
  json bad = json::array({json::parse(Call(21, "read")), json::parse(Call(22, "denied")),
                          json::parse(Call(23, "held"))});
  gw_.OnClientLine(bad.dump());
  EXPECT_TRUE(ToServer().empty());
  auto c = ToClient();
  ASSERT_EQ(c.size(), 1u);
  ASSERT_TRUE(c[0].is_array());
  EXPECT_EQ(c[0].size(), 3u);
  EXPECT_EQ(gw_.in_flight(), 1u);  // call 20 only
  EXPECT_EQ(gw_.held(), 0u);
}

TEST_F(GatewayTest, ServerExitAnswersEveryCallInFlight) {
  gw_.OnClientLine(Call(30, "read"));
  gw_.OnClientLine(Call(31, "held"));
  gw_.OnClientLine(R"({"jsonrpc":"2.0","id":32,"method":"resources/list"})");
  ToServer();
  gw_.OnServerExit("killed");
  auto c = ToClient();
  ASSERT_EQ(c.size(), 3u);
  for (const auto& m : c) EXPECT_EQ(m["error"]["code"], kErrServerExited);
  EXPECT_EQ(judge_.reports.back().phase(), "end");
  EXPECT_EQ(judge_.reports.back().status(), "server_exited");
  EXPECT_EQ(gw_.in_flight(), 0u);
}

}  // namespace
}  // namespace writ::cli
