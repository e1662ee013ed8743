// The approvals console: sessions, the checks every request passes, the routes, what it keeps of
// the event stream, and webhook notifications. Rendering is in console_pages.cc.
#include "daemon/console.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <algorithm>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "http/client.h"
#include "http/parse.h"
#include "nlohmann/json.hpp"
#include "util/util.h"

namespace writ::daemon {
namespace {

auto Log() {
  static auto l = Logger("console");
  return l;
}

std::string RandomToken() {
  unsigned char b[32];
  if (RAND_bytes(b, sizeof(b)) != 1) return "";
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(b), sizeof(b)));
}

bool SecretEqual(const std::string& a, const std::string& b) {
  return a.size() == b.size() && !a.empty() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

constexpr char kCookie[] = "writ_console";

// The session id in the Cookie header, or "".
std::string CookieValue(const http::Request& req) {
  for (const auto& [name, value] : req.headers) {
    if (name != "cookie") continue;
    for (absl::string_view part : absl::StrSplit(value, ';')) {
      part = absl::StripAsciiWhitespace(part);
      if (absl::ConsumePrefix(&part, kCookie) && absl::ConsumePrefix(&part, "=")) {
        return std::string(part);
      }
    }
  }
  return "";
}

// "127.0.0.1:5000" or "::1:5000" (as http::Server writes a peer) -> sockaddr.
std::optional<sockaddr_storage> PeerAddress(const std::string& peer) {
  size_t colon = peer.rfind(':');
  if (colon == std::string::npos) return std::nullopt;
  std::string host = peer.substr(0, colon);
  uint32_t port = 0;
  if (!absl::SimpleAtoi(peer.substr(colon + 1), &port) || port > 65535) return std::nullopt;
  sockaddr_storage ss{};
  auto* in = reinterpret_cast<sockaddr_in*>(&ss);
  auto* in6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (inet_pton(AF_INET, host.c_str(), &in->sin_addr) == 1) {
    in->sin_family = AF_INET;
    in->sin_port = htons(static_cast<uint16_t>(port));
  } else if (inet_pton(AF_INET6, host.c_str(), &in6->sin6_addr) == 1) {
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(static_cast<uint16_t>(port));
  } else {
    return std::nullopt;
  }
  return ss;
}

// Slack's mrkdwn: &, < and > are its only markup an arbitrary value could smuggle (a link, a
// mention); the rest is shown as sent.
std::string SlackText(absl::string_view s) { return EscapeMarkup(s, /*quotes=*/false); }

// What the approver reads in a task's recent history: what it ran, where it connected, what it
// asked, what was judged against it and done to it; not the reads of an allowed open (a program's
// start-up reads dozens of files) nor its forks and exits.
bool Noteworthy(const v1::Event& ev) {
  const std::string& k = ev.kind();
  if (k == "fork" || k == "exit") return false;
  if (k == "open" && (ev.verdict().empty() || ev.verdict() == "allow")) {
    for (const std::string& f : ev.file().flags()) {
      if (f != "read") return true;  // a write, create or truncate
    }
    return false;
  }
  return true;
}

std::string Cut(absl::string_view s, size_t n) {
  if (s.size() <= n) return std::string(s);
  return absl::StrCat(s.substr(0, Utf8Prefix(s, n)), "…");
}

}  // namespace

absl::StatusOr<std::unique_ptr<Console>> Console::Create(Deps deps, Options opts) {
  std::unique_ptr<Console> c(new Console(std::move(deps), std::move(opts)));
  http::ServerOptions so;
  so.address = c->opts_.listen;
  so.workers = c->opts_.workers;
  so.tls.cert_file = c->opts_.tls_cert;
  so.tls.key_file = c->opts_.tls_key;
  if (!c->opts_.url.empty()) {
    // The name approvers' browsers use must pass the server's Host check (an IP literal is the
    // listen address itself, or refused there).
    absl::string_view rest = c->opts_.url;
    absl::ConsumePrefix(&rest, "https://") || absl::ConsumePrefix(&rest, "http://");
    std::string host(rest.substr(0, rest.find('/')));
    if (size_t colon = host.rfind(':'); colon != std::string::npos && host.front() != '[') {
      host = host.substr(0, colon);
    }
    if (!host.empty() && host.front() != '[' && host != "localhost") {
      so.allowed_hosts.push_back(host);
    }
  }
  auto server = http::Server::Create(std::move(so));
  if (!server.ok()) return server.status();
  c->server_ = std::move(*server);
  if (!c->opts_.url.empty()) c->SetUrl(c->opts_.url);
  for (const char* path : {"/", "/login", "/logout", "/approvals", "/approval", "/decide",
                           "/violations", "/tasks", "/task", "/console.css", "/console.js"}) {
    for (const char* method : {"GET", "POST"}) {
      c->server_->AddRoute(method, path,
                           [raw = c.get()](const http::Request& r) { return raw->Handle(r); });
    }
  }
  return c;
}

