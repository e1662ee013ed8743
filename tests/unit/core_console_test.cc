// Console: the approvals console's requests answered as a connection would have them (no socket),
// over the real ControlService with the task actions and output faked (daemon_fakes.h). Who may see
// and decide, that every refusal changes nothing, what a page shows of hostile values, and that a
// request from inside a task is a `self` finding. No root needed. The browser test is
// tests/e2e/console/console_e2e.mjs.
#include <arpa/inet.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "daemon/console.h"
#include "daemon/tool_calls.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "http/client.h"
#include "http/parse.h"
#include "nlohmann/json.hpp"
#include "unit/daemon_fakes.h"
#include "unit/sinks_test_receiver.h"
#include "unit/tls_test_server.h"

namespace writ::daemon {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kIntents = R"(apiVersion: writ.dev/v1
kind: Intent
name: narrow
files:
  read: ["/repo/**"]
on_violation: [alert, kill]
)";

constexpr char kUrl[] = "http://127.0.0.1:8484";

class ConsoleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/writ-console-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    std::ofstream(dir_ + "/intents.yaml") << kIntents;
    policies_ = std::make_unique<PolicyStore>(dir_, nullptr);
    ASSERT_TRUE(policies_->Load().ok());
    tool_calls_ = std::make_unique<ToolCalls>(ToolCalls::Deps{registry_, approvals_, out_});
    ControlService::Hooks hooks;
    hooks.console_login = [this](const std::string& who) { return console_->NewLogin(who); };
    control_ = std::make_unique<ControlService>(
        ControlService::Deps{registry_, *policies_, approvals_, tasks_, out_, tool_calls_.get()},
        std::move(hooks), ControlService::Options{});
    MakeConsole(absl::Hours(1), absl::Minutes(5));
  }
  void TearDown() override {
    out_.observer = nullptr;
    std::filesystem::remove_all(dir_);
  }

  void MakeConsole(absl::Duration session_ttl, absl::Duration login_ttl) {
    Console::Options o;
    o.url = kUrl;
    o.session_ttl = session_ttl;
    o.login_ttl = login_ttl;
    // The kernel's record, faked: connections from port 6666 come from task t-agent's cgroup.
    auto peer = [this](const sockaddr_storage& ss) -> std::optional<uint64_t> {
      const auto* in = reinterpret_cast<const sockaddr_in*>(&ss);
      if (ss.ss_family == AF_INET && ntohs(in->sin_port) == 6666) return 4242;
      return std::nullopt;
    };
    out_.observer = nullptr;
    auto c = Console::Create(Console::Deps{registry_, approvals_, peer}, o);
    ASSERT_TRUE(c.ok()) << c.status();
    console_ = std::move(*c);
    console_->SetControl(control_.get());
    out_.observer = console_.get();
  }

  // A console serving on a real listener (no kernel record: none of its peers is a task).
  void StartConsole(const Console::Options& o) {
    out_.observer = nullptr;
    auto c = Console::Create(Console::Deps{registry_, approvals_, nullptr}, o);
    ASSERT_TRUE(c.ok()) << c.status();
    console_ = std::move(*c);
    ASSERT_TRUE(console_->Start().ok());
    console_->SetControl(control_.get());
    out_.observer = console_.get();
  }

  std::shared_ptr<identity::Task> AddTask(const std::string& id) {
    auto t = std::make_shared<identity::Task>();
    t->id = id;
    t->spiffe_id = "spiffe://example.org/coder";
    t->principal = "user:alice@example.org";
    t->chain = {"user:alice@example.org", "spiffe://example.org/coder"};
    t->intent = "narrow";
    t->cgroup_id = 4242;
    t->mode = identity::TaskMode::kEnforce;
    t->state = identity::TaskState::kRunning;
    t->compiled = *intent::Compile(*policies_->Get()->Find("narrow"), {});
    EXPECT_TRUE(registry_.Add(t).ok());
    return t;
  }

  // An exec held for approval, as the pipeline files it, and its approval_request event.
  std::string Pending(const std::string& task, std::vector<std::string> args) {
    v1::Event ev;
    ev.set_kind("exec");
    ev.mutable_agent()->set_task_id(task);
    ev.mutable_process()->set_exe("/usr/bin/curl");
    for (auto& a : args) ev.mutable_process()->add_args(a);
    ev.mutable_finding()->set_rule("narrow/exec.ask[0]");
    ev.mutable_finding()->set_reason("curl needs a human");
    ApprovalRequest req;
    req.task_id = task;
    req.kind = "exec";
    req.action = ActionText(ev);
    req.action_hash = ActionHash(ev);
    req.created = absl::Now();
    req.expires = absl::Now() + absl::Minutes(1);
    req.pid = 77;
    req.rule = "narrow/exec.ask[0]";
    req.cause = ev;
    std::string id = approvals_.Add(req);
    v1::Event ar = out_.NewEvent("approval_request");
    ar.mutable_agent()->set_task_id(task);
    ar.mutable_approval()->set_id(id);
    out_.Emit(ar, false, true);
    return id;
  }

  http::Request Req(std::string method, std::string target, std::string body = "",
                    std::string cookie = "", std::string peer = "127.0.0.1:5555") {
    http::Request r;
    r.method = std::move(method);
    size_t q = target.find('?');
    r.path = target.substr(0, q);
    if (q != std::string::npos) r.query = target.substr(q + 1);
    r.body = std::move(body);
    r.peer = std::move(peer);
    r.headers.emplace_back("host", "127.0.0.1:8484");
    if (r.method == "POST") {
      r.headers.emplace_back("content-type", "application/x-www-form-urlencoded");
      r.headers.emplace_back("origin", kUrl);
      r.headers.emplace_back("sec-fetch-site", "same-origin");
    }
    if (!cookie.empty()) r.headers.emplace_back("cookie", "theme=dark; writ_console=" + cookie);
    return r;
  }

  static std::string Header(const http::Response& r, const std::string& name) {
    for (const auto& [k, v] : r.headers) {
      if (absl::EqualsIgnoreCase(k, name)) return v;
    }
    return "";
  }

  // Signs in through a fresh one-time link: the session cookie and its CSRF token.
  std::pair<std::string, std::string> SignIn(const std::string& who = "root (uid 0)") {
    auto link = console_->NewLogin(who);
    EXPECT_TRUE(link.ok());
    const std::string token = link->url().substr(link->url().find("token=") + 6);
    http::Response r = console_->Handle(Req("POST", "/login", "token=" + token));
    EXPECT_EQ(r.status, 303) << r.body;
    const std::string cookie = Header(r, "Set-Cookie");
    const std::string id = cookie.substr(13, cookie.find(';') - 13);
    http::Response page = console_->Handle(Req("GET", "/approvals", "", id));
    const std::string mark = "name=\"csrf\" value=\"";
    size_t at = page.body.find(mark);
    EXPECT_NE(at, std::string::npos) << page.body;
    return {id, page.body.substr(at + mark.size(), 64)};
  }

  std::string Decide(const std::string& id, const std::string& decision, const std::string& csrf,
                     const std::string& reason = "") {
    std::string hash;
    for (const auto& r : approvals_.List()) {
      if (r.id == id) hash = r.action_hash;
    }
    return absl::StrCat("id=", http::UrlEncode(id), "&decision=", decision,
                        "&scope=once&reason=", http::UrlEncode(reason), "&action_hash=", hash,
                        "&csrf=", csrf);
  }

  std::vector<v1::Event> Of(const std::string& kind) const {
    std::vector<v1::Event> out;
    for (const auto& e : out_.events) {
      if (e.kind() == kind) out.push_back(e);
    }
    return out;
  }

  std::string dir_;
  std::vector<std::string> log_;
  identity::TaskRegistry registry_{16};
  Approvals approvals_;
  testing::FakeTasks tasks_{&log_};
  testing::FakeOutput out_{&log_};
  std::unique_ptr<PolicyStore> policies_;
  std::unique_ptr<ToolCalls> tool_calls_;
  std::unique_ptr<ControlService> control_;
  std::unique_ptr<Console> console_;
};

