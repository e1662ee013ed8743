#include "daemon/approvals.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "util/util.h"

namespace writ::daemon {

std::string ActionText(const v1::Event& ev) {
  if (ev.kind() == "tool_call") {
    std::string args = ev.tool().arguments();
    if (args.size() > 512) args = absl::StrCat(args.substr(0, 509), "...");
    return absl::StrCat("tool_call ", ev.tool().name(), " ", args, " (sha256 ",
                        ev.tool().arguments_sha256(), ")");
  }
  if (ev.kind() == "exec") {
    return absl::StrCat("exec ", ev.process().exe(), " [", absl::StrJoin(ev.process().args(), " "),
                        "]");
  }
  if (ev.kind() == "connect") {
    return absl::StrCat("connect ", ev.network().dst_ip(), ":", ev.network().dst_port());
  }
  return absl::StrCat(ev.kind(), " ", ev.file().path(), " (", absl::StrJoin(ev.file().flags(), ","),
                      ")");
}

std::string ActionHash(const v1::Event& ev) {
  std::string canon = ev.kind();
  canon.push_back('\0');
  if (ev.kind() == "tool_call") {
    // The exact call: the tool and the digest of its exact arguments (taken by the gateway over the
    // bytes it relays, so even arguments too large to send to writd are bound).
    canon += ev.tool().name();
    canon.push_back('\0');
    canon += ev.tool().arguments_sha256();
  } else if (ev.kind() == "exec") {
    canon += ev.process().exe();
    for (const auto& a : ev.process().args()) {
      canon.push_back('\0');
      canon += a;
    }
  } else if (ev.kind() == "connect") {
    // A string literal "\0" is empty to StrCat: push the separator explicitly, or "127.0.0.1" + 80
    // and "127.0.0.18" + 0 would hash alike.
    canon += ev.network().dst_ip();
    canon.push_back('\0');
    canon += absl::StrCat(ev.network().dst_port());
  } else {
    canon += ev.file().path();
    canon.push_back('\0');
    canon += absl::StrJoin(ev.file().flags(), ",");
  }
  return Sha256Hex(canon);
}

void Approvals::Persist(const ApprovalRequest& r) {
  if (!store_) return;
  v1::ApprovalRecord a;
  a.set_id(r.id);
  a.set_task_id(r.task_id);
  a.set_kind(r.kind);
  a.set_action(r.action);
  a.set_action_hash(r.action_hash);
  a.set_created_unix_ns(absl::ToUnixNanos(r.created));
  a.set_expires_unix_ns(absl::ToUnixNanos(r.expires));
  a.set_pid(r.pid);
  a.set_start_ns(r.start_ns);
  a.set_rule(r.rule);
  for (const auto& x : r.responses) a.add_responses(x);
  *a.mutable_cause() = r.cause;
  if (absl::Status st = store_->PutApproval(a); !st.ok()) {
    Logger("writd")->error("persist approval {}: {}", r.id, std::string(st.message()));
  }
}

void Approvals::Unpersist(const std::string& id) {
  if (store_) (void)store_->DeleteApproval(id);
}

void Approvals::Restore(const std::function<bool(const std::string&)>& task_alive) {
  if (!store_) return;
  auto recs = store_->Approvals();
  if (recs.ok()) {
    absl::MutexLock lock(&mu_);
    for (const v1::ApprovalRecord& a : *recs) {
      if (!task_alive(a.task_id())) {
        (void)store_->DeleteApproval(a.id());
        continue;
      }
      ApprovalRequest r;
      r.id = a.id();
      r.task_id = a.task_id();
      r.kind = a.kind();
      r.action = a.action();
      r.action_hash = a.action_hash();
      r.created = absl::FromUnixNanos(a.created_unix_ns());
      r.expires = absl::FromUnixNanos(a.expires_unix_ns());
      r.pid = a.pid();
      r.start_ns = a.start_ns();
      r.rule = a.rule();
      r.responses.assign(a.responses().begin(), a.responses().end());
      r.cause = a.cause();
      pending_[r.id] = std::move(r);
    }
  }
  auto grants = store_->Grants();
  if (grants.ok()) {
    absl::MutexLock lock(&mu_);
    for (const auto& [task, hash] : *grants) {
      if (task_alive(task)) grants_[task].insert(hash);
    }
  }
}

std::string Approvals::Add(ApprovalRequest req) {
  req.id = "ap-" + RandomHex(6);
  Persist(req);
  absl::MutexLock lock(&mu_);
  std::string id = req.id;
  pending_[id] = std::move(req);
  return id;
}

std::optional<ApprovalRequest> Approvals::Take(const std::string& id) {
  absl::MutexLock lock(&mu_);
  auto it = pending_.find(id);
  if (it == pending_.end()) return std::nullopt;
  ApprovalRequest r = std::move(it->second);
  pending_.erase(it);
  Unpersist(r.id);
  return r;
}

std::vector<ApprovalRequest> Approvals::List() const {
  absl::MutexLock lock(&mu_);
  std::vector<ApprovalRequest> out;
  for (const auto& [id, r] : pending_) out.push_back(r);
  std::sort(out.begin(), out.end(), [](const ApprovalRequest& a, const ApprovalRequest& b) {
    return a.created < b.created;
  });
  return out;
}

template <typename Pred>
std::vector<ApprovalRequest> Approvals::TakeWhere(Pred pred) {
  absl::MutexLock lock(&mu_);
  std::vector<ApprovalRequest> out;
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (pred(it->second)) {
      Unpersist(it->first);
      out.push_back(std::move(it->second));
      pending_.erase(it++);
    } else {
      ++it;
    }
  }
  return out;
}

std::vector<ApprovalRequest> Approvals::TakeExpired(absl::Time now) {
  return TakeWhere([now](const ApprovalRequest& r) { return r.expires <= now; });
}

std::vector<ApprovalRequest> Approvals::TakeTask(const std::string& task_id) {
  return TakeWhere([&task_id](const ApprovalRequest& r) { return r.task_id == task_id; });
}

size_t Approvals::size() const {
  absl::MutexLock lock(&mu_);
  return pending_.size();
}

void Approvals::Grant(const std::string& task_id, const std::string& action_hash) {
  if (store_) (void)store_->PutGrant(task_id, action_hash);
  absl::MutexLock lock(&mu_);
  grants_[task_id].insert(action_hash);
}

bool Approvals::IsGranted(const std::string& task_id, const std::string& action_hash) const {
  absl::MutexLock lock(&mu_);
  auto it = grants_.find(task_id);
  return it != grants_.end() && it->second.contains(action_hash);
}

void Approvals::ForgetTask(const std::string& task_id) {
  absl::MutexLock lock(&mu_);
  grants_.erase(task_id);
}

}  // namespace writ::daemon