Console::Console(Deps deps, Options opts) : d_(std::move(deps)), opts_(std::move(opts)) {}

void Console::SetUrl(const std::string& url) {
  opts_.url = std::string(absl::StripSuffix(url, "/"));
  secure_ = absl::StartsWith(opts_.url, "https://");
  absl::string_view rest = opts_.url;
  const std::string scheme = secure_ ? "https://" : "http://";
  absl::ConsumePrefix(&rest, scheme);
  origin_ = absl::StrCat(scheme, rest.substr(0, rest.find('/')));
}

Console::~Console() { Stop(); }

absl::Status Console::Start() {
  if (absl::Status st = server_->Start(); !st.ok()) {
    return absl::Status(st.code(), absl::StrCat("console: ", st.message()));
  }
  if (opts_.url.empty()) {
    SetUrl(absl::StrCat(opts_.tls_cert.empty() ? "http://" : "https://", server_->address()));
  }
  started_ = true;
  if (!opts_.webhook.empty()) notifier_ = std::thread([this] { NotifierLoop(); });
  Log()->info("approvals console at {} (sign in: writ console-login)", opts_.url);
  return absl::OkStatus();
}

void Console::Stop() {
  if (!started_.exchange(false)) return;
  {
    absl::MutexLock lock(&notify_mu_);
    notify_stop_ = true;
  }
  if (notifier_.joinable()) notifier_.join();
  server_->Stop();
}

std::string Console::url() const { return opts_.url; }
uint16_t Console::port() const { return static_cast<uint16_t>(server_->port()); }

Console::Stats Console::stats() const {
  absl::MutexLock lock(&stats_mu_);
  return stats_;
}

std::string Console::MetricsText() const {
  const Stats s = stats();
  std::string out;
  auto counter = [&](const char* name, const char* help, uint64_t v) {
    absl::StrAppend(&out, "# HELP writ_console_", name, " ", help, "\n# TYPE writ_console_", name,
                    " counter\nwrit_console_", name, " ", v, "\n");
  };
  counter("logins_total", "Console sessions opened from a login link.", s.logins);
  counter("logins_refused_total", "Login links refused: unknown, used or expired.",
          s.login_refused);
  counter("unauthenticated_total", "Console requests without a live session (401).",
          s.unauthenticated);
  counter("csrf_refused_total", "Console state changes refused: no CSRF token or cross-site.",
          s.csrf_refused);
  counter("task_refused_total",
          "Console requests from inside a task (or from a peer that could not be read), refused.",
          s.task_refused);
  counter("decisions_total", "Approvals decided in the console.", s.decisions);
  counter("decisions_refused_total",
          "Console decisions refused: decided, expired or ended already, or the action changed.",
          s.decisions_refused);
  counter("task_actions_total", "Kill, freeze, thaw and revoke from the console.", s.task_actions);
  counter("notify_sent_total", "Webhook notifications delivered.", s.notify_sent);
  counter("notify_failed_total", "Webhook notifications that failed.", s.notify_failed);
  counter("notify_dropped_total", "Webhook notifications dropped: the queue was full.",
          s.notify_dropped);
  return out;
}

absl::StatusOr<v1::ConsoleLoginResponse> Console::NewLogin(const std::string& who) {
  std::string token = RandomToken();
  if (token.empty()) return absl::InternalError("no randomness for a login token");
  const absl::Time now = absl::Now();
  const absl::Time expires = now + opts_.login_ttl;
  {
    absl::MutexLock lock(&mu_);
    for (auto it = logins_.begin(); it != logins_.end();) {
      if (it->second.expires < now - absl::Hours(1)) {
        logins_.erase(it++);
      } else {
        ++it;
      }
    }
    if (logins_.size() >= kLogins) {
      // The oldest link goes: a flood of console-login calls (an admin's script) cannot grow this.
      auto oldest = std::min_element(logins_.begin(), logins_.end(), [](auto& a, auto& b) {
        return a.second.expires < b.second.expires;
      });
      logins_.erase(oldest);
    }
    logins_[token] = Login{who, expires, std::nullopt};
  }
  v1::ConsoleLoginResponse r;
  r.set_url(absl::StrCat(opts_.url, "/login?token=", token));
  r.set_expires(Rfc3339(expires));
  r.set_who(who);
  return r;
}