TEST_F(ConsoleTest, NothingIsShownWithoutASession) {
  AddTask("t-1");
  Pending("t-1", {"curl", "https://example.org"});
  for (const char* page : {"/", "/approvals", "/violations", "/tasks", "/approval?id=x"}) {
    http::Response r = console_->Handle(Req("GET", page));
    EXPECT_EQ(r.status, 401) << page;
    EXPECT_THAT(r.body, HasSubstr("writ console-login"));
    EXPECT_THAT(r.body, Not(HasSubstr("curl")));
  }
  http::Response forged = console_->Handle(Req("GET", "/approvals", "", std::string(64, 'a')));
  EXPECT_EQ(forged.status, 401);
  EXPECT_EQ(console_->stats().unauthenticated, 6u);
  // The assets are public; every page forbids framing and foreign script.
  http::Response js = console_->Handle(Req("GET", "/console.js"));
  EXPECT_EQ(js.status, 200);
  EXPECT_THAT(Header(js, "Content-Security-Policy"), HasSubstr("script-src 'self'"));
  EXPECT_EQ(Header(js, "X-Frame-Options"), "DENY");
}

TEST_F(ConsoleTest, ALoginLinkSignsInOnceWithAHardenedCookie) {
  auto link = console_->NewLogin("alice (uid 1001)");
  ASSERT_TRUE(link.ok());
  EXPECT_TRUE(absl::StartsWith(link->url(), std::string(kUrl) + "/login?token="));
  EXPECT_EQ(link->who(), "alice (uid 1001)");
  const std::string token = link->url().substr(link->url().find("token=") + 6);
  EXPECT_EQ(token.size(), 64u);
  // GET only shows the form: a link preview must not use the link up.
  http::Response form = console_->Handle(Req("GET", "/login?token=" + token));
  EXPECT_EQ(form.status, 200);
  EXPECT_THAT(form.body, HasSubstr("value=\"" + token + "\""));
  http::Response r = console_->Handle(Req("POST", "/login", "token=" + token));
  ASSERT_EQ(r.status, 303);
  const std::string cookie = Header(r, "Set-Cookie");
  EXPECT_THAT(cookie, HasSubstr("HttpOnly"));
  EXPECT_THAT(cookie, HasSubstr("SameSite=Strict"));
  EXPECT_THAT(cookie, HasSubstr("Path=/"));
  EXPECT_THAT(cookie, Not(HasSubstr("Secure")));  // http://127.0.0.1: a browser would drop it
  http::Response again = console_->Handle(Req("POST", "/login", "token=" + token));
  EXPECT_EQ(again.status, 401);
  EXPECT_THAT(again.body, HasSubstr("used already"));
  http::Response unknown = console_->Handle(Req("POST", "/login", "token=" + std::string(64, 'b')));
  EXPECT_EQ(unknown.status, 401);
  EXPECT_THAT(unknown.body, HasSubstr("unknown"));
  EXPECT_EQ(console_->stats().logins, 1u);
  EXPECT_EQ(console_->stats().login_refused, 2u);
}

