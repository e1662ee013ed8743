#include "daemon/bundles.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <set>
#include <string_view>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "util/fd.h"
#include "util/status_macros.h"
#include "util/terminal_text.h"
#include "util/util.h"

namespace writ::daemon {
namespace {

auto Log() {
  static auto l = Logger("writd");
  return l;
}

constexpr char kEnvelopeFile[] = ".bundle";  // dot-files are not intent files (LoadPolicyDir)
constexpr char kCurrentFile[] = "current";

// Writes `data` to `path` (created 0600) and fsyncs it.
absl::Status WriteDurable(const std::string& path, std::string_view data) {
  Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd.valid()) return ErrnoStatus(errno, absl::StrCat("create ", path));
  return WriteAllAndSync(fd.get(), data, path);
}

absl::Status SyncDir(const std::string& dir) {
  Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid() || ::fsync(fd.get()) != 0) {
    return ErrnoStatus(errno, absl::StrCat("fsync ", dir));
  }
  return absl::OkStatus();
}

}  // namespace

PolicyBundles::PolicyBundles(std::string state_dir, std::vector<intent::BundleKey> keys,
                             PolicyStore& store)
    : root_(state_dir + "/bundles"), keys_(std::move(keys)), store_(store) {}

std::string PolicyBundles::BundleDir(const intent::Bundle& b) const {
  return absl::StrCat(root_, "/v", b.version, "-", b.sha256.substr(0, 12));
}

absl::Status PolicyBundles::Restore() {
  const std::string current = root_ + "/" + kCurrentFile;
  absl::StatusOr<std::string> name = ReadFile(current);
  if (!name.ok()) {
    if (absl::IsNotFound(name.status())) return absl::OkStatus();  // no bundle was ever applied
    return name.status();
  }
  const std::string dir =
      absl::StrCat(root_, "/", absl::StripTrailingAsciiWhitespace(absl::string_view(*name)));
  auto refuse = [&](const std::string& why) {
    return absl::FailedPreconditionError(
        absl::StrCat("the signed policy bundle in force (", dir, ") ", why,
                     "; to start from the policies directory instead, remove ", current));
  };
  if (keys_.empty()) return refuse("cannot be verified: policy_bundles.public_keys is not set");
  absl::StatusOr<std::string> env = ReadFile(dir + "/" + kEnvelopeFile);
  if (!env.ok()) return refuse(absl::StrCat("cannot be read: ", env.status().message()));
  absl::StatusOr<intent::Bundle> b = intent::VerifyBundle(*env, keys_);
  if (!b.ok()) return refuse(absl::StrCat("no longer verifies: ", b.status().message()));
  // The files writd will load are the bundle's, byte for byte, and nothing else.
  std::set<std::string> on_disk;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const std::string n = e.path().filename().string();
    if (n != kEnvelopeFile) on_disk.insert(n);
  }
  std::set<std::string> in_bundle;
  for (const intent::BundleFile& f : b->files) {
    in_bundle.insert(f.name);
    absl::StatusOr<std::string> got = ReadFile(dir + "/" + f.name);
    if (!got.ok() || *got != f.content) return refuse(absl::StrCat(f.name, " was changed on disk"));
  }
  if (on_disk != in_bundle) return refuse("holds files the bundle does not");
  store_.SetDir(dir);
  absl::MutexLock lock(&mu_);
  state_.set_version(b->version);
  state_.set_sha256(b->sha256);
  state_.set_key_id(b->key_id);
  state_.set_signer(b->signer);
  struct stat st;
  if (::stat(current.c_str(), &st) == 0) state_.set_applied(Rfc3339(absl::FromTimeT(st.st_mtime)));
  Log()->info("policy bundle v{} ({}) in force from {}", b->version, b->sha256.substr(0, 12), dir);
  return absl::OkStatus();
}

absl::Status PolicyBundles::Refused(absl::Status st) {
  absl::MutexLock lock(&mu_);
  state_.set_refused(state_.refused() + 1);
  state_.set_last_error(std::string(st.message()));
  Log()->warn("policy bundle refused, the policy in force stays: {}", std::string(st.message()));
  return st;
}