std::string Console::Summary(const v1::Event& ev) {
  const std::string& k = ev.kind();
  if (k == "exec") {
    std::string s = absl::StrCat("exec ", ev.process().exe());
    for (int i = 1; i < ev.process().args_size(); ++i)
      absl::StrAppend(&s, " ", ev.process().args(i));
    if (!ev.process().script().empty())
      absl::StrAppend(&s, " (script ", ev.process().script(), ")");
    return Cut(s, 300);
  }
  if (k == "open") {
    std::string s = absl::StrCat("open ", ev.file().path());
    if (ev.file().flags_size()) {
      absl::StrAppend(&s, " (", absl::StrJoin(ev.file().flags(), ","), ")");
    }
    return Cut(s, 300);
  }
  if (k == "connect") {
    const v1::Network& n = ev.network();
    std::string s = n.path().empty() ? absl::StrCat("connect ", n.dst_ip(), ":", n.dst_port())
                                     : absl::StrCat("connect unix ", n.path());
    if (!n.host().empty()) absl::StrAppend(&s, " (", n.host(), ")");
    return Cut(s, 300);
  }
  if (k == "dns") return Cut(absl::StrCat("dns ", ev.dns().query()), 300);
  if (k == "tool_call") {
    return Cut(absl::StrCat("tool ", ev.tool().name(), " ", ev.tool().arguments()), 300);
  }
  if (k == "self") return absl::StrCat("self ", ev.syscall().name(), " → ", ev.syscall().target());
  if (k == "action") {
    return Cut(
        absl::StrCat(ev.action().type(), " ", ev.action().target(), ": ", ev.action().reason()),
        300);
  }
  if (k == "approval_request") return Cut(absl::StrCat("asks: ", ev.approval().action()), 300);
  if (k == "task_start") return "task started";
  if (k == "task_end") return absl::StrCat("task ended: ", ev.task().reason());
  if (k == "credential") {
    return absl::StrCat(ev.credential().operation(), " ", ev.credential().type(), " ",
                        ev.credential().provider());
  }
  if (!ev.finding().reason().empty()) return Cut(ev.finding().reason(), 300);
  return k;
}