api::Peer MakePeer(uid_t uid, std::string cgroup) {
  api::Peer p;
  p.cred = api::PeerCred{4000, uid, uid};
  p.cgroup = std::move(cgroup);
  p.conn_id = 9;
  return p;
}

TEST_F(ConsoleTest, OnlyAnAdminOutsideEveryTaskGetsALoginLink) {
  AddTask("t-mine");
  v1::Response r = control_->ConsoleLogin(MakePeer(0, "/user.slice/session-1.scope"));
  ASSERT_EQ(r.code(), 0) << r.error();
  EXPECT_EQ(r.console_login().who(), "root (uid 0)");
  EXPECT_THAT(r.console_login().url(), HasSubstr("/login?token="));
  // An operator is not an admin; a root process inside a task never is.
  EXPECT_EQ(control_->ConsoleLogin(MakePeer(1000, "/user.slice/session-2.scope")).code(),
            static_cast<int>(absl::StatusCode::kPermissionDenied));
  EXPECT_EQ(control_->ConsoleLogin(MakePeer(0, "/writ/t-mine")).code(),
            static_cast<int>(absl::StatusCode::kPermissionDenied));
  ASSERT_EQ(Of("self").size(), 1u);
  EXPECT_EQ(Of("self")[0].finding().rule(), "writ/self.control.console_login");
  EXPECT_THAT(log_, Contains("responses t-mine alert,kill"));
}

