#include "daemon/policies.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "util/util.h"

namespace writ::daemon {

PolicyStore::PolicyStore(std::string dir, Check check)
    : check_(std::move(check)), dir_(std::move(dir)) {}

void PolicyStore::SetDir(std::string dir) {
  absl::MutexLock lock(&mu_);
  dir_ = std::move(dir);
}

std::string PolicyStore::dir() const {
  absl::MutexLock lock(&mu_);
  return dir_;
}

absl::Status PolicyStore::LoadChecked(const std::string& dir,
                                      std::shared_ptr<const intent::PolicySet>* out) const {
  auto set = intent::LoadPolicyDir(dir);
  if (set.ok() && check_) {
    if (absl::Status st = check_(*set); !st.ok()) set = st;
  }
  if (!set.ok()) return set.status();
  *out = std::make_shared<const intent::PolicySet>(*std::move(set));
  return absl::OkStatus();
}

absl::Status PolicyStore::Load() {
  const std::string from = dir();
  std::shared_ptr<const intent::PolicySet> set;
  if (absl::Status st = LoadChecked(from, &set); !st.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("policies in ", from, " are invalid:\n", st.message()));
  }
  absl::MutexLock lock(&mu_);
  set_ = std::move(set);
  return absl::OkStatus();
}

std::shared_ptr<const intent::PolicySet> PolicyStore::Get() const {
  absl::MutexLock lock(&mu_);
  return set_;
}

std::string PolicyStore::error() const {
  absl::MutexLock lock(&mu_);
  return error_;
}

bool PolicyStore::ApplyReload() {
  const uint64_t req = requested_.load();
  std::string from, switch_to;
  {
    absl::MutexLock lock(&mu_);
    if (req == applied_) return false;
    switch_to = std::exchange(pending_dir_, std::string());
    from = switch_to.empty() ? dir_ : switch_to;
  }
  std::shared_ptr<const intent::PolicySet> set;
  // Outside the lock: readers keep the set in force meanwhile.
  absl::Status st = LoadChecked(from, &set);
  absl::MutexLock lock(&mu_);
  applied_ = req;
  if (!st.ok()) {
    error_ = std::string(st.message());
    Logger("writd")->error("policy reload failed, the previous policy stays in force:\n{}", error_);
    return true;
  }
  set_ = std::move(set);
  if (!switch_to.empty()) dir_ = switch_to;
  error_.clear();
  Logger("writd")->info("policies reloaded from {}: {} intents", dir_, set_->intents().size());
  return true;
}

absl::Status PolicyStore::ReloadAndWait(absl::Duration timeout) {
  return AwaitApplied(requested_.fetch_add(1) + 1, timeout);
}

absl::Status PolicyStore::SwitchAndWait(const std::string& dir, absl::Duration timeout) {
  uint64_t mine = 0;
  {
    absl::MutexLock lock(&mu_);
    pending_dir_ = dir;
    mine = requested_.fetch_add(1) + 1;
  }
  absl::Status st = AwaitApplied(mine, timeout);
  if (!absl::IsDeadlineExceeded(st)) return st;
  // Not applied in time (the pipeline thread busy or stopping). A switch it has not taken is
  // withdrawn, so the caller's "refused" is what stays in force; one it took is being loaded now,
  // and its outcome is the answer.
  {
    absl::MutexLock lock(&mu_);
    if (pending_dir_ == dir) {
      pending_dir_.clear();
      return st;
    }
  }
  return AwaitApplied(mine, absl::Seconds(10));
}

absl::Status PolicyStore::AwaitApplied(uint64_t mine, absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto applied = [this, mine]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return applied_ >= mine; };
  if (!mu_.AwaitWithTimeout(absl::Condition(&applied), timeout)) {
    return absl::DeadlineExceededError("the reload was not applied in time; see writd's log");
  }
  if (!error_.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("reload failed, previous policy stays in force:\n", error_));
  }
  return absl::OkStatus();
}

}  // namespace writ::daemon