void Console::Observe(const v1::Event& ev) {
  const std::string& task = ev.agent().task_id();
  // As `writ tail --violations` selects them.
  const bool violation = ev.verdict() == "violation" || ev.verdict() == "needs_approval";
  std::optional<std::string> payload;
  if (!opts_.webhook.empty()) {
    if (ev.kind() == "approval_request") {
      payload = ApprovalPayload(ev);
    } else if (ev.verdict() == "violation" && opts_.notify_violations) {
      payload = ViolationPayload(ev);
    }
  }
  const bool noteworthy = !task.empty() && Noteworthy(ev);
  const std::string summary = noteworthy || violation ? Summary(ev) : std::string();
  {
    absl::MutexLock lock(&mu_);
    if (!task.empty()) {
      TaskLog& tl = tasks_[task];
      // Ring slots are reused (their strings keep their capacity): a steady stream allocates
      // nothing here once the rings are full.
      auto fill = [&](std::deque<Line>& ring, size_t cap) -> Line& {
        Line l;
        if (ring.size() >= cap) {
          l = std::move(ring.front());
          ring.pop_front();
        }
        l.time = ev.time();
        l.kind = ev.kind();
        l.verdict = ev.verdict();
        l.outcome = ev.outcome();
        l.summary = summary;
        l.rule = ev.finding().rule();
        ring.push_back(std::move(l));
        return ring.back();
      };
      if (noteworthy) fill(tl.lines, kTaskLines);
      if (ev.has_credential() && tl.credentials.size() < kTaskCredentials) {
        const v1::Credential& cr = ev.credential();
        tl.credentials.push_back(absl::StrCat(ev.time().substr(0, 19), " ", cr.operation(), " ",
                                              cr.type(), cr.provider().empty() ? "" : " ",
                                              cr.provider(),
                                              cr.jti().empty() ? "" : " jti=", cr.jti()));
      }
      if (violation) {
        Line& v = fill(violations_, kViolations);
        v.agent = ev.agent().spiffe_id();
        v.task = task;
        v.severity = ev.finding().severity();
      }
      auto resolve = [&](const std::string& id, std::string what) {
        if (resolved_.size() >= kResolved && !resolved_order_.empty()) {
          resolved_.erase(resolved_order_.front());
          resolved_order_.pop_front();
        }
        if (resolved_.emplace(id, std::move(what)).second) resolved_order_.push_back(id);
        auto& open = open_[task];
        open.erase(std::remove(open.begin(), open.end(), id), open.end());
      };
      if (ev.kind() == "approval_request") {
        open_[task].push_back(ev.approval().id());
      } else if (ev.kind() == "action" &&
                 (ev.action().type() == "approve" || ev.action().type() == "deny") &&
                 !ev.approval().id().empty()) {
        const v1::Approval& a = ev.approval();
        resolve(a.id(),
                a.reason() == "expired" && a.decided_by().empty()
                    ? absl::StrCat("it expired at ", ev.time().substr(0, 19),
                                   " (nobody decided in time: denied)")
                    : absl::StrCat(ev.action().type() == "approve" ? "approved" : "denied", " by ",
                                   a.decided_by(), " at ", ev.time().substr(0, 19),
                                   a.decided_via().empty() ? "" : " via ", a.decided_via()));
      } else if (ev.kind() == "task_end") {
        tl.ended = true;
        tl.ended_at = absl::Now();
        std::vector<std::string> ids = open_[task];
        for (const std::string& id : ids) {
          resolve(id, absl::StrCat("its task ended at ", ev.time().substr(0, 19), " (",
                                   ev.task().reason(), ")"));
        }
        open_.erase(task);
      }
    }
    if (tasks_.size() > kTaskLogs) {
      // Forget the ended tasks longest gone.
      std::vector<std::pair<absl::Time, std::string>> ended;
      for (const auto& [id, tl] : tasks_) {
        if (tl.ended) ended.emplace_back(tl.ended_at, id);
      }
      std::sort(ended.begin(), ended.end());
      for (size_t i = 0; i < ended.size() && tasks_.size() > kTaskLogs / 2; ++i) {
        tasks_.erase(ended[i].second);
      }
    }
  }
  if (payload) Notify(std::move(*payload));
}

// ---- requests

std::string Console::Via(const http::Request& req) const {
  return absl::StrCat("console from ", req.peer);
}

std::optional<http::Response> Console::RefuseTask(const http::Request& req, const char* what) {
  if (!d_.task_peer) return std::nullopt;
  std::optional<sockaddr_storage> addr = PeerAddress(req.peer);
  if (!addr) {
    // The server could not read the connection's peer (it went away at accept): nobody can say
    // it is not a task's, so it is not served.
    absl::MutexLock lock(&stats_mu_);
    stats_.task_refused++;
    return Message(403, "Refused", "writd could not tell where this connection comes from.",
                   nullptr);
  }
  std::optional<uint64_t> cgid = d_.task_peer(*addr);
  if (!cgid) return std::nullopt;
  {
    absl::MutexLock lock(&stats_mu_);
    stats_.task_refused++;
  }
  std::shared_ptr<identity::Task> t = d_.registry.FindByCgroup(*cgid);
  const std::string task = t ? t->id : absl::StrCat("cgroup ", *cgid);
  if (t) {
    control_.load(std::memory_order_acquire)
        ->RefuseTaskCaller(t->id, "console", what,
                           absl::PermissionDeniedError(
                               "a process inside a task cannot use the approvals console"));
  } else {
    Log()->warn("refused a console request from inside an ended task ({})", task);
  }
  return Message(403, "Refused",
                 "This connection comes from inside an agent's task. The approvals console is "
                 "for people, never for the agents whose requests it decides.",
                 nullptr);
}

bool Console::SameOrigin(const http::Request& req) const {
  // SameSite=Strict keeps the cookie off cross-site requests already; these refuse what a browser
  // says came from elsewhere even so (an older browser, a sibling site).
  const std::string origin = req.Header("origin");
  if (!origin.empty() && origin != origin_) return false;
  const std::string site = req.Header("sec-fetch-site");
  if (!site.empty() && site != "same-origin") return false;
  return true;
}