TEST_F(ConsoleTest, ExpiredLinksAndSessionsAreRefusedClearly) {
  MakeConsole(/*session_ttl=*/absl::Seconds(1), /*login_ttl=*/absl::Milliseconds(1));
  auto link = console_->NewLogin("root (uid 0)");
  usleep(5000);
  const std::string token = link->url().substr(link->url().find("token=") + 6);
  http::Response r = console_->Handle(Req("POST", "/login", "token=" + token));
  EXPECT_EQ(r.status, 401);
  EXPECT_THAT(r.body, HasSubstr("expired"));

  MakeConsole(absl::Seconds(1), absl::Minutes(1));
  auto [session, csrf] = SignIn();
  EXPECT_EQ(console_->Handle(Req("GET", "/tasks", "", session)).status, 200);
  usleep(1100000);
  http::Response late = console_->Handle(Req("GET", "/tasks", "", session));
  EXPECT_EQ(late.status, 401);
  EXPECT_THAT(late.body, HasSubstr("Your session expired"));
}

TEST_F(ConsoleTest, AnApprovalShowsEverythingAndEscapesWhatTheAgentChose) {
  AddTask("t-1");
  v1::Event before;
  before.set_kind("open");
  before.set_verdict("allow");
  before.mutable_agent()->set_task_id("t-1");
  before.mutable_file()->set_path("/repo/<b>notes</b>");
  before.mutable_file()->add_flags("write");
  v1::Event noise = before;  // a read an allowed open made: not worth the approver's eye
  noise.mutable_file()->set_path("/usr/share/locale/locale.alias");
  noise.mutable_file()->set_flags(0, "read");
  out_.Emit(noise, false, true);
  out_.Emit(before, false, true);
  const std::string id =
      Pending("t-1", {"curl", "<script>alert(1)</script>", std::string("\xff\xfe-bytes"),
                      "\xe2\x80\xae"
                      "fdp.exe",
                      std::string(5000, 'A')});
  auto [session, csrf] = SignIn();
  http::Response r = console_->Handle(Req("GET", "/approvals", "", session));
  ASSERT_EQ(r.status, 200);
  const std::string& b = r.body;
  EXPECT_THAT(b, HasSubstr("spiffe://example.org/coder"));
  EXPECT_THAT(b, HasSubstr("user:alice@example.org → spiffe://example.org/coder"));
  EXPECT_THAT(b, HasSubstr("narrow/exec.ask[0]"));
  EXPECT_THAT(b, HasSubstr("curl needs a human"));
  EXPECT_THAT(b, HasSubstr("/usr/bin/curl"));
  EXPECT_THAT(b, HasSubstr("data-expires="));
  EXPECT_THAT(b, HasSubstr("/repo/&lt;b&gt;notes&lt;/b&gt;"));  // the task's history
  EXPECT_THAT(b, HasSubstr("&lt;script&gt;alert(1)&lt;/script&gt;"));
  EXPECT_THAT(b, Not(HasSubstr("<script>alert")));
  EXPECT_THAT(b, HasSubstr("\\xff\\xfe-bytes"));
  EXPECT_THAT(b, HasSubstr("\\u202efdp.exe"));  // no right-to-left override
  EXPECT_THAT(b, Not(HasSubstr("locale.alias")));
  EXPECT_THAT(b, HasSubstr("more bytes not shown"));
  EXPECT_THAT(b, HasSubstr("name=\"id\" value=\"" + id + "\""));
  // The page for that one approval (the notification's link) shows the same.
  http::Response one = console_->Handle(Req("GET", "/approval?id=" + id, "", session));
  EXPECT_EQ(one.status, 200);
  EXPECT_THAT(one.body, HasSubstr("&lt;script&gt;"));
}

