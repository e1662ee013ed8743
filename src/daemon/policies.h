// The policy set in force: loaded whole from the policies directory at start and on every reload,
// checked (intent credentials name configured providers), and swapped whole. A reload that fails
// keeps the set in force and says why (`writ policy reload`, `writ status`): never a half-applied
// policy. A running task keeps the CompiledIntent it started with.
//
// Threads: Get() from any thread; reloads are applied on the pipeline thread (ApplyReload), asked
// for from a control thread (RequestReload + AwaitReload) or by SIGHUP (RequestReload from the
// handler).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "intent/intent.h"

namespace writ::daemon {

class PolicyStore {
 public:
  // `check` validates a whole set beyond what the loader does (null: nothing more).
  using Check = std::function<absl::Status(const intent::PolicySet&)>;
  PolicyStore(std::string dir, Check check);

  // Before Load: read the set from `dir` instead (a signed bundle's directory, PolicyBundles).
  void SetDir(std::string dir);
  std::string dir() const;

  // The first load (start): an error means writd must not start.
  absl::Status Load();
  std::shared_ptr<const intent::PolicySet> Get() const;
  // The last reload's error ("" after a successful one).
  std::string error() const;

  // Async-signal-safe.
  void RequestReload() { requested_.fetch_add(1); }
  // Pipeline thread: applies a pending request (true when there was one).
  bool ApplyReload();
  // Control thread: asks for a reload and waits (bounded) until the pipeline thread applied it. The
  // error names what is wrong (FILE:LINE) when the set in force was kept.
  absl::Status ReloadAndWait(absl::Duration timeout);
  // The same for the set in `dir` (a verified bundle's files): on the pipeline thread it is loaded
  // and checked whole; only if that succeeds is it put in force and does `dir` become the directory
  // later reloads read. Otherwise the set and directory in force stay and the error says why. Not
  // taken by the pipeline thread within `timeout`: withdrawn (DeadlineExceeded, nothing changes).
  absl::Status SwitchAndWait(const std::string& dir, absl::Duration timeout);

 private:
  absl::Status LoadChecked(const std::string& dir,
                           std::shared_ptr<const intent::PolicySet>* out) const;
  absl::Status AwaitApplied(uint64_t mine, absl::Duration timeout);

  const Check check_;
  std::atomic<uint64_t> requested_{0};
  mutable absl::Mutex mu_;
  std::string dir_ ABSL_GUARDED_BY(mu_);
  std::string pending_dir_ ABSL_GUARDED_BY(mu_);  // SwitchAndWait's, until ApplyReload takes it
  std::shared_ptr<const intent::PolicySet> set_ ABSL_GUARDED_BY(mu_);
  std::string error_ ABSL_GUARDED_BY(mu_);
  uint64_t applied_ ABSL_GUARDED_BY(mu_) =
      0;  // requests taken into account by the last ApplyReload
};

}  // namespace writ::daemon