std::optional<Console::Caller> Console::SessionOf(const http::Request& req,
                                                  http::Response* refusal) {
  const std::string id = CookieValue(req);
  std::optional<Session> s;
  if (!id.empty()) {
    absl::MutexLock lock(&mu_);
    auto it = sessions_.find(id);
    if (it != sessions_.end()) s = it->second;
  }
  const absl::Time now = absl::Now();
  if (!s || s->expires <= now) {
    {
      absl::MutexLock lock(&stats_mu_);
      stats_.unauthenticated++;
    }
    *refusal = Message(401, s ? "Session expired" : "Sign in",
                       s ? absl::StrCat("Your session expired at ", Rfc3339(s->expires),
                                        ". On the host, as an admin, run `writ console-login` and "
                                        "open the link it prints.")
                         : "On the host, as an admin (root or writd's admin group), run `writ "
                           "console-login` and open the link it prints. Each link signs in once.",
                       nullptr);
    if (s)
      refusal->headers.emplace_back("Set-Cookie", absl::StrCat(kCookie, "=; Path=/; Max-Age=0"));
    return std::nullopt;
  }
  return Caller{id, *s};
}

http::Response Console::Handle(const http::Request& req) {
  http::Response resp = [&]() -> http::Response {
    const std::string& p = req.path;
    if (!control_.load(std::memory_order_acquire)) {
      return Message(503, "Starting", "writd is starting; try again in a moment.", nullptr);
    }
    if (auto refused = RefuseTask(req, p == "/decide"  ? "decide"
                                       : p == "/task"  ? "task_action"
                                       : p == "/login" ? "login"
                                                       : "read")) {
      return *refused;
    }
    if (p == "/console.css" || p == "/console.js") {
      http::Response r;
      r.content_type =
          p == "/console.css" ? "text/css; charset=utf-8" : "text/javascript; charset=utf-8";
      r.body = p == "/console.css" ? kConsoleCss : kConsoleJs;
      return r;
    }
    const bool post = req.method == "POST";
    if (post && (!SameOrigin(req) || !absl::StartsWith(req.Header("content-type"),
                                                       "application/x-www-form-urlencoded"))) {
      absl::MutexLock lock(&stats_mu_);
      stats_.csrf_refused++;
      return Message(403, "Refused",
                     "This request did not come from a console page (cross-site, or not a form).",
                     nullptr);
    }
    if (p == "/login") return post ? LoginPost(req) : LoginPage(req);
    http::Response refusal;
    std::optional<Caller> c = SessionOf(req, &refusal);
    if (!c) return refusal;
    if (post) {
      auto form = http::ParseForm(req.body);
      const std::string token = form.ok() && form->count("csrf") ? form->at("csrf") : "";
      if (!SecretEqual(token, c->session.csrf)) {
        absl::MutexLock lock(&stats_mu_);
        stats_.csrf_refused++;
        return Message(403, "Refused",
                       "This form's token does not belong to your session (a stale page, or a "
                       "request from another site). Nothing was changed; reload the page.",
                       &*c);
      }
      if (p == "/decide") return DecidePost(req, *c);
      if (p == "/task") return TaskActionPost(req, *c);
      if (p == "/logout") return Logout(req, *c);
      http::Response r = Message(405, "Not allowed", "Nothing to post here.", &*c);
      r.headers.emplace_back("Allow", "GET");
      return r;
    }
    if (p == "/" || p == "/approvals") return ApprovalsPage(req, *c);
    if (p == "/approval") return ApprovalPage(req, *c);
    if (p == "/violations") return ViolationsPage(req, *c);
    if (p == "/tasks") return TasksPage(req, *c);
    http::Response r = Message(405, "Not allowed", "This page takes a form post.", &*c);
    r.headers.emplace_back("Allow", "POST");
    return r;
  }();
  // Every page: no framing, no referrer to another site (a login link's token stays out of other
  // sites' logs; not no-referrer: under it Chromium sends `Origin: null` on the console's own form
  // posts, which SameOrigin must refuse), and nothing but this console's own script and style.
  resp.headers.emplace_back("Content-Security-Policy",
                            "default-src 'none'; script-src 'self'; style-src 'self'; "
                            "connect-src 'self'; img-src 'self'; form-action 'self'; "
                            "frame-ancestors 'none'; base-uri 'none'");
  resp.headers.emplace_back("X-Frame-Options", "DENY");
  resp.headers.emplace_back("Referrer-Policy", "same-origin");
  return resp;
}