TEST_F(ConsoleTest, ADecisionCarriesWhoAndWhereAndIsTakenOnce) {
  AddTask("t-1");
  const std::string id = Pending("t-1", {"curl", "https://example.org"});
  auto [session, csrf] = SignIn("alice (uid 1001)");
  const std::string body = Decide(id, "approve", csrf, "looked fine");
  http::Response r = console_->Handle(Req("POST", "/decide", body, session, "127.0.0.1:5555"));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_THAT(log_, Contains("signal 77 CONT"));
  EXPECT_THAT(log_, Contains("thaw t-1"));
  ASSERT_EQ(Of("action").size(), 1u);
  const v1::Approval a = Of("action")[0].approval();
  EXPECT_EQ(a.decided_by(), "alice (uid 1001)");
  EXPECT_EQ(a.decided_via(), "console from 127.0.0.1:5555");
  EXPECT_EQ(a.reason(), "looked fine");
  EXPECT_EQ(approvals_.size(), 0u);
  // The same form again (a double click, a replay): nothing is decided twice.
  http::Response again = console_->Handle(Req("POST", "/decide", body, session));
  EXPECT_EQ(again.status, 409);
  EXPECT_THAT(again.body, HasSubstr("approved by alice (uid 1001)"));
  EXPECT_EQ(Of("action").size(), 1u);
  EXPECT_EQ(console_->stats().decisions, 1u);
  EXPECT_EQ(console_->stats().decisions_refused, 1u);
}

TEST_F(ConsoleTest, ADenialNeedsAReasonAndEndsTheAction) {
  AddTask("t-1");
  const std::string id = Pending("t-1", {"curl", "https://example.org"});
  auto [session, csrf] = SignIn();
  http::Response r = console_->Handle(Req("POST", "/decide", Decide(id, "deny", csrf), session));
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(approvals_.size(), 1u);
  r = console_->Handle(Req("POST", "/decide", Decide(id, "deny", csrf, "not today"), session));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_THAT(log_, Contains("signal 77 KILL"));
  EXPECT_EQ(Of("action").at(0).action().type(), "deny");
}

TEST_F(ConsoleTest, ForgedAndCrossSiteDecisionsChangeNothing) {
  AddTask("t-1");
  const std::string id = Pending("t-1", {"curl", "https://example.org"});
  auto [session, csrf] = SignIn();
  // No token, a wrong one, another site's Origin, a cross-site fetch, not a form.
  std::vector<http::Request> bad;
  bad.push_back(Req("POST", "/decide", Decide(id, "approve", ""), session));
  bad.push_back(Req("POST", "/decide", Decide(id, "approve", std::string(64, '0')), session));
  http::Request origin = Req("POST", "/decide", Decide(id, "approve", csrf), session);
  for (auto& [k, v] : origin.headers) {
    if (k == "origin") v = "http://evil.example";
  }
  bad.push_back(origin);
  http::Request site = Req("POST", "/decide", Decide(id, "approve", csrf), session);
  for (auto& [k, v] : site.headers) {
    if (k == "sec-fetch-site") v = "cross-site";
  }
  bad.push_back(site);
  http::Request json = Req("POST", "/decide", Decide(id, "approve", csrf), session);
  for (auto& [k, v] : json.headers) {
    if (k == "content-type") v = "application/json";
  }
  bad.push_back(json);
  for (const auto& req : bad) {
    http::Response r = console_->Handle(req);
    EXPECT_EQ(r.status, 403) << r.body;
  }
  // A decision bound to another action than the one pending under the id.
  std::string changed = Decide(id, "approve", csrf);
  changed.replace(changed.find("action_hash=") + 12, 4, "0000");
  EXPECT_EQ(console_->Handle(Req("POST", "/decide", changed, session)).status, 409);
  EXPECT_EQ(approvals_.size(), 1u);
  EXPECT_TRUE(Of("action").empty());
  EXPECT_EQ(console_->stats().csrf_refused, 5u);
}

