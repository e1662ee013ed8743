// Console: the approvals console (#20, docs/console.md). A small web app on writd's HTTP server
// (http::Server, its own loopback listener): pending approvals with everything an approver needs to
// decide (task, agent, principal chain, intent, the exact request, the rule, time left, the task's
// last events), approve once / for the task or deny with a reason; live violations; tasks with
// kill / freeze / thaw / revoke. Pages are rendered here (console_pages.cc), every value escaped;
// the script (console_assets.cc) only refreshes lists and counts down.
//
// Who may decide (docs/threat-model.md, Approvals console):
//   - A login is a one-time link (`writ console-login`) that only an admin gets, through the
//   control
//     socket's rules (root or the admin group, never a process inside a task). Its session carries
//     that admin's name; every decision and task action made in it records who and from where.
//   - The session cookie is HttpOnly, SameSite=Strict (Secure when the console's URL is https);
//     every state change is a POST carrying the session's CSRF token, and one whose Origin or
//     Sec-Fetch-Site names another site is refused.
//   - A connection from inside a task is refused before anything else, by the kernel's word: the
//     BPF cgroup_skb program records which task's socket sent to the console's port
//     (Loader::TakeConsolePeer); such a request is a `self` finding (writ/self.console.<request>)
//     that runs the task's responses, like a task's request on the control socket.
//
// Threads: HTTP workers run the handlers; Observe runs on whatever thread emits (under Output's
// lock: it only copies into bounded rings); the notifier thread posts webhooks. mu_ is never held
// while calling ControlService (which emits, and so re-enters Observe).
#pragma once

#include <sys/socket.h>

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "daemon/approvals.h"
#include "daemon/control.h"
#include "daemon/seams.h"
#include "http/server.h"
#include "identity/task.h"
#include "writ/v1/api.pb.h"
#include "writ/v1/event.pb.h"

namespace writ::daemon {

class Console final : public EventObserver {
 public:
  struct Deps {
    identity::TaskRegistry& registry;
    Approvals& approvals;
    // The task cgroup that sent to the console's port from this peer address (the kernel's record,
    // taken); nullopt: no task did. Null function: no kernel record (tests without BPF).
    std::function<std::optional<uint64_t>(const sockaddr_storage& peer)> task_peer;
  };
  struct Options {
    std::string listen = "127.0.0.1:0";  // ADDR:PORT: loopback, or any address with TLS
    std::string url;                     // as approvers reach it; "" = http(s)://<bound address>
    std::string tls_cert;                // PEM files: HTTPS (cookies Secure)
    std::string tls_key;
    absl::Duration session_ttl = absl::Hours(8);
    absl::Duration login_ttl = absl::Minutes(5);
    std::string webhook;  // http(s) URL for notifications; "" = none
    std::string webhook_ca;
    bool notify_violations = false;
    int workers = 2;
  };
  struct Stats {
    uint64_t logins = 0;             // sessions opened
    uint64_t login_refused = 0;      // unknown, used or expired login links
    uint64_t unauthenticated = 0;    // requests without a live session (401)
    uint64_t csrf_refused = 0;       // state changes without the session's token, or cross-site
    uint64_t task_refused = 0;       // requests from inside a task
    uint64_t decisions = 0;          // approvals decided here
    uint64_t decisions_refused = 0;  // decided, expired or ended already; action changed
    uint64_t task_actions = 0;
    uint64_t notify_sent = 0;
    uint64_t notify_failed = 0;
    uint64_t notify_dropped = 0;  // the notification queue was full
  };

  static absl::StatusOr<std::unique_ptr<Console>> Create(Deps deps, Options opts);
  ~Console();
  Console(const Console&) = delete;
  Console& operator=(const Console&) = delete;

  absl::Status Start();  // binds the listener, starts the notifier
  void Stop();           // idempotent
  std::string url() const;
  uint16_t port() const;

  // ControlService's console_login hook: a one-time link that opens a session for `who`.
  absl::StatusOr<v1::ConsoleLoginResponse> NewLogin(const std::string& who);

  // Every event writd emits, redacted (Output's observer): the task's last events, the violations
  // list, resolved approvals, notifications.
  void Observe(const v1::Event& ev) override;
  // The control service decisions and task actions go through; until it is set (writd still
  // starting), every request gets 503.
  void SetControl(ControlService* c) { control_.store(c, std::memory_order_release); }

  Stats stats() const;
  // writ_console_* counters in Prometheus text format, and the console's HTTP server's.
  std::string MetricsText() const;

  // One request as a connection would have it answered (the unit tests' entry).
  http::Response Handle(const http::Request& req);

  // What the pages show of an event: one line ("exec /usr/bin/curl -s https://x").
  static std::string Summary(const v1::Event& ev);

  // A line of a task's recent history.
  struct Line {
    std::string time;  // RFC 3339
    std::string kind;
    std::string verdict;
    std::string outcome;
    std::string summary;
    std::string rule;
    std::string agent;
    std::string task;
    std::string severity;
  };

  struct Session {
    std::string who;
    std::string csrf;
    absl::Time created;
    absl::Time expires;
  };