http::Response Console::LoginPost(const http::Request& req) {
  auto form = http::ParseForm(req.body);
  const std::string token = form.ok() && form->count("token") ? form->at("token") : "";
  const absl::Time now = absl::Now();
  std::string who;
  std::string why;
  {
    absl::MutexLock lock(&mu_);
    auto it = logins_.find(token);
    if (token.empty() || it == logins_.end()) {
      why = "This login link is unknown to this writd (mistyped, or from before a restart).";
    } else if (it->second.used) {
      why = absl::StrCat("This login link was used already, at ", Rfc3339(*it->second.used),
                         ". Each link signs in once.");
    } else if (it->second.expires <= now) {
      why = absl::StrCat("This login link expired at ", Rfc3339(it->second.expires), ".");
    } else {
      it->second.used = now;
      who = it->second.who;
    }
  }
  if (who.empty()) {
    {
      absl::MutexLock lock(&stats_mu_);
      stats_.login_refused++;
    }
    return Message(401, "Login refused",
                   absl::StrCat(why, " Run `writ console-login` on the host for a new link."),
                   nullptr);
  }
  const std::string id = RandomToken();
  const std::string csrf = RandomToken();
  if (id.empty() || csrf.empty())
    return Message(500, "Error", "No randomness for a session.", nullptr);
  {
    absl::MutexLock lock(&mu_);
    for (auto it = sessions_.begin(); it != sessions_.end();) {
      if (it->second.expires < now - absl::Hours(1)) {
        sessions_.erase(it++);
      } else {
        ++it;
      }
    }
    if (sessions_.size() >= kSessions) {
      auto oldest = std::min_element(sessions_.begin(), sessions_.end(), [](auto& a, auto& b) {
        return a.second.created < b.second.created;
      });
      sessions_.erase(oldest);
    }
    sessions_[id] = Session{who, csrf, now, now + opts_.session_ttl};
  }
  {
    absl::MutexLock lock(&stats_mu_);
    stats_.logins++;
  }
  Log()->info("console: {} signed in from {}", who, req.peer);
  http::Response r;
  r.status = 303;
  r.headers.emplace_back("Location", "/approvals");
  r.headers.emplace_back(
      "Set-Cookie",
      absl::StrCat(kCookie, "=", id, "; Path=/; HttpOnly; SameSite=Strict; Max-Age=",
                   absl::ToInt64Seconds(opts_.session_ttl), secure_ ? "; Secure" : ""));
  r.body = "signed in\n";
  return r;
}

http::Response Console::Logout(const http::Request& req, const Caller& c) {
  {
    absl::MutexLock lock(&mu_);
    sessions_.erase(c.session_id);
  }
  Log()->info("console: {} signed out from {}", c.session.who, req.peer);
  http::Response r = Message(200, "Signed out", "You are signed out.", nullptr);
  r.headers.emplace_back("Set-Cookie", absl::StrCat(kCookie, "=; Path=/; Max-Age=0"));
  return r;
}

