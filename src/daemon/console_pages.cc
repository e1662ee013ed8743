// The approvals console's pages: server-rendered HTML, every value through HtmlText.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "daemon/console.h"
#include "http/parse.h"
#include "identity/task.h"
#include "util/terminal_text.h"
#include "util/util.h"

namespace writ::daemon {
namespace {

std::string Query(const http::Request& req, const std::string& name) {
  auto form = http::ParseForm(req.query);
  if (!form.ok()) return "";
  auto it = form->find(name);
  return it == form->end() ? "" : it->second;
}

std::string Attr(absl::string_view s) { return HtmlText(s); }

const char* OutcomeClass(const std::string& verdict, const std::string& outcome) {
  if (verdict == "violation" || outcome == "would_deny") return "bad";
  if (verdict == "needs_approval") return "ask";
  return "";
}

}  // namespace

std::string EscapeMarkup(absl::string_view s, bool quotes) {
  std::string out;
  out.reserve(s.size() + 16);
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += quotes ? "&quot;" : "\"";
        break;
      case '\'':
        out += quotes ? "&#39;" : "'";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

size_t Utf8Prefix(absl::string_view s, size_t max) {
  if (s.size() <= max) return s.size();
  size_t n = max;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) n--;
  return n;
}

// What a terminal shows of it first (control and bidirectional characters, bytes that are not
// UTF-8: visible escapes, as `writ tail` and `writ approvals` print them), then HTML-escaped.
std::string HtmlText(absl::string_view s) { return EscapeMarkup(TerminalSafe(s), /*quotes=*/true); }

std::string HtmlTextCut(absl::string_view s, size_t max) {
  if (s.size() <= max) return HtmlText(s);
  const size_t n = Utf8Prefix(s, max);
  return absl::StrCat(HtmlText(s.substr(0, n)), "<span class=\"cut\">… (", s.size() - n,
                      " more bytes not shown)</span>");
}

http::Response Console::Page(int status, const std::string& title, const std::string& body,
                             const Caller* c, int pending) const {
  http::Response r;
  r.status = status;
  r.content_type = "text/html; charset=utf-8";
  std::string nav;
  if (c) {
    if (pending < 0) pending = static_cast<int>(d_.approvals.size());
    nav = absl::StrCat(
        "<nav><a href=\"/approvals\">Approvals <span class=\"count\" id=\"pending\">", pending,
        "</span></a><a href=\"/violations\">Violations</a><a href=\"/tasks\">Tasks</a>"
        "<span class=\"who\">",
        HtmlText(c->session.who),
        "</span><form method=\"post\" action=\"/logout\" class=\"inline\">"
        "<input type=\"hidden\" name=\"csrf\" value=\"",
        Attr(c->session.csrf), "\"><button type=\"submit\">Sign out</button></form></nav>");
  }
  r.body = absl::StrCat(
      "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
      "<title>",
      HtmlText(title),
      " · writ</title><link rel=\"stylesheet\" href=\"/console.css\">"
      "<script src=\"/console.js\" defer></script></head><body><header><b>writ</b> approvals "
      "console",
      nav, "</header><main><h1>", HtmlText(title), "</h1>\n", body, "</main></body></html>\n");
  return r;
}

http::Response Console::Message(int status, const std::string& title, const std::string& text,
                                const Caller* c) const {
  return Page(status, title,
              absl::StrCat("<p class=\"message\" id=\"message\">", HtmlText(text),
                           "</p><p><a href=\"/approvals\">Back to the approvals</a></p>"),
              c);
}

http::Response Console::LoginPage(const http::Request& req) {
  const std::string token = Query(req, "token");
  // A form, not a sign-in on GET: a link preview or prefetch must not use up the one-time link.
  return Page(200, "Sign in",
              absl::StrCat("<form method=\"post\" action=\"/login\"><input type=\"hidden\" "
                           "name=\"token\" value=\"",
                           Attr(token),
                           "\"><p>This one-time link signs you in to writ's approvals console "
                           "on this host. Your decisions will carry the name of the admin who "
                           "asked for the link.</p><button type=\"submit\" id=\"signin\">Sign "
                           "in</button></form>"),
              nullptr);
}

std::string Console::RenderApproval(const ApprovalRequest& r, const Caller& c) const {
  std::shared_ptr<identity::Task> t = d_.registry.Find(r.task_id);
  const v1::Event& ev = r.cause;
  const int64_t left = std::max<int64_t>(0, absl::ToInt64Seconds(r.expires - absl::Now()));
  std::string request;
  if (r.kind == "exec") {
    const v1::Process& p = ev.process();
    std::string args;
    for (const std::string& a : p.args()) {
      absl::StrAppend(&args, "<li><code>", HtmlTextCut(a, 512), "</code></li>");
    }
    absl::StrAppend(&request, "<p>run <code class=\"exe\">", HtmlText(p.exe()), "</code></p>",
                    "<ol class=\"args\" start=\"0\">", args, "</ol>",
                    p.args_truncated() ? "<p class=\"cut\">(more arguments than the kernel "
                                         "reports: not shown, and not approved separately)</p>"
                                       : "",
                    p.script().empty()
                        ? ""
                        : absl::StrCat("<p>script <code>", HtmlText(p.script()), "</code></p>"));
  } else if (r.kind == "open") {
    absl::StrAppend(&request, "<p>open <code class=\"path\">", HtmlTextCut(ev.file().path(), 4096),
                    "</code> for ", HtmlText(absl::StrJoin(ev.file().flags(), ", ")), "</p>");
  } else if (r.kind == "connect") {
    const v1::Network& n = ev.network();
    absl::StrAppend(&request, "<p>connect to <code class=\"dest\">",
                    n.path().empty() ? HtmlText(absl::StrCat(n.dst_ip(), ":", n.dst_port()))
                                     : HtmlText(n.path()),
                    "</code>", n.host().empty() ? "" : absl::StrCat(" (", HtmlText(n.host()), ")"),
                    "</p>");
  } else if (r.kind == "tool_call") {
    absl::StrAppend(
        &request, "<p>call the tool <code class=\"tool\">", HtmlText(ev.tool().name()),
        "</code> with</p><pre class=\"args\">", HtmlTextCut(ev.tool().arguments(), 4096), "</pre>",
        ev.tool().arguments_truncated()
            ? absl::StrCat("<p class=\"cut\">(arguments of ", ev.tool().arguments_bytes(),
                           " bytes; the first 4 KiB shown)</p>")
            : "");
  }
  absl::StrAppend(&request, "<p class=\"exact\">exactly: <code>", HtmlTextCut(r.action, 2048),
                  "</code></p>");

  std::string history;
  {
    absl::MutexLock lock(&mu_);
    auto it = tasks_.find(r.task_id);
    if (it != tasks_.end()) {
      for (const Line& l : it->second.lines) {
        absl::StrAppend(&history, "<tr class=\"", OutcomeClass(l.verdict, l.outcome), "\"><td>",
                        HtmlText(l.time.size() > 11 ? l.time.substr(11, 12) : l.time), "</td><td>",
                        HtmlText(l.kind), "</td><td>",
                        HtmlText(l.outcome.empty() ? l.verdict : l.outcome), "</td><td><code>",
                        HtmlText(l.summary), "</code></td></tr>");
      }
    }
  }
  std::string agent, chain, intent;
  if (t) {
    agent = HtmlText(t->spiffe_id);
    std::vector<std::string> parts;
    for (const std::string& p : t->chain) parts.push_back(HtmlText(p));
    chain = parts.empty() ? HtmlText(t->principal) : absl::StrJoin(parts, " → ");
    intent = absl::StrCat(
        HtmlText(t->intent.empty() ? "(none)" : t->intent), " · ", identity::TaskModeName(t->mode),
        " mode",
        t->charter.empty() ? "" : absl::StrCat(" · <code>", HtmlText(t->charter), "</code>"));
  }
  const std::string id = HtmlText(r.id);
  return absl::StrCat(
      "<article class=\"approval\" id=\"approval-", id, "\" data-id=\"", id, "\"><h2>Task <code>",
      HtmlText(r.task_id), "</code> asks to ", HtmlText(r.kind),
      " <a class=\"permalink\" href=\"/approval?id=", HtmlText(http::UrlEncode(r.id)), "\">#", id,
      "</a></h2><dl><dt>Request</dt><dd class=\"request\">", request,
      "</dd><dt>Agent</dt><dd class=\"agent\">", agent,
      "</dd><dt>Acting for</dt><dd class=\"chain\">", chain, "</dd><dt>Intent</dt><dd>", intent,
      "</dd><dt>Rule</dt><dd class=\"rule\"><code>", HtmlText(r.rule), "</code> ",
      HtmlText(ev.finding().reason()),
      "</dd><dt>Time left</dt><dd><time class=\"left\" data-expires=\"",
      HtmlText(Rfc3339(r.expires)), "\">", left, " s</time> (until ", HtmlText(Rfc3339(r.expires)),
      "; then it is denied)</dd></dl><details open><summary>What the task did last</summary>"
      "<table class=\"history\"><tbody>",
      history.empty() ? "<tr><td>nothing recorded yet</td></tr>" : history,
      "</tbody></table></details><form method=\"post\" action=\"/decide\" class=\"decide\">"
      "<input type=\"hidden\" name=\"csrf\" value=\"",
      Attr(c.session.csrf), "\"><input type=\"hidden\" name=\"id\" value=\"", id,
      "\"><input type=\"hidden\" name=\"action_hash\" value=\"", Attr(r.action_hash),
      "\"><label><input type=\"radio\" name=\"scope\" value=\"once\" checked> this once</label>"
      "<label><input type=\"radio\" name=\"scope\" value=\"task\"> for the rest of the task</label>"
      "<input type=\"text\" name=\"reason\" maxlength=\"1024\" placeholder=\"reason (needed to "
      "deny)\"><button type=\"submit\" name=\"decision\" value=\"approve\" "
      "class=\"approve\">Approve"
      "</button><button type=\"submit\" name=\"decision\" value=\"deny\" class=\"deny\">Deny"
      "</button></form></article>\n");
}

http::Response Console::ApprovalsPage(const http::Request& req, const Caller& c) {
  std::vector<ApprovalRequest> list = d_.approvals.List();
  std::sort(list.begin(), list.end(), [](const ApprovalRequest& a, const ApprovalRequest& b) {
    return a.created < b.created;
  });
  std::string items;
  for (const ApprovalRequest& r : list) items += RenderApproval(r, c);
  if (items.empty()) items = "<p class=\"empty\">Nothing waits for a decision.</p>";
  if (Query(req, "fragment") == "1") {
    http::Response r;
    r.content_type = "text/html; charset=utf-8";
    r.body = items;
    r.headers.emplace_back("X-Writ-Pending", absl::StrCat(list.size()));
    return r;
  }
  return Page(200, "Approvals",
              absl::StrCat("<div id=\"approvals\" data-refresh=\"/approvals?fragment=1\">", items,
                           "</div>"),
              &c, static_cast<int>(list.size()));
}

http::Response Console::ApprovalPage(const http::Request& req, const Caller& c) {
  const std::string id = Query(req, "id");
  for (const ApprovalRequest& r : d_.approvals.List()) {
    if (r.id == id) return Page(200, "Approval", RenderApproval(r, c), &c);
  }
  std::string what;
  {
    absl::MutexLock lock(&mu_);
    auto it = resolved_.find(id);
    if (it != resolved_.end()) what = it->second;
  }
  return Message(404, "Not pending",
                 what.empty()
                     ? absl::StrCat("Approval ", id, " is not pending (unknown to this writd).")
                     : absl::StrCat("Approval ", id, " is not pending: ", what, "."),
                 &c);
}

std::string Console::RenderViolationRows(const std::string& agent, const std::string& task,
                                         const std::string& rule) const {
  std::string rows;
  absl::MutexLock lock(&mu_);
  size_t n = 0;
  for (auto it = violations_.rbegin(); it != violations_.rend() && n < 200; ++it) {
    const Line& l = *it;
    if (!agent.empty() && l.agent.find(agent) == std::string::npos) continue;
    if (!task.empty() && l.task != task) continue;
    if (!rule.empty() && l.rule.find(rule) == std::string::npos) continue;
    n++;
    absl::StrAppend(&rows, "<tr class=\"", HtmlText(l.severity), "\"><td>",
                    HtmlText(l.time.substr(0, 23)),
                    "</td><td><a href=\"/violations?task=", HtmlText(http::UrlEncode(l.task)),
                    "\">", HtmlText(l.task), "</a></td><td>", HtmlText(l.agent), "</td><td><code>",
                    HtmlText(l.rule), "</code></td><td>", HtmlText(l.outcome), "</td><td><code>",
                    HtmlText(l.summary), "</code></td></tr>");
  }
  if (rows.empty()) rows = "<tr><td colspan=\"6\" class=\"empty\">No violations.</td></tr>";
  return rows;
}

http::Response Console::ViolationsPage(const http::Request& req, const Caller& c) {
  const std::string agent = Query(req, "agent"), task = Query(req, "task"),
                    rule = Query(req, "rule");
  const std::string rows = RenderViolationRows(agent, task, rule);
  if (Query(req, "fragment") == "1") {
    http::Response r;
    r.content_type = "text/html; charset=utf-8";
    r.body = rows;
    return r;
  }
  const std::string refresh =
      absl::StrCat("/violations?fragment=1&agent=", http::UrlEncode(agent),
                   "&task=", http::UrlEncode(task), "&rule=", http::UrlEncode(rule));
  return Page(
      200, "Violations",
      absl::StrCat(
          "<form method=\"get\" action=\"/violations\" class=\"filter\"><input name=\"agent\" "
          "placeholder=\"agent (part of the SPIFFE ID)\" value=\"",
          Attr(agent), "\"><input name=\"task\" placeholder=\"task\" value=\"", Attr(task),
          "\"><input name=\"rule\" placeholder=\"rule (part of its id)\" value=\"", Attr(rule),
          "\"><button type=\"submit\">Filter</button></form><table class=\"violations\"><thead>"
          "<tr><th>time</th><th>task</th><th>agent</th><th>rule</th><th>outcome</th><th>what</th>"
          "</tr></thead><tbody id=\"violations\" data-refresh=\"",
          Attr(refresh), "\">", rows, "</tbody></table>"),
      &c);
}

std::string Console::RenderTaskRows(const Caller& c) const {
  std::vector<std::shared_ptr<identity::Task>> all = d_.registry.All();
  std::sort(all.begin(), all.end(), [](auto& a, auto& b) { return a->start < b->start; });
  std::string rows;
  for (const auto& t : all) {
    std::string creds;
    {
      absl::MutexLock lock(&mu_);
      auto it = tasks_.find(t->id);
      if (it != tasks_.end()) {
        for (const std::string& cr : it->second.credentials) {
          absl::StrAppend(&creds, "<div>", HtmlText(cr), "</div>");
        }
      }
    }
    const std::string id = HtmlText(t->id);
    std::string state = identity::TaskStateName(t->state.load());
    if (t->frozen.load()) state += ", frozen";
    if (t->violated.load()) state += ", violated";
    std::string buttons;
    for (const char* a : {"freeze", "thaw", "kill", "revoke"}) {
      absl::StrAppend(&buttons, "<button type=\"submit\" name=\"action\" value=\"", a,
                      "\" class=\"", a, "\">", a, "</button>");
    }
    absl::StrAppend(
        &rows, "<tr id=\"task-", id, "\"><td><code>", id, "</code><div class=\"agent\">",
        HtmlText(t->spiffe_id), "</div><div>for ", HtmlText(t->principal), "</div></td><td>",
        HtmlText(state), "<div>", identity::TaskModeName(t->mode), " mode</div></td><td>",
        t->deadline == absl::InfiniteFuture() ? "none" : HtmlText(Rfc3339(t->deadline)),
        "</td><td>", t->live_processes.load(), "</td><td>", HtmlText(t->intent), "</td><td>",
        creds.empty() ? "none" : creds,
        "</td><td><form method=\"post\" action=\"/task\" class=\"task-action\">"
        "<input type=\"hidden\" name=\"csrf\" value=\"",
        Attr(c.session.csrf), "\"><input type=\"hidden\" name=\"task\" value=\"", id,
        "\"><input type=\"text\" name=\"reason\" maxlength=\"512\" placeholder=\"reason\">",
        buttons, "</form></td></tr>");
  }
  if (rows.empty()) rows = "<tr><td colspan=\"7\" class=\"empty\">No tasks.</td></tr>";
  return rows;
}

http::Response Console::TasksPage(const http::Request& req, const Caller& c) {
  const std::string rows = RenderTaskRows(c);
  if (Query(req, "fragment") == "1") {
    http::Response r;
    r.content_type = "text/html; charset=utf-8";
    r.body = rows;
    return r;
  }
  return Page(200, "Tasks",
              absl::StrCat("<table class=\"tasks\"><thead><tr><th>task</th><th>state</th>"
                           "<th>deadline</th><th>processes</th><th>intent</th><th>credentials"
                           "</th><th></th></tr></thead><tbody id=\"tasks\" data-refresh=\""
                           "/tasks?fragment=1\">",
                           rows, "</tbody></table>"),
              &c);
}

}  // namespace writ::daemon
