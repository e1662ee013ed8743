// Fakes of the daemon's seams (src/daemon/seams.h) for unit tests of the pipeline and the control
// service: they record what was asked of them, in one shared order, and act on nothing.
#pragma once

#include <signal.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "daemon/seams.h"

namespace writ::daemon::testing {

class FakeOutput : public EventOutput {
 public:
  explicit FakeOutput(std::vector<std::string>* log) : log_(log) {}
  v1::Event NewEvent(const char* kind) override {
    v1::Event e;
    e.set_kind(kind);
    e.set_id(absl::StrCat("s-", next_++));
    return e;
  }
  void Emit(v1::Event& ev, bool batch, bool redacted) override {
    log_->push_back(absl::StrCat("emit ", ev.kind()));
    events.push_back(ev);
    if (observer) observer->Observe(ev);
  }
  std::vector<v1::Event> events;
  EventObserver* observer = nullptr;  // sees every emitted event, as Output's observer does

 private:
  std::vector<std::string>* log_;
  int next_ = 0;
};

class FakeTasks : public TaskControl {
 public:
  explicit FakeTasks(std::vector<std::string>* log) : log_(log) {}
  absl::Status Signal(uint32_t pid, uint64_t start_ns, int sig) override {
    log_->push_back(absl::StrCat("signal ", pid, " ", SigName(sig)));
    return absl::OkStatus();
  }
  absl::Status KillNow(identity::Task& task) override {
    log_->push_back("kill-now " + task.id);
    return absl::OkStatus();
  }
  bool Freeze(identity::Task& task, bool frozen, const v1::Event*, const std::string&) override {
    log_->push_back(absl::StrCat(frozen ? "freeze " : "thaw ", task.id));
    return true;
  }
  void MarkRevoked(const identity::Task& task) override {
    log_->push_back("mark-revoked " + task.id);
  }
  void RunResponses(identity::Task& task, const v1::Event&,
                    const std::vector<std::string>& responses, const std::string&) override {
    std::string r;
    for (const auto& x : responses) absl::StrAppend(&r, r.empty() ? "" : ",", x);
    log_->push_back(absl::StrCat("responses ", task.id, " ", r));
  }
  absl::Status Install(const std::shared_ptr<identity::Task>& task, const v1::Intent*,
                       pid_t) override {
    log_->push_back("install " + task->id);
    installed.push_back(task);
    return absl::OkStatus();
  }
  absl::Status Place(const identity::Task& task, pid_t pid) override {
    log_->push_back(absl::StrCat("place ", task.id, " ", pid));
    return absl::OkStatus();
  }
  absl::Status OnStarted(const identity::Task& task, const api::PeerCred&) override {
    log_->push_back("started " + task.id);
    return absl::OkStatus();
  }
  bool Kill(identity::Task& task, const v1::Event*, const std::string&) override {
    log_->push_back("kill " + task.id);
    return true;
  }
  void Revoke(identity::Task& task, uint64_t, const std::string&) override {
    log_->push_back("revoke " + task.id);
  }
  absl::Status GrantConnect(const identity::Task& task, const v1::Network& dst) override {
    log_->push_back(absl::StrCat("grant ", task.id, " ", dst.dst_ip(), ":", dst.dst_port()));
    return absl::OkStatus();
  }
  std::vector<std::shared_ptr<identity::Task>> installed;

 private:
  static const char* SigName(int sig) {
    switch (sig) {
      case SIGKILL:
        return "KILL";
      case SIGSTOP:
        return "STOP";
      case SIGCONT:
        return "CONT";
    }
    return "?";
  }
  std::vector<std::string>* log_;
};

}  // namespace writ::daemon::testing