http::Response Console::DecidePost(const http::Request& req, const Caller& c) {
  auto form = http::ParseForm(req.body);
  if (!form.ok()) return Message(400, "Bad request", std::string(form.status().message()), &c);
  auto get = [&](const char* k) { return form->count(k) ? form->at(k) : std::string(); };
  const std::string id = get("id");
  const std::string decision = get("decision");
  const std::string scope = get("scope").empty() ? "once" : get("scope");
  const std::string reason = get("reason");
  auto refuse = [&](int status, const std::string& title, const std::string& text) {
    absl::MutexLock lock(&stats_mu_);
    stats_.decisions_refused++;
    return Message(status, title, text, &c);
  };
  if (decision != "approve" && decision != "deny") {
    return refuse(400, "Bad request", "decision must be approve or deny.");
  }
  if (scope != "once" && scope != "task")
    return refuse(400, "Bad request", "scope must be once or task.");
  if (decision == "deny" && absl::StripAsciiWhitespace(reason).empty()) {
    return refuse(400, "A reason is needed",
                  "Say why you deny it: the reason goes to the task's record and the SIEM.");
  }
  if (reason.size() > 1024)
    return refuse(400, "Bad request", "The reason is longer than 1024 bytes.");
  // The decision is bound to the action the approver saw: the page's hash must be the pending
  // request's.
  std::optional<ApprovalRequest> pending;
  for (ApprovalRequest& r : d_.approvals.List()) {
    if (r.id == id) pending = std::move(r);
  }
  if (!pending) {
    std::string what;
    {
      absl::MutexLock lock(&mu_);
      auto it = resolved_.find(id);
      if (it != resolved_.end()) what = it->second;
    }
    return refuse(409, "Not pending",
                  what.empty()
                      ? absl::StrCat("Approval ", id, " is not pending (unknown to this writd).")
                      : absl::StrCat("Approval ", id, " is not pending: ", what,
                                     ". Nothing was decided now."));
  }
  if (!SecretEqual(get("action_hash"), pending->action_hash)) {
    return refuse(409, "The request changed",
                  "The action on your page is not the one pending under this id. Nothing was "
                  "decided; reload and look again.");
  }
  v1::ApprovalDecision d;
  d.set_id(id);
  d.set_approve(decision == "approve");
  d.set_scope(scope);
  d.set_reason(reason);
  v1::Response resp =
      control_.load(std::memory_order_acquire)->DecideAs(c.session.who, Via(req), d);
  if (resp.code() != 0) {
    std::string what;
    {
      absl::MutexLock lock(&mu_);
      auto it = resolved_.find(id);
      if (it != resolved_.end()) what = it->second;
    }
    return refuse(409, "Not decided",
                  what.empty() ? resp.error() : absl::StrCat(resp.error(), ": ", what));
  }
  {
    absl::MutexLock lock(&stats_mu_);
    stats_.decisions++;
  }
  Log()->info("console: {} {} approval {} ({}) from {}", c.session.who,
              decision == "approve" ? "approved" : "denied", id, scope, req.peer);
  return Message(
      200, decision == "approve" ? "Approved" : "Denied",
      absl::StrCat(decision == "approve" ? "Approved" : "Denied", " ", pending->action,
                   " for task ", pending->task_id,
                   decision == "approve" && scope == "task" ? " (for the rest of the task)" : "",
                   "."),
      &c);
}

http::Response Console::TaskActionPost(const http::Request& req, const Caller& c) {
  auto form = http::ParseForm(req.body);
  if (!form.ok()) return Message(400, "Bad request", std::string(form.status().message()), &c);
  auto get = [&](const char* k) { return form->count(k) ? form->at(k) : std::string(); };
  const std::string action = get("action");
  if (action != "kill" && action != "freeze" && action != "thaw" && action != "revoke") {
    return Message(400, "Bad request", "action must be kill, freeze, thaw or revoke.", &c);
  }
  v1::TaskRequest tr;
  tr.set_task_id(get("task"));
  const std::string reason = get("reason");
  tr.set_reason(absl::StrCat(reason.empty() ? "" : reason + " ", "(by ", c.session.who, " via ",
                             Via(req), ")"));
  v1::Response resp =
      control_.load(std::memory_order_acquire)->TaskActionAs(c.session.who, action, tr);
  if (resp.code() != 0) return Message(409, "Not done", resp.error(), &c);
  {
    absl::MutexLock lock(&stats_mu_);
    stats_.task_actions++;
  }
  Log()->info("console: {} {} task {} from {}", c.session.who, action, tr.task_id(), req.peer);
  return Message(200, "Done", absl::StrCat(action, " task ", tr.task_id(), ": done."), &c);
}

// ---- notifications

void Console::Notify(std::string payload) {
  absl::MutexLock lock(&notify_mu_);
  if (notify_stop_ || notify_queue_.size() >= kNotifyQueue) {
    absl::MutexLock s(&stats_mu_);
    stats_.notify_dropped++;
    return;
  }
  notify_queue_.push_back(std::move(payload));
}