absl::StatusOr<v1::PolicyBundleState> PolicyBundles::Apply(const std::string& envelope,
                                                           const std::string& who) {
  absl::MutexLock apply(&apply_mu_);          // one bundle at a time
  const v1::PolicyBundleState now = State();  // only Apply changes it, and we hold apply_mu_
  if (keys_.empty()) {
    return Refused(absl::FailedPreconditionError(
        "writd accepts no policy bundle: policy_bundles.public_keys is not configured"));
  }
  absl::StatusOr<intent::Bundle> b = intent::VerifyBundle(envelope, keys_);
  if (!b.ok()) return Refused(b.status());
  if (b->version < now.version() || (b->version == now.version() && b->sha256 != now.sha256())) {
    return Refused(absl::InvalidArgumentError(absl::StrCat(
        "version ", b->version, " is not newer than version ", now.version(),
        " in force (a replayed or reused version; sign the new set with a higher --version)")));
  }
  if (b->version == now.version()) return now;  // the same bundle again: nothing to do

  // Written whole under a temporary name, then renamed: a crash leaves no half directory.
  const std::string dir = BundleDir(*b);
  const std::string tmp = dir + ".tmp";
  std::error_code ec;
  std::filesystem::create_directories(root_, ec);
  ::chmod(root_.c_str(), 0700);
  std::filesystem::remove_all(tmp, ec);
  std::filesystem::remove_all(dir, ec);  // an earlier attempt of the same bundle that failed
  if (::mkdir(tmp.c_str(), 0700) != 0) {
    return Refused(ErrnoStatus(errno, absl::StrCat("create ", tmp)));
  }
  absl::Status st = WriteDurable(tmp + "/" + kEnvelopeFile, envelope);
  for (const intent::BundleFile& f : b->files) {
    if (st.ok()) st = WriteDurable(tmp + "/" + f.name, f.content);
  }
  if (st.ok()) st = SyncDir(tmp);
  if (st.ok() && ::rename(tmp.c_str(), dir.c_str()) != 0) {
    st = ErrnoStatus(errno, absl::StrCat("rename ", tmp));
  }
  if (!st.ok()) {
    std::filesystem::remove_all(tmp, ec);
    return Refused(st);
  }
  // The same load and check as `writ policy reload`, on the pipeline thread.
  if (absl::Status sw = store_.SwitchAndWait(dir, absl::Seconds(30)); !sw.ok()) {
    if (!absl::IsDeadlineExceeded(sw)) std::filesystem::remove_all(dir, ec);
    return Refused(absl::InvalidArgumentError(absl::StrCat(
        "bundle v", b->version, " does not load; the policy in force stays:\n",
        absl::StripPrefix(sw.message(), "reload failed, previous policy stays in force:\n"))));
  }
  // In force: record it for the next start (write + rename, then the directory).
  const std::string name = dir.substr(root_.size() + 1);
  st = WriteDurable(root_ + "/current.tmp", name + "\n");
  if (st.ok() &&
      ::rename((root_ + "/current.tmp").c_str(), (root_ + "/" + kCurrentFile).c_str()) != 0) {
    st = ErrnoStatus(errno, "rename current.tmp");
  }
  if (st.ok()) st = SyncDir(root_);
  if (!st.ok()) {
    // In force but not recorded: a restart would come back to the previous set. Say so loudly.
    Log()->error("policy bundle v{} is in force but could not be recorded for restarts: {}",
                 b->version, std::string(st.message()));
  }
  // Older bundle directories go; the one just replaced stays for inspection.
  const std::string previous =
      now.version() ? absl::StrCat("v", now.version(), "-", now.sha256().substr(0, 12)) : "";
  for (const auto& e : std::filesystem::directory_iterator(root_, ec)) {
    const std::string n = e.path().filename().string();
    if (e.is_directory() && n != name && n != previous) std::filesystem::remove_all(e.path(), ec);
  }
  v1::PolicyBundleState out;
  {
    absl::MutexLock lock(&mu_);
    state_.set_version(b->version);
    state_.set_sha256(b->sha256);
    state_.set_key_id(b->key_id);
    state_.set_signer(b->signer);
    state_.set_applied(Rfc3339(absl::Now()));
    state_.clear_last_error();
    out = state_;
  }
  Log()->info("policy bundle v{} ({}, signed by key {}{}) put in force by {}: {} files", b->version,
              b->sha256.substr(0, 12), b->key_id,
              b->signer.empty() ? "" : ", signer " + TerminalSafe(b->signer), who, b->files.size());
  return out;
}

v1::PolicyBundleState PolicyBundles::State() const {
  absl::MutexLock lock(&mu_);
  return state_;
}

}  // namespace writ::daemon
