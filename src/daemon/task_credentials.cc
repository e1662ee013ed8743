#include "daemon/task_credentials.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "util/fd.h"
#include "util/status_macros.h"
#include "util/util.h"

namespace writ::daemon {
namespace {

std::shared_ptr<spdlog::logger> Log() {
  static auto l = Logger("writd-creds");
  return l;
}

bool Required(const v1::CredentialRequest& r) { return !r.has_required() || r.required(); }

// Values go into `key=value` lines: a newline would forge another key.
bool LineSafe(const std::string& s) { return s.find_first_of("\n\r") == std::string::npos; }

}  // namespace

TaskCredentials::TaskCredentials(creds::CredentialService* svc, std::string run_dir,
                                 std::function<void(const creds::CredentialEvent&)> emit)
    : svc_(svc), root_(run_dir + "/credentials"), emit_(std::move(emit)) {
  // 0711: a task can reach its own directory by name but cannot list the others.
  std::error_code ec;
  std::filesystem::create_directories(root_, ec);
  if (ec || ::chmod(root_.c_str(), 0711) != 0) {
    Log()->error("credential files: cannot prepare {}: {}", root_,
                 ec ? ec.message() : strerror(errno));
  }
}

std::string TaskCredentials::DirFor(const std::string& task_id) const {
  return root_ + "/" + task_id;
}

std::string TaskCredentials::Format(const creds::IssuedCredential& c) {
  return absl::StrCat(
      "provider=", c.provider, "\ntype=", c.kind, "\nid=", c.id, "\nsecret=", c.secret,
      "\nexpires=", c.expires == absl::InfiniteFuture() ? "" : Rfc3339(c.expires), "\n");
}

absl::Status TaskCredentials::WriteCredential(const std::string& task_id, uid_t uid, gid_t gid,
                                              const creds::IssuedCredential& c) {
  if (!LineSafe(c.provider) || !LineSafe(c.kind) || !LineSafe(c.id) || !LineSafe(c.secret) ||
      c.provider.find('/') != std::string::npos || c.provider.empty() || c.provider[0] == '.') {
    return absl::InternalError(
        absl::StrCat("credential from '", c.provider, "' cannot be written safely"));
  }
  const std::string dir = DirFor(task_id);
  // The directory stays root's (0700) while files are written, so nothing of the task's uid can
  // race symlinks into it; Issue hands it over (0500) at the end.
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return ErrnoStatus(errno, absl::StrCat("mkdir ", dir));
  }
  const std::string path = dir + "/" + c.provider;
  Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0400));
  if (fd.get() < 0) return ErrnoStatus(errno, absl::StrCat("create ", path));
  const std::string body = Format(c);
  if (::fchown(fd.get(), uid, gid) != 0) return ErrnoStatus(errno, absl::StrCat("chown ", path));
  return WriteAllAndSync(fd.get(), body, path);
}

void TaskCredentials::RemoveDir(const std::string& task_id) {
  std::error_code ec;
  // remove_all does not follow symlinks: whatever the task put there cannot redirect the removal.
  std::filesystem::remove_all(DirFor(task_id), ec);
  if (ec) Log()->error("task {}: remove credential files: {}", task_id, ec.message());
}

absl::Status TaskCredentials::Issue(const creds::TaskClaims& claims, uid_t uid, gid_t gid,
                                    const std::vector<v1::CredentialRequest>& requests) {
  if (requests.empty()) return absl::OkStatus();
  bool wrote = false;
  for (const auto& req : requests) {
    creds::ProviderConfig pc;
    pc.name = req.provider();
    pc.grants.assign(req.grants().begin(), req.grants().end());
    absl::Status st;
    auto issued = svc_->OnTaskStart(claims, {pc});
    if (!issued.ok()) {
      st = issued.status();
    } else {
      for (const auto& c : *issued) {
        st = WriteCredential(claims.task_id, uid, gid, c);
        if (!st.ok()) break;
        wrote = true;
      }
    }
    if (st.ok()) continue;
    if (Required(req)) {
      // Nothing of a task that does not start may stay valid: revoke what was issued (the failing
      // provider included: its revocation is a no-op when nothing was created there) and drop the
      // files. A failure of this revoke is logged by Revoke; the caller needs the issuing error.
      Revoke(claims.task_id, absl::StrCat("required credential from '", req.provider(), "' failed"))
          .IgnoreError();
      return absl::Status(
          absl::IsInvalidArgument(st) ? absl::StatusCode::kFailedPrecondition : st.code(),
          absl::StrCat("credential from provider '", req.provider(), "' (required by intent ",
                       claims.intent, ") could not be issued: ", st.message()));
    }
    Log()->warn("task {}: optional credential from '{}' not issued, the task starts without it: {}",
                claims.task_id, req.provider(), st.ToString());
    creds::CredentialEvent e;
    e.type = svc_->ProviderKind(req.provider());
    e.provider = req.provider();
    e.operation = "issue_failed";
    e.task_id = claims.task_id;
    e.detail = std::string(st.message());
    if (emit_) emit_(e);
  }
  if (wrote) {
    const std::string dir = DirFor(claims.task_id);
    if (::chown(dir.c_str(), uid, gid) != 0 || ::chmod(dir.c_str(), 0500) != 0) {
      absl::Status st = ErrnoStatus(errno, absl::StrCat("hand ", dir, " to uid ", uid));
      Revoke(claims.task_id, "credential files could not be handed over").IgnoreError();  // logged
      return st;
    }
  }
  return absl::OkStatus();
}

absl::Status TaskCredentials::Revoke(const std::string& task_id, const std::string& reason) {
  RemoveDir(task_id);
  if (auto r = svc_->Revoke(task_id, reason); !r.ok()) {
    Log()->error("task {}: revoke credentials: {}", task_id, r.status().ToString());
    return r.status();
  }
  return absl::OkStatus();
}

}  // namespace writ::daemon