void Console::NotifierLoop() {
  http::Client client;
  for (;;) {
    std::string payload;
    {
      absl::MutexLock lock(&notify_mu_);
      notify_mu_.Await(absl::Condition(
          +[](Console* c) ABSL_EXCLUSIVE_LOCKS_REQUIRED(c->notify_mu_) {
            return c->notify_stop_ || !c->notify_queue_.empty();
          },
          this));
      if (notify_stop_) {
        // Shutting down: what is left is dropped and counted, not sent (256 slow webhooks would
        // hold writd's stop for minutes).
        absl::MutexLock s(&stats_mu_);
        stats_.notify_dropped += notify_queue_.size();
        notify_queue_.clear();
        return;
      }
      payload = std::move(notify_queue_.front());
      notify_queue_.pop_front();
    }
    http::ClientRequest r;
    r.method = "POST";
    r.url = opts_.webhook;
    r.ca_file = opts_.webhook_ca;
    r.headers.emplace_back("Content-Type", "application/json");
    r.body = std::move(payload);
    r.timeout = absl::Seconds(5);
    auto resp = client.Fetch(r);
    const bool ok = resp.ok() && resp->status >= 200 && resp->status < 300;
    if (!ok) {
      Log()->warn(
          "console: webhook notification failed: {}",
          resp.ok() ? absl::StrCat("HTTP ", resp->status) : std::string(resp.status().message()));
    }
    absl::MutexLock s(&stats_mu_);
    (ok ? stats_.notify_sent : stats_.notify_failed)++;
  }
}

std::string Console::ApprovalPayload(const v1::Event& ev) const {
  const std::string link = absl::StrCat(opts_.url, "/approval?id=", ev.approval().id());
  const std::string who = ev.agent().spiffe_id();
  const std::string what = Cut(ev.approval().action(), 500);
  nlohmann::json j;
  // `text` is what chat notifications show, read as mrkdwn: every value is escaped there too.
  j["text"] =
      absl::StrCat("writ: approval needed. Task ", SlackText(ev.agent().task_id()), " (",
                   SlackText(who), ", for ", SlackText(ev.agent().principal()),
                   ") asks: ", SlackText(what), ". Rule ", SlackText(ev.finding().rule()),
                   ". Decide before ", SlackText(ev.approval().expires()), ": <", link, ">");
  j["blocks"] = nlohmann::json::array(
      {{{"type", "section"},
        {"text",
         {{"type", "mrkdwn"},
          {"text",
           absl::StrCat("*Approval needed* for task `", SlackText(ev.agent().task_id()), "`\n",
                        SlackText(who), " acting for ", SlackText(ev.agent().principal()), "\n```",
                        SlackText(what), "```")}}}},
       {{"type", "context"},
        {"elements", nlohmann::json::array(
                         {{{"type", "mrkdwn"},
                           {"text", absl::StrCat("rule `", SlackText(ev.finding().rule()),
                                                 "` · expires ", ev.approval().expires())}}})}},
       {{"type", "actions"},
        {"elements", nlohmann::json::array(
                         {{{"type", "button"},
                           {"text", {{"type", "plain_text"}, {"text", "Open in writ's console"}}},
                           {"url", link}}})}}});
  j["writ"] = {{"kind", "approval_request"},
               {"approval_id", ev.approval().id()},
               {"task_id", ev.agent().task_id()},
               {"agent", who},
               {"rule", ev.finding().rule()},
               {"expires", ev.approval().expires()},
               {"url", link}};
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string Console::ViolationPayload(const v1::Event& ev) const {
  const std::string link =
      absl::StrCat(opts_.url, "/violations?task=", http::UrlEncode(ev.agent().task_id()));
  const std::string what = Cut(Summary(ev), 500);
  nlohmann::json j;
  j["text"] = absl::StrCat("writ: violation (", SlackText(ev.outcome()), ") in task ",
                           SlackText(ev.agent().task_id()), " (", SlackText(ev.agent().spiffe_id()),
                           "): ", SlackText(what), ". Rule ", SlackText(ev.finding().rule()), ". <",
                           link, ">");
  j["blocks"] = nlohmann::json::array(
      {{{"type", "section"},
        {"text",
         {{"type", "mrkdwn"},
          {"text",
           absl::StrCat("*Violation* (", SlackText(ev.outcome()), ") in task `",
                        SlackText(ev.agent().task_id()), "`\n", SlackText(ev.agent().spiffe_id()),
                        "\n```", SlackText(what), "```\nrule `", SlackText(ev.finding().rule()),
                        "` · <", link, "|console>")}}}}});
  j["writ"] = {{"kind", ev.kind()},
               {"event_id", ev.id()},
               {"task_id", ev.agent().task_id()},
               {"agent", ev.agent().spiffe_id()},
               {"rule", ev.finding().rule()},
               {"outcome", ev.outcome()},
               {"url", link}};
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace writ::daemon