 private:
  Console(Deps deps, Options opts);
  void SetUrl(const std::string& url);  // before Start returns: url(), origin_, secure_

  struct TaskLog {
    std::deque<Line> lines;                // newest last, at most kTaskLines
    std::vector<std::string> credentials;  // "issue jwt_svid jti=...", at most kTaskCredentials
    bool ended = false;
    absl::Time ended_at;
  };
  struct Login {
    std::string who;
    absl::Time expires;
    std::optional<absl::Time> used;
  };
  // Who made a request, once its session checked out.
  struct Caller {
    std::string session_id;
    Session session;
  };

  // The checks every request passes, in order: not from inside a task; (pages other than login and
  // the assets) a live session; (POST) the session's CSRF token and a same-origin request.
  std::optional<http::Response> RefuseTask(const http::Request& req, const char* what);
  std::optional<Caller> SessionOf(const http::Request& req, http::Response* refusal);
  bool SameOrigin(const http::Request& req) const;

  http::Response LoginPage(const http::Request& req);
  http::Response LoginPost(const http::Request& req);
  http::Response Logout(const http::Request& req, const Caller& c);
  http::Response ApprovalsPage(const http::Request& req, const Caller& c);
  http::Response ApprovalPage(const http::Request& req, const Caller& c);
  http::Response DecidePost(const http::Request& req, const Caller& c);
  http::Response ViolationsPage(const http::Request& req, const Caller& c);
  http::Response TasksPage(const http::Request& req, const Caller& c);
  http::Response TaskActionPost(const http::Request& req, const Caller& c);

  // Rendering (console_pages.cc).
  std::string RenderApproval(const ApprovalRequest& r, const Caller& c) const;
  std::string RenderViolationRows(const std::string& agent, const std::string& task,
                                  const std::string& rule) const;
  std::string RenderTaskRows(const Caller& c) const;
  http::Response Page(int status, const std::string& title, const std::string& body,
                      const Caller* c, int pending = -1) const;
  http::Response Message(int status, const std::string& title, const std::string& text,
                         const Caller* c) const;

  void Notify(std::string payload);
  void NotifierLoop();
  std::string ApprovalPayload(const v1::Event& ev) const;
  std::string ViolationPayload(const v1::Event& ev) const;
  std::string Via(const http::Request& req) const;

  static constexpr size_t kTaskLines = 12;
  static constexpr size_t kTaskCredentials = 16;
  static constexpr size_t kViolations = 500;
  static constexpr size_t kResolved = 1024;
  static constexpr size_t kSessions = 64;
  static constexpr size_t kLogins = 64;
  static constexpr size_t kTaskLogs = 512;
  static constexpr size_t kNotifyQueue = 256;

  Deps d_;
  Options opts_;
  std::atomic<ControlService*> control_{nullptr};
  std::unique_ptr<http::Server> server_;
  std::string origin_;   // scheme://host:port of url()
  bool secure_ = false;  // url() is https: the cookie is Secure

  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Session> sessions_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, Login> logins_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, TaskLog> tasks_ ABSL_GUARDED_BY(mu_);
  std::deque<Line> violations_ ABSL_GUARDED_BY(mu_);
  // Approvals no longer pending, by id: what became of them (for a late or replayed decision).
  absl::flat_hash_map<std::string, std::string> resolved_ ABSL_GUARDED_BY(mu_);
  std::deque<std::string> resolved_order_ ABSL_GUARDED_BY(mu_);
  // Approval ids by task, until decided: a task's end resolves them.
  absl::flat_hash_map<std::string, std::vector<std::string>> open_ ABSL_GUARDED_BY(mu_);

  mutable absl::Mutex stats_mu_;
  Stats stats_ ABSL_GUARDED_BY(stats_mu_);

  absl::Mutex notify_mu_;
  std::deque<std::string> notify_queue_ ABSL_GUARDED_BY(notify_mu_);
  bool notify_stop_ ABSL_GUARDED_BY(notify_mu_) = false;
  std::thread notifier_;
  std::atomic<bool> started_{false};
};

// The console's style sheet and script (console_assets.cc), served as files: the pages' CSP allows
// no inline script or style.
extern const char kConsoleCss[];
extern const char kConsoleJs[];

// Text for an HTML page: shown as `writ tail` prints it (control and bidirectional characters and
// bytes that are not UTF-8 as visible escapes, util/terminal_text.h), then &<>"' escaped: nothing
// the task chose is rendered as markup, reordered or hidden.
std::string HtmlText(absl::string_view s);
// &, < and > (and with `quotes`, " and ') as character references: the markup HTML and Slack's
// mrkdwn share.
std::string EscapeMarkup(absl::string_view s, bool quotes);
// The length of the longest prefix of `s` of at most `max` bytes that does not end inside a UTF-8
// sequence.
size_t Utf8Prefix(absl::string_view s, size_t max);
// At most `max` bytes of `s` (cut at a character boundary) as HtmlText, with a note of what was
// left out.
std::string HtmlTextCut(absl::string_view s, size_t max);

}  // namespace writ::daemon