TEST_F(ConsoleTest, ADecisionForAnEndedTaskIsRefusedClearly) {
  AddTask("t-1");
  const std::string id = Pending("t-1", {"curl", "https://example.org"});
  auto [session, csrf] = SignIn();
  const std::string body = Decide(id, "approve", csrf);
  // The task ends: its approvals go with it (TaskLifecycle), and its task_end says why.
  approvals_.TakeTask("t-1");
  registry_.Remove("t-1");
  v1::Event end = out_.NewEvent("task_end");
  end.mutable_agent()->set_task_id("t-1");
  end.mutable_task()->set_reason("killed");
  out_.Emit(end, false, true);
  http::Response r = console_->Handle(Req("POST", "/decide", body, session));
  EXPECT_EQ(r.status, 409);
  EXPECT_THAT(r.body, HasSubstr("its task ended"));
  EXPECT_THAT(r.body, HasSubstr("killed"));
  EXPECT_TRUE(Of("action").empty());
}

TEST_F(ConsoleTest, ARequestFromInsideATaskIsRefusedAndIsASelfFinding) {
  AddTask("t-agent");
  const std::string id = Pending("t-agent", {"curl", "https://example.org"});
  auto [session, csrf] = SignIn();
  // Even with an admin's cookie and token (stolen), the kernel says the socket is the task's.
  http::Response r = console_->Handle(
      Req("POST", "/decide", Decide(id, "approve", csrf), session, "127.0.0.1:6666"));
  EXPECT_EQ(r.status, 403);
  EXPECT_THAT(r.body, HasSubstr("inside an agent"));
  EXPECT_EQ(approvals_.size(), 1u);
  ASSERT_EQ(Of("self").size(), 1u);
  const v1::Event f = Of("self")[0];
  EXPECT_EQ(f.finding().rule(), "writ/self.console.decide");
  EXPECT_EQ(f.syscall().name(), "console:decide");
  EXPECT_EQ(f.agent().task_id(), "t-agent");
  EXPECT_THAT(log_, Contains("responses t-agent alert,kill"));
  EXPECT_EQ(console_->Handle(Req("GET", "/approvals", "", "", "127.0.0.1:6666")).status, 403);
  EXPECT_EQ(console_->stats().task_refused, 2u);
  EXPECT_EQ(control_->refused_from_tasks(), 2u);
}

// A peer the server could not read (it went away at accept: http::Server writes "?") cannot be
// shown not to be a task's: refused, like one.
TEST_F(ConsoleTest, APeerThatCannotBeReadIsRefused) {
  auto [session, csrf] = SignIn();
  http::Response r = console_->Handle(Req("GET", "/approvals", "", session, "?"));
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(console_->stats().task_refused, 1u);
}

TEST_F(ConsoleTest, ViolationsAreListedNewestFirstAndFiltered) {
  AddTask("t-a");
  AddTask("t-b");
  for (const char* t : {"t-a", "t-b", "t-a"}) {
    v1::Event v;
    v.set_kind("open");
    v.set_verdict("violation");
    v.set_outcome("prevented");
    v.mutable_agent()->set_task_id(t);
    v.mutable_agent()->set_spiffe_id(absl::StrCat("spiffe://example.org/", t));
    v.mutable_file()->set_path(absl::StrCat("/etc/shadow-", t));
    v.mutable_finding()->set_rule("narrow/files.deny[0]");
    out_.Emit(v, false, true);
  }
  auto [session, csrf] = SignIn();
  http::Response all = console_->Handle(Req("GET", "/violations", "", session));
  EXPECT_THAT(all.body, HasSubstr("/etc/shadow-t-b"));
  http::Response a = console_->Handle(Req("GET", "/violations?fragment=1&task=t-a", "", session));
  EXPECT_THAT(a.body, HasSubstr("/etc/shadow-t-a"));
  EXPECT_THAT(a.body, Not(HasSubstr("/etc/shadow-t-b")));
  http::Response rule =
      console_->Handle(Req("GET", "/violations?fragment=1&rule=other", "", session));
  EXPECT_THAT(rule.body, HasSubstr("No violations"));
}

