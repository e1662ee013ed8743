#include "daemon/policies.h"

#include "absl/strings/str_cat.h"
#include "util/util.h"

namespace writ::daemon {

PolicyStore::PolicyStore(std::string dir, Check check)
    : dir_(std::move(dir)), check_(std::move(check)) {}

absl::Status PolicyStore::LoadChecked(std::shared_ptr<const intent::PolicySet>* out) const {
  auto set = intent::LoadPolicyDir(dir_);
  if (set.ok() && check_) {
    if (absl::Status st = check_(*set); !st.ok()) set = st;
  }
  if (!set.ok()) return set.status();
  *out = std::make_shared<const intent::PolicySet>(*std::move(set));
  return absl::OkStatus();
}

absl::Status PolicyStore::Load() {
  std::shared_ptr<const intent::PolicySet> set;
  if (absl::Status st = LoadChecked(&set); !st.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("policies in ", dir_, " are invalid:\n", st.message()));
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
  {
    absl::MutexLock lock(&mu_);
    if (req == applied_) return false;
  }
  std::shared_ptr<const intent::PolicySet> set;
  absl::Status st = LoadChecked(&set);  // outside the lock: readers keep the set in force meanwhile
  absl::MutexLock lock(&mu_);
  applied_ = req;
  if (!st.ok()) {
    error_ = std::string(st.message());
    Logger("writd")->error("policy reload failed, the previous policy stays in force:\n{}", error_);
    return true;
  }
  set_ = std::move(set);
  error_.clear();
  Logger("writd")->info("policies reloaded: {} intents", set_->intents().size());
  return true;
}

absl::Status PolicyStore::ReloadAndWait(absl::Duration timeout) {
  const uint64_t mine = requested_.fetch_add(1) + 1;
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