TEST_F(ConsoleTest, TaskActionsRunAsTheSignedInAdmin) {
  AddTask("t-1");
  auto [session, csrf] = SignIn("alice (uid 1001)");
  http::Response page = console_->Handle(Req("GET", "/tasks", "", session));
  EXPECT_THAT(page.body, HasSubstr("t-1"));
  http::Response r = console_->Handle(
      Req("POST", "/task", "task=t-1&action=freeze&reason=look&csrf=" + csrf, session));
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_THAT(log_, Contains("freeze t-1"));
  r = console_->Handle(Req("POST", "/task", "task=t-1&action=explode&csrf=" + csrf, session));
  EXPECT_EQ(r.status, 400);
  r = console_->Handle(Req("POST", "/task", "task=t-1&action=kill", session));
  EXPECT_EQ(r.status, 403);
  EXPECT_THAT(log_, Not(Contains("kill t-1")));
}

// The webhook: a real listener on loopback gets Slack-compatible JSON for each approval request,
// with a link to that request's page, and a violation only when asked for.
TEST_F(ConsoleTest, AnApprovalRequestIsPostedToTheWebhookWithALinkToItsPage) {
  sinks::testing::HttpReceiver hook;
  ASSERT_TRUE(hook.ok());
  Console::Options o;
  o.url = kUrl;
  o.webhook = absl::StrCat("http://127.0.0.1:", hook.port(), "/hooks/writ");
  ASSERT_NO_FATAL_FAILURE(StartConsole(o));
  AddTask("t-1");
  v1::Event ar = out_.NewEvent("approval_request");
  ar.mutable_agent()->set_task_id("t-1");
  ar.mutable_agent()->set_spiffe_id("spiffe://example.org/coder");
  ar.mutable_agent()->set_principal("user:alice@example.org");
  ar.mutable_approval()->set_id("ap-123");
  ar.mutable_approval()->set_action("exec /usr/bin/git push <@channel>");
  ar.mutable_approval()->set_expires("2026-12-07T10:00:00Z");
  ar.mutable_finding()->set_rule("coding-agent/approval[0]");
  out_.Emit(ar, false, true);
  v1::Event v = out_.NewEvent("open");  // a violation: not sent unless notify.violations
  v.set_verdict("violation");
  v.mutable_agent()->set_task_id("t-1");
  out_.Emit(v, false, true);
  for (int i = 0; i < 200 && hook.requests().empty(); ++i) usleep(10000);
  usleep(100000);
  console_->Stop();
  ASSERT_EQ(hook.requests().size(), 1u);
  const auto req = hook.requests()[0];
  EXPECT_THAT(req.request_line, HasSubstr("POST /hooks/writ"));
  auto j = nlohmann::json::parse(req.body);
  EXPECT_THAT(j["text"].get<std::string>(), HasSubstr("ap-123"));
  EXPECT_THAT(j["text"].get<std::string>(), HasSubstr(std::string(kUrl) + "/approval?id=ap-123"));
  EXPECT_THAT(j["text"].get<std::string>(), HasSubstr("&lt;@channel&gt;"));
  EXPECT_THAT(j["text"].get<std::string>(), Not(HasSubstr("<@channel>")));
  EXPECT_EQ(j["blocks"][0]["type"], "section");
  // Slack's markup in a value the agent chose is escaped: no @channel ping from an agent.
  EXPECT_THAT(j["blocks"][0]["text"]["text"].get<std::string>(), HasSubstr("&lt;@channel&gt;"));
  EXPECT_EQ(j["blocks"][2]["elements"][0]["url"], std::string(kUrl) + "/approval?id=ap-123");
  EXPECT_EQ(j["writ"]["approval_id"], "ap-123");
  EXPECT_EQ(j["writ"]["rule"], "coding-agent/approval[0]");
  EXPECT_EQ(console_->stats().notify_sent, 1u);
  EXPECT_THAT(console_->MetricsText(), HasSubstr("writ_console_notify_sent_total 1\n"));
}

// With console.tls the console is HTTPS (so it may listen beyond loopback): its links say https and
// its session cookie is Secure.
TEST_F(ConsoleTest, OverTlsTheLinksAreHttpsAndTheCookieIsSecure) {
  char tmpl[] = "/tmp/writ-console-tls-XXXXXX";
  const std::string pki_dir = mkdtemp(tmpl);
  ::writ::testing::TestPki ca(pki_dir, "console");
  auto server = ca.Issue("server", "writ-console", {"IP:127.0.0.1"});
  Console::Options o;
  o.tls_cert = server.cert;
  o.tls_key = server.key;
  ASSERT_NO_FATAL_FAILURE(StartConsole(o));
  EXPECT_TRUE(absl::StartsWith(console_->url(), "https://127.0.0.1:")) << console_->url();
  auto link = console_->NewLogin("root (uid 0)");
  ASSERT_TRUE(link.ok());
  http::ClientRequest r;
  r.method = "POST";
  r.url = absl::StrCat(console_->url(), "/login");
  r.ca_file = ca.ca().cert;
  r.headers.emplace_back("Content-Type", "application/x-www-form-urlencoded");
  r.body = "token=" + link->url().substr(link->url().find("token=") + 6);
  auto resp = http::Fetch(r);
  ASSERT_TRUE(resp.ok()) << resp.status();
  EXPECT_EQ(resp->status, 303);
  std::string cookie;
  for (const auto& [k, v] : resp->headers) {
    if (k == "set-cookie") cookie = v;
  }
  EXPECT_THAT(cookie, HasSubstr("; Secure"));
  http::ClientRequest plain;
  plain.url = absl::StrCat("http://127.0.0.1:", console_->port(), "/approvals");
  auto p = http::Fetch(plain);
  EXPECT_TRUE(!p.ok() || p->status != 200) << "plain HTTP is not served";
  console_->Stop();
  std::filesystem::remove_all(pki_dir);
}

TEST(HtmlText, EscapesMarkupAndShowsBytesThatAreNotText) {
  EXPECT_EQ(HtmlText("a<b>&\"'"), "a&lt;b&gt;&amp;&quot;&#39;");
  EXPECT_EQ(HtmlText("é ok"), "é ok");
  EXPECT_EQ(HtmlText(std::string("\xc3(", 2)), "\\xc3(");
  EXPECT_EQ(HtmlText(std::string("a\0b", 3)), "a\\x00b");
  EXPECT_EQ(HtmlText("\x1b[31m"), "\\x1b[31m");
  EXPECT_EQ(HtmlText("\xc0\xaf"), "\\xc0\\xaf");           // overlong '/'
  EXPECT_EQ(HtmlText("\xed\xa0\x80"), "\\xed\\xa0\\x80");  // a surrogate
  EXPECT_EQ(HtmlText("\xe2\x81\xa6x"), "\\u2066x");        // an isolate
  EXPECT_EQ(HtmlText("a\\xff"), "a\\\\xff");               // a task's own "\xff" text is not a byte
  EXPECT_EQ(HtmlTextCut("abcdef", 3), "abc<span class=\"cut\">… (3 more bytes not shown)</span>");
  EXPECT_EQ(HtmlTextCut("é", 1), "<span class=\"cut\">… (2 more bytes not shown)</span>");
}

}  // namespace
}  // namespace writ::daemon
